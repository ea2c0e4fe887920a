/* sched: see sched.h for the model. */
#include "agg/sched.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENT_RESEND 0x01 /* in-flight entry is a re-send (its seq is out of send order) */

#define MAP_NO_RETX   0x01 /* sent redundantly: a loss on one link is not a loss */
#define MAP_RETX_ONE  0x02 /* re-send count, bits 1..2 */
#define MAP_RETX_MASK 0x06
#define MAX_RETX      3 /* a repair can be lost too (1% loss links): try up to three times */

struct inflight {
    uint64_t seq;
    uint64_t tx_us;
    uint32_t bytes;
    uint32_t q_us;
    uint8_t flags;
};

struct slink {
    uint8_t used, id;
    double weight;
    double vq;       /* virtual queue, bytes */
    uint64_t vq_t;   /* last drain time */
    uint32_t owd_us; /* cached one-way delay */
    struct inflight *ring;
    uint32_t head, len;
    uint64_t inflight_bytes;
    int fb_have;
    uint64_t fb_highest;
    uint32_t fb_pkts;
    uint64_t resent;
};

struct mapent {
    uint64_t seq;
    uint8_t link; /* index, SCHED_NO_LINK if none */
    uint8_t flags;
};

struct cls_state {
    struct sched_class_cfg cfg;
    double tokens;
    uint64_t t_us;
};

struct sched {
    struct sched_cfg cfg;
    struct linkest est[SCHED_MAX_LINKS];
    struct slink link[SCHED_MAX_LINKS];
    unsigned n_links;
    uint8_t idx_of[256]; /* link id -> index, SCHED_NO_LINK if unknown */
    uint32_t eq_owd_us;  /* equalised one-way delay for bulk packets (cfg.equalise_min_bytes) */
    struct cls_state cls[SCHED_MAX_CLASSES];
    uint32_t ring_mask;
    struct mapent *map;
    uint32_t map_mask;
    uint64_t *rs; /* resend queue */
    uint32_t rs_head, rs_len;
    uint64_t cum_ack;
    /* Drain grace: the policy just took a link's share away, moving a known load onto the
     * others, whose estimates may only know the share they had (app-limited). Until their
     * estimators catch up (a few RTTs: the raise rule sees a model queue the RTT does not show),
     * their queue budget is doubled: the load queues for a moment instead of being dropped
     * (the route replay lost 14-46 packets at each pre-emptive drain without it). */
    bool grace_pending;
    uint64_t grace_until_us;
};

void sched_cfg_default(struct sched_cfg *cfg)
{
    cfg->target_delay_us = 50000;
    cfg->inflight_slots = 4096;
    cfg->seq_slots = 16384;
    cfg->equalise_min_bytes = 0;
    cfg->link_queue_us = 0;
}

static int pow2_in(uint32_t v, uint32_t lo, uint32_t hi)
{
    return v >= lo && v <= hi && (v & (v - 1)) == 0;
}

struct sched *sched_new(const struct sched_cfg *cfg, char *err, size_t errlen)
{
    if (!pow2_in(cfg->inflight_slots, 64, 1u << 20) || !pow2_in(cfg->seq_slots, 64, 1u << 22)) {
        snprintf(err, errlen, "sched_new: inflight_slots %u / seq_slots %u not powers of two",
                 cfg->inflight_slots, cfg->seq_slots);
        return NULL;
    }
    if (cfg->target_delay_us < 1000 || cfg->target_delay_us > 2000000) {
        snprintf(err, errlen, "sched_new: target_delay_us %u outside 1 ms..2 s",
                 cfg->target_delay_us);
        return NULL;
    }
    if (cfg->link_queue_us > cfg->target_delay_us) {
        snprintf(err, errlen, "sched_new: link_queue_us %u over target_delay_us %u",
                 cfg->link_queue_us, cfg->target_delay_us);
        return NULL;
    }
    struct sched *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "sched_new: out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->ring_mask = cfg->inflight_slots - 1;
    s->map_mask = cfg->seq_slots - 1;
    s->map = calloc(cfg->seq_slots, sizeof(*s->map));
    s->rs = calloc(cfg->seq_slots, sizeof(*s->rs));
    if (!s->map || !s->rs) {
        snprintf(err, errlen, "sched_new: out of memory for %u seq slots", cfg->seq_slots);
        sched_free(s);
        return NULL;
    }
    memset(s->idx_of, SCHED_NO_LINK, sizeof(s->idx_of));
    for (unsigned i = 0; i < SCHED_MAX_CLASSES; i++)
        s->cls[i].cfg.mode = SCHED_BOND;
    return s;
}

