/* test_route_scn: the route-replay scenario gives ONE consistent truth to every generated file:
 * the link emulator goes down exactly where the modem simulator loses service, the NMEA is
 * where the modems' GNSS is, late zones appear only from their trip on, bad scenarios are
 * refused with the key named. */
#include "route_scn.h"
#include "testlib.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SCN CORRIDOR_SOURCE_DIR "/tests/route/scenarios/loop-3ops.json"
#define CI  CORRIDOR_SOURCE_DIR "/tests/route/scenarios/ci-loop-2ops.json"

static struct route_scn s;

static void test_load(void)
{
    char err[512] = "";
    CHECK_INT(rs_load(SCN, &s, err, sizeof(err)), 0);
    if (err[0])
        printf("  %s\n", err);
    CHECK_INT(s.nops, 3);
    CHECK_INT(s.learn_trips, 3);
    /* closed loop: the last point is the first again */
    CHECK_NEAR(s.lat[s.nwp - 1], s.lat[0], 1e-12);
    CHECK(s.length_m > 2200 && s.length_m < 2600);
    /* 200 m at 50 km/h, to 2150 m at 100, the rest at 50 */
    double want = 200 / (50 / 3.6) + 1950 / (100 / 3.6) + (s.length_m - 2150) / (50 / 3.6);
    CHECK_NEAR(s.drive_s, want, 1e-6);
    CHECK_NEAR(rs_time_at_dist(&s, 200), 200 / (50 / 3.6), 1e-9);
    CHECK_NEAR(rs_time_at_dist(&s, 1200), 14.4 + 36.0, 1e-9);
    CHECK_NEAR(rs_time_at_dist(&s, s.length_m), s.drive_s, 1e-9);
    struct route_scn c;
    CHECK_INT(rs_load(CI, &c, err, sizeof(err)), 0);
    CHECK_INT(c.learn_trips, 2);
}

static void test_axis(void)
{
    struct rs_sched sc = {.s = &s, .first = 0, .last = s.learn_trips};
    struct rs_state st;
    rs_at(&sc, 0, &st);
    CHECK_INT(st.trip, -1); /* preroll */
    CHECK_NEAR(st.speed_mps, 0, 0);
    double d1 = rs_drive_start(&sc, 1);
    CHECK_NEAR(d1, s.preroll_s + rs_trip_len_s(&s) + s.dwell_s, 1e-9);
    rs_at(&sc, d1 - 1, &st); /* dwelling at the station */
    CHECK_INT(st.trip, 1);
    CHECK_NEAR(st.dist_m, 0, 0);
    CHECK_NEAR(st.speed_mps, 0, 0);
    rs_at(&sc, d1 + 10, &st);
    CHECK_INT(st.trip, 1);
    CHECK_NEAR(st.dist_m, 10 * 50 / 3.6, 1e-6);
    CHECK_NEAR(st.speed_mps, 50 / 3.6, 1e-9);
    /* consecutive seconds never move further than the speed allows (no position jumps, also
     * across the end of a lap: the loop is closed) */
    struct rs_state prev;
    rs_at(&sc, 0, &prev);
    int jumps = 0;
    for (double t = 1; t < rs_total_s(&sc); t += 1) {
        rs_at(&sc, t, &st);
        double dlat = (st.lat - prev.lat) * 111195.0;
        double dlon = (st.lon - prev.lon) * 111195.0 * cos(st.lat * M_PI / 180);
        if (sqrt(dlat * dlat + dlon * dlon) > 100 / 3.6 + 1.0)
            jumps++;
        prev = st;
    }
    CHECK_INT(jumps, 0);
    rs_at(&sc, rs_total_s(&sc) - 0.5, &st); /* tail */
    CHECK_INT(st.trip, -1);
}

