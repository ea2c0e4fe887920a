/* prefix: longest-prefix match for the hub's routed LAN prefixes. See prefix.h. */
#include "agg/prefix.h"

#include <stdbool.h>
#include <stdlib.h>

struct slot {
    uint32_t net;
    uint8_t len;
    uint32_t value; /* 0 = empty */
};

struct prefix_table {
    struct slot *slot;
    uint32_t mask; /* slots - 1 */
    unsigned n, max;
    uint64_t lens; /* bit L set: some prefix of length L exists */
};

static uint32_t netmask(unsigned len)
{
    return len ? 0xffffffffu << (32 - len) : 0;
}

static uint32_t hash(uint32_t net, unsigned len)
{
    return prefix_mix32(net ^ (len * 0x9e3779b9u));
}

struct prefix_table *prefix_new(unsigned max)
{
    struct prefix_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    uint32_t n = 16;
    while (n < 2u * max + 2u) /* at most half full: short probe chains */
        n <<= 1;
    t->slot = calloc(n, sizeof(*t->slot));
    if (!t->slot) {
        free(t);
        return NULL;
    }
    t->mask = n - 1;
    t->max = max;
    return t;
}

void prefix_free(struct prefix_table *t)
{
    if (!t)
        return;
    free(t->slot);
    free(t);
}

static uint32_t find(const struct prefix_table *t, uint32_t net, unsigned len)
{
    for (uint32_t i = hash(net, len) & t->mask;; i = (i + 1) & t->mask) {
        const struct slot *s = &t->slot[i];
        if (!s->value)
            return 0;
        if (s->net == net && s->len == len)
            return s->value;
    }
}

uint32_t prefix_lookup(const struct prefix_table *t, uint32_t addr)
{
    if (!t || !t->lens)
        return 0;
    for (int len = 32; len >= 0; len--) {
        if (!(t->lens & (1ull << len)))
            continue;
        uint32_t v = find(t, addr & netmask((unsigned)len), (unsigned)len);
        if (v)
            return v;
    }
    return 0;
}

int prefix_add(struct prefix_table *t, uint32_t net, unsigned len, uint32_t value, uint32_t *clash)
{
    if (clash)
        *clash = 0;
    if (len > 32 || value == 0 || (net & ~netmask(len)) || t->n >= t->max)
        return -1;
    /* A shorter (or equal) prefix containing this one? */
    uint32_t v = prefix_lookup(t, net);
    if (v) {
        if (clash)
            *clash = v;
        return -1;
    }
    /* A longer one inside it? */
    for (uint32_t i = 0; i <= t->mask; i++) {
        const struct slot *s = &t->slot[i];
        if (s->value && s->len > len && (s->net & netmask(len)) == net) {
            if (clash)
                *clash = s->value;
            return -1;
        }
    }
    uint32_t i = hash(net, len) & t->mask;
    while (t->slot[i].value)
        i = (i + 1) & t->mask;
    t->slot[i] = (struct slot){net, (uint8_t)len, value};
    t->lens |= 1ull << len;
    t->n++;
    return 0;
}
