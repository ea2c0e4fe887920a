/* quectel: the Quectel EC25/EG25 command set: ICCID via AT+QCCID, serving cell via
 * AT+QENG="servingcell", data via AT+QNETDEVCTL (ECM/RNDIS) or AT+CGACT (QMI), GNSS via
 * AT+QGPS / AT+QGPSLOC=2, soft reset via AT+CFUN=1,1. The 27.007 parts are in modem.c. */
#include "modem/driver.h"
#include "common/common.h"

#include <stdio.h>
#include <string.h>

static enum drv_rc quectel_data_up(struct drv *d, char *msg, size_t n)
{
    /* AT+QCFG="usbnet" says how the USB net interface works: 1 = ECM, 3 = RNDIS (the modem
     * routes; AT+QNETDEVCTL=1,1,1 dials context 1 and reports by URC), 0 = QMI/RmNet (the host
     * dials over QMI; here only the PDP context is activated with AT+CGACT=1,1). */
    enum at_result r = drv_cmd(d, "AT+QCFG=\"usbnet\"", 0);
    if (r == AT_RES_TIMEOUT || r == AT_RES_IO)
        return drv_rc_of(r);
    const char *l = r == AT_RES_OK ? drv_resp_line(d, "+QCFG:") : NULL;
    bool ecm = l && (strstr(l, ",1") || strstr(l, ",3"));
    if (ecm) {
        r = drv_cmd(d, "AT+QNETDEVCTL=1,1,1", d->timeout_ms * 3);
        if (r == AT_RES_TIMEOUT || r == AT_RES_IO)
            return drv_rc_of(r);
        if (r == AT_RES_OK) {
            snprintf(msg, n, "data call up (QNETDEVCTL)");
            d->data_ok = true;
            return DRV_OK;
        }
    }
    r = drv_cmd(d, "AT+CGACT=1,1", d->timeout_ms * 3);
    if (r == AT_RES_TIMEOUT || r == AT_RES_IO)
        return drv_rc_of(r);
    snprintf(msg, n,
             r == AT_RES_OK ? "PDP context 1 active (CGACT)"
                            : "data call not up yet (CGACT refused), retried later");
    d->data_ok = r == AT_RES_OK;
    return DRV_OK;
}

static enum drv_rc quectel_gnss_on(struct drv *d)
{
    /* +CME ERROR: 504 = session already running: harmless. */
    return drv_rc_of(drv_cmd(d, "AT+QGPS=1", 0));
}

static enum drv_rc quectel_poll_cell(struct drv *d)
{
    enum at_result r = drv_cmd(d, "AT+QENG=\"servingcell\"", 0);
    if (r != AT_RES_OK)
        return drv_rc_of(r);
    const char *l = drv_resp_line(d, "+QENG:");
    if (!l) {
        str_copy(d->fail_cmd, "AT+QENG=\"servingcell\"", sizeof d->fail_cmd);
        d->fail_res = AT_RES_OK;
        d->fail_garbage = true;
        return DRV_FAIL;
    }
    /* EN-DC (NR5G-NSA) answers several lines: "servingcell" state, the LTE anchor, then the
     * NR leg. The anchor gives the cell identity and signal; an NR leg makes it nr5g-nsa. */
    struct at_cell c;
    bool have = false;
    for (unsigned i = 0; i < d->resp.nlines && i < AT_RESP_MAX_LINES; i++) {
        const char *li = d->resp.lines[i];
        if (!li || at_parse_qeng_serving(li, &c) != 0)
            continue;
        if (!have) {
            drv_apply_cell(d, &c);
            have = true;
        } else if (c.net == MODEM_NET_NR5G_NSA) {
            d->s->net = MODEM_NET_NR5G_NSA;
            drv_merge_reg(d);
        }
    }
    if (!have)
        LOG_D("modem", "%s: unparsed QENG reply: %.120s", d->link, l);
    return DRV_OK;
}

static enum drv_rc quectel_poll_gnss(struct drv *d)
{
    enum at_result r = drv_cmd(d, "AT+QGPSLOC=2", 0);
    if (r == AT_RES_TIMEOUT || r == AT_RES_IO)
        return drv_rc_of(r);
    const char *l = r == AT_RES_OK ? drv_resp_line(d, "+QGPSLOC:") : NULL;
    struct modem_gnss g = d->s->gnss;
    if (l && at_parse_qgpsloc(l, &g) == 0) {
        g.valid = true;
        g.mono_ms = mono_ms();
        d->s->gnss = g;
    } else if (r == AT_RES_CME_ERROR && d->resp.err_code == 516) {
        /* 516 = "not fixed now": the engine runs, no fix. */
        d->s->gnss.valid = true;
        d->s->gnss.fix = false;
        d->s->gnss.mono_ms = mono_ms();
    } else {
        d->s->gnss.valid = false;
        d->s->gnss.fix = false;
    }
    return DRV_OK;
}

const struct drv_family drv_family_quectel = {
    .family = MODEM_FAMILY_QUECTEL,
    .name = "Quectel",
    .iccid_cmd = "AT+QCCID",
    .reset_cmd = "AT+CFUN=1,1",
    .data_up = quectel_data_up,
    .gnss_on = quectel_gnss_on,
    .poll_cell = quectel_poll_cell,
    .poll_gnss = quectel_poll_gnss,
};
