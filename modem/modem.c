/* modem: the per-modem thread and state machine, and the 3GPP TS 27.007 commands both modem
 * families share.
 *
 * One thread per modem owns its serial port, AT engine and working sample; nothing it holds is
 * shared except the latest published sample (under m->mu, copied in and out, never held across
 * I/O) and the request flags. So a hung modem only ever blocks its own thread, for at most one
 * command timeout. States: ABSENT -> DETECT -> INIT -> POLL -> RECOVER (see docs/modems-driver.md).
 */
#include "modem/driver.h"
#include "modem/usb.h"
#include "common/common.h"
#include "common/alive.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUBSYS "modem"

/* ==== pure decision logic ================================================================ */

/* One ranking of registration states for the whole subsystem: at_reg_best() (parse.c). */
static enum modem_reg reg_best2(enum modem_reg a, enum modem_reg b)
{
    return at_reg_best(a, b);
}

enum modem_reg drv_reg_merge(enum modem_net net, enum modem_reg cs, enum modem_reg ps,
                             enum modem_reg eps, enum modem_reg g5)
{
    switch (net) {
    case MODEM_NET_GSM:
    case MODEM_NET_WCDMA:
        /* CEREG is about E-UTRAN only: on 3G it may say "not registered" while CS/PS roam. */
        return reg_best2(cs, ps);
    case MODEM_NET_LTE:
    case MODEM_NET_LTE_M:
    case MODEM_NET_NB_IOT:
    case MODEM_NET_NR5G_NSA: /* NSA anchors on LTE: EPS registration */
        if (eps != MODEM_REG_UNKNOWN)
            return eps;
        return reg_best2(cs, ps);
    case MODEM_NET_NR5G_SA:
        if (g5 != MODEM_REG_UNKNOWN || eps != MODEM_REG_UNKNOWN)
            return reg_best2(g5, eps);
        return reg_best2(cs, ps);
    case MODEM_NET_NONE:
    default:
        return reg_best2(reg_best2(cs, ps), reg_best2(eps, g5));
    }
}

static bool ci_contains(const char *hay, const char *needle)
{
    size_t nl = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < nl && hay[i] &&
               (hay[i] | 0x20) == (needle[i] | 0x20)) /* ASCII letters only in needles */
            i++;
        if (i == nl)
            return true;
    }
    return false;
}

enum modem_family drv_family_from_text(const char *text)
{
    if (!text)
        return MODEM_FAMILY_UNKNOWN;
    if (ci_contains(text, "simcom") || ci_contains(text, "simtech"))
        return MODEM_FAMILY_SIMCOM;
    if (ci_contains(text, "quectel"))
        return MODEM_FAMILY_QUECTEL;
    return MODEM_FAMILY_UNKNOWN;
}

void rec_reset(struct rec_ladder *l)
{
    l->stage = 0;
    l->backoffs = 0;
}

enum rec_action rec_next(struct rec_ladder *l, bool have_power_cycle, unsigned settle_ms,
                         unsigned *wait_ms)
{
    if (l->stage == 1 && !have_power_cycle)
        l->stage = 2;
    enum rec_action a;
    switch (l->stage) {
    case 0:
        a = REC_SOFT_RESET;
        *wait_ms = settle_ms;
        l->stage = 1;
        break;
    case 1:
        a = REC_POWER_CYCLE;
        *wait_ms = settle_ms;
        l->stage = 2;
        break;
    default: {
        a = REC_BACKOFF;
        unsigned ms = REC_BACKOFF_FIRST_MS;
        for (unsigned i = 0; i < l->backoffs && ms < REC_BACKOFF_MAX_MS; i++)
            ms *= 2;
        if (ms > REC_BACKOFF_MAX_MS)
            ms = REC_BACKOFF_MAX_MS;
        *wait_ms = ms;
        if (l->backoffs < 32)
            l->backoffs++;
        l->stage = 0;
        break;
    }
    }
    return a;
}

const char *rec_action_name(enum rec_action a)
{
    switch (a) {
    case REC_SOFT_RESET:
        return "soft reset";
    case REC_POWER_CYCLE:
        return "power cycle";
    default:
        return "back off";
    }
}

const char *drv_ordinal(unsigned n, char *buf, size_t n_buf)
{
    const char *suf = "th";
    if (n % 100 < 11 || n % 100 > 13) {
        if (n % 10 == 1)
            suf = "st";
        else if (n % 10 == 2)
            suf = "nd";
        else if (n % 10 == 3)
            suf = "rd";
    }
    snprintf(buf, n_buf, "%u%s", n, suf);
    return buf;
}

/* ==== shared 27.007 commands ============================================================= */

const struct drv_family *drv_family_for(enum modem_family f)
{
    return f == MODEM_FAMILY_QUECTEL ? &drv_family_quectel : &drv_family_simcom;
}

