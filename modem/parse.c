/* parse: pure parsers for AT information lines (see parse.h for the contract).
 *
 * Every parser works on the caller's NUL-terminated line without copying it: a line is cut
 * into at most PF_MAX comma-separated fields (quotes respected, blanks trimmed) that point into
 * the line, and numbers are read from those slices by hand so nothing reads past a field or
 * the NUL. Field layouts and scales are documented in docs/modems-replies.md. */
#include "modem/parse.h"
#include "common/common.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- field splitting --------------------------------------------------------------------- */

#define PF_MAX 40

struct fld {
    const char *p;
    size_t n;
    bool q; /* was quoted */
};

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Skip leading blanks and a case-insensitive prefix such as "+CSQ:"; NULL if absent. */
static const char *after_prefix(const char *line, const char *prefix)
{
    while (is_blank(*line))
        line++;
    size_t n = strlen(prefix);
    if (strncasecmp(line, prefix, n) != 0)
        return NULL;
    line += n;
    while (is_blank(*line))
        line++;
    return line;
}

/* Split s on commas outside double quotes. Returns the number of fields (an empty string is
 * zero fields) or -1 if there are more than max. */
static int split_fields(const char *s, struct fld *f, int max)
{
    int k = 0;
    const char *p = s;
    if (*p == '\0')
        return 0;
    for (;;) {
        const char *start = p;
        bool inq = false;
        while (*p && (inq || *p != ',')) {
            if (*p == '"')
                inq = !inq;
            p++;
        }
        if (k >= max)
            return -1;
        const char *a = start, *b = p;
        while (a < b && is_blank(*a))
            a++;
        while (b > a && is_blank(b[-1]))
            b--;
        f[k].q = false;
        if (b - a >= 2 && *a == '"' && b[-1] == '"') {
            a++;
            b--;
            f[k].q = true;
        }
        f[k].p = a;
        f[k].n = (size_t)(b - a);
        k++;
        if (*p != ',')
            break;
        p++;
    }
    return k;
}

/* Whole field as a signed decimal integer (leading zeros allowed). */
static bool fld_ll(const struct fld *f, long long *out)
{
    size_t i = 0;
    bool neg = false;
    if (f->n == 0)
        return false;
    if (f->p[0] == '-' || f->p[0] == '+') {
        neg = f->p[0] == '-';
        i++;
    }
    if (i == f->n)
        return false;
    long long v = 0;
    for (; i < f->n; i++) {
        if (!isdigit((unsigned char)f->p[i]))
            return false;
        if (v > 99999999999999999LL)
            return false;
        v = v * 10 + (f->p[i] - '0');
    }
    *out = neg ? -v : v;
    return true;
}

static bool fld_int(const struct fld *f, int *out)
{
    long long v;
    if (!fld_ll(f, &v) || v < -1000000000LL || v > 1000000000LL)
        return false;
    *out = (int)v;
    return true;
}

/* Decimal number with an optional fraction ("-98.7", "4.5", "12"). */
static bool fld_double(const struct fld *f, double *out)
{
    size_t i = 0;
    bool neg = false, digits = false;
    if (f->n == 0 || f->n > 40)
        return false;
    if (f->p[0] == '-' || f->p[0] == '+') {
        neg = f->p[0] == '-';
        i++;
    }
    double v = 0, scale = 0;
    for (; i < f->n; i++) {
        char c = f->p[i];
        if (isdigit((unsigned char)c)) {
            digits = true;
            if (scale > 0) {
                v += (c - '0') * scale;
                scale /= 10;
            } else {
                v = v * 10 + (c - '0');
            }
        } else if (c == '.' && scale == 0) {
            scale = 0.1;
        } else {
            return false;
        }
    }
    if (!digits)
        return false;
    *out = neg ? -v : v;
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Hex number with optional 0x prefix. strict: the whole field must be hex; lenient: the
 * leading hex digits are used (ModemManager reads "  0 5" as 0). */
static bool fld_hex(const struct fld *f, bool strict, long long *out)
{
    size_t i = 0;
    if (f->n >= 2 && f->p[0] == '0' && (f->p[1] == 'x' || f->p[1] == 'X'))
        i = 2;
    long long v = 0;
    size_t nd = 0;
    for (; i < f->n; i++) {
        int h = hexval(f->p[i]);
        if (h < 0) {
            if (strict)
                return false;
            break;
        }
        if (++nd > 15)
            return false;
        v = v * 16 + h;
    }
    if (nd == 0)
        return false;
    *out = v;
    return true;
}

static bool fld_is(const struct fld *f, const char *s)
{
    size_t n = strlen(s);
    return f->n == n && strncasecmp(f->p, s, n) == 0;
}

/* Copy a field into a bounded string, replacing control bytes. */
static void fld_copy(const struct fld *f, char *out, size_t n)
{
    if (n == 0)
        return;
    size_t m = f->n < n - 1 ? f->n : n - 1;
    for (size_t i = 0; i < m; i++) {
        unsigned char c = (unsigned char)f->p[i];
        out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    out[m] = '\0';
}

static bool all_digits(const char *p, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)p[i]))
            return false;
    return true;
}

/* ---- signal ------------------------------------------------------------------------------ */

int at_parse_csq(const char *line, struct at_csq *out)
{
    struct fld f[PF_MAX];
    const char *s = after_prefix(line, "+CSQ:");
    if (!s)
        return -1;
    int k = split_fields(s, f, PF_MAX);
    if (k != 2 || !fld_int(&f[0], &out->rssi) || !fld_int(&f[1], &out->ber))
        return -1;
    if (out->rssi >= 0 && out->rssi <= 31)
        out->rssi_dbm = -113.0 + 2.0 * out->rssi;
    else if (out->rssi == 99)
        out->rssi_dbm = NAN;
    else if (out->rssi >= 100 && out->rssi <= 191) /* 27.007: TD-SCDMA range */
        out->rssi_dbm = -116.0 + (out->rssi - 100);
    else
        return -1;
    if (!((out->ber >= 0 && out->ber <= 7) || out->ber == 99))
        return -1;
    return 0;
}

