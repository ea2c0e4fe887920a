/* config: the appliance's one JSON configuration file (docs/configuration.md).
 *
 * config_load() parses and validates everything up front so that `corridor check-config` and
 * `corridor run` share one code path: every error names the JSON key path and what is wrong
 * ("links[1].modem.baud: must be one of 9600..921600, got 12345"). The result is a plain
 * immutable struct; subsystems receive copies of their part. */
#ifndef CORRIDOR_FIRMWARE_CONFIG_H
#define CORRIDOR_FIRMWARE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/common.h"

#define CFG_MAX_LINKS 16
#define CFG_MAX_HUBS  8
#define CFG_PATH_MAX  256

struct cfg_modem {
    bool present;
    char port[CFG_PATH_MAX];
    int baud;
    char apn[100];
    char balance_ussd[32];
    bool gnss;
    unsigned balance_period_s;
    unsigned cmd_timeout_ms;
};

struct cfg_link {
    char name[32];
    char interface[32];
    struct cfg_modem modem;
};

#define CFG_MAX_CLASSES 7 /* plus the default class: the scheduler has 8 */
/* A traffic class of the tunnel: matched by source subnet and/or DSCP, first match wins. */
struct cfg_class {
    char name[32];
    char src_subnet[24]; /* "" = any */
    int dscp;            /* -1 = any */
    char mode[12];       /* bond | failover | redundant */
    bool passenger;      /* yields first when the links shrink (default: operational) */
    unsigned rate_kbps;  /* 0 = no cap */
    unsigned failover[CFG_MAX_LINKS]; /* mode failover: link indexes, preferred first */
    unsigned nfailover;
};

struct cfg_tunnel {
    bool enabled;
    char hubs[CFG_MAX_HUBS][64];
    unsigned nhubs;
    char private_key_file[CFG_PATH_MAX];
    char hub_public_key[64];
    char tun[16];
    char address[48];
    unsigned path_mtu;  /* outer path MTU, 0 = 1500 */
    unsigned inner_mtu; /* TUN MTU, 0 = path_mtu - overhead; up to 1500 by fragments */
    bool lz4;
    unsigned hub_timeout_ms; /* move to the next hub after this silence, 0 = the tunnel's default */
    char hubs_url[CFG_PATH_MAX];        /* provisioning: the hub list from the data center */
    char hubs_token_file[CFG_PATH_MAX]; /* its bearer token (optional) */
    unsigned hubs_refresh_s;            /* how often to fetch it (default 6 h) */
    struct cfg_class classes[CFG_MAX_CLASSES];
    unsigned nclasses;
};

#define CFG_MAX_LAN 8
/* "routing": the daemon's policy routing and multi-WAN fallback (firmware/netcfg.c). */
struct cfg_routing {
    bool enabled;
    char lan[CFG_MAX_LAN][24]; /* passenger/operational subnets "192.168.10.0/24" */
    unsigned nlan;
    unsigned table_base;       /* link i: table_base + i; the tunnel: table_base + 16 */
    unsigned rule_pref;        /* our rules use rule_pref .. rule_pref + 4 */
    unsigned fwmark_base;      /* fallback connections on link i carry fwmark_base + i */
    bool lan_nat;              /* masquerade the LAN onto the tunnel address */
    bool fallback;             /* direct NAT out of the links when no hub answers */
    unsigned fallback_after_s; /* how long without a hub before that */
};

struct cfg_dashboard {
    bool enabled;
    char listen[64];
    char password_hash[128]; /* argon2id string from `corridor passwd`; "" = no admin actions */
    bool read_only_public;   /* read-only views without login (default true: the crew LAN) */
};

struct cfg_telemetry {
    bool enabled;
    unsigned batch_seconds;
    char upload_url[CFG_PATH_MAX];
    char token_file[CFG_PATH_MAX];
    unsigned quota_mb;
    double balance_alert;        /* alert when a SIM balance drops under this, 0 = off */
    unsigned upload_rate_kbps;   /* upload rate cap in kbit/s (default 512 = 64 KiB/s) */
    char storage_device[64];     /* storage health of: "auto" (disk of data_dir), "none", dev */
    unsigned storage_interval_s; /* smartctl at most this often (default 600) */
};

struct cfg_board {
    char power[16];        /* "none" (default) | "sim" | "gpio" */
    char sim_control[108]; /* power "sim": the modem simulator's control socket */
    unsigned power_off_ms;
    char profile[CFG_PATH_MAX];         /* board profile name or path, default "generic" */
    char gpio_record[CFG_PATH_MAX];     /* power "gpio": record line operations here instead */
    char watchdog_device[CFG_PATH_MAX]; /* default "/dev/watchdog", "" = no hardware watchdog */
    unsigned watchdog_timeout_s;        /* default 30 */
    char thermal_root[CFG_PATH_MAX];    /* default "/sys/class/thermal" */
    bool thermal_slow_poll; /* slow the modems' polling at a zone's crit_c, default true */
};

struct cfg_position {
    char gpsd_host[64]; /* "" = no gpsd: modem GNSS and dead reckoning only */
    char gpsd_port[8];
    unsigned dr_max_gap_s;
};

struct cfg_coverage {
    bool enabled;
    double cell_m;
    double half_life_trips;
    double horizon_s;
    unsigned max_mb;
    unsigned trip_idle_s;  /* standing this long ends a trip (depot, terminus) */
    double margin_s;       /* policy: lead time = drain time + this */
    double min_confidence; /* policy: predictions less sure than this are ignored */
};

struct cfg_log {
    enum log_level level;
    bool syslog;
};

struct config {
    char path[CFG_PATH_MAX]; /* where it was loaded from */
    char vehicle_id[64];
    char data_dir[CFG_PATH_MAX];
    struct cfg_link links[CFG_MAX_LINKS];
    unsigned nlinks;
    struct cfg_log log;
    struct cfg_tunnel tunnel;
    struct cfg_routing routing;
    struct cfg_dashboard dashboard;
    struct cfg_telemetry telemetry;
    struct cfg_board board;
    struct cfg_position position;
    struct cfg_coverage coverage;
    char control_socket[CFG_PATH_MAX];
};

/* Load and validate. On error returns -1 and writes "<file>: <key path>: <problem>" into err.
 * Unknown keys are errors too (a typo must not silently switch a feature off). */
int config_load(const char *path, struct config *out, char *err, size_t errlen);
/* Same from a string (tests, fuzzing); name is used in messages. */
int config_parse(const char *json, size_t len, const char *name, struct config *out, char *err,
                 size_t errlen);

#endif
