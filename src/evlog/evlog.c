/* Backend-independent helpers of the evlog interface: read batches and file options. */
#include "evlog/evlog.h"

#include <stdlib.h>

void evlog_batch_init(struct evlog_batch *b)
{
    b->recs = NULL;
    b->n = 0;
    b->cap = 0;
    core_buf_init(&b->buf);
}

void evlog_batch_dispose(struct evlog_batch *b)
{
    free(b->recs);
    core_buf_dispose(&b->buf);
    evlog_batch_init(b);
}

void evlog_file_options_init(struct evlog_file_options *opt)
{
    opt->dir = NULL;
    opt->partitions = 0;
    /* Acknowledged means durable unless the operator relaxes it; group commit keeps
     * ALWAYS cheap under concurrency. */
    opt->fsync = EVLOG_FSYNC_ALWAYS;
    opt->fsync_interval_ms = 10;
    opt->segment_bytes = (int64_t)64 << 20;
    opt->segment_ms = (int64_t)60 * 60 * 1000;
    opt->queue_bytes = (int64_t)64 << 20;
    opt->read_only = false;
}
