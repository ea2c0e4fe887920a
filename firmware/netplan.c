/* netplan: the routing plan, pure. See netplan.h and docs/routing.md. */
#include "firmware/netplan.h"

#include <linux/rtnetlink.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool parse_subnet(const char *s, uint32_t *addr, uint8_t *len)
{
    unsigned a, b, c, d, l;
    if (sscanf(s, "%u.%u.%u.%u/%u", &a, &b, &c, &d, &l) != 5 || a > 255 || b > 255 || c > 255 ||
        d > 255 || l > 32)
        return false;
    *addr = (a << 24) | (b << 16) | (c << 8) | d;
    *len = (uint8_t)l;
    return true;
}

/* Append to a NUL-terminated buffer; truncation shows as a full buffer (checked by callers). */
static void appendf(char *buf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void appendf(char *buf, size_t n, const char *fmt, ...)
{
    size_t off = strnlen(buf, n);
    if (off + 1 >= n)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + off, n - off, fmt, ap);
    va_end(ap);
}

static void add_rule(struct nc_plan *p, const struct nc_rule *r)
{
    if (p->nrules < NC_MAX_RULES)
        p->rules[p->nrules++] = *r;
}

bool nc_link_routable(const struct nc_link_in *l)
{
    return l->ifindex && l->addr;
}

void nc_plan(const struct nc_input *in, struct nc_plan *p)
{
    const struct cfg_routing *cfg = in->cfg;
    memset(p, 0, sizeof *p);
    bool tunnel = in->tun[0] && in->tun_ifindex;
    /* LAN traffic to anything the main table knows specifically (other LANs, the modems' own
     * subnets) stays out of the tunnel and out of the fallback marks. */
    for (unsigned k = 0; k < cfg->nlan; k++) {
        struct nc_rule r = {
            .pref = cfg->rule_pref + NC_PREF_MAIN, .table = RT_TABLE_MAIN, .suppress0 = true};
        parse_subnet(cfg->lan[k], &r.src, &r.src_len);
        add_rule(p, &r);
    }
    for (unsigned i = 0; i < in->nlinks; i++) {
        const struct nc_link_in *l = &in->links[i];
        if (!nc_link_routable(l))
            continue;
        uint32_t table = cfg->table_base + i;
        p->routes[p->nroutes++] = (struct nc_route){table, l->ifindex, l->gw};
        struct nc_rule mark = {
            .pref = cfg->rule_pref + NC_PREF_MARK, .table = table, .fwmark = cfg->fwmark_base + i};
        add_rule(p, &mark);
        /* Several modems in router mode hand out the same address: a "from" rule could not tell
         * them apart (the first would win), so such links rely on the oif rule alone (their
         * sockets are bound to the device). */
        bool shared = false;
        for (unsigned k = 0; k < in->nlinks; k++)
            if (k != i && nc_link_routable(&in->links[k]) && in->links[k].addr == l->addr)
                shared = true;
        if (!shared) {
            struct nc_rule src = {.pref = cfg->rule_pref + NC_PREF_SRC,
                                  .table = table,
                                  .src = l->addr,
                                  .src_len = 32};
            add_rule(p, &src);
        }
        struct nc_rule oif = {.pref = cfg->rule_pref + NC_PREF_OIF, .table = table};
        str_copy(oif.oif, l->ifname, sizeof oif.oif);
        add_rule(p, &oif);
    }
    if (tunnel) {
        uint32_t table = cfg->table_base + NC_TUN_TABLE;
        p->routes[p->nroutes++] = (struct nc_route){table, in->tun_ifindex, 0};
        for (unsigned k = 0; k < cfg->nlan; k++) {
            struct nc_rule r = {.pref = cfg->rule_pref + NC_PREF_TUN, .table = table};
            parse_subnet(cfg->lan[k], &r.src, &r.src_len);
            add_rule(p, &r);
        }
    }

    /* nftables: marks for new fallback connections, the marks of pinned connections onto
     * their packets (original direction only: a reply marked too would be routed back out of
     * the modem instead of to the passenger), and masquerading. */
    char lan[256] = "";
    for (unsigned k = 0; k < cfg->nlan; k++)
        appendf(lan, sizeof lan, "%s%s", k ? ", " : "", cfg->lan[k]);
    char map[512] = "", oifs[512] = "";
    unsigned n = 0;
    for (unsigned i = 0; i < in->nlinks; i++) {
        const struct nc_link_in *l = &in->links[i];
        if (!nc_link_routable(l))
            continue;
        appendf(oifs, sizeof oifs, "%s\"%s\"", oifs[0] ? ", " : "", l->ifname);
        if (in->fallback_active && l->usable) {
            appendf(map, sizeof map, "%s%u : 0x%x", n ? ", " : "", n, cfg->fwmark_base + i);
            n++;
        }
    }
    p->nfallback = n;
    if (cfg->nlan == 0) {
        p->nft_ok = true; /* nothing to mark or masquerade: no table */
        return;
    }
    char *s = p->nft;
    size_t cap = sizeof p->nft;
    s[0] = 0;
    appendf(s, cap,
            "add table ip " NC_NFT_TABLE "\ndelete table ip " NC_NFT_TABLE "\n"
            "table ip " NC_NFT_TABLE " {\n"
            "  set lan { type ipv4_addr; flags interval; elements = { %s } }\n"
            "  chain pre {\n"
            "    type filter hook prerouting priority mangle; policy accept;\n",
            lan);
    if (n > 0)
        /* Hash of (source, destination): a passenger keeps one public address per server,
         * which banking and streaming sites expect. */
        appendf(s, cap,
                "    ip saddr @lan ip daddr != @lan fib daddr type != local ct state new "
                "ct mark set jhash ip saddr . ip daddr mod %u map { %s }\n",
                n, map);
    appendf(s, cap, "%s",
            "    ip saddr @lan ct direction original ct mark != 0 meta mark set ct mark\n"
            "  }\n"
            "  chain post {\n"
            "    type nat hook postrouting priority srcnat; policy accept;\n");
    if (tunnel && cfg->lan_nat)
        appendf(s, cap, "    ip saddr @lan oifname \"%s\" masquerade\n", in->tun);
    if (oifs[0])
        appendf(s, cap, "    ip saddr @lan oifname { %s } masquerade\n", oifs);
    appendf(s, cap, "%s", "  }\n}\n");
    p->nft_ok = strlen(s) + 1 < cap;
}
