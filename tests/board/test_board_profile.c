/* test_board_profile: board profiles. The shipped profiles load; every kind of bad input is
 * refused with a message naming the profile (file) and the key path. */
#include "board/board.h"
#include "common/common.h"
#include "testlib.h"

#include <sys/stat.h>
#include <unistd.h>

static int parse(const char *json, char *err, size_t n, struct board_profile *p)
{
    return board_profile_parse(json, strlen(json), "t.json", p, err, n);
}

/* Each bad input must fail and its message must contain `want` (which includes the key path)
 * and start with the source name. */
static void bad(const char *json, const char *want)
{
    struct board_profile p;
    char err[512] = "";
    int rc = parse(json, err, sizeof err, &p);
    CHECK_MSG(rc == -1, "accepted: %s", json);
    CHECK_MSG(strncmp(err, "t.json: ", 8) == 0, "\"%s\" does not start with the source", err);
    CHECK_MSG(strstr(err, want) != NULL, "\"%s\" lacks \"%s\" (input %s)", err, want, json);
}

#define LINE(chip, off) "{\"chip\":\"" chip "\",\"line\":" #off "}"

static void shipped(void)
{
    char err[512] = "", path[512];
    struct board_profile p;
    snprintf(path, sizeof path, "%s/board/profiles/generic.json", CORRIDOR_SOURCE_DIR);
    CHECK_MSG(board_profile_load(path, NULL, &p, err, sizeof err) == 0, "%s", err);
    CHECK_STR(p.name, "generic");
    CHECK_INT(p.nslots, 0);
    CHECK_INT(p.nzones, 1);
    CHECK_STR(p.zones[0].zone, "*");
    CHECK_STR(p.source, path);

    snprintf(path, sizeof path, "%s/board/profiles/example-gw4.json", CORRIDOR_SOURCE_DIR);
    CHECK_MSG(board_profile_load(path, NULL, &p, err, sizeof err) == 0, "%s", err);
    CHECK_STR(p.name, "example-gw4");
    CHECK_INT(p.nslots, 4);
    CHECK_STR(p.slots[1].name, "slot2");
    CHECK_STR(p.slots[1].usb, "1-1.2");
    CHECK(p.slots[1].power.present && !p.slots[1].power.active_low);
    CHECK_STR(p.slots[1].power.chip, "gpiochip2");
    CHECK_INT(p.slots[1].power.offset, 12);
    CHECK(p.slots[1].reset.present && p.slots[1].reset.active_low);
    CHECK_INT(p.slots[1].reset.offset, 13);
    CHECK_INT(p.off_ms, 3000);
    CHECK_INT(p.reset_pulse_ms, 300);
    CHECK_INT(p.boot_wait_ms, 2000);
    CHECK_INT(p.nzones, 2);
    CHECK_NEAR(p.zones[1].crit_c, 85, 1e-9);
    CHECK_STR(p.storage, "mmcblk2");
    CHECK(p.led_status.present && p.led_link.present);

    /* By name from a directory. */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/board/profiles", CORRIDOR_SOURCE_DIR);
    CHECK_MSG(board_profile_load("example-gw4", dir, &p, err, sizeof err) == 0, "%s", err);
    CHECK_INT(p.nslots, 4);
    /* The built-in generic equals the shipped file's content. */
    CHECK(board_profile_load("generic", dir, &p, err, sizeof err) == 0);
    CHECK_STR(p.source, "built-in");
    CHECK_INT(p.nzones, 1);
    CHECK(board_profile_load("", NULL, &p, err, sizeof err) == 0);
    CHECK_STR(p.name, "generic");

    /* Slot lookup: by link first, else by a slot name that has no link. */
    const char *j = "{\"name\":\"x\",\"slots\":[{\"name\":\"slot1\",\"link\":\"mts\"},"
                    "{\"name\":\"beeline\"},{\"name\":\"slot3\",\"link\":\"slot1\"}]}";
    CHECK_MSG(parse(j, err, sizeof err, &p) == 0, "%s", err);
    CHECK(board_profile_slot(&p, "mts") == &p.slots[0]);
    CHECK(board_profile_slot(&p, "beeline") == &p.slots[1]);
    CHECK(board_profile_slot(&p, "slot1") == &p.slots[2]); /* the link wins over a name */
    CHECK(board_profile_slot(&p, "tele2") == NULL);

    /* Line by name, defaults. */
    j = "{\"name\":\"y\",\"slots\":[{\"name\":\"s\",\"power\":{\"chip\":\"pinctrl-bcm2711\","
        "\"line\":\"MODEM_PWR\",\"active_low\":true}}]}";
    CHECK_MSG(parse(j, err, sizeof err, &p) == 0, "%s", err);
    CHECK_INT(p.slots[0].power.offset, -1);
    CHECK_STR(p.slots[0].power.name, "MODEM_PWR");
    CHECK(p.slots[0].power.active_low);
    CHECK(!p.slots[0].reset.present);
    CHECK_INT(p.off_ms, 2000);
    CHECK_INT(p.reset_pulse_ms, 200);
    CHECK_INT(p.boot_wait_ms, 0);
}

