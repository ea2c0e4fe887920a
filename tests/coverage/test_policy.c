/* Weights policy: one test per rule (docs/coverage.md "Weights policy"). */
#include "testlib.h"

#include "telemetry/policy.h"

#include <stdint.h>

static struct policy_params prm;

static struct policy_link_in link(const char *name, const char *op)
{
    struct policy_link_in l;
    memset(&l, 0, sizeof(l));
    snprintf(l.name, sizeof(l.name), "%s", name);
    snprintf(l.op, sizeof(l.op), "%s", op);
    l.up = true;
    l.srtt_ms = 50;
    l.loss = 0;
    l.capacity_kbps = 20000;
    l.rsrp_dbm = -100; /* good, not "strongly good" (that is -95) */
    l.sinr_db = 8;
    l.net = POLICY_NET_LTE;
    l.drain_ms = 2000;
    return l;
}

static struct policy_pred pred(const char *op, double q, double dead_in_s)
{
    struct policy_pred p;
    memset(&p, 0, sizeof(p));
    snprintf(p.op, sizeof(p.op), "%s", op);
    p.valid = true;
    /* a zone further ahead: fine here */
    p.quality_now = isfinite(dead_in_s) && dead_in_s > 1 ? 0.9 : q;
    p.quality_min = q;
    p.dead_in_s = dead_in_s;
    p.dead_lat = isfinite(dead_in_s) ? 55.7912 : NAN;
    p.dead_lon = isfinite(dead_in_s) ? 37.6011 : NAN;
    /* profile: 5 s slots, fine before the dead zone, q from its slot on */
    p.slot_s = 5;
    for (int k = 0; k < POLICY_SLOTS; k++)
        p.q_profile[k] = isfinite(dead_in_s) && k * 5.0 + 5.0 <= dead_in_s ? 0.9 : q;
    p.confidence = 0.93;
    p.trips = 9;
    return p;
}

struct world {
    size_t n;
    struct policy_link_in in[4];
    struct policy_pred pr[4];
    struct policy_link_state st[4];
    struct policy_out out[4];
    uint64_t now;
};

static void world3(struct world *w)
{
    memset(w, 0, sizeof(*w));
    w->n = 3;
    w->in[0] = link("mts", "250-01");
    w->in[1] = link("beeline", "250-99");
    w->in[2] = link("tele2", "250-20");
    w->pr[0] = pred("250-01", 0.9, INFINITY);
    w->pr[1] = pred("250-99", 0.9, INFINITY);
    w->pr[2] = pred("250-20", 0.9, INFINITY);
    w->now = 1000000;
}

static void step(struct world *w, double secs)
{
    w->now += (uint64_t)(secs * 1000);
    policy_decide(&prm, w->now, w->in, w->n, w->pr, w->n, w->st, w->out);
}

static void test_baseline(void)
{
    struct world w;
    world3(&w);
    step(&w, 0);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(w.out[i].state, POLICY_ACTIVE);
        CHECK_NEAR(w.out[i].weight, 1.0, 1e-9);
        CHECK(!w.out[i].changed);
    }
    CHECK_STR(w.out[0].reason,
              "mts: active, predicted quality 0.90 ahead (9 trips, confidence 0.93)");
    /* no prediction at all */
    policy_decide(&prm, w.now + 1000, w.in, 3, NULL, 0, w.st, w.out);
    CHECK_STR(w.out[1].reason, "beeline: active, no prediction");
    CHECK_NEAR(w.out[1].weight, 1.0, 1e-9);
}

