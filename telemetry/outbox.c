/* outbox: batch codec, the sqlite outbox, cutting and the disk quota (see outbox.h and
 * docs/telemetry.md). */
#include "telemetry/outbox.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "common/common.h"

#define BATCH_MAGIC     "CTB1"
#define BATCH_HDR_FIXED (4 + 2 + 1 + 8 + 8 + 8 + 4) /* without the vehicle id bytes */
#define ZSTD_LEVEL      12 /* ~300 KB raw per 10 min: level 12 costs tens of ms on the ARM box */

/* ---- raw buffer (bounded growth) ----------------------------------------------------------- */
struct rawbuf {
    uint8_t *p;
    size_t len, cap, max;
};

static bool rb_reserve(struct rawbuf *b, size_t more)
{
    if (more > b->max - b->len)
        return false;
    if (b->len + more <= b->cap)
        return true;
    size_t ncap = b->cap ? b->cap : 4096;
    while (ncap < b->len + more)
        ncap *= 2;
    if (ncap > b->max)
        ncap = b->max;
    uint8_t *np = realloc(b->p, ncap);
    if (!np)
        return false;
    b->p = np;
    b->cap = ncap;
    return true;
}

static bool rb_put(struct rawbuf *b, const void *src, size_t n)
{
    if (!rb_reserve(b, n))
        return false;
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return true;
}

