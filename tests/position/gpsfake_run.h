/* gpsfake_run: start a real gpsd fed by gpsfake on a free port, and always clean it up.
 *
 * gpsfake (Debian 12, gpsd 3.22) sometimes ignores SIGTERM and keeps spinning after a -1 run, so
 * it runs in its own process group under `timeout -s KILL` and is stopped with SIGKILL to the
 * whole group. The test process makes itself a child subreaper so gpsd (gpsfake's child) is
 * reaped too. Also a thread-safe recorder of position reports and events. Test helper. */
#ifndef CORRIDOR_TESTS_GPSFAKE_RUN_H
#define CORRIDOR_TESTS_GPSFAKE_RUN_H

#include "telemetry/telemetry.h"

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

struct gpsfake {
    pid_t pid; /* process group leader (timeout), 0 if not running */
    int port;
};

/* gpsd and gpsfake installed? Prints why not. */
bool gpsfake_available(void);
/* A TCP port on 127.0.0.1 that was free a moment ago. */
int gpsfake_free_port(void);
/* gpsfake -1 -n -c <cycle> -P <port> <log>, killed after max_s at the latest.
 * 0 or -1 with a message. */
int gpsfake_start(struct gpsfake *g, int port, const char *log, double cycle_s, unsigned max_s,
                  char *err, size_t errlen);
/* SIGKILL to the group, reap. Safe to call twice. */
void gpsfake_stop(struct gpsfake *g);

/* Recorder for on_report / on_event callbacks. */
#define REC_MAX 4096
struct recorder {
    pthread_mutex_t mu;
    size_t n_fix;
    struct position_fix fix[REC_MAX];
    size_t n_ev;
    struct position_event ev[64];
};
void rec_init(struct recorder *r);
void rec_on_report(void *ctx, const struct position_fix *f);
void rec_on_event(void *ctx, const struct position_event *ev);
size_t rec_count(struct recorder *r);
/* Copy of report i (false if none). */
bool rec_get(struct recorder *r, size_t i, struct position_fix *out);
/* Is there an event whose text contains needle? */
bool rec_has_event(struct recorder *r, const char *needle);
void rec_print_events(struct recorder *r);

/* Sleep ms. */
void msleep(unsigned ms);

#endif
