/* The per-user key store: keys are created once, found by pseudonym and by id, survive a
 * reopen, are bounded, and a shred leaves neither the DEK nor the pseudonym in any file of the
 * store, in clear or inside any record that the data key opens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "privacy/userkeys.h"

#include <dirent.h>
#include <pthread.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void name_of(int i, char out[USERKEYS_NAME_BYTES + 1])
{
    snprintf(out, USERKEYS_NAME_BYTES + 1, "%032x", (unsigned)(i * 2654435761u));
}

static struct userkeys *open_store(const char *dir, const struct seal_key *dk, int64_t max)
{
    struct userkeys_options o;
    userkeys_options_init(&o);
    o.dir = dir;
    o.data_key = dk;
    o.max_users = max;
    struct userkeys *uk = NULL;
    assert_int_equal(userkeys_open(&o, &uk), 0);
    return uk;
}

/* Reads a store file the way its header documents it and checks that no byte sequence
 * needle appears in it, neither raw nor in any record's plaintext. */
static void assert_file_lacks(const char *path, const struct seal_key *dk, const void *needle,
                              size_t nlen)
{
    struct core_buf b;
    core_buf_init(&b);
    assert_int_equal(core_read_file(path, 1 << 26, &b), 0);
    assert_null(memmem(b.data, b.len, needle, nlen));
    assert_true(b.len >= 16);
    uint8_t ad[24];
    memcpy(ad, b.data, 16);
    size_t pos = 16;
    uint64_t seq = 0;
    while (pos + 4 <= b.len) {
        const uint8_t *p = (const uint8_t *)b.data + pos;
        uint32_t len =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        assert_true(pos + 4 + len <= b.len);
        for (int i = 0; i < 8; i++)
            ad[16 + i] = (uint8_t)(seq >> (8 * i));
        uint8_t *rec = (uint8_t *)b.data + pos + 4;
        assert_int_equal(seal_record_open(dk, ad, sizeof ad, rec, len), 0);
        assert_null(memmem(rec + SEAL_NONCE_BYTES, len - SEAL_OVERHEAD, needle, nlen));
        pos += 4 + len;
        seq++;
    }
    assert_int_equal(pos, b.len);
    core_buf_dispose(&b);
}

static void assert_store_lacks(const char *dir, const struct seal_key *dk, const void *needle,
                               size_t nlen)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    int files = 0;
    char path[512];
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        assert_file_lacks(path, dk, needle, nlen);
        files++;
    }
    closedir(d);
    assert_int_equal(files, 2); /* snapshot and journal, no leftovers */
}

