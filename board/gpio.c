/* gpio: modem power/reset lines and LEDs. See board_int.h.
 *
 * libgpiod 1.6 (the GPIO character device; the sysfs GPIO interface is deprecated and absent
 * on recent kernels) or the recording backend, which performs nothing and writes one line per
 * operation with a monotonic timestamp. Tests use the recording (this lab has no GPIO chip);
 * on a new board it is a dry run that shows what the profile would do. */
#include "board/board_int.h"
#include "common/common.h"

#include <errno.h>
#include <fcntl.h>
#include <gpiod.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GPIO_MAX_LINES (BOARD_MAX_SLOTS * 2 + 2)
#define GPIO_MAX_CHIPS 8
#define RECORD_MAX_MEM (64u * 1024u) /* the in-memory recording stops growing here */
#define GPIO_CONSUMER  "corridor"

struct gline {
    struct board_line cfg;
    char label[48];
    struct gpiod_line *line; /* libgpiod; owned by its chip */
};

struct gpio {
    pthread_mutex_t mu;
    bool recording;
    int rec_fd; /* recording to a file, else -1 */
    char *mem;  /* recording to memory: owned, RECORD_MAX_MEM + 1 bytes */
    size_t mem_len;
    bool mem_full;
    struct {
        char name[64];
        struct gpiod_chip *chip;
    } chips[GPIO_MAX_CHIPS];
    unsigned nchips;
    struct gline lines[GPIO_MAX_LINES];
    unsigned nlines;
};

int gpio_open(const char *record, struct gpio **out, char *err, size_t errlen)
{
    struct gpio *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "gpio: out of memory");
        return -1;
    }
    g->rec_fd = -1;
    if (record) {
        g->recording = true;
        if (strcmp(record, "-") == 0) {
            g->mem = malloc(RECORD_MAX_MEM + 1);
            if (!g->mem) {
                free(g);
                snprintf(err, errlen, "gpio: out of memory");
                return -1;
            }
            g->mem[0] = '\0';
        } else {
            g->rec_fd = open(record, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (g->rec_fd < 0) {
                snprintf(err, errlen, "gpio recording %s: %s", record, strerror(errno));
                free(g);
                return -1;
            }
        }
    }
    pthread_mutex_init(&g->mu, NULL);
    *out = g;
    return 0;
}

