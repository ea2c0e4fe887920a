/* run: the supervisor of `corridor run`. See run.h and docs/architecture.md.
 *
 * Threads and owners:
 *   main thread      supervisor: signals (sigtimedwait), 1 s housekeeping, start/stop order
 *   modem-<link>     one per configured modem (modem/), owned through struct modem
 *   control          the Unix control socket (firmware/control.c)
 *   http (MHD pool)  dashboard, JSON API, /metrics (firmware/http.c), when "dashboard" is set
 *   agg-client       the tunnel data plane (agg/), when "tunnel" is configured
 *   netcfg           policy routing and multi-WAN fallback (firmware/netcfg.c), when "routing"
 *   steer            1 Hz: position, coverage map, prediction, weights (firmware/steer.c)
 *   position         gpsd client (telemetry/), owned by steer
 *   recorder         telemetry records -> outbox, when "telemetry" is configured
 *   uploader         outbox -> collector (libcurl), owned by recorder
 * Every thread is started here and joined here; nothing outlives run_daemon().
 *
 * Liveness (docs/board.md): modem, tunnel, steer, recorder and control beat a common/alive.h
 * slot from their loops. The 1 s housekeeping feeds the hardware watchdog and systemd's
 * (WATCHDOG=1) only while no slot is stale. A stale slot is logged by name and the feeding
 * stops; if it is still stale HANG_EXIT_MS later the process exits with EXIT_HUNG without the
 * watchdog's magic close: systemd restarts it, and the hardware watchdog resets the board only
 * if restarts keep failing. A hung thread cannot be joined, so a stop (SIGTERM) that has not
 * finished within STOP_GUARD_MS names the threads still running, disarms the hardware
 * watchdog (the stop was asked for) and exits with EXIT_HUNG as well. */
#include "firmware/run.h"
#include "firmware/control.h"
#include "firmware/state.h"
#include "firmware/tunnel.h"
#include "firmware/netcfg.h"
#include "firmware/provision.h"
#include "firmware/steer.h"
#include "firmware/recorder.h"
#include "telemetry/upload.h"
#include "firmware/http.h"
#include "modem/modem.h"
#include "board/board.h"
#include "common/alive.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct supervisor {
    const struct config *cfg;
    struct state *st;
    struct modem *modems[CFG_MAX_LINKS];
    struct control *control;
    struct board *board;
    struct tunnel *tunnel;
    struct steer *steer;
    struct recorder_engine *recorder;
    struct http *http;
    struct netcfg *netcfg;
    struct provision *provision;
    struct config *reloaded; /* the last configuration applied by SIGHUP (netcfg runs on it) */
    int lockfd;
    struct board_wdt *wdt; /* NULL: no hardware watchdog */
    uint64_t hung_since;   /* mono ms a slot was first seen stale, 0 = all alive */
    uint64_t next_thermal;
    bool slow_poll;   /* thermal protection asked the modems to slow down */
    bool wdt_failing; /* the last keepalive write failed (logged once per episode) */
    bool led;
};

/* Exit status after a hung thread: any non-zero status makes systemd (Restart=on-failure)
 * restart us; 70 is EX_SOFTWARE, distinct from config errors (1, 2) in the journal. */
#define EXIT_HUNG 70
/* Between the first stale report and the exit: a thread that was only late (its limit already
 * covers its legitimate waits) gets a last chance, and the log lines reach the journal. */
#define HANG_EXIT_MS 10000u
/* A clean stop takes < 2 s (e2e); this much means a thread will never return. */
#define STOP_GUARD_MS     10000u
#define THERMAL_PERIOD_MS 5000u

/* Stale limits. Each must exceed the longest LEGITIMATE stretch between two beats of its
 * thread, or a slow but healthy thread restarts the whole process. */
/* tunnel: epoll wakes at least once a second and the data plane never blocks by design;
 * 10 s only happens under extreme CPU starvation. */
#define STALE_TUNNEL_MS 10000u
/* steer: a 1 Hz loop whose step reads and writes the coverage map (sqlite); a commit's fsync
 * on a worn SSD can take seconds. */
#define STALE_STEER_MS 20000u
/* recorder: cutting a ten-minute batch compresses it and commits it to the sqlite outbox,
 * seconds on slow flash; the uploader runs in its own thread (not watched: curl timeouts). */
