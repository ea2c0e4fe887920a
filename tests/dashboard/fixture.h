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

#endif
