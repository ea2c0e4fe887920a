/* wire: the tunnel's data-packet format (protocol v1, see docs/protocol.md).
 *
 * A library layer with no sockets and no allocation: pure functions over caller buffers plus one
 * small state object per session (struct wire_session: keys, send counter, replay window). The
 * data plane calls wire_seal()/wire_open() per packet; the handshake that creates sessions lives
 * in agg/crypto.h.
 *
 * Data packet on the wire (all integers big-endian):
 *
 *   0      1        2..3         4..7               8 ..                     last 16
 *   [v|t]  link id  session id   packet number lo32 AEAD(inner type | payload) tag
 *
 * byte 0 = version (2 high bits, 1 for v1) | type (6 bits, WIRE_T_*). The 8 header bytes are
 * the AEAD associated data. The packet number is the low 32 bits of a 64-bit per-direction
 * counter (one per session and direction, shared by every link) that the receiver reconstructs
 * against the highest packet number it has authenticated. The 64-bit number is the AEAD nonce and
 * the tunnel-wide sequence number the reorder buffer sorts by.
 *
 * Threading: seal may be called from several threads on one session (the send counter is
 * atomic). open mutates the replay window: the caller serialises opens per session (one receive
 * thread, or a lock). Nothing here logs; every failure is a distinct enum wire_err value so the
 * caller can count it. */
#ifndef CORRIDOR_AGG_WIRE_H
#define CORRIDOR_AGG_WIRE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#define WIRE_VERSION 1u

/* Outer types (6 bits). Handshake packets have their own layouts (agg/crypto.h). */
enum wire_type {
    WIRE_T_DATA = 0x01,
    WIRE_T_HS_INIT = 0x02,
    WIRE_T_HS_RESP = 0x03,
};

/* Inner types: the first plaintext byte of a data packet. */
enum wire_inner {
    WIRE_INNER_IP = 0x01,         /* an IPv4/IPv6 packet as read from the TUN device */
    WIRE_INNER_IP_LZ4 = 0x02,     /* the same, one LZ4 block (wire_decompress) */
    WIRE_INNER_FRAG = 0x03,       /* a fragment: 1 byte index<<4|count, then the bytes */
    WIRE_INNER_KEEPALIVE = 0x04,  /* empty payload; keeps NAT bindings and proves liveness */
    WIRE_INNER_CTRL_FIRST = 0x10, /* 0x10..0x1f: control messages (agg/ctrl.h), opaque here */
    WIRE_INNER_CTRL_LAST = 0x1f,
};

#define WIRE_HDR_LEN 8u
#define WIRE_TAG_LEN 16u
/* Header + inner type + tag: what the tunnel adds to every inner packet (before UDP/IP). */
#define WIRE_OVERHEAD (WIRE_HDR_LEN + 1u + WIRE_TAG_LEN)
/* Where the payload starts in a sealed packet: read the TUN packet to out + this to seal in
 * place without a copy. */
#define WIRE_PAYLOAD_OFFSET (WIRE_HDR_LEN + 1u)
/* Largest outer packet accepted or produced; anything longer is WIRE_ERR_OVERSIZED. */
#define WIRE_MAX_PACKET  2048u
#define WIRE_MAX_PAYLOAD (WIRE_MAX_PACKET - WIRE_OVERHEAD)

/* Anti-replay window: a ring of 64-bit blocks (RFC 6479). One block is the one being filled,
 * so packets up to WIRE_REPLAY_WINDOW behind the highest accepted one are still accepted once. */
#define WIRE_REPLAY_BLOCKS 256u
#define WIRE_REPLAY_WINDOW                                                                         \
    ((WIRE_REPLAY_BLOCKS - 1u) * 64u) /* 16320 packets: data uses even                             \
                                        numbers, so >= 8160 data packets */

/* Session lifetime (the vehicle, always the initiator, starts a new handshake at REKEY; both
 * ends refuse a session after REJECT). Packet limits are per direction; AES-GCM's lower limit
 * keeps its birthday bound far away (docs/protocol.md). */
