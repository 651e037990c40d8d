/* Sealed records, lines and files: round trips, and every kind of damage is refused (wrong
 * key, wrong associated data, a flipped bit anywhere, truncation, extension, reordering). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "privacy/seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void make_key(struct seal_key *k, uint8_t fill)
{
    memset(k->id, 0, sizeof k->id);
    memset(k->key, fill, sizeof k->key);
}

static void test_record_round_trip_and_damage(void **state)
{
    (void)state;
    assert_int_equal(seal_init(), 0);
    struct seal_key k, other;
    make_key(&k, 1);
    make_key(&other, 2);
    const char plain[] = "0123456789abcdef0123456789abcdef {\"itemId\":\"product456\"}";
    size_t n = sizeof plain - 1, sn = n + SEAL_OVERHEAD;
    const char ad[] = "partition 3 offset 17";
    uint8_t sealed[256], work[256];
    seal_record(&k, ad, strlen(ad), plain, n, sealed);
    assert_null(memmem(sealed, sn, "product456", 10)); /* nothing in clear */

    memcpy(work, sealed, sn);
    assert_int_equal(seal_record_open(&k, ad, strlen(ad), work, sn), 0);
    assert_memory_equal(work + SEAL_NONCE_BYTES, plain, n);

    /* Two seals of the same plaintext differ (random nonce). */
    uint8_t again[256];
    seal_record(&k, ad, strlen(ad), plain, n, again);
    assert_memory_not_equal(again, sealed, sn);

    memcpy(work, sealed, sn);
    assert_int_equal(seal_record_open(&other, ad, strlen(ad), work, sn), CORE_E_CORRUPT);
    memcpy(work, sealed, sn);
    assert_int_equal(seal_record_open(&k, "partition 3 offset 18", 21, work, sn), CORE_E_CORRUPT);
    /* Every single flipped byte: nonce, ciphertext and tag. */
    for (size_t i = 0; i < sn; i++) {
        memcpy(work, sealed, sn);
        work[i] ^= 0x01;
        assert_int_equal(seal_record_open(&k, ad, strlen(ad), work, sn), CORE_E_CORRUPT);
    }
    /* A flipped bit of the associated data. */
    char bad_ad[sizeof ad];
    memcpy(bad_ad, ad, sizeof ad);
    bad_ad[5] ^= 0x20;
    memcpy(work, sealed, sn);
    assert_int_equal(seal_record_open(&k, bad_ad, strlen(bad_ad), work, sn), CORE_E_CORRUPT);
    /* Truncation, and too short to hold nonce and tag. */
    memcpy(work, sealed, sn);
    assert_int_equal(seal_record_open(&k, ad, strlen(ad), work, sn - 1), CORE_E_CORRUPT);
    assert_int_equal(seal_record_open(&k, ad, strlen(ad), work, SEAL_OVERHEAD - 1), CORE_E_CORRUPT);
    /* An empty plaintext still authenticates. */
    seal_record(&k, ad, strlen(ad), "", 0, work);
    assert_int_equal(seal_record_open(&k, ad, strlen(ad), work, SEAL_OVERHEAD), 0);
}

/* Nonces from the bulk pool: all distinct across refills, and the records open. */
static void test_in_place_with_nonce_pool(void **state)
{
    (void)state;
    struct seal_key k;
    make_key(&k, 5);
    struct seal_nonces nn;
    seal_nonces_init(&nn);
    enum { N = 500 };
    static uint8_t recs[N][SEAL_OVERHEAD + 8];
    for (int i = 0; i < N; i++) {
        memcpy(recs[i] + SEAL_NONCE_BYTES, "12345678", 8);
        seal_record_in_place(&k, "ad", 2, recs[i], 8, &nn);
        assert_false(memcmp(recs[i], (uint8_t[SEAL_NONCE_BYTES]){0}, SEAL_NONCE_BYTES) == 0);
    }
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            assert_memory_not_equal(recs[i], recs[j], SEAL_NONCE_BYTES);
    for (int i = 0; i < N; i++) {
        assert_int_equal(seal_record_open(&k, "ad", 2, recs[i], sizeof recs[i]), 0);
        assert_memory_equal(recs[i] + SEAL_NONCE_BYTES, "12345678", 8);
    }
}

