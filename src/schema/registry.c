/*
 * The schema registry: lock-free lookup tables, registering versions (sequence rules,
 * compatibility, persistence) and the JSON renderings. Loading from disk is in
 * registry_load.c, the compatibility proof in registry_compat.c.
 */
#include "schema/registry_int.h"
#include "schema/schema_int.h" /* sch__json_equal, XXH3 (inlined) */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- insert-only hash index ------------------------------------------------------------- */

/* Spreads a key over the slots: name hashes are good already, packed versions are not. */
static inline uint32_t slot_of(uint64_t hash)
{
    return (uint32_t)((hash * 0x9E3779B97F4A7C15ull) >> 32);
}

static struct reg_slots *slots_new(uint32_t cap, struct reg_slots *retired)
{
    struct reg_slots *s = core_xmalloc(sizeof *s + cap * sizeof s->v[0]);
    s->mask = cap - 1;
    s->retired = retired;
    for (uint32_t i = 0; i < cap; i++)
        atomic_init(&s->v[i], NULL);
    return s;
}

static void index_init(struct reg_index *ix)
{
    atomic_init(&ix->slots, slots_new(8, NULL));
    ix->n = 0;
}

static void index_dispose(struct reg_index *ix)
{
    struct reg_slots *s = atomic_load_explicit(&ix->slots, memory_order_relaxed);
    while (s) {
        struct reg_slots *next = s->retired;
        free(s);
        s = next;
    }
}

/* The table is never more than half full, so every probe ends at an empty slot. */
static inline struct reg_key *index_find(struct reg_index *ix, uint64_t hash, const char *name,
                                         size_t len)
{
    struct reg_slots *s = atomic_load_explicit(&ix->slots, memory_order_acquire);
    for (uint32_t i = slot_of(hash) & s->mask;; i = (i + 1) & s->mask) {
        struct reg_key *k = atomic_load_explicit(&s->v[i], memory_order_acquire);
        if (!k)
            return NULL;
        if (k->hash == hash && k->len == len && (len == 0 || !memcmp(k->name, name, len)))
            return k;
    }
}

static void slots_put(struct reg_slots *s, struct reg_key *k)
{
    for (uint32_t i = slot_of(k->hash) & s->mask;; i = (i + 1) & s->mask) {
        if (!atomic_load_explicit(&s->v[i], memory_order_relaxed)) {
            atomic_store_explicit(&s->v[i], k, memory_order_release);
            return;
        }
    }
}

/* Writer only. Readers see either table; both hold every entry published before the swap. */
static void index_insert(struct reg_index *ix, struct reg_key *k)
{
    struct reg_slots *s = atomic_load_explicit(&ix->slots, memory_order_relaxed);
    if ((ix->n + 1) * 2 > s->mask + 1) {
        struct reg_slots *g = slots_new((s->mask + 1) * 2, s);
        for (uint32_t i = 0; i <= s->mask; i++) {
            struct reg_key *e = atomic_load_explicit(&s->v[i], memory_order_relaxed);
            if (e)
                slots_put(g, e);
        }
        atomic_store_explicit(&ix->slots, g, memory_order_release);
        s = g;
    }
    slots_put(s, k);
    ix->n++;
}

/* Versions are keyed by their parts packed into 63 bits (each part < 2^21). */
static uint64_t version_key(const struct schema_version *v)
{
    return (uint64_t)v->model << 42 | (uint64_t)v->revision << 21 | (uint64_t)v->addition;
}

static bool version_in_range(const struct schema_version *v)
{
    return v->model >= 1 && v->model <= SCHEMA_VERSION_PART_MAX && v->revision >= 0 &&
           v->revision <= SCHEMA_VERSION_PART_MAX && v->addition >= 0 &&
           v->addition <= SCHEMA_VERSION_PART_MAX;
}

/* ---- lifecycle and lookups ---------------------------------------------------------------- */

struct schema_registry *reg__new(const char *dir)
{
    struct schema_registry *r = core_xcalloc(1, sizeof *r);
    r->dir = core_xstrdup(dir);
    pthread_mutex_init(&r->mu, NULL);
    index_init(&r->names);
    r->max_names = SCHEMA_REG_MAX_NAMES;
    r->max_versions = SCHEMA_REG_MAX_VERSIONS;
    r->max_bytes = SCHEMA_REG_MAX_BYTES;
    return r;
}

