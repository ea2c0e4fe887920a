/* netplan: what the kernel should hold for the vehicle's routing (pure; firmware/netcfg.c
 * applies it). Split out so the rules can be unit-tested without netlink or root. */
#ifndef CORRIDOR_FIRMWARE_NETPLAN_H
#define CORRIDOR_FIRMWARE_NETPLAN_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "firmware/config.h"

#define NC_MAX_LINKS 16
#define NC_TUN_TABLE 16 /* offset of the tunnel's table from table_base */
#define NC_MAX_RULES (NC_MAX_LINKS * 3 + CFG_MAX_LAN * 2)
#define NC_NFT_TABLE "corridor"
#define NC_NFT_MAX   4096
#define NC_PREF_MAIN 0 /* from LAN lookup main suppress_prefixlength 0 */
#define NC_PREF_MARK 1 /* fwmark -> link table (fallback connections) */
#define NC_PREF_SRC  2 /* from link address -> link table */
#define NC_PREF_OIF  3 /* oif link interface -> link table */
#define NC_PREF_TUN  4 /* from LAN -> tunnel table */
#define NC_PREF_SPAN 5

struct nc_link_in {
    char ifname[IFNAMSIZ];
    unsigned ifindex; /* 0 = interface absent */
    uint32_t addr;    /* host order, 0 = no IPv4 address */
    uint32_t gw;      /* host order, 0 = none known: route straight out of the device */
    bool usable;      /* the modem says it can carry traffic */
};

struct nc_input {
    const struct cfg_routing *cfg;
    unsigned nlinks;
    struct nc_link_in links[NC_MAX_LINKS];
    char tun[IFNAMSIZ];   /* "" = no tunnel configured */
    unsigned tun_ifindex; /* 0 = the TUN device does not exist (yet) */
    bool fallback_active;
};

struct nc_rule {
    uint32_t pref, table;
    uint32_t src; /* host order */
    uint8_t src_len;
    char oif[IFNAMSIZ];
    uint32_t fwmark; /* 0 = none */
    bool suppress0;  /* suppress_prefixlength 0 */
};

struct nc_route {
    uint32_t table;
    unsigned ifindex;
    uint32_t gw; /* 0 = device route */
};

struct nc_plan {
    struct nc_rule rules[NC_MAX_RULES];
    unsigned nrules;
    struct nc_route routes[NC_MAX_LINKS + 1];
    unsigned nroutes;
    unsigned nfallback; /* links new LAN connections are spread over (fallback active) */
    char nft[NC_NFT_MAX];
    bool nft_ok; /* the script fitted */
};

/* Plan rules, routes and the nftables script for the input. */
void nc_plan(const struct nc_input *in, struct nc_plan *p);
/* A link takes part in routing when its interface exists with an IPv4 address. */
bool nc_link_routable(const struct nc_link_in *l);

#endif
