/* watchdog: the hardware watchdog (Linux watchdog API) and systemd notifications.
 * See board.h and docs/board.md for who feeds them and when. */
#include "board/board.h"
#include "common/common.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/watchdog.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

struct board_wdt {
    int fd;
    char path[256];
    unsigned timeout_s; /* as the driver reports it, 0 = not a real device */
};

int board_wdt_open(const char *path, unsigned timeout_s, struct board_wdt **out, char *err,
                   size_t errlen)
{
    *out = NULL;
    struct board_wdt *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "watchdog %s: out of memory", path);
        return -1;
    }
    str_copy(w->path, path, sizeof w->path);
    /* O_WRONLY as the watchdog API expects; a real device is armed from here on. O_NONBLOCK so
     * that a FIFO without a reader (a test harness that is gone, a wrong path) fails with ENXIO
     * instead of blocking the start; cleared again below for the writes. */
    w->fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (w->fd < 0) {
        int e = errno; /* callers tell "no watchdog here" (ENOENT) from real failures */
        snprintf(err, errlen, "watchdog %s: %s", path, strerror(e));
        free(w);
        errno = e;
        return -1;
    }
    int fl = fcntl(w->fd, F_GETFL);
    if (fl >= 0)
        fcntl(w->fd, F_SETFL, fl & ~O_NONBLOCK);
    if (timeout_s) {
        int t = (int)timeout_s;
        if (ioctl(w->fd, WDIOC_SETTIMEOUT, &t) != 0) {
            /* ENOTTY: a FIFO or a file standing in for the device (tests). */
            if (errno != ENOTTY)
                LOG_W("board", "watchdog %s: cannot set the timeout to %u s: %s", path, timeout_s,
                      strerror(errno));
        } else if (t != (int)timeout_s) {
            /* Drivers round to what the hardware can count (and say so in t). */
            LOG_W("board", "watchdog %s: timeout %u s asked, the driver set %d s", path, timeout_s,
                  t);
        }
    }
    int t = 0;
    if (ioctl(w->fd, WDIOC_GETTIMEOUT, &t) == 0 && t > 0)
        w->timeout_s = (unsigned)t;
    *out = w;
    return 0;
}

int board_wdt_kick(struct board_wdt *w, char *err, size_t errlen)
{
    /* Any write feeds the dog. Never a 'V' here: that byte arms the magic close. */
    if (write(w->fd, "1", 1) != 1) {
        snprintf(err, errlen, "watchdog %s: keepalive: %s", w->path, strerror(errno));
        return -1;
    }
    return 0;
}

unsigned board_wdt_timeout_s(const struct board_wdt *w)
{
    return w ? w->timeout_s : 0;
}

void board_wdt_close(struct board_wdt *w, bool magic)
{
    if (!w)
        return;
    if (magic && write(w->fd, "V", 1) != 1)
        LOG_W("board", "watchdog %s: magic close: %s", w->path, strerror(errno));
    close(w->fd);
    free(w);
}

void board_sd_ready(const char *status)
{
    if (status && status[0])
        sd_notifyf(0, "READY=1\nSTATUS=%s", status);
    else
        sd_notify(0, "READY=1");
}

void board_sd_watchdog(void)
{
    sd_notify(0, "WATCHDOG=1");
}

void board_sd_stopping(void)
{
    sd_notify(0, "STOPPING=1");
}

uint64_t board_sd_watchdog_ms(void)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0)
        return 0;
    return usec / 1000u;
}
