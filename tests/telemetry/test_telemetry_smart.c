/* Storage health (telemetry/smart.h): the smartctl -j parser on NVMe, SATA, failing and
 * unreadable fixtures, the eMMC sysfs reader and the root-disk lookup on a fixture sysfs tree,
 * and the bounded child runner (timeout, output cap, exit status). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "telemetry/smart.h"
#include "testlib.h"

#define DATA CORRIDOR_SOURCE_DIR "/tests/telemetry/data"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static int parse_file(const char *name, struct storage_health *h, char *err, size_t errlen)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", DATA, name);
    size_t len = 0;
    char *txt = slurp(path, &len);
    if (!txt)
        return -2;
    int rc = smart_parse_json(txt, len, h, err, errlen);
    free(txt);
    return rc;
}

static void test_nvme(void)
{
    struct storage_health h;
    char err[256] = "";
    CHECK_INT(parse_file("smartctl_nvme.json", &h, err, sizeof err), 0);
    CHECK_STR(h.dev, "nvme0n1");
    CHECK_STR(h.kind, "nvme");
    CHECK_INT(h.smart_passed, 1);
    CHECK_INT(h.life_used_pct, 7);
    CHECK_INT(storage_life_left_pct(&h), 93);
    CHECK_INT(h.power_on_hours, 11873);
    CHECK_NEAR(h.temp_c, 47.0, 1e-6);
    CHECK_INT(h.media_errors, 0);
    CHECK_INT(h.status, STORAGE_OK);
    CHECK_STR(storage_status_name(h.status), "ok");
}

static void test_sata(void)
{
    struct storage_health h;
    char err[256] = "";
    CHECK_INT(parse_file("smartctl_sata.json", &h, err, sizeof err), 0);
    CHECK_STR(h.dev, "sda");
    CHECK_STR(h.kind, "ata");
    CHECK_INT(h.smart_passed, 1);
    CHECK_INT(h.life_used_pct, 19); /* 177 Wear_Leveling_Count normalised 81 */
    CHECK_INT(h.power_on_hours, 21874);
    CHECK_NEAR(h.temp_c, 38.0, 1e-6);
    CHECK_INT(h.media_errors, 4); /* 3 reallocated + 0 uncorrectable + 1 pending */
    CHECK_INT(h.status, STORAGE_WARN);
}

static void test_failed(void)
{
    struct storage_health h;
    char err[256] = "";
    CHECK_INT(parse_file("smartctl_failed.json", &h, err, sizeof err), 0);
    CHECK_STR(h.dev, "sdb");
    CHECK_INT(h.smart_passed, 0);
    CHECK_INT(h.life_used_pct, 96); /* 231 SSD_Life_Left 4 */
    CHECK_INT(h.media_errors, 4011);
    CHECK_INT(h.power_on_hours, 34402);
    CHECK_NAN(h.temp_c);
    CHECK_INT(h.status, STORAGE_FAILING);
}

