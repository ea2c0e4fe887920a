/* linkemu_model: parameters, scenario parsing and the shaping model of corridor-linkemu. */
#include "linkemu_model.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"

const char *const le_verdict_name[LE_DROP_N] = {"pass", "down",     "queue", "loss",
                                                "pool", "oversize", "txerr"};

void le_params_default(struct le_params *p)
{
    memset(p, 0, sizeof(*p));
    p->queue_ms = LE_DEFAULT_QMS;
    p->up = true;
}

uint32_t le_queue_limit(const struct le_params *p)
{
    if (p->rate_bps == 0)
        return 0;
    uint64_t b = p->queue_bytes;
    if (b == 0)
        b = p->rate_bps / 8 * p->queue_ms / 1000;
    if (b < LE_MIN_QBYTES)
        b = LE_MIN_QBYTES;
    return b > UINT32_MAX ? UINT32_MAX : (uint32_t)b;
}

void le_patch_apply(const struct le_patch *pt, struct le_params *p)
{
    const struct le_params *v = &pt->v;
    if (pt->mask & LE_F_RATE)
        p->rate_bps = v->rate_bps;
    if (pt->mask & LE_F_DELAY)
        p->delay_us = v->delay_us;
    if (pt->mask & LE_F_JITTER)
        p->jitter_us = v->jitter_us;
    if (pt->mask & LE_F_JDIST)
        p->jitter_dist = v->jitter_dist;
    if (pt->mask & LE_F_REORDER)
        p->reorder = v->reorder;
    if (pt->mask & LE_F_LOSS)
        p->loss = v->loss;
    if (pt->mask & LE_F_GILBERT) {
        p->gilbert = v->gilbert;
        p->ge_p = v->ge_p;
        p->ge_r = v->ge_r;
        p->ge_loss_bad = v->ge_loss_bad;
    }
    if (pt->mask & LE_F_QUEUE) {
        p->queue_bytes = v->queue_bytes;
        p->queue_ms = v->queue_ms;
    }
    if (pt->mask & LE_F_UP)
        p->up = v->up;
}

/* ---- value parsers ---- */

/* Split "12.5Mbit" into a non-negative finite number and its suffix. */
static bool num_suffix(const char *s, double *val, const char **suffix)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return false;
    errno = 0;
    char *end;
    double d = strtod(s, &end);
    if (end == s || errno || !isfinite(d) || d < 0)
        return false;
    *val = d;
    *suffix = end;
    return true;
}

bool le_parse_rate(const char *s, uint64_t *bps)
{
    double d;
    const char *suf;
    if (s && (strcasecmp(s, "unlimited") == 0 || strcasecmp(s, "none") == 0)) {
        *bps = 0;
        return true;
    }
    if (!num_suffix(s, &d, &suf))
        return false;
    double mul = 1;
    if (*suf == 'k' || *suf == 'K')
        mul = 1e3, suf++;
    else if (*suf == 'm' || *suf == 'M')
        mul = 1e6, suf++;
    else if (*suf == 'g' || *suf == 'G')
        mul = 1e9, suf++;
    if (*suf && strcasecmp(suf, "bit") != 0 && strcasecmp(suf, "bps") != 0 &&
        strcasecmp(suf, "bit/s") != 0)
        return false;
    d *= mul;
    if (d > 1e11)
        return false;
    *bps = (uint64_t)(d + 0.5);
    return true;
}

bool le_parse_time_us(const char *s, uint32_t *us)
{
    double d;
    const char *suf;
    if (!num_suffix(s, &d, &suf))
        return false;
    double mul;
    if (*suf == 0 || strcmp(suf, "ms") == 0)
        mul = 1e3;
    else if (strcmp(suf, "us") == 0)
        mul = 1;
    else if (strcmp(suf, "s") == 0)
        mul = 1e6;
    else
        return false;
    d *= mul;
    if (d > 3600e6) /* an hour of delay is certainly a typo */
        return false;
    *us = (uint32_t)(d + 0.5);
    return true;
}