void schema_registry_free(struct schema_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_names; i++) {
        struct reg_name *nm = r->sorted[i];
        for (uint32_t j = 0; j < nm->n_vers; j++) {
            schema_free(nm->vers[j]->schema);
            free(nm->vers[j]->body);
            free(nm->vers[j]);
        }
        index_dispose(&nm->versions);
        free(nm->vers);
        free(nm->name);
        free(nm);
    }
    index_dispose(&r->names);
    free(r->sorted);
    pthread_mutex_destroy(&r->mu);
    free(r->dir);
    free(r);
}

void schema_registry_set_limits(struct schema_registry *r, size_t max_names, size_t max_versions,
                                size_t max_bytes)
{
    if (max_names)
        r->max_names = max_names;
    if (max_versions)
        r->max_versions = max_versions;
    if (max_bytes)
        r->max_bytes = max_bytes;
}

struct reg_name *reg__find_name(struct schema_registry *r, const char *name, size_t len)
{
    return (struct reg_name *)index_find(&r->names, XXH3_64bits(name, len), name, len);
}

static struct reg_version *find_version(struct reg_name *nm, const struct schema_version *v)
{
    if (!version_in_range(v))
        return NULL;
    return (struct reg_version *)index_find(&nm->versions, version_key(v), NULL, 0);
}

const struct schema *schema_registry_resolve(struct schema_registry *r, const char *name,
                                             size_t name_len, const struct schema_version *v,
                                             struct schema_version *found)
{
    if (!r || !name)
        return NULL;
    struct reg_name *nm = reg__find_name(r, name, name_len);
    if (!nm)
        return NULL;
    const struct reg_version *rv =
        v ? find_version(nm, v) : atomic_load_explicit(&nm->latest, memory_order_acquire);
    if (!rv)
        return NULL;
    if (found)
        *found = rv->ver;
    return rv->schema;
}

const struct schema *schema_registry_get(struct schema_registry *r, const char *name,
                                         size_t name_len, const struct schema_version *v)
{
    return schema_registry_resolve(r, name, name_len, v, NULL);
}

bool schema_registry_has(struct schema_registry *r, const char *name, size_t name_len)
{
    return r && name && reg__find_name(r, name, name_len) != NULL;
}

/* ---- publishing ---------------------------------------------------------------------------- */

/* Inserts p at its sorted position in a pointer array (writer side, under the mutex). */
static void sorted_insert(void ***arr, size_t *n, size_t *cap, void *p, size_t pos)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        *arr = core_xrealloc(*arr, *cap * sizeof **arr);
    }
    memmove(*arr + pos + 1, *arr + pos, (*n - pos) * sizeof **arr);
    (*arr)[pos] = p;
    (*n)++;
}

static int name_cmp(const struct reg_name *nm, const char *name, size_t len)
{
    size_t n = nm->key.len < len ? nm->key.len : len;
    int c = memcmp(nm->name, name, n);
    if (c)
        return c;
    return nm->key.len < len ? -1 : nm->key.len > len;
}

struct reg_name *reg__publish(struct schema_registry *r, struct reg_name *nm, const char *name,
                              size_t len, const struct schema_version *v, const char *body,
                              size_t body_len, struct schema *s)
{
    struct reg_version *rv = core_xcalloc(1, sizeof *rv);
    rv->key.hash = version_key(v);
    rv->ver = *v;
    rv->schema = s;
    rv->body = core_xmalloc(body_len + 1);
    memcpy(rv->body, body, body_len);
    rv->body[body_len] = '\0';
    rv->body_len = body_len;

    bool created = nm == NULL;
    if (created) {
        nm = core_xcalloc(1, sizeof *nm);
        nm->name = core_xstrndup(name, len);
        nm->key = (struct reg_key){XXH3_64bits(name, len), nm->name, len};
        atomic_init(&nm->latest, NULL);
        index_init(&nm->versions);
    }
    size_t n = nm->n_vers, cap = nm->cap_vers, pos = n;
    while (pos > 0 && schema_version_cmp(&nm->vers[pos - 1]->ver, v) > 0)
        pos--;
    sorted_insert((void ***)&nm->vers, &n, &cap, rv, pos);
    nm->n_vers = (uint32_t)n;
    nm->cap_vers = (uint32_t)cap;

    index_insert(&nm->versions, &rv->key);
    struct reg_version *latest = atomic_load_explicit(&nm->latest, memory_order_relaxed);
    if (!latest || schema_version_cmp(v, &latest->ver) > 0)
        atomic_store_explicit(&nm->latest, rv, memory_order_release);

    /* A new name becomes visible only now, complete with its first version. */
    if (created) {
        size_t at = r->n_names;
        while (at > 0 && name_cmp(r->sorted[at - 1], name, len) > 0)
            at--;
        sorted_insert((void ***)&r->sorted, &r->n_names, &r->cap_names, nm, at);
        index_insert(&r->names, &nm->key);
    }
    return nm;
}

