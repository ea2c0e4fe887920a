/* test_http: the dashboard server against a hand-built state, over real sockets (libcurl and
 * raw TCP for what curl will not send). Covers every API endpoint, /metrics format, SSE, assets,
 * the admin login/session/CSRF/rate-limit rules, hostile requests and a clean stop. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/common.h"
#include "firmware/dashboard/assets.h"
#include "firmware/http.h"
#include "testlib.h"
#include "fixture.h"

static unsigned g_port;

struct resp {
    long code;
    char *body;
    size_t len;
    char headers[8192];
    size_t hlen;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t k = sz * n;
    char *nb = realloc(r->body, r->len + k + 1);
    if (!nb)
        return 0;
    r->body = nb;
    memcpy(r->body + r->len, p, k);
    r->len += k;
    r->body[r->len] = '\0';
    return k;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t k = sz * n;
    if (r->hlen + k < sizeof r->headers) {
        memcpy(r->headers + r->hlen, p, k);
        r->hlen += k;
        r->headers[r->hlen] = '\0';
    }
    return k;
}

static void resp_free(struct resp *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* Case-insensitive header lookup in the raw header block; copies the value. */
static bool header(const struct resp *r, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = r->headers; *p;) {
        const char *e = strstr(p, "\r\n");
        if (!e)
            break;
        if ((size_t)(e - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = (size_t)(e - v);
            if (vl >= n)
                vl = n - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return true;
        }
        p = e + 2;
    }
    return false;
}

static char g_cookie[128]; /* "corridor_session=..." */
static char g_csrf[80];

static void request(const char *method, const char *path, const char *body, bool cookie,
                    const char *csrf, struct resp *r)
{
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", g_port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    struct curl_slist *hl = NULL;
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        hl = curl_slist_append(hl, "Content-Type: application/json");
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }
    if (cookie && g_cookie[0])
        curl_easy_setopt(c, CURLOPT_COOKIE, g_cookie);
    if (csrf) {
        char h[120];
        snprintf(h, sizeof h, "X-CSRF-Token: %s", csrf);
        hl = curl_slist_append(hl, h);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    CURLcode rc = curl_easy_perform(c);
    CHECK_MSG(rc == CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->code);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
}

/* GET path, expect code and a JSON body; returns the parsed document (caller decrefs). */
static json_t *get_json(const char *path, long code)
{
    struct resp r;
    request("GET", path, NULL, false, NULL, &r);
    CHECK_MSG(r.code == code, "GET %s: %ld, expected %ld (%s)", path, r.code, code,
              r.body ? r.body : "");
    char ct[128] = "";
    header(&r, "Content-Type", ct, sizeof ct);
    CHECK_MSG(strncmp(ct, "application/json", 16) == 0, "GET %s: content type %s", path, ct);
    json_error_t je;
    json_t *o = r.body ? json_loads(r.body, 0, &je) : NULL;
    CHECK_MSG(o != NULL, "GET %s: body is not JSON", path);
    resp_free(&r);
    return o;
}

/* Status code and that the body is {"error": "<non-empty>"}. */
static void expect_error(struct resp *r, long code, const char *what)
{
    CHECK_MSG(r->code == code, "%s: %ld, expected %ld (%s)", what, r->code, code,
              r->body ? r->body : "");
    json_t *o = r->body ? json_loads(r->body, 0, NULL) : NULL;
    const char *e = json_string_value(json_object_get(o, "error"));
    CHECK_MSG(e && *e, "%s: no JSON error in body %s", what, r->body ? r->body : "(none)");
    json_decref(o);
}

