/* coverage: the learned per-operator coverage map in sqlite (docs/coverage.md).
 *
 * Write path: coverage_add_sample() loads the (cell, operator) aggregate into a small in-memory
 * cache (one indexed read the first time a cell is touched in a commit interval), updates it in
 * doubles, and every commit_interval_s all dirty aggregates are written in ONE transaction
 * (WAL, synchronous=FULL: one fsync per commit, a power cut loses at most one interval and never
 * corrupts). Aggregates are stored as a fixed 53-byte little-endian blob (quantised means,
 * bucket fractions) so that 10,000 km x 4 operators stays far below 100 MB.
 *
 * Read path: look-ups check the cache first, then the database, so the predictor always sees
 * the newest data. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* PTHREAD_MUTEX_RECURSIVE */
#endif
#include "telemetry/coverage.h"

#include "common/common.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SUBSYS "coverage"

#define SCHEMA_VERSION      1
#define M_PER_DEG_LAT       111320.0 /* metres per degree of latitude (cell keys only) */
#define EARTH_R_M           6371008.8
#define LON_BITS            24
#define MAX_LAT             89.0 /* beyond this the lon scale degenerates; such samples are refused */
#define AGG_BLOB_LEN        53
#define PATH_BLOB_LEN       16
#define PATH_SLOTS          3
#define PATH_MAX_GAP_S      5    /* successor learned only between samples this close in time */
#define JUMP_REANCHOR       5    /* this many consecutive jump rejections re-anchor the filter */
#define LONG_GAP_S          600  /* after a gap this long the jump filter re-anchors silently */
#define CACHE_SLOTS         1024 /* open addressing, power of two */
#define CACHE_HIGH          700  /* flush before the cache gets fuller than this */
#define PATH_CACHE_SLOTS    512
#define PATH_CACHE_HIGH     350
#define PRUNE_EVERY_COMMITS 360 /* size check about hourly */

/* Metrics: the first M_HIST keep a 4-bucket histogram (bucket 0 = worst). */
enum { M_RSRP, M_SINR, M_RTT, M_GOODPUT, M_RSRQ, M_RSSI, M_LOSS, M_COUNT };
#define M_HIST 4

struct agg {
    double n;     /* decayed sample weight */
    double out_w; /* decayed weight of outage samples */
    double w[M_COUNT], mean[M_COUNT];
    double h[M_HIST][4];
    uint32_t trips, last_trip, trip_n;
    int64_t last_seen;
    uint8_t net;
};

struct path {
    int64_t next[PATH_SLOTS]; /* 0 = empty slot */
    double w[PATH_SLOTS];
    uint32_t last_trip;
};

struct centry {
    bool used, dirty;
    int64_t cell;
    int op;
    struct agg a;
};

struct pentry {
    bool used, dirty;
    int64_t cell;
    struct path p;
};

struct coverage_map {
    pthread_mutex_t mu;
    struct coverage_params prm;
    double decay; /* per-trip factor 2^(-1/half_life) */
    double max_mass;
    char path[512];
    char map_id[40];
    sqlite3 *db;
    sqlite3_stmt *sel_row, *put_row;
    int n_ops;
    char ops[COV_MAX_OPS][COV_OP_MAX];
    int op_ids[COV_MAX_OPS];
    struct centry cache[CACHE_SLOTS];
    unsigned cache_n;
    struct pentry pcache[PATH_CACHE_SLOTS];
    unsigned pcache_n;
    uint64_t pending_samples, samples_committed, rejected;
    uint64_t last_commit_ms;
    uint64_t commits;
    /* jump filter and path learning: the last accepted position of this vehicle */
    bool have_last;
    double last_lat, last_lon;
    int64_t last_utc;
    uint32_t last_trip;
    int64_t last_cell;
    bool last_cell_ok; /* last sample may seed a successor (not dead reckoning) */
    unsigned jump_rejects;
    int bad_rc;        /* SQLITE_CORRUPT/NOTADB seen since the last check (0 = none) */
    unsigned rebuilds; /* databases set aside while running */
};

