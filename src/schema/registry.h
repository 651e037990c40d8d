/*
 * schema registry: named JSON Schemas with SchemaVer versions (MODEL-REVISION-ADDITION, as
 * Snowplow's Iglu), stored one file per version under a directory, compiled once and looked
 * up per event without locks.
 *
 * Versions are immutable and never removed. A new ADDITION (1-0-0 -> 1-0-1) must accept
 * every instance the previous one accepted; the registry proves that structurally and
 * refuses what it cannot prove. A REVISION (1-1-0) or MODEL (2-0-0) bump declares a
 * breaking change and is accepted, with the breaking changes it detects reported back.
 * docs/SCHEMA.md ("Registry") describes the rules.
 */
#ifndef RECSTREAM_SCHEMA_REGISTRY_H
#define RECSTREAM_SCHEMA_REGISTRY_H

#include "schema/schema.h"

#include <stdbool.h>
#include <stddef.h>

/* Results of schema_registry_put beyond CORE_ERR_MAP (negative, outside errno and core). */
#define SCHEMA_REG_INCOMPATIBLE (-20001) /* an ADDITION that narrows what the schema accepts */
#define SCHEMA_REG_BAD_SEQUENCE (-20002) /* a version that does not follow the existing ones */

/* Default bounds (see schema_registry_set_limits). */
#define SCHEMA_REG_MAX_NAMES 10000
#define SCHEMA_REG_MAX_VERSIONS 1000              /* per name */
#define SCHEMA_REG_MAX_BYTES ((size_t)256 * 1024) /* one schema document */

/* Longest schema name; each version part is at most SCHEMA_VERSION_PART_MAX. */
#define SCHEMA_NAME_MAX 128
#define SCHEMA_VERSION_PART_MAX 999999
/* Buffer size that holds any formatted version ("999999-999999-999999" + NUL). */
#define SCHEMA_VERSION_STR_SIZE 24

struct schema_version {
    int model;    /* >= 1 */
    int revision; /* >= 0 */
    int addition; /* >= 0 */
};

struct schema_registry;

/* Returns a static message for SCHEMA_REG_* codes, else core_strerror(err). */
const char *schema_registry_strerror(int err);

/* ---- names and versions (pure functions, any thread) ------------------------------------- */

/* True when s[0..n) is a schema name: 1..SCHEMA_NAME_MAX characters of [A-Za-z0-9_.-],
 * starting with a letter. */
bool schema_name_valid(const char *s, size_t n);

/*
 * Parses "MODEL-REVISION-ADDITION" from s[0..n) (no NUL needed): decimal integers without
 * leading zeros or signs, each <= SCHEMA_VERSION_PART_MAX, model >= 1. Returns 0 and fills
 * *v, or CORE_E_INVALID (v untouched).
 */
int schema_version_parse(const char *s, size_t n, struct schema_version *v);

/* Writes "M-R-A" with a NUL into out; returns its length, or CORE_E_INVALID when v is out of
 * range or out_size is too small (SCHEMA_VERSION_STR_SIZE always suffices). */
int schema_version_format(const struct schema_version *v, char *out, size_t out_size);

/* Orders versions by model, then revision, then addition: <0, 0 or >0. */
int schema_version_cmp(const struct schema_version *a, const struct schema_version *b);

/*
 * Parses an event's schema reference "name/M-R-A" from s[0..n): copies the name with a NUL
 * into name (name_size >= SCHEMA_NAME_MAX + 1 always suffices) and the version into *v.
 * Returns 0, or CORE_E_INVALID for a malformed reference or a name that does not fit (outputs
 * untouched).
 */
int schema_ref_parse(const char *s, size_t n, char *name, size_t name_size,
                     struct schema_version *v);

/* ---- lifecycle --------------------------------------------------------------------------- */

/*
 * Opens the registry stored in dir (created with mode 0700 when missing), loading and
 * compiling every <dir>/<name>/<M-R-A>.json. Entries whose names are not a valid schema name
 * or version are skipped with a warning (so are leftover "*.json.tmp" files). Stores a new
 * registry in *out (free with schema_registry_free) and returns 0; on failure *out is
 * untouched and returns -errno (unreadable or uncreatable dir), CORE_E_CORRUPT when a
 * version file cannot be read, parsed or compiled or exceeds a limit (logged at error level
 * naming the file and the reason). Not thread-safe against other calls on the same dir.
 */
int schema_registry_open(const char *dir, struct schema_registry **out);