bool le_parse_prob(const char *s, double *p)
{
    double d;
    const char *suf;
    if (!num_suffix(s, &d, &suf))
        return false;
    if (strcmp(suf, "%") == 0)
        d /= 100;
    else if (*suf)
        return false;
    if (d > 1)
        return false;
    *p = d;
    return true;
}

bool le_parse_bytes(const char *s, uint32_t *bytes)
{
    double d;
    const char *suf;
    if (!num_suffix(s, &d, &suf))
        return false;
    if (*suf == 'k' || *suf == 'K')
        d *= 1e3, suf++;
    else if (*suf == 'm' || *suf == 'M')
        d *= 1e6, suf++;
    if (*suf && strcmp(suf, "B") != 0 && strcmp(suf, "b") != 0)
        return false;
    if (d > 1e9)
        return false;
    *bytes = (uint32_t)(d + 0.5);
    return true;
}

static bool parse_bool(const char *s, bool *b)
{
    if (!strcmp(s, "1") || !strcasecmp(s, "on") || !strcasecmp(s, "yes") || !strcasecmp(s, "true"))
        *b = true;
    else if (!strcmp(s, "0") || !strcasecmp(s, "off") || !strcasecmp(s, "no") ||
             !strcasecmp(s, "false"))
        *b = false;
    else
        return false;
    return true;
}

/* gilbert=p,r[,lossbad]  (each a probability, "%" allowed); "gilbert=off" disables */
static bool parse_gilbert(char *s, struct le_params *v)
{
    if (!strcasecmp(s, "off") || !strcmp(s, "0")) {
        v->gilbert = false;
        v->ge_p = v->ge_r = v->ge_loss_bad = 0;
        return true;
    }
    char *parts[3] = {0};
    int n = 0;
    for (char *save = NULL, *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == 3)
            return false;
        parts[n++] = t;
    }
    if (n < 2)
        return false;
    double lb = 1.0;
    if (!le_parse_prob(parts[0], &v->ge_p) || !le_parse_prob(parts[1], &v->ge_r) ||
        (n == 3 && !le_parse_prob(parts[2], &lb)))
        return false;
    if (v->ge_r <= 0) /* never leaving the bad state is a dead link: say "down" instead */
        return false;
    v->ge_loss_bad = lb;
    v->gilbert = true;
    return true;
}

int le_patch_parse(char *s, struct le_patch *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    le_params_default(&out->v);
    out->dirs = LE_DIR_BOTH;
    bool first = true;
    for (char *save = NULL, *t = strtok_r(s, " \t\r\n", &save); t;
         t = strtok_r(NULL, " \t\r\n", &save), first = false) {
        if (first && (!strcmp(t, "ul") || !strcmp(t, "dl") || !strcmp(t, "both"))) {
            out->dirs = t[0] == 'u' ? LE_DIR_UL : t[0] == 'd' ? LE_DIR_DL : LE_DIR_BOTH;
            continue;
        }
        if (!strcmp(t, "up") || !strcmp(t, "down")) {
            out->mask |= LE_F_UP;
            out->v.up = t[0] == 'u';
            continue;
        }
        char *eq = strchr(t, '=');
        if (!eq || eq == t || !eq[1]) {
            snprintf(err, errlen, "bad token '%s' (want key=value)", t);
            return -1;
        }
        *eq = 0;
        const char *k = t;
        char *v = eq + 1;
        bool ok;
        if (!strcmp(k, "rate")) {
            ok = le_parse_rate(v, &out->v.rate_bps), out->mask |= LE_F_RATE;
        } else if (!strcmp(k, "delay")) {
            ok = le_parse_time_us(v, &out->v.delay_us), out->mask |= LE_F_DELAY;
        } else if (!strcmp(k, "jitter")) {
            ok = le_parse_time_us(v, &out->v.jitter_us), out->mask |= LE_F_JITTER;
        } else if (!strcmp(k, "jitterdist")) {
            ok = !strcmp(v, "uniform") || !strcmp(v, "normal");
            out->v.jitter_dist = v[0] == 'n' ? LE_JITTER_NORMAL : LE_JITTER_UNIFORM;
            out->mask |= LE_F_JDIST;
        } else if (!strcmp(k, "reorder")) {
            ok = parse_bool(v, &out->v.reorder), out->mask |= LE_F_REORDER;
        } else if (!strcmp(k, "loss")) {
            ok = le_parse_prob(v, &out->v.loss), out->mask |= LE_F_LOSS;
        } else if (!strcmp(k, "gilbert")) {
            ok = parse_gilbert(v, &out->v), out->mask |= LE_F_GILBERT;
        } else if (!strcmp(k, "queue")) {
            size_t l = strlen(v);
            out->mask |= LE_F_QUEUE;
            if (l >= 2 && (v[l - 1] == 's')) { /* ms / us / s: a time */
                uint32_t us = 0;
                ok = le_parse_time_us(v, &us) && us >= 1000;
                out->v.queue_ms = us / 1000;
                out->v.queue_bytes = 0;
            } else {
                ok = le_parse_bytes(v, &out->v.queue_bytes) && out->v.queue_bytes > 0;
            }
        } else if (!strcmp(k, "state")) {
            ok = !strcmp(v, "up") || !strcmp(v, "down");
            out->v.up = v[0] == 'u';
            out->mask |= LE_F_UP;
        } else {
            snprintf(err, errlen, "unknown key '%s'", k);
            return -1;
        }
        if (!ok) {
            snprintf(err, errlen, "bad value '%s' for %s", v, k);
            return -1;
        }
    }
    return 0;
}

