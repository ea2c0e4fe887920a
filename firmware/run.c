/* run: the supervisor of `corridor run`. See run.h and docs/architecture.md.
 *
 * Threads and owners:
 *   main thread      supervisor: signals (sigtimedwait), 1 s housekeeping, start/stop order
 *   modem-<link>     one per configured modem (modem/), owned through struct modem
 *   control          the Unix control socket (firmware/control.c)
 *   http (MHD pool)  dashboard, JSON API, /metrics (firmware/http.c), when "dashboard" is set
 *   agg-client       the tunnel data plane (agg/), when "tunnel" is configured
 *   steer            1 Hz: position, coverage map, prediction, weights (firmware/steer.c)
 *   position         gpsd client (telemetry/), owned by steer
 *   recorder         telemetry records -> outbox, when "telemetry" is configured
 *   uploader         outbox -> collector (libcurl), owned by recorder
 * Every thread is started here and joined here; nothing outlives run_daemon(). */
#include "firmware/run.h"
#include "firmware/control.h"
#include "firmware/state.h"
#include "firmware/tunnel.h"
#include "firmware/netcfg.h"
#include "firmware/provision.h"
#include "firmware/steer.h"
#include "firmware/recorder.h"
#include "firmware/http.h"
#include "modem/modem.h"
#include "board/board.h"

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
    int lockfd;
};

/* ---- modem callbacks: run on the modem threads, must not block (state has a short mutex) -- */

static void on_modem_sample(void *ctx, const struct modem_sample *s)
{
    struct supervisor *sv = ctx;
    state_put_modem(sv->st, s);
    steer_feed_modem(sv->steer, s); /* its GNSS: the fallback position source */
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
    if (board_open(&bc, &sv.board, err, sizeof err) != 0) {
        LOG_E("run", "%s", err);
        status = 1;
        goto stop;
    }
    LOG_I("run", "board: modem power control: %s", cfg->board.power);
    /* Start order = data flow, consumers first: the data plane, then the policy that steers
     * it, then the sensors that feed the policy. Stop order is the reverse. */
    if (cfg->tunnel.enabled) {
        if (tunnel_start(cfg, sv.st, &sv.tunnel, err, sizeof err) != 0) {
            LOG_E("run", "tunnel: %s", err);
            status = 1;
            goto stop;
        }
        LOG_I("run", "tunnel: %s on %u links, %u hubs (first %s)", cfg->tunnel.tun, cfg->nlinks,
              cfg->tunnel.nhubs, cfg->tunnel.hubs[0]);
    }
    if (cfg->tunnel.enabled && cfg->tunnel.hubs_url[0] &&
        provision_start(cfg, sv.st, sv.tunnel, &sv.provision, err, sizeof err) != 0) {
        LOG_E("run", "%s", err);
        status = 1;
        goto stop;
    }
    if (cfg->routing.enabled && netcfg_start(cfg, sv.st, &sv.netcfg, err, sizeof err) != 0) {
        LOG_E("run", "%s", err);
        status = 1;
        goto stop;
    }
    if (cfg->telemetry.enabled && recorder_start(cfg, sv.st, &sv.recorder, err, sizeof err) != 0) {
        LOG_E("run", "%s", err);
        status = 1;
        goto stop;
    }
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
    if (control_start(cfg->control_socket, sv.st, cfg->vehicle_id, &sv.control, err, sizeof err) !=
        0) {
        /* The control socket is a convenience; the vehicle keeps working without it. */
        LOG_W("run", "%s; `corridor status` will not work", err);
    }

    for (;;) {
        struct timespec tick = {.tv_sec = 1, .tv_nsec = 0};
        int sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            LOG_I("run", "%s received, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        tunnel_tick(sv.tunnel);
        if (sig == SIGHUP)
            LOG_W("run", "SIGHUP: configuration reload is not supported yet; restart to apply");
    }

stop:;
    uint64_t t0 = mono_ms();
    http_stop(sv.http);
    control_stop(sv.control);
    stop_modems(&sv);
    steer_stop(sv.steer);
    recorder_stop(sv.recorder);
    netcfg_stop(sv.netcfg);
    provision_stop(sv.provision);
    tunnel_stop(sv.tunnel);
    board_close(sv.board);
    LOG_I("run", "all threads stopped in %llu ms", (unsigned long long)(mono_ms() - t0));
    state_free(sv.st);
    if (sv.lockfd >= 0)
        close(sv.lockfd);
    return status;
}
