/* Identity links at ingest: an event with anonymousId and userId appends one "merge" to the
 * anonymous key's partition (userKey = user, anonKey = anonymous, sealed under the user's key),
 * the item reports the event's own position, a repeat of the link emits nothing; with an older
 * secret version held, a user's event links the older pseudonym to the newest one. */
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

static void submit1(struct ingest *ing, const char *json, struct ingest_item *item)
{
    assert_int_equal(ingest_test_submit(ing, &json, 1, item), 0);
    assert_int_equal(item->status, 0);
}

struct merge_rec {
    int32_t partition;
    char key[33], to[33], from[33];
};

/* Every merge record of the log. */
static int merges(struct evlog *log, struct merge_rec *out, int max)
{
    int n = 0;
    struct evlog_batch b;
    evlog_batch_init(&b);
    for (int32_t p = 0; p < log->partitions; p++) {
        int got = evlog_read(log, p, 0, 1000, &b);
        assert_true(got >= 0);
        for (size_t i = 0; i < b.n; i++) {
            struct event ev;
            assert_int_equal(event_bin_decode(b.recs[i].value, b.recs[i].value_len, &ev), 0);
            if (ev.type != EVENT_MERGE || n == max)
                continue;
            out[n].partition = p;
            memcpy(out[n].key, b.recs[i].key, 32);
            out[n].key[32] = '\0';
            memcpy(out[n].to, ev.user_key, 33);
            memcpy(out[n].from, ev.anon_key, 33);
            n++;
        }
    }
    evlog_batch_dispose(&b);
    return n;
}

struct fixture {
    char dir[64], keys_dir[80];
    struct evlog *log;
    struct ingest *ing;
    struct userkeys *uk;
    struct seal_key data_key;
    struct privacy_keyring ring;
};

static void open_with(struct fixture *f, int versions)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/rs-ingest-merge-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    memset(f->data_key.key, 0x21, sizeof f->data_key.key);
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
    o.partitions = 8;
    o.fsync = EVLOG_FSYNC_NONE;
    assert_int_equal(evlog_file_open(&o, &f->log), 0);
    memset(&f->ring, 0, sizeof f->ring);
    f->ring.n = versions;
    for (int v = 0; v < versions; v++) { /* newest first */
        uint8_t bytes[32] = {(uint8_t)(10 + versions - v)};
        f->ring.version[v] = (uint32_t)(versions - v);
        privacy_key_set(&f->ring.key[v], bytes);
    }
    struct ingest_config c;
    ingest_config_init(&c);
    c.userkeys = f->uk;
    c.keyring = &f->ring;
    assert_int_equal(ingest_new(&c, f->log, &f->ring.key[0], &f->ing), 0);
}

static void close_all(struct fixture *f)
{
    ingest_free(f->ing);
    evlog_close(f->log);
    userkeys_free(f->uk);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", f->dir, f->keys_dir);
    assert_int_equal(system(cmd), 0);
}

static void test_identify_emits_one_merge(void **st)
{
    (void)st;
    struct fixture f;
    open_with(&f, 1);
    struct ingest_item it;
    submit1(f.ing, "{\"anonymousId\":\"cookie-1\",\"eventType\":\"view\",\"itemId\":\"a\"}", &it);
    struct merge_rec m[8];
    assert_int_equal(merges(f.log, m, 8), 0);
    submit1(f.ing,
            "{\"anonymousId\":\"cookie-1\",\"userId\":\"u-1\",\"eventType\":\"view\","
            "\"itemId\":\"b\"}",
            &it);
    char user[33], anon[33];
    privacy_pseudonym_user(&f.ring.key[0], "u-1", 3, user);
    privacy_pseudonym_anon(&f.ring.key[0], "cookie-1", 8, anon);
    /* The item reports its own record: in the user's partition. */
    assert_int_equal(it.out_partition, core_partition_for_key(user, 32, 8));
    assert_int_equal(merges(f.log, m, 8), 1);
    assert_string_equal(m[0].to, user);
    assert_string_equal(m[0].from, anon);
    assert_string_equal(m[0].key, user); /* sealed under the target's key */
    assert_int_equal(m[0].partition, core_partition_for_key(anon, 32, 8));
    /* The same link again: remembered, nothing new. */
    submit1(f.ing,
            "{\"anonymousId\":\"cookie-1\",\"userId\":\"u-1\",\"eventType\":\"click\","
            "\"itemId\":\"c\"}",
            &it);
    assert_int_equal(merges(f.log, m, 8), 1);
    /* An event that emits a merge keeps its own eventId for dedup. */
    const char *again = "{\"eventId\":\"e-9\",\"anonymousId\":\"cookie-9\",\"userId\":"
                        "\"u-9\",\"eventType\":\"click\",\"itemId\":\"c\"}";
    submit1(f.ing, again, &it);
    assert_false(it.duplicate);
    int32_t part = it.out_partition;
    int64_t off = it.out_offset;
    assert_int_equal(merges(f.log, m, 8), 2);
    submit1(f.ing, again, &it);
    assert_true(it.duplicate);
    assert_int_equal(it.out_partition, part);
    assert_int_equal(it.out_offset, off);
    struct ingest_stats s;
    ingest_stats(f.ing, &s);
    assert_int_equal(s.accepted, 4); /* merges are not counted as accepted events */
    close_all(&f);
}

static void test_rotation_links_older_pseudonyms(void **st)
{
    (void)st;
    struct fixture f;
    open_with(&f, 2);
    struct ingest_item it;
    submit1(f.ing, "{\"userId\":\"u-2\",\"eventType\":\"view\",\"itemId\":\"a\"}", &it);
    char cur[33], old[33], ps[PRIVACY_KEY_VERSIONS_MAX][33];
    privacy_pseudonym_user(&f.ring.key[0], "u-2", 3, cur);
    privacy_pseudonym_user(&f.ring.key[1], "u-2", 3, old);
    assert_int_equal(ingest_pseudonym_versions(f.ing, false, "u-2", 3, ps), 2);
    assert_string_equal(ps[0], cur);
    assert_string_equal(ps[1], old);
    struct merge_rec m[8];
    assert_int_equal(merges(f.log, m, 8), 1);
    assert_string_equal(m[0].from, old);
    assert_string_equal(m[0].to, cur);
    assert_int_equal(m[0].partition, core_partition_for_key(old, 32, 8));
    /* Both ids under both versions: anon (newest), anon (older), user (older) -> user. */
    submit1(f.ing,
            "{\"anonymousId\":\"c-2\",\"userId\":\"u-3\",\"eventType\":\"view\",\"itemId\":\"a\"}",
            &it);
    assert_int_equal(merges(f.log, m, 8), 4);
    close_all(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identify_emits_one_merge),
        cmocka_unit_test(test_rotation_links_older_pseudonyms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
