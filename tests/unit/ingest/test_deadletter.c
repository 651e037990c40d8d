/* The dead-letter store: list round trip and paging, ids across restarts, both bounds, replay
 * removal that survives a restart, a torn last line, and concurrent adds while listing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "ingest/deadletter.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char ERRORS[] = "[{\"field\":\"properties/price\",\"message\":\"must be >= 0\"}]";

/* ---- helpers ----------------------------------------------------------------------------- */

static char *make_dir(void)
{
    char *dir = strdup("/tmp/recstream-dl-XXXXXX");
    assert_non_null(dir);
    assert_non_null(mkdtemp(dir));
    return dir;
}

/* Removes dir and everything below it. */
static void remove_tree(const char *dir)
{
    DIR *dh = opendir(dir);
    assert_non_null(dh);
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        assert_int_equal(lstat(path, &st), 0);
        if (S_ISDIR(st.st_mode))
            remove_tree(path);
        else
            assert_int_equal(unlink(path), 0);
    }
    closedir(dh);
    assert_int_equal(rmdir(dir), 0);
}

static void remove_dir(char *dir)
{
    remove_tree(dir);
    free(dir);
}

static int64_t dir_bytes(const char *dir, int *files)
{
    DIR *dh = opendir(dir);
    assert_non_null(dh);
    int64_t total = 0;
    *files = 0;
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        total += st.st_size;
        (*files)++;
    }
    closedir(dh);
    return total;
}

static struct deadletters *open_store(const char *dir, int64_t max_entries, int64_t max_bytes)
{
    struct deadletter_options o;
    deadletter_options_init(&o);
    o.dir = dir;
    if (max_entries)
        o.max_entries = max_entries;
    if (max_bytes)
        o.max_bytes = max_bytes;
    struct deadletters *d = NULL;
    assert_int_equal(deadletter_open(&o, &d), 0);
    assert_non_null(d);
    return d;
}

/* An event whose text depends on i (padded to about pad bytes). */
static size_t event_text(char *buf, size_t size, int i, size_t pad)
{
    char filler[2048];
    if (pad >= sizeof filler)
        pad = sizeof filler - 1;
    memset(filler, 'x', pad);
    filler[pad] = '\0';
    int n = snprintf(buf, size,
                     "{\"eventId\":\"e-%d\",\"type\":\"purchase\",\"properties\":{\"price\":-%d,"
                     "\"note\":\"%s\"}}",
                     i, i, filler);
    assert_true(n > 0 && (size_t)n < size);
    return (size_t)n;
}

static int64_t add_event(struct deadletters *d, int i, size_t pad)
{
    char ev[4096];
    size_t n = event_text(ev, sizeof ev, i, pad);
    int64_t id = 0;
    assert_int_equal(
        deadletter_add(d, 1700000000000 + i, "/v1/events", ev, n, ERRORS, strlen(ERRORS), &id), 0);
    return id;
}

/* Lists one page and parses it; the caller deletes the result. */
static cJSON *list_page(struct deadletters *d, int64_t after, size_t limit)
{
    struct core_buf out;
    core_buf_init(&out);
    assert_int_equal(deadletter_list_json(d, after, limit, &out), 0);
    cJSON *j = cJSON_ParseWithLength(out.data, out.len);
    assert_non_null(j);
    core_buf_dispose(&out);
    return j;
}

static int64_t num(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    assert_true(cJSON_IsNumber(v));
    return (int64_t)v->valuedouble;
}

