/* corridor-collector against bad input: wrong/missing token, another vehicle's token, malformed
 * and truncated bodies, a decompression bomb, a huge body, wrong Content-Length (short and
 * long), no Content-Length, wrong content type, header/body mismatch, a replayed batch. Each gets
 * the right status, nothing bad is stored, a log line names the peer, and the server keeps
 * serving. Then once over TLS (self-signed certificate made with openssl) with the real uploader.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <zstd.h>

#include "common/common.h"
#include "telemetry/outbox.h"
#include "telemetry/record.h"
#include "telemetry/upload.h"
#include "testlib.h"
#include "tlm_util.h"

static char g_url[200];
static uint16_t g_port;

static void make_batch(const char *vid, uint64_t seq, unsigned nsec, uint8_t **z, size_t *zn)
{
    struct rec_any *r = calloc(nsec * 2, sizeof *r);
    for (unsigned i = 0; i < nsec; i++) {
        r[2 * i].kind = REC_TRACK;
        synth_track(1700000000000 + i * 1000, &r[2 * i].u.track);
        r[2 * i + 1].kind = REC_LINK;
        synth_link(1700000000000 + i * 1000, 0, &r[2 * i + 1].u.link);
    }
    struct batch_header h = {
        .seq = seq, .t_first_ms = 1700000000000, .t_last_ms = 1700000000000 + (nsec - 1) * 1000};
    str_copy(h.vehicle, vid, sizeof h.vehicle);
    char err[200];
    if (batch_encode(&h, r, nsec * 2, z, zn, err, sizeof err) != BATCH_OK) {
        fprintf(stderr, "make_batch: %s\n", err);
        exit(1);
    }
    free(r);
}

/* POST with the protocol headers; token/vehicle/seq/ctype NULL = header left out. */
static long post(const char *vid, const char *token, const char *seq, const char *ctype,
                 const void *body, size_t len, char *resp, size_t rlen)
{
    char h[4][200];
    const char *hdrs[6];
    int n = 0;
    if (token) {
        snprintf(h[0], sizeof h[0], "Authorization: Bearer %s", token);
        hdrs[n++] = h[0];
    }
    if (vid) {
        snprintf(h[1], sizeof h[1], "X-Corridor-Vehicle: %s", vid);
        hdrs[n++] = h[1];
    }
    if (seq) {
        snprintf(h[2], sizeof h[2], "X-Corridor-Seq: %s", seq);
        hdrs[n++] = h[2];
    }
    snprintf(h[3], sizeof h[3], "Content-Type: %s",
             ctype ? ctype : "application/vnd.corridor.batch+zstd");
    hdrs[n++] = h[3];
    hdrs[n] = NULL;
    return http_post(g_url, hdrs, body, len, NULL, resp, rlen);
}

/* Raw bytes to the collector; optionally half-close; read the answer until close or 3 s. */
static size_t raw_request(const void *data, size_t len, bool shut_wr, char *resp, size_t n)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(g_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    resp[0] = '\0';
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(s);
        return 0;
    }
    struct timeval tv = {.tv_sec = 3};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(s, (const char *)data + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    if (shut_wr)
        shutdown(s, SHUT_WR);
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(s, resp + got, n - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got >= n - 1)
            break;
    }
    resp[got] = '\0';
    close(s);
    return got;
}

static size_t hdr_block(char *buf, size_t n, const char *token, uint64_t seq, size_t clen)
{
    return (size_t)snprintf(buf, n,
                            "POST /v1/batches HTTP/1.1\r\nHost: localhost\r\n"
                            "Authorization: Bearer %s\r\nX-Corridor-Vehicle: bus-1\r\n"
                            "X-Corridor-Seq: %llu\r\n"
                            "Content-Type: application/vnd.corridor.batch+zstd\r\n"
                            "Content-Length: %zu\r\n\r\n",
                            token, (unsigned long long)seq, clen);
}

