/* simfin: SIM spend rate and run-out forecast. See simfin.h. */
#include "telemetry/simfin.h"

#include "common/common.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* ---- data used per SIM --------------------------------------------------------------------- */

#define DAY_MS 86400000LL

struct su_entry {
    char iccid[SIMUSAGE_ID_MAX];
    char ctr[SIMUSAGE_CTR_MAX]; /* counter instance of the last reading, "" none */
    uint64_t ctr_rx, ctr_tx;    /* its values */
    uint64_t up, down;          /* totals */
    int64_t day;                /* UTC day (unix ms / DAY_MS) of day_*, -1 = not loaded */
    uint64_t day_up, day_down;
    int month; /* year * 12 + month of month_*, -1 = not loaded */
    uint64_t month_up, month_down;
    /* a day that ended before it was flushed (written by the next flush) */
    int64_t prev_day;
    uint64_t prev_up, prev_down;
    bool prev_dirty, dirty;
};

struct simusage {
    sqlite3 *db;
    unsigned n;
    struct su_entry e[SIMUSAGE_MAX_SIMS];
};

static const char SU_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS sim_usage_total(iccid TEXT PRIMARY KEY, counter TEXT NOT NULL,"
    " counter_rx INTEGER NOT NULL, counter_tx INTEGER NOT NULL, up INTEGER NOT NULL,"
    " down INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS sim_usage_day(iccid TEXT NOT NULL, day INTEGER NOT NULL,"
    " up INTEGER NOT NULL, down INTEGER NOT NULL, PRIMARY KEY(iccid, day));";

static int su_fail(struct simusage *u, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "sim usage: %s: %s", what, sqlite3_errmsg(u->db));
    return -1;
}

static int64_t day_of(int64_t ms)
{
    return ms >= 0 ? ms / DAY_MS : -((-ms + DAY_MS - 1) / DAY_MS);
}

/* year*12+month of a UTC day, and the first day of that month. */
static int month_of(int64_t day, int64_t *first_day)
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    if (first_day)
        *first_day = day - (tm.tm_mday - 1);
    return (tm.tm_year + 1900) * 12 + tm.tm_mon;
}

static uint64_t col_u64(sqlite3_stmt *st, int i)
{
    sqlite3_int64 v = sqlite3_column_int64(st, i);
    return v < 0 ? 0 : (uint64_t)v;
}

