/* sim: internal interface of corridor-modemsim, the SIMCom/Quectel modem simulator.
 *
 * scenario.c loads the scenario JSON into plain structs and evaluates a modem's radio state at a
 * scenario time; at.c is the AT responder (one modem's command interpreter, producing the exact
 * bytes a real modem sends); main.c owns the pseudo-terminals, the poll loop, faults and the
 * control socket. The simulator deliberately shares no code with modem/ (it must be able to
 * catch the appliance parsers' bugs). */
#ifndef CORRIDOR_SIM_H
#define CORRIDOR_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_MAX_MODEMS    32
#define SIM_MAX_KEYFRAMES 20000
#define SIM_MAX_FAULTS    64
#define SIM_MAX_USSD      8
#define SIM_MAX_WAYPOINTS 256
#define SIM_LINE_MAX      1024 /* longest command line accepted; more is discarded -> ERROR */
#define SIM_OUT_MAX       8192 /* bytes one command may produce */

enum sim_family { SIM_FAMILY_SIMCOM = 0, SIM_FAMILY_QUECTEL };
enum sim_rat { SIM_RAT_NONE = 0, SIM_RAT_GSM, SIM_RAT_WCDMA, SIM_RAT_LTE };
/* 27.007 <stat> values */
enum sim_reg {
    SIM_REG_NOT_REGISTERED = 0,
    SIM_REG_HOME = 1,
    SIM_REG_SEARCHING = 2,
    SIM_REG_DENIED = 3,
    SIM_REG_UNKNOWN = 4,
    SIM_REG_ROAMING = 5,
};
enum sim_fault_kind {
    SIM_FAULT_SILENCE = 0,
    SIM_FAULT_HANG,
    SIM_FAULT_GARBAGE,
    SIM_FAULT_REBOOT,
    SIM_FAULT_VANISH,
    SIM_FAULT_CPSI_ERROR,
    SIM_FAULT_N,
};
const char *sim_fault_name(enum sim_fault_kind k);
int sim_fault_parse(const char *s, enum sim_fault_kind *out);
int sim_reg_parse(const char *s, enum sim_reg *out);
const char *sim_reg_name(enum sim_reg r);
int sim_rat_parse(const char *s, enum sim_rat *out);
const char *sim_rat_name(enum sim_rat r);

/* Keyframe fields. Numeric ones are linearly interpolated between the keyframes that set them
 * (unless the modem says "interpolate": "step"); the others always step. */
enum sim_field {
    F_RSRP = 0, /* dBm */
    F_RSRQ,     /* dB */
    F_SINR,     /* dB */
    F_RSSI,     /* dBm; CSQ is derived from it unless F_CSQ is set */
    F_CSQ,      /* raw 0..31/99, stepped */
    F_RSCP,     /* dBm (WCDMA) */
    F_ECIO,     /* dB (WCDMA) */
    F_LAT,
    F_LON,
    F_ALT,    /* m */
    F_SPEED,  /* km/h */
    F_COURSE, /* degrees */
    /* stepped from here on */
    F_TAC,
    F_CELL,
    F_PCI,
    F_CHANNEL, /* EARFCN / UARFCN / ARFCN */
    F_BW,      /* LTE dl/ul bandwidth code as CPSI prints it (5 = 20 MHz) */
    F_FIX,     /* 0/1 */
    F_REG,     /* enum sim_reg */
    F_RAT,     /* enum sim_rat */
    F_N,
};
#define F_FIRST_STEPPED F_TAC
const char *sim_field_key(enum sim_field f);
int sim_field_parse(const char *key, enum sim_field *out);

struct sim_keyframe {
    double t;
    uint32_t mask; /* bit f set when the keyframe sets field f */
    double v[F_N];
    bool has_band;
    char band[32];
};

struct sim_fault {
    enum sim_fault_kind kind;
    double start, duration; /* scenario seconds; timeline faults repeat with the loop */
};

enum sim_ussd_enc { USSD_AUTO = 0, USSD_GSM7, USSD_GSM7_PACKED, USSD_UCS2 };
struct sim_ussd {
    char code[32];
    char text[512]; /* UTF-8; "\n" becomes CR LF inside the quotes */
    enum sim_ussd_enc enc;
    int dcs;        /* -1: the encoding's usual value (15 text/packed, 72 UCS2) */
    int m;          /* +CUSD: <m> */
    double delay_s; /* after OK (scenario seconds) */
    bool before_ok; /* deliver the URC before the final OK (some networks/firmwares do) */
};

struct sim_identity {
    char manufacturer[64], model[64], revision[96], imei[24], iccid[24], imsi[24];
};

struct sim_modem_cfg {
    char name[32];
    char path[256];
    enum sim_family family;
    struct sim_identity id;
    char op_name[32], op_short[32], mcc[4], mnc[4];
    char sim[16]; /* "ready" | "absent" | "pin" */
    double boot_s, reboot_s;
    bool reboot_vanish;
    bool first_cpsi_error;
    bool echo;
    int cmee;
    bool step; /* interpolate "step" instead of "linear" */
    bool use_route;
    unsigned seed;
    struct sim_ussd ussd[SIM_MAX_USSD];
    size_t n_ussd;
    struct sim_keyframe *kf; /* owned, sorted by t */
    size_t n_kf;
    /* per field (and [F_N] for band): indices into kf of the keyframes that set it, in time
     * order, so evaluation is a binary search however long the timeline (owned) */
    uint32_t *fidx[F_N + 1];
    size_t n_fidx[F_N + 1];
    struct sim_fault faults[SIM_MAX_FAULTS];
    size_t n_faults;
};

