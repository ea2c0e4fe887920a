/* tunnel: firmware's wiring of the bonded tunnel (agg/) into `corridor run`.
 *
 * Maps the "tunnel" config section to the agg client, loads the keys, and once a second
 * (from the supervisor) copies the client's per-link counters into the shared state. The
 * per-link weights come from the policy engine (firmware/steer.c). */
#ifndef CORRIDOR_FIRMWARE_TUNNEL_H
#define CORRIDOR_FIRMWARE_TUNNEL_H

#include <stddef.h>

#include "firmware/config.h"
#include "firmware/state.h"

struct tunnel;
int tunnel_start(const struct config *cfg, struct state *st, struct tunnel **out, char *err,
                 size_t errlen);
/* Once a second from the supervisor: the client's counters into the shared state. */
void tunnel_tick(struct tunnel *t);
/* From the policy engine (firmware/steer.c): per-link weights in config order. NULL-safe. */
void tunnel_set_weights(struct tunnel *t, const double *w, unsigned n);
/* The hub list the tunnel started with (at most CFG_MAX_HUBS): the provisioning cache when
 * tunnel.hubs_url is set and a cache exists, else the config's. Returns the count; NULL-safe
 * (0). The cache is read once, here, so provisioning compares against what the tunnel uses. */
unsigned tunnel_start_hubs(const struct tunnel *t, char hubs[][64]);
/* A new hub list (from provisioning): 0, or -1 with err. NULL-safe (-1). */
int tunnel_set_hubs(struct tunnel *t, char hubs[][64], unsigned n, char *err, size_t errlen);
/* New traffic classes (configuration reload): 0, or -1 with err. NULL-safe (-1). */
int tunnel_set_classes(struct tunnel *t, const struct cfg_tunnel *tc, char *err, size_t errlen);
void tunnel_stop(struct tunnel *t);

#endif
