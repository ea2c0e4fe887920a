/* Pure parts of telemetry/position: geodesy, dead reckoning, source selection, modem feed and
 * position_get without a thread, bad input, and the NMEA generator used by the sim tests. */
#include "nmea_gen.h"
#include "telemetry/telemetry.h"
#include "testlib.h"

#include "common/common.h"

static struct position_fix mkfix(enum position_source src, const char *name, uint64_t t, double lat,
                                 double lon, double kmh, double trk)
{
    struct position_fix f;
    memset(&f, 0, sizeof(f));
    f.mono_ms = t;
    f.utc = 1767225600;
    f.mode = POSITION_MODE_3D;
    f.lat = lat;
    f.lon = lon;
    f.alt_m = 150;
    f.speed_kmh = kmh;
    f.track_deg = trk;
    f.eph_m = 5;
    f.epv_m = 8;
    f.source = src;
    snprintf(f.source_name, sizeof(f.source_name), "%s", name);
    return f;
}

static void test_geodesy(void)
{
    /* 1 degree of latitude on the sphere */
    double m_per_deg = POSITION_EARTH_RADIUS_M * M_PI / 180.0;
    CHECK_NEAR(position_distance_m(55.0, 37.0, 56.0, 37.0), m_per_deg, 1e-6);
    CHECK_NEAR(position_distance_m(55.75, 37.62, 55.75, 37.62), 0.0, 1e-9);
    CHECK_NEAR(position_bearing_deg(55.0, 37.0, 56.0, 37.0), 0.0, 1e-9);
    CHECK_NEAR(position_bearing_deg(0.0, 10.0, 0.0, 11.0), 90.0, 1e-9);
    CHECK_NEAR(position_bearing_deg(0.0, 10.0, 0.0, 9.0), 270.0, 1e-9);
    CHECK_NEAR(position_bearing_deg(56.0, 37.0, 55.0, 37.0), 180.0, 1e-9);
    double la, lo;
    /* east along the equator: exact longitude change */
    position_destination(0.0, 10.0, 90.0, 1000.0, &la, &lo);
    CHECK_NEAR(la, 0.0, 1e-12);
    CHECK_NEAR(lo, 10.0 + 1000.0 / m_per_deg, 1e-12);
    /* north: exact latitude change */
    position_destination(55.0, 37.0, 0.0, 2000.0, &la, &lo);
    CHECK_NEAR(la, 55.0 + 2000.0 / m_per_deg, 1e-12);
    CHECK_NEAR(lo, 37.0, 1e-12);
    /* antimeridian wraps */
    position_destination(0.0, 179.999, 90.0, 1000.0, &la, &lo);
    CHECK(lo < -179.99 && lo >= -180.0);
    /* round trip at an arbitrary bearing */
    position_destination(55.7558, 37.6173, 47.0, 1234.5, &la, &lo);
    CHECK_NEAR(position_distance_m(55.7558, 37.6173, la, lo), 1234.5, 1e-6);
    CHECK_NEAR(position_bearing_deg(55.7558, 37.6173, la, lo), 47.0, 0.01);
}

