/* crypto: Noise IK-like handshake over libsodium primitives (see crypto.h, docs/protocol.md). */
#include "agg/crypto.h"

#include <string.h>

#include <sodium.h>

/* Protocol name and prologue: changing either makes every handshake of another version fail
 * its first AEAD, so versions can never mix keys. */
static const char CONSTRUCTION[] = "corridor-v1 Noise_IK_25519_ChaChaPoly_BLAKE2b";
static const char IDENTIFIER[] = "corridor tunnel v1";
static const char LABEL_MAC1[] = "mac1----";

/* Initiation layout */
#define INIT_OFF_EPH    8u
#define INIT_OFF_STATIC 40u /* 32 + 16 tag */
#define INIT_OFF_TS     88u /* (12 timestamp + 1 offer + 3 reserved) + 16 tag */
#define INIT_OFF_MAC1   120u
#define INIT_TS_PLAIN   16u
/* Response layout */
#define RESP_OFF_EPH   8u
#define RESP_OFF_PAY   40u /* (2 session id + 1 cipher + 1 reserved) + 16 tag */
#define RESP_OFF_MAC1  60u
#define RESP_PAY_PLAIN 4u

#define OFFER_CHACHA 0x01u
#define OFFER_AES    0x02u

int crypto_lib_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

void hs_hash(uint8_t out[32], const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, a, alen);
    if (b && blen)
        crypto_generichash_update(&st, b, blen);
    crypto_generichash_final(&st, out, 32);
}

void hs_kdf(uint8_t *out1, uint8_t *out2, uint8_t *out3, const uint8_t ck[32], const uint8_t *in,
            size_t inlen)
{
    /* HKDF (RFC 5869) with keyed BLAKE2b in place of HMAC: keyed BLAKE2b is a PRF, which is all
     * HKDF needs, and it is one primitive fewer than HMAC-BLAKE2b. */
    uint8_t t0[32], t[33], o[32];
    crypto_generichash(t0, 32, in, inlen, ck, 32);
    uint8_t one = 1;
    crypto_generichash(o, 32, &one, 1, t0, 32);
    if (out1)
        memcpy(out1, o, 32);
    if (out2 || out3) {
        memcpy(t, o, 32);
        t[32] = 2;
        crypto_generichash(o, 32, t, 33, t0, 32);
        if (out2)
            memcpy(out2, o, 32);
    }
    if (out3) {
        memcpy(t, o, 32);
        t[32] = 3;
        crypto_generichash(o, 32, t, 33, t0, 32);
        memcpy(out3, o, 32);
    }
    sodium_memzero(t0, sizeof(t0));
    sodium_memzero(t, sizeof(t));
    sodium_memzero(o, sizeof(o));
}

void hs_mac(uint8_t mac[HS_MAC_LEN], const uint8_t key[32], const uint8_t *msg, size_t len)
{
    crypto_generichash(mac, HS_MAC_LEN, msg, len, key, 32);
}

void hs_tai64n(uint8_t out[HS_TS_LEN], uint64_t unix_ns)
{
    uint64_t secs = (1ull << 62) + unix_ns / 1000000000ull;
    uint32_t ns = (uint32_t)(unix_ns % 1000000000ull);
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(secs >> (56 - 8 * i));
    out[8] = (uint8_t)(ns >> 24);
    out[9] = (uint8_t)(ns >> 16);
    out[10] = (uint8_t)(ns >> 8);
    out[11] = (uint8_t)ns;
}

void hs_public_key(uint8_t pub[32], const uint8_t priv[32])
{
    crypto_scalarmult_base(pub, priv);
}

static void mac1_key_for(uint8_t key[32], const uint8_t pub[32])
{
    hs_hash(key, (const uint8_t *)LABEL_MAC1, sizeof(LABEL_MAC1) - 1, pub, 32);
}

/* The chaining key and hash every handshake starts from, with the responder's static key mixed
 * into h (IK: the initiator knows it beforehand). */
static void hs_start(uint8_t ck[32], uint8_t h[32], const uint8_t r_pub[32])
{
    hs_hash(ck, (const uint8_t *)CONSTRUCTION, sizeof(CONSTRUCTION) - 1, NULL, 0);
    hs_hash(h, ck, 32, (const uint8_t *)IDENTIFIER, sizeof(IDENTIFIER) - 1);
    hs_hash(h, h, 32, r_pub, 32);
}

