/* Internals shared by the registry files: the lock-free tables and the registry itself. */
#ifndef RECSTREAM_SCHEMA_REGISTRY_INT_H
#define RECSTREAM_SCHEMA_REGISTRY_INT_H

#include "schema/registry.h"

#include <pthread.h>
#include <stdatomic.h>

/*
 * Lookups take no lock. Every table readers touch is insert-only: an entry, once published
 * with a release store, is never moved, changed or freed before schema_registry_free. A
 * table that fills up is copied into one twice the size and the copy published; the old
 * one stays readable (chained on "retired") for readers that loaded it before, and is freed
 * with the registry. The copies add up to less than the final table.
 */

/* The first member of every indexed entry. Versions use hash = packed version, name NULL. */
struct reg_key {
    uint64_t hash;
    const char *name;
    size_t len;
};

struct reg_slots {
    uint32_t mask;
    struct reg_slots *retired;
    _Atomic(struct reg_key *) v[];
};

/* An insert-only open-addressing hash table; at most half full. One writer (under the
 * registry mutex), any number of readers. */
struct reg_index {
    _Atomic(struct reg_slots *) slots;
    uint32_t n; /* writer only */
};

/* One registered version; immutable once published. */
struct reg_version {
    struct reg_key key;
    struct schema_version ver;
    struct schema *schema;
    char *body; /* the document as registered, NUL-terminated */
    size_t body_len;
};

struct reg_name {
    struct reg_key key; /* points at name */
    char *name;
    _Atomic(struct reg_version *) latest; /* the greatest version */
    struct reg_index versions;
    /* Writer side, read and written under the registry mutex only. */
    struct reg_version **vers; /* sorted by version */
    uint32_t n_vers, cap_vers;
};

struct schema_registry {
    char *dir;
    pthread_mutex_t mu; /* serialises puts and guards the writer-side lists */
    struct reg_index names;
    struct reg_name **sorted; /* by name, byte order (under mu) */
    size_t n_names, cap_names;
    size_t max_names, max_versions, max_bytes;
};

/* A new, empty registry for dir (nothing is read or created). */
struct schema_registry *reg__new(const char *dir);

/* The name's entry or NULL. Lock-free. */
struct reg_name *reg__find_name(struct schema_registry *r, const char *name, size_t len);

/*
 * Publishes version v of name with its body and compiled schema (taking ownership of s),
 * creating the name when nm is NULL. The caller holds the mutex (or owns r alone), has
 * checked limits and that v is new, and has persisted the file. Returns the name's entry.
 */
struct reg_name *reg__publish(struct schema_registry *r, struct reg_name *nm, const char *name,
                              size_t len, const struct schema_version *v, const char *body,
                              size_t body_len, struct schema *s);

/* Parses text[0..len) as exactly one JSON value. On failure appends "malformed JSON at line L,
 * column C" (or "unexpected data after the JSON value at ...") to why and returns NULL. */
cJSON *reg__parse_json(const char *text, size_t len, struct core_buf *why);

/*
 * Compares schema documents old_doc and new_doc (new_doc compiled as new_schema): appends one
 * line per way in which new_doc may reject an instance old_doc accepts (or cannot be proven
 * not to), "<pointer in new_doc>: <reason>" joined by '\n', and returns how many. 0 means
 * every instance valid under old_doc is valid under new_doc.
 */
size_t reg__compat(const cJSON *old_doc, const cJSON *new_doc, const struct schema *new_schema,
                   struct core_buf *out);

#endif
