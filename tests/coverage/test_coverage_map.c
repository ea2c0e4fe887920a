/* Coverage map: cell keys, aggregation math, dwell damping, fading over trips, bad input,
 * persistence, export/import (round trip and merge weighting), corrupt database handling. */
#include "testlib.h"
#include "route.h"

#include "common/common.h"

#include <dirent.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

static char tmpdir[256];

static void tpath(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

static struct coverage_map *open_map(const char *name, const struct coverage_params *p)
{
    char path[512], err[256] = "";
    tpath(path, sizeof(path), name);
    struct coverage_map *m = NULL;
    int rc = coverage_open(path, p, &m, err, sizeof(err));
    CHECK_MSG(rc == 0 && m, "open %s: %s", path, err);
    return m;
}

/* One sample at a fixed point (55.75, 37.60) with the given radio values. */
static struct cov_sample point_sample(const char *op, uint32_t trip, double rsrp, bool outage)
{
    struct cov_sample s;
    route_sample(&s, op, trip, 0, 10, false, ROUTE_UTC0 + trip * 1000);
    s.rsrp_dbm = rsrp;
    s.outage = outage;
    return s;
}

static void test_keys(void)
{
    struct coverage_map *m = open_map("keys.db", NULL);
    if (!m)
        return;
    CHECK_NEAR(coverage_cell_m(m), 50.0, 1e-9);
    const double pts[][2] = {{55.75, 37.6}, {0.001, 0.001}, {-33.9, 151.2},
                             {70.0, -20.0}, {60.0, 179.99}, {-60.0, -179.99}};
    for (size_t i = 0; i < ARRAY_LEN(pts); i++) {
        int64_t k = coverage_cell_key(m, pts[i][0], pts[i][1]);
        double clat, clon;
        coverage_cell_center(m, k, &clat, &clon);
        double d = cov_distance_m(pts[i][0], pts[i][1], clat, clon);
        CHECK_MSG(d <= 50.0 * 0.72, "point %zu is %.1f m from its cell centre", i, d);
        CHECK_INT(coverage_cell_key(m, clat, clon), k);
        /* 60 m north and 60 m east are other cells; 10 m is (mostly) the same cell */
        double la, lo;
        cov_destination(pts[i][0], pts[i][1], 0, 60, &la, &lo);
        CHECK(coverage_cell_key(m, la, lo) != k);
        cov_destination(pts[i][0], pts[i][1], 90, 60, &la, &lo);
        CHECK(coverage_cell_key(m, la, lo) != k);
    }
    /* cell area roughly equal at 0 and 70 degrees: lon extent of a cell in metres (the lon
     * scale is constant over 1-degree bands: up to ~2.5% off at 70 degrees) */
    int64_t k0 = coverage_cell_key(m, 0.0, 10.0), k70 = coverage_cell_key(m, 70.0, 10.0);
    double a1, o1, a2, o2;
    coverage_cell_center(m, k0, &a1, &o1);
    coverage_cell_center(m, k0 + 1, &a2, &o2);
    CHECK_NEAR(cov_distance_m(a1, o1, a2, o2), 50.0, 0.5);
    coverage_cell_center(m, k70, &a1, &o1);
    coverage_cell_center(m, k70 + 1, &a2, &o2);
    CHECK_NEAR(cov_distance_m(a1, o1, a2, o2), 50.0, 1.5);
    /* columns line up between rows of a band: due north of a cell centre is the same column */
    int64_t kn = coverage_cell_key(m, 55.7, 37.6);
    coverage_cell_center(m, kn, &a1, &o1);
    cov_destination(a1, o1, 0, 50, &a2, &o2);
    CHECK_INT(coverage_cell_key(m, a2, o2), kn + ((int64_t)1 << 24));
    coverage_close(m);
}

static void test_aggregation(void)
{
    struct coverage_map *m = open_map("agg.db", NULL);
    if (!m)
        return;
    char err[256];
    const double rsrp[] = {-80, -90, -100, -120};
    for (int i = 0; i < 4; i++) {
        struct cov_sample s = point_sample("250-01", 1, rsrp[i], i == 3);
        s.utc += i;
        s.sinr_db = i == 3 ? NAN : 10.0 + i;
        CHECK_INT(coverage_add_sample(m, &s, err, sizeof(err)), 0);
    }
    struct cov_cell c;
    /* before the commit: from the cache */
    CHECK_INT(coverage_lookup(m, ROUTE_LAT0, ROUTE_LON0, "250-01", &c, err, sizeof(err)), 1);
    CHECK_NEAR(c.n, 4.0, 1e-9);
    CHECK_NEAR(c.rsrp, -97.5, 1e-9);
    CHECK_NEAR(c.sinr, 11.0, 1e-9); /* NAN is not a value */
    CHECK_NEAR(c.outage, 0.25, 1e-9);
    CHECK_NEAR(c.rsrp_bad, 0.25, 1e-9);
    CHECK_INT(c.trips, 1);
    CHECK_INT(c.last_seen, ROUTE_UTC0 + 1000 + 3);
    /* unknown operator, and a cell without data */
    CHECK_INT(coverage_lookup(m, ROUTE_LAT0, ROUTE_LON0, "250-99", &c, err, sizeof(err)), 0);
    CHECK_INT(coverage_lookup(m, ROUTE_LAT0 + 0.01, ROUTE_LON0, "250-01", &c, err, sizeof(err)), 0);
    /* a second connection sees nothing before the commit, everything after */
    char path[512];
    tpath(path, sizeof(path), "agg.db");
    sqlite3 *db;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "SELECT count(*) FROM cells", -1, &st, NULL);
    CHECK_INT(sqlite3_step(st), SQLITE_ROW);
    CHECK_INT(sqlite3_column_int(st, 0), 0);
    sqlite3_reset(st);
    CHECK_INT(coverage_flush(m, err, sizeof(err)), 0);
    CHECK_INT(sqlite3_step(st), SQLITE_ROW);
    CHECK_INT(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
    /* after the commit: decoded from the 53-byte blob, within its quantisation */
    CHECK_INT(coverage_lookup(m, ROUTE_LAT0, ROUTE_LON0, "250-01", &c, err, sizeof(err)), 1);
    CHECK_NEAR(c.n, 4.0, 1e-6);
    CHECK_NEAR(c.rsrp, -97.5, 0.01);
    CHECK_NEAR(c.sinr, 11.0, 0.01);
    CHECK_NEAR(c.outage, 0.25, 1e-4);
    CHECK_NEAR(c.rsrp_bad, 0.25, 0.005);
    CHECK_NEAR(c.goodput_kbps, 20000, 20000 * 0.001);
    CHECK_NEAR(c.rtt_ms, 45, 0.25);
    CHECK_INT(c.net, COV_NET_LTE);
    CHECK(!c.dead);

    /* dwell damping: 30 samples of one trip -> 10 + sum(10/k, k=11..30) */
    for (int i = 0; i < 30; i++) {
        struct cov_sample s = point_sample("250-02", 7, -90, false);
        s.utc += i;
        CHECK_INT(coverage_add_sample(m, &s, err, sizeof(err)), 0);
    }
    double expect = 10;
    for (int k = 11; k <= 30; k++)
        expect += 10.0 / k;
    CHECK_INT(coverage_lookup(m, ROUTE_LAT0, ROUTE_LON0, "250-02", &c, err, sizeof(err)), 1);
    CHECK_NEAR(c.n, expect, 1e-9);
    CHECK_INT(c.trips, 1);

    /* trips counted once each, however many samples */
    for (uint32_t t = 8; t < 11; t++)
        for (int i = 0; i < 5; i++) {
            struct cov_sample s = point_sample("250-02", t, -90, false);
            s.utc += i;
            CHECK_INT(coverage_add_sample(m, &s, err, sizeof(err)), 0);
        }
    CHECK_INT(coverage_lookup(m, ROUTE_LAT0, ROUTE_LON0, "250-02", &c, err, sizeof(err)), 1);
    CHECK_INT(c.trips, 4);
    CHECK_INT(c.last_trip, 10);

    struct coverage_stats stats;
    CHECK_INT(coverage_flush(m, err, sizeof(err)), 0);
    CHECK_INT(coverage_get_stats(m, &stats, err, sizeof(err)), 0);
    CHECK_INT(stats.cells, 2);
    CHECK_INT(stats.samples, 4 + 30 + 15);
    CHECK_INT(stats.n_ops, 2);
    coverage_close(m);

    /* persisted: reopen and read the same */
    m = open_map("agg.db", NULL);
    if (!m)
        return;
    CHECK_INT(coverage_lookup(m, ROUTE_LAT0, ROUTE_LON0, "250-01", &c, err, sizeof(err)), 1);
    CHECK_NEAR(c.rsrp, -97.5, 0.01);
    CHECK_INT(coverage_get_stats(m, &stats, err, sizeof(err)), 0);
    CHECK_INT(stats.samples, 49);
    coverage_close(m);
}

/* Drive `trips` trips over one point, one sample each, all dead or all alive; return whether
 * the cell is judged dead after each trip in dead_after[]. */
static void drive(struct coverage_map *m, uint32_t *trip, int trips, bool dead, bool *dead_after)
{
    char err[256];
    for (int t = 0; t < trips; t++) {
        (*trip)++;
        for (int i = 0; i < 2; i++) {
            struct cov_sample s = point_sample("250-20", *trip, dead ? -124 : -80, dead);
            s.sinr_db = dead ? -6 : 15;
            s.goodput_kbps = dead ? 0 : 20000;
            s.utc += i;
            CHECK_INT(coverage_add_sample(m, &s, err, sizeof(err)), 0);
        }
        CHECK_INT(coverage_flush(m, err, sizeof(err)), 0); /* through the blob every trip */
        struct cov_cell c;
        CHECK_INT(coverage_lookup(m, ROUTE_LAT0, ROUTE_LON0, "250-20", &c, err, sizeof(err)), 1);
        dead_after[t] = c.dead;
    }
}

static void test_fading(void)
{
    struct coverage_params p;
    coverage_params_default(&p);
    p.half_life_trips = 2;
    struct coverage_map *m = open_map("fade.db", &p);
    if (!m)
        return;
    uint32_t trip = 0;
    bool d[10];
    drive(m, &trip, 6, false, d);
    for (int i = 0; i < 6; i++)
        CHECK(!d[i]);
    /* tower removed: not dead after one trip (one bad trip is not a pattern), dead within 3 */
    drive(m, &trip, 4, true, d);
    CHECK_MSG(!d[0], "dead after a single bad trip");
    CHECK_MSG(d[1] || d[2], "not dead after 3 bad trips");
    CHECK(d[3]);
    struct cov_cell c;
    char err[256];
    CHECK_INT(coverage_lookup(m, ROUTE_LAT0, ROUTE_LON0, "250-20", &c, err, sizeof(err)), 1);
    CHECK_MSG(c.outage > 0.7, "outage %.3f after 4 dead trips", c.outage);
    CHECK_INT(c.trips, 10);
    /* new tower: good again within 3 trips */
    drive(m, &trip, 4, false, d);
    CHECK_MSG(d[0], "alive after a single good trip");
    CHECK_MSG(!d[1] || !d[2], "still dead after 3 good trips");
    CHECK(!d[3]);
    /* exact fade math: after 4 dead then 4 good trips of mass 2 each, capped mass aside,
     * outage fraction = sum_{k=4..7} f^k / sum_{k=0..} ... checked via the decay factor */
    double f = exp2(-1.0 / 2.0), dead_w = 0, tot = 0;
    for (int k = 0; k < 14; k++) {
        double w = pow(f, k) * 2.0;
        tot += w;
        if (k >= 4 && k < 8)
            dead_w += w;
    }
    CHECK_INT(coverage_lookup(m, ROUTE_LAT0, ROUTE_LON0, "250-20", &c, err, sizeof(err)), 1);
    CHECK_NEAR(c.outage, dead_w / tot, 0.01);
    coverage_close(m);
}

static void test_bad_input(void)
{
    struct coverage_map *m = open_map("bad.db", NULL);
    if (!m)
        return;
    char err[256] = "";
    struct cov_sample s = point_sample("250-01", 1, -80, false);
    CHECK_INT(coverage_add_sample(m, &s, err, sizeof(err)), 0);
    struct cov_sample b = s;
    b.lat = NAN;
    CHECK_INT(coverage_add_sample(m, &b, err, sizeof(err)), 1);
    CHECK(strstr(err, "position") != NULL);
    b = s;
    b.lat = 0;
    b.lon = 0;
    CHECK_INT(coverage_add_sample(m, &b, err, sizeof(err)), 1);
    b = s;
    b.trip = 0;
    CHECK_INT(coverage_add_sample(m, &b, err, sizeof(err)), 1);
    b = s;
    b.fix = COV_FIX_NONE;
    CHECK_INT(coverage_add_sample(m, &b, err, sizeof(err)), 1);
    b = s;
    snprintf(b.op, sizeof(b.op), "250;01\"x");
    CHECK_INT(coverage_add_sample(m, &b, err, sizeof(err)), 1);
    b = s;
    b.op[0] = 0;
    CHECK_INT(coverage_add_sample(m, &b, err, sizeof(err)), 1);
    b = s;
    b.speed_mps = 900;
    CHECK_INT(coverage_add_sample(m, &b, err, sizeof(err)), 1);
    b = s;
    b.utc = 0;
    CHECK_INT(coverage_add_sample(m, &b, err, sizeof(err)), 1);
    b = s;
    b.fix_age_ms = COV_MAX_FIX_AGE_MS + 1; /* stale */
    CHECK_INT(coverage_add_sample(m, &b, err, sizeof(err)), 1);
    CHECK(strstr(err, "stale") != NULL);
    b.fix_age_ms = COV_MAX_FIX_AGE_MS; /* old but usable */
    b.utc += 1;
    CHECK_INT(coverage_add_sample(m, &b, err, sizeof(err)), 0);
    b = s;
    b.lat = 95;
    CHECK_INT(coverage_add_sample(m, &b, err, sizeof(err)), 1);
    /* clock backwards */
    b = s;
    b.utc -= 100;
    CHECK_INT(coverage_add_sample(m, &b, err, sizeof(err)), 1);
    CHECK(strstr(err, "backwards") != NULL);
    /* a jump of 50 km in one second is refused ... */
    b = s;
    b.utc += 1;
    b.lat += 0.45;
    CHECK_INT(coverage_add_sample(m, &b, err, sizeof(err)), 1);
    CHECK(strstr(err, "jump") != NULL);
    /* ... while a normal step is fine */
    b = s;
    b.utc += 1;
    cov_destination(s.lat, s.lon, 90, 20, &b.lat, &b.lon);
    CHECK_INT(coverage_add_sample(m, &b, err, sizeof(err)), 0);
    /* and a sustained new position re-anchors after a few rejections */
    int accepted_at = -1;
    for (int i = 0; i < 8 && accepted_at < 0; i++) {
        b.utc += 1;
        b.lat = s.lat + 0.45;
        if (coverage_add_sample(m, &b, err, sizeof(err)) == 0)
            accepted_at = i;
    }
    CHECK_INT(accepted_at, 4);
    /* nothing bad reached the map: only 250-01 cells at the two good places (one of them twice:
     * the 5 s old fix) + the re-anchor */
    struct coverage_stats st;
    CHECK_INT(coverage_flush(m, err, sizeof(err)), 0);
    CHECK_INT(coverage_get_stats(m, &st, err, sizeof(err)), 0);
    CHECK_INT(st.samples, 4);
    CHECK(st.rejected >= 14);
    CHECK_INT(st.n_ops, 1);
    coverage_close(m);
}

/* Fill a map with trips over a 3 km stretch for two operators. */
static void fill(struct coverage_map *m, uint32_t trip0, int trips, double rsrp_shift)
{
    char err[256];
    for (int t = 0; t < trips; t++)
        for (int i = 0; i < 150; i++) {
            double s_m = i * 20.0;
            for (int o = 0; o < 2; o++) {
                struct cov_sample s;
                route_sample(&s, o ? "250-02" : "250-01", trip0 + t, s_m, 20,
                             o == 1 && s_m > 1000 && s_m < 1400, ROUTE_UTC0 + t * 10000 + i);
                s.rsrp_dbm += rsrp_shift;
                CHECK_INT(coverage_add_sample(m, &s, err, sizeof(err)), 0);
            }
        }
    CHECK_INT(coverage_flush(m, err, sizeof(err)), 0);
}

static char *export_str(struct coverage_map *m, const double *bbox, long *features)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    char err[256] = "";
    *features = coverage_export_geojson(m, f, bbox, err, sizeof(err));
    CHECK_MSG(*features >= 0, "export: %s", err);
    fclose(f);
    return buf;
}

