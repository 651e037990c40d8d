/* Retention in the segment log: evlog_file_delete_segments deletes only whole, rolled, oldest
 * segments below the given offset and older than the given time (the boundaries exactly),
 * never the active one nor a pinned one, readers see a clamped but intact log meanwhile and
 * after a reopen, and evlog_file_roll_aged (or any write pass) rolls a quiet partition's old
 * active segment so that it can go too. */
#include "evlog_testutil.h"

#define T0 1000 /* ingest times T0 + i: long past */

static struct evlog *open_log(const char *dir, int64_t segment_bytes, int64_t segment_ms)
{
    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    opt.segment_bytes = segment_bytes;
    opt.segment_ms = segment_ms;
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    return log;
}

static struct evlog_part *part0(struct evlog *log)
{
    return &((struct evlog_file *)log)->parts[0];
}

static int64_t low_water(struct evlog *log)
{
    struct evlog_partition_stats st;
    assert_int_equal(evlog_stats(log, 0, &st), 0);
    return st.low_water;
}

/* The first record a read from 0 returns, and that everything from there on is intact. */
static void check_from_low_water(struct evlog *log, int count)
{
    int64_t lw = low_water(log);
    struct evlog_batch b;
    evlog_batch_init(&b);
    assert_true(evlog_read(log, 0, 0, 1, &b) == 1);
    assert_int_equal(b.recs[0].offset, lw); /* clamped up to the low-water mark */
    evlog_batch_dispose(&b);
    tu_check_all(log, 0, (int)lw, count, 7, T0);
}

