/* Predictor on a synthetic route learned over several trips.
 *
 * Route: 3 km due east from 55.75,37.60, then 4 km due north, 20 m/s, one sample a second per
 * operator. Operators:
 *   mts    250-01  recurring dead zone 500..900 m after the corner (3500..3900 m along)
 *   beeline 250-99 good everywhere
 *   tele2  250-20  dead zone 5000..5400 m along that appears only from trip 6 on
 * Checks: the dead zone is predicted the right number of seconds ahead at the right distance
 * (+-1 cell) by following the learned path around the corner (extrapolating the track would
 * miss it), confidence rises with trips, the late dead zone is learned within 3 trips, and
 * edge cases (no data, standing still, unknown track, driving the other way). */
#include "testlib.h"
#include "route.h"

#include "common/common.h"
#include "telemetry/policy.h"

#include <stdlib.h>
#include <unistd.h>

#define CORNER_M 3000.0
#define SPEED    20.0

static double corner_lat, corner_lon;

static void pos_at(double s, double *lat, double *lon, double *track)
{
    if (s < CORNER_M) {
        cov_destination(ROUTE_LAT0, ROUTE_LON0, 90, s, lat, lon);
        *track = 90;
    } else {
        cov_destination(corner_lat, corner_lon, 0, s - CORNER_M, lat, lon);
        *track = 0;
    }
}

static const struct {
    const char *op;
    double from, to;
    uint32_t first_trip;
} zones[] = {{"250-01", 3500, 3900, 1}, {"250-99", -1, -1, 1}, {"250-20", 5000, 5400, 6}};

static void drive_trip(struct coverage_map *m, uint32_t trip)
{
    char err[256];
    for (int t = 0; t * SPEED < 7000; t++) {
        double s = t * SPEED;
        for (size_t z = 0; z < ARRAY_LEN(zones); z++) {
            bool dead = trip >= zones[z].first_trip && s >= zones[z].from && s < zones[z].to;
            struct cov_sample x;
            route_sample(&x, zones[z].op, trip, 0, SPEED, dead, ROUTE_UTC0 + trip * 100000 + t);
            double track;
            pos_at(s, &x.lat, &x.lon, &track);
            x.track_deg = track;
            /* a little GPS noise across the track (+-3 m) */
            double la, lo;
            cov_destination(x.lat, x.lon, track + 90, ((t * 37) % 7 - 3) * 1.0, &la, &lo);
            x.lat = la;
            x.lon = lo;
            int rc = coverage_add_sample(m, &x, err, sizeof(err));
            CHECK_MSG(rc == 0, "trip %u t %d: %s", trip, t, err);
        }
    }
    CHECK_INT(coverage_flush(m, err, sizeof(err)), 0);
}

static const struct cov_op_prediction *predict_at(struct coverage_map *m, double s, const char *op,
                                                  struct cov_prediction *p)
{
    double lat, lon, track;
    pos_at(s, &lat, &lon, &track);
    char err[256];
    CHECK_INT(coverage_predict(m, lat, lon, SPEED, track, 60, p, err, sizeof(err)), 0);
    return cov_prediction_find(p, op);
}

