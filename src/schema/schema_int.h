/* Internals shared by the schema files: the compiled tree, compile context, helpers. */
#ifndef RECSTREAM_SCHEMA_INT_H
#define RECSTREAM_SCHEMA_INT_H

#include "schema/schema.h"

#include <string.h>
/* Inlined: property names are hashed once per instance member on the hot path. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Instance types as bits; "integer" is a number with a zero fraction. */
enum {
    SCH_T_NULL = 1,
    SCH_T_BOOLEAN = 2,
    SCH_T_OBJECT = 4,
    SCH_T_ARRAY = 8,
    SCH_T_NUMBER = 16,
    SCH_T_STRING = 32,
    SCH_T_INTEGER = 64,
};

enum sch_format {
    SCH_FMT_NONE,
    SCH_FMT_DATE_TIME,
    SCH_FMT_DATE,
    SCH_FMT_TIME,
    SCH_FMT_EMAIL,
    SCH_FMT_IDN_EMAIL,
    SCH_FMT_HOSTNAME,
    SCH_FMT_IPV4,
    SCH_FMT_IPV6,
    SCH_FMT_URI,
    SCH_FMT_URI_REFERENCE,
    SCH_FMT_IRI,
    SCH_FMT_IRI_REFERENCE,
    SCH_FMT_URI_TEMPLATE,
    SCH_FMT_UUID,
    SCH_FMT_JSON_POINTER,
    SCH_FMT_RELATIVE_JSON_POINTER,
    SCH_FMT_REGEX,
};

/* Which keyword groups a node has, so validation skips whole groups with one test. */
enum {
    SCH_HAS_ENUM = 1u << 0,
    SCH_HAS_CONST = 1u << 1,
    SCH_HAS_NUMBER = 1u << 2, /* any of the five numeric keywords */
    SCH_HAS_STRING = 1u << 3, /* minLength, maxLength, pattern, format */
    SCH_HAS_ARRAY = 1u << 4,
    SCH_HAS_OBJECT = 1u << 5,
    SCH_HAS_COMBINE = 1u << 6, /* allOf, anyOf, oneOf, not, if */
    SCH_HAS_MINIMUM = 1u << 7,
    SCH_HAS_MAXIMUM = 1u << 8,
    SCH_HAS_EXMINIMUM = 1u << 9,
    SCH_HAS_EXMAXIMUM = 1u << 10,
    SCH_HAS_MULTIPLE = 1u << 11,
};

struct sch_node;

/* A property name the object keywords care about: from properties, required, dependencies. */
struct sch_name {
    const char *name;
    uint32_t len;
    uint32_t hash;
    struct sch_node *prop; /* properties[name], or NULL */
    int32_t req;           /* index in required, or -1 */
    int32_t dep;           /* index in deps, or -1 */
};

/* Open-addressing table of names; slots hold index + 1 (0 = empty). */
struct sch_names {
    struct sch_name *v;
    uint32_t n;
    uint32_t mask;
    uint32_t *slots;
};

static inline uint32_t sch__name_hash(const char *name, size_t len)
{
    return (uint32_t)XXH3_64bits(name, len);
}

/* The entry for a property name, or NULL: one hash and usually one compare. */
static inline const struct sch_name *sch__names_find(const struct sch_names *t, const char *name,
                                                     size_t len)
{
    uint32_t h = sch__name_hash(name, len);
    for (uint32_t i = h & t->mask;; i = (i + 1) & t->mask) {
        uint32_t k = t->slots[i];
        if (!k)
            return NULL;
        const struct sch_name *e = &t->v[k - 1];
        if (e->hash == h && e->len == len && !memcmp(e->name, name, len))
            return e;
    }
}

struct sch_pattern {
    pcre2_code *re;
    const char *src;
    struct sch_node *node;
};

struct sch_dep {
    const char *name;
    struct sch_node *schema; /* schema form, or NULL */
    const char **required;   /* array form */
    uint32_t n_required;
};

struct sch_list {
    struct sch_node **v;
    uint32_t n;
};

