/* test_board_thermal: thermal zones from a sysfs fixture tree (levels, hysteresis, "*",
 * unreadable sensors), and the watchdog device API on a regular file (keepalives, magic
 * close, ENOTTY tolerated, missing device). */
#include "board/board.h"
#include "common/common.h"
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/corridor-test-thermal-XXXXXX";

static void put(const char *rel, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void zone_dir(const char *zone, const char *type, const char *temp)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, zone);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/type", zone);
    put(p, type);
    snprintf(p, sizeof p, "%s/temp", zone);
    put(p, temp);
}

static void set_temp(const char *zone, int milli)
{
    char p[64], t[32];
    snprintf(p, sizeof p, "%s/temp", zone);
    snprintf(t, sizeof t, "%d\n", milli);
    put(p, t);
}

static enum board_thermal_level poll1(struct board *b, struct board_thermal *r, size_t *n)
{
    return board_thermal_poll(b, r, BOARD_MAX_ZONES, n);
}

static void thermal(void)
{
    zone_dir("thermal_zone0", "cpu-thermal\n", "45000\n");
    zone_dir("thermal_zone1", "gpu-thermal\n", "40000\n");
    zone_dir("thermal_zone10", "modem\n", "30000\n");
    char prof[256];
    snprintf(prof, sizeof prof, "%s/p.json", dir);
    put("p.json", "{\"name\":\"t\",\"thermal\":["
                  "{\"zone\":\"thermal_zone1\",\"warn_c\":60,\"crit_c\":70},"
                  "{\"zone\":\"*\",\"warn_c\":80,\"crit_c\":90},"
                  "{\"zone\":\"thermal_zone7\",\"warn_c\":80,\"crit_c\":90}]}");
    struct board_config bc = {.power = BOARD_POWER_NONE};
    str_copy(bc.profile, prof, sizeof bc.profile);
    str_copy(bc.thermal_root, dir, sizeof bc.thermal_root);
    struct board *b;
    char err[512];
    CHECK_MSG(board_open(&bc, &b, err, sizeof err) == 0, "%s", err);
    if (!b)
        return;
    struct board_thermal r[BOARD_MAX_ZONES];
    size_t n = 0;
    CHECK_INT(poll1(b, r, &n), BOARD_THERMAL_OK);
    /* explicit zone1 first (its own limits), then "*" in natural order without zone1 again,
     * then the missing zone7 (unreadable: NAN, level kept). */
    CHECK_INT(n, 4);
    CHECK_STR(r[0].zone, "thermal_zone1");
    CHECK_NEAR(r[0].warn_c, 60, 1e-9);
    CHECK_STR(r[1].zone, "thermal_zone0");
    CHECK_STR(r[1].type, "cpu-thermal");
    CHECK_NEAR(r[1].temp_c, 45.0, 1e-9);
    CHECK_STR(r[2].zone, "thermal_zone10");
    CHECK_STR(r[3].zone, "thermal_zone7");
    CHECK_NAN(r[3].temp_c);
    CHECK(!r[0].changed && !r[1].changed);

    /* Rise: warn, then crit; "changed" only on the transition. */
    set_temp("thermal_zone0", 80000);
    CHECK_INT(poll1(b, r, &n), BOARD_THERMAL_WARN);
    CHECK_INT(r[1].level, BOARD_THERMAL_WARN);
    CHECK(r[1].changed);
    CHECK_INT(poll1(b, r, &n), BOARD_THERMAL_WARN);
    CHECK(!r[1].changed);
    set_temp("thermal_zone0", 91500);
    CHECK_INT(poll1(b, r, &n), BOARD_THERMAL_CRIT);
    CHECK(r[1].changed);
    CHECK_NEAR(r[1].temp_c, 91.5, 1e-9);
    /* Hysteresis: 88 (under crit 90 but within 3 degC) stays crit; 86.9 drops to warn. */
    set_temp("thermal_zone0", 88000);
    CHECK_INT(poll1(b, r, &n), BOARD_THERMAL_CRIT);
    CHECK(!r[1].changed);
    set_temp("thermal_zone0", 86900);
    CHECK_INT(poll1(b, r, &n), BOARD_THERMAL_WARN);
    CHECK(r[1].changed);
    set_temp("thermal_zone0", 77500);
    CHECK_INT(poll1(b, r, &n), BOARD_THERMAL_WARN);
    set_temp("thermal_zone0", 76000);
    CHECK_INT(poll1(b, r, &n), BOARD_THERMAL_OK);
    CHECK(r[1].changed);
    /* Straight from ok to crit. */
    set_temp("thermal_zone0", 95000);
    CHECK_INT(poll1(b, r, &n), BOARD_THERMAL_CRIT);
    /* A broken reading (garbage, out of range, empty) keeps the level. */
    put("thermal_zone0/temp", "garbage\n");
    CHECK_INT(poll1(b, r, &n), BOARD_THERMAL_CRIT);
    CHECK_NAN(r[1].temp_c);
    put("thermal_zone0/temp", "999999999\n");
    CHECK_INT(poll1(b, r, &n), BOARD_THERMAL_CRIT);
    put("thermal_zone0/temp", "");
    CHECK_INT(poll1(b, r, &n), BOARD_THERMAL_CRIT);
    set_temp("thermal_zone0", 20000);
    /* zone1 has its own, lower limits. */
    set_temp("thermal_zone1", 65000);
    CHECK_INT(poll1(b, r, &n), BOARD_THERMAL_WARN);
    CHECK_INT(r[0].level, BOARD_THERMAL_WARN);
    CHECK_INT(r[1].level, BOARD_THERMAL_OK);
    /* Fewer slots than zones: the worst level still counts every zone. */
    set_temp("thermal_zone10", 99000);
    CHECK_INT(board_thermal_poll(b, r, 1, &n), BOARD_THERMAL_CRIT);
    CHECK_INT(n, 1);
    CHECK_STR(board_thermal_level_name(BOARD_THERMAL_CRIT), "crit");
    board_close(b);

    /* Nothing at the root: the generic profile watches nothing and says ok. */
    str_copy(bc.profile, "generic", sizeof bc.profile);
    str_copy(bc.thermal_root, "/nonexistent", sizeof bc.thermal_root);
    CHECK(board_open(&bc, &b, err, sizeof err) == 0);
    CHECK_INT(board_thermal_poll(b, r, BOARD_MAX_ZONES, &n), BOARD_THERMAL_OK);
    CHECK_INT(n, 0);
    board_close(b);
}

