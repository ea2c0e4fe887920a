/* position: the gateway position source (docs/position.md).
 *
 * One "position" thread talks to gpsd through libgps (TPV reports) and, about every 100 ms,
 * re-evaluates which source is in use so that a change is reported once, as an event. Modem
 * GNSS fixes are pushed in by the caller (telemetry/ never includes modem/). position_get()
 * runs the same pure selection at call time, so dead reckoning is always computed for "now".
 *
 * All shared state sits behind one mutex held only for copies; libgps calls, logging and the
 * callbacks happen outside it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_setname_np */
#endif
#include "telemetry/telemetry.h"

#include "common/common.h"

#include <errno.h>
#include <gps.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if GPSD_API_MAJOR_VERSION < 7
#error "libgps API >= 7 needed (gps_read with a message buffer)"
#endif

/* gps_data_t.status moved into gps_fix_t at API 10 (gpsd 3.21). */
#if GPSD_API_MAJOR_VERSION >= 10
#define GPSD_FIX_STATUS(gd) ((gd)->fix.status)
#else
#define GPSD_FIX_STATUS(gd) ((gd)->status)
#endif

#define SUBSYS "position"

/* Dead-reckoning error model (docs/position.md): unknown starting error, growth per second
 * (speed changes we cannot see: braking, curves) and per metre travelled (track error). */
#define DR_DEFAULT_EPH_M  10.0
#define DR_EPH_GROWTH_MPS 1.0
#define DR_EPH_DIST_FRAC  0.05
#define DR_MIN_SPEED_KMH  1.0  /* below this the receiver's track is noise: hold position */
#define MOTION_CARRY_MS   3000 /* a fix without speed/track inherits them this long */
#define EVAL_PERIOD_MS    100
#define WAIT_US           100000 /* gps_waiting timeout: bounds the stop latency */

enum gpsd_state {
    GPSD_OFF,         /* not configured */
    GPSD_INIT,        /* not tried yet */
    GPSD_UNREACHABLE, /* connect failed */
    GPSD_CONNECTED,
    GPSD_DISCONNECTED, /* was connected, connection lost */
};

struct position {
    struct position_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* wakes the thread early on stop */
    pthread_t th;
    bool running; /* only touched by start/stop (the owner's thread) */

    /* under mu */
    bool stop;
    bool have_gpsd;
    struct position_fix gpsd; /* latest TPV (any mode) */
    size_t n_modems;
    struct position_fix modems[POSITION_MAX_MODEMS];
    bool have_last_good;
    struct position_fix last_good;
    enum gpsd_state gstate;
    struct position_status st;
};

const char *position_source_str(enum position_source s)
{
    switch (s) {
    case POSITION_SRC_GPSD:
        return "gpsd";
    case POSITION_SRC_MODEM:
        return "modem";
    case POSITION_SRC_DEAD_RECKONING:
        return "dead_reckoning";
    case POSITION_SRC_NONE:
        break;
    }
    return "none";
}

/* ---- pure helpers ------------------------------------------------------------------------ */

static double rad(double d)
{
    return d * M_PI / 180.0;
}

static double deg(double r)
{
    return r * 180.0 / M_PI;
}

double position_distance_m(double lat1, double lon1, double lat2, double lon2)
{
    double dphi = rad(lat2 - lat1), dl = rad(lon2 - lon1);
    double a =
        sin(dphi / 2) * sin(dphi / 2) + cos(rad(lat1)) * cos(rad(lat2)) * sin(dl / 2) * sin(dl / 2);
    if (a > 1.0)
        a = 1.0;
    return 2.0 * POSITION_EARTH_RADIUS_M * asin(sqrt(a));
}

double position_bearing_deg(double lat1, double lon1, double lat2, double lon2)
{
    double p1 = rad(lat1), p2 = rad(lat2), dl = rad(lon2 - lon1);
    double y = sin(dl) * cos(p2);
    double x = cos(p1) * sin(p2) - sin(p1) * cos(p2) * cos(dl);
    double b = fmod(deg(atan2(y, x)) + 360.0, 360.0);
    return b >= 360.0 ? 0.0 : b;
}

