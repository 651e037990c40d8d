/*
 * Internals shared by the files of the evlog file backend: record framing, sparse indexes,
 * segment files, partitions, the append queue and the writer's counters. Nothing outside
 * src/evlog/ (except tests and the fuzzer) includes this.
 */
#ifndef RECSTREAM_EVLOG_FILE_INT_H
#define RECSTREAM_EVLOG_FILE_INT_H

#include "evlog/evlog.h"
#include "privacy/userkeys.h"

#include <pthread.h>
#include <stdatomic.h>

/* ---- record framing ------------------------------------------------------------------- */

/*
 * One record on disk, all integers little-endian:
 *
 *    0  u8   magic 0xEB
 *    1  u8   format version (2: sealed)
 *    2  u16  flags (reserved, must be 0)
 *    4  u32  frame length: header + key length + value length
 *    8  u32  checksum: low 32 bits of XXH3_64bits over bytes [12, frame length)
 *   12  u64  offset
 *   20  i64  event_time_ms
 *   28  i64  ingest_time_ms
 *   36  u32  key length
 *   40  u32  value length
 *   44  key bytes, then value bytes
 *
 * The magic, version, flags and length are not under the checksum but are all checked for
 * exact values (the length must equal header + key length + value length), so a frame is
 * valid only when every byte of it is accounted for.
 *
 * Sealing (evlog_seal.c). The frame's key is the 12-byte key id (SEAL_ID_DATA or a user's,
 * userkeys.h) and its value is nonce (24) || XChaCha20-Poly1305 ciphertext || tag (16) of the
 * plaintext u32 record key length || record key (the pseudonym) || record value (the event).
 * The associated data is u32 partition || bytes [12, 36) of the header (offset, event time,
 * ingest time) || key id, so a record moved to another offset or partition, or given other
 * times or another key id, fails to open. The checksum stays: recovery tells a torn tail from
 * damage without any key (shredded records included).
 */
#define EVLOG_FRAME_MAGIC 0xEBu
#define EVLOG_FRAME_VERSION 2u
#define EVLOG_FRAME_HDR 44u
#define EVLOG_MAX_KEY (64u * 1024u)
#define EVLOG_MAX_VALUE (1024u * 1024u)
/* Frame key and value limits: a key id, and the sealed record key + value. */
#define EVLOG_MAX_FRAME_KEY SEAL_ID_BYTES
#define EVLOG_MAX_FRAME_VALUE (4u + EVLOG_MAX_KEY + EVLOG_MAX_VALUE + SEAL_OVERHEAD)
#define EVLOG_FRAME_MAX (EVLOG_FRAME_HDR + EVLOG_MAX_FRAME_KEY + EVLOG_MAX_FRAME_VALUE)

/* evlog__frame_decode: the bytes are a valid prefix of a frame but more are needed. */
#define EVLOG__FRAME_SHORT 1

/* Bytes a frame with these key and value lengths takes. */
static inline size_t evlog__frame_size(uint32_t key_len, uint32_t value_len)
{
    return (size_t)EVLOG_FRAME_HDR + key_len + value_len;
}

/* Writes rec (offset included) as one frame of evlog__frame_size() bytes at dst. The
 * caller has checked the key and value lengths against the limits above. */
void evlog__frame_encode(uint8_t *dst, const struct evlog_record *rec);

/*
 * Decodes the frame at p (avail bytes readable). Returns 0 and fills *rec (key and value
 * point into p; partition is 0) and *frame_len; EVLOG__FRAME_SHORT when the bytes so far
 * are a plausible frame prefix (when avail >= EVLOG_FRAME_HDR, *frame_len is then the full
 * length needed); CORE_E_CORRUPT when they cannot start a valid frame.
 */
int evlog__frame_decode(const uint8_t *p, size_t avail, struct evlog_record *rec,
                        size_t *frame_len);

/* Why the frame at p is not valid, for log lines and check reports (cold path). */
const char *evlog__frame_error(const uint8_t *p, size_t avail);

/* Bytes the sealed frame of a record with these (plaintext) key and value lengths takes. */
static inline size_t evlog__sealed_size(uint32_t key_len, uint32_t value_len)
{
    return evlog__frame_size(SEAL_ID_BYTES, 4u + key_len + value_len + SEAL_OVERHEAD);
}

/* Seals rec (offset included) of partition under key and writes it as one frame of
 * evlog__sealed_size() bytes at dst (evlog_seal.c). */
void evlog__frame_seal(uint8_t *dst, const struct evlog_record *rec, int32_t partition,
                       const struct seal_key *key, struct seal_nonces *nn);

/* evlog__frame_open: the record's key id is unknown (shredded). */
#define EVLOG__FRAME_ERASED 2