struct simusage *simusage_open(const char *path, char *err, size_t errlen)
{
    struct simusage *u = calloc(1, sizeof *u);
    if (!u) {
        snprintf(err, errlen, "sim usage: out of memory");
        return NULL;
    }
    if (sqlite3_open_v2(path, &u->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "sim usage: %s: %s", path,
                 u->db ? sqlite3_errmsg(u->db) : "cannot open");
        goto fail;
    }
    /* the recorder's outbox connection and the uploader share the file: wait, don't fail */
    sqlite3_busy_timeout(u->db, 5000);
    if (sqlite3_exec(u->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(u->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(u->db, SU_SCHEMA, NULL, NULL, NULL) != SQLITE_OK) {
        su_fail(u, path, err, errlen);
        goto fail;
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(u->db,
                           "SELECT iccid, counter, counter_rx, counter_tx, up, down FROM"
                           " sim_usage_total ORDER BY updated_ms DESC LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK) {
        su_fail(u, "load", err, errlen);
        goto fail;
    }
    sqlite3_bind_int(st, 1, SIMUSAGE_MAX_SIMS);
    while (sqlite3_step(st) == SQLITE_ROW && u->n < SIMUSAGE_MAX_SIMS) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const char *ctr = (const char *)sqlite3_column_text(st, 1);
        if (!id || !id[0] || strlen(id) >= SIMUSAGE_ID_MAX)
            continue;
        struct su_entry *e = &u->e[u->n++];
        str_copy(e->iccid, id, sizeof e->iccid);
        str_copy(e->ctr, ctr ? ctr : "", sizeof e->ctr);
        e->ctr_rx = col_u64(st, 2);
        e->ctr_tx = col_u64(st, 3);
        e->up = col_u64(st, 4);
        e->down = col_u64(st, 5);
        e->day = -1;
        e->month = -1;
    }
    sqlite3_finalize(st);
    return u;
fail:
    sqlite3_close(u->db);
    free(u);
    return NULL;
}

void simusage_close(struct simusage *u)
{
    if (!u)
        return;
    sqlite3_close(u->db);
    free(u);
}

static struct su_entry *su_find(struct simusage *u, const char *iccid)
{
    for (unsigned i = 0; i < u->n; i++)
        if (strcmp(u->e[i].iccid, iccid) == 0)
            return &u->e[i];
    return NULL;
}

/* Sum of the stored day rows of a SIM in [from, to]. */
static int su_sum_days(struct simusage *u, const char *iccid, int64_t from, int64_t to,
                       uint64_t *up, uint64_t *down)
{
    sqlite3_stmt *st;
    *up = *down = 0;
    if (sqlite3_prepare_v2(u->db,
                           "SELECT COALESCE(SUM(up),0), COALESCE(SUM(down),0) FROM sim_usage_day"
                           " WHERE iccid=? AND day BETWEEN ? AND ?",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, iccid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    int rc = -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *up = col_u64(st, 0);
        *down = col_u64(st, 1);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Make e's day and month counters those of `day`, loading them from the database when the
 * day or month changed (a restart, midnight UTC). */
static int su_period(struct simusage *u, struct su_entry *e, int64_t day, char *err, size_t errlen)
{
    int64_t first;
    int month = month_of(day, &first);
    if (e->day != day) {
        if (e->day >= 0 && e->dirty && (e->day_up || e->day_down)) {
            /* yesterday's last seconds are not on disk yet: the next flush writes them */
            e->prev_day = e->day;
            e->prev_up = e->day_up;
            e->prev_down = e->day_down;
            e->prev_dirty = true;
        }
        if (su_sum_days(u, e->iccid, day, day, &e->day_up, &e->day_down) != 0)
            return su_fail(u, "read day", err, errlen);
        e->day = day;
    }
    if (e->month != month) {
        /* the stored days of the month, plus an unflushed previous day of the same month */
        if (su_sum_days(u, e->iccid, first, day, &e->month_up, &e->month_down) != 0)
            return su_fail(u, "read month", err, errlen);
        if (e->prev_dirty && e->prev_day >= first && e->prev_day < day) {
            uint64_t pu, pd;
            if (su_sum_days(u, e->iccid, e->prev_day, e->prev_day, &pu, &pd) != 0)
                return su_fail(u, "read day", err, errlen);
            e->month_up += e->prev_up - (pu < e->prev_up ? pu : e->prev_up);
            e->month_down += e->prev_down - (pd < e->prev_down ? pd : e->prev_down);
        }
        e->month = month;
    }
    return 0;
}

int simusage_observe(struct simusage *u, const char *iccid, const char *counter_id,
                     uint64_t rx_bytes, uint64_t tx_bytes, int64_t now_ms, char *err, size_t errlen)
{
    if (!iccid || !iccid[0] || strlen(iccid) >= SIMUSAGE_ID_MAX || !counter_id || !counter_id[0] ||
        strlen(counter_id) >= SIMUSAGE_CTR_MAX) {
        snprintf(err, errlen, "sim usage: bad ICCID or counter id");
        return -1;
    }
    struct su_entry *e = su_find(u, iccid);
    if (!e) {
        if (u->n == SIMUSAGE_MAX_SIMS) {
            snprintf(err, errlen, "sim usage: %u SIMs tracked already, %s ignored",
                     SIMUSAGE_MAX_SIMS, iccid);
            return -1;
        }
        e = &u->e[u->n++];
        memset(e, 0, sizeof *e);
        str_copy(e->iccid, iccid, sizeof e->iccid);
        e->day = -1;
        e->month = -1;
    }
    if (su_period(u, e, day_of(now_ms), err, errlen) != 0)
        return -1;
    /* Only a continuation of the same counter instance counts; anything else (first sight,
     * another interface, a counter that went backwards) just becomes the new baseline. */
    if (strcmp(e->ctr, counter_id) == 0 && rx_bytes >= e->ctr_rx && tx_bytes >= e->ctr_tx) {
        uint64_t down = rx_bytes - e->ctr_rx, up = tx_bytes - e->ctr_tx;
        e->down += down;
        e->up += up;
        e->day_down += down;
        e->day_up += up;
        e->month_down += down;
        e->month_up += up;
    } else {
        str_copy(e->ctr, counter_id, sizeof e->ctr);
    }
    e->ctr_rx = rx_bytes;
    e->ctr_tx = tx_bytes;
    e->dirty = true;
    return 0;
}

static int put_day(sqlite3_stmt *st, const char *iccid, int64_t day, uint64_t up, uint64_t down)
{
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, iccid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, day);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)up);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)down);
    return sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
}

