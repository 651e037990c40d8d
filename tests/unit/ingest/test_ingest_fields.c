/* Field retention through the real ingest pipeline and file log: a property of the "short"
 * class is stored in a sealed field bundle, never in clear in the segment; the record reads
 * back whole while the epoch key exists and without the property (named as expired) after
 * the key is destroyed; without an epoch key store it stays in the record; when no key can be
 * made durable the event fails as a storage failure, not as invalid, and is not stored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "ingest/ingest.h"
#include "ingest_testutil.h"
#include "privacy/fieldseal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "fieldret-secret@example.com"
#define DAY (24LL * 3600 * 1000)

static int submit_one(struct ingest *ing, const char *json)
{
    struct ingest_item it;
    assert_int_equal(ingest_test_submit(ing, &json, 1, &it), 0);
    return it.status;
}

struct fixture {
    char dir[64];
    char path[128];
    struct seal_key dk;
    struct privacy_key key;
    struct userkeys *uk;
    struct schema_registry *reg;
    struct epochkeys *ek;
    struct evlog *log;
    struct ingest *ing;
};

static const char *schema =
    "{\"type\":\"object\",\"properties\":{"
    "\"email\":{\"type\":\"string\",\"x-pii\":true,\"x-retention\":\"short\"},"
    "\"plan\":{\"type\":\"string\"}}}";

static void open_all(struct fixture *f, bool with_ek, int64_t max_keys)
{
    struct userkeys_options uo;
    userkeys_options_init(&uo);
    uo.data_key = &f->dk;
    assert_int_equal(userkeys_open(&uo, &f->uk), 0);
    snprintf(f->path, sizeof f->path, "%s/registry", f->dir);
    assert_int_equal(schema_registry_open(f->path, &f->reg), 0);
    struct core_buf msg;
    core_buf_init(&msg);
    assert_int_equal(
        schema_registry_put(f->reg, "signup", "1-0-0", schema, strlen(schema), &msg) < 0, 0);
    core_buf_dispose(&msg);
    if (with_ek) {
        struct epochkeys_options eo;
        epochkeys_options_init(&eo);
        snprintf(f->path, sizeof f->path, "%s/epochkeys", f->dir);
        eo.path = f->path;
        eo.data_key = &f->dk;
        eo.max_keys = max_keys;
        assert_int_equal(epochkeys_open(&eo, &f->ek), 0);
        struct epochkeys_policy pol = {
            {true, false, false}, {7 * DAY, 30 * DAY, 0}, {epochkeys_epoch_for_ttl(7 * DAY), 0, 0}};
        epochkeys_set_policy(f->ek, &pol);
    }
    snprintf(f->path, sizeof f->path, "%s/log", f->dir);
    struct evlog_file_options o;
    evlog_file_options_init(&o);
    o.keys = f->uk;
    o.dir = f->path;
    o.partitions = 1;
    o.fsync = EVLOG_FSYNC_NONE;
    assert_int_equal(evlog_file_open(&o, &f->log), 0);
    struct ingest_config c;
    ingest_config_init(&c);
    c.userkeys = f->uk;
    c.registry = f->reg;
    c.epochkeys = f->ek;
    assert_int_equal(ingest_new(&c, f->log, &f->key, &f->ing), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_int_equal(seal_init(), 0);
    snprintf(f->dir, sizeof f->dir, "/tmp/rs-fieldret-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    uint8_t bytes[32] = {7, 7};
    privacy_key_set(&f->key, bytes);
    memset(f->dk.key, 0x33, sizeof f->dk.key);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ingest_free(f->ing);
    evlog_close(f->log);
    epochkeys_free(f->ek);
    schema_registry_free(f->reg);
    userkeys_free(f->uk);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Reads the only record back and returns its properties after merging (NUL-terminated in
 * out) and the expired names (in names). */
