// fuzz-libs: corridor_agg corridor_common
/* fuzz_packet: arbitrary bytes through the tunnel's packet parsers, the way a hub or vehicle
 * socket would see them: wire_classify, wire_open against a fixed test session (replay window
 * reset per input so valid seeds always reach the decrypt path), LZ4 decompression of what
 * opened, the handshake responder (fixed hub key, one allowed vehicle) and the initiator with a
 * pending handshake. Randomness is deterministic so seeds stay valid across runs.
 *
 * Built with -DFUZZ_PACKET_WRITE_SEEDS it writes the seed corpus (valid packets of every kind)
 * instead; regenerate after a wire format change with:
 *   cc -std=c11 -D_GNU_SOURCE -DFUZZ_PACKET_WRITE_SEEDS -I. tests/fuzz/fuzz_packet.c agg/wire.c \
 *      agg/crypto.c -lsodium -llz4 -o /tmp/seedgen && /tmp/seedgen tests/fuzz/corpus/packet */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "agg/crypto.h"
#include "agg/wire.h"

static uint64_t rng_state;

static uint32_t det_random(void)
{
    /* splitmix64: deterministic, good enough for a fuzz harness, never for keys. */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
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
    return "fuzz-deterministic";
}

static struct randombytes_implementation det_impl = {
    .implementation_name = det_name,
    .random = det_random,
    .buf = det_buf,
};

static struct {
    struct wire_session sess, sess_aes, sess_template, sess_aes_template, sess_tx_template;
    bool have_aes;
    struct hs_responder resp_template;
    struct hs_initiator ini_template;
    struct hs_peer peer_template;
    uint8_t init_pkt[HS_INIT_LEN];
} F;

static const uint16_t SID = 0x0102, SID_AES = 0x0103;

static struct wire_session *lookup(void *ctx, uint16_t id)
{
    (void)ctx;
    if (id == SID)
        return &F.sess;
    if (id == SID_AES && F.have_aes)
        return &F.sess_aes;
    return NULL;
}

static struct hs_peer peer;

static struct hs_peer *peer_lookup(void *ctx, const uint8_t pub[32])
{
    (void)ctx;
    return memcmp(pub, peer.static_pub, 32) == 0 ? &peer : NULL;
}

