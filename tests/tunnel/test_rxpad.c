/* Delay equalisation at the receiver: which links set the pad (agg/udplink.c, update_rx_pad).
 * Includes the engine's .c to reach its static helpers; nothing here needs a socket or a
 * session, only the bond's receive counters and the peer's probe view per link. */
#include "agg/udplink.c"

#include "testlib.h"

#define MS 1000ull

/* Three links with receive-direction base transits of 20 / 40 / 75 ms, probed recently. */
static void mk_links(struct linkest es[3], uint64_t now_us)
{
    const int64_t base[3] = {20000, 40000, 75000};
    for (uint8_t i = 0; i < 3; i++) {
        linkest_init(&es[i], i, 0);
        es[i].has_rx = 1;
        es[i].rx_base_us = base[i];
        es[i].rx_last_us = now_us;
    }
}

/* One 100 ms pad update in which the links received these many bytes. */
static void step(struct bond *b, struct linkest es[3], const uint32_t bytes[3], uint64_t *now)
{
    *now += 100 * MS;
    for (unsigned i = 0; i < 3; i++) {
        b->link[i].rx_bytes += bytes[i];
        es[i].rx_last_us = *now;
    }
    update_rx_pad(b, es, 3, *now);
}

static void test_pad_every_link_until_proven_small(void)
{
    static struct bond b; /* large; only the receive counters and pads are used */
    memset(&b, 0, sizeof(b));
    b.eq_min_bytes = 1000;
    struct linkest es[3];
    uint64_t now = 10000 * MS;
    mk_links(es, now);

    /* idle: every live link counts, the pad aims at the slowest */
    const uint32_t idle[3] = {0, 0, 0};
    step(&b, es, idle, &now);
    CHECK_INT(b.rx_pad_us[0], 55000);
    CHECK_INT(b.rx_pad_us[1], 35000);
    CHECK_INT(b.rx_pad_us[2], 0);

    /* a flow starts on the fast links while the slow one carries ~1 %: for 2 s the slow link
     * still sets the pad, so TCP's first RTT samples already see the delay of later ones */
    const uint32_t ramp[3] = {200000, 200000, 4000};
    for (int i = 0; i < 19; i++) {
        step(&b, es, ramp, &now);
        CHECK_INT(b.rx_pad_us[0], 55000);
    }
    /* after 2 s of load with under 5 %, it is left out (asym's saturated 0.2 Mbit/s link) */
    for (int i = 0; i < 3; i++)
        step(&b, es, ramp, &now);
    CHECK_INT(b.rx_pad_us[0], 20000);
    CHECK_INT(b.rx_pad_us[1], 0);
    CHECK(pad_leaves_out(&b, 2));
    CHECK(!pad_leaves_out(&b, 0));

    /* an idle bond brings every link back: the next flow starts with the full pad */
    for (int i = 0; i < 30; i++)
        step(&b, es, idle, &now);
    CHECK(!pad_leaves_out(&b, 2));
    CHECK_INT(b.rx_pad_us[0], 55000);

    /* left out again after 2 s of load without a share; back at once when it brings one */
    for (int i = 0; i < 25; i++)
        step(&b, es, ramp, &now);
    CHECK(pad_leaves_out(&b, 2));
    const uint32_t full[3] = {120000, 300000, 600000};
    for (int i = 0; i < 10; i++)
        step(&b, es, full, &now);
    CHECK(!pad_leaves_out(&b, 2));
    CHECK_INT(b.rx_pad_us[0], 55000);

    /* equalisation off: no pads at all */
    b.eq_min_bytes = 0;
    step(&b, es, full, &now);
    CHECK_INT(b.rx_pad_us[0], 0);
}

static unsigned g_delivered;
static void count_delivery(void *ctx, uint8_t *ip, size_t len)
{
    (void)ctx;
    (void)ip;
    (void)len;
    g_delivered++;
}

/* A repair is not padded: it fills a hole that everything behind it waits for. Padded by the
 * fast link it came on (55 ms here), it held delivery that much longer after every repair. */
static void test_repair_not_padded(void)
{
    static struct bond b;
    char err[128];
    CHECK_INT(bond_init(&b, 1447, false, count_delivery, NULL, err, sizeof(err)), 0);
    CHECK(b.eq_min_bytes > 0);
    reorder_set_hold(b.rb, 300 * MS);
    b.rx_pad_us[0] = 55 * MS; /* link 0: the fast one */
    b.rx_pad_us[2] = 0;       /* link 2: the slowest */
    uint8_t pkt[1200];
    memset(pkt, 0, sizeof(pkt));
    pkt[0] = 0x45;
    uint64_t t = 1000 * MS;
    g_delivered = 0;
    push_packet(&b, 2, 0, WIRE_INNER_IP, pkt, sizeof(pkt), false, t);
    push_packet(&b, 2, 2, WIRE_INNER_IP, pkt, sizeof(pkt), false, t + 1 * MS); /* 1 is lost */
    bond_release(&b, t + 1 * MS);
    CHECK_INT(g_delivered, 1);
    /* the repair of 1 comes 50 ms later on the fast link: 1 and 2 go at once */
    push_packet(&b, 0, 1, WIRE_INNER_IP, pkt, sizeof(pkt), true, t + 51 * MS);
    bond_release(&b, t + 51 * MS);
    CHECK_INT(g_delivered, 3);
    /* an original on the fast link still waits its pad */
    push_packet(&b, 0, 3, WIRE_INNER_IP, pkt, sizeof(pkt), false, t + 52 * MS);
    bond_release(&b, t + 52 * MS);
    CHECK_INT(g_delivered, 3);
    bond_release(&b, t + 107 * MS);
    CHECK_INT(g_delivered, 4);
    bond_free(&b);
}

int main(void)
{
    test_pad_every_link_until_proven_small();
    test_repair_not_padded();
    return test_summary();
}
