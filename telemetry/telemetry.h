/* telemetry: the only public header of telemetry/ (position, and later samples, coverage map,
 * ten-minute batches, outbox and uploader).
 *
 * telemetry/ includes only common/common.h: modem data (e.g. a modem's GNSS fix) comes in
 * through plain input functions that firmware/ calls, never by including modem/ headers.
 *
 * Sections:
 *   1. position   gateway position from gpsd (libgps), modem GNSS fallback, dead reckoning
 *   3. coverage   the coverage map per operator, the predictor and the weights policy
 *   (4. records, batches, outbox and uploader)
 */
#ifndef CORRIDOR_TELEMETRY_H
#define CORRIDOR_TELEMETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ==== 1. position ==========================================================================
 * One "position" thread reads TPV reports from gpsd; modems' GNSS fixes are fed in by the
 * caller; position_get() returns the best current fix from (in order) gpsd, the freshest modem,
 * dead reckoning from the last good fix, or none. See docs/position.md. */

enum position_mode {
    POSITION_MODE_NONE = 0, /* no fix: lat/lon/alt are NAN */
    POSITION_MODE_2D = 2,   /* lat/lon valid; alt_m may be NAN */
    POSITION_MODE_3D = 3,   /* lat/lon/alt valid */
};

enum position_source {
    POSITION_SRC_NONE = 0,
    POSITION_SRC_GPSD,
    POSITION_SRC_MODEM,
    POSITION_SRC_DEAD_RECKONING,
};

#define POSITION_NAME_MAX 40 /* source names: "gpsd", "modem:<link>", "dead_reckoning", "none" */

struct position_fix {
    uint64_t mono_ms; /* CLOCK_MONOTONIC ms when observed (dead reckoning: when computed) */
    int64_t utc;      /* unix seconds from the receiver, -1 if unknown */
    enum position_mode mode;
    double lat, lon;     /* decimal degrees WGS84 */
    double alt_m;        /* metres above mean sea level, NAN if unknown */
    double speed_kmh;    /* NAN if unknown */
    double track_deg;    /* course over ground, degrees from true north [0,360), NAN if unknown */
    double eph_m, epv_m; /* horizontal / vertical error estimates in metres, NAN if unknown */
    enum position_source source;
    char source_name[POSITION_NAME_MAX];
};

/* A change of the source in use, e.g. "position: gpsd lost fix, using modem:mts GNSS". */
struct position_event {
    uint64_t mono_ms;
    enum position_source from, to;
    char from_name[POSITION_NAME_MAX], to_name[POSITION_NAME_MAX];
    char text[200];
};

/* Called on the position thread; must not block and must not call position_stop/free. */
typedef void (*position_event_fn)(void *ctx, const struct position_event *ev);
/* Every TPV report read from gpsd (any mode), before selection. For tracing and tests. */
typedef void (*position_report_fn)(void *ctx, const struct position_fix *fix);

struct position_config {
    char gpsd_host[64];           /* "" = do not use gpsd (modem fixes and dead reckoning only) */
    char gpsd_port[8];            /* default "2947" */
    unsigned gpsd_fresh_ms;       /* a gpsd fix is usable this long (default 2000) */
    unsigned modem_fresh_ms;      /* a modem fix is usable this long (default 3000) */
    unsigned dr_max_gap_ms;       /* dead reckoning at most this long after the last good fix
                                     (default 60000; 0 disables dead reckoning) */
    unsigned reconnect_min_ms;    /* gpsd reconnect backoff start (default 500) */
    unsigned reconnect_max_ms;    /* and cap (default 10000) */
    position_event_fn on_event;   /* optional */
    position_report_fn on_report; /* optional */
    void *cb_ctx;
};

/* Status for the shared state / diagnostics. */
struct position_status {
    enum position_source source; /* in use at the last evaluation (about every 100 ms) */
    char source_name[POSITION_NAME_MAX];
    bool gpsd_connected;
    uint64_t gpsd_connects; /* successful connections (a restart of gpsd adds one) */
    uint64_t gpsd_connect_failures;
    uint64_t gpsd_disconnects;
    uint64_t gpsd_reports;   /* TPV reports read */
    uint64_t modem_fixes;    /* fixes fed by position_feed_modem_fix (accepted) */
    uint64_t rejected_fixes; /* fixes dropped as invalid (NaN, out of range, 0/0) */
    uint64_t switches;       /* source changes (events) */
    char last_event[200];    /* text of the last event, "" if none yet */
};

struct position;

/* Fill c with the defaults above (gpsd at localhost:2947). */
void position_config_default(struct position_config *c);