void position_destination(double lat, double lon, double bearing_deg, double dist_m,
                          double *lat_out, double *lon_out)
{
    double d = dist_m / POSITION_EARTH_RADIUS_M, th = rad(bearing_deg);
    double p1 = rad(lat), l1 = rad(lon);
    double sp2 = sin(p1) * cos(d) + cos(p1) * sin(d) * cos(th);
    if (sp2 > 1.0)
        sp2 = 1.0;
    if (sp2 < -1.0)
        sp2 = -1.0;
    double p2 = asin(sp2);
    double l2 = l1 + atan2(sin(th) * sin(d) * cos(p1), cos(d) - sin(p1) * sp2);
    double lon2 = fmod(deg(l2) + 540.0, 360.0) - 180.0; /* normalise to [-180, 180) */
    *lat_out = deg(p2);
    *lon_out = lon2;
}

bool position_fix_valid(const struct position_fix *f)
{
    if (!f || (f->mode != POSITION_MODE_2D && f->mode != POSITION_MODE_3D))
        return false;
    if (!isfinite(f->lat) || !isfinite(f->lon) || fabs(f->lat) > 90.0 || fabs(f->lon) > 180.0)
        return false;
    /* 0/0 is what receivers and modems emit for "no position" far more often than a vehicle is
     * in the Gulf of Guinea. */
    return !(f->lat == 0.0 && f->lon == 0.0);
}

static void fix_none(struct position_fix *f, uint64_t now_ms)
{
    memset(f, 0, sizeof(*f));
    f->mono_ms = now_ms;
    f->utc = -1;
    f->mode = POSITION_MODE_NONE;
    f->lat = f->lon = f->alt_m = NAN;
    f->speed_kmh = f->track_deg = f->eph_m = f->epv_m = NAN;
    f->source = POSITION_SRC_NONE;
    str_copy(f->source_name, "none", sizeof(f->source_name));
}

static uint64_t age_ms(uint64_t t, uint64_t now)
{
    return now > t ? now - t : 0;
}

void position_dead_reckon(const struct position_fix *base, uint64_t now_ms,
                          struct position_fix *out)
{
    struct position_fix b = *base; /* base and out may alias */
    double dt = (double)age_ms(b.mono_ms, now_ms) / 1000.0;
    double v = (isfinite(b.speed_kmh) && b.speed_kmh >= DR_MIN_SPEED_KMH) ? b.speed_kmh / 3.6 : 0;
    bool moving = v > 0 && isfinite(b.track_deg);
    double dist = v * dt; /* travelled, whether or not we know where to */

    *out = b;
    out->mono_ms = now_ms;
    out->utc = b.utc >= 0 ? b.utc + (int64_t)dt : -1;
    out->mode = POSITION_MODE_2D;
    if (moving)
        position_destination(b.lat, b.lon, b.track_deg, dist, &out->lat, &out->lon);
    double eph0 = isfinite(b.eph_m) ? b.eph_m : DR_DEFAULT_EPH_M;
    /* Without a track the whole distance is uncertainty. */
    out->eph_m = eph0 + DR_EPH_GROWTH_MPS * dt + (moving ? DR_EPH_DIST_FRAC * dist : dist);
    out->epv_m = isfinite(b.epv_m) ? b.epv_m + DR_EPH_GROWTH_MPS * dt : NAN;
    out->source = POSITION_SRC_DEAD_RECKONING;
    str_copy(out->source_name, "dead_reckoning", sizeof(out->source_name));
}

