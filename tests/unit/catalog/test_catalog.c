/* The item catalog: put/get/delete round trip, validation naming the field, interned
 * symbols, the version counter, persistence across reopen (also after compaction), a torn
 * last journal line, a corrupt middle line, the max_items bound, bulk puts, bounded slots
 * and readers running while a writer puts and deletes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "catalog/catalog.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------------------------- */

static char *make_dir(void)
{
    char *dir = strdup("/tmp/recstream-cat-XXXXXX");
    assert_non_null(dir);
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void remove_dir(char *dir)
{
    DIR *dh = opendir(dir);
    assert_non_null(dh);
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        assert_int_equal(unlink(path), 0);
    }
    closedir(dh);
    assert_int_equal(rmdir(dir), 0);
    free(dir);
}

static struct catalog *open_cat(const char *dir, int64_t max_items)
{
    struct catalog_options o;
    catalog_options_init(&o);
    o.dir = dir;
    if (max_items > 0)
        o.max_items = max_items;
    struct catalog *c = NULL;
    assert_int_equal(catalog_open(&o, &c), 0);
    assert_non_null(c);
    return c;
}

static int put_text(struct catalog *c, const char *id, const char *json, bool *created,
                    struct event_error *err)
{
    cJSON *obj = cJSON_Parse(json);
    assert_non_null(obj);
    struct event_error e;
    bool cr = false;
    int rc = catalog_put(c, id, strlen(id), obj, &cr, err ? err : &e);
    cJSON_Delete(obj);
    if (created)
        *created = cr;
    return rc;
}

static void put_ok(struct catalog *c, const char *id, const char *json)
{
    struct event_error err;
    int rc = put_text(c, id, json, NULL, &err);
    if (rc != 0)
        fail_msg("put %s: %d %s: %s", id, rc, err.field, err.message);
}

/* The item's JSON, parsed. */
static cJSON *get_obj(struct catalog *c, const char *id)
{
    struct core_buf b;
    core_buf_init(&b);
    int rc = catalog_get_json(c, id, strlen(id), &b);
    cJSON *j = rc == 0 ? cJSON_Parse(b.data) : NULL;
    if (rc == 0)
        assert_non_null(j);
    core_buf_dispose(&b);
    return j;
}

