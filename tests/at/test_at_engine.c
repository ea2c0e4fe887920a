/* test_at_engine: the AT engine over a real pty pair. A responder thread plays the modem on the
 * master side from a script (expect a command line, send bytes, sleep, close), the test thread
 * runs at_command()/at_pump() on the slave through serial_open() exactly as the firmware does.
 * The final-result cases come from tests/data/at_replies.json (category framing_or_error, and
 * the USSD replies). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <stdint.h>
#include <unistd.h>

#include "common/common.h"
#include "modem/at.h"
#include "testlib.h"

/* ---- the scripted modem ---------------------------------------------------------------- */
enum op { OP_END = 0, OP_EXPECT, OP_SEND, OP_SLOW, OP_SLEEP, OP_CLOSE, OP_GARBAGE };
struct step {
    enum op op;
    const char *s;
    size_t len; /* 0: strlen(s) */
    int ms;
};
/* clang-format off */
#define X(c)  {OP_EXPECT, c, 0, 0}
#define S(b)  {OP_SEND, b, sizeof(b) - 1, 0}
#define SL(b) {OP_SLOW, b, sizeof(b) - 1, 0}
#define Z(t)  {OP_SLEEP, NULL, 0, t}
#define CL()  {OP_CLOSE, NULL, 0, 0}
#define GB(t) {OP_GARBAGE, NULL, 0, t} /* line noise for t ms */
#define END() {OP_END, NULL, 0, 0}
/* clang-format on */

struct rig {
    int m; /* master; -1 once the responder closed it */
    char name[64];
    struct serial *s;
    struct at_engine *e;
    const struct step *steps;
    pthread_t th;
    bool running;
    char fail[512];
    char rx[8192];
    size_t rxlen;
};

static void send_all(int fd, const char *b, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ssize_t k = write(fd, b + off, n - off);
        if (k > 0) {
            off += (size_t)k;
        } else {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            poll(&p, 1, 50);
        }
    }
}

/* Next command line ("...\r") from the engine, within 5 s. */
static bool read_cmd(struct rig *r, char *out, size_t outlen)
{
    uint64_t end = mono_ms() + 5000;
    for (;;) {
        char *cr = memchr(r->rx, '\r', r->rxlen);
        if (cr) {
            size_t n = (size_t)(cr - r->rx);
            str_copy(out, r->rx, n + 1 < outlen ? n + 1 : outlen);
            memmove(r->rx, cr + 1, r->rxlen - n - 1);
            r->rxlen -= n + 1;
            return true;
        }
        uint64_t now = mono_ms();
        if (now >= end || r->rxlen == sizeof(r->rx))
            return false;
        struct pollfd p = {.fd = r->m, .events = POLLIN};
        if (poll(&p, 1, (int)(end - now)) > 0) {
            ssize_t k = read(r->m, r->rx + r->rxlen, sizeof(r->rx) - r->rxlen);
            if (k > 0)
                r->rxlen += (size_t)k;
            else if (k < 0 && errno != EAGAIN)
                return false;
        }
    }
}

static void *responder(void *arg)
{
    struct rig *r = arg;
    for (const struct step *st = r->steps; st->op != OP_END; st++) {
        size_t len = st->len ? st->len : (st->s ? strlen(st->s) : 0);
        switch (st->op) {
        case OP_EXPECT: {
            char got[1100];
            if (!read_cmd(r, got, sizeof(got))) {
                snprintf(r->fail, sizeof(r->fail), "expected \"%s\", got nothing", st->s);
                return NULL;
            }
            if (strcmp(got, st->s) != 0) {
                snprintf(r->fail, sizeof(r->fail), "expected \"%.200s\", got \"%.200s\"", st->s,
                         got);
                return NULL;
            }
            break;
        }
        case OP_SEND:
            send_all(r->m, st->s, len);
            break;
        case OP_SLOW:
            for (size_t i = 0; i < len; i++) {
                send_all(r->m, st->s + i, 1);
                usleep(300); /* let the reader see every byte in its own read */
            }
            break;
        case OP_SLEEP:
            usleep((useconds_t)st->ms * 1000);
            break;
        case OP_GARBAGE: {
            /* binary noise with line ends and quotes but no letters that could form a final
             * result code: 1 KB every 5 ms */
            static const char alphabet[] = "\0\x01\x1b\x7f\x80\xfe\xff\"\"\r\n\r\nx+:,0123";
            uint32_t rng = 12345;
            char chunk[1024];
            uint64_t end = mono_ms() + (uint64_t)st->ms;
            while (mono_ms() < end) {
                for (size_t i = 0; i < sizeof(chunk); i++) {
                    rng = rng * 1103515245u + 12345u;
                    chunk[i] = alphabet[(rng >> 16) % (sizeof(alphabet) - 1)];
                }
                send_all(r->m, chunk, sizeof(chunk));
                usleep(5000);
            }
            break;
        }
        case OP_CLOSE:
            close(r->m);
            r->m = -1;
            break;
        case OP_END:
            break;
        }
    }
    return NULL;
}

