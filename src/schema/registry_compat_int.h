/* Internals shared by the compatibility proof (registry_compat*.c) and its JSON helpers. */
#ifndef RECSTREAM_SCHEMA_REGISTRY_COMPAT_INT_H
#define RECSTREAM_SCHEMA_REGISTRY_COMPAT_INT_H

#include "schema/registry_int.h"
#include "schema/schema_int.h"

#define COMPAT_MAX_STEPS 200000u /* schema pairs compared, quiet trials included */
#define COMPAT_MAX_DEPTH 256u
#define COMPAT_MAX_HOPS 64     /* $ref followed in a row */
#define COMPAT_MAX_REASONS 100 /* written; the rest are counted */
#define COMPAT_T_ALL 0x7fu     /* every SCH_T_* bit */

struct compat_doc {
    const cJSON *root;
    bool refs_ok; /* no nested $id moves the base URI, so "#/..." means this document */
};

struct compat_pair {
    const cJSON *a, *b;
    bool swapped;
    unsigned idepth; /* instance depth when the pair was entered */
};

struct compat {
    struct compat_doc docs[2]; /* old, new */
    bool swapped;              /* comparing new against old (for "not") */
    bool quiet;                /* a trial: stop at the first failure, write nothing */
    bool failed;               /* the running trial failed */
    bool gave_up;              /* the step or depth limit was hit (reported once) */
    struct core_buf *out;
    size_t reasons;
    struct core_buf path; /* JSON pointer of the new schema's location */
    unsigned depth;
    unsigned idepth; /* how far into the instance the subschemas being compared apply */
    uint32_t steps;
    struct compat_pair *pairs; /* pairs entered through $ref, for recursion */
    size_t n_pairs, cap_pairs;
};

/* ---- the walk and its reports (registry_compat.c) ---------------------------------------- */

/* Proves "every instance valid under a is valid under b" at the current path, reporting each
 * failure (or, inside a trial, stopping at the first). NULL stands for the true schema. */
void reg__cmp(struct compat *c, const cJSON *a, const cJSON *b);
/* reg__cmp at the location seg below the current one. */
void reg__cmp_at(struct compat *c, const char *seg, const cJSON *a, const cJSON *b);
/* A trial: true when proven, nothing reported. swap compares new against old. */
bool reg__holds(struct compat *c, const cJSON *a, const cJSON *b, bool swap);
/* Reports "<path>: <reason>" (in a trial: marks it failed). */
void reg__reason(struct compat *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* True once the comparison (or the running trial) is over. */
bool reg__stopped(const struct compat *c);
/* Appends path segments (escaped as JSON pointer tokens); returns the mark for reg__path_pop. */
size_t reg__path_push(struct compat *c, const char *seg);
size_t reg__path_push2(struct compat *c, const char *seg, const char *seg2);
size_t reg__path_push_index(struct compat *c, const char *seg, size_t i);
void reg__path_pop(struct compat *c, size_t mark);
/* minLength, maxItems, ...: a minimum may only fall, a maximum only rise. */
void reg__check_count(struct compat *c, const cJSON *a, const cJSON *b, const char *k, bool upper);

/* ---- structure keywords (registry_compat_object.c) --------------------------------------- */

void reg__check_arrays(struct compat *c, const cJSON *a, const cJSON *b);
void reg__check_objects(struct compat *c, const cJSON *a, const cJSON *b);

/* ---- cycles (registry_stall.c) ------------------------------------------------------------ */

/* The location ("#/...") of a subschema of s, reachable from its root, that reaches itself
 * through $ref, allOf, anyOf, oneOf, not, if/then/else or dependencies without descending
 * into the instance; NULL when there is none. Such a loop makes validation give up. */
const char *reg__stall_find(const struct schema *s);

/* ---- JSON helpers (registry_json.c) ------------------------------------------------------ */

/* Keyword name of schema s; NULL when absent or when s is a boolean schema (or NULL). */
const cJSON *reg__kw(const cJSON *s, const char *name);
bool reg__num_kw(const cJSON *s, const char *name, double *v);
/* An absent subschema (NULL) or the true schema. */
bool reg__is_true(const cJSON *s);
/* True when j holds a "$ref" member at any depth. */
bool reg__has_ref(const cJSON *j);
/* True unless some subschema below the root has an "$id" that changes the base URI. */
bool reg__refs_resolve_locally(const cJSON *j, bool root);
bool reg__str_in(const cJSON *arr, const char *s);
bool reg__value_in(const cJSON *arr, const cJSON *v);
/* The subschema a "#..." JSON pointer names in root, or NULL. */
const cJSON *reg__pointer_get(const cJSON *root, const char *ref);
/* A compact JSON preview of j, cut with "..." to fit size. */
void reg__preview(const cJSON *j, char *out, size_t size);

/*
 * A hash set over an object's member names, an array's strings or an array's values, so that
 * comparing two long "properties", "required" or "enum" lists stays linear: cJSON finds
 * members by walking the list. The first of equal entries wins, as in cJSON.
 */
enum vset_kind { VSET_MEMBERS, VSET_STRINGS, VSET_VALUES };

struct vset {
    enum vset_kind kind;
    const cJSON **slots;
    uint32_t mask;
};

/* Builds the set over j (an object for VSET_MEMBERS, else an array); free with _dispose. */
void reg__vset_init(struct vset *s, const cJSON *j, enum vset_kind kind);
void reg__vset_dispose(struct vset *s);
/* The member or string called name (VSET_MEMBERS, VSET_STRINGS), or NULL. */
const cJSON *reg__vset_get(const struct vset *s, const char *name);
/* True when a value deep-equal to value is in the set (VSET_VALUES). */
bool reg__vset_has(const struct vset *s, const cJSON *value);

#endif