int at_parse_cesq(const char *line, struct at_cesq *out)
{
    struct fld f[PF_MAX];
    int v[6];
    const char *s = after_prefix(line, "+CESQ:");
    if (!s)
        return -1;
    int k = split_fields(s, f, PF_MAX);
    if (k < 6)
        return -1;
    for (int i = 0; i < 6; i++)
        if (!fld_int(&f[i], &v[i]))
            return -1;
    /* 27.007 10.1.? tables: index -> value; 99 / 255 = not known. */
    out->rssi_dbm = v[0] >= 0 && v[0] <= 63 ? -111.0 + v[0] : NAN;
    out->rscp_dbm = v[2] >= 0 && v[2] <= 96 ? -121.0 + v[2] : NAN;
    out->ecno_db = v[3] >= 0 && v[3] <= 49 ? -24.5 + 0.5 * v[3] : NAN;
    out->rsrq_db = v[4] >= 0 && v[4] <= 34 ? -20.0 + 0.5 * v[4] : NAN;
    out->rsrp_dbm = v[5] >= 0 && v[5] <= 97 ? -141.0 + v[5] : NAN;
    return 0;
}

/* ---- registration ------------------------------------------------------------------------ */

static enum modem_reg reg_from_stat(int stat)
{
    switch (stat) {
    case 1:
    case 6: /* home, SMS only */
    case 9: /* home, CSFB not preferred */
        return MODEM_REG_HOME;
    case 5:
    case 7:
    case 10:
        return MODEM_REG_ROAMING;
    case 2:
        return MODEM_REG_SEARCHING;
    case 3:
        return MODEM_REG_DENIED;
    case 0:
    case 8:  /* emergency services only: no usable service */
    case 11: /* attached for RLOS only: no usable data service either */
        return MODEM_REG_NOT_REGISTERED;
    default:
        return MODEM_REG_UNKNOWN;
    }
}

static bool fld_small_dec(const struct fld *f, int max, int *out)
{
    return !f->q && fld_int(f, out) && *out >= 0 && *out <= max;
}

int at_parse_reg(const char *line, struct at_reg *out)
{
    static const struct {
        const char *prefix;
        enum at_reg_kind kind;
    } kinds[] = {{"+C5GREG:", AT_REG_C5GREG},
                 {"+CEREG:", AT_REG_CEREG},
                 {"+CGREG:", AT_REG_CGREG},
                 {"+CREG:", AT_REG_CREG}};
    const char *s = NULL;
    for (size_t i = 0; i < ARRAY_LEN(kinds) && !s; i++) {
        s = after_prefix(line, kinds[i].prefix);
        out->kind = kinds[i].kind;
    }
    if (!s)
        return -1;
    struct fld f[PF_MAX];
    int k = split_fields(s, f, PF_MAX);
    if (k <= 0)
        return -1;

    /* Solicited replies start with <n>, URCs do not; the field count alone is ambiguous at 4+
     * fields (n,stat,lac,ci vs stat,lac,ci,act). Like ModemManager: the second field is the
     * stat (small, unquoted decimal) in the solicited form and the lac (often quoted, usually
     * 4 hex digits) in the URC form. */
    bool sol;
    if (k == 1 || k == 3) {
        sol = false;
    } else if (k == 2) {
        sol = true;
    } else {
        int n0, s1;
        bool any_q = false;
        for (int i = 0; i < k; i++)
            any_q |= f[i].q;
        sol = !f[1].q && fld_small_dec(&f[0], 3, &n0) && fld_small_dec(&f[1], 11, &s1) &&
              (f[1].n <= 2 || any_q);
    }
    int base = sol ? 1 : 0;
    out->n = -1;
    if (sol && !fld_small_dec(&f[0], 9, &out->n))
        return -1;
    if (!fld_small_dec(&f[base], 99, &out->stat))
        return -1;
    out->reg = reg_from_stat(out->stat);
    out->lac = -1;
    out->ci = -1;
    out->act = -1;

    /* Novatel-style CEREG puts a 1-2 digit RAC between TAC and CI: stat,tac,rac,ci,act. */
    int ci_at = base + 2, act_at = base + 3;
    if (out->kind == AT_REG_CEREG && k - base >= 5 && !f[base + 2].q && f[base + 2].n >= 1 &&
        f[base + 2].n <= 2 && f[base + 3].n > 2) {
        ci_at++;
        act_at++;
    }
    long long v;
    if (base + 1 < k && fld_hex(&f[base + 1], false, &v))
        out->lac = (long)v;
    if (ci_at < k && fld_hex(&f[ci_at], false, &v))
        out->ci = v;
    int act;
    if (act_at < k && fld_small_dec(&f[act_at], 99, &act))
        out->act = act;
    return 0;
}

static int reg_rank(enum modem_reg r)
{
    switch (r) {
    case MODEM_REG_HOME:
        return 5;
    case MODEM_REG_ROAMING:
        return 4;
    case MODEM_REG_SEARCHING:
        return 3;
    case MODEM_REG_DENIED:
        return 2;
    case MODEM_REG_NOT_REGISTERED:
        return 1;
    default:
        return 0;
    }
}

enum modem_reg at_reg_best(enum modem_reg a, enum modem_reg b)
{
    return reg_rank(a) >= reg_rank(b) ? a : b;
}

/* ---- operator ---------------------------------------------------------------------------- */

/* A PLMN "25001" / "310260" (or "250 01", "250-01") into mcc/mnc; false if not 5/6 digits. */
static bool split_plmn(const char *p, size_t n, char mcc[4], char mnc[4])
{
    char d[8];
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (isdigit((unsigned char)p[i])) {
            if (m >= 6)
                return false;
            d[m++] = p[i];
        } else if (p[i] != ' ' && p[i] != '-') {
            return false;
        }
    }
    if (m != 5 && m != 6)
        return false;
    memcpy(mcc, d, 3);
    mcc[3] = '\0';
    memcpy(mnc, d + 3, m - 3);
    mnc[m - 3] = '\0';
    return true;
}

