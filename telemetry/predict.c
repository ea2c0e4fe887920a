/* predict: walk the way ahead over the coverage map (docs/coverage.md "Prediction").
 *
 * From the current cell the walk follows the learned successor cell whose direction best fits
 * the current heading (so both directions of a line and junctions work); where no past trip
 * left a successor it extrapolates the heading by half a cell at a time. Every cell visited is
 * judged per operator; the first dead cell gives the time and distance to the dead zone. The
 * walk is bounded by the horizon distance (speed x horizon) and PRED_MAX_CELLS. */
#include "telemetry/coverage.h"
#include "telemetry/predict.h"
#include "telemetry/policy.h"

#include "common/common.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MIN_SPEED_MPS 0.5   /* slower than this the vehicle is standing: no time to reach */
#define MAX_TURN_DEG  120.0 /* a successor more than this off the heading is the way back */
#define SUCC_MAX      4
#define EXTRAP_TRIES  6   /* half-cell steps tried to leave the current cell when extrapolating */
#define MIN_DEAD_N    2.0 /* a dead cell with less sample weight than this lowers confidence */

static double angle_diff(double a, double b)
{
    double d = fabs(fmod(a - b + 540.0, 360.0) - 180.0);
    return d;
}

struct acc {
    double qsum, tsum;
    unsigned qn, data_cells;
    bool in_run;
    double run_start_m;
    double dead_n;
};

_Static_assert(POLICY_SLOTS == PRED_SLOTS, "policy and predictor profiles differ");
_Static_assert(POLICY_NAME_MAX >= PRED_OP_MAX, "operator ids do not fit the policy");

size_t cov_prediction_to_policy(const struct cov_prediction *p, struct policy_pred *out, size_t max)
{
    size_t n = 0;
    for (unsigned i = 0; p && i < p->n_ops && n < max; i++, n++) {
        const struct cov_op_prediction *o = &p->ops[i];
        struct policy_pred *q = &out[n];
        memset(q, 0, sizeof(*q));
        str_copy(q->op, o->op, sizeof(q->op));
        q->valid = o->have_data;
        q->quality_now = o->quality_now;
        q->quality_min = o->quality_min;
        for (int k = 0; k < POLICY_SLOTS; k++)
            q->q_profile[k] = o->q_profile[k];
        q->slot_s = p->slot_s;
        q->dead_in_s = o->dead_in_s;
        q->dead_lat = o->dead_lat;
        q->dead_lon = o->dead_lon;
        q->confidence = o->confidence;
        q->trips = o->trips;
    }
    return n;
}

const struct cov_op_prediction *cov_prediction_find(const struct cov_prediction *p, const char *op)
{
    if (!p || !op)
        return NULL;
    for (unsigned i = 0; i < p->n_ops; i++)
        if (strcmp(p->ops[i].op, op) == 0)
            return &p->ops[i];
    return NULL;
}