void sched_free(struct sched *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < SCHED_MAX_LINKS; i++)
        free(s->link[i].ring);
    free(s->map);
    free(s->rs);
    free(s);
}

static void refresh_owd(struct sched *s);

int sched_add_link(struct sched *s, uint8_t link_id, uint64_t now_us)
{
    if (s->n_links >= SCHED_MAX_LINKS || s->idx_of[link_id] != SCHED_NO_LINK)
        return -1;
    unsigned i = s->n_links;
    struct slink *l = &s->link[i];
    memset(l, 0, sizeof(*l));
    l->ring = calloc(s->ring_mask + 1u, sizeof(*l->ring));
    if (!l->ring)
        return -1;
    l->used = 1;
    l->id = link_id;
    l->weight = 1.0;
    l->vq_t = now_us;
    linkest_init(&s->est[i], link_id, now_us);
    s->idx_of[link_id] = (uint8_t)i;
    s->n_links++;
    refresh_owd(s);
    return 0;
}

void sched_set_weight(struct sched *s, uint8_t link_id, double weight)
{
    uint8_t i = s->idx_of[link_id];
    if (i == SCHED_NO_LINK)
        return;
    if (!(weight >= 0.0)) /* also catches NaN */
        weight = 0.0;
    if (weight > 1.0)
        weight = 1.0;
    if (weight < s->link[i].weight - 0.25)
        s->grace_pending = true; /* the clock starts at the next send (no time here) */
    s->link[i].weight = weight;
}

int sched_set_class(struct sched *s, unsigned cls, const struct sched_class_cfg *cfg)
{
    if (cls >= SCHED_MAX_CLASSES || cfg->mode > SCHED_REDUNDANT)
        return -1;
    s->cls[cls].cfg = *cfg;
    s->cls[cls].tokens = 0;
    s->cls[cls].t_us = 0;
    return 0;
}

static double rate_of(const struct sched *s, unsigned i)
{
    return linkest_pace_Bps(&s->est[i]) * s->link[i].weight;
}

static int link_enabled(const struct sched *s, unsigned i)
{
    return s->link[i].weight > 0.0 && linkest_usable(&s->est[i]) && rate_of(s, i) > 0.0;
}

/* The rate offered to all enabled links together (bytes/s). */
static double total_rate(const struct sched *s)
{
    double tot = 0;
    for (unsigned i = 0; i < s->n_links; i++)
        if (link_enabled(s, i))
            tot += rate_of(s, i);
    return tot;
}

/* Drain the virtual queue at the rate we offer the link. When it runs empty the link was not
 * kept busy: its delivery-rate sample of this interval is app-limited. */
static void drain(struct sched *s, unsigned i, uint64_t now_us)
{
    struct slink *l = &s->link[i];
    if (now_us <= l->vq_t)
        return;
    double r = rate_of(s, i);
    double d = r * (double)(now_us - l->vq_t) / 1e6;
    l->vq_t = now_us;
    if (d >= l->vq) {
        l->vq = 0;
        s->est[i].app_limited = 1;
    } else {
        l->vq -= d;
    }
}

static uint32_t queue_delay_us(const struct sched *s, unsigned i)
{
    double r = rate_of(s, i);
    if (r <= 0)
        return 0;
    double q = s->link[i].vq / r * 1e6;
    return q > 4e9 ? UINT32_MAX : (uint32_t)q;
}

/* One-way delay per link. The forward transit from probe replies contains the clock offset
 * between the two ends, the same for every link: the differences between links are exact. The
 * absolute part is anchored at half the smallest min RTT. Without transit data: min RTT / 2. */
