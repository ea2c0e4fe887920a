/* collector: see collector.h and docs/telemetry.md ("Collector"). */
#include "telemetry/collector/collector.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "telemetry/outbox.h"
#include "telemetry/record.h"

#define MAX_VEHICLES 16384
#define CT_BATCH     "application/vnd.corridor.batch+zstd"

struct token_entry {
    char vehicle[BATCH_VEHICLE_MAX + 1];
    uint8_t hash[crypto_hash_sha256_BYTES];
};

struct collector {
    struct collector_config cfg;
    struct MHD_Daemon *mhd;
    sqlite3 *db;
    pthread_mutex_t mu; /* guards db, stats and inflight */
    struct token_entry *tokens;
    size_t ntokens;
    struct collector_stats st;
    size_t inflight;
    uint16_t port;
    char *tls_cert, *tls_key; /* PEM text, kept for MHD's lifetime */
};

/* Per-request state, from the first call of the access handler to the completion notice. */
struct req {
    char peer[64];
    char vehicle[BATCH_VEHICLE_MAX + 1];
    uint64_t seq;
    size_t declared; /* Content-Length */
    uint8_t *buf;
    size_t len;
    bool answered; /* a response was queued (early rejection or final) */
    bool is_post;
    bool reserved; /* declared bytes counted in collector.inflight */
};

