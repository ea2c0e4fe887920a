/* Recovery against the real corridor-modemsim: sixteen modems poll in parallel; modem "a" is
 * hung (cured only by the power-cycle hook), silenced (cured by the soft reset), fed garbage and
 * over-long lines, made to vanish and asked to reset, while b01..b15 must keep their 1 s
 * cadence (max gap between samples <= 1.5 s). Finally modem_stop on a hung modem returns
 * within the command timeout + 100 ms. */
#include "simharness.h"
#include "testlib.h"
#include "common/common.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define NMODEMS    16
#define TIMEOUT_MS 1000u

static struct collector col;
static char names[NMODEMS][8];
static struct simh sim;

struct poll_after {
    const char *link;
    uint64_t since_ms;
    unsigned min_polls;
};

static bool polling_since(void *arg)
{
    struct poll_after *p = arg;
    struct col_link l;
    col_get(&col, p->link, &l);
    return l.n_poll >= p->min_polls && l.last_poll_ms >= p->since_ms;
}

static bool all_polling(void *arg)
{
    (void)arg;
    for (int i = 0; i < NMODEMS; i++) {
        struct col_link l;
        col_get(&col, names[i], &l);
        if (l.n_poll < 2)
            return false;
    }
    return true;
}

struct ready_after {
    uint64_t since_ms, ready_ms;
};

static bool ready_since(void *arg)
{
    struct ready_after *r = arg;
    int i = col_find_event(&col, "a", MODEM_EV_READY, r->since_ms, NULL, 0);
    if (i < 0)
        return false;
    pthread_mutex_lock(&col.mu);
    r->ready_ms = col.ev[i].ms;
    pthread_mutex_unlock(&col.mu);
    return true;
}

/* Wait until "a" polls again after since: when need_ready, first a READY event (re-detected
 * and re-initialised) after since, then two POLL samples after that. Returns the mono_ms of
 * the first of them being seen, 0 on timeout. */
static uint64_t wait_a_polling(uint64_t since, unsigned timeout_ms, bool need_ready)
{
    uint64_t end = mono_ms() + timeout_ms;
    if (need_ready) {
        struct ready_after r = {since, 0};
        if (!wait_until(ready_since, &r, timeout_ms))
            return 0;
        since = r.ready_ms;
    }
    struct col_link l;
    col_get(&col, "a", &l);
    uint64_t now = mono_ms();
    struct poll_after p = {"a", since, l.n_poll + 2};
    if (now >= end || !wait_until(polling_since, &p, (unsigned)(end - now)))
        return 0;
    col_get(&col, "a", &l);
    return l.last_poll_ms;
}

static void ctl(const char *cmd)
{
    char reply[512];
    int rc = simh_ctl(&sim, cmd, reply, sizeof reply);
    CHECK_MSG(rc == 0, "control \"%s\": %s", cmd, reply);
}

static void check_others_cadence(const char *phase)
{
    uint64_t worst = 0;
    const char *who = "";
    for (int i = 1; i < NMODEMS; i++) {
        struct col_link l;
        col_get(&col, names[i], &l);
        if (l.max_gap_ms > worst) {
            worst = l.max_gap_ms;
            who = names[i];
        }
    }
    CHECK_MSG(worst <= 1500, "%s: %s had a %llu ms gap between samples", phase, who,
              (unsigned long long)worst);
    printf("%s: worst gap among the other 15 modems %llu ms (%s)\n", phase,
           (unsigned long long)worst, who);
}

static void phase_hang(void)
{
    uint64_t t0 = mono_ms();
    ctl("fault a hang 600"); /* only a power cycle cures it */
    uint64_t back = wait_a_polling(t0, 30000, true);
    CHECK_MSG(back != 0, "hung modem not polling again within 30 s");
    if (back)
        printf("hang: polling again after %llu ms\n", (unsigned long long)(back - t0));
    char text[320] = "";
    CHECK(col_find_event(&col, "a", MODEM_EV_TIMEOUT, t0, text, sizeof text) >= 0);
    CHECK_MSG(strstr(text, "no reply to AT+") && strstr(text, "for 1000 ms (1st in a row)"),
              "timeout text: %s", text);
    CHECK(col_find_event(&col, "a", MODEM_EV_SOFT_RESET, t0, text, sizeof text) >= 0);
    CHECK_MSG(strstr(text, "(3rd in a row), soft reset with AT+CRESET"), "reset text: %s", text);
    CHECK(col_find_event(&col, "a", MODEM_EV_POWER_CYCLE, t0, text, sizeof text) >= 0);
    CHECK_MSG(strstr(text, "power-cycled the slot"), "power text: %s", text);
    CHECK(col_find_event(&col, "a", MODEM_EV_READY, t0, NULL, 0) >= 0);
    struct col_link l;
    col_get(&col, "a", &l);
    CHECK(l.last_poll.soft_resets >= 1);
    CHECK(l.last_poll.power_cycles >= 1);
    CHECK(l.last_poll.timeouts >= 3);
    CHECK_STR(l.last_poll.oper_name, "Op0"); /* polling for real again */
    CHECK_INT(l.last_poll.reg, MODEM_REG_HOME);
}

