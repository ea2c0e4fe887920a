/* Every sample field parsed right through the real serial path: the modem threads (SIMCom LTE
 * with echo, SIMCom WCDMA roaming, Quectel EC25 LTE) and modem_probe against the real
 * corridor-modemsim, compared with the scenario (fields.json). Also modem_probe's errors for a
 * missing port and a silent one. */
#include "simharness.h"
#include "testlib.h"
#include "common/common.h"

#include <pty.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static struct collector col;
static const char *const links[] = {"mts", "beeline", "tele2"};

static bool all_complete(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < ARRAY_LEN(links); i++) {
        struct col_link l;
        col_get(&col, links[i], &l);
        const struct modem_sample *s = &l.last_poll;
        if (l.n_poll < 3 || !s->balance.valid || !s->gnss.valid || !s->oper_name[0] ||
            s->net == MODEM_NET_NONE || isnan(s->sig.rssi_dbm))
            return false;
    }
    return true;
}

static void check_gnss_utc(const struct modem_gnss *g)
{
    time_t now = time(NULL);
    CHECK_MSG(g->utc > now - 30 && g->utc <= now + 2, "utc %lld vs now %lld", (long long)g->utc,
              (long long)now);
}

static void check_mts(const struct modem_sample *s)
{
    CHECK_STR(s->link, "mts");
    CHECK_INT(s->state, MODEM_ST_POLL);
    CHECK_INT(s->family, MODEM_FAMILY_SIMCOM);
    CHECK_STR(s->id.manufacturer, "SIMCOM INCORPORATED");
    CHECK_STR(s->id.model, "SIMCOM_SIM7600E-H");
    CHECK_STR(s->id.revision, "LE20B04SIM7600M22");
    CHECK_STR(s->id.imei, "862636055891234");
    CHECK_STR(s->id.iccid, "89701014123456789012");
    CHECK_STR(s->id.imsi, "250011234567890");
    CHECK_INT(s->sim, MODEM_SIM_READY);
    CHECK_INT(s->reg, MODEM_REG_HOME);
    CHECK_STR(s->oper_name, "MTS RUS");
    CHECK_STR(s->mcc, "250");
    CHECK_STR(s->mnc, "01");
    CHECK_INT(s->net, MODEM_NET_LTE);
    CHECK_STR(s->band, "EUTRAN-BAND3");
    CHECK_INT(s->tac, 6699);
    CHECK_INT(s->cell_id, 26543617);
    CHECK_INT(s->pci, 414);
    CHECK_INT(s->channel, 1650);
    CHECK_INT(s->sig.csq, 21);
    CHECK_NEAR(s->sig.rsrp_dbm, -100.6, 0.051);
    CHECK_NEAR(s->sig.rsrq_db, -9.4, 0.051);
    CHECK_NEAR(s->sig.sinr_db, 14, 0.51);
    CHECK_NEAR(s->sig.rssi_dbm, -71, 0.51);
    CHECK(s->gnss.valid);
    CHECK(s->gnss.fix);
    CHECK_NEAR(s->gnss.lat, 55.752057, 2e-6);
    CHECK_NEAR(s->gnss.lon, 37.627572, 2e-6);
    CHECK_NEAR(s->gnss.alt_m, 156.2, 0.051);
    CHECK_NEAR(s->gnss.speed_kmh, 134.3, 0.2); /* knots with one decimal on the wire */
    CHECK_NEAR(s->gnss.course_deg, 45.0, 0.051);
    check_gnss_utc(&s->gnss);
    CHECK(s->balance.valid);
    CHECK(s->balance.amount_valid);
    CHECK_NEAR(s->balance.amount, 123.45, 1e-9);
    CHECK_STR(s->balance.raw, "Баланс: 123.45 руб"); /* UCS2 on the wire */
    CHECK_STR(s->netif, "usb0"); /* a pty is not on USB: the configured interface */
    CHECK(s->mono_ms > 0 && s->mono_ms <= mono_ms());
}