/* ---- token file ---------------------------------------------------------------------------- */
static int hex_decode(const char *hex, uint8_t *out, size_t n)
{
    if (strlen(hex) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

static int load_tokens(struct collector *c, char *err, size_t errlen)
{
    FILE *f = fopen(c->cfg.tokens_file, "r");
    if (!f) {
        snprintf(err, errlen, "collector: tokens file %s: %s", c->cfg.tokens_file, strerror(errno));
        return -1;
    }
    char line[512];
    unsigned lineno = 0;
    size_t cap = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = str_trim(line);
        if (!*s || *s == '#')
            continue;
        char vid[128], hex[128];
        if (sscanf(s, "%127s %127s", vid, hex) != 2 || !batch_vehicle_valid(vid)) {
            snprintf(err, errlen, "collector: tokens file %s:%u: expected \"vehicle sha256hex\"",
                     c->cfg.tokens_file, lineno);
            fclose(f);
            return -1;
        }
        if (c->ntokens >= MAX_VEHICLES) {
            snprintf(err, errlen, "collector: tokens file %s: more than %d vehicles",
                     c->cfg.tokens_file, MAX_VEHICLES);
            fclose(f);
            return -1;
        }
        if (c->ntokens == cap) {
            cap = cap ? cap * 2 : 16;
            struct token_entry *nt = realloc(c->tokens, cap * sizeof *nt);
            if (!nt) {
                snprintf(err, errlen, "collector: out of memory loading tokens");
                fclose(f);
                return -1;
            }
            c->tokens = nt;
        }
        struct token_entry *e = &c->tokens[c->ntokens];
        str_copy(e->vehicle, vid, sizeof e->vehicle);
        if (hex_decode(hex, e->hash, sizeof e->hash) != 0) {
            snprintf(err, errlen, "collector: tokens file %s:%u: hash is not 64 hex digits",
                     c->cfg.tokens_file, lineno);
            fclose(f);
            return -1;
        }
        c->ntokens++;
    }
    fclose(f);
    return 0;
}

/* Constant-time compare of the token's hash; the vehicle lookup itself is not secret. */
static bool token_ok(struct collector *c, const char *vehicle, const char *token)
{
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
    for (size_t i = 0; i < c->ntokens; i++)
        if (strcmp(c->tokens[i].vehicle, vehicle) == 0)
            return sodium_memcmp(h, c->tokens[i].hash, sizeof h) == 0;
    return false;
}

/* ---- database ------------------------------------------------------------------------------ */
static const char COLLECTOR_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS batches(rx_id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " vehicle TEXT NOT NULL, seq INTEGER NOT NULL, schema INTEGER NOT NULL,"
    " t_first_ms INTEGER NOT NULL, t_last_ms INTEGER NOT NULL, n_records INTEGER NOT NULL,"
    " received_ms INTEGER NOT NULL, peer TEXT NOT NULL, body_sha256 TEXT NOT NULL,"
    " body BLOB NOT NULL, UNIQUE(vehicle, seq));"
    "CREATE TABLE IF NOT EXISTS records(vehicle TEXT NOT NULL, seq INTEGER NOT NULL,"
    " idx INTEGER NOT NULL, kind TEXT NOT NULL, t_ms INTEGER NOT NULL, data TEXT NOT NULL,"
    " PRIMARY KEY(vehicle, seq, idx)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS records_kind_time ON records(vehicle, kind, t_ms);";

static void sha256_hex(const uint8_t *p, size_t n, char out[65])
{
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, p, n);
    for (size_t i = 0; i < sizeof h; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

struct store_ctx {
    sqlite3_stmt *ins;
    const char *vehicle;
    uint64_t seq;
    bool failed;
    uint64_t records;
};

static int store_record(void *vctx, const struct rec_any *r, uint32_t index)
{
    struct store_ctx *s = vctx;
    s->records++;
    if (!s->ins)
        return 0;
    char json[1024];
    rec_to_json(r, json, sizeof json);
    sqlite3_bind_text(s->ins, 1, s->vehicle, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->ins, 2, (int64_t)s->seq);
    sqlite3_bind_int64(s->ins, 3, index);
    sqlite3_bind_text(s->ins, 4, rec_kind_name(r->kind), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->ins, 5, rec_time(r));
    sqlite3_bind_text(s->ins, 6, json, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s->ins);
    sqlite3_reset(s->ins);
    if (rc != SQLITE_DONE) {
        s->failed = true;
        return 1;
    }
    return 0;
}

enum store_result { STORE_NEW, STORE_DUP, STORE_BAD, STORE_BOMB, STORE_DBERR };

/* Verify and store in one transaction; the caller answers only after this returned. */
static enum store_result store_batch(struct collector *c, struct req *r, char *why, size_t wlen)
{
    enum store_result res = STORE_DBERR;
    struct batch_header h;
    sqlite3_stmt *st = NULL;
    struct store_ctx sc = {.vehicle = r->vehicle, .seq = r->seq};
    pthread_mutex_lock(&c->mu);
    if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(why, wlen, "db begin: %s", sqlite3_errmsg(c->db));
        goto out_unlocked_tx;
    }
    bool exists = false;
    if (sqlite3_prepare_v2(c->db, "SELECT 1 FROM batches WHERE vehicle=? AND seq=?", -1, &st,
                           NULL) != SQLITE_OK)
        goto dberr;
    sqlite3_bind_text(st, 1, r->vehicle, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)r->seq);
    int rc = sqlite3_step(st);
    exists = rc == SQLITE_ROW;
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        goto dberr;
    if (!exists && !c->cfg.no_records &&
        sqlite3_prepare_v2(c->db,
                           "INSERT INTO records(vehicle, seq, idx, kind, t_ms, data)"
                           " VALUES(?, ?, ?, ?, ?, ?)",
                           -1, &sc.ins, NULL) != SQLITE_OK)
        goto dberr;
    /* a replay is verified too: a garbage body is never acknowledged */
    char derr[256];
    int drc = batch_decode(r->buf, r->len, c->cfg.max_raw, &h, exists ? NULL : store_record, &sc,
                           derr, sizeof derr);
    sqlite3_finalize(sc.ins);
    sc.ins = NULL;
    if (sc.failed)
        goto dberr;
    if (drc != BATCH_OK) {
        snprintf(why, wlen, "%s", derr);
        res = drc == BATCH_ETOOBIG ? STORE_BOMB : STORE_BAD;
        goto rollback;
    }
    if (strcmp(h.vehicle, r->vehicle) != 0 || h.seq != r->seq) {
        snprintf(why, wlen, "batch header says vehicle %s seq %llu, request headers say %s %llu",
                 h.vehicle, (unsigned long long)h.seq, r->vehicle, (unsigned long long)r->seq);
        res = STORE_BAD;
        goto rollback;
    }
    if (exists) {
        res = STORE_DUP;
        goto rollback; /* nothing to write */
    }
    char hex[65];
    sha256_hex(r->buf, r->len, hex);
    if (sqlite3_prepare_v2(c->db,
                           "INSERT INTO batches(vehicle, seq, schema, t_first_ms, t_last_ms,"
                           " n_records, received_ms, peer, body_sha256, body)"
                           " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        goto dberr;
    sqlite3_bind_text(st, 1, r->vehicle, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)r->seq);
    sqlite3_bind_int(st, 3, h.schema);
    sqlite3_bind_int64(st, 4, h.t_first_ms);
    sqlite3_bind_int64(st, 5, h.t_last_ms);
    sqlite3_bind_int64(st, 6, h.n_records);
    sqlite3_bind_int64(st, 7, (int64_t)wall_ms());
    sqlite3_bind_text(st, 8, r->peer, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, hex, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 10, r->buf, (int)r->len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_DONE)
        goto dberr;
    /* synchronous=FULL: COMMIT returns after the WAL is on disk */
    if (sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto dberr;
    c->st.stored++;
    c->st.records += sc.records;
    pthread_mutex_unlock(&c->mu);
    return STORE_NEW;
dberr:
    snprintf(why, wlen, "database %s: %s", c->cfg.db_path, sqlite3_errmsg(c->db));
    res = STORE_DBERR;
rollback:
    sqlite3_finalize(sc.ins);
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
out_unlocked_tx:
    if (res == STORE_DUP)
        c->st.duplicates++;
    else
        c->st.rejected++;
    pthread_mutex_unlock(&c->mu);
    return res;
}

/* ---- HTTP ---------------------------------------------------------------------------------- */
static enum MHD_Result reply(struct MHD_Connection *conn, struct req *r, unsigned code,
                             const char *text)
{
    char body[256];
    snprintf(body, sizeof body, "%s\n", text);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/plain");
    enum MHD_Result ret = MHD_queue_response(conn, code, resp);
    MHD_destroy_response(resp);
    if (r)
        r->answered = true;
    return ret;
}

static enum MHD_Result reject(struct collector *c, struct MHD_Connection *conn, struct req *r,
                              unsigned code, const char *what)
{
    LOG_W("collector", "%s vehicle=%s seq=%llu: %u %s", r->peer, r->vehicle[0] ? r->vehicle : "?",
          (unsigned long long)r->seq, code, what);
    if (code < 500) {
        pthread_mutex_lock(&c->mu);
        c->st.rejected++;
        pthread_mutex_unlock(&c->mu);
    }
    return reply(conn, r, code, what);
}

static void peer_name(struct MHD_Connection *conn, char *out, size_t n)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    str_copy(out, "?", n);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        port = ntohs(in6->sin6_port);
    }
    snprintf(out, n, "%s:%u", ip, port);
}

static enum MHD_Result stats_reply(struct collector *c, struct MHD_Connection *conn, struct req *r)
{
    struct collector_stats s;
    collector_get_stats(c, &s);
    char body[200];
    snprintf(body, sizeof body,
             "{\"stored\":%llu,\"duplicates\":%llu,\"rejected\":%llu,\"records\":%llu}",
             (unsigned long long)s.stored, (unsigned long long)s.duplicates,
             (unsigned long long)s.rejected, (unsigned long long)s.records);
    return reply(conn, r, MHD_HTTP_OK, body);
}

/* First call: everything decidable from the headers, so a bad request is refused before its
 * body is read (MHD then closes the connection instead of reading the body). */
static enum MHD_Result first_call(struct collector *c, struct MHD_Connection *conn, struct req *r,
                                  const char *url, const char *method)
{
    if (strcmp(method, "GET") == 0 && strcmp(url, "/v1/stats") == 0)
        return stats_reply(c, conn, r);
    if (strcmp(url, "/v1/batches") != 0)
        return reject(c, conn, r, MHD_HTTP_NOT_FOUND, "no such resource");
    if (strcmp(method, "POST") != 0)
        return reject(c, conn, r, MHD_HTTP_METHOD_NOT_ALLOWED, "POST only");
    r->is_post = true;
    const char *vid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Corridor-Vehicle");
    if (vid && batch_vehicle_valid(vid))
        str_copy(r->vehicle, vid, sizeof r->vehicle);
    const char *seqs = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Corridor-Seq");
    long seq = 0;
    if (seqs && str_to_long(seqs, &seq) && seq > 0)
        r->seq = (uint64_t)seq;
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!r->vehicle[0])
        return reject(c, conn, r, MHD_HTTP_BAD_REQUEST, "missing or invalid X-Corridor-Vehicle");
    if (!auth || strncmp(auth, "Bearer ", 7) != 0 || !token_ok(c, r->vehicle, auth + 7))
        return reject(c, conn, r, MHD_HTTP_UNAUTHORIZED, "wrong or missing token");
    if (!r->seq)
        return reject(c, conn, r, MHD_HTTP_BAD_REQUEST, "missing or invalid X-Corridor-Seq");
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    if (!ct || strcmp(ct, CT_BATCH) != 0)
        return reject(c, conn, r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                      "Content-Type must be " CT_BATCH);
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    long len = 0;
    if (!cl || !str_to_long(cl, &len) || len < 0)
        return reject(c, conn, r, MHD_HTTP_LENGTH_REQUIRED, "Content-Length required");
    if ((size_t)len > c->cfg.max_body)
        return reject(c, conn, r, MHD_HTTP_CONTENT_TOO_LARGE, "body larger than the limit");
    if (len == 0)
        return reject(c, conn, r, MHD_HTTP_BAD_REQUEST, "empty body");
    pthread_mutex_lock(&c->mu);
    bool room = c->inflight + (size_t)len <= c->cfg.max_inflight;
    if (room)
        c->inflight += (size_t)len;
    pthread_mutex_unlock(&c->mu);
    if (!room)
        return reject(c, conn, r, MHD_HTTP_SERVICE_UNAVAILABLE, "busy, retry later");
    r->declared = (size_t)len;
    r->reserved = true;
    r->buf = malloc((size_t)len);
    if (!r->buf)
        return reject(c, conn, r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct collector *c = cls;
    struct req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        peer_name(conn, r->peer, sizeof r->peer);
        return first_call(c, conn, r, url, method);
    }
    if (r->answered) {
        *upload_data_size = 0; /* discard whatever still arrives */
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (n > r->declared - r->len) /* MHD enforces Content-Length; keep the bound anyway */
            return reject(c, conn, r, MHD_HTTP_CONTENT_TOO_LARGE, "body exceeds Content-Length");
        memcpy(r->buf + r->len, upload_data, n);
        r->len += n;
        return MHD_YES;
    }
    char why[300];
    enum store_result sr = store_batch(c, r, why, sizeof why);
    switch (sr) {
    case STORE_NEW:
        if (c->cfg.test_reply_delay_ms)
            usleep(c->cfg.test_reply_delay_ms * 1000u);
        LOG_D("collector", "%s vehicle=%s seq=%llu stored (%zu bytes)", r->peer, r->vehicle,
              (unsigned long long)r->seq, r->len);
        return reply(conn, r, MHD_HTTP_OK, "stored");
    case STORE_DUP:
        LOG_I("collector", "%s vehicle=%s seq=%llu: duplicate acknowledged", r->peer, r->vehicle,
              (unsigned long long)r->seq);
        return reply(conn, r, MHD_HTTP_OK, "duplicate");
    case STORE_BOMB:
        LOG_W("collector", "%s vehicle=%s seq=%llu: 413 %s", r->peer, r->vehicle,
              (unsigned long long)r->seq, why);
        return reply(conn, r, MHD_HTTP_CONTENT_TOO_LARGE, "decompressed batch over the limit");
    case STORE_BAD:
        LOG_W("collector", "%s vehicle=%s seq=%llu: 400 %s", r->peer, r->vehicle,
              (unsigned long long)r->seq, why);
        return reply(conn, r, MHD_HTTP_BAD_REQUEST, "malformed batch");
    case STORE_DBERR:
        break;
    }
    LOG_E("collector", "%s vehicle=%s seq=%llu: 503 %s", r->peer, r->vehicle,
          (unsigned long long)r->seq, why);
    return reply(conn, r, MHD_HTTP_SERVICE_UNAVAILABLE, "storage unavailable, retry");
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct collector *c = cls;
    struct req *r = *con_cls;
    if (!r)
        return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && r->is_post && !r->answered) {
        /* truncated body, client gone, timeout: nothing was stored */
        LOG_W("collector",
              "%s vehicle=%s seq=%llu: request aborted (%s) after %zu of %zu body"
              " bytes; nothing stored",
              r->peer, r->vehicle[0] ? r->vehicle : "?", (unsigned long long)r->seq,
              toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? "timeout"
              : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT  ? "client closed"
              : toe == MHD_REQUEST_TERMINATED_READ_ERROR    ? "read error / truncated"
                                                            : "error",
              r->len, r->declared);
        pthread_mutex_lock(&c->mu);
        c->st.rejected++;
        pthread_mutex_unlock(&c->mu);
    }
    if (r->reserved) {
        pthread_mutex_lock(&c->mu);
        c->inflight -= r->declared;
        pthread_mutex_unlock(&c->mu);
    }
    free(r->buf);
    free(r);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[300];
    vsnprintf(buf, sizeof buf, fmt, ap);
    str_trim(buf);
    LOG_W("collector", "mhd: %s", buf);
}

