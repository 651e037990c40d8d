/*
 * stream: the processor runtime. Each log partition is consumed in order by one processor
 * thread (partitions are spread over `threads` threads), which decodes each record and
 * applies it to that partition's state shard (src/state). Consumers block in evlog_wait for
 * new records (no polling). Checkpoints write every shard's snapshot with its partition
 * offset atomically; recovery loads the newest valid checkpoint and replays each partition
 * from its offset, so state after a crash equals state after an uninterrupted run.
 */
#ifndef RECSTREAM_STREAM_H
#define RECSTREAM_STREAM_H

#include "evlog/evlog.h"
#include "privacy/userkeys.h"
#include "state/state.h"

/*
 * Appends the "merge_in" record for the "merge" at (partition, offset) of the log: merge's
 * userKey/anonKey, the source user's image (state_shard_user_image). Must block until the
 * record is durable or known as a duplicate (ingest_merge_in_append). Called by processor
 * threads, holding no shard lock.
 */
typedef int (*stream_merge_fn)(void *arg, int32_t partition, int64_t offset,
                               const struct event *merge, const void *image, size_t len);

struct stream_config {
    const char *checkpoint_dir;     /* e.g. data/checkpoints */
    int64_t checkpoint_interval_ms; /* default 10 s */
    int64_t checkpoint_events;      /* or after this many events (default 1,000,000) */
    int keep;                       /* checkpoints kept (default 3) */
    int threads;                    /* processor threads (default 1) */
    /* Periodic checkpoints serialise the state in a forked child (default true): processing
     * pauses only for the fork. False: each processor serialises its shards itself, pausing
     * for that (as stream_stop's final checkpoint always does). */
    bool fork_checkpoints;
    /* The partitions to own from the start (borrowed for stream_start only); NULL: all. A
     * processor in a group starts with none and is given its share by stream_assign. */
    const int32_t *owned;
    int32_t nowned;
    struct state_config state;
    const struct seal_key *data_key; /* required: seals checkpoints (copied) */
    /* Optional: carries a merged user's state to the target's partition (identity merges).
     * Without it (offline dumps) a "merge" only forgets the source, as replay does once the
     * merge_in is in the log. */
    stream_merge_fn merge_fn;
    void *merge_arg;
    /* Optional: called on the group's thread after each revocation (stream_group_join), e.g.
     * to wait out a publication of the revoked partitions still in flight. */
    void (*revoked_fn)(void *arg);
    void *revoked_arg;
};

void stream_config_init(struct stream_config *cfg);

/* False in builds whose allocator cannot be used in a forked child of a threaded process
 * (AddressSanitizer before LLVM 16): fork_checkpoints is then off by default and ignored. */
bool stream_fork_checkpoints_supported(void);

struct stream;

/*
 * Restores the newest valid checkpoint in checkpoint_dir (falling back to older ones and
 * finally to empty state) and starts the processor threads, which replay every partition
 * from its checkpointed offset to the log's end and then follow it (readers may see the
 * checkpointed state until that catch-up finishes). log is borrowed and must outlive the
 * stream. Returns 0 or a negative error (logged).
 */
int stream_start(const struct stream_config *cfg, struct evlog *log, struct stream **out);

/* Stops the threads after they finish the record in hand, writes a final checkpoint when
 * final_checkpoint, frees everything. */
void stream_stop(struct stream *s, bool final_checkpoint);

/* Partition p's offset in the newest checkpoint written (or restored at start; 0 when none):
 * recovery from that checkpoint never reads records below it, so retention may delete them.
 * Any thread. */
int64_t stream_checkpointed_offset(struct stream *s, int32_t p);

/* The shard of partition p, for readers (valid until stream_stop). */
struct state_shard *stream_shard(struct stream *s, int32_t p);
int32_t stream_partitions(struct stream *s);

/* False once a processor hit a hard error (undecodable record, log read error): its
 * partitions stopped advancing; the error was logged. For readiness checks. Any thread. */
bool stream_healthy(struct stream *s);

/* Writes a checkpoint now (blocks until written). Returns 0 or a negative error
 * (CORE_E_FAILED when the stream is unhealthy, CORE_E_CLOSED when stopping). */
int stream_checkpoint(struct stream *s);

/* stream_checkpoint, after which every older checkpoint is deleted (erasure: they hold state
 * that was forgotten since). The deletion follows the new checkpoint's durable rename, on the
 * checkpoint thread. Same returns. */
int stream_checkpoint_only(struct stream *s);

/* Blocks until partition p has applied every record below offset. Returns 0, or
 * CORE_E_TIMEOUT, CORE_E_FAILED (stream unhealthy), CORE_E_CLOSED (stopping). Any thread. */
int stream_wait_applied(struct stream *s, int32_t p, int64_t offset, int timeout_ms);

/*
 * Partition ownership (processors sharing a log: a Kafka consumer group). Checkpoints hold the
 * partitions their writer owned, and every partition keeps its newest `keep` checkpoints, so
 * processors sharing one checkpoint directory hand partitions over through it.
 *
 * stream_assign: for each partition not yet owned, restores the newest valid checkpoint holding
 * it (state moves into the partition's shard object, so reader pointers stay valid), then the
 * processors apply it from that offset. stream_revoke: stops applying each owned partition
 * (waiting for the batch in hand), writes one checkpoint of them (so the next owner replays
 * little), then empties their shards. Returns 0, CORE_E_INVALID (a partition out of range; the
 * others are still handled) or a checkpoint error (the partitions are still revoked: the next
 * owner replays from an older checkpoint). Because a shard is a pure function of its log
 * prefix, two owners of one partition (a zombie during a rebalance) write identical states for
 * the same offset: checkpoints need no fencing. Any thread but a processor's.
 */
int stream_assign(struct stream *s, const int32_t *parts, int32_t n);
int stream_revoke(struct stream *s, const int32_t *parts, int32_t n);
bool stream_owns(struct stream *s, int32_t p);

/* The next offset partition p will apply (0 for a partition not owned). Any thread. */
int64_t stream_applied(struct stream *s, int32_t p);

/*
 * Joins a Kafka consumer group (evlog_group.h; o's callbacks and arg are replaced) whose
 * rebalances drive stream_assign / stream_revoke, and commits applied offsets to the group for
 * lag monitoring. Start the stream owning nothing (stream_config.owned non-NULL, nowned 0).
 * Leave the group (stream_group_leave: revokes, so the partitions are checkpointed) before
 * stream_stop.
 */
struct evlog_group_options;
struct evlog_group;
int stream_group_join(struct stream *s, struct evlog_group_options *o, struct evlog_group **out);
void stream_group_leave(struct evlog_group *g);

/*
 * Offline: rebuilds state for data_dir (newest checkpoint + replay of the log to its end,
 * without a running server) and appends the canonical dump of every shard, partition order.
 */
int stream_dump_offline(const char *data_dir, struct userkeys *keys, const struct state_config *cfg,
                        struct core_buf *out);

#endif
