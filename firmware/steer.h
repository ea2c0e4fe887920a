/* steer: the 1 Hz policy engine of `corridor run` (DESIGN.md: sensors -> state -> policy ->
 * data plane).
 *
 * Owns the position source (gpsd + modem GNSS + dead reckoning) and the coverage map. Its
 * thread ("steer"), once a second: reads the position, records one coverage sample per link
 * with a modem, asks the map what lies ahead, runs the weights policy on live measurements plus
 * predictions, and hands the weights to the tunnel. Every policy decision becomes an event with
 * its reason. Blocking work (sqlite commits every 10 s) happens here, never on the data plane. */
#ifndef CORRIDOR_FIRMWARE_STEER_H
#define CORRIDOR_FIRMWARE_STEER_H

#include <stddef.h>

#include "firmware/config.h"
#include "firmware/state.h"
#include "firmware/tunnel.h"
#include "modem/modem.h"

struct steer;
/* tunnel may be NULL (monitor only: weights are still computed and shown). */
int steer_start(const struct config *cfg, struct state *st, struct tunnel *tunnel,
                struct steer **out, char *err, size_t errlen);
void steer_stop(struct steer *s);
/* Admin override (dashboard): force link index off (forced_off=true) or give it back to the
 * policy. Thread-safe; takes effect at the next 1 s step. -1 if the index is out of range. */
int steer_force_off(struct steer *s, unsigned link_index, bool forced_off);
/* From a modem thread: its GNSS fix as a fallback position source. Non-blocking. */
void steer_feed_modem(struct steer *s, const struct modem_sample *m);

#endif
