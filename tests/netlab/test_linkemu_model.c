/* Unit tests of the link emulator model: parsers, scenario files, shaping arithmetic, loss
 * statistics and the delivery heap. Pure logic: no sockets, no root. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "linkemu_model.h"
#include "testlib.h"

static void test_parsers(void)
{
    uint64_t r = 1;
    CHECK(le_parse_rate("10M", &r) && r == 10000000);
    CHECK(le_parse_rate("2.5Mbit", &r) && r == 2500000);
    CHECK(le_parse_rate("500k", &r) && r == 500000);
    CHECK(le_parse_rate("1G", &r) && r == 1000000000);
    CHECK(le_parse_rate("unlimited", &r) && r == 0);
    CHECK(!le_parse_rate("-5M", &r));
    CHECK(!le_parse_rate("10X", &r));
    CHECK(!le_parse_rate("", &r));
    CHECK(!le_parse_rate("nan", &r));
    uint32_t us = 0;
    CHECK(le_parse_time_us("20ms", &us) && us == 20000);
    CHECK(le_parse_time_us("20", &us) && us == 20000);
    CHECK(le_parse_time_us("250us", &us) && us == 250);
    CHECK(le_parse_time_us("1.5s", &us) && us == 1500000);
    CHECK(!le_parse_time_us("5min", &us));
    CHECK(!le_parse_time_us("99999s", &us));
    double p = 0;
    CHECK(le_parse_prob("1%", &p) && fabs(p - 0.01) < 1e-12);
    CHECK(le_parse_prob("0.25", &p) && fabs(p - 0.25) < 1e-12);
    CHECK(!le_parse_prob("150%", &p));
    CHECK(!le_parse_prob("2", &p));
    uint32_t b = 0;
    CHECK(le_parse_bytes("64k", &b) && b == 64000);
    CHECK(le_parse_bytes("1500B", &b) && b == 1500);
    CHECK(!le_parse_bytes("1x", &b));
}

static void test_patch(void)
{
    char s[] = "ul rate=10M delay=20ms jitter=2ms jitterdist=normal loss=1% queue=50ms down";
    struct le_patch pt;
    char err[128];
    CHECK_INT(le_patch_parse(s, &pt, err, sizeof(err)), 0);
    CHECK_INT(pt.dirs, LE_DIR_UL);
    CHECK_INT(pt.v.rate_bps, 10000000);
    CHECK_INT(pt.v.delay_us, 20000);
    CHECK_INT(pt.v.jitter_dist, LE_JITTER_NORMAL);
    CHECK_INT(pt.v.queue_ms, 50);
    CHECK(!pt.v.up && (pt.mask & LE_F_UP));
    struct le_params p;
    le_params_default(&p);
    le_patch_apply(&pt, &p);
    CHECK_INT(le_queue_limit(&p), 10000000 / 8 / 20); /* 50 ms at 10 Mbit/s = 62500 B */
    char s2[] = "gilbert=1%,20%,80%";
    CHECK_INT(le_patch_parse(s2, &pt, err, sizeof(err)), 0);
    CHECK(pt.v.gilbert && fabs(pt.v.ge_r - 0.2) < 1e-12 && fabs(pt.v.ge_loss_bad - 0.8) < 1e-12);
    char bad1[] = "rate=fast";
    CHECK_INT(le_patch_parse(bad1, &pt, err, sizeof(err)), -1);
    CHECK(strstr(err, "rate") != NULL);
    char bad2[] = "colour=blue";
    CHECK_INT(le_patch_parse(bad2, &pt, err, sizeof(err)), -1);
    char bad3[] = "gilbert=1%,0";
    CHECK_INT(le_patch_parse(bad3, &pt, err, sizeof(err)), -1);
    char bad4[] = "=5";
    CHECK_INT(le_patch_parse(bad4, &pt, err, sizeof(err)), -1);
}

