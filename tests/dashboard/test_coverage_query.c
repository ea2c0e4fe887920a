/* test_coverage_query: coverage_query_area (telemetry/coverage.c), the read-only area query
 * behind GET /api/v1/coverage, against a map seeded through the normal write path: which cells
 * come back for a box (including boxes across a 1-degree latitude band, where the longitude
 * scale of the cell grid changes), the operator filter, limit/truncation, the row bound, bad
 * queries, a missing file, and that the query never changes the file. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "telemetry/coverage.h"
#include "testlib.h"

#define NPTS 60

struct collect {
    unsigned n;
    struct cov_area_cell c[4 * NPTS];
    int stop_after; /* 0 = never */
};

static int collect_cb(void *ctx, const struct cov_area_cell *c)
{
    struct collect *k = ctx;
    if (k->n < sizeof k->c / sizeof k->c[0])
        k->c[k->n] = *c;
    k->n++;
    return k->stop_after && (int)k->n >= k->stop_after;
}

/* Fixes of trip 1 going north across latitude 56.0 (a band boundary) near lon 37.6, 60 m apart,
 * then (after a long gap, so the jump filter re-anchors) a second group far away. */
static void fix_of(int i, double *lat, double *lon)
{
    if (i < NPTS / 2) {
        *lat = 55.9910 + i * 0.00054;
        *lon = 37.6 + (i % 3) * 0.0009;
    } else {
        *lat = 10.5 + (i - NPTS / 2) * 0.00054;
        *lon = -70.25;
    }
}

static void seed(const char *path)
{
    struct coverage_map *m = NULL;
    char err[256];
    CHECK_INT(coverage_open(path, NULL, &m, err, sizeof err), 0);
    for (int i = 0; i < NPTS; i++) {
        struct cov_sample s = {.utc = 1700000000 + i + (i >= NPTS / 2 ? 1000 : 0),
                               .trip = 1,
                               .speed_mps = NAN,
                               .track_deg = NAN,
                               .fix = COV_FIX_GPSD,
                               .net = COV_NET_LTE,
                               .rsrp_dbm = -90 - (i % 4) * 5,
                               .rsrq_db = NAN,
                               .sinr_db = NAN,
                               .rssi_dbm = NAN,
                               .goodput_kbps = NAN,
                               .rtt_ms = NAN,
                               .loss = NAN};
        fix_of(i, &s.lat, &s.lon);
        str_copy(s.op, "250-01", sizeof s.op);
        CHECK_MSG(coverage_add_sample(m, &s, err, sizeof err) == 0, "sample %d: %s", i, err);
        if (i % 2 == 0) {
            str_copy(s.op, "250-20", sizeof s.op);
            s.outage = true;
            CHECK_MSG(coverage_add_sample(m, &s, err, sizeof err) == 0, "sample %d: %s", i, err);
        }
    }
    CHECK_INT(coverage_flush(m, err, sizeof err), 0);
    coverage_close(m);
}

/* How many seeded (fix, operator) entries lie in cells that intersect the box: a fix's cell
 * intersects the box if the fix is inside it grown by a cell (cells are <= 50 m, fixes are
 * >= 60 m apart, so no two fixes share a cell). Counted exactly for boxes whose edges stay
 * more than a cell away from every fix. */
static unsigned expected(const double b[4], const char *op)
{
    unsigned n = 0;
    for (int i = 0; i < NPTS; i++) {
        double lat, lon;
        fix_of(i, &lat, &lon);
        if (lon < b[0] || lon > b[2] || lat < b[1] || lat > b[3])
            continue;
        if (!op || strcmp(op, "250-01") == 0)
            n++;
        if ((!op || strcmp(op, "250-20") == 0) && i % 2 == 0)
            n++;
    }
    return n;
}

static unsigned query(const char *path, const double b[4], const char *op, unsigned limit,
                      struct collect *k, struct cov_area_result *res)
{
    struct cov_area_query q = {.bbox = {b[0], b[1], b[2], b[3]}, .op = op, .limit = limit};
    char err[256] = "";
    memset(k, 0, sizeof *k);
    int rc = coverage_query_area(path, &q, collect_cb, k, res, err, sizeof err);
    CHECK_MSG(rc == 0, "query [%f %f %f %f]: rc %d %s", b[0], b[1], b[2], b[3], rc, err);
    return k->n;
}

