/* corridor-route-probe: the passenger traffic of the route-replay benchmark, measured with one
 * clock. A constant-bitrate UDP stream and a paced TCP flow go from one network namespace (the
 * vehicle, through the tunnel) to another (the internet host); senders and receivers are
 * sockets of this one process (setns() before socket(): a socket stays in the namespace it was
 * created in), so every loss and every delivery gap is timed on CLOCK_REALTIME of one machine
 * and can be laid against the scenario's time axis.
 *
 *   corridor-route-probe --from NS --to NS --dst IP --seconds S --out FILE
 *       [--udp-port P] [--pps N] [--size B] [--tcp-port P] [--tcp-kbps K]
 *
 * FILE gets: "udp sent N received M", one "udp_lost SEQ SEND_T" per lost packet, one
 * "udp_gap START_T LEN_MS" per delivery gap >= 20 ms (between consecutive arrivals), "tcp bytes
 * N" and "tcp_gap START_T LEN_MS" (between consecutive reads that returned data), and one
 * "stall START_T LEN_MS" per time the sender itself was descheduled for more than 5 ms (its
 * missed packets are skipped, not sent in a burst; the report leaves gaps during a stall out).
 * Times are unix seconds. Test tool. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC    0x726f757465707262ull /* "routeprb" */
#define GAP_MS   20.0
#define MAX_GAPS 100000

struct hdr {
    uint64_t magic, seq;
    double send_t;
};

struct gaps {
    size_t n;
    double start[MAX_GAPS], len_ms[MAX_GAPS];
};

static struct {
    const char *from, *to, *dst, *out;
    int udp_port, tcp_port, size;
    double seconds, pps, tcp_kbps;
    /* sender side */
    uint64_t udp_sent, udp_skipped;
    double *send_t; /* per sequence number */
    uint64_t max_pkts;
    /* receiver side */
    uint8_t *got;
    uint64_t udp_recv;
    struct gaps ugaps, tgaps, stalls; /* stalls: the sender itself ran late (CPU) */
    uint64_t tcp_bytes;
    volatile bool stop;
} g;

static double now_real(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int enter_ns(const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), strchr(name, '/') ? "%s" : "/run/netns/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "route-probe: open %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = setns(fd, CLONE_NEWNET);
    if (rc < 0)
        fprintf(stderr, "route-probe: setns %s: %s\n", path, strerror(errno));
    close(fd);
    return rc;
}

static void gap_add(struct gaps *gp, double start, double len_ms)
{
    if (gp->n < MAX_GAPS) {
        gp->start[gp->n] = start;
        gp->len_ms[gp->n] = len_ms;
        gp->n++;
    }
}

static void *udp_rx(void *arg)
{
    int fd = *(int *)arg;
    double last = 0;
    char buf[2048];
    while (!g.stop) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        double t = now_real();
        if (r < (ssize_t)sizeof(struct hdr))
            continue;
        struct hdr h;
        memcpy(&h, buf, sizeof(h));
        if (h.magic != MAGIC || h.seq >= g.max_pkts)
            continue;
        if (!g.got[h.seq]) {
            g.got[h.seq] = 1;
            g.udp_recv++;
        }
        if (last > 0 && (t - last) * 1000.0 >= GAP_MS)
            gap_add(&g.ugaps, last, (t - last) * 1000.0);
        last = t;
    }
    return NULL;
}

static void *tcp_rx(void *arg)
{
    int lfd = *(int *)arg;
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    while (!g.stop && poll(&p, 1, 100) <= 0)
        ;
    if (g.stop)
        return NULL;
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    double last = 0;
    char buf[65536];
    while (!g.stop) {
        struct pollfd q = {.fd = fd, .events = POLLIN};
        if (poll(&q, 1, 100) <= 0)
            continue;
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r <= 0)
            break;
        double t = now_real();
        g.tcp_bytes += (uint64_t)r;
        if (last > 0 && (t - last) * 1000.0 >= GAP_MS)
            gap_add(&g.tgaps, last, (t - last) * 1000.0);
        last = t;
    }
    close(fd);
    return NULL;
}

