/* Tests of the compact binary event codec. */
#include "event/event.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct event_str S(const char *s) {
    struct event_str r = {s, strlen(s)};
    return r;
}

static void
assert_same_str(struct event_str a, struct event_str b)
{
    assert_int_equal(a.len, b.len);
    if (a.len)
        assert_memory_equal(a.ptr, b.ptr, a.len);
}

/* Every field that the log keeps (raw ids are never encoded). */
static void assert_same_event(const struct event *a, const struct event *b)
{
    assert_same_str(a->event_id, b->event_id);
    assert_string_equal(a->user_key, b->user_key);
    assert_string_equal(a->anon_key, b->anon_key);
    assert_same_str(a->session_id, b->session_id);
    assert_int_equal(a->type, b->type);
    assert_same_str(a->item_id, b->item_id);
    assert_int_equal(a->ts_ms, b->ts_ms);
    assert_int_equal(a->recv_ms, b->recv_ms);
    assert_int_equal(a->has_value, b->has_value);
    assert_memory_equal(&a->value, &b->value, sizeof a->value);
    assert_same_str(a->rec_id, b->rec_id);
    assert_int_equal(a->has_position, b->has_position);
    assert_int_equal(a->position, b->position);
    assert_same_str(a->schema, b->schema);
    assert_same_str(a->context_json, b->context_json);
    assert_same_str(a->properties_json, b->properties_json);
    assert_int_equal(a->dropped_fields, b->dropped_fields);
}

static void full_event(struct event *ev)
{
    event_init(ev);
    ev->event_id = S("0190f5e2-7c1a-7abc-8def-0123456789ab");
    ev->user_id = S("raw-user-secret");
    ev->anonymous_id = S("raw-anon-secret");
    memcpy(ev->user_key, "00112233445566778899aabbccddeeff", EVENT_KEY_HEX + 1);
    memcpy(ev->anon_key, "f0e1d2c3b4a5968778695a4b3c2d1e0f", EVENT_KEY_HEX + 1);
    ev->session_id = S("sess-1");
    ev->type = EVENT_PURCHASE;
    ev->item_id = S("product456");
    ev->ts_ms = 1700000000000LL;
    ev->recv_ms = 1700000000123LL;
    ev->has_value = true;
    ev->value = 19.99;
    ev->rec_id = S("rec-42");
    ev->has_position = true;
    ev->position = 7;
    ev->schema = S("purchase/1-0-0");
    ev->context_json = S("{\"page\":\"/cart\",\"locale\":\"de-DE\"}");
    ev->properties_json = S("{\"price\":19.99,\"currency\":\"EUR\"}");
    ev->dropped_fields = 3;
}

static void minimal_event(struct event *ev)
{
    event_init(ev);
    ev->type = EVENT_SEARCH;
    ev->ts_ms = 1700000000000LL;
    ev->recv_ms = 1700000000000LL;
}

/* Decodes from an exactly sized heap copy so that ASan sees any over-read. */
static int decode_copy(const void *data, size_t len, struct event *ev, void **keep)
{
    void *copy = malloc(len ? len : 1);
    memcpy(copy, data, len);
    int rc = event_bin_decode(copy, len, ev);
    *keep = copy;
    return rc;
}

static void round_trip(const struct event *ev)
{
    struct core_buf buf;
    core_buf_init(&buf);
    event_bin_encode(ev, &buf);
    struct event back;
    void *copy;
    assert_int_equal(decode_copy(buf.data, buf.len, &back, &copy), 0);
    assert_same_event(ev, &back);
    assert_int_equal(back.user_id.len, 0);
    assert_int_equal(back.anonymous_id.len, 0);
    /* Canonical: encoding the decoded event gives the same bytes. */
    struct core_buf again;
    core_buf_init(&again);
    event_bin_encode(&back, &again);
    assert_int_equal(again.len, buf.len);
    assert_memory_equal(again.data, buf.data, buf.len);
    core_buf_dispose(&again);
    free(copy);
    core_buf_dispose(&buf);
}