static void test_predicted_dead(void)
{
    struct world w;
    world3(&w);
    w.in[0].drain_ms = 11000; /* lead = 11 + 3 = 14 s */
    step(&w, 0);
    w.pr[0] = pred("250-01", 0.0, 15);
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_ACTIVE); /* 15 s > lead */
    w.pr[0] = pred("250-01", 0.0, 14);
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_DRAINING);
    CHECK(w.out[0].changed);
    CHECK_NEAR(w.out[0].weight, 0.0, 1e-9);
    CHECK_STR(w.out[0].reason,
              "mts: draining, dead zone predicted in 14 s at 55.7912,37.6011 (9 trips, "
              "confidence 0.93)");
    /* the others are untouched */
    CHECK_INT(w.out[1].state, POLICY_ACTIVE);
    CHECK_NEAR(w.out[1].weight, 1.0, 1e-9);
    /* draining lasts the drain time, then disabled */
    step(&w, 5);
    CHECK_INT(w.out[0].state, POLICY_DRAINING);
    CHECK(!w.out[0].changed);
    step(&w, 6);
    CHECK_INT(w.out[0].state, POLICY_DISABLED_PREDICTED);
    CHECK(w.out[0].changed);
    CHECK_STR(w.out[0].reason,
              "mts: disabled, dead zone predicted in 14 s at 55.7912,37.6011 (9 trips, "
              "confidence 0.93)");
    /* no drain time: straight to disabled */
    world3(&w);
    w.in[2].drain_ms = 0;
    step(&w, 0);
    w.pr[2] = pred("250-20", 0.0, 2);
    step(&w, 1);
    CHECK_INT(w.out[2].state, POLICY_DISABLED_PREDICTED);
    /* a prediction below min_confidence is ignored */
    world3(&w);
    step(&w, 0);
    w.pr[0] = pred("250-01", 0.0, 1);
    w.pr[0].confidence = 0.3;
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_ACTIVE);
    /* invalid predictions too */
    w.pr[0].confidence = 0.99;
    w.pr[0].valid = false;
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_ACTIVE);
}

static void test_far_below(void)
{
    struct world w;
    world3(&w);
    w.in[0].drain_ms = 0;
    step(&w, 0);
    w.pr[0] = pred("250-01", 0.2, INFINITY); /* < 0.3 x 0.9 */
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_DISABLED_PREDICTED);
    CHECK_STR(w.out[0].reason, "mts: disabled, predicted quality 0.20 far below 0.90 of beeline "
                               "(9 trips, confidence 0.93)");
    /* inside the hysteresis band (0.3..0.5 x best) it stays out */
    w.pr[0] = pred("250-01", 0.35, INFINITY);
    for (int i = 0; i < 6; i++)
        step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_DISABLED_PREDICTED);
    /* above the exit ratio and live good: back after ease_in_s */
    w.pr[0] = pred("250-01", 0.6, INFINITY);
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_DISABLED_PREDICTED);
    step(&w, 3);
    CHECK_INT(w.out[0].state, POLICY_ACTIVE);
    /* only "far below" when the others are good: everybody mediocre is not a reason */
    world3(&w);
    for (int i = 0; i < 3; i++)
        w.pr[i] = pred(w.pr[i].op, 0.3, INFINITY);
    w.pr[0] = pred("250-01", 0.05, INFINITY);
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_ACTIVE);
    /* entering the band from above does not disable: 0.35 < 0.5 x 0.9 but > 0.3 x 0.9 */
    world3(&w);
    w.pr[0] = pred("250-01", 0.35, INFINITY);
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_ACTIVE);
    /* "far below" needs others that can take the traffic now: with beeline off (predicted
     * dead) and tele2 still easing back in, mts stays; once tele2 is at full weight it goes */
    world3(&w);
    w.in[0].drain_ms = 0;
    w.in[1].drain_ms = 0;
    w.in[2].drain_ms = 0;
    step(&w, 0);
    w.pr[1] = pred("250-99", 0.0, 1);
    w.pr[2] = pred("250-20", 0.0, 1);
    step(&w, 1);
    CHECK_INT(w.out[1].state, POLICY_DISABLED_PREDICTED);
    CHECK_INT(w.out[2].state, POLICY_DISABLED_PREDICTED);
    w.pr[2] = pred("250-20", 0.9, INFINITY); /* tele2's zone is behind: it eases back in */
    for (int i = 0; i < 10 && w.out[2].state != POLICY_ACTIVE; i++)
        step(&w, 1);
    CHECK_INT(w.out[2].state, POLICY_ACTIVE);
    CHECK(w.out[2].weight < 1.0);
    w.pr[0] = pred("250-01", 0.2, INFINITY); /* far below tele2's 0.9 ... */
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_ACTIVE); /* ... but tele2 is at 0.34-0.68 */
    CHECK_NEAR(w.out[0].weight, 1.0, 1e-9);
    for (int i = 0; i < 3; i++)
        step(&w, 1);
    CHECK_NEAR(w.st[2].weight, 1.0, 1e-9);
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_DISABLED_PREDICTED);
    CHECK(strstr(w.out[0].reason, "far below 0.90 of tele2") != NULL);
}

