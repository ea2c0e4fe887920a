/* sim: a real gpsd (Debian 3.22) fed by gpsfake replays a gpsd regression log
 * (tests/data/gpsd/<name>.log); the position thread's view must agree with the .chk file.
 *
 * The .chk files were produced by gpsd 3.27, which emits more TPV reports than 3.22 (see
 * tests/data/gpsd/README.md), so this compares what both versions must agree on:
 *   - the fix-mode transitions: ours, run-length compressed, must be a subsequence of the .chk
 *     ones with the same first and last mode and the same set of modes;
 *   - the first 2D fix, the first 3D fix (position and time of day) and the last fix position.
 * And the selection on top: a fix that is lost must produce a "gpsd lost fix" event.
 *
 * With a second argument "robust" (logs where 3.22 and 3.27 disagree, or with garbage: NUL bytes,
 * spliced sentences, bad checksums) only the client's robustness is checked: every report is a
 * valid fix or "no fix", the counters agree, stop stays within 200 ms, and a log without any
 * TPV in its .chk gives no fix at all. */
#include "gpsfake_run.h"
#include "telemetry/telemetry.h"
#include "testlib.h"

#include "common/common.h"

#include <unistd.h>

struct chk {
    int seq[64]; /* compressed modes */
    size_t nseq;
    size_t n_tpv;
    bool have2, have3, havelast;
    double lat2, lon2, lat3, lon3, latl, lonl;
    long tod3; /* seconds of day of the first 3D fix, -1 unknown */
};

static double num_after(const char *line, const char *key)
{
    const char *p = strstr(line, key);
    return p ? strtod(p + strlen(key), NULL) : NAN;
}

static bool load_chk(const char *path, struct chk *c)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return false;
    }
    memset(c, 0, sizeof(*c));
    c->tod3 = -1;
    char line[4096];
    while (fgets(line, sizeof(line), f)) {
        if (!strstr(line, "\"class\":\"TPV\""))
            continue;
        int mode = (int)num_after(line, "\"mode\":");
        c->n_tpv++;
        if (c->nseq == 0 || c->seq[c->nseq - 1] != mode) {
            if (c->nseq < ARRAY_LEN(c->seq))
                c->seq[c->nseq++] = mode;
        }
        double lat = num_after(line, "\"lat\":"), lon = num_after(line, "\"lon\":");
        if (mode < 2 || !isfinite(lat) || !isfinite(lon))
            continue;
        if (mode == 2 && !c->have2) {
            c->have2 = true;
            c->lat2 = lat;
            c->lon2 = lon;
        }
        if (mode == 3 && !c->have3) {
            c->have3 = true;
            c->lat3 = lat;
            c->lon3 = lon;
            const char *t = strstr(line, "\"time\":\"");
            int hh, mm, ss;
            if (t && sscanf(t + 8 + 11, "%2d:%2d:%2d", &hh, &mm, &ss) == 3)
                c->tod3 = hh * 3600L + mm * 60L + ss;
        }
        c->havelast = true;
        c->latl = lat;
        c->lonl = lon;
    }
    fclose(f);
    return true;
}

/* Is a[0..na) a subsequence of b[0..nb)? */
static bool subsequence(const int *a, size_t na, const int *b, size_t nb)
{
    size_t j = 0;
    for (size_t i = 0; i < nb && j < na; i++)
        if (b[i] == a[j])
            j++;
    return j == na;
}

static void print_seq(const char *what, const int *s, size_t n)
{
    fprintf(stderr, "%s:", what);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %d", s[i]);
    fprintf(stderr, "\n");
}