static void test_line_round_trip_and_damage(void **state)
{
    (void)state;
    struct seal_key k;
    make_key(&k, 7);
    struct core_buf line, out;
    core_buf_init(&line);
    core_buf_init(&out);
    const char plain[] = "{\"id\":1,\"event\":{\"userId\":\"alice\"}}";
    seal_line(&k, "deadletters/1 line 0", plain, strlen(plain), &line);
    assert_null(memchr(line.data, '\n', line.len));
    assert_null(strstr(line.data, "alice"));
    assert_int_equal(seal_line_open(&k, "deadletters/1 line 0", line.data, line.len, &out), 0);
    assert_int_equal(out.len, strlen(plain));
    assert_memory_equal(out.data, plain, out.len);
    core_buf_reset(&out);
    assert_int_equal(seal_line_open(&k, "deadletters/1 line 1", line.data, line.len, &out),
                     CORE_E_CORRUPT);
    for (size_t i = 0; i < line.len; i++) {
        char saved = line.data[i];
        line.data[i] = saved == 'A' ? 'B' : 'A';
        assert_int_equal(seal_line_open(&k, "deadletters/1 line 0", line.data, line.len, &out),
                         CORE_E_CORRUPT);
        line.data[i] = saved;
    }
    assert_int_equal(seal_line_open(&k, "deadletters/1 line 0", line.data, line.len - 2, &out),
                     CORE_E_CORRUPT);
    assert_int_equal(seal_line_open(&k, "deadletters/1 line 0", "!!!", 3, &out), CORE_E_CORRUPT);
    assert_int_equal(out.len, 0);
    core_buf_dispose(&line);
    core_buf_dispose(&out);
}

static void test_file_round_trip_and_damage(void **state)
{
    (void)state;
    struct seal_key k, other;
    make_key(&k, 9);
    make_key(&other, 10);
    struct core_buf img, out;
    core_buf_init(&img);
    core_buf_init(&out);
    /* Three chunks (64 KiB each): reordering and dropping chunks become possible to try. */
    size_t n = 150000;
    uint8_t *plain = malloc(n);
    for (size_t i = 0; i < n; i++)
        plain[i] = (uint8_t)(i * 7 + i / 251);
    seal_file(&k, "checkpoint 1 p0.snap", plain, n, &img);
    assert_int_equal(img.len, seal_file_size(n));
    assert_int_equal(seal_file_open(&k, "checkpoint 1 p0.snap", img.data, img.len, &out), 0);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, plain, n);

    assert_int_equal(seal_file_open(&other, "checkpoint 1 p0.snap", img.data, img.len, &out),
                     CORE_E_CORRUPT);
    assert_int_equal(seal_file_open(&k, "checkpoint 1 p1.snap", img.data, img.len, &out),
                     CORE_E_CORRUPT);
    /* Flipped bytes at many places (magic, header, lengths, ciphertext, tags). */
    for (size_t i = 0; i < img.len; i += 997) {
        img.data[i] ^= 0x10;
        assert_int_equal(seal_file_open(&k, "checkpoint 1 p0.snap", img.data, img.len, &out),
                         CORE_E_CORRUPT);
        img.data[i] ^= 0x10;
    }
    /* Truncation at a chunk boundary (only whole chunks left: FINAL missing) and inside. */
    size_t chunk = 4 + 65536 + 17, first = 8 + 24;
    assert_int_equal(seal_file_open(&k, "checkpoint 1 p0.snap", img.data, first + 2 * chunk, &out),
                     CORE_E_CORRUPT);
    assert_int_equal(seal_file_open(&k, "checkpoint 1 p0.snap", img.data, img.len - 1, &out),
                     CORE_E_CORRUPT);
    /* Bytes appended after the final chunk. */
    core_buf_putc(&img, 'x');
    assert_int_equal(seal_file_open(&k, "checkpoint 1 p0.snap", img.data, img.len, &out),
                     CORE_E_CORRUPT);
    img.len--;
    /* Swapping the first two chunks. */
    uint8_t *tmp = malloc(chunk);
    memcpy(tmp, img.data + first, chunk);
    memmove(img.data + first, img.data + first + chunk, chunk);
    memcpy(img.data + first + chunk, tmp, chunk);
    assert_int_equal(seal_file_open(&k, "checkpoint 1 p0.snap", img.data, img.len, &out),
                     CORE_E_CORRUPT);
    assert_int_equal(out.len, 0);
    /* The empty file. */
    seal_file(&k, "e", "", 0, &img);
    assert_int_equal(seal_file_open(&k, "e", img.data, img.len, &out), 0);
    assert_int_equal(out.len, 0);
    free(tmp);
    free(plain);
    core_buf_dispose(&img);
    core_buf_dispose(&out);
}

static void test_data_key_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/seal-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/privacy/data.key", dir);
    struct seal_key k1, k2;
    bool created = false;
    assert_int_equal(seal_data_key_load_or_create(path, &k1, &created), 0);
    assert_true(created);
    assert_true(seal_id_is_data(k1.id));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(seal_data_key_load_or_create(path, &k2, &created), 0);
    assert_false(created);
    assert_memory_equal(k1.key, k2.key, SEAL_KEY_BYTES);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(seal_data_key_load_or_create(path, &k2, &created), CORE_E_INVALID);
    unlink(path);
    snprintf(path, sizeof path, "%s/privacy", dir);
    rmdir(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_round_trip_and_damage),
        cmocka_unit_test(test_in_place_with_nonce_pool),
        cmocka_unit_test(test_line_round_trip_and_damage),
        cmocka_unit_test(test_file_round_trip_and_damage),
        cmocka_unit_test(test_data_key_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
