/* The published envelope schema (recstream.event) and the decoder agree on what a valid
 * event is, over a corpus of valid and invalid events (outside the documented differences:
 * null-as-absent, byte lengths, the 24 h future limit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "event/event.h"
#include "schema/schema.h"

#include <stdio.h>
#include <string.h>

static const char *corpus[] = {
    "{\"userId\":\"123\",\"eventType\":\"click\",\"itemId\":\"product456\",\"timestamp\":"
    "1700000000000}",
    "{\"anonymousId\":\"a\",\"eventType\":\"page_view\"}",
    "{\"userId\":7,\"eventType\":\"view\",\"itemId\":9}",
    "{\"userId\":\"u\",\"eventType\":\"search\",\"properties\":{\"q\":\"shoes\"}}",
    "{\"userId\":\"u\",\"eventType\":\"view\",\"itemId\":\"i\",\"timestamp\":\"2024-01-02T03:04:"
    "05Z\"}",
    ("{\"userId\":\"u\",\"eventType\":\"rating\",\"itemId\":\"i\",\"value\":4.5,\"position\":2,"
     "\"recId\":\"r1\",\"sessionId\":\"s\",\"eventId\":\"e1\",\"context\":{\"device\":\"mobile\"}"
     "}"),
    "{\"userId\":\"u\",\"eventType\":\"view\",\"itemId\":\"i\",\"schema\":\"view/1-0-0\"}",
    /* invalid */
    "{\"eventType\":\"view\",\"itemId\":\"i\"}",
    "{\"userId\":\"u\",\"itemId\":\"i\"}",
    "{\"userId\":\"u\",\"eventType\":\"view\"}",
    "{\"userId\":\"\",\"eventType\":\"page_view\"}",
    "{\"userId\":\"u\",\"eventType\":\"view\",\"itemId\":\"i\",\"timestamp\":-5}",
    "{\"userId\":\"u\",\"eventType\":\"view\",\"itemId\":\"i\",\"timestamp\":\"yesterday\"}",
    "{\"userId\":\"u\",\"eventType\":\"view\",\"itemId\":\"i\",\"timestamp\":1.5}",
    "{\"userId\":\"u\",\"eventType\":\"view\",\"itemId\":\"i\",\"value\":\"x\"}",
    "{\"userId\":\"u\",\"eventType\":\"view\",\"itemId\":\"i\",\"position\":-1}",
    "{\"userId\":\"u\",\"eventType\":\"view\",\"itemId\":\"i\",\"context\":[]}",
    "{\"userId\":\"u\",\"eventType\":\"view\",\"itemId\":\"i\",\"properties\":3}",
    "{\"userId\":\"u\",\"eventType\":\"view\",\"itemId\":\"i\",\"schema\":\"bad\"}",
    "{\"userId\":\"u\",\"eventType\":\"view\",\"itemId\":\"i\",\"schema\":\"v/01-0-0\"}",
    "{\"userId\":\"u\",\"eventType\":\"view\",\"itemId\":\"i\",\"schema\":\"v/0-1-0\"}",
    "{\"userId\":{\"a\":1},\"eventType\":\"page_view\"}",
    "{\"userId\":1.5,\"eventType\":\"page_view\"}",
    "[1,2]",
};

static bool accept_any(void *arg, const char *name, size_t len)
{
    (void)arg;
    (void)name;
    (void)len;
    return true; /* the schema has no list of types: compare with custom types allowed */
}

static void test_decoder_and_schema_agree(void **state)
{
    (void)state;
    struct core_buf doc, err;
    core_buf_init(&doc);
    core_buf_init(&err);
    event_envelope_schema_json(&doc);
    cJSON *sdoc = cJSON_Parse(doc.data);
    assert_non_null(sdoc);
    struct schema *s = NULL;
    assert_int_equal(schema_compile(sdoc, NULL, &s, &err), 0);
    struct event_decode_opts opts = {.custom_type = accept_any};
    size_t valid = 0;
    for (size_t i = 0; i < sizeof corpus / sizeof *corpus; i++) {
        cJSON *ev = cJSON_Parse(corpus[i]);
        assert_non_null(ev);
        struct core_arena a;
        core_arena_init(&a);
        struct event e;
        struct event_error ee;
        bool by_decoder = event_json_decode_ex(ev, 1800000000000, &a, &opts, &e, &ee) == 0;
        bool by_schema = schema_validate(s, ev, NULL) == 0;
        core_arena_dispose(&a);
        cJSON_Delete(ev);
        if (by_decoder != by_schema)
            fail_msg("disagree on %s: decoder %d schema %d", corpus[i], by_decoder, by_schema);
        valid += by_decoder;
    }
    assert_int_equal(valid, 7);
    schema_free(s);
    cJSON_Delete(sdoc);
    core_buf_dispose(&doc);
    core_buf_dispose(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_decoder_and_schema_agree)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