static const char *str_of(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static double num_of(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static char *journal_path(const char *dir, char *out, size_t size)
{
    snprintf(out, size, "%s/journal.ndjson", dir);
    return out;
}

static off_t file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return -1;
    return st.st_size;
}

static void append_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_put_get_delete_roundtrip(void **state)
{
    (void)state;
    struct catalog *c = open_cat(NULL, 0);
    bool created = false;
    assert_int_equal(
        put_text(c, "sku-1",
                 "{\"title\":\"Red shoe\",\"categories\":[\"shoes\",\"red\",\"shoes\"],"
                 "\"tags\":[\"sale\"],\"attributes\":{\"price\": 9.5, \"sizes\":[1,2]},"
                 "\"publishedAt\":\"2024-01-02T03:04:05Z\",\"available\":false}",
                 &created, NULL),
        0);
    assert_true(created);
    assert_int_equal(catalog_count(c), 1);

    cJSON *j = get_obj(c, "sku-1");
    assert_non_null(j);
    assert_string_equal(str_of(j, "itemId"), "sku-1");
    assert_string_equal(str_of(j, "title"), "Red shoe");
    const cJSON *cats = cJSON_GetObjectItemCaseSensitive(j, "categories");
    assert_int_equal(cJSON_GetArraySize(cats), 2); /* the repeated "shoes" is kept once */
    assert_string_equal(cJSON_GetArrayItem(cats, 0)->valuestring, "shoes");
    assert_string_equal(cJSON_GetArrayItem(cats, 1)->valuestring, "red");
    assert_int_equal((int64_t)num_of(j, "publishedAt"), 1704164645000LL);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "available")));
    assert_true(num_of(j, "updatedAt") > 1.7e12);
    char *attrs = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j, "attributes"));
    assert_string_equal(attrs, "{\"price\":9.5,\"sizes\":[1,2]}");
    free(attrs);
    cJSON_Delete(j);

    catalog_read_begin(c);
    const struct catalog_item *it = catalog_find(c, "sku-1", 5);
    assert_non_null(it);
    uint32_t idx = it->idx;
    assert_ptr_equal(catalog_at(c, idx), it);
    assert_string_equal(it->id, "sku-1");
    assert_int_equal(it->id_len, 5);
    assert_string_equal(it->attributes_json, "{\"price\":9.5,\"sizes\":[1,2]}");
    assert_int_equal(it->ntags, 1);
    assert_string_equal(catalog_symbol(c, it->tags[0]), "sale");
    assert_false(it->available);
    catalog_read_end(c);

    /* Replacing keeps the idx; absent fields take their defaults again. */
    assert_int_equal(put_text(c, "sku-1", "{\"title\":\"Blue shoe\"}", &created, NULL), 0);
    assert_false(created);
    catalog_read_begin(c);
    it = catalog_find(c, "sku-1", 5);
    assert_int_equal(it->idx, idx);
    assert_string_equal(it->title, "Blue shoe");
    assert_int_equal(it->ncategories, 0);
    assert_true(it->available);
    assert_int_equal(it->published_ms, 0);
    assert_string_equal(it->attributes_json, "{}");
    catalog_read_end(c);

    /* A GET reply can be PUT back as it is (itemId and updatedAt included). */
    struct core_buf b;
    core_buf_init(&b);
    assert_int_equal(catalog_get_json(c, "sku-1", 5, &b), 0);
    assert_int_equal(put_text(c, "sku-1", b.data, &created, NULL), 0);
    core_buf_dispose(&b);

    assert_int_equal(catalog_delete(c, "sku-1", 5), 0);
    assert_null(get_obj(c, "sku-1"));
    assert_int_equal(catalog_delete(c, "sku-1", 5), CORE_E_NOTFOUND);
    assert_int_equal(catalog_count(c), 0);
    catalog_read_begin(c);
    assert_null(catalog_find(c, "sku-1", 5));
    assert_null(catalog_at(c, idx));
    catalog_read_end(c);

    /* A re-put gets the old idx back. */
    assert_int_equal(put_text(c, "sku-1", "{}", &created, NULL), 0);
    assert_true(created);
    catalog_read_begin(c);
    assert_int_equal(catalog_find(c, "sku-1", 5)->idx, idx);
    catalog_read_end(c);
    catalog_close(c);
}

struct bad_case {
    const char *id;
    const char *json;
    const char *field;
};