struct sim_route {
    size_t n;
    double lat[SIM_MAX_WAYPOINTS], lon[SIM_MAX_WAYPOINTS];
    double speed_kmh, alt_m;
    bool loop; /* true: start over at the first waypoint; false: stop at the last */
};

struct sim_scenario {
    double duration_s; /* timeline length; time loops modulo it when loop is set */
    bool loop;
    struct sim_route route;
    struct sim_modem_cfg modems[SIM_MAX_MODEMS];
    size_t n_modems;
};

/* Load and validate a scenario. On error returns -1 and writes "<file>: <key path>: <what>"
 * into err. The scenario owns its keyframe arrays: free them with sim_scenario_free. */
int sim_scenario_load(const char *file, struct sim_scenario *sc, char *err, size_t errlen);
void sim_scenario_free(struct sim_scenario *sc);

/* The radio state of one modem at one moment (what every reply is generated from). */
struct sim_radio {
    enum sim_reg reg;
    enum sim_rat rat;
    double rsrp, rsrq, sinr, rssi, rscp, ecio;
    int csq; /* raw 0..31 or 99 */
    long tac;
    long long cell;
    long pci, channel, bw;
    char band[32];
    bool fix;
    double lat, lon, alt, speed_kmh, course;
};

/* Scenario time of the timeline (looped) from absolute scenario seconds since start. */
double sim_timeline_t(const struct sim_scenario *sc, double abs_t);
/* Evaluate the timeline (and route) of modem cfg at timeline time t. */
void sim_eval(const struct sim_scenario *sc, const struct sim_modem_cfg *cfg, double t,
              struct sim_radio *out);

/* ---- AT responder (at.c) ---------------------------------------------------------------- */
/* Per-modem AT state that survives between commands and is reset by a reboot. */
struct sim_at {
    const struct sim_modem_cfg *cfg;
    bool echo;
    int cmee;
    int creg_n, cgreg_n, cereg_n;
    int cops_format;
    char cscs[8];
    bool gps_on;
    int cfun;
    unsigned cpsi_count; /* since boot */
    char apn[64];
    bool pdp_active, rmnet_up, netopen;
    int cnmp;
    /* last registration reported, for +CREG/+CGREG/+CEREG URCs on change */
    int last_creg, last_cgreg, last_cereg;
    long last_lac;
    long long last_ci;
};

/* What a command asks main.c to do after its reply has been written. */
enum sim_action {
    SIM_ACT_NONE = 0,
    SIM_ACT_REBOOT,      /* AT+CRESET, AT+CFUN=1,1 */
    SIM_ACT_USSD,        /* schedule the +CUSD URC of ussd_index */
    SIM_ACT_NETOPEN,     /* schedule "+NETOPEN: 0" */
    SIM_ACT_USSD_CANCEL, /* AT+CUSD=2: drop a pending +CUSD URC */
};

struct sim_reply {
    char buf[SIM_OUT_MAX];
    size_t len;
    enum sim_action action;
    int ussd_index;        /* -1: unknown code (reply "+CUSD: 4") */
    char cmd_names[8][24]; /* normalised command names, for the status counters */
    size_t n_cmds;
    bool error; /* the final result was an error */
};

/* Reset the AT state to power-on defaults from cfg. */
void sim_at_reset(struct sim_at *at, const struct sim_modem_cfg *cfg);
/* Execute one command line (without the terminating CR; may hold several commands separated by
 * ';'). radio is the current radio state; cpsi_fault forces ERROR to AT+CPSI?. The reply bytes
 * (framing included, echo excluded) go into r. */
void sim_at_exec(struct sim_at *at, const struct sim_radio *radio, bool cpsi_fault,
                 const char *line, struct sim_reply *r);
/* The boot URCs of the modem's family. */
size_t sim_at_boot_urcs(const struct sim_at *at, char *buf, size_t n);
/* Registration URCs (+CREG/+CGREG/+CEREG per the enabled n) when the state changed since the last
 * call; returns bytes written (0 if none). */
size_t sim_at_reg_urcs(struct sim_at *at, const struct sim_radio *radio, char *buf, size_t n);
/* The +CUSD URC for ussd entry idx (or "+CUSD: 4" when idx < 0) in the current CSCS. */
size_t sim_at_cusd_urc(const struct sim_at *at, int idx, char *buf, size_t n);

/* Encoders (exposed for tests). Return bytes written (NUL-terminated) or -1 if it does not fit
 * or the text cannot be encoded. */
int sim_enc_ucs2_hex(const char *utf8, char *out, size_t n);
int sim_enc_gsm7_packed_hex(const char *utf8, char *out, size_t n);

#endif
