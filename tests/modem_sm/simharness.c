/* simharness: see simharness.h. */
#include "simharness.h"
#include "common/common.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MODEMSIM_BIN
#define MODEMSIM_BIN "corridor-modemsim"
#endif
#ifndef MODEM_SM_DIR
#define MODEM_SM_DIR "."
#endif

const char *simh_path(const struct simh *h, const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", h->dir, name);
    return buf;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

static int write_scenario(struct simh *h, const char *template_name)
{
    char src[512];
    size_t len;
    snprintf(src, sizeof src, "%s/%s", MODEM_SM_DIR, template_name);
    char *t = read_all(src, &len);
    if (!t) {
        fprintf(stderr, "simharness: cannot read %s: %s\n", src, strerror(errno));
        return -1;
    }
    FILE *f = fopen(h->scenario, "w");
    if (!f) {
        free(t);
        return -1;
    }
    for (const char *p = t; *p;) {
        const char *q = strstr(p, "@DIR@");
        if (!q) {
            fputs(p, f);
            break;
        }
        fwrite(p, 1, (size_t)(q - p), f);
        fputs(h->dir, f);
        p = q + 5;
    }
    fclose(f);
    free(t);
    return 0;
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

int simh_start(struct simh *h, const char *template_name, const char *const *ports)
{
    memset(h, 0, sizeof *h);
    h->pid = -1;
    snprintf(h->dir, sizeof h->dir, "/tmp/modem_sm.XXXXXX");
    if (!mkdtemp(h->dir)) {
        fprintf(stderr, "simharness: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    simh_path(h, "ctl.sock", h->ctl, sizeof h->ctl);
    simh_path(h, "scenario.json", h->scenario, sizeof h->scenario);
    if (write_scenario(h, template_name) < 0)
        return -1;
    char log[192];
    simh_path(h, "sim.log", log, sizeof log);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        FILE *lf = freopen(log, "w", stderr);
        (void)lf;
        execl(MODEMSIM_BIN, MODEMSIM_BIN, "--control", h->ctl, h->scenario, (char *)NULL);
        _exit(127);
    }
    h->pid = pid;
    for (int i = 0; i < 250; i++) {
        bool all = exists(h->ctl);
        for (const char *const *p = ports; all && p && *p; p++) {
            char b[256];
            all = exists(simh_path(h, *p, b, sizeof b));
        }
        if (all)
            return 0;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "simharness: modemsim exited early (see %s)\n", log);
            h->pid = -1;
            return -1;
        }
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "simharness: modemsim did not come up within 5 s (see %s)\n", log);
    return -1;
}

int simh_ctl(struct simh *h, const char *cmd, char *reply, size_t n)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", h->ctl);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    char line[256];
    int l = snprintf(line, sizeof line, "%s\n", cmd);
    if (write(fd, line, (size_t)l) != l) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    reply[0] = '\0';
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (got + 1 < n) {
        ssize_t r = read(fd, reply + got, n - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        reply[got] = '\0';
        if (strchr(reply, '\n'))
            break;
    }
    close(fd);
    char *nl = strchr(reply, '\n');
    if (nl)
        *nl = '\0';
    return strncmp(reply, "ok", 2) == 0 || reply[0] == '{' ? 0 : -1;
}

void simh_stop(struct simh *h)
{
    if (h->pid > 0) {
        kill(h->pid, SIGTERM);
        int st;
        for (int i = 0; i < 100 && waitpid(h->pid, &st, WNOHANG) == 0; i++) {
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (waitpid(h->pid, &st, WNOHANG) == 0) {
            kill(h->pid, SIGKILL);
            waitpid(h->pid, &st, 0);
        }
        h->pid = -1;
    }
    if (h->dir[0] && !getenv("MODEM_SM_KEEP")) {
        char b[256];
        unlink(simh_path(h, "scenario.json", b, sizeof b));
        unlink(simh_path(h, "sim.log", b, sizeof b));
        unlink(h->ctl);
        rmdir(h->dir); /* fails harmlessly if the sim left a symlink behind */
    }
}

/* ---- collector ----------------------------------------------------------------------------- */

void col_init(struct collector *c, struct simh *sim)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    c->sim = sim;
    c->verbose = getenv("MODEM_SM_VERBOSE") != NULL;
}

void col_destroy(struct collector *c)
{
    pthread_mutex_destroy(&c->mu);
}

static struct col_link *link_of(struct collector *c, const char *link)
{
    for (unsigned i = 0; i < c->nlinks; i++)
        if (!strcmp(c->links[i].link, link))
            return &c->links[i];
    if (c->nlinks == COL_LINKS)
        return NULL;
    struct col_link *l = &c->links[c->nlinks++];
    memset(l, 0, sizeof *l);
    str_copy(l->link, link, sizeof l->link);
    return l;
}

static void on_sample(void *ctx, const struct modem_sample *s)
{
    struct collector *c = ctx;
    uint64_t now = mono_ms();
    pthread_mutex_lock(&c->mu);
    struct col_link *l = link_of(c, s->link);
    if (l) {
        l->last = *s;
        l->n_samples++;
        if (s->state == MODEM_ST_ABSENT)
            l->n_absent++;
        if (s->state == MODEM_ST_POLL) {
            if (l->n_poll && now - l->last_poll_ms > l->max_gap_ms)
                l->max_gap_ms = now - l->last_poll_ms;
            l->last_poll = *s;
            l->last_poll_ms = now;
            l->n_poll++;
        }
    }
    pthread_mutex_unlock(&c->mu);
}

static void on_event(void *ctx, const char *link, enum modem_event_kind kind, const char *text)
{
    struct collector *c = ctx;
    pthread_mutex_lock(&c->mu);
    if (c->nev < COL_EVENTS) {
        struct col_event *e = &c->ev[c->nev++];
        str_copy(e->link, link, sizeof e->link);
        e->kind = kind;
        str_copy(e->text, text, sizeof e->text);
        e->ms = mono_ms();
    }
    pthread_mutex_unlock(&c->mu);
    if (c->verbose)
        fprintf(stderr, "event %s %s: %s\n", link, modem_event_name(kind), text);
}

static int on_power_cycle(void *ctx, const char *link)
{
    struct collector *c = ctx;
    char cmd[64], reply[256];
    snprintf(cmd, sizeof cmd, "powercycle %s", link);
    return c->sim ? simh_ctl(c->sim, cmd, reply, sizeof reply) : -1;
}

struct modem_callbacks col_callbacks(struct collector *c)
{
    struct modem_callbacks cb = {
        .ctx = c, .sample = on_sample, .event = on_event, .power_cycle = on_power_cycle};
    return cb;
}

void col_get(struct collector *c, const char *link, struct col_link *out)
{
    pthread_mutex_lock(&c->mu);
    memset(out, 0, sizeof *out);
    for (unsigned i = 0; i < c->nlinks; i++)
        if (!strcmp(c->links[i].link, link))
            *out = c->links[i];
    pthread_mutex_unlock(&c->mu);
}

void col_reset_gap(struct collector *c, const char *link)
{
    pthread_mutex_lock(&c->mu);
    struct col_link *l = link_of(c, link);
    if (l)
        l->max_gap_ms = 0;
    pthread_mutex_unlock(&c->mu);
}

int col_find_event(struct collector *c, const char *link, enum modem_event_kind kind,
                   uint64_t since_ms, char *text, size_t n)
{
    int found = -1;
    pthread_mutex_lock(&c->mu);
    for (unsigned i = 0; i < c->nev; i++) {
        const struct col_event *e = &c->ev[i];
        if (e->kind == kind && e->ms >= since_ms && !strcmp(e->link, link)) {
            found = (int)i;
            if (text)
                str_copy(text, e->text, n);
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return found;
}

bool wait_until(bool (*pred)(void *), void *arg, unsigned timeout_ms)
{
    uint64_t end = mono_ms() + timeout_ms;
    for (;;) {
        if (pred(arg))
            return true;
        if (mono_ms() >= end)
            return false;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}
