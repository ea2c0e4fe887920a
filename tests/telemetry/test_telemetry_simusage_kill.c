/* Data used per SIM across kill -9 (telemetry/simfin.h simusage_*): simusage_driver feeds a
 * 1 MB/s synthetic counter and is killed at random instants, 25 times on a live interface
 * ("same": the counter continues across restarts) and 25 times with the interface re-created at
 * every restart ("new"). After every kill the persisted total is read back:
 *   - it never goes down (monotonic);
 *   - "same": after a final clean stop the total equals the final counter minus the baseline
 *     taken at the very first reading: 25 kills lost nothing;
 *   - "new": each run's persisted increase falls short of the traffic that run saw by at most
 *     the flush period plus start-up (bounded here by 1.5 s of traffic). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "telemetry/simfin.h"
#include "testlib.h"
#include "tlm_util.h"

#define KILLS    25
#define FLUSH_MS 500
#define RATE     1000 /* bytes per ms, as simusage_driver counts */
static const char *g_exe;
static char g_dir[256], g_db[300], g_final[300];

static pid_t spawn(int64_t t0, const char *mode)
{
    char t0s[32], fl[16];
    snprintf(t0s, sizeof t0s, "%lld", (long long)t0);
    snprintf(fl, sizeof fl, "%d", FLUSH_MS);
    pid_t pid = fork();
    if (pid == 0) {
        execl(g_exe, g_exe, g_db, t0s, mode, fl, g_final, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static uint64_t persisted_down(void)
{
    char err[256];
    struct simusage *u = simusage_open(g_db, err, sizeof err);
    CHECK_MSG(u != NULL, "open: %s", err);
    if (!u)
        return 0;
    struct simusage_totals t;
    uint64_t v =
        simusage_get(u, "8944500102198304826", (int64_t)wall_ms(), &t, err, sizeof err) == 0
            ? t.down
            : 0;
    simusage_close(u);
    return v;
}

static void run_mode(const char *mode, unsigned *seed)
{
    unlink(g_db);
    unlink(g_final);
    int64_t t0 = (int64_t)wall_ms();
    uint64_t prev = 0, worst_loss_ms = 0, decreases = 0;
    int64_t first_start = 0;
    for (int k = 0; k <= KILLS; k++) {
        int64_t start = (int64_t)wall_ms();
        if (k == 0)
            first_start = start;
        pid_t pid = spawn(t0, mode);
        unsigned ms = 300 + (unsigned)(rand_r(seed) % 1200);
        sleep_ms_unless(NULL, ms);
        int64_t end = (int64_t)wall_ms();
        kill(pid, k == KILLS ? SIGTERM : SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        uint64_t now_down = persisted_down();
        if (now_down < prev)
            decreases++;
        if (strcmp(mode, "new") == 0 && k < KILLS) {
            uint64_t seen = (uint64_t)(end - start) * RATE;
            uint64_t inc = now_down - prev;
            uint64_t loss_ms = seen > inc ? (seen - inc) / RATE : 0;
            if (loss_ms > worst_loss_ms)
                worst_loss_ms = loss_ms;
        }
        prev = now_down;
    }
    CHECK_INT(decreases, 0);
    if (strcmp(mode, "same") == 0) {
        unsigned long long frx = 0, ftx = 0;
        FILE *f = fopen(g_final, "r");
        CHECK(f != NULL);
        if (f) {
            CHECK_INT(fscanf(f, "%llu %llu", &frx, &ftx), 2);
            fclose(f);
        }
        /* total = final counter - baseline; the baseline is the first reading of run 0,
         * taken between its start and its first 1.5 s */
        uint64_t base_lo = (uint64_t)(first_start - t0) * RATE;
        uint64_t base = frx - prev;
        printf("same: total %llu bytes, final counter %llu, baseline %llu (run 0 started at "
               "counter %llu)\n",
               (unsigned long long)prev, frx, (unsigned long long)base,
               (unsigned long long)base_lo);
        CHECK_MSG(base >= base_lo && base <= base_lo + 1500 * RATE,
                  "baseline %llu outside [%llu, +1.5 s]: bytes lost or double counted",
                  (unsigned long long)base, (unsigned long long)base_lo);
    } else {
        printf("new: worst loss at a kill %llu ms of traffic (flush every %d ms)\n",
               (unsigned long long)worst_loss_ms, FLUSH_MS);
        CHECK_MSG(worst_loss_ms <= FLUSH_MS + 1000, "lost %llu ms of traffic at one kill",
                  (unsigned long long)worst_loss_ms);
        CHECK(prev > 0);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s simusage_driver\n", argv[0]);
        return 2;
    }
    g_exe = argv[1];
    if (make_tmpdir(g_dir, sizeof g_dir) != 0)
        return 1;
    snprintf(g_db, sizeof g_db, "%s/outbox.db", g_dir);
    snprintf(g_final, sizeof g_final, "%s/final", g_dir);
    unsigned seed = (unsigned)time(NULL);
    printf("seed %u\n", seed);
    run_mode("same", &seed);
    run_mode("new", &seed);
    remove_tree(g_dir);
    return test_summary();
}