static void bad_inputs(void)
{
    bad("", "line 1");
    bad("{\"name\":\"a\",}", "line 1 column");
    bad("[1]", "must be a JSON object, got an array");
    bad("{\"name\":\"a\",\"name\":\"b\"}", "duplicate");
    bad("{}", "name: missing (required)");
    bad("{\"name\":7}", "name: must be a string, got an integer");
    bad("{\"name\":\"a b\"}", "name: \"a b\": only letters");
    bad("{\"name\":\"a\",\"colour\":1}", "colour: unknown key");
    bad("{\"name\":\"a\",\"power_cycle\":[]}", "power_cycle: must be an object, got an array");
    bad("{\"name\":\"a\",\"power_cycle\":{\"off\":1}}", "power_cycle.off: unknown key");
    bad("{\"name\":\"a\",\"power_cycle\":{\"off_ms\":-1}}",
        "power_cycle.off_ms: must be in 0..60000");
    bad("{\"name\":\"a\",\"power_cycle\":{\"off_ms\":60001}}", "power_cycle.off_ms: must be in");
    bad("{\"name\":\"a\",\"power_cycle\":{\"off_ms\":50}}", "power_cycle.off_ms: must be at least");
    bad("{\"name\":\"a\",\"power_cycle\":{\"off_ms\":1.5}}",
        "power_cycle.off_ms: must be an integer");
    bad("{\"name\":\"a\",\"power_cycle\":{\"boot_wait_ms\":99999999999}}",
        "power_cycle.boot_wait_ms: must be in 0..60000");
    bad("{\"name\":\"a\",\"slots\":{}}", "slots: must be an array, got an object");
    bad("{\"name\":\"a\",\"slots\":[1]}", "slots[0]: must be an object, got an integer");
    bad("{\"name\":\"a\",\"slots\":[{}]}", "slots[0].name: missing (required)");
    bad("{\"name\":\"a\",\"slots\":[{\"name\":\"\"}]}", "slots[0].name: must not be empty");
    bad("{\"name\":\"a\",\"slots\":[{\"name\":\"s\",\"usb\":\"usb1\"}]}",
        "slots[0].usb: \"usb1\": must be a USB port path");
    bad("{\"name\":\"a\",\"slots\":[{\"name\":\"s\",\"usb\":\"1-\"}]}", "slots[0].usb");
    bad("{\"name\":\"a\",\"slots\":[{\"name\":\"s\",\"usb\":\"1-1..2\"}]}", "slots[0].usb");
    bad("{\"name\":\"a\",\"slots\":[{\"name\":\"s\",\"link\":\"../x\"}]}",
        "slots[0].link: \"../x\": only letters");
    bad("{\"name\":\"a\",\"slots\":[{\"name\":\"s\"},{\"name\":\"s\"}]}",
        "slots[1].name: \"s\" is also slots[0].name");
    bad("{\"name\":\"a\",\"slots\":[{\"name\":\"s\",\"link\":\"m\"},{\"name\":\"t\",\"link\":\"m\"}"
        "]}",
        "slots[1].link: \"m\" is also slots[0].link");
    bad("{\"name\":\"a\",\"slots\":[{\"name\":\"s\",\"power\":17}]}",
        "slots[0].power: must be an object");
    bad("{\"name\":\"a\",\"slots\":[{\"name\":\"s\",\"power\":{\"line\":1}}]}",
        "slots[0].power.chip: missing (required)");
    bad("{\"name\":\"a\",\"slots\":[{\"name\":\"s\",\"power\":{\"chip\":\"gpiochip0\"}}]}",
        "slots[0].power.line: missing");
    bad("{\"name\":\"a\",\"slots\":[{\"name\":\"s\",\"power\":{\"chip\":\"c\",\"line\":1024}}]}",
        "slots[0].power.line: offset must be in 0..1023, got 1024");
    bad("{\"name\":\"a\",\"slots\":[{\"name\":\"s\",\"power\":{\"chip\":\"c\",\"line\":-3}}]}",
        "slots[0].power.line: offset must be in 0..1023, got -3");
    bad("{\"name\":\"a\",\"slots\":[{\"name\":\"s\",\"power\":{\"chip\":\"c\",\"line\":true}}]}",
        "slots[0].power.line: must be an offset (integer) or a line name (string), got a boolean");
    bad("{\"name\":\"a\",\"slots\":[{\"name\":\"s\",\"reset\":{\"chip\":\"c\",\"line\":1,"
        "\"active_low\":\"yes\"}}]}",
        "slots[0].reset.active_low: must be true or false, got a string");
    bad("{\"name\":\"a\",\"slots\":[{\"name\":\"s\",\"reset\":{\"chip\":\"c\",\"line\":1,"
        "\"activelow\":true}}]}",
        "slots[0].reset.activelow: unknown key");
    bad("{\"name\":\"a\",\"slots\":[{\"name\":\"s\",\"power\":" LINE("c", 1) ",\"reset\":" LINE(
            "c", 1) "}]}",
        "slots[0].reset: same GPIO line as slots[0].power");
    bad("{\"name\":\"a\",\"slots\":[{\"name\":\"s\",\"power\":" LINE(
            "c", 1) "}],\"leds\":{\"link\":" LINE("c", 1) "}}",
        "leds.link: same GPIO line as slots[0].power");
    bad("{\"name\":\"a\",\"leds\":{\"power\":" LINE("c", 1) "}}", "leds.power: unknown key");
    bad("{\"name\":\"a\",\"leds\":[]}", "leds: must be an object");
    bad("{\"name\":\"a\",\"thermal\":{}}", "thermal: must be an array");
    bad("{\"name\":\"a\",\"thermal\":[{\"zone\":\"thermal_zone0\"}]}",
        "thermal[0].warn_c: missing (required)");
    bad("{\"name\":\"a\",\"thermal\":[{\"zone\":\"thermal_zone0\",\"warn_c\":90,\"crit_c\":80}]}",
        "thermal[0].crit_c: 80 must be above warn_c (90)");
    bad("{\"name\":\"a\",\"thermal\":[{\"zone\":\"thermal_zone0\",\"warn_c\":70,\"crit_c\":900}]}",
        "thermal[0].crit_c: must be in -40..150 degC, got 900");
    bad("{\"name\":\"a\",\"thermal\":[{\"zone\":\"thermal_zone0\",\"warn_c\":\"hot\",\"crit_c\":9}]"
        "}",
        "thermal[0].warn_c: must be a temperature");
    bad("{\"name\":\"a\",\"thermal\":[{\"zone\":\"../../etc\",\"warn_c\":70,\"crit_c\":80}]}",
        "thermal[0].zone: \"../../etc\"");
    bad("{\"name\":\"a\",\"thermal\":[{\"zone\":\"cpu\",\"warn_c\":70,\"crit_c\":80}]}",
        "thermal[0].zone: \"cpu\": must be \"thermal_zoneN\" or \"*\"");
    bad("{\"name\":\"a\",\"storage\":\"/dev/sda\"}", "storage: \"/dev/sda\": only letters");
    bad("{\"name\":\"a\",\"description\":\"a\\u0000b\"}", "is not allowed");

    /* Bounds: more slots / zones than the tables hold. */
    char big[8192];
    size_t off = 0;
    str_appendf(big, sizeof big, &off, "{\"name\":\"a\",\"slots\":[");
    for (int i = 0; i <= BOARD_MAX_SLOTS; i++)
        str_appendf(big, sizeof big, &off, "%s{\"name\":\"s%d\"}", i ? "," : "", i);
    str_appendf(big, sizeof big, &off, "]}");
    bad(big, "slots: at most 16 slots, got 17");
    off = 0;
    str_appendf(big, sizeof big, &off, "{\"name\":\"a\",\"thermal\":[");
    for (int i = 0; i <= BOARD_MAX_ZONES; i++)
        str_appendf(big, sizeof big, &off,
                    "%s{\"zone\":\"thermal_zone%d\",\"warn_c\":1,\"crit_c\":2}", i ? "," : "", i);
    str_appendf(big, sizeof big, &off, "]}");
    bad(big, "thermal: at most 8 zones, got 9");
}