enum drv_rc drv_rc_of(enum at_result r)
{
    if (r == AT_RES_TIMEOUT)
        return DRV_FAIL;
    if (r == AT_RES_IO)
        return DRV_GONE;
    return DRV_OK;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* First information line starting with prefix (NULL prefix: first non-empty line). */
const char *drv_resp_line(const struct drv *d, const char *prefix)
{
    for (unsigned i = 0; i < d->resp.nlines && i < AT_RESP_MAX_LINES; i++) {
        const char *l = d->resp.lines[i];
        if (!l)
            continue;
        while (*l == ' ')
            l++;
        if (prefix ? starts_with(l, prefix) : *l != '\0')
            return l;
    }
    return NULL;
}

static void urc_reg(void *ctx, const char *line)
{
    struct drv *d = ctx;
    struct at_reg r;
    if (at_parse_reg(line, &r) != 0)
        return;
    switch (r.kind) {
    case AT_REG_CREG:
        d->reg_cs = r.reg;
        break;
    case AT_REG_CGREG:
        d->reg_ps = r.reg;
        break;
    case AT_REG_CEREG:
        d->reg_eps = r.reg;
        break;
    case AT_REG_C5GREG:
        d->reg_5gs = r.reg;
        break;
    }
    drv_merge_reg(d);
}

static void urc_cpin(void *ctx, const char *line)
{
    struct drv *d = ctx;
    enum modem_sim sim;
    if (at_parse_cpin(line, &sim) != 0)
        sim = MODEM_SIM_ERROR; /* "+CPIN: NOT READY" and friends */
    if (sim != d->s->sim) {
        d->s->sim = sim;
        d->sim_changed = true;
    }
}

static void urc_boot(void *ctx, const char *line)
{
    struct drv *d = ctx;
    (void)line;
    d->rebooted = true;
}

static void urc_cusd(void *ctx, const char *line)
{
    struct drv *d = ctx;
    struct at_cusd c;
    if (at_parse_cusd(line, &c) != 0)
        return;
    d->cusd = c;
    d->cusd_done = true;
    d->cusd_pending = false;
}

static void urc_ignore(void *ctx, const char *line)
{
    (void)ctx;
    (void)line;
}

int drv_open(struct drv *d, char *err, size_t errlen)
{
    if (serial_open(d->port, d->baud, &d->ser, err, errlen) != 0)
        return -1;
    d->at = at_engine_new(d->ser);
    if (!d->at) {
        serial_close(d->ser);
        d->ser = NULL;
        snprintf(err, errlen, "port %s: out of memory for the AT engine", d->port);
        return -1;
    }
    at_add_urc(d->at, "+CREG:", false, urc_reg, d);
    at_add_urc(d->at, "+CGREG:", false, urc_reg, d);
    at_add_urc(d->at, "+CEREG:", false, urc_reg, d);
    at_add_urc(d->at, "+C5GREG:", false, urc_reg, d);
    at_add_urc(d->at, "+CPIN:", false, urc_cpin, d);
    at_add_urc(d->at, "+CUSD:", true, urc_cusd, d);
    at_add_urc(d->at, "RDY", false, urc_boot, d);
    at_add_urc(d->at, "*ATREADY", false, urc_boot, d);
    /* Known chatter: routed so it is neither taken as garbage nor as a reply line. */
    static const char *const quiet[] = {
        "SMS DONE", "PB DONE", "+CGEV:",   "+CGNSSPWR:", "+QIND:",   "+QUSIM:",
        "+CTZV:",   "+CTZE:",  "*PSUTTZ:", "DST:",       "+PSUTTZ:", "+CPSMSTATUS:"};
    for (size_t i = 0; i < ARRAY_LEN(quiet); i++)
        at_add_urc(d->at, quiet[i], false, urc_ignore, d);
    if (!d->fam)
        d->fam = &drv_family_simcom;
    return 0;
}

void drv_close(struct drv *d)
{
    if (d->at)
        at_engine_free(d->at);
    if (d->ser)
        serial_close(d->ser);
    d->at = NULL;
    d->ser = NULL;
    d->cusd_pending = false;
}

enum at_result drv_cmd(struct drv *d, const char *cmd, unsigned timeout_ms)
{
    if (!d->at)
        return AT_RES_IO;
    uint64_t t0 = mono_ms();
    enum at_result r = at_command(d->at, cmd, timeout_ms ? timeout_ms : d->timeout_ms, &d->resp);
    if (d->on_exchange)
        d->on_exchange(d->exchange_ctx, cmd, &d->resp, mono_ms() - t0);
    if (r == AT_RES_TIMEOUT || r == AT_RES_IO) {
        str_copy(d->fail_cmd, cmd, sizeof d->fail_cmd);
        d->fail_res = r;
        d->fail_garbage = false;
        if (r == AT_RES_TIMEOUT && d->s)
            d->s->timeouts++;
    }
    return r;
}

/* The reply was OK but the expected line is missing or unparseable: garbage where a reply
 * belongs (a corrupted stream), counted like a timeout. */
static enum drv_rc garbage(struct drv *d, const char *cmd)
{
    str_copy(d->fail_cmd, cmd, sizeof d->fail_cmd);
    d->fail_res = AT_RES_OK;
    d->fail_garbage = true;
    return DRV_FAIL;
}

void drv_round_begin(struct drv *d)
{
    struct at_stats st;
    if (!d->at)
        return;
    at_get_stats(d->at, &st);
    d->garbage_before = st.garbage_lines;
}

uint64_t drv_round_garbage(struct drv *d)
{
    struct at_stats st;
    if (!d->at)
        return 0;
    at_get_stats(d->at, &st);
    return st.garbage_lines - d->garbage_before;
}

enum drv_rc drv_detect(struct drv *d, unsigned tries, unsigned try_ms)
{
    enum at_result r = AT_RES_TIMEOUT;
    for (unsigned i = 0; i < tries; i++) {
        r = drv_cmd(d, "AT", try_ms);
        if (r == AT_RES_OK || r == AT_RES_IO)
            break;
    }
    if (r != AT_RES_OK)
        return r == AT_RES_IO ? DRV_GONE : DRV_FAIL;
    /* Echo off keeps replies short; CMEE=1 gives numeric +CME ERROR codes (SIM absent = 10). */
    enum drv_rc rc;
    if ((rc = drv_rc_of(drv_cmd(d, "ATE0", 0))) != DRV_OK)
        return rc;
    if ((rc = drv_rc_of(drv_cmd(d, "AT+CMEE=1", 0))) != DRV_OK)
        return rc;
    enum modem_family fam = MODEM_FAMILY_UNKNOWN;
    enum at_result cr = drv_cmd(d, "AT+CGMI", 0);
    if ((rc = drv_rc_of(cr)) != DRV_OK)
        return rc;
    const char *l = cr == AT_RES_OK ? drv_resp_line(d, NULL) : NULL;
    if (l) {
        at_parse_ident_text(l, d->s->id.manufacturer, sizeof d->s->id.manufacturer);
        fam = drv_family_from_text(l);
    }
    if (fam == MODEM_FAMILY_UNKNOWN) {
        cr = drv_cmd(d, "ATI", 0);
        if ((rc = drv_rc_of(cr)) != DRV_OK)
            return rc;
        for (unsigned i = 0; cr == AT_RES_OK && i < d->resp.nlines && i < AT_RESP_MAX_LINES; i++) {
            fam = drv_family_from_text(d->resp.lines[i]);
            if (fam != MODEM_FAMILY_UNKNOWN)
                break;
        }
    }
    d->s->family = fam;
    d->fam = drv_family_for(fam); /* unknown: SIMCom command set, the fleet's modem */
    return DRV_OK;
}

/* Run cmd; on OK parse the first line (with prefix, or the first line) with fn. */
typedef int (*text_fn)(const char *line, char *out, size_t n);
static enum drv_rc ident(struct drv *d, const char *cmd, const char *prefix, text_fn fn, char *out,
                         size_t n, bool *got)
{
    enum at_result r = drv_cmd(d, cmd, 0);
    if (got)
        *got = false;
    if (r != AT_RES_OK)
        return drv_rc_of(r);
    for (unsigned i = 0; i < d->resp.nlines && i < AT_RESP_MAX_LINES; i++) {
        const char *l = d->resp.lines[i];
        if (!l || (prefix && !starts_with(l, prefix) && !(l[0] >= '0' && l[0] <= '9')))
            continue;
        if (fn(l, out, n) == 0) {
            if (got)
                *got = true;
            return DRV_OK;
        }
    }
    return DRV_OK;
}

enum drv_rc drv_identity(struct drv *d)
{
    struct modem_identity *id = &d->s->id;
    enum drv_rc rc;
    bool got;
    if (!id->manufacturer[0] &&
        (rc = ident(d, "AT+CGMI", NULL, at_parse_ident_text, id->manufacturer,
                    sizeof id->manufacturer, NULL)) != DRV_OK)
        return rc;
    if ((rc = ident(d, "AT+CGMM", NULL, at_parse_ident_text, id->model, sizeof id->model, NULL)) !=
        DRV_OK)
        return rc;
    if ((rc = ident(d, "AT+CGMR", NULL, at_parse_ident_text, id->revision, sizeof id->revision,
                    NULL)) != DRV_OK)
        return rc;
    if ((rc = ident(d, "AT+CGSN", NULL, at_parse_imei, id->imei, sizeof id->imei, NULL)) != DRV_OK)
        return rc;
    if ((rc = ident(d, d->fam->iccid_cmd, NULL, at_parse_iccid, id->iccid, sizeof id->iccid,
                    &got)) != DRV_OK)
        return rc;
    if (!got && (rc = ident(d, "AT+CCID", NULL, at_parse_iccid, id->iccid, sizeof id->iccid,
                            NULL)) != DRV_OK)
        return rc;
    return ident(d, "AT+CIMI", NULL, at_parse_imsi, id->imsi, sizeof id->imsi, NULL);
}

enum drv_rc drv_sim(struct drv *d)
{
    enum at_result r = drv_cmd(d, "AT+CPIN?", 0);
    enum modem_sim sim = d->s->sim;
    if (r == AT_RES_OK) {
        const char *l = drv_resp_line(d, "+CPIN:");
        if (l && at_parse_cpin(l, &sim) != 0)
            sim = MODEM_SIM_ERROR;
    } else if (r == AT_RES_CME_ERROR) {
        sim = at_sim_from_cme(d->resp.err_code);
    } else if (r == AT_RES_ERROR) {
        sim = MODEM_SIM_ERROR;
    } else {
        return drv_rc_of(r);
    }
    if (sim != d->s->sim) {
        d->s->sim = sim;
        d->sim_changed = true;
    }
    return DRV_OK;
}

enum drv_rc drv_enable_urcs(struct drv *d)
{
    /* n=2: URCs carry lac/ci; unsupported domains answer ERROR, which is fine. */
    static const char *const cmds[] = {"AT+CREG=2", "AT+CGREG=2", "AT+CEREG=2"};
    for (size_t i = 0; i < ARRAY_LEN(cmds); i++) {
        enum drv_rc rc = drv_rc_of(drv_cmd(d, cmds[i], 0));
        if (rc != DRV_OK)
            return rc;
    }
    return DRV_OK;
}

static bool apn_ok(const char *apn)
{
    for (const char *p = apn; *p; p++)
        if ((unsigned char)*p < 0x21 || *p == '"' || *p == '\\' || (unsigned char)*p >= 0x7f)
            return false;
    return apn[0] != '\0';
}

enum drv_rc drv_data_session(struct drv *d, char *msg, size_t n)
{
    char cmd[160];
    size_t off = 0;
    msg[0] = '\0';
    if (d->apn && d->apn[0]) {
        if (!apn_ok(d->apn)) {
            snprintf(msg, n, "APN \"%s\" has characters AT cannot carry, profile left alone",
                     d->apn);
        } else {
            snprintf(cmd, sizeof cmd, "AT+CGDCONT=1,\"IP\",\"%s\"", d->apn);
            enum at_result r = drv_cmd(d, cmd, 0);
            if (r == AT_RES_TIMEOUT || r == AT_RES_IO)
                return drv_rc_of(r);
            str_appendf(msg, n, &off, "APN %s %s; ", d->apn, r == AT_RES_OK ? "set" : "refused");
        }
    }
    size_t used = strlen(msg);
    return d->fam->data_up(d, msg + used, n - used);
}

void drv_apply_cell(struct drv *d, const struct at_cell *c)
{
    struct modem_sample *s = d->s;
    s->net = c->net;
    str_copy(s->band, c->band, sizeof s->band);
    s->tac = c->tac;
    s->cell_id = c->cell_id;
    s->pci = c->pci;
    s->channel = c->channel;
    if (c->mcc[0] && c->mnc[0]) {
        str_copy(s->mcc, c->mcc, sizeof s->mcc);
        str_copy(s->mnc, c->mnc, sizeof s->mnc);
    }
    s->sig.rsrp_dbm = c->rsrp_dbm;
    s->sig.rsrq_db = c->rsrq_db;
    s->sig.sinr_db = c->sinr_db;
    s->sig.rscp_dbm = c->rscp_dbm;
    s->sig.ecio_db = c->ecio_db;
    /* The cell's own RSSI is finer than CSQ's 2 dB steps; keep CSQ's when the cell has none. */
    if (!isnan(c->rssi_dbm))
        s->sig.rssi_dbm = c->rssi_dbm;
    drv_merge_reg(d);
}

enum drv_rc drv_poll_signal(struct drv *d)
{
    enum at_result r = drv_cmd(d, "AT+CSQ", 0);
    if (r != AT_RES_OK && r != AT_RES_ERROR && r != AT_RES_CME_ERROR)
        return drv_rc_of(r);
    if (r == AT_RES_OK) {
        const char *l = drv_resp_line(d, "+CSQ:");
        struct at_csq q;
        if (!l || at_parse_csq(l, &q) != 0)
            return garbage(d, "AT+CSQ");
        d->s->sig.csq = q.rssi;
        d->s->sig.rssi_dbm = q.rssi_dbm;
    }
    return d->fam->poll_cell(d);
}

enum drv_rc drv_poll_reg(struct drv *d)
{
    static const struct {
        const char *cmd, *prefix;
    } q[] = {{"AT+CREG?", "+CREG:"}, {"AT+CGREG?", "+CGREG:"}, {"AT+CEREG?", "+CEREG:"}};
    enum modem_reg *dom[] = {&d->reg_cs, &d->reg_ps, &d->reg_eps};
    for (size_t i = 0; i < ARRAY_LEN(q); i++) {
        enum at_result r = drv_cmd(d, q[i].cmd, 0);
        if (r == AT_RES_TIMEOUT || r == AT_RES_IO)
            return drv_rc_of(r);
        *dom[i] = MODEM_REG_UNKNOWN;
        const char *l = r == AT_RES_OK ? drv_resp_line(d, q[i].prefix) : NULL;
        struct at_reg reg;
        if (l && at_parse_reg(l, &reg) == 0)
            *dom[i] = reg.reg;
    }
    drv_merge_reg(d);
    return DRV_OK;
}

void drv_merge_reg(struct drv *d)
{
    d->s->reg = drv_reg_merge(d->s->net, d->reg_cs, d->reg_ps, d->reg_eps, d->reg_5gs);
}

enum drv_rc drv_poll_operator(struct drv *d)
{
    /* Numeric first (MCC/MNC, unambiguous), then the name; both through +COPS? because the
     * format is a modem-wide setting. */
    enum at_result r = drv_cmd(d, "AT+COPS=3,2", 0);
    if (r == AT_RES_TIMEOUT || r == AT_RES_IO)
        return drv_rc_of(r);
    r = drv_cmd(d, "AT+COPS?", 0);
    if (r == AT_RES_TIMEOUT || r == AT_RES_IO)
        return drv_rc_of(r);
    struct at_cops c;
    const char *l = r == AT_RES_OK ? drv_resp_line(d, "+COPS:") : NULL;
    if (l && at_parse_cops(l, &c) == 0) {
        if (c.format == 2 && c.mcc[0]) {
            str_copy(d->s->mcc, c.mcc, sizeof d->s->mcc);
            str_copy(d->s->mnc, c.mnc, sizeof d->s->mnc);
        } else if (c.format < 0) { /* "+COPS: 0": no operator selected */
            d->s->mcc[0] = d->s->mnc[0] = '\0';
            d->s->oper_name[0] = '\0';
        }
    }
    r = drv_cmd(d, "AT+COPS=3,0", 0);
    if (r == AT_RES_TIMEOUT || r == AT_RES_IO)
        return drv_rc_of(r);
    r = drv_cmd(d, "AT+COPS?", 0);
    if (r == AT_RES_TIMEOUT || r == AT_RES_IO)
        return drv_rc_of(r);
    l = r == AT_RES_OK ? drv_resp_line(d, "+COPS:") : NULL;
    if (l && at_parse_cops(l, &c) == 0) {
        if (c.format == 0 || c.format == 1)
            str_copy(d->s->oper_name, c.oper, sizeof d->s->oper_name);
        else if (c.format < 0)
            d->s->oper_name[0] = '\0';
    }
    return DRV_OK;
}

enum drv_rc drv_steps(struct drv *d, const struct drv_step *steps, size_t n, const char **failed)
{
    for (size_t i = 0; i < n; i++) {
        enum drv_rc rc = steps[i].run(d);
        if (rc != DRV_OK) {
            if (failed)
                *failed = steps[i].name;
            return rc;
        }
    }
    return DRV_OK;
}

static bool ussd_code_ok(const char *code)
{
    for (const char *p = code; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '*' || *p == '#' || *p == '+'))
            return false;
    return code[0] != '\0' && strlen(code) < 24;
}

