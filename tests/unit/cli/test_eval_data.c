/*
 * Tests of the eval dataset loaders: the real data sets in ../shared/data (skipped when
 * absent) checked against their SOURCE.md statistics, and small synthetic files for the
 * MovieLens CSV and NDJSON formats and for error messages.
 */
#include "cli/eval.h"
#include "event/event.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- helpers ---- */

/* path of a data file: this source's directory + "/../../../../shared/data/" + rel. */
static void data_path(const char *rel, char *out, size_t outsz)
{
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    int dirlen = slash ? (int)(slash - file) : 1;
    snprintf(out, outsz, "%.*s/../../../../shared/data/%s", dirlen, slash ? file : ".", rel);
}

/* Loads a real data set, or skips the test when the file is not there. */
static void load_real(const char *format, const char *rel, const struct eval_load_opts *o,
                      struct eval_data *d)
{
    char path[4096], err[512];
    data_path(rel, path, sizeof path);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "skipping: %s not found\n", path);
        skip();
    }
    int rc = eval_load(format, path, o, d, err, sizeof err);
    if (rc != 0)
        fail_msg("eval_load(%s): %s", format, err);
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

/* A fresh directory under /tmp for synthetic files. */
static void temp_dir(char *out, size_t outsz)
{
    snprintf(out, outsz, "/tmp/recstream-test-eval-XXXXXX");
    assert_non_null(mkdtemp(out));
}

static void remove_files(const char *dir, const char *const *names)
{
    char p[512];
    for (; *names; names++) {
        snprintf(p, sizeof p, "%s/%s", dir, *names);
        unlink(p);
    }
    rmdir(dir);
}

static void assert_time_sorted(const struct eval_data *d)
{
    for (size_t i = 1; i < d->n; i++) {
        const struct eval_event *a = &d->ev[i - 1], *b = &d->ev[i];
        assert_true(a->ts_ms < b->ts_ms || (a->ts_ms == b->ts_ms && a->order < b->order));
    }
}

static size_t find_item(const struct eval_data *d, const char *id)
{
    for (size_t i = 0; i < d->nitems; i++) {
        if (strcmp(d->items[i], id) == 0)
            return i;
    }
    fail_msg("item %s not loaded", id);
    return 0;
}

static const struct eval_event *by_order(const struct eval_data *d, uint32_t order)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->ev[i].order == order)
            return &d->ev[i];
    }
    fail_msg("no event with order %u", (unsigned)order);
    return NULL;
}

/* ---- ml-100k ---- */

struct udata_row {
    char user[16], item[16];
    int rating;
    int64_t secs;
};

/* Reads u.data independently of the loader, in file order. */
static struct udata_row *read_udata(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t cap = 100000;
    struct udata_row *rows = malloc(cap * sizeof *rows);
    long long secs;
    *n = 0;
    while (*n < cap && fscanf(fp, "%15s %15s %d %lld", rows[*n].user, rows[*n].item,
                              &rows[*n].rating, &secs) == 4) {
        rows[*n].secs = secs;
        (*n)++;
    }
    fclose(fp);
    return rows;
}

