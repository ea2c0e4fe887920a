/* smart: storage health from smartctl's JSON and the eMMC sysfs files. See smart.h. */
#include "telemetry/smart.h"

#include "common/common.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define SMART_OUT_MAX (1u << 20) /* smartctl -j -H -A prints ~5-30 KB; more is not smartctl */

void storage_health_init(struct storage_health *h)
{
    memset(h, 0, sizeof *h);
    h->status = STORAGE_UNKNOWN;
    h->smart_passed = -1;
    h->life_used_pct = -1;
    h->power_on_hours = -1;
    h->temp_c = NAN;
    h->media_errors = -1;
}

int storage_life_left_pct(const struct storage_health *h)
{
    if (h->life_used_pct < 0)
        return -1;
    return h->life_used_pct >= 100 ? 0 : 100 - h->life_used_pct;
}

const char *storage_status_name(enum storage_status s)
{
    switch (s) {
    case STORAGE_OK:
        return "ok";
    case STORAGE_WARN:
        return "warn";
    case STORAGE_FAILING:
        return "failing";
    case STORAGE_UNKNOWN:
        break;
    }
    return "unknown";
}

/* ---- smartctl JSON ------------------------------------------------------------------------- */

/* A non-negative integer member, or -1 (absent, not an integer, negative). */
static int64_t j_int(const json_t *obj, const char *key)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    if (!json_is_integer(v))
        return -1;
    json_int_t i = json_integer_value(v);
    return i < 0 ? -1 : (int64_t)i;
}

static int clamp_pct(int64_t v)
{
    return v < 0 ? -1 : v > 255 ? 255 : (int)v;
}

/* Life used from the ATA attribute table. Vendors report remaining life as the NORMALISED value
 * (100 = new) of different attributes; the first one present wins, in this order:
 *   231 SSD_Life_Left, 233 Media_Wearout_Indicator (Intel), 202 Percent_Lifetime_Remain
 *   (Micron/Crucial), 177 Wear_Leveling_Count (Samsung), 169 Remaining_Lifetime_Perc. */
static const int ATA_LIFE_IDS[] = {231, 233, 202, 177, 169};

static void parse_ata(const json_t *attrs, struct storage_health *h, bool *any_failed_now)
{
    json_t *table = json_object_get(attrs, "table");
    if (!json_is_array(table))
        return;
    int64_t life_val[ARRAY_LEN(ATA_LIFE_IDS)];
    for (size_t k = 0; k < ARRAY_LEN(ATA_LIFE_IDS); k++)
        life_val[k] = -1;
    int64_t media = -1;
    size_t i;
    json_t *a;
    json_array_foreach(table, i, a)
    {
        int64_t id = j_int(a, "id");
        int64_t value = j_int(a, "value");
        int64_t raw = j_int(json_object_get(a, "raw"), "value");
        json_t *wf = json_object_get(a, "when_failed");
        if (json_is_string(wf) && strcmp(json_string_value(wf), "now") == 0)
            *any_failed_now = true;
        for (size_t k = 0; k < ARRAY_LEN(ATA_LIFE_IDS); k++)
            if (id == ATA_LIFE_IDS[k] && value >= 0 && life_val[k] < 0)
                life_val[k] = value;
        /* reallocated, reported uncorrectable, pending, offline uncorrectable: sectors the
         * medium lost or is about to lose. */
        if ((id == 5 || id == 187 || id == 197 || id == 198) && raw >= 0)
            media = (media < 0 ? 0 : media) + (raw > INT32_MAX ? INT32_MAX : raw);
        if (id == 9 && raw >= 0 && h->power_on_hours < 0)
            h->power_on_hours = raw & 0xffffffffLL; /* upper bytes: vendor minutes/ms */
        if (id == 194 && raw >= 0 && isnan(h->temp_c))
            h->temp_c = (float)(raw & 0xff); /* lowest byte: current, others min/max */
    }
    if (media >= 0)
        h->media_errors = media;
    if (h->life_used_pct < 0)
        for (size_t k = 0; k < ARRAY_LEN(ATA_LIFE_IDS); k++)
            if (life_val[k] >= 0 && life_val[k] <= 100) {
                h->life_used_pct = (int)(100 - life_val[k]);
                break;
            }
}

