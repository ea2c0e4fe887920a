/* common: logging, clocks, a bounded FIFO and string helpers shared by every subsystem.
 *
 * This is the only header the subsystems (modem/, agg/, telemetry/, board/) share. It has no
 * knowledge of any subsystem, so each stays buildable and testable on its own. */
#ifndef CORRIDOR_COMMON_H
#define CORRIDOR_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- logging ------------------------------------------------------------------------------
 * One facility for the whole process. Lines go to stderr (default) or syslog; each line is
 * written with one write() so threads never interleave inside a line. The last lines are also
 * kept in memory for the diagnostics bundle. */
enum log_level { LOGL_ERROR = 0, LOGL_WARN = 1, LOGL_INFO = 2, LOGL_DEBUG = 3 };

void log_init(const char *ident, enum log_level level, bool use_syslog);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int log_level_parse(const char *s, enum log_level *out); /* "error"|"warn"|"info"|"debug" */
void log_msg(enum log_level level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level level, const char *subsys, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* Copy up to max of the most recent log lines (oldest first) into buf, '\n'-separated.
 * Returns the number of bytes written (always NUL-terminated when buflen > 0). */
size_t log_recent(char *buf, size_t buflen, unsigned max_lines);

#define LOG_E(sub, ...) log_msg(LOGL_ERROR, sub, __VA_ARGS__)
#define LOG_W(sub, ...) log_msg(LOGL_WARN, sub, __VA_ARGS__)
#define LOG_I(sub, ...) log_msg(LOGL_INFO, sub, __VA_ARGS__)
#define LOG_D(sub, ...)                                                                            \
    do {                                                                                           \
        if (log_get_level() >= LOGL_DEBUG)                                                         \
            log_msg(LOGL_DEBUG, sub, __VA_ARGS__);                                                 \
    } while (0)

/* ---- clocks -------------------------------------------------------------------------------
 * Every sample carries a monotonic timestamp (CLOCK_MONOTONIC); wall time is only for
 * records that leave the box. */
uint64_t mono_ns(void);
uint64_t mono_ms(void);
uint64_t wall_ms(void);
/* Sleep up to ms, returning early (true) if *stop becomes true; checks every 50 ms at most. */
bool sleep_ms_unless(volatile const bool *stop, unsigned ms);

/* ---- bounded FIFO -------------------------------------------------------------------------
 * Fixed-size items copied in and out under a mutex with a condition variable (the early Redis
 * bio.c pattern). Producers never block: a full queue refuses the item and counts the drop, so
 * a slow consumer can never stall a hot thread. */
struct bqueue;
struct bqueue *bq_new(size_t item_size, size_t capacity);
void bq_free(struct bqueue *q);
/* 0 on success, -1 if full or closed (the item is counted as dropped). */
int bq_push(struct bqueue *q, const void *item);
/* Wait up to timeout_ms (-1 forever) for an item. 1 = got one, 0 = timeout, -1 = closed+empty. */
int bq_pop(struct bqueue *q, void *item, int timeout_ms);
void bq_close(struct bqueue *q);
size_t bq_len(struct bqueue *q);
uint64_t bq_dropped(struct bqueue *q);

/* ---- strings ------------------------------------------------------------------------------ */
/* Copy src into dst of size n, always NUL-terminated; returns strlen(src) (truncation if >= n). */
size_t str_copy(char *dst, const char *src, size_t n);
/* snprintf that appends to buf at *off, never overflowing; returns false once truncated. */
bool str_appendf(char *buf, size_t n, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Trim ASCII whitespace at both ends in place; returns s. */
char *str_trim(char *s);
/* Parse a whole decimal integer / double; false (out untouched) on junk or overflow. */
bool str_to_long(const char *s, long *out);
bool str_to_double(const char *s, double *out);

#endif
