/* board: hardware specifics of the gateway (the only public header of board/). docs/board.md.
 *
 *  - Board profiles (JSON): modem slots (USB path, power and reset GPIO lines), power-cycle
 *    timing, thermal zones with warn/crit temperatures, the storage device, LEDs. The built-in
 *    "generic" profile has no lines and fits any Linux box.
 *  - Modem power-cycling, the last step of the modem recovery ladder, through one of:
 *      none  no power control (a hung modem can only be soft-reset)
 *      sim   the modem simulator's control socket (`powercycle <modem>`), lab and demo
 *      gpio  the profile's lines through the GPIO character device (libgpiod 1.6), or through
 *            the RECORDING backend (every line operation with a monotonic timestamp, to a file
 *            or memory) when gpio_record is set: tests, and a dry run on a new board.
 *  - Thermal: the profile's zones read from sysfs with hysteresis.
 *  - Hardware watchdog (/dev/watchdog API) and systemd notifications (sd_notify).
 * Nothing here knows about firmware/, modem/ or agg/. */
#ifndef CORRIDOR_BOARD_H
#define CORRIDOR_BOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- profiles ----------------------------------------------------------------------------- */
#define BOARD_MAX_SLOTS 16
#define BOARD_MAX_ZONES 8

/* One GPIO line. chip: "gpiochip0", a chip label ("pinctrl-bcm2711") or a /dev path. The line
 * is an offset on that chip (offset >= 0) or a line name (offset -1, name set). */
struct board_line {
    bool present;
    char chip[64];
    int offset;
    char name[32];
    bool active_low; /* asserted = electrically low */
};

struct board_slot {
    char name[32];           /* slot name ("slot1"); a modem link may be named like it */
    char link[32];           /* the config link this slot carries ("" = match by name) */
    char usb[32];            /* USB port path of the modem ("1-1.2"), "" unknown */
    struct board_line power; /* asserted = modem powered */
    struct board_line reset; /* asserted = modem held in reset */
};

struct board_zone {
    char zone[32]; /* "thermal_zone0", or "*" = every zone found at open */
    double warn_c; /* log a warning at or above */
    double crit_c; /* and slow the modems down at or above (before the SoC throttles) */
};

struct board_profile {
    char name[64];
    char source[256]; /* the file it came from, or "built-in" */
    char description[400];
    struct board_slot slots[BOARD_MAX_SLOTS];
    unsigned nslots;
    unsigned off_ms;         /* power held off, default 2000 */
    unsigned reset_pulse_ms; /* reset held after power returns, default 200 */
    unsigned boot_wait_ms;   /* wait after release before the modem is looked for, default 0 */
    struct board_zone zones[BOARD_MAX_ZONES];
    unsigned nzones;
    char storage[64]; /* block device of the data partition ("mmcblk0"), "" unknown */
    struct board_line led_status, led_link;
};

/* Load a profile: "generic" (built-in), a name looked up as <dir>/<name>.json (dir NULL = the
 * installed profile directory), or a path containing '/'. Errors name the file and the key
 * path ("board/profiles/x.json: slots[1].power.line: must be ..."). 0 or -1 with err. */
int board_profile_load(const char *name_or_path, const char *dir, struct board_profile *out,
                       char *err, size_t errlen);
/* Same from a string; `source` names it in messages. */
int board_profile_parse(const char *json, size_t len, const char *source, struct board_profile *out,
                        char *err, size_t errlen);
/* The built-in generic profile. */
void board_profile_generic(struct board_profile *out);
/* The slot serving `link` (slot.link == link, else slot.name == link), or NULL. */
const struct board_slot *board_profile_slot(const struct board_profile *p, const char *link);

/* ---- the board: power, LEDs, thermal ------------------------------------------------------ */
enum board_power_backend { BOARD_POWER_NONE = 0, BOARD_POWER_SIM, BOARD_POWER_GPIO };

struct board_config {
    enum board_power_backend power;
    char sim_control[108];  /* BOARD_POWER_SIM: the simulator's control socket */
    unsigned off_ms;        /* BOARD_POWER_SIM: how long the slot stays unpowered, default 2000 */
    char profile[256];      /* "" = "generic"; see board_profile_load() */
    char profile_dir[256];  /* "" = installed profile directory */
    char gpio_record[256];  /* BOARD_POWER_GPIO: "" = libgpiod; "-" = record in memory;
                               a path = append records to that file */
    char thermal_root[256]; /* "" = /sys/class/thermal (tests point at a fixture tree) */
};

