/* Pseudonyms are HMAC-SHA-256 (checked against libsodium's implementation) and the key file
 * is created 0600, reloaded identically and refused when others can read it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "privacy/privacy.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void reference(const uint8_t key[32], const char *prefix, const char *id, char out[33])
{
    crypto_auth_hmacsha256_state st;
    uint8_t mac[32];
    crypto_auth_hmacsha256_init(&st, key, 32);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)prefix, strlen(prefix));
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)id, strlen(id));
    crypto_auth_hmacsha256_final(&st, mac);
    core_hex(mac, 16, out);
}

static void test_matches_hmac_sha256(void **state)
{
    (void)state;
    assert_true(sodium_init() >= 0);
    for (int i = 0; i < 200; i++) {
        uint8_t bytes[32];
        randombytes_buf(bytes, sizeof bytes);
        struct privacy_key key;
        privacy_key_set(&key, bytes);
        char id[40], got[33], want[33];
        snprintf(id, sizeof id, "user-%d-%u", i, randombytes_random());
        privacy_pseudonym_user(&key, id, strlen(id), got);
        reference(bytes, "", id, want);
        assert_string_equal(got, want);
        privacy_pseudonym_anon(&key, id, strlen(id), got);
        reference(bytes, "anon:", id, want);
        assert_string_equal(got, want);
        privacy_key_dispose(&key);
    }
}

static void test_user_and_anon_differ(void **state)
{
    (void)state;
    uint8_t bytes[32] = {1, 2, 3};
    struct privacy_key key;
    privacy_key_set(&key, bytes);
    char u[33], a[33], u2[33];
    privacy_pseudonym_user(&key, "123", 3, u);
    privacy_pseudonym_anon(&key, "123", 3, a);
    privacy_pseudonym_user(&key, "123", 3, u2);
    assert_string_not_equal(u, a);
    assert_string_equal(u, u2);
    assert_int_equal(strlen(u), 32);
}

static void test_key_file_lifecycle(void **state)
{
    (void)state;
    char dir[] = "/tmp/rs-key-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/sub/pseudonym.key", dir);
    struct privacy_key k1, k2;
    bool created = false;
    assert_int_equal(privacy_key_load_or_create(path, &k1, &created), 0);
    assert_true(created);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(privacy_key_load_or_create(path, &k2, &created), 0);
    assert_false(created);
    assert_memory_equal(k1.bytes, k2.bytes, 32);
    char a[33], b[33];
    privacy_pseudonym_user(&k1, "x", 1, a);
    privacy_pseudonym_user(&k2, "x", 1, b);
    assert_string_equal(a, b);
    /* Readable by others: refused. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(privacy_key_load_or_create(path, &k2, &created), CORE_E_INVALID);
    /* Malformed: refused. */
    assert_int_equal(chmod(path, 0600), 0);
    FILE *f = fopen(path, "w");
    fputs("not hex\n", f);
    fclose(f);
    assert_int_equal(privacy_key_load_or_create(path, &k2, &created), CORE_E_INVALID);
    unlink(path);
    snprintf(path, sizeof path, "%s/sub", dir);
    rmdir(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_hmac_sha256),
        cmocka_unit_test(test_user_and_anon_differ),
        cmocka_unit_test(test_key_file_lifecycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
