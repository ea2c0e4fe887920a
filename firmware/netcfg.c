/* netcfg: policy routing and multi-WAN fallback for the vehicle. See netcfg.h, docs/routing.md.
 *
 * One thread, one loop a second: read the interfaces and the main table (netlink), read the
 * shared state (which modems can carry traffic, is a hub connected), PLAN what the kernel should
 * hold (nc_plan(), pure, unit-tested), then make it so by difference: only rules and routes
 * that differ are touched, and the nftables table is replaced in one transaction only when its
 * text changes. Nothing here is on the data path: the kernel forwards, we only steer it. */
#include "firmware/netcfg.h"
#include "firmware/netplan.h"
#include "common/alive.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <nftables/libnftables.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- netlink (libmnl) --------------------------------------------------------------------- */

struct nl {
    struct mnl_socket *sock;
    unsigned portid;
    unsigned seq;
    char buf[32768]; /* >= MNL_SOCKET_BUFFER_SIZE (a page, at most 8 kB) */
};

static int nl_open(struct nl *nl, char *err, size_t errlen)
{
    nl->sock = mnl_socket_open(NETLINK_ROUTE);
    if (!nl->sock || mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
        snprintf(err, errlen, "routing: netlink socket: %s", strerror(errno));
        if (nl->sock)
            mnl_socket_close(nl->sock);
        nl->sock = NULL;
        return -1;
    }
    nl->portid = mnl_socket_get_portid(nl->sock);
    nl->seq = (unsigned)time(NULL);
    return 0;
}

static void nl_close(struct nl *nl)
{
    if (nl->sock)
        mnl_socket_close(nl->sock);
    nl->sock = NULL;
}

/* Send one request and run the answer through cb (dumps) or wait for the ACK. 0 or -errno. */
static int nl_talk(struct nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
    nlh->nlmsg_seq = ++nl->seq;
    if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
        return -errno;
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl->sock, nl->buf, sizeof nl->buf);
        if (n < 0)
            return -errno;
        int rc = mnl_cb_run(nl->buf, (size_t)n, nl->seq, nl->portid, cb, data);
        if (rc == MNL_CB_ERROR)
            return -errno;
        if (rc == MNL_CB_STOP)
            return 0;
    }
}

/* What the kernel holds that concerns us: our rules, our tables' default routes, the main
 * table's gateways per interface. */
struct nc_kernel {
    const struct cfg_routing *cfg;
    struct nc_rule rules[64];
    unsigned nrules;
    struct nc_route routes[NC_MAX_LINKS + 1];
    unsigned nroutes;
    struct {
        unsigned ifindex;
        uint32_t gw;
        bool is_default;
    } gws[64];
    unsigned ngws;
};

static int rule_attr_cb(const struct nlattr *a, void *data)
{
    const struct nlattr **tb = data;
    int type = mnl_attr_get_type(a);
    if (mnl_attr_type_valid(a, FRA_MAX) > 0)
        tb[type] = a;
    return MNL_CB_OK;
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
    struct nc_kernel *k = data;
    const struct fib_rule_hdr *frh = mnl_nlmsg_get_payload(nlh);
    const struct nlattr *tb[FRA_MAX + 1] = {0};
    if (frh->family != AF_INET)
        return MNL_CB_OK;
    mnl_attr_parse(nlh, sizeof *frh, rule_attr_cb, tb);
    if (!tb[FRA_PRIORITY])
        return MNL_CB_OK;
    uint32_t pref = mnl_attr_get_u32(tb[FRA_PRIORITY]);
    if (pref < k->cfg->rule_pref || pref >= k->cfg->rule_pref + NC_PREF_SPAN)
        return MNL_CB_OK;
    struct nc_rule r = {.pref = pref, .table = frh->table, .src_len = frh->src_len};
    if (tb[FRA_TABLE])
        r.table = mnl_attr_get_u32(tb[FRA_TABLE]);
    if (tb[FRA_SRC] && mnl_attr_get_payload_len(tb[FRA_SRC]) == 4) {
        uint32_t be;
        memcpy(&be, mnl_attr_get_payload(tb[FRA_SRC]), 4);
        r.src = ntohl(be);
    }
    if (tb[FRA_OIFNAME])
        str_copy(r.oif, mnl_attr_get_str(tb[FRA_OIFNAME]), sizeof r.oif);
    if (tb[FRA_FWMARK])
        r.fwmark = mnl_attr_get_u32(tb[FRA_FWMARK]);
    if (tb[FRA_SUPPRESS_PREFIXLEN])
        r.suppress0 = mnl_attr_get_u32(tb[FRA_SUPPRESS_PREFIXLEN]) == 0;
    if (k->nrules < ARRAY_LEN(k->rules))
        k->rules[k->nrules++] = r;
    return MNL_CB_OK;
}