/* ---- the fake composition root ---- */
struct calls {
    pthread_mutex_t lock;
    char last_link[32];
    int disable, enable, reset;
    bool fail_reset;
};
static struct calls g_calls = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int cb_link(void *ctx, const char *link, bool enabled, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct calls *c = ctx;
    pthread_mutex_lock(&c->lock);
    str_copy(c->last_link, link, sizeof c->last_link);
    if (enabled)
        c->enable++;
    else
        c->disable++;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

static int cb_reset(void *ctx, const char *link, char *err, size_t errlen)
{
    struct calls *c = ctx;
    pthread_mutex_lock(&c->lock);
    str_copy(c->last_link, link, sizeof c->last_link);
    c->reset++;
    bool fail = c->fail_reset;
    pthread_mutex_unlock(&c->lock);
    if (fail) {
        snprintf(err, errlen, "modem %s is being power-cycled", link);
        return -1;
    }
    return 0;
}

/* ---- pure parsing ---- */
static void test_parsers(void)
{
    struct http_route r;
    http_route_parse("GET", "/api/v1/status", &r);
    CHECK_INT(r.kind, HTTP_R_STATUS);
    CHECK(r.method_ok);
    http_route_parse("POST", "/api/v1/status", &r);
    CHECK(!r.method_ok);
    http_route_parse("POST", "/api/v1/links/mts/disable", &r);
    CHECK_INT(r.kind, HTTP_R_LINK_DISABLE);
    CHECK_STR(r.arg, "mts");
    CHECK(r.method_ok);
    http_route_parse("POST", "/api/v1/modems/beeline/balance", &r);
    CHECK_INT(r.kind, HTTP_R_MODEM_BALANCE);
    http_route_parse("POST", "/api/v1/links/../disable", &r);
    CHECK_INT(r.kind, HTTP_R_NOT_FOUND);
    http_route_parse("POST", "/api/v1/links/a/b/disable", &r);
    CHECK_INT(r.kind, HTTP_R_NOT_FOUND);
    http_route_parse("POST", "/api/v1/links/0123456789012345678901234567890123/disable", &r);
    CHECK_INT(r.kind, HTTP_R_NOT_FOUND);
    http_route_parse("POST", "/api/v1/modems/mts/disable", &r);
    CHECK_INT(r.kind, HTTP_R_NOT_FOUND);
    http_route_parse("GET", "/", &r);
    CHECK_INT(r.kind, HTTP_R_ASSET);
    http_route_parse("GET", "/../etc/passwd", &r);
    CHECK_INT(r.kind, HTTP_R_NOT_FOUND);
    http_route_parse("GET", "relative", &r);
    CHECK_INT(r.kind, HTTP_R_NOT_FOUND);

    uint64_t v;
    CHECK(http_parse_u64("18446744073709551615", &v) && v == UINT64_MAX);
    CHECK(!http_parse_u64("18446744073709551616", &v));
    CHECK(!http_parse_u64("-1", &v));
    CHECK(!http_parse_u64("", &v));
    CHECK(!http_parse_u64("12a", &v));

    char out[65];
    CHECK(http_cookie_get("a=1; corridor_session=abc; b=2", "corridor_session", out, sizeof out));
    CHECK_STR(out, "abc");
    CHECK(!http_cookie_get("xcorridor_session=abc", "corridor_session", out, sizeof out));
    CHECK(!http_cookie_get(NULL, "corridor_session", out, sizeof out));

    char pw[64], err[200];
    CHECK_INT(http_parse_login("{\"password\":\"s3cret\"}", 21, pw, sizeof pw, err, sizeof err), 0);
    CHECK_STR(pw, "s3cret");
    CHECK_INT(http_parse_login("{\"password\":", 12, pw, sizeof pw, err, sizeof err), -1);
    CHECK(strstr(err, "malformed JSON") != NULL);
    CHECK_INT(http_parse_login("[1]", 3, pw, sizeof pw, err, sizeof err), -1);
    CHECK_INT(http_parse_login("{\"password\":\"a\\u0000b\"}", 22, pw, sizeof pw, err, sizeof err),
              -1);
    CHECK_INT(http_parse_login("{\"password\":5}", 14, pw, sizeof pw, err, sizeof err), -1);
}

static void test_read_api(void)
{
    json_t *o = get_json("/api/v1/status", 200);
    CHECK_STR(json_string_value(json_object_get(o, "vehicle_id")), "train-042");
    json_t *links = json_object_get(o, "links");
    CHECK_INT(json_array_size(links), 3);
    json_t *mts = json_array_get(links, 0);
    CHECK_STR(json_string_value(json_object_get(mts, "name")), "mts");
    CHECK_STR(json_string_value(json_object_get(mts, "display_state")), "up");
    CHECK_NEAR(json_number_value(json_object_get(
                   json_object_get(json_object_get(mts, "modem"), "signal"), "rsrp_dbm")),
               -95, 1e-9);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(mts, "tunnel"), "tx_bytes")),
              1000);
    CHECK_STR(json_string_value(json_object_get(json_array_get(links, 1), "display_state")),
              "resetting");
    CHECK_STR(json_string_value(json_object_get(json_array_get(links, 2), "display_state")),
              "down");
    CHECK_NEAR(json_number_value(json_object_get(json_object_get(o, "position"), "speed_kmh")), 80,
               1e-9);
    json_decref(o);

    o = get_json("/api/v1/links", 200);
    CHECK_INT(json_array_size(json_object_get(o, "links")), 3);
    json_decref(o);

    o = get_json("/api/v1/position", 200);
    json_t *p = json_object_get(o, "position");
    CHECK(json_is_true(json_object_get(p, "fix")));
    json_t *a = json_array_get(json_object_get(p, "ahead"), 0);
    CHECK_STR(json_string_value(json_object_get(a, "operator")), "MTS");
    CHECK_NEAR(json_number_value(json_object_get(a, "dead_zone_in_m")), 2600, 1e-9);
    json_decref(o);

    o = get_json("/api/v1/events?since=0", 200);
    CHECK(json_array_size(json_object_get(o, "events")) >= 1);
    json_int_t last = json_integer_value(json_object_get(o, "last_seq"));
    CHECK(last >= 1);
    CHECK_STR(
        json_string_value(json_object_get(json_array_get(json_object_get(o, "events"), 0), "kind")),
        "registered");
    json_decref(o);
    char path[80];
    snprintf(path, sizeof path, "/api/v1/events?since=%lld", (long long)last);
    o = get_json(path, 200);
    CHECK_INT(json_array_size(json_object_get(o, "events")), 0);
    json_decref(o);
    o = get_json("/api/v1/events?since=abc", 400);
    CHECK(strstr(json_string_value(json_object_get(o, "error")), "since") != NULL);
    json_decref(o);
    json_decref(get_json("/api/v1/events?limit=0", 400));
    json_decref(get_json("/api/v1/events?since=99999999999999999999999", 400));

    o = get_json("/api/v1/health", 200);
    CHECK(json_integer_value(json_object_get(o, "rss_bytes")) > 100000);
    CHECK(json_integer_value(json_object_get(o, "threads")) >= 2);
    CHECK(json_is_integer(json_object_get(o, "uptime_s")));
    CHECK_INT(json_array_size(json_object_get(o, "load")), 3);
    json_decref(o);

    o = get_json("/api/v1/coverage?bbox=37,55,38,56", 501);
    CHECK(json_is_string(json_object_get(o, "error")));
    json_decref(o);
    json_decref(get_json("/api/v1/batches", 501));
    json_decref(get_json("/api/v1/nothing", 404));

    struct resp r;
    request("POST", "/api/v1/status", NULL, false, NULL, &r);
    expect_error(&r, 405, "POST status");
    resp_free(&r);
    request("GET", "/api/v1/login", NULL, false, NULL, &r);
    expect_error(&r, 405, "GET login");
    resp_free(&r);
    request("DELETE", "/api/v1/status", NULL, false, NULL, &r);
    expect_error(&r, 405, "DELETE status");
    resp_free(&r);
}

