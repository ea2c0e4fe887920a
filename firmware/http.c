/* http: dashboard, JSON API v1 and /metrics. See http.h and docs/api.md.
 *
 * Threading: libmicrohttpd runs one thread per connection (bounded by CONN_LIMIT) so a
 * Server-Sent-Events stream can simply wait for its next second without busy-polling. Every
 * handler works on copies taken under the state mutex (state_get_*, render_status); nothing here
 * touches a modem or the data plane directly. Our own mutex protects only the session and
 * rate-limit tables; argon2 verification is serialised by a second mutex so concurrent logins
 * cannot multiply its 64 MiB working set. */
#include "firmware/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "firmware/dashboard/assets.h"
#include "firmware/diag.h"
#include "firmware/render.h"
#include "telemetry/coverage.h"
#include "telemetry/outbox.h"

#define SUBSYS       "http"
#define BODY_MAX     4096 /* no request of ours needs more: login is the only body */
#define CONN_LIMIT   32
#define PER_IP_LIMIT 16
#define STREAM_LIMIT 8
#define CONN_TIMEOUT 30          /* s idle before MHD closes a connection */
#define MEM_LIMIT    (32 * 1024) /* per-connection pool: bounds header size too */
#define SESSIONS     8
#define RATE_ENTRIES 32
#define RATE_BASE_MS 1000u
#define RATE_MAX_MS  300000u
#define EVENTS_MAX   STATE_EVENTS
#define COOKIE_NAME  "corridor_session"
#define CSRF_HEADER  "X-CSRF-Token"

#define COVERAGE_LIMIT_DEFAULT 5000
#define COVERAGE_LIMIT_MAX     10000
#define BATCHES_LIMIT_DEFAULT  100
#define BATCHES_LIMIT_MAX      1000
/* Map and outbox queries read sqlite and build megabytes of JSON: at most this many at once,
 * so 32 clients cannot multiply that memory (the rest get 503 + Retry-After). */
#define HEAVY_LIMIT 2
/* /api/v1/status and the event streams share one rendering for this long: however hard clients
 * poll, the shared state's mutex is taken for them at most ~10 times a second (the tunnel and
 * modem threads write through that mutex), and a busy dashboard costs little CPU. */
#define STATUS_CACHE_MS 100

struct session {
    bool used;
    char id[2 * 32 + 1];
    char csrf[2 * 32 + 1];
    uint64_t expires_ms;
};

struct rate {
    char addr[INET6_ADDRSTRLEN];
    unsigned fails;
    uint64_t next_ok_ms, last_ms;
};

struct http {
    struct MHD_Daemon *d;
    struct config cfg;
    struct state *st;
    struct http_actions act;
    char pwhash[crypto_pwhash_STRBYTES];
    unsigned session_s;
    unsigned port;
    atomic_bool stopping;
    atomic_uint streams;
    atomic_uint heavy;
    atomic_uint_fast64_t requests;
    pthread_mutex_t lock; /* sessions, rates */
    pthread_mutex_t verify_lock;
    pthread_mutex_t status_lock; /* status cache below */
    char *status_json;           /* compact JSON of status_doc(), owned */
    size_t status_len;
    uint64_t status_ms; /* mono_ms() when rendered */
    struct session sessions[SESSIONS];
    struct rate rates[RATE_ENTRIES];
};

/* Per-request context: the (capped) body collected over MHD's upload calls. */
struct req {
    size_t len;
    bool too_big;
    char body[BODY_MAX + 1];
};

/* ---------------------------------------------------------------- parsing (pure) ---- */

static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 31)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    /* "." and ".." are not names (belt and braces: there is no filesystem behind them). */
    return !(n <= 2 && s[0] == '.' && (n == 1 || s[1] == '.'));
}

void http_route_parse(const char *method, const char *path, struct http_route *out)
{
    memset(out, 0, sizeof *out);
    if (!method || !path || path[0] != '/' || strlen(path) > 256)
        return;
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0;
    static const struct {
        const char *path;
        enum http_route_kind kind;
        bool post;
    } fixed[] = {
        {"/api/v1/status", HTTP_R_STATUS, false},
        {"/api/v1/links", HTTP_R_LINKS, false},
        {"/api/v1/position", HTTP_R_POSITION, false},
        {"/api/v1/events", HTTP_R_EVENTS, false},
        {"/api/v1/health", HTTP_R_HEALTH, false},
        {"/api/v1/coverage", HTTP_R_COVERAGE, false},
        {"/api/v1/batches", HTTP_R_BATCHES, false},
        {"/api/v1/stream", HTTP_R_STREAM, false},
        {"/metrics", HTTP_R_METRICS, false},
        {"/api/v1/login", HTTP_R_LOGIN, true},
        {"/api/v1/logout", HTTP_R_LOGOUT, true},
        {"/api/v1/session", HTTP_R_SESSION, false},
        {"/api/v1/diagnostics", HTTP_R_DIAGNOSTICS, false},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        if (strcmp(path, fixed[i].path) == 0) {
            out->kind = fixed[i].kind;
            out->is_post = fixed[i].post;
            out->method_ok = fixed[i].post ? post : get;
            return;
        }
    }
    if (dashboard_asset_find(path)) {
        out->kind = HTTP_R_ASSET;
        str_copy(out->arg, path, sizeof out->arg);
        out->method_ok = get;
        return;
    }
    /* /api/v1/{links|modems}/{name}/{verb} */
    const char *rest;
    bool links;
    if (strncmp(path, "/api/v1/links/", 14) == 0) {
        rest = path + 14;
        links = true;
    } else if (strncmp(path, "/api/v1/modems/", 15) == 0) {
        rest = path + 15;
        links = false;
    } else {
        return;
    }
    const char *slash = strchr(rest, '/');
    if (!slash || !name_ok(rest, (size_t)(slash - rest)))
        return;
    const char *verb = slash + 1;
    enum http_route_kind k = HTTP_R_NOT_FOUND;
    if (links && strcmp(verb, "disable") == 0)
        k = HTTP_R_LINK_DISABLE;
    else if (links && strcmp(verb, "enable") == 0)
        k = HTTP_R_LINK_ENABLE;
    else if (!links && strcmp(verb, "reset") == 0)
        k = HTTP_R_MODEM_RESET;
    else if (!links && strcmp(verb, "balance") == 0)
        k = HTTP_R_MODEM_BALANCE;
    if (k == HTTP_R_NOT_FOUND)
        return;
    out->kind = k;
    out->is_post = true;
    out->method_ok = post;
    memcpy(out->arg, rest, (size_t)(slash - rest));
    out->arg[slash - rest] = '\0';
}

bool http_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || strlen(s) > 20)
        return false;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* One decimal number of a bbox: digits, sign, point, exponent only (strtod alone would also
 * take "nan", "inf" and hex floats). */
static bool bbox_number(const char *s, size_t n, double *out)
{
    char buf[40];
    if (n == 0 || n >= sizeof buf)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789+-.eE", s[i]))
            return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (end != buf + n || errno == ERANGE || !isfinite(v))
        return false;
    *out = v;
    return true;
}

