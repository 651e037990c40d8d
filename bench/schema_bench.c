/*
 * schema_bench: nanoseconds per JSON Schema validation of a typical event envelope (~10
 * properties: strings with maxLength, an enum, a number range, a pattern, and a nested
 * "properties" object of 10 typed fields), valid and invalid, with an error collector and in
 * yes/no mode; plus heap calls per valid validation and, for scale, the cJSON parse of the
 * same event. Prints the median of several runs and, in brackets, the fastest run (the
 * better estimate on a shared machine).
 *
 * Not built by CMake. From the repository root, against the release build of the library:
 *
 *   cmake -S . -B /tmp/b -DRECSTREAM_TESTS=OFF && cmake --build /tmp/b -j
 *   gcc -std=c11 -O2 -g -D_GNU_SOURCE -Wall -Wextra -Isrc -o /tmp/schema_bench \
 *       bench/schema_bench.c /tmp/b/librecstream_lib.a \
 *       $(pkg-config --libs libcjson libpcre2-8 libxxhash) -lpthread -lm
 *   /tmp/schema_bench [iterations per run] [runs]
 */
#include "schema/schema.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Heap calls are counted by wrapping glibc's allocator. */
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t c, size_t n);
void *__libc_realloc(void *p, size_t n);
static atomic_long heap_calls;

void *malloc(size_t n)
{
    atomic_fetch_add_explicit(&heap_calls, 1, memory_order_relaxed);
    return __libc_malloc(n);
}

void *calloc(size_t c, size_t n)
{
    atomic_fetch_add_explicit(&heap_calls, 1, memory_order_relaxed);
    return __libc_calloc(c, n);
}

void *realloc(void *p, size_t n)
{
    atomic_fetch_add_explicit(&heap_calls, 1, memory_order_relaxed);
    return __libc_realloc(p, n);
}

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

/* Three errors: a type, a pattern and a nested range. */
static const char *event_invalid =
    "{\"eventId\":\"NOT-HEX!\",\"userId\":\"user-123\",\"eventType\":\"purchase\","
    "\"timestamp\":1700000000000,\"value\":\"abc\","
    "\"properties\":{\"price\":29.95,\"currency\":\"EUR\",\"quantity\":0}}";

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

enum mode { COLLECT, QUICK, PARSE };

struct result {
    double median, min;
};

/* Median and minimum over runs of the mean ns per call within a run. */
static struct result measure(const struct schema *s, const cJSON *inst, const char *text,
                             enum mode m, int iters, int runs, int expect)
{
    double *ns = calloc((size_t)runs, sizeof *ns);
    struct schema_errors errs;
    for (int r = 0; r < runs; r++) {
        int64_t t0 = core_mono_ns();
        for (int i = 0; i < iters; i++) {
            if (m == PARSE) {
                cJSON_Delete(cJSON_Parse(text));
                continue;
            }
            int rc = schema_validate(s, inst, m == COLLECT ? &errs : NULL);
            if (rc != expect) {
                fprintf(stderr, "unexpected verdict %d\n", rc);
                exit(1);
            }
        }
        ns[r] = (double)(core_mono_ns() - t0) / iters;
    }
    qsort(ns, (size_t)runs, sizeof *ns, cmp_double);
    struct result r = {ns[runs / 2], ns[0]};
    free(ns);
    return r;
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 200000;
    int runs = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 7;
    if (iters <= 0 || runs <= 0) {
        fprintf(stderr, "usage: schema_bench [iterations per run] [runs]\n");
        return 2;
    }
    cJSON *doc = cJSON_Parse(event_schema);
    struct schema *s = NULL;
    struct core_buf err;
    core_buf_init(&err);
    if (schema_compile(doc, NULL, &s, &err) != 0) {
        fprintf(stderr, "schema: %s\n", err.data);
        return 1;
    }
    cJSON_Delete(doc);
    core_buf_dispose(&err);
    cJSON *ok = cJSON_Parse(event_valid), *bad = cJSON_Parse(event_invalid);

    struct schema_errors errs;
    schema_validate(s, ok, &errs); /* warm-up: the thread's pcre2 match block */
    long before = atomic_load(&heap_calls);
    for (int i = 0; i < 10000; i++)
        schema_validate(s, ok, &errs);
    double allocs = (double)(atomic_load(&heap_calls) - before) / 10000;

    printf("schema_bench: %d runs x %d iterations, ns per call: median [fastest run]\n", runs,
           iters);
    static const struct {
        const char *what;
        enum mode mode;
        int expect;
        bool valid;
    } rows[] = {
        {"valid event,   error collector   ", COLLECT, 0, true},
        {"valid event,   yes/no (errs NULL)", QUICK, 0, true},
        {"invalid event, error collector   ", COLLECT, 1, false},
        {"invalid event, yes/no (errs NULL)", QUICK, 1, false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        struct result r =
            measure(s, rows[i].valid ? ok : bad, NULL, rows[i].mode, iters, runs, rows[i].expect);
        printf("  %s %8.1f [%7.1f]\n", rows[i].what, r.median, r.min);
    }
    struct result p = measure(NULL, NULL, event_valid, PARSE, iters / 4 + 1, runs, 0);
    printf("  for scale: cJSON_Parse of the valid event %8.1f [%7.1f]\n", p.median, p.min);
    printf("  heap calls per valid validation: %.3f\n", allocs);
    cJSON_Delete(ok);
    cJSON_Delete(bad);
    schema_free(s);
    return 0;
}