static void file_errors(void)
{
    struct board_profile p;
    char err[512] = "";
    CHECK(board_profile_load("/nonexistent/board.json", NULL, &p, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "board profile /nonexistent/board.json: No such file") != NULL, "%s",
              err);
    CHECK(board_profile_load("nosuch", "/nonexistent", &p, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "/nonexistent/nosuch.json") != NULL, "%s", err);
    CHECK(board_profile_load("a b", NULL, &p, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "not a profile name") != NULL, "%s", err);

    char dir[] = "/tmp/corridor-test-profile-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    /* The error of a file names the file and the key. */
    snprintf(path, sizeof path, "%s/bad.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"name\":\"bad\",\"slots\":[{\"name\":\"s\",\"power\":{\"chip\":\"c\",\"line\":-1}}]}",
          f);
    fclose(f);
    CHECK(board_profile_load(path, NULL, &p, err, sizeof err) == -1);
    char want[256];
    snprintf(want, sizeof want, "%s: slots[0].power.line: offset must be in 0..1023", path);
    CHECK_MSG(strstr(err, want) != NULL, "\"%s\" lacks \"%s\"", err, want);
    CHECK(board_profile_load("bad", dir, &p, err, sizeof err) == -1);
    CHECK(strstr(err, want) != NULL);
    unlink(path);

    /* Oversized input is refused without being parsed. */
    snprintf(path, sizeof path, "%s/huge.json", dir);
    f = fopen(path, "w");
    for (int i = 0; i < 300 * 1024 / 16; i++)
        fputs("                ", f);
    fclose(f);
    CHECK(board_profile_load(path, NULL, &p, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "larger than") != NULL, "%s", err);
    unlink(path);
    /* A directory is not a profile. */
    CHECK(board_profile_load(dir, NULL, &p, err, sizeof err) == -1);
    CHECK(strstr(err, dir) != NULL);
    CHECK_MSG(strstr(err, "not a regular file") != NULL, "%s", err);
    /* Neither is a FIFO: refused at once instead of blocking on a writer. */
    snprintf(path, sizeof path, "%s/fifo.json", dir);
    CHECK(mkfifo(path, 0600) == 0);
    uint64_t t0 = mono_ms();
    CHECK(board_profile_load(path, NULL, &p, err, sizeof err) == -1);
    CHECK(mono_ms() - t0 < 1000);
    CHECK_MSG(strstr(err, "not a regular file") != NULL, "%s", err);
    unlink(path);
    CHECK(board_profile_load("/dev/zero", NULL, &p, err, sizeof err) == -1);
    rmdir(dir);
}

int main(void)
{
    shipped();
    bad_inputs();
    file_errors();
    return test_summary();
}
