/* test_config_version: "config_version" (docs/configuration.md, "Format version"): absent and
 * 1 are accepted, a newer version is refused naming the file and the key before any other
 * complaint, nonsense values are refused; the packaged default config is valid. */
#include "firmware/config.h"
#include "testlib.h"

#include <stdio.h>

static struct config cfg;
static char err[512];

static int parse(const char *json)
{
    return config_parse(json, strlen(json), "/etc/corridor/corridor.json", &cfg, err, sizeof err);
}

#define BODY                                                                                       \
    "\"vehicle_id\":\"v1\",\"data_dir\":\"/tmp/"                                                   \
    "x\",\"links\":[{\"name\":\"a\",\"interface\":\"usb0\"}]"

int main(void)
{
    /* absent = version 1 */
    CHECK_INT(parse("{" BODY "}"), 0);
    CHECK_STR(cfg.vehicle_id, "v1");
    CHECK_INT(parse("{\"config_version\":1," BODY "}"), 0);
    CHECK_INT(cfg.nlinks, 1);

    /* newer: refused, naming file, key, both versions and what to do */
    CHECK_INT(parse("{\"config_version\":2," BODY "}"), -1);
    CHECK_MSG(strstr(err, "/etc/corridor/corridor.json: config_version: 2 is newer than this "
                          "corridor") == err,
              "err = %s", err);
    CHECK_MSG(strstr(err, "(up to 1)") != NULL, "err = %s", err);
    CHECK_MSG(strstr(err, "upgrade corridor") != NULL, "err = %s", err);

    /* A newer file also has keys this version does not know: the version message wins, since
     * "unknown key" would send the operator looking for a typo. */
    CHECK_INT(parse("{\"config_version\":3,\"future_section\":{}," BODY "}"), -1);
    CHECK_MSG(strstr(err, "config_version: 3 is newer") != NULL, "err = %s", err);
    CHECK_MSG(strstr(err, "future_section") == NULL, "err = %s", err);
    /* ...and wherever the key sits in the file */
    CHECK_INT(parse("{\"future_section\":{}," BODY ",\"config_version\":9}"), -1);
    CHECK_MSG(strstr(err, "config_version: 9 is newer") != NULL, "err = %s", err);

    /* nonsense */
    CHECK_INT(parse("{\"config_version\":0," BODY "}"), -1);
    CHECK_MSG(strstr(err, "config_version: must be 1 or higher, got 0") != NULL, "err = %s", err);
    CHECK_INT(parse("{\"config_version\":-5," BODY "}"), -1);
    CHECK_MSG(strstr(err, "got -5") != NULL, "err = %s", err);
    CHECK_INT(parse("{\"config_version\":\"1\"," BODY "}"), -1);
    CHECK_MSG(strstr(err, "config_version: must be an integer, got a string") != NULL, "err = %s",
              err);
    CHECK_INT(parse("{\"config_version\":1.5," BODY "}"), -1);
    CHECK_MSG(strstr(err, "must be an integer, got a number") != NULL, "err = %s", err);
    CHECK_INT(parse("{\"config_version\":99999999999999999," BODY "}"), -1);
    CHECK_MSG(strstr(err, "is newer") != NULL, "err = %s", err);

    /* Other validation still runs on a current-version file. */
    CHECK_INT(parse("{\"config_version\":1,\"vehicle_id\":\"v1\",\"links\":[]}"), -1);
    CHECK_MSG(strstr(err, "data_dir: missing") != NULL, "err = %s", err);

    /* The config the corridor package installs as /etc/corridor/corridor.json. */
    CHECK_INT(
        config_load(CORRIDOR_SOURCE_DIR "/packaging/etc/corridor.json", &cfg, err, sizeof err), 0);
    CHECK_MSG(err[0] == '\0', "packaged config: %s", err);
    CHECK_STR(cfg.data_dir, "/var/lib/corridor");
    CHECK_STR(cfg.control_socket, "/run/corridor/control.sock");
    CHECK(cfg.nlinks >= 1);
    CHECK(!cfg.tunnel.enabled);
    return test_summary();
}
