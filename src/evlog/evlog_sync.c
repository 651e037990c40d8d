/*
 * fsync side of the evlog file backend: which partitions' active segments need an fsync,
 * the syncer thread of the BATCH policy, and the helper threads that let an ALWAYS drain
 * fsync several partitions at once.
 *
 * A partition is dirty from a write until the next fsync of its active segment begins.
 * Whoever fsyncs (the syncer; the writing thread at a roll, a flush, close or an ALWAYS
 * drain) takes partitions off the dirty list, counts itself in part->syncing until its
 * fdatasync returns, and pins the segment like a reader does, so the file stays open even if
 * a roll retires the segment meanwhile. Writes continue during the syncer's fdatasync (a
 * pwrite may run concurrently with an fdatasync of the same file).
 *
 * Nobody waits for anyone else's fsync: a roll fsyncs the old segment itself when the
 * partition is dirty or another fsync of it may still be running (that one may have begun
 * before the last write), and a forced pass (flush, close) covers the partitions the syncer
 * is still busy with the same way.
 */
#include "evlog/evlog_file_int.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define COUNT(lf, field, n) atomic_fetch_add_explicit(&(lf)->field, (n), memory_order_relaxed)

static int fsync_seg(struct evlog_file *lf, struct evlog_segment *seg)
{
    COUNT(lf, n_fsyncs, 1);
    if (fdatasync(seg->fd) < 0) {
        int rc = -errno;
        LOG_ERROR("evlog: fsync failed", "file=%s err=\"%s\"", seg->path, core_strerror(rc));
        return rc;
    }
    return 0;
}

/* ==== helper pool ========================================================================= */

/* Runs the round's jobs until none is left (pool lock held). */
static void pool_work(struct evlog_file *lf, struct evlog_sync_pool *pool)
{
    while (pool->next < pool->njobs) {
        struct evlog_segment *seg = pool->jobs[pool->next++];
        pthread_mutex_unlock(&pool->lock);
        int rc = fsync_seg(lf, seg);
        pthread_mutex_lock(&pool->lock);
        if (rc < 0 && pool->rc == 0)
            pool->rc = rc;
        if (++pool->finished == pool->njobs)
            pthread_cond_signal(&pool->idle);
    }
}

