/* Handshake: success both ways, wrong hub key, unknown/disabled vehicle, replayed initiation,
 * bad mac1 dropped before any DH, forged responses, forward secrecy (structurally), cipher
 * negotiation, no amplification. */
#include "agg/crypto.h"

#include <string.h>

#include "testlib.h"

struct table {
    struct hs_peer peers[4];
    int n;
    int lookups;
};

static struct hs_peer *peer_lookup(void *ctx, const uint8_t pub[32])
{
    struct table *t = ctx;
    t->lookups++;
    for (int i = 0; i < t->n; i++)
        if (memcmp(t->peers[i].static_pub, pub, 32) == 0)
            return &t->peers[i];
    return NULL;
}

static struct wire_session *sess_lookup(void *ctx, uint16_t id)
{
    struct wire_session *s = ctx;
    return s->id == id ? s : NULL;
}

static uint8_t hub_priv[32], hub_pub[32], veh_priv[32], veh_pub[32], other_priv[32], other_pub[32];
static const uint64_t T0 = 1763860000ull * 1000000000ull; /* a wall clock in ns */

static void setup_keys(void)
{
    randombytes_buf(hub_priv, 32);
    randombytes_buf(veh_priv, 32);
    randombytes_buf(other_priv, 32);
    hs_public_key(hub_pub, hub_priv);
    hs_public_key(veh_pub, veh_priv);
    hs_public_key(other_pub, other_priv);
}

static void setup_table(struct table *t)
{
    memset(t, 0, sizeof(*t));
    memcpy(t->peers[0].static_pub, veh_pub, 32);
    t->peers[0].allowed = true;
    t->peers[0].user = (void *)"train-0042";
    memcpy(t->peers[1].static_pub, other_pub, 32);
    t->peers[1].allowed = false; /* known but disabled */
    t->n = 2;
}

/* Data both ways over a fresh pair of sessions. */
static void check_data(struct wire_session *v, struct wire_session *h)
{
    uint8_t pkt[256];
    struct wire_rx rx;
    int len = wire_seal(v, 2, WIRE_INNER_IP, (const uint8_t *)"uplink", 6, pkt, sizeof(pkt), NULL);
    CHECK(len > 0);
    CHECK(!h->confirmed);
    CHECK_INT(wire_open(sess_lookup, h, pkt, (size_t)len, &rx), WIRE_OK);
    CHECK(rx.first);
    CHECK(h->confirmed);
    CHECK(rx.len == 6 && memcmp(rx.payload, "uplink", 6) == 0);
    len = wire_seal(h, 2, WIRE_INNER_IP, (const uint8_t *)"downlink", 8, pkt, sizeof(pkt), NULL);
    CHECK_INT(wire_open(sess_lookup, v, pkt, (size_t)len, &rx), WIRE_OK);
    CHECK(rx.len == 8 && memcmp(rx.payload, "downlink", 8) == 0);
    CHECK(!rx.first); /* the initiator was confirmed by the response already */
}

