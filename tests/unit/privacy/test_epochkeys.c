/* The epoch key store: keys are created once per class and epoch, survive a reopen, are
 * destroyed only once their whole epoch lies beyond the class's TTL (and are then gone from
 * the file too), the file is sealed (no key in clear, a flipped byte or another data key
 * refuses the open), and the store is bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "privacy/epochkeys.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define H (3600LL * 1000)

struct fixture {
    char dir[64];
    char path[128];
    struct seal_key dk;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_int_equal(seal_init(), 0);
    snprintf(f->dir, sizeof f->dir, "/tmp/rs-ek-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/epochkeys", f->dir);
    randombytes_buf(f->dk.key, sizeof f->dk.key);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static struct epochkeys *open_store(struct fixture *f, int64_t max)
{
    struct epochkeys_options o;
    epochkeys_options_init(&o);
    o.path = f->path;
    o.data_key = &f->dk;
    if (max)
        o.max_keys = max;
    struct epochkeys *ek = NULL;
    assert_int_equal(epochkeys_open(&o, &ek), 0);
    struct epochkeys_policy pol = {{true, false, false}, {7 * 24 * H, 30 * 24 * H, 0}, {H, 0, 0}};
    epochkeys_set_policy(ek, &pol);
    return ek;
}

static void test_epoch_length(void **state)
{
    (void)state;
    assert_int_equal(epochkeys_epoch_for_ttl(7 * 24 * H), 21 * H);
    assert_int_equal(epochkeys_epoch_for_ttl(2 * H), H); /* at least an hour */
}

static void test_acquire_persist_reopen(void **state)
{
    struct fixture *f = *state;
    struct epochkeys *ek = open_store(f, 0);
    assert_true(epochkeys_class_sealed(ek, 0));
    assert_false(epochkeys_class_sealed(ek, 1));
    struct seal_key k1, k2, k3, got;
    int64_t s1, s2, s3;
    int64_t t = 1000 * H + 5;
    assert_int_equal(epochkeys_acquire(ek, 0, t, &k1, &s1), 0);
    assert_int_equal(s1, 1000 * H);
    /* Same epoch: the same key; the next epoch: another. */
    assert_int_equal(epochkeys_acquire(ek, 0, t + H / 2, &k2, &s2), 0);
    assert_int_equal(s2, s1);
    assert_memory_equal(k1.key, k2.key, SEAL_KEY_BYTES);
    assert_int_equal(epochkeys_acquire(ek, 0, t + H, &k3, &s3), 0);
    assert_int_equal(s3, 1001 * H);
    assert_memory_not_equal(k1.key, k3.key, SEAL_KEY_BYTES);
    assert_int_equal(epochkeys_count(ek), 2);
    /* A class the policy does not seal gets no key. */
    assert_int_equal(epochkeys_acquire(ek, 1, t, &got, &s2), CORE_E_INVALID);
    epochkeys_free(ek);

    /* Durable: a reopen finds both keys; no key is in the file in clear. */
    ek = open_store(f, 0);
    assert_int_equal(epochkeys_count(ek), 2);
    assert_int_equal(epochkeys_get(ek, 0, s1, &got), 0);
    assert_memory_equal(got.key, k1.key, SEAL_KEY_BYTES);
    assert_int_equal(epochkeys_get(ek, 0, s3, &got), 0);
    assert_memory_equal(got.key, k3.key, SEAL_KEY_BYTES);
    assert_int_equal(epochkeys_get(ek, 0, s1 + 1, &got), CORE_E_NOTFOUND);
    assert_int_equal(epochkeys_get(ek, 2, s1, &got), CORE_E_NOTFOUND);
    epochkeys_free(ek);
    struct core_buf b;
    core_buf_init(&b);
    assert_int_equal(core_read_file(f->path, 1 << 20, &b), 0);
    assert_null(memmem(b.data, b.len, k1.key, SEAL_KEY_BYTES));
    assert_null(memmem(b.data, b.len, k3.key, SEAL_KEY_BYTES));
    core_buf_dispose(&b);
}