static void test_dead_reckoning(void)
{
    /* 20 s at 54 km/h (15 m/s) due north: 300 m, exact on a meridian */
    double m_per_deg = POSITION_EARTH_RADIUS_M * M_PI / 180.0;
    struct position_fix base = mkfix(POSITION_SRC_GPSD, "gpsd", 10000, 55.0, 37.0, 54.0, 0.0);
    struct position_fix dr;
    position_dead_reckon(&base, 30000, &dr);
    CHECK_INT(dr.source, POSITION_SRC_DEAD_RECKONING);
    CHECK_STR(dr.source_name, "dead_reckoning");
    CHECK_INT(dr.mode, POSITION_MODE_2D);
    CHECK_INT(dr.mono_ms, 30000);
    CHECK_INT(dr.utc, 1767225600 + 20);
    CHECK_NEAR(dr.lat, 55.0 + 300.0 / m_per_deg, 1e-9);
    CHECK_NEAR(dr.lon, 37.0, 1e-9);
    CHECK_NEAR(dr.speed_kmh, 54.0, 1e-9);
    CHECK_NEAR(dr.track_deg, 0.0, 1e-9);
    CHECK_NEAR(dr.alt_m, 150.0, 1e-9);
    /* error: 5 + 1 m/s * 20 s + 5 % of 300 m */
    CHECK_NEAR(dr.eph_m, 5.0 + 20.0 + 15.0, 1e-9);
    CHECK_NEAR(dr.epv_m, 8.0 + 20.0, 1e-9);
    /* the error grows monotonically */
    struct position_fix dr2;
    position_dead_reckon(&base, 40000, &dr2);
    CHECK(dr2.eph_m > dr.eph_m);
    CHECK_NEAR(position_distance_m(55.0, 37.0, dr2.lat, dr2.lon), 450.0, 1e-6);

    /* a diagonal straight segment (great circle) matches the route truth within centimetres */
    struct nmea_waypoint wp[2] = {{55.70, 37.50}, {55.75, 37.60}};
    struct nmea_route r = {wp, 2, 20.0, 150};
    double la0, lo0, t0, la1, lo1, t1;
    nmea_route_at(&r, 5.0, &la0, &lo0, &t0);
    nmea_route_at(&r, 25.0, &la1, &lo1, &t1);
    base = mkfix(POSITION_SRC_GPSD, "gpsd", 5000, la0, lo0, 72.0, t0);
    position_dead_reckon(&base, 25000, &dr);
    CHECK_NEAR(position_distance_m(dr.lat, dr.lon, la1, lo1), 0.0, 0.05);

    /* stationary / slow: hold the position (track is noise below 1 km/h) */
    base = mkfix(POSITION_SRC_GPSD, "gpsd", 1000, 55.0, 37.0, 0.5, 123.0);
    position_dead_reckon(&base, 11000, &dr);
    CHECK_NEAR(dr.lat, 55.0, 1e-12);
    CHECK_NEAR(dr.lon, 37.0, 1e-12);
    /* moving without a track: held, but the whole distance is error */
    base = mkfix(POSITION_SRC_MODEM, "modem:mts", 1000, 55.0, 37.0, 36.0, NAN);
    base.eph_m = NAN;
    position_dead_reckon(&base, 11000, &dr);
    CHECK_NEAR(dr.lat, 55.0, 1e-12);
    CHECK_NEAR(dr.eph_m, 10.0 + 10.0 + 100.0, 1e-9);
    /* unknown UTC stays unknown; aliasing base and out is fine */
    base.utc = -1;
    position_dead_reckon(&base, 2000, &base);
    CHECK_INT(base.utc, -1);
    CHECK_INT(base.source, POSITION_SRC_DEAD_RECKONING);
}

