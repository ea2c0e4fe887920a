/* hub: the data-center end of the bonded tunnel (see agg.h).
 *
 * One data-plane thread: epoll over one UDP socket for every vehicle, the TUN device, a 2 ms
 * timerfd and an eventfd for stop. Vehicles are authenticated by their static keys
 * (handshake, agg/crypto.h); each gets a bond (links learned from authenticated packets:
 * source address:port + link id), allocated at its first handshake and freed after
 * IDLE_FREE_MS of silence so that memory follows the vehicles actually online. Packets from a
 * vehicle must carry its own tunnel address as source (no spoofing others through the NAT). */
#include "agg/agg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agg/crypto.h"
#include "agg/prefix.h"
#include "agg/tun.h"
#include "agg/udplink.h"
#include "common/common.h"

#define SUB          "hub"
#define TICK_US      2000
#define BATCH        64
#define IDLE_FREE_MS 60000
#define EV_UDP       1
#define EV_TUN       2

struct vehicle {
    struct agg_vehicle_config cfg;
    uint32_t addr_be;
    struct hs_peer peer;
    struct wire_session *sess, *prev, *pending;
    uint64_t prev_until_ms;
    struct bond *bond;
    uint64_t last_rx_ms;
    uint64_t rx_pkts, tx_pkts;
    struct agg_hub *h;
    /* The vehicle's traffic classes (CTRL_CLASSES), matched on the downlink by destination. */
    struct tun_class cls[CTRL_MAX_CLASSES];
    unsigned ncls;
};

struct agg_hub {
    struct agg_hub_config cfg;
    struct vehicle *veh;
    unsigned n_veh;
    uint32_t *addr_tab;          /* open addressing: vehicle index + 1, 0 = empty */
    struct prefix_table *routes; /* routed LAN prefixes: vehicle index + 1 (tunnel net: ~0) */
    uint32_t addr_mask;
    uint32_t *sess_map; /* session id -> vehicle index + 1 */
    uint16_t next_sid;
    struct hs_responder resp;
    int udp, tun;
    struct dploop loop;
    unsigned inner_mtu;
    unsigned frag_mtu; /* downlink packets over this are split (0 = never) */
    uint64_t last_pub_ms;
    struct agg_hub_stats st;
    pthread_mutex_t mu;
    struct agg_hub_stats snap;
    struct agg_vehicle_stats *vsnap;
    uint8_t rbuf[WIRE_MAX_PACKET + 64];
    uint8_t tbuf[WIRE_MAX_PACKET + 64];
    uint8_t hsout[HS_RESP_LEN + 16];
};

static struct wire_session *sess_alloc(void)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, sizeof(struct wire_session)) != 0)
        return NULL;
    memset(p, 0, sizeof(struct wire_session));
    return p;
}

static void sess_drop(struct agg_hub *h, struct wire_session **sp)
{
    struct wire_session *s = *sp;
    if (!s)
        return;
    h->sess_map[s->id] = 0;
    wire_session_wipe(s);
    free(s);
    *sp = NULL;
}

static struct vehicle *by_addr(struct agg_hub *h, uint32_t addr_be)
{
    for (uint32_t i = prefix_mix32(addr_be) & h->addr_mask;; i = (i + 1) & h->addr_mask) {
        uint32_t v = h->addr_tab[i];
        if (v == 0)
            return NULL;
        if (h->veh[v - 1].addr_be == addr_be)
            return &h->veh[v - 1];
    }
}

static struct hs_peer *peer_lookup(void *ctx, const uint8_t pub[32])
{
    struct agg_hub *h = ctx;
    for (unsigned i = 0; i < h->n_veh; i++)
        if (sodium_memcmp(h->veh[i].peer.static_pub, pub, 32) == 0)
            return &h->veh[i].peer;
    return NULL;
}

static struct wire_session *sess_lookup(void *ctx, uint16_t id)
{
    struct agg_hub *h = ctx;
    uint32_t v = h->sess_map[id];
    if (v == 0)
        return NULL;
    struct vehicle *ve = &h->veh[v - 1];
    if (ve->sess && ve->sess->id == id)
        return ve->sess;
    if (ve->pending && ve->pending->id == id)
        return ve->pending;
    if (ve->prev && ve->prev->id == id)
        return ve->prev;
    return NULL;
}