#define STALE_RECORDER_MS 60000u
/* control: poll wakes each second; one client costs at most a few 3 s socket timeouts. */
#define STALE_CONTROL_MS 15000u
/* netcfg: a tick is a few netlink dumps and at most one nftables transaction, milliseconds;
 * 30 s covers a kernel busy with a huge routing table without false alarms. */
#define STALE_NETCFG_MS 30000u

/* modem: one state-machine step is the longest stretch without a beat: RECOVER waits up to
 * the 60 s back-off (REC_BACKOFF_MAX_MS) after a power cycle, DETECT gives a booting modem a
 * 30 s window, INIT is ~14 commands and a poll round ~8, each up to cmd_timeout_ms. USSD
 * (balance) answers arrive between rounds (up to 20 s, pumped with beats in between), so they
 * do not add up. */
static unsigned stale_modem_ms(unsigned cmd_timeout_ms, unsigned power_cycle_ms)
{
    return 90000u + power_cycle_ms + 16u * cmd_timeout_ms;
}

/* ---- modem callbacks: run on the modem threads, must not block (state has a short mutex) -- */

static void on_modem_sample(void *ctx, const struct modem_sample *s)
{
    struct supervisor *sv = ctx;
    state_put_modem(sv->st, s);
    steer_feed_modem(sv->steer, s); /* its GNSS: the fallback position source */
}

static void on_modem_exchange(void *ctx, const char *link, const struct modem_exchange *x)
{
    struct supervisor *sv = ctx;
    state_put_exchange(sv->st, link, x); /* a memcpy under the state's short mutex */
}

static void on_modem_event(void *ctx, const char *link, enum modem_event_kind kind,
                           const char *text)
{
    struct supervisor *sv = ctx;
    /* modem/ logs its own events; here they only become part of the shared state. */
    state_add_event(sv->st, link, modem_event_name(kind), "%s", text);
}

/* Last step of a modem's recovery ladder; runs on that modem's thread (it may block for the
 * power-off time, which only delays that one modem). */
static int on_modem_power_cycle(void *ctx, const char *link)
{
    struct supervisor *sv = ctx;
    char err[256];
    if (board_power_cycle(sv->board, link, err, sizeof err) != 0) {
        LOG_W(link, "power cycle: %s", err);
        return -1;
    }
    return 0;
}

/* ---- admin actions from the dashboard: they only queue work and return ---------------------- */

static int link_index(const struct supervisor *sv, const char *link)
{
    for (unsigned i = 0; i < sv->cfg->nlinks; i++)
        if (strcmp(sv->cfg->links[i].name, link) == 0)
            return (int)i;
    return -1;
}

static int act_link_set_enabled(void *ctx, const char *link, bool enabled, char *err, size_t errlen)
{
    struct supervisor *sv = ctx;
    int i = link_index(sv, link);
    if (i < 0 || steer_force_off(sv->steer, (unsigned)i, !enabled) != 0) {
        snprintf(err, errlen, "no link named \"%s\"", link);
        return -1;
    }
    return 0;
}

static struct modem *modem_of(struct supervisor *sv, const char *link, char *err, size_t errlen)
{
    int i = link_index(sv, link);
    if (i < 0 || !sv->modems[i]) {
        snprintf(err, errlen, i < 0 ? "no link named \"%s\"" : "link \"%s\" has no modem", link);
        return NULL;
    }
    return sv->modems[i];
}

static int act_modem_reset(void *ctx, const char *link, char *err, size_t errlen)
{
    struct modem *m = modem_of(ctx, link, err, errlen);
    return m ? modem_request_reset(m) : -1;
}

static int act_modem_balance(void *ctx, const char *link, char *err, size_t errlen)
{
    struct modem *m = modem_of(ctx, link, err, errlen);
    return m ? modem_request_balance(m) : -1;
}

/* mkdir -p for data_dir */
static int make_dirs(const char *path, char *err, size_t errlen)
{
    char tmp[CFG_PATH_MAX];
    str_copy(tmp, path, sizeof tmp);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                goto fail;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "data_dir %s: cannot create %s: %s", path, tmp, strerror(errno));
    return -1;
}

