/* alive: thread heartbeats for the supervisor's watchdog decision.
 *
 * The supervisor registers one named slot per critical thread with a stale limit, each thread
 * calls alive_beat() from its loop, and once a second the supervisor asks which slots have
 * not beaten for longer than their limit. Only while none is stale does it feed the hardware
 * watchdog and systemd (docs/board.md).
 *
 * A slot is named by a kind and an optional instance name ("steer", "modem:mts"), so a link
 * called "steer" can never be confused with the steer thread. Beating an unregistered slot is a
 * cheap no-op: subsystems beat unconditionally and work the same in unit tests without a
 * supervisor. The hot path (the tunnel's data-plane loop) costs one clock read and two atomic
 * operations per beat: a per-thread cache remembers the slot until any slot is (un)registered.
 *
 * Process-wide state; every function is thread-safe. */
#ifndef CORRIDOR_ALIVE_H
#define CORRIDOR_ALIVE_H

#include <stddef.h>
#include <stdint.h>

#define ALIVE_MAX_SLOTS 48
#define ALIVE_NAME_MAX  48 /* "kind:name" including the NUL */

/* Register slot kind[:name] (name NULL or "" for a singleton) that counts as stale after
 * stale_ms without a beat. Its clock starts now. Returns the slot id (>= 0), or -1 if the
 * table is full, the name is too long, stale_ms is 0, or the slot already exists. */
int alive_register(const char *kind, const char *name, unsigned stale_ms);
/* Forget a slot (thread stopped on purpose); unknown ids are ignored. */
void alive_unregister(int id);
/* Forget every slot (tests; a supervisor on its way out). */
void alive_reset(void);

/* Record "this thread made progress now". kind/name as registered; unknown = no-op.
 * Test hook: see alive_test_hang_from_env(). */
void alive_beat(const char *kind, const char *name);

struct alive_stale {
    char name[ALIVE_NAME_MAX]; /* "kind" or "kind:name" */
    uint64_t age_ms;           /* since the last beat (or registration) */
    unsigned limit_ms;
};
/* The slots whose last beat is older than their limit at now_ms (mono_ms()). Writes up to max
 * into out (out may be NULL when max is 0) and returns how many are stale in total. */
size_t alive_stale(uint64_t now_ms, struct alive_stale *out, size_t max);
/* Age of one slot's last beat (ms), or -1 if no such slot. */
int64_t alive_age_ms(const char *kind, const char *name, uint64_t now_ms);

/* TEST ONLY. Reads CORRIDOR_TEST_HANG once: "kind[:name][@seconds]". From then on the thread
 * that beats that slot (after `seconds` since this call, default 0) never returns from
 * alive_beat(): a real thread of the real process hangs inside its loop, which is what the
 * watchdog proof tests need. Returns 1 when armed (and logs a warning), 0 when unset. Call it
 * once from the supervisor before any thread starts. Never set this variable in production. */
int alive_test_hang_from_env(void);

#endif