static void check_beeline(const struct modem_sample *s)
{
    CHECK_INT(s->family, MODEM_FAMILY_SIMCOM);
    CHECK_STR(s->id.model, "SIMCOM_SIM7100E");
    CHECK_STR(s->id.imei, "861234567890123");
    CHECK_STR(s->id.iccid, "8970199123456789012");
    CHECK_STR(s->id.imsi, "250991234567890");
    /* 3G: roaming by CREG/CGREG while CEREG says not registered */
    CHECK_INT(s->reg, MODEM_REG_ROAMING);
    CHECK_STR(s->oper_name, "Beeline");
    CHECK_STR(s->mcc, "250");
    CHECK_STR(s->mnc, "99");
    CHECK_INT(s->net, MODEM_NET_WCDMA);
    CHECK_STR(s->band, "WCDMA IMT 2000");
    CHECK_INT(s->tac, 4660);
    CHECK_INT(s->cell_id, 123456789);
    CHECK_NEAR(s->sig.rscp_dbm, -85, 0.51);
    CHECK_NEAR(s->sig.ecio_db, -6.5, 0.051);
    CHECK_NAN(s->sig.rsrp_dbm);
    CHECK_INT(s->sig.csq, 18);
    CHECK(s->gnss.valid);
    CHECK(!s->gnss.fix); /* nine empty fields */
    CHECK(s->balance.valid);
    CHECK_NEAR(s->balance.amount, 57.10, 1e-9);
    CHECK_STR(s->balance.raw, "Balance: 57.10 rub"); /* GSM-7 text, URC before OK */
}

static void check_tele2(const struct modem_sample *s)
{
    CHECK_INT(s->family, MODEM_FAMILY_QUECTEL);
    CHECK_STR(s->id.manufacturer, "Quectel");
    CHECK_STR(s->id.model, "EC25");
    CHECK_STR(s->id.revision, "EC25EFAR06A06M4G");
    CHECK_STR(s->id.imei, "866758041234567");
    CHECK_STR(s->id.iccid, "89701201234567890123"); /* AT+QCCID */
    CHECK_STR(s->id.imsi, "250201234567890");
    CHECK_INT(s->reg, MODEM_REG_HOME);
    CHECK_STR(s->oper_name, "Tele2");
    CHECK_STR(s->mcc, "250");
    CHECK_STR(s->mnc, "20");
    CHECK_INT(s->net, MODEM_NET_LTE);
    CHECK_INT(s->tac, 12345);
    CHECK_INT(s->cell_id, 87654321);
    CHECK_INT(s->pci, 77);
    CHECK_INT(s->channel, 1300);
    CHECK_NEAR(s->sig.rsrp_dbm, -95, 0.51);
    CHECK_NEAR(s->sig.rsrq_db, -11, 0.51);
    CHECK_INT(s->sig.csq, 24);
    CHECK(s->gnss.valid);
    CHECK(s->gnss.fix);
    CHECK_NEAR(s->gnss.lat, 59.93863, 2e-5);
    CHECK_NEAR(s->gnss.lon, 30.31413, 2e-5);
    CHECK_NEAR(s->gnss.alt_m, 12.5, 0.051);
    CHECK_NEAR(s->gnss.speed_kmh, 60.0, 0.2);
    CHECK_NEAR(s->gnss.course_deg, 270.0, 0.051);
    CHECK(s->balance.valid);
    CHECK_NEAR(s->balance.amount, 42.50, 1e-9);
    CHECK_STR(s->balance.raw, "Balance 42.50 RUB"); /* packed GSM-7 hex */
}

struct sim_case {
    const char *link;
    enum modem_sim sim;
    enum modem_reg reg;
    const char *event_text;
};
static const struct sim_case sim_cases[] = {
    {"nosim", MODEM_SIM_ABSENT, MODEM_REG_NOT_REGISTERED, "nosim: SIM absent"},
    {"pinsim", MODEM_SIM_PIN, MODEM_REG_NOT_REGISTERED, "pinsim: SIM pin"},
};

static bool sim_cases_polling(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < ARRAY_LEN(sim_cases); i++) {
        struct col_link l;
        col_get(&col, sim_cases[i].link, &l);
        if (l.n_poll < 3)
            return false;
    }
    return true;
}

/* A modem without a usable SIM still initialises and polls (signal, cell): the SIM state and
 * registration say why there is no service. */
