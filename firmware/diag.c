/* diag: diagnostics bundle. See diag.h.
 *
 * Why one JSON document compressed with zstd rather than a .tar.gz: zstd and jansson are
 * already linked into the appliance (no new library, no tar/gzip writer to maintain), the
 * dashboard's diagnostics download already has this shape, and support reads it with
 * `zstd -dc FILE | jq` on any machine. Command outputs are kept as strings inside it. */
#include "firmware/diag.h"
#include "firmware/control.h"

#include "common/common.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <gps.h>
#include <libserialport.h>
#include <limits.h>
#include <lz4.h>
#include <microhttpd.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

extern char **environ;

#define DEFAULT_SOCKET   "/run/corridor/control.sock"
#define CONFIG_MAX       (1u << 20)   /* same bound as config_load */
#define CMD_OUTPUT_MAX   (256u << 10) /* per command: enough for ip/dmesg on a 16-modem box */
#define CMD_TIMEOUT_MS   5000
#define LOG_LINES        300
#define DMESG_TAIL_LINES 200

json_t *diag_versions(void)
{
    json_t *v = json_object();
    if (!v)
        return NULL;
    char gps[32];
    snprintf(gps, sizeof gps, "api %d.%d", GPSD_API_MAJOR_VERSION, GPSD_API_MINOR_VERSION);
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    json_object_set_new(v, "corridor", json_string(CORRIDOR_VERSION));
    json_object_set_new(v, "glibc", json_string(gnu_get_libc_version()));
    json_object_set_new(v, "jansson", json_string(jansson_version_str()));
    json_object_set_new(v, "libsodium", json_string(sodium_version_string()));
    json_object_set_new(v, "libmicrohttpd", json_string(MHD_get_version()));
    json_object_set_new(v, "sqlite3", json_string(sqlite3_libversion()));
    json_object_set_new(v, "libcurl", json_string(cv && cv->version ? cv->version : "?"));
    json_object_set_new(v, "zstd", json_string(ZSTD_versionString()));
    json_object_set_new(v, "lz4", json_string(LZ4_versionString()));
    json_object_set_new(v, "libserialport", json_string(sp_get_lib_version_string()));
    json_object_set_new(v, "libgps", json_string(gps));
    return v;
}

json_t *diag_log_lines(unsigned max_lines)
{
    json_t *lines = json_array();
    size_t cap = (size_t)max_lines * 300 + 1;
    char *log = malloc(cap);
    if (!lines || !log) {
        free(log);
        json_decref(lines);
        return NULL;
    }
    log_recent(log, cap, max_lines);
    for (char *save = NULL, *ln = strtok_r(log, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save))
        json_array_append_new(lines, json_string(ln));
    free(log);
    return lines;
}

json_t *diag_runtime_doc(json_t *status)
{
    json_t *o = json_object();
    if (!o) {
        json_decref(status);
        return NULL;
    }
    json_object_set_new(o, "versions", diag_versions());
    json_object_set_new(o, "status", status ? status : json_null());
    json_object_set_new(o, "log", diag_log_lines(256));
    return o;
}

bool diag_key_is_secret(const char *key)
{
    char low[128];
    size_t n = 0;
    for (; key[n] && n + 1 < sizeof low; n++)
        low[n] = (char)tolower((unsigned char)key[n]);
    low[n] = '\0';
    /* A public key is what support compares against the hub's vehicles[] list ("wrong hub
     * key" is a common fault); it is public by construction. */
    if (strstr(low, "public"))
        return false;
    static const char *const words[] = {"key", "token", "password", "passwd", "secret"};
    for (size_t i = 0; i < ARRAY_LEN(words); i++)
        if (strstr(low, words[i]))
            return true;
    return false;
}

/* scheme://user:pass@host/... -> scheme://<redacted>@host/...; 1 if changed. */
static int redact_url(json_t *str)
{
    const char *s = json_string_value(str);
    const char *sep = s ? strstr(s, "://") : NULL;
    if (!sep)
        return 0;
    const char *auth = sep + 3;
    size_t end = strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', end);
    if (!at || ((size_t)(at - auth) == sizeof DIAG_REDACTED - 1 &&
                memcmp(auth, DIAG_REDACTED, sizeof DIAG_REDACTED - 1) == 0))
        return 0;
    size_t head = (size_t)(auth - s), len = strlen(s);
    char *out = malloc(len + sizeof DIAG_REDACTED);
    if (!out)
        return 0;
    memcpy(out, s, head);
    memcpy(out + head, DIAG_REDACTED, sizeof DIAG_REDACTED - 1);
    strcpy(out + head + sizeof DIAG_REDACTED - 1, at);
    json_string_set(str, out);
    free(out);
    return 1;
}