static void test_ease_back(void)
{
    struct world w;
    world3(&w);
    w.in[0].drain_ms = 0;
    step(&w, 0);
    w.pr[0] = pred("250-01", 0.0, 2);
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_DISABLED_PREDICTED);
    /* in the dead zone: live probes bad, prediction dead now */
    w.pr[0] = pred("250-01", 0.0, 0);
    w.in[0].up = false;
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_DISABLED_LIVE);
    CHECK_STR(w.out[0].reason, "mts: disabled, link down (live)");
    /* out of it: prediction good, link back up; needs 3 s of both */
    w.pr[0] = pred("250-01", 0.9, INFINITY);
    w.in[0].up = true;
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_DISABLED_LIVE);
    CHECK(strstr(w.out[0].reason, "recovering (good for 0 of 3 s)") != NULL);
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_DISABLED_LIVE);
    /* a bad probe in between restarts the count */
    w.in[0].loss = 0.2;
    step(&w, 1);
    w.in[0].loss = 0;
    step(&w, 1);
    step(&w, 1);
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_DISABLED_LIVE);
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_ACTIVE);
    CHECK(w.out[0].changed);
    CHECK_NEAR(w.out[0].weight, 0.34, 1e-9);
    CHECK(strstr(w.out[0].reason, "mts: active, easing back in (weight 0.34)") != NULL);
    step(&w, 1);
    CHECK_NEAR(w.out[0].weight, 0.68, 1e-9);
    step(&w, 1);
    CHECK_NEAR(w.out[0].weight, 1.0, 1e-9);
    CHECK(!w.out[0].changed);
    /* prediction good but live not good enough: stays out */
    world3(&w);
    w.in[0].drain_ms = 0;
    step(&w, 0);
    w.pr[0] = pred("250-01", 0.0, 1);
    step(&w, 1);
    w.pr[0] = pred("250-01", 0.9, INFINITY);
    w.in[0].rsrp_dbm = -112;
    for (int i = 0; i < 10; i++)
        step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_DISABLED_PREDICTED);
}

/* A weak but working link that went down (no prediction involved) comes back once it carries
 * traffic again: the radio thresholds only gate the return from a predicted dead zone. */
static void test_weak_link_returns(void)
{
    struct world w;
    world3(&w);
    w.pr[0] = pred("250-99", 0.9, INFINITY); /* no prediction for link 0's operator */
    w.in[0].rsrp_dbm = -114;
    w.in[0].sinr_db = 1;
    step(&w, 0);
    w.in[0].up = false;
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_DISABLED_LIVE);
    w.in[0].up = true;
    for (int i = 0; i < 3; i++)
        step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_DISABLED_LIVE); /* good for 2 of 3 s */
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_ACTIVE);
    CHECK_NEAR(w.out[0].weight, 0.34, 1e-9);
    /* ... but a lossy one stays out */
    world3(&w);
    step(&w, 0);
    w.in[0].up = false;
    step(&w, 1);
    w.in[0].up = true;
    w.in[0].loss = 0.1;
    for (int i = 0; i < 10; i++)
        step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_DISABLED_LIVE);
}