/* ---- registering ------------------------------------------------------------------------- */

cJSON *reg__parse_json(const char *text, size_t len, struct core_buf *why)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (j) {
        while (end < text + len && *end && strchr(" \t\r\n", *end))
            end++;
        if (end == text + len)
            return j;
        cJSON_Delete(j);
    }
    if (!end || end < text || end > text + len)
        end = text;
    size_t line = 1, col = 1;
    for (const char *p = text; p < end; p++, col++) {
        if (*p == '\n') {
            line++;
            col = 0;
        }
    }
    if (why)
        core_buf_printf(why, "%s at line %zu, column %zu",
                        j ? "unexpected data after the JSON value" : "malformed JSON", line, col);
    return NULL;
}

/* Appends a value from outside as a short JSON string, for messages. */
static void put_quoted(struct core_buf *msg, const char *s, size_t n)
{
    core_json_str(msg, s, n > 140 ? 140 : n);
}

enum bump { BUMP_ADDITION, BUMP_REVISION, BUMP_MODEL, BUMP_NONE };

/*
 * Which step v is from the existing versions (sorted, v not among them), and the version it
 * is compared against: the previous ADDITION of its MODEL-REVISION, the latest version of
 * its MODEL for a REVISION, the latest version overall for a MODEL.
 */
static enum bump classify(const struct reg_name *nm, const struct schema_version *v,
                          const struct reg_version **base)
{
    const struct reg_version *same_model = NULL, *same_rev = NULL;
    for (uint32_t i = 0; i < nm->n_vers; i++) {
        const struct reg_version *e = nm->vers[i];
        if (e->ver.model == v->model) {
            same_model = e;
            if (e->ver.revision == v->revision)
                same_rev = e;
        }
    }
    const struct reg_version *last = nm->vers[nm->n_vers - 1];
    if (v->addition > 0 && same_rev && same_rev->ver.addition == v->addition - 1) {
        *base = same_rev;
        return BUMP_ADDITION;
    }
    if (v->addition == 0 && v->revision > 0 && same_model &&
        same_model->ver.revision == v->revision - 1) {
        *base = same_model;
        return BUMP_REVISION;
    }
    if (v->addition == 0 && v->revision == 0 && v->model == last->ver.model + 1) {
        *base = last;
        return BUMP_MODEL;
    }
    return BUMP_NONE;
}

static void put_version(struct core_buf *b, const struct schema_version *v)
{
    char s[SCHEMA_VERSION_STR_SIZE];
    if (schema_version_format(v, s, sizeof s) > 0)
        core_buf_puts(b, s);
}

/* Lists what may follow: the next ADDITION of every MODEL-REVISION, the next REVISION of every
 * MODEL, then the next MODEL. */
static void list_candidates(const struct reg_name *nm, struct core_buf *msg)
{
    for (uint32_t i = 0; i < nm->n_vers; i++) {
        const struct schema_version *e = &nm->vers[i]->ver;
        const struct schema_version *next = i + 1 < nm->n_vers ? &nm->vers[i + 1]->ver : NULL;
        bool model_end = !next || next->model != e->model;
        if (model_end || next->revision != e->revision) {
            struct schema_version add = {e->model, e->revision, e->addition + 1};
            put_version(msg, &add);
            core_buf_puts(msg, ", ");
        }
        if (model_end) {
            struct schema_version rev = {e->model, e->revision + 1, 0};
            put_version(msg, &rev);
            core_buf_puts(msg, ", ");
        }
    }
    struct schema_version model = {nm->vers[nm->n_vers - 1]->ver.model + 1, 0, 0};
    put_version(msg, &model);
}

