/* corridor-linkemu: userspace link emulator for the network lab (this kernel has no netem).
 *
 * Runs inside a path namespace with two interfaces, A (vehicle side) and B (hub side), and acts
 * as a two-port bridge: every Ethernet frame read from one interface with an AF_PACKET socket is
 * shaped (rate + tail-drop queue, delay, jitter, loss, up/down) and written to the other.
 * UL = A -> B, DL = B -> A. Rates apply to IP bytes (frame length minus the 14-byte Ethernet
 * header), as a cellular bearer has no Ethernet header.
 *
 * One thread, epoll over: two packet sockets, one timerfd (absolute CLOCK_MONOTONIC, armed for the
 * earliest pending delivery or schedule event), a signalfd and a unix control socket. Packets live
 * in a preallocated pool; deliveries wait in a preallocated min-heap per direction, so the steady
 * state never allocates. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "linkemu_model.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define SLOT_BYTES  2048 /* MTU 1500 + headers; bigger frames mean TSO/GSO was left on */
#define MAX_CLIENTS 8
#define CTL_LINE    512
#define RX_BURST    64 /* frames read per readiness event per socket: fairness between sockets */
#define SUB         "linkemu"

struct slot {
    uint64_t arrive_ns;
    uint32_t len;
    uint32_t next_free;
    uint8_t data[SLOT_BYTES];
};

struct client {
    int fd;
    size_t len;
    char buf[CTL_LINE];
};

struct emu {
    unsigned link;
    int pfd[2]; /* [0] = A (vehicle side), [1] = B (hub side) */
    char ifname[2][IF_NAMESIZE];
    int tfd, sfd, lfd, ep;
    char ctl_path[108];
    struct slot *pool;
    uint32_t pool_n, free_head, pool_used;
    struct le_heap heap[2]; /* per direction */
    struct le_dir dir[2];
    struct le_rng rng;
    uint64_t seq;
    struct le_scenario sc;
    size_t next_ev;
    bool schedule_running;
    uint64_t t0_ns;
    uint64_t armed_ns;
    struct client cl[MAX_CLIENTS];
    int evict_next;
    uint64_t sock_drops[2];
    bool quit;
    /* per direction, the current outage (a "down" period): what it cost, logged when the link
     * comes back, so a replay can tell the packets in flight at the cut from those the sender
     * kept sending into the dead link before it noticed (route replay, tests/route) */
    struct outage {
        uint64_t since_ns;
        uint64_t in_flight;        /* dropped from the delivery queue at the cut */
        uint64_t in_flight_data;   /* ... of them >= OUTAGE_DATA_B */
        uint64_t sent_in, data_in; /* frames that arrived while down; of them >= OUTAGE_DATA_B */
        uint64_t last_data_ns;     /* the last such data frame */
    } out[2];
};
#define OUTAGE_DATA_B 200 /* IP bytes: traffic, not the tunnel's small keepalive probes */

static uint32_t slot_get(struct emu *e)
{
    uint32_t i = e->free_head;
    if (i == UINT32_MAX)
        return i;
    e->free_head = e->pool[i].next_free;
    e->pool_used++;
    return i;
}

static void slot_put(struct emu *e, uint32_t i)
{
    e->pool[i].next_free = e->free_head;
    e->free_head = i;
    e->pool_used--;
}

