/* Recovery of the evlog file backend: torn tails, corruption, evlog_file_check. */
#include "evlog_testutil.h"

#include <fcntl.h>

#define T0 1700000000000LL

struct report {
    int n;
    char file[512];
    int64_t position;
    char what[256];
};

static void collect(void *arg, const char *file, int64_t position, const char *what)
{
    struct report *r = arg;
    if (r->n++ == 0) {
        snprintf(r->file, sizeof r->file, "%s", file);
        snprintf(r->what, sizeof r->what, "%s", what);
        r->position = position;
    }
}

/* Creates a one-partition log in a new temp dir holding records 0..count-1. */
static char *make_log(int count, int64_t segment_bytes)
{
    char *dir = tu_mkdtemp();
    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    if (segment_bytes)
        opt.segment_bytes = segment_bytes;
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    tu_fill(log, 0, 0, count, T0);
    evlog_close(log);
    return dir;
}

static void append_bytes(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

static void flip_byte(const char *path, int64_t pos)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, pos), 1);
    c ^= 0x5a;
    assert_int_equal(pwrite(fd, &c, 1, pos), 1);
    close(fd);
}

/* File position of record `offset` in a segment that starts at record 0. */
static int64_t record_pos(int offset)
{
    int64_t pos = 0;
    char key[32], val[64];
    for (int i = 0; i < offset; i++) {
        struct evlog_record rec;
        tu_record(&rec, 0, i, key, val, T0 + i);
        pos += (int64_t)evlog__sealed_size(rec.key_len, rec.value_len);
    }
    return pos;
}

static void torn_tail_case(const void *tail, size_t tail_len)
{
    char *dir = make_log(50, 0);
    char *seg = tu_path(dir, "0/%020d.seg", 0);
    int64_t good = tu_file_size(seg);
    append_bytes(seg, tail, tail_len);
    struct report r = {0};
    assert_int_equal(evlog_file_check(dir, tu_keys(), collect, &r, NULL), 1);
    assert_int_equal(r.position, good);

    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    struct evlog *log;
    opt.read_only = true;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    tu_check_all(log, 0, 0, 50, 64, T0);
    evlog_close(log);
    assert_int_equal(tu_file_size(seg), good + (int64_t)tail_len);

    opt.read_only = false;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    assert_int_equal(tu_file_size(seg), good);
    tu_check_all(log, 0, 0, 50, 64, T0);
    tu_fill(log, 0, 50, 20, T0);
    tu_check_all(log, 0, 0, 70, 64, T0);
    evlog_close(log);
    assert_int_equal(evlog_file_check(dir, tu_keys(), NULL, NULL, NULL), 0);
    free(seg);
    tu_rmtree(dir);
}

static void test_torn_tail_truncated(void **state)
{
    (void)state;
    /* A record cut short by a crash: its first 30 bytes. */
    uint8_t frame[256];
    struct evlog_record rec;
    char key[32], val[64];
    tu_record(&rec, 0, 50, key, val, T0 + 50);
    rec.offset = 50;
    evlog__frame_seal(frame, &rec, 0, userkeys_data_key(tu_keys()), NULL);
    torn_tail_case(frame, 30);
    /* A whole header whose body never made it. */
    torn_tail_case(frame, EVLOG_FRAME_HDR + 3);
    /* Zeros, as a file system may leave after extending a file. */
    uint8_t zeros[4096] = {0};
    torn_tail_case(zeros, sizeof zeros);
    /* Garbage that happens to contain the magic byte. */
    uint8_t junk[300];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = i % 5 == 0 ? 0xEB : (uint8_t)(i * 37 + 11);
    torn_tail_case(junk, sizeof junk);
}

static void test_mid_file_corruption_refused(void **state)
{
    (void)state;
    char *dir = make_log(50, 0);
    char *seg = tu_path(dir, "0/%020d.seg", 0);
    int64_t size = tu_file_size(seg);
    int64_t pos = record_pos(5);
    flip_byte(seg, pos + EVLOG_FRAME_HDR + 2); /* inside record 5's key id */

    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), CORE_E_CORRUPT);
    assert_int_equal(tu_file_size(seg), size); /* nothing dropped */

    struct report r = {0};
    assert_int_equal(evlog_file_check(dir, tu_keys(), collect, &r, NULL), 1);
    assert_string_equal(r.file, seg);
    assert_int_equal(r.position, pos);
    assert_non_null(strstr(r.what, "checksum"));

    /* Read-only: stops before the damage, changes nothing. */
    opt.read_only = true;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    struct evlog_partition_stats st;
    assert_int_equal(evlog_stats(log, 0, &st), 0);
    assert_int_equal(st.high_water, 5);
    tu_check_all(log, 0, 0, 5, 64, T0);
    evlog_close(log);
    assert_int_equal(tu_file_size(seg), size);
    free(seg);
    tu_rmtree(dir);
}

