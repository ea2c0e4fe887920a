/* test_parse: the AT reply parsers (modem/parse.h) against hand-written lines built from the
 * vendor manuals and against every applicable case of the real-reply corpus
 * tests/data/at_replies.json.
 *
 * Corpus cases not checked, and why (everything else in the parsed categories is checked):
 *   | ids          | reason                                                                  |
 *   |--------------|-------------------------------------------------------------------------|
 *   | 57-87        | AT+COPS=? network lists: parse.h has no list parser (COPS? only)         |
 *   | 200          | AT+QSIMSTAT: no parser in parse.h                                       |
 *   | 205,207,208  | QENG neighbourcell rows: only checked to be rejected by the serving     |
 *   |              | parser (no neighbour parser in parse.h)                                 |
 *   | 237-240      | AT+CGNSSINFO / AT+CGNSINF: no parser in parse.h (only checked that the  |
 *   |              | CGPSINFO/QGPSLOC parsers reject them)                                   |
 * No corpus case is skipped for disagreeing with us. */
#include "modem/parse.h"
#include "common/common.h"
#include "testlib.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* ---- hand-written checks ----------------------------------------------------------------- */

static void t_csq(void)
{
    struct at_csq q;
    CHECK_INT(at_parse_csq("+CSQ: 21,99", &q), 0);
    CHECK_INT(q.rssi, 21);
    CHECK_INT(q.ber, 99);
    CHECK_NEAR(q.rssi_dbm, -71, 1e-9);
    CHECK_INT(at_parse_csq("  +CSQ:0,0  ", &q), 0);
    CHECK_NEAR(q.rssi_dbm, -113, 1e-9);
    CHECK_INT(at_parse_csq("+CSQ: 31,7", &q), 0);
    CHECK_NEAR(q.rssi_dbm, -51, 1e-9);
    CHECK_INT(at_parse_csq("+CSQ: 99,99", &q), 0);
    CHECK_NAN(q.rssi_dbm);
    CHECK_INT(at_parse_csq("+CSQ: 32,99", &q), -1);
    CHECK_INT(at_parse_csq("+CSQ: 12", &q), -1);
    CHECK_INT(at_parse_csq("+CSQ: a,b", &q), -1);
    CHECK_INT(at_parse_csq("+CESQ: 1,2", &q), -1);
    CHECK_INT(at_parse_csq("", &q), -1);

    struct at_cesq c;
    CHECK_INT(at_parse_cesq("+CESQ: 99,99,255,255,20,80", &c), 0);
    CHECK_NAN(c.rssi_dbm);
    CHECK_NAN(c.rscp_dbm);
    CHECK_NAN(c.ecno_db);
    CHECK_NEAR(c.rsrq_db, -10, 1e-9);
    CHECK_NEAR(c.rsrp_dbm, -61, 1e-9);
    CHECK_INT(at_parse_cesq("+CESQ: 10,6,255,255,255,255", &c), 0);
    CHECK_NEAR(c.rssi_dbm, -101, 1e-9);
    CHECK_INT(at_parse_cesq("+CESQ: 99,99,95,40,255,255", &c), 0);
    CHECK_NEAR(c.rscp_dbm, -26, 1e-9);
    CHECK_NEAR(c.ecno_db, -4.5, 1e-9);
    CHECK_INT(at_parse_cesq("+CESQ: 99,99,95", &c), -1);
}

static void t_reg(void)
{
    struct at_reg r;
    /* the brief's pair: solicited with n and act vs URC with quoted lac/ci */
    CHECK_INT(at_parse_reg("+CREG: 2,1,\"1A2B\",\"0000ABCD\",7", &r), 0);
    CHECK_INT(r.kind, AT_REG_CREG);
    CHECK_INT(r.n, 2);
    CHECK_INT(r.stat, 1);
    CHECK_INT(r.reg, MODEM_REG_HOME);
    CHECK_INT(r.lac, 0x1A2B);
    CHECK_INT(r.ci, 0xABCD);
    CHECK_INT(r.act, 7);
    CHECK_INT(at_parse_reg("+CREG: 1,\"1A2B\",\"ABCD\"", &r), 0);
    CHECK_INT(r.n, -1);
    CHECK_INT(r.stat, 1);
    CHECK_INT(r.lac, 0x1A2B);
    CHECK_INT(r.ci, 0xABCD);
    CHECK_INT(r.act, -1);
    CHECK_INT(at_parse_reg("+CEREG: 0,5", &r), 0);
    CHECK_INT(r.kind, AT_REG_CEREG);
    CHECK_INT(r.n, 0);
    CHECK_INT(r.reg, MODEM_REG_ROAMING);
    CHECK_INT(r.lac, -1);
    CHECK_INT(r.ci, -1);
    CHECK_INT(at_parse_reg("+CGREG: 5", &r), 0);
    CHECK_INT(r.kind, AT_REG_CGREG);
    CHECK_INT(r.n, -1);
    CHECK_INT(r.stat, 5);
    CHECK_INT(at_parse_reg("+C5GREG: 1,\"00A1B2\",\"123456789\",11", &r), 0);
    CHECK_INT(r.kind, AT_REG_C5GREG);
    CHECK_INT(r.n, -1);
    CHECK_INT(r.lac, 0xA1B2);
    CHECK_INT(r.ci, 0x123456789LL);
    CHECK_INT(r.act, 11);
    /* every stat value */
    static const enum modem_reg map[] = {
        MODEM_REG_NOT_REGISTERED, MODEM_REG_HOME,    MODEM_REG_SEARCHING, MODEM_REG_DENIED,
        MODEM_REG_UNKNOWN,        MODEM_REG_ROAMING, MODEM_REG_HOME,      MODEM_REG_ROAMING,
        MODEM_REG_NOT_REGISTERED, MODEM_REG_HOME,    MODEM_REG_ROAMING,   MODEM_REG_NOT_REGISTERED};
    for (int st = 0; st <= 11; st++) {
        char line[32];
        snprintf(line, sizeof line, "+CREG: 0,%d", st);
        CHECK_INT(at_parse_reg(line, &r), 0);
        CHECK_INT(r.stat, st);
        CHECK_INT(r.reg, map[st]);
    }
    CHECK_INT(at_parse_reg("+CREG: ", &r), -1);
    CHECK_INT(at_parse_reg("+CREG: x,1", &r), -1);
    CHECK_INT(at_parse_reg("+COPS: 0", &r), -1);

    CHECK_INT(at_reg_best(MODEM_REG_HOME, MODEM_REG_ROAMING), MODEM_REG_HOME);
    CHECK_INT(at_reg_best(MODEM_REG_SEARCHING, MODEM_REG_ROAMING), MODEM_REG_ROAMING);
    CHECK_INT(at_reg_best(MODEM_REG_DENIED, MODEM_REG_SEARCHING), MODEM_REG_SEARCHING);
    CHECK_INT(at_reg_best(MODEM_REG_NOT_REGISTERED, MODEM_REG_DENIED), MODEM_REG_DENIED);
    CHECK_INT(at_reg_best(MODEM_REG_UNKNOWN, MODEM_REG_NOT_REGISTERED), MODEM_REG_NOT_REGISTERED);
    CHECK_INT(at_reg_best(MODEM_REG_UNKNOWN, MODEM_REG_UNKNOWN), MODEM_REG_UNKNOWN);
}

static void t_cops(void)
{
    struct at_cops c;
    CHECK_INT(at_parse_cops("+COPS: 0,0,\"MegaFon\",7", &c), 0);
    CHECK_INT(c.mode, 0);
    CHECK_INT(c.format, 0);
    CHECK_STR(c.oper, "MegaFon");
    CHECK_INT(c.act, 7);
    CHECK_STR(c.mcc, "");
    CHECK_INT(at_parse_cops("+COPS: 0,1,\"MTS\"", &c), 0);
    CHECK_INT(c.format, 1);
    CHECK_STR(c.oper, "MTS");
    CHECK_INT(c.act, -1);
    CHECK_INT(at_parse_cops("+COPS: 0,2,\"25001\",7", &c), 0);
    CHECK_STR(c.mcc, "250");
    CHECK_STR(c.mnc, "01");
    CHECK_INT(at_parse_cops("+COPS: 1,2,\"310260\",2", &c), 0);
    CHECK_STR(c.mcc, "310");
    CHECK_STR(c.mnc, "260");
    CHECK_INT(c.act, 2);
    CHECK_INT(at_parse_cops("+COPS: 2", &c), 0);
    CHECK_INT(c.mode, 2);
    CHECK_INT(c.format, -1);
    CHECK_STR(c.oper, "");
    /* CSCS="UCS2": "Beeline" */
    CHECK_INT(at_parse_cops("+COPS: 0,0,\"0042006500650020006C0069006E0065\",7", &c), 0);
    CHECK_STR(c.oper, "Bee line");
    CHECK_INT(at_parse_cops("+COPS: 0,2,\"00320035003000300032\",7", &c), 0);
    CHECK_STR(c.oper, "25002");
    CHECK_STR(c.mnc, "02");
    CHECK_INT(at_parse_cops("+COPS: (2,\"T-Mobile\",\"TMO\",\"31026\",0)", &c), -1);
    CHECK_INT(at_parse_cops("SOME RANDOM RESPONSE", &c), -1);
}