static void test_create_lookup_persist_shred(void **state)
{
    (void)state;
    char dir[] = "/tmp/userkeys-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct seal_key dk;
    memset(&dk, 0, sizeof dk);
    memset(dk.key, 0x42, sizeof dk.key);
    struct userkeys *uk = open_store(dir, &dk, 100000);

    /* 3000 users in batches of 100, one journal append each. */
    enum { N = 3000 };
    static char names[N][USERKEYS_NAME_BYTES + 1];
    static struct seal_key keys[N];
    for (int i = 0; i < N; i++)
        name_of(i, names[i]);
    for (int i = 0; i < N; i += 100) {
        const char *batch[100];
        for (int j = 0; j < 100; j++)
            batch[j] = names[i + j];
        assert_int_equal(userkeys_acquire(uk, batch, 100, &keys[i]), 0);
    }
    assert_int_equal(userkeys_count(uk), N);
    /* Acquiring again returns the same keys, creates nothing. */
    struct seal_key again;
    const char *one = names[17];
    assert_int_equal(userkeys_acquire(uk, &one, 1, &again), 0);
    assert_memory_equal(&again, &keys[17], sizeof again);
    assert_false(seal_id_is_data(again.id));
    assert_memory_not_equal(keys[17].key, keys[18].key, SEAL_KEY_BYTES);
    assert_int_equal(userkeys_count(uk), N);
    /* By id; the reserved id is the data key; an unknown id is not found. */
    struct seal_key byid;
    assert_int_equal(userkeys_find_id(uk, keys[2999].id, &byid), 0);
    assert_memory_equal(byid.key, keys[2999].key, SEAL_KEY_BYTES);
    assert_int_equal(userkeys_find_id(uk, SEAL_ID_DATA, &byid), 0);
    assert_memory_equal(byid.key, dk.key, SEAL_KEY_BYTES);
    uint8_t unknown[SEAL_ID_BYTES];
    memset(unknown, 0xEE, sizeof unknown);
    assert_int_equal(userkeys_find_id(uk, unknown, &byid), CORE_E_NOTFOUND);
    userkeys_free(uk);

    /* Reopen: every key is back. */
    uk = open_store(dir, &dk, 100000);
    assert_int_equal(userkeys_count(uk), N);
    for (int i = 0; i < N; i += 7) {
        struct seal_key k;
        assert_int_equal(userkeys_get(uk, names[i], &k), 0);
        assert_memory_equal(&k, &keys[i], sizeof k);
    }
    /* Shred user 5 (its key in the journal; the shred compacts into a snapshot) and then
     * user 2999 (by then in the snapshot). */
    int victims[2] = {5, 2999};
    for (int v = 0; v < 2; v++) {
        int i = victims[v];
        assert_int_equal(userkeys_shred(uk, names[i]), 0);
        assert_int_equal(userkeys_shred(uk, names[i]), CORE_E_NOTFOUND);
        struct seal_key k;
        assert_int_equal(userkeys_get(uk, names[i], &k), CORE_E_NOTFOUND);
        assert_int_equal(userkeys_find_id(uk, keys[i].id, &k), CORE_E_NOTFOUND);
        assert_store_lacks(dir, &dk, keys[i].key, SEAL_KEY_BYTES);
        assert_store_lacks(dir, &dk, names[i], USERKEYS_NAME_BYTES);
        assert_store_lacks(dir, &dk, keys[i].id, SEAL_ID_BYTES);
    }
    /* The control: a live user's DEK is in a record (so the scan above can see one). */
    struct core_buf b;
    core_buf_init(&b);
    userkeys_free(uk);
    uk = open_store(dir, &dk, 100000);
    assert_int_equal(userkeys_count(uk), N - 2);
    struct seal_key k;
    assert_int_equal(userkeys_get(uk, names[6], &k), 0);
    assert_memory_equal(&k, &keys[6], sizeof k);
    assert_int_equal(userkeys_get(uk, names[5], &k), CORE_E_NOTFOUND);
    /* A user returning after the shred gets a new, different key. */
    one = names[5];
    assert_int_equal(userkeys_acquire(uk, &one, 1, &k), 0);
    assert_memory_not_equal(k.key, keys[5].key, SEAL_KEY_BYTES);
    userkeys_free(uk);
    core_buf_dispose(&b);
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_bounds_wrong_key_and_damage(void **state)
{
    (void)state;
    char dir[] = "/tmp/userkeys-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct seal_key dk, wrong;
    memset(&dk, 0, sizeof dk);
    memset(dk.key, 0x11, sizeof dk.key);
    wrong = dk;
    wrong.key[0] ^= 1;
    struct userkeys *uk = open_store(dir, &dk, 3);
    char names[5][USERKEYS_NAME_BYTES + 1];
    const char *ptrs[5];
    struct seal_key keys[5];
    for (int i = 0; i < 5; i++) {
        name_of(i, names[i]);
        ptrs[i] = names[i];
    }
    assert_int_equal(userkeys_acquire(uk, ptrs, 2, keys), 0);
    /* All or nothing: 2 new users do not fit beside 2 stored. */
    assert_int_equal(userkeys_acquire(uk, ptrs + 2, 2, keys), CORE_E_FULL);
    assert_int_equal(userkeys_count(uk), 2);
    assert_int_equal(userkeys_acquire(uk, ptrs + 2, 1, keys + 2), 0);
    assert_int_equal(userkeys_acquire(uk, ptrs + 3, 1, keys + 3), CORE_E_FULL);
    userkeys_free(uk);

    /* The wrong data key cannot open the store. */
    struct userkeys_options o;
    userkeys_options_init(&o);
    o.dir = dir;
    o.data_key = &wrong;
    assert_int_equal(userkeys_open(&o, &uk), CORE_E_CORRUPT);
    /* Fewer allowed users than stored: a clean refusal. */
    o.data_key = &dk;
    o.max_users = 2;
    assert_int_equal(userkeys_open(&o, &uk), CORE_E_FULL);

    /* A flipped byte in the first journal record (not the last): refused. */
    char path[512];
    snprintf(path, sizeof path, "%s/journal", dir);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 16 + 4 + 30, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 16 + 4 + 30, SEEK_SET);
    fputc(c ^ 0x04, f);
    fclose(f);
    o.max_users = 10;
    assert_int_equal(userkeys_open(&o, &uk), CORE_E_CORRUPT);
    /* Repaired, then the last record torn: cut off, the others load. */
    f = fopen(path, "r+b");
    fseek(f, 16 + 4 + 30, SEEK_SET);
    fputc(c, f);
    fclose(f);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size - 5), 0);
    assert_int_equal(userkeys_open(&o, &uk), 0);
    assert_int_equal(userkeys_count(uk), 2);
    userkeys_free(uk);
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* Threads acquiring overlapping sets of new users at once: every user ends up with exactly
 * one key, the same for every thread, and the store on disk agrees after a reopen. */