static void test_select(void)
{
    struct position_limits lim = {2000, 3000, 60000};
    struct position_fix out;
    struct position_fix g = mkfix(POSITION_SRC_GPSD, "gpsd", 100000, 55.0, 37.0, 36.0, 90.0);
    struct position_fix m[3] = {
        mkfix(POSITION_SRC_MODEM, "modem:mts", 99000, 55.1, 37.1, 36, 90),
        mkfix(POSITION_SRC_MODEM, "modem:beeline", 99500, 55.2, 37.2, 36, 90),
        mkfix(POSITION_SRC_MODEM, "modem:tele2", 99900, 55.3, 37.3, 36, 90),
    };
    m[2].mode = POSITION_MODE_NONE; /* freshest reading has no fix */
    struct position_inputs in = {&g, m, 3, &g, NULL};

    /* empty inputs: none */
    struct position_inputs empty = {0};
    CHECK_INT(position_select(&empty, &lim, 100000, &out), POSITION_SRC_NONE);
    CHECK_INT(out.mode, POSITION_MODE_NONE);
    CHECK_NAN(out.lat);
    CHECK_STR(out.source_name, "none");
    CHECK_INT(out.utc, -1);

    /* gpsd fresh: gpsd even though modems are fresh too */
    CHECK_INT(position_select(&in, &lim, 101000, &out), POSITION_SRC_GPSD);
    CHECK_NEAR(out.lat, 55.0, 1e-12);
    CHECK_STR(out.source_name, "gpsd");
    /* exactly at the freshness limit still counts, 1 ms later not */
    CHECK_INT(position_select(&in, &lim, 102000, &out), POSITION_SRC_GPSD);
    CHECK_INT(position_select(&in, &lim, 102001, &out), POSITION_SRC_MODEM);
    /* freshest modem WITH a fix: beeline (tele2 has none) */
    CHECK_STR(out.source_name, "modem:beeline");
    /* sticky: the modem in use stays while its fix is fresh, though beeline's is fresher */
    struct position_inputs sticky = {NULL, m, 3, NULL, "modem:mts"};
    CHECK_INT(position_select(&sticky, &lim, 101000, &out), POSITION_SRC_MODEM);
    CHECK_STR(out.source_name, "modem:mts");
    /* ... and is left once stale (older than 3 s) */
    CHECK_INT(position_select(&sticky, &lim, 102500, &out), POSITION_SRC_MODEM);
    CHECK_STR(out.source_name, "modem:beeline");
    CHECK_NEAR(out.lat, 55.2, 1e-12);
    /* gpsd reports no fix (mode 1): modems at once, not after 2 s */
    struct position_fix g_nofix = g;
    g_nofix.mode = POSITION_MODE_NONE;
    g_nofix.mono_ms = 100500;
    in.gpsd = &g_nofix;
    CHECK_INT(position_select(&in, &lim, 100600, &out), POSITION_SRC_MODEM);
    CHECK_STR(out.source_name, "modem:beeline");
    /* beeline still fresh at 2900 ms (mts at 3400 ms is not) */
    CHECK_INT(position_select(&in, &lim, 102400, &out), POSITION_SRC_MODEM);
    CHECK_STR(out.source_name, "modem:beeline");
    /* an older modem is used when the fresher one lost its fix */
    m[1].mode = POSITION_MODE_NONE;
    CHECK_INT(position_select(&in, &lim, 101900, &out), POSITION_SRC_MODEM);
    CHECK_STR(out.source_name, "modem:mts");
    m[1].mode = POSITION_MODE_3D;
    /* all modems stale: dead reckoning from last good (gpsd at 100000, 36 km/h east) */
    CHECK_INT(position_select(&in, &lim, 102600, &out), POSITION_SRC_DEAD_RECKONING);
    CHECK_INT(position_select(&in, &lim, 103501, &out), POSITION_SRC_DEAD_RECKONING);
    CHECK(out.lon > 37.0); /* moving east */
    CHECK_NEAR(position_distance_m(55.0, 37.0, out.lat, out.lon), 10.0 * 3.501, 1e-3);
    /* dead reckoning ends after the gap limit */
    CHECK_INT(position_select(&in, &lim, 160000, &out), POSITION_SRC_DEAD_RECKONING);
    CHECK_INT(position_select(&in, &lim, 160001, &out), POSITION_SRC_NONE);
    /* dead reckoning disabled */
    struct position_limits nodr = {2000, 3000, 0};
    CHECK_INT(position_select(&in, &nodr, 103501, &out), POSITION_SRC_NONE);
    /* invalid fixes are never selected */
    struct position_fix bad[4];
    for (int i = 0; i < 4; i++)
        bad[i] = mkfix(POSITION_SRC_MODEM, "modem:x", 100000, 55, 37, 0, 0);
    bad[0].lat = NAN;
    bad[1].lat = 0;
    bad[1].lon = 0;
    bad[2].lat = 91;
    bad[3].lon = INFINITY;
    struct position_inputs inb = {&bad[0], bad, 4, &bad[1], NULL};
    CHECK_INT(position_select(&inb, &lim, 100000, &out), POSITION_SRC_NONE);
    CHECK(!position_fix_valid(NULL));
    CHECK(!position_fix_valid(&bad[2]));
    CHECK(position_fix_valid(&g));
    /* a fix time in the future (clock fed wrongly) is treated as age 0, not wrapped */
    struct position_fix fut = g;
    fut.mono_ms = 200000;
    struct position_inputs inf = {&fut, NULL, 0, NULL, NULL};
    CHECK_INT(position_select(&inf, &lim, 100000, &out), POSITION_SRC_GPSD);
    CHECK_STR(position_source_str(POSITION_SRC_DEAD_RECKONING), "dead_reckoning");
    CHECK_STR(position_source_str((enum position_source)42), "none");
}