static void deliver(void *ctx, uint8_t *ip, size_t len)
{
    struct vehicle *v = ctx;
    uint32_t src;
    if (len < 20 || (ip[0] >> 4) != 4) {
        v->h->st.dropped_other++;
        return;
    }
    memcpy(&src, ip + 12, 4);
    /* Its tunnel address or one of its routed LAN prefixes: a vehicle cannot spoof another. */
    if (src != v->addr_be &&
        prefix_lookup(v->h->routes, ntohl(src)) != (uint32_t)(v - v->h->veh) + 1) {
        v->h->st.dropped_other++;
        return;
    }
    if (write(v->h->tun, ip, len) == (ssize_t)len)
        v->rx_pkts++;
}

static uint16_t alloc_sid(struct agg_hub *h)
{
    for (unsigned k = 0; k < 65536; k++) {
        uint16_t id = h->next_sid++;
        if (id != 0 && h->sess_map[id] == 0)
            return id;
    }
    return 0;
}

static void vehicle_close(struct agg_hub *h, struct vehicle *v)
{
    sess_drop(h, &v->sess);
    sess_drop(h, &v->prev);
    sess_drop(h, &v->pending);
    if (v->bond) {
        bond_free(v->bond);
        free(v->bond);
        v->bond = NULL;
        v->ncls = 0;
    }
}

static void on_init(struct agg_hub *h, const uint8_t *pkt, size_t len,
                    const struct sockaddr_in *from, uint64_t now_ms)
{
    uint16_t sid = alloc_sid(h);
    struct wire_session *ns = sid ? sess_alloc() : NULL;
    if (!ns)
        return;
    size_t olen = 0;
    struct hs_peer *peer = NULL;
    int rc = hs_responder_consume_initiation(&h->resp, peer_lookup, h, pkt, len, sid, now_ms,
                                             h->hsout, sizeof(h->hsout), &olen, ns, &peer);
    if (rc != WIRE_OK || !peer) {
        free(ns);
        if (rc != WIRE_ERR_HS_REPLAY) /* replays: the same initiation on another link */
            h->st.handshakes_bad++;
        return;
    }
    struct vehicle *v = peer->user;
    if (!v->bond) {
        char err[128];
        v->bond = calloc(1, sizeof(*v->bond));
        if (!v->bond ||
            bond_init(v->bond, h->inner_mtu, h->cfg.lz4, deliver, v, err, sizeof(err)) != 0) {
            LOG_W(SUB, "vehicle %s: %s", v->cfg.id, v->bond ? err : "out of memory");
            free(v->bond);
            v->bond = NULL;
            wire_session_wipe(ns);
            free(ns);
            return;
        }
        v->bond->frag_mtu = h->frag_mtu;
    }
    sess_drop(h, &v->pending);
    ns->user = v;
    v->pending = ns;
    h->sess_map[sid] = (uint32_t)(v - h->veh) + 1;
    h->st.handshakes_ok++;
    v->last_rx_ms = now_ms;
    (void)udplink_send(h->udp, from, h->hsout, olen);
    LOG_I(SUB, "vehicle %s: handshake from %s:%u (session %u)", v->cfg.id,
          inet_ntoa(from->sin_addr), ntohs(from->sin_port), sid);
}

static void promote(struct agg_hub *h, struct vehicle *v, uint64_t now_ms)
{
    sess_drop(h, &v->prev);
    v->prev = v->sess;
    v->prev_until_ms = now_ms + WIRE_KEEP_OLD_SESSION_MS;
    v->sess = v->pending;
    v->pending = NULL;
    char err[128];
    if (bond_reset_seq(v->bond, err, sizeof(err)) != 0)
        LOG_W(SUB, "vehicle %s: %s", v->cfg.id, err);
    v->bond->sess = v->sess;
    LOG_I(SUB, "vehicle %s: session %u confirmed", v->cfg.id, v->sess->id);
}

