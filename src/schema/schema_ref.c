/*
 * Locations and references at compile time: every subschema's JSON pointer and base URI,
 * the $id registry, and $ref lookup (URI, then JSON pointer or location-independent id).
 */
#include "schema/schema_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- pointer map --------------------------------------------------------------------------- */

static size_t ptr_hash(const void *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ULL;
    return (size_t)(h >> 17);
}

void *sch__ptrmap_get(const struct sch_ptrmap *m, const void *key)
{
    if (!m->cap)
        return NULL;
    for (size_t i = ptr_hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key)
            return m->vals[i];
        if (!m->keys[i])
            return NULL;
    }
}

void sch__ptrmap_put(struct sch_ptrmap *m, const void *key, void *val)
{
    if ((m->n + 1) * 2 > m->cap) {
        struct sch_ptrmap bigger = {NULL, NULL, 0, m->cap ? m->cap * 2 : 64};
        bigger.keys = core_xcalloc(bigger.cap, sizeof *bigger.keys);
        bigger.vals = core_xcalloc(bigger.cap, sizeof *bigger.vals);
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i])
                sch__ptrmap_put(&bigger, m->keys[i], m->vals[i]);
        sch__ptrmap_dispose(m);
        *m = bigger;
    }
    size_t i = ptr_hash(key) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i])
        m->n++;
    m->keys[i] = key;
    m->vals[i] = val;
}

void sch__ptrmap_dispose(struct sch_ptrmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- JSON pointer paths -------------------------------------------------------------------- */

char *sch__path_join(struct core_arena *a, const char *path, const char *seg)
{
    size_t pl = strlen(path), sl = strlen(seg), extra = 0;
    for (size_t i = 0; i < sl; i++)
        extra += seg[i] == '~' || seg[i] == '/';
    char *out = core_arena_alloc(a, pl + sl + extra + 2);
    memcpy(out, path, pl);
    char *w = out + pl;
    *w++ = '/';
    for (size_t i = 0; i < sl; i++) {
        if (seg[i] == '~' || seg[i] == '/') {
            *w++ = '~';
            *w++ = seg[i] == '~' ? '0' : '1';
        } else {
            *w++ = seg[i];
        }
    }
    *w = '\0';
    return out;
}

char *sch__path_index(struct core_arena *a, const char *path, size_t i)
{
    char num[24];
    snprintf(num, sizeof num, "%zu", i);
    return sch__path_join(a, path, num);
}

/* ---- keywords that hold subschemas --------------------------------------------------------- */

int sch__subschema_kind(const cJSON *m)
{
    static const char *const one[] = {"additionalItems",
                                      "additionalProperties",
                                      "contains",
                                      "propertyNames",
                                      "not",
                                      "if",
                                      "then",
                                      "else"};
    static const char *const list[] = {"allOf", "anyOf", "oneOf"};
    static const char *const map[] = {"properties", "patternProperties", "definitions",
                                      "dependencies"};
    const char *key = m->string;
    if (!key)
        return SCH_SUB_NONE;
    if (!strcmp(key, "items"))
        return cJSON_IsArray(m) ? SCH_SUB_LIST : SCH_SUB_ONE;
    for (size_t i = 0; i < sizeof one / sizeof *one; i++)
        if (!strcmp(key, one[i]))
            return SCH_SUB_ONE;
    for (size_t i = 0; i < sizeof list / sizeof *list; i++)
        if (!strcmp(key, list[i]))
            return SCH_SUB_LIST;
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (!strcmp(key, map[i]))
            return SCH_SUB_MAP;
    return SCH_SUB_NONE;
}

/* ---- $id registry -------------------------------------------------------------------------- */

static const cJSON *find_id(const struct sch_cc *cc, const char *uri)
{
    for (size_t i = 0; i < cc->n_ids; i++)
        if (!strcmp(cc->ids[i].uri, uri))
            return cc->ids[i].target;
    return NULL;
}

static int register_id(struct sch_cc *cc, const char *uri, const cJSON *target, const char *path)
{
    const cJSON *prev = find_id(cc, uri);
    if (prev == target)
        return 0;
    if (prev)
        return sch__fail(cc, path, "$id \"%s\" is used by two different subschemas", uri);
    if (cc->n_ids == cc->cap_ids) {
        cc->cap_ids = cc->cap_ids ? cc->cap_ids * 2 : 16;
        cc->ids = core_xrealloc(cc->ids, cc->cap_ids * sizeof *cc->ids);
    }
    cc->ids[cc->n_ids].uri = uri;
    cc->ids[cc->n_ids].target = target;
    cc->n_ids++;
    return 0;
}

int sch__apply_id(struct sch_cc *cc, const cJSON *j, const char *path, const char *base, bool reg,
                  const char **inner)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "$id");
    *inner = base;
    if (!id || cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "$ref")))
        return 0;
    if (!cJSON_IsString(id))
        return sch__fail(cc, sch__path_join(&cc->tmp, path, "$id"), "must be a string");
    char *uri = sch__uri_resolve(&cc->tmp, base, id->valuestring);
    char *hash = strchr(uri, '#');
    if (hash && hash[1] && hash[1] != '/') {
        /* A plain-name fragment ("#foo") names this subschema without changing the base. */
        int rc = reg ? register_id(cc, uri, j, path) : 0;
        if (rc < 0 || id->valuestring[0] == '#')
            return rc;
        uri = core_arena_strndup(&cc->tmp, uri, (size_t)(hash - uri));
    } else if (hash) {
        *hash = '\0';
    }
    *inner = uri;
    return reg ? register_id(cc, uri, j, path) : 0;
}

