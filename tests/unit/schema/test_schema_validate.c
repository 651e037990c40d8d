/*
 * The validation walk as the collector uses it: a typical event envelope validates without
 * touching the heap, and many threads can validate against one compiled schema at once.
 *
 * Heap calls are counted with the sanitizer's malloc hooks in ASan builds and by wrapping
 * glibc's allocator otherwise.
 */
#include "schema/schema.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define USE_SANITIZER_HOOKS 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define USE_SANITIZER_HOOKS 1
#endif

static atomic_long heap_calls;
static _Thread_local bool counting;

#ifdef USE_SANITIZER_HOOKS
#include <sanitizer/allocator_interface.h>

static void on_malloc(const volatile void *p, size_t n)
{
    (void)p;
    (void)n;
    if (counting)
        atomic_fetch_add(&heap_calls, 1);
}

static void on_free(const volatile void *p)
{
    (void)p;
}

static void install_counter(void)
{
    __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}
#else
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t c, size_t n);
void *__libc_realloc(void *p, size_t n);

void *malloc(size_t n)
{
    if (counting)
        atomic_fetch_add(&heap_calls, 1);
    return __libc_malloc(n);
}

void *calloc(size_t c, size_t n)
{
    if (counting)
        atomic_fetch_add(&heap_calls, 1);
    return __libc_calloc(c, n);
}

void *realloc(void *p, size_t n)
{
    if (counting)
        atomic_fetch_add(&heap_calls, 1);
    return __libc_realloc(p, n);
}

static void install_counter(void)
{
}
#endif

/* The envelope the benchmark uses too: ~10 properties, a nested object of 10 fields. */
static const char *event_schema =
    "{\"type\":\"object\",\"required\":[\"eventId\",\"userId\",\"eventType\",\"timestamp\"],"
    "\"additionalProperties\":false,\"properties\":{"
    "\"eventId\":{\"type\":\"string\",\"maxLength\":64,\"pattern\":\"^[0-9a-f-]{8,64}$\"},"
    "\"userId\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":128},"
    "\"sessionId\":{\"type\":\"string\",\"maxLength\":128},"
    "\"eventType\":{\"enum\":[\"view\",\"click\",\"add_to_cart\",\"purchase\",\"search\"]},"
    "\"itemId\":{\"type\":\"string\",\"maxLength\":128},"
    "\"timestamp\":{\"type\":\"integer\",\"minimum\":0},"
    "\"value\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1000000},"
    "\"recId\":{\"type\":[\"string\",\"null\"],\"maxLength\":64},"
    "\"position\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":1000},"
    "\"properties\":{\"type\":\"object\",\"properties\":{"
    "\"price\":{\"type\":\"number\",\"minimum\":0},\"currency\":{\"type\":\"string\","
    "\"maxLength\":3},\"quantity\":{\"type\":\"integer\",\"minimum\":1},"
    "\"category\":{\"type\":\"string\"},\"brand\":{\"type\":\"string\"},"
    "\"color\":{\"type\":\"string\"},\"size\":{\"type\":\"string\"},"
    "\"inStock\":{\"type\":\"boolean\"},\"rating\":{\"type\":\"number\",\"minimum\":0,"
    "\"maximum\":5},\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}}}}";

static const char *event_valid =
    "{\"eventId\":\"0190a5b2-7c1e-7def-8a12-3456789abcde\",\"userId\":\"user-123\","
    "\"sessionId\":\"s-42\",\"eventType\":\"purchase\",\"itemId\":\"product456\","
    "\"timestamp\":1700000000000,\"value\":59.9,\"recId\":null,\"position\":3,"
    "\"properties\":{\"price\":29.95,\"currency\":\"EUR\",\"quantity\":2,\"category\":"
    "\"shoes\",\"brand\":\"acme\",\"color\":\"red\",\"size\":\"42\",\"inStock\":true,"
    "\"rating\":4.5,\"tags\":[\"sale\",\"new\"]}}";

