/* state: shared state owned by firmware/. See state.h. */
#include "firmware/state.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct state {
    pthread_mutex_t lock;
    struct link_state links[CFG_MAX_LINKS];
    unsigned nlinks;
    struct state_event events[STATE_EVENTS];
    uint64_t next_seq;
    uint64_t unknown_samples;
    uint64_t started_mono_ms;
    struct state_tunnel tunnel;
    struct state_position position;
    /* The last AT exchanges per link (diagnostics bundle), a ring each. */
    struct modem_exchange xchg[CFG_MAX_LINKS][STATE_EXCHANGES];
    unsigned xchg_next[CFG_MAX_LINKS], xchg_n[CFG_MAX_LINKS];
};

struct state *state_new(const struct config *cfg)
{
    struct state *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    pthread_mutex_init(&st->lock, NULL);
    st->next_seq = 1;
    st->started_mono_ms = mono_ms();
    for (unsigned i = 0; i < cfg->nlinks; i++) {
        struct link_state *l = &st->links[i];
        str_copy(l->name, cfg->links[i].name, sizeof l->name);
        str_copy(l->interface, cfg->links[i].interface, sizeof l->interface);
        l->has_modem = cfg->links[i].modem.present;
        modem_sample_init(&l->modem);
    }
    st->nlinks = cfg->nlinks;
    return st;
}

void state_free(struct state *st)
{
    if (!st)
        return;
    pthread_mutex_destroy(&st->lock);
    free(st);
}

void state_put_modem(struct state *st, const struct modem_sample *sample)
{
    pthread_mutex_lock(&st->lock);
    bool found = false;
    for (unsigned i = 0; i < st->nlinks; i++) {
        if (strcmp(st->links[i].name, sample->link) == 0) {
            st->links[i].modem = *sample;
            st->links[i].modem_valid = true;
            st->links[i].samples++;
            found = true;
            break;
        }
    }
    if (!found)
        st->unknown_samples++;
    pthread_mutex_unlock(&st->lock);
}

void state_put_exchange(struct state *st, const char *link, const struct modem_exchange *x)
{
    pthread_mutex_lock(&st->lock);
    for (unsigned i = 0; i < st->nlinks; i++) {
        if (strcmp(st->links[i].name, link) == 0) {
            st->xchg[i][st->xchg_next[i]] = *x;
            st->xchg_next[i] = (st->xchg_next[i] + 1) % STATE_EXCHANGES;
            if (st->xchg_n[i] < STATE_EXCHANGES)
                st->xchg_n[i]++;
            break;
        }
    }
    pthread_mutex_unlock(&st->lock);
}

unsigned state_get_exchanges(struct state *st, unsigned link, struct modem_exchange *out,
                             unsigned max)
{
    unsigned n = 0;
    pthread_mutex_lock(&st->lock);
    if (link < st->nlinks) {
        unsigned have = st->xchg_n[link];
        unsigned first = (st->xchg_next[link] + STATE_EXCHANGES - have) % STATE_EXCHANGES;
        unsigned skip = have > max ? have - max : 0; /* the newest max of them */
        for (unsigned k = skip; k < have; k++)
            out[n++] = st->xchg[link][(first + k) % STATE_EXCHANGES];
    }
    pthread_mutex_unlock(&st->lock);
    return n;
}

void state_add_event(struct state *st, const char *source, const char *kind, const char *fmt, ...)
{
    char text[sizeof st->events[0].text];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&st->lock);
    struct state_event *e = &st->events[st->next_seq % STATE_EVENTS];
    e->seq = st->next_seq++;
    e->wall_ms = wall_ms();
    e->mono_ms = mono_ms();
    str_copy(e->source, source, sizeof e->source);
    str_copy(e->kind, kind, sizeof e->kind);
    str_copy(e->text, text, sizeof e->text);
    pthread_mutex_unlock(&st->lock);
}

unsigned state_get_links(struct state *st, struct link_state *out, unsigned max)
{
    pthread_mutex_lock(&st->lock);
    unsigned n = st->nlinks < max ? st->nlinks : max;
    memcpy(out, st->links, n * sizeof *out);
    pthread_mutex_unlock(&st->lock);
    return n;
}

unsigned state_get_events(struct state *st, uint64_t since, struct state_event *out, unsigned max)
{
    pthread_mutex_lock(&st->lock);
    uint64_t first = st->next_seq > STATE_EVENTS ? st->next_seq - STATE_EVENTS : 1;
    if (since + 1 > first)
        first = since + 1;
    unsigned n = 0;
    for (uint64_t s = first; s < st->next_seq && n < max; s++)
        out[n++] = st->events[s % STATE_EVENTS];
    pthread_mutex_unlock(&st->lock);
    return n;
}

uint64_t state_started_mono_ms(struct state *st)
{
    return st->started_mono_ms;
}

uint64_t state_last_event_seq(struct state *st)
{
    pthread_mutex_lock(&st->lock);
    uint64_t s = st->next_seq - 1;
    pthread_mutex_unlock(&st->lock);
    return s;
}

void state_put_link_tunnel(struct state *st, unsigned link_index, const struct state_link_tunnel *t)
{
    pthread_mutex_lock(&st->lock);
    if (link_index < st->nlinks)
        st->links[link_index].tunnel = *t;
    pthread_mutex_unlock(&st->lock);
}

void state_put_tunnel(struct state *st, const struct state_tunnel *t)
{
    pthread_mutex_lock(&st->lock);
    st->tunnel = *t;
    pthread_mutex_unlock(&st->lock);
}

void state_get_tunnel(struct state *st, struct state_tunnel *out)
{
    pthread_mutex_lock(&st->lock);
    *out = st->tunnel;
    pthread_mutex_unlock(&st->lock);
}

void state_put_link_policy(struct state *st, unsigned link_index, const struct state_link_policy *p)
{
    pthread_mutex_lock(&st->lock);
    if (link_index < st->nlinks)
        st->links[link_index].policy = *p;
    pthread_mutex_unlock(&st->lock);
}

void state_put_position(struct state *st, const struct state_position *p)
{
    pthread_mutex_lock(&st->lock);
    st->position = *p;
    pthread_mutex_unlock(&st->lock);
}

void state_get_position(struct state *st, struct state_position *out)
{
    pthread_mutex_lock(&st->lock);
    *out = st->position;
    pthread_mutex_unlock(&st->lock);
}

void state_put_link_sim(struct state *st, unsigned link_index, const struct state_sim *s)
{
    pthread_mutex_lock(&st->lock);
    if (link_index < st->nlinks)
        st->links[link_index].sim = *s;
    pthread_mutex_unlock(&st->lock);
}

bool link_modem_usable(const struct link_state *l)
{
    if (!l->has_modem)
        return true;
    if (!l->modem_valid || l->modem.state != MODEM_ST_POLL)
        return false;
    if (mono_ms() - l->modem.mono_ms > 5000)
        return false; /* polling stalled: the modem thread is recovering it */
    return l->modem.reg == MODEM_REG_HOME || l->modem.reg == MODEM_REG_ROAMING;
}
