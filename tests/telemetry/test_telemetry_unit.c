/* Unit tests of telemetry records, batches, the outbox (cut, cadence, quota thinning, rejection),
 * the recorder overflow gap, and the uploader's backoff and rate schedules. No network. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "common/common.h"
#include "telemetry/outbox.h"
#include "telemetry/record.h"
#include "telemetry/upload.h"
#include "testlib.h"
#include "tlm_util.h"

static char g_dir[256];

static void roundtrip(const struct rec_any *in)
{
    uint8_t buf[REC_ENCODED_MAX];
    size_t n = rec_encode(in, buf, sizeof buf);
    CHECK(n > 8);
    struct rec_any out;
    char err[200] = "";
    CHECK_INT(rec_decode(in->kind, buf, n, &out, err, sizeof err), 0);
    CHECK_INT(out.kind, in->kind);
    CHECK_INT(rec_time(&out), rec_time(in));
    /* re-encoding the decoded record gives the same bytes: every field survived */
    uint8_t buf2[REC_ENCODED_MAX];
    size_t n2 = rec_encode(&out, buf2, sizeof buf2);
    CHECK_INT(n2, n);
    CHECK(memcmp(buf, buf2, n) == 0);
    /* every truncation and one trailing byte are refused, except the end of the schema-1
     * payload of the kinds schema 2 extended (health, sim): that is an old record */
    unsigned bad = 0;
    for (size_t cut = 0; cut < n; cut++)
        bad += rec_decode(in->kind, buf, cut, &out, err, sizeof err) != 0;
    bool extended = in->kind == REC_HEALTH || in->kind == REC_SIM;
    CHECK_INT(bad, n - (extended ? 1 : 0));
    buf[n] = 0;
    CHECK_INT(rec_decode(in->kind, buf, n + 1, &out, err, sizeof err), -1);
    CHECK(strstr(err, "trailing") != NULL);
}

