/* udplink: see udplink.h. */
#include "agg/udplink.h"

#include "common/alive.h"
#include "common/common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* Socket buffers: a 70 Mbit/s link with 150 ms of RTT has ~1.3 MB in flight; the kernel
 * doubles what we ask and caps at rmem_max unless we are privileged (SO_*BUFFORCE). */
#define SOCK_BUF (4 * 1024 * 1024)

int udplink_parse_addr(const char *s, struct sockaddr_in *out)
{
    char host[64];
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon || (size_t)(colon - s) >= sizeof(host) || colon == s)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || port < 1 || port > 65535)
        return -1;
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &out->sin_addr) != 1)
        return -1;
    return 0;
}

uint32_t udplink_if_addr(const char *ifname)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return 0;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    uint32_t a = 0;
    if (ioctl(s, SIOCGIFADDR, &ifr) == 0)
        a = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr.s_addr;
    close(s);
    return a;
}

static void set_bufs(int fd)
{
    int v = SOCK_BUF;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
}

int udplink_open_link(const char *ifname, uint32_t *src_be, char *err, size_t errlen)
{
    *src_be = 0;
    if (!ifname || !*ifname || strlen(ifname) >= IFNAMSIZ) {
        snprintf(err, errlen, "link: bad interface name");
        return -1;
    }
    if (if_nametoindex(ifname) == 0) {
        snprintf(err, errlen, "link %s: no such interface", ifname);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "link %s: socket: %s", ifname, strerror(errno));
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) < 0) {
        snprintf(err, errlen, "link %s: SO_BINDTODEVICE: %s", ifname, strerror(errno));
        close(fd);
        return -1;
    }
    set_bufs(fd);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = udplink_if_addr(ifname);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(err, errlen, "link %s: bind: %s", ifname, strerror(errno));
        close(fd);
        return -1;
    }
    *src_be = sa.sin_addr.s_addr;
    return fd;
}

int udplink_open_listen(const char *addr, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    if (udplink_parse_addr(addr, &sa) != 0) {
        snprintf(err, errlen, "listen: bad address '%s' (want a.b.c.d:port)", addr);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "listen %s: socket: %s", addr, strerror(errno));
        return -1;
    }
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    set_bufs(fd);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(err, errlen, "listen %s: bind: %s", addr, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int udplink_send(int fd, const struct sockaddr_in *to, const void *buf, size_t len)
{
    ssize_t n = sendto(fd, buf, len, 0, (const struct sockaddr *)to, sizeof(*to));
    if (n < 0)
        return -errno;
    return 0;
}

/* ---- dploop -------------------------------------------------------------------------------- */
#define DPLOOP_TIMER (1ull << 63)
#define DPLOOP_STOP  ((1ull << 63) | 1)

void dploop_init(struct dploop *l)
{
    memset(l, 0, sizeof(*l));
    l->epfd = l->tfd = l->efd = -1;
}

int dploop_open(struct dploop *l, unsigned tick_us, const char *who, char *err, size_t errlen)
{
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epfd < 0 || l->tfd < 0 || l->efd < 0) {
        snprintf(err, errlen, "%s: epoll/timerfd/eventfd: %s", who, strerror(errno));
        return -1;
    }
    struct itimerspec its = {.it_interval = {0, (long)tick_us * 1000},
                             .it_value = {0, (long)tick_us * 1000}};
    timerfd_settime(l->tfd, 0, &its, NULL);
    if (dploop_add(l, l->tfd, DPLOOP_TIMER) != 0 || dploop_add(l, l->efd, DPLOOP_STOP) != 0) {
        snprintf(err, errlen, "%s: epoll_ctl: %s", who, strerror(errno));
        return -1;
    }
    return 0;
}

int dploop_add(struct dploop *l, int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
}

void dploop_del(struct dploop *l, int fd)
{
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static void *dploop_run(void *arg)
{
    struct dploop *l = arg;
    struct epoll_event evs[16];
    for (;;) {
        if (l->alive)
            alive_beat(l->alive, NULL);
        int n = epoll_wait(l->epfd, evs, 16, 1000);
        if (n < 0 && errno != EINTR)
            break;
        uint64_t now_us = mono_ns() / 1000;
        bool tick = false;
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;
            if (tag == DPLOOP_STOP)
                return NULL;
            if (tag == DPLOOP_TIMER) {
                uint64_t x;
                if (read(l->tfd, &x, sizeof(x)) < 0) {
                    /* spurious wakeup: nothing to do */
                }
                tick = true;
            } else {
                l->on_event(l->ctx, tag, now_us);
            }
        }
        if (tick)
            l->on_tick(l->ctx, mono_ns() / 1000);
    }
    return NULL;
}

int dploop_start(struct dploop *l, const char *who, char *err, size_t errlen)
{
    if (pthread_create(&l->thr, NULL, dploop_run, l) != 0) {
        snprintf(err, errlen, "%s: pthread_create failed", who);
        return -1;
    }
    l->started = true;
    return 0;
}