enum drv_rc drv_ussd_send(struct drv *d, const char *code, unsigned wait_ms)
{
    char cmd[64];
    d->cusd_pending = false;
    d->cusd_done = false;
    if (!ussd_code_ok(code))
        return DRV_OK; /* refused: cusd_pending stays false */
    /* dcs 15: GSM-7 default alphabet, language unspecified (what operators expect). */
    snprintf(cmd, sizeof cmd, "AT+CUSD=1,\"%s\",15", code);
    enum at_result r = drv_cmd(d, cmd, 0);
    if (r == AT_RES_TIMEOUT || r == AT_RES_IO)
        return drv_rc_of(r);
    if (r == AT_RES_OK && !d->cusd_done) {
        d->cusd_pending = true;
        d->cusd_deadline = mono_ms() + wait_ms;
    }
    return DRV_OK;
}

bool drv_ussd_store(struct drv *d)
{
    struct modem_balance *b = &d->s->balance;
    d->cusd_done = false;
    if (!d->cusd.text[0] && d->cusd.m >= 2)
        return false;
    b->valid = true;
    b->mono_ms = mono_ms();
    str_copy(b->raw, d->cusd.text, sizeof b->raw);
    double amount;
    if (ussd_find_amount(d->cusd.text, &amount) == 0) {
        b->amount_valid = true;
        b->amount = amount;
    } else {
        b->amount_valid = false;
        b->amount = NAN;
    }
    /* m=1: the network waits for more input; close the session so the next query starts
     * clean (errors are harmless). */
    if (d->cusd.m == 1)
        drv_cmd(d, "AT+CUSD=2", 0);
    return true;
}

