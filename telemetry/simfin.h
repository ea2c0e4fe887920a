/* simfin: SIM finances from the balance history (telemetry/, pure functions).
 *
 * The spend rate is the sum of the balance DROPS over the observed span divided by that span:
 * a top-up (the balance going up) is not negative spending, so it is skipped rather than
 * fitted. The forecast is the time the current balance lasts at that rate. */
#ifndef CORRIDOR_TELEMETRY_SIMFIN_H
#define CORRIDOR_TELEMETRY_SIMFIN_H

#include <stddef.h>
#include <stdint.h>

#define SIMFIN_HISTORY 64 /* balance points kept per SIM (a few weeks at 4-hourly polls) */

struct simfin {
    unsigned n;
    int64_t t[SIMFIN_HISTORY]; /* unix seconds, increasing */
    double bal[SIMFIN_HISTORY];
};

/* Add a point (ignored if NAN or not newer than the last one); the oldest falls out. */
void simfin_add(struct simfin *f, int64_t t, double balance);
/* Spend per day over the history (>= 0), NAN with fewer than 2 points or a span under 1 h. */
double simfin_rate_per_day(const struct simfin *f);
/* When the last balance runs out at that rate: unix seconds, or -1 (unknown / not spending).
 * An already exhausted balance (<= 0) returns the time of that reading. */
int64_t simfin_forecast_empty(const struct simfin *f);

#endif