bool http_parse_bbox(const char *s, double out[4], char *err, size_t errlen)
{
    static const char *const names[4] = {"min_lon", "min_lat", "max_lon", "max_lat"};
    if (!s || !*s) {
        snprintf(err, errlen, "query \"bbox\": missing (min_lon,min_lat,max_lon,max_lat)");
        return false;
    }
    if (strlen(s) > 160) {
        snprintf(err, errlen, "query \"bbox\": too long");
        return false;
    }
    const char *p = s;
    for (int i = 0; i < 4; i++) {
        const char *e = strchr(p, ',');
        if (i < 3 && !e) {
            snprintf(err, errlen,
                     "query \"bbox\": expected 4 comma-separated numbers "
                     "min_lon,min_lat,max_lon,max_lat");
            return false;
        }
        if (i == 3) {
            if (e) {
                snprintf(err, errlen, "query \"bbox\": more than 4 numbers");
                return false;
            }
            e = p + strlen(p);
        }
        if (!bbox_number(p, (size_t)(e - p), &out[i])) {
            snprintf(err, errlen, "query \"bbox\": %s \"%.*s\" is not a finite decimal number",
                     names[i], (int)((e - p) > 30 ? 30 : (e - p)), p);
            return false;
        }
        p = e + 1;
    }
    for (int i = 0; i < 4; i++) {
        double lim = i % 2 == 0 ? 180.0 : 90.0;
        if (out[i] < -lim || out[i] > lim) {
            snprintf(err, errlen, "query \"bbox\": %s %.6g out of -%.0f..%.0f", names[i], out[i],
                     lim, lim);
            return false;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (!(out[i] < out[i + 2])) {
            snprintf(err, errlen, "query \"bbox\": %s must be less than %s (inverted box)",
                     names[i], names[i + 2]);
            return false;
        }
        if (out[i + 2] - out[i] > HTTP_BBOX_MAX_SPAN_DEG) {
            snprintf(err, errlen, "query \"bbox\": area too large: %s span %.3g degrees (max %.1f)",
                     i == 0 ? "longitude" : "latitude", out[i + 2] - out[i],
                     HTTP_BBOX_MAX_SPAN_DEG);
            return false;
        }
    }
    return true;
}

int http_parse_login(const char *body, size_t len, char *pw, size_t pwlen, char *err, size_t errlen)
{
    json_error_t je;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        snprintf(err, errlen, "login body: malformed JSON at line %d column %d: %s", je.line,
                 je.column, je.text);
        return -1;
    }
    int rc = -1;
    json_t *p = json_is_object(o) ? json_object_get(o, "password") : NULL;
    if (!json_is_object(o)) {
        snprintf(err, errlen, "login body: expected an object {\"password\": \"...\"}");
    } else if (!json_is_string(p)) {
        snprintf(err, errlen, "login body: \"password\" must be a string");
    } else if (json_string_length(p) == 0 || json_string_length(p) >= pwlen ||
               json_string_length(p) > 256) {
        snprintf(err, errlen, "login body: \"password\" must be 1..256 bytes");
    } else if (strlen(json_string_value(p)) != json_string_length(p)) {
        snprintf(err, errlen, "login body: \"password\" contains a NUL byte");
    } else {
        str_copy(pw, json_string_value(p), pwlen);
        rc = 0;
    }
    json_decref(o);
    return rc;
}

bool http_cookie_get(const char *header, const char *name, char *out, size_t outlen)
{
    if (!header || !name || outlen == 0)
        return false;
    size_t nl = strlen(name);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        if (!end)
            end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq && (size_t)(eq - p) == nl && memcmp(p, name, nl) == 0) {
            size_t vl = (size_t)(end - eq - 1);
            if (vl >= outlen)
                return false; /* a truncated id would never match: refuse outright */
            memcpy(out, eq + 1, vl);
            out[vl] = '\0';
            return true;
        }
        p = end;
    }
    return false;
}

int http_hash_password(const char *pw, char out[crypto_pwhash_STRBYTES])
{
    if (!pw || !*pw || sodium_init() < 0)
        return -1;
    return crypto_pwhash_str(out, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                             crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0
               ? 0
               : -1;
}

/* ---------------------------------------------------------------- responses ---- */

static void common_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
}

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned code, const char *type,
                                char *buf, size_t len, enum MHD_ResponseMemoryMode mode,
                                const char *hdr_name, const char *hdr_value)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, buf, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(buf);
        return MHD_NO;
    }
    common_headers(r);
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (hdr_name)
        MHD_add_response_header(r, hdr_name, hdr_value);
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

/* Takes ownership of o. */
static enum MHD_Result send_json_h(struct MHD_Connection *c, unsigned code, json_t *o,
                                   const char *hdr_name, const char *hdr_value)
{
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(o);
    if (!s)
        return MHD_NO;
    size_t n = strlen(s);
    return send_buf(c, code, "application/json", s, n, MHD_RESPMEM_MUST_FREE, hdr_name, hdr_value);
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned code, json_t *o)
{
    return send_json_h(c, code, o, NULL, NULL);
}

static enum MHD_Result send_error_h(struct MHD_Connection *c, unsigned code, const char *hn,
                                    const char *hv, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static enum MHD_Result send_error_h(struct MHD_Connection *c, unsigned code, const char *hn,
                                    const char *hv, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *m = json_string(msg);
    if (!m) {
        /* Not UTF-8 (a quoted query value can be any bytes): jansson refuses it, so the
         * message would vanish. Keep it, with the offending bytes as '?'. */
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        m = json_string(msg);
    }
    json_t *o = json_object();
    json_object_set_new(o, "error", m);
    return send_json_h(c, code, o, hn, hv);
}
#define send_error(c, code, ...) send_error_h(c, code, NULL, NULL, __VA_ARGS__)

/* ---------------------------------------------------------------- helpers ---- */

static void client_addr(struct MHD_Connection *c, char *out, size_t n)
{
    str_copy(out, "unknown", n);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)n);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)n);
}

static const struct cfg_link *find_link(const struct http *h, const char *name)
{
    for (unsigned i = 0; i < h->cfg.nlinks; i++)
        if (strcmp(h->cfg.links[i].name, name) == 0)
            return &h->cfg.links[i];
    return NULL;
}

/* One word for the crew per link (docs/api.md "display_state"). */
static const char *display_state(json_t *link)
{
    json_t *m = json_object_get(link, "modem");
    json_t *p = json_object_get(link, "policy");
    json_t *t = json_object_get(link, "tunnel");
    const char *ms = json_string_value(json_object_get(m, "state"));
    const char *ps = json_string_value(json_object_get(p, "state"));
    const char *ts = json_string_value(json_object_get(t, "state"));
    if (ms && strcmp(ms, "recover") == 0)
        return "resetting";
    if (ps && strcmp(ps, "disabled-predicted") == 0)
        return "disabled-predicted";
    if ((ps && strcmp(ps, "disabled-live") == 0) || (ts && strcmp(ts, "disabled") == 0))
        return "disabled";
    if (ps && strcmp(ps, "draining") == 0)
        return "draining";
    if (ts)
        return strcmp(ts, "up") == 0 ? "up" : "down";
    /* No tunnel (monitor only): a registered, polled modem counts as up. */
    const char *reg = json_string_value(json_object_get(m, "registration"));
    if (ms && strcmp(ms, "poll") == 0 && reg &&
        (strcmp(reg, "home") == 0 || strcmp(reg, "roaming") == 0))
        return "up";
    return "down";
}

/* render_status plus the per-link display_state and server time (new ref). */
static json_t *status_doc(struct http *h)
{
    json_t *o = render_status(h->st, h->cfg.vehicle_id);
    json_t *links = json_object_get(o, "links");
    size_t i;
    json_t *l;
    json_array_foreach(links, i, l)
    {
        json_object_set_new(l, "display_state", json_string(display_state(l)));
    }
    json_object_set_new(o, "wall_ms", json_integer((json_int_t)wall_ms()));
    return o;
}

/* A malloc'd copy (caller frees) of the status document as compact JSON, rendered at most every
 * STATUS_CACHE_MS. One render at a time: concurrent requests wait for it (tens of microseconds)
 * rather than all rendering at once. NULL when out of memory. */
static char *status_text(struct http *h, size_t *len)
{
    pthread_mutex_lock(&h->status_lock);
    uint64_t now = mono_ms();
    if (!h->status_json || now - h->status_ms >= STATUS_CACHE_MS) {
        json_t *o = status_doc(h);
        char *js = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
        json_decref(o);
        if (js) {
            free(h->status_json);
            h->status_json = js;
            h->status_len = strlen(js);
            h->status_ms = now;
        }
    }
    char *copy = h->status_json ? malloc(h->status_len + 1) : NULL;
    if (copy) {
        memcpy(copy, h->status_json, h->status_len + 1);
        *len = h->status_len;
    }
    pthread_mutex_unlock(&h->status_lock);
    return copy;
}