static void check_sim_cases(void)
{
    CHECK_MSG(wait_until(sim_cases_polling, NULL, 20000), "SIM-less modems not polling");
    for (size_t i = 0; i < ARRAY_LEN(sim_cases); i++) {
        const struct sim_case *c = &sim_cases[i];
        struct col_link l;
        col_get(&col, c->link, &l);
        CHECK_INT(l.last_poll.state, MODEM_ST_POLL);
        CHECK_INT(l.last_poll.sim, c->sim);
        CHECK_INT(l.last_poll.reg, c->reg);
        CHECK_STR(l.last_poll.id.imsi, ""); /* CIMI needs a SIM */
        CHECK(l.last_poll.id.imei[0] != '\0');
        char text[320] = "";
        CHECK(col_find_event(&col, c->link, MODEM_EV_SIM, 0, text, sizeof text) >= 0);
        CHECK_STR(text, c->event_text);
        CHECK(col_find_event(&col, c->link, MODEM_EV_REGISTERED, 0, NULL, 0) < 0);
    }
}

static void test_probe(struct simh *h)
{
    char port[256], err[256];
    struct modem_sample s;
    simh_path(h, "probe", port, sizeof port);
    uint64_t t0 = mono_ms();
    int rc = modem_probe(port, 115200, "*100#", &s, err, sizeof err);
    CHECK_MSG(rc == 0, "probe: %s", err);
    CHECK(mono_ms() - t0 < 20000);
    CHECK_STR(s.port, port);
    CHECK_STR(s.id.manufacturer, "SIMCOM INCORPORATED"); /* the simulator's defaults */
    CHECK_STR(s.id.model, "SIMCOM_SIM7600E-H");
    CHECK_STR(s.id.imei, "862636055891234");
    CHECK_STR(s.id.iccid, "89701010000000000001");
    CHECK_STR(s.id.imsi, "250010000000001");
    CHECK_INT(s.sim, MODEM_SIM_READY);
    CHECK_INT(s.reg, MODEM_REG_HOME);
    CHECK_STR(s.oper_name, "MegaFon");
    CHECK_STR(s.mcc, "250");
    CHECK_STR(s.mnc, "02");
    CHECK_INT(s.net, MODEM_NET_LTE);
    CHECK_STR(s.band, "EUTRAN-BAND7");
    CHECK_INT(s.tac, 513);
    CHECK_INT(s.cell_id, 1000001);
    CHECK_NEAR(s.sig.rsrp_dbm, -88.5, 0.051);
    CHECK_NEAR(s.sig.rsrq_db, -7.5, 0.051);
    CHECK_NEAR(s.sig.sinr_db, 20, 0.51);
    CHECK_NEAR(s.sig.rssi_dbm, -60, 0.51);
    /* GNSS is off on a fresh modem and probe does not switch it on: it answers "no fix" */
    CHECK(s.gnss.valid);
    CHECK(!s.gnss.fix);
    CHECK(s.balance.valid);
    CHECK_NEAR(s.balance.amount, 7.0, 1e-9);
    CHECK_STR(s.balance.raw, "Balance: 7.00 rub");

    /* a code the network does not know: "+CUSD: 4", no text, no balance, still a probe */
    rc = modem_probe(port, 115200, "*999#", &s, err, sizeof err);
    CHECK_MSG(rc == 0, "probe *999#: %s", err);
    CHECK(!s.balance.valid);
    CHECK_NAN(s.balance.amount);
    CHECK_STR(s.oper_name, "MegaFon");

    /* missing port */
    rc = modem_probe("/dev/corridor-no-such-port", 115200, NULL, &s, err, sizeof err);
    CHECK_INT(rc, -1);
    CHECK_STR(err, "port /dev/corridor-no-such-port: no such device");

    /* a silent modem: a pty nobody answers on */
    int mfd, sfd;
    char name[64];
    if (openpty(&mfd, &sfd, name, NULL, NULL) == 0) {
        struct termios tio;
        tcgetattr(sfd, &tio);
        cfmakeraw(&tio);
        tcsetattr(sfd, TCSANOW, &tio);
        t0 = mono_ms();
        rc = modem_probe(name, 115200, NULL, &s, err, sizeof err);
        uint64_t took = mono_ms() - t0;
        CHECK_INT(rc, -1);
        char want[160];
        snprintf(want, sizeof want, "port %s: no reply to AT within 3 s (modem silent?)", name);
        CHECK_STR(err, want);
        CHECK_MSG(took >= 2900 && took < 5000, "silent probe took %llu ms",
                  (unsigned long long)took);
        close(mfd);
        close(sfd);
    } else {
        CHECK_MSG(0, "openpty failed");
    }
}

