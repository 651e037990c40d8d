/*
 * evlog: the partitioned, ordered, replayable event log. Callers use only this function
 * table; backends live one per file (evlog_file.c: embedded segment files; evlog_kafka.c: a
 * Kafka topic through librdkafka).
 *
 * Threading: append, read, wait, high_water and friends may be called from any thread
 * concurrently. Completions (evlog_done_fn) run on a backend thread or on a thread inside
 * append (see append), must not block, and may append but not flush or close.
 */
#ifndef RECSTREAM_EVLOG_H
#define RECSTREAM_EVLOG_H

#include "core/core.h"
#include "privacy/seal.h"

struct userkeys;

/* One record, to append or as read back. */
struct evlog_record {
    int32_t partition;
    int64_t offset;         /* append: filled in before done() runs; read: the record's */
    int64_t event_time_ms;  /* the event's own time */
    int64_t ingest_time_ms; /* when the collector received it (the time index uses this) */
    const void *key;        /* pseudonymous user key */
    uint32_t key_len;
    const void *value; /* encoded event (event_bin_encode) */
    uint32_t value_len;
    /* append: the key to seal the record under (a user's, from userkeys_acquire; copied
     * before append returns); NULL seals it under the data key. */
    const struct seal_key *seal;
    /* read: the record's key was shredded (userkeys_shred), so it cannot be opened any more;
     * key and value are empty. Readers skip it but move past its offset. */
    bool erased;
};

/* Durability met for every record of an append (status 0) or the append failed
 * (negative code; no record of it is visible to readers). On success the records can
 * become visible to readers a little after done ran. */
typedef void (*evlog_done_fn)(void *arg, int status);

enum evlog_fsync {
    EVLOG_FSYNC_ALWAYS, /* fsync before done(): group commit of concurrent appends */
    EVLOG_FSYNC_BATCH,  /* written to the OS before done(); a background thread fsyncs at
                           least every interval, concurrently with writes */
    EVLOG_FSYNC_NONE,   /* written to the OS before done(); fsync left to the OS (and to
                           segment rolls, flush and close) */
};

/* Records read from a partition; records point into batch-owned memory. */
struct evlog_batch {
    struct evlog_record *recs;
    size_t n;
    size_t cap;
    struct core_buf buf;
};

void evlog_batch_init(struct evlog_batch *b);
void evlog_batch_dispose(struct evlog_batch *b);

/* Per-partition figures for `recstream log stats`. */
struct evlog_partition_stats {
    int64_t low_water;  /* first offset still stored */
    int64_t high_water; /* next offset to be written (records visible: [low, high)) */
    int64_t bytes;      /* bytes on disk (segments + indexes) */
    int32_t segments;
    int64_t first_ingest_ms;
    int64_t last_ingest_ms;
};

struct evlog;

struct evlog_ops {
    const char *name;
    /*
     * Queues n records for appending (each recs[i].partition must be valid). Copies keys
     * and values before returning; recs itself must stay valid until done runs, because the
     * backend writes each record's offset into it. Records of one call keep their order
     * within each partition. Returns 0 (done will run exactly once), CORE_E_FULL when the
     * append queue cannot take them (nothing queued: answer 429), CORE_E_TOOBIG for a
     * record larger than the backend allows, or CORE_E_FAILED when the log is not writable.
     *
     * done may run on the calling thread before append returns: the file backend under
     * EVLOG_FSYNC_BATCH and EVLOG_FSYNC_NONE writes inline when no write is in progress, and
     * then runs the completions of every append it wrote, this call's and other callers'
     * (in append order). So a caller must not hold, across append, a lock that any of its
     * completions takes. With EVLOG_FSYNC_ALWAYS done always runs on a backend thread.
     */
    int (*append)(struct evlog *log, struct evlog_record *recs, size_t n, evlog_done_fn done,
                  void *arg);
    /*
     * Reads up to max records of partition p starting at offset from (clamped up to the
     * low-water mark) into batch (replacing its contents). Returns the count (0 when no
     * record at or after from is visible yet), or a negative error (CORE_E_CORRUPT naming
     * the segment in the log).
     */
    int (*read)(struct evlog *log, int32_t p, int64_t from, size_t max, struct evlog_batch *b);
    /* Blocks until high_water(p) > offset or timeout_ms passes (no polling). Returns 0, or
     * CORE_E_TIMEOUT, or CORE_E_CLOSED once the log is shutting down. */
    int (*wait)(struct evlog *log, int32_t p, int64_t offset, int timeout_ms);
    /* A counter that grows whenever records become visible in any partition. A consumer of
     * several partitions reads it, checks its partitions, and when none has data waits in
     * wait_change(seen) until the counter differs from seen (0), timeout_ms passes
     * (CORE_E_TIMEOUT) or the log closes (CORE_E_CLOSED). No polling, no lost wake-ups. */
    uint64_t (*changes)(struct evlog *log);
    int (*wait_change)(struct evlog *log, uint64_t seen, int timeout_ms);
    int (*stats)(struct evlog *log, int32_t p, struct evlog_partition_stats *out);
    /* First offset whose ingest time >= ts_ms (high_water when none). */
    int (*offset_for_time)(struct evlog *log, int32_t p, int64_t ts_ms, int64_t *offset);
    /* Writes and fsyncs everything queued so far (used at shutdown). Not from done. */
    int (*flush)(struct evlog *log);
    /* Flushes, stops backend threads, wakes waiters with CORE_E_CLOSED, frees. */
    void (*close)(struct evlog *log);
    /* Optional (NULL: nothing to do). Whether partition p is going to be read: a backend that
     * prefetches (Kafka) stops fetching a partition set off (a processor in a group does not
     * own it) and, once set on again, positions the next read explicitly. Reading a partition
     * set off may block up to the backend's read wait. Not concurrently with reads of p. */
    void (*fetch)(struct evlog *log, int32_t p, bool on);
};

