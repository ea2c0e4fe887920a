/* reorder: see reorder.h. Fixed ring of slots indexed by seq & mask. A second ring lists the
 * held packets in ARRIVAL order: the oldest arrival tells when something must be released, so
 * every packet waits at most the hold time whatever the pattern of gaps before it (a per-gap
 * timer would let a packet behind several gaps wait several holds). A third ring receives
 * packets that a far-ahead sequence number flushes out of the window. */
#include "agg/reorder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum slot_state { SLOT_EMPTY = 0, SLOT_HELD, SLOT_DONE, SLOT_SKIPPED };

struct slot {
    uint64_t seq;
    uint64_t handle;
    uint64_t arr_us;
    uint8_t state;
};

struct arrival {
    uint64_t seq;
    uint64_t arr_us;
};

struct reorder {
    struct slot *slot;
    uint32_t mask;
    uint32_t hold_us;
    int started;         /* next is valid once the first packet arrived */
    uint64_t next;       /* next sequence to release */
    uint64_t highest;    /* highest sequence received */
    uint64_t release_to; /* everything below this must go out now (expired holds) */
    size_t held;         /* packets in SLOT_HELD state */
    struct arrival *arr; /* held packets in arrival order (2 x slots entries) */
    uint32_t arr_head, arr_len, arr_mask;
    uint64_t *ready; /* flushed packets: FIFO of handles + their arrival time */
    uint64_t *ready_arr;
    uint32_t ready_head, ready_len;
    struct reorder_stats st;
};

struct reorder *reorder_new(uint32_t slots, uint32_t hold_us, char *err, size_t errlen)
{
    if (slots < 64 || slots > (1u << 20) || (slots & (slots - 1)) != 0) {
        snprintf(err, errlen, "reorder_new: slots %u not a power of two in 64..1048576", slots);
        return NULL;
    }
    struct reorder *rb = calloc(1, sizeof(*rb));
    if (rb) {
        rb->slot = calloc(slots, sizeof(*rb->slot));
        rb->ready = calloc(slots, sizeof(*rb->ready));
        rb->ready_arr = calloc(slots, sizeof(*rb->ready_arr));
        rb->arr = calloc(2u * slots, sizeof(*rb->arr));
    }
    if (!rb || !rb->slot || !rb->ready || !rb->ready_arr || !rb->arr) {
        snprintf(err, errlen, "reorder_new: out of memory for %u slots", slots);
        reorder_free(rb);
        return NULL;
    }
    rb->mask = slots - 1;
    rb->arr_mask = 2u * slots - 1;
    rb->hold_us = hold_us;
    return rb;
}

void reorder_free(struct reorder *rb)
{
    if (!rb)
        return;
    free(rb->slot);
    free(rb->ready);
    free(rb->ready_arr);
    free(rb->arr);
    free(rb);
}

void reorder_set_hold(struct reorder *rb, uint32_t hold_us)
{
    rb->hold_us = hold_us;
}

uint32_t reorder_hold(const struct reorder *rb)
{
    return rb->hold_us;
}

static void note_wait(struct reorder *rb, uint64_t arr_us, uint64_t now_us)
{
    uint64_t w = now_us > arr_us ? now_us - arr_us : 0;
    rb->st.wait_sum_us += w;
    if (w > rb->st.max_hold_us)
        rb->st.max_hold_us = w;
}

static int is_held(const struct reorder *rb, uint64_t seq)
{
    const struct slot *sl = &rb->slot[seq & rb->mask];
    return sl->state == SLOT_HELD && sl->seq == seq;
}

/* Drop arrival records of packets already gone; account the expired ones into release_to.
 * Returns the arrival time of the oldest still-held packet (UINT64_MAX if none). */
static uint64_t expire(struct reorder *rb, uint64_t now_us)
{
    while (rb->arr_len) {
        const struct arrival *a = &rb->arr[rb->arr_head];
        if (a->seq >= rb->next && is_held(rb, a->seq)) {
            if (now_us < a->arr_us + rb->hold_us)
                return a->arr_us;
            if (a->seq + 1 > rb->release_to)
                rb->release_to = a->seq + 1;
        }
        rb->arr_head = (rb->arr_head + 1) & rb->arr_mask;
        rb->arr_len--;
    }
    return UINT64_MAX;
}

/* Move the window so that seq fits: held packets in the flushed range go to the ready FIFO. */
static void flush_to(struct reorder *rb, uint64_t new_next)
{
    uint64_t span = rb->mask + 1ull;
    if (new_next - rb->next > span) {
        /* Everything in the window is flushed; jump over the untracked part at once. */
        uint64_t first_kept = new_next - span;
        for (uint64_t s = rb->next; s < rb->next + span; s++) {
            struct slot *sl = &rb->slot[s & rb->mask];
            if (sl->state == SLOT_HELD && sl->seq == s) {
                uint32_t idx = (rb->ready_head + rb->ready_len) & rb->mask;
                rb->ready[idx] = sl->handle;
                rb->ready_arr[idx] = sl->arr_us;
                rb->ready_len++;
                rb->held--;
            }
            sl->state = SLOT_EMPTY;
        }
        rb->st.flushed_seqs += first_kept - rb->next;
        rb->next = first_kept;
    }
    while (rb->next < new_next) {
        struct slot *sl = &rb->slot[rb->next & rb->mask];
        if (sl->state == SLOT_HELD && sl->seq == rb->next) {
            uint32_t idx = (rb->ready_head + rb->ready_len) & rb->mask;
            rb->ready[idx] = sl->handle;
            rb->ready_arr[idx] = sl->arr_us;
            rb->ready_len++;
            rb->held--;
            sl->state = SLOT_DONE;
        } else {
            sl->seq = rb->next;
            sl->state = SLOT_SKIPPED;
            rb->st.flushed_seqs++;
        }
        rb->next++;
    }
}

