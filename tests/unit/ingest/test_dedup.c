/* The dedup window: finds what it holds, forgets the oldest when full, expires by time and
 * keeps probe chains intact across removals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "ingest/ingest_int.h"

#include <stdio.h>
#include <string.h>

static void hash_of(int i, uint64_t *h1, uint64_t *h2)
{
    char id[32];
    snprintf(id, sizeof id, "event-%d", i);
    ingest__dedup_hash(id, strlen(id), h1, h2);
}

static void test_insert_find(void **state)
{
    (void)state;
    struct dedup d;
    ingest__dedup_init(&d, 1000, 60000);
    for (int i = 0; i < 1000; i++) {
        uint64_t h1, h2;
        hash_of(i, &h1, &h2);
        struct dedup_entry *e = ingest__dedup_insert(&d, h1, h2, 1000 + i);
        e->partition = i % 7;
        e->offset = i;
    }
    for (int i = 0; i < 1000; i++) {
        uint64_t h1, h2;
        hash_of(i, &h1, &h2);
        struct dedup_entry *e = ingest__dedup_find(&d, h1, h2);
        assert_non_null(e);
        assert_int_equal(e->offset, i);
        assert_int_equal(e->partition, i % 7);
    }
    uint64_t h1, h2;
    hash_of(5000, &h1, &h2);
    assert_null(ingest__dedup_find(&d, h1, h2));
    assert_int_equal(d.live, 1000);
    ingest__dedup_dispose(&d);
}

static void test_bounded_evicts_oldest(void **state)
{
    (void)state;
    struct dedup d;
    ingest__dedup_init(&d, 100, 60000);
    for (int i = 0; i < 250; i++) {
        uint64_t h1, h2;
        hash_of(i, &h1, &h2);
        ingest__dedup_insert(&d, h1, h2, i);
    }
    assert_int_equal(d.live, 100);
    assert_int_equal(d.evicted, 150);
    for (int i = 0; i < 250; i++) {
        uint64_t h1, h2;
        hash_of(i, &h1, &h2);
        if (i < 150)
            assert_null(ingest__dedup_find(&d, h1, h2));
        else
            assert_non_null(ingest__dedup_find(&d, h1, h2));
    }
    ingest__dedup_dispose(&d);
}

static void test_expiry_and_removal(void **state)
{
    (void)state;
    struct dedup d;
    ingest__dedup_init(&d, 1000, 100);
    struct dedup_entry *mid = NULL;
    for (int i = 0; i < 300; i++) {
        uint64_t h1, h2;
        hash_of(i, &h1, &h2);
        struct dedup_entry *e = ingest__dedup_insert(&d, h1, h2, i);
        if (i == 250)
            mid = e;
    }
    ingest__dedup_remove(&d, mid);
    /* now = 300, window 100: entries with time < 200 expire. */
    ingest__dedup_expire(&d, 300);
    for (int i = 0; i < 300; i++) {
        uint64_t h1, h2;
        hash_of(i, &h1, &h2);
        struct dedup_entry *e = ingest__dedup_find(&d, h1, h2);
        if (i < 200 || i == 250)
            assert_null(e);
        else
            assert_non_null(e);
    }
    assert_int_equal(d.live, 99);
    ingest__dedup_dispose(&d);
}

/* Many colliding home slots: removals in the middle of probe chains must keep the rest
 * findable (backward-shift deletion). */
static void test_collisions(void **state)
{
    (void)state;
    struct dedup d;
    ingest__dedup_init(&d, 64, 60000);
    struct dedup_entry *es[64];
    for (int i = 0; i < 64; i++)
        es[i] = ingest__dedup_insert(&d, 7 + (uint64_t)i * (d.table_mask + 1), (uint64_t)i, 0);
    for (int i = 0; i < 64; i += 3)
        ingest__dedup_remove(&d, es[i]);
    for (int i = 0; i < 64; i++) {
        struct dedup_entry *e =
            ingest__dedup_find(&d, 7 + (uint64_t)i * (d.table_mask + 1), (uint64_t)i);
        if (i % 3 == 0)
            assert_null(e);
        else
            assert_ptr_equal(e, es[i]);
    }
    ingest__dedup_dispose(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_find),
        cmocka_unit_test(test_bounded_evicts_oldest),
        cmocka_unit_test(test_expiry_and_removal),
        cmocka_unit_test(test_collisions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