static void test_scenario(void)
{
    char path[] = "/tmp/test_linkemu_scenXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char *txt = "# comment\nlinks 3\nmode shared\n"
                      "link all delay=5ms\n"
                      "link 1 rate=10M delay=20ms   # trailing comment\n"
                      "link 2 rate=25M\n"
                      "link 1 dl rate=20M\n"
                      "at 3s link 1 down\n"
                      "at 1500ms link 1 loss=2%\n"
                      "at 3.5s link 1 up\n"
                      "at 2s link 2 down\n"
                      "at 3s link all rate=5M\n";
    CHECK(write(fd, txt, strlen(txt)) == (ssize_t)strlen(txt));
    close(fd);
    struct le_scenario sc;
    char err[256];
    le_scenario_init(&sc);
    CHECK_INT(le_scenario_load(&sc, 1, path, err, sizeof(err)), 0);
    CHECK_INT(sc.init[LE_UL].rate_bps, 10000000);
    CHECK_INT(sc.init[LE_DL].rate_bps, 20000000);
    CHECK_INT(sc.init[LE_DL].delay_us, 20000);
    CHECK_INT(sc.n_ev, 4);
    CHECK_INT(sc.ev[0].at_ms, 1500);
    CHECK_INT(sc.ev[1].at_ms, 3000);
    CHECK(sc.ev[1].patch.mask == LE_F_UP && !sc.ev[1].patch.v.up); /* file order kept */
    CHECK(sc.ev[2].patch.mask == LE_F_RATE);
    CHECK_INT(sc.ev[3].at_ms, 3500);
    le_scenario_free(&sc);
    le_scenario_init(&sc);
    CHECK_INT(le_scenario_load(&sc, 2, path, err, sizeof(err)), 0);
    CHECK_INT(sc.init[LE_UL].rate_bps, 25000000);
    CHECK_INT(sc.init[LE_UL].delay_us, 5000);
    CHECK_INT(sc.n_ev, 2);
    le_scenario_free(&sc);

    /* a bad line names file:line */
    FILE *f = fopen(path, "w");
    fputs("link 1 rate=1M\nat soon link 1 down\n", f);
    fclose(f);
    le_scenario_init(&sc);
    CHECK_INT(le_scenario_load(&sc, 1, path, err, sizeof(err)), -1);
    CHECK(strstr(err, ":2:") != NULL);
    le_scenario_free(&sc);
    f = fopen(path, "w");
    fputs("link 99 rate=1M\n", f);
    fclose(f);
    le_scenario_init(&sc);
    CHECK_INT(le_scenario_load(&sc, 1, path, err, sizeof(err)), -1);
    le_scenario_free(&sc);
    /* an overlong line is refused rather than split */
    f = fopen(path, "w");
    for (int i = 0; i < 100; i++)
        fputs("link 1 rate=1M ", f);
    fputs("\n", f);
    fclose(f);
    le_scenario_init(&sc);
    CHECK_INT(le_scenario_load(&sc, 1, path, err, sizeof(err)), -1);
    le_scenario_free(&sc);
    /* too many events: refused, memory bounded */
    f = fopen(path, "w");
    for (int i = 0; i < LE_MAX_EVENTS + 5; i++)
        fprintf(f, "at %d link 1 up\n", i);
    fclose(f);
    le_scenario_init(&sc);
    CHECK_INT(le_scenario_load(&sc, 1, path, err, sizeof(err)), -1);
    CHECK(sc.n_ev <= LE_MAX_EVENTS);
    le_scenario_free(&sc);
    CHECK_INT(le_scenario_load(&sc, 1, "/nonexistent/x", err, sizeof(err)), -1);
    unlink(path);
}

/* Serialisation: back-to-back 1500-byte packets at 12 Mbit/s leave every 1 ms; queue tail-drops. */
static void test_shaping(void)
{
    struct le_params p;
    le_params_default(&p);
    p.rate_bps = 12000000;
    p.delay_us = 10000;
    p.queue_bytes = 15000; /* 10 packets */
    struct le_dir d;
    le_dir_init(&d, &p);
    struct le_rng rng;
    le_rng_seed(&rng, 7);
    uint64_t t0 = 1000000000ull, when = 0;
    int passed = 0, qdrop = 0;
    uint64_t last = 0;
    for (int i = 0; i < 20; i++) {
        enum le_verdict v = le_dir_admit(&d, &rng, t0, 1500, &when);
        if (v == LE_PASS) {
            passed++;
            CHECK_INT(when, t0 + (uint64_t)passed * 1000000 + 10000000);
            last = when;
        } else {
            CHECK_INT(v, LE_DROP_QUEUE);
            qdrop++;
        }
    }
    CHECK_INT(passed, 10); /* the limit counts every unsent byte, the one in service too */
    CHECK_INT(qdrop, 10);
    CHECK_INT(d.st.drops[LE_DROP_QUEUE], 10);
    /* once the queue drained, a packet passes with no queueing */
    CHECK_INT(le_dir_admit(&d, &rng, last, 1500, &when), LE_PASS);
    CHECK_INT(when, last + 1000000 + 10000000);
    /* link down: dropped; up again: serialiser restarts at now */
    struct le_params q = p;
    q.up = false;
    le_dir_set(&d, &q, last);
    CHECK_INT(le_dir_admit(&d, &rng, last, 1500, &when), LE_DROP_DOWN);
    q.up = true;
    le_dir_set(&d, &q, last + 5000000000ull);
    CHECK_INT(le_dir_admit(&d, &rng, last + 5000000000ull, 1500, &when), LE_PASS);
    CHECK_INT(when, last + 5000000000ull + 1000000 + 10000000);
}