static void test_success(void)
{
    struct hs_initiator ini;
    struct hs_responder resp;
    struct table t;
    setup_table(&t);
    CHECK_INT(hs_initiator_init(&ini, veh_priv, hub_pub, false), 0);
    CHECK_INT(hs_responder_init(&resp, hub_priv, false), 0);
    CHECK(memcmp(resp.s_pub, hub_pub, 32) == 0);

    uint8_t init[HS_INIT_LEN], out[256];
    CHECK_INT(hs_initiator_create(&ini, T0, 4, 100, init, HS_INIT_LEN - 1), -WIRE_ERR_BUFFER);
    CHECK(!ini.pending);
    CHECK_INT(hs_initiator_create(&ini, T0, 4, 100, init, sizeof(init)), HS_INIT_LEN);
    CHECK_INT(wire_classify(init, sizeof(init)), WIRE_T_HS_INIT);
    CHECK_INT(init[1], 4);
    CHECK(HS_RESP_LEN < HS_INIT_LEN); /* no amplification */

    struct wire_session vs, hsess;
    struct hs_peer *peer = NULL;
    size_t rlen = 0;
    int rc = hs_responder_consume_initiation(&resp, peer_lookup, &t, init, sizeof(init), 0x0a0b,
                                             200, out, sizeof(out), &rlen, &hsess, &peer);
    CHECK_INT(rc, WIRE_OK);
    CHECK_INT(rlen, HS_RESP_LEN);
    CHECK(peer == &t.peers[0]);
    CHECK_STR((const char *)peer->user, "train-0042");
    CHECK_INT(hsess.id, 0x0a0b);
    CHECK(!hsess.initiator);
    CHECK(!hsess.confirmed);
    CHECK_INT(hsess.created_ms, 200);
    CHECK_INT(resp.stats.dh, 4); /* es, ss, ee, se */
    CHECK_INT(resp.stats.accepted, 1);
    CHECK_INT(out[1], 4); /* echoes the link */
    CHECK_INT(wire_classify(out, rlen), WIRE_T_HS_RESP);

    uint8_t copy[HS_RESP_LEN];
    memcpy(copy, out, HS_RESP_LEN);
    CHECK_INT(hs_initiator_consume_response(&ini, out, rlen, 300, &vs), WIRE_OK);
    CHECK_INT(vs.id, 0x0a0b);
    CHECK(vs.initiator);
    CHECK(vs.confirmed);
    CHECK_INT(vs.cipher, WIRE_CIPHER_CHACHA20POLY1305);
    CHECK_INT(hsess.cipher, WIRE_CIPHER_CHACHA20POLY1305);
    CHECK(memcmp(vs.tx_key, hsess.rx_key, 32) == 0);
    CHECK(memcmp(vs.rx_key, hsess.tx_key, 32) == 0);
    CHECK(memcmp(vs.tx_key, vs.rx_key, 32) != 0);
    CHECK(!ini.pending);
    CHECK(sodium_is_zero(ini.e_priv, 32)); /* ephemeral secret gone: forward secrecy */
    /* A second copy of the response (another link) is not consumed twice. */
    struct wire_session dup;
    CHECK_INT(hs_initiator_consume_response(&ini, copy, sizeof(copy), 300, &dup),
              WIRE_ERR_HS_UNEXPECTED);
    check_data(&vs, &hsess);
    wire_session_wipe(&vs);
    wire_session_wipe(&hsess);
    hs_initiator_wipe(&ini);
    hs_responder_wipe(&resp);
}

