/* Keyword groups of the draft-07 validator: pass and fail cases, and the errors reported. */
#include "schema/schema.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static cJSON *parse(const char *json)
{
    cJSON *j = cJSON_Parse(json);
    if (!j)
        fail_msg("test JSON does not parse: %s", json);
    return j;
}

static struct schema *compile(const char *json)
{
    cJSON *doc = parse(json);
    struct schema *s = NULL;
    struct core_buf err;
    core_buf_init(&err);
    int rc = schema_compile(doc, NULL, &s, &err);
    if (rc != 0)
        fail_msg("schema %s does not compile: %s", json, err.data);
    core_buf_dispose(&err);
    cJSON_Delete(doc); /* the compiled schema must not need it */
    return s;
}

/* Validates with and without a collector; both must agree. Returns 0 valid, 1 invalid. */
static int check(const char *schema, const char *instance, struct schema_errors *errs)
{
    struct schema *s = compile(schema);
    cJSON *inst = parse(instance);
    struct schema_errors local;
    int rc = schema_validate(s, inst, errs ? errs : &local);
    int quick = schema_validate(s, inst, NULL);
    assert_int_equal(rc, quick);
    cJSON_Delete(inst);
    schema_free(s);
    return rc;
}

static void valid(const char *schema, const char *instance)
{
    if (check(schema, instance, NULL) != 0)
        fail_msg("expected %s to be valid against %s", instance, schema);
}

static void invalid(const char *schema, const char *instance)
{
    if (check(schema, instance, NULL) != 1)
        fail_msg("expected %s to be invalid against %s", instance, schema);
}

/* The compile error text for a bad schema (caller frees). */
static char *compile_error(const char *json)
{
    cJSON *doc = parse(json);
    struct schema *s = NULL;
    struct core_buf err;
    core_buf_init(&err);
    assert_int_equal(schema_compile(doc, NULL, &s, &err), CORE_E_INVALID);
    assert_null(s);
    cJSON_Delete(doc);
    char *out = core_xstrdup(err.data ? err.data : "");
    core_buf_dispose(&err);
    return out;
}

static void assert_compile_error(const char *json, const char *needle)
{
    char *msg = compile_error(json);
    if (!strstr(msg, needle))
        fail_msg("compile error \"%s\" does not contain \"%s\"", msg, needle);
    free(msg);
}

static void assert_error(const struct schema_errors *errs, size_t i, const char *ipath,
                         const char *keyword, const char *message)
{
    assert_true(i < errs->count);
    assert_string_equal(errs->items[i].instance_path, ipath);
    assert_string_equal(errs->items[i].keyword, keyword);
    if (message)
        assert_string_equal(errs->items[i].message, message);
}

/* ---- type, enum, const ----------------------------------------------------------------------- */

static void test_type(void **state)
{
    (void)state;
    valid("{\"type\":\"integer\"}", "1.0");
    valid("{\"type\":\"integer\"}", "-12345678901234567890");
    invalid("{\"type\":\"integer\"}", "1.5");
    valid("{\"type\":\"number\"}", "1.5");
    invalid("{\"type\":\"number\"}", "\"1\"");
    valid("{\"type\":[\"string\",\"null\"]}", "null");
    invalid("{\"type\":[\"string\",\"null\"]}", "false");
    valid("{\"type\":\"boolean\"}", "true");
    invalid("{\"type\":\"object\"}", "[]");

    struct schema_errors errs;
    assert_int_equal(
        check("{\"properties\":{\"price\":{\"type\":\"number\"}}}", "{\"price\":\"abc\"}", &errs),
        1);
    assert_int_equal(errs.count, 1);
    assert_error(&errs, 0, "/price", "type", "\"abc\" is not of type \"number\"");
    assert_string_equal(errs.items[0].schema_path, "#/properties/price/type");

    /* The brief's example: an instance with a "properties" member. */
    assert_int_equal(check("{\"properties\":{\"properties\":{\"properties\":{\"price\":"
                           "{\"type\":\"number\"}}}}}",
                           "{\"properties\":{\"price\":\"abc\"}}", &errs),
                     1);
    struct core_buf out;
    core_buf_init(&out);
    schema_errors_format(&errs, &out);
    assert_string_equal(out.data, "/properties/price: \"abc\" is not of type \"number\"");
    core_buf_dispose(&out);

    assert_int_equal(check("{\"type\":[\"string\",\"null\"]}", "7", &errs), 1);
    assert_error(&errs, 0, "", "type", "7 is not of type \"null\" or \"string\"");
}