void gpio_close(struct gpio *g)
{
    if (!g)
        return;
    /* Closing a chip releases its lines; they keep their last value (the kernel does not
     * reset them), so a stopping corridor leaves the modems powered. */
    for (unsigned i = 0; i < g->nchips; i++)
        gpiod_chip_close(g->chips[i].chip);
    if (g->rec_fd >= 0)
        close(g->rec_fd);
    free(g->mem);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

static void describe(const struct board_line *l, char *buf, size_t n)
{
    if (l->offset >= 0)
        snprintf(buf, n, "%s:%d", l->chip, l->offset);
    else
        snprintf(buf, n, "%s:%s", l->chip, l->name);
}

/* Caller holds mu. */
static void record(struct gpio *g, const struct gline *gl, const char *op, bool asserted)
{
    char where[100], text[200];
    describe(&gl->cfg, where, sizeof where);
    int len = snprintf(text, sizeof text, "%llu %s %s %s asserted=%d level=%d\n",
                       (unsigned long long)mono_ms(), gl->label, op, where, asserted ? 1 : 0,
                       (asserted != gl->cfg.active_low) ? 1 : 0);
    if (len <= 0)
        return;
    if ((size_t)len >= sizeof text)
        len = (int)sizeof text - 1;
    if (g->rec_fd >= 0) {
        if (write(g->rec_fd, text, (size_t)len) != len)
            LOG_W("board", "gpio recording: write: %s", strerror(errno));
    } else if (g->mem && !g->mem_full) {
        if (g->mem_len + (size_t)len > RECORD_MAX_MEM) {
            g->mem_full = true; /* a bounded log: later operations are not kept */
            return;
        }
        memcpy(g->mem + g->mem_len, text, (size_t)len);
        g->mem_len += (size_t)len;
        g->mem[g->mem_len] = '\0';
    }
}

/* Caller holds mu. */
static struct gpiod_chip *chip_of(struct gpio *g, const char *name, char *err, size_t errlen)
{
    for (unsigned i = 0; i < g->nchips; i++)
        if (strcmp(g->chips[i].name, name) == 0)
            return g->chips[i].chip;
    if (g->nchips == GPIO_MAX_CHIPS) {
        snprintf(err, errlen, "gpio chip %s: more than %d chips in one profile", name,
                 GPIO_MAX_CHIPS);
        return NULL;
    }
    /* By name ("gpiochip0"), path, label or number: what the profile author saw in gpioinfo. */
    struct gpiod_chip *c = gpiod_chip_open_lookup(name);
    if (!c) {
        snprintf(err, errlen, "gpio chip %s: %s", name,
                 errno ? strerror(errno) : "no such chip (name, path, label or number)");
        return NULL;
    }
    str_copy(g->chips[g->nchips].name, name, sizeof g->chips[0].name);
    g->chips[g->nchips++].chip = c;
    return c;
}

int gpio_request(struct gpio *g, const struct board_line *l, const char *label, bool asserted,
                 int *handle, char *err, size_t errlen)
{
    int rc = -1;
    char where[100];
    describe(l, where, sizeof where);
    pthread_mutex_lock(&g->mu);
    if (g->nlines == GPIO_MAX_LINES) {
        snprintf(err, errlen, "gpio %s (%s): too many lines", where, label);
        goto out;
    }
    struct gline *gl = &g->lines[g->nlines];
    memset(gl, 0, sizeof *gl);
    gl->cfg = *l;
    str_copy(gl->label, label, sizeof gl->label);
    if (!g->recording) {
        errno = 0;
        struct gpiod_chip *c = chip_of(g, l->chip, err, errlen);
        if (!c)
            goto out;
        gl->line = l->offset >= 0 ? gpiod_chip_get_line(c, (unsigned)l->offset)
                                  : gpiod_chip_find_line(c, l->name);
        if (!gl->line) {
            snprintf(err, errlen, "gpio %s (%s): no such line on the chip", where, label);
            goto out;
        }
        int flags = l->active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
        if (gpiod_line_request_output_flags(gl->line, GPIO_CONSUMER, flags, asserted ? 1 : 0) !=
            0) {
            snprintf(err, errlen, "gpio %s (%s): cannot request as output: %s", where, label,
                     strerror(errno));
            goto out;
        }
    }
    record(g, gl, "request", asserted);
    *handle = (int)g->nlines++;
    rc = 0;
out:
    pthread_mutex_unlock(&g->mu);
    return rc;
}

int gpio_set(struct gpio *g, int handle, bool asserted, char *err, size_t errlen)
{
    int rc = 0;
    pthread_mutex_lock(&g->mu);
    if (handle < 0 || (unsigned)handle >= g->nlines) {
        snprintf(err, errlen, "gpio: no line #%d", handle);
        rc = -1;
    } else {
        struct gline *gl = &g->lines[handle];
        if (gl->line && gpiod_line_set_value(gl->line, asserted ? 1 : 0) != 0) {
            char where[100];
            describe(&gl->cfg, where, sizeof where);
            snprintf(err, errlen, "gpio %s (%s): set %d: %s", where, gl->label, asserted ? 1 : 0,
                     strerror(errno));
            rc = -1;
        } else {
            record(g, gl, "set", asserted);
        }
    }
    pthread_mutex_unlock(&g->mu);
    return rc;
}

size_t gpio_record_text(struct gpio *g, char *buf, size_t n)
{
    if (!n)
        return 0;
    pthread_mutex_lock(&g->mu);
    size_t len = 0;
    if (g->mem)
        len = str_copy(buf, g->mem, n);
    else
        buf[0] = '\0';
    pthread_mutex_unlock(&g->mu);
    return len < n ? len : n - 1;
}