static const char *event_invalid =
    "{\"eventId\":\"NOT-HEX!\",\"userId\":\"\",\"eventType\":\"teleport\","
    "\"timestamp\":-1,\"value\":\"abc\",\"extra\":1,"
    "\"properties\":{\"price\":\"abc\",\"currency\":\"EURO\",\"quantity\":0}}";

static struct schema *compile(const char *json)
{
    cJSON *doc = cJSON_Parse(json);
    assert_non_null(doc);
    struct schema *s = NULL;
    assert_int_equal(schema_compile(doc, NULL, &s, NULL), 0);
    cJSON_Delete(doc);
    return s;
}

static void test_typical_event(void **state)
{
    (void)state;
    struct schema *s = compile(event_schema);
    cJSON *ok = cJSON_Parse(event_valid), *bad = cJSON_Parse(event_invalid);
    struct schema_errors errs;
    assert_int_equal(schema_validate(s, ok, &errs), 0);
    assert_int_equal(errs.total, 0);
    assert_int_equal(schema_validate(s, bad, &errs), 1);
    struct core_buf out;
    core_buf_init(&out);
    schema_errors_format(&errs, &out);
    assert_string_equal(
        out.data, "/eventId: \"NOT-HEX!\" does not match the pattern \"^[0-9a-f-]{8,64}$\"; "
                  "/userId: \"\" is shorter than 1 characters; "
                  "/eventType: \"teleport\" is not one of "
                  "[\"view\",\"click\",\"add_to_cart\",\"purchase\",\"search\"]; "
                  "/timestamp: -1 is less than the minimum of 0; "
                  "/value: \"abc\" is not of type \"number\"; "
                  "/extra: property \"extra\" is not allowed (additionalProperties is false); "
                  "/properties/price: \"abc\" is not of type \"number\"; "
                  "/properties/currency: \"EURO\" is longer than 3 characters; "
                  "/properties/quantity: 0 is less than the minimum of 1");
    core_buf_dispose(&out);
    cJSON_Delete(ok);
    cJSON_Delete(bad);
    schema_free(s);
}

static void test_valid_event_does_not_allocate(void **state)
{
    (void)state;
    install_counter();
    counting = true; /* the counter itself works: parsing allocates */
    cJSON_Delete(cJSON_Parse("[1]"));
    counting = false;
    assert_true(atomic_load(&heap_calls) > 0);
    struct schema *s = compile(event_schema);
    cJSON *ok = cJSON_Parse(event_valid);
    struct schema_errors errs;
    assert_int_equal(schema_validate(s, ok, &errs), 0); /* first match: per-thread scratch */
    atomic_store(&heap_calls, 0);
    counting = true;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(schema_validate(s, ok, &errs), 0);
        assert_int_equal(schema_validate(s, ok, NULL), 0);
    }
    counting = false;
    assert_int_equal(atomic_load(&heap_calls), 0);
    /* Reporting errors writes into the caller's collector: no heap either. */
    cJSON *bad = cJSON_Parse(event_invalid);
    counting = true;
    for (int i = 0; i < 100; i++)
        assert_int_equal(schema_validate(s, bad, &errs), 1);
    counting = false;
    assert_int_equal(atomic_load(&heap_calls), 0);
    cJSON_Delete(bad);
    cJSON_Delete(ok);
    schema_free(s);
}

struct worker {
    const struct schema *s;
    const cJSON *ok, *bad;
    int failures;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    struct schema_errors errs;
    for (int i = 0; i < 2000; i++) {
        if (schema_validate(w->s, w->ok, &errs) != 0)
            w->failures++;
        if (schema_validate(w->s, w->bad, &errs) != 1 || errs.total != 9)
            w->failures++;
    }
    return NULL;
}

static void test_threads_share_a_schema(void **state)
{
    (void)state;
    struct schema *s = compile(event_schema);
    cJSON *ok = cJSON_Parse(event_valid), *bad = cJSON_Parse(event_invalid);
    struct worker w[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){s, ok, bad, 0};
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    cJSON_Delete(ok);
    cJSON_Delete(bad);
    schema_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_typical_event),
        cmocka_unit_test(test_valid_event_does_not_allocate),
        cmocka_unit_test(test_threads_share_a_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