static void test_records(void)
{
    struct rec_any r = {.kind = REC_TRACK};
    synth_track(1700000000123, &r.u.track);
    r.u.track.alt_m = NAN;
    roundtrip(&r);
    uint8_t buf[REC_ENCODED_MAX];
    size_t n = rec_encode(&r, buf, sizeof buf);
    struct rec_any out;
    char err[200];
    CHECK_INT(rec_decode(REC_TRACK, buf, n, &out, err, sizeof err), 0);
    CHECK_NAN(out.u.track.alt_m);
    CHECK_NEAR(out.u.track.lat, r.u.track.lat, 0);

    r.kind = REC_LINK;
    synth_link(1700000000000, 3, &r.u.link);
    roundtrip(&r);
    n = rec_encode(&r, buf, sizeof buf);
    CHECK_INT(rec_decode(REC_LINK, buf, n, &out, err, sizeof err), 0);
    CHECK_STR(out.u.link.operator_name, "Tele2");
    CHECK_STR(out.u.link.link, "wwan3");
    /* a string length past its field is refused (byte 8 is the link name's length) */
    buf[8] = 200;
    CHECK_INT(rec_decode(REC_LINK, buf, n, &out, err, sizeof err), -1);
    CHECK(strstr(err, "link") != NULL);

    char json_sim[1024];
    r.kind = REC_HEALTH;
    synth_health(1700000000000, &r.u.health);
    r.u.health.ssd_health_pct = -1;
    roundtrip(&r);
    n = rec_encode(&r, buf, sizeof buf);
    CHECK_INT(rec_decode(REC_HEALTH, buf, n, &out, err, sizeof err), 0);
    CHECK_INT(out.u.health.ssd_health_pct, -1);
    CHECK_STR(out.u.health.storage_dev, "mmcblk0");
    CHECK_INT(out.u.health.storage_life_used_pct, 3);
    CHECK_INT(out.u.health.storage_smart_passed, -1);
    CHECK_NAN(out.u.health.storage_temp_c);
    /* schema 2 with every storage field known */
    r.u.health.storage_status = 3;
    r.u.health.storage_smart_passed = 0;
    r.u.health.storage_life_used_pct = 104;
    r.u.health.storage_temp_c = 61.0f;
    r.u.health.storage_power_on_hours = 34402;
    r.u.health.storage_media_errors = 4011;
    roundtrip(&r);
    n = rec_encode(&r, buf, sizeof buf);
    CHECK_INT(rec_decode(REC_HEALTH, buf, n, &out, err, sizeof err), 0);
    CHECK_INT(out.u.health.storage_status, 3);
    CHECK_INT(out.u.health.storage_smart_passed, 0);
    CHECK_INT(out.u.health.storage_life_used_pct, 104);
    CHECK_NEAR(out.u.health.storage_temp_c, 61.0, 0);
    CHECK_INT(out.u.health.storage_power_on_hours, 34402);
    CHECK_INT(out.u.health.storage_media_errors, 4011);
    char hj[1024];
    CHECK(rec_to_json(&out, hj, sizeof hj));
    CHECK(strstr(hj, "\"storage_media_errors\":4011") != NULL);
    /* a schema-1 health payload (89 bytes: everything up to threads_total) still decodes,
     * with the storage fields unknown */
    CHECK_INT(rec_decode(REC_HEALTH, buf, 89, &out, err, sizeof err), 0);
    CHECK_INT(out.u.health.threads_total, 9);
    CHECK_STR(out.u.health.storage_dev, "");
    CHECK_INT(out.u.health.storage_status, 0);
    CHECK_INT(out.u.health.storage_life_used_pct, -1);
    CHECK_INT(out.u.health.storage_power_on_hours, -1);
    CHECK_INT(out.u.health.storage_media_errors, -1);
    CHECK_NAN(out.u.health.storage_temp_c);

    memset(&r, 0, sizeof r);
    r.kind = REC_SIM;
    r.u.sim.t_ms = 1700000000000;
    str_copy(r.u.sim.link, "wwan0", sizeof r.u.sim.link);
    str_copy(r.u.sim.iccid, "8970101234567890123", sizeof r.u.sim.iccid);
    r.u.sim.balance = 123.45;
    str_copy(r.u.sim.currency, "RUB", sizeof r.u.sim.currency);
    r.u.sim.data_used_bytes = 5000000000ull;
    r.u.sim.forecast_empty_utc = 1701000000;
    r.u.sim.alert = 1;
    r.u.sim.data_up_bytes = 1000000000ull;
    r.u.sim.data_down_bytes = 4000000000ull;
    r.u.sim.data_today_bytes = 123456789ull;
    r.u.sim.data_month_bytes = 2345678901ull;
    roundtrip(&r);
    n = rec_encode(&r, buf, sizeof buf);
    CHECK_INT(rec_decode(REC_SIM, buf, n, &out, err, sizeof err), 0);
    CHECK_INT(out.u.sim.data_down_bytes, 4000000000ll);
    CHECK_INT(out.u.sim.data_month_bytes, 2345678901ll);
    /* schema 1: the 32 bytes of the data-used split missing */
    CHECK_INT(rec_decode(REC_SIM, buf, n - 32, &out, err, sizeof err), 0);
    CHECK_INT(out.u.sim.data_used_bytes, 5000000000ll);
    CHECK_INT(out.u.sim.data_up_bytes + out.u.sim.data_month_bytes, 0);
    CHECK(rec_to_json(&r, json_sim, sizeof json_sim));
    CHECK(strstr(json_sim, "\"data_today_bytes\":123456789") != NULL);

    memset(&r, 0, sizeof r);
    r.kind = REC_EVENT;
    r.u.event.t_ms = 1700000000000;
    str_copy(r.u.event.type, "preempt_disable", sizeof r.u.event.type);
    str_copy(r.u.event.subject, "wwan1", sizeof r.u.event.subject);
    str_copy(r.u.event.text, "coverage map: \"dead zone\" in 40 s", sizeof r.u.event.text);
    roundtrip(&r);
    char json[1024];
    CHECK(rec_to_json(&r, json, sizeof json));
    CHECK(strstr(json, "\\\"dead zone\\\"") != NULL);

    memset(&r, 0, sizeof r);
    r.kind = REC_GAP;
    r.u.gap.t_ms = 5;
    r.u.gap.from_ms = 1;
    r.u.gap.to_ms = 2;
    r.u.gap.seq_from = 7;
    r.u.gap.seq_to = 9;
    r.u.gap.records_lost = 1234;
    str_copy(r.u.gap.reason, "quota_dropped", sizeof r.u.gap.reason);
    roundtrip(&r);
    CHECK(rec_to_json(&r, json, sizeof json));
    CHECK(strstr(json, "\"records_lost\":1234") != NULL);

    CHECK_INT(rec_decode(99, buf, 10, &out, err, sizeof err), -1);
    CHECK(strstr(err, "unknown kind") != NULL);
    r.kind = (enum rec_kind)42;
    CHECK_INT(rec_encode(&r, buf, sizeof buf), 0);
    /* too small an output buffer is refused, not overrun */
    r.kind = REC_EVENT;
    CHECK_INT(rec_encode(&r, buf, 10), 0);
}

