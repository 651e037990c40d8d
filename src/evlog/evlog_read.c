/*
 * Read side of the evlog file backend: reads by offset, waits for new records, per-partition
 * stats and the time index lookup.
 *
 * Readers hold the partition lock only to look up a segment and index entry and to pin the
 * segment's file; the preads and decoding run outside it, so the writer is never held up by
 * a slow reader. Segments are freed only by retention (evlog_file_delete_segments: the oldest
 * ones, never a pinned one nor any after it), and a pinned segment's file stays open
 * (evlog__segment_acquire).
 */
#include "evlog/evlog_file_int.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK (64u * 1024)

/* One read call in progress. */
struct read_ctx {
    struct evlog_part *part;
    struct evlog_batch *b;
    int64_t from;     /* first offset wanted */
    size_t max;       /* records wanted */
    int64_t hw;       /* visible bound when the read started */
    int64_t expected; /* offset of the next record to decode */
    size_t cur;       /* start of undecoded bytes in b->buf */
    struct userkeys *keys;
    _Atomic uint64_t *erased; /* the log's count of erased records read */
};

/* Index of the last segment whose base <= offset (part->nsegs > 0, lock held). */
static size_t find_seg(const struct evlog_part *part, int64_t offset)
{
    size_t lo = 0, hi = part->nsegs;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (part->segs[mid]->info.base <= offset)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static int corrupt(const struct evlog_segment *seg, int64_t pos, const char *why)
{
    LOG_ERROR("evlog: corrupt segment", "file=%s position=%" PRId64 " reason=\"%s\"", seg->path,
              pos, why);
    return CORE_E_CORRUPT;
}

/* Keeps an opened record. Its key is stored as a position in b->buf until fix_pointers,
 * because the buffer may move while more of the file is read into it. */
static void keep_record(struct read_ctx *rc, const struct evlog_record *rec, size_t key_at)
{
    struct evlog_batch *b = rc->b;
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->recs = core_xrealloc(b->recs, b->cap * sizeof *b->recs);
    }
    struct evlog_record *out = &b->recs[b->n++];
    *out = *rec;
    out->partition = rc->part->id;
    out->key = (const void *)(uintptr_t)key_at;
    out->value = NULL;
}

static void fix_pointers(struct evlog_batch *b)
{
    const char *base = b->buf.data ? b->buf.data : ""; /* no buffer: every offset is 0 */
    for (size_t i = 0; i < b->n; i++) {
        struct evlog_record *rec = &b->recs[i];
        rec->key = base + (uintptr_t)rec->key;
        rec->value = (const char *)rec->key + rec->key_len;
    }
}

