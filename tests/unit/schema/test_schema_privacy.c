/* Privacy annotations of compiled schemas: "x-pii" / "x-retention" are recorded per root
 * property (through $refs), refused when malformed, change no validation result; a closed
 * root ("additionalProperties": false without patternProperties) is recognised. */
#include "schema/schema.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct schema *compile(const char *json, int want_rc)
{
    cJSON *doc = cJSON_Parse(json);
    assert_non_null(doc);
    struct schema *s = NULL;
    struct core_buf err;
    core_buf_init(&err);
    assert_int_equal(schema_compile(doc, NULL, &s, &err), want_rc);
    if (want_rc)
        assert_non_null(strstr(err.data, "x-"));
    core_buf_dispose(&err);
    cJSON_Delete(doc);
    return s;
}

static void collect(void *arg, const char *name, enum schema_retention r)
{
    struct core_buf *b = arg;
    core_buf_printf(b, "%s=%s;", name, schema_retention_name(r));
}

static void test_marks_recorded(void **state)
{
    (void)state;
    struct schema *s =
        compile("{\"type\":\"object\",\"additionalProperties\":false,\"definitions\":{\"mail\":"
                "{\"type\":\"string\",\"x-pii\":true,\"x-retention\":\"short\"}},\"properties\":{"
                "\"email\":{\"$ref\":\"#/definitions/mail\"},\"phone\":{\"x-pii\":true},"
                "\"plan\":{\"type\":\"string\",\"x-pii\":false,\"x-retention\":\"long\"}}}",
                0);
    struct core_buf b;
    core_buf_init(&b);
    assert_int_equal(schema_pii_each(s, collect, &b), 2);
    assert_non_null(strstr(b.data, "email=short;"));
    assert_non_null(strstr(b.data, "phone=standard;"));
    assert_true(schema_pii_property(s, "email", 5));
    assert_false(schema_pii_property(s, "plan", 4));
    assert_false(schema_pii_property(s, "nope", 4));
    assert_true(schema_root_closed(s));
    assert_true(schema_root_declares(s, "plan", 4));
    assert_false(schema_root_declares(s, "extra", 5));
    /* Annotations change no validation result. */
    cJSON *inst = cJSON_Parse("{\"email\":\"a@b\",\"phone\":1,\"plan\":\"x\"}");
    assert_int_equal(schema_validate(s, inst, NULL), 0);
    cJSON_Delete(inst);
    schema_free(s);
    core_buf_dispose(&b);
}

static void test_open_roots_and_bad_marks(void **state)
{
    (void)state;
    struct schema *s = compile("{\"type\":\"object\",\"properties\":{\"a\":{}}}", 0);
    assert_false(schema_root_closed(s));
    assert_int_equal(schema_pii_each(s, NULL, NULL), 0);
    schema_free(s);
    s = compile("{\"additionalProperties\":false,\"patternProperties\":{\"^x\":{}}}", 0);
    assert_false(schema_root_closed(s)); /* patterns declare more than names */
    assert_false(schema_root_declares(s, "xa", 2));
    schema_free(s);
    s = compile("true", 0);
    assert_false(schema_root_closed(s));
    assert_false(schema_root_declares(s, "a", 1));
    schema_free(s);
    compile("{\"properties\":{\"a\":{\"x-pii\":\"yes\"}}}", CORE_E_INVALID);
    compile("{\"properties\":{\"a\":{\"x-retention\":\"forever\"}}}", CORE_E_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_marks_recorded),
        cmocka_unit_test(test_open_roots_and_bad_marks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
