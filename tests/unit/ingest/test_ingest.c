/* The ingest pipeline over a real file log: validation outcomes, pseudonymisation,
 * duplicates within a batch, across batches, across threads racing on the same eventIds,
 * and across a restart (the dedup window is rebuilt from the log). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "ingest/ingest.h"
#include "ingest_testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Submits n JSON events (one string each) and waits for the outcome. */
static int submit(struct ingest *ing, const char **json, size_t n, struct ingest_item *items)
{
    return ingest_test_submit(ing, json, n, items);
}

struct fixture {
    char dir[64];
    char keys_dir[80];
    struct evlog *log;
    struct ingest *ing;
    struct privacy_key key;
    struct seal_key data_key;
    struct userkeys *uk; /* a real on-disk store: records get per-user keys as in serve */
};

static void open_all(struct fixture *f)
{
    struct userkeys_options uo;
    userkeys_options_init(&uo);
    snprintf(f->keys_dir, sizeof f->keys_dir, "%s.keys", f->dir);
    uo.dir = f->keys_dir;
    uo.data_key = &f->data_key;
    assert_int_equal(userkeys_open(&uo, &f->uk), 0);
    struct evlog_file_options o;
    evlog_file_options_init(&o);
    o.keys = f->uk;
    o.dir = f->dir;
    o.partitions = 4;
    o.fsync = EVLOG_FSYNC_ALWAYS;
    assert_int_equal(evlog_file_open(&o, &f->log), 0);
    struct ingest_config c;
    ingest_config_init(&c);
    c.userkeys = f->uk;
    assert_int_equal(ingest_new(&c, f->log, &f->key, &f->ing), 0);
}