static void test_validation_names_field(void **state)
{
    (void)state;
    char long_title[CATALOG_TITLE_MAX + 64], long_sym[CATALOG_SYMBOL_MAX + 64];
    char many_tags[64 * CATALOG_TAGS_MAX], big_attrs[CATALOG_ATTRIBUTES_MAX + 64];
    char long_id[EVENT_ITEM_MAX + 2];
    snprintf(long_title, sizeof long_title, "{\"title\":\"%0*d\"}", CATALOG_TITLE_MAX + 1, 0);
    snprintf(long_sym, sizeof long_sym, "{\"tags\":[\"ok\",\"%0*d\"]}", CATALOG_SYMBOL_MAX + 1, 0);
    int n = snprintf(many_tags, sizeof many_tags, "{\"tags\":[");
    for (int i = 0; i <= CATALOG_TAGS_MAX; i++)
        n += snprintf(many_tags + n, sizeof many_tags - (size_t)n, "%s\"t%d\"", i ? "," : "", i);
    snprintf(many_tags + n, sizeof many_tags - (size_t)n, "]}");
    snprintf(big_attrs, sizeof big_attrs, "{\"attributes\":{\"a\":\"%0*d\"}}",
             CATALOG_ATTRIBUTES_MAX, 0);
    memset(long_id, 'x', EVENT_ITEM_MAX + 1);
    long_id[EVENT_ITEM_MAX + 1] = '\0';

    const struct bad_case cases[] = {
        {"a", "{\"foo\":1}", "/foo"},
        {"a", "{\"title\":\"x\",\"a/b~\":1}", "/a~1b~0"},
        {"a", "{\"title\":\"x\",\"title\":\"y\"}", "/title"},
        {"a", "[1]", ""},
        {"a", "{\"title\":5}", "/title"},
        {"a", long_title, "/title"},
        {"a", "{\"categories\":\"shoes\"}", "/categories"},
        {"a", "{\"categories\":[\"a\",\"\"]}", "/categories/1"},
        {"a", "{\"categories\":[\"a\",7]}", "/categories/1"},
        {"a", long_sym, "/tags/1"},
        {"a", many_tags, "/tags"},
        {"a", "{\"attributes\":[1]}", "/attributes"},
        {"a", big_attrs, "/attributes"},
        {"a", "{\"publishedAt\":\"yesterday\"}", "/publishedAt"},
        {"a", "{\"publishedAt\":1.5}", "/publishedAt"},
        {"a", "{\"available\":\"yes\"}", "/available"},
        {"a", "{\"itemId\":\"b\"}", "/itemId"},
        {long_id, "{}", "/itemId"},
        {"", "{}", "/itemId"},
    };
    struct catalog *c = open_cat(NULL, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct event_error err;
        memset(&err, 0, sizeof err);
        int rc = put_text(c, cases[i].id, cases[i].json, NULL, &err);
        if (rc != CORE_E_INVALID || strcmp(err.field, cases[i].field) != 0)
            fail_msg("case %zu: rc %d field \"%s\" (want \"%s\"): %s", i, rc, err.field,
                     cases[i].field, err.message);
        assert_true(err.message[0] != '\0');
    }
    assert_int_equal(catalog_count(c), 0);
    assert_int_equal(catalog_version(c), 0);

    /* Accepted spellings: null as absent, an equal or integer itemId, ms publishedAt. */
    put_ok(c, "a", "{\"title\":null,\"categories\":null,\"available\":null,\"attributes\":null}");
    put_ok(c, "a", "{\"itemId\":\"a\",\"publishedAt\":1700000000000}");
    put_ok(c, "42", "{\"itemId\":42}");
    assert_int_equal(catalog_count(c), 2);
    catalog_close(c);
}

static void test_symbols_interned(void **state)
{
    (void)state;
    struct catalog *c = open_cat(NULL, 0);
    put_ok(c, "a", "{\"categories\":[\"shoes\",\"sport\"],\"tags\":[\"sale\",\"shoes\"]}");
    put_ok(c, "b", "{\"categories\":[\"sport\"],\"tags\":[\"new\"]}");
    catalog_read_begin(c);
    const struct catalog_item *a = catalog_find(c, "a", 1), *b = catalog_find(c, "b", 1);
    assert_int_equal(a->ncategories, 2);
    assert_int_equal(a->categories[1], b->categories[0]); /* "sport" shared by items */
    assert_int_equal(a->categories[0], a->tags[1]);       /* and by categories and tags */
    assert_int_equal(catalog_symbol_count(c), 4);
    int64_t sport = catalog_symbol_find(c, "sport", 5);
    assert_int_equal(sport, (int64_t)b->categories[0]);
    assert_string_equal(catalog_symbol(c, (uint32_t)sport), "sport");
    assert_int_equal(catalog_symbol_find(c, "nope", 4), -1);
    assert_null(catalog_symbol(c, 4));
    catalog_read_end(c);

    /* Symbols are never removed: ids stay valid after their items go. */
    assert_int_equal(catalog_delete(c, "a", 1), 0);
    assert_int_equal(catalog_delete(c, "b", 1), 0);
    catalog_read_begin(c);
    assert_int_equal(catalog_symbol_find(c, "sport", 5), sport);
    assert_int_equal(catalog_symbol_count(c), 4);
    catalog_read_end(c);
    catalog_close(c);
}

