/* at: the AT responder of one simulated modem. It produces the exact bytes a SIMCom SIM7600
 * (or Quectel EC25) sends: "\r\n<info>\r\n" blocks, "\r\nOK\r\n" / "\r\nERROR\r\n" /
 * "\r\n+CME ERROR: <n|text>\r\n" finals, per the formats collected in tests/data/at_replies.json.
 * Echo is done by main.c byte by byte as the characters arrive, as a real modem does, which is
 * why an echoed command is followed by "\r\r\n" (its own CR, then the reply's CR LF). */
#include "sim.h"

#include "common/common.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_ARGS 8
#define ARG_LEN  160

/* result of one command */
enum res { R_OK = 0, R_ERROR, R_CME, R_NONE };

struct cmdctx {
    struct sim_at *at;
    const struct sim_radio *radio;
    bool cpsi_fault;
    struct sim_reply *r;
    bool block_open; /* an info block of the current command has started */
    int cme;         /* for R_CME */
};

static void put(struct sim_reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct sim_reply *r, const char *fmt, ...)
{
    if (r->len >= sizeof(r->buf) - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(r->buf + r->len, sizeof(r->buf) - r->len, fmt, ap);
    va_end(ap);
    if (w < 0)
        return;
    r->len += (size_t)w < sizeof(r->buf) - r->len ? (size_t)w : sizeof(r->buf) - r->len - 1;
}

/* One information line. The lines of one command form one block: "\r\n" l1 "\r\n" l2 "\r\n". */
static void info(struct cmdctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void info(struct cmdctx *c, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    put(c->r, "%s%s\r\n", c->block_open ? "" : "\r\n", line);
    c->block_open = true;
}

static const char *cme_text(int code)
{
    switch (code) {
    case 3:
        return "operation not allowed";
    case 4:
        return "operation not supported";
    case 10:
        return "SIM not inserted";
    case 11:
        return "SIM PIN required";
    case 30:
        return "no network service";
    case 50:
        return "incorrect parameters";
    case 100:
        return "unknown";
    case 504:
        return "Session is ongoing";
    case 505:
        return "Session not active";
    case 516:
        return "Not fixed now";
    default:
        return "unknown";
    }
}

static void final_result(struct cmdctx *c, enum res res)
{
    struct sim_reply *r = c->r;
    if (res == R_OK) {
        put(r, "\r\nOK\r\n");
    } else if (res == R_CME && c->at->cmee == 1) {
        put(r, "\r\n+CME ERROR: %d\r\n", c->cme);
        r->error = true;
    } else if (res == R_CME && c->at->cmee == 2) {
        put(r, "\r\n+CME ERROR: %s\r\n", cme_text(c->cme));
        r->error = true;
    } else {
        put(r, "\r\nERROR\r\n");
        r->error = true;
    }
}

static enum res cme(struct cmdctx *c, int code)
{
    c->cme = code;
    return R_CME;
}

/* Split "a,\"b,c\",d" into unquoted args; returns count or -1 if malformed/too many. */
static int split_args(const char *s, char args[MAX_ARGS][ARG_LEN])
{
    int n = 0;
    if (!*s)
        return 0;
    for (;;) {
        if (n >= MAX_ARGS)
            return -1;
        size_t len = 0;
        while (*s == ' ')
            s++;
        if (*s == '"') {
            s++;
            while (*s && *s != '"') {
                if (len + 1 >= ARG_LEN)
                    return -1;
                args[n][len++] = *s++;
            }
            if (*s != '"')
                return -1;
            s++;
            while (*s == ' ')
                s++;
        } else {
            while (*s && *s != ',') {
                if (len + 1 >= ARG_LEN)
                    return -1;
                args[n][len++] = *s++;
            }
            while (len && args[n][len - 1] == ' ')
                len--;
        }
        args[n][len] = '\0';
        n++;
        if (*s == '\0')
            return n;
        if (*s != ',')
            return -1;
        s++;
    }
}

static bool arg_int(const char *s, long lo, long hi, long *out)
{
    if (!*s)
        return false;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool registered(const struct sim_radio *rd, const struct sim_at *at)
{
    return at->cfun == 1 && strcmp(at->cfg->sim, "ready") == 0 && rd->rat != SIM_RAT_NONE &&
           (rd->reg == SIM_REG_HOME || rd->reg == SIM_REG_ROAMING);
}

/* 27.007 <stat> per domain: on 2G/3G EPS registration is not available (CEREG 0); on LTE the
 * modem is combined-attached so all three say the same. */
static int reg_stat(const struct sim_at *at, const struct sim_radio *rd, int domain)
{
    if (at->cfun != 1 || strcmp(at->cfg->sim, "ready") != 0)
        return SIM_REG_NOT_REGISTERED;
    if (rd->rat == SIM_RAT_NONE)
        return rd->reg == SIM_REG_HOME || rd->reg == SIM_REG_ROAMING ? SIM_REG_SEARCHING
                                                                     : (int)rd->reg;
    if (domain == 2 && rd->rat != SIM_RAT_LTE)
        return SIM_REG_NOT_REGISTERED;
    return (int)rd->reg;
}

static int act_of(const struct sim_radio *rd)
{
    return rd->rat == SIM_RAT_LTE ? 7 : rd->rat == SIM_RAT_WCDMA ? 2 : 0;
}

/* "+CREG: 2,1,\"1A2B\",\"0193C201\"" (read) or "+CREG: 1,\"1A2B\",\"0193C201\"" (URC) */
static void fmt_reg(char *buf, size_t n, const char *name, int mode, bool urc, int stat,
                    const struct sim_radio *rd, bool with_act)
{
    int off;
    if (urc)
        off = snprintf(buf, n, "+%s: %d", name, stat);
    else
        off = snprintf(buf, n, "+%s: %d,%d", name, mode, stat);
    bool reg = stat == SIM_REG_HOME || stat == SIM_REG_ROAMING;
    if (mode >= 2 && reg && off > 0 && (size_t)off < n) {
        if (with_act)
            snprintf(buf + off, n - (size_t)off, ",\"%04lX\",\"%08llX\",%d", rd->tac, rd->cell,
                     act_of(rd));
        else
            snprintf(buf + off, n - (size_t)off, ",\"%04lX\",\"%08llX\"", rd->tac, rd->cell);
    }
}

static enum res cmd_reg(struct cmdctx *c, const char *name, int domain, int *mode, char op,
                        const char *argstr)
{
    char args[MAX_ARGS][ARG_LEN];
    long v;
    if (op == '?') {
        char line[128];
        fmt_reg(line, sizeof(line), name, *mode, false, reg_stat(c->at, c->radio, domain), c->radio,
                domain != 0);
        info(c, "%s", line);
        return R_OK;
    }
    if (op == 't') {
        info(c, "+%s: (0-2)", name);
        return R_OK;
    }
    if (op == '=') {
        if (split_args(argstr, args) != 1 || !arg_int(args[0], 0, 2, &v))
            return cme(c, 50);
        *mode = (int)v;
        return R_OK;
    }
    return R_ERROR;
}

static void lat_ddmm(double deg, int degdigits, char *buf, size_t n)
{
    double a = fabs(deg);
    int d = (int)a;
    double m = (a - d) * 60.0;
    if (m >= 59.9999995) { /* would print as 60.000000 */
        d++;
        m = 0;
    }
    snprintf(buf, n, "%0*d%09.6f", degdigits, d, m);
}

static void utc_now(struct tm *tm)
{
    time_t now = time(NULL);
    gmtime_r(&now, tm);
}

static enum res cmd_cgpsinfo(struct cmdctx *c)
{
    const struct sim_radio *rd = c->radio;
    if (!c->at->gps_on || !rd->fix) {
        info(c, "+CGPSINFO: ,,,,,,,,");
        return R_OK;
    }
    char la[32], lo[32];
    lat_ddmm(rd->lat, 2, la, sizeof(la));
    lat_ddmm(rd->lon, 3, lo, sizeof(lo));
    struct tm tm;
    utc_now(&tm);
    double knots = rd->speed_kmh / 1.852;
    /* a stationary receiver leaves the course empty (real capture, at_replies.json id 234) */
    char course[16] = "";
    if (rd->speed_kmh >= 0.1)
        snprintf(course, sizeof(course), "%.1f", rd->course);
    info(c, "+CGPSINFO: %s,%c,%s,%c,%02d%02d%02d,%02d%02d%02d.0,%.1f,%.1f,%s", la,
         rd->lat < 0 ? 'S' : 'N', lo, rd->lon < 0 ? 'W' : 'E', tm.tm_mday, tm.tm_mon + 1,
         tm.tm_year % 100, tm.tm_hour, tm.tm_min, tm.tm_sec, rd->alt, knots, course);
    return R_OK;
}

static long lround10(double v)
{
    return lround(v * 10.0);
}

static enum res cmd_cpsi(struct cmdctx *c)
{
    struct sim_at *at = c->at;
    const struct sim_radio *rd = c->radio;
    const struct sim_modem_cfg *m = at->cfg;
    at->cpsi_count++;
    /* a real SIM7600 may answer ERROR to its first AT+CPSI? after boot; plain ERROR whatever
     * CMEE says (capture at_replies.json id 219) */
    if (c->cpsi_fault || (m->first_cpsi_error && at->cpsi_count == 1))
        return R_ERROR;
    if (!registered(rd, at)) {
        info(c, "+CPSI: NO SERVICE,%s", at->cfun == 1 ? "Online" : "Low Power Mode");
        return R_OK;
    }
    switch (rd->rat) {
    case SIM_RAT_LTE:
        /* RSRQ, RSRP, RSSI in tenths of a dB on the SIM7600, SINR whole */
        info(c, "+CPSI: LTE,Online,%s-%s,0x%04lX,%lld,%ld,%s,%ld,%ld,%ld,%ld,%ld,%ld,%ld", m->mcc,
             m->mnc, rd->tac, rd->cell, rd->pci, rd->band, rd->channel, rd->bw, rd->bw,
             lround10(rd->rsrq), lround10(rd->rsrp), lround10(rd->rssi), lround(rd->sinr));
        break;
    case SIM_RAT_WCDMA:
        /* <PSC>,<Freq>,<SSC>,<EC/IO>,<RSCP>,<Qual>,<RxLev>,<TXPWR>: this firmware prints EC/IO,
         * RSCP and RxLev as positive magnitudes ("...,0,4.0,69,32,46,500" = -4.0 dB, -69 dBm) */
        info(c, "+CPSI: WCDMA,Online,%s-%s,0x%04lX,%lld,%s,%ld,%ld,0,%.1f,%ld,%ld,%ld,500", m->mcc,
             m->mnc, rd->tac, rd->cell, rd->band, rd->pci, rd->channel, fabs(rd->ecio),
             labs(lround(rd->rscp)),
             labs(lround(rd->rscp)) - 36 > 0 ? labs(lround(rd->rscp)) - 36 : 0,
             labs(lround(rd->rssi)));
        break;
    case SIM_RAT_GSM:
        /* <LAC> lower-case hex, <Cell ID>, "<ARFCN> <band>", <RxLev dBm>, <Track LO>, <C1-C2> */
        info(c, "+CPSI: GSM,Online,%s-%s,0x%04lx,%lld,%ld %s,%ld,0,%ld-%ld", m->mcc, m->mnc,
             rd->tac, rd->cell, rd->channel, rd->band, lround(rd->rssi),
             lround(rd->rssi + 110) > 0 ? lround(rd->rssi + 110) : 0,
             lround(rd->rssi + 110) > 0 ? lround(rd->rssi + 110) : 0);
        break;
    default:
        info(c, "+CPSI: NO SERVICE,Online");
        break;
    }
    return R_OK;
}

static int band_number(const char *band)
{
    const char *p = band + strlen(band);
    while (p > band && isdigit((unsigned char)p[-1]))
        p--;
    return *p ? atoi(p) : 0;
}

/* Quectel EC25 AT+QENG="servingcell" */
static enum res cmd_qeng(struct cmdctx *c, const char *argstr)
{
    char args[MAX_ARGS][ARG_LEN];
    if (split_args(argstr, args) != 1 || strcasecmp(args[0], "servingcell") != 0)
        return cme(c, 50);
    struct sim_at *at = c->at;
    const struct sim_radio *rd = c->radio;
    const struct sim_modem_cfg *m = at->cfg;
    if (!registered(rd, at)) {
        info(c, "+QENG: \"servingcell\",\"SEARCH\"");
        return R_OK;
    }
    const char *state = at->pdp_active ? "CONNECT" : "NOCONN";
    if (rd->rat == SIM_RAT_LTE)
        info(c,
             "+QENG: \"servingcell\",\"%s\",\"LTE\",\"FDD\",%s,%s,%llX,%ld,%ld,%d,%ld,%ld,%lX,%ld,"
             "%ld,%ld,%ld,%d,-,%d",
             state, m->mcc, m->mnc, rd->cell, rd->pci, rd->channel, band_number(rd->band), rd->bw,
             rd->bw, rd->tac, lround(rd->rsrp), lround(rd->rsrq), lround(rd->rssi),
             lround(rd->sinr), 8, 29);
    else if (rd->rat == SIM_RAT_WCDMA)
        info(c,
             "+QENG: \"servingcell\",\"%s\",\"WCDMA\",%s,%s,%lX,%llX,%ld,%ld,254,%ld,%ld,-,-,-,-,-",
             state, m->mcc, m->mnc, rd->tac, rd->cell, rd->channel, rd->pci, lround(rd->rscp),
             lround(rd->ecio));
    else
        info(c,
             "+QENG: \"servingcell\",\"%s\",\"GSM\",%s,%s,%lX,%llX,33,%ld,0,%ld,255,255,0,40,40,1,"
             "-,-,-,-,-,-,-,-,-,\"-\"",
             state, m->mcc, m->mnc, rd->tac, rd->cell, rd->channel, lround(rd->rssi));
    return R_OK;
}

/* Quectel AT+QGPSLOC=2: hhmmss.s,lat,lon,hdop,alt,fix,cog,spkm,spkn,ddmmyy,nsat */
static enum res cmd_qgpsloc(struct cmdctx *c)
{
    const struct sim_radio *rd = c->radio;
    if (!c->at->gps_on)
        return cme(c, 505);
    if (!rd->fix)
        return cme(c, 516);
    struct tm tm;
    utc_now(&tm);
    info(c, "+QGPSLOC: %02d%02d%02d.0,%.5f,%.5f,1.2,%.1f,3,%.2f,%.1f,%.1f,%02d%02d%02d,09",
         tm.tm_hour, tm.tm_min, tm.tm_sec, rd->lat, rd->lon, rd->alt, rd->course, rd->speed_kmh,
         rd->speed_kmh / 1.852, tm.tm_mday, tm.tm_mon + 1, tm.tm_year % 100);
    return R_OK;
}

/* Decode a UCS2 hex string (CSCS="UCS2" command argument) to ASCII; false if not ASCII. */
static bool ucs2_hex_to_ascii(const char *hex, char *out, size_t n)
{
    size_t len = strlen(hex), o = 0;
    if (len % 4)
        return false;
    for (size_t i = 0; i < len; i += 4) {
        char q[5] = {hex[i], hex[i + 1], hex[i + 2], hex[i + 3], 0};
        char *end;
        unsigned long v = strtoul(q, &end, 16);
        if (*end || v == 0 || v > 0x7f || o + 1 >= n)
            return false;
        out[o++] = (char)v;
    }
    out[o] = '\0';
    return true;
}

static enum res cmd_cusd(struct cmdctx *c, char op, const char *argstr)
{
    char args[MAX_ARGS][ARG_LEN];
    long n;
    if (op == '?') {
        info(c, "+CUSD: 1");
        return R_OK;
    }
    if (op == 't') {
        info(c, "+CUSD: (0-2)");
        return R_OK;
    }
    if (op != '=')
        return R_ERROR;
    int na = split_args(argstr, args);
    if (na < 1 || !arg_int(args[0], 0, 2, &n))
        return cme(c, 50);
    if (n == 2)
        c->r->action = SIM_ACT_USSD_CANCEL;
    if (na == 1 || n == 2)
        return R_OK;
    if (!registered(c->radio, c->at))
        return cme(c, 30);
    char code[ARG_LEN];
    if (strcasecmp(c->at->cscs, "UCS2") == 0) {
        if (!ucs2_hex_to_ascii(args[1], code, sizeof(code)))
            return cme(c, 50);
    } else {
        snprintf(code, sizeof(code), "%s", args[1]);
    }
    c->r->action = SIM_ACT_USSD;
    c->r->ussd_index = -1;
    for (size_t i = 0; i < c->at->cfg->n_ussd; i++)
        if (strcmp(c->at->cfg->ussd[i].code, code) == 0)
            c->r->ussd_index = (int)i;
    return R_OK;
}

static enum res cmd_cgdcont(struct cmdctx *c, char op, const char *argstr)
{
    char args[MAX_ARGS][ARG_LEN];
    long cid;
    if (op == '?') {
        if (c->at->apn[0])
            info(c, "+CGDCONT: 1,\"IP\",\"%s\",\"0.0.0.0\",0,0,0,0", c->at->apn);
        return R_OK;
    }
    if (op == 't') {
        info(c, "+CGDCONT: (1-24),\"IP\",,,(0-2),(0-4),(0,1),(0,1)");
        return R_OK;
    }
    int na = split_args(argstr, args);
    if (op != '=' || na < 1 || !arg_int(args[0], 1, 24, &cid))
        return cme(c, 50);
    if (na >= 2 && strcmp(args[1], "IP") && strcmp(args[1], "IPV6") && strcmp(args[1], "IPV4V6"))
        return cme(c, 50);
    if (na >= 3 && strlen(args[2]) >= sizeof(c->at->apn))
        return cme(c, 50);
    if (cid == 1)
        str_copy(c->at->apn, na >= 3 ? args[2] : "", sizeof(c->at->apn));
    return R_OK;
}

/* Commands a driver sends for setup that only need to be accepted. */
static const char *const accept_only[] = {
    "CATR", "CTZU",    "CGEREP",  "CNMI",   "CMGF",     "IPR",       "IFC",
    "CLIP", "CVHU",    "CNBP",    "CSCLK",  "CGATT",    "CAUTOCONN", "DIALMODE",
    "QCFG", "QURCCFG", "QINDCFG", "QICSGP", "CGPSAUTO", "CGPSNMEA"};

static enum res exec_ext(struct cmdctx *c, const char *name, char op, const char *argstr)
{
    struct sim_at *at = c->at;
    const struct sim_modem_cfg *m = at->cfg;
    const struct sim_identity *id = &m->id;
    const struct sim_radio *rd = c->radio;
    bool simcom = m->family == SIM_FAMILY_SIMCOM, quectel = !simcom;
    bool sim_ready = strcmp(m->sim, "ready") == 0;
    char args[MAX_ARGS][ARG_LEN];
    long v;

    if (!strcmp(name, "CGMI") || !strcmp(name, "GMI")) {
        if (op != 'x')
            return op == 't' ? R_OK : R_ERROR;
        info(c, "%s", id->manufacturer);
        return R_OK;
    }
    if (!strcmp(name, "CGMM") || !strcmp(name, "GMM")) {
        if (op != 'x')
            return op == 't' ? R_OK : R_ERROR;
        info(c, "%s", id->model);
        return R_OK;
    }
    if (!strcmp(name, "CGMR") || !strcmp(name, "GMR")) {
        if (op != 'x')
            return op == 't' ? R_OK : R_ERROR;
        if (simcom)
            info(c, "+CGMR: %s", id->revision);
        else
            info(c, "Revision: %s", id->revision);
        return R_OK;
    }
    if (!strcmp(name, "CGSN") || !strcmp(name, "GSN")) {
        if (op != 'x')
            return op == 't' ? R_OK : R_ERROR;
        info(c, "%s", id->imei);
        return R_OK;
    }
    if (!strcmp(name, "GCAP") && op == 'x') {
        info(c, "+GCAP: +CGSM,+FCLASS,+DS");
        return R_OK;
    }
    if (!strcmp(name, "CIMI")) {
        if (op != 'x')
            return op == 't' ? R_OK : R_ERROR;
        if (!sim_ready)
            return cme(c, strcmp(m->sim, "pin") == 0 ? 11 : 10);
        info(c, "%s", id->imsi);
        return R_OK;
    }
    if ((!strcmp(name, "CICCID") && simcom) || (!strcmp(name, "QCCID") && quectel) ||
        !strcmp(name, "CCID")) {
        if (op != 'x' && !(op == '?' && !strcmp(name, "CCID")))
            return op == 't' ? R_OK : R_ERROR;
        if (strcmp(m->sim, "absent") == 0)
            return cme(c, 10);
        info(c, "+%s: %s", !strcmp(name, "CICCID") ? "ICCID" : name, id->iccid);
        return R_OK;
    }
    if (!strcmp(name, "CPIN")) {
        if (op == '?') {
            if (strcmp(m->sim, "absent") == 0)
                return cme(c, 10);
            info(c, "+CPIN: %s", sim_ready ? "READY" : "SIM PIN");
            return R_OK;
        }
        return op == 't' ? R_OK : cme(c, 3);
    }
    if (!strcmp(name, "CMEE")) {
        if (op == '?') {
            info(c, "+CMEE: %d", at->cmee);
            return R_OK;
        }
        if (op == 't') {
            info(c, "+CMEE: (0-2)");
            return R_OK;
        }
        if (op == 'x') {
            at->cmee = 0;
            return R_OK;
        }
        if (split_args(argstr, args) != 1 || !arg_int(args[0], 0, 2, &v))
            return cme(c, 50);
        at->cmee = (int)v;
        return R_OK;
    }
    if (!strcmp(name, "CREG"))
        return cmd_reg(c, "CREG", 0, &at->creg_n, op, argstr);
    if (!strcmp(name, "CGREG"))
        return cmd_reg(c, "CGREG", 1, &at->cgreg_n, op, argstr);
    if (!strcmp(name, "CEREG"))
        return cmd_reg(c, "CEREG", 2, &at->cereg_n, op, argstr);
    if (!strcmp(name, "COPS")) {
        if (op == '?') {
            if (!registered(rd, at)) {
                info(c, "+COPS: 0");
                return R_OK;
            }
            if (at->cops_format == 2)
                info(c, "+COPS: 0,2,\"%s%s\",%d", m->mcc, m->mnc, act_of(rd));
            else {
                /* names are strings in the TE character set: UCS2 hex after AT+CSCS="UCS2" */
                const char *nm = at->cops_format == 1 ? m->op_short : m->op_name;
                char hex[160];
                if (strcasecmp(at->cscs, "UCS2") == 0 && sim_enc_ucs2_hex(nm, hex, sizeof(hex)) > 0)
                    nm = hex;
                info(c, "+COPS: 0,%d,\"%s\",%d", at->cops_format, nm, act_of(rd));
            }
            return R_OK;
        }
        if (op == 't') {
            if (!sim_ready)
                return cme(c, 10);
            info(c, "+COPS: (2,\"%s\",\"%s\",\"%s%s\",%d),,(0,1,2,3,4),(0,1,2)", m->op_name,
                 m->op_short, m->mcc, m->mnc, act_of(rd));
            return R_OK;
        }
        if (op != '=')
            return R_ERROR;
        int na = split_args(argstr, args);
        if (na < 1 || !arg_int(args[0], 0, 4, &v))
            return cme(c, 50);
        if (v == 3) {
            long f;
            if (na < 2 || !arg_int(args[1], 0, 2, &f))
                return cme(c, 50);
            at->cops_format = (int)f;
        }
        return R_OK;
    }
    if (!strcmp(name, "CSQ")) {
        if (op == 't') {
            info(c, "+CSQ: (0-31,99),(0-7,99)");
            return R_OK;
        }
        if (op != 'x')
            return R_ERROR;
        int q = at->cfun == 1 && sim_ready ? rd->csq : 99;
        info(c, "+CSQ: %d,99", q);
        return R_OK;
    }
    if (!strcmp(name, "CPSI") && simcom) {
        if (op == '?')
            return cmd_cpsi(c);
        if (op == '=') /* periodic reporting: accepted, not simulated */
            return R_OK;
        return op == 't' ? R_OK : R_ERROR;
    }
    if (!strcmp(name, "CNSMOD") && simcom) {
        if (op == '?') {
            int mode = !registered(rd, at)        ? 0
                       : rd->rat == SIM_RAT_LTE   ? 8
                       : rd->rat == SIM_RAT_WCDMA ? 4
                       : rd->rat == SIM_RAT_GSM   ? 1
                                                  : 0;
            info(c, "+CNSMOD: 0,%d", mode);
            return R_OK;
        }
        return op == '=' || op == 't' ? R_OK : R_ERROR;
    }
    if (!strcmp(name, "QENG") && quectel && op == '=')
        return cmd_qeng(c, argstr);
    if (!strcmp(name, "QNWINFO") && quectel && op == 'x') {
        if (registered(rd, at))
            info(c, "+QNWINFO: \"%s\",\"%s%s\",\"%s\",%ld",
                 rd->rat == SIM_RAT_LTE     ? "FDD LTE"
                 : rd->rat == SIM_RAT_WCDMA ? "WCDMA"
                                            : "GSM",
                 m->mcc, m->mnc, rd->rat == SIM_RAT_LTE ? "LTE BAND 3" : rd->band, rd->channel);
        else
            info(c, "+QNWINFO: No Service");
        return R_OK;
    }
    if (!strcmp(name, "CGPS") && simcom) {
        if (op == '?') {
            info(c, "+CGPS: %d,1", at->gps_on ? 1 : 0);
            return R_OK;
        }
        if (op == 't') {
            info(c, "+CGPS: (0,1),(1,2,3)");
            return R_OK;
        }
        int na = split_args(argstr, args);
        if (op != '=' || na < 1 || !arg_int(args[0], 0, 1, &v))
            return cme(c, 50);
        /* turning it on while already on is an ERROR on the SIM7600 (capture id 273) */
        if (v == 1 && at->gps_on)
            return R_ERROR;
        at->gps_on = v == 1;
        return R_OK;
    }
    if (!strcmp(name, "CGPSINFO") && simcom) {
        if (op == 'x')
            return cmd_cgpsinfo(c);
        return op == '=' || op == 't' ? R_OK : R_ERROR;
    }
    if (!strcmp(name, "QGPS") && quectel) {
        if (op == '?') {
            info(c, "+QGPS: %d", at->gps_on ? 1 : 0);
            return R_OK;
        }
        int na = split_args(argstr, args);
        if (op != '=' || na < 1 || !arg_int(args[0], 0, 1, &v))
            return cme(c, 50);
        if (v == 1 && at->gps_on)
            return cme(c, 504);
        at->gps_on = v == 1;
        return R_OK;
    }
    if (!strcmp(name, "QGPSEND") && quectel && op == 'x') {
        if (!at->gps_on)
            return cme(c, 505);
        at->gps_on = false;
        return R_OK;
    }
    if (!strcmp(name, "QGPSLOC") && quectel)
        return op == 't' ? R_OK : cmd_qgpsloc(c);
    if (!strcmp(name, "CUSD"))
        return cmd_cusd(c, op, argstr);
    if (!strcmp(name, "CSCS")) {
        if (op == '?') {
            info(c, "+CSCS: \"%s\"", at->cscs);
            return R_OK;
        }
        if (op == 't') {
            info(c, "+CSCS: (\"IRA\",\"GSM\",\"UCS2\")");
            return R_OK;
        }
        if (op != '=' || split_args(argstr, args) != 1)
            return cme(c, 50);
        if (strcmp(args[0], "IRA") && strcmp(args[0], "GSM") && strcmp(args[0], "UCS2"))
            return cme(c, 50);
        str_copy(at->cscs, args[0], sizeof(at->cscs));
        return R_OK;
    }
    if (!strcmp(name, "CGDCONT"))
        return cmd_cgdcont(c, op, argstr);
    if (!strcmp(name, "CGACT")) {
        if (op == '?') {
            info(c, "+CGACT: 1,%d", at->pdp_active ? 1 : 0);
            return R_OK;
        }
        if (op == 't') {
            info(c, "+CGACT: (0,1)");
            return R_OK;
        }
        int na = split_args(argstr, args);
        if (op != '=' || na < 1 || !arg_int(args[0], 0, 1, &v))
            return cme(c, 50);
        if (v == 1 && !registered(rd, at))
            return cme(c, 30);
        at->pdp_active = v == 1;
        return R_OK;
    }
    if (!strcmp(name, "CNMP") && simcom) {
        if (op == '?') {
            info(c, "+CNMP: %d", at->cnmp);
            return R_OK;
        }
        if (op == 't') {
            info(c, "+CNMP: (2,9,10,13,14,19,22,38,39,48,51,54,59,60,63,67)");
            return R_OK;
        }
        if (op != '=' || split_args(argstr, args) != 1 || !arg_int(args[0], 2, 71, &v))
            return cme(c, 50);
        at->cnmp = (int)v;
        return R_OK;
    }
    if (!strcmp(name, "NETOPEN") && simcom) {
        if (op == '?') {
            info(c, "+NETOPEN: %d", at->netopen ? 1 : 0);
            return R_OK;
        }
        if (op != 'x')
            return R_ERROR;
        if (at->netopen) {
            /* already opened: SIMCom answers the +IP ERROR line then ERROR */
            info(c, "+IP ERROR: Network is already opened");
            return R_ERROR;
        }
        if (!registered(rd, at))
            return cme(c, 30);
        at->netopen = true;
        c->r->action = SIM_ACT_NETOPEN;
        return R_OK;
    }
    if (!strcmp(name, "NETCLOSE") && simcom && op == 'x') {
        if (!at->netopen)
            return R_ERROR;
        at->netopen = false;
        return R_OK;
    }
    if (!strcmp(name, "CFUN")) {
        if (op == '?') {
            info(c, "+CFUN: %d", at->cfun);
            return R_OK;
        }
        if (op == 't') {
            info(c, "+CFUN: (0,1,4,5,6,7),(0,1)");
            return R_OK;
        }
        int na = split_args(argstr, args);
        long rst = 0;
        if (op != '=' || na < 1 || !arg_int(args[0], 0, 7, &v) ||
            (na >= 2 && !arg_int(args[1], 0, 1, &rst)))
            return cme(c, 50);
        if (rst == 1) {
            c->r->action = SIM_ACT_REBOOT;
            return R_OK;
        }
        at->cfun = (int)v == 1 ? 1 : (int)v;
        return R_OK;
    }
    if (!strcmp(name, "CRESET") && simcom && op == 'x') {
        c->r->action = SIM_ACT_REBOOT;
        return R_OK;
    }
    if (!strcmp(name, "QPOWD") && quectel) {
        c->r->action = SIM_ACT_REBOOT;
        return R_OK;
    }
    for (size_t i = 0; i < sizeof(accept_only) / sizeof(accept_only[0]); i++)
        if (!strcmp(name, accept_only[i]))
            return R_OK;
    return R_ERROR;
}

/* SIMCom "$QCRMCALL" (data call on the rmnet/ECM interface). */
static enum res exec_dollar(struct cmdctx *c, const char *name, char op, const char *argstr)
{
    char args[MAX_ARGS][ARG_LEN];
    long v;
    if (strcmp(name, "QCRMCALL") || c->at->cfg->family != SIM_FAMILY_SIMCOM)
        return R_ERROR;
    if (op == '?') {
        if (c->at->rmnet_up)
            info(c, "$QCRMCALL: 1,V4");
        return R_OK;
    }
    int na = split_args(argstr, args);
    if (op != '=' || na < 2 || !arg_int(args[0], 0, 1, &v))
        return cme(c, 50);
    if (v == 1) {
        if (!registered(c->radio, c->at))
            return cme(c, 30);
        c->at->rmnet_up = true;
        info(c, "$QCRMCALL: 1,V4");
    } else {
        c->at->rmnet_up = false;
    }
    return R_OK;
}

static void count_cmd(struct sim_reply *r, const char *name)
{
    if (r->n_cmds < sizeof(r->cmd_names) / sizeof(r->cmd_names[0]))
        str_copy(r->cmd_names[r->n_cmds++], name, sizeof(r->cmd_names[0]));
}

/* ATI per family */
static void ati(struct cmdctx *c)
{
    const struct sim_identity *id = &c->at->cfg->id;
    if (c->at->cfg->family == SIM_FAMILY_SIMCOM) {
        info(c, "Manufacturer: %s", id->manufacturer);
        info(c, "Model: %s", id->model);
        info(c, "Revision: %s", id->revision);
        info(c, "IMEI: %s", id->imei);
        info(c, "+GCAP: +CGSM");
    } else {
        info(c, "%s", id->manufacturer);
        info(c, "%s", id->model);
        info(c, "Revision: %s", id->revision);
    }
}

void sim_at_exec(struct sim_at *at, const struct sim_radio *radio, bool cpsi_fault,
                 const char *line, struct sim_reply *r)
{
    memset(r, 0, sizeof(*r));
    r->ussd_index = -1;
    struct cmdctx c = {.at = at, .radio = radio, .cpsi_fault = cpsi_fault, .r = r};
    /* skip to "AT" (a modem ignores what comes before the attention prefix) */
    const char *p = line;
    while (*p && !((p[0] == 'A' || p[0] == 'a') && (p[1] == 'T' || p[1] == 't')))
        p++;
    if (!*p)
        return; /* no command: no reply */
    p += 2;
    enum res res = R_OK;
    if (!*p)
        count_cmd(r, "AT");
    while (*p && res == R_OK) {
        c.block_open = false;
        if (*p == ';' || *p == ' ') {
            p++;
            continue;
        }
        if (*p == '+' || *p == '$' || *p == '*' || *p == '^') {
            char prefix = *p++;
            char name[24];
            size_t n = 0;
            while (isalnum((unsigned char)*p)) {
                if (n + 1 < sizeof(name))
                    name[n++] = (char)toupper((unsigned char)*p);
                p++;
            }
            name[n] = '\0';
            char op = 'x';
            char argstr[SIM_LINE_MAX];
            size_t an = 0;
            if (p[0] == '=' && p[1] == '?') {
                op = 't';
                p += 2;
            } else if (*p == '?') {
                op = '?';
                p++;
            } else if (*p == '=') {
                op = '=';
                p++;
                bool q = false;
                while (*p && (q || *p != ';')) {
                    if (*p == '"')
                        q = !q;
                    if (an + 1 < sizeof(argstr))
                        argstr[an++] = *p;
                    p++;
                }
            }
            argstr[an] = '\0';
            char counted[32];
            snprintf(counted, sizeof(counted), "%c%s%s", prefix, name,
                     op == '?'   ? "?"
                     : op == 't' ? "=?"
                     : op == '=' ? "="
                                 : "");
            count_cmd(r, counted);
            if (*p && *p != ';') {
                res = R_ERROR;
                break;
            }
            if (n == 0)
                res = R_ERROR;
            else if (prefix == '+')
                res = exec_ext(&c, name, op, argstr);
            else if (prefix == '$')
                res = exec_dollar(&c, name, op, argstr);
            else
                res = R_ERROR;
            continue;
        }
        /* basic commands: E, V, Q, I, Z, H, X, &F, &D, &C, &W, S<n>=<v> */
        char cmd = (char)toupper((unsigned char)*p++);
        char amp = 0;
        if (cmd == '&') {
            amp = (char)toupper((unsigned char)*p);
            if (!amp) {
                res = R_ERROR;
                break;
            }
            p++;
        }
        long num = 0;
        if (cmd == 'S' && !amp) {
            while (isdigit((unsigned char)*p))
                p++;
            if (*p == '?') {
                p++;
                info(&c, "000");
            } else if (*p == '=') {
                p++;
                while (isdigit((unsigned char)*p))
                    p++;
            } else {
                res = R_ERROR;
            }
            count_cmd(r, "ATS");
            continue;
        }
        while (isdigit((unsigned char)*p)) {
            num = num * 10 + (*p++ - '0');
            if (num > 1000)
                num = 1000;
        }
        char counted[8];
        snprintf(counted, sizeof(counted), "AT%s%c", amp ? "&" : "", amp ? amp : cmd);
        count_cmd(r, counted);
        if (amp) {
            if (amp == 'F') {
                at->echo = true;
                at->cmee = at->cfg->cmee;
            } else if (amp != 'D' && amp != 'C' && amp != 'W' && amp != 'K') {
                res = R_ERROR;
            }
            continue;
        }
        switch (cmd) {
        case 'E':
            if (num > 1)
                res = R_ERROR;
            else
                at->echo = num == 1;
            break;
        case 'V':
        case 'Q':
        case 'X':
        case 'H':
        case 'Z':
            break;
        case 'I':
            ati(&c);
            break;
        default:
            res = R_ERROR;
        }
    }
    /* A USSD URC that the scenario wants before OK is emitted by main.c before this reply;
     * the final result always closes the reply. */
    if (res != R_NONE)
        final_result(&c, res);
}

void sim_at_reset(struct sim_at *at, const struct sim_modem_cfg *cfg)
{
    memset(at, 0, sizeof(*at));
    at->cfg = cfg;
    at->echo = cfg->echo;
    at->cmee = cfg->cmee;
    at->cops_format = 0;
    snprintf(at->cscs, sizeof(at->cscs), "IRA");
    at->cfun = 1;
    at->cnmp = 2;
    at->last_creg = at->last_cgreg = at->last_cereg = -1;
    at->last_lac = -1;
    at->last_ci = -1;
}

size_t sim_at_boot_urcs(const struct sim_at *at, char *buf, size_t n)
{
    if (n == 0)
        return 0;
    int w;
    bool ready = strcmp(at->cfg->sim, "ready") == 0;
    bool absent = strcmp(at->cfg->sim, "absent") == 0;
    const char *cpin = absent ? "NOT INSERTED" : ready ? "READY" : "SIM PIN";
    if (at->cfg->family == SIM_FAMILY_SIMCOM)
        w = snprintf(buf, n, "\r\nRDY\r\n\r\n+CPIN: %s\r\n%s", cpin,
                     ready ? "\r\nSMS DONE\r\n\r\nPB DONE\r\n" : "");
    else
        w = snprintf(buf, n, "\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: %s\r\n\r\n+QUSIM: 1\r\n%s",
                     cpin, ready ? "\r\n+QIND: SMS DONE\r\n\r\n+QIND: PB DONE\r\n" : "");
    return w < 0 ? 0 : (size_t)w < n ? (size_t)w : n - 1;
}

size_t sim_at_reg_urcs(struct sim_at *at, const struct sim_radio *rd, char *buf, size_t n)
{
    if (n == 0)
        return 0;
    size_t off = 0;
    const char *names[3] = {"CREG", "CGREG", "CEREG"};
    int *last[3] = {&at->last_creg, &at->last_cgreg, &at->last_cereg};
    int modes[3] = {at->creg_n, at->cgreg_n, at->cereg_n};
    bool cell_changed = rd->tac != at->last_lac || rd->cell != at->last_ci;
    for (int d = 0; d < 3; d++) {
        int stat = reg_stat(at, rd, d);
        bool changed = stat != *last[d] || (modes[d] >= 2 && cell_changed);
        bool first = *last[d] < 0;
        *last[d] = stat;
        if (!changed || first || modes[d] == 0)
            continue;
        char line[128];
        fmt_reg(line, sizeof(line), names[d], modes[d], true, stat, rd, d != 0);
        int w = snprintf(buf + off, n - off, "\r\n%s\r\n", line);
        if (w < 0 || (size_t)w >= n - off)
            break;
        off += (size_t)w;
    }
    at->last_lac = rd->tac;
    at->last_ci = rd->cell;
    return off;
}

/* ---- USSD encoders ------------------------------------------------------------------------ */

/* Next code point of UTF-8 s (advancing *s), or -1 on malformed input / outside the BMP. */
static long utf8_next(const char **s)
{
    const unsigned char *p = (const unsigned char *)*s;
    long cp;
    int extra;
    if (p[0] < 0x80) {
        cp = p[0];
        extra = 0;
    } else if ((p[0] & 0xE0) == 0xC0) {
        cp = p[0] & 0x1F;
        extra = 1;
    } else if ((p[0] & 0xF0) == 0xE0) {
        cp = p[0] & 0x0F;
        extra = 2;
    } else {
        return -1;
    }
    for (int i = 1; i <= extra; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    *s += 1 + extra;
    return cp;
}

int sim_enc_ucs2_hex(const char *utf8, char *out, size_t n)
{
    size_t o = 0;
    const char *s = utf8;
    while (*s) {
        long cp = utf8_next(&s);
        if (cp < 0 || o + 5 > n)
            return -1;
        snprintf(out + o, n - o, "%04lX", cp);
        o += 4;
    }
    if (o >= n)
        return -1;
    out[o] = '\0';
    return (int)o;
}

/* GSM 03.38 default alphabet code of an ASCII character, -1 if it has none (or needs the
 * escape table, which this simulator does not produce). */
static int gsm7_code(long cp)
{
    if (cp == '@')
        return 0;
    if (cp == '$')
        return 2;
    if (cp == '_')
        return 17;
    if (cp == '\n')
        return 10;
    if (cp == '\r')
        return 13;
    if (cp >= 0x20 && cp < 0x7F && !strchr("[\\]^`{|}~", (int)cp))
        return (int)cp;
    return -1;
}

int sim_enc_gsm7_packed_hex(const char *utf8, char *out, size_t n)
{
    unsigned char sept[512];
    size_t ns = 0;
    const char *s = utf8;
    while (*s) {
        long cp = utf8_next(&s);
        int g = cp < 0 ? -1 : gsm7_code(cp);
        if (g < 0 || ns >= sizeof(sept))
            return -1;
        sept[ns++] = (unsigned char)g;
    }
    /* pack septets LSB first (3GPP 23.038 6.1.2.1.1) */
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < ns; i++) {
        acc |= (unsigned)sept[i] << bits;
        bits += 7;
        while (bits >= 8) {
            if (o + 3 > n)
                return -1;
            snprintf(out + o, n - o, "%02X", acc & 0xFF);
            o += 2;
            acc >>= 8;
            bits -= 8;
        }
    }
    if (bits > 0) {
        if (o + 3 > n)
            return -1;
        snprintf(out + o, n - o, "%02X", acc & 0xFF);
        o += 2;
    }
    if (o >= n)
        return -1;
    out[o] = '\0';
    return (int)o;
}

static bool is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

size_t sim_at_cusd_urc(const struct sim_at *at, int idx, char *buf, size_t n)
{
    if (n == 0)
        return 0;
    int w;
    if (idx < 0 || (size_t)idx >= at->cfg->n_ussd) {
        w = snprintf(buf, n, "\r\n+CUSD: 4\r\n");
        return w < 0 ? 0 : (size_t)w < n ? (size_t)w : n - 1;
    }
    const struct sim_ussd *u = &at->cfg->ussd[idx];
    enum sim_ussd_enc enc = u->enc;
    if (enc == USSD_AUTO)
        enc = strcasecmp(at->cscs, "UCS2") == 0 || !is_ascii(u->text) ? USSD_UCS2 : USSD_GSM7;
    char body[SIM_OUT_MAX / 2];
    int dcs;
    if (enc == USSD_UCS2) {
        if (sim_enc_ucs2_hex(u->text, body, sizeof(body)) < 0)
            body[0] = '\0';
        dcs = 72;
    } else if (enc == USSD_GSM7_PACKED) {
        if (sim_enc_gsm7_packed_hex(u->text, body, sizeof(body)) < 0)
            body[0] = '\0';
        dcs = 15;
    } else {
        /* plain text; a newline in the text goes out as CR LF inside the quotes */
        size_t o = 0;
        for (const char *s = u->text; *s && o + 3 < sizeof(body); s++) {
            if (*s == '\n')
                body[o++] = '\r';
            body[o++] = *s;
        }
        body[o] = '\0';
        dcs = 15;
    }
    if (u->dcs >= 0)
        dcs = u->dcs;
    w = snprintf(buf, n, "\r\n+CUSD: %d,\"%s\",%d\r\n", u->m, body, dcs);
    return w < 0 ? 0 : (size_t)w < n ? (size_t)w : n - 1;
}