static void test_round_trip_full(void **state)
{
    (void)state;
    struct event ev;
    full_event(&ev);
    round_trip(&ev);
    /* Raw identities never reach the payload. */
    struct core_buf buf;
    core_buf_init(&buf);
    event_bin_encode(&ev, &buf);
    assert_null(memmem(buf.data, buf.len, "raw-user", 8));
    assert_null(memmem(buf.data, buf.len, "raw-anon", 8));
    core_buf_dispose(&buf);
}

static void test_round_trip_minimal(void **state)
{
    (void)state;
    struct event ev;
    minimal_event(&ev);
    round_trip(&ev);
    struct core_buf buf;
    core_buf_init(&buf);
    event_bin_encode(&ev, &buf);
    assert_true(buf.len <= 12); /* version, flags, type, ts (6), delta */
    core_buf_dispose(&buf);
}

static void test_round_trip_edges(void **state)
{
    (void)state;
    struct event ev;
    minimal_event(&ev);
    ev.ts_ms = INT64_MIN;
    ev.recv_ms = INT64_MAX;
    round_trip(&ev);
    ev.ts_ms = INT64_MAX;
    ev.recv_ms = INT64_MIN;
    round_trip(&ev);
    ev.recv_ms = ev.ts_ms - 5000; /* received "before" the event: clocks disagree */
    round_trip(&ev);
    ev.has_value = true;
    ev.value = -0.0;
    ev.has_position = true;
    ev.position = 0;
    round_trip(&ev);
    ev.value = 1e308;
    ev.position = INT32_MIN;
    ev.dropped_fields = UINT32_MAX;
    round_trip(&ev);
    memcpy(ev.user_key, "ffffffffffffffffffffffffffffffff", EVENT_KEY_HEX + 1);
    ev.type = EVENT_TYPE__COUNT - 1;
    round_trip(&ev);
    /* Strings at their limits. */
    static char big[EVENT_JSON_FIELD_MAX];
    memset(big, 'x', sizeof big);
    full_event(&ev);
    ev.properties_json.ptr = big;
    ev.properties_json.len = sizeof big;
    ev.event_id.ptr = big;
    ev.event_id.len = EVENT_ID_MAX;
    round_trip(&ev);
}

static void test_truncation(void **state)
{
    (void)state;
    struct event ev;
    full_event(&ev);
    struct core_buf buf;
    core_buf_init(&buf);
    event_bin_encode(&ev, &buf);
    for (size_t n = 0; n < buf.len; n++) {
        struct event out;
        void *copy;
        assert_int_equal(decode_copy(buf.data, n, &out, &copy), CORE_E_CORRUPT);
        free(copy);
    }
    assert_int_equal(event_bin_decode(NULL, 0, &ev), CORE_E_CORRUPT);
    core_buf_dispose(&buf);
}

static void expect_corrupt(const uint8_t *data, size_t len)
{
    struct event out;
    event_init(&out);
    out.ts_ms = 77;
    void *copy;
    assert_int_equal(decode_copy(data, len, &out, &copy), CORE_E_CORRUPT);
    assert_int_equal(out.ts_ms, 77); /* untouched on failure */
    free(copy);
}