static void test_enum_const(void **state)
{
    (void)state;
    valid("{\"enum\":[1,\"a\",{\"x\":[1,2]}]}", "1.0");
    valid("{\"enum\":[1,\"a\",{\"x\":[1,2],\"y\":null}]}", "{\"y\":null,\"x\":[1.0,2]}");
    invalid("{\"enum\":[1,\"a\",{\"x\":[1,2]}]}", "{\"x\":[2,1]}");
    invalid("{\"enum\":[false]}", "0");
    invalid("{\"enum\":[]}", "null");
    valid("{\"const\":{\"a\":1,\"b\":[true]}}", "{\"b\":[true],\"a\":1.0}");
    invalid("{\"const\":{\"a\":1}}", "{\"a\":1,\"b\":2}");
    invalid("{\"const\":null}", "false");

    struct schema_errors errs;
    assert_int_equal(check("{\"enum\":[\"view\",\"click\"]}", "\"buy\"", &errs), 1);
    assert_error(&errs, 0, "", "enum", "\"buy\" is not one of [\"view\",\"click\"]");
    assert_int_equal(check("{\"const\":5}", "6", &errs), 1);
    assert_error(&errs, 0, "", "const", "6 is not equal to the constant 5");
}

/* ---- numbers and strings ------------------------------------------------------------------- */

static void test_numbers(void **state)
{
    (void)state;
    valid("{\"minimum\":1,\"maximum\":3}", "1");
    valid("{\"minimum\":1,\"maximum\":3}", "3");
    invalid("{\"minimum\":1}", "0.999");
    invalid("{\"exclusiveMinimum\":1}", "1");
    valid("{\"exclusiveMinimum\":1}", "1.0001");
    invalid("{\"exclusiveMaximum\":3}", "3");
    valid("{\"minimum\":1}", "\"strings are not numbers\"");
    valid("{\"multipleOf\":0.0001}", "0.0075");
    invalid("{\"multipleOf\":0.0001}", "0.00751");
    valid("{\"multipleOf\":0.01}", "19.99");
    valid("{\"multipleOf\":0.1}", "0.3");
    invalid("{\"multipleOf\":2}", "7");
    valid("{\"multipleOf\":1.5}", "4.5");
    invalid("{\"multipleOf\":0.5}", "1000000000000.25");
    invalid("{\"multipleOf\":0.123456789}", "1e308");

    struct schema_errors errs;
    assert_int_equal(
        check("{\"properties\":{\"n\":{\"minimum\":10,\"multipleOf\":4}}}", "{\"n\":5.5}", &errs),
        1);
    assert_int_equal(errs.count, 2);
    assert_error(&errs, 0, "/n", "minimum", "5.5 is less than the minimum of 10");
    assert_error(&errs, 1, "/n", "multipleOf", "5.5 is not a multiple of 4");
    assert_int_equal(check("{\"exclusiveMaximum\":0.1}", "0.1", &errs), 1);
    assert_error(&errs, 0, "", "exclusiveMaximum",
                 "0.1 is greater than or equal to the exclusive maximum of 0.1");
}

