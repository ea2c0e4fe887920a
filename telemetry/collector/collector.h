/* collector: the data-center side of telemetry upload (libmicrohttpd, optional TLS, sqlite).
 *
 * POST /v1/batches (protocol in docs/telemetry.md "Upload protocol"): authenticates the vehicle
 * by its bearer token (token file: "vehicle_id sha256-hex-of-token" per line), verifies and
 * decompresses the batch with a bound on the decompressed size, and stores it idempotently: a
 * repeated (vehicle, seq) is acknowledged and never stored twice. The answer is sent only after
 * the sqlite transaction (WAL, synchronous=FULL) committed. GET /v1/stats returns counters.
 * Every refusal is a 4xx with a short text body and a log line naming the peer address. */
#ifndef CORRIDOR_COLLECTOR_H
#define CORRIDOR_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct collector_config {
    char listen_addr[64]; /* IPv4 address, default "127.0.0.1" */
    uint16_t port;        /* 0 = ephemeral (see collector_port) */
    char db_path[256];
    char tokens_file[256];
    char tls_cert[256]; /* PEM files; both set = HTTPS */
    char tls_key[256];
    size_t max_body;         /* compressed body bound, default 4 MiB */
    size_t max_raw;          /* decompressed bound, default 16 MiB */
    size_t max_inflight;     /* bodies buffered across connections, default 64 MiB */
    unsigned conn_timeout_s; /* idle connection timeout, default 15 */
    unsigned max_conns;      /* default 256 */
    bool no_records;         /* do not expand records into the records table (batches only) */
    /* tests only: wait this long between COMMIT and the answer, widening the window in which a
     * client crash leads to a replay */
    unsigned test_reply_delay_ms;
};

struct collector_stats {
    uint64_t stored, duplicates, rejected, records;
};

struct collector;

/* Loads the tokens, opens/creates the database and starts serving. NULL + err on failure. */
struct collector *collector_start(const struct collector_config *cfg, char *err, size_t errlen);
uint16_t collector_port(struct collector *c);
void collector_get_stats(struct collector *c, struct collector_stats *st);
void collector_stop(struct collector *c);

#endif
