/* steer: position, coverage map, prediction and weights at 1 Hz. See steer.h. */
#include "firmware/steer.h"
#include "telemetry/telemetry.h"
#include "common/alive.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A new trip starts after the vehicle stood still coverage.trip_idle_s (depot, terminus). */
#define STILL_KMH 2.0

struct steer {
    const struct config *cfg;
    struct state *st;
    struct tunnel *tunnel;
    struct position *pos;
    struct coverage_map *map;
    pthread_t thread;
    bool stop;
    bool forced_off[CFG_MAX_LINKS]; /* admin override, written by HTTP threads (atomics) */
    /* thread-owned */
    uint32_t trip;
    uint64_t moving_ms; /* last time the vehicle moved */
    struct policy_params pp;
    struct policy_link_state pst[CFG_MAX_LINKS];
    struct link_state links[CFG_MAX_LINKS];
};

static void on_position_event(void *ctx, const struct position_event *ev)
{
    struct steer *s = ctx;
    state_add_event(s->st, "position", "source", "%s", ev->text); /* telemetry/ logs it */
}

void steer_feed_modem(struct steer *s, const struct modem_sample *m)
{
    if (!s || !s->pos || !m->gnss.valid)
        return;
    struct position_fix f = {.mono_ms = m->gnss.mono_ms,
                             .utc = m->gnss.utc,
                             .mode = m->gnss.fix ? POSITION_MODE_3D : POSITION_MODE_NONE,
                             .lat = m->gnss.lat,
                             .lon = m->gnss.lon,
                             .alt_m = m->gnss.alt_m,
                             .speed_kmh = m->gnss.speed_kmh,
                             .track_deg = m->gnss.course_deg,
                             .eph_m = NAN,
                             .epv_m = NAN};
    if (!m->gnss.fix)
        f.lat = f.lon = f.alt_m = NAN;
    position_feed_modem_fix(s->pos, m->link, &f);
}

static enum cov_net cov_net_of(enum modem_net n)
{
    switch (n) {
    case MODEM_NET_GSM:
        return COV_NET_GSM;
    case MODEM_NET_WCDMA:
        return COV_NET_3G;
    case MODEM_NET_LTE:
    case MODEM_NET_LTE_M:
    case MODEM_NET_NB_IOT:
        return COV_NET_LTE;
    case MODEM_NET_NR5G_NSA:
        return COV_NET_5G_NSA;
    case MODEM_NET_NR5G_SA:
        return COV_NET_5G_SA;
    default:
        return COV_NET_NONE;
    }
}

static enum policy_net policy_net_of(enum modem_net n)
{
    switch (n) {
    case MODEM_NET_NONE:
        return POLICY_NET_NONE;
    case MODEM_NET_GSM:
        return POLICY_NET_GSM;
    case MODEM_NET_WCDMA:
        return POLICY_NET_3G;
    case MODEM_NET_NR5G_NSA:
    case MODEM_NET_NR5G_SA:
        return POLICY_NET_5G;
    default:
        return POLICY_NET_LTE;
    }
}

/* "250-01": the operator key shared by the map, the predictor and the policy. */
static bool op_of(const struct modem_sample *m, char *out, size_t n)
{
    if (!m->mcc[0] || !m->mnc[0])
        return false;
    snprintf(out, n, "%s-%s", m->mcc, m->mnc);
    return true;
}

static void update_trip(struct steer *s, const struct position_fix *f, bool have_fix)
{
    uint64_t now = mono_ms();
    bool moving = have_fix && !isnan(f->speed_kmh) && f->speed_kmh >= STILL_KMH;
    if (moving) {
        if (s->trip == 0 || now - s->moving_ms > s->cfg->coverage.trip_idle_s * 1000ull) {
            s->trip = (uint32_t)(wall_ms() / 1000);
            state_add_event(s->st, "coverage", "trip", "trip %u started", (unsigned)s->trip);
        }
        s->moving_ms = now;
    }
}