/* One metrics line: name{label="v",...} value. Returns false on a malformed line. */
static bool metric_line_ok(const char *l, char *name, size_t nn)
{
    const char *p = l;
    size_t k = 0;
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == ':'))
        return false;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
           *p == '_' || *p == ':') {
        if (k + 1 < nn)
            name[k++] = *p;
        p++;
    }
    name[k] = '\0';
    if (*p == '{') {
        p++;
        for (;;) {
            if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
                return false;
            while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')
                p++;
            if (p[0] != '=' || p[1] != '"')
                return false;
            p += 2;
            while (*p && *p != '"') {
                if (*p == '\\') {
                    if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                        return false;
                    p++;
                }
                p++;
            }
            if (*p != '"')
                return false;
            p++;
            if (*p == ',') {
                p++;
                continue;
            }
            if (*p != '}')
                return false;
            p++;
            break;
        }
    }
    if (*p != ' ')
        return false;
    char *end;
    double v = strtod(p + 1, &end);
    (void)v;
    return end != p + 1 && *end == '\0';
}

static void test_metrics(void)
{
    struct resp r;
    request("GET", "/metrics", NULL, false, NULL, &r);
    CHECK_INT(r.code, 200);
    char ct[128] = "";
    header(&r, "Content-Type", ct, sizeof ct);
    CHECK(strncmp(ct, "text/plain; version=0.0.4", 25) == 0);
    char typed[200][64];
    int ntyped = 0, nsamples = 0, bad = 0;
    char *save = NULL;
    for (char *l = strtok_r(r.body, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (strncmp(l, "# HELP ", 7) == 0)
            continue;
        if (strncmp(l, "# TYPE ", 7) == 0) {
            char n[64], t[16];
            if (sscanf(l + 7, "%63s %15s", n, t) != 2 ||
                (strcmp(t, "gauge") && strcmp(t, "counter"))) {
                bad++;
                continue;
            }
            if (ntyped < 200)
                str_copy(typed[ntyped++], n, 64);
            continue;
        }
        char name[64];
        if (!metric_line_ok(l, name, sizeof name)) {
            fprintf(stderr, "bad metrics line: %s\n", l);
            bad++;
            continue;
        }
        bool declared = false;
        for (int i = 0; i < ntyped; i++)
            declared |= strcmp(typed[i], name) == 0;
        CHECK_MSG(declared, "metric %s has no # TYPE before it", name);
        nsamples++;
    }
    CHECK_INT(bad, 0);
    CHECK(nsamples > 20);
    resp_free(&r);
    request("GET", "/metrics", NULL, false, NULL, &r);
    const char *want[] = {
        "corridor_link_rtt_seconds{link=\"mts\"} 0.0455",
        "corridor_link_tx_bytes_total{link=\"mts\"} 1000",
        "corridor_link_rx_bytes_total{link=\"mts\"} 2000",
        "corridor_link_weight{link=\"mts\"} 0.6",
        "corridor_link_up{link=\"mts\"} 1",
        "corridor_link_up{link=\"beeline\"} 0",
        "corridor_modem_rsrp_dbm{link=\"mts\"} -95",
        "corridor_modem_sinr_db{link=\"mts\"} 12.5",
        "corridor_modem_balance{link=\"mts\"} 123.5",
        "operator=\"Bee\\\"line\"",
        "corridor_position_speed_kmh 80",
        "corridor_ahead_dead_zone_seconds{operator=\"MTS\"} 120",
        "corridor_tunnel_connected 1",
        "# TYPE corridor_uptime_seconds gauge",
        "# TYPE corridor_link_tx_bytes_total counter",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK_MSG(r.body && strstr(r.body, want[i]), "metrics lack: %s", want[i]);
    resp_free(&r);
}

/* SSE: abort the transfer once one complete event has arrived. */
struct sse {
    char buf[65536];
    size_t len;
};
static size_t on_sse(char *p, size_t sz, size_t n, void *ud)
{
    struct sse *s = ud;
    size_t k = sz * n;
    if (s->len + k >= sizeof s->buf)
        return 0;
    memcpy(s->buf + s->len, p, k);
    s->len += k;
    s->buf[s->len] = '\0';
    return strstr(s->buf, "\n\n") ? 0 : k; /* 0 = stop: we have an event */
}

static void test_sse(void)
{
    static struct sse s;
    memset(&s, 0, sizeof s);
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/api/v1/stream", g_port);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_sse);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
    uint64_t t0 = mono_ms();
    curl_easy_perform(c);
    uint64_t dt = mono_ms() - t0;
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    CHECK(ct && strcmp(ct, "text/event-stream") == 0);
    curl_easy_cleanup(c);
    CHECK_MSG(dt < 2000, "first SSE event after %llu ms", (unsigned long long)dt);
    CHECK(strstr(s.buf, "event: status\n") != NULL);
    char *d = strstr(s.buf, "data: ");
    CHECK(d != NULL);
    if (d) {
        char *e = strchr(d, '\n');
        if (e)
            *e = '\0';
        json_t *o = json_loads(d + 6, 0, NULL);
        CHECK(o != NULL);
        CHECK_STR(json_string_value(json_object_get(o, "vehicle_id")), "train-042");
        json_decref(o);
    }
}

/* URLs naming another host, except the SVG namespace (an identifier, never fetched). */
static int external_urls(const char *s)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, "//")) != NULL; p += 2)
        if (p > s && p[-1] == ':' && strncmp(p, "//www.w3.org/2000/svg", 21) != 0)
            n++;
    return n;
}

