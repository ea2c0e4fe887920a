/* route_scn: load a route-replay scenario and derive its truth. See route_scn.h. */
#include "route_scn.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define EARTH_R 6371008.8
#define DEG     (M_PI / 180.0)

static int fail(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -1;
}

static double dist_m(double la1, double lo1, double la2, double lo2)
{
    double dla = (la2 - la1) * DEG, dlo = (lo2 - lo1) * DEG;
    double a =
        sin(dla / 2) * sin(dla / 2) + cos(la1 * DEG) * cos(la2 * DEG) * sin(dlo / 2) * sin(dlo / 2);
    return 2 * EARTH_R * asin(fmin(1.0, sqrt(a)));
}

static double bearing_deg(double la1, double lo1, double la2, double lo2)
{
    double y = sin((lo2 - lo1) * DEG) * cos(la2 * DEG);
    double x =
        cos(la1 * DEG) * sin(la2 * DEG) - sin(la1 * DEG) * cos(la2 * DEG) * cos((lo2 - lo1) * DEG);
    double b = atan2(y, x) / DEG;
    return b < 0 ? b + 360.0 : b;
}

/* Optional number in [lo, hi]: 0 absent (out untouched), 1 set, -1 error. */
static int get_num(json_t *o, const char *key, const char *path, double lo, double hi, double *out,
                   char *err, size_t n)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < lo ||
        json_number_value(v) > hi)
        return fail(err, n, "%s.%s: expected a number in %g..%g", path, key, lo, hi);
    *out = json_number_value(v);
    return 1;
}

static int get_str(json_t *o, const char *key, const char *path, char *out, size_t outn,
                   bool required, char *err, size_t n)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        if (required)
            return fail(err, n, "%s.%s: missing", path, key);
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s || !s[0] || strlen(s) >= outn)
        return fail(err, n, "%s.%s: expected a string of 1..%zu characters", path, key, outn - 1);
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.'))
            return fail(err, n, "%s.%s: only letters, digits, '-', '_', '.'", path, key);
    snprintf(out, outn, "%s", s);
    return 1;
}

static int load_route(json_t *root, struct route_scn *s, char *err, size_t n)
{
    json_t *r = json_object_get(root, "route");
    if (!json_is_object(r))
        return fail(err, n, "route: expected an object {waypoints, closed, alt_m}");
    json_t *wps = json_object_get(r, "waypoints");
    size_t nw = json_array_size(wps);
    bool closed = json_is_true(json_object_get(r, "closed"));
    if (nw < 2 || nw + (closed ? 1 : 0) > RS_MAX_WP)
        return fail(err, n, "route.waypoints: expected 2..%d [lat, lon] pairs", RS_MAX_WP - 1);
    for (size_t i = 0; i < nw; i++) {
        json_t *w = json_array_get(wps, i);
        json_t *la = json_array_get(w, 0), *lo = json_array_get(w, 1);
        if (json_array_size(w) != 2 || !json_is_number(la) || !json_is_number(lo) ||
            fabs(json_number_value(la)) > 85 || fabs(json_number_value(lo)) > 180)
            return fail(err, n, "route.waypoints[%zu]: expected [lat, lon] in degrees", i);
        s->lat[i] = json_number_value(la);
        s->lon[i] = json_number_value(lo);
    }
    s->nwp = (unsigned)nw;
    if (closed) { /* back to the start: laps follow each other without a position jump */
        s->lat[s->nwp] = s->lat[0];
        s->lon[s->nwp] = s->lon[0];
        s->nwp++;
    }
    s->cum_m[0] = 0;
    for (unsigned i = 1; i < s->nwp; i++) {
        double d = dist_m(s->lat[i - 1], s->lon[i - 1], s->lat[i], s->lon[i]);
        if (d < 1.0)
            return fail(err, n, "route.waypoints[%u]: less than 1 m from the previous one", i);
        s->cum_m[i] = s->cum_m[i - 1] + d;
    }
    s->length_m = s->cum_m[s->nwp - 1];
    if (s->length_m > 200e3)
        return fail(err, n, "route: longer than 200 km");
    s->alt_m = 150;
    if (get_num(r, "alt_m", "route", -500, 9000, &s->alt_m, err, n) < 0)
        return -1;
    return 0;
}