static void test_unreadable(void)
{
    struct storage_health h;
    char err[256] = "";
    CHECK_INT(parse_file("smartctl_noperm.json", &h, err, sizeof err), -1);
    CHECK_MSG(strstr(err, "Permission denied") != NULL, "err: %s", err);
    CHECK_MSG(strstr(err, "nvme0") != NULL, "err: %s", err);
    CHECK_INT(h.status, STORAGE_UNKNOWN);
    CHECK_INT(storage_life_left_pct(&h), -1);

    /* not JSON, JSON but not smartctl's, wrong types, truncated */
    static const char *const bad[] = {
        "",
        "garbage",
        "[1,2,3]",
        "{\"device\":{\"name\":\"/dev/sda\"}}",
        "{\"smartctl\":1,\"smart_status\":{\"passed\":true}}",
        "{\"smartctl\":{},\"smart_status\":{\"passed\":true",
        "{\"smartctl\":{\"exit_status\":0}}",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        CHECK_INT(smart_parse_json(bad[i], strlen(bad[i]), &h, err, sizeof err), -1);
        CHECK_MSG(err[0] != '\0', "no error text for case %zu", i);
        CHECK_INT(h.status, STORAGE_UNKNOWN);
    }
    /* wrong types and out-of-range values stay unknown instead of being believed */
    const char *odd = "{\"smartctl\":{\"exit_status\":0},\"device\":{\"name\":7},"
                      "\"smart_status\":{\"passed\":\"yes\"},"
                      "\"temperature\":{\"current\":-5},\"power_on_time\":{\"hours\":\"12\"},"
                      "\"nvme_smart_health_information_log\":{\"percentage_used\":-1,"
                      "\"media_errors\":1.5,\"critical_warning\":4},"
                      "\"ata_smart_attributes\":{\"table\":[1,{\"id\":231,\"value\":250},"
                      "{\"id\":5,\"raw\":{\"value\":-3}}]}}";
    CHECK_INT(smart_parse_json(odd, strlen(odd), &h, err, sizeof err), 0);
    CHECK_STR(h.dev, "");
    CHECK_INT(h.smart_passed, -1);
    CHECK_NAN(h.temp_c);
    CHECK_INT(h.power_on_hours, -1);
    CHECK_INT(h.life_used_pct, -1);
    CHECK_INT(h.media_errors, -1);
    CHECK_INT(h.status, STORAGE_FAILING); /* critical warning 0x04: reliability degraded */

    /* NVMe worn past its rating: percentage_used may exceed 100 */
    const char *worn = "{\"smartctl\":{\"exit_status\":0},\"smart_status\":{\"passed\":true},"
                       "\"nvme_smart_health_information_log\":{\"percentage_used\":104,"
                       "\"critical_warning\":0,\"media_errors\":0}}";
    CHECK_INT(smart_parse_json(worn, strlen(worn), &h, err, sizeof err), 0);
    CHECK_INT(h.life_used_pct, 104);
    CHECK_INT(storage_life_left_pct(&h), 0);
    CHECK_INT(h.status, STORAGE_WARN);
    /* temperature warning alone is a warning, not a failure */
    const char *hot = "{\"smartctl\":{\"exit_status\":0},\"smart_status\":{\"passed\":true},"
                      "\"nvme_smart_health_information_log\":{\"percentage_used\":1,"
                      "\"critical_warning\":2,\"temperature\":81}}";
    CHECK_INT(smart_parse_json(hot, strlen(hot), &h, err, sizeof err), 0);
    CHECK_INT(h.status, STORAGE_WARN);
    CHECK_NEAR(h.temp_c, 81.0, 1e-6);
    /* smartctl 7.4's endurance_used wins over nothing else reported */
    const char *endu = "{\"smartctl\":{\"exit_status\":0},\"smart_status\":{\"passed\":true},"
                       "\"endurance_used\":{\"current_percent\":12}}";
    CHECK_INT(smart_parse_json(endu, strlen(endu), &h, err, sizeof err), 0);
    CHECK_INT(h.life_used_pct, 12);
    CHECK_INT(h.status, STORAGE_OK);
    /* the parser never reads past len: a valid document cut short by len is an error */
    CHECK_INT(smart_parse_json(endu, 40, &h, err, sizeof err), -1);
}

static void test_emmc(void)
{
    struct storage_health h;
    char err[256] = "";
    CHECK_INT(storage_read_emmc(DATA "/sys_emmc/block/mmcblk0", &h, err, sizeof err), 0);
    CHECK_STR(h.dev, "mmcblk0");
    CHECK_STR(h.kind, "emmc");
    CHECK_INT(h.life_used_pct, 20); /* worse of 0x02 (10-20 %) and 0x03 (20-30 %) */
    CHECK_INT(h.status, STORAGE_OK);
    CHECK_INT(h.smart_passed, -1);

    CHECK_INT(storage_read_emmc(DATA "/sys_emmc/block/mmcblk1", &h, err, sizeof err), 0);
    CHECK_INT(h.life_used_pct, 100); /* 0x0b: exceeded */
    CHECK_INT(storage_life_left_pct(&h), 0);
    CHECK_INT(h.status, STORAGE_FAILING);

    CHECK_INT(storage_read_emmc(DATA "/sys_emmc/block/sda", &h, err, sizeof err), -1);
    CHECK_MSG(strstr(err, "life_time") != NULL, "err: %s", err);
    CHECK_INT(h.status, STORAGE_UNKNOWN);
}