struct board;
/* Load the profile, request every GPIO line (power on, reset released, LEDs off) and resolve
 * the thermal zones. 0, or -1 with err naming the profile file and key or the chip/line. */
int board_open(const struct board_config *cfg, struct board **out, char *err, size_t errlen);
void board_close(struct board *b);
const struct board_profile *board_get_profile(const struct board *b);

/* Power-cycle the modem slot of link `slot` (the link name). Blocking for the profile's
 * off + reset pulse + boot wait (board_power_cycle_ms): called from that modem's own thread,
 * never from a hot thread. 0 = done, -1 with err. */
int board_power_cycle(struct board *b, const char *slot, char *err, size_t errlen);
/* Shutdown: skip the remaining waits of a power cycle in progress (and of later ones), so a
 * stopping modem thread is not held for off + pulse + boot wait. The slot is still left
 * powered and out of reset. Thread-safe, does not block. */
void board_interrupt(struct board *b);
/* Upper bound of one board_power_cycle() call in ms (liveness limits of the modem threads). */
unsigned board_power_cycle_ms(const struct board *b);
/* Parse "none" | "sim" | "gpio"; -1 if unknown. */
int board_power_backend_parse(const char *s, enum board_power_backend *out);

enum board_led { BOARD_LED_STATUS, BOARD_LED_LINK };
/* Switch an LED; silently nothing when the profile has no such LED or no GPIO backend. Only a
 * change is written. Call from one thread (the supervisor). */
void board_led_set(struct board *b, enum board_led led, bool on);

/* The recording backend's log so far (gpio_record "-"), NUL-terminated, one operation a line:
 *   <mono_ms> <slot>.<power|reset|led> <request|set> <chip>:<line> asserted=<0|1> level=<0|1>
 * Returns the length (0 with any other backend). */
size_t board_gpio_record(struct board *b, char *buf, size_t n);

enum board_thermal_level { BOARD_THERMAL_OK = 0, BOARD_THERMAL_WARN, BOARD_THERMAL_CRIT };
const char *board_thermal_level_name(enum board_thermal_level l); /* "ok","warn","crit" */
struct board_thermal {
    char zone[32];
    char type[32]; /* the zone's sysfs "type" ("cpu-thermal"), "" if unreadable */
    double temp_c; /* NAN when unreadable */
    double warn_c, crit_c;
    enum board_thermal_level level;
    bool changed; /* level differs from the previous board_thermal_poll() */
};
/* Read every watched zone. Levels rise at warn_c/crit_c and fall only 3 degC below them, so a
 * temperature hovering at a threshold does not flap. Writes up to max readings, sets *n and
 * returns the worst level. */
enum board_thermal_level board_thermal_poll(struct board *b, struct board_thermal *out, size_t max,
                                            size_t *n);

/* ---- hardware watchdog and systemd -------------------------------------------------------- */
struct board_wdt;
/* Open the watchdog device (opening arms a real one). On a real device the timeout is set with
 * WDIOC_SETTIMEOUT (timeout_s 0 = keep the driver's); on a FIFO or a file (tests) the ioctl's
 * ENOTTY is ignored. 0, or -1 with err naming the path. */
int board_wdt_open(const char *path, unsigned timeout_s, struct board_wdt **out, char *err,
                   size_t errlen);
/* One keepalive. 0, or -1 with err. */
int board_wdt_kick(struct board_wdt *w, char *err, size_t errlen);
/* The timeout the driver reports (s), 0 when unknown (not a real device). */
unsigned board_wdt_timeout_s(const struct board_wdt *w);
/* Close. magic: write 'V' first so the driver disarms (clean stop). Without it a real watchdog
 * keeps counting and resets the board unless a new process opens and feeds it in time. */
void board_wdt_close(struct board_wdt *w, bool magic);

/* sd_notify wrappers (no-ops outside systemd). */
void board_sd_ready(const char *status);
void board_sd_watchdog(void);
void board_sd_stopping(void);
/* WatchdogSec in ms as systemd passed it (WATCHDOG_USEC for this pid), 0 = not enabled. */
uint64_t board_sd_watchdog_ms(void);

#endif
