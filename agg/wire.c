/* wire: data-packet seal/open, packet-number decoding, replay window, LZ4 (see wire.h). */
#include "agg/wire.h"

#include <string.h>

#include <lz4.h>

static const char *const err_names[WIRE_ERR__COUNT] = {
    [WIRE_OK] = "ok",
    [WIRE_ERR_TRUNCATED] = "truncated",
    [WIRE_ERR_OVERSIZED] = "oversized",
    [WIRE_ERR_VERSION] = "version",
    [WIRE_ERR_TYPE] = "type",
    [WIRE_ERR_UNKNOWN_SESSION] = "unknown_session",
    [WIRE_ERR_REPLAY] = "replay",
    [WIRE_ERR_TOO_OLD] = "too_old",
    [WIRE_ERR_AUTH] = "auth",
    [WIRE_ERR_EXPIRED] = "expired",
    [WIRE_ERR_INNER_TYPE] = "inner_type",
    [WIRE_ERR_BUFFER] = "buffer",
    [WIRE_ERR_DECOMPRESS] = "decompress",
    [WIRE_ERR_ARG] = "arg",
    [WIRE_ERR_HS_MAC1] = "hs_mac1",
    [WIRE_ERR_HS_DECRYPT] = "hs_decrypt",
    [WIRE_ERR_HS_DH] = "hs_dh",
    [WIRE_ERR_HS_UNKNOWN_PEER] = "hs_unknown_peer",
    [WIRE_ERR_HS_REPLAY] = "hs_replay",
    [WIRE_ERR_HS_UNEXPECTED] = "hs_unexpected",
    [WIRE_ERR_HS_CIPHER] = "hs_cipher",
};

const char *wire_err_str(int err)
{
    if (err < 0)
        err = -err;
    if (err >= WIRE_ERR__COUNT || !err_names[err])
        return "unknown";
    return err_names[err];
}

static inline uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ---- packet numbers and replay window ------------------------------------------------------ */

uint64_t wire_pn_decode(uint64_t highest, bool any, uint32_t lo32)
{
    /* RFC 9000 A.3 with a 32-bit field: pick the candidate within +-2^31 of the next expected
     * number. Before anything was accepted the expected number is 0. */
    const uint64_t win = 1ull << 32, hwin = win / 2, mask = win - 1;
    uint64_t expected = !any ? 0 : highest == UINT64_MAX ? highest : highest + 1;
    uint64_t cand = (expected & ~mask) | lo32;
    if (expected >= hwin && cand <= expected - hwin && cand < UINT64_MAX - win)
        return cand + win;
    if (cand > expected && cand - expected > hwin && cand >= win)
        return cand - win;
    return cand;
}

void wire_replay_init(struct wire_replay *r)
{
    memset(r, 0, sizeof(*r));
}

int wire_replay_check(const struct wire_replay *r, uint64_t pn)
{
    if (r->any && pn <= r->last) {
        if (r->last - pn > WIRE_REPLAY_WINDOW)
            return WIRE_ERR_TOO_OLD;
        uint64_t bit = 1ull << (pn & 63);
        if (r->bitmap[(pn >> 6) & (WIRE_REPLAY_BLOCKS - 1)] & bit)
            return WIRE_ERR_REPLAY;
    }
    return WIRE_OK;
}

int wire_replay_update(struct wire_replay *r, uint64_t pn)
{
    int rc = wire_replay_check(r, pn);
    if (rc != WIRE_OK)
        return rc;
    uint64_t idx = pn >> 6;
    if (!r->any || pn > r->last) {
        /* Moving forward: clear the blocks we skip into (at most the whole ring). */
        uint64_t cur = r->any ? r->last >> 6 : 0;
        uint64_t diff = r->any ? idx - cur : WIRE_REPLAY_BLOCKS;
        if (diff > WIRE_REPLAY_BLOCKS)
            diff = WIRE_REPLAY_BLOCKS;
        if (diff == WIRE_REPLAY_BLOCKS)
            memset(r->bitmap, 0, sizeof(r->bitmap));
        else
            for (uint64_t i = 1; i <= diff; i++)
                r->bitmap[(cur + i) & (WIRE_REPLAY_BLOCKS - 1)] = 0;
        r->last = pn;
        r->any = true;
    }
    r->bitmap[idx & (WIRE_REPLAY_BLOCKS - 1)] |= 1ull << (pn & 63);
    return WIRE_OK;
}

