/* coverage: the learned coverage map (per operator, per ~50 m cell, sqlite under data_dir).
 *
 * Internal-style header of telemetry/ (telemetry/telemetry.h includes it). Plain inputs only:
 * operators are MCC-MNC strings ("250-01"), unknown numbers are NAN. See docs/coverage.md for
 * the model (cell keys, statistics, fading, sizes, prediction, weights policy).
 *
 * Threading: every function takes the map's mutex, so one thread may add samples while another
 * predicts. Nothing here is called from the data plane: coverage_add_sample() does at most one
 * indexed sqlite read, and the write transaction happens every commit_interval_s. */
#ifndef CORRIDOR_TELEMETRY_COVERAGE_H
#define CORRIDOR_TELEMETRY_COVERAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "telemetry/predict.h"

#define COV_OP_MAX  16 /* operator id, e.g. "250-01"; [A-Za-z0-9 ._-] only */
#define COV_MAX_OPS 16 /* operators known to one map */

enum cov_fix_source {
    COV_FIX_NONE = 0, /* sample is rejected */
    COV_FIX_GPSD,
    COV_FIX_MODEM,
    COV_FIX_DEAD_RECKONING, /* accepted for the per-operator statistics, not for path learning */
};

enum cov_net {
    COV_NET_UNKNOWN = 0,
    COV_NET_NONE, /* no service */
    COV_NET_GSM,
    COV_NET_3G,
    COV_NET_LTE,
    COV_NET_5G_NSA,
    COV_NET_5G_SA,
};
const char *cov_net_name(enum cov_net n);

/* One second of one link. */
struct cov_sample {
    int64_t utc;     /* unix seconds (wall clock; last-seen and the jump filter) */
    uint32_t trip;   /* trip id from the caller, != 0; a new id starts a new trip everywhere */
    double lat, lon; /* WGS84 degrees */
    double speed_mps, track_deg; /* NAN if unknown */
    enum cov_fix_source fix;
    char op[COV_OP_MAX];
    enum cov_net net;
    double rsrp_dbm, rsrq_db, sinr_db, rssi_dbm; /* radio, NAN if unknown */
    double goodput_kbps, rtt_ms, loss;           /* tunnel on this link, NAN if unknown */
    bool outage;                                 /* the tunnel had no path on this link */
    uint32_t fix_age_ms; /* how old the position was when this sample was taken (0 = fresh);
                            older than COV_MAX_FIX_AGE_MS = a stale fix, refused */
};
#define COV_MAX_FIX_AGE_MS 5000

struct coverage_params {
    double cell_m;              /* cell edge in metres (default 50, 5..1000); fixed per database */
    double half_life_trips;     /* evidence halves every this many trips (default 2) */
    unsigned trip_cap;          /* samples per trip per cell at full weight (default 10) */
    unsigned commit_interval_s; /* add_sample commits at most this often (default 10) */
    double max_speed_mps;       /* implied speed above this = position jump (default 120) */
    double dead_outage;         /* a cell is dead at this outage fraction (default 0.5) */
    double dead_quality;        /* ... or below this quality 0..1 (default 0.2) */
    double conf_trips_k;        /* confidence = 1 - exp(-trips / k) (default 3) */
    unsigned max_mb;            /* database size bound: beyond it the least recently seen cells
                                   are pruned to 90% (default 100) */
};
void coverage_params_default(struct coverage_params *p);

struct coverage_map;

/* Open or create the map at path (e.g. "<data_dir>/coverage.db"). A database that fails
 * quick_check or is not a coverage map is renamed to "<path>.corrupt-<unix time>" and a new
 * one is created (the error is logged, the map still opens). The cell size stored in an
 * existing database wins over params->cell_m. params may be NULL (defaults). */
int coverage_open(const char *path, const struct coverage_params *params, struct coverage_map **out,
                  char *err, size_t errlen);
/* Flushes and closes; NULL is fine. */
void coverage_close(struct coverage_map *m);

/* 0 = aggregated, 1 = rejected as bad input (reason in err), -1 = database error (in err).
 * Commits by itself every commit_interval_s (a power cut loses at most that much). */
int coverage_add_sample(struct coverage_map *m, const struct cov_sample *s, char *err,
                        size_t errlen);
/* Commit everything pending now (one transaction). */
int coverage_flush(struct coverage_map *m, char *err, size_t errlen);

/* Delete the least recently seen cells until the data fits 90% of max_bytes (0 = the
 * max_mb parameter), then give the space back to the file system. Runs by itself at open and
 * about hourly. Returns the number of cells deleted or -1. */
long coverage_prune(struct coverage_map *m, uint64_t max_bytes, char *err, size_t errlen);

struct coverage_stats {
    double cell_m;
    uint64_t cells;      /* (cell, operator) aggregates */
    uint64_t geo_cells;  /* geographic cells (database rows, each with its learned path) */
    uint64_t samples;    /* accepted samples, ever (committed) */
    uint64_t rejected;   /* rejected since open */
    unsigned rebuilds;   /* damaged databases set aside (and started anew) while running */
    uint64_t file_bytes; /* database + WAL */
    unsigned n_ops;
    char ops[COV_MAX_OPS][COV_OP_MAX];
};
int coverage_get_stats(struct coverage_map *m, struct coverage_stats *st, char *err, size_t errlen);

