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
#include <sys/stat.h>
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
    CHECK_MSG(strncmp(ct, "application/json", 16) == 0 ||
                  strncmp(ct, "application/geo+json", 20) == 0,
              "GET %s: content type %s", path, ct);
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

static int cb_upload(void *ctx, struct http_upload_status *out)
{
    (void)ctx;
    out->attempts = 9;
    out->failures = 4;
    out->delivered = 1;
    out->consecutive_failures = 3;
    out->last_http = 503;
    str_copy(out->last_error, "collector answered 503", sizeof out->last_error);
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

    double bb[4];
    char berr[200];
    CHECK(http_parse_bbox("37.5,55.25,38,56", bb, berr, sizeof berr));
    CHECK_NEAR(bb[0], 37.5, 1e-12);
    CHECK_NEAR(bb[1], 55.25, 1e-12);
    CHECK_NEAR(bb[2], 38, 1e-12);
    CHECK_NEAR(bb[3], 56, 1e-12);
    CHECK(http_parse_bbox("-1e-1,-2,1.5e0,-0.5", bb, berr, sizeof berr));
    CHECK_NEAR(bb[0], -0.1, 1e-12);
    const struct {
        const char *in, *needle;
    } badbb[] = {
        {NULL, "missing"},
        {"", "missing"},
        {"37,55,38", "4 comma-separated"},
        {"37,55,38,56,1", "more than 4"},
        {"nan,55,38,56", "min_lon"},
        {"37,inf,38,56", "min_lat"},
        {"37,55,0x26,56", "max_lon"},
        {"37,55,38,", "max_lat"},
        {"37,55,38,1e999", "max_lat"},
        {"37 ,55,38,56", "min_lon"},
        {"38,55,37,56", "inverted"},
        {"37,56,38,55", "inverted"},
        {"37,55,37,56", "inverted"},
        {"30,55,38,56", "too large"},
        {"37,50,38,56", "too large"},
        {"-181,55,-180,56", "out of"},
        {"37,89.5,38,91", "out of"},
    };
    for (size_t i = 0; i < sizeof badbb / sizeof badbb[0]; i++) {
        berr[0] = '\0';
        bool ok = http_parse_bbox(badbb[i].in, bb, berr, sizeof berr);
        CHECK_MSG(!ok && strstr(berr, badbb[i].needle) && strstr(berr, "bbox"), "bbox \"%s\": %s",
                  badbb[i].in ? badbb[i].in : "(null)", berr);
    }
    char longbb[300];
    memset(longbb, '1', sizeof longbb - 1);
    longbb[sizeof longbb - 1] = '\0';
    CHECK(!http_parse_bbox(longbb, bb, berr, sizeof berr));

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

/* /api/v1/status is rendered at most every 100 ms and shared: rapid requests get the same
 * rendering (same wall_ms), and a change to the state shows after at most that long. */
static void test_status_cache(struct state *st)
{
    json_int_t w[6];
    int same = 0;
    for (int i = 0; i < 6; i++) {
        json_t *o = get_json("/api/v1/status", 200);
        w[i] = json_integer_value(json_object_get(o, "wall_ms"));
        json_decref(o);
        if (i && w[i] == w[i - 1])
            same++;
    }
    CHECK_MSG(same >= 1, "six quick status requests, all rendered separately");
    state_add_event(st, "test", "cache_probe", "status cache probe");
    usleep(150 * 1000);
    json_t *o = get_json("/api/v1/status", 200);
    json_t *ev = json_object_get(o, "events");
    const char *kind =
        json_string_value(json_object_get(json_array_get(ev, json_array_size(ev) - 1), "kind"));
    CHECK_MSG(kind && strcmp(kind, "cache_probe") == 0, "status 150 ms after a new event: %s",
              kind ? kind : "(none)");
    CHECK(json_integer_value(json_object_get(o, "wall_ms")) > w[5]);
    json_decref(o);
}

/* The feature of operator op whose cell contains lon (NULL if none). */
static json_t *feature_at(json_t *fc, const char *op, double lon)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(fc, "features"), i, f)
    {
        json_t *bb = json_object_get(f, "bbox");
        const char *fo =
            json_string_value(json_object_get(json_object_get(f, "properties"), "operator"));
        if (fo && strcmp(fo, op) == 0 && json_number_value(json_array_get(bb, 0)) <= lon &&
            lon < json_number_value(json_array_get(bb, 2)))
            return f;
    }
    return NULL;
}