#define WIRE_REKEY_AFTER_MS           120000u
#define WIRE_REJECT_AFTER_MS          180000u
#define WIRE_KEEP_OLD_SESSION_MS      10000u
#define WIRE_REKEY_AFTER_PACKETS      (1ull << 60)
#define WIRE_REJECT_AFTER_PACKETS     (1ull << 61)
#define WIRE_AES_REKEY_AFTER_PACKETS  (1ull << 36)
#define WIRE_AES_REJECT_AFTER_PACKETS (1ull << 37)

/* LZ4: tried only for payloads of at least WIRE_LZ4_MIN_INPUT bytes and kept only when it saves
 * at least WIRE_LZ4_MIN_SAVING bytes. */
#define WIRE_LZ4_MIN_INPUT  64u
#define WIRE_LZ4_MIN_SAVING 8u

enum wire_cipher {
    WIRE_CIPHER_CHACHA20POLY1305 = 1, /* always available, default */
    WIRE_CIPHER_AES256GCM = 2,        /* only when both ends have hardware AES (handshake) */
};

enum wire_err {
    WIRE_OK = 0,
    WIRE_ERR_TRUNCATED,       /* shorter than the smallest valid packet of its type */
    WIRE_ERR_OVERSIZED,       /* longer than WIRE_MAX_PACKET */
    WIRE_ERR_VERSION,         /* version bits are not WIRE_VERSION */
    WIRE_ERR_TYPE,            /* unknown outer type, or not the type this function handles */
    WIRE_ERR_UNKNOWN_SESSION, /* session id not found by the lookup */
    WIRE_ERR_REPLAY,          /* packet number already accepted */
    WIRE_ERR_TOO_OLD,         /* packet number behind the replay window */
    WIRE_ERR_AUTH,            /* AEAD tag does not verify: forged, tampered or wrong key */
    WIRE_ERR_EXPIRED,         /* session packet limit reached (rekey) */
    WIRE_ERR_INNER_TYPE,      /* authentic, but unknown inner type (counted, not delivered) */
    WIRE_ERR_BUFFER,          /* caller's output buffer too small / payload too large */
    WIRE_ERR_DECOMPRESS,      /* LZ4 block invalid or expands beyond the caller's bound */
    WIRE_ERR_ARG,             /* invalid argument (programming error) */
    WIRE_ERR_HS_MAC1,         /* handshake mac1 wrong: dropped before any DH */
    WIRE_ERR_HS_DECRYPT,      /* handshake AEAD failed (wrong key / forged) */
    WIRE_ERR_HS_DH,           /* a DH result was all-zero (low-order public key) */
    WIRE_ERR_HS_UNKNOWN_PEER, /* initiator's static key is not an allowed vehicle */
    WIRE_ERR_HS_REPLAY,       /* initiation timestamp not newer than the last accepted */
    WIRE_ERR_HS_UNEXPECTED,   /* response with no handshake pending, or id mismatch */
    WIRE_ERR_HS_CIPHER,       /* responder chose a cipher the initiator did not offer */
    WIRE_ERR__COUNT
};

/* Short constant name for counters and logs ("auth", "replay", ...). */
const char *wire_err_str(int err);

struct wire_replay {
    uint64_t last; /* highest accepted packet number */
    bool any;      /* false until the first packet is accepted */
    uint64_t bitmap[WIRE_REPLAY_BLOCKS];
};

void wire_replay_init(struct wire_replay *r);
/* May pn be accepted? No state change (checked before decrypting). WIRE_OK, _REPLAY, _TOO_OLD. */
int wire_replay_check(const struct wire_replay *r, uint64_t pn);
/* Record pn as accepted (after it authenticated). Same result codes as check. */
int wire_replay_update(struct wire_replay *r, uint64_t pn);
/* QUIC-style: the 64-bit number closest to highest+1 whose low 32 bits are lo32. */
uint64_t wire_pn_decode(uint64_t highest, bool any, uint32_t lo32);