struct sch_node {
    const char *path; /* "#/..." location in the document */
    uint32_t has;     /* SCH_HAS_* */
    uint8_t types;    /* SCH_T_* mask; 0 = no type keyword */
    int8_t boolean;   /* -1: an object schema; 0/1: the false/true schema */
    bool unique_items;
    enum sch_format format;
    struct sch_node *ref; /* $ref target: every other keyword is ignored */

    double minimum, maximum, ex_minimum, ex_maximum, multiple_of;
    uint64_t min_length, max_length, min_items, max_items, min_props, max_props;
    pcre2_code *pattern;
    const char *pattern_src;

    struct sch_node *items; /* schema form */
    struct sch_list tuple;  /* array form */
    bool has_tuple;
    struct sch_node *additional_items, *contains;

    struct sch_names names;
    uint32_t *required; /* indexes into names.v, in schema order */
    uint32_t n_required;
    struct sch_pattern *pprops;
    uint32_t n_pprops;
    struct sch_node *additional_props, *property_names;
    struct sch_dep *deps;
    uint32_t n_deps;

    const cJSON *enum_values; /* an array, copied into the schema's arena */
    const char *enum_preview;
    const cJSON *const_value;
    const char *const_preview;

    struct sch_list all_of, any_of, one_of;
    struct sch_node *not_schema, *if_schema, *then_schema, *else_schema;

    /* Privacy annotations (not validation keywords): "x-pii": true marks personal data;
     * "x-retention" is its retention class (enum schema_retention + 1; 0 = not given). */
    bool pii;
    int8_t retention;
};

/* pcre2 match limit per pattern match (backtracking steps). */
#define SCH_MATCH_LIMIT 1000000u

struct schema {
    struct core_arena arena; /* nodes, strings, copied values */
    struct sch_node *root;
    pcre2_match_context *mctx; /* match limits, shared read-only */
    pcre2_code **codes;        /* every compiled pattern, for schema_free */
    size_t n_codes, cap_codes;
};

/* ---- compile context -------------------------------------------------------------------- */

/* Pointer-keyed hash map used while compiling (cJSON location -> data). */
struct sch_ptrmap {
    const void **keys;
    void **vals;
    size_t n, cap;
};

/* Where a subschema sits: its location and the base URI in effect around it. */
struct sch_loc {
    const char *path;
    const char *base;
};

struct sch_id {
    const char *uri;
    const cJSON *target;
};

struct sch_pending_ref {
    struct sch_node *node;
    const char *uri;
};

struct sch_cc {
    struct schema *s;
    struct core_buf *err;
    bool failed;             /* err holds the first problem; later ones are not written */
    struct core_arena tmp;   /* compile-only strings */
    struct sch_ptrmap nodes; /* cJSON -> struct sch_node */
    struct sch_ptrmap locs;  /* cJSON -> struct sch_loc */
    struct sch_id *ids;
    size_t n_ids, cap_ids;
    struct sch_pending_ref *refs;
    size_t n_refs, cap_refs;
};