/* Reads at least need more bytes of seg at *fpos into b->buf. */
static int fill(struct read_ctx *rc, const struct evlog_segment *seg, int64_t *fpos, size_t need)
{
    struct core_buf *buf = &rc->b->buf;
    if (rc->b->n == 0 && rc->cur > 0) {
        /* Nothing kept yet: drop the bytes already skipped. */
        memmove(buf->data, buf->data + rc->cur, buf->len - rc->cur);
        buf->len -= rc->cur;
        rc->cur = 0;
    }
    size_t want = need > READ_CHUNK ? need : READ_CHUNK;
    core_buf_reserve(buf, want);
    size_t got = 0;
    while (got < need) {
        ssize_t r = pread(seg->fd, buf->data + buf->len + got, want - got, *fpos + (int64_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = -errno;
            LOG_ERROR("evlog: read failed", "file=%s err=\"%s\"", seg->path, core_strerror(err));
            return err;
        }
        if (r == 0)
            return corrupt(seg, *fpos + (int64_t)got, "segment ends inside a record");
        got += (size_t)r;
    }
    buf->len += got;
    buf->data[buf->len] = '\0';
    *fpos += (int64_t)got;
    return 0;
}

/* Decodes records of seg from file position pos until limit, the batch is full, or an
 * error. */
static int read_segment(struct read_ctx *rc, const struct evlog_segment *seg, int64_t pos,
                        int64_t limit)
{
    struct core_buf *buf = &rc->b->buf;
    rc->cur = buf->len;
    int64_t fpos = pos; /* file position of buf->data[buf->len] */
    while (rc->expected < limit && rc->b->n < rc->max) {
        size_t avail = buf->len - rc->cur, flen = 0;
        struct evlog_record rec;
        int r = avail
                    ? evlog__frame_decode((const uint8_t *)buf->data + rc->cur, avail, &rec, &flen)
                    : EVLOG__FRAME_SHORT;
        if (r == EVLOG__FRAME_SHORT) {
            size_t need = avail >= EVLOG_FRAME_HDR ? flen - avail : EVLOG_FRAME_HDR - avail;
            r = fill(rc, seg, &fpos, need);
            if (r < 0)
                return r;
            continue;
        }
        int64_t at = fpos - (int64_t)avail;
        if (r < 0)
            return corrupt(seg, at,
                           evlog__frame_error((const uint8_t *)buf->data + rc->cur, avail));
        if (rec.offset != rc->expected)
            return corrupt(seg, at, "offset out of sequence");
        if (rec.offset >= rc->from) {
            const char *why = NULL;
            uint8_t *frame = (uint8_t *)buf->data + rc->cur;
            r = evlog__frame_open(frame, flen, rc->part->id, rc->keys, &rec, &why);
            if (r < 0)
                return corrupt(seg, at, why);
            if (r == EVLOG__FRAME_ERASED)
                atomic_fetch_add_explicit(rc->erased, 1, memory_order_relaxed);
            keep_record(rc, &rec, r ? rc->cur : (size_t)((const char *)rec.key - buf->data));
        }
        rc->cur += flen;
        rc->expected++;
    }
    return 0;
}

/*
 * Finds where to start reading (lock held): the segment holding from, pinned, and the file
 * position of the index entry at or before it. Returns the segment's list index.
 */
static int seek_locked(struct read_ctx *rc, size_t *si, int64_t *pos)
{
    struct evlog_part *part = rc->part;
    *si = find_seg(part, rc->from);
    struct evlog_segment *seg = part->segs[*si];
    *pos = 0;
    rc->expected = seg->info.base;
    if (seg->idx.n > 0) {
        size_t e = evlog__index_find_offset(&seg->idx, seg->info.base, rc->from);
        *pos = seg->idx.e[e].pos;
        rc->expected = seg->info.base + seg->idx.e[e].rel;
    }
    return evlog__segment_acquire(part, seg);
}

/* Reads segment after segment from the start found by seek_locked. */
static int read_from(struct read_ctx *rc, struct evlog_segment *seg, int64_t pos)
{
    struct evlog_part *part = rc->part;
    int r = 0;
    for (;;) {
        pthread_mutex_lock(&part->lock);
        int64_t limit = seg->info.end < rc->hw ? seg->info.end : rc->hw;
        pthread_mutex_unlock(&part->lock);
        r = read_segment(rc, seg, pos, limit);
        pthread_mutex_lock(&part->lock);
        evlog__segment_release(part, seg);
        /* Retention may have removed older segments meanwhile (never a pinned one or any
         * after it), so the pinned segment's list index is looked up again, not kept. */
        size_t si = find_seg(part, seg->info.base);
        bool next = r == 0 && rc->expected < rc->hw && rc->b->n < rc->max && ++si < part->nsegs;
        if (next) {
            seg = part->segs[si];
            if (seg->info.base != rc->expected)
                r = corrupt(seg, 0, "segment does not continue the previous one");
            else
                r = evlog__segment_acquire(part, seg);
        }
        pthread_mutex_unlock(&part->lock);
        if (!next || r < 0)
            return r;
        pos = 0;
    }
}

int evlog__file_read(struct evlog *log, int32_t p, int64_t from, size_t max, struct evlog_batch *b)
{
    struct evlog_file *lf = (struct evlog_file *)log;
    if (p < 0 || p >= log->partitions)
        return CORE_E_INVALID;
    b->n = 0;
    core_buf_reset(&b->buf);
    if (max > INT_MAX)
        max = INT_MAX; /* the count is returned as an int */
    struct read_ctx rc = {.part = &lf->parts[p],
                          .b = b,
                          .from = from,
                          .max = max,
                          .keys = lf->opt.keys,
                          .erased = &lf->n_erased};
    size_t si;
    int64_t pos;
    pthread_mutex_lock(&rc.part->lock);
    rc.hw = rc.part->high_water;
    if (rc.part->nsegs > 0 && rc.from < rc.part->segs[0]->info.base)
        rc.from = rc.part->segs[0]->info.base;
    if (rc.part->nsegs == 0 || rc.from >= rc.hw || max == 0) {
        pthread_mutex_unlock(&rc.part->lock);
        return 0;
    }
    int r = seek_locked(&rc, &si, &pos);
    struct evlog_segment *seg = rc.part->segs[si];
    pthread_mutex_unlock(&rc.part->lock);
    if (r == 0)
        r = read_from(&rc, seg, pos);
    if (r < 0) {
        b->n = 0;
        core_buf_reset(&b->buf);
        return r;
    }
    fix_pointers(b);
    return (int)b->n;
}

/* ==== wait, stats, time lookup ============================================================ */

int evlog__file_wait(struct evlog *log, int32_t p, int64_t offset, int timeout_ms)
{
    struct evlog_file *lf = (struct evlog_file *)log;
    if (p < 0 || p >= log->partitions)
        return CORE_E_INVALID;
    struct evlog_part *part = &lf->parts[p];
    int64_t deadline = core_mono_ns() + (int64_t)timeout_ms * 1000000;
    bool timed_out = false;
    pthread_mutex_lock(&part->lock);
    part->waiters++;
    while (part->high_water <= offset && !part->closing && !timed_out) {
        if (timeout_ms < 0)
            pthread_cond_wait(&part->cond, &part->lock);
        else
            timed_out = evlog__cond_wait_until(&part->cond, &part->lock, deadline) == ETIMEDOUT;
    }
    int rc = part->high_water > offset ? 0 : part->closing ? CORE_E_CLOSED : CORE_E_TIMEOUT;
    part->waiters--;
    if (part->closing)
        pthread_cond_broadcast(&part->cond); /* close waits for the last waiter to leave */
    pthread_mutex_unlock(&part->lock);
    return rc;
}

int evlog__file_stats(struct evlog *log, int32_t p, struct evlog_partition_stats *out)
{
    struct evlog_file *lf = (struct evlog_file *)log;
    if (p < 0 || p >= log->partitions)
        return CORE_E_INVALID;
    struct evlog_part *part = &lf->parts[p];
    struct evlog_partition_stats st = {0};
    bool any = false;
    pthread_mutex_lock(&part->lock);
    st.high_water = part->high_water;
    st.low_water = part->nsegs ? part->segs[0]->info.base : part->high_water;
    st.segments = (int32_t)part->nsegs;
    for (size_t i = 0; i < part->nsegs; i++) {
        const struct evlog_segment *seg = part->segs[i];
        st.bytes += seg->info.size;
        if (i + 1 < part->nsegs) /* rolled: has an index file */
            st.bytes += 72 + 16 * (int64_t)seg->idx.n;
        if (seg->info.end == seg->info.base)
            continue;
        if (!any)
            st.first_ingest_ms = seg->info.first_ingest_ms;
        st.last_ingest_ms = seg->info.last_ingest_ms;
        any = true;
    }
    pthread_mutex_unlock(&part->lock);
    *out = st;
    return 0;
}

/* Offset to start scanning from for ts_ms (lock held): every earlier record is older. */
static int64_t time_start_locked(const struct evlog_part *part, int64_t ts_ms)
{
    for (size_t i = 0; i < part->nsegs; i++) {
        const struct evlog_segment *seg = part->segs[i];
        if (seg->info.end == seg->info.base || seg->info.max_ingest_ms < ts_ms)
            continue;
        size_t e = evlog__index_find_time(&seg->idx, ts_ms);
        return seg->info.base + seg->idx.e[e].rel;
    }
    return part->high_water;
}

int evlog__file_offset_for_time(struct evlog *log, int32_t p, int64_t ts_ms, int64_t *offset)
{
    struct evlog_file *lf = (struct evlog_file *)log;
    if (p < 0 || p >= log->partitions)
        return CORE_E_INVALID;
    struct evlog_part *part = &lf->parts[p];
    pthread_mutex_lock(&part->lock);
    int64_t at = time_start_locked(part, ts_ms);
    pthread_mutex_unlock(&part->lock);
    struct evlog_batch b;
    evlog_batch_init(&b);
    int rc = 0;
    for (;;) {
        rc = evlog__file_read(log, p, at, 4096, &b);
        if (rc <= 0)
            break;
        size_t i = 0;
        while (i < b.n && b.recs[i].ingest_time_ms < ts_ms)
            i++;
        if (i < b.n) {
            at = b.recs[i].offset;
            break;
        }
        at = b.recs[b.n - 1].offset + 1;
    }
    evlog_batch_dispose(&b);
    if (rc < 0)
        return rc;
    *offset = at;
    return 0;
}
