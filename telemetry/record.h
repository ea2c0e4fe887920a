/* record: the plain records the vehicle keeps for the data center, their binary encoding, and
 * the recorder that buffers them in memory and persists them into the outbox.
 *
 * Records are plain structs with no knowledge of modem/, agg/ or firmware/: firmware/ copies its
 * live values into them. Every record carries t_ms, the wall-clock (unix ms) time it describes.
 * The binary encoding of each kind is documented in docs/telemetry.md ("Record encoding").
 *
 * Threads: recorder_add() may be called from any thread; it copies the record into a bounded
 * in-memory buffer and never touches the disk. One thread (the outbox tick) calls
 * recorder_flush() every couple of seconds, which moves the buffered records into the outbox's
 * pending table in ONE sqlite transaction, so a power cut loses at most the records added since
 * the last flush. */
#ifndef CORRIDOR_TELEMETRY_RECORD_H
#define CORRIDOR_TELEMETRY_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REC_NAME_MAX    32  /* link, operator, network type, event type: at most 31 chars */
#define REC_TEXT_MAX    200 /* free text of an event / gap reason */
#define REC_ENCODED_MAX 512 /* upper bound of one encoded record payload */

enum rec_kind {
    REC_TRACK = 1,  /* 1 Hz position */
    REC_LINK = 2,   /* per link every second */
    REC_HEALTH = 3, /* device health every 10 s */
    REC_SIM = 4,    /* SIM balance / usage / forecast */
    REC_EVENT = 5,  /* link up/down, pre-emptive disable, modem recovery, hub change ... */
    REC_GAP = 6,    /* records that were thinned or dropped: the gap itself is data */
};
#define REC_KIND_MAX 6

struct rec_track {
    int64_t t_ms;
    double lat, lon;  /* WGS84 degrees, NAN if no fix */
    float alt_m;      /* NAN if unknown */
    float speed_kmh;  /* NAN if unknown */
    float track_deg;  /* NAN if unknown */
    uint8_t fix_mode; /* 0 none, 2 = 2D, 3 = 3D */
    uint8_t source;   /* 0 none, 1 gpsd, 2 modem, 3 dead reckoning */
};

struct rec_link {
    int64_t t_ms;
    char link[REC_NAME_MAX]; /* link / modem name */
    char operator_name[REC_NAME_MAX];
    char net_type[REC_NAME_MAX];                /* "LTE", "NR5G", "WCDMA", ... */
    uint64_t cell_id;                           /* 0 unknown */
    float rssi_dbm, rsrp_dbm, rsrq_db, sinr_db; /* NAN if unknown */
    float rtt_ms, loss_pct, goodput_kbps;       /* tunnel measurements, NAN if unknown */
    float weight;                               /* scheduler weight 0..1 */
    uint8_t state;                              /* link state enum of agg/, copied as a number */
};

struct rec_health {
    int64_t t_ms;
    float load1;      /* /proc/loadavg */
    float cpu_temp_c; /* hottest thermal zone, NAN if none */
    uint64_t mem_total_kb, mem_avail_kb;
    uint64_t disk_total_kb, disk_free_kb;          /* data_dir filesystem */
    int8_t ssd_health_pct;                         /* remaining life, -1 unknown */
    uint64_t if_rx_errors, if_tx_errors, if_drops; /* summed over modem interfaces */
    uint64_t rss_kb;                               /* own process */
    uint32_t threads_alive, threads_total;
    /* storage health (schema 2, telemetry/smart.h; absent in schema-1 records = unknown) */
    char storage_dev[REC_NAME_MAX]; /* disk the health is about, "" unknown */
    uint8_t storage_status;         /* 0 unknown, 1 ok, 2 warn, 3 failing */
    int8_t storage_smart_passed;    /* 1 passed, 0 failed, -1 not reported */
    int16_t storage_life_used_pct;  /* -1 unknown; NVMe may exceed 100 */
    float storage_temp_c;           /* NAN unknown */
    int64_t storage_power_on_hours; /* -1 unknown */
    int64_t storage_media_errors;   /* -1 unknown */
};

