/* control: the daemon's Unix control socket (OpenBSD bgpctl/ntpctl style).
 *
 * `corridor status` connects, sends one request line, reads one JSON document and exits. The
 * socket is created mode 0600 (root only): it will also carry admin requests. Served by its
 * own thread so a stuck client never touches a hot thread; each client gets a 1 s deadline. */
#ifndef CORRIDOR_FIRMWARE_CONTROL_H
#define CORRIDOR_FIRMWARE_CONTROL_H

#include <stddef.h>

#include "firmware/state.h"

struct control;
int control_start(const char *path, struct state *st, const char *vehicle_id, struct control **out,
                  char *err, size_t errlen);
void control_stop(struct control *c);
/* Client side: send request, return the whole reply (malloc'd, NUL-terminated, caller frees)
 * in *reply. 0 ok, -1 with err. */
int control_request(const char *path, const char *request, char **reply, char *err, size_t errlen);

#endif
