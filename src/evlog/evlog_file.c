/*
 * The embedded file backend of evlog: open/close, the bounded append queue and the passes
 * that turn it into segment writes with group commit.
 *
 * Appenders encode their records into per-partition frame buffers under the queue lock,
 * taking offsets from each partition's counter, so offsets are known (and gap-free) when
 * append returns. One thread at a time (q.writing) then swaps those buffers out, writes each
 * partition's frames with one write call, fsyncs per policy, runs the completions in append
 * order and only then advances the high-water marks readers see. Everything that arrived
 * while it was busy is taken in the next pass: concurrent appends share one write (and, for
 * ALWAYS, one fsync).
 *
 * Who writes depends on the policy. For ALWAYS the writer thread does every pass, so the
 * fsync of a drain is shared by all appends that queued up during the previous one. For
 * BATCH and NONE a write costs no fsync, so an append that finds nobody writing becomes the
 * "leader" and writes the queue itself: uncontended appends complete before append returns,
 * with no thread handoff. Appends arriving meanwhile only queue, and the leader hands them to
 * the writer thread once its pass is done rather than keep its own caller waiting for more
 * passes. Under load the writer thread thus does group commit as before, while the leader
 * role passes back to appenders whenever the writer falls idle. The BATCH syncer
 * (evlog_sync.c) fsyncs in the background.
 */
#include "evlog/evlog_file_int.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SEGMENT_BYTES_MAX ((int64_t)1 << 30) /* index positions are u32 */
#define PARTITIONS_MAX 65536
#define WFRAMES_KEEP (8u * 1024 * 1024) /* larger writer buffers are freed after use */

static const struct evlog_ops file_ops;

static struct evlog_file *file_of(struct evlog *log)
{
    /* The file-only functions (retention) must never be handed another backend's log. */
    assert(log->ops == &file_ops);
    return (struct evlog_file *)log;
}

#define COUNT(lf, field, n) atomic_fetch_add_explicit(&(lf)->field, (n), memory_order_relaxed)

void evlog__file_counters(struct evlog *log, struct evlog_file_counters *out)
{
    struct evlog_file *lf = file_of(log);
    out->appends = atomic_load(&lf->n_appends);
    out->records = atomic_load(&lf->n_records);
    out->drains = atomic_load(&lf->n_drains);
    out->writes = atomic_load(&lf->n_writes);
    out->fsyncs = atomic_load(&lf->n_fsyncs);
    out->rolls = atomic_load(&lf->n_rolls);
    out->leads = atomic_load(&lf->n_leads);
    out->erased = atomic_load(&lf->n_erased);
}

void evlog__cond_init(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
}

int evlog__cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t deadline_ns)
{
    struct timespec ts = {.tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000};
    return pthread_cond_timedwait(cond, lock, &ts);
}

/* Appends seg to the partition's list (part->lock held, or before readers exist). */
static void part_push_seg(struct evlog_part *part, struct evlog_segment *seg)
{
    if (part->nsegs == part->segs_cap) {
        part->segs_cap = part->segs_cap ? part->segs_cap * 2 : 8;
        part->segs = core_xrealloc(part->segs, part->segs_cap * sizeof *part->segs);
    }
    part->segs[part->nsegs++] = seg;
}

/* ==== writing ============================================================================ */

/*
 * Rolls the partition to a new segment starting at the active one's end: fsync the old
 * segment, write its index, create the new file and fsync the directory, then publish it.
 */
static int roll(struct evlog_file *lf, struct evlog_part *part)
{
    struct evlog_segment *old = evlog__part_active(part);
    int rc = evlog__sync_before_roll(lf, part);
    if (rc < 0)
        return rc;
    rc = evlog__segment_write_index(old);
    if (rc < 0)
        return rc;
    struct evlog_segment *seg = evlog__segment_new(part->dir, old->info.end);
    rc = evlog__segment_create(seg, part->dir);
    if (rc < 0) {
        evlog__segment_free(seg);
        return rc;
    }
    pthread_mutex_lock(&part->lock);
    part_push_seg(part, seg);
    old->writable = false;
    part->open_rolled++;
    evlog__part_trim_fds(part);
    pthread_mutex_unlock(&part->lock);
    COUNT(lf, n_rolls, 1);
    LOG_DEBUG("evlog: rolled segment", "file=%s", seg->path);
    return 0;
}

