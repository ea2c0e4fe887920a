// fuzz-libs: corridor_modem corridor_common
/* fuzz_at_parse: arbitrary bytes as one AT information line through every parser and decoder
 * of modem/parse.h. The input is copied NUL-terminated (so a parser reading past the NUL is
 * caught by ASan) and also run with a small output buffer whose size comes from the first byte,
 * to exercise truncation. Invariants: outputs are NUL-terminated, within their buffers, valid
 * UTF-8 where promised, and parsed values are in their documented ranges. */
#include "modem/parse.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void must(int cond)
{
    if (!cond)
        abort();
}

/* Strict UTF-8 check (no overlongs, no surrogates). */
static int utf8_ok(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        unsigned cp, m;
        if (u[0] < 0x80) {
            u++;
            continue;
        } else if ((u[0] & 0xE0) == 0xC0) {
            m = 2;
            cp = u[0] & 0x1F;
        } else if ((u[0] & 0xF0) == 0xE0) {
            m = 3;
            cp = u[0] & 0x0F;
        } else if ((u[0] & 0xF8) == 0xF0) {
            m = 4;
            cp = u[0] & 0x07;
        } else {
            return 0;
        }
        for (unsigned i = 1; i < m; i++) {
            if ((u[i] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (u[i] & 0x3F);
        }
        if ((m == 2 && cp < 0x80) || (m == 3 && cp < 0x800) || (m == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        u += m;
    }
    return 1;
}

static void check_text_out(int rc, const char *out, size_t n)
{
    must(memchr(out, '\0', n) != NULL);
    if (rc >= 0) {
        must((size_t)rc == strlen(out));
        must(utf8_ok(out));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *line = malloc(size + 1);
    if (!line)
        return 0;
    memcpy(line, data, size);
    line[size] = '\0';

    struct at_csq csq;
    if (at_parse_csq(line, &csq) == 0)
        must(isnan(csq.rssi_dbm) || (csq.rssi_dbm >= -116 && csq.rssi_dbm <= -25));
    struct at_cesq cesq;
    if (at_parse_cesq(line, &cesq) == 0)
        must(isnan(cesq.rsrp_dbm) || (cesq.rsrp_dbm >= -141 && cesq.rsrp_dbm <= -44));
    struct at_reg reg;
    if (at_parse_reg(line, &reg) == 0) {
        must(reg.stat >= 0 && reg.stat <= 99);
        must(reg.reg >= MODEM_REG_UNKNOWN && reg.reg <= MODEM_REG_DENIED);
        (void)at_reg_best(reg.reg, MODEM_REG_SEARCHING);
    }
    struct at_cops cops;
    if (at_parse_cops(line, &cops) == 0) {
        must(strlen(cops.oper) < sizeof cops.oper);
        must(strlen(cops.mcc) < sizeof cops.mcc && strlen(cops.mnc) < sizeof cops.mnc);
    }
    struct at_cell cell;
    if (at_parse_cpsi(line, &cell) == 0)
        must(strlen(cell.band) < sizeof cell.band && strlen(cell.mnc) < sizeof cell.mnc);
    if (at_parse_qeng_serving(line, &cell) == 0)
        must(strlen(cell.band) < sizeof cell.band && strlen(cell.mnc) < sizeof cell.mnc);
    enum modem_net net;
    if (at_parse_cnsmod(line, &net) == 0)
        must(net >= MODEM_NET_NONE && net <= MODEM_NET_NR5G_SA);
    enum modem_sim sim;
    (void)at_parse_cpin(line, &sim);
    (void)at_sim_from_cme(size > 0 ? data[0] : 0);

    size_t small = size > 0 ? (size_t)(data[0] % 24) + 1 : 1;
    char id[32], *tiny = malloc(small);
    if (!tiny) {
        free(line);
        return 0;
    }
    if (at_parse_iccid(line, id, sizeof id) == 0)
        must(strlen(id) >= 18 && strlen(id) <= 20);
    if (at_parse_imei(line, id, sizeof id) == 0)
        must(strlen(id) >= 14 && strlen(id) <= 17);
    if (at_parse_imsi(line, id, sizeof id) == 0)
        must(strlen(id) >= 6 && strlen(id) <= 15);
    if (at_parse_ident_text(line, tiny, small) == 0)
        must(strlen(tiny) < small);
    (void)at_parse_iccid(line, tiny, small);
    (void)at_parse_imei(line, tiny, small);

    struct modem_gnss g;
    if (at_parse_cgpsinfo(line, &g) == 0 && g.fix)
        must(fabs(g.lat) <= 90 && fabs(g.lon) <= 180);
    if (at_parse_qgpsloc(line, &g) == 0)
        must(fabs(g.lat) <= 90 && fabs(g.lon) <= 180);

    struct at_cusd cusd;
    if (at_parse_cusd(line, &cusd) == 0) {
        must(memchr(cusd.text, '\0', sizeof cusd.text) != NULL);
        must(utf8_ok(cusd.text));
        double amount;
        (void)ussd_find_amount(cusd.text, &amount);
    }
    double amount;
    if (ussd_find_amount(line, &amount) == 0)
        must(!isnan(amount));

    char out[320];
    int rc = ussd_decode_gsm7_packed_hex(line, out, sizeof out);
    check_text_out(rc, out, sizeof out);
    rc = ussd_decode_gsm7_packed_hex(line, tiny, small);
    check_text_out(rc, tiny, small);
    rc = ussd_decode_ucs2_hex(line, out, sizeof out);
    check_text_out(rc, out, sizeof out);
    rc = ussd_decode_ucs2_hex(line, tiny, small);
    check_text_out(rc, tiny, small);
    rc = ussd_gsm7_to_utf8(data, size, out, sizeof out);
    check_text_out(rc, out, sizeof out);
    rc = ussd_gsm7_to_utf8(data, size, tiny, small);
    check_text_out(rc, tiny, small);

    free(tiny);
    free(line);
    return 0;
}
