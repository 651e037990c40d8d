/* The evlog file backend: appends, reads, group commit, rolling, time lookup, waits. */
#include "evlog_testutil.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <time.h>

#define T0 1700000000000LL

static void test_append_read_partitions(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct evlog_file_options opt;
    tu_options(&opt, dir, 3);
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    assert_int_equal(log->partitions, 3);
    assert_string_equal(log->ops->name, "file");

    /* One append spanning partitions: offsets are per partition and known at once. */
    char keys[6][32], vals[6][64];
    struct evlog_record recs[6];
    for (int i = 0; i < 6; i++)
        tu_record(&recs[i], i % 3, i / 3, keys[i], vals[i], T0 + i / 3);
    struct tu_done d;
    tu_done_init(&d);
    d.pending = 1;
    assert_int_equal(evlog_append(log, recs, 6, tu_done_cb, &d), 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(recs[i].offset, i / 3);
    tu_done_wait(&d, 0);
    assert_int_equal(d.status, 0);
    tu_done_dispose(&d);

    for (int32_t p = 0; p < 3; p++)
        tu_fill(log, p, 2, 100 + 50 * p, T0);
    for (int32_t p = 0; p < 3; p++) {
        tu_check_all(log, p, 0, 102 + 50 * p, 1, T0);
        tu_check_all(log, p, 0, 102 + 50 * p, 7, T0);
        tu_check_all(log, p, 37, 102 + 50 * p, 1000, T0);
        struct evlog_partition_stats st;
        assert_int_equal(evlog_stats(log, p, &st), 0);
        assert_int_equal(st.low_water, 0);
        assert_int_equal(st.high_water, 102 + 50 * p);
        assert_int_equal(st.segments, 1);
        assert_int_equal(st.first_ingest_ms, T0);
        assert_int_equal(st.last_ingest_ms, T0 + 101 + 50 * p);
        assert_true(st.bytes > (102 + 50 * p) * (int64_t)EVLOG_FRAME_HDR);
    }
    /* Bad partitions and oversized records are refused without queueing anything. */
    struct evlog_batch b;
    evlog_batch_init(&b);
    assert_int_equal(evlog_read(log, 3, 0, 10, &b), CORE_E_INVALID);
    assert_int_equal(evlog_read(log, 0, 5000, 10, &b), 0);
    evlog_batch_dispose(&b);
    recs[0].partition = 7;
    assert_int_equal(evlog_append(log, recs, 1, tu_done_cb, &d), CORE_E_INVALID);
    static char big[EVLOG_MAX_VALUE + 1];
    recs[0].partition = 0;
    recs[0].value = big;
    recs[0].value_len = sizeof big;
    assert_int_equal(evlog_append(log, recs, 1, tu_done_cb, &d), CORE_E_TOOBIG);
    recs[0].value_len = EVLOG_MAX_VALUE;
    assert_int_equal(tu_append_sync(log, recs, 1), 0);
    assert_int_equal(recs[0].offset, 102);

    evlog_close(log);
    tu_rmtree(dir);
}

static void test_reopen_keeps_everything(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    enum evlog_fsync policies[] = {EVLOG_FSYNC_ALWAYS, EVLOG_FSYNC_BATCH, EVLOG_FSYNC_NONE};
    struct evlog_file_options opt;
    tu_options(&opt, dir, 2);
    for (int round = 0; round < 3; round++) {
        opt.fsync = policies[round];
        struct evlog *log;
        assert_int_equal(evlog_file_open(&opt, &log), 0);
        for (int32_t p = 0; p < 2; p++) {
            tu_check_all(log, p, 0, round * 300, 64, T0);
            tu_fill(log, p, round * 300, 300, T0);
        }
        assert_int_equal(evlog_flush(log), 0);
        evlog_close(log);
    }
    /* Partitions 0 means "whatever the log has"; read-only opens see the same records. */
    opt.partitions = 0;
    opt.read_only = true;
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    assert_int_equal(log->partitions, 2);
    tu_check_all(log, 1, 0, 900, 500, T0);
    struct evlog_record rec = {0};
    struct tu_done d;
    assert_int_equal(evlog_append(log, &rec, 1, tu_done_cb, &d), CORE_E_FAILED);
    assert_int_equal(evlog_flush(log), 0);
    evlog_close(log);
    tu_rmtree(dir);
}

static void test_partition_count_mismatch(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct evlog_file_options opt;
    tu_options(&opt, dir, 2);
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    evlog_close(log);
    opt.partitions = 3;
    assert_int_equal(evlog_file_open(&opt, &log), CORE_E_INVALID);
    opt.partitions = 2;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    evlog_close(log);
    /* A new log needs a partition count. */
    char *dir2 = tu_mkdtemp();
    tu_options(&opt, dir2, 0);
    assert_int_equal(evlog_file_open(&opt, &log), CORE_E_INVALID);
    tu_rmtree(dir2);
    tu_rmtree(dir);
}

/* ---- concurrency and group commit -------------------------------------------------------- */

#define THREADS 4
#define PER_THREAD 2000
#define WINDOW 32

struct producer {
    struct evlog *log;
    int id;
    int64_t offsets[PER_THREAD];
    struct evlog_record recs[PER_THREAD];
    char keys[PER_THREAD][32];
    char vals[PER_THREAD][64];
};

static void *producer_main(void *arg)
{
    struct producer *pr = arg;
    struct tu_done d;
    tu_done_init(&d);
    for (int i = 0; i < PER_THREAD; i++) {
        int n = pr->id * PER_THREAD + i;
        tu_record(&pr->recs[i], n % 2, n, pr->keys[i], pr->vals[i], T0 + i);
        /* Like many HTTP clients: a bounded number of appends in flight. */
        tu_done_wait(&d, WINDOW - 1);
        pthread_mutex_lock(&d.m);
        d.pending++;
        pthread_mutex_unlock(&d.m);
        int rc = evlog_append(pr->log, &pr->recs[i], 1, tu_done_cb, &d);
        assert_int_equal(rc, 0);
        pr->offsets[i] = pr->recs[i].offset;
    }
    tu_done_wait(&d, 0);
    assert_int_equal(d.status, 0);
    tu_done_dispose(&d);
    return NULL;
}

static void test_concurrent_appends_group_commit(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct evlog_file_options opt;
    tu_options(&opt, dir, 2);
    opt.fsync = EVLOG_FSYNC_ALWAYS;
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    struct producer *prs = core_xcalloc(THREADS, sizeof *prs);
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        prs[t].log = log;
        prs[t].id = t;
        assert_int_equal(pthread_create(&th[t], NULL, producer_main, &prs[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    /* Completed appends become visible right after their completions ran. */
    assert_int_equal(evlog_flush(log), 0);

    /* Offsets per partition: every one used exactly once, each thread's in its order. */
    int total = THREADS * PER_THREAD;
    int *owner = core_xcalloc((size_t)total, sizeof *owner);
    for (int t = 0; t < THREADS; t++) {
        int64_t last[2] = {-1, -1};
        for (int i = 0; i < PER_THREAD; i++) {
            int p = prs[t].recs[i].partition;
            int64_t off = prs[t].offsets[i];
            assert_true(off > last[p] && off < total / 2);
            last[p] = off;
            assert_int_equal(owner[p * (total / 2) + off], 0);
            owner[p * (total / 2) + off] = 1;
        }
    }
    struct evlog_batch b;
    evlog_batch_init(&b);
    for (int p = 0; p < 2; p++) {
        assert_int_equal(evlog_read(log, p, 0, (size_t)total, &b), total / 2);
        for (int j = 0; j < total / 2; j++) {
            assert_int_equal(b.recs[j].offset, j);
            /* The key says which record it is; check it landed at the offset append gave. */
            char key[32] = {0};
            memcpy(key, b.recs[j].key, b.recs[j].key_len < 31 ? b.recs[j].key_len : 31);
            int n = (int)strtol(key + 5, NULL, 10);
            int t = n / PER_THREAD, i = n % PER_THREAD;
            assert_int_equal(prs[t].offsets[i], j);
        }
    }
    evlog_batch_dispose(&b);

    struct evlog_file_counters c;
    evlog__file_counters(log, &c);
    print_message("group commit: %llu appends, %llu drains, %llu writes, %llu fsyncs\n",
                  (unsigned long long)c.appends, (unsigned long long)c.drains,
                  (unsigned long long)c.writes, (unsigned long long)c.fsyncs);
    assert_int_equal(c.appends, (uint64_t)total);
    assert_true(c.fsyncs * 8 < c.appends);
    assert_true(c.writes <= 2 * c.drains);
    evlog_close(log);
    free(owner);
    free(prs);
    tu_rmtree(dir);
}

/* ---- inline ("leader") writes ------------------------------------------------------------ */

/* A completion that records how often, with what and on which thread it ran. */
struct where_done {
    pthread_mutex_t m;
    pthread_cond_t c;
    int calls;
    int status;
    pthread_t thread;
};

static void where_done_cb(void *arg, int status)
{
    struct where_done *w = arg;
    pthread_mutex_lock(&w->m);
    w->calls++;
    w->status = status;
    w->thread = pthread_self();
    pthread_cond_broadcast(&w->c);
    pthread_mutex_unlock(&w->m);
}

static void test_inline_append_completes_synchronously(void **state)
{
    (void)state;
    enum evlog_fsync policies[] = {EVLOG_FSYNC_BATCH, EVLOG_FSYNC_NONE, EVLOG_FSYNC_ALWAYS};
    for (int pi = 0; pi < 3; pi++) {
        char *dir = tu_mkdtemp();
        struct evlog_file_options opt;
        tu_options(&opt, dir, 3);
        opt.fsync = policies[pi];
        opt.fsync_interval_ms = 5;
        struct evlog *log;
        assert_int_equal(evlog_file_open(&opt, &log), 0);
        int count[3] = {0, 0, 0};
        struct evlog_batch b;
        evlog_batch_init(&b);
        for (int i = 0; i < 200; i++) {
            char keys[3][32], vals[3][64];
            struct evlog_record recs[3];
            size_t n = (size_t)(i % 3) + 1;
            for (size_t j = 0; j < n; j++) {
                int32_t p = (int32_t)((i + (int)j) % 3);
                tu_record(&recs[j], p, count[p], keys[j], vals[j], T0 + count[p]);
                count[p]++;
            }
            struct where_done w = {
                .m = PTHREAD_MUTEX_INITIALIZER, .c = PTHREAD_COND_INITIALIZER, .status = 1};
            assert_int_equal(evlog_append(log, recs, n, where_done_cb, &w), 0);
            pthread_mutex_lock(&w.m);
            if (policies[pi] == EVLOG_FSYNC_ALWAYS) {
                /* Group commit with fsync stays on the writer thread. */
                while (w.calls == 0)
                    pthread_cond_wait(&w.c, &w.m);
                assert_false(pthread_equal(w.thread, pthread_self()));
            } else {
                /* Nobody else writing: done ran here, before append returned... */
                assert_int_equal(w.calls, 1);
                assert_true(pthread_equal(w.thread, pthread_self()));
            }
            assert_int_equal(w.calls, 1);
            assert_int_equal(w.status, 0);
            pthread_mutex_unlock(&w.m);
            for (size_t j = 0; j < n && policies[pi] != EVLOG_FSYNC_ALWAYS; j++) {
                /* ...and the records were readable as soon as it did. */
                assert_int_equal(evlog_read(log, recs[j].partition, recs[j].offset, 1, &b), 1);
                assert_int_equal(b.recs[0].offset, recs[j].offset);
            }
        }
        evlog_batch_dispose(&b);
        struct evlog_file_counters c;
        evlog__file_counters(log, &c);
        assert_int_equal(c.appends, 200);
        if (policies[pi] == EVLOG_FSYNC_ALWAYS) {
            assert_int_equal(c.leads, 0);
        } else {
            assert_int_equal(c.leads, 200); /* every pass written by the appender itself */
            assert_int_equal(c.drains, 200);
        }
        assert_int_equal(evlog_flush(log), 0);
        for (int32_t p = 0; p < 3; p++)
            tu_check_all(log, p, 0, count[p], 64, T0);
        evlog_close(log);
        assert_int_equal(evlog_file_check(dir, tu_keys(), NULL, NULL, NULL), 0);
        tu_rmtree(dir);
    }
}

static void test_inline_concurrent_appenders(void **state)
{
    (void)state;
    enum evlog_fsync policies[] = {EVLOG_FSYNC_BATCH, EVLOG_FSYNC_NONE};
    for (int pi = 0; pi < 2; pi++) {
        char *dir = tu_mkdtemp();
        struct evlog_file_options opt;
        tu_options(&opt, dir, 3);
        opt.fsync = policies[pi];
        opt.fsync_interval_ms = 2;
        struct evlog *log;
        assert_int_equal(evlog_file_open(&opt, &log), 0);
        enum { NTHREADS = 6, NCALLS = 1500 };
        struct tu_producer *prs = tu_producers_run(log, NTHREADS, NCALLS, 8);
        tu_producers_check_done(prs, NTHREADS);
        assert_int_equal(evlog_flush(log), 0);
        tu_producers_check_log(log, prs, NTHREADS);
        struct evlog_file_counters c;
        evlog__file_counters(log, &c);
        print_message("%s: %llu appends, %llu passes, %llu by appenders, %llu fsyncs\n",
                      pi == 0 ? "batch" : "none", (unsigned long long)c.appends,
                      (unsigned long long)c.drains, (unsigned long long)c.leads,
                      (unsigned long long)c.fsyncs);
        assert_int_equal(c.appends, NTHREADS * NCALLS);
        assert_true(c.leads > 0);
        evlog_close(log);
        tu_producers_check_done(prs, NTHREADS); /* no completion ran twice, even at close */
        assert_int_equal(evlog_file_check(dir, tu_keys(), NULL, NULL, NULL), 0);
        tu_producers_free(prs, NTHREADS);
        tu_rmtree(dir);
    }
}

/* A completion that appends the next link of a chain (done may append). */
struct chain {
    struct evlog *log;
    int next;
    int appended;
    int bad;
    struct evlog_record recs[50];
    char keys[50][32], vals[50][64];
    struct tu_done d;
};

static void chain_cb(void *arg, int status)
{
    struct chain *ch = arg;
    if (status < 0)
        ch->bad++;
    if (ch->next < 50) {
        int i = ch->next++;
        if (evlog_append(ch->log, &ch->recs[i], 1, chain_cb, ch) == 0)
            ch->appended++;
        else
            ch->bad++;
    }
    tu_done_cb(&ch->d, status);
}

static void test_done_may_append(void **state)
{
    (void)state;
    enum evlog_fsync policies[] = {EVLOG_FSYNC_BATCH, EVLOG_FSYNC_ALWAYS};
    for (int pi = 0; pi < 2; pi++) {
        char *dir = tu_mkdtemp();
        struct evlog_file_options opt;
        tu_options(&opt, dir, 1);
        opt.fsync = policies[pi];
        struct evlog *log;
        assert_int_equal(evlog_file_open(&opt, &log), 0);
        struct chain *ch = core_xcalloc(1, sizeof *ch);
        ch->log = log;
        for (int i = 0; i < 50; i++)
            tu_record(&ch->recs[i], 0, i, ch->keys[i], ch->vals[i], T0 + i);
        tu_done_init(&ch->d);
        ch->d.pending = 50;
        ch->next = 1;
        assert_int_equal(evlog_append(log, &ch->recs[0], 1, chain_cb, ch), 0);
        /* The nested appends queue behind the running pass; the writer thread takes over. */
        tu_done_wait(&ch->d, 0);
        assert_int_equal(ch->bad, 0);
        assert_int_equal(ch->appended, 49);
        assert_int_equal(ch->d.status, 0);
        assert_int_equal(evlog_flush(log), 0);
        tu_check_all(log, 0, 0, 50, 16, T0);
        evlog_close(log);
        tu_done_dispose(&ch->d);
        free(ch);
        tu_rmtree(dir);
    }
}

static void test_inline_write_failure(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    opt.fsync = EVLOG_FSYNC_NONE;
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    tu_fill(log, 0, 0, 5, T0);
    struct evlog_segment *seg = ((struct evlog_file *)log)->parts[0].segs[0];
    int ro = open(seg->path, O_RDONLY);
    assert_true(ro >= 0);
    assert_true(dup2(ro, seg->fd) >= 0);
    close(ro);
    char key[32], val[64];
    struct evlog_record rec;
    tu_record(&rec, 0, 5, key, val, T0 + 5);
    struct where_done w = {.m = PTHREAD_MUTEX_INITIALIZER, .c = PTHREAD_COND_INITIALIZER};
    assert_int_equal(evlog_append(log, &rec, 1, where_done_cb, &w), 0);
    /* The failed write was reported inline, once. */
    assert_int_equal(w.calls, 1);
    assert_true(w.status < 0);
    assert_int_equal(evlog_append(log, &rec, 1, where_done_cb, &w), CORE_E_FAILED);
    assert_int_equal(w.calls, 1);
    assert_int_equal(evlog_flush(log), CORE_E_FAILED);
    assert_int_equal(evlog_wait(log, 0, 5, 20), CORE_E_TIMEOUT);
    tu_check_all(log, 0, 0, 5, 10, T0);
    evlog_close(log);
    tu_rmtree(dir);
}

/* ---- segments ---------------------------------------------------------------------------- */

static void test_segment_roll_and_read_across(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    opt.segment_bytes = 8192;
    opt.fsync = EVLOG_FSYNC_NONE;
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    tu_fill(log, 0, 0, 2000, T0);
    struct evlog_partition_stats st;
    assert_int_equal(evlog_stats(log, 0, &st), 0);
    assert_true(st.segments > 10);
    assert_int_equal(st.high_water, 2000);
    struct evlog_file_counters c;
    evlog__file_counters(log, &c);
    assert_int_equal(c.rolls, (uint64_t)st.segments - 1);
    /* No segment exceeds the limit. */
    struct evlog_file *lf = (struct evlog_file *)log;
    for (size_t i = 0; i < lf->parts[0].nsegs; i++)
        assert_true(lf->parts[0].segs[i]->info.size <= opt.segment_bytes);
    for (int from = 0; from < 2000; from += 97)
        tu_check_all(log, 0, from, 2000, 333, T0);
    tu_check_all(log, 0, 0, 2000, 5000, T0);
    evlog_close(log);

    /* Rolled segments have index files; a missing or damaged one is rebuilt. */
    char *idx = tu_path(dir, "0/%020d.idx", 0);
    char *idx2 = tu_path(dir, "0/%020d.seg", 0);
    int64_t first_size = tu_file_size(idx2);
    assert_true(first_size > 0);
    assert_int_equal(unlink(idx), 0);
    assert_int_equal(evlog_file_check(dir, tu_keys(), NULL, NULL, NULL), 0);
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    assert_true(tu_file_size(idx) > 0);
    tu_check_all(log, 0, 0, 2000, 100, T0);
    /* New appends continue the offsets in the newest segment. */
    tu_fill(log, 0, 2000, 10, T0);
    tu_check_all(log, 0, 1990, 2010, 100, T0);
    evlog_close(log);
    assert_int_equal(evlog_file_check(dir, tu_keys(), NULL, NULL, NULL), 0);
    free(idx);
    free(idx2);
    tu_rmtree(dir);
}

static void test_segment_roll_by_age(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    opt.segment_ms = 30;
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    tu_fill(log, 0, 0, 10, T0);
    struct timespec ts = {0, 60 * 1000 * 1000};
    nanosleep(&ts, NULL);
    tu_fill(log, 0, 10, 10, T0);
    struct evlog_partition_stats st;
    assert_int_equal(evlog_stats(log, 0, &st), 0);
    assert_int_equal(st.segments, 2);
    tu_check_all(log, 0, 0, 20, 3, T0);
    evlog_close(log);
    tu_rmtree(dir);
}

/* ---- time index -------------------------------------------------------------------------- */

static int64_t skewed_time(int i)
{
    /* Mostly rising, with repeats and the odd step back (clock skew between collectors). */
    return T0 + i / 2 * 10 - ((i % 17) == 5 ? 25 : 0);
}

static void test_offset_for_time(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    opt.segment_bytes = 16384;
    opt.fsync = EVLOG_FSYNC_NONE;
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    int64_t off;
    assert_int_equal(evlog_offset_for_time(log, 0, T0, &off), 0);
    assert_int_equal(off, 0);
    enum { N = 3000 };
    char key[32], val[64];
    for (int i = 0; i < N; i++) {
        struct evlog_record rec;
        tu_record(&rec, 0, i, key, val, skewed_time(i));
        assert_int_equal(tu_append_sync(log, &rec, 1), 0);
    }
    for (int64_t ts = T0 - 100; ts <= skewed_time(N - 1) + 20; ts += 7) {
        int64_t want = N;
        for (int i = 0; i < N; i++) {
            if (skewed_time(i) >= ts) {
                want = i;
                break;
            }
        }
        assert_int_equal(evlog_offset_for_time(log, 0, ts, &off), 0);
        assert_int_equal(off, want);
    }
    evlog_close(log);
    tu_rmtree(dir);
}

/* ---- wait and queue bound ------------------------------------------------------------------ */

struct waiter_arg {
    struct evlog *log;
    int64_t offset;
    int timeout_ms;
    int rc;
};

static void *waiter_main(void *arg)
{
    struct waiter_arg *w = arg;
    w->rc = evlog_wait(w->log, 0, w->offset, w->timeout_ms);
    return NULL;
}

static void test_wait(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);

    int64_t t = core_mono_ns();
    assert_int_equal(evlog_wait(log, 0, 0, 50), CORE_E_TIMEOUT);
    assert_true(core_mono_ns() - t >= 45 * 1000000LL);

    struct waiter_arg w = {log, 0, 10000, 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, waiter_main, &w), 0);
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    tu_fill(log, 0, 0, 1, T0);
    pthread_join(th, NULL);
    assert_int_equal(w.rc, 0);
    assert_int_equal(evlog_wait(log, 0, 0, 0), 0);

    /* Closing wakes a waiter with CORE_E_CLOSED (once it is surely waiting). */
    struct waiter_arg w2 = {log, 5, -1, 1};
    assert_int_equal(pthread_create(&th, NULL, waiter_main, &w2), 0);
    struct evlog_part *part = &((struct evlog_file *)log)->parts[0];
    for (int waiting = 0; !waiting;) {
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&part->lock);
        waiting = part->waiters;
        pthread_mutex_unlock(&part->lock);
    }
    evlog_close(log);
    pthread_join(th, NULL);
    assert_int_equal(w2.rc, CORE_E_CLOSED);
    tu_rmtree(dir);
}

struct gate {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool entered;
    bool open;
};

static void gate_done(void *arg, int status)
{
    struct gate *g = arg;
    assert_int_equal(status, 0);
    pthread_mutex_lock(&g->m);
    g->entered = true;
    pthread_cond_broadcast(&g->c);
    while (!g->open)
        pthread_cond_wait(&g->c, &g->m);
    pthread_mutex_unlock(&g->m);
}

static void test_queue_full(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    opt.queue_bytes = 2000;
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    static char big[3000];
    struct evlog_record rec = {.value = big, .value_len = sizeof big};
    assert_int_equal(evlog_append(log, &rec, 1, tu_done_cb, NULL), CORE_E_FULL);

    /* Hold the writer inside a completion: the queue then fills up and says so. */
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false};
    rec.value_len = 100;
    assert_int_equal(evlog_append(log, &rec, 1, gate_done, &g), 0);
    pthread_mutex_lock(&g.m);
    while (!g.entered)
        pthread_cond_wait(&g.c, &g.m);
    pthread_mutex_unlock(&g.m);
    struct tu_done d;
    tu_done_init(&d);
    int accepted = 0, rc;
    struct evlog_record recs[2] = {rec, rec};
    for (;;) {
        pthread_mutex_lock(&d.m);
        d.pending++;
        pthread_mutex_unlock(&d.m);
        rc = evlog_append(log, recs, 2, tu_done_cb, &d);
        if (rc != 0)
            break;
        accepted++;
    }
    assert_int_equal(rc, CORE_E_FULL);
    pthread_mutex_lock(&d.m);
    d.pending--;
    pthread_mutex_unlock(&d.m);
    /* Two sealed frames per call (the held append is written: it no longer counts). */
    assert_int_equal(accepted, 2000 / (2 * evlog__sealed_size(rec.key_len, 100)));
    /* The refused call took no offsets. */
    assert_int_equal(recs[1].offset, 2 * accepted);
    pthread_mutex_lock(&g.m);
    g.open = true;
    pthread_cond_broadcast(&g.c);
    pthread_mutex_unlock(&g.m);
    tu_done_wait(&d, 0);
    assert_int_equal(d.status, 0);
    assert_int_equal(tu_append_sync(log, recs, 2), 0);
    assert_int_equal(recs[0].offset, 1 + 2 * accepted);
    tu_done_dispose(&d);
    evlog_close(log);
    tu_rmtree(dir);
}