static void setup(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    randombytes_set_implementation(&det_impl);
    if (sodium_init() < 0)
        __builtin_trap();
    rng_state = 1;
    uint8_t k1[32], k2[32], hub_priv[32], veh_priv[32];
    for (int i = 0; i < 32; i++) {
        k1[i] = (uint8_t)i;
        k2[i] = (uint8_t)(0x80 + i);
        hub_priv[i] = (uint8_t)(0x40 + i);
        veh_priv[i] = (uint8_t)(0xc0 + i);
    }
    /* Receive side of the test session: rx key k1 (the seed writer seals with tx key k1). */
    wire_session_init(&F.sess_template, SID, WIRE_CIPHER_CHACHA20POLY1305, k2, k1, false, 0);
    wire_session_init(&F.sess_tx_template, SID, WIRE_CIPHER_CHACHA20POLY1305, k1, k2, true, 0);
    F.have_aes = crypto_aead_aes256gcm_is_available() &&
                 wire_session_init(&F.sess_aes_template, SID_AES, WIRE_CIPHER_AES256GCM, k2, k1,
                                   false, 0) == 0;
    hs_responder_init(&F.resp_template, hub_priv, true);
    hs_initiator_init(&F.ini_template, veh_priv, F.resp_template.s_pub, false);
    hs_initiator_create(&F.ini_template, 1700000000ull * 1000000000ull, 1, 0, F.init_pkt,
                        sizeof(F.init_pkt));
    memcpy(F.peer_template.static_pub, F.ini_template.s_pub, 32);
    F.peer_template.allowed = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[WIRE_MAX_PACKET + 64], out[WIRE_MAX_PACKET];
    setup();
    if (size > sizeof(buf))
        size = sizeof(buf); /* still > WIRE_MAX_PACKET: the oversized path is exercised */
    F.sess = F.sess_template;
    F.sess_aes = F.sess_aes_template;

    (void)wire_classify(data, size);

    memcpy(buf, data, size);
    struct wire_rx rx;
    int rc = wire_open(lookup, NULL, buf, size, &rx);
    if (rc == WIRE_OK || rc == WIRE_ERR_INNER_TYPE) {
        if (rx.payload < buf || rx.payload + rx.len > buf + size)
            __builtin_trap();
        if (rx.inner_type == WIRE_INNER_IP_LZ4) {
            int n = wire_decompress(rx.payload, rx.len, out, 1500);
            if (n > 1500)
                __builtin_trap();
        }
        /* The same packet again is a replay. */
        memcpy(buf, data, size);
        if (wire_open(lookup, NULL, buf, size, &rx) != WIRE_ERR_REPLAY)
            __builtin_trap();
    }
    /* Raw LZ4 decoder on arbitrary input, bounded by the MTU. */
    if (size > 0 && wire_decompress(data, size, out, 1500) > 1500)
        __builtin_trap();

    /* Past the AEAD: random bytes never authenticate, so also seal the input as the plaintext
     * (first byte = inner type) with the peer's key and open it, to reach the code after
     * decryption (inner types, LZ4 of attacker-chosen but authenticated content). */
    if (size >= 1 && size - 1 <= WIRE_MAX_PAYLOAD) {
        F.sess = F.sess_template;
        struct wire_session tx = F.sess_tx_template;
        int n = wire_seal(&tx, data[0], data[0], data + 1, size - 1, buf, sizeof(buf), NULL);
        if (n < 0)
            __builtin_trap();
        rc = wire_open(lookup, NULL, buf, (size_t)n, &rx);
        if (rc != WIRE_OK && rc != WIRE_ERR_INNER_TYPE)
            __builtin_trap();
        if (rx.len != size - 1 || (size > 1 && memcmp(rx.payload, data + 1, size - 1) != 0))
            __builtin_trap();
        if (rx.inner_type == WIRE_INNER_IP_LZ4 &&
            wire_decompress(rx.payload, rx.len, out, 1500) > 1500)
            __builtin_trap();
        if (size >= WIRE_LZ4_MIN_INPUT) { /* compression round trip of arbitrary content */
            n = wire_seal_ip(&tx, 0, data, size, true, buf, sizeof(buf), NULL);
            if (n < 0 || wire_open(lookup, NULL, buf, (size_t)n, &rx) != WIRE_OK)
                __builtin_trap();
            if (rx.inner_type == WIRE_INNER_IP_LZ4) {
                static uint8_t big[WIRE_MAX_PACKET];
                int m = wire_decompress(rx.payload, rx.len, big, sizeof(big));
                if (m != (int)size || memcmp(big, data, size) != 0)
                    __builtin_trap();
            } else if (rx.len != size || memcmp(rx.payload, data, size) != 0) {
                __builtin_trap();
            }
        }
    }

    /* Handshake responder: fresh replay state per input. */
    struct hs_responder resp = F.resp_template;
    peer = F.peer_template;
    struct wire_session s;
    size_t rlen = 0;
    rc = hs_responder_consume_initiation(&resp, peer_lookup, NULL, data, size, 7, 0, out,
                                         sizeof(out), &rlen, &s, NULL);
    if (rc == WIRE_OK) {
        if (rlen != HS_RESP_LEN || rlen >= size)
            __builtin_trap(); /* never amplify */
    } else if (rlen != 0) {
        __builtin_trap(); /* never answer what did not authenticate */
    }

    /* Handshake initiator with a pending handshake. */
    struct hs_initiator ini = F.ini_template;
    (void)hs_initiator_consume_response(&ini, data, size, 0, &s);
    return 0;
}

