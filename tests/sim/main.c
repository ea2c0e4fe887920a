/* corridor-modemsim: simulates N SIMCom (or Quectel) modems on pseudo-terminals, driven by a
 * scenario file, so the appliance's real serial path (termios backend) can be tested against
 * modems that echo, interleave URCs, hang, reboot, spew garbage and vanish like real ones.
 *
 * One thread, one poll loop over every pty master and the control socket. Each modem's faults
 * only change that modem's state, so one modem's misbehaviour never delays another.
 * See tests/sim/README.md for the scenario format and the control protocol. */
#include "sim.h"

#include "common/common.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#define SUB             "modemsim"
#define MAX_RT_FAULTS   16
#define MAX_PENDING     8
#define MAX_CTL_CLIENTS 8
#define CTL_LINE_MAX    512
#define MAX_BY_CMD      64

enum mstate { ST_BOOTING = 0, ST_READY, ST_VANISHED };
static const char *const mstate_names[] = {"booting", "ready", "vanished"};

struct rt_fault {
    bool used;
    enum sim_fault_kind kind;
    double start, end; /* absolute scenario seconds */
};

enum pend_kind { PEND_USSD, PEND_NETOPEN };
struct pending {
    bool used;
    enum pend_kind kind;
    double at; /* absolute scenario seconds */
    int ussd_index;
};

struct modem {
    const struct sim_modem_cfg *cfg;
    struct sim_at at;
    int mfd, sfd;
    char pty[64];
    enum mstate st;
    double boot_at;      /* ST_BOOTING: boot URCs at this time */
    bool reboot_vanish;  /* the current reboot took the port away */
    bool fault_vanished; /* taken away by a vanish fault */
    char line[SIM_LINE_MAX + 1];
    size_t line_len;
    bool line_overflow;
    struct pending pend[MAX_PENDING];
    struct rt_fault rt[MAX_RT_FAULTS];
    double cure_until; /* hang/silence/garbage faults ignored until then (absolute s) */
    double vanish_at;  /* reboot with reboot_vanish: the port goes away at this time, or -1 */
    double next_noise; /* garbage fault: next spontaneous burst */
    /* overrides from the control socket ("set") */
    uint32_t ov_mask;
    double ov[F_N];
    bool ov_band;
    char ov_bandstr[32];
    unsigned rng;
    uint64_t commands, errors, bytes_in, bytes_out, dropped_out, garbage, reboots, vanishes,
        powercycles;
    struct {
        char name[24];
        uint64_t n;
    } by_cmd[MAX_BY_CMD];
    size_t n_by_cmd;
};

struct ctl_client {
    int fd;
    char buf[CTL_LINE_MAX];
    size_t len;
};

static struct {
    struct sim_scenario sc;
    struct modem modems[SIM_MAX_MODEMS];
    size_t n;
    double speed;
    uint64_t t0_ms;
    bool verbose;
    int ctl_fd;
    char ctl_path[108];
    struct ctl_client ctl[MAX_CTL_CLIENTS];
} g;

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static double now_abs(void)
{
    return (double)(mono_ms() - g.t0_ms) / 1000.0 * g.speed;
}

static unsigned rnd(struct modem *m)
{
    /* xorshift32: deterministic per modem seed, no global state */
    unsigned x = m->rng ? m->rng : 2463534242u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    m->rng = x;
    return x;
}

/* ---- faults ------------------------------------------------------------------------------- */

static bool curable(enum sim_fault_kind k)
{
    return k == SIM_FAULT_HANG || k == SIM_FAULT_SILENCE || k == SIM_FAULT_GARBAGE;
}

/* Is a fault of this kind active at absolute time t? *end_out gets the absolute end time.
 * Scenario faults are skipped while a power-cycle/reset cure covers them; faults started
 * through the control socket are removed by the cure instead. */
static bool fault_active(struct modem *m, enum sim_fault_kind k, double t, double *end_out)
{
    bool active = false;
    double end = 0;
    double tl = sim_timeline_t(&g.sc, t);
    bool cured = curable(k) && t < m->cure_until;
    for (size_t i = 0; i < m->cfg->n_faults && !cured; i++) {
        const struct sim_fault *f = &m->cfg->faults[i];
        if (f->kind == k && tl >= f->start && tl < f->start + f->duration) {
            active = true;
            double e = t + (f->start + f->duration - tl);
            end = e > end ? e : end;
        }
    }
    for (int i = 0; i < MAX_RT_FAULTS; i++) {
        struct rt_fault *f = &m->rt[i];
        if (f->used && t >= f->end)
            f->used = false;
        if (f->used && f->kind == k && t >= f->start) {
            active = true;
            end = f->end > end ? f->end : end;
        }
    }
    if (end_out)
        *end_out = end;
    return active;
}