static void test_coverage(void)
{
    char path[160];
    /* The whole seeded route: 40 cells x 2 operators. */
    snprintf(path, sizeof path, "/api/v1/coverage?bbox=%.4f,%.4f,%.4f,%.4f", ROUTE_LON0 - 0.01,
             ROUTE_LAT - 0.01, ROUTE_LON0 + 0.06, ROUTE_LAT + 0.01);
    json_t *o = get_json(path, 200);
    CHECK_STR(json_string_value(json_object_get(o, "type")), "FeatureCollection");
    CHECK(json_is_true(json_object_get(o, "available")));
    CHECK_NEAR(json_number_value(json_object_get(o, "cell_m")), 50, 1e-9);
    CHECK_INT(json_integer_value(json_object_get(o, "count")), 2 * ROUTE_N);
    CHECK_INT(json_array_size(json_object_get(o, "features")), 2 * ROUTE_N);
    CHECK(json_is_false(json_object_get(o, "truncated")));
    CHECK_INT(json_integer_value(json_object_get(o, "limit")), 5000);
    json_t *ops = json_object_get(o, "operators");
    CHECK_INT(json_array_size(ops), 2);
    CHECK_STR(json_string_value(json_array_get(ops, 0)), "250-01");
    CHECK_STR(json_string_value(json_array_get(ops, 1)), "250-02");

    /* First fix's cell, good operator: the seeded values come back. */
    json_t *f = feature_at(o, "250-01", ROUTE_LON0);
    CHECK_MSG(f != NULL, "no 250-01 cell at the first fix");
    json_t *p = json_object_get(f, "properties");
    json_t *g = json_object_get(json_object_get(f, "geometry"), "coordinates");
    json_t *bb = json_object_get(f, "bbox");
    CHECK_NEAR(json_number_value(json_array_get(g, 1)), ROUTE_LAT, 0.0005);
    CHECK_NEAR(json_number_value(json_array_get(g, 0)), ROUTE_LON0, 0.0008);
    CHECK(json_number_value(json_array_get(bb, 1)) <= ROUTE_LAT &&
          ROUTE_LAT < json_number_value(json_array_get(bb, 3)));
    /* a 50 m cell: ~0.00045 degrees of latitude high */
    CHECK_NEAR(json_number_value(json_array_get(bb, 3)) - json_number_value(json_array_get(bb, 1)),
               50.0 / 111320.0, 2e-6);
    CHECK_NEAR(json_number_value(json_object_get(p, "samples")), 1, 1e-3);
    CHECK_INT(json_integer_value(json_object_get(p, "trips")), 1);
    CHECK_INT(json_integer_value(json_object_get(p, "last_seen")), ROUTE_UTC0);
    CHECK_STR(json_string_value(json_object_get(p, "net")), "lte");
    CHECK_NEAR(json_number_value(json_object_get(p, "rsrp_dbm")), -100, 0.05);
    CHECK_NEAR(json_number_value(json_object_get(p, "sinr_db")), 10, 0.3);
    CHECK_NEAR(json_number_value(json_object_get(p, "goodput_kbps")), 5000, 5000 * 0.01);
    CHECK_NEAR(json_number_value(json_object_get(p, "rtt_ms")), 50, 0.5);
    CHECK_NEAR(json_number_value(json_object_get(p, "outage")), 0, 1e-9);
    CHECK(json_is_false(json_object_get(p, "dead")));
    CHECK(json_number_value(json_object_get(p, "quality")) > 0.4);
    json_t *med = json_object_get(p, "rsrp_median_dbm");
    CHECK_NEAR(json_number_value(json_array_get(med, 0)), -105, 1e-9);
    CHECK_NEAR(json_number_value(json_array_get(med, 1)), -95, 1e-9);
    med = json_object_get(p, "goodput_median_kbps");
    CHECK_NEAR(json_number_value(json_array_get(med, 0)), 2000, 1e-9);
    CHECK_NEAR(json_number_value(json_array_get(med, 1)), 10000, 1e-9);
    med = json_object_get(p, "sinr_median_db");
    CHECK_NEAR(json_number_value(json_array_get(med, 0)), 5, 1e-9);
    CHECK_NEAR(json_number_value(json_array_get(med, 1)), 13, 1e-9);

    /* Last fix's cell, operator in outage: dead, no goodput, open-ended RSRP median. */
    double last = ROUTE_LON0 + (ROUTE_N - 1) * ROUTE_STEP;
    f = feature_at(o, "250-02", last);
    CHECK_MSG(f != NULL, "no 250-02 cell at the last fix");
    p = json_object_get(f, "properties");
    CHECK_NEAR(json_number_value(json_object_get(p, "outage")), 1, 1e-3);
    CHECK(json_is_true(json_object_get(p, "dead")));
    CHECK(json_is_null(json_object_get(p, "goodput_kbps")));
    CHECK(json_is_null(json_object_get(p, "goodput_median_kbps")));
    med = json_object_get(p, "rsrp_median_dbm");
    CHECK(json_is_null(json_array_get(med, 0)));
    CHECK_NEAR(json_number_value(json_array_get(med, 1)), -115, 1e-9);
    CHECK(json_is_false(
        json_object_get(json_object_get(feature_at(o, "250-01", last), "properties"), "dead")));
    json_decref(o);

    /* One operator only: 40 cells, the second half dead. */
    snprintf(path, sizeof path, "/api/v1/coverage?bbox=%.4f,%.4f,%.4f,%.4f&operator=250-02",
             ROUTE_LON0 - 0.01, ROUTE_LAT - 0.01, ROUTE_LON0 + 0.06, ROUTE_LAT + 0.01);
    o = get_json(path, 200);
    CHECK_INT(json_integer_value(json_object_get(o, "count")), ROUTE_N);
    size_t i, dead = 0;
    json_array_foreach(json_object_get(o, "features"), i, f)
    {
        p = json_object_get(f, "properties");
        CHECK_STR(json_string_value(json_object_get(p, "operator")), "250-02");
        dead += json_is_true(json_object_get(p, "dead"));
    }
    CHECK_INT(dead, ROUTE_N / 2);
    json_decref(o);
    o = get_json("/api/v1/coverage?bbox=37.5,55.7,37.7,55.8&operator=999-99", 200);
    CHECK_INT(json_integer_value(json_object_get(o, "count")), 0);
    CHECK_INT(json_array_size(json_object_get(o, "operators")), 2);
    json_decref(o);

    /* A box around the first 10 fixes only (cells whose edge touches it count too). */
    snprintf(path, sizeof path, "/api/v1/coverage?bbox=%.5f,%.4f,%.5f,%.4f", ROUTE_LON0 - 0.0001,
             ROUTE_LAT - 0.001, ROUTE_LON0 + 9 * ROUTE_STEP + 0.0001, ROUTE_LAT + 0.001);
    o = get_json(path, 200);
    CHECK_INT(json_integer_value(json_object_get(o, "count")), 20);
    json_array_foreach(json_object_get(o, "features"), i, f)
    {
        double lon = json_number_value(
            json_array_get(json_object_get(json_object_get(f, "geometry"), "coordinates"), 0));
        CHECK_MSG(lon > ROUTE_LON0 - 0.001 && lon < ROUTE_LON0 + 9 * ROUTE_STEP + 0.001,
                  "cell at %f outside the box", lon);
    }
    json_decref(o);
    /* Nowhere near the route: empty, not an error. */
    o = get_json("/api/v1/coverage?bbox=10,10,10.5,10.5", 200);
    CHECK_INT(json_integer_value(json_object_get(o, "count")), 0);
    CHECK_INT(json_array_size(json_object_get(o, "features")), 0);
    json_decref(o);

    /* Limit and truncation. */
    snprintf(path, sizeof path, "/api/v1/coverage?bbox=%.4f,%.4f,%.4f,%.4f&limit=10",
             ROUTE_LON0 - 0.01, ROUTE_LAT - 0.01, ROUTE_LON0 + 0.06, ROUTE_LAT + 0.01);
    o = get_json(path, 200);
    CHECK_INT(json_integer_value(json_object_get(o, "count")), 10);
    CHECK_INT(json_array_size(json_object_get(o, "features")), 10);
    CHECK(json_is_true(json_object_get(o, "truncated")));
    CHECK_INT(json_integer_value(json_object_get(o, "limit")), 10);
    json_decref(o);
    snprintf(path, sizeof path, "/api/v1/coverage?bbox=%.4f,%.4f,%.4f,%.4f&limit=80",
             ROUTE_LON0 - 0.01, ROUTE_LAT - 0.01, ROUTE_LON0 + 0.06, ROUTE_LAT + 0.01);
    o = get_json(path, 200);
    CHECK(json_is_false(json_object_get(o, "truncated"))); /* exactly all: not truncated */
    CHECK_INT(json_integer_value(json_object_get(o, "count")), 80);
    json_decref(o);

    /* Bad requests name the parameter. */
    const struct {
        const char *q, *needle;
    } bad[] = {
        {"", "bbox"},
        {"?bbox=", "bbox"},
        {"?bbox=37,55,38", "bbox"},
        {"?bbox=nan,55,38,56", "min_lon"},
        {"?bbox=38,55,37,56", "inverted"},
        {"?bbox=0,0,90,45", "too large"},
        {"?bbox=37,55,38,56&limit=0", "limit"},
        {"?bbox=37,55,38,56&limit=10001", "limit"},
        {"?bbox=37,55,38,56&limit=x", "limit"},
        {"?bbox=37,55,38,56&operator=a%2Fb", "operator"},
        {"?bbox=37,55,38,56&operator=12345678901234567", "operator"},
        {"?bbox=%FF%FE,55,38,56", "min_lon"}, /* not UTF-8: the message survives with '?' */
        {"?bbox=37,55,38,56&limit=%C3%28", "limit"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        snprintf(path, sizeof path, "/api/v1/coverage%s", bad[k].q);
        o = get_json(path, 400);
        const char *e = json_string_value(json_object_get(o, "error"));
        CHECK_MSG(e && strstr(e, bad[k].needle), "%s: error %s", path, e ? e : "(none)");
        json_decref(o);
    }
}

static void test_batches(void)
{
    json_t *o = get_json("/api/v1/batches", 200);
    CHECK(json_is_true(json_object_get(o, "available")));
    json_t *b = json_object_get(o, "batches");
    CHECK_INT(json_array_size(b), 3);
    CHECK_INT(json_integer_value(json_object_get(o, "quota_bytes")), 8ll << 20);
    CHECK_INT(json_integer_value(json_object_get(o, "pending_records")), 4);
    CHECK(json_integer_value(json_object_get(o, "pending_bytes")) > 0);
    CHECK_INT(json_integer_value(json_object_get(o, "pending_batches")), 2);
    CHECK(json_integer_value(json_object_get(o, "pending_batch_bytes")) > 0);
    CHECK_INT(json_integer_value(json_object_get(o, "used_bytes")),
              json_integer_value(json_object_get(o, "pending_bytes")) +
                  json_integer_value(json_object_get(o, "pending_batch_bytes")));
    CHECK_INT(json_integer_value(json_object_get(o, "uploaded_kept")), 1);
    CHECK_INT(json_integer_value(json_object_get(o, "next_seq")), 4);
    CHECK(json_integer_value(json_object_get(o, "last_cut_ms")) > 0);
    /* newest first */
    json_t *b3 = json_array_get(b, 0), *b2 = json_array_get(b, 1), *b1 = json_array_get(b, 2);
    CHECK_INT(json_integer_value(json_object_get(b3, "seq")), 3);
    CHECK_STR(json_string_value(json_object_get(b3, "state")), "pending");
    CHECK_INT(json_integer_value(json_object_get(b3, "records")), 2);
    CHECK(json_integer_value(json_object_get(b3, "bytes")) > 0);
    CHECK(json_integer_value(json_object_get(b3, "raw_bytes")) > 0);
    CHECK_INT(json_integer_value(json_object_get(b3, "t_first_ms")), ROUTE_UTC0 * 1000ll + 8000);
    CHECK_INT(json_integer_value(json_object_get(b3, "t_last_ms")), ROUTE_UTC0 * 1000ll + 9000);
    CHECK(json_is_null(json_object_get(b3, "delivered_ms")));
    CHECK_INT(json_integer_value(json_object_get(b3, "attempts")), 0);
    CHECK(json_is_null(json_object_get(b3, "last_error")));
    /* the oldest pending batch is the one the uploader keeps retrying */
    CHECK_INT(json_integer_value(json_object_get(b2, "seq")), 2);
    CHECK_STR(json_string_value(json_object_get(b2, "state")), "pending");
    CHECK_INT(json_integer_value(json_object_get(b2, "records")), 3);
    CHECK_INT(json_integer_value(json_object_get(b2, "attempts")), 3);
    CHECK_STR(json_string_value(json_object_get(b2, "last_error")), "collector answered 503");
    CHECK_INT(json_integer_value(json_object_get(b1, "seq")), 1);
    CHECK_STR(json_string_value(json_object_get(b1, "state")), "uploaded");
    CHECK_INT(json_integer_value(json_object_get(b1, "records")), 5);
    CHECK_INT(json_integer_value(json_object_get(b1, "bytes")), 0);
    CHECK_INT(json_integer_value(json_object_get(b1, "delivered_ms")), ROUTE_UTC0 * 1000ll + 5500);
    CHECK(json_is_null(json_object_get(b1, "attempts")));
    json_t *u = json_object_get(o, "upload");
    CHECK_INT(json_integer_value(json_object_get(u, "attempts")), 9);
    CHECK_INT(json_integer_value(json_object_get(u, "last_http")), 503);
    json_decref(o);

    o = get_json("/api/v1/batches?limit=1", 200);
    CHECK_INT(json_array_size(json_object_get(o, "batches")), 1);
    CHECK_INT(json_integer_value(
                  json_object_get(json_array_get(json_object_get(o, "batches"), 0), "seq")),
              3);
    json_decref(o);
    o = get_json("/api/v1/batches?limit=0", 400);
    CHECK(strstr(json_string_value(json_object_get(o, "error")), "limit") != NULL);
    json_decref(o);
    json_decref(get_json("/api/v1/batches?limit=1001", 400));
}

/* Map and outbox switched on but not there yet (first boot): empty answers, not errors; both
 * switched off: 404 saying so. */
static void test_no_data(struct state *st, const char *dir)
{
    struct config cfg;
    make_config(&cfg, "127.0.0.1:0");
    str_copy(cfg.data_dir, dir, sizeof cfg.data_dir);
    cfg.coverage.enabled = true;
    cfg.telemetry.enabled = true;
    struct http *h = NULL;
    char err[256];
    CHECK_INT(http_start(&cfg, st, NULL, &h, err, sizeof err), 0);
    unsigned saved = g_port;
    g_port = http_port(h);
    json_t *o = get_json("/api/v1/coverage?bbox=37,55,38,56", 200);
    CHECK(json_is_false(json_object_get(o, "available")));
    CHECK_INT(json_integer_value(json_object_get(o, "count")), 0);
    json_decref(o);
    o = get_json("/api/v1/batches", 200);
    CHECK(json_is_false(json_object_get(o, "available")));
    CHECK_INT(json_array_size(json_object_get(o, "batches")), 0);
    CHECK(json_is_null(json_object_get(o, "upload")));
    json_decref(o);
    /* Garbage where the files should be: the map reads as "not there yet" (the steer thread sets
     * such a file aside at its next open), the outbox as an error naming the file. */
    char fp[300];
    snprintf(fp, sizeof fp, "%s/coverage.db", dir);
    FILE *f = fopen(fp, "w");
    CHECK(f != NULL);
    for (int i = 0; f && i < 300; i++)
        fputs("this is not a database ", f);
    if (f)
        fclose(f);
    snprintf(fp, sizeof fp, "%s/outbox.db", dir);
    f = fopen(fp, "w");
    CHECK(f != NULL);
    for (int i = 0; f && i < 300; i++)
        fputs("this is not a database ", f);
    if (f)
        fclose(f);
    o = get_json("/api/v1/coverage?bbox=37,55,38,56", 200);
    CHECK(json_is_false(json_object_get(o, "available")));
    json_decref(o);
    o = get_json("/api/v1/batches", 500);
    CHECK(strstr(json_string_value(json_object_get(o, "error")), "outbox.db") != NULL);
    json_decref(o);
    /* neither query left anything behind (read-only connections create no files) */
    snprintf(fp, sizeof fp, "%s/coverage.db-wal", dir);
    CHECK(access(fp, F_OK) != 0);
    snprintf(fp, sizeof fp, "%s/coverage.db", dir);
    unlink(fp);
    snprintf(fp, sizeof fp, "%s/outbox.db", dir);
    unlink(fp);
    http_stop(h);
    cfg.coverage.enabled = false;
    cfg.telemetry.enabled = false;
    CHECK_INT(http_start(&cfg, st, NULL, &h, err, sizeof err), 0);
    g_port = http_port(h);
    o = get_json("/api/v1/coverage?bbox=37,55,38,56", 404);
    CHECK(strstr(json_string_value(json_object_get(o, "error")), "coverage.enabled") != NULL);
    json_decref(o);
    json_decref(get_json("/api/v1/batches", 404));
    http_stop(h);
    g_port = saved;
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
    printf("page weight: %zu bytes (index.html + app.js + style.css, uncompressed; limit %d)\n",
           total, 200 * 1024);
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

    /* A data directory with a seeded coverage map and outbox, and an empty one. */
    char dir[] = "/tmp/corridor-test-http-XXXXXX", empty[300];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(empty, sizeof empty, "%s/empty", dir);
    CHECK_INT(mkdir(empty, 0700), 0);
    char dbp[300];
    snprintf(dbp, sizeof dbp, "%s/coverage.db", dir);
    CHECK_MSG(seed_coverage(dbp, err, sizeof err) == 0, "seed coverage: %s", err);
    snprintf(dbp, sizeof dbp, "%s/outbox.db", dir);
    CHECK_MSG(seed_outbox(dbp, err, sizeof err) == 0, "seed outbox: %s", err);

    make_config(&cfg, "127.0.0.1:0");
    str_copy(cfg.data_dir, dir, sizeof cfg.data_dir);
    cfg.coverage.enabled = true;
    cfg.telemetry.enabled = true;
    cfg.telemetry.quota_mb = 8;
    struct state *st = state_new(&cfg);
    fill_state(st);
    struct http_actions act = {.ctx = &g_calls,
                               .link_set_enabled = cb_link,
                               .modem_reset = cb_reset,
                               .password_hash = hash,
                               .upload_status = cb_upload};
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
    test_status_cache(st);
    test_coverage();
    test_batches();
    test_no_data(st, empty);
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
    rmdir(empty);
    const char *files[] = {"coverage.db", "coverage.db-wal", "coverage.db-shm",
                           "outbox.db",   "outbox.db-wal",   "outbox.db-shm"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(dbp, sizeof dbp, "%s/%s", dir, files[i]);
        unlink(dbp);
    }
    CHECK_MSG(rmdir(dir) == 0, "%s left behind", dir);
    curl_global_cleanup();
    return test_summary();
}
