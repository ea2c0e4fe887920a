/* upload: the uploader thread that ships outbox batches to the collector with libcurl.
 *
 * One thread, fed by a small bounded work queue (the early Redis bio.c pattern: callers push a
 * job and never wait). It POSTs the oldest undelivered batch, marks it delivered only after a
 * 2xx from the collector, then takes the next: oldest first, one at a time, so the collector
 * sees sequence numbers in order. On failure it waits an exponential backoff with jitter; the
 * state lives in the outbox, so after a restart it simply resumes with the oldest undelivered
 * batch. A byte-rate cap keeps a 7-day backlog from starving the passengers' traffic.
 *
 * Protocol (docs/telemetry.md "Upload protocol"):
 *   POST <url>
 *   Authorization: Bearer <token from token_file>
 *   Content-Type: application/vnd.corridor.batch+zstd
 *   X-Corridor-Vehicle: <vehicle id>   X-Corridor-Seq: <seq>   X-Corridor-Schema: 1
 *   Idempotency-Key: <vehicle id>/<seq>
 *   body: the batch (outbox.h) */
#ifndef CORRIDOR_TELEMETRY_UPLOAD_H
#define CORRIDOR_TELEMETRY_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "telemetry/outbox.h"

struct uploader_config {
    char db_path[256];           /* the outbox file (the uploader opens its own connection) */
    struct outbox_config outbox; /* vehicle id etc. (as the recorder side uses) */
    char url[256];               /* e.g. "https://collector.example/v1/batches" */
    char token_file[256];     /* one line: the vehicle's bearer token (re-read on every attempt) */
    char ca_file[256];        /* "" = system CAs */
    char interface[32];       /* "" = routing decides; else CURLOPT_INTERFACE (tunnel or a link) */
    unsigned backoff_base_ms; /* default 1000 */
    unsigned backoff_max_ms;  /* default 300000 */
    unsigned connect_timeout_ms; /* default 10000 */
    unsigned timeout_ms;         /* whole request, default 120000 */
    uint64_t rate_bytes_per_s;   /* upload rate cap, default 64 KiB/s; 0 = default */
    unsigned idle_poll_ms;       /* re-check the outbox this often when idle (default 30000) */
};

struct uploader_stats {
    uint64_t delivered; /* batches acknowledged with 2xx */
    uint64_t attempts;  /* POSTs tried */
    uint64_t failures;  /* attempts that failed (network or non-2xx) */
    uint64_t bytes_sent;
    long last_http;    /* last HTTP status, 0 if no response */
    uint64_t last_seq; /* last delivered seq */
    unsigned consecutive_failures;
    char last_error[200];
};

struct uploader;

/* Starts the thread. NULL with err on a bad config or when the outbox cannot be opened. */
struct uploader *uploader_start(const struct uploader_config *cfg, char *err, size_t errlen);
/* A batch was cut: look at the outbox now (non-blocking; a full queue means a kick is pending
 * anyway). Does not cut a backoff wait short. */
void uploader_kick(struct uploader *u);
/* Stop the thread (an in-flight POST is aborted within ~100 ms) and free. */
void uploader_stop(struct uploader *u);
void uploader_get_stats(struct uploader *u, struct uploader_stats *st);
/* Send through this interface from the next attempt on ("" = let routing decide). Firmware calls
 * it with "" while the tunnel is up and with a working link's interface when it is down. A
 * change aborts an attempt in flight on the old path and cuts a running backoff short: the
 * next attempt starts at once on the new path. Thread-safe. */
void uploader_set_interface(struct uploader *u, const char *ifname);

/* Backoff before retry number `attempt` (1 = after the first failure): the exponential step
 * e = min(max, base * 2^(attempt-1)); the wait is e/2 + (rnd % (e/2 + 1)) ("equal jitter": never
 * less than half the step, so a fleet that failed together spreads out but still backs off).
 * Pure, for tests. */
uint64_t upload_backoff_ms(unsigned attempt, unsigned base_ms, unsigned max_ms, uint32_t rnd);

/* Wait needed after sending `bytes` to stay under rate bytes/s (pure, for tests). */
uint64_t upload_rate_wait_ms(uint64_t bytes, uint64_t rate_bytes_per_s, uint64_t elapsed_ms);

#endif