struct collect {
    unsigned n, tracks, links, gaps;
    int64_t last_t;
    bool ordered;
    struct rec_gap gap;
};

static int collect_cb(void *vctx, const struct rec_any *r, uint32_t index)
{
    struct collect *c = vctx;
    if (index != c->n)
        c->ordered = false;
    c->n++;
    if (r->kind == REC_TRACK) {
        if (r->u.track.t_ms < c->last_t)
            c->ordered = false;
        c->last_t = r->u.track.t_ms;
        c->tracks++;
    }
    c->links += r->kind == REC_LINK;
    if (r->kind == REC_GAP) {
        c->gaps++;
        c->gap = r->u.gap;
    }
    return 0;
}

static void test_batch_codec(void)
{
    enum { N = 3000 };
    struct rec_any *recs = calloc(N, sizeof *recs);
    for (unsigned i = 0; i < N; i++) {
        int64_t t = 1700000000000 + (int64_t)(i / 5) * 1000;
        if (i % 5 == 0) {
            recs[i].kind = REC_TRACK;
            synth_track(t, &recs[i].u.track);
        } else {
            recs[i].kind = REC_LINK;
            synth_link(t, i % 5 - 1, &recs[i].u.link);
        }
    }
    struct batch_header h = {.seq = 42, .t_first_ms = 1700000000000, .t_last_ms = 1700000599000};
    str_copy(h.vehicle, "bus-0042", sizeof h.vehicle);
    uint8_t *z = NULL;
    size_t zn = 0;
    char err[300] = "";
    CHECK_INT(batch_encode(&h, recs, N, &z, &zn, err, sizeof err), BATCH_OK);
    /* 10 minutes of 1 track + 4 links at 1 Hz: the budget is 40 KB compressed */
    printf("batch: 600 s x (1 track + 4 links) = %u records -> %zu bytes zstd\n", N, zn);
    CHECK(zn < 40000);
    struct batch_header d;
    struct collect c = {.ordered = true};
    CHECK_INT(batch_decode(z, zn, BATCH_RAW_MAX_DEFAULT, &d, collect_cb, &c, err, sizeof err),
              BATCH_OK);
    CHECK_INT(d.schema, BATCH_SCHEMA_VERSION);
    CHECK_STR(d.vehicle, "bus-0042");
    CHECK_INT(d.seq, 42);
    CHECK_INT(d.t_first_ms, 1700000000000);
    CHECK_INT(d.t_last_ms, 1700000599000);
    CHECK_INT(d.n_records, N);
    CHECK_INT(c.n, N);
    CHECK_INT(c.tracks, 600);
    CHECK_INT(c.links, 2400);
    CHECK(c.ordered);

    /* truncated at many points: always malformed, never a crash */
    unsigned bad = 0, tries = 0;
    for (size_t cut = 0; cut < zn; cut += (cut < 64 ? 1 : 97)) {
        tries++;
        bad += batch_decode(z, cut, BATCH_RAW_MAX_DEFAULT, &d, NULL, NULL, err, sizeof err) ==
               BATCH_EMALFORMED;
    }
    CHECK_INT(bad, tries);
    /* a flipped byte in the middle: the content checksum or the structure catches it */
    z[zn / 2] ^= 0x5a;
    CHECK_INT(batch_decode(z, zn, BATCH_RAW_MAX_DEFAULT, &d, NULL, NULL, err, sizeof err),
              BATCH_EMALFORMED);
    z[zn / 2] ^= 0x5a;
    /* trailing garbage after the frame */
    uint8_t *z2 = malloc(zn + 3);
    memcpy(z2, z, zn);
    memcpy(z2 + zn, "xyz", 3);
    CHECK_INT(batch_decode(z2, zn + 3, BATCH_RAW_MAX_DEFAULT, &d, NULL, NULL, err, sizeof err),
              BATCH_EMALFORMED);
    CHECK(strstr(err, "trailing") != NULL);
    free(z2);
    /* a bound of exactly the raw size is enough; one byte less is not */
    size_t rawsz = (size_t)ZSTD_getFrameContentSize(z, zn);
    CHECK_INT(batch_decode(z, zn, rawsz, &d, NULL, NULL, err, sizeof err), BATCH_OK);
    CHECK_INT(batch_decode(z, zn, rawsz - 1, &d, NULL, NULL, err, sizeof err), BATCH_ETOOBIG);
    {
        /* the same batch streamed without a content size: the bound is found while decoding */
        uint8_t *rawb = malloc(rawsz);
        CHECK_INT(ZSTD_decompress(rawb, rawsz, z, zn), rawsz);
        size_t sb = ZSTD_compressBound(rawsz);
        uint8_t *zs = malloc(sb);
        ZSTD_CCtx *c2 = ZSTD_createCCtx();
        ZSTD_CCtx_setParameter(c2, ZSTD_c_checksumFlag, 1);
        ZSTD_CCtx_setParameter(c2, ZSTD_c_contentSizeFlag, 0);
        ZSTD_outBuffer o2 = {zs, sb, 0};
        ZSTD_inBuffer i2 = {rawb, rawsz, 0};
        CHECK_INT(ZSTD_compressStream2(c2, &o2, &i2, ZSTD_e_end), 0);
        CHECK(ZSTD_getFrameContentSize(zs, o2.pos) == ZSTD_CONTENTSIZE_UNKNOWN);
        CHECK_INT(batch_decode(zs, o2.pos, rawsz, &d, NULL, NULL, err, sizeof err), BATCH_OK);
        CHECK_INT(d.n_records, N);
        CHECK_INT(batch_decode(zs, o2.pos, rawsz - 1, &d, NULL, NULL, err, sizeof err),
                  BATCH_ETOOBIG);
        /* schema 1 (batches cut before an upgrade) is still read; 0 and 3 are not */
        static const unsigned schemas[][2] = {{1, BATCH_OK}, {0, 1}, {3, 1}};
        for (size_t k = 0; k < ARRAY_LEN(schemas); k++) {
            rawb[4] = (uint8_t)schemas[k][0];
            ZSTD_CCtx_reset(c2, ZSTD_reset_session_only);
            ZSTD_outBuffer o3 = {zs, sb, 0};
            ZSTD_inBuffer i3 = {rawb, rawsz, 0};
            CHECK_INT(ZSTD_compressStream2(c2, &o3, &i3, ZSTD_e_end), 0);
            int rc = batch_decode(zs, o3.pos, rawsz, &d, NULL, NULL, err, sizeof err);
            if (schemas[k][1] == BATCH_OK) {
                CHECK_INT(rc, BATCH_OK);
                CHECK_INT(d.schema, 1);
            } else {
                CHECK_INT(rc, BATCH_EMALFORMED);
                CHECK_MSG(strstr(err, "schema") != NULL, "err: %s", err);
            }
        }
        ZSTD_freeCCtx(c2);
        free(zs);
        free(rawb);
    }
    /* a smaller decoder bound than the batch: too big */
    CHECK_INT(batch_decode(z, zn, 1000, &d, NULL, NULL, err, sizeof err), BATCH_ETOOBIG);
    /* wrong vehicle id refused at encode */
    str_copy(h.vehicle, "bad vehicle!", sizeof h.vehicle);
    uint8_t *z3 = NULL;
    CHECK_INT(batch_encode(&h, recs, 1, &z3, &zn, err, sizeof err), BATCH_EMALFORMED);
    CHECK(z3 == NULL);
    free(z);
    free(recs);

    /* plain zstd frames that are not batches */
    char junk[] = "hello, this is not a batch";
    size_t bound = ZSTD_compressBound(sizeof junk);
    uint8_t *zj = malloc(bound);
    size_t zjn = ZSTD_compress(zj, bound, junk, sizeof junk, 3); /* no checksum */
    CHECK_INT(batch_decode(zj, zjn, BATCH_RAW_MAX_DEFAULT, &d, NULL, NULL, err, sizeof err),
              BATCH_EMALFORMED);
    CHECK(strstr(err, "checksum") != NULL);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    zjn = ZSTD_compress2(cc, zj, bound, junk, sizeof junk);
    CHECK_INT(batch_decode(zj, zjn, BATCH_RAW_MAX_DEFAULT, &d, NULL, NULL, err, sizeof err),
              BATCH_EMALFORMED);
    CHECK(strstr(err, "magic") != NULL);
    free(zj);
    CHECK_INT(batch_decode((const uint8_t *)"abc", 3, BATCH_RAW_MAX_DEFAULT, &d, NULL, NULL, err,
                           sizeof err),
              BATCH_EMALFORMED);

    /* decompression bombs: 64 MiB of zeros, once with the size in the header, once streamed
     * without it (the decoder must stop at the bound either way) */
    size_t big = 64u << 20;
    uint8_t *zeros = calloc(1, big);
    bound = ZSTD_compressBound(big);
    uint8_t *zb = malloc(bound);
    size_t zbn = ZSTD_compress2(cc, zb, bound, zeros, big);
    CHECK(!ZSTD_isError(zbn));
    CHECK_INT(batch_decode(zb, zbn, BATCH_RAW_MAX_DEFAULT, &d, NULL, NULL, err, sizeof err),
              BATCH_ETOOBIG);
    ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
    ZSTD_outBuffer ob = {zb, bound, 0};
    ZSTD_inBuffer ib = {zeros, big, 0};
    size_t rem = ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_end);
    CHECK_INT(rem, 0);
    printf("bomb: %zu bytes of zstd -> %zu bytes (streamed, no size in the header)\n", ob.pos, big);
    CHECK_INT(batch_decode(zb, ob.pos, BATCH_RAW_MAX_DEFAULT, &d, NULL, NULL, err, sizeof err),
              BATCH_ETOOBIG);
    CHECK(strstr(err, "bound") != NULL);
    ZSTD_freeCCtx(cc);
    free(zb);
    free(zeros);
}

