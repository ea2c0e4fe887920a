/* parse: pure parsers for AT reply lines (internal to modem/).
 *
 * Each parser takes one information line exactly as the AT engine delivered it (no CR/LF,
 * leading/trailing spaces allowed, e.g. "+CSQ: 21,99") and fills a plain struct. They never
 * allocate, never read past the NUL, and return 0 on success or -1 if the line is not a valid
 * reply of that kind (the struct is then left in an unspecified but safe state). They are fuzzed
 * (tests/fuzz) and tested against real replies (tests/data/at_replies.json). */
#ifndef CORRIDOR_MODEM_PARSE_H
#define CORRIDOR_MODEM_PARSE_H

#include "modem/modem.h"

/* ---- signal ---------------------------------------------------------------------------- */
/* "+CSQ: <rssi>,<ber>". rssi 0..31 -> -113 + 2*rssi dBm, 99 -> NAN. */
struct at_csq {
    int rssi;        /* raw 0..31 or 99 */
    int ber;         /* raw 0..7 or 99 */
    double rssi_dbm; /* NAN when 99 */
};
int at_parse_csq(const char *line, struct at_csq *out);

/* "+CESQ: rxlev,ber,rscp,ecno,rsrq,rsrp" (3GPP 27.007) converted to dB/dBm, NAN = 255/99. */
struct at_cesq {
    double rssi_dbm, rscp_dbm, ecno_db, rsrq_db, rsrp_dbm;
};
int at_parse_cesq(const char *line, struct at_cesq *out);

/* ---- registration ---------------------------------------------------------------------- */
/* "+CREG: [n,]stat[,lac,ci[,act]]", also +CGREG, +CEREG, +C5GREG, solicited or URC.
 * stat is the raw 27.007 value (0..11); reg its mapping. lac/ci in hex in the reply. */
enum at_reg_kind { AT_REG_CREG, AT_REG_CGREG, AT_REG_CEREG, AT_REG_C5GREG };
struct at_reg {
    enum at_reg_kind kind;
    int n; /* -1 if absent (URC form) */
    int stat;
    enum modem_reg reg;
    long lac;     /* -1 if absent */
    long long ci; /* -1 if absent */
    int act;      /* -1 if absent */
};
int at_parse_reg(const char *line, struct at_reg *out);
/* Best registration among the domains that apply to the current radio (CS/PS/EPS/5GS):
 * home > roaming > searching > denied > not_registered > unknown. */
enum modem_reg at_reg_best(enum modem_reg a, enum modem_reg b);

/* ---- operator -------------------------------------------------------------------------- */
/* "+COPS: mode[,format,oper[,act]]". format 0/1 = name, 2 = numeric "25001". */
struct at_cops {
    int mode;
    int format;    /* -1 if absent */
    char oper[64]; /* as given, unquoted */
    char mcc[4];   /* filled when format is numeric */
    char mnc[4];
    int act; /* -1 if absent */
};
int at_parse_cops(const char *line, struct at_cops *out);

/* ---- serving cell ---------------------------------------------------------------------- */
/* SIMCom "+CPSI: <system mode>,<operation mode>,..." for NO SERVICE, GSM, WCDMA, LTE, CDMA,
 * EVDO, NR5G_SA, NR5G_NSA (SIM7100/SIM7600/A7600/SIM7000/SIM8200 variants). LTE RSRQ/RSRP/RSSI
 * arrive in tenths of a dB on SIM7600 (-987 -> -98.7) and whole units on SIM7000: the scale is
 * chosen by magnitude. TAC/LAC is hex, cell id decimal. */
struct at_cell {
    enum modem_net net;
    bool online; /* operation mode "Online" */
    char mcc[4], mnc[4];
    long tac;          /* -1 */
    long long cell_id; /* -1 */
    long pci;          /* -1 */
    long channel;      /* -1 */
    char band[32];     /* "EUTRAN-BAND3", "WCDMA IMT 2000", "DCS 1800", ... "" if absent */
    double rsrp_dbm, rsrq_db, rssi_dbm, sinr_db, rscp_dbm, ecio_db; /* NAN when absent */
};
int at_parse_cpsi(const char *line, struct at_cell *out);
/* Quectel "+QENG: \"servingcell\",..." (EC25/EG25: LTE, WCDMA, GSM, NR5G-NSA). */
int at_parse_qeng_serving(const char *line, struct at_cell *out);
/* SIMCom "+CNSMOD: n,stat" -> network type. */
int at_parse_cnsmod(const char *line, enum modem_net *out);

/* ---- SIM and identity ------------------------------------------------------------------ */
/* "+CPIN: READY" / "SIM PIN" / "SIM PUK" / ... */
int at_parse_cpin(const char *line, enum modem_sim *out);
/* "+CME ERROR: n" codes that mean the SIM is absent/failed (10, 13, 14, 15) -> sim state. */
enum modem_sim at_sim_from_cme(int cme);
/* ICCID from "+ICCID: ...", "+CCID: ...", "+QCCID: ..." or a bare digit line; 19/20 digits,
 * trailing 'F' padding removed. */
int at_parse_iccid(const char *line, char *out, size_t n);
/* IMEI / IMSI: a bare line of 14..17 / 6..15 digits (optionally "+CGSN: " prefixed). */
int at_parse_imei(const char *line, char *out, size_t n);
int at_parse_imsi(const char *line, char *out, size_t n);
/* A free-text identity line (CGMI/CGMM/CGMR, "+CGMR: x", "Revision: x"): prefix removed. */
int at_parse_ident_text(const char *line, char *out, size_t n);

/* ---- GNSS ------------------------------------------------------------------------------ */
/* SIMCom "+CGPSINFO: lat,N/S,lon,E/W,ddmmyy,hhmmss.s,alt,speed_knots,course".
 * ddmm.mmmm -> decimal degrees; speed knots -> km/h; empty course -> NAN; nine empty fields
 * -> fix=false (returns 0). */
int at_parse_cgpsinfo(const char *line, struct modem_gnss *out);
/* Quectel "+QGPSLOC: hhmmss.sss,lat,lon,hdop,alt,fix,cog,spkm,spkn,ddmmyy,nsat" (mode 2). */
int at_parse_qgpsloc(const char *line, struct modem_gnss *out);

/* ---- USSD ------------------------------------------------------------------------------ */
/* "+CUSD: m[,\"str\"[,dcs]]" possibly with the string spanning several lines (the engine joins
 * them with "\n"). The text is decoded by dcs: GSM-7 text as-is, packed GSM-7 hex, UCS2 hex
 * (dcs 72 / 0x48 and the 8-bit alphabet forms), into UTF-8. */
struct at_cusd {
    int m;          /* 0 = no further action, 1 = further action, 2 = terminated, ... */
    int dcs;        /* -1 if absent */
    char text[320]; /* UTF-8 */
};
int at_parse_cusd(const char *line, struct at_cusd *out);
/* Find the balance amount in an operator's free text ("Balance: 123.45 rub", "Ваш баланс
 * -12,50 р.", "Balans 1 234,56"): first number after a balance keyword if present, else the
 * first plausible money amount. Returns 0 and sets *amount, or -1. */
int ussd_find_amount(const char *text, double *amount);
/* Decoders (exposed for tests and fuzzing). Output is NUL-terminated UTF-8; return bytes
 * written or -1 on malformed input. */
int ussd_decode_gsm7_packed_hex(const char *hex, char *out, size_t n);
int ussd_decode_ucs2_hex(const char *hex, char *out, size_t n);
int ussd_gsm7_to_utf8(const unsigned char *septets, size_t len, char *out, size_t n);

#endif
