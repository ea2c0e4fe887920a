/* board: modem power backends. See board.h. */
#include "board/board.h"
#include "common/common.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct board {
    struct board_config cfg;
    pthread_mutex_t lock; /* one power operation at a time: slots may share a supply */
};

int board_power_backend_parse(const char *s, enum board_power_backend *out)
{
    if (strcmp(s, "none") == 0)
        *out = BOARD_POWER_NONE;
    else if (strcmp(s, "sim") == 0)
        *out = BOARD_POWER_SIM;
    else
        return -1;
    return 0;
}

int board_open(const struct board_config *cfg, struct board **out, char *err, size_t errlen)
{
    struct board *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "board: out of memory");
        return -1;
    }
    b->cfg = *cfg;
    if (!b->cfg.off_ms)
        b->cfg.off_ms = 2000;
    if (b->cfg.power == BOARD_POWER_SIM && !b->cfg.sim_control[0]) {
        free(b);
        snprintf(err, errlen, "board: power backend \"sim\" needs sim_control");
        return -1;
    }
    pthread_mutex_init(&b->lock, NULL);
    *out = b;
    return 0;
}

void board_close(struct board *b)
{
    if (!b)
        return;
    pthread_mutex_destroy(&b->lock);
    free(b);
}

/* One request line to the simulator, one reply line back ("ok" or "error <why>"). */
static int sim_request(const char *path, const char *req, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    str_copy(sa.sun_path, path, sizeof sa.sun_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(err, errlen, "simulator control %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t len = strlen(req);
    if (send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
        snprintf(err, errlen, "simulator control %s: send: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    char reply[256];
    size_t off = 0;
    uint64_t end = mono_ms() + 2000;
    while (off + 1 < sizeof reply && !memchr(reply, '\n', off)) {
        uint64_t now = mono_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (now >= end || poll(&p, 1, (int)(end - now)) <= 0)
            break;
        ssize_t r = read(fd, reply + off, sizeof reply - 1 - off);
        if (r <= 0)
            break;
        off += (size_t)r;
    }
    close(fd);
    reply[off] = '\0';
    str_trim(reply);
    if (strcmp(reply, "ok") != 0) {
        char what[96];
        str_copy(what, req, sizeof what);
        snprintf(err, errlen, "simulator control %s: \"%s\" answered \"%s\"", path, str_trim(what),
                 reply[0] ? reply : "(nothing within 2 s)");
        return -1;
    }
    return 0;
}

int board_power_cycle(struct board *b, const char *slot, char *err, size_t errlen)
{
    int rc = -1;
    pthread_mutex_lock(&b->lock);
    switch (b->cfg.power) {
    case BOARD_POWER_NONE:
        snprintf(err, errlen, "no power control on this board (board.power = none)");
        break;
    case BOARD_POWER_SIM: {
        char req[96];
        snprintf(req, sizeof req, "powercycle %s\n", slot);
        rc = sim_request(b->cfg.sim_control, req, err, errlen);
        break;
    }
    }
    pthread_mutex_unlock(&b->lock);
    return rc;
}