static void le_put(uint8_t *p, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t le_get(const uint8_t *p, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

bool batch_vehicle_valid(const char *vid)
{
    size_t n = strlen(vid);
    if (n == 0 || n > BATCH_VEHICLE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = vid[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Header with n_records = 0; patched by raw_set_count once the records are in. */
static bool raw_put_header(struct rawbuf *b, const struct batch_header *h)
{
    uint8_t hdr[BATCH_HDR_FIXED + BATCH_VEHICLE_MAX];
    size_t vl = strlen(h->vehicle);
    memcpy(hdr, BATCH_MAGIC, 4);
    le_put(hdr + 4, BATCH_SCHEMA_VERSION, 2);
    hdr[6] = (uint8_t)vl;
    memcpy(hdr + 7, h->vehicle, vl);
    uint8_t *q = hdr + 7 + vl;
    le_put(q, h->seq, 8);
    le_put(q + 8, (uint64_t)h->t_first_ms, 8);
    le_put(q + 16, (uint64_t)h->t_last_ms, 8);
    le_put(q + 24, 0, 4);
    return rb_put(b, hdr, BATCH_HDR_FIXED + vl);
}

static void raw_patch_header(struct rawbuf *b, int64_t t_first, int64_t t_last, uint32_t n)
{
    size_t vl = b->p[6];
    uint8_t *q = b->p + 7 + vl;
    le_put(q + 8, (uint64_t)t_first, 8);
    le_put(q + 16, (uint64_t)t_last, 8);
    le_put(q + 24, n, 4);
}

static bool raw_put_record(struct rawbuf *b, unsigned kind, const uint8_t *payload, size_t len)
{
    uint8_t fr[3] = {(uint8_t)kind, (uint8_t)(len & 0xff), (uint8_t)(len >> 8)};
    return len <= 0xffff && rb_put(b, fr, 3) && rb_put(b, payload, len);
}

static int compress_raw(const struct rawbuf *raw, uint8_t **out, size_t *out_len, char *err,
                        size_t errlen)
{
    size_t bound = ZSTD_compressBound(raw->len);
    uint8_t *z = malloc(bound);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    if (!z || !cc) {
        free(z);
        ZSTD_freeCCtx(cc);
        snprintf(err, errlen, "batch: out of memory compressing %zu bytes", raw->len);
        return BATCH_ENOMEM;
    }
    ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, ZSTD_LEVEL);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1);
    size_t zn = ZSTD_compress2(cc, z, bound, raw->p, raw->len);
    ZSTD_freeCCtx(cc);
    if (ZSTD_isError(zn)) {
        free(z);
        snprintf(err, errlen, "batch: zstd compress: %s", ZSTD_getErrorName(zn));
        return BATCH_EMALFORMED;
    }
    *out = z;
    *out_len = zn;
    return BATCH_OK;
}

int batch_encode(const struct batch_header *h, const struct rec_any *recs, size_t n, uint8_t **out,
                 size_t *out_len, char *err, size_t errlen)
{
    *out = NULL;
    *out_len = 0;
    if (!batch_vehicle_valid(h->vehicle)) {
        snprintf(err, errlen, "batch_encode: invalid vehicle id \"%.64s\"", h->vehicle);
        return BATCH_EMALFORMED;
    }
    struct rawbuf raw = {.max = BATCH_RAW_MAX_DEFAULT};
    if (!raw_put_header(&raw, h))
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        uint8_t pl[REC_ENCODED_MAX];
        size_t len = rec_encode(&recs[i], pl, sizeof pl);
        if (len == 0) {
            free(raw.p);
            snprintf(err, errlen, "batch_encode: record %zu: unknown kind %d", i, recs[i].kind);
            return BATCH_EMALFORMED;
        }
        if (!raw_put_record(&raw, recs[i].kind, pl, len))
            goto nomem;
    }
    raw_patch_header(&raw, h->t_first_ms, h->t_last_ms, (uint32_t)n);
    int rc = compress_raw(&raw, out, out_len, err, errlen);
    free(raw.p);
    return rc;
nomem:
    free(raw.p);
    snprintf(err, errlen, "batch_encode: %zu records exceed %u bytes raw or out of memory", n,
             BATCH_RAW_MAX_DEFAULT);
    return BATCH_ENOMEM;
}

/* Streaming decompression into at most max_raw bytes: the output never grows past the bound,
 * whatever the frame header claims, so a decompression bomb costs at most max_raw of memory. */
static int decompress_bounded(const uint8_t *body, size_t len, size_t max_raw, struct rawbuf *raw,
                              char *err, size_t errlen)
{
    /* Frame header (RFC 8878 3.1.1): magic, then the descriptor byte whose bit 2 says a
     * content checksum follows the frame. We require it: it is what "verified" means here. */
    if (len < 6 || le_get(body, 4) != ZSTD_MAGICNUMBER) {
        snprintf(err, errlen, "batch: not a zstd frame (%zu bytes)", len);
        return BATCH_EMALFORMED;
    }
    if (!(body[4] & 0x04)) {
        snprintf(err, errlen, "batch: zstd frame without content checksum");
        return BATCH_EMALFORMED;
    }
    unsigned long long csize = ZSTD_getFrameContentSize(body, len);
    if (csize == ZSTD_CONTENTSIZE_ERROR) {
        snprintf(err, errlen, "batch: bad zstd frame header");
        return BATCH_EMALFORMED;
    }
    if (csize != ZSTD_CONTENTSIZE_UNKNOWN && csize > max_raw) {
        snprintf(err, errlen, "batch: declares %llu bytes decompressed, bound is %zu", csize,
                 max_raw);
        return BATCH_ETOOBIG;
    }
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    if (!dc) {
        snprintf(err, errlen, "batch: out of memory (zstd context)");
        return BATCH_ENOMEM;
    }
    /* also bound the window the decoder may allocate (default limit is 128 MiB) */
    ZSTD_DCtx_setParameter(dc, ZSTD_d_windowLogMax, 24);
    raw->max = max_raw;
    ZSTD_inBuffer in = {body, len, 0};
    int rc = BATCH_OK;
    for (;;) {
        if (raw->len == raw->cap) {
            if (raw->cap >= max_raw) {
                /* full at the bound: only the frame's end (checksum) may still come */
                ZSTD_outBuffer none = {raw->p, raw->cap, raw->len};
                size_t r0 = ZSTD_decompressStream(dc, &none, &in);
                if (!ZSTD_isError(r0) && r0 == 0 && none.pos == raw->len)
                    break;
                snprintf(err, errlen, "batch: decompresses beyond the bound of %zu bytes", max_raw);
                rc = BATCH_ETOOBIG;
                break;
            }
            size_t grow = raw->cap ? raw->cap : 65536;
            if (grow > max_raw - raw->len)
                grow = max_raw - raw->len;
            if (!rb_reserve(raw, grow)) {
                snprintf(err, errlen, "batch: out of memory decompressing");
                rc = BATCH_ENOMEM;
                break;
            }
        }
        ZSTD_outBuffer out = {raw->p, raw->cap, raw->len};
        size_t ret = ZSTD_decompressStream(dc, &out, &in);
        raw->len = out.pos;
        if (ZSTD_isError(ret)) {
            snprintf(err, errlen, "batch: zstd: %s (input byte %zu of %zu)", ZSTD_getErrorName(ret),
                     in.pos, len);
            rc = BATCH_EMALFORMED;
            break;
        }
        if (ret == 0)
            break; /* frame complete, checksum verified */
        if (in.pos == in.size && out.pos < out.size) {
            /* the decoder had room to write but wants more input: the body is cut short */
            snprintf(err, errlen, "batch: truncated zstd frame (%zu bytes)", len);
            rc = BATCH_EMALFORMED;
            break;
        }
    }
    ZSTD_freeDCtx(dc);
    if (rc == BATCH_OK && in.pos != in.size) {
        snprintf(err, errlen, "batch: %zu trailing bytes after the zstd frame", in.size - in.pos);
        rc = BATCH_EMALFORMED;
    }
    return rc;
}

int batch_decode(const uint8_t *body, size_t len, size_t max_raw, struct batch_header *h,
                 batch_record_fn fn, void *ctx, char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    struct rawbuf raw = {0};
    int rc = decompress_bounded(body, len, max_raw, &raw, err, errlen);
    if (rc != BATCH_OK) {
        free(raw.p);
        return rc;
    }
    const uint8_t *p = raw.p;
    size_t n = raw.len;
    rc = BATCH_EMALFORMED;
    if (n < BATCH_HDR_FIXED || memcmp(p, BATCH_MAGIC, 4) != 0) {
        snprintf(err, errlen, "batch: bad magic or short header (%zu bytes raw)", n);
        goto out;
    }
    h->schema = (uint16_t)le_get(p + 4, 2);
    if (h->schema < BATCH_SCHEMA_MIN || h->schema > BATCH_SCHEMA_VERSION) {
        snprintf(err, errlen, "batch: schema version %u, this build reads %u..%u", h->schema,
                 BATCH_SCHEMA_MIN, BATCH_SCHEMA_VERSION);
        goto out;
    }
    size_t vl = p[6];
    if (vl == 0 || vl > BATCH_VEHICLE_MAX || n < BATCH_HDR_FIXED + vl) {
        snprintf(err, errlen, "batch: bad vehicle id length %zu", vl);
        goto out;
    }
    memcpy(h->vehicle, p + 7, vl);
    h->vehicle[vl] = '\0';
    if (!batch_vehicle_valid(h->vehicle)) {
        snprintf(err, errlen, "batch: invalid vehicle id in header");
        goto out;
    }
    const uint8_t *q = p + 7 + vl;
    h->seq = le_get(q, 8);
    h->t_first_ms = (int64_t)le_get(q + 8, 8);
    h->t_last_ms = (int64_t)le_get(q + 16, 8);
    h->n_records = (uint32_t)le_get(q + 24, 4);
    size_t off = BATCH_HDR_FIXED + vl;
    for (uint32_t i = 0; i < h->n_records; i++) {
        if (n - off < 3) {
            snprintf(err, errlen, "batch seq %llu: record %u of %u: truncated frame",
                     (unsigned long long)h->seq, i, h->n_records);
            goto out;
        }
        unsigned kind = p[off];
        size_t rl = (size_t)le_get(p + off + 1, 2);
        off += 3;
        if (n - off < rl) {
            snprintf(err, errlen, "batch seq %llu: record %u: length %zu past the end",
                     (unsigned long long)h->seq, i, rl);
            goto out;
        }
        struct rec_any r;
        char rerr[160];
        if (rec_decode(kind, p + off, rl, &r, rerr, sizeof rerr) != 0) {
            snprintf(err, errlen, "batch seq %llu: record %u: %s", (unsigned long long)h->seq, i,
                     rerr);
            goto out;
        }
        off += rl;
        if (fn) {
            int frc = fn(ctx, &r, i);
            if (frc != 0) {
                rc = frc;
                goto out;
            }
        }
    }
    if (off != n) {
        snprintf(err, errlen, "batch seq %llu: %zu bytes after the last record",
                 (unsigned long long)h->seq, n - off);
        goto out;
    }
    rc = BATCH_OK;
out:
    free(raw.p);
    return rc;
}

/* ---- outbox -------------------------------------------------------------------------------- */
struct outbox {
    sqlite3 *db;
    char path[256];
    struct outbox_config cfg;
    int64_t last_flush_ms; /* in-memory: flush cadence restarts with the process */
    int64_t last_cut_ms;   /* mirrored in meta: the batch cadence survives restarts */
};

static int db_fail(struct outbox *ob, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "outbox %s: %s: %s", ob->path, what, sqlite3_errmsg(ob->db));
    return -1;
}

static int db_exec(struct outbox *ob, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(ob->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "outbox %s: %.60s: %s", ob->path, sql, msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static void db_rollback(struct outbox *ob)
{
    sqlite3_exec(ob->db, "ROLLBACK", NULL, NULL, NULL);
}

/* meta integers; missing key -> def */
static int meta_get(struct outbox *ob, const char *key, int64_t def, int64_t *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ob->db, "SELECT value FROM meta WHERE key=?", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : def;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int meta_set(struct outbox *ob, const char *key, int64_t v)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ob->db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, v);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int64_t query_int(struct outbox *ob, const char *sql, bool *ok)
{
    sqlite3_stmt *st;
    int64_t v = 0;
    if (sqlite3_prepare_v2(ob->db, sql, -1, &st, NULL) != SQLITE_OK) {
        *ok = false;
        return 0;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_DONE)
        *ok = false;
    sqlite3_finalize(st);
    return v;
}

static const char OUTBOX_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS pending(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " kind INTEGER NOT NULL, t_ms INTEGER NOT NULL, body BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS batches(seq INTEGER PRIMARY KEY, t_first_ms INTEGER NOT NULL,"
    " t_last_ms INTEGER NOT NULL, n_records INTEGER NOT NULL, raw_bytes INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL, thinned INTEGER NOT NULL DEFAULT 0, delivered_ms INTEGER,"
    " rejected INTEGER NOT NULL DEFAULT 0,"
    " body BLOB);"
    "CREATE INDEX IF NOT EXISTS batches_undelivered ON batches(seq) WHERE delivered_ms IS NULL;";

struct outbox *outbox_open(const char *path, const struct outbox_config *cfg, char *err,
                           size_t errlen)
{
    if (!batch_vehicle_valid(cfg->vehicle_id)) {
        snprintf(err, errlen, "outbox %s: invalid vehicle id \"%.64s\" (1..64 of A-Za-z0-9._-)",
                 path, cfg->vehicle_id);
        return NULL;
    }
    struct outbox *ob = calloc(1, sizeof *ob);
    if (!ob) {
        snprintf(err, errlen, "outbox %s: out of memory", path);
        return NULL;
    }
    str_copy(ob->path, path, sizeof ob->path);
    ob->cfg = *cfg;
    if (!ob->cfg.quota_bytes)
        ob->cfg.quota_bytes = 512ull << 20;
    if (!ob->cfg.flush_ms)
        ob->cfg.flush_ms = 2000;
    if (!ob->cfg.batch_ms)
        ob->cfg.batch_ms = 600000;
    if (!ob->cfg.max_batch_records)
        ob->cfg.max_batch_records = 200000;
    if (!ob->cfg.thin_window_s)
        ob->cfg.thin_window_s = 10;
    if (!ob->cfg.keep_delivered)
        ob->cfg.keep_delivered = 1000;
    ob->last_flush_ms = -1;
    if (sqlite3_open_v2(path, &ob->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        db_fail(ob, "open", err, errlen);
        outbox_close(ob);
        return NULL;
    }
    sqlite3_busy_timeout(ob->db, 10000);
    /* WAL: the uploader reads while the recorder writes. synchronous=FULL: a commit is on disk
     * before it returns, so a cut batch survives a power cut. */
    if (db_exec(ob, "PRAGMA journal_mode=WAL", err, errlen) ||
        db_exec(ob, "PRAGMA synchronous=FULL", err, errlen) ||
        db_exec(ob, OUTBOX_SCHEMA, err, errlen)) {
        outbox_close(ob);
        return NULL;
    }
    if (meta_get(ob, "last_cut_ms", -1, &ob->last_cut_ms) != 0) {
        db_fail(ob, "read meta", err, errlen);
        outbox_close(ob);
        return NULL;
    }
    return ob;
}

void outbox_close(struct outbox *ob)
{
    if (!ob)
        return;
    sqlite3_close(ob->db);
    free(ob);
}

/* Insert records into pending; caller holds a transaction. */
static int pending_insert(struct outbox *ob, const struct rec_any *recs, size_t n, char *err,
                          size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ob->db, "INSERT INTO pending(kind, t_ms, body) VALUES(?, ?, ?)", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(ob, "prepare insert pending", err, errlen);
    for (size_t i = 0; i < n; i++) {
        uint8_t pl[REC_ENCODED_MAX];
        size_t len = rec_encode(&recs[i], pl, sizeof pl);
        if (len == 0) {
            /* a programming error in the caller; refuse it loudly rather than store junk */
            LOG_E("outbox", "record %zu of %zu has unknown kind %d: not stored", i, n,
                  recs[i].kind);
            continue;
        }
        sqlite3_bind_int(st, 1, recs[i].kind);
        sqlite3_bind_int64(st, 2, rec_time(&recs[i]));
        sqlite3_bind_blob(st, 3, pl, (int)len, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE) {
            db_fail(ob, "insert pending", err, errlen);
            sqlite3_finalize(st);
            return -1;
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return 0;
}

int outbox_append(struct outbox *ob, const struct rec_any *recs, size_t n, char *err, size_t errlen)
{
    if (n == 0)
        return 0;
    if (db_exec(ob, "BEGIN IMMEDIATE", err, errlen))
        return -1;
    if (pending_insert(ob, recs, n, err, errlen) || db_exec(ob, "COMMIT", err, errlen)) {
        db_rollback(ob);
        return -1;
    }
    return 0;
}

/* ---- quota --------------------------------------------------------------------------------
 * Rule (docs/telemetry.md "Quota"): while undelivered batch bodies + pending records exceed the
 * quota, (1) thin the oldest not yet thinned undelivered batch: keep every record except track
 * and link samples, of which it keeps the first per thin window (per link for link samples),
 * and add a REC_GAP naming what went; (2) once every undelivered batch is thinned, drop the
 * oldest undelivered batch whole and queue a REC_GAP for the next batch. */
struct thin_ctx {
    struct rec_any *keep;
    size_t n, cap;
    int64_t window_ms;
    int64_t track_win;
    struct {
        char name[REC_NAME_MAX];
        int64_t win;
    } links[64];
    unsigned nlinks;
    uint32_t removed;
};

static int thin_cb(void *vctx, const struct rec_any *r, uint32_t index)
{
    struct thin_ctx *c = vctx;
    (void)index;
    if (r->kind == REC_TRACK) {
        int64_t w = r->u.track.t_ms / c->window_ms;
        if (w == c->track_win) {
            c->removed++;
            return 0;
        }
        c->track_win = w;
    } else if (r->kind == REC_LINK) {
        int64_t w = r->u.link.t_ms / c->window_ms;
        unsigned i;
        for (i = 0; i < c->nlinks; i++)
            if (strcmp(c->links[i].name, r->u.link.link) == 0)
                break;
        if (i < c->nlinks) {
            if (c->links[i].win == w) {
                c->removed++;
                return 0;
            }
            c->links[i].win = w;
        } else if (c->nlinks < ARRAY_LEN(c->links)) {
            str_copy(c->links[c->nlinks].name, r->u.link.link, REC_NAME_MAX);
            c->links[c->nlinks++].win = w;
        }
    }
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 1024;
        struct rec_any *nk = realloc(c->keep, ncap * sizeof *nk);
        if (!nk)
            return BATCH_ENOMEM;
        c->keep = nk;
        c->cap = ncap;
    }
    c->keep[c->n++] = *r;
    return 0;
}

static int thin_batch(struct outbox *ob, int64_t seq, int64_t now_ms, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ob->db, "SELECT body FROM batches WHERE seq=?", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(ob, "prepare thin", err, errlen);
    sqlite3_bind_int64(st, 1, seq);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return db_fail(ob, "read batch to thin", err, errlen);
    }
    struct thin_ctx c = {.window_ms = (int64_t)ob->cfg.thin_window_s * 1000,
                         .track_win = INT64_MIN};
    struct batch_header h;
    char derr[200];
    int rc = batch_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                          BATCH_RAW_MAX_DEFAULT, &h, thin_cb, &c, derr, sizeof derr);
    sqlite3_finalize(st);
    uint8_t *z = NULL;
    size_t zn = 0;
    if (rc == BATCH_OK) {
        /* one more slot for the gap record */
        struct rec_any g = {.kind = REC_GAP};
        g.u.gap.t_ms = now_ms;
        g.u.gap.from_ms = h.t_first_ms;
        g.u.gap.to_ms = h.t_last_ms;
        g.u.gap.seq_from = g.u.gap.seq_to = (uint64_t)seq;
        g.u.gap.records_lost = c.removed;
        snprintf(g.u.gap.reason, sizeof g.u.gap.reason,
                 "quota_thinned: kept the first track and link sample per %u s window",
                 ob->cfg.thin_window_s);
        if (thin_cb(&c, &g, 0) != 0)
            rc = BATCH_ENOMEM;
        else
            rc = batch_encode(&h, c.keep, c.n, &z, &zn, derr, sizeof derr);
    }
    free(c.keep);
    if (rc != BATCH_OK) {
        /* cannot thin it (corrupt or no memory): it will be dropped by rule (2) instead */
        LOG_W("outbox", "%s: cannot thin batch %lld: %s", ob->path, (long long)seq, derr);
        z = NULL;
    }
    if (sqlite3_prepare_v2(ob->db,
                           z ? "UPDATE batches SET thinned=1, body=?, n_records=? WHERE seq=?"
                             : "UPDATE batches SET thinned=1 WHERE seq=?3",
                           -1, &st, NULL) != SQLITE_OK) {
        free(z);
        return db_fail(ob, "prepare thin update", err, errlen);
    }
    if (z) {
        sqlite3_bind_blob(st, 1, z, (int)zn, free);
        sqlite3_bind_int64(st, 2, (int64_t)c.n);
    }
    sqlite3_bind_int64(st, 3, seq);
    int src = sqlite3_step(st);
    sqlite3_finalize(st);
    if (src != SQLITE_DONE)
        return db_fail(ob, "thin update", err, errlen);
    int64_t cnt = 0;
    meta_get(ob, "thinned_total", 0, &cnt);
    meta_set(ob, "thinned_total", cnt + 1);
    LOG_W("outbox", "%s: quota: thinned batch %lld (%u samples removed)", ob->path, (long long)seq,
          c.removed);
    return 0;
}

static int drop_batch(struct outbox *ob, int64_t seq, int64_t now_ms, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ob->db,
                           "SELECT t_first_ms, t_last_ms, n_records FROM batches WHERE seq=?", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(ob, "prepare drop", err, errlen);
    sqlite3_bind_int64(st, 1, seq);
    struct rec_any g = {.kind = REC_GAP};
    if (sqlite3_step(st) == SQLITE_ROW) {
        g.u.gap.from_ms = sqlite3_column_int64(st, 0);
        g.u.gap.to_ms = sqlite3_column_int64(st, 1);
        g.u.gap.records_lost = (uint32_t)sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    g.u.gap.t_ms = now_ms;
    g.u.gap.seq_from = g.u.gap.seq_to = (uint64_t)seq;
    snprintf(g.u.gap.reason, sizeof g.u.gap.reason,
             "quota_dropped: outbox over quota with every older batch already thinned");
    if (pending_insert(ob, &g, 1, err, errlen))
        return -1;
    if (sqlite3_prepare_v2(ob->db, "DELETE FROM batches WHERE seq=?", -1, &st, NULL) != SQLITE_OK)
        return db_fail(ob, "prepare delete", err, errlen);
    sqlite3_bind_int64(st, 1, seq);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(ob, "delete batch", err, errlen);
    int64_t cnt = 0;
    meta_get(ob, "dropped_total", 0, &cnt);
    meta_set(ob, "dropped_total", cnt + 1);
    LOG_W("outbox", "%s: quota: dropped batch %lld (%u records), gap recorded", ob->path,
          (long long)seq, g.u.gap.records_lost);
    return 0;
}

static uint64_t outbox_usage(struct outbox *ob, bool *ok)
{
    return (uint64_t)query_int(ob,
                               "SELECT (SELECT COALESCE(SUM(length(body)),0) FROM batches"
                               " WHERE delivered_ms IS NULL) +"
                               " (SELECT COALESCE(SUM(length(body)),0) FROM pending)",
                               ok);
}

/* Caller holds the write transaction. */
static int enforce_quota(struct outbox *ob, int64_t now_ms, char *err, size_t errlen)
{
    for (;;) {
        bool ok = true;
        uint64_t used = outbox_usage(ob, &ok);
        if (!ok)
            return db_fail(ob, "quota usage", err, errlen);
        if (used <= ob->cfg.quota_bytes)
            return 0;
        int64_t seq = query_int(ob,
                                "SELECT seq FROM batches WHERE delivered_ms IS NULL AND thinned=0"
                                " ORDER BY seq LIMIT 1",
                                &ok);
        if (ok && seq > 0) {
            if (thin_batch(ob, seq, now_ms, err, errlen))
                return -1;
            continue;
        }
        seq = query_int(
            ob, "SELECT seq FROM batches WHERE delivered_ms IS NULL ORDER BY seq LIMIT 1", &ok);
        if (!ok)
            return db_fail(ob, "quota select", err, errlen);
        if (seq <= 0) {
            /* only pending records left: they are at most one batch period; keep them */
            LOG_W("outbox", "%s: over quota (%llu > %llu bytes) with no batch left to drop",
                  ob->path, (unsigned long long)used, (unsigned long long)ob->cfg.quota_bytes);
            return 0;
        }
        if (drop_batch(ob, seq, now_ms, err, errlen))
            return -1;
    }
}

int outbox_cut(struct outbox *ob, int64_t now_ms, uint64_t *seq_out, char *err, size_t errlen)
{
    if (db_exec(ob, "BEGIN IMMEDIATE", err, errlen))
        return -1;
    int64_t seq = 1;
    if (meta_get(ob, "next_seq", 1, &seq) != 0) {
        db_fail(ob, "read next_seq", err, errlen);
        goto fail;
    }
    struct batch_header h = {.seq = (uint64_t)seq};
    str_copy(h.vehicle, ob->cfg.vehicle_id, sizeof h.vehicle);
    struct rawbuf raw = {.max = BATCH_RAW_MAX_DEFAULT};
    if (!raw_put_header(&raw, &h)) {
        snprintf(err, errlen, "outbox %s: out of memory for batch", ob->path);
        goto fail;
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ob->db, "SELECT id, kind, t_ms, body FROM pending ORDER BY id LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK) {
        free(raw.p);
        db_fail(ob, "prepare select pending", err, errlen);
        goto fail;
    }
    sqlite3_bind_int64(st, 1, ob->cfg.max_batch_records);
    uint32_t n = 0;
    int64_t last_id = 0, t_first = INT64_MAX, t_last = INT64_MIN;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *pl = sqlite3_column_blob(st, 3);
        size_t len = (size_t)sqlite3_column_bytes(st, 3);
        /* leave the rest for the next cut when the raw batch would pass the decoder bound */
        if (!raw_put_record(&raw, (unsigned)sqlite3_column_int(st, 1), pl, len))
            break;
        last_id = sqlite3_column_int64(st, 0);
        int64_t t = sqlite3_column_int64(st, 2);
        if (t < t_first)
            t_first = t;
        if (t > t_last)
            t_last = t;
        n++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        free(raw.p);
        db_fail(ob, "select pending", err, errlen);
        goto fail;
    }
    ob->last_cut_ms = now_ms;
    if (meta_set(ob, "last_cut_ms", now_ms) != 0) {
        free(raw.p);
        db_fail(ob, "write last_cut_ms", err, errlen);
        goto fail;
    }
    if (n == 0) {
        free(raw.p);
        if (db_exec(ob, "COMMIT", err, errlen))
            goto fail;
        return 0;
    }
    raw_patch_header(&raw, t_first, t_last, n);
    uint8_t *z = NULL;
    size_t zn = 0;
    if (compress_raw(&raw, &z, &zn, err, errlen) != BATCH_OK) {
        free(raw.p);
        goto fail;
    }
    size_t raw_len = raw.len;
    free(raw.p);
    if (sqlite3_prepare_v2(ob->db,
                           "INSERT INTO batches(seq, t_first_ms, t_last_ms, n_records, raw_bytes,"
                           " created_ms, body) VALUES(?, ?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        free(z);
        db_fail(ob, "prepare insert batch", err, errlen);
        goto fail;
    }
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_int64(st, 2, t_first);
    sqlite3_bind_int64(st, 3, t_last);
    sqlite3_bind_int64(st, 4, n);
    sqlite3_bind_int64(st, 5, (int64_t)raw_len);
    sqlite3_bind_int64(st, 6, now_ms);
    sqlite3_bind_blob(st, 7, z, (int)zn, free);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        db_fail(ob, "insert batch", err, errlen);
        goto fail;
    }
    if (sqlite3_prepare_v2(ob->db, "DELETE FROM pending WHERE id <= ?", -1, &st, NULL) !=
        SQLITE_OK) {
        db_fail(ob, "prepare delete pending", err, errlen);
        goto fail;
    }
    sqlite3_bind_int64(st, 1, last_id);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        db_fail(ob, "delete pending", err, errlen);
        goto fail;
    }
    if (meta_set(ob, "next_seq", seq + 1) != 0) {
        db_fail(ob, "write next_seq", err, errlen);
        goto fail;
    }
    if (enforce_quota(ob, now_ms, err, errlen))
        goto fail;
    if (db_exec(ob, "COMMIT", err, errlen))
        goto fail;
    if (seq_out)
        *seq_out = (uint64_t)seq;
    return 1;
fail:
    db_rollback(ob);
    /* the in-memory cadence follows the database */
    meta_get(ob, "last_cut_ms", -1, &ob->last_cut_ms);
    return -1;
}

int outbox_tick(struct outbox *ob, struct recorder *rec, int64_t now_ms, uint64_t *seq_out,
                char *err, size_t errlen)
{
    int rc = 0;
    if (ob->last_cut_ms < 0 || now_ms < ob->last_cut_ms) {
        /* first tick ever, or the clock went backwards: the batch period starts now */
        if (meta_set(ob, "last_cut_ms", now_ms) != 0)
            return db_fail(ob, "write last_cut_ms", err, errlen);
        ob->last_cut_ms = now_ms;
    }
    bool cut_due = now_ms - ob->last_cut_ms >= (int64_t)ob->cfg.batch_ms;
    if (rec && (cut_due || ob->last_flush_ms < 0 || now_ms < ob->last_flush_ms ||
                now_ms - ob->last_flush_ms >= (int64_t)ob->cfg.flush_ms)) {
        if (recorder_flush(rec, ob, err, errlen) < 0)
            return -1;
        ob->last_flush_ms = now_ms;
    }
    if (cut_due) {
        rc = outbox_cut(ob, now_ms, seq_out, err, errlen);
        if (rc < 0)
            return -1;
    }
    return rc;
}

int outbox_oldest_undelivered(struct outbox *ob, struct outbox_batch *b, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ob->db,
                           "SELECT seq, t_first_ms, t_last_ms, n_records, thinned, body FROM"
                           " batches WHERE delivered_ms IS NULL ORDER BY seq LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(ob, "prepare oldest", err, errlen);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_finalize(st);
        return 0;
    }
    if (rc != SQLITE_ROW) {
        db_fail(ob, "select oldest", err, errlen);
        sqlite3_finalize(st);
        return -1;
    }
    b->seq = (uint64_t)sqlite3_column_int64(st, 0);
    b->t_first_ms = sqlite3_column_int64(st, 1);
    b->t_last_ms = sqlite3_column_int64(st, 2);
    b->n_records = (uint32_t)sqlite3_column_int64(st, 3);
    b->thinned = sqlite3_column_int(st, 4) != 0;
    b->body_len = (size_t)sqlite3_column_bytes(st, 5);
    b->body = malloc(b->body_len ? b->body_len : 1);
    if (!b->body) {
        sqlite3_finalize(st);
        snprintf(err, errlen, "outbox %s: out of memory for batch %llu", ob->path,
                 (unsigned long long)b->seq);
        return -1;
    }
    if (b->body_len)
        memcpy(b->body, sqlite3_column_blob(st, 5), b->body_len);
    sqlite3_finalize(st);
    return 1;
}

void outbox_batch_release(struct outbox_batch *b)
{
    free(b->body);
    b->body = NULL;
    b->body_len = 0;
}

int outbox_mark_delivered(struct outbox *ob, uint64_t seq, int64_t now_ms, char *err, size_t errlen)
{
    if (db_exec(ob, "BEGIN IMMEDIATE", err, errlen))
        return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ob->db,
                           "UPDATE batches SET delivered_ms=?, body=NULL WHERE seq=? AND"
                           " delivered_ms IS NULL",
                           -1, &st, NULL) != SQLITE_OK) {
        db_fail(ob, "prepare mark delivered", err, errlen);
        goto fail;
    }
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int64(st, 2, (int64_t)seq);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        db_fail(ob, "mark delivered", err, errlen);
        goto fail;
    }
    /* keep the metadata of the last keep_delivered delivered batches for diagnostics */
    if (sqlite3_prepare_v2(ob->db,
                           "DELETE FROM batches WHERE delivered_ms IS NOT NULL AND seq < (SELECT"
                           " seq FROM batches WHERE delivered_ms IS NOT NULL ORDER BY seq DESC"
                           " LIMIT 1 OFFSET ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        db_fail(ob, "prepare prune", err, errlen);
        goto fail;
    }
    sqlite3_bind_int64(st, 1, ob->cfg.keep_delivered - 1);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        db_fail(ob, "prune delivered", err, errlen);
        goto fail;
    }
    if (db_exec(ob, "COMMIT", err, errlen))
        goto fail;
    return 0;