void dploop_close(struct dploop *l)
{
    if (l->started) {
        uint64_t one = 1;
        if (write(l->efd, &one, sizeof(one)) < 0)
            LOG_W("tunnel", "stop: eventfd write failed");
        pthread_join(l->thr, NULL);
        l->started = false;
    }
    int fds[] = {l->tfd, l->efd, l->epfd};
    for (unsigned i = 0; i < ARRAY_LEN(fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    l->epfd = l->tfd = l->efd = -1;
}

/* ---- bond ----------------------------------------------------------------------------------- */
#include <lz4.h>
#include <stdatomic.h>

#include "agg/linkest.h"

#define PLACEHOLDER UINT64_MAX
static void outq_flush(struct bond *b, uint64_t now_us);
/* Bytes a packet occupies on the link (IPv4 + UDP + tunnel): rates, queues and delivery
 * reports all count in this one unit so that estimates and the scheduler's model agree. */
#define OUTER_OVERHEAD (20u + 8u + WIRE_OVERHEAD)

/* Queue budget per link. It must exceed the one-way delay spread between the links, or the
 * earliest-arrival rule never reaches the slow-but-big links (a link 55 ms slower than the
 * fastest is only chosen once the fast one queues 55 ms). CORRIDOR_SCHED_TARGET_MS overrides it
 * for experiments (docs/performance.md). */
#define BOND_LINK_QUEUE_MS 20u
/* A packet that waited this long in the sender queue is dropped instead of sent (the links
 * shrank or died under it): TCP has timed it out or will see it as a loss anyway. */
#define TXQ_MAX_WAIT_US 250000u

static void sched_cfg_bond(struct sched_cfg *sc)
{
    sched_cfg_default(sc);
    sc->target_delay_us = 100000;
    const char *e = getenv("CORRIDOR_SCHED_TARGET_MS");
    long v;
    if (e && str_to_long(e, &v) && v >= 1 && v <= 2000)
        sc->target_delay_us = (uint32_t)v * 1000;
    /* Delay equalisation (docs/scheduling.md, "Delay equalisation"): packets of >= 1000 bytes
     * on the wire (and, at the receiver, every TCP segment with data or SYN) are placed by
     * queue alone and padded to the slowest used link's delay, so one TCP flow sees a constant
     * RTT. In the lab it doubled BBR's goodput over 10/25/50 Mbit/s at 20/40/75 ms and helped
     * CUBIC downloads; it costs bulk packets the slowest link's latency.
     * CORRIDOR_EQUALISE_MIN_BYTES=0 turns it off (set the same on both ends). */
    sc->equalise_min_bytes = 1000;
    e = getenv("CORRIDOR_EQUALISE_MIN_BYTES");
    if (e && str_to_long(e, &v) && v >= 0 && v <= 65535)
        sc->equalise_min_bytes = (uint32_t)v;
    /* Sender queue (docs/scheduling.md, "Sender queue"): each link's own queue is kept to
     * BOND_LINK_QUEUE_MS, the rest of the budget waits in the bond. CORRIDOR_LINK_QUEUE_MS
     * overrides it (0 = off: every packet straight to a link's queue, as before). */
    sc->link_queue_us = BOND_LINK_QUEUE_MS * 1000u;
    e = getenv("CORRIDOR_LINK_QUEUE_MS");
    if (e && str_to_long(e, &v) && v >= 0 && v <= 2000)
        sc->link_queue_us = (uint32_t)v * 1000;
    if (sc->link_queue_us > sc->target_delay_us)
        sc->link_queue_us = sc->target_delay_us;
}
#define REORDER_SLOTS 8192u

static uint64_t be64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void be64_put(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

int bond_init(struct bond *b, unsigned inner_mtu, bool lz4, bond_deliver_fn deliver, void *ctx,
              char *err, size_t errlen)
{
    memset(b, 0, sizeof(*b));
    for (unsigned i = 0; i < AGG_MAX_LINKS; i++)
        b->link[i].fd = -1;
    b->inner_mtu = inner_mtu;
    b->lz4 = lz4;
    b->deliver = deliver;
    b->ctx = ctx;
    struct sched_cfg sc;
    sched_cfg_bond(&sc);
    b->sched = sched_new(&sc, err, errlen);
    if (!b->sched)
        return -1;
    b->eq_min_bytes = sc.equalise_min_bytes;
    b->rb = reorder_new(REORDER_SLOTS, 50000, err, errlen);
    b->pool_due = calloc(BOND_RXPOOL, sizeof(*b->pool_due));
    b->pool_frag = calloc(BOND_RXPOOL, sizeof(*b->pool_frag));
    b->outq = calloc(BOND_RXPOOL, sizeof(*b->outq));
    b->tx = calloc(BOND_TXCOPIES, sizeof(*b->tx));
    b->pool = malloc((size_t)BOND_RXPOOL * BOND_PKT_MAX);
    b->pool_len = calloc(BOND_RXPOOL, sizeof(*b->pool_len));
    b->pool_free = calloc(BOND_RXPOOL, sizeof(*b->pool_free));
    if (sc.link_queue_us && b->sched && !(b->txq = calloc(BOND_TXQ, sizeof(*b->txq)))) {
        snprintf(err, errlen, "bond: out of memory");
        bond_free(b);
        return -1;
    }
    if (!b->rb || !b->tx || !b->pool || !b->pool_len || !b->pool_free || !b->pool_due || !b->outq ||
        !b->pool_frag) {
        if (b->rb)
            snprintf(err, errlen, "bond: out of memory");
        bond_free(b);
        return -1;
    }
    for (uint32_t i = 0; i < BOND_RXPOOL; i++)
        b->pool_free[i] = BOND_RXPOOL - 1 - i;
    b->n_free = BOND_RXPOOL;
    ctrl_rx_init(&b->crx);
    return 0;
}

void bond_free(struct bond *b)
{
    sched_free(b->sched);
    reorder_free(b->rb);
    free(b->tx);
    free(b->pool);
    free(b->pool_len);
    free(b->pool_free);
    free(b->pool_due);
    free(b->outq);
    free(b->pool_frag);
    free(b->txq);
    b->txq = NULL;
    b->txq_len = 0;
    b->txq_bytes = 0;
    b->pool_frag = NULL;
    b->pool_due = NULL;
    b->outq = NULL;
    b->sched = NULL;
    b->rb = NULL;
    b->tx = NULL;
    b->pool = NULL;
    b->pool_len = NULL;
    b->pool_free = NULL;
}

static void apply_classes(struct bond *b, const struct ctrl_classes *t);

int bond_reset_seq(struct bond *b, char *err, size_t errlen)
{
    /* Held packets of the old session are delivered now (better late than lost). */
    uint64_t h;
    uint64_t far = UINT64_MAX / 2;
    outq_flush(b, far);
    while (reorder_pop(b->rb, far, &h) == 1) {
        if (h != PLACEHOLDER && b->pool_frag[h]) {
            b->pool_free[b->n_free++] = (uint32_t)h; /* a piece without its packet: gone */
            b->frag_dropped++;
        } else if (h != PLACEHOLDER) {
            b->deliver(b->ctx, b->pool + h * BOND_PKT_MAX, b->pool_len[h]);
            b->pool_free[b->n_free++] = (uint32_t)h;
        }
    }
    b->reasm_count = 0;
    struct reorder *rb = reorder_new(REORDER_SLOTS, reorder_hold(b->rb), err, errlen);
    if (!rb)
        return -1;
    reorder_free(b->rb);
    b->rb = rb;
    /* The scheduler's in-flight rings are keyed by the old packet numbers: start a new one,
     * keeping nothing but the links (estimates are re-learnt within a second). */
    struct sched_cfg sc;
    sched_cfg_bond(&sc);
    struct sched *s = sched_new(&sc, err, errlen);
    if (!s)
        return -1;
    uint64_t now = mono_ns() / 1000;
    for (unsigned i = 0; i < AGG_MAX_LINKS; i++) {
        if (b->link[i].present) {
            struct sched_link_info li;
            double w = sched_link_info(b->sched, (uint8_t)i, &li) == 0 ? li.weight : 1.0;
            sched_add_link(s, (uint8_t)i, now);
            sched_set_weight(s, (uint8_t)i, w);
        }
    }
    sched_free(b->sched);
    b->sched = s;
    if (b->classes_set) /* the new scheduler gets the same classes */
        apply_classes(b, &b->classes);
    ctrl_rx_init(&b->crx);
    /* Forget the old session's copies: only slots that held one are written (an idle bond's
     * pages stay untouched). */
    b->last_gaps = 0;
    b->rs_head = b->rs_len = 0;
    b->data_k = b->ctrl_k = 0;
    return 0;
}

int bond_add_link(struct bond *b, uint8_t link_id, int fd, const struct sockaddr_in *peer,
                  uint64_t now_us)
{
    if (link_id >= AGG_MAX_LINKS)
        return -1;
    struct bond_link *l = &b->link[link_id];
    if (!l->present) {
        if (sched_add_link(b->sched, link_id, now_us) != 0)
            return -1;
        l->present = true;
    }
    l->fd = fd;
    if (peer)
        bond_set_peer(b, link_id, peer);
    return 0;
}

void bond_set_peer(struct bond *b, uint8_t link_id, const struct sockaddr_in *peer)
{
    if (link_id >= AGG_MAX_LINKS)
        return;
    b->link[link_id].peer = *peer;
    b->link[link_id].has_peer = true;
}

static void link_tx(struct bond *b, uint8_t link_id, const uint8_t *pkt, size_t len)
{
    struct bond_link *l = &b->link[link_id];
    if (!l->present || !l->has_peer || l->fd < 0)
        return;
    if (udplink_send(l->fd, &l->peer, pkt, len) != 0) {
        l->send_errors++;
        return;
    }
    l->tx_pkts++;
    l->tx_bytes += len;
}

/* Packet numbers: data packets take the even numbers 2k (k = the data sequence the scheduler,
 * the feedback and the receiver's reorder buffer use), control packets (probes, feedback,
 * keepalives, re-sends) the odd ones just above the current data number. The receiver thus
 * knows from the number alone whether a gap can hold data: a probe still travelling on a slow
 * link never holds up data that arrived on a fast one. Odd numbers strictly increase and stay
 * next to the even ones, so both stay inside the receiver's replay window. */
static void note_pn(struct bond *b, uint64_t pn)
{
    uint64_t cur = atomic_load_explicit(&b->sess->tx_next, memory_order_relaxed);
    if (pn + 1 > cur) /* keeps wire's packet-limit and rekey accounting right */
        atomic_store_explicit(&b->sess->tx_next, pn + 1, memory_order_relaxed);
}

static uint64_t ctrl_pn(struct bond *b)
{
    uint64_t k = b->ctrl_k + 1 > b->data_k ? b->ctrl_k + 1 : b->data_k;
    b->ctrl_k = k;
    return 2 * k + 1;
}

static void send_ctrl(struct bond *b, uint8_t link_id, uint8_t inner, const uint8_t *payload,
                      size_t len)
{
    if (!b->sess || link_id >= AGG_MAX_LINKS || !b->link[link_id].has_peer)
        return;
    uint64_t pn = ctrl_pn(b);
    int n = wire_seal_pn(b->sess, pn, link_id, inner, payload, len, b->out, sizeof(b->out));
    if (n > 0) {
        note_pn(b, pn);
        link_tx(b, link_id, b->out, (size_t)n);
    }
}

void bond_keepalive_all(struct bond *b, uint64_t now_us)
{
    (void)now_us;
    for (unsigned i = 0; i < AGG_MAX_LINKS; i++)
        if (b->link[i].present && b->link[i].has_peer)
            send_ctrl(b, (uint8_t)i, WIRE_INNER_KEEPALIVE, NULL, 0);
}

/* A copy wrapped with its original packet number, sealed under a new one. */
static void send_wrapped(struct bond *b, uint8_t link_id, uint64_t seq, uint8_t inner,
                         const uint8_t *ip, size_t len)
{
    if (len + 9 > sizeof(b->scratch))
        return;
    be64_put(b->scratch, seq);
    b->scratch[8] = inner;
    memcpy(b->scratch + 9, ip, len);
    send_ctrl(b, link_id, BOND_INNER_RESEND, b->scratch, len + 9);
}

static void pump_resends(struct bond *b, uint64_t now_us);

/* Seal and send one data packet the scheduler placed (d, recorded under sequence data_k) of
 * inner type `inner` (WIRE_INNER_IP, or a WIRE_INNER_FRAG piece). Keeps the plaintext copy for
 * repairs. */
static void transmit(struct bond *b, const struct sched_decision *dp, uint8_t inner,
                     const uint8_t *data, size_t len)
{
    struct sched_decision d = *dp;
    uint64_t seq = b->data_k;
    b->data_k++;
    /* The slot's copy is the previous user's until the end: invalidate it first so a failed
     * seal below never leaves an old (or old-session) copy under this sequence. Copies are not
     * cleared when a session starts (that would touch all 6.6 MB of an idle bond). */
    struct bond_txcopy *c = &b->tx[seq & (BOND_TXCOPIES - 1)];
    c->seq1 = 0;
    uint64_t pn = 2 * seq;
    int n = -1;
    if (inner == WIRE_INNER_IP && b->lz4 && len >= WIRE_LZ4_MIN_INPUT &&
        (b->lz4_streak < 8 || (seq & 31) == 0)) {
        /* Compressed straight behind the header; kept only when it saves enough. */
        int z = LZ4_compress_default((const char *)data, (char *)b->out + WIRE_PAYLOAD_OFFSET,
                                     (int)len, (int)len - (int)WIRE_LZ4_MIN_SAVING);
        if (z > 0) {
            b->lz4_streak = 0;
            n = wire_seal_pn(b->sess, pn, d.link[0], WIRE_INNER_IP_LZ4,
                             b->out + WIRE_PAYLOAD_OFFSET, (size_t)z, b->out, sizeof(b->out));
        } else {
            b->lz4_streak++;
        }
    }
    if (n < 0)
        n = wire_seal_pn(b->sess, pn, d.link[0], inner, data, len, b->out, sizeof(b->out));
    if (n < 0) {
        b->drop_oversize++;
        return;
    }
    note_pn(b, pn);
    c->seq1 = seq + 1;
    c->len = (uint16_t)len;
    c->inner = inner;
    memcpy(c->data, data, len);
    link_tx(b, d.link[0], b->out, (size_t)n);
    if (d.n == 2)
        send_wrapped(b, d.link[1], seq, inner, data, len);
}

static bool is_tcp_data_or_syn(const uint8_t *ip, size_t n);

static void count_refusal(struct bond *b, enum sched_verdict v)
{
    if (v == SCHED_DROP_NOLINK)
        b->drop_nolink++;
    else
        b->drop_budget++;
}

/* The sender queue's head packets go while some link has room for them (after the repairs,
 * which bond_tick and bond_send_ip pump first). */
static void pump_queue(struct bond *b, uint64_t now_us)
{
    while (b->txq_len > 0) {
        struct bond_txq_ent *e = &b->txq[b->txq_head];
        uint32_t wire = (uint32_t)e->len + OUTER_OVERHEAD;
        if (now_us - e->t_us > TXQ_MAX_WAIT_US) {
            b->drop_stale++;
        } else {
            struct sched_decision d;
            enum sched_verdict v = sched_send_queued(b->sched, b->data_k, wire, e->cls, now_us, &d);
            if (v != SCHED_SEND)
                return; /* no room (or no link) now: the next tick or packet tries again */
            transmit(b, &d, e->inner, e->data, e->len);
        }
        b->txq_head = (b->txq_head + 1) & (BOND_TXQ - 1);
        b->txq_len--;
        b->txq_bytes -= wire;
    }
    b->txq_bytes = 0; /* empty: no rounding left over */
}

/* Bulk, one rule for both ends: at least min_bytes on the wire (wire_len: the payload as sent),
 * or a TCP segment with data or a SYN whatever its size (all of a flow's segments must see the
 * same delay and order). What the receiver pads for equalisation, and what the sender queues.
 * ACKs, DNS, VoIP and other small packets are not. */
static bool is_bulk(size_t wire_len, const uint8_t *ip, size_t ip_len, bool frag,
                    uint32_t min_bytes)
{
    return wire_len + OUTER_OVERHEAD >= min_bytes || (!frag && is_tcp_data_or_syn(ip, ip_len));
}

/* The sender queue's packets: bulk at the equalisation size (also with equalisation off), and
 * every fragment. */
static bool queued_bulk(const struct bond *b, uint8_t inner, const uint8_t *data, size_t len)
{
    return inner == WIRE_INNER_FRAG ||
           is_bulk(len, data, len, false, b->eq_min_bytes ? b->eq_min_bytes : 1000);
}

/* One data packet: into the sender queue (bulk of a bonded class) or straight to a link.
 * 0 queued or sent, -1 dropped (counted). */
static int send_one(struct bond *b, uint8_t inner, const uint8_t *data, size_t len, unsigned cls,
                    uint64_t now_us)
{
    uint32_t wire = (uint32_t)(len + OUTER_OVERHEAD);
    enum sched_verdict v;
    if (b->txq && sched_queued_class(b->sched, cls, wire) && queued_bulk(b, inner, data, len)) {
        v = b->txq_len < BOND_TXQ ? sched_queue_admit(b->sched, cls, wire, b->txq_bytes, now_us)
                                  : SCHED_DROP_BUDGET;
        if (v != SCHED_SEND) {
            count_refusal(b, v);
            return -1;
        }
        struct sched_decision d;
        if (b->txq_len == 0 &&
            sched_send_queued(b->sched, b->data_k, wire, cls, now_us, &d) == SCHED_SEND) {
            transmit(b, &d, inner, data, len); /* a link has room now: no copy into the queue */
            return 0;
        }
        struct bond_txq_ent *e = &b->txq[(b->txq_head + b->txq_len) & (BOND_TXQ - 1)];
        e->t_us = now_us;
        e->len = (uint16_t)len;
        e->inner = inner;
        e->cls = (uint8_t)cls;
        memcpy(e->data, data, len);
        b->txq_len++;
        b->txq_bytes += wire;
        if (b->txq_len > 1)
            pump_queue(b, now_us); /* older packets first; this one when its turn comes */
        return 0;
    }
    struct sched_decision d;
    v = sched_send(b->sched, b->data_k, wire, cls, now_us, &d);
    if (v != SCHED_SEND) {
        count_refusal(b, v);
        return -1;
    }
    transmit(b, &d, inner, data, len);
    return 0;
}

/* A packet over frag_mtu: 2..15 pieces of equal size (equal pieces arrive together whatever
 * link each takes), each [index<<4 | count][bytes], on consecutive sequences. */
static int send_fragments(struct bond *b, const uint8_t *ip, size_t len, unsigned cls,
                          uint64_t now_us)
{
    size_t room = b->frag_mtu - 1;
    size_t count = (len + room - 1) / room;
    if (count < 2 || count > 15) {
        b->drop_oversize++;
        return -1;
    }
    size_t per = (len + count - 1) / count;
    uint8_t piece[BOND_PKT_MAX];
    for (size_t i = 0, off = 0; i < count; i++, off += per) {
        size_t n = len - off < per ? len - off : per;
        piece[0] = wire_frag_byte((unsigned)i, (unsigned)count);
        memcpy(piece + 1, ip + off, n);
        /* A refused piece leaves a partial packet the receiver drops; the rest still go, so
         * sequence and repair state stay simple (TCP retransmits the whole packet anyway). */
        if (send_one(b, WIRE_INNER_FRAG, piece, n + 1, cls, now_us) != 0)
            return -1;
        b->frag_sent++;
    }
    return 0;
}

int bond_send_ip(struct bond *b, const uint8_t *ip, size_t len, unsigned cls, uint64_t now_us)
{
    if (!b->sess) {
        b->drop_nolink++;
        return -1;
    }
    if (len == 0 || len > BOND_PKT_MAX) {
        b->drop_oversize++;
        return -1;
    }
    /* Queued repairs go first (they may use half a budget more than new data). New data is
     * NOT refused while repairs wait: those would include TCP's own retransmissions, and
     * losing them costs a retransmission timeout. */
    if (b->rs_len > 0)
        pump_resends(b, now_us);
    if (b->frag_mtu && len > b->frag_mtu)
        return send_fragments(b, ip, len, cls, now_us);
    return send_one(b, WIRE_INNER_IP, ip, len, cls, now_us);
}

static void deliver_now(struct bond *b, uint64_t h)
{
    b->deliver(b->ctx, b->pool + h * BOND_PKT_MAX, b->pool_len[h]);
    b->rx_delivered++;
    b->pool_free[b->n_free++] = (uint32_t)h;
}

/* Deliver the equalisation FIFO's packets that are due (all with now_us = far future). */
static void outq_flush(struct bond *b, uint64_t now_us)
{
    while (b->outq_len > 0) {
        uint32_t h = b->outq[b->outq_head];
        if (b->pool_due[h] > now_us)
            break;
        b->outq_head = (b->outq_head + 1) % BOND_RXPOOL;
        b->outq_len--;
        deliver_now(b, h);
    }
}

/* A packet the reorder buffer releases in order. A padded bulk packet joins the FIFO behind
 * earlier padded ones (never overtaking them: their order is the flow's order). Small packets
 * (ACKs, interactive, VoIP) are not held: they may overtake held bulk packets, which only
 * reorders different flows in practice. The FIFO never holds more than half the pool, so
 * padding cannot starve the receive path of buffers (then bulk goes out unpadded). */
static void deliver_handle(struct bond *b, uint64_t h, uint64_t now_us)
{
    if (h == PLACEHOLDER)
        return;
    uint64_t due = b->pool_due[h];
    if (due == 0 || (b->outq_len == 0 && due <= now_us) || b->outq_len >= BOND_RXPOOL / 2) {
        if (due != 0 && b->outq_len > 0) {
            /* bulk behind held bulk: keep their order, even when the FIFO is full */
            outq_flush(b, UINT64_MAX);
        }
        deliver_now(b, h);
        return;
    }
    if (due < b->outq_tail_due)
        due = b->outq_tail_due;
    b->pool_due[h] = due;
    b->outq_tail_due = due;
    b->outq[(b->outq_head + b->outq_len) % BOND_RXPOOL] = (uint32_t)h;
    b->outq_len++;
    b->rx_padded++;
}

/* What the reorder buffer releases, in order. Fragments are joined here, before the delivery
 * stage, so a whole packet is delayed, padded and delivered like any other: pieces arrive in
 * sequence order, index 0 first; anything else (a piece skipped after the hold, a count that
 * changes) drops the partial packet. The joined packet takes the last piece's handle. */
static void release_handle(struct bond *b, uint64_t h, uint64_t now_us)
{
    /* A whole packet between pieces can only be a late repair delivered out of order: it
     * leaves an open packet alone (a lost piece shows as the wrong next index instead). */
    if (h == PLACEHOLDER || !b->pool_frag[h]) {
        deliver_handle(b, h, now_us);
        return;
    }
    uint8_t *p = b->pool + h * BOND_PKT_MAX;
    size_t n = b->pool_len[h];
    unsigned idx = p[0] >> 4, cnt = p[0] & 0x0f;
    bool ok = cnt >= 2 && idx < cnt;
    if (ok && idx == 0) {
        if (b->reasm_count)
            b->frag_dropped++;
        b->reasm_count = (uint8_t)cnt;
        b->reasm_next = 0;
        b->reasm_len = 0;
    }
    ok = ok && b->reasm_count == cnt && b->reasm_next == idx &&
         b->reasm_len + n - 1 <= sizeof(b->reasm);
    if (!ok) {
        if (b->reasm_count)
            b->frag_dropped++;
        b->reasm_count = 0;
        b->pool_free[b->n_free++] = (uint32_t)h;
        return;
    }
    memcpy(b->reasm + b->reasm_len, p + 1, n - 1);
    b->reasm_len += n - 1;
    b->reasm_next++;
    if (idx + 1 < cnt) {
        b->pool_free[b->n_free++] = (uint32_t)h;
        return;
    }
    memcpy(p, b->reasm, b->reasm_len);
    b->pool_len[h] = (uint16_t)b->reasm_len;
    b->pool_frag[h] = 0;
    b->reasm_count = 0;
    b->frag_joined++;
    deliver_handle(b, h, now_us);
}

/* A TCP segment that carries data or a SYN (IPv4, or IPv6 without extension headers): held
 * like a bulk packet when equalising, whatever its size. TCP's RTT samples must all see the
 * same delay: CUBIC's HyStart leaves slow start as soon as a round's RTT exceeds the minimum by
 * 1/8, and a handshake or a small first write (iperf3's 37-byte cookie, an HTTP request) over
 * the fast link alone gives a 40 ms minimum against 95 ms equalised data: slow start ended at
 * ~28 segments. Pure ACKs (and UDP, ICMP) stay the latency class. */
static bool is_tcp_data_or_syn(const uint8_t *ip, size_t n)
{
    size_t off;
    if (n >= 20 && ip[0] >> 4 == 4 && ip[9] == 6)
        off = (size_t)(ip[0] & 15) * 4;
    else if (n >= 40 && ip[0] >> 4 == 6 && ip[6] == 6)
        off = 40;
    else
        return false;
    if (off + 14 > n)
        return false;
    size_t hdr = off + (size_t)(ip[off + 12] >> 4) * 4;
    return (ip[off + 13] & 0x02) != 0 || n > hdr;
}

static void push_packet(struct bond *b, uint8_t link_id, uint64_t seq, uint8_t inner,
                        const uint8_t *p, size_t len, bool wrapped, uint64_t now_us)
{
    if (b->n_free == 0) {
        b->drop_pool++;
        return;
    }
    uint32_t h = b->pool_free[b->n_free - 1];
    uint8_t *dst = b->pool + (size_t)h * BOND_PKT_MAX;
    int n;
    if (inner == WIRE_INNER_IP_LZ4) {
        n = wire_decompress(p, len, dst, b->inner_mtu);
    } else if (inner == WIRE_INNER_FRAG) {
        n = len >= 2 && len <= BOND_PKT_MAX ? (int)len : -1;
        if (n > 0)
            memcpy(dst, p, len);
    } else if (len <= b->inner_mtu && len <= BOND_PKT_MAX) {
        memcpy(dst, p, len);
        n = (int)len;
    } else {
        n = -1;
    }
    if (n <= 0) {
        b->drop_bad_inner++;
        return;
    }
    b->n_free--;
    b->pool_len[h] = (uint16_t)n;
    b->pool_frag[h] = inner == WIRE_INNER_FRAG;
    /* Equalisation: bulk packets (same size rule as the peer's scheduler, on the wire size)
     * are due after their link's delay difference to the slowest link in use. Not a repair
     * (or a redundant copy): it comes late already, and every packet held behind its hole
     * waits for it, so it goes at once. Padded by the fast link it came on, a repair of a loss
     * on the slowest link held delivery for that link's whole pad again (55 ms in three-links
     * after ~50 ms of repair). */
    uint32_t pad = link_id < AGG_MAX_LINKS && !wrapped ? b->rx_pad_us[link_id] : 0;
    /* A bulk packet from the slowest link (pad 0) still queues behind held bulk ones: only
     * pool_due == 0 (small, or equalisation off) may overtake. */
    b->pool_due[h] =
        b->eq_min_bytes && is_bulk(len, dst, (size_t)n, b->pool_frag[h], b->eq_min_bytes)
            ? (now_us + pad ? now_us + pad : 1)
            : 0;
    enum reorder_verdict v = reorder_push(b->rb, seq, h, now_us);
    if (v == REORDER_LATE) {
        release_handle(b, h, now_us);
    } else if (v != REORDER_HELD) {
        b->pool_free[b->n_free++] = h;
    }
}

static void on_ctrl(struct bond *b, uint8_t link_id, const struct wire_rx *rx, uint64_t now_us)
{
    /* ctrl payloads start with their own type byte, which is the inner type: rebuild the
     * view including it (wire strips the inner type byte from payload). */
    const uint8_t *p = rx->payload - 1;
    size_t len = rx->len + 1;
    switch (rx->inner_type) {
    case CTRL_PROBE:
    case CTRL_PROBE_PAD: {
        struct ctrl_probe pr;
        if (ctrl_decode_probe(p, len, &pr) != 0)
            break;
        struct linkest *le = sched_link_est_mut(b->sched, link_id);
        if (le)
            linkest_on_probe_rx(le, &pr, now_us);
        struct ctrl_probe_reply rep = {
            .link_id = pr.link_id, .probe_seq = pr.probe_seq, .tx_us = pr.tx_us, .rx_us = now_us};
        uint8_t buf[64];
        size_t n = ctrl_encode_probe_reply(&rep, buf, sizeof(buf));
        if (n > 1)
            send_ctrl(b, link_id, buf[0], buf + 1, n - 1);
        break;
    }
    case CTRL_PROBE_REPLY: {
        struct ctrl_probe_reply r;
        if (ctrl_decode_probe_reply(p, len, &r) == 0)
            sched_on_probe_reply(b->sched, &r, now_us);
        break;
    }
    case CTRL_FEEDBACK: {
        struct ctrl_feedback fb;
        if (ctrl_decode_feedback(p, len, &fb) == 0)
            sched_on_feedback(b->sched, &fb, link_id, now_us);
        break;
    }
    case CTRL_WEIGHTS: {
        /* The vehicle policy's weights: the hub's downlink drains the same links. A session's
         * new scheduler keeps them (bond_reset_seq copies the weights). */
        struct ctrl_weights cw;
        if (ctrl_decode_weights(p, len, &cw) == 0)
            for (unsigned i = 0; i < cw.n; i++)
                sched_set_weight(b->sched, cw.link_id[i], cw.w[i] / 65535.0);
        break;
    }
    case CTRL_CLASSES: {
        struct ctrl_classes tab;
        memset(&tab, 0, sizeof(tab));
        /* Sent every 10 s: only a changed table is news for the engine. */
        if (ctrl_decode_classes(p, len, &tab) == 0 &&
            (tab.n != b->peer_classes.n ||
             memcmp(tab.c, b->peer_classes.c, tab.n * sizeof tab.c[0]) != 0)) {
            b->peer_classes = tab;
            b->peer_classes_new = true;
        }
        break;
    }
    default:
        break;
    }
}

void bond_on_rx(struct bond *b, uint8_t link_id, const struct wire_rx *rx, uint64_t now_us)
{
    if (link_id >= AGG_MAX_LINKS)
        return;
    struct bond_link *l = &b->link[link_id];
    l->rx_pkts++;
    l->rx_bytes += rx->len + OUTER_OVERHEAD;
    switch (rx->inner_type) {
    case WIRE_INNER_IP:
    case WIRE_INNER_IP_LZ4:
    case WIRE_INNER_FRAG:
        if (rx->pn & 1) { /* data on a control number: not ours */
            b->drop_bad_inner++;
            break;
        }
        ctrl_rx_on_data(&b->crx, link_id, rx->pn / 2, (uint32_t)(rx->len + OUTER_OVERHEAD), now_us);
        push_packet(b, link_id, rx->pn / 2, rx->inner_type, rx->payload, rx->len, false, now_us);
        break;
    case BOND_INNER_RESEND:
        if (rx->len > 9) {
            uint64_t seq = be64_get(rx->payload);
            uint8_t inner = rx->payload[8];
            if (inner != WIRE_INNER_IP && inner != WIRE_INNER_IP_LZ4 && inner != WIRE_INNER_FRAG) {
                b->drop_bad_inner++;
                break;
            }
            ctrl_rx_on_data(&b->crx, link_id, seq, (uint32_t)(rx->len + OUTER_OVERHEAD), now_us);
            push_packet(b, link_id, seq, inner, rx->payload + 9, rx->len - 9, true, now_us);
        }
        break;
    default:
        if (rx->inner_type >= WIRE_INNER_CTRL_FIRST && rx->inner_type <= WIRE_INNER_CTRL_LAST)
            on_ctrl(b, link_id, rx, now_us);
        else if (rx->inner_type != WIRE_INNER_KEEPALIVE)
            b->drop_bad_inner++;
        break;
    }
}

void bond_release(struct bond *b, uint64_t now_us)
{
    uint64_t h;
    outq_flush(b, now_us);
    while (reorder_pop(b->rb, now_us, &h) == 1)
        release_handle(b, h, now_us);
    outq_flush(b, now_us);
}

/* Receive-side padding per link for delay equalisation: the base transit of the slowest live
 * link (the peer's probes, receive direction) minus this link's, capped at EQ_MAX_PAD_US so a
 * link of absurd delay cannot hold everything back. Links without a probe for a second are
 * left out, like in the reorder hold. */
#define EQ_MAX_PAD_US 200000

/* A link bringing under 5 % of what this end receives now (rx_share, an EWMA of ~1 s updated
 * by update_rx_pad): left out of the hold's detection allowance. */
static bool rx_share_small(const struct bond *b, uint8_t link_id)
{
    if (link_id >= AGG_MAX_LINKS)
        return false;
    double tot = 0;
    for (unsigned k = 0; k < AGG_MAX_LINKS; k++)
        tot += b->rx_share[k];
    return b->rx_share[link_id] < 0.05 * tot;
}

/* A link that has brought under 5 % of what this end receives for 2 s of load: left out of
 * the equalisation pad (the peer's scheduler leaves such links out of its equalised delay
 * too). A saturated 200 kbit/s link, whose probes queue behind its data, would otherwise hold
 * all traffic for its queue (asym: 24 Mbit/s instead of 34). Every link counts until proven
 * small: a TCP flow that starts on the fast links while the slow one's estimate is still tiny
 * must not learn its minimum RTT from a pad without the slow link and then see the RTT jump
 * when that link's share passes 5 %. In three-links a flow's first samples were 60-70 ms, the
 * later ones ~97 ms, and CUBIC's HyStart ends slow start on a rise of 1/8. An idle bond
 * (under 4.8 Mbit/s) brings every link back, so the next flow starts with the full pad too: a
 * version that kept the old verdict through idle spells started later flows at a 72 ms minimum
 * RTT and they left slow start at 28 segments (bench_tunnel.sh slowstart). */
#define PAD_SMALL_UPDATES 20      /* 2 s of pad updates */
#define PAD_LOADED_BYTES  60000.0 /* per 100 ms */
static bool pad_leaves_out(const struct bond *b, uint8_t link_id)
{
    return link_id < AGG_MAX_LINKS && b->pad_small_n[link_id] >= PAD_SMALL_UPDATES;
}

static void update_rx_pad(struct bond *b, const struct linkest *es, size_t ne, uint64_t now_us)
{
    /* Which links the peer really uses: an EWMA (~1 s) of what each link delivered here. */
    double tot = 0;
    for (unsigned k = 0; k < AGG_MAX_LINKS; k++) {
        uint64_t rb = b->link[k].rx_bytes;
        b->rx_share[k] += ((double)(rb - b->rx_pad_bytes[k]) - b->rx_share[k]) / 8.0;
        b->rx_pad_bytes[k] = rb;
        tot += b->rx_share[k];
    }
    for (unsigned k = 0; k < AGG_MAX_LINKS; k++) {
        if (tot < PAD_LOADED_BYTES || b->rx_share[k] >= 0.05 * tot)
            b->pad_small_n[k] = 0;
        else if (b->pad_small_n[k] < PAD_SMALL_UPDATES)
            b->pad_small_n[k]++;
    }
    int64_t hi = INT64_MIN;
    for (size_t i = 0; i < ne; i++) {
        const struct linkest *e = &es[i];
        if (!linkest_usable(e) || !e->has_rx || now_us - e->rx_last_us > 1000000)
            continue;
        if (pad_leaves_out(b, e->link_id))
            continue;
        if (e->rx_base_us > hi)
            hi = e->rx_base_us;
    }
    memset(b->rx_pad_us, 0, sizeof(b->rx_pad_us));
    if (!b->eq_min_bytes || hi == INT64_MIN)
        return;
    for (size_t i = 0; i < ne; i++) {
        const struct linkest *e = &es[i];
        if (e->link_id >= AGG_MAX_LINKS || !e->has_rx || now_us - e->rx_last_us > 1000000)
            continue;
        int64_t d = hi - e->rx_base_us;
        b->rx_pad_us[e->link_id] = d <= 0 ? 0 : d > EQ_MAX_PAD_US ? EQ_MAX_PAD_US : (uint32_t)d;
    }
}

#define RESEND_MAX_AGE_US 300000 /* after this the receiver's hold has given up anyway */

/* Send queued repairs, oldest first. A repair that finds every link over its queue budget
 * waits for the next tick instead of being dropped: right after a link dies its in-flight
 * packets land on links that are already full, and dropping them would turn one link failure
 * into a burst of TCP losses (a timeout). */
static void pump_resends(struct bond *b, uint64_t now_us)
{
    uint64_t seqs[64];
    size_t nr;
    while ((nr = sched_take_resend(b->sched, seqs, ARRAY_LEN(seqs))) > 0) {
        for (size_t i = 0; i < nr && b->rs_len < BOND_TXCOPIES; i++) {
            uint32_t k = (b->rs_head + b->rs_len) & (BOND_TXCOPIES - 1);
            b->rs_seq[k] = seqs[i];
            b->rs_t[k] = now_us;
            b->rs_len++;
        }
        if (nr < ARRAY_LEN(seqs))
            break;
    }
    while (b->rs_len > 0) {
        uint64_t seq = b->rs_seq[b->rs_head];
        struct bond_txcopy *c = &b->tx[seq & (BOND_TXCOPIES - 1)];
        if (c->seq1 != seq + 1 || now_us - b->rs_t[b->rs_head] > RESEND_MAX_AGE_US) {
            if (c->seq1 == seq + 1)
                b->resend_expired++;
        } else {
            struct sched_decision d;
            enum sched_verdict v =
                sched_resend(b->sched, seq, (uint32_t)(c->len + OUTER_OVERHEAD + 9), now_us, &d);
            if (v == SCHED_DROP_BUDGET)
                return; /* no room now: keep it and the rest for the next tick */
            if (v == SCHED_SEND) {
                send_wrapped(b, d.link[0], seq, c->inner, c->data, c->len);
                b->link[d.link[0]].resent++;
                b->resent++;
            }
        }
        b->rs_head = (b->rs_head + 1) & (BOND_TXCOPIES - 1);
        b->rs_len--;
    }
}

static int fastest_link(struct bond *b)
{
    int best = -1;
    uint32_t bt = UINT32_MAX;
    for (unsigned i = 0; i < AGG_MAX_LINKS; i++) {
        if (!b->link[i].present || !b->link[i].has_peer)
            continue;
        const struct linkest *e = sched_link_est(b->sched, (uint8_t)i);
        if (!e || !linkest_usable(e))
            continue;
        uint32_t t = e->has_rtt ? e->srtt_us : 1000000;
        if (t < bt) {
            bt = t;
            best = (int)i;
        }
    }
    return best;
}

void bond_tick(struct bond *b, uint64_t now_us)
{
    if (!b->sess)
        return;
    /* Probes (every 100 ms per link when idle) and liveness. */
    struct ctrl_probe pr[SCHED_TICK_MAX_PROBES(AGG_MAX_LINKS)];
    size_t np = sched_tick(b->sched, now_us, pr, ARRAY_LEN(pr));
    for (size_t i = 0; i < np; i++) {
        uint8_t buf[CTRL_PROBE_PAD_MAX + 32];
        size_t n = ctrl_encode_probe(&pr[i], buf, sizeof(buf));
        if (n > 1)
            send_ctrl(b, pr[i].link_id, buf[0], buf + 1, n - 1);
    }
    /* Re-sends: lost on a link (feedback) or in flight on a link that just died. Then the
     * sender queue, behind them. */
    pump_resends(b, now_us);
    if (b->txq_len > 0)
        pump_queue(b, now_us);
    /* Feedback: paced per link, plus an urgent copy on the fastest link when a gap opened so
     * the sender can repair it before the hold time runs out. */
    struct reorder_stats rs;
    reorder_get_stats(b->rb, &rs);
    int urgent = -1;
    if (rs.gaps_opened != b->last_gaps) {
        b->last_gaps = rs.gaps_opened;
        urgent = fastest_link(b);
    }
    uint8_t ids[AGG_MAX_LINKS];
    size_t nf = ctrl_rx_due(&b->crx, now_us, urgent, ids, ARRAY_LEN(ids));
    if (nf > 0) {
        struct ctrl_feedback fb;
        ctrl_rx_build(&b->crx, b->rb, now_us, &fb);
        uint8_t buf[CTRL_MAX_ENCODED];
        size_t n = ctrl_encode_feedback(&fb, buf, sizeof(buf));
        for (size_t i = 0; i < nf && n > 1; i++)
            send_ctrl(b, ids[i], buf[0], buf + 1, n - 1);
    }
    /* Reorder hold from the receive-direction delay spread, re-evaluated every 100 ms. */
    if (now_us - b->last_hold_us > 100000) {
        b->last_hold_us = now_us;
        size_t ne = 0;
        struct linkest *es = sched_estimators(b->sched, &ne);
        /* Repair time: the gap is reported on the fastest reverse path and the copy comes
         * back on whichever link arrives first, behind that link's queue. Our own RTT samples
         * of the slowest link include the peer's queues (its probe replies cross them), so
         * the largest srtt bounds the repair; holding a little too long only delays the rare
         * unrepairable loss, releasing too early turns every repair into a TCP loss. */
        uint32_t arq = 0, detect = 0;
        for (size_t i = 0; i < ne; i++) {
            if (!linkest_usable(&es[i]) || !es[i].has_rtt)
                continue;
            if (es[i].srtt_us > arq)
                arq = es[i].srtt_us;
            /* Only links that bring a real share now: a saturated 200 kbit/s link has the full
             * 300 ms timeout, and every gap would wait that long for a link that carries next
             * to nothing. (The pad waits for 2 s of evidence; the hold need not: a longer hold
             * only matters for a loss that is never repaired.) */
            if (rx_share_small(b, es[i].link_id))
                continue;
            uint32_t to = linkest_timeout_us(&es[i]);
            if (to > detect)
                detect = to;
        }
        /* + 50 ms: the copy may itself wait behind a full queue (repairs may use 1.5 budgets)
         * that the srtt, an average, does not show; in rates-only (no delay spread, hold
         * ~srtt) repairs of the emulator's queue drops often came too late and 800 gaps in
         * 30 s were given up (TCP losses). Only a real, unrepaired loss waits the longer. */
        arq = arq ? arq + 60000 : 50000;
        /* + the time the sender needs to declare a cut link down (its timeout, estimated by
         * ours for the same link), after which the link's in-flight packets are re-sent: giving
         * those holes up first turned a cut into hundreds of TCP losses (bench_tunnel.sh cut:
         * 1 000+ TCP retransmits and gaps over a second). */
        arq += detect;
        reorder_set_hold(b->rb, linkest_hold_us(es, ne, arq, now_us));
        update_rx_pad(b, es, ne, now_us);
    }
    bond_release(b, now_us);
}

void bond_get_stats(struct bond *b, struct agg_bond_stats *out)
{
    memset(out, 0, sizeof(*out));
    struct reorder_stats rs;
    reorder_get_stats(b->rb, &rs);
    out->hold_ms = reorder_hold(b->rb) / 1000;
    out->released = rs.released;
    out->wait_sum_us = rs.wait_sum_us;
    out->max_wait_us = rs.max_hold_us;
    out->gaps_opened = rs.gaps_opened;
    out->skipped = rs.skipped_seqs;
    out->late = rs.late;
    out->padded = b->rx_padded;
    out->resent = b->resent;
    out->resend_expired = b->resend_expired;
    out->drop_budget = b->drop_budget;
    out->drop_pool = b->drop_pool;
    out->drop_stale = b->drop_stale;
    out->queued = b->txq_len;
}

void bond_link_stats(struct bond *b, uint8_t link_id, struct agg_link_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->link_id = link_id;
    if (link_id >= AGG_MAX_LINKS || !b->link[link_id].present)
        return;
    const struct bond_link *l = &b->link[link_id];
    out->tx_bytes = l->tx_bytes;
    out->tx_packets = l->tx_pkts;
    out->rx_bytes = l->rx_bytes;
    out->rx_packets = l->rx_pkts;
    out->resent_packets = l->resent;
    const struct linkest *e = sched_link_est(b->sched, link_id);
    struct sched_link_info li;
    if (sched_link_info(b->sched, link_id, &li) == 0)
        out->weight = li.weight;
    if (e) {
        out->srtt_ms = e->srtt_us / 1000.0;
        out->rttvar_ms = e->rttvar_us / 1000.0;
        out->loss = e->loss;
        out->capacity_bps = e->cap_Bps * 8.0;
        if (!linkest_usable(e))
            out->state = AGG_LINK_DOWN;
        else if (li.weight <= 0.0)
            out->state = AGG_LINK_DISABLED;
        else if (!e->has_rtt || e->state == LINK_STARTUP)
            out->state = AGG_LINK_PROBING;
        else
            out->state = AGG_LINK_UP;
    }
}

/* The scheduler side of a class table (also re-applied to each new session's scheduler). */
static void apply_classes(struct bond *b, const struct ctrl_classes *t)
{
    for (unsigned i = 0; i < t->n && i + 1 < SCHED_MAX_CLASSES; i++) {
        const struct ctrl_class *k = &t->c[i];
        struct sched_class_cfg sc;
        memset(&sc, 0, sizeof(sc));
        sc.mode = k->mode;
        sc.priority = k->passenger;
        sc.rate_cap_bps = (uint64_t)k->rate_kbps * 1000;
        /* Failover: the listed links first, in order; the others after them, by id. */
        for (unsigned l = 0; l < SCHED_MAX_LINKS; l++)
            sc.link_prio[l] = (uint8_t)(SCHED_MAX_LINKS + l);
        for (unsigned r = 0; r < k->n_order; r++)
            sc.link_prio[k->order[r]] = (uint8_t)r;
        sched_set_class(b->sched, i + 1, &sc);
    }
    /* Unclassified traffic (the passengers) yields first when the links shrink. */
    struct sched_class_cfg sc;
    memset(&sc, 0, sizeof(sc));
    sc.priority = t->n > 0 ? 1 : 0;
    sched_set_class(b->sched, 0, &sc);
}

void bond_set_classes(struct bond *b, const struct ctrl_classes *t, bool match_dst,
                      struct tun_class *cls)
{
    b->classes = *t;
    b->classes_set = true;
    apply_classes(b, t);
    for (unsigned i = 0; i < t->n && i + 1 < SCHED_MAX_CLASSES; i++) {
        const struct ctrl_class *k = &t->c[i];
        uint32_t mask = k->pfx ? 0xffffffffu << (32 - k->pfx) : 0;
        cls[i].mask_be = htonl(mask);
        cls[i].net_be = htonl(k->net & mask);
        cls[i].dscp = k->dscp;
        cls[i].match_dst = match_dst;
    }
}

void bond_send_classes(struct bond *b, const struct ctrl_classes *t)
{
    uint8_t buf[CTRL_MAX_ENCODED];
    size_t n = ctrl_encode_classes(t, buf, sizeof(buf));
    if (n < 2)
        return;
    /* On every link: a tiny message, and the table must not depend on one link being up. */
    for (unsigned i = 0; i < AGG_MAX_LINKS; i++)
        if (b->link[i].present && b->link[i].has_peer)
            send_ctrl(b, (uint8_t)i, buf[0], buf + 1, n - 1);
}

void bond_send_weights(struct bond *b)
{
    struct ctrl_weights cw = {.n = 0};
    for (unsigned i = 0; i < AGG_MAX_LINKS; i++) {
        struct sched_link_info li;
        if (!b->link[i].present || sched_link_info(b->sched, (uint8_t)i, &li) != 0)
            continue;
        cw.link_id[cw.n] = (uint8_t)i;
        cw.w[cw.n] = (uint16_t)(li.weight * 65535.0 + 0.5);
        cw.n++;
    }
    uint8_t buf[64];
    size_t n = ctrl_encode_weights(&cw, buf, sizeof(buf));
    if (n < 2)
        return;
    for (unsigned i = 0; i < AGG_MAX_LINKS; i++)
        if (b->link[i].present && b->link[i].has_peer)
            send_ctrl(b, (uint8_t)i, buf[0], buf + 1, n - 1);
}