/* ---- small helpers ------------------------------------------------------------------------ */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static double clampd(double x, double lo, double hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

static double rad(double d)
{
    return d * M_PI / 180.0;
}

double cov_distance_m(double lat1, double lon1, double lat2, double lon2)
{
    double dlat = rad(lat2 - lat1), dlon = rad(lon2 - lon1);
    double a = sin(dlat / 2) * sin(dlat / 2) +
               cos(rad(lat1)) * cos(rad(lat2)) * sin(dlon / 2) * sin(dlon / 2);
    return 2 * EARTH_R_M * atan2(sqrt(a), sqrt(fmax(0.0, 1 - a)));
}

double cov_bearing_deg(double lat1, double lon1, double lat2, double lon2)
{
    double y = sin(rad(lon2 - lon1)) * cos(rad(lat2));
    double x =
        cos(rad(lat1)) * sin(rad(lat2)) - sin(rad(lat1)) * cos(rad(lat2)) * cos(rad(lon2 - lon1));
    double b = atan2(y, x) * 180.0 / M_PI;
    return fmod(b + 360.0, 360.0);
}

void cov_destination(double lat, double lon, double bearing_deg, double dist_m, double *lat2,
                     double *lon2)
{
    double d = dist_m / EARTH_R_M, b = rad(bearing_deg), p1 = rad(lat), l1 = rad(lon);
    double p2 = asin(sin(p1) * cos(d) + cos(p1) * sin(d) * cos(b));
    double l2 = l1 + atan2(sin(b) * sin(d) * cos(p1), cos(d) - sin(p1) * sin(p2));
    *lat2 = p2 * 180.0 / M_PI;
    *lon2 = fmod(l2 * 180.0 / M_PI + 540.0, 360.0) - 180.0;
}

const char *cov_net_name(enum cov_net n)
{
    switch (n) {
    case COV_NET_NONE:
        return "none";
    case COV_NET_GSM:
        return "gsm";
    case COV_NET_3G:
        return "3g";
    case COV_NET_LTE:
        return "lte";
    case COV_NET_5G_NSA:
        return "5g-nsa";
    case COV_NET_5G_SA:
        return "5g-sa";
    case COV_NET_UNKNOWN:
    default:
        return "unknown";
    }
}

void coverage_params_default(struct coverage_params *p)
{
    memset(p, 0, sizeof(*p));
    p->cell_m = 50.0;
    p->half_life_trips = 2.0;
    p->trip_cap = 10;
    p->commit_interval_s = 10;
    p->max_speed_mps = 120.0;
    p->dead_outage = 0.5;
    p->dead_quality = 0.2;
    p->conf_trips_k = 3.0;
    p->max_mb = 100;
}

static void params_fix(struct coverage_params *p)
{
    struct coverage_params d;
    coverage_params_default(&d);
    if (!(p->cell_m >= 5.0 && p->cell_m <= 1000.0))
        p->cell_m = d.cell_m;
    if (!(p->half_life_trips > 0.1 && p->half_life_trips < 1000.0))
        p->half_life_trips = d.half_life_trips;
    if (p->trip_cap == 0)
        p->trip_cap = d.trip_cap;
    if (p->commit_interval_s == 0)
        p->commit_interval_s = d.commit_interval_s;
    if (!(p->max_speed_mps > 1.0))
        p->max_speed_mps = d.max_speed_mps;
    if (!(p->dead_outage > 0.0 && p->dead_outage <= 1.0))
        p->dead_outage = d.dead_outage;
    if (!(p->dead_quality >= 0.0 && p->dead_quality < 1.0))
        p->dead_quality = d.dead_quality;
    if (!(p->conf_trips_k > 0.0))
        p->conf_trips_k = d.conf_trips_k;
    if (p->max_mb == 0 || p->max_mb > 1000000)
        p->max_mb = d.max_mb;
}

static bool op_valid(const char *op)
{
    size_t n = strnlen(op, COV_OP_MAX);
    if (n == 0 || n >= COV_OP_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = op[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_' || c == '.' || c == ' '))
            return false;
    }
    return true;
}

/* ---- cell keys ---------------------------------------------------------------------------- */

static double row_lat(double cell_m, int64_t lat_idx)
{
    return (lat_idx + 0.5) * cell_m / M_PER_DEG_LAT - 90.0;
}

/* Metres per degree of longitude for a row: constant over 1-degree latitude bands, so columns
 * line up between neighbouring rows (a north-south path stays a straight column of cells);
 * within a band cell widths vary by about 1.5% at 56 degrees. */
static double lon_scale(double row_lat)
{
    double band = floor(row_lat) + 0.5;
    return M_PER_DEG_LAT * fmax(cos(rad(band)), 0.01);
}

static int64_t key_of(double cell_m, double lat, double lon)
{
    int64_t li = (int64_t)floor((lat + 90.0) * M_PER_DEG_LAT / cell_m);
    double rl = row_lat(cell_m, li);
    int64_t lo = (int64_t)floor((lon + 180.0) * lon_scale(rl) / cell_m);
    if (lo < 0)
        lo = 0;
    if (lo >= (1 << LON_BITS))
        lo = (1 << LON_BITS) - 1;
    return (li << LON_BITS) | lo;
}

static void center_of(double cell_m, int64_t key, double *lat, double *lon)
{
    int64_t li = key >> LON_BITS, lo = key & ((1 << LON_BITS) - 1);
    double rl = row_lat(cell_m, li);
    *lat = rl;
    *lon = (lo + 0.5) * cell_m / lon_scale(rl) - 180.0;
}

int64_t coverage_cell_key(const struct coverage_map *m, double lat, double lon)
{
    return key_of(m->prm.cell_m, lat, lon);
}

void coverage_cell_center(const struct coverage_map *m, int64_t key, double *lat, double *lon)
{
    center_of(m->prm.cell_m, key, lat, lon);
}

double coverage_cell_m(const struct coverage_map *m)
{
    return m->prm.cell_m;
}

const struct coverage_params *coverage_params_of(const struct coverage_map *m)
{
    return &m->prm;
}

void coverage_lock(struct coverage_map *m)
{
    pthread_mutex_lock(&m->mu);
}

void coverage_unlock(struct coverage_map *m)
{
    pthread_mutex_unlock(&m->mu);
}

/* ---- statistics --------------------------------------------------------------------------- */

static int bucket_of(int metric, double x)
{
    switch (metric) {
    case M_RSRP: /* dBm: < -115 | < -105 | < -95 | better */
        return x < -115 ? 0 : x < -105 ? 1 : x < -95 ? 2 : 3;
    case M_SINR: /* dB: < 0 | < 5 | < 13 | better */
        return x < 0 ? 0 : x < 5 ? 1 : x < 13 ? 2 : 3;
    case M_RTT: /* ms, higher is worse: >= 400 | >= 150 | >= 60 | faster */
        return x >= 400 ? 0 : x >= 150 ? 1 : x >= 60 ? 2 : 3;
    case M_GOODPUT: /* kbit/s: < 500 | < 2000 | < 10000 | more */
        return x < 500 ? 0 : x < 2000 ? 1 : x < 10000 ? 2 : 3;
    default:
        return 3;
    }
}

static void agg_scale(struct agg *a, double f)
{
    a->n *= f;
    a->out_w *= f;
    for (int i = 0; i < M_COUNT; i++)
        a->w[i] *= f;
    for (int i = 0; i < M_HIST; i++)
        for (int b = 0; b < 4; b++)
            a->h[i][b] *= f;
}

static void agg_add(struct coverage_map *m, struct agg *a, const struct cov_sample *s)
{
    if (a->last_trip != (s->trip & 0xffff)) {
        /* A new trip: older evidence fades by one trip's worth, and the total mass is capped so
         * that a stopped vehicle or a big imported map cannot outvote new trips for long. */
        if (a->n > 0) {
            agg_scale(a, m->decay);
            if (a->n > m->max_mass)
                agg_scale(a, m->max_mass / a->n);
        }
        if (a->trips < 65535)
            a->trips++;
        a->last_trip = s->trip & 0xffff;
        a->trip_n = 0;
    }
    if (a->trip_n < 255)
        a->trip_n++;
    /* Dwell damping: the first trip_cap samples of a trip count fully, later ones less, so a
     * long stop does not outweigh the trips that drove through. */
    double wt = a->trip_n <= m->prm.trip_cap ? 1.0 : (double)m->prm.trip_cap / a->trip_n;
    a->n += wt;
    if (s->outage)
        a->out_w += wt;
    double x[M_COUNT] = {s->rsrp_dbm, s->sinr_db,  s->rtt_ms, s->goodput_kbps,
                         s->rsrq_db,  s->rssi_dbm, s->loss};
    for (int i = 0; i < M_COUNT; i++) {
        if (!isfinite(x[i]))
            continue;
        a->w[i] += wt;
        a->mean[i] += wt / a->w[i] * (x[i] - a->mean[i]);
        if (i < M_HIST)
            a->h[i][bucket_of(i, x[i])] += wt;
    }
    if (s->utc > a->last_seen)
        a->last_seen = s->utc;
    if (s->net != COV_NET_UNKNOWN)
        a->net = (uint8_t)s->net;
}

/* Merge b into a, weighting everything by sample count. */
static void agg_merge(struct agg *a, const struct agg *b)
{
    if (b->n <= 0)
        return;
    if (a->n <= 0 && a->trips == 0) {
        *a = *b;
        return;
    }
    a->n += b->n;
    a->out_w += b->out_w;
    for (int i = 0; i < M_COUNT; i++) {
        double w = a->w[i] + b->w[i];
        if (w > 0)
            a->mean[i] = (a->w[i] * a->mean[i] + b->w[i] * b->mean[i]) / w;
        a->w[i] = w;
    }
    for (int i = 0; i < M_HIST; i++)
        for (int k = 0; k < 4; k++)
            a->h[i][k] += b->h[i][k];
    a->trips = a->trips + b->trips > 65535 ? 65535 : a->trips + b->trips;
    if (b->last_seen > a->last_seen)
        a->last_seen = b->last_seen;
    if (a->net == COV_NET_UNKNOWN)
        a->net = b->net;
}

/* ---- blob codec (little-endian, docs/coverage.md "Storage") ------------------------------- */

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}

static unsigned get16(const uint8_t *p)
{
    return p[0] | (unsigned)p[1] << 8;
}

static uint32_t get32(const uint8_t *p)
{
    return get16(p) | (uint32_t)get16(p + 2) << 16;
}

static unsigned q16(double v)
{
    return (unsigned)clampd(round(v), 0, 65535);
}

/* Metric means as u16: offset/scale, goodput on a log2 scale (1..2^32 kbit/s). */
static const double M_OFF[M_COUNT] = {-200, -50, 0, 0, -50, -200, 0};
static const double M_SCALE[M_COUNT] = {100, 100, 4, 2048, 100, 100, 65535};

static unsigned enc_mean(int i, double x)
{
    if (i == M_GOODPUT)
        return q16(log2(1.0 + fmax(x, 0.0)) * M_SCALE[i]);
    return q16((x - M_OFF[i]) * M_SCALE[i]);
}

static double dec_mean(int i, unsigned q)
{
    if (i == M_GOODPUT)
        return exp2(q / M_SCALE[i]) - 1.0;
    return q / M_SCALE[i] + M_OFF[i];
}

static void agg_encode(const struct agg *a, uint8_t *b)
{
    memset(b, 0, AGG_BLOB_LEN);
    float n = (float)a->n;
    uint32_t nb;
    memcpy(&nb, &n, 4);
    put32(b, nb);
    put16(b + 4, a->trips);
    put16(b + 6, a->last_trip & 0xffff); /* only compared for equality: mod 65536 is enough */
    b[8] = (uint8_t)(a->trip_n > 255 ? 255 : a->trip_n);
    put32(b + 9, (uint32_t)(a->last_seen < 0              ? 0
                            : a->last_seen > 0xffffffffLL ? 0xffffffffLL
                                                          : a->last_seen));
    b[13] = a->net;
    put16(b + 14, a->n > 0 ? q16(a->out_w / a->n * 65535.0) : 0);
    uint8_t *p = b + 16;
    for (int i = 0; i < M_COUNT; i++, p += 3) {
        p[0] = (uint8_t)(a->n > 0 ? clampd(round(a->w[i] / a->n * 255.0), 0, 255) : 0);
        /* a metric seen at all keeps at least 1/255 so its mean survives */
        if (p[0] == 0 && a->w[i] > 0)
            p[0] = 1;
        put16(p + 1, a->w[i] > 0 ? enc_mean(i, a->mean[i]) : 0);
    }
    for (int i = 0; i < M_HIST; i++, p += 4)
        for (int k = 0; k < 4; k++)
            p[k] = (uint8_t)(a->w[i] > 0 ? clampd(round(a->h[i][k] / a->w[i] * 255.0), 0, 255) : 0);
}

static bool agg_decode(const uint8_t *b, int len, struct agg *a)
{
    memset(a, 0, sizeof(*a));
    if (len != AGG_BLOB_LEN)
        return false;
    uint32_t nb = get32(b);
    float n;
    memcpy(&n, &nb, 4);
    if (!isfinite(n) || n < 0 || n > 1e7) /* 1e7: far more than any merged map can hold */
        return false;
    a->n = n;
    a->trips = get16(b + 4);
    a->last_trip = get16(b + 6);
    a->trip_n = b[8];
    a->last_seen = get32(b + 9);
    a->net = b[13] <= COV_NET_5G_SA ? b[13] : COV_NET_UNKNOWN;
    a->out_w = get16(b + 14) / 65535.0 * a->n;
    const uint8_t *p = b + 16;
    for (int i = 0; i < M_COUNT; i++, p += 3) {
        a->w[i] = p[0] / 255.0 * a->n;
        a->mean[i] = p[0] ? dec_mean(i, get16(p + 1)) : 0;
    }
    for (int i = 0; i < M_HIST; i++, p += 4)
        for (int k = 0; k < 4; k++)
            a->h[i][k] = p[k] / 255.0 * a->w[i];
    return true;
}

static void path_encode(int64_t cell, const struct path *pa, uint8_t *b)
{
    memset(b, 0, PATH_BLOB_LEN);
    put32(b, pa->last_trip);
    for (int i = 0; i < PATH_SLOTS; i++) {
        uint8_t *p = b + 4 + 4 * i;
        if (!pa->next[i])
            continue;
        int64_t dl = (pa->next[i] >> LON_BITS) - (cell >> LON_BITS);
        int64_t dn = (pa->next[i] & ((1 << LON_BITS) - 1)) - (cell & ((1 << LON_BITS) - 1));
        p[0] = (uint8_t)(int8_t)dl;
        p[1] = (uint8_t)(int8_t)dn;
        /* weight x64, at least 1 so the slot stays in use */
        unsigned w = q16(pa->w[i] * 64.0);
        put16(p + 2, w ? w : 1);
    }
}

static void path_decode(int64_t cell, const uint8_t *b, int len, struct path *pa)
{
    memset(pa, 0, sizeof(*pa));
    if (len != PATH_BLOB_LEN)
        return;
    pa->last_trip = get32(b);
    for (int i = 0; i < PATH_SLOTS; i++) {
        const uint8_t *p = b + 4 + 4 * i;
        unsigned w = get16(p + 2);
        if (!w)
            continue;
        int64_t li = (cell >> LON_BITS) + (int8_t)p[0];
        int64_t lo = (cell & ((1 << LON_BITS) - 1)) + (int8_t)p[1];
        if (li < 0 || lo < 0 || lo >= (1 << LON_BITS))
            continue;
        pa->next[i] = (li << LON_BITS) | lo;
        pa->w[i] = w / 64.0;
    }
}

/* ---- judging a cell ------------------------------------------------------------------------ */

static void cell_from_agg(const struct coverage_map *m, int64_t key, const char *op,
                          const struct agg *a, struct cov_cell *c)
{
    memset(c, 0, sizeof(*c));
    c->key = key;
    center_of(m->prm.cell_m, key, &c->lat, &c->lon);
    str_copy(c->op, op, sizeof(c->op));
    c->n = a->n;
    c->trips = a->trips;
    c->last_trip = a->last_trip;
    c->last_seen = a->last_seen;
    c->net = (enum cov_net)a->net;
    c->outage = a->n > 0 ? clampd(a->out_w / a->n, 0, 1) : NAN;
    double *means[M_COUNT] = {&c->rsrp, &c->sinr, &c->rtt_ms, &c->goodput_kbps,
                              &c->rsrq, &c->rssi, &c->loss};
    for (int i = 0; i < M_COUNT; i++)
        *means[i] = a->w[i] > 0 ? a->mean[i] : NAN;
    double *bad[M_HIST] = {&c->rsrp_bad, &c->sinr_bad, &c->rtt_bad, &c->goodput_bad};
    for (int i = 0; i < M_HIST; i++)
        *bad[i] = a->w[i] > 0 ? clampd(a->h[i][0] / a->w[i], 0, 1) : NAN;
    coverage_cell_judge(m, c);
}

void coverage_cell_judge(const struct coverage_map *m, struct cov_cell *c)
{
    /* Signal part: mean of what is known, each mapped linearly to 0..1 between "unusable" and
     * "good"; the worst-bucket fraction pulls it down (a cell that is fine on average but bad
     * a third of the time is not fine). Outage multiplies: no tunnel = no quality. */
    double sum = 0;
    int k = 0;
    if (isfinite(c->rsrp)) {
        sum += clampd((c->rsrp + 120.0) / 30.0, 0, 1) *
               (1.0 - 0.5 * (isfinite(c->rsrp_bad) ? c->rsrp_bad : 0));
        k++;
    }
    if (isfinite(c->sinr)) {
        sum += clampd((c->sinr + 3.0) / 18.0, 0, 1) *
               (1.0 - 0.5 * (isfinite(c->sinr_bad) ? c->sinr_bad : 0));
        k++;
    }
    if (isfinite(c->goodput_kbps)) {
        sum += clampd(log10(fmax(c->goodput_kbps, 1.0) / 200.0) / 2.0, 0, 1);
        k++;
    }
    double sig = k ? sum / k : 1.0;
    double out = isfinite(c->outage) ? c->outage : 0.0;
    c->quality = c->n > 0 ? clampd((1.0 - out) * sig, 0, 1) : NAN;
    c->dead = c->n > 0 && (out >= m->prm.dead_outage || c->quality < m->prm.dead_quality);
}

/* ---- sqlite plumbing ---------------------------------------------------------------------- */

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *e = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &e) != SQLITE_OK) {
        set_err(err, errlen, "coverage: \"%.60s\": %s", sql, e ? e : sqlite3_errmsg(db));
        sqlite3_free(e);
        return -1;
    }
    return 0;
}