static void test_live_wins(void)
{
    struct world w;
    world3(&w);
    step(&w, 0);
    /* map: dead zone here, now; live: strongly good. Live wins, for override_s. */
    w.pr[0] = pred("250-01", 0.0, 0);
    w.in[0].rsrp_dbm = -85;
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_ACTIVE);
    CHECK_NEAR(w.out[0].weight, 1.0, 1e-9);
    CHECK_STR(w.out[0].reason, "mts: active, live good (rsrp -85 dBm) overrides the map (9 trips, "
                               "confidence 0.93)");
    w.pr[0] = pred("250-01", 0.0, 3); /* the next bit of the same stale zone */
    w.in[0].rsrp_dbm = -100;          /* merely good now */
    for (int i = 0; i < 20; i++)
        step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_ACTIVE);
    /* after override_s the map counts again */
    for (int i = 0; i < 11; i++)
        step(&w, 1);
    CHECK(w.out[0].state != POLICY_ACTIVE);
    /* an already disabled link whose probes are strongly good inside the zone comes back */
    world3(&w);
    w.in[1].drain_ms = 0;
    step(&w, 0);
    w.pr[1] = pred("250-99", 0.0, 2);
    step(&w, 1);
    CHECK_INT(w.out[1].state, POLICY_DISABLED_PREDICTED);
    w.pr[1] = pred("250-99", 0.0, 0);
    w.in[1].rsrp_dbm = -80;
    step(&w, 1);
    step(&w, 3);
    CHECK_INT(w.out[1].state, POLICY_ACTIVE);
    /* the map says good, live says down: live wins at once */
    world3(&w);
    step(&w, 0);
    w.in[2].up = false;
    step(&w, 1);
    CHECK_INT(w.out[2].state, POLICY_DISABLED_LIVE);
    CHECK_NEAR(w.out[2].weight, 0.0, 1e-9);
    /* heavy loss must last live_bad_s */
    world3(&w);
    step(&w, 0);
    w.in[2].loss = 0.5;
    step(&w, 1);
    CHECK_INT(w.out[2].state, POLICY_ACTIVE);
    step(&w, 1);
    CHECK_INT(w.out[2].state, POLICY_ACTIVE);
    step(&w, 1);
    CHECK_INT(w.out[2].state, POLICY_DISABLED_LIVE);
    CHECK_STR(w.out[2].reason, "tele2: disabled, live loss 50% for 2 s");
}

static void test_last_link(void)
{
    struct world w;
    world3(&w);
    for (int i = 0; i < 3; i++)
        w.in[i].drain_ms = 0;
    step(&w, 0);
    /* beeline and tele2 down, mts predicted dead: mts is kept */
    w.in[1].up = false;
    w.in[2].up = false;
    w.pr[0] = pred("250-01", 0.0, 2);
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_ACTIVE);
    CHECK_NEAR(w.out[0].weight, 1.0, 1e-9);
    CHECK(!w.out[0].changed);
    CHECK_STR(w.out[0].reason, "mts: active, kept as the last usable link, dead zone predicted in "
                               "2 s at 55.7912,37.6011 (9 trips, confidence 0.93)");
    for (int i = 0; i < 5; i++) {
        step(&w, 1);
        CHECK_INT(w.out[0].state, POLICY_ACTIVE);
        CHECK(!w.out[0].changed); /* no event spam every second */
    }
    /* tele2 comes back: after ease-in it takes over and mts goes */
    w.in[2].up = true;
    step(&w, 1);
    /* tele2 is usable and predicted fine: it is the better last link at once, mts goes */
    CHECK_INT(w.out[2].state, POLICY_ACTIVE);
    CHECK(w.out[2].weight > 0);
    CHECK(strstr(w.out[2].reason, "tele2: active, kept as the last usable link") != NULL);
    CHECK_INT(w.out[0].state, POLICY_DISABLED_PREDICTED);
    CHECK(w.out[0].changed);
    step(&w, 1);
    CHECK_INT(w.out[2].state, POLICY_ACTIVE);
    CHECK(!w.out[2].changed);
    /* two predicted dead: the one whose zone is further away is kept */
    world3(&w);
    w.n = 2;
    for (int i = 0; i < 2; i++)
        w.in[i].drain_ms = 0;
    step(&w, 0);
    w.pr[0] = pred("250-01", 0.0, 1);
    w.pr[1] = pred("250-99", 0.0, 2.5);
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_DISABLED_PREDICTED);
    CHECK_INT(w.out[1].state, POLICY_ACTIVE);
    /* everything down: still one link with weight */
    world3(&w);
    step(&w, 0);
    for (int i = 0; i < 3; i++)
        w.in[i].up = false;
    step(&w, 1);
    int with_weight = 0;
    for (int i = 0; i < 3; i++)
        with_weight += w.out[i].weight > 0;
    CHECK_INT(with_weight, 1);
    CHECK(strstr(w.out[0].reason, "all down") != NULL);
    /* a single link is never disabled by prediction */
    world3(&w);
    w.n = 1;
    w.in[0].drain_ms = 0;
    step(&w, 0);
    w.pr[0] = pred("250-01", 0.0, 1);
    step(&w, 1);
    CHECK_INT(w.out[0].state, POLICY_ACTIVE);
    CHECK_NEAR(w.out[0].weight, 1.0, 1e-9);
}