/* End the curable faults active now (power-cycle, or a reset for silence). */
static void cure(struct modem *m, double t, bool hang_too)
{
    for (int k = 0; k < SIM_FAULT_N; k++) {
        if (!curable((enum sim_fault_kind)k) || (k == SIM_FAULT_HANG && !hang_too))
            continue;
        double end;
        if (fault_active(m, (enum sim_fault_kind)k, t, &end) && end > m->cure_until)
            m->cure_until = end;
        for (int i = 0; i < MAX_RT_FAULTS; i++)
            if (m->rt[i].used && m->rt[i].kind == (enum sim_fault_kind)k)
                m->rt[i].used = false;
    }
}

/* ---- pty ---------------------------------------------------------------------------------- */

static int mkdir_parents(const char *path)
{
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

static void pty_close(struct modem *m)
{
    if (m->mfd >= 0)
        close(m->mfd);
    if (m->sfd >= 0)
        close(m->sfd);
    m->mfd = m->sfd = -1;
    m->pty[0] = '\0';
    unlink(m->cfg->path);
}

/* Open a fresh pty in raw mode and point the modem's path at it (symlink + rename, so a reader
 * never sees the path missing or half-made). */
static int pty_open(struct modem *m)
{
    int mfd, sfd;
    char name[64];
    if (openpty(&mfd, &sfd, name, NULL, NULL) < 0) {
        LOG_E(SUB, "%s: openpty: %s", m->cfg->name, strerror(errno));
        return -1;
    }
    struct termios tio;
    if (tcgetattr(sfd, &tio) == 0) {
        cfmakeraw(&tio);
        cfsetispeed(&tio, B115200);
        cfsetospeed(&tio, B115200);
        tcsetattr(sfd, TCSANOW, &tio);
    }
    fcntl(mfd, F_SETFL, fcntl(mfd, F_GETFL) | O_NONBLOCK);
    fcntl(mfd, F_SETFD, FD_CLOEXEC);
    fcntl(sfd, F_SETFD, FD_CLOEXEC);
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s.tmp%d", m->cfg->path, (int)getpid());
    unlink(tmp);
    if (mkdir_parents(m->cfg->path) < 0 || symlink(name, tmp) < 0 ||
        rename(tmp, m->cfg->path) < 0) {
        LOG_E(SUB, "%s: cannot link %s -> %s: %s", m->cfg->name, m->cfg->path, name,
              strerror(errno));
        unlink(tmp);
        close(mfd);
        close(sfd);
        return -1;
    }
    m->mfd = mfd;
    m->sfd = sfd;
    snprintf(m->pty, sizeof(m->pty), "%s", name);
    LOG_I(SUB, "%s: %s -> %s", m->cfg->name, m->cfg->path, name);
    return 0;
}

static void out_write(struct modem *m, const char *buf, size_t len)
{
    if (m->mfd < 0 || len == 0)
        return;
    ssize_t w = write(m->mfd, buf, len);
    if (w > 0)
        m->bytes_out += (uint64_t)w;
    /* a full pty buffer loses output, as a UART FIFO would when nobody reads */
    if (w < (ssize_t)len)
        m->dropped_out += len - (w > 0 ? (size_t)w : 0);
}

/* ---- modem life cycle --------------------------------------------------------------------- */

static void vanish(struct modem *m, const char *why)
{
    LOG_I(SUB, "%s: port vanishes (%s)", m->cfg->name, why);
    pty_close(m);
    m->vanishes++;
}

/* Back to power-on defaults, except what the SIM7600 keeps in NV memory across a reset: the
 * PDP context (AT+CGDCONT) and the network mode (AT+CNMP). */
static void reset_keep_nv(struct modem *m)
{
    char apn[sizeof(m->at.apn)];
    memcpy(apn, m->at.apn, sizeof(apn));
    int cnmp = m->at.cnmp;
    sim_at_reset(&m->at, m->cfg);
    memcpy(m->at.apn, apn, sizeof(apn));
    m->at.cnmp = cnmp ? cnmp : 2;
}

static void start_reboot(struct modem *m, double t, double dur, const char *why)
{
    m->reboots++;
    m->st = ST_BOOTING;
    m->boot_at = t + dur;
    m->line_len = 0;
    m->line_overflow = false;
    memset(m->pend, 0, sizeof(m->pend));
    reset_keep_nv(m);
    LOG_I(SUB, "%s: reboot (%s), %.1f s", m->cfg->name, why, dur);
    /* with reboot_vanish the USB device drops off a moment after the OK has gone out (closing
     * the master at once would flush the OK from the reader's queue) */
    m->vanish_at = -1;
    if (m->cfg->reboot_vanish && !m->fault_vanished && m->mfd >= 0)
        m->vanish_at = t + (dur / 2 < 1.0 ? dur / 2 : 1.0);
}

static void boot_done(struct modem *m, double t)
{
    if (m->reboot_vanish) {
        m->reboot_vanish = false;
        if (pty_open(m) < 0)
            return; /* retried on the next tick */
    }
    m->st = ST_READY;
    reset_keep_nv(m);
    if (!fault_active(m, SIM_FAULT_SILENCE, t, NULL) && !fault_active(m, SIM_FAULT_HANG, t, NULL)) {
        char buf[256];
        size_t n = sim_at_boot_urcs(&m->at, buf, sizeof(buf));
        out_write(m, buf, n);
    }
    LOG_I(SUB, "%s: booted", m->cfg->name);
}

static void current_radio(struct modem *m, double t, struct sim_radio *rd)
{
    sim_eval(&g.sc, m->cfg, sim_timeline_t(&g.sc, t), rd);
    double *dst[F_N] = {
        [F_RSRP] = &rd->rsrp,       [F_RSRQ] = &rd->rsrq,     [F_SINR] = &rd->sinr,
        [F_RSSI] = &rd->rssi,       [F_RSCP] = &rd->rscp,     [F_ECIO] = &rd->ecio,
        [F_LAT] = &rd->lat,         [F_LON] = &rd->lon,       [F_ALT] = &rd->alt,
        [F_SPEED] = &rd->speed_kmh, [F_COURSE] = &rd->course,
    };
    for (int f = 0; f < F_N; f++) {
        if (!(m->ov_mask & (1u << f)))
            continue;
        double v = m->ov[f];
        if (dst[f])
            *dst[f] = v;
        else if (f == F_CSQ)
            rd->csq = (int)v;
        else if (f == F_TAC)
            rd->tac = (long)v;
        else if (f == F_CELL)
            rd->cell = (long long)v;
        else if (f == F_PCI)
            rd->pci = (long)v;
        else if (f == F_CHANNEL)
            rd->channel = (long)v;
        else if (f == F_BW)
            rd->bw = (long)v;
        else if (f == F_FIX)
            rd->fix = v != 0;
        else if (f == F_REG)
            rd->reg = (enum sim_reg)(int)v;
        else if (f == F_RAT)
            rd->rat = (enum sim_rat)(int)v;
    }
    if ((m->ov_mask & (1u << F_RSSI)) && !(m->ov_mask & (1u << F_CSQ))) {
        int q = (int)floor((rd->rssi + 113.0) / 2.0 + 0.5);
        rd->csq = q < 0 ? 0 : q > 31 ? 31 : q;
    }
    if (rd->rat == SIM_RAT_NONE)
        rd->csq = 99;
    if (m->ov_band)
        snprintf(rd->band, sizeof(rd->band), "%s", m->ov_bandstr);
}

static void count_by_cmd(struct modem *m, const char *name)
{
    for (size_t i = 0; i < m->n_by_cmd; i++)
        if (strcmp(m->by_cmd[i].name, name) == 0) {
            m->by_cmd[i].n++;
            return;
        }
    if (m->n_by_cmd < MAX_BY_CMD) {
        snprintf(m->by_cmd[m->n_by_cmd].name, sizeof(m->by_cmd[0].name), "%s", name);
        m->by_cmd[m->n_by_cmd++].n = 1;
    }
}

static void add_pending(struct modem *m, enum pend_kind k, double at, int idx)
{
    for (int i = 0; i < MAX_PENDING; i++)
        if (!m->pend[i].used) {
            m->pend[i] = (struct pending){true, k, at, idx};
            return;
        }
}

/* Binary noise and an over-long line, as a modem with a broken firmware or a bad USB link
 * produces. Bounded: at most ~2.3 kB per burst. */
static size_t make_garbage(struct modem *m, char *buf, size_t n)
{
    size_t len = 16 + rnd(m) % 200, o = 0;
    for (; o < len && o < n; o++)
        buf[o] = (char)(rnd(m) & 0xFF);
    if (rnd(m) % 3 == 0) {
        size_t ll = 1500 + rnd(m) % 500;
        for (size_t i = 0; i < ll && o + 2 < n; i++)
            buf[o++] = (char)('!' + rnd(m) % 90);
        if (o + 2 < n) {
            buf[o++] = '\r';
            buf[o++] = '\n';
        }
    }
    m->garbage++;
    return o;
}

static void exec_line(struct modem *m, double t, bool silent, bool garbage, char *out, size_t *olen,
                      size_t osize)
{
    struct sim_radio rd;
    current_radio(m, t, &rd);
    bool cpsi_fault = fault_active(m, SIM_FAULT_CPSI_ERROR, t, NULL);
    static struct sim_reply r; /* 8 kB: keep it off the stack; single-threaded */
    m->line[m->line_len] = '\0';
    if (m->line_overflow) {
        r.len = 0;
        r.action = SIM_ACT_NONE;
        r.n_cmds = 0;
        r.error = true;
        memcpy(r.buf, "\r\nERROR\r\n", 9);
        r.len = 9;
    } else {
        sim_at_exec(&m->at, &rd, cpsi_fault, m->line, &r);
    }
    if (r.len == 0 && r.n_cmds == 0)
        goto done; /* no AT prefix: a modem ignores it */
    m->commands++;
    if (r.error)
        m->errors++;
    for (size_t i = 0; i < r.n_cmds; i++)
        count_by_cmd(m, r.cmd_names[i]);
    if (g.verbose)
        LOG_I(SUB, "%s <- %s%s%s", m->cfg->name, m->line_overflow ? "(over-long line) " : "",
              m->line, silent ? " (silent)" : "");
    const struct sim_ussd *u = NULL;
    if (r.action == SIM_ACT_USSD && r.ussd_index >= 0)
        u = &m->cfg->ussd[r.ussd_index];
    if (!silent) {
        if (garbage) {
            *olen += make_garbage(m, out + *olen, osize - *olen);
        }
        if (!garbage || rnd(m) % 2 == 0) {
            if (u && u->before_ok) {
                *olen += sim_at_cusd_urc(&m->at, r.ussd_index, out + *olen, osize - *olen);
            }
            size_t n = r.len < osize - *olen ? r.len : osize - *olen;
            memcpy(out + *olen, r.buf, n);
            *olen += n;
        }
    }
    switch (r.action) {
    case SIM_ACT_REBOOT:
        /* a reset processes even while the modem's output is silenced, ending the silence */
        out_write(m, out, *olen);
        *olen = 0;
        cure(m, t, false);
        start_reboot(m, t, m->cfg->reboot_s, "AT reset");
        break;
    case SIM_ACT_USSD:
        if (!(u && u->before_ok))
            add_pending(m, PEND_USSD, t + (u ? u->delay_s : 1.5), r.ussd_index);
        break;
    case SIM_ACT_USSD_CANCEL:
        for (int i = 0; i < MAX_PENDING; i++)
            if (m->pend[i].kind == PEND_USSD)
                m->pend[i].used = false;
        break;
    case SIM_ACT_NETOPEN:
        add_pending(m, PEND_NETOPEN, t + 0.3, -1);
        break;
    default:
        break;
    }
done:
    m->line_len = 0;
    m->line_overflow = false;
}

static void modem_input(struct modem *m, double t)
{
    char in[512];
    ssize_t n = read(m->mfd, in, sizeof(in));
    if (n <= 0) {
        if (n < 0 && errno != EAGAIN && errno != EINTR && errno != EIO)
            LOG_W(SUB, "%s: read: %s", m->cfg->name, strerror(errno));
        return;
    }
    m->bytes_in += (uint64_t)n;
    if (m->st != ST_READY || fault_active(m, SIM_FAULT_HANG, t, NULL))
        return; /* booting or hung: input is lost */
    bool silent = fault_active(m, SIM_FAULT_SILENCE, t, NULL);
    bool garbage = fault_active(m, SIM_FAULT_GARBAGE, t, NULL);
    static char out[SIM_OUT_MAX * 4];
    size_t olen = 0;
    for (ssize_t i = 0; i < n && m->st == ST_READY; i++) {
        char b = in[i];
        if (m->at.echo && !silent && olen < sizeof(out))
            out[olen++] = b; /* echo as typed, before the reply: hence "cmd\r\r\n..." */
        if (b == '\r') {
            exec_line(m, t, silent, garbage, out, &olen, sizeof(out));
            /* room for the next command's worst case: garbage + USSD URC + reply */
            if (olen > sizeof(out) - 3 * SIM_OUT_MAX) {
                out_write(m, out, olen);
                olen = 0;
            }
        } else if (b == '\n' && m->line_len == 0) {
            continue;
        } else if (b == '\b' || b == 0x7f) {
            if (m->line_len)
                m->line_len--;
        } else if (m->line_len < SIM_LINE_MAX) {
            m->line[m->line_len++] = b == '\0' ? ' ' : b;
        } else {
            m->line_overflow = true;
        }
    }
    out_write(m, out, olen);
}

static void modem_tick(struct modem *m, double t)
{
    /* vanish fault: edge-triggered on the interval */
    bool v = fault_active(m, SIM_FAULT_VANISH, t, NULL);
    if (v && !m->fault_vanished) {
        m->fault_vanished = true;
        if (m->mfd >= 0)
            vanish(m, "fault");
        m->st = ST_VANISHED;
        memset(m->pend, 0, sizeof(m->pend));
    } else if (!v && m->fault_vanished) {
        /* it re-enumerates after a (simulated) reboot */
        m->fault_vanished = false;
        m->reboot_vanish = false;
        if (pty_open(m) == 0) {
            m->st = ST_BOOTING;
            m->boot_at = t;
        } else {
            m->fault_vanished = true; /* retry next tick */
        }
    }
    if (m->fault_vanished)
        return;
    /* reboot fault: the modem is down for the interval, then boots */
    double rend;
    if (fault_active(m, SIM_FAULT_REBOOT, t, &rend)) {
        if (m->st != ST_BOOTING)
            start_reboot(m, t, rend - t, "fault");
        if (m->boot_at < rend)
            m->boot_at = rend;
    }
    if (m->st == ST_BOOTING && m->vanish_at >= 0 && t >= m->vanish_at) {
        m->vanish_at = -1;
        if (m->mfd >= 0) {
            vanish(m, "reboot");
            m->reboot_vanish = true;
        }
    }
    if (m->st == ST_BOOTING && t >= m->boot_at)
        boot_done(m, t);
    if (m->st != ST_READY || m->mfd < 0)
        return;
    bool mute =
        fault_active(m, SIM_FAULT_HANG, t, NULL) || fault_active(m, SIM_FAULT_SILENCE, t, NULL);
    char buf[SIM_OUT_MAX];
    size_t n = 0;
    for (int i = 0; i < MAX_PENDING; i++) {
        struct pending *p = &m->pend[i];
        if (!p->used || t < p->at)
            continue;
        p->used = false;
        if (mute)
            continue;
        if (p->kind == PEND_USSD)
            n = sim_at_cusd_urc(&m->at, p->ussd_index, buf, sizeof(buf));
        else
            n = (size_t)snprintf(buf, sizeof(buf), "\r\n+NETOPEN: 0\r\n");
        out_write(m, buf, n);
    }
    struct sim_radio rd;
    current_radio(m, t, &rd);
    n = sim_at_reg_urcs(&m->at, &rd, buf, sizeof(buf));
    if (!mute)
        out_write(m, buf, n);
    if (!mute && fault_active(m, SIM_FAULT_GARBAGE, t, NULL) && t >= m->next_noise) {
        n = make_garbage(m, buf, sizeof(buf));
        out_write(m, buf, n);
        m->next_noise = t + 0.5 * g.speed + (rnd(m) % 1000) / 1000.0 * g.speed;
    }
}

static void powercycle(struct modem *m, double t)
{
    m->powercycles++;
    cure(m, t, true);
    if (m->fault_vanished)
        return; /* comes back when its vanish interval ends */
    start_reboot(m, t, m->cfg->reboot_s, "power-cycle");
}

/* ---- control socket ----------------------------------------------------------------------- */

static struct modem *find_modem(const char *name)
{
    for (size_t i = 0; i < g.n; i++)
        if (strcmp(g.modems[i].cfg->name, name) == 0)
            return &g.modems[i];
    return NULL;
}

static json_t *status_json(double t)
{
    json_t *root = json_object();
    json_object_set_new(root, "t", json_real(t));
    json_object_set_new(root, "timeline_t", json_real(sim_timeline_t(&g.sc, t)));
    json_object_set_new(root, "speed", json_real(g.speed));
    json_t *arr = json_array();
    for (size_t i = 0; i < g.n; i++) {
        struct modem *m = &g.modems[i];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(m->cfg->name));
        json_object_set_new(o, "path", json_string(m->cfg->path));
        json_object_set_new(o, "pty", m->pty[0] ? json_string(m->pty) : json_null());
        json_object_set_new(
            o, "family", json_string(m->cfg->family == SIM_FAMILY_SIMCOM ? "simcom" : "quectel"));
        json_object_set_new(o, "state", json_string(mstate_names[m->st]));
        json_t *fa = json_array();
        for (int k = 0; k < SIM_FAULT_N; k++)
            if (fault_active(m, (enum sim_fault_kind)k, t, NULL))
                json_array_append_new(fa, json_string(sim_fault_name((enum sim_fault_kind)k)));
        json_object_set_new(o, "faults", fa);
        json_object_set_new(o, "echo", json_boolean(m->at.echo));
        json_object_set_new(o, "cmee", json_integer(m->at.cmee));
        json_object_set_new(o, "gps_on", json_boolean(m->at.gps_on));
        json_object_set_new(o, "apn", json_string(m->at.apn));
        json_object_set_new(o, "pdp_active", json_boolean(m->at.pdp_active));
        json_object_set_new(o, "data_up", json_boolean(m->at.rmnet_up || m->at.netopen));
        json_object_set_new(o, "commands", json_integer((json_int_t)m->commands));
        json_object_set_new(o, "errors", json_integer((json_int_t)m->errors));
        json_object_set_new(o, "bytes_in", json_integer((json_int_t)m->bytes_in));
        json_object_set_new(o, "bytes_out", json_integer((json_int_t)m->bytes_out));
        json_object_set_new(o, "dropped_out", json_integer((json_int_t)m->dropped_out));
        json_object_set_new(o, "garbage_bursts", json_integer((json_int_t)m->garbage));
        json_object_set_new(o, "reboots", json_integer((json_int_t)m->reboots));
        json_object_set_new(o, "vanishes", json_integer((json_int_t)m->vanishes));
        json_object_set_new(o, "powercycles", json_integer((json_int_t)m->powercycles));
        json_t *bc = json_object();
        for (size_t j = 0; j < m->n_by_cmd; j++)
            json_object_set_new(bc, m->by_cmd[j].name, json_integer((json_int_t)m->by_cmd[j].n));
        json_object_set_new(o, "by_command", bc);
        struct sim_radio rd;
        current_radio(m, t, &rd);
        json_t *r = json_object();
        json_object_set_new(r, "reg", json_string(sim_reg_name(rd.reg)));
        json_object_set_new(r, "rat", json_string(sim_rat_name(rd.rat)));
        json_object_set_new(r, "rsrp", json_real(rd.rsrp));
        json_object_set_new(r, "rsrq", json_real(rd.rsrq));
        json_object_set_new(r, "sinr", json_real(rd.sinr));
        json_object_set_new(r, "rssi", json_real(rd.rssi));
        json_object_set_new(r, "csq", json_integer(rd.csq));
        json_object_set_new(r, "tac", json_integer(rd.tac));
        json_object_set_new(r, "cell_id", json_integer(rd.cell));
        json_object_set_new(r, "band", json_string(rd.band));
        json_object_set_new(r, "fix", json_boolean(rd.fix));
        json_object_set_new(r, "lat", json_real(rd.lat));
        json_object_set_new(r, "lon", json_real(rd.lon));
        json_object_set_new(r, "speed_kmh", json_real(rd.speed_kmh));
        json_object_set_new(r, "course", json_real(rd.course));
        json_object_set_new(o, "radio", r);
        json_array_append_new(arr, o);
    }
    json_object_set_new(root, "modems", arr);
    return root;
}