/*
 * Accounts as many of the frames at p (len bytes) as fit in seg into *info and lf->stage;
 * returns their byte count (0 when even the first would overflow a non-empty segment).
 */
static size_t stage_frames(struct evlog_file *lf, const struct evlog_segment *seg, const uint8_t *p,
                           size_t len, struct evlog_seg_info *info)
{
    *info = seg->info;
    lf->stage.n = 0;
    lf->stage.next_pos = seg->idx.next_pos;
    size_t used = 0;
    while (used < len) {
        uint32_t flen;
        int64_t offset, ingest;
        evlog__frame_peek(p + used, &flen, &offset, &ingest);
        if (info->size > 0 && info->size + flen > lf->opt.segment_bytes)
            break;
        evlog__seg_account(info, &lf->stage, info->size, ingest, flen);
        used += flen;
    }
    return used;
}

/* Publishes what stage_frames learnt once the bytes are in the file. */
static void commit_stage(struct evlog_file *lf, struct evlog_part *part, struct evlog_segment *seg,
                         const struct evlog_seg_info *info)
{
    pthread_mutex_lock(&part->lock);
    for (size_t i = 0; i < lf->stage.n; i++)
        evlog__index_push(&seg->idx, &lf->stage.e[i]);
    seg->idx.next_pos = lf->stage.next_pos;
    seg->info = *info;
    pthread_mutex_unlock(&part->lock);
}

static bool seg_too_old(const struct evlog_file *lf, const struct evlog_segment *seg)
{
    return seg->info.size > 0 && core_now_ms() - seg->created_ms >= lf->opt.segment_ms;
}

/* Writes the partition's taken frames, rolling segments by size and age on the way. */
static int write_partition(struct evlog_file *lf, struct evlog_part *part)
{
    const uint8_t *p = (const uint8_t *)part->wframes.data;
    size_t len = part->wframes.len, done = 0;
    int rc = 0;
    while (done < len) {
        struct evlog_segment *seg = evlog__part_active(part);
        struct evlog_seg_info info;
        size_t n = seg_too_old(lf, seg) ? 0 : stage_frames(lf, seg, p + done, len - done, &info);
        if (n == 0) {
            rc = roll(lf, part);
            if (rc < 0)
                break;
            continue;
        }
        COUNT(lf, n_writes, 1);
        rc = core_write_full(seg->fd, p + done, n, seg->info.size);
        if (rc < 0) {
            LOG_ERROR("evlog: write failed", "file=%s position=%" PRId64 " err=\"%s\"", seg->path,
                      seg->info.size, core_strerror(rc));
            /* Best effort: leave no unacknowledged partial records behind. */
            if (ftruncate(seg->fd, seg->info.size) < 0)
                LOG_WARN("evlog: cannot cut failed write", "file=%s", seg->path);
            break;
        }
        commit_stage(lf, part, seg, &info);
        evlog__sync_mark_dirty(lf, part);
        done += n;
    }
    return rc;
}

/* Writes one taken batch and fsyncs as the policy (or a flush/close) asks. */
/* Rolls every partition whose active segment holds records and has aged past segment_ms
 * (thread holding q.writing): writes roll only the partitions they touch, and retention
 * needs quiet partitions' last records in a rolled segment too. */
