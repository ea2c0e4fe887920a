/* test_modemsim: the simulator itself, exercised the way the appliance uses it: spawn the built
 * corridor-modemsim with a small scenario and --speed, open the symlinked pty with plain termios
 * (no modem/ code at all) and check the exact reply bytes, the URCs and the faults. */
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#ifndef MODEMSIM_BIN
#error "MODEMSIM_BIN must name the corridor-modemsim binary"
#endif

#define SPEED 10.0 /* scenario seconds per real second */

static char g_dir[64];
static char g_ctl[100];
static pid_t g_pid = -1;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* printable rendering of bytes for failure messages */
static const char *esc(const char *s, size_t n)
{
    static char out[4][4096];
    static int k;
    char *o = out[k++ % 4];
    size_t j = 0;
    for (size_t i = 0; i < n && j + 5 < sizeof(out[0]); i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r')
            j += (size_t)snprintf(o + j, 5, "\\r");
        else if (c == '\n')
            j += (size_t)snprintf(o + j, 5, "\\n");
        else if (c < 0x20 || c >= 0x7f)
            j += (size_t)snprintf(o + j, 5, "\\x%02x", c);
        else
            o[j++] = (char)c;
    }
    o[j] = '\0';
    return o;
}

#define CHECK_BYTES(got, glen, want)                                                               \
    do {                                                                                           \
        const char *w_ = (want);                                                                   \
        size_t wl_ = strlen(w_);                                                                   \
        CHECK_MSG((glen) == wl_ && memcmp((got), w_, wl_) == 0, "got \"%s\", expected \"%s\"",     \
                  esc((got), (glen)), esc(w_, wl_));                                               \
    } while (0)

struct buf {
    char b[16384];
    size_t n;
};

/* Read what arrives for up to ms, stopping early once the buffer ends with stop (if given). */
static void rd(int fd, struct buf *b, int ms, const char *stop)
{
    b->n = 0;
    long long end = now_ms() + ms;
    for (;;) {
        long long left = end - now_ms();
        if (left <= 0)
            break;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0)
            break;
        if (p.revents & (POLLHUP | POLLERR) && !(p.revents & POLLIN))
            break;
        ssize_t r = read(fd, b->b + b->n, sizeof(b->b) - 1 - b->n);
        if (r <= 0)
            break;
        b->n += (size_t)r;
        b->b[b->n] = '\0';
        if (stop && b->n >= strlen(stop) && strcmp(b->b + b->n - strlen(stop), stop) == 0)
            break;
    }
    b->b[b->n] = '\0';
}

/* Read until a final result code ends the buffer (OK / ERROR / +CME ERROR: x), max 1.5 s. */
static void rd_final(int fd, struct buf *b)
{
    b->n = 0;
    long long end = now_ms() + 1500;
    while (now_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t r = read(fd, b->b + b->n, sizeof(b->b) - 1 - b->n);
        if (r <= 0)
            break;
        b->n += (size_t)r;
        b->b[b->n] = '\0';
        const char *last = b->b;
        /* the last complete line */
        if (b->n < 2 || b->b[b->n - 1] != '\n')
            continue;
        for (const char *p2 = b->b + b->n - 2; p2 > b->b; p2--)
            if (*p2 == '\n') {
                last = p2 + 1;
                break;
            }
        if (!strcmp(last, "OK\r\n") || !strcmp(last, "ERROR\r\n") ||
            !strncmp(last, "+CME ERROR:", 11))
            break;
    }
}

static void tx(int fd, const char *s)
{
    size_t n = strlen(s);
    if (write(fd, s, n) != (ssize_t)n)
        fprintf(stderr, "short write\n");
}

/* Send cmd + CR and return the reply bytes (echo included if on). */
static struct buf *at(int fd, const char *cmd)
{
    static struct buf b;
    tx(fd, cmd);
    tx(fd, "\r");
    rd_final(fd, &b);
    return &b;
}

#define CHECK_AT(fd, cmd, want)                                                                    \
    do {                                                                                           \
        struct buf *r_ = at((fd), (cmd));                                                          \
        CHECK_BYTES(r_->b, r_->n, (want));                                                         \
    } while (0)

static int open_port(const char *path)
{
    int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct termios t;
    if (tcgetattr(fd, &t) == 0) {
        cfmakeraw(&t);
        tcsetattr(fd, TCSANOW, &t); /* TCSANOW: keep what the modem already sent */
    }
    return fd;
}

static bool wait_path(const char *path, bool present, int ms)
{
    long long end = now_ms() + ms;
    struct stat st;
    while (now_ms() < end) {
        if ((lstat(path, &st) == 0) == present)
            return true;
        sleep_ms(10);
    }
    return false;
}

static char *ctl(const char *cmd)
{
    static char reply[65536];
    reply[0] = '\0';
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, g_ctl, strlen(g_ctl) + 1); /* g_ctl is shorter than sun_path */
    if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (s >= 0)
            close(s);
        return reply;
    }
    tx(s, cmd);
    tx(s, "\n");
    size_t n = 0;
    long long end = now_ms() + 2000;
    while (now_ms() < end && n < sizeof(reply) - 1) {
        struct pollfd p = {s, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = read(s, reply + n, sizeof(reply) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        reply[n] = '\0';
        if (reply[n - 1] == '\n')
            break;
    }
    close(s);
    return reply;
}

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", g_dir, name);
}

