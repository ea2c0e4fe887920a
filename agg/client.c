/* client: the vehicle side of the bonded tunnel (see agg.h).
 *
 * One data-plane thread (dploop, agg/udplink.h): epoll over the TUN device, one UDP socket per
 * link, a 2 ms timerfd and an eventfd for stop. Nothing in it blocks: sockets and TUN are
 * non-blocking, a full socket or TUN queue drops (counted), and the policy/stats threads only touch
 * a mutex-protected copy.
 *
 * Hub handling: the handshake initiation goes out on every link at once (the hub answers the
 * first copy; the others are replays by timestamp); the hub is "answering" while any
 * authenticated packet arrives. CONNECTING for HS_GIVEUP_MS or silent for hub_timeout_ms moves
 * to the next hub in the list, so a dead hub is left within ~4 s (the requirement is 10 s). */
#include "agg/agg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agg/crypto.h"
#include "agg/tun.h"
#include "agg/udplink.h"
#include "common/common.h"

#define SUB            "tunnel"
#define TICK_US        2000
#define HS_RETRY_MS    1000
#define HS_GIVEUP_MS   3000
#define HUB_TIMEOUT_MS 3000
#define BATCH          64
#define EV_TUN         (1ull << 32)
#define EV_LINK        (4ull << 32)

struct clink {
    int fd;
    uint32_t src_be;
    bool in_bond;
};

struct agg_client {
    struct agg_client_config cfg;
    struct agg_callbacks cb;
    struct dploop loop;
    int tun;
    unsigned inner_mtu;
    uint32_t tun_addr_be;

    struct hs_initiator ini;
    struct wire_session *sess, *prev;
    uint64_t prev_until_ms;
    struct bond bond;
    struct clink lk[AGG_MAX_LINKS];

    unsigned hub_idx;
    struct sockaddr_in hub;
    enum agg_hub_state hstate;
    unsigned hub_switches;
    uint64_t hs_sent_ms, hs_first_ms, last_rx_ms, last_sec_ms, last_pub_ms;
    bool rekeying;
    uint64_t last_hs_ts;

    uint64_t tun_rx, tun_tx, drop_auth, drop_replay, drop_other, icmp_too_big;

    struct tun_class cls[AGG_MAX_CLASSES];
    struct ctrl_classes classes; /* sent to the hub after each handshake and every 10 s */
    uint64_t last_classes_ms, last_weights_ms;

    pthread_mutex_t mu;
    struct agg_client_stats snap;
    double weights[AGG_MAX_LINKS];
    bool weights_dirty;
    /* A new class table (configuration reload), taken over within a second. */
    struct ctrl_classes new_classes;
    bool classes_dirty;
    /* A new hub list (provisioning), taken over by the data-plane thread within a second. */
    char new_hubs[AGG_MAX_HUBS][AGG_ADDR_LEN];
    unsigned n_new_hubs;
    bool hubs_dirty;

    uint8_t rbuf[WIRE_MAX_PACKET + 64];
    uint8_t tbuf[WIRE_MAX_PACKET + 64];
    uint8_t hsbuf[HS_INIT_LEN + 16];
};

unsigned agg_inner_mtu(unsigned path_mtu)
{
    if (path_mtu == 0)
        path_mtu = 1500;
    unsigned over = 20 + 8 + WIRE_OVERHEAD;
    return path_mtu > over + 576 ? path_mtu - over : 576;
}

unsigned agg_tun_mtu(unsigned path_mtu, unsigned inner_mtu, unsigned *frag_mtu)
{
    unsigned whole = agg_inner_mtu(path_mtu);
    *frag_mtu = 0;
    if (inner_mtu <= whole)
        return whole;
    if (inner_mtu > 1500)
        inner_mtu = 1500;
    *frag_mtu = whole;
    return inner_mtu;
}

static struct wire_session *sess_alloc(void)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, sizeof(struct wire_session)) != 0)
        return NULL;
    memset(p, 0, sizeof(struct wire_session));
    return p;
}

static void sess_free(struct wire_session *s)
{
    if (!s)
        return;
    wire_session_wipe(s);
    free(s);
}