static void test_export_import(void)
{
    struct coverage_map *a = open_map("a.db", NULL), *b = open_map("b.db", NULL);
    if (!a || !b)
        return;
    fill(a, 1, 3, 0);
    char err[256] = "", apath[512];
    tpath(apath, sizeof(apath), "a.db");
    /* round trip: A imported into an empty B exports identically */
    long n = coverage_import(b, apath, err, sizeof(err));
    CHECK_MSG(n > 100, "import: %ld %s", n, err);
    long fa, fb;
    char *ea = export_str(a, NULL, &fa), *eb = export_str(b, NULL, &fb);
    CHECK(fa > 50);
    CHECK_INT(fa, fb);
    CHECK(ea && eb && strcmp(ea, eb) == 0);
    CHECK(ea && strstr(ea, "\"type\":\"FeatureCollection\"") != NULL);
    CHECK(ea && strstr(ea, "\"250-02\":{") != NULL);
    CHECK(ea && strstr(ea, "\"dead\":true") != NULL);
    free(ea);
    free(eb);
    /* the learned path came along */
    int64_t next[4];
    double w[4];
    double la, lo;
    route_pos(500, &la, &lo);
    int64_t k = coverage_cell_key(b, la, lo);
    CHECK(coverage_path_next(b, k, next, w, 4) >= 1);
    /* the same map at the same sample count is not merged twice; the map itself never */
    CHECK_INT(coverage_import(b, apath, err, sizeof(err)), -1);
    CHECK(strstr(err, "already imported") != NULL);
    CHECK_INT(coverage_import(a, apath, err, sizeof(err)), -1);
    /* bbox: only the first kilometre */
    double l1, o1;
    route_pos(1000, &l1, &o1);
    double bbox[4] = {ROUTE_LON0 - 0.01, ROUTE_LAT0 - 0.01, o1, ROUTE_LAT0 + 0.01};
    long fbox;
    char *eb2 = export_str(a, bbox, &fbox);
    CHECK_MSG(fbox >= 19 && fbox <= 22, "bbox features %ld", fbox);
    free(eb2);
    /* export to a file */
    char gpath[512];
    tpath(gpath, sizeof(gpath), "a.geojson");
    CHECK_INT(coverage_export_geojson_path(a, gpath, NULL, err, sizeof(err)), 0);
    CHECK(access(gpath, R_OK) == 0);
    coverage_close(a);
    coverage_close(b);

    /* merge weighting: C has 3 trips at rsrp -110, D 1 trip at -80 (same cells) */
    struct coverage_map *c = open_map("c.db", NULL), *d = open_map("d.db", NULL);
    if (!c || !d)
        return;
    fill(c, 1, 3, -25);
    fill(d, 1, 1, 5);
    struct cov_cell cc, cd;
    route_pos(200, &la, &lo);
    CHECK_INT(coverage_lookup(c, la, lo, "250-01", &cc, err, sizeof(err)), 1);
    CHECK_INT(coverage_lookup(d, la, lo, "250-01", &cd, err, sizeof(err)), 1);
    double expect = (cc.n * cc.rsrp + cd.n * cd.rsrp) / (cc.n + cd.n);
    char dpath[512];
    tpath(dpath, sizeof(dpath), "d.db");
    CHECK(coverage_import(c, dpath, err, sizeof(err)) > 0);
    struct cov_cell cm;
    CHECK_INT(coverage_lookup(c, la, lo, "250-01", &cm, err, sizeof(err)), 1);
    CHECK_NEAR(cm.rsrp, expect, 0.02);
    CHECK_NEAR(cm.n, cc.n + cd.n, 1e-3);
    CHECK_INT(cm.trips, cc.trips + cd.trips);
    CHECK(cm.rsrp > -110 && cm.rsrp < -100); /* weighted, not a plain average (-92.5) */
    coverage_close(c);
    coverage_close(d);

    /* a map with another cell size is refused */
    struct coverage_params p;
    coverage_params_default(&p);
    p.cell_m = 100;
    struct coverage_map *e = open_map("e.db", &p);
    if (!e)
        return;
    CHECK_NEAR(coverage_cell_m(e), 100, 1e-9);
    CHECK_INT(coverage_import(e, dpath, err, sizeof(err)), -1);
    CHECK(strstr(err, "cell size") != NULL);
    /* not a coverage map at all */
    char junk[512];
    tpath(junk, sizeof(junk), "junk.bin");
    FILE *f = fopen(junk, "w");
    fputs("this is not sqlite", f);
    fclose(f);
    CHECK_INT(coverage_import(e, junk, err, sizeof(err)), -1);
    coverage_close(e);
    /* and reopening keeps the stored cell size over the configured one */
    e = open_map("e.db", NULL);
    if (e) {
        CHECK_NEAR(coverage_cell_m(e), 100, 1e-9);
        coverage_close(e);
    }
}