/*
 * Opens the sealed frame at frame (flen bytes, decoded into *rec by evlog__frame_decode) in
 * place, with the key its key id names in keys. Returns 0 (rec's key and value now point at
 * the plaintext inside frame), EVLOG__FRAME_ERASED (key shredded: rec's key and value empty,
 * erased set), or CORE_E_CORRUPT (*why set) when it does not authenticate or is malformed.
 */
int evlog__frame_open(uint8_t *frame, size_t flen, int32_t partition, struct userkeys *keys,
                      struct evlog_record *rec, const char **why);

/* Length, offset and ingest time of a frame this process encoded (no validation). */
void evlog__frame_peek(const uint8_t *p, uint32_t *len, int64_t *offset, int64_t *ingest_ms);

/* ---- sparse index ---------------------------------------------------------------------- */

/* An index entry every EVLOG_INDEX_INTERVAL bytes of records: enough to seek near any
 * offset or time with at most that much scanning. */
#define EVLOG_INDEX_INTERVAL 4096

struct evlog_index_entry {
    uint32_t rel;              /* offset - segment base */
    uint32_t pos;              /* file position of that record */
    int64_t max_ingest_before; /* max ingest time of the segment's earlier records */
};

struct evlog_index {
    struct evlog_index_entry *e;
    size_t n;
    size_t cap;
    int64_t next_pos; /* a record at or past this position gets the next entry */
};

/* What is known about a segment's contents (everything up to size is valid records). */
struct evlog_seg_info {
    int64_t base; /* offset of the first record (from the file name) */
    int64_t end;  /* offset after the last record */
    int64_t size; /* bytes of records */
    int64_t first_ingest_ms;
    int64_t last_ingest_ms;
    int64_t max_ingest_ms;
};

void evlog__index_init(struct evlog_index *idx);
void evlog__index_dispose(struct evlog_index *idx);
void evlog__index_push(struct evlog_index *idx, const struct evlog_index_entry *ent);
/* Accounts one record of frame_len bytes at file position pos into info (and idx when an
 * entry is due). The one rule used by the writer, by scans and by evlog_file_check, so an
 * index file can be compared with a rebuild byte for byte. */
void evlog__seg_account(struct evlog_seg_info *info, struct evlog_index *idx, int64_t pos,
                        int64_t ingest_ms, uint32_t frame_len);
/* Index of the last entry with base + rel <= offset (idx->n > 0). */
size_t evlog__index_find_offset(const struct evlog_index *idx, int64_t base, int64_t offset);
/* Index of the last entry whose max_ingest_before < ts_ms (idx->n > 0). */
size_t evlog__index_find_time(const struct evlog_index *idx, int64_t ts_ms);
/* Serialises info + idx as an index file image into out (replacing its contents). */
void evlog__index_encode(const struct evlog_seg_info *info, const struct evlog_index *idx,
                         struct core_buf *out);
/* Parses an index file image; 0 or CORE_E_CORRUPT (checksum, framing or base mismatch). */
int evlog__index_decode(const uint8_t *p, size_t n, int64_t base, struct evlog_seg_info *info,
                        struct evlog_index *idx);

/* ---- segments -------------------------------------------------------------------------- */

struct evlog_segment {
    char *path;     /* <dir>/<partition>/<base as 20 digits>.seg */
    char *idx_path; /* same with .idx */
    /* Guarded by the partition lock; the writer changes them only under it. */
    struct evlog_seg_info info;
    struct evlog_index idx;
    int fd;        /* -1 while closed (rolled segments are opened on demand) */
    int readers;   /* reads, or fsyncs by another thread, in progress using fd */
    bool writable; /* the active segment: fd stays open for the writer */
    uint64_t last_use;
    /* Writer thread only. */
    int64_t created_ms; /* for rolling by age */
};

struct evlog_segment *evlog__segment_new(const char *part_dir, int64_t base);
void evlog__segment_free(struct evlog_segment *seg);
/* Creates the (new, empty) file and opens it for writing; fsyncs the directory. */
int evlog__segment_create(struct evlog_segment *seg, const char *part_dir);
/* Lists the bases of part_dir's *.seg files in ascending order (*bases malloc'd). */
int evlog__segment_list(const char *part_dir, int64_t **bases, size_t *n);
/* Loads a rolled segment: its index file when consistent with the segment, else a verifying
 * scan (and, unless read_only, a rewritten index). */
int evlog__segment_load(struct evlog_segment *seg, bool read_only);
/* Verifies the last segment of a partition from its start, truncating a torn tail (unless
 * read_only) and refusing corruption followed by valid records; opens it for writing. */