static int roll_aged_all(struct evlog_file *lf, int *rolled)
{
    int rc = 0;
    for (int32_t p = 0; p < lf->base.partitions && rc == 0; p++) {
        struct evlog_part *part = &lf->parts[p];
        if (!seg_too_old(lf, evlog__part_active(part)))
            continue;
        rc = roll(lf, part);
        if (rc == 0 && rolled)
            (*rolled)++;
    }
    return rc;
}

static int run_batch(struct evlog_file *lf, bool sync_now)
{
    COUNT(lf, n_drains, 1);
    int rc = 0;
    for (size_t i = 0; i < lf->nwtouched && rc == 0; i++)
        rc = write_partition(lf, &lf->parts[lf->wtouched[i]]);
    if (rc == 0)
        rc = roll_aged_all(lf, NULL);
    if (rc < 0)
        return rc;
    if (sync_now || lf->opt.fsync == EVLOG_FSYNC_ALWAYS)
        rc = evlog__sync_dirty(lf, sync_now);
    return rc;
}

/* Runs the batch's completions in append order, then makes its records visible. */
static void finish_batch(struct evlog_file *lf, int rc)
{
    for (size_t i = 0; i < lf->nwc; i++)
        lf->wc[i].done(lf->wc[i].arg, rc);
    lf->nwc = 0;
    for (size_t i = 0; i < lf->nwtouched; i++) {
        struct evlog_part *part = &lf->parts[lf->wtouched[i]];
        if (part->wframes.cap > WFRAMES_KEEP)
            core_buf_dispose(&part->wframes);
        core_buf_reset(&part->wframes);
        if (rc < 0)
            continue;
        pthread_mutex_lock(&part->lock);
        part->high_water = part->wend;
        pthread_cond_broadcast(&part->cond);
        pthread_mutex_unlock(&part->lock);
    }
    if (rc == 0 && lf->nwtouched > 0) {
        pthread_mutex_lock(&lf->chg_lock);
        atomic_fetch_add(&lf->chg_count, 1);
        pthread_cond_broadcast(&lf->chg_cond);
        pthread_mutex_unlock(&lf->chg_lock);
    }
    lf->nwtouched = 0;
}

/* ==== log-wide change notification ======================================================== */

static uint64_t file_changes(struct evlog *log)
{
    return atomic_load(&file_of(log)->chg_count);
}

static int file_wait_change(struct evlog *log, uint64_t seen, int timeout_ms)
{
    struct evlog_file *lf = file_of(log);
    int64_t deadline = core_mono_ns() + (int64_t)timeout_ms * 1000000;
    int rc = 0;
    pthread_mutex_lock(&lf->chg_lock);
    lf->chg_waiters++;
    while (atomic_load(&lf->chg_count) == seen && !lf->chg_closing) {
        if (evlog__cond_wait_until(&lf->chg_cond, &lf->chg_lock, deadline) == ETIMEDOUT) {
            rc = atomic_load(&lf->chg_count) == seen ? CORE_E_TIMEOUT : 0;
            break;
        }
    }
    if (lf->chg_closing)
        rc = CORE_E_CLOSED;
    if (--lf->chg_waiters == 0 && lf->chg_closing)
        pthread_cond_broadcast(&lf->chg_cond);
    pthread_mutex_unlock(&lf->chg_lock);
    return rc;
}

/* Moves everything queued to the writer's side (queue lock held). */
static void take_batch(struct evlog_file *lf)
{
    struct evlog_queue *q = &lf->q;
    for (size_t i = 0; i < q->ntouched; i++) {
        struct evlog_qpart *qp = &q->parts[q->touched[i]];
        struct evlog_part *part = &lf->parts[q->touched[i]];
        struct core_buf tmp = part->wframes;
        part->wframes = qp->frames;
        qp->frames = tmp;
        part->wend = qp->next_offset;
        qp->touched = false;
    }
    int32_t *t = lf->wtouched;
    lf->wtouched = q->touched;
    lf->nwtouched = q->ntouched;
    q->touched = t;
    q->ntouched = 0;
    struct evlog_completion *c = lf->wc;
    size_t cap = lf->cap_wc;
    lf->wc = q->c;
    lf->cap_wc = q->cap_c;
    lf->nwc = q->nc;
    q->c = c;
    q->cap_c = cap;
    q->nc = 0;
    lf->wbytes = q->bytes;
}

