/* render: JSON views. See render.h. */
#include "firmware/render.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *num_or_null(double v)
{
    if (isnan(v))
        return json_null();
    /* Round to 0.1 dB / 1e-6 degree resolution happens by the caller's choice of value; keep
     * integers integral so "sinr_db":14 prints as 14. */
    if (v == floor(v) && fabs(v) < 1e15)
        return json_integer((json_int_t)v);
    return json_real(v);
}

static json_t *int_or_null(long long v)
{
    return v < 0 ? json_null() : json_integer((json_int_t)v);
}

static json_t *utc_or_null(int64_t t)
{
    if (t < 0)
        return json_null();
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

static double round_to(double v, double q)
{
    return isnan(v) ? v : round(v / q) * q;
}

json_t *render_modem_sample(const struct modem_sample *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "port", str_or_null(s->port));
    json_object_set_new(o, "manufacturer", str_or_null(s->id.manufacturer));
    json_object_set_new(o, "model", str_or_null(s->id.model));
    json_object_set_new(o, "revision", str_or_null(s->id.revision));
    json_object_set_new(o, "imei", str_or_null(s->id.imei));
    json_object_set_new(o, "iccid", str_or_null(s->id.iccid));
    json_object_set_new(o, "imsi", str_or_null(s->id.imsi));
    json_object_set_new(o, "sim", json_string(modem_sim_name(s->sim)));
    json_object_set_new(o, "registration", json_string(modem_reg_name(s->reg)));
    if (s->oper_name[0] || s->mcc[0]) {
        json_t *op = json_object();
        json_object_set_new(op, "name", str_or_null(s->oper_name));
        json_object_set_new(op, "mcc", str_or_null(s->mcc));
        json_object_set_new(op, "mnc", str_or_null(s->mnc));
        json_object_set_new(o, "operator", op);
    } else {
        json_object_set_new(o, "operator", json_null());
    }
    json_object_set_new(o, "network_type", json_string(modem_net_name(s->net)));
    json_object_set_new(o, "band", str_or_null(s->band));
    json_object_set_new(o, "tac", int_or_null(s->tac));
    json_object_set_new(o, "cell_id", int_or_null(s->cell_id));
    json_t *sig = json_object();
    json_object_set_new(sig, "rssi_dbm", num_or_null(round_to(s->sig.rssi_dbm, 0.1)));
    json_object_set_new(sig, "rsrp_dbm", num_or_null(round_to(s->sig.rsrp_dbm, 0.1)));
    json_object_set_new(sig, "rsrq_db", num_or_null(round_to(s->sig.rsrq_db, 0.1)));
    json_object_set_new(sig, "sinr_db", num_or_null(round_to(s->sig.sinr_db, 0.1)));
    if (!isnan(s->sig.rscp_dbm))
        json_object_set_new(sig, "rscp_dbm", num_or_null(round_to(s->sig.rscp_dbm, 0.1)));
    if (!isnan(s->sig.ecio_db))
        json_object_set_new(sig, "ecio_db", num_or_null(round_to(s->sig.ecio_db, 0.1)));
    json_object_set_new(o, "signal", sig);
    if (s->gnss.valid) {
        json_t *g = json_object();
        json_object_set_new(g, "fix", json_boolean(s->gnss.fix));
        json_object_set_new(g, "lat", num_or_null(round_to(s->gnss.lat, 1e-6)));
        json_object_set_new(g, "lon", num_or_null(round_to(s->gnss.lon, 1e-6)));
        json_object_set_new(g, "alt_m", num_or_null(round_to(s->gnss.alt_m, 0.1)));
        json_object_set_new(g, "speed_kmh", num_or_null(round_to(s->gnss.speed_kmh, 0.1)));
        json_object_set_new(g, "course_deg", num_or_null(round_to(s->gnss.course_deg, 0.1)));
        json_object_set_new(g, "utc", utc_or_null(s->gnss.utc));
        json_object_set_new(o, "gnss", g);
    } else {
        json_object_set_new(o, "gnss", json_null());
    }
    if (s->balance.valid) {
        json_t *b = json_object();
        json_object_set_new(b, "amount",
                            s->balance.amount_valid ? json_real(s->balance.amount) : json_null());
        json_object_set_new(b, "raw", json_string(s->balance.raw));
        json_object_set_new(o, "balance", b);
    } else {
        json_object_set_new(o, "balance", json_null());
    }
    json_object_set_new(o, "state", json_string(modem_state_name(s->state)));
    json_object_set_new(o, "netif", str_or_null(s->netif));
    json_t *c = json_object();
    json_object_set_new(c, "timeouts", json_integer(s->timeouts));
    json_object_set_new(c, "soft_resets", json_integer(s->soft_resets));
    json_object_set_new(c, "power_cycles", json_integer(s->power_cycles));
    json_object_set_new(c, "vanished", json_integer(s->vanished));
    json_object_set_new(o, "counters", c);
    return o;
}