int evlog__segment_recover(struct evlog_segment *seg, bool read_only);
/* Writes the segment's index file (atomically). */
int evlog__segment_write_index(const struct evlog_segment *seg);

/*
 * Verifies frames of map[pos, size) against info (info->end is the offset expected next),
 * accounting each valid frame. Returns the position of the first invalid frame, or size
 * when all are valid; *why is set to the reason for an invalid one.
 */
int64_t evlog__scan_frames(const uint8_t *map, int64_t size, int64_t pos,
                           struct evlog_seg_info *info, struct evlog_index *idx, const char **why);
/* Position of the first valid frame at or after pos whose offset >= min_offset, or -1. */
int64_t evlog__scan_find_valid(const uint8_t *map, int64_t size, int64_t pos, int64_t min_offset);
/* Maps a file read-only (*map NULL for an empty file); unmap with evlog__unmap. */
int evlog__map_file(int fd, const uint8_t **map, int64_t *size);
void evlog__unmap(const uint8_t *map, int64_t size);

/* <dir>/meta: format version and partition count. *partitions in: wanted (0 = any);
 * out: the log's. create=false fails with CORE_E_NOTFOUND for a missing meta. */
int evlog__meta_load(const char *dir, int32_t *partitions, bool create);

/* ---- partitions, queue, backend -------------------------------------------------------- */

/* Rolled segments per partition whose file stays open for readers. */
#define EVLOG_OPEN_ROLLED_MAX 8

struct evlog_part {
    int32_t id;
    char *dir;
    pthread_mutex_t lock; /* guards segs, high_water, waiters, closing, open_rolled */
    pthread_cond_t cond;  /* high_water advanced, closing set, or a waiter left */
    struct evlog_segment **segs;
    size_t nsegs;
    size_t segs_cap;
    int64_t high_water; /* records below it are durable per policy and readable */
    int waiters;
    bool closing;
    int open_rolled;
    uint64_t use_clock;
    /* The thread holding evlog_queue.writing only. */
    struct core_buf wframes; /* frames taken from the queue, being written */
    int64_t wend;            /* offset after the last of them */
    /* Under evlog_sync.lock. */
    bool dirty;  /* active segment written since the last fsync of it began */
    int syncing; /* fsyncs of this partition in progress (any thread) */
};

/* Per-partition part of the append queue (under evlog_queue.lock). */
struct evlog_qpart {
    struct core_buf frames; /* encoded frames waiting for the writer */
    int64_t next_offset;    /* next offset to assign */
    bool touched;           /* listed in evlog_queue.touched */
};

struct evlog_completion {
    evlog_done_fn done;
    void *arg;
};

struct evlog_queue {
    pthread_mutex_t lock;
    pthread_cond_t work;    /* appends, flush requests or stop for the writer */
    pthread_cond_t flushed; /* flush_done advanced or failure */
    struct evlog_qpart *parts;
    int32_t *touched; /* partitions with queued frames */
    size_t ntouched;
    struct evlog_completion *c; /* queued appends, in append order */
    size_t nc;
    size_t cap_c;
    int64_t bytes; /* queued + being written; bounded by queue_bytes */
    uint64_t flush_req;
    uint64_t flush_done;
    /* One thread at a time writes: the writer thread or an appending "leader". It owns the
     * batch fields of evlog_file and the partitions' wframes/wend while this is set. */
    bool writing;
    bool writer_idle;
    bool stopping;
    bool failed;
    struct seal_nonces nonces; /* for sealing at enqueue (under lock) */
};

/* Counters the tests use to see group commit working (monotonic since open). */
struct evlog_file_counters {
    uint64_t appends; /* accepted append calls */
    uint64_t records; /* records in them */
    uint64_t drains;  /* writer passes over the queue */
    uint64_t writes;  /* write syscalls to segment files */
    uint64_t fsyncs;  /* fdatasync calls on segment files */
    uint64_t rolls;   /* segments rolled */
    uint64_t leads;   /* passes written by appending threads themselves (BATCH, NONE) */
    uint64_t erased;  /* records read (and skipped by readers) whose key was shredded */
};

/* Partitions to fsync and their pinned segments: one per thread that runs sync passes. */
struct evlog_sync_scratch {
    int32_t *ids;
    struct evlog_segment **segs;
};

/* Helper threads that fsync the segments of one ALWAYS drain concurrently (evlog_sync.c). */
#define EVLOG_SYNC_HELPERS 3

struct evlog_sync_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;         /* a round posted, or stop */
    pthread_cond_t idle;         /* the round's last fsync returned */
    struct evlog_segment **jobs; /* the round: the poster's scratch, valid until it ends */
    size_t njobs, next, finished;
    int rc; /* first error of the round */
    bool stop;
    pthread_t th[EVLOG_SYNC_HELPERS];
    int nth;
};

