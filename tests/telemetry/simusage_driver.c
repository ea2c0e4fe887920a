/* simusage_driver: the process test_telemetry_simusage_kill kills. It feeds telemetry/simfin.h
 * simusage_observe() a synthetic interface counter every 50 ms and flushes every flush_ms, like
 * the recorder does with a real interface.
 *
 *   simusage_driver DB T0_MS same|new FLUSH_MS FINAL_FILE
 * same: one counter instance for every run, counting rx = (now - T0_MS) bytes per ms (1 MB/s),
 *       tx = half of that: a process restart on a live interface.
 * new:  a new counter instance per run starting at 0 when the run starts: the interface was
 *       re-created, so what passed since the last flush cannot be recovered.
 * On SIGTERM it takes a last reading, flushes and writes "rx tx" of that reading to FINAL_FILE. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "telemetry/simfin.h"

static volatile bool g_stop;

static void on_term(int sig)
{
    (void)sig;
    g_stop = true;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s DB T0_MS same|new FLUSH_MS FINAL_FILE\n", argv[0]);
        return 2;
    }
    int64_t t0 = atoll(argv[2]);
    bool same = strcmp(argv[3], "same") == 0;
    unsigned flush_ms = (unsigned)atoi(argv[4]);
    signal(SIGTERM, on_term);
    int64_t start = (int64_t)wall_ms();
    char ctr[64];
    snprintf(ctr, sizeof ctr, same ? "boot/wwan0/3" : "boot/wwan0/%d", (int)getpid());
    char err[256];
    struct simusage *u = simusage_open(argv[1], err, sizeof err);
    if (!u) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    uint64_t last_flush = mono_ms(), rx = 0, tx = 0;
    for (;;) {
        bool stopping = g_stop;
        int64_t now = (int64_t)wall_ms();
        int64_t base = same ? t0 : start;
        rx = (uint64_t)(now - base) * 1000u;
        tx = rx / 2;
        if (simusage_observe(u, "8944500102198304826", ctr, rx, tx, now, err, sizeof err) != 0)
            fprintf(stderr, "observe: %s\n", err);
        if (stopping || mono_ms() - last_flush >= flush_ms) {
            if (simusage_flush(u, now, err, sizeof err) != 0)
                fprintf(stderr, "flush: %s\n", err);
            last_flush = mono_ms();
        }
        if (stopping)
            break;
        sleep_ms_unless(&g_stop, 50);
    }
    simusage_close(u);
    FILE *f = fopen(argv[5], "w");
    if (f) {
        fprintf(f, "%llu %llu\n", (unsigned long long)rx, (unsigned long long)tx);
        fclose(f);
    }
    return 0;
}
