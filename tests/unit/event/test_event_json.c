/* Tests of the event JSON decoder/validator and the canonical JSON encoder. */
#include "event/event.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define RECV_MS 1700000000500LL
#define DAY_MS (24 * 3600 * 1000LL)

/* Parsed trees must outlive the events that borrow from them: the fixture keeps them. */
struct fx {
    struct core_arena arena;
    cJSON *roots[64];
    int nroots;
    struct event ev;
    struct event_error err;
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);
    core_arena_init(&fx->arena);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    for (int i = 0; i < fx->nroots; i++)
        cJSON_Delete(fx->roots[i]);
    core_arena_dispose(&fx->arena);
    free(fx);
    return 0;
}

static int decode_at(struct fx *fx, const char *json, int64_t recv_ms)
{
    cJSON *root = cJSON_ParseWithLength(json, strlen(json));
    assert_non_null(root);
    assert_true(fx->nroots < 64);
    fx->roots[fx->nroots++] = root;
    event_init(&fx->ev);
    return event_json_decode(root, recv_ms, &fx->arena, &fx->ev, &fx->err);
}

static void ok(struct fx *fx, const char *json)
{
    int rc = decode_at(fx, json, RECV_MS);
    if (rc != 0)
        fail_msg("%s: field \"%s\": %s", json, fx->err.field, fx->err.message);
}

static void bad(struct fx *fx, const char *json, const char *field)
{
    int rc = decode_at(fx, json, RECV_MS);
    if (rc != CORE_E_INVALID)
        fail_msg("%s: expected an error at \"%s\", got %d", json, field, rc);
    assert_string_equal(fx->err.field, field);
    assert_true(fx->err.message[0] != '\0');
}

static void assert_str(struct event_str s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    if (s.len)
        assert_memory_equal(s.ptr, want, s.len);
}

/* A string of n copies of c, in a static buffer (one at a time). */
static const char *repeat(char c, size_t n)
{
    static char buf[20000];
    assert_true(n < sizeof buf);
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

/* Builds an event JSON from a printf format (the helpers above take plain strings). */
static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...)
{
    static char buf[40000];
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return buf;
}

#define BASE "\"userId\":\"u1\",\"eventType\":\"click\",\"itemId\":\"i1\""

/* ---- the seed producer ---- */

static void test_seed_event(void **state)
{
    struct fx *fx = *state;
    ok(fx, "{\"userId\":\"123\",\"eventType\":\"click\",\"itemId\":\"product456\","
           "\"timestamp\":1700000000000}");
    struct event *ev = &fx->ev;
    assert_str(ev->user_id, "123");
    assert_str(ev->anonymous_id, "");
    assert_int_equal(ev->type, EVENT_CLICK);
    assert_str(ev->item_id, "product456");
    assert_int_equal(ev->ts_ms, 1700000000000LL);
    assert_int_equal(ev->recv_ms, RECV_MS);
    assert_str(ev->event_id, "");
    assert_str(ev->session_id, "");
    assert_false(ev->has_value);
    assert_false(ev->has_position);
    assert_str(ev->context_json, "");
    assert_str(ev->properties_json, "");
    assert_int_equal(ev->dropped_fields, 0);
    assert_string_equal(ev->user_key, "");
}

static void test_not_object(void **state)
{
    struct fx *fx = *state;
    bad(fx, "[1,2]", "");
    assert_string_equal(fx->err.message, "event must be a JSON object");
    bad(fx, "\"x\"", "");
    bad(fx, "null", "");
}

/* ---- ids ---- */

static void test_event_id(void **state)
{
    struct fx *fx = *state;
    ok(fx, "{\"eventId\":\"e-1\"," BASE "}");
    assert_str(fx->ev.event_id, "e-1");
    ok(fx, fmt("{\"eventId\":\"%s\"," BASE "}", repeat('e', 64)));
    bad(fx, fmt("{\"eventId\":\"%s\"," BASE "}", repeat('e', 65)), "eventId");
    bad(fx, "{\"eventId\":\"\"," BASE "}", "eventId");
    bad(fx, "{\"eventId\":17," BASE "}", "eventId");
}

