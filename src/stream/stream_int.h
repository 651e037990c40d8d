/* Internals shared by the stream files: the runtime's structs and the checkpoint store. */
#ifndef RECSTREAM_STREAM_INT_H
#define RECSTREAM_STREAM_INT_H

#include "stream/stream.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

/* One partition: its shard and how far it has been applied (for stream_wait_applied). */
struct stream_part {
    /* The shard object lives as long as the stream (readers keep pointers to it); assigning
     * the partition swaps a restored state in, revoking swaps an empty one in. */
    struct state_shard *shard;
    atomic_bool owned; /* this stream processes the partition (stream_assign / revoke) */
    /* Held by the processor while it applies a batch of the partition, so revoking waits for
     * the batch in hand. */
    pthread_mutex_t run_mu;
    bool snap_valid; /* snap holds the partition (owned when the snapshot was taken) */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int64_t applied;      /* next offset to apply (guarded by mu) */
    struct core_buf snap; /* snapshot taken for the checkpoint in progress */
    int64_t snap_offset;  /* the shard's next offset when snap was taken */
    /* The partition's offset in the newest checkpoint written or restored (0: none): recovery
     * never reads below it. Written by the checkpointing thread, read by retention. */
    _Atomic int64_t ckpt_offset;
};

struct stream_worker {
    struct stream *s;
    int idx;
    pthread_t tid;
    bool started;
    uint64_t seen_gen; /* last snapshot generation served */
};

struct stream {
    struct stream_config cfg;
    struct seal_key data_key; /* seals checkpoints (cfg.data_key copied) */
    char *ckpt_dir;
    struct evlog *log;
    int32_t nparts;
    struct stream_part *parts;
    struct stream_worker *workers;
    int nworkers;

    /* Checkpoint coordination (all guarded by mu, except the atomics). */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_t ckpt_tid;
    bool ckpt_started;
    bool stopping;
    atomic_bool failed;            /* a processor hit a hard error: the stream is unhealthy */
    atomic_bool stop_workers;      /* processors exit after the batch in hand */
    atomic_uint_fast64_t snap_gen; /* bumped to ask every processor for snapshots */
    int snaps_pending;             /* processors yet to snapshot for snap_gen */
    /* A forked checkpoint: processors only report for snap_gen, then wait while it is set
     * (cleared with mu held). */
    atomic_bool parked;
    bool fork_failed_logged;
    uint64_t want_gen, done_gen; /* stream_checkpoint requests and completions */
    uint64_t only_gen;           /* stream_checkpoint_only: the request whose checkpoint
                                  * is to be the only one kept */
    int last_rc;
    atomic_int_fast64_t events_since; /* events applied since the last checkpoint */
    uint64_t next_seq;                /* guarded by write_mu */
    pthread_mutex_t write_mu;         /* one checkpoint write at a time in this process */
    pthread_mutex_t own_mu;           /* serialises stream_assign and stream_revoke */
};

/* ---- checkpoint store (stream_ckpt.c) ------------------------------------------------------ */

/* One partition's snapshot to write. */
struct stream__snap {
    int32_t partition;
    const void *data;
    size_t len;
    int64_t offset;
};

/*
 * Writes checkpoint <dir>/<*seq>, every file sealed under key, atomically (tmp dir, fsync files
 * and dir, rename, fsync dir) holding the nsnaps snapshots (ascending partitions, of nparts in
 * all) and a MANIFEST, then deletes the checkpoints no partition needs any more (each keeps its
 * newest keep). When another process sharing dir took *seq first, the next free number is
 * used. On success *seq is one past the number written and *bytes_out (may be NULL) the bytes
 * written. Returns 0 or a negative error (logged).
 */
int stream__ckpt_write(const char *dir, uint64_t *seq, const struct stream__snap *snaps, int nsnaps,
                       int32_t nparts, int keep, const struct seal_key *key, size_t *bytes_out);

/* Set in a checkpoint child to its parent's pid: temporary directories are named, and
 * recognised as this process's own leftovers, by the serving process's pid (0: getpid()). */
extern pid_t stream__ckpt_owner;

/*
 * Restores each partition p with want[p] (every partition when want is NULL) from the newest
 * checkpoint in dir holding it whose files open under key, verify and fit the log (offset not
 * beyond the partition's high water), falling back to older ones; shards[p] is replaced by the
 * restored shard (freed), and stays as given (empty) when no checkpoint qualifies. Partitions
 * are independent (each shard is a function of its own log prefix), so they may come from
 * different checkpoints. *max_seq is set to the highest checkpoint number present (0 when
 * none). Returns 0, or CORE_E_INVALID when a checkpoint was written for a different partition
 * count (refused), or another negative error. A missing dir is an empty store.
 */
int stream__recover(const char *dir, struct evlog *log, const struct state_config *cfg,
                    struct state_shard **shards, int32_t nparts, const bool *want,
                    uint64_t *max_seq, const struct seal_key *key);

#endif
