/* API keys: the key file keeps hashes only (never a secret), lookups compare in constant time
 * and honour roles, origins and revocation, the store re-reads a changed file (keeping
 * buckets) and refuses malformed ones, bounds hold, and the token bucket refills at its rate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "privacy/apikey.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEC 1000000000LL

struct fixture {
    char dir[64];
    char path[128];
    char admin[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/rs-apikey-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/privacy/apikeys.json", f->dir);
    snprintf(f->admin, sizeof f->admin, "%s/privacy/admin.key", f->dir);
    assert_true(sodium_init() >= 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    chmod(path, mode);
}

static char *slurp(const char *path)
{
    struct core_buf b;
    core_buf_init(&b);
    assert_int_equal(core_read_file(path, 1 << 24, &b), 0);
    return b.data;
}

static enum apikey_verdict check(struct apikey_store *s, const char *key, enum apikey_role need,
                                 const char *origin, int64_t now)
{
    char id[APIKEY_ID_LEN + 1];
    int retry = 0;
    return apikey_store_check(s, key, key ? strlen(key) : 0, need, false, origin, now, id, &retry);
}

static void test_first_start_and_hash_at_rest(void **state)
{
    struct fixture *f = *state;
    struct apikey_store *s = NULL;
    bool created = false;
    assert_int_equal(apikey_store_open(f->path, f->admin, &s, &created), 0);
    assert_true(created);
    struct stat st;
    assert_int_equal(stat(f->admin, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *admin = slurp(f->admin);
    admin[APIKEY_TEXT_LEN] = '\0'; /* drop the newline */
    assert_int_equal(strlen(admin), APIKEY_TEXT_LEN);
    char *file = slurp(f->path);
    assert_null(strstr(file, admin + 13)); /* the secret is not in the key file */
    char id[APIKEY_ID_LEN + 1];
    memcpy(id, admin + 4, APIKEY_ID_LEN);
    id[APIKEY_ID_LEN] = '\0';
    assert_non_null(strstr(file, id)); /* the id is */
    int64_t t = 1 * SEC;
    assert_int_equal(check(s, admin, APIKEY_ROLE_ADMIN, NULL, t), APIKEY_OK);
    assert_int_equal(check(s, admin, APIKEY_ROLE_READ, NULL, t), APIKEY_OK);
    assert_int_equal(check(s, admin, APIKEY_ROLE_INGEST, NULL, t), APIKEY_OK);
    /* A second open finds the file and creates nothing. */
    struct apikey_store *s2 = NULL;
    assert_int_equal(apikey_store_open(f->path, f->admin, &s2, &created), 0);
    assert_false(created);
    assert_int_equal(apikey_store_active(s2), 1);
    apikey_store_free(s2);
    apikey_store_free(s);
    free(admin);
    free(file);
}

