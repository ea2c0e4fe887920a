/* bench_coverage: fill a synthetic coverage map and print its size per cell.
 *
 *   bench_coverage [KM [DB_PATH]]      (default 10000 km, a temporary file)
 *
 * The route is a lawnmower over a region near 55N 37E: 100 km lines east and west joined by
 * 1.1 km northward legs, driven at 25 m/s with one sample a second per operator for 4
 * operators, with +-5 m of GPS noise across the track (which spreads a route over more cells
 * than a perfect line would). One trip: further trips over the same route update the same rows
 * and do not grow the file. Prints rows, file size, bytes per (cell, operator) row and the
 * projection to 10,000 km x 4 operators (the budget is 100 MB). */
#include "route.h"

#include "common/common.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    log_init("bench_coverage", LOGL_WARN, false);
    double km = argc > 1 ? atof(argv[1]) : 10000.0;
    if (!(km > 0 && km <= 100000)) {
        fprintf(stderr, "usage: %s [KM [DB_PATH]]\n", argv[0]);
        return 2;
    }
    char dir[256] = "", path[512];
    if (argc > 2) {
        snprintf(path, sizeof(path), "%s", argv[2]);
    } else {
        snprintf(dir, sizeof(dir), "%s/covbenchXXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
        snprintf(path, sizeof(path), "%s/coverage.db", dir);
    }
    char err[256];
    struct coverage_map *m = NULL;
    if (coverage_open(path, NULL, &m, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    static const char *ops[] = {"250-01", "250-02", "250-20", "250-99"};
    const double speed = 25.0, line_m = 100000.0, leg_m = 1100.0;
    double lat = 55.0, lon = 37.0, track = 90.0, along = 0.0;
    uint64_t t0 = mono_ms(), n = 0;
    int64_t utc = ROUTE_UTC0;
    unsigned seed = 1;
    for (double done = 0; done < km * 1000.0; done += speed, utc++) {
        /* lawnmower: east/west lines, north legs between them */
        double step = speed;
        while (step > 0) {
            double left = (track == 0 ? leg_m : line_m) - along;
            double d = step < left ? step : left;
            cov_destination(lat, lon, track, d, &lat, &lon);
            along += d;
            step -= d;
            if (along >= (track == 0 ? leg_m : line_m)) {
                static double next_line = 270.0;
                if (track == 0) {
                    track = next_line;
                    next_line = next_line == 90.0 ? 270.0 : 90.0;
                } else {
                    track = 0;
                }
                along = 0;
            }
        }
        seed = seed * 1103515245u + 12345u;
        double noise = ((seed >> 16) % 1001) / 100.0 - 5.0;
        double nlat, nlon;
        cov_destination(lat, lon, track + 90.0, noise, &nlat, &nlon);
        for (int o = 0; o < 4; o++) {
            struct cov_sample s;
            route_sample(&s, ops[o], 1, 0, speed, (int)((seed >> 8) & 63) == o, utc);
            s.lat = nlat;
            s.lon = nlon;
            s.track_deg = track;
            s.rsrp_dbm = -70.0 - ((seed >> (o * 3)) & 63);
            s.sinr_db = ((seed >> (o * 2)) & 31) - 5.0;
            s.goodput_kbps = 500.0 * (1 + ((seed >> o) & 127));
            s.rtt_ms = 30.0 + ((seed >> (o + 4)) & 255);
            if (coverage_add_sample(m, &s, err, sizeof(err)) < 0) {
                fprintf(stderr, "%s\n", err);
                return 1;
            }
            n++;
        }
    }
    if (coverage_flush(m, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct coverage_stats st;
    coverage_get_stats(m, &st, err, sizeof(err));
    uint64_t t1 = mono_ms();
    /* What the steer thread pays once a second: a 60 s look-ahead along the learned path on
     * this map, from points along the first line (cold and warm sqlite pages alike). */
    static struct cov_prediction pred;
    double p_sum = 0, p_max = 0, learned = 0, cells = 0;
    int p_n = 0;
    /* along the third line (eastbound, 2.2 km north): the first one runs exactly on 55.0 N, a
     * 1-degree band edge where the noise makes the cell columns jump (docs/coverage.md) */
    double plat, plon;
    cov_destination(55.0, 37.0, 0.0, 2.0 * leg_m, &plat, &plon);
    for (int k = 0; k < 1000; k++) {
        /* small steps east like the route itself (one long great-circle jump would drift
         * south of the line: 280 m after 50 km) */
        for (int q = 0; q < 4; q++)
            cov_destination(plat, plon, 90.0, 24.25, &plat, &plon);
        uint64_t a = mono_ns();
        if (coverage_predict(m, plat, plon, speed, 90.0, 60.0, &pred, err, sizeof(err)) != 0) {
            fprintf(stderr, "predict: %s\n", err);
            return 1;
        }
        double us = (mono_ns() - a) / 1000.0;
        p_sum += us;
        p_max = us > p_max ? us : p_max;
        learned += pred.learned_frac;
        cells += pred.n_cells;
        p_n++;
    }
    coverage_close(m); /* checkpoints the WAL into the main file */
    struct stat sb;
    uint64_t bytes = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    double per_row = st.cells ? (double)bytes / st.cells : 0;
    double proj = (double)bytes / km * 10000.0;
    printf("route            %.0f km, 4 operators, %llu samples in %.1f s (%.0f samples/s)\n", km,
           (unsigned long long)n, (t1 - t0) / 1000.0, n / ((t1 - t0) / 1000.0 + 1e-9));
    printf("cells            %llu (cell, operator) aggregates in %llu rows, %.1f cells/km\n",
           (unsigned long long)st.cells, (unsigned long long)st.geo_cells, st.geo_cells / km);
    printf("file             %llu bytes (%.1f MB) after checkpoint\n", (unsigned long long)bytes,
           bytes / 1e6);
    printf("bytes/cell       %.1f per (cell, operator) aggregate, %.1f per geographic cell "
           "(learned path included)\n",
           per_row, st.geo_cells ? (double)bytes / st.geo_cells : 0.0);
    printf("predict 60 s     %.0f us mean, %.0f us max over %d calls; %.0f cells walked, %.0f %% "
           "along the learned path\n",
           p_sum / p_n, p_max, p_n, cells / p_n, 100.0 * learned / p_n);
    printf("10000 km x 4 ops %.1f MB (budget 100 MB): %s\n", proj / 1e6,
           proj <= 100e6 ? "OK" : "OVER BUDGET");
    if (dir[0]) {
        unlink(path);
        rmdir(dir);
    }
    return proj <= 100e6 ? 0 : 1;
}