static void judge_cell(struct coverage_map *m, int64_t key, unsigned idx, double dist, double spd,
                       struct cov_prediction *out, struct acc *acc)
{
    struct cov_cell cells[COV_MAX_OPS];
    int n = coverage_cell_ops(m, key, cells, COV_MAX_OPS);
    double half = coverage_cell_m(m) / 2.0;
    for (unsigned i = 0; i < out->n_ops; i++) {
        struct cov_op_prediction *o = &out->ops[i];
        struct acc *a = &acc[i];
        const struct cov_cell *c = NULL;
        for (int k = 0; k < n; k++)
            if (strcmp(cells[k].op, o->op) == 0 && cells[k].n > 0)
                c = &cells[k];
        if (!c) {
            /* no data: neither extends nor confirms a dead zone */
            if (a->in_run) {
                o->dead_len_m = dist - a->run_start_m;
                a->in_run = false;
            }
            continue;
        }
        o->have_data = true;
        a->data_cells++;
        if (idx == 0)
            o->quality_now = c->quality;
        if (isfinite(c->quality)) {
            int slot = 0;
            if (spd >= MIN_SPEED_MPS && out->slot_s > 0)
                slot = (int)fmin(PRED_SLOTS - 1, floor(dist / spd / out->slot_s));
            o->q_profile[slot] =
                isfinite(o->q_profile[slot]) ? fmin(o->q_profile[slot], c->quality) : c->quality;
            o->quality_min =
                isfinite(o->quality_min) ? fmin(o->quality_min, c->quality) : c->quality;
            a->qsum += c->quality;
            a->qn++;
        }
        if (isfinite(c->rsrp))
            o->rsrp_min = isfinite(o->rsrp_min) ? fmin(o->rsrp_min, c->rsrp) : c->rsrp;
        if (isfinite(c->sinr))
            o->sinr_min = isfinite(o->sinr_min) ? fmin(o->sinr_min, c->sinr) : c->sinr;
        if (isfinite(c->goodput_kbps))
            o->goodput_min_kbps = isfinite(o->goodput_min_kbps)
                                      ? fmin(o->goodput_min_kbps, c->goodput_kbps)
                                      : c->goodput_kbps;
        a->tsum += c->trips;
        if (c->dead) {
            if (isinf(o->dead_in_m)) {
                /* entry edge of the cell; in the current cell we are in it now */
                o->dead_in_m = idx == 0 ? 0.0 : fmax(0.0, dist - half);
                o->dead_in_s = spd >= MIN_SPEED_MPS ? o->dead_in_m / spd
                                                    : (o->dead_in_m == 0 ? 0.0 : INFINITY);
                o->dead_lat = c->lat;
                o->dead_lon = c->lon;
                o->trips = c->trips;
                a->dead_n = c->n;
                a->in_run = true;
                a->run_start_m = o->dead_in_m;
                o->dead_len_m = half;
            }
        } else if (a->in_run) {
            o->dead_len_m = fmax(0.0, dist - half - a->run_start_m);
            a->in_run = false;
        }
    }
}