/* Names arrive UCS2-hex encoded when CSCS="UCS2". Only decode when every code unit is in the
 * Latin/Cyrillic range, so that a genuinely hex-looking name stays as it is. */
static bool maybe_ucs2_name(const struct fld *f, char *out, size_t n)
{
    char hex[256];
    if (f->n < 8 || f->n % 4 != 0 || f->n >= sizeof hex)
        return false;
    for (size_t i = 0; i < f->n; i += 4)
        if (f->p[i] != '0' || hexval(f->p[i + 1]) < 0 || hexval(f->p[i + 1]) > 4)
            return false;
    memcpy(hex, f->p, f->n);
    hex[f->n] = '\0';
    return ussd_decode_ucs2_hex(hex, out, n) > 0;
}

int at_parse_cops(const char *line, struct at_cops *out)
{
    struct fld f[PF_MAX];
    const char *s = after_prefix(line, "+COPS:");
    if (!s)
        return -1;
    int k = split_fields(s, f, PF_MAX);
    if (k < 1 || k > 4 || !fld_small_dec(&f[0], 4, &out->mode))
        return -1;
    out->format = -1;
    out->act = -1;
    out->oper[0] = out->mcc[0] = out->mnc[0] = '\0';
    if (k >= 2 && f[1].n > 0 && !fld_small_dec(&f[1], 3, &out->format))
        return -1;
    if (k >= 3 && !maybe_ucs2_name(&f[2], out->oper, sizeof out->oper))
        fld_copy(&f[2], out->oper, sizeof out->oper);
    if (k >= 4 && f[3].n > 0 && !fld_small_dec(&f[3], 99, &out->act))
        return -1;
    if (out->format == 2)
        split_plmn(out->oper, strlen(out->oper), out->mcc, out->mnc);
    return 0;
}

/* ---- serving cell ------------------------------------------------------------------------ */

static void cell_init(struct at_cell *c)
{
    c->net = MODEM_NET_NONE;
    c->online = false;
    c->mcc[0] = c->mnc[0] = '\0';
    c->tac = -1;
    c->cell_id = -1;
    c->pci = -1;
    c->channel = -1;
    c->band[0] = '\0';
    c->rsrp_dbm = c->rsrq_db = c->rssi_dbm = c->sinr_db = c->rscp_dbm = c->ecio_db = NAN;
}

/* Non-negative decimal field that fits a 32-bit channel/PCI ("4294967295" = garbage). */
static long fld_uint31(const struct fld *f)
{
    long long v;
    if (!fld_ll(f, &v) || v < 0 || v > 0x7fffffffLL)
        return -1;
    return (long)v;
}

static double fld_num(const struct fld *f)
{
    double v;
    return fld_double(f, &v) ? v : NAN;
}

/* CPSI "460-11": mcc and mnc kept as strings ("01" != "1"); "000-00" means unknown. */
static void cpsi_plmn(const struct fld *f, struct at_cell *c)
{
    const char *dash = memchr(f->p, '-', f->n);
    if (!dash)
        return;
    size_t a = (size_t)(dash - f->p), b = f->n - a - 1;
    if (a != 3 || b < 2 || b > 3 || !all_digits(f->p, a) || !all_digits(dash + 1, b))
        return;
    if (memcmp(f->p, "000", 3) == 0)
        return;
    memcpy(c->mcc, f->p, 3);
    c->mcc[3] = '\0';
    memcpy(c->mnc, dash + 1, b);
    c->mnc[b] = '\0';
}

/* Cell id is decimal in CPSI; tolerate a 0x-prefixed hex one. Negative = garbage. */
static long long cpsi_cell_id(const struct fld *f)
{
    long long v;
    if (f->n > 2 && f->p[0] == '0' && (f->p[1] == 'x' || f->p[1] == 'X'))
        return fld_hex(f, true, &v) ? v : -1;
    return fld_ll(f, &v) && v >= 0 ? v : -1;
}

static long cpsi_area(const struct fld *f)
{
    long long v;
    return fld_hex(f, true, &v) ? (long)v : -1;
}

/* SINR/SNR: tenths when the line is in tenths, or when no dB value could be that large. */
static double snr_scaled(const struct fld *f, bool tenths)
{
    double v = fld_num(f);
    if (isnan(v) || memchr(f->p, '.', f->n))
        return v;
    return tenths || fabs(v) > 50 ? v / 10.0 : v;
}

/* The pair (a, b) holds RSRQ and RSRP in either order (LTE: RSRQ first; SIM8200 NR5G_SA and
 * NR5G_NSA: RSRP first; SIM8200 v1.01 "NR5G," lines: RSRQ first). RSRP is always the larger
 * magnitude (RSRP <= -44 dBm, RSRQ >= -43.5 dB), and tenths vs whole units follow from the
 * RSRP magnitude: whole-unit RSRP is never below -156, tenth-unit RSRP never above -310. */
static bool rsrp_rsrq(double a, double b, struct at_cell *c)
{
    if (isnan(a) || isnan(b) || (a == 0 && b == 0))
        return false;
    double rsrp = fabs(a) >= fabs(b) ? a : b, rsrq = fabs(a) >= fabs(b) ? b : a;
    bool tenths = fabs(rsrp) > 200;
    c->rsrp_dbm = tenths ? rsrp / 10.0 : rsrp;
    c->rsrq_db = tenths ? rsrq / 10.0 : rsrq;
    return tenths;
}