static void test_user_ids(void **state)
{
    struct fx *fx = *state;
    bad(fx, "{\"eventType\":\"click\",\"itemId\":\"i\"}", "userId");
    assert_string_equal(fx->err.message, "userId or anonymousId is required");
    bad(fx, "{\"userId\":null,\"anonymousId\":null,\"eventType\":\"click\",\"itemId\":\"i\"}",
        "userId");
    ok(fx, "{\"anonymousId\":\"a-1\",\"eventType\":\"click\",\"itemId\":\"i\"}");
    assert_str(fx->ev.anonymous_id, "a-1");
    assert_str(fx->ev.user_id, "");
    ok(fx, "{\"userId\":null,\"anonymousId\":\"a\",\"eventType\":\"click\",\"itemId\":\"i\"}");
    ok(fx, fmt("{\"userId\":\"%s\",\"eventType\":\"view\",\"itemId\":\"i\"}", repeat('u', 256)));
    bad(fx, fmt("{\"userId\":\"%s\",\"eventType\":\"view\",\"itemId\":\"i\"}", repeat('u', 257)),
        "userId");
    bad(fx,
        fmt("{\"anonymousId\":\"%s\",\"eventType\":\"view\",\"itemId\":\"i\"}", repeat('u', 257)),
        "anonymousId");
    bad(fx, "{\"userId\":\"\",\"eventType\":\"click\",\"itemId\":\"i\"}", "userId");
    bad(fx, "{\"userId\":true,\"eventType\":\"click\",\"itemId\":\"i\"}", "userId");
    bad(fx, "{\"userId\":{},\"eventType\":\"click\",\"itemId\":\"i\"}", "userId");
    bad(fx, "{\"anonymousId\":[],\"eventType\":\"click\",\"itemId\":\"i\"}", "anonymousId");
}

static void test_numeric_ids(void **state)
{
    struct fx *fx = *state;
    ok(fx, "{\"userId\":123,\"eventType\":\"click\",\"itemId\":456}");
    assert_str(fx->ev.user_id, "123");
    assert_str(fx->ev.item_id, "456");
    ok(fx, "{\"anonymousId\":9007199254740991,\"eventType\":\"view\",\"itemId\":0}");
    assert_str(fx->ev.anonymous_id, "9007199254740991");
    assert_str(fx->ev.item_id, "0");
    ok(fx, "{\"userId\":1e3,\"eventType\":\"view\",\"itemId\":\"x\"}");
    assert_str(fx->ev.user_id, "1000");
    bad(fx, "{\"userId\":1.5,\"eventType\":\"click\",\"itemId\":\"i\"}", "userId");
    bad(fx, "{\"userId\":1e300,\"eventType\":\"click\",\"itemId\":\"i\"}", "userId");
    bad(fx, "{\"userId\":1e999,\"eventType\":\"click\",\"itemId\":\"i\"}", "userId");
    bad(fx, "{\"userId\":\"u\",\"eventType\":\"click\",\"itemId\":0.25}", "itemId");
    /* Only ids take numbers. */
    bad(fx, "{\"userId\":\"u\",\"sessionId\":5,\"eventType\":\"click\",\"itemId\":\"i\"}",
        "sessionId");
}

static void test_session_id(void **state)
{
    struct fx *fx = *state;
    ok(fx, "{\"sessionId\":\"s-9\"," BASE "}");
    assert_str(fx->ev.session_id, "s-9");
    bad(fx, fmt("{\"sessionId\":\"%s\"," BASE "}", repeat('s', 257)), "sessionId");
    bad(fx, "{\"sessionId\":\"\"," BASE "}", "sessionId");
}

/* ---- type and item ---- */