/* Aggregate of one operator in one cell, decoded. */
struct cov_cell {
    int64_t key;
    double lat, lon; /* cell centre */
    char op[COV_OP_MAX];
    double n;           /* decayed sample weight */
    unsigned trips;     /* distinct trips seen (not decayed) */
    uint32_t last_trip; /* modulo 65536 (only compared for equality) */
    int64_t last_seen;
    enum cov_net net;                                          /* last known network type */
    double outage;                                             /* decayed outage fraction 0..1 */
    double rsrp, rsrq, sinr, rssi, rtt_ms, goodput_kbps, loss; /* decayed means, NAN unknown */
    /* fraction (0..1) of known samples in the worst bucket (see docs/coverage.md) */
    double rsrp_bad, sinr_bad, rtt_bad, goodput_bad;
    double quality; /* 0..1, see coverage_cell_quality */
    bool dead;
};

/* Cell keys: lat index = metres north of -90 / cell_m; lon index = metres east of -180 at the
 * centre latitude of the row's 1-degree band / cell_m; key = lat_idx << 24 | lon_idx. */
int64_t coverage_cell_key(const struct coverage_map *m, double lat, double lon);
void coverage_cell_center(const struct coverage_map *m, int64_t key, double *lat, double *lon);
double coverage_cell_m(const struct coverage_map *m);
/* Look up operator op in the cell containing lat/lon. 1 found, 0 no data, -1 error. */
int coverage_lookup(struct coverage_map *m, double lat, double lon, const char *op,
                    struct cov_cell *out, char *err, size_t errlen);

/* GeoJSON FeatureCollection of cell centre Points with per-operator properties. bbox (may be
 * NULL) = {min_lon, min_lat, max_lon, max_lat}. Returns the number of features or -1. */
long coverage_export_geojson(struct coverage_map *m, FILE *f, const double *bbox, char *err,
                             size_t errlen);
int coverage_export_geojson_path(struct coverage_map *m, const char *path, const double *bbox,
                                 char *err, size_t errlen);
/* Merge another coverage database (sqlite file, e.g. another vehicle's coverage.db or the data
 * center's merged map) into m, weighting every statistic by sample count. Refuses a different
 * cell size, and a map (by its map_id) already imported at the same sample count. Returns the
 * number of (cell, operator) rows merged or -1. */
long coverage_import(struct coverage_map *m, const char *path, char *err, size_t errlen);

/* ---- geodesy on a sphere (R = 6371008.8 m), enough at cell scale ---- */
double cov_distance_m(double lat1, double lon1, double lat2, double lon2);
double cov_bearing_deg(double lat1, double lon1, double lat2, double lon2); /* [0,360) */
void cov_destination(double lat, double lon, double bearing_deg, double dist_m, double *lat2,
                     double *lon2);

/* Quality 0..1 of an aggregate and whether it counts as a dead zone (filled into the
 * cov_cell by every look-up; documented in docs/coverage.md). */
void coverage_cell_judge(const struct coverage_map *m, struct cov_cell *c);

/* ---- for the predictor (predict.c); the mutex is recursive ---- */
/* Up to max successor cells of key learned from past trips, with their decayed weights. */
int coverage_path_next(struct coverage_map *m, int64_t key, int64_t *next, double *weight, int max);
/* Every operator's aggregate in cell key; returns the count (0..max) or -1. */
int coverage_cell_ops(struct coverage_map *m, int64_t key, struct cov_cell *out, int max);
/* Known operator names; returns the count. */
int coverage_ops(struct coverage_map *m, char ops[][COV_OP_MAX], int max);
const struct coverage_params *coverage_params_of(const struct coverage_map *m);
/* The map's mutex, held by coverage_predict() across its many look-ups. */
void coverage_lock(struct coverage_map *m);
void coverage_unlock(struct coverage_map *m);

/* ---- read-only area query (dashboard, appended) ---------------------------------------------
 * Reads the committed map through its OWN read-only sqlite connection, opened and closed per
 * call: it never takes the map's mutex (the steer thread's add/predict never wait for a
 * dashboard client), and WAL lets it read while the steer thread commits. Aggregates still in
 * the writer's cache (at most commit_interval_s old) are not visible. */
struct cov_area_query {
    double bbox[4];    /* min_lon, min_lat, max_lon, max_lat; every cell intersecting it */
    const char *op;    /* NULL/"" = every operator, else only this one */
    unsigned limit;    /* at most this many (cell, operator) entries, 1..1000000 */
    unsigned max_rows; /* refuse boxes taller than this many cell rows (0 = 20000) */
    const struct coverage_params *params; /* judging thresholds; NULL = defaults */
};
struct cov_area_cell {
    struct cov_cell c;                         /* centre, operator, statistics, quality, dead */
    double lat_min, lat_max, lon_min, lon_max; /* cell bounds */
    /* The 4-bucket histogram's median bucket as [lo, hi) (robust to outliers; NAN = open end
     * or unknown, known=false when the metric was never seen). Bucket edges: docs/coverage.md. */
    bool rsrp_med_known, sinr_med_known, goodput_med_known;
    double rsrp_med[2], sinr_med[2], goodput_med[2];
};
struct cov_area_result {
    double cell_m;
    unsigned cells; /* entries handed to fn */
    bool truncated; /* more entries than limit intersect the box */
    unsigned n_ops; /* operators known to the map */
    char ops[COV_MAX_OPS][COV_OP_MAX];
};
/* Called per entry, south to north, west to east, operators in map order. Non-zero stops
 * (the query then returns -1 with err "stopped by caller"). */
typedef int (*cov_area_fn)(void *ctx, const struct cov_area_cell *c);
#define COV_QUERY_NO_MAP 1
/* Query the database file at path (e.g. "<data_dir>/coverage.db"). 0 = done (res filled),
 * COV_QUERY_NO_MAP = no such file or not a coverage map yet, -1 = bad query or database error
 * (err names what). Never creates or modifies the file. */
int coverage_query_area(const char *path, const struct cov_area_query *q, cov_area_fn fn, void *ctx,
                        struct cov_area_result *res, char *err, size_t errlen);

#endif