/* ---- sessions ----------------------------------------------------------------------------- */

int wire_session_init(struct wire_session *s, uint16_t id, enum wire_cipher cipher,
                      const uint8_t tx_key[32], const uint8_t rx_key[32], bool initiator,
                      uint64_t now_ms)
{
    if (sodium_init() < 0)
        return -WIRE_ERR_ARG;
    if (cipher != WIRE_CIPHER_CHACHA20POLY1305 && cipher != WIRE_CIPHER_AES256GCM)
        return -WIRE_ERR_ARG;
    if (cipher == WIRE_CIPHER_AES256GCM && !crypto_aead_aes256gcm_is_available())
        return -WIRE_ERR_ARG;
    memset(s, 0, sizeof(*s));
    s->id = id;
    s->cipher = (uint8_t)cipher;
    s->initiator = initiator;
    s->created_ms = now_ms;
    memcpy(s->tx_key, tx_key, 32);
    memcpy(s->rx_key, rx_key, 32);
    if (cipher == WIRE_CIPHER_AES256GCM) {
        /* Expand the AES key schedule once per session, not per packet. */
        crypto_aead_aes256gcm_beforenm(&s->tx_aes, tx_key);
        crypto_aead_aes256gcm_beforenm(&s->rx_aes, rx_key);
        s->rekey_after_packets = WIRE_AES_REKEY_AFTER_PACKETS;
        s->reject_after_packets = WIRE_AES_REJECT_AFTER_PACKETS;
    } else {
        s->rekey_after_packets = WIRE_REKEY_AFTER_PACKETS;
        s->reject_after_packets = WIRE_REJECT_AFTER_PACKETS;
    }
    atomic_init(&s->tx_next, 0);
    atomic_init(&s->confirmed, false);
    atomic_init(&s->lz4_fail_streak, 0);
    atomic_init(&s->lz4_skipped, 0);
    wire_replay_init(&s->rx);
    return 0;
}

void wire_session_wipe(struct wire_session *s)
{
    sodium_memzero(s, sizeof(*s));
}

enum wire_sess_state wire_session_state(const struct wire_session *s, uint64_t now_ms)
{
    uint64_t age = now_ms > s->created_ms ? now_ms - s->created_ms : 0;
    uint64_t sent = atomic_load_explicit(&s->tx_next, memory_order_relaxed);
    uint64_t rcvd = s->rx.any ? s->rx.last : 0;
    if (age >= WIRE_REJECT_AFTER_MS || sent >= s->reject_after_packets ||
        rcvd >= s->reject_after_packets)
        return WIRE_SESS_EXPIRED;
    if (age >= WIRE_REKEY_AFTER_MS || sent >= s->rekey_after_packets ||
        rcvd >= s->rekey_after_packets)
        return WIRE_SESS_REKEY;
    return WIRE_SESS_OK;
}

bool wire_session_reserve(struct wire_session *s, unsigned n, uint64_t *first)
{
    if (n == 0)
        return false;
    uint64_t pn = atomic_fetch_add_explicit(&s->tx_next, n, memory_order_relaxed);
    if (pn >= s->reject_after_packets || s->reject_after_packets - pn < n)
        return false;
    *first = pn;
    return true;
}

/* ---- seal / open -------------------------------------------------------------------------- */

static void make_nonce(uint8_t nonce[12], uint64_t pn)
{
    /* 4 zero bytes, then the 64-bit number little-endian: unique per key because each direction
     * has its own key. */
    memset(nonce, 0, 4);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(pn >> (8 * i));
}

