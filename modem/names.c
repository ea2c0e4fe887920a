/* names: enum names and struct defaults for the modem public types. */
#include "modem/modem.h"
#include "common/common.h"

#include <math.h>
#include <string.h>

const char *modem_net_name(enum modem_net n)
{
    static const char *const names[] = {"none",  "gsm",    "wcdma",    "lte",
                                        "lte-m", "nb-iot", "nr5g-nsa", "nr5g-sa"};
    return (unsigned)n < ARRAY_LEN(names) ? names[n] : "none";
}

const char *modem_reg_name(enum modem_reg r)
{
    static const char *const names[] = {"unknown", "not_registered", "home",
                                        "roaming", "searching",      "denied"};
    return (unsigned)r < ARRAY_LEN(names) ? names[r] : "unknown";
}

const char *modem_sim_name(enum modem_sim s)
{
    static const char *const names[] = {"unknown", "ready", "pin", "puk", "absent", "error"};
    return (unsigned)s < ARRAY_LEN(names) ? names[s] : "unknown";
}

const char *modem_state_name(enum modem_state s)
{
    static const char *const names[] = {"absent", "detect", "init", "poll", "recover"};
    return (unsigned)s < ARRAY_LEN(names) ? names[s] : "absent";
}

const char *modem_event_name(enum modem_event_kind k)
{
    static const char *const names[] = {"detected", "ready",      "registered",  "unregistered",
                                        "timeout",  "soft_reset", "power_cycle", "vanished",
                                        "returned", "balance",    "sim"};
    return (unsigned)k < ARRAY_LEN(names) ? names[k] : "unknown";
}

void modem_sample_init(struct modem_sample *s)
{
    memset(s, 0, sizeof *s);
    s->tac = -1;
    s->cell_id = -1;
    s->channel = -1;
    s->pci = -1;
    s->sig.csq = -1;
    s->sig.rssi_dbm = s->sig.rsrp_dbm = s->sig.rsrq_db = s->sig.sinr_db = NAN;
    s->sig.ecio_db = s->sig.rscp_dbm = NAN;
    s->gnss.lat = s->gnss.lon = s->gnss.alt_m = NAN;
    s->gnss.speed_kmh = s->gnss.course_deg = NAN;
    s->gnss.utc = -1;
    s->balance.amount = NAN;
}

void modem_config_defaults(struct modem_config *c)
{
    if (!c->baud)
        c->baud = 115200;
    if (!c->cmd_timeout_ms)
        c->cmd_timeout_ms = 3000;
    if (!c->signal_period_ms)
        c->signal_period_ms = 1000;
    if (!c->reg_period_ms)
        c->reg_period_ms = 10000;
    if (!c->balance_period_s)
        c->balance_period_s = 14400;
    if (!c->hung_after)
        c->hung_after = 3;
    if (!c->recover_settle_ms)
        c->recover_settle_ms = 2000;
    if (!c->sysfs_root[0])
        str_copy(c->sysfs_root, "/sys", sizeof c->sysfs_root);
}