static void test_roles_origins_and_bad_keys(void **state)
{
    struct fixture *f = *state;
    struct apikey_list l;
    apikey_list_init(&l);
    char ingest[APIKEY_TEXT_LEN + 1], read[APIKEY_TEXT_LEN + 1], err[256];
    assert_int_equal(apikey_list_add(&l, APIKEY_ROLE_INGEST, "web", "https://a.example", 0, 0,
                                     ingest, err, sizeof err),
                     0);
    assert_int_equal(apikey_list_add(&l, APIKEY_ROLE_READ, NULL, NULL, 0, 0, read, err, sizeof err),
                     0);
    assert_int_equal(core_mkdirs(f->dir, 0700), 0);
    char pdir[96];
    snprintf(pdir, sizeof pdir, "%s/privacy", f->dir);
    assert_int_equal(core_mkdirs(pdir, 0700), 0);
    assert_int_equal(apikey_list_save(f->path, &l), 0);
    char *file = slurp(f->path);
    assert_null(strstr(file, ingest + 13));
    assert_null(strstr(file, read + 13));
    free(file);
    struct apikey_store *s = NULL;
    bool created;
    assert_int_equal(apikey_store_open(f->path, f->admin, &s, &created), 0);
    assert_false(created);
    assert_int_equal(access(f->admin, F_OK), -1); /* no admin key made for an existing file */
    int64_t t = SEC;
    assert_int_equal(check(s, ingest, APIKEY_ROLE_INGEST, NULL, t), APIKEY_OK);
    assert_int_equal(check(s, ingest, APIKEY_ROLE_INGEST, "https://a.example", t), APIKEY_OK);
    assert_int_equal(check(s, ingest, APIKEY_ROLE_INGEST, "https://b.example", t),
                     APIKEY_BAD_ORIGIN);
    assert_int_equal(check(s, ingest, APIKEY_ROLE_READ, NULL, t), APIKEY_WRONG_ROLE);
    assert_int_equal(check(s, ingest, APIKEY_ROLE_ADMIN, NULL, t), APIKEY_WRONG_ROLE);
    assert_int_equal(check(s, read, APIKEY_ROLE_READ, NULL, t), APIKEY_OK);
    assert_int_equal(check(s, read, APIKEY_ROLE_INGEST, NULL, t), APIKEY_WRONG_ROLE);
    assert_int_equal(check(s, read, APIKEY_ROLE_NONE, NULL, t), APIKEY_OK);
    /* exact_role: a read key is not an ingest key even where admin would not be either. */
    char id[APIKEY_ID_LEN + 1];
    int retry;
    assert_int_equal(
        apikey_store_check(s, read, strlen(read), APIKEY_ROLE_READ, true, NULL, t, id, &retry),
        APIKEY_OK);
    assert_int_equal(memcmp(id, read + 4, APIKEY_ID_LEN), 0);
    /* Wrong secret with a real id, truncated, padded, other prefix, absent. */
    char bad[APIKEY_TEXT_LEN + 2];
    memcpy(bad, read, sizeof read);
    bad[APIKEY_TEXT_LEN - 1] = bad[APIKEY_TEXT_LEN - 1] == '0' ? '1' : '0';
    assert_int_equal(check(s, bad, APIKEY_ROLE_READ, NULL, t), APIKEY_UNAUTHENTICATED);
    bad[APIKEY_TEXT_LEN - 1] = '\0';
    assert_int_equal(check(s, bad, APIKEY_ROLE_READ, NULL, t), APIKEY_UNAUTHENTICATED);
    snprintf(bad, sizeof bad, "%s0", read);
    assert_int_equal(check(s, bad, APIKEY_ROLE_READ, NULL, t), APIKEY_UNAUTHENTICATED);
    memcpy(bad, read, sizeof read);
    bad[0] = 'x';
    assert_int_equal(check(s, bad, APIKEY_ROLE_READ, NULL, t), APIKEY_UNAUTHENTICATED);
    assert_int_equal(check(s, NULL, APIKEY_ROLE_READ, NULL, t), APIKEY_UNAUTHENTICATED);
    apikey_store_free(s);
    apikey_list_dispose(&l);
}