int wire_seal_pn(struct wire_session *s, uint64_t pn, uint8_t link_id, uint8_t inner_type,
                 const uint8_t *payload, size_t len, uint8_t *out, size_t outcap)
{
    if (!s || !out || (len && !payload))
        return -WIRE_ERR_ARG;
    if (len > WIRE_MAX_PAYLOAD || outcap < len + WIRE_OVERHEAD)
        return -WIRE_ERR_BUFFER;
    if (pn >= s->reject_after_packets)
        return -WIRE_ERR_EXPIRED;
    out[0] = (uint8_t)(WIRE_VERSION << 6 | WIRE_T_DATA);
    out[1] = link_id;
    out[2] = (uint8_t)(s->id >> 8);
    out[3] = (uint8_t)s->id;
    put_be32(out + 4, (uint32_t)pn);
    if (len && payload != out + WIRE_PAYLOAD_OFFSET)
        memmove(out + WIRE_PAYLOAD_OFFSET, payload, len);
    out[WIRE_HDR_LEN] = inner_type;

    uint8_t nonce[12];
    make_nonce(nonce, pn);
    uint8_t *m = out + WIRE_HDR_LEN;
    size_t mlen = len + 1;
    uint8_t *tag = m + mlen;
    if (s->cipher == WIRE_CIPHER_AES256GCM)
        crypto_aead_aes256gcm_encrypt_detached_afternm(m, tag, NULL, m, mlen, out, WIRE_HDR_LEN,
                                                       NULL, nonce, &s->tx_aes);
    else
        crypto_aead_chacha20poly1305_ietf_encrypt_detached(m, tag, NULL, m, mlen, out, WIRE_HDR_LEN,
                                                           NULL, nonce, s->tx_key);
    return (int)(mlen + WIRE_HDR_LEN + WIRE_TAG_LEN);
}

int wire_seal(struct wire_session *s, uint8_t link_id, uint8_t inner_type, const uint8_t *payload,
              size_t len, uint8_t *out, size_t outcap, uint64_t *pn_out)
{
    uint64_t pn;
    if (!s)
        return -WIRE_ERR_ARG;
    if (len > WIRE_MAX_PAYLOAD || outcap < len + WIRE_OVERHEAD)
        return -WIRE_ERR_BUFFER; /* before reserving: do not burn a packet number */
    if (!wire_session_reserve(s, 1, &pn))
        return -WIRE_ERR_EXPIRED;
    if (pn_out)
        *pn_out = pn;
    return wire_seal_pn(s, pn, link_id, inner_type, payload, len, out, outcap);
}

int wire_seal_ip(struct wire_session *s, uint8_t link_id, const uint8_t *ip, size_t len,
                 bool try_lz4, uint8_t *out, size_t outcap, uint64_t *pn_out)
{
    if (!s || !out || !ip)
        return -WIRE_ERR_ARG;
    if (len > WIRE_MAX_PAYLOAD || outcap < len + WIRE_OVERHEAD)
        return -WIRE_ERR_BUFFER;
    if (try_lz4 && len >= WIRE_LZ4_MIN_INPUT) {
        /* Back off on traffic that does not compress (TLS, QUIC, video): after 8 misses in a
         * row only every 32nd packet pays for an attempt. The streak is a heuristic shared by
         * threads; a racy update only changes when the next attempt happens. */
        bool attempt =
            atomic_load_explicit(&s->lz4_fail_streak, memory_order_relaxed) < 8 ||
            (atomic_fetch_add_explicit(&s->lz4_skipped, 1, memory_order_relaxed) & 31) == 31;
        if (attempt) {
            /* Compress straight into the output with a capacity that already demands the
             * minimum saving: LZ4 returns 0 when it does not fit, i.e. when it does not pay. */
            int cap = (int)(len - WIRE_LZ4_MIN_SAVING);
            int clen = LZ4_compress_default((const char *)ip, (char *)out + WIRE_PAYLOAD_OFFSET,
                                            (int)len, cap);
            if (clen > 0) {
                atomic_store_explicit(&s->lz4_fail_streak, 0, memory_order_relaxed);
                return wire_seal(s, link_id, WIRE_INNER_IP_LZ4, out + WIRE_PAYLOAD_OFFSET,
                                 (size_t)clen, out, outcap, pn_out);
            }
            atomic_fetch_add_explicit(&s->lz4_fail_streak, 1, memory_order_relaxed);
        }
    }
    return wire_seal(s, link_id, WIRE_INNER_IP, ip, len, out, outcap, pn_out);
}