#define SCENARIO_FMT                                                                               \
    "{\"duration_s\": 1000, \"loop\": true, \"modems\": ["                                         \
    "{\"name\":\"a\",\"path\":\"%s/a\",\"boot_s\":5,\"reboot_s\":2,"                               \
    "\"identity\":{\"imei\":\"862636055891234\",\"iccid\":\"89701010000000000011\","               \
    "\"imsi\":\"250011234567801\"},"                                                               \
    "\"operator\":{\"name\":\"MTS RUS\",\"short\":\"MTS\",\"mcc\":\"250\",\"mnc\":\"01\"},"        \
    "\"ussd\":[{\"code\":\"*100#\",\"text\":\"Balance: 123.45 rub\",\"delay_s\":1.5},"             \
    "{\"code\":\"*102#\",\"text\":\"Баланс 5\"},"                                            \
    "{\"code\":\"*103#\",\"text\":\"hello\",\"encoding\":\"gsm7_packed\"},"                        \
    "{\"code\":\"*104#\",\"text\":\"Bal: 5\\nBye\",\"encoding\":\"gsm7\",\"m\":1},"                \
    "{\"code\":\"*105#\",\"text\":\"Hi\",\"order\":\"before_ok\",\"m\":2}],"                       \
    "\"timeline\":[{\"t\":0,\"reg\":\"home\",\"rat\":\"lte\",\"rsrp\":-98.7,\"rsrq\":-9.4,"        \
    "\"sinr\":14,\"rssi\":-65.1,\"tac\":6699,\"cell_id\":26460673,\"pci\":252,"                    \
    "\"band\":\"EUTRAN-BAND3\",\"channel\":1300,\"bw\":5,\"fix\":true,\"lat\":55.752057,"          \
    "\"lon\":37.627572,\"alt\":156.2,\"speed_kmh\":134.3,\"course\":45.0}]},"                      \
    "{\"name\":\"b\",\"path\":\"%s/b\",\"boot_s\":0,\"sim\":\"absent\",\"echo\":false,"            \
    "\"first_cpsi_error\":false,"                                                                  \
    "\"operator\":{\"name\":\"MegaFon\",\"mcc\":\"250\",\"mnc\":\"02\"},"                          \
    "\"timeline\":[{\"t\":0,\"rat\":\"lte\"}]},"                                                   \
    "{\"name\":\"c\",\"path\":\"%s/c\",\"boot_s\":0,\"family\":\"quectel\",\"echo\":false,"        \
    "\"reboot_s\":3,\"reboot_vanish\":true,"                                                       \
    "\"operator\":{\"name\":\"Beeline\",\"mcc\":\"250\",\"mnc\":\"99\"},"                          \
    "\"timeline\":[{\"t\":0,\"rat\":\"lte\",\"rsrp\":-101,\"rsrq\":-11,\"rssi\":-70,"              \
    "\"sinr\":8,\"tac\":3898,\"cell_id\":20011521,\"pci\":410,\"band\":\"EUTRAN-BAND20\","         \
    "\"channel\":6300}]},"                                                                         \
    "{\"name\":\"d\",\"path\":\"%s/d\",\"boot_s\":0,\"echo\":false,\"reboot_s\":1,"                \
    "\"operator\":{\"name\":\"Tele2\",\"mcc\":\"250\",\"mnc\":\"20\"},"                            \
    "\"timeline\":[{\"t\":0,\"rsrp\":-80},{\"t\":1000,\"rsrp\":-120}],"                            \
    "\"faults\":[{\"kind\":\"silence\",\"start\":0,\"duration\":900}]}"                            \
    "]}\n"

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static int start_sim(void)
{
    char sc[8192], file[128], log[128];
    snprintf(sc, sizeof(sc), SCENARIO_FMT, g_dir, g_dir, g_dir, g_dir);
    snprintf(file, sizeof(file), "%s/scenario.json", g_dir);
    snprintf(log, sizeof(log), "%s/sim.log", g_dir);
    snprintf(g_ctl, sizeof(g_ctl), "%.80s/ctl.sock", g_dir);
    if (write_file(file, sc) < 0)
        return -1;
    /* posix_spawn, not fork: a forked child of a qemu-user process can deadlock in the
     * emulator before it reaches exec (the arm64 unit tests run under qemu-aarch64) */
    static char emu[256];
    char *argv[16];
    int n = 0;
#ifdef MODEMSIM_EMULATOR
    snprintf(emu, sizeof(emu), "%s", MODEMSIM_EMULATOR);
    char *save = NULL;
    for (char *tok = strtok_r(emu, " ", &save); tok && n < 8; tok = strtok_r(NULL, " ", &save))
        argv[n++] = tok;
#else
    (void)emu;
#endif
    char *const rest[] = {MODEMSIM_BIN, "--speed", "10", "--verbose", "--control", g_ctl, file};
    for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++)
        argv[n++] = rest[i];
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = posix_spawnp(&g_pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(stderr, "spawn %s: %s\n", argv[0], strerror(rc));
        g_pid = -1;
    }
    return g_pid > 0 ? 0 : -1;
}

/* ---- tests -------------------------------------------------------------------------------- */

/* ---- shape comparison with real captures (tests/data/at_replies.json) ---------------------- */

static json_t *g_corpus;

static const char *corpus_response(int id)
{
    json_t *cases = json_object_get(g_corpus, "cases");
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *c = json_array_get(cases, i);
        if (json_integer_value(json_object_get(c, "id")) == id)
            return json_string_value(json_object_get(c, "response"));
    }
    return NULL;
}

/* Field classes of the first line starting with prefix: h hex "0x..", n integer, f decimal,
 * m "a-b" pair, e empty, t text. "+CPSI: LTE,Online,250-01,0x1A2B,..." -> "ttmhn...". */
static void shape(const char *text, const char *prefix, char *out, size_t n)
{
    out[0] = '\0';
    const char *p = text ? strstr(text, prefix) : NULL;
    if (!p || n < 2)
        return;
    p += strlen(prefix);
    size_t o = 0;
    while (o + 1 < n) {
        size_t len = strcspn(p, ",\r\n");
        char f[128];
        snprintf(f, sizeof(f), "%.*s", (int)(len < 127 ? len : 127), p);
        char cls = 't';
        char *end;
        if (!f[0])
            cls = 'e';
        else if (!strncmp(f, "0x", 2))
            cls = 'h';
        else if (strtol(f, &end, 10), !*end)
            cls = 'n';
        else if (strtod(f, &end), !*end)
            cls = 'f';
        else if (strchr(f, '-') && strspn(f, "0123456789-") == strlen(f))
            cls = 'm';
        out[o++] = cls;
        p += len;
        if (*p != ',')
            break;
        p++;
    }
    out[o] = '\0';
}

