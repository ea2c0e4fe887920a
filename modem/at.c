/* at: the AT line framer and the AT command engine (serial.c is the port layer below).
 *
 * Framer: bytes -> lines. Pure and bounded; see at.h for the rules. The one subtle part is the
 * quoted-string continuation for +CUSD texts that contain CR LF: the line is held back and the
 * next physical lines are joined to it with '\n'. A stray '"' in garbage must not hold back the
 * reply's final result, so continuation ends as soon as a joined segment is a final result code
 * (it is split off and delivered on its own) or the joined line would exceed the cap.
 *
 * Engine: one command in flight. A stale reply (a final result that arrives after its command
 * timed out) is the classic way an AT engine gets out of step for good: every later command
 * would take its predecessor's answer. Two defences:
 *  - after a timeout the next command first drains the port until it stays quiet for a while,
 *    so a late answer is read and thrown away before anything is sent;
 *  - when the modem echoes (learned from the previous command), everything before the echo of
 *    the current command belongs to an earlier exchange: a final result seen before the echo is
 *    only a candidate, dropped when the echo arrives, and accepted only if no echo follows within
 *    a short grace (the modem may have lost its echo setting by rebooting). */
#include "modem/at.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

/* ---- framer ---------------------------------------------------------------------------- */

void at_framer_init(struct at_framer *f)
{
    memset(f, 0, sizeof(*f));
}

static bool is_eol(unsigned char c)
{
    return c == '\r' || c == '\n';
}

/* Final result codes as the engine sees them, also used by the framer to end a quoted-string
 * continuation. "+CME ERROR:" with nothing at all after the colon is not final (ModemManager's
 * parser agrees): it is a fragment, not an answer. */
static bool has_prefix(const char *s, size_t len, const char *p)
{
    size_t pl = strlen(p);
    return len >= pl && memcmp(s, p, pl) == 0;
}

static bool is_exact(const char *s, size_t len, const char *p)
{
    return strlen(p) == len && memcmp(s, p, len) == 0;
}

static bool all_digits(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

enum final_kind {
    FIN_NONE = 0,
    FIN_OK,
    FIN_CONNECT,
    FIN_PROMPT,
    FIN_ERROR,
    FIN_CME,
    FIN_CMS,
    FIN_NO_CARRIER,
    FIN_MODEM_ERROR,
};

static enum final_kind final_kind(const char *s, size_t len)
{
    if (is_exact(s, len, "OK"))
        return FIN_OK;
    if (is_exact(s, len, "ERROR") || is_exact(s, len, "COMMAND NOT SUPPORT"))
        return FIN_ERROR;
    if (has_prefix(s, len, "+CME ERROR:") && len > 11)
        return FIN_CME;
    if (has_prefix(s, len, "+CMS ERROR:") && len > 11)
        return FIN_CMS;
    if (is_exact(s, len, "NO CARRIER") || is_exact(s, len, "BUSY") ||
        is_exact(s, len, "NO ANSWER") || is_exact(s, len, "NO DIALTONE"))
        return FIN_NO_CARRIER;
    if (has_prefix(s, len, "MODEM ERROR: ") && all_digits(s + 13, len - 13))
        return FIN_MODEM_ERROR;
    if (is_exact(s, len, "CONNECT") || has_prefix(s, len, "CONNECT "))
        return FIN_CONNECT;
    if (is_exact(s, len, "> "))
        return FIN_PROMPT;
    return FIN_NONE;
}

static void deliver(struct at_framer *f, size_t len, bool truncated, at_line_fn fn, void *ctx)
{
    f->line[len] = '\0';
    f->lines++;
    if (truncated)
        f->truncated_lines++;
    if (fn)
        fn(ctx, f->line, len, truncated);
}

/* Deliver the whole buffer and start afresh. */
static void deliver_all(struct at_framer *f, at_line_fn fn, void *ctx)
{
    deliver(f, f->len, f->truncated, fn, ctx);
    f->len = 0;
    f->truncated = false;
    f->in_quote = false;
}

static bool count_quotes_odd(const char *s, size_t len)
{
    bool odd = false;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '"')
            odd = !odd;
    return odd;
}