static void test_event_type(void **state)
{
    struct fx *fx = *state;
    ok(fx, "{\"userId\":\"u\",\"eventType\":\"purchase\",\"itemId\":\"i\"}");
    assert_int_equal(fx->ev.type, EVENT_PURCHASE);
    bad(fx, "{\"userId\":\"u\",\"itemId\":\"i\"}", "eventType");
    bad(fx, "{\"userId\":\"u\",\"eventType\":\"teleport\",\"itemId\":\"i\"}", "eventType");
    assert_string_equal(fx->err.message, "unknown eventType \"teleport\"");
    bad(fx, "{\"userId\":\"u\",\"eventType\":\"Click\",\"itemId\":\"i\"}", "eventType");
    bad(fx, "{\"userId\":\"u\",\"eventType\":3,\"itemId\":\"i\"}", "eventType");
    bad(fx, "{\"userId\":\"u\",\"eventType\":\"\",\"itemId\":\"i\"}", "eventType");
    /* A long unknown name is clipped in the message, not overflowed. */
    bad(fx, fmt("{\"userId\":\"u\",\"eventType\":\"%s\"}", repeat('t', 60)), "eventType");
    bad(fx, fmt("{\"userId\":\"u\",\"eventType\":\"%s\"}", repeat('t', 5000)), "eventType");
}

static void test_item_id(void **state)
{
    struct fx *fx = *state;
    bad(fx, "{\"userId\":\"u\",\"eventType\":\"click\"}", "itemId");
    bad(fx, "{\"userId\":\"u\",\"eventType\":\"click\",\"itemId\":\"\"}", "itemId");
    bad(fx, "{\"userId\":\"u\",\"eventType\":\"click\",\"itemId\":null}", "itemId");
    ok(fx, "{\"userId\":\"u\",\"eventType\":\"search\"}");
    assert_int_equal(fx->ev.type, EVENT_SEARCH);
    assert_str(fx->ev.item_id, "");
    ok(fx, "{\"userId\":\"u\",\"eventType\":\"form_submit\",\"itemId\":\"f\"}");
    assert_str(fx->ev.item_id, "f");
    ok(fx, fmt("{\"userId\":\"u\",\"eventType\":\"view\",\"itemId\":\"%s\"}", repeat('i', 256)));
    bad(fx, fmt("{\"userId\":\"u\",\"eventType\":\"view\",\"itemId\":\"%s\"}", repeat('i', 257)),
        "itemId");
    bad(fx, "{\"userId\":\"u\",\"eventType\":\"view\",\"itemId\":[\"a\"]}", "itemId");
}

/* ---- timestamp ---- */

static void test_timestamp_number(void **state)
{
    struct fx *fx = *state;
    ok(fx, "{" BASE "}");
    assert_int_equal(fx->ev.ts_ms, RECV_MS);
    ok(fx, "{" BASE ",\"timestamp\":null}");
    assert_int_equal(fx->ev.ts_ms, RECV_MS);
    ok(fx, "{" BASE ",\"timestamp\":1}");
    assert_int_equal(fx->ev.ts_ms, 1);
    ok(fx, "{" BASE ",\"timestamp\":1.7e12}");
    assert_int_equal(fx->ev.ts_ms, 1700000000000LL);
    bad(fx, "{" BASE ",\"timestamp\":1700000000000.5}", "timestamp");
    assert_string_equal(fx->err.message,
                        "must be an integer (ms since the epoch) or an RFC 3339 string");
    bad(fx, "{" BASE ",\"timestamp\":-5}", "timestamp");
    bad(fx, "{" BASE ",\"timestamp\":0}", "timestamp");
    bad(fx, "{" BASE ",\"timestamp\":9007199254740992}", "timestamp");
    bad(fx, "{" BASE ",\"timestamp\":1e999}", "timestamp");
    bad(fx, "{" BASE ",\"timestamp\":true}", "timestamp");
    bad(fx, "{" BASE ",\"timestamp\":{}}", "timestamp");
}

