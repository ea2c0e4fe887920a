/* One thread adds samples (with commits) while another predicts and looks up, as the firmware
 * does (sampler thread + weights thread). Run under TSan in CI (label threaded). */
#include "testlib.h"
#include "route.h"

#include "common/common.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static struct coverage_map *map;
static volatile int writer_done;
static int writer_errors, reader_errors, predictions;

static void *writer(void *arg)
{
    (void)arg;
    char err[256];
    static const char *ops[] = {"250-01", "250-02"};
    for (uint32_t trip = 1; trip <= 4; trip++)
        for (int t = 0; t < 400; t++)
            for (int o = 0; o < 2; o++) {
                struct cov_sample s;
                route_sample(&s, ops[o], trip, t * 20.0, 20, o == 0 && t > 200 && t < 220,
                             ROUTE_UTC0 + trip * 10000 + t);
                if (coverage_add_sample(map, &s, err, sizeof(err)) != 0)
                    writer_errors++;
                if (t % 50 == 49 && o == 1 && coverage_flush(map, err, sizeof(err)) != 0)
                    writer_errors++;
            }
    __atomic_store_n(&writer_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    char err[256];
    int i = 0;
    while (!__atomic_load_n(&writer_done, __ATOMIC_ACQUIRE) || i < 10) {
        double lat, lon;
        route_pos((i * 97) % 8000, &lat, &lon);
        struct cov_prediction p;
        if (coverage_predict(map, lat, lon, 20, 90, 60, &p, err, sizeof(err)) != 0)
            reader_errors++;
        struct cov_cell c;
        if (coverage_lookup(map, lat, lon, "250-01", &c, err, sizeof(err)) < 0)
            reader_errors++;
        predictions++;
        i++;
    }
    return NULL;
}

int main(void)
{
    log_init("test_coverage_threads", LOGL_WARN, false);
    char dir[256], path[300], err[256];
    snprintf(dir, sizeof(dir), "%s/covthrXXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof(path), "%s/coverage.db", dir);
    CHECK_INT(coverage_open(path, NULL, &map, err, sizeof(err)), 0);
    if (!map)
        return test_summary();
    pthread_t w, r;
    pthread_create(&w, NULL, writer, NULL);
    pthread_create(&r, NULL, reader, NULL);
    pthread_join(w, NULL);
    pthread_join(r, NULL);
    CHECK_INT(writer_errors, 0);
    CHECK_INT(reader_errors, 0);
    CHECK(predictions >= 10);
    /* the learned dead zone is there after all that */
    struct cov_prediction p;
    double lat, lon;
    route_pos(3000, &lat, &lon);
    CHECK_INT(coverage_predict(map, lat, lon, 20, 90, 60, &p, err, sizeof(err)), 0);
    const struct cov_op_prediction *o = cov_prediction_find(&p, "250-01");
    CHECK_MSG(o && fabs(o->dead_in_m - 1000) <= 50, "dead in %.0f m", o ? o->dead_in_m : -1);
    coverage_close(map);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_summary();
}