struct rec_sim {
    int64_t t_ms;
    char link[REC_NAME_MAX];
    char iccid[REC_NAME_MAX];
    double balance; /* NAN if the last USSD query failed */
    char currency[8];
    uint64_t data_used_bytes;   /* up + down since this box first saw the SIM (persisted) */
    int64_t forecast_empty_utc; /* unix seconds the balance runs out, -1 unknown */
    uint8_t alert;              /* 1 = balance under the configured threshold */
    /* data used (schema 2; 0 in schema-1 records) */
    uint64_t data_up_bytes, data_down_bytes; /* totals, as data_used_bytes */
    uint64_t data_today_bytes;               /* the UTC day of t_ms, up + down */
    uint64_t data_month_bytes;               /* the UTC calendar month of t_ms, up + down */
};

struct rec_event {
    int64_t t_ms;
    char type[REC_NAME_MAX];    /* "link_up", "link_down", "preempt_disable", "modem_reset" ... */
    char subject[REC_NAME_MAX]; /* link / modem / hub the event is about, "" if none */
    char text[REC_TEXT_MAX];    /* reason, human readable */
};

struct rec_gap {
    int64_t t_ms;              /* when the gap was recorded */
    int64_t from_ms, to_ms;    /* time range the lost records covered */
    uint64_t seq_from, seq_to; /* batches affected (0 if not batch related) */
    uint32_t records_lost;
    char reason[REC_TEXT_MAX]; /* "quota_thinned", "quota_dropped", "recorder_overflow" ... */
};

struct rec_any {
    enum rec_kind kind;
    union {
        struct rec_track track;
        struct rec_link link;
        struct rec_health health;
        struct rec_sim sim;
        struct rec_event event;
        struct rec_gap gap;
    } u;
};

/* t_ms of any record. */
int64_t rec_time(const struct rec_any *r);
const char *rec_kind_name(enum rec_kind k);

/* Encode the payload of r (not including its kind) into buf. Returns the length (<=
 * REC_ENCODED_MAX) or 0 if r->kind is unknown or cap is too small. Strings are truncated to
 * their field size. */
size_t rec_encode(const struct rec_any *r, uint8_t *buf, size_t cap);
/* Decode a payload of the given kind. Strict: a short or overlong payload, a string longer than
 * its field or an unknown kind is an error (-1, err names the kind and the field). */
int rec_decode(unsigned kind, const uint8_t *p, size_t n, struct rec_any *out, char *err,
               size_t errlen);
/* One-line JSON object of the record's fields (for the collector's records table). Returns
 * false if buf was too small. NAN floats become null. */
bool rec_to_json(const struct rec_any *r, char *buf, size_t n);

/* ---- recorder ------------------------------------------------------------------------------ */
struct outbox;
struct recorder;

/* capacity: records held in memory between flushes (e.g. 4096: 2 s of 16 modems is ~40). */
struct recorder *recorder_new(unsigned capacity);
void recorder_free(struct recorder *r);
/* Thread-safe, never blocks on I/O. -1 if the buffer is full: the record is dropped, counted,
 * and the next flush writes a REC_GAP "recorder_overflow" record with the count and time range. */
int recorder_add(struct recorder *r, const struct rec_any *rec);
int recorder_add_track(struct recorder *r, const struct rec_track *t);
int recorder_add_link(struct recorder *r, const struct rec_link *l);
int recorder_add_health(struct recorder *r, const struct rec_health *h);
int recorder_add_sim(struct recorder *r, const struct rec_sim *s);
int recorder_add_event(struct recorder *r, const struct rec_event *e);
/* Persist everything buffered into ob's pending table in one transaction (durable on return).
 * Returns the number of records written, or -1 (err says why; the records stay buffered and
 * are retried on the next flush). Call from one thread only. */
int recorder_flush(struct recorder *r, struct outbox *ob, char *err, size_t errlen);
/* Records currently buffered, and dropped since creation. */
unsigned recorder_buffered(struct recorder *r);
uint64_t recorder_dropped(struct recorder *r);

#endif