/* Growing text buffer with a hard cap (metrics). */
struct sbuf {
    char *p;
    size_t len, cap;
    size_t max; /* 0 = 4 MiB */
    bool overflow;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    if (b->overflow)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->overflow = true;
            return;
        }
        if (b->p && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap ? b->cap * 2 : 16384;
        while (ncap < b->len + (size_t)n + 1)
            ncap *= 2;
        if (ncap > (b->max ? b->max : 4u << 20)) {
            b->overflow = true;
            return;
        }
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->overflow = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

/* Prometheus label value escaping: backslash, quote and newline. */
static void label_esc(const char *in, char *out, size_t n)
{
    size_t o = 0;
    for (; *in && o + 3 < n; in++) {
        if (*in == '\\' || *in == '"') {
            out[o++] = '\\';
            out[o++] = *in;
        } else if (*in == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *in;
        }
    }
    out[o] = '\0';
}

/* Sample value: integers exactly (counters), others with 15 significant digits so 45.5 ms
 * prints as 0.0455 rather than 0.045499999999999999. */
static const char *num(double v, char buf[40])
{
    if (v == floor(v) && fabs(v) < 1e18)
        snprintf(buf, 40, "%.0f", v);
    else
        snprintf(buf, 40, "%.15g", v);
    return buf;
}

static void metric_head(struct sbuf *b, const char *name, const char *type, const char *help)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* ---------------------------------------------------------------- handlers ---- */

static enum MHD_Result h_metrics(struct http *h, struct MHD_Connection *c)
{
    struct link_state *links = calloc(CFG_MAX_LINKS, sizeof *links);
    if (!links)
        return send_error(c, 503, "metrics: out of memory");
    unsigned n = state_get_links(h->st, links, CFG_MAX_LINKS);
    struct state_position pos;
    state_get_position(h->st, &pos);
    struct state_tunnel tun;
    state_get_tunnel(h->st, &tun);
    uint64_t now = mono_ms();
    char lab[CFG_MAX_LINKS][80];
    for (unsigned i = 0; i < n; i++)
        label_esc(links[i].name, lab[i], sizeof lab[i]);
    struct sbuf b = {0};
    char nb[40];

    metric_head(&b, "corridor_uptime_seconds", "gauge", "Seconds since corridor run started.");
    sb_printf(&b, "corridor_uptime_seconds %.3f\n",
              (double)(now - state_started_mono_ms(h->st)) / 1000.0);
    metric_head(&b, "corridor_events_total", "counter", "Events recorded since start.");
    sb_printf(&b, "corridor_events_total %" PRIu64 "\n", state_last_event_seq(h->st));
    metric_head(&b, "corridor_http_requests_total", "counter", "Dashboard HTTP requests served.");
    sb_printf(&b, "corridor_http_requests_total %" PRIuFAST64 "\n",
              (uint_fast64_t)atomic_load(&h->requests));

    /* Per link tunnel view. */
    struct {
        const char *name, *type, *help;
        int which;
    } lm[] = {
        {"corridor_link_up", "gauge", "1 if the tunnel path over the link is up.", 0},
        {"corridor_link_rtt_seconds", "gauge", "Smoothed round-trip time over the link.", 1},
        {"corridor_link_rtt_variance_seconds", "gauge", "Round-trip time variation.", 2},
        {"corridor_link_loss_ratio", "gauge", "Estimated packet loss (0..1).", 3},
        {"corridor_link_capacity_bytes_per_second", "gauge", "Estimated capacity.", 4},
        {"corridor_link_weight", "gauge", "Scheduler weight (policy decision when known).", 5},
        {"corridor_link_tx_bytes_total", "counter", "Bytes sent over the link.", 6},
        {"corridor_link_rx_bytes_total", "counter", "Bytes received over the link.", 7},
        {"corridor_link_tx_packets_total", "counter", "Packets sent over the link.", 8},
        {"corridor_link_rx_packets_total", "counter", "Packets received over the link.", 9},
        {"corridor_link_resent_packets_total", "counter", "Packets resent over the link.", 10},
    };
    for (size_t m = 0; m < sizeof lm / sizeof lm[0]; m++) {
        metric_head(&b, lm[m].name, lm[m].type, lm[m].help);
        for (unsigned i = 0; i < n; i++) {
            const struct state_link_tunnel *t = &links[i].tunnel;
            const struct state_link_policy *p = &links[i].policy;
            double v = NAN;
            switch (lm[m].which) {
            case 0:
                v = t->valid && strcmp(t->state, "up") == 0 ? 1 : 0;
                break;
            case 1:
                v = t->valid ? t->srtt_ms / 1000.0 : NAN;
                break;
            case 2:
                v = t->valid ? t->rttvar_ms / 1000.0 : NAN;
                break;
            case 3:
                v = t->valid ? t->loss : NAN;
                break;
            case 4:
                v = t->valid ? t->capacity_bps / 8.0 : NAN;
                break;
            case 5:
                v = p->valid ? p->weight : t->valid ? t->weight : NAN;
                break;
            case 6:
                v = t->valid ? (double)t->tx_bytes : 0;
                break;
            case 7:
                v = t->valid ? (double)t->rx_bytes : 0;
                break;
            case 8:
                v = t->valid ? (double)t->tx_packets : 0;
                break;
            case 9:
                v = t->valid ? (double)t->rx_packets : 0;
                break;
            default:
                v = t->valid ? (double)t->resent_packets : 0;
                break;
            }
            if (isfinite(v))
                sb_printf(&b, "%s{link=\"%s\"} %s\n", lm[m].name, lab[i], num(v, nb));
        }
    }

    /* Per link modem view. */
    metric_head(&b, "corridor_modem_info", "gauge",
                "Modem identity and state as labels (value always 1).");
    for (unsigned i = 0; i < n; i++) {
        if (!links[i].modem_valid)
            continue;
        const struct modem_sample *s = &links[i].modem;
        char op[80], st[32];
        label_esc(s->oper_name, op, sizeof op);
        label_esc(modem_state_name(s->state), st, sizeof st);
        sb_printf(&b,
                  "corridor_modem_info{link=\"%s\",operator=\"%s\",network_type=\"%s\","
                  "registration=\"%s\",state=\"%s\"} 1\n",
                  lab[i], op, modem_net_name(s->net), modem_reg_name(s->reg), st);
    }
    struct {
        const char *name, *type, *help;
        int which;
    } mm[] = {
        {"corridor_modem_rssi_dbm", "gauge", "Received signal strength (dBm).", 0},
        {"corridor_modem_rsrp_dbm", "gauge", "LTE reference signal received power (dBm).", 1},
        {"corridor_modem_rsrq_db", "gauge", "LTE reference signal received quality (dB).", 2},
        {"corridor_modem_sinr_db", "gauge", "Signal to interference plus noise ratio (dB).", 3},
        {"corridor_modem_balance", "gauge", "SIM balance from USSD (account currency).", 4},
        {"corridor_modem_sample_age_seconds", "gauge", "Age of the latest modem sample.", 5},
        {"corridor_modem_timeouts_total", "counter", "AT commands that timed out.", 6},
        {"corridor_modem_soft_resets_total", "counter", "Modem soft resets.", 7},
        {"corridor_modem_power_cycles_total", "counter", "Modem power cycles.", 8},
        {"corridor_modem_vanished_total", "counter", "Times the modem port disappeared.", 9},
    };
    for (size_t m = 0; m < sizeof mm / sizeof mm[0]; m++) {
        metric_head(&b, mm[m].name, mm[m].type, mm[m].help);
        for (unsigned i = 0; i < n; i++) {
            if (!links[i].modem_valid)
                continue;
            const struct modem_sample *s = &links[i].modem;
            double v;
            switch (mm[m].which) {
            case 0:
                v = s->sig.rssi_dbm;
                break;
            case 1:
                v = s->sig.rsrp_dbm;
                break;
            case 2:
                v = s->sig.rsrq_db;
                break;
            case 3:
                v = s->sig.sinr_db;
                break;
            case 4:
                v = s->balance.valid && s->balance.amount_valid ? s->balance.amount : NAN;
                break;
            case 5:
                v = (double)(now - s->mono_ms) / 1000.0;
                break;
            case 6:
                v = s->timeouts;
                break;
            case 7:
                v = s->soft_resets;
                break;
            case 8:
                v = s->power_cycles;
                break;
            default:
                v = s->vanished;
                break;
            }
            if (isfinite(v))
                sb_printf(&b, "%s{link=\"%s\"} %s\n", mm[m].name, lab[i], num(v, nb));
        }
    }

    metric_head(&b, "corridor_position_fix", "gauge", "1 if the position is known.");
    sb_printf(&b, "corridor_position_fix %d\n", pos.valid ? 1 : 0);
    if (pos.valid) {
        metric_head(&b, "corridor_position_speed_kmh", "gauge", "Vehicle speed (km/h).");
        sb_printf(&b, "corridor_position_speed_kmh %s\n", num(pos.speed_kmh, nb));
        metric_head(&b, "corridor_position_latitude_degrees", "gauge", "Latitude (WGS84).");
        sb_printf(&b, "corridor_position_latitude_degrees %s\n", num(pos.lat, nb));
        metric_head(&b, "corridor_position_longitude_degrees", "gauge", "Longitude (WGS84).");
        sb_printf(&b, "corridor_position_longitude_degrees %s\n", num(pos.lon, nb));
    }
    metric_head(&b, "corridor_ahead_dead_zone_seconds", "gauge",
                "Predicted time until the operator's next dead zone on the route.");
    for (unsigned k = 0; k < pos.n_ahead && k < 8; k++) {
        char op[40];
        label_esc(pos.ahead[k].op, op, sizeof op);
        if (isfinite(pos.ahead[k].dead_in_s))
            sb_printf(&b, "corridor_ahead_dead_zone_seconds{operator=\"%s\"} %s\n", op,
                      num(pos.ahead[k].dead_in_s, nb));
    }
    metric_head(&b, "corridor_ahead_dead_zone_meters", "gauge",
                "Predicted distance to the operator's next dead zone on the route.");
    for (unsigned k = 0; k < pos.n_ahead && k < 8; k++) {
        char op[40];
        label_esc(pos.ahead[k].op, op, sizeof op);
        if (isfinite(pos.ahead[k].dead_in_m))
            sb_printf(&b, "corridor_ahead_dead_zone_meters{operator=\"%s\"} %s\n", op,
                      num(pos.ahead[k].dead_in_m, nb));
    }
    if (tun.valid) {
        metric_head(&b, "corridor_tunnel_connected", "gauge", "1 if a hub is connected.");
        sb_printf(&b, "corridor_tunnel_connected %d\n",
                  strcmp(tun.hub_state, "connected") == 0 ? 1 : 0);
        metric_head(&b, "corridor_tunnel_hub_switches_total", "counter", "Hub failovers.");
        sb_printf(&b, "corridor_tunnel_hub_switches_total %u\n", tun.hub_switches);
        metric_head(&b, "corridor_tunnel_packets_total", "counter", "Packets through the TUN.");
        sb_printf(&b, "corridor_tunnel_packets_total{direction=\"rx\"} %" PRIu64 "\n",
                  tun.tun_rx_packets);
        sb_printf(&b, "corridor_tunnel_packets_total{direction=\"tx\"} %" PRIu64 "\n",
                  tun.tun_tx_packets);
        metric_head(&b, "corridor_tunnel_dropped_packets_total", "counter",
                    "Tunnel packets dropped, by reason.");
        sb_printf(&b, "corridor_tunnel_dropped_packets_total{reason=\"auth\"} %" PRIu64 "\n",
                  tun.dropped_auth);
        sb_printf(&b, "corridor_tunnel_dropped_packets_total{reason=\"replay\"} %" PRIu64 "\n",
                  tun.dropped_replay);
        sb_printf(&b, "corridor_tunnel_dropped_packets_total{reason=\"other\"} %" PRIu64 "\n",
                  tun.dropped_other);
    }
    free(links);
    if (b.overflow || !b.p) {
        free(b.p);
        return send_error(c, 503, "metrics: rendering failed (out of memory)");
    }
    return send_buf(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len,
                    MHD_RESPMEM_MUST_FREE, NULL, NULL);
}

static json_t *event_json(const struct state_event *e)
{
    json_t *o = json_object();
    json_object_set_new(o, "seq", json_integer((json_int_t)e->seq));
    json_object_set_new(o, "wall_ms", json_integer((json_int_t)e->wall_ms));
    json_object_set_new(o, "source", json_string(e->source));
    json_object_set_new(o, "kind", json_string(e->kind));
    json_object_set_new(o, "text", json_string(e->text));
    return o;
}

static enum MHD_Result h_events(struct http *h, struct MHD_Connection *c)
{
    uint64_t since = 0, limit = 100;
    const char *s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
    if (s && !http_parse_u64(s, &since))
        return send_error(c, 400,
                          "events: query \"since\": expected an unsigned integer, got "
                          "\"%.40s\"",
                          s);
    const char *l = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    if (l && (!http_parse_u64(l, &limit) || limit == 0 || limit > EVENTS_MAX))
        return send_error(c, 400, "events: query \"limit\": expected 1..%d, got \"%.40s\"",
                          EVENTS_MAX, l);
    struct state_event *ev = calloc((size_t)limit, sizeof *ev);
    if (!ev)
        return send_error(c, 503, "events: out of memory");
    unsigned n = state_get_events(h->st, since, ev, (unsigned)limit);
    json_t *arr = json_array();
    for (unsigned i = 0; i < n; i++)
        json_array_append_new(arr, event_json(&ev[i]));
    free(ev);
    json_t *o = json_object();
    json_object_set_new(o, "last_seq", json_integer((json_int_t)state_last_event_seq(h->st)));
    json_object_set_new(o, "events", arr);
    return send_json(c, 200, o);
}

/* "Key:   value kB" from /proc/self/status. */
static long long proc_status_field(const char *key)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (!f)
        return -1;
    char line[256];
    long long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = strtoll(line + kl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

static enum MHD_Result h_health(struct http *h, struct MHD_Connection *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "version", json_string(CORRIDOR_VERSION));
    json_object_set_new(
        o, "uptime_s",
        json_integer((json_int_t)((mono_ms() - state_started_mono_ms(h->st)) / 1000)));
    long long rss_kb = proc_status_field("VmRSS");
    long long threads = proc_status_field("Threads");
    json_object_set_new(o, "rss_bytes", rss_kb >= 0 ? json_integer(rss_kb * 1024) : json_null());
    json_object_set_new(o, "threads", threads >= 0 ? json_integer(threads) : json_null());
    double la[3];
    FILE *f = fopen("/proc/loadavg", "re");
    if (f && fscanf(f, "%lf %lf %lf", &la[0], &la[1], &la[2]) == 3) {
        json_t *a = json_array();
        for (int i = 0; i < 3; i++)
            json_array_append_new(a, json_real(la[i]));
        json_object_set_new(o, "load", a);
    } else {
        json_object_set_new(o, "load", json_null());
    }
    if (f)
        fclose(f);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    json_object_set_new(o, "cpus", json_integer(ncpu > 0 ? ncpu : 1));
    json_object_set_new(o, "http_streams", json_integer(atomic_load(&h->streams)));
    json_object_set_new(o, "http_requests", json_integer((json_int_t)atomic_load(&h->requests)));
    return send_json(c, 200, o);
}

/* ---- coverage map and telemetry outbox (sqlite, read-only connections) ---- */

/* A JSON number, or null when unknown. */
static void sb_num(struct sbuf *b, const char *name, double v, int prec)
{
    if (isfinite(v))
        sb_printf(b, ",\"%s\":%.*f", name, prec, v);
    else
        sb_printf(b, ",\"%s\":null", name);
}

static void sb_range(struct sbuf *b, const char *name, bool known, const double r[2])
{
    if (!known) {
        sb_printf(b, ",\"%s\":null", name);
        return;
    }
    sb_printf(b, ",\"%s\":[", name);
    for (int i = 0; i < 2; i++) {
        if (isfinite(r[i]))
            sb_printf(b, "%s%.0f", i ? "," : "", r[i]);
        else
            sb_printf(b, "%snull", i ? "," : "");
    }
    sb_printf(b, "]");
}

/* Limit query parameter: absent = def, else 1..max. */
static bool limit_param(struct MHD_Connection *c, uint64_t def, uint64_t max, uint64_t *out,
                        const char **bad)
{
    const char *l = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    *out = def;
    *bad = l;
    return !l || (http_parse_u64(l, out) && *out >= 1 && *out <= max);
}

static bool heavy_enter(struct http *h)
{
    if (atomic_fetch_add(&h->heavy, 1) >= HEAVY_LIMIT) {
        atomic_fetch_sub(&h->heavy, 1);
        return false;
    }
    return true;
}

static void heavy_leave(struct http *h)
{
    atomic_fetch_sub(&h->heavy, 1);
}

/* One GeoJSON Feature per (cell, operator); operator names are [A-Za-z0-9 ._-] (the map
 * refuses others), so they need no escaping. */
static int cov_feature(void *ctx, const struct cov_area_cell *ac)
{
    struct sbuf *b = ctx;
    const struct cov_cell *c = &ac->c;
    sb_printf(b,
              "%s{\"type\":\"Feature\",\"id\":\"%lld/%s\",\"bbox\":[%.6f,%.6f,%.6f,%.6f],"
              "\"geometry\":{\"type\":\"Point\",\"coordinates\":[%.6f,%.6f]},"
              "\"properties\":{\"cell\":%lld,\"operator\":\"%s\",\"samples\":%.2f,\"trips\":%u,"
              "\"last_seen\":%lld,\"net\":\"%s\"",
              b->len && b->p[b->len - 1] != '[' ? "," : "", (long long)c->key, c->op, ac->lon_min,
              ac->lat_min, ac->lon_max, ac->lat_max, c->lon, c->lat, (long long)c->key, c->op, c->n,
              c->trips, (long long)c->last_seen, cov_net_name(c->net));
    sb_num(b, "quality", c->quality, 3);
    sb_printf(b, ",\"dead\":%s", c->dead ? "true" : "false");
    sb_num(b, "outage", c->outage, 3);
    sb_num(b, "rsrp_dbm", c->rsrp, 1);
    sb_range(b, "rsrp_median_dbm", ac->rsrp_med_known, ac->rsrp_med);
    sb_num(b, "rsrp_bad", c->rsrp_bad, 2);
    sb_num(b, "sinr_db", c->sinr, 1);
    sb_range(b, "sinr_median_db", ac->sinr_med_known, ac->sinr_med);
    sb_num(b, "goodput_kbps", c->goodput_kbps, 0);
    sb_range(b, "goodput_median_kbps", ac->goodput_med_known, ac->goodput_med);
    sb_num(b, "goodput_bad", c->goodput_bad, 2);
    sb_num(b, "rtt_ms", c->rtt_ms, 1);
    sb_num(b, "loss", c->loss, 4);
    sb_printf(b, "}}");
    return b->overflow ? -1 : 0;
}

/* Why open the map per request instead of asking the steer thread's struct coverage_map: its
 * mutex is held by coverage_predict() and by every 10 s commit, so a dashboard query through it
 * would either wait behind the steer thread or (worse) make the steer thread wait behind a
 * multi-megabyte answer. A separate read-only sqlite connection in WAL mode shares no lock
 * with it; opening one costs well under a millisecond, and a map that was set aside as corrupt
 * and recreated is picked up by the next request without any hand-over. */
static enum MHD_Result h_coverage(struct http *h, struct MHD_Connection *c)
{
    double bbox[4];
    char err[256];
    const char *bs = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "bbox");
    if (!http_parse_bbox(bs, bbox, err, sizeof err))
        return send_error(c, 400, "coverage: %s", err);
    const char *op = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "operator");
    if (op) {
        size_t n = strlen(op);
        bool ok = n > 0 && n < COV_OP_MAX;
        for (size_t i = 0; ok && i < n; i++)
            ok = (op[i] >= 'a' && op[i] <= 'z') || (op[i] >= 'A' && op[i] <= 'Z') ||
                 (op[i] >= '0' && op[i] <= '9') || strchr(" ._-", op[i]) != NULL;
        if (!ok)
            return send_error(c, 400,
                              "coverage: query \"operator\": expected 1..%d of [A-Za-z0-9 ._-]",
                              COV_OP_MAX - 1);
    }
    uint64_t limit;
    const char *bad;
    if (!limit_param(c, COVERAGE_LIMIT_DEFAULT, COVERAGE_LIMIT_MAX, &limit, &bad))
        return send_error(c, 400, "coverage: query \"limit\": expected 1..%d, got \"%.40s\"",
                          COVERAGE_LIMIT_MAX, bad);
    if (!h->cfg.coverage.enabled)
        return send_error(c, 404, "coverage: the coverage map is off (coverage.enabled=false)");
    if (!heavy_enter(h))
        return send_error_h(c, 503, "Retry-After", "1", "coverage: %d map queries running already",
                            HEAVY_LIMIT);
    char path[CFG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/coverage.db", h->cfg.data_dir);
    struct cov_area_query q = {
        .bbox = {bbox[0], bbox[1], bbox[2], bbox[3]}, .op = op, .limit = (unsigned)limit};
    struct cov_area_result res;
    /* ~450 bytes per feature: 10000 features stay under the 8 MiB cap */
    struct sbuf f = {.max = 8u << 20};
    sb_printf(&f, "[");
    int rc = coverage_query_area(path, &q, cov_feature, &f, &res, err, sizeof err);
    heavy_leave(h);
    if (rc < 0 || f.overflow) {
        free(f.p);
        if (f.overflow)
            return send_error(c, 503, "coverage: answer too large (out of memory)");
        return send_error(c, 500, "coverage: %s", err);
    }
    struct sbuf b = {.max = 9u << 20};
    sb_printf(&b, "{\"type\":\"FeatureCollection\",\"bbox\":[%.6f,%.6f,%.6f,%.6f]", bbox[0],
              bbox[1], bbox[2], bbox[3]);
    sb_printf(&b, ",\"available\":%s", rc == COV_QUERY_NO_MAP ? "false" : "true");
    sb_num(&b, "cell_m", rc == COV_QUERY_NO_MAP ? NAN : res.cell_m, 3);
    sb_printf(&b, ",\"operators\":[");
    for (unsigned i = 0; i < res.n_ops; i++)
        sb_printf(&b, "%s\"%s\"", i ? "," : "", res.ops[i]);
    sb_printf(&b, "],\"count\":%u,\"limit\":%" PRIu64 ",\"truncated\":%s,\"features\":%s]}",
              res.cells, limit, res.truncated ? "true" : "false", f.p ? f.p : "[");
    free(f.p);
    if (b.overflow || !b.p) {
        free(b.p);
        return send_error(c, 503, "coverage: answer too large (out of memory)");
    }
    return send_buf(c, 200, "application/geo+json", b.p, b.len, MHD_RESPMEM_MUST_FREE, NULL, NULL);
}

