/* crypto: the tunnel handshake (protocol v1, docs/protocol.md) and its primitives.
 *
 * A Noise IK-like pattern built from libsodium: X25519 (crypto_scalarmult), BLAKE2b-256
 * (crypto_generichash) as hash, keyed BLAKE2b as HMAC/HKDF and MAC, ChaCha20-Poly1305 IETF as the
 * handshake AEAD. The vehicle (initiator) knows the hub's static public key; the hub (responder)
 * knows every vehicle's static public key through a lookup callback. One round trip:
 *
 *   initiation (vehicle -> hub, 136 bytes): ephemeral, encrypted static key, encrypted TAI64N
 *     timestamp + cipher offer, mac1 keyed by BLAKE2b("mac1" | hub public key).
 *   response (hub -> vehicle, 76 bytes): ephemeral, encrypted session id + chosen cipher,
 *     mac1 keyed by BLAKE2b("mac1" | vehicle public key).
 *
 * The hub checks mac1 before any DH (garbage costs one BLAKE2b), answers only after it has
 * authenticated the initiator (static key known, timestamp AEAD verified and newer than the last
 * one of that vehicle), and the response is smaller than the initiation: no amplification or
 * reflection. Session keys come from ee and se DH with fresh ephemerals: forward secrecy.
 *
 * No sockets, no allocation, no logging; every state object is caller-owned. Not thread-safe per
 * object. */
#ifndef CORRIDOR_AGG_CRYPTO_H
#define CORRIDOR_AGG_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agg/wire.h"

#define HS_KEY_LEN  32u
#define HS_TS_LEN   12u /* TAI64N: 8 bytes seconds + 2^62, 4 bytes nanoseconds, big-endian */
#define HS_MAC_LEN  16u
#define HS_INIT_LEN 136u
#define HS_RESP_LEN 76u

/* ---- primitives (exposed for tests) --------------------------------------------------------- */
/* 0 on success; -1 if sodium_init failed. Every init function below calls it. */
int crypto_lib_init(void);
/* out = BLAKE2b-256(a | b) (b may be NULL). */
void hs_hash(uint8_t out[32], const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/* HKDF over keyed BLAKE2b: n (1..3) outputs of 32 bytes from chaining key ck and input. */
void hs_kdf(uint8_t *out1, uint8_t *out2, uint8_t *out3, const uint8_t ck[32], const uint8_t *in,
            size_t inlen);
/* mac = BLAKE2b-128 keyed with key (32 bytes). */
void hs_mac(uint8_t mac[HS_MAC_LEN], const uint8_t key[32], const uint8_t *msg, size_t len);
/* TAI64N of a wall-clock time in nanoseconds since the Unix epoch. */
void hs_tai64n(uint8_t out[HS_TS_LEN], uint64_t unix_ns);
/* Public key of a private key. */
void hs_public_key(uint8_t pub[32], const uint8_t priv[32]);

/* ---- initiator (vehicle) ------------------------------------------------------------------- */
struct hs_initiator {
    uint8_t s_priv[32], s_pub[32]; /* our static */
    uint8_t r_pub[32];             /* hub's static */
    uint8_t mac1_key_r[32];        /* keys mac1 of initiations (hub verifies) */
    uint8_t mac1_key_i[32];        /* keys mac1 of responses (we verify) */
    bool offer_aes;                /* offer AES-256-GCM (only if this CPU has it) */
    /* One pending handshake: */
    bool pending;
    uint32_t hs_id; /* random, echoed by the response */
    uint8_t e_priv[32], e_pub[32];
    uint8_t ck[32], h[32];
    uint64_t created_ms;
};

/* allow_aes: offer AES-256-GCM if crypto_aead_aes256gcm_is_available(). */
int hs_initiator_init(struct hs_initiator *ini, const uint8_t s_priv[32], const uint8_t r_pub[32],
                      bool allow_aes);
/* Build a fresh initiation (new ephemeral, replaces any pending one) into out (cap >=
 * HS_INIT_LEN). unix_ns is the wall clock for the replay timestamp; it must increase between
 * calls (the hub rejects older/equal ones). Returns HS_INIT_LEN or -enum wire_err. The same bytes
 * may be sent over several links: hs_set_link() rewrites the link id and mac1. */
int hs_initiator_create(struct hs_initiator *ini, uint64_t unix_ns, uint8_t link_id,
                        uint64_t now_ms, uint8_t *out, size_t outcap);
/* Rewrite the link id byte of a built initiation and recompute its mac1. */
void hs_set_link(const struct hs_initiator *ini, uint8_t *init_pkt, uint8_t link_id);
/* Consume a response. Returns WIRE_OK or a positive enum wire_err. On WIRE_OK the new session is
 * written to *sess (initiator side, may send at once) and the pending state is wiped; a second copy
 * of the same response (it may arrive on another link) is then WIRE_ERR_HS_UNEXPECTED. */
int hs_initiator_consume_response(struct hs_initiator *ini, const uint8_t *pkt, size_t len,
                                  uint64_t now_ms, struct wire_session *sess);
void hs_initiator_wipe(struct hs_initiator *ini);

/* ---- responder (hub) ----------------------------------------------------------------------- */
/* One allowed vehicle, owned by the caller (its vehicle table). */
struct hs_peer {
    uint8_t static_pub[32];
    uint8_t last_ts[HS_TS_LEN]; /* greatest accepted initiation timestamp (zero = none) */
    bool allowed;               /* false: known but disabled */
    void *user;                 /* caller's vehicle record (id, tunnel address...) */
};
/* Map an initiator's static public key to its peer record, or NULL if unknown. */
typedef struct hs_peer *(*hs_peer_lookup_fn)(void *ctx, const uint8_t static_pub[32]);

struct hs_responder_stats {
    uint64_t initiations;  /* well-formed length + type */
    uint64_t bad_mac1;     /* dropped before any DH */
    uint64_t dh;           /* X25519 operations performed (cost accounting, tests) */
    uint64_t unknown_peer; /* not in the table or not allowed */
    uint64_t replayed;     /* timestamp not newer */
    uint64_t decrypt_fail; /* AEAD failures */
    uint64_t accepted;
};

struct hs_responder {
    uint8_t s_priv[32], s_pub[32];
    uint8_t mac1_key[32]; /* BLAKE2b("mac1" | our public key) */
    bool allow_aes;
    struct hs_responder_stats stats;
};

int hs_responder_init(struct hs_responder *r, const uint8_t s_priv[32], bool allow_aes);
/* Authenticate an initiation and, on success, write the response (HS_RESP_LEN bytes) to out and
 * the new responder-side session (id session_id, chosen by the caller: a free slot) to *sess.
 * *peer_out is the vehicle. The session is unconfirmed until its first authenticated data
 * packet (wire_rx.first): the hub must not send on it before. Returns WIRE_OK or an error;
 * nothing is written to out on error (never answer an unauthenticated initiation). */
int hs_responder_consume_initiation(struct hs_responder *r, hs_peer_lookup_fn lookup, void *ctx,
                                    const uint8_t *pkt, size_t len, uint16_t session_id,
                                    uint64_t now_ms, uint8_t *out, size_t outcap, size_t *out_len,
                                    struct wire_session *sess, struct hs_peer **peer_out);
void hs_responder_wipe(struct hs_responder *r);

#endif
