/* fixture: the hand-built configuration and shared state the dashboard tests serve: three links
 * (mts and beeline with modems, wifi without), one with tunnel and policy data, a position with
 * a predicted dead zone ahead, a connected hub and one event. */
#ifndef CORRIDOR_TESTS_DASHBOARD_FIXTURE_H
#define CORRIDOR_TESTS_DASHBOARD_FIXTURE_H

#include <string.h>

#include "common/common.h"
#include "firmware/config.h"
#include "firmware/state.h"
#include "modem/modem.h"
#include "telemetry/coverage.h"
#include "telemetry/outbox.h"

static void make_config(struct config *cfg, const char *listen)
{
    memset(cfg, 0, sizeof *cfg);
    str_copy(cfg->vehicle_id, "train-042", sizeof cfg->vehicle_id);
    const char *names[] = {"mts", "beeline", "wifi"};
    for (unsigned i = 0; i < 3; i++) {
        str_copy(cfg->links[i].name, names[i], sizeof cfg->links[i].name);
        snprintf(cfg->links[i].interface, sizeof cfg->links[i].interface, "wwan%u", i);
        cfg->links[i].modem.present = i < 2;
    }
    cfg->nlinks = 3;
    cfg->dashboard.enabled = true;
    str_copy(cfg->dashboard.listen, listen, sizeof cfg->dashboard.listen);
}

static void fill_state(struct state *st)
{
    struct modem_sample s;
    modem_sample_init(&s);
    str_copy(s.link, "mts", sizeof s.link);
    s.mono_ms = mono_ms();
    s.state = MODEM_ST_POLL;
    s.reg = MODEM_REG_HOME;
    s.net = MODEM_NET_LTE;
    str_copy(s.oper_name, "MTS", sizeof s.oper_name);
    str_copy(s.mcc, "250", sizeof s.mcc);
    str_copy(s.mnc, "01", sizeof s.mnc);
    s.sig.rssi_dbm = -71;
    s.sig.rsrp_dbm = -95;
    s.sig.rsrq_db = -9;
    s.sig.sinr_db = 12.5;
    s.balance.valid = true;
    s.balance.amount_valid = true;
    s.balance.amount = 123.5;
    str_copy(s.balance.raw, "Balance 123.50 rub", sizeof s.balance.raw);
    state_put_modem(st, &s);
    str_copy(s.link, "beeline", sizeof s.link);
    str_copy(s.oper_name, "Bee\"line", sizeof s.oper_name); /* label escaping */
    str_copy(s.mnc, "02", sizeof s.mnc);
    s.state = MODEM_ST_RECOVER;
    state_put_modem(st, &s);

    struct state_link_tunnel t = {.valid = true,
                                  .tx_bytes = 1000,
                                  .rx_bytes = 2000,
                                  .tx_packets = 10,
                                  .rx_packets = 20,
                                  .srtt_ms = 45.5,
                                  .rttvar_ms = 3,
                                  .loss = 0.01,
                                  .capacity_bps = 8e6,
                                  .weight = 0.6};
    str_copy(t.state, "up", sizeof t.state);
    state_put_link_tunnel(st, 0, &t);
    struct state_link_policy p = {.valid = true, .weight = 0.6};
    str_copy(p.state, "active", sizeof p.state);
    str_copy(p.reason, "best signal", sizeof p.reason);
    state_put_link_policy(st, 0, &p);

    struct state_position pos = {.valid = true,
                                 .lat = 55.75,
                                 .lon = 37.61,
                                 .speed_kmh = 80,
                                 .track_deg = 90,
                                 .utc = 1700000000,
                                 .n_ahead = 1};
    str_copy(pos.source, "gpsd", sizeof pos.source);
    str_copy(pos.ahead[0].op, "MTS", sizeof pos.ahead[0].op);
    pos.ahead[0].dead_in_s = 120;
    pos.ahead[0].dead_in_m = 2600;
    pos.ahead[0].dead_lat = 55.76;
    pos.ahead[0].dead_lon = 37.7;
    pos.ahead[0].confidence = 0.8;
    pos.ahead[0].quality_min = 0.1;
    pos.ahead[0].trips = 4;
    state_put_position(st, &pos);

    struct state_tunnel tun = {.valid = true, .hub_switches = 1, .tun_rx_packets = 5};
    str_copy(tun.hub_state, "connected", sizeof tun.hub_state);
    state_put_tunnel(st, &tun);
    state_add_event(st, "mts", "registered", "registered on MTS");
}