int main(void)
{
    log_init("test_coverage_predict", LOGL_WARN, false);
    cov_destination(ROUTE_LAT0, ROUTE_LON0, 90, CORNER_M, &corner_lat, &corner_lon);
    char dir[256], path[300], err[256];
    snprintf(dir, sizeof(dir), "%s/covpredXXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof(path), "%s/coverage.db", dir);
    struct coverage_map *m = NULL;
    CHECK_INT(coverage_open(path, NULL, &m, err, sizeof(err)), 0);
    if (!m)
        return test_summary();

    /* empty map: nothing known, nothing claimed */
    struct cov_prediction p;
    const struct cov_op_prediction *o;
    CHECK_INT(coverage_predict(m, ROUTE_LAT0, ROUTE_LON0, SPEED, 90, 60, &p, err, sizeof(err)), 0);
    CHECK_INT(p.n_ops, 0);
    CHECK_INT(coverage_predict(m, NAN, ROUTE_LON0, SPEED, 90, 60, &p, err, sizeof(err)), -1);

    double conf[10];
    double dead_lat, dead_lon, tr;
    pos_at(3500, &dead_lat, &dead_lon, &tr);
    for (uint32_t trip = 1; trip <= 9; trip++) {
        drive_trip(m, trip);
        /* 2500 m along: 500 m to the corner + 500 m north = 1000 m = 50 s to the dead zone */
        o = predict_at(m, 2500, "250-01", &p);
        CHECK(o != NULL);
        if (!o)
            break;
        CHECK_MSG(fabs(o->dead_in_m - 1000) <= 50, "trip %u: dead in %.0f m", trip, o->dead_in_m);
        CHECK_MSG(fabs(o->dead_in_s - 50) <= 2.5, "trip %u: dead in %.1f s", trip, o->dead_in_s);
        CHECK_MSG(cov_distance_m(o->dead_lat, o->dead_lon, dead_lat, dead_lon) <= 60,
                  "trip %u: dead zone at %.5f,%.5f", trip, o->dead_lat, o->dead_lon);
        CHECK_INT(o->trips, trip);
        /* only the first 200 m of the 400 m zone lie within the 60 s (1200 m) horizon */
        CHECK_MSG(o->dead_len_m >= 150 && o->dead_len_m <= 250, "dead len %.0f", o->dead_len_m);
        CHECK(p.learned_frac > 0.9);
        conf[trip] = o->confidence;
        if (trip > 1)
            CHECK_MSG(conf[trip] > conf[trip - 1], "confidence %.3f after %u trips, %.3f before",
                      conf[trip], trip, conf[trip - 1]);
        /* the good operator: no dead zone, good quality */
        const struct cov_op_prediction *b = cov_prediction_find(&p, "250-99");
        CHECK(b && isinf(b->dead_in_s) && b->quality_min > 0.8);
        /* tele2 before its zone appears: nothing predicted at 4000 m (1000 m before it) */
        const struct cov_op_prediction *t2 = predict_at(m, 4000, "250-20", &p);
        if (trip <= 6) /* trip 6 was the first through it: one bad pass is not a pattern */
            CHECK_MSG(t2 && isinf(t2->dead_in_s), "trip %u: tele2 dead in %.0f s", trip,
                      t2 ? t2->dead_in_s : -1);
        else /* learned from the second trip that saw it */
            CHECK_MSG(t2 && fabs(t2->dead_in_m - 1000) <= 50, "trip %u: tele2 dead in %.0f m", trip,
                      t2 ? t2->dead_in_m : -1);
    }
    CHECK_MSG(conf[1] < 0.4, "confidence after 1 trip %.3f", conf[1]);
    CHECK_MSG(conf[9] > 0.9, "confidence after 9 trips %.3f", conf[9]);

    /* the late dead zone (from trip 6) is predicted from trip 8 at the latest */
    const struct cov_op_prediction *t2 = predict_at(m, 4000, "250-20", &p);
    CHECK_MSG(t2 && fabs(t2->dead_in_m - 1000) <= 50, "tele2 dead in %.0f m",
              t2 ? t2->dead_in_m : -1);
    CHECK(t2 && t2->trips == 9);

    /* the whole zone within the horizon: 600 m ahead, 400 m long */
    o = predict_at(m, 2900, "250-01", &p);
    CHECK_MSG(o && fabs(o->dead_in_m - 600) <= 50 && fabs(o->dead_len_m - 400) <= 50,
              "dead in %.0f m for %.0f m", o ? o->dead_in_m : -1, o ? o->dead_len_m : -1);

    /* outside the horizon: 2000 m = 100 s ahead is not reported with a 60 s horizon */
    o = predict_at(m, 1500, "250-01", &p);
    CHECK(o && isinf(o->dead_in_s));
    CHECK_NEAR(p.horizon_m, 1200, 1e-9);

    /* inside the dead zone now */
    o = predict_at(m, 3600, "250-01", &p);
    CHECK(o && o->dead_in_s == 0 && o->quality_now < 0.2);

    /* standing still in front of it: no time-to-reach, just the current cell */
    double lat, lon;
    pos_at(3400, &lat, &lon, &tr);
    CHECK_INT(coverage_predict(m, lat, lon, 0, 0, 60, &p, err, sizeof(err)), 0);
    o = cov_prediction_find(&p, "250-01");
    CHECK(o && isinf(o->dead_in_s) && p.n_cells == 1);
    /* unknown speed and track do not crash and claim nothing ahead */
    CHECK_INT(coverage_predict(m, lat, lon, NAN, NAN, 60, &p, err, sizeof(err)), 0);
    CHECK_INT(p.n_cells, 1);

    /* without the learned path the track extrapolates straight east past the corner and knows
     * nothing there: before the corner, data; after, none. Driving west from 2900 m is the
     * reverse of the learned path: extrapolated, the map data along it is still used. */
    pos_at(2900, &lat, &lon, &tr);
    CHECK_INT(coverage_predict(m, lat, lon, SPEED, 270, 60, &p, err, sizeof(err)), 0);
    o = cov_prediction_find(&p, "250-99");
    CHECK(o && o->coverage > 0.8 && p.learned_frac < 0.1);
    /* northbound leg driven south, from 4500 m: the mts dead zone (3500..3900) is 600 m ahead */
    pos_at(4500, &lat, &lon, &tr);
    CHECK_INT(coverage_predict(m, lat, lon, SPEED, 180, 60, &p, err, sizeof(err)), 0);
    o = cov_prediction_find(&p, "250-01");
    CHECK_MSG(o && fabs(o->dead_in_m - 600) <= 50, "southbound dead in %.0f m",
              o ? o->dead_in_m : -1);

    /* off the map entirely: operators listed, no data, confidence 0 */
    CHECK_INT(coverage_predict(m, 10.0, 10.0, SPEED, 90, 60, &p, err, sizeof(err)), 0);
    CHECK_INT(p.n_ops, 3);
    CHECK(!p.ops[0].have_data && p.ops[0].confidence == 0 && isnan(p.ops[0].quality_min));

    /* A measured trip with the weights policy in the loop, as the firmware runs it: each
     * second add the samples, predict, decide. mts must be out of the scheduler (weight 0) a
     * full lead time (drain 2 s + margin 3 s) before its dead zone, stay out through it, come
     * back soon after; the operator without a zone is never touched. */
    struct policy_params pp;
    policy_params_default(&pp);
    struct policy_link_in links[3];
    struct policy_link_state pst[3];
    struct policy_out pout[3];
    memset(pst, 0, sizeof(pst));
    const char *names[3] = {"mts", "beeline", "tele2"};
    double t_off = -1, t_back = -1, beeline_off_s = 0, mts_on_in_zone_s = 0;
    const double t_in = 3500 / SPEED, t_out = 3900 / SPEED;
    for (int t = 0; t * SPEED < 7000; t++) {
        double s_m = t * SPEED;
        struct cov_prediction pr;
        double track;
        pos_at(s_m, &lat, &lon, &track);
        for (int z = 0; z < 3; z++) {
            bool dead = s_m >= zones[z].from && s_m < zones[z].to;
            struct cov_sample x;
            route_sample(&x, zones[z].op, 10, 0, SPEED, dead, ROUTE_UTC0 + 10 * 100000 + t);
            x.lat = lat;
            x.lon = lon;
            x.track_deg = track;
            coverage_add_sample(m, &x, err, sizeof(err));
            memset(&links[z], 0, sizeof(links[z]));
            snprintf(links[z].name, sizeof(links[z].name), "%s", names[z]);
            snprintf(links[z].op, sizeof(links[z].op), "%s", zones[z].op);
            links[z].up = !dead;
            links[z].loss = dead ? 1.0 : 0.0;
            links[z].rsrp_dbm = dead ? -124 : -100;
            links[z].sinr_db = dead ? -6 : 8;
            links[z].srtt_ms = 50;
            links[z].capacity_kbps = 20000;
            links[z].net = dead ? POLICY_NET_NONE : POLICY_NET_LTE;
            links[z].drain_ms = 2000;
        }
        CHECK_INT(coverage_predict(m, lat, lon, SPEED, track, 60, &pr, err, sizeof(err)), 0);
        struct policy_pred pp_in[PRED_MAX_OPS];
        size_t np = cov_prediction_to_policy(&pr, pp_in, PRED_MAX_OPS);
        policy_decide(&pp, ROUTE_UTC0 * 1000ull + t * 1000ull, links, 3, pp_in, np, pst, pout);
        if (pout[0].changed && t > 2)
            printf("t=%3d s=%5.0f %s\n", t, s_m, pout[0].reason);
        if (pout[0].weight == 0 && t_off < 0 && t < t_in)
            t_off = t;
        if (t >= t_in && t < t_out && pout[0].weight > 0)
            mts_on_in_zone_s++;
        if (t >= t_out && t_back < 0 && pout[0].weight > 0)
            t_back = t;
        if (pout[1].weight < 1.0)
            beeline_off_s++;
    }
    CHECK_MSG(t_off >= 0 && t_in - t_off >= 5.0 && t_in - t_off <= 10.0,
              "mts off %.0f s before its dead zone", t_in - t_off);
    CHECK_INT(mts_on_in_zone_s, 0);
    CHECK_MSG(t_back >= t_out && t_back - t_out <= 6, "mts back %.0f s after the zone",
              t_back - t_out);
    CHECK_MSG(beeline_off_s == 0, "beeline off for %.0f s", beeline_off_s);

    coverage_close(m);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_summary();
}