/* Offset of the last '\n' join in the buffer, or -1 for a single physical line. */
static long last_join(const struct at_framer *f)
{
    const char *p = memrchr(f->line, '\n', f->len);
    return p ? (long)(p - f->line) : -1;
}

/* A continued line held back at a line end waits for its next segment. */
static bool awaiting_segment(const struct at_framer *f)
{
    return f->len > 0 && is_eol(f->last);
}

/* Deliver the part before the join at j as one (cut-short) line and keep the segment after it
 * as a fresh line of its own. */
static void split_at_join(struct at_framer *f, size_t j, bool first_truncated, at_line_fn fn,
                          void *ctx)
{
    size_t seg = f->len - j - 1;
    deliver(f, j, first_truncated, fn, ctx);
    memmove(f->line, f->line + j + 1, seg);
    f->len = seg;
    f->truncated = false;
    f->in_quote = count_quotes_odd(f->line, seg);
}

static void end_of_line(struct at_framer *f, at_line_fn fn, void *ctx)
{
    if (f->len == 0 || awaiting_segment(f))
        return; /* empty line (or an empty line inside a continuation): dropped */
    long j = last_join(f);
    if (j >= 0) {
        size_t seg = f->len - (size_t)j - 1;
        if (final_kind(f->line + j + 1, seg) != FIN_NONE) {
            /* The reply ended while a quote was open: the quote was garbage or the text was
             * cut; either way the final result must reach the engine as a line of its own. */
            split_at_join(f, (size_t)j, false, fn, ctx);
            deliver_all(f, fn, ctx);
            return;
        }
    } else if (f->in_quote && final_kind(f->line, f->len) != FIN_NONE) {
        deliver_all(f, fn, ctx);
        return;
    }
    if (f->in_quote && !f->truncated)
        return; /* hold back: the quoted text continues on the next line */
    deliver_all(f, fn, ctx);
}

static void put_byte(struct at_framer *f, unsigned char c, at_line_fn fn, void *ctx)
{
    if (awaiting_segment(f)) {
        if (f->len + 2 > AT_LINE_MAX) {
            /* No room for even one more joined byte: give up on the continuation. */
            f->truncated = true;
            deliver_all(f, fn, ctx);
        } else {
            f->line[f->len++] = '\n';
        }
    }
    if (f->len >= AT_LINE_MAX) {
        long j = last_join(f);
        if (j >= 0) {
            /* A continued line hit the cap inside a later segment. That segment may be the
             * final result; keep it as a line of its own instead of truncating it away. */
            split_at_join(f, (size_t)j, true, fn, ctx);
            if (f->len >= AT_LINE_MAX) {
                f->truncated = true;
                return;
            }
        } else {
            f->truncated = true;
            f->last = c;
            return;
        }
    }
    f->line[f->len++] = (char)c;
    f->last = c;
    if (c == '"')
        f->in_quote = !f->in_quote;
    /* The SMS/data prompt "> " is not followed by a line end: deliver it as soon as it is
     * complete, or the engine would wait for a line that never comes. */
    if (c == ' ' && f->len == 2 && f->line[0] == '>')
        deliver_all(f, fn, ctx);
}

void at_framer_feed(struct at_framer *f, const void *data, size_t n, at_line_fn fn, void *ctx)
{
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = b[i];
        if (is_eol(c)) {
            end_of_line(f, fn, ctx);
            f->last = c;
        } else if (c < 0x20 || c >= 0x7f) {
            /* NUL, other controls, DEL and 8-bit garbage (line noise, a modem rebooting into
             * its boot loader). AT text is 7-bit (UCS2 texts come hex-encoded): drop them. */
            f->dropped_bytes++;
        } else {
            put_byte(f, c, fn, ctx);
        }
    }
}

/* ---- engine ---------------------------------------------------------------------------- */

#define AT_MAX_URC       32
#define AT_URC_PREFIX    32
#define AT_PREFIX_MAX    24
#define AT_DRAIN_QUIET   200  /* ms of silence that ends the drain after a timeout */
#define AT_DRAIN_MAX     1000 /* ms at most spent draining */
#define AT_ECHO_GRACE    300  /* ms a pre-echo final result waits for the echo */
#define AT_PARTIAL_WAIT  20   /* ms a partial line gets to complete before a command */
#define AT_WRITE_TIMEOUT 1000