static json_t *ms_or_null(int64_t ms)
{
    return ms >= 0 ? json_integer((json_int_t)ms) : json_null();
}

static enum MHD_Result h_batches(struct http *h, struct MHD_Connection *c)
{
    uint64_t limit;
    const char *bad;
    if (!limit_param(c, BATCHES_LIMIT_DEFAULT, BATCHES_LIMIT_MAX, &limit, &bad))
        return send_error(c, 400, "batches: query \"limit\": expected 1..%d, got \"%.40s\"",
                          BATCHES_LIMIT_MAX, bad);
    if (!h->cfg.telemetry.enabled)
        return send_error(c, 404, "batches: telemetry is off (telemetry.enabled=false)");
    if (!heavy_enter(h))
        return send_error_h(c, 503, "Retry-After", "1",
                            "batches: %d outbox queries running already", HEAVY_LIMIT);
    struct outbox_batch_info *bi = calloc((size_t)limit, sizeof *bi);
    if (!bi) {
        heavy_leave(h);
        return send_error(c, 503, "batches: out of memory");
    }
    char path[CFG_PATH_MAX + 32], err[300];
    snprintf(path, sizeof path, "%s/outbox.db", h->cfg.data_dir);
    unsigned n = 0;
    struct outbox_stats os;
    int rc = outbox_list_batches(path, bi, (unsigned)limit, &n, &os, err, sizeof err);
    heavy_leave(h);
    if (rc < 0) {
        free(bi);
        return send_error(c, 500, "batches: %s", err);
    }
    struct http_upload_status up;
    memset(&up, 0, sizeof up);
    bool have_up = h->act.upload_status && h->act.upload_status(h->act.ctx, &up) == 0;
    up.last_error[sizeof up.last_error - 1] = '\0';
    /* The uploader works head-of-line: its failures belong to the oldest pending batch. */
    uint64_t oldest_pending = 0;
    for (unsigned i = 0; i < n; i++)
        if (bi[i].state == OUTBOX_BATCH_PENDING || bi[i].state == OUTBOX_BATCH_THINNED)
            oldest_pending = bi[i].seq; /* newest first: the last one seen is the oldest */
    json_t *arr = json_array();
    for (unsigned i = 0; i < n; i++) {
        const struct outbox_batch_info *b = &bi[i];
        bool pending = b->state == OUTBOX_BATCH_PENDING || b->state == OUTBOX_BATCH_THINNED;
        json_t *o = json_object();
        json_object_set_new(o, "seq", json_integer((json_int_t)b->seq));
        json_object_set_new(o, "state", json_string(outbox_batch_state_name(b->state)));
        json_object_set_new(o, "t_first_ms", json_integer(b->t_first_ms));
        json_object_set_new(o, "t_last_ms", json_integer(b->t_last_ms));
        json_object_set_new(o, "created_ms", json_integer(b->created_ms));
        json_object_set_new(o, "delivered_ms", ms_or_null(b->delivered_ms));
        json_object_set_new(o, "records", json_integer(b->n_records));
        json_object_set_new(o, "bytes", json_integer((json_int_t)b->body_bytes));
        json_object_set_new(o, "raw_bytes", json_integer((json_int_t)b->raw_bytes));
        bool head = have_up && pending && b->seq == oldest_pending;
        json_object_set_new(o, "attempts",
                            !have_up  ? json_null()
                            : head    ? json_integer(up.consecutive_failures)
                            : pending ? json_integer(0)
                                      : json_null());
        json_object_set_new(o, "last_error",
                            head && up.consecutive_failures && up.last_error[0]
                                ? json_string(up.last_error)
                                : json_null());
        json_array_append_new(arr, o);
    }
    free(bi);
    json_t *o = json_object();
    json_object_set_new(o, "available", json_boolean(rc == 0));
    uint64_t quota = (uint64_t)h->cfg.telemetry.quota_mb << 20;
    if (!quota)
        quota = 512ull << 20; /* the outbox's own default */
    json_object_set_new(o, "quota_bytes", json_integer((json_int_t)quota));
    uint64_t used = os.pending_bytes + os.undelivered_bytes;
    json_object_set_new(o, "used_bytes", json_integer((json_int_t)used));
    json_object_set_new(o, "quota_used", json_real((double)used / (double)quota));
    json_object_set_new(o, "pending_records", json_integer((json_int_t)os.pending_records));
    json_object_set_new(o, "pending_bytes", json_integer((json_int_t)os.pending_bytes));
    json_object_set_new(o, "pending_batches", json_integer((json_int_t)os.undelivered));
    json_object_set_new(o, "pending_batch_bytes", json_integer((json_int_t)os.undelivered_bytes));
    json_object_set_new(o, "uploaded_kept", json_integer((json_int_t)os.delivered));
    json_object_set_new(o, "thinned_total", json_integer((json_int_t)os.thinned));
    json_object_set_new(o, "dropped_total", json_integer((json_int_t)os.dropped));
    json_object_set_new(o, "rejected_total", json_integer((json_int_t)os.rejected));
    json_object_set_new(o, "next_seq", json_integer((json_int_t)os.next_seq));
    json_object_set_new(o, "last_cut_ms", ms_or_null(rc == 0 ? os.last_cut_ms : -1));
    if (have_up) {
        json_t *u = json_object();
        json_object_set_new(u, "attempts", json_integer((json_int_t)up.attempts));
        json_object_set_new(u, "failures", json_integer((json_int_t)up.failures));
        json_object_set_new(u, "delivered", json_integer((json_int_t)up.delivered));
        json_object_set_new(u, "consecutive_failures", json_integer(up.consecutive_failures));
        json_object_set_new(u, "last_http",
                            up.last_http ? json_integer(up.last_http) : json_null());
        json_object_set_new(u, "last_error",
                            up.last_error[0] ? json_string(up.last_error) : json_null());
        json_object_set_new(o, "upload", u);
    } else {
        json_object_set_new(o, "upload", json_null());
    }
    json_object_set_new(o, "limit", json_integer((json_int_t)limit));
    json_object_set_new(o, "batches", arr);
    return send_json(c, 200, o);
}

