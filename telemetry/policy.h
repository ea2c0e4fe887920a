/* policy: per-link weights from live link measurements plus coverage predictions.
 *
 * A PURE function: everything it needs comes in as plain structs (no map, no clock, no I/O);
 * the only memory between calls is the caller-owned struct policy_link_state per link, passed
 * in and out, which carries the hysteresis. Called about once a second by firmware/, whose
 * output feeds the scheduler's weights; each state change comes with a human reason, e.g.
 *   "mts: disabled, dead zone predicted in 14 s at 55.7912,37.6011 (9 trips, confidence 0.93)"
 * Rules and reason texts: docs/coverage.md "Weights policy". */
#ifndef CORRIDOR_TELEMETRY_POLICY_H
#define CORRIDOR_TELEMETRY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POLICY_NAME_MAX   16
#define POLICY_REASON_MAX 200
#define POLICY_SLOTS      12 /* = PRED_SLOTS */
#define POLICY_MAX_LINKS  64 /* links per call; more are left untouched */

enum policy_net {
    POLICY_NET_UNKNOWN = 0,
    POLICY_NET_NONE,
    POLICY_NET_GSM,
    POLICY_NET_3G,
    POLICY_NET_LTE,
    POLICY_NET_5G,
};

/* Live inputs of one link (NAN = unknown). */
struct policy_link_in {
    char name[POLICY_NAME_MAX];          /* link name used in reasons, e.g. "mts" */
    char op[POLICY_NAME_MAX];            /* operator id, e.g. "250-01", matches policy_pred.op */
    bool up;                             /* tunnel: link has a working path (probes answered) */
    double srtt_ms, loss, capacity_kbps; /* tunnel measurements; loss 0..1 */
    double rsrp_dbm, sinr_db;            /* live radio */
    enum policy_net net;
    double drain_ms; /* time to deliver what is in flight on this link */
};

/* Prediction for one operator (from coverage_predict, copied by the caller). */
struct policy_pred {
    char op[POLICY_NAME_MAX];
    bool valid;
    double quality_now, quality_min; /* 0..1, NAN unknown */
    /* min quality per time slot ahead: q_profile[k] covers [k*slot_s, (k+1)*slot_s) s, NAN
     * where unknown; slot_s 0 = no profile (quality_min is used for the whole horizon) */
    double q_profile[POLICY_SLOTS];
    double slot_s;
    double dead_in_s; /* INFINITY = none within the horizon, 0 = in one now */
    double dead_lat, dead_lon;
    double confidence; /* 0..1 */
    unsigned trips;
};

enum policy_state {
    POLICY_ACTIVE = 0,
    POLICY_DRAINING, /* weight 0: in-flight packets finish before the dead zone */
    POLICY_DISABLED_PREDICTED,
    POLICY_DISABLED_LIVE,
};
const char *policy_state_name(enum policy_state s);

/* Per-link memory between calls; zero-initialise before the first call (the first call starts
 * the link active at weight 1). Owned by the caller, one per link, in the same order as the
 * inputs; reset it when a link is added or removed. */
struct policy_link_state {
    enum policy_state state;
    double weight;
    uint64_t since_ms;          /* when the current state began */
    uint64_t good_since_ms;     /* live and prediction both good since (0 = not good) */
    uint64_t bad_since_ms;      /* live degraded (loss) since (0 = not) */
    uint64_t override_until_ms; /* live beat the map: predictions ignored until then */
    uint64_t last_ms;           /* time of the previous call (ramp) */
    bool far_below;             /* inside the "far below the others" hysteresis band */
    bool initialised;
};

struct policy_params {
    double margin_s;         /* lead time = drain time + this (default 3 s) */
    double min_confidence;   /* predictions below this are ignored (default 0.5) */
    double far_below_ratio;  /* predicted quality within the lead time below ratio x the best
                                other's = bad (0.3) */
    double far_below_exit;   /* ... until above this ratio (0.5): hysteresis */
    double good_quality;     /* best other must be at least this for "far below" (0.5) */
    double ease_in_s;        /* good this long before a disabled link comes back (3 s) */
    double ramp_per_s;       /* weight ramp up per second when coming back (0.34) */
    double live_bad_loss;    /* live loss at/above this ... (0.3) */
    double live_bad_s;       /* ... for this long disables the link (2 s) */
    double live_good_loss;   /* live good: loss below this (0.05) ... */
    double live_good_rsrp;   /* ... and RSRP at least this (-105 dBm) when known ... */
    double live_good_sinr;   /* ... and SINR at least this (3 dB) when known */
    double live_strong_rsrp; /* live strongly good: RSRP >= this (-95) ... */
    double live_strong_sinr; /* ... or SINR >= this (10) when RSRP unknown */
    double override_s;       /* live beating the map holds this long (30 s) */
};
void policy_params_default(struct policy_params *p);

struct policy_out {
    double weight; /* 0..1, relative; the scheduler multiplies by capacity */
    enum policy_state state;
    bool changed; /* state changed in this call: log/emit the reason as an event */
    char reason[POLICY_REASON_MAX];
};

/* Decide the weights of n (<= POLICY_MAX_LINKS) links at time now_ms (monotonic). preds: n_preds
 * predictions, matched to links by operator (a link without one is judged on live data only). st
 * and out: n each. Never leaves every link at weight 0 when n > 0. */
void policy_decide(const struct policy_params *p, uint64_t now_ms, const struct policy_link_in *in,
                   size_t n, const struct policy_pred *preds, size_t n_preds,
                   struct policy_link_state *st, struct policy_out *out);

#endif