static int route_attr_cb(const struct nlattr *a, void *data)
{
    const struct nlattr **tb = data;
    int type = mnl_attr_get_type(a);
    if (mnl_attr_type_valid(a, RTA_MAX) > 0)
        tb[type] = a;
    return MNL_CB_OK;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
    struct nc_kernel *k = data;
    const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
    const struct nlattr *tb[RTA_MAX + 1] = {0};
    if (rtm->rtm_family != AF_INET || rtm->rtm_type != RTN_UNICAST)
        return MNL_CB_OK;
    mnl_attr_parse(nlh, sizeof *rtm, route_attr_cb, tb);
    uint32_t table = tb[RTA_TABLE] ? mnl_attr_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
    unsigned oif = tb[RTA_OIF] ? mnl_attr_get_u32(tb[RTA_OIF]) : 0;
    uint32_t gw = 0;
    if (tb[RTA_GATEWAY] && mnl_attr_get_payload_len(tb[RTA_GATEWAY]) == 4) {
        uint32_t be;
        memcpy(&be, mnl_attr_get_payload(tb[RTA_GATEWAY]), 4);
        gw = ntohl(be);
    }
    if (table == RT_TABLE_MAIN && gw && oif && k->ngws < ARRAY_LEN(k->gws)) {
        k->gws[k->ngws].ifindex = oif;
        k->gws[k->ngws].gw = gw;
        k->gws[k->ngws].is_default = rtm->rtm_dst_len == 0;
        k->ngws++;
    }
    if (table >= k->cfg->table_base && table <= k->cfg->table_base + NC_TUN_TABLE &&
        rtm->rtm_dst_len == 0 && k->nroutes < ARRAY_LEN(k->routes))
        k->routes[k->nroutes++] = (struct nc_route){table, oif, gw};
    return MNL_CB_OK;
}

static int nl_dump(struct nl *nl, uint16_t type, size_t hdrlen, struct nc_kernel *k)
{
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    struct rtgenmsg *g = mnl_nlmsg_put_extra_header(nlh, hdrlen);
    g->rtgen_family = AF_INET;
    return nl_talk(nl, nlh, type == RTM_GETRULE ? rule_cb : route_cb, k);
}

static int nl_rule(struct nl *nl, uint16_t type, const struct nc_rule *r)
{
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (type == RTM_NEWRULE ? NLM_F_CREATE : 0);
    struct fib_rule_hdr *frh = mnl_nlmsg_put_extra_header(nlh, sizeof *frh);
    frh->family = AF_INET;
    frh->action = FR_ACT_TO_TBL;
    frh->src_len = r->src_len;
    frh->table = r->table < 256 ? (uint8_t)r->table : RT_TABLE_UNSPEC;
    mnl_attr_put_u32(nlh, FRA_PRIORITY, r->pref);
    mnl_attr_put_u32(nlh, FRA_TABLE, r->table);
    if (r->src_len) {
        uint32_t be = htonl(r->src);
        mnl_attr_put(nlh, FRA_SRC, 4, &be);
    }
    if (r->oif[0])
        mnl_attr_put_strz(nlh, FRA_OIFNAME, r->oif);
    if (r->fwmark) {
        mnl_attr_put_u32(nlh, FRA_FWMARK, r->fwmark);
        mnl_attr_put_u32(nlh, FRA_FWMASK, 0xffffffffu);
    }
    if (r->suppress0)
        mnl_attr_put_u32(nlh, FRA_SUPPRESS_PREFIXLEN, 0);
    return nl_talk(nl, nlh, NULL, NULL);
}

static int nl_route(struct nl *nl, uint16_t type, const struct nc_route *rt)
{
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags =
        NLM_F_REQUEST | NLM_F_ACK | (type == RTM_NEWROUTE ? NLM_F_CREATE | NLM_F_REPLACE : 0);
    struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof *rtm);
    rtm->rtm_family = AF_INET;
    rtm->rtm_table = RT_TABLE_UNSPEC;
    rtm->rtm_protocol = RTPROT_STATIC;
    rtm->rtm_scope = rt->gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
    rtm->rtm_type = RTN_UNICAST;
    mnl_attr_put_u32(nlh, RTA_TABLE, rt->table);
    if (type == RTM_NEWROUTE || rt->ifindex)
        mnl_attr_put_u32(nlh, RTA_OIF, rt->ifindex);
    if (rt->gw) {
        uint32_t be = htonl(rt->gw);
        mnl_attr_put(nlh, RTA_GATEWAY, 4, &be);
    }
    return nl_talk(nl, nlh, NULL, NULL);
}