static void cpsi_lte(const struct fld *f, int k, struct at_cell *c)
{
    if (k > 3)
        c->tac = cpsi_area(&f[3]);
    if (k > 4)
        c->cell_id = cpsi_cell_id(&f[4]);
    if (k > 5)
        c->pci = fld_uint31(&f[5]);
    if (k > 6)
        fld_copy(&f[6], c->band, sizeof c->band);
    if (k > 7)
        c->channel = fld_uint31(&f[7]);
    if (k > 11) {
        bool tenths = rsrp_rsrq(fld_num(&f[10]), fld_num(&f[11]), c);
        if (!isnan(c->rsrp_dbm) && k > 12) {
            double rssi = fld_num(&f[12]);
            c->rssi_dbm = tenths ? rssi / 10.0 : rssi;
        }
        if (!isnan(c->rsrp_dbm) && k > 13)
            c->sinr_db = snr_scaled(&f[13], false); /* LTE RSSNR: whole dB on SIM7600 too */
    }
}

static void cpsi_gsm(const struct fld *f, int k, struct at_cell *c)
{
    if (k > 3)
        c->tac = cpsi_area(&f[3]);
    if (k > 4)
        c->cell_id = cpsi_cell_id(&f[4]);
    if (k > 5) {
        /* "<arfcn> <band name>", e.g. "27 EGSM 900" */
        size_t i = 0;
        long ch = 0;
        while (i < f[5].n && isdigit((unsigned char)f[5].p[i]) && i < 9)
            ch = ch * 10 + (f[5].p[i++] - '0');
        if (i > 0)
            c->channel = ch;
        while (i < f[5].n && f[5].p[i] == ' ')
            i++;
        struct fld rest = {f[5].p + i, f[5].n - i, false};
        fld_copy(&rest, c->band, sizeof c->band);
    }
    if (k > 6) {
        double rx = fld_num(&f[6]);
        if (rx < 0)
            c->rssi_dbm = rx; /* RxLev already in dBm */
    }
}

static void cpsi_wcdma(const struct fld *f, int k, struct at_cell *c)
{
    if (k > 3)
        c->tac = cpsi_area(&f[3]);
    if (k > 4)
        c->cell_id = cpsi_cell_id(&f[4]);
    if (k > 5)
        fld_copy(&f[5], c->band, sizeof c->band);
    if (k > 6)
        c->pci = fld_uint31(&f[6]); /* primary scrambling code */
    if (k > 7)
        c->channel = fld_uint31(&f[7]);
    /* Ec/Io and RSCP are printed as magnitudes ("12.5", "83") by most firmware and signed by
     * some; both quantities are never positive, so normalise the sign. */
    if (k > 10) {
        double ecio = fld_num(&f[9]), rscp = fld_num(&f[10]);
        if (!isnan(rscp) && rscp != 0 && fabs(rscp) < 200) {
            c->rscp_dbm = -fabs(rscp);
            if (!isnan(ecio) && fabs(ecio) < 50) {
                c->ecio_db = -fabs(ecio);
                /* Ec/Io = RSCP / RSSI, so the carrier RSSI follows. */
                c->rssi_dbm = c->rscp_dbm - c->ecio_db;
            }
        }
    }
}

/* SIM8200 NR lines. SA: NR5G_SA,Online,plmn,tac,cellid,pci,[band,]arfcn,v,v,snr.
 * NSA secondary: NR5G_NSA,pci,[band,]arfcn,v,v,snr[,scs,bw] (older firmware: "NR5G,"). */
static void cpsi_nr(const struct fld *f, int k, int first, struct at_cell *c)
{
    int i = first;
    if (i < k && !all_digits(f[i].p, f[i].n)) {
        fld_copy(&f[i], c->band, sizeof c->band);
        i++;
    }
    if (i < k)
        c->channel = fld_uint31(&f[i]);
    if (i + 2 < k) {
        bool tenths = rsrp_rsrq(fld_num(&f[i + 1]), fld_num(&f[i + 2]), c);
        if (!isnan(c->rsrp_dbm) && i + 3 < k)
            c->sinr_db = snr_scaled(&f[i + 3], tenths);
    }
}

int at_parse_cpsi(const char *line, struct at_cell *out)
{
    struct fld f[PF_MAX];
    const char *s = after_prefix(line, "+CPSI:");
    if (!s)
        return -1;
    int k = split_fields(s, f, PF_MAX);
    if (k < 2)
        return -1;
    cell_init(out);
    const struct fld *m = &f[0];
    out->online = fld_is(&f[1], "Online");

    if (fld_is(m, "NO SERVICE"))
        return 0;
    if (fld_is(m, "NR5G_NSA") || (fld_is(m, "NR5G") && all_digits(f[1].p, f[1].n))) {
        out->net = MODEM_NET_NR5G_NSA;
        out->online = true; /* only reported while the EN-DC leg is up */
        out->pci = fld_uint31(&f[1]);
        cpsi_nr(f, k, 2, out);
        return 0;
    }
    if (k > 2)
        cpsi_plmn(&f[2], out);
    if (fld_is(m, "LTE")) {
        out->net = MODEM_NET_LTE;
    } else if (fld_is(m, "LTE CAT-M1") || fld_is(m, "CAT-M1") || fld_is(m, "LTE-M") ||
               fld_is(m, "LTE CAT-M")) {
        out->net = MODEM_NET_LTE_M;
    } else if (fld_is(m, "LTE NB-IOT") || fld_is(m, "NB-IOT") || fld_is(m, "LTE NB-IoT")) {
        out->net = MODEM_NET_NB_IOT;
    } else if (fld_is(m, "GSM")) {
        out->net = MODEM_NET_GSM;
        cpsi_gsm(f, k, out);
        return 0;
    } else if (fld_is(m, "WCDMA")) {
        out->net = MODEM_NET_WCDMA;
        cpsi_wcdma(f, k, out);
        return 0;
    } else if (fld_is(m, "NR5G_SA") || fld_is(m, "NR5G")) {
        out->net = MODEM_NET_NR5G_SA;
        if (k > 3)
            out->tac = cpsi_area(&f[3]);
        if (k > 4)
            out->cell_id = cpsi_cell_id(&f[4]);
        if (k > 5)
            out->pci = fld_uint31(&f[5]);
        cpsi_nr(f, k, 6, out);
        return 0;
    } else if (fld_is(m, "CDMA") || fld_is(m, "EVDO") || fld_is(m, "HDR") || fld_is(m, "HYBRID") ||
               fld_is(m, "EHRPD") || fld_is(m, "TDS") || fld_is(m, "TD-SCDMA")) {
        /* No modem_net value for these radios: report the PLMN and online state only. */
        return 0;
    } else {
        return -1; /* e.g. "NOT IN EN-DC CONNECTED MODE": no cell on this line */
    }
    cpsi_lte(f, k, out);
    return 0;
}

