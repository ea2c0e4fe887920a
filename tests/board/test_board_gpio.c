/* test_board_gpio: a modem power-cycle drives the profile's lines in the right order with the
 * right timing, seen through the recording backend (this lab has no GPIO chip); the libgpiod
 * backend refuses a missing chip with a message naming the profile key. */
#include "board/board.h"
#include "common/common.h"
#include "testlib.h"

#include <pthread.h>
#include <unistd.h>

/* Scheduling slack allowed on a loaded 2-core CI box (and under qemu). */
#define LATE_MS 250

struct op {
    unsigned long long t;
    char who[48], op[16], where[48];
    int asserted, level;
};

static size_t parse_record(const char *text, struct op *ops, size_t max)
{
    size_t n = 0;
    const char *p = text;
    while (*p && n < max) {
        struct op *o = &ops[n];
        if (sscanf(p, "%llu %47s %15s %47s asserted=%d level=%d", &o->t, o->who, o->op, o->where,
                   &o->asserted, &o->level) == 6)
            n++;
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    return n;
}

static void check_op(const struct op *o, const char *who, const char *op, const char *where,
                     int asserted, int level)
{
    CHECK_STR(o->who, who);
    CHECK_STR(o->op, op);
    CHECK_STR(o->where, where);
    CHECK_INT(o->asserted, asserted);
    CHECK_INT(o->level, level);
}

static void check_gap(const struct op *a, const struct op *b, unsigned want_ms)
{
    long long gap = (long long)(b->t - a->t);
    CHECK_MSG(gap >= (long long)want_ms && gap <= (long long)want_ms + LATE_MS,
              "%s %s -> %s %s: %lld ms, expected %u ms (+%d)", a->who, a->op, b->who, b->op, gap,
              want_ms, LATE_MS);
}

static char dir[] = "/tmp/corridor-test-gpio-XXXXXX";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static const char *profile_json =
    "{\"name\":\"testgw\",\"power_cycle\":{\"off_ms\":400,\"reset_pulse_ms\":150,"
    "\"boot_wait_ms\":100},"
    "\"slots\":["
    "{\"name\":\"slot1\",\"link\":\"mts\",\"usb\":\"1-1.1\","
    "\"power\":{\"chip\":\"gpiochip0\",\"line\":10},"
    "\"reset\":{\"chip\":\"gpiochip0\",\"line\":11,\"active_low\":true}},"
    "{\"name\":\"beeline\",\"reset\":{\"chip\":\"gpiochip1\",\"line\":\"M2_RST\"}},"
    "{\"name\":\"slot3\",\"link\":\"tele2\"}],"
    "\"leds\":{\"status\":{\"chip\":\"gpiochip0\",\"line\":20,\"active_low\":true}}}";

/* A board on the GPIO backend from this profile, recording to `record` ("-" = in memory);
 * NULL (and a failed check naming the error) if it does not open. */
static struct board *open_gpio(const char *profile, const char *record)
{
    struct board_config bc = {.power = BOARD_POWER_GPIO};
    str_copy(bc.profile, profile, sizeof bc.profile);
    str_copy(bc.gpio_record, record, sizeof bc.gpio_record);
    struct board *b = NULL;
    char err[512];
    CHECK_MSG(board_open(&bc, &b, err, sizeof err) == 0, "%s", err);
    return b;
}

static void power_cycle_order_and_timing(const char *profile)
{
    struct board *b = open_gpio(profile, "-");
    if (!b)
        return;
    char err[512];
    CHECK_INT(board_power_cycle_ms(b), 400 + 150 + 100);

    /* At open every line is requested at its idle value: powered, out of reset, LED off. */
    static char text[65536];
    struct op ops[64];
    board_gpio_record(b, text, sizeof text);
    size_t n = parse_record(text, ops, 64);
    CHECK_INT(n, 4);
    check_op(&ops[0], "slot1.power", "request", "gpiochip0:10", 1, 1);
    check_op(&ops[1], "slot1.reset", "request", "gpiochip0:11", 0, 1); /* active low */
    check_op(&ops[2], "beeline.reset", "request", "gpiochip1:M2_RST", 0, 0);
    check_op(&ops[3], "led.status", "request", "gpiochip0:20", 0, 1);

    uint64_t t0 = mono_ms();
    CHECK_MSG(board_power_cycle(b, "mts", err, sizeof err) == 0, "%s", err);
    uint64_t took = mono_ms() - t0;
    CHECK_MSG(took >= 650 && took <= 650 + LATE_MS, "power cycle took %llu ms",
              (unsigned long long)took);
    board_gpio_record(b, text, sizeof text);
    n = parse_record(text, ops, 64);
    CHECK_INT(n, 8);
    if (n == 8) {
        /* reset asserted first (electrically low), power cut, power back after off_ms, reset
         * released reset_pulse_ms later. */
        check_op(&ops[4], "slot1.reset", "set", "gpiochip0:11", 1, 0);
        check_op(&ops[5], "slot1.power", "set", "gpiochip0:10", 0, 0);
        check_op(&ops[6], "slot1.power", "set", "gpiochip0:10", 1, 1);
        check_op(&ops[7], "slot1.reset", "set", "gpiochip0:11", 0, 1);
        CHECK(ops[4].t >= t0 && ops[5].t - ops[4].t <= 20);
        check_gap(&ops[5], &ops[6], 400);
        check_gap(&ops[6], &ops[7], 150);
    }

    /* A slot with only a reset line gets a reset pulse of reset_pulse_ms. */
    CHECK_MSG(board_power_cycle(b, "beeline", err, sizeof err) == 0, "%s", err);
    board_gpio_record(b, text, sizeof text);
    n = parse_record(text, ops, 64);
    CHECK_INT(n, 10);
    if (n == 10) {
        check_op(&ops[8], "beeline.reset", "set", "gpiochip1:M2_RST", 1, 1);
        check_op(&ops[9], "beeline.reset", "set", "gpiochip1:M2_RST", 0, 0);
        check_gap(&ops[8], &ops[9], 150);
    }

    /* No lines, no slot: refused, naming the profile, and nothing is driven. */
    CHECK(board_power_cycle(b, "tele2", err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "slots[2] (slot3) has no power or reset line") != NULL, "%s", err);
    CHECK(strstr(err, profile) != NULL);
    CHECK(board_power_cycle(b, "megafon", err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "no slot for link \"megafon\"") != NULL, "%s", err);

    board_led_set(b, BOARD_LED_STATUS, true);
    board_led_set(b, BOARD_LED_STATUS, true); /* unchanged: not written again */
    board_led_set(b, BOARD_LED_LINK, true);   /* not in the profile: nothing */
    board_gpio_record(b, text, sizeof text);
    n = parse_record(text, ops, 64);
    CHECK_INT(n, 11);
    if (n == 11)
        check_op(&ops[10], "led.status", "set", "gpiochip0:20", 1, 0);
    board_led_set(b, BOARD_LED_STATUS, false);
    board_gpio_record(b, text, sizeof text);
    CHECK_INT(parse_record(text, ops, 64), 12);
    board_close(b);
}

/* Shutdown interrupts a power cycle in progress: its waits are cut short but the slot still
 * ends powered and out of reset. */
static void *interrupt_later(void *arg)
{
    usleep(100 * 1000);
    board_interrupt(arg);
    return NULL;
}

static void interrupted(const char *profile)
{
    struct board *b = open_gpio(profile, "-");
    if (!b)
        return;
    char err[512];
    pthread_t th;
    pthread_create(&th, NULL, interrupt_later, b);
    uint64_t t0 = mono_ms();
    CHECK(board_power_cycle(b, "mts", err, sizeof err) == 0);
    uint64_t took = mono_ms() - t0;
    pthread_join(th, NULL);
    CHECK_MSG(took >= 90 && took < 300, "interrupted power cycle took %llu ms (650 unbroken)",
              (unsigned long long)took);
    static char text[65536];
    struct op ops[64];
    board_gpio_record(b, text, sizeof text);
    size_t n = parse_record(text, ops, 64);
    CHECK_INT(n, 8);
    if (n == 8) {
        check_op(&ops[6], "slot1.power", "set", "gpiochip0:10", 1, 1);
        check_op(&ops[7], "slot1.reset", "set", "gpiochip0:11", 0, 1);
    }
    /* Later cycles (a modem thread still finishing) do not wait either. */
    t0 = mono_ms();
    CHECK(board_power_cycle(b, "mts", err, sizeof err) == 0);
    CHECK(mono_ms() - t0 < 100);
    board_interrupt(NULL);
    board_close(b);
}

/* Slots of one board share the power mutex: two cycles never overlap (a shared supply). */
struct par {
    struct board *b;
    const char *link;
    int rc;
};

static void *cycle_thread(void *arg)
{
    struct par *p = arg;
    char err[256];
    p->rc = board_power_cycle(p->b, p->link, err, sizeof err);
    return NULL;
}

static void serialised(const char *profile)
{
    struct board *b = open_gpio(profile, "-");
    if (!b)
        return;
    struct par a = {b, "mts", -1}, c = {b, "beeline", -1};
    pthread_t ta, tc;
    pthread_create(&ta, NULL, cycle_thread, &a);
    pthread_create(&tc, NULL, cycle_thread, &c);
    pthread_join(ta, NULL);
    pthread_join(tc, NULL);
    CHECK_INT(a.rc, 0);
    CHECK_INT(c.rc, 0);
    static char text[65536];
    struct op ops[64];
    board_gpio_record(b, text, sizeof text);
    size_t n = parse_record(text, ops, 64);
    CHECK_INT(n, 4 + 4 + 2);
    /* Whichever went first, its operations are contiguous. */
    if (n == 10) {
        bool mts_first = strncmp(ops[4].who, "slot1", 5) == 0;
        size_t m0 = mts_first ? 4 : 6;
        for (size_t i = m0; i < m0 + 4; i++)
            CHECK_MSG(strncmp(ops[i].who, "slot1", 5) == 0, "op %zu is %s", i, ops[i].who);
    }
    board_close(b);
}

static void record_to_file(const char *profile)
{
    char rec[128];
    snprintf(rec, sizeof rec, "%s/gpio.log", dir);
    struct board *b = open_gpio(profile, rec);
    if (!b)
        return;
    char err[512];
    CHECK(board_power_cycle(b, "beeline", err, sizeof err) == 0);
    char text[4096] = "";
    CHECK_INT(board_gpio_record(b, text, sizeof text), 0); /* not in memory */
    board_close(b);
    FILE *f = fopen(rec, "r");
    CHECK(f != NULL);
    if (f) {
        size_t len = fread(text, 1, sizeof text - 1, f);
        text[len] = '\0';
        fclose(f);
    }
    struct op ops[16];
    CHECK_INT(parse_record(text, ops, 16), 6);
    unlink(rec);

    /* An unwritable recording path is an error at open. */
    struct board_config bc = {.power = BOARD_POWER_GPIO};
    str_copy(bc.profile, profile, sizeof bc.profile);
    str_copy(bc.gpio_record, "/nonexistent/dir/gpio.log", sizeof bc.gpio_record);
    CHECK(board_open(&bc, &b, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "/nonexistent/dir/gpio.log") != NULL, "%s", err);
}

/* The real backend: no chip on this machine, so open fails and names where. */
static void gpiod_missing_chip(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/nochip.json", dir);
    write_file(path, "{\"name\":\"nochip\",\"slots\":[{\"name\":\"s\",\"power\":"
                     "{\"chip\":\"corridor-no-such-chip\",\"line\":3}}]}");
    struct board_config bc = {.power = BOARD_POWER_GPIO};
    str_copy(bc.profile, path, sizeof bc.profile);
    struct board *b = (struct board *)1;
    char err[512];
    CHECK(board_open(&bc, &b, err, sizeof err) == -1);
    CHECK(b == NULL);
    CHECK_MSG(strstr(err, "slots[0].power: gpio chip corridor-no-such-chip") != NULL, "%s", err);
    CHECK(strstr(err, path) != NULL);
    /* Not "gpio": the profile's lines are not touched at all. */
    bc.power = BOARD_POWER_NONE;
    CHECK_MSG(board_open(&bc, &b, err, sizeof err) == 0, "%s", err);
    CHECK_INT(board_power_cycle_ms(b), 0);
    CHECK(board_power_cycle(b, "s", err, sizeof err) == -1);
    CHECK(strstr(err, "no power control") != NULL);
    board_close(b);
    unlink(path);

    /* A profile that does not load fails board_open with the profile's message. */
    str_copy(bc.profile, "/nonexistent/p.json", sizeof bc.profile);
    CHECK(board_open(&bc, &b, err, sizeof err) == -1);
    CHECK(strstr(err, "board profile /nonexistent/p.json") != NULL);
    enum board_power_backend be;
    CHECK(board_power_backend_parse("gpio", &be) == 0 && be == BOARD_POWER_GPIO);
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL);
    char profile[128];
    snprintf(profile, sizeof profile, "%s/testgw.json", dir);
    write_file(profile, profile_json);
    power_cycle_order_and_timing(profile);
    serialised(profile);
    interrupted(profile);
    record_to_file(profile);
    gpiod_missing_chip();
    unlink(profile);
    rmdir(dir);
    return test_summary();
}
