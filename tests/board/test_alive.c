/* test_alive: the heartbeat registry (common/alive.h): registration rules, staleness by age,
 * per-thread caches surviving (un)registration, beats from many threads, and the
 * CORRIDOR_TEST_HANG hook making a real thread hang inside its beat. */
#include "common/alive.h"
#include "common/common.h"
#include "testlib.h"

#include <pthread.h>
#include <unistd.h>

static void registration(void)
{
    alive_reset();
    int a = alive_register("steer", NULL, 1000);
    CHECK(a >= 0);
    CHECK_INT(alive_register("steer", "", 1000), -1); /* "" = singleton: same slot */
    CHECK_INT(alive_register("steer", NULL, 5), -1);
    CHECK(alive_register("modem", "steer", 1000) >= 0); /* a link named like a thread */
    CHECK_INT(alive_register("modem", "steer", 1000), -1);
    CHECK_INT(alive_register("", NULL, 1000), -1);
    CHECK_INT(alive_register(NULL, NULL, 1000), -1);
    CHECK_INT(alive_register("x", NULL, 0), -1);
    char longname[80];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK_INT(alive_register("modem", longname, 1000), -1);
    alive_unregister(a);
    alive_unregister(-1);
    alive_unregister(ALIVE_MAX_SLOTS);
    CHECK(alive_register("steer", NULL, 1000) >= 0); /* free again */
    alive_reset();
    int n = 0;
    for (int i = 0; i < ALIVE_MAX_SLOTS + 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "m%d", i);
        if (alive_register("modem", name, 1000) >= 0)
            n++;
    }
    CHECK_INT(n, ALIVE_MAX_SLOTS);
    alive_reset();
    CHECK_INT(alive_age_ms("modem", "m0", mono_ms()), -1);
}

static void staleness(void)
{
    alive_reset();
    uint64_t t0 = mono_ms();
    CHECK(alive_register("steer", NULL, 100) >= 0);
    CHECK(alive_register("modem", "mts", 300) >= 0);
    struct alive_stale st[4];
    CHECK_INT(alive_stale(t0 + 50, st, 4), 0);
    /* Ages are judged at the time asked: 150 ms after registration steer is stale. */
    CHECK_INT(alive_stale(t0 + 150, st, 4), 1);
    CHECK_STR(st[0].name, "steer");
    CHECK_INT(st[0].limit_ms, 100);
    CHECK(st[0].age_ms > 100 && st[0].age_ms <= 150);
    CHECK_INT(alive_stale(t0 + 400, st, 4), 2);
    CHECK_INT(alive_stale(t0 + 400, NULL, 0), 2);
    CHECK_INT(alive_stale(t0 + 400, st, 1), 2); /* counted, one written */
    usleep(120 * 1000);
    alive_beat("steer", NULL);
    alive_beat("modem", "mts");
    uint64_t now = mono_ms();
    CHECK_INT(alive_stale(now, st, 4), 0);
    CHECK(alive_age_ms("steer", NULL, now) <= 50);
    CHECK(alive_age_ms("modem", "mts", now + 1000) >= 995);
    /* Unknown slots: beats are no-ops. */
    alive_beat("recorder", NULL);
    alive_beat("modem", "tele2");
    alive_beat(NULL, NULL);
    CHECK_INT(alive_age_ms("recorder", NULL, now), -1);
    /* A different name pointer with the same text finds the same slot. */
    char copy[8] = "mts";
    usleep(20 * 1000);
    alive_beat("modem", copy);
    CHECK(alive_age_ms("modem", "mts", mono_ms()) <= 15);
}

/* The per-thread cache must follow re-registration: a slot beaten by a thread, unregistered,
 * and another registered in its place must not receive the old thread's beats. */
static void cache_invalidation(void)
{
    alive_reset();
    int a = alive_register("steer", NULL, 1000);
    alive_beat("steer", NULL); /* cached: steer -> a */
    alive_unregister(a);
    int b = alive_register("recorder", NULL, 50);
    CHECK_INT(b, a); /* same table index reused */
    uint64_t t0 = mono_ms();
    usleep(80 * 1000);
    alive_beat("steer", NULL); /* must NOT refresh recorder */
    CHECK(alive_age_ms("recorder", NULL, mono_ms()) >= 70);
    CHECK_INT(alive_stale(mono_ms(), NULL, 0), 1);
    /* registering steer later makes this thread's beats count again */
    CHECK(alive_register("steer", NULL, 1000) >= 0);
    usleep(20 * 1000);
    alive_beat("steer", NULL);
    CHECK(alive_age_ms("steer", NULL, mono_ms()) <= 15);
    (void)t0;
}