static void test_strings(void **state)
{
    (void)state;
    valid("{\"maxLength\":5}", "\"h\xc3\xa9llo\""); /* 6 bytes, 5 code points */
    invalid("{\"maxLength\":4}", "\"h\xc3\xa9llo\"");
    valid("{\"maxLength\":1}", "\"\xf0\x9f\x98\x80\""); /* one emoji */
    invalid("{\"minLength\":2}", "\"\xf0\x9f\x98\x80\"");
    valid("{\"minLength\":2}", "\"\\ud83d\\ude00x\"");
    valid("{\"maxLength\":2}", "12345");
    valid("{\"pattern\":\"[0-9]+\"}", "\"abc123def\"");  /* unanchored search */
    invalid("{\"pattern\":\"^[0-9]+$\"}", "\"123\\n\""); /* $ only at the very end */
    valid("{\"pattern\":\"^\\\\p{L}+$\"}", "\"\xc3\xa9t\xc3\xa9\"");
    valid("{\"pattern\":\"^\\\\u0041$\"}", "\"A\"");
    valid("{\"pattern\":\"^.$\"}", "\"\xc3\xa9\"");
    invalid("{\"pattern\":\"^a\"}", "\"\xff\xfe\""); /* not UTF-8: matches nothing */
    valid("{\"pattern\":\"^a\"}", "5");

    struct schema_errors errs;
    assert_int_equal(check("{\"maxLength\":3,\"pattern\":\"^[a-z]+$\"}", "\"abcD\"", &errs), 1);
    assert_int_equal(errs.count, 2);
    assert_error(&errs, 0, "", "maxLength", "\"abcD\" is longer than 3 characters");
    assert_error(&errs, 1, "", "pattern", "\"abcD\" does not match the pattern \"^[a-z]+$\"");
    /* Catastrophic backtracking ends at the pcre2 match limit, not in a hang. */
    assert_int_equal(
        check("{\"pattern\":\"^(a+)+$\"}", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\"", &errs),
        1);
    assert_string_equal(errs.items[0].keyword, "limit");
    assert_true(strstr(errs.items[0].message, "pcre2 match limit") != NULL);
    assert_compile_error("{\"pattern\":\"(abc\"}", "#/pattern: invalid regular expression");
    assert_compile_error("{\"pattern\":\"abc\\\\Z\"}", "\\Z is not an ECMA-262");
}

static void test_formats(void **state)
{
    (void)state;
    static const char *const good[][2] = {
        {"date-time", "2024-02-29T23:59:60.5-00:00"},
        {"date-time", "1963-06-19t08:30:06Z"},
        {"date", "2000-02-29"},
        {"time", "08:30:06.283185+01:00"},
        {"email", "joe.bloggs@example.com"},
        {"hostname", "www.example-1.com"},
        {"ipv4", "192.168.0.1"},
        {"ipv6", "::ffff:192.168.0.1"},
        {"uri", "http://user:pw@[2001:db8::7]:8080/p/a?q=1#f"},
        {"uri", "urn:isbn:0451450523"},
        {"uri-reference", "../a/b?c#d"},
        {"uuid", "123e4567-e89b-12d3-a456-426614174000"},
        {"json-pointer", "/a~1b/~0c/"},
        {"regex", "^[a-z]{2,3}$"},
        {"no-such-format", "anything"},
    };
    static const char *const bad[][2] = {
        {"date-time", "2024-02-30T00:00:00Z"},
        {"date-time", "2024-01-01T12:00:60Z"},
        {"date-time", "2024-01-01 12:00:00Z"},
        {"date", "2001-02-29"},
        {"time", "25:00:00Z"},
        {"email", "no-at-sign"},
        {"email", "a..b@example.com"},
        {"hostname", "-bad.example"},
        {"ipv4", "01.2.3.4"},
        {"ipv6", "1:2:3:4:5:6:7:8:9"},
        {"uri", "/relative"},
        {"uri", "http://exa mple.com"},
        {"uri-reference", "\\\\\\\\host\\\\share"},
        {"uuid", "123e4567e89b12d3a456426614174000"},
        {"json-pointer", "a/b"},
        {"regex", "(unclosed"},
    };
    char schema[128], inst[256];
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        snprintf(schema, sizeof schema, "{\"format\":\"%s\"}", good[i][0]);
        snprintf(inst, sizeof inst, "\"%s\"", good[i][1]);
        valid(schema, inst);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(schema, sizeof schema, "{\"format\":\"%s\"}", bad[i][0]);
        snprintf(inst, sizeof inst, "\"%s\"", bad[i][1]);
        invalid(schema, inst);
    }
    valid("{\"format\":\"email\"}", "42"); /* formats only constrain strings */
    struct schema_errors errs;
    assert_int_equal(check("{\"format\":\"ipv4\"}", "\"1.2.3\"", &errs), 1);
    assert_error(&errs, 0, "", "format", "\"1.2.3\" is not a valid \"ipv4\"");
}

