/*
 * Compiling a schema document: each subschema becomes one struct sch_node with its keyword
 * values checked and pre-digested (type masks, regexes, a hash table of the property names
 * the object keywords mention), then $refs are resolved to node pointers. Compiling reads
 * the caller's cJSON tree but keeps nothing of it: values for enum/const are copied.
 */
#include "schema/schema_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sch__fail(struct sch_cc *cc, const char *path, const char *fmt, ...)
{
    if (cc->err && !cc->failed) {
        char msg[768];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        core_buf_printf(cc->err, "%s: %s", path, msg);
    }
    cc->failed = true;
    return CORE_E_INVALID;
}

static int compile_node(struct sch_cc *cc, const cJSON *j, const char *path, const char *base,
                        int depth, struct sch_node **out);

/* The keyword being compiled and the node it belongs to. */
struct kw {
    struct sch_cc *cc;
    struct sch_node *n;
    const char *node_path;
    const char *path; /* the keyword's own location */
    const char *base;
    int depth;
    /* Turned into the node's name table once every keyword is seen. */
    const cJSON *properties, *required, *dependencies;
};

static struct core_arena *arena(struct kw *k)
{
    return &k->cc->s->arena;
}

static void add_code(struct schema *s, pcre2_code *re)
{
    if (s->n_codes == s->cap_codes) {
        s->cap_codes = s->cap_codes ? s->cap_codes * 2 : 8;
        s->codes = core_xrealloc(s->codes, s->cap_codes * sizeof *s->codes);
    }
    s->codes[s->n_codes++] = re;
}

/* ---- value checks -------------------------------------------------------------------------- */

static int want_number(struct kw *k, const cJSON *v, double *out)
{
    if (!cJSON_IsNumber(v))
        return sch__fail(k->cc, k->path, "must be a number");
    *out = v->valuedouble;
    return 0;
}

static int want_count(struct kw *k, const cJSON *v, uint64_t *out)
{
    double d = v->valuedouble;
    if (!cJSON_IsNumber(v) || !(d >= 0) || d != floor(d))
        return sch__fail(k->cc, k->path, "must be a non-negative integer");
    *out = d >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)d;
    return 0;
}

static int sub(struct kw *k, const cJSON *v, const char *path, struct sch_node **out)
{
    return compile_node(k->cc, v, path, k->base, k->depth + 1, out);
}

static int sub_list(struct kw *k, const cJSON *v, struct sch_list *out)
{
    int count = cJSON_GetArraySize(v);
    if (!cJSON_IsArray(v) || count == 0)
        return sch__fail(k->cc, k->path, "must be a non-empty array of schemas");
    out->v = core_arena_alloc(arena(k), (size_t)count * sizeof *out->v);
    out->n = 0;
    for (const cJSON *e = v->child; e; e = e->next) {
        const char *p = sch__path_index(&k->cc->tmp, k->path, out->n);
        int rc = sub(k, e, p, &out->v[out->n]);
        if (rc < 0)
            return rc;
        out->n++;
    }
    return 0;
}

/* ---- keywords for any instance --------------------------------------------------------------- */

static int type_bit(const char *name)
{
    static const char *const names[] = {"null",   "boolean", "object", "array",
                                        "number", "string",  "integer"};
    for (int i = 0; i < 7; i++)
        if (!strcmp(name, names[i]))
            return 1 << i;
    return 0;
}

static int kw_type(struct kw *k, const cJSON *v)
{
    if (cJSON_IsString(v)) {
        k->n->types = (uint8_t)type_bit(v->valuestring);
        if (!k->n->types)
            return sch__fail(k->cc, k->path, "unknown type \"%s\"", v->valuestring);
        return 0;
    }
    if (!cJSON_IsArray(v) || !v->child)
        return sch__fail(k->cc, k->path, "must be a type name or a non-empty array of them");
    for (const cJSON *e = v->child; e; e = e->next) {
        int bit = cJSON_IsString(e) ? type_bit(e->valuestring) : 0;
        if (!bit)
            return sch__fail(k->cc, k->path,
                             "unknown type in the list (expected null, boolean, "
                             "object, array, number, string or integer)");
        k->n->types |= (uint8_t)bit;
    }
    return 0;
}

