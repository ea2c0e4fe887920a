/* policy: the pure weights policy (docs/coverage.md "Weights policy").
 *
 * Rules, in order of precedence, per link:
 *   1. live bad (link down, or loss >= live_bad_loss for live_bad_s)      -> disabled-live
 *   2. live strongly good where the map claims a dead zone NOW             -> the map is ignored
 *      for override_s (live wins over the map)
 *   3. operator predicted dead within the lead time (drain + margin), or predicted far below
 *      the best other operator among the links active at full weight (with an entry/exit
 *      hysteresis band)                                                     -> draining for the
 *      drain time (weight 0, in-flight packets finish), then disabled-predicted
 *   4. a draining/disabled link comes back only after live probes AND the prediction have been
 *      good for ease_in_s, and then ramps its weight up at ramp_per_s (no flapping)
 *   5. never all zero: if no link has weight, the best usable link is kept active.
 * Everything is decided from the inputs and the caller's per-link state: no clock, no I/O. */
#include "telemetry/policy.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *policy_state_name(enum policy_state s)
{
    switch (s) {
    case POLICY_ACTIVE:
        return "active";
    case POLICY_DRAINING:
        return "draining";
    case POLICY_DISABLED_PREDICTED:
        return "disabled-predicted";
    case POLICY_DISABLED_LIVE:
        return "disabled-live";
    default:
        return "?";
    }
}

void policy_params_default(struct policy_params *p)
{
    memset(p, 0, sizeof(*p));
    p->margin_s = 3.0;
    p->min_confidence = 0.5;
    p->far_below_ratio = 0.3;
    p->far_below_exit = 0.5;
    p->good_quality = 0.5;
    p->ease_in_s = 3.0;
    p->ramp_per_s = 0.34;
    p->live_bad_loss = 0.3;
    p->live_bad_s = 2.0;
    p->live_good_loss = 0.05;
    p->live_good_rsrp = -105.0;
    p->live_good_sinr = 3.0;
    p->live_strong_rsrp = -95.0;
    p->live_strong_sinr = 10.0;
    p->override_s = 30.0;
}

static void fmt(char *buf, const char *f, ...) __attribute__((format(printf, 2, 3)));
static void fmt(char *buf, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, POLICY_REASON_MAX, f, ap);
    va_end(ap);
}

static const struct policy_pred *
find_pred(const struct policy_params *p, const struct policy_pred *preds, size_t n, const char *op)
{
    for (size_t i = 0; i < n; i++)
        if (preds[i].valid && strcmp(preds[i].op, op) == 0 &&
            preds[i].confidence >= p->min_confidence)
            return &preds[i];
    return NULL;
}

/* "(9 trips, confidence 0.93)" */
static void evidence(char *buf, size_t n, const struct policy_pred *pr)
{
    snprintf(buf, n, "(%u trips, confidence %.2f)", pr->trips, pr->confidence);
}

static void dead_text(char *buf, size_t n, const struct policy_pred *pr)
{
    char ev[64];
    evidence(ev, sizeof(ev), pr);
    if (isfinite(pr->dead_lat) && isfinite(pr->dead_lon))
        snprintf(buf, n, "dead zone predicted in %.0f s at %.4f,%.4f %s", pr->dead_in_s,
                 pr->dead_lat, pr->dead_lon, ev);
    else
        snprintf(buf, n, "dead zone predicted in %.0f s %s", pr->dead_in_s, ev);
}

/* The worst predicted quality within the next lead_s seconds (the whole horizon when the
 * prediction has no profile); NAN if unknown. */
static double q_within(const struct policy_pred *pr, double lead_s)
{
    if (!(pr->slot_s > 0))
        return pr->quality_min;
    double q = NAN;
    for (int k = 0; k < POLICY_SLOTS && k * pr->slot_s < lead_s; k++)
        if (isfinite(pr->q_profile[k]))
            q = isfinite(q) ? fmin(q, pr->q_profile[k]) : pr->q_profile[k];
    return q;
}