static void fail_locked(struct evlog_file *lf, int rc)
{
    if (!lf->q.failed)
        LOG_ERROR("evlog: log failed; appends are refused until restart", "dir=%s err=\"%s\"",
                  lf->dir, core_strerror(rc));
    lf->q.failed = true;
    pthread_cond_broadcast(&lf->q.flushed);
}

void evlog__file_fail(struct evlog_file *lf, int rc)
{
    pthread_mutex_lock(&lf->q.lock);
    fail_locked(lf, rc);
    pthread_mutex_unlock(&lf->q.lock);
}

/*
 * One pass by the thread holding q->writing: takes everything queued, writes it, runs the
 * completions and publishes the records. Called and returns with the queue lock held, which
 * it drops while writing. The writer thread also answers flush requests (answer_flush): it
 * then fsyncs everything written so far, by any thread.
 */
static void write_pass(struct evlog_file *lf, bool answer_flush)
{
    struct evlog_queue *q = &lf->q;
    take_batch(lf);
    uint64_t gen = q->flush_req;
    bool sync_now = answer_flush && (gen != q->flush_done || q->stopping);
    bool failed = q->failed;
    pthread_mutex_unlock(&q->lock);
    int rc = failed ? CORE_E_FAILED : run_batch(lf, sync_now);
    /* Written bytes no longer count against the queue bound, even while slow completions
     * run; and a failure is known before its completions tell anyone. */
    pthread_mutex_lock(&q->lock);
    q->bytes -= lf->wbytes;
    if (rc < 0)
        fail_locked(lf, rc);
    pthread_mutex_unlock(&q->lock);
    finish_batch(lf, rc);
    pthread_mutex_lock(&q->lock);
    if (answer_flush) {
        q->flush_done = gen;
        pthread_cond_broadcast(&q->flushed);
    }
}

static bool writer_has_work(const struct evlog_queue *q)
{
    return q->nc > 0 || q->flush_req != q->flush_done;
}

/*
 * An appending thread that found nobody writing (q->writing now set for it; queue lock
 * held): writes the queue itself in one pass, then hands what queued meanwhile to the writer
 * thread. (A second or fourth pass by the leader measured no better: p50 under contention
 * rose, since the leader's own caller waits for its extra passes.)
 */
static void lead_writes(struct evlog_file *lf)
{
    struct evlog_queue *q = &lf->q;
    write_pass(lf, false);
    COUNT(lf, n_leads, 1);
    q->writing = false;
    if (writer_has_work(q) || q->stopping)
        pthread_cond_signal(&q->work);
}

static void *writer_main(void *arg)
{
    struct evlog_file *lf = arg;
    pthread_setname_np(pthread_self(), "log-writer");
    struct evlog_queue *q = &lf->q;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        if (q->writing || !writer_has_work(q)) {
            if (q->stopping && !q->writing && !writer_has_work(q))
                break;
            /* Woken by appends (ALWAYS), flush requests, stop, or a leader handing over. */
            q->writer_idle = true;
            pthread_cond_wait(&q->work, &q->lock);
            q->writer_idle = false;
            continue;
        }
        q->writing = true;
        write_pass(lf, true);
        q->writing = false;
    }
    bool failed = q->failed;
    pthread_mutex_unlock(&q->lock);
    if (!failed && evlog__sync_dirty(lf, true) < 0)
        LOG_ERROR("evlog: final fsync failed", "dir=%s", lf->dir);
    return NULL;
}

/* ==== append and flush =================================================================== */

