/* stream_dump_offline: rebuild state from a data directory without a running server. */
#include "stream/stream_int.h"

#include <stdio.h>
#include <stdlib.h>

/* Applies partition p of log from the shard's next offset to the log's end. */
static int replay(struct evlog *log, int32_t p, struct state_shard *shard,
                  struct evlog_batch *batch)
{
    for (;;) {
        int64_t from = state_shard_next_offset(shard);
        int n = evlog_read(log, p, from, 1024, batch);
        if (n < 0) {
            LOG_ERROR("cannot read the log", "partition=%d offset=%lld err=\"%s\"", (int)p,
                      (long long)from, core_strerror(n));
            return n;
        }
        if (n == 0)
            return 0;
        for (size_t i = 0; i < batch->n; i++) {
            struct event ev;
            event_init(&ev);
            if (batch->recs[i].erased) {
                state_shard_skip(shard, batch->recs[i].offset);
                continue;
            }
            if (event_bin_decode(batch->recs[i].value, batch->recs[i].value_len, &ev) < 0) {
                LOG_ERROR("undecodable log record", "partition=%d offset=%lld", (int)p,
                          (long long)batch->recs[i].offset);
                return CORE_E_CORRUPT;
            }
            state_shard_apply(shard, &ev, batch->recs[i].offset);
        }
    }
}

int stream_dump_offline(const char *data_dir, struct userkeys *keys, const struct state_config *cfg,
                        struct core_buf *out)
{
    char log_dir[1100], ckpt_dir[1100];
    snprintf(log_dir, sizeof log_dir, "%s/log", data_dir);
    snprintf(ckpt_dir, sizeof ckpt_dir, "%s/checkpoints", data_dir);
    struct evlog_file_options lo;
    evlog_file_options_init(&lo);
    lo.dir = log_dir;
    lo.partitions = 0; /* read the count from the log's meta file */
    lo.read_only = true;
    lo.keys = keys;
    struct evlog *log = NULL;
    int rc = evlog_file_open(&lo, &log);
    if (rc < 0) {
        LOG_ERROR("cannot open the event log", "dir=%s err=\"%s\"", log_dir, core_strerror(rc));
        return rc;
    }
    int32_t nparts = log->partitions;
    struct state_shard **shards = core_xcalloc((size_t)nparts, sizeof *shards);
    for (int32_t p = 0; p < nparts; p++)
        shards[p] = state_shard_new(cfg, p);
    uint64_t max_seq;
    struct evlog_batch batch;
    evlog_batch_init(&batch);
    rc = stream__recover(ckpt_dir, log, cfg, shards, nparts, NULL, &max_seq,
                         userkeys_data_key(keys));
    for (int32_t p = 0; rc == 0 && p < nparts; p++)
        rc = replay(log, p, shards[p], &batch);
    for (int32_t p = 0; rc == 0 && p < nparts; p++) {
        core_buf_printf(out, "# partition %d offset %lld\n", (int)p,
                        (long long)state_shard_next_offset(shards[p]));
        state_shard_dump(shards[p], out);
    }
    evlog_batch_dispose(&batch);
    for (int32_t p = 0; p < nparts; p++)
        state_shard_free(shards[p]);
    free(shards);
    evlog_close(log);
    return rc;
}
