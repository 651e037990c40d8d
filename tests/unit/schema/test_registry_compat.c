/*
 * The ADDITION compatibility proof: each loosening the registry accepts, and each
 * narrowing (or unprovable change) it refuses, with the reason naming the path. Cases go
 * through schema_registry_put as the API uses it: 1-0-0 is the old schema, 1-0-1 the new.
 */
#include "schema/registry.h"

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Registers old as 1-0-0 and new as 1-0-1 in a fresh registry; returns put's result for the
 * addition and its message in msg. */
static int addition(const char *old_doc, const char *new_doc, struct core_buf *msg)
{
    char dir[] = "/tmp/recstream-regc-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct schema_registry *r;
    assert_int_equal(schema_registry_open(dir, &r), 0);
    core_buf_reset(msg);
    assert_int_equal(schema_registry_put(r, "ev", "1-0-0", old_doc, strlen(old_doc), msg), 0);
    int rc = schema_registry_put(r, "ev", "1-0-1", new_doc, strlen(new_doc), msg);
    if (rc == 0) {
        struct schema_version v = {1, 0, 1};
        assert_non_null(schema_registry_get(r, "ev", 2, &v));
    }
    schema_registry_free(r);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

static void accepts(const char *old_doc, const char *new_doc)
{
    struct core_buf msg;
    core_buf_init(&msg);
    int rc = addition(old_doc, new_doc, &msg);
    if (rc != 0)
        fail_msg("refused %s -> %s: %d %s", old_doc, new_doc, rc, msg.data ? msg.data : "");
    core_buf_dispose(&msg);
}

/* Refused as incompatible, with want (a path and reason) among the lines. */
static void refuses(const char *old_doc, const char *new_doc, const char *want)
{
    struct core_buf msg;
    core_buf_init(&msg);
    int rc = addition(old_doc, new_doc, &msg);
    if (rc != SCHEMA_REG_INCOMPATIBLE || !strstr(msg.data ? msg.data : "", want))
        fail_msg("%s -> %s: rc %d, msg \"%s\", want \"%s\"", old_doc, new_doc, rc,
                 msg.data ? msg.data : "", want);
    core_buf_dispose(&msg);
}

static void test_loosenings(void **state)
{
    (void)state;
    const char *base = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}},"
                       "\"required\":[\"a\"]}";
    /* adding an optional property: unconstrained, or where unknown ones were refused */
    accepts(base, "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"},"
                  "\"b\":{\"description\":\"new\"}},\"required\":[\"a\"]}");
    /* removing a property from required */
    accepts(base, "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}");
    /* widening type, "number" covers "integer" */
    accepts("{\"properties\":{\"p\":{\"type\":\"integer\"}}}",
            "{\"properties\":{\"p\":{\"type\":[\"number\",\"null\"]}}}");
    accepts("{\"type\":\"string\"}", "{}");
    /* adding enum values, in any order, deep-equal */
    accepts("{\"enum\":[\"a\",{\"x\":1,\"y\":2}]}", "{\"enum\":[{\"y\":2,\"x\":1.0},\"b\",\"a\"]}");
    accepts("{\"const\":\"a\"}", "{\"enum\":[\"a\",\"b\"]}");
    /* loosening bounds, or removing them */
    accepts("{\"minimum\":1,\"maximum\":10}", "{\"minimum\":0,\"maximum\":20}");
    accepts("{\"exclusiveMinimum\":1,\"maximum\":10}", "{\"minimum\":1}");
    accepts("{\"type\":\"string\",\"minLength\":2,\"maxLength\":5}",
            "{\"type\":\"string\",\"minLength\":1,\"maxLength\":6}");
    accepts("{\"minItems\":2,\"maxItems\":3,\"minProperties\":1,\"maxProperties\":4}",
            "{\"minItems\":0}");
    /* removing pattern, format, const, not, multipleOf, uniqueItems */
    accepts("{\"type\":\"string\",\"pattern\":\"^a\",\"format\":\"email\"}",
            "{\"type\":\"string\"}");
    accepts("{\"const\":1,\"not\":{\"type\":\"string\"},\"multipleOf\":2,\"uniqueItems\":true}",
            "{}");
    accepts("{\"multipleOf\":0.5}", "{\"multipleOf\":0.25}");
    /* additionalProperties false -> schema / absent; schema -> wider schema */
    accepts("{\"properties\":{\"a\":{}},\"additionalProperties\":false}",
            "{\"properties\":{\"a\":{}},\"additionalProperties\":{\"type\":\"string\"}}");
    accepts("{\"additionalProperties\":{\"type\":\"integer\"}}",
            "{\"additionalProperties\":{\"type\":\"number\"}}");
    /* a new optional property under additionalProperties false */
    accepts("{\"properties\":{\"a\":{}},\"additionalProperties\":false}",
            "{\"properties\":{\"a\":{},\"b\":{\"type\":\"string\"}},"
            "\"additionalProperties\":false}");
    /* keywords of another type do not matter */
    accepts("{\"type\":\"string\"}", "{\"type\":\"string\",\"minimum\":3}");
    /* items, tuples and additionalItems */
    accepts("{\"items\":{\"type\":\"integer\"}}", "{\"items\":{\"type\":\"number\"}}");
    accepts("{\"items\":[{\"type\":\"string\"}],\"additionalItems\":false}",
            "{\"items\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}");
    /* identical subschemas, whatever they contain */
    accepts("{\"properties\":{\"a\":{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]}}}",
            "{\"properties\":{\"a\":{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]},"
            "\"b\":{}}}");
    /* anyOf gains a branch; allOf loses an entry */
    accepts("{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]}",
            "{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"},{\"type\":\"integer\"}]}");
    accepts("{\"allOf\":[{\"required\":[\"a\"]},{\"required\":[\"b\"]}]}",
            "{\"allOf\":[{\"required\":[\"b\"]}]}");
    /* if/then/else with the same condition and wider branches */
    accepts("{\"if\":{\"required\":[\"a\"]},\"then\":{\"required\":[\"b\"]}}",
            "{\"if\":{\"required\":[\"a\"]},\"then\":{}}");
    /* not: rejecting less */
    accepts("{\"not\":{\"type\":[\"string\",\"null\"]}}", "{\"not\":{\"type\":\"null\"}}");
    /* patternProperties with the same patterns, widened */
    accepts("{\"patternProperties\":{\"^x_\":{\"type\":\"integer\"}},"
            "\"additionalProperties\":false}",
            "{\"patternProperties\":{\"^x_\":{\"type\":\"number\"}},"
            "\"properties\":{\"x_a\":{\"type\":\"integer\"}},\"additionalProperties\":false}");
    /* unknown formats and annotations are ignored by the validator, so here too */
    accepts("{\"type\":\"string\"}",
            "{\"type\":\"string\",\"format\":\"color\",\"description\":\"d\",\"title\":\"t\"}");
}

