/* Unit tests of the tunnel's IPv4 helpers (agg/tun.h): MSS clamping, ICMP "fragmentation
 * needed", traffic classes, prefix parsing, inner MTU. Pure: no TUN device, no root. */
#include <arpa/inet.h>
#include <string.h>

#include "agg/agg.h"
#include "agg/tun.h"
#include "common/common.h"
#include "testlib.h"

static uint16_t sum16(const uint8_t *p, size_t len)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        s += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        s += (uint32_t)p[len - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}

/* TCP checksum over pseudo header + segment: 0xffff when valid. */
static uint16_t tcp_check(const uint8_t *ip, size_t len)
{
    uint8_t buf[128];
    size_t tl = len - 20;
    memcpy(buf, ip + 12, 8);
    buf[8] = 0;
    buf[9] = 6;
    buf[10] = (uint8_t)(tl >> 8);
    buf[11] = (uint8_t)tl;
    memcpy(buf + 12, ip + 20, tl);
    return sum16(buf, 12 + tl);
}

static size_t make_syn(uint8_t *p, uint16_t mss, uint8_t flags)
{
    memset(p, 0, 64);
    p[0] = 0x45;
    p[3] = 44; /* 20 + 24 */
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 6;
    inet_pton(AF_INET, "192.168.1.10", p + 12);
    inet_pton(AF_INET, "93.184.216.34", p + 16);
    uint8_t *t = p + 20;
    t[0] = 0x30;
    t[1] = 0x39;
    t[2] = 0x01;
    t[3] = 0xbb;
    t[12] = 6 << 4;
    t[13] = flags;
    t[20] = 2;
    t[21] = 4;
    t[22] = (uint8_t)(mss >> 8);
    t[23] = (uint8_t)mss;
    /* checksum */
    uint8_t buf[128];
    memset(buf, 0, sizeof(buf));
    memcpy(buf, p + 12, 8);
    buf[9] = 6;
    buf[11] = 24;
    memcpy(buf + 12, t, 24);
    uint16_t c = (uint16_t)~sum16(buf, 36);
    t[16] = (uint8_t)(c >> 8);
    t[17] = (uint8_t)c;
    return 44;
}

static void test_mss(void)
{
    uint8_t p[64];
    size_t n = make_syn(p, 1460, 0x02);
    CHECK_INT(tcp_check(p, n), 0xffff);
    tun_clamp_mss(p, n, 1400);
    CHECK_INT(p[42] << 8 | p[43], 1360);
    CHECK_INT(tcp_check(p, n), 0xffff); /* checksum still valid */
    /* SYN-ACK too */
    n = make_syn(p, 1460, 0x12);
    tun_clamp_mss(p, n, 1447);
    CHECK_INT(p[42] << 8 | p[43], 1407);
    CHECK_INT(tcp_check(p, n), 0xffff);
    /* smaller MSS untouched */
    n = make_syn(p, 1200, 0x02);
    tun_clamp_mss(p, n, 1447);
    CHECK_INT(p[42] << 8 | p[43], 1200);
    /* not a SYN: untouched */
    n = make_syn(p, 1460, 0x10);
    tun_clamp_mss(p, n, 1000);
    CHECK_INT(p[42] << 8 | p[43], 1460);
    /* truncated / malformed options never read out of bounds */
    n = make_syn(p, 1460, 0x02);
    p[41] = 40; /* option length beyond the header */
    tun_clamp_mss(p, n, 1000);
    CHECK_INT(p[42] << 8 | p[43], 1460);
    tun_clamp_mss(p, 30, 1000);
}

static void test_icmp(void)
{
    uint8_t p[64], out[128];
    size_t n = make_syn(p, 1460, 0x02);
    uint32_t src;
    inet_pton(AF_INET, "10.77.0.2", &src);
    size_t m = tun_frag_needed(p, n, src, 1447, out, sizeof(out));
    CHECK_INT(m, 20 + 8 + 28);
    CHECK_INT(out[9], 1);
    CHECK_INT(out[20], 3);
    CHECK_INT(out[21], 4);
    CHECK_INT(out[26] << 8 | out[27], 1447);
    CHECK(memcmp(out + 16, p + 12, 4) == 0);    /* to the original sender */
    CHECK_INT(sum16(out, 20), 0xffff);          /* IP header checksum valid */
    CHECK_INT(sum16(out + 20, m - 20), 0xffff); /* ICMP checksum valid */
    p[6] = 0;                                   /* DF clear: nothing to answer */
    CHECK_INT(tun_frag_needed(p, n, src, 1447, out, sizeof(out)), 0);
    CHECK_INT(tun_frag_needed(p, 10, src, 1447, out, sizeof(out)), 0);
    p[6] = 0x40;
    CHECK_INT(tun_frag_needed(p, n, src, 1447, out, 20), 0);
}

static void test_classes(void)
{
    struct agg_class in[2];
    memset(in, 0, sizeof(in));
    str_copy(in[0].name, "ops", sizeof(in[0].name));
    str_copy(in[0].src_subnet, "192.168.1.0/24", sizeof(in[0].src_subnet));
    in[0].dscp = -1;
    str_copy(in[1].name, "voice", sizeof(in[1].name));
    in[1].dscp = 46;
    struct tun_class c[2];
    char err[128];
    CHECK_INT(tun_class_parse(&in[0], &c[0], err, sizeof(err)), 0);
    CHECK_INT(tun_class_parse(&in[1], &c[1], err, sizeof(err)), 0);
    uint8_t p[64];
    size_t n = make_syn(p, 1460, 0x02);
    CHECK_INT(tun_classify(c, 2, p, n), 1);
    inet_pton(AF_INET, "192.168.2.10", p + 12);
    CHECK_INT(tun_classify(c, 2, p, n), 0);
    p[1] = 46 << 2;
    CHECK_INT(tun_classify(c, 2, p, n), 2);
    str_copy(in[0].src_subnet, "300.1.1.1/8", sizeof(in[0].src_subnet));
    CHECK_INT(tun_class_parse(&in[0], &c[0], err, sizeof(err)), -1);
    CHECK(strstr(err, "ops") != NULL);
}

static void test_prefix(void)
{
    uint32_t a;
    unsigned p;
    CHECK_INT(tun_parse_prefix("10.77.0.2/16", &a, &p), 0);
    CHECK_INT(p, 16);
    CHECK_INT(ntohl(a), 0x0a4d0002);
    CHECK_INT(tun_parse_prefix("10.77.0.2", &a, &p), 0);
    CHECK_INT(p, 32);
    CHECK_INT(tun_parse_prefix("10.77.0.2/33", &a, &p), -1);
    CHECK_INT(tun_parse_prefix("10.77.0/8", &a, &p), -1);
    CHECK_INT(tun_parse_prefix("", &a, &p), -1);
    CHECK_INT(agg_inner_mtu(1500), 1500 - 28 - 25);
    CHECK_INT(agg_inner_mtu(0), 1447);
}

int main(void)
{
    test_mss();
    test_icmp();
    test_classes();
    test_prefix();
    return test_summary();
}
