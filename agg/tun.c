/* tun: see tun.h. */
#include "agg/tun.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int tun_parse_prefix(const char *s, uint32_t *addr_be, unsigned *prefix)
{
    char buf[64];
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n + 1);
    unsigned pfx = 32;
    char *slash = strchr(buf, '/');
    if (slash) {
        *slash = '\0';
        char *end = NULL;
        long v = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end != '\0' || v < 0 || v > 32)
            return -1;
        pfx = (unsigned)v;
    }
    struct in_addr a;
    if (inet_pton(AF_INET, buf, &a) != 1)
        return -1;
    *addr_be = a.s_addr;
    *prefix = pfx;
    return 0;
}

static int set_addr(int sock, const char *name, unsigned long req, uint32_t addr_be)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = addr_be;
    return ioctl(sock, req, &ifr);
}

int tun_open(const char *name, const char *addr_prefix, unsigned mtu, char *err, size_t errlen)
{
    uint32_t addr = 0;
    unsigned pfx = 0;
    if (!name || !*name || strlen(name) >= IFNAMSIZ) {
        snprintf(err, errlen, "tun: bad device name");
        return -1;
    }
    if (tun_parse_prefix(addr_prefix, &addr, &pfx) != 0) {
        snprintf(err, errlen, "tun %s: bad address '%s' (want a.b.c.d/nn)", name, addr_prefix);
        return -1;
    }
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "tun %s: open /dev/net/tun: %s", name, strerror(errno));
        return -1;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        snprintf(err, errlen, "tun %s: TUNSETIFF: %s", name, strerror(errno));
        close(fd);
        return -1;
    }
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) {
        snprintf(err, errlen, "tun %s: socket: %s", name, strerror(errno));
        close(fd);
        return -1;
    }
    const char *step = NULL;
    uint32_t mask = pfx ? htonl(0xffffffffu << (32 - pfx)) : 0;
    if (set_addr(sock, name, SIOCSIFADDR, addr) < 0)
        step = "set address";
    else if (set_addr(sock, name, SIOCSIFNETMASK, mask) < 0)
        step = "set netmask";
    if (!step) {
        memset(&ifr, 0, sizeof(ifr));
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
        ifr.ifr_mtu = (int)mtu;
        if (ioctl(sock, SIOCSIFMTU, &ifr) < 0)
            step = "set MTU";
    }
    if (!step) {
        memset(&ifr, 0, sizeof(ifr));
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
        if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) {
            step = "get flags";
        } else {
            ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
            if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)
                step = "bring up";
        }
    }
    if (step) {
        snprintf(err, errlen, "tun %s: %s: %s", name, step, strerror(errno));
        close(sock);
        close(fd);
        return -1;
    }
    /* Queue length: the default 500 drops bursts the scheduler could have spread. */
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    ifr.ifr_qlen = 1000;
    (void)ioctl(sock, SIOCSIFTXQLEN, &ifr);
    close(sock);
    return fd;
}

/* ---- IPv4 helpers --------------------------------------------------------------------------- */
#include "agg/agg.h"

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t csum(const uint8_t *p, size_t len, uint32_t sum)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += get16(p + i);
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

int tun_class_parse(const struct agg_class *in, struct tun_class *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->dscp = in->dscp;
    if (in->dscp < -1 || in->dscp > 63) {
        snprintf(err, errlen, "class %s: dscp %d not in -1..63", in->name, in->dscp);
        return -1;
    }
    if (in->src_subnet[0]) {
        uint32_t a;
        unsigned pfx;
        if (tun_parse_prefix(in->src_subnet, &a, &pfx) != 0) {
            snprintf(err, errlen, "class %s: src_subnet '%s' is not a.b.c.d/nn", in->name,
                     in->src_subnet);
            return -1;
        }
        out->mask_be = pfx ? htonl(0xffffffffu << (32 - pfx)) : 0;
        out->net_be = a & out->mask_be;
        if (pfx == 0)
            out->mask_be = 0;
    }
    return 0;
}

unsigned tun_classify(const struct tun_class *cls, unsigned n, const uint8_t *ip, size_t len)
{
    if (n == 0 || len < 20 || (ip[0] >> 4) != 4)
        return 0;
    uint32_t src, dst;
    memcpy(&src, ip + 12, 4);
    memcpy(&dst, ip + 16, 4);
    int dscp = ip[1] >> 2;
    for (unsigned i = 0; i < n; i++) {
        uint32_t a = cls[i].match_dst ? dst : src;
        if (cls[i].mask_be && (a & cls[i].mask_be) != cls[i].net_be)
            continue;
        if (cls[i].dscp >= 0 && cls[i].dscp != dscp)
            continue;
        return i + 1;
    }
    return 0;
}

