/* Power-cut integrity: a child process writes the coverage map as fast as it can (samples +
 * a commit every 40 samples) and reports each committed total through a pipe; the parent
 * SIGKILLs it at a random moment, many times over the same database. After every kill the
 * database must pass PRAGMA integrity_check, hold at least everything the child reported as
 * committed, and open again as a map (not be set aside as corrupt).
 *
 * SIGKILL loses the process, not the page cache, so this proves transaction atomicity and
 * WAL recovery; fsync ordering against a real power cut is sqlite's (synchronous=FULL). */
#include "testlib.h"
#include "route.h"

#include "common/common.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 25

static void child(const char *path, int fd, uint32_t round)
{
    char err[256];
    struct coverage_map *m = NULL;
    if (coverage_open(path, NULL, &m, err, sizeof(err)) != 0)
        _exit(2);
    struct coverage_stats st;
    if (coverage_get_stats(m, &st, err, sizeof(err)) != 0)
        _exit(3);
    uint64_t total = st.samples;
    for (uint32_t i = 0;; i++) {
        static const char *ops[] = {"250-01", "250-02", "250-20", "250-99"};
        struct cov_sample s;
        double dist = (i % 2000) * 20.0;
        route_sample(&s, ops[i % 4], round + 1, dist, 20, (i / 7) % 5 == 0,
                     ROUTE_UTC0 + round * 100000 + i / 4);
        if (coverage_add_sample(m, &s, err, sizeof(err)) != 0)
            _exit(4);
        if (i % 40 == 39) {
            if (coverage_flush(m, err, sizeof(err)) != 0)
                _exit(5);
            total += 40;
            if (write(fd, &total, sizeof(total)) != (ssize_t)sizeof(total))
                _exit(6);
        }
    }
}

static uint64_t meta_samples(sqlite3 *db)
{
    sqlite3_stmt *st;
    uint64_t v = 0;
    if (sqlite3_prepare_v2(db, "SELECT v FROM meta WHERE k='samples'", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = (uint64_t)strtoull((const char *)sqlite3_column_text(st, 0), NULL, 10);
    sqlite3_finalize(st);
    return v;
}

int main(void)
{
    log_init("test_coverage_powercut", LOGL_WARN, false);
    char dir[256], path[300];
    snprintf(dir, sizeof(dir), "%s/covcutXXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof(path), "%s/coverage.db", dir);
    srand((unsigned)time(NULL));
    uint64_t committed = 0;
    int mid_kills = 0;
    for (uint32_t round = 0; round < ROUNDS; round++) {
        int pfd[2];
        if (pipe(pfd) != 0)
            return 1;
        pid_t pid = fork();
        if (pid == 0) {
            close(pfd[0]);
            child(path, pfd[1], round);
        }
        close(pfd[1]);
        /* wait for a few commits, then kill at a random point of the next ones */
        int want = 1 + rand() % 4, got = 0;
        uint64_t v;
        while (got < want && read(pfd[0], &v, sizeof(v)) == (ssize_t)sizeof(v)) {
            committed = v;
            got++;
        }
        CHECK_MSG(got == want, "round %u: child died early", round);
        usleep((useconds_t)(rand() % 20000));
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "round %u: status %d", round,
                  status);
        while (read(pfd[0], &v, sizeof(v)) == (ssize_t)sizeof(v))
            committed = v;
        close(pfd[0]);

        /* the database as the next boot finds it */
        sqlite3 *db;
        CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
        sqlite3_stmt *st;
        CHECK_INT(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
        CHECK_INT(sqlite3_step(st), SQLITE_ROW);
        CHECK_STR((const char *)sqlite3_column_text(st, 0), "ok");
        sqlite3_finalize(st);
        uint64_t have = meta_samples(db);
        CHECK_MSG(have >= committed, "round %u: %llu samples in the db, %llu committed", round,
                  (unsigned long long)have, (unsigned long long)committed);
        /* at most one commit (40 samples) beyond what the child could report */
        CHECK_MSG(have <= committed + 40, "round %u: %llu samples, %llu reported", round,
                  (unsigned long long)have, (unsigned long long)committed);
        if (have > committed)
            mid_kills++;
        sqlite3_close(db);
    }
    /* the map still opens as a map (nothing set aside) and has the data */
    char err[256];
    struct coverage_map *m = NULL;
    CHECK_INT(coverage_open(path, NULL, &m, err, sizeof(err)), 0);
    if (m) {
        struct cov_cell c;
        double lat, lon;
        route_pos(20, &lat, &lon);
        CHECK_INT(coverage_lookup(m, lat, lon, "250-02", &c, err, sizeof(err)), 1);
        CHECK(c.trips >= 1);
        coverage_close(m);
    }
    DIR *d = opendir(dir);
    struct dirent *de;
    int corrupt = 0;
    while (d && (de = readdir(d)))
        corrupt += strstr(de->d_name, ".corrupt-") != NULL;
    if (d)
        closedir(d);
    CHECK_INT(corrupt, 0);
    printf("%d kills, %d between a commit and its report, %llu samples committed\n", ROUNDS,
           mid_kills, (unsigned long long)committed);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (t_fail == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_summary();
}