/* ---- Server-Sent Events ---- */

struct stream {
    struct http *h;
    char *buf;
    size_t len, off;
    uint64_t next_ms;
    bool first;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    struct stream *s = cls;
    struct http *h = s->h;
    if (s->off >= s->len) {
        free(s->buf);
        s->buf = NULL;
        s->len = s->off = 0;
        /* Wait for the next tick in short steps so http_stop is never held up. */
        for (;;) {
            if (atomic_load(&h->stopping))
                return MHD_CONTENT_READER_END_OF_STREAM;
            uint64_t now = mono_ms();
            if (now >= s->next_ms)
                break;
            uint64_t d = s->next_ms - now;
            usleep((useconds_t)(d > 100 ? 100000 : d * 1000));
        }
        uint64_t now = mono_ms();
        s->next_ms = s->next_ms + 1000 > now ? s->next_ms + 1000 : now + 1000;
        size_t jl = 0;
        char *js = status_text(h, &jl);
        if (!js)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        s->buf = malloc(jl + 64);
        if (!s->buf) {
            free(js);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        /* JSON_COMPACT output has no raw newlines, so one data: line carries it. */
        int n = snprintf(s->buf, jl + 64, "%sevent: status\ndata: %s\n\n",
                         s->first ? "retry: 2000\n" : "", js);
        free(js);
        s->first = false;
        s->len = n > 0 ? (size_t)n : 0;
    }
    size_t k = s->len - s->off < max ? s->len - s->off : max;
    memcpy(out, s->buf + s->off, k);
    s->off += k;
    return (ssize_t)k;
}

static void stream_free(void *cls)
{
    struct stream *s = cls;
    atomic_fetch_sub(&s->h->streams, 1);
    free(s->buf);
    free(s);
}

static enum MHD_Result h_stream(struct http *h, struct MHD_Connection *c)
{
    if (atomic_fetch_add(&h->streams, 1) >= STREAM_LIMIT) {
        atomic_fetch_sub(&h->streams, 1);
        return send_error_h(c, 503, "Retry-After", "5", "stream: %d streams open already",
                            STREAM_LIMIT);
    }
    struct stream *s = calloc(1, sizeof *s);
    if (!s) {
        atomic_fetch_sub(&h->streams, 1);
        return send_error(c, 503, "stream: out of memory");
    }
    s->h = h;
    s->first = true;
    s->next_ms = mono_ms();
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 8192, stream_read, s, stream_free);
    if (!r) {
        stream_free(s);
        return MHD_NO;
    }
    common_headers(r);
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- sessions ---- */

static void hex32(char out[65])
{
    unsigned char b[32];
    randombytes_buf(b, sizeof b);
    sodium_bin2hex(out, 65, b, sizeof b);
}

/* The valid session named by the request's cookie, copied into *out. */
static bool session_of(struct http *h, struct MHD_Connection *c, struct session *out)
{
    const char *ck = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE);
    char id[65];
    if (!http_cookie_get(ck, COOKIE_NAME, id, sizeof id) || strlen(id) != 64)
        return false;
    uint64_t now = mono_ms();
    bool found = false;
    pthread_mutex_lock(&h->lock);
    for (int i = 0; i < SESSIONS; i++) {
        struct session *s = &h->sessions[i];
        if (s->used && sodium_memcmp(s->id, id, 64) == 0) {
            if (now < s->expires_ms) {
                *out = *s;
                found = true;
            } else {
                s->used = false;
            }
        }
    }
    pthread_mutex_unlock(&h->lock);
    return found;
}

