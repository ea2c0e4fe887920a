/* upload: uploader thread (see upload.h, docs/telemetry.md "Upload protocol"). */
#include "telemetry/upload.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"

#define REJECT_AFTER 5 /* the same batch refused as malformed this often in a row: set aside */

enum upload_job { JOB_KICK = 1 };

struct uploader {
    struct uploader_config cfg;
    struct outbox *ob;
    struct bqueue *q;
    pthread_t thread;
    bool stop;
    pthread_mutex_t mu; /* guards st and iface */
    char iface[32];
    unsigned path_gen;    /* bumped (atomic) by uploader_set_interface on a change */
    unsigned attempt_gen; /* path_gen the running attempt started with (thread-owned) */
    unsigned conn_gen;    /* path_gen of the connection curl keeps alive (thread-owned) */
    struct uploader_stats st;
    CURL *curl;
    uint32_t rng;
    /* bad-batch tracking for REJECT_AFTER */
    uint64_t bad_seq;
    unsigned bad_count;
};

uint64_t upload_backoff_ms(unsigned attempt, unsigned base_ms, unsigned max_ms, uint32_t rnd)
{
    if (attempt == 0)
        return 0;
    uint64_t e = base_ms ? base_ms : 1;
    for (unsigned i = 1; i < attempt && e < max_ms; i++)
        e *= 2;
    if (e > max_ms)
        e = max_ms;
    uint64_t half = e / 2;
    return (e - half) + (rnd % (half + 1));
}

uint64_t upload_rate_wait_ms(uint64_t bytes, uint64_t rate_bytes_per_s, uint64_t elapsed_ms)
{
    if (rate_bytes_per_s == 0)
        return 0;
    uint64_t need = bytes * 1000 / rate_bytes_per_s;
    return need > elapsed_ms ? need - elapsed_ms : 0;
}