/* One daemon per data_dir: two would corrupt each other's databases. */
static int lock_data_dir(struct supervisor *sv, char *err, size_t errlen)
{
    char p[CFG_PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/corridor.lock", sv->cfg->data_dir);
    sv->lockfd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (sv->lockfd < 0) {
        snprintf(err, errlen, "%s: %s", p, strerror(errno));
        return -1;
    }
    if (flock(sv->lockfd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "%s: another corridor is running on this data_dir", p);
        close(sv->lockfd);
        sv->lockfd = -1;
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(sv->lockfd, 0) == 0 && write(sv->lockfd, pid, (size_t)n) != n)
        LOG_W("run", "%s: cannot write pid", p);
    return 0;
}

static int start_modems(struct supervisor *sv)
{
    const struct config *cfg = sv->cfg;
    struct modem_callbacks cb = {.ctx = sv,
                                 .sample = on_modem_sample,
                                 .event = on_modem_event,
                                 .exchange = on_modem_exchange,
                                 .power_cycle = on_modem_power_cycle};
    unsigned started = 0;
    for (unsigned i = 0; i < cfg->nlinks; i++) {
        const struct cfg_link *l = &cfg->links[i];
        if (!l->modem.present)
            continue;
        struct modem_config mc = {0};
        str_copy(mc.link, l->name, sizeof mc.link);
        str_copy(mc.port, l->modem.port, sizeof mc.port);
        mc.baud = l->modem.baud;
        str_copy(mc.apn, l->modem.apn, sizeof mc.apn);
        str_copy(mc.balance_ussd, l->modem.balance_ussd, sizeof mc.balance_ussd);
        str_copy(mc.netif, l->interface, sizeof mc.netif);
        mc.gnss = l->modem.gnss;
        mc.balance_period_s = l->modem.balance_period_s;
        mc.cmd_timeout_ms = l->modem.cmd_timeout_ms;
        modem_config_defaults(&mc);
        char err[256];
        alive_register("modem", l->name,
                       stale_modem_ms(mc.cmd_timeout_ms, board_power_cycle_ms(sv->board)));
        if (modem_start(&mc, &cb, &sv->modems[i], err, sizeof err) != 0) {
            LOG_E("run", "links[%u] (%s): modem: %s", i, l->name, err);
            return -1;
        }
        started++;
    }
    LOG_I("run", "modems: %u started (%u links without a modem)", started, cfg->nlinks - started);
    return 0;
}

static void *stop_modem_thread(void *arg)
{
    modem_stop(arg);
    return NULL;
}

/* Stop all modems in parallel: each stop is bounded by its current command, and sixteen in
 * sequence would blow the 2 s shutdown budget. */
static void stop_modems(struct supervisor *sv)
{
    pthread_t th[CFG_MAX_LINKS];
    bool have[CFG_MAX_LINKS] = {0};
    for (unsigned i = 0; i < CFG_MAX_LINKS; i++) {
        if (!sv->modems[i])
            continue;
        if (pthread_create(&th[i], NULL, stop_modem_thread, sv->modems[i]) == 0)
            have[i] = true;
        else
            modem_stop(sv->modems[i]);
    }
    for (unsigned i = 0; i < CFG_MAX_LINKS; i++) {
        if (have[i])
            pthread_join(th[i], NULL);
        sv->modems[i] = NULL;
    }
}

static void announce_sections(const struct config *cfg)
{
    /* A missing section switches its capability off with exactly one log line. */
    if (!cfg->tunnel.enabled)
        LOG_I("run", "tunnel: no \"tunnel\" section, off (monitor only)");
    if (!cfg->dashboard.enabled)
        LOG_I("run", "dashboard: no \"dashboard\" section, off");
    if (!cfg->telemetry.enabled)
        LOG_I("run", "telemetry: no \"telemetry\" section, off");
}

/* ---- watchdog, liveness, thermal: the 1 s housekeeping --------------------------------- */

static void open_watchdog(struct supervisor *sv)
{
    const struct cfg_board *b = &sv->cfg->board;
    char err[384];
    if (!b->watchdog_device[0]) {
        LOG_I("run", "watchdog: no hardware watchdog (board.watchdog_device is \"\")");
    } else if (board_wdt_open(b->watchdog_device, b->watchdog_timeout_s, &sv->wdt, err,
                              sizeof err) != 0) {
        /* Not fatal: a box without a watchdog driver still needs its uplink. */
        if (errno == ENOENT)
            LOG_I("run", "watchdog: %s; running without a hardware watchdog", err);
        else
            LOG_W("run", "watchdog: %s; running without a hardware watchdog", err);
    } else {
        unsigned t = board_wdt_timeout_s(sv->wdt);
        if (t)
            LOG_I("run", "watchdog: %s armed, timeout %u s", b->watchdog_device, t);
        else
            LOG_I("run", "watchdog: %s opened (not a watchdog device: keepalives only)",
                  b->watchdog_device);
    }
    uint64_t sd_ms = board_sd_watchdog_ms();
    if (sd_ms) {
        LOG_I("run", "watchdog: systemd WatchdogSec %llu ms, pinged every second while alive",
              (unsigned long long)sd_ms);
        if (sd_ms < 3000)
            LOG_W("run",
                  "watchdog: systemd WatchdogSec %llu ms is too short for 1 s pings; "
                  "use 30s",
                  (unsigned long long)sd_ms);
    }
}

static void check_alive(struct supervisor *sv, uint64_t now)
{
    struct alive_stale st[8];
    size_t n = alive_stale(now, st, ARRAY_LEN(st));
    if (n == 0) {
        if (sv->hung_since) {
            LOG_W("run", "watchdog: every thread alive again after %llu ms, keepalives resume",
                  (unsigned long long)(now - sv->hung_since));
            state_add_event(sv->st, "corridor", "watchdog", "all threads alive again");
            sv->hung_since = 0;
        }
        char err[384];
        bool failing = sv->wdt && board_wdt_kick(sv->wdt, err, sizeof err) != 0;
        if (failing && !sv->wdt_failing)
            LOG_W("run", "%s", err);
        else if (!failing && sv->wdt_failing)
            LOG_I("run", "watchdog: keepalives written again");
        sv->wdt_failing = failing;
        board_sd_watchdog();
        sv->led = !sv->led; /* a blinking status LED: the supervisor and its threads run */
        board_led_set(sv->board, BOARD_LED_STATUS, sv->led);
        return;
    }
    if (!sv->hung_since) {
        sv->hung_since = now;
        for (size_t i = 0; i < n && i < ARRAY_LEN(st); i++) {
            LOG_E("run",
                  "watchdog: thread %s hung: no heartbeat for %llu ms (limit %u ms); "
                  "keepalives stopped",
                  st[i].name, (unsigned long long)st[i].age_ms, st[i].limit_ms);
            state_add_event(sv->st, "corridor", "watchdog", "thread %s hung (%llu ms)", st[i].name,
                            (unsigned long long)st[i].age_ms);
        }
        board_led_set(sv->board, BOARD_LED_STATUS, false);
    } else if (now - sv->hung_since >= HANG_EXIT_MS) {
        LOG_E("run",
              "watchdog: thread %s still hung after %u s more; exiting with status %d "
              "so that systemd restarts corridor",
              st[0].name, HANG_EXIT_MS / 1000, EXIT_HUNG);
        /* No magic close: the hardware watchdog keeps counting and resets the board unless
         * the restarted process feeds it in time. No joins: a hung thread never returns. */
        _exit(EXIT_HUNG);
    }
}

static void check_thermal(struct supervisor *sv, uint64_t now)
{
    if (now < sv->next_thermal)
        return;
    sv->next_thermal = now + THERMAL_PERIOD_MS;
    struct board_thermal r[BOARD_MAX_ZONES];
    size_t n = 0;
    enum board_thermal_level worst = board_thermal_poll(sv->board, r, ARRAY_LEN(r), &n);
    for (size_t i = 0; i < n; i++) {
        if (!r[i].changed)
            continue;
        const char *lvl = board_thermal_level_name(r[i].level);
        log_msg(r[i].level == BOARD_THERMAL_OK ? LOGL_INFO : LOGL_WARN, "board",
                "thermal: %s%s%s%s at %.1f degC: %s (warn %.0f, crit %.0f)", r[i].zone,
                r[i].type[0] ? " (" : "", r[i].type, r[i].type[0] ? ")" : "", r[i].temp_c, lvl,
                r[i].warn_c, r[i].crit_c);
        state_add_event(sv->st, "board", "thermal", "%s at %.1f degC: %s", r[i].zone, r[i].temp_c,
                        lvl);
    }
    bool slow = sv->cfg->board.thermal_slow_poll && worst == BOARD_THERMAL_CRIT;
    if (slow != sv->slow_poll) {
        sv->slow_poll = slow;
        for (unsigned i = 0; i < CFG_MAX_LINKS; i++)
            modem_set_slow_poll(sv->modems[i], slow);
        LOG_W("board", "thermal: %s",
              slow ? "critical, modems poll 5x slower"
                   : "back under critical, modems poll normally");
        state_add_event(sv->st, "board", "thermal",
                        slow ? "modem polling slowed down" : "modem polling back to normal");
    }
}

static void housekeeping(struct supervisor *sv)
{
    uint64_t now = mono_ms();
    check_alive(sv, now);
    check_thermal(sv, now);
    struct state_tunnel t;
    state_get_tunnel(sv->st, &t);
    board_led_set(sv->board, BOARD_LED_LINK, t.valid && strcmp(t.hub_state, "connected") == 0);
}

/* The stop guard: a stop that outlives STOP_GUARD_MS waits for a thread that will never
 * return. Name it, disarm the hardware watchdog (the stop was asked for: no board reset) and
 * exit non-zero rather than hang until systemd's SIGKILL. */
struct stop_guard {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    const char *stage; /* which part is being stopped (under mu) */
    struct supervisor *sv;
};

static void guard_stage(struct stop_guard *g, const char *stage)
{
    pthread_mutex_lock(&g->mu);
    g->stage = stage;
    pthread_mutex_unlock(&g->mu);
}

static void *stop_guard_thread(void *arg)
{
    struct stop_guard *g = arg;
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += STOP_GUARD_MS / 1000;
    pthread_mutex_lock(&g->mu);
    int rc = 0; /* g->cv uses CLOCK_MONOTONIC (stop_guard_start) */
    while (!g->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&g->cv, &g->mu, &dl);
    bool done = g->done;
    const char *stage = g->stage ? g->stage : "?";
    pthread_mutex_unlock(&g->mu);
    if (done)
        return NULL;
    /* Threads already stopped no longer beat either: only those past their limit are named,
     * the stage says whose stop never returned. */
    struct alive_stale st[8];
    size_t n = alive_stale(mono_ms(), st, ARRAY_LEN(st));
    for (size_t i = 0; i < n && i < ARRAY_LEN(st); i++)
        LOG_E("run", "stop: thread %s hung (no heartbeat for %llu ms)", st[i].name,
              (unsigned long long)st[i].age_ms);
    LOG_E("run",
          "stop: stopping %s has not finished after %u s (a hung thread cannot be joined); "
          "exiting with status %d",
          stage, STOP_GUARD_MS / 1000, EXIT_HUNG);
    board_wdt_close(g->sv->wdt, true);
    _exit(EXIT_HUNG);
}

static int stop_guard_start(struct stop_guard *g, pthread_t *th)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&g->mu, NULL);
    return pthread_create(th, NULL, stop_guard_thread, g);
}

