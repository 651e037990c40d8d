/* JSON helpers for the compatibility proof: keyword access, hash sets over long lists,
 * local JSON pointers. */
#include "schema/registry_compat_int.h"

#include <stdlib.h>
#include <string.h>

const cJSON *reg__kw(const cJSON *s, const char *name)
{
    return cJSON_IsObject(s) ? cJSON_GetObjectItemCaseSensitive(s, name) : NULL;
}

bool reg__num_kw(const cJSON *s, const char *name, double *v)
{
    const cJSON *j = reg__kw(s, name);
    if (!cJSON_IsNumber(j))
        return false;
    *v = j->valuedouble;
    return true;
}

bool reg__is_true(const cJSON *s)
{
    return !s || cJSON_IsTrue(s);
}

bool reg__has_ref(const cJSON *j)
{
    for (const cJSON *e = j ? j->child : NULL; e; e = e->next) {
        if ((e->string && !strcmp(e->string, "$ref") && cJSON_IsString(e)) || reg__has_ref(e))
            return true;
    }
    return false;
}

/* True unless some subschema below the root has an "$id" that changes the base URI. */
bool reg__refs_resolve_locally(const cJSON *j, bool root)
{
    for (const cJSON *e = j ? j->child : NULL; e; e = e->next) {
        if (!root && e->string && !strcmp(e->string, "$id") && cJSON_IsString(e) &&
            e->valuestring[0] != '#')
            return false;
        if (!reg__refs_resolve_locally(e, false))
            return false;
    }
    return true;
}

bool reg__str_in(const cJSON *arr, const char *s)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        if (cJSON_IsString(e) && !strcmp(e->valuestring, s))
            return true;
    }
    return false;
}

bool reg__value_in(const cJSON *arr, const cJSON *v)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        if (sch__json_equal(e, v))
            return true;
    }
    return false;
}

static const char *vset_name(enum vset_kind kind, const cJSON *e)
{
    if (kind == VSET_MEMBERS)
        return e->string;
    return cJSON_IsString(e) ? e->valuestring : NULL;
}

static uint64_t vset_hash(enum vset_kind kind, const cJSON *e, const char *name)
{
    if (kind == VSET_VALUES)
        return sch__json_hash(e);
    return name ? XXH3_64bits(name, strlen(name)) : 0;
}

/* Probes for an entry equal to e (VSET_VALUES) or named name; returns its slot. */
static uint32_t vset_slot(const struct vset *s, const cJSON *e, const char *name)
{
    uint64_t h = vset_hash(s->kind, e, name);
    for (uint32_t i = (uint32_t)h & s->mask;; i = (i + 1) & s->mask) {
        const cJSON *k = s->slots[i];
        if (!k)
            return i;
        if (s->kind == VSET_VALUES ? sch__json_equal(k, e) : !strcmp(vset_name(s->kind, k), name))
            return i;
    }
}

void reg__vset_init(struct vset *s, const cJSON *j, enum vset_kind kind)
{
    uint32_t cap = 8;
    while (cap < 2u * (uint32_t)cJSON_GetArraySize(j))
        cap *= 2;
    *s = (struct vset){kind, core_xcalloc(cap, sizeof *s->slots), cap - 1};
    const cJSON *e;
    cJSON_ArrayForEach(e, j)
    {
        const char *name = vset_name(kind, e);
        if (kind != VSET_VALUES && !name)
            continue;
        uint32_t i = vset_slot(s, e, name);
        if (!s->slots[i])
            s->slots[i] = e;
    }
}

void reg__vset_dispose(struct vset *s)
{
    free(s->slots);
}

const cJSON *reg__vset_get(const struct vset *s, const char *name)
{
    return s->slots[vset_slot(s, NULL, name)];
}

bool reg__vset_has(const struct vset *s, const cJSON *value)
{
    return s->slots[vset_slot(s, value, NULL)] != NULL;
}

void reg__preview(const cJSON *j, char *out, size_t size)
{
    sch__json_preview(j, out, size);
}

/* The subschema a "#..." JSON pointer names in root, or NULL. */
const cJSON *reg__pointer_get(const cJSON *root, const char *ref)
{
    if (ref[0] != '#')
        return NULL;
    const cJSON *at = root;
    const char *p = ref + 1;
    char tok[256];
    while (*p) {
        if (*p != '/')
            return NULL;
        size_t n = 0;
        for (p++; *p && *p != '/'; p++) {
            char ch = *p;
            if (ch == '%' && p[1] && p[2]) {
                char hex[3] = {p[1], p[2], 0};
                char *end;
                ch = (char)strtol(hex, &end, 16);
                if (*end)
                    return NULL;
                p += 2;
            } else if (ch == '~') {
                if (p[1] != '0' && p[1] != '1')
                    return NULL;
                ch = p[1] == '0' ? '~' : '/';
                p++;
            }
            if (n + 1 >= sizeof tok)
                return NULL;
            tok[n++] = ch;
        }
        tok[n] = '\0';
        if (cJSON_IsArray(at)) {
            int64_t i;
            if (core_parse_i64(tok, 0, INT32_MAX, &i) < 0)
                return NULL;
            at = cJSON_GetArrayItem(at, (int)i);
        } else {
            at = cJSON_IsObject(at) ? cJSON_GetObjectItemCaseSensitive(at, tok) : NULL;
        }
        if (!at)
            return NULL;
    }
    return at;
}
