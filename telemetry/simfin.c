/* simfin: SIM spend rate and run-out forecast. See simfin.h. */
#include "telemetry/simfin.h"

#include <math.h>
#include <string.h>

void simfin_add(struct simfin *f, int64_t t, double balance)
{
    if (isnan(balance) || (f->n && t <= f->t[f->n - 1]))
        return;
    if (f->n == SIMFIN_HISTORY) {
        memmove(f->t, f->t + 1, (SIMFIN_HISTORY - 1) * sizeof f->t[0]);
        memmove(f->bal, f->bal + 1, (SIMFIN_HISTORY - 1) * sizeof f->bal[0]);
        f->n--;
    }
    f->t[f->n] = t;
    f->bal[f->n] = balance;
    f->n++;
}

double simfin_rate_per_day(const struct simfin *f)
{
    if (f->n < 2)
        return NAN;
    double span = (double)(f->t[f->n - 1] - f->t[0]);
    if (span < 3600.0)
        return NAN;
    double spent = 0;
    for (unsigned i = 1; i < f->n; i++)
        if (f->bal[i] < f->bal[i - 1])
            spent += f->bal[i - 1] - f->bal[i];
    return spent / span * 86400.0;
}

int64_t simfin_forecast_empty(const struct simfin *f)
{
    if (!f->n)
        return -1;
    double last = f->bal[f->n - 1];
    if (last <= 0)
        return f->t[f->n - 1];
    double rate = simfin_rate_per_day(f);
    if (!(rate > 0))
        return -1;
    double days = last / rate;
    if (days > 3650)
        return -1; /* ten years: not a forecast worth stating */
    return f->t[f->n - 1] + (int64_t)(days * 86400.0);
}