/* ck = KDF1(ck, DH(priv, pub)). false if the DH result is all-zero (low-order point). */
static bool mix_dh(uint8_t ck[32], const uint8_t priv[32], const uint8_t pub[32], uint64_t *count)
{
    uint8_t dh[32];
    if (count)
        (*count)++;
    if (crypto_scalarmult(dh, priv, pub) != 0) {
        sodium_memzero(dh, sizeof(dh));
        return false;
    }
    hs_kdf(ck, NULL, NULL, ck, dh, 32);
    sodium_memzero(dh, sizeof(dh));
    return true;
}

/* Same, also deriving an AEAD key. */
static bool mix_dh_key(uint8_t ck[32], uint8_t k[32], const uint8_t priv[32], const uint8_t pub[32],
                       uint64_t *count)
{
    uint8_t dh[32];
    if (count)
        (*count)++;
    if (crypto_scalarmult(dh, priv, pub) != 0) {
        sodium_memzero(dh, sizeof(dh));
        return false;
    }
    hs_kdf(ck, k, NULL, ck, dh, 32);
    sodium_memzero(dh, sizeof(dh));
    return true;
}

static const uint8_t ZERO_NONCE[12];

static void aead_enc(uint8_t *c, const uint8_t *m, size_t mlen, const uint8_t k[32],
                     const uint8_t h[32])
{
    crypto_aead_chacha20poly1305_ietf_encrypt(c, NULL, m, mlen, h, 32, NULL, ZERO_NONCE, k);
}