int main(int argc, char **argv)
{
    log_init("test_position_corpus", LOGL_INFO, false);
    if (argc < 2) {
        fprintf(stderr, "usage: %s <log name in tests/data/gpsd> [robust]\n", argv[0]);
        return 2;
    }
    bool robust = argc > 2 && strcmp(argv[2], "robust") == 0;
    CHECK(gpsfake_available());
    if (t_fail)
        return test_summary();
    char logp[512], chkp[512], err[256];
    snprintf(logp, sizeof(logp), "%s/gpsd/%s.log", CORRIDOR_TEST_DATA, argv[1]);
    snprintf(chkp, sizeof(chkp), "%s/gpsd/%s.log.chk", CORRIDOR_TEST_DATA, argv[1]);
    struct chk c;
    CHECK(load_chk(chkp, &c));
    CHECK(robust || c.n_tpv > 0);
    if (t_fail)
        return test_summary();

    static struct recorder rec;
    rec_init(&rec);
    int port = gpsfake_free_port();
    CHECK(port > 0);
    struct position_config cfg;
    position_config_default(&cfg);
    str_copy(cfg.gpsd_host, "127.0.0.1", sizeof(cfg.gpsd_host));
    snprintf(cfg.gpsd_port, sizeof(cfg.gpsd_port), "%d", port);
    cfg.reconnect_min_ms = 50; /* connect as soon as gpsfake's gpsd listens */
    cfg.reconnect_max_ms = 200;
    cfg.on_report = rec_on_report;
    cfg.on_event = rec_on_event;
    cfg.cb_ctx = &rec;
    struct position *p = position_new(&cfg, err, sizeof(err));
    CHECK(p != NULL);
    if (!p)
        return test_summary();
    /* the client first, so it is watching before gpsfake starts feeding */
    CHECK_INT(position_start(p, err, sizeof(err)), 0);
    struct gpsfake g = {0};
    CHECK_INT(gpsfake_start(&g, port, logp, 0.05, 50, err, sizeof(err)), 0);

    /* done when reports stop coming for 2 s (the log is played once) */
    uint64_t t0 = mono_ms(), last_change = t0;
    size_t last_n = 0;
    bool saw_fix_source = false;
    while (mono_ms() - t0 < 45000) {
        msleep(50);
        size_t n = rec_count(&rec);
        struct position_fix now;
        if (position_get(p, &now) && now.source == POSITION_SRC_GPSD)
            saw_fix_source = true;
        if (n != last_n) {
            last_n = n;
            last_change = mono_ms();
        } else if (n > 0 && mono_ms() - last_change > 2000) {
            break;
        } else if (n == 0 && c.n_tpv == 0 && mono_ms() - t0 > 10000) {
            break; /* a log without TPV: 10 s is several times its playing time */
        }
    }
    struct position_status st;
    position_get_status(p, &st);
    /* stop latency bound */
    uint64_t ts = mono_ms();
    position_stop(p);
    CHECK_MSG(mono_ms() - ts <= 200, "position_stop took %llu ms",
              (unsigned long long)(mono_ms() - ts));
    gpsfake_stop(&g);

    size_t n = rec_count(&rec);
    CHECK(st.gpsd_connects >= 1);
    CHECK_INT(st.gpsd_reports, n);
    if (robust) {
        struct position_fix f;
        size_t fixes = 0;
        for (size_t i = 0; i < n && rec_get(&rec, i, &f); i++) {
            CHECK(f.mode == POSITION_MODE_NONE || position_fix_valid(&f));
            CHECK_STR(f.source_name, "gpsd");
            fixes += f.mode != POSITION_MODE_NONE;
        }
        fprintf(stderr, "%s: %zu reports, %zu fixes (.chk: %zu TPV)\n", argv[1], n, fixes, c.n_tpv);
        if (c.n_tpv == 0) {
            CHECK_INT(n, 0);
            CHECK(!saw_fix_source);
        } else {
            CHECK(fixes > 0);
            CHECK(saw_fix_source);
        }
        rec_print_events(&rec);
        position_free(p);
        return test_summary();
    }
    CHECK_MSG(n > 0, "no TPV report from gpsd for %s", argv[1]);
    if (n == 0) { /* nothing to compare (and seq[nseq - 1] below would underflow) */
        position_free(p);
        return test_summary();
    }

    int seq[256];
    size_t nseq = 0;
    bool have2 = false, have3 = false, havelast = false, lost = false;
    struct position_fix f, f2 = {0}, f3 = {0}, fl = {0};
    for (size_t i = 0; i < n && rec_get(&rec, i, &f); i++) {
        int mode = f.mode == POSITION_MODE_NONE ? 1 : (int)f.mode;
        if (nseq == 0 || seq[nseq - 1] != mode) {
            if (nseq > 0 && seq[nseq - 1] >= 2 && mode == 1)
                lost = true;
            if (nseq < ARRAY_LEN(seq))
                seq[nseq++] = mode;
        }
        if (f.mode == POSITION_MODE_2D && !have2) {
            have2 = true;
            f2 = f;
        }
        if (f.mode == POSITION_MODE_3D && !have3) {
            have3 = true;
            f3 = f;
        }
        if (f.mode != POSITION_MODE_NONE) {
            havelast = true;
            fl = f;
        }
    }
    print_seq("chk modes (gpsd 3.27)", c.seq, c.nseq);
    print_seq("our modes (local gpsd)", seq, nseq);
    CHECK_MSG(subsequence(seq, nseq, c.seq, c.nseq), "transitions are not a subsequence");
    CHECK_INT(seq[0], c.seq[0]);
    CHECK_INT(seq[nseq - 1], c.seq[c.nseq - 1]);
    for (size_t i = 0; i < c.nseq; i++) {
        bool found = false;
        for (size_t j = 0; j < nseq; j++)
            found |= seq[j] == c.seq[i];
        CHECK_MSG(found, "mode %d of the .chk never seen", c.seq[i]);
    }
    CHECK_INT(have2, c.have2);
    CHECK_INT(have3, c.have3);
    CHECK_INT(havelast, c.havelast);
    if (have2 && c.have2) {
        CHECK_NEAR(f2.lat, c.lat2, 1e-6);
        CHECK_NEAR(f2.lon, c.lon2, 1e-6);
    }
    if (have3 && c.have3) {
        CHECK_NEAR(f3.lat, c.lat3, 1e-6);
        CHECK_NEAR(f3.lon, c.lon3, 1e-6);
        CHECK(isfinite(f3.alt_m));
        if (c.tod3 >= 0) {
            CHECK(f3.utc > 0);
            CHECK_INT(f3.utc % 86400, c.tod3);
        }
    }
    if (havelast && c.havelast) {
        CHECK_NEAR(fl.lat, c.latl, 1e-6);
        CHECK_NEAR(fl.lon, c.lonl, 1e-6);
        CHECK(saw_fix_source);
        CHECK(rec_has_event(&rec, "using gpsd"));
    }
    if (lost)
        CHECK_MSG(rec_has_event(&rec, "gpsd lost fix"), "fix lost without a switch event");
    rec_print_events(&rec);
    position_free(p);
    return test_summary();
}
