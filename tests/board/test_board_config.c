/* test_board_config: the "board" section of the appliance configuration: defaults, the new
 * keys' validation, and the profile checked at config time with its file and key in the
 * message (what `corridor check-config` prints). */
#include "firmware/config.h"
#include "testlib.h"

#include <unistd.h>

#define HEAD                                                                                       \
    "{\"vehicle_id\":\"v1\",\"data_dir\":\"/tmp/x\",\"links\":[{\"name\":\"a\",\"interface\":"     \
    "\"usb0\"}]"

static struct config cfg;

static int parse(const char *board, char *err, size_t n)
{
    char json[2048];
    snprintf(json, sizeof json, "%s%s%s}", HEAD, board[0] ? ",\"board\":" : "", board);
    return config_parse(json, strlen(json), "c.json", &cfg, err, n);
}

static void bad(const char *board, const char *want)
{
    char err[512] = "";
    CHECK_MSG(parse(board, err, sizeof err) == -1, "accepted: %s", board);
    CHECK_MSG(strstr(err, want) != NULL, "\"%s\" lacks \"%s\"", err, want);
}

int main(void)
{
    char err[512] = "";
    CHECK_MSG(parse("", err, sizeof err) == 0, "%s", err);
    CHECK_STR(cfg.board.power, "none");
    CHECK_STR(cfg.board.profile, "generic");
    CHECK_STR(cfg.board.watchdog_device, "/dev/watchdog");
    CHECK_INT(cfg.board.watchdog_timeout_s, 30);
    CHECK_STR(cfg.board.thermal_root, "/sys/class/thermal");
    CHECK(cfg.board.thermal_slow_poll);
    CHECK_STR(cfg.board.gpio_record, "");

    char prof[512];
    snprintf(prof, sizeof prof,
             "{\"power\":\"gpio\",\"profile\":\"%s/board/profiles/example-gw4.json\","
             "\"gpio_record\":\"-\",\"watchdog_device\":\"\",\"watchdog_timeout_s\":60,"
             "\"thermal_root\":\"/tmp/t\",\"thermal_slow_poll\":false}",
             CORRIDOR_SOURCE_DIR);
    CHECK_MSG(parse(prof, err, sizeof err) == 0, "%s", err);
    CHECK_STR(cfg.board.power, "gpio");
    CHECK(strstr(cfg.board.profile, "example-gw4.json") != NULL);
    CHECK_STR(cfg.board.gpio_record, "-");
    CHECK_STR(cfg.board.watchdog_device, "");
    CHECK_INT(cfg.board.watchdog_timeout_s, 60);
    CHECK_STR(cfg.board.thermal_root, "/tmp/t");
    CHECK(!cfg.board.thermal_slow_poll);

    bad("{\"power\":\"gpio9\"}",
        "c.json: board.power: \"gpio9\": must be \"none\", \"sim\" or \"gpio\"");
    bad("{\"profile\":\"\"}", "board.profile: must not be empty");
    bad("{\"profile\":\"no-such-board\"}", "board.profile: board profile /");
    bad("{\"profile\":\"/nonexistent/p.json\"}",
        "c.json: board.profile: board profile /nonexistent/p.json: No such file");
    bad("{\"watchdog_device\":\"dev/watchdog\"}",
        "board.watchdog_device: \"dev/watchdog\": must be an absolute path");
    bad("{\"watchdog_timeout_s\":2}", "board.watchdog_timeout_s: must be in 5..600, got 2");
    bad("{\"watchdog_timeout_s\":\"30\"}", "board.watchdog_timeout_s: must be an integer");
    bad("{\"thermal_root\":\"sys\"}", "board.thermal_root: \"sys\": must be an absolute path");
    bad("{\"thermal_slow_poll\":1}", "board.thermal_slow_poll: must be true or false");
    bad("{\"gpio_record\":\"rec.log\"}",
        "board.gpio_record: \"rec.log\": must be an absolute path");
    bad("{\"watchdog\":\"/dev/watchdog\"}", "board.watchdog: unknown key");

    /* A broken profile: the message names the config key, the profile file and its key. */
    char path[] = "/tmp/corridor-test-bcfg-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char *text = "{\"name\":\"p\",\"thermal\":[{\"zone\":\"thermal_zone0\",\"warn_c\":90,"
                       "\"crit_c\":80}]}";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    char b[512], want[512];
    snprintf(b, sizeof b, "{\"profile\":\"%s\"}", path);
    snprintf(want, sizeof want,
             "c.json: board.profile: %s: thermal[0].crit_c: 80 must be above warn_c (90)", path);
    bad(b, want);
    unlink(path);
    return test_summary();
}
