/* at: the serial-port layer and the AT command engine (internal to modem/).
 *
 * Layering: serial (libserialport for real ports, termios for ptys and anything libserialport
 * rejects) -> framer (bytes -> lines, pure, fuzzed) -> engine (one command in flight, final
 * result codes, URC routing). One engine per port, used by that modem's thread only. */
#ifndef CORRIDOR_MODEM_AT_H
#define CORRIDOR_MODEM_AT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- serial ---------------------------------------------------------------------------- */
struct serial;
/* Open path at baud, 8N1, raw, no flow control. Tries libserialport, falls back to termios
 * (pseudo-terminals). -1 with err naming the path and the reason. */
int serial_open(const char *path, int baud, struct serial **out, char *err, size_t errlen);
/* Read what is available within timeout_ms. >0 bytes, 0 timeout, -1 port gone/error. */
ssize_t serial_read(struct serial *s, void *buf, size_t n, int timeout_ms);
/* Write all bytes within timeout_ms. 0 ok, -1 error/timeout. */
int serial_write(struct serial *s, const void *buf, size_t n, int timeout_ms);
/* Discard pending input. */
void serial_flush_input(struct serial *s);
void serial_close(struct serial *s);
/* Does the device node still exist? (a vanished USB modem removes it) */
bool serial_present(const char *path);

/* ---- framer ---------------------------------------------------------------------------- */
/* Splits a byte stream into lines on CR and/or LF, dropping empty lines, NULs and other
 * control bytes, capping each line at AT_LINE_MAX (the excess is discarded and the line is
 * flagged truncated). A line that starts a quoted string it does not close (+CUSD text with
 * embedded newlines) is continued onto the following lines, joined with '\n', up to the cap.
 * The "> " SMS/data prompt is delivered as a line of its own. Pure: no I/O, no allocation. */
#define AT_LINE_MAX 1024
struct at_framer {
    char line[AT_LINE_MAX + 1];
    size_t len;
    bool truncated;
    bool in_quote;
    unsigned char last;
    uint64_t lines, truncated_lines, dropped_bytes;
};
typedef void (*at_line_fn)(void *ctx, const char *line, size_t len, bool truncated);
void at_framer_init(struct at_framer *f);
void at_framer_feed(struct at_framer *f, const void *data, size_t n, at_line_fn fn, void *ctx);

/* ---- engine ---------------------------------------------------------------------------- */
enum at_result {
    AT_RES_OK = 0,
    AT_RES_ERROR,      /* ERROR */
    AT_RES_CME_ERROR,  /* +CME ERROR: n (code in err_code, -1 if text) */
    AT_RES_CMS_ERROR,  /* +CMS ERROR: n */
    AT_RES_NO_CARRIER, /* NO CARRIER / BUSY / NO ANSWER / NO DIALTONE */
    AT_RES_TIMEOUT,    /* no final result within the timeout */
    AT_RES_IO,         /* port error or vanished */
    AT_RES_CANCELLED,  /* the cancel flag (at_set_cancel) was raised: the owner is stopping */
};
const char *at_result_name(enum at_result r);

#define AT_RESP_MAX_LINES 32
struct at_response {
    enum at_result result;
    int err_code;      /* CME/CMS code, -1 if none/text */
    char err_text[64]; /* "+CME ERROR: SIM not inserted" text form */
    unsigned nlines;
    const char *lines[AT_RESP_MAX_LINES]; /* information lines, echo removed; point into buf */
    char buf[4096];
    bool overflow; /* more lines or bytes than fit (rest dropped) */
};

/* URC handler, called from inside at_command()/at_wait_urc() on the modem's own thread. */
typedef void (*at_urc_fn)(void *ctx, const char *line);

struct at_engine;
struct at_engine *at_engine_new(struct serial *s);
/* Detach and free; does not close the serial port. */
void at_engine_free(struct at_engine *e);
/* Lines starting with prefix (e.g. "+CUSD:", "+CPIN:", "SMS DONE", "RDY") are URCs. A URC
 * prefix that equals the running command's reply prefix (e.g. +CREG: during AT+CREG?) is
 * taken as the reply instead, unless always is true (+CUSD arrives as a URC even during
 * AT+CUSD=...). Up to 32 handlers. */
int at_add_urc(struct at_engine *e, const char *prefix, bool always, at_urc_fn fn, void *ctx);
/* Send "cmd\r" and collect the reply until a final result or timeout_ms. Echo (on or off) is
 * recognised and removed. Returns resp->result. */
enum at_result at_command(struct at_engine *e, const char *cmd, unsigned timeout_ms,
                          struct at_response *resp);
/* While *flag is true (read atomically), a running at_command returns AT_RES_CANCELLED within
 * 100 ms and at_pump returns early: modem_stop must not wait out a 3 s command timeout when
 * the supervisor has 2 s to stop every thread. NULL = no cancel. */
void at_set_cancel(struct at_engine *e, const bool *flag);
/* Read and dispatch URCs for up to timeout_ms while no command is running. -1 on port error. */
int at_pump(struct at_engine *e, unsigned timeout_ms);
/* Counters for health reporting. */
struct at_stats {
    uint64_t commands, timeouts, errors, urcs, garbage_lines, truncated_lines;
};
void at_get_stats(struct at_engine *e, struct at_stats *out);

#endif