static struct wire_session *lookup(void *ctx, uint16_t id)
{
    struct agg_client *c = ctx;
    if (c->sess && c->sess->id == id)
        return c->sess;
    if (c->prev && c->prev->id == id)
        return c->prev;
    return NULL;
}

static void set_hstate(struct agg_client *c, enum agg_hub_state st)
{
    if (c->hstate == st)
        return;
    c->hstate = st;
    LOG_I(SUB, "hub %s: %s", c->cfg.hubs[c->hub_idx],
          st == AGG_HUB_CONNECTED    ? "connected"
          : st == AGG_HUB_CONNECTING ? "connecting"
                                     : "none");
    if (c->cb.hub_state)
        c->cb.hub_state(c->cb.user, st, c->hub_idx);
}

static void deliver(void *ctx, uint8_t *ip, size_t len)
{
    struct agg_client *c = ctx;
    tun_clamp_mss(ip, len, c->inner_mtu);
    if (write(c->tun, ip, len) == (ssize_t)len)
        c->tun_tx++;
}

static void start_handshake(struct agg_client *c, uint64_t now_ms)
{
    /* The hub refuses an initiation whose timestamp is not newer than the last one it took
     * from us: keep it strictly increasing even if the wall clock steps back a little. */
    uint64_t ts = wall_ms() * 1000000ull;
    if (ts <= c->last_hs_ts)
        ts = c->last_hs_ts + 1;
    c->last_hs_ts = ts;
    int n = hs_initiator_create(&c->ini, ts, 0, now_ms, c->hsbuf, sizeof(c->hsbuf));
    if (n < 0)
        return;
    for (unsigned i = 0; i < c->cfg.n_links; i++) {
        uint8_t id = c->cfg.links[i].link_id;
        if (c->lk[id].fd < 0)
            continue;
        hs_set_link(&c->ini, c->hsbuf, id);
        (void)udplink_send(c->lk[id].fd, &c->hub, c->hsbuf, (size_t)n);
    }
    c->hs_sent_ms = now_ms;
}

/* Point every link at hub index idx and forget the sessions (a new hub, a new handshake). */
static void select_hub(struct agg_client *c, unsigned idx, uint64_t now_ms)
{
    c->hub_idx = idx;
    if (udplink_parse_addr(c->cfg.hubs[idx], &c->hub) != 0) {
        LOG_W(SUB, "hub %s: bad address", c->cfg.hubs[idx]);
        memset(&c->hub, 0, sizeof(c->hub));
    }
    c->bond.sess = NULL;
    sess_free(c->sess);
    sess_free(c->prev);
    c->sess = c->prev = NULL;
    c->rekeying = false;
    char err[128];
    if (bond_reset_seq(&c->bond, err, sizeof(err)) != 0)
        LOG_W(SUB, "%s", err);
    for (unsigned i = 0; i < AGG_MAX_LINKS; i++)
        if (c->lk[i].in_bond)
            bond_set_peer(&c->bond, (uint8_t)i, &c->hub);
    set_hstate(c, AGG_HUB_CONNECTING);
    c->hs_first_ms = now_ms;
    start_handshake(c, now_ms);
}

static void open_links(struct agg_client *c, uint64_t now_ms)
{
    for (unsigned i = 0; i < c->cfg.n_links; i++) {
        const struct agg_link_config *lc = &c->cfg.links[i];
        struct clink *l = &c->lk[lc->link_id];
        uint32_t a = udplink_if_addr(lc->ifname);
        if (l->fd >= 0 && a == l->src_be)
            continue;
        if (l->fd >= 0) { /* the modem got a new address: rebind */
            LOG_I(SUB, "link %s: address changed, reopening", lc->name);
            dploop_del(&c->loop, l->fd);
            close(l->fd);
            l->fd = -1;
            /* The bond must not keep a closed (and soon reused) descriptor. */
            c->bond.link[lc->link_id].fd = -1;
        }
        char err[160];
        int fd = udplink_open_link(lc->ifname, &l->src_be, err, sizeof(err));
        if (fd < 0) {
            LOG_D(SUB, "%s", err);
            continue;
        }
        if (dploop_add(&c->loop, fd, EV_LINK | lc->link_id) != 0) {
            close(fd);
            continue;
        }
        l->fd = fd;
        bond_add_link(&c->bond, lc->link_id, fd, c->hub.sin_port ? &c->hub : NULL, now_ms * 1000);
        l->in_bond = true;
        LOG_I(SUB, "link %s (%s, id %u) open", lc->name, lc->ifname, lc->link_id);
        if (c->hstate == AGG_HUB_CONNECTED)
            bond_keepalive_all(&c->bond, now_ms * 1000);
    }
}