struct judge {
    const struct policy_pred *pr;
    bool live_bad, live_good, live_strong;
    bool pred_dead, far, pred_bad;
    double best_other, q_lead;
    char best_other_name[POLICY_NAME_MAX];
    char why[POLICY_REASON_MAX - POLICY_NAME_MAX - 16]; /* the prediction part of a reason */
};

static double since_s(uint64_t now, uint64_t t)
{
    return t && now >= t ? (now - t) / 1000.0 : 0.0;
}

static void judge_link(const struct policy_params *p, uint64_t now, const struct policy_link_in *in,
                       size_t n, size_t i, const struct policy_pred *preds, size_t n_preds,
                       struct policy_link_state *all, struct judge *j)
{
    struct policy_link_state *s = &all[i];
    const struct policy_link_in *l = &in[i];
    memset(j, 0, sizeof(*j));
    j->pr = find_pred(p, preds, n_preds, l->op);

    /* live */
    bool lossy = isfinite(l->loss) && l->loss >= p->live_bad_loss;
    if (!lossy || !l->up)
        s->bad_since_ms = 0;
    else if (!s->bad_since_ms)
        s->bad_since_ms = now;
    j->live_bad = !l->up || (lossy && since_s(now, s->bad_since_ms) >= p->live_bad_s);
    j->live_good = l->up && l->net != POLICY_NET_NONE &&
                   (!isfinite(l->loss) || l->loss < p->live_good_loss) &&
                   (!isfinite(l->rsrp_dbm) || l->rsrp_dbm >= p->live_good_rsrp) &&
                   (!isfinite(l->sinr_db) || l->sinr_db >= p->live_good_sinr);
    j->live_strong =
        j->live_good &&
        ((isfinite(l->rsrp_dbm) && l->rsrp_dbm >= p->live_strong_rsrp) ||
         (!isfinite(l->rsrp_dbm) && isfinite(l->sinr_db) && l->sinr_db >= p->live_strong_sinr));

    /* prediction */
    double drain_s = isfinite(l->drain_ms) && l->drain_ms > 0 ? l->drain_ms / 1000.0 : 0.0;
    double lead_s = drain_s + p->margin_s;
    j->best_other = NAN;
    for (size_t k = 0; k < n; k++) {
        if (k == i || strcmp(in[k].op, l->op) == 0 || !in[k].up)
            continue;
        /* "Far below the others" means the others can take its traffic NOW: a link that is
         * itself off or still easing back in cannot (the route replay lost packets when one link
         * drained onto another that had just come back at a third of its weight). */
        if (all[k].initialised && (all[k].state != POLICY_ACTIVE || all[k].weight < 1.0))
            continue;
        const struct policy_pred *o = find_pred(p, preds, n_preds, in[k].op);
        double oq = o ? q_within(o, lead_s) : NAN;
        if (isfinite(oq) && (!isfinite(j->best_other) || oq > j->best_other)) {
            j->best_other = oq;
            snprintf(j->best_other_name, sizeof(j->best_other_name), "%s", in[k].name);
        }
    }
    const struct policy_pred *pr = j->pr;
    if (pr) {
        j->pred_dead = isfinite(pr->dead_in_s) && pr->dead_in_s <= lead_s;
        bool others_good = isfinite(j->best_other) && j->best_other >= p->good_quality;
        double q = j->q_lead = q_within(pr, lead_s);
        if (!s->far_below)
            s->far_below = others_good && isfinite(q) && q < p->far_below_ratio * j->best_other;
        else
            s->far_below = others_good && isfinite(q) && q < p->far_below_exit * j->best_other;
        j->far = s->far_below;
    } else {
        s->far_below = false;
    }
    /* Live wins: the map says this place is dead (or far worse) but the link is strongly good
     * right here, right now. The map is stale here (new tower): ignore it for a while. */
    if (pr && j->live_strong &&
        ((j->pred_dead && pr->dead_in_s <= 1.0) ||
         (j->far && isfinite(pr->quality_now) &&
          pr->quality_now < p->far_below_exit * j->best_other)))
        s->override_until_ms = now + (uint64_t)(p->override_s * 1000.0);
    bool overridden = now < s->override_until_ms;
    j->pred_bad = !overridden && (j->pred_dead || j->far);
    if (j->pred_bad && j->pred_dead) {
        dead_text(j->why, sizeof(j->why), pr);
    } else if (j->pred_bad) {
        char ev[64];
        evidence(ev, sizeof(ev), pr);
        snprintf(j->why, sizeof(j->why), "predicted quality %.2f far below %.2f of %s %s",
                 j->q_lead, j->best_other, j->best_other_name, ev);
    } else if (overridden && pr) {
        char ev[64];
        evidence(ev, sizeof(ev), pr);
        if (isfinite(l->rsrp_dbm))
            snprintf(j->why, sizeof(j->why), "live good (rsrp %.0f dBm) overrides the map %s",
                     l->rsrp_dbm, ev);
        else
            snprintf(j->why, sizeof(j->why), "live good (sinr %.0f dB) overrides the map %s",
                     l->sinr_db, ev);
    } else if (pr && isfinite(pr->quality_min)) {
        char ev[64];
        evidence(ev, sizeof(ev), pr);
        snprintf(j->why, sizeof(j->why), "predicted quality %.2f ahead %s", pr->quality_min, ev);
    } else {
        snprintf(j->why, sizeof(j->why), "no prediction");
    }
}