static void parse_nvme(const json_t *log, struct storage_health *h, int64_t *crit)
{
    int64_t v;
    if ((v = j_int(log, "percentage_used")) >= 0)
        h->life_used_pct = clamp_pct(v);
    if ((v = j_int(log, "media_errors")) >= 0)
        h->media_errors = v;
    if ((v = j_int(log, "power_on_hours")) >= 0 && h->power_on_hours < 0)
        h->power_on_hours = v;
    if ((v = j_int(log, "temperature")) >= 0 && v < 1000 && isnan(h->temp_c))
        h->temp_c = (float)v;
    *crit = j_int(log, "critical_warning");
}

static void derive_status(struct storage_health *h, int64_t nvme_crit, bool failed_now)
{
    /* NVMe critical warning bits: 0x01 spare below threshold, 0x02 temperature, 0x04
     * reliability degraded, 0x08 read-only, 0x10 volatile backup failed. Only the
     * temperature bit is transient. */
    if (h->smart_passed == 0 || failed_now || (nvme_crit > 0 && (nvme_crit & ~0x02)))
        h->status = STORAGE_FAILING;
    else if (nvme_crit > 0 || h->life_used_pct >= 90 || h->media_errors > 0)
        h->status = STORAGE_WARN;
    else if (h->smart_passed == 1 || h->life_used_pct >= 0 || h->media_errors == 0)
        h->status = STORAGE_OK;
    else
        h->status = STORAGE_UNKNOWN;
}

int smart_parse_json(const char *json, size_t len, struct storage_health *out, char *err,
                     size_t errlen)
{
    storage_health_init(out);
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "smartctl output: line %d column %d: %s", je.line, je.column,
                 je.text);
        return -1;
    }
    int rc = -1;
    json_t *sc = json_object_get(root, "smartctl");
    if (!json_is_object(root) || !json_is_object(sc)) {
        snprintf(err, errlen, "smartctl output: no \"smartctl\" object (not smartctl -j)");
        goto out;
    }
    json_t *dev = json_object_get(root, "device");
    json_t *name = json_object_get(dev, "name");
    if (json_is_string(name)) {
        const char *n = json_string_value(name);
        if (strncmp(n, "/dev/", 5) == 0)
            n += 5;
        str_copy(out->dev, n, sizeof out->dev);
    }
    json_t *proto = json_object_get(dev, "protocol");
    if (json_is_string(proto)) {
        const char *p = json_string_value(proto);
        str_copy(out->kind,
                 strcmp(p, "NVMe") == 0   ? "nvme"
                 : strcmp(p, "ATA") == 0  ? "ata"
                 : strcmp(p, "SCSI") == 0 ? "scsi"
                                          : "",
                 sizeof out->kind);
    }
    json_t *ss = json_object_get(root, "smart_status");
    json_t *passed = json_object_get(ss, "passed");
    if (json_is_boolean(passed))
        out->smart_passed = json_is_true(passed) ? 1 : 0;
    int64_t v;
    json_t *temp = json_object_get(root, "temperature");
    if ((v = j_int(temp, "current")) >= 0 && v < 1000)
        out->temp_c = (float)v;
    if ((v = j_int(json_object_get(root, "power_on_time"), "hours")) >= 0)
        out->power_on_hours = v;
    /* smartctl 7.4+ reports the endurance of NVMe and ATA devices in one place */
    if ((v = j_int(json_object_get(root, "endurance_used"), "current_percent")) >= 0)
        out->life_used_pct = clamp_pct(v);

    int64_t crit = -1;
    bool failed_now = false;
    json_t *nvme = json_object_get(root, "nvme_smart_health_information_log");
    if (json_is_object(nvme))
        parse_nvme(nvme, out, &crit);
    json_t *ata = json_object_get(root, "ata_smart_attributes");
    if (json_is_object(ata))
        parse_ata(ata, out, &failed_now);

    bool any = out->smart_passed >= 0 || json_is_object(nvme) || json_is_object(ata);
    /* exit status bit 1: the device could not be opened; bit 0: bad command line */
    int64_t xs = j_int(sc, "exit_status");
    if (!any) {
        const char *msg = "no SMART data in the output";
        json_t *msgs = json_object_get(sc, "messages");
        json_t *m0 =
            json_is_array(msgs) ? json_object_get(json_array_get(msgs, 0), "string") : NULL;
        if (json_is_string(m0))
            msg = json_string_value(m0);
        snprintf(err, errlen, "smartctl %s: exit status %lld: %s", out->dev[0] ? out->dev : "?",
                 (long long)xs, msg);
        goto out;
    }
    derive_status(out, crit, failed_now);
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* ---- eMMC sysfs ---------------------------------------------------------------------------- */