static int64_t db_int(const char *db, const char *sql)
{
    sqlite3 *c;
    int64_t v = -1;
    if (sqlite3_open_v2(db, &c, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *q;
        if (sqlite3_prepare_v2(c, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
            v = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    sqlite3_close(c);
    return v;
}

static void test_bad_input(const char *exe, const char *dir)
{
    char cdb[400], ctok[400], tok1[400], tok2[400], resp[512];
    snprintf(cdb, sizeof cdb, "%s/c1.db", dir);
    snprintf(ctok, sizeof ctok, "%s/c1.tokens", dir);
    snprintf(tok1, sizeof tok1, "%s/bus1.token", dir);
    snprintf(tok2, sizeof tok2, "%s/bus2.token", dir);
    CHECK_INT(write_tokens(tok1, ctok, "bus-1", "tok-bus-1"), 0);
    CHECK_INT(write_tokens(tok2, ctok, "bus-2", "tok-bus-2"), 0);
    struct collector_proc cp = {0};
    const char *extra[] = {"--max-body", "262144", "--log-level", "info", NULL};
    CHECK_INT(collector_spawn(&cp, exe, dir, cdb, ctok, 0, extra), 0);
    g_port = cp.port;
    snprintf(g_url, sizeof g_url, "http://127.0.0.1:%u/v1/batches", cp.port);

    uint8_t *z1, *z2;
    size_t z1n, z2n;
    make_batch("bus-1", 1, 600, &z1, &z1n);
    make_batch("bus-1", 2, 300, &z2, &z2n);

    CHECK_INT(post("bus-1", "tok-bus-1", "1", NULL, z1, z1n, resp, sizeof resp), 200);
    CHECK(strstr(resp, "stored") != NULL);
    /* replay: acknowledged, not stored twice */
    CHECK_INT(post("bus-1", "tok-bus-1", "1", NULL, z1, z1n, resp, sizeof resp), 200);
    CHECK(strstr(resp, "duplicate") != NULL);
    /* replay with a corrupt body is not acknowledged */
    z1[z1n / 2] ^= 0xff;
    CHECK_INT(post("bus-1", "tok-bus-1", "1", NULL, z1, z1n, resp, sizeof resp), 400);
    z1[z1n / 2] ^= 0xff;

    /* authentication */
    CHECK_INT(post("bus-1", "wrong", "2", NULL, z2, z2n, resp, sizeof resp), 401);
    CHECK_INT(post("bus-1", NULL, "2", NULL, z2, z2n, resp, sizeof resp), 401);
    CHECK_INT(post("bus-1", "tok-bus-2", "2", NULL, z2, z2n, resp, sizeof resp), 401);
    CHECK_INT(post("bus-9", "tok-bus-1", "2", NULL, z2, z2n, resp, sizeof resp), 401);
    CHECK_INT(post(NULL, "tok-bus-1", "2", NULL, z2, z2n, resp, sizeof resp), 400);
    CHECK_INT(post("bus-1", "tok-bus-1", NULL, NULL, z2, z2n, resp, sizeof resp), 400);
    CHECK_INT(post("bus-1", "tok-bus-1", "-3", NULL, z2, z2n, resp, sizeof resp), 400);
    CHECK_INT(post("bus-1", "tok-bus-1", "2", "application/json", z2, z2n, resp, sizeof resp), 415);
    /* header says seq 3, body is seq 2; header says bus-2, body bus-1 */
    CHECK_INT(post("bus-1", "tok-bus-1", "3", NULL, z2, z2n, resp, sizeof resp), 400);
    CHECK_INT(post("bus-2", "tok-bus-2", "2", NULL, z2, z2n, resp, sizeof resp), 400);

    /* malformed and truncated bodies */
    char junk[1000];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 7 + 3);
    CHECK_INT(post("bus-1", "tok-bus-1", "2", NULL, junk, sizeof junk, resp, sizeof resp), 400);
    CHECK_INT(post("bus-1", "tok-bus-1", "2", NULL, z2, z2n / 2, resp, sizeof resp), 400);
    CHECK_INT(post("bus-1", "tok-bus-1", "2", NULL, z2, z2n - 1, resp, sizeof resp), 400);
    CHECK_INT(post("bus-1", "tok-bus-1", "2", NULL, z2, 0, resp, sizeof resp), 400);

    /* decompression bomb: 256 MiB of zeros in a ~8 KB zstd frame (with checksum) */
    size_t big = 256u << 20;
    uint8_t *zeros = calloc(1, big);
    size_t bound = ZSTD_compressBound(big);
    uint8_t *zb = malloc(bound);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0); /* no size to refuse it early */
    size_t zbn = ZSTD_compress2(cc, zb, bound, zeros, big);
    ZSTD_freeCCtx(cc);
    free(zeros);
    printf("bomb: %zu bytes -> %zu bytes\n", zbn, big);
    CHECK_INT(post("bus-1", "tok-bus-1", "2", NULL, zb, zbn, resp, sizeof resp), 413);
    free(zb);

    /* huge body: refused from the headers, before it is read */
    char req[2048];
    size_t hl = hdr_block(req, sizeof req, "tok-bus-1", 2, 100u << 20);
    raw_request(req, hl, false, resp, sizeof resp);
    CHECK_MSG(strncmp(resp, "HTTP/1.1 413", 12) == 0, "huge body: %.40s", resp);

    /* Content-Length shorter than the body: the declared part is a truncated batch (400) */
    char *buf = malloc(4096 + z2n);
    hl = hdr_block(buf, 4096, "tok-bus-1", 2, z2n / 2);
    memcpy(buf + hl, z2, z2n);
    raw_request(buf, hl + z2n, false, resp, sizeof resp);
    CHECK_MSG(strncmp(resp, "HTTP/1.1 400", 12) == 0, "short content-length: %.40s", resp);
    /* Content-Length longer than the body, then the client stops sending: no answer can be
     * complete; the request is dropped, logged, nothing stored */
    unsigned aborted_before = file_count(cp.log, "request aborted");
    hl = hdr_block(buf, 4096, "tok-bus-1", 2, z2n + 500);
    memcpy(buf + hl, z2, z2n);
    raw_request(buf, hl + z2n, true, resp, sizeof resp);
    CHECK_MSG(strstr(resp, " 200 ") == NULL, "long content-length answered: %.40s", resp);
    /* no Content-Length at all (chunked) */
    hl = (size_t)snprintf(buf, 4096,
                          "POST /v1/batches HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-bus-1"
                          "\r\nX-Corridor-Vehicle: bus-1\r\nX-Corridor-Seq: 2\r\nContent-Type: "
                          "application/vnd.corridor.batch+zstd\r\nTransfer-Encoding: chunked\r\n"
                          "\r\n5\r\nhello\r\n0\r\n\r\n");
    raw_request(buf, hl, false, resp, sizeof resp);
    CHECK_MSG(strncmp(resp, "HTTP/1.1 411", 12) == 0, "chunked: %.40s", resp);
    /* garbage that is not HTTP */
    raw_request("\x16\x03\x01garbage\r\n\r\n", 14, true, resp, sizeof resp);
    CHECK_MSG(strstr(resp, " 200 ") == NULL, "garbage: %.40s", resp);
    free(buf);
    /* wrong resource / method */
    char u2[200];
    snprintf(u2, sizeof u2, "http://127.0.0.1:%u/v1/other", cp.port);
    CHECK_INT(http_get(u2, resp, sizeof resp), 404);
    CHECK_INT(http_get(g_url, resp, sizeof resp), 405);

    /* throughput: 10-minute batches of 1 track + 1 link per second, one client, records
     * expanded into the records table, each answered after its commit */
    enum { NBENCH = 40 };
    uint8_t *zt[NBENCH];
    size_t ztn[NBENCH];
    for (int i = 0; i < NBENCH; i++)
        make_batch("bus-2", (uint64_t)(100 + i), 600, &zt[i], &ztn[i]);
    uint64_t t0 = mono_ms();
    int ok = 0;
    for (int i = 0; i < NBENCH; i++) {
        char seqs[16];
        snprintf(seqs, sizeof seqs, "%d", 100 + i);
        ok += post("bus-2", "tok-bus-2", seqs, NULL, zt[i], ztn[i], resp, sizeof resp) == 200;
    }
    double secs = (double)(mono_ms() - t0) / 1000.0;
    printf("collector throughput: %d batches (1200 records each) in %.2f s = %.1f batches/s\n", ok,
           secs, ok / (secs > 0 ? secs : 1));
    CHECK_INT(ok, NBENCH);
    for (int i = 0; i < NBENCH; i++)
        free(zt[i]);

    /* still serving: seq 2 goes in */
    CHECK_INT(post("bus-1", "tok-bus-1", "2", NULL, z2, z2n, resp, sizeof resp), 200);
    CHECK(strstr(resp, "stored") != NULL);
    char surl[200];
    snprintf(surl, sizeof surl, "http://127.0.0.1:%u/v1/stats", cp.port);
    CHECK_INT(http_get(surl, resp, sizeof resp), 200);
    printf("collector stats: %s", resp);
    CHECK(strstr(resp, "\"stored\":42,\"duplicates\":1") != NULL);
    CHECK(strstr(resp, "\"records\":49800") != NULL);
    usleep(100000);
    collector_kill(&cp); /* also flushes the log */
    CHECK_INT(db_int(cdb, "SELECT COUNT(*) FROM batches"), 2 + NBENCH);
    CHECK_INT(db_int(cdb, "SELECT COUNT(*) FROM records WHERE vehicle='bus-1' AND seq=1"), 1200);
    CHECK_INT(db_int(cdb, "SELECT COUNT(*) FROM records WHERE vehicle='bus-1' AND seq=2"), 600);
    CHECK_INT(db_int(cdb, "SELECT COUNT(*) FROM batches WHERE vehicle='bus-2'"), NBENCH);
    CHECK_INT(db_int(cdb, "SELECT COUNT(*) FROM records WHERE kind='track' AND data LIKE"
                          " '%\"lat\":55.7%'"),
              900 + NBENCH * 600);
    /* every refusal was logged with the peer's address */
    unsigned n401 = file_count(cp.log, ": 401 wrong or missing token");
    unsigned n400 = file_count(cp.log, ": 400 ");
    unsigned n413 = file_count(cp.log, ": 413 ");
    unsigned peer = file_count(cp.log, "127.0.0.1:");
    unsigned aborted = file_count(cp.log, "request aborted") - aborted_before;
    printf("log: %u x 401, %u x 400, %u x 413, %u aborted, %u lines naming 127.0.0.1:port\n", n401,
           n400, n413, aborted, peer);
    CHECK_INT(n401, 4);
    CHECK(n400 >= 10);
    CHECK_INT(n413, 2);
    CHECK_INT(aborted, 1);
    CHECK(peer >= n401 + n400 + n413 + aborted);
    CHECK_INT(file_count(cp.log, "Sanitizer"), 0);
    CHECK_INT(file_count(cp.log, "runtime error"), 0);
    free(z1);
    free(z2);
}

static void test_tls(const char *exe, const char *dir)
{
    char cmd[1600], cert[400], key[400];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
             " -keyout %s -out %s -days 2 -subj /CN=localhost"
             " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1",
             key, cert);
    if (system(cmd) != 0) {
        printf("TLS: openssl not available, TLS test skipped\n");
        return;
    }
    char cdb[400], ctok[400], tokf[400], db[400], err[300];
    snprintf(cdb, sizeof cdb, "%s/tls.db", dir);
    snprintf(ctok, sizeof ctok, "%s/tls.tokens", dir);
    snprintf(tokf, sizeof tokf, "%s/tls.token", dir);
    snprintf(db, sizeof db, "%s/tls-outbox.db", dir);
    CHECK_INT(write_tokens(tokf, ctok, "tram-5", "tls-token-5"), 0);
    struct collector_proc cp = {0};
    const char *extra[] = {"--tls-cert", cert, "--tls-key", key, "--log-level", "warn", NULL};
    CHECK_INT(collector_spawn(&cp, exe, dir, cdb, ctok, 0, extra), 0);

    struct outbox_config ocfg = {0};
    str_copy(ocfg.vehicle_id, "tram-5", sizeof ocfg.vehicle_id);
    struct outbox *ob = outbox_open(db, &ocfg, err, sizeof err);
    CHECK(ob != NULL);
    struct recorder *rec = recorder_new(1024);
    uint64_t seq;
    for (int b = 0; b < 3; b++) {
        for (int s = 0; s < 60; s++)
            synth_second(rec, 1700000000000 + (b * 60 + s) * 1000, 4);
        CHECK(recorder_flush(rec, ob, err, sizeof err) > 0);
        CHECK_INT(outbox_cut(ob, 1700000000000 + b * 60000, &seq, err, sizeof err), 1);
    }
    struct uploader_config ucfg = {.outbox = ocfg,
                                   .backoff_base_ms = 50,
                                   .backoff_max_ms = 200,
                                   .idle_poll_ms = 100,
                                   .rate_bytes_per_s = 10u << 20};
    str_copy(ucfg.db_path, db, sizeof ucfg.db_path);
    snprintf(ucfg.url, sizeof ucfg.url, "https://localhost:%u/v1/batches", cp.port);
    str_copy(ucfg.token_file, tokf, sizeof ucfg.token_file);
    str_copy(ucfg.ca_file, cert, sizeof ucfg.ca_file);
    struct uploader *up = uploader_start(&ucfg, err, sizeof err);
    CHECK_MSG(up != NULL, "%s", err);
    struct outbox_stats st = {0};
    for (int i = 0; i < 200; i++) {
        outbox_get_stats(ob, &st, err, sizeof err);
        if (st.undelivered == 0)
            break;
        usleep(50000);
    }
    struct uploader_stats us;
    uploader_get_stats(up, &us);
    printf("TLS: %llu batches delivered over https, %llu failures, last HTTP %ld %s\n",
           (unsigned long long)us.delivered, (unsigned long long)us.failures, us.last_http,
           us.last_error);
    CHECK_INT(st.undelivered, 0);
    CHECK_INT(us.delivered, 3);
    uploader_stop(up);
    /* plain HTTP to the TLS port gets no HTTP answer */
    char resp[256], hurl[200];
    snprintf(hurl, sizeof hurl, "http://127.0.0.1:%u/v1/stats", cp.port);
    CHECK(http_get(hurl, resp, sizeof resp) != 200);
    /* and an untrusted certificate is refused by the client */
    snprintf(hurl, sizeof hurl, "https://localhost:%u/v1/stats", cp.port);
    CHECK_INT(http_get(hurl, resp, sizeof resp), 0);
    collector_kill(&cp);
    CHECK_INT(db_int(cdb, "SELECT COUNT(*) FROM batches WHERE vehicle='tram-5'"), 3);
    recorder_free(rec);
    outbox_close(ob);
}

/* The uploader against refusals: a wrong token is retried (the token file is re-read every
 * attempt, so fixing it is enough); a batch the collector keeps refusing as malformed (here: cut
 * under another vehicle id than the uploader sends) is set aside after 5 tries with a gap
 * record, and the queue moves on. */
static void test_uploader_refusals(const char *exe, const char *dir)
{
    char cdb[400], ctok[400], tokf[400], junkf[400], db[400], err[300];
    snprintf(cdb, sizeof cdb, "%s/u.db", dir);
    snprintf(ctok, sizeof ctok, "%s/u.tokens", dir);
    snprintf(tokf, sizeof tokf, "%s/u.token", dir);
    snprintf(junkf, sizeof junkf, "%s/u-other.token", dir);
    snprintf(db, sizeof db, "%s/u-outbox.db", dir);
    CHECK_INT(write_tokens(tokf, ctok, "van-1", "van-1-token"), 0);
    struct collector_proc cp = {0};
    const char *extra[] = {"--log-level", "warn", NULL};
    CHECK_INT(collector_spawn(&cp, exe, dir, cdb, ctok, 0, extra), 0);

    /* batch 1 cut as "van-X" (wrong), batch 2 and 3 as "van-1" */
    struct outbox_config ocfg = {0};
    str_copy(ocfg.vehicle_id, "van-X", sizeof ocfg.vehicle_id);
    struct outbox *ob = outbox_open(db, &ocfg, err, sizeof err);
    struct recorder *rec = recorder_new(256);
    uint64_t seq;
    synth_second(rec, 1700000000000, 1);
    recorder_flush(rec, ob, err, sizeof err);
    CHECK_INT(outbox_cut(ob, 1, &seq, err, sizeof err), 1);
    outbox_close(ob);
    str_copy(ocfg.vehicle_id, "van-1", sizeof ocfg.vehicle_id);
    ob = outbox_open(db, &ocfg, err, sizeof err);
    for (int b = 0; b < 2; b++) {
        synth_second(rec, 1700000001000 + b * 1000, 1);
        recorder_flush(rec, ob, err, sizeof err);
        CHECK_INT(outbox_cut(ob, 2 + b, &seq, err, sizeof err), 1);
    }
    /* wrong token first */
    FILE *f = fopen(junkf, "w");
    fprintf(f, "not-the-token\n");
    fclose(f);
    struct uploader_config ucfg = {
        .outbox = ocfg, .backoff_base_ms = 20, .backoff_max_ms = 60, .idle_poll_ms = 50};
    str_copy(ucfg.db_path, db, sizeof ucfg.db_path);
    snprintf(ucfg.url, sizeof ucfg.url, "http://127.0.0.1:%u/v1/batches", cp.port);
    str_copy(ucfg.token_file, junkf, sizeof ucfg.token_file);
    struct uploader *up = uploader_start(&ucfg, err, sizeof err);
    CHECK(up != NULL);
    struct uploader_stats us = {0};
    for (int i = 0; i < 100 && us.failures < 5; i++) {
        usleep(20000);
        uploader_get_stats(up, &us);
    }
    CHECK(us.failures >= 5);
    CHECK_INT(us.last_http, 401);
    CHECK_INT(us.delivered, 0);
    /* fix the token in place: the next attempt uses it */
    f = fopen(junkf, "w");
    fprintf(f, "van-1-token\n");
    fclose(f);
    struct outbox_stats st = {0};
    for (int i = 0; i < 200; i++) {
        outbox_get_stats(ob, &st, err, sizeof err);
        if (st.undelivered == 0)
            break;
        usleep(20000);
    }
    uploader_get_stats(up, &us);
    printf("uploader: %llu attempts, %llu failures, %llu delivered, %llu set aside\n",
           (unsigned long long)us.attempts, (unsigned long long)us.failures,
           (unsigned long long)us.delivered, (unsigned long long)st.rejected);
    CHECK_INT(st.undelivered, 0);
    CHECK_INT(st.rejected, 1);
    CHECK_INT(us.delivered, 2);
    CHECK_INT(st.pending_records, 1); /* the gap record for seq 1, for the next batch */
    uploader_stop(up);
    collector_kill(&cp);
    CHECK_INT(db_int(cdb, "SELECT COUNT(*) FROM batches WHERE vehicle='van-1'"), 2);
    CHECK_INT(db_int(cdb, "SELECT MIN(seq) FROM batches WHERE vehicle='van-1'"), 2);
    CHECK(file_count(cp.log, "batch header says vehicle van-X") >= 5);
    recorder_free(rec);
    outbox_close(ob);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s corridor-collector\n", argv[0]);
        return 2;
    }
    log_init("test_collector", LOGL_ERROR, false);
    char dir[256];
    if (make_tmpdir(dir, sizeof dir) != 0)
        return 1;
    test_bad_input(argv[1], dir);
    test_uploader_refusals(argv[1], dir);
    test_tls(argv[1], dir);
    if (t_fail == 0)
        remove_tree(dir);
    else
        printf("kept %s\n", dir);
    return test_summary();
}
