/* sched: the per-packet scheduler of the bonded tunnel (one instance per direction and peer).
 *
 * For every packet it picks the link on which the packet is expected to ARRIVE first:
 *     EAT(link) = owd(link) + (vq(link) + bytes) / (pace(link) * weight(link))
 * where owd is the link's one-way delay, vq is a virtual queue (bytes we handed to the link
 * that its estimated rate has not yet drained: a token model of the modem's buffer), pace is
 * linkest's capacity estimate times its pacing gain and weight is the policy's 0..1 share.
 * Sending each packet where it arrives soonest fills fast links first, spills onto slower ones
 * exactly when their delay is matched by the fast links' queue, and so packets arrive nearly in
 * order: the receiver's reorder buffer rarely has to wait (see docs/scheduling.md).
 *
 * Bufferbloat: a link takes no new packet while its virtual queue holds more than the target
 * delay (lower-priority classes: 60% of it, so they yield first when links shrink). If no link
 * can take the packet the verdict says so and the caller drops it (TCP slows down).
 *
 * In-flight packets are tracked per link in a bounded ring (seq, bytes, send time, expected
 * queueing delay). Feedback retires them: links are FIFO, so everything sent on a link before
 * the highest sequence the peer got there has arrived or is lost (the peer's gap list says
 * which); a packet due at the peer well before the report and still missing is lost too
 * (one-way RACK, for tail losses). Lost packets (up to 3 times each) and every un-acked packet
 * of a link declared down are queued for re-sending: the caller takes the sequence numbers
 * with sched_take_resend(), looks up its copy and calls sched_resend().
 *
 * Memory: sched_new() allocates seq_slots x 24 bytes plus, per link, inflight_slots x 32
 * bytes (defaults: 384 kB + 128 kB per link). A hub serving many vehicles should size these
 * down (seq_slots ~ 2 x peak packets per hold time).
 *
 * Pure and socket-free: time is passed in; sched_new() allocates everything; the per-packet
 * calls do O(links) work and never allocate. Not thread-safe: one data-plane thread owns it. */
#ifndef CORRIDOR_AGG_SCHED_H
#define CORRIDOR_AGG_SCHED_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "agg/ctrl.h"
#include "agg/linkest.h"

#define SCHED_MAX_LINKS   16
#define SCHED_MAX_CLASSES 8
#define SCHED_NO_LINK     0xff

enum sched_mode {
    SCHED_BOND = 0,  /* earliest expected arrival over all enabled links */
    SCHED_FAILOVER,  /* only the live links of the best priority (link_prio) */
    SCHED_REDUNDANT, /* every packet on the two best links */
};

struct sched_class_cfg {
    uint8_t mode;                   /* enum sched_mode */
    uint8_t priority;               /* 0 = operational (full queue budget); >0 yields first */
    uint32_t redundant_below_bytes; /* BOND: packets up to this size go on two links (0 = off) */
    uint64_t rate_cap_bps;          /* bit/s, 0 = none (token bucket, 50 ms burst) */
    uint8_t link_prio[SCHED_MAX_LINKS]; /* FAILOVER: by link index, lower = preferred */
};

struct sched_cfg {
    uint32_t target_delay_us; /* queue budget per link (default 50 ms) */
    uint32_t inflight_slots;  /* per-link in-flight ring, power of two (default 4096) */
    uint32_t seq_slots;       /* seq -> link map and resend queue, power of two (default 16384) */
    /* Delay equalisation for bulk packets (0 = off, the default). Packets of at least this many
     * bytes are placed as if every link had the one-way delay of the slowest link that carries
     * a real share (>= 5% of the offered rate): the choice is by queue alone, every such link
     * carries its share from the first packet on, and the receiver's in-order release makes
     * every bulk packet arrive at (send time + slowest delay + queue). A TCP flow then sees a
     * constant RTT from the start instead of one that grows as load spills onto slower links
     * (which CUBIC's HyStart and BBR read as congestion). Smaller packets (ACKs, interactive,
     * VoIP) keep the earliest-arrival rule and the fastest link. See docs/scheduling.md. */
    uint32_t equalise_min_bytes;
    /* Sender queue (0 = off, the default: every packet goes straight to a link's queue up to
     * target_delay_us). With it, the caller keeps bulk packets in its own FIFO
     * (sched_queue_admit) and hands them to the links with sched_send_queued, which fills a
     * link only up to this much queue: the standing queue that a TCP flow builds then waits in
     * the tunnel, not in the modem, where repairs, ACKs and small packets would queue behind
     * it, and where everything is stranded when the link dies. See docs/scheduling.md. */
    uint32_t link_queue_us;
};