static void test_corrupt(void **state)
{
    (void)state;
    struct event ev;
    full_event(&ev);
    struct core_buf buf;
    core_buf_init(&buf);
    event_bin_encode(&ev, &buf);
    uint8_t *p = (uint8_t *)buf.data;

    /* Bad versions. */
    for (int v = 0; v < 256; v++) {
        if (v == p[0])
            continue;
        uint8_t save = p[0];
        p[0] = (uint8_t)v;
        expect_corrupt(p, buf.len);
        p[0] = save;
    }
    /* A trailing byte. */
    core_buf_putc(&buf, 0);
    p = (uint8_t *)buf.data;
    expect_corrupt(p, buf.len);

    /* Hand-made payloads: version 1, flags, type, ts, delta, ... */
    static const uint8_t ok_min[] = {1, 0, 0, 2, 0};
    struct event out;
    assert_int_equal(event_bin_decode(ok_min, sizeof ok_min, &out), 0);
    assert_int_equal(out.ts_ms, 1);
    assert_int_equal(out.recv_ms, 1);
    static const uint8_t bad_type[] = {1, 0, EVENT_TYPE__COUNT + 1, 2, 0};
    expect_corrupt(bad_type, sizeof bad_type);
    static const uint8_t bad_type_big[] = {1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 2, 0};
    expect_corrupt(bad_type_big, sizeof bad_type_big);
    /* Flag bit 15: past the string flags (5..12), BIN_ID_ASSIGNED (13), BIN_ANONYMOUS (14). */
    static const uint8_t bad_flag[] = {1, 0x80, 0x80, 0x02, 0, 2, 0};
    expect_corrupt(bad_flag, sizeof bad_flag);
    static const uint8_t overlong[] = {1, 0x80, 0x00, 0, 2, 0};
    expect_corrupt(overlong, sizeof overlong);
    static const uint8_t overflow[] = {1,    0,    0,    0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0};
    expect_corrupt(overflow, sizeof overflow);
    /* event_id present (flag 1 << 5): zero length, length past the end, over the limit. */
    static const uint8_t empty_str[] = {1, 0x20, 0, 2, 0, 0};
    expect_corrupt(empty_str, sizeof empty_str);
    static const uint8_t past_end[] = {1, 0x20, 0, 2, 0, 3, 'a', 'b'};
    expect_corrupt(past_end, sizeof past_end);
    static const uint8_t ok_str[] = {1, 0x20, 0, 2, 0, 2, 'a', 'b'};
    assert_int_equal(event_bin_decode(ok_str, sizeof ok_str, &out), 0);
    assert_int_equal(out.event_id.len, 2);
    uint8_t too_long[8 + 65] = {1, 0x20, 0, 2, 0, 65};
    expect_corrupt(too_long, 6 + 65);
    /* dropped_fields present but zero; position out of int32. */
    static const uint8_t zero_dropped[] = {1, 0x10, 0, 2, 0, 0};
    expect_corrupt(zero_dropped, sizeof zero_dropped);
    static const uint8_t big_pos[] = {1, 0x08, 0, 2, 0, 0x80, 0x80, 0x80, 0x80, 0x10};
    expect_corrupt(big_pos, sizeof big_pos);
    /* A key cut short. */
    static const uint8_t short_key[] = {1, 0x01, 0, 2, 0, 1, 2, 3};
    expect_corrupt(short_key, sizeof short_key);
    core_buf_dispose(&buf);
}

static void test_key_hex(void **state)
{
    (void)state;
    /* Keys travel as 16 raw bytes and come back as 32 lowercase hex chars. */
    uint8_t payload[5 + 16 + 1] = {1, 0x01, 0, 2, 0};
    for (int i = 0; i < 16; i++)
        payload[5 + i] = (uint8_t)(i * 17);
    struct event out;
    assert_int_equal(event_bin_decode(payload, 5 + 16, &out), 0);
    assert_string_equal(out.user_key, "00112233445566778899aabbccddeeff");
    assert_string_equal(out.anon_key, "");
    expect_corrupt(payload, 5 + 15);
    expect_corrupt(payload, 5 + 16 + 1);
}

static bool allow_video(void *arg, const char *name, size_t len)
{
    (void)arg;
    return len == 10 && memcmp(name, "video_play", 10) == 0;
}

/* Custom types (registered at run time) decode only when the option accepts them, and
 * round-trip through the binary codec with their name. */