static void on_response(struct agg_client *c, const uint8_t *pkt, size_t len, uint64_t now_ms)
{
    struct wire_session *ns = sess_alloc();
    if (!ns)
        return;
    int rc = hs_initiator_consume_response(&c->ini, pkt, len, now_ms, ns);
    if (rc != WIRE_OK) {
        free(ns);
        if (rc != WIRE_ERR_HS_UNEXPECTED)
            c->drop_auth++;
        return;
    }
    sess_free(c->prev);
    c->prev = c->sess;
    c->prev_until_ms = now_ms + WIRE_KEEP_OLD_SESSION_MS;
    c->sess = ns;
    char err[128];
    if (bond_reset_seq(&c->bond, err, sizeof(err)) != 0)
        LOG_W(SUB, "%s", err);
    c->bond.sess = ns;
    c->rekeying = false;
    c->last_rx_ms = now_ms;
    /* Confirms the session at the hub and teaches it every link's address. */
    bond_keepalive_all(&c->bond, now_ms * 1000);
    if (c->classes.n) {
        bond_send_classes(&c->bond, &c->classes);
        c->last_classes_ms = now_ms;
    }
    bond_send_weights(&c->bond);
    c->last_weights_ms = now_ms;
    set_hstate(c, AGG_HUB_CONNECTED);
}

static void on_link_readable(struct agg_client *c, uint8_t link_id, uint64_t now_us)
{
    int fd = c->lk[link_id].fd;
    for (int k = 0; k < BATCH; k++) {
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(fd, c->rbuf, sizeof(c->rbuf), 0, (struct sockaddr *)&from, &fl);
        if (n < 0)
            break;
        if (from.sin_addr.s_addr != c->hub.sin_addr.s_addr || from.sin_port != c->hub.sin_port) {
            c->drop_other++;
            continue;
        }
        int t = wire_classify(c->rbuf, (size_t)n);
        if (t == WIRE_T_HS_RESP) {
            on_response(c, c->rbuf, (size_t)n, now_us / 1000);
            continue;
        }
        if (t != WIRE_T_DATA) {
            c->drop_other++;
            continue;
        }
        struct wire_rx rx;
        int rc = wire_open(lookup, c, c->rbuf, (size_t)n, &rx);
        if (rc == WIRE_ERR_INNER_TYPE) {
            c->drop_other++;
            c->last_rx_ms = now_us / 1000;
            continue;
        }
        if (rc != WIRE_OK) {
            if (rc == WIRE_ERR_AUTH)
                c->drop_auth++;
            else if (rc == WIRE_ERR_REPLAY || rc == WIRE_ERR_TOO_OLD)
                c->drop_replay++;
            else
                c->drop_other++;
            continue;
        }
        c->last_rx_ms = now_us / 1000;
        if (rx.sess != c->sess) {
            /* Old session during a rekey: its sequence space is gone, deliver directly. */
            if (rx.inner_type == WIRE_INNER_IP)
                deliver(c, rx.payload, rx.len);
            continue;
        }
        bond_on_rx(&c->bond, link_id, &rx, now_us);
    }
    bond_release(&c->bond, now_us);
}

static void send_icmp_too_big(struct agg_client *c, const uint8_t *ip, size_t len)
{
    uint8_t out[128];
    size_t n = tun_frag_needed(ip, len, c->tun_addr_be, c->inner_mtu, out, sizeof(out));
    if (n > 0 && write(c->tun, out, n) == (ssize_t)n)
        c->icmp_too_big++;
}

