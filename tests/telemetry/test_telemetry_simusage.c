/* Data used per SIM (telemetry/simfin.h simusage_*): counting from interface counters, day and
 * month roll-over (UTC), restarts that resume from the persisted counter, counter resets,
 * pruning, bad input and the SIM table bound. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "telemetry/simfin.h"
#include "testlib.h"
#include "tlm_util.h"

#define T0    1769903990000LL /* 2026-01-31 23:59:50 UTC */
#define DAYMS 86400000LL

static char g_db[300];

static struct simusage *reopen(struct simusage *u)
{
    simusage_close(u);
    char err[256] = "";
    u = simusage_open(g_db, err, sizeof err);
    CHECK_MSG(u != NULL, "open: %s", err);
    return u;
}

static void get(struct simusage *u, const char *iccid, int64_t now, struct simusage_totals *t)
{
    char err[256] = "";
    int rc = simusage_get(u, iccid, now, t, err, sizeof err);
    CHECK_MSG(rc == 0, "get %s: %s", iccid, err);
}

/* One reading that must be accepted; a failure names it. */
static void observe(struct simusage *u, const char *iccid, const char *ctr, uint64_t rx,
                    uint64_t tx, int64_t now)
{
    char err[256] = "";
    int rc = simusage_observe(u, iccid, ctr, rx, tx, now, err, sizeof err);
    CHECK_MSG(rc == 0, "observe %s %s rx %llu tx %llu at %lld: %s", iccid, ctr,
              (unsigned long long)rx, (unsigned long long)tx, (long long)now, err);
}

static void test_counting(void)
{
    char err[256] = "";
    struct simusage *u = simusage_open(g_db, err, sizeof err);
    CHECK(u != NULL);
    struct simusage_totals t;
    const char *a = "8944500102198304826";
    /* first reading: baseline only (what went through before is not this run's to count) */
    observe(u, a, "boot1/wwan0/5", 5000, 7000, T0);
    get(u, a, T0, &t);
    CHECK_INT(t.down + t.up, 0);
    observe(u, a, "boot1/wwan0/5", 6000, 7500, T0 + 1000);
    get(u, a, T0 + 1000, &t);
    CHECK_INT(t.down, 1000);
    CHECK_INT(t.up, 500);
    CHECK_INT(t.today_down, 1000);
    CHECK_INT(t.month_up, 500);
    CHECK_INT(simusage_flush(u, T0 + 1000, err, sizeof err), 0);

    /* midnight: 2026-02-01 starts a new day and a new month; January keeps its bytes */
    observe(u, a, "boot1/wwan0/5", 9000, 8500, T0 + 11000);
    get(u, a, T0 + 11000, &t);
    CHECK_INT(t.down, 4000);
    CHECK_INT(t.up, 1500);
    CHECK_INT(t.today_down, 3000);
    CHECK_INT(t.today_up, 1000);
    CHECK_INT(t.month_down, 3000);
    /* a reading late on 2026-02-01, unflushed, then one on 2026-02-02: the month sums both */
    observe(u, a, "boot1/wwan0/5", 10000, 8500, T0 + 11000 + DAYMS - 20000);
    observe(u, a, "boot1/wwan0/5", 10100, 8600, T0 + 11000 + DAYMS);
    get(u, a, T0 + 11000 + DAYMS, &t);
    CHECK_INT(t.today_down, 100);
    CHECK_INT(t.today_up, 100);
    CHECK_INT(t.month_down, 4100);
    CHECK_INT(t.down, 5100);
    CHECK_INT(simusage_flush(u, T0 + 11000 + DAYMS, err, sizeof err), 0);

    /* restart (as after kill -9): the persisted counter continues; bytes that passed while the
     * process was down are counted on the first reading */
    u = reopen(u);
    observe(u, a, "boot1/wwan0/5", 12100, 9600, T0 + 20000 + DAYMS);
    get(u, a, T0 + 20000 + DAYMS, &t);
    CHECK_INT(t.down, 7100);
    CHECK_INT(t.up, 2600);
    CHECK_INT(t.today_down, 2100);
    CHECK_INT(t.month_down, 6100);
    CHECK_INT(simusage_flush(u, T0 + 20000 + DAYMS, err, sizeof err), 0);

    /* unflushed readings are lost by a restart, but the counter they came from is not: the
     * next reading counts them again */
    observe(u, a, "boot1/wwan0/5", 13100, 9600, T0 + 21000 + DAYMS);
    u = reopen(u);
    observe(u, a, "boot1/wwan0/5", 13200, 9600, T0 + 22000 + DAYMS);
    get(u, a, T0 + 22000 + DAYMS, &t);
    CHECK_INT(t.down, 8200);

    /* interface re-created (other counter id) or reset (went backwards): baseline, no jump */
    observe(u, a, "boot1/wwan0/9", 100, 100, T0 + 23000 + DAYMS);
    observe(u, a, "boot1/wwan0/9", 50, 150, T0 + 24000 + DAYMS);
    observe(u, a, "boot1/wwan0/9", 80, 160, T0 + 25000 + DAYMS);
    get(u, a, T0 + 25000 + DAYMS, &t);
    CHECK_INT(t.down, 8230);
    CHECK_INT(t.up, 2610);

    /* a second SIM is independent; an unknown SIM is an error with zeroed totals */
    const char *b = "8949226000001234567";
    observe(u, b, "boot1/wwan1/6", 1, 1, T0 + 25000 + DAYMS);
    observe(u, b, "boot1/wwan1/6", 11, 21, T0 + 26000 + DAYMS);
    get(u, b, T0 + 26000 + DAYMS, &t);
    CHECK_INT(t.down, 10);
    CHECK_INT(t.up, 20);
    CHECK_INT(simusage_get(u, "0000", T0, &t, err, sizeof err), -1);
    CHECK_INT(t.up + t.down, 0);
    CHECK_INT(simusage_flush(u, T0 + 26000 + DAYMS, err, sizeof err), 0);

    /* weeks later without traffic: today and this month are 0, the total stays */
    u = reopen(u);
    get(u, a, T0 + 40 * DAYMS, &t);
    CHECK_INT(t.down, 8230);
    CHECK_INT(t.today_down, 0);
    CHECK_INT(t.month_down, 0);
    /* and back in February the stored days are still there */
    u = reopen(u);
    get(u, a, T0 + 11000 + DAYMS + 30000, &t);
    CHECK_INT(t.month_down, 8230 - 1000); /* February: all but January 31 */
    simusage_close(u);
}