/* ---- scenario ---- */

void le_scenario_init(struct le_scenario *sc)
{
    memset(sc, 0, sizeof(*sc));
    le_params_default(&sc->init[LE_UL]);
    le_params_default(&sc->init[LE_DL]);
}

void le_scenario_free(struct le_scenario *sc)
{
    free(sc->ev);
    sc->ev = NULL;
    sc->n_ev = sc->cap_ev = 0;
}

static int add_event(struct le_scenario *sc, uint64_t at_ms, const struct le_patch *pt, char *err,
                     size_t errlen)
{
    if (sc->n_ev == LE_MAX_EVENTS) {
        snprintf(err, errlen, "more than %d events", LE_MAX_EVENTS);
        return -1;
    }
    if (sc->n_ev == sc->cap_ev) {
        size_t nc = sc->cap_ev ? sc->cap_ev * 2 : 16;
        struct le_event *ne = realloc(sc->ev, nc * sizeof(*ne));
        if (!ne) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        sc->ev = ne;
        sc->cap_ev = nc;
    }
    /* insertion keeps the list sorted and stable (same time: file order) */
    size_t i = sc->n_ev;
    while (i > 0 && sc->ev[i - 1].at_ms > at_ms) {
        sc->ev[i] = sc->ev[i - 1];
        i--;
    }
    sc->ev[i].at_ms = at_ms;
    sc->ev[i].patch = *pt;
    sc->n_ev++;
    return 0;
}