fail:
    db_rollback(ob);
    return -1;
}

int outbox_mark_rejected(struct outbox *ob, uint64_t seq, int64_t now_ms, const char *reason,
                         char *err, size_t errlen)
{
    if (db_exec(ob, "BEGIN IMMEDIATE", err, errlen))
        return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ob->db,
                           "SELECT t_first_ms, t_last_ms, n_records FROM batches WHERE seq=? AND"
                           " delivered_ms IS NULL",
                           -1, &st, NULL) != SQLITE_OK) {
        db_fail(ob, "prepare reject", err, errlen);
        goto fail;
    }
    sqlite3_bind_int64(st, 1, (int64_t)seq);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
            db_fail(ob, "select reject", err, errlen);
            goto fail;
        }
        return db_exec(ob, "COMMIT", err, errlen); /* unknown or already delivered */
    }
    struct rec_any g = {.kind = REC_GAP};
    g.u.gap.t_ms = now_ms;
    g.u.gap.from_ms = sqlite3_column_int64(st, 0);
    g.u.gap.to_ms = sqlite3_column_int64(st, 1);
    g.u.gap.records_lost = (uint32_t)sqlite3_column_int64(st, 2);
    sqlite3_finalize(st);
    g.u.gap.seq_from = g.u.gap.seq_to = seq;
    snprintf(g.u.gap.reason, sizeof g.u.gap.reason, "rejected_by_collector: %s", reason);
    if (pending_insert(ob, &g, 1, err, errlen))
        goto fail;
    if (sqlite3_prepare_v2(ob->db,
                           "UPDATE batches SET delivered_ms=?, rejected=1, body=NULL WHERE seq=?",
                           -1, &st, NULL) != SQLITE_OK) {
        db_fail(ob, "prepare reject update", err, errlen);
        goto fail;
    }
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int64(st, 2, (int64_t)seq);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        db_fail(ob, "reject update", err, errlen);
        goto fail;
    }
    if (db_exec(ob, "COMMIT", err, errlen))
        goto fail;
    LOG_E("outbox", "%s: batch %llu rejected by the collector (%s): gap recorded", ob->path,
          (unsigned long long)seq, reason);
    return 0;