/* ==== the per-modem thread =============================================================== */

enum { REQ_RESET = 1u << 0, REQ_BALANCE = 1u << 1 };

/* How long a USSD answer may take to arrive after AT+CUSD's OK. */
#define USSD_WAIT_MS 20000u
/* DETECT: this many "AT" tries of DETECT_TRY_MS each. */
#define DETECT_TRIES  3u
#define DETECT_TRY_MS 1000u
/* A round with this many garbage lines counts as failed even if the replies parsed. */
#define GARBAGE_ROUND_LINES 16u

struct modem {
    struct modem_config cfg;
    struct modem_callbacks cb;
    pthread_t thread;
    bool stop;      /* written by modem_stop, read atomically by the thread */
    bool slow_poll; /* written by modem_set_slow_poll, read atomically by the thread */

    pthread_mutex_t mu; /* guards latest and req only; never held across I/O */
    struct modem_sample latest;
    unsigned req;

    /* thread-owned from here on */
    struct drv d;
    struct modem_sample s;
    enum modem_state st;
    struct rec_ladder ladder;
    unsigned fails;              /* consecutive failed poll rounds */
    enum modem_reg reported_reg; /* registration as last reported by an event */
    char reason[200];            /* why RECOVER was entered */
    bool was_absent_vanish;      /* ABSENT because the port went away (emit RETURNED on return) */
    unsigned boot_window_ms;     /* next DETECT keeps trying this long (modem booting) */
};

