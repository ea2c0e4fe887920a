/* serial: one tty opened raw 8N1 without flow control, read/written with poll().
 *
 * Two ways in, one way of working: libserialport opens and configures real ports (it knows the
 * quirks of USB serial drivers), plain termios takes any tty libserialport refuses (Debian 12's
 * 0.1.1 rejects pseudo-terminals: no /sys/class/tty entry, and the modem-line ioctl fails). Both
 * end with a non-blocking file descriptor, and every read, write and flush below goes through
 * that descriptor, so the AT engine sees identical behaviour (timeouts, hang-up detection) on
 * the simulator's pty and on a real SIM7600. */
#include "modem/at.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <libserialport.h>

#include "common/common.h"

struct serial {
    int fd;
    struct sp_port *sp; /* NULL when opened through termios */
    char path[256];
};

static speed_t baud_to_speed(int baud)
{
    switch (baud) {
    case 9600:
        return B9600;
    case 19200:
        return B19200;
    case 38400:
        return B38400;
    case 57600:
        return B57600;
    case 115200:
        return B115200;
    case 230400:
        return B230400;
    case 460800:
        return B460800;
    case 921600:
        return B921600;
    default:
        return 0;
    }
}

/* libserialport path: NULL-free return on success with *fd set; on failure everything it
 * allocated is released and the reason is left in why for the caller's message. */
static struct sp_port *open_libserialport(const char *path, int baud, int *fd, char *why,
                                          size_t whylen)
{
    struct sp_port *p = NULL;
    if (sp_get_port_by_name(path, &p) != SP_OK) {
        str_copy(why, "not known to libserialport", whylen);
        return NULL;
    }
    if (sp_open(p, SP_MODE_READ_WRITE) != SP_OK) {
        char *m = sp_last_error_message();
        snprintf(why, whylen, "sp_open: %s", m ? m : "failed");
        sp_free_error_message(m);
        sp_free_port(p);
        return NULL;
    }
    if (sp_set_baudrate(p, baud) != SP_OK || sp_set_bits(p, 8) != SP_OK ||
        sp_set_parity(p, SP_PARITY_NONE) != SP_OK || sp_set_stopbits(p, 1) != SP_OK ||
        sp_set_flowcontrol(p, SP_FLOWCONTROL_NONE) != SP_OK || sp_get_port_handle(p, fd) != SP_OK) {
        char *m = sp_last_error_message();
        snprintf(why, whylen, "configure: %s", m ? m : "failed");
        sp_free_error_message(m);
        sp_close(p);
        sp_free_port(p);
        return NULL;
    }
    return p;
}

static int open_termios(const char *path, int baud, char *why, size_t whylen)
{
    speed_t sp = baud_to_speed(baud);
    if (!sp) {
        snprintf(why, whylen, "unsupported baud rate %d", baud);
        return -1;
    }
    /* O_NOCTTY: a modem port must never become our controlling terminal (a hang-up on it would
     * SIGHUP the daemon). O_NONBLOCK: every wait goes through poll() with a deadline. */
    int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "open: %s", strerror(errno));
        return -1;
    }
    struct termios t;
    if (!isatty(fd) || tcgetattr(fd, &t) != 0) {
        snprintf(why, whylen, "not a tty: %s", strerror(errno ? errno : ENOTTY));
        close(fd);
        return -1;
    }
    cfmakeraw(&t);
    t.c_cflag &= ~(tcflag_t)(CSTOPB | PARENB | CSIZE | CRTSCTS);
    t.c_cflag |= CS8 | CLOCAL | CREAD;
    t.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    cfsetispeed(&t, sp);
    cfsetospeed(&t, sp);
    if (tcsetattr(fd, TCSANOW, &t) != 0) {
        snprintf(why, whylen, "tcsetattr: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int serial_open(const char *path, int baud, struct serial **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!path || !*path) {
        snprintf(err, errlen, "serial: empty port path");
        return -1;
    }
    struct serial *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "serial %s: out of memory", path);
        return -1;
    }
    str_copy(s->path, path, sizeof(s->path));
    s->fd = -1;

    char why_sp[160] = "", why_tio[160] = "";
    s->sp = open_libserialport(path, baud, &s->fd, why_sp, sizeof(why_sp));
    if (s->sp) {
        /* libserialport may leave the descriptor blocking; our waits are all poll-based. */
        int fl = fcntl(s->fd, F_GETFL);
        if (fl >= 0)
            fcntl(s->fd, F_SETFL, fl | O_NONBLOCK);
    } else {
        s->fd = open_termios(path, baud, why_tio, sizeof(why_tio));
        if (s->fd < 0) {
            snprintf(err, errlen, "serial %s: %s (libserialport: %s)", path, why_tio, why_sp);
            free(s);
            return -1;
        }
        LOG_D("serial", "%s: termios backend (libserialport: %s)", path, why_sp);
    }
    tcflush(s->fd, TCIOFLUSH);
    *out = s;
    return 0;
}

static int remaining_ms(uint64_t deadline)
{
    uint64_t now = mono_ms();
    return now >= deadline ? 0 : (int)(deadline - now);
}

ssize_t serial_read(struct serial *s, void *buf, size_t n, int timeout_ms)
{
    if (!s || s->fd < 0)
        return -1;
    if (n == 0)
        return 0;
    uint64_t deadline = mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        int r = poll(&p, 1, remaining_ms(deadline));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            return 0;
        if (p.revents & POLLIN) {
            ssize_t k = read(s->fd, buf, n);
            if (k > 0)
                return k;
            if (k < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            /* 0 after POLLIN is end-of-file (hang-up); EIO/ENXIO: the USB device or the pty
             * master is gone. Either way the port is dead for us. */
            return -1;
        }
        if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
            return -1;
    }
}

int serial_write(struct serial *s, const void *buf, size_t n, int timeout_ms)
{
    if (!s || s->fd < 0)
        return -1;
    const unsigned char *b = buf;
    uint64_t deadline = mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    size_t off = 0;
    while (off < n) {
        ssize_t k = write(s->fd, b + off, n - off);
        if (k > 0) {
            off += (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno != EAGAIN)
            return -1;
        struct pollfd p = {.fd = s->fd, .events = POLLOUT};
        int ms = remaining_ms(deadline);
        if (ms == 0)
            return -1;
        int r = poll(&p, 1, ms);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL)) && !(p.revents & POLLOUT))
            return -1;
    }
    return 0;
}

void serial_flush_input(struct serial *s)
{
    if (!s || s->fd < 0)
        return;
    tcflush(s->fd, TCIFLUSH);
    /* tcflush only drops what the line discipline holds; drain anything that raced in. The
     * bound keeps a modem that streams garbage from holding us here. */
    unsigned char junk[256];
    for (int i = 0; i < 64; i++) {
        ssize_t k = read(s->fd, junk, sizeof(junk));
        if (k <= 0)
            break;
    }
}

void serial_close(struct serial *s)
{
    if (!s)
        return;
    if (s->sp) {
        sp_close(s->sp); /* closes s->fd */
        sp_free_port(s->sp);
    } else if (s->fd >= 0) {
        close(s->fd);
    }
    free(s);
}

bool serial_present(const char *path)
{
    struct stat st;
    /* stat follows /dev/serial/by-id symlinks: they vanish together with the USB device. */
    return path && *path && stat(path, &st) == 0 && S_ISCHR(st.st_mode);
}