/* Writes <dir>/<name>/<version>.json, making and syncing the name's directory if needed. */
static int persist(struct schema_registry *r, const char *name, bool new_name, const char *ver,
                   const char *body, size_t len, struct core_buf *msg)
{
    struct core_buf path;
    core_buf_init(&path);
    core_buf_printf(&path, "%s/%s", r->dir, name);
    int rc = core_mkdirs(path.data, 0700);
    if (rc == 0 && new_name)
        rc = core_fsync_dir(r->dir);
    if (rc == 0) {
        core_buf_printf(&path, "/%s.json", ver);
        rc = core_write_file_atomic(path.data, body, len, 0600);
    }
    if (rc < 0 && msg)
        core_buf_printf(msg, "cannot store %s: %s", path.data, core_strerror(rc));
    core_buf_dispose(&path);
    return rc;
}

/* Checks v against what name already has; on success fills msg with breaking changes for a
 * REVISION or MODEL bump. Runs under the mutex. */
static int check_sequence(struct reg_name *nm, const struct schema_version *v, const char *ver,
                          const cJSON *doc, const struct schema *s, struct core_buf *msg)
{
    const struct reg_version *base = NULL;
    enum bump kind = classify(nm, v, &base);
    if (kind == BUMP_NONE) {
        if (msg) {
            core_buf_printf(msg, "version %s does not follow the registered versions of ", ver);
            put_quoted(msg, nm->name, nm->key.len);
            core_buf_puts(msg, "; the next version must be one of: ");
            list_candidates(nm, msg);
        }
        return SCHEMA_REG_BAD_SEQUENCE;
    }
    cJSON *base_doc = reg__parse_json(base->body, base->body_len, NULL);
    if (!base_doc) {
        /* Every stored body parsed when it was registered or loaded. */
        LOG_ERROR("schema registry: a stored schema no longer parses", "name=%s", nm->name);
        abort();
    }
    struct core_buf reasons;
    core_buf_init(&reasons);
    size_t n = reg__compat(base_doc, doc, s, &reasons);
    cJSON_Delete(base_doc);
    int rc = kind == BUMP_ADDITION && n > 0 ? SCHEMA_REG_INCOMPATIBLE : 0;
    if (msg && n > 0)
        core_buf_append(msg, reasons.data, reasons.len);
    core_buf_dispose(&reasons);
    return rc;
}

/* The part of a put that needs the mutex. On success takes ownership of *s. */
static int put_locked(struct schema_registry *r, const char *name, size_t nlen,
                      const struct schema_version *v, const char *ver, const cJSON *doc,
                      const char *body, size_t len, struct schema **s, struct core_buf *msg)
{
    struct reg_name *nm = reg__find_name(r, name, nlen);
    int rc;
    if (nm) {
        const struct reg_version *old = find_version(nm, v);
        if (old) {
            cJSON *old_doc = reg__parse_json(old->body, old->body_len, NULL);
            bool same = old_doc && sch__json_equal(old_doc, doc);
            cJSON_Delete(old_doc);
            if (same)
                return 1;
            if (msg)
                core_buf_printf(msg,
                                "version %s of %s already exists with different content; "
                                "versions are immutable: register a new version",
                                ver, name);
            return CORE_E_EXISTS;
        }
        if (nm->n_vers >= r->max_versions) {
            if (msg)
                core_buf_printf(msg, "schema %s has the maximum of %zu versions", name,
                                r->max_versions);
            return CORE_E_FULL;
        }
        rc = check_sequence(nm, v, ver, doc, *s, msg);
        if (rc < 0)
            return rc;
    } else {
        if (r->n_names >= r->max_names) {
            if (msg)
                core_buf_printf(msg, "the registry holds the maximum of %zu schemas", r->max_names);
            return CORE_E_FULL;
        }
        if (v->model != 1 || v->revision != 0 || v->addition != 0) {
            if (msg)
                core_buf_printf(msg, "the first version of a schema must be 1-0-0, not %s", ver);
            return SCHEMA_REG_BAD_SEQUENCE;
        }
    }
    struct core_buf err;
    core_buf_init(&err);
    rc = persist(r, name, nm == NULL, ver, body, len, &err);
    if (rc < 0) {
        if (msg) {
            core_buf_reset(msg);
            core_buf_append(msg, err.data, err.len);
        }
        core_buf_dispose(&err);
        return rc;
    }
    core_buf_dispose(&err);
    reg__publish(r, nm, name, nlen, v, body, len, *s);
    *s = NULL;
    return 0;
}