enum position_source position_select(const struct position_inputs *in,
                                     const struct position_limits *lim, uint64_t now_ms,
                                     struct position_fix *out)
{
    if (in->gpsd && position_fix_valid(in->gpsd) &&
        age_ms(in->gpsd->mono_ms, now_ms) <= lim->gpsd_fresh_ms) {
        *out = *in->gpsd;
        out->source = POSITION_SRC_GPSD;
        return out->source;
    }
    const struct position_fix *best = NULL;
    for (size_t i = 0; in->modems && i < in->n_modems; i++) {
        const struct position_fix *m = &in->modems[i];
        if (!position_fix_valid(m) || age_ms(m->mono_ms, now_ms) > lim->modem_fresh_ms)
            continue;
        if (in->current && strcmp(m->source_name, in->current) == 0) {
            best = m; /* sticky: keep the modem in use while its fix is fresh */
            break;
        }
        if (!best || m->mono_ms > best->mono_ms)
            best = m;
    }
    if (best) {
        *out = *best;
        out->source = POSITION_SRC_MODEM;
        return out->source;
    }
    if (in->last_good && lim->dr_max_gap_ms > 0 && position_fix_valid(in->last_good) &&
        age_ms(in->last_good->mono_ms, now_ms) <= lim->dr_max_gap_ms) {
        position_dead_reckon(in->last_good, now_ms, out);
        return out->source;
    }
    fix_none(out, now_ms);
    return POSITION_SRC_NONE;
}

/* ---- object --------------------------------------------------------------------------------- */

void position_config_default(struct position_config *c)
{
    memset(c, 0, sizeof(*c));
    str_copy(c->gpsd_host, "localhost", sizeof(c->gpsd_host));
    str_copy(c->gpsd_port, "2947", sizeof(c->gpsd_port));
    c->gpsd_fresh_ms = 2000;
    c->modem_fresh_ms = 3000;
    c->dr_max_gap_ms = 60000;
    c->reconnect_min_ms = 500;
    c->reconnect_max_ms = 10000;
}

struct position *position_new(const struct position_config *cfg, char *err, size_t errlen)
{
    long port;
    if (!cfg) {
        snprintf(err, errlen, "position: no config");
        return NULL;
    }
    if (cfg->gpsd_host[0] && (!str_to_long(cfg->gpsd_port, &port) || port < 1 || port > 65535)) {
        snprintf(err, errlen, "position: gpsd port \"%s\" is not 1..65535", cfg->gpsd_port);
        return NULL;
    }
    if (cfg->reconnect_min_ms < 10 || cfg->reconnect_max_ms < cfg->reconnect_min_ms) {
        snprintf(err, errlen, "position: reconnect backoff %u..%u ms (need 10 <= min <= max)",
                 cfg->reconnect_min_ms, cfg->reconnect_max_ms);
        return NULL;
    }
    if (cfg->gpsd_fresh_ms == 0 || cfg->modem_fresh_ms == 0) {
        snprintf(err, errlen, "position: freshness limits must be > 0 ms");
        return NULL;
    }
    struct position *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "position: out of memory");
        return NULL;
    }
    p->cfg = *cfg;
    p->cfg.gpsd_host[sizeof(p->cfg.gpsd_host) - 1] = '\0';
    p->cfg.gpsd_port[sizeof(p->cfg.gpsd_port) - 1] = '\0';
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&p->mu, NULL);
    p->gstate = p->cfg.gpsd_host[0] ? GPSD_INIT : GPSD_OFF;
    p->st.source = POSITION_SRC_NONE;
    str_copy(p->st.source_name, "none", sizeof(p->st.source_name));
    return p;
}

static bool stopping(struct position *p)
{
    pthread_mutex_lock(&p->mu);
    bool s = p->stop;
    pthread_mutex_unlock(&p->mu);
    return s;
}

/* Sleep up to ms unless stopped. */
static void wait_stop(struct position *p, unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&p->mu);
}

static struct position_limits limits_of(const struct position *p)
{
    struct position_limits l = {p->cfg.gpsd_fresh_ms, p->cfg.modem_fresh_ms, p->cfg.dr_max_gap_ms};
    return l;
}

static enum position_source select_locked(struct position *p, uint64_t now,
                                          struct position_fix *out)
{
    struct position_inputs in = {
        .gpsd = p->have_gpsd ? &p->gpsd : NULL,
        .modems = p->modems,
        .n_modems = p->n_modems,
        .last_good = p->have_last_good ? &p->last_good : NULL,
        .current = p->st.source_name,
    };
    struct position_limits lim = limits_of(p);
    return position_select(&in, &lim, now, out);
}

