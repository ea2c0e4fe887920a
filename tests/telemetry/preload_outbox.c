/* telemetry_preload: fill an outbox with N ten-minute batches of realistic content, made by the
 * recorder's own code (recorder_add_* -> recorder_flush -> outbox_cut), ending now: the backlog
 * a vehicle builds up when the collector is out of reach for days.
 *
 *   telemetry_preload DB VEHICLE_ID [BATCHES=1008] [LINKS=4]
 * Each batch: 600 s of 1 track + LINKS link records per second, health every 10 s, one SIM
 * record per link per batch. Prints the count and the bytes of undelivered batches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "telemetry/outbox.h"
#include "telemetry/record.h"
#include "tlm_util.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s DB VEHICLE_ID [BATCHES=1008] [LINKS=4]\n", argv[0]);
        return 2;
    }
    unsigned batches = argc > 3 ? (unsigned)atoi(argv[3]) : 1008;
    unsigned links = argc > 4 ? (unsigned)atoi(argv[4]) : 4;
    struct outbox_config oc = {.quota_bytes = 4ull << 30};
    str_copy(oc.vehicle_id, argv[2], sizeof oc.vehicle_id);
    char err[300];
    struct outbox *ob = outbox_open(argv[1], &oc, err, sizeof err);
    struct recorder *rec = recorder_new(8192);
    if (!ob || !rec) {
        fprintf(stderr, "%s\n", ob ? "out of memory" : err);
        return 1;
    }
    int64_t end = (int64_t)wall_ms() / 1000 * 1000;
    int64_t t = end - (int64_t)batches * 600000;
    uint64_t t0 = mono_ms();
    for (unsigned b = 0; b < batches; b++) {
        for (unsigned s = 0; s < 600; s++, t += 1000) {
            synth_second(rec, t, links);
            if (s % 120 == 119 && recorder_flush(rec, ob, err, sizeof err) < 0) {
                fprintf(stderr, "flush: %s\n", err);
                return 1;
            }
        }
        for (unsigned i = 0; i < links; i++) {
            struct rec_sim sm = {
                .t_ms = t - 1, .balance = 500.0 - b * 0.3, .forecast_empty_utc = -1};
            snprintf(sm.link, sizeof sm.link, "wwan%u", i);
            snprintf(sm.iccid, sizeof sm.iccid, "8970101000000000%04u", i);
            str_copy(sm.currency, "RUB", sizeof sm.currency);
            sm.data_down_bytes = (uint64_t)b * 40000000u;
            sm.data_up_bytes = (uint64_t)b * 9000000u;
            sm.data_used_bytes = sm.data_down_bytes + sm.data_up_bytes;
            recorder_add_sim(rec, &sm);
        }
        uint64_t seq;
        if (recorder_flush(rec, ob, err, sizeof err) < 0 ||
            outbox_cut(ob, t, &seq, err, sizeof err) < 0) {
            fprintf(stderr, "batch %u: %s\n", b, err);
            return 1;
        }
    }
    struct outbox_stats st;
    if (outbox_get_stats(ob, &st, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("%llu undelivered batches, %llu bytes (%.1f KB each), made in %.1f s\n",
           (unsigned long long)st.undelivered, (unsigned long long)st.undelivered_bytes,
           st.undelivered ? st.undelivered_bytes / 1024.0 / st.undelivered : 0.0,
           (mono_ms() - t0) / 1000.0);
    recorder_free(rec);
    outbox_close(ob);
    return 0;
}
