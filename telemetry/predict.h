/* predict: look ahead along the way the vehicle is going and say, per operator, how good the
 * coverage map expects it to be, where the first dead zone is and how sure the map is.
 *
 * The way ahead is the learned path of past trips (per-cell successor cells, chosen by the
 * current heading) where it exists, else the current track extrapolated. See docs/coverage.md. */
#ifndef CORRIDOR_TELEMETRY_PREDICT_H
#define CORRIDOR_TELEMETRY_PREDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PRED_OP_MAX    16  /* = COV_OP_MAX */
#define PRED_MAX_OPS   16  /* = COV_MAX_OPS */
#define PRED_MAX_CELLS 400 /* cells walked at most (bounds the work per call) */
#define PRED_SLOTS     12  /* quality profile: the horizon in this many time slots */

struct cov_op_prediction {
    char op[PRED_OP_MAX];
    bool have_data;      /* some cell along the way has data for this operator */
    double quality_now;  /* 0..1 in the current cell, NAN if no data there */
    double quality_min;  /* min over the cells with data within the horizon, NAN if none */
    double quality_mean; /* mean over the same cells, NAN if none */
    /* min quality per slot: q_profile[k] covers [k, k+1) x cov_prediction.slot_s seconds
     * ahead (all of it in slot 0 when standing), NAN where no data */
    double q_profile[PRED_SLOTS];
    double rsrp_min, sinr_min, goodput_min_kbps; /* NAN if unknown */
    /* first predicted dead zone within the horizon; INFINITY when none, 0 when in one now */
    double dead_in_s, dead_in_m;
    double dead_lat, dead_lon; /* its first cell's centre (NAN when none) */
    double dead_len_m;         /* its length along the way, within the horizon */
    unsigned trips;            /* trips seen where it matters: the dead cell, else the mean */
    double confidence;         /* 0..1: trips seen, lowered where data or the path is sparse */
    double coverage;           /* fraction of cells along the way with data for this operator */
};

struct cov_prediction {
    double horizon_s, horizon_m;
    double slot_s;       /* horizon_s / PRED_SLOTS */
    unsigned n_cells;    /* cells walked (the current one included) */
    double learned_frac; /* fraction of steps that followed the learned path */
    unsigned n_ops;
    struct cov_op_prediction ops[PRED_MAX_OPS];
};

struct coverage_map;

/* speed_mps/track_deg may be NAN (unknown: the current cell, plus the strongest learned
 * successors when the track is unknown). horizon_s <= 0 means 60 s. 0 ok, -1 error. */
int coverage_predict(struct coverage_map *m, double lat, double lon, double speed_mps,
                     double track_deg, double horizon_s, struct cov_prediction *out, char *err,
                     size_t errlen);
/* Copy every operator's prediction into the weights policy's input (telemetry/policy.h);
 * returns the number written (at most max). */
struct policy_pred;
size_t cov_prediction_to_policy(const struct cov_prediction *p, struct policy_pred *out,
                                size_t max);

/* The prediction for operator op inside p, or NULL. */
const struct cov_op_prediction *cov_prediction_find(const struct cov_prediction *p, const char *op);

#endif
