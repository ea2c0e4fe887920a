/* sim (c): fallback to the modems' GNSS.
 *   A. gpsd absent (nothing on the port): the client retries with backoff (no busy loop, one
 *      log line), modem fixes fed in are used, position_stop stays within 200 ms.
 *   B. a real gpsd (gpsfake) that reports only "no fix": modem fixes are used, the freshest modem
 *      with a fix wins, a modem going quiet leads to dead reckoning and back, with events. */
#include "gpsfake_run.h"
#include "nmea_gen.h"
#include "telemetry/telemetry.h"
#include "testlib.h"

#include "common/common.h"

#include <stdlib.h>
#include <unistd.h>

static struct position_fix modem_fix(double lat, double lon)
{
    struct position_fix f;
    memset(&f, 0, sizeof(f));
    f.mode = POSITION_MODE_3D;
    f.utc = 1767225600;
    f.lat = lat;
    f.lon = lon;
    f.alt_m = 140;
    f.speed_kmh = 36.0;
    f.track_deg = 0.0;
    f.eph_m = NAN;
    f.epv_m = NAN;
    return f;
}

static size_t count_in_log(const char *needle)
{
    static char buf[64 * 1024];
    log_recent(buf, sizeof(buf), 256);
    size_t n = 0;
    for (const char *s = buf; (s = strstr(s, needle)) != NULL; s += strlen(needle))
        n++;
    return n;
}

static struct position *make(struct recorder *rec, int port, unsigned rmin, unsigned rmax)
{
    struct position_config cfg;
    char err[256];
    position_config_default(&cfg);
    str_copy(cfg.gpsd_host, "127.0.0.1", sizeof(cfg.gpsd_host));
    snprintf(cfg.gpsd_port, sizeof(cfg.gpsd_port), "%d", port);
    cfg.reconnect_min_ms = rmin;
    cfg.reconnect_max_ms = rmax;
    cfg.on_report = rec_on_report;
    cfg.on_event = rec_on_event;
    cfg.cb_ctx = rec;
    struct position *p = position_new(&cfg, err, sizeof(err));
    CHECK(p != NULL);
    if (p)
        CHECK_INT(position_start(p, err, sizeof(err)), 0);
    return p;
}

static void test_gpsd_absent(void)
{
    static struct recorder rec;
    rec_init(&rec);
    int port = gpsfake_free_port(); /* nobody listens there */
    size_t before = count_in_log("unreachable");
    struct position *p = make(&rec, port, 100, 800);
    if (!p)
        return;
    struct position_fix f = modem_fix(55.80, 37.50), out;
    for (int i = 0; i < 15; i++) { /* 3 s of a modem fix every 200 ms */
        f.lat += 0.0001;
        f.mono_ms = 0;
        position_feed_modem_fix(p, "mts", &f);
        msleep(200);
    }
    CHECK(position_get(p, &out));
    CHECK_INT(out.source, POSITION_SRC_MODEM);
    CHECK_STR(out.source_name, "modem:mts");
    CHECK_NEAR(out.lat, f.lat, 1e-12);
    CHECK(rec_has_event(&rec, "position: using modem:mts GNSS"));
    struct position_status st;
    position_get_status(p, &st);
    CHECK(!st.gpsd_connected);
    CHECK_INT(st.gpsd_connects, 0);
    /* backoff 100, 200, 400, 800, 800...: about 6 attempts in 3 s */
    CHECK_MSG(st.gpsd_connect_failures >= 3 && st.gpsd_connect_failures <= 10,
              "%llu attempts in 3 s", (unsigned long long)st.gpsd_connect_failures);
    CHECK_INT(count_in_log("unreachable") - before, 1); /* logged once per state change */
    CHECK(strstr(st.last_event, "modem:mts") != NULL);
    uint64_t t0 = mono_ms();
    position_stop(p);
    CHECK_MSG(mono_ms() - t0 <= 200, "stop took %llu ms", (unsigned long long)(mono_ms() - t0));
    position_free(p);
}

