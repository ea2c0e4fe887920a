/* tun: internal helper of agg/ (not public): a TUN device (IFF_TUN | IFF_NO_PI, non-blocking)
 * configured with ioctl only (address, prefix, MTU, up): the daemon never shells out. */
#ifndef CORRIDOR_AGG_TUN_H
#define CORRIDOR_AGG_TUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Create (or attach to) TUN device name, set IPv4 address "a.b.c.d/nn", MTU and bring it up.
 * Returns the non-blocking fd, or -1 with err naming the device and the step that failed. */
int tun_open(const char *name, const char *addr_prefix, unsigned mtu, char *err, size_t errlen);

/* Parse "a.b.c.d/nn" (prefix optional: /32) into network-order address and prefix length. */
int tun_parse_prefix(const char *s, uint32_t *addr_be, unsigned *prefix);
/* Route "a.b.c.d/nn" into TUN device name (SIOCADDRT; an existing identical route is fine). */
int tun_add_route(const char *name, const char *prefix, char *err, size_t errlen);

/* ---- IPv4 helpers for the packets crossing the TUN device (no allocation, bounds-checked) -- */
struct agg_class;

struct tun_class {
    uint32_t net_be, mask_be; /* mask 0 = any address */
    int dscp;                 /* -1 = any */
    bool match_dst;           /* the hub matches the vehicle's subnets as destination */
};

/* Parse a configured class; err names it. 0 or -1. */
int tun_class_parse(const struct agg_class *in, struct tun_class *out, char *err, size_t errlen);
/* Scheduler class of a packet: 1 + index of the first matching class, 0 if none. */
unsigned tun_classify(const struct tun_class *cls, unsigned n, const uint8_t *ip, size_t len);
/* Clamp the MSS option of a TCP SYN (or SYN-ACK) in place so that segments fit mtu, fixing
 * the checksum incrementally. No-op for anything else. */
void tun_clamp_mss(uint8_t *ip, size_t len, unsigned mtu);
/* Build an ICMP "fragmentation needed" (type 3 code 4, next-hop MTU = mtu) answering the IPv4
 * packet ip, from src_be. Returns its length, or 0 when none is due (not IPv4, DF clear, ICMP
 * error itself, too short, out too small). */
size_t tun_frag_needed(const uint8_t *ip, size_t len, uint32_t src_be, unsigned mtu, uint8_t *out,
                       size_t outcap);

#endif
