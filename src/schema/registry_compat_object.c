/* The compatibility proof for the structure keywords: array items and object properties. */
#include "schema/registry_compat_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- arrays -------------------------------------------------------------------------------- */

/* items as a tuple: leading positions, then one schema for every later item. */
struct tuple {
    const cJSON *list; /* array of schemas, or NULL */
    const cJSON *rest; /* NULL = true */
    const char *rest_kw;
};

static struct tuple tuple_of(const cJSON *s)
{
    const cJSON *items = reg__kw(s, "items");
    if (cJSON_IsArray(items))
        return (struct tuple){items, reg__kw(s, "additionalItems"), "additionalItems"};
    return (struct tuple){NULL, items, "items"};
}

void reg__check_arrays(struct compat *c, const cJSON *a, const cJSON *b)
{
    c->idepth++; /* every subschema here applies to items */
    struct tuple ta = tuple_of(a), tb = tuple_of(b);
    /* Walk both tuples together: cJSON_GetArrayItem would make long tuples quadratic. */
    const cJSON *ea = ta.list ? ta.list->child : NULL, *eb = tb.list ? tb.list->child : NULL;
    for (size_t i = 0; (ea || eb) && !reg__stopped(c); i++) {
        const cJSON *as = ea ? ea : ta.rest;
        if (eb) {
            size_t mark = reg__path_push_index(c, "items", i);
            reg__cmp(c, as, eb);
            reg__path_pop(c, mark);
        } else if (tb.rest) {
            reg__cmp_at(c, tb.rest_kw, as, tb.rest);
        }
        ea = ea ? ea->next : NULL;
        eb = eb ? eb->next : NULL;
    }
    if (tb.rest)
        reg__cmp_at(c, tb.rest_kw, ta.rest, tb.rest);
    const cJSON *bc = reg__kw(b, "contains");
    if (bc) {
        if (reg__kw(a, "contains"))
            reg__cmp_at(c, "contains", reg__kw(a, "contains"), bc);
        else
            reg__reason(c, "contains added");
    }
    c->idepth--;
    reg__check_count(c, a, b, "minItems", false);
    reg__check_count(c, a, b, "maxItems", true);
    if (cJSON_IsTrue(reg__kw(b, "uniqueItems")) && !cJSON_IsTrue(reg__kw(a, "uniqueItems")))
        reg__reason(c, "uniqueItems added");
}

/* ---- objects ------------------------------------------------------------------------------- */

struct pat {
    const char *src;
    pcre2_code *re;
    const cJSON *schema;
};

/* One side's property keywords, with its patternProperties compiled for matching. */
struct props {
    const cJSON *props, *addl;
    struct vset names; /* of props */
    struct pat *pats;
    size_t n_pats;
    bool bad; /* a pattern did not compile or match */
    pcre2_match_data *md;
};

static void props_init(struct props *p, const cJSON *s)
{
    const cJSON *pp = reg__kw(s, "patternProperties"), *e;
    *p = (struct props){.props = reg__kw(s, "properties"),
                        .addl = reg__kw(s, "additionalProperties")};
    reg__vset_init(&p->names, p->props, VSET_MEMBERS);
    int n = cJSON_GetArraySize(pp);
    if (n <= 0)
        return;
    p->pats = core_xcalloc((size_t)n, sizeof *p->pats);
    p->md = pcre2_match_data_create(1, NULL);
    cJSON_ArrayForEach(e, pp)
    {
        char why[160];
        struct pat *t = &p->pats[p->n_pats++];
        *t = (struct pat){e->string, sch__regex_compile(e->string, why, sizeof why), e};
        p->bad |= t->re == NULL;
    }
}

static void props_dispose(struct props *p)
{
    for (size_t i = 0; i < p->n_pats; i++)
        pcre2_code_free(p->pats[i].re);
    free(p->pats);
    pcre2_match_data_free(p->md);
    reg__vset_dispose(&p->names);
}

static bool pat_matches(struct props *p, const struct pat *t, const char *name)
{
    int rc = pcre2_match(t->re, (PCRE2_SPTR)name, strlen(name), 0, 0, p->md, NULL);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH)
        p->bad = true;
    return rc >= 0;
}

static const struct pat *pat_find(const struct props *p, const char *src)
{
    for (size_t i = 0; i < p->n_pats; i++) {
        if (!strcmp(p->pats[i].src, src))
            return &p->pats[i];
    }
    return NULL;
}

/* The schemas that apply to a property called name; at least one (NULL = true). */
static size_t constraints(struct props *p, const char *name, const cJSON **out)
{
    size_t n = 0;
    const cJSON *own = reg__vset_get(&p->names, name);
    if (own)
        out[n++] = own;
    for (size_t i = 0; i < p->n_pats; i++) {
        if (pat_matches(p, &p->pats[i], name))
            out[n++] = p->pats[i].schema;
    }
    if (n == 0)
        out[n++] = p->addl;
    return n;
}