bool position_get(struct position *p, struct position_fix *out)
{
    pthread_mutex_lock(&p->mu);
    select_locked(p, mono_ms(), out);
    pthread_mutex_unlock(&p->mu);
    return out->mode != POSITION_MODE_NONE;
}

void position_get_status(struct position *p, struct position_status *out)
{
    pthread_mutex_lock(&p->mu);
    *out = p->st;
    pthread_mutex_unlock(&p->mu);
}

/* Remember f as the base for dead reckoning. A fix without speed/track (gpsd often sends the
 * position of a cycle before its RMC) keeps the motion of the previous fix of the same source
 * if that is recent. Caller holds mu; f is valid. */
static void update_last_good_locked(struct position *p, const struct position_fix *f)
{
    struct position_fix g = *f;
    if (p->have_last_good && strcmp(p->last_good.source_name, f->source_name) == 0 &&
        age_ms(p->last_good.mono_ms, f->mono_ms) <= MOTION_CARRY_MS) {
        if (!isfinite(g.speed_kmh))
            g.speed_kmh = p->last_good.speed_kmh;
        if (!isfinite(g.track_deg))
            g.track_deg = p->last_good.track_deg;
    }
    if (!p->have_last_good || g.mono_ms >= p->last_good.mono_ms) {
        p->last_good = g;
        p->have_last_good = true;
    }
}

void position_feed_modem_fix(struct position *p, const char *name, const struct position_fix *fix)
{
    if (!p || !fix)
        return;
    uint64_t now = mono_ms();
    struct position_fix f = *fix;
    char full[POSITION_NAME_MAX];
    if (!name || !name[0])
        name = "?";
    if (strncmp(name, "modem:", 6) == 0)
        str_copy(full, name, sizeof(full));
    else
        snprintf(full, sizeof(full), "modem:%s", name);
    if (f.mono_ms == 0 || f.mono_ms > now)
        f.mono_ms = now;
    f.source = POSITION_SRC_MODEM;
    str_copy(f.source_name, full, sizeof(f.source_name));

    pthread_mutex_lock(&p->mu);
    if (f.mode != POSITION_MODE_NONE && !position_fix_valid(&f)) {
        p->st.rejected_fixes++;
        f.mode = POSITION_MODE_NONE; /* a garbage reading means "no usable fix" */
    }
    if (f.mode == POSITION_MODE_NONE) {
        f.lat = f.lon = f.alt_m = NAN;
    } else {
        p->st.modem_fixes++;
        update_last_good_locked(p, &f);
    }
    size_t slot = p->n_modems;
    for (size_t i = 0; i < p->n_modems; i++)
        if (strcmp(p->modems[i].source_name, full) == 0)
            slot = i;
    if (slot == p->n_modems) {
        if (p->n_modems < POSITION_MAX_MODEMS) {
            p->n_modems++;
        } else { /* replace the least recently fed */
            slot = 0;
            for (size_t i = 1; i < p->n_modems; i++)
                if (p->modems[i].mono_ms < p->modems[slot].mono_ms)
                    slot = i;
        }
    }
    p->modems[slot] = f;
    pthread_mutex_unlock(&p->mu);
}

/* ---- source switch events ---------------------------------------------------------------- */

/* Why the previous source is no longer in use. Caller holds mu. */
static void why_left_locked(struct position *p, const struct position_status *old,
                            enum position_source to, char *buf, size_t n)
{
    switch (old->source) {
    case POSITION_SRC_GPSD:
        if (p->gstate == GPSD_UNREACHABLE || p->gstate == GPSD_DISCONNECTED)
            snprintf(buf, n, "gpsd disconnected");
        else if (p->have_gpsd && p->gpsd.mode == POSITION_MODE_NONE)
            snprintf(buf, n, "gpsd lost fix");
        else
            snprintf(buf, n, "gpsd fix stale");
        return;
    case POSITION_SRC_MODEM:
        for (size_t i = 0; i < p->n_modems; i++) {
            if (strcmp(p->modems[i].source_name, old->source_name) != 0)
                continue;
            snprintf(buf, n, "%s %s", old->source_name,
                     p->modems[i].mode == POSITION_MODE_NONE ? "lost fix" : "fix stale");
            return;
        }
        snprintf(buf, n, "%s gone", old->source_name);
        return;
    case POSITION_SRC_DEAD_RECKONING:
        if (to == POSITION_SRC_NONE)
            snprintf(buf, n, "dead reckoning limit %g s reached", p->cfg.dr_max_gap_ms / 1000.0);
        else
            snprintf(buf, n, "dead reckoning ended");
        return;
    case POSITION_SRC_NONE:
        break;
    }
    buf[0] = '\0';
}

