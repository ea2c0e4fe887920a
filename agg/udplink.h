/* udplink: internal helper of agg/ (not public): the UDP sockets of the tunnel.
 *
 * Vehicle: one socket per link, bound to the link's interface with SO_BINDTODEVICE and to that
 * interface's IPv4 address, so (1) the route lookup only considers routes through that device
 * and (2) the source address matches the operator's policy-routing rule
 * (`ip rule add from <modem addr> table <100+link id>`, see docs/tunnel.md). Both together keep
 * packets on the intended modem even when every modem sits in the same subnet behind the same
 * gateway address. Hub: one socket for every vehicle. All sockets are non-blocking. */
#ifndef CORRIDOR_AGG_UDPLINK_H
#define CORRIDOR_AGG_UDPLINK_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

/* "a.b.c.d:port" -> sockaddr. 0 or -1. */
int udplink_parse_addr(const char *s, struct sockaddr_in *out);

/* A link socket bound to ifname (and its current IPv4 address if it has one). Returns the fd
 * or -1 with err naming the interface and the failing step. *src_be receives the bound source
 * address (0 = any). */
int udplink_open_link(const char *ifname, uint32_t *src_be, char *err, size_t errlen);

/* The hub's listen socket. */
int udplink_open_listen(const char *addr, char *err, size_t errlen);

/* Current IPv4 address of an interface (network order) or 0 if none / no such interface. */
uint32_t udplink_if_addr(const char *ifname);

/* Send one datagram; returns 0, or -errno (EAGAIN: the socket buffer is full, the caller
 * counts a drop: the data plane never blocks). */
int udplink_send(int fd, const struct sockaddr_in *to, const void *buf, size_t len);

/* ---- dploop: the data-plane thread both engines run -------------------------------------------
 * epoll over the engine's descriptors, a timerfd tick and an eventfd to stop. on_event gets the
 * tag the descriptor was added with (the top bit is reserved); on_tick runs after the events of
 * the same wakeup: after a stall (CPU contention) the probe replies and feedback waiting in the
 * sockets must be read before the liveness check, or a link is declared down for silence that
 * was ours (seen in the lab: two links down at once when a download started). A non-NULL
 * alive kind is beaten (common/alive.h) every wakeup, at least once a second. */
#include <pthread.h>
#include <stdbool.h>

struct dploop {
    int epfd, tfd, efd;
    pthread_t thr;
    bool started;
    void (*on_event)(void *ctx, uint64_t tag, uint64_t now_us);
    void (*on_tick)(void *ctx, uint64_t now_us);
    void *ctx;
    const char *alive;
};
/* Creates the descriptors (who names the engine in err). 0 or -1. */
int dploop_open(struct dploop *l, unsigned tick_us, const char *who, char *err, size_t errlen);
int dploop_add(struct dploop *l, int fd, uint64_t tag);
void dploop_del(struct dploop *l, int fd);
/* Starts the thread with the callbacks set in l. 0 or -1. */
int dploop_start(struct dploop *l, const char *who, char *err, size_t errlen);
/* Stops and joins the thread (if started), then closes the descriptors. Safe on a loop that
 * was only partly opened (fds -1) if it was zeroed with dploop_init first. */
void dploop_close(struct dploop *l);
void dploop_init(struct dploop *l);

/* ---- bond: one peer's bonded link set (shared by the client and the hub engines) ------------
 * Glue between the sockets and the pure layers: seals with the session (wire.h), schedules per
 * packet (sched.h), keeps a plaintext copy of each data packet for re-sending, answers and sends
 * probes and feedback (ctrl.h), and reorders what arrives (reorder.h) before handing IP packets
 * to deliver(). One data-plane thread owns a bond; nothing here blocks or logs per packet.
 *
 * Sequence space: data packets carry the even packet numbers 2k, where k is the data sequence
 * (scheduler, feedback and the receiver's reorder buffer count in k); control packets take the
 * odd numbers, so a control packet still in flight never looks like a data gap. A re-sent
 * packet gets a NEW (odd) packet number (the number is the AEAD nonce) and carries its data
 * sequence inside:
 *   inner type BOND_INNER_RESEND (0x1f): data sequence k (8 bytes, big-endian),
 *   original inner type (1 byte), original payload. */