static struct outbox *open_ob(const char *name, uint64_t quota)
{
    char path[400], err[300] = "";
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    struct outbox_config cfg = {.quota_bytes = quota, .flush_ms = 2000, .batch_ms = 10000};
    str_copy(cfg.vehicle_id, "train-7", sizeof cfg.vehicle_id);
    struct outbox *ob = outbox_open(path, &cfg, err, sizeof err);
    CHECK_MSG(ob != NULL, "%s", err);
    return ob;
}

static void test_outbox_basic(void)
{
    char err[300] = "";
    struct outbox *ob = open_ob("basic.db", 0);
    struct recorder *rec = recorder_new(64);
    uint64_t seq = 0;
    CHECK_INT(outbox_cut(ob, 1000, &seq, err, sizeof err), 0); /* nothing pending */
    for (int s = 0; s < 5; s++)
        synth_second(rec, 1700000000000 + s * 1000, 2);
    CHECK_INT(recorder_buffered(rec), 5 * 3 + 1);
    CHECK_INT(recorder_flush(rec, ob, err, sizeof err), 16);
    CHECK_INT(recorder_buffered(rec), 0);
    CHECK_INT(outbox_cut(ob, 2000, &seq, err, sizeof err), 1);
    CHECK_INT(seq, 1);
    synth_second(rec, 1700000005000, 2);
    CHECK_INT(recorder_flush(rec, ob, err, sizeof err), 3);
    CHECK_INT(outbox_cut(ob, 3000, &seq, err, sizeof err), 1);
    CHECK_INT(seq, 2);
    struct outbox_stats st;
    CHECK_INT(outbox_get_stats(ob, &st, err, sizeof err), 0);
    CHECK_INT(st.undelivered, 2);
    CHECK_INT(st.pending_records, 0);
    CHECK_INT(st.next_seq, 3);
    struct outbox_batch b;
    CHECK_INT(outbox_oldest_undelivered(ob, &b, err, sizeof err), 1);
    CHECK_INT(b.seq, 1);
    CHECK_INT(b.n_records, 16);
    CHECK_INT(b.t_first_ms, 1700000000000);
    CHECK_INT(b.t_last_ms, 1700000004000);
    struct batch_header h;
    struct collect c = {.ordered = true};
    CHECK_INT(batch_decode(b.body, b.body_len, BATCH_RAW_MAX_DEFAULT, &h, collect_cb, &c, err,
                           sizeof err),
              BATCH_OK);
    CHECK_STR(h.vehicle, "train-7");
    CHECK_INT(h.seq, 1);
    CHECK_INT(c.tracks, 5);
    CHECK_INT(c.links, 10);
    outbox_batch_release(&b);
    CHECK_INT(outbox_mark_delivered(ob, 1, 5000, err, sizeof err), 0);
    CHECK_INT(outbox_mark_delivered(ob, 1, 5000, err, sizeof err), 0); /* idempotent */
    CHECK_INT(outbox_oldest_undelivered(ob, &b, err, sizeof err), 1);
    CHECK_INT(b.seq, 2);
    outbox_batch_release(&b);
    outbox_close(ob);
    /* reopen: sequence and queue survive */
    ob = open_ob("basic.db", 0);
    CHECK_INT(outbox_get_stats(ob, &st, err, sizeof err), 0);
    CHECK_INT(st.next_seq, 3);
    CHECK_INT(st.undelivered, 1);
    CHECK_INT(st.delivered, 1);
    CHECK_INT(st.last_cut_ms, 3000);
    /* rejection sets the batch aside and records a gap for the next batch */
    CHECK_INT(outbox_mark_rejected(ob, 2, 6000, "HTTP 400 5 times", err, sizeof err), 0);
    CHECK_INT(outbox_get_stats(ob, &st, err, sizeof err), 0);
    CHECK_INT(st.undelivered, 0);
    CHECK_INT(st.rejected, 1);
    CHECK_INT(st.pending_records, 1);
    CHECK_INT(outbox_cut(ob, 7000, &seq, err, sizeof err), 1);
    CHECK_INT(outbox_oldest_undelivered(ob, &b, err, sizeof err), 1);
    c = (struct collect){.ordered = true};
    CHECK_INT(batch_decode(b.body, b.body_len, BATCH_RAW_MAX_DEFAULT, &h, collect_cb, &c, err,
                           sizeof err),
              BATCH_OK);
    CHECK_INT(c.gaps, 1);
    CHECK_INT(c.gap.seq_from, 2);
    CHECK_INT(c.gap.records_lost, 3);
    CHECK(strstr(c.gap.reason, "rejected_by_collector") != NULL);
    outbox_batch_release(&b);
    recorder_free(rec);
    outbox_close(ob);
}