static void refresh_owd(struct sched *s)
{
    int all_fwd = 1;
    int64_t fmin = INT64_MAX;
    uint32_t rmin = UINT32_MAX;
    for (unsigned i = 0; i < s->n_links; i++) {
        const struct linkest *e = &s->est[i];
        if (!linkest_usable(e))
            continue;
        if (!e->has_fwd)
            all_fwd = 0;
        else if (e->fwd_base_us < fmin)
            fmin = e->fwd_base_us;
        if (e->has_rtt && e->min_rtt_us < rmin)
            rmin = e->min_rtt_us;
    }
    for (unsigned i = 0; i < s->n_links; i++) {
        const struct linkest *e = &s->est[i];
        uint32_t o;
        if (all_fwd && e->has_fwd && fmin != INT64_MAX && rmin != UINT32_MAX)
            o = (uint32_t)(e->fwd_base_us - fmin) + rmin / 2;
        else if (e->has_rtt)
            o = e->min_rtt_us / 2;
        else
            o = 50000; /* unknown: a typical cellular one-way delay */
        s->link[i].owd_us = o;
    }
    /* Equalised delay: the slowest link that carries a real share. A link below 5% of the
     * offered rate would raise every bulk packet's delay for a few percent of capacity. */
    double tot = total_rate(s);
    uint32_t eq = 0;
    for (unsigned i = 0; i < s->n_links; i++)
        if (link_enabled(s, i) && rate_of(s, i) >= 0.05 * tot && s->link[i].owd_us > eq)
            eq = s->link[i].owd_us;
    s->eq_owd_us = eq;
}

static void ring_push(struct sched *s, unsigned i, uint64_t seq, uint32_t bytes, uint32_t q_us,
                      uint8_t flags, uint64_t now_us)
{
    struct slink *l = &s->link[i];
    if (l->len > s->ring_mask) {
        /* Full: forget the oldest (its fate stays unknown; TCP will handle a loss there). */
        l->inflight_bytes -= l->ring[l->head].bytes;
        l->head = (l->head + 1) & s->ring_mask;
        l->len--;
    }
    struct inflight *e = &l->ring[(l->head + l->len) & s->ring_mask];
    e->seq = seq;
    e->tx_us = now_us;
    e->bytes = bytes;
    e->q_us = q_us;
    e->flags = flags;
    l->len++;
    l->inflight_bytes += bytes;
}

static void record(struct sched *s, unsigned i, uint64_t seq, uint32_t bytes, uint8_t flags,
                   uint64_t now_us)
{
    struct slink *l = &s->link[i];
    l->vq += bytes;
    /* Expected wait including the packet's own serialisation (60 ms for 1500 bytes at
     * 200 kbit/s): what its transit should exceed the link's base by if the model is right. */
    uint32_t q = queue_delay_us(s, i);
    ring_push(s, i, seq, bytes, q, flags, now_us);
    linkest_on_sent(&s->est[i], bytes, q, now_us);
}

/* How a packet is to be placed: the queue a link may hold for it, and by what rule. */
struct place {
    double budget_us;    /* queue delay under which a link takes it */
    double factor;       /* scales the byte allowances (class share, grace) */
    double floor_max_us; /* the byte floor only where it drains within this */
    int repair;          /* a repair: never equalised */
    int qalone;          /* by queue alone whatever its size (the sender queue's packets) */
};

static double eat_us(const struct sched *s, unsigned i, uint32_t bytes, const struct place *p)
{
    uint32_t owd = s->link[i].owd_us;
    /* Bulk packet with equalisation on: every link counts as the slowest one in use (links
     * slower than that keep their own delay), so the choice is by queue alone. */
    /* A repair is not: it should fill its hole as early as possible, whatever the link, or
     * every packet held behind the hole waits for the slowest link twice. The sender queue's
     * packets always are: their links are kept to a short queue, far below the delay spread,
     * so by earliest arrival the slower links would never get one. */
    if (!p->repair &&
        (p->qalone || (s->cfg.equalise_min_bytes && bytes >= s->cfg.equalise_min_bytes)) &&
        owd < s->eq_owd_us)
        owd = s->eq_owd_us;
    return owd + (s->link[i].vq + bytes) / rate_of(s, i) * 1e6;
}

/* Bytes a link in STARTUP may hold regardless of its (still unproven, usually far too low)
 * estimate: enough for TCP's initial window and a slow-start round, so discovering capacity
 * does not cost the flow a loss. The excess-delay signal ends STARTUP if this was too much. */
#define STARTUP_BUDGET_BYTES  24000.0
#define STARTUP_BUDGET_MAX_US 250000.0
#define SCHED_DRAIN_GRACE_US  1000000 /* see grace_pending */
#define BUDGET_FLOOR_BYTES    4500.0