static void test_rejections(void)
{
    struct hs_responder resp;
    struct table t;
    setup_table(&t);
    CHECK_INT(hs_responder_init(&resp, hub_priv, false), 0);
    uint8_t init[HS_INIT_LEN], out[256], bad[HS_INIT_LEN];
    struct wire_session s;
    size_t rlen = 99;

    /* Wrong hub key: the vehicle was configured with another hub's public key. mac1 does not
     * verify, the hub drops it before any DH and sends nothing. */
    uint8_t wrong_pub[32];
    hs_public_key(wrong_pub, other_priv);
    struct hs_initiator wrong;
    hs_initiator_init(&wrong, veh_priv, wrong_pub, false);
    hs_initiator_create(&wrong, T0, 0, 0, init, sizeof(init));
    CHECK_INT(hs_responder_consume_initiation(&resp, peer_lookup, &t, init, sizeof(init), 1, 0, out,
                                              sizeof(out), &rlen, &s, NULL),
              WIRE_ERR_HS_MAC1);
    CHECK_INT(rlen, 0);
    CHECK_INT(resp.stats.bad_mac1, 1);
    CHECK_INT(resp.stats.dh, 0);
    CHECK_INT(t.lookups, 0);

    /* A low-order hub key (misconfiguration): the initiator refuses to build an initiation. */
    uint8_t zero_pub[32] = {0}, one_pub[32] = {1};
    struct hs_initiator lo;
    hs_initiator_init(&lo, veh_priv, zero_pub, false);
    CHECK_INT(hs_initiator_create(&lo, T0, 0, 0, init, sizeof(init)), -WIRE_ERR_HS_DH);
    CHECK(!lo.pending);
    hs_initiator_init(&lo, veh_priv, one_pub, false);
    CHECK_INT(hs_initiator_create(&lo, T0, 0, 0, init, sizeof(init)), -WIRE_ERR_HS_DH);

    /* Any byte changed anywhere (including mac1): dropped before DH. */
    struct hs_initiator ini;
    hs_initiator_init(&ini, veh_priv, hub_pub, false);
    hs_initiator_create(&ini, T0 + 1, 0, 0, init, sizeof(init));
    for (size_t i = 0; i < HS_INIT_LEN; i++) {
        memcpy(bad, init, sizeof(bad));
        bad[i] ^= 0x20;
        int rc = hs_responder_consume_initiation(&resp, peer_lookup, &t, bad, sizeof(bad), 1, 0,
                                                 out, sizeof(out), &rlen, &s, NULL);
        /* byte 0 changes the type/version: rejected even earlier */
        CHECK_MSG(rc == (i == 0 ? WIRE_ERR_TYPE : WIRE_ERR_HS_MAC1), "byte %zu: %s", i,
                  wire_err_str(rc));
        CHECK_INT(rlen, 0);
    }
    CHECK_INT(resp.stats.dh, 0);
    CHECK_INT(resp.stats.bad_mac1, 1 + HS_INIT_LEN - 1);

    /* Garbage of the right length and of wrong lengths. */
    memset(bad, 0x41, sizeof(bad));
    bad[0] = (uint8_t)(WIRE_VERSION << 6 | WIRE_T_HS_INIT);
    CHECK_INT(hs_responder_consume_initiation(&resp, peer_lookup, &t, bad, sizeof(bad), 1, 0, out,
                                              sizeof(out), &rlen, &s, NULL),
              WIRE_ERR_HS_MAC1);
    CHECK_INT(hs_responder_consume_initiation(&resp, peer_lookup, &t, init, HS_INIT_LEN - 1, 1, 0,
                                              out, sizeof(out), &rlen, &s, NULL),
              WIRE_ERR_TRUNCATED);
    uint8_t longer[HS_INIT_LEN + 1] = {0};
    memcpy(longer, init, HS_INIT_LEN);
    CHECK_INT(hs_responder_consume_initiation(&resp, peer_lookup, &t, longer, sizeof(longer), 1, 0,
                                              out, sizeof(out), &rlen, &s, NULL),
              WIRE_ERR_OVERSIZED);
    CHECK_INT(hs_responder_consume_initiation(&resp, peer_lookup, &t, init, sizeof(init), 1, 0, out,
                                              HS_RESP_LEN - 1, &rlen, &s, NULL),
              WIRE_ERR_BUFFER);
    CHECK_INT(resp.stats.dh, 0);

    /* Unknown vehicle: a stranger who knows the hub's public key passes mac1, costs one DH, and
     * gets no answer. */
    uint8_t stranger_priv[32];
    randombytes_buf(stranger_priv, 32);
    struct hs_initiator str;
    hs_initiator_init(&str, stranger_priv, hub_pub, false);
    hs_initiator_create(&str, T0, 0, 0, init, sizeof(init));
    CHECK_INT(hs_responder_consume_initiation(&resp, peer_lookup, &t, init, sizeof(init), 1, 0, out,
                                              sizeof(out), &rlen, &s, NULL),
              WIRE_ERR_HS_UNKNOWN_PEER);
    CHECK_INT(rlen, 0);
    CHECK_INT(resp.stats.unknown_peer, 1);
    CHECK_INT(resp.stats.dh, 1);
    /* Known but disabled vehicle: same. */
    struct hs_initiator dis;
    hs_initiator_init(&dis, other_priv, hub_pub, false);
    hs_initiator_create(&dis, T0, 0, 0, init, sizeof(init));
    CHECK_INT(hs_responder_consume_initiation(&resp, peer_lookup, &t, init, sizeof(init), 1, 0, out,
                                              sizeof(out), &rlen, &s, NULL),
              WIRE_ERR_HS_UNKNOWN_PEER);
    CHECK_INT(resp.stats.unknown_peer, 2);

    /* Replay: an initiation is accepted once; the same bytes again, or an older timestamp, are
     * refused without an answer; a newer one is accepted. */
    hs_initiator_create(&ini, T0 + 1000, 0, 0, init, sizeof(init));
    uint8_t first[HS_INIT_LEN];
    memcpy(first, init, sizeof(first));
    CHECK_INT(hs_responder_consume_initiation(&resp, peer_lookup, &t, init, sizeof(init), 1, 0, out,
                                              sizeof(out), &rlen, &s, NULL),
              WIRE_OK);
    wire_session_wipe(&s);
    CHECK_INT(hs_responder_consume_initiation(&resp, peer_lookup, &t, first, sizeof(first), 2, 0,
                                              out, sizeof(out), &rlen, &s, NULL),
              WIRE_ERR_HS_REPLAY);
    CHECK_INT(rlen, 0);
    CHECK_INT(resp.stats.replayed, 1);
    hs_initiator_create(&ini, T0 + 999, 0, 0, init, sizeof(init));
    CHECK_INT(hs_responder_consume_initiation(&resp, peer_lookup, &t, init, sizeof(init), 2, 0, out,
                                              sizeof(out), &rlen, &s, NULL),
              WIRE_ERR_HS_REPLAY);
    /* The same initiation retargeted to another link is still the same timestamp: answered once. */
    hs_set_link(&ini, first, 7);
    CHECK_INT(hs_responder_consume_initiation(&resp, peer_lookup, &t, first, sizeof(first), 2, 0,
                                              out, sizeof(out), &rlen, &s, NULL),
              WIRE_ERR_HS_REPLAY);
    hs_initiator_create(&ini, T0 + 1001, 0, 0, init, sizeof(init));
    CHECK_INT(hs_responder_consume_initiation(&resp, peer_lookup, &t, init, sizeof(init), 2, 0, out,
                                              sizeof(out), &rlen, &s, NULL),
              WIRE_OK);
    wire_session_wipe(&s);

    /* A low-order ephemeral with a valid mac1 (attacker knows the hub public key): DH refused. */
    memset(bad, 0, sizeof(bad));
    bad[0] = (uint8_t)(WIRE_VERSION << 6 | WIRE_T_HS_INIT);
    uint8_t k[32];
    hs_hash(k, (const uint8_t *)"mac1----", 8, hub_pub, 32);
    hs_mac(bad + HS_INIT_LEN - HS_MAC_LEN, k, bad, HS_INIT_LEN - HS_MAC_LEN);
    CHECK_INT(hs_responder_consume_initiation(&resp, peer_lookup, &t, bad, sizeof(bad), 1, 0, out,
                                              sizeof(out), &rlen, &s, NULL),
              WIRE_ERR_HS_DH);
    CHECK_INT(rlen, 0);
    /* Valid mac1 over a random body: one DH, AEAD fails, no answer. */
    randombytes_buf(bad + 8, HS_INIT_LEN - 8 - HS_MAC_LEN);
    hs_mac(bad + HS_INIT_LEN - HS_MAC_LEN, k, bad, HS_INIT_LEN - HS_MAC_LEN);
    uint64_t dh = resp.stats.dh;
    CHECK_INT(hs_responder_consume_initiation(&resp, peer_lookup, &t, bad, sizeof(bad), 1, 0, out,
                                              sizeof(out), &rlen, &s, NULL),
              WIRE_ERR_HS_DECRYPT);
    CHECK_INT(resp.stats.dh, dh + 1);
    CHECK_INT(rlen, 0);
    hs_initiator_wipe(&ini);
    hs_responder_wipe(&resp);
}

