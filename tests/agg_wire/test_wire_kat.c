/* Known-answer vectors for protocol v1: a data packet, a handshake initiation and response, and
 * the session keys they produce, from fixed keys and a deterministic random source. Any change
 * here breaks interoperability between vehicles and hubs of different builds: change
 * docs/protocol.md's version with it, never just the vectors. */
#include "agg/crypto.h"
#include "agg/wire.h"

#include <stdio.h>
#include <string.h>

#include "testlib.h"

static uint64_t rng;

static uint32_t det_random(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)(z ^ (z >> 31));
}

static void det_buf(void *const buf, const size_t size)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < size; i++)
        p[i] = (uint8_t)det_random();
}

static const char *det_name(void)
{
    return "kat";
}

static struct randombytes_implementation det_impl = {
    .implementation_name = det_name,
    .random = det_random,
    .buf = det_buf,
};

static void hex(char *out, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * n] = '\0';
}

static struct hs_peer peer;
static struct hs_peer *lookup(void *ctx, const uint8_t pub[32])
{
    (void)ctx;
    return memcmp(pub, peer.static_pub, 32) == 0 ? &peer : NULL;
}

static bool print_mode;

static void check_hex(const char *name, const uint8_t *p, size_t n, const char *want)
{
    static char got[2 * 256 + 1];
    hex(got, p, n);
    if (print_mode)
        printf("%s = \"%s\"\n", name, got);
    else
        CHECK_STR(got, want);
}

#define KAT_DATA "41030a0b000000050b088f61f61d53ca7901a1eec194ae290e14785e813f"
#define KAT_INIT                                                                                   \
    "420200005a072c6d3766b869d6c3f48a847f3dd5281304d621c2069c78522b8c"                             \
    "4dc606470cfd006b46deefe487711f2df14ade03f0bdcaad0acaaf7143e42997"                             \
    "16d3e15f576b7d7723c73fad42c1cae21f06bba34c07acd96df4b82d0a105db0"                             \
    "1e73fd3bb0850e589b50ba6287db1e03421d40e9a7fad2b3625d1c91928fc1a8"                             \
    "61595dfa1e9a68bd"
#define KAT_RESP                                                                                   \
    "430200005a072c6df020f11a3ad59c29f6d424d1dfa65814e9698620c936ff12"                             \
    "dbd12f1e142f48180e7a01f51f40b24b9575ac54907e258d72b797e904e4af9b"                             \
    "4a331e75a737ccd0a5ab0b57"
#define KAT_I2R "8e15bc1f8d7b4fd16df76882ee8db147b158c184cb8d49da1316de36b5f4f7d4"
#define KAT_KDF                                                                                    \
    "72974e197266a33f0f186c8965bfb7a2118bc97c94c508b39e51157cb106a2b1"                             \
    "be9ea18fa0bf434d5d56fd5424c3b49cf66555a531d9b11532d33fab2626674f"                             \
    "326a28699ce93808e729f4c16469407e5272ba304ee9ddb4628492c1103c51b6"

int main(int argc, char **argv)
{
    print_mode = argc > 1 && strcmp(argv[1], "--print") == 0;
    randombytes_set_implementation(&det_impl);
    if (crypto_lib_init() < 0)
        return 2;

    /* Data packet: tx key 00..1f, session 0x0a0b, link 3, pn 0x1_0000_0005, "hello". */
    uint8_t k1[32], k2[32], pkt[64];
    for (int i = 0; i < 32; i++) {
        k1[i] = (uint8_t)i;
        k2[i] = (uint8_t)(0xff - i);
    }
    struct wire_session s;
    CHECK_INT(wire_session_init(&s, 0x0a0b, WIRE_CIPHER_CHACHA20POLY1305, k1, k2, true, 0), 0);
    int n = wire_seal_pn(&s, 0x100000005ull, 3, WIRE_INNER_IP, (const uint8_t *)"hello", 5, pkt,
                         sizeof(pkt));
    CHECK_INT(n, 5 + WIRE_OVERHEAD);
    check_hex("KAT_DATA", pkt, (size_t)n, KAT_DATA);

    uint8_t kdf[96], ck[32];
    memset(ck, 0x11, 32);
    hs_kdf(kdf, kdf + 32, kdf + 64, ck, (const uint8_t *)"corridor", 8);
    check_hex("KAT_KDF", kdf, 96, KAT_KDF);

    /* Handshake: hub private 40..5f, vehicle private c0..df, timestamp 2025-11-23T00:00:00Z. */
    uint8_t hub_priv[32], veh_priv[32];
    for (int i = 0; i < 32; i++) {
        hub_priv[i] = (uint8_t)(0x40 + i);
        veh_priv[i] = (uint8_t)(0xc0 + i);
    }
    rng = 1;
    struct hs_responder r;
    struct hs_initiator ini;
    hs_responder_init(&r, hub_priv, false);
    hs_initiator_init(&ini, veh_priv, r.s_pub, false);
    memcpy(peer.static_pub, ini.s_pub, 32);
    peer.allowed = true;
    uint8_t init[HS_INIT_LEN], resp[HS_RESP_LEN];
    CHECK_INT(hs_initiator_create(&ini, 1763856000ull * 1000000000ull, 2, 0, init, sizeof(init)),
              HS_INIT_LEN);
    check_hex("KAT_INIT", init, sizeof(init), KAT_INIT);
    size_t rlen;
    struct wire_session hsess, vsess;
    CHECK_INT(hs_responder_consume_initiation(&r, lookup, NULL, init, sizeof(init), 0x0102, 0, resp,
                                              sizeof(resp), &rlen, &hsess, NULL),
              WIRE_OK);
    check_hex("KAT_RESP", resp, rlen, KAT_RESP);
    CHECK_INT(hs_initiator_consume_response(&ini, resp, rlen, 0, &vsess), WIRE_OK);
    check_hex("KAT_I2R", vsess.tx_key, 32, KAT_I2R);
    CHECK(memcmp(hsess.rx_key, vsess.tx_key, 32) == 0);
    return print_mode ? 0 : test_summary();
}
