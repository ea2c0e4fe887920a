/* tunnel: config -> agg client, weights in, stats out. See tunnel.h. */
#include "firmware/tunnel.h"
#include "agg/agg.h"
#include "agg/keys.h"
#include "firmware/provision.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tunnel {
    struct state *st;
    struct agg_client *client;
    unsigned nlinks;
    char names[CFG_MAX_LINKS][32];
    bool has_modem[CFG_MAX_LINKS];
    char hubs[CFG_MAX_HUBS][64]; /* the list it started with (tunnel_start_hubs) */
    unsigned nhubs;
};

static const char *hub_state_name(enum agg_hub_state s)
{
    switch (s) {
    case AGG_HUB_CONNECTING:
        return "connecting";
    case AGG_HUB_CONNECTED:
        return "connected";
    default:
        return "none";
    }
}

static const char *link_state_name(enum agg_link_state s)
{
    static const char *const names[] = {"down", "probing", "up", "disabled"};
    return (unsigned)s < ARRAY_LEN(names) ? names[s] : "?";
}

static void on_hub_state(void *user, enum agg_hub_state s, unsigned idx)
{
    struct tunnel *t = user;
    /* Called on the data-plane thread: state_add_event is a short mutex, never I/O. */
    state_add_event(t->st, "tunnel", "hub", "hub #%u: %s", idx, hub_state_name(s));
}

static void on_link_state(void *user, uint8_t link_id, enum agg_link_state s)
{
    struct tunnel *t = user;
    if (link_id < t->nlinks)
        state_add_event(t->st, t->names[link_id], "tunnel_link", "tunnel link %s",
                        link_state_name(s));
}

/* tunnel.classes as the agg layer takes them; the link id of a link is its config index. */
static unsigned map_classes(const struct cfg_tunnel *tc, struct agg_class *out)
{
    unsigned n = 0;
    for (unsigned i = 0; i < tc->nclasses && i < AGG_MAX_CLASSES; i++, n++) {
        const struct cfg_class *cc = &tc->classes[i];
        struct agg_class *a = &out[i];
        memset(a, 0, sizeof *a);
        str_copy(a->name, cc->name, sizeof a->name);
        str_copy(a->src_subnet, cc->src_subnet, sizeof a->src_subnet);
        a->dscp = cc->dscp;
        a->mode = strcmp(cc->mode, "failover") == 0    ? AGG_MODE_FAILOVER
                  : strcmp(cc->mode, "redundant") == 0 ? AGG_MODE_REDUNDANT
                                                       : AGG_MODE_BOND;
        a->passenger = cc->passenger;
        a->rate_kbps = cc->rate_kbps;
        for (unsigned r = 0; r < cc->nfailover && r < AGG_MAX_LINKS; r++)
            a->failover_order[r] = (uint8_t)cc->failover[r];
        a->n_failover = cc->nfailover;
    }
    return n;
}

int tunnel_start(const struct config *cfg, struct state *st, struct tunnel **out, char *err,
                 size_t errlen)
{
    const struct cfg_tunnel *tc = &cfg->tunnel;
    struct tunnel *t = calloc(1, sizeof *t);
    struct agg_client_config *ac = calloc(1, sizeof *ac);
    if (!t || !ac) {
        free(t);
        free(ac);
        snprintf(err, errlen, "tunnel: out of memory");
        return -1;
    }
    t->st = st;
    str_copy(ac->tun_name, tc->tun, sizeof ac->tun_name);
    str_copy(ac->address, tc->address, sizeof ac->address);
    ac->path_mtu = tc->path_mtu; /* 0 = 1500; the TUN MTU is derived from it */
    ac->inner_mtu = tc->inner_mtu;
    for (unsigned i = 0; i < tc->nhubs && i < AGG_MAX_HUBS; i++)
        str_copy(ac->hubs[i], tc->hubs[i], sizeof ac->hubs[i]);
    ac->n_hubs = tc->nhubs;
    if (tc->hubs_url[0]) {
        /* The last list the data center gave us wins over the one in the file: a vehicle that
         * boots without the provisioning server must not go back to a retired hub. */
        char cached[CFG_MAX_HUBS][64], cerr[256];
        unsigned n = 0;
        if (provision_cache_load(cfg->data_dir, cached, &n, cerr, sizeof cerr) == 0) {
            for (unsigned i = 0; i < n && i < AGG_MAX_HUBS; i++)
                str_copy(ac->hubs[i], cached[i], sizeof ac->hubs[i]);
            ac->n_hubs = n;
            LOG_I("tunnel", "hubs from the provisioning cache (%u, first %s)", n, cached[0]);
        }
    }
    for (unsigned i = 0; i < ac->n_hubs && i < CFG_MAX_HUBS; i++)
        str_copy(t->hubs[i], ac->hubs[i], sizeof t->hubs[i]);
    t->nhubs = ac->n_hubs < CFG_MAX_HUBS ? ac->n_hubs : CFG_MAX_HUBS;
    ac->lz4 = tc->lz4;
    char kerr[256];
    if (keys_load_private(tc->private_key_file, ac->private_key, NULL, kerr, sizeof kerr) != 0) {
        snprintf(err, errlen, "tunnel.private_key_file: %s", kerr);
        goto fail;
    }
    if (keys_parse_public(tc->hub_public_key, ac->hub_public_key, "tunnel.hub_public_key", kerr,
                          sizeof kerr) != 0) {
        snprintf(err, errlen, "%s", kerr);
        goto fail;
    }
    for (unsigned i = 0; i < cfg->nlinks; i++) {
        struct agg_link_config *l = &ac->links[i];
        str_copy(l->name, cfg->links[i].name, sizeof l->name);
        str_copy(l->ifname, cfg->links[i].interface, sizeof l->ifname);
        l->link_id = (uint8_t)i; /* stable: the config order is the wire's link id */
        str_copy(t->names[i], cfg->links[i].name, sizeof t->names[i]);
        t->has_modem[i] = cfg->links[i].modem.present;
    }
    ac->n_links = cfg->nlinks;
    ac->hub_timeout_ms = tc->hub_timeout_ms;
    ac->n_classes = map_classes(tc, ac->classes);
    t->nlinks = cfg->nlinks;
    struct agg_callbacks cb = {.hub_state = on_hub_state, .link_state = on_link_state, .user = t};
    int rc = agg_client_start(ac, &cb, &t->client, err, errlen);
    sodium_memzero(ac->private_key, sizeof ac->private_key);
    free(ac);
    if (rc != 0) {
        free(t);
        return -1;
    }
    *out = t;
    return 0;
fail:
    sodium_memzero(ac->private_key, sizeof ac->private_key);
    free(ac);
    free(t);
    return -1;
}