/* The object without a thread: feed modem fixes, read them back. */
static void test_object_feed(void)
{
    struct position_config c;
    char err[200];
    position_config_default(&c);
    CHECK_STR(c.gpsd_host, "localhost");
    CHECK_STR(c.gpsd_port, "2947");
    CHECK_INT(c.dr_max_gap_ms, 60000);
    /* config validation */
    str_copy(c.gpsd_port, "99999", sizeof(c.gpsd_port));
    CHECK(position_new(&c, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "99999") != NULL);
    position_config_default(&c);
    c.reconnect_min_ms = 0;
    CHECK(position_new(&c, err, sizeof(err)) == NULL);
    CHECK(position_new(NULL, err, sizeof(err)) == NULL);
    position_config_default(&c);
    c.gpsd_host[0] = '\0';
    str_copy(c.gpsd_port, "junk", sizeof(c.gpsd_port)); /* port ignored without host */
    struct position *p = position_new(&c, err, sizeof(err));
    CHECK(p != NULL);
    if (!p)
        return;
    struct position_fix out;
    CHECK(!position_get(p, &out));
    CHECK_INT(out.source, POSITION_SRC_NONE);

    uint64_t now = mono_ms();
    struct position_fix f = mkfix(POSITION_SRC_NONE, "", now - 500, 55.5, 37.5, 60.0, 45.0);
    position_feed_modem_fix(p, "mts", &f);
    CHECK(position_get(p, &out));
    CHECK_INT(out.source, POSITION_SRC_MODEM);
    CHECK_STR(out.source_name, "modem:mts");
    CHECK_NEAR(out.lat, 55.5, 1e-12);
    /* explicit "modem:" prefix is kept, not doubled; the fresher modem wins */
    f.lat = 55.6;
    f.mono_ms = 0; /* = now */
    position_feed_modem_fix(p, "modem:beeline", &f);
    CHECK(position_get(p, &out));
    CHECK_STR(out.source_name, "modem:beeline");
    CHECK_NEAR(out.lat, 55.6, 1e-12);
    /* bad readings: rejected, counted, never crash */
    struct position_fix b = f;
    b.lat = NAN;
    position_feed_modem_fix(p, "beeline", &b);
    b = f;
    b.lat = 0;
    b.lon = 0;
    position_feed_modem_fix(p, "mts", &b);
    position_feed_modem_fix(p, NULL, &f); /* nameless: "modem:?" */
    position_feed_modem_fix(p, "x", NULL);
    position_feed_modem_fix(NULL, "x", &f);
    char longname[200];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    position_feed_modem_fix(p, longname, &f); /* truncated, no overflow */
    /* many modems: bounded table */
    for (int i = 0; i < 20; i++) {
        char nm[16];
        snprintf(nm, sizeof(nm), "m%d", i);
        position_feed_modem_fix(p, nm, &f);
    }
    struct position_status st;
    position_get_status(p, &st);
    CHECK_INT(st.rejected_fixes, 2);
    CHECK_INT(st.modem_fixes, 2 + 1 + 1 + 20);
    CHECK(!st.gpsd_connected);
    CHECK(position_get(p, &out));
    CHECK_INT(out.source, POSITION_SRC_MODEM);
    CHECK(out.source_name[0] == 'm' && strlen(out.source_name) < POSITION_NAME_MAX);
    /* stop/free without start is fine */
    position_stop(p);
    position_free(p);
    position_free(NULL);
}

