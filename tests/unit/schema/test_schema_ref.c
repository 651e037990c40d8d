/*
 * $ref and $id: JSON pointers with escapes, base URI changes, location-independent ids, URN
 * bases, draft-07's ignored $ref siblings, compile errors for remote or broken references,
 * and the validation-time guards against endless recursion. Several cases come from newer
 * JSON-Schema-Test-Suite releases than the one Debian packages.
 */
#include "schema/schema.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct schema *compile_with(const char *json, const char *base)
{
    cJSON *doc = cJSON_Parse(json);
    assert_non_null(doc);
    struct schema *s = NULL;
    struct core_buf err;
    core_buf_init(&err);
    if (schema_compile(doc, base, &s, &err) != 0)
        fail_msg("schema %s does not compile: %s", json, err.data);
    core_buf_dispose(&err);
    cJSON_Delete(doc);
    return s;
}

static int check(const struct schema *s, const char *instance, struct schema_errors *errs)
{
    cJSON *inst = cJSON_Parse(instance);
    assert_non_null(inst);
    int rc = schema_validate(s, inst, errs);
    assert_int_equal(schema_validate(s, inst, NULL), rc);
    cJSON_Delete(inst);
    return rc;
}

/* Compiles schema and checks instances: a NUL-separated list, each prefixed '+' (valid) or
 * '-' (invalid). */
static void expect(const char *schema, const char *const *cases)
{
    struct schema *s = compile_with(schema, NULL);
    struct schema_errors errs;
    for (size_t i = 0; cases[i]; i++) {
        int want = cases[i][0] == '+' ? 0 : 1;
        if (check(s, cases[i] + 1, &errs) != want)
            fail_msg("%s: expected %s for %s", schema, want ? "invalid" : "valid", cases[i] + 1);
    }
    schema_free(s);
}

static void assert_compile_error(const char *json, const char *needle)
{
    cJSON *doc = cJSON_Parse(json);
    assert_non_null(doc);
    struct schema *s = NULL;
    struct core_buf err;
    core_buf_init(&err);
    assert_int_equal(schema_compile(doc, NULL, &s, &err), CORE_E_INVALID);
    if (!err.data || !strstr(err.data, needle))
        fail_msg("compile error \"%s\" does not contain \"%s\"", err.data, needle);
    core_buf_dispose(&err);
    cJSON_Delete(doc);
}

static void test_pointers(void **state)
{
    (void)state;
    expect("{\"properties\":{\"foo\":{\"$ref\":\"#\"}},\"additionalProperties\":false}",
           (const char *const[]){"+{\"foo\":{\"foo\":{}}}", "-{\"foo\":{\"bar\":1}}", NULL});
    expect("{\"tilde~field\":{\"type\":\"integer\"},\"slash/field\":{\"type\":\"integer\"},"
           "\"percent%field\":{\"type\":\"integer\"},\"properties\":{"
           "\"t\":{\"$ref\":\"#/tilde~0field\"},\"s\":{\"$ref\":\"#/slash~1field\"},"
           "\"p\":{\"$ref\":\"#/percent%25field\"}}}",
           (const char *const[]){"+{\"t\":1,\"s\":2,\"p\":3}", "-{\"t\":\"a\"}", "-{\"s\":\"a\"}",
                                 "-{\"p\":\"a\"}", NULL});
    expect("{\"properties\":{\"foo\\\"bar\":{\"$ref\":\"#/definitions/foo%22bar\"}},"
           "\"definitions\":{\"foo\\\"bar\":{\"type\":\"number\"}}}",
           (const char *const[]){"+{\"foo\\\"bar\":1}", "-{\"foo\\\"bar\":\"1\"}", NULL});
    expect("{\"definitions\":{\"\":{\"definitions\":{\"\":{\"type\":\"number\"}}}},"
           "\"allOf\":[{\"$ref\":\"#/definitions//definitions/\"}]}",
           (const char *const[]){"+1", "-\"a\"", NULL});
    expect("{\"items\":[{\"type\":\"integer\"},{\"$ref\":\"#/items/0\"}]}",
           (const char *const[]){"+[1,2]", "-[1,\"a\"]", NULL});
    /* Only $ref's siblings are ignored, and an enum member that looks like a $ref is data. */
    expect("{\"definitions\":{\"r\":{\"type\":\"array\"}},\"properties\":{\"foo\":"
           "{\"$ref\":\"#/definitions/r\",\"maxItems\":1}}}",
           (const char *const[]){"+{\"foo\":[1,2,3]}", "-{\"foo\":\"x\"}", NULL});
    expect("{\"definitions\":{\"s\":{\"type\":\"string\"}},"
           "\"enum\":[{\"$ref\":\"#/definitions/s\"}]}",
           (const char *const[]){"-\"a string\"", "+{\"$ref\":\"#/definitions/s\"}", NULL});
    expect("{\"$ref\":\"#/definitions/b\",\"definitions\":{\"b\":false}}",
           (const char *const[]){"-1", NULL});
}