static void t_cpsi(void)
{
    struct at_cell c;
    /* SIM7600: RSRQ/RSRP/RSSI in tenths of a dB, TAC hex, cell id decimal */
    CHECK_INT(at_parse_cpsi("+CPSI: LTE,Online,250-01,0x1A2B,26543617,252,EUTRAN-BAND3,1300,5,5,"
                            "-94,-987,-651,14",
                            &c),
              0);
    CHECK_INT(c.net, MODEM_NET_LTE);
    CHECK(c.online);
    CHECK_STR(c.mcc, "250");
    CHECK_STR(c.mnc, "01");
    CHECK_INT(c.tac, 0x1A2B);
    CHECK_INT(c.cell_id, 26543617);
    CHECK_INT(c.pci, 252);
    CHECK_STR(c.band, "EUTRAN-BAND3");
    CHECK_INT(c.channel, 1300);
    CHECK_NEAR(c.rsrq_db, -9.4, 1e-9);
    CHECK_NEAR(c.rsrp_dbm, -98.7, 1e-9);
    CHECK_NEAR(c.rssi_dbm, -65.1, 1e-9);
    CHECK_NEAR(c.sinr_db, 14, 1e-9);
    CHECK_NAN(c.rscp_dbm);
    /* SIM7000: whole units */
    CHECK_INT(at_parse_cpsi("+CPSI: LTE CAT-M1,Online,250-99,0x0E2F,1234567,101,EUTRAN-BAND20,"
                            "6400,3,3,-11,-95,-70,9",
                            &c),
              0);
    CHECK_INT(c.net, MODEM_NET_LTE_M);
    CHECK_NEAR(c.rsrq_db, -11, 1e-9);
    CHECK_NEAR(c.rsrp_dbm, -95, 1e-9);
    CHECK_NEAR(c.rssi_dbm, -70, 1e-9);
    CHECK_INT(at_parse_cpsi("+CPSI: LTE NB-IOT,Online,460-11,0x5AE1,187212754,82,EUTRAN-BAND5,"
                            "2506,0,0,-7,-115,-110,13",
                            &c),
              0);
    CHECK_INT(c.net, MODEM_NET_NB_IOT);
    CHECK_NEAR(c.rsrp_dbm, -115, 1e-9);
    /* NO SERVICE */
    CHECK_INT(at_parse_cpsi("+CPSI: NO SERVICE,Online", &c), 0);
    CHECK_INT(c.net, MODEM_NET_NONE);
    CHECK(c.online);
    CHECK_INT(c.tac, -1);
    CHECK_NAN(c.rsrp_dbm);
    CHECK_INT(at_parse_cpsi("+CPSI: NO SERVICE,Low Power Mode", &c), 0);
    CHECK(!c.online);
    /* GSM: "<arfcn> <band>" and RxLev in dBm */
    CHECK_INT(at_parse_cpsi("+CPSI: GSM,Online,460-00,0x182d,12401,27 EGSM 900,-64,2110,42-42", &c),
              0);
    CHECK_INT(c.net, MODEM_NET_GSM);
    CHECK_INT(c.tac, 0x182d);
    CHECK_INT(c.cell_id, 12401);
    CHECK_INT(c.channel, 27);
    CHECK_STR(c.band, "EGSM 900");
    CHECK_NEAR(c.rssi_dbm, -64, 1e-9);
    /* WCDMA: Ec/Io and RSCP as magnitudes */
    CHECK_INT(at_parse_cpsi("+CPSI: WCDMA,Online,505-01,0x0152,14302219,WCDMA 850,214,4436,0,"
                            "12.5,83,23,36,500",
                            &c),
              0);
    CHECK_INT(c.net, MODEM_NET_WCDMA);
    CHECK_INT(c.tac, 0x152);
    CHECK_INT(c.cell_id, 14302219);
    CHECK_STR(c.band, "WCDMA 850");
    CHECK_INT(c.pci, 214);
    CHECK_INT(c.channel, 4436);
    CHECK_NEAR(c.ecio_db, -12.5, 1e-9);
    CHECK_NEAR(c.rscp_dbm, -83, 1e-9);
    CHECK_NEAR(c.rssi_dbm, -70.5, 1e-9);
    CHECK_INT(at_parse_cpsi("+CPSI: WCDMA,Online,252-02,0x2612,-294967296,WCDMA IMT 2000,437,"
                            "10687,0,-3,-83,-32768,-83,-15",
                            &c),
              0);
    CHECK_INT(c.cell_id, -1);
    CHECK_NEAR(c.rscp_dbm, -83, 1e-9);
    CHECK_NEAR(c.ecio_db, -3, 1e-9);
    /* SIM8200 NR5G_SA in tenths, RSRP before RSRQ */
    CHECK_INT(at_parse_cpsi("+CPSI: NR5G_SA,Online,242-12,0x765D,4955280,0,NR5G_BAND78,640704,"
                            "-740,-110,240",
                            &c),
              0);
    CHECK_INT(c.net, MODEM_NET_NR5G_SA);
    CHECK_INT(c.tac, 0x765D);
    CHECK_INT(c.cell_id, 4955280);
    CHECK_INT(c.pci, 0);
    CHECK_STR(c.band, "NR5G_BAND78");
    CHECK_INT(c.channel, 640704);
    CHECK_NEAR(c.rsrp_dbm, -74.0, 1e-9);
    CHECK_NEAR(c.rsrq_db, -11.0, 1e-9);
    CHECK_NEAR(c.sinr_db, 24.0, 1e-9);
    /* SIM8200 EN-DC secondary line */
    CHECK_INT(at_parse_cpsi("+CPSI: NR5G_NSA,644,NR5G_BAND78,627264,-960,-120,95", &c), 0);
    CHECK_INT(c.net, MODEM_NET_NR5G_NSA);
    CHECK_INT(c.pci, 644);
    CHECK_INT(c.channel, 627264);
    CHECK_NEAR(c.rsrp_dbm, -96.0, 1e-9);
    CHECK_NEAR(c.rsrq_db, -12.0, 1e-9);
    CHECK_NEAR(c.sinr_db, 9.5, 1e-9);
    CHECK_INT(c.tac, -1);
    CHECK_INT(at_parse_cpsi("+CPSI: NR5G,58,643296,-12,-86,8.5", &c), 0);
    CHECK_INT(c.net, MODEM_NET_NR5G_NSA);
    CHECK_NEAR(c.rsrp_dbm, -86, 1e-9);
    CHECK_NEAR(c.rsrq_db, -12, 1e-9);
    CHECK_NEAR(c.sinr_db, 8.5, 1e-9);
    /* CDMA / EVDO: no modem_net for them, but not an error */
    CHECK_INT(at_parse_cpsi("+CPSI: CDMA,Online,460-03,0x3796,6,1,283,-69,-94,-107", &c), 0);
    CHECK_INT(c.net, MODEM_NET_NONE);
    CHECK_STR(c.mcc, "460");
    CHECK_INT(at_parse_cpsi("+CPSI: EVDO,Online,460-03,0x3796,6,1,283", &c), 0);
    /* transitional garbage: no signal values, no bogus channel */
    CHECK_INT(at_parse_cpsi("+CPSI: LTE,Online,250-20,0x4D07,200468789,0,EUTRAN-BAND0,4294967295,"
                            "0,0,0,0,0,0",
                            &c),
              0);
    CHECK_INT(c.channel, -1);
    CHECK_NAN(c.rsrp_dbm);
    CHECK_INT(at_parse_cpsi("+CPSI: NOT IN EN-DC CONNECTED MODE", &c), -1);
    CHECK_INT(at_parse_cpsi("+CPSI:", &c), -1);
    CHECK_INT(at_parse_cpsi("+CSQ: 1,2", &c), -1);

    enum modem_net n;
    CHECK_INT(at_parse_cnsmod("+CNSMOD: 0,8", &n), 0);
    CHECK_INT(n, MODEM_NET_LTE);
    CHECK_INT(at_parse_cnsmod("+CNSMOD: 4", &n), 0);
    CHECK_INT(n, MODEM_NET_WCDMA);
    CHECK_INT(at_parse_cnsmod("+CNSMOD: 0,3", &n), 0);
    CHECK_INT(n, MODEM_NET_GSM);
    CHECK_INT(at_parse_cnsmod("+CNSMOD: 0,0", &n), 0);
    CHECK_INT(n, MODEM_NET_NONE);
    CHECK_INT(at_parse_cnsmod("+CNSMOD: 0,77", &n), -1);
    CHECK_INT(at_parse_cnsmod("+CNSMOD:", &n), -1);
}