struct urc_handler {
    char prefix[AT_URC_PREFIX];
    size_t plen;
    bool always;
    at_urc_fn fn;
    void *ctx;
};

enum eng_state { ENG_IDLE, ENG_WAIT, ENG_DONE };

struct at_engine {
    struct serial *s;
    struct at_framer fr;
    struct urc_handler urc[AT_MAX_URC];
    unsigned nurc;
    struct at_stats st;
    bool dead;  /* serial_read reported the port gone */
    bool dirty; /* the last command timed out: a late answer may still come */
    bool expect_echo;
    bool busy;
    uint64_t framer_truncated_seen;
    /* the command in flight */
    enum eng_state state;
    const char *cmd;
    char reply_prefix[AT_PREFIX_MAX]; /* "+CREG" for AT+CREG? */
    size_t reply_plen;
    bool echo_seen;
    bool cand;            /* a final result arrived before the expected echo */
    unsigned cand_nlines; /* response lines collected before it */
    enum final_kind cand_kind;
    char cand_line[64];
    uint64_t cand_deadline;
    struct at_response *resp;
    const bool *cancel;
};

#define AT_CANCEL_POLL_MS 100

static bool cancelled(const struct at_engine *e)
{
    return e->cancel && __atomic_load_n(e->cancel, __ATOMIC_ACQUIRE);
}

void at_set_cancel(struct at_engine *e, const bool *flag)
{
    e->cancel = flag;
}

const char *at_result_name(enum at_result r)
{
    switch (r) {
    case AT_RES_OK:
        return "ok";
    case AT_RES_ERROR:
        return "error";
    case AT_RES_CME_ERROR:
        return "cme_error";
    case AT_RES_CMS_ERROR:
        return "cms_error";
    case AT_RES_NO_CARRIER:
        return "no_carrier";
    case AT_RES_TIMEOUT:
        return "timeout";
    case AT_RES_CANCELLED:
        return "cancelled";
    case AT_RES_IO:
        return "io";
    }
    return "unknown";
}

struct at_engine *at_engine_new(struct serial *s)
{
    struct at_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->s = s;
    at_framer_init(&e->fr);
    return e;
}

void at_engine_free(struct at_engine *e)
{
    free(e);
}

int at_add_urc(struct at_engine *e, const char *prefix, bool always, at_urc_fn fn, void *ctx)
{
    if (!e || !prefix || !*prefix || !fn || e->nurc >= AT_MAX_URC ||
        strlen(prefix) >= AT_URC_PREFIX)
        return -1;
    struct urc_handler *h = &e->urc[e->nurc++];
    h->plen = str_copy(h->prefix, prefix, sizeof(h->prefix));
    h->always = always;
    h->fn = fn;
    h->ctx = ctx;
    return 0;
}

void at_get_stats(struct at_engine *e, struct at_stats *out)
{
    *out = e->st;
    out->truncated_lines = e->fr.truncated_lines;
}

static const struct urc_handler *find_urc(const struct at_engine *e, const char *line)
{
    for (unsigned i = 0; i < e->nurc; i++)
        if (strncmp(line, e->urc[i].prefix, e->urc[i].plen) == 0)
            return &e->urc[i];
    return NULL;
}

/* The information-line prefix a command answers with: "AT+CREG?" -> "+CREG", "AT$QCRMCALL=1"
 * -> "$QCRMCALL". Empty for basic commands (ATI, ATE0). */
static void reply_prefix_of(const char *cmd, char *out, size_t outlen)
{
    out[0] = '\0';
    if (strncasecmp(cmd, "AT", 2) != 0)
        return;
    const char *p = cmd + 2;
    if (*p != '+' && *p != '$' && *p != '^' && *p != '%')
        return;
    size_t n = 1;
    while (p[n] && (isalnum((unsigned char)p[n]) || p[n] == '_'))
        n++;
    if (n == 1 || n >= outlen)
        return;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)toupper((unsigned char)p[i]);
    out[n] = '\0';
}

