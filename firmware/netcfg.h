/* netcfg: the vehicle's kernel routing, made and kept by the daemon (docs/routing.md).
 *
 * With a "routing" section in the config, a thread owned by the supervisor keeps, once a second:
 *   - per link i: routing table table_base+i with a default route out of the link's interface
 *     (via the gateway the main table knows for it, else straight out of a point-to-point
 *     device), and rules "from <link address>" and "oif <interface>" into it, so the tunnel's
 *     socket for that modem leaves through that modem even when every modem hands out the same
 *     subnet and gateway (USB modems in router mode);
 *   - the passengers' LAN (routing.lan) into the tunnel: rule "from LAN" into table
 *     table_base+16 (default dev <tun>), after "from LAN lookup main suppress_prefixlength 0" so
 *     LAN-to-LAN and other directly connected traffic never enters the tunnel; optional
 *     masquerade of the LAN onto the tunnel address (routing.lan_nat);
 *   - multi-WAN fallback: when no hub has answered for routing.fallback_after_s, every NEW LAN
 *     connection is pinned (conntrack mark, hash of source and destination address) to one
 *     usable link and masqueraded out of it, so passengers keep their internet. When a hub
 *     answers again new connections take the tunnel; the pinned ones keep their link until they
 *     end (nothing is cut).
 * Everything it installs lives at its own rule preferences, tables and nftables table
 * ("ip corridor"), is re-created after an unclean exit and removed on stop. */
#ifndef CORRIDOR_FIRMWARE_NETCFG_H
#define CORRIDOR_FIRMWARE_NETCFG_H

#include <stddef.h>

#include "firmware/config.h"
#include "firmware/state.h"

struct netcfg;
/* Checks netlink and nftables access and starts the thread. 0, or -1 with err. */
int netcfg_start(const struct config *cfg, struct state *st, struct netcfg **out, char *err,
                 size_t errlen);
/* Stops the thread and removes every rule, route and the nftables table it installed. */
void netcfg_stop(struct netcfg *n);

#endif