static int open_packet(const char *ifname, char *err, size_t errlen)
{
    unsigned idx = if_nametoindex(ifname);
    if (!idx) {
        snprintf(err, errlen, "interface %s: %s", ifname, strerror(errno));
        return -1;
    }
    /* protocol 0 at creation: nothing is queued until bind() selects the interface */
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "AF_PACKET socket: %s (need root/CAP_NET_RAW)", strerror(errno));
        return -1;
    }
    int one = 1;
    /* our own transmissions must not come back as input (would loop the bridge) */
    if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0) {
        snprintf(err, errlen, "PACKET_IGNORE_OUTGOING on %s: %s", ifname, strerror(errno));
        close(fd);
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) < 0) {
        snprintf(err, errlen, "SO_TIMESTAMPNS on %s: %s", ifname, strerror(errno));
        close(fd);
        return -1;
    }
    int buf = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf)) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    struct sockaddr_ll sll = {
        .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)idx};
    if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        snprintf(err, errlen, "bind to %s: %s", ifname, strerror(errno));
        close(fd);
        return -1;
    }
    struct packet_mreq mr = {.mr_ifindex = (int)idx, .mr_type = PACKET_MR_PROMISC};
    if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
        snprintf(err, errlen, "promisc on %s: %s", ifname, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Frames the kernel dropped because our receive buffer was full (the emulator fell behind):
 * they never reach the model, so they are reported separately. Reading resets the kernel's
 * counter, hence the accumulation. */
static void update_sock_drops(struct emu *e)
{
    for (int s = 0; s < 2; s++) {
        struct tpacket_stats st;
        socklen_t l = sizeof(st);
        if (e->pfd[s] >= 0 && getsockopt(e->pfd[s], SOL_PACKET, PACKET_STATISTICS, &st, &l) == 0)
            e->sock_drops[s] += st.tp_drops;
    }
}

static void log_stats(struct emu *e, char *buf, size_t n)
{
    size_t off = 0;
    char line[512];
    update_sock_drops(e);
    for (int d = 0; d < 2; d++) {
        le_dir_format(&e->dir[d], d == LE_UL ? "ul" : "dl", line, sizeof(line));
        str_appendf(buf, n, &off, "link %u %s\n", e->link, line);
    }
    str_appendf(buf, n, &off,
                "link %u pool %u/%u in use, kernel rx drops (emulator behind) %s %llu, %s %llu\n",
                e->link, e->pool_used, e->pool_n, e->ifname[0],
                (unsigned long long)e->sock_drops[0], e->ifname[1],
                (unsigned long long)e->sock_drops[1]);
}

static void print_stats(struct emu *e)
{
    char buf[1536];
    log_stats(e, buf, sizeof(buf));
    for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        LOG_I(SUB, "%s", l);
}

/* Drop everything queued in a direction (hard cut: in-flight packets are lost too). */
static void flush_dir(struct emu *e, int d)
{
    struct le_heap *h = &e->heap[d];
    while (h->n) {
        uint32_t i = le_heap_top(h)->idx;
        le_heap_pop(h);
        e->out[d].in_flight++;
        if (e->pool[i].len >= ETH_HLEN + OUTAGE_DATA_B)
            e->out[d].in_flight_data++;
        slot_put(e, i);
        e->dir[d].st.drops[LE_DROP_DOWN]++;
    }
}

static void outage_begin(struct emu *e, int d, uint64_t now)
{
    memset(&e->out[d], 0, sizeof(e->out[d]));
    e->out[d].since_ns = now;
}

static void outage_end(struct emu *e, int d, uint64_t now)
{
    const struct outage *o = &e->out[d];
    if (!o->since_ns)
        return;
    LOG_I(SUB,
          "link %u %s: outage of %.0f ms: %llu in flight lost at the cut (%llu data), %llu frames "
          "sent into it (%llu data >= %d B, the last %.0f ms after the cut)",
          e->link, d == LE_UL ? "ul" : "dl", (now - o->since_ns) / 1e6,
          (unsigned long long)o->in_flight, (unsigned long long)o->in_flight_data,
          (unsigned long long)o->sent_in, (unsigned long long)o->data_in, OUTAGE_DATA_B,
          o->data_in ? (o->last_data_ns - o->since_ns) / 1e6 : 0.0);
    e->out[d].since_ns = 0;
}

static void apply_patch(struct emu *e, const struct le_patch *pt, uint64_t now)
{
    for (int d = 0; d < 2; d++) {
        if (!(pt->dirs & (d == LE_UL ? LE_DIR_UL : LE_DIR_DL)))
            continue;
        struct le_params p = e->dir[d].p;
        le_patch_apply(pt, &p);
        bool going_down = e->dir[d].p.up && !p.up;
        bool going_up = !e->dir[d].p.up && p.up;
        le_dir_set(&e->dir[d], &p, now);
        if (going_down) {
            outage_begin(e, d, now);
            flush_dir(e, d);
        }
        if (going_up)
            outage_end(e, d, now);
    }
}

static void rearm(struct emu *e)
{
    uint64_t next = UINT64_MAX;
    for (int d = 0; d < 2; d++) {
        const struct le_hent *t = le_heap_top(&e->heap[d]);
        if (t && t->key < next)
            next = t->key;
    }
    if (e->schedule_running && e->next_ev < e->sc.n_ev) {
        uint64_t t = e->t0_ns + e->sc.ev[e->next_ev].at_ms * 1000000ull;
        if (t < next)
            next = t;
    }
    if (next == e->armed_ns)
        return;
    e->armed_ns = next;
    struct itimerspec its = {0};
    if (next != UINT64_MAX) {
        if (next == 0)
            next = 1; /* 0 would disarm */
        its.it_value.tv_sec = (time_t)(next / 1000000000ull);
        its.it_value.tv_nsec = (long)(next % 1000000000ull);
    }
    if (timerfd_settime(e->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        LOG_E(SUB, "timerfd_settime: %s", strerror(errno));
}

static void run_due(struct emu *e)
{
    uint64_t now = mono_ns();
    while (e->schedule_running && e->next_ev < e->sc.n_ev &&
           e->t0_ns + e->sc.ev[e->next_ev].at_ms * 1000000ull <= now) {
        const struct le_event *ev = &e->sc.ev[e->next_ev++];
        LOG_I(SUB, "link %u: schedule event at %llu ms applied (late by %.3f ms)", e->link,
              (unsigned long long)ev->at_ms, (now - e->t0_ns - ev->at_ms * 1000000ull) / 1e6);
        apply_patch(e, &ev->patch, now);
    }
    for (int d = 0; d < 2; d++) {
        struct le_heap *h = &e->heap[d];
        int out = d == LE_UL ? e->pfd[1] : e->pfd[0];
        const struct le_hent *t;
        while ((t = le_heap_top(h)) && t->key <= now) {
            uint32_t i = t->idx;
            le_heap_pop(h);
            struct slot *s = &e->pool[i];
            struct le_dir_stats *st = &e->dir[d].st;
            ssize_t w = send(out, s->data, s->len, MSG_DONTWAIT);
            if (w == (ssize_t)s->len) {
                uint32_t ip = s->len > ETH_HLEN ? s->len - ETH_HLEN : 0;
                st->tx_pkts++;
                st->tx_bytes += ip;
                st->delay_sum_ns += now - s->arrive_ns;
                if (!st->first_tx_ns)
                    st->first_tx_ns = now;
                st->last_tx_ns = now;
            } else {
                st->drops[LE_DROP_TXERR]++;
            }
            slot_put(e, i);
        }
    }
}

/* Arrival time of a frame: the kernel's receive timestamp, moved to CLOCK_MONOTONIC. When the
 * emulator is descheduled for a while (a loaded CI machine), frames wait in the socket buffer;
 * stamping them when read would leave the emulated link idle for that while and lose capacity.
 * With the kernel's stamp they are serialised from when they really arrived. */
static uint64_t arrival_ns(struct msghdr *mh)
{
    struct timespec rt, mono;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    uint64_t now = (uint64_t)mono.tv_sec * 1000000000ull + (uint64_t)mono.tv_nsec;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS)
            continue;
        struct timespec ts;
        memcpy(&ts, CMSG_DATA(c), sizeof(ts));
        int64_t age = ((int64_t)rt.tv_sec - ts.tv_sec) * 1000000000ll + (rt.tv_nsec - ts.tv_nsec);
        /* a wall-clock step makes the age meaningless: trust it only within a second */
        if (age > 0 && age < 1000000000ll)
            return now - (uint64_t)age;
        break;
    }
    return now;
}

static void rx_burst(struct emu *e, int side)
{
    int d = side == 0 ? LE_UL : LE_DL;
    for (int n = 0; n < RX_BURST; n++) {
        uint32_t i = slot_get(e);
        uint8_t scratch[64];
        struct slot *s = i == UINT32_MAX ? NULL : &e->pool[i];
        /* MSG_TRUNC returns the real length, so oversize frames are recognised */
        struct iovec iov = {s ? (void *)s->data : (void *)scratch,
                            s ? SLOT_BYTES : sizeof(scratch)};
        union {
            char buf[CMSG_SPACE(sizeof(struct timespec))];
            struct cmsghdr align;
        } cbuf;
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = cbuf.buf,
                            .msg_controllen = sizeof(cbuf.buf)};
        ssize_t r = recvmsg(e->pfd[side], &mh, MSG_TRUNC);
        if (r < 0) {
            if (s)
                slot_put(e, i);
            if (errno != EAGAIN && errno != EINTR)
                LOG_W(SUB, "recv on %s: %s", e->ifname[side], strerror(errno));
            return;
        }
        uint64_t now = arrival_ns(&mh);
        struct le_dir *dir = &e->dir[d];
        uint32_t ip = r > ETH_HLEN ? (uint32_t)r - ETH_HLEN : 0;
        if (!s || r > SLOT_BYTES) {
            dir->st.rx_pkts++;
            dir->st.rx_bytes += ip;
            enum le_verdict v = s ? LE_DROP_OVERSIZE : LE_DROP_POOL;
            dir->st.drops[v]++;
            if (v == LE_DROP_OVERSIZE && dir->st.drops[v] == 1)
                LOG_W(SUB, "frame of %zd bytes on %s: disable TSO/GSO/GRO on the peers", r,
                      e->ifname[side]);
            if (s)
                slot_put(e, i);
            continue;
        }
        uint64_t when;
        enum le_verdict v = le_dir_admit(dir, &e->rng, now, ip, &when);
        if (v == LE_DROP_DOWN && e->out[d].since_ns && now < e->out[d].since_ns) {
            e->out[d].in_flight++; /* arrived before the cut, read after it */
            e->out[d].in_flight_data += ip >= OUTAGE_DATA_B;
        } else if (v == LE_DROP_DOWN && e->out[d].since_ns) {
            e->out[d].sent_in++;
            if (ip >= OUTAGE_DATA_B) {
                e->out[d].data_in++;
                e->out[d].last_data_ns = now;
            }
        }
        if (v != LE_PASS) {
            slot_put(e, i);
            continue;
        }
        s->len = (uint32_t)r;
        s->arrive_ns = now;
        /* the heap holds pool_n entries, so a slot always has a heap place */
        (void)le_heap_push(&e->heap[d], (struct le_hent){.key = when, .seq = e->seq++, .idx = i});
    }
}