static void t_qeng(void)
{
    struct at_cell c;
    CHECK_INT(at_parse_qeng_serving("+QENG: \"servingcell\",\"NOCONN\",\"LTE\",\"FDD\",250,01,"
                                    "1A2B3C4,177,1300,3,5,5,794E,-92,-9,-63,14,10,23,-",
                                    &c),
              0);
    CHECK_INT(c.net, MODEM_NET_LTE);
    CHECK(c.online);
    CHECK_STR(c.mcc, "250");
    CHECK_STR(c.mnc, "01");
    CHECK_INT(c.cell_id, 0x1A2B3C4);
    CHECK_INT(c.pci, 177);
    CHECK_INT(c.channel, 1300);
    CHECK_STR(c.band, "EUTRAN-BAND3");
    CHECK_INT(c.tac, 0x794E);
    CHECK_NEAR(c.rsrp_dbm, -92, 1e-9);
    CHECK_NEAR(c.rsrq_db, -9, 1e-9);
    CHECK_NEAR(c.rssi_dbm, -63, 1e-9);
    CHECK_NEAR(c.sinr_db, 14, 1e-9);
    /* a value that can only be the 1/5-dB scale */
    CHECK_INT(at_parse_qeng_serving("+QENG: \"servingcell\",\"NOCONN\",\"LTE\",\"FDD\",250,01,"
                                    "1A2B3C4,177,1300,3,5,5,794E,-92,-9,-63,150,10",
                                    &c),
              0);
    CHECK_NEAR(c.sinr_db, 10, 1e-9);
    CHECK_INT(at_parse_qeng_serving("+QENG: \"servingcell\",\"LIMSRV\",\"WCDMA\",310,410,DEA6,"
                                    "2883C,4385,84,254,-102,-10,-,-,-,-,-",
                                    &c),
              0);
    CHECK_INT(c.net, MODEM_NET_WCDMA);
    CHECK_INT(c.tac, 0xDEA6);
    CHECK_INT(c.cell_id, 0x2883C);
    CHECK_INT(c.channel, 4385);
    CHECK_INT(c.pci, 84);
    CHECK_NEAR(c.rscp_dbm, -102, 1e-9);
    CHECK_NEAR(c.ecio_db, -10, 1e-9);
    CHECK_INT(at_parse_qeng_serving("+QENG: \"servingcell\",\"NOCONN\",\"GSM\",460,00,550A,2C56,"
                                    "46,85,0,-54,255,255,0,37,37,1,-,-,-,-,-,-,-,-,-,-",
                                    &c),
              0);
    CHECK_INT(c.net, MODEM_NET_GSM);
    CHECK_INT(c.tac, 0x550A);
    CHECK_INT(c.cell_id, 0x2C56);
    CHECK_INT(c.channel, 85);
    CHECK_NEAR(c.rssi_dbm, -54, 1e-9);
    /* EN-DC multi-line form */
    CHECK_INT(at_parse_qeng_serving("+QENG: \"servingcell\",\"NOCONN\"", &c), -1);
    CHECK_INT(at_parse_qeng_serving("+QENG: \"servingcell\",\"SEARCH\"", &c), 0);
    CHECK(!c.online);
    CHECK_INT(at_parse_qeng_serving("+QENG: \"LTE\",\"FDD\",460,01,5F1EA15,12,1650,3,5,5,DE10,"
                                    "-99,-11,-69,15,9,-,-",
                                    &c),
              0);
    CHECK_INT(c.net, MODEM_NET_LTE);
    CHECK_INT(c.tac, 0xDE10);
    CHECK_NEAR(c.rsrp_dbm, -99, 1e-9);
    CHECK_INT(at_parse_qeng_serving("+QENG:\"NR5G-NSA\",460,01,747,-71,13,-11,627264,78,12,1", &c),
              0);
    CHECK_INT(c.net, MODEM_NET_NR5G_NSA);
    CHECK_INT(c.pci, 747);
    CHECK_NEAR(c.rsrp_dbm, -71, 1e-9);
    CHECK_NEAR(c.sinr_db, 13, 1e-9);
    CHECK_NEAR(c.rsrq_db, -11, 1e-9);
    CHECK_INT(c.channel, 627264);
    CHECK_STR(c.band, "NR5G_BAND78");
    CHECK_INT(at_parse_qeng_serving("+QENG: \"neighbourcell intra\",\"LTE\",800,310,-14,-115,-80,"
                                    "0,8,4,10,2,62",
                                    &c),
              -1);
    CHECK_INT(at_parse_qeng_serving("+QENG: \"servingcell\"", &c), -1);
}

static void t_sim(void)
{
    enum modem_sim s;
    CHECK_INT(at_parse_cpin("+CPIN: READY", &s), 0);
    CHECK_INT(s, MODEM_SIM_READY);
    CHECK_INT(at_parse_cpin("+CPIN: SIM PIN", &s), 0);
    CHECK_INT(s, MODEM_SIM_PIN);
    CHECK_INT(at_parse_cpin("+CPIN: SIM PUK2", &s), 0);
    CHECK_INT(s, MODEM_SIM_PUK);
    CHECK_INT(at_parse_cpin("+CPIN: NOT INSERTED", &s), 0);
    CHECK_INT(s, MODEM_SIM_ABSENT);
    CHECK_INT(at_parse_cpin("+CME ERROR: 10", &s), 0);
    CHECK_INT(s, MODEM_SIM_ABSENT);
    CHECK_INT(at_parse_cpin("+CME ERROR: SIM not inserted", &s), 0);
    CHECK_INT(s, MODEM_SIM_ABSENT);
    CHECK_INT(at_parse_cpin("+CME ERROR: 13", &s), 0);
    CHECK_INT(s, MODEM_SIM_ERROR);
    CHECK_INT(at_parse_cpin("+CME ERROR: 100", &s), -1);
    CHECK_INT(at_parse_cpin("+CPIN: BANANA", &s), -1);
    CHECK_INT(at_sim_from_cme(10), MODEM_SIM_ABSENT);
    CHECK_INT(at_sim_from_cme(13), MODEM_SIM_ERROR);
    CHECK_INT(at_sim_from_cme(14), MODEM_SIM_ERROR);
    CHECK_INT(at_sim_from_cme(15), MODEM_SIM_ERROR);
    CHECK_INT(at_sim_from_cme(3), MODEM_SIM_UNKNOWN);

    char b[32];
    CHECK_INT(at_parse_iccid("+ICCID: 89701012345678901234", b, sizeof b), 0);
    CHECK_STR(b, "89701012345678901234");
    CHECK_INT(at_parse_iccid("+CCID: \"8970101234567890123F\"", b, sizeof b), 0);
    CHECK_STR(b, "8970101234567890123");
    CHECK_INT(at_parse_iccid("+QCCID: 8970101234567890123", b, sizeof b), 0);
    CHECK_STR(b, "8970101234567890123");
    CHECK_INT(at_parse_iccid("8970101234567890123", b, sizeof b), 0);
    CHECK_INT(at_parse_iccid("+ICCID: 897010123456", b, sizeof b), -1);
    CHECK_INT(at_parse_iccid("+ICCID: 8970101234567890123X", b, sizeof b), -1);
    CHECK_INT(at_parse_iccid("+ICCID: 89701012345678901234", b, 20), -1); /* no room */
    CHECK_INT(at_parse_imei("867698041234567", b, sizeof b), 0);
    CHECK_STR(b, "867698041234567");
    CHECK_INT(at_parse_imei("+CGSN: \"867698041234567\"", b, sizeof b), 0);
    CHECK_STR(b, "867698041234567");
    CHECK_INT(at_parse_imei("8676980412345", b, sizeof b), -1);
    CHECK_INT(at_parse_imei("86769804123456A", b, sizeof b), -1);
    CHECK_INT(at_parse_imsi("250011234567890", b, sizeof b), 0);
    CHECK_STR(b, "250011234567890");
    CHECK_INT(at_parse_imsi("2500112345678901", b, sizeof b), -1);
    CHECK_INT(at_parse_imsi("OK", b, sizeof b), -1);
    CHECK_INT(at_parse_ident_text("SIMCOM INCORPORATED", b, sizeof b), 0);
    CHECK_STR(b, "SIMCOM INCORPORATED");
    CHECK_INT(at_parse_ident_text("+CGMR: LE20B04SIM7600M22", b, sizeof b), 0);
    CHECK_STR(b, "LE20B04SIM7600M22");
    CHECK_INT(at_parse_ident_text("Revision: EC25EFAR06A06M4G", b, sizeof b), 0);
    CHECK_STR(b, "EC25EFAR06A06M4G");
    CHECK_INT(at_parse_ident_text("OK", b, sizeof b), -1);
    CHECK_INT(at_parse_ident_text("   ", b, sizeof b), -1);
}