static void test_nmea_gen(void)
{
    /* the textbook example */
    CHECK_INT(nmea_checksum("GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"), 0x47);
    char buf[512];
    CHECK(nmea_frame(buf, sizeof(buf), "GPGSA,A,1,,,,,,,,,,,,,99.9,99.9,99.9") > 0);
    CHECK(buf[0] == '$' && strstr(buf, "*") && strstr(buf, "\r\n"));
    CHECK_INT(nmea_frame(buf, 8, "GPGSA,A,1,,,,,,,,,,,,,99.9,99.9,99.9"), 0);

    struct nmea_waypoint wp[3] = {{55.0, 37.0}, {55.0, 37.01}, {55.01, 37.01}};
    struct nmea_route r = {wp, 3, 10.0, 150.0};
    double len = nmea_route_length_m(&r);
    CHECK(len > 1745 && len < 1755); /* 637.8 m east + 1112.0 m north */
    double la, lo, trk;
    nmea_route_at(&r, 0, &la, &lo, &trk);
    CHECK_NEAR(la, 55.0, 1e-12);
    CHECK_NEAR(trk, 90.0, 0.01);
    nmea_route_at(&r, 1e6, &la, &lo, &trk); /* clamped to the end */
    CHECK_NEAR(la, 55.01, 1e-9);
    CHECK_NEAR(lo, 37.01, 1e-9);
    size_t n = nmea_epoch(buf, sizeof(buf), &r, 1767225600, 61, true);
    CHECK(n > 0);
    CHECK(strstr(buf, "$GPGGA,000101.00,5500.00000,N,03700.") != NULL);
    CHECK(strstr(buf, ",010126,") != NULL); /* RMC date 2026-01-01 */
    CHECK(strstr(buf, "GPRMC,000101.00,A,") != NULL);
    /* 10 m/s = 19.44 knots */
    CHECK(strstr(buf, ",19.44,") != NULL);
    n = nmea_epoch(buf, sizeof(buf), &r, 1767225600, 0, false);
    CHECK(strstr(buf, "GPRMC,000000.00,V,") != NULL);
    CHECK(strstr(buf, "GPGSA,A,1,") != NULL);
    /* every sentence's checksum verifies */
    for (char *s = buf; (s = strchr(s, '$')) != NULL; s++) {
        char *star = strchr(s, '*');
        CHECK(star != NULL);
        if (!star)
            break;
        char body[160];
        size_t bl = (size_t)(star - s - 1);
        CHECK(bl < sizeof(body));
        if (bl >= sizeof(body))
            break;
        memcpy(body, s + 1, bl);
        body[bl] = '\0';
        CHECK_INT(nmea_checksum(body), strtoul(star + 1, NULL, 16));
    }
    CHECK_INT(nmea_epoch(buf, 40, &r, 1767225600, 0, true), 0); /* too small: refused */
    /* south/west hemispheres */
    struct nmea_waypoint sw[2] = {{-33.5, -70.25}, {-33.6, -70.25}};
    struct nmea_route rs = {sw, 2, 10.0, 0};
    nmea_epoch(buf, sizeof(buf), &rs, 1767225600, 0, true);
    CHECK(strstr(buf, "3330.00000,S,07015.00000,W") != NULL);
}

int main(void)
{
    log_init("test_position_unit", LOGL_WARN, false);
    test_geodesy();
    test_dead_reckoning();
    test_select();
    test_object_feed();
    test_nmea_gen();
    return test_summary();
}