/* Does cmd switch echo? 1 on, 0 off, -1 no E in its basic-command part. */
static int echo_switch(const char *cmd)
{
    if (strncasecmp(cmd, "AT", 2) != 0)
        return -1;
    int r = -1;
    for (const char *p = cmd + 2;
         *p && *p != '+' && *p != '&' && *p != '$' && *p != '^' && *p != '%' && *p != ';'; p++) {
        if (*p == 'E' || *p == 'e')
            r = p[1] == '1';
    }
    return r;
}

static void resp_reset(struct at_response *r)
{
    r->result = AT_RES_TIMEOUT;
    r->err_code = -1;
    r->err_text[0] = '\0';
    r->nlines = 0;
    r->buf[0] = '\0';
    r->overflow = false;
}

static void resp_add_line(struct at_response *r, const char *line, size_t len)
{
    /* lines[] point into buf; find the first free byte after the last stored line. */
    size_t used = 0;
    if (r->nlines > 0) {
        const char *last = r->lines[r->nlines - 1];
        used = (size_t)(last - r->buf) + strlen(last) + 1;
    }
    if (r->nlines >= AT_RESP_MAX_LINES || used + len + 1 > sizeof(r->buf)) {
        r->overflow = true;
        return;
    }
    memcpy(r->buf + used, line, len);
    r->buf[used + len] = '\0';
    r->lines[r->nlines++] = r->buf + used;
}

/* Drop the first k lines (they answered an earlier command), keeping the rest in order. */
static void resp_drop_front(struct at_response *r, unsigned k)
{
    if (k == 0)
        return;
    if (k >= r->nlines) {
        r->nlines = 0;
        return;
    }
    size_t off = (size_t)(r->lines[k] - r->buf);
    const char *last = r->lines[r->nlines - 1];
    size_t end = (size_t)(last - r->buf) + strlen(last) + 1;
    memmove(r->buf, r->buf + off, end - off);
    for (unsigned i = k; i < r->nlines; i++)
        r->lines[i - k] = r->lines[i] - off;
    r->nlines -= k;
}

static void dispatch_idle(struct at_engine *e, const char *line)
{
    const struct urc_handler *h = find_urc(e, line);
    if (h) {
        e->st.urcs++;
        h->fn(h->ctx, line);
    } else {
        /* Nobody asked: a stale answer, an unregistered URC or noise. */
        e->st.garbage_lines++;
        LOG_D("at", "unsolicited line ignored: %.80s", line);
    }
}

static void finish(struct at_engine *e, enum final_kind k, const char *line, size_t len)
{
    struct at_response *r = e->resp;
    switch (k) {
    case FIN_OK:
        r->result = AT_RES_OK;
        break;
    case FIN_CONNECT:
    case FIN_PROMPT:
        /* Success that hands the port to a data phase: keep the line so the caller knows. */
        resp_add_line(r, line, len);
        r->result = AT_RES_OK;
        break;
    case FIN_ERROR:
        r->result = AT_RES_ERROR;
        break;
    case FIN_MODEM_ERROR: {
        long code;
        r->result = AT_RES_ERROR;
        r->err_code = str_to_long(line + 13, &code) && code <= 65535 ? (int)code : -1;
        break;
    }
    case FIN_CME:
    case FIN_CMS: {
        r->result = k == FIN_CME ? AT_RES_CME_ERROR : AT_RES_CMS_ERROR;
        char num[16];
        const char *v = line + 11;
        while (*v == ' ')
            v++;
        long code;
        str_copy(num, v, sizeof(num));
        str_trim(num);
        r->err_code =
            (strlen(v) < sizeof(num) && str_to_long(num, &code) && code >= 0 && code <= 65535)
                ? (int)code
                : -1;
        break;
    }
    case FIN_NO_CARRIER:
        r->result = AT_RES_NO_CARRIER;
        break;
    case FIN_NONE:
        return;
    }
    if (r->result != AT_RES_OK)
        str_copy(r->err_text, line, sizeof(r->err_text));
    e->state = ENG_DONE;
}