static void on_exchange(void *ctx, const char *cmd, const struct at_response *r, uint64_t took_ms)
{
    struct modem *m = ctx;
    if (!m->cb.exchange)
        return;
    struct modem_exchange x = {.wall_ms = wall_ms(), .took_ms = (uint32_t)took_ms};
    str_copy(x.cmd, cmd, sizeof x.cmd);
    if (r->result == AT_RES_CME_ERROR || r->result == AT_RES_CMS_ERROR)
        str_copy(x.result, r->err_text[0] ? r->err_text : at_result_name(r->result),
                 sizeof x.result);
    else
        str_copy(x.result, at_result_name(r->result), sizeof x.result);
    size_t off = 0;
    for (unsigned i = 0; i < r->nlines; i++)
        str_appendf(x.reply, sizeof x.reply, &off, "%s%s", i ? " | " : "", r->lines[i]);
    m->cb.exchange(m->cb.ctx, m->cfg.link, &x);
}

/* How long a modem may take to answer AT after a reset, a power cycle or reappearing on USB.
 * DETECT polls AT once a second within it, so a fast boot is seen at once and a slow one is
 * not mistaken for a hang. */
#define BOOT_WINDOW_MS 30000u

static bool stopping(const struct modem *m)
{
    return __atomic_load_n(&m->stop, __ATOMIC_ACQUIRE);
}

static bool wait_ms(struct modem *m, unsigned ms)
{
    return sleep_ms_unless(&m->stop, ms);
}

static void event(struct modem *m, enum modem_event_kind k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void event(struct modem *m, enum modem_event_kind k, const char *fmt, ...)
{
    char text[320];
    size_t off = 0;
    str_appendf(text, sizeof text, &off, "%s: ", m->cfg.link);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + off, sizeof text - off, fmt, ap);
    va_end(ap);
    LOG_I(SUBSYS, "%s [%s]", text, modem_event_name(k));
    if (m->cb.event)
        m->cb.event(m->cb.ctx, m->cfg.link, k, text);
}

static void publish(struct modem *m)
{
    m->s.state = m->st;
    m->s.mono_ms = mono_ms();
    pthread_mutex_lock(&m->mu);
    m->latest = m->s;
    pthread_mutex_unlock(&m->mu);
    if (m->cb.sample)
        m->cb.sample(m->cb.ctx, &m->s);
}

static unsigned take_requests(struct modem *m, unsigned mask)
{
    pthread_mutex_lock(&m->mu);
    unsigned r = m->req & mask;
    m->req &= ~mask;
    pthread_mutex_unlock(&m->mu);
    return r;
}

/* Radio facts are void once the modem is gone or reset; identity stays (same modem, same
 * link) until re-read. */
static void clear_radio(struct modem *m)
{
    struct modem_sample *s = &m->s;
    s->reg = MODEM_REG_UNKNOWN;
    s->net = MODEM_NET_NONE;
    s->band[0] = '\0';
    s->tac = -1;
    s->cell_id = -1;
    s->channel = -1;
    s->pci = -1;
    s->sig.csq = -1;
    s->sig.rssi_dbm = s->sig.rsrp_dbm = s->sig.rsrq_db = s->sig.sinr_db = NAN;
    s->sig.ecio_db = s->sig.rscp_dbm = NAN;
    s->gnss.valid = false;
    s->gnss.fix = false;
    /* after recovery "registered" is reported afresh */
    m->reported_reg = MODEM_REG_UNKNOWN;
    m->d.reg_cs = m->d.reg_ps = m->d.reg_eps = m->d.reg_5gs = MODEM_REG_UNKNOWN;
}

static void set_state(struct modem *m, enum modem_state st)
{
    if (m->st != st)
        LOG_D(SUBSYS, "%s: %s -> %s", m->cfg.link, modem_state_name(m->st), modem_state_name(st));
    m->st = st;
}

static void describe_failure(struct modem *m, char *buf, size_t n)
{
    const struct drv *d = &m->d;
    if (d->fail_garbage)
        snprintf(buf, n, "garbage instead of a reply to %s", d->fail_cmd);
    else if (d->fail_res == AT_RES_IO)
        snprintf(buf, n, "port error during %s", d->fail_cmd);
    else
        snprintf(buf, n, "no reply to %s for %u ms", d->fail_cmd[0] ? d->fail_cmd : "AT",
                 m->cfg.cmd_timeout_ms);
}

/* The port reported an error: vanished (ABSENT, link down) or a glitch (re-detect). */
static void port_gone(struct modem *m)
{
    drv_close(&m->d);
    clear_radio(m);
    if (!serial_present(m->cfg.port)) {
        m->s.vanished++;
        m->was_absent_vanish = true;
        set_state(m, MODEM_ST_ABSENT);
        event(m, MODEM_EV_VANISHED, "port %s vanished, link down", m->cfg.port);
    } else {
        set_state(m, MODEM_ST_DETECT);
    }
    publish(m);
}

static void enter_recover(struct modem *m, const char *reason)
{
    str_copy(m->reason, reason, sizeof m->reason);
    set_state(m, MODEM_ST_RECOVER);
}