int simusage_flush(struct simusage *u, int64_t now_ms, char *err, size_t errlen)
{
    bool any = false;
    for (unsigned i = 0; i < u->n; i++)
        any |= u->e[i].dirty || u->e[i].prev_dirty;
    if (!any)
        return 0;
    sqlite3_stmt *tot = NULL, *day = NULL, *prune = NULL;
    if (sqlite3_exec(u->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return su_fail(u, "begin", err, errlen);
    int rc = -1;
    if (sqlite3_prepare_v2(u->db,
                           "INSERT OR REPLACE INTO sim_usage_total(iccid, counter, counter_rx,"
                           " counter_tx, up, down, updated_ms) VALUES(?,?,?,?,?,?,?)",
                           -1, &tot, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(u->db,
                           "INSERT OR REPLACE INTO sim_usage_day(iccid, day, up, down)"
                           " VALUES(?,?,?,?)",
                           -1, &day, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(u->db, "DELETE FROM sim_usage_day WHERE day < ?", -1, &prune, NULL) !=
            SQLITE_OK) {
        su_fail(u, "prepare", err, errlen);
        goto out;
    }
    for (unsigned i = 0; i < u->n; i++) {
        struct su_entry *e = &u->e[i];
        if (e->prev_dirty && put_day(day, e->iccid, e->prev_day, e->prev_up, e->prev_down)) {
            su_fail(u, "write day", err, errlen);
            goto out;
        }
        if (!e->dirty)
            continue;
        sqlite3_reset(tot);
        sqlite3_bind_text(tot, 1, e->iccid, -1, SQLITE_STATIC);
        sqlite3_bind_text(tot, 2, e->ctr, -1, SQLITE_STATIC);
        /* sqlite integers are signed 64 bit: counters beyond 2^63 do not exist in practice */
        sqlite3_bind_int64(tot, 3, (sqlite3_int64)(e->ctr_rx & INT64_MAX));
        sqlite3_bind_int64(tot, 4, (sqlite3_int64)(e->ctr_tx & INT64_MAX));
        sqlite3_bind_int64(tot, 5, (sqlite3_int64)(e->up & INT64_MAX));
        sqlite3_bind_int64(tot, 6, (sqlite3_int64)(e->down & INT64_MAX));
        sqlite3_bind_int64(tot, 7, now_ms);
        if (sqlite3_step(tot) != SQLITE_DONE) {
            su_fail(u, "write total", err, errlen);
            goto out;
        }
        if (e->day >= 0 && put_day(day, e->iccid, e->day, e->day_up, e->day_down)) {
            su_fail(u, "write day", err, errlen);
            goto out;
        }
    }
    sqlite3_bind_int64(prune, 1, day_of(now_ms) - SIMUSAGE_KEEP_DAYS);
    if (sqlite3_step(prune) != SQLITE_DONE) {
        su_fail(u, "prune", err, errlen);
        goto out;
    }
    if (sqlite3_exec(u->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        su_fail(u, "commit", err, errlen);
        goto out;
    }
    rc = 0;
    for (unsigned i = 0; i < u->n; i++)
        u->e[i].dirty = u->e[i].prev_dirty = false;
out:
    sqlite3_finalize(tot);
    sqlite3_finalize(day);
    sqlite3_finalize(prune);
    if (rc != 0)
        sqlite3_exec(u->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int simusage_get(struct simusage *u, const char *iccid, int64_t now_ms, struct simusage_totals *t,
                 char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    struct su_entry *e = iccid ? su_find(u, iccid) : NULL;
    if (!e) {
        snprintf(err, errlen, "sim usage: SIM %s not seen", iccid ? iccid : "(null)");
        return -1;
    }
    int64_t day = day_of(now_ms);
    if (day > e->day && su_period(u, e, day, err, errlen) != 0)
        return -1;
    t->up = e->up;
    t->down = e->down;
    /* a clock that went back: the counters of the newer day/month are the latest known */
    t->today_up = e->day_up;
    t->today_down = e->day_down;
    t->month_up = e->month_up;
    t->month_down = e->month_down;
    return 0;
}
