/* sim (b): NMEA generated from a route (tests/position/nmea_gen.c) is played by gpsfake into a
 * real gpsd; it includes a fix loss, and gpsd is killed mid-route and started again.
 * Checks: every gpsd fix lies on the route where the generator put it (position, speed, track);
 * no fix is reported inside the loss; the loss switches to dead reckoning and back, with events;
 * after the restart the client reconnects by itself (without busy-looping) and positions resume. */
#include "gpsfake_run.h"
#include "nmea_gen.h"
#include "telemetry/telemetry.h"
#include "testlib.h"

#include "common/common.h"

#include <stdlib.h>
#include <unistd.h>

#define START_UTC 1767225600 /* 2026-01-01T00:00:00Z */
#define PART1_END 40
#define PART2_END 70
#define GAP_FROM  15
#define GAP_TO    23

/* A bus line with a right turn and a left turn (Moscow-like coordinates). */
static const struct nmea_waypoint WP[] = {
    {55.75000, 37.60000}, {55.75000, 37.61000}, {55.74500, 37.61000}, {55.74500, 37.63000}};
static const struct nmea_route ROUTE = {WP, ARRAY_LEN(WP), 20.0, 150.0};

/* Wait until a gpsd fix for epoch >= k shows up (or timeout); returns whether it did. */
static bool wait_epoch(struct recorder *rec, int64_t k, unsigned timeout_ms)
{
    uint64_t t0 = mono_ms();
    while (mono_ms() - t0 < timeout_ms) {
        size_t n = rec_count(rec);
        struct position_fix f;
        if (n > 0 && rec_get(rec, n - 1, &f) && f.mode != POSITION_MODE_NONE &&
            f.utc - START_UTC >= k)
            return true;
        msleep(20);
    }
    return false;
}

/* Check reports [from, to): each fix on the route at its epoch. gpsd 3.22 sends some reports
 * before it knows the date (no time): those must lie on one of the generated points. Speed: the
 * RMC speed is exact, but for reports cut at the GGA sentence gpsd derives speed from
 * successive positions (off by up to a few km/h, more across a turn), so most, not all, must
 * be exact. Returns the number of fixes. */
static size_t check_fixes(struct recorder *rec, size_t from, size_t to, int64_t kmin, int64_t kmax)
{
    size_t fixes = 0, speed_ok = 0;
    struct position_fix f;
    for (size_t i = from; i < to && rec_get(rec, i, &f); i++) {
        if (f.mode == POSITION_MODE_NONE)
            continue;
        fixes++;
        int64_t k = f.utc - START_UTC;
        double lat, lon, trk, d = 1e9;
        if (f.utc < 0) { /* nearest generated point */
            for (int64_t j = kmin; j < kmax; j++) {
                nmea_route_at(&ROUTE, (double)j, &lat, &lon, &trk);
                double dj = position_distance_m(lat, lon, f.lat, f.lon);
                if (dj < d) {
                    d = dj;
                    k = j;
                }
            }
        }
        CHECK_MSG(k >= kmin && k < kmax, "fix for epoch %lld outside [%lld, %lld)", (long long)k,
                  (long long)kmin, (long long)kmax);
        CHECK_MSG(k < GAP_FROM || k >= GAP_TO, "fix reported inside the loss, epoch %lld",
                  (long long)k);
        nmea_route_at(&ROUTE, (double)k, &lat, &lon, &trk);
        d = position_distance_m(lat, lon, f.lat, f.lon);
        CHECK_MSG(d < 0.5, "epoch %lld: %.2f m off the route", (long long)k, d);
        if (isfinite(f.speed_kmh)) {
            CHECK_MSG(f.speed_kmh > 40.0 && f.speed_kmh < 80.0, "epoch %lld: %.1f km/h",
                      (long long)k, f.speed_kmh);
            speed_ok += fabs(f.speed_kmh - 72.0) < 0.3;
        }
        if (isfinite(f.track_deg))
            CHECK_MSG(fabs(fmod(f.track_deg - trk + 540.0, 360.0) - 180.0) < 0.5,
                      "epoch %lld: track %.2f, expected %.2f", (long long)k, f.track_deg, trk);
        if (f.mode == POSITION_MODE_3D)
            CHECK_NEAR(f.alt_m, 150.0, 0.01);
        CHECK_STR(f.source_name, "gpsd");
    }
    CHECK_MSG(speed_ok * 2 >= fixes, "only %zu of %zu fixes at 72.0 km/h", speed_ok, fixes);
    return fixes;
}