static void test_responses(void)
{
    struct hs_initiator ini;
    struct hs_responder resp;
    struct table t;
    setup_table(&t);
    hs_initiator_init(&ini, veh_priv, hub_pub, false);
    hs_responder_init(&resp, hub_priv, false);
    uint8_t init[HS_INIT_LEN], out[HS_RESP_LEN], bad[HS_RESP_LEN];
    struct wire_session vs, hsess;
    size_t rlen;

    /* No handshake pending. */
    memset(out, 0, sizeof(out));
    out[0] = (uint8_t)(WIRE_VERSION << 6 | WIRE_T_HS_RESP);
    CHECK_INT(hs_initiator_consume_response(&ini, out, sizeof(out), 0, &vs),
              WIRE_ERR_HS_UNEXPECTED);

    hs_initiator_create(&ini, T0, 1, 0, init, sizeof(init));
    hs_set_link(&ini, init, 9); /* sent on link 9 instead */
    CHECK_INT(hs_responder_consume_initiation(&resp, peer_lookup, &t, init, sizeof(init), 77, 0,
                                              out, sizeof(out), &rlen, &hsess, NULL),
              WIRE_OK);
    CHECK_INT(out[1], 9);
    /* Every single-byte change of the response is refused and leaves the handshake pending. */
    for (size_t i = 0; i < HS_RESP_LEN; i++) {
        memcpy(bad, out, sizeof(bad));
        bad[i] ^= 0x01;
        int rc = hs_initiator_consume_response(&ini, bad, sizeof(bad), 0, &vs);
        CHECK_MSG(rc != WIRE_OK, "byte %zu accepted", i);
        CHECK(ini.pending);
    }
    /* A response forged by someone who knows the vehicle's public key (valid mac1) fails AEAD. */
    memcpy(bad, out, sizeof(bad));
    bad[50] ^= 1;
    uint8_t k[32];
    hs_hash(k, (const uint8_t *)"mac1----", 8, veh_pub, 32);
    hs_mac(bad + HS_RESP_LEN - HS_MAC_LEN, k, bad, HS_RESP_LEN - HS_MAC_LEN);
    CHECK_INT(hs_initiator_consume_response(&ini, bad, sizeof(bad), 0, &vs), WIRE_ERR_HS_DECRYPT);
    CHECK_INT(hs_initiator_consume_response(&ini, out, HS_RESP_LEN - 1, 0, &vs),
              WIRE_ERR_TRUNCATED);
    CHECK_INT(hs_initiator_consume_response(&ini, init, sizeof(init), 0, &vs), WIRE_ERR_TYPE);
    /* The genuine one still completes. */
    CHECK_INT(hs_initiator_consume_response(&ini, out, sizeof(out), 0, &vs), WIRE_OK);
    CHECK_INT(vs.id, 77);
    check_data(&vs, &hsess);
    wire_session_wipe(&vs);
    wire_session_wipe(&hsess);
}