static void step(struct steer *s)
{
    const struct config *cfg = s->cfg;
    char err[256];
    uint64_t now = mono_ms();

    struct position_fix fix;
    bool have_fix = s->pos && position_get(s->pos, &fix);
    struct state_position sp = {.valid = have_fix};
    if (have_fix) {
        sp.lat = fix.lat;
        sp.lon = fix.lon;
        sp.alt_m = fix.alt_m;
        sp.speed_kmh = fix.speed_kmh;
        sp.track_deg = fix.track_deg;
        sp.utc = fix.utc;
        str_copy(sp.source, fix.source_name, sizeof sp.source);
    } else {
        str_copy(sp.source, "none", sizeof sp.source);
    }
    update_trip(s, &fix, have_fix);
    sp.trip = s->trip;

    unsigned n = state_get_links(s->st, s->links, CFG_MAX_LINKS);

    /* 1. record what each link saw here */
    if (s->map && have_fix && s->trip) {
        for (unsigned i = 0; i < n; i++) {
            const struct link_state *l = &s->links[i];
            if (!l->has_modem || !l->modem_valid)
                continue;
            struct cov_sample cs = {
                .utc = fix.utc > 0 ? fix.utc : (int64_t)(wall_ms() / 1000),
                .trip = s->trip,
                .lat = fix.lat,
                .lon = fix.lon,
                .speed_mps = fix.speed_kmh / 3.6,
                .track_deg = fix.track_deg,
                .fix = fix.source == POSITION_SRC_GPSD    ? COV_FIX_GPSD
                       : fix.source == POSITION_SRC_MODEM ? COV_FIX_MODEM
                                                          : COV_FIX_DEAD_RECKONING,
                .net = cov_net_of(l->modem.net),
                .rsrp_dbm = l->modem.sig.rsrp_dbm,
                .rsrq_db = l->modem.sig.rsrq_db,
                .sinr_db = l->modem.sig.sinr_db,
                .rssi_dbm = l->modem.sig.rssi_dbm,
                .goodput_kbps = NAN,
                .rtt_ms = NAN,
                .loss = NAN,
                .outage = !link_modem_usable(l),
                /* dead reckoning is computed now; a receiver's fix ages */
                .fix_age_ms = fix.source == POSITION_SRC_DEAD_RECKONING || now < fix.mono_ms
                                  ? 0
                                  : (uint32_t)(now - fix.mono_ms)};
            if (!op_of(&l->modem, cs.op, sizeof cs.op))
                continue;
            if (l->tunnel.valid) {
                cs.rtt_ms = l->tunnel.srtt_ms;
                cs.loss = l->tunnel.loss;
                cs.outage = cs.outage || strcmp(l->tunnel.state, "down") == 0;
            }
            if (coverage_add_sample(s->map, &cs, err, sizeof err) != 0)
                LOG_D("coverage", "%s: sample refused: %s", l->name, err);
        }
    }

    /* 2. what lies ahead */
    static struct cov_prediction pred;
    struct policy_pred pp[CFG_MAX_LINKS];
    size_t npp = 0;
    if (s->map && have_fix &&
        coverage_predict(s->map, fix.lat, fix.lon, fix.speed_kmh / 3.6, fix.track_deg,
                         cfg->coverage.horizon_s, &pred, err, sizeof err) == 0)
        npp = cov_prediction_to_policy(&pred, pp, ARRAY_LEN(pp));

    /* 3. weights */
    struct policy_link_in in[CFG_MAX_LINKS];
    struct policy_out out[CFG_MAX_LINKS];
    memset(in, 0, sizeof in);
    for (unsigned i = 0; i < n; i++) {
        const struct link_state *l = &s->links[i];
        str_copy(in[i].name, l->name, sizeof in[i].name);
        if (l->has_modem && l->modem_valid)
            op_of(&l->modem, in[i].op, sizeof in[i].op);
        in[i].up =
            link_modem_usable(l) && (!l->tunnel.valid || strcmp(l->tunnel.state, "down") != 0);
        in[i].srtt_ms = l->tunnel.valid ? l->tunnel.srtt_ms : NAN;
        in[i].loss = l->tunnel.valid ? l->tunnel.loss : NAN;
        in[i].capacity_kbps = l->tunnel.valid ? l->tunnel.capacity_bps / 1000.0 : NAN;
        in[i].rsrp_dbm = l->has_modem ? l->modem.sig.rsrp_dbm : NAN;
        in[i].sinr_db = l->has_modem ? l->modem.sig.sinr_db : NAN;
        in[i].net = l->has_modem ? policy_net_of(l->modem.net) : POLICY_NET_UNKNOWN;
        /* In flight drains in about one RTT (the tunnel keeps at most ~50 ms queued). */
        in[i].drain_ms =
            l->tunnel.valid && !isnan(l->tunnel.srtt_ms) ? l->tunnel.srtt_ms + 50 : 500;
    }
    policy_decide(&s->pp, now, in, n, pp, npp, s->pst, out);
    double w[CFG_MAX_LINKS];
    for (unsigned i = 0; i < n; i++) {
        w[i] = out[i].weight;
        struct state_link_policy lp = {.valid = true, .weight = out[i].weight};
        str_copy(lp.state, policy_state_name(out[i].state), sizeof lp.state);
        str_copy(lp.reason, out[i].reason, sizeof lp.reason);
        if (__atomic_load_n(&s->forced_off[i], __ATOMIC_ACQUIRE)) {
            /* The policy keeps judging (its memory stays current); only its weight is
             * overridden, so giving the link back resumes from the live situation. */
            w[i] = 0.0;
            lp.weight = 0.0;
            str_copy(lp.state, "disabled-admin", sizeof lp.state);
            snprintf(lp.reason, sizeof lp.reason, "%s: disabled by an operator (dashboard)",
                     s->links[i].name);
        }
        state_put_link_policy(s->st, i, &lp);
        if (out[i].changed) {
            state_add_event(s->st, s->links[i].name, "policy", "%s", out[i].reason);
            LOG_I("policy", "%s", out[i].reason);
        }
    }
    tunnel_set_weights(s->tunnel, w, n);

    /* 4. the view ahead for the crew, per operator */
    sp.n_ahead = 0;
    if (npp) {
        for (unsigned k = 0; k < pred.n_ops && sp.n_ahead < ARRAY_LEN(sp.ahead); k++) {
            const struct cov_op_prediction *o = &pred.ops[k];
            struct state_ahead *a = &sp.ahead[sp.n_ahead++];
            str_copy(a->op, o->op, sizeof a->op);
            a->dead_in_s = o->dead_in_s;
            a->dead_in_m = o->dead_in_m;
            a->dead_lat = o->dead_lat;
            a->dead_lon = o->dead_lon;
            a->quality_min = o->quality_min;
            a->confidence = o->confidence;
            a->trips = o->trips;
        }
    }
    state_put_position(s->st, &sp);
}

