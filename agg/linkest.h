/* linkest: what one end knows about one link, learnt only from real traffic and tiny probes.
 *
 * Sender direction (this end -> peer):
 *   - RTT: srtt/rttvar per RFC 6298 (alpha 1/8, beta 1/4), windowed min RTT (~10 s), from probe
 *     replies and from data feedback that came back on the same link.
 *   - forward one-way transit (peer clock - our clock, so it includes a constant clock offset
 *     that cancels when links are compared): windowed min from probe replies.
 *   - loss: EWMA over per-packet outcomes reported by feedback (~256 packets memory).
 *   - capacity: delivery rate measured at the RECEIVER (bytes received between two feedback
 *     reports over the receiver-clock interval between them), windowed max over ~10 RTTs
 *     (1..5 s). The pacing gain on top of it finds capacity without load tests: every RTT sample
 *     carries the queueing delay the scheduler's model expected for that packet; the EXCESS
 *     delay (rtt - min_rtt - expected) tells whether the link is slower than we think (queue
 *     grows: drain, cut the estimate to what is delivered) or as fast (flat: offer 25% more; if
 *     the link had room the delivery rate rises and the estimate follows).
 *   - state: STARTUP (gain 2, from nothing), UP (gain 1), PROBING (gain 1.25), DRAINING
 *     (gain 0.9), DOWN (no evidence for a timeout derived from RTT, at most 300 ms).
 * Receiver direction (peer -> this end): one-way transit and jitter (RFC 3550) of the peer's
 * probes, which size the reorder hold (linkest_hold_us()).
 *
 * Pure and socket-free: time is always passed in (microseconds, monotonic). No allocation. */
#ifndef CORRIDOR_AGG_LINKEST_H
#define CORRIDOR_AGG_LINKEST_H

#include <stddef.h>
#include <stdint.h>

#include "agg/ctrl.h"

enum linkest_state {
    LINK_DOWN = 0,
    LINK_STARTUP,
    LINK_UP,
    LINK_PROBING,
    LINK_DRAINING,
};

#define LINKEST_PROBE_INTERVAL_US 100000u
#define LINKEST_MAX_TIMEOUT_US    300000u
#define LINKEST_MIN_TIMEOUT_US    30000u
#define LINKEST_INITIAL_BPS       1000000.0 /* bit/s before the first delivery sample */
#define LINKEST_FLOOR_BPS         16000.0   /* lowest estimate a returning link restarts at */
#define LINKEST_MAXF              16        /* capacity samples kept for the max filter */
#define LINKEST_PROBES            4         /* outstanding probes remembered */
#define LINKEST_PAIRS             3         /* packet pairs a new link is measured with */
#define LINKEST_PAIR_PAD          300       /* padding per probe of a pair */
/* Bytes the second probe of a pair occupies on the link: padding, probe fields (~12 bytes)
 * and IPv4 + UDP + tunnel overhead (53 bytes). Within a few percent is enough: the pair only
 * tells a 0.2 Mbit/s link from a 20 Mbit/s one. */
#define LINKEST_PAIR_WIRE_BYTES (LINKEST_PAIR_PAD + 65)

struct linkest {
    uint8_t link_id;
    uint8_t state;

    /* RTT, microseconds */
    int has_rtt;
    uint32_t srtt_us, rttvar_us, latest_rtt_us, min_rtt_us;
    uint64_t min_rtt_stamp_us;
    uint32_t min_rtt_cand_us; /* min of the samples since min_rtt_stamp: next window's min */
    double excess_us;         /* EWMA of rtt - min_rtt - expected queueing delay */
    uint64_t raise_us;        /* last time the estimate was raised on a negative excess */

    /* forward transit (peer clock - our clock), windowed min */
    int has_fwd;
    int64_t fwd_base_us, fwd_cand_us;
    uint64_t fwd_stamp_us;

    /* receive direction, from the peer's probes */
    int has_rx;
    int64_t rx_base_us, rx_cand_us, rx_last_raw_us;
    uint64_t rx_stamp_us, rx_last_us;
    double rx_jitter_us;

    /* loss */
    double loss;

    /* capacity, bytes per second */
    double cap_Bps, pace_gain;
    double last_sample_Bps;
    double full_sample_Bps; /* last sample of a busy (not app-limited) interval, 0 once used */
    struct {
        double Bps;
        uint64_t t_us;
    } maxf[LINKEST_MAXF];
    uint8_t maxf_n;
    int fb_have;
    uint32_t fb_bytes; /* receiver's cumulative bytes at the start of the sample interval */
    uint64_t fb_rx_us; /* receiver clock at the start of the sample interval */
    int app_limited;   /* the scheduler's queue for this link ran empty in the interval */
    double full_Bps;   /* startup: best estimate when growth was last >= 25% */
    uint8_t full_cnt;  /* startup: samples without 25% growth */
    uint64_t state_since_us;