static void test_ml100k(void **state)
{
    (void)state;
    struct eval_data d;
    load_real("movielens", "ml-100k/u.data", NULL, &d);
    assert_int_equal(d.n, 100000);
    assert_int_equal(d.nusers, 943);
    assert_int_equal(d.nitems, 1682);
    assert_int_equal(d.skipped, 0);
    assert_time_sorted(&d);

    /* Every event is the line its order names: ties keep the file order. */
    char path[4096];
    data_path("ml-100k/u.data", path, sizeof path);
    size_t nrows;
    struct udata_row *rows = read_udata(path, &nrows);
    assert_int_equal(nrows, 100000);
    bool seen_tie = false;
    for (size_t i = 0; i < d.n; i++) {
        const struct eval_event *e = &d.ev[i];
        assert_true(e->order < nrows);
        const struct udata_row *r = &rows[e->order];
        assert_string_equal(d.users[e->user], r->user);
        assert_string_equal(d.items[e->item], r->item);
        assert_int_equal(e->ts_ms, r->secs * 1000);
        assert_true(e->has_value);
        assert_true(e->value == r->rating);
        assert_int_equal(e->type, EVENT_VIEW);
        if (i > 0 && d.ev[i - 1].ts_ms == e->ts_ms)
            seen_tie = true;
    }
    assert_true(seen_tie);
    free(rows);
    const struct eval_event *first = by_order(&d, 0);
    assert_string_equal(d.users[first->user], "196");
    assert_string_equal(d.items[first->item], "242");
    assert_int_equal(first->ts_ms, 881250949000LL);
    /* SOURCE.md: 1997-09-20 03:05:10 UTC to 1998-04-22 23:10:38 UTC. */
    assert_int_equal(d.ev[0].ts_ms, 874724710000LL);
    assert_int_equal(d.ev[d.n - 1].ts_ms, 893286638000LL);

    /* u.item beside it: titles (Latin-1 converted to UTF-8), genres, release dates. */
    assert_non_null(d.meta);
    const struct eval_item_meta *toy = &d.meta[find_item(&d, "1")];
    assert_string_equal(toy->title, "Toy Story (1995)");
    assert_int_equal(toy->ncategories, 3);
    assert_string_equal(toy->categories[0], "Animation");
    assert_string_equal(toy->categories[1], "Children's");
    assert_string_equal(toy->categories[2], "Comedy");
    assert_int_equal(toy->published_ms, 788918400000LL); /* 1995-01-01 */
    const struct eval_item_meta *mis = &d.meta[find_item(&d, "543")];
    assert_string_equal(mis->title, "Mis\xc3\xa9rables, Les (1995)");
    const struct eval_item_meta *unknown = &d.meta[find_item(&d, "267")];
    assert_string_equal(unknown->title, "unknown");
    assert_int_equal(unknown->published_ms, 0);
    assert_int_equal(unknown->ncategories, 1);
    assert_string_equal(unknown->categories[0], "unknown");
    for (size_t i = 0; i < d.nitems; i++)
        assert_non_null(d.meta[i].title);
    eval_data_free(&d);
    assert_null(d.ev);
}

static void test_ml100k_threshold_limit(void **state)
{
    (void)state;
    struct eval_load_opts o;
    eval_load_opts_init(&o);
    o.threshold = 4;
    o.rating_type = EVENT_RATING;
    struct eval_data d;
    load_real("movielens", "ml-100k/u.data", &o, &d);
    /* SOURCE.md: 34,174 fours and 21,201 fives. */
    assert_int_equal(d.n, 34174 + 21201);
    assert_int_equal(d.skipped, 100000 - d.n);
    for (size_t i = 0; i < d.n; i++) {
        assert_true(d.ev[i].value >= 4);
        assert_int_equal(d.ev[i].type, EVENT_RATING);
    }
    assert_time_sorted(&d);
    eval_data_free(&d);

    eval_load_opts_init(&o);
    o.limit = 10;
    load_real("movielens", "ml-100k/u.data", &o, &d);
    assert_int_equal(d.n, 10);
    for (uint32_t k = 0; k < 10; k++)
        (void)by_order(&d, k);
    assert_string_equal(d.users[by_order(&d, 0)->user], "196");
    assert_non_null(d.meta); /* metadata still read for the items that are there */
    for (size_t i = 0; i < d.nitems; i++)
        assert_non_null(d.meta[i].title);
    eval_data_free(&d);
}

/* ---- diginetica, otto ---- */