static void close_all(struct fixture *f)
{
    ingest_free(f->ing);
    evlog_close(f->log);
    userkeys_free(f->uk);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/rs-ingest-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    uint8_t bytes[32] = {9, 9, 9};
    privacy_key_set(&f->key, bytes);
    memset(f->data_key.key, 0x21, sizeof f->data_key.key);
    open_all(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    close_all(f);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", f->dir, f->keys_dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static int count_records(struct evlog *log, const char *event_id)
{
    /* Records become visible to readers a little after their acknowledgement. */
    assert_int_equal(evlog_flush(log), 0);
    struct evlog_batch b;
    evlog_batch_init(&b);
    int found = 0;
    for (int32_t p = 0; p < log->partitions; p++) {
        int64_t off = 0;
        for (;;) {
            int n = evlog_read(log, p, off, 1000, &b);
            assert_true(n >= 0);
            if (n == 0)
                break;
            for (size_t i = 0; i < b.n; i++) {
                struct event ev;
                assert_int_equal(event_bin_decode(b.recs[i].value, b.recs[i].value_len, &ev), 0);
                if (!event_id || (ev.event_id.len == strlen(event_id) &&
                                  memcmp(ev.event_id.ptr, event_id, ev.event_id.len) == 0))
                    found++;
            }
            off = b.recs[b.n - 1].offset + 1;
        }
    }
    evlog_batch_dispose(&b);
    return found;
}

static void test_outcomes(void **state)
{
    struct fixture *f = *state;
    const char *ev[] = {
        "{\"eventId\":\"a1\",\"userId\":\"123\",\"eventType\":\"click\",\"itemId\":\"p\"}",
        "{\"eventId\":\"a1\",\"userId\":\"123\",\"eventType\":\"click\",\"itemId\":\"p\"}",
        "{\"userId\":\"123\",\"eventType\":\"warp\",\"itemId\":\"p\"}",
        "{\"userId\":\"456\",\"eventType\":\"view\",\"itemId\":\"q\"}",
    };
    struct ingest_item items[4];
    assert_int_equal(submit(f->ing, ev, 4, items), 0);
    assert_int_equal(items[0].status, 0);
    assert_false(items[0].duplicate);
    assert_int_equal(items[1].status, 0);
    assert_true(items[1].duplicate);
    assert_int_equal(items[1].out_partition, items[0].out_partition);
    assert_int_equal(items[1].out_offset, items[0].out_offset);
    assert_int_equal(items[2].status, CORE_E_INVALID);
    assert_string_equal(items[2].err.field, "eventType");
    assert_int_equal(items[3].status, 0);
    assert_int_equal(count_records(f->log, NULL), 2);
    /* The same user always lands in the same partition: murmur2 of the pseudonym. */
    struct ingest_item again[1];
    const char *one[] = {"{\"userId\":\"123\",\"eventType\":\"view\",\"itemId\":\"z\"}"};
    assert_int_equal(submit(f->ing, one, 1, again), 0);
    assert_int_equal(again[0].out_partition, items[0].out_partition);
    char key[33];
    privacy_pseudonym_user(&f->key, "123", 3, key);
    assert_int_equal(again[0].out_partition, core_partition_for_key(key, 32, 4));
    struct ingest_stats st;
    ingest_stats(f->ing, &st);
    assert_int_equal(st.accepted, 3);
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(st.rejected, 1);
}

static void test_dedup_survives_restart(void **state)
{
    struct fixture *f = *state;
    const char *ev[] = {
        "{\"eventId\":\"r1\",\"userId\":\"u\",\"eventType\":\"view\",\"itemId\":\"p\"}"};
    struct ingest_item a[1], b[1];
    assert_int_equal(submit(f->ing, ev, 1, a), 0);
    close_all(f);
    open_all(f);
    /* Events without a client eventId are not remembered across the restart. */
    const char *anon[] = {"{\"userId\":\"u\",\"eventType\":\"view\",\"itemId\":\"q\"}"};
    struct ingest_item c[1];
    assert_int_equal(submit(f->ing, anon, 1, c), 0);
    close_all(f);
    open_all(f);
    struct ingest_stats st;
    ingest_stats(f->ing, &st);
    assert_int_equal(st.dedup_entries, 1);
    assert_int_equal(submit(f->ing, ev, 1, b), 0);
    assert_true(b[0].duplicate);
    assert_int_equal(b[0].out_offset, a[0].out_offset);
    assert_int_equal(b[0].out_partition, a[0].out_partition);
    assert_int_equal(count_records(f->log, "r1"), 1);
}

struct racer {
    struct ingest *ing;
    struct ingest_item items[50];
};

static void *race(void *arg)
{
    struct racer *r = arg;
    const char *ev[50];
    char bufs[50][128];
    for (int i = 0; i < 50; i++) {
        snprintf(bufs[i], sizeof bufs[i],
                 "{\"eventId\":\"race-%d\",\"userId\":\"u%d\",\"eventType\":\"view\","
                 "\"itemId\":\"p\"}",
                 i, i);
        ev[i] = bufs[i];
    }
    for (int round = 0; round < 5; round++)
        assert_int_equal(submit(r->ing, ev, 50, r->items), 0);
    return NULL;
}

static void test_concurrent_repeats_stored_once(void **state)
{
    struct fixture *f = *state;
    struct racer rs[6];
    pthread_t t[6];
    for (int i = 0; i < 6; i++) {
        rs[i].ing = f->ing;
        pthread_create(&t[i], NULL, race, &rs[i]);
    }
    for (int i = 0; i < 6; i++)
        pthread_join(t[i], NULL);
    for (int k = 0; k < 50; k++) {
        for (int i = 1; i < 6; i++) {
            assert_int_equal(rs[i].items[k].status, 0);
            assert_int_equal(rs[i].items[k].out_offset, rs[0].items[k].out_offset);
            assert_int_equal(rs[i].items[k].out_partition, rs[0].items[k].out_partition);
        }
    }
    assert_int_equal(count_records(f->log, NULL), 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_outcomes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_survives_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_repeats_stored_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
