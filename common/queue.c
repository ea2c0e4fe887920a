/* queue: bounded FIFO of fixed-size items, mutex + condition variable. See common.h. */
#include "common/common.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bqueue {
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    size_t item_size, cap, head, len;
    uint64_t dropped;
    bool closed;
    unsigned char *items;
};

struct bqueue *bq_new(size_t item_size, size_t capacity)
{
    if (item_size == 0 || capacity == 0)
        return NULL;
    struct bqueue *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->items = calloc(capacity, item_size);
    if (!q->items) {
        free(q);
        return NULL;
    }
    q->item_size = item_size;
    q->cap = capacity;
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->nonempty, &ca);
    pthread_condattr_destroy(&ca);
    return q;
}

void bq_free(struct bqueue *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->nonempty);
    free(q->items);
    free(q);
}

int bq_push(struct bqueue *q, const void *item)
{
    int rc = -1;
    pthread_mutex_lock(&q->lock);
    if (!q->closed && q->len < q->cap) {
        memcpy(q->items + ((q->head + q->len) % q->cap) * q->item_size, item, q->item_size);
        q->len++;
        rc = 0;
        pthread_cond_signal(&q->nonempty);
    } else {
        q->dropped++;
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

int bq_pop(struct bqueue *q, void *item, int timeout_ms)
{
    struct timespec deadline;
    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&q->lock);
    while (q->len == 0 && !q->closed) {
        int rc = timeout_ms >= 0 ? pthread_cond_timedwait(&q->nonempty, &q->lock, &deadline)
                                 : pthread_cond_wait(&q->nonempty, &q->lock);
        if (rc == ETIMEDOUT && q->len == 0) {
            pthread_mutex_unlock(&q->lock);
            return 0;
        }
    }
    if (q->len == 0) { /* closed and drained */
        pthread_mutex_unlock(&q->lock);
        return -1;
    }
    memcpy(item, q->items + q->head * q->item_size, q->item_size);
    q->head = (q->head + 1) % q->cap;
    q->len--;
    pthread_mutex_unlock(&q->lock);
    return 1;
}

void bq_close(struct bqueue *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_cond_broadcast(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
}

size_t bq_len(struct bqueue *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->len;
    pthread_mutex_unlock(&q->lock);
    return n;
}

uint64_t bq_dropped(struct bqueue *q)
{
    pthread_mutex_lock(&q->lock);
    uint64_t n = q->dropped;
    pthread_mutex_unlock(&q->lock);
    return n;
}