static int load_speed(json_t *root, struct route_scn *s, char *err, size_t n)
{
    json_t *sp = json_object_get(root, "speed");
    size_t ns = json_array_size(sp);
    if (ns < 1 || ns > RS_MAX_SPEED)
        return fail(err, n, "speed: expected 1..%d segments {until_m, kmh}", RS_MAX_SPEED);
    double prev = 0;
    s->drive_s = 0;
    for (size_t i = 0; i < ns; i++) {
        json_t *o = json_array_get(sp, i);
        char path[32];
        snprintf(path, sizeof(path), "speed[%zu]", i);
        double kmh = NAN, until = s->length_m;
        if (!json_is_object(o) || get_num(o, "kmh", path, 5, 400, &kmh, err, n) != 1)
            return fail(err, n, "%s.kmh: expected a number in 5..400", path);
        int rc = get_num(o, "until_m", path, 0, s->length_m, &until, err, n);
        if (rc < 0)
            return -1;
        if (i + 1 == ns)
            until = s->length_m; /* the last segment runs to the end */
        else if (rc == 0 || until <= prev)
            return fail(err, n, "%s.until_m: expected an increasing distance", path);
        s->speed[i].until_m = until;
        s->speed[i].mps = kmh / 3.6;
        s->drive_s += (until - prev) / s->speed[i].mps;
        prev = until;
    }
    s->nspeed = (unsigned)ns;
    return 0;
}

static int load_ops(json_t *root, struct route_scn *s, char *err, size_t n)
{
    json_t *ops = json_object_get(root, "operators");
    size_t no = json_array_size(ops);
    if (no < 1 || no > RS_MAX_OPS)
        return fail(err, n, "operators: expected 1..%d operators", RS_MAX_OPS);
    for (size_t i = 0; i < no; i++) {
        json_t *o = json_array_get(ops, i);
        struct rs_op *op = &s->ops[i];
        char path[32];
        snprintf(path, sizeof(path), "operators[%zu]", i);
        if (!json_is_object(o))
            return fail(err, n, "%s: expected an object", path);
        snprintf(op->rate, sizeof(op->rate), "20M");
        op->delay_ms = 30;
        op->rsrp = -85;
        op->sinr = 15;
        op->fade_m = 150;
        if (get_str(o, "name", path, op->name, sizeof(op->name), true, err, n) < 0 ||
            get_str(o, "mcc", path, op->mcc, sizeof(op->mcc), true, err, n) < 0 ||
            get_str(o, "mnc", path, op->mnc, sizeof(op->mnc), true, err, n) < 0 ||
            get_str(o, "rate", path, op->rate, sizeof(op->rate), false, err, n) < 0 ||
            get_num(o, "delay_ms", path, 0, 2000, &op->delay_ms, err, n) < 0 ||
            get_num(o, "rsrp", path, -140, -44, &op->rsrp, err, n) < 0 ||
            get_num(o, "sinr", path, -20, 40, &op->sinr, err, n) < 0 ||
            get_num(o, "fade_m", path, 0, 5000, &op->fade_m, err, n) < 0)
            return -1;
        for (size_t k = 0; k < i; k++)
            if (strcmp(s->ops[k].name, op->name) == 0)
                return fail(err, n, "%s.name: \"%s\" used twice", path, op->name);
        json_t *zs = json_object_get(o, "zones");
        size_t nz = json_array_size(zs);
        if (zs && (!json_is_array(zs) || nz > RS_MAX_ZONES))
            return fail(err, n, "%s.zones: expected at most %d zones", path, RS_MAX_ZONES);
        for (size_t z = 0; z < nz; z++) {
            json_t *zo = json_array_get(zs, z);
            char zp[48];
            snprintf(zp, sizeof(zp), "%s.zones[%zu]", path, z);
            struct rs_zone *zz = &op->zones[z];
            double ft = 0;
            if (!json_is_object(zo) ||
                get_num(zo, "from_m", zp, 0, s->length_m, &zz->from_m, err, n) != 1 ||
                get_num(zo, "to_m", zp, 0, s->length_m, &zz->to_m, err, n) != 1 ||
                zz->to_m <= zz->from_m)
                return fail(err, n, "%s: expected {from_m < to_m} within the route (%.0f m)", zp,
                            s->length_m);
            if (get_num(zo, "from_trip", zp, 0, 1000, &ft, err, n) < 0)
                return -1;
            zz->from_trip = (unsigned)ft;
        }
        op->nzones = (unsigned)nz;
    }
    s->nops = (unsigned)no;
    return 0;
}