/* Allocate (no thread yet). NULL with a message in err on a bad config. Free with position_free. */
struct position *position_new(const struct position_config *cfg, char *err, size_t errlen);
/* Start the "position" thread. 0 on success, -1 with a message in err. */
int position_start(struct position *p, char *err, size_t errlen);
/* Stop and join the thread (returns within ~200 ms). Safe if not started or already stopped. */
void position_stop(struct position *p);
/* Stops if needed, then frees. NULL is fine. */
void position_free(struct position *p);

/* Feed one modem's GNSS reading. name is the link name ("mts") or "modem:mts"; the source name
 * becomes "modem:<link>". fix->mode NONE means that modem has no fix now. fix->mono_ms is when
 * the modem was read (0 = now). Thread-safe; copies the fix; invalid fixes are counted and
 * dropped. Up to POSITION_MAX_MODEMS modems are tracked, the least recently fed is replaced. */
#define POSITION_MAX_MODEMS 8
void position_feed_modem_fix(struct position *p, const char *name, const struct position_fix *fix);

/* The best current fix (a copy), computed at the time of the call. Thread-safe, cheap (one
 * mutex, no I/O). Returns true if out->mode != POSITION_MODE_NONE. */
bool position_get(struct position *p, struct position_fix *out);
void position_get_status(struct position *p, struct position_status *out);

const char *position_source_str(enum position_source s); /* "gpsd", "modem", ... */

/* ---- pure helpers (no state; used by the thread and exposed for unit tests and later the
 * coverage map / predictor) ---- */

#define POSITION_EARTH_RADIUS_M 6371008.8 /* mean Earth radius (spherical model) */

/* Great-circle distance in metres (haversine). */
double position_distance_m(double lat1, double lon1, double lat2, double lon2);
/* Initial bearing from point 1 to point 2, degrees [0,360). */
double position_bearing_deg(double lat1, double lon1, double lat2, double lon2);
/* The point dist_m away from (lat, lon) along bearing_deg (great circle). */
void position_destination(double lat, double lon, double bearing_deg, double dist_m,
                          double *lat_out, double *lon_out);

/* A fix is valid when mode is 2D/3D and lat/lon are finite, in range and not exactly 0/0. */
bool position_fix_valid(const struct position_fix *f);

/* Dead reckoning: where base (a valid fix) is at now_ms, moving at its speed along its track.
 * Without a track (or below 1 km/h) the position is held. eph grows with time and distance
 * (see docs/position.md). out->source = DEAD_RECKONING, mode 2D. */
void position_dead_reckon(const struct position_fix *base, uint64_t now_ms,
                          struct position_fix *out);

/* Inputs of the selection; every pointer may be NULL (n_modems 0). */
struct position_inputs {
    const struct position_fix *gpsd;   /* latest gpsd report (any mode) */
    const struct position_fix *modems; /* latest reading of each modem */
    size_t n_modems;
    const struct position_fix *last_good; /* most recent valid fix of any source */
    const char *current; /* source name in use now (NULL = none): a modem source that is still
                            fresh is kept, so several modems' GNSS do not flap at 1 Hz */
};
struct position_limits {
    unsigned gpsd_fresh_ms, modem_fresh_ms, dr_max_gap_ms;
};
/* The selection rule (docs/position.md): gpsd 2D/3D no older than gpsd_fresh_ms, else the
 * current modem source while still fresh, else the freshest valid modem fix no older than
 * modem_fresh_ms, else dead reckoning from last_good if
 * it is no older than dr_max_gap_ms, else none. Writes the chosen fix to out, returns its source.
 */
enum position_source position_select(const struct position_inputs *in,
                                     const struct position_limits *lim, uint64_t now_ms,
                                     struct position_fix *out);

/* ==== 2. samples (to come) ================================================================= */
/* ==== 3. coverage map (to come) ============================================================ */
/* ==== 4. batches and outbox (to come) ====================================================== */

/* ==== 3. coverage map, look-ahead prediction and the weights policy =========================
 * Kept in their own headers for size; this header is still the one firmware/ includes. */
#include "telemetry/coverage.h"
#include "telemetry/policy.h"
#include "telemetry/predict.h"

/* ==== 4. records, ten-minute batches, the outbox and the uploader ==========================
 * See record.h, outbox.h, upload.h and docs/telemetry.md. */
#include "telemetry/outbox.h"
#include "telemetry/record.h"
#include "telemetry/simfin.h"
#include "telemetry/upload.h"
#include "telemetry/smart.h"

#endif