static int walk(struct sch_cc *cc, const cJSON *j, const char *path, const char *base, int depth);

static int walk_children(struct sch_cc *cc, const cJSON *j, const char *path, const char *base,
                         int depth)
{
    for (const cJSON *m = j->child; m; m = m->next) {
        int kind = sch__subschema_kind(m);
        if (kind == SCH_SUB_NONE)
            continue;
        const char *kpath = sch__path_join(&cc->tmp, path, m->string);
        int rc = 0;
        if (kind == SCH_SUB_ONE) {
            rc = walk(cc, m, kpath, base, depth + 1);
        } else if (kind == SCH_SUB_LIST && cJSON_IsArray(m)) {
            size_t i = 0;
            for (const cJSON *e = m->child; e && rc == 0; e = e->next, i++)
                rc = walk(cc, e, sch__path_index(&cc->tmp, kpath, i), base, depth + 1);
        } else if (kind == SCH_SUB_MAP && cJSON_IsObject(m)) {
            /* dependencies' array values are skipped by walk(): they are not schemas */
            for (const cJSON *e = m->child; e && rc == 0; e = e->next)
                rc = walk(cc, e, sch__path_join(&cc->tmp, kpath, e->string), base, depth + 1);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int walk(struct sch_cc *cc, const cJSON *j, const char *path, const char *base, int depth)
{
    if (depth > SCHEMA_MAX_NESTING)
        return sch__fail(cc, path, "schema nested deeper than %d levels", SCHEMA_MAX_NESTING);
    if (!cJSON_IsObject(j) && !cJSON_IsBool(j))
        return 0; /* not a schema; compiling reports it if it is used as one */
    struct sch_loc *loc = core_arena_alloc(&cc->tmp, sizeof *loc);
    loc->path = path;
    loc->base = base;
    sch__ptrmap_put(&cc->locs, j, loc);
    if (!cJSON_IsObject(j))
        return 0;
    const char *inner;
    int rc = sch__apply_id(cc, j, path, base, true, &inner);
    if (rc < 0)
        return rc;
    return walk_children(cc, j, path, inner, depth);
}

int sch__ids_collect(struct sch_cc *cc, const cJSON *root, const char *base_uri)
{
    char *base = core_arena_strndup(&cc->tmp, base_uri, strlen(base_uri));
    char *hash = strchr(base, '#');
    if (hash)
        *hash = '\0';
    int rc = register_id(cc, base, root, "#");
    if (rc < 0)
        return rc;
    return walk(cc, root, "#", base, 0);
}

/* ---- $ref lookup ----------------------------------------------------------------------------- */

static char *percent_decode(struct core_arena *a, const char *s)
{
    size_t n = strlen(s);
    char *out = core_arena_alloc(a, n + 1);
    core_percent_decode(s, n, out, false);
    return out;
}

/* Evaluates a JSON pointer (RFC 6901) from j; NULL when it names nothing. */
static const cJSON *pointer_eval(struct core_arena *a, const cJSON *j, const char *ptr)
{
    char *tok = core_arena_alloc(a, strlen(ptr) + 1);
    while (j && *ptr == '/') {
        size_t k = 0;
        for (ptr++; *ptr && *ptr != '/'; ptr++) {
            if (*ptr == '~' && (ptr[1] == '0' || ptr[1] == '1'))
                tok[k++] = *++ptr == '0' ? '~' : '/';
            else
                tok[k++] = *ptr;
        }
        tok[k] = '\0';
        if (cJSON_IsObject(j)) {
            j = cJSON_GetObjectItemCaseSensitive(j, tok);
        } else if (cJSON_IsArray(j)) {
            int64_t idx;
            if ((k > 1 && tok[0] == '0') || core_parse_i64(tok, 0, INT32_MAX, &idx) < 0)
                return NULL;
            j = cJSON_GetArrayItem(j, (int)idx);
        } else {
            return NULL;
        }
    }
    return *ptr ? NULL : j;
}

int sch__ref_lookup(struct sch_cc *cc, const char *uri, const char *from_path, const cJSON **target,
                    struct sch_loc *loc)
{
    const char *hash = strchr(uri, '#');
    const char *frag = hash ? hash + 1 : "";
    char *abs = core_arena_strndup(&cc->tmp, uri, hash ? (size_t)(hash - uri) : strlen(uri));
    const cJSON *t;
    loc->path = from_path;
    loc->base = abs;
    if (frag[0] && frag[0] != '/') {
        t = find_id(cc, uri);
        if (!t)
            return sch__fail(cc, from_path, "cannot resolve $ref \"%s\": no subschema has this $id",
                             uri);
    } else {
        const cJSON *res = find_id(cc, abs);
        if (!res)
            return sch__fail(cc, from_path,
                             "cannot resolve $ref \"%s\": \"%s\" is not this document or one of "
                             "its $ids (remote references are not fetched)",
                             uri, abs);
        char *ptr = percent_decode(&cc->tmp, frag);
        t = pointer_eval(&cc->tmp, res, ptr);
        if (!t)
            return sch__fail(cc, from_path, "cannot resolve $ref \"%s\": nothing at \"%s\"", uri,
                             ptr);
        const struct sch_loc *rl = sch__ptrmap_get(&cc->locs, res);
        if (rl) {
            size_t pl = strlen(rl->path), fl = strlen(ptr);
            char *p = core_arena_alloc(&cc->tmp, pl + fl + 1);
            memcpy(p, rl->path, pl);
            memcpy(p + pl, ptr, fl + 1);
            loc->path = p;
        }
    }
    const struct sch_loc *l = sch__ptrmap_get(&cc->locs, t);
    if (l)
        *loc = *l;
    *target = t;
    return 0;
}
