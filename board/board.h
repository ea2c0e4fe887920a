/* board: hardware specifics of the gateway (the only public header of board/).
 *
 * Today: the modem power-cycle backends used as the last step of the modem recovery ladder.
 *   none  no power control (a hung modem can only be soft-reset)
 *   sim   the modem simulator's control socket (`powercycle <modem>`), for the lab and the demo
 * The GPIO (libgpiod) backend, the watchdog and thermal protection come with issue #7 behind the
 * same interface. */
#ifndef CORRIDOR_BOARD_H
#define CORRIDOR_BOARD_H

#include <stddef.h>

enum board_power_backend { BOARD_POWER_NONE = 0, BOARD_POWER_SIM };

struct board_config {
    enum board_power_backend power;
    char sim_control[108]; /* BOARD_POWER_SIM: the simulator's control socket */
    unsigned off_ms;       /* how long the slot stays unpowered, default 2000 */
};

struct board;
int board_open(const struct board_config *cfg, struct board **out, char *err, size_t errlen);
void board_close(struct board *b);
/* Power-cycle the modem slot of link `slot` (the link name). Blocking for at most a few
 * seconds: called from that modem's own thread, never from a hot thread. 0 = done, -1 with err. */
int board_power_cycle(struct board *b, const char *slot, char *err, size_t errlen);
/* Parse "none" | "sim"; -1 if unknown. */
int board_power_backend_parse(const char *s, enum board_power_backend *out);

#endif