static bool csrf_ok(struct MHD_Connection *c, const struct session *s)
{
    const char *t = MHD_lookup_connection_value(c, MHD_HEADER_KIND, CSRF_HEADER);
    return t && strlen(t) == 64 && sodium_memcmp(t, s->csrf, 64) == 0;
}

/* Caller holds h->lock. */
static struct rate *rate_find(struct http *h, const char *addr)
{
    for (int i = 0; i < RATE_ENTRIES; i++)
        if (h->rates[i].addr[0] && strcmp(h->rates[i].addr, addr) == 0)
            return &h->rates[i];
    return NULL;
}

static enum MHD_Result h_login(struct http *h, struct MHD_Connection *c, struct req *rq)
{
    char addr[INET6_ADDRSTRLEN];
    client_addr(c, addr, sizeof addr);
    if (!h->pwhash[0])
        return send_error(c, 403, "login: no dashboard password configured (corridor passwd)");
    uint64_t now = mono_ms();
    /* Rate limit by client address: each failure doubles the wait before the next try. */
    pthread_mutex_lock(&h->lock);
    struct rate *r = NULL, *oldest = &h->rates[0];
    for (int i = 0; i < RATE_ENTRIES; i++) {
        if (strcmp(h->rates[i].addr, addr) == 0)
            r = &h->rates[i];
        if (h->rates[i].last_ms < oldest->last_ms)
            oldest = &h->rates[i];
    }
    if (!r) {
        r = oldest;
        memset(r, 0, sizeof *r);
        str_copy(r->addr, addr, sizeof r->addr);
    }
    r->last_ms = now;
    if (now < r->next_ok_ms) {
        uint64_t wait_s = (r->next_ok_ms - now + 999) / 1000;
        pthread_mutex_unlock(&h->lock);
        char ra[24];
        snprintf(ra, sizeof ra, "%" PRIu64, wait_s);
        return send_error_h(c, 429, "Retry-After", ra,
                            "login: too many failed attempts from %s, retry in %" PRIu64 " s", addr,
                            wait_s);
    }
    /* Hold the slot for the duration of the check so parallel guesses do not bypass it. */
    r->next_ok_ms = now + RATE_BASE_MS;
    pthread_mutex_unlock(&h->lock);