static void test_narrowings(void **state)
{
    (void)state;
    const char *base = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"},"
                       "\"price\":{\"type\":[\"number\",\"string\"]}},\"required\":[\"a\"]}";
    refuses(base,
            "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"},"
            "\"price\":{\"type\":[\"number\",\"string\"]}},\"required\":[\"a\",\"userId\"]}",
            "/properties/userId: property \"userId\" is now required");
    refuses(base,
            "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"},"
            "\"price\":{\"type\":[\"number\"]}},\"required\":[\"a\"]}",
            "/properties/price: type narrowed from [\"number\",\"string\"] to [\"number\"]");
    refuses("{\"properties\":{\"kind\":{\"enum\":[\"view\",\"click\",\"buy\"]}}}",
            "{\"properties\":{\"kind\":{\"enum\":[\"view\",\"buy\"]}}}",
            "/properties/kind: enum values removed: \"click\"");
    refuses("{\"properties\":{\"cur\":{\"type\":\"string\",\"maxLength\":5}}}",
            "{\"properties\":{\"cur\":{\"type\":\"string\",\"maxLength\":3}}}",
            "/properties/cur: maxLength lowered from 5 to 3");
    refuses("{\"properties\":{\"cur\":{\"type\":\"string\"}}}",
            "{\"properties\":{\"cur\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{3}$\"}}}",
            "/properties/cur: pattern \"^[A-Z]{3}$\" added");
    refuses("{\"properties\":{\"a\":{},\"b\":{}},\"additionalProperties\":false}",
            "{\"properties\":{\"a\":{}},\"additionalProperties\":false}",
            "/properties/b: property removed while additionalProperties is false");
    refuses("{\"type\":\"integer\"}", "{\"type\":\"integer\",\"minimum\":0}",
            "(root): minimum 0 added");
    refuses("{\"minimum\":0}", "{\"exclusiveMinimum\":0}", "(root): exclusiveMinimum 0 added");
    refuses("{\"maximum\":10}", "{\"maximum\":9.5}", "(root): maximum lowered from 10 to 9.5");
    refuses("{\"type\":\"string\",\"format\":\"date\"}",
            "{\"type\":\"string\",\"format\":\"date-time\"}",
            "(root): format changed from \"date\" to \"date-time\"");
    /* a typed new property where any value was allowed: old events may hold a string */
    refuses("{\"properties\":{\"a\":{}}}",
            "{\"properties\":{\"a\":{},\"b\":{\"type\":\"integer\"}}}",
            "/properties/b: new property constrains a value the old schema allowed "
            "(additionalProperties was not false)");
    refuses("{}", "{\"additionalProperties\":false}",
            "/additionalProperties: additional properties are no longer allowed");
    refuses("{\"items\":{}}", "{\"items\":{\"type\":\"string\"}}",
            "/items: type [\"string\"] added (any type was allowed)");
    refuses("{\"const\":1}", "{\"const\":2}", "(root): const changed from 1 to 2");
    refuses("{\"multipleOf\":0.25}", "{\"multipleOf\":0.5}",
            "(root): multipleOf changed from 0.25 to 0.5");
    refuses("{\"type\":\"array\"}", "{\"type\":\"array\",\"uniqueItems\":true}",
            "(root): uniqueItems added");
    refuses("{}", "{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]}",
            "/oneOf: cannot prove compatible: oneOf added");
    refuses("{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]}",
            "{\"anyOf\":[{\"type\":\"string\"}]}",
            "/anyOf/1: cannot prove compatible: old anyOf branch 1");
    refuses("{\"if\":{\"required\":[\"a\"]},\"then\":{\"required\":[\"b\"]}}",
            "{\"if\":{\"required\":[\"c\"]},\"then\":{\"required\":[\"b\"]}}",
            "/if: cannot prove compatible: if changed");
    refuses("{\"properties\":{\"a\":{\"type\":\"string\"}}}",
            "{\"properties\":{\"a\":{\"type\":\"string\",\"not\":{\"const\":\"\"}}}}",
            "/properties/a/not: cannot prove compatible: not added");
    refuses("{\"type\":\"array\"}", "{\"type\":\"array\",\"contains\":{}}",
            "(root): contains added");
    refuses("{\"dependencies\":{\"a\":[\"b\"]}}", "{\"dependencies\":{\"a\":[\"b\",\"c\"]}}",
            "/dependencies/a: now requires property \"c\"");
    /* property names are escaped in paths (~0 for ~, ~1 for /) */
    refuses("{\"properties\":{\"a/b~c\":{\"type\":\"string\"}}}",
            "{\"properties\":{\"a/b~c\":{\"type\":\"string\",\"minLength\":1}}}",
            "/properties/a~1b~0c: minLength 1 added");
    refuses("{\"properties\":{\"a\":{}}}", "{\"properties\":{\"a\":false}}",
            "/properties/a: no value is valid any more");
    /* a new patternProperties pattern constrains properties that were free */
    refuses("{}", "{\"patternProperties\":{\"^x\":{\"type\":\"string\"}}}",
            "/patternProperties/^x: new pattern property constrains properties");
    /* a property newly listed while an old pattern covered it must follow from the pattern */
    refuses("{\"patternProperties\":{\"^x\":{\"type\":\"number\"}}}",
            "{\"patternProperties\":{\"^x\":{\"type\":\"number\"}},"
            "\"properties\":{\"xa\":{\"type\":\"integer\"}}}",
            "/properties/xa: type narrowed from [\"number\"] to [\"integer\"]");
}

