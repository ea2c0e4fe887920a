/* log: the single logging facility. See common.h. */
#include "common/common.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define RECENT_LINES 256
#define LINE_MAX_LEN 512

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile int log_level_cur = LOGL_INFO;
static bool log_syslog;
static char recent[RECENT_LINES][LINE_MAX_LEN];
static unsigned recent_next, recent_count;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_init(const char *ident, enum log_level level, bool use_syslog)
{
    pthread_mutex_lock(&log_lock);
    log_level_cur = level;
    log_syslog = use_syslog;
    if (use_syslog)
        openlog(ident ? ident : "corridor", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    pthread_mutex_unlock(&log_lock);
}

void log_set_level(enum log_level level)
{
    __atomic_store_n(&log_level_cur, level, __ATOMIC_RELAXED);
}

enum log_level log_get_level(void)
{
    return (enum log_level)__atomic_load_n(&log_level_cur, __ATOMIC_RELAXED);
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (unsigned i = 0; i < ARRAY_LEN(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

void log_vmsg(enum log_level level, const char *subsys, const char *fmt, va_list ap)
{
    if ((int)level > (int)log_get_level())
        return;
    int saved_errno = errno;
    char msg[LINE_MAX_LEN];
    vsnprintf(msg, sizeof msg, fmt, ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[LINE_MAX_LEN + 96];
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: %s\n",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000L, level_names[level], subsys ? subsys : "-", msg);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof line) {
        n = sizeof line - 1;
        line[n - 1] = '\n';
    }

    pthread_mutex_lock(&log_lock);
    if (log_syslog) {
        static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
        syslog(prio[level], "%s: %s", subsys ? subsys : "-", msg);
    } else {
        ssize_t w = write(STDERR_FILENO, line, (size_t)n);
        (void)w; /* nowhere left to report a failing stderr */
    }
    str_copy(recent[recent_next], line, LINE_MAX_LEN);
    recent_next = (recent_next + 1) % RECENT_LINES;
    if (recent_count < RECENT_LINES)
        recent_count++;
    pthread_mutex_unlock(&log_lock);
    errno = saved_errno;
}

void log_msg(enum log_level level, const char *subsys, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, subsys, fmt, ap);
    va_end(ap);
}

size_t log_recent(char *buf, size_t buflen, unsigned max_lines)
{
    size_t off = 0;
    if (buflen == 0)
        return 0;
    buf[0] = '\0';
    pthread_mutex_lock(&log_lock);
    unsigned n = recent_count < max_lines ? recent_count : max_lines;
    unsigned start = (recent_next + RECENT_LINES - n) % RECENT_LINES;
    for (unsigned i = 0; i < n; i++) {
        const char *l = recent[(start + i) % RECENT_LINES];
        if (!str_appendf(buf, buflen, &off, "%s", l))
            break;
    }
    pthread_mutex_unlock(&log_lock);
    return off;
}
