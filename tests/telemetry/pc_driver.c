/* pc_driver: the vehicle side of the power-cut test, as one process: recorder + cutter (outbox
 * tick) + uploader thread, recording synthetic 1 Hz samples (1 track + 4 links per second,
 * health every 10 s) on an accelerated clock:
 *     sim_ms = sim0 + (CLOCK_MONOTONIC ms - epoch) * factor
 * The clock keeps running while the process is dead, like the train keeps moving.
 *
 *   telemetry_pc_driver run|drain --db P --url U --token-file F --vehicle V --epoch-ms E
 *                       --factor X --sim0-ms S [--flush-s 2] [--batch-s 6]
 * run:   record, cut and upload until killed.
 * drain: cut what is pending, upload everything, exit 0 when the outbox is empty (1 on
 *        timeout). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "telemetry/outbox.h"
#include "telemetry/record.h"
#include "telemetry/upload.h"
#include "tlm_util.h"

static long long arg_ll(int argc, char **argv, const char *name, long long def)
{
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return atoll(argv[i + 1]);
    return def;
}

static const char *arg_s(int argc, char **argv, const char *name)
{
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    bool drain = strcmp(argv[1], "drain") == 0;
    const char *db = arg_s(argc, argv, "--db");
    const char *url = arg_s(argc, argv, "--url");
    const char *tokf = arg_s(argc, argv, "--token-file");
    const char *vid = arg_s(argc, argv, "--vehicle");
    int64_t epoch = arg_ll(argc, argv, "--epoch-ms", 0);
    int64_t factor = arg_ll(argc, argv, "--factor", 10);
    int64_t sim0 = arg_ll(argc, argv, "--sim0-ms", 1700000000000);
    if (!db || !url || !tokf || !vid)
        return 2;
    log_init("pc_driver", LOGL_ERROR, false);
    signal(SIGPIPE, SIG_IGN);

    struct outbox_config ocfg = {.flush_ms = (unsigned)arg_ll(argc, argv, "--flush-s", 2) * 1000,
                                 .batch_ms = (unsigned)arg_ll(argc, argv, "--batch-s", 6) * 1000};
    str_copy(ocfg.vehicle_id, vid, sizeof ocfg.vehicle_id);
    char err[400];
    struct outbox *ob = outbox_open(db, &ocfg, err, sizeof err);
    if (!ob) {
        fprintf(stderr, "pc_driver: %s\n", err);
        return 1;
    }
    struct uploader_config ucfg = {.outbox = ocfg,
                                   .backoff_base_ms = 20,
                                   .backoff_max_ms = 200,
                                   .connect_timeout_ms = 2000,
                                   .timeout_ms = 5000,
                                   .rate_bytes_per_s = 50u << 20,
                                   .idle_poll_ms = 200};
    str_copy(ucfg.db_path, db, sizeof ucfg.db_path);
    str_copy(ucfg.url, url, sizeof ucfg.url);
    str_copy(ucfg.token_file, tokf, sizeof ucfg.token_file);
    struct uploader *up = uploader_start(&ucfg, err, sizeof err);
    if (!up) {
        fprintf(stderr, "pc_driver: %s\n", err);
        return 1;
    }
    struct recorder *rec = recorder_new(4096);

    if (drain) {
        uint64_t seq;
        if (outbox_cut(ob, sim0 + ((int64_t)mono_ms() - epoch) * factor, &seq, err, sizeof err) <
            0) {
            fprintf(stderr, "pc_driver: drain cut: %s\n", err);
            return 1;
        }
        uploader_kick(up);
        int rc = 1;
        for (int i = 0; i < 1200; i++) {
            struct outbox_stats st;
            if (outbox_get_stats(ob, &st, err, sizeof err) == 0 && st.undelivered == 0 &&
                st.pending_records == 0) {
                rc = 0;
                break;
            }
            usleep(50000);
        }
        uploader_stop(up);
        recorder_free(rec);
        outbox_close(ob);
        return rc;
    }

    int64_t now = sim0 + ((int64_t)mono_ms() - epoch) * factor;
    int64_t next_sec = now / 1000 + 1; /* first whole second from now on */
    /* tell the test when recording starts: a kill before this line loses no samples (there
     * were none yet); the start-up is reboot time, not power-cut loss */
    printf("ready %lld\n", (long long)now);
    fflush(stdout);
    for (;;) {
        now = sim0 + ((int64_t)mono_ms() - epoch) * factor;
        while (next_sec * 1000 <= now) {
            synth_second(rec, next_sec * 1000, 4);
            next_sec++;
        }
        uint64_t seq = 0;
        int rc = outbox_tick(ob, rec, now, &seq, err, sizeof err);
        if (rc < 0)
            fprintf(stderr, "pc_driver: tick: %s\n", err);
        else if (rc == 1)
            uploader_kick(up);
        usleep(5000);
    }
}
