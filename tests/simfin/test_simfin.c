/* test_simfin: spend rate and run-out forecast from a balance history. */
#include "telemetry/simfin.h"
#include "testlib.h"

#define DAY 86400

int main(void)
{
    struct simfin f = {0};
    CHECK_NAN(simfin_rate_per_day(&f));
    CHECK_INT(simfin_forecast_empty(&f), -1);
    int64_t t0 = 1790000000;
    simfin_add(&f, t0, 100.0);
    CHECK_NAN(simfin_rate_per_day(&f));
    simfin_add(&f, t0 + 600, 99.0); /* 10 minutes: too short to say */
    CHECK_NAN(simfin_rate_per_day(&f));
    /* 10 per day for 3 days, with a top-up of +50 on day 2 that is not "negative spend" */
    struct simfin g = {0};
    simfin_add(&g, t0, 100.0);
    simfin_add(&g, t0 + DAY, 90.0);
    simfin_add(&g, t0 + 2 * DAY - 1, 80.0);
    simfin_add(&g, t0 + 2 * DAY, 130.0); /* top-up */
    simfin_add(&g, t0 + 3 * DAY, 120.0);
    CHECK_NEAR(simfin_rate_per_day(&g), 30.0 / 3.0, 1e-3);
    /* 120 left at 10/day: empty 12 days after the last reading */
    CHECK_NEAR((double)simfin_forecast_empty(&g), (double)(t0 + 3 * DAY + 12 * DAY), 60.0);
    /* ignored points: NAN, not newer */
    simfin_add(&g, t0 + 3 * DAY, 0.0);
    simfin_add(&g, t0 + 4 * DAY, NAN);
    CHECK_INT(g.n, 5);
    /* not spending: no forecast */
    struct simfin h = {0};
    simfin_add(&h, t0, 50);
    simfin_add(&h, t0 + DAY, 50);
    CHECK_NEAR(simfin_rate_per_day(&h), 0.0, 1e-12);
    CHECK_INT(simfin_forecast_empty(&h), -1);
    /* exhausted: the time of that reading */
    simfin_add(&h, t0 + 2 * DAY, -3.5);
    CHECK_INT(simfin_forecast_empty(&h), t0 + 2 * DAY);
    /* history is bounded, oldest drop out */
    struct simfin k = {0};
    for (int i = 0; i < SIMFIN_HISTORY + 10; i++)
        simfin_add(&k, t0 + (int64_t)i * 3600, 1000.0 - i);
    CHECK_INT(k.n, SIMFIN_HISTORY);
    CHECK_INT(k.t[0], t0 + 10 * 3600);
    CHECK_NEAR(simfin_rate_per_day(&k), 24.0, 1e-6);
    return test_summary();
}