int main(void)
{
    log_init("test_modem_sim_fields", LOGL_WARN, false);
    struct simh h;
    const char *ports[] = {"mts", "beeline", "tele2", "probe", "nosim", "pinsim", NULL};
    if (simh_start(&h, "fields.json", ports) != 0) {
        CHECK_MSG(0, "simulator did not start");
        simh_stop(&h);
        return test_summary();
    }
    col_init(&col, &h);
    struct modem_callbacks cb = col_callbacks(&col);
    struct modem *m[ARRAY_LEN(links)] = {0};
    const char *codes[] = {"*100#", "*102#", "*105#"};
    for (size_t i = 0; i < ARRAY_LEN(links); i++) {
        struct modem_config cfg = {0};
        str_copy(cfg.link, links[i], sizeof cfg.link);
        simh_path(&h, links[i], cfg.port, sizeof cfg.port);
        str_copy(cfg.apn, "internet.test", sizeof cfg.apn);
        str_copy(cfg.balance_ussd, codes[i], sizeof cfg.balance_ussd);
        str_copy(cfg.netif, "usb0", sizeof cfg.netif);
        cfg.gnss = true;
        cfg.reg_period_ms = 2000;
        char err[256];
        CHECK_MSG(modem_start(&cfg, &cb, &m[i], err, sizeof err) == 0, "%s", err);
    }
    struct modem *ms[ARRAY_LEN(sim_cases)] = {0};
    for (size_t i = 0; i < ARRAY_LEN(sim_cases); i++) {
        struct modem_config cfg = {0};
        str_copy(cfg.link, sim_cases[i].link, sizeof cfg.link);
        simh_path(&h, sim_cases[i].link, cfg.port, sizeof cfg.port);
        char err[256];
        CHECK_MSG(modem_start(&cfg, &cb, &ms[i], err, sizeof err) == 0, "%s", err);
    }
    /* modem_probe runs on this thread meanwhile, on its own simulated modem */
    test_probe(&h);

    bool done = wait_until(all_complete, NULL, 30000);
    CHECK_MSG(done, "not every modem produced a complete sample within 30 s");
    struct col_link l;
    col_get(&col, "mts", &l);
    check_mts(&l.last_poll);
    col_get(&col, "beeline", &l);
    check_beeline(&l.last_poll);
    col_get(&col, "tele2", &l);
    check_tele2(&l.last_poll);

    check_sim_cases();

    /* modem_get_sample returns the same latest snapshot */
    struct modem_sample gs;
    modem_get_sample(m[0], &gs);
    CHECK_STR(gs.link, "mts");
    CHECK_STR(gs.oper_name, "MTS RUS");
    CHECK(gs.mono_ms > 0);

    /* events: detected + ready + registered + balance for each */
    for (size_t i = 0; i < ARRAY_LEN(links); i++) {
        CHECK(col_find_event(&col, links[i], MODEM_EV_DETECTED, 0, NULL, 0) >= 0);
        CHECK(col_find_event(&col, links[i], MODEM_EV_READY, 0, NULL, 0) >= 0);
        CHECK(col_find_event(&col, links[i], MODEM_EV_REGISTERED, 0, NULL, 0) >= 0);
        CHECK(col_find_event(&col, links[i], MODEM_EV_BALANCE, 0, NULL, 0) >= 0);
    }

    /* balance on request: a second BALANCE event shortly after asking */
    uint64_t t0 = mono_ms();
    CHECK_INT(modem_request_balance(m[1]), 0);
    for (int i = 0; i < 200 && col_find_event(&col, "beeline", MODEM_EV_BALANCE, t0, NULL, 0) < 0;
         i++)
        usleep(50000);
    CHECK(col_find_event(&col, "beeline", MODEM_EV_BALANCE, t0, NULL, 0) >= 0);

    /* modem_stop joins promptly */
    for (size_t i = 0; i < ARRAY_LEN(links); i++) {
        t0 = mono_ms();
        modem_stop(m[i]);
        uint64_t took = mono_ms() - t0;
        CHECK_MSG(took <= 3100, "modem_stop(%s) took %llu ms", links[i], (unsigned long long)took);
    }
    for (size_t i = 0; i < ARRAY_LEN(sim_cases); i++)
        modem_stop(ms[i]);
    simh_stop(&h);
    col_destroy(&col);
    return test_summary();
}