static void test_expire(void **state)
{
    struct fixture *f = *state;
    struct epochkeys *ek = open_store(f, 0);
    struct seal_key k;
    int64_t s0, s1;
    int64_t ttl = 7 * 24 * H;
    assert_int_equal(epochkeys_acquire(ek, 0, 2000 * H, &k, &s0), 0);
    assert_int_equal(epochkeys_acquire(ek, 0, 2001 * H, &k, &s1), 0);
    size_t n = 99;
    /* A field ingested at the end of epoch 0 must live its TTL: not yet. */
    assert_int_equal(epochkeys_expire(ek, 2001 * H - 1 + ttl, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(epochkeys_count(ek), 2);
    /* The whole of epoch 0 lies beyond the TTL: its key goes, epoch 1's stays. */
    assert_int_equal(epochkeys_expire(ek, 2001 * H + ttl, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(epochkeys_get(ek, 0, s0, &k), CORE_E_NOTFOUND);
    assert_int_equal(epochkeys_get(ek, 0, s1, &k), 0);
    struct seal_key kept = k;
    epochkeys_free(ek);
    /* Gone from the file too. */
    ek = open_store(f, 0);
    assert_int_equal(epochkeys_count(ek), 1);
    assert_int_equal(epochkeys_get(ek, 0, s0, &k), CORE_E_NOTFOUND);
    assert_int_equal(epochkeys_get(ek, 0, s1, &k), 0);
    assert_memory_equal(k.key, kept.key, SEAL_KEY_BYTES);
    assert_int_equal(epochkeys_expire(ek, 3000 * H, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(epochkeys_count(ek), 0);
    epochkeys_free(ek);
}

static void test_tamper_and_wrong_key(void **state)
{
    struct fixture *f = *state;
    struct epochkeys *ek = open_store(f, 0);
    struct seal_key k;
    int64_t s;
    assert_int_equal(epochkeys_acquire(ek, 0, 5 * H, &k, &s), 0);
    epochkeys_free(ek);
    struct core_buf b;
    core_buf_init(&b);
    assert_int_equal(core_read_file(f->path, 1 << 20, &b), 0);
    struct epochkeys_options o;
    epochkeys_options_init(&o);
    o.path = f->path;
    o.data_key = &f->dk;
    for (size_t i = 0; i < b.len; i += 7) {
        b.data[i] ^= 0x10;
        assert_int_equal(core_write_file_atomic(f->path, b.data, b.len, 0600), 0);
        assert_int_equal(epochkeys_open(&o, &ek), CORE_E_CORRUPT);
        b.data[i] ^= 0x10;
    }
    /* Truncated. */
    assert_int_equal(core_write_file_atomic(f->path, b.data, b.len - 1, 0600), 0);
    assert_int_equal(epochkeys_open(&o, &ek), CORE_E_CORRUPT);
    /* Another data key. */
    assert_int_equal(core_write_file_atomic(f->path, b.data, b.len, 0600), 0);
    struct seal_key other = f->dk;
    other.key[0] ^= 1;
    o.data_key = &other;
    assert_int_equal(epochkeys_open(&o, &ek), CORE_E_CORRUPT);
    o.data_key = &f->dk;
    assert_int_equal(epochkeys_open(&o, &ek), 0);
    assert_int_equal(epochkeys_count(ek), 1);
    epochkeys_free(ek);
    core_buf_dispose(&b);
}

static void test_bounded(void **state)
{
    struct fixture *f = *state;
    struct epochkeys *ek = open_store(f, 2);
    struct seal_key k;
    int64_t s;
    assert_int_equal(epochkeys_acquire(ek, 0, 1 * H, &k, &s), 0);
    assert_int_equal(epochkeys_acquire(ek, 0, 2 * H, &k, &s), 0);
    assert_int_equal(epochkeys_acquire(ek, 0, 3 * H, &k, &s), CORE_E_FULL);
    assert_int_equal(epochkeys_count(ek), 2);
    epochkeys_free(ek);
    /* A smaller bound than the file holds refuses the open. */
    struct epochkeys_options o;
    epochkeys_options_init(&o);
    o.path = f->path;
    o.data_key = &f->dk;
    o.max_keys = 1;
    assert_int_equal(epochkeys_open(&o, &ek), CORE_E_FULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_epoch_length),
        cmocka_unit_test_setup_teardown(test_acquire_persist_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_and_wrong_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