static void test_recorder_overflow(void)
{
    char err[300];
    struct outbox *ob = open_ob("overflow.db", 0);
    struct recorder *rec = recorder_new(4);
    struct rec_track t;
    unsigned refused = 0;
    for (int i = 0; i < 7; i++) {
        synth_track(1000 * (i + 1), &t);
        refused += recorder_add_track(rec, &t) != 0;
    }
    CHECK_INT(refused, 3);
    CHECK_INT(recorder_dropped(rec), 3);
    CHECK_INT(recorder_flush(rec, ob, err, sizeof err), 5); /* 4 + the gap record */
    uint64_t seq;
    CHECK_INT(outbox_cut(ob, 1, &seq, err, sizeof err), 1);
    struct outbox_batch b;
    CHECK_INT(outbox_oldest_undelivered(ob, &b, err, sizeof err), 1);
    struct batch_header h;
    struct collect c = {.ordered = true};
    CHECK_INT(batch_decode(b.body, b.body_len, BATCH_RAW_MAX_DEFAULT, &h, collect_cb, &c, err,
                           sizeof err),
              BATCH_OK);
    CHECK_INT(c.tracks, 4);
    CHECK_INT(c.gaps, 1);
    CHECK_INT(c.gap.records_lost, 3);
    CHECK_INT(c.gap.from_ms, 5000);
    CHECK_INT(c.gap.to_ms, 7000);
    CHECK(strstr(c.gap.reason, "recorder_overflow") != NULL);
    outbox_batch_release(&b);
    recorder_free(rec);
    outbox_close(ob);
}

