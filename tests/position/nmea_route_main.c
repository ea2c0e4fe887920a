/* corridor-nmea-route: write 1 Hz NMEA for a route taken from a modem-simulator scenario
 * ("route": {"speed_kmh", "alt_m", "waypoints": [{"lat","lon"},...]}), so the demo's gpsd
 * (fed by gpsfake) and the simulated modems' GNSS describe the same trip.
 *   corridor-nmea-route SCENARIO.json OUT.nmea [SECONDS]   (default: one pass of the route) */
#include "nmea_gen.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: corridor-nmea-route SCENARIO.json OUT.nmea [SECONDS]\n");
        return 2;
    }
    json_error_t je;
    json_t *root = json_load_file(argv[1], 0, &je);
    if (!root) {
        fprintf(stderr, "%s: line %d: %s\n", argv[1], je.line, je.text);
        return 2;
    }
    json_t *route = json_object_get(root, "route");
    json_t *wps = json_object_get(route, "waypoints");
    size_t n = json_array_size(wps);
    if (!json_is_object(route) || n < 2) {
        fprintf(stderr, "%s: route.waypoints: need at least 2 waypoints\n", argv[1]);
        json_decref(root);
        return 2;
    }
    struct nmea_waypoint *wp = calloc(n, sizeof *wp);
    if (!wp) {
        json_decref(root);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *w = json_array_get(wps, i);
        json_t *la = json_object_get(w, "lat"), *lo = json_object_get(w, "lon");
        if (!json_is_number(la) || !json_is_number(lo)) {
            fprintf(stderr, "%s: route.waypoints[%zu]: lat and lon must be numbers\n", argv[1], i);
            free(wp);
            json_decref(root);
            return 2;
        }
        wp[i].lat = json_number_value(la);
        wp[i].lon = json_number_value(lo);
    }
    double kmh = json_is_number(json_object_get(route, "speed_kmh"))
                     ? json_number_value(json_object_get(route, "speed_kmh"))
                     : 60.0;
    double alt = json_is_number(json_object_get(route, "alt_m"))
                     ? json_number_value(json_object_get(route, "alt_m"))
                     : 150.0;
    struct nmea_route r = {.wp = wp, .n = n, .speed_mps = kmh / 3.6, .alt_m = alt};
    unsigned secs = argc == 4 ? (unsigned)strtoul(argv[3], NULL, 10)
                              : (unsigned)(nmea_route_length_m(&r) / r.speed_mps);
    char err[256];
    int rc = nmea_write_route(argv[2], &r, (int64_t)time(NULL), 0, secs, NULL, 0, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", argv[2], err);
    else
        printf("%s: %u epochs, %.1f km at %.0f km/h\n", argv[2], secs,
               nmea_route_length_m(&r) / 1000.0, kmh);
    free(wp);
    json_decref(root);
    return rc ? 1 : 0;
}
