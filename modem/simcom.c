/* simcom: the SIMCom family (SIM7100/SIM7600/A7600, SIM7000-class) command set: ICCID via
 * AT+CICCID, serving cell via AT+CPSI?, data via AT$QCRMCALL (AT+CGACT fallback), GNSS via
 * AT+CGPS / AT+CGPSINFO, soft reset via AT+CRESET. The shared 27.007 parts are in modem.c. */
#include "modem/driver.h"
#include "common/common.h"

#include <stdio.h>
#include <string.h>

static enum drv_rc simcom_data_up(struct drv *d, char *msg, size_t n)
{
    /* The USB net interface (RNDIS/ECM on PID 9011, RmNet/QMI on 9001) carries traffic once a
     * modem-side data call is up. On Qualcomm-based SIM7100/SIM7600 that call is
     * AT$QCRMCALL=1,1 (instance 1, IPv4); $QCRMCALL? tells whether it is already up. ASR-based
     * A7600 and SIM7000 do not know $QCRMCALL: they auto-connect the USB interface once the
     * PDP context is active, so AT+CGACT=1,1 is the fallback. */
    enum at_result r = drv_cmd(d, "AT$QCRMCALL?", 0);
    if (r == AT_RES_TIMEOUT || r == AT_RES_IO)
        return drv_rc_of(r);
    if (r == AT_RES_OK && drv_resp_line(d, "$QCRMCALL: 1")) {
        snprintf(msg, n, "data call already up ($QCRMCALL)");
        d->data_ok = true;
        return DRV_OK;
    }
    if (r == AT_RES_OK) {
        /* The call waits for the network: allow it more than a plain command. */
        r = drv_cmd(d, "AT$QCRMCALL=1,1", d->timeout_ms * 3);
        if (r == AT_RES_TIMEOUT || r == AT_RES_IO)
            return drv_rc_of(r);
        if (r == AT_RES_OK) {
            snprintf(msg, n, "data call up ($QCRMCALL)");
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

static enum drv_rc simcom_gnss_on(struct drv *d)
{
    enum at_result r = drv_cmd(d, "AT+CGPS?", 0);
    if (r == AT_RES_TIMEOUT || r == AT_RES_IO)
        return drv_rc_of(r);
    if (r == AT_RES_OK && drv_resp_line(d, "+CGPS: 1"))
        return DRV_OK;
    /* ERROR here usually means "already running": harmless. */
    return drv_rc_of(drv_cmd(d, "AT+CGPS=1", 0));
}

static enum drv_rc simcom_poll_cell(struct drv *d)
{
    enum at_result r = AT_RES_ERROR;
    /* A SIM7600 may answer ERROR to its first AT+CPSI? after boot: one retry before giving up
     * on this round. */
    for (int i = 0; i < 2; i++) {
        r = drv_cmd(d, "AT+CPSI?", 0);
        if (r == AT_RES_OK || r == AT_RES_TIMEOUT || r == AT_RES_IO)
            break;
    }
    if (r == AT_RES_TIMEOUT || r == AT_RES_IO)
        return drv_rc_of(r);
    if (r != AT_RES_OK) {
        d->cpsi_errors++;
        /* Still alive: at least the radio type from AT+CNSMOD?. */
        r = drv_cmd(d, "AT+CNSMOD?", 0);
        if (r == AT_RES_TIMEOUT || r == AT_RES_IO)
            return drv_rc_of(r);
        const char *l = r == AT_RES_OK ? drv_resp_line(d, "+CNSMOD:") : NULL;
        enum modem_net net;
        if (l && at_parse_cnsmod(l, &net) == 0) {
            d->s->net = net;
            drv_merge_reg(d);
        }
        return DRV_OK;
    }
    d->cpsi_errors = 0;
    const char *l = drv_resp_line(d, "+CPSI:");
    if (!l) {
        str_copy(d->fail_cmd, "AT+CPSI?", sizeof d->fail_cmd);
        d->fail_res = AT_RES_OK;
        d->fail_garbage = true;
        return DRV_FAIL;
    }
    struct at_cell c;
    if (at_parse_cpsi(l, &c) == 0)
        drv_apply_cell(d, &c);
    else
        LOG_D("modem", "%s: unparsed CPSI line: %.120s", d->link, l);
    return DRV_OK;
}

static enum drv_rc simcom_poll_gnss(struct drv *d)
{
    enum at_result r = drv_cmd(d, "AT+CGPSINFO", 0);
    if (r == AT_RES_TIMEOUT || r == AT_RES_IO)
        return drv_rc_of(r);
    const char *l = r == AT_RES_OK ? drv_resp_line(d, "+CGPSINFO:") : NULL;
    struct modem_gnss g = d->s->gnss;
    if (l && at_parse_cgpsinfo(l, &g) == 0) {
        g.valid = true;
        g.mono_ms = mono_ms();
        d->s->gnss = g;
    } else {
        d->s->gnss.valid = false;
        d->s->gnss.fix = false;
    }
    return DRV_OK;
}

const struct drv_family drv_family_simcom = {
    .family = MODEM_FAMILY_SIMCOM,
    .name = "SIMCom",
    .iccid_cmd = "AT+CICCID",
    .reset_cmd = "AT+CRESET",
    .data_up = simcom_data_up,
    .gnss_on = simcom_gnss_on,
    .poll_cell = simcom_poll_cell,
    .poll_gnss = simcom_poll_gnss,
};