static void test_boot_and_echo(int fd)
{
    struct buf b;
    /* boot_s 5 at x10: the URCs come ~0.5 s after start, after we opened the port */
    rd(fd, &b, 3000, "PB DONE\r\n");
    CHECK_BYTES(b.b, b.n, "\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nSMS DONE\r\n\r\nPB DONE\r\n");
    CHECK_BYTES(b.b, b.n, corpus_response(272)); /* a real SIM7600's power-on capture */
    /* echo on at boot: the echo is the command as typed with its CR, then the reply's CR LF */
    CHECK_AT(fd, "AT", "AT\r\r\nOK\r\n");
    CHECK_AT(fd, "at", "at\r\r\nOK\r\n");
    CHECK_AT(fd, "ATE0", "ATE0\r\r\nOK\r\n");
    CHECK_AT(fd, "AT", "\r\nOK\r\n");
    CHECK_AT(fd, "ATE1", "\r\nOK\r\n");
    CHECK_AT(fd, "AT+CSQ", "AT+CSQ\r\r\n+CSQ: 24,99\r\n\r\nOK\r\n");
    CHECK_AT(fd, "ATE0", "ATE0\r\r\nOK\r\n");
}

static void test_identity(int fd)
{
    CHECK_AT(fd, "ATI",
             "\r\nManufacturer: SIMCOM INCORPORATED\r\nModel: SIMCOM_SIM7600E-H\r\n"
             "Revision: LE20B04SIM7600M22\r\nIMEI: 862636055891234\r\n+GCAP: +CGSM\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+CGMI", "\r\nSIMCOM INCORPORATED\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+CGMM", "\r\nSIMCOM_SIM7600E-H\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+CGMR", "\r\n+CGMR: LE20B04SIM7600M22\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+CGSN", "\r\n862636055891234\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+CICCID", "\r\n+ICCID: 89701010000000000011\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+CIMI", "\r\n250011234567801\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+CPIN?", "\r\n+CPIN: READY\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+CSQ;+CGMI", "\r\n+CSQ: 24,99\r\n\r\nSIMCOM INCORPORATED\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+NOSUCH", "\r\nERROR\r\n");
    CHECK_AT(fd, "AT+CMEE=9", "\r\nERROR\r\n");
    CHECK_AT(fd, "AT+CMEE=1", "\r\nOK\r\n");
    CHECK_AT(fd, "AT+CMEE?", "\r\n+CMEE: 1\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+CMEE=9", "\r\n+CME ERROR: 50\r\n");
    CHECK_AT(fd, "AT+NOSUCH", "\r\nERROR\r\n"); /* unknown commands stay plain ERROR */
    CHECK_AT(fd, "AT+CMEE=0", "\r\nOK\r\n");
    /* an over-long line is refused, and the port keeps working */
    char longcmd[1500];
    memset(longcmd, 'A', sizeof(longcmd) - 1);
    longcmd[0] = 'A';
    longcmd[1] = 'T';
    longcmd[sizeof(longcmd) - 1] = '\0';
    CHECK_AT(fd, longcmd, "\r\nERROR\r\n");
    CHECK_AT(fd, "AT", "\r\nOK\r\n");
}