static int within_budget(const struct sched *s, unsigned i, const struct place *p)
{
    if (s->link[i].vq <= 0.0)
        return 1;
    double r = rate_of(s, i);
    /* Not where that would take over STARTUP_BUDGET_MAX_US to drain: a link whose packet
     * pairs showed 0.2 Mbit/s would otherwise queue a second of data while it starts (the
     * first guess, 1 Mbit/s, keeps it: 192 ms). */
    if (s->est[i].state == LINK_STARTUP && s->link[i].vq < STARTUP_BUDGET_BYTES * p->factor &&
        STARTUP_BUDGET_BYTES / r * 1e6 < STARTUP_BUDGET_MAX_US)
        return 1;
    /* Byte floor: a few packets of queue whatever the estimate, so a link whose estimate is
     * (still or again) far too low keeps being offered enough to show its real rate, and the
     * 2 ms send tick cannot leave a fast link idle. Not where that would be more than twice the
     * time budget (a 200 kbit/s link: 4.5 kB are 180 ms). */
    if (s->link[i].vq < BUDGET_FLOOR_BYTES * p->factor &&
        BUDGET_FLOOR_BYTES / r * 1e6 < p->floor_max_us)
        return 1;
    return queue_delay_us(s, i) < p->budget_us;
}

/* The class share (passenger classes stop at 60 % of a budget) and the drain grace. */
static double budget_factor(struct sched *s, const struct cls_state *cs, uint64_t now_us)
{
    if (s->grace_pending) {
        s->grace_pending = false;
        s->grace_until_us = now_us + SCHED_DRAIN_GRACE_US;
    }
    double factor = cs && cs->cfg.priority != 0 ? 0.6 : 1.0;
    if (now_us < s->grace_until_us)
        factor *= 2.0;
    return factor;
}

static struct place place_direct(const struct sched *s, double factor, int repair)
{
    struct place p = {.budget_us = (double)s->cfg.target_delay_us * factor,
                      .factor = factor,
                      .floor_max_us = 2.0 * (double)s->cfg.target_delay_us,
                      .repair = repair};
    return p;
}

/* A loaded link whose answers stopped while another link's still arrive: probably cut. Until
 * the timeout decides (linkest_tick: up to ~150 ms more), it gets no new packets: everything
 * sent into a dead link must later be re-sent behind the survivors' queues, and every packet
 * held at the receiver behind it waits for that. Measured on a 50 Mbit/s link cut under load
 * (tests/bench/bench_tunnel.sh cut): ~600 of the ~900 packets re-sent had left after the cut.
 * Only for links answering often (under load answers come every few ms); when every link is
 * silent the peer or the way back stalled, not one link, and nothing changes. */
#define SUSPECT_MIN_US 30000u

static int suspect(const struct sched *s, unsigned i, uint64_t newest_ev_us, uint64_t now_us)
{
    const struct linkest *e = &s->est[i];
    if (e->state == LINK_DOWN || !e->has_rtt || e->unanswered_since_us == 0 || e->ev_gap_us > 20000)
        return 0;
    /* Healthy links under load were seen silent for 18-70 ms now and then (a stalled peer
     * thread, feedback behind a burst): 8 gaps and at least 30 ms keep those episodes short
     * and rare, and still stop the flow into a cut link ~80 ms after the cut instead of
     * ~150-250 ms. */
    uint64_t thr = 8ull * e->ev_gap_us;
    if (thr < SUSPECT_MIN_US)
        thr = SUSPECT_MIN_US;
    return now_us - e->last_evidence_us > thr && newest_ev_us > e->last_evidence_us + thr;
}

static uint64_t newest_evidence(const struct sched *s)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < s->n_links; i++)
        if (linkest_usable(&s->est[i]) && s->est[i].last_evidence_us > t)
            t = s->est[i].last_evidence_us;
    return t;
}

/* Best two links by expected arrival among enabled links under budget (prio filter for
 * FAILOVER: only links with link_prio == best). Returns how many were found (0..2). */
