/*
 * The schema registry: SchemaVer and reference parsing, put results (created, no-op,
 * immutable, sequence), REVISION/MODEL bumps, persistence across reopen, limits, the JSON
 * renderings, lock-free lookups racing puts, and the cost of a lookup.
 */
#include "schema/registry.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- fixtures ---------------------------------------------------------------------------- */

struct fix {
    char dir[64];
    struct schema_registry *r;
    struct core_buf msg;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fix *f = core_xcalloc(1, sizeof *f);
    memcpy(f->dir, "/tmp/recstream-reg-XXXXXX", 26);
    if (!mkdtemp(f->dir))
        return -1;
    /* open creates the registry directory itself, with mode 0700 */
    strncat(f->dir, "/registry", sizeof f->dir - strlen(f->dir) - 1);
    if (schema_registry_open(f->dir, &f->r) < 0)
        return -1;
    core_buf_init(&f->msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    schema_registry_free(f->r);
    core_buf_dispose(&f->msg);
    *strrchr(f->dir, '/') = '\0';
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static int put(struct fix *f, const char *name, const char *ver, const char *body)
{
    core_buf_reset(&f->msg);
    return schema_registry_put(f->r, name, ver, body, strlen(body), &f->msg);
}

static const char *msg(struct fix *f)
{
    return f->msg.data ? f->msg.data : "";
}

static const struct schema *get(struct fix *f, const char *name, int m, int r, int a)
{
    struct schema_version v = {m, r, a};
    return schema_registry_get(f->r, name, strlen(name), &v);
}

/* True when s accepts the JSON text. */
static bool valid(const struct schema *s, const char *text)
{
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    int rc = schema_validate(s, j, NULL);
    cJSON_Delete(j);
    assert_true(rc == 0 || rc == 1);
    return rc == 0;
}

static const char *const S_STR = "{\"type\":\"string\"}";
static const char *const S_ANY = "{}";

/* ---- parsing ----------------------------------------------------------------------------- */

static void test_version_parse(void **state)
{
    (void)state;
    struct schema_version v;
    assert_int_equal(schema_version_parse("1-0-0", 5, &v), 0);
    assert_int_equal(v.model, 1);
    assert_int_equal(v.revision, 0);
    assert_int_equal(v.addition, 0);
    assert_int_equal(schema_version_parse("12-340-5", 8, &v), 0);
    assert_int_equal(v.model, 12);
    assert_int_equal(v.revision, 340);
    assert_int_equal(v.addition, 5);
    assert_int_equal(schema_version_parse("999999-999999-999999", 20, &v), 0);
    /* only n bytes are read */
    assert_int_equal(schema_version_parse("2-1-3junk", 5, &v), 0);
    assert_int_equal(v.addition, 3);
    const char *bad[] = {"",       "1",      "1-0",    "1-0-0-0", "0-1-0",      "01-0-0",
                         "1-00-0", "1-0-01", "-1-0-0", "1--0-0",  "1-0-",       "1-0-a",
                         "+1-0-0", " 1-0-0", "1-0-0 ", "1.0.0",   "1-0-1000000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v.model = 42;
        if (schema_version_parse(bad[i], strlen(bad[i]), &v) != CORE_E_INVALID)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(v.model, 42); /* untouched */
    }
    char s[SCHEMA_VERSION_STR_SIZE];
    struct schema_version w = {3, 10, 0};
    assert_int_equal(schema_version_format(&w, s, sizeof s), 6);
    assert_string_equal(s, "3-10-0");
    assert_int_equal(schema_version_format(&w, s, 6), CORE_E_INVALID);
    w.model = 0;
    assert_int_equal(schema_version_format(&w, s, sizeof s), CORE_E_INVALID);
    struct schema_version a = {1, 2, 3}, b = {1, 10, 0}, c = {2, 0, 0};
    assert_true(schema_version_cmp(&a, &b) < 0);
    assert_true(schema_version_cmp(&c, &b) > 0);
    assert_int_equal(schema_version_cmp(&a, &a), 0);
}

static void test_ref_parse(void **state)
{
    (void)state;
    char name[SCHEMA_NAME_MAX + 1];
    struct schema_version v;
    const char *ref = "com.acme_page-view/1-0-2";
    assert_int_equal(schema_ref_parse(ref, strlen(ref), name, sizeof name, &v), 0);
    assert_string_equal(name, "com.acme_page-view");
    assert_int_equal(v.addition, 2);
    const char *bad[] = {"page_view",   "/1-0-0",      "page/",       "page/1-0",
                         "1page/1-0-0", "_page/1-0-0", "pa ge/1-0-0", "page/view/1-0-0",
                         "pagé/1-0-0",  "page/1-0-0/x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (schema_ref_parse(bad[i], strlen(bad[i]), name, sizeof name, &v) != CORE_E_INVALID)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    /* the name must fit */
    char small[4];
    assert_int_equal(schema_ref_parse("abcd/1-0-0", 10, small, sizeof small, &v), CORE_E_INVALID);
    assert_int_equal(schema_ref_parse("abc/1-0-0", 9, small, sizeof small, &v), 0);
    /* names: 1..128 characters */
    char longname[SCHEMA_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname);
    assert_true(schema_name_valid(longname, SCHEMA_NAME_MAX));
    assert_false(schema_name_valid(longname, SCHEMA_NAME_MAX + 1));
    assert_true(schema_name_valid("a", 1));
    assert_false(schema_name_valid("", 0));
    assert_false(schema_name_valid("a/b", 3));
    assert_false(schema_name_valid("..", 2));
}

/* ---- put --------------------------------------------------------------------------------- */

static void test_first_version(void **state)
{
    struct fix *f = *state;
    assert_int_equal(put(f, "ev", "1-0-1", S_STR), SCHEMA_REG_BAD_SEQUENCE);
    assert_string_equal(msg(f), "the first version of a schema must be 1-0-0, not 1-0-1");
    assert_int_equal(put(f, "ev", "2-0-0", S_STR), SCHEMA_REG_BAD_SEQUENCE);
    assert_false(schema_registry_has(f->r, "ev", 2));
    assert_int_equal(put(f, "ev", "1-0-0", S_STR), 0);
    assert_string_equal(msg(f), "");
    assert_true(schema_registry_has(f->r, "ev", 2));
    assert_false(schema_registry_has(f->r, "e", 1));
    assert_false(schema_registry_has(f->r, "evx", 3));
    const struct schema *s = get(f, "ev", 1, 0, 0);
    assert_non_null(s);
    assert_true(valid(s, "\"x\""));
    assert_false(valid(s, "1"));
    assert_ptr_equal(schema_registry_get(f->r, "ev", 2, NULL), s);
    assert_null(get(f, "ev", 1, 0, 1));
    assert_null(get(f, "other", 1, 0, 0));
    /* the file is there, with mode 0600 in a 0700 directory */
    char path[128];
    struct stat st;
    snprintf(path, sizeof path, "%s/ev/1-0-0.json", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(f->dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
}

static void test_invalid_input(void **state)
{
    struct fix *f = *state;
    assert_int_equal(put(f, "1ev", "1-0-0", S_STR), CORE_E_INVALID);
    assert_non_null(strstr(msg(f), "invalid schema name \"1ev\""));
    assert_int_equal(put(f, "ev", "1.0.0", S_STR), CORE_E_INVALID);
    assert_non_null(strstr(msg(f), "invalid version \"1.0.0\""));
    assert_int_equal(put(f, "ev", "1-0-0", "{\"type\":\n  \"string\",}"), CORE_E_INVALID);
    assert_string_equal(msg(f), "malformed JSON at line 2, column 12");
    assert_int_equal(put(f, "ev", "1-0-0", "{} {}"), CORE_E_INVALID);
    assert_string_equal(msg(f), "unexpected data after the JSON value at line 1, column 4");
    assert_int_equal(put(f, "ev", "1-0-0", "{\"type\":\"strnig\"}"), CORE_E_INVALID);
    assert_non_null(strstr(msg(f), "invalid schema: #/type:"));
    assert_int_equal(put(f, "ev", "1-0-0", "{\"$ref\":\"http://x/y.json\"}"), CORE_E_INVALID);
    assert_false(schema_registry_has(f->r, "ev", 2));
}

/* A version that cannot be written is not registered. */
static void test_store_failure(void **state)
{
    struct fix *f = *state;
    char path[160];
    snprintf(path, sizeof path, "%s/blocked", f->dir);
    FILE *fp = fopen(path, "w"); /* a file where the name's directory should go */
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(put(f, "blocked", "1-0-0", S_STR), -ENOTDIR);
    assert_non_null(strstr(msg(f), "cannot store "));
    assert_false(schema_registry_has(f->r, "blocked", 7));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(put(f, "blocked", "1-0-0", S_STR), 0);
    assert_true(schema_registry_has(f->r, "blocked", 7));
}

static void test_idempotent_and_immutable(void **state)
{
    struct fix *f = *state;
    const char *doc = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},"
                      "\"b\":{\"enum\":[1,2]}}}";
    assert_int_equal(put(f, "ev", "1-0-0", doc), 0);
    const struct schema *s = get(f, "ev", 1, 0, 0);
    /* the same document: a no-op */
    assert_int_equal(put(f, "ev", "1-0-0", doc), 1);
    /* canonically equal: other key order, spacing and number spelling */
    assert_int_equal(put(f, "ev", "1-0-0",
                         "{ \"properties\": {\"b\":{\"enum\":[1.0,2e0]}, \"a\":{\"type\":"
                         "\"integer\"}}, \"type\": \"object\" }"),
                     1);
    assert_ptr_equal(get(f, "ev", 1, 0, 0), s);
    /* different content */
    assert_int_equal(put(f, "ev", "1-0-0", "{\"type\":\"object\"}"), CORE_E_EXISTS);
    assert_non_null(strstr(msg(f), "version 1-0-0 of ev already exists with different content"));
    /* the stored document is the first one, byte for byte */
    struct core_buf out;
    core_buf_init(&out);
    assert_int_equal(schema_registry_schema_json(f->r, "ev", "1-0-0", &out), 0);
    assert_string_equal(out.data, doc);
    core_buf_dispose(&out);
}

static void test_sequence(void **state)
{
    struct fix *f = *state;
    assert_int_equal(put(f, "ev", "1-0-0", S_STR), 0);
    assert_int_equal(put(f, "ev", "1-0-2", S_STR), SCHEMA_REG_BAD_SEQUENCE);
    assert_string_equal(msg(f), "version 1-0-2 does not follow the registered versions of "
                                "\"ev\"; the next version must be one of: 1-0-1, 1-1-0, 2-0-0");
    assert_int_equal(put(f, "ev", "1-2-0", S_STR), SCHEMA_REG_BAD_SEQUENCE);
    assert_int_equal(put(f, "ev", "3-0-0", S_STR), SCHEMA_REG_BAD_SEQUENCE);
    assert_int_equal(put(f, "ev", "1-1-1", S_STR), SCHEMA_REG_BAD_SEQUENCE);
    assert_int_equal(put(f, "ev", "1-0-1", S_STR), 0);
    assert_int_equal(put(f, "ev", "1-1-0", S_STR), 0);
    assert_int_equal(put(f, "ev", "2-0-0", S_STR), 0);
    /* an addition to an older MODEL-REVISION is still allowed; going back is not */
    assert_int_equal(put(f, "ev", "1-0-2", S_STR), 0);
    assert_int_equal(put(f, "ev", "1-0-1", S_ANY), CORE_E_EXISTS);
    assert_int_equal(put(f, "ev", "1-0-4", S_STR), SCHEMA_REG_BAD_SEQUENCE);
    assert_string_equal(msg(f), "version 1-0-4 does not follow the registered versions of "
                                "\"ev\"; the next version must be one of: 1-0-3, 1-1-1, 1-2-0, "
                                "2-0-1, 2-1-0, 3-0-0");
    assert_int_equal(put(f, "ev", "1-2-0", S_STR), 0);
    assert_int_equal(put(f, "ev", "2-1-0", S_STR), 0);
    assert_int_equal(put(f, "ev", "1-1-1", S_STR), 0);
    struct core_buf out;
    core_buf_init(&out);
    assert_int_equal(schema_registry_versions_json(f->r, "ev", &out), 0);
    assert_string_equal(out.data, "{\"name\":\"ev\",\"versions\":[\"1-0-0\",\"1-0-1\",\"1-0-2\","
                                  "\"1-1-0\",\"1-1-1\",\"1-2-0\",\"2-0-0\",\"2-1-0\"],"
                                  "\"latest\":\"2-1-0\"}");
    core_buf_dispose(&out);
}

/* The latest version of the highest MODEL wins, whatever the order of registration. */
static void test_latest(void **state)
{
    struct fix *f = *state;
    assert_int_equal(put(f, "ev", "1-0-0", S_STR), 0);
    assert_int_equal(put(f, "ev", "2-0-0", "{\"type\":\"integer\"}"), 0);
    assert_int_equal(put(f, "ev", "1-0-1", S_ANY), 0);
    assert_int_equal(put(f, "ev", "1-1-0", S_ANY), 0);
    struct schema_version found;
    const struct schema *s = schema_registry_resolve(f->r, "ev", 2, NULL, &found);
    assert_ptr_equal(s, get(f, "ev", 2, 0, 0));
    assert_int_equal(found.model, 2);
    assert_int_equal(found.revision, 0);
    assert_int_equal(found.addition, 0);
    assert_int_equal(put(f, "ev", "2-0-1", "{\"type\":\"number\"}"), 0);
    s = schema_registry_resolve(f->r, "ev", 2, NULL, &found);
    assert_ptr_equal(s, get(f, "ev", 2, 0, 1));
    assert_int_equal(found.addition, 1);
    assert_true(valid(s, "1.5"));
    /* out-of-range versions are simply not found */
    struct schema_version huge = {SCHEMA_VERSION_PART_MAX + 1, 0, 0}, neg = {1, -1, 0};
    assert_null(schema_registry_get(f->r, "ev", 2, &huge));
    assert_null(schema_registry_get(f->r, "ev", 2, &neg));
}

/* REVISION and MODEL bumps skip the check but report what they break. */
static void test_breaking_bumps(void **state)
{
    struct fix *f = *state;
    const char *v1 = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":[\"string\",\"null\"]},"
                     "\"b\":{\"enum\":[1,2]}}}";
    const char *v2 = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"},"
                     "\"b\":{\"enum\":[1]}},\"required\":[\"a\"]}";
    assert_int_equal(put(f, "ev", "1-0-0", v1), 0);
    assert_int_equal(put(f, "ev", "1-0-1", v2), SCHEMA_REG_INCOMPATIBLE);
    assert_string_equal(msg(f), "/properties/a: property \"a\" is now required\n"
                                "/properties/a: type narrowed from [\"string\",\"null\"] to "
                                "[\"string\"]\n"
                                "/properties/b: enum values removed: 2");
    assert_null(get(f, "ev", 1, 0, 1));
    assert_int_equal(put(f, "ev", "1-1-0", v2), 0);
    assert_string_equal(msg(f), "/properties/a: property \"a\" is now required\n"
                                "/properties/a: type narrowed from [\"string\",\"null\"] to "
                                "[\"string\"]\n"
                                "/properties/b: enum values removed: 2");
    assert_non_null(get(f, "ev", 1, 1, 0));
    /* against the previous latest (1-1-0): only the new narrowing shows */
    assert_int_equal(put(f, "ev", "2-0-0",
                         "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\","
                         "\"maxLength\":3},\"b\":{\"enum\":[1]}},\"required\":[\"a\"]}"),
                     0);
    assert_string_equal(msg(f), "/properties/a: maxLength 3 added");
    /* a bump that breaks nothing says nothing */
    assert_int_equal(put(f, "ev", "3-0-0", S_ANY), 0);
    assert_string_equal(msg(f), "");
    /* a REVISION of an older MODEL compares with that model's latest version (1-1-0) */
    assert_int_equal(put(f, "ev", "1-2-0",
                         "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"},"
                         "\"b\":{\"enum\":[1]}},\"required\":[\"a\",\"b\"]}"),
                     0);
    assert_string_equal(msg(f), "/properties/b: property \"b\" is now required");
}

static void test_limits(void **state)
{
    struct fix *f = *state;
    schema_registry_set_limits(f->r, 2, 3, 64);
    assert_int_equal(put(f, "a", "1-0-0", S_STR), 0);
    assert_int_equal(put(f, "a", "1-0-1", S_STR), 0);
    assert_int_equal(put(f, "a", "1-0-2", S_STR), 0);
    assert_int_equal(put(f, "a", "1-0-3", S_STR), CORE_E_FULL);
    assert_string_equal(msg(f), "schema a has the maximum of 3 versions");
    assert_int_equal(put(f, "a", "1-0-2", S_STR), 1); /* re-puts still answer */
    assert_int_equal(put(f, "b", "1-0-0", S_STR), 0);
    assert_int_equal(put(f, "c", "1-0-0", S_STR), CORE_E_FULL);
    assert_string_equal(msg(f), "the registry holds the maximum of 2 schemas");
    char big[100];
    memset(big, ' ', sizeof big - 3);
    memcpy(big + sizeof big - 3, "{}", 3);
    assert_int_equal(put(f, "b", "1-0-1", big), CORE_E_TOOBIG);
    assert_string_equal(msg(f), "schema is 99 bytes; the limit is 64");
    /* the default size limit */
    schema_registry_set_limits(f->r, 0, 0, SCHEMA_REG_MAX_BYTES);
    size_t n = SCHEMA_REG_MAX_BYTES + 1;
    char *huge = core_xmalloc(n + 1);
    memset(huge, ' ', n);
    memcpy(huge + n - 2, "{}", 3);
    core_buf_reset(&f->msg);
    assert_int_equal(schema_registry_put(f->r, "b", "1-0-1", huge, n, &f->msg), CORE_E_TOOBIG);
    free(huge);
}

static void test_json(void **state)
{
    struct fix *f = *state;
    struct core_buf out;
    core_buf_init(&out);
    schema_registry_list_json(f->r, &out);
    assert_string_equal(out.data, "{\"schemas\":[]}");
    assert_int_equal(put(f, "page_view", "1-0-0", S_STR), 0);
    assert_int_equal(put(f, "Click", "1-0-0", S_ANY), 0);
    assert_int_equal(put(f, "page_view", "1-0-1", S_ANY), 0);
    assert_int_equal(put(f, "buy", "1-0-0", S_ANY), 0);
    core_buf_reset(&out);
    schema_registry_list_json(f->r, &out);
    assert_string_equal(out.data,
                        "{\"schemas\":[{\"name\":\"Click\",\"versions\":[\"1-0-0\"],\"latest\":"
                        "\"1-0-0\"},{\"name\":\"buy\",\"versions\":[\"1-0-0\"],\"latest\":\"1-0-"
                        "0\"},{\"name\":\"page_view\",\"versions\":[\"1-0-0\",\"1-0-1\"],"
                        "\"latest\":\"1-0-1\"}]}");
    core_buf_reset(&out);
    assert_int_equal(schema_registry_versions_json(f->r, "nope", &out), CORE_E_NOTFOUND);
    assert_int_equal(out.len, 0);
    assert_int_equal(schema_registry_schema_json(f->r, "page_view", "1-0-0", &out), 0);
    assert_string_equal(out.data, S_STR);
    core_buf_reset(&out);
    assert_int_equal(schema_registry_schema_json(f->r, "page_view", NULL, &out), 0);
    assert_string_equal(out.data, S_ANY);
    assert_int_equal(schema_registry_schema_json(f->r, "page_view", "1-0-2", &out),
                     CORE_E_NOTFOUND);
    assert_int_equal(schema_registry_schema_json(f->r, "nope", "1-0-0", &out), CORE_E_NOTFOUND);
    assert_int_equal(schema_registry_schema_json(f->r, "page_view", "x", &out), CORE_E_INVALID);
    core_buf_dispose(&out);
}

/* ---- persistence ------------------------------------------------------------------------- */

static void test_reopen(void **state)
{
    struct fix *f = *state;
    const char *pretty = "{\n  \"type\": \"object\",\n  \"required\": [\"a\"]\n}\n";
    assert_int_equal(put(f, "ev", "1-0-0", pretty), 0);
    assert_int_equal(put(f, "ev", "1-0-1", "{\"type\":\"object\"}"), 0);
    assert_int_equal(put(f, "ev", "2-0-0", S_STR), 0);
    assert_int_equal(put(f, "ev", "1-1-0", S_ANY), 0);
    assert_int_equal(put(f, "other", "1-0-0", S_ANY), 0);
    struct core_buf before, after;
    core_buf_init(&before);
    core_buf_init(&after);
    schema_registry_list_json(f->r, &before);
    schema_registry_free(f->r);
    f->r = NULL;

    /* litter the directory with what a crash or a person may leave behind */
    char path[160];
    snprintf(path, sizeof path, "%s/ev/2-0-1.json.tmp", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("{\"ty", fp);
    fclose(fp);
    snprintf(path, sizeof path, "%s/ev/notes.txt", f->dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(path, sizeof path, "%s/empty", f->dir);
    assert_int_equal(mkdir(path, 0700), 0);

    assert_int_equal(schema_registry_open(f->dir, &f->r), 0);
    schema_registry_list_json(f->r, &after);
    assert_string_equal(after.data, before.data);
    struct schema_version found;
    assert_non_null(schema_registry_resolve(f->r, "ev", 2, NULL, &found));
    assert_int_equal(found.model, 2);
    assert_true(valid(get(f, "ev", 1, 0, 0), "{\"a\":1}"));
    assert_false(valid(get(f, "ev", 1, 0, 0), "{}"));
    assert_false(schema_registry_has(f->r, "empty", 5));
    core_buf_reset(&after);
    assert_int_equal(schema_registry_schema_json(f->r, "ev", "1-0-0", &after), 0);
    assert_string_equal(after.data, pretty);
    /* the sequence continues from what was loaded */
    assert_int_equal(put(f, "ev", "2-0-1", "{\"type\":\"string\",\"minLength\":1}"),
                     SCHEMA_REG_INCOMPATIBLE);
    assert_int_equal(put(f, "ev", "2-0-1", "{\"type\":[\"string\",\"null\"]}"), 0);
    assert_int_equal(put(f, "ev", "1-0-1", "{\"type\":\"object\"}"), 1);
    core_buf_dispose(&before);
    core_buf_dispose(&after);
}

/* A version file that does not load fails the open, and the log names it. */
static void test_corrupt_file(void **state)
{
    struct fix *f = *state;
    assert_int_equal(put(f, "ev", "1-0-0", S_STR), 0);
    schema_registry_free(f->r);
    f->r = NULL;
    char path[160];
    snprintf(path, sizeof path, "%s/ev/1-0-1.json", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("{\"type\":\"strnig\"}", fp);
    fclose(fp);
    struct schema_registry *r = NULL;
    assert_int_equal(schema_registry_open(f->dir, &r), CORE_E_CORRUPT);
    assert_null(r);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("{\"type\":", fp);
    fclose(fp);
    assert_int_equal(schema_registry_open(f->dir, &r), CORE_E_CORRUPT);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(schema_registry_open(f->dir, &f->r), 0);
    /* a registry directory that cannot be created */
    snprintf(path, sizeof path, "%s/ev/1-0-0.json/registry", f->dir);
    assert_int_equal(schema_registry_open(path, &r), -ENOTDIR);
}

/* ---- threads ----------------------------------------------------------------------------- */

#define RACE_NAMES 8
#define RACE_VERSIONS 12

struct race {
    struct schema_registry *r;
    atomic_bool stop;
    atomic_long lookups, hits, errors;
};

static void race_name(char *out, size_t size, int i)
{
    snprintf(out, size, "ev%d", i);
}

/* Once a version is seen it must stay visible, and the latest never goes back. cmocka's
 * asserts are for the main thread, so readers count what goes wrong. */
static void *race_reader(void *arg)
{
    struct race *rc = arg;
    int seen[RACE_NAMES] = {0};
    cJSON *inst = cJSON_Parse("{\"n\":1}");
    while (!atomic_load(&rc->stop)) {
        for (int i = 0; i < RACE_NAMES; i++) {
            char name[16];
            race_name(name, sizeof name, i);
            size_t len = strlen(name);
            struct schema_version found;
            const struct schema *s = schema_registry_resolve(rc->r, name, len, NULL, &found);
            atomic_fetch_add(&rc->lookups, 1);
            if (!s) {
                if (seen[i])
                    atomic_fetch_add(&rc->errors, 1);
                continue;
            }
            atomic_fetch_add(&rc->hits, 1);
            if (found.addition + 1 < seen[i] || schema_validate(s, inst, NULL) != 0 ||
                !schema_registry_has(rc->r, name, len))
                atomic_fetch_add(&rc->errors, 1);
            seen[i] = found.addition + 1;
            for (int a = 0; a < seen[i]; a++) {
                struct schema_version v = {1, 0, a};
                if (!schema_registry_get(rc->r, name, len, &v))
                    atomic_fetch_add(&rc->errors, 1);
            }
        }
    }
    cJSON_Delete(inst);
    return NULL;
}

static void test_concurrent_lookups(void **state)
{
    struct fix *f = *state;
    struct race rc = {.r = f->r};
    atomic_init(&rc.stop, false);
    atomic_init(&rc.lookups, 0);
    atomic_init(&rc.hits, 0);
    atomic_init(&rc.errors, 0);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, race_reader, &rc), 0);
    /* versions widen one bound at a time: each is a compatible addition */
    for (int a = 0; a < RACE_VERSIONS; a++) {
        for (int i = 0; i < RACE_NAMES; i++) {
            char name[16], ver[16], doc[96];
            race_name(name, sizeof name, i);
            snprintf(ver, sizeof ver, "1-0-%d", a);
            snprintf(doc, sizeof doc, "{\"properties\":{\"n\":{\"maximum\":%d}}}", 100 + a);
            assert_int_equal(put(f, name, ver, doc), 0);
        }
    }
    atomic_store(&rc.stop, true);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_true(atomic_load(&rc.hits) > 0);
    assert_int_equal(atomic_load(&rc.errors), 0);
    print_message("%ld lookups by 4 threads during %d puts\n", atomic_load(&rc.lookups),
                  RACE_NAMES * RACE_VERSIONS);
    for (int i = 0; i < RACE_NAMES; i++) {
        char name[16];
        struct schema_version found;
        race_name(name, sizeof name, i);
        assert_non_null(schema_registry_resolve(f->r, name, strlen(name), NULL, &found));
        assert_int_equal(found.addition, RACE_VERSIONS - 1);
    }
}

/* Times lookups against a registry of 1000 names x 5 versions (printed; the bound is loose so
 * sanitizer builds pass: see docs/SCHEMA.md for numbers from an optimised build). */
static void test_lookup_cost(void **state)
{
    struct fix *f = *state;
    /* registering 5000 versions would fsync 5000 files: load them instead */
    char path[200];
    for (int i = 0; i < 1000; i++) {
        snprintf(path, sizeof path, "%s/name_%d", f->dir, i);
        assert_int_equal(mkdir(path, 0700), 0);
        for (int a = 0; a < 5; a++) {
            snprintf(path, sizeof path, "%s/name_%d/1-0-%d.json", f->dir, i, a);
            FILE *fp = fopen(path, "w");
            assert_non_null(fp);
            fputs("{\"type\":\"object\"}", fp);
            fclose(fp);
        }
    }
    schema_registry_free(f->r);
    assert_int_equal(schema_registry_open(f->dir, &f->r), 0);
    char names[1000][16];
    for (int i = 0; i < 1000; i++)
        snprintf(names[i], sizeof names[i], "name_%d", i);
    const int rounds = 2000000;
    const struct schema *sink = NULL;
    int64_t t0 = core_mono_ns();
    for (int k = 0; k < rounds; k++) {
        const char *n = names[(size_t)k * 7919 % 1000];
        struct schema_version v = {1, 0, k % 5};
        sink = schema_registry_get(f->r, n, strlen(n), &v);
        assert_true(sink != NULL);
    }
    int64_t t1 = core_mono_ns();
    for (int k = 0; k < rounds; k++) {
        const char *n = names[(size_t)k * 7919 % 1000];
        sink = schema_registry_get(f->r, n, strlen(n), NULL);
        assert_true(sink != NULL);
    }
    int64_t t2 = core_mono_ns();
    double exact = (double)(t1 - t0) / rounds, latest = (double)(t2 - t1) / rounds;
    print_message("lookup: %.1f ns with a version, %.1f ns for the latest\n", exact, latest);
    assert_true(exact < 2000 && latest < 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_parse),
        cmocka_unit_test(test_ref_parse),
        cmocka_unit_test_setup_teardown(test_first_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotent_and_immutable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_latest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaking_bumps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_lookups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_cost, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
