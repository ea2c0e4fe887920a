/* control: Unix control socket server and client. See control.h. */
#include "firmware/control.h"
#include "firmware/diag.h"
#include "firmware/render.h"
#include "common/alive.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct control {
    int lfd, stopfd;
    pthread_t thread;
    struct state *st;
    char vehicle_id[64];
    char path[108];
};

static int read_line_deadline(int fd, char *buf, size_t n, int timeout_ms)
{
    size_t off = 0;
    uint64_t end = mono_ms() + (uint64_t)timeout_ms;
    while (off + 1 < n) {
        uint64_t now = mono_ms();
        if (now >= end)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(end - now)) <= 0)
            return -1;
        ssize_t r = read(fd, buf + off, n - 1 - off);
        if (r <= 0)
            return -1;
        off += (size_t)r;
        buf[off] = '\0';
        char *nl = strchr(buf, '\n');
        if (nl) {
            *nl = '\0';
            return 0;
        }
    }
    return -1; /* over-long request */
}

static void write_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void serve_client(struct control *c, int fd)
{
    char req[256];
    if (read_line_deadline(fd, req, sizeof req, 1000) != 0) {
        static const char msg[] = "{\"error\":\"request must be one line under 256 bytes\"}\n";
        write_all(fd, msg, sizeof msg - 1);
        return;
    }
    str_trim(req);
    json_t *reply;
    if (strcmp(req, "status") == 0) {
        reply = render_status(c->st, c->vehicle_id);
    } else if (strcmp(req, "diagnostics") == 0) {
        /* The status plus the daemon's own recent log lines: what `corridor diag` bundles. */
        reply = diag_runtime_doc(render_status(c->st, c->vehicle_id));
        if (reply)
            json_object_set_new(reply, "modem_replies", render_exchanges(c->st));
    } else {
        reply = json_pack("{s:s}", "error", "unknown request (known: status, diagnostics)");
    }
    char *text = json_dumps(reply, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    json_decref(reply);
    if (text) {
        write_all(fd, text, strlen(text));
        write_all(fd, "\n", 1);
        free(text);
    }
}

static void *control_thread(void *arg)
{
    struct control *c = arg;
    pthread_setname_np(pthread_self(), "control");
    for (;;) {
        alive_beat("control", NULL);
        struct pollfd p[2] = {{.fd = c->lfd, .events = POLLIN},
                              {.fd = c->stopfd, .events = POLLIN}};
        if (poll(p, 2, 1000) < 0) { /* wakes each second to beat (common/alive.h) */
            if (errno == EINTR)
                continue;
            LOG_E("control", "poll: %s", strerror(errno));
            break;
        }
        if (p[1].revents)
            break;
        if (p[0].revents & POLLIN) {
            int fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0)
                continue;
            serve_client(c, fd);
            close(fd);
        }
    }
    return NULL;
}

int control_start(const char *path, struct state *st, const char *vehicle_id, struct control **out,
                  char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "control_socket: path \"%s\" is too long for a Unix socket", path);
        return -1;
    }
    struct control *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "control: out of memory");
        return -1;
    }
    c->st = st;
    str_copy(c->vehicle_id, vehicle_id, sizeof c->vehicle_id);
    str_copy(c->path, path, sizeof c->path);
    str_copy(sa.sun_path, path, sizeof sa.sun_path);
    /* Create the directory (e.g. /run/corridor) if needed. */
    char dir[108];
    str_copy(dir, path, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        mkdir(dir, 0755);
    }
    c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    c->stopfd = eventfd(0, EFD_CLOEXEC);
    if (c->lfd < 0 || c->stopfd < 0) {
        snprintf(err, errlen, "control: socket: %s", strerror(errno));
        goto fail;
    }
    unlink(path); /* a stale socket from a crashed run; the data_dir lock guarantees one daemon */
    mode_t old = umask(0077);
    int rc = bind(c->lfd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc < 0 || listen(c->lfd, 8) < 0) {
        snprintf(err, errlen, "control_socket %s: %s", path, strerror(errno));
        goto fail;
    }
    if (pthread_create(&c->thread, NULL, control_thread, c) != 0) {
        snprintf(err, errlen, "control: cannot start thread");
        goto fail;
    }
    *out = c;
    return 0;
fail:
    if (c->lfd >= 0)
        close(c->lfd);
    if (c->stopfd >= 0)
        close(c->stopfd);
    free(c);
    return -1;
}

void control_stop(struct control *c)
{
    if (!c)
        return;
    uint64_t one = 1;
    ssize_t w = write(c->stopfd, &one, sizeof one);
    (void)w;
    pthread_join(c->thread, NULL);
    close(c->lfd);
    close(c->stopfd);
    unlink(c->path);
    free(c);
}

int control_request(const char *path, const char *request, char **reply, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    str_copy(sa.sun_path, path, sizeof sa.sun_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        snprintf(err, errlen, "%s: cannot connect: %s (is corridor running?)", path,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char line[300];
    snprintf(line, sizeof line, "%s\n", request);
    write_all(fd, line, strlen(line));
    /* The status document of 16 links is ~30 KB; 4 MB bounds a misbehaving peer. */
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 3000) <= 0)
            break;
        if (len + 1 >= cap) {
            char *nb = cap < (4u << 20) ? realloc(buf, cap * 2) : NULL;
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    if (!len) {
        free(buf);
        snprintf(err, errlen, "%s: no reply from corridor within 3 s", path);
        return -1;
    }
    *reply = buf;
    return 0;
}