static void test_forward_secrecy_and_rekey(void)
{
    /* Two handshakes between the same static keys: new ephemerals on both sides, unrelated
     * session keys; the old session keeps working for in-flight packets next to the new one. */
    struct hs_initiator ini;
    struct hs_responder resp;
    struct table t;
    setup_table(&t);
    hs_initiator_init(&ini, veh_priv, hub_pub, false);
    hs_responder_init(&resp, hub_priv, false);
    uint8_t init1[HS_INIT_LEN], init2[HS_INIT_LEN], out1[HS_RESP_LEN], out2[HS_RESP_LEN];
    struct wire_session v1, h1, v2, h2;
    size_t rlen;
    hs_initiator_create(&ini, T0, 0, 0, init1, sizeof(init1));
    CHECK_INT(hs_responder_consume_initiation(&resp, peer_lookup, &t, init1, sizeof(init1), 1, 0,
                                              out1, sizeof(out1), &rlen, &h1, NULL),
              WIRE_OK);
    CHECK_INT(hs_initiator_consume_response(&ini, out1, rlen, 0, &v1), WIRE_OK);
    hs_initiator_create(&ini, T0 + 120000000000ull, 0, 120000, init2, sizeof(init2));
    CHECK_INT(hs_responder_consume_initiation(&resp, peer_lookup, &t, init2, sizeof(init2), 2,
                                              120000, out2, sizeof(out2), &rlen, &h2, NULL),
              WIRE_OK);
    CHECK_INT(hs_initiator_consume_response(&ini, out2, rlen, 120000, &v2), WIRE_OK);
    CHECK(memcmp(init1 + 8, init2 + 8, 32) != 0); /* initiator ephemerals */
    CHECK(memcmp(out1 + 8, out2 + 8, 32) != 0);   /* responder ephemerals */
    CHECK(memcmp(v1.tx_key, v2.tx_key, 32) != 0);
    CHECK(memcmp(v1.rx_key, v2.rx_key, 32) != 0);
    CHECK(memcmp(init1 + 40, init2 + 40, 48) != 0); /* static key ciphertext differs too */
    /* Same static keys, unrelated session keys: they are not a function of the statics. */
    check_data(&v2, &h2);
    /* Old session still opens packets in flight (different session id). */
    uint8_t pkt[64];
    struct wire_rx rx;
    int len = wire_seal(&v1, 0, WIRE_INNER_IP, (const uint8_t *)"old", 3, pkt, sizeof(pkt), NULL);
    CHECK_INT(wire_open(sess_lookup, &h1, pkt, (size_t)len, &rx), WIRE_OK);
    CHECK_INT(wire_open(sess_lookup, &h2, pkt, (size_t)len, &rx), WIRE_ERR_UNKNOWN_SESSION);
    /* Even with a colliding id, the new keys do not open old packets. */
    len = wire_seal(&v1, 0, WIRE_INNER_IP, (const uint8_t *)"old", 3, pkt, sizeof(pkt), NULL);
    h2.id = 1;
    CHECK_INT(wire_open(sess_lookup, &h2, pkt, (size_t)len, &rx), WIRE_ERR_AUTH);
    wire_session_wipe(&v1);
    wire_session_wipe(&v2);
    wire_session_wipe(&h1);
    wire_session_wipe(&h2);
}

