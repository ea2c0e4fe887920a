/* outbox: ten-minute batches in a durable sqlite outbox under data_dir.
 *
 * One sqlite file (WAL, synchronous=FULL) holds
 *   pending  records persisted by recorder_flush() since the last cut,
 *   batches  cut batches (zstd-compressed) until the collector acknowledged them,
 *   meta     next sequence number, time of the last cut.
 * Cutting a batch is ONE transaction: the pending records become one batch with the vehicle id,
 * the next sequence number, the time range and the schema version, and leave the pending table.
 * A power cut therefore never loses or duplicates a cut batch.
 *
 * A disk quota bounds the outbox: when the undelivered batches plus pending records exceed it,
 * the oldest batches are thinned, then dropped, and each thinning/drop writes a REC_GAP record
 * (docs/telemetry.md "Quota"). Nothing vanishes silently.
 *
 * A struct outbox is one sqlite connection, used by one thread at a time; the recorder/cutter
 * thread and the uploader thread each open their own on the same file. */
#ifndef CORRIDOR_TELEMETRY_OUTBOX_H
#define CORRIDOR_TELEMETRY_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "telemetry/record.h"

/* ---- batch format --------------------------------------------------------------------------
 * raw := "CTB1" u16 schema, u8 vid_len, vid, u64 seq, i64 t_first_ms, i64 t_last_ms,
 *        u32 n_records, then n_records x (u8 kind, u16 len, payload[len]); little endian.
 * body := zstd frame of raw with content size and checksum. */
#define BATCH_SCHEMA_VERSION  2 /* written; 2 appended storage health and SIM data used */
#define BATCH_SCHEMA_MIN      1 /* oldest still read (batches cut before an upgrade) */
#define BATCH_VEHICLE_MAX     64
#define BATCH_RAW_MAX_DEFAULT (16u << 20) /* decoder bound: a bigger raw batch is a bomb */

struct batch_header {
    uint16_t schema;
    char vehicle[BATCH_VEHICLE_MAX + 1];
    uint64_t seq;
    int64_t t_first_ms, t_last_ms;
    uint32_t n_records;
};

enum batch_status {
    BATCH_OK = 0,
    BATCH_EMALFORMED = -1, /* not zstd, truncated, checksum, bad structure, bad record */
    BATCH_ETOOBIG = -2,    /* decompresses beyond max_raw (decompression bomb) */
    BATCH_ENOMEM = -3,
};

/* Vehicle ids are 1..64 of [A-Za-z0-9._-]: they appear in headers, file names and logs. */
bool batch_vehicle_valid(const char *vid);

/* Encode n records under header h (h->n_records is ignored and set from n) into a malloc'd
 * zstd body (*out, caller frees). Returns BATCH_OK or an error with err set. */
int batch_encode(const struct batch_header *h, const struct rec_any *recs, size_t n, uint8_t **out,
                 size_t *out_len, char *err, size_t errlen);

/* Called for every record of a batch in order; returning non-zero stops decoding (the decode
 * then returns that value). */
typedef int (*batch_record_fn)(void *ctx, const struct rec_any *r, uint32_t index);

/* Decompress (never more than max_raw bytes, streaming) and decode a body; fn may be NULL to
 * only verify. Every record is decoded strictly. */
int batch_decode(const uint8_t *body, size_t len, size_t max_raw, struct batch_header *h,
                 batch_record_fn fn, void *ctx, char *err, size_t errlen);

/* ---- outbox -------------------------------------------------------------------------------- */
struct outbox_config {
    char vehicle_id[BATCH_VEHICLE_MAX + 1];
    uint64_t quota_bytes;       /* default 512 MiB */
    unsigned flush_ms;          /* outbox_tick: flush the recorder this often (default 2000) */
    unsigned batch_ms;          /* outbox_tick: cut this often (default 600000) */
    unsigned max_batch_records; /* a cut takes at most this many records (default 200000) */
    unsigned thin_window_s;     /* quota thinning keeps 1 sample per window (default 10) */
    unsigned keep_delivered;    /* metadata rows of delivered batches kept (default 1000) */
};

struct outbox;

struct outbox *outbox_open(const char *path, const struct outbox_config *cfg, char *err,
                           size_t errlen);
