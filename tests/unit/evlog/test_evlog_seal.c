/* Sealed records: nothing in clear on disk, tampering and moved records are detected even
 * with a valid checksum, shredded keys make records erased (skipped, counted), and a log of
 * the old unencrypted format is refused. */
#include "evlog_testutil.h"

#include <fcntl.h>
#include <xxhash.h>

#define T0 1700000000000LL

static char *read_all(const char *path, size_t *n)
{
    struct core_buf b;
    core_buf_init(&b);
    assert_int_equal(core_read_file(path, 1 << 24, &b), 0);
    *n = b.len;
    return b.data;
}

static void write_all(const char *path, const char *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
}

/* Recomputes the frame checksum, as an attacker who knows the format would. */
static void fix_checksum(uint8_t *frame, size_t len)
{
    uint32_t c = (uint32_t)XXH3_64bits(frame + 12, len - 12);
    for (int i = 0; i < 4; i++)
        frame[8 + i] = (uint8_t)(c >> (8 * i));
}

static size_t frame_len(int i)
{
    char key[32], val[64];
    struct evlog_record rec;
    tu_record(&rec, 0, i, key, val, T0 + i);
    return evlog__sealed_size(rec.key_len, rec.value_len);
}

static size_t frame_pos(int i)
{
    size_t pos = 0;
    for (int k = 0; k < i; k++)
        pos += frame_len(k);
    return pos;
}

static char *make_log(int count)
{
    char *dir = tu_mkdtemp();
    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    tu_fill(log, 0, 0, count, T0);
    evlog_close(log);
    return dir;
}

static int count_problems(const char *dir)
{
    return evlog_file_check(dir, tu_keys(), NULL, NULL, NULL);
}

static void first_problem(void *arg, const char *file, int64_t pos, const char *what)
{
    (void)file;
    (void)pos;
    char *out = arg;
    if (!out[0])
        snprintf(out, 256, "%s", what);
}

static void test_nothing_in_clear(void **state)
{
    (void)state;
    char *dir = make_log(20);
    char *seg = tu_path(dir, "0/%020d.seg", 0);
    size_t n;
    char *bytes = read_all(seg, &n);
    assert_int_equal(n, frame_pos(20));
    assert_null(memmem(bytes, n, "user-1", 6));
    assert_null(memmem(bytes, n, "value-", 6));
    assert_null(memmem(bytes, n, "a-longer-value", 14));
    /* And it all reads back. */
    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    tu_check_all(log, 0, 0, 20, 7, T0);
    evlog_close(log);
    assert_int_equal(count_problems(dir), 0);
    free(bytes);
    free(seg);
    tu_rmtree(dir);
}

/* A byte of ciphertext changed and the checksum made to match: recovery cannot tell, but every
 * read and the checker do. */
static void test_tampered_record_with_valid_checksum(void **state)
{
    (void)state;
    char *dir = make_log(10);
    char *seg = tu_path(dir, "0/%020d.seg", 0);
    size_t n;
    char *bytes = read_all(seg, &n);
    uint8_t *f = (uint8_t *)bytes + frame_pos(4);
    f[EVLOG_FRAME_HDR + SEAL_ID_BYTES + SEAL_NONCE_BYTES + 3] ^= 0x01;
    fix_checksum(f, frame_len(4));
    write_all(seg, bytes, n);

    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    struct evlog_batch b;
    evlog_batch_init(&b);
    assert_int_equal(evlog_read(log, 0, 0, 100, &b), CORE_E_CORRUPT);
    assert_int_equal(evlog_read(log, 0, 4, 1, &b), CORE_E_CORRUPT);
    assert_int_equal(evlog_read(log, 0, 0, 4, &b), 4);   /* before it: fine */
    assert_int_equal(evlog_read(log, 0, 5, 100, &b), 5); /* after it: fine */
    evlog_batch_dispose(&b);
    evlog_close(log);
    char what[256] = "";
    assert_int_equal(evlog_file_check(dir, tu_keys(), first_problem, what, NULL), 1);
    assert_non_null(strstr(what, "does not authenticate"));
    free(bytes);
    free(seg);
    tu_rmtree(dir);
}

/* Two records' sealed bodies swapped (headers, offsets and checksums all valid): each body is
 * bound to its offset, so both fail. */