/* depth bounds the recursion for documents we did not build (a hostile config file). */
static unsigned redact(json_t *v, int depth)
{
    unsigned n = 0;
    if (depth > 64)
        return 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
        {
            if (diag_key_is_secret(k) && !json_is_null(x) &&
                !(json_is_string(x) && strcmp(json_string_value(x), DIAG_REDACTED) == 0)) {
                json_object_set_new(v, k, json_string(DIAG_REDACTED));
                n++;
            } else {
                n += redact(x, depth + 1);
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) n += redact(x, depth + 1);
    } else if (json_is_string(v)) {
        n += (unsigned)redact_url(v);
    }
    return n;
}

unsigned diag_redact(json_t *v)
{
    return redact(v, 0);
}

static void unavailable(json_t *doc, const char *part, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void unavailable(json_t *doc, const char *part, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_object_set_new(json_object_get(doc, "unavailable"), part, json_string(msg));
}

/* Whole file, at most max bytes (more is an error), NUL-terminated. Caller frees. */
static char *read_bounded(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(max + 1);
    if (!buf) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    size_t n = fread(buf, 1, max, f);
    bool bad = ferror(f), more = !bad && fgetc(f) != EOF;
    fclose(f);
    if (bad || more) {
        snprintf(err, errlen, "%s: %s", path, bad ? "read error" : "too large");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Run argv (no shell), stdout+stderr captured up to CMD_OUTPUT_MAX, killed after
 * CMD_TIMEOUT_MS. Returns the output (caller frees) and the exit status in *status, or NULL
 * with err when it could not run. */
static char *run_capture(char *const argv[], int *status, char *err, size_t errlen)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return NULL;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (rc != 0) {
        close(pfd[0]);
        snprintf(err, errlen, "%s: %s", argv[0], strerror(rc));
        return NULL;
    }
    char *buf = malloc(CMD_OUTPUT_MAX + 1);
    size_t len = 0;
    bool timed_out = false;
    uint64_t end = mono_ms() + CMD_TIMEOUT_MS;
    while (buf) {
        uint64_t now = mono_ms();
        if (now >= end) {
            timed_out = true;
            break;
        }
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        int pr = poll(&p, 1, (int)(end - now));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            timed_out = pr == 0;
            break;
        }
        char tmp[4096];
        ssize_t r = read(pfd[0], tmp, sizeof tmp);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        /* Past the cap the rest is drained and dropped so the child never blocks on us. */
        size_t take = (size_t)r;
        if (take > CMD_OUTPUT_MAX - len)
            take = CMD_OUTPUT_MAX - len;
        memcpy(buf + len, tmp, take);
        len += take;
    }
    close(pfd[0]);
    if (timed_out)
        kill(pid, SIGKILL);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", argv[0]);
        return NULL;
    }
    buf[len] = '\0';
    if (timed_out) {
        snprintf(err, errlen, "%s: no answer within %d ms", argv[0], CMD_TIMEOUT_MS);
        free(buf);
        return NULL;
    }
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return buf;
}

/* The last max_lines lines of s (in place: returns a pointer into s). */
static const char *tail_lines(const char *s, unsigned max_lines)
{
    size_t len = strlen(s);
    if (len && s[len - 1] == '\n')
        len--;
    unsigned seen = 0;
    for (size_t i = len; i > 0; i--) {
        if (s[i - 1] == '\n' && ++seen == max_lines)
            return s + i;
    }
    return s;
}

/* system.<name> = output of argv, or unavailable.<system.name> = why. */
static void add_command(json_t *doc, json_t *sys, const char *name, char *const argv[],
                        unsigned tail)
{
    char err[256], part[64];
    int st = 0;
    snprintf(part, sizeof part, "system.%s", name);
    char *out = run_capture(argv, &st, err, sizeof err);
    if (!out) {
        unavailable(doc, part, "%s", err);
        return;
    }
    if (st != 0 && !out[0]) {
        unavailable(doc, part, "%s exited with status %d", argv[0], st);
    } else {
        const char *text = tail ? tail_lines(out, tail) : out;
        json_t *s = json_string(text);
        if (!s) { /* not UTF-8 (a modem's garbage in dmesg): keep it readable, not exact */
            for (char *c = out; *c; c++)
                if ((unsigned char)*c >= 0x80)
                    *c = '?';
            s = json_string(text);
        }
        json_object_set_new(sys, name, s);
        if (st != 0)
            unavailable(doc, part, "%s exited with status %d (output kept)", argv[0], st);
    }
    free(out);
}