/* ---- control ---- */

static void ctl_exec(struct emu *e, char *line, char *out, size_t n)
{
    size_t off = 0;
    char *save = NULL;
    char *cmd = strtok_r(line, " \t\r\n", &save);
    uint64_t now = mono_ns();
    if (!cmd) {
        str_appendf(out, n, &off, "err empty command\n");
        return;
    }
    if (!strcmp(cmd, "cut") || !strcmp(cmd, "restore")) {
        char *dirs = strtok_r(NULL, " \t\r\n", &save);
        struct le_patch pt = {.mask = LE_F_UP, .dirs = LE_DIR_BOTH};
        pt.v.up = cmd[0] == 'r';
        if (dirs && !strcmp(dirs, "ul"))
            pt.dirs = LE_DIR_UL;
        else if (dirs && !strcmp(dirs, "dl"))
            pt.dirs = LE_DIR_DL;
        apply_patch(e, &pt, now);
        LOG_I(SUB, "link %u: %s by control", e->link, cmd);
        str_appendf(out, n, &off, "ok %s %llu\n", cmd, (unsigned long long)(now / 1000000));
    } else if (!strcmp(cmd, "set")) {
        struct le_patch pt;
        char err[160];
        if (le_patch_parse(save ? save : (char *)"", &pt, err, sizeof(err)) < 0) {
            str_appendf(out, n, &off, "err %s\n", err);
            return;
        }
        apply_patch(e, &pt, now);
        str_appendf(out, n, &off, "ok set\n");
    } else if (!strcmp(cmd, "go")) {
        /* (re)start the scenario schedule with t = 0 now: the lab starts all links together */
        e->t0_ns = now;
        e->next_ev = 0;
        e->schedule_running = true;
        /* a replay starts from the scenario's t = 0 parameters, whatever was set since */
        for (int d = 0; d < 2; d++) {
            bool going_down = e->dir[d].p.up && !e->sc.init[d].up;
            le_dir_set(&e->dir[d], &e->sc.init[d], now);
            if (going_down)
                flush_dir(e, d);
        }
        /* t = 0 on CLOCK_MONOTONIC in ms, so a driver can align its own timeline exactly */
        str_appendf(out, n, &off, "ok go %.6f\n", now / 1e6);
    } else if (!strcmp(cmd, "stats")) {
        log_stats(e, out, n);
    } else if (!strcmp(cmd, "reset-stats")) {
        update_sock_drops(e);
        e->sock_drops[0] = e->sock_drops[1] = 0;
        memset(&e->dir[0].st, 0, sizeof(e->dir[0].st));
        memset(&e->dir[1].st, 0, sizeof(e->dir[1].st));
        str_appendf(out, n, &off, "ok\n");
    } else if (!strcmp(cmd, "show")) {
        for (int d = 0; d < 2; d++) {
            const struct le_params *p = &e->dir[d].p;
            str_appendf(out, n, &off,
                        "%s rate=%llu delay=%uus jitter=%uus jitterdist=%s reorder=%d loss=%g "
                        "gilbert=%s%g,%g,%g queue=%uB state=%s\n",
                        d == LE_UL ? "ul" : "dl", (unsigned long long)p->rate_bps, p->delay_us,
                        p->jitter_us, p->jitter_dist ? "normal" : "uniform", p->reorder, p->loss,
                        p->gilbert ? "" : "off:", p->ge_p, p->ge_r, p->ge_loss_bad,
                        le_queue_limit(p), p->up ? "up" : "down");
        }
    } else if (!strcmp(cmd, "quit")) {
        e->quit = true;
        str_appendf(out, n, &off, "ok\n");
    } else {
        str_appendf(out, n, &off,
                    "err unknown command '%s' (cut|restore [ul|dl], set ..., go, "
                    "stats, reset-stats, show, quit)\n",
                    cmd);
    }
}

