/* Memory a hub spends per connected vehicle (docs/performance.md, "Memory"): the resident
 * set added by N vehicles' bonds as the hub makes them at the first handshake (bond_init, three
 * links, a session start), before any data. Prints kB per vehicle; not a test.
 *   bench_hub_mem [N=500] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg/udplink.h"
#include "common/common.h"

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static void deliver(void *ctx, uint8_t *ip, size_t len)
{
    (void)ctx, (void)ip, (void)len;
}

int main(int argc, char **argv)
{
    unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 500;
    struct bond *b = calloc(n, sizeof(*b));
    if (!b)
        return 1;
    long before = rss_kb();
    char err[128];
    uint64_t now = mono_ns() / 1000;
    for (unsigned i = 0; i < n; i++) {
        if (bond_init(&b[i], 1447, false, deliver, NULL, err, sizeof err) != 0) {
            fprintf(stderr, "bond %u: %s\n", i, err);
            return 1;
        }
        for (uint8_t l = 0; l < 3; l++)
            bond_add_link(&b[i], l, -1, NULL, now);
        if (bond_reset_seq(&b[i], err, sizeof err) != 0) {
            fprintf(stderr, "bond %u: %s\n", i, err);
            return 1;
        }
    }
    long after = rss_kb();
    printf("%u vehicles connected, idle: RSS +%ld kB = %.1f kB per vehicle (bond struct %zu B "
           "of it)\n",
           n, after - before, (double)(after - before) / n, sizeof(struct bond));
    for (unsigned i = 0; i < n; i++)
        bond_free(&b[i]);
    free(b);
    return 0;
}