static const char *preview(struct kw *k, const cJSON *v)
{
    char buf[96];
    sch__json_preview(v, buf, sizeof buf);
    return core_arena_strndup(arena(k), buf, strlen(buf));
}

static int kw_enum(struct kw *k, const cJSON *v)
{
    if (!cJSON_IsArray(v))
        return sch__fail(k->cc, k->path, "must be an array");
    k->n->enum_values = sch__json_copy(arena(k), v);
    k->n->enum_preview = preview(k, v);
    k->n->has |= SCH_HAS_ENUM;
    return 0;
}

static int kw_const(struct kw *k, const cJSON *v)
{
    k->n->const_value = sch__json_copy(arena(k), v);
    k->n->const_preview = preview(k, v);
    k->n->has |= SCH_HAS_CONST;
    return 0;
}

static int kw_combine(struct kw *k, const cJSON *v)
{
    const char *name = v->string;
    struct sch_node *n = k->n;
    n->has |= SCH_HAS_COMBINE;
    if (!strcmp(name, "allOf"))
        return sub_list(k, v, &n->all_of);
    if (!strcmp(name, "anyOf"))
        return sub_list(k, v, &n->any_of);
    if (!strcmp(name, "oneOf"))
        return sub_list(k, v, &n->one_of);
    if (!strcmp(name, "not"))
        return sub(k, v, k->path, &n->not_schema);
    if (!strcmp(name, "if"))
        return sub(k, v, k->path, &n->if_schema);
    if (!strcmp(name, "then"))
        return sub(k, v, k->path, &n->then_schema);
    return sub(k, v, k->path, &n->else_schema);
}