static void client_close(struct emu *e, struct client *c)
{
    epoll_ctl(e->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
}

static void client_read(struct emu *e, struct client *c)
{
    ssize_t r = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        client_close(e, c);
        return;
    }
    c->len += (size_t)r;
    c->buf[c->len] = 0;
    char *nl = strchr(c->buf, '\n');
    if (!nl && c->len < sizeof(c->buf) - 1)
        return;
    if (nl)
        *nl = 0;
    char out[2048];
    out[0] = 0;
    ctl_exec(e, c->buf, out, sizeof(out));
    /* replies are small and the socket buffer empty: one non-blocking write suffices */
    ssize_t w = write(c->fd, out, strlen(out));
    (void)w;
    client_close(e, c);
}

static void ctl_accept(struct emu *e)
{
    int fd = accept4(e->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    int slot = -1;
    for (int i = 0; i < MAX_CLIENTS && slot < 0; i++)
        if (e->cl[i].fd < 0)
            slot = i;
    if (slot < 0) {
        /* all slots held by clients that never finished a line: evict the oldest-placed one in
         * turn, so idle connections can never lock the test driver out */
        slot = e->evict_next;
        e->evict_next = (e->evict_next + 1) % MAX_CLIENTS;
        client_close(e, &e->cl[slot]);
    }
    e->cl[slot].fd = fd;
    e->cl[slot].len = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 100 + (uint64_t)slot};
    if (epoll_ctl(e->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        client_close(e, &e->cl[slot]);
}

static int ctl_listen(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "control path too long: %s", path);
        return -1;
    }
    str_copy(sa.sun_path, path, sizeof(sa.sun_path));
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
        snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    chmod(path, 0600);
    return fd;
}

