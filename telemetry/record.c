/* record: record codec and the in-memory recorder (see record.h, docs/telemetry.md). */
#include "telemetry/record.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "telemetry/outbox.h"

/* ---- little-endian writer / reader ---------------------------------------------------------
 * A writer that runs out of room sets ok=false and writes nothing more; a reader that runs out
 * of input sets ok=false and yields zeros. Checking ok once at the end keeps the per-kind code
 * a flat list of fields. */
struct wbuf {
    uint8_t *p;
    size_t cap, len;
    bool ok;
};
struct rbuf {
    const uint8_t *p;
    size_t n, off;
    bool ok;
    const char *bad; /* first field that failed */
};

static void w_bytes(struct wbuf *w, const void *src, size_t n)
{
    if (!w->ok || w->cap - w->len < n) {
        w->ok = false;
        return;
    }
    memcpy(w->p + w->len, src, n);
    w->len += n;
}
static void w_u64(struct wbuf *w, uint64_t v, unsigned bytes)
{
    uint8_t b[8];
    for (unsigned i = 0; i < bytes; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    w_bytes(w, b, bytes);
}
static void w_f32(struct wbuf *w, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    w_u64(w, u, 4);
}
static void w_f64(struct wbuf *w, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    w_u64(w, u, 8);
}
static void w_str(struct wbuf *w, const char *s, size_t field)
{
    size_t n = strnlen(s, field - 1);
    w_u64(w, n, 1);
    w_bytes(w, s, n);
}

static uint64_t r_u64(struct rbuf *r, unsigned bytes, const char *what)
{
    if (!r->ok || r->n - r->off < bytes) {
        if (r->ok)
            r->bad = what;
        r->ok = false;
        return 0;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)r->p[r->off + i] << (8 * i);
    r->off += bytes;
    return v;
}
static float r_f32(struct rbuf *r, const char *what)
{
    uint32_t u = (uint32_t)r_u64(r, 4, what);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static double r_f64(struct rbuf *r, const char *what)
{
    uint64_t u = r_u64(r, 8, what);
    double d;
    memcpy(&d, &u, 8);
    return d;
}
static void r_str(struct rbuf *r, char *dst, size_t field, const char *what)
{
    dst[0] = '\0';
    size_t n = (size_t)r_u64(r, 1, what);
    if (!r->ok)
        return;
    if (n >= field || r->n - r->off < n) {
        r->bad = what;
        r->ok = false;
        return;
    }
    memcpy(dst, r->p + r->off, n);
    dst[n] = '\0';
    if (memchr(dst, '\0', n)) { /* embedded NUL: would silently shorten the string */
        r->bad = what;
        r->ok = false;
        return;
    }
    r->off += n;
}

int64_t rec_time(const struct rec_any *r)
{
    switch (r->kind) {
    case REC_TRACK:
        return r->u.track.t_ms;
    case REC_LINK:
        return r->u.link.t_ms;
    case REC_HEALTH:
        return r->u.health.t_ms;
    case REC_SIM:
        return r->u.sim.t_ms;
    case REC_EVENT:
        return r->u.event.t_ms;
    case REC_GAP:
        return r->u.gap.t_ms;
    }
    return 0;
}

const char *rec_kind_name(enum rec_kind k)
{
    switch (k) {
    case REC_TRACK:
        return "track";
    case REC_LINK:
        return "link";
    case REC_HEALTH:
        return "health";
    case REC_SIM:
        return "sim";
    case REC_EVENT:
        return "event";
    case REC_GAP:
        return "gap";
    }
    return "unknown";
}

size_t rec_encode(const struct rec_any *r, uint8_t *buf, size_t cap)
{
    struct wbuf w = {buf, cap, 0, true};
    switch (r->kind) {
    case REC_TRACK: {
        const struct rec_track *t = &r->u.track;
        w_u64(&w, (uint64_t)t->t_ms, 8);
        w_f64(&w, t->lat);
        w_f64(&w, t->lon);
        w_f32(&w, t->alt_m);
        w_f32(&w, t->speed_kmh);
        w_f32(&w, t->track_deg);
        w_u64(&w, t->fix_mode, 1);
        w_u64(&w, t->source, 1);
        break;
    }
    case REC_LINK: {
        const struct rec_link *l = &r->u.link;
        w_u64(&w, (uint64_t)l->t_ms, 8);
        w_str(&w, l->link, sizeof l->link);
        w_str(&w, l->operator_name, sizeof l->operator_name);
        w_str(&w, l->net_type, sizeof l->net_type);
        w_u64(&w, l->cell_id, 8);
        w_f32(&w, l->rssi_dbm);
        w_f32(&w, l->rsrp_dbm);
        w_f32(&w, l->rsrq_db);
        w_f32(&w, l->sinr_db);
        w_f32(&w, l->rtt_ms);
        w_f32(&w, l->loss_pct);
        w_f32(&w, l->goodput_kbps);
        w_f32(&w, l->weight);
        w_u64(&w, l->state, 1);
        break;
    }
    case REC_HEALTH: {
        const struct rec_health *h = &r->u.health;
        w_u64(&w, (uint64_t)h->t_ms, 8);
        w_f32(&w, h->load1);
        w_f32(&w, h->cpu_temp_c);
        w_u64(&w, h->mem_total_kb, 8);
        w_u64(&w, h->mem_avail_kb, 8);
        w_u64(&w, h->disk_total_kb, 8);
        w_u64(&w, h->disk_free_kb, 8);
        w_u64(&w, (uint8_t)h->ssd_health_pct, 1);
        w_u64(&w, h->if_rx_errors, 8);
        w_u64(&w, h->if_tx_errors, 8);
        w_u64(&w, h->if_drops, 8);
        w_u64(&w, h->rss_kb, 8);
        w_u64(&w, h->threads_alive, 4);
        w_u64(&w, h->threads_total, 4);
        /* schema 2 appends; a reader of schema 1 payloads stops before this */
        w_str(&w, h->storage_dev, sizeof h->storage_dev);
        w_u64(&w, h->storage_status, 1);
        w_u64(&w, (uint8_t)h->storage_smart_passed, 1);
        w_u64(&w, (uint16_t)h->storage_life_used_pct, 2);
        w_f32(&w, h->storage_temp_c);
        w_u64(&w, (uint64_t)h->storage_power_on_hours, 8);
        w_u64(&w, (uint64_t)h->storage_media_errors, 8);
        break;
    }
    case REC_SIM: {
        const struct rec_sim *s = &r->u.sim;
        w_u64(&w, (uint64_t)s->t_ms, 8);
        w_str(&w, s->link, sizeof s->link);
        w_str(&w, s->iccid, sizeof s->iccid);
        w_f64(&w, s->balance);
        w_str(&w, s->currency, sizeof s->currency);
        w_u64(&w, s->data_used_bytes, 8);
        w_u64(&w, (uint64_t)s->forecast_empty_utc, 8);
        w_u64(&w, s->alert, 1);
        w_u64(&w, s->data_up_bytes, 8); /* schema 2 */
        w_u64(&w, s->data_down_bytes, 8);
        w_u64(&w, s->data_today_bytes, 8);
        w_u64(&w, s->data_month_bytes, 8);
        break;
    }
    case REC_EVENT: {
        const struct rec_event *e = &r->u.event;
        w_u64(&w, (uint64_t)e->t_ms, 8);
        w_str(&w, e->type, sizeof e->type);
        w_str(&w, e->subject, sizeof e->subject);
        w_str(&w, e->text, sizeof e->text);
        break;
    }
    case REC_GAP: {
        const struct rec_gap *g = &r->u.gap;
        w_u64(&w, (uint64_t)g->t_ms, 8);
        w_u64(&w, (uint64_t)g->from_ms, 8);
        w_u64(&w, (uint64_t)g->to_ms, 8);
        w_u64(&w, g->seq_from, 8);
        w_u64(&w, g->seq_to, 8);
        w_u64(&w, g->records_lost, 4);
        w_str(&w, g->reason, sizeof g->reason);
        break;
    }
    default:
        return 0;
    }
    return w.ok ? w.len : 0;
}

int rec_decode(unsigned kind, const uint8_t *p, size_t n, struct rec_any *out, char *err,
               size_t errlen)
{
    struct rbuf r = {p, n, 0, true, NULL};
    memset(out, 0, sizeof *out);
    out->kind = (enum rec_kind)kind;
    switch (kind) {
    case REC_TRACK: {
        struct rec_track *t = &out->u.track;
        t->t_ms = (int64_t)r_u64(&r, 8, "t_ms");
        t->lat = r_f64(&r, "lat");
        t->lon = r_f64(&r, "lon");
        t->alt_m = r_f32(&r, "alt_m");
        t->speed_kmh = r_f32(&r, "speed_kmh");
        t->track_deg = r_f32(&r, "track_deg");
        t->fix_mode = (uint8_t)r_u64(&r, 1, "fix_mode");
        t->source = (uint8_t)r_u64(&r, 1, "source");
        break;
    }
    case REC_LINK: {
        struct rec_link *l = &out->u.link;
        l->t_ms = (int64_t)r_u64(&r, 8, "t_ms");
        r_str(&r, l->link, sizeof l->link, "link");
        r_str(&r, l->operator_name, sizeof l->operator_name, "operator");
        r_str(&r, l->net_type, sizeof l->net_type, "net_type");
        l->cell_id = r_u64(&r, 8, "cell_id");
        l->rssi_dbm = r_f32(&r, "rssi_dbm");
        l->rsrp_dbm = r_f32(&r, "rsrp_dbm");
        l->rsrq_db = r_f32(&r, "rsrq_db");
        l->sinr_db = r_f32(&r, "sinr_db");
        l->rtt_ms = r_f32(&r, "rtt_ms");
        l->loss_pct = r_f32(&r, "loss_pct");
        l->goodput_kbps = r_f32(&r, "goodput_kbps");
        l->weight = r_f32(&r, "weight");
        l->state = (uint8_t)r_u64(&r, 1, "state");
        break;
    }
    case REC_HEALTH: {
        struct rec_health *h = &out->u.health;
        h->t_ms = (int64_t)r_u64(&r, 8, "t_ms");
        h->load1 = r_f32(&r, "load1");
        h->cpu_temp_c = r_f32(&r, "cpu_temp_c");
        h->mem_total_kb = r_u64(&r, 8, "mem_total_kb");
        h->mem_avail_kb = r_u64(&r, 8, "mem_avail_kb");
        h->disk_total_kb = r_u64(&r, 8, "disk_total_kb");
        h->disk_free_kb = r_u64(&r, 8, "disk_free_kb");
        h->ssd_health_pct = (int8_t)(uint8_t)r_u64(&r, 1, "ssd_health_pct");
        h->if_rx_errors = r_u64(&r, 8, "if_rx_errors");
        h->if_tx_errors = r_u64(&r, 8, "if_tx_errors");
        h->if_drops = r_u64(&r, 8, "if_drops");
        h->rss_kb = r_u64(&r, 8, "rss_kb");
        h->threads_alive = (uint32_t)r_u64(&r, 4, "threads_alive");
        h->threads_total = (uint32_t)r_u64(&r, 4, "threads_total");
        h->storage_smart_passed = -1;
        h->storage_life_used_pct = -1;
        h->storage_temp_c = NAN;
        h->storage_power_on_hours = -1;
        h->storage_media_errors = -1;
        if (r.ok && r.off == n)
            break; /* a schema-1 record ends here: storage health unknown */
        r_str(&r, h->storage_dev, sizeof h->storage_dev, "storage_dev");
        h->storage_status = (uint8_t)r_u64(&r, 1, "storage_status");
        h->storage_smart_passed = (int8_t)(uint8_t)r_u64(&r, 1, "storage_smart_passed");
        h->storage_life_used_pct = (int16_t)(uint16_t)r_u64(&r, 2, "storage_life_used_pct");
        h->storage_temp_c = r_f32(&r, "storage_temp_c");
        h->storage_power_on_hours = (int64_t)r_u64(&r, 8, "storage_power_on_hours");
        h->storage_media_errors = (int64_t)r_u64(&r, 8, "storage_media_errors");
        break;
    }
    case REC_SIM: {
        struct rec_sim *s = &out->u.sim;
        s->t_ms = (int64_t)r_u64(&r, 8, "t_ms");
        r_str(&r, s->link, sizeof s->link, "link");
        r_str(&r, s->iccid, sizeof s->iccid, "iccid");
        s->balance = r_f64(&r, "balance");
        r_str(&r, s->currency, sizeof s->currency, "currency");
        s->data_used_bytes = r_u64(&r, 8, "data_used_bytes");
        s->forecast_empty_utc = (int64_t)r_u64(&r, 8, "forecast_empty_utc");
        s->alert = (uint8_t)r_u64(&r, 1, "alert");
        if (r.ok && r.off == n)
            break; /* a schema-1 record ends here: data used split unknown (0) */
        s->data_up_bytes = r_u64(&r, 8, "data_up_bytes");
        s->data_down_bytes = r_u64(&r, 8, "data_down_bytes");
        s->data_today_bytes = r_u64(&r, 8, "data_today_bytes");
        s->data_month_bytes = r_u64(&r, 8, "data_month_bytes");
        break;
    }
    case REC_EVENT: {
        struct rec_event *e = &out->u.event;
        e->t_ms = (int64_t)r_u64(&r, 8, "t_ms");
        r_str(&r, e->type, sizeof e->type, "type");
        r_str(&r, e->subject, sizeof e->subject, "subject");
        r_str(&r, e->text, sizeof e->text, "text");
        break;
    }
    case REC_GAP: {
        struct rec_gap *g = &out->u.gap;
        g->t_ms = (int64_t)r_u64(&r, 8, "t_ms");
        g->from_ms = (int64_t)r_u64(&r, 8, "from_ms");
        g->to_ms = (int64_t)r_u64(&r, 8, "to_ms");
        g->seq_from = r_u64(&r, 8, "seq_from");
        g->seq_to = r_u64(&r, 8, "seq_to");
        g->records_lost = (uint32_t)r_u64(&r, 4, "records_lost");
        r_str(&r, g->reason, sizeof g->reason, "reason");
        break;
    }
    default:
        snprintf(err, errlen, "record: unknown kind %u", kind);
        return -1;
    }
    if (!r.ok) {
        snprintf(err, errlen, "record %s: truncated or invalid at field %s (payload %zu bytes)",
                 rec_kind_name((enum rec_kind)kind), r.bad ? r.bad : "?", n);
        return -1;
    }
    if (r.off != n) {
        snprintf(err, errlen, "record %s: %zu trailing bytes", rec_kind_name((enum rec_kind)kind),
                 n - r.off);
        return -1;
    }
    return 0;
}

/* ---- JSON -------------------------------------------------------------------------------- */
static void j_str(char *b, size_t n, size_t *o, const char *key, const char *s)
{
    str_appendf(b, n, o, ",\"%s\":\"", key);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            str_appendf(b, n, o, "\\%c", *c);
        else if (*c < 0x20 || *c >= 0x7f) /* keep the output plain ASCII whatever came in */
            str_appendf(b, n, o, "\\u%04x", *c);
        else
            str_appendf(b, n, o, "%c", *c);
    }
    str_appendf(b, n, o, "\"");
}
static void j_num(char *b, size_t n, size_t *o, const char *key, double v)
{
    if (isfinite(v))
        str_appendf(b, n, o, ",\"%s\":%.9g", key, v);
    else
        str_appendf(b, n, o, ",\"%s\":null", key);
}
static void j_int(char *b, size_t n, size_t *o, const char *key, long long v)
{
    str_appendf(b, n, o, ",\"%s\":%lld", key, v);
}
static void j_uint(char *b, size_t n, size_t *o, const char *key, unsigned long long v)
{
    str_appendf(b, n, o, ",\"%s\":%llu", key, v);
}

bool rec_to_json(const struct rec_any *r, char *b, size_t n)
{
    size_t o = 0;
    if (n == 0)
        return false;
    b[0] = '\0';
    str_appendf(b, n, &o, "{\"kind\":\"%s\",\"t_ms\":%lld", rec_kind_name(r->kind),
                (long long)rec_time(r));
    switch (r->kind) {
    case REC_TRACK: {
        const struct rec_track *t = &r->u.track;
        j_num(b, n, &o, "lat", t->lat);
        j_num(b, n, &o, "lon", t->lon);
        j_num(b, n, &o, "alt_m", t->alt_m);
        j_num(b, n, &o, "speed_kmh", t->speed_kmh);
        j_num(b, n, &o, "track_deg", t->track_deg);
        j_int(b, n, &o, "fix_mode", t->fix_mode);
        j_int(b, n, &o, "source", t->source);
        break;
    }
    case REC_LINK: {
        const struct rec_link *l = &r->u.link;
        j_str(b, n, &o, "link", l->link);
        j_str(b, n, &o, "operator", l->operator_name);
        j_str(b, n, &o, "net_type", l->net_type);
        j_uint(b, n, &o, "cell_id", l->cell_id);
        j_num(b, n, &o, "rssi_dbm", l->rssi_dbm);
        j_num(b, n, &o, "rsrp_dbm", l->rsrp_dbm);
        j_num(b, n, &o, "rsrq_db", l->rsrq_db);
        j_num(b, n, &o, "sinr_db", l->sinr_db);
        j_num(b, n, &o, "rtt_ms", l->rtt_ms);
        j_num(b, n, &o, "loss_pct", l->loss_pct);
        j_num(b, n, &o, "goodput_kbps", l->goodput_kbps);
        j_num(b, n, &o, "weight", l->weight);
        j_int(b, n, &o, "state", l->state);
        break;
    }
    case REC_HEALTH: {
        const struct rec_health *h = &r->u.health;
        j_num(b, n, &o, "load1", h->load1);
        j_num(b, n, &o, "cpu_temp_c", h->cpu_temp_c);
        j_uint(b, n, &o, "mem_total_kb", h->mem_total_kb);
        j_uint(b, n, &o, "mem_avail_kb", h->mem_avail_kb);
        j_uint(b, n, &o, "disk_total_kb", h->disk_total_kb);
        j_uint(b, n, &o, "disk_free_kb", h->disk_free_kb);
        j_int(b, n, &o, "ssd_health_pct", h->ssd_health_pct);
        j_uint(b, n, &o, "if_rx_errors", h->if_rx_errors);
        j_uint(b, n, &o, "if_tx_errors", h->if_tx_errors);
        j_uint(b, n, &o, "if_drops", h->if_drops);
        j_uint(b, n, &o, "rss_kb", h->rss_kb);
        j_uint(b, n, &o, "threads_alive", h->threads_alive);
        j_uint(b, n, &o, "threads_total", h->threads_total);
        j_str(b, n, &o, "storage_dev", h->storage_dev);
        j_int(b, n, &o, "storage_status", h->storage_status);
        j_int(b, n, &o, "storage_smart_passed", h->storage_smart_passed);
        j_int(b, n, &o, "storage_life_used_pct", h->storage_life_used_pct);
        j_num(b, n, &o, "storage_temp_c", h->storage_temp_c);
        j_int(b, n, &o, "storage_power_on_hours", h->storage_power_on_hours);
        j_int(b, n, &o, "storage_media_errors", h->storage_media_errors);
        break;
    }
    case REC_SIM: {
        const struct rec_sim *s = &r->u.sim;
        j_str(b, n, &o, "link", s->link);
        j_str(b, n, &o, "iccid", s->iccid);
        j_num(b, n, &o, "balance", s->balance);
        j_str(b, n, &o, "currency", s->currency);
        j_uint(b, n, &o, "data_used_bytes", s->data_used_bytes);
        j_int(b, n, &o, "forecast_empty_utc", s->forecast_empty_utc);
        j_int(b, n, &o, "alert", s->alert);
        j_uint(b, n, &o, "data_up_bytes", s->data_up_bytes);
        j_uint(b, n, &o, "data_down_bytes", s->data_down_bytes);
        j_uint(b, n, &o, "data_today_bytes", s->data_today_bytes);
        j_uint(b, n, &o, "data_month_bytes", s->data_month_bytes);
        break;
    }
    case REC_EVENT: {
        const struct rec_event *e = &r->u.event;
        j_str(b, n, &o, "type", e->type);
        j_str(b, n, &o, "subject", e->subject);
        j_str(b, n, &o, "text", e->text);
        break;
    }
    case REC_GAP: {
        const struct rec_gap *g = &r->u.gap;
        j_int(b, n, &o, "from_ms", g->from_ms);
        j_int(b, n, &o, "to_ms", g->to_ms);
        j_uint(b, n, &o, "seq_from", g->seq_from);
        j_uint(b, n, &o, "seq_to", g->seq_to);
        j_uint(b, n, &o, "records_lost", g->records_lost);
        j_str(b, n, &o, "reason", g->reason);
        break;
    }
    }
    return str_appendf(b, n, &o, "}");
}

/* ---- recorder ------------------------------------------------------------------------------
 * Two arrays: producers fill `fill` under the mutex; recorder_flush swaps it with the empty
 * `out` array and writes `out` without holding the mutex, so producers never wait for fsync.
 * If the write fails, `out` keeps its records and is retried first on the next flush. */
struct recorder {
    pthread_mutex_t mu;
    unsigned cap;
    struct rec_any *fill, *out;
    unsigned nfill, nout;
    /* overflow bookkeeping, reported as one REC_GAP per flush */
    uint64_t dropped_total;
    uint32_t dropped_since;
    int64_t drop_from, drop_to;
};

struct recorder *recorder_new(unsigned capacity)
{
    if (capacity == 0)
        capacity = 4096;
    struct recorder *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cap = capacity;
    /* +1: room for the overflow gap record (the arrays swap roles, so both need it) */
    r->fill = calloc(capacity + 1, sizeof *r->fill);
    r->out = calloc(capacity + 1, sizeof *r->out);
    if (!r->fill || !r->out) {
        free(r->fill);
        free(r->out);
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

void recorder_free(struct recorder *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->mu);
    free(r->fill);
    free(r->out);
    free(r);
}

int recorder_add(struct recorder *r, const struct rec_any *rec)
{
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    if (r->nfill < r->cap) {
        r->fill[r->nfill++] = *rec;
    } else {
        int64_t t = rec_time(rec);
        if (r->dropped_since == 0 || t < r->drop_from)
            r->drop_from = t;
        if (r->dropped_since == 0 || t > r->drop_to)
            r->drop_to = t;
        r->dropped_since++;
        r->dropped_total++;
        rc = -1;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int recorder_add_track(struct recorder *r, const struct rec_track *t)
{
    struct rec_any a = {.kind = REC_TRACK};
    a.u.track = *t;
    return recorder_add(r, &a);
}
int recorder_add_link(struct recorder *r, const struct rec_link *l)
{
    struct rec_any a = {.kind = REC_LINK};
    a.u.link = *l;
    return recorder_add(r, &a);
}
int recorder_add_health(struct recorder *r, const struct rec_health *h)
{
    struct rec_any a = {.kind = REC_HEALTH};
    a.u.health = *h;
    return recorder_add(r, &a);
}
int recorder_add_sim(struct recorder *r, const struct rec_sim *s)
{
    struct rec_any a = {.kind = REC_SIM};
    a.u.sim = *s;
    return recorder_add(r, &a);
}
int recorder_add_event(struct recorder *r, const struct rec_event *e)
{
    struct rec_any a = {.kind = REC_EVENT};
    a.u.event = *e;
    return recorder_add(r, &a);
}

int recorder_flush(struct recorder *r, struct outbox *ob, char *err, size_t errlen)
{
    pthread_mutex_lock(&r->mu);
    if (r->nout == 0) {
        struct rec_any *tmp = r->out;
        r->out = r->fill;
        r->fill = tmp;
        r->nout = r->nfill;
        r->nfill = 0;
        if (r->dropped_since) {
            struct rec_any *g = &r->out[r->nout++];
            memset(g, 0, sizeof *g);
            g->kind = REC_GAP;
            g->u.gap.t_ms = r->drop_to;
            g->u.gap.from_ms = r->drop_from;
            g->u.gap.to_ms = r->drop_to;
            g->u.gap.records_lost = r->dropped_since;
            snprintf(g->u.gap.reason, sizeof g->u.gap.reason,
                     "recorder_overflow: buffer of %u records full between flushes", r->cap);
            r->dropped_since = 0;
        }
    }
    unsigned n = r->nout;
    pthread_mutex_unlock(&r->mu);
    if (n == 0)
        return 0;
    if (outbox_append(ob, r->out, n, err, errlen) != 0)
        return -1;
    pthread_mutex_lock(&r->mu);
    r->nout = 0;
    pthread_mutex_unlock(&r->mu);
    return (int)n;
}

unsigned recorder_buffered(struct recorder *r)
{
    pthread_mutex_lock(&r->mu);
    unsigned n = r->nfill + r->nout;
    pthread_mutex_unlock(&r->mu);
    return n;
}

uint64_t recorder_dropped(struct recorder *r)
{
    pthread_mutex_lock(&r->mu);
    uint64_t n = r->dropped_total;
    pthread_mutex_unlock(&r->mu);
    return n;
}