static void t_gnss(void)
{
    struct modem_gnss g;
    CHECK_INT(at_parse_cgpsinfo("+CGPSINFO: 5545.123456,N,03737.654321,E,120124,093015.0,156.3,"
                                "10.0,271.5",
                                &g),
              0);
    CHECK(g.valid);
    CHECK(g.fix);
    CHECK_NEAR(g.lat, 55 + 45.123456 / 60, 1e-9);
    CHECK_NEAR(g.lon, 37 + 37.654321 / 60, 1e-9);
    CHECK_NEAR(g.alt_m, 156.3, 1e-9);
    CHECK_NEAR(g.speed_kmh, 18.52, 1e-9);
    CHECK_NEAR(g.course_deg, 271.5, 1e-9);
    CHECK_INT(g.utc, 1705051815); /* 2024-01-12 09:30:15 UTC */
    CHECK_INT(at_parse_cgpsinfo("+CGPSINFO: 3342.123,S,07030.5,W,010100,000000.0,5,0.0,", &g), 0);
    CHECK_NEAR(g.lat, -(33 + 42.123 / 60), 1e-9);
    CHECK_NEAR(g.lon, -(70 + 30.5 / 60), 1e-9);
    CHECK_NAN(g.course_deg);
    CHECK_INT(g.utc, 946684800);
    CHECK_INT(at_parse_cgpsinfo("+CGPSINFO: ,,,,,,,,", &g), 0);
    CHECK(g.valid);
    CHECK(!g.fix);
    CHECK_NAN(g.lat);
    CHECK_INT(g.utc, -1);
    CHECK_INT(at_parse_cgpsinfo("+CGPSINFO: ,,,,,,,", &g), -1);
    CHECK_INT(at_parse_cgpsinfo("+CGPSINFO: 5575.0,N,03737.0,E,120124,093015.0,1,1,1", &g), -1);
    CHECK_INT(at_parse_cgpsinfo("+CGPSINFO: 5545.0,X,03737.0,E,120124,093015.0,1,1,1", &g), -1);

    CHECK_INT(at_parse_qgpsloc("+QGPSLOC: 093015.000,55.75205,37.62810,1.1,156.0,3,271.50,18.5,"
                               "10.0,120124,07",
                               &g),
              0);
    CHECK(g.fix);
    CHECK_NEAR(g.lat, 55.75205, 1e-9);
    CHECK_NEAR(g.lon, 37.62810, 1e-9);
    CHECK_NEAR(g.speed_kmh, 18.5, 1e-9);
    CHECK_NEAR(g.course_deg, 271.5, 1e-9);
    CHECK_INT(g.utc, 1705051815);
    CHECK_INT(at_parse_qgpsloc("+QGPSLOC: 093015.000,5545.1234,N,03737.6543,E,1.1,156.0,3,271.50,"
                               "18.5,10.0,120124,07",
                               &g),
              0);
    CHECK_NEAR(g.lat, 55 + 45.1234 / 60, 1e-9);
    CHECK_NEAR(g.lon, 37 + 37.6543 / 60, 1e-9);
    CHECK_INT(at_parse_qgpsloc("+QGPSLOC: 093015.000", &g), -1);
}

static void t_ussd_decoders(void)
{
    char out[320];
    /* "hello" packed: E8 32 9B FD 06 */
    CHECK_INT(ussd_decode_gsm7_packed_hex("E8329BFD06", out, sizeof out), 5);
    CHECK_STR(out, "hello");
    /* 7 characters pad with CR, 8 fill exactly */
    CHECK_INT(ussd_decode_gsm7_packed_hex("61F1985C369F1B", out, sizeof out), 7);
    CHECK_STR(out, "abcdefg"); /* 7 characters: the 8th septet is CR padding */
    CHECK_INT(ussd_decode_gsm7_packed_hex("61F1985C369FD1", out, sizeof out), 8);
    CHECK_STR(out, "abcdefgh");
    CHECK_INT(ussd_decode_gsm7_packed_hex("c2303bec1e97413199ab0603", out, sizeof out), 13);
    CHECK_STR(out, "Balance 12.50");
    CHECK_INT(ussd_decode_gsm7_packed_hex("", out, sizeof out), 0);
    CHECK_STR(out, "");
    CHECK_INT(ussd_decode_gsm7_packed_hex("ABC", out, sizeof out), -1);
    CHECK_INT(ussd_decode_gsm7_packed_hex("zz", out, sizeof out), -1);
    unsigned char sep[] = {0x1B, 0x65, ' ', 0x00, 0x01, 0x1B, 0x28, 0x10, 0x0A};
    CHECK(ussd_gsm7_to_utf8(sep, sizeof sep, out, sizeof out) > 0);
    CHECK_STR(out, "\xe2\x82\xac @\xc2\xa3{\xce\x94\n");
    unsigned char bad[] = {0x80};
    CHECK_INT(ussd_gsm7_to_utf8(bad, 1, out, sizeof out), -1);
    /* UCS2 incl. a surrogate pair (U+1F600) */
    CHECK_INT(ussd_decode_ucs2_hex("0411043004DB0020D83DDE00", out, sizeof out), 11);
    CHECK_STR(out, "\xd0\x91\xd0\xb0\xd3\x9b \xf0\x9f\x98\x80");
    CHECK_INT(ussd_decode_ucs2_hex("D83D0041", out, sizeof out), -1);
    CHECK_INT(ussd_decode_ucs2_hex("DE00", out, sizeof out), -1);
    CHECK_INT(ussd_decode_ucs2_hex("041", out, sizeof out), -1);
    CHECK_INT(ussd_decode_ucs2_hex("", out, sizeof out), 0);
    CHECK_INT(ussd_decode_ucs2_hex("00410042", out, 0), 0); /* no room at all */
    /* truncation at a character boundary */
    char small[4];
    CHECK_INT(ussd_decode_ucs2_hex("041104110411", small, sizeof small), 2);
    CHECK_STR(small, "\xd0\x91");
}

static void t_cusd(void)
{
    struct at_cusd u;
    CHECK_INT(at_parse_cusd("+CUSD: 0,\"Balance: 123.45 rub\",15", &u), 0);
    CHECK_INT(u.m, 0);
    CHECK_INT(u.dcs, 15);
    CHECK_STR(u.text, "Balance: 123.45 rub");
    /* multi-line text joined with \n, commas and quotes inside */
    CHECK_INT(at_parse_cusd("+CUSD: 1,\"Menu:\n1, \"Balance\"\n2. Tariff\",15", &u), 0);
    CHECK_INT(u.m, 1);
    CHECK_STR(u.text, "Menu:\n1, \"Balance\"\n2. Tariff");
    /* UCS2 (dcs 72): "Баланс: 56,78 р." */
    CHECK_INT(
        at_parse_cusd("+CUSD: 0,\"04110430043B0430043D0441003A002000350036002C0037003800200440"
                      "002E\",72",
                      &u),
        0);
    CHECK_STR(u.text, "Баланс: 56,78 р.");
    /* dcs 15 but UCS2 hex (CSCS="UCS2") */
    CHECK_INT(at_parse_cusd("+CUSD: 0,\"00420061006C0061006E00630065\",15", &u), 0);
    CHECK_STR(u.text, "Balance");
    /* dcs 15 but packed GSM-7 hex */
    CHECK_INT(at_parse_cusd("+CUSD: 0,\"E8329BFD06\",15", &u), 0);
    CHECK_STR(u.text, "hello");
    /* numeric answers stay numbers */
    CHECK_INT(at_parse_cusd("+CUSD: 0,\"12345678\",15", &u), 0);
    CHECK_STR(u.text, "12345678");
    CHECK_INT(at_parse_cusd("+CUSD: 0,\"1000\",15", &u), 0);
    CHECK_STR(u.text, "1000");
    /* dcs 17: language prefix "ru" (packed GSM-7) then UCS2 */
    CHECK_INT(at_parse_cusd("+CUSD: 0,\"F23A0411\",17", &u), 0);
    CHECK_STR(u.text, "Б");
    /* 8-bit (dcs 68 = 0x44) bytes */
    CHECK_INT(at_parse_cusd("+CUSD: 0,\"48656C6C6F\",68", &u), 0);
    CHECK_STR(u.text, "Hello");
    CHECK_INT(at_parse_cusd("+CUSD: 2", &u), 0);
    CHECK_INT(u.m, 2);
    CHECK_INT(u.dcs, -1);
    CHECK_STR(u.text, "");
    CHECK_INT(at_parse_cusd("+CUSD: 0,\"truncated", &u), 0);
    CHECK_STR(u.text, "truncated");
    CHECK_INT(at_parse_cusd("+CUSD: x", &u), -1);
    CHECK_INT(at_parse_cusd("+CUSD:", &u), -1);
    CHECK_INT(at_parse_cusd("OK", &u), -1);
}