static void on_tun_readable(struct agg_client *c, uint64_t now_us)
{
    uint8_t *pkt = c->tbuf;
    for (int k = 0; k < BATCH; k++) {
        ssize_t n = read(c->tun, pkt, sizeof(c->tbuf));
        if (n <= 0)
            break;
        c->tun_rx++;
        if ((size_t)n > c->inner_mtu) {
            send_icmp_too_big(c, pkt, (size_t)n);
            continue;
        }
        tun_clamp_mss(pkt, (size_t)n, c->inner_mtu);
        unsigned cls = tun_classify(c->cls, c->cfg.n_classes, pkt, (size_t)n);
        (void)bond_send_ip(&c->bond, pkt, (size_t)n, cls, now_us);
    }
}

static void publish(struct agg_client *c)
{
    struct agg_client_stats s;
    memset(&s, 0, sizeof(s));
    s.hub_state = c->hstate;
    s.hub_index = c->hub_idx;
    s.hub_switches = c->hub_switches;
    s.tun_rx_packets = c->tun_rx;
    s.tun_tx_packets = c->tun_tx;
    s.dropped_auth = c->drop_auth;
    s.dropped_replay = c->drop_replay;
    s.dropped_other = c->drop_other + c->bond.drop_bad_inner;
    s.icmp_too_big = c->icmp_too_big;
    s.tx_dropped_nolink = c->bond.drop_nolink;
    s.tx_dropped_queue = c->bond.drop_budget;
    bond_get_stats(&c->bond, &s.bond);
    s.reorder_late = s.bond.late;
    s.reorder_skipped = s.bond.skipped;
    s.n_links = c->cfg.n_links;
    for (unsigned i = 0; i < c->cfg.n_links; i++) {
        uint8_t id = c->cfg.links[i].link_id;
        bond_link_stats(&c->bond, id, &s.links[i]);
        str_copy(s.links[i].name, c->cfg.links[i].name, sizeof(s.links[i].name));
        if (c->lk[id].fd < 0)
            s.links[i].state = AGG_LINK_DOWN;
        if (s.links[i].state != c->snap.links[i].state) {
            static const char *const nm[] = {"down", "probing", "up", "disabled"};
            LOG_I(SUB, "link %s: %s -> %s (srtt %.1f ms, cap %.2f Mbit/s)", c->cfg.links[i].name,
                  nm[c->snap.links[i].state & 3], nm[s.links[i].state & 3], s.links[i].srtt_ms,
                  s.links[i].capacity_bps / 1e6);
            if (c->cb.link_state)
                c->cb.link_state(c->cb.user, id, s.links[i].state);
        }
    }
    pthread_mutex_lock(&c->mu);
    c->snap = s;
    bool wd = c->weights_dirty;
    double w[AGG_MAX_LINKS];
    memcpy(w, c->weights, sizeof(w));
    c->weights_dirty = false;
    pthread_mutex_unlock(&c->mu);
    if (wd) {
        for (unsigned i = 0; i < c->cfg.n_links; i++)
            sched_set_weight(c->bond.sched, c->cfg.links[i].link_id, w[i]);
        /* The hub schedules the downlink: it must drain the same links, at once. */
        if (c->hstate == AGG_HUB_CONNECTED)
            bond_send_weights(&c->bond);
    }
}

/* Take over a new hub list. The current hub stays if the list still has it (no reconnect, no
 * lost session); otherwise the first hub of the new list is tried at once. */
static void apply_hubs(struct agg_client *c, uint64_t now_ms)
{
    pthread_mutex_lock(&c->mu);
    bool dirty = c->hubs_dirty;
    char hubs[AGG_MAX_HUBS][AGG_ADDR_LEN];
    unsigned n = c->n_new_hubs;
    memcpy(hubs, c->new_hubs, sizeof(hubs));
    c->hubs_dirty = false;
    pthread_mutex_unlock(&c->mu);
    if (!dirty || n == 0)
        return;
    char cur[AGG_ADDR_LEN];
    str_copy(cur, c->cfg.hubs[c->hub_idx], sizeof(cur));
    memcpy(c->cfg.hubs, hubs, sizeof(hubs));
    c->cfg.n_hubs = n;
    for (unsigned i = 0; i < n; i++) {
        if (strcmp(hubs[i], cur) == 0) {
            c->hub_idx = i;
            LOG_I(SUB, "hub list: %u hubs, staying on %s", n, cur);
            return;
        }
    }
    LOG_I(SUB, "hub list: %u hubs without %s: moving to %s", n, cur, hubs[0]);
    c->hub_switches++;
    select_hub(c, 0, now_ms);
}