/* Re-run the selection; on a change of source, build the event (under mu), then log and call
 * back outside it. */
static void evaluate(struct position *p)
{
    struct position_fix f;
    struct position_event ev;
    bool changed;

    pthread_mutex_lock(&p->mu);
    uint64_t now = mono_ms();
    select_locked(p, now, &f);
    changed = f.source != p->st.source || strcmp(f.source_name, p->st.source_name) != 0;
    if (changed) {
        char why[100];
        why_left_locked(p, &p->st, f.source, why, sizeof(why));
        memset(&ev, 0, sizeof(ev));
        ev.mono_ms = now;
        ev.from = p->st.source;
        ev.to = f.source;
        str_copy(ev.from_name, p->st.source_name, sizeof(ev.from_name));
        str_copy(ev.to_name, f.source_name, sizeof(ev.to_name));
        /* Falling back says why the better source was left; recovering says what it replaces. */
        bool recovery = f.source != POSITION_SRC_NONE &&
                        (ev.from == POSITION_SRC_NONE || ev.from == POSITION_SRC_DEAD_RECKONING ||
                         (unsigned)f.source < (unsigned)ev.from);
        char was[POSITION_NAME_MAX + 8] = "";
        if (recovery && ev.from != POSITION_SRC_NONE)
            snprintf(was, sizeof(was), " (was %s)", ev.from_name);
        if (recovery)
            why[0] = '\0';
        const char *sep = why[0] ? ", " : "";
        char motion[64];
        if (isfinite(p->last_good.speed_kmh) && isfinite(p->last_good.track_deg))
            snprintf(motion, sizeof(motion), "%.1f km/h, track %.0f deg", p->last_good.speed_kmh,
                     p->last_good.track_deg);
        else
            snprintf(motion, sizeof(motion), "speed or track unknown: holding position");
        switch (f.source) {
        case POSITION_SRC_GPSD:
            snprintf(ev.text, sizeof(ev.text), "position: using gpsd %s fix%s",
                     f.mode == POSITION_MODE_3D ? "3D" : "2D", was);
            break;
        case POSITION_SRC_MODEM:
            snprintf(ev.text, sizeof(ev.text), "position: %s%susing %s GNSS%s", why, sep,
                     f.source_name, was);
            break;
        case POSITION_SRC_DEAD_RECKONING:
            snprintf(ev.text, sizeof(ev.text),
                     "position: %s%sdead reckoning from the last %s fix (%s, max %g s)", why, sep,
                     p->last_good.source_name, motion, p->cfg.dr_max_gap_ms / 1000.0);
            break;
        case POSITION_SRC_NONE:
            snprintf(ev.text, sizeof(ev.text), "position: %s%sno position", why, sep);
            break;
        }
        p->st.source = f.source;
        str_copy(p->st.source_name, f.source_name, sizeof(p->st.source_name));
        p->st.switches++;
        str_copy(p->st.last_event, ev.text, sizeof(p->st.last_event));
    }
    pthread_mutex_unlock(&p->mu);
    if (changed) {
        /* the text starts with "position: " already, like the subsystem tag of the log line */
        LOG_I(SUBSYS, "%s", ev.text + strlen("position: "));
        if (p->cfg.on_event)
            p->cfg.on_event(p->cfg.cb_ctx, &ev);
    }
}

/* ---- gpsd client ------------------------------------------------------------------------- */

/* Log only when the connection state changes, so an absent gpsd costs one line, not one per
 * retry. */