static void read_back(struct fixture *f, struct core_buf *raw_props, struct core_buf *out,
                      struct core_buf *names)
{
    assert_int_equal(evlog_flush(f->log), 0);
    struct evlog_batch b;
    evlog_batch_init(&b);
    assert_int_equal(evlog_read(f->log, 0, 0, 10, &b), 1);
    struct event ev;
    assert_int_equal(event_bin_decode(b.recs[0].value, b.recs[0].value_len, &ev), 0);
    core_buf_reset(raw_props);
    core_buf_append(raw_props, ev.properties_json.ptr, ev.properties_json.len);
    core_buf_putc(raw_props, '\0');
    struct core_arena arena;
    core_arena_init(&arena);
    struct event_str expired;
    assert_int_equal(fieldseal_merge(f->ek, &ev, &arena, &expired), 0);
    core_buf_reset(out);
    core_buf_append(out, ev.properties_json.ptr, ev.properties_json.len);
    core_buf_putc(out, '\0');
    core_buf_reset(names);
    core_buf_append(names, expired.ptr, expired.len);
    core_buf_putc(names, '\0');
    core_arena_dispose(&arena);
    evlog_batch_dispose(&b);
}

static bool segment_holds(struct fixture *f, const char *needle)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "grep -rqa '%s' %s/log", needle, f->dir);
    return system(cmd) == 0;
}

static void test_short_field_sealed_then_shredded(void **state)
{
    struct fixture *f = *state;
    open_all(f, true, 4096);
    assert_int_equal(submit_one(f->ing,
                                "{\"userId\":\"u1\",\"eventType\":\"signup\","
                                "\"properties\":{\"email\":\"" SECRET "\",\"plan\":\"pro\"}}"),
                     0);
    struct ingest_stats st;
    ingest_stats(f->ing, &st);
    assert_int_equal(st.sealed_fields, 1);
    assert_int_equal(epochkeys_count(f->ek), 1);
    struct core_buf raw, out, names;
    core_buf_init(&raw);
    core_buf_init(&out);
    core_buf_init(&names);
    read_back(f, &raw, &out, &names);
    assert_string_equal(raw.data, "{\"plan\":\"pro\"}"); /* not in the record's properties */
    assert_string_equal(out.data, "{\"plan\":\"pro\",\"email\":\"" SECRET "\"}");
    assert_string_equal(names.data, "");
    assert_false(segment_holds(f, SECRET));
    assert_true(segment_holds(f, "signup/1-0-0") == false); /* the record is sealed whole */
    /* Destroyed (as the retention job does, 30 days later): the property is gone. */
    size_t n = 0;
    assert_int_equal(epochkeys_expire(f->ek, core_now_ms() + 30 * DAY, &n), 0);
    assert_int_equal(n, 1);
    read_back(f, &raw, &out, &names);
    assert_string_equal(out.data, "{\"plan\":\"pro\"}");
    assert_string_equal(names.data, "email");
    core_buf_dispose(&raw);
    core_buf_dispose(&out);
    core_buf_dispose(&names);
}

static void test_without_store_property_stays(void **state)
{
    struct fixture *f = *state;
    open_all(f, false, 0);
    assert_int_equal(submit_one(f->ing,
                                "{\"userId\":\"u1\",\"eventType\":\"signup\","
                                "\"properties\":{\"email\":\"" SECRET "\",\"plan\":\"pro\"}}"),
                     0);
    struct core_buf raw, out, names;
    core_buf_init(&raw);
    core_buf_init(&out);
    core_buf_init(&names);
    read_back(f, &raw, &out, &names);
    assert_non_null(strstr(raw.data, SECRET));
    assert_string_equal(raw.data, out.data);
    core_buf_dispose(&raw);
    core_buf_dispose(&out);
    core_buf_dispose(&names);
}

static void test_no_durable_key_fails_the_event(void **state)
{
    struct fixture *f = *state;
    open_all(f, true, 1);
    struct seal_key k;
    int64_t start;
    assert_int_equal(epochkeys_acquire(f->ek, 0, 0, &k, &start), 0); /* the store is full */
    assert_int_equal(submit_one(f->ing, "{\"userId\":\"u1\",\"eventType\":\"signup\","
                                        "\"properties\":{\"email\":\"" SECRET "\"}}"),
                     CORE_E_FAILED);
    /* Events without the property still go in. */
    assert_int_equal(submit_one(f->ing, "{\"userId\":\"u1\",\"eventType\":\"signup\","
                                        "\"properties\":{\"plan\":\"pro\"}}"),
                     0);
    struct ingest_stats st;
    ingest_stats(f->ing, &st);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.rejected, 0);
    assert_int_equal(st.accepted, 1);
    assert_false(segment_holds(f, SECRET));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_short_field_sealed_then_shredded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_without_store_property_stays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_durable_key_fails_the_event, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