/* A well-formed sqlite file whose rows are garbage: import must neither crash nor take in
 * nonsense (NaN weights, out-of-range fields). */
static void test_import_garbage(void)
{
    char path[512], err[256];
    tpath(path, sizeof(path), "garbage-src.db");
    sqlite3 *db;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_exec(db,
                 "CREATE TABLE meta(k TEXT PRIMARY KEY, v TEXT);"
                 "INSERT INTO meta VALUES('version','1'),('cell_m','50'),('map_id','evil'),"
                 "('samples','12');"
                 "CREATE TABLE ops(id INTEGER PRIMARY KEY, name TEXT);"
                 "INSERT INTO ops VALUES(1,'250-01'),(2,'bad\"name'),(3,NULL),(300,'250-02');"
                 "CREATE TABLE cells(cell INTEGER PRIMARY KEY, s BLOB);",
                 NULL, NULL, NULL);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO cells VALUES(?1, ?2)", -1, &st, NULL);
    unsigned seed = 7;
    for (int i = 0; i < 400; i++) {
        uint8_t b[16 + 54 * 4 + 7];
        /* valid lengths mostly, with random content (op ids 1 and 2 so some match) */
        int len = i % 5 == 0 ? (int)(i % sizeof(b)) : 16 + 54 * (1 + i % 4);
        for (int k = 0; k < len; k++) {
            seed = seed * 1103515245u + 12345u;
            b[k] = (uint8_t)(seed >> 16);
        }
        for (int r = 0; 16 + r * 54 < len; r++)
            b[16 + r * 54] = (uint8_t)(1 + r % 2);
        int64_t cell = i == 3 ? -5 : ((int64_t)(300000 + i % 7) << 24) + 200000 + i;
        sqlite3_bind_int64(st, 1, cell);
        sqlite3_bind_blob(st, 2, b, len, SQLITE_TRANSIENT);
        sqlite3_step(st);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    struct coverage_map *m = open_map("garbage-dst.db", NULL);
    if (!m)
        return;
    long n = coverage_import(m, path, err, sizeof(err));
    CHECK_MSG(n >= 0, "import: %s", err);
    /* whatever came in is finite and in range */
    long features = 0;
    char *js = export_str(m, NULL, &features);
    CHECK(js && !strstr(js, "nan") && !strstr(js, "inf"));
    free(js);
    struct coverage_stats stt;
    CHECK_INT(coverage_get_stats(m, &stt, err, sizeof(err)), 0);
    for (unsigned i = 0; i < stt.n_ops; i++)
        CHECK(strcmp(stt.ops[i], "250-01") == 0 || strcmp(stt.ops[i], "250-02") == 0);
    /* and the map still predicts */
    struct cov_prediction p;
    CHECK_INT(coverage_predict(m, 55.0, 37.0, 20, 90, 60, &p, err, sizeof(err)), 0);
    coverage_close(m);
}

static int count_corrupt(const char *prefix)
{
    DIR *d = opendir(tmpdir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0 && strstr(de->d_name, ".corrupt-"))
            n++;
    if (d)
        closedir(d);
    return n;
}

static void test_corrupt(void)
{
    char path[512], err[256];
    /* garbage file */
    tpath(path, sizeof(path), "garbage.db");
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 2000; i++)
        fputs("garbage!", f);
    fclose(f);
    struct coverage_map *m = open_map("garbage.db", NULL);
    CHECK_INT(count_corrupt("garbage.db"), 1);
    if (m) {
        struct cov_sample s = point_sample("250-01", 1, -80, false);
        CHECK_INT(coverage_add_sample(m, &s, err, sizeof(err)), 0);
        coverage_close(m);
    }
    /* someone else's sqlite database */
    tpath(path, sizeof(path), "foreign.db");
    sqlite3 *db;
    sqlite3_open(path, &db);
    sqlite3_exec(db, "CREATE TABLE foo(x); INSERT INTO foo VALUES(1)", NULL, NULL, NULL);
    sqlite3_close(db);
    m = open_map("foreign.db", NULL);
    CHECK_INT(count_corrupt("foreign.db"), 1);
    coverage_close(m);
    /* a valid map whose pages got overwritten in the middle */
    m = open_map("torn.db", NULL);
    if (!m)
        return;
    fill(m, 1, 2, 0);
    coverage_close(m);
    tpath(path, sizeof(path), "torn.db");
    f = fopen(path, "r+");
    /* b-tree page headers of pages 2..6 (meta, ops, its index, agg, path) */
    for (int pg = 1; pg < 6; pg++) {
        fseek(f, 4096L * pg, SEEK_SET);
        for (int i = 0; i < 64; i++)
            fputc(i * 7 + 3, f);
    }
    fclose(f);
    m = open_map("torn.db", NULL);
    CHECK_INT(count_corrupt("torn.db"), 1);
    if (m) {
        struct coverage_stats st;
        CHECK_INT(coverage_get_stats(m, &st, err, sizeof(err)), 0);
        CHECK_INT(st.cells, 0); /* rebuilt from nothing */
        coverage_close(m);
    }
    /* an unreachable place is an error, not a crash */
    struct coverage_map *x = NULL;
    CHECK_INT(coverage_open("/nonexistent-dir/x/coverage.db", NULL, &x, err, sizeof(err)), -1);
    CHECK(x == NULL);
    CHECK_INT(coverage_open("", NULL, &x, err, sizeof(err)), -1);
}

