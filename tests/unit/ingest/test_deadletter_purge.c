/* Dead-letter erasure (deadletter_purge): the matching lines leave the files (sealed or not),
 * other entries stay readable and listable after reopening, appends continue on a clean
 * file, and taken entries' lines are purged too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "ingest/deadletter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char ERRORS[] = "[{\"field\":\"itemId\",\"message\":\"required\"}]";

static bool match_user(void *arg, const char *line, size_t len)
{
    return memmem(line, len, arg, strlen(arg)) != NULL;
}

static bool take_all(void *arg, int64_t id, const char *ev, size_t len)
{
    (void)arg;
    (void)id;
    (void)ev;
    (void)len;
    return true;
}

static struct deadletters *open_store(const char *dir, const struct seal_key *key)
{
    struct deadletter_options o;
    deadletter_options_init(&o);
    o.dir = dir;
    o.key = key;
    o.max_bytes = 4096; /* segments of ~1 KiB: the entries spread over several files */
    struct deadletters *d;
    assert_int_equal(deadletter_open(&o, &d), 0);
    return d;
}

static void add(struct deadletters *d, const char *user, int i)
{
    char ev[160];
    int n =
        snprintf(ev, sizeof ev, "{\"userKey\":\"%s\",\"eventType\":\"click\",\"n\":%d}", user, i);
    assert_int_equal(
        deadletter_add(d, 1000 + i, "/v1/events", ev, (size_t)n, ERRORS, strlen(ERRORS), NULL), 0);
}

/* Whether any file of dir holds needle as stored. */
static bool dir_holds(const char *dir, const char *needle)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "grep -rqF '%s' %s", needle, dir);
    return system(cmd) == 0;
}

static void run(bool sealed)
{
    char dir[] = "/tmp/recstream-dlp-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct seal_key key = {.key = {9}};
    const struct seal_key *k = sealed ? &key : NULL;
    struct deadletters *d = open_store(dir, k);
    for (int i = 0; i < 12; i++)
        add(d, i % 3 == 0 ? "erase-me-user" : "keep-me-user", i);
    /* A taken (re-ingested) entry of the user: its line is still in the file until purged. */
    int64_t first = 1;
    assert_int_equal(deadletter_take(d, &first, 1, take_all, NULL), 1);
    if (!sealed)
        assert_true(dir_holds(dir, "erase-me-user"));
    int removed = deadletter_purge(d, match_user, "erase-me-user");
    assert_int_equal(removed, 4);
    assert_false(dir_holds(dir, "erase-me-user"));
    int64_t live;
    deadletter_stats(d, &live, NULL, NULL);
    assert_int_equal(live, 8);
    add(d, "keep-me-user", 12); /* appends go on after the rewrite */
    deadletter_free(d);

    d = open_store(dir, k);
    deadletter_stats(d, &live, NULL, NULL);
    assert_int_equal(live, 9);
    struct core_buf out;
    core_buf_init(&out);
    assert_int_equal(deadletter_list_json(d, 0, 100, &out), 0);
    assert_null(strstr(out.data, "erase-me-user"));
    assert_non_null(strstr(out.data, "\"n\":12"));
    assert_non_null(strstr(out.data, "\"n\":11"));
    core_buf_dispose(&out);
    assert_int_equal(deadletter_purge(d, match_user, "nobody-at-all"), 0);
    deadletter_free(d);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_purge_sealed(void **state)
{
    (void)state;
    run(true);
}

static void test_purge_plain(void **state)
{
    (void)state;
    run(false);
}

int main(void)
{
    core_log_set_level(CORE_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_purge_sealed),
        cmocka_unit_test(test_purge_plain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
