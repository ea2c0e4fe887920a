/* The engines' shared data path (agg/udplink.h bond) end to end over real UDP sockets on
 * loopback, without TUN or root: two bonds (vehicle and hub side) with two links each, real
 * sealing, scheduling, probes, feedback, reorder and re-sending. Every 20th data packet towards
 * the hub is dropped on its way; the re-send path must repair every loss, so the receiver gets
 * every packet exactly once and in order. Then link 0 is cut: the bond must detect it within 300 ms
 * and keep delivering over link 1. */
#include <arpa/inet.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agg/udplink.h"
#include "common/common.h"
#include "testlib.h"

#define NLINK 2
#define NPKT  3000

struct side {
    struct bond b;
    struct wire_session *s;
    int fd[NLINK];
    struct sockaddr_in addr[NLINK];
    uint32_t next_expected, got, out_of_order, dup;
};

static struct side A, B;
static bool cut0;
static unsigned dropped;

static void deliver(void *ctx, uint8_t *ip, size_t len)
{
    struct side *s = ctx;
    uint32_t v;
    if (len < 8)
        return;
    memcpy(&v, ip + 4, 4);
    if (v < s->next_expected)
        s->dup++;
    else if (v > s->next_expected)
        s->out_of_order++;
    s->next_expected = v + 1;
    s->got++;
}

static int udp_bound(struct sockaddr_in *a)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)a, sizeof(*a)) == 0);
    socklen_t l = sizeof(*a);
    getsockname(fd, (struct sockaddr *)a, &l);
    return fd;
}

static struct wire_session *g_lookup_s;
static struct wire_session *lookup(void *ctx, uint16_t id)
{
    struct side *s = ctx;
    (void)id;
    g_lookup_s = s->s;
    return s->s;
}

/* Read everything pending on side s; drop rules emulate the links. */
static void pump(struct side *s, uint64_t now_us, bool to_hub)
{
    uint8_t buf[WIRE_MAX_PACKET + 64];
    for (int i = 0; i < NLINK; i++) {
        for (;;) {
            ssize_t n = recv(s->fd[i], buf, sizeof(buf), 0);
            if (n <= 0)
                break;
            if (i == 0 && cut0)
                continue; /* link 0 is cut in both directions */
            struct wire_rx rx;
            if (wire_open(lookup, s, buf, (size_t)n, &rx) != WIRE_OK)
                continue;
            /* Every 20th data packet towards the hub is "lost" on whichever link carried it:
             * counted per arrival, not by sequence, so the losses do not depend on how the
             * scheduler happened to split the load between two equal loopback links (under
             * ASan it sometimes puts nearly all of it on one). */
            static unsigned data_rx;
            if (to_hub && (rx.inner_type == WIRE_INNER_IP || rx.inner_type == WIRE_INNER_FRAG) &&
                ++data_rx % 20 == 7) {
                dropped++;
                continue;
            }
            bond_on_rx(&s->b, (uint8_t)i, &rx, now_us);
        }
    }
    bond_release(&s->b, now_us);
}