/* ---- Quectel QENG ------------------------------------------------------------------------ */

static void qeng_plmn(const struct fld *mcc, const struct fld *mnc, struct at_cell *c)
{
    if (mcc->n == 3 && all_digits(mcc->p, 3) && mnc->n >= 1 && mnc->n <= 3 &&
        all_digits(mnc->p, mnc->n)) {
        memcpy(c->mcc, mcc->p, 3);
        c->mcc[3] = '\0';
        /* some firmware prints the MNC as a plain integer ("1"); MNCs have 2+ digits */
        if (mnc->n == 1) {
            c->mnc[0] = '0';
            c->mnc[1] = mnc->p[0];
            c->mnc[2] = '\0';
        } else {
            memcpy(c->mnc, mnc->p, mnc->n);
            c->mnc[mnc->n] = '\0';
        }
    }
}

static long long qeng_hex(const struct fld *f)
{
    long long v;
    return fld_hex(f, true, &v) ? v : -1;
}

/* QENG LTE SINR: real EC25/EG25/RM5xx captures carry dB directly (it tracks RSRQ: -6 -> 30,
 * -11 -> 11); the 1/5-dB scale (0..250 -> -20..+30 dB) documented for AT+QCSQ is applied only
 * when the value cannot be a dB figure (> 50). */
static double qeng_sinr(const struct fld *f)
{
    double v = fld_num(f);
    if (!isnan(v) && v > 50)
        v = v / 5.0 - 20.0;
    return v;
}

/* LTE fields from the duplex field on: is_tdd,mcc,mnc,cellID,pcid,earfcn,band,ul_bw,dl_bw,
 * tac,rsrp,rsrq,rssi,sinr[,cqi,tx_power],srxlev */
static void qeng_lte(const struct fld *f, int k, int i, struct at_cell *c)
{
    c->net = MODEM_NET_LTE;
    if (i + 2 < k)
        qeng_plmn(&f[i + 1], &f[i + 2], c);
    if (i + 3 < k)
        c->cell_id = qeng_hex(&f[i + 3]);
    if (i + 4 < k)
        c->pci = fld_uint31(&f[i + 4]);
    if (i + 5 < k)
        c->channel = fld_uint31(&f[i + 5]);
    if (i + 6 < k && all_digits(f[i + 6].p, f[i + 6].n) && f[i + 6].n <= 3)
        snprintf(c->band, sizeof c->band, "EUTRAN-BAND%.*s", (int)f[i + 6].n, f[i + 6].p);
    if (i + 9 < k)
        c->tac = (long)qeng_hex(&f[i + 9]);
    if (i + 10 < k)
        c->rsrp_dbm = fld_num(&f[i + 10]);
    if (i + 11 < k)
        c->rsrq_db = fld_num(&f[i + 11]);
    if (i + 12 < k)
        c->rssi_dbm = fld_num(&f[i + 12]);
    if (i + 13 < k)
        c->sinr_db = qeng_sinr(&f[i + 13]);
}