/* The first `max` hex numbers ("0x01 0x02") of a small sysfs file. Returns how many. */
static int read_hex_file(const char *path, unsigned *vals, int max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[64];
    int n = 0;
    if (fgets(line, sizeof line, f)) {
        char *p = line;
        while (n < max) {
            char *end;
            errno = 0;
            unsigned long v = strtoul(p, &end, 16);
            if (end == p || errno || v > 0xff)
                break;
            vals[n++] = (unsigned)v;
            p = end;
        }
    }
    fclose(f);
    return n;
}

int storage_read_emmc(const char *block_dir, struct storage_health *out, char *err, size_t errlen)
{
    storage_health_init(out);
    const char *base = strrchr(block_dir, '/');
    str_copy(out->dev, base ? base + 1 : block_dir, sizeof out->dev);
    str_copy(out->kind, "emmc", sizeof out->kind);
    char p[512];
    unsigned life[2] = {0, 0}, eol[1] = {0};
    snprintf(p, sizeof p, "%s/device/life_time", block_dir);
    int nl = read_hex_file(p, life, 2);
    snprintf(p, sizeof p, "%s/device/pre_eol_info", block_dir);
    int ne = read_hex_file(p, eol, 1);
    if (nl == 0 && ne == 0) {
        snprintf(err, errlen, "%s: no device/life_time or device/pre_eol_info (not eMMC 5.0+?)",
                 block_dir);
        return -1;
    }
    /* JEDEC DEVICE_LIFE_TIME_EST_TYP_A/B: 0x01 = 0-10 % used ... 0x0A = 90-100 %, 0x0B =
     * exceeded, 0x00 = not defined. The worse of the two memory types counts; the band's lower
     * bound is reported so a new part reads 0 % used. */
    int used = -1;
    for (int i = 0; i < nl; i++) {
        int u = life[i] == 0 ? -1 : life[i] >= 0x0B ? 100 : (int)(life[i] - 1) * 10;
        if (u > used)
            used = u;
    }
    out->life_used_pct = used;
    if ((ne && eol[0] == 0x03) || used >= 100)
        out->status = STORAGE_FAILING;
    else if ((ne && eol[0] == 0x02) || used >= 90)
        out->status = STORAGE_WARN;
    else if (used >= 0 || (ne && eol[0] == 0x01))
        out->status = STORAGE_OK;
    return 0;
}

/* ---- which disk ---------------------------------------------------------------------------- */