static void add_file(json_t *doc, json_t *sys, const char *name, const char *path)
{
    char err[256], part[64];
    size_t len;
    snprintf(part, sizeof part, "system.%s", name);
    char *text = read_bounded(path, 64u << 10, &len, err, sizeof err);
    if (!text) {
        unavailable(doc, part, "%s", err);
        return;
    }
    json_t *s = json_string(text);
    json_object_set_new(sys, name, s ? s : json_string("(not UTF-8)"));
    free(text);
}

static void add_serial_ports(json_t *doc, json_t *sys)
{
    const char *dir = "/dev/serial/by-id";
    DIR *d = opendir(dir);
    if (!d) {
        unavailable(doc, "system.serial_by_id", "%s: %s", dir, strerror(errno));
        return;
    }
    json_t *o = json_object();
    struct dirent *e;
    unsigned n = 0;
    while ((e = readdir(d)) && n < 64) {
        if (e->d_name[0] == '.')
            continue;
        char p[PATH_MAX], target[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        ssize_t r = readlink(p, target, sizeof target - 1);
        target[r > 0 ? r : 0] = '\0';
        json_object_set_new(o, e->d_name, json_string(target));
        n++;
    }
    closedir(d);
    json_object_set_new(sys, "serial_by_id", o);
}

static void collect_system(json_t *doc, const char *data_dir)
{
    json_t *sys = json_object();
    struct utsname u;
    if (uname(&u) == 0) {
        json_object_set_new(sys, "uname",
                            json_pack("{s:s,s:s,s:s,s:s,s:s}", "sysname", u.sysname, "nodename",
                                      u.nodename, "release", u.release, "version", u.version,
                                      "machine", u.machine));
    }
    add_file(doc, sys, "uptime", "/proc/uptime");
    add_file(doc, sys, "loadavg", "/proc/loadavg");
    add_file(doc, sys, "meminfo", "/proc/meminfo");
    struct statvfs vfs;
    if (data_dir && statvfs(data_dir, &vfs) == 0) {
        json_object_set_new(sys, "data_dir_fs",
                            json_pack("{s:s,s:I,s:I}", "path", data_dir, "size_bytes",
                                      (json_int_t)vfs.f_blocks * (json_int_t)vfs.f_frsize,
                                      "free_bytes",
                                      (json_int_t)vfs.f_bavail * (json_int_t)vfs.f_frsize));
    } else if (data_dir) {
        unavailable(doc, "system.data_dir_fs", "%s: %s", data_dir, strerror(errno));
    }
    add_command(doc, sys, "ip_addr", (char *[]){"ip", "-d", "addr", NULL}, 0);
    add_command(doc, sys, "ip_route", (char *[]){"ip", "route", "show", "table", "all", NULL}, 0);
    add_command(doc, sys, "ip_rule", (char *[]){"ip", "rule", NULL}, 0);
    add_command(doc, sys, "ip_link_stats", (char *[]){"ip", "-s", "link", NULL}, 0);
    add_command(doc, sys, "dmesg", (char *[]){"dmesg", "-T", NULL}, DMESG_TAIL_LINES);
    add_serial_ports(doc, sys);
    json_object_set_new(doc, "system", sys);
}

/* config: the file as JSON (secrets go later with the whole document), plus whether it is a
 * valid corridor config. A file that is not JSON is not included at all: without structure
 * there is no reliable way to find the secrets in it. */
static json_t *collect_config(json_t *doc, const char *path)
{
    json_t *c = json_object();
    json_object_set_new(c, "path", json_string(path));
    json_object_set_new(doc, "config", c);
    char err[512];
    size_t len;
    char *text = read_bounded(path, CONFIG_MAX, &len, err, sizeof err);
    if (!text) {
        unavailable(doc, "config", "%s", err);
        return NULL;
    }
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    free(text);
    if (!root) {
        json_object_set_new(c, "error",
                            json_sprintf("line %d column %d: %s (content not included)", je.line,
                                         je.column, je.text));
        return NULL;
    }
    json_object_set_new(c, "json", root);
    return root;
}

/* daemon: "diagnostics" over the control socket gives status and log in one go; an older
 * daemon only knows "status". */
static json_t *collect_daemon(json_t *doc, const char *sock)
{
    json_t *d = json_object();
    json_object_set_new(d, "socket", json_string(sock));
    json_object_set_new(doc, "daemon", d);
    char err[512], *reply = NULL;
    json_t *r = NULL;
    static const char *const requests[] = {"diagnostics", "status"};
    for (size_t i = 0; i < ARRAY_LEN(requests) && !r; i++) {
        if (control_request(sock, requests[i], &reply, err, sizeof err) != 0)
            break;
        json_error_t je;
        r = json_loads(reply, 0, &je);
        free(reply);
        reply = NULL;
        if (!r) {
            snprintf(err, sizeof err, "%s: unreadable reply: %s", sock, je.text);
            break;
        }
        if (json_object_get(r, "error")) {
            snprintf(err, sizeof err, "%s: %s", sock,
                     json_string_value(json_object_get(r, "error"))
                         ? json_string_value(json_object_get(r, "error"))
                         : "error");
            json_decref(r);
            r = NULL;
            continue;
        }
        if (i == 1) { /* plain status: wrap like a diagnostics reply */
            json_t *w = json_object();
            json_object_set_new(w, "status", r);
            r = w;
        }
    }
    json_object_set_new(d, "running", json_boolean(r != NULL));
    if (!r) {
        unavailable(doc, "daemon", "%s", err);
        return NULL;
    }
    json_object_set(d, "status", json_object_get(r, "status"));
    if (json_object_get(r, "log"))
        json_object_set(d, "log", json_object_get(r, "log"));
    if (json_object_get(r, "versions"))
        json_object_set(d, "versions", json_object_get(r, "versions"));
    if (json_object_get(r, "modem_replies"))
        json_object_set(d, "modem_replies", json_object_get(r, "modem_replies"));
    json_t *st = json_object_get(r, "status");
    json_incref(st);
    json_decref(r);
    return st;
}

static void collect_journal(json_t *doc)
{
    char err[256];
    int st = 0;
    char *out = run_capture((char *[]){"journalctl", "-u", "corridor.service", "-n", "300",
                                       "--no-pager", "-q", "-o", "short-iso", NULL},
                            &st, err, sizeof err);
    if (!out) {
        unavailable(doc, "journal", "%s", err);
        return;
    }
    json_t *lines = json_array();
    for (char *save = NULL, *ln = strtok_r(out, "\n", &save); ln;
         ln = strtok_r(NULL, "\n", &save)) {
        json_t *s = json_string(ln);
        json_array_append_new(lines, s ? s : json_string("(not UTF-8)"));
    }
    free(out);
    if (st != 0)
        unavailable(doc, "journal", "journalctl exited with status %d", st);
    json_object_set_new(doc, "journal", lines);
}

/* modems: per link, the modem part of the status (identity, SIM, registration, signal, cell,
 * the raw balance reply) next to its configured port, so support sees both in one place. */
static void collect_modems(json_t *doc, json_t *status, json_t *config)
{
    json_t *out = json_array();
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(status, "links"), i, l)
    {
        json_t *m = json_object();
        json_object_set(m, "link", json_object_get(l, "name"));
        json_object_set(m, "modem", json_object_get(l, "modem"));
        /* the last AT commands and answers (newer daemons), oldest first */
        json_t *x =
            json_object_get(json_object_get(json_object_get(doc, "daemon"), "modem_replies"),
                            json_string_value(json_object_get(l, "name")));
        if (x)
            json_object_set(m, "at_exchanges", x);
        json_array_append_new(out, m);
    }
    json_array_foreach(json_object_get(config, "links"), i, l)
    {
        json_t *m = json_array_get(out, i);
        json_t *port = json_object_get(json_object_get(l, "modem"), "port");
        if (m && port)
            json_object_set(m, "port", port);
    }
    if (json_array_size(out) == 0)
        unavailable(doc, "modems", "no daemon status (modem replies come from the running daemon)");
    json_object_set_new(doc, "modems", out);
}

