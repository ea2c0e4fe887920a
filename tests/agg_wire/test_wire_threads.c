/* Several sender threads sealing on one session (the documented threading contract): every
 * packet number is used exactly once and every packet opens. Run under TSan in CI. */
#include "agg/wire.h"

#include <pthread.h>
#include <string.h>

#include "testlib.h"

#define THREADS 4
#define PER     2000

static struct wire_session tx, rx_sess;
static uint8_t pkts[THREADS][PER][96];
static int lens[THREADS][PER];

static void *sender(void *arg)
{
    int t = (int)(intptr_t)arg;
    uint8_t ip[70];
    memset(ip, t, sizeof(ip)); /* compressible: exercises the shared LZ4 back-off too */
    for (int i = 0; i < PER; i++)
        lens[t][i] = wire_seal_ip(&tx, (uint8_t)t, ip, sizeof(ip), (i & 1) != 0, pkts[t][i],
                                  sizeof(pkts[t][i]), NULL);
    return NULL;
}

static struct wire_session *lookup(void *ctx, uint16_t id)
{
    (void)ctx;
    return id == rx_sess.id ? &rx_sess : NULL;
}

int main(void)
{
    uint8_t k1[32], k2[32];
    memset(k1, 1, 32);
    memset(k2, 2, 32);
    CHECK_INT(wire_session_init(&tx, 5, WIRE_CIPHER_CHACHA20POLY1305, k1, k2, true, 0), 0);
    CHECK_INT(wire_session_init(&rx_sess, 5, WIRE_CIPHER_CHACHA20POLY1305, k2, k1, false, 0), 0);
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, sender, (void *)(intptr_t)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    CHECK_INT(atomic_load(&tx.tx_next), THREADS * PER);
    static uint8_t seen[THREADS * PER];
    int ok = 0, dup = 0;
    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < PER; i++) {
            struct wire_rx rx;
            if (lens[t][i] > 0 &&
                wire_open(lookup, NULL, pkts[t][i], (size_t)lens[t][i], &rx) == WIRE_OK &&
                rx.link_id == t) {
                ok++;
                if (rx.pn < THREADS * PER && seen[rx.pn]++)
                    dup++;
            }
        }
    }
    CHECK_INT(ok, THREADS * PER);
    CHECK_INT(dup, 0);
    return test_summary();
}
