/* modem: SIMCom-class (and Quectel) cellular modems polled over their AT serial ports.
 *
 * The only public header of the modem subsystem. One thread per modem runs the state machine
 * detect -> init -> poll -> recover; it reports through callbacks with plain structs and never
 * blocks on anything but its own serial port. Nothing here knows about firmware/, agg/ or
 * telemetry/. */
#ifndef CORRIDOR_MODEM_H
#define CORRIDOR_MODEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum modem_net {
    MODEM_NET_NONE = 0,
    MODEM_NET_GSM,
    MODEM_NET_WCDMA,
    MODEM_NET_LTE,
    MODEM_NET_LTE_M,
    MODEM_NET_NB_IOT,
    MODEM_NET_NR5G_NSA,
    MODEM_NET_NR5G_SA,
};
/* "none","gsm","wcdma","lte","lte-m","nb-iot","nr5g-nsa","nr5g-sa" */
const char *modem_net_name(enum modem_net n);

enum modem_reg {
    MODEM_REG_UNKNOWN = 0,
    MODEM_REG_NOT_REGISTERED,
    MODEM_REG_HOME,
    MODEM_REG_ROAMING,
    MODEM_REG_SEARCHING,
    MODEM_REG_DENIED,
};
/* "unknown","not_registered","home","roaming","searching","denied" */
const char *modem_reg_name(enum modem_reg r);

enum modem_sim {
    MODEM_SIM_UNKNOWN = 0,
    MODEM_SIM_READY,
    MODEM_SIM_PIN,    /* SIM PIN / PIN2 required */
    MODEM_SIM_PUK,    /* SIM PUK / PUK2 required */
    MODEM_SIM_ABSENT, /* +CME ERROR: 10 / SIM not inserted */
    MODEM_SIM_ERROR,  /* SIM failure / busy / other */
};
/* "unknown","ready","pin","puk","absent","error" */
const char *modem_sim_name(enum modem_sim s);

enum modem_state {
    MODEM_ST_ABSENT = 0, /* port not present */
    MODEM_ST_DETECT,     /* port present, waiting for AT -> OK */
    MODEM_ST_INIT,       /* identity, echo off, URC setup, data session */
    MODEM_ST_POLL,       /* normal operation */
    MODEM_ST_RECOVER,    /* soft reset / power cycle in progress */
};
/* "absent","detect","init","poll","recover" */
const char *modem_state_name(enum modem_state s);

enum modem_family { MODEM_FAMILY_UNKNOWN = 0, MODEM_FAMILY_SIMCOM, MODEM_FAMILY_QUECTEL };

struct modem_identity {
    char manufacturer[64];
    char model[64];
    char revision[96];
    char imei[24];
    char iccid[24];
    char imsi[24];
};

/* Signal values; NAN when the modem does not report them for the current radio. */
struct modem_signal {
    int csq; /* 0..31, 99 = unknown, -1 = not polled */
    double rssi_dbm;
    double rsrp_dbm;
    double rsrq_db;
    double sinr_db;
    double ecio_db;  /* WCDMA */
    double rscp_dbm; /* WCDMA */
};

struct modem_gnss {
    bool valid; /* a CGPSINFO (or QGPSLOC) reply was parsed */
    bool fix;
    double lat, lon; /* decimal degrees, WGS84 */
    double alt_m;
    double speed_kmh;
    double course_deg; /* NAN when the modem leaves it empty */
    int64_t utc;       /* unix seconds, -1 if unknown */
    uint64_t mono_ms;  /* when it was read */
};

struct modem_balance {
    bool valid;        /* a USSD answer was received */
    bool amount_valid; /* an amount could be parsed out of the text */
    double amount;
    char raw[320]; /* decoded text, UTF-8 */
    uint64_t mono_ms;
};

/* One snapshot of everything known about one modem. Plain data, copied by value. */
struct modem_sample {
    char link[32];
    char port[256];
    uint64_t mono_ms; /* CLOCK_MONOTONIC ms at which this snapshot was taken */
    enum modem_state state;
    enum modem_family family;
    struct modem_identity id;
    enum modem_sim sim;
    enum modem_reg reg;
    char oper_name[64];
    char mcc[4];
    char mnc[4];
    enum modem_net net;
    char band[32];     /* e.g. "EUTRAN-BAND3" */
    long tac;          /* tracking/location area code, -1 unknown */
    long long cell_id; /* -1 unknown */
    long channel;      /* EARFCN/UARFCN/ARFCN, -1 unknown */
    long pci;          /* physical cell id / PSC, -1 unknown */
    struct modem_signal sig;
    struct modem_gnss gnss;
    struct modem_balance balance;
    char netif[32];    /* network interface matched through sysfs, "" if none */
    uint32_t timeouts; /* commands that timed out since start */
    uint32_t soft_resets;
    uint32_t power_cycles;
    uint32_t vanished; /* times the port disappeared */
};