/* ---- arrays -------------------------------------------------------------------------------- */

static void test_arrays(void **state)
{
    (void)state;
    valid("{\"items\":{\"type\":\"integer\"}}", "[1,2,3]");
    invalid("{\"items\":{\"type\":\"integer\"}}", "[1,\"2\",3]");
    valid("{\"items\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}", "[\"a\",1,{}]");
    invalid("{\"items\":[{\"type\":\"string\"}],\"additionalItems\":false}", "[\"a\",1]");
    valid("{\"items\":[{\"type\":\"string\"}],\"additionalItems\":{\"type\":\"integer\"}}",
          "[\"a\",1,2]");
    valid("{\"items\":{},\"additionalItems\":false}", "[1,2,3]"); /* ignored without a tuple */
    valid("{\"contains\":{\"const\":3}}", "[1,2,3]");
    invalid("{\"contains\":{\"const\":3}}", "[]");
    valid("{\"minItems\":1,\"maxItems\":2}", "[1,2]");
    invalid("{\"maxItems\":2}", "[1,2,3]");
    valid("{\"uniqueItems\":true}", "[1,\"1\",[1],{\"a\":1},{\"a\":2}]");
    invalid("{\"uniqueItems\":true}", "[{\"a\":1,\"b\":2},{\"b\":2,\"a\":1.0}]");
    invalid("{\"uniqueItems\":true}", "[1,1.0]");
    valid("{\"uniqueItems\":false}", "[1,1]");

    /* Long arrays go through the hashed path. */
    struct core_buf arr;
    core_buf_init(&arr);
    core_buf_putc(&arr, '[');
    for (int i = 0; i < 200; i++)
        core_buf_printf(&arr, "%s{\"k\":[%d,\"x\"],\"z\":null}", i ? "," : "", i);
    core_buf_puts(&arr, "]");
    valid("{\"uniqueItems\":true}", arr.data);
    arr.len--;
    core_buf_puts(&arr, ",{\"z\":null,\"k\":[150.0,\"x\"]}]");
    struct schema_errors errs;
    assert_int_equal(check("{\"uniqueItems\":true}", arr.data, &errs), 1);
    assert_true(strstr(errs.items[0].message, "has equal items at 150 and 200") != NULL);
    core_buf_dispose(&arr);

    assert_int_equal(check("{\"items\":[{\"type\":\"string\"}],\"additionalItems\":false,"
                           "\"minItems\":4}",
                           "[\"a\",1,2]", &errs),
                     1);
    assert_int_equal(errs.count, 3);
    assert_error(&errs, 0, "/1", "additionalItems", NULL);
    assert_error(&errs, 1, "/2", "additionalItems", NULL);
    assert_error(&errs, 2, "", "minItems", "[\"a\",1,2] has fewer than 4 items");
}

/* ---- objects ------------------------------------------------------------------------------- */