int wire_decompress(const uint8_t *src, size_t len, uint8_t *dst, size_t dstcap)
{
    if (!src || !dst || len == 0 || len > WIRE_MAX_PACKET || dstcap > INT32_MAX)
        return -WIRE_ERR_DECOMPRESS;
    /* LZ4_decompress_safe never writes past dstcap and never reads past len; the expansion is
     * bounded by the caller's buffer (the inner MTU), whatever the input claims. */
    int n = LZ4_decompress_safe((const char *)src, (char *)dst, (int)len, (int)dstcap);
    if (n <= 0)
        return -WIRE_ERR_DECOMPRESS;
    return n;
}

int wire_classify(const uint8_t *pkt, size_t len)
{
    if (!pkt || len == 0)
        return -WIRE_ERR_TRUNCATED;
    if (len > WIRE_MAX_PACKET)
        return -WIRE_ERR_OVERSIZED;
    if ((pkt[0] >> 6) != WIRE_VERSION)
        return -WIRE_ERR_VERSION;
    unsigned t = pkt[0] & 0x3f;
    if (t != WIRE_T_DATA && t != WIRE_T_HS_INIT && t != WIRE_T_HS_RESP)
        return -WIRE_ERR_TYPE;
    return (int)t;
}

static bool inner_known(uint8_t t)
{
    return (t >= WIRE_INNER_IP && t <= WIRE_INNER_KEEPALIVE) ||
           (t >= WIRE_INNER_CTRL_FIRST && t <= WIRE_INNER_CTRL_LAST);
}

int wire_open(wire_lookup_fn lookup, void *ctx, uint8_t *pkt, size_t len, struct wire_rx *rx)
{
    if (!lookup || !pkt || !rx)
        return WIRE_ERR_ARG;
    memset(rx, 0, sizeof(*rx));
    int kind = wire_classify(pkt, len);
    if (kind < 0)
        return -kind;
    if (kind != WIRE_T_DATA)
        return WIRE_ERR_TYPE;
    if (len < WIRE_OVERHEAD)
        return WIRE_ERR_TRUNCATED;

    uint16_t sid = (uint16_t)(pkt[2] << 8 | pkt[3]);
    struct wire_session *s = lookup(ctx, sid);
    if (!s || s->id != sid)
        return WIRE_ERR_UNKNOWN_SESSION;

    uint64_t pn = wire_pn_decode(s->rx.last, s->rx.any, get_be32(pkt + 4));
    if (pn >= s->reject_after_packets)
        return WIRE_ERR_EXPIRED;
    /* Cheap rejects before spending a decryption on the packet. */
    int rc = wire_replay_check(&s->rx, pn);
    if (rc != WIRE_OK)
        return rc;

    uint8_t nonce[12];
    make_nonce(nonce, pn);
    uint8_t *c = pkt + WIRE_HDR_LEN;
    size_t clen = len - WIRE_HDR_LEN - WIRE_TAG_LEN;
    const uint8_t *tag = c + clen;
    int bad;
    if (s->cipher == WIRE_CIPHER_AES256GCM)
        bad = crypto_aead_aes256gcm_decrypt_detached_afternm(c, NULL, c, clen, tag, pkt,
                                                             WIRE_HDR_LEN, nonce, &s->rx_aes);
    else
        bad = crypto_aead_chacha20poly1305_ietf_decrypt_detached(c, NULL, c, clen, tag, pkt,
                                                                 WIRE_HDR_LEN, nonce, s->rx_key);
    if (bad)
        return WIRE_ERR_AUTH;

    /* Authentic: only now may the packet move the window. */
    rc = wire_replay_update(&s->rx, pn);
    if (rc != WIRE_OK)
        return rc;
    rx->sess = s;
    rx->link_id = pkt[1];
    rx->pn = pn;
    rx->inner_type = c[0];
    rx->payload = c + 1;
    rx->len = clen - 1;
    if (!atomic_load_explicit(&s->confirmed, memory_order_relaxed)) {
        atomic_store(&s->confirmed, true);
        rx->first = true;
    }
    return inner_known(c[0]) ? WIRE_OK : WIRE_ERR_INNER_TYPE;
}

