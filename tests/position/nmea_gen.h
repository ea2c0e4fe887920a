/* nmea_gen: writes 1 Hz NMEA 0183 (GGA + GSA + RMC per epoch) for a route, to feed gpsd through
 * gpsfake. The route is a polyline driven at a constant speed; chosen epochs can have no fix
 * (receiver lost the sky: GGA quality 0, GSA mode 1, RMC status V). Test helper. */
#ifndef CORRIDOR_TESTS_NMEA_GEN_H
#define CORRIDOR_TESTS_NMEA_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nmea_waypoint {
    double lat, lon;
};

struct nmea_route {
    const struct nmea_waypoint *wp;
    size_t n;         /* >= 2 */
    double speed_mps; /* constant along the route */
    double alt_m;     /* constant altitude (MSL) */
};

/* Epochs [from, to) have no fix. */
struct nmea_gap {
    unsigned from, to;
};

/* Truth: where the vehicle is t_s seconds after the start (clamped to the route end) and its
 * track in degrees. */
void nmea_route_at(const struct nmea_route *r, double t_s, double *lat, double *lon,
                   double *track_deg);
double nmea_route_length_m(const struct nmea_route *r);

/* Frame body ("GPRMC,...") as "$body*CS\r\n" into buf; returns the length, 0 if it does not fit. */
size_t nmea_frame(char *buf, size_t n, const char *body);
/* XOR checksum of body. */
unsigned nmea_checksum(const char *body);

/* The three sentences of epoch k (time start_utc + k) into buf. fix=false writes no-fix ones. */
size_t nmea_epoch(char *buf, size_t n, const struct nmea_route *r, int64_t start_utc, unsigned k,
                  bool fix);

/* The three sentences of one epoch at an explicit position (speed profiles, route replay). */
size_t nmea_epoch_at(char *buf, size_t n, int64_t utc, double lat, double lon, double alt_m,
                     double speed_mps, double track_deg, bool fix);

/* Write epochs [first, last) to path (truncating it). 0, or -1 with a message. */
int nmea_write_route(const char *path, const struct nmea_route *r, int64_t start_utc,
                     unsigned first, unsigned last, const struct nmea_gap *gaps, size_t ngaps,
                     char *err, size_t errlen);

#endif