enum sched_verdict {
    SCHED_SEND = 0,
    SCHED_DROP_NOLINK,  /* no link is up and enabled */
    SCHED_DROP_BUDGET,  /* every usable link is over its queue budget */
    SCHED_DROP_RATECAP, /* the class is over its rate cap */
};

struct sched_decision {
    uint8_t n;       /* 1, or 2 for redundancy */
    uint8_t link[2]; /* link ids */
};

struct sched_link_info {
    uint8_t link_id;
    double weight;
    double vq_bytes;
    uint64_t inflight_bytes;
    uint32_t inflight_pkts;
    uint32_t owd_us; /* one-way delay the scheduler uses */
    uint64_t resent_pkts;
};

struct sched;

void sched_cfg_default(struct sched_cfg *cfg);
struct sched *sched_new(const struct sched_cfg *cfg, char *err, size_t errlen);
void sched_free(struct sched *s);

/* Links are named by their wire link id. Returns 0, or -1 (full / duplicate id). */
int sched_add_link(struct sched *s, uint8_t link_id, uint64_t now_us);
/* Policy weight 0..1 (clamped). 0 = no new packets; in-flight ones still complete. */
void sched_set_weight(struct sched *s, uint8_t link_id, double weight);
int sched_set_class(struct sched *s, unsigned cls, const struct sched_class_cfg *cfg);

/* Pick the link(s) for a new packet and record it as sent there. seq is the caller's
 * tunnel-wide sequence number; cls indexes the class table (out of range = class 0). */
enum sched_verdict sched_send(struct sched *s, uint64_t seq, uint32_t bytes, unsigned cls,
                              uint64_t now_us, struct sched_decision *out);
/* Sender queue (cfg.link_queue_us > 0). sched_queued_class: whether a packet of this class and
 * size belongs in the FIFO (BOND-mode classes, except what redundancy sends on two links;
 * FAILOVER and REDUNDANT classes go straight through sched_send). sched_queue_admit: whether
 * the FIFO, holding queued_bytes, may take this packet (the class's share of target_delay_us
 * at the rate of all enabled links, less the links' own queue; the class's rate cap is
 * charged here): SCHED_SEND, or why not. sched_send_queued: place the FIFO's head packet on
 * the link where it leaves first, among links under link_queue_us; SCHED_DROP_BUDGET = keep
 * it, none has room now. */
bool sched_queued_class(const struct sched *s, unsigned cls, uint32_t bytes);
enum sched_verdict sched_queue_admit(struct sched *s, unsigned cls, uint32_t bytes,
                                     double queued_bytes, uint64_t now_us);
enum sched_verdict sched_send_queued(struct sched *s, uint64_t seq, uint32_t bytes, unsigned cls,
                                     uint64_t now_us, struct sched_decision *out);
/* Re-send a packet taken from sched_take_resend() on the best link now (one link). */
enum sched_verdict sched_resend(struct sched *s, uint64_t seq, uint32_t bytes, uint64_t now_us,
                                struct sched_decision *out);
size_t sched_take_resend(struct sched *s, uint64_t *seqs, size_t max);

/* Feedback from the peer; rx_link is the link it arrived on (RTT samples only come from
 * feedback that returned on the link it describes). */
void sched_on_feedback(struct sched *s, const struct ctrl_feedback *fb, uint8_t rx_link,
                       uint64_t now_us);
void sched_on_probe_reply(struct sched *s, const struct ctrl_probe_reply *r, uint64_t now_us);
/* Periodic work (call at least every 10 ms): liveness, queue drain, probes due. Probes to send
 * are written to out (at most max; 3 per link is always enough: a plain probe and a packet
 * pair, linkest.h), in the order they must leave; links just declared down have their
 * in-flight packets queued for re-sending. Returns the number of probes. */
#define SCHED_TICK_MAX_PROBES(links) (3 * (links))
size_t sched_tick(struct sched *s, uint64_t now_us, struct ctrl_probe *out, size_t max);

const struct linkest *sched_link_est(const struct sched *s, uint8_t link_id);
int sched_link_info(const struct sched *s, uint8_t link_id, struct sched_link_info *info);
/* All links' estimators (for linkest_hold_us() on this end's receive direction). */
struct linkest *sched_estimators(struct sched *s, size_t *n);
/* Same as sched_estimators but by id, writable (to feed the peer's probes). */
struct linkest *sched_link_est_mut(struct sched *s, uint8_t link_id);

#endif