static void on_udp(struct agg_hub *h, uint64_t now_us)
{
    uint64_t now_ms = now_us / 1000;
    for (int k = 0; k < BATCH; k++) {
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(h->udp, h->rbuf, sizeof(h->rbuf), 0, (struct sockaddr *)&from, &fl);
        if (n < 0)
            break;
        int t = wire_classify(h->rbuf, (size_t)n);
        if (t == WIRE_T_HS_INIT) {
            on_init(h, h->rbuf, (size_t)n, &from, now_ms);
            continue;
        }
        if (t != WIRE_T_DATA) {
            h->st.dropped_other++;
            continue;
        }
        struct wire_rx rx;
        int rc = wire_open(sess_lookup, h, h->rbuf, (size_t)n, &rx);
        if (rc != WIRE_OK) {
            if (rc == WIRE_ERR_AUTH)
                h->st.dropped_auth++;
            else if (rc == WIRE_ERR_REPLAY || rc == WIRE_ERR_TOO_OLD)
                h->st.dropped_replay++;
            else if (rc == WIRE_ERR_UNKNOWN_SESSION)
                h->st.dropped_unknown++;
            else
                h->st.dropped_other++;
            continue;
        }
        struct vehicle *v = rx.sess->user;
        if (!v || !v->bond)
            continue;
        v->last_rx_ms = now_ms;
        if (rx.sess == v->pending)
            promote(h, v, now_ms);
        if (rx.sess == v->prev) {
            if (rx.inner_type == WIRE_INNER_IP)
                deliver(v, rx.payload, rx.len);
            continue;
        }
        /* Learn (or follow, after a NAT rebinding) the link's address: only authenticated
         * packets of the current session may move it. */
        if (rx.link_id < AGG_MAX_LINKS) {
            struct bond_link *bl = &v->bond->link[rx.link_id];
            if (!bl->present)
                bond_add_link(v->bond, rx.link_id, h->udp, &from, now_us);
            else if (bl->peer.sin_addr.s_addr != from.sin_addr.s_addr ||
                     bl->peer.sin_port != from.sin_port)
                bond_set_peer(v->bond, rx.link_id, &from);
        }
        bond_on_rx(v->bond, rx.link_id, &rx, now_us);
        if (v->bond->peer_classes_new) {
            v->bond->peer_classes_new = false;
            bond_set_classes(v->bond, &v->bond->peer_classes, true, v->cls);
            v->ncls = v->bond->peer_classes.n;
            LOG_I(SUB, "vehicle %s: %u traffic classes for the downlink", v->cfg.id, v->ncls);
        }
        bond_release(v->bond, now_us);
    }
}

static void on_tun(struct agg_hub *h, uint64_t now_us)
{
    for (int k = 0; k < BATCH; k++) {
        ssize_t n = read(h->tun, h->tbuf, sizeof(h->tbuf));
        if (n <= 0)
            break;
        if (n < 20 || (h->tbuf[0] >> 4) != 4)
            continue;
        uint32_t dst;
        memcpy(&dst, h->tbuf + 16, 4);
        struct vehicle *v = by_addr(h, dst);
        if (!v) {
            uint32_t r = prefix_lookup(h->routes, ntohl(dst));
            if (r && r <= h->n_veh)
                v = &h->veh[r - 1];
        }
        if (!v || !v->bond || !v->bond->sess)
            continue;
        tun_clamp_mss(h->tbuf, (size_t)n, h->inner_mtu);
        unsigned cls = tun_classify(v->cls, v->ncls, h->tbuf, (size_t)n);
        if (bond_send_ip(v->bond, h->tbuf, (size_t)n, cls, now_us) == 0)
            v->tx_pkts++;
    }
}

static void publish(struct agg_hub *h)
{
    unsigned connected = 0;
    pthread_mutex_lock(&h->mu);
    for (unsigned i = 0; i < h->n_veh; i++) {
        struct vehicle *v = &h->veh[i];
        struct agg_vehicle_stats *vs = &h->vsnap[i];
        memset(vs, 0, sizeof(*vs));
        str_copy(vs->id, v->cfg.id, sizeof(vs->id));
        vs->connected = v->sess != NULL;
        connected += vs->connected;
        vs->rx_packets = v->rx_pkts;
        vs->tx_packets = v->tx_pkts;
        if (v->bond) {
            bond_get_stats(v->bond, &vs->bond);
            for (unsigned l = 0; l < AGG_MAX_LINKS; l++) {
                if (!v->bond->link[l].present)
                    continue;
                bond_link_stats(v->bond, (uint8_t)l, &vs->links[vs->n_links]);
                snprintf(vs->links[vs->n_links].name, AGG_NAME_LEN, "link%u", l);
                vs->n_links++;
            }
        }
    }
    h->snap = h->st;
    h->snap.n_vehicles = h->n_veh;
    h->snap.connected = connected;
    pthread_mutex_unlock(&h->mu);
}