static void test_objects(void **state)
{
    (void)state;
    const char *s = "{\"properties\":{\"a\":{\"type\":\"integer\"}},"
                    "\"patternProperties\":{\"^x-\":{\"type\":\"string\"}},"
                    "\"additionalProperties\":false}";
    valid(s, "{\"a\":1,\"x-b\":\"c\"}");
    invalid(s, "{\"a\":1,\"b\":2}");
    invalid(s, "{\"x-b\":3}");
    valid("{\"additionalProperties\":{\"type\":\"number\"}}", "{\"a\":1,\"b\":2.5}");
    valid("{\"propertyNames\":{\"maxLength\":3}}", "{\"abc\":1}");
    invalid("{\"propertyNames\":{\"maxLength\":3}}", "{\"abcd\":1}");
    valid("{\"minProperties\":1,\"maxProperties\":2}", "{\"a\":1}");
    invalid("{\"maxProperties\":1}", "{\"a\":1,\"b\":2}");
    valid("{\"dependencies\":{\"a\":[\"b\"]}}", "{\"b\":1}");
    invalid("{\"dependencies\":{\"a\":[\"b\"]}}", "{\"a\":1}");
    invalid("{\"dependencies\":{\"a\":{\"required\":[\"c\"]}}}", "{\"a\":1}");
    valid("{\"required\":[\"a\"]}", "[]");

    struct schema_errors errs;
    assert_int_equal(check("{\"required\":[\"a\",\"b\",\"c\"],\"properties\":{\"b\":{}},"
                           "\"additionalProperties\":false}",
                           "{\"b\":1,\"zz\":2}", &errs),
                     1);
    assert_int_equal(errs.count, 3);
    assert_error(&errs, 0, "/zz", "additionalProperties",
                 "property \"zz\" is not allowed (additionalProperties is false)");
    assert_error(&errs, 1, "", "required", "required property \"a\" is missing");
    assert_error(&errs, 2, "", "required", "required property \"c\" is missing");
    assert_string_equal(errs.items[1].schema_path, "#/required");

    assert_int_equal(check("{\"dependencies\":{\"card\":[\"billing\"]}}", "{\"card\":1}", &errs),
                     1);
    assert_error(&errs, 0, "", "dependencies",
                 "property \"billing\" is required when \"card\" is present");
    assert_int_equal(check("{\"propertyNames\":{\"pattern\":\"^[a-z]+$\"}}", "{\"A/b~\":1}", &errs),
                     1);
    assert_error(&errs, 0, "/A~1b~0", "propertyNames", NULL);
}

static void test_many_required(void **state)
{
    (void)state;
    /* More required names than the 64-bit fast path holds. */
    struct core_buf schema, inst;
    core_buf_init(&schema);
    core_buf_init(&inst);
    core_buf_puts(&schema, "{\"required\":[");
    core_buf_putc(&inst, '{');
    for (int i = 0; i < 100; i++) {
        core_buf_printf(&schema, "%s\"p%d\"", i ? "," : "", i);
        if (i != 99 && i != 7)
            core_buf_printf(&inst, "%s\"p%d\":%d", inst.len > 1 ? "," : "", i, i);
    }
    core_buf_puts(&schema, "]}");
    core_buf_putc(&inst, '}');
    struct schema_errors errs;
    assert_int_equal(check(schema.data, inst.data, &errs), 1);
    assert_int_equal(errs.total, 2);
    assert_error(&errs, 0, "", "required", "required property \"p7\" is missing");
    assert_error(&errs, 1, "", "required", "required property \"p99\" is missing");
    core_buf_dispose(&schema);
    core_buf_dispose(&inst);
}

/* ---- combinations -------------------------------------------------------------------------- */