static void *helper_main(void *arg)
{
    struct evlog_file *lf = arg;
    pthread_setname_np(pthread_self(), "log-fsync");
    struct evlog_sync_pool *pool = &lf->sync.pool;
    pthread_mutex_lock(&pool->lock);
    while (!pool->stop) {
        if (pool->next < pool->njobs)
            pool_work(lf, pool);
        else
            pthread_cond_wait(&pool->work, &pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* fsyncs n segments: concurrently when there are helpers, the caller taking a share. */
static int fsync_segs(struct evlog_file *lf, struct evlog_segment **segs, size_t n)
{
    struct evlog_sync_pool *pool = &lf->sync.pool;
    int rc = 0;
    if (n < 2 || pool->nth == 0) {
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = fsync_seg(lf, segs[i]);
        return rc;
    }
    pthread_mutex_lock(&pool->lock);
    pool->jobs = segs;
    pool->njobs = n;
    pool->next = 0;
    pool->finished = 0;
    pool->rc = 0;
    pthread_cond_broadcast(&pool->work);
    pool_work(lf, pool);
    while (pool->finished < pool->njobs)
        pthread_cond_wait(&pool->idle, &pool->lock);
    rc = pool->rc;
    pool->jobs = NULL;
    pool->njobs = pool->next = pool->finished = 0;
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

/* ==== sync passes ========================================================================= */

/* Moves the partitions to fsync into ids and counts the caller in their syncing (sync lock
 * held): the dirty ones, and with all also those whose fsync by another thread is running. */
static size_t take_dirty(struct evlog_file *lf, bool all, int32_t *ids)
{
    struct evlog_sync *s = &lf->sync;
    size_t n = 0;
    if (all) {
        for (int32_t p = 0; p < lf->base.partitions; p++)
            if (lf->parts[p].dirty || lf->parts[p].syncing > 0)
                ids[n++] = p;
    } else {
        for (size_t i = 0; i < s->ndirty; i++)
            ids[n++] = s->dirty[i];
    }
    s->ndirty = 0;
    for (size_t i = 0; i < n; i++) {
        lf->parts[ids[i]].dirty = false;
        lf->parts[ids[i]].syncing++;
    }
    return n;
}

/* One sync pass over the partitions take_dirty picks, using the caller's scratch. */
static int sync_pass(struct evlog_file *lf, bool all, struct evlog_sync_scratch *sc)
{
    struct evlog_sync *s = &lf->sync;
    pthread_mutex_lock(&s->lock);
    size_t n = take_dirty(lf, all, sc->ids);
    pthread_mutex_unlock(&s->lock);
    if (n == 0)
        return 0;
    int rc = 0;
    size_t pinned = 0;
    for (; pinned < n && rc == 0; pinned++) {
        struct evlog_part *part = &lf->parts[sc->ids[pinned]];
        pthread_mutex_lock(&part->lock);
        sc->segs[pinned] = evlog__part_active(part);
        rc = evlog__segment_acquire(part, sc->segs[pinned]); /* open: cannot fail */
        pthread_mutex_unlock(&part->lock);
    }
    if (rc == 0)
        rc = fsync_segs(lf, sc->segs, n);
    else
        pinned--; /* the failed one holds no pin */
    for (size_t i = 0; i < pinned; i++) {
        struct evlog_part *part = &lf->parts[sc->ids[i]];
        pthread_mutex_lock(&part->lock);
        evlog__segment_release(part, sc->segs[i]);
        pthread_mutex_unlock(&part->lock);
    }
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < n; i++)
        lf->parts[sc->ids[i]].syncing--;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int evlog__sync_dirty(struct evlog_file *lf, bool all)
{
    return sync_pass(lf, all, &lf->sync.wscratch);
}

void evlog__sync_mark_dirty(struct evlog_file *lf, struct evlog_part *part)
{
    struct evlog_sync *s = &lf->sync;
    pthread_mutex_lock(&s->lock);
    if (!part->dirty) {
        part->dirty = true;
        s->dirty[s->ndirty++] = part->id;
        if (s->ndirty == 1 && s->has_syncer)
            pthread_cond_signal(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
}

int evlog__sync_before_roll(struct evlog_file *lf, struct evlog_part *part)
{
    struct evlog_sync *s = &lf->sync;
    pthread_mutex_lock(&s->lock);
    bool need = part->dirty || part->syncing > 0;
    if (part->dirty) {
        for (size_t i = 0; i < s->ndirty; i++) {
            if (s->dirty[i] == part->id) {
                s->dirty[i] = s->dirty[--s->ndirty];
                break;
            }
        }
        part->dirty = false;
    }
    pthread_mutex_unlock(&s->lock);
    /* Only the thread holding q.writing rolls, so the active segment's file stays open. */
    return need ? fsync_seg(lf, evlog__part_active(part)) : 0;
}

/* ==== the BATCH syncer ===================================================================== */

/*
 * Sleeps until a partition is dirty, then until fsync_interval_ms after its previous pass
 * began, and fsyncs what is dirty then. A write after a quiet spell is therefore synced
 * promptly, and under steady writes there is one pass per interval.
 */
static void *syncer_main(void *arg)
{
    struct evlog_file *lf = arg;
    pthread_setname_np(pthread_self(), "log-sync");
    struct evlog_sync *s = &lf->sync;
    int64_t interval_ns = (int64_t)lf->opt.fsync_interval_ms * 1000000;
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        if (s->ndirty == 0) {
            pthread_cond_wait(&s->cond, &s->lock);
            continue;
        }
        int64_t due = s->last_ns + interval_ns;
        if (core_mono_ns() < due) {
            evlog__cond_wait_until(&s->cond, &s->lock, due);
            continue;
        }
        s->last_ns = core_mono_ns();
        pthread_mutex_unlock(&s->lock);
        int rc = sync_pass(lf, false, &s->sscratch);
        if (rc < 0)
            evlog__file_fail(lf, rc);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ==== lifecycle ============================================================================ */

static void scratch_init(struct evlog_sync_scratch *sc, size_t np)
{
    sc->ids = core_xcalloc(np, sizeof *sc->ids);
    sc->segs = core_xcalloc(np, sizeof *sc->segs);
}

void evlog__sync_init(struct evlog_file *lf)
{
    struct evlog_sync *s = &lf->sync;
    size_t np = (size_t)lf->base.partitions;
    pthread_mutex_init(&s->lock, NULL);
    evlog__cond_init(&s->cond);
    s->dirty = core_xcalloc(np ? np : 1, sizeof *s->dirty);
    s->last_ns = core_mono_ns();
    scratch_init(&s->wscratch, np ? np : 1);
    scratch_init(&s->sscratch, np ? np : 1);
    pthread_mutex_init(&s->pool.lock, NULL);
    pthread_cond_init(&s->pool.work, NULL);
    pthread_cond_init(&s->pool.idle, NULL);
}

int evlog__sync_start(struct evlog_file *lf)
{
    struct evlog_sync *s = &lf->sync;
    if (lf->opt.fsync == EVLOG_FSYNC_BATCH) {
        int rc = -pthread_create(&s->syncer, NULL, syncer_main, lf);
        if (rc < 0)
            return rc;
        s->has_syncer = true;
    }
    /* Helpers for the partitions beyond the one the drain's own thread fsyncs. */
    int want =
        lf->base.partitions - 1 < EVLOG_SYNC_HELPERS ? lf->base.partitions - 1 : EVLOG_SYNC_HELPERS;
    if (lf->opt.fsync != EVLOG_FSYNC_ALWAYS)
        want = 0;
    while (s->pool.nth < want) {
        int rc = -pthread_create(&s->pool.th[s->pool.nth], NULL, helper_main, lf);
        if (rc < 0)
            return rc;
        s->pool.nth++;
    }
    return 0;
}

void evlog__sync_dispose(struct evlog_file *lf)
{
    struct evlog_sync *s = &lf->sync;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (s->has_syncer)
        pthread_join(s->syncer, NULL);
    pthread_mutex_lock(&s->pool.lock);
    s->pool.stop = true;
    pthread_cond_broadcast(&s->pool.work);
    pthread_mutex_unlock(&s->pool.lock);
    for (int i = 0; i < s->pool.nth; i++)
        pthread_join(s->pool.th[i], NULL);
    pthread_mutex_destroy(&s->pool.lock);
    pthread_cond_destroy(&s->pool.work);
    pthread_cond_destroy(&s->pool.idle);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s->dirty);
    free(s->wscratch.ids);
    free(s->wscratch.segs);
    free(s->sscratch.ids);
    free(s->sscratch.segs);
}