/* Take over a new class table: applied here and sent to the hub at once. */
static void apply_classes_update(struct agg_client *c, uint64_t now_ms)
{
    pthread_mutex_lock(&c->mu);
    bool dirty = c->classes_dirty;
    struct ctrl_classes t = c->new_classes;
    c->classes_dirty = false;
    pthread_mutex_unlock(&c->mu);
    if (!dirty)
        return;
    c->classes = t;
    c->cfg.n_classes = t.n;
    bond_set_classes(&c->bond, &c->classes, false, c->cls);
    if (c->hstate == AGG_HUB_CONNECTED) {
        bond_send_classes(&c->bond, &c->classes);
        c->last_classes_ms = now_ms;
    }
    LOG_I(SUB, "traffic classes: %u in force", t.n);
}

static void on_tick(struct agg_client *c, uint64_t now_us)
{
    uint64_t now_ms = now_us / 1000;
    if (now_ms - c->last_sec_ms >= 1000) {
        c->last_sec_ms = now_ms;
        apply_hubs(c, now_ms);
        apply_classes_update(c, now_ms);
        open_links(c, now_ms);
    }
    if (c->prev && now_ms > c->prev_until_ms) {
        sess_free(c->prev);
        c->prev = NULL;
    }
    unsigned tmo = c->cfg.hub_timeout_ms ? c->cfg.hub_timeout_ms : HUB_TIMEOUT_MS;
    if (c->hstate == AGG_HUB_CONNECTING) {
        if (now_ms - c->hs_first_ms > HS_GIVEUP_MS && c->cfg.n_hubs > 1) {
            c->hub_switches++;
            select_hub(c, (c->hub_idx + 1) % c->cfg.n_hubs, now_ms);
        } else if (now_ms - c->hs_sent_ms >= HS_RETRY_MS) {
            start_handshake(c, now_ms);
        }
    } else if (c->hstate == AGG_HUB_CONNECTED) {
        /* Repeated: the hub forgets a vehicle after 60 s of silence, and a lost copy is cheap. */
        if (now_ms - c->last_weights_ms >= 5000) { /* a lost copy is cheap to repeat */
            bond_send_weights(&c->bond);
            c->last_weights_ms = now_ms;
        }
        if (c->classes.n && now_ms - c->last_classes_ms >= 10000) {
            bond_send_classes(&c->bond, &c->classes);
            c->last_classes_ms = now_ms;
        }
        if (now_ms - c->last_rx_ms > tmo) {
            LOG_W(SUB, "hub %s silent for %u ms", c->cfg.hubs[c->hub_idx], tmo);
            if (c->cfg.n_hubs > 1)
                c->hub_switches++;
            select_hub(c, (c->hub_idx + 1) % c->cfg.n_hubs, now_ms);
        } else if (c->sess && wire_session_state(c->sess, now_ms) != WIRE_SESS_OK) {
            if (!c->rekeying || now_ms - c->hs_sent_ms >= HS_RETRY_MS) {
                c->rekeying = true;
                start_handshake(c, now_ms);
            }
        }
    }
    bond_tick(&c->bond, now_us);
    if (now_ms - c->last_pub_ms >= 100) {
        c->last_pub_ms = now_ms;
        publish(c);
    }
}

static void on_event(void *ctx, uint64_t tag, uint64_t now_us)
{
    struct agg_client *c = ctx;
    uint64_t kind = tag & ~0xffffffffull;
    if (kind == EV_TUN)
        on_tun_readable(c, now_us);
    else if (kind == EV_LINK)
        on_link_readable(c, (uint8_t)(tag & 0xff), now_us);
}

static void on_loop_tick(void *ctx, uint64_t now_us)
{
    on_tick(ctx, now_us);
}