int at_parse_qeng_serving(const char *line, struct at_cell *out)
{
    struct fld f[PF_MAX];
    const char *s = after_prefix(line, "+QENG:");
    if (!s)
        return -1;
    int k = split_fields(s, f, PF_MAX);
    if (k < 1)
        return -1;
    cell_init(out);
    int i = 0;
    if (fld_is(&f[0], "servingcell")) {
        if (k < 2)
            return -1;
        /* SEARCH = not camped; NOCONN/CONNECT = camped; LIMSRV = camped, limited service */
        out->online = !fld_is(&f[1], "SEARCH");
        /* State only: "SEARCH" (no cell) is an answer in itself; "NOCONN"/"CONNECT" alone is
         * the first line of the EN-DC multi-line form, whose cell comes on the next lines, so
         * it is not a cell reply (callers take the first line that parses). */
        if (k == 2)
            return fld_is(&f[1], "SEARCH") ? 0 : -1;
        i = 2;
    } else {
        out->online = true; /* continuation line of the multi-line form */
    }
    const struct fld *rat = &f[i];
    if (fld_is(rat, "LTE") || fld_is(rat, "CAT-M") || fld_is(rat, "eMTC") ||
        fld_is(rat, "CAT-NB") || fld_is(rat, "NBIoT")) {
        qeng_lte(f, k, i + 1, out);
        if (fld_is(rat, "CAT-M") || fld_is(rat, "eMTC"))
            out->net = MODEM_NET_LTE_M;
        else if (fld_is(rat, "CAT-NB") || fld_is(rat, "NBIoT"))
            out->net = MODEM_NET_NB_IOT;
        return 0;
    }
    if (fld_is(rat, "WCDMA")) {
        /* mcc,mnc,lac,cellID,uarfcn,psc,rac,rscp,ecio,phych,sf,slot,speech_code,comMod */
        out->net = MODEM_NET_WCDMA;
        if (i + 2 < k)
            qeng_plmn(&f[i + 1], &f[i + 2], out);
        if (i + 3 < k)
            out->tac = (long)qeng_hex(&f[i + 3]);
        if (i + 4 < k)
            out->cell_id = qeng_hex(&f[i + 4]);
        if (i + 5 < k)
            out->channel = fld_uint31(&f[i + 5]);
        if (i + 6 < k)
            out->pci = fld_uint31(&f[i + 6]);
        if (i + 8 < k)
            out->rscp_dbm = fld_num(&f[i + 8]);
        if (i + 9 < k)
            out->ecio_db = fld_num(&f[i + 9]);
        if (!isnan(out->rscp_dbm) && !isnan(out->ecio_db))
            out->rssi_dbm = out->rscp_dbm - out->ecio_db;
        return 0;
    }
    if (fld_is(rat, "GSM")) {
        /* mcc,mnc,lac,cellid,bsic,arfcn,band,rxlev,txp,rla,drx,c1,c2,... */
        out->net = MODEM_NET_GSM;
        if (i + 2 < k)
            qeng_plmn(&f[i + 1], &f[i + 2], out);
        if (i + 3 < k)
            out->tac = (long)qeng_hex(&f[i + 3]);
        if (i + 4 < k)
            out->cell_id = qeng_hex(&f[i + 4]);
        if (i + 6 < k)
            out->channel = fld_uint31(&f[i + 6]);
        if (i + 8 < k) {
            double rx = fld_num(&f[i + 8]);
            if (rx < 0)
                out->rssi_dbm = rx;
        }
        return 0;
    }
    if (fld_is(rat, "NR5G-NSA")) {
        /* mcc,mnc,pcid,rsrp,sinr,rsrq,arfcn,band,nr_dl_bw,scs (note SINR before RSRQ) */
        out->net = MODEM_NET_NR5G_NSA;
        if (i + 2 < k)
            qeng_plmn(&f[i + 1], &f[i + 2], out);
        if (i + 3 < k)
            out->pci = fld_uint31(&f[i + 3]);
        if (i + 4 < k)
            out->rsrp_dbm = fld_num(&f[i + 4]);
        if (i + 5 < k)
            out->sinr_db = fld_num(&f[i + 5]);
        if (i + 6 < k)
            out->rsrq_db = fld_num(&f[i + 6]);
        if (i + 7 < k)
            out->channel = fld_uint31(&f[i + 7]);
        if (i + 8 < k && all_digits(f[i + 8].p, f[i + 8].n) && f[i + 8].n <= 3)
            snprintf(out->band, sizeof out->band, "NR5G_BAND%.*s", (int)f[i + 8].n, f[i + 8].p);
        return 0;
    }
    if (fld_is(rat, "NR5G-SA")) {
        /* duplex,mcc,mnc,cellID,pcid,tac,arfcn,band,nr_dl_bw,rsrp,rsrq,sinr,scs,srxlev */
        out->net = MODEM_NET_NR5G_SA;
        if (i + 3 < k)
            qeng_plmn(&f[i + 2], &f[i + 3], out);
        if (i + 4 < k)
            out->cell_id = qeng_hex(&f[i + 4]);
        if (i + 5 < k)
            out->pci = fld_uint31(&f[i + 5]);
        if (i + 6 < k)
            out->tac = (long)qeng_hex(&f[i + 6]);
        if (i + 7 < k)
            out->channel = fld_uint31(&f[i + 7]);
        if (i + 8 < k && all_digits(f[i + 8].p, f[i + 8].n) && f[i + 8].n <= 3)
            snprintf(out->band, sizeof out->band, "NR5G_BAND%.*s", (int)f[i + 8].n, f[i + 8].p);
        if (i + 10 < k)
            out->rsrp_dbm = fld_num(&f[i + 10]);
        if (i + 11 < k)
            out->rsrq_db = fld_num(&f[i + 11]);
        if (i + 12 < k)
            out->sinr_db = fld_num(&f[i + 12]);
        return 0;
    }
    return -1; /* neighbourcell rows and anything else */
}

int at_parse_cnsmod(const char *line, enum modem_net *out)
{
    struct fld f[PF_MAX];
    const char *s = after_prefix(line, "+CNSMOD:");
    if (!s)
        return -1;
    int k = split_fields(s, f, PF_MAX);
    int stat;
    if (k < 1 || k > 2 || !fld_small_dec(&f[k - 1], 99, &stat))
        return -1;
    /* SIM7600/SIM8200 table. (SIM7000 differs: 7 = LTE-M, 9 = NB-IoT; its driver should map
     * those itself.) CDMA/EVDO states have no modem_net value and map to NONE. */
    switch (stat) {
    case 0:
    case 13: /* CDMA */
    case 14: /* EVDO */
    case 15: /* CDMA+EVDO hybrid */
    case 23: /* eHRPD */
    case 24: /* CDMA+eHRPD hybrid */
        *out = MODEM_NET_NONE;
        return 0;
    case 1:
    case 2:
    case 3:
        *out = MODEM_NET_GSM;
        return 0;
    case 4:
    case 5:
    case 6:
    case 7:
    case 9: /* TD-SCDMA family */
    case 10:
    case 11:
    case 12:
        *out = MODEM_NET_WCDMA;
        return 0;
    case 8:
    case 16: /* 1xLTE */
        *out = MODEM_NET_LTE;
        return 0;
    default:
        return -1;
    }
}

/* ---- SIM and identity -------------------------------------------------------------------- */

enum modem_sim at_sim_from_cme(int cme)
{
    switch (cme) {
    case 10:
        return MODEM_SIM_ABSENT;
    case 11: /* SIM PIN required */
    case 17: /* SIM PIN2 required */
        return MODEM_SIM_PIN;
    case 12: /* SIM PUK required */
    case 18:
        return MODEM_SIM_PUK;
    case 13: /* SIM failure */
    case 14: /* SIM busy */
    case 15: /* SIM wrong */
        return MODEM_SIM_ERROR;
    default:
        return MODEM_SIM_UNKNOWN;
    }
}

static bool has_word(const char *s, const char *w)
{
    return strcasestr(s, w) != NULL;
}

