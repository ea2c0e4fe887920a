/* The storage monitor thread (telemetry/smart.h): a smartctl stand-in script for an NVMe disk,
 * the eMMC sysfs path found automatically from a fixture mountinfo, "none", and a hung smartctl
 * that must neither publish garbage nor delay stop. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "telemetry/smart.h"
#include "testlib.h"

#define DATA CORRIDOR_SOURCE_DIR "/tests/telemetry/data"

/* Poll until the monitor published a reading (t_ms set) or timeout. */
static bool wait_reading(struct storage_monitor *m, struct storage_health *h, unsigned ms)
{
    uint64_t end = mono_ms() + ms;
    do {
        storage_monitor_get(m, h);
        if (h->t_ms)
            return true;
        sleep_ms_unless(NULL, 20);
    } while (mono_ms() < end);
    return false;
}

static void test_nvme_script(void)
{
    struct storage_monitor_config c = {.interval_s = 600, .timeout_ms = 5000};
    str_copy(c.device, "nvme0n1", sizeof c.device);
    str_copy(c.smartctl, DATA "/fake_smartctl.sh", sizeof c.smartctl);
    char err[256];
    struct storage_monitor *m = storage_monitor_start(&c, err, sizeof err);
    CHECK(m != NULL);
    struct storage_health h;
    CHECK(wait_reading(m, &h, 5000));
    CHECK_STR(h.dev, "nvme0n1");
    CHECK_INT(h.status, STORAGE_OK);
    CHECK_INT(storage_life_left_pct(&h), 93);
    CHECK_INT(h.power_on_hours, 11873);
    uint64_t t0 = mono_ms();
    storage_monitor_stop(m); /* sleeping its 600 s interval: stops at once */
    CHECK_MSG(mono_ms() - t0 < 1000, "stop took %llu ms", (unsigned long long)(mono_ms() - t0));
}

static void test_emmc_auto(void)
{
    struct storage_monitor_config c = {.interval_s = 1};
    str_copy(c.device, "auto", sizeof c.device);
    str_copy(c.sys_root, DATA "/sys_emmc", sizeof c.sys_root);
    str_copy(c.mountinfo, DATA "/mountinfo_emmc", sizeof c.mountinfo);
    str_copy(c.data_path, "/var/lib/other", sizeof c.data_path);
    str_copy(c.smartctl, "/bin/false", sizeof c.smartctl); /* must not be needed */
    char err[256];
    struct storage_monitor *m = storage_monitor_start(&c, err, sizeof err);
    CHECK(m != NULL);
    struct storage_health h;
    CHECK(wait_reading(m, &h, 5000));
    CHECK_STR(h.dev, "mmcblk0");
    CHECK_STR(h.kind, "emmc");
    CHECK_INT(h.life_used_pct, 20);
    CHECK_INT(h.status, STORAGE_OK);
    storage_monitor_stop(m);
}

static void test_none_and_hung(void)
{
    struct storage_monitor_config c = {0};
    str_copy(c.device, "none", sizeof c.device);
    char err[256];
    struct storage_monitor *m = storage_monitor_start(&c, err, sizeof err);
    CHECK(m != NULL);
    struct storage_health h;
    storage_monitor_get(m, &h);
    CHECK_INT(h.status, STORAGE_UNKNOWN);
    CHECK_INT(h.t_ms, 0);
    storage_monitor_stop(m);
    storage_monitor_get(NULL, &h);
    CHECK_INT(h.life_used_pct, -1);

    /* smartctl hangs for 30 s: the 400 ms timeout publishes "unknown", stop kills it */
    setenv("FAKE_SMARTCTL_DELAY", "30", 1);
    struct storage_monitor_config c2 = {.interval_s = 600, .timeout_ms = 400};
    str_copy(c2.device, "/dev/sda", sizeof c2.device);
    str_copy(c2.smartctl, DATA "/fake_smartctl.sh", sizeof c2.smartctl);
    m = storage_monitor_start(&c2, err, sizeof err);
    CHECK(m != NULL);
    CHECK(wait_reading(m, &h, 5000));
    CHECK_INT(h.status, STORAGE_UNKNOWN);
    CHECK_STR(h.dev, "sda");
    storage_monitor_stop(m);

    /* stop during a run: the child is killed, stop returns promptly */
    struct storage_monitor_config c3 = c2;
    c3.timeout_ms = 60000;
    m = storage_monitor_start(&c3, err, sizeof err);
    CHECK(m != NULL);
    sleep_ms_unless(NULL, 200);
    uint64_t t0 = mono_ms();
    storage_monitor_stop(m);
    CHECK_MSG(mono_ms() - t0 < 2000, "stop took %llu ms", (unsigned long long)(mono_ms() - t0));
    unsetenv("FAKE_SMARTCTL_DELAY");
}

int main(void)
{
    test_nvme_script();
    test_emmc_auto();
    test_none_and_hung();
    return test_summary();
}