/* Checks the records and returns the bytes their frames take, or a negative error. */
static int64_t validate_records(const struct evlog_file *lf, const struct evlog_record *recs,
                                size_t n)
{
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const struct evlog_record *rec = &recs[i];
        if (rec->partition < 0 || rec->partition >= lf->base.partitions ||
            (rec->key_len && !rec->key) || (rec->value_len && !rec->value))
            return CORE_E_INVALID;
        if (rec->key_len > EVLOG_MAX_KEY || rec->value_len > EVLOG_MAX_VALUE)
            return CORE_E_TOOBIG;
        total += (int64_t)evlog__sealed_size(rec->key_len, rec->value_len);
    }
    return total;
}

/* Assigns offsets and encodes the records into the queue (queue lock held). */
static void enqueue_records(struct evlog_file *lf, struct evlog_record *recs, size_t n)
{
    struct evlog_queue *q = &lf->q;
    for (size_t i = 0; i < n; i++) {
        struct evlog_record *rec = &recs[i];
        struct evlog_qpart *qp = &q->parts[rec->partition];
        size_t sz = evlog__sealed_size(rec->key_len, rec->value_len);
        rec->offset = qp->next_offset++;
        core_buf_reserve(&qp->frames, sz);
        evlog__frame_seal((uint8_t *)qp->frames.data + qp->frames.len, rec, rec->partition,
                          rec->seal ? rec->seal : userkeys_data_key(lf->opt.keys), &q->nonces);
        qp->frames.len += sz;
        qp->frames.data[qp->frames.len] = '\0';
        if (!qp->touched) {
            qp->touched = true;
            q->touched[q->ntouched++] = rec->partition;
        }
    }
}

static int file_append(struct evlog *log, struct evlog_record *recs, size_t n, evlog_done_fn done,
                       void *arg)
{
    struct evlog_file *lf = file_of(log);
    struct evlog_queue *q = &lf->q;
    if ((n && !recs) || !done)
        return CORE_E_INVALID;
    int64_t total = validate_records(lf, recs, n);
    if (total < 0)
        return (int)total;
    if (total == 0)
        total = EVLOG_FRAME_HDR; /* empty appends still hold a queue slot: keep them bounded */
    int rc = 0;
    pthread_mutex_lock(&q->lock);
    if (!lf->has_writer || q->failed || q->stopping) {
        rc = CORE_E_FAILED;
        goto out;
    }
    if (total > lf->opt.queue_bytes - q->bytes) {
        rc = CORE_E_FULL;
        goto out;
    }
    enqueue_records(lf, recs, n);
    if (q->nc == q->cap_c) {
        q->cap_c = q->cap_c ? q->cap_c * 2 : 64;
        q->c = core_xrealloc(q->c, q->cap_c * sizeof *q->c);
    }
    q->c[q->nc++] = (struct evlog_completion){done, arg};
    q->bytes += total;
    COUNT(lf, n_appends, 1);
    COUNT(lf, n_records, n);
    if (q->writing)
        goto out; /* the thread writing takes these in its next pass or hands them over */
    if (lf->opt.fsync != EVLOG_FSYNC_ALWAYS) {
        q->writing = true;
        lead_writes(lf);
    } else if (q->writer_idle) {
        pthread_cond_signal(&q->work);
    }
out:
    pthread_mutex_unlock(&q->lock);
    return rc;
}

static int file_flush(struct evlog *log)
{
    struct evlog_file *lf = file_of(log);
    struct evlog_queue *q = &lf->q;
    if (!lf->has_writer)
        return 0;
    pthread_mutex_lock(&q->lock);
    uint64_t gen = ++q->flush_req;
    pthread_cond_signal(&q->work);
    while (q->flush_done < gen && !q->failed)
        pthread_cond_wait(&q->flushed, &q->lock);
    int rc = q->failed ? CORE_E_FAILED : 0;
    pthread_mutex_unlock(&q->lock);
    return rc;
}

/* ==== retention =========================================================================== */