static void set_gstate(struct position *p, enum gpsd_state s, const char *detail)
{
    pthread_mutex_lock(&p->mu);
    enum gpsd_state old = p->gstate;
    p->gstate = s;
    p->st.gpsd_connected = s == GPSD_CONNECTED;
    if (s == GPSD_CONNECTED)
        p->st.gpsd_connects++;
    else if (s == GPSD_UNREACHABLE)
        p->st.gpsd_connect_failures++;
    else if (s == GPSD_DISCONNECTED)
        p->st.gpsd_disconnects++;
    pthread_mutex_unlock(&p->mu);
    if (old == s)
        return;
    const char *hp = p->cfg.gpsd_host;
    switch (s) {
    case GPSD_CONNECTED:
        LOG_I(SUBSYS, "connected to gpsd at %s:%s", hp, p->cfg.gpsd_port);
        break;
    case GPSD_UNREACHABLE:
        LOG_W(SUBSYS, "gpsd at %s:%s unreachable (%s), retrying with backoff", hp, p->cfg.gpsd_port,
              detail);
        break;
    case GPSD_DISCONNECTED:
        LOG_W(SUBSYS, "lost connection to gpsd at %s:%s (%s), reconnecting", hp, p->cfg.gpsd_port,
              detail);
        break;
    default:
        break;
    }
}

static void tpv_to_fix(const struct gps_data_t *gd, uint64_t now, struct position_fix *f)
{
    fix_none(f, now);
    f->source = POSITION_SRC_GPSD;
    str_copy(f->source_name, "gpsd", sizeof(f->source_name));
    if (gd->fix.mode == MODE_2D)
        f->mode = POSITION_MODE_2D;
    else if (gd->fix.mode == MODE_3D)
        f->mode = POSITION_MODE_3D;
#if GPSD_API_MAJOR_VERSION >= 9
    f->utc = gd->fix.time.tv_sec > 0 ? (int64_t)gd->fix.time.tv_sec : -1;
    double alt = isfinite(gd->fix.altMSL) ? gd->fix.altMSL : gd->fix.altHAE;
#else
    f->utc = isfinite(gd->fix.time) && gd->fix.time > 0 ? (int64_t)gd->fix.time : -1;
    double alt = gd->fix.altitude;
#endif
    if (f->mode == POSITION_MODE_NONE)
        return;
    f->lat = gd->fix.latitude;
    f->lon = gd->fix.longitude;
    f->alt_m = (f->mode == POSITION_MODE_3D && isfinite(alt)) ? alt : NAN;
    f->speed_kmh = isfinite(gd->fix.speed) ? gd->fix.speed * 3.6 : NAN;
    f->track_deg = isfinite(gd->fix.track) ? gd->fix.track : NAN;
    f->eph_m = isfinite(gd->fix.eph) ? gd->fix.eph : NAN;
    f->epv_m = isfinite(gd->fix.epv) ? gd->fix.epv : NAN;
}

static void handle_tpv(struct position *p, const struct gps_data_t *gd)
{
    struct position_fix f;
    tpv_to_fix(gd, mono_ms(), &f);
    LOG_D(SUBSYS, "TPV mode %d status %d lat %.7f lon %.7f", gd->fix.mode, GPSD_FIX_STATUS(gd),
          f.lat, f.lon);
    pthread_mutex_lock(&p->mu);
    p->st.gpsd_reports++;
    if (f.mode != POSITION_MODE_NONE && !position_fix_valid(&f)) {
        p->st.rejected_fixes++;
        f.mode = POSITION_MODE_NONE;
        f.lat = f.lon = f.alt_m = NAN;
    }
    p->gpsd = f;
    p->have_gpsd = true;
    if (f.mode != POSITION_MODE_NONE)
        update_last_good_locked(p, &f);
    pthread_mutex_unlock(&p->mu);
    if (p->cfg.on_report)
        p->cfg.on_report(p->cfg.cb_ctx, &f);
}