/* Execute one control command; the reply (one or more lines, last ending "\n") goes in out. */
static void ctl_exec(char *line, char *out, size_t n, double t)
{
    char *save = NULL;
    char *argv[5] = {0};
    int argc = 0;
    for (char *tok = strtok_r(line, " \t", &save); tok && argc < 5;
         tok = strtok_r(NULL, " \t", &save))
        argv[argc++] = tok;
    if (argc == 0) {
        snprintf(out, n, "error empty command\n");
        return;
    }
    if (g.verbose)
        LOG_I(SUB, "control: %s%s%s%s%s%s%s%s%s", argv[0], argc > 1 ? " " : "",
              argc > 1 ? argv[1] : "", argc > 2 ? " " : "", argc > 2 ? argv[2] : "",
              argc > 3 ? " " : "", argc > 3 ? argv[3] : "", argc > 4 ? " " : "",
              argc > 4 ? argv[4] : "");
    if (strcmp(argv[0], "status") == 0) {
        json_t *st = status_json(t);
        char *s = json_dumps(st, JSON_COMPACT | JSON_REAL_PRECISION(7));
        json_decref(st);
        snprintf(out, n, "%s\n", s ? s : "{}");
        free(s);
        return;
    }
    if (strcmp(argv[0], "help") == 0) {
        snprintf(out, n,
                 "commands: status | fault MODEM KIND SECONDS | clear MODEM | set MODEM KEY VALUE"
                 " | unset MODEM KEY | powercycle MODEM | quit\n");
        return;
    }
    if (strcmp(argv[0], "quit") == 0) {
        g_stop = 1;
        snprintf(out, n, "ok\n");
        return;
    }
    struct modem *m = argc >= 2 ? find_modem(argv[1]) : NULL;
    if (!m) {
        snprintf(out, n, "error unknown modem \"%s\"\n", argc >= 2 ? argv[1] : "");
        return;
    }
    if (strcmp(argv[0], "fault") == 0 && argc == 4) {
        enum sim_fault_kind k;
        double secs;
        if (sim_fault_parse(argv[2], &k) < 0) {
            snprintf(out, n,
                     "error unknown fault kind \"%s\" (silence, hang, garbage, reboot, vanish, "
                     "cpsi_error)\n",
                     argv[2]);
            return;
        }
        if (!str_to_double(argv[3], &secs) || !(secs > 0 && secs <= 1e6)) {
            snprintf(out, n, "error bad seconds \"%s\"\n", argv[3]);
            return;
        }
        for (int i = 0; i < MAX_RT_FAULTS; i++)
            if (!m->rt[i].used) {
                m->rt[i] = (struct rt_fault){true, k, t, t + secs};
                modem_tick(m, t);
                snprintf(out, n, "ok\n");
                return;
            }
        snprintf(out, n, "error too many faults on %s\n", m->cfg->name);
        return;
    }
    if (strcmp(argv[0], "clear") == 0 && argc == 2) {
        memset(m->rt, 0, sizeof(m->rt));
        snprintf(out, n, "ok\n");
        return;
    }
    if (strcmp(argv[0], "powercycle") == 0 && argc == 2) {
        powercycle(m, t);
        snprintf(out, n, "ok\n");
        return;
    }
    if ((strcmp(argv[0], "set") == 0 && argc == 4) ||
        (strcmp(argv[0], "unset") == 0 && argc == 3)) {
        bool set = argv[0][0] == 's';
        if (strcmp(argv[2], "band") == 0) {
            m->ov_band = set;
            if (set)
                snprintf(m->ov_bandstr, sizeof(m->ov_bandstr), "%s", argv[3]);
            snprintf(out, n, "ok\n");
            return;
        }
        enum sim_field f;
        if (sim_field_parse(argv[2], &f) < 0) {
            snprintf(out, n, "error unknown key \"%s\"\n", argv[2]);
            return;
        }
        if (!set) {
            m->ov_mask &= ~(1u << f);
            snprintf(out, n, "ok\n");
            return;
        }
        double v;
        if (f == F_REG) {
            enum sim_reg r;
            if (sim_reg_parse(argv[3], &r) < 0) {
                snprintf(out, n, "error bad reg \"%s\"\n", argv[3]);
                return;
            }
            v = r;
        } else if (f == F_RAT) {
            enum sim_rat r;
            if (sim_rat_parse(argv[3], &r) < 0) {
                snprintf(out, n, "error bad rat \"%s\"\n", argv[3]);
                return;
            }
            v = r;
        } else if (f == F_FIX && (!strcmp(argv[3], "true") || !strcmp(argv[3], "false"))) {
            v = argv[3][0] == 't';
        } else if (!str_to_double(argv[3], &v) || !isfinite(v) || fabs(v) > 4294967295.0) {
            snprintf(out, n, "error bad value \"%s\"\n", argv[3]);
            return;
        }
        m->ov[f] = v;
        m->ov_mask |= 1u << f;
        snprintf(out, n, "ok\n");
        return;
    }
    snprintf(out, n, "error bad command (try \"help\")\n");
}

