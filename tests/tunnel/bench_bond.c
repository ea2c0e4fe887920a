/* bench_bond: data-plane cost of the bonded tunnel's per-packet path, in one process without
 * TUN or root: vehicle-side bond -> UDP loopback -> hub-side bond (seal, schedule, send, recv,
 * open, replay window, reorder, deliver, plus probes and feedback both ways).
 *
 *   bench_bond [PACKETS=200000] [SIZE=1400] [LINKS=2]
 * Prints packets/s and the inner goodput. Under valgrind --tool=callgrind the instruction
 * count per packet is (total Ir - startup) / PACKETS; see docs/performance.md. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agg/udplink.h"
#include "common/common.h"

#define MAXL 16

struct side {
    struct bond b;
    struct wire_session *s;
    int fd[MAXL];
    struct sockaddr_in addr[MAXL];
    uint64_t got;
};

static struct side A, B;
static int nlinks = 2;

static void deliver(void *ctx, uint8_t *ip, size_t len)
{
    (void)ip;
    (void)len;
    ((struct side *)ctx)->got++;
}

static struct wire_session *lookup(void *ctx, uint16_t id)
{
    (void)id;
    return ((struct side *)ctx)->s;
}

static int udp_bound(struct sockaddr_in *a)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int big = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)a, sizeof(*a)) != 0)
        exit(1);
    socklen_t l = sizeof(*a);
    getsockname(fd, (struct sockaddr *)a, &l);
    return fd;
}

static void pump(struct side *s, uint64_t now_us)
{
    static uint8_t buf[WIRE_MAX_PACKET + 64];
    for (int i = 0; i < nlinks; i++) {
        for (;;) {
            ssize_t n = recv(s->fd[i], buf, sizeof(buf), 0);
            if (n <= 0)
                break;
            struct wire_rx rx;
            if (wire_open(lookup, s, buf, (size_t)n, &rx) == WIRE_OK)
                bond_on_rx(&s->b, (uint8_t)i, &rx, now_us);
        }
    }
    bond_release(&s->b, now_us);
}

int main(int argc, char **argv)
{
    long npkt = argc > 1 ? atol(argv[1]) : 200000;
    long size = argc > 2 ? atol(argv[2]) : 1400;
    nlinks = argc > 3 ? atoi(argv[3]) : 2;
    if (npkt < 1 || size < 20 || size > 1447 || nlinks < 1 || nlinks > MAXL)
        return 2;
    char err[256];
    if (sodium_init() < 0)
        return 1;
    uint8_t k1[32], k2[32];
    randombytes_buf(k1, 32);
    randombytes_buf(k2, 32);
    static struct wire_session sa, sb;
    uint64_t ms = mono_ms();
    wire_session_init(&sa, 1, WIRE_CIPHER_CHACHA20POLY1305, k1, k2, true, ms);
    wire_session_init(&sb, 1, WIRE_CIPHER_CHACHA20POLY1305, k2, k1, false, ms);
    A.s = &sa;
    B.s = &sb;
    if (bond_init(&A.b, 1447, false, deliver, &A, err, sizeof(err)) ||
        bond_init(&B.b, 1447, false, deliver, &B, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    uint64_t now = mono_ns() / 1000;
    for (int i = 0; i < nlinks; i++) {
        A.fd[i] = udp_bound(&A.addr[i]);
        B.fd[i] = udp_bound(&B.addr[i]);
    }
    for (int i = 0; i < nlinks; i++) {
        bond_add_link(&A.b, (uint8_t)i, A.fd[i], &B.addr[i], now);
        bond_add_link(&B.b, (uint8_t)i, B.fd[i], &A.addr[i], now);
    }
    A.b.sess = &sa;
    B.b.sess = &sb;
    /* warm-up: RTT and a first capacity estimate */
    uint64_t t0 = mono_ns() / 1000;
    uint8_t pkt[1500];
    memset(pkt, 0x5a, sizeof(pkt));
    pkt[0] = 0x45;
    while (mono_ns() / 1000 - t0 < 200000) {
        now = mono_ns() / 1000;
        bond_send_ip(&A.b, pkt, (size_t)size, 0, now);
        bond_tick(&A.b, now);
        bond_tick(&B.b, now);
        pump(&B, now);
        pump(&A, now);
    }
    uint64_t got0 = B.got;
    printf("warm-up delivered %llu packets\n", (unsigned long long)got0);
    long sent = 0, refused = 0;
    t0 = mono_ns() / 1000;
    uint64_t last_tick = 0;
    while (sent < npkt) {
        now = mono_ns() / 1000;
        for (int k = 0; k < 32 && sent < npkt; k++, sent++)
            if (bond_send_ip(&A.b, pkt, (size_t)size, 0, now) != 0)
                refused++;
        pump(&B, now);
        pump(&A, now);
        if (now - last_tick >= 2000) {
            last_tick = now;
            bond_tick(&A.b, now);
            bond_tick(&B.b, now);
        }
    }
    for (int k = 0; k < 50; k++) {
        now = mono_ns() / 1000;
        bond_tick(&A.b, now);
        bond_tick(&B.b, now);
        pump(&B, now);
        pump(&A, now);
        usleep(1000);
    }
    double dt = (mono_ns() / 1000 - t0) / 1e6;
    uint64_t got = B.got - got0;
    printf("packets %ld size %ld links %d: delivered %llu refused %ld in %.3f s = %.0f pkt/s, "
           "%.1f Mbit/s inner\n",
           npkt, size, nlinks, (unsigned long long)got, refused, dt, got / dt,
           got * size * 8 / dt / 1e6);
    bond_free(&A.b);
    bond_free(&B.b);
    return 0;
}