static void st_absent(struct modem *m)
{
    publish(m);
    while (!stopping(m)) {
        alive_beat("modem", m->cfg.link);
        if (serial_present(m->cfg.port)) {
            if (m->was_absent_vanish)
                event(m, MODEM_EV_RETURNED, "port %s is back, re-detecting", m->cfg.port);
            m->was_absent_vanish = false;
            m->boot_window_ms = BOOT_WINDOW_MS; /* a port that just appeared is booting */
            set_state(m, MODEM_ST_DETECT);
            return;
        }
        if (wait_ms(m, 1000))
            return;
    }
}

static void st_detect(struct modem *m)
{
    char err[256];
    struct drv *d = &m->d;
    if (!d->at) {
        if (drv_open(d, err, sizeof err) == 0) {
            at_set_cancel(d->at, &m->stop); /* modem_stop must not wait out a command */
        } else {
            if (!serial_present(m->cfg.port)) {
                set_state(m, MODEM_ST_ABSENT);
                return;
            }
            enter_recover(m, err);
            return;
        }
    }
    unsigned tries = DETECT_TRIES;
    if (m->boot_window_ms) {
        tries = m->boot_window_ms / DETECT_TRY_MS;
        m->boot_window_ms = 0;
    }
    enum drv_rc rc = drv_detect(d, tries, DETECT_TRY_MS);
    if (stopping(m))
        return;
    if (rc == DRV_GONE) {
        port_gone(m);
        return;
    }
    if (rc != DRV_OK) {
        char why[200];
        if (d->fail_cmd[0] && strcmp(d->fail_cmd, "AT") != 0)
            describe_failure(m, why, sizeof why);
        else
            snprintf(why, sizeof why, "no reply to AT on %s within %u s", m->cfg.port,
                     tries * DETECT_TRY_MS / 1000);
        enter_recover(m, why);
        return;
    }
    event(m, MODEM_EV_DETECTED, "%s answered AT on %s (%s command set)",
          m->s.id.manufacturer[0] ? m->s.id.manufacturer : "modem", m->cfg.port, d->fam->name);
    set_state(m, MODEM_ST_INIT);
}

static void check_sim_event(struct modem *m)
{
    if (m->d.sim_changed) {
        m->d.sim_changed = false;
        event(m, MODEM_EV_SIM, "SIM %s", modem_sim_name(m->s.sim));
    }
}

/* A SIM that became ready while polling (PIN entered, SIM inserted): ICCID and IMSI were not
 * readable at INIT, read them now. */
static enum drv_rc sim_became_ready(struct modem *m)
{
    if (m->s.sim != MODEM_SIM_READY || m->s.id.imsi[0])
        return DRV_OK;
    return drv_identity(&m->d);
}

/* Registration changes come from poll rounds and from URCs between them: compare with what
 * was last reported rather than with the start of a round. */
static void check_reg_event(struct modem *m)
{
    enum modem_reg before = m->reported_reg, now = m->s.reg;
    bool was = before == MODEM_REG_HOME || before == MODEM_REG_ROAMING;
    bool is = now == MODEM_REG_HOME || now == MODEM_REG_ROAMING;
    m->reported_reg = now;
    if (is && (!was || before != now))
        event(m, MODEM_EV_REGISTERED, "registered (%s) on %s %s-%s, %s", modem_reg_name(now),
              m->s.oper_name[0] ? m->s.oper_name : "?", m->s.mcc, m->s.mnc,
              modem_net_name(m->s.net));
    else if (was && !is)
        event(m, MODEM_EV_UNREGISTERED, "registration lost (%s)", modem_reg_name(now));
}

static void st_init(struct modem *m)
{
    struct drv *d = &m->d;
    enum drv_rc rc;
    char msg[200] = "";
    const char *step = "identity";
    /* Re-read from scratch (the SIM or even the modem may have been swapped); CGMI was just
     * read by DETECT. */
    struct modem_identity *id = &m->s.id;
    id->model[0] = id->revision[0] = id->imei[0] = id->iccid[0] = id->imsi[0] = '\0';
    /* Signal and serving cell before registration: the radio type decides which registration
     * domains count. This is also where a SIM7600's first-CPSI ERROR is absorbed. */
    static const struct drv_step init_steps[] = {
        {"identity", drv_identity},     {"SIM", drv_sim},
        {"URC setup", drv_enable_urcs}, {"signal", drv_poll_signal},
        {"registration", drv_poll_reg}, {"operator", drv_poll_operator},
    };
    if ((rc = drv_steps(d, init_steps, ARRAY_LEN(init_steps), &step)) != DRV_OK)
        goto fail;
    step = "data session";
    if ((rc = drv_data_session(d, msg, sizeof msg)) != DRV_OK)
        goto fail;
    if (m->cfg.gnss) {
        step = "GNSS";
        if ((rc = d->fam->gnss_on(d)) != DRV_OK)
            goto fail;
    }
    /* The net interface through the USB topology (stable across boots); the configured name
     * when the port is not on USB (simulator pty) or sysfs says nothing. */
    struct usb_port_info ui;
    char uerr[200];
    if (usb_match_port(m->cfg.port, m->cfg.sysfs_root, &ui, uerr, sizeof uerr) == 0 && ui.nnet > 0)
        str_copy(m->s.netif, ui.net[0], sizeof m->s.netif);
    else
        str_copy(m->s.netif, m->cfg.netif, sizeof m->s.netif);
    d->rebooted = false;
    rec_reset(&m->ladder);
    m->fails = 0;
    check_sim_event(m);
    event(m, MODEM_EV_READY, "%s %s ready (IMEI %s, SIM %s%s%s), polling",
          m->s.id.manufacturer[0] ? m->s.id.manufacturer : d->fam->name,
          m->s.id.model[0] ? m->s.id.model : "?", m->s.id.imei[0] ? m->s.id.imei : "?",
          modem_sim_name(m->s.sim), msg[0] ? ", " : "", msg);
    check_reg_event(m);
    set_state(m, MODEM_ST_POLL);
    return;
fail:
    if (rc == DRV_GONE) {
        port_gone(m);
        return;
    }
    char why[200], full[260];
    describe_failure(m, why, sizeof why);
    snprintf(full, sizeof full, "%s during init (%s)", why, step);
    enter_recover(m, full);
}