static void test_find_disk(void)
{
    char dev[32] = "", err[256] = "";
    const char *mi = DATA "/mountinfo_emmc", *sys = DATA "/sys_emmc";
    CHECK_INT(storage_find_disk(mi, sys, "/", dev, sizeof dev, err, sizeof err), 0);
    CHECK_STR(dev, "mmcblk0"); /* partition mmcblk0p2 -> its disk */
    CHECK_INT(storage_find_disk(mi, sys, "/var/lib/corridor", dev, sizeof dev, err, sizeof err), 0);
    CHECK_STR(dev, "sda");
    CHECK_INT(
        storage_find_disk(mi, sys, "/var/lib/corridor/outbox", dev, sizeof dev, err, sizeof err),
        0);
    CHECK_STR(dev, "sda");
    /* a whole-disk filesystem (no partition table) is the disk itself */
    CHECK_INT(storage_find_disk(mi, sys, "/var/lib/corridor-raw", dev, sizeof dev, err, sizeof err),
              0);
    CHECK_STR(dev, "sda");
    /* "/var/lib/corridorX" is not under "/var/lib/corridor": the root disk */
    CHECK_INT(storage_find_disk(mi, sys, "/var/lib/corridorX", dev, sizeof dev, err, sizeof err),
              0);
    CHECK_STR(dev, "mmcblk0");
    CHECK_INT(storage_find_disk(mi, sys, "/run/x", dev, sizeof dev, err, sizeof err), -1);
    CHECK_MSG(strstr(err, "tmpfs") != NULL, "err: %s", err);
    CHECK_INT(storage_find_disk(DATA "/nonexistent", sys, "/", dev, sizeof dev, err, sizeof err),
              -1);
    /* the running system: either a disk name or a clear reason (containers: overlay) */
    err[0] = '\0';
    dev[0] = '\0';
    int rc =
        storage_find_disk("/proc/self/mountinfo", "/sys", "/", dev, sizeof dev, err, sizeof err);
    CHECK_MSG((rc == 0 && dev[0]) || (rc == -1 && err[0]), "rc %d dev '%s' err '%s'", rc, dev, err);
}

static void test_run_capture(void)
{
    char *out = NULL;
    size_t len = 0;
    char err[256] = "";
    char *ok[] = {"sh", "-c", "printf 'hello'; exit 4", NULL};
    CHECK_INT(storage_run_capture(ok, 5000, 1024, &out, &len, err, sizeof err), 4);
    CHECK_INT(len, 5);
    CHECK_STR(out ? out : "", "hello");
    free(out);

    uint64_t t0 = mono_ms();
    char *slow[] = {"sh", "-c", "sleep 10", NULL};
    CHECK_INT(storage_run_capture(slow, 300, 1024, &out, &len, err, sizeof err), -1);
    CHECK(out == NULL);
    CHECK_MSG(strstr(err, "timed out") != NULL, "err: %s", err);
    CHECK_MSG(mono_ms() - t0 < 3000, "timeout took %llu ms", (unsigned long long)(mono_ms() - t0));

    char *big[] = {"sh", "-c", "head -c 100000 /dev/zero", NULL};
    CHECK_INT(storage_run_capture(big, 5000, 4096, &out, &len, err, sizeof err), -1);
    CHECK_MSG(strstr(err, "too long") != NULL, "err: %s", err);

    char *missing[] = {"corridor-no-such-program", NULL};
    CHECK_INT(storage_run_capture(missing, 1000, 1024, &out, &len, err, sizeof err), -1);
    CHECK_MSG(strstr(err, "cannot start") != NULL, "err: %s", err);

    char *sig[] = {"sh", "-c", "kill -9 $$", NULL};
    CHECK_INT(storage_run_capture(sig, 5000, 1024, &out, &len, err, sizeof err), -1);
    CHECK_MSG(strstr(err, "signal 9") != NULL, "err: %s", err);
}

int main(void)
{
    test_nvme();
    test_sata();
    test_failed();
    test_unreadable();
    test_emmc();
    test_find_disk();
    test_run_capture();
    return test_summary();
}