/* Every reason is listed, one per line. */
static void test_every_reason(void **state)
{
    (void)state;
    struct core_buf msg;
    core_buf_init(&msg);
    int rc = addition("{\"properties\":{\"a\":{\"type\":[\"string\",\"null\"]},"
                      "\"b\":{\"type\":\"string\",\"maxLength\":9}}}",
                      "{\"properties\":{\"a\":{\"type\":\"string\"},"
                      "\"b\":{\"type\":\"string\",\"maxLength\":8,\"pattern\":\"x\"}},"
                      "\"required\":[\"c\"]}",
                      &msg);
    assert_int_equal(rc, SCHEMA_REG_INCOMPATIBLE);
    assert_string_equal(msg.data, "/properties/c: property \"c\" is now required\n"
                                  "/properties/a: type narrowed from [\"string\",\"null\"] to "
                                  "[\"string\"]\n"
                                  "/properties/b: maxLength lowered from 9 to 8\n"
                                  "/properties/b: pattern \"x\" added");
    core_buf_dispose(&msg);
}

/* $ref is followed; recursive schemas compare without looping. */
static void test_refs(void **state)
{
    (void)state;
    accepts("{\"definitions\":{\"p\":{\"type\":\"integer\"}},"
            "\"properties\":{\"a\":{\"$ref\":\"#/definitions/p\"}}}",
            "{\"definitions\":{\"p\":{\"type\":\"number\"}},"
            "\"properties\":{\"a\":{\"$ref\":\"#/definitions/p\"}}}");
    /* inlining a definition is fine both ways */
    accepts("{\"definitions\":{\"p\":{\"type\":\"integer\"}},"
            "\"properties\":{\"a\":{\"$ref\":\"#/definitions/p\"}}}",
            "{\"properties\":{\"a\":{\"type\":\"integer\"}}}");
    /* same $ref text, narrowed target */
    refuses("{\"definitions\":{\"p\":{\"type\":\"number\"}},"
            "\"properties\":{\"a\":{\"$ref\":\"#/definitions/p\"}}}",
            "{\"definitions\":{\"p\":{\"type\":\"integer\"}},"
            "\"properties\":{\"a\":{\"$ref\":\"#/definitions/p\"}}}",
            "/properties/a: type narrowed from [\"number\"] to [\"integer\"]");
    /* a tree: node = {value, children: [node]} */
    const char *tree = "{\"definitions\":{\"node\":{\"type\":\"object\",\"properties\":{"
                       "\"value\":{\"type\":\"integer\"},\"children\":{\"type\":\"array\","
                       "\"items\":{\"$ref\":\"#/definitions/node\"}}}}},"
                       "\"$ref\":\"#/definitions/node\"}";
    const char *wider = "{\"definitions\":{\"node\":{\"type\":\"object\",\"properties\":{"
                        "\"value\":{\"type\":[\"integer\",\"string\"]},\"children\":{\"type\":"
                        "\"array\",\"items\":{\"$ref\":\"#/definitions/node\"}}}}},"
                        "\"$ref\":\"#/definitions/node\"}";
    accepts(tree, wider);
    refuses(wider, tree, "/properties/value: type narrowed");
    /* a loop that consumes no input makes validation give up on every instance */
    refuses("{}", "{\"if\":{\"$ref\":\"#\"}}",
            "(root): cannot prove compatible: a $ref cycle that does not descend into the "
            "instance makes validation give up");
    refuses("{\"type\":\"boolean\"}",
            "{\"definitions\":{\"d\":{\"anyOf\":[{\"$ref\":\"#\"},{\"type\":\"array\"}]}},"
            "\"$ref\":\"#/definitions/d\"}",
            "cannot prove compatible: a $ref cycle");
    /* a nested $id moves the base URI: refs below it are not followed */
    refuses("{\"properties\":{\"a\":{\"$id\":\"http://x.test/a.json\",\"definitions\":{\"p\":{}},"
            "\"properties\":{\"b\":{\"$ref\":\"#/definitions/p\"}}}}}",
            "{\"properties\":{\"a\":{\"$id\":\"http://x.test/a.json\",\"definitions\":{\"p\":{}},"
            "\"properties\":{\"b\":{\"$ref\":\"#/definitions/p\"}}}},\"required\":[]}",
            "/properties/a/properties/b: cannot prove compatible: $ref \"#/definitions/p\" is not "
            "followed");
    /* location-independent ids are not followed: refused as unprovable */
    refuses("{\"definitions\":{\"p\":{\"$id\":\"#p\",\"type\":\"integer\"}},"
            "\"properties\":{\"a\":{\"$ref\":\"#p\"}}}",
            "{\"definitions\":{\"p\":{\"$id\":\"#p\",\"type\":\"number\"}},"
            "\"properties\":{\"a\":{\"$ref\":\"#p\"}}}",
            "/properties/a: cannot prove compatible: $ref \"#p\" is not followed");
}

/* Deeply nested or exponential comparisons end with "cannot prove", not a hang. */
static void test_limits(void **state)
{
    (void)state;
    struct core_buf doc;
    core_buf_init(&doc);
    for (int i = 0; i < 300; i++)
        core_buf_puts(&doc, "{\"items\":");
    core_buf_puts(&doc, "{\"type\":\"integer\"}");
    for (int i = 0; i < 300; i++)
        core_buf_puts(&doc, "}");
    char *old_doc = core_xstrdup(doc.data);
    char *p = strstr(doc.data, "\"integer\"");
    memcpy(p, "\"number\" ", 9);
    struct core_buf msg;
    core_buf_init(&msg);
    assert_int_equal(addition(old_doc, doc.data, &msg), SCHEMA_REG_INCOMPATIBLE);
    assert_non_null(strstr(msg.data, "too complex"));
    core_buf_dispose(&msg);
    core_buf_dispose(&doc);
    free(old_doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loosenings),   cmocka_unit_test(test_narrowings),
        cmocka_unit_test(test_every_reason), cmocka_unit_test(test_refs),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