static void t_amount(void)
{
    static const struct {
        const char *text;
        double v;
    } ok[] = {
        {"Balance: 123.45 rub", 123.45},
        {"Vash balans 56,78 r.", 56.78},
        {"Ваш баланс: -12,50 руб.", -12.50},
        {"Баланс 1 234,56р", 1234.56},
        {"Your balance is EUR 5.00, valid until 12.01.2027", 5.00},
        {"Bal:$100.00 *\nExp 01 Jan 2013\n1. Recharge", 100.00},
        {"БАЛАНС: 0,00 р. Пакет 10 ГБ", 0.0},
        {"Na 12.01.2027 vash balans 77.10 rub.", 77.10},
        {"Ostatok 500 min. Balans: 42 rub", 42},
        {"Баланс 99.9 руб. Звоните +79161234567", 99.9},
        {"Баланс: минус 15,20 руб.", -15.20},
        {"Баланс для +79161234567: 320 руб", 320},
        {"Спасибо! На счете 1 500 руб. Бонусы: 20", 1500},
        {"Credit 1,234.56 USD", 1234.56},
        {"Credit limit 500 rub, balance 20.00 rub", 20.00},
        {"Остаток: 100 мин, 5 ГБ. Баланс 50 руб", 50},
        {"Balance 1 000 000,00 RUB", 1000000.00},
        {"Баланс: 1234.5 руб", 1234.5},
        {"USSD: 75.30 руб. Подробнее *100#", 75.30},
        {"Остаток трафика 3,5 ГБ. На счете 210 р.", 210},
        {"Осталось 12,30 р. до 01.02.2026", 12.30},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        double v = NAN;
        int rc = ussd_find_amount(ok[i].text, &v);
        CHECK_MSG(rc == 0 && fabs(v - ok[i].v) < 1e-9, "\"%s\": rc %d amount %f, expected %f",
                  ok[i].text, rc, v, ok[i].v);
    }
    static const char *const none[] = {
        "Your request has been accepted",
        "Call 0611 for help or dial *100#",
        "You have 0 free minutes and 20 MORE Weekend minutes",
        "Valid until 12.01.2027 23:59",
        "",
    };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        double v = NAN;
        int rc = ussd_find_amount(none[i], &v);
        CHECK_MSG(rc == -1, "\"%s\": rc %d amount %f, expected none", none[i], rc, v);
    }
}

/* ---- corpus walk ------------------------------------------------------------------------- */

#define MAXL 64
struct lines {
    char *l[MAXL];
    int n;
    char buf[8192];
};

/* Split a response on \r\n / \r / \n into non-empty lines. */
static void split_lines(const char *resp, struct lines *L)
{
    snprintf(L->buf, sizeof L->buf, "%s", resp);
    L->n = 0;
    char *p = L->buf;
    while (*p && L->n < MAXL) {
        char *e = p + strcspn(p, "\r\n");
        char save = *e;
        *e = '\0';
        if (*p)
            L->l[L->n++] = p;
        if (!save)
            break;
        p = e + 1;
    }
}

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool jhas(json_t *o, const char *k)
{
    return json_object_get(o, k) != NULL;
}