int evlog_file_roll_aged(struct evlog *log, int *rolled)
{
    struct evlog_file *lf = file_of(log);
    struct evlog_queue *q = &lf->q;
    if (!lf->has_writer)
        return CORE_E_INVALID;
    /* Become the one writing thread. Every write pass rolls aged segments itself
     * (run_batch), so when the log is busy enough that writing is never free for a second,
     * there is nothing to do here: give up (0 rolled). */
    pthread_mutex_lock(&q->lock);
    for (int tries = 0; q->writing && !q->stopping && !q->failed; tries++) {
        pthread_mutex_unlock(&q->lock);
        if (tries == 1000) {
            if (rolled)
                *rolled = 0;
            return 0;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&q->lock);
    }
    if (q->stopping || q->failed) {
        pthread_mutex_unlock(&q->lock);
        return q->failed ? CORE_E_FAILED : CORE_E_CLOSED;
    }
    q->writing = true;
    pthread_mutex_unlock(&q->lock);
    int n = 0;
    int rc = roll_aged_all(lf, &n);
    pthread_mutex_lock(&q->lock);
    if (rc < 0)
        fail_locked(lf, rc);
    q->writing = false;
    if (writer_has_work(q) || q->stopping)
        pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->lock);
    if (rolled)
        *rolled = n;
    return rc;
}

int evlog_file_delete_segments(struct evlog *log, int32_t p, int64_t upto, int64_t before_ms,
                               int *deleted, int64_t *deleted_records)
{
    struct evlog_file *lf = file_of(log);
    if (p < 0 || p >= log->partitions)
        return CORE_E_INVALID;
    struct evlog_part *part = &lf->parts[p];
    struct evlog_segment *gone[64];
    size_t n = 0;
    int64_t records = 0;
    /* Unlinked outside the lock; at most 64 per call (the caller's next run takes the rest). */
    pthread_mutex_lock(&part->lock);
    while (n < sizeof gone / sizeof *gone && part->nsegs > 1) {
        struct evlog_segment *seg = part->segs[0];
        if (seg->writable || seg->readers > 0 || seg->info.end > upto ||
            (seg->info.end > seg->info.base && seg->info.max_ingest_ms >= before_ms))
            break;
        memmove(part->segs, part->segs + 1, (part->nsegs - 1) * sizeof *part->segs);
        part->nsegs--;
        if (seg->fd >= 0) {
            close(seg->fd);
            seg->fd = -1;
            part->open_rolled--;
        }
        records += seg->info.end - seg->info.base;
        gone[n++] = seg;
    }
    pthread_mutex_unlock(&part->lock);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && unlink(gone[i]->path) < 0 && errno != ENOENT)
            rc = -errno;
        if (rc == 0 && unlink(gone[i]->idx_path) < 0 && errno != ENOENT)
            rc = -errno;
        if (rc < 0)
            LOG_ERROR("evlog: cannot delete segment", "file=%s err=\"%s\"", gone[i]->path,
                      core_strerror(rc));
        else
            LOG_INFO("retention: deleted log segment", "file=%s records=%" PRId64, gone[i]->path,
                     gone[i]->info.end - gone[i]->info.base);
        evlog__segment_free(gone[i]);
    }
    if (n > 0)
        core_fsync_dir(part->dir);
    if (deleted)
        *deleted = (int)n;
    if (deleted_records)
        *deleted_records = records;
    return rc;
}

/* ==== open and close ===================================================================== */