static char *read_file(const char *path, size_t max, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "collector: %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    fclose(f);
    if (!buf || n == 0 || n > max) {
        snprintf(err, errlen, "collector: %s: empty, unreadable or over %zu bytes", path, max);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

struct collector *collector_start(const struct collector_config *cfg, char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        snprintf(err, errlen, "collector: libsodium init failed");
        return NULL;
    }
    struct collector *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "collector: out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    if (!c->cfg.listen_addr[0])
        str_copy(c->cfg.listen_addr, "127.0.0.1", sizeof c->cfg.listen_addr);
    if (!c->cfg.max_body)
        c->cfg.max_body = 4u << 20;
    if (!c->cfg.max_raw)
        c->cfg.max_raw = BATCH_RAW_MAX_DEFAULT;
    if (!c->cfg.max_inflight)
        c->cfg.max_inflight = 64u << 20;
    if (!c->cfg.conn_timeout_s)
        c->cfg.conn_timeout_s = 15;
    if (!c->cfg.max_conns)
        c->cfg.max_conns = 256;
    pthread_mutex_init(&c->mu, NULL);
    if (load_tokens(c, err, errlen) != 0)
        goto fail;
    if (sqlite3_open_v2(c->cfg.db_path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "collector: database %s: %s", c->cfg.db_path,
                 c->db ? sqlite3_errmsg(c->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(c->db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(c->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL,
                     &msg) != SQLITE_OK ||
        sqlite3_exec(c->db, COLLECTOR_SCHEMA, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "collector: database %s: %s", c->cfg.db_path, msg ? msg : "?");
        sqlite3_free(msg);
        goto fail;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(c->cfg.port)};
    if (inet_pton(AF_INET, c->cfg.listen_addr, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "collector: listen address \"%s\" is not IPv4", c->cfg.listen_addr);
        goto fail;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    bool tls = c->cfg.tls_cert[0] || c->cfg.tls_key[0];
    if (tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, errlen, "collector: this libmicrohttpd has no TLS support");
            goto fail;
        }
        c->tls_cert = read_file(c->cfg.tls_cert, 1 << 20, err, errlen);
        c->tls_key = c->tls_cert ? read_file(c->cfg.tls_key, 1 << 20, err, errlen) : NULL;
        if (!c->tls_key)
            goto fail;
        flags |= MHD_USE_TLS;
    }
    /* the logger first, so MHD routes even its option errors through it; the TLS options come
     * last so that without TLS the list simply ends before them */
    c->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, c, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, c,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, c,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)c->cfg.conn_timeout_s, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)c->cfg.max_conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT, 32u,
        tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, c->tls_cert, MHD_OPTION_HTTPS_MEM_KEY,
        c->tls_key, MHD_OPTION_END);
    if (!c->mhd) {
        snprintf(err, errlen, "collector: cannot listen on %s:%u (%s)", c->cfg.listen_addr,
                 c->cfg.port, strerror(errno));
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(c->mhd, MHD_DAEMON_INFO_BIND_PORT);
    c->port = di ? di->port : c->cfg.port;
    LOG_I("collector", "listening on %s://%s:%u, database %s, %zu vehicles", tls ? "https" : "http",
          c->cfg.listen_addr, c->port, c->cfg.db_path, c->ntokens);
    return c;
fail:
    collector_stop(c);
    return NULL;
}

uint16_t collector_port(struct collector *c)
{
    return c->port;
}

void collector_get_stats(struct collector *c, struct collector_stats *st)
{
    pthread_mutex_lock(&c->mu);
    *st = c->st;
    pthread_mutex_unlock(&c->mu);
}

void collector_stop(struct collector *c)
{
    if (!c)
        return;
    if (c->mhd)
        MHD_stop_daemon(c->mhd);
    if (c->db)
        sqlite3_close(c->db);
    pthread_mutex_destroy(&c->mu);
    free(c->tokens);
    free(c->tls_cert);
    free(c->tls_key);
    free(c);
}
