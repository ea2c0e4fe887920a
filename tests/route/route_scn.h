/* route_scn: ONE route-replay scenario (tests/route/scenarios/) and the truth it implies.
 *
 * A scenario is a route (polyline, closed or not) with a speed profile, a standstill ("dwell")
 * at the start of every trip, and per operator its link (rate, delay), its radio (RSRP/SINR)
 * and its dead zones along the route, some recurring on every trip and some appearing only from
 * a given trip on. From it corridor-route-gen writes, on one shared time axis (t = 0 when the
 * link emulators are released): the link emulator's schedule, the modem simulator's timeline,
 * gpsfake's NMEA, and the truth (trip times, dead-zone entries/exits) the benchmark scores
 * against. Everything below is a pure function of the loaded scenario. Test helper. */
#ifndef CORRIDOR_TESTS_ROUTE_SCN_H
#define CORRIDOR_TESTS_ROUTE_SCN_H

#include <stdbool.h>
#include <stddef.h>

#define RS_MAX_WP     256
#define RS_MAX_SPEED  32
#define RS_MAX_OPS    8
#define RS_MAX_ZONES  16
#define RS_NAME_MAX   16
#define RS_MAX_EVENTS 4096

struct rs_zone {
    double from_m, to_m; /* along the route, from the start of a trip */
    unsigned from_trip;  /* first trip (0-based) that has it; 0 = every trip */
};

struct rs_op {
    char name[RS_NAME_MAX]; /* link / modem name, e.g. "mts" */
    char mcc[4], mnc[4];
    char rate[16];     /* link emulator rate, e.g. "20M" */
    double delay_ms;   /* one-way */
    double rsrp, sinr; /* where nothing is wrong */
    double fade_m;     /* the radio fades over this distance before/after a dead zone */
    unsigned nzones;
    struct rs_zone zones[RS_MAX_ZONES];
};

struct rs_speed {
    double until_m; /* the profile segment ends here (the last one: the route's length) */
    double mps;
};

struct route_scn {
    unsigned nwp;
    double lat[RS_MAX_WP], lon[RS_MAX_WP];
    double cum_m[RS_MAX_WP]; /* distance from the first waypoint */
    double length_m, alt_m;
    unsigned nspeed;
    struct rs_speed speed[RS_MAX_SPEED];
    double drive_s;     /* time to drive the route once */
    double dwell_s;     /* standstill at the start of every trip */
    double preroll_s;   /* standstill before the first trip (modems boot, tunnel comes up) */
    double tail_s;      /* standstill after the last trip */
    double modem_lag_s; /* the modem reports a dead zone's start and end this much later than the
                           radio path fails/returns (radio link failure detection, T310 = 1 s) */
    unsigned learn_trips;
    unsigned nops;
    struct rs_op ops[RS_MAX_OPS];
};

/* Load and validate; errors name the JSON key. 0 or -1. */
int rs_load(const char *path, struct route_scn *s, char *err, size_t errlen);

/* A schedule replays trips [first, last] (inclusive) after the preroll. */
struct rs_sched {
    const struct route_scn *s;
    unsigned first, last;
};
double rs_trip_len_s(const struct route_scn *s);                 /* dwell + drive */
double rs_trip_start(const struct rs_sched *sc, unsigned trip);  /* when its dwell starts */
double rs_drive_start(const struct rs_sched *sc, unsigned trip); /* when it starts moving */
double rs_total_s(const struct rs_sched *sc);

struct rs_state {
    int trip;      /* -1 = preroll/tail (standing at the start) */
    double dist_m; /* along the route (0 while dwelling) */
    double lat, lon, speed_mps, track_deg;
};
void rs_at(const struct rs_sched *sc, double t, struct rs_state *out);
/* Time (from the start of the drive) at which distance d is reached. */
double rs_time_at_dist(const struct route_scn *s, double d);
/* Position and track at distance d along the route. */
void rs_point_at(const struct route_scn *s, double d, double *lat, double *lon, double *track);

/* Radio of operator k at schedule time t: dead (no service) or rsrp/sinr, as the path sees it;
 * rs_modem_at: as its modem reports it (modem_lag_s later). */
struct rs_radio {
    bool dead;
    double rsrp, sinr;
};
void rs_radio_at(const struct rs_sched *sc, unsigned k, double t, struct rs_radio *out);
void rs_modem_at(const struct rs_sched *sc, unsigned k, double t, struct rs_radio *out);

/* Dead-zone occurrences in the schedule, in time order. */
struct rs_event {
    unsigned op;   /* operator index */
    unsigned trip; /* trip index */
    unsigned zone; /* zone index in the operator */
    double entry_s, exit_s;
};
size_t rs_events(const struct rs_sched *sc, struct rs_event *ev, size_t max);

#endif
