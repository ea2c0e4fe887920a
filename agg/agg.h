/* agg: the bonded tunnel, the only public header of the agg/ subsystem.
 *
 * Two engines share the data plane (wire format, crypto, estimators, scheduler, reorder):
 *   - the vehicle client: a TUN device for the vehicle LAN, one UDP socket per modem link, one
 *     encrypted session with the current hub, packets scheduled one by one over all links;
 *   - the hub (`corridor-hub`): one UDP socket for every vehicle, a TUN device towards the
 *     internet (NAT is the kernel's, see docs/tunnel.md), one session per vehicle.
 *
 * Each engine runs ONE data-plane thread (epoll over TUN, sockets and a timerfd) that never
 * blocks. The functions below are called from other threads (the policy sets weights every
 * second, the state collector reads stats): they are thread-safe and cheap (a mutex around a
 * small copy). Keys are raw 32-byte X25519 keys loaded by the caller (agg/keys.h reads files).
 * Errors come back in a caller buffer naming what failed; the engines never exit the process. */
#ifndef CORRIDOR_AGG_H
#define CORRIDOR_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGG_MAX_LINKS   16
#define AGG_MAX_HUBS    8
#define AGG_MAX_CLASSES 8
#define AGG_NAME_LEN    32
#define AGG_ADDR_LEN    64 /* "host:port", "a.b.c.d/nn" */

enum agg_link_state {
    AGG_LINK_DOWN = 0, /* socket missing, or no answer for the dead interval */
    AGG_LINK_PROBING,  /* socket open, waiting for the first answer (or returning: eased in) */
    AGG_LINK_UP,       /* scheduled */
    AGG_LINK_DISABLED, /* weight 0: drained, only probes */
};

enum agg_class_mode {
    AGG_MODE_BOND = 0,  /* per-packet over every link (default) */
    AGG_MODE_FAILOVER,  /* the first UP link in priority order only */
    AGG_MODE_REDUNDANT, /* every packet over the two best links */
};

/* A traffic class matched by source subnet and/or DSCP (first match wins; unmatched packets
 * are class 0, "default", mode BOND). */
struct agg_class {
    char name[AGG_NAME_LEN];
    char src_subnet[AGG_ADDR_LEN]; /* "10.1.0.0/16", "" = any */
    int dscp;                      /* 0..63, -1 = any */
    enum agg_class_mode mode;
    bool passenger;     /* yields first when the links shrink (unclassified traffic always does) */
    uint32_t rate_kbps; /* cap for the class, 0 = none */
    /* FAILOVER: link ids in order of preference; links not listed come after, by id. */
    uint8_t failover_order[AGG_MAX_LINKS];
    unsigned n_failover;
};

struct agg_link_config {
    char name[AGG_NAME_LEN];   /* shown in stats ("op1") */
    char ifname[AGG_NAME_LEN]; /* interface the link's socket is bound to ("wwan0") */
    uint8_t link_id;           /* 0..AGG_MAX_LINKS-1, stable across restarts: on the wire */
};

struct agg_client_config {
    char tun_name[AGG_NAME_LEN]; /* "corr0" */
    char address[AGG_ADDR_LEN];  /* tunnel address with prefix, "10.77.0.2/16" */
    unsigned path_mtu;           /* outer path MTU (0 = 1500); TUN MTU = path_mtu - overhead */
    unsigned inner_mtu; /* TUN MTU; 0 = path_mtu - overhead. Larger (up to 1500): bigger packets
                         * cross as 2 fragments (a full 1500-byte LAN MTU, docs/tunnel.md) */
    char hubs[AGG_MAX_HUBS][AGG_ADDR_LEN]; /* "198.51.100.7:5555", tried in order */
    unsigned n_hubs;
    uint8_t private_key[32];
    uint8_t hub_public_key[32];
    struct agg_link_config links[AGG_MAX_LINKS];
    unsigned n_links;
    struct agg_class classes[AGG_MAX_CLASSES];
    unsigned n_classes;
    bool lz4;                /* try LZ4 per packet (skipped automatically when it does not pay) */
    unsigned hub_timeout_ms; /* move to the next hub after this silence (0 = 3000) */
};

/* Per-link counters and estimates. */
struct agg_link_stats {
    char name[AGG_NAME_LEN];
    uint8_t link_id;
    enum agg_link_state state;
    uint64_t tx_bytes, tx_packets, rx_bytes, rx_packets;
    uint64_t resent_packets;         /* in-flight packets re-sent elsewhere after this link died */
    double srtt_ms, rttvar_ms, loss; /* loss 0..1 */
    double capacity_bps;             /* estimated bottleneck rate towards the peer */
    double weight;                   /* as set by the policy (0..1, 0 = disabled) */
};

enum agg_hub_state {
    AGG_HUB_NONE = 0,   /* no hub configured / stopped */
    AGG_HUB_CONNECTING, /* handshake sent, no answer yet */
    AGG_HUB_CONNECTED,  /* session established and the hub answers */
};

/* One bonded peer's receive and repair counters (both ends): what the reorder buffer held and
 * why, and what the sender had to re-send or refuse. Cumulative since the bond was made. */
struct agg_bond_stats {
    uint32_t hold_ms;        /* reorder hold in force */
    uint64_t released;       /* packets released in order (or as late repairs) */
    uint64_t wait_sum_us;    /* their total wait in the reorder buffer */
    uint64_t max_wait_us;    /* the longest single wait */
    uint64_t gaps_opened;    /* sequence gaps seen on arrival (loss or reordering) */
    uint64_t skipped;        /* sequences given up after the hold (the inner flow sees a loss) */
    uint64_t late;           /* given-up sequences that arrived afterwards (delivered at once) */
    uint64_t padded;         /* bulk packets delivered later for delay equalisation */
    uint64_t resent;         /* repairs sent by this end */
    uint64_t resend_expired; /* repairs that found no room on any link in time */
    uint64_t drop_budget;    /* packets refused at the links' queue budget */
    uint64_t drop_pool;      /* received packets dropped: the receive pool was full */
    uint64_t drop_stale;     /* left the sender queue unsent after waiting too long */
    uint32_t queued;         /* packets in the sender queue now */
};