int steer_force_off(struct steer *s, unsigned link_index, bool forced_off)
{
    if (!s || link_index >= CFG_MAX_LINKS || link_index >= s->cfg->nlinks)
        return -1;
    __atomic_store_n(&s->forced_off[link_index], forced_off, __ATOMIC_RELEASE);
    return 0;
}

static void *steer_thread(void *arg)
{
    struct steer *s = arg;
    pthread_setname_np(pthread_self(), "steer");
    while (!sleep_ms_unless(&s->stop, 1000)) {
        alive_beat("steer", NULL);
        step(s);
    }
    return NULL;
}

int steer_start(const struct config *cfg, struct state *st, struct tunnel *tunnel,
                struct steer **out, char *err, size_t errlen)
{
    struct steer *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "steer: out of memory");
        return -1;
    }
    s->cfg = cfg;
    s->st = st;
    s->tunnel = tunnel;
    policy_params_default(&s->pp);
    s->pp.margin_s = cfg->coverage.margin_s;
    s->pp.min_confidence = cfg->coverage.min_confidence;

    struct position_config pc;
    position_config_default(&pc);
    str_copy(pc.gpsd_host, cfg->position.gpsd_host, sizeof pc.gpsd_host);
    str_copy(pc.gpsd_port, cfg->position.gpsd_port, sizeof pc.gpsd_port);
    pc.dr_max_gap_ms = cfg->position.dr_max_gap_s * 1000u;
    pc.on_event = on_position_event;
    pc.cb_ctx = s;
    char e2[256];
    s->pos = position_new(&pc, e2, sizeof e2);
    if (!s->pos || position_start(s->pos, e2, sizeof e2) != 0) {
        snprintf(err, errlen, "position: %s", e2);
        goto fail;
    }
    if (cfg->coverage.enabled) {
        struct coverage_params cp;
        coverage_params_default(&cp);
        cp.cell_m = cfg->coverage.cell_m;
        cp.half_life_trips = cfg->coverage.half_life_trips;
        cp.max_mb = cfg->coverage.max_mb;
        char path[CFG_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/coverage.db", cfg->data_dir);
        if (coverage_open(path, &cp, &s->map, e2, sizeof e2) != 0) {
            /* The vehicle still bonds without the map: only prediction is lost. */
            LOG_E("coverage", "%s: %s; running without the coverage map", path, e2);
            state_add_event(st, "coverage", "error", "%s: %s", path, e2);
            s->map = NULL;
        } else {
            LOG_I("coverage", "map %s, %.0f m cells", path, cp.cell_m);
        }
    } else {
        LOG_I("run", "coverage: \"coverage.enabled\" is false, no map and no prediction");
    }
    if (pthread_create(&s->thread, NULL, steer_thread, s) != 0) {
        snprintf(err, errlen, "steer: cannot start thread");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    if (s->pos) {
        position_stop(s->pos);
        position_free(s->pos);
    }
    if (s->map)
        coverage_close(s->map);
    free(s);
    return -1;
}

void steer_stop(struct steer *s)
{
    if (!s)
        return;
    __atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
    pthread_join(s->thread, NULL);
    position_stop(s->pos);
    position_free(s->pos);
    if (s->map) {
        char err[256];
        if (coverage_flush(s->map, err, sizeof err) != 0)
            LOG_W("coverage", "final flush: %s", err);
        coverage_close(s->map);
    }
    free(s);
}
