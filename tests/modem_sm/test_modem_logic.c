/* Unit tests for the pure decision logic of the modem driver: registration merge per radio,
 * the recovery ladder with its back-off, family detection from CGMI/ATI text, ordinals. */
#include "modem/driver.h"
#include "testlib.h"

#define H  MODEM_REG_HOME
#define R  MODEM_REG_ROAMING
#define S  MODEM_REG_SEARCHING
#define D  MODEM_REG_DENIED
#define NR MODEM_REG_NOT_REGISTERED
#define U  MODEM_REG_UNKNOWN

static void test_reg_merge(void)
{
    /* 3G: roaming by CREG/CGREG while CEREG says not registered -> roaming. */
    CHECK_INT(drv_reg_merge(MODEM_NET_WCDMA, R, R, NR, U), R);
    CHECK_INT(drv_reg_merge(MODEM_NET_WCDMA, NR, R, NR, U), R);
    CHECK_INT(drv_reg_merge(MODEM_NET_GSM, H, S, U, U), H);
    /* EPS registration on 3G does not count (stale CEREG after a fallback). */
    CHECK_INT(drv_reg_merge(MODEM_NET_WCDMA, S, S, H, U), S);
    /* LTE: the EPS domain decides, even if CS says home (CSFB registration). */
    CHECK_INT(drv_reg_merge(MODEM_NET_LTE, H, H, S, U), S);
    CHECK_INT(drv_reg_merge(MODEM_NET_LTE, NR, NR, R, U), R);
    /* LTE but CEREG unsupported: fall back to CS/PS. */
    CHECK_INT(drv_reg_merge(MODEM_NET_LTE, R, H, U, U), H);
    CHECK_INT(drv_reg_merge(MODEM_NET_NB_IOT, U, U, D, U), D);
    CHECK_INT(drv_reg_merge(MODEM_NET_NR5G_NSA, U, U, H, NR), H);
    CHECK_INT(drv_reg_merge(MODEM_NET_NR5G_SA, U, U, NR, H), H);
    CHECK_INT(drv_reg_merge(MODEM_NET_NR5G_SA, H, H, U, U), H);
    /* No radio known: best of all, home > roaming > searching > denied > not registered. */
    CHECK_INT(drv_reg_merge(MODEM_NET_NONE, D, S, NR, U), S);
    CHECK_INT(drv_reg_merge(MODEM_NET_NONE, D, NR, U, U), D);
    CHECK_INT(drv_reg_merge(MODEM_NET_NONE, U, U, U, U), U);
    CHECK_INT(drv_reg_merge(MODEM_NET_NONE, R, U, H, U), H);
    CHECK_INT(drv_reg_merge((enum modem_net)99, NR, U, U, U), NR);
}

static void test_ladder(void)
{
    struct rec_ladder l;
    unsigned w = 0;
    rec_reset(&l);
    /* With a power hook: soft, power, 5 s, soft, power, 10 s, ... capped at 60 s. */
    CHECK_INT(rec_next(&l, true, 5000, &w), REC_SOFT_RESET);
    CHECK_INT(w, 5000);
    CHECK_INT(rec_next(&l, true, 5000, &w), REC_POWER_CYCLE);
    CHECK_INT(w, 5000);
    CHECK_INT(rec_next(&l, true, 5000, &w), REC_BACKOFF);
    CHECK_INT(w, 5000);
    CHECK_INT(rec_next(&l, true, 5000, &w), REC_SOFT_RESET);
    CHECK_INT(rec_next(&l, true, 5000, &w), REC_POWER_CYCLE);
    CHECK_INT(rec_next(&l, true, 5000, &w), REC_BACKOFF);
    CHECK_INT(w, 10000);
    unsigned expect[] = {20000, 40000, 60000, 60000, 60000};
    for (unsigned i = 0; i < 5; i++) {
        CHECK_INT(rec_next(&l, true, 1234, &w), REC_SOFT_RESET);
        CHECK_INT(w, 1234);
        CHECK_INT(rec_next(&l, true, 1234, &w), REC_POWER_CYCLE);
        CHECK_INT(rec_next(&l, true, 1234, &w), REC_BACKOFF);
        CHECK_INT(w, expect[i]);
    }
    /* Keeps trying forever: many rounds never overflow the wait nor stop. */
    for (int i = 0; i < 1000; i++) {
        enum rec_action a = rec_next(&l, true, 100, &w);
        CHECK(w <= REC_BACKOFF_MAX_MS);
        (void)a;
    }
    CHECK(l.backoffs <= 32);
    /* Without a power hook: soft reset, back off, soft reset, back off ... */
    rec_reset(&l);
    CHECK_INT(rec_next(&l, false, 700, &w), REC_SOFT_RESET);
    CHECK_INT(w, 700);
    CHECK_INT(rec_next(&l, false, 700, &w), REC_BACKOFF);
    CHECK_INT(w, 5000);
    CHECK_INT(rec_next(&l, false, 700, &w), REC_SOFT_RESET);
    CHECK_INT(rec_next(&l, false, 700, &w), REC_BACKOFF);
    CHECK_INT(w, 10000);
    /* Success resets the ladder: the next failure starts with a soft reset and 5 s. */
    rec_reset(&l);
    CHECK_INT(rec_next(&l, true, 5000, &w), REC_SOFT_RESET);
    CHECK_STR(rec_action_name(REC_POWER_CYCLE), "power cycle");
}