/* One poll round: what is due. Returns DRV_OK, DRV_FAIL (timeout/garbage) or DRV_GONE. */
static enum drv_rc poll_round(struct modem *m, uint64_t now, uint64_t *next_reg,
                              uint64_t *next_gnss, uint64_t *next_balance, bool balance_now)
{
    struct drv *d = &m->d;
    enum drv_rc rc;
    drv_round_begin(d);
    if ((rc = drv_poll_signal(d)) != DRV_OK)
        return rc;
    if (now >= *next_reg) {
        *next_reg = now + m->cfg.reg_period_ms;
        if ((rc = drv_poll_reg(d)) != DRV_OK)
            return rc;
        if ((rc = drv_poll_operator(d)) != DRV_OK)
            return rc;
        if (!d->data_ok && (m->s.reg == MODEM_REG_HOME || m->s.reg == MODEM_REG_ROAMING)) {
            char msg[200];
            if ((rc = drv_data_session(d, msg, sizeof msg)) != DRV_OK)
                return rc;
            if (d->data_ok)
                LOG_I(SUBSYS, "%s: %s", m->cfg.link, msg);
        }
    }
    if (m->cfg.gnss && now >= *next_gnss) {
        *next_gnss = now + 1000;
        if ((rc = d->fam->poll_gnss(d)) != DRV_OK)
            return rc;
    }
    if (m->cfg.balance_ussd[0] && !d->cusd_pending && (balance_now || now >= *next_balance)) {
        *next_balance = now + (uint64_t)m->cfg.balance_period_s * 1000u;
        if ((rc = drv_ussd_send(d, m->cfg.balance_ussd, USSD_WAIT_MS)) != DRV_OK)
            return rc;
        if (!d->cusd_pending && !d->cusd_done)
            LOG_W(SUBSYS, "%s: balance query %s refused by the modem", m->cfg.link,
                  m->cfg.balance_ussd);
    }
    if (drv_round_garbage(d) >= GARBAGE_ROUND_LINES) {
        str_copy(d->fail_cmd, "the poll round", sizeof d->fail_cmd);
        d->fail_garbage = true;
        return DRV_FAIL;
    }
    return DRV_OK;
}

static void check_balance(struct modem *m)
{
    struct drv *d = &m->d;
    if (d->cusd_done) {
        if (!drv_ussd_store(d)) {
            LOG_W(SUBSYS, "%s: USSD %s answered without text (+CUSD: %d)", m->cfg.link,
                  m->cfg.balance_ussd, d->cusd.m);
            return;
        }
        const struct modem_balance *b = &m->s.balance;
        if (b->amount_valid)
            event(m, MODEM_EV_BALANCE, "balance %.2f (\"%s\")", b->amount, b->raw);
        else
            event(m, MODEM_EV_BALANCE, "USSD answer without an amount (\"%s\")", b->raw);
    } else if (d->cusd_pending && mono_ms() >= d->cusd_deadline) {
        d->cusd_pending = false;
        LOG_W(SUBSYS, "%s: no USSD answer to %s within %u s", m->cfg.link, m->cfg.balance_ussd,
              USSD_WAIT_MS / 1000);
    }
}

static void st_poll(struct modem *m)
{
    struct drv *d = &m->d;
    uint64_t now = mono_ms();
    uint64_t next_round = now, next_reg = now + m->cfg.reg_period_ms, next_gnss = now;
    uint64_t next_balance = now; /* first balance right after init, then every period */
    while (!stopping(m)) {
        alive_beat("modem", m->cfg.link);
        unsigned req = take_requests(m, REQ_RESET | REQ_BALANCE);
        if (req & REQ_RESET) {
            rec_reset(&m->ladder);
            enter_recover(m, "reset requested");
            return;
        }
        now = mono_ms();
        enum drv_rc rc =
            poll_round(m, now, &next_reg, &next_gnss, &next_balance, (req & REQ_BALANCE) != 0);
        if (rc == DRV_GONE) {
            port_gone(m);
            return;
        }
        bool round_ok = rc == DRV_OK;
        if (rc == DRV_FAIL) {
            char why[200], ord[16];
            m->fails++;
            describe_failure(m, why, sizeof why);
            snprintf(m->reason, sizeof m->reason, "%s (%s in a row)", why,
                     drv_ordinal(m->fails, ord, sizeof ord));
            if (m->fails >= m->cfg.hung_after) {
                set_state(m, MODEM_ST_RECOVER);
                return;
            }
            event(m, MODEM_EV_TIMEOUT, "%s", m->reason);
        } else {
            m->fails = 0;
        }
        bool sim_event = d->sim_changed;
        check_sim_event(m);
        if (sim_event && round_ok && sim_became_ready(m) == DRV_GONE) {
            port_gone(m);
            return;
        }
        check_reg_event(m);
        check_balance(m);
        if (d->rebooted) {
            /* RDY / *ATREADY: it restarted by itself; its settings are gone. */
            d->rebooted = false;
            event(m, MODEM_EV_TIMEOUT, "modem restarted by itself, re-initialising");
            clear_radio(m);
            set_state(m, MODEM_ST_DETECT);
            publish(m);
            return;
        }
        /* A failed round has nothing new: the last sample's mono_ms shows its age. */
        if (round_ok)
            publish(m);
        /* Fixed cadence; a slow round is not made up for by a burst. */
        bool slow = __atomic_load_n(&m->slow_poll, __ATOMIC_ACQUIRE); /* thermal protection */
        next_round += m->cfg.signal_period_ms * (slow ? 5u : 1u);
        now = mono_ms();
        if (next_round < now)
            next_round = now;
        while (!stopping(m) && (now = mono_ms()) < next_round) {
            uint64_t left = next_round - now;
            if (at_pump(d->at, left > 100 ? 100 : (unsigned)left) < 0) {
                port_gone(m);
                return;
            }
            check_balance(m);
            pthread_mutex_lock(&m->mu);
            bool req_pending = m->req != 0;
            pthread_mutex_unlock(&m->mu);
            if (req_pending || d->rebooted)
                break;
        }
    }
}