static void test_ids(void **state)
{
    (void)state;
    /* Location-independent identifiers, also inside a changed base. */
    expect("{\"allOf\":[{\"$ref\":\"#foo\"}],\"definitions\":{\"A\":{\"$id\":\"#foo\","
           "\"type\":\"integer\"}}}",
           (const char *const[]){"+1", "-\"a\"", NULL});
    expect("{\"$id\":\"http://localhost:1234/root\",\"allOf\":[{\"$ref\":"
           "\"http://localhost:1234/nested.json#foo\"}],\"definitions\":{\"A\":{\"$id\":"
           "\"nested.json\",\"definitions\":{\"B\":{\"$id\":\"#foo\",\"type\":\"integer\"}}}}}",
           (const char *const[]){"+1", "-\"a\"", NULL});
    /* An $id is resolved against the nearest enclosing $id. */
    expect("{\"$id\":\"http://example.com/a.json\",\"definitions\":{\"x\":{\"$id\":"
           "\"http://example.com/b/c.json\",\"not\":{\"definitions\":{\"y\":{\"$id\":\"d.json\","
           "\"type\":\"number\"}}}}},\"allOf\":[{\"$ref\":\"http://example.com/b/d.json\"}]}",
           (const char *const[]){"+1", "-\"a\"", NULL});
    /* $ref stops a sibling $id from changing the base. */
    expect("{\"$id\":\"http://localhost:1234/sibling_id/base/\",\"definitions\":{\"foo\":"
           "{\"$id\":\"http://localhost:1234/sibling_id/foo.json\",\"type\":\"string\"},"
           "\"base_foo\":{\"$id\":\"foo.json\",\"type\":\"number\"}},\"allOf\":[{\"$id\":"
           "\"http://localhost:1234/sibling_id/\",\"$ref\":\"foo.json\"}]}",
           (const char *const[]){"+5", "-\"a\"", NULL});
    /* Relative references with absolute base URIs. */
    expect("{\"$id\":\"http://example.com/schema-relative-uri-defs1.json\",\"properties\":{"
           "\"foo\":{\"$id\":\"schema-relative-uri-defs2.json\",\"definitions\":{\"inner\":{"
           "\"properties\":{\"bar\":{\"type\":\"string\"}}}},\"allOf\":[{\"$ref\":"
           "\"#/definitions/inner\"}]}},\"allOf\":[{\"$ref\":\"schema-relative-uri-defs2.json\"}]}",
           (const char *const[]){"+{\"foo\":{\"bar\":\"a\"},\"bar\":\"a\"}",
                                 "-{\"foo\":{\"bar\":1},\"bar\":\"a\"}",
                                 "-{\"foo\":{\"bar\":\"a\"},\"bar\":1}", NULL});
    /* URNs and file URIs as bases. */
    expect("{\"$id\":\"urn:uuid:deadbeef-1234-ffff-ffff-4321feebdaed\",\"minimum\":30,"
           "\"properties\":{\"foo\":{\"$ref\":\"urn:uuid:deadbeef-1234-ffff-ffff-4321feebdaed\"}}}",
           (const char *const[]){"+{\"foo\":37}", "-{\"foo\":12}", NULL});
    expect("{\"$id\":\"urn:uuid:deadbeef-1234-0000-0000-4321feebdaed\",\"properties\":{\"foo\":"
           "{\"$ref\":\"urn:uuid:deadbeef-1234-0000-0000-4321feebdaed#/definitions/bar\"}},"
           "\"definitions\":{\"bar\":{\"type\":\"string\"}}}",
           (const char *const[]){"+{\"foo\":\"bar\"}", "-{\"foo\":12}", NULL});
    expect("{\"$id\":\"file:///folder/file.json\",\"definitions\":{\"foo\":{\"type\":\"number\"}},"
           "\"allOf\":[{\"$ref\":\"#/definitions/foo\"}]}",
           (const char *const[]){"+1", "-\"a\"", NULL});
    expect("{\"allOf\":[{\"$ref\":\"http://example.com/ref/if\"},{\"if\":{\"$id\":"
           "\"http://example.com/ref/if\",\"type\":\"integer\"}}]}",
           (const char *const[]){"-\"foo\"", "+12", NULL});
}

static void test_base_uri_argument(void **state)
{
    (void)state;
    const char *json = "{\"properties\":{\"a\":{\"$ref\":\"../other.json#/definitions/n\"}},"
                       "\"definitions\":{\"o\":{\"$id\":\"http://example.com/other.json\","
                       "\"definitions\":{\"n\":{\"type\":\"number\"}}}}}";
    struct schema *s = compile_with(json, "http://example.com/dir/main.json");
    assert_int_equal(check(s, "{\"a\":1}", NULL), 0);
    assert_int_equal(check(s, "{\"a\":\"x\"}", NULL), 1);
    schema_free(s);
}