static void test_no_flapping(void)
{
    struct world w;
    world3(&w);
    w.in[0].drain_ms = 0;
    step(&w, 0);
    /* the prediction flickers every second between dead ahead and clear */
    int changes = 0;
    for (int i = 0; i < 30; i++) {
        w.pr[0] = pred("250-01", i % 2 ? 0.9 : 0.0, i % 2 ? INFINITY : 2);
        step(&w, 1);
        changes += w.out[0].changed;
    }
    CHECK_MSG(changes == 1, "%d state changes in 30 s of flicker", changes);
    /* live RSRP hovering at the good threshold does not flap the weight either */
    world3(&w);
    w.in[1].drain_ms = 0;
    step(&w, 0);
    w.pr[1] = pred("250-99", 0.0, 1);
    step(&w, 1);
    w.pr[1] = pred("250-99", 0.9, INFINITY);
    changes = 0;
    for (int i = 0; i < 30; i++) {
        w.in[1].rsrp_dbm = i % 3 == 0 ? -106 : -104;
        step(&w, 1);
        changes += w.out[1].changed;
    }
    CHECK_MSG(changes == 0, "%d changes with a flickering RSRP", changes);
}

static void test_pure(void)
{
    /* same inputs + same state in = same outputs: no hidden state */
    struct world a, b;
    world3(&a);
    a.pr[0] = pred("250-01", 0.0, 3);
    a.in[2].loss = 0.4;
    step(&a, 1);
    step(&a, 1);
    b = a;
    step(&a, 1);
    step(&b, 1);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(a.out[i].state, b.out[i].state);
        CHECK_NEAR(a.out[i].weight, b.out[i].weight, 0);
        CHECK_STR(a.out[i].reason, b.out[i].reason);
    }
    CHECK_STR(policy_state_name(POLICY_DISABLED_PREDICTED), "disabled-predicted");
    /* zero links, NULL params: nothing to do, no crash */
    policy_decide(NULL, 1, NULL, 0, NULL, 0, NULL, NULL);
    /* NaN everywhere is "unknown", not bad */
    world3(&a);
    a.in[0].loss = NAN;
    a.in[0].rsrp_dbm = NAN;
    a.in[0].sinr_db = NAN;
    a.in[0].drain_ms = NAN;
    a.pr[0].quality_min = NAN;
    step(&a, 1);
    CHECK_INT(a.out[0].state, POLICY_ACTIVE);
}

int main(void)
{
    policy_params_default(&prm);
    test_baseline();
    test_predicted_dead();
    test_far_below();
    test_ease_back();
    test_weak_link_returns();
    test_live_wins();
    test_last_link();
    test_no_flapping();
    test_pure();
    return test_summary();
}