/* One direction pair of keys. Created by the handshake (crypto.h) or wire_session_init (tests,
 * bench). Owned by the caller; wire_session_wipe() before freeing. */
struct wire_session {
    /* AES-GCM states first: libsodium requires 16-byte alignment (the type carries it). */
    crypto_aead_aes256gcm_state tx_aes;
    crypto_aead_aes256gcm_state rx_aes;
    uint8_t tx_key[32];
    uint8_t rx_key[32];
    uint16_t id;           /* session id (assigned by the hub), same in both directions */
    uint8_t cipher;        /* enum wire_cipher */
    bool initiator;        /* true on the vehicle */
    atomic_bool confirmed; /* an authenticated packet was received (key confirmation) */
    uint64_t created_ms;
    uint64_t rekey_after_packets, reject_after_packets;
    _Atomic uint64_t tx_next; /* next packet number to send */
    struct wire_replay rx;
    /* LZ4 back-off heuristic, shared by sending threads (relaxed atomics: exactness does not
     * matter, only that it is race-free). */
    atomic_uint lz4_fail_streak; /* consecutive compressions that did not pay */
    atomic_uint lz4_skipped;     /* packets seen while the streak is high */
    void *user;                  /* caller's (vehicle, link table...) */
};

/* Set up a session from raw keys (the handshake calls this). 0, or -WIRE_ERR_ARG if the cipher
 * is unknown or AES-GCM is not available on this CPU. */
int wire_session_init(struct wire_session *s, uint16_t id, enum wire_cipher cipher,
                      const uint8_t tx_key[32], const uint8_t rx_key[32], bool initiator,
                      uint64_t now_ms);
void wire_session_wipe(struct wire_session *s);

enum wire_sess_state {
    WIRE_SESS_OK,      /* use it */
    WIRE_SESS_REKEY,   /* still usable; the initiator should start a new handshake now */
    WIRE_SESS_EXPIRED, /* do not use for sending; drop once the new one is confirmed */
};
enum wire_sess_state wire_session_state(const struct wire_session *s, uint64_t now_ms);

/* Reserve n consecutive packet numbers (fragments of one packet must be consecutive). Returns
 * the first; fails (false) once the session's packet limit is reached. */
bool wire_session_reserve(struct wire_session *s, unsigned n, uint64_t *first);

/* Seal one data packet with packet number pn (from wire_session_reserve) into out.
 * payload may be anywhere, including out + WIRE_PAYLOAD_OFFSET (no copy then).
 * Returns the packet length (> 0) or -enum wire_err. */
int wire_seal_pn(struct wire_session *s, uint64_t pn, uint8_t link_id, uint8_t inner_type,
                 const uint8_t *payload, size_t len, uint8_t *out, size_t outcap);
/* Reserve one packet number and seal. pn_out (optional) receives it. */
int wire_seal(struct wire_session *s, uint8_t link_id, uint8_t inner_type, const uint8_t *payload,
              size_t len, uint8_t *out, size_t outcap, uint64_t *pn_out);

/* Seal an IP packet, LZ4-compressed (WIRE_INNER_IP_LZ4) when try_lz4 and it saves at least
 * WIRE_LZ4_MIN_SAVING bytes, otherwise as WIRE_INNER_IP. After 8 consecutive compressions that
 * did not pay, only every 32nd packet is tried (encrypted traffic does not compress).
 * ip must NOT overlap out when try_lz4 is set. Returns length or -enum wire_err. */
int wire_seal_ip(struct wire_session *s, uint8_t link_id, const uint8_t *ip, size_t len,
                 bool try_lz4, uint8_t *out, size_t outcap, uint64_t *pn_out);

