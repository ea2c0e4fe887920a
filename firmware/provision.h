/* provision: the hub list from the data center (docs/tunnel.md "Hub list provisioning").
 *
 * With tunnel.hubs_url set, a thread owned by the supervisor fetches the vehicle's hub list over
 * HTTPS (libcurl) at start and every hubs_refresh_s, hands a changed list to the tunnel (which
 * keeps its current hub if the list still has it) and caches it in data_dir/hubs.json
 * (written atomically), so a vehicle that boots without the provisioning server uses the last
 * list it got. The hubs' identity key stays pinned in the config: a list only says WHERE to
 * connect, so a forged one can at worst point at hosts that fail the handshake. */
#ifndef CORRIDOR_FIRMWARE_PROVISION_H
#define CORRIDOR_FIRMWARE_PROVISION_H

#include <stddef.h>

#include "firmware/config.h"
#include "firmware/state.h"
#include "firmware/tunnel.h"

#define PROVISION_MAX_BODY (64 * 1024)

/* Parse a hub list document {"hubs": ["a.b.c.d:port", ...]} (1..CFG_MAX_HUBS entries; other
 * keys ignored, so the server can add fields). 0, or -1 with err naming what is wrong. */
int provision_parse(const char *json, size_t len, char hubs[][64], unsigned *n, char *err,
                    size_t errlen);
/* The cached list from data_dir/hubs.json: 0 with hubs/n, or -1 (none or unreadable: err). */
int provision_cache_load(const char *data_dir, char hubs[][64], unsigned *n, char *err,
                         size_t errlen);
/* Write the list atomically (temp file, fsync, rename, fsync of the directory). */
int provision_cache_store(const char *data_dir, char hubs[][64], unsigned n, char *err,
                          size_t errlen);

struct provision;
int provision_start(const struct config *cfg, struct state *st, struct tunnel *t,
                    struct provision **out, char *err, size_t errlen);
void provision_stop(struct provision *p);

#endif
