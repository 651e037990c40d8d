/* Helpers shared by the ingest unit tests: synchronous submission of JSON events. */
#ifndef RECSTREAM_INGEST_TESTUTIL_H
#define RECSTREAM_INGEST_TESTUTIL_H

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ingest/ingest.h"

struct ingest_test_waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
};

static inline void ingest_test_done(void *arg)
{
    struct ingest_test_waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Submits n JSON events (one string each) and waits for the outcome: items[i] (zeroed here)
 * get each record's status and position. Returns ingest_batch_submit's code. */
static inline int ingest_test_submit(struct ingest *ing, const char *const *json, size_t n,
                                     struct ingest_item *items)
{
    cJSON **roots = calloc(n ? n : 1, sizeof *roots);
    memset(items, 0, n * sizeof *items);
    for (size_t i = 0; i < n; i++) {
        roots[i] = cJSON_Parse(json[i]);
        items[i].value = roots[i];
        items[i].partition = -1;
    }
    struct ingest_batch b;
    ingest_batch_init(&b, items, n);
    struct ingest_test_waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    int rc = ingest_batch_submit(ing, &b, ingest_test_done, &w);
    if (rc == 0) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
    }
    ingest_batch_dispose(&b);
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(roots[i]);
    free(roots);
    return rc;
}

#endif