    char pw[260], err[256];
    if (http_parse_login(rq->body, rq->len, pw, sizeof pw, err, sizeof err) < 0) {
        /* A malformed body is not a password guess: release the hold (the entry may have
         * been recycled meanwhile, so look it up again). */
        pthread_mutex_lock(&h->lock);
        struct rate *rb = rate_find(h, addr);
        if (rb)
            rb->next_ok_ms = 0;
        pthread_mutex_unlock(&h->lock);
        return send_error(c, 400, "%s", err);
    }
    pthread_mutex_lock(&h->verify_lock);
    bool ok = crypto_pwhash_str_verify(h->pwhash, pw, strlen(pw)) == 0;
    pthread_mutex_unlock(&h->verify_lock);
    sodium_memzero(pw, sizeof pw);

    pthread_mutex_lock(&h->lock);
    /* r may have been recycled for another address meanwhile: find it again. */
    struct rate *rr = rate_find(h, addr);
    if (!ok) {
        if (rr) {
            rr->fails++;
            unsigned sh = rr->fails - 1 < 16 ? rr->fails - 1 : 16;
            uint64_t d = (uint64_t)RATE_BASE_MS << sh;
            rr->next_ok_ms = mono_ms() + (d > RATE_MAX_MS ? RATE_MAX_MS : d);
        }
        pthread_mutex_unlock(&h->lock);
        state_add_event(h->st, "dashboard", "login_failed", "failed dashboard login from %s", addr);
        return send_error(c, 401, "login: wrong password");
    }
    if (rr)
        memset(rr, 0, sizeof *rr);
    struct session *s = &h->sessions[0];
    for (int i = 0; i < SESSIONS; i++) {
        struct session *x = &h->sessions[i];
        if (!x->used || x->expires_ms <= now) {
            s = x;
            break;
        }
        if (x->expires_ms < s->expires_ms)
            s = x; /* table full: the session closest to expiry makes room */
    }
    s->used = true;
    hex32(s->id);
    hex32(s->csrf);
    s->expires_ms = now + (uint64_t)h->session_s * 1000;
    struct session copy = *s;
    pthread_mutex_unlock(&h->lock);
    state_add_event(h->st, "dashboard", "login", "dashboard login from %s", addr);

    char cookie[200];
    snprintf(cookie, sizeof cookie,
             COOKIE_NAME "=%s; Path=/; Max-Age=%u; HttpOnly; SameSite=Strict", copy.id,
             h->session_s);
    json_t *o = json_object();
    json_object_set_new(o, "csrf_token", json_string(copy.csrf));
    json_object_set_new(o, "expires_in_s", json_integer(h->session_s));
    return send_json_h(c, 200, o, MHD_HTTP_HEADER_SET_COOKIE, cookie);
}