static void test_custom_type_round_trip(void **state)
{
    (void)state;
    cJSON *obj = cJSON_Parse("{\"userId\":\"u\",\"eventType\":\"video_play\",\"timestamp\":5}");
    struct core_arena a;
    core_arena_init(&a);
    struct event ev, back;
    struct event_error err;
    assert_int_equal(event_json_decode(obj, 10, &a, &ev, &err), CORE_E_INVALID);
    assert_string_equal(err.field, "eventType");
    struct event_decode_opts opts = {.custom_type = allow_video};
    assert_int_equal(event_json_decode_ex(obj, 10, &a, &opts, &ev, &err), 0);
    assert_int_equal(ev.type, EVENT_TYPE_CUSTOM);
    memcpy(ev.user_key, "0123456789abcdef0123456789abcdef", 33);
    ev.user_id.len = 0;
    struct core_buf b;
    core_buf_init(&b);
    event_bin_encode(&ev, &b);
    assert_int_equal(event_bin_decode(b.data, b.len, &back), 0);
    assert_int_equal(back.type, EVENT_TYPE_CUSTOM);
    assert_false(back.id_assigned);
    /* The "collector assigned the id" flag round-trips too. */
    ev.id_assigned = true;
    core_buf_reset(&b);
    event_bin_encode(&ev, &b);
    assert_int_equal(event_bin_decode(b.data, b.len, &back), 0);
    assert_true(back.id_assigned);
    size_t len;
    const char *name = event_type_name(&back, &len);
    assert_int_equal(len, 10);
    assert_memory_equal(name, "video_play", 10);
    struct core_buf js;
    core_buf_init(&js);
    event_json_encode(&back, &js);
    assert_non_null(strstr(js.data, "\"eventType\":\"video_play\""));
    core_buf_dispose(&js);
    core_buf_dispose(&b);
    core_arena_dispose(&a);
    cJSON_Delete(obj);
}

/* Version 2: an event with a sealed field bundle round-trips, the bundle included; events
 * without one are still written as version 1 (their bytes did not change); the two are
 * told apart by the version byte and the flag, and a mix of the two is refused. */
static void test_fields_bundle(void **state)
{
    (void)state;
    static const char bundle[] = "\x01\x00\x80\x10\x05email-opaque-ciphertext";
    struct event ev;
    full_event(&ev);
    ev.user_id = ev.anonymous_id = (struct event_str){NULL, 0};
    ev.fields_sealed = (struct event_str){bundle, sizeof bundle - 1};
    round_trip(&ev);
    struct core_buf buf;
    core_buf_init(&buf);
    event_bin_encode(&ev, &buf);
    assert_int_equal((uint8_t)buf.data[0], 2);
    struct event back;
    void *copy;
    assert_int_equal(decode_copy(buf.data, buf.len, &back, &copy), 0);
    assert_int_equal(back.fields_sealed.len, sizeof bundle - 1);
    assert_memory_equal(back.fields_sealed.ptr, bundle, sizeof bundle - 1);
    free(copy);
    /* Version 1 with the bundle's flag and bytes: refused. */
    buf.data[0] = 1;
    expect_corrupt((const uint8_t *)buf.data, buf.len);
    core_buf_dispose(&buf);

    /* Without a bundle: version 1, and version 2 of the same bytes is refused. */
    ev.fields_sealed = (struct event_str){NULL, 0};
    core_buf_init(&buf);
    event_bin_encode(&ev, &buf);
    assert_int_equal((uint8_t)buf.data[0], 1);
    buf.data[0] = 2;
    expect_corrupt((const uint8_t *)buf.data, buf.len);
    core_buf_dispose(&buf);

    /* A record of the format before bundles, written out by hand: version 1, flags = eventId
     * present, type click (wire 1), zigzag(ts 1000) = 2000, zigzag(recv - ts = 5) = 10,
     * eventId "e1". It still decodes, without a bundle. */
    static const uint8_t old[] = {1, 0x20, 1, 0xd0, 0x0f, 10, 2, 'e', '1'};
    assert_int_equal(decode_copy(old, sizeof old, &back, &copy), 0);
    assert_int_equal(back.type, EVENT_CLICK);
    assert_int_equal(back.ts_ms, 1000);
    assert_int_equal(back.recv_ms, 1005);
    assert_int_equal(back.event_id.len, 2);
    assert_int_equal(back.fields_sealed.len, 0);
    free(copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_custom_type_round_trip),
        cmocka_unit_test(test_fields_bundle),
        cmocka_unit_test(test_round_trip_full),
        cmocka_unit_test(test_round_trip_minimal),
        cmocka_unit_test(test_round_trip_edges),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_key_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