static void on_tick(struct agg_hub *h, uint64_t now_us)
{
    uint64_t now_ms = now_us / 1000;
    for (unsigned i = 0; i < h->n_veh; i++) {
        struct vehicle *v = &h->veh[i];
        if (!v->bond)
            continue;
        if (now_ms - v->last_rx_ms > IDLE_FREE_MS ||
            (v->sess && wire_session_state(v->sess, now_ms) == WIRE_SESS_EXPIRED && !v->pending)) {
            LOG_I(SUB, "vehicle %s: gone", v->cfg.id);
            vehicle_close(h, v);
            continue;
        }
        if (v->prev && now_ms > v->prev_until_ms)
            sess_drop(h, &v->prev);
        bond_tick(v->bond, now_us);
    }
    if (now_ms - h->last_pub_ms >= 100) {
        h->last_pub_ms = now_ms;
        publish(h);
    }
}

static void on_event(void *ctx, uint64_t tag, uint64_t now_us)
{
    struct agg_hub *h = ctx;
    if (tag == EV_UDP)
        on_udp(h, now_us);
    else if (tag == EV_TUN)
        on_tun(h, now_us);
}

static void on_loop_tick(void *ctx, uint64_t now_us)
{
    on_tick(ctx, now_us);
}

static void hub_free(struct agg_hub *h)
{
    dploop_close(&h->loop); /* joins the thread first, if it runs */
    if (h->veh)
        for (unsigned i = 0; i < h->n_veh; i++)
            vehicle_close(h, &h->veh[i]);
    int fds[] = {h->udp, h->tun};
    for (unsigned i = 0; i < ARRAY_LEN(fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    hs_responder_wipe(&h->resp);
    sodium_memzero(h->cfg.private_key, sizeof(h->cfg.private_key));
    free(h->veh);
    free(h->vsnap);
    free(h->addr_tab);
    prefix_free(h->routes);
    free(h->sess_map);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* The vehicles' routed LAN prefixes, checked: well-formed, no overlap with the tunnel network
 * or with each other (one owner per address). */
static int add_routes(struct agg_hub *h, const struct agg_hub_config *cfg, char *err, size_t errlen)
{
    uint32_t tnet_be;
    unsigned tlen;
    if (tun_parse_prefix(cfg->address, &tnet_be, &tlen) != 0)
        return 0; /* tun_open reports it */
    uint32_t tnet = ntohl(tnet_be) & (tlen ? 0xffffffffu << (32 - tlen) : 0);
    prefix_add(h->routes, tnet, tlen, UINT32_MAX, NULL);
    for (unsigned i = 0; i < cfg->n_vehicles; i++) {
        const struct agg_vehicle_config *vc = &cfg->vehicles[i];
        for (unsigned r = 0; r < vc->n_routes; r++) {
            uint32_t a_be, clash;
            unsigned len;
            if (tun_parse_prefix(vc->routes[r], &a_be, &len) != 0 || !strchr(vc->routes[r], '/')) {
                snprintf(err, errlen, "hub: vehicles[%u] (%s): routes[%u] '%s' is not a.b.c.d/nn",
                         i, vc->id, r, vc->routes[r]);
                return -1;
            }
            uint32_t a = ntohl(a_be);
            if (len < 32 && (a & ~(0xffffffffu << (32 - len)))) {
                snprintf(err, errlen, "hub: vehicles[%u] (%s): routes[%u] '%s' has host bits set",
                         i, vc->id, r, vc->routes[r]);
                return -1;
            }
            if (prefix_add(h->routes, a, len, i + 1, &clash) != 0) {
                if (clash == UINT32_MAX)
                    snprintf(err, errlen,
                             "hub: vehicles[%u] (%s): routes[%u] '%s' overlaps the tunnel "
                             "network %s",
                             i, vc->id, r, vc->routes[r], cfg->address);
                else if (clash)
                    snprintf(err, errlen,
                             "hub: vehicles[%u] (%s): routes[%u] '%s' overlaps a prefix of "
                             "vehicles[%u] (%s)",
                             i, vc->id, r, vc->routes[r], clash - 1, cfg->vehicles[clash - 1].id);
                else
                    snprintf(err, errlen, "hub: vehicles[%u] (%s): routes[%u] '%s' refused", i,
                             vc->id, r, vc->routes[r]);
                return -1;
            }
        }
    }
    return 0;
}

int agg_hub_start(const struct agg_hub_config *cfg, struct agg_hub **out, char *err, size_t errlen)
{
    *out = NULL;
    if (cfg->n_vehicles > AGG_HUB_MAX_VEHICLES) {
        snprintf(err, errlen, "hub: %u vehicles, at most %d", cfg->n_vehicles,
                 AGG_HUB_MAX_VEHICLES);
        return -1;
    }
    if (crypto_lib_init() != 0) {
        snprintf(err, errlen, "hub: libsodium init failed");
        return -1;
    }
    struct agg_hub *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, errlen, "hub: out of memory");
        return -1;
    }
    h->cfg = *cfg;
    h->cfg.vehicles = NULL;
    h->udp = h->tun = -1;
    dploop_init(&h->loop);
    pthread_mutex_init(&h->mu, NULL);
    h->inner_mtu = agg_tun_mtu(cfg->path_mtu, cfg->inner_mtu, &h->frag_mtu);
    h->next_sid = (uint16_t)(randombytes_uniform(65535) + 1);
    uint32_t tab = 16;
    while (tab < 2 * cfg->n_vehicles + 2)
        tab <<= 1;
    h->addr_mask = tab - 1;
    h->n_veh = cfg->n_vehicles;
    h->veh = calloc(cfg->n_vehicles ? cfg->n_vehicles : 1, sizeof(*h->veh));
    h->vsnap = calloc(cfg->n_vehicles ? cfg->n_vehicles : 1, sizeof(*h->vsnap));
    h->addr_tab = calloc(tab, sizeof(*h->addr_tab));
    h->routes = prefix_new(cfg->n_vehicles * AGG_MAX_ROUTES + 1);
    h->sess_map = calloc(65536, sizeof(*h->sess_map));
    if (!h->veh || !h->vsnap || !h->addr_tab || !h->sess_map || !h->routes) {
        snprintf(err, errlen, "hub: out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < cfg->n_vehicles; i++) {
        struct vehicle *v = &h->veh[i];
        v->cfg = cfg->vehicles[i];
        v->h = h;
        unsigned pfx;
        if (tun_parse_prefix(v->cfg.address, &v->addr_be, &pfx) != 0) {
            snprintf(err, errlen, "hub: vehicles[%u] (%s): address '%s' is not a.b.c.d", i,
                     v->cfg.id, v->cfg.address);
            goto fail;
        }
        if (by_addr(h, v->addr_be) || peer_lookup(h, v->cfg.public_key)) {
            snprintf(err, errlen, "hub: vehicles[%u] (%s): address or public key used twice", i,
                     v->cfg.id);
            goto fail;
        }
        memcpy(v->peer.static_pub, v->cfg.public_key, 32);
        v->peer.allowed = true;
        v->peer.user = v;
        uint32_t k = prefix_mix32(v->addr_be) & h->addr_mask;
        while (h->addr_tab[k])
            k = (k + 1) & h->addr_mask;
        h->addr_tab[k] = i + 1;
    }
    if (add_routes(h, cfg, err, errlen) != 0)
        goto fail;
    if (hs_responder_init(&h->resp, cfg->private_key, true) != 0) {
        snprintf(err, errlen, "hub: handshake init failed (bad key?)");
        goto fail;
    }
    h->udp = udplink_open_listen(cfg->listen, err, errlen);
    if (h->udp < 0)
        goto fail;
    h->tun = tun_open(cfg->tun_name, cfg->address, h->inner_mtu, err, errlen);
    if (h->tun < 0)
        goto fail;
    for (unsigned i = 0; i < cfg->n_vehicles; i++)
        for (unsigned r = 0; r < cfg->vehicles[i].n_routes; r++)
            if (tun_add_route(cfg->tun_name, cfg->vehicles[i].routes[r], err, errlen) != 0)
                goto fail;
    if (dploop_open(&h->loop, TICK_US, "hub", err, errlen) != 0 ||
        dploop_add(&h->loop, h->udp, EV_UDP) != 0 || dploop_add(&h->loop, h->tun, EV_TUN) != 0)
        goto fail;
    publish(h);
    h->loop.on_event = on_event;
    h->loop.on_tick = on_loop_tick;
    h->loop.ctx = h;
    if (dploop_start(&h->loop, "hub", err, errlen) != 0)
        goto fail;
    *out = h;
    return 0;
fail:
    hub_free(h);
    return -1;
}

void agg_hub_stop(struct agg_hub *h)
{
    if (!h)
        return;
    hub_free(h); /* stops and joins the data-plane thread first */
}

unsigned agg_hub_get_stats(struct agg_hub *h, struct agg_hub_stats *out,
                           struct agg_vehicle_stats *vehicles, unsigned max)
{
    pthread_mutex_lock(&h->mu);
    *out = h->snap;
    unsigned n = 0;
    if (vehicles)
        for (; n < max && n < h->n_veh; n++)
            vehicles[n] = h->vsnap[n];
    pthread_mutex_unlock(&h->mu);
    return n;
}
