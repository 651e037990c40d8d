/* Helpers shared by the evlog unit tests: temp dirs, synchronous appends, reading back. */
#ifndef RECSTREAM_EVLOG_TESTUTIL_H
#define RECSTREAM_EVLOG_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evlog/evlog_file_int.h"

static inline char *tu_mkdtemp(void)
{
    char *dir = core_xstrdup("/tmp/evlog-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static inline int tu_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void tu_rmtree(char *dir)
{
    nftw(dir, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

static inline char *tu_path(const char *dir, const char *fmt, ...)
{
    struct core_buf b;
    core_buf_init(&b);
    core_buf_puts(&b, dir);
    core_buf_putc(&b, '/');
    char tail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tail, sizeof tail, fmt, ap);
    va_end(ap);
    core_buf_puts(&b, tail);
    return b.data;
}

/* The keys every test log is sealed with: an in-memory user key store under a fixed data key
 * (process-wide, so a log reopened by a test opens with the same keys). */
static inline struct userkeys *tu_keys(void)
{
    static struct userkeys *uk;
    static struct seal_key dk;
    if (!uk) {
        memset(&dk, 0, sizeof dk);
        memset(dk.key, 0x5a, sizeof dk.key);
        struct userkeys_options o;
        userkeys_options_init(&o);
        o.data_key = &dk;
        assert_int_equal(userkeys_open(&o, &uk), 0);
    }
    return uk;
}

static inline void tu_options(struct evlog_file_options *opt, const char *dir, int32_t parts)
{
    evlog_file_options_init(opt);
    opt->keys = tu_keys();
    opt->dir = dir;
    opt->partitions = parts;
}

/* Completion that a test thread can wait for. */
struct tu_done {
    pthread_mutex_t m;
    pthread_cond_t c;
    int pending;
    int status;
};

static inline void tu_done_init(struct tu_done *d)
{
    pthread_mutex_init(&d->m, NULL);
    pthread_cond_init(&d->c, NULL);
    d->pending = 0;
    d->status = 0;
}

static inline void tu_done_dispose(struct tu_done *d)
{
    pthread_mutex_destroy(&d->m);
    pthread_cond_destroy(&d->c);
}

static inline void tu_done_cb(void *arg, int status)
{
    struct tu_done *d = arg;
    pthread_mutex_lock(&d->m);
    d->pending--;
    if (status < 0)
        d->status = status;
    pthread_cond_broadcast(&d->c);
    pthread_mutex_unlock(&d->m);
}

/* Waits until at most `left` appends are still pending. */
static inline void tu_done_wait(struct tu_done *d, int left)
{
    pthread_mutex_lock(&d->m);
    while (d->pending > left)
        pthread_cond_wait(&d->c, &d->m);
    pthread_mutex_unlock(&d->m);
}

/* Appends, waits for the completion and then for the records to be visible to readers
 * (which the backend allows to trail the completion briefly). Returns append's result or
 * the completion status. */
static inline int tu_append_sync(struct evlog *log, struct evlog_record *recs, size_t n)
{
    struct tu_done d;
    tu_done_init(&d);
    d.pending = 1;
    int rc = evlog_append(log, recs, n, tu_done_cb, &d);
    if (rc == 0) {
        tu_done_wait(&d, 0);
        rc = d.status;
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = evlog_wait(log, recs[i].partition, recs[i].offset, 10000);
    tu_done_dispose(&d);
    return rc;
}

/* A record for partition p whose key and value encode i (in the caller's buffers). */
static inline void tu_record(struct evlog_record *rec, int32_t p, int i, char *key, char *val,
                             int64_t ingest)
{
    snprintf(key, 32, "user-%d", i);
    snprintf(val, 64, "value-%d-%s", i, (i % 3) ? "x" : "a-longer-value-for-variety");
    memset(rec, 0, sizeof *rec);
    rec->partition = p;
    rec->key = key;
    rec->key_len = (uint32_t)strlen(key);
    rec->value = val;
    rec->value_len = (uint32_t)strlen(val);
    rec->event_time_ms = ingest - 5;
    rec->ingest_time_ms = ingest;
}

/* Appends count records numbered first.. to partition p, one append of up to 64 each. */
static inline void tu_fill(struct evlog *log, int32_t p, int first, int count, int64_t t0)
{
    char keys[64][32], vals[64][64];
    struct evlog_record recs[64];
    for (int done = 0; done < count;) {
        int n = count - done < 64 ? count - done : 64;
        for (int j = 0; j < n; j++)
            tu_record(&recs[j], p, first + done + j, keys[j], vals[j], t0 + first + done + j);
        assert_int_equal(tu_append_sync(log, recs, (size_t)n), 0);
        done += n;
    }
}

/* Checks that a read record is the one tu_fill wrote as number i at offset i. */
static inline void tu_check_record(const struct evlog_record *rec, int32_t p, int i, int64_t t0)
{
    char key[32], val[64];
    struct evlog_record want;
    tu_record(&want, p, i, key, val, t0 + i);
    assert_int_equal(rec->partition, p);
    assert_int_equal(rec->offset, i);
    assert_int_equal(rec->ingest_time_ms, want.ingest_time_ms);
    assert_int_equal(rec->event_time_ms, want.event_time_ms);
    assert_int_equal(rec->key_len, want.key_len);
    assert_memory_equal(rec->key, want.key, want.key_len);
    assert_int_equal(rec->value_len, want.value_len);
    assert_memory_equal(rec->value, want.value, want.value_len);
}

/* Reads partition p from `from` in chunks of `chunk` and checks records first..first+count. */
static inline void tu_check_all(struct evlog *log, int32_t p, int from, int count, size_t chunk,
                                int64_t t0)
{
    struct evlog_batch b;
    evlog_batch_init(&b);
    int next = from;
    while (next < count) {
        int n = evlog_read(log, p, next, chunk, &b);
        assert_true(n > 0);
        assert_true((size_t)n <= chunk);
        for (int j = 0; j < n; j++)
            tu_check_record(&b.recs[j], p, next + j, t0);
        next += n;
    }
    assert_int_equal(evlog_read(log, p, next, chunk, &b), 0);
    evlog_batch_dispose(&b);
}

static inline int64_t tu_file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* ---- concurrent producers ------------------------------------------------------------------
 * Threads that append numbered calls of 1 or TU_CALL_MAX records (~150-byte values) across
 * partitions with a bounded number in flight, and a check that every call completed exactly
 * once and every record landed, readable, at the gap-free offset append gave it. */

#define TU_CALL_MAX 4
#define TU_VALUE_LEN 150

struct tu_producer;

struct tu_call {
    struct tu_producer *pr;
    int nrecs;
    struct evlog_record recs[TU_CALL_MAX]; /* valid until done: the log writes offsets */
    atomic_int done_calls;
    atomic_int status;
};

struct tu_producer {
    struct evlog *log;
    int id;
    int ncalls;
    int window;
    int32_t partitions;
    struct tu_call *calls;
    struct tu_done win; /* calls in flight */
    int append_rc;      /* first refused append */
};

static inline void tu_call_key(char *key, int t, int i, int j)
{
    snprintf(key, 32, "t%d-c%d-r%d", t, i, j);
}

static inline void tu_call_value(char *val, const char *key, int i, int j)
{
    memset(val, 'a' + (i + j) % 26, TU_VALUE_LEN);
    memcpy(val, key, strlen(key));
}

static inline void tu_call_cb(void *arg, int status)
{
    struct tu_call *call = arg;
    atomic_store(&call->status, status);
    atomic_fetch_add(&call->done_calls, 1);
    tu_done_cb(&call->pr->win, status);
}

static inline void *tu_producer_main(void *arg)
{
    struct tu_producer *pr = arg;
    char key[TU_CALL_MAX][32], val[TU_CALL_MAX][TU_VALUE_LEN];
    for (int i = 0; i < pr->ncalls; i++) {
        struct tu_call *call = &pr->calls[i];
        call->pr = pr;
        call->nrecs = i % 3 == 0 ? TU_CALL_MAX : 1;
        for (int j = 0; j < call->nrecs; j++) {
            struct evlog_record *rec = &call->recs[j];
            tu_call_key(key[j], pr->id, i, j);
            tu_call_value(val[j], key[j], i, j);
            memset(rec, 0, sizeof *rec);
            rec->partition = (pr->id + i + j) % pr->partitions;
            rec->key = key[j];
            rec->key_len = (uint32_t)strlen(key[j]);
            rec->value = val[j];
            rec->value_len = TU_VALUE_LEN;
            rec->ingest_time_ms = rec->event_time_ms = 1700000000000LL + i;
        }
        tu_done_wait(&pr->win, pr->window - 1);
        pthread_mutex_lock(&pr->win.m);
        pr->win.pending++;
        pthread_mutex_unlock(&pr->win.m);
        /* The key and value buffers are reused at once: append copies them. */
        int rc = evlog_append(pr->log, call->recs, (size_t)call->nrecs, tu_call_cb, call);
        if (rc < 0) {
            pr->append_rc = rc;
            tu_done_cb(&pr->win, 0);
            break;
        }
    }
    tu_done_wait(&pr->win, 0);
    return NULL;
}

/* Runs nthreads producers of ncalls calls each on log and returns them (tu_producers_free). */
static inline struct tu_producer *tu_producers_run(struct evlog *log, int nthreads, int ncalls,
                                                   int window)
{
    struct tu_producer *prs = core_xcalloc((size_t)nthreads, sizeof *prs);
    pthread_t *th = core_xcalloc((size_t)nthreads, sizeof *th);
    for (int t = 0; t < nthreads; t++) {
        struct tu_producer *pr = &prs[t];
        pr->log = log;
        pr->id = t;
        pr->ncalls = ncalls;
        pr->window = window;
        pr->partitions = log->partitions;
        pr->calls = core_xcalloc((size_t)ncalls, sizeof *pr->calls);
        tu_done_init(&pr->win);
        assert_int_equal(pthread_create(&th[t], NULL, tu_producer_main, pr), 0);
    }
    for (int t = 0; t < nthreads; t++)
        pthread_join(th[t], NULL);
    free(th);
    return prs;
}

/* Every call done exactly once with status 0 (also right after close: checks no late ones). */
static inline void tu_producers_check_done(const struct tu_producer *prs, int nthreads)
{
    for (int t = 0; t < nthreads; t++) {
        assert_int_equal(prs[t].append_rc, 0);
        for (int i = 0; i < prs[t].ncalls; i++) {
            assert_int_equal(atomic_load(&prs[t].calls[i].done_calls), 1);
            assert_int_equal(atomic_load(&prs[t].calls[i].status), 0);
        }
    }
}

/* Offsets are gap-free per partition, each thread's in its order, and every record reads
 * back at its offset with its key and value. */
static inline void tu_producers_check_log(struct evlog *log, const struct tu_producer *prs,
                                          int nthreads)
{
    struct evlog_batch b;
    evlog_batch_init(&b);
    for (int32_t p = 0; p < log->partitions; p++) {
        struct evlog_partition_stats st;
        assert_int_equal(evlog_stats(log, p, &st), 0);
        int64_t hw = st.high_water;
        /* owner[o]: 1 + the index (t, i, j) packed, of the record given offset o */
        int64_t *owner = core_xcalloc((size_t)hw + 1, sizeof *owner);
        int64_t count = 0;
        for (int t = 0; t < nthreads; t++) {
            int64_t last = -1;
            for (int i = 0; i < prs[t].ncalls; i++) {
                for (int j = 0; j < prs[t].calls[i].nrecs; j++) {
                    const struct evlog_record *rec = &prs[t].calls[i].recs[j];
                    if (rec->partition != p)
                        continue;
                    assert_true(rec->offset > last && rec->offset < hw);
                    last = rec->offset;
                    assert_int_equal(owner[rec->offset], 0);
                    owner[rec->offset] = 1 + ((int64_t)t << 40 | (int64_t)i << 8 | j);
                    count++;
                }
            }
        }
        assert_int_equal(count, hw - st.low_water);
        for (int64_t next = st.low_water; next < hw;) {
            int n = evlog_read(log, p, next, 1000, &b);
            assert_true(n > 0);
            for (int k = 0; k < n; k++, next++) {
                const struct evlog_record *rec = &b.recs[k];
                assert_int_equal(rec->offset, next);
                assert_true(owner[next] > 0);
                int64_t o = owner[next] - 1;
                char key[32], val[TU_VALUE_LEN];
                tu_call_key(key, (int)(o >> 40), (int)(o >> 8 & 0xffffffff), (int)(o & 0xff));
                tu_call_value(val, key, (int)(o >> 8 & 0xffffffff), (int)(o & 0xff));
                assert_int_equal(rec->key_len, strlen(key));
                assert_memory_equal(rec->key, key, rec->key_len);
                assert_int_equal(rec->value_len, TU_VALUE_LEN);
                assert_memory_equal(rec->value, val, TU_VALUE_LEN);
            }
        }
        free(owner);
    }
    evlog_batch_dispose(&b);
}

static inline void tu_producers_free(struct tu_producer *prs, int nthreads)
{
    for (int t = 0; t < nthreads; t++) {
        free(prs[t].calls);
        tu_done_dispose(&prs[t].win);
    }
    free(prs);
}

#endif
