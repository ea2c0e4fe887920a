/* ctrl: see ctrl.h. Varint (LEB128) encoding with explicit bounds on every read. */
#include "agg/ctrl.h"

#include <string.h>

#include "agg/reorder.h"

struct wbuf {
    uint8_t *p;
    size_t len, off;
    int bad;
};

struct rbuf {
    const uint8_t *p;
    size_t len, off;
    int bad;
};

static void put_u8(struct wbuf *w, uint8_t v)
{
    if (w->off >= w->len) {
        w->bad = 1;
        return;
    }
    w->p[w->off++] = v;
}

static void put_var(struct wbuf *w, uint64_t v)
{
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        put_u8(w, v ? (uint8_t)(b | 0x80) : b);
    } while (v && !w->bad);
}

/* Zigzag: small signed deltas become small unsigned varints. */
static void put_svar(struct wbuf *w, int64_t v)
{
    put_var(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static uint8_t get_u8(struct rbuf *r)
{
    if (r->off >= r->len) {
        r->bad = 1;
        return 0;
    }
    return r->p[r->off++];
}

static uint64_t get_var(struct rbuf *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        uint8_t b = get_u8(r);
        if (r->bad)
            return 0;
        /* The 10th byte may only carry the top bit of a 64-bit value. */
        if (shift == 63 && (b & 0x7e)) {
            r->bad = 1;
            return 0;
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->bad = 1;
    return 0;
}

static int64_t get_svar(struct rbuf *r)
{
    uint64_t u = get_var(r);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static uint32_t get_var32(struct rbuf *r)
{
    uint64_t v = get_var(r);
    if (v > UINT32_MAX)
        r->bad = 1;
    return (uint32_t)v;
}

size_t ctrl_encode_probe(const struct ctrl_probe *p, uint8_t *buf, size_t len)
{
    struct wbuf w = {buf, len, 0, 0};
    if (p->pad > CTRL_PROBE_PAD_MAX)
        return 0;
    put_u8(&w, p->pad ? CTRL_PROBE_PAD : CTRL_PROBE);
    put_u8(&w, p->link_id);
    put_var(&w, p->probe_seq);
    put_var(&w, p->tx_us);
    for (unsigned i = 0; i < p->pad; i++)
        put_u8(&w, 0);
    return w.bad ? 0 : w.off;
}

size_t ctrl_encode_probe_reply(const struct ctrl_probe_reply *p, uint8_t *buf, size_t len)
{
    struct wbuf w = {buf, len, 0, 0};
    put_u8(&w, CTRL_PROBE_REPLY);
    put_u8(&w, p->link_id);
    put_var(&w, p->probe_seq);
    put_var(&w, p->tx_us);
    put_var(&w, p->rx_us);
    return w.bad ? 0 : w.off;
}

size_t ctrl_encode_feedback(const struct ctrl_feedback *f, uint8_t *buf, size_t len)
{
    if (f->n_links > CTRL_MAX_LINKS || f->n_missing > CTRL_MAX_RANGES)
        return 0;
    struct wbuf w = {buf, len, 0, 0};
    put_u8(&w, CTRL_FEEDBACK);
    put_var(&w, f->rx_now_us);
    put_var(&w, f->cum_ack);
    put_u8(&w, f->n_links);
    for (unsigned i = 0; i < f->n_links; i++) {
        const struct ctrl_fb_link *l = &f->links[i];
        put_u8(&w, l->link_id);
        /* A link's highest seq is near cum_ack (behind it for a slow link): signed delta. */
        put_svar(&w, (int64_t)(l->highest_seq - f->cum_ack));
        put_var(&w, l->pkts);
        put_var(&w, l->bytes);
        put_var(&w, l->ack_delay_us);
    }
    put_u8(&w, f->n_missing);
    uint64_t prev = f->cum_ack;
    for (unsigned i = 0; i < f->n_missing; i++) {
        const struct ctrl_range *r = &f->missing[i];
        if (r->first <= prev || r->count == 0)
            return 0; /* ranges must ascend above cum_ack and not touch */
        put_var(&w, r->first - prev);
        put_var(&w, r->count);
        prev = r->first + r->count;
    }
    return w.bad ? 0 : w.off;
}

int ctrl_type(const uint8_t *buf, size_t len)
{
    return len ? buf[0] : -1;
}

int ctrl_decode_probe(const uint8_t *buf, size_t len, struct ctrl_probe *p)
{
    struct rbuf r = {buf, len, 0, 0};
    uint8_t type = get_u8(&r);
    if (type != CTRL_PROBE && type != CTRL_PROBE_PAD)
        return -1;
    p->link_id = get_u8(&r);
    p->probe_seq = get_var32(&r);
    p->tx_us = get_var(&r);
    if (r.bad)
        return -1;
    p->pad = 0;
    if (type == CTRL_PROBE)
        return r.off != len ? -1 : 0;
    /* The padding's content is not looked at; its length is bounded and must be there. */
    if (len - r.off == 0 || len - r.off > CTRL_PROBE_PAD_MAX)
        return -1;
    p->pad = (uint16_t)(len - r.off);
    return 0;
}

int ctrl_decode_probe_reply(const uint8_t *buf, size_t len, struct ctrl_probe_reply *p)
{
    struct rbuf r = {buf, len, 0, 0};
    if (get_u8(&r) != CTRL_PROBE_REPLY)
        return -1;
    p->link_id = get_u8(&r);
    p->probe_seq = get_var32(&r);
    p->tx_us = get_var(&r);
    p->rx_us = get_var(&r);
    return r.bad || r.off != len ? -1 : 0;
}

int ctrl_decode_feedback(const uint8_t *buf, size_t len, struct ctrl_feedback *f)
{
    struct rbuf r = {buf, len, 0, 0};
    if (get_u8(&r) != CTRL_FEEDBACK)
        return -1;
    f->rx_now_us = get_var(&r);
    f->cum_ack = get_var(&r);
    f->n_links = get_u8(&r);
    if (r.bad || f->n_links > CTRL_MAX_LINKS)
        return -1;
    for (unsigned i = 0; i < f->n_links; i++) {
        struct ctrl_fb_link *l = &f->links[i];
        l->link_id = get_u8(&r);
        l->highest_seq = f->cum_ack + (uint64_t)get_svar(&r);
        l->pkts = get_var32(&r);
        l->bytes = get_var32(&r);
        l->ack_delay_us = get_var32(&r);
        if (r.bad)
            return -1;
    }
    f->n_missing = get_u8(&r);
    if (r.bad || f->n_missing > CTRL_MAX_RANGES)
        return -1;
    uint64_t prev = f->cum_ack;
    for (unsigned i = 0; i < f->n_missing; i++) {
        uint64_t d = get_var(&r);
        uint32_t c = get_var32(&r);
        if (r.bad || d == 0 || c == 0 || d > UINT64_MAX - prev || prev + d > UINT64_MAX - c)
            return -1;
        f->missing[i].first = prev + d;
        f->missing[i].count = c;
        prev = f->missing[i].first + c;
    }
    return r.bad || r.off != len ? -1 : 0;
}

/* Class table: type, n, then per class net(4, big-endian) pfx dscp(0xff = any) mode
 * passenger rate_kbps(varint) n_order order[n_order]. */
size_t ctrl_encode_classes(const struct ctrl_classes *c, uint8_t *buf, size_t len)
{
    if (c->n > CTRL_MAX_CLASSES)
        return 0;
    struct wbuf w = {buf, len, 0, 0};
    put_u8(&w, CTRL_CLASSES);
    put_u8(&w, c->n);
    for (unsigned i = 0; i < c->n; i++) {
        const struct ctrl_class *k = &c->c[i];
        if (k->pfx > 32 || k->dscp < -1 || k->dscp > 63 || k->mode > 2 ||
            k->n_order > CTRL_MAX_LINKS)
            return 0;
        for (int s = 24; s >= 0; s -= 8)
            put_u8(&w, (uint8_t)(k->net >> s));
        put_u8(&w, k->pfx);
        put_u8(&w, k->dscp < 0 ? 0xff : (uint8_t)k->dscp);
        put_u8(&w, k->mode);
        put_u8(&w, k->passenger ? 1 : 0);
        put_var(&w, k->rate_kbps);
        put_u8(&w, k->n_order);
        for (unsigned o = 0; o < k->n_order; o++)
            put_u8(&w, k->order[o]);
    }
    return w.bad ? 0 : w.off;
}

int ctrl_decode_classes(const uint8_t *buf, size_t len, struct ctrl_classes *c)
{
    struct rbuf r = {buf, len, 0, 0};
    if (get_u8(&r) != CTRL_CLASSES)
        return -1;
    c->n = get_u8(&r);
    if (r.bad || c->n > CTRL_MAX_CLASSES)
        return -1;
    for (unsigned i = 0; i < c->n; i++) {
        struct ctrl_class *k = &c->c[i];
        k->net = 0;
        for (int s = 0; s < 4; s++)
            k->net = (k->net << 8) | get_u8(&r);
        k->pfx = get_u8(&r);
        uint8_t d = get_u8(&r);
        k->mode = get_u8(&r);
        k->passenger = get_u8(&r);
        k->rate_kbps = get_var32(&r);
        k->n_order = get_u8(&r);
        if (r.bad || k->pfx > 32 || (d > 63 && d != 0xff) || k->mode > 2 || k->passenger > 1 ||
            k->n_order > CTRL_MAX_LINKS)
            return -1;
        k->dscp = d == 0xff ? -1 : (int8_t)d;
        for (unsigned o = 0; o < k->n_order; o++) {
            k->order[o] = get_u8(&r);
            if (k->order[o] >= CTRL_MAX_LINKS)
                return -1;
        }
        if (r.bad)
            return -1;
        if (k->pfx < 32 && (k->net & ~(k->pfx ? 0xffffffffu << (32 - k->pfx) : 0u)))
            return -1; /* host bits set: not a table our encoder makes */
    }
    return r.bad || r.off != len ? -1 : 0;
}

/* Weights: type, n, then per link: id, weight (2 bytes, big-endian, /65535). */
size_t ctrl_encode_weights(const struct ctrl_weights *w, uint8_t *buf, size_t len)
{
    if (w->n > CTRL_MAX_LINKS)
        return 0;
    struct wbuf b = {buf, len, 0, 0};
    put_u8(&b, CTRL_WEIGHTS);
    put_u8(&b, w->n);
    for (unsigned i = 0; i < w->n; i++) {
        if (w->link_id[i] >= CTRL_MAX_LINKS)
            return 0;
        put_u8(&b, w->link_id[i]);
        put_u8(&b, (uint8_t)(w->w[i] >> 8));
        put_u8(&b, (uint8_t)w->w[i]);
    }
    return b.bad ? 0 : b.off;
}

int ctrl_decode_weights(const uint8_t *buf, size_t len, struct ctrl_weights *w)
{
    struct rbuf r = {buf, len, 0, 0};
    if (get_u8(&r) != CTRL_WEIGHTS)
        return -1;
    w->n = get_u8(&r);
    if (r.bad || w->n > CTRL_MAX_LINKS)
        return -1;
    for (unsigned i = 0; i < w->n; i++) {
        w->link_id[i] = get_u8(&r);
        uint16_t hi = get_u8(&r), lo = get_u8(&r);
        w->w[i] = (uint16_t)(hi << 8 | lo);
        if (r.bad || w->link_id[i] >= CTRL_MAX_LINKS)
            return -1;
        for (unsigned k = 0; k < i; k++)
            if (w->link_id[k] == w->link_id[i])
                return -1; /* one weight per link */
    }
    return r.bad || r.off != len ? -1 : 0;
}

/* ---- receiver side ------------------------------------------------------------------------ */

void ctrl_rx_init(struct ctrl_rx *rx)
{
    memset(rx, 0, sizeof(*rx));
}

static struct ctrl_rx_link *rx_link(struct ctrl_rx *rx, uint8_t link_id)
{
    struct ctrl_rx_link *free_slot = NULL;
    for (unsigned i = 0; i < CTRL_MAX_LINKS; i++) {
        if (rx->link[i].used && rx->link[i].link_id == link_id)
            return &rx->link[i];
        if (!rx->link[i].used && !free_slot)
            free_slot = &rx->link[i];
    }
    if (free_slot) {
        memset(free_slot, 0, sizeof(*free_slot));
        free_slot->used = 1;
        free_slot->link_id = link_id;
    }
    return free_slot;
}

void ctrl_rx_on_data(struct ctrl_rx *rx, uint8_t link_id, uint64_t seq, uint32_t bytes,
                     uint64_t now_us)
{
    struct ctrl_rx_link *l = rx_link(rx, link_id);
    if (!l)
        return; /* more links than a feedback can describe: the peer misbehaves */
    if (seq > l->highest_seq || l->pkts == 0) {
        l->highest_seq = seq;
        l->highest_rx_us = now_us;
    }
    l->pkts++;
    l->bytes += bytes;
    l->last_rx_us = now_us;
    if (l->rate_t0_us == 0)
        l->rate_t0_us = now_us;
    l->rate_bytes += bytes;
    uint64_t dt = now_us - l->rate_t0_us;
    if (dt >= 50000) {
        double r = (double)l->rate_bytes * 1e6 / (double)dt;
        l->rate_Bps = l->rate_Bps > 0 ? 0.75 * l->rate_Bps + 0.25 * r : r;
        l->rate_t0_us = now_us;
        l->rate_bytes = 0;
    }
}

void ctrl_rx_build(const struct ctrl_rx *rx, const struct reorder *rb, uint64_t now_us,
                   struct ctrl_feedback *f)
{
    f->rx_now_us = now_us;
    f->cum_ack = rb ? reorder_cum_ack(rb) : 0;
    f->n_links = 0;
    for (unsigned i = 0; i < CTRL_MAX_LINKS; i++) {
        const struct ctrl_rx_link *l = &rx->link[i];
        if (!l->used || l->pkts == 0)
            continue;
        struct ctrl_fb_link *o = &f->links[f->n_links++];
        o->link_id = l->link_id;
        o->highest_seq = l->highest_seq;
        o->pkts = l->pkts;
        o->bytes = l->bytes;
        uint64_t d = now_us > l->highest_rx_us ? now_us - l->highest_rx_us : 0;
        o->ack_delay_us = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    }
    f->n_missing = 0;
    if (rb) {
        uint64_t firsts[CTRL_MAX_RANGES];
        uint32_t counts[CTRL_MAX_RANGES];
        size_t n = reorder_missing(rb, firsts, counts, CTRL_MAX_RANGES);
        for (size_t i = 0; i < n; i++) {
            f->missing[i].first = firsts[i];
            f->missing[i].count = counts[i];
        }
        f->n_missing = (uint8_t)n;
    }
}

size_t ctrl_rx_due(struct ctrl_rx *rx, uint64_t now_us, int urgent_link, uint8_t *out, size_t max)
{
    size_t n = 0;
    int urgent_done = 0;
    if (urgent_link >= 0 && now_us - rx->last_urgent_us >= 2000) {
        struct ctrl_rx_link *l = rx_link(rx, (uint8_t)urgent_link);
        if (l && n < max) {
            out[n++] = l->link_id;
            l->last_fb_us = now_us;
            l->fb_pkts_seen = l->pkts;
            rx->last_urgent_us = now_us;
            urgent_done = 1;
        }
    }
    for (unsigned i = 0; i < CTRL_MAX_LINKS && n < max; i++) {
        struct ctrl_rx_link *l = &rx->link[i];
        if (!l->used || l->pkts == l->fb_pkts_seen)
            continue;
        if (urgent_done && l->link_id == (uint8_t)urgent_link)
            continue;
        /* ~1% of this link's arrival rate for a ~60-byte feedback (plus tunnel overhead). */
        double iv = l->rate_Bps > 0 ? 100.0 * 100.0 / l->rate_Bps * 1e6 : 100000.0;
        if (iv < 5000.0)
            iv = 5000.0;
        if (iv > 100000.0)
            iv = 100000.0;
        if (now_us - l->last_fb_us >= (uint64_t)iv) {
            out[n++] = l->link_id;
            l->last_fb_us = now_us;
            l->fb_pkts_seen = l->pkts;
        }
    }
    return n;
}