json_t *diag_collect(const struct diag_opts *o)
{
    json_t *doc = json_object();
    if (!doc)
        return NULL;
    char created[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_set_new(doc, "bundle", json_string("corridor-diag"));
    json_object_set_new(doc, "format", json_integer(DIAG_FORMAT));
    json_object_set_new(doc, "created", json_string(created));
    json_object_set_new(doc, "unavailable", json_object());
    json_object_set_new(doc, "versions", diag_versions());

    json_t *cfg = o->config_path ? collect_config(doc, o->config_path) : NULL;
    const char *sock = o->control_socket;
    if (!sock)
        sock = json_string_value(json_object_get(cfg, "control_socket"));
    if (!sock)
        sock = DEFAULT_SOCKET;
    json_t *status = collect_daemon(doc, sock);
    if (!json_object_get(json_object_get(doc, "daemon"), "log") && o->journal)
        collect_journal(doc);
    collect_modems(doc, status, cfg);
    json_decref(status);
    if (o->system_info) {
        const char *dd = json_string_value(json_object_get(cfg, "data_dir"));
        collect_system(doc, dd ? dd : "/var/lib/corridor");
    }
    /* Last, over everything: the daemon's status and logs pass through the same filter. */
    unsigned n = diag_redact(doc);
    json_object_set_new(doc, "redacted", json_integer(n));
    return doc;
}

static int write_all_fd(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int diag_write(json_t *doc, const char *path, char *err, size_t errlen)
{
    char *text = json_dumps(doc, JSON_INDENT(1) | JSON_REAL_PRECISION(10));
    if (!text) {
        snprintf(err, errlen, "%s: cannot serialise the bundle (out of memory)", path);
        return -1;
    }
    size_t tlen = strlen(text);
    if (strcmp(path, "-") == 0) {
        int rc = write_all_fd(STDOUT_FILENO, text, tlen) || write_all_fd(STDOUT_FILENO, "\n", 1);
        free(text);
        if (rc)
            snprintf(err, errlen, "stdout: %s", strerror(errno));
        return rc ? -1 : 0;
    }
    const void *data = text;
    size_t dlen = tlen;
    void *z = NULL;
    if (!ends_with(path, ".json")) {
        size_t bound = ZSTD_compressBound(tlen);
        z = malloc(bound);
        size_t zn = z ? ZSTD_compress(z, bound, text, tlen, 9) : 0;
        if (!z || ZSTD_isError(zn)) {
            snprintf(err, errlen, "%s: compression failed: %s", path,
                     z ? ZSTD_getErrorName(zn) : "out of memory");
            free(z);
            free(text);
            return -1;
        }
        data = z;
        dlen = zn;
    }
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp); /* mode 0600 */
    int rc = -1;
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
    } else if (write_all_fd(fd, data, dlen) != 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "%s: write: %s", path, strerror(errno));
        close(fd);
        unlink(tmp);
    } else if (close(fd) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlink(tmp);
    } else {
        rc = 0;
    }
    free(z);
    free(text);
    return rc;
}

