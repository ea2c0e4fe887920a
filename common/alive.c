/* alive: thread heartbeats. See alive.h.
 *
 * Registration is rare and takes the mutex; beats are hot and take it only on a per-thread
 * cache miss. Any (un)registration bumps `gen`, which invalidates every thread's cache, so a
 * cached index is never used for a slot that was reassigned in between. */
#include "common/alive.h"
#include "common/common.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct slot {
    uint64_t last_ms; /* atomic: written by the beating thread, read by the supervisor */
    unsigned limit_ms;
    bool used;
    char name[ALIVE_NAME_MAX];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot slots[ALIVE_MAX_SLOTS];
static unsigned gen = 1; /* atomic; 0 never matches, so a zeroed cache is invalid */

/* Test hook (alive_test_hang_from_env): written once before threads start. */
static char hang_name[ALIVE_NAME_MAX];
static uint64_t hang_at_ms;

static _Thread_local struct {
    const char *kind, *name; /* the pointers of the last beat: same pointers, same slot */
    unsigned gen;
    int idx; /* -1 = not registered */
    bool hang;
} cache;

static bool full_name(char *out, const char *kind, const char *name)
{
    int n = (name && name[0]) ? snprintf(out, ALIVE_NAME_MAX, "%s:%s", kind, name)
                              : snprintf(out, ALIVE_NAME_MAX, "%s", kind);
    return n > 0 && n < ALIVE_NAME_MAX;
}

/* Caller holds mu. */
static int find_locked(const char *full)
{
    for (int i = 0; i < ALIVE_MAX_SLOTS; i++)
        if (slots[i].used && strcmp(slots[i].name, full) == 0)
            return i;
    return -1;
}

int alive_register(const char *kind, const char *name, unsigned stale_ms)
{
    char full[ALIVE_NAME_MAX];
    if (!kind || !kind[0] || !stale_ms || !full_name(full, kind, name))
        return -1;
    pthread_mutex_lock(&mu);
    int id = -1;
    if (find_locked(full) < 0) {
        for (int i = 0; i < ALIVE_MAX_SLOTS && id < 0; i++)
            if (!slots[i].used)
                id = i;
    }
    if (id >= 0) {
        struct slot *s = &slots[id];
        str_copy(s->name, full, sizeof s->name);
        s->limit_ms = stale_ms;
        __atomic_store_n(&s->last_ms, mono_ms(), __ATOMIC_RELEASE);
        s->used = true;
        __atomic_add_fetch(&gen, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&mu);
    return id;
}

void alive_unregister(int id)
{
    if (id < 0 || id >= ALIVE_MAX_SLOTS)
        return;
    pthread_mutex_lock(&mu);
    slots[id].used = false;
    __atomic_add_fetch(&gen, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&mu);
}

void alive_reset(void)
{
    pthread_mutex_lock(&mu);
    for (int i = 0; i < ALIVE_MAX_SLOTS; i++)
        slots[i].used = false;
    __atomic_add_fetch(&gen, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&mu);
}

static void hang_forever(const char *name)
{
    LOG_W("alive", "CORRIDOR_TEST_HANG: thread of slot %s hangs now (test hook)", name);
    for (;;)
        sleep(3600);
}

void alive_beat(const char *kind, const char *name)
{
    unsigned g = __atomic_load_n(&gen, __ATOMIC_ACQUIRE);
    if (cache.gen != g || cache.kind != kind || cache.name != name) {
        char full[ALIVE_NAME_MAX];
        bool ok = kind && full_name(full, kind, name);
        pthread_mutex_lock(&mu);
        cache.kind = kind;
        cache.name = name;
        cache.gen = __atomic_load_n(&gen, __ATOMIC_ACQUIRE);
        cache.idx = ok ? find_locked(full) : -1;
        cache.hang = ok && hang_name[0] && strcmp(full, hang_name) == 0;
        pthread_mutex_unlock(&mu);
    }
    if (cache.idx < 0)
        return;
    uint64_t now = mono_ms();
    if (cache.hang && now >= hang_at_ms)
        hang_forever(hang_name);
    __atomic_store_n(&slots[cache.idx].last_ms, now, __ATOMIC_RELEASE);
}

size_t alive_stale(uint64_t now_ms, struct alive_stale *out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < ALIVE_MAX_SLOTS; i++) {
        const struct slot *s = &slots[i];
        if (!s->used)
            continue;
        uint64_t last = __atomic_load_n(&s->last_ms, __ATOMIC_ACQUIRE);
        uint64_t age = now_ms > last ? now_ms - last : 0;
        if (age <= s->limit_ms)
            continue;
        if (n < max) {
            str_copy(out[n].name, s->name, sizeof out[n].name);
            out[n].age_ms = age;
            out[n].limit_ms = s->limit_ms;
        }
        n++;
    }
    pthread_mutex_unlock(&mu);
    return n;
}

int64_t alive_age_ms(const char *kind, const char *name, uint64_t now_ms)
{
    char full[ALIVE_NAME_MAX];
    if (!kind || !full_name(full, kind, name))
        return -1;
    int64_t age = -1;
    pthread_mutex_lock(&mu);
    int i = find_locked(full);
    if (i >= 0) {
        uint64_t last = __atomic_load_n(&slots[i].last_ms, __ATOMIC_ACQUIRE);
        age = now_ms > last ? (int64_t)(now_ms - last) : 0;
    }
    pthread_mutex_unlock(&mu);
    return age;
}

int alive_test_hang_from_env(void)
{
    const char *v = getenv("CORRIDOR_TEST_HANG");
    if (!v || !v[0])
        return 0;
    char buf[ALIVE_NAME_MAX + 16];
    str_copy(buf, v, sizeof buf);
    long after_s = 0;
    char *at = strchr(buf, '@');
    if (at) {
        *at = '\0';
        if (!str_to_long(at + 1, &after_s) || after_s < 0 || after_s > 86400)
            after_s = 0;
    }
    pthread_mutex_lock(&mu);
    str_copy(hang_name, buf, sizeof hang_name);
    hang_at_ms = mono_ms() + (uint64_t)after_s * 1000u;
    __atomic_add_fetch(&gen, 1, __ATOMIC_RELEASE); /* re-evaluate cached slots */
    pthread_mutex_unlock(&mu);
    LOG_W("alive",
          "TEST HOOK CORRIDOR_TEST_HANG=%s: the thread beating \"%s\" will hang after %ld s", v,
          hang_name, after_s);
    return 1;
}