/* Client mode: send one command, print the reply. Unix path sockets work across namespaces. */
static int ctl_send(const char *path, const char *cmd)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "control path too long\n");
        return 2;
    }
    str_copy(sa.sun_path, path, sizeof(sa.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "connect %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return 2;
    }
    char line[CTL_LINE];
    snprintf(line, sizeof(line), "%s\n", cmd);
    if (send(fd, line, strlen(line), MSG_NOSIGNAL) < 0) {
        fprintf(stderr, "write %s: %s\n", path, strerror(errno));
        close(fd);
        return 2;
    }
    char buf[2048];
    ssize_t r;
    int rc = 0;
    bool first = true;
    while ((r = read(fd, buf, sizeof(buf))) > 0) {
        if (first && r >= 3 && !memcmp(buf, "err", 3))
            rc = 1;
        first = false;
        fwrite(buf, 1, (size_t)r, stdout);
    }
    close(fd);
    return rc;
}

/* --check FILE: parse the scenario for every link and print what each starts with. */
static int check_scenario(const char *path)
{
    char err[256];
    for (unsigned k = 1; k <= 64; k++) {
        struct le_scenario sc;
        le_scenario_init(&sc);
        if (le_scenario_load(&sc, k, path, err, sizeof(err)) < 0) {
            fprintf(stderr, "%s\n", err);
            le_scenario_free(&sc);
            return 1;
        }
        for (int d = 0; d < 2; d++) {
            const struct le_params *p = &sc.init[d];
            if (k <= 4 || sc.n_ev)
                printf("link %u %s rate=%llu delay=%uus jitter=%uus loss=%g%s queue=%uB %s, "
                       "%zu events\n",
                       k, d == LE_UL ? "ul" : "dl", (unsigned long long)p->rate_bps, p->delay_us,
                       p->jitter_us, p->loss, p->gilbert ? " gilbert" : "", le_queue_limit(p),
                       p->up ? "up" : "down", sc.n_ev);
        }
        le_scenario_free(&sc);
    }
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: corridor-linkemu -a IF -b IF [--link N] [--scenario FILE] [--set 'PARAMS']...\n"
            "                        [--ctl PATH] [--pool N] [--seed N] [--hold] [-v]\n"
            "       corridor-linkemu --ctl-send PATH 'COMMAND'\n"
            "       corridor-linkemu --check SCENARIO   (parse, print each link's start values)\n"
            "  -a IF       vehicle-side interface (UL = a -> b, DL = b -> a)\n"
            "  -b IF       hub-side interface\n"
            "  --link N    which 'link N' lines of the scenario apply (default 1)\n"
            "  --set P     parameters like a scenario line after 'link N', e.g. 'ul rate=10M'\n"
            "  --hold      do not start the schedule until the control command 'go'\n"
            "signals: SIGUSR1 logs stats, SIGUSR2 toggles cut/restore, SIGINT/SIGTERM stop\n");
}

