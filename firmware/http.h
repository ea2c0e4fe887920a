/* http: the crew dashboard, JSON API v1 and Prometheus metrics (docs/api.md), served by
 * libmicrohttpd from its own threads inside `corridor run`.
 *
 * The server only ever reads copies of the shared state (state_get_*, render_status), so a slow
 * or hostile client can never stall the data plane or a modem thread. Admin actions go through
 * the callbacks in struct http_actions, which the composition root wires to the real subsystems;
 * they must only queue work (modem_request_reset, ...) and return quickly. */
#ifndef CORRIDOR_FIRMWARE_HTTP_H
#define CORRIDOR_FIRMWARE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "firmware/config.h"
#include "firmware/state.h"

/* What the telemetry uploader reports (the composition root copies uploader_get_stats). The
 * uploader always retries the OLDEST pending batch, so attempts/last_error belong to it. */
struct http_upload_status {
    uint64_t attempts, failures, delivered; /* since start */
    unsigned consecutive_failures;          /* failed tries of the current (oldest) batch */
    long last_http;                         /* 0 = no response */
    char last_error[200];
};

/* Admin callbacks. Each returns 0 when the action was accepted, or -1 with a message in err
 * (shown to the operator as {"error": ...}). A NULL callback makes its endpoint answer 501.
 * Called from an HTTP thread: must not block longer than a mutex-protected copy. */
struct http_actions {
    void *ctx;
    /* Force a link off (enabled=false) or give it back to the policy (enabled=true). */
    int (*link_set_enabled)(void *ctx, const char *link, bool enabled, char *err, size_t errlen);
    int (*modem_reset)(void *ctx, const char *link, char *err, size_t errlen);
    int (*modem_balance)(void *ctx, const char *link, char *err, size_t errlen);
    /* Authentication, until struct cfg_dashboard carries it: the argon2id hash made by
     * http_hash_password ("" or NULL = no password: admin endpoints refuse with 403), and whether
     * read-only views also need a login (false = open on the crew LAN, the default). */
    const char *password_hash;
    bool read_only_require_login;
    /* Session lifetime in seconds, 0 = 3600. */
    unsigned session_s;
    /* The uploader's view for /api/v1/batches (attempts and last error of the batch being
     * retried). NULL, or returning -1: those fields are null. Must only copy (mutex). */
    int (*upload_status)(void *ctx, struct http_upload_status *out);
};

struct http;
/* Listen on cfg->dashboard.listen ("host:port", "[v6]:port"; port 0 = ephemeral, see
 * http_port). state and the actions' ctx must outlive the server; actions is copied (the
 * password hash too). Returns 0, or -1 with err naming the address and what failed. */
int http_start(const struct config *cfg, struct state *st, const struct http_actions *actions,
               struct http **out, char *err, size_t errlen);
/* Stop accepting, end streams (within ~200 ms), join the server threads, free. NULL is a no-op. */
void http_stop(struct http *h);
/* The TCP port actually bound (useful with port 0). */
unsigned http_port(const struct http *h);

/* argon2id hash (libsodium, interactive limits) for the config's dashboard.password_hash.
 * Returns 0, or -1 (out of memory, empty password). */
int http_hash_password(const char *pw, char out[crypto_pwhash_STRBYTES]);

/* ---- Request parsing, exposed for the tests and the fuzz target (pure functions). ---- */
enum http_route_kind {
    HTTP_R_NOT_FOUND = 0,
    HTTP_R_ASSET, /* arg = asset path ("/", "/app.js", ...) */
    HTTP_R_STATUS,
    HTTP_R_LINKS,
    HTTP_R_POSITION,
    HTTP_R_EVENTS,
    HTTP_R_HEALTH,
    HTTP_R_COVERAGE,
    HTTP_R_BATCHES,
    HTTP_R_STREAM,
    HTTP_R_METRICS,
    HTTP_R_LOGIN,
    HTTP_R_LOGOUT,
    HTTP_R_SESSION,
    HTTP_R_DIAGNOSTICS,
    HTTP_R_LINK_DISABLE, /* arg = link name */
    HTTP_R_LINK_ENABLE,
    HTTP_R_MODEM_RESET,
    HTTP_R_MODEM_BALANCE,
};
struct http_route {
    enum http_route_kind kind;
    bool is_post;   /* the route's method is POST (otherwise GET/HEAD) */
    bool method_ok; /* the request's method matches */
    char arg[32];   /* link name or asset path; validated [A-Za-z0-9_.-], 1..31 chars */
};
/* Map method + (already percent-decoded) path to a route. Never fails: unknown = NOT_FOUND. */
void http_route_parse(const char *method, const char *path, struct http_route *out);
/* Parse a coverage bbox "min_lon,min_lat,max_lon,max_lat": four finite decimal numbers,
 * longitudes in -180..180, latitudes in -90..90, min < max, each span at most
 * HTTP_BBOX_MAX_SPAN_DEG. Returns true, or false with err saying what is wrong. */
#define HTTP_BBOX_MAX_SPAN_DEG 2.0
bool http_parse_bbox(const char *s, double out[4], char *err, size_t errlen);
/* Parse an events "since" value: decimal, no sign, fits uint64. */
bool http_parse_u64(const char *s, uint64_t *out);
/* Login body {"password": "..."} (max 256 bytes of password). Returns 0 or -1 with err. */
int http_parse_login(const char *body, size_t len, char *pw, size_t pwlen, char *err,
                     size_t errlen);
/* In-place percent-decoding of a path or query value; %00 is left literal (never a NUL byte
 * inside a C string). Returns the new length. */
size_t http_unescape(char *s);
/* Find cookie `name` in a Cookie header value; copies at most outlen-1 chars. */
bool http_cookie_get(const char *header, const char *name, char *out, size_t outlen);

#endif
