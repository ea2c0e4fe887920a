/* run: `corridor run`, the supervisor. It starts every subsystem in dependency order, owns
 * their handles, waits for signals and stops everything in reverse order. */
#ifndef CORRIDOR_FIRMWARE_RUN_H
#define CORRIDOR_FIRMWARE_RUN_H

#include "firmware/config.h"

/* Runs until SIGTERM/SIGINT. Returns the process exit status. */
int run_daemon(const struct config *cfg);

#endif