/* The wall clock jumps forward (NTP after a cold start, a GPS week rollover fixed): the sample
 * counts, but no learned path bridges the jump, and the clock going back is refused. */
static void test_clock_jump(void)
{
    struct coverage_map *m = open_map("clock.db", NULL);
    if (!m)
        return;
    char err[256];
    struct cov_sample a, b, c;
    route_sample(&a, "250-01", 3, 0, 20, false, ROUTE_UTC0);
    route_sample(&b, "250-01", 3, 60, 20, false, ROUTE_UTC0 + 3);
    route_sample(&c, "250-01", 3, 120, 20, false, ROUTE_UTC0 + 3 + 86400);
    CHECK_INT(coverage_add_sample(m, &a, err, sizeof(err)), 0);
    CHECK_INT(coverage_add_sample(m, &b, err, sizeof(err)), 0);
    CHECK_INT(coverage_add_sample(m, &c, err, sizeof(err)), 0);
    int64_t ka = coverage_cell_key(m, a.lat, a.lon), kb = coverage_cell_key(m, b.lat, b.lon);
    int64_t next[4];
    double w[4];
    CHECK_INT(coverage_path_next(m, ka, next, w, 4), 1); /* a -> b learned */
    CHECK(next[0] == kb);
    CHECK_INT(coverage_path_next(m, kb, next, w, 4), 0); /* nothing across the jump */
    /* back to before the jump: refused */
    struct cov_sample d = b;
    d.utc = ROUTE_UTC0 + 4;
    CHECK_INT(coverage_add_sample(m, &d, err, sizeof(err)), 1);
    CHECK(strstr(err, "backwards") != NULL);
    coverage_close(m);
}