static int pick(struct sched *s, const struct sched_class_cfg *c, uint32_t bytes,
                const struct place *p, uint64_t now_us, int *any_enabled, unsigned out[2])
{
    uint64_t newest_ev = newest_evidence(s);
    int best_prio = 256;
    if (c && c->mode == SCHED_FAILOVER) {
        for (unsigned i = 0; i < s->n_links; i++)
            if (link_enabled(s, i) && c->link_prio[i] < best_prio)
                best_prio = c->link_prio[i];
    }
    double b0 = 0, b1 = 0;
    int n = 0;
    *any_enabled = 0;
    for (unsigned i = 0; i < s->n_links; i++) {
        if (!link_enabled(s, i))
            continue;
        if (c && c->mode == SCHED_FAILOVER && c->link_prio[i] != best_prio)
            continue;
        *any_enabled = 1;
        if (!within_budget(s, i, p) || suspect(s, i, newest_ev, now_us))
            continue;
        double t = eat_us(s, i, bytes, p);
        if (n == 0 || t < b0) {
            out[1] = out[0];
            b1 = b0;
            out[0] = i;
            b0 = t;
            n = n < 2 ? n + 1 : 2;
        } else if (n == 1 || t < b1) {
            out[1] = i;
            b1 = t;
            n = 2;
        }
    }
    return n;
}

static int rate_cap_ok(struct cls_state *cs, uint32_t bytes, uint64_t now_us)
{
    if (cs->cfg.rate_cap_bps == 0)
        return 1;
    double Bps = cs->cfg.rate_cap_bps / 8.0;
    double burst = Bps * 0.05 > 3000.0 ? Bps * 0.05 : 3000.0;
    if (cs->t_us == 0) {
        cs->tokens = burst;
    } else if (now_us > cs->t_us) {
        cs->tokens += Bps * (double)(now_us - cs->t_us) / 1e6;
        if (cs->tokens > burst)
            cs->tokens = burst;
    }
    cs->t_us = now_us;
    if (cs->tokens < bytes)
        return 0;
    cs->tokens -= bytes;
    return 1;
}

static void commit(struct sched *s, uint64_t seq, uint32_t bytes, const unsigned best[2], int n,
                   uint64_t now_us, struct sched_decision *out)
{
    struct mapent *m = &s->map[seq & s->map_mask];
    m->seq = seq;
    m->link = (uint8_t)best[0];
    m->flags = n == 2 ? MAP_NO_RETX : 0;
    for (int k = 0; k < n; k++) {
        record(s, best[k], seq, bytes, 0, now_us);
        out->link[k] = s->link[best[k]].id;
    }
    out->n = (uint8_t)n;
}

enum sched_verdict sched_send(struct sched *s, uint64_t seq, uint32_t bytes, unsigned cls,
                              uint64_t now_us, struct sched_decision *out)
{
    out->n = 0;
    if (cls >= SCHED_MAX_CLASSES)
        cls = 0;
    struct cls_state *cs = &s->cls[cls];
    for (unsigned i = 0; i < s->n_links; i++)
        drain(s, i, now_us);
    unsigned best[2];
    int any = 0;
    struct place p = place_direct(s, budget_factor(s, cs, now_us), 0);
    int n = pick(s, &cs->cfg, bytes, &p, now_us, &any, best);
    if (n == 0)
        return any ? SCHED_DROP_BUDGET : SCHED_DROP_NOLINK;
    if (!rate_cap_ok(cs, bytes, now_us))
        return SCHED_DROP_RATECAP;
    int two = cs->cfg.mode == SCHED_REDUNDANT ||
              (cs->cfg.redundant_below_bytes && bytes <= cs->cfg.redundant_below_bytes);
    if (!two || n < 2)
        n = 1;
    commit(s, seq, bytes, best, n, now_us, out);
    return SCHED_SEND;
}

bool sched_queued_class(const struct sched *s, unsigned cls, uint32_t bytes)
{
    if (!s->cfg.link_queue_us)
        return false;
    const struct sched_class_cfg *c = &s->cls[cls < SCHED_MAX_CLASSES ? cls : 0].cfg;
    return c->mode == SCHED_BOND &&
           !(c->redundant_below_bytes && bytes <= c->redundant_below_bytes);
}