static void client_free(struct agg_client *c)
{
    dploop_close(&c->loop); /* joins the thread first, if it runs */
    for (unsigned i = 0; i < AGG_MAX_LINKS; i++)
        if (c->lk[i].fd >= 0)
            close(c->lk[i].fd);
    if (c->tun >= 0)
        close(c->tun);
    bond_free(&c->bond);
    sess_free(c->sess);
    sess_free(c->prev);
    hs_initiator_wipe(&c->ini);
    sodium_memzero(c->cfg.private_key, sizeof(c->cfg.private_key));
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static int check_classes(const struct agg_class *cl, unsigned n, char *err, size_t errlen)
{
    if (n > AGG_MAX_CLASSES - 1) {
        snprintf(err, errlen, "tunnel: at most %d classes", AGG_MAX_CLASSES - 1);
        return -1;
    }
    struct tun_class tc;
    for (unsigned i = 0; i < n; i++)
        if (tun_class_parse(&cl[i], &tc, err, errlen) != 0)
            return -1;
    return 0;
}

/* The configured classes as the table both ends apply (checked by check_classes). */
static void build_classes(const struct agg_class *cl, unsigned n, struct ctrl_classes *t)
{
    memset(t, 0, sizeof(*t));
    t->n = (uint8_t)n;
    for (unsigned i = 0; i < n; i++) {
        const struct agg_class *ac = &cl[i];
        struct ctrl_class *k = &t->c[i];
        uint32_t net_be = 0;
        unsigned plen = 0;
        if (ac->src_subnet[0])
            tun_parse_prefix(ac->src_subnet, &net_be, &plen);
        k->pfx = (uint8_t)plen;
        k->net = plen ? ntohl(net_be) & (0xffffffffu << (32 - plen)) : 0;
        k->dscp = (int8_t)ac->dscp;
        k->mode = ac->mode == AGG_MODE_FAILOVER    ? SCHED_FAILOVER
                  : ac->mode == AGG_MODE_REDUNDANT ? SCHED_REDUNDANT
                                                   : SCHED_BOND;
        k->passenger = ac->passenger ? 1 : 0;
        k->rate_kbps = ac->rate_kbps;
        for (unsigned r = 0; r < ac->n_failover && r < AGG_MAX_LINKS; r++)
            if (ac->failover_order[r] < AGG_MAX_LINKS)
                k->order[k->n_order++] = ac->failover_order[r];
    }
}

int agg_client_start(const struct agg_client_config *cfg, const struct agg_callbacks *cb,
                     struct agg_client **out, char *err, size_t errlen)
{
    *out = NULL;
    if (cfg->n_hubs == 0 || cfg->n_hubs > AGG_MAX_HUBS || cfg->n_links == 0 ||
        cfg->n_links > AGG_MAX_LINKS || cfg->n_classes > AGG_MAX_CLASSES) {
        snprintf(err, errlen, "tunnel: need 1..%d hubs and 1..%d links", AGG_MAX_HUBS,
                 AGG_MAX_LINKS);
        return -1;
    }
    struct sockaddr_in tmp;
    for (unsigned i = 0; i < cfg->n_hubs; i++) {
        if (udplink_parse_addr(cfg->hubs[i], &tmp) != 0) {
            snprintf(err, errlen, "tunnel: hubs[%u] '%s' is not a.b.c.d:port", i, cfg->hubs[i]);
            return -1;
        }
    }
    bool seen[AGG_MAX_LINKS] = {false};
    for (unsigned i = 0; i < cfg->n_links; i++) {
        uint8_t id = cfg->links[i].link_id;
        if (id >= AGG_MAX_LINKS || seen[id]) {
            snprintf(err, errlen, "tunnel: links[%u] (%s): link id %u out of range or reused", i,
                     cfg->links[i].name, id);
            return -1;
        }
        seen[id] = true;
    }
    if (crypto_lib_init() != 0) {
        snprintf(err, errlen, "tunnel: libsodium init failed");
        return -1;
    }
    struct agg_client *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "tunnel: out of memory");
        return -1;
    }
    c->cfg = *cfg;
    if (cb)
        c->cb = *cb;
    dploop_init(&c->loop);
    c->tun = -1;
    for (unsigned i = 0; i < AGG_MAX_LINKS; i++) {
        c->lk[i].fd = -1;
        c->weights[i] = 1.0;
    }
    pthread_mutex_init(&c->mu, NULL);
    unsigned frag_mtu;
    c->inner_mtu = agg_tun_mtu(cfg->path_mtu, cfg->inner_mtu, &frag_mtu);
    unsigned pfx;
    if (tun_parse_prefix(cfg->address, &c->tun_addr_be, &pfx) != 0) {
        snprintf(err, errlen, "tunnel: address '%s' is not a.b.c.d/nn", cfg->address);
        goto fail;
    }
    if (check_classes(cfg->classes, cfg->n_classes, err, errlen) != 0)
        goto fail;
    if (bond_init(&c->bond, c->inner_mtu, cfg->lz4, deliver, c, err, errlen) != 0)
        goto fail;
    c->bond.frag_mtu = frag_mtu;
    /* One class table for both ends: applied here, sent to the hub for the downlink. */
    build_classes(cfg->classes, cfg->n_classes, &c->classes);
    bond_set_classes(&c->bond, &c->classes, false, c->cls);
    if (hs_initiator_init(&c->ini, cfg->private_key, cfg->hub_public_key, true) != 0) {
        snprintf(err, errlen, "tunnel: handshake init failed (bad key?)");
        goto fail;
    }
    c->tun = tun_open(cfg->tun_name, cfg->address, c->inner_mtu, err, errlen);
    if (c->tun < 0)
        goto fail;
    if (dploop_open(&c->loop, TICK_US, "tunnel", err, errlen) != 0 ||
        dploop_add(&c->loop, c->tun, EV_TUN) != 0)
        goto fail;
    uint64_t now_ms = mono_ms();
    c->last_sec_ms = now_ms;
    if (udplink_parse_addr(cfg->hubs[0], &c->hub) != 0)
        goto fail;
    open_links(c, now_ms);
    select_hub(c, 0, now_ms);
    publish(c);
    c->loop.on_event = on_event;
    c->loop.on_tick = on_loop_tick;
    c->loop.ctx = c;
    c->loop.alive = "tunnel";
    if (dploop_start(&c->loop, "tunnel", err, errlen) != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    client_free(c);
    return -1;
}