unsigned tunnel_start_hubs(const struct tunnel *t, char hubs[][64])
{
    if (!t)
        return 0;
    for (unsigned i = 0; i < t->nhubs; i++)
        str_copy(hubs[i], t->hubs[i], 64);
    return t->nhubs;
}

int tunnel_set_hubs(struct tunnel *t, char hubs[][64], unsigned n, char *err, size_t errlen)
{
    if (!t) {
        snprintf(err, errlen, "no tunnel");
        return -1;
    }
    char list[AGG_MAX_HUBS][AGG_ADDR_LEN];
    memset(list, 0, sizeof list);
    for (unsigned i = 0; i < n && i < AGG_MAX_HUBS; i++)
        str_copy(list[i], hubs[i], sizeof list[i]);
    return agg_client_set_hubs(t->client, (const char(*)[AGG_ADDR_LEN])list, n, err, errlen);
}

int tunnel_set_classes(struct tunnel *t, const struct cfg_tunnel *tc, char *err, size_t errlen)
{
    if (!t) {
        snprintf(err, errlen, "no tunnel");
        return -1;
    }
    struct agg_class cl[AGG_MAX_CLASSES];
    unsigned n = map_classes(tc, cl);
    return agg_client_set_classes(t->client, cl, n, err, errlen);
}

void tunnel_set_weights(struct tunnel *t, const double *w, unsigned n)
{
    if (t)
        agg_client_set_weights(t->client, w, n);
}

void tunnel_tick(struct tunnel *t)
{
    if (!t)
        return;
    unsigned n = t->nlinks;
    static struct agg_client_stats s;
    agg_client_get_stats(t->client, &s);
    struct state_tunnel ts = {.valid = true};
    str_copy(ts.hub_state, hub_state_name(s.hub_state), sizeof ts.hub_state);
    ts.hub_index = s.hub_index;
    ts.hub_switches = s.hub_switches;
    ts.tun_rx_packets = s.tun_rx_packets;
    ts.tun_tx_packets = s.tun_tx_packets;
    ts.dropped_auth = s.dropped_auth;
    ts.dropped_replay = s.dropped_replay;
    ts.dropped_other = s.dropped_other;
    state_put_tunnel(t->st, &ts);
    for (unsigned i = 0; i < s.n_links && i < AGG_MAX_LINKS; i++) {
        const struct agg_link_stats *a = &s.links[i];
        struct state_link_tunnel lt = {.valid = true};
        str_copy(lt.state, link_state_name(a->state), sizeof lt.state);
        lt.tx_bytes = a->tx_bytes;
        lt.rx_bytes = a->rx_bytes;
        lt.tx_packets = a->tx_packets;
        lt.rx_packets = a->rx_packets;
        lt.resent_packets = a->resent_packets;
        lt.srtt_ms = a->srtt_ms;
        lt.rttvar_ms = a->rttvar_ms;
        lt.loss = a->loss;
        lt.capacity_bps = a->capacity_bps;
        lt.weight = a->weight;
        if (a->link_id < n)
            state_put_link_tunnel(t->st, a->link_id, &lt);
    }
}

void tunnel_stop(struct tunnel *t)
{
    if (!t)
        return;
    agg_client_stop(t->client);
    free(t);
}
