/* Sealed field bundles: a bundle round-trips; an event carrying one (through the binary
 * record codec) reads back whole while its epoch key exists and without the fields (named as
 * expired) once the key is destroyed; a bundle whose clear header or ciphertext was changed
 * does not open; the value never appears in the encoded record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "privacy/fieldseal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define H (3600LL * 1000)
#define SECRET "secret@example.com"

static struct epochkeys *mem_store(void)
{
    assert_int_equal(seal_init(), 0);
    struct seal_key dk;
    randombytes_buf(dk.key, sizeof dk.key);
    struct epochkeys_options o;
    epochkeys_options_init(&o);
    o.data_key = &dk; /* in memory: no file */
    struct epochkeys *ek = NULL;
    assert_int_equal(epochkeys_open(&o, &ek), 0);
    struct epochkeys_policy pol = {{true, false, false}, {2 * H, 30 * 24 * H, 0}, {H, 0, 0}};
    epochkeys_set_policy(ek, &pol);
    return ek;
}

static void test_bundle_round_trip(void **state)
{
    (void)state;
    struct epochkeys *ek = mem_store();
    static const char json[] = "{\"email\":\"" SECRET "\",\"phone\":\"+49 1\"}";
    struct core_buf b, out;
    core_buf_init(&b);
    core_buf_init(&out);
    assert_int_equal(
        fieldseal_seal(ek, 0, 10 * H + 1, "email,phone", 11, json, strlen(json), NULL, &b), 0);
    assert_null(memmem(b.data, b.len, SECRET, strlen(SECRET)));
    struct fieldseal_info info;
    assert_int_equal(fieldseal_open(ek, b.data, b.len, &out, &info), 0);
    assert_int_equal(out.len, strlen(json));
    assert_memory_equal(out.data, json, out.len);
    assert_int_equal(info.cls, 0);
    assert_int_equal(info.start_ms, 10 * H);
    assert_int_equal(info.names.len, 11);
    assert_memory_equal(info.names.ptr, "email,phone", 11);
    /* Any changed byte (names, class, epoch, nonce, ciphertext, tag) fails to open. */
    for (size_t i = 0; i < b.len; i++) {
        b.data[i] ^= 0x01;
        core_buf_reset(&out);
        int rc = fieldseal_open(ek, b.data, b.len, &out, &info);
        assert_true(rc == CORE_E_CORRUPT || rc == CORE_E_NOTFOUND);
        b.data[i] ^= 0x01;
    }
    /* Truncated. */
    assert_int_equal(fieldseal_open(ek, b.data, 10, &out, &info), CORE_E_CORRUPT);
    /* A class the policy does not seal is refused at sealing. */
    core_buf_reset(&b);
    assert_int_equal(fieldseal_seal(ek, 1, H, "x", 1, "{\"x\":1}", 7, NULL, &b), CORE_E_INVALID);
    assert_int_equal(b.len, 0);
    core_buf_dispose(&b);
    core_buf_dispose(&out);
    epochkeys_free(ek);
}

/* An event as ingest stores it: plan kept in properties, email in the bundle. */
static void encode_event(struct epochkeys *ek, int64_t recv_ms, struct core_buf *bundle,
                         struct core_buf *rec)
{
    static const char moved[] = "{\"email\":\"" SECRET "\"}";
    assert_int_equal(fieldseal_seal(ek, 0, recv_ms, "email", 5, moved, strlen(moved), NULL, bundle),
                     0);
    struct event ev;
    event_init(&ev);
    ev.type = EVENT_TYPE_CUSTOM;
    ev.type_name = (struct event_str){"signup", 6};
    memcpy(ev.user_key, "00112233445566778899aabbccddeeff", EVENT_KEY_HEX + 1);
    ev.ts_ms = ev.recv_ms = recv_ms;
    ev.event_id = (struct event_str){"ev-1", 4};
    ev.properties_json = (struct event_str){"{\"plan\":\"pro\"}", 14};
    ev.fields_sealed = (struct event_str){bundle->data, bundle->len};
    event_bin_encode(&ev, rec);
}

static void read_back(struct epochkeys *ek, const struct core_buf *rec, struct core_buf *json,
                      struct event_str *expired)
{
    struct event ev;
    struct core_arena arena;
    core_arena_init(&arena);
    assert_int_equal(event_bin_decode(rec->data, rec->len, &ev), 0);
    assert_int_equal(fieldseal_merge(ek, &ev, &arena, expired), 0);
    assert_int_equal(ev.fields_sealed.len, 0);
    core_buf_reset(json);
    core_buf_append(json, ev.properties_json.ptr, ev.properties_json.len);
    core_buf_putc(json, '\0');
    core_arena_dispose(&arena);
}

static void test_record_whole_then_without_field(void **state)
{
    (void)state;
    struct epochkeys *ek = mem_store();
    struct core_buf bundle, rec, json;
    core_buf_init(&bundle);
    core_buf_init(&rec);
    core_buf_init(&json);
    int64_t t = 100 * H + 123;
    encode_event(ek, t, &bundle, &rec);
    assert_null(memmem(rec.data, rec.len, SECRET, strlen(SECRET)));
    struct event_str expired;
    /* The key exists: the event reads back whole. */
    read_back(ek, &rec, &json, &expired);
    assert_string_equal(json.data, "{\"plan\":\"pro\",\"email\":\"" SECRET "\"}");
    assert_int_equal(expired.len, 0);
    /* The TTL (2 h) after the end of the epoch has not passed: still whole. */
    size_t n = 9;
    assert_int_equal(epochkeys_expire(ek, 101 * H + 2 * H - 1, &n), 0);
    assert_int_equal(n, 0);
    read_back(ek, &rec, &json, &expired);
    assert_non_null(strstr(json.data, SECRET));
    /* Destroyed: the same record reads back without the field, which is named as expired. */
    assert_int_equal(epochkeys_expire(ek, 101 * H + 2 * H, &n), 0);
    assert_int_equal(n, 1);
    read_back(ek, &rec, &json, &expired);
    assert_string_equal(json.data, "{\"plan\":\"pro\"}");
    assert_int_equal(expired.len, 5);
    assert_memory_equal(expired.ptr, "email", 5);
    /* A reader without any store sees the same. */
    read_back(NULL, &rec, &json, &expired);
    assert_string_equal(json.data, "{\"plan\":\"pro\"}");
    core_buf_dispose(&bundle);
    core_buf_dispose(&rec);
    core_buf_dispose(&json);
    epochkeys_free(ek);
}

/* Only bundled properties: the merge gives them alone. */
static void test_merge_into_empty(void **state)
{
    (void)state;
    struct epochkeys *ek = mem_store();
    struct core_buf b;
    core_buf_init(&b);
    assert_int_equal(fieldseal_seal(ek, 0, H, "a", 1, "{\"a\":1}", 7, NULL, &b), 0);
    struct event ev;
    event_init(&ev);
    ev.fields_sealed = (struct event_str){b.data, b.len};
    struct core_arena arena;
    core_arena_init(&arena);
    assert_int_equal(fieldseal_merge(ek, &ev, &arena, NULL), 0);
    assert_int_equal(ev.properties_json.len, 7);
    assert_memory_equal(ev.properties_json.ptr, "{\"a\":1}", 7);
    core_arena_dispose(&arena);
    core_buf_dispose(&b);
    epochkeys_free(ek);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bundle_round_trip),
        cmocka_unit_test(test_record_whole_then_without_field),
        cmocka_unit_test(test_merge_into_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