static void test_jitter_order(void)
{
    struct le_params p;
    le_params_default(&p);
    p.delay_us = 20000;
    p.jitter_us = 5000;
    struct le_dir d;
    le_dir_init(&d, &p);
    struct le_rng rng;
    le_rng_seed(&rng, 11);
    uint64_t prev = 0, when = 0;
    double sum = 0;
    int backwards = 0;
    const int n = 20000;
    for (int i = 0; i < n; i++) {
        uint64_t now = 1000000000ull + (uint64_t)i * 1000000; /* 1 ms apart: jitter > spacing */
        CHECK_INT(le_dir_admit(&d, &rng, now, 100, &when), LE_PASS);
        if (when < prev)
            backwards++;
        prev = when;
        sum += (double)(when - now) / 1e6;
        /* keeping order never pushes a packet past the latest a later one may leave */
        CHECK(when >= now + 15000000 && when <= now + 25000000);
    }
    CHECK_INT(backwards, 0);
    /* order preservation only ever delays: the mean sits a little above 20 ms */
    CHECK(sum / n > 20.0 && sum / n < 23.0);
    /* with reordering allowed, the mean is the configured delay and order is not kept */
    p.reorder = true;
    le_dir_init(&d, &p);
    sum = 0;
    backwards = 0;
    prev = 0;
    for (int i = 0; i < n; i++) {
        uint64_t now = 1000000000ull + (uint64_t)i * 1000000;
        le_dir_admit(&d, &rng, now, 100, &when);
        CHECK(when >= now + 15000000 && when <= now + 25000000); /* exactly delay +- jitter */
        if (when < prev)
            backwards++;
        prev = when;
        sum += (double)(when - now) / 1e6;
    }
    CHECK_NEAR(sum / n, 20.0, 0.1);
    CHECK(backwards > n / 10);
}

/* Bernoulli: 1% over 1e6 draws; sigma = sqrt(p(1-p)/n) = 0.0000995, allow 4 sigma. */
static void test_loss_stats(void)
{
    struct le_params p;
    le_params_default(&p);
    p.loss = 0.01;
    struct le_dir d;
    le_dir_init(&d, &p);
    struct le_rng rng;
    le_rng_seed(&rng, 12345);
    uint64_t when;
    const int n = 1000000;
    for (int i = 0; i < n; i++)
        le_dir_admit(&d, &rng, 1000 + (uint64_t)i, 100, &when);
    double rate = (double)d.st.drops[LE_DROP_LOSS] / n;
    CHECK_NEAR(rate, 0.01, 4 * 0.0000995);

    /* Gilbert-Elliott p=1%, r=25%, loss in bad = 100%: stationary loss = p/(p+r) = 3.846%,
     * mean burst length = 1/r = 4 packets */
    le_params_default(&p);
    p.gilbert = true;
    p.ge_p = 0.01;
    p.ge_r = 0.25;
    p.ge_loss_bad = 1.0;
    le_dir_init(&d, &p);
    long bursts = 0, lost = 0;
    bool in_burst = false;
    for (int i = 0; i < n; i++) {
        bool l = le_dir_admit(&d, &rng, 1000 + (uint64_t)i, 100, &when) == LE_DROP_LOSS;
        if (l) {
            lost++;
            if (!in_burst)
                bursts++;
        }
        in_burst = l;
    }
    CHECK_NEAR((double)lost / n, 0.01 / 0.26, 0.003);
    CHECK_NEAR((double)lost / bursts, 4.0, 0.2);
}

static void test_heap(void)
{
    struct le_heap h;
    CHECK_INT(le_heap_init(&h, 1000), 0);
    struct le_rng rng;
    le_rng_seed(&rng, 3);
    for (uint32_t i = 0; i < 1000; i++)
        CHECK_INT(le_heap_push(&h, (struct le_hent){le_rng_next(&rng) % 50, i, i}), 0);
    CHECK_INT(le_heap_push(&h, (struct le_hent){0, 0, 0}), -1); /* bounded */
    uint64_t pk = 0, ps = 0;
    int bad = 0;
    for (int i = 0; i < 1000; i++) {
        const struct le_hent *t = le_heap_top(&h);
        if (!t || t->key < pk || (t->key == pk && i > 0 && t->seq < ps))
            bad++;
        if (t) {
            pk = t->key;
            ps = t->seq;
        }
        le_heap_pop(&h);
    }
    CHECK_INT(bad, 0);
    CHECK(le_heap_top(&h) == NULL);
    le_heap_free(&h);
}

int main(void)
{
    test_parsers();
    test_patch();
    test_scenario();
    test_shaping();
    test_jitter_order();
    test_loss_stats();
    test_heap();
    return test_summary();
}