static void test_reload_revoke_and_buckets(void **state)
{
    struct fixture *f = *state;
    struct apikey_store *s = NULL;
    bool created;
    assert_int_equal(apikey_store_open(f->path, f->admin, &s, &created), 0);
    struct apikey_list l;
    apikey_list_init(&l);
    char err[256], key[APIKEY_TEXT_LEN + 1];
    assert_int_equal(apikey_list_load(f->path, &l, err, sizeof err), 0);
    assert_int_equal(
        apikey_list_add(&l, APIKEY_ROLE_READ, "limited", NULL, 1, 2, key, err, sizeof err), 0);
    assert_int_equal(apikey_list_save(f->path, &l), 0);
    int64_t t0 = core_mono_ns(), t = t0 + 2 * SEC;
    /* Not seen before the next check (once a second of the caller's clock)... */
    assert_int_equal(check(s, key, APIKEY_ROLE_READ, NULL, t0), APIKEY_UNAUTHENTICATED);
    /* ...then picked up. Burst 2 at 1/s: two pass, the third waits a second. */
    assert_int_equal(check(s, key, APIKEY_ROLE_READ, NULL, t), APIKEY_OK);
    /* Its id with another secret, right after the key passed (the thread keeps the hash of the
     * last key text it checked): refused, and it takes nothing from the bucket. */
    char forged[APIKEY_TEXT_LEN + 1];
    memcpy(forged, key, sizeof forged);
    forged[APIKEY_TEXT_LEN - 1] = forged[APIKEY_TEXT_LEN - 1] == '0' ? '1' : '0';
    assert_int_equal(check(s, forged, APIKEY_ROLE_READ, NULL, t), APIKEY_UNAUTHENTICATED);
    assert_int_equal(check(s, key, APIKEY_ROLE_READ, NULL, t), APIKEY_OK);
    char id[APIKEY_ID_LEN + 1];
    int retry = 0;
    assert_int_equal(
        apikey_store_check(s, key, strlen(key), APIKEY_ROLE_READ, false, NULL, t, id, &retry),
        APIKEY_LIMITED);
    assert_int_equal(retry, 1);
    /* A reload (another key added) keeps the bucket of this one: still empty. */
    char other[APIKEY_TEXT_LEN + 1];
    assert_int_equal(
        apikey_list_add(&l, APIKEY_ROLE_INGEST, NULL, NULL, 0, 0, other, err, sizeof err), 0);
    assert_int_equal(apikey_list_save(f->path, &l), 0);
    t += SEC / 2 + SEC / 2;
    assert_int_equal(check(s, other, APIKEY_ROLE_INGEST, NULL, t), APIKEY_OK);
    assert_int_equal(check(s, key, APIKEY_ROLE_READ, NULL, t), APIKEY_OK); /* refilled 1 */
    assert_int_equal(check(s, key, APIKEY_ROLE_READ, NULL, t), APIKEY_LIMITED);
    /* Revoked: 401 after the next reload. */
    char kid[APIKEY_ID_LEN + 1];
    memcpy(kid, key + 4, APIKEY_ID_LEN);
    kid[APIKEY_ID_LEN] = '\0';
    assert_int_equal(apikey_list_revoke(&l, kid, 1234), 0);
    assert_int_equal(apikey_list_revoke(&l, kid, 1234), CORE_E_EXISTS);
    assert_int_equal(apikey_list_revoke(&l, "00000000", 1234), CORE_E_NOTFOUND);
    assert_int_equal(apikey_list_save(f->path, &l), 0);
    t += 5 * SEC;
    assert_int_equal(check(s, key, APIKEY_ROLE_READ, NULL, t), APIKEY_UNAUTHENTICATED);
    assert_int_equal(apikey_store_active(s), 2);
    /* A malformed file is refused on reload: the keys loaded before stay. */
    write_file(f->path, "{\"version\":1,\"keys\":[", 0600);
    t += 5 * SEC;
    assert_int_equal(check(s, other, APIKEY_ROLE_INGEST, NULL, t), APIKEY_OK);
    /* Listing never shows hashes. */
    struct core_buf out;
    core_buf_init(&out);
    apikey_list_json(&l, &out);
    assert_null(strstr(out.data, "blake2b"));
    assert_null(strstr(out.data, key + 13));
    assert_non_null(strstr(out.data, "\"limited\""));
    core_buf_dispose(&out);
    apikey_list_dispose(&l);
    apikey_store_free(s);
}