static void test_family(void)
{
    CHECK_INT(drv_family_from_text("SIMCOM INCORPORATED"), MODEM_FAMILY_SIMCOM);
    CHECK_INT(drv_family_from_text("SIMCOM_Ltd"), MODEM_FAMILY_SIMCOM);
    CHECK_INT(drv_family_from_text("Manufacturer: SIMTECH INCORPORATED"), MODEM_FAMILY_SIMCOM);
    CHECK_INT(drv_family_from_text("Quectel"), MODEM_FAMILY_QUECTEL);
    CHECK_INT(drv_family_from_text("QUECTEL EC25"), MODEM_FAMILY_QUECTEL);
    CHECK_INT(drv_family_from_text("Sierra Wireless"), MODEM_FAMILY_UNKNOWN);
    CHECK_INT(drv_family_from_text(""), MODEM_FAMILY_UNKNOWN);
    CHECK_INT(drv_family_from_text(NULL), MODEM_FAMILY_UNKNOWN);
    CHECK_INT(drv_family_from_text("SIMCO"), MODEM_FAMILY_UNKNOWN);
    CHECK(drv_family_for(MODEM_FAMILY_QUECTEL) == &drv_family_quectel);
    CHECK(drv_family_for(MODEM_FAMILY_UNKNOWN) == &drv_family_simcom);
    CHECK_STR(drv_family_simcom.reset_cmd, "AT+CRESET");
    CHECK_STR(drv_family_quectel.reset_cmd, "AT+CFUN=1,1");
    CHECK_STR(drv_family_quectel.iccid_cmd, "AT+QCCID");
}

static void test_ordinal(void)
{
    char b[16];
    CHECK_STR(drv_ordinal(1, b, sizeof b), "1st");
    CHECK_STR(drv_ordinal(2, b, sizeof b), "2nd");
    CHECK_STR(drv_ordinal(3, b, sizeof b), "3rd");
    CHECK_STR(drv_ordinal(4, b, sizeof b), "4th");
    CHECK_STR(drv_ordinal(11, b, sizeof b), "11th");
    CHECK_STR(drv_ordinal(12, b, sizeof b), "12th");
    CHECK_STR(drv_ordinal(13, b, sizeof b), "13th");
    CHECK_STR(drv_ordinal(21, b, sizeof b), "21st");
    CHECK_STR(drv_ordinal(112, b, sizeof b), "112th");
    CHECK_STR(drv_ordinal(0, b, sizeof b), "0th");
}

static void test_rc(void)
{
    CHECK_INT(drv_rc_of(AT_RES_OK), DRV_OK);
    CHECK_INT(drv_rc_of(AT_RES_ERROR), DRV_OK);
    CHECK_INT(drv_rc_of(AT_RES_CME_ERROR), DRV_OK);
    CHECK_INT(drv_rc_of(AT_RES_TIMEOUT), DRV_FAIL);
    CHECK_INT(drv_rc_of(AT_RES_IO), DRV_GONE);
}

int main(void)
{
    test_reg_merge();
    test_ladder();
    test_family();
    test_ordinal();
    test_rc();
    return test_summary();
}