static void free_log(struct evlog_file *lf)
{
    evlog__sync_dispose(lf); /* first: its threads use the partitions */
    for (int32_t i = 0; lf->parts && i < lf->base.partitions; i++) {
        struct evlog_part *part = &lf->parts[i];
        for (size_t j = 0; j < part->nsegs; j++)
            evlog__segment_free(part->segs[j]);
        free(part->segs);
        free(part->dir);
        core_buf_dispose(&part->wframes);
        pthread_mutex_destroy(&part->lock);
        pthread_cond_destroy(&part->cond);
        if (lf->q.parts)
            core_buf_dispose(&lf->q.parts[i].frames);
    }
    pthread_mutex_destroy(&lf->chg_lock);
    pthread_cond_destroy(&lf->chg_cond);
    pthread_mutex_destroy(&lf->q.lock);
    pthread_cond_destroy(&lf->q.work);
    pthread_cond_destroy(&lf->q.flushed);
    free(lf->q.parts);
    free(lf->q.touched);
    free(lf->q.c);
    free(lf->parts);
    free(lf->wtouched);
    free(lf->wc);
    evlog__index_dispose(&lf->stage);
    free(lf->dir);
    free(lf);
}

/* Loads (or, for a new partition, creates) a partition's segments. */
static int part_load(struct evlog_file *lf, struct evlog_part *part)
{
    bool ro = lf->opt.read_only;
    int64_t *bases = NULL;
    size_t n = 0;
    int rc = ro ? 0 : core_mkdirs(part->dir, 0755);
    if (rc == 0)
        rc = evlog__segment_list(part->dir, &bases, &n);
    if (rc == -ENOENT && ro)
        rc = 0;
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct evlog_segment *seg = evlog__segment_new(part->dir, bases[i]);
        part_push_seg(part, seg);
        rc = i + 1 < n ? evlog__segment_load(seg, ro) : evlog__segment_recover(seg, ro);
        if (rc == 0 && i > 0 && part->segs[i - 1]->info.end != seg->info.base) {
            LOG_ERROR("evlog: segments are not contiguous", "file=%s expected_base=%" PRId64,
                      seg->path, part->segs[i - 1]->info.end);
            rc = ro ? 0 : CORE_E_CORRUPT;
        }
    }
    if (rc == 0 && n == 0 && !ro) {
        struct evlog_segment *seg = evlog__segment_new(part->dir, 0);
        part_push_seg(part, seg);
        rc = evlog__segment_create(seg, part->dir);
        if (rc == 0)
            rc = core_fsync_dir(lf->dir); /* the new partition directory's entry */
    }
    if (rc < 0)
        goto out;
    part->high_water = part->nsegs ? evlog__part_active(part)->info.end : 0;
    lf->q.parts[part->id].next_offset = part->high_water;
out:
    if (rc < 0)
        LOG_ERROR("evlog: cannot open partition", "dir=%s err=\"%s\"", part->dir,
                  core_strerror(rc));
    free(bases);
    return rc;
}

static int check_options(const struct evlog_file_options *opt)
{
    if (!opt->dir || !*opt->dir || !opt->keys || opt->partitions < 0 ||
        opt->partitions > PARTITIONS_MAX || opt->segment_bytes <= 0 ||
        opt->segment_bytes > SEGMENT_BYTES_MAX || opt->segment_ms <= 0 || opt->queue_bytes <= 0 ||
        (opt->fsync == EVLOG_FSYNC_BATCH && opt->fsync_interval_ms <= 0) ||
        (opt->fsync != EVLOG_FSYNC_ALWAYS && opt->fsync != EVLOG_FSYNC_BATCH &&
         opt->fsync != EVLOG_FSYNC_NONE))
        return CORE_E_INVALID;
    return 0;
}

