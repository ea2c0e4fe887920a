/* ctrl: the bonded tunnel's control-message payloads (probe, probe reply, feedback) and the
 * receiver-side bookkeeping that produces feedback.
 *
 * These are the payloads that agg/wire carries as opaque control packets; the first byte of each
 * payload is its inner type (0x10..0x1f). Encoding is compact (LEB128 varints, sequence numbers
 * delta-coded) because feedback travels on the same links as data and every byte costs.
 * Decoding is bounds-checked everywhere and never allocates: any byte string is safe input.
 *
 * Time values are microseconds of the SENDER's monotonic clock (tx_us) or of the RECEIVER's
 * clock (rx_us): the two clocks are never compared directly, only differences on one side or
 * the (constant) offset between them, which cancels when links are compared. */
#ifndef CORRIDOR_AGG_CTRL_H
#define CORRIDOR_AGG_CTRL_H

#include <stddef.h>
#include <stdint.h>

#define CTRL_PROBE       0x10
#define CTRL_PROBE_REPLY 0x11
#define CTRL_FEEDBACK    0x12
#define CTRL_CLASSES     0x13
#define CTRL_WEIGHTS     0x14
#define CTRL_PROBE_PAD   0x15 /* a padded probe: two back to back are a packet pair */

#define CTRL_PROBE_PAD_MAX 1200 /* padding bytes a padded probe may carry */

#define CTRL_MAX_LINKS  16 /* per feedback message: matches the biggest units (16 modems) */
#define CTRL_MAX_RANGES 64 /* missing ranges reported per feedback (oldest first) */
/* Upper bound of any encoded control payload, for the caller's buffer. */
#define CTRL_MAX_ENCODED 1400 /* exact worst case: 16 links, 64 ranges, 10-byte varints */

/* The vehicle's traffic classes, sent to the hub after every handshake and every 10 s, so the
 * hub schedules the downlink by the same classes (matching the subnet as DESTINATION). */
#define CTRL_MAX_CLASSES 7
struct ctrl_class {
    uint32_t net;      /* host order; with pfx 0: any address */
    uint8_t pfx;       /* 0..32 */
    int8_t dscp;       /* 0..63, -1 = any */
    uint8_t mode;      /* enum sched_mode */
    uint8_t passenger; /* 0 operational, 1 yields first */
    uint32_t rate_kbps;
    uint8_t n_order; /* failover: link ids, preferred first */
    uint8_t order[CTRL_MAX_LINKS];
};
struct ctrl_classes {
    uint8_t n;
    struct ctrl_class c[CTRL_MAX_CLASSES];
};

/* The vehicle policy's per-link weights (0..1, 0 = drained), sent to the hub on every change
 * and every 5 s, so the downlink leaves a link before its predicted dead zone too. */
struct ctrl_weights {
    uint8_t n;
    uint8_t link_id[CTRL_MAX_LINKS];
    uint16_t w[CTRL_MAX_LINKS]; /* weight * 65535, rounded */
};

/* pad > 0 encodes as CTRL_PROBE_PAD: the same fields, then pad bytes of zeros that the
 * receiver ignores. Two of them back to back are a packet pair: the receiver's arrival times
 * are spaced by the second one's time on the slowest hop, which tells a new link's rate before
 * any data is risked on it (linkest.h). The reply is the ordinary, small probe reply. */
struct ctrl_probe {
    uint8_t link_id;
    uint32_t probe_seq;
    uint64_t tx_us; /* sender clock */
    uint16_t pad;   /* padding bytes, 0..CTRL_PROBE_PAD_MAX */
};

/* The peer answers a probe at once, on the link it arrived on. */
struct ctrl_probe_reply {
    uint8_t link_id;
    uint32_t probe_seq;
    uint64_t tx_us; /* echoed sender clock */
    uint64_t rx_us; /* receiver clock when the probe arrived */
};

/* Per-link part of feedback. Counters are CUMULATIVE (wrapping uint32) rather than "since last"
 * so that a lost or reordered feedback message loses no information: the sender differences
 * consecutive reports itself. */
struct ctrl_fb_link {
    uint8_t link_id;
    uint64_t highest_seq;  /* highest tunnel sequence received on this link */
    uint32_t pkts;         /* cumulative data packets received on this link */
    uint32_t bytes;        /* cumulative data bytes received on this link */
    uint32_t ack_delay_us; /* receiver time between arrival of highest_seq and this report */
};