static void test_cipher_negotiation(void)
{
    bool aes = crypto_aead_aes256gcm_is_available();
    for (int ia = 0; ia < 2; ia++) {
        for (int ra = 0; ra < 2; ra++) {
            struct hs_initiator ini;
            struct hs_responder resp;
            struct table t;
            setup_table(&t);
            hs_initiator_init(&ini, veh_priv, hub_pub, ia);
            hs_responder_init(&resp, hub_priv, ra);
            uint8_t init[HS_INIT_LEN], out[HS_RESP_LEN];
            struct wire_session v, h;
            size_t rlen;
            hs_initiator_create(&ini, T0, 0, 0, init, sizeof(init));
            CHECK_INT(hs_responder_consume_initiation(&resp, peer_lookup, &t, init, sizeof(init), 5,
                                                      0, out, sizeof(out), &rlen, &h, NULL),
                      WIRE_OK);
            CHECK_INT(hs_initiator_consume_response(&ini, out, rlen, 0, &v), WIRE_OK);
            int want = aes && ia && ra ? WIRE_CIPHER_AES256GCM : WIRE_CIPHER_CHACHA20POLY1305;
            CHECK_INT(v.cipher, want);
            CHECK_INT(h.cipher, want);
            check_data(&v, &h);
            wire_session_wipe(&v);
            wire_session_wipe(&h);
        }
    }
}

static void test_primitives(void)
{
    uint8_t ts1[HS_TS_LEN], ts2[HS_TS_LEN];
    hs_tai64n(ts1, 999999999ull);
    hs_tai64n(ts2, 1000000000ull);
    CHECK(memcmp(ts1, ts2, HS_TS_LEN) < 0);
    CHECK_INT(ts1[0], 0x40); /* 2^62 + seconds */
    CHECK_INT(ts2[7], 1);
    CHECK_INT(ts1[8] << 24 | ts1[9] << 16 | ts1[10] << 8 | ts1[11], 999999999);
    uint8_t ck[32] = {1}, a[32], b[32], c[32], a2[32];
    hs_kdf(a, b, c, ck, (const uint8_t *)"x", 1);
    hs_kdf(a2, NULL, NULL, ck, (const uint8_t *)"x", 1);
    CHECK(memcmp(a, a2, 32) == 0);
    CHECK(memcmp(a, b, 32) != 0 && memcmp(b, c, 32) != 0);
    hs_kdf(a2, NULL, NULL, ck, (const uint8_t *)"y", 1);
    CHECK(memcmp(a, a2, 32) != 0);
}