int schema_registry_put(struct schema_registry *r, const char *name, const char *version,
                        const char *body, size_t len, struct core_buf *msg)
{
    struct schema_version v;
    char ver[SCHEMA_VERSION_STR_SIZE];
    size_t nlen = name ? strlen(name) : 0;
    struct core_buf why;
    core_buf_init(&why);
    cJSON *doc = NULL;
    struct schema *s = NULL;
    int rc = CORE_E_INVALID;

    if (!schema_name_valid(name, nlen)) {
        core_buf_puts(&why, "invalid schema name ");
        put_quoted(&why, name ? name : "", nlen);
        core_buf_printf(&why,
                        ": use 1 to %d letters, digits, '_', '.' or '-', starting with a "
                        "letter",
                        SCHEMA_NAME_MAX);
        goto out;
    }
    if (!version || schema_version_parse(version, strlen(version), &v) < 0) {
        core_buf_puts(&why, "invalid version ");
        put_quoted(&why, version ? version : "", version ? strlen(version) : 0);
        core_buf_puts(&why, ": expected MODEL-REVISION-ADDITION such as 1-0-0");
        goto out;
    }
    schema_version_format(&v, ver, sizeof ver);
    if (len > r->max_bytes) {
        core_buf_printf(&why, "schema is %zu bytes; the limit is %zu", len, r->max_bytes);
        rc = CORE_E_TOOBIG;
        goto out;
    }
    doc = reg__parse_json(body ? body : "", body ? len : 0, &why);
    if (!doc)
        goto out;
    /* Parse and compile outside the mutex: they are the slow part and need no shared state. */
    struct core_buf err;
    core_buf_init(&err);
    rc = schema_compile(doc, NULL, &s, &err);
    if (rc < 0) {
        core_buf_printf(&why, "invalid schema: %s", err.data ? err.data : "");
        rc = CORE_E_INVALID;
    }
    core_buf_dispose(&err);
    if (rc < 0)
        goto out;

    pthread_mutex_lock(&r->mu);
    rc = put_locked(r, name, nlen, &v, ver, doc, body, len, &s, &why);
    pthread_mutex_unlock(&r->mu);
out:
    if (msg && why.len)
        core_buf_append(msg, why.data, why.len);
    core_buf_dispose(&why);
    schema_free(s);
    cJSON_Delete(doc);
    return rc;
}

/* ---- JSON renderings ---------------------------------------------------------------------- */

static void name_json(const struct reg_name *nm, struct core_buf *out)
{
    core_buf_puts(out, "{\"name\":");
    core_json_str(out, nm->name, nm->key.len);
    core_buf_puts(out, ",\"versions\":[");
    for (uint32_t i = 0; i < nm->n_vers; i++) {
        if (i)
            core_buf_putc(out, ',');
        core_buf_putc(out, '"');
        put_version(out, &nm->vers[i]->ver);
        core_buf_putc(out, '"');
    }
    core_buf_puts(out, "],\"latest\":\"");
    put_version(out, &nm->vers[nm->n_vers - 1]->ver);
    core_buf_puts(out, "\"}");
}

void schema_registry_list_json(struct schema_registry *r, struct core_buf *out)
{
    pthread_mutex_lock(&r->mu);
    core_buf_puts(out, "{\"schemas\":[");
    for (size_t i = 0; i < r->n_names; i++) {
        if (i)
            core_buf_putc(out, ',');
        name_json(r->sorted[i], out);
    }
    core_buf_puts(out, "]}");
    pthread_mutex_unlock(&r->mu);
}

int schema_registry_versions_json(struct schema_registry *r, const char *name, struct core_buf *out)
{
    if (!name)
        return CORE_E_NOTFOUND;
    pthread_mutex_lock(&r->mu);
    struct reg_name *nm = reg__find_name(r, name, strlen(name));
    if (nm)
        name_json(nm, out);
    pthread_mutex_unlock(&r->mu);
    return nm ? 0 : CORE_E_NOTFOUND;
}

int schema_registry_schema_json(struct schema_registry *r, const char *name, const char *version,
                                struct core_buf *out)
{
    struct schema_version v;
    if (version && schema_version_parse(version, strlen(version), &v) < 0)
        return CORE_E_INVALID;
    if (!name)
        return CORE_E_NOTFOUND;
    /* Published versions are immutable, so the body needs no lock once found. */
    struct reg_name *nm = reg__find_name(r, name, strlen(name));
    const struct reg_version *rv = NULL;
    if (nm)
        rv = version ? find_version(nm, &v)
                     : atomic_load_explicit(&nm->latest, memory_order_acquire);
    if (!rv)
        return CORE_E_NOTFOUND;
    core_buf_append(out, rv->body, rv->body_len);
    return 0;
}