static bool arg_num(int argc, char **argv, int *i, const char *name, double lo, double hi,
                    double *out)
{
    if (strcmp(argv[*i], name) != 0 || *i + 1 >= argc)
        return false;
    char *end;
    double v = strtod(argv[++*i], &end);
    if (*end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "route-probe: %s: expected %g..%g\n", name, lo, hi);
        exit(2);
    }
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    double udp_port = 47001, tcp_port = 47002, size = 200;
    g.pps = 500;
    g.tcp_kbps = 2000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
            g.from = argv[++i];
        else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
            g.to = argv[++i];
        else if (strcmp(argv[i], "--dst") == 0 && i + 1 < argc)
            g.dst = argv[++i];
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            g.out = argv[++i];
        else if (!arg_num(argc, argv, &i, "--seconds", 1, 3600, &g.seconds) &&
                 !arg_num(argc, argv, &i, "--pps", 1, 5000, &g.pps) &&
                 !arg_num(argc, argv, &i, "--size", (double)sizeof(struct hdr), 1400, &size) &&
                 !arg_num(argc, argv, &i, "--udp-port", 1, 65535, &udp_port) &&
                 !arg_num(argc, argv, &i, "--tcp-port", 1, 65535, &tcp_port) &&
                 !arg_num(argc, argv, &i, "--tcp-kbps", 0, 100000, &g.tcp_kbps)) {
            fprintf(stderr, "route-probe: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    struct in_addr dst;
    if (!g.from || !g.to || !g.dst || !g.out || !(g.seconds > 0) ||
        inet_pton(AF_INET, g.dst, &dst) != 1) {
        fprintf(stderr, "usage: corridor-route-probe --from NS --to NS --dst IP --seconds S "
                        "--out FILE [--pps N] [--size B] [--udp-port P] [--tcp-port P] "
                        "[--tcp-kbps K]\n");
        return 2;
    }
    g.size = (int)size;
    g.max_pkts = (uint64_t)(g.seconds * g.pps) + 16;
    g.send_t = calloc(g.max_pkts, sizeof(double));
    g.got = calloc(g.max_pkts, 1);
    if (!g.send_t || !g.got)
        return 1;

    /* receivers in the destination namespace */
    if (enter_ns(g.to) < 0)
        return 1;
    int urx = socket(AF_INET, SOCK_DGRAM, 0), lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1, rcvbuf = 4 << 20;
    setsockopt(urx, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in ua = {.sin_family = AF_INET, .sin_port = htons((uint16_t)udp_port)};
    struct sockaddr_in ta = {.sin_family = AF_INET, .sin_port = htons((uint16_t)tcp_port)};
    if (bind(urx, (struct sockaddr *)&ua, sizeof(ua)) < 0 ||
        bind(lfd, (struct sockaddr *)&ta, sizeof(ta)) < 0 || listen(lfd, 1) < 0) {
        fprintf(stderr, "route-probe: bind in %s: %s\n", g.to, strerror(errno));
        return 1;
    }
    /* senders in the source namespace */
    if (enter_ns(g.from) < 0)
        return 1;
    int utx = socket(AF_INET, SOCK_DGRAM, 0), tfd = -1;
    ua.sin_addr = dst;
    ta.sin_addr = dst;
    if (connect(utx, (struct sockaddr *)&ua, sizeof(ua)) < 0) {
        fprintf(stderr, "route-probe: udp connect: %s\n", strerror(errno));
        return 1;
    }
    pthread_t th_u, th_t;
    pthread_create(&th_u, NULL, udp_rx, &urx);
    pthread_create(&th_t, NULL, tcp_rx, &lfd);
    if (g.tcp_kbps > 0) {
        tfd = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(tfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(tfd, (struct sockaddr *)&ta, sizeof(ta)) < 0) {
            fprintf(stderr, "route-probe: tcp connect: %s\n", strerror(errno));
            g.stop = true;
            return 1;
        }
        fcntl(tfd, F_SETFL, O_NONBLOCK);
    }

    /* 1 ms ticks: a UDP packet every 1/pps s, TCP bytes owed at tcp_kbps (written as the socket
     * takes them: a stalled flow catches up, its gap shows at the receiver). */
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    double t0 = now_real(), tcp_owed = 0, udp_due = 0;
    static char pkt[1500], tbuf[65536];
    memset(tbuf, 'x', sizeof(tbuf));
    uint64_t ticks = (uint64_t)(g.seconds * 1000.0);
    for (uint64_t k = 0; k < ticks; k++) {
        next.tv_nsec += 1000000;
        if (next.tv_nsec >= 1000000000) {
            next.tv_nsec -= 1000000000;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
        /* Descheduled (a loaded machine): do not fire the missed packets in one burst, which
         * would measure this process, not the network. Skip them and say so. */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double late_ms =
            (double)(now.tv_sec - next.tv_sec) * 1e3 + (now.tv_nsec - next.tv_nsec) / 1e6;
        if (late_ms > 5.0) {
            gap_add(&g.stalls, now_real() - late_ms / 1000.0, late_ms);
            uint64_t skip = (uint64_t)late_ms;
            k += skip;
            next = now;
            g.udp_skipped += (uint64_t)(skip * g.pps / 1000.0);
        }
        udp_due += g.pps / 1000.0;
        while (udp_due >= 1.0 && g.udp_sent < g.max_pkts) {
            udp_due -= 1.0;
            struct hdr h = {.magic = MAGIC, .seq = g.udp_sent, .send_t = now_real()};
            g.send_t[h.seq] = h.send_t;
            memcpy(pkt, &h, sizeof(h));
            send(utx, pkt, (size_t)g.size, MSG_DONTWAIT); /* a local drop counts as lost */
            g.udp_sent++;
        }
        if (tfd >= 0) {
            tcp_owed += g.tcp_kbps * 1000.0 / 8.0 / 1000.0;
            if (tcp_owed >= 1.0) {
                size_t want = tcp_owed > sizeof(tbuf) ? sizeof(tbuf) : (size_t)tcp_owed;
                ssize_t w = send(tfd, tbuf, want, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (w > 0)
                    tcp_owed -= (double)w;
                if (tcp_owed > 4e6)
                    tcp_owed = 4e6; /* bounded backlog */
            }
        }
    }
    sleep(2); /* stragglers */
    g.stop = true;
    pthread_join(th_u, NULL);
    pthread_join(th_t, NULL);
    if (tfd >= 0)
        close(tfd);
    close(utx);
    close(urx);
    close(lfd);

    FILE *f = fopen(g.out, "w");
    if (!f) {
        fprintf(stderr, "route-probe: %s: %s\n", g.out, strerror(errno));
        return 1;
    }
    fprintf(f, "start %.6f\nudp sent %llu received %llu\n", t0, (unsigned long long)g.udp_sent,
            (unsigned long long)g.udp_recv);
    for (uint64_t s = 0; s < g.udp_sent; s++)
        if (!g.got[s])
            fprintf(f, "udp_lost %llu %.6f\n", (unsigned long long)s, g.send_t[s]);
    for (size_t i = 0; i < g.ugaps.n; i++)
        fprintf(f, "udp_gap %.6f %.1f\n", g.ugaps.start[i], g.ugaps.len_ms[i]);
    fprintf(f, "tcp bytes %llu\nudp skipped %llu\n", (unsigned long long)g.tcp_bytes,
            (unsigned long long)g.udp_skipped);
    for (size_t i = 0; i < g.stalls.n; i++)
        fprintf(f, "stall %.6f %.1f\n", g.stalls.start[i], g.stalls.len_ms[i]);
    for (size_t i = 0; i < g.tgaps.n; i++)
        fprintf(f, "tcp_gap %.6f %.1f\n", g.tgaps.start[i], g.tgaps.len_ms[i]);
    fclose(f);
    printf("udp sent %llu received %llu, tcp %llu bytes\n", (unsigned long long)g.udp_sent,
           (unsigned long long)g.udp_recv, (unsigned long long)g.tcp_bytes);
    free(g.send_t);
    free(g.got);
    return 0;
}