void outbox_close(struct outbox *ob);

/* Insert encoded records into pending in one transaction. 0 or -1. */
int outbox_append(struct outbox *ob, const struct rec_any *recs, size_t n, char *err,
                  size_t errlen);

/* Cut the pending records into one batch (one transaction, then quota enforcement in the same
 * transaction). 1 = cut (*seq_out set), 0 = nothing pending, -1 = error (nothing changed). */
int outbox_cut(struct outbox *ob, int64_t now_ms, uint64_t *seq_out, char *err, size_t errlen);

/* The periodic driver for the recorder/cutter thread: flushes rec every flush_ms and cuts every
 * batch_ms of the clock given in now_ms (wall ms; any clock that only moves forward; if it
 * jumps backwards the cadence restarts). The time of the last cut survives restarts. Returns
 * 1 if a batch was cut (*seq_out set), 0 if not, -1 on error. */
int outbox_tick(struct outbox *ob, struct recorder *rec, int64_t now_ms, uint64_t *seq_out,
                char *err, size_t errlen);

struct outbox_batch {
    uint64_t seq;
    int64_t t_first_ms, t_last_ms;
    uint32_t n_records;
    bool thinned;
    uint8_t *body; /* malloc'd, release with outbox_batch_release */
    size_t body_len;
};
/* The oldest undelivered batch. 1 = found, 0 = none, -1 = error. */
int outbox_oldest_undelivered(struct outbox *ob, struct outbox_batch *b, char *err, size_t errlen);
void outbox_batch_release(struct outbox_batch *b);
/* Mark delivered (after the collector's 2xx): the body is freed, the metadata row kept. A seq
 * that is unknown or already delivered is not an error. */
int outbox_mark_delivered(struct outbox *ob, uint64_t seq, int64_t now_ms, char *err,
                          size_t errlen);

/* The collector refused the batch itself (e.g. HTTP 400/413) again and again: take it out of the
 * queue so it cannot block every later batch, and record a REC_GAP naming seq and reason in the
 * next batch. The metadata row is kept with rejected=1. */
int outbox_mark_rejected(struct outbox *ob, uint64_t seq, int64_t now_ms, const char *reason,
                         char *err, size_t errlen);

struct outbox_stats {
    uint64_t pending_records, pending_bytes;
    uint64_t undelivered, undelivered_bytes;
    uint64_t delivered; /* metadata rows of delivered batches kept */
    uint64_t next_seq;
    uint64_t thinned, dropped; /* batches thinned / dropped by the quota, ever */
    uint64_t rejected;         /* batches rejected by the collector, ever */
    int64_t last_cut_ms;       /* -1 if never */
};
int outbox_get_stats(struct outbox *ob, struct outbox_stats *st, char *err, size_t errlen);

/* ---- read-only batch listing (dashboard, appended) ------------------------------------------
 * Opens its OWN read-only connection to the outbox file per call (WAL: never blocks the
 * recorder or the uploader, never modifies the file). */
enum outbox_batch_state {
    OUTBOX_BATCH_PENDING = 0, /* cut, waiting for the collector */
    OUTBOX_BATCH_THINNED,     /* pending, and thinned by the quota */
    OUTBOX_BATCH_UPLOADED,    /* acknowledged by the collector (body freed, metadata kept) */
    OUTBOX_BATCH_REJECTED,    /* refused by the collector again and again, taken out */
};
const char *outbox_batch_state_name(enum outbox_batch_state s);
struct outbox_batch_info {
    uint64_t seq;
    int64_t t_first_ms, t_last_ms;
    int64_t created_ms;
    int64_t delivered_ms; /* -1 while pending */
    uint32_t n_records;
    uint64_t raw_bytes;  /* uncompressed */
    uint64_t body_bytes; /* compressed body still stored (0 once delivered) */
    enum outbox_batch_state state;
};
#define OUTBOX_NO_FILE 1
/* Newest first, at most max batches into out (*n_out set), plus the outbox totals into st.
 * 0 = done, OUTBOX_NO_FILE = no outbox file (yet), -1 = error (err names the file). */
int outbox_list_batches(const char *path, struct outbox_batch_info *out, unsigned max,
                        unsigned *n_out, struct outbox_stats *st, char *err, size_t errlen);

#endif