int rs_load(const char *path, struct route_scn *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return fail(err, errlen, "%s: line %d: %s", path, je.line, je.text);
    int rc = -1;
    double learn = 3;
    s->dwell_s = 6;
    s->preroll_s = 20;
    s->tail_s = 5;
    s->modem_lag_s = 1.0;
    if (!json_is_object(root)) {
        fail(err, errlen, "%s: expected an object", path);
        goto out;
    }
    if (load_route(root, s, err, errlen) || load_speed(root, s, err, errlen) ||
        load_ops(root, s, err, errlen) ||
        get_num(root, "dwell_s", "", 0, 600, &s->dwell_s, err, errlen) < 0 ||
        get_num(root, "preroll_s", "", 0, 600, &s->preroll_s, err, errlen) < 0 ||
        get_num(root, "tail_s", "", 0, 600, &s->tail_s, err, errlen) < 0 ||
        get_num(root, "modem_lag_s", "", 0, 10, &s->modem_lag_s, err, errlen) < 0 ||
        get_num(root, "learn_trips", "", 0, 50, &learn, err, errlen) < 0)
        goto out;
    s->learn_trips = (unsigned)learn;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

double rs_trip_len_s(const struct route_scn *s)
{
    return s->dwell_s + s->drive_s;
}

double rs_trip_start(const struct rs_sched *sc, unsigned trip)
{
    return sc->s->preroll_s + (double)(trip - sc->first) * rs_trip_len_s(sc->s);
}

double rs_drive_start(const struct rs_sched *sc, unsigned trip)
{
    return rs_trip_start(sc, trip) + sc->s->dwell_s;
}

double rs_total_s(const struct rs_sched *sc)
{
    return rs_trip_start(sc, sc->last + 1) + sc->s->tail_s;
}

double rs_time_at_dist(const struct route_scn *s, double d)
{
    double t = 0, prev = 0;
    for (unsigned i = 0; i < s->nspeed; i++) {
        double end = s->speed[i].until_m;
        if (d <= end)
            return t + (d - prev) / s->speed[i].mps;
        t += (end - prev) / s->speed[i].mps;
        prev = end;
    }
    return t;
}

static double dist_at_time(const struct route_scn *s, double t, double *mps)
{
    double tt = 0, prev = 0;
    for (unsigned i = 0; i < s->nspeed; i++) {
        double seg = (s->speed[i].until_m - prev) / s->speed[i].mps;
        *mps = s->speed[i].mps;
        if (t <= tt + seg)
            return prev + (t - tt) * s->speed[i].mps;
        tt += seg;
        prev = s->speed[i].until_m;
    }
    return s->length_m;
}

void rs_point_at(const struct route_scn *s, double d, double *lat, double *lon, double *track)
{
    unsigned i = 1;
    while (i < s->nwp - 1 && s->cum_m[i] < d)
        i++;
    double seg = s->cum_m[i] - s->cum_m[i - 1];
    double f = seg > 0 ? (d - s->cum_m[i - 1]) / seg : 0;
    f = fmin(1.0, fmax(0.0, f));
    /* Linear in degrees: segments are a few hundred metres, far below where it matters. */
    *lat = s->lat[i - 1] + f * (s->lat[i] - s->lat[i - 1]);
    *lon = s->lon[i - 1] + f * (s->lon[i] - s->lon[i - 1]);
    *track = bearing_deg(s->lat[i - 1], s->lon[i - 1], s->lat[i], s->lon[i]);
}

void rs_at(const struct rs_sched *sc, double t, struct rs_state *out)
{
    const struct route_scn *s = sc->s;
    memset(out, 0, sizeof(*out));
    out->trip = -1;
    double track;
    rs_point_at(s, 0, &out->lat, &out->lon, &track);
    out->track_deg = track;
    if (t < s->preroll_s || t >= rs_trip_start(sc, sc->last + 1))
        return;
    unsigned trip = sc->first + (unsigned)((t - s->preroll_s) / rs_trip_len_s(s));
    if (trip > sc->last)
        trip = sc->last;
    out->trip = (int)trip;
    double td = t - rs_drive_start(sc, trip);
    if (td < 0)
        return; /* dwelling at the start */
    double mps = 0;
    out->dist_m = dist_at_time(s, td, &mps);
    out->speed_mps = out->dist_m < s->length_m ? mps : 0;
    rs_point_at(s, out->dist_m, &out->lat, &out->lon, &out->track_deg);
}

void rs_radio_at(const struct rs_sched *sc, unsigned k, double t, struct rs_radio *out)
{
    const struct rs_op *op = &sc->s->ops[k];
    struct rs_state st;
    rs_at(sc, t, &st);
    out->dead = false;
    out->rsrp = op->rsrp;
    out->sinr = op->sinr;
    if (st.trip < 0)
        return;
    /* Distance to the nearest active zone: 0 inside; the radio fades linearly to -118 dBm /
     * -3 dB at its edge over fade_m (what a receiver sees driving into a tower's shadow). */
    double near = INFINITY;
    for (unsigned z = 0; z < op->nzones; z++) {
        const struct rs_zone *zz = &op->zones[z];
        if ((unsigned)st.trip < zz->from_trip)
            continue;
        if (st.dist_m >= zz->from_m && st.dist_m < zz->to_m) {
            out->dead = true;
            return;
        }
        double d = st.dist_m < zz->from_m ? zz->from_m - st.dist_m : st.dist_m - zz->to_m;
        near = fmin(near, d);
    }
    if (op->fade_m > 0 && near < op->fade_m) {
        double f = 1.0 - near / op->fade_m;
        out->rsrp = op->rsrp + f * (-118.0 - op->rsrp);
        out->sinr = op->sinr + f * (-3.0 - op->sinr);
    }
}

void rs_modem_at(const struct rs_sched *sc, unsigned k, double t, struct rs_radio *out)
{
    rs_radio_at(sc, k, t - sc->s->modem_lag_s, out);
}

size_t rs_events(const struct rs_sched *sc, struct rs_event *ev, size_t max)
{
    size_t n = 0;
    for (unsigned trip = sc->first; trip <= sc->last; trip++) {
        double t0 = rs_drive_start(sc, trip);
        for (unsigned k = 0; k < sc->s->nops; k++) {
            const struct rs_op *op = &sc->s->ops[k];
            for (unsigned z = 0; z < op->nzones; z++) {
                if (trip < op->zones[z].from_trip || n >= max)
                    continue;
                ev[n].op = k;
                ev[n].trip = trip;
                ev[n].zone = z;
                ev[n].entry_s = t0 + rs_time_at_dist(sc->s, op->zones[z].from_m);
                ev[n].exit_s = t0 + rs_time_at_dist(sc->s, op->zones[z].to_m);
                n++;
            }
        }
    }
    /* time order (insertion sort: a few dozen events) */
    for (size_t i = 1; i < n; i++) {
        struct rs_event e = ev[i];
        size_t j = i;
        while (j > 0 && ev[j - 1].entry_s > e.entry_s) {
            ev[j] = ev[j - 1];
            j--;
        }
        ev[j] = e;
    }
    return n;
}