/* All live ids, oldest first, through the paging interface. Returns how many. */
static size_t list_all_ids(struct deadletters *d, int64_t *ids, size_t max)
{
    size_t n = 0;
    int64_t after = 0;
    for (;;) {
        cJSON *j = list_page(d, after, 1000);
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "deadletters");
        const cJSON *it;
        cJSON_ArrayForEach(it, arr)
        {
            assert_true(n < max);
            ids[n++] = num(it, "id");
        }
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(j, "nextAfter");
        bool done = cJSON_IsNull(next);
        if (!done)
            after = (int64_t)next->valuedouble;
        cJSON_Delete(j);
        if (done)
            return n;
    }
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_add_list_roundtrip(void **state)
{
    (void)state;
    char *dir = make_dir();
    struct deadletters *d = open_store(dir, 0, 0);
    int64_t ids[5];
    for (int i = 0; i < 5; i++) {
        ids[i] = add_event(d, i, 0);
        if (i > 0)
            assert_true(ids[i] > ids[i - 1]);
    }

    cJSON *j = list_page(d, 0, 100);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "deadletters");
    assert_int_equal(cJSON_GetArraySize(arr), 5);
    assert_int_equal(num(j, "count"), 5);
    assert_int_equal(num(j, "total"), 5);
    assert_int_equal(num(j, "dropped"), 0);
    assert_int_equal(num(j, "nextAfter"), ids[4]);
    for (int i = 0; i < 5; i++) {
        const cJSON *e = cJSON_GetArrayItem(arr, i);
        assert_int_equal(num(e, "id"), ids[i]);
        assert_int_equal(num(e, "receivedAt"), 1700000000000 + i);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "source")->valuestring,
                            "/v1/events");
        const cJSON *errs = cJSON_GetObjectItemCaseSensitive(e, "errors");
        assert_int_equal(cJSON_GetArraySize(errs), 1);
        assert_string_equal(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(errs, 0), "field")->valuestring,
            "properties/price");
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(e, "event");
        char want[32];
        snprintf(want, sizeof want, "e-%d", i);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(ev, "eventId")->valuestring, want);
        assert_int_equal(num(cJSON_GetObjectItemCaseSensitive(ev, "properties"), "price"), -i);
    }
    cJSON_Delete(j);

    /* Paging by after_id / limit. */
    int64_t after = 0;
    for (int page = 0; page < 3; page++) {
        j = list_page(d, after, 2);
        arr = cJSON_GetObjectItemCaseSensitive(j, "deadletters");
        int want_n = page < 2 ? 2 : 1;
        assert_int_equal(cJSON_GetArraySize(arr), want_n);
        assert_int_equal(num(j, "count"), want_n);
        assert_int_equal(num(j, "total"), 5);
        for (int k = 0; k < want_n; k++)
            assert_int_equal(num(cJSON_GetArrayItem(arr, k), "id"), ids[page * 2 + k]);
        after = num(j, "nextAfter");
        assert_int_equal(after, ids[page * 2 + want_n - 1]);
        cJSON_Delete(j);
    }
    j = list_page(d, after, 2);
    assert_int_equal(num(j, "count"), 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "nextAfter")));
    cJSON_Delete(j);
    j = list_page(d, 0, 0); /* counts only */
    assert_int_equal(num(j, "count"), 0);
    assert_int_equal(num(j, "total"), 5);
    cJSON_Delete(j);

    /* A source needing escapes still lists as valid JSON. */
    const char ev[] = "{\"eventId\":\"q\"}";
    assert_int_equal(deadletter_add(d, 1, "/v1/\"odd\"\\src", ev, strlen(ev), "[]", 2, NULL), 0);
    j = list_page(d, ids[4], 10);
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "deadletters"), 0), "source")
            ->valuestring,
        "/v1/\"odd\"\\src");
    cJSON_Delete(j);

    /* Inputs that would break the NDJSON line or the listing are refused. */
    static const char *bad_events[] = {"[1,2]", "{\"a\":1} x", "{\"a\":\n1}", "{\"a\":", "", "7"};
    for (size_t i = 0; i < sizeof bad_events / sizeof *bad_events; i++)
        assert_int_equal(
            deadletter_add(d, 1, "/v1/events", bad_events[i], strlen(bad_events[i]), "[]", 2, NULL),
            CORE_E_INVALID);
    assert_int_equal(deadletter_add(d, 1, "/v1/events", ev, strlen(ev), "{}", 2, NULL),
                     CORE_E_INVALID);
    int64_t live, added, dropped;
    deadletter_stats(d, &live, &added, &dropped);
    assert_int_equal(live, 6);
    assert_int_equal(added, 6);
    assert_int_equal(dropped, 0);
    deadletter_free(d);
    remove_dir(dir);
}