/* "link 2 ...", "link all ...", "at 2.5s link 2 ...", "links 3", "mode shared" */
int le_scenario_line(struct le_scenario *sc, unsigned link, char *line, char *err, size_t errlen)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = 0;
    char *save = NULL;
    char *t = strtok_r(line, " \t\r\n", &save);
    if (!t)
        return 0;
    if (!strcmp(t, "links") || !strcmp(t, "mode") || !strcmp(t, "seed"))
        return 0; /* lab-level settings, handled by lab.sh */
    bool timed = false;
    uint64_t at_ms = 0;
    if (!strcmp(t, "at")) {
        char *ts = strtok_r(NULL, " \t\r\n", &save);
        double d;
        const char *suf;
        if (!ts || !num_suffix(ts, &d, &suf)) {
            snprintf(err, errlen, "'at' needs a time");
            return -1;
        }
        if (strcmp(suf, "s") == 0)
            d *= 1000;
        else if (*suf && strcmp(suf, "ms") != 0) {
            snprintf(err, errlen, "bad time '%s'", ts);
            return -1;
        }
        if (d > 1e10) {
            snprintf(err, errlen, "time '%s' too large", ts);
            return -1;
        }
        at_ms = (uint64_t)(d + 0.5);
        timed = true;
        t = strtok_r(NULL, " \t\r\n", &save);
    }
    if (!t || strcmp(t, "link") != 0) {
        snprintf(err, errlen, "expected 'link <n|all>'");
        return -1;
    }
    char *ls = strtok_r(NULL, " \t\r\n", &save);
    long ln = 0;
    if (!ls || (strcmp(ls, "all") != 0 && (!str_to_long(ls, &ln) || ln < 1 || ln > 64))) {
        snprintf(err, errlen, "bad link number '%s'", ls ? ls : "");
        return -1;
    }
    struct le_patch pt;
    /* parse even lines for other links so a typo anywhere is reported by every emulator */
    if (le_patch_parse(save ? save : (char *)"", &pt, err, errlen) < 0)
        return -1;
    if (ln != 0 && (unsigned long)ln != link)
        return 0;
    if (timed)
        return add_event(sc, at_ms, &pt, err, errlen);
    if (pt.dirs & LE_DIR_UL)
        le_patch_apply(&pt, &sc->init[LE_UL]);
    if (pt.dirs & LE_DIR_DL)
        le_patch_apply(&pt, &sc->init[LE_DL]);
    return 0;
}

