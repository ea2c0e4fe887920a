/* Outage test: the collector is unreachable for a simulated day (1 track + 4 links per second,
 * health every 10 s, a batch every 10 simulated minutes = 144 batches, simulated as fast as the
 * machine goes) while the uploader keeps trying with backoff; then the vehicle "reboots" (the
 * uploader is stopped and a new one started on the same outbox) and the collector comes back.
 * Every batch must arrive, in order, none twice, within the configured rate cap. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "telemetry/outbox.h"
#include "telemetry/record.h"
#include "telemetry/upload.h"
#include "testlib.h"
#include "tlm_util.h"

#define DAY_S 86400
#define RATE  (1536 * 1024) /* upload cap for the drain, bytes/s */

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s corridor-collector\n", argv[0]);
        return 2;
    }
    log_init("test_outage", LOGL_ERROR, false);
    char dir[256], db[400], cdb[400], tokf[400], ctok[400], url[200], err[400];
    if (make_tmpdir(dir, sizeof dir) != 0)
        return 1;
    snprintf(db, sizeof db, "%s/outbox.db", dir);
    snprintf(cdb, sizeof cdb, "%s/collector.db", dir);
    snprintf(tokf, sizeof tokf, "%s/vehicle.token", dir);
    snprintf(ctok, sizeof ctok, "%s/collector.tokens", dir);
    CHECK_INT(write_tokens(tokf, ctok, "train-3", "token-of-train-3"), 0);
    uint16_t port = free_port();
    snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/batches", port);

    /* flush every 5 simulated minutes: this test is about the outage, not the power cut, and
     * 43200 fsyncs would only slow it down */
    struct outbox_config ocfg = {.flush_ms = 300000, .batch_ms = 600000};
    str_copy(ocfg.vehicle_id, "train-3", sizeof ocfg.vehicle_id);
    struct outbox *ob = outbox_open(db, &ocfg, err, sizeof err);
    CHECK_MSG(ob != NULL, "%s", err);
    struct uploader_config ucfg = {.outbox = ocfg,
                                   .backoff_base_ms = 50,
                                   .backoff_max_ms = 400,
                                   .connect_timeout_ms = 1000,
                                   .timeout_ms = 10000,
                                   .rate_bytes_per_s = RATE,
                                   .idle_poll_ms = 200};
    str_copy(ucfg.db_path, db, sizeof ucfg.db_path);
    str_copy(ucfg.url, url, sizeof ucfg.url);
    str_copy(ucfg.token_file, tokf, sizeof ucfg.token_file);
    struct uploader *up = uploader_start(&ucfg, err, sizeof err);
    CHECK_MSG(up != NULL, "%s", err);
    if (!ob || !up)
        return test_summary();
    struct recorder *rec = recorder_new(4096);

    int64_t t0 = 1700000000000;
    uint64_t t_start = mono_ms();
    unsigned cuts = 0, refused = 0;
    uint64_t seq = 0;
    CHECK_INT(outbox_tick(ob, rec, t0, &seq, err, sizeof err), 0);
    for (int s = 1; s <= DAY_S; s++) {
        int64_t now = t0 + (int64_t)s * 1000;
        refused += synth_second(rec, now, 4);
        int rc = outbox_tick(ob, rec, now, &seq, err, sizeof err);
        if (rc < 0) {
            CHECK_MSG(rc >= 0, "tick: %s", err);
            break;
        }
        if (rc == 1) {
            cuts++;
            uploader_kick(up);
        }
    }
    uint64_t t_day = mono_ms() - t_start;
    CHECK_INT(refused, 0);
    CHECK_INT(cuts, DAY_S / 600);
    struct uploader_stats us;
    uploader_get_stats(up, &us);
    printf("simulated day in %.1f s real: %u batches cut; uploader during the outage: %llu"
           " attempts, %llu failures, %llu delivered, last error: %s\n",
           (double)t_day / 1000.0, cuts, (unsigned long long)us.attempts,
           (unsigned long long)us.failures, (unsigned long long)us.delivered, us.last_error);
    CHECK_INT(us.delivered, 0);
    CHECK(us.failures >= 1);
    CHECK(us.attempts == us.failures);
    /* backoff: with 50..400 ms steps the uploader cannot have tried more than once per 25 ms */
    CHECK(us.attempts <= t_day / 25 + 2);
    CHECK(strstr(us.last_error, "127.0.0.1") != NULL);
    struct outbox_stats os;
    CHECK_INT(outbox_get_stats(ob, &os, err, sizeof err), 0);
    CHECK_INT(os.undelivered, DAY_S / 600);
    printf("outbox: %llu batches, %llu bytes (%.1f KB per 10-min batch of 4 links)\n",
           (unsigned long long)os.undelivered, (unsigned long long)os.undelivered_bytes,
           (double)os.undelivered_bytes / (double)os.undelivered / 1024.0);

    /* reboot the vehicle side: the new uploader resumes from the outbox */
    uploader_stop(up);
    struct collector_proc cp = {0};
    const char *extra[] = {"--no-records", "--log-level", "warn", NULL};
    CHECK_INT(collector_spawn(&cp, argv[1], dir, cdb, ctok, port, extra), 0);
    uint64_t t_back = mono_ms();
    up = uploader_start(&ucfg, err, sizeof err);
    CHECK_MSG(up != NULL, "%s", err);
    bool drained = false;
    for (int i = 0; i < 2400 && up; i++) {
        CHECK_INT(outbox_get_stats(ob, &os, err, sizeof err), 0);
        if (os.undelivered == 0) {
            drained = true;
            break;
        }
        usleep(50000);
    }
    uint64_t t_drain = mono_ms() - t_back;
    CHECK(drained);
    uploader_get_stats(up, &us);
    double rate = (double)us.bytes_sent * 1000.0 / (double)(t_drain ? t_drain : 1);
    printf("collector back: %llu batches, %llu bytes delivered in %.1f s = %.0f KB/s (cap %d"
           " KB/s), %llu failures\n",
           (unsigned long long)us.delivered, (unsigned long long)us.bytes_sent,
           (double)t_drain / 1000.0, rate / 1024.0, RATE / 1024, (unsigned long long)us.failures);
    CHECK_INT(us.delivered, DAY_S / 600);
    CHECK(rate <= RATE * 1.10);
    uploader_stop(up);

    char stats[256], surl[200];
    snprintf(surl, sizeof surl, "http://127.0.0.1:%u/v1/stats", port);
    CHECK_INT(http_get(surl, stats, sizeof stats), 200);
    printf("collector stats: %s", stats);
    CHECK(strstr(stats, "\"stored\":144,\"duplicates\":0") != NULL);

    /* in order (receive order = seq order), each once */
    sqlite3 *c;
    CHECK_INT(sqlite3_open_v2(cdb, &c, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q;
    sqlite3_prepare_v2(c,
                       "SELECT seq, t_first_ms, t_last_ms FROM batches WHERE vehicle='train-3'"
                       " ORDER BY rx_id",
                       -1, &q, NULL);
    int64_t expect = 1, prev_last = 0;
    int n = 0, out_of_order = 0, overlap = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        out_of_order += sqlite3_column_int64(q, 0) != expect;
        overlap += sqlite3_column_int64(q, 1) <= prev_last;
        prev_last = sqlite3_column_int64(q, 2);
        expect++;
        n++;
    }
    sqlite3_finalize(q);
    sqlite3_close(c);
    CHECK_INT(n, DAY_S / 600);
    CHECK_INT(out_of_order, 0);
    CHECK_INT(overlap, 0);
    CHECK(prev_last == t0 + (int64_t)DAY_S * 1000 || prev_last == t0 + (int64_t)(DAY_S - 1) * 1000);

    collector_kill(&cp);
    recorder_free(rec);
    outbox_close(ob);
    if (t_fail == 0)
        remove_tree(dir);
    else
        printf("kept %s\n", dir);
    return test_summary();
}
