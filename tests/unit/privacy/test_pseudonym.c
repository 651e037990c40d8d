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

/* Secret versions: the old single-secret file is version 1; rotation adds a version (0600,
 * old ones kept, the newest used); retirement drops the oldest only after the grace period. */
static void test_key_versions(void **state)
{
    (void)state;
    char dir[] = "/tmp/rs-ring-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/pseudonym.key", dir);
    uint32_t v = 0;
    assert_int_equal(privacy_keyring_rotate(path, 1000, &v), CORE_E_NOTFOUND);
    struct privacy_key k1;
    bool created = false;
    assert_int_equal(privacy_key_load_or_create(path, &k1, &created), 0);
    assert_true(created);
    struct privacy_keyring ring;
    assert_int_equal(privacy_keyring_load(path, &ring), 0);
    assert_int_equal(ring.n, 1);
    assert_int_equal(ring.version[0], 1);
    assert_memory_equal(ring.key[0].bytes, k1.bytes, 32);

    assert_int_equal(privacy_keyring_rotate(path, 5000, &v), 0);
    assert_int_equal(v, 2);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(privacy_keyring_load(path, &ring), 0);
    assert_int_equal(ring.n, 2);
    assert_int_equal(ring.version[0], 2);
    assert_int_equal(ring.version[1], 1);
    assert_int_equal(ring.created_ms[0], 5000);
    assert_memory_equal(ring.key[1].bytes, k1.bytes, 32); /* the old version is kept */
    assert_memory_not_equal(ring.key[0].bytes, k1.bytes, 32);
    /* The newest is what new events use. */
    struct privacy_key cur;
    assert_int_equal(privacy_key_load_or_create(path, &cur, &created), 0);
    assert_false(created);
    assert_memory_equal(cur.bytes, ring.key[0].bytes, 32);
    char ps[PRIVACY_KEY_VERSIONS_MAX][33], want[33];
    assert_int_equal(privacy_keyring_pseudonyms(&ring, false, "u1", 2, ps), 2);
    privacy_pseudonym_user(&k1, "u1", 2, want);
    assert_string_equal(ps[1], want);
    privacy_pseudonym_user(&cur, "u1", 2, want);
    assert_string_equal(ps[0], want);

    assert_int_equal(privacy_keyring_rotate(path, 9000, &v), 0);
    assert_int_equal(v, 3);
    /* Version 2 superseded version 1 at 5000: not yet past a grace of 10 s at 9000. */
    assert_int_equal(privacy_keyring_retire(path, 10000, 9000, &v), CORE_E_TIMEOUT);
    assert_int_equal(privacy_keyring_retire(path, 10000, 15000, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(privacy_keyring_load(path, &ring), 0);
    assert_int_equal(ring.n, 2);
    assert_int_equal(ring.version[1], 2);
    assert_int_equal(privacy_keyring_retire(path, 0, 15000, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(privacy_keyring_retire(path, 0, 15000, &v), CORE_E_NOTFOUND);
    assert_int_equal(privacy_keyring_load(path, &ring), 0);
    assert_int_equal(ring.n, 1);
    assert_int_equal(ring.version[0], 3);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* Versions out of order, or group-readable: refused. */
    FILE *f = fopen(path, "w");
    fprintf(f, "2 0 %064d\n1 0 %064d\n", 0, 0);
    fclose(f);
    assert_int_equal(privacy_keyring_load(path, &ring), CORE_E_INVALID);
    f = fopen(path, "w");
    fprintf(f, "1 0 %064d\n2 7 %064d\n", 0, 1);
    fclose(f);
    assert_int_equal(privacy_keyring_load(path, &ring), 0);
    assert_int_equal(ring.n, 2);
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(privacy_keyring_load(path, &ring), CORE_E_INVALID);
    privacy_keyring_dispose(&ring);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_hmac_sha256),
        cmocka_unit_test(test_user_and_anon_differ),
        cmocka_unit_test(test_key_file_lifecycle),
        cmocka_unit_test(test_key_versions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
