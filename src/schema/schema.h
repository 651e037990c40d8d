/*
 * schema: a JSON Schema draft-07 validator. A schema document is compiled once into an
 * immutable tree (property tables, required-name sets, JIT-compiled patterns, resolved
 * $refs); validating an instance is then a straight walk over that tree that does not touch
 * the heap when the instance is valid.
 *
 * Supported: every draft-07 validation keyword, boolean schemas, $ref (JSON pointers, $id
 * base URIs, location-independent "#name" ids) and the formats listed in docs/SCHEMA.md.
 * Remote references are never fetched: a $ref that leaves the document fails to compile.
 */
#ifndef RECSTREAM_SCHEMA_H
#define RECSTREAM_SCHEMA_H

#include "core/core.h"

#include <cjson/cJSON.h>

/* Errors kept by a struct schema_errors; further errors are only counted. */
#define SCHEMA_ERRORS_MAX 16
/* Validation gives up (error keyword "limit") past this many nested schema evaluations
 * (recursive $ref over a deep instance, or a $ref loop that consumes no input) ... */
#define SCHEMA_MAX_DEPTH 512
/* ... or past this many schema evaluations in one call (exponential anyOf/$ref nests). */
#define SCHEMA_MAX_STEPS (1u << 22)
/* Compiling refuses schema documents nested deeper than this. */
#define SCHEMA_MAX_NESTING 512

struct schema;

/*
 * One validation error. instance_path is a JSON pointer into the instance ("" = the whole
 * instance, "/items/0/price"), schema_path the failing keyword's location in the schema
 * document as a URI fragment ("#/properties/price/type"), keyword the draft-07 keyword
 * ("type", "required", ... "false" for a false schema, "limit" when validation gave up),
 * message a sentence naming the value (truncated) and the expectation:
 *   "abc" is not of type "number"
 * Long paths and messages are truncated (ending in "...").
 */
struct schema_error {
    char instance_path[256];
    char schema_path[256];
    char keyword[32];
    char message[256];
};

/*
 * A caller-owned collector: the first SCHEMA_ERRORS_MAX errors in instance order, and the
 * total number found. schema_validate resets it; it is not shared between threads.
 */
struct schema_errors {
    size_t count; /* errors kept in items[] */
    size_t total; /* errors found, count <= total */
    struct schema_error items[SCHEMA_ERRORS_MAX];
};

/*
 * Compiles the schema document doc (a cJSON tree: object or boolean). base_uri is the
 * document's retrieval URI against which its $id and relative $refs resolve; NULL means
 * none (refs then resolve relative to the document's own $id, or as plain strings).
 *
 * On success stores a new schema in *out (free with schema_free) and returns 0. The schema
 * keeps no pointer into doc: the caller may delete doc right after. On a bad schema returns
 * CORE_E_INVALID and appends one line to err (when err is not NULL) naming the location as
 * a URI fragment JSON pointer and the reason, e.g.
 *   #/properties/price/minimum: must be a number
 * Unresolvable $refs (including every remote one: nothing is fetched), $ref cycles that
 * consume no input and a keyword given twice in one object are compile errors too. *out is
 * left untouched on failure. doc must be shaped as cJSON's parser builds trees (every object
 * member named). Any thread; allocates from the heap; doc is only read.
 */
int schema_compile(const cJSON *doc, const char *base_uri, struct schema **out,
                   struct core_buf *err);

/* ---- privacy annotations ------------------------------------------------------------------- */

/* Retention classes of "x-retention" (ingest seals properties of a class that lives shorter
 * than events under epoch keys the retention job destroys: privacy/epochkeys.h). A property
 * without "x-retention" is "standard". */
enum schema_retention {
    SCHEMA_RETENTION_SHORT,
    SCHEMA_RETENTION_STANDARD,
    SCHEMA_RETENTION_LONG,
};
const char *schema_retention_name(enum schema_retention r);

/* Calls fn for every property of the root object schema (following a root $ref) whose
 * subschema says "x-pii": true, in name-table order. Returns the count. Any thread. */
size_t schema_pii_each(const struct schema *s,
                       void (*fn)(void *arg, const char *name, enum schema_retention r), void *arg);
/* Whether the root's property name is marked "x-pii": true. */
bool schema_pii_property(const struct schema *s, const char *name, size_t len);
/* The retention class of the root's property name ("x-retention", with or without "x-pii";
 * STANDARD when unmarked or not declared). Any thread. */
enum schema_retention schema_property_retention(const struct schema *s, const char *name,
                                                size_t len);

/* Whether the root object schema is closed: "additionalProperties": false without
 * patternProperties. Then ingest drops the top-level members it does not declare in
 * "properties" (counted as dropped fields) instead of rejecting the event. */
bool schema_root_closed(const struct schema *s);
/* Whether the root declares name in "properties". */
bool schema_root_declares(const struct schema *s, const char *name, size_t len);

/* Frees a compiled schema (NULL is fine). No validation may be running on it. */
void schema_free(struct schema *s);

/*
 * Validates instance (a tree as cJSON's parser builds it) against s. Returns 0 when valid, 1 when
 * invalid, and CORE_E_INVALID when s or instance is NULL. When errs is not NULL it is reset and
 * receives every error (up to SCHEMA_ERRORS_MAX kept, all counted); with errs NULL validation stops
 * at the first failure, which is the fastest way to get a yes/no answer.
 *
 * Thread-safe: any number of threads may validate against the same schema at once (the
 * compiled schema is never written; pcre2 match scratch is per thread). A valid instance
 * does not allocate, except for the first pattern match on a thread (one match block per
 * thread, freed at thread exit) and "format": "regex", which compiles the instance string.
 * Limits: SCHEMA_MAX_DEPTH, SCHEMA_MAX_STEPS and the pcre2 match limit end validation
 * with result 1 and an error of keyword "limit".
 */
int schema_validate(const struct schema *s, const cJSON *instance, struct schema_errors *errs);

/* Empties a collector (schema_validate does this itself). */
void schema_errors_init(struct schema_errors *errs);

/*
 * Appends "<instance path>: <message>" to out, writing the root's empty path as "(root)":
 *   /properties/price: "abc" is not of type "number"
 */
void schema_error_format(const struct schema_error *e, struct core_buf *out);

/* Appends every kept error joined by "; ", then "; ... N more" when some were only counted. */
void schema_errors_format(const struct schema_errors *errs, struct core_buf *out);

#endif