static enum MHD_Result h_logout(struct http *h, struct MHD_Connection *c, const struct session *s)
{
    pthread_mutex_lock(&h->lock);
    for (int i = 0; i < SESSIONS; i++)
        if (h->sessions[i].used && sodium_memcmp(h->sessions[i].id, s->id, 64) == 0)
            h->sessions[i].used = false;
    pthread_mutex_unlock(&h->lock);
    json_t *o = json_object();
    json_object_set_new(o, "ok", json_true());
    return send_json_h(c, 200, o, MHD_HTTP_HEADER_SET_COOKIE,
                       COOKIE_NAME "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
}

static enum MHD_Result h_action(struct http *h, struct MHD_Connection *c,
                                const struct http_route *rt)
{
    const struct cfg_link *l = find_link(h, rt->arg);
    if (!l)
        return send_error(c, 404, "no link named \"%s\" in the configuration", rt->arg);
    bool modem = rt->kind == HTTP_R_MODEM_RESET || rt->kind == HTTP_R_MODEM_BALANCE;
    if (modem && !l->modem.present)
        return send_error(c, 409, "link \"%s\" has no modem configured", rt->arg);
    const char *what = rt->kind == HTTP_R_LINK_DISABLE  ? "link_disable"
                       : rt->kind == HTTP_R_LINK_ENABLE ? "link_enable"
                       : rt->kind == HTTP_R_MODEM_RESET ? "modem_reset"
                                                        : "modem_balance";
    char err[256] = "";
    int rc;
    switch (rt->kind) {
    case HTTP_R_LINK_DISABLE:
    case HTTP_R_LINK_ENABLE:
        if (!h->act.link_set_enabled)
            return send_error(c, 501, "%s: not available in this build", what);
        rc = h->act.link_set_enabled(h->act.ctx, rt->arg, rt->kind == HTTP_R_LINK_ENABLE, err,
                                     sizeof err);
        break;
    case HTTP_R_MODEM_RESET:
        if (!h->act.modem_reset)
            return send_error(c, 501, "%s: not available in this build", what);
        rc = h->act.modem_reset(h->act.ctx, rt->arg, err, sizeof err);
        break;
    default:
        if (!h->act.modem_balance)
            return send_error(c, 501, "%s: not available in this build", what);
        rc = h->act.modem_balance(h->act.ctx, rt->arg, err, sizeof err);
        break;
    }
    char addr[INET6_ADDRSTRLEN];
    client_addr(c, addr, sizeof addr);
    if (rc != 0) {
        state_add_event(h->st, rt->arg, "admin", "%s by dashboard (%s) failed: %s", what, addr,
                        err[0] ? err : "unknown error");
        return send_error(c, 409, "%s %s: %s", what, rt->arg, err[0] ? err : "refused");
    }
    state_add_event(h->st, rt->arg, "admin", "%s by dashboard (%s)", what, addr);
    LOG_I(SUBSYS, "%s %s by %s", what, rt->arg, addr);
    json_t *o = json_object();
    json_object_set_new(o, "ok", json_true());
    json_object_set_new(o, "action", json_string(what));
    json_object_set_new(o, "link", json_string(rt->arg));
    return send_json(c, 202, o);
}

static enum MHD_Result h_diagnostics(struct http *h, struct MHD_Connection *c)
{
    json_t *o = diag_runtime_doc(status_doc(h)); /* shared with `corridor diag` */
    if (!o)
        return send_error(c, 503, "diagnostics: out of memory");
    json_object_set_new(o, "modem_replies", render_exchanges(h->st));
    return send_json_h(c, 200, o, "Content-Disposition",
                       "attachment; filename=\"corridor-diagnostics.json\"");
}

static enum MHD_Result h_asset(struct MHD_Connection *c, const char *path)
{
    const struct dashboard_asset *a = dashboard_asset_find(path);
    if (!a)
        return send_error(c, 404, "no such asset");
    struct MHD_Response *r =
        MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    common_headers(r);
    MHD_add_response_header(r, "Content-Type", a->type);
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---------------------------------------------------------------- dispatch ---- */

static bool admin_route(enum http_route_kind k)
{
    return k == HTTP_R_DIAGNOSTICS || k == HTTP_R_LOGOUT || k >= HTTP_R_LINK_DISABLE;
}

static enum MHD_Result dispatch(struct http *h, struct MHD_Connection *c, const char *url,
                                const char *method, struct req *rq)
{
    struct http_route rt;
    http_route_parse(method, url, &rt);
    if (rt.kind == HTTP_R_NOT_FOUND)
        return send_error(c, 404, "%s %.100s: no such resource", method, url);
    if (!rt.method_ok)
        return send_error_h(c, 405, "Allow", rt.is_post ? "POST" : "GET, HEAD",
                            "%s %.100s: method not allowed (use %s)", method, url,
                            rt.is_post ? "POST" : "GET");
    if (rq->too_big)
        return send_error(c, 413, "%s %.100s: request body over %d bytes", method, url, BODY_MAX);
    struct session sess;
    bool have_sess = false;
    if (admin_route(rt.kind) || (h->act.read_only_require_login && rt.kind != HTTP_R_ASSET &&
                                 rt.kind != HTTP_R_LOGIN && rt.kind != HTTP_R_SESSION)) {
        if (admin_route(rt.kind) && !h->pwhash[0])
            return send_error(c, 403, "%.100s: admin actions are off (no password configured)",
                              url);
        have_sess = session_of(h, c, &sess);
        if (!have_sess)
            return send_error(c, 401, "%.100s: login required", url);
        if (rt.is_post && !csrf_ok(c, &sess))
            return send_error(c, 403, "%.100s: missing or wrong " CSRF_HEADER " header", url);
    }
    switch (rt.kind) {
    case HTTP_R_ASSET:
        return h_asset(c, rt.arg);
    case HTTP_R_STATUS: {
        size_t n = 0;
        char *js = status_text(h, &n);
        if (!js)
            return send_error(c, 503, "status: out of memory");
        return send_buf(c, 200, "application/json", js, n, MHD_RESPMEM_MUST_FREE, NULL, NULL);
    }
    case HTTP_R_LINKS:
    case HTTP_R_POSITION: {
        json_t *o = status_doc(h);
        const char *key = rt.kind == HTTP_R_LINKS ? "links" : "position";
        json_t *part = json_incref(json_object_get(o, key));
        json_decref(o);
        json_t *w = json_object();
        json_object_set_new(w, key, part);
        return send_json(c, 200, w);
    }
    case HTTP_R_EVENTS:
        return h_events(h, c);
    case HTTP_R_HEALTH:
        return h_health(h, c);
    case HTTP_R_COVERAGE:
        return h_coverage(h, c);
    case HTTP_R_BATCHES:
        return h_batches(h, c);
    case HTTP_R_STREAM:
        return h_stream(h, c);
    case HTTP_R_METRICS:
        return h_metrics(h, c);
    case HTTP_R_LOGIN:
        return h_login(h, c, rq);
    case HTTP_R_LOGOUT:
        return h_logout(h, c, &sess);
    case HTTP_R_SESSION: {
        struct session s2;
        bool in = session_of(h, c, &s2);
        json_t *o = json_object();
        json_object_set_new(o, "admin_enabled", json_boolean(h->pwhash[0] != '\0'));
        json_object_set_new(o, "read_only_public", json_boolean(!h->act.read_only_require_login));
        json_object_set_new(o, "logged_in", json_boolean(in));
        if (in)
            json_object_set_new(o, "csrf_token", json_string(s2.csrf));
        return send_json(c, 200, o);
    }
    case HTTP_R_DIAGNOSTICS:
        return h_diagnostics(h, c);
    default:
        return h_action(h, c, &rt);
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct http *h = cls;
    struct req *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        *con_cls = rq;
        atomic_fetch_add(&h->requests, 1);
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        uint64_t v;
        if (cl && (!http_parse_u64(cl, &v) || v > BODY_MAX)) {
            /* Answer before reading a byte of it; MHD closes the connection afterwards. */
            rq->too_big = true;
            return send_error(c, 413, "%s %.100s: request body over %d bytes", method, url,
                              BODY_MAX);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!rq->too_big && rq->len + *upload_size <= BODY_MAX) {
            memcpy(rq->body + rq->len, upload_data, *upload_size);
            rq->len += *upload_size;
        } else {
            rq->too_big = true; /* keep draining, answer 413 at the end */
        }
        *upload_size = 0;
        return MHD_YES;
    }
    rq->body[rq->len] = '\0';
    return dispatch(h, c, url, method, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

/* ---------------------------------------------------------------- lifecycle ---- */

static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sl, char *err,
                        size_t errlen)
{
    char host[64];
    const char *colon;
    memset(ss, 0, sizeof *ss);
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof host) {
            snprintf(err, errlen, "dashboard.listen \"%s\": expected \"[v6addr]:port\"", s);
            return -1;
        }
        memcpy(host, s + 1, (size_t)(rb - s - 1));
        host[rb - s - 1] = '\0';
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof host) {
            snprintf(err, errlen, "dashboard.listen \"%s\": expected \"host:port\"", s);
            return -1;
        }
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
    }
    uint64_t port;
    if (!http_parse_u64(colon + 1, &port) || port > 65535) {
        snprintf(err, errlen, "dashboard.listen \"%s\": port must be 0..65535", s);
        return -1;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (host[0] == '\0' || strcmp(host, "*") == 0)
        str_copy(host, "0.0.0.0", sizeof host);
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *sl = sizeof *a4;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *sl = sizeof *a6;
    } else {
        snprintf(err, errlen, "dashboard.listen \"%s\": \"%s\" is not a numeric IPv4/IPv6 address",
                 s, host);
        return -1;
    }
    return 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decoding for paths and query values that refuses to produce NUL bytes: MHD hands
 * us C strings, so a decoded %00 would silently cut "/index.html%00.js" to "/index.html".
 * %00 stays literal, which then matches no route (404) and no number (400). */
size_t http_unescape(char *s)
{
    char *w = s;
    for (const char *r = s; *r;) {
        int hi, lo;
        if (r[0] == '%' && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0 && (hi | lo) != 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return http_unescape(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[300];
    vsnprintf(buf, sizeof buf, fmt, ap);
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    LOG_D(SUBSYS, "microhttpd: %s", buf);
}

int http_start(const struct config *cfg, struct state *st, const struct http_actions *actions,
               struct http **out, char *err, size_t errlen)
{
    *out = NULL;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "dashboard: libsodium initialisation failed");
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    if (parse_listen(cfg->dashboard.listen, &ss, &sl, err, errlen) < 0)
        return -1;
    struct http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "dashboard: out of memory");
        return -1;
    }
    h->cfg = *cfg;
    h->st = st;
    if (actions)
        h->act = *actions;
    h->act.password_hash = NULL; /* copied below; the caller's string may go away */
    if (actions && actions->password_hash && actions->password_hash[0]) {
        if (strlen(actions->password_hash) >= sizeof h->pwhash ||
            strncmp(actions->password_hash, "$argon2id$", 10) != 0) {
            snprintf(err, errlen,
                     "dashboard.password_hash: not an argon2id hash from "
                     "`corridor passwd`");
            free(h);
            return -1;
        }
        str_copy(h->pwhash, actions->password_hash, sizeof h->pwhash);
    }
    h->session_s = actions && actions->session_s ? actions->session_s : 3600;
    pthread_mutex_init(&h->lock, NULL);
    pthread_mutex_init(&h->verify_lock, NULL);
    pthread_mutex_init(&h->status_lock, NULL);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_ERROR_LOG | MHD_USE_POLL;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONN_LIMIT, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)PER_IP_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MEM_LIMIT, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_UNESCAPE_CALLBACK,
        unescape, h, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)16, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errlen, "dashboard.listen \"%s\": cannot listen (%s)", cfg->dashboard.listen,
                 errno ? strerror(errno) : "microhttpd refused the options");
        pthread_mutex_destroy(&h->lock);
        pthread_mutex_destroy(&h->verify_lock);
        pthread_mutex_destroy(&h->status_lock);
        free(h);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : 0;
    LOG_I(SUBSYS, "dashboard on %s (port %u)%s", cfg->dashboard.listen, h->port,
          h->pwhash[0] ? "" : ", admin actions off (no password)");
    *out = h;
    return 0;
}

unsigned http_port(const struct http *h)
{
    return h ? h->port : 0;
}

void http_stop(struct http *h)
{
    if (!h)
        return;
    atomic_store(&h->stopping, true);
    MHD_stop_daemon(h->d);
    pthread_mutex_destroy(&h->lock);
    pthread_mutex_destroy(&h->verify_lock);
    pthread_mutex_destroy(&h->status_lock);
    free(h->status_json);
    sodium_memzero(h->sessions, sizeof h->sessions);
    free(h);
}