static void test_assets(void)
{
    size_t total = 0;
    struct {
        const char *path, *type, *needle;
    } a[] = {
        {"/", "text/html", "<title>corridor"},
        {"/index.html", "text/html", "/app.js"},
        {"/app.js", "text/javascript", "EventSource"},
        {"/style.css", "text/css", "font"},
    };
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) {
        struct resp r;
        request("GET", a[i].path, NULL, false, NULL, &r);
        CHECK_MSG(r.code == 200, "GET %s: %ld", a[i].path, r.code);
        char ct[128] = "", csp[512] = "";
        header(&r, "Content-Type", ct, sizeof ct);
        CHECK_MSG(strncmp(ct, a[i].type, strlen(a[i].type)) == 0, "%s: type %s", a[i].path, ct);
        CHECK(header(&r, "Content-Security-Policy", csp, sizeof csp));
        CHECK(r.body && strstr(r.body, a[i].needle));
        /* No CDN, no external fonts: nothing on the page names another host. */
        CHECK_MSG(r.body && external_urls(r.body) == 0, "%s references an external URL", a[i].path);
        if (i > 0)
            total += r.len;
        resp_free(&r);
    }
    CHECK_MSG(total > 1000 && total < 200 * 1024, "page weight %zu bytes", total);
    size_t sum = 0;
    for (size_t i = 0; i < dashboard_nassets; i++)
        sum += dashboard_assets[i].len;
    CHECK_INT(sum, total);
}