struct beater {
    char name[16];
    volatile bool stop;
    unsigned beats;
};

static void *beat_thread(void *arg)
{
    struct beater *b = arg;
    while (!__atomic_load_n(&b->stop, __ATOMIC_ACQUIRE)) {
        alive_beat("modem", b->name);
        b->beats++;
        usleep(1000);
    }
    return NULL;
}

static void many_threads(void)
{
    alive_reset();
    enum { N = 8 };
    struct beater bs[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        memset(&bs[i], 0, sizeof bs[i]);
        snprintf(bs[i].name, sizeof bs[i].name, "m%d", i);
        CHECK(alive_register("modem", bs[i].name, 200) >= 0);
        pthread_create(&th[i], NULL, beat_thread, &bs[i]);
    }
    /* Registration churn while they beat. */
    for (int k = 0; k < 200; k++) {
        int id = alive_register("churn", NULL, 1000);
        alive_unregister(id);
    }
    usleep(300 * 1000);
    CHECK_INT(alive_stale(mono_ms(), NULL, 0), 0);
    /* Stop half of them: exactly those go stale. */
    for (int i = 0; i < N; i += 2) {
        __atomic_store_n(&bs[i].stop, true, __ATOMIC_RELEASE);
        pthread_join(th[i], NULL);
    }
    usleep(400 * 1000);
    struct alive_stale st[N];
    CHECK_INT(alive_stale(mono_ms(), st, N), N / 2);
    for (int i = 0; i < N / 2; i++)
        CHECK_MSG(st[i].name[7] % 2 == 0, "stale %s", st[i].name);
    for (int i = 1; i < N; i += 2) {
        __atomic_store_n(&bs[i].stop, true, __ATOMIC_RELEASE);
        pthread_join(th[i], NULL);
    }
    for (int i = 0; i < N; i++)
        CHECK(bs[i].beats > 50);
}

static volatile unsigned hang_beats;

static void *hang_thread(void *arg)
{
    (void)arg;
    for (;;) {
        alive_beat("steer", NULL);
        __atomic_add_fetch(&hang_beats, 1, __ATOMIC_RELEASE);
        usleep(10 * 1000);
    }
    return NULL;
}

static void hang_hook(void)
{
    alive_reset();
    unsetenv("CORRIDOR_TEST_HANG");
    CHECK_INT(alive_test_hang_from_env(), 0);
    setenv("CORRIDOR_TEST_HANG", "steer@1", 1);
    CHECK_INT(alive_test_hang_from_env(), 1);
    CHECK(alive_register("steer", NULL, 300) >= 0);
    CHECK(alive_register("modem", "mts", 300) >= 0);
    pthread_t th;
    pthread_create(&th, NULL, hang_thread, NULL);
    pthread_detach(th); /* it never returns: that is the point */
    usleep(600 * 1000);
    CHECK_INT(alive_stale(mono_ms(), NULL, 0), 1); /* only mts, nobody beats it */
    alive_beat("modem", "mts");                    /* other slots are unaffected */
    CHECK_INT(alive_stale(mono_ms(), NULL, 0), 0);
    unsigned before = __atomic_load_n(&hang_beats, __ATOMIC_ACQUIRE);
    CHECK(before > 20);
    usleep(1000 * 1000); /* past the 1 s: the steer thread is stuck in its beat */
    unsigned stuck = __atomic_load_n(&hang_beats, __ATOMIC_ACQUIRE);
    usleep(400 * 1000);
    CHECK_INT(__atomic_load_n(&hang_beats, __ATOMIC_ACQUIRE), stuck);
    alive_beat("modem", "mts");
    struct alive_stale st[2];
    CHECK_INT(alive_stale(mono_ms(), st, 2), 1);
    CHECK_STR(st[0].name, "steer");
}

int main(void)
{
    registration();
    staleness();
    cache_invalidation();
    many_threads();
    hang_hook(); /* last: leaves a thread hanging */
    return test_summary();
}