/* Writes "<path>: <reason>" into the context's err and returns CORE_E_INVALID. */
int sch__fail(struct sch_cc *cc, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void *sch__ptrmap_get(const struct sch_ptrmap *m, const void *key);
void sch__ptrmap_put(struct sch_ptrmap *m, const void *key, void *val);
void sch__ptrmap_dispose(struct sch_ptrmap *m);

/* path + "/" + seg (seg escaped as a JSON pointer token), in the arena. */
char *sch__path_join(struct core_arena *a, const char *path, const char *seg);
char *sch__path_index(struct core_arena *a, const char *path, size_t i);

/* ---- URIs (schema_uri.c) ---------------------------------------------------------------- */

/* Resolves ref against base (RFC 3986 section 5.2) into the arena. */
char *sch__uri_resolve(struct core_arena *a, const char *base, const char *ref);
/* RFC 3986 syntax check: an absolute URI, or any URI reference when reference is set;
 * iri also allows non-ASCII characters (RFC 3987). */
bool sch__uri_check(const char *s, size_t len, bool reference, bool iri);

/* ---- references (schema_ref.c) ---------------------------------------------------------- */
/*
 * Applies an object's $id to the base URI around it and sets *inner to the base for the
 * object's own keywords; with reg, also registers the id. In draft-07 an $id beside $ref is
 * ignored like every other sibling of $ref.
 */
int sch__apply_id(struct sch_cc *cc, const cJSON *j, const char *path, const char *base, bool reg,
                  const char **inner);
/* Registers every $id of the document and records each subschema's location. */
int sch__ids_collect(struct sch_cc *cc, const cJSON *root, const char *base_uri);
/* Finds the subschema a resolved $ref URI names, with its location. */
int sch__ref_lookup(struct sch_cc *cc, const char *uri, const char *from_path, const cJSON **target,
                    struct sch_loc *loc);
/* How an object member holds subschemas, by its key (and for "items" its value). */
enum { SCH_SUB_NONE, SCH_SUB_ONE, SCH_SUB_LIST, SCH_SUB_MAP };
int sch__subschema_kind(const cJSON *member);

/* ---- patterns and formats (schema_format.c) --------------------------------------------- */

/* Compiles an ECMA-262-ish regex (UTF, $ only at the end, \uXXXX). On failure returns NULL
 * and a reason in why. */
pcre2_code *sch__regex_compile(const char *src, char *why, size_t why_size);
/* 1 = matches, 0 = does not, negative = match limit or other pcre2 failure. */
int sch__regex_search(const struct schema *s, const pcre2_code *re, const char *subj, size_t len);
enum sch_format sch__format_parse(const char *name);
const char *sch__format_name(enum sch_format f);
bool sch__format_check(enum sch_format f, const char *s, size_t len);

/* ---- validation (schema_validate.c, schema_error.c) -------------------------------------- */

/* A location in the instance as a chain of stack frames; rendered only for errors. */
struct sch_ipath {
    const struct sch_ipath *up;
    const char *key; /* member name, or NULL for an array index */
    size_t index;
};

/* Shared by every evaluation of one schema_validate call. */
struct sch_vstate {
    unsigned depth;
    uint32_t steps;
    bool aborted;
    struct schema_errors *errs; /* the caller's collector, for the "limit" error */
};

/* errs is NULL in quiet evaluations (anyOf branches, not, if, contains, or no collector):
 * they stop at the first failure and record nothing. */
struct sch_vctx {
    const struct schema *s;
    struct sch_vstate *st;
    struct schema_errors *errs;
};

/*
 * Records an error at instance location at for keyword kw of node n (schema path = node path
 * + "/" + kw; just the node path for the keywords "false" and "limit"). The message is the
 * preview of value (when not NULL), a space, then fmt. Returns true when errors are being
 * collected (so the caller goes on checking), false in quiet evaluations.
 */
bool sch__report(const struct sch_vctx *c, const struct sch_node *n, const char *kw,
                 const struct sch_ipath *at, const cJSON *value, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* ---- JSON values (schema_value.c) ------------------------------------------------------- */

/* Deep JSON equality: numbers by value (1 == 1.0), object key order irrelevant. */
bool sch__json_equal(const cJSON *a, const cJSON *b);
/* Hash consistent with sch__json_equal. */
uint64_t sch__json_hash(const cJSON *j);
/* Copies a value into the arena (never freed by cJSON_Delete; independent of cJSON hooks). */
cJSON *sch__json_copy(struct core_arena *a, const cJSON *src);
/* Writes a compact JSON preview of j into out (at most size - 1 bytes, "..." when cut). */
void sch__json_preview(const cJSON *j, char *out, size_t size);
/* Shortest text for a double that reads back the same. */
void sch__num_format(double v, char *out, size_t size);
/* Number of Unicode code points in n bytes of UTF-8 (continuation bytes not counted). */
size_t sch__utf8_count(const char *s, size_t n);

#endif