#include <stdbool.h>

#include "agg/agg.h"
#include "agg/ctrl.h"
#include "agg/reorder.h"
#include "agg/sched.h"
#include "agg/tun.h"
#include "agg/wire.h"

#define BOND_INNER_RESEND 0x1f
#define BOND_PKT_MAX      1600u /* largest inner packet kept (inner MTU <= 1500) */
#define BOND_TXCOPIES     4096u /* plaintext copies for re-sending (power of two) */
#define BOND_RXPOOL       4096u /* packets the reorder buffer can hold */
#define BOND_TXQ          2048u /* sender queue slots (docs/scheduling.md "Sender queue") */

struct bond_link {
    bool present;  /* configured (vehicle) or learned (hub) */
    bool has_peer; /* peer address known */
    int fd;
    struct sockaddr_in peer;
    uint64_t tx_bytes, tx_pkts, rx_bytes, rx_pkts, resent;
    uint64_t send_errors;
};

struct bond_txcopy {
    /* data sequence + 1; 0 = empty. Zero means empty so that the 4096 copies (6.6 MB) need no
     * initialisation: their pages stay untouched until traffic uses them, which keeps an idle
     * vehicle at a few hundred kB on a hub serving thousands (bench_hub_mem). */
    uint64_t seq1;
    uint16_t len;
    uint8_t inner;
    uint8_t data[BOND_PKT_MAX];
};

/* A bulk packet waiting in the sender queue for room on a link (not yet sequenced or sealed). */
struct bond_txq_ent {
    uint64_t t_us; /* when it joined */
    uint16_t len;
    uint8_t inner, cls;
    uint8_t data[BOND_PKT_MAX];
};

typedef void (*bond_deliver_fn)(void *ctx, uint8_t *ip, size_t len);

struct bond {
    struct wire_session *sess; /* current session for sending (not owned) */
    struct bond_link link[AGG_MAX_LINKS];
    struct sched *sched;
    struct reorder *rb;
    struct ctrl_rx crx;
    struct bond_txcopy *tx; /* BOND_TXCOPIES */
    uint8_t *pool;          /* BOND_RXPOOL x BOND_PKT_MAX */
    uint16_t *pool_len;
    uint32_t *pool_free;
    uint32_t n_free;
    /* Delay equalisation, receive side (docs/scheduling.md): a bulk packet that arrived on a
     * link faster than the slowest one in use is delivered no earlier than its arrival plus
     * the difference of their base delays, so every bulk packet reaches the LAN at (send time +
     * slowest delay + queue) whichever link carried it. In-order FIFO of pool handles after the
     * reorder buffer; pool_due[h] is the earliest delivery time of handle h (0 = at once). */
    uint64_t *pool_due; /* BOND_RXPOOL */
    uint32_t *outq;     /* BOND_RXPOOL handles */
    uint32_t outq_head, outq_len;
    uint64_t outq_tail_due;
    uint32_t rx_pad_us[AGG_MAX_LINKS];
    uint64_t rx_pad_bytes[AGG_MAX_LINKS]; /* link rx_bytes at the last pad update */
    double rx_share[AGG_MAX_LINKS];       /* EWMA of bytes received per 100 ms */
    /* Consecutive pad updates (100 ms) in which the bond was loaded and the link brought under
     * 5 % of it; 20 of them leave the link out of the pad (pad_leaves_out in udplink.c). */
    uint8_t pad_small_n[AGG_MAX_LINKS];
    uint32_t eq_min_bytes; /* bulk = at least this many bytes on the wire; 0 = off */
    uint64_t rx_padded;    /* packets delivered later than released, for equalisation */
    bool lz4;
    unsigned inner_mtu;
    bond_deliver_fn deliver;
    void *ctx;
    uint64_t rs_seq[BOND_TXCOPIES]; /* re-sends waiting for room on a link (FIFO) */
    uint64_t rs_t[BOND_TXCOPIES];
    uint32_t rs_head, rs_len;
    uint64_t data_k, ctrl_k; /* next data sequence; last control index (see udplink.c) */
    unsigned lz4_streak;
    uint64_t last_gaps;
    uint64_t last_hold_us;
    uint8_t out[WIRE_MAX_PACKET + 64];
    uint8_t scratch[WIRE_MAX_PACKET + 64];
    /* counters */
    /* Sender queue (NULL when the scheduler's link_queue_us is 0): bulk packets wait here in
     * arrival order and leave when a link's own queue is short enough, so the standing queue
     * of a TCP flow is ours, and repairs, ACKs and small packets pass it. */
    struct bond_txq_ent *txq; /* BOND_TXQ */
    uint32_t txq_head, txq_len;
    double txq_bytes;    /* wire bytes queued */
    uint64_t drop_stale; /* left the sender queue unsent: waited past TXQ_MAX_WAIT_US */
    uint64_t drop_nolink, drop_budget, drop_pool, drop_oversize, drop_bad_inner, resent;
    uint64_t resend_expired; /* repairs that found no room on any link in time */
    uint64_t rx_delivered;
    /* Full inner MTU by fragments (docs/tunnel.md "MTU"): packets over frag_mtu (the largest
     * that fits one outer packet; 0 = never split) leave as 2..15 WIRE_INNER_FRAG pieces on
     * consecutive sequences; the receiver joins them after the reorder buffer. */
    unsigned frag_mtu;
    uint8_t *pool_frag; /* BOND_RXPOOL: the handle holds a fragment (its first byte = index) */
    uint8_t reasm[BOND_PKT_MAX];
    size_t reasm_len;
    uint8_t reasm_next, reasm_count; /* next index expected (reasm_count 0: none open) */
    uint64_t frag_sent, frag_joined, frag_dropped;
    /* The class table in force here (bond_set_classes), re-applied to each new scheduler. */
    struct ctrl_classes classes;
    bool classes_set;
    /* The peer's class table (CTRL_CLASSES), for the hub: new_ set until the engine applied it. */
    struct ctrl_classes peer_classes;
    bool peer_classes_new;
};