static void test_ids_survive_reopen(void **state)
{
    (void)state;
    char *top = make_dir();
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/data/deadletters", top); /* created on open */
    struct deadletters *d = open_store(dir, 0, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(add_event(d, i, 0), i + 1);
    deadletter_free(d);

    d = open_store(dir, 0, 0);
    int64_t ids[16] = {0};
    assert_int_equal(list_all_ids(d, ids, 16), 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ids[i], i + 1);
    assert_int_equal(add_event(d, 3, 0), 4);
    deadletter_free(d);

    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/1.ndjson", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* Bad arguments. */
    struct deadletter_options o;
    deadletter_options_init(&o);
    assert_int_equal(o.max_entries, 10000);
    assert_int_equal(o.max_bytes, 64 << 20);
    assert_int_equal(deadletter_open(&o, &d), CORE_E_INVALID); /* no dir */
    o.dir = dir;
    o.max_entries = 0;
    assert_int_equal(deadletter_open(&o, &d), CORE_E_INVALID);
    d = open_store(dir, 0, 0);
    assert_int_equal(deadletter_take(d, NULL, 0, NULL, NULL), CORE_E_INVALID);
    deadletter_free(d);
    remove_dir(top);
}

static bool accept_all(void *arg, int64_t id, const char *event_json, size_t len)
{
    (void)id;
    (void)event_json;
    (void)len;
    if (arg)
        (*(int *)arg)++;
    return true;
}

static void test_ids_not_reused_after_emptying(void **state)
{
    (void)state;
    char *dir = make_dir();
    struct deadletters *d = open_store(dir, 0, 0);
    for (int i = 0; i < 4; i++)
        add_event(d, i, 0);
    assert_int_equal(deadletter_take(d, NULL, 0, accept_all, NULL), 4);
    deadletter_free(d);
    d = open_store(dir, 0, 0);
    int64_t live;
    deadletter_stats(d, &live, NULL, NULL);
    assert_int_equal(live, 0);
    assert_int_equal(add_event(d, 9, 0), 5);
    deadletter_free(d);
    remove_dir(dir);
}

static void test_bound_entries(void **state)
{
    (void)state;
    char *dir = make_dir();
    struct deadletters *d = open_store(dir, 100, 0);
    for (int i = 0; i < 250; i++)
        add_event(d, i, 0);
    int64_t live, added, dropped;
    deadletter_stats(d, &live, &added, &dropped);
    assert_int_equal(live, 100);
    assert_int_equal(added, 250);
    assert_int_equal(dropped, 150);
    int64_t ids[300] = {0};
    assert_int_equal(list_all_ids(d, ids, 300), 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(ids[i], 151 + i);
    cJSON *j = list_page(d, 0, 1);
    assert_int_equal(num(j, "dropped"), 150);
    cJSON_Delete(j);
    deadletter_free(d);

    /* After a restart the same entries are live; removing some must not bring dropped ones
     * back, neither now nor after another restart (nor with a larger bound). */
    d = open_store(dir, 100, 0);
    assert_int_equal(list_all_ids(d, ids, 300), 100);
    assert_int_equal(ids[0], 151);
    int64_t take_ids[50];
    for (int i = 0; i < 50; i++)
        take_ids[i] = 151 + i;
    assert_int_equal(deadletter_take(d, take_ids, 50, accept_all, NULL), 50);
    deadletter_free(d);
    d = open_store(dir, 1000, 0);
    assert_int_equal(list_all_ids(d, ids, 300), 50);
    for (int i = 0; i < 50; i++)
        assert_int_equal(ids[i], 201 + i);
    deadletter_free(d);

    /* A smaller bound on open drops the oldest, and that sticks. */
    d = open_store(dir, 10, 0);
    deadletter_stats(d, &live, NULL, &dropped);
    assert_int_equal(live, 10);
    assert_int_equal(dropped, 40);
    deadletter_free(d);
    d = open_store(dir, 1000, 0);
    assert_int_equal(list_all_ids(d, ids, 300), 10);
    assert_int_equal(ids[0], 241);
    deadletter_free(d);
    remove_dir(dir);
}

static void test_bound_bytes(void **state)
{
    (void)state;
    const int64_t max_bytes = (int64_t)64 * 1024;
    char *dir = make_dir();
    struct deadletters *d = open_store(dir, 1000000, max_bytes);
    int64_t written = 0;
    int i = 0;
    int files = 0;
    while (written < 10 * max_bytes) {
        add_event(d, i, 400);
        written += 600;
        i++;
        int64_t bytes = dir_bytes(dir, &files);
        assert_true(bytes <= (int64_t)2 * max_bytes);
    }
    int64_t live, added, dropped;
    deadletter_stats(d, &live, &added, &dropped);
    assert_int_equal(added, i);
    assert_true(dropped > 0);
    assert_int_equal(live + dropped, i);
    assert_true(dir_bytes(dir, &files) <= max_bytes + max_bytes / 4);
    assert_true(files >= 2 && files <= 6);

    /* The newest entries are the ones kept, contiguously; in memory they fit in max_bytes. */
    int64_t *ids = calloc((size_t)i, sizeof *ids);
    size_t n = list_all_ids(d, ids, (size_t)i);
    assert_int_equal(n, live);
    assert_int_equal(ids[n - 1], i);
    for (size_t k = 1; k < n; k++)
        assert_int_equal(ids[k], ids[k - 1] + 1);
    struct core_buf out;
    core_buf_init(&out);
    assert_true(live < 1000);
    assert_int_equal(deadletter_list_json(d, 0, 1000, &out), 0);
    assert_true((int64_t)out.len <= max_bytes + 4096);
    core_buf_dispose(&out);
    deadletter_free(d);

    d = open_store(dir, 1000000, max_bytes);
    int64_t *ids2 = calloc((size_t)i, sizeof *ids2);
    assert_int_equal(list_all_ids(d, ids2, (size_t)i), n);
    assert_memory_equal(ids, ids2, n * sizeof *ids);
    free(ids);
    free(ids2);

    /* An entry that cannot fit a segment is refused. */
    char big[40000];
    memset(big, 'y', sizeof big);
    big[0] = '{';
    big[1] = '"';
    big[2] = 'a';
    big[3] = '"';
    big[4] = ':';
    big[5] = '"';
    big[sizeof big - 2] = '"';
    big[sizeof big - 1] = '}';
    assert_int_equal(deadletter_add(d, 1, "/v1/events", big, sizeof big, "[]", 2, NULL),
                     CORE_E_TOOBIG);
    deadletter_free(d);
    remove_dir(dir);
}

struct take_check {
    int calls;
    int64_t last_id;
    bool ordered;
    bool content_ok;
};

static bool accept_even(void *arg, int64_t id, const char *event_json, size_t len)
{
    struct take_check *tc = arg;
    tc->calls++;
    if (id <= tc->last_id)
        tc->ordered = false;
    tc->last_id = id;
    /* Entry id k holds event i = k - 1. */
    char want[4096];
    size_t n = event_text(want, sizeof want, (int)(id - 1), 0);
    if (n != len || memcmp(want, event_json, len) != 0)
        tc->content_ok = false;
    return id % 2 == 0;
}

static void test_take(void **state)
{
    (void)state;
    char *dir = make_dir();
    struct deadletters *d = open_store(dir, 0, 0);
    for (int i = 0; i < 10; i++)
        add_event(d, i, 0);

    struct take_check tc = {0, 0, true, true};
    assert_int_equal(deadletter_take(d, NULL, 0, accept_even, &tc), 5);
    assert_int_equal(tc.calls, 10);
    assert_true(tc.ordered);
    assert_true(tc.content_ok);

    /* Explicit ids: duplicates offered once, missing and already-removed ids skipped. */
    int calls = 0;
    const int64_t want[] = {7, 3, 7, 1000, 4};
    assert_int_equal(deadletter_take(d, want, 5, accept_all, &calls), 2);
    assert_int_equal(calls, 2);
    deadletter_free(d);

    d = open_store(dir, 0, 0);
    int64_t ids[16] = {0};
    assert_int_equal(list_all_ids(d, ids, 16), 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 5);
    assert_int_equal(ids[2], 9);
    /* Nothing accepted: nothing removed. */
    tc = (struct take_check){0, 0, true, true};
    const int64_t odd[] = {1, 9};
    assert_int_equal(deadletter_take(d, odd, 2, accept_even, &tc), 0);
    assert_int_equal(tc.calls, 2);
    deadletter_free(d);
    d = open_store(dir, 0, 0);
    assert_int_equal(list_all_ids(d, ids, 16), 3);
    deadletter_free(d);
    remove_dir(dir);
}

static void test_torn_last_line(void **state)
{
    (void)state;
    char *dir = make_dir();
    struct deadletters *d = open_store(dir, 0, 0);
    for (int i = 0; i < 5; i++)
        add_event(d, i, 0);
    deadletter_free(d);

    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/1.ndjson", dir);
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    /* A corrupt complete line is skipped too; the torn one is the tail. */
    const char torn[] = "not json\n{\"id\":6,\"receivedAt\":17,\"source\":\"/v1/ev";
    assert_int_equal(write(fd, torn, strlen(torn)), (ssize_t)strlen(torn));
    close(fd);

    d = open_store(dir, 0, 0);
    int64_t ids[16] = {0};
    assert_int_equal(list_all_ids(d, ids, 16), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ids[i], i + 1);
    /* Later appends start on a clean line, so they survive the next restart. */
    int64_t id = add_event(d, 5, 0);
    assert_true(id >= 6);
    deadletter_free(d);
    d = open_store(dir, 0, 0);
    assert_int_equal(list_all_ids(d, ids, 16), 6);
    assert_int_equal(ids[5], id);
    deadletter_free(d);
    remove_dir(dir);
}

/* ---- concurrency ------------------------------------------------------------------------- */

#define THREADS 4
#define PER_THREAD 2000
#define CONC_MAX_BYTES ((int64_t)256 * 1024)

struct adder {
    struct deadletters *d;
    int base;
    int64_t ids[PER_THREAD];
};

static void *adder_main(void *arg)
{
    struct adder *a = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char ev[256];
        size_t n = event_text(ev, sizeof ev, a->base + i, 20);
        if (deadletter_add(a->d, i, "/v1/events", ev, n, ERRORS, strlen(ERRORS), &a->ids[i]) < 0)
            a->ids[i] = -1;
    }
    return NULL;
}

struct lister {
    struct deadletters *d;
    volatile int stop;
    int pages;
    int removed;
    bool valid;
};

static bool accept_some(void *arg, int64_t id, const char *event_json, size_t len)
{
    (void)arg;
    (void)event_json;
    (void)len;
    return id % 7 == 0;
}

static void *lister_main(void *arg)
{
    struct lister *l = arg;
    struct core_buf out;
    core_buf_init(&out);
    while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE)) {
        core_buf_reset(&out);
        deadletter_list_json(l->d, 0, 200, &out);
        cJSON *j = cJSON_ParseWithLength(out.data, out.len);
        if (!j)
            l->valid = false;
        cJSON_Delete(j);
        l->pages++;
        if (l->pages % 10 == 0) {
            int r = deadletter_take(l->d, NULL, 0, accept_some, NULL);
            if (r < 0)
                l->valid = false;
            else
                l->removed += r;
        }
    }
    core_buf_dispose(&out);
    return NULL;
}

