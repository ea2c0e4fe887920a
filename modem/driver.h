/* driver: the layer between the per-modem state machine (modem.c, probe.c) and the AT engine
 * (internal to modem/).
 *
 * A struct drv is one open modem: its serial port, its AT engine, the family's command set and
 * the sample it fills. The 3GPP TS 27.007 commands both families share (identity, CPIN, CREG,
 * COPS, CSQ, CUSD) live in modem.c; what differs per family (ICCID command, serving cell, data
 * session, GNSS, soft reset) sits behind struct drv_family in simcom.c and quectel.c. Everything
 * runs on the one thread that owns the drv: no locks here.
 *
 * The pure decision logic (registration merge, recovery ladder, family from CGMI) is declared at
 * the end so it can be unit-tested without a modem. */
#ifndef CORRIDOR_MODEM_DRIVER_H
#define CORRIDOR_MODEM_DRIVER_H

#include "modem/at.h"
#include "modem/modem.h"
#include "modem/parse.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Result of one driver step. ERROR/+CME ERROR replies are not failures: the modem is alive and
 * merely does not support or allow the command, so the field stays unknown. */
enum drv_rc {
    DRV_OK = 0,
    DRV_FAIL = -1, /* no reply within the timeout, or garbage where a reply belongs */
    DRV_GONE = -2, /* the port reported an error or vanished */
};

struct drv;

struct drv_family {
    enum modem_family family;
    const char *name;      /* "SIMCom", "Quectel" */
    const char *iccid_cmd; /* "AT+CICCID" / "AT+QCCID"; AT+CCID is the fallback */
    const char *reset_cmd; /* soft reset: "AT+CRESET" / "AT+CFUN=1,1" */
    /* Bring the data session up (APN already set). Writes what it did into msg. */
    enum drv_rc (*data_up)(struct drv *d, char *msg, size_t n);
    /* Switch the GNSS engine on (already on is fine). */
    enum drv_rc (*gnss_on)(struct drv *d);
    /* Serving cell and radio-specific signal into d->s (net, band, tac, cell, rsrp ...). */
    enum drv_rc (*poll_cell)(struct drv *d);
    /* One GNSS read into d->s->gnss. */
    enum drv_rc (*poll_gnss)(struct drv *d);
};

extern const struct drv_family drv_family_simcom;
extern const struct drv_family drv_family_quectel;
const struct drv_family *drv_family_for(enum modem_family f);

struct drv {
    /* set by the owner before drv_open */
    const char *link; /* for texts; "" in probe */
    const char *port;
    int baud;
    unsigned timeout_ms;    /* per command */
    const char *apn;        /* "" = leave the data profile alone */
    struct modem_sample *s; /* filled by every step; owned by the caller */
    /* every command and its answer, for diagnostics (optional; called on this thread) */
    void (*on_exchange)(void *ctx, const char *cmd, const struct at_response *r, uint64_t took_ms);
    void *exchange_ctx;

    /* owned by drv_open/drv_close */
    struct serial *ser;
    struct at_engine *at;
    const struct drv_family *fam;
    struct at_response resp; /* 4 KiB: reused by every command, kept off the stack */

    /* registration per domain (CS, PS, EPS, 5GS), merged into s->reg by drv_merge_reg */
    enum modem_reg reg_cs, reg_ps, reg_eps, reg_5gs;
    unsigned cpsi_errors;
    bool data_ok;
    /* the family's data_up succeeded; retried while registered and false */ /* consecutive
                                                                                ERRORs to
                                                                                AT+CPSI? (first
                                                                                one after boot
                                                                                is normal) */

    /* set by URC handlers (same thread) and consumed by the state machine */
    bool rebooted;     /* RDY / *ATREADY / +CPIN: NOT READY: the modem restarted by itself */
    bool sim_changed;  /* +CPIN URC changed s->sim */
    bool cusd_pending; /* AT+CUSD sent, answer not in yet */
    bool cusd_done;    /* answer in d->cusd */
    uint64_t cusd_deadline;
    struct at_cusd cusd;

    /* the last failing command, for event texts */
    char fail_cmd[48];
    enum at_result fail_res;
    bool fail_garbage;       /* the failure was garbage where a reply belongs, not a timeout */
    uint64_t garbage_before; /* at_stats.garbage_lines at the start of a round */
};

/* Open the port and create the engine with the URC handlers. -1 with err ("port X: ..."). */
int drv_open(struct drv *d, char *err, size_t errlen);
void drv_close(struct drv *d);
/* One AT command with d->timeout_ms (or timeout_ms if non-zero); reply in d->resp. A timeout or
 * port error is remembered in fail_cmd/fail_res. */