static void test_diginetica(void **state)
{
    (void)state;
    struct eval_data d;
    load_real("diginetica", "diginetica-sample/sample_train-item-views.csv", NULL, &d);
    assert_int_equal(d.n, 12391);
    assert_int_equal(d.nusers, 2986);
    assert_int_equal(d.nitems, 7139);
    assert_null(d.meta);
    assert_time_sorted(&d);
    /* First row: 1;NA;81766;526309;2016-05-09 */
    const struct eval_event *e = by_order(&d, 0);
    assert_string_equal(d.users[e->user], "1");
    assert_string_equal(d.items[e->item], "81766");
    assert_int_equal(e->ts_ms, 1462752000000LL + 526309);
    assert_int_equal(e->type, EVENT_VIEW);
    assert_false(e->has_value);
    /* Dates 2016-01-03 to 2016-06-01. */
    assert_true(d.ev[0].ts_ms >= 1451779200000LL);
    assert_true(d.ev[d.n - 1].ts_ms < 1464739200000LL + 86400000LL);
    eval_data_free(&d);
}

static void test_otto(void **state)
{
    (void)state;
    struct eval_data d;
    load_real("otto", "otto-sample/train.jsonl", NULL, &d);
    assert_int_equal(d.n, 862);
    assert_int_equal(d.nusers, 20);
    assert_int_equal(d.nitems, 527);
    assert_null(d.meta);
    assert_time_sorted(&d);
    size_t clicks = 0, carts = 0, orders = 0;
    for (size_t i = 0; i < d.n; i++) {
        clicks += d.ev[i].type == EVENT_CLICK;
        carts += d.ev[i].type == EVENT_ADD_TO_CART;
        orders += d.ev[i].type == EVENT_PURCHASE;
    }
    assert_int_equal(clicks, 800);
    assert_int_equal(carts, 52);
    assert_int_equal(orders, 10);
    const struct eval_event *e = by_order(&d, 0);
    assert_string_equal(d.users[e->user], "0");
    assert_string_equal(d.items[e->item], "1517085");
    assert_int_equal(e->ts_ms, 1659304800025LL);
    /* 2022-07-31 22:00:00 UTC to 2022-08-28 21:59:57 UTC */
    assert_true(d.ev[0].ts_ms >= 1659304800000LL);
    assert_true(d.ev[d.n - 1].ts_ms < 1661724000000LL);
    eval_data_free(&d);
}

static void test_otto_seconds_and_limit(void **state)
{
    (void)state;
    char dir[64], path[128], err[256];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/train.jsonl", dir);
    write_file(path,
               "{\"session\":7,\"events\":[{\"aid\":5,\"ts\":1659304800,\"type\":\"clicks\"},"
               "{\"aid\":6,\"ts\":1659304801,\"type\":\"orders\"}]}\n"
               "{\"session\":8,\"events\":[{\"aid\":5,\"ts\":1659304700,\"type\":\"carts\"}]}\n");
    struct eval_data d;
    assert_int_equal(eval_load("otto", path, NULL, &d, err, sizeof err), 0);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.ev[0].ts_ms, 1659304700000LL); /* seconds became ms, then sorted */
    assert_string_equal(d.users[d.ev[0].user], "8");
    assert_int_equal(d.ev[0].type, EVENT_ADD_TO_CART);
    assert_int_equal(d.ev[2].type, EVENT_PURCHASE);
    eval_data_free(&d);
    struct eval_load_opts o;
    eval_load_opts_init(&o);
    o.limit = 1; /* stops inside the first session */
    assert_int_equal(eval_load("otto", path, &o, &d, err, sizeof err), 0);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.items[d.ev[0].item], "5");
    eval_data_free(&d);

    write_file(path, "{\"session\":7,\"events\":[{\"aid\":5,\"ts\":1,\"type\":\"views\"}]}\n");
    assert_true(eval_load("otto", path, NULL, &d, err, sizeof err) < 0);
    assert_non_null(strstr(err, ":1:"));
    assert_non_null(strstr(err, "type"));
    remove_files(dir, (const char *const[]){"train.jsonl", NULL});
}

/* ---- movielens-csv ---- */

