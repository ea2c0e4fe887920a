/* netsim: see netsim.h. */
#include "netsim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg/ctrl.h"
#include "agg/linkest.h"
#include "agg/reorder.h"
#include "agg/sched.h"
#include "common/common.h"

#define OUTER_OVERHEAD 52u   /* outer IPv4 20 + UDP 8 + tunnel header 8 + AEAD tag 16 */
#define MSS            1396u /* inner MTU 1448 (1500 - 52) minus IPv4+TCP with timestamps */
#define DATA_BYTES     1500u /* outer size of a full-size data packet */
#define ACK_BYTES      (52u + OUTER_OVERHEAD)
#define TICK_US        1000u
#define COPY_SLOTS     65536u
#define CTRL_POOL      8192u
#define CUBIC_C        0.4
#define CUBIC_BETA     0.7

enum { EV_ARRIVE = 1, EV_TICK, EV_UDP, EV_START };
enum { PK_DATA = 1, PK_CTRL, PK_TCPACK };
enum { DIR_FWD = 0, DIR_REV = 1 };

struct ev {
    uint64_t t;
    uint64_t order;
    uint32_t pkt;
    uint8_t type;
};

struct pkt {
    uint8_t kind, dir, link;
    uint64_t seq;
    uint32_t seg;
    uint32_t bytes;
    uint32_t ack_cum, ack_sack;
    int32_t ctrl; /* index into ctrl buffers, -1 none */
    uint64_t tx_t;
    uint16_t len;
    uint32_t next_free;
};

struct simlink {
    struct sim_link_cfg c;
    double busy_until[2];
    uint64_t last_arr[2];
};

struct tcp {
    uint32_t una, nxt, limit;
    double cwnd, ssthresh, w_max, origin, k;
    uint8_t *st;
    uint64_t *tx_t;
    uint32_t sacked_out, lost_out, retrans_out, high_sack, mark_ptr;
    int in_rec;
    uint32_t rec_point;
    uint64_t epoch_t;
    double srtt, rttvar, min_rtt;
    uint64_t rto_at;
    unsigned backoff;
    uint32_t *rtxq;
    uint32_t rq_head, rq_len, rq_mask;
    uint64_t retx, rtos;
    /* HyStart (delay increase), as Linux CUBIC does by default */
    uint32_t hs_round_end, hs_samples;
    double hs_cur_min, hs_last_min;
    /* receiver */
    uint32_t rcv_nxt;
    uint8_t *got;
};

#define ST_SACKED 1
#define ST_LOST   2
#define ST_RETX   4

struct sim {
    const struct sim_cfg *cfg;
    struct sim_result *res;
    uint64_t now;
    uint64_t rng;
    struct ev *heap;
    size_t hn, hcap;
    uint64_t order;
    struct pkt *pool;
    uint32_t pool_cap, free_head;
    uint8_t (*cbuf)[CTRL_MAX_ENCODED];
    int32_t cfree[CTRL_POOL];
    uint32_t cfree_n;
    struct simlink link[SIM_MAX_LINKS];
    struct sched *snd, *rcv;
    struct reorder *rb;
    struct ctrl_rx crx;
    uint64_t tseq;
    uint32_t copy_seg[COPY_SLOTS];
    uint64_t copy_seq[COPY_SLOTS];
    uint32_t copy_bytes[COPY_SLOTS];
    uint8_t dbg_sends[COPY_SLOTS], dbg_lost[COPY_SLOTS], dbg_link[COPY_SLOTS];
    uint64_t dbg_t[COPY_SLOTS];
    uint32_t seg_seq[1 << 20];
    struct tcp tcp;
    uint64_t last_progress, steady_delivered;
    uint64_t gaps_seen;
    int down_noted[SIM_MAX_LINKS], weight_applied[SIM_MAX_LINKS];
    uint64_t udp_n;
    uint8_t *udp_got;
    uint64_t udp_delivered;
    int failed;
};

/* ---- utilities ---------------------------------------------------------------------------- */