static void phase_silence(void)
{
    struct col_link before;
    col_get(&col, "a", &before);
    uint64_t t0 = mono_ms();
    /* The simulator's silent modem would reboot on AT+CRESET, but it does not acknowledge it,
     * and an unacknowledged reset is treated as a hang: the slot is power-cycled at once
     * rather than waiting out a boot window that may never end (docs/modems-driver.md). */
    ctl("fault a silence 600");
    uint64_t back = wait_a_polling(t0, 30000, true);
    CHECK_MSG(back != 0, "silent modem not polling again within 30 s");
    if (back)
        printf("silence: polling again after %llu ms\n", (unsigned long long)(back - t0));
    CHECK(col_find_event(&col, "a", MODEM_EV_SOFT_RESET, t0, NULL, 0) >= 0);
    struct col_link l;
    col_get(&col, "a", &l);
    CHECK_INT(l.last_poll.soft_resets, before.last_poll.soft_resets + 1);
    CHECK_INT(l.last_poll.power_cycles, before.last_poll.power_cycles + 1);
}

static void phase_garbage(void)
{
    uint64_t t0 = mono_ms();
    ctl("fault a garbage 6");
    sleep(6);
    /* never crashes or stalls: polling again (recovered if the garbage got it reset) */
    uint64_t back = wait_a_polling(mono_ms(), 30000, false);
    CHECK_MSG(back != 0, "modem not polling within 30 s after the garbage");
    if (back)
        printf("garbage: polling %llu ms after the fault began\n", (unsigned long long)(back - t0));
    struct col_link l;
    col_get(&col, "a", &l);
    CHECK_STR(l.last_poll.oper_name, "Op0");
    CHECK_INT(l.last_poll.net, MODEM_NET_LTE);
}

static void phase_vanish(void)
{
    struct col_link before;
    col_get(&col, "a", &before);
    uint64_t t0 = mono_ms();
    ctl("fault a vanish 4");
    uint64_t back = wait_a_polling(t0, 30000, true);
    CHECK_MSG(back != 0, "vanished modem not polling again within 30 s");
    if (back)
        printf("vanish: polling again after %llu ms\n", (unsigned long long)(back - t0));
    char text[320] = "";
    CHECK(col_find_event(&col, "a", MODEM_EV_VANISHED, t0, text, sizeof text) >= 0);
    CHECK_MSG(strstr(text, "vanished, link down"), "vanish text: %s", text);
    CHECK(col_find_event(&col, "a", MODEM_EV_RETURNED, t0, NULL, 0) >= 0);
    struct col_link l;
    col_get(&col, "a", &l);
    CHECK(l.n_absent > before.n_absent); /* the link was down in a sample */
    CHECK_STR(l.last_poll.link, "a");    /* the same link came back */
    CHECK_INT(l.last_poll.vanished, before.last_poll.vanished + 1);
    CHECK_STR(l.last_poll.oper_name, "Op0");
}

static void phase_request_reset(struct modem *a)
{
    uint64_t t0 = mono_ms();
    CHECK_INT(modem_request_reset(a), 0);
    uint64_t back = wait_a_polling(t0, 30000, true);
    CHECK_MSG(back != 0, "not polling again within 30 s after a requested reset");
    char text[320] = "";
    CHECK(col_find_event(&col, "a", MODEM_EV_SOFT_RESET, t0, text, sizeof text) >= 0);
    CHECK_MSG(strstr(text, "reset requested"), "requested reset text: %s", text);
}

static void phase_reboot(void)
{
    uint64_t t0 = mono_ms();
    ctl("fault a reboot 3"); /* down for 3 s, then boots with RDY / +CPIN URCs */
    uint64_t back = wait_a_polling(t0, 30000, true);
    CHECK_MSG(back != 0, "rebooted modem not polling again within 30 s");
    if (back)
        printf("reboot: polling again after %llu ms\n", (unsigned long long)(back - t0));
    struct col_link l;
    col_get(&col, "a", &l);
    CHECK_STR(l.last_poll.oper_name, "Op0");
    CHECK_INT(l.last_poll.sim, MODEM_SIM_READY);
}

/* AT+CPSI? answering ERROR is not a failure: the retry and AT+CNSMOD? keep the round alive,
 * the cadence holds and nothing is reset. */
static void phase_cpsi_error(void)
{
    usleep(1500 * 1000);
    col_reset_gap(&col, "a");
    uint64_t t0 = mono_ms();
    ctl("fault a cpsi_error 4");
    usleep(5000 * 1000);
    struct col_link l;
    col_get(&col, "a", &l);
    CHECK_MSG(l.max_gap_ms <= 1500, "a's gap during CPSI errors: %llu ms",
              (unsigned long long)l.max_gap_ms);
    CHECK(col_find_event(&col, "a", MODEM_EV_TIMEOUT, t0, NULL, 0) < 0);
    CHECK(col_find_event(&col, "a", MODEM_EV_SOFT_RESET, t0, NULL, 0) < 0);
    CHECK_INT(l.last_poll.net, MODEM_NET_LTE);
    CHECK_INT(l.last_poll.reg, MODEM_REG_HOME);
}

