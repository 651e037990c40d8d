/*
 * The official JSON-Schema-Test-Suite (Debian package json-schema-test-suite), draft7: every
 * group's schema is compiled and each test's "valid" checked, both with an error collector
 * and in the quiet yes/no mode. Groups that need remote references (refRemote.json, and any
 * schema whose $ref names an http(s) document it does not itself declare with $id) are
 * skipped and listed. optional/ (formats, bignum, ...) is reported but does not fail.
 *
 * JSON_SCHEMA_TEST_SUITE overrides the suite's tests directory.
 */
#include "schema/schema.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#define DEFAULT_DIR "/usr/share/json-schema-test-suite/tests/draft7"

struct tally {
    int passed, failed, skipped;
    bool verbose; /* print each failure */
};

static const char *suite_dir(void)
{
    const char *d = getenv("JSON_SCHEMA_TEST_SUITE");
    return d && *d ? d : DEFAULT_DIR;
}

/* Collects the string values of every member named key (anywhere in j) into out[]. */
static void collect(const cJSON *j, const char *key, const char **out, int *n, int max)
{
    for (const cJSON *m = j ? j->child : NULL; m; m = m->next) {
        if (m->string && !strcmp(m->string, key) && cJSON_IsString(m) && *n < max)
            out[(*n)++] = m->valuestring;
        collect(m, key, out, n, max);
    }
}

/* Whether a schema refers to an http(s) document that it does not contain. */
static bool needs_remote(const cJSON *schema)
{
    const char *refs[64], *ids[64];
    int nrefs = 0, nids = 0;
    collect(schema, "$ref", refs, &nrefs, 64);
    collect(schema, "$id", ids, &nids, 64);
    for (int i = 0; i < nrefs; i++) {
        if (strncmp(refs[i], "http://", 7) && strncmp(refs[i], "https://", 8))
            continue;
        size_t len = strcspn(refs[i], "#");
        bool local = false;
        for (int k = 0; k < nids; k++)
            local |= strlen(ids[k]) == len && !strncmp(ids[k], refs[i], len);
        if (!local)
            return true;
    }
    return false;
}

static cJSON *load(const char *path)
{
    struct core_buf buf;
    core_buf_init(&buf);
    int rc = core_read_file(path, 64 << 20, &buf);
    cJSON *doc = rc == 0 ? cJSON_ParseWithLength(buf.data, buf.len) : NULL;
    core_buf_dispose(&buf);
    return doc;
}

static void check_test(struct tally *t, const char *file, const char *group, const struct schema *s,
                       const cJSON *test)
{
    const char *desc = cJSON_GetStringValue(cJSON_GetObjectItem(test, "description"));
    const cJSON *data = cJSON_GetObjectItem(test, "data");
    bool want = cJSON_IsTrue(cJSON_GetObjectItem(test, "valid"));
    struct schema_errors errs;
    int got = schema_validate(s, data, &errs);
    int quick = schema_validate(s, data, NULL);
    bool ok = got == (want ? 0 : 1) && quick == got && (got == 0) == (errs.total == 0);
    if (ok) {
        t->passed++;
        return;
    }
    t->failed++;
    if (!t->verbose)
        return;
    struct core_buf msg;
    core_buf_init(&msg);
    schema_errors_format(&errs, &msg);
    printf("FAIL %s: %s: %s: expected %s, got %d/%d %s\n", file, group, desc,
           want ? "valid" : "invalid", got, quick, msg.data ? msg.data : "");
    core_buf_dispose(&msg);
}

static void check_group(struct tally *t, const char *file, const cJSON *g)
{
    const char *group = cJSON_GetStringValue(cJSON_GetObjectItem(g, "description"));
    const cJSON *schema = cJSON_GetObjectItem(g, "schema");
    const cJSON *tests = cJSON_GetObjectItem(g, "tests");
    if (!strcmp(file, "refRemote.json") || needs_remote(schema)) {
        t->skipped += cJSON_GetArraySize(tests);
        printf("skip %s: %s (%d tests): needs a remote $ref\n", file, group,
               cJSON_GetArraySize(tests));
        return;
    }
    struct schema *s = NULL;
    struct core_buf err;
    core_buf_init(&err);
    if (schema_compile(schema, NULL, &s, &err) < 0) {
        t->failed += cJSON_GetArraySize(tests);
        if (t->verbose)
            printf("FAIL %s: %s: schema does not compile: %s\n", file, group, err.data);
        core_buf_dispose(&err);
        return;
    }
    core_buf_dispose(&err);
    const cJSON *test;
    cJSON_ArrayForEach(test, tests)
    {
        check_test(t, file, group, s, test);
    }
    schema_free(s);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Runs every *.json file directly in dir; returns -1 when dir cannot be read. */
static int check_dir(struct tally *t, const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, by_name);
    if (n < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        size_t len = strlen(name);
        if (len > 5 && !strcmp(name + len - 5, ".json")) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, name);
            cJSON *doc = load(path);
            if (!doc) {
                printf("FAIL %s: cannot read or parse\n", path);
                t->failed++;
            }
            const cJSON *g;
            cJSON_ArrayForEach(g, doc)
            {
                check_group(t, name, g);
            }
            cJSON_Delete(doc);
        }
        free(names[i]);
    }
    free(names);
    return 0;
}

static void test_draft7(void **state)
{
    (void)state;
    struct stat st;
    if (stat(suite_dir(), &st) != 0) {
        fail_msg("JSON-Schema-Test-Suite not found at %s: install the Debian package "
                 "json-schema-test-suite (or set JSON_SCHEMA_TEST_SUITE)",
                 suite_dir());
    }
    struct tally t = {.verbose = true};
    assert_int_equal(check_dir(&t, suite_dir()), 0);
    printf("draft7: %d passed, %d failed, %d skipped\n", t.passed, t.failed, t.skipped);
    assert_int_equal(t.failed, 0);
    assert_true(t.passed > 300);
}

static void test_optional(void **state)
{
    (void)state;
    char dir[4096];
    struct tally t = {.verbose = getenv("SCHEMA_SUITE_VERBOSE") != NULL};
    snprintf(dir, sizeof dir, "%s/optional", suite_dir());
    if (check_dir(&t, dir) < 0)
        skip();
    snprintf(dir, sizeof dir, "%s/optional/format", suite_dir());
    check_dir(&t, dir);
    int total = t.passed + t.failed;
    printf("draft7 optional (informational): %d of %d passed (%.1f%%)\n", t.passed, total,
           total ? 100.0 * t.passed / total : 0.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_draft7),
        cmocka_unit_test(test_optional),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