struct ctrl_range {
    uint64_t first;
    uint32_t count;
};

struct ctrl_feedback {
    uint64_t rx_now_us; /* receiver clock when the report was built */
    uint64_t cum_ack;   /* every seq <= cum_ack was received or given up by the reorder buffer */
    uint8_t n_links;
    uint8_t n_missing;
    struct ctrl_fb_link links[CTRL_MAX_LINKS];
    /* Sequence gaps above cum_ack (not yet received although later ones were), ascending. */
    struct ctrl_range missing[CTRL_MAX_RANGES];
};

/* Encoders return the number of bytes written, or 0 if buf is too small / input invalid. */
size_t ctrl_encode_probe(const struct ctrl_probe *p, uint8_t *buf, size_t len);
size_t ctrl_encode_probe_reply(const struct ctrl_probe_reply *p, uint8_t *buf, size_t len);
size_t ctrl_encode_feedback(const struct ctrl_feedback *f, uint8_t *buf, size_t len);

/* Decoders return 0 on success, -1 on malformed/truncated/trailing input (output then
 * undefined). ctrl_type() returns the inner type byte or -1 for an empty buffer. */
int ctrl_type(const uint8_t *buf, size_t len);
size_t ctrl_encode_classes(const struct ctrl_classes *c, uint8_t *buf, size_t len);
int ctrl_decode_classes(const uint8_t *buf, size_t len, struct ctrl_classes *c);
size_t ctrl_encode_weights(const struct ctrl_weights *w, uint8_t *buf, size_t len);
int ctrl_decode_weights(const uint8_t *buf, size_t len, struct ctrl_weights *w);
int ctrl_decode_probe(const uint8_t *buf, size_t len, struct ctrl_probe *p);
int ctrl_decode_probe_reply(const uint8_t *buf, size_t len, struct ctrl_probe_reply *p);
int ctrl_decode_feedback(const uint8_t *buf, size_t len, struct ctrl_feedback *f);

/* ---- receiver-side feedback state ----------------------------------------------------------
 * The receiving end counts data per arrival link and builds feedback from those counters plus
 * the reorder buffer's view of the sequence space (cum_ack, gaps). Fixed size, no allocation. */
struct reorder;

struct ctrl_rx_link {
    uint8_t used;
    uint8_t link_id;
    uint64_t highest_seq;
    uint64_t highest_rx_us;
    uint32_t pkts, bytes;
    uint64_t last_rx_us;   /* any data arrival (for the feedback pacing) */
    uint64_t last_fb_us;   /* last feedback sent on this link */
    uint32_t fb_pkts_seen; /* pkts at last feedback on this link (new data since?) */
    double rate_Bps;       /* arrival-rate EWMA: sizes feedback interval to ~1% overhead */
    uint64_t rate_t0_us;
    uint32_t rate_bytes;
};

struct ctrl_rx {
    struct ctrl_rx_link link[CTRL_MAX_LINKS];
    uint64_t last_urgent_us;
};

void ctrl_rx_init(struct ctrl_rx *rx);
/* Account one data packet that arrived on link_id (duplicates included: they used the link). */
void ctrl_rx_on_data(struct ctrl_rx *rx, uint8_t link_id, uint64_t seq, uint32_t bytes,
                     uint64_t now_us);
/* Fill *f from the counters and the reorder buffer (rb may be NULL: cum_ack 0, no gaps). */
void ctrl_rx_build(const struct ctrl_rx *rx, const struct reorder *rb, uint64_t now_us,
                   struct ctrl_feedback *f);
/* Which links should carry a feedback copy now. Each link that received data gets one at an
 * interval that keeps feedback near 1% of its arrival rate (5..100 ms). urgent_link >= 0 (the
 * caller saw a new gap in the reorder buffer and names its fastest reverse link) adds an
 * immediate copy there, at most every 2 ms, so the sender can repair a loss before the reorder
 * hold expires. Marks the chosen links as served. Returns the number of link ids in out. */
size_t ctrl_rx_due(struct ctrl_rx *rx, uint64_t now_us, int urgent_link, uint8_t *out, size_t max);

#endif