static void rig_open(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    int sl;
    if (openpty(&r->m, &sl, r->name, NULL, NULL) != 0) {
        perror("openpty");
        exit(1);
    }
    close(sl);
    fcntl(r->m, F_SETFL, fcntl(r->m, F_GETFL) | O_NONBLOCK);
    char err[256];
    if (serial_open(r->name, 115200, &r->s, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    r->e = at_engine_new(r->s);
    if (!r->e)
        exit(1);
}

static void rig_play(struct rig *r, const struct step *steps)
{
    r->steps = steps;
    r->fail[0] = '\0';
    pthread_create(&r->th, NULL, responder, r);
    r->running = true;
}

/* Wait for the script to end; a failed expectation is a test failure. */
static void rig_wait(struct rig *r, const char *what)
{
    if (!r->running)
        return;
    pthread_join(r->th, NULL);
    r->running = false;
    CHECK_MSG(r->fail[0] == '\0', "%s: modem script: %s", what, r->fail);
}

static void rig_close(struct rig *r)
{
    rig_wait(r, "close");
    at_engine_free(r->e);
    serial_close(r->s);
    if (r->m >= 0)
        close(r->m);
}

/* ---- URC sinks ------------------------------------------------------------------------- */
struct sink {
    unsigned n;
    char last[AT_LINE_MAX + 1];
};
static void urc_sink(void *ctx, const char *line)
{
    struct sink *k = ctx;
    k->n++;
    str_copy(k->last, line, sizeof(k->last));
}

static uint64_t ms_since(uint64_t t0)
{
    return mono_ms() - t0;
}

/* ---- scenarios ------------------------------------------------------------------------- */

static void test_echo_on_off(void)
{
    struct rig r;
    struct at_response resp;
    rig_open(&r);
    static const struct step s[] = {
        X("AT+CSQ"),
        S("\r\n+CSQ: 20,99\r\n\r\nOK\r\n"), /* echo off */
        X("AT+CSQ"),
        S("AT+CSQ\r\r\n+CSQ: 21,99\r\n\r\nOK\r\n"), /* echo on */
        X("ATI"),
        S("ATI\r\r\nManufacturer: SIMCOM INCORPORATED\r\nModel: SIMCOM_SIM7600E-H\r\n"
          "Revision: SIM7600M22_V2.0\r\nIMEI: 867584030000000\r\n+GCAP: +CGSM\r\n"
          "\r\nOK\r\n"),
        END()};
    rig_play(&r, s);
    CHECK_INT(at_command(r.e, "AT+CSQ", 1000, &resp), AT_RES_OK);
    CHECK_INT(resp.nlines, 1);
    CHECK_STR(resp.lines[0], "+CSQ: 20,99");
    CHECK_INT(resp.err_code, -1);
    CHECK(!resp.overflow);
    CHECK_INT(at_command(r.e, "AT+CSQ", 1000, &resp), AT_RES_OK);
    CHECK_INT(resp.nlines, 1);
    CHECK_STR(resp.lines[0], "+CSQ: 21,99");
    CHECK_INT(at_command(r.e, "ATI", 1000, &resp), AT_RES_OK);
    CHECK_INT(resp.nlines, 5);
    CHECK_STR(resp.lines[0], "Manufacturer: SIMCOM INCORPORATED");
    CHECK_STR(resp.lines[4], "+GCAP: +CGSM");
    struct at_stats st;
    at_get_stats(r.e, &st);
    CHECK_INT(st.commands, 3);
    CHECK_INT(st.timeouts, 0);
    CHECK_INT(st.errors, 0);
    rig_close(&r);
}

static void test_errors(void)
{
    struct rig r;
    struct at_response resp;
    rig_open(&r);
    static const struct step s[] = {
        X("AT+CPIN?"),  S("AT+CPIN?\r\r\n+CME ERROR: 10\r\n"),
        X("AT+CIMI"),   S("\r\n+CME ERROR: SIM not inserted\r\n"), /* at_replies.json #268 */
        X("AT+CMGS=1"), S("\r\n+CMS ERROR: 500\r\n"),
        X("ATD*99#"),   S("\r\nNO CARRIER\r\n"),
        X("AT+FOO"),    S("AT+FOO\r\r\nERROR\r\n"),
        END()};
    rig_play(&r, s);
    CHECK_INT(at_command(r.e, "AT+CPIN?", 1000, &resp), AT_RES_CME_ERROR);
    CHECK_INT(resp.err_code, 10);
    CHECK_STR(resp.err_text, "+CME ERROR: 10");
    CHECK_INT(at_command(r.e, "AT+CIMI", 1000, &resp), AT_RES_CME_ERROR);
    CHECK_INT(resp.err_code, -1);
    CHECK_STR(resp.err_text, "+CME ERROR: SIM not inserted");
    CHECK_INT(at_command(r.e, "AT+CMGS=1", 1000, &resp), AT_RES_CMS_ERROR);
    CHECK_INT(resp.err_code, 500);
    CHECK_INT(at_command(r.e, "ATD*99#", 1000, &resp), AT_RES_NO_CARRIER);
    CHECK_INT(at_command(r.e, "AT+FOO", 1000, &resp), AT_RES_ERROR);
    CHECK_INT(resp.nlines, 0);
    struct at_stats st;
    at_get_stats(r.e, &st);
    CHECK_INT(st.errors, 5);
    rig_close(&r);
}

static void test_urcs(void)
{
    struct rig r;
    struct at_response resp;
    rig_open(&r);
    struct sink rdy = {0}, cpin = {0}, sms = {0}, pb = {0}, creg = {0}, cusd = {0};
    CHECK_INT(at_add_urc(r.e, "RDY", false, urc_sink, &rdy), 0);
    CHECK_INT(at_add_urc(r.e, "+CPIN:", false, urc_sink, &cpin), 0);
    CHECK_INT(at_add_urc(r.e, "SMS DONE", false, urc_sink, &sms), 0);
    CHECK_INT(at_add_urc(r.e, "PB DONE", false, urc_sink, &pb), 0);
    CHECK_INT(at_add_urc(r.e, "+CREG:", false, urc_sink, &creg), 0);
    CHECK_INT(at_add_urc(r.e, "+CUSD:", true, urc_sink, &cusd), 0);
    CHECK_INT(at_add_urc(r.e, "", false, urc_sink, &cusd), -1);
    static const struct step s[] = {
        /* URCs before the echo, inside the reply, after OK */
        X("AT+CSQ"), S("\r\nRDY\r\n\r\n+CPIN: READY\r\n"),
        S("AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nSMS DONE\r\n\r\n+CREG: 1\r\n\r\nOK\r\n\r\nPB DONE\r\n"),
        /* +CREG: during AT+CREG? is the reply; +CPIN: still a URC */
        X("AT+CREG?"), S("AT+CREG?\r\r\n+CREG: 0,1\r\n\r\n+CPIN: READY\r\n\r\nOK\r\n"),
        /* always: +CUSD: during AT+CUSD is still a URC, before OK (#257) and after (#249) */
        X("AT+CUSD=1,\"*100#\",15"),
        S("AT+CUSD=1,\"*100#\",15\r\r\n+CUSD: 1,\"Hallo daar\",15\r\nOK\r\n"),
        X("AT+CUSD=1,\"*100#\",15"), S("AT+CUSD=1,\"*100#\",15\r\r\nOK\r\n"), Z(50),
        S("+CUSD: 2,\"You have the following remaining balances:\r\n0 free minutes\r\n20 MORE "
          "Weekend minutes \",15\r\n"),
        /* idle: URCs and an unknown line */
        X("AT"), S("AT\r\r\nOK\r\n"), Z(100),
        S("\r\n+CREG: 1,\"1A2B\",\"01C3\",7\r\n\r\nHELLO\r\n"), END()};
    rig_play(&r, s);
    CHECK_INT(at_command(r.e, "AT+CSQ", 1000, &resp), AT_RES_OK);
    CHECK_INT(resp.nlines, 1);
    CHECK_STR(resp.lines[0], "+CSQ: 20,99");
    CHECK_INT(at_pump(r.e, 100), 0 + (pb.n == 0)); /* PB DONE may come in the same read */
    CHECK_INT(rdy.n, 1);
    CHECK_INT(cpin.n, 1);
    CHECK_INT(sms.n, 1);
    CHECK_INT(creg.n, 1);
    CHECK_STR(creg.last, "+CREG: 1");
    CHECK_INT(pb.n, 1);

    CHECK_INT(at_command(r.e, "AT+CREG?", 1000, &resp), AT_RES_OK);
    CHECK_INT(resp.nlines, 1);
    CHECK_STR(resp.lines[0], "+CREG: 0,1");
    CHECK_INT(creg.n, 1);
    CHECK_INT(cpin.n, 2);

    CHECK_INT(at_command(r.e, "AT+CUSD=1,\"*100#\",15", 1000, &resp), AT_RES_OK);
    CHECK_INT(resp.nlines, 0);
    CHECK_INT(cusd.n, 1);
    CHECK_STR(cusd.last, "+CUSD: 1,\"Hallo daar\",15");
    CHECK_INT(at_command(r.e, "AT+CUSD=1,\"*100#\",15", 1000, &resp), AT_RES_OK);
    CHECK_INT(resp.nlines, 0);
    uint64_t t0 = mono_ms();
    while (cusd.n < 2 && ms_since(t0) < 1000)
        CHECK(at_pump(r.e, 50) >= 0);
    CHECK_INT(cusd.n, 2);
    CHECK_STR(cusd.last, "+CUSD: 2,\"You have the following remaining balances:\n0 free minutes\n"
                         "20 MORE Weekend minutes \",15");
    /* idle pump: a URC handler hit, one unknown line counted as garbage */
    CHECK_INT(at_command(r.e, "AT", 1000, &resp), AT_RES_OK);
    struct at_stats st0, st1;
    at_get_stats(r.e, &st0);
    t0 = mono_ms();
    int got = 0;
    while (got < 1 && ms_since(t0) < 1000) {
        int k = at_pump(r.e, 100);
        CHECK(k >= 0);
        got += k;
    }
    CHECK_INT(got, 1);
    CHECK_INT(creg.n, 2);
    CHECK_STR(creg.last, "+CREG: 1,\"1A2B\",\"01C3\",7");
    at_get_stats(r.e, &st1);
    CHECK_INT(st1.urcs - st0.urcs, 1);
    CHECK_INT(st1.garbage_lines - st0.garbage_lines, 1);
    rig_close(&r);
}

static void test_bytewise_and_garbage(void)
{
    struct rig r;
    struct at_response resp;
    rig_open(&r);
    static const struct step s[] = {
        X("AT+CPSI?"),
        SL("AT+CPSI?\r\r\n+CPSI: LTE,Online,250-01,0x1A2B,26543617,300,EUTRAN-BAND3,1850,5,5,"
           "-94,-987,-681,15\r\n\r\nOK\r\n"),
        X("AT+CSQ"),
        S("\r\n\x00\xff+CSQ: 2\x00"
          "0,99\r\n\r\nO\x00K\r\n"),
        X("AT+CMGS=\"+79161234567\""), S("AT+CMGS=\"+79161234567\"\r\r\n> "),
        /* a partial garbage line left waiting must not glue onto the next echo */
        X("AT"), S("AT\r\r\nOK\r\n\r\n\x01partial-garbage"), X("AT+CSQ"),
        S("AT+CSQ\r\r\n+CSQ: 5,99\r\n\r\nOK\r\n"), END()};
    rig_play(&r, s);
    CHECK_INT(at_command(r.e, "AT+CPSI?", 3000, &resp), AT_RES_OK);
    CHECK_INT(resp.nlines, 1);
    CHECK_STR(resp.lines[0], "+CPSI: LTE,Online,250-01,0x1A2B,26543617,300,EUTRAN-BAND3,1850,5,5,"
                             "-94,-987,-681,15");
    CHECK_INT(at_command(r.e, "AT+CSQ", 1000, &resp), AT_RES_OK);
    CHECK_INT(resp.nlines, 1);
    CHECK_STR(resp.lines[0], "+CSQ: 20,99");
    CHECK_INT(at_command(r.e, "AT+CMGS=\"+79161234567\"", 1000, &resp), AT_RES_OK);
    CHECK_INT(resp.nlines, 1);
    CHECK_STR(resp.lines[0], "> ");
    CHECK_INT(at_command(r.e, "AT", 1000, &resp), AT_RES_OK);
    usleep(50000);
    uint64_t t0 = mono_ms();
    CHECK_INT(at_command(r.e, "AT+CSQ", 1000, &resp), AT_RES_OK);
    CHECK_MSG(ms_since(t0) < 200, "took %llu ms", (unsigned long long)ms_since(t0));
    CHECK_INT(resp.nlines, 1);
    CHECK_STR(resp.lines[0], "+CSQ: 5,99");
    rig_close(&r);
}

static void test_timeout_and_stale(void)
{
    struct rig r;
    struct at_response resp;
    rig_open(&r);
    static const struct step s[] = {
        /* silent modem */
        X("AT+CGSN"), X("AT"), S("AT\r\r\nOK\r\n"),
        /* echo on: the answer to the timed-out command arrives after the next one was sent */
        X("AT+CGSN"), S("AT+CGSN\r\r\n"), X("AT+CSQ"), S("\r\n867584030000000\r\n\r\nOK\r\n"),
        Z(10), S("AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n"),
        /* same with a stale error */
        X("AT+CGSN"), X("AT+COPS?"), S("\r\n+CME ERROR: 100\r\n"),
        S("AT+COPS?\r\r\n+COPS: 0,0,\"MTS RUS\",7\r\n\r\nOK\r\n"), END()};
    rig_play(&r, s);
    uint64_t t0 = mono_ms();
    CHECK_INT(at_command(r.e, "AT+CGSN", 500, &resp), AT_RES_TIMEOUT);
    uint64_t dt = ms_since(t0);
    CHECK_MSG(dt >= 500 && dt <= 600, "timeout took %llu ms", (unsigned long long)dt);
    CHECK_INT(resp.nlines, 0);
    CHECK_INT(at_command(r.e, "AT", 1000, &resp), AT_RES_OK);

    CHECK_INT(at_command(r.e, "AT+CGSN", 300, &resp), AT_RES_TIMEOUT);
    CHECK_INT(at_command(r.e, "AT+CSQ", 2000, &resp), AT_RES_OK);
    CHECK_INT(resp.nlines, 1);
    CHECK_STR(resp.lines[0], "+CSQ: 20,99");

    CHECK_INT(at_command(r.e, "AT+CGSN", 300, &resp), AT_RES_TIMEOUT);
    CHECK_INT(at_command(r.e, "AT+COPS?", 2000, &resp), AT_RES_OK);
    CHECK_INT(resp.nlines, 1);
    CHECK_STR(resp.lines[0], "+COPS: 0,0,\"MTS RUS\",7");
    struct at_stats st;
    at_get_stats(r.e, &st);
    CHECK_INT(st.timeouts, 3);
    CHECK(st.garbage_lines >= 3);
    rig_close(&r);

    /* echo off: a late answer within the drain window is read and dropped before sending */
    rig_open(&r);
    static const struct step s2[] = {X("AT+CGSN"),
                                     Z(380),
                                     S("\r\n867584030000000\r\n\r\nOK\r\n"),
                                     X("AT+CSQ"),
                                     S("\r\n+CSQ: 20,99\r\n\r\nOK\r\n"),
                                     END()};
    rig_play(&r, s2);
    CHECK_INT(at_command(r.e, "AT+CGSN", 300, &resp), AT_RES_TIMEOUT);
    CHECK_INT(at_command(r.e, "AT+CSQ", 2000, &resp), AT_RES_OK);
    CHECK_INT(resp.nlines, 1);
    CHECK_STR(resp.lines[0], "+CSQ: 20,99");
    rig_close(&r);
}

static void test_echo_changes(void)
{
    struct rig r;
    struct at_response resp;
    rig_open(&r);
    static const struct step s[] = {
        X("AT"), S("AT\r\r\nOK\r\n"),
        /* the modem rebooted with echo off: the answer stands after the echo grace */
        X("AT+CSQ"), S("\r\n+CSQ: 20,99\r\n\r\nOK\r\n"), X("AT+COPS?"),
        S("\r\n+COPS: 0\r\n\r\nOK\r\n"), X("ATE1"), S("ATE1\r\r\nOK\r\n"), X("AT+CGMI"),
        S("\r\nSIMCOM INCORPORATED\r\n\r\nOK\r\n"), X("ATE0"), S("ATE0\r\r\nOK\r\n"), X("AT+CSQ"),
        S("\r\n+CSQ: 1,2\r\n\r\nOK\r\n"), END()};
    rig_play(&r, s);
    CHECK_INT(at_command(r.e, "AT", 1000, &resp), AT_RES_OK);
    uint64_t t0 = mono_ms();
    CHECK_INT(at_command(r.e, "AT+CSQ", 2000, &resp), AT_RES_OK);
    CHECK(ms_since(t0) < 1000);
    CHECK_INT(resp.nlines, 1);
    CHECK_STR(resp.lines[0], "+CSQ: 20,99");
    t0 = mono_ms();
    CHECK_INT(at_command(r.e, "AT+COPS?", 2000, &resp), AT_RES_OK);
    CHECK_MSG(ms_since(t0) < 150, "echo-off reply took %llu ms", (unsigned long long)ms_since(t0));
    CHECK_STR(resp.lines[0], "+COPS: 0");
    CHECK_INT(at_command(r.e, "ATE1", 1000, &resp), AT_RES_OK);
    /* echo expected again, but the answer comes without: taken at the command's deadline */
    t0 = mono_ms();
    CHECK_INT(at_command(r.e, "AT+CGMI", 150, &resp), AT_RES_OK);
    CHECK_MSG(ms_since(t0) >= 140 && ms_since(t0) < 250, "took %llu ms",
              (unsigned long long)ms_since(t0));
    CHECK_INT(resp.nlines, 1);
    CHECK_STR(resp.lines[0], "SIMCOM INCORPORATED");
    CHECK_INT(at_command(r.e, "ATE0", 1000, &resp), AT_RES_OK);
    t0 = mono_ms();
    CHECK_INT(at_command(r.e, "AT+CSQ", 2000, &resp), AT_RES_OK);
    CHECK_MSG(ms_since(t0) < 150, "after ATE0 took %llu ms", (unsigned long long)ms_since(t0));
    CHECK_STR(resp.lines[0], "+CSQ: 1,2");
    rig_close(&r);
}

/* A port spewing noise never stalls a command past its timeout nor breaks the next one. */
static void test_garbage_storm(void)
{
    struct rig r;
    struct at_response resp;
    rig_open(&r);
    static const struct step s[] = {
        X("AT+CSQ"),           GB(800), X("AT"), S("\r\nAT\r\r\nOK\r\n"), X("AT+CGMR"), GB(100),
        S("\"\r\n\r\nOK\r\n"), END()};
    rig_play(&r, s);
    uint64_t t0 = mono_ms();
    CHECK_INT(at_command(r.e, "AT+CSQ", 500, &resp), AT_RES_TIMEOUT);
    uint64_t dt = ms_since(t0);
    CHECK_MSG(dt >= 500 && dt <= 600, "timeout under noise took %llu ms", (unsigned long long)dt);
    CHECK(resp.nlines <= AT_RESP_MAX_LINES);
    t0 = mono_ms();
    CHECK_INT(at_command(r.e, "AT", 3000, &resp), AT_RES_OK);
    CHECK(ms_since(t0) < 2000);
    CHECK_INT(resp.nlines, 0);
    /* noise inside a reply, ending in an open quote: the OK still ends the command */
    CHECK_INT(at_command(r.e, "AT+CGMR", 3000, &resp), AT_RES_OK);
    for (unsigned i = 0; i < resp.nlines; i++)
        CHECK(strlen(resp.lines[i]) <= AT_LINE_MAX);
    struct at_stats st;
    at_get_stats(r.e, &st);
    CHECK(st.garbage_lines > 0);
    rig_close(&r);
}

static char big[16384];

static void test_overflow(void)
{
    struct rig r;
    struct at_response resp;
    rig_open(&r);
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "+COPS: (%d,\"OP%d\")\r\n", i, i);
    n += (size_t)snprintf(big + n, sizeof(big) - n, "OK\r\n");
    static char big2[8000];
    size_t n2 = 0;
    for (int i = 0; i < 6; i++) {
        memset(big2 + n2, 'a' + i, 1000);
        n2 += 1000;
        memcpy(big2 + n2, "\r\n", 2);
        n2 += 2;
    }
    memcpy(big2 + n2, "OK\r\n", 4);
    n2 += 4;
    static char big3[2100];
    memset(big3, 'z', 2000);
    memcpy(big3 + 2000, "\r\nOK\r\n", 7);
    const struct step s[] = {
        X("AT+COPS=?"), {OP_SEND, big, n, 0},  X("AT+CLAC"), {OP_SEND, big2, n2, 0},
        X("AT+X"),      {OP_SEND, big3, 0, 0}, END()};
    rig_play(&r, s);
    CHECK_INT(at_command(r.e, "AT+COPS=?", 2000, &resp), AT_RES_OK);
    CHECK_INT(resp.nlines, AT_RESP_MAX_LINES);
    CHECK(resp.overflow);
    CHECK_STR(resp.lines[31], "+COPS: (31,\"OP31\")");
    CHECK_INT(at_command(r.e, "AT+CLAC", 2000, &resp), AT_RES_OK);
    CHECK(resp.overflow);
    CHECK_INT(resp.nlines, 4);
    for (unsigned i = 0; i < resp.nlines; i++) {
        CHECK_INT(strlen(resp.lines[i]), 1000);
        CHECK(resp.lines[i] >= resp.buf && resp.lines[i] + 1000 < resp.buf + sizeof(resp.buf));
    }
    CHECK_INT(at_command(r.e, "AT+X", 2000, &resp), AT_RES_OK);
    CHECK(resp.overflow);
    CHECK_INT(resp.nlines, 1);
    CHECK_INT(strlen(resp.lines[0]), AT_LINE_MAX);
    struct at_stats st;
    at_get_stats(r.e, &st);
    CHECK_INT(st.truncated_lines, 1);
    rig_close(&r);
}

static struct at_engine *nested_e;
static enum at_result nested_res = AT_RES_OK;
static void nested_urc(void *ctx, const char *line)
{
    struct at_response *r = ctx;
    nested_res = at_command(nested_e, "AT+CLCC", 100, r);
}

static void test_misuse_and_vanish(void)
{
    struct rig r;
    struct at_response resp;
    static struct at_response inner;
    rig_open(&r);
    CHECK_INT(at_command(r.e, "", 100, &resp), AT_RES_ERROR);
    CHECK_INT(at_command(r.e, "AT\r+CSQ", 100, &resp), AT_RES_ERROR);
    nested_e = r.e;
    CHECK_INT(at_add_urc(r.e, "RING", false, nested_urc, &inner), 0);
    static const struct step s[] = {
        X("AT"), S("AT\r\r\nRING\r\n\r\nOK\r\n"), X("AT+CSQ"), Z(20), CL(), END()};
    rig_play(&r, s);
    CHECK_INT(at_command(r.e, "AT", 1000, &resp), AT_RES_OK);
    CHECK_INT(nested_res, AT_RES_ERROR); /* refused, not interleaved */
    uint64_t t0 = mono_ms();
    CHECK_INT(at_command(r.e, "AT+CSQ", 3000, &resp), AT_RES_IO);
    CHECK(ms_since(t0) < 1000);
    rig_wait(&r, "vanish");
    CHECK_INT(at_pump(r.e, 100), -1);
    CHECK_INT(at_command(r.e, "AT", 100, &resp), AT_RES_IO);
    char b[16];
    CHECK_INT(serial_read(r.s, b, sizeof(b), 100), -1);
    struct at_stats st;
    at_get_stats(r.e, &st);
    CHECK_INT(st.errors, 2);
    rig_close(&r);
}

/* Every final-result case of at_replies.json, with echo off and on. */
static void test_corpus(void)
{
    json_error_t jerr;
    json_t *root = json_load_file(CORRIDOR_TEST_DATA "/at_replies.json", 0, &jerr);
    CHECK_MSG(root != NULL, "at_replies.json: %s", jerr.text);
    if (!root)
        return;
    struct rig r;
    unsigned ncases = 0;
    for (int echo = 0; echo < 2; echo++) {
        rig_open(&r);
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(root, "cases"), i, c)
        {
            int id = (int)json_integer_value(json_object_get(c, "id"));
            const char *resp_txt = json_string_value(json_object_get(c, "response"));
            json_t *exp = json_object_get(c, "expected");
            if (!resp_txt || !((id >= 130 && id <= 158) || id == 123 || id == 268 ||
                               (id >= 258 && id <= 261) || id == 267))
                continue;
            bool found = true, is_err = true;
            if (json_object_get(exp, "final_response_found")) {
                found = json_is_true(json_object_get(exp, "final_response_found"));
                is_err = json_is_true(json_object_get(exp, "is_error"));
            }
            {
                static char out[2048], line[64];
                snprintf(line, sizeof(line), "AT+T%d", id);
                snprintf(out, sizeof(out), "%s%s%s", echo ? line : "", echo ? "\r" : "", resp_txt);
                if (!strstr(resp_txt, "\r\n"))
                    str_appendf(out, sizeof(out), &(size_t){strlen(out)}, "\r\n");
                const struct step s[] = {X(line), {OP_SEND, out, 0, 0}, END()};
                rig_play(&r, s);
                struct at_response resp;
                enum at_result res = at_command(r.e, line, found ? 1000 : 250, &resp);
                rig_wait(&r, line);
                ncases++;
                if (!found)
                    CHECK_MSG(res == AT_RES_TIMEOUT, "case %d echo %d: %s", id, echo,
                              at_result_name(res));
                else if (!is_err)
                    CHECK_MSG(res == AT_RES_OK, "case %d echo %d: %s", id, echo,
                              at_result_name(res));
                else
                    CHECK_MSG(res != AT_RES_OK && res != AT_RES_TIMEOUT && res != AT_RES_IO,
                              "case %d echo %d: %s", id, echo, at_result_name(res));
                /* a line that is not a final result (UNKNOWN COMMAND, "+CME ERROR:") is kept */
                CHECK_MSG(resp.nlines == (found ? 0u : 1u), "case %d echo %d: %u lines", id, echo,
                          resp.nlines);
                if (id == 268) {
                    CHECK_INT(res, AT_RES_CME_ERROR);
                    CHECK_INT(resp.err_code, -1);
                    CHECK_STR(resp.err_text, "+CME ERROR: SIM not inserted");
                }
                if (id == 138)
                    CHECK_INT(resp.err_code, 123);
                if (id == 142)
                    CHECK_INT(resp.err_code, 456);
                if (id == 145)
                    CHECK_INT(resp.err_code, 5);
            }
        }
        rig_close(&r);
    }
    CHECK_INT(ncases, 2 * 36);
    json_decref(root);
}

int main(void)
{
    log_init("test_at_engine", LOGL_WARN, false);
    test_echo_on_off();
    test_errors();
    test_urcs();
    test_bytewise_and_garbage();
    test_timeout_and_stale();
    test_echo_changes();
    test_overflow();
    test_garbage_storm();
    test_misuse_and_vanish();
    test_corpus();
    return test_summary();
}