static double rnd(struct sim *s)
{
    /* xorshift64*: deterministic per seed */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (double)((s->rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static void heap_push(struct sim *s, uint64_t t, uint8_t type, uint32_t pkt)
{
    if (s->hn == s->hcap) {
        size_t nc = s->hcap ? s->hcap * 2 : 4096;
        struct ev *nh = realloc(s->heap, nc * sizeof(*nh));
        if (!nh) {
            s->failed = 1;
            return;
        }
        s->heap = nh;
        s->hcap = nc;
    }
    size_t i = s->hn++;
    struct ev e = {t, s->order++, pkt, type};
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (s->heap[p].t < e.t || (s->heap[p].t == e.t && s->heap[p].order < e.order))
            break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = e;
}

static struct ev heap_pop(struct sim *s)
{
    struct ev top = s->heap[0];
    struct ev last = s->heap[--s->hn];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct ev *cm = &last;
        if (l < s->hn &&
            (s->heap[l].t < cm->t || (s->heap[l].t == cm->t && s->heap[l].order < cm->order))) {
            m = l;
            cm = &s->heap[l];
        }
        if (r < s->hn &&
            (s->heap[r].t < cm->t || (s->heap[r].t == cm->t && s->heap[r].order < cm->order))) {
            m = r;
            cm = &s->heap[r];
        }
        if (m == i)
            break;
        s->heap[i] = s->heap[m];
        i = m;
    }
    if (s->hn)
        s->heap[i] = last;
    return top;
}

static uint32_t pkt_alloc(struct sim *s)
{
    if (s->free_head == UINT32_MAX) {
        uint32_t nc = s->pool_cap ? s->pool_cap * 2 : 16384;
        struct pkt *np = realloc(s->pool, nc * sizeof(*np));
        if (!np) {
            s->failed = 1;
            return UINT32_MAX;
        }
        s->pool = np;
        for (uint32_t i = s->pool_cap; i < nc; i++)
            s->pool[i].next_free = i + 1 < nc ? i + 1 : UINT32_MAX;
        s->free_head = s->pool_cap;
        s->pool_cap = nc;
    }
    uint32_t i = s->free_head;
    s->free_head = s->pool[i].next_free;
    memset(&s->pool[i], 0, sizeof(s->pool[i]));
    s->pool[i].ctrl = -1;
    return i;
}

static void pkt_free(struct sim *s, uint32_t i)
{
    if (s->pool[i].ctrl >= 0)
        s->cfree[s->cfree_n++] = s->pool[i].ctrl;
    s->pool[i].ctrl = -1;
    s->pool[i].next_free = s->free_head;
    s->free_head = i;
}

static int link_out(const struct simlink *l, uint64_t t)
{
    return l->c.down_at_us && t >= l->c.down_at_us && (!l->c.up_at_us || t < l->c.up_at_us);
}

/* Put a packet on a link: FIFO serialisation at the link rate, tail drop, delay, loss. */
static void transmit(struct sim *s, uint32_t pi, uint8_t dir, uint8_t link)
{
    struct pkt *p = &s->pool[pi];
    struct simlink *l = &s->link[link];
    p->dir = dir;
    p->link = link;
    p->tx_t = s->now;
    if (link_out(l, s->now)) {
        pkt_free(s, pi);
        return;
    }
    double now = (double)s->now;
    double backlog_us = l->busy_until[dir] > now ? l->busy_until[dir] - now : 0.0;
    double qbytes = backlog_us * l->c.rate_bps / 8e6;
    if (qbytes + p->bytes > l->c.qlimit_bytes) {
        pkt_free(s, pi);
        return;
    }
    double start = l->busy_until[dir] > now ? l->busy_until[dir] : now;
    l->busy_until[dir] = start + p->bytes * 8e6 / l->c.rate_bps;
    if (rnd(s) < l->c.loss) {
        if (p->kind == PK_DATA)
            s->dbg_lost[p->seq & (COPY_SLOTS - 1)]++;
        pkt_free(s, pi);
        return;
    }
    uint64_t arr = (uint64_t)l->busy_until[dir] + l->c.owd_us + (uint64_t)(rnd(s) * l->c.jitter_us);
    if (arr < l->last_arr[dir])
        arr = l->last_arr[dir];
    l->last_arr[dir] = arr;
    heap_push(s, arr, EV_ARRIVE, pi);
}

static void send_ctrl(struct sim *s, const uint8_t *buf, size_t len, uint8_t dir, uint8_t link)
{
    if (len == 0 || s->cfree_n == 0)
        return;
    uint32_t pi = pkt_alloc(s);
    if (pi == UINT32_MAX)
        return;
    struct pkt *p = &s->pool[pi];
    p->kind = PK_CTRL;
    p->ctrl = s->cfree[--s->cfree_n];
    memcpy(s->cbuf[p->ctrl], buf, len);
    p->len = (uint16_t)len;
    p->bytes = (uint32_t)len + OUTER_OVERHEAD;
    transmit(s, pi, dir, link);
}

/* The receiver's best reverse link for ACKs and urgent feedback: usable in its own estimator,
 * smallest RTT. The reverse direction has no scheduler of its own here, so as a stand-in for
 * one, links that carry under 5% of the (symmetric) capacity the forward sender measured are
 * skipped: a 200 kbit/s link must not carry thousands of ACKs a second. */
static int best_reverse(struct sim *s)
{
    size_t n;
    struct linkest *e = sched_estimators(s->rcv, &n);
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        const struct linkest *f = sched_link_est(s->snd, e[i].link_id);
        if (f && linkest_usable(f))
            total += f->cap_Bps;
    }
    int best = -1;
    uint32_t br = UINT32_MAX;
    for (size_t i = 0; i < n; i++) {
        const struct linkest *f = sched_link_est(s->snd, e[i].link_id);
        if (!linkest_usable(&e[i]) || (f && f->cap_Bps < 0.05 * total))
            continue;
        uint32_t r = e[i].has_rtt ? e[i].srtt_us : 1000000;
        if (r < br) {
            br = r;
            best = e[i].link_id;
        }
    }
    return best;
}

/* ---- tunnel sender ------------------------------------------------------------------------ */

static void tunnel_put(struct sim *s, uint64_t seq, uint32_t seg, uint32_t bytes,
                       const struct sched_decision *d)
{
    for (unsigned k = 0; k < d->n; k++) {
        uint32_t pi = pkt_alloc(s);
        if (pi == UINT32_MAX)
            return;
        struct pkt *p = &s->pool[pi];
        p->kind = PK_DATA;
        p->seq = seq;
        p->seg = seg;
        p->bytes = bytes;
        s->res->sent_bytes[d->link[k]] += bytes;
        s->dbg_sends[seq & (COPY_SLOTS - 1)]++;
        s->dbg_link[seq & (COPY_SLOTS - 1)] = d->link[k];
        s->dbg_t[seq & (COPY_SLOTS - 1)] = s->now;
        if (seg < (1u << 20))
            s->seg_seq[seg] = (uint32_t)seq;
        const struct sim_link_cfg *lc = &s->cfg->link[d->link[k]];
        if (lc->weight_set && lc->weight == 0.0 && s->now >= lc->weight_at_us)
            s->res->sent_after_weight0++;
        transmit(s, pi, DIR_FWD, d->link[k]);
    }
}

static void tunnel_ingress(struct sim *s, uint32_t seg, uint32_t bytes)
{
    uint64_t seq = s->tseq + 1; /* consumed only if the packet is sent */
    struct sched_decision d;
    enum sched_verdict v = sched_send(s->snd, seq, bytes, 0, s->now, &d);
    if (v != SCHED_SEND) {
        if (s->cfg->verbose > 1) {
            printf("drop v=%d t=%.3f seg %u", v, s->now / 1e6, seg);
            for (int i = 0; i < s->cfg->n_links; i++) {
                struct sched_link_info li;
                sched_link_info(s->snd, (uint8_t)i, &li);
                const struct linkest *e = sched_link_est(s->snd, (uint8_t)i);
                printf(" | %s vq %.0f pace %.0f", linkest_state_name(e->state), li.vq_bytes,
                       linkest_pace_Bps(e));
            }
            printf("\n");
        }
        if (v == SCHED_DROP_BUDGET)
            s->res->tunnel_drops_budget++;
        else
            s->res->tunnel_drops_nolink++;
        return;
    }
    s->tseq = seq;
    uint32_t c = seq & (COPY_SLOTS - 1);
    s->copy_seq[c] = seq;
    s->copy_seg[c] = seg;
    s->copy_bytes[c] = bytes;
    tunnel_put(s, seq, seg, bytes, &d);
}

static void tunnel_resends(struct sim *s)
{
    uint64_t seqs[64];
    size_t n;
    while ((n = sched_take_resend(s->snd, seqs, 64)) > 0) {
        for (size_t i = 0; i < n; i++) {
            uint32_t c = seqs[i] & (COPY_SLOTS - 1);
            if (s->copy_seq[c] != seqs[i])
                continue; /* copy overwritten: the transport recovers */
            struct sched_decision d;
            if (sched_resend(s->snd, seqs[i], s->copy_bytes[c], s->now, &d) == SCHED_SEND) {
                s->res->tunnel_resent++;
                tunnel_put(s, seqs[i], s->copy_seg[c], s->copy_bytes[c], &d);
            }
        }
    }
}

/* ---- TCP (CUBIC + SACK, RFC 6675-like loss marking with dupthresh 3) ---------------------- */

static uint32_t tcp_pipe(const struct tcp *t)
{
    return (t->nxt - t->una) - t->sacked_out - t->lost_out + t->retrans_out;
}

static void tcp_send(struct sim *s)
{
    struct tcp *t = &s->tcp;
    while (tcp_pipe(t) < (uint32_t)t->cwnd) {
        uint32_t seg = UINT32_MAX;
        while (t->rq_len) {
            uint32_t c = t->rtxq[t->rq_head];
            t->rq_head = (t->rq_head + 1) & t->rq_mask;
            t->rq_len--;
            if (c >= t->una && c < t->nxt &&
                (t->st[c] & (ST_LOST | ST_SACKED | ST_RETX)) == ST_LOST) {
                seg = c;
                break;
            }
        }
        if (seg != UINT32_MAX) {
            t->st[seg] |= ST_RETX;
            t->retrans_out++;
            t->retx++;
        } else if (t->nxt < t->limit) {
            seg = t->nxt++;
        } else {
            break;
        }
        t->tx_t[seg] = s->now;
        if (t->rto_at == 0)
            t->rto_at = s->now + (uint64_t)fmax(200000.0, t->srtt + 4 * t->rttvar);
        tunnel_ingress(s, seg, DATA_BYTES);
    }
}

static void tcp_mark_lost(struct tcp *t, uint32_t seg)
{
    t->st[seg] |= ST_LOST;
    t->lost_out++;
    if (t->rq_len <= t->rq_mask) {
        t->rtxq[(t->rq_head + t->rq_len) & t->rq_mask] = seg;
        t->rq_len++;
    }
}

static void tcp_on_ack(struct sim *s, uint32_t cum, uint32_t sack)
{
    struct tcp *t = &s->tcp;
    uint32_t newly = 0;
    if (sack >= t->una && sack < t->nxt && !(t->st[sack] & ST_SACKED)) {
        if (!(t->st[sack] & ST_RETX)) {
            double r = (double)(s->now - t->tx_t[sack]);
            if (t->srtt == 0) {
                t->srtt = r;
                t->rttvar = r / 2;
            } else {
                t->rttvar = 0.75 * t->rttvar + 0.25 * fabs(t->srtt - r);
                t->srtt = 0.875 * t->srtt + 0.125 * r;
            }
            if (t->min_rtt == 0 || r < t->min_rtt)
                t->min_rtt = r;
            if (!s->cfg->no_hystart && t->cwnd < t->ssthresh && t->cwnd >= 16) {
                if (t->hs_samples < 8) {
                    t->hs_samples++;
                    if (t->hs_cur_min == 0 || r < t->hs_cur_min)
                        t->hs_cur_min = r;
                    if (t->hs_samples == 8 && t->hs_last_min > 0) {
                        double eta = fmin(fmax(t->hs_last_min / 8, 4000.0), 16000.0);
                        if (t->hs_cur_min >= t->hs_last_min + eta)
                            t->ssthresh = t->cwnd; /* delay grew: leave slow start */
                    }
                }
            }
        }
        t->st[sack] |= ST_SACKED;
        t->sacked_out++;
        if (t->st[sack] & ST_LOST)
            t->lost_out--;
        if (t->st[sack] & ST_RETX)
            t->retrans_out--;
        if (sack > t->high_sack)
            t->high_sack = sack;
        newly++;
    }
    if (cum > t->nxt)
        cum = t->nxt;
    if (cum >= t->hs_round_end) {
        if (t->hs_samples >= 8)
            t->hs_last_min = t->hs_cur_min;
        t->hs_round_end = t->nxt;
        t->hs_samples = 0;
        t->hs_cur_min = 0;
    }
    if (cum > t->una) {
        for (uint32_t x = t->una; x < cum; x++) {
            if (t->st[x] & ST_SACKED) {
                t->sacked_out--;
            } else {
                newly++;
                if (t->st[x] & ST_LOST)
                    t->lost_out--;
                if (t->st[x] & ST_RETX)
                    t->retrans_out--;
            }
        }
        t->una = cum;
        t->backoff = 0;
        t->rto_at =
            t->una < t->nxt ? s->now + (uint64_t)fmax(200000.0, t->srtt + 4 * t->rttvar) : 0;
    }
    /* Loss marking: a hole with three SACKed segments above it is lost. */
    int loss = 0;
    if (t->mark_ptr < t->una)
        t->mark_ptr = t->una;
    while (t->high_sack >= 3 && t->mark_ptr + 3 <= t->high_sack) {
        uint32_t x = t->mark_ptr++;
        if (x >= t->una && !(t->st[x] & (ST_SACKED | ST_LOST))) {
            tcp_mark_lost(t, x);
            loss = 1;
        }
    }
    if (t->in_rec && t->una >= t->rec_point)
        t->in_rec = 0;
    if (loss && !t->in_rec) {
        if (s->cfg->verbose > 1)
            printf("tcp recovery t=%.3f cwnd %.0f una %u\n", s->now / 1e6, t->cwnd, t->una);
        t->in_rec = 1;
        t->rec_point = t->nxt;
        t->w_max = t->cwnd;
        t->ssthresh = fmax(t->cwnd * CUBIC_BETA, 2.0);
        t->cwnd = t->ssthresh;
        t->epoch_t = 0;
    } else if (!t->in_rec && newly) {
        if (t->cwnd < t->ssthresh) {
            t->cwnd += newly;
        } else {
            if (t->epoch_t == 0) {
                t->epoch_t = s->now;
                if (t->w_max > t->cwnd) {
                    t->k = cbrt((t->w_max - t->cwnd) / CUBIC_C);
                    t->origin = t->w_max;
                } else {
                    t->k = 0;
                    t->origin = t->cwnd;
                }
            }
            double tt = (double)(s->now - t->epoch_t) / 1e6 + t->min_rtt / 1e6;
            double target = t->origin + CUBIC_C * pow(tt - t->k, 3);
            if (target > 1.5 * t->cwnd)
                target = 1.5 * t->cwnd;
            if (target > t->cwnd)
                t->cwnd += (target - t->cwnd) / t->cwnd * newly;
            else
                t->cwnd += 0.01 * newly / t->cwnd;
        }
    }
    tcp_send(s);
}

static void tcp_check_rto(struct sim *s)
{
    struct tcp *t = &s->tcp;
    if (!t->rto_at || s->now < t->rto_at || t->una >= t->nxt)
        return;
    t->rtos++;
    t->ssthresh = fmax(t->cwnd * CUBIC_BETA, 2.0);
    t->w_max = t->cwnd;
    t->cwnd = 1;
    t->in_rec = 0;
    t->epoch_t = 0;
    t->lost_out = 0;
    t->retrans_out = 0;
    t->rq_len = 0;
    for (uint32_t x = t->una; x < t->nxt; x++) {
        t->st[x] &= (uint8_t) ~(ST_LOST | ST_RETX);
        if (!(t->st[x] & ST_SACKED))
            tcp_mark_lost(t, x);
    }
    if (t->backoff < 6)
        t->backoff++;
    t->rto_at = s->now + ((uint64_t)fmax(200000.0, t->srtt + 4 * t->rttvar) << t->backoff);
    tcp_send(s);
}

static void note_progress(struct sim *s)
{
    if (s->now > s->cfg->start_us + 1000000 && s->now - s->last_progress > s->res->max_gap_us) {
        s->res->max_gap_us = s->now - s->last_progress;
        s->res->max_gap_at_us = s->now;
    }
    s->last_progress = s->now;
}

/* The tunnel egress hands a segment to the TCP receiver (or the UDP sink). */
static void deliver(struct sim *s, uint32_t seg)
{
    if (s->cfg->traffic == SIM_UDP_CBR) {
        if (seg < s->udp_n && !s->udp_got[seg]) {
            s->udp_got[seg] = 1;
            s->udp_delivered++;
            note_progress(s);
        }
        return;
    }
    struct tcp *t = &s->tcp;
    if (seg >= t->limit)
        return;
    if (seg >= t->rcv_nxt && !t->got[seg]) {
        if (seg > t->rcv_nxt && s->cfg->verbose > 2 && t->rcv_nxt < (1u << 20)) {
            uint32_t q = s->seg_seq[t->rcv_nxt] & (COPY_SLOTS - 1);
            printf("hole t=%.3f seg %u seq %u sends %u lost %u lastlink %u lastsend %.3f hold %u\n",
                   s->now / 1e6, t->rcv_nxt, s->seg_seq[t->rcv_nxt], s->dbg_sends[q],
                   s->dbg_lost[q], s->dbg_link[q], s->dbg_t[q] / 1e6, reorder_hold(s->rb));
        }
        t->got[seg] = 1;
        uint32_t before = t->rcv_nxt;
        while (t->rcv_nxt < t->limit && t->got[t->rcv_nxt])
            t->rcv_nxt++;
        if (t->rcv_nxt != before) {
            note_progress(s);
            if (s->now >= s->cfg->steady_from_us)
                s->steady_delivered += t->rcv_nxt - before;
        }
    }
    int rl = best_reverse(s);
    if (rl < 0)
        return;
    uint32_t pi = pkt_alloc(s);
    if (pi == UINT32_MAX)
        return;
    struct pkt *p = &s->pool[pi];
    p->kind = PK_TCPACK;
    p->bytes = ACK_BYTES;
    p->ack_cum = t->rcv_nxt;
    p->ack_sack = seg;
    transmit(s, pi, DIR_REV, (uint8_t)rl);
}

/* ---- receiver end ------------------------------------------------------------------------- */

static void rcv_release(struct sim *s)
{
    uint64_t h;
    while (reorder_pop(s->rb, s->now, &h))
        deliver(s, (uint32_t)h);
}

static void rcv_feedback(struct sim *s)
{
    struct reorder_stats st;
    reorder_get_stats(s->rb, &st);
    int urgent = -1;
    if (st.gaps_opened != s->gaps_seen) {
        s->gaps_seen = st.gaps_opened;
        urgent = best_reverse(s);
    }
    uint8_t links[CTRL_MAX_LINKS];
    size_t n = ctrl_rx_due(&s->crx, s->now, urgent, links, CTRL_MAX_LINKS);
    if (n == 0)
        return;
    struct ctrl_feedback fb;
    ctrl_rx_build(&s->crx, s->rb, s->now, &fb);
    uint8_t buf[CTRL_MAX_ENCODED];
    size_t len = ctrl_encode_feedback(&fb, buf, sizeof(buf));
    if (len == 0) {
        s->failed = 1;
        return;
    }
    for (size_t i = 0; i < n; i++)
        send_ctrl(s, buf, len, DIR_REV, links[i]);
}

static void on_data(struct sim *s, const struct pkt *p)
{
    ctrl_rx_on_data(&s->crx, p->link, p->seq, p->bytes, s->now);
    enum reorder_verdict v = reorder_push(s->rb, p->seq, p->seg, s->now);
    if (v == REORDER_LATE)
        deliver(s, p->seg);
    rcv_release(s);
    rcv_feedback(s);
}

/* Control packets: either end. dir tells which end received it. */
static void on_ctrl(struct sim *s, const struct pkt *p)
{
    const uint8_t *b = s->cbuf[p->ctrl];
    struct sched *me = p->dir == DIR_FWD ? s->rcv : s->snd;
    uint8_t back = p->dir == DIR_FWD ? DIR_REV : DIR_FWD;
    switch (ctrl_type(b, p->len)) {
    case CTRL_PROBE:
    case CTRL_PROBE_PAD: {
        struct ctrl_probe pr;
        if (ctrl_decode_probe(b, p->len, &pr) != 0) {
            s->failed = 1;
            return;
        }
        struct linkest *e = sched_link_est_mut(me, p->link);
        if (e)
            linkest_on_probe_rx(e, &pr, s->now);
        struct ctrl_probe_reply r = {pr.link_id, pr.probe_seq, pr.tx_us, s->now};
        uint8_t buf[64];
        send_ctrl(s, buf, ctrl_encode_probe_reply(&r, buf, sizeof(buf)), back, p->link);
        break;
    }
    case CTRL_PROBE_REPLY: {
        struct ctrl_probe_reply r;
        if (ctrl_decode_probe_reply(b, p->len, &r) != 0) {
            s->failed = 1;
            return;
        }
        sched_on_probe_reply(me, &r, s->now);
        break;
    }
    case CTRL_FEEDBACK: {
        struct ctrl_feedback fb;
        if (ctrl_decode_feedback(b, p->len, &fb) != 0) {
            s->failed = 1;
            return;
        }
        sched_on_feedback(s->snd, &fb, p->link, s->now);
        tunnel_resends(s);
        break;
    }
    default:
        s->failed = 1;
    }
}

static void on_arrive(struct sim *s, uint32_t pi)
{
    struct pkt *p = &s->pool[pi];
    const struct simlink *l = &s->link[p->link];
    /* A hard cut loses whatever was on the link when it happened. */
    if (l->c.down_at_us && s->now >= l->c.down_at_us &&
        (!l->c.up_at_us || p->tx_t < l->c.up_at_us)) {
        pkt_free(s, pi);
        return;
    }
    switch (p->kind) {
    case PK_DATA:
        on_data(s, p);
        break;
    case PK_CTRL:
        on_ctrl(s, p);
        break;
    case PK_TCPACK:
        tcp_on_ack(s, p->ack_cum, p->ack_sack);
        break;
    }
    pkt_free(s, pi);
}

static void tick(struct sim *s)
{
    struct ctrl_probe pr[SCHED_TICK_MAX_PROBES(SIM_MAX_LINKS)];
    uint8_t buf[CTRL_PROBE_PAD_MAX + 32];
    for (int i = 0; i < s->cfg->n_links; i++) {
        const struct sim_link_cfg *lc = &s->cfg->link[i];
        if (lc->weight_set && !s->weight_applied[i] && s->now >= lc->weight_at_us) {
            sched_set_weight(s->snd, (uint8_t)i, lc->weight);
            s->weight_applied[i] = 1;
        }
        if (lc->down_at_us && s->now == lc->down_at_us) {
            struct sched_link_info li;
            if (sched_link_info(s->snd, (uint8_t)i, &li) == 0)
                s->res->inflight_at_cut_pkts = li.inflight_pkts;
        }
    }
    size_t n = sched_tick(s->snd, s->now, pr, ARRAY_LEN(pr));
    for (size_t i = 0; i < n; i++)
        send_ctrl(s, buf, ctrl_encode_probe(&pr[i], buf, sizeof(buf)), DIR_FWD, pr[i].link_id);
    n = sched_tick(s->rcv, s->now, pr, ARRAY_LEN(pr));
    for (size_t i = 0; i < n; i++)
        send_ctrl(s, buf, ctrl_encode_probe(&pr[i], buf, sizeof(buf)), DIR_REV, pr[i].link_id);
    for (int i = 0; i < s->cfg->n_links; i++) {
        const struct linkest *e = sched_link_est(s->snd, (uint8_t)i);
        uint64_t dn = s->cfg->link[i].down_at_us;
        if (dn && !s->down_noted[i] && s->now >= dn && e->state == LINK_DOWN) {
            s->down_noted[i] = 1;
            s->res->down_detect_us[i] = s->now - dn;
        }
    }
    tunnel_resends(s);
    if (s->cfg->verbose && s->now % 500000 == 0) {
        printf("t=%.1f cwnd %.0f ssth %.0f rec %d pipe %u una %u nxt %u sacked %u lost %u retr %u "
               "rq %u",
               s->now / 1e6, s->tcp.cwnd, s->tcp.ssthresh, s->tcp.in_rec, tcp_pipe(&s->tcp),
               s->tcp.una, s->tcp.nxt, s->tcp.sacked_out, s->tcp.lost_out, s->tcp.retrans_out,
               s->tcp.rq_len);
        for (int i = 0; i < s->cfg->n_links; i++) {
            const struct linkest *e = sched_link_est(s->snd, (uint8_t)i);
            struct sched_link_info li;
            sched_link_info(s->snd, (uint8_t)i, &li);
            printf(" | %d %s cap %.1f g %.2f srtt %u min %u ex %.0f owd %u vq %.0f", i,
                   linkest_state_name(e->state), e->cap_Bps * 8e-6, e->pace_gain, e->srtt_us,
                   e->min_rtt_us, e->excess_us, li.owd_us, li.vq_bytes);
        }
        printf("\n");
    }
    /* Receiver: hold from the spread of its links plus the time a repair takes (feedback to
     * the sender on the fastest link and the re-sent packet back: about one min RTT). */
    size_t ne;
    struct linkest *re = sched_estimators(s->rcv, &ne);
    /* The repair travels: feedback on the fastest reverse link, then the re-sent packet behind
     * at most the sender's queue budget (same 50 ms target at both ends) on the best link. */
    uint32_t arq = 10000 + 2 * (s->cfg->target_delay_us ? s->cfg->target_delay_us : 50000);
    uint32_t mr = UINT32_MAX;
    for (size_t i = 0; i < ne; i++)
        if (linkest_usable(&re[i]) && re[i].has_rtt && re[i].min_rtt_us < mr)
            mr = re[i].min_rtt_us;
    if (mr != UINT32_MAX)
        arq += mr;
    reorder_set_hold(s->rb, linkest_hold_us(re, ne, arq, s->now));
    rcv_release(s);
    rcv_feedback(s);
    if (s->cfg->traffic == SIM_TCP)
        tcp_check_rto(s);
}

static void udp_gen(struct sim *s)
{
    if (s->udp_n >= (uint64_t)s->tcp.limit)
        return;
    uint32_t seg = (uint32_t)s->udp_n++;
    tunnel_ingress(s, seg, s->cfg->udp_bytes + OUTER_OVERHEAD);
    uint64_t iv = (uint64_t)((s->cfg->udp_bytes + 28) * 8e6 / s->cfg->udp_bps);
    heap_push(s, s->now + iv, EV_UDP, 0);
}

int sim_run(const struct sim_cfg *cfg, struct sim_result *res)
{
    struct sim *s = calloc(1, sizeof(*s));
    if (!s)
        return -1;
    memset(res, 0, sizeof(*res));
    s->cfg = cfg;
    s->res = res;
    s->rng = 0x9E3779B97F4A7C15ull ^ cfg->seed;
    s->free_head = UINT32_MAX;
    s->cbuf = calloc(CTRL_POOL, sizeof(*s->cbuf));
    for (uint32_t i = 0; i < CTRL_POOL; i++)
        s->cfree[s->cfree_n++] = (int32_t)i;
    char err[128];
    struct sched_cfg sc;
    sched_cfg_default(&sc);
    if (cfg->target_delay_us)
        sc.target_delay_us = cfg->target_delay_us;
    s->snd = sched_new(&sc, err, sizeof(err));
    s->rcv = sched_new(&sc, err, sizeof(err));
    s->rb = reorder_new(8192, 50000, err, sizeof(err));
    ctrl_rx_init(&s->crx);
    double sum = 0;
    for (int i = 0; i < cfg->n_links; i++) {
        s->link[i].c = cfg->link[i];
        sum += cfg->link[i].rate_bps;
        if (s->link[i].c.qlimit_bytes == 0) {
            double q = cfg->link[i].rate_bps / 8.0 * 0.2;
            s->link[i].c.qlimit_bytes = (uint32_t)(q > 30.0 * DATA_BYTES ? q : 30.0 * DATA_BYTES);
        }
        if (s->snd)
            sched_add_link(s->snd, (uint8_t)i, 0);
        if (s->rcv)
            sched_add_link(s->rcv, (uint8_t)i, 0);
    }
    struct tcp *t = &s->tcp;
    t->limit = (uint32_t)(sum * (cfg->duration_us / 1e6) / 8.0 / MSS * 1.3) + 10000;
    t->st = calloc(t->limit, 1);
    t->got = calloc(t->limit, 1);
    t->tx_t = calloc(t->limit, sizeof(*t->tx_t));
    t->rq_mask = 65535;
    t->rtxq = calloc(t->rq_mask + 1u, sizeof(*t->rtxq));
    t->cwnd = 10;
    t->ssthresh = 1e9;
    s->udp_got = calloc(t->limit, 1);
    if (!s->cbuf || !s->snd || !s->rcv || !s->rb || !t->st || !t->got || !t->tx_t || !t->rtxq ||
        !s->udp_got) {
        s->failed = 1;
        goto out;
    }
    heap_push(s, 0, EV_TICK, 0);
    if (cfg->traffic == SIM_UDP_CBR)
        heap_push(s, cfg->start_us, EV_UDP, 0);
    else if (cfg->start_us)
        heap_push(s, cfg->start_us, EV_START, 0);
    else
        tcp_send(s);
    while (s->hn && !s->failed) {
        struct ev e = heap_pop(s);
        if (e.t > cfg->duration_us) {
            if (e.type == EV_ARRIVE)
                pkt_free(s, e.pkt);
            continue;
        }
        s->now = e.t;
        switch (e.type) {
        case EV_ARRIVE:
            on_arrive(s, e.pkt);
            break;
        case EV_TICK:
            tick(s);
            heap_push(s, s->now + TICK_US, EV_TICK, 0);
            break;
        case EV_UDP:
            udp_gen(s);
            break;
        case EV_START:
            s->last_progress = s->now;
            tcp_send(s);
            break;
        }
    }
    s->now = cfg->duration_us;
    double dur = (cfg->duration_us - cfg->start_us) / 1e6;
    if (cfg->traffic == SIM_UDP_CBR) {
        res->udp_sent = s->udp_n;
        res->udp_delivered = s->udp_delivered;
        res->goodput_bps = s->udp_delivered * cfg->udp_bytes * 8.0 / dur;
    } else {
        res->goodput_bps = (double)t->rcv_nxt * MSS * 8.0 / dur;
        double sd = dur - cfg->steady_from_us / 1e6;
        res->goodput_steady_bps = sd > 0 ? s->steady_delivered * (double)MSS * 8.0 / sd : 0;
    }
    res->tcp_retx = t->retx;
    res->tcp_rto = t->rtos;
    for (int i = 0; i < cfg->n_links; i++) {
        const struct linkest *e = sched_link_est(s->snd, (uint8_t)i);
        res->cap_est_bps[i] = e->cap_Bps * 8.0;
        res->loss_est[i] = e->loss;
        res->srtt_us[i] = e->srtt_us;
        res->final_state[i] = e->state;
        const struct sim_link_cfg *lc = &cfg->link[i];
        if (lc->weight_set && lc->weight == 0.0) {
            struct sched_link_info li;
            sched_link_info(s->snd, (uint8_t)i, &li);
            res->inflight_after_weight0 = li.inflight_pkts;
        }
    }
    struct reorder_stats rs;
    reorder_get_stats(s->rb, &rs);
    res->reorder_max_hold_us = rs.max_hold_us;
    res->reorder_skipped = rs.skipped_seqs;
    res->reorder_late = rs.late;
    res->reorder_dups = rs.dups;
    res->hold_us_final = reorder_hold(s->rb);
out:;
    int rc = s->failed ? -1 : 0;
    sched_free(s->snd);
    sched_free(s->rcv);
    reorder_free(s->rb);
    free(s->cbuf);
    free(s->heap);
    free(s->pool);
    free(t->st);
    free(t->got);
    free(t->tx_t);
    free(t->rtxq);
    free(s->udp_got);
    free(s);
    return rc;
}
