/* gpsfake_run: see gpsfake_run.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "gpsfake_run.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void msleep(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

bool gpsfake_available(void)
{
    if (access("/usr/sbin/gpsd", X_OK) != 0 || access("/usr/bin/gpsfake", X_OK) != 0) {
        fprintf(stderr, "gpsd (/usr/sbin/gpsd) or gpsfake (/usr/bin/gpsfake) missing: install "
                        "the Debian packages gpsd and gpsd-clients\n");
        return false;
    }
    return true;
}

/* A free port below the kernel's ephemeral range (32768 and up by default). In that range a
 * client retrying connect() while gpsd is not up yet can be given the very port it dials as its
 * own local port, and then TCP connects it to itself: the client reads its own WATCH, gpsd
 * cannot bind, and the test sees no fix at all (seen once under TSan in CI). */
int gpsfake_free_port(void)
{
    unsigned seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
    for (int tries = 0; tries < 200; tries++) {
        seed = seed * 1103515245u + 12345u;
        int port = 20000 + (int)((seed >> 8) % 12000u);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0)
            return -1;
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                .sin_port = htons((uint16_t)port)};
        int ok = bind(s, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(s);
        if (ok)
            return port;
    }
    return -1;
}

int gpsfake_start(struct gpsfake *g, int port, const char *log, double cycle_s, unsigned max_s,
                  char *err, size_t errlen)
{
    char sport[16], scycle[32], smax[16];
    snprintf(sport, sizeof(sport), "%d", port);
    snprintf(scycle, sizeof(scycle), "%.3f", cycle_s);
    snprintf(smax, sizeof(smax), "%u", max_s);
    /* Orphans (gpsd once gpsfake is killed) come back to us to be reaped. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        int fd = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 0);
            dup2(fd, 1);
            if (!getenv("POSITION_TEST_VERBOSE"))
                dup2(fd, 2);
        }
        execlp("timeout", "timeout", "-s", "KILL", smax, "gpsfake", "-1", "-n", "-c", scycle, "-P",
               sport, log, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid); /* also from the parent: no race with an early kill */
    g->pid = pid;
    g->port = port;
    return 0;
}

void gpsfake_stop(struct gpsfake *g)
{
    if (g->pid <= 0)
        return;
    kill(-g->pid, SIGKILL);
    waitpid(g->pid, NULL, 0);
    g->pid = 0;
    /* reap gpsfake's python and gpsd if they were re-parented to us */
    for (int i = 0; i < 20; i++) {
        pid_t r = waitpid(-1, NULL, WNOHANG);
        if (r < 0)
            break; /* no children left */
        if (r == 0)
            msleep(10);
    }
}

void rec_init(struct recorder *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
}

void rec_on_report(void *ctx, const struct position_fix *f)
{
    struct recorder *r = ctx;
    pthread_mutex_lock(&r->mu);
    if (r->n_fix < REC_MAX)
        r->fix[r->n_fix++] = *f;
    pthread_mutex_unlock(&r->mu);
}

void rec_on_event(void *ctx, const struct position_event *ev)
{
    struct recorder *r = ctx;
    pthread_mutex_lock(&r->mu);
    if (r->n_ev < sizeof(r->ev) / sizeof(r->ev[0]))
        r->ev[r->n_ev++] = *ev;
    pthread_mutex_unlock(&r->mu);
}

size_t rec_count(struct recorder *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->n_fix;
    pthread_mutex_unlock(&r->mu);
    return n;
}

bool rec_get(struct recorder *r, size_t i, struct position_fix *out)
{
    pthread_mutex_lock(&r->mu);
    bool ok = i < r->n_fix;
    if (ok)
        *out = r->fix[i];
    pthread_mutex_unlock(&r->mu);
    return ok;
}

bool rec_has_event(struct recorder *r, const char *needle)
{
    bool found = false;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n_ev && !found; i++)
        found = strstr(r->ev[i].text, needle) != NULL;
    pthread_mutex_unlock(&r->mu);
    return found;
}

void rec_print_events(struct recorder *r)
{
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n_ev; i++)
        fprintf(stderr, "  event %zu: %s\n", i, r->ev[i].text);
    pthread_mutex_unlock(&r->mu);
}