static void test_flush_with_batch_policy(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    opt.fsync = EVLOG_FSYNC_BATCH;
    opt.fsync_interval_ms = 200;
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    tu_fill(log, 0, 0, 100, T0);
    /* The interval fsync comes from the syncer thread's timed wait. */
    struct evlog_file_counters c;
    int64_t t = core_mono_ns();
    do {
        evlog__file_counters(log, &c);
    } while (c.fsyncs == 0 && core_mono_ns() - t < 2000000000LL);
    assert_true(c.fsyncs >= 1);
    tu_fill(log, 0, 100, 10, T0);
    assert_int_equal(evlog_flush(log), 0);
    struct evlog_file_counters c2;
    evlog__file_counters(log, &c2);
    assert_true(c2.fsyncs > c.fsyncs);
    tu_check_all(log, 0, 0, 110, 50, T0);
    evlog_close(log);
    tu_rmtree(dir);
}

static void test_write_failure(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    tu_fill(log, 0, 0, 5, T0);
    /* Swap the active segment's descriptor for a read-only one: writes now fail. */
    struct evlog_segment *seg = ((struct evlog_file *)log)->parts[0].segs[0];
    int ro = open(seg->path, O_RDONLY);
    assert_true(ro >= 0);
    assert_true(dup2(ro, seg->fd) >= 0);
    close(ro);
    char key[32], val[64];
    struct evlog_record rec;
    tu_record(&rec, 0, 5, key, val, T0 + 5);
    struct tu_done d;
    tu_done_init(&d);
    d.pending = 1;
    assert_int_equal(evlog_append(log, &rec, 1, tu_done_cb, &d), 0);
    tu_done_wait(&d, 0);
    assert_true(d.status < 0);
    tu_done_dispose(&d);
    /* The log stays failed; the failed record never becomes visible. */
    assert_int_equal(evlog_append(log, &rec, 1, tu_done_cb, &d), CORE_E_FAILED);
    assert_int_equal(evlog_flush(log), CORE_E_FAILED);
    assert_int_equal(evlog_wait(log, 0, 5, 20), CORE_E_TIMEOUT);
    tu_check_all(log, 0, 0, 5, 10, T0);
    evlog_close(log);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_read_partitions),
        cmocka_unit_test(test_reopen_keeps_everything),
        cmocka_unit_test(test_partition_count_mismatch),
        cmocka_unit_test(test_concurrent_appends_group_commit),
        cmocka_unit_test(test_inline_append_completes_synchronously),
        cmocka_unit_test(test_inline_concurrent_appenders),
        cmocka_unit_test(test_done_may_append),
        cmocka_unit_test(test_inline_write_failure),
        cmocka_unit_test(test_segment_roll_and_read_across),
        cmocka_unit_test(test_segment_roll_by_age),
        cmocka_unit_test(test_offset_for_time),
        cmocka_unit_test(test_wait),
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_flush_with_batch_policy),
        cmocka_unit_test(test_write_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
