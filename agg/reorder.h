/* reorder: the receiver's reorder buffer, keyed by the tunnel-wide 64-bit sequence number.
 *
 * Packets from links of different delay arrive out of order; this releases them in sequence.
 * A missing sequence number (lost, or still in flight on a slower link) holds later packets for
 * at most the hold time: once any held packet has waited that long, every gap before it is
 * given up, so no packet waits longer than the hold and one loss never stalls delivery longer. The
 * hold time is set by the caller from the links' delay spread and jitter (linkest_hold_us()).
 *
 * Memory is fixed at creation (slots, a power of two); a sequence number too far ahead flushes
 * the oldest part of the window (held packets are released, gaps skipped). Duplicates (from
 * redundancy or retransmission) are recognised and dropped. Handles are opaque to the buffer:
 * the caller owns the packets they name. Not thread-safe: one data-plane thread owns it. */
#ifndef CORRIDOR_AGG_REORDER_H
#define CORRIDOR_AGG_REORDER_H

#include <stddef.h>
#include <stdint.h>

struct reorder;

enum reorder_verdict {
    REORDER_HELD = 0, /* buffered; collect it with reorder_pop() */
    REORDER_LATE,     /* its gap was already skipped: deliver it now, out of order */
    REORDER_DUP,      /* already received: drop it */
    REORDER_OLD,      /* behind the window, unknown: drop it */
};

struct reorder_stats {
    uint64_t pushed, released, late, dups, old, skipped_seqs, flushed_seqs, gaps_opened;
    uint64_t max_hold_us; /* longest time a released packet waited in the buffer */
    uint64_t wait_sum_us; /* total time released packets waited (mean = wait_sum / released) */
};

/* slots: power of two in 64..1<<20. Returns NULL (message in err) on bad arguments or ENOMEM. */
struct reorder *reorder_new(uint32_t slots, uint32_t hold_us, char *err, size_t errlen);
void reorder_free(struct reorder *rb);
void reorder_set_hold(struct reorder *rb, uint32_t hold_us);
uint32_t reorder_hold(const struct reorder *rb);

enum reorder_verdict reorder_push(struct reorder *rb, uint64_t seq, uint64_t handle,
                                  uint64_t now_us);
/* Release the next packet that may go: 1 with *handle set, 0 if nothing is releasable now. */
int reorder_pop(struct reorder *rb, uint64_t now_us, uint64_t *handle);
/* When the caller should call reorder_pop() again: now_us if something is ready, the gap's
 * deadline if packets are held behind a gap, UINT64_MAX if the buffer is empty. */
uint64_t reorder_next_deadline(struct reorder *rb, uint64_t now_us);

/* Sequence-space view for feedback: every seq <= cum_ack has been released or given up. */
uint64_t reorder_cum_ack(const struct reorder *rb);
/* Gaps above cum_ack below the highest received seq, ascending, at most max ranges.
 * firsts/counts are parallel arrays. Returns the number of ranges. */
size_t reorder_missing(const struct reorder *rb, uint64_t *firsts, uint32_t *counts, size_t max);
size_t reorder_held(const struct reorder *rb);
void reorder_get_stats(const struct reorder *rb, struct reorder_stats *st);

#endif