int at_parse_cpin(const char *line, enum modem_sim *out)
{
    const char *s = after_prefix(line, "+CME ERROR:");
    if (s) {
        long code;
        char tmp[64];
        str_copy(tmp, s, sizeof tmp);
        str_trim(tmp);
        enum modem_sim st = MODEM_SIM_UNKNOWN;
        if (str_to_long(tmp, &code))
            st = at_sim_from_cme(code > 1000 || code < 0 ? 0 : (int)code);
        else if (has_word(tmp, "not inserted") || has_word(tmp, "removed"))
            st = MODEM_SIM_ABSENT;
        else if (has_word(tmp, "PUK"))
            st = MODEM_SIM_PUK;
        else if (has_word(tmp, "PIN"))
            st = MODEM_SIM_PIN;
        else if (has_word(tmp, "SIM failure") || has_word(tmp, "SIM busy") ||
                 has_word(tmp, "SIM wrong"))
            st = MODEM_SIM_ERROR;
        if (st == MODEM_SIM_UNKNOWN)
            return -1;
        *out = st;
        return 0;
    }
    s = after_prefix(line, "+CPIN:");
    if (!s) /* some modems drop the prefix ("   SIM PUK") */
        s = after_prefix(line, "");
    char v[48];
    str_copy(v, s, sizeof v);
    str_trim(v);
    size_t n = strlen(v);
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        v[n - 1] = '\0';
        memmove(v, v + 1, n - 1);
    }
    if (strcasecmp(v, "READY") == 0)
        *out = MODEM_SIM_READY;
    else if (strcasecmp(v, "SIM PIN") == 0 || strcasecmp(v, "SIM PIN2") == 0)
        *out = MODEM_SIM_PIN;
    else if (strcasecmp(v, "SIM PUK") == 0 || strcasecmp(v, "SIM PUK2") == 0)
        *out = MODEM_SIM_PUK;
    else if (strncasecmp(v, "PH-", 3) == 0 && strlen(v) > 7 &&
             (strcasecmp(v + strlen(v) - 4, " PIN") == 0))
        *out = MODEM_SIM_PIN; /* device personalisation lock: a code is needed */
    else if (strncasecmp(v, "PH-", 3) == 0 && strlen(v) > 7 &&
             (strcasecmp(v + strlen(v) - 4, " PUK") == 0))
        *out = MODEM_SIM_PUK;
    else if (strcasecmp(v, "NOT INSERTED") == 0 || strcasecmp(v, "SIM REMOVED") == 0 ||
             strcasecmp(v, "NO SIM") == 0)
        *out = MODEM_SIM_ABSENT;
    else if (strcasecmp(v, "NOT READY") == 0 || strcasecmp(v, "SIM ERROR") == 0)
        *out = MODEM_SIM_ERROR;
    else
        return -1;
    return 0;
}

/* Strip an optional "+XXX:"/"Word:" prefix, blanks and one pair of quotes; the value is
 * returned as a slice of line. */
static bool value_after_tag(const char *line, const char *const *tags, size_t ntags, struct fld *v)
{
    const char *s = line;
    while (is_blank(*s))
        s++;
    for (size_t i = 0; i < ntags; i++) {
        const char *a = after_prefix(s, tags[i]);
        if (a) {
            s = a;
            break;
        }
    }
    struct fld f[2];
    if (split_fields(s, f, 1) != 1)
        return false;
    *v = f[0];
    return v->n > 0;
}

int at_parse_iccid(const char *line, char *out, size_t n)
{
    static const char *const tags[] = {"+ICCID:", "+CCID:", "+QCCID:", "+CICCID:", "ICCID:"};
    struct fld v;
    char d[24];
    if (!value_after_tag(line, tags, ARRAY_LEN(tags), &v) || (v.n != 19 && v.n != 20))
        return -1;
    for (size_t i = 0; i < v.n; i++) {
        if (hexval(v.p[i]) < 0)
            return -1;
        d[i] = (char)toupper((unsigned char)v.p[i]);
    }
    d[v.n] = '\0';
    /* Read raw from EF_ICCID (AT+CRSM, some +CICCID) the BCD nibbles are swapped; an ICCID
     * always starts with the telecom MII "89", so a leading "98" means swapped. */
    if (d[0] == '9' && d[1] == '8') {
        for (size_t i = 0; i + 1 < v.n; i += 2) {
            char t = d[i];
            d[i] = d[i + 1];
            d[i + 1] = t;
        }
    }
    size_t m = v.n;
    while (m > 0 && d[m - 1] == 'F')
        d[--m] = '\0';
    if (m < 18 || d[0] != '8' || d[1] != '9')
        return -1;
    /* Chinese issuers put hex digits in the account part (898602F9...); keep them. */
    if (n <= m)
        return -1;
    memcpy(out, d, m + 1);
    return 0;
}

static int digits_line(const char *line, const char *const *tags, size_t ntags, size_t lo,
                       size_t hi, char *out, size_t n)
{
    struct fld v;
    if (!value_after_tag(line, tags, ntags, &v) || v.n < lo || v.n > hi || !all_digits(v.p, v.n) ||
        n <= v.n)
        return -1;
    memcpy(out, v.p, v.n);
    out[v.n] = '\0';
    return 0;
}

int at_parse_imei(const char *line, char *out, size_t n)
{
    static const char *const tags[] = {"+CGSN:", "+GSN:", "IMEI:"};
    return digits_line(line, tags, ARRAY_LEN(tags), 14, 17, out, n);
}

int at_parse_imsi(const char *line, char *out, size_t n)
{
    static const char *const tags[] = {"+CIMI:", "IMSI:"};
    return digits_line(line, tags, ARRAY_LEN(tags), 6, 15, out, n);
}