int main(void)
{
    char err[256];
    CHECK_INT(sodium_init() >= 0, 1);
    uint8_t k1[32], k2[32];
    randombytes_buf(k1, 32);
    randombytes_buf(k2, 32);
    static struct wire_session sa, sb;
    uint64_t now_ms = mono_ms();
    CHECK_INT(wire_session_init(&sa, 9, WIRE_CIPHER_CHACHA20POLY1305, k1, k2, true, now_ms), 0);
    CHECK_INT(wire_session_init(&sb, 9, WIRE_CIPHER_CHACHA20POLY1305, k2, k1, false, now_ms), 0);
    A.s = &sa;
    B.s = &sb;
    CHECK_INT(bond_init(&A.b, 1447, false, deliver, &A, err, sizeof(err)), 0);
    CHECK_INT(bond_init(&B.b, 1447, false, deliver, &B, err, sizeof(err)), 0);
    for (int i = 0; i < NLINK; i++) {
        A.fd[i] = udp_bound(&A.addr[i]);
        B.fd[i] = udp_bound(&B.addr[i]);
    }
    uint64_t now = mono_ns() / 1000;
    for (int i = 0; i < NLINK; i++) {
        CHECK_INT(bond_add_link(&A.b, (uint8_t)i, A.fd[i], &B.addr[i], now), 0);
        CHECK_INT(bond_add_link(&B.b, (uint8_t)i, B.fd[i], &A.addr[i], now), 0);
    }
    A.b.sess = &sa;
    B.b.sess = &sb;
    CHECK_INT(bond_add_link(&A.b, AGG_MAX_LINKS, -1, NULL, now), -1);

    /* Warm up: probes establish RTT on both links. */
    uint64_t t0 = mono_ns() / 1000;
    while (mono_ns() / 1000 - t0 < 300000) {
        now = mono_ns() / 1000;
        bond_tick(&A.b, now);
        bond_tick(&B.b, now);
        pump(&A, now, false);
        pump(&B, now, true);
        usleep(1000);
    }
    struct agg_link_stats ls;
    bond_link_stats(&A.b, 0, &ls);
    CHECK(ls.srtt_ms > 0.0 && ls.srtt_ms < 50.0);
    CHECK(ls.state == AGG_LINK_UP || ls.state == AGG_LINK_PROBING);

    /* Paced stream: 3000 packets of 1000 bytes at ~24 Mbit/s. */
    uint8_t pkt[1000];
    memset(pkt, 0, sizeof(pkt));
    pkt[0] = 0x45;
    uint32_t sent = 0, refused = 0;
    t0 = mono_ns() / 1000;
    while (sent < NPKT) {
        now = mono_ns() / 1000;
        while (sent < NPKT && sent < (now - t0) / 333) {
            memcpy(pkt + 4, &sent, 4);
            if (bond_send_ip(&A.b, pkt, sizeof(pkt), 0, now) != 0)
                refused++;
            sent++;
        }
        bond_tick(&A.b, now);
        bond_tick(&B.b, now);
        pump(&B, now, true);
        pump(&A, now, false);
        usleep(500);
    }
    t0 = mono_ns() / 1000;
    while (mono_ns() / 1000 - t0 < 500000) {
        now = mono_ns() / 1000;
        bond_tick(&A.b, now);
        bond_tick(&B.b, now);
        pump(&B, now, true);
        pump(&A, now, false);
        usleep(1000);
    }
    printf("sent %u refused %u dropped %u got %u ooo %u dup %u resent %llu\n", sent, refused,
           dropped, B.got, B.out_of_order, B.dup, (unsigned long long)A.b.resent);
    CHECK(dropped > 10);
    CHECK(A.b.resent >= dropped);
    CHECK_INT(B.got + refused, NPKT); /* every accepted packet arrived, exactly once */
    /* A repair that misses the (5 ms on loopback) hold is delivered late, out of order. */
    CHECK(B.dup + B.out_of_order <= NPKT / 200);
    struct agg_link_stats l0, l1;
    bond_link_stats(&A.b, 0, &l0);
    bond_link_stats(&A.b, 1, &l1);
    CHECK(l0.tx_packets > 100 && l1.tx_packets > 100); /* both links carried data */

    /* Weight 0 on link 1 (policy: disabled): new data only on link 0, nothing lost. The
     * vehicle tells the hub, whose downlink drains the same link. */
    sched_set_weight(A.b.sched, 1, 0.0);
    bond_send_weights(&A.b);
    {
        struct sched_link_info hi;
        t0 = mono_ns() / 1000;
        do {
            now = mono_ns() / 1000;
            pump(&B, now, true);
            usleep(1000);
        } while (sched_link_info(B.b.sched, 1, &hi) == 0 && hi.weight > 0.0 &&
                 mono_ns() / 1000 - t0 < 200000);
        CHECK(sched_link_info(B.b.sched, 1, &hi) == 0 && hi.weight == 0.0);
        CHECK(sched_link_info(B.b.sched, 0, &hi) == 0 && hi.weight == 1.0);
    }
    bond_link_stats(&A.b, 1, &l1);
    CHECK_INT(l1.state, AGG_LINK_DISABLED);
    uint64_t tx1_before = l1.tx_packets;
    uint32_t got_w = B.got;
    t0 = mono_ns() / 1000;
    uint32_t nw = 0;
    while (mono_ns() / 1000 - t0 < 400000) {
        now = mono_ns() / 1000;
        if (nw < 300 && nw < (now - t0) / 1000) {
            uint32_t v = NPKT + 100000 + nw++;
            memcpy(pkt + 4, &v, 4);
            bond_send_ip(&A.b, pkt, 500, 0, now);
        }
        bond_tick(&A.b, now);
        bond_tick(&B.b, now);
        pump(&B, now, true);
        pump(&A, now, false);
        usleep(500);
    }
    bond_link_stats(&A.b, 1, &l1);
    printf("weight 0: link 1 sent %llu packets (control only) while %u data packets went\n",
           (unsigned long long)(l1.tx_packets - tx1_before), nw);
    CHECK(l1.tx_packets - tx1_before < 40); /* probes + feedback, no data */
    CHECK_INT(B.got - got_w, nw);
    sched_set_weight(A.b.sched, 1, 1.0);
    bond_send_weights(&A.b);

    /* Traffic classes: the vehicle (A) applies its table and sends it; the hub (B) applies it
     * to the downlink, matching by destination. Class 1 (DSCP 46, ticketing) is failover with
     * link 1 preferred: every such downlink packet leaves on link 1. Class 2 (DSCP 10, CCTV)
     * is capped at 800 kbit/s: a 16 Mbit/s burst is mostly refused. */
    struct ctrl_classes tab = {.n = 2};
    tab.c[0] = (struct ctrl_class){.net = 0xc0a80a00,
                                   .pfx = 24,
                                   .dscp = 46,
                                   .mode = SCHED_FAILOVER,
                                   .n_order = 1,
                                   .order = {1}};
    tab.c[1] = (struct ctrl_class){.dscp = 10, .mode = SCHED_BOND, .rate_kbps = 800};
    struct tun_class vcls[CTRL_MAX_CLASSES], hcls[CTRL_MAX_CLASSES];
    bond_set_classes(&A.b, &tab, false, vcls);
    bond_send_classes(&A.b, &tab);
    t0 = mono_ns() / 1000;
    while (!B.b.peer_classes_new && mono_ns() / 1000 - t0 < 200000) {
        now = mono_ns() / 1000;
        pump(&B, now, true);
        usleep(1000);
    }
    CHECK(B.b.peer_classes_new);
    CHECK_INT(B.b.peer_classes.n, 2);
    CHECK_INT(B.b.peer_classes.c[0].order[0], 1);
    CHECK_INT(B.b.peer_classes.c[1].rate_kbps, 800);
    bond_set_classes(&B.b, &B.b.peer_classes, true, hcls);
    B.b.peer_classes_new = false;
    uint8_t ip[1000];
    memset(ip, 0, sizeof(ip));
    ip[0] = 0x45;
    ip[1] = 46 << 2;
    const uint8_t lan_host[4] = {192, 168, 10, 7}, other[4] = {10, 9, 0, 1};
    memcpy(ip + 16, lan_host, 4); /* downlink: to a LAN host in class 1's subnet */
    CHECK_INT(tun_classify(hcls, 2, ip, sizeof(ip)), 1);
    memcpy(ip + 12, lan_host, 4); /* uplink: from it */
    memcpy(ip + 16, other, 4);
    CHECK_INT(tun_classify(vcls, 2, ip, sizeof(ip)), 1);
    CHECK_INT(tun_classify(hcls, 2, ip, sizeof(ip)), 0); /* not to the LAN subnet */
    memcpy(ip + 12, other, 4);
    memcpy(ip + 16, lan_host, 4);
    struct agg_link_stats h0, h1;
    bond_link_stats(&B.b, 0, &h0);
    bond_link_stats(&B.b, 1, &h1);
    uint64_t h0_before = h0.tx_packets, h1_before = h1.tx_packets;
    t0 = mono_ns() / 1000;
    uint32_t nf = 0, nf_refused = 0;
    while (mono_ns() / 1000 - t0 < 300000) {
        now = mono_ns() / 1000;
        if (nf < 200 && nf < (now - t0) / 1000) {
            unsigned cls = tun_classify(hcls, 2, ip, 600);
            if (bond_send_ip(&B.b, ip, 600, cls, now) != 0)
                nf_refused++;
            nf++;
        }
        bond_tick(&A.b, now);
        bond_tick(&B.b, now);
        pump(&A, now, false);
        pump(&B, now, true);
        usleep(500);
    }
    bond_link_stats(&B.b, 0, &h0);
    bond_link_stats(&B.b, 1, &h1);
    printf("class failover(link 1): link 1 sent %llu, link 0 sent %llu (control only), "
           "refused %u of %u\n",
           (unsigned long long)(h1.tx_packets - h1_before),
           (unsigned long long)(h0.tx_packets - h0_before), nf_refused, nf);
    CHECK_INT(nf_refused, 0);
    CHECK(h1.tx_packets - h1_before >= nf);
    CHECK(h0.tx_packets - h0_before < 40); /* probes and feedback only */
    ip[1] = 10 << 2;                       /* CCTV: 200 x 1000 B in 10 ms, cap 800 kbit/s */
    CHECK_INT(tun_classify(hcls, 2, ip, sizeof(ip)), 2);
    uint32_t capped = 0;
    now = mono_ns() / 1000;
    for (int i = 0; i < 200; i++)
        if (bond_send_ip(&B.b, ip, sizeof(ip), 2, now + (uint64_t)i * 50) != 0)
            capped++;
    printf("class rate cap 800 kbit/s: %u of 200 packets refused in a 10 ms burst\n", capped);
    CHECK(capped >= 180 && capped < 200);

    /* Full inner MTU by fragments: with frag_mtu 700, every 1400-byte packet crosses as two
     * pieces, possibly on different links; link 1 still loses every 20th data packet (now a
     * piece), and repairs must make every packet whole, once, in order. */
    A.b.frag_mtu = 700;
    uint32_t got_f = B.got, nfr = 0, frag_refused = 0, ooo_f = B.out_of_order, dup_f = B.dup;
    unsigned dropped_f = dropped;
    uint8_t big[1400];
    memset(big, 0xa5, sizeof(big));
    big[0] = 0x45;
    t0 = mono_ns() / 1000;
    while (mono_ns() / 1000 - t0 < 700000) {
        now = mono_ns() / 1000;
        if (nfr < 600 && nfr < (now - t0) / 1000) {
            uint32_t seqv = NPKT + 200000 + nfr++;
            memcpy(big + 4, &seqv, 4);
            if (bond_send_ip(&A.b, big, sizeof(big), 0, now) != 0)
                frag_refused++;
        }
        bond_tick(&A.b, now);
        bond_tick(&B.b, now);
        pump(&B, now, true);
        pump(&A, now, false);
        usleep(500);
    }
    printf("fragments: %u packets of 1400 B as %llu pieces, %u pieces lost, joined "
           "%llu, dropped partial %llu, delivered %u, refused %u, ooo %u dup %u\n",
           nfr, (unsigned long long)A.b.frag_sent, dropped - dropped_f,
           (unsigned long long)B.b.frag_joined, (unsigned long long)B.b.frag_dropped, B.got - got_f,
           frag_refused, B.out_of_order - ooo_f, B.dup - dup_f);
    CHECK_INT(A.b.frag_sent, 3 * (nfr - frag_refused)); /* 1400 B in pieces of <= 699 */
    CHECK(dropped - dropped_f > 5);                     /* pieces were really lost and repaired */
    CHECK_INT(B.got - got_f + frag_refused, nfr);
    CHECK_INT(B.b.frag_joined, B.got - got_f);
    CHECK(B.out_of_order - ooo_f <= 3);
    CHECK_INT(B.dup - dup_f, 0);
    A.b.frag_mtu = 0;

    /* Cut link 0: within 300 ms it is down, and traffic keeps flowing on link 1. */
    cut0 = true;
    uint32_t got_before = B.got;
    t0 = mono_ns() / 1000;
    uint64_t down_at = 0;
    uint32_t n2 = 0;
    while (mono_ns() / 1000 - t0 < 800000) {
        now = mono_ns() / 1000;
        if (n2 < (now - t0) / 1000) { /* 1 packet per ms */
            uint32_t v = NPKT + n2++;
            memcpy(pkt + 4, &v, 4);
            bond_send_ip(&A.b, pkt, 200, 0, now);
        }
        bond_tick(&A.b, now);
        bond_tick(&B.b, now);
        pump(&B, now, true);
        pump(&A, now, false);
        bond_link_stats(&A.b, 0, &l0);
        if (!down_at && l0.state == AGG_LINK_DOWN)
            down_at = now;
        usleep(500);
    }
    uint64_t t1 = mono_ns() / 1000;
    while (mono_ns() / 1000 - t1 < 200000) { /* drain */
        now = mono_ns() / 1000;
        bond_tick(&A.b, now);
        bond_tick(&B.b, now);
        pump(&B, now, true);
        pump(&A, now, false);
        usleep(1000);
    }
    CHECK(down_at != 0);
    printf("link 0 down after %.0f ms; delivered %u of %u after the cut\n",
           down_at ? (down_at - t0) / 1000.0 : -1.0, B.got - got_before, n2);
    CHECK(down_at && down_at - t0 <= 300000);
    CHECK(B.got - got_before <= n2);
    CHECK(B.got - got_before + 10 >= n2); /* at most what was in flight at the cut */
    bond_free(&A.b);
    bond_free(&B.b);
    for (int i = 0; i < NLINK; i++) {
        close(A.fd[i]);
        close(B.fd[i]);
    }
    return test_summary();
}