/* Raw TCP: send exactly these bytes, return the status code of the reply (0 = none). */
static int raw_status(const void *req, size_t len, bool shut_wr)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, (const char *)req + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server may answer and close before reading it all: fine */
        off += (size_t)n;
    }
    if (shut_wr)
        shutdown(fd, SHUT_WR);
    char buf[2048];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    close(fd);
    if (n < 12)
        return 0;
    buf[n] = '\0';
    int code = 0;
    sscanf(buf, "HTTP/1.%*d %d", &code);
    return code;
}

static void test_hostile(void)
{
    const char *trav[] = {"/../../etc/passwd",
                          "/%2e%2e/%2e%2e/etc/passwd",
                          "/app.js/../../etc/passwd",
                          "/api/v1/links/..%2f..%2fetc/disable",
                          "/.%2e/style.css",
                          "/index.html%00.js",
                          "//etc/passwd"};
    for (size_t i = 0; i < sizeof trav / sizeof trav[0]; i++) {
        struct resp r;
        request(i == 3 ? "POST" : "GET", trav[i], NULL, false, NULL, &r);
        expect_error(&r, 404, trav[i]);
        resp_free(&r);
    }
    /* 64 KiB of headers: beyond the per-connection memory limit. */
    size_t big = 64 * 1024;
    char *req = malloc(big + 200);
    int off = snprintf(req, 200, "GET /api/v1/status HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + off, 'a', big);
    memcpy(req + off + big, "\r\n\r\n", 4);
    int code = raw_status(req, (size_t)off + big + 4, false);
    CHECK_MSG(code == 431 || code == 413, "over-long header: status %d", code);
    /* A huge declared body is refused before it is read. */
    off = snprintf(req, 300,
                   "POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: 100000000\r\n\r\n{\"password\":\"");
    code = raw_status(req, (size_t)off, false);
    CHECK_MSG(code == 413, "huge Content-Length: status %d", code);
    /* A chunked body that grows past the cap. */
    off = snprintf(req, 300,
                   "POST /api/v1/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                   "chunked\r\nConnection: close\r\n\r\n");
    for (int i = 0; i < 10; i++) {
        off += sprintf(req + off, "400\r\n");
        memset(req + off, 'x', 1024);
        off += 1024;
        off += sprintf(req + off, "\r\n");
    }
    off += sprintf(req + off, "0\r\n\r\n");
    code = raw_status(req, (size_t)off, false);
    CHECK_MSG(code == 413, "chunked oversize body: status %d", code);
    /* Garbage request line. */
    code = raw_status("\x01\x02 nonsense\r\n\r\n", 16, true);
    CHECK_MSG(code == 0 || (code >= 400 && code < 500), "garbage request: status %d", code);
    free(req);

    struct resp r;
    request("POST", "/api/v1/login", "{\"password\": ", false, NULL, &r);
    expect_error(&r, 400, "malformed login JSON");
    resp_free(&r);
    request("POST", "/api/v1/login", "[\"x\"]", false, NULL, &r);
    expect_error(&r, 400, "login JSON not an object");
    resp_free(&r);
}

static void check_admin_refused(const char *csrf, long code, const char *why)
{
    const char *posts[] = {"/api/v1/links/mts/disable", "/api/v1/links/mts/enable",
                           "/api/v1/modems/mts/reset", "/api/v1/modems/mts/balance",
                           "/api/v1/logout"};
    for (size_t i = 0; i < sizeof posts / sizeof posts[0]; i++) {
        struct resp r;
        request("POST", posts[i], NULL, true, csrf, &r);
        char what[160];
        snprintf(what, sizeof what, "%s %s", why, posts[i]);
        expect_error(&r, code, what);
        resp_free(&r);
    }
}

static unsigned count_events(struct state *st, const char *kind, const char *text)
{
    static struct state_event ev[STATE_EVENTS];
    unsigned n = state_get_events(st, 0, ev, STATE_EVENTS), k = 0;
    for (unsigned i = 0; i < n; i++)
        if (strcmp(ev[i].kind, kind) == 0 && strstr(ev[i].text, text))
            k++;
    return k;
}

static void login_ok(void)
{
    struct resp r;
    request("POST", "/api/v1/login", "{\"password\":\"correct horse\"}", false, NULL, &r);
    CHECK_MSG(r.code == 200, "login: %ld %s", r.code, r.body ? r.body : "");
    char sc[256] = "";
    CHECK(header(&r, "Set-Cookie", sc, sizeof sc));
    CHECK(strstr(sc, "HttpOnly") != NULL);
    CHECK(strstr(sc, "SameSite=Strict") != NULL);
    CHECK(strncmp(sc, "corridor_session=", 17) == 0);
    char *semi = strchr(sc, ';');
    if (semi)
        *semi = '\0';
    str_copy(g_cookie, sc, sizeof g_cookie);
    CHECK_INT(strlen(g_cookie), 17 + 64);
    json_t *o = r.body ? json_loads(r.body, 0, NULL) : NULL;
    const char *t = json_string_value(json_object_get(o, "csrf_token"));
    CHECK(t && strlen(t) == 64);
    str_copy(g_csrf, t ? t : "", sizeof g_csrf);
    json_decref(o);
    resp_free(&r);
}

static void test_admin(struct state *st)
{
    /* No session: 401 for changes and for the diagnostics bundle. */
    g_cookie[0] = '\0';
    check_admin_refused(NULL, 401, "no session");
    struct resp r;
    request("GET", "/api/v1/diagnostics", NULL, false, NULL, &r);
    expect_error(&r, 401, "diagnostics without session");
    resp_free(&r);
    /* A made-up session id is no session either. */
    str_copy(g_cookie,
             "corridor_session=0000000000000000000000000000000000000000000000000000000000000000",
             sizeof g_cookie);
    check_admin_refused(NULL, 401, "forged session");

    /* Brute force is slowed: after a failure the next try must wait, doubling each time. */
    request("POST", "/api/v1/login", "{\"password\":\"wrong\"}", false, NULL, &r);
    expect_error(&r, 401, "wrong password");
    resp_free(&r);
    request("POST", "/api/v1/login", "{\"password\":\"correct horse\"}", false, NULL, &r);
    expect_error(&r, 429, "retry too soon");
    char ra[32] = "";
    CHECK(header(&r, "Retry-After", ra, sizeof ra) && atoi(ra) == 1);
    resp_free(&r);
    CHECK(count_events(st, "login_failed", "127.0.0.1") == 1);
    usleep(1100 * 1000);
    request("POST", "/api/v1/login", "{\"password\":\"wrong again\"}", false, NULL, &r);
    expect_error(&r, 401, "second wrong password");
    resp_free(&r);
    request("POST", "/api/v1/login", "{\"password\":\"correct horse\"}", false, NULL, &r);
    expect_error(&r, 429, "second retry too soon");
    CHECK(header(&r, "Retry-After", ra, sizeof ra) && atoi(ra) == 2);
    resp_free(&r);
    usleep(2100 * 1000);
    login_ok();

    /* With a session but without (or with a wrong) CSRF token: 403. */
    check_admin_refused(NULL, 403, "no csrf");
    check_admin_refused("0123456789012345678901234567890123456789012345678901234567890123", 403,
                        "wrong csrf");

    json_t *o;
    request("GET", "/api/v1/session", NULL, true, NULL, &r);
    o = r.body ? json_loads(r.body, 0, NULL) : NULL;
    CHECK(json_is_true(json_object_get(o, "logged_in")));
    CHECK_STR(json_string_value(json_object_get(o, "csrf_token")), g_csrf);
    json_decref(o);
    resp_free(&r);

    /* Actions reach the callbacks and leave an audit event. */
    request("POST", "/api/v1/links/mts/disable", NULL, true, g_csrf, &r);
    CHECK_MSG(r.code == 202, "disable: %ld %s", r.code, r.body ? r.body : "");
    resp_free(&r);
    CHECK_INT(g_calls.disable, 1);
    CHECK_STR(g_calls.last_link, "mts");
    CHECK_INT(count_events(st, "admin", "link_disable by dashboard"), 1);
    request("POST", "/api/v1/links/beeline/enable", NULL, true, g_csrf, &r);
    CHECK_INT(r.code, 202);
    resp_free(&r);
    CHECK_INT(g_calls.enable, 1);
    CHECK_STR(g_calls.last_link, "beeline");
    request("POST", "/api/v1/modems/mts/reset", NULL, true, g_csrf, &r);
    CHECK_INT(r.code, 202);
    resp_free(&r);
    CHECK_INT(g_calls.reset, 1);
    CHECK_INT(count_events(st, "admin", "modem_reset by dashboard"), 1);
    g_calls.fail_reset = true;
    request("POST", "/api/v1/modems/beeline/reset", NULL, true, g_csrf, &r);
    expect_error(&r, 409, "failing reset");
    CHECK(r.body && strstr(r.body, "power-cycled"));
    resp_free(&r);
    CHECK_INT(count_events(st, "admin", "failed: modem beeline is being power-cycled"), 1);
    request("POST", "/api/v1/modems/wifi/reset", NULL, true, g_csrf, &r);
    expect_error(&r, 409, "reset of a link without modem");
    resp_free(&r);
    request("POST", "/api/v1/links/nope/disable", NULL, true, g_csrf, &r);
    expect_error(&r, 404, "unknown link");
    resp_free(&r);
    request("POST", "/api/v1/modems/mts/balance", NULL, true, g_csrf, &r);
    expect_error(&r, 501, "balance without callback");
    resp_free(&r);

    request("GET", "/api/v1/diagnostics", NULL, true, NULL, &r);
    CHECK_INT(r.code, 200);
    o = r.body ? json_loads(r.body, 0, NULL) : NULL;
    CHECK_STR(json_string_value(json_object_get(json_object_get(o, "versions"), "corridor")),
              CORRIDOR_VERSION);
    CHECK(json_is_array(json_object_get(o, "log")));
    CHECK(json_array_size(json_object_get(json_object_get(o, "status"), "links")) == 3);
    json_decref(o);
    resp_free(&r);

    request("POST", "/api/v1/logout", NULL, true, g_csrf, &r);
    CHECK_INT(r.code, 200);
    resp_free(&r);
    request("POST", "/api/v1/links/mts/disable", NULL, true, g_csrf, &r);
    expect_error(&r, 401, "after logout");
    resp_free(&r);
    CHECK_INT(g_calls.disable, 1);
}

/* Open a stream on a raw socket; returns the fd after reading the status line (code in *code). */
static int open_stream(int *code)
{
    const char *req = "GET /api/v1/stream HTTP/1.1\r\nHost: x\r\n\r\n";
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    *code = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && send(fd, req, strlen(req), 0) > 0) {
        char buf[512];
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n > 12) {
            buf[n] = '\0';
            sscanf(buf, "HTTP/1.%*d %d", code);
        }
    }
    return fd;
}