fail:
    db_rollback(ob);
    return -1;
}

int outbox_get_stats(struct outbox *ob, struct outbox_stats *s, char *err, size_t errlen)
{
    bool ok = true;
    int64_t v;
    memset(s, 0, sizeof *s);
    s->pending_records = (uint64_t)query_int(ob, "SELECT COUNT(*) FROM pending", &ok);
    s->pending_bytes =
        (uint64_t)query_int(ob, "SELECT COALESCE(SUM(length(body)),0) FROM pending", &ok);
    s->undelivered =
        (uint64_t)query_int(ob, "SELECT COUNT(*) FROM batches WHERE delivered_ms IS NULL", &ok);
    s->undelivered_bytes = (uint64_t)query_int(
        ob, "SELECT COALESCE(SUM(length(body)),0) FROM batches WHERE delivered_ms IS NULL", &ok);
    s->delivered = (uint64_t)query_int(
        ob, "SELECT COUNT(*) FROM batches WHERE delivered_ms IS NOT NULL AND rejected=0", &ok);
    s->rejected = (uint64_t)query_int(ob, "SELECT COUNT(*) FROM batches WHERE rejected=1", &ok);
    if (!ok)
        return db_fail(ob, "stats", err, errlen);
    if (meta_get(ob, "next_seq", 1, &v) != 0)
        return db_fail(ob, "stats meta", err, errlen);
    s->next_seq = (uint64_t)v;
    meta_get(ob, "thinned_total", 0, &v);
    s->thinned = (uint64_t)v;
    meta_get(ob, "dropped_total", 0, &v);
    s->dropped = (uint64_t)v;
    meta_get(ob, "last_cut_ms", -1, &v);
    s->last_cut_ms = v;
    return 0;
}