    /* liveness and probes */
    uint64_t last_evidence_us, unanswered_since_us, last_probe_tx_us, down_since_us;
    uint32_t ev_gap_us; /* EWMA of the interval between pieces of evidence */
    uint32_t probe_seq;
    struct {
        uint32_t seq;
        uint64_t tx_us;
        uint32_t q_us;
        uint16_t pad; /* a padded probe (packet pair): no RTT sample */
    } probe[LINKEST_PROBES];
    /* packet pairs, while the capacity estimate is still the first guess (no delivery sample) */
    uint8_t pairs_sent, pairs_got;
    uint32_t pair_seq1;   /* first probe of the newest pair */
    uint64_t pair_rx1_us; /* its arrival (peer clock), 0 = not answered yet */
    uint64_t pair_tx_us;  /* when the newest pair left */
    double pair_hi_Bps;   /* fastest rate any pair showed (0 = none yet) */

    /* counters */
    uint64_t tx_pkts, tx_bytes, acked_pkts, lost_pkts, probes_tx, probe_replies, downs;
};

void linkest_init(struct linkest *le, uint8_t link_id, uint64_t now_us);

/* One RTT sample of a packet the scheduler expected to wait q_us in the link's queue. */
void linkest_on_rtt(struct linkest *le, uint32_t rtt_us, uint32_t q_us, uint64_t now_us);
/* One forward transit sample: receiver clock at arrival minus our send time (includes the
 * constant clock offset), for a packet the scheduler expected to wait q_us. Drives the excess
 * queueing delay from every feedback, whichever link the feedback came back on. */
void linkest_on_fwd_transit(struct linkest *le, int64_t transit_us, uint32_t q_us, uint64_t now_us);
/* Any answer proving the link carries our packets (probe reply, feedback that advanced). */
void linkest_on_evidence(struct linkest *le, uint64_t now_us);
/* A packet left on this link, behind q_us of queue (the scheduler's model, including its own
 * serialisation). Its answer is not expected before now + q_us, so silence is counted from
 * then: a slow link (60 ms per 1500-byte packet at 200 kbit/s) is not declared down for the
 * queue we put in front of it, and a cut link still is within the timeout of the moment its
 * queue should have drained. */
void linkest_on_sent(struct linkest *le, uint32_t bytes, uint32_t q_us, uint64_t now_us);
/* Feedback for this link: cumulative bytes at the receiver at receiver time rx_us. */
void linkest_on_delivery(struct linkest *le, uint32_t cum_bytes, uint64_t rx_us, uint64_t now_us);
/* Per-packet outcomes classified by the scheduler from feedback. */
void linkest_on_outcome(struct linkest *le, uint32_t lost, uint32_t ok);

/* Probes. linkest_probe_due(): time to send one (every 100 ms). linkest_make_probe() fills the
 * probe and records it (q_us = queueing delay the scheduler expects in front of it).
 * linkest_on_probe_reply(): 0 if it matched a recent probe, -1 if stale or unknown. */
int linkest_probe_due(const struct linkest *le, uint64_t now_us);
void linkest_make_probe(struct linkest *le, uint32_t q_us, uint64_t now_us, struct ctrl_probe *p);
int linkest_on_probe_reply(struct linkest *le, const struct ctrl_probe_reply *r, uint64_t now_us);
/* Packet pairs (docs/scheduling.md, "First estimate"). A live link that has an RTT but no
 * delivery-rate sample yet (its estimate is still the guess) sends up to LINKEST_PAIRS pairs
 * of padded probes, 100 ms apart.
 * The peer's arrival times of the two are spaced by the second one's serialisation on the
 * slowest hop, so bytes / spacing is the link's rate. Once two pairs are answered, the
 * FASTEST of their rates lowers the initial guess (LINKEST_INITIAL_BPS) if it is below it:
 * the max filters out pairs stretched by a stalled receiver or by other packets between the
 * two, and a receiver that reads both at once (a fast link) shows no spacing, so pairs never
 * raise an estimate. That keeps bulk off a 0.2 Mbit/s link from the first packet, where one
 * 1500-byte packet takes 60 ms and holds up every packet behind it at the receiver. Replies
 * to pairs prove the link is alive but give no RTT (the padding's serialisation is in it).
 * linkest_pair_due(): a pair should go now. linkest_make_pair() fills out[0..1]. */
int linkest_pair_due(const struct linkest *le, uint64_t now_us);
void linkest_make_pair(struct linkest *le, uint32_t q_us, uint64_t now_us,
                       struct ctrl_probe out[2]);
/* The peer's probe arrived here (receive-direction transit and jitter; padded probes of a
 * packet pair are ignored). */
void linkest_on_probe_rx(struct linkest *le, const struct ctrl_probe *p, uint64_t now_us);

/* Liveness: the current timeout, and the periodic check. linkest_tick() returns 1 when the
 * link has just been declared down (the caller re-sends its in-flight packets). */
uint32_t linkest_timeout_us(const struct linkest *le);
int linkest_tick(struct linkest *le, uint64_t now_us);

/* Rate the scheduler may offer this link now, bytes per second (estimate x pacing gain). */
double linkest_pace_Bps(const struct linkest *le);
int linkest_usable(const struct linkest *le);
const char *linkest_state_name(int state);

/* Reorder hold for the receive direction: spread of the links' transit (plus twice their
 * jitter) above the fastest, plus arq_us (time to repair a loss), clamped to [5 ms, 300 ms].
 * Links without a probe in the last second are ignored; a live link never heard from (or no
 * link at all) gives the maximum, 300 ms, so nothing is skipped before delays are known. */
uint32_t linkest_hold_us(const struct linkest *les, size_t n, uint32_t arq_us, uint64_t now_us);

#endif