static void test_gpsd_without_fix(void)
{
    char dir[] = "/tmp/corridor-position-XXXXXX", path[128], err[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/nofix.nmea", dir);
    static const struct nmea_waypoint wp[2] = {{55.8, 37.5}, {55.9, 37.5}};
    struct nmea_route r = {wp, 2, 10.0, 140.0};
    struct nmea_gap all = {0, 1000};
    CHECK_INT(nmea_write_route(path, &r, 1767225600, 0, 200, &all, 1, err, sizeof(err)), 0);

    static struct recorder rec;
    rec_init(&rec);
    int port = gpsfake_free_port();
    struct position *p = make(&rec, port, 50, 200);
    if (!p)
        return;
    struct gpsfake g = {0};
    CHECK_INT(gpsfake_start(&g, port, path, 0.05, 50, err, sizeof(err)), 0);
    /* wait for gpsd's no-fix reports */
    uint64_t t0 = mono_ms();
    while (rec_count(&rec) < 5 && mono_ms() - t0 < 15000)
        msleep(50);
    struct position_status st;
    position_get_status(p, &st);
    CHECK(st.gpsd_connected);
    CHECK_MSG(st.gpsd_reports >= 5, "%llu gpsd reports", (unsigned long long)st.gpsd_reports);
    struct position_fix out, last;
    CHECK(!position_get(p, &out)); /* gpsd has no fix, no modem yet: none */
    CHECK_INT(out.source, POSITION_SRC_NONE);

    /* two modems: beeline's reading is older, mts fresher: mts wins; then mts loses its fix
     * and beeline (still fresh) takes over */
    struct position_fix fm = modem_fix(55.81, 37.51), fb = modem_fix(55.82, 37.52);
    fb.mono_ms = mono_ms() - 1000;
    position_feed_modem_fix(p, "beeline", &fb);
    for (int i = 0; i < 5; i++) {
        fm.mono_ms = 0;
        fm.lat += 0.0001;
        position_feed_modem_fix(p, "mts", &fm);
        msleep(200);
    }
    CHECK(position_get(p, &out));
    CHECK_INT(out.source, POSITION_SRC_MODEM);
    CHECK_STR(out.source_name, "modem:mts");
    CHECK_NEAR(out.lat, fm.lat, 1e-12);
    CHECK_NEAR(out.alt_m, 140.0, 1e-9);
    msleep(150); /* the thread evaluates every 100 ms */
    CHECK(rec_has_event(&rec, "position: using modem:mts GNSS"));
    /* gpsd kept reporting no fix all along */
    size_t n = rec_count(&rec);
    CHECK(n >= 5);
    for (size_t i = 0; i < n && rec_get(&rec, i, &last); i++)
        CHECK_INT(last.mode, POSITION_MODE_NONE);

    fb.mono_ms = 0;
    position_feed_modem_fix(p, "beeline", &fb);
    struct position_fix none = modem_fix(NAN, NAN);
    none.mode = POSITION_MODE_NONE;
    position_feed_modem_fix(p, "mts", &none);
    msleep(150);
    CHECK(position_get(p, &out));
    CHECK_STR(out.source_name, "modem:beeline");
    CHECK(rec_has_event(&rec, "modem:mts lost fix, using modem:beeline GNSS"));

    /* beeline goes quiet: after 3 s dead reckoning from beeline's fix (10 m/s north) */
    msleep(3300);
    CHECK(position_get(p, &out));
    CHECK_INT(out.source, POSITION_SRC_DEAD_RECKONING);
    double moved = position_distance_m(fb.lat, fb.lon, out.lat, out.lon);
    CHECK_MSG(moved > 30.0 && moved < 40.0, "moved %.1f m in ~3.4 s at 10 m/s", moved);
    CHECK(out.lat > fb.lat);
    CHECK(rec_has_event(&rec, "modem:beeline fix stale, dead reckoning from the last "
                              "modem:beeline fix (36.0 km/h, track 0 deg, max 60 s)"));
    /* a modem fix again: back to the modem */
    fm.mono_ms = 0;
    position_feed_modem_fix(p, "mts", &fm);
    msleep(150);
    CHECK(position_get(p, &out));
    CHECK_STR(out.source_name, "modem:mts");
    CHECK(rec_has_event(&rec, "using modem:mts GNSS (was dead_reckoning)"));
    position_get_status(p, &st);
    CHECK_INT(st.switches, 4);
    rec_print_events(&rec);
    position_stop(p);
    gpsfake_stop(&g);
    position_free(p);
    unlink(path);
    rmdir(dir);
}

/* C. no gpsd configured (host ""), short limits: modem -> dead reckoning -> none. */
static void test_limits_without_gpsd(void)
{
    static struct recorder rec;
    rec_init(&rec);
    struct position_config cfg;
    char err[256];
    position_config_default(&cfg);
    cfg.gpsd_host[0] = '\0';
    cfg.modem_fresh_ms = 500;
    cfg.dr_max_gap_ms = 1500;
    cfg.on_event = rec_on_event;
    cfg.cb_ctx = &rec;
    struct position *p = position_new(&cfg, err, sizeof(err));
    CHECK(p != NULL);
    if (!p)
        return;
    CHECK_INT(position_start(p, err, sizeof(err)), 0);
    CHECK(position_start(p, err, sizeof(err)) != 0); /* twice: refused */
    struct position_fix f = modem_fix(55.80, 37.50), out;
    position_feed_modem_fix(p, "mts", &f);
    msleep(250);
    CHECK(position_get(p, &out));
    CHECK_STR(out.source_name, "modem:mts");
    msleep(600);
    CHECK(position_get(p, &out));
    CHECK_INT(out.source, POSITION_SRC_DEAD_RECKONING);
    msleep(1000);
    CHECK(!position_get(p, &out));
    CHECK_INT(out.source, POSITION_SRC_NONE);
    msleep(150);
    struct position_status st;
    position_get_status(p, &st);
    CHECK_INT(st.switches, 3);
    CHECK_INT(st.gpsd_connect_failures, 0); /* never tried */
    CHECK_STR(st.last_event, "position: dead reckoning limit 1.5 s reached, no position");
    CHECK(rec_has_event(&rec, "position: modem:mts fix stale, dead reckoning from the last "
                              "modem:mts fix (36.0 km/h, track 0 deg, max 1.5 s)"));
    rec_print_events(&rec);
    uint64_t t0 = mono_ms();
    position_stop(p);
    CHECK_MSG(mono_ms() - t0 <= 200, "stop took %llu ms", (unsigned long long)(mono_ms() - t0));
    position_stop(p); /* twice: fine */
    position_free(p);
}

int main(void)
{
    log_init("test_position_fallback", LOGL_INFO, false);
    CHECK(gpsfake_available());
    if (t_fail)
        return test_summary();
    test_limits_without_gpsd();
    test_gpsd_absent();
    test_gpsd_without_fix();
    return test_summary();
}