static uint16_t dropped_ids[8];
static int n_dropped;
static void on_dropped(void *ctx, uint16_t id)
{
    (void)ctx;
    if (n_dropped < 8)
        dropped_ids[n_dropped++] = id;
}

/* Handshake between ini/resp installing into both keyrings; returns the session id. */
static void handshake_into(struct hs_initiator *ini, struct hs_responder *resp, struct table *t,
                           struct wire_keyring *vk, struct wire_keyring *hk, uint16_t sid,
                           uint64_t now_ms)
{
    uint8_t init[HS_INIT_LEN], out[HS_RESP_LEN];
    struct wire_session vs, hsess;
    size_t rlen;
    hs_initiator_create(ini, T0 + now_ms * 1000000ull, 0, now_ms, init, sizeof(init));
    CHECK_INT(hs_responder_consume_initiation(resp, peer_lookup, t, init, sizeof(init), sid, now_ms,
                                              out, sizeof(out), &rlen, &hsess, NULL),
              WIRE_OK);
    CHECK_INT(hs_initiator_consume_response(ini, out, rlen, now_ms, &vs), WIRE_OK);
    struct wire_session *a = wire_keyring_install(vk, &vs, now_ms, on_dropped, NULL);
    struct wire_session *b = wire_keyring_install(hk, &hsess, now_ms, on_dropped, NULL);
    CHECK(sodium_is_zero((const uint8_t *)&vs.tx_key, 32)); /* moved, source wiped */
    CHECK_INT(a->id, sid);
    CHECK_INT(b->id, sid);
}

/* Vehicle sends one packet on its tx session; the hub opens it through its keyring. */
static int uplink(struct wire_keyring *vk, struct wire_keyring *hk, uint64_t now_ms,
                  uint16_t *sid_out)
{
    uint8_t pkt[64];
    struct wire_session *tx = wire_keyring_tx(vk, now_ms);
    if (!tx)
        return -1;
    int len = wire_seal(tx, 0, WIRE_INNER_IP, (const uint8_t *)"up", 2, pkt, sizeof(pkt), NULL);
    struct wire_rx rx;
    int rc = wire_open(wire_keyring_lookup, hk, pkt, (size_t)len, &rx);
    if (rc == WIRE_OK && rx.first)
        wire_keyring_confirmed(hk, rx.sess, now_ms, on_dropped, NULL);
    if (sid_out)
        *sid_out = tx->id;
    return rc;
}