/* The file is damaged WHILE the map is open (a bad sector, a stray write): the map notices on
 * its next read, sets the file aside, carries on with a new one, and never crashes. */
static void test_corrupt_running(void)
{
    char path[512], err[256];
    struct coverage_map *m = open_map("live.db", NULL);
    if (!m)
        return;
    fill(m, 1, 2, 0); /* 3 km x 2 operators, committed */
    tpath(path, sizeof(path), "live.db");
    /* Another connection checkpoints everything into the main file ... */
    sqlite3 *db2;
    CHECK_INT(sqlite3_open(path, &db2), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db2, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL), SQLITE_OK);
    /* ... the b-tree pages get overwritten behind the map's back ... */
    FILE *f = fopen(path, "r+");
    CHECK(f != NULL);
    if (f) {
        for (int pg = 1; pg < 12; pg++) {
            fseek(f, 4096L * pg, SEEK_SET);
            for (int i = 0; i < 4096; i++)
                fputc((i * 31 + pg) & 0xff, f);
        }
        fclose(f);
    }
    /* ... and a change of the header only (page 1) makes the map's connection drop its page
     * cache, so its next look-up reads the damaged pages from the file. */
    sqlite3_exec(db2, "PRAGMA user_version=7", NULL, NULL, NULL);
    sqlite3_close(db2);
    CHECK_INT(count_corrupt("live.db"), 0);

    /* samples at a new place: the first ones fail (the damage is found), then the map is new */
    int failed = 0, ok = 0;
    for (int i = 0; i < 20; i++) {
        struct cov_sample s;
        route_sample(&s, "250-01", 9, 5000 + i * 20.0, 20, false, ROUTE_UTC0 + 90000 + i);
        int rc = coverage_add_sample(m, &s, err, sizeof(err));
        failed += rc != 0;
        ok += rc == 0;
    }
    CHECK(failed >= 1 && failed <= 2);
    CHECK(ok >= 18);
    CHECK_INT(count_corrupt("live.db"), 1);
    struct coverage_stats st;
    CHECK_INT(coverage_flush(m, err, sizeof(err)), 0);
    CHECK_INT(coverage_get_stats(m, &st, err, sizeof(err)), 0);
    CHECK_INT(st.rebuilds, 1);
    CHECK_INT((int)st.samples, ok); /* only what came after the rebuild */
    CHECK_INT(st.n_ops, 1);
    /* the new map predicts from what it has learned since, and a look-up still works */
    struct cov_cell c;
    double lat, lon;
    route_pos(5000 + 5 * 20.0, &lat, &lon);
    CHECK_INT(coverage_lookup(m, lat, lon, "250-01", &c, err, sizeof(err)), 1);
    coverage_close(m);
    /* and the new file is a healthy map on the next start */
    m = open_map("live.db", NULL);
    CHECK_INT(count_corrupt("live.db"), 1);
    if (m) {
        CHECK_INT(coverage_get_stats(m, &st, err, sizeof(err)), 0);
        CHECK_INT((int)st.samples, ok);
        coverage_close(m);
    }
}