/* Every backend's handle starts with this. */
struct evlog {
    const struct evlog_ops *ops;
    int32_t partitions;
};

static inline int evlog_append(struct evlog *log, struct evlog_record *recs, size_t n,
                               evlog_done_fn done, void *arg)
{
    return log->ops->append(log, recs, n, done, arg);
}
static inline int evlog_read(struct evlog *log, int32_t p, int64_t from, size_t max,
                             struct evlog_batch *b)
{
    return log->ops->read(log, p, from, max, b);
}
static inline int evlog_wait(struct evlog *log, int32_t p, int64_t offset, int timeout_ms)
{
    return log->ops->wait(log, p, offset, timeout_ms);
}
static inline uint64_t evlog_changes(struct evlog *log)
{
    return log->ops->changes(log);
}
static inline int evlog_wait_change(struct evlog *log, uint64_t seen, int timeout_ms)
{
    return log->ops->wait_change(log, seen, timeout_ms);
}
static inline int evlog_stats(struct evlog *log, int32_t p, struct evlog_partition_stats *out)
{
    return log->ops->stats(log, p, out);
}
static inline int evlog_offset_for_time(struct evlog *log, int32_t p, int64_t ts, int64_t *o)
{
    return log->ops->offset_for_time(log, p, ts, o);
}
static inline void evlog_fetch(struct evlog *log, int32_t p, bool on)
{
    if (log->ops->fetch)
        log->ops->fetch(log, p, on);
}
static inline int evlog_flush(struct evlog *log)
{
    return log->ops->flush(log);
}
static inline void evlog_close(struct evlog *log)
{
    log->ops->close(log);
}

/* ---- file backend ---------------------------------------------------------------------- */

struct evlog_file_options {
    const char *dir;    /* e.g. data/log; created if missing */
    int32_t partitions; /* must match what an existing log was created with */
    enum evlog_fsync fsync;
    int fsync_interval_ms; /* for EVLOG_FSYNC_BATCH */
    int64_t segment_bytes; /* roll a segment past this size (default 64 MiB) */
    int64_t segment_ms;    /* roll a segment older than this (default 1 h) */
    int64_t queue_bytes;   /* bound on bytes waiting to be written (default 64 MiB) */
    bool read_only;        /* inspect only: no recovery writes, no writer thread */
    /* Required, borrowed (must outlive the log): the keys records are sealed and opened with
     * (userkeys.h; its data key for records without a key of their own). */
    struct userkeys *keys;
};

void evlog_file_options_init(struct evlog_file_options *opt);

/*
 * Opens (creating if needed) the segment log in opt->dir and recovers it: every
 * partition's last segment is verified, a torn last record is truncated (logged), and
 * corruption followed by valid records is refused with CORE_E_CORRUPT and a log line naming
 * file and position (read_only opens never truncate). On success *out is the log.
 */
int evlog_file_open(const struct evlog_file_options *opt, struct evlog **out);

