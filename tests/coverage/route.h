/* route: a synthetic route and per-operator coverage for the coverage tests and the benchmark.
 *
 * The route starts at 55.7500,37.6000 and runs due east (track 90) at a constant speed; the
 * position after s metres is the great-circle destination. Operators' coverage along it is a
 * function of the distance, with dead zones given as [from_m, to_m) intervals. */
#ifndef CORRIDOR_TEST_COVERAGE_ROUTE_H
#define CORRIDOR_TEST_COVERAGE_ROUTE_H

#include "telemetry/coverage.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define ROUTE_LAT0  55.75
#define ROUTE_LON0  37.60
#define ROUTE_TRACK 90.0
#define ROUTE_UTC0  1763800000LL

struct zone {
    double from_m, to_m;
};

static inline void route_pos(double s_m, double *lat, double *lon)
{
    cov_destination(ROUTE_LAT0, ROUTE_LON0, ROUTE_TRACK, s_m, lat, lon);
}

static inline bool in_zones(const struct zone *z, int nz, double s)
{
    for (int i = 0; i < nz; i++)
        if (s >= z[i].from_m && s < z[i].to_m)
            return true;
    return false;
}

/* A sample of operator op at distance s on trip; dead = in a dead zone. */
static inline void route_sample(struct cov_sample *x, const char *op, uint32_t trip, double s,
                                double speed, bool dead, int64_t utc)
{
    memset(x, 0, sizeof(*x));
    x->utc = utc;
    x->trip = trip;
    route_pos(s, &x->lat, &x->lon);
    x->speed_mps = speed;
    x->track_deg = ROUTE_TRACK;
    x->fix = COV_FIX_GPSD;
    snprintf(x->op, sizeof(x->op), "%s", op);
    x->net = dead ? COV_NET_NONE : COV_NET_LTE;
    x->rsrp_dbm = dead ? -124.0 : -85.0;
    x->rsrq_db = dead ? -19.0 : -9.0;
    x->sinr_db = dead ? -6.0 : 15.0;
    x->rssi_dbm = dead ? -105.0 : -60.0;
    x->goodput_kbps = dead ? 0.0 : 20000.0;
    x->rtt_ms = dead ? NAN : 45.0;
    x->loss = dead ? 1.0 : 0.0;
    x->outage = dead;
}

#endif