static void test_malformed_files_refused(void **state)
{
    struct fixture *f = *state;
    char pdir[96];
    snprintf(pdir, sizeof pdir, "%s/privacy", f->dir);
    assert_int_equal(core_mkdirs(pdir, 0700), 0);
    const char *hash = "0000000000000000000000000000000000000000000000000000000000000000";
    char good_key[256];
    snprintf(good_key, sizeof good_key,
             "{\"id\":\"0123abcd\",\"role\":\"read\",\"created\":1,\"blake2b\":\"%s\"}", hash);
    struct {
        const char *doc;
        int rc;
    } cases[] = {
        {"", CORE_E_PARSE},
        {"{\"version\":1,\"keys\":[]} x", CORE_E_PARSE},
        {"[]", CORE_E_INVALID},
        {"{\"version\":2,\"keys\":[]}", CORE_E_INVALID},
        {"{\"version\":1,\"keys\":[{\"id\":\"0123abcd\",\"role\":\"root\",\"created\":1}]}",
         CORE_E_INVALID},
        {"{\"version\":1,\"keys\":[{\"id\":\"0123ABCD\",\"role\":\"read\",\"created\":1}]}",
         CORE_E_INVALID},
        {"{\"version\":1,\"keys\":[{\"id\":\"0123abcd\",\"role\":\"read\",\"created\":1,"
         "\"blake2b\":\"abc\"}]}",
         CORE_E_INVALID},
    };
    struct apikey_list l;
    apikey_list_init(&l);
    char err[512];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_file(f->path, cases[i].doc, 0600);
        assert_int_equal(apikey_list_load(f->path, &l, err, sizeof err), cases[i].rc);
        assert_true(err[0] != '\0');
        assert_int_equal(l.n, 0);
    }
    char doc[1024];
    snprintf(doc, sizeof doc, "{\"version\":1,\"keys\":[%s,%s]}", good_key, good_key);
    write_file(f->path, doc, 0600);
    assert_int_equal(apikey_list_load(f->path, &l, err, sizeof err), CORE_E_INVALID);
    assert_non_null(strstr(err, "twice"));
    snprintf(doc, sizeof doc, "{\"version\":1,\"keys\":[%s]}", good_key);
    write_file(f->path, doc, 0644); /* readable by others */
    assert_int_equal(apikey_list_load(f->path, &l, err, sizeof err), CORE_E_INVALID);
    assert_non_null(strstr(err, "chmod 600"));
    struct apikey_store *s = NULL;
    bool created;
    assert_int_equal(apikey_store_open(f->path, f->admin, &s, &created), CORE_E_INVALID);
    assert_null(s);
    chmod(f->path, 0600);
    assert_int_equal(apikey_list_load(f->path, &l, err, sizeof err), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.keys[0].role, APIKEY_ROLE_READ);
    apikey_list_dispose(&l);
}

static void test_bounds(void **state)
{
    struct fixture *f = *state;
    struct apikey_list l;
    apikey_list_init(&l);
    char key[APIKEY_TEXT_LEN + 1], err[256];
    for (int i = 0; i < APIKEY_MAX; i++)
        assert_int_equal(
            apikey_list_add(&l, APIKEY_ROLE_INGEST, NULL, NULL, 0, 0, key, err, sizeof err), 0);
    assert_int_equal(
        apikey_list_add(&l, APIKEY_ROLE_INGEST, NULL, NULL, 0, 0, key, err, sizeof err),
        CORE_E_FULL);
    assert_non_null(strstr(err, "10000"));
    /* Ids are unique. */
    char pdir[96];
    snprintf(pdir, sizeof pdir, "%s/privacy", f->dir);
    assert_int_equal(core_mkdirs(pdir, 0700), 0);
    assert_int_equal(apikey_list_save(f->path, &l), 0);
    struct apikey_list back;
    apikey_list_init(&back);
    assert_int_equal(apikey_list_load(f->path, &back, err, sizeof err), 0);
    assert_int_equal(back.n, APIKEY_MAX);
    apikey_list_dispose(&back);
    /* One more key in the file than allowed is refused. */
    l.keys = realloc(l.keys, (l.n + 1) * sizeof *l.keys);
    l.cap = l.n + 1;
    l.keys[l.n] = l.keys[0];
    l.keys[l.n].norigins = 0;
    l.keys[l.n].origins = NULL;
    snprintf(l.keys[l.n].id, sizeof l.keys[l.n].id, "%s", "zzzzzzzz");
    l.n++;
    assert_int_equal(apikey_list_save(f->path, &l), 0);
    assert_int_equal(apikey_list_load(f->path, &back, err, sizeof err), CORE_E_TOOBIG);
    apikey_list_dispose(&l);
    /* Field bounds at creation. */
    apikey_list_init(&l);
    char name[APIKEY_NAME_MAX + 2];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    assert_int_equal(apikey_list_add(&l, APIKEY_ROLE_READ, name, NULL, 0, 0, key, err, sizeof err),
                     CORE_E_INVALID);
    assert_int_equal(
        apikey_list_add(&l, APIKEY_ROLE_READ, NULL, "ftp://x", 0, 0, key, err, sizeof err),
        CORE_E_INVALID);
    assert_int_equal(
        apikey_list_add(&l, APIKEY_ROLE_READ, NULL, "https://x/", 0, 0, key, err, sizeof err),
        CORE_E_INVALID);
    assert_int_equal(apikey_list_add(&l, APIKEY_ROLE_READ, NULL, NULL, -1, 0, key, err, sizeof err),
                     CORE_E_INVALID);
    struct core_buf many;
    core_buf_init(&many);
    for (int i = 0; i <= APIKEY_ORIGINS_MAX; i++)
        core_buf_printf(&many, "%shttps://h%d.example", i ? "," : "", i);
    assert_int_equal(
        apikey_list_add(&l, APIKEY_ROLE_READ, NULL, many.data, 0, 0, key, err, sizeof err),
        CORE_E_INVALID);
    core_buf_dispose(&many);
    assert_int_equal(l.n, 0);
    /* burst defaults to max(1, rate). */
    assert_int_equal(apikey_list_add(&l, APIKEY_ROLE_READ, NULL, NULL, 5, 0, key, err, sizeof err),
                     0);
    assert_true(l.keys[0].burst == 5);
    apikey_list_dispose(&l);
}

