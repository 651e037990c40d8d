/* The fsync side of the evlog file backend: the BATCH syncer, rolls and flushes racing it,
 * and the concurrent fsyncs of ALWAYS drains. */
#include "evlog_testutil.h"

#include <time.h>

#define T0 1700000000000LL

static void test_sync_threads_per_policy(void **state)
{
    (void)state;
    struct {
        enum evlog_fsync fsync;
        int32_t partitions;
        bool syncer;
        int helpers;
    } cases[] = {
        {EVLOG_FSYNC_ALWAYS, 1, false, 0}, {EVLOG_FSYNC_ALWAYS, 2, false, 1},
        {EVLOG_FSYNC_ALWAYS, 8, false, 3}, {EVLOG_FSYNC_BATCH, 8, true, 0},
        {EVLOG_FSYNC_NONE, 8, false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = tu_mkdtemp();
        struct evlog_file_options opt;
        tu_options(&opt, dir, cases[i].partitions);
        opt.fsync = cases[i].fsync;
        struct evlog *log;
        assert_int_equal(evlog_file_open(&opt, &log), 0);
        struct evlog_file *lf = (struct evlog_file *)log;
        assert_int_equal(lf->sync.has_syncer, cases[i].syncer);
        assert_int_equal(lf->sync.pool.nth, cases[i].helpers);
        evlog_close(log);
        tu_rmtree(dir);
    }
}

static bool all_clean(struct evlog_file *lf)
{
    bool clean = true;
    pthread_mutex_lock(&lf->sync.lock);
    for (int32_t p = 0; p < lf->base.partitions; p++)
        clean = clean && !lf->parts[p].dirty && lf->parts[p].syncing == 0;
    pthread_mutex_unlock(&lf->sync.lock);
    return clean;
}

/* Nothing written since the last fsync began (one may still be running). */
static bool none_dirty(struct evlog_file *lf)
{
    bool clean = true;
    pthread_mutex_lock(&lf->sync.lock);
    for (int32_t p = 0; p < lf->base.partitions; p++)
        clean = clean && !lf->parts[p].dirty;
    pthread_mutex_unlock(&lf->sync.lock);
    return clean;
}

static void test_batch_syncer_interval(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    opt.fsync = EVLOG_FSYNC_BATCH;
    opt.fsync_interval_ms = 20;
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    struct evlog_file *lf = (struct evlog_file *)log;
    /* Appends complete without waiting for an fsync; the syncer paces them by the interval. */
    int64_t t0 = core_mono_ns();
    int n = 0;
    char key[32], val[64];
    while (core_mono_ns() - t0 < 300 * 1000000LL) {
        struct evlog_record rec;
        tu_record(&rec, 0, n, key, val, T0 + n);
        assert_int_equal(tu_append_sync(log, &rec, 1), 0);
        n++;
    }
    int64_t elapsed = core_mono_ns() - t0;
    struct evlog_file_counters c;
    evlog__file_counters(log, &c);
    print_message("batch: %d appends in %.0f ms, %llu fsyncs\n", n, (double)elapsed / 1e6,
                  (unsigned long long)c.fsyncs);
    assert_true(c.fsyncs >= 2);
    assert_true(c.fsyncs <= (uint64_t)(elapsed / (20 * 1000000LL)) + 2);
    /* Once writes stop, what they left dirty is synced within about an interval. */
    int64_t t1 = core_mono_ns();
    while (!all_clean(lf) && core_mono_ns() - t1 < 2000 * 1000000LL) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_true(all_clean(lf));
    tu_check_all(log, 0, 0, n, 500, T0);
    evlog_close(log);
    tu_rmtree(dir);
}

/* A reader going over the partitions again and again, so rolled segments' files are opened
 * and closed (beyond EVLOG_OPEN_ROLLED_MAX) while the syncer and rolls run. */
struct reader_arg {
    struct evlog *log;
    atomic_bool stop;
    int errors;
    long reads;
};

static void *reader_main(void *arg)
{
    struct reader_arg *ra = arg;
    struct evlog_batch b;
    evlog_batch_init(&b);
    while (!atomic_load(&ra->stop)) {
        for (int32_t p = 0; p < ra->log->partitions; p++) {
            for (int64_t from = 0;; from += 7) {
                int n = evlog_read(ra->log, p, from, 7, &b);
                if (n < 0)
                    ra->errors++;
                if (n <= 0)
                    break;
                ra->reads++;
            }
        }
    }
    evlog_batch_dispose(&b);
    return NULL;
}

static void test_batch_rolls_while_syncing(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct evlog_file_options opt;
    tu_options(&opt, dir, 2);
    opt.fsync = EVLOG_FSYNC_BATCH;
    opt.fsync_interval_ms = 1;
    opt.segment_bytes = 4096;
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    struct reader_arg ra = {.log = log};
    pthread_t rth;
    assert_int_equal(pthread_create(&rth, NULL, reader_main, &ra), 0);
    enum { NTHREADS = 4, NCALLS = 600 };
    struct tu_producer *prs = tu_producers_run(log, NTHREADS, NCALLS, 4);
    atomic_store(&ra.stop, true);
    pthread_join(rth, NULL);
    assert_int_equal(ra.errors, 0);
    tu_producers_check_done(prs, NTHREADS);
    assert_int_equal(evlog_flush(log), 0);
    assert_true(none_dirty((struct evlog_file *)log));
    tu_producers_check_log(log, prs, NTHREADS);
    struct evlog_file_counters c;
    evlog__file_counters(log, &c);
    print_message("rolls %llu, fsyncs %llu, passes %llu (%llu by appenders), reads %ld\n",
                  (unsigned long long)c.rolls, (unsigned long long)c.fsyncs,
                  (unsigned long long)c.drains, (unsigned long long)c.leads, ra.reads);
    assert_true(c.rolls > 4 * EVLOG_OPEN_ROLLED_MAX);
    evlog_close(log);
    tu_producers_check_done(prs, NTHREADS);
    assert_int_equal(evlog_file_check(dir, tu_keys(), NULL, NULL, NULL), 0);
    opt.read_only = true;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    tu_producers_check_log(log, prs, NTHREADS);
    evlog_close(log);
    tu_producers_free(prs, NTHREADS);
    tu_rmtree(dir);
}

/* Pretends the syncer has taken partition 0 and is still in its fdatasync. */
static void fake_running_sync(struct evlog_file *lf, int delta)
{
    pthread_mutex_lock(&lf->sync.lock);
    if (delta > 0) {
        assert_true(lf->parts[0].dirty);
        lf->parts[0].dirty = false;
        lf->sync.ndirty = 0;
    }
    lf->parts[0].syncing += delta;
    pthread_mutex_unlock(&lf->sync.lock);
}

static void test_forced_syncs_cover_running_syncer(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    opt.fsync = EVLOG_FSYNC_BATCH;
    opt.fsync_interval_ms = 60 * 1000; /* the real syncer stays out of the way */
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    struct evlog_file *lf = (struct evlog_file *)log;
    struct evlog_file_counters c1, c2;

    /* The syncer's fdatasync may have begun before the last write: flush must not count on
     * it, and fsyncs the partition itself. */
    tu_fill(log, 0, 0, 10, T0);
    fake_running_sync(lf, 1);
    evlog__file_counters(log, &c1);
    assert_int_equal(evlog_flush(log), 0);
    evlog__file_counters(log, &c2);
    assert_int_equal(c2.fsyncs, c1.fsyncs + 1);
    fake_running_sync(lf, -1);

    /* The same for a roll, which must leave the old segment durable. */
    tu_fill(log, 0, 10, 10, T0);
    fake_running_sync(lf, 1);
    evlog__file_counters(log, &c1);
    assert_int_equal(evlog__sync_before_roll(lf, &lf->parts[0]), 0);
    evlog__file_counters(log, &c2);
    assert_int_equal(c2.fsyncs, c1.fsyncs + 1);
    fake_running_sync(lf, -1);

    /* Clean and nobody syncing: nothing to do. */
    evlog__file_counters(log, &c1);
    assert_int_equal(evlog__sync_before_roll(lf, &lf->parts[0]), 0);
    assert_int_equal(evlog_flush(log), 0);
    evlog__file_counters(log, &c2);
    assert_int_equal(c2.fsyncs, c1.fsyncs);
    tu_check_all(log, 0, 0, 20, 8, T0);
    evlog_close(log);
    tu_rmtree(dir);
}

static void test_always_syncs_partitions_concurrently(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct evlog_file_options opt;
    tu_options(&opt, dir, 4);
    opt.fsync = EVLOG_FSYNC_ALWAYS;
    opt.segment_bytes = 16384;
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    enum { NTHREADS = 4, NCALLS = 400 };
    struct tu_producer *prs = tu_producers_run(log, NTHREADS, NCALLS, 4);
    tu_producers_check_done(prs, NTHREADS);
    assert_int_equal(evlog_flush(log), 0); /* records become visible just after done */
    tu_producers_check_log(log, prs, NTHREADS);
    struct evlog_file_counters c;
    evlog__file_counters(log, &c);
    print_message("always: %llu appends, %llu drains, %llu fsyncs, %llu rolls\n",
                  (unsigned long long)c.appends, (unsigned long long)c.drains,
                  (unsigned long long)c.fsyncs, (unsigned long long)c.rolls);
    /* Drains touch several partitions and fsync each; still group commit. */
    assert_true(c.fsyncs > c.drains);
    assert_true(c.drains < c.appends);
    assert_true(all_clean((struct evlog_file *)log));
    evlog_close(log);
    assert_int_equal(evlog_file_check(dir, tu_keys(), NULL, NULL, NULL), 0);
    tu_producers_free(prs, NTHREADS);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_threads_per_policy),
        cmocka_unit_test(test_batch_syncer_interval),
        cmocka_unit_test(test_batch_rolls_while_syncing),
        cmocka_unit_test(test_forced_syncs_cover_running_syncer),
        cmocka_unit_test(test_always_syncs_partitions_concurrently),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