static void test_swapped_records_detected(void **state)
{
    (void)state;
    char *dir = make_log(6);
    char *seg = tu_path(dir, "0/%020d.seg", 0);
    size_t n;
    char *bytes = read_all(seg, &n);
    assert_int_equal(frame_len(1), frame_len(2));
    size_t len = frame_len(1);
    uint8_t *a = (uint8_t *)bytes + frame_pos(1), *c = (uint8_t *)bytes + frame_pos(2);
    uint8_t tmp[512];
    size_t body = len - EVLOG_FRAME_HDR;
    memcpy(tmp, a + EVLOG_FRAME_HDR, body);
    memcpy(a + EVLOG_FRAME_HDR, c + EVLOG_FRAME_HDR, body);
    memcpy(c + EVLOG_FRAME_HDR, tmp, body);
    fix_checksum(a, len);
    fix_checksum(c, len);
    write_all(seg, bytes, n);
    char what[256] = "";
    assert_int_equal(evlog_file_check(dir, tu_keys(), first_problem, what, NULL), 2);
    assert_non_null(strstr(what, "does not authenticate"));
    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    struct evlog_batch b;
    evlog_batch_init(&b);
    assert_int_equal(evlog_read(log, 0, 1, 1, &b), CORE_E_CORRUPT);
    assert_int_equal(evlog_read(log, 0, 2, 1, &b), CORE_E_CORRUPT);
    evlog_batch_dispose(&b);
    evlog_close(log);
    free(bytes);
    free(seg);
    tu_rmtree(dir);
}

/* Records under per-user keys: after a shred the user's records read as erased (counted, no
 * content), the others are intact, and the checker counts them without calling them damage. */
static void test_shredded_user_records_erased(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct seal_key dk = {.key = {3, 1, 4}};
    struct userkeys_options uo;
    userkeys_options_init(&uo);
    uo.data_key = &dk;
    struct userkeys *uk;
    assert_int_equal(userkeys_open(&uo, &uk), 0);
    const char *users[2] = {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"};
    struct seal_key keys[2];
    assert_int_equal(userkeys_acquire(uk, users, 2, keys), 0);

    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    opt.keys = uk;
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), 0);
    struct evlog_record recs[6];
    char vals[6][32];
    for (int i = 0; i < 6; i++) {
        memset(&recs[i], 0, sizeof recs[i]);
        recs[i].key = users[i % 2];
        recs[i].key_len = 32;
        snprintf(vals[i], sizeof vals[i], "event-%d", i);
        recs[i].value = vals[i];
        recs[i].value_len = (uint32_t)strlen(vals[i]);
        recs[i].ingest_time_ms = T0 + i;
        recs[i].seal = &keys[i % 2];
    }
    assert_int_equal(tu_append_sync(log, recs, 6), 0);
    assert_int_equal(userkeys_shred(uk, users[0]), 0);

    struct evlog_batch b;
    evlog_batch_init(&b);
    assert_int_equal(evlog_read(log, 0, 0, 100, &b), 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(b.recs[i].offset, i);
        if (i % 2 == 0) {
            assert_true(b.recs[i].erased);
            assert_int_equal(b.recs[i].key_len, 0);
            assert_int_equal(b.recs[i].value_len, 0);
        } else {
            assert_false(b.recs[i].erased);
            assert_memory_equal(b.recs[i].key, users[1], 32);
            assert_int_equal(b.recs[i].value_len, strlen(vals[i]));
            assert_memory_equal(b.recs[i].value, vals[i], strlen(vals[i]));
        }
    }
    struct evlog_file_counters cnt;
    evlog__file_counters(log, &cnt);
    assert_int_equal(cnt.erased, 3);
    evlog_batch_dispose(&b);
    evlog_close(log);

    /* Neither pseudonym is in the segment: frames carry only key ids. */
    char *seg = tu_path(dir, "0/%020d.seg", 0);
    size_t n;
    char *bytes = read_all(seg, &n);
    assert_null(memmem(bytes, n, users[0], 32));
    assert_null(memmem(bytes, n, users[1], 32));
    assert_non_null(memmem(bytes, n, keys[1].id, SEAL_ID_BYTES));
    int64_t erased = 0;
    assert_int_equal(evlog_file_check(dir, uk, NULL, NULL, &erased), 0);
    assert_int_equal(erased, 3);
    free(bytes);
    free(seg);
    userkeys_free(uk);
    tu_rmtree(dir);
}

static void test_old_format_refused(void **state)
{
    (void)state;
    char *dir = make_log(3);
    char *meta = tu_path(dir, "meta");
    const char old[] = "recstream-evlog\nformat=1\npartitions=1\n";
    write_all(meta, old, sizeof old - 1);
    struct evlog_file_options opt;
    tu_options(&opt, dir, 1);
    struct evlog *log;
    assert_int_equal(evlog_file_open(&opt, &log), CORE_E_INVALID);
    opt.read_only = true;
    assert_int_equal(evlog_file_open(&opt, &log), CORE_E_INVALID);
    /* And a log needs its keys. */
    tu_options(&opt, dir, 1);
    opt.keys = NULL;
    assert_int_equal(evlog_file_open(&opt, &log), CORE_E_INVALID);
    free(meta);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_in_clear),
        cmocka_unit_test(test_tampered_record_with_valid_checksum),
        cmocka_unit_test(test_swapped_records_detected),
        cmocka_unit_test(test_shredded_user_records_erased),
        cmocka_unit_test(test_old_format_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