/* The first information line of the last reply that starts with prefix (leading spaces
 * skipped), or with prefix NULL the first non-empty one; NULL if none. Points into d->resp. */
const char *drv_resp_line(const struct drv *d, const char *prefix);
enum at_result drv_cmd(struct drv *d, const char *cmd, unsigned timeout_ms);
/* enum drv_rc for an at_result: OK/ERROR/CME -> DRV_OK, TIMEOUT -> DRV_FAIL, IO -> DRV_GONE. */
enum drv_rc drv_rc_of(enum at_result r);

/* DETECT: "AT" up to tries times (try_ms each) until OK, then ATE0, AT+CMEE=1, CGMI/ATI to pick
 * the family (unknown -> SIMCom command set, the common case on the target). */
enum drv_rc drv_detect(struct drv *d, unsigned tries, unsigned try_ms);
/* INIT pieces. */
enum drv_rc drv_identity(struct drv *d);
enum drv_rc drv_sim(struct drv *d);
enum drv_rc drv_enable_urcs(struct drv *d);
enum drv_rc drv_data_session(struct drv *d, char *msg, size_t n);
/* POLL pieces. */
enum drv_rc drv_poll_signal(struct drv *d);   /* CSQ + family serving cell */
enum drv_rc drv_poll_reg(struct drv *d);      /* CREG?/CGREG?/CEREG? merged */
enum drv_rc drv_poll_operator(struct drv *d); /* COPS numeric + name */
/* A named sequence of the pieces above, for INIT and `corridor modem probe` (each its own order):
 * runs them until one fails; *failed (may be NULL) names it for the error message. */
struct drv_step {
    const char *name;
    enum drv_rc (*run)(struct drv *d);
};
enum drv_rc drv_steps(struct drv *d, const struct drv_step *steps, size_t n, const char **failed);
/* USSD: send the code; the answer arrives as a +CUSD URC (d->cusd_done). */
enum drv_rc drv_ussd_send(struct drv *d, const char *code, unsigned wait_ms);
/* Store a received USSD answer into d->s->balance. false (balance untouched) when the answer
 * carries no text: m=2 terminated, 4 not supported, 5 network timeout. */
bool drv_ussd_store(struct drv *d);
/* Round bookkeeping: garbage lines seen by the engine since drv_round_begin. */
void drv_round_begin(struct drv *d);
uint64_t drv_round_garbage(struct drv *d);
/* Copy a parsed serving cell into d->s (both families' poll_cell use it). */
void drv_apply_cell(struct drv *d, const struct at_cell *c);
/* Recompute s->reg from the per-domain values and s->net. */
void drv_merge_reg(struct drv *d);

/* ---- pure decision logic (unit-tested) ------------------------------------------------- */
/* Registration is the best of the domains that apply to the current radio: on GSM/WCDMA the
 * CS and PS domains (CREG, CGREG); on LTE/LTE-M/NB-IoT the EPS domain (CEREG), falling back to
 * CS/PS when CEREG says nothing; on NR5G the 5GS and EPS domains; with no known radio, all. */
enum modem_reg drv_reg_merge(enum modem_net net, enum modem_reg cs, enum modem_reg ps,
                             enum modem_reg eps, enum modem_reg g5);
/* Family from a CGMI / ATI text ("SIMCOM INCORPORATED", "Quectel", ...). */
enum modem_family drv_family_from_text(const char *text);

/* Recovery ladder: soft reset -> power cycle (if the board has the hook) -> back off
 * (5 s, 10 s, 20 s, 40 s, 60 s cap) -> soft reset ... forever. Each step is followed by a wait
 * of *wait_ms and a re-detection; a successful init resets the ladder. */
enum rec_action { REC_SOFT_RESET, REC_POWER_CYCLE, REC_BACKOFF };
struct rec_ladder {
    unsigned stage;    /* 0 soft reset, 1 power cycle, 2 back off */
    unsigned backoffs; /* back-offs taken since the last success */
};
#define REC_BACKOFF_FIRST_MS 5000u
#define REC_BACKOFF_MAX_MS   60000u
void rec_reset(struct rec_ladder *l);
enum rec_action rec_next(struct rec_ladder *l, bool have_power_cycle, unsigned settle_ms,
                         unsigned *wait_ms);
const char *rec_action_name(enum rec_action a);
/* "1st", "2nd", "3rd", "4th", ... "11th", "12th", "13th", "21st" into buf. */
const char *drv_ordinal(unsigned n, char *buf, size_t n_buf);

#endif
