/* prefix: internal helper of agg/ (not public): longest-prefix match of IPv4 addresses to small
 * integer values, for the hub's routed vehicle LAN prefixes (downlink: which vehicle owns this
 * destination; uplink: may this vehicle send from this source).
 *
 * One open-addressing hash of (network, length) plus a bitmap of the lengths in use: a lookup
 * probes only the lengths that exist, longest first (a fleet uses one or two: /24 per vehicle,
 * maybe a /28 for a camera VLAN). Fixed size after prefix_new(), no allocation per packet. */
#ifndef CORRIDOR_AGG_PREFIX_H
#define CORRIDOR_AGG_PREFIX_H

#include <stddef.h>
#include <stdint.h>

/* A 32-bit integer mixer (lowbias32): spreads addresses over open-addressing tables. */
static inline uint32_t prefix_mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

struct prefix_table;

/* Room for at most max prefixes. NULL when out of memory. */
struct prefix_table *prefix_new(unsigned max);
void prefix_free(struct prefix_table *t);
/* Add net/len (host order; host bits must be clear) -> value (not 0). 0, or -1 when full, the
 * host bits are set, or an OVERLAPPING prefix is already there (a shorter one containing it or
 * a longer one inside it): one owner per address, so a typo cannot steal another vehicle's
 * traffic. *clash (may be NULL) gets the value of the prefix it overlaps. */
int prefix_add(struct prefix_table *t, uint32_t net, unsigned len, uint32_t value, uint32_t *clash);
/* Value of the longest prefix containing addr (host order), 0 if none. */
uint32_t prefix_lookup(const struct prefix_table *t, uint32_t addr);

#endif
