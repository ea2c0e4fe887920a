/* netsim: a discrete-event simulator of the bonded tunnel in virtual time, used by the tests.
 *
 * It runs the REAL agg code (sched + linkest on both ends, reorder + ctrl_rx at the receiver,
 * every control message encoded and decoded with ctrl) over simulated links, with a CUBIC/SACK-
 * like TCP flow (or a constant-rate UDP stream) through the tunnel.
 *
 * Links are honest: per-direction FIFO serialisation at the link rate on the OUTER packet size,
 * a tail-drop queue limit, one-way delay plus uniform jitter (without reordering inside a link,
 * as a modem's bearer delivers in order), random loss, and outage windows during which
 * everything on the link, queued or in flight, is lost. Nothing here knows the algorithm's
 * internals; rates are never given to the scheduler. */
#ifndef NETSIM_H
#define NETSIM_H

#include <stdint.h>

#define SIM_MAX_LINKS 8

struct sim_link_cfg {
    double rate_bps; /* both directions */
    uint32_t owd_us;
    uint32_t jitter_us;    /* extra delay uniform in [0, jitter] */
    double loss;           /* per packet, both directions */
    uint32_t qlimit_bytes; /* 0 = 200 ms worth, at least 30 packets */
    uint64_t down_at_us;   /* 0 = never */
    uint64_t up_at_us;     /* 0 = stays down */
    double weight;         /* policy weight (default 1 if 0 and weight_set == 0) */
    int weight_set;
    uint64_t weight_at_us; /* apply weight at this time (0 = from start) */
};

enum sim_traffic { SIM_TCP = 0, SIM_UDP_CBR };

struct sim_cfg {
    int n_links;
    struct sim_link_cfg link[SIM_MAX_LINKS];
    uint64_t duration_us;
    uint64_t steady_from_us; /* goodput_steady counts from here */
    uint32_t seed;
    int traffic;    /* enum sim_traffic */
    double udp_bps; /* SIM_UDP_CBR: stream rate */
    uint32_t udp_bytes;
    int verbose;
    int no_hystart;           /* TCP without HyStart (Linux CUBIC has it on by default) */
    uint32_t target_delay_us; /* scheduler queue budget at both ends (0 = default 50 ms) */
    uint64_t start_us;        /* traffic starts here (the tunnel idles before: probes only);
                                 goodput counts from here */
};

struct sim_result {
    double goodput_bps;        /* TCP payload delivered in order / duration */
    double goodput_steady_bps; /* the same from steady_from_us */
    uint64_t max_gap_us;       /* longest interval without in-order delivery progress (>1 s in) */
    uint64_t max_gap_at_us;
    double cap_est_bps[SIM_MAX_LINKS]; /* sender's final capacity estimates */
    double loss_est[SIM_MAX_LINKS];
    uint32_t srtt_us[SIM_MAX_LINKS];
    uint64_t sent_bytes[SIM_MAX_LINKS];     /* data bytes the scheduler put on each link */
    uint64_t down_detect_us[SIM_MAX_LINKS]; /* time from down_at to declared down, 0 = never */
    int final_state[SIM_MAX_LINKS];
    uint64_t tcp_retx, tcp_rto, tunnel_resent, tunnel_drops_budget, tunnel_drops_nolink;
    uint64_t reorder_max_hold_us, reorder_skipped, reorder_late, reorder_dups;
    uint32_t hold_us_final;
    uint64_t udp_sent, udp_delivered, udp_lost_after_down; /* SIM_UDP_CBR */
    uint64_t inflight_at_cut_pkts;                         /* on the cut link when it died */
    uint64_t inflight_after_weight0; /* pkts still in flight on weight-0 link at end */
    uint64_t sent_after_weight0;     /* data pkts put on the weight-0 link after the change */
};

int sim_run(const struct sim_cfg *cfg, struct sim_result *res);

#endif