static void stop_guard_end(struct stop_guard *g, pthread_t th, bool started)
{
    pthread_mutex_lock(&g->mu);
    g->done = true;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    if (started)
        pthread_join(th, NULL);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

static int act_upload_status(void *ctx, struct http_upload_status *out)
{
    struct supervisor *sv = ctx;
    struct uploader_stats us;
    if (recorder_upload_stats(sv->recorder, &us) != 0)
        return -1;
    memset(out, 0, sizeof *out);
    out->attempts = us.attempts;
    out->failures = us.failures;
    out->delivered = us.delivered;
    out->consecutive_failures = us.consecutive_failures;
    out->last_http = us.last_http;
    str_copy(out->last_error, us.last_error, sizeof out->last_error);
    return 0;
}

/* ---- SIGHUP: configuration reload ----------------------------------------------------------
 * The new file is loaded and checked like at start; a bad one changes nothing (the error names
 * the file and key). What can change without dropping the tunnel or a modem is applied: the log
 * level, the routing section (the netcfg thread restarts on the new file: rules are re-made in
 * milliseconds, the tunnel is untouched), the tunnel's traffic classes and hub list. Anything
 * else needs a restart, and the reload says which sections. */
#define SAME(a, b) (memcmp(&(a), &(b), sizeof(a)) == 0)

static void add_name(char *buf, size_t n, size_t *off, const char *name)
{
    str_appendf(buf, n, off, "%s%s", *off ? ", " : "", name);
}

static void reload(struct supervisor *sv)
{
    const struct config *cur = sv->reloaded ? sv->reloaded : sv->cfg;
    struct config *nc = calloc(1, sizeof *nc);
    char err[512];
    if (!nc) {
        LOG_E("run", "reload: out of memory");
        return;
    }
    if (config_load(cur->path, nc, err, sizeof err) != 0) {
        LOG_E("run", "reload refused, nothing changed: %s", err);
        state_add_event(sv->st, "run", "reload", "refused, nothing changed: %s", err);
        free(nc);
        return;
    }
    char applied[256] = "", restart[256] = "";
    size_t ao = 0, ro = 0;
    if (nc->log.level != cur->log.level) {
        log_set_level(nc->log.level);
        add_name(applied, sizeof applied, &ao, "log.level");
    }
    if (nc->log.syslog != cur->log.syslog)
        add_name(restart, sizeof restart, &ro, "log.syslog");
    /* The tunnel: classes and hubs live, anything else needs a restart. */
    struct cfg_tunnel a = cur->tunnel, b = nc->tunnel;
    bool classes = !(a.nclasses == b.nclasses && SAME(a.classes, b.classes));
    bool hubs = !(a.nhubs == b.nhubs && SAME(a.hubs, b.hubs));
    memset(a.classes, 0, sizeof a.classes), memset(b.classes, 0, sizeof b.classes);
    memset(a.hubs, 0, sizeof a.hubs), memset(b.hubs, 0, sizeof b.hubs);
    a.nclasses = b.nclasses = a.nhubs = b.nhubs = 0;
    bool tunnel_other = !SAME(a, b);
    bool links = !(cur->nlinks == nc->nlinks && SAME(cur->links, nc->links));
    if (tunnel_other || links) {
        add_name(restart, sizeof restart, &ro, links ? "links" : "tunnel");
    } else {
        if (classes) {
            if (tunnel_set_classes(sv->tunnel, &nc->tunnel, err, sizeof err) == 0)
                add_name(applied, sizeof applied, &ao, "tunnel.classes");
            else
                LOG_W("run", "reload: tunnel.classes: %s", err);
        }
        if (hubs && nc->tunnel.hubs_url[0]) {
            add_name(applied, sizeof applied, &ao, "tunnel.hubs (provisioning keeps the list)");
        } else if (hubs) {
            char list[CFG_MAX_HUBS][64];
            memcpy(list, nc->tunnel.hubs, sizeof list);
            if (tunnel_set_hubs(sv->tunnel, list, nc->tunnel.nhubs, err, sizeof err) == 0)
                add_name(applied, sizeof applied, &ao, "tunnel.hubs");
            else
                LOG_W("run", "reload: tunnel.hubs: %s", err);
        }
    }
    bool routing = !SAME(cur->routing, nc->routing);
    if (routing && !links && !tunnel_other) {
        /* netcfg reads its file every second: it must run on the new one, which then stays. */
        netcfg_stop(sv->netcfg);
        sv->netcfg = NULL;
        if (nc->routing.enabled && netcfg_start(nc, sv->st, &sv->netcfg, err, sizeof err) != 0)
            LOG_E("run", "reload: %s", err);
        add_name(applied, sizeof applied, &ao, "routing");
    } else if (routing) {
        add_name(restart, sizeof restart, &ro, "routing");
    }
    if (strcmp(cur->vehicle_id, nc->vehicle_id) || strcmp(cur->data_dir, nc->data_dir))
        add_name(restart, sizeof restart, &ro, "vehicle_id/data_dir");
    if (!SAME(cur->dashboard, nc->dashboard))
        add_name(restart, sizeof restart, &ro, "dashboard");
    if (!SAME(cur->telemetry, nc->telemetry))
        add_name(restart, sizeof restart, &ro, "telemetry");
    if (!SAME(cur->board, nc->board))
        add_name(restart, sizeof restart, &ro, "board");
    if (!SAME(cur->position, nc->position) || !SAME(cur->coverage, nc->coverage))
        add_name(restart, sizeof restart, &ro, "position/coverage");
    if (strcmp(cur->control_socket, nc->control_socket))
        add_name(restart, sizeof restart, &ro, "control_socket");
    LOG_I("run", "reload of %s: applied: %s; needs a restart: %s", nc->path,
          applied[0] ? applied : "nothing", restart[0] ? restart : "nothing");
    state_add_event(sv->st, "run", "reload", "applied: %s; needs a restart: %s",
                    applied[0] ? applied : "nothing", restart[0] ? restart : "nothing");
    /* Keep the newest file only when netcfg runs on it; the one it replaced is no longer read
     * by anyone (the other threads still read the file they started with). */
    if (routing && !links && !tunnel_other) {
        free(sv->reloaded);
        sv->reloaded = nc;
    } else {
        free(nc);
    }
}

int run_daemon(const struct config *cfg)
{
    log_init("corridor", cfg->log.level, cfg->log.syslog);
    struct supervisor sv = {.cfg = cfg, .lockfd = -1};
    char err[512];

    /* Block the signals we handle before any thread exists, so all threads inherit the mask
     * and only the supervisor receives them through sigtimedwait. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    alive_test_hang_from_env(); /* test hook, before any thread exists */

    LOG_I("run", "corridor %s starting: vehicle %s, config %s, %u links", CORRIDOR_VERSION,
          cfg->vehicle_id, cfg->path, cfg->nlinks);
    if (make_dirs(cfg->data_dir, err, sizeof err) || lock_data_dir(&sv, err, sizeof err)) {
        LOG_E("run", "%s", err);
        return 1;
    }
    sv.st = state_new(cfg);
    if (!sv.st) {
        LOG_E("run", "out of memory");
        return 1;
    }
    state_add_event(sv.st, "corridor", "start", "corridor %s started", CORRIDOR_VERSION);
    announce_sections(cfg);

    int status = 0;
    struct board_config bc = {.off_ms = cfg->board.power_off_ms};
    board_power_backend_parse(cfg->board.power, &bc.power); /* validated by config */
    str_copy(bc.sim_control, cfg->board.sim_control, sizeof bc.sim_control);
    str_copy(bc.profile, cfg->board.profile, sizeof bc.profile);
    str_copy(bc.gpio_record, cfg->board.gpio_record, sizeof bc.gpio_record);
    str_copy(bc.thermal_root, cfg->board.thermal_root, sizeof bc.thermal_root);
    if (board_open(&bc, &sv.board, err, sizeof err) != 0) {
        LOG_E("run", "%s", err);
        status = 1;
        goto stop;
    }
    LOG_I("run", "board: profile %s (%s), modem power control: %s%s",
          board_get_profile(sv.board)->name, board_get_profile(sv.board)->source, cfg->board.power,
          cfg->board.gpio_record[0] ? " (recording, no GPIO driven)" : "");
    /* Start order = data flow, consumers first: the data plane, then the policy that steers
     * it, then the sensors that feed the policy. Stop order is the reverse. */
    if (cfg->tunnel.enabled) {
        alive_register("tunnel", NULL, STALE_TUNNEL_MS);
        if (tunnel_start(cfg, sv.st, &sv.tunnel, err, sizeof err) != 0) {
            LOG_E("run", "tunnel: %s", err);
            status = 1;
            goto stop;
        }
        char hubs[CFG_MAX_HUBS][64];
        unsigned nh = tunnel_start_hubs(sv.tunnel, hubs);
        LOG_I("run", "tunnel: %s on %u links, %u hubs (first %s)", cfg->tunnel.tun, cfg->nlinks, nh,
              nh ? hubs[0] : "none");
    }
    if (cfg->tunnel.enabled && cfg->tunnel.hubs_url[0] &&
        provision_start(cfg, sv.st, sv.tunnel, &sv.provision, err, sizeof err) != 0) {
        LOG_E("run", "%s", err);
        status = 1;
        goto stop;
    }
    if (cfg->routing.enabled)
        alive_register("netcfg", NULL, STALE_NETCFG_MS);
    if (cfg->routing.enabled && netcfg_start(cfg, sv.st, &sv.netcfg, err, sizeof err) != 0) {
        LOG_E("run", "%s", err);
        status = 1;
        goto stop;
    }
    if (cfg->telemetry.enabled)
        alive_register("recorder", NULL, STALE_RECORDER_MS);
    if (cfg->telemetry.enabled && recorder_start(cfg, sv.st, &sv.recorder, err, sizeof err) != 0) {
        LOG_E("run", "%s", err);
        status = 1;
        goto stop;
    }
    alive_register("steer", NULL, STALE_STEER_MS);
    if (steer_start(cfg, sv.st, sv.tunnel, &sv.steer, err, sizeof err) != 0) {
        LOG_E("run", "%s", err);
        status = 1;
        goto stop;
    }
    if (start_modems(&sv) != 0) {
        status = 1;
        goto stop;
    }
    if (cfg->dashboard.enabled) {
        struct http_actions ha = {.ctx = &sv,
                                  .link_set_enabled = act_link_set_enabled,
                                  .modem_reset = act_modem_reset,
                                  .modem_balance = act_modem_balance,
                                  .upload_status = act_upload_status,
                                  .password_hash = cfg->dashboard.password_hash,
                                  .read_only_require_login = !cfg->dashboard.read_only_public};
        if (http_start(cfg, sv.st, &ha, &sv.http, err, sizeof err) != 0) {
            /* The crew loses the page, the passengers keep their uplink. */
            LOG_E("run", "dashboard: %s", err);
            state_add_event(sv.st, "dashboard", "error", "%s", err);
        } else {
            LOG_I("run", "dashboard: http://%s/", cfg->dashboard.listen);
        }
    }
    int control_slot = alive_register("control", NULL, STALE_CONTROL_MS);
    if (control_start(cfg->control_socket, sv.st, cfg->vehicle_id, &sv.control, err, sizeof err) !=
        0) {
        /* The control socket is a convenience; the vehicle keeps working without it. */
        LOG_W("run", "%s; `corridor status` will not work", err);
        alive_unregister(control_slot);
    }
    open_watchdog(&sv);
    char ready[128];
    snprintf(ready, sizeof ready, "vehicle %s, %u links", cfg->vehicle_id, cfg->nlinks);
    board_sd_ready(ready);

    for (;;) {
        struct timespec tick = {.tv_sec = 1, .tv_nsec = 0};
        int sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            LOG_I("run", "%s received, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        tunnel_tick(sv.tunnel);
        housekeeping(&sv);
        if (sig == SIGHUP)
            reload(&sv);
    }

stop:;
    uint64_t t0 = mono_ms();
    board_sd_stopping();
    struct stop_guard guard = {.sv = &sv};
    pthread_t guard_th;
    bool guarded = stop_guard_start(&guard, &guard_th) == 0;
    guard_stage(&guard, "http");
    http_stop(sv.http);
    guard_stage(&guard, "control");
    control_stop(sv.control);
    guard_stage(&guard, "modems");
    board_interrupt(sv.board); /* a power cycle in progress must not hold up the stop */
    stop_modems(&sv);
    guard_stage(&guard, "steer");
    steer_stop(sv.steer);
    guard_stage(&guard, "recorder");
    recorder_stop(sv.recorder);
    guard_stage(&guard, "netcfg");
    netcfg_stop(sv.netcfg);
    provision_stop(sv.provision);
    guard_stage(&guard, "tunnel");
    tunnel_stop(sv.tunnel);
    stop_guard_end(&guard, guard_th, guarded);
    /* Every thread joined: a clean stop disarms the hardware watchdog (magic close). */
    board_wdt_close(sv.wdt, true);
    alive_reset();
    board_led_set(sv.board, BOARD_LED_STATUS, false);
    board_led_set(sv.board, BOARD_LED_LINK, false);
    board_close(sv.board);
    LOG_I("run", "all threads stopped in %llu ms", (unsigned long long)(mono_ms() - t0));
    free(sv.reloaded);
    state_free(sv.st);
    if (sv.lockfd >= 0)
        close(sv.lockfd);
    return status;
}
