/* clock: monotonic and wall clocks. */
#include "common/common.h"

#include <time.h>

uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t mono_ms(void)
{
    return mono_ns() / 1000000ull;
}

uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

bool sleep_ms_unless(volatile const bool *stop, unsigned ms)
{
    uint64_t end = mono_ms() + ms;
    for (;;) {
        if (stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE))
            return true;
        uint64_t now = mono_ms();
        if (now >= end)
            return false;
        uint64_t left = end - now;
        if (left > 50)
            left = 50;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)left * 1000000L};
        nanosleep(&ts, NULL);
    }
}