#ifdef FUZZ_PACKET_WRITE_SEEDS
static void put(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n)
        perror(path);
    if (f)
        fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    const char *dir = argv[1];
    setup();
    uint8_t k1[32], k2[32], pkt[WIRE_MAX_PACKET], ip[1400];
    for (int i = 0; i < 32; i++) {
        k1[i] = (uint8_t)i;
        k2[i] = (uint8_t)(0x80 + i);
    }
    struct wire_session tx;
    wire_session_init(&tx, SID, WIRE_CIPHER_CHACHA20POLY1305, k1, k2, true, 0);
    for (size_t i = 0; i < sizeof(ip); i++)
        ip[i] = (uint8_t)(i < 20 ? 0x45 : "corridor tunnel payload "[i % 24]);
    int n = wire_seal(&tx, 1, WIRE_INNER_IP, ip, 60, pkt, sizeof(pkt), NULL);
    put(dir, "data_ip_small", pkt, (size_t)n);
    n = wire_seal(&tx, 2, WIRE_INNER_IP, ip, sizeof(ip), pkt, sizeof(pkt), NULL);
    put(dir, "data_ip_1400", pkt, (size_t)n);
    n = wire_seal_ip(&tx, 3, ip, sizeof(ip), true, pkt, sizeof(pkt), NULL);
    put(dir, "data_ip_lz4", pkt, (size_t)n);
    uint8_t frag[100];
    frag[0] = wire_frag_byte(1, 2);
    memcpy(frag + 1, ip, 99);
    n = wire_seal(&tx, 0, WIRE_INNER_FRAG, frag, sizeof(frag), pkt, sizeof(pkt), NULL);
    put(dir, "data_frag", pkt, (size_t)n);
    n = wire_seal(&tx, 0, WIRE_INNER_KEEPALIVE, NULL, 0, pkt, sizeof(pkt), NULL);
    put(dir, "data_keepalive", pkt, (size_t)n);
    n = wire_seal(&tx, 4, 0x10, (const uint8_t *)"\x01\x02probe", 7, pkt, sizeof(pkt), NULL);
    put(dir, "data_ctrl", pkt, (size_t)n);
    n = wire_seal(&tx, 4, 0x3a, (const uint8_t *)"x", 1, pkt, sizeof(pkt), NULL);
    put(dir, "data_unknown_inner", pkt, (size_t)n);
    atomic_store(&tx.tx_next, 0xfffffffeull);
    n = wire_seal(&tx, 5, WIRE_INNER_IP, ip, 40, pkt, sizeof(pkt), NULL);
    put(dir, "data_pn_high", pkt, (size_t)n);
    if (F.have_aes) {
        struct wire_session txa;
        wire_session_init(&txa, SID_AES, WIRE_CIPHER_AES256GCM, k1, k2, true, 0);
        n = wire_seal(&txa, 1, WIRE_INNER_IP, ip, 200, pkt, sizeof(pkt), NULL);
        put(dir, "data_aes", pkt, (size_t)n);
    }
    put(dir, "hs_init", F.init_pkt, sizeof(F.init_pkt));
    /* The response the fixed responder gives to that initiation (deterministic RNG). */
    struct hs_responder resp = F.resp_template;
    peer = F.peer_template;
    struct wire_session s;
    size_t rlen = 0;
    if (hs_responder_consume_initiation(&resp, peer_lookup, NULL, F.init_pkt, sizeof(F.init_pkt), 7,
                                        0, pkt, sizeof(pkt), &rlen, &s, NULL) == WIRE_OK) {
        put(dir, "hs_resp", pkt, rlen);
        struct hs_initiator ini = F.ini_template;
        if (hs_initiator_consume_response(&ini, pkt, rlen, 0, &s) != WIRE_OK)
            fprintf(stderr, "response seed does not complete the handshake\n");
    }
    uint8_t junk[] = {0x41, 0, 0, 0};
    put(dir, "truncated", junk, sizeof(junk));
    return 0;
}
#endif