static uint32_t xrand(struct uploader *u)
{
    uint32_t x = u->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    u->rng = x ? x : 0x9e3779b9u;
    return u->rng;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Token file: the first line, whitespace trimmed, at most 255 bytes. */
static int read_token(const char *path, char *tok, size_t n, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "token file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[512];
    bool got = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    if (!got || !*str_trim(line)) {
        snprintf(err, errlen, "token file %s: empty", path);
        return -1;
    }
    char *t = str_trim(line);
    if (strlen(t) >= n) {
        snprintf(err, errlen, "token file %s: token longer than %zu bytes", path, n - 1);
        return -1;
    }
    for (const char *c = t; *c; c++) {
        if (*c < 0x21 || *c > 0x7e) { /* would break the header line */
            snprintf(err, errlen, "token file %s: token has non-printable characters", path);
            return -1;
        }
    }
    str_copy(tok, t, n);
    return 0;
}

struct resp {
    char body[256];
    size_t len;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *vp)
{
    struct resp *r = vp;
    size_t n = size * nmemb;
    size_t room = sizeof r->body - 1 - r->len;
    size_t take = n < room ? n : room; /* keep the start only: bounded whatever comes back */
    memcpy(r->body + r->len, data, take);
    r->len += take;
    r->body[r->len] = '\0';
    return n;
}

static int on_progress(void *vp, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
    struct uploader *u = vp;
    /* stopping, or the path changed under a running attempt (the tunnel died or came back):
     * an attempt on the old path is most likely hanging in a dead route, so start over */
    return __atomic_load_n(&u->stop, __ATOMIC_ACQUIRE) ||
                   __atomic_load_n(&u->path_gen, __ATOMIC_ACQUIRE) != u->attempt_gen
               ? 1
               : 0;
}

/* Sleep ms unless stopping or the path changes. true if the path changed. */
static bool wait_unless_path_change(struct uploader *u, uint64_t ms)
{
    uint64_t end = mono_ms() + ms;
    while (mono_ms() < end) {
        if (__atomic_load_n(&u->path_gen, __ATOMIC_ACQUIRE) != u->attempt_gen)
            return true;
        if (sleep_ms_unless(&u->stop, 50))
            return false;
    }
    return false;
}

static void set_error(struct uploader *u, long http, const char *msg)
{
    pthread_mutex_lock(&u->mu);
    u->st.failures++;
    u->st.consecutive_failures++;
    u->st.last_http = http;
    str_copy(u->st.last_error, msg, sizeof u->st.last_error);
    pthread_mutex_unlock(&u->mu);
}

/* 1 delivered (or set aside), 0 nothing to do, -1 failed (back off). */
static int upload_one(struct uploader *u)
{
    char err[300];
    struct outbox_batch b;
    int rc = outbox_oldest_undelivered(u->ob, &b, err, sizeof err);
    if (rc < 0) {
        LOG_E("upload", "%s", err);
        set_error(u, 0, err);
        return -1;
    }
    if (rc == 0)
        return 0;
    char tok[256];
    if (read_token(u->cfg.token_file, tok, sizeof tok, err, sizeof err) != 0) {
        LOG_E("upload", "batch %llu: %s", (unsigned long long)b.seq, err);
        set_error(u, 0, err);
        outbox_batch_release(&b);
        return -1;
    }
    char h_auth[300], h_vid[128], h_seq[64], h_idem[128], h_schema[64];
    snprintf(h_auth, sizeof h_auth, "Authorization: Bearer %s", tok);
    snprintf(h_vid, sizeof h_vid, "X-Corridor-Vehicle: %s", u->cfg.outbox.vehicle_id);
    snprintf(h_seq, sizeof h_seq, "X-Corridor-Seq: %llu", (unsigned long long)b.seq);
    snprintf(h_idem, sizeof h_idem, "Idempotency-Key: %s/%llu", u->cfg.outbox.vehicle_id,
             (unsigned long long)b.seq);
    snprintf(h_schema, sizeof h_schema, "X-Corridor-Schema: %u", BATCH_SCHEMA_VERSION);
    struct curl_slist *hl = NULL;
    const char *hs[] = {h_auth,   h_vid,    h_seq,
                        h_idem,   h_schema, "Content-Type: application/vnd.corridor.batch+zstd",
                        "Expect:"}; /* no 100-continue round trip for small bodies */
    for (size_t i = 0; i < ARRAY_LEN(hs); i++) {
        struct curl_slist *n = curl_slist_append(hl, hs[i]);
        if (!n) {
            curl_slist_free_all(hl);
            outbox_batch_release(&b);
            set_error(u, 0, "out of memory (headers)");
            return -1;
        }
        hl = n;
    }
    memset(tok, 0, sizeof tok);
    memset(h_auth, 0, sizeof h_auth);

    CURL *c = u->curl;
    char iface[sizeof u->iface];
    pthread_mutex_lock(&u->mu);
    str_copy(iface, u->iface, sizeof iface);
    u->attempt_gen = __atomic_load_n(&u->path_gen, __ATOMIC_ACQUIRE);
    pthread_mutex_unlock(&u->mu);
    curl_easy_setopt(c, CURLOPT_INTERFACE, iface[0] ? iface : NULL);
    /* curl would happily reuse the kept-alive connection of the old path (it does not compare
     * the interface): after a path change the first request opens a new one */
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, u->conn_gen != u->attempt_gen ? 1L : 0L);
    u->conn_gen = u->attempt_gen;
    struct resp resp = {.len = 0};
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, u->cfg.url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)b.body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b.body_len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    uint64_t t0 = mono_ms();
    CURLcode cr = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hl);
    uint64_t elapsed = mono_ms() - t0;
    size_t sent = b.body_len;
    uint64_t seq = b.seq;
    outbox_batch_release(&b);

    pthread_mutex_lock(&u->mu);
    u->st.attempts++;
    pthread_mutex_unlock(&u->mu);

    if (cr != CURLE_OK) {
        snprintf(err, sizeof err, "batch %llu to %s: %s", (unsigned long long)seq, u->cfg.url,
                 cerr[0] ? cerr : curl_easy_strerror(cr));
        LOG_W("upload", "%s", err);
        set_error(u, 0, err);
        return -1;
    }
    if (code >= 200 && code < 300) {
        /* only now is the batch the collector's: a crash before this line replays it, and the
         * collector acknowledges the replay without storing it twice */
        if (outbox_mark_delivered(u->ob, seq, (int64_t)wall_ms(), err, sizeof err) != 0) {
            LOG_E("upload", "batch %llu delivered but not marked: %s", (unsigned long long)seq,
                  err);
            set_error(u, code, err);
            return -1;
        }
        pthread_mutex_lock(&u->mu);
        u->st.delivered++;
        u->st.bytes_sent += sent;
        u->st.last_http = code;
        u->st.last_seq = seq;
        u->st.consecutive_failures = 0;
        pthread_mutex_unlock(&u->mu);
        LOG_D("upload", "batch %llu delivered (%zu bytes, HTTP %ld, %llu ms)",
              (unsigned long long)seq, sent, code, (unsigned long long)elapsed);
        u->bad_seq = 0;
        u->bad_count = 0;
        uint64_t wait = upload_rate_wait_ms(sent, u->cfg.rate_bytes_per_s, elapsed);
        if (wait)
            sleep_ms_unless(&u->stop, (unsigned)wait);
        return 1;
    }
    snprintf(err, sizeof err, "batch %llu to %s: HTTP %ld: %s", (unsigned long long)seq, u->cfg.url,
             code, resp.body);
    LOG_W("upload", "%s", err);
    set_error(u, code, err);
    /* 400/413/415/422: the collector says this batch itself is unacceptable. Retrying it forever
     * would block every later batch, so after REJECT_AFTER tries it is set aside with a gap
     * record. Auth (401/403), overload (429, 5xx) and timeouts are retried indefinitely. */
    if (code == 400 || code == 413 || code == 415 || code == 422) {
        if (u->bad_seq != seq) {
            u->bad_seq = seq;
            u->bad_count = 0;
        }
        if (++u->bad_count >= REJECT_AFTER) {
            char reason[160];
            snprintf(reason, sizeof reason, "HTTP %ld %d times: %.100s", code, u->bad_count,
                     resp.body);
            if (outbox_mark_rejected(u->ob, seq, (int64_t)wall_ms(), reason, err, sizeof err) != 0)
                LOG_E("upload", "%s", err);
            u->bad_seq = 0;
            u->bad_count = 0;
            return 1;
        }
    }
    return -1;
}