/* Frees the registry and every schema it handed out (NULL is fine). No other call may be
 * running on it, and no pointer from schema_registry_get may be used afterwards. */
void schema_registry_free(struct schema_registry *r);

/* Lowers (or raises) the bounds for later puts: names, versions per name, bytes per schema.
 * Zero keeps a bound unchanged. Call before sharing r between threads (tests use it). */
void schema_registry_set_limits(struct schema_registry *r, size_t max_names, size_t max_versions,
                                size_t max_bytes);

/* ---- registering ------------------------------------------------------------------------- */

/*
 * Registers version (a NUL-terminated "M-R-A") of schema name (NUL-terminated) with the
 * document body[0..len). The body is stored byte for byte as given. Any thread; puts are
 * serialised among themselves and never block lookups. msg (may be NULL) gets text appended:
 * nothing on success except as noted, else the reason(s), one per line, without a trailing
 * newline. Returns:
 *   0                    created: written to <dir>/<name>/<version>.json (mode 0600, atomic
 *                        rename, fsynced) before it becomes visible to lookups. For a
 *                        REVISION or MODEL bump msg lists the breaking changes detected
 *                        against the previous latest version (informational; may be empty).
 *   1                    this version already exists with the same content (deep JSON
 *                        equality: key order and number spelling do not matter); no-op.
 *   CORE_E_INVALID       bad name or version, malformed JSON ("malformed JSON at line 1,
 *                        column 7"), or a schema that does not compile ("invalid schema:
 *                        #/type: unknown type ...").
 *   CORE_E_EXISTS        this version exists with different content (versions are immutable).
 *   SCHEMA_REG_BAD_SEQUENCE  the first version is not 1-0-0, or the version is not the next
 *                        ADDITION of an existing MODEL-REVISION, the next REVISION of an
 *                        existing MODEL or the next MODEL; msg lists the accepted versions.
 *   SCHEMA_REG_INCOMPATIBLE  an ADDITION that is not provably a superset of the version it
 *                        follows; msg has one line per reason: "<JSON pointer into the new
 *                        schema>: <reason>", the root as "(root)", e.g.
 *                        /properties/price: type narrowed from ["number","string"] to ["number"]
 *   CORE_E_TOOBIG        len is over the schema size limit.
 *   CORE_E_FULL          the name or version limit is reached.
 *   -errno               writing the file failed (the version is not registered).
 */
int schema_registry_put(struct schema_registry *r, const char *name, const char *version,
                        const char *body, size_t len, struct core_buf *msg);

/* ---- lookups (hot path) ------------------------------------------------------------------ */

/*
 * The compiled schema of name[0..name_len) at version v, or with v NULL the latest version of
 * the highest MODEL (the greatest version). NULL when unknown. Lock-free and allocation-free:
 * any number of threads may call it while puts run; a version becomes visible once its put
 * has written it. The result stays valid until schema_registry_free.
 */
const struct schema *schema_registry_get(struct schema_registry *r, const char *name,
                                         size_t name_len, const struct schema_version *v);

/* As schema_registry_get, and also stores the version found in *found (when not NULL; left
 * untouched when the result is NULL), which tells which version v NULL resolved to. */
const struct schema *schema_registry_resolve(struct schema_registry *r, const char *name,
                                             size_t name_len, const struct schema_version *v,
                                             struct schema_version *found);

/* True when at least one version of name[0..name_len) is registered. Lock-free, any thread. */
bool schema_registry_has(struct schema_registry *r, const char *name, size_t name_len);

/* ---- JSON renderings for the API (any thread; wait for a running put) -------------------- */

/* Appends {"schemas":[{"name":"a","versions":["1-0-0","1-0-1"],"latest":"1-0-1"},...]},
 * names in byte order, versions in version order. */
void schema_registry_list_json(struct schema_registry *r, struct core_buf *out);

/* Appends {"name":"a","versions":[...],"latest":"1-0-1"}. Returns 0, or CORE_E_NOTFOUND when
 * name is unknown (out untouched). */
int schema_registry_versions_json(struct schema_registry *r, const char *name,
                                  struct core_buf *out);

/* Appends the schema document of name at version ("M-R-A"; NULL = latest) exactly as it was
 * registered. Returns 0, CORE_E_INVALID for a malformed version, or CORE_E_NOTFOUND. */
int schema_registry_schema_json(struct schema_registry *r, const char *name, const char *version,
                                struct core_buf *out);

#endif