/* At most 8 event streams: the 9th is told to come back later; closing one frees a slot. */
static void test_stream_limit(void)
{
    int fds[8], code;
    for (int i = 0; i < 8; i++) {
        fds[i] = open_stream(&code);
        CHECK_MSG(code == 200, "stream %d: status %d", i, code);
    }
    int extra = open_stream(&code);
    CHECK_MSG(code == 503, "9th stream: status %d", code);
    close(extra);
    close(fds[0]);
    /* The server notices the closed stream at its next write (<= 1 s). */
    bool ok = false;
    for (int t = 0; t < 30 && !ok; t++) {
        usleep(100 * 1000);
        extra = open_stream(&code);
        ok = code == 200;
        close(extra);
    }
    CHECK_MSG(ok, "a closed stream did not free its slot");
    for (int i = 1; i < 8; i++)
        close(fds[i]);
    usleep(1300 * 1000); /* let the server reap them before the next test opens one */
}

/* A server in the middle of an SSE stream must stop promptly. */
static void test_stop_with_stream(struct http *h)
{
    const char *req = "GET /api/v1/stream HTTP/1.1\r\nHost: x\r\n\r\n";
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    CHECK(send(fd, req, strlen(req), 0) > 0);
    char buf[512];
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    CHECK(recv(fd, buf, sizeof buf, 0) > 0);
    uint64_t t0 = mono_ms();
    http_stop(h);
    uint64_t dt = mono_ms() - t0;
    CHECK_MSG(dt < 1000, "http_stop took %llu ms with a stream open", (unsigned long long)dt);
    close(fd);
}