int le_scenario_load(struct le_scenario *sc, unsigned link, const char *path, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char line[LE_MAX_LINE];
    unsigned lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        size_t l = strlen(line);
        if (l == sizeof(line) - 1 && line[l - 1] != '\n' && !feof(f)) {
            snprintf(err, errlen, "%s:%u: line too long", path, lineno);
            rc = -1;
            break;
        }
        char e[160];
        if (le_scenario_line(sc, link, line, e, sizeof(e)) < 0) {
            snprintf(err, errlen, "%s:%u: %s", path, lineno, e);
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

/* ---- RNG ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void le_rng_seed(struct le_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t le_rng_next(struct le_rng *r)
{
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

double le_rng_u01(struct le_rng *r)
{
    return (double)(le_rng_next(r) >> 11) * 0x1.0p-53;
}

double le_rng_normal(struct le_rng *r)
{
    double u1 = le_rng_u01(r), u2 = le_rng_u01(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* ---- direction model ---- */

void le_dir_init(struct le_dir *d, const struct le_params *p)
{
    memset(d, 0, sizeof(*d));
    d->p = *p;
}

void le_dir_set(struct le_dir *d, const struct le_params *p, uint64_t now_ns)
{
    bool was_up = d->p.up;
    d->p = *p;
    if (!p->gilbert)
        d->ge_bad = false;
    if (!was_up && p->up) {
        d->link_free_ns = now_ns;
        d->last_deliver_ns = now_ns;
    }
}

static bool draw_loss(struct le_dir *d, struct le_rng *rng)
{
    const struct le_params *p = &d->p;
    if (p->gilbert) {
        /* state transition first, then loss in the state we are in (Gilbert-Elliott) */
        if (d->ge_bad) {
            if (le_rng_u01(rng) < p->ge_r)
                d->ge_bad = false;
        } else if (le_rng_u01(rng) < p->ge_p) {
            d->ge_bad = true;
        }
        double pl = d->ge_bad ? p->ge_loss_bad : p->loss;
        return pl > 0 && le_rng_u01(rng) < pl;
    }
    return p->loss > 0 && le_rng_u01(rng) < p->loss;
}

enum le_verdict le_dir_admit(struct le_dir *d, struct le_rng *rng, uint64_t now_ns, uint32_t bytes,
                             uint64_t *deliver_ns)
{
    const struct le_params *p = &d->p;
    d->st.rx_pkts++;
    d->st.rx_bytes += bytes;
    if (!p->up) {
        d->st.drops[LE_DROP_DOWN]++;
        return LE_DROP_DOWN;
    }
    uint64_t t = now_ns;
    if (p->rate_bps) {
        uint64_t start = d->link_free_ns > now_ns ? d->link_free_ns : now_ns;
        /* tail drop: the bytes still waiting to be serialised plus this packet */
        uint64_t backlog_ns = start - now_ns;
        uint64_t backlog_b = (uint64_t)((double)backlog_ns * (double)p->rate_bps / 8e9);
        if (backlog_ns > 0 && backlog_b + bytes > le_queue_limit(p)) {
            d->st.drops[LE_DROP_QUEUE]++;
            return LE_DROP_QUEUE;
        }
        t = start + (uint64_t)bytes * 8000000000ull / p->rate_bps;
        d->link_free_ns = t;
    }
    /* lost packets used the radio (they were serialised) but never arrive */
    if (draw_loss(d, rng)) {
        d->st.drops[LE_DROP_LOSS]++;
        return LE_DROP_LOSS;
    }
    int64_t extra = (int64_t)p->delay_us * 1000;
    if (p->jitter_us) {
        double j = p->jitter_dist == LE_JITTER_NORMAL
                       ? le_rng_normal(rng) * p->jitter_us
                       : (le_rng_u01(rng) * 2.0 - 1.0) * p->jitter_us;
        extra += (int64_t)(j * 1000);
        if (extra < 0)
            extra = 0;
    }
    t += (uint64_t)extra;
    if (!p->reorder) {
        if (t < d->last_deliver_ns)
            t = d->last_deliver_ns;
        d->last_deliver_ns = t;
    }
    *deliver_ns = t;
    return LE_PASS;
}

void le_dir_format(const struct le_dir *d, const char *name, char *buf, size_t n)
{
    const struct le_dir_stats *s = &d->st;
    size_t off = 0;
    double secs = s->last_tx_ns > s->first_tx_ns ? (s->last_tx_ns - s->first_tx_ns) / 1e9 : 0;
    str_appendf(buf, n, &off, "%s: rx %llu pkts %llu B, tx %llu pkts %llu B, drops", name,
                (unsigned long long)s->rx_pkts, (unsigned long long)s->rx_bytes,
                (unsigned long long)s->tx_pkts, (unsigned long long)s->tx_bytes);
    for (int i = 1; i < LE_DROP_N; i++)
        str_appendf(buf, n, &off, " %s=%llu", le_verdict_name[i], (unsigned long long)s->drops[i]);
    str_appendf(buf, n, &off, ", rate %.3f Mbit/s, mean delay %.3f ms",
                secs > 0 ? s->tx_bytes * 8 / secs / 1e6 : 0.0,
                s->tx_pkts ? s->delay_sum_ns / 1e6 / s->tx_pkts : 0.0);
}

/* ---- heap ---- */

int le_heap_init(struct le_heap *h, size_t cap)
{
    h->a = calloc(cap ? cap : 1, sizeof(*h->a));
    h->n = 0;
    h->cap = cap;
    return h->a ? 0 : -1;
}

void le_heap_free(struct le_heap *h)
{
    free(h->a);
    h->a = NULL;
    h->n = h->cap = 0;
}

static inline bool hless(const struct le_hent *a, const struct le_hent *b)
{
    return a->key < b->key || (a->key == b->key && a->seq < b->seq);
}

int le_heap_push(struct le_heap *h, struct le_hent e)
{
    if (h->n == h->cap)
        return -1;
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!hless(&e, &h->a[parent]))
            break;
        h->a[i] = h->a[parent];
        i = parent;
    }
    h->a[i] = e;
    return 0;
}

const struct le_hent *le_heap_top(const struct le_heap *h)
{
    return h->n ? &h->a[0] : NULL;
}

void le_heap_pop(struct le_heap *h)
{
    if (!h->n)
        return;
    struct le_hent last = h->a[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && hless(&h->a[c + 1], &h->a[c]))
            c++;
        if (!hless(&h->a[c], &last))
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (n)
        h->a[i] = last;
}
