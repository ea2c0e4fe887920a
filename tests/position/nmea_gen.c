/* nmea_gen: see nmea_gen.h. Positions use the same spherical model as telemetry/ (the
 * telemetry.h helpers), so "truth" and dead reckoning agree to floating-point accuracy on a
 * great-circle segment. */
#include "nmea_gen.h"

#include "telemetry/telemetry.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

double nmea_route_length_m(const struct nmea_route *r)
{
    double len = 0;
    for (size_t i = 1; i < r->n; i++)
        len += position_distance_m(r->wp[i - 1].lat, r->wp[i - 1].lon, r->wp[i].lat, r->wp[i].lon);
    return len;
}

void nmea_route_at(const struct nmea_route *r, double t_s, double *lat, double *lon,
                   double *track_deg)
{
    double d = t_s * r->speed_mps;
    for (size_t i = 1; i < r->n; i++) {
        const struct nmea_waypoint *a = &r->wp[i - 1], *b = &r->wp[i];
        double seg = position_distance_m(a->lat, a->lon, b->lat, b->lon);
        double brg = position_bearing_deg(a->lat, a->lon, b->lat, b->lon);
        if (d <= seg || i == r->n - 1) {
            if (d > seg)
                d = seg;
            position_destination(a->lat, a->lon, brg, d, lat, lon);
            /* the bearing changes along a great circle: report the local one */
            *track_deg = seg - d > 1.0 ? position_bearing_deg(*lat, *lon, b->lat, b->lon) : brg;
            return;
        }
        d -= seg;
    }
    *lat = r->wp[0].lat;
    *lon = r->wp[0].lon;
    *track_deg = 0;
}

unsigned nmea_checksum(const char *body)
{
    unsigned cs = 0;
    for (const char *c = body; *c; c++)
        cs ^= (unsigned char)*c;
    return cs;
}

size_t nmea_frame(char *buf, size_t n, const char *body)
{
    int len = snprintf(buf, n, "$%s*%02X\r\n", body, nmea_checksum(body));
    return len < 0 || (size_t)len >= n ? 0 : (size_t)len;
}

/* ddmm.mmmmm with hemisphere letter. */
static void fmt_coord(char *buf, size_t n, double v, bool is_lat)
{
    char hemi = is_lat ? (v < 0 ? 'S' : 'N') : (v < 0 ? 'W' : 'E');
    double a = fabs(v);
    int d = (int)a;
    double m = (a - d) * 60.0;
    if (m >= 59.999995) { /* would print as 60.00000 */
        d++;
        m = 0;
    }
    snprintf(buf, n, is_lat ? "%02d%08.5f,%c" : "%03d%08.5f,%c", d, m, hemi);
}

size_t nmea_epoch_at(char *buf, size_t n, int64_t utc, double lat, double lon, double alt_m,
                     double speed_mps, double track_deg, bool fix)
{
    time_t t = (time_t)utc;
    struct tm tm;
    gmtime_r(&t, &tm);
    char hms[16], dmy[16], la[24], lo[24], body[160];
    snprintf(hms, sizeof(hms), "%02d%02d%02d.00", tm.tm_hour, tm.tm_min, tm.tm_sec);
    snprintf(dmy, sizeof(dmy), "%02d%02d%02d", tm.tm_mday, tm.tm_mon + 1, tm.tm_year % 100);
    fmt_coord(la, sizeof(la), lat, true);
    fmt_coord(lo, sizeof(lo), lon, false);
    size_t off = 0, w;
    if (fix)
        snprintf(body, sizeof(body), "GPGGA,%s,%s,%s,1,08,0.9,%.1f,M,0.0,M,,", hms, la, lo, alt_m);
    else
        snprintf(body, sizeof(body), "GPGGA,%s,,,,,0,00,99.9,,M,,M,,", hms);
    if (!(w = nmea_frame(buf + off, n - off, body)))
        return 0;
    off += w;
    if (fix)
        snprintf(body, sizeof(body), "GPGSA,A,3,01,03,06,11,14,17,19,22,,,,,1.5,0.9,1.2");
    else
        snprintf(body, sizeof(body), "GPGSA,A,1,,,,,,,,,,,,,99.9,99.9,99.9");
    if (!(w = nmea_frame(buf + off, n - off, body)))
        return 0;
    off += w;
    if (fix)
        snprintf(body, sizeof(body), "GPRMC,%s,A,%s,%s,%.2f,%.2f,%s,,,A", hms, la, lo,
                 speed_mps * 3600.0 / 1852.0, track_deg, dmy);
    else
        snprintf(body, sizeof(body), "GPRMC,%s,V,,,,,,,%s,,,N", hms, dmy);
    if (!(w = nmea_frame(buf + off, n - off, body)))
        return 0;
    return off + w;
}

size_t nmea_epoch(char *buf, size_t n, const struct nmea_route *r, int64_t start_utc, unsigned k,
                  bool fix)
{
    double lat, lon, trk;
    nmea_route_at(r, (double)k, &lat, &lon, &trk);
    return nmea_epoch_at(buf, n, start_utc + k, lat, lon, r->alt_m, r->speed_mps, trk, fix);
}

int nmea_write_route(const char *path, const struct nmea_route *r, int64_t start_utc,
                     unsigned first, unsigned last, const struct nmea_gap *gaps, size_t ngaps,
                     char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "nmea_gen: %s: %s", path, strerror(errno));
        return -1;
    }
    /* gpsfake skips leading '#' lines: say what this is. */
    fprintf(f, "# corridor tests/position/nmea_gen: %zu waypoints, %.1f m/s, epochs %u..%u\n", r->n,
            r->speed_mps, first, last);
    for (unsigned k = first; k < last; k++) {
        bool fix = true;
        for (size_t g = 0; g < ngaps; g++)
            if (k >= gaps[g].from && k < gaps[g].to)
                fix = false;
        char buf[512];
        size_t len = nmea_epoch(buf, sizeof(buf), r, start_utc, k, fix);
        if (len == 0 || fwrite(buf, 1, len, f) != len) {
            snprintf(err, errlen, "nmea_gen: %s: write failed at epoch %u", path, k);
            fclose(f);
            return -1;
        }
    }
    if (fclose(f) != 0) {
        snprintf(err, errlen, "nmea_gen: %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