json_t *render_status(struct state *st, const char *vehicle_id)
{
    json_t *o = json_object();
    json_object_set_new(o, "vehicle_id", json_string(vehicle_id));
    json_object_set_new(o, "version", json_string(CORRIDOR_VERSION));
    uint64_t now = mono_ms();
    json_object_set_new(o, "uptime_s",
                        json_integer((json_int_t)((now - state_started_mono_ms(st)) / 1000)));
    static struct link_state links[CFG_MAX_LINKS]; /* large; rendering is single-threaded */
    static pthread_mutex_t render_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&render_lock);
    unsigned n = state_get_links(st, links, CFG_MAX_LINKS);
    json_t *arr = json_array();
    for (unsigned i = 0; i < n; i++) {
        json_t *l = json_object();
        json_object_set_new(l, "name", json_string(links[i].name));
        json_object_set_new(l, "interface", json_string(links[i].interface));
        json_object_set_new(l, "samples", json_integer((json_int_t)links[i].samples));
        if (links[i].has_modem && links[i].modem_valid) {
            json_t *m = render_modem_sample(&links[i].modem);
            json_object_set_new(m, "age_ms",
                                json_integer((json_int_t)(now - links[i].modem.mono_ms)));
            json_object_set_new(l, "modem", m);
        } else {
            json_object_set_new(l, "modem", json_null());
        }
        const struct state_sim *sm = &links[i].sim;
        if (sm->valid) {
            json_t *sj = json_object();
            json_object_set_new(sj, "balance", num_or_null(round_to(sm->balance, 0.01)));
            json_object_set_new(sj, "spend_per_day", num_or_null(round_to(sm->rate_per_day, 0.01)));
            json_object_set_new(sj, "forecast_empty_utc", utc_or_null(sm->forecast_empty_utc));
            json_object_set_new(sj, "data_used_bytes",
                                json_integer((json_int_t)sm->data_used_bytes));
            json_object_set_new(sj, "data_up_bytes", json_integer((json_int_t)sm->data_up_bytes));
            json_object_set_new(sj, "data_down_bytes",
                                json_integer((json_int_t)sm->data_down_bytes));
            json_object_set_new(sj, "data_today_bytes",
                                json_integer((json_int_t)sm->data_today_bytes));
            json_object_set_new(sj, "data_month_bytes",
                                json_integer((json_int_t)sm->data_month_bytes));
            json_object_set_new(sj, "alert", json_boolean(sm->alert));
            json_object_set_new(l, "sim", sj);
        } else {
            json_object_set_new(l, "sim", json_null());
        }
        const struct state_link_policy *lp = &links[i].policy;
        if (lp->valid) {
            json_t *pj = json_object();
            json_object_set_new(pj, "weight", json_real(lp->weight));
            json_object_set_new(pj, "state", json_string(lp->state));
            json_object_set_new(pj, "reason", json_string(lp->reason));
            json_object_set_new(l, "policy", pj);
        } else {
            json_object_set_new(l, "policy", json_null());
        }
        const struct state_link_tunnel *tl = &links[i].tunnel;
        if (tl->valid) {
            json_t *tj = json_object();
            json_object_set_new(tj, "state", json_string(tl->state));
            json_object_set_new(tj, "weight", json_real(tl->weight));
            json_object_set_new(tj, "srtt_ms", num_or_null(round_to(tl->srtt_ms, 0.1)));
            json_object_set_new(tj, "rttvar_ms", num_or_null(round_to(tl->rttvar_ms, 0.1)));
            json_object_set_new(tj, "loss", json_real(tl->loss));
            json_object_set_new(tj, "capacity_bps", num_or_null(round(tl->capacity_bps)));
            json_object_set_new(tj, "tx_bytes", json_integer((json_int_t)tl->tx_bytes));
            json_object_set_new(tj, "rx_bytes", json_integer((json_int_t)tl->rx_bytes));
            json_object_set_new(tj, "tx_packets", json_integer((json_int_t)tl->tx_packets));
            json_object_set_new(tj, "rx_packets", json_integer((json_int_t)tl->rx_packets));
            json_object_set_new(tj, "resent_packets", json_integer((json_int_t)tl->resent_packets));
            json_object_set_new(l, "tunnel", tj);
        } else {
            json_object_set_new(l, "tunnel", json_null());
        }
        json_array_append_new(arr, l);
    }
    pthread_mutex_unlock(&render_lock);
    struct state_position sp;
    state_get_position(st, &sp);
    json_t *pj = json_object();
    json_object_set_new(pj, "fix", json_boolean(sp.valid));
    json_object_set_new(pj, "source", json_string(sp.source[0] ? sp.source : "none"));
    json_object_set_new(pj, "lat", sp.valid ? num_or_null(round_to(sp.lat, 1e-6)) : json_null());
    json_object_set_new(pj, "lon", sp.valid ? num_or_null(round_to(sp.lon, 1e-6)) : json_null());
    json_object_set_new(pj, "alt_m", sp.valid ? num_or_null(round_to(sp.alt_m, 0.1)) : json_null());
    json_object_set_new(pj, "speed_kmh",
                        sp.valid ? num_or_null(round_to(sp.speed_kmh, 0.1)) : json_null());
    json_object_set_new(pj, "track_deg",
                        sp.valid ? num_or_null(round_to(sp.track_deg, 0.1)) : json_null());
    json_object_set_new(pj, "utc", sp.valid ? utc_or_null(sp.utc) : json_null());
    json_object_set_new(pj, "trip", json_integer(sp.trip));
    json_t *aj = json_array();
    for (unsigned k = 0; k < sp.n_ahead; k++) {
        const struct state_ahead *a = &sp.ahead[k];
        json_t *e = json_object();
        json_object_set_new(e, "operator", json_string(a->op));
        bool dead = isfinite(a->dead_in_s);
        json_object_set_new(e, "dead_zone_in_s",
                            dead ? num_or_null(round_to(a->dead_in_s, 0.1)) : json_null());
        json_object_set_new(e, "dead_zone_in_m",
                            dead ? num_or_null(round(a->dead_in_m)) : json_null());
        json_object_set_new(e, "dead_zone_lat",
                            dead ? num_or_null(round_to(a->dead_lat, 1e-6)) : json_null());
        json_object_set_new(e, "dead_zone_lon",
                            dead ? num_or_null(round_to(a->dead_lon, 1e-6)) : json_null());
        json_object_set_new(e, "quality_min", num_or_null(round_to(a->quality_min, 0.01)));
        json_object_set_new(e, "confidence", num_or_null(round_to(a->confidence, 0.01)));
        json_object_set_new(e, "trips", json_integer(a->trips));
        json_array_append_new(aj, e);
    }
    json_object_set_new(pj, "ahead", aj);
    json_object_set_new(o, "position", pj);

    struct state_tunnel tun;
    state_get_tunnel(st, &tun);
    if (tun.valid) {
        json_t *tj = json_object();
        json_object_set_new(tj, "hub_state", json_string(tun.hub_state));
        json_object_set_new(tj, "hub_index", json_integer(tun.hub_index));
        json_object_set_new(tj, "hub_switches", json_integer(tun.hub_switches));
        json_object_set_new(tj, "tun_rx_packets", json_integer((json_int_t)tun.tun_rx_packets));
        json_object_set_new(tj, "tun_tx_packets", json_integer((json_int_t)tun.tun_tx_packets));
        json_object_set_new(tj, "dropped_auth", json_integer((json_int_t)tun.dropped_auth));
        json_object_set_new(tj, "dropped_replay", json_integer((json_int_t)tun.dropped_replay));
        json_object_set_new(tj, "dropped_other", json_integer((json_int_t)tun.dropped_other));
        json_object_set_new(o, "tunnel", tj);
    } else {
        json_object_set_new(o, "tunnel", json_null());
    }
    json_object_set_new(o, "links", arr);
    /* The most recent 32 events, oldest first. */
    struct state_event ev[32];
    uint64_t last = state_last_event_seq(st);
    unsigned ne = state_get_events(st, last > 32 ? last - 32 : 0, ev, 32);
    json_t *ea = json_array();
    for (unsigned i = 0; i < ne; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "seq", json_integer((json_int_t)ev[i].seq));
        json_object_set_new(e, "wall_ms", json_integer((json_int_t)ev[i].wall_ms));
        json_object_set_new(e, "source", json_string(ev[i].source));
        json_object_set_new(e, "kind", json_string(ev[i].kind));
        json_object_set_new(e, "text", json_string(ev[i].text));
        json_array_append_new(ea, e);
    }
    json_object_set_new(o, "events", ea);
    return o;
}

json_t *render_exchanges(struct state *st)
{
    static struct link_state ls[CFG_MAX_LINKS]; /* callers: control and http threads, under */
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* this lock: 48 kB, not on a stack */
    static struct modem_exchange x[STATE_EXCHANGES];
    json_t *o = json_object();
    pthread_mutex_lock(&mu);
    unsigned n = state_get_links(st, ls, CFG_MAX_LINKS);
    for (unsigned i = 0; i < n; i++) {
        if (!ls[i].has_modem)
            continue;
        json_t *arr = json_array();
        unsigned k = state_get_exchanges(st, i, x, STATE_EXCHANGES);
        for (unsigned j = 0; j < k; j++)
            json_array_append_new(arr,
                                  json_pack("{s:I,s:s,s:s,s:s,s:i}", "t", (json_int_t)x[j].wall_ms,
                                            "cmd", x[j].cmd, "result", x[j].result, "reply",
                                            x[j].reply, "ms", (int)x[j].took_ms));
        json_object_set_new(o, ls[i].name, arr);
    }
    pthread_mutex_unlock(&mu);
    return o;
}
