/* linkemu_model: the pure part of the userspace link emulator (corridor-linkemu).
 *
 * Parameters, scenario parsing, the per-direction shaping model (rate/queue/delay/jitter/loss),
 * the delivery heap and the RNG. No I/O here, so all of it is unit-tested without root. */
#ifndef CORRIDOR_LINKEMU_MODEL_H
#define CORRIDOR_LINKEMU_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LE_MAX_EVENTS  4096 /* scenario lines kept per link: bounds memory on bad input */
#define LE_MAX_LINE    512
#define LE_DEFAULT_QMS 100  /* default queue: 100 ms worth of the configured rate */
#define LE_MIN_QBYTES  3000 /* a queue always holds at least two full frames */

enum le_dir_id { LE_UL = 0, LE_DL = 1 }; /* UL: vehicle -> hub, DL: hub -> vehicle */
#define LE_DIR_UL   1u
#define LE_DIR_DL   2u
#define LE_DIR_BOTH 3u

enum le_jdist { LE_JITTER_UNIFORM = 0, LE_JITTER_NORMAL = 1 };

struct le_params {
    uint64_t rate_bps;    /* 0 = unlimited */
    uint32_t delay_us;    /* one-way, added after serialisation */
    uint32_t jitter_us;   /* uniform: +-jitter, normal: sigma */
    uint8_t jitter_dist;  /* enum le_jdist */
    bool reorder;         /* false: delivery times never go backwards (cellular bearer) */
    double loss;          /* Bernoulli loss probability 0..1 (good state when gilbert is on) */
    bool gilbert;         /* Gilbert-Elliott two-state bursty loss */
    double ge_p;          /* P(good -> bad) per packet */
    double ge_r;          /* P(bad -> good) per packet */
    double ge_loss_bad;   /* loss probability in the bad state */
    uint32_t queue_bytes; /* explicit byte limit; 0 = derive from queue_ms */
    uint32_t queue_ms;
    bool up;
};

/* Field bits of a patch: which parameters a scenario line / control command changes. */
enum {
    LE_F_RATE = 1u << 0,
    LE_F_DELAY = 1u << 1,
    LE_F_JITTER = 1u << 2,
    LE_F_JDIST = 1u << 3,
    LE_F_REORDER = 1u << 4,
    LE_F_LOSS = 1u << 5,
    LE_F_GILBERT = 1u << 6,
    LE_F_QUEUE = 1u << 7,
    LE_F_UP = 1u << 8,
};

struct le_patch {
    uint32_t mask; /* LE_F_* */
    unsigned dirs; /* LE_DIR_* */
    struct le_params v;
};

struct le_event {
    uint64_t at_ms;
    struct le_patch patch;
};

struct le_scenario {
    struct le_params init[2]; /* [LE_UL], [LE_DL] at t = 0 */
    struct le_event *ev;      /* sorted by at_ms (stable), owned */
    size_t n_ev, cap_ev;
};

void le_params_default(struct le_params *p);
/* Queue limit in bytes for these parameters (0 = unlimited, when the rate is unlimited). */
uint32_t le_queue_limit(const struct le_params *p);
void le_patch_apply(const struct le_patch *pt, struct le_params *p);

/* Parse "key=value key=value [up|down]" tokens, with an optional leading "ul"/"dl"/"both".
 * Modifies s (tokenises in place). 0 on success, -1 with a message naming the token. */
int le_patch_parse(char *s, struct le_patch *out, char *err, size_t errlen);

void le_scenario_init(struct le_scenario *sc);
void le_scenario_free(struct le_scenario *sc);
/* One scenario line for link number `link` (1-based). Lines for other links, comments, blank
 * lines and lab-only keywords (links, mode) are accepted and ignored. */
int le_scenario_line(struct le_scenario *sc, unsigned link, char *line, char *err, size_t errlen);
/* Load a whole file; err names file:line. */
int le_scenario_load(struct le_scenario *sc, unsigned link, const char *path, char *err,
                     size_t errlen);

/* Value parsers (exported for tests). All reject junk and negative values. */
bool le_parse_rate(const char *s, uint64_t *bps);
bool le_parse_time_us(const char *s, uint32_t *us); /* bare number = ms */
bool le_parse_prob(const char *s, double *p);       /* "1%" or "0.01" */
bool le_parse_bytes(const char *s, uint32_t *bytes);

/* ---- RNG: xoshiro256**, seeded by splitmix64 (reproducible runs with --seed) ---- */
struct le_rng {
    uint64_t s[4];
};
void le_rng_seed(struct le_rng *r, uint64_t seed);
uint64_t le_rng_next(struct le_rng *r);
double le_rng_u01(struct le_rng *r); /* [0, 1) */
double le_rng_normal(struct le_rng *r);

/* ---- one direction of the link ---- */
enum le_verdict {
    LE_PASS = 0,
    LE_DROP_DOWN,
    LE_DROP_QUEUE,
    LE_DROP_LOSS,
    LE_DROP_POOL,     /* set by the I/O layer: no free packet slot */
    LE_DROP_OVERSIZE, /* set by the I/O layer: frame larger than a slot (GSO/TSO left on?) */
    LE_DROP_TXERR,    /* set by the I/O layer: send() failed */
    LE_DROP_N
};
extern const char *const le_verdict_name[LE_DROP_N];

struct le_dir_stats {
    uint64_t rx_pkts, rx_bytes, tx_pkts, tx_bytes;
    uint64_t drops[LE_DROP_N];
    uint64_t delay_sum_ns; /* sum over delivered packets of (deliver - arrival) */
    uint64_t first_tx_ns, last_tx_ns;
};

struct le_dir {
    struct le_params p;
    uint64_t link_free_ns;    /* serialiser busy until */
    uint64_t last_deliver_ns; /* for order preservation */
    bool ge_bad;
    struct le_dir_stats st;
};

void le_dir_init(struct le_dir *d, const struct le_params *p);
/* A packet of `bytes` (IP bytes: what the rate applies to) arrives at now_ns. On LE_PASS,
 * *deliver_ns is when it leaves the emulator. Counts rx and drops in d->st. */
enum le_verdict le_dir_admit(struct le_dir *d, struct le_rng *rng, uint64_t now_ns, uint32_t bytes,
                             uint64_t *deliver_ns);
/* Parameters change at now_ns (scenario event or control). Restoring a link restarts its
 * serialiser at now. */
void le_dir_set(struct le_dir *d, const struct le_params *p, uint64_t now_ns);
/* Format stats as one line into buf. */
void le_dir_format(const struct le_dir *d, const char *name, char *buf, size_t n);

/* ---- min-heap of pending deliveries keyed by (time, seq): seq keeps FIFO order on ties ---- */
struct le_hent {
    uint64_t key;
    uint64_t seq;
    uint32_t idx;
};
struct le_heap {
    struct le_hent *a;
    size_t n, cap;
};
int le_heap_init(struct le_heap *h, size_t cap); /* preallocated: never grows */
void le_heap_free(struct le_heap *h);
int le_heap_push(struct le_heap *h, struct le_hent e); /* -1 if full */
const struct le_hent *le_heap_top(const struct le_heap *h);
void le_heap_pop(struct le_heap *h);

#endif