static void test_movielens_csv(void **state)
{
    (void)state;
    char dir[64], path[128], err[256];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/movies.csv", dir);
    write_file(path, "movieId,title,genres\r\n"
                     "1,Toy Story (1995),Adventure|Animation|Children\r\n"
                     "11,\"American President, The (1995)\",Comedy|Drama|Romance\r\n"
                     "12,\"Say \"\"Hi\"\", World (2001)\",(no genres listed)\r\n"
                     "13,Unrated (1999),Drama\r\n");
    snprintf(path, sizeof path, "%s/ratings.csv", dir);
    write_file(path, "userId,movieId,rating,timestamp\r\n"
                     "1,11,4.5,964982703\r\n"
                     "1,1,4.0,964981247\r\n"
                     "2,12,2.5,964982703\r\n"
                     "2,99,3.0,964982703\r\n"
                     "3,1,1.0,964982000\r\n");
    struct eval_load_opts o;
    eval_load_opts_init(&o);
    o.threshold = 2.5;
    struct eval_data d;
    int rc = eval_load("movielens-csv", path, &o, &d, err, sizeof err);
    if (rc != 0)
        fail_msg("%s", err);
    assert_int_equal(d.n, 4);
    assert_int_equal(d.skipped, 1);
    assert_int_equal(d.nusers, 2);
    assert_int_equal(d.nitems, 4);
    assert_time_sorted(&d);
    assert_string_equal(d.items[d.ev[0].item], "1");
    assert_int_equal(d.ev[0].ts_ms, 964981247000LL);
    assert_true(d.ev[0].has_value && d.ev[0].value == 4.0);
    /* Same second: input order. */
    assert_string_equal(d.items[d.ev[1].item], "11");
    assert_string_equal(d.items[d.ev[2].item], "12");
    assert_string_equal(d.items[d.ev[3].item], "99");
    assert_non_null(d.meta);
    const struct eval_item_meta *m = &d.meta[find_item(&d, "11")];
    assert_string_equal(m->title, "American President, The (1995)");
    assert_int_equal(m->ncategories, 3);
    assert_string_equal(m->categories[2], "Romance");
    assert_int_equal(m->published_ms, 0);
    m = &d.meta[find_item(&d, "12")];
    assert_string_equal(m->title, "Say \"Hi\", World (2001)");
    assert_int_equal(m->ncategories, 0);
    m = &d.meta[find_item(&d, "99")];
    assert_null(m->title);
    assert_int_equal(m->ncategories, 0);
    eval_data_free(&d);

    /* Broken lines are errors naming file and line. */
    write_file(path, "userId,movieId,rating,timestamp\n1,1,4.0,964981247\n1,2,four,964981247\n");
    assert_true(eval_load("movielens-csv", path, NULL, &d, err, sizeof err) < 0);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, ":3:"));
    assert_non_null(strstr(err, "rating"));
    write_file(path, "1,1,4.0,964981247\n1,\"2,4.0,964981247\n");
    assert_true(eval_load("movielens-csv", path, NULL, &d, err, sizeof err) < 0);
    assert_non_null(strstr(err, ":2:"));
    remove_files(dir, (const char *const[]){"movies.csv", "ratings.csv", NULL});
}

static void test_movielens_errors(void **state)
{
    (void)state;
    char dir[64], path[128], err[256];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/u.data", dir);
    write_file(path, "1\t2\t3\t881250949\n1\t2\t3\n");
    struct eval_data d;
    assert_true(eval_load("movielens", path, NULL, &d, err, sizeof err) < 0);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, ":2:"));
    write_file(path, "1\t2\t3\t88125x949\n");
    assert_true(eval_load("movielens", path, NULL, &d, err, sizeof err) < 0);
    assert_non_null(strstr(err, ":1:"));
    assert_non_null(strstr(err, "timestamp"));
    /* No u.item beside it: no metadata. */
    write_file(path, "1\t2\t3\t881250949\n\n");
    assert_int_equal(eval_load("movielens", path, NULL, &d, err, sizeof err), 0);
    assert_int_equal(d.n, 1);
    assert_null(d.meta);
    eval_data_free(&d);
    unlink(path);
    assert_int_equal(eval_load("movielens", path, NULL, &d, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, path));
    assert_int_equal(eval_load("csv", path, NULL, &d, err, sizeof err), CORE_E_INVALID);
    assert_non_null(strstr(err, "unknown format"));
    remove_files(dir, (const char *const[]){"u.data", NULL});
}