static void test_version_increments(void **state)
{
    (void)state;
    struct catalog *c = open_cat(NULL, 0);
    uint64_t v0 = catalog_version(c);
    put_ok(c, "a", "{}");
    assert_int_equal(catalog_version(c), v0 + 1);
    put_ok(c, "a", "{\"title\":\"t\"}");
    assert_int_equal(catalog_version(c), v0 + 2);
    assert_int_equal(put_text(c, "a", "{\"bad\":1}", NULL, NULL), CORE_E_INVALID);
    assert_int_equal(catalog_delete(c, "zzz", 3), CORE_E_NOTFOUND);
    assert_int_equal(catalog_version(c), v0 + 2);
    assert_int_equal(catalog_delete(c, "a", 1), 0);
    assert_int_equal(catalog_version(c), v0 + 3);
    catalog_close(c);
}

static void test_put_many(void **state)
{
    (void)state;
    struct catalog *c = open_cat(NULL, 0);
    cJSON *arr =
        cJSON_Parse("[{\"itemId\":\"a\",\"title\":\"1\"},{\"itemId\":\"a\",\"title\":\"2\"},"
                    "{\"title\":\"no id\"},{\"itemId\":\"b\",\"tags\":[3]},"
                    "{\"itemId\":7}]");
    assert_non_null(arr);
    struct catalog_put_req reqs[5];
    memset(reqs, 0, sizeof reqs);
    for (int i = 0; i < 5; i++)
        reqs[i].obj = cJSON_GetArrayItem(arr, i);
    assert_int_equal(catalog_put_many(c, reqs, 5), 3);
    assert_int_equal(reqs[0].rc, 0);
    assert_true(reqs[0].created);
    assert_int_equal(reqs[1].rc, 0);
    assert_false(reqs[1].created); /* the same id again in one bulk replaces */
    assert_int_equal(reqs[2].rc, CORE_E_INVALID);
    assert_string_equal(reqs[2].err.field, "/itemId");
    assert_int_equal(reqs[3].rc, CORE_E_INVALID);
    assert_string_equal(reqs[3].err.field, "/tags/0");
    assert_int_equal(reqs[4].rc, 0);
    assert_int_equal(catalog_count(c), 2);
    assert_int_equal(catalog_version(c), 3);
    cJSON *j = get_obj(c, "a");
    assert_string_equal(str_of(j, "title"), "2");
    cJSON_Delete(j);
    j = get_obj(c, "7");
    assert_non_null(j);
    cJSON_Delete(j);
    cJSON_Delete(arr);
    catalog_close(c);
}

static void test_max_items(void **state)
{
    (void)state;
    struct catalog *c = open_cat(NULL, 3);
    put_ok(c, "a", "{}");
    put_ok(c, "b", "{}");
    put_ok(c, "c", "{}");
    struct event_error err;
    assert_int_equal(put_text(c, "d", "{}", NULL, &err), CORE_E_FULL);
    assert_true(strstr(err.message, "maximum") != NULL);
    put_ok(c, "a", "{\"title\":\"replacing is fine\"}");
    assert_int_equal(catalog_delete(c, "b", 1), 0);
    put_ok(c, "d", "{}");
    assert_int_equal(catalog_count(c), 3);

    /* In a bulk, the items that still fit are stored. */
    assert_int_equal(catalog_delete(c, "d", 1), 0);
    cJSON *arr = cJSON_Parse("[{\"itemId\":\"x\"},{\"itemId\":\"x\"},{\"itemId\":\"y\"}]");
    struct catalog_put_req reqs[3];
    memset(reqs, 0, sizeof reqs);
    for (int i = 0; i < 3; i++)
        reqs[i].obj = cJSON_GetArrayItem(arr, i);
    assert_int_equal(catalog_put_many(c, reqs, 3), 2);
    assert_int_equal(reqs[2].rc, CORE_E_FULL);
    assert_int_equal(catalog_count(c), 3);
    cJSON_Delete(arr);
    catalog_close(c);
}

