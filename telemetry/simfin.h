/* simfin: SIM finances: spend rate and run-out forecast from the balance history (pure
 * functions), and the data used per SIM persisted across restarts (simusage_*, sqlite).
 *
 * The spend rate is the sum of the balance DROPS over the observed span divided by that span:
 * a top-up (the balance going up) is not negative spending, so it is skipped rather than
 * fitted. The forecast is the time the current balance lasts at that rate. */
#ifndef CORRIDOR_TELEMETRY_SIMFIN_H
#define CORRIDOR_TELEMETRY_SIMFIN_H

#include <stdbool.h>
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

/* ---- data used per SIM, persisted ----------------------------------------------------------
 * Bytes through each SIM's link, per SIM (ICCID), per UTC day and in total, kept in sqlite (its
 * own tables sim_usage_total / sim_usage_day in the outbox file, docs/telemetry.md "Data used
 * per SIM") so they survive restarts and power cuts.
 *
 * The caller feeds the link interface's cumulative kernel counters (rx = down, tx = up) with a
 * counter_id naming that counter instance ("<boot id>/<ifname>/<ifindex>"). The last counter
 * values are persisted with the totals in the same transaction, so after a restart (even after
 * kill -9) counting resumes from the persisted counter: the traffic between the last flush and
 * the restart is not lost. Only when the counter itself is new (reboot, interface re-created,
 * counter went backwards) does the first reading just set the baseline, losing at most the
 * traffic since the last reading.
 *
 * One struct simusage is one sqlite connection used by one thread (the recorder's). */
#define SIMUSAGE_MAX_SIMS  32  /* SIMs tracked in memory (a box has at most 16 slots) */
#define SIMUSAGE_KEEP_DAYS 400 /* per-day rows older than this are deleted; totals stay */
#define SIMUSAGE_ID_MAX    32
#define SIMUSAGE_CTR_MAX   96

struct simusage_totals {
    uint64_t up, down;             /* since the SIM was first seen by this box */
    uint64_t today_up, today_down; /* the UTC day of now_ms */
    uint64_t month_up, month_down; /* the UTC calendar month of now_ms */
};

struct simusage;

/* Opens (creating the tables) the sqlite file at path; WAL, synchronous=FULL. */
struct simusage *simusage_open(const char *path, char *err, size_t errlen);
/* Flushes nothing: call simusage_flush first to keep the last readings. NULL is fine. */
void simusage_close(struct simusage *u);
/* One reading of the cumulative counters of the SIM's link at now_ms (wall ms). In memory
 * only. -1 (err) for an empty/overlong iccid or counter_id, or a table already full of SIMs. */
int simusage_observe(struct simusage *u, const char *iccid, const char *counter_id,
                     uint64_t rx_bytes, uint64_t tx_bytes, int64_t now_ms, char *err,
                     size_t errlen);
/* Persist everything observed since the last flush in ONE transaction (durable on return), and
 * delete day rows older than SIMUSAGE_KEEP_DAYS. 0 or -1 (err; retried on the next flush). */
int simusage_flush(struct simusage *u, int64_t now_ms, char *err, size_t errlen);
/* Totals of a SIM as of now_ms (unflushed readings included). 0, or -1 if the SIM is unknown
 * (t zeroed) or the database cannot be read. */
int simusage_get(struct simusage *u, const char *iccid, int64_t now_ms, struct simusage_totals *t,
                 char *err, size_t errlen);

#endif