static void test_recursive(void **state)
{
    (void)state;
    const char *tree =
        "{\"$id\":\"http://localhost:1234/tree\",\"type\":\"object\","
        "\"properties\":{\"meta\":{\"type\":\"string\"},\"nodes\":{\"type\":"
        "\"array\",\"items\":{\"$ref\":\"node\"}}},\"required\":[\"meta\",\"nodes\"],"
        "\"definitions\":{\"node\":{\"$id\":\"http://localhost:1234/node\","
        "\"type\":\"object\",\"properties\":{\"value\":{\"type\":\"number\"},"
        "\"subtree\":{\"$ref\":\"tree\"}},\"required\":[\"value\"]}}}";
    struct schema *s = compile_with(tree, NULL);
    struct schema_errors errs;
    assert_int_equal(check(s,
                           "{\"meta\":\"root\",\"nodes\":[{\"value\":1,\"subtree\":{\"meta\":"
                           "\"child\",\"nodes\":[{\"value\":\"x\"}]}}]}",
                           &errs),
                     1);
    assert_int_equal(errs.count, 1);
    assert_string_equal(errs.items[0].instance_path, "/nodes/0/subtree/nodes/0/value");
    assert_string_equal(errs.items[0].schema_path, "#/definitions/node/properties/value/type");
    schema_free(s);
}

static void test_ref_errors(void **state)
{
    (void)state;
    assert_compile_error("{\"$ref\":\"http://localhost:1234/integer.json\"}",
                         "#/$ref: cannot resolve $ref \"http://localhost:1234/integer.json\"");
    assert_compile_error("{\"$ref\":\"http://localhost:1234/integer.json\"}",
                         "remote references are not fetched");
    assert_compile_error("{\"properties\":{\"a\":{\"$ref\":\"#/definitions/missing\"}}}",
                         "#/properties/a/$ref: cannot resolve $ref \"#/definitions/missing\"");
    assert_compile_error("{\"$ref\":\"#nope\"}", "no subschema has this $id");
    assert_compile_error("{\"definitions\":{\"a\":{\"$ref\":\"#/definitions/b\"},"
                         "\"b\":{\"$ref\":\"#/definitions/a\"}},\"$ref\":\"#/definitions/a\"}",
                         "$ref cycle");
    assert_compile_error("{\"$ref\":\"#\"}", "$ref cycle");
    assert_compile_error("{\"definitions\":{\"a\":{\"$id\":\"#x\"},\"b\":{\"$id\":\"#x\"}}}",
                         "is used by two different subschemas");
    assert_compile_error("{\"$id\":5}", "#/$id: must be a string");
}

static void test_recursion_limits(void **state)
{
    (void)state;
    /* A loop through anyOf that consumes no input: stopped by the depth limit. */
    struct schema *s = compile_with("{\"anyOf\":[{\"$ref\":\"#\"}]}", NULL);
    struct schema_errors errs;
    assert_int_equal(check(s, "1", &errs), 1);
    assert_int_equal(errs.count, 1);
    assert_string_equal(errs.items[0].keyword, "limit");
    assert_true(strstr(errs.items[0].message, "nested more than 512 deep") != NULL);
    schema_free(s);

    /* Exponential: every level tries both branches. Stopped by the step limit. */
    s = compile_with(
        "{\"type\":\"array\",\"items\":{\"anyOf\":[{\"$ref\":\"#\"},{\"$ref\":\"#\"}]}}", NULL);
    struct core_buf inst;
    core_buf_init(&inst);
    for (int i = 0; i < 40; i++)
        core_buf_putc(&inst, '[');
    core_buf_putc(&inst, '1');
    for (int i = 0; i < 40; i++)
        core_buf_putc(&inst, ']');
    assert_int_equal(check(s, inst.data, &errs), 1);
    assert_string_equal(errs.items[errs.count - 1].keyword, "limit");
    assert_true(strstr(errs.items[errs.count - 1].message, "schema evaluations") != NULL);
    core_buf_dispose(&inst);

    /* Deep but legitimate recursion stays within the limits. */
    core_buf_init(&inst);
    for (int i = 0; i < 100; i++)
        core_buf_putc(&inst, '[');
    for (int i = 0; i < 100; i++)
        core_buf_putc(&inst, ']');
    schema_free(s);
    s = compile_with("{\"type\":\"array\",\"items\":{\"$ref\":\"#\"}}", NULL);
    assert_int_equal(check(s, inst.data, &errs), 0);
    core_buf_dispose(&inst);
    schema_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pointers),          cmocka_unit_test(test_ids),
        cmocka_unit_test(test_base_uri_argument), cmocka_unit_test(test_recursive),
        cmocka_unit_test(test_ref_errors),        cmocka_unit_test(test_recursion_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