/* Is mount point m a path prefix of path (component-wise)? */
static bool mount_covers(const char *m, const char *path)
{
    size_t n = strlen(m);
    if (strcmp(m, "/") == 0)
        return path[0] == '/';
    return strncmp(m, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int storage_find_disk(const char *mountinfo, const char *sys_root, const char *path, char *dev,
                      size_t devlen, char *err, size_t errlen)
{
    FILE *f = fopen(mountinfo, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", mountinfo, strerror(errno));
        return -1;
    }
    char line[1024], best_mp[512] = "", best_fs[64] = "";
    unsigned best_maj = 0, best_min = 0;
    size_t best_len = 0;
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        /* id parent maj:min root mountpoint options [optional...] - fstype source superopts */
        unsigned maj, min;
        char mp[512];
        if (sscanf(line, "%*u %*u %u:%u %*s %511s", &maj, &min, mp) != 3)
            continue;
        const char *sep = strstr(line, " - ");
        char fs[64] = "";
        if (sep && sscanf(sep + 3, "%63s", fs) != 1)
            fs[0] = '\0';
        if (!mount_covers(mp, path))
            continue;
        size_t l = strlen(mp);
        /* the longest covering mount wins; a later equal one is mounted on top */
        if (!found || l >= best_len) {
            found = true;
            best_len = l;
            best_maj = maj;
            best_min = min;
            str_copy(best_mp, mp, sizeof best_mp);
            str_copy(best_fs, fs, sizeof best_fs);
        }
    }
    fclose(f);
    if (!found) {
        snprintf(err, errlen, "%s: no mount covers %s", mountinfo, path);
        return -1;
    }
    if (best_maj == 0) {
        snprintf(err, errlen, "%s is on %s %s (no block device)", path, best_fs, best_mp);
        return -1;
    }
    char link[512], real[PATH_MAX];
    snprintf(link, sizeof link, "%s/dev/block/%u:%u", sys_root, best_maj, best_min);
    if (!realpath(link, real)) {
        snprintf(err, errlen, "%s: %s", link, strerror(errno));
        return -1;
    }
    /* a partition's directory sits inside its disk's and has a "partition" file */
    char part[PATH_MAX + 16];
    snprintf(part, sizeof part, "%s/partition", real);
    if (access(part, F_OK) == 0) {
        char *slash = strrchr(real, '/');
        if (slash && slash != real)
            *slash = '\0';
    }
    const char *base = strrchr(real, '/');
    base = base ? base + 1 : real;
    if (!base[0] || strlen(base) >= devlen) {
        snprintf(err, errlen, "%s: unusable device name", real);
        return -1;
    }
    str_copy(dev, base, devlen);
    return 0;
}

/* ---- running smartctl ---------------------------------------------------------------------- */

static int run_capture(char *const argv[], unsigned timeout_ms, size_t max_out,
                       volatile const bool *stop, char **out, size_t *out_len, char *err,
                       size_t errlen)
{
    *out = NULL;
    *out_len = 0;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "%s: pipe: %s", argv[0], strerror(errno));
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int se = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (se != 0) {
        close(fds[0]);
        snprintf(err, errlen, "%s: cannot start: %s", argv[0], strerror(se));
        return -1;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    const char *fail = NULL;
    uint64_t deadline = mono_ms() + timeout_ms;
    while (buf && !fail) {
        if (stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE)) {
            fail = "stopped";
            break;
        }
        uint64_t now = mono_ms();
        if (now >= deadline) {
            fail = "timed out";
            break;
        }
        uint64_t left = deadline - now;
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int pr = poll(&pfd, 1, left > 100 ? 100 : (int)left);
        if (pr < 0 && errno != EINTR) {
            fail = "poll failed";
            break;
        }
        if (pr <= 0)
            continue;
        if (len + 1 >= cap) {
            if (cap >= max_out + 1) {
                fail = "output too long";
                break;
            }
            size_t ncap = cap * 2 > max_out + 1 ? max_out + 1 : cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                fail = "out of memory";
                break;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fds[0], buf + len, cap - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break; /* EOF (or error): the child is done writing */
        len += (size_t)r;
    }
    close(fds[0]);
    if (!buf && !fail)
        fail = "out of memory";
    int status = 0;
    if (fail) {
        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        free(buf);
        snprintf(err, errlen, "%s: %s (after %u ms limit)", argv[0], fail, timeout_ms);
        return -1;
    }
    /* stdout closed: the child exits promptly; still bound the wait */
    pid_t w;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && mono_ms() < deadline)
        sleep_ms_unless(NULL, 10);
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        free(buf);
        snprintf(err, errlen, "%s: did not exit within %u ms", argv[0], timeout_ms);
        return -1;
    }
    if (!WIFEXITED(status)) {
        free(buf);
        snprintf(err, errlen, "%s: killed by signal %d", argv[0],
                 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        return -1;
    }
    if (WEXITSTATUS(status) == 127 && len == 0) {
        /* exec failed in the child: where spawn cannot report it (e.g. under qemu-user, which
         * turns vfork into fork) this is how it shows; a shell's "not found" is the same */
        free(buf);
        snprintf(err, errlen, "%s: cannot start: exit status 127 (not found?)", argv[0]);
        return -1;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return WEXITSTATUS(status);
}

int storage_run_capture(char *const argv[], unsigned timeout_ms, size_t max_out, char **out,
                        size_t *out_len, char *err, size_t errlen)
{
    return run_capture(argv, timeout_ms, max_out, NULL, out, out_len, err, errlen);
}

/* ---- monitor ------------------------------------------------------------------------------- */

struct storage_monitor {
    struct storage_monitor_config cfg;
    pthread_t thread;
    bool started;
    bool stop;
    pthread_mutex_t mu;
    struct storage_health latest; /* under mu */
    /* thread-owned */
    char dev[64]; /* resolved kernel name or /dev path, "" unresolved */
    char last_err[256];
};

/* Log a failure once per distinct message, so a missing smartctl does not fill the log every
 * ten minutes, yet a new problem is still seen. */
static void note_error(struct storage_monitor *m, const char *msg)
{
    if (strcmp(msg, m->last_err) != 0) {
        LOG_W("storage", "%s", msg);
        str_copy(m->last_err, msg, sizeof m->last_err);
    }
}

static const char *kernel_name(const char *dev)
{
    return strncmp(dev, "/dev/", 5) == 0 ? dev + 5 : dev;
}

/* One reading of the configured disk into h (unknown fields stay unknown). */
static void read_once(struct storage_monitor *m, struct storage_health *h)
{
    char err[256] = "";
    if (!m->dev[0]) {
        char d[32];
        if (storage_find_disk(m->cfg.mountinfo, m->cfg.sys_root, m->cfg.data_path, d, sizeof d, err,
                              sizeof err) != 0) {
            note_error(m, err);
            return;
        }
        str_copy(m->dev, d, sizeof m->dev);
        LOG_I("storage", "health of %s (holds %s)", d, m->cfg.data_path);
    }
    const char *name = kernel_name(m->dev);
    if (strncmp(name, "mmcblk", 6) == 0 && !strchr(name, '/')) {
        char dir[256];
        snprintf(dir, sizeof dir, "%s/block/%s", m->cfg.sys_root, name);
        if (storage_read_emmc(dir, h, err, sizeof err) != 0)
            note_error(m, err);
        return;
    }
    char path[80];
    snprintf(path, sizeof path, "%s%s", m->dev[0] == '/' ? "" : "/dev/", m->dev);
    char *argv[] = {m->cfg.smartctl, "-j", "-H", "-A", path, NULL};
    char *out = NULL;
    size_t len = 0;
    /* smartctl's exit status is a bit mask that is non-zero on healthy disks too (e.g. 64:
     * entries in the error log): the JSON says what it could read. */
    if (run_capture(argv, m->cfg.timeout_ms, SMART_OUT_MAX, &m->stop, &out, &len, err, sizeof err) <
        0) {
        if (!__atomic_load_n(&m->stop, __ATOMIC_ACQUIRE)) /* a stop is not a disk problem */
            note_error(m, err);
        return;
    }
    if (smart_parse_json(out, len, h, err, sizeof err) != 0)
        note_error(m, err);
    free(out);
}

static void refresh(struct storage_monitor *m)
{
    struct storage_health h;
    storage_health_init(&h);
    read_once(m, &h);
    if (!h.dev[0] && m->dev[0])
        str_copy(h.dev, kernel_name(m->dev), sizeof h.dev);
    h.t_ms = (int64_t)wall_ms();
    pthread_mutex_lock(&m->mu);
    m->latest = h;
    pthread_mutex_unlock(&m->mu);
}

static void *monitor_thread(void *arg)
{
    struct storage_monitor *m = arg;
    pthread_setname_np(pthread_self(), "storage");
    do
        refresh(m);
    while (!sleep_ms_unless(&m->stop, m->cfg.interval_s * 1000u));
    return NULL;
}

struct storage_monitor *storage_monitor_start(const struct storage_monitor_config *cfg, char *err,
                                              size_t errlen)
{
    struct storage_monitor *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "storage: out of memory");
        return NULL;
    }
    m->cfg = *cfg;
    if (!m->cfg.smartctl[0])
        str_copy(m->cfg.smartctl, "smartctl", sizeof m->cfg.smartctl);
    if (!m->cfg.sys_root[0])
        str_copy(m->cfg.sys_root, "/sys", sizeof m->cfg.sys_root);
    if (!m->cfg.mountinfo[0])
        str_copy(m->cfg.mountinfo, "/proc/self/mountinfo", sizeof m->cfg.mountinfo);
    if (!m->cfg.data_path[0])
        str_copy(m->cfg.data_path, "/", sizeof m->cfg.data_path);
    if (!m->cfg.interval_s)
        m->cfg.interval_s = 600;
    if (!m->cfg.timeout_ms)
        m->cfg.timeout_ms = 15000;
    if (m->cfg.device[0] && strcmp(m->cfg.device, "auto") != 0)
        str_copy(m->dev, m->cfg.device, sizeof m->dev);
    storage_health_init(&m->latest);
    pthread_mutex_init(&m->mu, NULL);
    if (strcmp(m->cfg.device, "none") == 0)
        return m; /* off: always unknown, no thread */
    if (pthread_create(&m->thread, NULL, monitor_thread, m) != 0) {
        pthread_mutex_destroy(&m->mu);
        free(m);
        snprintf(err, errlen, "storage: cannot start thread");
        return NULL;
    }
    m->started = true;
    return m;
}

void storage_monitor_get(struct storage_monitor *m, struct storage_health *out)
{
    if (!m) {
        storage_health_init(out);
        return;
    }
    pthread_mutex_lock(&m->mu);
    *out = m->latest;
    pthread_mutex_unlock(&m->mu);
}

void storage_monitor_stop(struct storage_monitor *m)
{
    if (!m)
        return;
    if (m->started) {
        __atomic_store_n(&m->stop, true, __ATOMIC_RELEASE);
        pthread_join(m->thread, NULL);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}