static void test_tick_cadence(void)
{
    char err[300];
    struct outbox *ob = open_ob("tick.db", 0);
    struct recorder *rec = recorder_new(256);
    unsigned cuts = 0;
    uint64_t seq = 0;
    int64_t t0 = 1700000000000;
    for (int s = 0; s <= 30; s++) {
        synth_second(rec, t0 + s * 1000, 1);
        int rc = outbox_tick(ob, rec, t0 + s * 1000, &seq, err, sizeof err);
        CHECK(rc >= 0);
        cuts += rc == 1;
        /* a flush at least every 2 s: never more than 2 s of samples in memory */
        CHECK(recorder_buffered(rec) <= 2 * 2 + 1);
    }
    CHECK_INT(cuts, 3); /* at 10, 20, 30 s */
    CHECK_INT(seq, 3);
    outbox_close(ob);
    /* the batch period survives a restart: 5 s later is not yet a cut */
    ob = open_ob("tick.db", 0);
    CHECK_INT(outbox_tick(ob, rec, t0 + 35000, &seq, err, sizeof err), 0);
    synth_second(rec, t0 + 36000, 1);
    CHECK_INT(outbox_tick(ob, rec, t0 + 40000, &seq, err, sizeof err), 1);
    /* clock jumps back: cadence restarts, no cut storm */
    CHECK_INT(outbox_tick(ob, rec, t0, &seq, err, sizeof err), 0);
    CHECK_INT(outbox_tick(ob, rec, t0 + 9000, &seq, err, sizeof err), 0);
    recorder_free(rec);
    outbox_close(ob);
}