struct racer {
    struct userkeys *uk;
    int id;
    struct seal_key keys[400];
};

static void *race(void *arg)
{
    struct racer *r = arg;
    char names[400][USERKEYS_NAME_BYTES + 1];
    const char *ptrs[400];
    for (int i = 0; i < 400; i++) {
        name_of((i * 7 + r->id * 13) % 400, names[i]); /* every thread: all 400, own order */
        ptrs[i] = names[i];
    }
    for (int i = 0; i < 400; i += 20)
        assert_int_equal(userkeys_acquire(r->uk, ptrs + i, 20, r->keys + i), 0);
    /* Reorder to user index for comparison. */
    static _Thread_local struct seal_key tmp[400];
    for (int i = 0; i < 400; i++)
        tmp[(i * 7 + r->id * 13) % 400] = r->keys[i];
    memcpy(r->keys, tmp, sizeof tmp);
    return NULL;
}

static void test_concurrent_acquire(void **state)
{
    (void)state;
    char dir[] = "/tmp/userkeys-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct seal_key dk = {.key = {9}};
    struct userkeys *uk = open_store(dir, &dk, 1000);
    enum { T = 4 };
    static struct racer rs[T];
    pthread_t th[T];
    for (int t = 0; t < T; t++) {
        rs[t].uk = uk;
        rs[t].id = t;
        assert_int_equal(pthread_create(&th[t], NULL, race, &rs[t]), 0);
    }
    for (int t = 0; t < T; t++)
        pthread_join(th[t], NULL);
    assert_int_equal(userkeys_count(uk), 400);
    for (int t = 1; t < T; t++)
        assert_memory_equal(rs[t].keys, rs[0].keys, sizeof rs[0].keys);
    userkeys_free(uk);
    uk = open_store(dir, &dk, 1000);
    assert_int_equal(userkeys_count(uk), 400);
    for (int i = 0; i < 400; i++) {
        char name[USERKEYS_NAME_BYTES + 1];
        struct seal_key k;
        name_of(i, name);
        assert_int_equal(userkeys_get(uk, name, &k), 0);
        assert_memory_equal(&k, &rs[0].keys[i], sizeof k);
    }
    userkeys_free(uk);
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_lookup_persist_shred),
        cmocka_unit_test(test_bounds_wrong_key_and_damage),
        cmocka_unit_test(test_concurrent_acquire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