static void *upload_thread(void *arg)
{
    struct uploader *u = arg;
    unsigned attempt = 0;
    while (!__atomic_load_n(&u->stop, __ATOMIC_ACQUIRE)) {
        int rc = upload_one(u);
        if (__atomic_load_n(&u->stop, __ATOMIC_ACQUIRE))
            break;
        if (rc > 0) {
            attempt = 0;
            continue;
        }
        if (rc == 0) {
            attempt = 0;
            int job;
            if (bq_pop(u->q, &job, (int)u->cfg.idle_poll_ms) < 0)
                break; /* closed: stopping */
            continue;
        }
        attempt++;
        uint64_t wait =
            upload_backoff_ms(attempt, u->cfg.backoff_base_ms, u->cfg.backoff_max_ms, xrand(u));
        /* a new path is new information: the backoff was about the old one */
        if (wait_unless_path_change(u, wait)) {
            LOG_I("upload", "path changed: retrying now");
            attempt = 0;
        }
        /* kicks that came during the backoff are satisfied by the next attempt */
        int job;
        while (bq_pop(u->q, &job, 0) > 0)
            ;
    }
    return NULL;
}

struct uploader *uploader_start(const struct uploader_config *cfg, char *err, size_t errlen)
{
    if (!cfg->url[0] || !cfg->token_file[0] || !cfg->db_path[0]) {
        snprintf(err, errlen, "uploader: url, token_file and db_path are required");
        return NULL;
    }
    pthread_once(&curl_once, curl_init_once);
    struct uploader *u = calloc(1, sizeof *u);
    if (!u) {
        snprintf(err, errlen, "uploader: out of memory");
        return NULL;
    }
    u->cfg = *cfg;
    if (!u->cfg.backoff_base_ms)
        u->cfg.backoff_base_ms = 1000;
    if (!u->cfg.backoff_max_ms)
        u->cfg.backoff_max_ms = 300000;
    if (u->cfg.backoff_max_ms < u->cfg.backoff_base_ms)
        u->cfg.backoff_max_ms = u->cfg.backoff_base_ms;
    if (!u->cfg.connect_timeout_ms)
        u->cfg.connect_timeout_ms = 10000;
    if (!u->cfg.timeout_ms)
        u->cfg.timeout_ms = 120000;
    if (!u->cfg.rate_bytes_per_s)
        u->cfg.rate_bytes_per_s = 64 * 1024;
    if (!u->cfg.idle_poll_ms)
        u->cfg.idle_poll_ms = 30000;
    u->rng = (uint32_t)(mono_ns() ^ ((uint64_t)getpid() << 16)) | 1u;
    pthread_mutex_init(&u->mu, NULL);
    u->ob = outbox_open(cfg->db_path, &cfg->outbox, err, errlen);
    u->q = bq_new(sizeof(int), 8);
    u->curl = curl_easy_init();
    if (!u->ob || !u->q || !u->curl) {
        if (u->ob && (!u->q || !u->curl))
            snprintf(err, errlen, "uploader: out of memory (queue or curl handle)");
        goto fail;
    }
    CURL *c = u->curl;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)u->cfg.connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)u->cfg.timeout_ms);
    curl_easy_setopt(c, CURLOPT_MAX_SEND_SPEED_LARGE, (curl_off_t)u->cfg.rate_bytes_per_s);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, u);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "corridor/" CORRIDOR_VERSION);
    if (u->cfg.ca_file[0])
        curl_easy_setopt(c, CURLOPT_CAINFO, u->cfg.ca_file);
    str_copy(u->iface, u->cfg.interface, sizeof u->iface);
    if (pthread_create(&u->thread, NULL, upload_thread, u) != 0) {
        snprintf(err, errlen, "uploader: cannot create thread");
        goto fail;
    }
    return u;
