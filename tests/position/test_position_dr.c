/* sim (d): dead reckoning through a 20 s fix gap (a tunnel) on a straight segment, in real time.
 * gpsfake plays the generated route at about one epoch per second (3 sentences, 1/3 s apart).
 * During the gap the position must be dead reckoning from the last gpsd fix, moving along the
 * track at the last speed with a growing error estimate; when the fix returns, the dead-reckoned
 * position for that instant must be within a few metres of the real one. */
#include "gpsfake_run.h"
#include "nmea_gen.h"
#include "telemetry/telemetry.h"
#include "testlib.h"

#include "common/common.h"

#include <stdlib.h>
#include <unistd.h>

#define START_UTC 1767225600
#define GAP_FROM  6
#define GAP_TO    26 /* 20 epochs = 20 s without fix */
#define END       30

/* Straight east along a parallel is not a great circle; due north along a meridian is: the
 * dead-reckoned great circle and the route then coincide exactly. */
static const struct nmea_waypoint WP[] = {{55.70, 37.55}, {55.80, 37.55}};
static const struct nmea_route ROUTE = {WP, 2, 15.0, 150.0}; /* 54 km/h */

int main(void)
{
    log_init("test_position_dr", LOGL_INFO, false);
    CHECK(gpsfake_available());
    if (t_fail)
        return test_summary();
    char dir[] = "/tmp/corridor-position-XXXXXX", path[128], err[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/tunnel.nmea", dir);
    struct nmea_gap gap = {GAP_FROM, GAP_TO};
    CHECK_INT(nmea_write_route(path, &ROUTE, START_UTC, 0, END, &gap, 1, err, sizeof(err)), 0);

    static struct recorder rec;
    rec_init(&rec);
    int port = gpsfake_free_port();
    struct position_config cfg;
    position_config_default(&cfg);
    str_copy(cfg.gpsd_host, "127.0.0.1", sizeof(cfg.gpsd_host));
    snprintf(cfg.gpsd_port, sizeof(cfg.gpsd_port), "%d", port);
    cfg.reconnect_min_ms = 50;
    cfg.reconnect_max_ms = 200;
    cfg.on_report = rec_on_report;
    cfg.on_event = rec_on_event;
    cfg.cb_ctx = &rec;
    struct position *p = position_new(&cfg, err, sizeof(err));
    CHECK(p != NULL);
    if (!p)
        return test_summary();
    CHECK_INT(position_start(p, err, sizeof(err)), 0);
    struct gpsfake g = {0};
    CHECK_INT(gpsfake_start(&g, port, path, 1.0 / 3.0, 55, err, sizeof(err)), 0);

    /* sample position_get at 10 Hz until the fix is back after the gap */
    static struct position_fix dr[400];
    size_t ndr = 0;
    bool back = false;
    uint64_t t0 = mono_ms();
    while (!back && mono_ms() - t0 < 50000) {
        msleep(100);
        struct position_fix f;
        position_get(p, &f);
        if (f.source == POSITION_SRC_DEAD_RECKONING && ndr < ARRAY_LEN(dr))
            dr[ndr++] = f;
        back = f.source == POSITION_SRC_GPSD && f.utc - START_UTC >= GAP_TO;
    }
    CHECK_MSG(back, "the fix never came back");
    position_stop(p);
    gpsfake_stop(&g);

    /* the last gpsd fix before the gap and the first after it */
    struct position_fix f, pre = {0}, post = {0}, first = {0};
    bool have_pre = false, have_post = false, have_first = false;
    for (size_t i = 0; rec_get(&rec, i, &f); i++) {
        if (f.mode == POSITION_MODE_NONE || f.utc < 0)
            continue;
        int64_t k = f.utc - START_UTC;
        if (!have_first) {
            first = f;
            have_first = true;
        }
        if (k < GAP_FROM) {
            pre = f;
            have_pre = true;
        } else if (k >= GAP_TO && !have_post) {
            post = f;
            have_post = true;
        }
    }
    CHECK(have_pre && have_post && have_first);
    CHECK_MSG(ndr >= 150, "only %zu dead-reckoning samples in a 20 s gap", ndr);
    if (!have_pre || !have_post || ndr < 2)
        return test_summary();
    double period_ms = (double)(pre.mono_ms - first.mono_ms) / (double)(pre.utc - first.utc);
    fprintf(stderr, "gpsfake epoch period %.1f ms, gap %llu ms, %zu DR samples\n", period_ms,
            (unsigned long long)(post.mono_ms - pre.mono_ms), ndr);

    /* dead reckoning: from the last gpsd fix, along its track, at its speed, error growing */
    double prev_eph = 0, prev_lat = -90;
    for (size_t i = 0; i < ndr; i++) {
        struct position_fix *d = &dr[i];
        CHECK_STR(d->source_name, "dead_reckoning");
        CHECK_INT(d->mode, POSITION_MODE_2D);
        CHECK(d->eph_m >= prev_eph);
        CHECK(d->lat >= prev_lat); /* moving north */
        CHECK_NEAR(d->lon, 37.55, 1e-7);
        CHECK_NEAR(d->speed_kmh, 54.0, 0.1);
        double expect = (double)(d->mono_ms - pre.mono_ms) / 1000.0 * d->speed_kmh / 3.6;
        CHECK_NEAR(position_distance_m(pre.lat, pre.lon, d->lat, d->lon), expect, 0.01);
        prev_eph = d->eph_m;
        prev_lat = d->lat;
    }
    CHECK(dr[ndr - 1].eph_m > dr[0].eph_m + 15.0); /* grew over ~20 s */

    /* against the truth when the fix returns: dead reckoning for that instant vs the fix.
     * Cross-track (longitude, the route runs along a meridian) shows the direction; along-track
     * also contains gpsfake's real-time pacing (its epochs are not exactly 1 s, and gpsd 3.22
     * cuts a report at a different sentence now and then): 15 m = one second of travel. */
    struct position_fix at_post;
    position_dead_reckon(&pre, post.mono_ms, &at_post);
    double err_m = position_distance_m(at_post.lat, at_post.lon, post.lat, post.lon);
    double cross = position_distance_m(at_post.lat, at_post.lon, at_post.lat, post.lon);
    double along = position_distance_m(at_post.lat, post.lon, post.lat, post.lon);
    double drift = (double)(post.mono_ms - pre.mono_ms) / 1000.0 - (double)(post.utc - pre.utc);
    fprintf(stderr,
            "after %.1f s real (%lld s of NMEA time): dead reckoning %.2f m from the returning "
            "fix (cross-track %.2f m, along-track %.2f m; pacing drift alone explains %.2f m)\n",
            (double)(post.mono_ms - pre.mono_ms) / 1000.0, (long long)(post.utc - pre.utc), err_m,
            cross, along, fabs(drift) * 15.0);
    CHECK_MSG(cross < 1.0, "dead reckoning %.2f m off the track", cross);
    CHECK_MSG(along < 15.0, "dead reckoning %.2f m along-track from the returning fix", along);
    /* the rest: DR for the real elapsed time vs the vehicle's NMEA time (north positive) */
    double along_signed = post.lat >= at_post.lat ? along : -along;
    CHECK_MSG(fabs(along_signed - (-drift * 15.0)) < 2.0,
              "along-track %.2f m not explained by the pacing drift (%.2f m)", along_signed,
              -drift * 15.0);
    CHECK(rec_has_event(&rec, "gpsd lost fix, dead reckoning from the last gpsd fix (54.0 km/h, "
                              "track 0 deg, max 60 s)"));
    CHECK(rec_has_event(&rec, "using gpsd 3D fix (was dead_reckoning)"));
    rec_print_events(&rec);
    position_free(p);
    unlink(path);
    rmdir(dir);
    return test_summary();
}