static void test_concurrent_adds(void **state)
{
    (void)state;
    char *dir = make_dir();
    /* Small bounds so rotation and both kinds of drop happen while threads race. */
    struct deadletters *d = open_store(dir, 1000, CONC_MAX_BYTES);
    struct adder *adders = calloc(THREADS, sizeof *adders);
    pthread_t th[THREADS], lt;
    struct lister l = {d, 0, 0, 0, true};
    assert_int_equal(pthread_create(&lt, NULL, lister_main, &l), 0);
    for (int t = 0; t < THREADS; t++) {
        adders[t].d = d;
        adders[t].base = t * PER_THREAD;
        assert_int_equal(pthread_create(&th[t], NULL, adder_main, &adders[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    __atomic_store_n(&l.stop, 1, __ATOMIC_RELEASE);
    pthread_join(lt, NULL);
    assert_true(l.valid);
    assert_true(l.pages > 0);

    int64_t *all = calloc((size_t)THREADS * PER_THREAD, sizeof *all);
    size_t n = 0;
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < PER_THREAD; i++) {
            assert_true(adders[t].ids[i] > 0);
            if (i > 0)
                assert_true(adders[t].ids[i] > adders[t].ids[i - 1]);
            all[n++] = adders[t].ids[i];
        }
    for (size_t i = 0; i < n; i++) /* ids unique: they are exactly 1..n */
        assert_true(all[i] >= 1 && all[i] <= (int64_t)n);
    char *seen = calloc(n + 1, 1);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(seen[all[i]], 0);
        seen[all[i]] = 1;
    }
    int64_t live, added, dropped;
    deadletter_stats(d, &live, &added, &dropped);
    assert_int_equal(added, (int64_t)n);
    assert_int_equal(live + dropped + l.removed, (int64_t)n);
    assert_true(live <= 1000);
    int files;
    assert_true(dir_bytes(dir, &files) <= 2 * CONC_MAX_BYTES);
    deadletter_free(d);

    d = open_store(dir, 1000, CONC_MAX_BYTES);
    int64_t live2;
    deadletter_stats(d, &live2, NULL, NULL);
    assert_int_equal(live2, live);
    deadletter_free(d);
    free(seen);
    free(all);
    free(adders);
    remove_dir(dir);
}

/* Sealed lines (serve seals with the data key): nothing in clear on disk, a reopen with the
 * key reads every entry back, a damaged line is skipped (the others stay), and another key
 * reads nothing. */
static struct deadletters *open_sealed(const char *dir, const struct seal_key *key)
{
    struct deadletter_options o;
    deadletter_options_init(&o);
    o.dir = dir;
    o.key = key;
    struct deadletters *d = NULL;
    assert_int_equal(deadletter_open(&o, &d), 0);
    return d;
}

static void test_sealed_lines(void **state)
{
    (void)state;
    char *dir = make_dir();
    struct seal_key key = {.key = {42}}, other = {.key = {43}};
    struct deadletters *d = open_sealed(dir, &key);
    char ev[128];
    for (int i = 0; i < 3; i++) {
        int n = snprintf(ev, sizeof ev, "{\"userId\":\"u\",\"note\":\"secret-prop-%d\"}", i);
        assert_int_equal(
            deadletter_add(d, 1000 + i, "/v1/events", ev, (size_t)n, ERRORS, strlen(ERRORS), NULL),
            0);
    }
    deadletter_free(d);

    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/1.ndjson", dir);
    struct core_buf b;
    core_buf_init(&b);
    assert_int_equal(core_read_file(path, 1 << 20, &b), 0);
    assert_null(memmem(b.data, b.len, "secret-prop", 11));
    assert_null(memmem(b.data, b.len, "properties", 10));

    d = open_sealed(dir, &key);
    struct core_buf out;
    core_buf_init(&out);
    assert_int_equal(deadletter_list_json(d, 0, 100, &out), 0);
    assert_non_null(strstr(out.data, "secret-prop-0"));
    assert_non_null(strstr(out.data, "secret-prop-2"));
    int64_t live;
    deadletter_stats(d, &live, NULL, NULL);
    assert_int_equal(live, 3);
    deadletter_free(d);

    /* Flip a byte in the middle of the second line: only that entry is lost (and logged). */
    const char *nl = memchr(b.data, '\n', b.len);
    assert_non_null(nl);
    size_t pos = (size_t)(nl - b.data) + 10;
    int fd = open(path, O_RDWR);
    char c = b.data[pos] == 'A' ? 'B' : 'A';
    assert_int_equal(pwrite(fd, &c, 1, (off_t)pos), 1);
    close(fd);
    d = open_sealed(dir, &key);
    deadletter_stats(d, &live, NULL, NULL);
    assert_int_equal(live, 2);
    core_buf_reset(&out);
    assert_int_equal(deadletter_list_json(d, 0, 100, &out), 0);
    assert_null(strstr(out.data, "secret-prop-1"));
    deadletter_free(d);

    /* Another key opens nothing. */
    d = open_sealed(dir, &other);
    deadletter_stats(d, &live, NULL, NULL);
    assert_int_equal(live, 0);
    deadletter_free(d);
    core_buf_dispose(&b);
    core_buf_dispose(&out);
    remove_dir(dir);
}

int main(void)
{
    core_log_set_level(CORE_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_list_roundtrip),
        cmocka_unit_test(test_ids_survive_reopen),
        cmocka_unit_test(test_ids_not_reused_after_emptying),
        cmocka_unit_test(test_bound_entries),
        cmocka_unit_test(test_bound_bytes),
        cmocka_unit_test(test_take),
        cmocka_unit_test(test_torn_last_line),
        cmocka_unit_test(test_concurrent_adds),
        cmocka_unit_test(test_sealed_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
