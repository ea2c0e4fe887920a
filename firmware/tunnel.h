/* tunnel: firmware's wiring of the bonded tunnel (agg/) into `corridor run`.
 *
 * Maps the "tunnel" config section to the agg client, loads the keys, and once a second
 * (from the supervisor) copies the client's per-link counters into the shared state and hands
 * the client the per-link weights. The weights come from the live modem state until the
 * coverage-map policy is wired in: a link whose modem is absent, recovering or unregistered is
 * drained (weight 0), every other link gets 1. */
#ifndef CORRIDOR_FIRMWARE_TUNNEL_H
#define CORRIDOR_FIRMWARE_TUNNEL_H

#include <stddef.h>

#include "firmware/config.h"
#include "firmware/state.h"

struct tunnel;
int tunnel_start(const struct config *cfg, struct state *st, struct tunnel **out, char *err,
                 size_t errlen);
/* Once a second from the supervisor: weights in, stats out. */
void tunnel_tick(struct tunnel *t);
void tunnel_stop(struct tunnel *t);

#endif