int main(void)
{
    log_init("test_http", LOGL_WARN, false);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CHECK(sodium_init() >= 0);
    test_parsers();

    /* The real helper makes a verifiable argon2id hash. */
    char hash[crypto_pwhash_STRBYTES];
    CHECK_INT(http_hash_password("correct horse", hash), 0);
    CHECK(strncmp(hash, "$argon2id$", 10) == 0);
    CHECK_INT(crypto_pwhash_str_verify(hash, "correct horse", 13), 0);
    CHECK_INT(http_hash_password("", hash), -1);
    /* The server uses a cheap hash so the test stays quick under sanitizers. */
    CHECK_INT(crypto_pwhash_str(hash, "correct horse", 13, crypto_pwhash_OPSLIMIT_MIN,
                                crypto_pwhash_MEMLIMIT_MIN),
              0);

    struct config cfg;
    char err[256];
    struct http *h = NULL;
    make_config(&cfg, "nonsense");
    CHECK_INT(http_start(&cfg, NULL, NULL, &h, err, sizeof err), -1);
    CHECK(strstr(err, "dashboard.listen") != NULL);
    make_config(&cfg, "127.0.0.1:99999");
    CHECK_INT(http_start(&cfg, NULL, NULL, &h, err, sizeof err), -1);

    make_config(&cfg, "127.0.0.1:0");
    struct state *st = state_new(&cfg);
    fill_state(st);
    struct http_actions act = {.ctx = &g_calls,
                               .link_set_enabled = cb_link,
                               .modem_reset = cb_reset,
                               .password_hash = hash};
    act.password_hash = "not-a-hash";
    CHECK_INT(http_start(&cfg, st, &act, &h, err, sizeof err), -1);
    CHECK(strstr(err, "password_hash") != NULL);
    act.password_hash = hash;
    if (http_start(&cfg, st, &act, &h, err, sizeof err) != 0) {
        fprintf(stderr, "http_start: %s\n", err);
        return 1;
    }
    g_port = http_port(h);
    CHECK(g_port > 0);
    /* The same port twice: a clear error naming the address. */
    struct config cfg2;
    char l2[64];
    snprintf(l2, sizeof l2, "127.0.0.1:%u", g_port);
    make_config(&cfg2, l2);
    struct http *h2 = NULL;
    CHECK_INT(http_start(&cfg2, st, NULL, &h2, err, sizeof err), -1);
    CHECK(strstr(err, l2) != NULL);

    test_read_api();
    test_metrics();
    test_sse();
    test_assets();
    test_hostile();
    test_admin(st);
    test_stream_limit();
    test_stop_with_stream(h);

    /* Locked-down read-only views, and no password = no admin at all. */
    make_config(&cfg, "127.0.0.1:0");
    struct http_actions locked = {.read_only_require_login = true};
    CHECK_INT(http_start(&cfg, st, &locked, &h, err, sizeof err), 0);
    g_port = http_port(h);
    json_decref(get_json("/api/v1/status", 401));
    json_decref(get_json("/api/v1/session", 200));
    struct resp r;
    request("GET", "/", NULL, false, NULL, &r);
    CHECK_INT(r.code, 200);
    resp_free(&r);
    request("GET", "/metrics", NULL, false, NULL, &r);
    expect_error(&r, 401, "locked metrics");
    resp_free(&r);
    request("POST", "/api/v1/login", "{\"password\":\"x\"}", false, NULL, &r);
    expect_error(&r, 403, "login without configured password");
    resp_free(&r);
    request("POST", "/api/v1/links/mts/disable", NULL, false, NULL, &r);
    expect_error(&r, 403, "admin without configured password");
    resp_free(&r);
    http_stop(h);
    http_stop(NULL);

    state_free(st);
    curl_global_cleanup();
    return test_summary();
}
