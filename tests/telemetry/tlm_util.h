/* Helpers shared by the telemetry tests: synthetic records, and running corridor-collector as a
 * child process. */
#ifndef TLM_UTIL_H
#define TLM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "telemetry/record.h"

void synth_track(int64_t t_ms, struct rec_track *t);
void synth_link(int64_t t_ms, unsigned i, struct rec_link *l);
void synth_health(int64_t t_ms, struct rec_health *h);
/* 1 track + nlinks link records (+ health every 10 s) for second t_ms into rec. Returns number
 * of records the recorder refused (0 normally). */
unsigned synth_second(struct recorder *rec, int64_t t_ms, unsigned nlinks);

/* Write token file for the vehicle side (raw token) and the collector side (vehicle hash). */
int write_tokens(const char *vehicle_token_file, const char *collector_tokens_file,
                 const char *vehicle, const char *token);

struct collector_proc {
    pid_t pid;
    uint16_t port;
    char log[512];
};
/* Start corridor-collector (path) with --db db --tokens tokens --port port plus extra args
 * (NULL-terminated, may be NULL); waits for its port file. 0 or -1. */
int collector_spawn(struct collector_proc *cp, const char *exe, const char *dir, const char *db,
                    const char *tokens, uint16_t port, const char *const *extra);
void collector_kill(struct collector_proc *cp);
/* A free TCP port on 127.0.0.1 (bound and released). */
uint16_t free_port(void);
/* HTTP POST with libcurl: returns the status (0 = no response). hdrs NULL-terminated. */
long http_post(const char *url, const char *const *hdrs, const void *body, size_t len,
               const char *ca_file, char *resp, size_t resp_len);
long http_get(const char *url, char *resp, size_t resp_len);
/* count occurrences of needle in a file */
unsigned file_count(const char *path, const char *needle);
/* mkdtemp under /tmp, "tlm-XXXXXX" */
int make_tmpdir(char *out, size_t n);
void remove_tree(const char *dir);

#endif