static void test_keyring(void)
{
    struct hs_initiator ini;
    struct hs_responder resp;
    struct table t;
    setup_table(&t);
    hs_initiator_init(&ini, veh_priv, hub_pub, false);
    hs_responder_init(&resp, hub_priv, false);
    static struct wire_keyring vk, hk;
    wire_keyring_init(&vk);
    wire_keyring_init(&hk);
    n_dropped = 0;
    CHECK(wire_keyring_tx(&vk, 0) == NULL);
    CHECK(wire_keyring_tick(&vk, 0, on_dropped, NULL)); /* no session: handshake needed */

    handshake_into(&ini, &resp, &t, &vk, &hk, 10, 0);
    CHECK(wire_keyring_tx(&vk, 0) != NULL);
    CHECK(wire_keyring_tx(&hk, 0) == NULL); /* hub: unconfirmed, must not send yet */
    CHECK_INT(uplink(&vk, &hk, 1, NULL), WIRE_OK);
    CHECK(wire_keyring_tx(&hk, 1) != NULL);
    CHECK_INT(wire_keyring_tx(&hk, 1)->id, 10);
    CHECK(!wire_keyring_tick(&vk, 1000, on_dropped, NULL));
    CHECK(wire_keyring_tick(&vk, WIRE_REKEY_AFTER_MS, on_dropped, NULL)); /* rekey due */

    /* A packet sealed on the old session, still in flight during the rekey. */
    uint8_t old_pkt[64];
    int old_len = wire_seal(wire_keyring_tx(&vk, 1), 0, WIRE_INNER_IP, (const uint8_t *)"late", 4,
                            old_pkt, sizeof(old_pkt), NULL);
    uint64_t now = WIRE_REKEY_AFTER_MS;
    handshake_into(&ini, &resp, &t, &vk, &hk, 11, now);
    CHECK_INT(wire_keyring_tx(&vk, now)->id, 11); /* vehicle switches at once */
    CHECK_INT(wire_keyring_tx(&hk, now)->id, 10); /* hub keeps the confirmed one */
    uint16_t sid;
    CHECK_INT(uplink(&vk, &hk, now + 5, &sid), WIRE_OK);
    CHECK_INT(sid, 11);
    CHECK_INT(wire_keyring_tx(&hk, now + 5)->id, 11); /* confirmed: promoted */
    /* The late packet of the old session still opens at the hub (previous session). */
    struct wire_rx rx;
    uint8_t copy[64];
    memcpy(copy, old_pkt, sizeof(copy));
    CHECK_INT(wire_open(wire_keyring_lookup, &hk, copy, (size_t)old_len, &rx), WIRE_OK);
    CHECK_INT(rx.sess->id, 10);
    /* After the grace time the previous session is dropped (and reported). */
    CHECK(!wire_keyring_tick(&hk, now + 5 + WIRE_KEEP_OLD_SESSION_MS - 1, on_dropped, NULL));
    CHECK_INT(n_dropped, 0);
    wire_keyring_tick(&hk, now + 5 + WIRE_KEEP_OLD_SESSION_MS, on_dropped, NULL);
    CHECK_INT(n_dropped, 1);
    CHECK_INT(dropped_ids[0], 10);
    memcpy(copy, old_pkt, sizeof(copy));
    CHECK_INT(wire_open(wire_keyring_lookup, &hk, copy, (size_t)old_len, &rx),
              WIRE_ERR_UNKNOWN_SESSION);

    /* An unconfirmed next superseded by a newer handshake is dropped. */
    n_dropped = 0;
    now += 1000;
    struct hs_initiator ini2;
    hs_initiator_init(&ini2, veh_priv, hub_pub, false);
    uint8_t init[HS_INIT_LEN], out[HS_RESP_LEN];
    size_t rlen;
    struct wire_session hs2;
    hs_initiator_create(&ini2, T0 + now * 1000000ull, 0, now, init, sizeof(init));
    CHECK_INT(hs_responder_consume_initiation(&resp, peer_lookup, &t, init, sizeof(init), 12, now,
                                              out, sizeof(out), &rlen, &hs2, NULL),
              WIRE_OK);
    wire_keyring_install(&hk, &hs2, now, on_dropped, NULL); /* response lost: never confirmed */
    handshake_into(&ini, &resp, &t, &vk, &hk, 13, now + 1);
    CHECK_INT(n_dropped, 2); /* hub: next 12 superseded; vehicle: its previous (10) dropped */
    CHECK(wire_keyring_lookup(&hk, 12) == NULL);
    CHECK(wire_keyring_lookup(&hk, 13) != NULL);
    CHECK(wire_keyring_lookup(&hk, 11) != NULL);
    CHECK_INT(uplink(&vk, &hk, now + 2, &sid), WIRE_OK);
    CHECK_INT(sid, 13);

    /* Expiry: past WIRE_REJECT_AFTER_MS nothing is usable and a handshake is needed. */
    uint64_t late = now + 1 + WIRE_REJECT_AFTER_MS;
    CHECK(wire_keyring_tick(&vk, late, on_dropped, NULL));
    CHECK(wire_keyring_tx(&vk, late) == NULL);
    CHECK(wire_keyring_lookup(&vk, 13) == NULL);
    wire_keyring_wipe(&vk);
    wire_keyring_wipe(&hk);
}

int main(void)
{
    if (crypto_lib_init() < 0)
        return 2;
    setup_keys();
    test_primitives();
    test_success();
    test_rejections();
    test_responses();
    test_forward_secrecy_and_rekey();
    test_cipher_negotiation();
    test_keyring();
    return test_summary();
}