struct agg_client_stats {
    enum agg_hub_state hub_state;
    unsigned hub_index; /* into config hubs[] */
    unsigned hub_switches;
    uint64_t tun_rx_packets, tun_tx_packets;
    uint64_t dropped_auth, dropped_replay, dropped_other; /* bad packets from the network */
    uint64_t icmp_too_big;                                /* oversize packets answered */
    uint64_t tx_dropped_nolink, tx_dropped_queue; /* refused by the scheduler (no link / budget) */
    uint64_t reorder_late, reorder_skipped;
    struct agg_bond_stats bond;
    unsigned n_links;
    struct agg_link_stats links[AGG_MAX_LINKS];
};

/* Events from the data-plane thread. Called on that thread: must be quick and not call back
 * into agg_client_*. Any pointer may be NULL. */
struct agg_callbacks {
    void (*hub_state)(void *user, enum agg_hub_state state, unsigned hub_index);
    void (*link_state)(void *user, uint8_t link_id, enum agg_link_state state);
    void *user;
};

struct agg_client;

/* Opens the TUN device and link sockets, starts the thread. 0, or -1 with err set. A link
 * whose interface does not exist yet is retried every second (modems come and go). */
int agg_client_start(const struct agg_client_config *cfg, const struct agg_callbacks *cb,
                     struct agg_client **out, char *err, size_t errlen);
/* Stops the thread, closes everything, wipes keys, frees. NULL is fine. */
void agg_client_stop(struct agg_client *c);
/* weights[i] for config link i (same order as cfg->links), 0..1 (clamped): the share of the
 * link's estimated rate the scheduler may use; 1 = all of it, 0 = disabled (drained without
 * loss: no new packets, in-flight ones still acknowledged and re-sent elsewhere if lost).
 * Takes effect within 100 ms. */
void agg_client_set_weights(struct agg_client *c, const double *weights, unsigned n);
/* Replace the hub list (provisioning). Validated here (0, or -1 with err naming the entry);
 * taken over within a second: the current hub stays if the new list has it. */
int agg_client_set_hubs(struct agg_client *c, const char (*hubs)[AGG_ADDR_LEN], unsigned n,
                        char *err, size_t errlen);
/* Replace the traffic classes (configuration reload): checked here (0, or -1 with err), in
 * force within a second on both ends (the hub gets the table at once). */
int agg_client_set_classes(struct agg_client *c, const struct agg_class *classes, unsigned n,
                           char *err, size_t errlen);
void agg_client_get_stats(struct agg_client *c, struct agg_client_stats *out);

/* ---- hub ------------------------------------------------------------------------------------ */
#define AGG_HUB_MAX_VEHICLES 4096

#define AGG_MAX_ROUTES 8
struct agg_vehicle_config {
    char id[AGG_NAME_LEN];
    uint8_t public_key[32];
    char address[AGG_ADDR_LEN]; /* tunnel IPv4 address, "10.77.0.2" */
    /* LAN prefixes routed to this vehicle ("10.100.42.0/24"): the hub adds kernel routes for
     * them into its TUN, sends their downlink to this vehicle and accepts them as its sources. */
    char routes[AGG_MAX_ROUTES][AGG_ADDR_LEN];
    unsigned n_routes;
};

struct agg_hub_config {
    char listen[AGG_ADDR_LEN]; /* "0.0.0.0:5555" */
    char tun_name[AGG_NAME_LEN];
    char address[AGG_ADDR_LEN]; /* "10.77.0.1/16" */
    unsigned path_mtu;          /* 0 = 1500 */
    unsigned inner_mtu;         /* as in agg_client_config */
    uint8_t private_key[32];
    struct agg_vehicle_config *vehicles; /* borrowed during agg_hub_start only (copied) */
    unsigned n_vehicles;
    bool lz4;
};

struct agg_vehicle_stats {
    char id[AGG_NAME_LEN];
    bool connected;
    uint64_t rx_packets, tx_packets;
    struct agg_bond_stats bond;
    unsigned n_links;
    struct agg_link_stats links[AGG_MAX_LINKS];
};

struct agg_hub_stats {
    unsigned n_vehicles, connected;
    uint64_t dropped_auth, dropped_replay, dropped_unknown, dropped_other;
    uint64_t handshakes_ok, handshakes_bad;
};

struct agg_hub;

int agg_hub_start(const struct agg_hub_config *cfg, struct agg_hub **out, char *err, size_t errlen);
void agg_hub_stop(struct agg_hub *h);
/* Totals, plus up to max per-vehicle entries in vehicles (may be NULL). Returns the number of
 * entries written. */
unsigned agg_hub_get_stats(struct agg_hub *h, struct agg_hub_stats *out,
                           struct agg_vehicle_stats *vehicles, unsigned max);

/* Inner MTU for an outer path MTU: path_mtu - IPv4 - UDP - tunnel overhead. */
unsigned agg_inner_mtu(unsigned path_mtu);
/* The TUN MTU for a configured inner_mtu (0 = agg_inner_mtu(path_mtu)), and the size over which
 * packets are split (0 = never). */
unsigned agg_tun_mtu(unsigned path_mtu, unsigned inner_mtu, unsigned *frag_mtu);

#endif