/* ---- read-only batch listing (dashboard) --------------------------------------------------- */

const char *outbox_batch_state_name(enum outbox_batch_state s)
{
    switch (s) {
    case OUTBOX_BATCH_PENDING:
        return "pending";
    case OUTBOX_BATCH_THINNED:
        return "thinned";
    case OUTBOX_BATCH_UPLOADED:
        return "uploaded";
    case OUTBOX_BATCH_REJECTED:
        return "rejected";
    }
    return "unknown";
}

int outbox_list_batches(const char *path, struct outbox_batch_info *out, unsigned max,
                        unsigned *n_out, struct outbox_stats *st, char *err, size_t errlen)
{
    *n_out = 0;
    memset(st, 0, sizeof *st);
    if (!path || (max && !out)) {
        snprintf(err, errlen, "outbox: list: no path or buffer");
        return -1;
    }
    /* A struct outbox around a read-only connection, so outbox_get_stats() serves both. */
    struct outbox ob;
    memset(&ob, 0, sizeof ob);
    str_copy(ob.path, path, sizeof ob.path);
    int orc = sqlite3_open_v2(path, &ob.db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (orc != SQLITE_OK) {
        /* read-only never creates: a missing file is "no outbox yet", not an error */
        if (orc != SQLITE_CANTOPEN)
            db_fail(&ob, "open read-only", err, errlen);
        sqlite3_close(ob.db);
        return orc == SQLITE_CANTOPEN ? OUTBOX_NO_FILE : -1;
    }
    /* Short: a WAL reader only waits during the writer's recovery; an HTTP thread must not. */
    sqlite3_busy_timeout(ob.db, 200);
    int rc = -1;
    sqlite3_stmt *q = NULL;
    if (db_exec(&ob, "BEGIN", err, errlen)) /* totals and rows from one snapshot */
        goto out;
    if (outbox_get_stats(&ob, st, err, errlen))
        goto out;
    if (sqlite3_prepare_v2(ob.db,
                           "SELECT seq, t_first_ms, t_last_ms, created_ms, delivered_ms, n_records,"
                           " raw_bytes, COALESCE(length(body),0), thinned, rejected FROM batches"
                           " ORDER BY seq DESC LIMIT ?",
                           -1, &q, NULL) != SQLITE_OK) {
        db_fail(&ob, "prepare list", err, errlen);
        goto out;
    }
    sqlite3_bind_int64(q, 1, max);
    int sr;
    while ((sr = sqlite3_step(q)) == SQLITE_ROW && *n_out < max) {
        struct outbox_batch_info *b = &out[(*n_out)++];
        memset(b, 0, sizeof *b);
        b->seq = (uint64_t)sqlite3_column_int64(q, 0);
        b->t_first_ms = sqlite3_column_int64(q, 1);
        b->t_last_ms = sqlite3_column_int64(q, 2);
        b->created_ms = sqlite3_column_int64(q, 3);
        bool delivered = sqlite3_column_type(q, 4) != SQLITE_NULL;
        b->delivered_ms = delivered ? sqlite3_column_int64(q, 4) : -1;
        b->n_records = (uint32_t)sqlite3_column_int64(q, 5);
        b->raw_bytes = (uint64_t)sqlite3_column_int64(q, 6);
        b->body_bytes = (uint64_t)sqlite3_column_int64(q, 7);
        bool thinned = sqlite3_column_int(q, 8) != 0, rejected = sqlite3_column_int(q, 9) != 0;
        b->state = rejected    ? OUTBOX_BATCH_REJECTED
                   : delivered ? OUTBOX_BATCH_UPLOADED
                   : thinned   ? OUTBOX_BATCH_THINNED
                               : OUTBOX_BATCH_PENDING;
    }
    if (sr != SQLITE_ROW && sr != SQLITE_DONE) {
        db_fail(&ob, "list", err, errlen);
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(q);
    sqlite3_exec(ob.db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(ob.db);
    return rc;
}