static void on_line(void *ctx, const char *line, size_t len, bool truncated)
{
    struct at_engine *e = ctx;
    if (e->state != ENG_WAIT) {
        dispatch_idle(e, line);
        return;
    }
    struct at_response *r = e->resp;
    if (!e->echo_seen && strcmp(line, e->cmd) == 0) {
        e->echo_seen = true;
        if (r->nlines > 0 || e->cand) {
            /* Whatever came before our echo answered an earlier command. */
            e->st.garbage_lines += r->nlines + (e->cand ? 1u : 0u);
            resp_reset(r);
            e->cand = false;
        }
        return;
    }
    enum final_kind k = final_kind(line, len);
    if (k != FIN_NONE) {
        if (e->expect_echo && !e->echo_seen) {
            if (e->cand) {
                /* A second final before any echo: the first one and its lines were stale. */
                e->st.garbage_lines += e->cand_nlines + 1;
                resp_drop_front(r, e->cand_nlines);
            }
            e->cand = true;
            e->cand_nlines = r->nlines;
            e->cand_kind = k;
            str_copy(e->cand_line, line, sizeof(e->cand_line));
            e->cand_deadline = mono_ms() + AT_ECHO_GRACE;
            return;
        }
        finish(e, k, line, len);
        return;
    }
    const struct urc_handler *h = find_urc(e, line);
    if (h && (h->always || !e->reply_plen || strncmp(line, e->reply_prefix, e->reply_plen) != 0 ||
              line[e->reply_plen] != ':')) {
        e->st.urcs++;
        h->fn(h->ctx, line);
        return;
    }
    if (truncated)
        r->overflow = true; /* the line itself lost its tail */
    resp_add_line(r, line, len);
}

/* Read for up to timeout_ms, feeding the framer. -1 when the port is gone. With quiet_ms > 0,
 * return early once nothing arrived for quiet_ms. timeout_ms == 0 takes only what is already
 * there (bounded, so a port that streams garbage cannot keep us here). */
static int pump_for(struct at_engine *e, unsigned timeout_ms, unsigned quiet_ms)
{
    uint64_t deadline = mono_ms() + timeout_ms;
    unsigned char buf[512];
    for (unsigned rounds = 0;; rounds++) {
        uint64_t now = mono_ms();
        int wait = (int)(deadline > now ? deadline - now : 0);
        if (quiet_ms && wait > (int)quiet_ms)
            wait = (int)quiet_ms;
        if (timeout_ms == 0 && rounds >= 64)
            return 0;
        if (cancelled(e))
            return 0;
        /* A quiet wait is short already (AT_DRAIN_QUIET); only long idle waits are sliced. */
        if (!quiet_ms && wait > AT_CANCEL_POLL_MS)
            wait = AT_CANCEL_POLL_MS;
        ssize_t k = serial_read(e->s, buf, sizeof(buf), wait);
        if (k < 0) {
            e->dead = true;
            return -1;
        }
        if (k > 0) {
            at_framer_feed(&e->fr, buf, (size_t)k, on_line, e);
            if (timeout_ms > 0 && mono_ms() >= deadline)
                return 0;
            continue;
        }
        if (quiet_ms || timeout_ms == 0 || mono_ms() >= deadline)
            return 0;
    }
}

int at_pump(struct at_engine *e, unsigned timeout_ms)
{
    if (!e || e->dead)
        return -1;
    uint64_t before = e->st.urcs;
    e->state = ENG_IDLE;
    if (pump_for(e, timeout_ms, 0) < 0)
        return -1;
    return (int)(e->st.urcs - before);
}

/* Before sending: read what is already there (URCs are dispatched, stale answers dropped), and
 * throw away a partial line so the echo does not get glued to it. */
static int prepare(struct at_engine *e)
{
    e->state = ENG_IDLE;
    if (e->dirty) {
        if (pump_for(e, AT_DRAIN_MAX, AT_DRAIN_QUIET) < 0)
            return -1;
        e->dirty = false;
    }
    if (pump_for(e, 0, 0) < 0)
        return -1;
    if (e->fr.len > 0) {
        if (pump_for(e, AT_PARTIAL_WAIT, AT_PARTIAL_WAIT) < 0)
            return -1;
        if (e->fr.len > 0) {
            e->st.garbage_lines++;
            e->fr.dropped_bytes += e->fr.len;
            e->fr.len = 0;
            e->fr.truncated = false;
            e->fr.in_quote = false;
            e->fr.last = '\n';
        }
    }
    return 0;
}