/* ---- ndjson ---- */

static void test_ndjson(void **state)
{
    (void)state;
    char dir[64], path[128], err[256];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/events.ndjson", dir);
    write_file(path, "{\"userId\":\"u1\",\"eventType\":\"view\",\"itemId\":\"i1\","
                     "\"timestamp\":\"2024-01-02T03:04:05.678Z\"}\n"
                     "{\"anonymousId\":\"a1\",\"eventType\":\"purchase\",\"itemId\":\"i2\","
                     "\"timestamp\":1704164645000,\"value\":19.5}\n"
                     "{\"userId\":\"u1\",\"eventType\":\"search\",\"timestamp\":1704164645000}\n"
                     "\n"
                     "{\"userId\":\"u2\",\"eventType\":\"click\",\"itemId\":\"i1\","
                     "\"timestamp\":\"2024-01-02T04:04:05+01:00\"}\n");
    struct eval_data d;
    int rc = eval_load("ndjson", path, NULL, &d, err, sizeof err);
    if (rc != 0)
        fail_msg("%s", err);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.skipped, 1);
    assert_int_equal(d.nusers, 3);
    assert_int_equal(d.nitems, 2);
    assert_null(d.meta);
    /* 03:04:05 UTC twice (the offset one is written later): input order breaks the tie. */
    assert_string_equal(d.users[d.ev[0].user], "a1");
    assert_int_equal(d.ev[0].type, EVENT_PURCHASE);
    assert_true(d.ev[0].has_value && d.ev[0].value == 19.5);
    assert_string_equal(d.users[d.ev[1].user], "u2");
    assert_int_equal(d.ev[1].ts_ms, 1704164645000LL);
    assert_int_equal(d.ev[1].type, EVENT_CLICK);
    assert_string_equal(d.users[d.ev[2].user], "u1");
    assert_int_equal(d.ev[2].ts_ms, 1704164645678LL);
    assert_false(d.ev[2].has_value);
    assert_time_sorted(&d);
    eval_data_free(&d);

    /* A malformed line is an error naming its line. */
    write_file(path, "{\"userId\":\"u1\",\"eventType\":\"view\",\"itemId\":\"i1\","
                     "\"timestamp\":1}\n\n{\"userId\":\"u1\",\"eventType\":\n");
    assert_true(eval_load("ndjson", path, NULL, &d, err, sizeof err) < 0);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, ":3:"));
    assert_non_null(strstr(err, "JSON"));
    write_file(path, "{\"userId\":\"u1\",\"eventType\":\"view\",\"itemId\":\"i1\","
                     "\"timestamp\":\"yesterday\"}\n");
    assert_true(eval_load("ndjson", path, NULL, &d, err, sizeof err) < 0);
    assert_non_null(strstr(err, ":1:"));
    assert_non_null(strstr(err, "timestamp"));
    write_file(path, "{\"userId\":\"u1\",\"eventType\":\"teleport\",\"itemId\":\"i1\","
                     "\"timestamp\":1}\n");
    assert_true(eval_load("ndjson", path, NULL, &d, err, sizeof err) < 0);
    assert_non_null(strstr(err, "teleport"));
    write_file(path, "[1,2]\n");
    assert_true(eval_load("ndjson", path, NULL, &d, err, sizeof err) < 0);
    assert_non_null(strstr(err, "object"));
    remove_files(dir, (const char *const[]){"events.ndjson", NULL});
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ml100k),
        cmocka_unit_test(test_ml100k_threshold_limit),
        cmocka_unit_test(test_diginetica),
        cmocka_unit_test(test_otto),
        cmocka_unit_test(test_otto_seconds_and_limit),
        cmocka_unit_test(test_movielens_csv),
        cmocka_unit_test(test_movielens_errors),
        cmocka_unit_test(test_ndjson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