int main(int argc, char **argv)
{
    struct emu e;
    memset(&e, 0, sizeof(e));
    e.link = 1;
    e.pfd[0] = e.pfd[1] = e.tfd = e.sfd = e.lfd = e.ep = -1;
    for (int i = 0; i < MAX_CLIENTS; i++)
        e.cl[i].fd = -1;
    const char *ifa = NULL, *ifb = NULL, *scen = NULL, *ctl = NULL;
    const char *sets[16];
    int nsets = 0;
    long pool = 8192, seed = 1;
    bool hold = false;
    enum log_level lvl = LOGL_INFO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--ctl-send") && v && i + 2 < argc)
            return ctl_send(v, argv[i + 2]);
        if (!strcmp(a, "--check") && v)
            return check_scenario(v);
        if (!strcmp(a, "--hold")) {
            hold = true;
            continue;
        }
        if (!strcmp(a, "-v")) {
            lvl = LOGL_DEBUG;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        }
        if (!v) {
            usage();
            return 2;
        }
        long num = 0;
        if (!strcmp(a, "-a"))
            ifa = v;
        else if (!strcmp(a, "-b"))
            ifb = v;
        else if (!strcmp(a, "--scenario"))
            scen = v;
        else if (!strcmp(a, "--ctl"))
            ctl = v;
        else if (!strcmp(a, "--set") && nsets < (int)ARRAY_LEN(sets))
            sets[nsets++] = v;
        else if (!strcmp(a, "--link") && str_to_long(v, &num) && num >= 1 && num <= 64)
            e.link = (unsigned)num;
        else if (!strcmp(a, "--pool") && str_to_long(v, &num) && num >= 16 && num <= 1 << 20)
            pool = num;
        else if (!strcmp(a, "--seed") && str_to_long(v, &num))
            seed = num;
        else {
            fprintf(stderr, "bad argument %s %s\n", a, v);
            usage();
            return 2;
        }
        i++;
    }
    if (!ifa || !ifb) {
        usage();
        return 2;
    }
    char ident[32];
    snprintf(ident, sizeof(ident), "linkemu%u", e.link);
    log_init(ident, lvl, false);

    char err[256];
    int rc = 1;
    le_scenario_init(&e.sc);
    if (scen && le_scenario_load(&e.sc, e.link, scen, err, sizeof(err)) < 0) {
        LOG_E(SUB, "scenario: %s", err);
        goto out;
    }
    for (int i = 0; i < nsets; i++) {
        char buf[LE_MAX_LINE];
        str_copy(buf, sets[i], sizeof(buf));
        struct le_patch pt;
        if (le_patch_parse(buf, &pt, err, sizeof(err)) < 0) {
            LOG_E(SUB, "--set '%s': %s", sets[i], err);
            goto out;
        }
        if (pt.dirs & LE_DIR_UL)
            le_patch_apply(&pt, &e.sc.init[LE_UL]);
        if (pt.dirs & LE_DIR_DL)
            le_patch_apply(&pt, &e.sc.init[LE_DL]);
    }
    le_dir_init(&e.dir[LE_UL], &e.sc.init[LE_UL]);
    le_dir_init(&e.dir[LE_DL], &e.sc.init[LE_DL]);
    le_rng_seed(&e.rng, (uint64_t)seed * 1000003u + e.link);

    e.pool_n = (uint32_t)pool;
    e.pool = calloc(e.pool_n, sizeof(*e.pool));
    if (!e.pool || le_heap_init(&e.heap[0], e.pool_n) < 0 ||
        le_heap_init(&e.heap[1], e.pool_n) < 0) {
        LOG_E(SUB, "cannot allocate a pool of %u packets", e.pool_n);
        goto out;
    }
    for (uint32_t i = 0; i < e.pool_n; i++)
        e.pool[i].next_free = i + 1 < e.pool_n ? i + 1 : UINT32_MAX;
    e.free_head = 0;

    str_copy(e.ifname[0], ifa, sizeof(e.ifname[0]));
    str_copy(e.ifname[1], ifb, sizeof(e.ifname[1]));
    for (int s = 0; s < 2; s++) {
        e.pfd[s] = open_packet(e.ifname[s], err, sizeof(err));
        if (e.pfd[s] < 0) {
            LOG_E(SUB, "%s", err);
            goto out;
        }
    }
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGUSR1);
    sigaddset(&ss, SIGUSR2);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    signal(SIGPIPE, SIG_IGN);
    e.sfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
    e.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    e.ep = epoll_create1(EPOLL_CLOEXEC);
    if (e.sfd < 0 || e.tfd < 0 || e.ep < 0) {
        LOG_E(SUB, "signalfd/timerfd/epoll: %s", strerror(errno));
        goto out;
    }
    if (ctl) {
        e.lfd = ctl_listen(ctl, err, sizeof(err));
        if (e.lfd < 0) {
            LOG_E(SUB, "%s", err);
            goto out;
        }
        str_copy(e.ctl_path, ctl, sizeof(e.ctl_path));
    }
    int fds[5] = {e.pfd[0], e.pfd[1], e.tfd, e.sfd, e.lfd};
    for (int i = 0; i < 5; i++) {
        if (fds[i] < 0)
            continue;
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
        if (epoll_ctl(e.ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
            LOG_E(SUB, "epoll_ctl: %s", strerror(errno));
            goto out;
        }
    }
    e.t0_ns = mono_ns();
    e.schedule_running = !hold;
    LOG_I(SUB, "link %u: %s <-> %s, %zu schedule events%s, pool %u", e.link, ifa, ifb, e.sc.n_ev,
          hold ? " (held until 'go')" : "", e.pool_n);
    e.armed_ns = 1; /* force the first rearm */
    rearm(&e);
    while (!e.quit) {
        struct epoll_event evs[16];
        int n = epoll_wait(e.ep, evs, 16, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            LOG_E(SUB, "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            uint64_t id = evs[i].data.u64;
            if (id == 0 || id == 1) {
                rx_burst(&e, (int)id);
            } else if (id == 2) {
                uint64_t exp;
                ssize_t r = read(e.tfd, &exp, sizeof(exp));
                (void)r;
                e.armed_ns = 0; /* expired: must be re-armed even for the same time */
            } else if (id == 3) {
                struct signalfd_siginfo si;
                while (read(e.sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                    if (si.ssi_signo == SIGUSR1) {
                        print_stats(&e);
                    } else if (si.ssi_signo == SIGUSR2) {
                        struct le_patch pt = {.mask = LE_F_UP, .dirs = LE_DIR_BOTH};
                        pt.v.up = !e.dir[LE_UL].p.up;
                        apply_patch(&e, &pt, mono_ns());
                        LOG_I(SUB, "link %u: %s by SIGUSR2", e.link, pt.v.up ? "restore" : "cut");
                    } else {
                        e.quit = true;
                    }
                }
            } else if (id == 4) {
                ctl_accept(&e);
            } else if (id >= 100 && id < 100 + MAX_CLIENTS) {
                if (e.cl[id - 100].fd >= 0)
                    client_read(&e, &e.cl[id - 100]);
            }
        }
        run_due(&e);
        rearm(&e);
    }
    print_stats(&e);
    rc = 0;
out:
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (e.cl[i].fd >= 0)
            close(e.cl[i].fd);
    int cfd[6] = {e.pfd[0], e.pfd[1], e.tfd, e.sfd, e.lfd, e.ep};
    for (int i = 0; i < 6; i++)
        if (cfd[i] >= 0)
            close(cfd[i]);
    if (e.ctl_path[0])
        unlink(e.ctl_path);
    le_heap_free(&e.heap[0]);
    le_heap_free(&e.heap[1]);
    free(e.pool);
    le_scenario_free(&e.sc);
    return rc;
}