/* Ids that come and go: the slots stay bounded, live idxs never move. */
static void test_slots_bounded(void **state)
{
    (void)state;
    struct catalog *c = open_cat(NULL, 4);
    put_ok(c, "keep", "{\"title\":\"k\"}");
    catalog_read_begin(c);
    uint32_t keep_idx = catalog_find(c, "keep", 4)->idx;
    catalog_read_end(c);
    char id[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "tmp-%d", i);
        put_ok(c, id, "{}");
        assert_int_equal(catalog_delete(c, id, strlen(id)), 0);
    }
    put_ok(c, "tmp-4999", "{}");
    catalog_read_begin(c);
    assert_true(catalog_capacity(c) <= 1024);
    assert_int_equal(catalog_find(c, "keep", 4)->idx, keep_idx);
    assert_string_equal(catalog_find(c, "keep", 4)->title, "k");
    assert_non_null(catalog_find(c, "tmp-4999", 8));
    assert_null(catalog_find(c, "tmp-10", 6));
    catalog_read_end(c);
    assert_int_equal(catalog_count(c), 2);
    catalog_close(c);
}

static void test_persistence(void **state)
{
    (void)state;
    char *dir = make_dir();
    struct catalog *c = open_cat(dir, 0);
    put_ok(c, "a", "{\"title\":\"A\",\"categories\":[\"x\"],\"attributes\":{\"k\":[true,null]}}");
    put_ok(c, "b", "{\"title\":\"B\",\"publishedAt\":1234}");
    put_ok(c, "c", "{\"title\":\"C\"}");
    assert_int_equal(catalog_delete(c, "b", 1), 0);
    put_ok(c, "c", "{\"title\":\"C2\",\"available\":false}");
    struct core_buf before;
    core_buf_init(&before);
    assert_int_equal(catalog_get_json(c, "a", 1, &before), 0);
    catalog_close(c);

    c = open_cat(dir, 0);
    assert_int_equal(catalog_count(c), 2);
    struct core_buf after;
    core_buf_init(&after);
    assert_int_equal(catalog_get_json(c, "a", 1, &after), 0);
    assert_string_equal(after.data, before.data); /* updatedAt included */
    assert_null(get_obj(c, "b"));
    cJSON *j = get_obj(c, "c");
    assert_string_equal(str_of(j, "title"), "C2");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "available")));
    cJSON_Delete(j);
    catalog_read_begin(c);
    assert_int_equal(catalog_find(c, "a", 1)->idx, 0);
    assert_string_equal(catalog_symbol(c, catalog_find(c, "a", 1)->categories[0]), "x");
    catalog_read_end(c);
    catalog_close(c);
    core_buf_dispose(&before);
    core_buf_dispose(&after);
    remove_dir(dir);
}

static void test_compaction(void **state)
{
    (void)state;
    char *dir = make_dir();
    char path[PATH_MAX], snap[PATH_MAX], id[32], json[64];
    journal_path(dir, path, sizeof path);
    snprintf(snap, sizeof snap, "%s/snapshot.ndjson", dir);
    struct catalog *c = open_cat(dir, 0);
    for (int i = 0; i < 1500; i++) {
        snprintf(id, sizeof id, "item-%d", i % 20);
        snprintf(json, sizeof json, "{\"title\":\"v%d\"}", i);
        put_ok(c, id, json);
    }
    assert_int_equal(catalog_delete(c, "item-3", 6), 0);
    assert_true(file_size(snap) > 0);
    /* 1500 lines went in; the journal holds only those since the compaction. */
    struct core_buf jb;
    core_buf_init(&jb);
    assert_int_equal(core_read_file(path, 1 << 24, &jb), 0);
    size_t lines = 0;
    for (size_t i = 0; i < jb.len; i++)
        lines += jb.data[i] == '\n';
    assert_true(lines < 1000);
    core_buf_dispose(&jb);
    catalog_close(c);

    c = open_cat(dir, 0);
    assert_int_equal(catalog_count(c), 19);
    for (int k = 0; k < 20; k++) {
        snprintf(id, sizeof id, "item-%d", k);
        cJSON *j = get_obj(c, id);
        if (k == 3) {
            assert_null(j);
            continue;
        }
        assert_non_null(j);
        int last = 1480 + k; /* the last i with i % 20 == k */
        snprintf(json, sizeof json, "v%d", last);
        assert_string_equal(str_of(j, "title"), json);
        cJSON_Delete(j);
    }
    catalog_close(c);

    /* A crash between writing the snapshot and emptying the journal: the journal replays
     * over the snapshot and changes nothing. */
    struct core_buf sb;
    core_buf_init(&sb);
    assert_int_equal(core_read_file(snap, 1 << 24, &sb), 0);
    append_file(path, "{\"op\":\"put\",\"itemId\":\"item-3\",\"item\":{\"title\":\"old\"}}\n");
    append_file(path, "{\"op\":\"del\",\"itemId\":\"item-3\"}\n");
    c = open_cat(dir, 0);
    assert_int_equal(catalog_count(c), 19);
    assert_null(get_obj(c, "item-3"));
    catalog_close(c);
    core_buf_dispose(&sb);
    remove_dir(dir);
}