enum sched_verdict sched_queue_admit(struct sched *s, unsigned cls, uint32_t bytes,
                                     double queued_bytes, uint64_t now_us)
{
    struct cls_state *cs = &s->cls[cls < SCHED_MAX_CLASSES ? cls : 0];
    double tot = total_rate(s);
    if (tot <= 0.0)
        return SCHED_DROP_NOLINK;
    /* The whole standing queue (this FIFO plus the links' own) stays within the target, as
     * when every packet went straight to a link. */
    double t_us = (double)s->cfg.target_delay_us - (double)s->cfg.link_queue_us;
    if (t_us < (double)s->cfg.link_queue_us)
        t_us = (double)s->cfg.link_queue_us;
    double lim = tot * t_us / 1e6 * budget_factor(s, cs, now_us);
    if (lim < BUDGET_FLOOR_BYTES)
        lim = BUDGET_FLOOR_BYTES;
    if (queued_bytes + bytes > lim)
        return SCHED_DROP_BUDGET;
    if (!rate_cap_ok(cs, bytes, now_us))
        return SCHED_DROP_RATECAP;
    return SCHED_SEND;
}

enum sched_verdict sched_send_queued(struct sched *s, uint64_t seq, uint32_t bytes, unsigned cls,
                                     uint64_t now_us, struct sched_decision *out)
{
    out->n = 0;
    struct cls_state *cs = &s->cls[cls < SCHED_MAX_CLASSES ? cls : 0];
    for (unsigned i = 0; i < s->n_links; i++)
        drain(s, i, now_us);
    /* The class share was applied when the packet joined the queue; the grace still lets the
     * survivors of a drain take more at once. */
    double g = budget_factor(s, NULL, now_us);
    double lq =
        s->cfg.link_queue_us ? (double)s->cfg.link_queue_us : (double)s->cfg.target_delay_us;
    struct place p = {.budget_us = lq * g, .factor = g, .floor_max_us = 2.0 * lq, .qalone = 1};
    unsigned best[2];
    int any = 0;
    int n = pick(s, &cs->cfg, bytes, &p, now_us, &any, best);
    if (n == 0)
        return any ? SCHED_DROP_BUDGET : SCHED_DROP_NOLINK;
    commit(s, seq, bytes, best, 1, now_us, out);
    return SCHED_SEND;
}

enum sched_verdict sched_resend(struct sched *s, uint64_t seq, uint32_t bytes, uint64_t now_us,
                                struct sched_decision *out)
{
    out->n = 0;
    for (unsigned i = 0; i < s->n_links; i++)
        drain(s, i, now_us);
    unsigned best[2];
    int any = 0;
    /* A repair is more urgent than new data: allow half a budget more queue for it. */
    struct place p = place_direct(s, 1.5, 1);
    int n = pick(s, NULL, bytes, &p, now_us, &any, best);
    if (n == 0)
        return any ? SCHED_DROP_BUDGET : SCHED_DROP_NOLINK;
    struct mapent *m = &s->map[seq & s->map_mask];
    if (m->seq == seq)
        m->link = (uint8_t)best[0];
    record(s, best[0], seq, bytes, ENT_RESEND, now_us);
    s->link[best[0]].resent++;
    out->link[0] = s->link[best[0]].id;
    out->n = 1;
    return SCHED_SEND;
}

static void queue_resend(struct sched *s, uint64_t seq, unsigned from)
{
    if (seq <= s->cum_ack)
        return;
    struct mapent *m = &s->map[seq & s->map_mask];
    if (m->seq != seq || m->link != from || (m->flags & MAP_NO_RETX) ||
        (m->flags & MAP_RETX_MASK) >= MAX_RETX * MAP_RETX_ONE)
        return; /* unknown, already moved to another link, redundant, or repaired enough */
    if (s->rs_len > s->map_mask)
        return; /* resend queue full: let the end-to-end transport recover */
    m->flags = (uint8_t)(m->flags + MAP_RETX_ONE);
    s->rs[(s->rs_head + s->rs_len) & s->map_mask] = seq;
    s->rs_len++;
}

size_t sched_take_resend(struct sched *s, uint64_t *seqs, size_t max)
{
    size_t n = 0;
    while (n < max && s->rs_len) {
        uint64_t seq = s->rs[s->rs_head];
        s->rs_head = (s->rs_head + 1) & s->map_mask;
        s->rs_len--;
        if (seq > s->cum_ack) /* may have been delivered meanwhile */
            seqs[n++] = seq;
    }
    return n;
}

static int in_missing(const struct ctrl_feedback *fb, uint64_t seq)
{
    for (unsigned k = 0; k < fb->n_missing; k++) {
        const struct ctrl_range *r = &fb->missing[k];
        if (seq < r->first)
            return 0;
        if (seq - r->first < r->count)
            return 1;
    }
    return 0;
}