static void *position_main(void *arg)
{
    struct position *p = arg;
    struct gps_data_t gd;
    bool open = false;
    unsigned backoff = p->cfg.reconnect_min_ms;
    uint64_t next_try = 0, last_eval = 0;
    unsigned quick_false = 0;
    char msg[8192];

    pthread_setname_np(pthread_self(), "position");
    /* libgps sends with write(): a gpsd that dies between connect and WATCH must give EPIPE,
     * not kill the process. SIGPIPE from write() is directed at this thread, so blocking it here
     * is enough whatever the process does with it. */
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    while (!stopping(p)) {
        uint64_t now = mono_ms();
        if (now - last_eval >= EVAL_PERIOD_MS) {
            evaluate(p);
            last_eval = now;
        }
        if (!p->cfg.gpsd_host[0]) {
            wait_stop(p, EVAL_PERIOD_MS);
            continue;
        }
        if (!open) {
            if (now >= next_try) {
                memset(&gd, 0, sizeof(gd));
                errno = 0;
                if (gps_open(p->cfg.gpsd_host, p->cfg.gpsd_port, &gd) != 0) {
                    set_gstate(p, GPSD_UNREACHABLE, gps_errstr(errno));
                } else if (gps_stream(&gd, WATCH_ENABLE | WATCH_JSON, NULL) != 0) {
                    set_gstate(p, GPSD_UNREACHABLE, "WATCH request failed");
                    gps_close(&gd);
                } else {
                    open = true;
                    backoff = p->cfg.reconnect_min_ms;
                    quick_false = 0;
                    set_gstate(p, GPSD_CONNECTED, NULL);
                }
                if (!open) {
                    next_try = mono_ms() + backoff;
                    backoff = backoff * 2 > p->cfg.reconnect_max_ms ? p->cfg.reconnect_max_ms
                                                                    : backoff * 2;
                }
            }
            if (!open) {
                uint64_t left = next_try > mono_ms() ? next_try - mono_ms() : 0;
                wait_stop(p, (unsigned)(left < EVAL_PERIOD_MS ? left : EVAL_PERIOD_MS));
                continue;
            }
        }
        uint64_t t0 = mono_ms();
        if (gps_waiting(&gd, WAIT_US)) {
            quick_false = 0;
            msg[0] = '\0';
            int rc = gps_read(&gd, msg, (int)sizeof(msg) - 1);
            if (rc < 0) {
                gps_close(&gd);
                open = false;
                set_gstate(p, GPSD_DISCONNECTED, "read failed or closed by gpsd");
                /* gpsd restarting takes about a second: first retry right away, then back off */
                next_try = mono_ms();
                backoff = p->cfg.reconnect_min_ms;
                continue;
            }
            msg[sizeof(msg) - 1] = '\0';
            if (rc > 0 && strstr(msg, "\"class\":\"TPV\"")) {
                handle_tpv(p, &gd);
                evaluate(p);
                last_eval = mono_ms();
            }
        } else if (mono_ms() - t0 < WAIT_US / 2000) {
            /* gps_waiting() also returns false on a select() error, immediately: never spin on
             * a broken socket. */
            if (++quick_false >= 5) {
                gps_close(&gd);
                open = false;
                set_gstate(p, GPSD_DISCONNECTED, "socket error");
                next_try = mono_ms() + backoff;
            }
        } else {
            quick_false = 0;
        }
    }
    /* No WATCH_DISABLE: closing is enough for gpsd to drop the watcher. */
    if (open)
        gps_close(&gd);
    return NULL;
}

int position_start(struct position *p, char *err, size_t errlen)
{
    if (p->running) {
        snprintf(err, errlen, "position: already started");
        return -1;
    }
    pthread_mutex_lock(&p->mu);
    p->stop = false;
    pthread_mutex_unlock(&p->mu);
    int rc = pthread_create(&p->th, NULL, position_main, p);
    if (rc != 0) {
        snprintf(err, errlen, "position: pthread_create: %s", strerror(rc));
        return -1;
    }
    p->running = true;
    return 0;
}

void position_stop(struct position *p)
{
    if (!p || !p->running)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->th, NULL);
    p->running = false;
    pthread_mutex_lock(&p->mu);
    p->gstate = p->cfg.gpsd_host[0] ? GPSD_INIT : GPSD_OFF;
    p->st.gpsd_connected = false;
    pthread_mutex_unlock(&p->mu);
}

void position_free(struct position *p)
{
    if (!p)
        return;
    position_stop(p);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}