static struct evlog_file *alloc_log(const struct evlog_file_options *opt, int32_t partitions)
{
    struct evlog_file *lf = core_xcalloc(1, sizeof *lf);
    lf->base.ops = &file_ops;
    lf->base.partitions = partitions;
    lf->opt = *opt;
    lf->dir = core_xstrdup(opt->dir);
    lf->opt.dir = lf->dir;
    lf->opt.partitions = partitions;
    pthread_mutex_init(&lf->chg_lock, NULL);
    evlog__cond_init(&lf->chg_cond);
    pthread_mutex_init(&lf->q.lock, NULL);
    evlog__cond_init(&lf->q.work);
    evlog__cond_init(&lf->q.flushed);
    size_t np = (size_t)partitions;
    lf->q.parts = core_xcalloc(np, sizeof *lf->q.parts);
    seal_nonces_init(&lf->q.nonces);
    lf->q.touched = core_xcalloc(np, sizeof *lf->q.touched);
    lf->wtouched = core_xcalloc(np, sizeof *lf->wtouched);
    evlog__index_init(&lf->stage);
    lf->parts = core_xcalloc(np, sizeof *lf->parts);
    for (int32_t i = 0; i < partitions; i++) {
        struct evlog_part *part = &lf->parts[i];
        struct core_buf dir;
        core_buf_init(&dir);
        core_buf_printf(&dir, "%s/%d", lf->dir, (int)i);
        part->id = i;
        part->dir = dir.data;
        pthread_mutex_init(&part->lock, NULL);
        evlog__cond_init(&part->cond);
        core_buf_init(&part->wframes);
        core_buf_init(&lf->q.parts[i].frames);
    }
    evlog__sync_init(lf);
    return lf;
}

int evlog_file_open(const struct evlog_file_options *opt, struct evlog **out)
{
    struct evlog_file *lf = NULL;
    int rc = check_options(opt);
    if (rc < 0) {
        LOG_ERROR("evlog: invalid file log options", "dir=%s", opt->dir ? opt->dir : "");
        goto out;
    }
    if (!opt->read_only) {
        rc = core_mkdirs(opt->dir, 0755);
        if (rc < 0)
            goto out;
    }
    int32_t partitions = opt->partitions;
    rc = evlog__meta_load(opt->dir, &partitions, !opt->read_only);
    if (rc < 0)
        goto out;
    lf = alloc_log(opt, partitions);
    for (int32_t i = 0; i < partitions && rc == 0; i++)
        rc = part_load(lf, &lf->parts[i]);
    if (rc < 0)
        goto out;
    if (!opt->read_only) {
        rc = evlog__sync_start(lf);
        if (rc < 0)
            goto out;
        rc = -pthread_create(&lf->writer, NULL, writer_main, lf);
        if (rc < 0)
            goto out;
        lf->has_writer = true;
    }
    *out = &lf->base;
out:
    if (rc < 0 && lf)
        free_log(lf);
    return rc;
}

static void file_close(struct evlog *log)
{
    struct evlog_file *lf = file_of(log);
    if (lf->has_writer) {
        pthread_mutex_lock(&lf->q.lock);
        lf->q.stopping = true;
        pthread_cond_signal(&lf->q.work);
        pthread_mutex_unlock(&lf->q.lock);
        pthread_join(lf->writer, NULL);
    }
    /* Waiters hold pointers into the partitions: wake them and let them leave first. */
    for (int32_t i = 0; i < log->partitions; i++) {
        struct evlog_part *part = &lf->parts[i];
        pthread_mutex_lock(&part->lock);
        part->closing = true;
        pthread_cond_broadcast(&part->cond);
        while (part->waiters > 0)
            pthread_cond_wait(&part->cond, &part->lock);
        pthread_mutex_unlock(&part->lock);
    }
    pthread_mutex_lock(&lf->chg_lock);
    lf->chg_closing = true;
    pthread_cond_broadcast(&lf->chg_cond);
    while (lf->chg_waiters > 0)
        pthread_cond_wait(&lf->chg_cond, &lf->chg_lock);
    pthread_mutex_unlock(&lf->chg_lock);
    free_log(lf);
}

static const struct evlog_ops file_ops = {
    .name = "file",
    .append = file_append,
    .read = evlog__file_read,
    .wait = evlog__file_wait,
    .changes = file_changes,
    .wait_change = file_wait_change,
    .stats = evlog__file_stats,
    .offset_for_time = evlog__file_offset_for_time,
    .flush = file_flush,
    .close = file_close,
};