/* 80 km of 4 operators = ~1600 cells per stretch; the stretch driven first (older last_seen)
 * is what goes when the bound is hit. */
static void drive_stretch(struct coverage_map *m, double lat0, int64_t utc0)
{
    char err[256];
    static const char *ops[] = {"250-01", "250-02", "250-20", "250-99"};
    for (int t = 0; t < 4000; t++)
        for (int o = 0; o < 4; o++) {
            struct cov_sample s;
            route_sample(&s, ops[o], 1, 0, 20, false, utc0 + t);
            cov_destination(lat0, ROUTE_LON0, 90, t * 20.0, &s.lat, &s.lon);
            CHECK_INT(coverage_add_sample(m, &s, err, sizeof(err)), 0);
        }
    CHECK_INT(coverage_flush(m, err, sizeof(err)), 0);
}

static void test_prune(void)
{
    struct coverage_map *m = open_map("prune.db", NULL);
    if (!m)
        return;
    char err[256];
    drive_stretch(m, 55.70, ROUTE_UTC0);              /* old */
    drive_stretch(m, 55.80, ROUTE_UTC0 + 86400 * 30); /* a month later, elsewhere */
    coverage_close(m); /* checkpoint: file_bytes is then the data alone */
    m = open_map("prune.db", NULL);
    if (!m)
        return;
    struct coverage_stats st;
    CHECK_INT(coverage_get_stats(m, &st, err, sizeof(err)), 0);
    uint64_t rows = st.geo_cells;
    CHECK(rows > 3000);
    /* under the bound: nothing to do */
    CHECK_INT(coverage_prune(m, 100000000, err, sizeof(err)), 0);
    /* bound at about 60% of the data: the old stretch goes, the new one stays */
    uint64_t bound = (uint64_t)(st.file_bytes * 0.6);
    long del = coverage_prune(m, bound, err, sizeof(err));
    CHECK_MSG(del > (long)rows / 4 && del < (long)rows * 3 / 4, "pruned %ld of %llu", del,
              (unsigned long long)rows);
    struct cov_cell c;
    double lat, lon;
    cov_destination(55.70, ROUTE_LON0, 90, 100, &lat, &lon);
    CHECK_INT(coverage_lookup(m, lat, lon, "250-01", &c, err, sizeof(err)), 0);
    cov_destination(55.80, ROUTE_LON0, 90, 79000, &lat, &lon);
    CHECK_INT(coverage_lookup(m, lat, lon, "250-01", &c, err, sizeof(err)), 1);
    cov_destination(55.80, ROUTE_LON0, 90, 100, &lat, &lon);
    CHECK_INT(coverage_lookup(m, lat, lon, "250-99", &c, err, sizeof(err)), 1);
    /* and the file shrank to the bound (incremental vacuum + WAL checkpoint) */
    CHECK_INT(coverage_get_stats(m, &st, err, sizeof(err)), 0);
    CHECK_MSG(st.file_bytes <= bound, "%llu bytes after prune, bound %llu",
              (unsigned long long)st.file_bytes, (unsigned long long)bound);
    coverage_close(m);
    /* the max_mb parameter applies at open */
    struct coverage_params p;
    coverage_params_default(&p);
    p.max_mb = 1;
    m = open_map("prune.db", &p);
    if (!m)
        return;
    CHECK_INT(coverage_get_stats(m, &st, err, sizeof(err)), 0);
    CHECK_MSG(st.file_bytes <= 1000000, "%llu bytes with max_mb 1",
              (unsigned long long)st.file_bytes);
    CHECK(st.geo_cells > 1000);
    coverage_close(m);
}

int main(void)
{
    log_init("test_coverage_map", LOGL_WARN, false);
    snprintf(tmpdir, sizeof(tmpdir), "%s/covmapXXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_keys();
    test_aggregation();
    test_fading();
    test_bad_input();
    test_export_import();
    test_corrupt();
    test_corrupt_running();
    test_clock_jump();
    test_prune();
    test_import_garbage();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (t_fail == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary();
}
