// fuzz-libs: corridor_telemetry corridor_common
/* fuzz_batch: arbitrary bytes through the telemetry batch decoder the collector runs on every
 * upload (telemetry/outbox.h batch_decode, record.h rec_decode/rec_to_json).
 *
 * The first input byte selects the mode:
 *   even: the rest is the request body as received (zstd frame handling, checksum, bounds);
 *   odd:  the rest is an uncompressed batch, compressed here with a checksum, so mutations reach
 *         the header and record parsers instead of dying at the zstd checksum.
 *
 * Built with -DFUZZ_BATCH_WRITE_SEEDS it writes the seed corpus instead:
 *   cc -std=c11 -D_GNU_SOURCE -DFUZZ_BATCH_WRITE_SEEDS -I. tests/fuzz/fuzz_batch.c \
 *      telemetry/record.c telemetry/outbox.c common/clock.c common/log.c \
 *      common/queue.c common/str.c -lsqlite3 -lzstd -lpthread -lm \
 *      -o /tmp/seedgen && /tmp/seedgen tests/fuzz/corpus/batch */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "telemetry/outbox.h"
#include "telemetry/record.h"

#define FUZZ_MAX_RAW (1u << 20)

static int on_record(void *ctx, const struct rec_any *r, uint32_t index)
{
    char json[1024];
    (void)ctx;
    (void)index;
    rec_to_json(r, json, sizeof json);
    /* every decoded record must encode again within the bound */
    uint8_t buf[REC_ENCODED_MAX];
    if (rec_encode(r, buf, sizeof buf) == 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    struct batch_header h;
    char err[300];
    if (!(data[0] & 1)) {
        batch_decode(data + 1, size - 1, FUZZ_MAX_RAW, &h, on_record, NULL, err, sizeof err);
        return 0;
    }
    size_t bound = ZSTD_compressBound(size - 1);
    uint8_t *z = malloc(bound);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    if (z && cc) {
        ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 1);
        ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
        size_t zn = ZSTD_compress2(cc, z, bound, data + 1, size - 1);
        if (!ZSTD_isError(zn))
            batch_decode(z, zn, FUZZ_MAX_RAW, &h, on_record, NULL, err, sizeof err);
    }
    ZSTD_freeCCtx(cc);
    free(z);
    return 0;
}

#ifdef FUZZ_BATCH_WRITE_SEEDS
static void write_seed(const char *dir, const char *name, uint8_t mode, const uint8_t *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fwrite(&mode, 1, 1, f);
    fwrite(p, 1, n, f);
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    struct rec_any r[6];
    memset(r, 0, sizeof r);
    r[0].kind = REC_TRACK;
    r[0].u.track = (struct rec_track){1700000000000, 55.75, 37.62, 150.0f, 60.0f, 90.0f, 3, 1};
    r[1].kind = REC_LINK;
    r[1].u.link.t_ms = 1700000000000;
    strcpy(r[1].u.link.link, "wwan0");
    strcpy(r[1].u.link.operator_name, "MTS");
    strcpy(r[1].u.link.net_type, "LTE");
    r[1].u.link.cell_id = 250011234;
    r[1].u.link.rsrp_dbm = -95.0f;
    r[2].kind = REC_HEALTH;
    r[2].u.health.t_ms = 1700000000000;
    r[2].u.health.ssd_health_pct = -1;
    r[3].kind = REC_SIM;
    r[3].u.sim.t_ms = 1700000000000;
    strcpy(r[3].u.sim.iccid, "8970101234567890123");
    strcpy(r[3].u.sim.currency, "RUB");
    r[3].u.sim.balance = 12.5;
    r[4].kind = REC_EVENT;
    r[4].u.event.t_ms = 1700000000000;
    strcpy(r[4].u.event.type, "link_down");
    strcpy(r[4].u.event.subject, "wwan1");
    strcpy(r[4].u.event.text, "no reply for 3 s");
    r[5].kind = REC_GAP;
    r[5].u.gap.t_ms = 1700000000000;
    r[5].u.gap.seq_from = r[5].u.gap.seq_to = 3;
    strcpy(r[5].u.gap.reason, "quota_dropped");
    struct batch_header h = {.seq = 7, .t_first_ms = 1700000000000, .t_last_ms = 1700000000000};
    strcpy(h.vehicle, "bus-1");
    char err[200];
    for (int n = 0; n <= 6; n += 6) {
        uint8_t *z;
        size_t zn;
        if (batch_encode(&h, r, (size_t)n, &z, &zn, err, sizeof err) != BATCH_OK) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        uint8_t raw[8192];
        size_t rn = ZSTD_decompress(raw, sizeof raw, z, zn);
        if (ZSTD_isError(rn))
            return 1;
        write_seed(argv[1], n ? "body_all_kinds" : "body_empty", 0, z, zn);
        write_seed(argv[1], n ? "raw_all_kinds" : "raw_empty", 1, raw, rn);
        free(z);
    }
    return 0;
}
#endif