/* Build n batches of 600 s each with 1 track + 2 links per second. */
static void fill_batches(struct outbox *ob, struct recorder *rec, int64_t t0, unsigned n)
{
    char err[300];
    uint64_t seq;
    for (unsigned b = 0; b < n; b++) {
        for (int s = 0; s < 600; s++) {
            synth_second(rec, t0 + ((int64_t)b * 600 + s) * 1000, 2);
            if (s % 100 == 99)
                CHECK(recorder_flush(rec, ob, err, sizeof err) >= 0);
        }
        CHECK_INT(outbox_cut(ob, t0 + (int64_t)(b + 1) * 600000, &seq, err, sizeof err), 1);
    }
}

static void test_quota(void)
{
    char err[300];
    int64_t t0 = 1700000000000;
    struct recorder *rec = recorder_new(1024);
    struct outbox *ob = open_ob("quota.db", 0);
    fill_batches(ob, rec, t0, 4);
    struct outbox_stats st;
    CHECK_INT(outbox_get_stats(ob, &st, err, sizeof err), 0);
    uint64_t four = st.undelivered_bytes;
    printf("quota: 4 batches = %llu bytes\n", (unsigned long long)four);
    outbox_close(ob);

    /* quota a bit under 5 batches: the 5th cut must thin the oldest, nothing dropped */
    ob = open_ob("quota.db", four + four / 8);
    fill_batches(ob, rec, t0 + 4 * 600000, 1);
    CHECK_INT(outbox_get_stats(ob, &st, err, sizeof err), 0);
    printf("quota: after 5th cut: %llu bytes, %llu thinned, %llu dropped\n",
           (unsigned long long)st.undelivered_bytes, (unsigned long long)st.thinned,
           (unsigned long long)st.dropped);
    CHECK(st.undelivered_bytes <= four + four / 8);
    CHECK(st.thinned >= 1);
    CHECK_INT(st.dropped, 0);
    CHECK_INT(st.undelivered, 5);
    /* the oldest is the thinned one: 1 track per 10 s window, 1 sample per link per window */
    struct outbox_batch b;
    CHECK_INT(outbox_oldest_undelivered(ob, &b, err, sizeof err), 1);
    CHECK_INT(b.seq, 1);
    CHECK(b.thinned);
    struct batch_header h;
    struct collect c = {.ordered = true};
    CHECK_INT(batch_decode(b.body, b.body_len, BATCH_RAW_MAX_DEFAULT, &h, collect_cb, &c, err,
                           sizeof err),
              BATCH_OK);
    CHECK_INT(h.seq, 1);
    CHECK_INT(c.tracks, 60);
    CHECK_INT(c.links, 120);
    CHECK_INT(c.gaps, 1);
    CHECK_INT(c.gap.seq_from, 1);
    CHECK_INT(c.gap.records_lost, 1620); /* (600 - 60) tracks + (1200 - 120) links */
    CHECK(strstr(c.gap.reason, "quota_thinned") != NULL);
    outbox_batch_release(&b);
    outbox_close(ob);

    /* quota of less than half a batch: thin everything, then drop the oldest whole; gaps
     * recorded */
    ob = open_ob("quota.db", four / 10);
    fill_batches(ob, rec, t0 + 5 * 600000, 1);
    CHECK_INT(outbox_get_stats(ob, &st, err, sizeof err), 0);
    printf("quota: tiny quota: %llu undelivered (%llu bytes), %llu thinned, %llu dropped,"
           " %llu pending\n",
           (unsigned long long)st.undelivered, (unsigned long long)st.undelivered_bytes,
           (unsigned long long)st.thinned, (unsigned long long)st.dropped,
           (unsigned long long)st.pending_records);
    CHECK(st.dropped >= 1);
    CHECK_INT(st.thinned, 6);
    CHECK(st.undelivered_bytes <= four / 10);
    CHECK_INT(st.undelivered + st.dropped, 6);
    /* the drop gaps ride in the next batch, naming each dropped seq */
    CHECK_INT(st.pending_records, st.dropped);
    uint64_t seq;
    CHECK_INT(outbox_cut(ob, t0 + 7 * 600000, &seq, err, sizeof err), 1);
    outbox_close(ob);
    char path[400];
    snprintf(path, sizeof path, "%s/quota.db", g_dir);
    sqlite3 *db;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *q;
    sqlite3_prepare_v2(db, "SELECT body FROM batches WHERE seq=?", -1, &q, NULL);
    sqlite3_bind_int64(q, 1, (int64_t)seq);
    CHECK_INT(sqlite3_step(q), SQLITE_ROW);
    c = (struct collect){.ordered = true};
    CHECK_INT(batch_decode(sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0),
                           BATCH_RAW_MAX_DEFAULT, &h, collect_cb, &c, err, sizeof err),
              BATCH_OK);
    CHECK_INT(c.gaps, st.dropped);
    CHECK_INT(c.gap.seq_from, st.dropped); /* the last gap names the last dropped seq */
    CHECK(strstr(c.gap.reason, "quota_dropped") != NULL);
    sqlite3_finalize(q);
    sqlite3_close(db);
    recorder_free(rec);
}

