/* probe: modem_probe(), one synchronous conversation with one modem on the caller's thread
 * (`corridor modem probe`). Same driver steps as the state machine, no thread, no recovery. */
#include "modem/driver.h"
#include "common/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_TIMEOUT_MS   3000u
#define PROBE_DETECT_TRIES 3u
#define PROBE_DETECT_MS    1000u
#define PROBE_USSD_WAIT_MS 20000u

static void probe_fail(const struct drv *d, const char *step, char *err, size_t errlen)
{
    if (d->fail_res == AT_RES_IO)
        snprintf(err, errlen, "port %s: port error or vanished during %s (%s)", d->port, step,
                 d->fail_cmd);
    else if (d->fail_garbage)
        snprintf(err, errlen, "port %s: garbage instead of a reply to %s", d->port, d->fail_cmd);
    else
        snprintf(err, errlen, "port %s: no reply to %s within %u ms during %s", d->port,
                 d->fail_cmd, d->timeout_ms, step);
}

int modem_probe(const char *port, int baud, const char *balance_code, struct modem_sample *out,
                char *err, size_t errlen)
{
    modem_sample_init(out);
    if (!port || !port[0]) {
        snprintf(err, errlen, "no port given");
        return -1;
    }
    str_copy(out->port, port, sizeof out->port);
    if (!serial_present(port)) {
        snprintf(err, errlen, "port %s: no such device", port);
        return -1;
    }
    /* struct drv holds a 4 KiB reply buffer: heap, not the caller's stack. */
    struct drv *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "port %s: out of memory", port);
        return -1;
    }
    d->link = "";
    d->port = port;
    d->baud = baud > 0 ? baud : 115200;
    d->timeout_ms = PROBE_TIMEOUT_MS;
    d->apn = "";
    d->s = out;
    int ret = -1;
    const char *step = "detection";
    enum drv_rc rc;
    if (drv_open(d, err, errlen) != 0)
        goto done;
    rc = drv_detect(d, PROBE_DETECT_TRIES, PROBE_DETECT_MS);
    if (rc != DRV_OK) {
        if (rc == DRV_GONE)
            snprintf(err, errlen, "port %s: no such device (vanished while probing)", port);
        else if (!strcmp(d->fail_cmd, "AT"))
            snprintf(err, errlen, "port %s: no reply to AT within %u s (modem silent?)", port,
                     PROBE_DETECT_TRIES * PROBE_DETECT_MS / 1000);
        else
            probe_fail(d, step, err, errlen);
        goto done;
    }
    out->state = MODEM_ST_INIT;
    static const struct drv_step probe_steps[] = {
        {"identity", drv_identity},     {"SIM", drv_sim},
        {"registration", drv_poll_reg}, {"operator", drv_poll_operator},
        {"signal", drv_poll_signal},
    };
    if ((rc = drv_steps(d, probe_steps, ARRAY_LEN(probe_steps), &step)) != DRV_OK)
        goto fail;
    /* CPSI now told the radio type: merge registration for it. */
    drv_merge_reg(d);
    step = "GNSS";
    if ((rc = d->fam->poll_gnss(d)) != DRV_OK)
        goto fail;
    if (balance_code && balance_code[0]) {
        step = "balance";
        if ((rc = drv_ussd_send(d, balance_code, PROBE_USSD_WAIT_MS)) != DRV_OK)
            goto fail;
        while (d->cusd_pending && mono_ms() < d->cusd_deadline)
            if (at_pump(d->at, 100) < 0) {
                rc = DRV_GONE;
                str_copy(d->fail_cmd, "waiting for +CUSD", sizeof d->fail_cmd);
                d->fail_res = AT_RES_IO;
                goto fail;
            }
        if (d->cusd_done)
            (void)drv_ussd_store(d); /* no text: balance stays invalid */
    }
    out->state = MODEM_ST_POLL;
    out->mono_ms = mono_ms();
    ret = 0;
    goto done;
fail:
    probe_fail(d, step, err, errlen);
done:
    drv_close(d);
    free(d);
    return ret;
}
