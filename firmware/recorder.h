/* recorder: firmware's telemetry recording thread ("recorder").
 *
 * Reads copies of the shared state and turns them into telemetry records: the track at 1 Hz,
 * every link every second (radio, tunnel measurements, weight), device health every 10 s
 * (/proc, /sys, statvfs), SIM balances when they change, and every event. outbox_tick()
 * persists them every 2 s and cuts a batch every telemetry.batch_seconds; the uploader (its
 * own thread, telemetry/upload.c) posts batches when telemetry.upload_url is set. Everything
 * blocking (sqlite fsyncs, HTTP) happens on these two threads, never on a hot one. */
#ifndef CORRIDOR_FIRMWARE_RECORDER_H
#define CORRIDOR_FIRMWARE_RECORDER_H

#include <stddef.h>

#include "firmware/config.h"
#include "firmware/state.h"

struct recorder_engine;
int recorder_start(const struct config *cfg, struct state *st, struct recorder_engine **out,
                   char *err, size_t errlen);
void recorder_stop(struct recorder_engine *r);
/* The uploader's counters (for the dashboard's /api/v1/batches). 0, or -1 when telemetry has
 * no uploader (no upload_url). Thread-safe: a mutex-protected copy. NULL-safe (-1). */
struct uploader_stats;
int recorder_upload_stats(struct recorder_engine *r, struct uploader_stats *out);

#endif