static void test_backoff(void)
{
    /* equal jitter: [e/2, e] with e = base * 2^(attempt-1) capped */
    CHECK_INT(upload_backoff_ms(0, 1000, 300000, 123), 0);
    CHECK_INT(upload_backoff_ms(1, 1000, 300000, 0), 500);
    CHECK_INT(upload_backoff_ms(1, 1000, 300000, 500), 1000);
    CHECK_INT(upload_backoff_ms(1, 1000, 300000, 501), 500);
    CHECK_INT(upload_backoff_ms(2, 1000, 300000, 0), 1000);
    CHECK_INT(upload_backoff_ms(3, 1000, 300000, 0), 2000);
    CHECK_INT(upload_backoff_ms(9, 1000, 300000, 0), 128000);
    CHECK_INT(upload_backoff_ms(10, 1000, 300000, 0), 150000);
    CHECK_INT(upload_backoff_ms(10, 1000, 300000, 150000), 300000);
    CHECK_INT(upload_backoff_ms(100000, 1000, 300000, 0xffffffffu) <= 300000, 1);
    CHECK_INT(upload_backoff_ms(100000, 1000, 300000, 0), 150000);
    printf("backoff (base 1 s, max 300 s), min..max per attempt:");
    uint64_t prev_lo = 0;
    bool mono = true;
    for (unsigned a = 1; a <= 12; a++) {
        uint64_t lo = upload_backoff_ms(a, 1000, 300000, 0);
        uint64_t hi = upload_backoff_ms(a, 1000, 300000, (uint32_t)lo); /* rnd = half */
        printf(" %u:%llu..%llu", a, (unsigned long long)lo, (unsigned long long)hi);
        mono = mono && lo >= prev_lo && hi <= 300000 && hi >= lo;
        prev_lo = lo;
    }
    printf("\n");
    CHECK(mono);
    /* jitter spreads: 1000 draws at attempt 5 cover most of [8000, 16000] */
    uint64_t mn = UINT64_MAX, mx = 0;
    uint32_t x = 12345;
    for (int i = 0; i < 1000; i++) {
        x = x * 1664525u + 1013904223u;
        uint64_t v = upload_backoff_ms(5, 1000, 300000, x);
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    CHECK(mn >= 8000 && mn < 8200);
    CHECK(mx <= 16000 && mx > 15800);
    /* rate cap: 64 KiB at 64 KiB/s is one second */
    CHECK_INT(upload_rate_wait_ms(65536, 65536, 0), 1000);
    CHECK_INT(upload_rate_wait_ms(65536, 65536, 200), 800);
    CHECK_INT(upload_rate_wait_ms(65536, 65536, 5000), 0);
    CHECK_INT(upload_rate_wait_ms(65536, 0, 0), 0);
}

int main(void)
{
    log_init("test_telemetry_unit", LOGL_ERROR, false);
    if (make_tmpdir(g_dir, sizeof g_dir) != 0) {
        perror("mkdtemp");
        return 1;
    }
    test_records();
    test_batch_codec();
    test_outbox_basic();
    test_recorder_overflow();
    test_tick_cadence();
    test_quota();
    test_backoff();
    remove_tree(g_dir);
    return test_summary();
}