static bool aead_dec(uint8_t *m, const uint8_t *c, size_t clen, const uint8_t k[32],
                     const uint8_t h[32])
{
    return crypto_aead_chacha20poly1305_ietf_decrypt(m, NULL, NULL, c, clen, h, 32, ZERO_NONCE,
                                                     k) == 0;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ---- initiator ---------------------------------------------------------------------------- */

int hs_initiator_init(struct hs_initiator *ini, const uint8_t s_priv[32], const uint8_t r_pub[32],
                      bool allow_aes)
{
    if (crypto_lib_init() < 0)
        return -WIRE_ERR_ARG;
    memset(ini, 0, sizeof(*ini));
    memcpy(ini->s_priv, s_priv, 32);
    hs_public_key(ini->s_pub, s_priv);
    memcpy(ini->r_pub, r_pub, 32);
    mac1_key_for(ini->mac1_key_r, r_pub);
    mac1_key_for(ini->mac1_key_i, ini->s_pub);
    ini->offer_aes = allow_aes && crypto_aead_aes256gcm_is_available();
    return 0;
}

void hs_set_link(const struct hs_initiator *ini, uint8_t *pkt, uint8_t link_id)
{
    pkt[1] = link_id;
    hs_mac(pkt + INIT_OFF_MAC1, ini->mac1_key_r, pkt, INIT_OFF_MAC1);
}

int hs_initiator_create(struct hs_initiator *ini, uint64_t unix_ns, uint8_t link_id,
                        uint64_t now_ms, uint8_t *out, size_t outcap)
{
    if (!ini || !out)
        return -WIRE_ERR_ARG;
    if (outcap < HS_INIT_LEN)
        return -WIRE_ERR_BUFFER;
    ini->pending = false;
    uint8_t ck[32], h[32], k[32];
    hs_start(ck, h, ini->r_pub);

    /* A new ephemeral for every initiation: forward secrecy, and no two handshakes share keys. */
    randombytes_buf(ini->e_priv, 32);
    crypto_scalarmult_base(ini->e_pub, ini->e_priv);
    ini->hs_id = randombytes_random();

    memset(out, 0, HS_INIT_LEN);
    out[0] = (uint8_t)(WIRE_VERSION << 6 | WIRE_T_HS_INIT);
    out[1] = link_id;
    put_be32(out + 4, ini->hs_id);
    memcpy(out + INIT_OFF_EPH, ini->e_pub, 32);
    hs_kdf(ck, NULL, NULL, ck, ini->e_pub, 32);
    hs_hash(h, h, 32, ini->e_pub, 32);

    int rc = -WIRE_ERR_HS_DH;
    if (!mix_dh_key(ck, k, ini->e_priv, ini->r_pub, NULL)) /* es */
        goto out;
    aead_enc(out + INIT_OFF_STATIC, ini->s_pub, 32, k, h);
    hs_hash(h, h, 32, out + INIT_OFF_STATIC, 32 + 16);

    if (!mix_dh_key(ck, k, ini->s_priv, ini->r_pub, NULL)) /* ss */
        goto out;
    uint8_t ts[INIT_TS_PLAIN] = {0};
    hs_tai64n(ts, unix_ns);
    ts[HS_TS_LEN] = (uint8_t)(OFFER_CHACHA | (ini->offer_aes ? OFFER_AES : 0));
    aead_enc(out + INIT_OFF_TS, ts, sizeof(ts), k, h);
    hs_hash(h, h, 32, out + INIT_OFF_TS, INIT_TS_PLAIN + 16);

    hs_mac(out + INIT_OFF_MAC1, ini->mac1_key_r, out, INIT_OFF_MAC1);
    memcpy(ini->ck, ck, 32);
    memcpy(ini->h, h, 32);
    ini->created_ms = now_ms;
    ini->pending = true;
    rc = HS_INIT_LEN;
out:
    sodium_memzero(ck, sizeof(ck));
    sodium_memzero(h, sizeof(h));
    sodium_memzero(k, sizeof(k));
    if (rc < 0)
        sodium_memzero(out, HS_INIT_LEN);
    return rc;
}

/* Final split: initiator->responder key first. */
static void hs_split(uint8_t i2r[32], uint8_t r2i[32], const uint8_t ck[32])
{
    hs_kdf(i2r, r2i, NULL, ck, NULL, 0);
}

int hs_initiator_consume_response(struct hs_initiator *ini, const uint8_t *pkt, size_t len,
                                  uint64_t now_ms, struct wire_session *sess)
{
    if (!ini || !pkt || !sess)
        return WIRE_ERR_ARG;
    int kind = wire_classify(pkt, len);
    if (kind < 0)
        return -kind;
    if (kind != WIRE_T_HS_RESP)
        return WIRE_ERR_TYPE;
    if (len < HS_RESP_LEN)
        return WIRE_ERR_TRUNCATED;
    if (len > HS_RESP_LEN)
        return WIRE_ERR_OVERSIZED;
    uint32_t id = (uint32_t)pkt[4] << 24 | (uint32_t)pkt[5] << 16 | (uint32_t)pkt[6] << 8 | pkt[7];
    if (!ini->pending || id != ini->hs_id)
        return WIRE_ERR_HS_UNEXPECTED;
    uint8_t mac[HS_MAC_LEN];
    hs_mac(mac, ini->mac1_key_i, pkt, RESP_OFF_MAC1);
    if (sodium_memcmp(mac, pkt + RESP_OFF_MAC1, HS_MAC_LEN) != 0)
        return WIRE_ERR_HS_MAC1;

    /* Work on copies: a forged response must not disturb the pending handshake. */
    uint8_t ck[32], h[32], k[32], pay[RESP_PAY_PLAIN], i2r[32], r2i[32];
    const uint8_t *e_r = pkt + RESP_OFF_EPH;
    memcpy(ck, ini->ck, 32);
    memcpy(h, ini->h, 32);
    hs_kdf(ck, NULL, NULL, ck, e_r, 32);
    hs_hash(h, h, 32, e_r, 32);
    int rc = WIRE_ERR_HS_DH;
    if (!mix_dh(ck, ini->e_priv, e_r, NULL)) /* ee */
        goto out;
    if (!mix_dh(ck, ini->s_priv, e_r, NULL)) /* se */
        goto out;
    hs_kdf(ck, k, NULL, ck, NULL, 0);
    rc = WIRE_ERR_HS_DECRYPT;
    if (!aead_dec(pay, pkt + RESP_OFF_PAY, RESP_PAY_PLAIN + 16, k, h))
        goto out;
    uint16_t sid = (uint16_t)(pay[0] << 8 | pay[1]);
    uint8_t cipher = pay[2];
    rc = WIRE_ERR_HS_CIPHER;
    if (cipher != WIRE_CIPHER_CHACHA20POLY1305 &&
        !(cipher == WIRE_CIPHER_AES256GCM && ini->offer_aes))
        goto out;
    hs_split(i2r, r2i, ck);
    rc = wire_session_init(sess, sid, (enum wire_cipher)cipher, i2r, r2i, true, now_ms) == 0
             ? WIRE_OK
             : WIRE_ERR_HS_CIPHER;
    /* The initiator has key confirmation already (the response decrypted). */
    if (rc == WIRE_OK) {
        sess->confirmed = true;
        ini->pending = false;
        sodium_memzero(ini->e_priv, 32);
        sodium_memzero(ini->ck, 32);
        sodium_memzero(ini->h, 32);
    }
out:
    sodium_memzero(ck, sizeof(ck));
    sodium_memzero(k, sizeof(k));
    sodium_memzero(i2r, sizeof(i2r));
    sodium_memzero(r2i, sizeof(r2i));
    return rc;
}

void hs_initiator_wipe(struct hs_initiator *ini)
{
    sodium_memzero(ini, sizeof(*ini));
}

/* ---- responder ---------------------------------------------------------------------------- */

int hs_responder_init(struct hs_responder *r, const uint8_t s_priv[32], bool allow_aes)
{
    if (crypto_lib_init() < 0)
        return -WIRE_ERR_ARG;
    memset(r, 0, sizeof(*r));
    memcpy(r->s_priv, s_priv, 32);
    hs_public_key(r->s_pub, s_priv);
    mac1_key_for(r->mac1_key, r->s_pub);
    r->allow_aes = allow_aes && crypto_aead_aes256gcm_is_available();
    return 0;
}

int hs_responder_consume_initiation(struct hs_responder *r, hs_peer_lookup_fn lookup, void *ctx,
                                    const uint8_t *pkt, size_t len, uint16_t session_id,
                                    uint64_t now_ms, uint8_t *out, size_t outcap, size_t *out_len,
                                    struct wire_session *sess, struct hs_peer **peer_out)
{
    if (!r || !lookup || !pkt || !out || !out_len || !sess)
        return WIRE_ERR_ARG;
    *out_len = 0;
    if (peer_out)
        *peer_out = NULL;
    int kind = wire_classify(pkt, len);
    if (kind < 0)
        return -kind;
    if (kind != WIRE_T_HS_INIT)
        return WIRE_ERR_TYPE;
    if (len < HS_INIT_LEN)
        return WIRE_ERR_TRUNCATED;
    if (len > HS_INIT_LEN)
        return WIRE_ERR_OVERSIZED;
    if (outcap < HS_RESP_LEN)
        return WIRE_ERR_BUFFER;
    r->stats.initiations++;

    /* mac1 first: anything not built by someone who knows our public key costs one BLAKE2b. */
    uint8_t mac[HS_MAC_LEN];
    hs_mac(mac, r->mac1_key, pkt, INIT_OFF_MAC1);
    if (sodium_memcmp(mac, pkt + INIT_OFF_MAC1, HS_MAC_LEN) != 0) {
        r->stats.bad_mac1++;
        return WIRE_ERR_HS_MAC1;
    }

    uint8_t ck[32], h[32], k[32], s_i[32], ts[INIT_TS_PLAIN];
    uint8_t e_priv[32], e_pub[32], pay[RESP_PAY_PLAIN], i2r[32], r2i[32];
    const uint8_t *e_i = pkt + INIT_OFF_EPH;
    struct hs_peer *peer = NULL;
    int rc;
    hs_start(ck, h, r->s_pub);
    hs_kdf(ck, NULL, NULL, ck, e_i, 32);
    hs_hash(h, h, 32, e_i, 32);
    rc = WIRE_ERR_HS_DH;
    if (!mix_dh_key(ck, k, r->s_priv, e_i, &r->stats.dh)) /* es */
        goto out;
    rc = WIRE_ERR_HS_DECRYPT;
    if (!aead_dec(s_i, pkt + INIT_OFF_STATIC, 32 + 16, k, h)) {
        r->stats.decrypt_fail++;
        goto out;
    }
    hs_hash(h, h, 32, pkt + INIT_OFF_STATIC, 32 + 16);

    /* Unknown vehicles cost one DH, not two. */
    peer = lookup(ctx, s_i);
    if (!peer || !peer->allowed || sodium_memcmp(peer->static_pub, s_i, 32) != 0) {
        r->stats.unknown_peer++;
        rc = WIRE_ERR_HS_UNKNOWN_PEER;
        peer = NULL;
        goto out;
    }
    rc = WIRE_ERR_HS_DH;
    if (!mix_dh_key(ck, k, r->s_priv, s_i, &r->stats.dh)) /* ss */
        goto out;
    rc = WIRE_ERR_HS_DECRYPT;
    if (!aead_dec(ts, pkt + INIT_OFF_TS, INIT_TS_PLAIN + 16, k, h)) {
        r->stats.decrypt_fail++;
        goto out;
    }
    hs_hash(h, h, 32, pkt + INIT_OFF_TS, INIT_TS_PLAIN + 16);
    /* TAI64N is big-endian, so memcmp orders it; equal is a replay too (a copy of the same
     * initiation arriving over a second link is answered once). */
    if (memcmp(ts, peer->last_ts, HS_TS_LEN) <= 0) {
        r->stats.replayed++;
        rc = WIRE_ERR_HS_REPLAY;
        goto out;
    }
    uint8_t cipher = (ts[HS_TS_LEN] & OFFER_AES) && r->allow_aes ? WIRE_CIPHER_AES256GCM
                                                                 : WIRE_CIPHER_CHACHA20POLY1305;

    /* Authenticated: build the response. */
    randombytes_buf(e_priv, 32);
    crypto_scalarmult_base(e_pub, e_priv);
    memset(out, 0, HS_RESP_LEN);
    out[0] = (uint8_t)(WIRE_VERSION << 6 | WIRE_T_HS_RESP);
    out[1] = pkt[1];
    memcpy(out + 4, pkt + 4, 4); /* initiator's handshake id */
    memcpy(out + RESP_OFF_EPH, e_pub, 32);
    hs_kdf(ck, NULL, NULL, ck, e_pub, 32);
    hs_hash(h, h, 32, e_pub, 32);
    rc = WIRE_ERR_HS_DH;
    if (!mix_dh(ck, e_priv, e_i, &r->stats.dh)) /* ee */
        goto out;
    if (!mix_dh(ck, e_priv, s_i, &r->stats.dh)) /* se */
        goto out;
    hs_kdf(ck, k, NULL, ck, NULL, 0);
    pay[0] = (uint8_t)(session_id >> 8);
    pay[1] = (uint8_t)session_id;
    pay[2] = cipher;
    pay[3] = 0;
    aead_enc(out + RESP_OFF_PAY, pay, RESP_PAY_PLAIN, k, h);
    uint8_t mac1_key_i[32];
    mac1_key_for(mac1_key_i, s_i);
    hs_mac(out + RESP_OFF_MAC1, mac1_key_i, out, RESP_OFF_MAC1);

    hs_split(i2r, r2i, ck);
    if (wire_session_init(sess, session_id, (enum wire_cipher)cipher, r2i, i2r, false, now_ms) !=
        0) {
        rc = WIRE_ERR_HS_CIPHER;
        goto out;
    }
    memcpy(peer->last_ts, ts, HS_TS_LEN);
    *out_len = HS_RESP_LEN;
    if (peer_out)
        *peer_out = peer;
    r->stats.accepted++;
    rc = WIRE_OK;
out:
    if (rc != WIRE_OK)
        sodium_memzero(out, HS_RESP_LEN); /* never leave half a response for the caller */
    sodium_memzero(ck, sizeof(ck));
    sodium_memzero(h, sizeof(h));
    sodium_memzero(k, sizeof(k));
    sodium_memzero(e_priv, sizeof(e_priv));
    sodium_memzero(i2r, sizeof(i2r));
    sodium_memzero(r2i, sizeof(r2i));
    sodium_memzero(ts, sizeof(ts));
    return rc;
}

void hs_responder_wipe(struct hs_responder *r)
{
    sodium_memzero(r, sizeof(*r));
}