static void test_timestamp_rfc3339(void **state)
{
    struct fx *fx = *state;
    static const struct {
        const char *s;
        int64_t ms;
    } cases[] = {
        {"2023-11-14T22:13:20Z", 1700000000000LL},
        {"2023-11-14T22:13:20.123Z", 1700000000123LL},
        {"2023-11-14T22:13:20.5Z", 1700000000500LL},
        {"2023-11-14T22:13:20.123456789Z", 1700000000123LL},
        {"2023-11-14T23:13:20.123+01:00", 1700000000123LL},
        {"2023-11-14T17:43:20-04:30", 1700000000000LL},
        {"2023-11-14t22:13:20z", 1700000000000LL},
        {"2023-11-14 22:13:20Z", 1700000000000LL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ok(fx, fmt("{" BASE ",\"timestamp\":\"%s\"}", cases[i].s));
        assert_int_equal(fx->ev.ts_ms, cases[i].ms);
    }
    bad(fx, "{" BASE ",\"timestamp\":\"yesterday\"}", "timestamp");
    bad(fx, "{" BASE ",\"timestamp\":\"2023-11-14T22:13:20\"}", "timestamp");
    bad(fx, "{" BASE ",\"timestamp\":\"2023-02-29T00:00:00Z\"}", "timestamp");
    bad(fx, "{" BASE ",\"timestamp\":\"1700000000000\"}", "timestamp");
    bad(fx, "{" BASE ",\"timestamp\":\"1969-12-31T23:59:59Z\"}", "timestamp");
    bad(fx, "{" BASE ",\"timestamp\":\"\"}", "timestamp");
}

static void test_timestamp_future(void **state)
{
    struct fx *fx = *state;
    ok(fx, fmt("{" BASE ",\"timestamp\":%lld}", RECV_MS + DAY_MS));
    assert_int_equal(fx->ev.ts_ms, RECV_MS + DAY_MS);
    bad(fx, fmt("{" BASE ",\"timestamp\":%lld}", RECV_MS + DAY_MS + 1), "timestamp");
    assert_non_null(strstr(fx->err.message, "future"));
    /* 2023-11-16T22:13:20Z is two days after RECV_MS. */
    bad(fx, "{" BASE ",\"timestamp\":\"2023-11-16T22:13:20Z\"}", "timestamp");
    assert_non_null(strstr(fx->err.message, "future"));
    /* Old events are fine (late delivery, backfills). */
    ok(fx, "{" BASE ",\"timestamp\":\"2001-01-01T00:00:00Z\"}");
    assert_int_equal(fx->ev.ts_ms, 978307200000LL);
    /* A receive time near the end of int64 must not overflow. */
    assert_int_equal(decode_at(fx, "{" BASE ",\"timestamp\":5}", INT64_MAX), 0);
    assert_int_equal(decode_at(fx, "{" BASE ",\"timestamp\":5}", INT64_MIN), CORE_E_INVALID);
}

/* ---- value, recId, position, schema ---- */

static void test_value(void **state)
{
    struct fx *fx = *state;
    ok(fx, "{" BASE ",\"value\":2.5}");
    assert_true(fx->ev.has_value);
    assert_true(fx->ev.value == 2.5);
    ok(fx, "{" BASE ",\"value\":-3}");
    assert_true(fx->ev.value == -3);
    ok(fx, "{" BASE ",\"value\":null}");
    assert_false(fx->ev.has_value);
    bad(fx, "{" BASE ",\"value\":\"2.5\"}", "value");
    bad(fx, "{" BASE ",\"value\":1e999}", "value");
    bad(fx, "{" BASE ",\"value\":false}", "value");
}

static void test_rec_id_position(void **state)
{
    struct fx *fx = *state;
    ok(fx, "{" BASE ",\"recId\":\"r-1\",\"position\":3}");
    assert_str(fx->ev.rec_id, "r-1");
    assert_true(fx->ev.has_position);
    assert_int_equal(fx->ev.position, 3);
    ok(fx, "{" BASE ",\"position\":0}");
    assert_true(fx->ev.has_position);
    assert_int_equal(fx->ev.position, 0);
    ok(fx, "{" BASE ",\"position\":100000}");
    assert_int_equal(fx->ev.position, 100000);
    ok(fx, fmt("{" BASE ",\"recId\":\"%s\"}", repeat('r', 128)));
    bad(fx, fmt("{" BASE ",\"recId\":\"%s\"}", repeat('r', 129)), "recId");
    bad(fx, "{" BASE ",\"recId\":7}", "recId");
    bad(fx, "{" BASE ",\"position\":-1}", "position");
    bad(fx, "{" BASE ",\"position\":100001}", "position");
    bad(fx, "{" BASE ",\"position\":1.5}", "position");
    bad(fx, "{" BASE ",\"position\":\"3\"}", "position");
}

static void test_schema(void **state)
{
    struct fx *fx = *state;
    ok(fx, "{" BASE ",\"schema\":\"checkout/1-0-2\"}");
    assert_str(fx->ev.schema, "checkout/1-0-2");
    ok(fx, fmt("{" BASE ",\"schema\":\"%s/1-0-0\"}", repeat('s', 128)));
    bad(fx, fmt("{" BASE ",\"schema\":\"%s/1-0-0\"}", repeat('s', 129)), "schema");
    bad(fx, fmt("{" BASE ",\"schema\":\"%s\"}", repeat('s', 257)), "schema");
    bad(fx, "{" BASE ",\"schema\":{}}", "schema");
    /* SchemaVer shape: name/MODEL-REVISION-ADDITION, model >= 1, no leading zeros. */
    bad(fx, "{" BASE ",\"schema\":\"checkout\"}", "schema");
    bad(fx, "{" BASE ",\"schema\":\"checkout/1-0\"}", "schema");
    bad(fx, "{" BASE ",\"schema\":\"checkout/0-1-0\"}", "schema");
    bad(fx, "{" BASE ",\"schema\":\"checkout/1-01-0\"}", "schema");
    bad(fx, "{" BASE ",\"schema\":\"9checkout/1-0-0\"}", "schema");
    bad(fx, "{" BASE ",\"schema\":\"check out/1-0-0\"}", "schema");
    ok(fx, "{" BASE ",\"schema\":\"a.b-c_d/10-20-30\"}");
}

/* ---- context, properties, unknown fields ---- */

static void test_context_allow_list(void **state)
{
    struct fx *fx = *state;
    ok(fx, "{" BASE ",\"context\":{\"page\":\"/p?q=1\",\"email\":\"a@b.c\",\"locale\":\"de-DE\","
           "\"app\":{\"name\":\"shop\",\"build\":42},\"ip\":null,\"gps\":[1,2],"
           "\"screen\":{\"width\":1080,\"dark\":true},\"device\":\"mobile\",\"page\":\"/dup\"}}");
    assert_str(fx->ev.context_json,
               "{\"page\":\"/p?q=1\",\"locale\":\"de-DE\",\"app\":{\"name\":\"shop\","
               "\"build\":42},\"screen\":{\"width\":1080,\"dark\":true},\"device\":\"mobile\"}");
    assert_int_equal(fx->ev.dropped_fields, 3); /* email, gps, the second page */
    ok(fx, "{" BASE ",\"context\":{\"email\":\"x\"}}");
    assert_str(fx->ev.context_json, "");
    assert_int_equal(fx->ev.dropped_fields, 1);
    ok(fx, "{" BASE ",\"context\":{}}");
    assert_str(fx->ev.context_json, "");
    bad(fx, "{" BASE ",\"context\":\"web\"}", "context");
    bad(fx, "{" BASE ",\"context\":{\"device\":{\"id\":\"x\"}}}", "context.device");
    bad(fx, "{" BASE ",\"context\":{\"locale\":[\"de\"]}}", "context.locale");
    bad(fx, "{" BASE ",\"context\":{\"app\":{\"v\":{\"deep\":1}}}}", "context.app");
    bad(fx, "{" BASE ",\"context\":{\"app\":{\"v\":[1]}}}", "context.app");
    bad(fx, "{" BASE ",\"context\":{\"page\":\"\xff\"}}", "context.page");
    bad(fx, fmt("{" BASE ",\"context\":{\"page\":\"%s\"}}", repeat('p', 16380)), "context");
}

static void test_properties(void **state)
{
    struct fx *fx = *state;
    ok(fx, "{" BASE ",\"properties\": { \"a\" : [1, 2.5, \"x\\\"y\\n\\u0001\", null, true],"
           " \"b\": {\"c\": {}, \"d\": []}, \"e\": 0.1, \"f\": 1e300, \"g\": -0.0 }}");
    assert_str(fx->ev.properties_json, "{\"a\":[1,2.5,\"x\\\"y\\n\\u0001\",null,true],"
                                       "\"b\":{\"c\":{},\"d\":[]},\"e\":0.1,\"f\":1e+300,"
                                       "\"g\":0}");
    assert_int_equal(fx->ev.dropped_fields, 0);
    ok(fx, "{" BASE ",\"properties\":{\"\xc3\xa9t\xc3\xa9\":\"\xf0\x9f\x98\x80\"}}");
    assert_str(fx->ev.properties_json, "{\"\xc3\xa9t\xc3\xa9\":\"\xf0\x9f\x98\x80\"}");
    ok(fx, fmt("{" BASE ",\"properties\":{\"k\":\"%s\"}}", repeat('p', 16384 - 8)));
    assert_int_equal(fx->ev.properties_json.len, 16384);
    bad(fx, fmt("{" BASE ",\"properties\":{\"k\":\"%s\"}}", repeat('p', 16384 - 7)), "properties");
    bad(fx, "{" BASE ",\"properties\":[1]}", "properties");
    bad(fx, "{" BASE ",\"properties\":{\"a\":[\"\xed\xa0\x80\"]}}", "properties");
    bad(fx, "{" BASE ",\"properties\":{\"\xff\":1}}", "properties");
    bad(fx, "{" BASE ",\"properties\":{\"a\":1e999}}", "properties");
}

static void test_unknown_fields(void **state)
{
    struct fx *fx = *state;
    ok(fx, "{\"type\":\"track\"," BASE ",\"extra\":{\"x\":[1]},\"userId\":\"second\"}");
    assert_int_equal(fx->ev.dropped_fields, 3);
    assert_str(fx->ev.user_id, "u1"); /* the first occurrence wins */
    ok(fx, "{" BASE ",\"x\":1,\"context\":{\"y\":1,\"page\":\"/\"}}");
    assert_int_equal(fx->ev.dropped_fields, 2);
    assert_str(fx->ev.context_json, "{\"page\":\"/\"}");
}

static void test_utf8(void **state)
{
    struct fx *fx = *state;
    ok(fx, "{\"userId\":\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\",\"eventType\":\"search\"}");
    static const char *const invalid[] = {
        "\xff",  "\xc3",         "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
        "a\x80", "\xf0\x9f\x98",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        bad(fx, fmt("{\"userId\":\"%s\",\"eventType\":\"search\"}", invalid[i]), "userId");
        assert_string_equal(fx->err.message, "not valid UTF-8");
        bad(fx, fmt("{\"userId\":\"u\",\"eventType\":\"click\",\"itemId\":\"%s\"}", invalid[i]),
            "itemId");
        bad(fx, fmt("{\"userId\":\"u\",\"eventType\":\"%s\"}", invalid[i]), "eventType");
        assert_string_equal(fx->err.message, "not valid UTF-8");
    }
    /* \u escapes are decoded by cJSON and then checked like any other byte. */
    ok(fx, "{\"userId\":\"\\u00e9\\ud83d\\ude00\",\"eventType\":\"search\"}");
    assert_str(fx->ev.user_id, "\xc3\xa9\xf0\x9f\x98\x80");
}

static void test_first_failing_field(void **state)
{
    struct fx *fx = *state;
    /* Fields are checked in a fixed order, whatever the order in the document. */
    bad(fx, "{\"position\":-1,\"eventType\":\"nope\",\"userId\":\"\"}", "userId");
    bad(fx, "{\"position\":-1,\"eventType\":\"nope\",\"userId\":\"u\"}", "eventType");
    bad(fx, "{\"position\":-1,\"timestamp\":\"x\",\"userId\":\"u\",\"eventType\":\"search\"}",
        "timestamp");
    /* A failed decode leaves the output untouched. */
    ok(fx, "{" BASE ",\"value\":1}");
    struct event before;
    memcpy(&before, &fx->ev, sizeof before);
    cJSON *root = cJSON_Parse("{\"userId\":\"v\",\"eventType\":\"zzz\",\"value\":2}");
    assert_int_equal(event_json_decode(root, 1, &fx->arena, &fx->ev, &fx->err), CORE_E_INVALID);
    assert_memory_equal(&before, &fx->ev, sizeof before);
    cJSON_Delete(root);
}

/* ---- encoding ---- */

static void test_encode(void **state)
{
    struct fx *fx = *state;
    ok(fx, "{\"eventId\":\"0190f5e2-7c1a-7000-8000-000000000001\",\"userId\":\"123\","
           "\"sessionId\":\"s\\\"1\",\"eventType\":\"click\",\"itemId\":\"product456\","
           "\"timestamp\":1700000000000,\"value\":2.5,\"recId\":\"r1\",\"position\":2,"
           "\"schema\":\"click/1-0-0\",\"context\":{\"page\":\"/home\",\"foo\":1},"
           "\"properties\":{\"color\":\"red\"},\"junk\":true}");
    memcpy(fx->ev.user_key, "0123456789abcdef0123456789abcdef", EVENT_KEY_HEX + 1);
    struct core_buf out;
    core_buf_init(&out);
    event_json_encode(&fx->ev, &out);
    assert_string_equal(out.data,
                        "{\"eventId\":\"0190f5e2-7c1a-7000-8000-000000000001\","
                        "\"userKey\":\"0123456789abcdef0123456789abcdef\","
                        "\"sessionId\":\"s\\\"1\",\"eventType\":\"click\","
                        "\"itemId\":\"product456\",\"timestamp\":1700000000000,"
                        "\"receivedAt\":1700000000500,\"value\":2.5,\"recId\":\"r1\","
                        "\"position\":2,\"schema\":\"click/1-0-0\","
                        "\"context\":{\"page\":\"/home\"},\"properties\":{\"color\":\"red\"}}");
    assert_null(strstr(out.data, "123\"")); /* never the raw id */
    /* The output parses back as a JSON object. */
    cJSON *back = cJSON_ParseWithLength(out.data, out.len);
    assert_true(cJSON_IsObject(back));
    cJSON_Delete(back);

    core_buf_reset(&out);
    ok(fx, "{\"anonymousId\":\"a\",\"eventType\":\"search\",\"timestamp\":5}");
    memcpy(fx->ev.anon_key, "ffffffffffffffffffffffffffffffff", EVENT_KEY_HEX + 1);
    event_json_encode(&fx->ev, &out);
    assert_string_equal(out.data, "{\"anonKey\":\"ffffffffffffffffffffffffffffffff\","
                                  "\"eventType\":\"search\",\"timestamp\":5,"
                                  "\"receivedAt\":1700000000500}");
    core_buf_dispose(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seed_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numeric_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_item_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_rfc3339, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_future, setup, teardown),
        cmocka_unit_test_setup_teardown(test_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rec_id_position, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_context_allow_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_properties, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_failing_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
