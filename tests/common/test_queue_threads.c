/* test_queue_threads: producers and a consumer on one bounded queue (run under TSan in CI):
 * every item is either delivered exactly once or counted as dropped. */
#include "common/common.h"
#include "testlib.h"

#include <pthread.h>

#define PRODUCERS    4
#define PER_PRODUCER 20000

static struct bqueue *q;
static unsigned long long seen[PRODUCERS];
static unsigned long delivered;

static void *producer(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    for (unsigned i = 0; i < PER_PRODUCER; i++) {
        unsigned item = id << 24 | i;
        bq_push(q, &item);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    unsigned item;
    unsigned last[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++)
        last[i] = 0xffffffffu;
    int ordered = 1;
    while (bq_pop(q, &item, -1) == 1) {
        unsigned id = item >> 24, n = item & 0xffffff;
        if (last[id] != 0xffffffffu && n <= last[id])
            ordered = 0; /* FIFO per producer */
        last[id] = n;
        seen[id]++;
        delivered++;
    }
    return (void *)(uintptr_t)ordered;
}

int main(void)
{
    q = bq_new(sizeof(unsigned), 256);
    pthread_t p[PRODUCERS], c;
    pthread_create(&c, NULL, consumer, NULL);
    for (uintptr_t i = 0; i < PRODUCERS; i++)
        pthread_create(&p[i], NULL, producer, (void *)i);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(p[i], NULL);
    bq_close(q);
    void *ordered;
    pthread_join(c, &ordered);
    CHECK((uintptr_t)ordered == 1);
    CHECK_INT(delivered + bq_dropped(q), PRODUCERS * PER_PRODUCER);
    printf("delivered %lu, dropped %llu\n", delivered, (unsigned long long)bq_dropped(q));
    bq_free(q);
    return test_summary();
}