static double jnum(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static int act_from_name(const char *s)
{
    if (!s || strcmp(s, "UNKNOWN") == 0)
        return -1;
    if (strcmp(s, "GSM") == 0)
        return 0;
    if (strcmp(s, "UMTS") == 0)
        return 2;
    if (strcmp(s, "EDGE") == 0)
        return 3;
    if (strcmp(s, "LTE") == 0)
        return 7;
    if (strcmp(s, "5GNR") == 0)
        return 11;
    return -2;
}

struct counts {
    int checked, skipped;
};

static struct counts c_reg, c_op, c_sig, c_sim, c_sys, c_gps, c_ussd;

static void corpus_reg(int id, struct lines *L, json_t *ex)
{
    struct at_reg r;
    int i;
    for (i = 0; i < L->n; i++)
        if (at_parse_reg(L->l[i], &r) == 0)
            break;
    CHECK_MSG(i < L->n, "case %d: no registration line parsed", id);
    if (i == L->n)
        return;
    c_reg.checked++;
    CHECK_MSG(r.stat == (int)jnum(ex, "stat"), "case %d: stat %d", id, r.stat);
    const char *kind = jstr(ex, "kind");
    if (kind) {
        static const char *const names[] = {"CREG", "CGREG", "CEREG", "C5GREG"};
        CHECK_MSG(strcmp(names[r.kind], kind) == 0, "case %d: kind %s", id, names[r.kind]);
    }
    if (jhas(ex, "lac_or_tac")) {
        long lac = (long)jnum(ex, "lac_or_tac");
        CHECK_MSG(r.lac == lac || (lac == 0 && r.lac == -1), "case %d: lac %ld expected %ld", id,
                  r.lac, lac);
    }
    if (jhas(ex, "ci")) {
        long long ci = (long long)jnum(ex, "ci");
        CHECK_MSG(r.ci == ci || (ci == 0 && r.ci == -1), "case %d: ci %lld expected %lld", id, r.ci,
                  ci);
    }
    if (jhas(ex, "act")) {
        int a = act_from_name(jstr(ex, "act"));
        CHECK_MSG(r.act == a, "case %d: act %d expected %d", id, r.act, a);
    }
    json_t *sol = json_object_get(ex, "solicited");
    /* MM's corpus labels come from test names; check the form only where the reply shape is
     * unambiguous (the prefix-only stat and the regex it matched). */
    if (json_is_boolean(sol) && jhas(ex, "mm_regex_index")) {
        int idx = (int)jnum(ex, "mm_regex_index");
        bool sol_shape =
            idx == 1 || idx == 3 || idx == 4 || idx == 7 || idx == 8 || idx == 11 || idx == 13;
        CHECK_MSG((r.n >= 0) == sol_shape, "case %d: n %d for regex %d", id, r.n, idx);
    }
    if (jhas(ex, "n"))
        CHECK_MSG(r.n == (int)jnum(ex, "n"), "case %d: n %d", id, r.n);
    enum modem_reg want = MODEM_REG_UNKNOWN;
    const char *sn = jstr(ex, "stat_name");
    if (sn) {
        if (!strcmp(sn, "HOME") || !strcmp(sn, "HOME_SMS_ONLY"))
            want = MODEM_REG_HOME;
        else if (!strcmp(sn, "ROAMING") || !strcmp(sn, "ROAMING_CSFB_NOT_PREFERRED"))
            want = MODEM_REG_ROAMING;
        else if (!strcmp(sn, "SEARCHING"))
            want = MODEM_REG_SEARCHING;
        else if (!strcmp(sn, "DENIED"))
            want = MODEM_REG_DENIED;
        else if (!strcmp(sn, "IDLE") || !strcmp(sn, "ATTACHED_RLOS"))
            want = MODEM_REG_NOT_REGISTERED;
        CHECK_MSG(r.reg == want, "case %d: reg %d expected %d", id, r.reg, want);
    }
}

static void corpus_operator(int id, const char *cmd, struct lines *L, json_t *ex)
{
    if (strstr(cmd, "COPS=?")) {
        c_op.skipped++;
        return;
    }
    struct at_cops c;
    int i;
    for (i = 0; i < L->n; i++)
        if (at_parse_cops(L->l[i], &c) == 0)
            break;
    c_op.checked++;
    bool want_none = jhas(ex, "error") ||
                     (jhas(ex, "networkName") && json_is_null(json_object_get(ex, "networkName")));
    if (want_none) {
        CHECK_MSG(i == L->n, "case %d: parsed a COPS line from an error reply", id);
        return;
    }
    CHECK_MSG(i < L->n, "case %d: no COPS line parsed", id);
    if (i == L->n)
        return;
    const char *name = jstr(ex, "operator") ? jstr(ex, "operator") : jstr(ex, "networkName");
    if (name)
        CHECK_MSG(strcmp(c.oper, name) == 0, "case %d: oper \"%s\"", id, c.oper);
    if (jhas(ex, "mode"))
        CHECK_MSG(c.mode == (int)jnum(ex, "mode"), "case %d: mode %d", id, c.mode);
    if (jhas(ex, "format"))
        CHECK_MSG(c.format == (int)jnum(ex, "format"), "case %d: format %d", id, c.format);
    json_t *act = json_object_get(ex, "act");
    if (json_is_integer(act))
        CHECK_MSG(c.act == (int)json_integer_value(act), "case %d: act %d", id, c.act);
    else if (json_is_null(act))
        CHECK_MSG(c.act == -1, "case %d: act %d", id, c.act);
    else if (json_is_string(act))
        CHECK_MSG(c.act == act_from_name(json_string_value(act)), "case %d: act %d", id, c.act);
    if (c.format == 2) {
        char plmn[8];
        snprintf(plmn, sizeof plmn, "%s%s", c.mcc, c.mnc);
        CHECK_MSG(strcmp(plmn, c.oper) == 0, "case %d: plmn %s", id, plmn);
    }
}

static void corpus_signal(int id, const char *cmd, struct lines *L, json_t *ex)
{
    if (strstr(cmd, "CESQ")) {
        struct at_cesq q;
        CHECK_MSG(L->n == 1 && at_parse_cesq(L->l[0], &q) == 0, "case %d: CESQ", id);
        if (L->n != 1)
            return;
        c_sig.checked++;
        static const struct {
            const char *key;
            size_t off;
        } m[] = {{"rssi", offsetof(struct at_cesq, rssi_dbm)},
                 {"rscp", offsetof(struct at_cesq, rscp_dbm)},
                 {"ecio", offsetof(struct at_cesq, ecno_db)},
                 {"rsrq", offsetof(struct at_cesq, rsrq_db)},
                 {"rsrp", offsetof(struct at_cesq, rsrp_dbm)}};
        for (size_t k = 0; k < sizeof m / sizeof m[0]; k++) {
            double got = *(const double *)((const char *)&q + m[k].off);
            double want = jnum(ex, m[k].key);
            if (isnan(want))
                CHECK_MSG(isnan(got), "case %d: %s %f expected NAN", id, m[k].key, got);
            else
                CHECK_MSG(fabs(got - want) <= 0.1, "case %d: %s %f expected %f", id, m[k].key, got,
                          want);
        }
        return;
    }
    struct at_csq q;
    int i;
    for (i = 0; i < L->n; i++)
        if (at_parse_csq(L->l[i], &q) == 0)
            break;
    c_sig.checked++;
    if (jhas(ex, "error")) {
        CHECK_MSG(i == L->n, "case %d: CSQ parsed from an error reply", id);
        return;
    }
    CHECK_MSG(i < L->n, "case %d: no CSQ line", id);
    if (i == L->n)
        return;
    double ss = jnum(ex, "signalStrength");
    if (!isnan(ss))
        CHECK_MSG(q.rssi == (ss < 0 ? 99 : (int)ss), "case %d: rssi %d", id, q.rssi);
    if (jhas(ex, "rssi"))
        CHECK_MSG(q.rssi == (int)jnum(ex, "rssi"), "case %d: rssi %d", id, q.rssi);
    if (jhas(ex, "ber"))
        CHECK_MSG(q.ber == (int)jnum(ex, "ber"), "case %d: ber %d", id, q.ber);
    const char *dk = jhas(ex, "rssi_dbm_27007") ? "rssi_dbm_27007" : "rssi_dbm";
    if (jhas(ex, dk)) {
        double want = jnum(ex, dk);
        if (isnan(want))
            CHECK_MSG(isnan(q.rssi_dbm), "case %d: dBm %f", id, q.rssi_dbm);
        else
            CHECK_MSG(fabs(q.rssi_dbm - want) < 1e-9, "case %d: dBm %f", id, q.rssi_dbm);
    }
}

static enum modem_sim sim_from_lock(const char *s)
{
    if (!strcmp(s, "SIM_PIN") || !strcmp(s, "SIM_PIN2") || !strncmp(s, "PH_", 3))
        return MODEM_SIM_PIN;
    if (!strcmp(s, "SIM_PUK") || !strcmp(s, "SIM_PUK2"))
        return MODEM_SIM_PUK;
    if (!strcmp(s, "READY"))
        return MODEM_SIM_READY;
    return MODEM_SIM_UNKNOWN;
}

static void corpus_sim(int id, const char *cmd, const char *resp, struct lines *L, json_t *ex)
{
    if (jhas(ex, "lock")) {
        enum modem_sim s = MODEM_SIM_UNKNOWN;
        /* the prefix-less form keeps its leading blanks, so feed the raw response */
        int rc = at_parse_cpin(L->n == 1 ? resp : L->l[0], &s);
        enum modem_sim want = sim_from_lock(jstr(ex, "lock"));
        if (want == MODEM_SIM_UNKNOWN)
            CHECK_MSG(rc == -1, "case %d: cpin rc %d", id, rc);
        else
            CHECK_MSG(rc == 0 && s == want, "case %d: cpin rc %d sim %d", id, rc, s);
        c_sim.checked++;
        return;
    }
    if (jhas(ex, "numeric_equivalent")) { /* "+CME ERROR: SIM not inserted" */
        enum modem_sim s = MODEM_SIM_UNKNOWN;
        int rc = at_parse_cpin(L->l[0], &s);
        CHECK_MSG(rc == 0 && s == at_sim_from_cme((int)jnum(ex, "numeric_equivalent")),
                  "case %d: verbose CME rc %d sim %d", id, rc, s);
        c_sim.checked++;
        return;
    }
    if (strstr(cmd, "CCID")) {
        char b[32];
        int i, rc = -1;
        for (i = 0; i < L->n && rc != 0; i++)
            rc = at_parse_iccid(L->l[i], b, sizeof b);
        if (jhas(ex, "error"))
            CHECK_MSG(rc == -1, "case %d: iccid accepted \"%s\"", id, b);
        else
            CHECK_MSG(rc == 0 && strcmp(b, jstr(ex, "iccid")) == 0, "case %d: iccid rc %d %s", id,
                      rc, rc == 0 ? b : "");
        c_sim.checked++;
        return;
    }
    c_sim.skipped++;
}

static bool near_or_trunc(double got, double want, double tol)
{
    return !isnan(got) && fabs(got - want) <= tol;
}

static int band_num(const char *band)
{
    const char *p = band + strlen(band);
    while (p > band && isdigit((unsigned char)p[-1]))
        p--;
    return *p ? atoi(p) : -1;
}

static void corpus_cpsi(int id, struct lines *L, json_t *ex)
{
    struct at_cell cells[4], c;
    int n = 0, parsed = 0;
    for (int i = 0; i < L->n; i++) {
        if (strncmp(L->l[i], "+CPSI", 5) != 0)
            continue;
        if (at_parse_cpsi(L->l[i], &c) == 0) {
            parsed++;
            if (c.net != MODEM_NET_NONE && n < 4)
                cells[n++] = c;
        }
    }
    c_sys.checked++;
    CHECK_MSG(parsed > 0, "case %d: no CPSI line parsed", id);
    if (jhas(ex, "observations"))
        CHECK_MSG(n == (int)jnum(ex, "observations"), "case %d: %d cells", id, n);
    if (n == 0)
        return;
    /* Kismet's assertions truncate tenths to integers: tolerance 1 unless exact tenths given */
    double tol = jhas(ex, "units") ? 0.05 : 1.0;
    struct at_cell *p = &cells[0];
    const char *rat = jstr(ex, "rat");
    if (rat) {
        enum modem_net want = !strcmp(rat, "LTE")          ? MODEM_NET_LTE
                              : !strcmp(rat, "LTE CAT-M1") ? MODEM_NET_LTE_M
                              : !strcmp(rat, "LTE NB-IOT") ? MODEM_NET_NB_IOT
                              : !strcmp(rat, "GSM")        ? MODEM_NET_GSM
                              : !strcmp(rat, "NR")         ? MODEM_NET_NR5G_SA
                                                           : MODEM_NET_NONE;
        CHECK_MSG(p->net == want, "case %d: net %d", id, p->net);
    }
    if (jstr(ex, "mcc"))
        CHECK_MSG(!strcmp(p->mcc, jstr(ex, "mcc")), "case %d: mcc %s", id, p->mcc);
    if (jstr(ex, "mnc"))
        CHECK_MSG(!strcmp(p->mnc, jstr(ex, "mnc")), "case %d: mnc %s", id, p->mnc);
    double v;
    if (!isnan(v = jnum(ex, "tac")) || !isnan(v = jnum(ex, "lac")))
        CHECK_MSG(p->tac == (long)v, "case %d: tac %ld", id, p->tac);
    if (!isnan(v = jnum(ex, "cell_id")))
        CHECK_MSG(p->cell_id == (long long)v, "case %d: cell %lld", id, p->cell_id);
    if (!isnan(v = jnum(ex, "pci")))
        CHECK_MSG(p->pci == (long)v, "case %d: pci %ld", id, p->pci);
    if (!isnan(v = jnum(ex, "earfcn")) || !isnan(v = jnum(ex, "arfcn")))
        CHECK_MSG(p->channel == (long)v, "case %d: channel %ld", id, p->channel);
    if (!isnan(v = jnum(ex, "band")))
        CHECK_MSG(band_num(p->band) == (int)v, "case %d: band %s", id, p->band);
    if (jstr(ex, "arfcn_band")) {
        const char *ab = jstr(ex, "arfcn_band");
        CHECK_MSG(p->channel == atol(ab) && strstr(ab, p->band) && p->band[0], "case %d: %ld %s",
                  id, p->channel, p->band);
    }
    if (!isnan(v = jnum(ex, "rxlev_dbm")))
        CHECK_MSG(near_or_trunc(p->rssi_dbm, v, 0.01), "case %d: rxlev %f", id, p->rssi_dbm);
    static const struct {
        const char *k1, *k2;
        size_t off;
    } m[] = {{"rsrp", "rsrp_dbm", offsetof(struct at_cell, rsrp_dbm)},
             {"rsrq", "rsrq_db", offsetof(struct at_cell, rsrq_db)},
             {"rssi", "rssi_dbm", offsetof(struct at_cell, rssi_dbm)},
             {"sinr", "snr_db", offsetof(struct at_cell, sinr_db)},
             {"lte_rsrp", NULL, offsetof(struct at_cell, rsrp_dbm)}};
    for (size_t k = 0; k < sizeof m / sizeof m[0]; k++) {
        double want = jnum(ex, m[k].k1);
        if (isnan(want) && m[k].k2)
            want = jnum(ex, m[k].k2);
        if (isnan(want))
            continue;
        double got = *(const double *)((const char *)p + m[k].off);
        CHECK_MSG(near_or_trunc(got, want, tol), "case %d: %s %f expected %f", id, m[k].k1, got,
                  want);
    }
    /* the EN-DC secondary NR line */
    if (jhas(ex, "nr_rsrp")) {
        CHECK_MSG(n == 2 && cells[1].net == MODEM_NET_NR5G_NSA, "case %d: no NR leg", id);
        if (n == 2) {
            struct at_cell *q = &cells[1];
            CHECK_MSG(near_or_trunc(q->rsrp_dbm, jnum(ex, "nr_rsrp"), 1.0), "case %d nr rsrp %f",
                      id, q->rsrp_dbm);
            CHECK_MSG(near_or_trunc(q->rsrq_db, jnum(ex, "nr_rsrq"), 1.0), "case %d nr rsrq %f", id,
                      q->rsrq_db);
            CHECK_MSG(near_or_trunc(q->sinr_db, jnum(ex, "nr_sinr"), 1.0), "case %d nr sinr %f", id,
                      q->sinr_db);
            CHECK_MSG(q->pci == (long)jnum(ex, "nr_pci"), "case %d nr pci", id);
            CHECK_MSG(q->channel == (long)jnum(ex, "nr_arfcn"), "case %d nr arfcn", id);
        }
    }
}

static void corpus_qeng(int id, const char *cmd, struct lines *L, json_t *ex)
{
    struct at_cell c;
    if (strstr(cmd, "neighbourcell")) {
        for (int i = 0; i < L->n; i++)
            CHECK_MSG(at_parse_qeng_serving(L->l[i], &c) == -1, "case %d: neighbour accepted", id);
        c_sys.skipped++;
        return;
    }
    int i;
    for (i = 0; i < L->n; i++)
        if (at_parse_qeng_serving(L->l[i], &c) == 0)
            break;
    CHECK_MSG(i < L->n, "case %d: no QENG line parsed", id);
    if (i == L->n)
        return;
    c_sys.checked++;
    const char *rat = jstr(ex, "rat");
    if (rat) {
        enum modem_net want = !strcmp(rat, "LTE")       ? MODEM_NET_LTE
                              : !strcmp(rat, "WCDMA")   ? MODEM_NET_WCDMA
                              : !strcmp(rat, "NR5G-SA") ? MODEM_NET_NR5G_SA
                                                        : MODEM_NET_NONE;
        CHECK_MSG(c.net == want, "case %d: net %d", id, c.net);
    }
    if (jstr(ex, "mcc"))
        CHECK_MSG(!strcmp(c.mcc, jstr(ex, "mcc")), "case %d: mcc %s", id, c.mcc);
    if (jstr(ex, "mnc"))
        CHECK_MSG(!strcmp(c.mnc, jstr(ex, "mnc")), "case %d: mnc %s", id, c.mnc);
    double v;
    if (!isnan(v = jnum(ex, "tac")) || !isnan(v = jnum(ex, "lac")))
        CHECK_MSG(c.tac == (long)v, "case %d: tac %ld", id, c.tac);
    if (!isnan(v = jnum(ex, "cell_id")))
        CHECK_MSG(c.cell_id == (long long)v, "case %d: cell %lld", id, c.cell_id);
    if (!isnan(v = jnum(ex, "pci")) || !isnan(v = jnum(ex, "psc")))
        CHECK_MSG(c.pci == (long)v, "case %d: pci %ld", id, c.pci);
    if (!isnan(v = jnum(ex, "earfcn")) || !isnan(v = jnum(ex, "uarfcn")) ||
        !isnan(v = jnum(ex, "arfcn")))
        CHECK_MSG(c.channel == (long)v, "case %d: channel %ld", id, c.channel);
    if (!isnan(v = jnum(ex, "band")))
        CHECK_MSG(band_num(c.band) == (int)v, "case %d: band %s", id, c.band);
    static const struct {
        const char *k;
        size_t off;
    } m[] = {{"rsrp", offsetof(struct at_cell, rsrp_dbm)},
             {"rsrq", offsetof(struct at_cell, rsrq_db)},
             {"rssi", offsetof(struct at_cell, rssi_dbm)},
             {"sinr", offsetof(struct at_cell, sinr_db)},
             {"sinr_raw", offsetof(struct at_cell, sinr_db)}, /* see parse.c: dB directly */
             {"rscp", offsetof(struct at_cell, rscp_dbm)},
             {"ecio", offsetof(struct at_cell, ecio_db)}};
    for (size_t k = 0; k < sizeof m / sizeof m[0]; k++) {
        json_t *j = json_object_get(ex, m[k].k);
        double got = *(const double *)((const char *)&c + m[k].off);
        if (json_is_null(j))
            CHECK_MSG(isnan(got), "case %d: %s %f expected none", id, m[k].k, got);
        else if (json_is_number(j))
            CHECK_MSG(near_or_trunc(got, json_number_value(j), 1e-9), "case %d: %s %f", id, m[k].k,
                      got);
    }
}

static void corpus_system(int id, const char *cmd, struct lines *L, json_t *ex)
{
    if (strstr(cmd, "CPSI")) {
        corpus_cpsi(id, L, ex);
    } else if (strstr(cmd, "QENG")) {
        corpus_qeng(id, cmd, L, ex);
    } else if (strstr(cmd, "CNSMOD")) {
        enum modem_net n;
        CHECK_MSG(L->n >= 1 && at_parse_cnsmod(L->l[0], &n) == 0, "case %d: cnsmod", id);
        const char *a = jstr(ex, "mm_act");
        enum modem_net want = !strcmp(a, "LTE")    ? MODEM_NET_LTE
                              : !strcmp(a, "UMTS") ? MODEM_NET_WCDMA
                              : !strcmp(a, "GSM")  ? MODEM_NET_GSM
                                                   : MODEM_NET_NONE;
        CHECK_MSG(n == want, "case %d: net %d", id, n);
        c_sys.checked++;
    } else {
        c_sys.skipped++;
    }
}

static void corpus_gps(int id, const char *cmd, struct lines *L, json_t *ex)
{
    struct modem_gnss g;
    bool cgps = strstr(cmd, "CGPSINFO") != NULL, qgps = strstr(cmd, "QGPSLOC") != NULL;
    int i, rc = -1;
    for (i = 0; i < L->n && rc != 0; i++)
        rc = cgps ? at_parse_cgpsinfo(L->l[i], &g) : at_parse_qgpsloc(L->l[i], &g);
    if (jhas(ex, "error")) {
        CHECK_MSG(rc == -1, "case %d: parsed a fix from an error", id);
        c_gps.checked++;
        return;
    }
    if (!cgps && !qgps) {
        /* other GNSS commands have no parser: make sure ours do not take them */
        for (i = 0; i < L->n; i++)
            CHECK_MSG(at_parse_cgpsinfo(L->l[i], &g) == -1 && at_parse_qgpsloc(L->l[i], &g) == -1,
                      "case %d: foreign GNSS line accepted", id);
        c_gps.skipped++;
        return;
    }
    CHECK_MSG(rc == 0, "case %d: no GNSS line parsed", id);
    if (rc != 0)
        return;
    c_gps.checked++;
    json_t *fix = json_object_get(ex, "fix");
    if (json_is_boolean(fix))
        CHECK_MSG(g.fix == json_is_true(fix), "case %d: fix %d", id, g.fix);
    else if (json_is_integer(fix))
        CHECK_MSG(g.fix == (json_integer_value(fix) >= 2), "case %d: fix %d", id, g.fix);
    double v;
    if (!isnan(v = jnum(ex, "lat")))
        CHECK_MSG(near_or_trunc(g.lat, v, 1e-6), "case %d: lat %.7f", id, g.lat);
    if (!isnan(v = jnum(ex, "lon")))
        CHECK_MSG(near_or_trunc(g.lon, v, 1e-6), "case %d: lon %.7f", id, g.lon);
    if (!isnan(v = jnum(ex, "alt_m")))
        CHECK_MSG(near_or_trunc(g.alt_m, v, 1e-9), "case %d: alt %f", id, g.alt_m);
    if (!isnan(v = jnum(ex, "speed_knots")))
        CHECK_MSG(near_or_trunc(g.speed_kmh, v * 1.852, 1e-9), "case %d: speed %f", id,
                  g.speed_kmh);
    if (!isnan(v = jnum(ex, "spkm")))
        CHECK_MSG(near_or_trunc(g.speed_kmh, v, 1e-9), "case %d: speed %f", id, g.speed_kmh);
    json_t *course = json_object_get(ex, "course_deg");
    if (!course)
        course = json_object_get(ex, "cog");
    if (json_is_null(course))
        CHECK_MSG(isnan(g.course_deg), "case %d: course %f", id, g.course_deg);
    else if (json_is_number(course))
        CHECK_MSG(near_or_trunc(g.course_deg, json_number_value(course), 1e-9),
                  "case %d: course %f", id, g.course_deg);
    const char *date = jstr(ex, "date_ddmmyy");
    const char *tm = jstr(ex, "utc_hhmmss") ? jstr(ex, "utc_hhmmss") : jstr(ex, "utc");
    if (date && tm) {
        int dd = (date[0] - '0') * 10 + date[1] - '0', mo = (date[2] - '0') * 10 + date[3] - '0',
            yy = (date[4] - '0') * 10 + date[5] - '0';
        int hh = (tm[0] - '0') * 10 + tm[1] - '0', mi = (tm[2] - '0') * 10 + tm[3] - '0',
            ss = (tm[4] - '0') * 10 + tm[5] - '0';
        /* independent reference: days from the 1970-based table, no timegm/TZ needed */
        static const int cum[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
        int y = 2000 + yy;
        long days = 0;
        for (int yr = 1970; yr < y; yr++)
            days += (yr % 4 == 0 && (yr % 100 != 0 || yr % 400 == 0)) ? 366 : 365;
        days += cum[mo - 1] + dd - 1;
        if (mo > 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
            days++;
        long long want = days * 86400LL + hh * 3600 + mi * 60 + ss;
        CHECK_MSG(g.utc == want, "case %d: utc %lld expected %lld", id, (long long)g.utc, want);
    } else if (json_is_false(fix)) {
        CHECK_MSG(g.utc == -1 && isnan(g.lat), "case %d: no-fix fields", id);
    }
}

/* Join a multi-line +CUSD the way the AT engine does: while the quotes are unbalanced, the
 * next line belongs to the same reply (joined with '\n'). Returns the last +CUSD found. */
static bool cusd_join(struct lines *L, char *out, size_t n)
{
    bool found = false;
    for (int i = 0; i < L->n; i++) {
        if (strncmp(L->l[i], "+CUSD:", 6) != 0)
            continue;
        size_t off = 0;
        out[0] = '\0';
        str_appendf(out, n, &off, "%s", L->l[i]);
        int quotes = 0;
        for (const char *p = L->l[i]; *p; p++)
            quotes += *p == '"';
        while (quotes % 2 == 1 && i + 1 < L->n) {
            i++;
            str_appendf(out, n, &off, "\n%s", L->l[i]);
            for (const char *p = L->l[i]; *p; p++)
                quotes += *p == '"';
        }
        found = true;
    }
    return found;
}

static void corpus_ussd(int id, struct lines *L, json_t *ex)
{
    char line[4096];
    struct at_cusd u;
    bool found = cusd_join(L, line, sizeof line);
    c_ussd.checked++;
    if (jhas(ex, "error")) {
        CHECK_MSG(!found, "case %d: +CUSD in an error reply", id);
        return;
    }
    CHECK_MSG(found && at_parse_cusd(line, &u) == 0, "case %d: cusd not parsed", id);
    if (!found)
        return;
    const char *want = jstr(ex, "message") ? jstr(ex, "message") : jstr(ex, "text");
    if (want) {
        char norm[2048];
        size_t j = 0;
        for (size_t i = 0; want[i] && j + 1 < sizeof norm; i++)
            if (!(want[i] == '\r' && want[i + 1] == '\n'))
                norm[j++] = want[i];
        norm[j] = '\0';
        CHECK_MSG(strcmp(u.text, norm) == 0, "case %d: text \"%s\"", id, u.text);
    } else if (json_is_null(json_object_get(ex, "text"))) {
        CHECK_MSG(u.text[0] == '\0', "case %d: text \"%s\"", id, u.text);
    }
    json_t *sa = json_object_get(ex, "sessionActive");
    if (json_is_boolean(sa))
        CHECK_MSG((u.m == 1) == json_is_true(sa), "case %d: m %d", id, u.m);
    if (jhas(ex, "m"))
        CHECK_MSG(u.m == (int)jnum(ex, "m"), "case %d: m %d", id, u.m);
    if (jhas(ex, "dcs"))
        CHECK_MSG(u.dcs == (int)jnum(ex, "dcs"), "case %d: dcs %d", id, u.dcs);
    double amount;
    if (id == 250)
        CHECK_MSG(ussd_find_amount(u.text, &amount) == 0 && fabs(amount - 100.0) < 1e-9,
                  "case 250: amount");
    else
        (void)ussd_find_amount(u.text, &amount); /* must not crash on real texts */
}

static void t_corpus(void)
{
    json_error_t err;
    json_t *root = json_load_file(CORRIDOR_TEST_DATA "/at_replies.json", 0, &err);
    CHECK_MSG(root != NULL, "at_replies.json: %s line %d", err.text, err.line);
    if (!root)
        return;
    json_t *cases = json_object_get(root, "cases");
    size_t idx;
    json_t *c;
    json_array_foreach(cases, idx, c)
    {
        int id = (int)json_integer_value(json_object_get(c, "id"));
        const char *cat = jstr(c, "category"), *cmd = jstr(c, "command"),
                   *resp = jstr(c, "response");
        json_t *ex = json_object_get(c, "expected");
        if (!cat || !cmd || !resp || !json_is_object(ex))
            continue;
        struct lines L;
        split_lines(resp, &L);
        if (!strcmp(cat, "registration"))
            corpus_reg(id, &L, ex);
        else if (!strcmp(cat, "operator"))
            corpus_operator(id, cmd, &L, ex);
        else if (!strcmp(cat, "signal"))
            corpus_signal(id, cmd, &L, ex);
        else if (!strcmp(cat, "sim") || jhas(ex, "lock") ||
                 (jhas(ex, "numeric_equivalent") && jstr(ex, "verbose") &&
                  strstr(jstr(ex, "verbose"), "SIM")))
            corpus_sim(id, cmd, resp, &L, ex);
        else if (!strcmp(cat, "system_info"))
            corpus_system(id, cmd, &L, ex);
        else if (!strcmp(cat, "gps"))
            corpus_gps(id, cmd, &L, ex);
        else if (!strcmp(cat, "ussd"))
            corpus_ussd(id, &L, ex);
    }
    json_decref(root);
    printf("corpus checked/skipped: registration %d/%d, operator %d/%d, signal %d/%d, "
           "sim %d/%d, system_info %d/%d, gps %d/%d, ussd %d/%d\n",
           c_reg.checked, c_reg.skipped, c_op.checked, c_op.skipped, c_sig.checked, c_sig.skipped,
           c_sim.checked, c_sim.skipped, c_sys.checked, c_sys.skipped, c_gps.checked, c_gps.skipped,
           c_ussd.checked, c_ussd.skipped);
    CHECK(c_reg.checked >= 57);
    CHECK(c_sys.checked >= 20);
    CHECK(c_ussd.checked >= 20);
}

int main(void)
{
    t_csq();
    t_reg();
    t_cops();
    t_cpsi();
    t_qeng();
    t_sim();
    t_gnss();
    t_ussd_decoders();
    t_cusd();
    t_amount();
    t_corpus();
    return test_summary();
}