int main(void)
{
    log_init("test_position_route", LOGL_INFO, false);
    CHECK(gpsfake_available());
    if (t_fail)
        return test_summary();
    char dir[] = "/tmp/corridor-position-XXXXXX", p1[128], p2[128], err[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(p1, sizeof(p1), "%s/route-part1.nmea", dir);
    snprintf(p2, sizeof(p2), "%s/route-part2.nmea", dir);
    struct nmea_gap gap = {GAP_FROM, GAP_TO};
    CHECK_INT(nmea_write_route(p1, &ROUTE, START_UTC, 0, PART1_END, &gap, 1, err, sizeof(err)), 0);
    CHECK_INT(
        nmea_write_route(p2, &ROUTE, START_UTC, PART1_END, PART2_END, NULL, 0, err, sizeof(err)),
        0);

    static struct recorder rec;
    rec_init(&rec);
    int port = gpsfake_free_port();
    struct position_config cfg;
    position_config_default(&cfg);
    str_copy(cfg.gpsd_host, "127.0.0.1", sizeof(cfg.gpsd_host));
    snprintf(cfg.gpsd_port, sizeof(cfg.gpsd_port), "%d", port);
    cfg.reconnect_min_ms = 50;
    cfg.reconnect_max_ms = 400;
    cfg.on_report = rec_on_report;
    cfg.on_event = rec_on_event;
    cfg.cb_ctx = &rec;
    struct position *p = position_new(&cfg, err, sizeof(err));
    CHECK(p != NULL);
    if (!p)
        return test_summary();
    CHECK_INT(position_start(p, err, sizeof(err)), 0);

    /* part 1: route with a fix loss */
    struct gpsfake g = {0};
    CHECK_INT(gpsfake_start(&g, port, p1, 0.05, 50, err, sizeof(err)), 0);
    CHECK_MSG(wait_epoch(&rec, PART1_END - 1, 25000), "part 1 never reached its last epoch");
    struct position_fix now;
    CHECK(position_get(p, &now));
    CHECK_INT(now.source, POSITION_SRC_GPSD);
    size_t n1 = rec_count(&rec);
    size_t fixes1 = check_fixes(&rec, 0, n1, 0, PART1_END);
    CHECK_MSG(fixes1 >= 20, "only %zu fixes in part 1", fixes1);
    CHECK(rec_has_event(&rec, "using gpsd 3D fix"));
    /* the speed in the text is gpsd's: RMC's 72.0 or its own estimate from positions */
    CHECK(rec_has_event(&rec, "gpsd lost fix, dead reckoning from the last gpsd fix (7"));
    CHECK(rec_has_event(&rec, "using gpsd 3D fix (was dead_reckoning)"));

    /* kill gpsd (and gpsfake) mid-route */
    gpsfake_stop(&g);
    struct position_status st;
    uint64_t t0 = mono_ms();
    do {
        msleep(20);
        position_get_status(p, &st);
    } while (st.gpsd_connected && mono_ms() - t0 < 2000);
    CHECK(!st.gpsd_connected);
    /* usually 1/1; the immediate retry can still reach the dying gpsd's listen queue */
    CHECK(st.gpsd_disconnects >= 1);
    CHECK(st.gpsd_connects >= 1 && st.gpsd_connects == st.gpsd_disconnects);
    /* gpsd away for 2.5 s: the last fix goes stale, dead reckoning takes over */
    msleep(2500);
    CHECK(position_get(p, &now));
    CHECK_INT(now.source, POSITION_SRC_DEAD_RECKONING);
    CHECK(rec_has_event(&rec, "gpsd disconnected, dead reckoning"));
    position_get_status(p, &st);
    /* backoff 50..400 ms: a handful of attempts, not a busy loop */
    CHECK_MSG(st.gpsd_connect_failures >= 3 && st.gpsd_connect_failures <= 20,
              "%llu connect attempts failed in 2.5 s",
              (unsigned long long)st.gpsd_connect_failures);

    uint64_t connects_before = st.gpsd_connects;
    /* gpsd back on the same port with the rest of the route */
    CHECK_INT(gpsfake_start(&g, port, p2, 0.05, 50, err, sizeof(err)), 0);
    CHECK_MSG(wait_epoch(&rec, PART2_END - 1, 25000), "positions did not resume after restart");
    position_get_status(p, &st);
    CHECK(st.gpsd_connected);
    CHECK_INT(st.gpsd_connects, connects_before + 1);
    CHECK(position_get(p, &now));
    CHECK_INT(now.source, POSITION_SRC_GPSD);
    size_t n2 = rec_count(&rec);
    size_t fixes2 = check_fixes(&rec, n1, n2, PART1_END - 1, PART2_END);
    CHECK_MSG(fixes2 >= 15, "only %zu fixes after the restart", fixes2);
    /* the last fix is the route's last epoch */
    struct position_fix last;
    CHECK(rec_get(&rec, n2 - 1, &last));
    CHECK_INT(last.utc - START_UTC, PART2_END - 1);

    uint64_t ts = mono_ms();
    position_stop(p);
    CHECK_MSG(mono_ms() - ts <= 200, "position_stop took %llu ms",
              (unsigned long long)(mono_ms() - ts));
    gpsfake_stop(&g);
    rec_print_events(&rec);
    position_free(p);
    unlink(p1);
    unlink(p2);
    rmdir(dir);
    return test_summary();
}