/* fsync bookkeeping shared by the writing thread and the BATCH syncer (evlog_sync.c). */
struct evlog_sync {
    pthread_mutex_t lock; /* guards dirty, ndirty, last_ns, stop and parts' dirty, syncing */
    pthread_cond_t cond;  /* a partition became dirty, or stop (the syncer waits on it) */
    int32_t *dirty;       /* partitions with dirty set */
    size_t ndirty;
    int64_t last_ns; /* when the syncer's last pass began */
    bool stop;
    bool has_syncer;
    pthread_t syncer;
    struct evlog_sync_scratch wscratch; /* the writing thread's */
    struct evlog_sync_scratch sscratch; /* the syncer's */
    struct evlog_sync_pool pool;
};

struct evlog_file {
    struct evlog base;
    struct evlog_file_options opt;
    char *dir;
    struct evlog_part *parts;
    struct evlog_queue q;
    struct evlog_sync sync;
    pthread_t writer;
    bool has_writer;
    /* The thread holding q.writing only: the batch taken from the queue. */
    int32_t *wtouched;
    size_t nwtouched;
    struct evlog_completion *wc;
    size_t nwc;
    size_t cap_wc;
    int64_t wbytes;
    struct evlog_index stage;
    /* Log-wide change notification: count of publishes, for evlog_wait_change. */
    pthread_mutex_t chg_lock;
    pthread_cond_t chg_cond;
    _Atomic uint64_t chg_count;
    bool chg_closing;
    int chg_waiters;
    _Atomic uint64_t n_appends, n_records, n_drains, n_writes, n_fsyncs, n_rolls, n_leads;
    _Atomic uint64_t n_erased; /* records read whose key was shredded */
};

static inline struct evlog_segment *evlog__part_active(const struct evlog_part *part)
{
    return part->segs[part->nsegs - 1];
}

/* Marks the log failed (appends refused, flush fails); takes the queue lock. */
void evlog__file_fail(struct evlog_file *lf, int rc);

/* ---- fsync side (evlog_sync.c) ----------------------------------------------------------- */

/* Sets up lf->sync for lf->base.partitions partitions (no threads yet). */
void evlog__sync_init(struct evlog_file *lf);
/* Starts the BATCH syncer or the ALWAYS fsync helpers, as lf->opt.fsync asks. */
int evlog__sync_start(struct evlog_file *lf);
/* Stops and joins the threads evlog__sync_start started, then frees lf->sync. */
void evlog__sync_dispose(struct evlog_file *lf);
/* Records that part's active segment was written (by the thread holding q.writing). */
void evlog__sync_mark_dirty(struct evlog_file *lf, struct evlog_part *part);
/* fsyncs part's active segment before a roll retires it, when anything written to it may
 * not be durable yet (thread holding q.writing). */
int evlog__sync_before_roll(struct evlog_file *lf, struct evlog_part *part);
/* fsyncs every dirty partition's active segment; with all, also those another thread is
 * fsyncing, so everything written before the call is durable when it returns (thread
 * holding q.writing, or the writer thread at exit). */
int evlog__sync_dirty(struct evlog_file *lf, bool all);

/* Snapshot of the counters of a log opened by evlog_file_open. */
void evlog__file_counters(struct evlog *log, struct evlog_file_counters *out);

/* Read side (evlog_read.c), installed in the ops table by evlog_file.c. */
int evlog__file_read(struct evlog *log, int32_t p, int64_t from, size_t max, struct evlog_batch *b);
int evlog__file_wait(struct evlog *log, int32_t p, int64_t offset, int timeout_ms);
int evlog__file_stats(struct evlog *log, int32_t p, struct evlog_partition_stats *out);
int evlog__file_offset_for_time(struct evlog *log, int32_t p, int64_t ts_ms, int64_t *offset);

/* Initialises a condition variable that waits against CLOCK_MONOTONIC (core_mono_ns). */
void evlog__cond_init(pthread_cond_t *cond);
/* Waits on cond until deadline_ns (core_mono_ns clock). Returns 0 or ETIMEDOUT. */
int evlog__cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t deadline_ns);

/* Makes seg's fd usable for a read (opening it if needed); call with part->lock held.
 * Pair with evlog__segment_release. */
int evlog__segment_acquire(struct evlog_part *part, struct evlog_segment *seg);
void evlog__segment_release(struct evlog_part *part, struct evlog_segment *seg);
/* Closes least recently used idle rolled segment files beyond EVLOG_OPEN_ROLLED_MAX
 * (part->lock held). */
void evlog__part_trim_fds(struct evlog_part *part);

#endif