static size_t slurp(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t len = fread(buf, 1, n - 1, f);
    buf[len] = '\0';
    fclose(f);
    return len;
}

static void watchdog_file(void)
{
    char path[256], err[512], buf[64];
    snprintf(path, sizeof path, "%s/watchdog", dir);
    put("watchdog", "");
    struct board_wdt *w;
    /* A regular file answers WDIOC_SETTIMEOUT with ENOTTY: accepted, timeout unknown. */
    CHECK_MSG(board_wdt_open(path, 30, &w, err, sizeof err) == 0, "%s", err);
    CHECK_INT(board_wdt_timeout_s(w), 0);
    for (int i = 0; i < 3; i++)
        CHECK(board_wdt_kick(w, err, sizeof err) == 0);
    board_wdt_close(w, true);
    CHECK_INT(slurp(path, buf, sizeof buf), 4);
    CHECK_STR(buf, "111V");
    /* Without the magic byte (a hung process exiting). */
    put("watchdog", "");
    CHECK(board_wdt_open(path, 0, &w, err, sizeof err) == 0);
    CHECK(board_wdt_kick(w, err, sizeof err) == 0);
    board_wdt_close(w, false);
    slurp(path, buf, sizeof buf);
    CHECK_STR(buf, "1");
    CHECK(strchr(buf, 'V') == NULL);
    board_wdt_close(NULL, true); /* no watchdog: nothing */

    /* A FIFO without a reader fails at once (ENXIO) instead of blocking the start; with a
     * reader it takes keepalives and the magic byte like a device. */
    snprintf(path, sizeof path, "%s/wdfifo", dir);
    CHECK(mkfifo(path, 0600) == 0);
    uint64_t t0 = mono_ms();
    CHECK(board_wdt_open(path, 30, &w, err, sizeof err) == -1);
    CHECK_INT(errno, ENXIO);
    CHECK(mono_ms() - t0 < 1000);
    int rfd = open(path, O_RDONLY | O_NONBLOCK);
    CHECK(rfd >= 0);
    CHECK_MSG(board_wdt_open(path, 30, &w, err, sizeof err) == 0, "%s", err);
    CHECK(board_wdt_kick(w, err, sizeof err) == 0);
    CHECK(board_wdt_kick(w, err, sizeof err) == 0);
    board_wdt_close(w, true);
    ssize_t got = read(rfd, buf, sizeof buf - 1);
    CHECK_INT(got, 3);
    buf[got > 0 ? got : 0] = '\0';
    CHECK_STR(buf, "11V");
    close(rfd);
    unlink(path);

    CHECK(board_wdt_open("/nonexistent/watchdog", 30, &w, err, sizeof err) == -1);
    CHECK_INT(errno, ENOENT);
    CHECK(w == NULL);
    CHECK_MSG(strstr(err, "watchdog /nonexistent/watchdog: No such file") != NULL, "%s", err);
    unlink(path);
    /* Outside systemd the notifications are no-ops and the watchdog is off. */
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    board_sd_ready("test");
    board_sd_watchdog();
    board_sd_stopping();
    CHECK_INT(board_sd_watchdog_ms(), 0);
    char v[32];
    snprintf(v, sizeof v, "%d", (int)getpid());
    setenv("WATCHDOG_PID", v, 1);
    setenv("WATCHDOG_USEC", "30000000", 1);
    CHECK_INT(board_sd_watchdog_ms(), 30000);
    setenv("WATCHDOG_PID", "1", 1); /* for another process */
    CHECK_INT(board_sd_watchdog_ms(), 0);
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL);
    thermal();
    watchdog_file();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return test_summary();
}