void agg_client_stop(struct agg_client *c)
{
    if (!c)
        return;
    client_free(c); /* stops and joins the data-plane thread first */
}

void agg_client_set_weights(struct agg_client *c, const double *weights, unsigned n)
{
    pthread_mutex_lock(&c->mu);
    for (unsigned i = 0; i < n && i < AGG_MAX_LINKS; i++)
        c->weights[i] = weights[i] < 0 ? 0 : weights[i];
    c->weights_dirty = true;
    pthread_mutex_unlock(&c->mu);
}

int agg_client_set_hubs(struct agg_client *c, const char (*hubs)[AGG_ADDR_LEN], unsigned n,
                        char *err, size_t errlen)
{
    if (n == 0 || n > AGG_MAX_HUBS) {
        snprintf(err, errlen, "hub list: need 1..%d hubs, got %u", AGG_MAX_HUBS, n);
        return -1;
    }
    struct sockaddr_in tmp;
    for (unsigned i = 0; i < n; i++) {
        if (udplink_parse_addr(hubs[i], &tmp) != 0) {
            snprintf(err, errlen, "hub list: hubs[%u] '%s' is not a.b.c.d:port", i, hubs[i]);
            return -1;
        }
    }
    pthread_mutex_lock(&c->mu);
    memset(c->new_hubs, 0, sizeof(c->new_hubs));
    for (unsigned i = 0; i < n; i++)
        str_copy(c->new_hubs[i], hubs[i], AGG_ADDR_LEN);
    c->n_new_hubs = n;
    c->hubs_dirty = true;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

int agg_client_set_classes(struct agg_client *c, const struct agg_class *classes, unsigned n,
                           char *err, size_t errlen)
{
    if (check_classes(classes, n, err, errlen) != 0)
        return -1;
    struct ctrl_classes t;
    build_classes(classes, n, &t);
    pthread_mutex_lock(&c->mu);
    c->new_classes = t;
    c->classes_dirty = true;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

void agg_client_get_stats(struct agg_client *c, struct agg_client_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->snap;
    pthread_mutex_unlock(&c->mu);
}
