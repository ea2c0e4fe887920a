/* smart: storage (SSD / eMMC) health for the 10 s device-health record.
 *
 * Where the health comes from:
 *   eMMC (mmcblk*): the kernel reports it itself in /sys/block/<dev>/device/life_time (two
 *     JEDEC estimates "0xAA 0xBB" of life used, 0x01 = 0-10 % ... 0x0A = 90-100 %, 0x0B =
 *     exceeded) and pre_eol_info (0x01 normal, 0x02 warning: 80 % of the reserved blocks
 *     consumed, 0x03 urgent). Cheap: read on every refresh.
 *   NVMe / SATA: `smartctl -j -H -A /dev/<dev>` (smartmontools); its JSON is parsed here. A
 *     smartctl run can take seconds on a busy or sick disk, so it runs on the storage monitor's
 *     own thread, at most every interval_s (default 600 s), with a timeout, never on the
 *     recorder's 1 Hz loop or a data-plane thread.
 * Which device: configured ("nvme0n1", "/dev/sda", "mmcblk0") or "auto": the disk holding the
 * root filesystem (from /proc/self/mountinfo and /sys/class/block/<part>/.. ).
 *
 * The monitor thread keeps the latest result behind a mutex; storage_monitor_get() copies it. */
#ifndef CORRIDOR_TELEMETRY_SMART_H
#define CORRIDOR_TELEMETRY_SMART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum storage_status {
    STORAGE_UNKNOWN = 0, /* nothing reported (no device, smartctl missing or unreadable) */
    STORAGE_OK = 1,
    STORAGE_WARN = 2,    /* worn (>= 90 % life used, eMMC pre-EOL warning) or media errors */
    STORAGE_FAILING = 3, /* SMART says failed, NVMe critical warning, eMMC pre-EOL urgent */
};

struct storage_health {
    char dev[32]; /* block device, e.g. "nvme0n1", "sda", "mmcblk0"; "" unknown */
    char kind[8]; /* "nvme", "ata", "scsi", "emmc", "" */
    enum storage_status status;
    int smart_passed;       /* 1 passed, 0 failed, -1 not reported */
    int life_used_pct;      /* 0..255 (NVMe may exceed 100), -1 unknown */
    int64_t power_on_hours; /* -1 unknown */
    float temp_c;           /* NAN unknown */
    int64_t media_errors;   /* NVMe media errors / ATA reallocated+pending+uncorrectable, -1 */
    int64_t t_ms;           /* wall ms of the reading, 0 never */
};

/* A record with every field unknown. */
void storage_health_init(struct storage_health *h);
/* Remaining life 0..100 for the record's ssd_health_pct, -1 unknown. */
int storage_life_left_pct(const struct storage_health *h);
const char *storage_status_name(enum storage_status s);

/* Parse the output of `smartctl -j -H -A <dev>` (any smartctl >= 7.0). Fields smartctl did
 * not report stay unknown; status is derived from them (docs/telemetry.md "Storage health").
 * -1 with err set if the text is not a smartctl JSON object or smartctl could not read the
 * device at all; out is then initialised to unknown. Never reads beyond len. */
int smart_parse_json(const char *json, size_t len, struct storage_health *out, char *err,
                     size_t errlen);

/* Read an eMMC's health from its sysfs block directory (e.g. "/sys/block/mmcblk0"). -1 if the
 * directory has neither life_time nor pre_eol_info. */
int storage_read_emmc(const char *block_dir, struct storage_health *out, char *err, size_t errlen);

/* The whole disk (not the partition) holding `path`: looks the mount up in mountinfo (e.g.
 * "/proc/self/mountinfo") and climbs from sys_root"/class/block/<part>" to its disk. dev gets
 * the kernel name ("mmcblk0", "nvme0n1", "sda"). 0 or -1 (err: tmpfs/overlay root, no match). */
int storage_find_disk(const char *mountinfo, const char *sys_root, const char *path, char *dev,
                      size_t devlen, char *err, size_t errlen);

/* Run argv[0] (searched in PATH) with argv, collect at most max_out bytes of its stdout into a
 * malloc'd NUL-terminated *out (caller frees), kill it after timeout_ms. Returns the exit
 * status (>= 0), or -1 (err: cannot start, timed out, killed by a signal). */
int storage_run_capture(char *const argv[], unsigned timeout_ms, size_t max_out, char **out,
                        size_t *out_len, char *err, size_t errlen);

/* ---- monitor thread ------------------------------------------------------------------------ */
struct storage_monitor_config {
    char device[64];     /* "auto" or "" (= auto), "none" = off, "nvme0n1", "/dev/sda" ... */
    char data_path[256]; /* auto: the disk holding this path (default "/") */
    char smartctl[128];  /* program, default "smartctl" */
    char sys_root[128];  /* default "/sys" (tests point it at a fixture tree) */
    char mountinfo[128]; /* default "/proc/self/mountinfo" */
    unsigned interval_s; /* smartctl at most this often (default 600) */
    unsigned timeout_ms; /* one smartctl run (default 15000) */
};

struct storage_monitor;
/* Starts the thread; the first reading is taken right away on that thread. NULL + err only for
 * resource errors: an unknown device is logged once and reported as unknown. */
struct storage_monitor *storage_monitor_start(const struct storage_monitor_config *cfg, char *err,
                                              size_t errlen);
/* Latest reading (all unknown until the first one). Thread-safe, never blocks on I/O. */
void storage_monitor_get(struct storage_monitor *m, struct storage_health *out);
/* Stops the thread (a running smartctl is killed) and frees. NULL is fine. */
void storage_monitor_stop(struct storage_monitor *m);

#endif