static void test_network(int fd)
{
    CHECK_AT(fd, "AT+CREG?", "\r\n+CREG: 0,1\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+CREG=2", "\r\nOK\r\n");
    CHECK_AT(fd, "AT+CREG?", "\r\n+CREG: 2,1,\"1A2B\",\"0193C201\"\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+CEREG=2", "\r\nOK\r\n");
    CHECK_AT(fd, "AT+CEREG?", "\r\n+CEREG: 2,1,\"1A2B\",\"0193C201\",7\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+CGREG?", "\r\n+CGREG: 0,1\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+COPS?", "\r\n+COPS: 0,0,\"MTS RUS\",7\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+COPS=3,2", "\r\nOK\r\n");
    CHECK_AT(fd, "AT+COPS?", "\r\n+COPS: 0,2,\"25001\",7\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+COPS=3,1", "\r\nOK\r\n");
    CHECK_AT(fd, "AT+COPS?", "\r\n+COPS: 0,1,\"MTS\",7\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+COPS=3,0", "\r\nOK\r\n");
    CHECK_AT(fd, "AT+CNSMOD?", "\r\n+CNSMOD: 0,8\r\n\r\nOK\r\n");
    /* the first AT+CPSI? after boot answers ERROR, the next ones the cell */
    CHECK_AT(fd, "AT+CPSI?", "\r\nERROR\r\n");
    const char *lte = "\r\n+CPSI: LTE,Online,250-01,0x1A2B,26460673,252,EUTRAN-BAND3,1300,5,5,"
                      "-94,-987,-651,14\r\n\r\nOK\r\n";
    CHECK_AT(fd, "AT+CPSI?", lte);
    CHECK_AT(fd, "AT+CPSI?", lte);
    CHECK_AT(fd, "AT+CFUN?", "\r\n+CFUN: 1\r\n\r\nOK\r\n");
    /* data bring-up is accepted and recorded */
    CHECK_AT(fd, "AT+CGDCONT=1,\"IP\",\"internet.mts.ru\"", "\r\nOK\r\n");
    CHECK_AT(fd, "AT+CGDCONT?",
             "\r\n+CGDCONT: 1,\"IP\",\"internet.mts.ru\",\"0.0.0.0\",0,0,0,0\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT$QCRMCALL=1,1", "\r\n$QCRMCALL: 1,V4\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+NETOPEN", "\r\nOK\r\n");
    {
        struct buf nb;
        rd(fd, &nb, 1000, "\r\n+NETOPEN: 0\r\n");
        CHECK_BYTES(nb.b, nb.n, "\r\n+NETOPEN: 0\r\n");
    }
    CHECK_AT(fd, "AT+NETOPEN", "\r\n+IP ERROR: Network is already opened\r\n\r\nERROR\r\n");
    CHECK_AT(fd, "AT+NETCLOSE", "\r\nOK\r\n");
    CHECK_AT(fd, "AT+CNMP=38", "\r\nOK\r\n");
    CHECK_AT(fd, "AT+CNMP?", "\r\n+CNMP: 38\r\n\r\nOK\r\n");

    /* control overrides: other radios and the registration URC */
    struct buf b;
    CHECK_STR(ctl("set a tac 6700"), "ok\n"); /* a new area: CREG n=2 and CEREG n=2 tell */
    rd(fd, &b, 150, NULL);
    CHECK_BYTES(b.b, b.n,
                "\r\n+CREG: 1,\"1A2C\",\"0193C201\"\r\n\r\n+CEREG: 1,\"1A2C\",\"0193C201\",7\r\n");
    CHECK(strncmp(ctl("unset a tac"), "ok", 2) == 0);
    rd(fd, &b, 150, NULL);
    CHECK_STR(ctl("set a rat wcdma"), "ok\n");
    CHECK_STR(ctl("set a rscp -69"), "ok\n");
    CHECK_STR(ctl("set a ecio -4"), "ok\n");
    CHECK_STR(ctl("set a band WCDMA"), "ok\n");
    /* the registration change goes out as URCs (CREG/CEREG are at n=2) before the next reply */
    rd(fd, &b, 150, NULL);
    CHECK_BYTES(b.b, b.n, "\r\n+CEREG: 0\r\n");
    CHECK_AT(fd, "AT+CPSI?",
             "\r\n+CPSI: WCDMA,Online,250-01,0x1A2B,26460673,WCDMA,252,1300,0,4.0,69,33,65,500"
             "\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+CEREG?", "\r\n+CEREG: 2,0\r\n\r\nOK\r\n"); /* no EPS on 3G */
    CHECK_AT(fd, "AT+CNSMOD?", "\r\n+CNSMOD: 0,4\r\n\r\nOK\r\n");
    CHECK_STR(ctl("set a rat gsm"), "ok\n");
    CHECK_STR(ctl("set a band EGSM"), "ok\n");
    CHECK_STR(ctl("set a channel 27"), "ok\n");
    CHECK_AT(fd, "AT+CPSI?",
             "\r\n+CPSI: GSM,Online,250-01,0x1a2b,26460673,27 EGSM,-65,0,45-45\r\n\r\nOK\r\n");
    CHECK_STR(ctl("set a rat none"), "ok\n");
    rd(fd, &b, 150, NULL);
    CHECK_BYTES(b.b, b.n, "\r\n+CREG: 2\r\n\r\n+CEREG: 2\r\n");
    CHECK_AT(fd, "AT+CPSI?", "\r\n+CPSI: NO SERVICE,Online\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+CSQ", "\r\n+CSQ: 99,99\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+COPS?", "\r\n+COPS: 0\r\n\r\nOK\r\n");
    CHECK(strncmp(ctl("unset a rat"), "ok", 2) == 0);
    CHECK(strncmp(ctl("unset a band"), "ok", 2) == 0);
    CHECK(strncmp(ctl("unset a channel"), "ok", 2) == 0);
    /* registration URCs: CREG=1 then roaming; the URC arrives unsolicited */
    rd(fd, &b, 200, NULL); /* drain URCs from the rat changes above */
    CHECK_AT(fd, "AT+CREG=1", "\r\nOK\r\n");
    CHECK_AT(fd, "AT+CEREG=0", "\r\nOK\r\n");
    CHECK_STR(ctl("set a reg roaming"), "ok\n");
    rd(fd, &b, 1000, "\r\n+CREG: 5\r\n");
    CHECK_BYTES(b.b, b.n, "\r\n+CREG: 5\r\n");
    CHECK_STR(ctl("set a rsrp -110.2"), "ok\n");
    struct buf *r = at(fd, "AT+CPSI?");
    CHECK_MSG(strstr(r->b, ",-1102,") != NULL, "%s", esc(r->b, r->n));
    CHECK(strncmp(ctl("unset a rsrp"), "ok", 2) == 0);
    CHECK(strncmp(ctl("unset a reg"), "ok", 2) == 0);
    rd(fd, &b, 200, NULL);
    CHECK_BYTES(b.b, b.n, "\r\n+CREG: 1\r\n");
    CHECK_AT(fd, "AT+CREG=0", "\r\nOK\r\n");
    CHECK_STR(ctl("set a nosuchkey 1"), "error unknown key \"nosuchkey\"\n");
    CHECK_STR(ctl("set zz rsrp 1"), "error unknown modem \"zz\"\n");
}

#define CHECK_SHAPE(fd, cmd, prefix, corpus_id)                                                    \
    do {                                                                                           \
        char s1_[64], s2_[64];                                                                     \
        struct buf *r_ = at((fd), (cmd));                                                          \
        shape(r_->b, (prefix), s1_, sizeof(s1_));                                                  \
        shape(corpus_response(corpus_id), (prefix), s2_, sizeof(s2_));                             \
        CHECK_MSG(s2_[0] && !strcmp(s1_, s2_), "%s: shape %s, capture %d has %s (%s)", (cmd), s1_, \
                  (corpus_id), s2_, esc(r_->b, r_->n));                                            \
    } while (0)

/* The simulator's replies have the same bytes (where the values can match) or the same field
 * shapes as real modems' captured replies. */