static void test_zones(void)
{
    struct rs_sched sc = {.s = &s, .first = 0, .last = s.learn_trips};
    struct rs_event ev[64];
    size_t n = rs_events(&sc, ev, 64);
    /* 3 recurring zones x 4 trips + the late mts zone on trips 1..3 */
    CHECK_INT((int)n, 15);
    int late = 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            CHECK(ev[i].entry_s >= ev[i - 1].entry_s);
        late += ev[i].op == 0 && ev[i].zone == 1;
        if (ev[i].op == 0 && ev[i].zone == 1)
            CHECK(ev[i].trip >= 1);
        struct rs_radio r;
        rs_radio_at(&sc, ev[i].op, ev[i].entry_s + 0.01, &r);
        CHECK(r.dead);
        rs_radio_at(&sc, ev[i].op, ev[i].exit_s + 0.01, &r);
        CHECK(!r.dead);
        rs_radio_at(&sc, ev[i].op, ev[i].entry_s - 0.5, &r);
        CHECK(!r.dead && r.rsrp < s.ops[ev[i].op].rsrp - 10); /* fading in */
    }
    CHECK_INT(late, 3);
    /* the late zone is not there on trip 0 */
    double t0 = rs_drive_start(&sc, 0) + rs_time_at_dist(&s, 1850);
    struct rs_radio r;
    rs_radio_at(&sc, 0, t0, &r);
    CHECK(!r.dead);
    rs_radio_at(&sc, 0, rs_drive_start(&sc, 2) + rs_time_at_dist(&s, 1850), &r);
    CHECK(r.dead);
    /* never every operator dead at once */
    int all_dead = 0;
    for (double t = 0; t < rs_total_s(&sc); t += 0.1) {
        int d = 0;
        for (unsigned k = 0; k < s.nops; k++) {
            rs_radio_at(&sc, k, t, &r);
            d += r.dead;
        }
        all_dead += d == (int)s.nops;
    }
    CHECK_INT(all_dead, 0);
    /* measured-only: one trip, index learn_trips, with the late zone */
    struct rs_sched m = {.s = &s, .first = s.learn_trips, .last = s.learn_trips};
    n = rs_events(&m, ev, 64);
    CHECK_INT((int)n, 4);
    CHECK_NEAR(rs_drive_start(&m, s.learn_trips), s.preroll_s + s.dwell_s, 1e-9);
}

/* Run the generator and compare what it wrote with the truth. */
static void test_generated(void)
{
    char dir[] = "/tmp/test_route_scn.XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(false);
        return;
    }
    char cmd[1024];
    /* CORRIDOR_TEST_EMU: qemu-aarch64 in the cross build (ctest prefixes only the test) */
    snprintf(cmd, sizeof(cmd), "%s %s %s %s --sim-dir /tmp/x --start-utc 1763800000 >/dev/null",
             CORRIDOR_TEST_EMU, ROUTE_GEN, SCN, dir);
    CHECK_INT(system(cmd), 0);
    struct rs_sched sc = {.s = &s, .first = 0, .last = s.learn_trips};
    struct rs_event ev[64];
    size_t n = rs_events(&sc, ev, 64);

    /* linkemu: one down and one up per event at the exact ms */
    char p[512], line[512];
    snprintf(p, sizeof(p), "%s/linkemu.scn", dir);
    FILE *f = fopen(p, "r");
    size_t k = 0;
    int links = 0;
    while (f && fgets(line, sizeof(line), f)) {
        double ms;
        unsigned l;
        if (sscanf(line, "links %d", &links) == 1)
            continue;
        if (sscanf(line, "at %lfms link %u", &ms, &l) == 2 && strstr(line, " down") && k < n) {
            CHECK_NEAR(ms, round(ev[k].entry_s * 1000), 0.5);
            CHECK_INT((int)l, (int)ev[k].op + 1);
            k++;
        }
    }
    if (f)
        fclose(f);
    CHECK_INT(links, 3);
    CHECK_INT((int)k, (int)n);

    /* modemsim: in time order, and "searching" exactly over the zones */
    snprintf(p, sizeof(p), "%s/modemsim.json", dir);
    json_error_t je;
    json_t *root = json_load_file(p, 0, &je);
    CHECK(root != NULL);
    json_t *modems = json_object_get(root, "modems");
    CHECK_INT((int)json_array_size(modems), 3);
    int mismatch = 0, frames = 0;
    for (size_t mi = 0; mi < json_array_size(modems); mi++) {
        json_t *tl = json_object_get(json_array_get(modems, mi), "timeline");
        CHECK_STR(json_string_value(json_object_get(json_array_get(modems, mi), "path")) + 7,
                  s.ops[mi].name);
        for (size_t i = 0; i < json_array_size(tl); i++) {
            json_t *kf = json_array_get(tl, i);
            double t = json_number_value(json_object_get(kf, "t"));
            struct rs_radio r;
            rs_modem_at(&sc, (unsigned)mi, t, &r);
            bool dead = strcmp(json_string_value(json_object_get(kf, "reg")), "searching") == 0;
            mismatch += dead != r.dead;
            struct rs_state st;
            rs_at(&sc, t, &st);
            mismatch += fabs(json_number_value(json_object_get(kf, "lat")) - st.lat) > 1e-7;
            frames++;
        }
    }
    CHECK_INT(mismatch, 0);
    CHECK(frames > 3 * (int)rs_total_s(&sc));
    /* the modem notices a zone modem_lag_s after the path dies, and its end as late */
    CHECK_NEAR(s.modem_lag_s, 1.0, 0);
    struct rs_radio r;
    rs_modem_at(&sc, ev[0].op, ev[0].entry_s + 0.5, &r);
    CHECK(!r.dead);
    rs_modem_at(&sc, ev[0].op, ev[0].entry_s + 1.01, &r);
    CHECK(r.dead);
    rs_modem_at(&sc, ev[0].op, ev[0].exit_s + 0.5, &r);
    CHECK(r.dead);
    json_decref(root);

    /* NMEA: 3 sentences per second, first epoch at the given UTC (08:26:40) */
    snprintf(p, sizeof(p), "%s/route.nmea", dir);
    f = fopen(p, "r");
    int rmc = 0, bad = 0;
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "$GPRMC", 6) == 0) {
            if (rmc == 0)
                CHECK(strncmp(line, "$GPRMC,082640.00,A,", 19) == 0);
            rmc++;
        } else if (line[0] != '$' && line[0] != '#') {
            bad++;
        }
    }
    if (f)
        fclose(f);
    CHECK_INT(rmc, (int)rs_total_s(&sc) + 1);
    CHECK_INT(bad, 0);

    /* truth: the trips and the zones */
    snprintf(p, sizeof(p), "%s/truth.txt", dir);
    f = fopen(p, "r");
    int trips = 0, zones = 0, late = 0;
    while (f && fgets(line, sizeof(line), f)) {
        trips += strncmp(line, "trip ", 5) == 0;
        zones += strncmp(line, "zone ", 5) == 0;
        late += strstr(line, " late") != NULL;
    }
    if (f)
        fclose(f);
    CHECK_INT(trips, 4);
    CHECK_INT(zones, 15);
    CHECK_INT(late, 3);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_INT(system(cmd), 0);
}