static void test_token_bucket(void **state)
{
    (void)state;
    struct apikey_bucket b = {0};
    int retry = 0;
    /* Unlimited. */
    for (int i = 0; i < 1000; i++)
        assert_true(apikey_bucket_take(&b, 0, 0, 1, &retry));
    /* 10/s, burst 5: five at once, then one per 100 ms. */
    memset(&b, 0, sizeof b);
    int64_t t = 100 * SEC;
    for (int i = 0; i < 5; i++)
        assert_true(apikey_bucket_take(&b, 10, 5, t, &retry));
    assert_false(apikey_bucket_take(&b, 10, 5, t, &retry));
    assert_int_equal(retry, 1);
    assert_false(apikey_bucket_take(&b, 10, 5, t + SEC / 20, &retry));
    assert_true(apikey_bucket_take(&b, 10, 5, t + SEC / 10 + 1, &retry));
    assert_false(apikey_bucket_take(&b, 10, 5, t + SEC / 10 + 2, &retry));
    /* A long pause refills to the burst only. */
    t += 3600 * SEC;
    int ok = 0;
    while (apikey_bucket_take(&b, 10, 5, t, &retry))
        ok++;
    assert_int_equal(ok, 5);
    /* 0.1/s: the wait is announced in whole seconds, rounded up. */
    memset(&b, 0, sizeof b);
    assert_true(apikey_bucket_take(&b, 0.1, 1, t, &retry));
    assert_false(apikey_bucket_take(&b, 0.1, 1, t, &retry));
    assert_int_equal(retry, 10);
    assert_false(apikey_bucket_take(&b, 0.1, 1, t + 5 * SEC, &retry));
    assert_int_equal(retry, 5);
    /* Over a simulated minute at 2/s, burst 1: about 120 pass whatever the request rate. */
    memset(&b, 0, sizeof b);
    int passed = 0;
    for (int64_t ms = 0; ms < 60000; ms++)
        passed += apikey_bucket_take(&b, 2, 1, t + ms * 1000000, &retry);
    assert_in_range(passed, 119, 121);
}

static void test_roles(void **state)
{
    (void)state;
    enum apikey_role r;
    assert_int_equal(apikey_role_parse("admin", &r), 0);
    assert_int_equal(r, APIKEY_ROLE_ADMIN);
    assert_int_equal(apikey_role_parse("none", &r), CORE_E_INVALID);
    assert_int_equal(apikey_role_parse("Admin", &r), CORE_E_INVALID);
    assert_true(apikey_role_allows(APIKEY_ROLE_ADMIN, APIKEY_ROLE_INGEST));
    assert_true(apikey_role_allows(APIKEY_ROLE_ADMIN, APIKEY_ROLE_READ));
    assert_false(apikey_role_allows(APIKEY_ROLE_READ, APIKEY_ROLE_INGEST));
    assert_false(apikey_role_allows(APIKEY_ROLE_INGEST, APIKEY_ROLE_READ));
    assert_false(apikey_role_allows(APIKEY_ROLE_READ, APIKEY_ROLE_ADMIN));
    assert_true(apikey_role_allows(APIKEY_ROLE_INGEST, APIKEY_ROLE_NONE));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_start_and_hash_at_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roles_origins_and_bad_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_revoke_and_buckets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_files_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
        cmocka_unit_test(test_token_bucket),
        cmocka_unit_test(test_roles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