static void test_against_corpus(int fd)
{
    if (!g_corpus)
        return;
    /* exact: the CNSMOD reply on LTE, CGPSINFO without a fix, CSQ framing */
    struct buf *r = at(fd, "AT+CNSMOD?");
    CHECK_BYTES(r->b, r->n, corpus_response(227));
    CHECK_AT(fd, "AT+CGPS=0", "\r\nOK\r\n");
    r = at(fd, "AT+CGPSINFO");
    CHECK_BYTES(r->b, r->n, corpus_response(235));
    CHECK_STR(ctl("set a csq 17"), "ok\n");
    r = at(fd, "AT+CSQ");
    CHECK_BYTES(r->b, r->n, corpus_response(192));
    CHECK(strncmp(ctl("unset a csq"), "ok", 2) == 0);
    /* shapes: CPSI on LTE (SIM7600, tenths of dB), GSM; CGPSINFO with a fix */
    CHECK_SHAPE(fd, "AT+CPSI?", "+CPSI: ", 211);
    CHECK_SHAPE(fd, "AT+CPSI?", "+CPSI: ", 221);
    CHECK_STR(ctl("set a rat gsm"), "ok\n");
    CHECK_SHAPE(fd, "AT+CPSI?", "+CPSI: ", 224);
    CHECK_SHAPE(fd, "AT+CPSI?", "+CPSI: ", 218);
    CHECK(strncmp(ctl("unset a rat"), "ok", 2) == 0);
    CHECK_AT(fd, "AT+CGPS=1", "\r\nOK\r\n");
    CHECK_SHAPE(fd, "AT+CGPSINFO", "+CGPSINFO: ", 233);
    CHECK_AT(fd, "AT+CGPS=0", "\r\nOK\r\n");
    struct buf b;
    rd(fd, &b, 150, NULL); /* registration URCs from the rat change */
}

static void test_gnss(int fd)
{
    CHECK_AT(fd, "AT+CGPS?", "\r\n+CGPS: 0,1\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+CGPSINFO", "\r\n+CGPSINFO: ,,,,,,,,\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+CGPS=1", "\r\nOK\r\n");
    CHECK_AT(fd, "AT+CGPS=1", "\r\nERROR\r\n"); /* already on */
    CHECK_AT(fd, "AT+CGPS?", "\r\n+CGPS: 1,1\r\n\r\nOK\r\n");
    struct buf *r = at(fd, "AT+CGPSINFO");
    /* 55.752057 N = 55 deg 45.12342 min; 37.627572 E = 037 deg 37.65432 min; 134.3 km/h =
     * 72.5 kn; the date/time fields are the current UTC */
    const char *head = "\r\n+CGPSINFO: 5545.123420,N,03737.654320,E,";
    const char *tail = ",156.2,72.5,45.0\r\n\r\nOK\r\n";
    CHECK_MSG(r->n > strlen(head) + strlen(tail) && !strncmp(r->b, head, strlen(head)) &&
                  !strcmp(r->b + r->n - strlen(tail), tail),
              "%s", esc(r->b, r->n));
    CHECK_MSG(r->n == strlen(head) + strlen("231126,012943.0") + strlen(tail), "%s",
              esc(r->b, r->n));
    CHECK_STR(ctl("set a fix false"), "ok\n");
    CHECK_AT(fd, "AT+CGPSINFO", "\r\n+CGPSINFO: ,,,,,,,,\r\n\r\nOK\r\n");
    CHECK(strncmp(ctl("unset a fix"), "ok", 2) == 0);
    CHECK_AT(fd, "AT+CGPS=0", "\r\nOK\r\n");
}

static void test_ussd(int fd)
{
    struct buf b;
    /* GSM CSCS, plain text dcs 15; the URC follows OK after delay_s (1.5 s scenario) */
    CHECK_AT(fd, "AT+CUSD=1,\"*100#\",15", "\r\nOK\r\n");
    long long t0 = now_ms();
    rd(fd, &b, 2000, "\",15\r\n");
    CHECK_BYTES(b.b, b.n, "\r\n+CUSD: 0,\"Balance: 123.45 rub\",15\r\n");
    CHECK_MSG(now_ms() - t0 >= 100, "URC came after %lld ms", now_ms() - t0);
    /* non-GSM text goes UCS2 (dcs 72) even in GSM CSCS */
    CHECK_AT(fd, "AT+CUSD=1,\"*102#\",15", "\r\nOK\r\n");
    rd(fd, &b, 2000, ",72\r\n");
    CHECK_BYTES(b.b, b.n, "\r\n+CUSD: 0,\"04110430043B0430043D044100200035\",72\r\n");
    /* packed GSM-7 hex */
    CHECK_AT(fd, "AT+CUSD=1,\"*103#\",15", "\r\nOK\r\n");
    rd(fd, &b, 2000, ",15\r\n");
    CHECK_BYTES(b.b, b.n, "\r\n+CUSD: 0,\"E8329BFD06\",15\r\n");
    /* text spanning lines inside the quotes */
    CHECK_AT(fd, "AT+CUSD=1,\"*104#\",15", "\r\nOK\r\n");
    rd(fd, &b, 2000, ",15\r\n");
    CHECK_BYTES(b.b, b.n, "\r\n+CUSD: 1,\"Bal: 5\r\nBye\",15\r\n");
    /* UCS2 CSCS: the code arrives UCS2-encoded and the answer is UCS2 hex */
    CHECK_AT(fd, "AT+CSCS=\"UCS2\"", "\r\nOK\r\n");
    CHECK_AT(fd, "AT+CSCS?", "\r\n+CSCS: \"UCS2\"\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+CUSD=1,\"002A0031003000300023\",15", "\r\nOK\r\n");
    rd(fd, &b, 2000, ",72\r\n");
    CHECK_BYTES(
        b.b, b.n,
        "\r\n+CUSD: 0,\"00420061006C0061006E00630065003A0020003100320033002E0034003500200072"
        "00750062\",72\r\n");
    CHECK_AT(fd, "AT+COPS?", "\r\n+COPS: 0,0,\"004D005400530020005200550053\",7\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+CSCS=\"GSM\"", "\r\nOK\r\n");
    /* some firmwares deliver the URC before the final OK */
    CHECK_AT(fd, "AT+CUSD=1,\"*105#\",15", "\r\n+CUSD: 2,\"Hi\",15\r\n\r\nOK\r\n");
    /* AT+CUSD=2 cancels the session: no URC follows */
    CHECK_AT(fd, "AT+CUSD=1,\"*100#\",15", "\r\nOK\r\n");
    CHECK_AT(fd, "AT+CUSD=2", "\r\nOK\r\n");
    rd(fd, &b, 400, NULL);
    CHECK_INT(b.n, 0);
    /* unknown code */
    CHECK_AT(fd, "AT+CUSD=1,\"*999#\",15", "\r\nOK\r\n");
    rd(fd, &b, 2000, "\r\n+CUSD: 4\r\n");
    CHECK_BYTES(b.b, b.n, "\r\n+CUSD: 4\r\n");
}