static void test_bad(void)
{
    static const char *const cases[][2] = {
        {"[]", "expected an object"},
        {"{}", "route"},
        {"{\"route\": {\"waypoints\": [[55, 37]]}}", "route.waypoints"},
        {"{\"route\": {\"waypoints\": [[55, 37], [95, 37]]}}", "route.waypoints[1]"},
        {"{\"route\": {\"waypoints\": [[55, 37], [55, 37]]}}", "less than 1 m"},
        {"{\"route\": {\"waypoints\": [[55, 37], [55.01, 37]]}, \"speed\": []}", "speed"},
        {"{\"route\": {\"waypoints\": [[55, 37], [55.01, 37]]}, \"speed\": [{\"kmh\": 0}]}",
         "speed[0].kmh"},
        {"{\"route\": {\"waypoints\": [[55, 37], [55.01, 37]]}, \"speed\": [{\"kmh\": 50}], "
         "\"operators\": [{\"name\": \"a\", \"mcc\": \"250\", \"mnc\": \"01\", \"zones\": "
         "[{\"from_m\": 500, \"to_m\": 400}]}]}",
         "operators[0].zones[0]"},
        {"{\"route\": {\"waypoints\": [[55, 37], [55.01, 37]]}, \"speed\": [{\"kmh\": 50}], "
         "\"operators\": [{\"name\": \"a\", \"mcc\": \"250\", \"mnc\": \"01\"}, {\"name\": "
         "\"a\", \"mcc\": \"250\", \"mnc\": \"02\"}]}",
         "used twice"},
        {"{\"route\": {\"waypoints\": [[55, 37], [55.01, 37]]}, \"speed\": [{\"kmh\": 50}], "
         "\"operators\": [{\"name\": \"a/b\", \"mcc\": \"250\", \"mnc\": \"01\"}]}",
         "operators[0].name"},
        {"{\"route\": {\"waypoints\": [[55, 37], [55.01, 37]]}, \"speed\": [{\"kmh\": 50}], "
         "\"operators\": [{\"name\": \"a\", \"mcc\": \"250\", \"mnc\": \"01\"}], \"dwell_s\": "
         "-1}",
         "dwell_s"},
    };
    char path[] = "/tmp/test_route_bad.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    close(fd);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        FILE *f = fopen(path, "w");
        fputs(cases[i][0], f);
        fclose(f);
        struct route_scn *b = malloc(sizeof(*b));
        char err[512] = "";
        CHECK_INT(rs_load(path, b, err, sizeof(err)), -1);
        if (!strstr(err, cases[i][1]))
            printf("  case %zu: error \"%s\" does not name \"%s\"\n", i, err, cases[i][1]);
        CHECK(strstr(err, cases[i][1]) != NULL);
        free(b);
    }
    unlink(path);
    char err[256];
    CHECK_INT(rs_load("/nonexistent/x.json", &s, err, sizeof(err)), -1);
}

int main(void)
{
    test_load();
    test_axis();
    test_zones();
    test_generated();
    test_bad();
    return test_summary();
}