static void ctl_accept(void)
{
    int fd = accept(g.ctl_fd, NULL, NULL);
    if (fd < 0)
        return;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    for (int i = 0; i < MAX_CTL_CLIENTS; i++)
        if (g.ctl[i].fd < 0) {
            g.ctl[i].fd = fd;
            g.ctl[i].len = 0;
            return;
        }
    const char *busy = "error too many control clients\n";
    if (write(fd, busy, strlen(busy)) < 0) {
        /* nothing to do: the client is refused either way */
    }
    close(fd);
}

static void ctl_input(struct ctl_client *c, double t)
{
    ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
    if (n <= 0) {
        close(c->fd);
        c->fd = -1;
        return;
    }
    c->len += (size_t)n;
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (!nl) {
            if (c->len == sizeof(c->buf)) { /* over-long line: drop it */
                c->len = 0;
                const char *e = "error line too long\n";
                if (write(c->fd, e, strlen(e)) < 0)
                    LOG_D(SUB, "control write failed");
            }
            return;
        }
        *nl = '\0';
        if (nl > c->buf && nl[-1] == '\r')
            nl[-1] = '\0';
        static char reply[65536];
        ctl_exec(c->buf, reply, sizeof(reply), t);
        size_t rl = strlen(reply), off = 0;
        while (off < rl) {
            ssize_t w = write(c->fd, reply + off, rl - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        size_t used = (size_t)(nl - c->buf) + 1;
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
    }
}

static int ctl_open(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        LOG_E(SUB, "--control %s: path too long", path);
        return -1;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
        LOG_E(SUB, "--control %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    snprintf(g.ctl_path, sizeof(g.ctl_path), "%s", path);
    return fd;
}

/* ---- main --------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: corridor-modemsim [--speed X] [--control SOCKET] [--verbose] [--check] "
               "SCENARIO.json\n"
               "  --speed X        run scenario time X times faster (tests)\n"
               "  --control PATH   Unix stream socket for test control (see README.md)\n"
               "  --verbose        log every AT command and control command to stderr\n"
               "  --check          validate the scenario and exit (0 ok, 2 invalid)\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"speed", required_argument, NULL, 's'}, {"control", required_argument, NULL, 'c'},
        {"verbose", no_argument, NULL, 'v'},     {"check", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    const char *control = NULL;
    bool check = false;
    g.speed = 1.0;
    g.ctl_fd = -1;
    int o;
    while ((o = getopt_long(argc, argv, "s:c:vkh", opts, NULL)) != -1) {
        switch (o) {
        case 's':
            if (!str_to_double(optarg, &g.speed) || !(g.speed > 0 && g.speed <= 10000)) {
                fprintf(stderr, "corridor-modemsim: --speed must be in (0, 10000]\n");
                return 2;
            }
            break;
        case 'c':
            control = optarg;
            break;
        case 'v':
            g.verbose = true;
            break;
        case 'k':
            check = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    log_init("corridor-modemsim", g.verbose ? LOGL_DEBUG : LOGL_INFO, false);
    char err[512];
    if (sim_scenario_load(argv[optind], &g.sc, err, sizeof(err)) < 0) {
        fprintf(stderr, "corridor-modemsim: scenario error: %s\n", err);
        return 2;
    }
    if (check) {
        printf("%s: ok, %zu modems, %.0f s%s\n", argv[optind], g.sc.n_modems, g.sc.duration_s,
               g.sc.loop ? " looping" : "");
        sim_scenario_free(&g.sc);
        return 0;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < MAX_CTL_CLIENTS; i++)
        g.ctl[i].fd = -1;
    if (control && (g.ctl_fd = ctl_open(control)) < 0) {
        sim_scenario_free(&g.sc);
        return 1;
    }
    g.t0_ms = mono_ms();
    g.n = g.sc.n_modems;
    int rc = 0;
    for (size_t i = 0; i < g.n; i++) {
        struct modem *m = &g.modems[i];
        m->cfg = &g.sc.modems[i];
        m->mfd = m->sfd = -1;
        m->vanish_at = -1;
        m->rng = m->cfg->seed ? m->cfg->seed * 2654435761u : 1;
        sim_at_reset(&m->at, m->cfg);
        if (pty_open(m) < 0) {
            rc = 1;
            goto out;
        }
        m->st = ST_BOOTING;
        m->boot_at = m->cfg->boot_s;
    }
    LOG_I(SUB, "%zu modems up (speed x%g)%s%s", g.n, g.speed, control ? ", control " : "",
          control ? control : "");
    while (!g_stop) {
        struct pollfd pfd[SIM_MAX_MODEMS + 1 + MAX_CTL_CLIENTS];
        int idx[SIM_MAX_MODEMS + 1 + MAX_CTL_CLIENTS];
        nfds_t np = 0;
        for (size_t i = 0; i < g.n; i++)
            if (g.modems[i].mfd >= 0) {
                pfd[np] = (struct pollfd){g.modems[i].mfd, POLLIN, 0};
                idx[np++] = (int)i;
            }
        if (g.ctl_fd >= 0) {
            pfd[np] = (struct pollfd){g.ctl_fd, POLLIN, 0};
            idx[np++] = -1;
        }
        for (int i = 0; i < MAX_CTL_CLIENTS; i++)
            if (g.ctl[i].fd >= 0) {
                pfd[np] = (struct pollfd){g.ctl[i].fd, POLLIN, 0};
                idx[np++] = -2 - i;
            }
        int pr = poll(pfd, np, 20);
        if (pr < 0 && errno != EINTR) {
            LOG_E(SUB, "poll: %s", strerror(errno));
            rc = 1;
            break;
        }
        /* one time for the whole iteration: a fault started by a control command must be
         * active in the tick that follows it, never seen as "not yet begun" */
        double t = now_abs();
        for (nfds_t i = 0; pr > 0 && i < np; i++) {
            if (!pfd[i].revents)
                continue;
            if (idx[i] >= 0) {
                struct modem *m = &g.modems[idx[i]];
                if (m->mfd == pfd[i].fd)
                    modem_input(m, t);
            } else if (idx[i] == -1) {
                ctl_accept();
            } else {
                struct ctl_client *c = &g.ctl[-2 - idx[i]];
                if (c->fd == pfd[i].fd)
                    ctl_input(c, t);
            }
        }
        for (size_t i = 0; i < g.n; i++)
            modem_tick(&g.modems[i], t);
        if (!g.sc.loop && t > g.sc.duration_s + 1e9)
            break;
    }
    LOG_I(SUB, "stopping");
out:
    for (size_t i = 0; i < g.n; i++)
        if (g.modems[i].cfg)
            pty_close(&g.modems[i]);
    for (int i = 0; i < MAX_CTL_CLIENTS; i++)
        if (g.ctl[i].fd >= 0)
            close(g.ctl[i].fd);
    if (g.ctl_fd >= 0) {
        close(g.ctl_fd);
        unlink(g.ctl_path);
    }
    sim_scenario_free(&g.sc);
    return rc;
}
