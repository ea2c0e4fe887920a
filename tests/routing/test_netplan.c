/* The vehicle's routing plan (firmware/netplan.c): rules, routes and the nftables script for
 * the situations the gateway meets: both links up, a shared modem address, a link without an
 * address, the fallback with only some modems usable, no tunnel at all. */
#include "firmware/netplan.h"
#include "tests/testlib.h"

#include <linux/rtnetlink.h>
#include <string.h>

static struct cfg_routing cfg(void)
{
    struct cfg_routing r = {.enabled = true,
                            .nlan = 1,
                            .table_base = 100,
                            .rule_pref = 1000,
                            .fwmark_base = 0x100,
                            .lan_nat = true,
                            .fallback = true,
                            .fallback_after_s = 15};
    strcpy(r.lan[0], "192.168.10.0/24");
    return r;
}

static struct nc_input input(const struct cfg_routing *c)
{
    struct nc_input in = {.cfg = c, .nlinks = 2, .tun_ifindex = 9};
    strcpy(in.tun, "corr0");
    strcpy(in.links[0].ifname, "wwan0");
    in.links[0] = (struct nc_link_in){
        .ifname = "wwan0", .ifindex = 3, .addr = 0x0a000002, .gw = 0, .usable = true};
    in.links[1] = (struct nc_link_in){
        .ifname = "eth1", .ifindex = 4, .addr = 0xc0a80802, .gw = 0xc0a80801, .usable = true};
    return in;
}

static int count_rules(const struct nc_plan *p, unsigned pref)
{
    int n = 0;
    for (unsigned i = 0; i < p->nrules; i++)
        n += p->rules[i].pref == pref;
    return n;
}

static const struct nc_rule *find_rule(const struct nc_plan *p, unsigned pref, unsigned table)
{
    for (unsigned i = 0; i < p->nrules; i++)
        if (p->rules[i].pref == pref && p->rules[i].table == table)
            return &p->rules[i];
    return NULL;
}

static struct nc_plan plan;

int main(void)
{
    struct cfg_routing c = cfg();
    struct nc_input in = input(&c);

    /* tunnel mode, two links */
    nc_plan(&in, &plan);
    CHECK_INT(plan.nroutes, 3);
    CHECK_INT(plan.routes[0].table, 100);
    CHECK_INT(plan.routes[0].gw, 0); /* point-to-point wwan: straight out of the device */
    CHECK_INT(plan.routes[1].table, 101);
    CHECK_INT(plan.routes[1].gw, 0xc0a80801);
    CHECK_INT(plan.routes[2].table, 116);
    CHECK_INT(plan.routes[2].ifindex, 9);
    const struct nc_rule *r = find_rule(&plan, 1000, RT_TABLE_MAIN);
    CHECK(r && r->suppress0 && r->src == 0xc0a80a00 && r->src_len == 24);
    CHECK_INT(count_rules(&plan, 1001), 2); /* fwmark rules always present */
    r = find_rule(&plan, 1001, 101);
    CHECK(r && r->fwmark == 0x101);
    r = find_rule(&plan, 1002, 100);
    CHECK(r && r->src == 0x0a000002 && r->src_len == 32);
    r = find_rule(&plan, 1003, 101);
    CHECK(r && strcmp(r->oif, "eth1") == 0);
    r = find_rule(&plan, 1004, 116);
    CHECK(r && r->src_len == 24);
    CHECK(plan.nft_ok);
    CHECK_INT(plan.nfallback, 0);
    CHECK(strstr(plan.nft, "ct mark set jhash") == NULL);
    CHECK(strstr(plan.nft, "oifname \"corr0\" masquerade") != NULL);
    CHECK(strstr(plan.nft, "oifname { \"wwan0\", \"eth1\" } masquerade") != NULL);
    CHECK(strstr(plan.nft, "ct direction original ct mark != 0 meta mark set ct mark") != NULL);

    /* fallback with one modem not registered: new connections only go to the usable one */
    in.fallback_active = true;
    in.links[0].usable = false;
    nc_plan(&in, &plan);
    CHECK_INT(plan.nfallback, 1);
    CHECK(strstr(plan.nft, "mod 1 map { 0 : 0x101 }") != NULL);
    in.links[0].usable = true;
    nc_plan(&in, &plan);
    CHECK_INT(plan.nfallback, 2);
    CHECK(strstr(plan.nft, "mod 2 map { 0 : 0x100, 1 : 0x101 }") != NULL);
    CHECK(strstr(plan.nft, "ip daddr != @lan fib daddr type != local ct state new") != NULL);

    /* two USB modems in router mode with the same address: no "from" rules for them */
    in.links[1].addr = in.links[0].addr;
    nc_plan(&in, &plan);
    CHECK_INT(count_rules(&plan, 1002), 0);
    CHECK_INT(count_rules(&plan, 1003), 2);

    /* a link whose interface lost its address drops out of rules, routes and the map */
    in = input(&c);
    in.fallback_active = true;
    in.links[1].addr = 0;
    nc_plan(&in, &plan);
    CHECK_INT(plan.nroutes, 2);
    CHECK(find_rule(&plan, 1001, 101) == NULL);
    CHECK(find_rule(&plan, 1003, 101) == NULL);
    CHECK_INT(plan.nfallback, 1);
    CHECK(strstr(plan.nft, "\"eth1\"") == NULL);

    /* no tunnel device yet: no tunnel table, no LAN->tunnel rule, no tunnel masquerade */
    in = input(&c);
    in.tun_ifindex = 0;
    nc_plan(&in, &plan);
    CHECK_INT(plan.nroutes, 2);
    CHECK_INT(count_rules(&plan, 1004), 0);
    CHECK(strstr(plan.nft, "corr0") == NULL);

    /* lan_nat off: the hub routes the LAN prefix, so no masquerade into the tunnel */
    c.lan_nat = false;
    in = input(&c);
    nc_plan(&in, &plan);
    CHECK(strstr(plan.nft, "corr0") == NULL);
    CHECK(strstr(plan.nft, "oifname { \"wwan0\", \"eth1\" } masquerade") != NULL);

    /* no LAN configured: rules for the links only, no nftables table */
    c = cfg();
    c.nlan = 0;
    in = input(&c);
    nc_plan(&in, &plan);
    CHECK_INT(count_rules(&plan, 1000), 0);
    CHECK_INT(count_rules(&plan, 1004), 0);
    CHECK(plan.nft_ok && plan.nft[0] == 0);

    /* sixteen links and eight LAN subnets still fit the script */
    c = cfg();
    c.nlan = CFG_MAX_LAN;
    for (unsigned k = 0; k < CFG_MAX_LAN; k++)
        snprintf(c.lan[k], sizeof c.lan[k], "172.16.%u.0/24", k);
    in = input(&c);
    in.nlinks = 16;
    in.fallback_active = true;
    for (unsigned i = 0; i < 16; i++) {
        in.links[i] =
            (struct nc_link_in){.ifindex = 10 + i, .addr = 0x0a000100 + i, .usable = true};
        snprintf(in.links[i].ifname, sizeof in.links[i].ifname, "wwan%u", i);
    }
    nc_plan(&in, &plan);
    CHECK(plan.nft_ok);
    CHECK_INT(plan.nfallback, 16);
    CHECK_INT(plan.nroutes, 17);
    CHECK_INT(count_rules(&plan, 1004), CFG_MAX_LAN);
    return test_summary();
}