struct ev_wait {
    enum modem_event_kind kind;
    uint64_t since;
};

static bool a_event(void *arg)
{
    struct ev_wait *w = arg;
    return col_find_event(&col, "a", w->kind, w->since, NULL, 0) >= 0;
}

struct rsrp_wait {
    double rsrp;
};

static bool a_rsrp(void *arg)
{
    struct rsrp_wait *w = arg;
    struct col_link l;
    col_get(&col, "a", &l);
    return fabs(l.last_poll.sig.rsrp_dbm - w->rsrp) < 0.05;
}

/* Live changes reach the samples: signal within a couple of rounds, registration loss and
 * return as events (by URC or by the 10 s registration poll). */
static void phase_live_changes(void)
{
    ctl("set a rsrp -110.3");
    struct rsrp_wait rw = {-110.3};
    CHECK_MSG(wait_until(a_rsrp, &rw, 3000), "new RSRP not in a sample within 3 s");
    ctl("unset a rsrp");

    uint64_t t0 = mono_ms();
    ctl("set a reg denied");
    struct ev_wait w = {MODEM_EV_UNREGISTERED, t0};
    CHECK_MSG(wait_until(a_event, &w, 12000), "no unregistered event within 12 s");
    char text[320] = "";
    col_find_event(&col, "a", MODEM_EV_UNREGISTERED, t0, text, sizeof text);
    CHECK_STR(text, "a: registration lost (denied)");
    usleep(1200 * 1000);
    struct col_link l;
    col_get(&col, "a", &l);
    CHECK_INT(l.last_poll.reg, MODEM_REG_DENIED);

    uint64_t t1 = mono_ms();
    ctl("unset a reg");
    struct ev_wait w2 = {MODEM_EV_REGISTERED, t1};
    CHECK_MSG(wait_until(a_event, &w2, 12000), "no registered event within 12 s");
    col_get(&col, "a", &l);
    CHECK(col_find_event(&col, "a", MODEM_EV_SOFT_RESET, t0, NULL, 0) < 0);
}

int main(void)
{
    log_init("test_modem_sim_recovery", LOGL_WARN, false);
    const char *ports[NMODEMS + 1];
    snprintf(names[0], sizeof names[0], "a");
    for (int i = 1; i < NMODEMS; i++)
        snprintf(names[i], sizeof names[i], "b%02d", i);
    for (int i = 0; i < NMODEMS; i++)
        ports[i] = names[i];
    ports[NMODEMS] = NULL;
    if (simh_start(&sim, "recovery.json", ports) != 0) {
        CHECK_MSG(0, "simulator did not start");
        simh_stop(&sim);
        return test_summary();
    }
    col_init(&col, &sim);
    struct modem_callbacks cb = col_callbacks(&col);
    struct modem *m[NMODEMS] = {0};
    for (int i = 0; i < NMODEMS; i++) {
        struct modem_config cfg = {0};
        str_copy(cfg.link, names[i], sizeof cfg.link);
        simh_path(&sim, names[i], cfg.port, sizeof cfg.port);
        cfg.cmd_timeout_ms = TIMEOUT_MS;
        cfg.recover_settle_ms = 3000;
        cfg.hung_after = 3;
        char err[256];
        CHECK_MSG(modem_start(&cfg, &cb, &m[i], err, sizeof err) == 0, "%s", err);
    }
    CHECK_MSG(wait_until(all_polling, NULL, 20000), "not all 16 modems polling within 20 s");
    for (int i = 0; i < NMODEMS; i++)
        col_reset_gap(&col, names[i]);

    phase_live_changes();
    check_others_cadence("live changes");
    phase_hang();
    check_others_cadence("hang");
    phase_silence();
    check_others_cadence("silence");
    phase_garbage();
    check_others_cadence("garbage");
    phase_vanish();
    check_others_cadence("vanish");
    phase_request_reset(m[0]);
    check_others_cadence("requested reset");
    phase_reboot();
    check_others_cadence("reboot");
    phase_cpsi_error();
    check_others_cadence("cpsi error");

    /* every other modem polled the whole time at about 1 Hz and never recovered */
    for (int i = 1; i < NMODEMS; i++) {
        struct col_link l;
        col_get(&col, names[i], &l);
        CHECK_INT(l.last_poll.soft_resets, 0);
        CHECK(col_find_event(&col, names[i], MODEM_EV_TIMEOUT, 0, NULL, 0) < 0);
    }

    /* modem_stop on a hung modem: within the command timeout + 100 ms (+ scheduling slack) */
    ctl("fault a hang 600");
    usleep(1500 * 1000);
    uint64_t t0 = mono_ms();
    modem_stop(m[0]);
    uint64_t took = mono_ms() - t0;
    CHECK_MSG(took <= TIMEOUT_MS + 100 + 150, "modem_stop on a hung modem took %llu ms",
              (unsigned long long)took);
    for (int i = 1; i < NMODEMS; i++)
        modem_stop(m[i]);
    simh_stop(&sim);
    col_destroy(&col);
    return test_summary();
}