static void test_errors_other_modems(const char *pb, const char *pc)
{
    int fd = open_port(pb);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    struct buf b;
    rd(fd, &b, 100, NULL); /* boot URCs (sent before we opened) */
    CHECK_AT(fd, "AT+CIMI", "\r\nERROR\r\n");
    CHECK_AT(fd, "AT+CMEE=1", "\r\nOK\r\n");
    CHECK_AT(fd, "AT+CIMI", "\r\n+CME ERROR: 10\r\n");
    CHECK_AT(fd, "AT+CPIN?", "\r\n+CME ERROR: 10\r\n");
    CHECK_AT(fd, "AT+CMEE=2", "\r\nOK\r\n");
    CHECK_AT(fd, "AT+CIMI", "\r\n+CME ERROR: SIM not inserted\r\n");
    CHECK_AT(fd, "AT+CREG?", "\r\n+CREG: 0,0\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+CPSI?", "\r\n+CPSI: NO SERVICE,Online\r\n\r\nOK\r\n");
    close(fd);

    fd = open_port(pc);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    rd(fd, &b, 100, NULL);
    CHECK_AT(fd, "ATI", "\r\nQuectel\r\nEC25\r\nRevision: EC25EFAR06A06M4G\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+CGMR", "\r\nRevision: EC25EFAR06A06M4G\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+QCCID", "\r\n+QCCID: 89701010000000000001\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+CPSI?", "\r\nERROR\r\n");
    CHECK_AT(fd, "AT+QENG=\"servingcell\"",
             "\r\n+QENG: \"servingcell\",\"NOCONN\",\"LTE\",\"FDD\",250,99,1315A01,410,6300,20,5,"
             "5,F3A,-101,-11,-70,8,8,-,29\r\n\r\nOK\r\n");
    CHECK_AT(fd, "AT+QGPSLOC=2", "\r\nERROR\r\n");
    CHECK_AT(fd, "AT+CMEE=1", "\r\nOK\r\n");
    CHECK_AT(fd, "AT+QGPSLOC=2", "\r\n+CME ERROR: 505\r\n");
    CHECK_AT(fd, "AT+QGPS=1", "\r\nOK\r\n");
    CHECK_AT(fd, "AT+QGPSLOC=2", "\r\n+CME ERROR: 516\r\n");
    close(fd);
}

/* hang: nothing answers, not even AT+CRESET; a power-cycle through the control socket cures it
 * and the modem boots with echo back on */
static void test_hang_powercycle(int fd)
{
    struct buf b;
    CHECK_STR(ctl("fault a hang 100"), "ok\n");
    tx(fd, "AT\r");
    rd(fd, &b, 300, NULL);
    CHECK_INT(b.n, 0);
    tx(fd, "AT+CRESET\r");
    rd(fd, &b, 500, NULL);
    CHECK_INT(b.n, 0);
    char *st = ctl("status");
    CHECK_MSG(strstr(st, "\"faults\":[\"hang\"]") != NULL, "%s", st);
    CHECK_STR(ctl("powercycle a"), "ok\n");
    rd(fd, &b, 2000, "PB DONE\r\n"); /* reboot_s 2 at x10 */
    CHECK_BYTES(b.b, b.n, "\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nSMS DONE\r\n\r\nPB DONE\r\n");
    CHECK_AT(fd, "AT", "AT\r\r\nOK\r\n");
    CHECK_AT(fd, "AT+CPSI?", "AT+CPSI?\r\r\nERROR\r\n"); /* first CPSI after boot, again */
    CHECK_AT(fd, "ATE0", "ATE0\r\r\nOK\r\n");

    /* silence: output muted, but a reset still works and ends it */
    CHECK_STR(ctl("fault a silence 100"), "ok\n");
    tx(fd, "AT\r");
    rd(fd, &b, 300, NULL);
    CHECK_INT(b.n, 0);
    tx(fd, "AT+CRESET\r");
    rd(fd, &b, 2000, "PB DONE\r\n");
    CHECK_BYTES(b.b, b.n, "\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nSMS DONE\r\n\r\nPB DONE\r\n");
    CHECK_AT(fd, "ATE0", "ATE0\r\r\nOK\r\n");

    /* cpsi_error: every AT+CPSI? fails for the interval */
    CHECK_AT(fd, "AT+CPSI?", "\r\nERROR\r\n");
    struct buf *r = at(fd, "AT+CPSI?");
    CHECK(strncmp(r->b, "\r\n+CPSI: LTE", 12) == 0);
    CHECK_STR(ctl("fault a cpsi_error 100"), "ok\n");
    CHECK_AT(fd, "AT+CPSI?", "\r\nERROR\r\n");
    CHECK_AT(fd, "AT+CPSI?", "\r\nERROR\r\n");
    CHECK_STR(ctl("clear a"), "ok\n");
    r = at(fd, "AT+CPSI?");
    CHECK(strncmp(r->b, "\r\n+CPSI: LTE", 12) == 0);
    CHECK_STR(ctl("fault a bogus 1"),
              "error unknown fault kind \"bogus\" (silence, hang, garbage, reboot, vanish, "
              "cpsi_error)\n");
}