/* Reset a sample to "nothing known" (NANs, -1s, empty strings). */
void modem_sample_init(struct modem_sample *s);

enum modem_event_kind {
    MODEM_EV_DETECTED,     /* port answered AT */
    MODEM_EV_READY,        /* init done, polling */
    MODEM_EV_REGISTERED,   /* registration became home/roaming */
    MODEM_EV_UNREGISTERED, /* registration lost */
    MODEM_EV_TIMEOUT,      /* command timed out / garbage */
    MODEM_EV_SOFT_RESET,
    MODEM_EV_POWER_CYCLE,
    MODEM_EV_VANISHED, /* port disappeared */
    MODEM_EV_RETURNED, /* port came back */
    MODEM_EV_BALANCE,  /* new USSD balance */
    MODEM_EV_SIM,      /* SIM state changed */
};
const char *modem_event_name(enum modem_event_kind k);

/* One AT exchange, for the diagnostics bundle: what was asked and what came back. */
struct modem_exchange {
    uint64_t wall_ms;
    char cmd[48];
    char result[16]; /* OK, ERROR, +CME ERROR: 10, TIMEOUT, ... */
    char reply[160]; /* the information lines joined by " | ", cut to fit */
    uint32_t took_ms;
};

struct modem_callbacks {
    void *ctx;
    /* Called from the modem's thread after every poll round (about 1 Hz). Must not block. */
    void (*sample)(void *ctx, const struct modem_sample *s);
    /* Called from the modem's thread on every state change worth recording. Must not block. */
    void (*event)(void *ctx, const char *link, enum modem_event_kind kind, const char *text);
    /* Called from the modem's thread after every AT command (a few per second). Must not
     * block; NULL = not wanted. */
    void (*exchange)(void *ctx, const char *link, const struct modem_exchange *x);
    /* Board hook: power-cycle the modem slot of this link. NULL = not available. 0 = done. */
    int (*power_cycle)(void *ctx, const char *link);
};

struct modem_config {
    char link[32];
    char port[256];             /* /dev/serial/by-id/... (or the simulator's pty symlink) */
    int baud;                   /* default 115200 */
    char apn[100];              /* "" = leave the modem's data profile alone */
    char balance_ussd[32];      /* "" = no balance polling */
    char netif[32];             /* expected interface (config), used if sysfs matching fails */
    bool gnss;                  /* poll modem GNSS */
    unsigned cmd_timeout_ms;    /* default 3000 */
    unsigned signal_period_ms;  /* default 1000 */
    unsigned reg_period_ms;     /* default 10000 */
    unsigned balance_period_s;  /* default 14400 (4 h) */
    unsigned hung_after;        /* consecutive failed polls before recovery, default 3 */
    unsigned recover_settle_ms; /* wait after a reset before re-detecting, default 2000 */
    char sysfs_root[128];       /* "" = "/sys"; tests point at a fixture tree */
};
/* Fill defaults into a zeroed config (keeps fields already set). */
void modem_config_defaults(struct modem_config *c);

struct modem;
/* Start the modem's thread. The callbacks struct is copied. Returns 0, or -1 with err set. */
int modem_start(const struct modem_config *cfg, const struct modem_callbacks *cb,
                struct modem **out, char *err, size_t errlen);
/* Ask the thread to stop, join it (bounded by the current command timeout) and free. */
void modem_stop(struct modem *m);
/* Asynchronous requests to the modem's thread (admin actions); 0 = queued. */
int modem_request_reset(struct modem *m);
int modem_request_balance(struct modem *m);
/* Thermal protection (board/): while on, poll rounds run every 5 signal periods instead of
 * every one, so the modems and the SoC make less heat. Thread-safe; takes effect next round. */
void modem_set_slow_poll(struct modem *m, bool slow);
/* Latest snapshot (thread-safe copy). */
void modem_get_sample(struct modem *m, struct modem_sample *out);

/* Talk to one modem once, synchronously: identity, SIM, registration, operator, signal and
 * cell, GNSS (if it answers), balance if balance_code is non-NULL. Returns 0 on success or -1
 * with a message in err naming the port and what failed (missing port, silent modem, ...). */
int modem_probe(const char *port, int baud, const char *balance_code, struct modem_sample *out,
                char *err, size_t errlen);

#endif