/* True for a log opened by evlog_file_open (the file-only functions below need one). */
bool evlog_is_file(const struct evlog *log);

/* ---- Kafka backend --------------------------------------------------------------------- */

struct evlog_kafka_options {
    const char *brokers; /* bootstrap list "host:port[,host:port]"; copied */
    const char *topic;   /* must exist; copied */
    int32_t partitions;  /* 0: the topic's count; otherwise it must equal the topic's */
    /* Bound on bytes of appends awaiting their delivery reports (default 64 MiB); an append
     * that does not fit is refused whole with CORE_E_FULL. */
    int64_t queue_bytes;
    int delivery_timeout_ms; /* message.timeout.ms: a record not delivered by then fails its
                                append with CORE_E_TIMEOUT (default 30000) */
    int metadata_timeout_ms; /* for the metadata and offset requests at open (default 10000) */
    int read_wait_ms;        /* longest a read waits for records known to exist (default 5000) */
    /* Required, borrowed (must outlive the log): the keys records are sealed and opened with. */
    struct userkeys *keys;
};

void evlog_kafka_options_init(struct evlog_kafka_options *opt);

/* Splits "kafka://host:port[,host:port]/topic" into brokers and topic (NUL-terminated).
 * Returns 0 or CORE_E_INVALID (other scheme, no topic, bad topic name, too long). */
int evlog_kafka_parse_uri(const char *uri, char *brokers, size_t bsize, char *topic, size_t tsize);

/*
 * Opens the log on an existing Kafka topic: reads the partition count from the topic's
 * metadata, the partitions' watermarks, starts an idempotent producer (acks=all), a consumer
 * with every partition assigned (no group) and the poller thread that serves delivery
 * reports. Appends complete on that thread once every record has its delivery report (the
 * offsets come from the reports); a delivery error completes the append with CORE_E_TIMEOUT
 * (message timed out) or CORE_E_FAILED, never leaving part of it unreported. Returns 0,
 * CORE_E_NOTFOUND (topic missing, logged), CORE_E_INVALID (options, or a partitions count
 * that differs from the topic's, logged), or CORE_E_FAILED (cluster unreachable, logged).
 */
int evlog_kafka_open(const struct evlog_kafka_options *opt, struct evlog **out);

/* ---- retention (file backend) ----------------------------------------------------------- */

/*
 * Rolls every partition whose active segment holds records and is older than the log's
 * segment_ms. Every write pass does the same for all partitions, so this matters for a log
 * that gets no writes at all (without it a quiet log's last records would never sit in a
 * rolled, deletable segment). Waits its turn as the one writing thread (appends queue
 * meanwhile and are handed to the writer after it); when the log is so busy that the turn
 * does not come within a second, returns 0 with nothing rolled (the passes roll). *rolled
 * (may be NULL) gets the count. Returns 0 or a storage error (the log is then failed, as for
 * a failed write). Any thread but a completion; not on a read-only log.
 */
int evlog_file_roll_aged(struct evlog *log, int *rolled);

/*
 * Deletes partition p's oldest rolled segments, in order, while each one's records all lie
 * below upto (its end <= upto) and its newest record was ingested before before_ms; stops at
 * the first that does not qualify, at one a reader has pinned (retried next call), and never
 * deletes the active segment. So what remains is contiguous and only whole segments go. Each
 * file is unlinked (segment, then its index) and the directory fsynced; readers asking for
 * older offsets are clamped to the new low-water mark as for any read. *deleted (may be NULL)
 * gets the count, *deleted_records the records in them. Returns 0, CORE_E_INVALID (bad p) or
 * -errno of a failed unlink (segments deleted before it stay deleted). Any thread.
 */
int evlog_file_delete_segments(struct evlog *log, int32_t p, int64_t upto, int64_t before_ms,
                               int *deleted, int64_t *deleted_records);

/* One problem found by evlog_file_check. */
typedef void (*evlog_check_fn)(void *arg, const char *file, int64_t position, const char *what);

/*
 * Verifies every record of every segment in dir (checksums, framing, offset continuity,
 * indexes, and that each record authenticates under its key from keys), calling report for
 * each problem. Records whose key was shredded are counted in *erased (may be NULL), not
 * reported. Returns the number of problems (0 = clean) or a negative error when dir cannot be
 * read.
 */
int evlog_file_check(const char *dir, struct userkeys *keys, evlog_check_fn report, void *arg,
                     int64_t *erased);

#endif