/* Allocates the bond's buffers. 0 or -1 with err. */
int bond_init(struct bond *b, unsigned inner_mtu, bool lz4, bond_deliver_fn deliver, void *ctx,
              char *err, size_t errlen);
void bond_free(struct bond *b);
/* Forget all sequence state (a new session starts its packet numbers at 0), keeping links
 * and their estimates. */
int bond_reset_seq(struct bond *b, char *err, size_t errlen);
/* Add link id with the socket it sends on (peer address later or now). */
int bond_add_link(struct bond *b, uint8_t link_id, int fd, const struct sockaddr_in *peer,
                  uint64_t now_us);
void bond_set_peer(struct bond *b, uint8_t link_id, const struct sockaddr_in *peer);
/* Schedule and send one IP packet. Returns 0 sent, -1 dropped (counted). */
int bond_send_ip(struct bond *b, const uint8_t *ip, size_t len, unsigned cls, uint64_t now_us);
/* Send a keepalive on every link with a peer (teaches the hub our addresses). */
void bond_keepalive_all(struct bond *b, uint64_t now_us);
/* An authenticated data packet (wire_open succeeded) that arrived on link_id. */
void bond_on_rx(struct bond *b, uint8_t link_id, const struct wire_rx *rx, uint64_t now_us);
/* Periodic work (every few ms): probes, liveness, re-sends, feedback, reorder release. */
void bond_tick(struct bond *b, uint64_t now_us);
/* Release what the reorder buffer allows now. */
void bond_release(struct bond *b, uint64_t now_us);
void bond_link_stats(struct bond *b, uint8_t link_id, struct agg_link_stats *out);
void bond_get_stats(struct bond *b, struct agg_bond_stats *out);
/* Traffic classes, one table for both ends: the vehicle makes it from its config and sends it
 * (bond_send_classes, after each handshake and every 10 s), the hub applies what it receives.
 * Sets scheduler classes 1..n (and class 0, unclassified, yielding first when n > 0) and fills
 * cls[0..n-1] for tun_classify, matching the subnet as source (vehicle) or destination (hub). */
void bond_set_classes(struct bond *b, const struct ctrl_classes *t, bool match_dst,
                      struct tun_class *cls);
void bond_send_classes(struct bond *b, const struct ctrl_classes *t);
/* Send this end's per-link weights to the peer (the vehicle's policy, for the hub's downlink),
 * on every link: the hub applies them to its scheduler for this vehicle. */
void bond_send_weights(struct bond *b);

#endif