static void test_offset_gap_refused(void **state)
{
    (void)state;
    char *dir = make_log(10, 0);
    char *seg = tu_path(dir, "0/%020d.seg", 0);
    /* A valid frame whose offset skips ahead. */
    uint8_t frame[256];
    struct evlog_record rec;
    char key[32], val[64];
    tu_record(&rec, 0, 11, key, val, T0);
    rec.offset = 11;
    evlog__frame_seal(frame, &rec, 0, userkeys_data_key(tu_keys()), NULL);
    append_bytes(seg, frame, evlog__sealed_size(rec.key_len, rec.value_len));
    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), CORE_E_CORRUPT);
    struct report r = {0};
    assert_int_equal(evlog_file_check(dir, tu_keys(), collect, &r, NULL), 1);
    assert_non_null(strstr(r.what, "offset 11 where 10 expected"));
    free(seg);
    tu_rmtree(dir);
}

static void test_rolled_segment_damage(void **state)
{
    (void)state;
    char *dir = make_log(500, 4096);
    char *seg0 = tu_path(dir, "0/%020d.seg", 0);
    char *idx0 = tu_path(dir, "0/%020d.idx", 0);
    assert_int_equal(evlog_file_check(dir, tu_keys(), NULL, NULL, NULL), 0);

    /* A damaged index is reported by check and rebuilt by open. */
    flip_byte(idx0, 20);
    struct report r = {0};
    assert_int_equal(evlog_file_check(dir, tu_keys(), collect, &r, NULL), 1);
    assert_string_equal(r.file, idx0);
    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    tu_check_all(log, 0, 0, 500, 77, T0);
    evlog_close(log);
    assert_int_equal(evlog_file_check(dir, tu_keys(), NULL, NULL, NULL), 0);

    /* A damaged record in a rolled segment: open trusts it (cheap), check and reads do not. */
    int64_t pos = record_pos(3);
    flip_byte(seg0, pos + EVLOG_FRAME_HDR + 1);
    memset(&r, 0, sizeof r);
    assert_int_equal(evlog_file_check(dir, tu_keys(), collect, &r, NULL), 1);
    assert_string_equal(r.file, seg0);
    assert_int_equal(r.position, pos);
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    struct evlog_batch b;
    evlog_batch_init(&b);
    assert_int_equal(evlog_read(log, 0, 0, 100, &b), CORE_E_CORRUPT);
    assert_int_equal(b.n, 0);
    evlog_batch_dispose(&b);
    tu_check_all(log, 0, 200, 500, 77, T0);
    evlog_close(log);

    /* Without its index, the rolled segment is scanned, and open refuses. */
    assert_int_equal(unlink(idx0), 0);
    assert_int_equal(evlog_file_open(&opt, &log), CORE_E_CORRUPT);
    free(seg0);
    free(idx0);
    tu_rmtree(dir);
}

static void test_empty_trailing_segment(void **state)
{
    (void)state;
    char *dir = make_log(100, 4096);
    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    opt.segment_bytes = 4096;
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    struct evlog_partition_stats st;
    assert_int_equal(evlog_stats(log, 0, &st), 0);
    evlog_close(log);
    /* As if a crash came right after a roll created the next segment. */
    char *next = tu_path(dir, "0/%020d.seg", 100);
    int fd = open(next, O_CREAT | O_EXCL | O_WRONLY, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(evlog_file_check(dir, tu_keys(), NULL, NULL, NULL), 0);
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    tu_check_all(log, 0, 0, 100, 30, T0);
    tu_fill(log, 0, 100, 5, T0);
    tu_check_all(log, 0, 90, 105, 30, T0);
    struct evlog_partition_stats st2;
    assert_int_equal(evlog_stats(log, 0, &st2), 0);
    assert_int_equal(st2.segments, st.segments + 1);
    evlog_close(log);
    assert_int_equal(evlog_file_check(dir, tu_keys(), NULL, NULL, NULL), 0);
    free(next);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torn_tail_truncated),
        cmocka_unit_test(test_mid_file_corruption_refused),
        cmocka_unit_test(test_offset_gap_refused),
        cmocka_unit_test(test_rolled_segment_damage),
        cmocka_unit_test(test_empty_trailing_segment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