fail:
    if (u->curl)
        curl_easy_cleanup(u->curl);
    bq_free(u->q);
    outbox_close(u->ob);
    pthread_mutex_destroy(&u->mu);
    free(u);
    return NULL;
}

void uploader_kick(struct uploader *u)
{
    int job = JOB_KICK;
    bq_push(u->q, &job); /* full: a kick is already pending, which is all a kick means */
}

void uploader_stop(struct uploader *u)
{
    if (!u)
        return;
    __atomic_store_n(&u->stop, true, __ATOMIC_RELEASE);
    bq_close(u->q);
    pthread_join(u->thread, NULL);
    curl_easy_cleanup(u->curl);
    bq_free(u->q);
    outbox_close(u->ob);
    pthread_mutex_destroy(&u->mu);
    free(u);
}

void uploader_set_interface(struct uploader *u, const char *ifname)
{
    const char *want = ifname ? ifname : "";
    pthread_mutex_lock(&u->mu);
    if (strcmp(u->iface, want) != 0) {
        str_copy(u->iface, want, sizeof u->iface);
        __atomic_add_fetch(&u->path_gen, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&u->mu);
}

void uploader_get_stats(struct uploader *u, struct uploader_stats *st)
{
    pthread_mutex_lock(&u->mu);
    *st = u->st;
    pthread_mutex_unlock(&u->mu);
}