static void test_garbage(int fd)
{
    struct buf b;
    CHECK_STR(ctl("fault a garbage 100"), "ok\n");
    for (int i = 0; i < 6; i++)
        tx(fd, "AT\r");
    rd(fd, &b, 1500, NULL);
    size_t nonprint = 0, longest = 0, cur = 0;
    for (size_t i = 0; i < b.n; i++) {
        unsigned char c = (unsigned char)b.b[i];
        if ((c < 0x20 && c != '\r' && c != '\n') || c >= 0x7f)
            nonprint++;
        cur = c == '\n' ? 0 : cur + 1;
        longest = cur > longest ? cur : longest;
    }
    CHECK_MSG(nonprint >= 16, "only %zu binary bytes in %zu", nonprint, b.n);
    CHECK_MSG(longest >= 1000 || b.n >= 600, "longest line %zu, %zu bytes", longest, b.n);
    CHECK_STR(ctl("clear a"), "ok\n");
    rd(fd, &b, 200, NULL);
    CHECK_AT(fd, "AT", "\r\nOK\r\n");
}

static void test_vanish(const char *path, int *fdp)
{
    char before[256] = "", after[256] = "";
    ssize_t n = readlink(path, before, sizeof(before) - 1);
    CHECK(n > 0);
    CHECK_STR(ctl("fault a vanish 5"), "ok\n"); /* 0.5 s real */
    CHECK(wait_path(path, false, 300));
    /* the open port is dead: reads give EOF/EIO */
    char c;
    struct pollfd p = {*fdp, POLLIN, 0};
    CHECK(poll(&p, 1, 500) == 1);
    CHECK(read(*fdp, &c, 1) <= 0);
    CHECK(wait_path(path, true, 3000));
    n = readlink(path, after, sizeof(after) - 1);
    CHECK(n > 0);
    CHECK_MSG(strcmp(before, after) != 0, "same pty %s", after);
    close(*fdp);
    *fdp = open_port(path);
    CHECK(*fdp >= 0);
    struct buf b;
    rd(*fdp, &b, 1000, "PB DONE\r\n");
    CHECK_MSG(strstr(b.b, "PB DONE") != NULL, "%s", esc(b.b, b.n));
    CHECK_AT(*fdp, "AT", "AT\r\r\nOK\r\n");
}

/* random bytes (NULs, lone CRs, bytes >= 0x80, no "AT") never crash or wedge the responder */
static void test_noise_input(const char *pb)
{
    int fd = open_port(pb);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    unsigned x = 12345;
    char junk[4096];
    struct buf b;
    for (int round = 0; round < 16; round++) {
        for (size_t i = 0; i < sizeof(junk); i++) {
            x = x * 1103515245u + 12345u;
            junk[i] = (char)(x >> 16);
        }
        if (write(fd, junk, sizeof(junk)) < 0)
            break;
        rd(fd, &b, 20, NULL); /* keep the replies flowing */
    }
    rd(fd, &b, 300, NULL);
    CHECK_AT(fd, "\rAT", "\r\nOK\r\n");
    CHECK_AT(fd, "AT+CSQ", "\r\n+CSQ: 99,99\r\n\r\nOK\r\n");
    close(fd);
    /* and junk on the control socket gets an error line, not a crash */
    char *r = ctl("\x01\x02 fault");
    CHECK(strncmp(r, "error", 5) == 0);
    r = ctl("fault a hang notanumber");
    CHECK_STR(r, "error bad seconds \"notanumber\"\n");
}

/* Quectel with reboot_vanish: AT+CFUN=1,1 answers OK, the port disappears for reboot_s and
 * comes back as a new pty that sends the boot URCs. d: a scenario-scheduled silence that a
 * power-cycle cures, and an interpolated RSRP. */
static void test_reboot_vanish_and_timeline(const char *pc, const char *pd)
{
    struct buf b;
    int fd = open_port(pc);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    rd(fd, &b, 100, NULL);
    CHECK_AT(fd, "AT+CFUN=1,1", "\r\nOK\r\n");
    CHECK(wait_path(pc, false, 300));
    CHECK(wait_path(pc, true, 2000));
    close(fd);
    fd = open_port(pc);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    rd(fd, &b, 1000, "+QIND: PB DONE\r\n");
    CHECK_BYTES(b.b, b.n,
                "\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\n+QUSIM: 1\r\n\r\n"
                "+QIND: SMS DONE\r\n\r\n+QIND: PB DONE\r\n");
    CHECK_AT(fd, "AT", "\r\nOK\r\n"); /* c boots with echo off ("echo": false) */
    close(fd);

    fd = open_port(pd);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    rd(fd, &b, 100, NULL);
    tx(fd, "AT\r");
    rd(fd, &b, 300, NULL);
    CHECK_INT(b.n, 0);
    CHECK_STR(ctl("powercycle d"), "ok\n");
    rd(fd, &b, 1000, "PB DONE\r\n");
    CHECK_MSG(strstr(b.b, "PB DONE") != NULL, "%s", esc(b.b, b.n));
    CHECK_AT(fd, "AT", "\r\nOK\r\n");
    close(fd);
}

static void test_status(void)
{
    char *s = ctl("status");
    json_error_t je;
    json_t *root = json_loads(s, 0, &je);
    CHECK_MSG(root != NULL, "status is not JSON: %s", s);
    if (!root)
        return;
    json_t *ms = json_object_get(root, "modems");
    CHECK_INT(json_array_size(ms), 4);
    /* d's RSRP goes linearly from -80 (t=0) to -120 (t=1000): a few tens of seconds in, it is
     * between -80 and -84 and no longer -80 */
    json_t *dr = json_object_get(json_array_get(ms, 3), "radio");
    double rsrp = json_real_value(json_object_get(dr, "rsrp"));
    CHECK_MSG(rsrp < -80.01 && rsrp > -84, "rsrp %f", rsrp);
    json_t *a = json_array_get(ms, 0);
    CHECK_STR(json_string_value(json_object_get(a, "name")), "a");
    CHECK_STR(json_string_value(json_object_get(a, "state")), "ready");
    CHECK(json_integer_value(json_object_get(a, "commands")) > 50);
    CHECK_INT(json_integer_value(json_object_get(a, "powercycles")), 1);
    CHECK_INT(json_integer_value(json_object_get(a, "vanishes")), 1);
    CHECK(json_integer_value(json_object_get(json_object_get(a, "by_command"), "+CPSI?")) > 5);
    CHECK_STR(json_string_value(json_object_get(a, "apn")), "internet.mts.ru");
    CHECK(strncmp(json_string_value(json_object_get(a, "pty")), "/dev/pts/", 9) == 0);
    json_decref(root);
}

