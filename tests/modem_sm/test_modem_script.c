/* The driver against scripted modems on a pseudo-terminal (no simulator): replies copied from
 * real captures for the cases the simulator does not produce: the family found through ATI
 * when CGMI does not name it, an unknown modem driven with the SIMCom set and AT+CCID as the
 * ICCID fallback, a Quectel EN-DC (NR5G-NSA) serving cell over several +QENG lines,
 * "+CME ERROR: 516" (no GNSS fix), echo ending in \r\r\n and URCs interleaved with replies. */
#include "modem/driver.h"
#include "testlib.h"
#include "common/common.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

struct reply {
    const char *cmd;   /* exact command line (without CR) */
    const char *bytes; /* what the modem sends back after the echo */
};

struct script {
    const struct reply *replies;
    bool echo;
    int mfd;
    bool stop;
    unsigned unknown; /* commands answered with the default ERROR */
};

static void *responder(void *arg)
{
    struct script *sc = arg;
    char line[512];
    size_t len = 0;
    while (!__atomic_load_n(&sc->stop, __ATOMIC_ACQUIRE)) {
        struct pollfd p = {sc->mfd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        char buf[256];
        ssize_t n = read(sc->mfd, buf, sizeof buf);
        if (n <= 0)
            continue;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n')
                continue;
            if (buf[i] != '\r') {
                if (len + 1 < sizeof line)
                    line[len++] = buf[i];
                continue;
            }
            line[len] = '\0';
            len = 0;
            char out[2048];
            size_t off = 0;
            if (sc->echo)
                str_appendf(out, sizeof out, &off, "%s\r\r\n", line);
            const char *r = NULL;
            for (const struct reply *rp = sc->replies; rp->cmd; rp++)
                if (!strcmp(rp->cmd, line))
                    r = rp->bytes;
            if (!r) {
                r = "\r\nERROR\r\n";
                sc->unknown++;
            }
            str_appendf(out, sizeof out, &off, "%s", r);
            if (write(sc->mfd, out, off) < 0 && errno != EAGAIN)
                break;
        }
    }
    return NULL;
}