static int meta_get_text(sqlite3 *db, const char *k, char *out, size_t n)
{
    sqlite3_stmt *st;
    int rc = -1;
    if (sqlite3_prepare_v2(db, "SELECT v FROM meta WHERE k=?1", -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
        str_copy(out, (const char *)sqlite3_column_text(st, 0), n);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

static int meta_set(sqlite3 *db, const char *k, const char *v)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta(k,v) VALUES(?1,?2)", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, v, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return rc;
}

static void random_id(char *out, size_t n)
{
    uint8_t r[12] = {0};
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, r, sizeof(r)) != (ssize_t)sizeof(r)) {
        /* fallback: time and pid; uniqueness across a fleet is best effort then */
        uint64_t t = mono_ns() ^ wall_ms() ^ ((uint64_t)getpid() << 32);
        memcpy(r, &t, sizeof(t));
    }
    if (fd >= 0)
        close(fd);
    size_t off = 0;
    out[0] = 0;
    for (size_t i = 0; i < sizeof(r); i++)
        str_appendf(out, n, &off, "%02x", r[i]);
}

static void finalize_all(struct coverage_map *m)
{
    sqlite3_finalize(m->sel_row);
    sqlite3_finalize(m->put_row);
    m->sel_row = m->put_row = NULL;
}

/* Is the file at path a healthy coverage map (or absent/empty)? */
static bool db_healthy(sqlite3 *db, char *why, size_t n)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK) {
        set_err(why, n, "%s", sqlite3_errmsg(db));
        return false;
    }
    int rc = sqlite3_step(st);
    bool ok = rc == SQLITE_ROW && sqlite3_column_text(st, 0) &&
              strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
    if (!ok)
        set_err(why, n, "quick_check: %s",
                rc == SQLITE_ROW && sqlite3_column_text(st, 0)
                    ? (const char *)sqlite3_column_text(st, 0)
                    : sqlite3_errmsg(db));
    sqlite3_finalize(st);
    if (!ok)
        return false;
    /* Some other database (tables but no meta) is not ours to write into. */
    if (sqlite3_prepare_v2(db,
                           "SELECT (SELECT count(*) FROM sqlite_master WHERE type='table'),"
                           " (SELECT count(*) FROM sqlite_master WHERE name='meta')",
                           -1, &st, NULL) != SQLITE_OK) {
        set_err(why, n, "%s", sqlite3_errmsg(db));
        return false;
    }
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0 &&
        sqlite3_column_int(st, 1) == 0) {
        set_err(why, n, "not a coverage map (no meta table)");
        ok = false;
    }
    sqlite3_finalize(st);
    return ok;
}