/* ---- keyring ------------------------------------------------------------------------------ */

void wire_keyring_init(struct wire_keyring *kr)
{
    memset(kr, 0, sizeof(*kr));
    kr->cur = kr->prev = kr->next = -1;
}

static void kr_drop(struct wire_keyring *kr, int8_t *which, wire_dropped_fn dropped, void *ctx)
{
    if (*which < 0)
        return;
    struct wire_session *s = &kr->slot[*which];
    uint16_t id = s->id;
    wire_session_wipe(s);
    *which = -1;
    if (dropped)
        dropped(ctx, id);
}

static int8_t kr_free_slot(const struct wire_keyring *kr)
{
    for (int8_t i = 0; i < 3; i++)
        if (i != kr->cur && i != kr->prev && i != kr->next)
            return i;
    return -1;
}

struct wire_session *wire_keyring_install(struct wire_keyring *kr, struct wire_session *s,
                                          uint64_t now_ms, wire_dropped_fn dropped, void *ctx)
{
    bool initiator = s->initiator;
    /* An unconfirmed next is superseded by the newer handshake; an initiator has no next at
     * all and keeps only the session it replaces. */
    kr_drop(kr, &kr->next, dropped, ctx);
    if (initiator)
        kr_drop(kr, &kr->prev, dropped, ctx);
    int8_t i = kr_free_slot(kr); /* at most cur and prev are taken now */
    if (i < 0) {
        kr_drop(kr, &kr->prev, dropped, ctx);
        i = kr_free_slot(kr);
    }
    memcpy(&kr->slot[i], s, sizeof(*s));
    wire_session_wipe(s);
    if (initiator) {
        kr->prev = kr->cur;
        kr->prev_until_ms = now_ms + WIRE_KEEP_OLD_SESSION_MS;
        kr->cur = i;
    } else {
        kr->next = i;
    }
    return &kr->slot[i];
}

struct wire_session *wire_keyring_lookup(void *ctx, uint16_t session_id)
{
    struct wire_keyring *kr = ctx;
    int8_t order[3] = {kr->cur, kr->next, kr->prev};
    for (int i = 0; i < 3; i++)
        if (order[i] >= 0 && kr->slot[order[i]].id == session_id)
            return &kr->slot[order[i]];
    return NULL;
}

void wire_keyring_confirmed(struct wire_keyring *kr, const struct wire_session *s, uint64_t now_ms,
                            wire_dropped_fn dropped, void *ctx)
{
    if (kr->next < 0 || s != &kr->slot[kr->next])
        return;
    kr_drop(kr, &kr->prev, dropped, ctx);
    kr->prev = kr->cur;
    kr->prev_until_ms = now_ms + WIRE_KEEP_OLD_SESSION_MS;
    kr->cur = kr->next;
    kr->next = -1;
}

struct wire_session *wire_keyring_tx(struct wire_keyring *kr, uint64_t now_ms)
{
    if (kr->cur < 0)
        return NULL;
    struct wire_session *s = &kr->slot[kr->cur];
    return wire_session_state(s, now_ms) == WIRE_SESS_EXPIRED ? NULL : s;
}

bool wire_keyring_tick(struct wire_keyring *kr, uint64_t now_ms, wire_dropped_fn dropped, void *ctx)
{
    if (kr->prev >= 0 && now_ms >= kr->prev_until_ms)
        kr_drop(kr, &kr->prev, dropped, ctx);
    if (kr->next >= 0 && wire_session_state(&kr->slot[kr->next], now_ms) == WIRE_SESS_EXPIRED)
        kr_drop(kr, &kr->next, dropped, ctx);
    if (kr->cur >= 0 && wire_session_state(&kr->slot[kr->cur], now_ms) == WIRE_SESS_EXPIRED)
        kr_drop(kr, &kr->cur, dropped, ctx);
    return kr->cur < 0 || wire_session_state(&kr->slot[kr->cur], now_ms) != WIRE_SESS_OK;
}

void wire_keyring_wipe(struct wire_keyring *kr)
{
    for (int i = 0; i < 3; i++)
        wire_session_wipe(&kr->slot[i]);
    wire_keyring_init(kr);
}