/* Scenario errors name the JSON key path and exit 2. */
static void test_bad_scenario(void)
{
#define OPER "\"operator\":{\"name\":\"A\",\"mcc\":\"250\",\"mnc\":\"01\"}"
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"{\"modems\":[{\"name\":\"x\",\"path\":\"/tmp/x\"," OPER ",\"timeline\":[{\"t\":0},"
         "{\"t\":5,\"rsrp\":\"strong\"}]}]}",
         "modems[0].timeline[1].rsrp: expected a number"},
        {"{\"modems\":[{\"name\":\"x\",\"path\":\"/tmp/x\"," OPER ",\"timeline\":[{\"t\":0,"
         "\"rsrp\":5}]}]}",
         "modems[0].timeline[0].rsrp: 5 out of range"},
        {"{\"modems\":[{\"name\":\"x\",\"path\":\"/tmp/x\"," OPER ",\"colour\":1,"
         "\"timeline\":[{\"t\":0}]}]}",
         "modems[0].colour: unknown key"},
        {"{\"modems\":[{\"name\":\"x\",\"path\":\"/tmp/x\",\"timeline\":[{\"t\":0}]}]}",
         "modems[0].operator: required object"},
        {"{\"modems\":[{\"name\":\"x\",\"path\":\"/tmp/x\"," OPER ",\"timeline\":[{\"t\":0}],"
         "\"faults\":[{\"kind\":\"melt\",\"start\":1,\"duration\":2}]}]}",
         "modems[0].faults[0].kind: expected silence, hang"},
        {"{\"modems\":[{\"name\":\"x\",\"path\":\"/tmp/x\"," OPER ",\"timeline\":[{\"t\":0,"
         "\"reg\":\"maybe\"}]}]}",
         "modems[0].timeline[0].reg: expected one of home"},
        {"{\"modems\":[{\"name\":\"x\",\"path\":\"/tmp/x\"," OPER ",\"timeline\":[{\"t\":0}],"
         "\"ussd\":[{\"code\":\"*1#\",\"text\":\"\u0416\",\"encoding\":\"gsm7_packed\"}]}]}",
         "modems[0].ussd[0].text: has characters outside the GSM 7-bit default alphabet"},
        {"{\"modems\":[{\"name\":\"x\",\"path\":\"rel\"," OPER ",\"timeline\":[{\"t\":0}]}]}",
         "modems[0].path: must be an absolute path"},
        {"{\"modems\":[{\"name\":\"x\",\"path\":\"/tmp/x\"," OPER ",\"timeline\":[{\"t\":0}],"
         "\"faults\":[{\"kind\":\"hang\",\"start\":1,\"durration\":2}]}]}",
         "modems[0].faults[0].durration: unknown key"},
        {"{\"modems\": [", "bad.json:1:"},
    };
#undef OPER
    char file[128], cmd[512], out[1024];
    snprintf(file, sizeof(file), "%s/bad.json", g_dir);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_file(file, cases[i].json);
#ifdef MODEMSIM_EMULATOR
        snprintf(cmd, sizeof(cmd), "%s %s --check %s 2>&1", MODEMSIM_EMULATOR, MODEMSIM_BIN, file);
#else
        snprintf(cmd, sizeof(cmd), "%s --check %s 2>&1", MODEMSIM_BIN, file);
#endif
        FILE *p = popen(cmd, "r");
        CHECK(p != NULL);
        if (!p)
            return;
        size_t n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = '\0';
        int st = pclose(p);
        CHECK_INT(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 2);
        CHECK_MSG(strstr(out, cases[i].want) != NULL, "case %zu: %s", i, out);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(g_dir, sizeof(g_dir), "/tmp/modemsim-test-XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    char pa[128], pb[128], pc[128], pd[128];
    path_of(pa, sizeof(pa), "a");
    path_of(pb, sizeof(pb), "b");
    path_of(pc, sizeof(pc), "c");
    path_of(pd, sizeof(pd), "d");
    json_error_t je;
    g_corpus = json_load_file(CORRIDOR_TEST_DATA "/at_replies.json", 0, &je);
    CHECK_MSG(g_corpus != NULL, "at_replies.json: %s", je.text);
    test_bad_scenario();
    CHECK(start_sim() == 0);
    CHECK(wait_path(pa, true, 3000));
    int fd = open_port(pa);
    CHECK(fd >= 0);
    if (fd >= 0) {
        test_boot_and_echo(fd);
        test_identity(fd);
        test_network(fd);
        test_against_corpus(fd);
        test_gnss(fd);
        test_ussd(fd);
        test_errors_other_modems(pb, pc);
        test_hang_powercycle(fd);
        test_garbage(fd);
        test_vanish(pa, &fd);
        test_noise_input(pb);
        test_reboot_vanish_and_timeline(pc, pd);
        test_status();
        close(fd);
    }
    /* SIGTERM: the simulator removes its links and exits cleanly */
    if (g_pid > 0) {
        kill(g_pid, SIGTERM);
        int st = 0;
        long long end = now_ms() + 3000;
        pid_t w = 0;
        while ((w = waitpid(g_pid, &st, WNOHANG)) == 0 && now_ms() < end)
            sleep_ms(10);
        if (w == 0) {
            kill(g_pid, SIGKILL);
            waitpid(g_pid, &st, 0);
        }
        CHECK(w == g_pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        struct stat sst;
        CHECK(lstat(pa, &sst) < 0 && errno == ENOENT);
        CHECK(lstat(pb, &sst) < 0 && errno == ENOENT);
        CHECK(lstat(g_ctl, &sst) < 0 && errno == ENOENT);
    }
    if (t_fail) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "tail -40 %s/sim.log >&2", g_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "(no simulator log)\n");
    }
    json_decref(g_corpus);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_dir);
    return test_summary();
}