/* The tail of what the receiver reported as complete: the missing ranges are the receiver's
 * first CTRL_MAX_RANGES gaps; beyond the last one we cannot tell loss from reception. */
static uint64_t missing_horizon(const struct ctrl_feedback *fb)
{
    if (fb->n_missing < CTRL_MAX_RANGES)
        return UINT64_MAX;
    const struct ctrl_range *r = &fb->missing[fb->n_missing - 1];
    return r->first + r->count;
}

static void on_link_feedback(struct sched *s, const struct ctrl_feedback *fb,
                             const struct ctrl_fb_link *fl, uint8_t rx_link, uint64_t now_us)
{
    uint8_t i = s->idx_of[fl->link_id];
    if (i == SCHED_NO_LINK)
        return;
    struct slink *l = &s->link[i];
    struct linkest *e = &s->est[i];
    int newer = !l->fb_have || (int32_t)(fl->pkts - l->fb_pkts) > 0;
    if (!newer && fl->highest_seq <= l->fb_highest)
        return; /* duplicate copy or older report */
    /* A report can be older than a down decision (it left the peer before the cut): only a
     * probe reply, a round trip started after the decision, brings a link back. */
    if (newer && linkest_usable(e))
        linkest_on_evidence(e, now_us);
    uint64_t rx_at = fb->rx_now_us - (fl->ack_delay_us < fb->rx_now_us ? fl->ack_delay_us : 0);
    linkest_on_delivery(e, fl->bytes, rx_at, now_us);
    l->fb_have = 1;
    l->fb_pkts = fl->pkts;
    if (fl->highest_seq > l->fb_highest)
        l->fb_highest = fl->highest_seq;

    /* The link is FIFO: once a packet sent at ring position p is known received, everything
     * before p has passed too. Positions are found by the last non-resend entry with
     * seq <= highest (re-sends carry old sequence numbers out of send order). */
    uint32_t last_ok = UINT32_MAX;
    for (uint32_t k = 0; k < l->len; k++) {
        const struct inflight *en = &l->ring[(l->head + k) & s->ring_mask];
        if (en->flags & ENT_RESEND)
            continue;
        if (en->seq > fl->highest_seq)
            break;
        last_ok = k;
    }
    if (last_ok == UINT32_MAX)
        return;
    uint64_t horizon = missing_horizon(fb);
    uint32_t lost = 0, ok = 0;
    for (uint32_t k = 0; k <= last_ok; k++) {
        const struct inflight *en = &l->ring[l->head];
        if (en->seq > fb->cum_ack && en->seq >= horizon)
            break; /* beyond what this report describes: decide on a later one */
        if (en->seq > fb->cum_ack && in_missing(fb, en->seq)) {
            lost++;
            queue_resend(s, en->seq, i);
        } else {
            ok++;
        }
        if (k == last_ok && en->seq == fl->highest_seq) {
            /* One-way transit of the newest packet (receiver clock - ours): queueing signal. */
            linkest_on_fwd_transit(e, (int64_t)(rx_at - en->tx_us), en->q_us, now_us);
            if (rx_link == fl->link_id && now_us > en->tx_us + fl->ack_delay_us)
                linkest_on_rtt(e, (uint32_t)(now_us - en->tx_us - fl->ack_delay_us), en->q_us,
                               now_us);
        }
        l->inflight_bytes -= en->bytes;
        l->head = (l->head + 1) & s->ring_mask;
        l->len--;
    }
    linkest_on_outcome(e, lost, ok);
}

/* Time-based loss detection (RACK-like, one-way): a packet that should have reached the peer
 * well before the peer built this report (send time + the link's forward transit + the queue
 * the model expected + a margin for jitter and unmodelled queue) and is still missing there is
 * lost. This catches what the FIFO rule cannot: a loss that no later packet on the same link
 * follows (tail losses, links carrying only the overflow). */
