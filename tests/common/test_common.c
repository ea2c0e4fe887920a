/* test_common: string helpers, log ring, queue semantics (single thread). */
#include "common/common.h"
#include "testlib.h"

#include <unistd.h>

int main(void)
{
    char b[8];
    CHECK_INT(str_copy(b, "abc", sizeof b), 3);
    CHECK_STR(b, "abc");
    CHECK_INT(str_copy(b, "abcdefghij", sizeof b), 10);
    CHECK_STR(b, "abcdefg");

    char buf[16];
    size_t off = 0;
    CHECK(str_appendf(buf, sizeof buf, &off, "%s", "hello"));
    CHECK(str_appendf(buf, sizeof buf, &off, " %d", 42));
    CHECK_STR(buf, "hello 42");
    CHECK(!str_appendf(buf, sizeof buf, &off, "%s", " and much more"));
    CHECK_INT(strlen(buf), 15);
    CHECK(!str_appendf(buf, sizeof buf, &off, "x"));

    char t[] = "  \t trim me \r\n";
    CHECK_STR(str_trim(t), "trim me");
    long l;
    double d;
    CHECK(str_to_long("-123", &l) && l == -123);
    CHECK(!str_to_long("12x", &l));
    CHECK(!str_to_long("", &l));
    CHECK(!str_to_long("99999999999999999999999", &l));
    CHECK(str_to_double("-98.7", &d) && d == -98.7);
    CHECK(!str_to_double("1.2.3", &d));

    /* Log level filter and the in-memory ring used by diagnostics. */
    log_init("test", LOGL_INFO, false);
    LOG_D("t", "debug line that must not appear");
    LOG_I("t", "info line %d", 1);
    LOG_W("t", "warn line %d", 2);
    char rec[4096];
    log_recent(rec, sizeof rec, 10);
    CHECK(strstr(rec, "info  t: info line 1") != NULL);
    CHECK(strstr(rec, "warn  t: warn line 2") != NULL);
    CHECK(strstr(rec, "debug line") == NULL);
    enum log_level lv;
    CHECK(log_level_parse("debug", &lv) == 0 && lv == LOGL_DEBUG);
    CHECK(log_level_parse("verbose", &lv) == -1);
    for (int i = 0; i < 300; i++)
        LOG_I("t", "line %d", i);
    log_recent(rec, sizeof rec, 2);
    CHECK(strstr(rec, "line 298") && strstr(rec, "line 299") && !strstr(rec, "line 297"));

    /* Bounded queue: full refuses and counts; FIFO order; timeout; close drains. */
    struct bqueue *q = bq_new(sizeof(int), 3);
    CHECK(q != NULL);
    for (int i = 0; i < 5; i++)
        bq_push(q, &i);
    CHECK_INT(bq_len(q), 3);
    CHECK_INT(bq_dropped(q), 2);
    int v = -1;
    CHECK_INT(bq_pop(q, &v, 0), 1);
    CHECK_INT(v, 0);
    uint64_t t0 = mono_ms();
    bq_pop(q, &v, 0);
    bq_pop(q, &v, 0);
    CHECK_INT(v, 2);
    CHECK_INT(bq_pop(q, &v, 100), 0);
    uint64_t waited = mono_ms() - t0;
    CHECK_MSG(waited >= 95 && waited < 1000, "waited %llu ms", (unsigned long long)waited);
    int x = 7;
    bq_push(q, &x);
    bq_close(q);
    CHECK_INT(bq_push(q, &x), -1);
    CHECK_INT(bq_pop(q, &v, -1), 1);
    CHECK_INT(v, 7);
    CHECK_INT(bq_pop(q, &v, -1), -1);
    bq_free(q);
    CHECK(bq_new(0, 1) == NULL);

    bool stop = false;
    t0 = mono_ms();
    CHECK(!sleep_ms_unless(&stop, 60));
    CHECK(mono_ms() - t0 >= 59);
    stop = true;
    CHECK(sleep_ms_unless(&stop, 10000));
    return test_summary();
}