int at_parse_ident_text(const char *line, char *out, size_t n)
{
    static const char *const tags[] = {"+CGMI:", "+CGMM:", "+CGMR:",    "+GMI:",         "+GMM:",
                                       "+GMR:",  "+QGMR:", "Revision:", "Manufacturer:", "Model:"};
    if (n == 0)
        return -1;
    const char *s = line;
    while (is_blank(*s))
        s++;
    for (size_t i = 0; i < ARRAY_LEN(tags); i++) {
        const char *a = after_prefix(s, tags[i]);
        if (a) {
            s = a;
            break;
        }
    }
    struct fld v = {s, strlen(s), false};
    while (v.n > 0 && is_blank(v.p[v.n - 1]))
        v.n--;
    if (v.n >= 2 && v.p[0] == '"' && v.p[v.n - 1] == '"') {
        v.p++;
        v.n -= 2;
    }
    if (v.n == 0 || fld_is(&v, "OK") || fld_is(&v, "ERROR") ||
        strncasecmp(v.p, "+CME ERROR", 10) == 0)
        return -1;
    fld_copy(&v, out, n);
    return 0;
}

/* ---- GNSS -------------------------------------------------------------------------------- */

static void gnss_init(struct modem_gnss *g)
{
    g->valid = true;
    g->fix = false;
    g->lat = g->lon = g->alt_m = g->speed_kmh = g->course_deg = NAN;
    g->utc = -1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool two_digits(const char *p, int *v)
{
    if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
        return false;
    *v = (p[0] - '0') * 10 + (p[1] - '0');
    return true;
}

/* "ddmmyy" + "hhmmss[.s]" -> unix seconds, -1 if either is malformed. */
static int64_t utc_from(const struct fld *date, const struct fld *time)
{
    int dd, mo, yy, hh, mi, ss;
    if (date->n != 6 || time->n < 6 || !two_digits(date->p, &dd) || !two_digits(date->p + 2, &mo) ||
        !two_digits(date->p + 4, &yy) || !two_digits(time->p, &hh) ||
        !two_digits(time->p + 2, &mi) || !two_digits(time->p + 4, &ss))
        return -1;
    if (time->n > 6 && time->p[6] != '.')
        return -1;
    if (dd < 1 || dd > 31 || mo < 1 || mo > 12 || hh > 23 || mi > 59 || ss > 60)
        return -1;
    int year = yy < 80 ? 2000 + yy : 1900 + yy;
    return days_from_civil(year, mo, dd) * 86400 + hh * 3600 + mi * 60 + ss;
}

/* NMEA-style "ddmm.mmmm" / "dddmm.mmmm" and a hemisphere letter -> signed degrees. */
static bool nmea_deg(const struct fld *v, char hemi, double max, double *out)
{
    double raw;
    if (!fld_double(v, &raw) || raw < 0)
        return false;
    double deg = floor(raw / 100.0), min = raw - deg * 100.0;
    if (min >= 60.0)
        return false;
    double d = deg + min / 60.0;
    if (d > max)
        return false;
    if (hemi == 'S' || hemi == 's' || hemi == 'W' || hemi == 'w')
        d = -d;
    else if (hemi != 'N' && hemi != 'n' && hemi != 'E' && hemi != 'e')
        return false;
    *out = d;
    return true;
}

int at_parse_cgpsinfo(const char *line, struct modem_gnss *out)
{
    struct fld f[PF_MAX];
    const char *s = after_prefix(line, "+CGPSINFO:");
    if (!s)
        return -1;
    int k = split_fields(s, f, PF_MAX);
    if (k != 9)
        return -1;
    gnss_init(out);
    bool empty = true;
    for (int i = 0; i < 9; i++)
        empty &= f[i].n == 0;
    if (empty)
        return 0; /* engine on, no fix */
    if (f[1].n != 1 || f[3].n != 1 || !nmea_deg(&f[0], f[1].p[0], 90, &out->lat) ||
        !nmea_deg(&f[2], f[3].p[0], 180, &out->lon))
        return -1;
    out->fix = true;
    out->utc = utc_from(&f[4], &f[5]);
    out->alt_m = fld_num(&f[6]);
    double kn = fld_num(&f[7]);
    out->speed_kmh = kn * 1.852; /* knots -> km/h */
    out->course_deg = fld_num(&f[8]);
    return 0;
}

/* QGPSLOC latitude/longitude in any of the three <mode> forms: signed decimal (mode 2),
 * "ddmm.mmmmN" (mode 0), or "ddmm.mmmmmm","N" as two fields (mode 1; *used = 2). */
static bool qgps_coord(const struct fld *f, int k, int i, double max, double *out, int *used)
{
    *used = 1;
    if (i >= k || f[i].n == 0)
        return false;
    char last = f[i].p[f[i].n - 1];
    if (isalpha((unsigned char)last)) {
        struct fld num = {f[i].p, f[i].n - 1, false};
        return nmea_deg(&num, last, max, out);
    }
    if (i + 1 < k && f[i + 1].n == 1 && isalpha((unsigned char)f[i + 1].p[0])) {
        *used = 2;
        return nmea_deg(&f[i], f[i + 1].p[0], max, out);
    }
    double d;
    if (!fld_double(&f[i], &d) || fabs(d) > max)
        return false;
    *out = d;
    return true;
}

int at_parse_qgpsloc(const char *line, struct modem_gnss *out)
{
    struct fld f[PF_MAX];
    const char *s = after_prefix(line, "+QGPSLOC:");
    if (!s)
        return -1;
    int k = split_fields(s, f, PF_MAX);
    if (k < 11)
        return -1;
    gnss_init(out);
    int used, i = 1;
    if (!qgps_coord(f, k, i, 90, &out->lat, &used))
        return -1;
    i += used;
    if (!qgps_coord(f, k, i, 180, &out->lon, &used))
        return -1;
    i += used;
    /* i: hdop, alt, fix, cog, spkm, spkn, date, nsat */
    if (i + 7 >= k)
        return -1;
    int fixmode;
    if (!fld_int(&f[i + 2], &fixmode))
        return -1;
    out->fix = fixmode >= 2;
    out->alt_m = fld_num(&f[i + 1]);
    out->course_deg = fld_num(&f[i + 3]);
    out->speed_kmh = fld_num(&f[i + 4]);
    out->utc = utc_from(&f[i + 6], &f[0]);
    return 0;
}