static int db_open_file(struct coverage_map *m, char *err, size_t errlen)
{
    if (sqlite3_open_v2(m->path, &m->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        set_err(err, errlen, "coverage: open %s: %s", m->path,
                m->db ? sqlite3_errmsg(m->db) : "out of memory");
        sqlite3_close(m->db);
        m->db = NULL;
        return -1;
    }
    sqlite3_busy_timeout(m->db, 5000);
    return 0;
}

static void sql_last_seen(sqlite3_context *ctx, int argc, sqlite3_value **argv);
static long prune_locked(struct coverage_map *m, uint64_t max_bytes, char *err, size_t errlen);

static int db_setup(struct coverage_map *m, char *err, size_t errlen)
{
    sqlite3 *db = m->db;
    /* incremental auto-vacuum (only takes effect on a new file) lets a prune give space back */
    if (exec(db, "PRAGMA auto_vacuum=INCREMENTAL", err, errlen) ||
        exec(db, "PRAGMA journal_mode=WAL", err, errlen) ||
        exec(db, "PRAGMA synchronous=FULL", err, errlen) ||
        exec(db,
             "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;"
             "CREATE TABLE IF NOT EXISTS ops(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);"
             "CREATE TABLE IF NOT EXISTS cells(cell INTEGER PRIMARY KEY, s BLOB NOT NULL);"
             "CREATE TABLE IF NOT EXISTS imports(map_id TEXT PRIMARY KEY, samples INTEGER)"
             " WITHOUT ROWID;",
             err, errlen))
        return -1;
    char v[64];
    if (meta_get_text(db, "version", v, sizeof(v)) != 0) {
        char cm[32];
        snprintf(cm, sizeof(cm), "%.17g", m->prm.cell_m);
        random_id(m->map_id, sizeof(m->map_id));
        char ver[8];
        snprintf(ver, sizeof(ver), "%d", SCHEMA_VERSION);
        if (exec(db, "BEGIN", err, errlen))
            return -1;
        if (meta_set(db, "version", ver) || meta_set(db, "cell_m", cm) ||
            meta_set(db, "map_id", m->map_id) || meta_set(db, "samples", "0")) {
            set_err(err, errlen, "coverage: writing meta: %s", sqlite3_errmsg(db));
            exec(db, "ROLLBACK", NULL, 0);
            return -1;
        }
        if (exec(db, "COMMIT", err, errlen))
            return -1;
    } else {
        long ver = 0;
        double cm = 0;
        if (!str_to_long(v, &ver) || ver != SCHEMA_VERSION) {
            set_err(err, errlen, "coverage: %s has schema version %s, expected %d", m->path, v,
                    SCHEMA_VERSION);
            return -2;
        }
        if (meta_get_text(db, "cell_m", v, sizeof(v)) || !str_to_double(v, &cm) || cm < 5 ||
            cm > 1000) {
            set_err(err, errlen, "coverage: %s has no valid cell size", m->path);
            return -2;
        }
        if (fabs(cm - m->prm.cell_m) > 1e-9)
            LOG_I(SUBSYS, "%s: using its cell size %.1f m (configured %.1f m)", m->path, cm,
                  m->prm.cell_m);
        m->prm.cell_m = cm;
        if (meta_get_text(db, "map_id", m->map_id, sizeof(m->map_id)))
            str_copy(m->map_id, "unknown", sizeof(m->map_id));
        long sm = 0;
        if (meta_get_text(db, "samples", v, sizeof(v)) == 0 && str_to_long(v, &sm) && sm > 0)
            m->samples_committed = (uint64_t)sm;
    }
    /* operators */
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT id, name FROM ops ORDER BY id", -1, &st, NULL) !=
        SQLITE_OK) {
        set_err(err, errlen, "coverage: %s", sqlite3_errmsg(db));
        return -1;
    }
    m->n_ops = 0;
    while (sqlite3_step(st) == SQLITE_ROW && m->n_ops < COV_MAX_OPS) {
        const char *name = (const char *)sqlite3_column_text(st, 1);
        if (!name || !op_valid(name))
            continue;
        m->op_ids[m->n_ops] = sqlite3_column_int(st, 0);
        str_copy(m->ops[m->n_ops], name, COV_OP_MAX);
        m->n_ops++;
    }
    sqlite3_finalize(st);
    const struct {
        sqlite3_stmt **st;
        const char *sql;
    } stmts[] = {
        {&m->sel_row, "SELECT s FROM cells WHERE cell=?1"},
        {&m->put_row, "INSERT OR REPLACE INTO cells(cell, s) VALUES(?1, ?2)"},
    };
    for (size_t i = 0; i < ARRAY_LEN(stmts); i++)
        if (sqlite3_prepare_v2(db, stmts[i].sql, -1, stmts[i].st, NULL) != SQLITE_OK) {
            set_err(err, errlen, "coverage: prepare: %s", sqlite3_errmsg(db));
            return -1;
        }
    if (sqlite3_create_function_v2(db, "cov_last_seen", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                   sql_last_seen, NULL, NULL, NULL) != SQLITE_OK) {
        set_err(err, errlen, "coverage: create function: %s", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

int coverage_open(const char *path, const struct coverage_params *params, struct coverage_map **out,
                  char *err, size_t errlen)
{
    *out = NULL;
    if (!path || !*path || strlen(path) >= sizeof(((struct coverage_map *)0)->path) - 40) {
        set_err(err, errlen, "coverage: bad database path");
        return -1;
    }
    struct coverage_map *m = calloc(1, sizeof(*m));
    if (!m) {
        set_err(err, errlen, "coverage: out of memory");
        return -1;
    }
    if (params)
        m->prm = *params;
    else
        coverage_params_default(&m->prm);
    params_fix(&m->prm);
    str_copy(m->path, path, sizeof(m->path));
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&m->mu, &ma);
    pthread_mutexattr_destroy(&ma);

    for (int attempt = 0; attempt < 2; attempt++) {
        if (db_open_file(m, err, errlen))
            break;
        char why[200] = "";
        int rc = db_healthy(m->db, why, sizeof(why)) ? db_setup(m, why, sizeof(why)) : -2;
        if (rc == 0) {
            m->decay = exp2(-1.0 / m->prm.half_life_trips);
            m->max_mass = 2.0 * m->prm.trip_cap / (1.0 - m->decay);
            m->last_commit_ms = mono_ms();
            if (prune_locked(m, 0, why, sizeof(why)) < 0)
                LOG_W(SUBSYS, "%s", why);
            *out = m;
            return 0;
        }
        finalize_all(m);
        sqlite3_close(m->db);
        m->db = NULL;
        if (rc == -1 || attempt == 1) {
            set_err(err, errlen, "coverage: %s: %s", path, why);
            break;
        }
        /* Corrupt or foreign: set it aside (kept for a post-mortem) and start a new map. The
         * data plane never waits for this: the map is only telemetry. */
        char aside[600];
        snprintf(aside, sizeof(aside), "%s.corrupt-%lld", path, (long long)time(NULL));
        LOG_E(SUBSYS, "%s is unusable (%s): moved to %s, starting a new map", path, why, aside);
        if (rename(path, aside) != 0) {
            set_err(err, errlen, "coverage: %s unusable (%s) and rename failed: %s", path, why,
                    strerror(errno));
            break;
        }
        char side[600];
        snprintf(side, sizeof(side), "%s-wal", path);
        unlink(side);
        snprintf(side, sizeof(side), "%s-shm", path);
        unlink(side);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
    return -1;
}

/* The database turned out damaged WHILE running (a bad sector, a write from elsewhere): set it
 * aside like a corrupt file at open and continue with a new, empty map at the same path. What
 * was learned is lost, the vehicle keeps bonding (the data plane never touches the map) and the
 * map relearns from the next trip. Should even the new file fail, the map continues in memory
 * (never a NULL database under the other functions). Called with the mutex held. */
static void rebuild_locked(struct coverage_map *m)
{
    int why = m->bad_rc;
    m->bad_rc = 0;
    finalize_all(m);
    sqlite3_close(m->db);
    m->db = NULL;
    char aside[600];
    snprintf(aside, sizeof(aside), "%s.corrupt-%lld", m->path, (long long)time(NULL));
    LOG_E(SUBSYS, "%s is damaged (%s) while in use: moved to %s, starting a new map", m->path,
          sqlite3_errstr(why), aside);
    if (rename(m->path, aside) != 0)
        LOG_E(SUBSYS, "rename %s: %s (removing it)", m->path, strerror(errno));
    unlink(m->path); /* if the rename failed: a damaged file must not be reopened */
    char side[600];
    snprintf(side, sizeof(side), "%s-wal", m->path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", m->path);
    unlink(side);
    /* everything derived from the old file goes */
    memset(m->cache, 0, sizeof(m->cache));
    memset(m->pcache, 0, sizeof(m->pcache));
    m->cache_n = m->pcache_n = 0;
    m->n_ops = 0;
    m->pending_samples = m->samples_committed = 0;
    m->have_last = false;
    m->jump_rejects = 0;
    m->rebuilds++;
    char e[256];
    if (db_open_file(m, e, sizeof(e)) == 0 && db_setup(m, e, sizeof(e)) == 0) {
        m->last_commit_ms = mono_ms();
        return;
    }
    LOG_E(SUBSYS, "%s: cannot start a new map (%s): keeping the map in memory only", m->path, e);
    finalize_all(m);
    sqlite3_close(m->db);
    m->db = NULL;
    char mem[sizeof(m->path)];
    str_copy(mem, m->path, sizeof(mem));
    str_copy(m->path, ":memory:", sizeof(m->path));
    if (db_open_file(m, e, sizeof(e)) != 0 || db_setup(m, e, sizeof(e)) != 0)
        abort(); /* sqlite cannot even open memory: nothing sensible is left */
    str_copy(m->path, mem, sizeof(m->path));
}

/* ---- caches -------------------------------------------------------------------------------- */

static unsigned hash64(int64_t k)
{
    uint64_t x = (uint64_t)k * 0x9e3779b97f4a7c15ULL;
    return (unsigned)(x >> 40);
}

static struct centry *cache_find(struct coverage_map *m, int64_t cell, int op, bool insert)
{
    unsigned i = hash64(cell * 31 + op) & (CACHE_SLOTS - 1);
    for (unsigned probe = 0; probe < CACHE_SLOTS; probe++, i = (i + 1) & (CACHE_SLOTS - 1)) {
        struct centry *e = &m->cache[i];
        if (!e->used) {
            if (!insert)
                return NULL;
            memset(e, 0, sizeof(*e));
            e->used = true;
            e->cell = cell;
            e->op = op;
            m->cache_n++;
            return e;
        }
        if (e->cell == cell && e->op == op)
            return e;
    }
    return NULL;
}

static struct pentry *pcache_find(struct coverage_map *m, int64_t cell, bool insert)
{
    unsigned i = hash64(cell) & (PATH_CACHE_SLOTS - 1);
    for (unsigned probe = 0; probe < PATH_CACHE_SLOTS;
         probe++, i = (i + 1) & (PATH_CACHE_SLOTS - 1)) {
        struct pentry *e = &m->pcache[i];
        if (!e->used) {
            if (!insert)
                return NULL;
            memset(e, 0, sizeof(*e));
            e->used = true;
            e->cell = cell;
            m->pcache_n++;
            return e;
        }
        if (e->cell == cell)
            return e;
    }
    return NULL;
}

/* One row per geographic cell: [path 16 bytes][n x (operator id u8, aggregate 53 bytes)].
 * Keeping all operators and the learned path in one rowid row costs one B-tree entry per cell
 * instead of five (docs/coverage.md "Storage"). */
#define REC_LEN      (1 + AGG_BLOB_LEN)
#define ROW_MAX_RECS 32
#define ROW_MAX      (PATH_BLOB_LEN + ROW_MAX_RECS * REC_LEN)

struct row {
    uint8_t b[ROW_MAX];
    int len;
};

static bool row_valid_len(int len)
{
    return len >= PATH_BLOB_LEN && len <= ROW_MAX && (len - PATH_BLOB_LEN) % REC_LEN == 0;
}

/* Row bytes from a result column; a malformed row reads as empty (it is rewritten whole). */
static void row_from(struct row *r, const void *blob, int len)
{
    memset(r->b, 0, PATH_BLOB_LEN);
    r->len = PATH_BLOB_LEN;
    if (blob && row_valid_len(len)) {
        memcpy(r->b, blob, (size_t)len);
        r->len = len;
    }
}

static void note_rc(struct coverage_map *m);

/* 1 found, 0 absent (r is an empty row), -1 error. */
static int row_read(struct coverage_map *m, int64_t cell, struct row *r)
{
    sqlite3_stmt *st = m->sel_row;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, cell);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        row_from(r, sqlite3_column_blob(st, 0), sqlite3_column_bytes(st, 0));
    else
        row_from(r, NULL, 0);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        note_rc(m); /* a look-up found the file damaged: the next sample rebuilds it */
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int row_write(struct coverage_map *m, int64_t cell, const struct row *r)
{
    sqlite3_stmt *st = m->put_row;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, cell);
    sqlite3_bind_blob(st, 2, r->b, r->len, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int row_count(const struct row *r)
{
    return (r->len - PATH_BLOB_LEN) / REC_LEN;
}

static const uint8_t *row_rec(const struct row *r, int i)
{
    return r->b + PATH_BLOB_LEN + i * REC_LEN;
}

static const uint8_t *row_find(const struct row *r, int op_id)
{
    for (int i = 0; i < row_count(r); i++)
        if (row_rec(r, i)[0] == op_id)
            return row_rec(r, i) + 1;
    return NULL;
}

static bool row_set(struct row *r, int op_id, const struct agg *a)
{
    uint8_t *p = (uint8_t *)row_find(r, op_id);
    if (!p) {
        if (row_count(r) >= ROW_MAX_RECS)
            return false;
        p = r->b + r->len;
        p[0] = (uint8_t)op_id;
        p++;
        r->len += REC_LEN;
    }
    agg_encode(a, p);
    return true;
}

/* Newest last_seen of any operator in the row (offset 9 of an aggregate, see agg_encode). */
static int64_t row_last_seen(const struct row *r)
{
    int64_t ls = 0;
    for (int i = 0; i < row_count(r); i++) {
        int64_t v = get32(row_rec(r, i) + 1 + 9);
        if (v > ls)
            ls = v;
    }
    return ls;
}

/* SQL function cov_last_seen(s) for the prune query. */
static void sql_last_seen(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct row r;
    (void)argc;
    row_from(&r, sqlite3_value_blob(argv[0]), sqlite3_value_bytes(argv[0]));
    sqlite3_result_int64(ctx, row_last_seen(&r));
}

/* Read one aggregate from the database; 1 found, 0 absent, -1 error. */
static int db_get_agg(struct coverage_map *m, int64_t cell, int op_id, struct agg *a)
{
    struct row r;
    memset(a, 0, sizeof(*a));
    int rc = row_read(m, cell, &r);
    if (rc <= 0)
        return rc;
    const uint8_t *p = row_find(&r, op_id);
    return p && agg_decode(p, AGG_BLOB_LEN, a) ? 1 : 0;
}

static int db_put_agg(struct coverage_map *m, int64_t cell, int op_id, const struct agg *a)
{
    struct row r;
    if (row_read(m, cell, &r) < 0 || !row_set(&r, op_id, a))
        return -1;
    return row_write(m, cell, &r);
}

static int db_get_path(struct coverage_map *m, int64_t cell, struct path *p)
{
    struct row r;
    int rc = row_read(m, cell, &r);
    path_decode(cell, r.b, PATH_BLOB_LEN, p);
    return rc;
}

static int db_put_path(struct coverage_map *m, int64_t cell, const struct path *p)
{
    struct row r;
    if (row_read(m, cell, &r) < 0)
        return -1;
    path_encode(cell, p, r.b);
    return row_write(m, cell, &r);
}

/* Remember a "this file is damaged" result (the next statement would overwrite the code). */
static void note_rc(struct coverage_map *m)
{
    int rc = sqlite3_errcode(m->db) & 0xff;
    if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB)
        m->bad_rc = rc;
}

static int flush_locked(struct coverage_map *m, char *err, size_t errlen)
{
    if (m->cache_n == 0 && m->pcache_n == 0 && m->pending_samples == 0)
        return 0;
    if (exec(m->db, "BEGIN IMMEDIATE", err, errlen)) {
        note_rc(m);
        return -1;
    }
    for (unsigned i = 0; i < CACHE_SLOTS; i++) {
        struct centry *e = &m->cache[i];
        if (e->used && e->dirty && db_put_agg(m, e->cell, e->op, &e->a))
            goto fail;
    }
    for (unsigned i = 0; i < PATH_CACHE_SLOTS; i++) {
        struct pentry *e = &m->pcache[i];
        if (e->used && e->dirty && db_put_path(m, e->cell, &e->p))
            goto fail;
    }
    char v[32];
    snprintf(v, sizeof(v), "%llu", (unsigned long long)(m->samples_committed + m->pending_samples));
    if (meta_set(m->db, "samples", v))
        goto fail;
    if (exec(m->db, "COMMIT", err, errlen)) {
        note_rc(m);
        exec(m->db, "ROLLBACK", NULL, 0);
        return -1;
    }
    m->samples_committed += m->pending_samples;
    m->pending_samples = 0;
    memset(m->cache, 0, sizeof(m->cache));
    memset(m->pcache, 0, sizeof(m->pcache));
    m->cache_n = m->pcache_n = 0;
    m->last_commit_ms = mono_ms();
    /* the size bound, about hourly at one commit per 10 s */
    if (++m->commits % PRUNE_EVERY_COMMITS == 0) {
        char perr[200];
        if (prune_locked(m, 0, perr, sizeof(perr)) < 0)
            LOG_W(SUBSYS, "%s", perr);
    }
    return 0;
fail:
    /* The cache stays as it is: the next flush retries with the same data. */
    set_err(err, errlen, "coverage: write %s: %s", m->path, sqlite3_errmsg(m->db));
    note_rc(m);
    exec(m->db, "ROLLBACK", NULL, 0);
    return -1;
}

static int64_t query_i64(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static long prune_locked(struct coverage_map *m, uint64_t max_bytes, char *err, size_t errlen)
{
    if (!max_bytes)
        max_bytes = (uint64_t)m->prm.max_mb * 1000000u;
    if (flush_locked(m, err, errlen))
        return -1;
    int64_t pages = query_i64(m->db, "PRAGMA page_count");
    int64_t free_pages = query_i64(m->db, "PRAGMA freelist_count");
    int64_t page_size = query_i64(m->db, "PRAGMA page_size");
    int64_t rows = query_i64(m->db, "SELECT count(*) FROM cells");
    if (pages < 0 || free_pages < 0 || page_size <= 0 || rows < 0) {
        set_err(err, errlen, "coverage: prune: %s", sqlite3_errmsg(m->db));
        return -1;
    }
    double used = (double)(pages - free_pages) * (double)page_size;
    if (used <= (double)max_bytes || rows == 0)
        return 0;
    /* keep what fits 90% of the bound at the current bytes per row, drop the rest, oldest
     * first (sqlite keeps only the LIMIT smallest while sorting) */
    int64_t keep = (int64_t)(0.9 * (double)max_bytes / (used / (double)rows));
    int64_t del = rows - keep;
    if (del <= 0)
        return 0;
    sqlite3_stmt *st = NULL;
    if (exec(m->db, "BEGIN IMMEDIATE", err, errlen))
        return -1;
    if (sqlite3_prepare_v2(m->db,
                           "DELETE FROM cells WHERE cell IN (SELECT cell FROM cells ORDER BY "
                           "cov_last_seen(s), cell LIMIT ?1)",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(st, 1, del);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    st = NULL;
    long deleted = (long)sqlite3_changes(m->db);
    if (exec(m->db, "COMMIT", err, errlen)) {
        exec(m->db, "ROLLBACK", NULL, 0);
        return -1;
    }
    /* give the pages back (auto_vacuum=INCREMENTAL) and fold the big WAL into the file */
    exec(m->db, "PRAGMA incremental_vacuum", NULL, 0);
    exec(m->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, 0);
    LOG_W(SUBSYS, "%s: %.1f MB over the %.1f MB bound: pruned %ld least recently seen cells",
          m->path, used / 1e6, (double)max_bytes / 1e6, deleted);
    return deleted;
fail:
    set_err(err, errlen, "coverage: prune: %s", sqlite3_errmsg(m->db));
    sqlite3_finalize(st);
    exec(m->db, "ROLLBACK", NULL, 0);
    return -1;
}

long coverage_prune(struct coverage_map *m, uint64_t max_bytes, char *err, size_t errlen)
{
    if (!m)
        return -1;
    pthread_mutex_lock(&m->mu);
    long n = prune_locked(m, max_bytes, err, errlen);
    pthread_mutex_unlock(&m->mu);
    return n;
}

int coverage_flush(struct coverage_map *m, char *err, size_t errlen)
{
    if (!m)
        return -1;
    pthread_mutex_lock(&m->mu);
    int rc = flush_locked(m, err, errlen);
    if (rc < 0 && m->bad_rc)
        rebuild_locked(m);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

void coverage_close(struct coverage_map *m)
{
    if (!m)
        return;
    char err[256];
    if (flush_locked(m, err, sizeof(err)))
        LOG_W(SUBSYS, "close: %s", err);
    finalize_all(m);
    sqlite3_close(m->db);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static int op_index(struct coverage_map *m, const char *op, bool create, char *err, size_t errlen)
{
    for (int i = 0; i < m->n_ops; i++)
        if (strcmp(m->ops[i], op) == 0)
            return i;
    if (!create)
        return -1;
    if (m->n_ops >= COV_MAX_OPS) {
        set_err(err, errlen, "coverage: too many operators (max %d), \"%s\" ignored", COV_MAX_OPS,
                op);
        return -1;
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(m->db, "INSERT OR IGNORE INTO ops(name) VALUES(?1)", -1, &st, NULL) !=
        SQLITE_OK)
        goto dberr;
    sqlite3_bind_text(st, 1, op, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        goto dberr;
    if (sqlite3_prepare_v2(m->db, "SELECT id FROM ops WHERE name=?1", -1, &st, NULL) != SQLITE_OK)
        goto dberr;
    sqlite3_bind_text(st, 1, op, -1, SQLITE_STATIC);
    int id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (id < 0)
        goto dberr;
    if (id > 255) {
        set_err(err, errlen, "coverage: operator id %d out of range", id);
        return -1;
    }
    m->op_ids[m->n_ops] = id;
    str_copy(m->ops[m->n_ops], op, COV_OP_MAX);
    return m->n_ops++;
dberr:
    set_err(err, errlen, "coverage: adding operator %s: %s", op, sqlite3_errmsg(m->db));
    return -1;
}

/* Our operator index of a stored operator id, -1 if unknown. */
static int op_of_id(const struct coverage_map *m, int id)
{
    for (int i = 0; i < m->n_ops; i++)
        if (m->op_ids[i] == id)
            return i;
    return -1;
}

/* The aggregate for (cell, op index), from the cache or loaded into it. NULL on error. */
static struct centry *agg_entry(struct coverage_map *m, int64_t cell, int oi, char *err,
                                size_t errlen)
{
    struct centry *e = cache_find(m, cell, m->op_ids[oi], false);
    if (e)
        return e;
    if (m->cache_n >= CACHE_HIGH && flush_locked(m, err, errlen))
        return NULL;
    struct agg a;
    if (db_get_agg(m, cell, m->op_ids[oi], &a) < 0) {
        set_err(err, errlen, "coverage: read %s: %s", m->path, sqlite3_errmsg(m->db));
        note_rc(m);
        return NULL;
    }
    e = cache_find(m, cell, m->op_ids[oi], true);
    if (e)
        e->a = a;
    return e;
}

/* An empty slot, else the one with the least weight. */
static int path_weakest(const struct path *p)
{
    int w = 0;
    for (int i = 0; i < PATH_SLOTS; i++) {
        if (!p->next[i])
            return i;
        if (p->w[i] < p->w[w])
            w = i;
    }
    return w;
}

static void learn_successor(struct coverage_map *m, int64_t from, int64_t to, uint32_t trip)
{
    int64_t dl = (to >> LON_BITS) - (from >> LON_BITS);
    int64_t dn = (to & ((1 << LON_BITS) - 1)) - (from & ((1 << LON_BITS) - 1));
    if (dl < -127 || dl > 127 || dn < -127 || dn > 127)
        return; /* not a neighbour: a jump or a gap, not a path */
    struct pentry *e = pcache_find(m, from, false);
    if (!e) {
        char err[128];
        if (m->pcache_n >= PATH_CACHE_HIGH && flush_locked(m, err, sizeof(err))) {
            LOG_W(SUBSYS, "%s", err);
            return;
        }
        struct path p;
        if (db_get_path(m, from, &p) < 0)
            return;
        e = pcache_find(m, from, true);
        if (!e)
            return;
        e->p = p;
    }
    struct path *p = &e->p;
    if (p->last_trip != trip) {
        for (int i = 0; i < PATH_SLOTS; i++)
            p->w[i] *= m->decay;
        p->last_trip = trip;
    }
    int slot = -1;
    for (int i = 0; i < PATH_SLOTS; i++)
        if (p->next[i] == to)
            slot = i;
    if (slot < 0) {
        slot = path_weakest(p);
        p->next[slot] = to;
        p->w[slot] = 0;
    }
    p->w[slot] = fmin(p->w[slot] + 1.0, 1000.0);
    e->dirty = true;
}

static bool reject(struct coverage_map *m, char *err, size_t errlen, const char *why)
{
    m->rejected++;
    set_err(err, errlen, "coverage: sample rejected: %s", why);
    return true;
}

/* Bad input stays out of the map: returns true (and says why) when s must be refused. */
static bool sample_bad(struct coverage_map *m, const struct cov_sample *s, char *err, size_t errlen)
{
    if (s->trip == 0)
        return reject(m, err, errlen, "trip id 0");
    if (s->fix == COV_FIX_NONE)
        return reject(m, err, errlen, "no fix");
    if (!isfinite(s->lat) || !isfinite(s->lon) || fabs(s->lat) > MAX_LAT || fabs(s->lon) > 180.0)
        return reject(m, err, errlen, "position out of range");
    if (s->lat == 0.0 && s->lon == 0.0)
        return reject(m, err, errlen, "position 0,0");
    if (s->fix_age_ms > COV_MAX_FIX_AGE_MS) /* a receiver repeating its last fix, a stuck gpsd */
        return reject(m, err, errlen, "stale fix");
    if (s->utc <= 1000000000LL)
        return reject(m, err, errlen, "no wall time");
    if (!op_valid(s->op))
        return reject(m, err, errlen, "bad operator id");
    if (isfinite(s->speed_mps) && (s->speed_mps < 0 || s->speed_mps > m->prm.max_speed_mps))
        return reject(m, err, errlen, "speed out of range");
    if (!m->have_last || s->trip != m->last_trip)
        return false;
    int64_t dt = s->utc - m->last_utc;
    if (dt > LONG_GAP_S) {
        m->have_last = false; /* long gap: re-anchor, no successor across it */
        return false;
    }
    double d = cov_distance_m(m->last_lat, m->last_lon, s->lat, s->lon);
    const char *why = NULL;
    if (dt < 0)
        why = "clock went backwards";
    else if (d > m->prm.max_speed_mps * (double)(dt > 0 ? dt : 1) + 2.0 * m->prm.cell_m)
        why = "position jump";
    if (!why) {
        m->jump_rejects = 0;
        return false;
    }
    if (++m->jump_rejects >= JUMP_REANCHOR) {
        /* The anchor itself was the outlier (or the clock really moved): trust the new run. */
        LOG_W(SUBSYS, "%d samples in a row rejected (%s): re-anchoring", JUMP_REANCHOR, why);
        m->have_last = false;
        m->jump_rejects = 0;
        return false;
    }
    return reject(m, err, errlen, why);
}

int coverage_add_sample(struct coverage_map *m, const struct cov_sample *s, char *err,
                        size_t errlen)
{
    if (!m || !s) {
        set_err(err, errlen, "coverage: no map or sample");
        return -1;
    }
    pthread_mutex_lock(&m->mu);
    if (m->bad_rc)
        rebuild_locked(m);
    int ret = 1;
    if (sample_bad(m, s, err, errlen))
        goto out;
    ret = -1;
    int oi = op_index(m, s->op, true, err, errlen);
    if (oi < 0) {
        ret = m->n_ops >= COV_MAX_OPS ? 1 : -1;
        goto out;
    }
    int64_t key = key_of(m->prm.cell_m, s->lat, s->lon);
    struct centry *e = agg_entry(m, key, oi, err, errlen);
    if (!e)
        goto out;
    agg_add(m, &e->a, s);
    e->dirty = true;
    m->pending_samples++;

    /* path learning from consecutive real fixes of the same trip */
    bool real = s->fix != COV_FIX_DEAD_RECKONING;
    if (m->have_last && m->last_trip == s->trip && m->last_cell_ok && real && key != m->last_cell &&
        s->utc - m->last_utc <= PATH_MAX_GAP_S)
        learn_successor(m, m->last_cell, key, s->trip);
    if (!m->have_last || key != m->last_cell || real) {
        m->last_cell = key;
        m->last_cell_ok = real;
    }
    m->have_last = true;
    m->last_lat = s->lat;
    m->last_lon = s->lon;
    m->last_utc = s->utc;
    m->last_trip = s->trip;
    ret = 0;
    if (mono_ms() - m->last_commit_ms >= (uint64_t)m->prm.commit_interval_s * 1000u &&
        flush_locked(m, err, errlen))
        ret = -1;
out:
    if (ret < 0 && m->bad_rc)
        rebuild_locked(m);
    pthread_mutex_unlock(&m->mu);
    return ret;
}

/* ---- look-ups ------------------------------------------------------------------------------ */

int coverage_lookup(struct coverage_map *m, double lat, double lon, const char *op,
                    struct cov_cell *out, char *err, size_t errlen)
{
    if (!m || !op || !isfinite(lat) || !isfinite(lon)) {
        set_err(err, errlen, "coverage: bad look-up");
        return -1;
    }
    pthread_mutex_lock(&m->mu);
    int ret = 0;
    int oi = op_index(m, op, false, NULL, 0);
    if (oi >= 0) {
        int64_t key = key_of(m->prm.cell_m, lat, lon);
        struct centry *e = cache_find(m, key, m->op_ids[oi], false);
        struct agg a;
        if (e) {
            a = e->a;
            ret = 1;
        } else {
            ret = db_get_agg(m, key, m->op_ids[oi], &a);
            if (ret < 0)
                set_err(err, errlen, "coverage: read: %s", sqlite3_errmsg(m->db));
        }
        if (ret == 1)
            cell_from_agg(m, key, op, &a, out);
    }
    pthread_mutex_unlock(&m->mu);
    return ret;
}

int coverage_cell_ops(struct coverage_map *m, int64_t key, struct cov_cell *out, int max)
{
    pthread_mutex_lock(&m->mu);
    int n = 0;
    bool seen[COV_MAX_OPS] = {false};
    for (int oi = 0; oi < m->n_ops && n < max; oi++) {
        struct centry *e = cache_find(m, key, m->op_ids[oi], false);
        if (e) {
            seen[oi] = true;
            cell_from_agg(m, key, m->ops[oi], &e->a, &out[n++]);
        }
    }
    struct row r;
    int rc = row_read(m, key, &r);
    for (int i = 0; rc == 1 && i < row_count(&r) && n < max; i++) {
        const uint8_t *rec = row_rec(&r, i);
        int oi = op_of_id(m, rec[0]);
        struct agg a;
        if (oi < 0 || seen[oi] || !agg_decode(rec + 1, AGG_BLOB_LEN, &a))
            continue;
        cell_from_agg(m, key, m->ops[oi], &a, &out[n++]);
    }
    if (rc < 0)
        n = -1;
    pthread_mutex_unlock(&m->mu);
    return n;
}

int coverage_path_next(struct coverage_map *m, int64_t key, int64_t *next, double *weight, int max)
{
    pthread_mutex_lock(&m->mu);
    struct path p;
    struct pentry *e = pcache_find(m, key, false);
    int rc = 1;
    if (e)
        p = e->p;
    else
        rc = db_get_path(m, key, &p);
    int n = 0;
    for (int i = 0; rc == 1 && i < PATH_SLOTS && n < max; i++)
        if (p.next[i]) {
            next[n] = p.next[i];
            weight[n] = p.w[i];
            n++;
        }
    pthread_mutex_unlock(&m->mu);
    return rc < 0 ? -1 : n;
}

int coverage_ops(struct coverage_map *m, char ops[][COV_OP_MAX], int max)
{
    pthread_mutex_lock(&m->mu);
    int n = m->n_ops < max ? m->n_ops : max;
    for (int i = 0; i < n; i++)
        str_copy(ops[i], m->ops[i], COV_OP_MAX);
    pthread_mutex_unlock(&m->mu);
    return n;
}

static uint64_t file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

int coverage_get_stats(struct coverage_map *m, struct coverage_stats *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&m->mu);
    int ret = 0;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(m->db, "SELECT count(*), total((length(s) - 16) / 54) FROM cells", -1,
                           &q, NULL) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_ROW) {
        set_err(err, errlen, "coverage: stats: %s", sqlite3_errmsg(m->db));
        ret = -1;
    } else {
        st->geo_cells = (uint64_t)sqlite3_column_int64(q, 0);
        st->cells = (uint64_t)sqlite3_column_int64(q, 1);
    }
    sqlite3_finalize(q);
    st->cell_m = m->prm.cell_m;
    st->samples = m->samples_committed;
    st->rejected = m->rejected;
    st->rebuilds = m->rebuilds;
    char wal[600];
    snprintf(wal, sizeof(wal), "%s-wal", m->path);
    st->file_bytes = file_size(m->path) + file_size(wal);
    st->n_ops = (unsigned)m->n_ops;
    for (int i = 0; i < m->n_ops; i++)
        str_copy(st->ops[i], m->ops[i], COV_OP_MAX);
    pthread_mutex_unlock(&m->mu);
    return ret;
}

/* ---- export / import ----------------------------------------------------------------------- */

static void json_num(FILE *f, const char *name, double v, int prec)
{
    if (isfinite(v))
        fprintf(f, ",\"%s\":%.*f", name, prec, v);
}

long coverage_export_geojson(struct coverage_map *m, FILE *f, const double *bbox, char *err,
                             size_t errlen)
{
    if (!m || !f) {
        set_err(err, errlen, "coverage: export: no map or file");
        return -1;
    }
    pthread_mutex_lock(&m->mu);
    long features = -1;
    sqlite3_stmt *st = NULL;
    if (flush_locked(m, err, errlen))
        goto out;
    if (sqlite3_prepare_v2(m->db, "SELECT cell, s FROM cells ORDER BY cell", -1, &st, NULL) !=
        SQLITE_OK) {
        set_err(err, errlen, "coverage: export: %s", sqlite3_errmsg(m->db));
        goto out;
    }
    fprintf(f, "{\"type\":\"FeatureCollection\",\"cell_m\":%.3f,\"features\":[", m->prm.cell_m);
    features = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t cell = sqlite3_column_int64(st, 0);
        struct row r;
        row_from(&r, sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1));
        double clat, clon;
        center_of(m->prm.cell_m, cell, &clat, &clon);
        if (bbox && (clon < bbox[0] || clat < bbox[1] || clon > bbox[2] || clat > bbox[3]))
            continue;
        /* operators in name order, so that equal maps export byte-identical text */
        struct cov_cell cs[ROW_MAX_RECS];
        int n = 0;
        for (int i = 0; i < row_count(&r); i++) {
            int oi = op_of_id(m, row_rec(&r, i)[0]);
            struct agg a;
            if (oi < 0 || !agg_decode(row_rec(&r, i) + 1, AGG_BLOB_LEN, &a))
                continue;
            struct cov_cell c;
            cell_from_agg(m, cell, m->ops[oi], &a, &c);
            int k = n++;
            while (k > 0 && strcmp(cs[k - 1].op, c.op) > 0) {
                cs[k] = cs[k - 1];
                k--;
            }
            cs[k] = c;
        }
        if (n == 0)
            continue;
        fprintf(f,
                "%s\n{\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\","
                "\"coordinates\":[%.6f,%.6f]},\"properties\":{\"cell\":%lld,\"ops\":{",
                features ? "," : "", clon, clat, (long long)cell);
        features++;
        for (int i = 0; i < n; i++) {
            const struct cov_cell *c = &cs[i];
            fprintf(f, "%s\"%s\":{\"n\":%.2f,\"trips\":%u,\"last_seen\":%lld,\"net\":\"%s\"",
                    i ? "," : "", c->op, c->n, c->trips, (long long)c->last_seen,
                    cov_net_name(c->net));
            json_num(f, "outage", c->outage, 3);
            json_num(f, "quality", c->quality, 3);
            json_num(f, "rsrp", c->rsrp, 1);
            json_num(f, "rsrq", c->rsrq, 1);
            json_num(f, "sinr", c->sinr, 1);
            json_num(f, "rssi", c->rssi, 1);
            json_num(f, "rtt_ms", c->rtt_ms, 1);
            json_num(f, "goodput_kbps", c->goodput_kbps, 0);
            json_num(f, "loss", c->loss, 4);
            json_num(f, "rsrp_bad", c->rsrp_bad, 2);
            json_num(f, "sinr_bad", c->sinr_bad, 2);
            fprintf(f, ",\"dead\":%s}", c->dead ? "true" : "false");
        }
        fputs("}}}", f);
    }
    fputs("\n]}\n", f);
    if (rc != SQLITE_DONE) {
        set_err(err, errlen, "coverage: export: %s", sqlite3_errmsg(m->db));
        features = -1;
    } else if (ferror(f)) {
        set_err(err, errlen, "coverage: export: write error");
        features = -1;
    }
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->mu);
    return features;
}

int coverage_export_geojson_path(struct coverage_map *m, const char *path, const double *bbox,
                                 char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        set_err(err, errlen, "coverage: export: %s: %s", path, strerror(errno));
        return -1;
    }
    long n = coverage_export_geojson(m, f, bbox, err, errlen);
    if (fclose(f) != 0 && n >= 0) {
        set_err(err, errlen, "coverage: export: %s: %s", path, strerror(errno));
        n = -1;
    }
    return n < 0 ? -1 : 0;
}

static void path_merge(struct path *a, const struct path *b)
{
    for (int i = 0; i < PATH_SLOTS; i++) {
        if (!b->next[i])
            continue;
        int slot = -1, weakest = path_weakest(a);
        for (int k = 0; k < PATH_SLOTS; k++)
            if (a->next[k] == b->next[i])
                slot = k;
        if (slot >= 0) {
            a->w[slot] = fmin(a->w[slot] + b->w[i], 1000.0);
        } else if (!a->next[weakest] || a->w[weakest] < b->w[i]) {
            a->next[weakest] = b->next[i];
            a->w[weakest] = b->w[i];
        }
    }
}

long coverage_import(struct coverage_map *m, const char *path, char *err, size_t errlen)
{
    if (!m || !path) {
        set_err(err, errlen, "coverage: import: no map or path");
        return -1;
    }
    sqlite3 *src = NULL;
    sqlite3_stmt *st = NULL;
    long merged = -1;
    bool in_tx = false;
    pthread_mutex_lock(&m->mu);
    if (sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        set_err(err, errlen, "coverage: import %s: %s", path,
                src ? sqlite3_errmsg(src) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(src, 5000);
    char v[64], id[40];
    double cm = 0;
    long sm = 0;
    if (meta_get_text(src, "cell_m", v, sizeof(v)) || !str_to_double(v, &cm) ||
        meta_get_text(src, "map_id", id, sizeof(id))) {
        set_err(err, errlen, "coverage: import %s: not a coverage map", path);
        goto out;
    }
    if (fabs(cm - m->prm.cell_m) > 1e-9) {
        set_err(err, errlen, "coverage: import %s: cell size %.1f m differs from ours (%.1f m)",
                path, cm, m->prm.cell_m);
        goto out;
    }
    if (strcmp(id, m->map_id) == 0) {
        set_err(err, errlen, "coverage: import %s: that is this map itself", path);
        goto out;
    }
    if (meta_get_text(src, "samples", v, sizeof(v)) == 0)
        str_to_long(v, &sm);
    /* already imported at this sample count? */
    if (sqlite3_prepare_v2(m->db, "SELECT samples FROM imports WHERE map_id=?1", -1, &st, NULL) !=
        SQLITE_OK)
        goto dberr;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    bool dup = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) == sm;
    sqlite3_finalize(st);
    st = NULL;
    if (dup) {
        set_err(err, errlen, "coverage: import %s: map %s already imported at %ld samples", path,
                id, sm);
        goto out;
    }
    if (flush_locked(m, err, errlen))
        goto out;
    /* source operator ids -> ours (created as needed, before the transaction) */
    int src_ids[COV_MAX_OPS], our_idx[COV_MAX_OPS], n_src = 0;
    if (sqlite3_prepare_v2(src, "SELECT id, name FROM ops", -1, &st, NULL) != SQLITE_OK)
        goto srcerr;
    while (sqlite3_step(st) == SQLITE_ROW && n_src < COV_MAX_OPS) {
        const char *name = (const char *)sqlite3_column_text(st, 1);
        if (!name || !op_valid(name))
            continue;
        int oi = op_index(m, name, true, err, errlen);
        if (oi < 0)
            continue;
        src_ids[n_src] = sqlite3_column_int(st, 0);
        our_idx[n_src] = oi;
        n_src++;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (exec(m->db, "BEGIN IMMEDIATE", err, errlen))
        goto out;
    in_tx = true;
    if (sqlite3_prepare_v2(src, "SELECT cell, s FROM cells", -1, &st, NULL) != SQLITE_OK)
        goto srcerr;
    merged = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t cell = sqlite3_column_int64(st, 0);
        if (cell < 0)
            continue;
        struct row sr, r;
        row_from(&sr, sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1));
        if (row_read(m, cell, &r) < 0)
            goto dberr;
        for (int i = 0; i < row_count(&sr); i++) {
            int sid = row_rec(&sr, i)[0], oi = -1;
            for (int k = 0; k < n_src; k++)
                if (src_ids[k] == sid)
                    oi = our_idx[k];
            struct agg b, a;
            if (oi < 0 || !agg_decode(row_rec(&sr, i) + 1, AGG_BLOB_LEN, &b))
                continue;
            const uint8_t *mine = row_find(&r, m->op_ids[oi]);
            if (!mine || !agg_decode(mine, AGG_BLOB_LEN, &a))
                memset(&a, 0, sizeof(a));
            agg_merge(&a, &b);
            if (!row_set(&r, m->op_ids[oi], &a))
                continue;
            merged++;
        }
        struct path pb, pa;
        path_decode(cell, sr.b, PATH_BLOB_LEN, &pb);
        path_decode(cell, r.b, PATH_BLOB_LEN, &pa);
        path_merge(&pa, &pb);
        path_encode(cell, &pa, r.b);
        if (row_write(m, cell, &r))
            goto dberr;
    }
    if (rc != SQLITE_DONE)
        goto srcerr;
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(m->db, "INSERT OR REPLACE INTO imports(map_id, samples) VALUES(?1,?2)",
                           -1, &st, NULL) != SQLITE_OK)
        goto dberr;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, sm);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_DONE)
        goto dberr;
    if (exec(m->db, "COMMIT", err, errlen))
        goto fail;
    in_tx = false;
    LOG_I(SUBSYS, "imported %ld cells from %s (map %s)", merged, path, id);
    goto out;
srcerr:
    set_err(err, errlen, "coverage: import %s: %s", path, sqlite3_errmsg(src));
    goto fail;
dberr:
    set_err(err, errlen, "coverage: import into %s: %s", m->path, sqlite3_errmsg(m->db));
fail:
    merged = -1;
out:
    sqlite3_finalize(st);
    if (in_tx)
        exec(m->db, "ROLLBACK", NULL, 0);
    sqlite3_close(src);
    pthread_mutex_unlock(&m->mu);
    return merged;
}

/* ---- read-only area query (dashboard) ------------------------------------------------------ */

/* Median bucket [lo, hi) of metric i's histogram; false when the metric was never seen. */
static bool agg_median_bucket(const struct agg *a, int i, double out[2])
{
    static const double edges[M_HIST][5] = {
        [M_RSRP] = {-INFINITY, -115, -105, -95, INFINITY},
        [M_SINR] = {-INFINITY, 0, 5, 13, INFINITY},
        [M_RTT] = {INFINITY, 400, 150, 60, 0}, /* bucket 0 = slowest */
        [M_GOODPUT] = {0, 500, 2000, 10000, INFINITY},
    };
    out[0] = out[1] = NAN;
    double tot = 0;
    for (int b = 0; b < 4; b++)
        tot += a->h[i][b];
    if (!(a->w[i] > 0) || !(tot > 0))
        return false;
    double cum = 0;
    int b = 0;
    for (; b < 3; b++) {
        cum += a->h[i][b];
        if (cum >= tot / 2)
            break;
    }
    double lo = edges[i][b], hi = edges[i][b + 1];
    if (lo > hi) { /* RTT: higher is worse, so the bucket runs from hi up to lo */
        double t = lo;
        lo = hi;
        hi = t;
    }
    out[0] = isfinite(lo) ? lo : NAN;
    out[1] = isfinite(hi) ? hi : NAN;
    return true;
}

int coverage_query_area(const char *path, const struct cov_area_query *q, cov_area_fn fn, void *ctx,
                        struct cov_area_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof(*res));
    if (!path || !q || !fn) {
        set_err(err, errlen, "coverage: query: no path, query or callback");
        return -1;
    }
    const double *b = q->bbox;
    for (int i = 0; i < 4; i++)
        if (!isfinite(b[i])) {
            set_err(err, errlen, "coverage: query: bbox has a non-finite number");
            return -1;
        }
    if (b[0] < -180 || b[2] > 180 || b[1] < -90 || b[3] > 90 || b[0] >= b[2] || b[1] >= b[3]) {
        set_err(err, errlen,
                "coverage: query: bbox must be min_lon<max_lon in -180..180, min_lat<max_lat "
                "in -90..90");
        return -1;
    }
    if (q->limit == 0 || q->limit > 1000000) {
        set_err(err, errlen, "coverage: query: limit %u out of 1..1000000", q->limit);
        return -1;
    }
    if (q->op && q->op[0] && !op_valid(q->op)) {
        set_err(err, errlen, "coverage: query: bad operator name");
        return -1;
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || sb.st_size == 0)
        return COV_QUERY_NO_MAP;

    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    struct coverage_map *shell = NULL;
    bool in_tx = false;
    int rc = -1;
    /* Read-only, no mutex: the writer (steer thread) never waits for us; a short busy timeout
     * because a WAL reader only meets SQLITE_BUSY during the writer's recovery. */
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        set_err(err, errlen, "coverage: query: open %s: %s", path,
                db ? sqlite3_errmsg(db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(db, 200);
    char v[64];
    double cm = 0;
    if (meta_get_text(db, "cell_m", v, sizeof(v)) || !str_to_double(v, &cm) || cm < 5 ||
        cm > 1000) {
        rc = COV_QUERY_NO_MAP; /* new, foreign or half-created file: nothing to show */
        goto out;
    }
    res->cell_m = cm;
    double li0 = floor((b[1] + 90.0) * M_PER_DEG_LAT / cm);
    double li1 = floor((b[3] + 90.0) * M_PER_DEG_LAT / cm);
    unsigned max_rows = q->max_rows ? q->max_rows : 20000;
    if (li1 - li0 + 1 > max_rows) {
        set_err(err, errlen, "coverage: query: bbox spans %.0f cell rows (max %u)", li1 - li0 + 1,
                max_rows);
        goto out;
    }
    /* cell_from_agg/coverage_cell_judge read only ->prm of a map: an otherwise empty shell
     * (calloc'd: the caches make it too big for an HTTP thread's stack; untouched pages cost
     * nothing) lets the query reuse them rather than copy the judging rules. */
    shell = calloc(1, sizeof(*shell));
    if (!shell) {
        set_err(err, errlen, "coverage: query: out of memory");
        goto out;
    }
    if (q->params)
        shell->prm = *q->params;
    else
        coverage_params_default(&shell->prm);
    params_fix(&shell->prm);
    shell->prm.cell_m = cm;
    if (exec(db, "BEGIN", err, errlen)) /* one snapshot for every row query */
        goto out;
    in_tx = true;
    int op_name_of[256];
    for (int i = 0; i < 256; i++)
        op_name_of[i] = -1;
    if (sqlite3_prepare_v2(db, "SELECT id, name FROM ops ORDER BY id", -1, &st, NULL) != SQLITE_OK)
        goto dberr;
    while (sqlite3_step(st) == SQLITE_ROW && res->n_ops < COV_MAX_OPS) {
        int id = sqlite3_column_int(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        if (id < 0 || id > 255 || !name || !op_valid(name))
            continue;
        op_name_of[id] = (int)res->n_ops;
        str_copy(res->ops[res->n_ops++], name, COV_OP_MAX);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT cell, s FROM cells WHERE cell BETWEEN ?1 AND ?2 ORDER BY cell",
                           -1, &st, NULL) != SQLITE_OK)
        goto dberr;
    double half_lat = cm / 2.0 / M_PER_DEG_LAT;
    for (int64_t li = (int64_t)li0; li <= (int64_t)li1; li++) {
        double rl = row_lat(cm, li);
        /* Column range of this row: its longitude scale depends on the row's latitude band. */
        int64_t k0 = key_of(cm, rl, b[0]), k1 = key_of(cm, rl, b[2]);
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, k0);
        sqlite3_bind_int64(st, 2, k1);
        int sr;
        while ((sr = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t cell = sqlite3_column_int64(st, 0);
            struct row r;
            row_from(&r, sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1));
            for (int i = 0; i < row_count(&r); i++) {
                int oi = op_name_of[row_rec(&r, i)[0]];
                struct agg a;
                if (oi < 0 || (q->op && q->op[0] && strcmp(res->ops[oi], q->op) != 0) ||
                    !agg_decode(row_rec(&r, i) + 1, AGG_BLOB_LEN, &a) || !(a.n > 0))
                    continue;
                if (res->cells >= q->limit) {
                    res->truncated = true;
                    rc = 0;
                    goto out;
                }
                struct cov_area_cell ac;
                memset(&ac, 0, sizeof(ac));
                cell_from_agg(shell, cell, res->ops[oi], &a, &ac.c);
                double half_lon = cm / 2.0 / lon_scale(ac.c.lat);
                ac.lat_min = ac.c.lat - half_lat;
                ac.lat_max = ac.c.lat + half_lat;
                ac.lon_min = ac.c.lon - half_lon;
                ac.lon_max = ac.c.lon + half_lon;
                ac.rsrp_med_known = agg_median_bucket(&a, M_RSRP, ac.rsrp_med);
                ac.sinr_med_known = agg_median_bucket(&a, M_SINR, ac.sinr_med);
                ac.goodput_med_known = agg_median_bucket(&a, M_GOODPUT, ac.goodput_med);
                res->cells++;
                if (fn(ctx, &ac) != 0) {
                    set_err(err, errlen, "coverage: query: stopped by caller");
                    goto out;
                }
            }
        }
        if (sr != SQLITE_DONE)
            goto dberr;
    }
    rc = 0;
    goto out;
dberr:
    set_err(err, errlen, "coverage: query %s: %s", path, sqlite3_errmsg(db));
out:
    sqlite3_finalize(st);
    if (in_tx)
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    free(shell);
    return rc;
}