static void enter(struct policy_link_state *s, enum policy_state st, uint64_t now)
{
    if (s->state != st) {
        s->state = st;
        s->since_ms = now;
    }
}

void policy_decide(const struct policy_params *prm, uint64_t now_ms,
                   const struct policy_link_in *in, size_t n, const struct policy_pred *preds,
                   size_t n_preds, struct policy_link_state *st, struct policy_out *out)
{
    struct policy_params defp;
    if (!prm) {
        policy_params_default(&defp);
        prm = &defp;
    }
    enum policy_state prev[POLICY_MAX_LINKS];
    struct judge jj[POLICY_MAX_LINKS];
    if (n > POLICY_MAX_LINKS)
        n = POLICY_MAX_LINKS; /* bounded: four times the biggest board */
    for (size_t i = 0; i < n; i++) {
        struct policy_link_state *s = &st[i];
        const struct policy_link_in *l = &in[i];
        struct judge *j = &jj[i];
        struct policy_out *o = &out[i];
        if (!s->initialised) {
            memset(s, 0, sizeof(*s));
            s->initialised = true;
            s->state = POLICY_ACTIVE;
            s->weight = 1.0;
            s->since_ms = now_ms;
            s->last_ms = now_ms;
        }
        prev[i] = s->state;
        double dt = now_ms > s->last_ms ? (now_ms - s->last_ms) / 1000.0 : 0.0;
        s->last_ms = now_ms;
        judge_link(prm, now_ms, in, n, i, preds, n_preds, st, j);
        double drain_s = isfinite(l->drain_ms) && l->drain_ms > 0 ? l->drain_ms / 1000.0 : 0.0;

        /* Back from a live outage the link has to carry traffic again (probes answered, low
         * loss); the radio thresholds only gate the return from a predicted dead zone, where
         * the map said "dead" and the radio must say otherwise. A weak but working link
         * (-114 dBm) is still capacity. */
        bool carries = l->up && l->net != POLICY_NET_NONE &&
                       (!isfinite(l->loss) || l->loss < prm->live_good_loss);
        bool good = (s->state == POLICY_DISABLED_LIVE ? carries : j->live_good) && !j->pred_bad;
        if (!good)
            s->good_since_ms = 0;
        else if (!s->good_since_ms)
            s->good_since_ms = now_ms;

        if (j->live_bad) {
            enter(s, POLICY_DISABLED_LIVE, now_ms);
        } else if (j->pred_bad) {
            if (s->state == POLICY_ACTIVE)
                enter(s, drain_s > 0 ? POLICY_DRAINING : POLICY_DISABLED_PREDICTED, now_ms);
            else if (s->state == POLICY_DRAINING && since_s(now_ms, s->since_ms) >= drain_s)
                enter(s, POLICY_DISABLED_PREDICTED, now_ms);
            else if (s->state == POLICY_DISABLED_LIVE)
                enter(s, POLICY_DISABLED_PREDICTED, now_ms);
        } else if (s->state != POLICY_ACTIVE && good &&
                   since_s(now_ms, s->good_since_ms) >= prm->ease_in_s) {
            enter(s, POLICY_ACTIVE, now_ms);
            s->weight = 0.0; /* ramp up from nothing */
        }

        if (s->state == POLICY_ACTIVE)
            s->weight = fmin(1.0, s->weight + prm->ramp_per_s * dt);
        else
            s->weight = 0.0;
        o->state = s->state;
        o->weight = s->weight;

        switch (s->state) {
        case POLICY_ACTIVE:
            if (s->weight < 1.0)
                fmt(o->reason, "%s: active, easing back in (weight %.2f), %s", l->name, s->weight,
                    j->why);
            else
                fmt(o->reason, "%s: active, %s", l->name, j->why);
            break;
        case POLICY_DRAINING:
            fmt(o->reason, "%s: draining, %s", l->name, j->why);
            break;
        case POLICY_DISABLED_PREDICTED:
            if (j->pred_bad)
                fmt(o->reason, "%s: disabled, %s", l->name, j->why);
            else
                fmt(o->reason, "%s: disabled, recovering (good for %.0f of %.0f s), %s", l->name,
                    since_s(now_ms, s->good_since_ms), prm->ease_in_s, j->why);
            break;
        case POLICY_DISABLED_LIVE:
            if (!l->up)
                fmt(o->reason, "%s: disabled, link down (live)", l->name);
            else if (j->live_bad)
                fmt(o->reason, "%s: disabled, live loss %.0f%% for %.0f s", l->name,
                    l->loss * 100.0, since_s(now_ms, s->bad_since_ms));
            else
                fmt(o->reason, "%s: disabled, recovering (good for %.0f of %.0f s)", l->name,
                    since_s(now_ms, s->good_since_ms), prm->ease_in_s);
            break;
        }
    }

    /* Never leave no link: keep the best usable one. Preference: up, not live-bad, the furthest
     * predicted dead zone, the best predicted quality; its state stays active (so the next call
     * does not report a change again). */
    bool any = false;
    for (size_t i = 0; i < n; i++)
        any |= out[i].weight > 0;
    if (!any && n > 0) {
        size_t best = 0;
        double best_score = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            const struct judge *j = &jj[i];
            double score = 0;
            if (in[i].up)
                score += 1000;
            if (!j->live_bad)
                score += 500;
            if (j->pr && isfinite(j->pr->dead_in_s))
                score += fmin(j->pr->dead_in_s, 300.0);
            else
                score += 300;
            if (j->pr && isfinite(j->pr->quality_min))
                score += j->pr->quality_min;
            if (score > best_score) {
                best_score = score;
                best = i;
            }
        }
        struct policy_link_state *s = &st[best];
        enter(s, POLICY_ACTIVE, now_ms);
        s->weight = 1.0;
        out[best].state = POLICY_ACTIVE;
        out[best].weight = 1.0;
        if (in[best].up)
            fmt(out[best].reason, "%s: active, kept as the last usable link, %s", in[best].name,
                jj[best].why);
        else
            fmt(out[best].reason, "%s: active, kept although no link is usable (all down)",
                in[best].name);
    }
    for (size_t i = 0; i < n; i++)
        out[i].changed = out[i].state != prev[i];
}
