/*
 * libFuzzer target for the schema validator. The input's first line is a schema, the rest
 * an instance; both are parsed with cJSON, the schema compiled and the instance validated
 * with and without an error collector. The two verdicts must agree, an invalid verdict must
 * come with errors, and nothing may crash, leak or run away (recursion and work are bounded
 * by SCHEMA_MAX_DEPTH and SCHEMA_MAX_STEPS). A string instance is also run through every
 * format check and resolved as a URI reference against a fixed base.
 */
#include "schema/schema_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_schema: check failed: %s (line %d)\n", #cond, __LINE__);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void fuzz_validate(const struct schema *s, const cJSON *inst)
{
    struct schema_errors errs;
    int rc = schema_validate(s, inst, &errs);
    int quick = schema_validate(s, inst, NULL);
    CHECK(rc == 0 || rc == 1);
    CHECK(rc == quick);
    CHECK((rc == 0) == (errs.total == 0));
    CHECK(errs.count <= SCHEMA_ERRORS_MAX && errs.count <= errs.total);
    struct core_buf out;
    core_buf_init(&out);
    schema_errors_format(&errs, &out);
    for (size_t i = 0; i < errs.count; i++)
        CHECK(errs.items[i].keyword[0] != '\0' && errs.items[i].schema_path[0] == '#');
    core_buf_dispose(&out);
}

static void fuzz_strings(const cJSON *inst)
{
    if (!cJSON_IsString(inst))
        return;
    const char *str = inst->valuestring;
    for (int f = SCH_FMT_NONE; f <= SCH_FMT_REGEX; f++)
        (void)sch__format_check((enum sch_format)f, str, strlen(str));
    struct core_arena a;
    core_arena_init(&a);
    char *r = sch__uri_resolve(&a, "http://example.com/a/b/c?q#f", str);
    CHECK(r != NULL);
    (void)sch__uri_resolve(&a, str, "../d/./e#g");
    core_arena_dispose(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nl = memchr(text, '\n', size);
    size_t schema_len = nl ? (size_t)(nl - text) : size;
    cJSON *doc = cJSON_ParseWithLength(text, schema_len);
    cJSON *inst = nl ? cJSON_ParseWithLength(nl + 1, size - schema_len - 1) : NULL;
    if (doc) {
        struct schema *s = NULL;
        struct core_buf err;
        core_buf_init(&err);
        int rc =
            schema_compile(doc, size & 1 ? "http://example.com/dir/root.json" : NULL, &s, &err);
        CHECK(rc == 0 || rc == CORE_E_INVALID);
        CHECK((rc == 0) == (s != NULL));
        CHECK(rc == 0 || (err.data && err.data[0] == '#'));
        cJSON_Delete(doc); /* the schema keeps nothing of it */
        if (s && inst)
            fuzz_validate(s, inst);
        schema_free(s);
        core_buf_dispose(&err);
    }
    if (inst)
        fuzz_strings(inst);
    cJSON_Delete(inst);
    return 0;
}