static void st_recover(struct modem *m)
{
    struct drv *d = &m->d;
    unsigned wait = 0;
    enum rec_action a =
        rec_next(&m->ladder, m->cb.power_cycle != NULL, m->cfg.recover_settle_ms, &wait);
    clear_radio(m);
    publish(m);
    switch (a) {
    case REC_SOFT_RESET: {
        const char *cmd = d->fam ? d->fam->reset_cmd : drv_family_simcom.reset_cmd;
        m->s.soft_resets++;
        event(m, MODEM_EV_SOFT_RESET, "%s, soft reset with %s", m->reason, cmd);
        enum at_result r = AT_RES_TIMEOUT;
        if (d->at) {
            unsigned t = m->cfg.cmd_timeout_ms < 2000 ? m->cfg.cmd_timeout_ms : 2000;
            r = drv_cmd(d, cmd, t);
        }
        if (r != AT_RES_OK && m->cb.power_cycle && !stopping(m)) {
            /* A modem that does not even acknowledge the reset is hung: waiting for it to
             * boot would only waste the boot window. Cut its power now. */
            drv_close(d);
            size_t off = strlen(m->reason);
            str_appendf(m->reason, sizeof m->reason, &off, "; no answer to %s", cmd);
            set_state(m, MODEM_ST_RECOVER);
            return;
        }
        m->boot_window_ms = BOOT_WINDOW_MS;
        break;
    }
    case REC_POWER_CYCLE: {
        m->s.power_cycles++;
        drv_close(d);
        int prc = m->cb.power_cycle(m->cb.ctx, m->cfg.link);
        event(m, MODEM_EV_POWER_CYCLE, "%s, still silent after the soft reset: %s", m->reason,
              prc == 0 ? "power-cycled the slot" : "power-cycle hook failed");
        m->boot_window_ms = BOOT_WINDOW_MS;
        break;
    }
    case REC_BACKOFF:
        event(m, MODEM_EV_TIMEOUT, "%s, still silent after %s; next try in %u s", m->reason,
              m->cb.power_cycle ? "reset and power cycle" : "a soft reset", wait / 1000);
        break;
    }
    /* A reset modem re-enumerates on USB: reopen from scratch after the settle time. */
    drv_close(d);
    if (wait_ms(m, wait))
        return;
    if (!serial_present(m->cfg.port)) {
        m->was_absent_vanish = true; /* expected after a reset: RETURNED when it is back */
        set_state(m, MODEM_ST_ABSENT);
        return;
    }
    set_state(m, MODEM_ST_DETECT);
}

static void *modem_thread(void *arg)
{
    struct modem *m = arg;
    char name[16];
    snprintf(name, sizeof name, "modem-%s", m->cfg.link);
    pthread_setname_np(pthread_self(), name);

    set_state(m, serial_present(m->cfg.port) ? MODEM_ST_DETECT : MODEM_ST_ABSENT);
    while (!stopping(m)) {
        alive_beat("modem", m->cfg.link);
        if (take_requests(m, REQ_RESET) && m->st != MODEM_ST_ABSENT) {
            rec_reset(&m->ladder);
            enter_recover(m, "reset requested");
        }
        switch (m->st) {
        case MODEM_ST_ABSENT:
            st_absent(m);
            break;
        case MODEM_ST_DETECT:
            st_detect(m);
            break;
        case MODEM_ST_INIT:
            st_init(m);
            break;
        case MODEM_ST_POLL:
            st_poll(m);
            break;
        case MODEM_ST_RECOVER:
            st_recover(m);
            break;
        }
        if (m->st == MODEM_ST_DETECT || m->st == MODEM_ST_INIT)
            publish(m); /* state visible while it works */
    }
    drv_close(&m->d);
    return NULL;
}

int modem_start(const struct modem_config *cfg, const struct modem_callbacks *cb,
                struct modem **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!cfg || !cfg->port[0] || !cfg->link[0]) {
        snprintf(err, errlen, "modem: config without link name or port");
        return -1;
    }
    struct modem *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "modem %s: out of memory", cfg->link);
        return -1;
    }
    m->cfg = *cfg;
    modem_config_defaults(&m->cfg);
    if (cb)
        m->cb = *cb;
    modem_sample_init(&m->s);
    str_copy(m->s.link, m->cfg.link, sizeof m->s.link);
    str_copy(m->s.port, m->cfg.port, sizeof m->s.port);
    str_copy(m->s.netif, m->cfg.netif, sizeof m->s.netif);
    m->latest = m->s;
    m->d.link = m->cfg.link;
    m->d.port = m->cfg.port;
    m->d.baud = m->cfg.baud;
    m->d.timeout_ms = m->cfg.cmd_timeout_ms;
    m->d.apn = m->cfg.apn;
    m->d.s = &m->s;
    m->d.on_exchange = on_exchange;
    m->d.exchange_ctx = m;
    m->d.fam = &drv_family_simcom;
    rec_reset(&m->ladder);
    pthread_mutex_init(&m->mu, NULL);
    int e = pthread_create(&m->thread, NULL, modem_thread, m);
    if (e != 0) {
        pthread_mutex_destroy(&m->mu);
        free(m);
        snprintf(err, errlen, "modem %s: cannot start thread: %s", cfg->link, strerror(e));
        return -1;
    }
    *out = m;
    return 0;
}

void modem_stop(struct modem *m)
{
    if (!m)
        return;
    __atomic_store_n(&m->stop, true, __ATOMIC_RELEASE);
    pthread_join(m->thread, NULL);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static int request(struct modem *m, unsigned bit)
{
    if (!m)
        return -1;
    pthread_mutex_lock(&m->mu);
    m->req |= bit;
    pthread_mutex_unlock(&m->mu);
    return 0;
}

int modem_request_reset(struct modem *m)
{
    return request(m, REQ_RESET);
}

int modem_request_balance(struct modem *m)
{
    return request(m, REQ_BALANCE);
}

void modem_set_slow_poll(struct modem *m, bool slow)
{
    if (m)
        __atomic_store_n(&m->slow_poll, slow, __ATOMIC_RELEASE);
}

void modem_get_sample(struct modem *m, struct modem_sample *out)
{
    pthread_mutex_lock(&m->mu);
    *out = m->latest;
    pthread_mutex_unlock(&m->mu);
}