int main(void)
{
    log_init("test_coverage_query", LOGL_WARN, false);
    char dir[] = "/tmp/corridor-test-covq-XXXXXX", path[300];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/coverage.db", dir);
    static struct collect k;
    struct cov_area_result res;
    double whole[4] = {37.5, 55.9, 37.7, 56.1};
    char err[256];

    /* No file yet: "no map", and nothing created. */
    struct cov_area_query q0 = {.bbox = {37.5, 55.9, 37.7, 56.1}, .limit = 10};
    CHECK_INT(coverage_query_area(path, &q0, collect_cb, &k, &res, err, sizeof err),
              COV_QUERY_NO_MAP);
    CHECK(access(path, F_OK) != 0);

    seed(path);
    struct stat before, after;
    CHECK_INT(stat(path, &before), 0);

    /* The whole first group, across the band boundary at 56.0: every entry, with its values. */
    CHECK_INT(query(path, whole, NULL, 1000, &k, &res), expected(whole, NULL));
    CHECK_INT(expected(whole, NULL), NPTS / 2 + NPTS / 4);
    CHECK(!res.truncated);
    CHECK_NEAR(res.cell_m, 50, 1e-9);
    CHECK_INT(res.n_ops, 2);
    CHECK_STR(res.ops[0], "250-01");
    CHECK_STR(res.ops[1], "250-20");
    unsigned dead = 0;
    for (unsigned i = 0; i < k.n && i < 4 * NPTS; i++) {
        const struct cov_area_cell *c = &k.c[i];
        /* bounds contain the centre; a 50 m cell */
        CHECK(c->lat_min < c->c.lat && c->c.lat < c->lat_max);
        CHECK(c->lon_min < c->c.lon && c->c.lon < c->lon_max);
        CHECK_NEAR((c->lat_max - c->lat_min) * 111320.0, 50, 0.01);
        CHECK_NEAR((c->lon_max - c->lon_min) * 111320.0 *
                       cos(floor(c->c.lat) * M_PI / 180 + 0.5 * M_PI / 180),
                   50, 0.01);
        /* ordered south to north */
        if (i)
            CHECK(k.c[i - 1].c.lat <= c->c.lat + 1e-9);
        CHECK(c->rsrp_med_known);
        CHECK(!c->goodput_med_known);
        CHECK(c->c.trips == 1);
        dead += c->c.dead;
        if (strcmp(c->c.op, "250-20") == 0)
            CHECK(c->c.dead && fabs(c->c.outage - 1) < 1e-3);
    }
    CHECK_INT(dead, NPTS / 4);

    /* Boxes inside the group, on either side of and across latitude 56.0. */
    const double boxes[][4] = {
        {37.5, 55.9, 37.7, 55.9995},       {37.5, 56.0005, 37.7, 56.1},
        {37.5, 55.9995, 37.7, 56.0005},    {37.6004, 55.9, 37.6014, 56.1},
        {37.5, 55.9935, 37.6004, 56.0065},
    };
    for (size_t b = 0; b < sizeof boxes / sizeof boxes[0]; b++) {
        unsigned got = query(path, boxes[b], NULL, 1000, &k, &res);
        /* Edges may clip a fix's cell: allow the cells whose fix is within a cell of an edge. */
        double grown[4] = {boxes[b][0] - 0.001, boxes[b][1] - 0.0005, boxes[b][2] + 0.001,
                           boxes[b][3] + 0.0005};
        double shrunk[4] = {boxes[b][0] + 0.001, boxes[b][1] + 0.0005, boxes[b][2] - 0.001,
                            boxes[b][3] - 0.0005};
        CHECK_MSG(got >= expected(shrunk, NULL) && got <= expected(grown, NULL),
                  "box %zu: %u entries, expected %u..%u", b, got, expected(shrunk, NULL),
                  expected(grown, NULL));
        for (unsigned i = 0; i < k.n && i < 4 * NPTS; i++)
            CHECK_MSG(k.c[i].lon_max >= boxes[b][0] && k.c[i].lon_min <= boxes[b][2] &&
                          k.c[i].lat_max >= boxes[b][1] && k.c[i].lat_min <= boxes[b][3],
                      "box %zu: cell at %f,%f does not intersect it", b, k.c[i].c.lat,
                      k.c[i].c.lon);
    }

    /* The second group, and nothing between. */
    double far[4] = {-70.3, 10.4, -70.2, 10.6};
    CHECK_INT(query(path, far, NULL, 1000, &k, &res), expected(far, NULL));
    CHECK(expected(far, NULL) > 0);
    double none[4] = {0.5, 0.5, 1.5, 1.5};
    CHECK_INT(query(path, none, NULL, 1000, &k, &res), 0);

    /* Operator filter; an unknown operator is simply empty. */
    CHECK_INT(query(path, whole, "250-20", 1000, &k, &res), NPTS / 4);
    for (unsigned i = 0; i < k.n; i++)
        CHECK_STR(k.c[i].c.op, "250-20");
    CHECK_INT(query(path, whole, "999-99", 1000, &k, &res), 0);

    /* Limit: exactly the limit, truncated only when more exist. */
    CHECK_INT(query(path, whole, NULL, 7, &k, &res), 7);
    CHECK(res.truncated);
    CHECK_INT(res.cells, 7);
    CHECK_INT(query(path, whole, NULL, NPTS / 2 + NPTS / 4, &k, &res), NPTS / 2 + NPTS / 4);
    CHECK(!res.truncated);

    /* A callback that stops: an error, not a crash. */
    struct cov_area_query qs = {.bbox = {37.5, 55.9, 37.7, 56.1}, .limit = 1000};
    memset(&k, 0, sizeof k);
    k.stop_after = 3;
    CHECK_INT(coverage_query_area(path, &qs, collect_cb, &k, &res, err, sizeof err), -1);
    CHECK(strstr(err, "stopped") != NULL);
    CHECK_INT(k.n, 3);

    /* Bad queries. */
    const double bad[][4] = {{NAN, 55, 38, 56}, {38, 55, 37, 56}, {37, 56, 38, 55},
                             {-181, 0, 1, 1},   {0, -91, 1, 1},   {37, 55, INFINITY, 56}};
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        struct cov_area_query qb = {.bbox = {bad[b][0], bad[b][1], bad[b][2], bad[b][3]},
                                    .limit = 10};
        err[0] = '\0';
        CHECK_INT(coverage_query_area(path, &qb, collect_cb, &k, &res, err, sizeof err), -1);
        CHECK(strstr(err, "bbox") != NULL);
    }
    struct cov_area_query ql = {.bbox = {37.5, 55.9, 37.7, 56.1}, .limit = 0};
    CHECK_INT(coverage_query_area(path, &ql, collect_cb, &k, &res, err, sizeof err), -1);
    ql.limit = 10;
    ql.op = "bad/op";
    CHECK_INT(coverage_query_area(path, &ql, collect_cb, &k, &res, err, sizeof err), -1);
    ql.op = NULL;
    ql.max_rows = 100; /* 0.2 degrees of latitude are ~445 rows of 50 m */
    CHECK_INT(coverage_query_area(path, &ql, collect_cb, &k, &res, err, sizeof err), -1);
    CHECK(strstr(err, "rows") != NULL);
    CHECK_INT(coverage_query_area(NULL, &ql, collect_cb, &k, &res, err, sizeof err), -1);

    /* A file that is not a map: "no map". */
    char other[300];
    snprintf(other, sizeof other, "%s/other.db", dir);
    FILE *f = fopen(other, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("SQLite format 3 but not really", f);
        fclose(f);
    }
    CHECK_INT(coverage_query_area(other, &q0, collect_cb, &k, &res, err, sizeof err),
              COV_QUERY_NO_MAP);

    /* Read-only: the map file is unchanged, and a writer can still open and use it. */
    CHECK_INT(stat(path, &after), 0);
    CHECK(after.st_size == before.st_size && after.st_mtime == before.st_mtime);
    struct coverage_map *m = NULL;
    CHECK_INT(coverage_open(path, NULL, &m, err, sizeof err), 0);
    struct coverage_stats cs;
    CHECK_INT(coverage_get_stats(m, &cs, err, sizeof err), 0);
    CHECK_INT(cs.cells, NPTS + NPTS / 2);
    coverage_close(m);

    const char *files[] = {"coverage.db", "coverage.db-wal", "coverage.db-shm", "other.db"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(other, sizeof other, "%s/%s", dir, files[i]);
        unlink(other);
    }
    CHECK(rmdir(dir) == 0);
    return test_summary();
}