enum at_result at_command(struct at_engine *e, const char *cmd, unsigned timeout_ms,
                          struct at_response *resp)
{
    if (!resp)
        return AT_RES_ERROR;
    resp_reset(resp);
    if (!e || !cmd || e->busy) {
        /* A URC handler calling back in would interleave two exchanges on one port. */
        resp->result = AT_RES_ERROR;
        str_copy(resp->err_text, "engine busy or invalid call", sizeof(resp->err_text));
        return resp->result;
    }
    size_t clen = strlen(cmd);
    if (clen == 0 || clen >= AT_LINE_MAX || strpbrk(cmd, "\r\n")) {
        resp->result = AT_RES_ERROR;
        str_copy(resp->err_text, "invalid command", sizeof(resp->err_text));
        return resp->result;
    }
    e->st.commands++;
    if (e->dead || prepare(e) < 0) {
        resp->result = AT_RES_IO;
        str_copy(resp->err_text, "port gone", sizeof(resp->err_text));
        e->st.errors++;
        return resp->result;
    }
    e->busy = true;
    e->cmd = cmd;
    e->resp = resp;
    reply_prefix_of(cmd, e->reply_prefix, sizeof(e->reply_prefix));
    e->reply_plen = strlen(e->reply_prefix);
    e->echo_seen = false;
    e->cand = false;

    char out[AT_LINE_MAX + 2];
    memcpy(out, cmd, clen);
    out[clen] = '\r';
    uint64_t start = mono_ms();
    uint64_t deadline = start + timeout_ms;
    e->state = ENG_WAIT;
    if (serial_write(e->s, out, clen + 1, AT_WRITE_TIMEOUT) != 0) {
        resp->result = AT_RES_IO;
        str_copy(resp->err_text, "write failed", sizeof(resp->err_text));
        goto out;
    }
    unsigned char buf[512];
    while (e->state == ENG_WAIT) {
        uint64_t now = mono_ms();
        if (e->cand && (now >= e->cand_deadline || now >= deadline)) {
            /* No echo after all (echo switched off, e.g. by a reboot): the answer stands. */
            e->expect_echo = false;
            e->cand = false;
            /* Lines after the accepted final came after the answer: not part of it. */
            e->st.garbage_lines += resp->nlines - e->cand_nlines;
            resp->nlines = e->cand_nlines;
            finish(e, e->cand_kind, e->cand_line, strlen(e->cand_line));
            break;
        }
        if (now >= deadline) {
            resp->result = AT_RES_TIMEOUT;
            break;
        }
        if (cancelled(e)) {
            resp->result = AT_RES_CANCELLED;
            str_copy(resp->err_text, "cancelled", sizeof(resp->err_text));
            e->dirty = true; /* the answer may still come: drain it if the engine is reused */
            break;
        }
        uint64_t until = deadline;
        if (e->cand && e->cand_deadline < until)
            until = e->cand_deadline;
        if (until - now > AT_CANCEL_POLL_MS)
            until = now + AT_CANCEL_POLL_MS;
        ssize_t k = serial_read(e->s, buf, sizeof(buf), (int)(until - now));
        if (k < 0) {
            e->dead = true;
            resp->result = AT_RES_IO;
            str_copy(resp->err_text, "port gone", sizeof(resp->err_text));
            break;
        }
        if (k > 0)
            at_framer_feed(&e->fr, buf, (size_t)k, on_line, e);
    }
out:
    if (resp->result == AT_RES_TIMEOUT) {
        e->st.timeouts++;
        e->dirty = true;
        LOG_D("at", "%s: no final result within %u ms", cmd, timeout_ms);
    } else if (resp->result == AT_RES_IO) {
        e->st.errors++;
    } else {
        if (resp->result != AT_RES_OK)
            e->st.errors++;
        e->expect_echo = e->echo_seen;
        int sw = echo_switch(cmd);
        if (sw >= 0 && resp->result == AT_RES_OK)
            e->expect_echo = sw == 1;
    }
    e->state = ENG_IDLE;
    e->cmd = NULL;
    e->resp = NULL;
    e->busy = false;
    return resp->result;
}