static int run_probe(const struct reply *replies, bool echo, struct modem_sample *s, char *err,
                     size_t errlen)
{
    int mfd, sfd;
    char name[64];
    if (openpty(&mfd, &sfd, name, NULL, NULL) != 0) {
        snprintf(err, errlen, "openpty failed");
        return -2;
    }
    struct termios tio;
    tcgetattr(sfd, &tio);
    cfmakeraw(&tio);
    tcsetattr(sfd, TCSANOW, &tio);
    struct script sc = {.replies = replies, .echo = echo, .mfd = mfd};
    pthread_t th;
    pthread_create(&th, NULL, responder, &sc);
    int rc = modem_probe(name, 115200, NULL, s, err, errlen);
    __atomic_store_n(&sc.stop, true, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    close(mfd);
    close(sfd);
    return rc;
}

#define OK "\r\nOK\r\n"

/* An EG25 whose CGMI says nothing useful: ATI names it. EN-DC cell, GNSS without a fix. */
static const struct reply eg25[] = {
    {"AT", OK},
    {"ATE0", OK},
    {"AT+CMEE=1", "\r\n+CPIN: READY\r\n" OK}, /* a URC in front of a reply */
    {"AT+CGMI", "\r\nERROR\r\n"},
    {"ATI", "\r\nQuectel\r\nEG25\r\nRevision: EG25GGBR07A08M2G\r\n" OK},
    {"AT+CGMM", "\r\nEG25\r\n" OK},
    {"AT+CGMR", "\r\nRevision: EG25GGBR07A08M2G\r\n" OK},
    {"AT+CGSN", "\r\n866758041234567\r\n" OK},
    {"AT+QCCID", "\r\n+QCCID: 8970101234567890123F\r\n" OK},
    {"AT+CIMI", "\r\n250011234567890\r\n" OK},
    {"AT+CPIN?", "\r\n+CPIN: READY\r\n" OK},
    {"AT+CREG?", "\r\n+CREG: 0,1\r\n" OK},
    {"AT+CGREG?", "\r\n+CGREG: 0,1\r\n" OK},
    {"AT+CEREG?", "\r\nSMS DONE\r\n\r\n+CEREG: 0,1\r\n" OK},
    {"AT+COPS=3,2", OK},
    {"AT+COPS=3,0", OK},
    {"AT+COPS?", "\r\n+COPS: 0,0,\"MTS RUS\",13\r\n" OK},
    {"AT+CSQ", "\r\n+CSQ: 25,99\r\n" OK},
    {"AT+QENG=\"servingcell\"",
     "\r\n+QENG: \"servingcell\",\"NOCONN\"\r\n"
     "+QENG: \"LTE\",\"FDD\",250,01,5F1EA15,12,100,1,5,5,1A2B,-96,-11,-56,14,0,-,29\r\n"
     "+QENG:\"NR5G-NSA\",250,01,747,-71,13,-11,627264,78,12,1\r\n" OK},
    {"AT+QGPSLOC=2", "\r\n+CME ERROR: 516\r\n"},
    {NULL, NULL},
};

/* A modem of no known family: the SIMCom set, AT+CICCID refused, AT+CCID answers. */
static const struct reply other[] = {
    {"AT", OK},
    {"ATE0", OK},
    {"AT+CMEE=1", OK},
    {"AT+CGMI", "\r\nTelit\r\n" OK},
    {"ATI", "\r\nTelit\r\nLE910C1-EU\r\n" OK},
    {"AT+CGMM", "\r\nLE910C1-EU\r\n" OK},
    {"AT+CGMR", "\r\n25.21.660\r\n" OK},
    {"AT+CGSN", "\r\n351234567890123\r\n" OK},
    {"AT+CCID", "\r\n+CCID: 89701011234567890123\r\n" OK},
    {"AT+CIMI", "\r\n250011234567890\r\n" OK},
    {"AT+CPIN?", "\r\n+CPIN: READY\r\n" OK},
    {"AT+CREG?", "\r\n+CREG: 0,5\r\n" OK},
    {"AT+CGREG?", "\r\n+CGREG: 0,5\r\n" OK},
    {"AT+CEREG?", "\r\n+CEREG: 0,0\r\n" OK},
    {"AT+COPS=3,2", OK},
    {"AT+COPS=3,0", OK},
    {"AT+COPS?", "\r\n+COPS: 0,2,\"25001\",2\r\n" OK},
    {"AT+CSQ", "\r\n+CSQ: 14,99\r\n" OK},
    {"AT+CNSMOD?", "\r\n+CNSMOD: 0,4\r\n" OK},
    {NULL, NULL},
};

int main(void)
{
    log_init("test_modem_script", LOGL_WARN, false);
    struct modem_sample s;
    char err[256] = "";

    int rc = run_probe(eg25, true, &s, err, sizeof err);
    CHECK_MSG(rc == 0, "eg25 probe: %s", err);
    CHECK_INT(s.family, MODEM_FAMILY_QUECTEL);
    CHECK_STR(s.id.model, "EG25");
    CHECK_STR(s.id.revision, "EG25GGBR07A08M2G");
    CHECK_STR(s.id.imei, "866758041234567");
    CHECK_STR(s.id.iccid, "8970101234567890123");
    CHECK_STR(s.id.imsi, "250011234567890");
    CHECK_INT(s.sim, MODEM_SIM_READY);
    CHECK_STR(s.oper_name, "MTS RUS");
    CHECK_INT(s.net, MODEM_NET_NR5G_NSA);
    CHECK_INT(s.tac, 0x1A2B);
    CHECK_INT(s.cell_id, 0x5F1EA15);
    CHECK_NEAR(s.sig.rsrp_dbm, -96, 0.01); /* the LTE anchor */
    CHECK_INT(s.reg, MODEM_REG_HOME);
    CHECK_INT(s.sig.csq, 25);
    CHECK(s.gnss.valid);
    CHECK(!s.gnss.fix);

    rc = run_probe(other, false, &s, err, sizeof err);
    CHECK_MSG(rc == 0, "other probe: %s", err);
    CHECK_INT(s.family, MODEM_FAMILY_UNKNOWN);
    CHECK_STR(s.id.manufacturer, "Telit");
    CHECK_STR(s.id.model, "LE910C1-EU");
    CHECK_STR(s.id.iccid, "89701011234567890123"); /* AT+CCID after AT+CICCID's ERROR */
    CHECK_STR(s.mcc, "250");
    CHECK_STR(s.mnc, "01");
    CHECK_STR(s.oper_name, ""); /* it only ever answers numerically */
    /* CPSI refused twice: AT+CNSMOD? gives WCDMA, where CREG/CGREG roaming decides */
    CHECK_INT(s.net, MODEM_NET_WCDMA);
    CHECK_INT(s.reg, MODEM_REG_ROAMING);
    CHECK_NEAR(s.sig.rssi_dbm, -113 + 2 * 14, 0.01);
    CHECK(!s.gnss.valid); /* AT+CGPSINFO: ERROR */
    return test_summary();
}