static int kw_definitions(struct kw *k, const cJSON *v)
{
    /* Compiled even when unused so that `schema check` reports their problems. */
    if (!cJSON_IsObject(v))
        return sch__fail(k->cc, k->path, "must be an object of schemas");
    for (const cJSON *e = v->child; e; e = e->next) {
        struct sch_node *unused;
        int rc = sub(k, e, sch__path_join(&k->cc->tmp, k->path, e->string), &unused);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- numbers and strings ------------------------------------------------------------------- */

static int kw_number(struct kw *k, const cJSON *v)
{
    const char *name = v->string;
    struct sch_node *n = k->n;
    n->has |= SCH_HAS_NUMBER;
    if (!strcmp(name, "minimum")) {
        n->has |= SCH_HAS_MINIMUM;
        return want_number(k, v, &n->minimum);
    }
    if (!strcmp(name, "maximum")) {
        n->has |= SCH_HAS_MAXIMUM;
        return want_number(k, v, &n->maximum);
    }
    if (!strcmp(name, "exclusiveMinimum")) {
        n->has |= SCH_HAS_EXMINIMUM;
        return want_number(k, v, &n->ex_minimum);
    }
    if (!strcmp(name, "exclusiveMaximum")) {
        n->has |= SCH_HAS_EXMAXIMUM;
        return want_number(k, v, &n->ex_maximum);
    }
    n->has |= SCH_HAS_MULTIPLE;
    int rc = want_number(k, v, &n->multiple_of);
    if (rc == 0 && !(n->multiple_of > 0 && isfinite(n->multiple_of)))
        return sch__fail(k->cc, k->path, "must be a number greater than 0");
    return rc;
}

static int kw_length(struct kw *k, const cJSON *v)
{
    k->n->has |= SCH_HAS_STRING;
    return want_count(k, v,
                      !strcmp(v->string, "minLength") ? &k->n->min_length : &k->n->max_length);
}

static int kw_pattern(struct kw *k, const cJSON *v)
{
    char why[256];
    if (!cJSON_IsString(v))
        return sch__fail(k->cc, k->path, "must be a string");
    pcre2_code *re = sch__regex_compile(v->valuestring, why, sizeof why);
    if (!re)
        return sch__fail(k->cc, k->path, "%s", why);
    add_code(k->cc->s, re);
    k->n->pattern = re;
    k->n->pattern_src = core_arena_strndup(arena(k), v->valuestring, strlen(v->valuestring));
    k->n->has |= SCH_HAS_STRING;
    return 0;
}

static int kw_format(struct kw *k, const cJSON *v)
{
    if (!cJSON_IsString(v))
        return sch__fail(k->cc, k->path, "must be a string");
    k->n->format = sch__format_parse(v->valuestring); /* unknown formats are ignored */
    if (k->n->format != SCH_FMT_NONE)
        k->n->has |= SCH_HAS_STRING;
    return 0;
}

/* Privacy annotations: they change no validation result, so they set no SCH_HAS_ bit. */
static int kw_privacy(struct kw *k, const cJSON *v)
{
    if (!strcmp(v->string, "x-pii")) {
        if (!cJSON_IsBool(v))
            return sch__fail(k->cc, k->path, "must be a boolean");
        k->n->pii = cJSON_IsTrue(v);
        return 0;
    }
    static const char *const classes[] = {"short", "standard", "long"};
    for (int i = 0; cJSON_IsString(v) && i < 3; i++) {
        if (!strcmp(v->valuestring, classes[i])) {
            k->n->retention = (int8_t)(i + 1);
            return 0;
        }
    }
    return sch__fail(k->cc, k->path, "must be \"short\", \"standard\" or \"long\"");
}

/* ---- arrays -------------------------------------------------------------------------------- */

static int kw_array(struct kw *k, const cJSON *v)
{
    const char *name = v->string;
    struct sch_node *n = k->n;
    n->has |= SCH_HAS_ARRAY;
    if (!strcmp(name, "items")) {
        if (!cJSON_IsArray(v))
            return sub(k, v, k->path, &n->items);
        n->has_tuple = true;
        if (!v->child)
            return 0; /* "items": [] constrains nothing, additionalItems everything */
        return sub_list(k, v, &n->tuple);
    }
    if (!strcmp(name, "additionalItems"))
        return sub(k, v, k->path, &n->additional_items);
    if (!strcmp(name, "contains"))
        return sub(k, v, k->path, &n->contains);
    if (!strcmp(name, "minItems"))
        return want_count(k, v, &n->min_items);
    if (!strcmp(name, "maxItems"))
        return want_count(k, v, &n->max_items);
    if (!cJSON_IsBool(v))
        return sch__fail(k->cc, k->path, "must be a boolean");
    n->unique_items = cJSON_IsTrue(v);
    return 0;
}

/* ---- objects ------------------------------------------------------------------------------- */

static int kw_object(struct kw *k, const cJSON *v)
{
    const char *name = v->string;
    struct sch_node *n = k->n;
    n->has |= SCH_HAS_OBJECT;
    if (!strcmp(name, "additionalProperties"))
        return sub(k, v, k->path, &n->additional_props);
    if (!strcmp(name, "propertyNames"))
        return sub(k, v, k->path, &n->property_names);
    if (!strcmp(name, "minProperties"))
        return want_count(k, v, &n->min_props);
    if (!strcmp(name, "maxProperties"))
        return want_count(k, v, &n->max_props);
    if (!strcmp(name, "required")) {
        for (const cJSON *e = v->child; e; e = e->next)
            if (!cJSON_IsString(e))
                return sch__fail(k->cc, k->path, "must be an array of strings");
        if (!cJSON_IsArray(v))
            return sch__fail(k->cc, k->path, "must be an array of strings");
        k->required = v;
        return 0;
    }
    if (!cJSON_IsObject(v))
        return sch__fail(k->cc, k->path, "must be an object");
    if (!strcmp(name, "properties"))
        k->properties = v;
    else
        k->dependencies = v;
    return 0;
}

static int kw_pattern_props(struct kw *k, const cJSON *v)
{
    struct sch_node *n = k->n;
    if (!cJSON_IsObject(v))
        return sch__fail(k->cc, k->path, "must be an object");
    n->has |= SCH_HAS_OBJECT;
    n->pprops = core_arena_alloc(arena(k), (size_t)cJSON_GetArraySize(v) * sizeof *n->pprops + 1);
    for (const cJSON *e = v->child; e; e = e->next) {
        char why[256];
        const char *p = sch__path_join(&k->cc->tmp, k->path, e->string);
        struct sch_pattern *pp = &n->pprops[n->n_pprops];
        pp->re = sch__regex_compile(e->string, why, sizeof why);
        if (!pp->re)
            return sch__fail(k->cc, p, "%s", why);
        add_code(k->cc->s, pp->re);
        pp->src = core_arena_strndup(arena(k), e->string, strlen(e->string));
        n->n_pprops++;
        int rc = sub(k, e, p, &pp->node);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The name table entry for name, added when missing. */
static struct sch_name *name_entry(struct kw *k, const char *name)
{
    struct sch_names *t = &k->n->names;
    size_t len = strlen(name);
    const struct sch_name *found = sch__names_find(t, name, len);
    if (found)
        return &t->v[found - t->v];
    struct sch_name *e = &t->v[t->n];
    e->name = core_arena_strndup(arena(k), name, len);
    e->len = (uint32_t)len;
    e->hash = sch__name_hash(name, len);
    e->prop = NULL;
    e->req = e->dep = -1;
    uint32_t i = e->hash & t->mask;
    while (t->slots[i])
        i = (i + 1) & t->mask;
    t->slots[i] = ++t->n;
    return e;
}

static int build_required(struct kw *k)
{
    struct sch_node *n = k->n;
    n->required = core_arena_alloc(arena(k), (size_t)cJSON_GetArraySize(k->required) * 4 + 4);
    for (const cJSON *e = k->required->child; e; e = e->next) {
        struct sch_name *ne = name_entry(k, e->valuestring);
        if (ne->req >= 0)
            continue; /* listed twice */
        ne->req = (int32_t)n->n_required;
        n->required[n->n_required++] = (uint32_t)(ne - n->names.v);
    }
    return 0;
}

static int build_deps(struct kw *k)
{
    struct sch_node *n = k->n;
    const char *dpath = sch__path_join(&k->cc->tmp, k->node_path, "dependencies");
    n->deps =
        core_arena_alloc(arena(k), (size_t)cJSON_GetArraySize(k->dependencies) * sizeof *n->deps);
    for (const cJSON *e = k->dependencies->child; e; e = e->next) {
        struct sch_dep *d = &n->deps[n->n_deps];
        memset(d, 0, sizeof *d);
        d->name = core_arena_strndup(arena(k), e->string, strlen(e->string));
        const char *p = sch__path_join(&k->cc->tmp, dpath, e->string);
        if (cJSON_IsArray(e)) {
            d->required = core_arena_alloc(arena(k), (size_t)cJSON_GetArraySize(e) * 8 + 8);
            for (const cJSON *r = e->child; r; r = r->next) {
                if (!cJSON_IsString(r))
                    return sch__fail(k->cc, p, "must be a schema or an array of strings");
                d->required[d->n_required++] =
                    core_arena_strndup(arena(k), r->valuestring, strlen(r->valuestring));
            }
        } else {
            int rc = sub(k, e, p, &d->schema);
            if (rc < 0)
                return rc;
        }
        struct sch_name *ne = name_entry(k, e->string);
        if (ne->dep < 0)
            ne->dep = (int32_t)n->n_deps;
        n->n_deps++;
    }
    return 0;
}

/* Builds the node's name table from properties, required and dependencies. */
static int build_names(struct kw *k)
{
    int count = cJSON_GetArraySize(k->properties) + cJSON_GetArraySize(k->required) +
                cJSON_GetArraySize(k->dependencies);
    if (count == 0)
        return 0;
    struct sch_names *t = &k->n->names;
    uint32_t cap = 8;
    while (cap < (uint32_t)count * 2)
        cap *= 2;
    t->v = core_arena_alloc(arena(k), (size_t)count * sizeof *t->v);
    t->slots = core_arena_alloc(arena(k), cap * sizeof *t->slots);
    memset(t->slots, 0, cap * sizeof *t->slots);
    t->mask = cap - 1;
    const char *ppath = sch__path_join(&k->cc->tmp, k->node_path, "properties");
    for (const cJSON *e = k->properties ? k->properties->child : NULL; e; e = e->next) {
        struct sch_node *child = NULL;
        int rc = sub(k, e, sch__path_join(&k->cc->tmp, ppath, e->string), &child);
        if (rc < 0)
            return rc;
        name_entry(k, e->string)->prop = child;
    }
    int rc = k->required ? build_required(k) : 0;
    if (rc == 0 && k->dependencies)
        rc = build_deps(k);
    return rc;
}

/* ---- nodes --------------------------------------------------------------------------------- */

struct kw_def {
    const char *name;
    int (*fn)(struct kw *k, const cJSON *v);
};

static const struct kw_def keywords[] = {
    {"type", kw_type},
    {"enum", kw_enum},
    {"const", kw_const},
    {"allOf", kw_combine},
    {"anyOf", kw_combine},
    {"oneOf", kw_combine},
    {"not", kw_combine},
    {"if", kw_combine},
    {"then", kw_combine},
    {"else", kw_combine},
    {"definitions", kw_definitions},
    {"minimum", kw_number},
    {"maximum", kw_number},
    {"exclusiveMinimum", kw_number},
    {"exclusiveMaximum", kw_number},
    {"multipleOf", kw_number},
    {"minLength", kw_length},
    {"maxLength", kw_length},
    {"pattern", kw_pattern},
    {"format", kw_format},
    {"items", kw_array},
    {"additionalItems", kw_array},
    {"contains", kw_array},
    {"minItems", kw_array},
    {"maxItems", kw_array},
    {"uniqueItems", kw_array},
    {"properties", kw_object},
    {"required", kw_object},
    {"dependencies", kw_object},
    {"additionalProperties", kw_object},
    {"propertyNames", kw_object},
    {"minProperties", kw_object},
    {"maxProperties", kw_object},
    {"patternProperties", kw_pattern_props},
    {"x-pii", kw_privacy},
    {"x-retention", kw_privacy},
};

static struct sch_node *node_new(struct sch_cc *cc, const char *path)
{
    struct sch_node *n = core_arena_alloc(&cc->s->arena, sizeof *n);
    memset(n, 0, sizeof *n);
    n->path = core_arena_strndup(&cc->s->arena, path, strlen(path));
    n->boolean = -1;
    n->max_length = n->max_items = n->max_props = UINT64_MAX;
    return n;
}

/* Whether a member with m's name comes before m in its object (cJSON keeps duplicates). */
static bool seen_before(const cJSON *j, const cJSON *m)
{
    for (const cJSON *e = j->child; e != m; e = e->next)
        if (e->string && !strcmp(e->string, m->string))
            return true;
    return false;
}

static int compile_keywords(struct sch_cc *cc, struct sch_node *n, const cJSON *j, const char *base,
                            int depth)
{
    struct kw k = {.cc = cc, .n = n, .node_path = n->path, .depth = depth};
    int rc = sch__apply_id(cc, j, n->path, base, false, &k.base);
    for (const cJSON *m = j->child; m && rc == 0; m = m->next) {
        for (size_t i = 0; m->string && i < sizeof keywords / sizeof *keywords; i++) {
            if (strcmp(m->string, keywords[i].name) != 0)
                continue;
            k.path = sch__path_join(&cc->tmp, n->path, m->string);
            if (seen_before(j, m))
                return sch__fail(cc, k.path, "keyword appears twice in the same schema");
            rc = keywords[i].fn(&k, m);
            break;
        }
    }
    return rc < 0 ? rc : build_names(&k);
}

static void add_pending_ref(struct sch_cc *cc, struct sch_node *n, const char *uri)
{
    if (cc->n_refs == cc->cap_refs) {
        cc->cap_refs = cc->cap_refs ? cc->cap_refs * 2 : 16;
        cc->refs = core_xrealloc(cc->refs, cc->cap_refs * sizeof *cc->refs);
    }
    cc->refs[cc->n_refs].node = n;
    cc->refs[cc->n_refs].uri = uri;
    cc->n_refs++;
}

static int compile_node(struct sch_cc *cc, const cJSON *j, const char *path, const char *base,
                        int depth, struct sch_node **out)
{
    struct sch_node *n = sch__ptrmap_get(&cc->nodes, j);
    if (n) {
        *out = n;
        return 0;
    }
    if (depth > SCHEMA_MAX_NESTING)
        return sch__fail(cc, path, "schema nested deeper than %d levels", SCHEMA_MAX_NESTING);
    if (!cJSON_IsObject(j) && !cJSON_IsBool(j))
        return sch__fail(cc, path, "a schema must be an object or a boolean");
    n = node_new(cc, path);
    sch__ptrmap_put(&cc->nodes, j, n); /* before the children: recursion finds it */
    *out = n;
    if (cJSON_IsBool(j)) {
        n->boolean = cJSON_IsTrue(j) ? 1 : 0;
        return 0;
    }
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(j, "$ref");
    if (ref) {
        /* draft-07: every sibling of $ref is ignored */
        if (!cJSON_IsString(ref))
            return sch__fail(cc, sch__path_join(&cc->tmp, path, "$ref"), "must be a string");
        add_pending_ref(cc, n, sch__uri_resolve(&cc->tmp, base, ref->valuestring));
        return 0;
    }
    return compile_keywords(cc, n, j, base, depth);
}

/* Resolves $refs (compiling their targets, which may add more) and refuses cycles of pure
 * references, which would loop without consuming any input. */
static int resolve_refs(struct sch_cc *cc)
{
    for (size_t i = 0; i < cc->n_refs; i++) {
        struct sch_pending_ref pr = cc->refs[i];
        const cJSON *target;
        struct sch_loc loc;
        const char *rpath = sch__path_join(&cc->tmp, pr.node->path, "$ref");
        int rc = sch__ref_lookup(cc, pr.uri, rpath, &target, &loc);
        if (rc == 0)
            rc = compile_node(cc, target, loc.path, loc.base, 0, &pr.node->ref);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < cc->n_refs; i++) {
        const struct sch_node *n = cc->refs[i].node;
        for (size_t hops = 0; n->ref; hops++) {
            if (hops > cc->n_refs)
                return sch__fail(cc, sch__path_join(&cc->tmp, cc->refs[i].node->path, "$ref"),
                                 "$ref cycle: the reference leads back to itself");
            n = n->ref;
        }
    }
    return 0;
}

int schema_compile(const cJSON *doc, const char *base_uri, struct schema **out,
                   struct core_buf *err)
{
    if (!doc || !out)
        return CORE_E_INVALID;
    struct schema *s = core_xcalloc(1, sizeof *s);
    core_arena_init(&s->arena);
    s->mctx = pcre2_match_context_create(NULL);
    if (!s->mctx) {
        fprintf(stderr, "recstream: out of memory (pcre2 match context)\n");
        abort();
    }
    /* Bounds backtracking so a pathological pattern cannot stall a validating thread. */
    pcre2_set_match_limit(s->mctx, SCH_MATCH_LIMIT);
    pcre2_set_depth_limit(s->mctx, 10000);
    struct sch_cc cc = {.s = s, .err = err};
    core_arena_init(&cc.tmp);
    int rc = sch__ids_collect(&cc, doc, base_uri ? base_uri : "");
    if (rc == 0) {
        const struct sch_loc *loc = sch__ptrmap_get(&cc.locs, doc);
        rc = compile_node(&cc, doc, "#", loc ? loc->base : "", 0, &s->root);
    }
    if (rc == 0)
        rc = resolve_refs(&cc);
    sch__ptrmap_dispose(&cc.nodes);
    sch__ptrmap_dispose(&cc.locs);
    free(cc.ids);
    free(cc.refs);
    core_arena_dispose(&cc.tmp);
    if (rc < 0) {
        schema_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void schema_free(struct schema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_codes; i++)
        pcre2_code_free(s->codes[i]);
    free(s->codes);
    pcre2_match_context_free(s->mctx);
    core_arena_dispose(&s->arena);
    free(s);
}
