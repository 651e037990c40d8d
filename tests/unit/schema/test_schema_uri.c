/* URI reference resolution (the RFC 3986 section 5.4 examples) and the URI syntax checks. */
#include "schema/schema_int.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_rfc3986_examples(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"g:h", "g:h"},
        {"g", "http://a/b/c/g"},
        {"./g", "http://a/b/c/g"},
        {"g/", "http://a/b/c/g/"},
        {"/g", "http://a/g"},
        {"//g", "http://g"},
        {"?y", "http://a/b/c/d;p?y"},
        {"g?y", "http://a/b/c/g?y"},
        {"#s", "http://a/b/c/d;p?q#s"},
        {"g#s", "http://a/b/c/g#s"},
        {"g?y#s", "http://a/b/c/g?y#s"},
        {";x", "http://a/b/c/;x"},
        {"g;x", "http://a/b/c/g;x"},
        {"g;x?y#s", "http://a/b/c/g;x?y#s"},
        {"", "http://a/b/c/d;p?q"},
        {".", "http://a/b/c/"},
        {"./", "http://a/b/c/"},
        {"..", "http://a/b/"},
        {"../", "http://a/b/"},
        {"../g", "http://a/b/g"},
        {"../..", "http://a/"},
        {"../../", "http://a/"},
        {"../../g", "http://a/g"},
        {"../../../g", "http://a/g"},
        {"../../../../g", "http://a/g"},
        {"/./g", "http://a/g"},
        {"/../g", "http://a/g"},
        {"g.", "http://a/b/c/g."},
        {".g", "http://a/b/c/.g"},
        {"g..", "http://a/b/c/g.."},
        {"..g", "http://a/b/c/..g"},
        {"./../g", "http://a/b/g"},
        {"./g/.", "http://a/b/c/g/"},
        {"g/./h", "http://a/b/c/g/h"},
        {"g/../h", "http://a/b/c/h"},
        {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
        {"g;x=1/../y", "http://a/b/c/y"},
        {"g?y/./x", "http://a/b/c/g?y/./x"},
        {"g?y/../x", "http://a/b/c/g?y/../x"},
        {"g#s/./x", "http://a/b/c/g#s/./x"},
        {"g#s/../x", "http://a/b/c/g#s/../x"},
        {"http:g", "http:g"},
    };
    struct core_arena a;
    core_arena_init(&a);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *got = sch__uri_resolve(&a, "http://a/b/c/d;p?q", cases[i][0]);
        if (strcmp(got, cases[i][1]) != 0)
            fail_msg("resolve(%s) = %s, expected %s", cases[i][0], got, cases[i][1]);
    }
    /* Without a base, references stay relative; URNs keep their path. */
    assert_string_equal(sch__uri_resolve(&a, "", "#/definitions/a"), "#/definitions/a");
    assert_string_equal(sch__uri_resolve(&a, "", "a/./b/../c.json"), "a/c.json");
    assert_string_equal(sch__uri_resolve(&a, "urn:x:y", "#foo"), "urn:x:y#foo");
    core_arena_dispose(&a);
}

static void test_uri_check(void **state)
{
    (void)state;
    static const char *const uris[] = {"http://foo.bar/?baz=qux#quux", "mailto:a@b.c",
                                       "urn:oasis:names:specification:docbook:dtd:xml:4.1.2",
                                       "ldap://[2001:db8::7]/c=GB?objectClass?one",
                                       "http://-.~_!$&'()*+,;=:%40:80%2f::::::@example.com"};
    static const char *const not_uris[] = {"//foo.bar/",
                                           "/abc",
                                           "abc",
                                           "http:// shouldfail.com",
                                           ":// should fail",
                                           "http://a/%zz",
                                           "http://2001:db8::7/"};
    for (size_t i = 0; i < sizeof uris / sizeof *uris; i++)
        if (!sch__uri_check(uris[i], strlen(uris[i]), false, false))
            fail_msg("%s should be a URI", uris[i]);
    for (size_t i = 0; i < sizeof not_uris / sizeof *not_uris; i++)
        if (sch__uri_check(not_uris[i], strlen(not_uris[i]), false, false))
            fail_msg("%s should not be a URI", not_uris[i]);
    assert_true(sch__uri_check("//foo.bar/?x#y", 14, true, false));
    assert_true(sch__uri_check("../a:b", 6, true, false));
    assert_false(sch__uri_check("a:b:\\c", 6, true, false));
    assert_false(sch__uri_check("x\0y", 3, true, false));
    assert_true(sch__uri_check("/\xc3\xa2", 3, true, true));
    assert_false(sch__uri_check("/\xc3\xa2", 3, true, false));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3986_examples),
        cmocka_unit_test(test_uri_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