static void test_torn_last_line(void **state)
{
    (void)state;
    char *dir = make_dir();
    char path[PATH_MAX];
    journal_path(dir, path, sizeof path);
    struct catalog *c = open_cat(dir, 0);
    put_ok(c, "a", "{\"title\":\"A\"}");
    put_ok(c, "b", "{\"title\":\"B\"}");
    catalog_close(c);
    off_t good = file_size(path);

    append_file(path, "{\"op\":\"put\",\"itemId\":\"c\",\"item\":{\"tit");
    c = open_cat(dir, 0);
    assert_int_equal(catalog_count(c), 2);
    assert_int_equal(file_size(path), good);
    put_ok(c, "d", "{\"title\":\"D\"}"); /* appends go on after the cut */
    catalog_close(c);

    /* A complete last line that does not parse is torn too. */
    good = file_size(path);
    append_file(path, "\x01garbage\n");
    c = open_cat(dir, 0);
    assert_int_equal(catalog_count(c), 3);
    assert_int_equal(file_size(path), good);
    cJSON *j = get_obj(c, "d");
    assert_string_equal(str_of(j, "title"), "D");
    cJSON_Delete(j);
    catalog_close(c);
    remove_dir(dir);
}

static void test_corrupt_middle_line(void **state)
{
    (void)state;
    char *dir = make_dir();
    char path[PATH_MAX];
    journal_path(dir, path, sizeof path);
    struct catalog *c = open_cat(dir, 0);
    put_ok(c, "a", "{}");
    catalog_close(c);
    append_file(path, "{\"op\":\"put\",\"itemId\":\"b\",\"item\":{\"bogus\":1}}\n");
    append_file(path, "{\"op\":\"del\",\"itemId\":\"a\"}\n");
    struct catalog_options o;
    catalog_options_init(&o);
    o.dir = dir;
    c = NULL;
    assert_int_equal(catalog_open(&o, &c), CORE_E_CORRUPT);
    assert_null(c);
    remove_dir(dir);

    /* A bad line anywhere in the snapshot is refused. */
    dir = make_dir();
    char snap[PATH_MAX];
    snprintf(snap, sizeof snap, "%s/snapshot.ndjson", dir);
    append_file(snap, "{\"op\":\"put\",\"itemId\":\"a\",\"item\":{}}\n{\"op\":\"put\"");
    o.dir = dir;
    assert_int_equal(catalog_open(&o, &c), CORE_E_CORRUPT);
    assert_null(c);
    remove_dir(dir);
}

/* ---- readers while a writer changes items ---------------------------------------------------- */

#define CONC_ITEMS 400
#define CONC_ROUNDS 6

struct conc {
    struct catalog *c;
    atomic_bool done;
    atomic_long checks;
};

/* Every version of item i has title "t<i>-<round>", categories ["c<i%5>","all"] and tags
 * ["r<round>"]: a reader seeing anything else saw a half-built item. */
static void *writer_main(void *arg)
{
    struct conc *k = arg;
    char id[32], json[160];
    for (int r = 0; r < CONC_ROUNDS; r++) {
        for (int i = 0; i < CONC_ITEMS; i++) {
            snprintf(id, sizeof id, "i%d", i);
            if (r % 2 == 1 && i % 3 == 0) {
                catalog_delete(k->c, id, strlen(id));
                continue;
            }
            snprintf(json, sizeof json,
                     "{\"title\":\"t%d-%d\",\"categories\":[\"c%d\",\"all\"],\"tags\":[\"r%d\"]}",
                     i, r, i % 5, r);
            put_ok(k->c, id, json);
        }
    }
    atomic_store(&k->done, true);
    return NULL;
}