json_t *diag_read(const char *path, size_t max_bytes, char *err, size_t errlen)
{
    size_t len;
    char *buf = read_bounded(path, max_bytes, &len, err, errlen);
    if (!buf)
        return NULL;
    char *text = buf;
    size_t tlen = len;
    static const unsigned char zmagic[4] = {0x28, 0xb5, 0x2f, 0xfd};
    if (len >= 4 && memcmp(buf, zmagic, 4) == 0) {
        unsigned long long sz = ZSTD_getFrameContentSize(buf, len);
        if (sz == ZSTD_CONTENTSIZE_ERROR || sz == ZSTD_CONTENTSIZE_UNKNOWN || sz > max_bytes) {
            snprintf(err, errlen, "%s: not a bundle (bad or oversized zstd frame)", path);
            free(buf);
            return NULL;
        }
        text = malloc((size_t)sz + 1);
        size_t n = text ? ZSTD_decompress(text, (size_t)sz, buf, len) : 0;
        if (!text || ZSTD_isError(n)) {
            snprintf(err, errlen, "%s: %s", path, text ? ZSTD_getErrorName(n) : "out of memory");
            free(text);
            free(buf);
            return NULL;
        }
        tlen = n;
        free(buf);
        buf = NULL;
    }
    json_error_t je;
    json_t *doc = json_loadb(text, tlen, 0, &je);
    free(text);
    if (!doc)
        snprintf(err, errlen, "%s: line %d: %s", path, je.line, je.text);
    return doc;
}