static void test_boundaries(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct evlog *log = open_log(dir, 1024, 3600 * 1000);
    tu_fill(log, 0, 0, 300, T0);
    struct evlog_part *part = part0(log);
    size_t nsegs = part->nsegs;
    assert_true(nsegs > 6);
    int64_t base3 = part->segs[3]->info.base, end3 = part->segs[3]->info.end;
    int64_t max4 = part->segs[4]->info.max_ingest_ms, end4 = part->segs[4]->info.end;
    int deleted = -1;
    int64_t recs = -1;
    /* Nothing below offset 0, or below the first segment's end. */
    assert_int_equal(evlog_file_delete_segments(log, 0, 0, INT64_MAX, &deleted, &recs), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(
        evlog_file_delete_segments(log, 0, part->segs[0]->info.end - 1, INT64_MAX, &deleted, NULL),
        0);
    assert_int_equal(deleted, 0);
    assert_int_equal(part->nsegs, nsegs);
    /* Up to an offset inside segment 3: segments 0..2 go, 3 (not wholly below) stays. */
    assert_int_equal(evlog_file_delete_segments(log, 0, end3 - 1, INT64_MAX, &deleted, &recs), 0);
    assert_int_equal(deleted, 3);
    assert_int_equal(recs, base3);
    assert_int_equal(low_water(log), base3);
    assert_int_equal(part->nsegs, nsegs - 3);
    char *gone = tu_path(dir, "0/%020d.seg", 0);
    assert_int_not_equal(access(gone, F_OK), 0);
    free(gone);
    check_from_low_water(log, 300);
    /* Exactly at its end, segment 3 goes; segment 4 only once its newest record is older
     * than before_ms (max ingest == before_ms is not older). */
    assert_int_equal(evlog_file_delete_segments(log, 0, end4, max4, &deleted, NULL), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(low_water(log), end3);
    assert_int_equal(evlog_file_delete_segments(log, 0, end4, max4 + 1, &deleted, NULL), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(low_water(log), end4);
    /* Everything allowed: every rolled segment goes, never the active one. */
    assert_int_equal(evlog_file_delete_segments(log, 0, INT64_MAX, INT64_MAX, &deleted, NULL), 0);
    assert_int_equal(part->nsegs, 1);
    int64_t active_base = evlog__part_active(part)->info.base;
    assert_int_equal(low_water(log), active_base);
    check_from_low_water(log, 300);
    /* Appends continue at the same offsets; a reopen sees the same log. */
    tu_fill(log, 0, 300, 20, T0);
    check_from_low_water(log, 320);
    evlog_close(log);
    log = open_log(dir, 1024, 3600 * 1000);
    assert_int_equal(low_water(log), active_base);
    check_from_low_water(log, 320);
    assert_int_equal(evlog_file_delete_segments(log, 1, 0, 0, NULL, NULL), CORE_E_INVALID);
    evlog_close(log);
    tu_rmtree(dir);
}

static void test_pinned_segment_stays(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct evlog *log = open_log(dir, 1024, 3600 * 1000);
    tu_fill(log, 0, 0, 200, T0);
    struct evlog_part *part = part0(log);
    size_t nsegs = part->nsegs;
    /* A reader holds segment 1: segment 0 may go, 1 and everything after stay. */
    pthread_mutex_lock(&part->lock);
    struct evlog_segment *seg1 = part->segs[1];
    assert_int_equal(evlog__segment_acquire(part, seg1), 0);
    pthread_mutex_unlock(&part->lock);
    int deleted;
    assert_int_equal(evlog_file_delete_segments(log, 0, INT64_MAX, INT64_MAX, &deleted, NULL), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(part->nsegs, nsegs - 1);
    assert_ptr_equal(part->segs[0], seg1);
    pthread_mutex_lock(&part->lock);
    evlog__segment_release(part, seg1);
    pthread_mutex_unlock(&part->lock);
    assert_int_equal(evlog_file_delete_segments(log, 0, INT64_MAX, INT64_MAX, &deleted, NULL), 0);
    assert_int_equal(part->nsegs, 1);
    evlog_close(log);
    tu_rmtree(dir);
}

struct reader_arg {
    struct evlog *log;
    int count;
    atomic_bool stop;
    int reads;
};

/* Reads the whole partition from 0 again and again: every batch must be contiguous, intact
 * records starting at or after the low-water mark seen before the read. */
static void *reader_main(void *argp)
{
    struct reader_arg *a = argp;
    struct evlog_batch b;
    evlog_batch_init(&b);
    while (!atomic_load(&a->stop)) {
        int64_t next = 0;
        for (;;) {
            int n = evlog_read(a->log, 0, next, 5, &b);
            assert_true(n >= 0);
            if (n == 0)
                break;
            assert_true(b.recs[0].offset >= next);
            for (int j = 0; j < n; j++) {
                assert_int_equal(b.recs[j].offset, b.recs[0].offset + j);
                tu_check_record(&b.recs[j], 0, (int)b.recs[j].offset, T0);
            }
            next = b.recs[n - 1].offset + 1;
        }
        assert_int_equal(next, a->count);
        a->reads++;
    }
    evlog_batch_dispose(&b);
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct evlog *log = open_log(dir, 512, 3600 * 1000);
    tu_fill(log, 0, 0, 400, T0);
    struct evlog_part *part = part0(log);
    struct reader_arg a = {.log = log, .count = 400};
    atomic_init(&a.stop, false);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, &a), 0);
    /* Delete one segment at a time (pinned ones are retried) until only the active remains. */
    int64_t total = 0;
    while (part->nsegs > 1) {
        int64_t recs;
        assert_int_equal(
            evlog_file_delete_segments(log, 0, part->segs[0]->info.end, INT64_MAX, NULL, &recs), 0);
        total += recs;
        usleep(500);
    }
    atomic_store(&a.stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(total, low_water(log));
    assert_true(a.reads > 0);
    check_from_low_water(log, 400);
    evlog_close(log);
    tu_rmtree(dir);
}

static void test_roll_aged_quiet_partition(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct evlog *log = open_log(dir, 1 << 20, 300);
    struct evlog_part *part = part0(log);
    int rolled = -1;
    tu_fill(log, 0, 0, 10, T0);
    /* Young: not rolled, and the active segment is never deleted. */
    assert_int_equal(evlog_file_roll_aged(log, &rolled), 0);
    assert_int_equal(rolled, 0);
    int deleted;
    assert_int_equal(evlog_file_delete_segments(log, 0, INT64_MAX, INT64_MAX, &deleted, NULL), 0);
    assert_int_equal(deleted, 0);
    usleep(350 * 1000);
    assert_int_equal(evlog_file_roll_aged(log, &rolled), 0);
    assert_int_equal(rolled, 1);
    assert_int_equal(part->nsegs, 2);
    /* The new, empty active segment is never rolled, however old. */
    usleep(350 * 1000);
    assert_int_equal(evlog_file_roll_aged(log, &rolled), 0);
    assert_int_equal(rolled, 0);
    assert_int_equal(part->nsegs, 2);
    /* Below the checkpointed offset 9 the rolled segment (offsets 0..9) is still needed. */
    assert_int_equal(evlog_file_delete_segments(log, 0, 9, INT64_MAX, &deleted, NULL), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(evlog_file_delete_segments(log, 0, 10, INT64_MAX, &deleted, NULL), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(low_water(log), 10);
    tu_fill(log, 0, 10, 5, T0);
    check_from_low_water(log, 15);
    evlog_close(log);
    tu_rmtree(dir);
}

static void test_write_pass_rolls_quiet_partitions(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct evlog_file_options opt;
    tu_options(&opt, dir, 2);
    opt.segment_ms = 300;
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    struct evlog_file *lf = (struct evlog_file *)log;
    tu_fill(log, 0, 0, 5, T0);
    tu_fill(log, 1, 0, 5, T0);
    usleep(350 * 1000);
    /* A write to partition 0 alone also rolls partition 1's aged segment. */
    tu_fill(log, 0, 5, 5, T0);
    assert_int_equal(lf->parts[1].nsegs, 2);
    assert_int_equal(lf->parts[1].segs[0]->info.end, 5);
    int rolled = -1;
    assert_int_equal(evlog_file_roll_aged(log, &rolled), 0);
    assert_int_equal(rolled, 0); /* nothing left to roll */
    tu_check_all(log, 1, 0, 5, 3, T0);
    evlog_close(log);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boundaries),
        cmocka_unit_test(test_pinned_segment_stays),
        cmocka_unit_test(test_concurrent_readers),
        cmocka_unit_test(test_roll_aged_quiet_partition),
        cmocka_unit_test(test_write_pass_rolls_quiet_partitions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