static void check_item(struct catalog *c, const struct catalog_item *it)
{
    int i = -1, r = -1;
    assert_int_equal(sscanf(it->id, "i%d", &i), 1);
    assert_ptr_equal(catalog_find(c, it->id, it->id_len), it);
    assert_int_equal(sscanf(it->title, "t%*d-%d", &r), 1);
    char want[32];
    snprintf(want, sizeof want, "t%d-%d", i, r);
    assert_string_equal(it->title, want);
    assert_int_equal(it->ncategories, 2);
    snprintf(want, sizeof want, "c%d", i % 5);
    assert_string_equal(catalog_symbol(c, it->categories[0]), want);
    assert_string_equal(catalog_symbol(c, it->categories[1]), "all");
    assert_int_equal(it->ntags, 1);
    snprintf(want, sizeof want, "r%d", r);
    assert_string_equal(catalog_symbol(c, it->tags[0]), want);
}

static void *reader_main(void *arg)
{
    struct conc *k = arg;
    while (!atomic_load(&k->done)) {
        uint64_t v0 = catalog_version(k->c);
        catalog_read_begin(k->c);
        uint32_t cap = catalog_capacity(k->c);
        for (uint32_t idx = 0; idx < cap; idx++) {
            const struct catalog_item *it = catalog_at(k->c, idx);
            if (it) {
                assert_int_equal(it->idx, idx);
                check_item(k->c, it);
                atomic_fetch_add(&k->checks, 1);
            }
        }
        struct core_buf b;
        core_buf_init(&b);
        const struct catalog_item *it = catalog_find(k->c, "i1", 2);
        if (it)
            catalog_item_json(k->c, it, &b);
        catalog_read_end(k->c);
        core_buf_dispose(&b);
        assert_true(catalog_version(k->c) >= v0);
    }
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    (void)state;
    char *dir = make_dir();
    struct catalog_options o;
    catalog_options_init(&o);
    o.dir = dir;
    o.fsync = false;
    struct catalog *c = NULL;
    assert_int_equal(catalog_open(&o, &c), 0);
    struct conc k = {.c = c};
    atomic_init(&k.done, false);
    atomic_init(&k.checks, 0);
    pthread_t readers[4], writer;
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&readers[i], NULL, reader_main, &k), 0);
    assert_int_equal(pthread_create(&writer, NULL, writer_main, &k), 0);
    pthread_join(writer, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(readers[i], NULL);
    assert_true(atomic_load(&k.checks) > 0);
    int64_t count = catalog_count(c);
    assert_int_equal(count, CONC_ITEMS - (CONC_ITEMS + 2) / 3); /* the last round deletes */
    catalog_close(c);

    /* Everything the writer did is on disk. */
    c = open_cat(dir, 0);
    assert_int_equal(catalog_count(c), count);
    catalog_read_begin(c);
    for (uint32_t idx = 0; idx < catalog_capacity(c); idx++) {
        const struct catalog_item *it = catalog_at(c, idx);
        if (it)
            check_item(c, it);
    }
    catalog_read_end(c);
    catalog_close(c);
    remove_dir(dir);
}

int main(void)
{
    core_log_set_level(CORE_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_delete_roundtrip),
        cmocka_unit_test(test_validation_names_field),
        cmocka_unit_test(test_symbols_interned),
        cmocka_unit_test(test_version_increments),
        cmocka_unit_test(test_put_many),
        cmocka_unit_test(test_max_items),
        cmocka_unit_test(test_slots_bounded),
        cmocka_unit_test(test_persistence),
        cmocka_unit_test(test_compaction),
        cmocka_unit_test(test_torn_last_line),
        cmocka_unit_test(test_corrupt_middle_line),
        cmocka_unit_test(test_concurrent_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