/* Decompress a WIRE_INNER_IP_LZ4 payload into dst (cap = the inner MTU: the bound is the
 * caller's, never the input's). Returns the length or -WIRE_ERR_DECOMPRESS. */
int wire_decompress(const uint8_t *src, size_t len, uint8_t *dst, size_t dstcap);

/* Session lookup for wire_open: NULL if unknown. */
typedef struct wire_session *(*wire_lookup_fn)(void *ctx, uint16_t session_id);

struct wire_rx {
    struct wire_session *sess;
    uint8_t link_id;
    uint64_t pn; /* reconstructed 64-bit packet number */
    uint8_t inner_type;
    uint8_t *payload; /* points into the packet (decrypted in place) */
    size_t len;
    bool first; /* first authenticated packet of this session (it is now confirmed) */
};

/* Kind of an outer packet from its first byte: WIRE_T_* or -enum wire_err (version/type/len). */
int wire_classify(const uint8_t *pkt, size_t len);

/* Authenticate, replay-check and decrypt a data packet in place. Returns WIRE_OK (0) or a
 * positive enum wire_err (functions that return a length use -enum wire_err instead). On
 * WIRE_OK rx is filled. On WIRE_ERR_INNER_TYPE rx is filled too (authentic; the packet number is
 * consumed). Never allocates; never reads outside pkt[0..len). */
int wire_open(wire_lookup_fn lookup, void *ctx, uint8_t *pkt, size_t len, struct wire_rx *rx);

/* ---- keyring: the sessions of one peer across a rekey -------------------------------------
 * Up to three sessions: current (sends and receives), previous (receives only, for
 * WIRE_KEEP_OLD_SESSION_MS after it was replaced, so packets in flight on slow links still open)
 * and next (responder only: installed by a handshake, unconfirmed until its first authenticated
 * packet; the hub keeps sending on current until then). Not thread-safe: the owner serialises
 * install/confirm/tick with lookups. */
struct wire_keyring {
    struct wire_session slot[3];
    int8_t cur, prev, next; /* slot index or -1 */
    uint64_t prev_until_ms;
};
typedef void (*wire_dropped_fn)(void *ctx, uint16_t session_id);

void wire_keyring_init(struct wire_keyring *kr);
/* Move a session from a completed handshake into the keyring (*s is wiped). An initiator
 * session becomes current at once; a responder session becomes next (replacing an older
 * unconfirmed next). A session that must make room is wiped and reported through dropped
 * (optional). Returns the installed session. */
struct wire_session *wire_keyring_install(struct wire_keyring *kr, struct wire_session *s,
                                          uint64_t now_ms, wire_dropped_fn dropped, void *ctx);
/* wire_lookup_fn over one keyring (ctx = the keyring). */
struct wire_session *wire_keyring_lookup(void *kr, uint16_t session_id);
/* Call when wire_open reported rx.first on a session of this keyring: promotes next. */
void wire_keyring_confirmed(struct wire_keyring *kr, const struct wire_session *s, uint64_t now_ms,
                            wire_dropped_fn dropped, void *ctx);
/* The session to send on, or NULL (none, or expired: a handshake is needed). */
struct wire_session *wire_keyring_tx(struct wire_keyring *kr, uint64_t now_ms);
/* Housekeeping (about once a second): drops the previous session after its grace time and
 * sessions past WIRE_REJECT_AFTER_MS. Returns true if the current session is missing or due
 * for rekey (the initiator then starts a handshake). */
bool wire_keyring_tick(struct wire_keyring *kr, uint64_t now_ms, wire_dropped_fn dropped,
                       void *ctx);
void wire_keyring_wipe(struct wire_keyring *kr);

/* Fragment byte helpers (WIRE_INNER_FRAG): fragment index of count (count 2..15), carried in
 * consecutive packet numbers, so base packet number = pn - index. */
static inline uint8_t wire_frag_byte(unsigned index, unsigned count)
{
    return (uint8_t)((index << 4) | (count & 0x0f));
}

#endif