enum reorder_verdict reorder_push(struct reorder *rb, uint64_t seq, uint64_t handle,
                                  uint64_t now_us)
{
    if (!rb->started) {
        rb->started = 1;
        rb->next = seq;
        rb->highest = seq;
    }
    struct slot *sl = &rb->slot[seq & rb->mask];
    if (seq < rb->next) {
        if (sl->seq == seq && sl->state == SLOT_SKIPPED) {
            sl->state = SLOT_DONE;
            rb->st.late++;
            return REORDER_LATE;
        }
        if (sl->seq == seq && sl->state == SLOT_DONE) {
            rb->st.dups++;
            return REORDER_DUP;
        }
        rb->st.old++;
        return REORDER_OLD;
    }
    if (seq - rb->next > rb->mask) {
        /* Far ahead (a long outage of the sender's view, or a burst past the window). The ready
         * FIFO has room: it only ever holds packets that were in distinct slots. */
        flush_to(rb, seq - rb->mask);
        sl = &rb->slot[seq & rb->mask];
    }
    if (sl->seq == seq && sl->state == SLOT_HELD) {
        rb->st.dups++;
        return REORDER_DUP;
    }
    sl->seq = seq;
    sl->handle = handle;
    sl->arr_us = now_us;
    sl->state = SLOT_HELD;
    rb->held++;
    rb->st.pushed++;
    if (rb->arr_len > rb->arr_mask) {
        /* Arrival list full (more arrivals within one hold than twice the window): treat the
         * oldest as expired now; bounded memory wins over the exact hold. */
        const struct arrival *a = &rb->arr[rb->arr_head];
        if (a->seq + 1 > rb->release_to)
            rb->release_to = a->seq + 1;
        rb->arr_head = (rb->arr_head + 1) & rb->arr_mask;
        rb->arr_len--;
    }
    struct arrival *a = &rb->arr[(rb->arr_head + rb->arr_len) & rb->arr_mask];
    a->seq = seq;
    a->arr_us = now_us;
    rb->arr_len++;
    if (seq > rb->highest) {
        if (seq > rb->highest + 1)
            rb->st.gaps_opened++;
        rb->highest = seq;
    }
    return REORDER_HELD;
}

int reorder_pop(struct reorder *rb, uint64_t now_us, uint64_t *handle)
{
    if (rb->ready_len) {
        *handle = rb->ready[rb->ready_head];
        note_wait(rb, rb->ready_arr[rb->ready_head], now_us);
        rb->ready_head = (rb->ready_head + 1) & rb->mask;
        rb->ready_len--;
        rb->st.released++;
        return 1;
    }
    if (rb->held == 0)
        return 0;
    expire(rb, now_us);
    for (;;) {
        struct slot *sl = &rb->slot[rb->next & rb->mask];
        if (sl->state == SLOT_HELD && sl->seq == rb->next) {
            *handle = sl->handle;
            note_wait(rb, sl->arr_us, now_us);
            sl->state = SLOT_DONE;
            rb->held--;
            rb->next++;
            rb->st.released++;
            return 1;
        }
        /* Head missing: give it up only if a packet behind it has waited the hold. */
        if (rb->next >= rb->release_to)
            return 0;
        sl->seq = rb->next;
        sl->state = SLOT_SKIPPED;
        rb->next++;
        rb->st.skipped_seqs++;
    }
}

uint64_t reorder_next_deadline(struct reorder *rb, uint64_t now_us)
{
    if (rb->ready_len)
        return now_us;
    if (rb->held == 0)
        return UINT64_MAX;
    uint64_t oldest = expire(rb, now_us);
    if (is_held(rb, rb->next) || rb->next < rb->release_to)
        return now_us;
    return oldest == UINT64_MAX ? UINT64_MAX : oldest + rb->hold_us;
}

uint64_t reorder_cum_ack(const struct reorder *rb)
{
    return rb->started && rb->next > 0 ? rb->next - 1 : 0;
}

size_t reorder_missing(const struct reorder *rb, uint64_t *firsts, uint32_t *counts, size_t max)
{
    size_t n = 0;
    if (!rb->started || rb->held == 0)
        return 0;
    uint64_t s = rb->next;
    while (s < rb->highest && n < max) {
        const struct slot *sl = &rb->slot[s & rb->mask];
        if (sl->seq == s && sl->state != SLOT_EMPTY && sl->state != SLOT_SKIPPED) {
            s++;
            continue;
        }
        uint64_t first = s;
        while (s < rb->highest) {
            sl = &rb->slot[s & rb->mask];
            if (sl->seq == s && sl->state != SLOT_EMPTY && sl->state != SLOT_SKIPPED)
                break;
            s++;
        }
        firsts[n] = first;
        counts[n] = (uint32_t)(s - first > UINT32_MAX ? UINT32_MAX : s - first);
        n++;
    }
    return n;
}

size_t reorder_held(const struct reorder *rb)
{
    return rb->held + rb->ready_len;
}

void reorder_get_stats(const struct reorder *rb, struct reorder_stats *st)
{
    *st = rb->st;
}