int coverage_predict(struct coverage_map *m, double lat, double lon, double speed_mps,
                     double track_deg, double horizon_s, struct cov_prediction *out, char *err,
                     size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!m || !isfinite(lat) || !isfinite(lon) || fabs(lat) > 89.0 || fabs(lon) > 180.0) {
        if (err && errlen)
            snprintf(err, errlen, "predict: no map or bad position");
        return -1;
    }
    if (!(horizon_s > 0) || horizon_s > 3600)
        horizon_s = 60.0;
    double spd = isfinite(speed_mps) && speed_mps > 0 ? speed_mps : 0.0;
    double heading = isfinite(track_deg) ? fmod(fmod(track_deg, 360.0) + 360.0, 360.0) : NAN;
    out->horizon_s = horizon_s;
    out->horizon_m = spd * horizon_s;
    out->slot_s = horizon_s / PRED_SLOTS;

    coverage_lock(m);
    char names[PRED_MAX_OPS][COV_OP_MAX];
    int nops = coverage_ops(m, names, PRED_MAX_OPS);
    out->n_ops = (unsigned)nops;
    struct acc acc[PRED_MAX_OPS];
    memset(acc, 0, sizeof(acc));
    for (int i = 0; i < nops; i++) {
        struct cov_op_prediction *o = &out->ops[i];
        str_copy(o->op, names[i], sizeof(o->op));
        o->quality_now = o->quality_min = o->quality_mean = NAN;
        o->rsrp_min = o->sinr_min = o->goodput_min_kbps = NAN;
        o->dead_in_s = o->dead_in_m = INFINITY;
        o->dead_lat = o->dead_lon = NAN;
        for (int k = 0; k < PRED_SLOTS; k++)
            o->q_profile[k] = NAN;
    }

    static const unsigned max_cells = PRED_MAX_CELLS;
    int64_t visited[PRED_MAX_CELLS];
    double cell_m = coverage_cell_m(m);
    double plat = lat, plon = lon; /* point of the walk: the vehicle, then cell centres */
    int64_t key = coverage_cell_key(m, lat, lon);
    double dist = 0;
    unsigned steps = 0, learned = 0;
    for (;;) {
        visited[out->n_cells] = key;
        judge_cell(m, key, out->n_cells, dist, spd, out, acc);
        out->n_cells++;
        if (out->n_cells >= max_cells || dist >= out->horizon_m)
            break;
        /* next cell: the learned successor that fits the heading best */
        int64_t succ[SUCC_MAX];
        double w[SUCC_MAX];
        int ns = coverage_path_next(m, key, succ, w, SUCC_MAX);
        int best = -1;
        double best_score = 0, best_b = 0;
        double clat, clon;
        coverage_cell_center(m, key, &clat, &clon);
        for (int j = 0; j < ns; j++) {
            bool seen = false;
            for (unsigned v = 0; v < out->n_cells; v++)
                seen |= visited[v] == succ[j];
            if (seen)
                continue;
            double slat, slon;
            coverage_cell_center(m, succ[j], &slat, &slon);
            double b = cov_bearing_deg(clat, clon, slat, slon);
            double score = w[j];
            if (isfinite(heading)) {
                double d = angle_diff(b, heading);
                if (d > MAX_TURN_DEG)
                    continue;
                /* straight on is preferred, a sharp corner still followed when it is the
                 * only learned way on */
                score *= 0.25 + 0.75 * fmax(cos(d * M_PI / 180.0), 0.0);
            }
            if (best < 0 || score > best_score) {
                best = j;
                best_score = score;
                best_b = b;
            }
        }
        double step = 0;
        int64_t next;
        if (best >= 0) {
            double slat, slon;
            coverage_cell_center(m, succ[best], &slat, &slon);
            step = cov_distance_m(plat, plon, slat, slon);
            plat = slat;
            plon = slon;
            next = succ[best];
            heading = best_b;
            learned++;
        } else if (isfinite(heading) && spd > 0) {
            next = key;
            for (int t = 0; t < EXTRAP_TRIES && next == key; t++) {
                cov_destination(plat, plon, heading, cell_m / 2.0, &plat, &plon);
                step += cell_m / 2.0;
                next = coverage_cell_key(m, plat, plon);
            }
            if (next == key)
                break;
        } else {
            break; /* standing still or no heading and nothing learned: the current cell only */
        }
        bool loop = false;
        for (unsigned v = 0; v < out->n_cells; v++)
            loop |= visited[v] == next;
        if (loop)
            break;
        dist += step;
        steps++;
        key = next;
    }
    out->learned_frac = steps ? (double)learned / steps : 0.0;
    const struct coverage_params *prm = coverage_params_of(m);
    for (int i = 0; i < nops; i++) {
        struct cov_op_prediction *o = &out->ops[i];
        struct acc *a = &acc[i];
        if (a->in_run)
            o->dead_len_m = fmax(o->dead_len_m, dist + cell_m / 2.0 - a->run_start_m);
        if (a->qn)
            o->quality_mean = a->qsum / a->qn;
        o->coverage = out->n_cells ? (double)a->data_cells / out->n_cells : 0.0;
        double trips = isfinite(o->dead_in_m) ? (double)o->trips
                       : a->data_cells        ? a->tsum / a->data_cells
                                              : 0.0;
        if (!isfinite(o->dead_in_m))
            o->trips = (unsigned)lround(trips);
        /* Confidence: grows with trips seen, lowered where the way ahead has little data for
         * this operator, where the dead cell has few samples, and where the path is guessed. */
        double c = 1.0 - exp(-trips / prm->conf_trips_k);
        c *= 0.5 + 0.5 * o->coverage;
        if (isfinite(o->dead_in_m))
            c *= fmin(1.0, a->dead_n / MIN_DEAD_N);
        if (steps)
            c *= 0.7 + 0.3 * out->learned_frac;
        o->confidence = a->data_cells ? c : 0.0;
    }
    coverage_unlock(m);
    return 0;
}
