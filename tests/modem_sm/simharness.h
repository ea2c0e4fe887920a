/* simharness: start/stop the real corridor-modemsim for the modem driver tests, talk to its
 * control socket, and collect the driver's samples and events (thread-safe). */
#ifndef CORRIDOR_TESTS_MODEM_SM_SIMHARNESS_H
#define CORRIDOR_TESTS_MODEM_SM_SIMHARNESS_H

#include "modem/modem.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct simh {
    pid_t pid;
    char dir[128]; /* private temp dir: scenario, control socket, pty symlinks */
    char ctl[192];
    char scenario[192];
};

/* Copy MODEM_SM_DIR/template into a fresh temp dir with "@DIR@" replaced by that dir, start the
 * simulator on it and wait until the control socket and the given pty paths (relative names,
 * NULL-terminated) exist. 0 or -1 (message on stderr). */
int simh_start(struct simh *h, const char *template_name, const char *const *ports);
/* One control command ("fault a hang 60"); the reply line (without "\n") into reply. 0 if the
 * reply starts with "ok" or "{", -1 otherwise. */
int simh_ctl(struct simh *h, const char *cmd, char *reply, size_t n);
/* dir/name */
const char *simh_path(const struct simh *h, const char *name, char *buf, size_t n);
void simh_stop(struct simh *h);

/* ---- sample/event collector ---------------------------------------------------------------- */
#define COL_LINKS  20
#define COL_EVENTS 1024
struct col_link {
    char link[32];
    struct modem_sample last;      /* latest sample of any state */
    struct modem_sample last_poll; /* latest POLL sample */
    uint64_t last_poll_ms;         /* mono_ms when it arrived */
    uint64_t max_gap_ms;           /* largest gap between consecutive POLL samples */
    unsigned n_poll, n_samples, n_absent;
};
struct col_event {
    char link[32];
    enum modem_event_kind kind;
    char text[320];
    uint64_t ms;
};
struct collector {
    pthread_mutex_t mu;
    struct col_link links[COL_LINKS];
    unsigned nlinks;
    struct col_event ev[COL_EVENTS];
    unsigned nev;
    bool verbose;
    struct simh *sim; /* for the power-cycle hook */
};
void col_init(struct collector *c, struct simh *sim);
void col_destroy(struct collector *c);
/* Callbacks to hand to modem_start (ctx = the collector). */
struct modem_callbacks col_callbacks(struct collector *c);
/* Copy of one link's record (zeroed if unknown). */
void col_get(struct collector *c, const char *link, struct col_link *out);
/* Reset a link's max-gap measurement (e.g. after start-up). */
void col_reset_gap(struct collector *c, const char *link);
/* Index of the first event of kind for link at or after since_ms, -1 if none; text copied. */
int col_find_event(struct collector *c, const char *link, enum modem_event_kind kind,
                   uint64_t since_ms, char *text, size_t n);
/* Wait (polling every 20 ms) up to timeout_ms for pred to be true. */
bool wait_until(bool (*pred)(void *), void *arg, unsigned timeout_ms);

#endif