static bool rule_eq(const struct nc_rule *a, const struct nc_rule *b)
{
    return a->pref == b->pref && a->table == b->table && a->src == b->src &&
           a->src_len == b->src_len && strcmp(a->oif, b->oif) == 0 && a->fwmark == b->fwmark &&
           a->suppress0 == b->suppress0;
}

static bool route_eq(const struct nc_route *a, const struct nc_route *b)
{
    return a->table == b->table && a->ifindex == b->ifindex && a->gw == b->gw;
}

/* ---- the thread ----------------------------------------------------------------------------- */

struct netcfg {
    const struct config *cfg;
    struct state *st;
    struct nl nl;
    struct nft_ctx *nft;
    pthread_t thread;
    volatile bool stop;
    /* thread-owned (after start; cleanup() runs after the join) */
    struct nc_kernel k;
    struct nc_input in;
    struct nc_plan plan;
    struct link_state ls[CFG_MAX_LINKS];
    char nft_applied[NC_NFT_MAX];
    bool fallback_active;
    uint64_t hub_lost_ms; /* when the hub was last seen connected (or start) */
    unsigned nfallback_logged;
    char last_err[256];
};

/* Log an error only when it changes: a missing permission must not fill the log every second. */
static void report(struct netcfg *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(struct netcfg *n, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (strcmp(msg, n->last_err) != 0) {
        LOG_W("routing", "%s", msg);
        str_copy(n->last_err, msg, sizeof n->last_err);
    }
}

static int nft_apply(struct netcfg *n, const char *script, char *err, size_t errlen)
{
    if (nft_run_cmd_from_buffer(n->nft, script) != 0) {
        const char *e = nft_ctx_get_error_buffer(n->nft);
        snprintf(err, errlen, "%s", e && *e ? e : "nftables refused the ruleset");
        str_trim(err);
        return -1;
    }
    return 0;
}

static void read_links(struct netcfg *n, struct nc_input *in, const struct nc_kernel *k)
{
    const struct config *cfg = n->cfg;
    struct link_state *ls = n->ls;
    unsigned nl = state_get_links(n->st, ls, CFG_MAX_LINKS);
    struct ifaddrs *ifa = NULL;
    if (getifaddrs(&ifa) != 0)
        ifa = NULL;
    in->nlinks = cfg->nlinks < NC_MAX_LINKS ? cfg->nlinks : NC_MAX_LINKS;
    for (unsigned i = 0; i < in->nlinks; i++) {
        struct nc_link_in *l = &in->links[i];
        str_copy(l->ifname, cfg->links[i].interface, sizeof l->ifname);
        l->ifindex = if_nametoindex(l->ifname);
        l->usable = i < nl ? link_modem_usable(&ls[i]) : true;
        for (struct ifaddrs *a = ifa; a && l->ifindex; a = a->ifa_next)
            if (a->ifa_addr && a->ifa_addr->sa_family == AF_INET &&
                strcmp(a->ifa_name, l->ifname) == 0 && (a->ifa_flags & IFF_UP)) {
                l->addr =
                    ntohl(((const struct sockaddr_in *)(const void *)a->ifa_addr)->sin_addr.s_addr);
                break;
            }
        /* The gateway DHCP (or the modem manager) put into the main table for this interface:
         * its default route first, else any route through a gateway on it. */
        for (unsigned g = 0; g < k->ngws && l->ifindex; g++)
            if (k->gws[g].ifindex == l->ifindex && (!l->gw || k->gws[g].is_default))
                l->gw = k->gws[g].gw;
    }
    if (ifa)
        freeifaddrs(ifa);
    if (cfg->tunnel.enabled) {
        str_copy(in->tun, cfg->tunnel.tun, sizeof in->tun);
        in->tun_ifindex = if_nametoindex(in->tun);
    }
}

static void tick(struct netcfg *n)
{
    const struct cfg_routing *rc = &n->cfg->routing;
    struct nc_kernel *k = &n->k;
    memset(k, 0, sizeof *k);
    k->cfg = rc;
    int e1 = nl_dump(&n->nl, RTM_GETROUTE, sizeof(struct rtmsg), k);
    int e2 = nl_dump(&n->nl, RTM_GETRULE, sizeof(struct fib_rule_hdr), k);
    if (e1 || e2) {
        report(n, "reading routes/rules: %s", strerror(-(e1 ? e1 : e2)));
        return;
    }
    struct nc_input *in = &n->in;
    memset(in, 0, sizeof *in);
    in->cfg = rc;
    read_links(n, in, k);

    /* Fallback: after fallback_after_s without a connected hub (from start, too: a vehicle that
     * boots where the data center is unreachable still gets its passengers online). */
    uint64_t now = mono_ms();
    struct state_tunnel ts;
    state_get_tunnel(n->st, &ts);
    bool hub = n->cfg->tunnel.enabled && ts.valid && strcmp(ts.hub_state, "connected") == 0;
    if (hub)
        n->hub_lost_ms = now;
    /* Without a tunnel at all the links are the only way out: fallback is the normal mode. */
    bool want = rc->fallback && !hub &&
                (!n->cfg->tunnel.enabled || now - n->hub_lost_ms >= rc->fallback_after_s * 1000ull);
    in->fallback_active = want;

    struct nc_plan *p = &n->plan;
    nc_plan(in, p);
    if (want != n->fallback_active || (want && p->nfallback != n->nfallback_logged)) {
        char names[256] = "";
        size_t off = 0;
        for (unsigned i = 0; i < in->nlinks; i++)
            if (nc_link_routable(&in->links[i]) && in->links[i].usable)
                str_appendf(names, sizeof names, &off, "%s%s", off ? ", " : "",
                            n->cfg->links[i].name);
        if (want)
            state_add_event(n->st, "routing", "fallback",
                            "no hub for %u s: new LAN connections leave directly (NAT) over %s",
                            (unsigned)((now - n->hub_lost_ms) / 1000),
                            names[0] ? names : "no link");
        else if (n->fallback_active)
            state_add_event(n->st, "routing", "tunnel",
                            "hub connected: new LAN connections use the tunnel again "
                            "(direct ones keep their link until they end)");
        LOG_I("routing", "%s", want ? "fallback: direct NAT over the links" : "LAN via the tunnel");
        n->fallback_active = want;
        n->nfallback_logged = p->nfallback;
    }

    char err[512] = "";
    /* Routes first (a rule into an empty table would send packets on to the next rule). */
    for (unsigned i = 0; i < p->nroutes; i++) {
        bool have = false;
        for (unsigned j = 0; j < k->nroutes; j++)
            have |= route_eq(&p->routes[i], &k->routes[j]);
        if (!have) {
            int rc2 = nl_route(&n->nl, RTM_NEWROUTE, &p->routes[i]);
            if (rc2 && !err[0])
                snprintf(err, sizeof err, "route table %u: %s", p->routes[i].table, strerror(-rc2));
        }
    }
    for (unsigned j = 0; j < k->nroutes; j++) {
        bool want_table = false;
        for (unsigned i = 0; i < p->nroutes; i++)
            want_table |= p->routes[i].table == k->routes[j].table;
        if (!want_table)
            nl_route(&n->nl, RTM_DELROUTE, &k->routes[j]);
    }
    for (unsigned i = 0; i < p->nrules; i++) {
        bool have = false;
        for (unsigned j = 0; j < k->nrules; j++)
            have |= rule_eq(&p->rules[i], &k->rules[j]);
        if (!have) {
            int rc2 = nl_rule(&n->nl, RTM_NEWRULE, &p->rules[i]);
            if (rc2 && !err[0])
                snprintf(err, sizeof err, "rule pref %u: %s", p->rules[i].pref, strerror(-rc2));
        }
    }
    for (unsigned j = 0; j < k->nrules; j++) {
        bool keep = false;
        for (unsigned i = 0; i < p->nrules; i++)
            keep |= rule_eq(&p->rules[i], &k->rules[j]);
        if (!keep)
            nl_rule(&n->nl, RTM_DELRULE, &k->rules[j]);
    }
    if (p->nft[0] && strcmp(p->nft, n->nft_applied) != 0) {
        char nerr[256];
        if (!p->nft_ok)
            snprintf(nerr, sizeof nerr, "ruleset too long");
        if (p->nft_ok && nft_apply(n, p->nft, nerr, sizeof nerr) == 0)
            str_copy(n->nft_applied, p->nft, sizeof n->nft_applied);
        else if (!err[0])
            snprintf(err, sizeof err, "nftables: %s", nerr);
    }
    if (err[0])
        report(n, "%s", err);
    else
        n->last_err[0] = 0;
}

/* Remove everything at our preferences and in our tables, and our nftables table. */
static void cleanup(struct netcfg *n)
{
    struct nc_kernel *k = &n->k;
    memset(k, 0, sizeof *k);
    k->cfg = &n->cfg->routing;
    if (nl_dump(&n->nl, RTM_GETRULE, sizeof(struct fib_rule_hdr), k) == 0)
        for (unsigned j = 0; j < k->nrules; j++)
            nl_rule(&n->nl, RTM_DELRULE, &k->rules[j]);
    if (nl_dump(&n->nl, RTM_GETROUTE, sizeof(struct rtmsg), k) == 0)
        for (unsigned j = 0; j < k->nroutes; j++)
            nl_route(&n->nl, RTM_DELROUTE, &k->routes[j]);
    char err[256];
    nft_apply(n, "add table ip " NC_NFT_TABLE "\ndelete table ip " NC_NFT_TABLE "\n", err,
              sizeof err);
    n->nft_applied[0] = 0;
}

/* Routing the LAN needs IPv4 forwarding; a gateway image usually has it on already. */
static void enable_forwarding(void)
{
    const char *path = "/proc/sys/net/ipv4/ip_forward";
    FILE *f = fopen(path, "r");
    int c = f ? fgetc(f) : EOF;
    if (f)
        fclose(f);
    if (c == '1')
        return;
    f = fopen(path, "w");
    bool ok = f && fputs("1\n", f) >= 0;
    if (f && fclose(f) != 0)
        ok = false;
    if (ok)
        LOG_I("routing", "enabled IPv4 forwarding (net.ipv4.ip_forward=1) for the LAN");
    else
        LOG_W("routing", "net.ipv4.ip_forward is off and cannot be set: the LAN is not routed");
}

static void *netcfg_main(void *arg)
{
    struct netcfg *n = arg;
    while (!n->stop) {
        alive_beat("netcfg", NULL);
        tick(n);
        sleep_ms_unless(&n->stop, 1000);
    }
    return NULL;
}

int netcfg_start(const struct config *cfg, struct state *st, struct netcfg **out, char *err,
                 size_t errlen)
{
    *out = NULL;
    struct netcfg *n = calloc(1, sizeof *n);
    if (!n) {
        snprintf(err, errlen, "routing: out of memory");
        return -1;
    }
    n->cfg = cfg;
    n->st = st;
    if (nl_open(&n->nl, err, errlen) != 0) {
        free(n);
        return -1;
    }
    n->nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!n->nft) {
        snprintf(err, errlen, "routing: nftables context: out of memory");
        goto fail;
    }
    nft_ctx_buffer_output(n->nft);
    nft_ctx_buffer_error(n->nft);
    /* Leftovers of an unclean exit go first; a failure here is the permission check. */
    char nerr[256];
    if (nft_apply(n, "add table ip " NC_NFT_TABLE "\ndelete table ip " NC_NFT_TABLE "\n", nerr,
                  sizeof nerr) != 0) {
        snprintf(err, errlen, "routing: nftables: %s (needs CAP_NET_ADMIN)", nerr);
        goto fail;
    }
    cleanup(n);
    if (cfg->routing.nlan > 0)
        enable_forwarding();
    n->hub_lost_ms = mono_ms();
    if (pthread_create(&n->thread, NULL, netcfg_main, n) != 0) {
        snprintf(err, errlen, "routing: cannot start thread");
        goto fail;
    }
    LOG_I("routing",
          "policy routing: tables %u..%u, rules at %u..%u, %u LAN subnet(s), fallback %s",
          cfg->routing.table_base, cfg->routing.table_base + NC_TUN_TABLE, cfg->routing.rule_pref,
          cfg->routing.rule_pref + NC_PREF_SPAN - 1, cfg->routing.nlan,
          cfg->routing.fallback ? "on" : "off");
    *out = n;
    return 0;
fail:
    if (n->nft)
        nft_ctx_free(n->nft);
    nl_close(&n->nl);
    free(n);
    return -1;
}

void netcfg_stop(struct netcfg *n)
{
    if (!n)
        return;
    n->stop = true;
    pthread_join(n->thread, NULL);
    cleanup(n);
    nft_ctx_free(n->nft);
    nl_close(&n->nl);
    free(n);
}