/* A property either side lists by name. */
static void check_named(struct compat *c, struct props *pa, struct props *pb, const char *name)
{
    const cJSON **as = core_xcalloc(pa->n_pats + 1, sizeof *as);
    const cJSON **bs = core_xcalloc(pb->n_pats + 1, sizeof *bs);
    size_t na = constraints(pa, name, as), nb = constraints(pb, name, bs);
    size_t mark = reg__path_push2(c, "properties", name);
    for (size_t j = 0; j < nb && !reg__stopped(c); j++) {
        if (reg__is_true(bs[j]))
            continue;
        if (cJSON_IsFalse(bs[j]) && bs[j] == pb->addl && reg__vset_get(&pa->names, name)) {
            reg__reason(c, "property removed while additionalProperties is false");
            continue;
        }
        if (na == 1 && reg__is_true(as[0]) && as[0] == pa->addl &&
            !reg__vset_get(&pa->names, name)) {
            /* SchemaVer's "add an optional property" is an ADDITION only where unknown
             * properties were refused: otherwise old events may carry it with any value. */
            if (!reg__holds(c, NULL, bs[j], false))
                reg__reason(c, "new property constrains a value the old schema allowed "
                               "(additionalProperties was not false)");
            continue;
        }
        bool ok = false;
        for (size_t i = 0; na > 1 && i < na && !ok; i++)
            ok = reg__holds(c, as[i], bs[j], false);
        if (!ok)
            reg__cmp(c, as[0], bs[j]);
    }
    reg__path_pop(c, mark);
    free(as);
    free(bs);
}

/* Properties neither side lists: patternProperties by pattern, then additionalProperties. */
static void check_unnamed(struct compat *c, struct props *pa, struct props *pb)
{
    for (size_t k = 0; k < pb->n_pats && !reg__stopped(c); k++) {
        const struct pat *tb = &pb->pats[k], *ta = pat_find(pa, tb->src);
        size_t mark = reg__path_push2(c, "patternProperties", tb->src);
        if (ta) {
            reg__cmp(c, ta->schema, tb->schema);
        } else if (!reg__is_true(tb->schema)) {
            bool ok = reg__holds(c, pa->addl, tb->schema, false);
            for (size_t i = 0; ok && i < pa->n_pats; i++)
                ok = reg__holds(c, pa->pats[i].schema, tb->schema, false);
            if (!ok)
                reg__reason(c, "new pattern property constrains properties allowed before");
        }
        reg__path_pop(c, mark);
    }
    if (reg__is_true(pb->addl))
        return;
    size_t mark = reg__path_push(c, "additionalProperties");
    if (cJSON_IsFalse(pb->addl) && !cJSON_IsFalse(pa->addl))
        reg__reason(c, "additional properties are no longer allowed");
    else
        reg__cmp(c, pa->addl, pb->addl);
    for (size_t i = 0; i < pa->n_pats && !reg__stopped(c); i++) {
        if (!pat_find(pb, pa->pats[i].src) && !reg__holds(c, pa->pats[i].schema, pb->addl, false))
            reg__reason(c,
                        "cannot prove compatible: properties matching the removed pattern %.100s "
                        "now fall under additionalProperties",
                        pa->pats[i].src);
    }
    reg__path_pop(c, mark);
}

static void check_properties(struct compat *c, const cJSON *a, const cJSON *b)
{
    struct props pa, pb;
    props_init(&pa, a);
    props_init(&pb, b);
    const cJSON *e;
    cJSON_ArrayForEach(e, pa.props)
    {
        check_named(c, &pa, &pb, e->string);
    }
    cJSON_ArrayForEach(e, pb.props)
    {
        if (!reg__vset_get(&pa.names, e->string))
            check_named(c, &pa, &pb, e->string);
    }
    check_unnamed(c, &pa, &pb);
    if (pa.bad || pb.bad)
        reg__reason(c, "cannot prove compatible: a patternProperties pattern could not be matched");
    props_dispose(&pa);
    props_dispose(&pb);
}

static void check_dependencies(struct compat *c, const cJSON *a, const cJSON *b)
{
    const cJSON *bd = reg__kw(b, "dependencies"), *e, *n;
    cJSON_ArrayForEach(e, bd)
    {
        const cJSON *ad = reg__kw(reg__kw(a, "dependencies"), e->string);
        size_t mark = reg__path_push2(c, "dependencies", e->string);
        if (cJSON_IsArray(e)) {
            cJSON_ArrayForEach(n, e)
            {
                if (cJSON_IsString(n) && !(cJSON_IsArray(ad) && reg__str_in(ad, n->valuestring)) &&
                    !reg__str_in(reg__kw(a, "required"), n->valuestring))
                    reg__reason(c, "now requires property \"%.100s\"", n->valuestring);
            }
        } else if (ad && !cJSON_IsArray(ad)) {
            reg__cmp(c, ad, e);
        } else if (!reg__holds(c, NULL, e, false)) {
            reg__reason(c, "cannot prove compatible: dependency schema added");
        }
        reg__path_pop(c, mark);
    }
}

void reg__check_objects(struct compat *c, const cJSON *a, const cJSON *b)
{
    const cJSON *e;
    struct vset was;
    reg__vset_init(&was, reg__kw(a, "required"), VSET_STRINGS);
    cJSON_ArrayForEach(e, reg__kw(b, "required"))
    {
        if (cJSON_IsString(e) && !reg__vset_get(&was, e->valuestring)) {
            size_t mark = reg__path_push2(c, "properties", e->valuestring);
            reg__reason(c, "property \"%.100s\" is now required", e->valuestring);
            reg__path_pop(c, mark);
        }
    }
    reg__vset_dispose(&was);
    c->idepth++; /* property values and names are one level into the instance */
    check_properties(c, a, b);
    const cJSON *bn = reg__kw(b, "propertyNames");
    if (bn)
        reg__cmp_at(c, "propertyNames", reg__kw(a, "propertyNames"), bn);
    c->idepth--;
    reg__check_count(c, a, b, "minProperties", false);
    reg__check_count(c, a, b, "maxProperties", true);
    check_dependencies(c, a, b);
}