static void test_combinations(void **state)
{
    (void)state;
    valid("{\"allOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "3");
    invalid("{\"allOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "1");
    valid("{\"anyOf\":[{\"type\":\"string\"},{\"minimum\":2}]}", "\"x\"");
    invalid("{\"anyOf\":[{\"type\":\"string\"},{\"minimum\":2}]}", "1");
    valid("{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "1");
    invalid("{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "3");
    invalid("{\"not\":{\"type\":\"null\"}}", "null");
    valid("{\"if\":{\"minimum\":10},\"then\":{\"multipleOf\":10},\"else\":{\"maximum\":5}}", "20");
    invalid("{\"if\":{\"minimum\":10},\"then\":{\"multipleOf\":10},\"else\":{\"maximum\":5}}", "7");
    valid("{\"then\":false}", "1"); /* then without if does nothing */
    valid("true", "{}");
    invalid("false", "{}");

    struct schema_errors errs;
    assert_int_equal(check("{\"allOf\":[{\"type\":\"string\"},{\"minimum\":2},"
                           "{\"not\":{\"const\":1}}]}",
                           "1", &errs),
                     1);
    assert_int_equal(errs.count, 3);
    assert_error(&errs, 0, "", "type", NULL);
    assert_string_equal(errs.items[0].schema_path, "#/allOf/0/type");
    assert_error(&errs, 1, "", "minimum", NULL);
    assert_error(&errs, 2, "", "not", "1 must not match the schema in \"not\"");
    assert_int_equal(check("{\"oneOf\":[{},{\"type\":\"integer\"}]}", "1", &errs), 1);
    assert_error(&errs, 0, "", "oneOf", "1 matches more than one schema in oneOf (0 and 1)");
    assert_int_equal(check("{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]}", "1", &errs),
                     1);
    assert_error(&errs, 0, "", "anyOf", "1 does not match any of the 2 schemas in anyOf");
    assert_int_equal(check("{\"properties\":{\"a\":false}}", "{\"a\":1}", &errs), 1);
    assert_error(&errs, 0, "/a", "false", "1 is not allowed (false schema)");
    assert_string_equal(errs.items[0].schema_path, "#/properties/a");
}

/* ---- errors -------------------------------------------------------------------------------- */

static void test_error_cap(void **state)
{
    (void)state;
    struct core_buf inst;
    core_buf_init(&inst);
    core_buf_putc(&inst, '[');
    for (int i = 0; i < 20; i++)
        core_buf_printf(&inst, "%s\"s%d\"", i ? "," : "", i);
    core_buf_putc(&inst, ']');
    struct schema_errors errs;
    assert_int_equal(check("{\"items\":{\"type\":\"integer\"}}", inst.data, &errs), 1);
    assert_int_equal(errs.count, SCHEMA_ERRORS_MAX);
    assert_int_equal(errs.total, 20);
    assert_error(&errs, 15, "/15", "type", "\"s15\" is not of type \"integer\"");
    struct core_buf out;
    core_buf_init(&out);
    schema_errors_format(&errs, &out);
    assert_true(strstr(out.data, "/0: \"s0\" is not of type \"integer\"; /1: ") == out.data);
    assert_true(strstr(out.data, "; ... 4 more") != NULL);
    core_buf_dispose(&out);
    core_buf_dispose(&inst);

    /* Long values are shown truncated. */
    char big[400];
    memset(big, 'x', sizeof big);
    big[0] = '"';
    big[398] = '"';
    big[399] = '\0';
    assert_int_equal(check("{\"type\":\"integer\"}", big, &errs), 1);
    assert_true(strstr(errs.items[0].message, "...") != NULL);
    assert_true(strlen(errs.items[0].message) < 120);
}

static void test_compile_errors(void **state)
{
    (void)state;
    assert_compile_error("{\"type\":\"strnig\"}", "#/type: unknown type \"strnig\"");
    assert_compile_error("{\"properties\":{\"a\":{\"minLength\":-1}}}",
                         "#/properties/a/minLength: must be a non-negative integer");
    assert_compile_error("{\"properties\":{\"a\":5}}",
                         "#/properties/a: a schema must be an object or a boolean");
    assert_compile_error("{\"multipleOf\":0}", "#/multipleOf: must be a number greater than 0");
    assert_compile_error("{\"required\":[1]}", "#/required: must be an array of strings");
    assert_compile_error("{\"allOf\":[]}", "#/allOf: must be a non-empty array of schemas");
    assert_compile_error("{\"items\":[{},{\"$ref\":7}]}", "#/items/1/$ref: must be a string");
    assert_compile_error("5", "#: a schema must be an object or a boolean");
    assert_compile_error("{\"pattern\":\"a\",\"pattern\":\"b\"}",
                         "#/pattern: keyword appears twice in the same schema");

    struct schema *s = NULL;
    assert_int_equal(schema_compile(NULL, NULL, &s, NULL), CORE_E_INVALID);
    assert_int_equal(schema_validate(NULL, NULL, NULL), CORE_E_INVALID);
    schema_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type),           cmocka_unit_test(test_enum_const),
        cmocka_unit_test(test_numbers),        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_formats),        cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_objects),        cmocka_unit_test(test_many_required),
        cmocka_unit_test(test_combinations),   cmocka_unit_test(test_error_cap),
        cmocka_unit_test(test_compile_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