/* The seeded coverage map: a straight route east along latitude ROUTE_LAT from ROUTE_LON0,
 * ROUTE_N fixes ROUTE_STEP degrees (~63 m, one fix per 50 m cell) apart, one per second, trip 7.
 * Operator "250-01" is good everywhere (RSRP -100, SINR 10, 5000 kbit/s, RTT 50 ms);
 * "250-02" is better on the first half (RSRP -88, SINR 15, 20000 kbit/s, RTT 40 ms) and in
 * outage (RSRP -118, SINR -5, no tunnel) on the second. */
#define ROUTE_LAT  55.75
#define ROUTE_LON0 37.60
#define ROUTE_STEP 0.001
#define ROUTE_N    40
#define ROUTE_UTC0 1700000000

static inline int seed_coverage(const char *path, char *err, size_t errlen)
{
    struct coverage_map *m = NULL;
    if (coverage_open(path, NULL, &m, err, errlen) != 0)
        return -1;
    int rc = 0;
    for (int i = 0; i < ROUTE_N && rc == 0; i++) {
        for (int k = 0; k < 2 && rc == 0; k++) {
            bool out = k == 1 && i >= ROUTE_N / 2;
            bool better = k == 1 && !out; /* 250-02 is the best operator on the first half */
            struct cov_sample s = {.utc = ROUTE_UTC0 + i,
                                   .trip = 7,
                                   .lat = ROUTE_LAT,
                                   .lon = ROUTE_LON0 + i * ROUTE_STEP,
                                   .speed_mps = 63,
                                   .track_deg = 90,
                                   .fix = COV_FIX_GPSD,
                                   .net = COV_NET_LTE,
                                   .rsrp_dbm = out      ? -118
                                               : better ? -88
                                                        : -100,
                                   .rsrq_db = NAN,
                                   .sinr_db = out      ? -5
                                              : better ? 15
                                                       : 10,
                                   .rssi_dbm = NAN,
                                   .goodput_kbps = out      ? NAN
                                                   : better ? 20000
                                                            : 5000,
                                   .rtt_ms = out      ? NAN
                                             : better ? 40
                                                      : 50,
                                   .loss = out ? NAN : 0,
                                   .outage = out};
            str_copy(s.op, k == 0 ? "250-01" : "250-02", sizeof s.op);
            if (coverage_add_sample(m, &s, err, errlen) != 0)
                rc = -1;
        }
    }
    if (rc == 0 && coverage_flush(m, err, errlen) != 0)
        rc = -1;
    coverage_close(m);
    return rc;
}

/* The seeded outbox: batch 1 uploaded, batch 2 pending (3 records), batch 3 pending (2), and
 * 4 records not cut yet. */
static inline int seed_outbox(const char *path, char *err, size_t errlen)
{
    struct outbox_config oc = {.quota_bytes = 1u << 20};
    str_copy(oc.vehicle_id, "train-042", sizeof oc.vehicle_id);
    struct outbox *ob = outbox_open(path, &oc, err, errlen);
    if (!ob)
        return -1;
    int rc = 0;
    int64_t t = (int64_t)ROUTE_UTC0 * 1000;
    const unsigned per_batch[4] = {5, 3, 2, 4};
    for (int b = 0; b < 4 && rc == 0; b++) {
        struct rec_any r[5];
        memset(r, 0, sizeof r);
        for (unsigned i = 0; i < per_batch[b]; i++) {
            r[i].kind = REC_TRACK;
            r[i].u.track.t_ms = t;
            r[i].u.track.lat = ROUTE_LAT;
            r[i].u.track.lon = ROUTE_LON0 + i * ROUTE_STEP;
            r[i].u.track.alt_m = NAN;
            r[i].u.track.speed_kmh = 80;
            r[i].u.track.track_deg = 90;
            r[i].u.track.fix_mode = 3;
            r[i].u.track.source = 1;
            t += 1000;
        }
        uint64_t seq = 0;
        if (outbox_append(ob, r, per_batch[b], err, errlen) != 0)
            rc = -1;
        else if (b < 3 && outbox_cut(ob, t, &seq, err, errlen) != 1)
            rc = -1;
        else if (b == 0 && outbox_mark_delivered(ob, seq, t + 500, err, errlen) != 0)
            rc = -1;
    }
    outbox_close(ob);
    return rc;
}

#endif