static void sweep_by_time(struct sched *s, const struct ctrl_feedback *fb)
{
    uint64_t horizon = missing_horizon(fb);
    for (unsigned i = 0; i < s->n_links; i++) {
        struct slink *l = &s->link[i];
        struct linkest *e = &s->est[i];
        if (!e->has_fwd)
            continue;
        double margin = 15000.0 + e->rttvar_us + (e->excess_us > 0 ? 2.0 * e->excess_us : 0);
        uint32_t lost = 0, ok = 0;
        while (l->len) {
            const struct inflight *en = &l->ring[l->head];
            /* q_us comes from the rate estimate: allow it a 25% error (a slow link's own
             * serialisation dominates its transit). */
            double due = (double)en->tx_us + (double)e->fwd_base_us + 1.25 * en->q_us + margin;
            if (due >= (double)fb->rx_now_us || (en->seq > fb->cum_ack && en->seq >= horizon))
                break;
            if (en->seq > fb->cum_ack && in_missing(fb, en->seq)) {
                lost++;
                queue_resend(s, en->seq, i);
            } else {
                ok++;
            }
            l->inflight_bytes -= en->bytes;
            l->head = (l->head + 1) & s->ring_mask;
            l->len--;
        }
        linkest_on_outcome(e, lost, ok);
    }
}

void sched_on_feedback(struct sched *s, const struct ctrl_feedback *fb, uint8_t rx_link,
                       uint64_t now_us)
{
    if (fb->cum_ack > s->cum_ack)
        s->cum_ack = fb->cum_ack;
    for (unsigned k = 0; k < fb->n_links && k < CTRL_MAX_LINKS; k++)
        on_link_feedback(s, fb, &fb->links[k], rx_link, now_us);
    sweep_by_time(s, fb);
}

void sched_on_probe_reply(struct sched *s, const struct ctrl_probe_reply *r, uint64_t now_us)
{
    uint8_t i = s->idx_of[r->link_id];
    if (i == SCHED_NO_LINK)
        return;
    if (linkest_on_probe_reply(&s->est[i], r, now_us) == 0)
        refresh_owd(s);
}

static void link_down(struct sched *s, unsigned i)
{
    struct slink *l = &s->link[i];
    for (uint32_t k = 0; k < l->len; k++)
        queue_resend(s, l->ring[(l->head + k) & s->ring_mask].seq, i);
    l->head = 0;
    l->len = 0;
    l->inflight_bytes = 0;
    l->vq = 0;
    l->fb_have = 0;
}

size_t sched_tick(struct sched *s, uint64_t now_us, struct ctrl_probe *out, size_t max)
{
    size_t n = 0;
    for (unsigned i = 0; i < s->n_links; i++) {
        drain(s, i, now_us);
        if (linkest_tick(&s->est[i], now_us)) {
            link_down(s, i);
            /* The same as a drained link, only sudden: the survivors get the dead link's
             * re-sends and then its load, while the flows still send for the old capacity. */
            s->grace_pending = true;
        }
        if (n < max && linkest_probe_due(&s->est[i], now_us)) {
            linkest_make_probe(&s->est[i], queue_delay_us(s, i), now_us, &out[n]);
            n++;
        }
        /* A new link's packet pairs go behind its plain probe, whose RTT they must not
         * delay; their bytes are in the model's queue like data. */
        if (n + 2 <= max && linkest_pair_due(&s->est[i], now_us)) {
            linkest_make_pair(&s->est[i], queue_delay_us(s, i), now_us, &out[n]);
            n += 2;
            s->link[i].vq += 2.0 * LINKEST_PAIR_WIRE_BYTES;
        }
    }
    refresh_owd(s); /* O(links): keep delays current as RTT and transit estimates move */
    return n;
}

const struct linkest *sched_link_est(const struct sched *s, uint8_t link_id)
{
    uint8_t i = s->idx_of[link_id];
    return i == SCHED_NO_LINK ? NULL : &s->est[i];
}

struct linkest *sched_link_est_mut(struct sched *s, uint8_t link_id)
{
    uint8_t i = s->idx_of[link_id];
    return i == SCHED_NO_LINK ? NULL : &s->est[i];
}

struct linkest *sched_estimators(struct sched *s, size_t *n)
{
    *n = s->n_links;
    return s->est;
}

int sched_link_info(const struct sched *s, uint8_t link_id, struct sched_link_info *info)
{
    uint8_t i = s->idx_of[link_id];
    if (i == SCHED_NO_LINK)
        return -1;
    const struct slink *l = &s->link[i];
    info->link_id = link_id;
    info->weight = l->weight;
    info->vq_bytes = l->vq;
    info->inflight_bytes = l->inflight_bytes;
    info->inflight_pkts = l->len;
    info->owd_us = l->owd_us;
    info->resent_pkts = l->resent;
    return 0;
}