static void test_bad_input_and_bounds(void)
{
    char err[256] = "";
    struct simusage *u = simusage_open(g_db, err, sizeof err);
    CHECK(u != NULL);
    CHECK_INT(simusage_observe(u, "", "c", 1, 1, T0, err, sizeof err), -1);
    CHECK_INT(simusage_observe(u, "123", "", 1, 1, T0, err, sizeof err), -1);
    char longid[100];
    memset(longid, '9', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    CHECK_INT(simusage_observe(u, longid, "c", 1, 1, T0, err, sizeof err), -1);
    CHECK_INT(simusage_observe(u, "123", longid, 1, 1, T0, err, sizeof err), -1);
    /* the SIM table is bounded: 2 SIMs from test_counting + new ones up to the limit */
    unsigned ok = 0;
    for (unsigned i = 0; i < SIMUSAGE_MAX_SIMS + 5; i++) {
        char id[32];
        snprintf(id, sizeof id, "89000000000000%05u", i);
        ok += simusage_observe(u, id, "c", 1, 1, T0, err, sizeof err) == 0;
    }
    CHECK_INT(ok, SIMUSAGE_MAX_SIMS - 2);
    CHECK_MSG(strstr(err, "SIMs tracked") != NULL, "err: %s", err);
    CHECK_INT(simusage_flush(u, T0 + 500 * DAYMS, err, sizeof err), 0);
    simusage_close(u);
    /* day rows older than SIMUSAGE_KEEP_DAYS were pruned by that flush; totals kept */
    u = simusage_open(g_db, err, sizeof err);
    struct simusage_totals t;
    get(u, "8944500102198304826", T0 + 11000 + DAYMS, &t);
    CHECK_INT(t.down, 8230);
    CHECK_INT(t.month_down, 0);
    simusage_close(u);
    CHECK(simusage_open("/nonexistent-dir/x.db", err, sizeof err) == NULL);
    CHECK_MSG(strstr(err, "nonexistent") != NULL, "err: %s", err);
    simusage_close(NULL);
}

int main(void)
{
    char dir[256];
    if (make_tmpdir(dir, sizeof dir) != 0)
        return 1;
    snprintf(g_db, sizeof g_db, "%s/outbox.db", dir);
    test_counting();
    test_bad_input_and_bounds();
    remove_tree(dir);
    return test_summary();
}