void tun_clamp_mss(uint8_t *ip, size_t len, unsigned mtu)
{
    if (len < 40 || (ip[0] >> 4) != 4 || ip[9] != 6)
        return;
    size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
    if (ihl < 20 || (get16(ip + 6) & 0x1fff) != 0 || len < ihl + 20)
        return;
    uint8_t *tcp = ip + ihl;
    if (!(tcp[13] & 0x02)) /* SYN */
        return;
    size_t doff = (size_t)(tcp[12] >> 4) * 4;
    if (doff < 20 || ihl + doff > len)
        return;
    uint16_t limit = (uint16_t)(mtu > 40 ? mtu - 40 : 536);
    for (size_t o = 20; o < doff;) {
        uint8_t kind = tcp[o];
        if (kind == 0)
            break;
        if (kind == 1) {
            o++;
            continue;
        }
        if (o + 1 >= doff || tcp[o + 1] < 2 || o + tcp[o + 1] > doff)
            break;
        if (kind == 2 && tcp[o + 1] == 4) {
            uint16_t mss = get16(tcp + o + 2);
            if (mss > limit) {
                /* RFC 1624: HC' = ~(~HC + ~m + m') */
                uint32_t s = (uint16_t)~get16(tcp + 16);
                s += (uint16_t)~mss;
                s += limit;
                while (s >> 16)
                    s = (s & 0xffff) + (s >> 16);
                put16(tcp + 16, (uint16_t)~s);
                put16(tcp + o + 2, limit);
            }
            return;
        }
        o += tcp[o + 1];
    }
}

size_t tun_frag_needed(const uint8_t *ip, size_t len, uint32_t src_be, unsigned mtu, uint8_t *out,
                       size_t outcap)
{
    if (len < 20 || (ip[0] >> 4) != 4)
        return 0;
    size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
    if (ihl < 20 || ihl > len || !(get16(ip + 6) & 0x4000)) /* DF clear: not ours to answer */
        return 0;
    if (ip[9] == 1 && len > ihl && ip[ihl] != 8 && ip[ihl] != 0)
        return 0; /* never answer an ICMP error with an error */
    size_t quote = ihl + 8 <= len ? ihl + 8 : len;
    size_t n = 20 + 8 + quote;
    if (n > outcap)
        return 0;
    memset(out, 0, 28);
    out[0] = 0x45;
    put16(out + 2, (uint16_t)n);
    out[8] = 64;
    out[9] = 1;
    memcpy(out + 12, &src_be, 4);
    memcpy(out + 16, ip + 12, 4); /* back to the sender */
    put16(out + 10, csum(out, 20, 0));
    uint8_t *ic = out + 20;
    ic[0] = 3;
    ic[1] = 4;
    put16(ic + 6, (uint16_t)mtu);
    memcpy(ic + 8, ip, quote);
    put16(ic + 2, csum(ic, 8 + quote, 0));
    return n;
}

int tun_add_route(const char *name, const char *prefix, char *err, size_t errlen)
{
    uint32_t a_be;
    unsigned len;
    if (tun_parse_prefix(prefix, &a_be, &len) != 0) {
        snprintf(err, errlen, "tun %s: bad route '%s'", name, prefix);
        return -1;
    }
    struct rtentry rt;
    memset(&rt, 0, sizeof(rt));
    struct sockaddr_in *dst = (struct sockaddr_in *)(void *)&rt.rt_dst;
    struct sockaddr_in *mask = (struct sockaddr_in *)(void *)&rt.rt_genmask;
    dst->sin_family = AF_INET;
    mask->sin_family = AF_INET;
    mask->sin_addr.s_addr = htonl(len ? 0xffffffffu << (32 - len) : 0);
    dst->sin_addr.s_addr = a_be & mask->sin_addr.s_addr;
    rt.rt_flags = RTF_UP;
    char dev[IFNAMSIZ];
    snprintf(dev, sizeof(dev), "%s", name);
    rt.rt_dev = dev;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "tun %s: route %s: socket: %s", name, prefix, strerror(errno));
        return -1;
    }
    int rc = ioctl(fd, SIOCADDRT, &rt);
    int e = errno;
    close(fd);
    if (rc != 0 && e != EEXIST) {
        snprintf(err, errlen, "tun %s: route %s: %s", name, prefix, strerror(e));
        return -1;
    }
    return 0;
}
