/*
 * Validation: a walk over the compiled tree alongside the instance. Keyword groups that do
 * not apply to the instance's type are skipped with one bit test; object members are matched
 * to their subschemas through the node's name table; required names are ticked off in a
 * bitmask during the same pass. Nothing here allocates unless an error is being reported
 * (or uniqueItems meets an array longer than 32 items).
 *
 * Every check function returns whether the instance passed. In a collecting evaluation it
 * keeps going after a failure to find every error; in a quiet one it returns at the first.
 */
#include "schema/schema_int.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool v_node(const struct sch_vctx *c, const struct sch_node *n, const cJSON *j,
                   const struct sch_ipath *at);

static struct sch_vctx quiet(const struct sch_vctx *c)
{
    struct sch_vctx q = *c;
    q.errs = NULL;
    return q;
}

/* Ends the whole validation: records why (even from inside a quiet evaluation). */
static bool stop(const struct sch_vctx *c, const struct sch_node *n, const struct sch_ipath *at,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static bool stop(const struct sch_vctx *c, const struct sch_node *n, const struct sch_ipath *at,
                 const char *fmt, ...)
{
    if (!c->st->aborted) {
        struct sch_vctx r = *c;
        r.errs = c->st->errs;
        char msg[128];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        sch__report(&r, n, "limit", at, NULL, "validation stopped: %s", msg);
        c->st->aborted = true;
    }
    return false;
}

static bool is_integer(double v)
{
    if (fabs(v) < 9.0e18)
        return v == (double)(int64_t)v;
    return isfinite(v); /* every double this large is a whole number */
}

static bool type_ok(uint8_t types, const cJSON *j)
{
    switch (j->type & 0xff) {
    case cJSON_NULL:
        return types & SCH_T_NULL;
    case cJSON_False:
    case cJSON_True:
        return types & SCH_T_BOOLEAN;
    case cJSON_Object:
        return types & SCH_T_OBJECT;
    case cJSON_Array:
        return types & SCH_T_ARRAY;
    case cJSON_String:
        return types & SCH_T_STRING;
    case cJSON_Number:
        return (types & SCH_T_NUMBER) || ((types & SCH_T_INTEGER) && is_integer(j->valuedouble));
    default:
        return false;
    }
}

static bool fail_type(const struct sch_vctx *c, const struct sch_node *n, const cJSON *j,
                      const struct sch_ipath *at)
{
    static const char *const names[] = {"null",   "boolean", "object", "array",
                                        "number", "string",  "integer"};
    char list[96];
    size_t w = 0;
    for (int i = 0; i < 7; i++) {
        if (!(n->types & (1 << i)))
            continue;
        int k = snprintf(list + w, sizeof list - w, "%s\"%s\"", w ? " or " : "", names[i]);
        if (k > 0 && (size_t)k < sizeof list - w)
            w += (size_t)k;
    }
    return sch__report(c, n, "type", at, j, "is not of type %s", list);
}

/* ---- enum, const, numbers, strings --------------------------------------------------------- */

static bool v_enum_const(const struct sch_vctx *c, const struct sch_node *n, const cJSON *j,
                         const struct sch_ipath *at)
{
    bool ok = true;
    if (n->has & SCH_HAS_ENUM) {
        const cJSON *e = n->enum_values->child;
        while (e && !sch__json_equal(e, j))
            e = e->next;
        if (!e) {
            ok = false;
            if (!sch__report(c, n, "enum", at, j, "is not one of %s", n->enum_preview))
                return false;
        }
    }
    if ((n->has & SCH_HAS_CONST) && !sch__json_equal(n->const_value, j)) {
        ok = false;
        sch__report(c, n, "const", at, j, "is not equal to the constant %s", n->const_preview);
    }
    return ok;
}

/*
 * v is a multiple of m when v / m is a whole number up to floating point error: the quotient
 * of two decimals such as 0.0075 / 0.0001 comes out as 74.99999999999999. The tolerance is a
 * few units in the last place of the quotient, far below any real fraction.
 */
static bool is_multiple(double v, double m)
{
    double q = v / m;
    if (!isfinite(q))
        return false;
    return fabs(q - round(q)) <= 16 * DBL_EPSILON * fmax(1.0, fabs(q));
}

static bool num_fail(const struct sch_vctx *c, const struct sch_node *n, const char *kw,
                     const struct sch_ipath *at, const cJSON *j, const char *what, double limit)
{
    char num[40];
    sch__num_format(limit, num, sizeof num);
    return sch__report(c, n, kw, at, j, "%s %s", what, num);
}

static bool v_number(const struct sch_vctx *c, const struct sch_node *n, const cJSON *j,
                     const struct sch_ipath *at)
{
    double v = j->valuedouble;
    uint32_t has = n->has;
    bool ok = true;
    if ((has & SCH_HAS_MINIMUM) && v < n->minimum) {
        ok = false;
        if (!num_fail(c, n, "minimum", at, j, "is less than the minimum of", n->minimum))
            return false;
    }
    if ((has & SCH_HAS_MAXIMUM) && v > n->maximum) {
        ok = false;
        if (!num_fail(c, n, "maximum", at, j, "is greater than the maximum of", n->maximum))
            return false;
    }
    if ((has & SCH_HAS_EXMINIMUM) && v <= n->ex_minimum) {
        ok = false;
        if (!num_fail(c, n, "exclusiveMinimum", at, j,
                      "is less than or equal to the exclusive minimum of", n->ex_minimum))
            return false;
    }
    if ((has & SCH_HAS_EXMAXIMUM) && v >= n->ex_maximum) {
        ok = false;
        if (!num_fail(c, n, "exclusiveMaximum", at, j,
                      "is greater than or equal to the exclusive maximum of", n->ex_maximum))
            return false;
    }
    if ((has & SCH_HAS_MULTIPLE) && !is_multiple(v, n->multiple_of)) {
        ok = false;
        num_fail(c, n, "multipleOf", at, j, "is not a multiple of", n->multiple_of);
    }
    return ok;
}

static bool v_string(const struct sch_vctx *c, const struct sch_node *n, const cJSON *j,
                     const struct sch_ipath *at)
{
    const char *s = j->valuestring;
    size_t len = strlen(s);
    bool ok = true;
    /* Code points never outnumber bytes, so a short enough string needs no counting. */
    if (n->min_length > 0 || len > n->max_length) {
        size_t cp = sch__utf8_count(s, len);
        if (cp < n->min_length) {
            ok = false;
            if (!sch__report(c, n, "minLength", at, j, "is shorter than %llu characters",
                             (unsigned long long)n->min_length))
                return false;
        }
        if (cp > n->max_length) {
            ok = false;
            if (!sch__report(c, n, "maxLength", at, j, "is longer than %llu characters",
                             (unsigned long long)n->max_length))
                return false;
        }
    }
    if (n->pattern) {
        int rc = sch__regex_search(c->s, n->pattern, s, len);
        if (rc < 0)
            return stop(c, n, at, "a pattern hit the pcre2 match limit (%u steps)",
                        SCH_MATCH_LIMIT);
        if (rc == 0) {
            ok = false;
            if (!sch__report(c, n, "pattern", at, j, "does not match the pattern \"%s\"",
                             n->pattern_src))
                return false;
        }
    }
    if (n->format != SCH_FMT_NONE && !sch__format_check(n->format, s, len)) {
        ok = false;
        sch__report(c, n, "format", at, j, "is not a valid \"%s\"", sch__format_name(n->format));
    }
    return ok;
}

/* ---- arrays -------------------------------------------------------------------------------- */

struct hashed_item {
    uint64_t hash;
    size_t index;
    const cJSON *item;
};

static int cmp_hashed(const void *a, const void *b)
{
    const struct hashed_item *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Finds two equal items; pairwise for short arrays, through sorted hashes for long ones. */
static bool find_duplicate(const cJSON *arr, size_t count, size_t *first, size_t *second)
{
    if (count <= 32) {
        size_t i = 0;
        for (const cJSON *a = arr->child; a; a = a->next, i++) {
            size_t k = i + 1;
            for (const cJSON *b = a->next; b; b = b->next, k++) {
                if (sch__json_equal(a, b)) {
                    *first = i;
                    *second = k;
                    return true;
                }
            }
        }
        return false;
    }
    struct hashed_item *v = core_xmalloc(count * sizeof *v);
    size_t i = 0;
    for (const cJSON *a = arr->child; a; a = a->next, i++)
        v[i] = (struct hashed_item){sch__json_hash(a), i, a};
    qsort(v, count, sizeof *v, cmp_hashed);
    bool found = false;
    for (i = 0; i < count && !found; i++)
        for (size_t k = i + 1; k < count && v[k].hash == v[i].hash && !found; k++)
            if (sch__json_equal(v[i].item, v[k].item)) {
                *first = v[i].index;
                *second = v[k].index;
                found = true;
            }
    free(v);
    return found;
}

static bool v_items(const struct sch_vctx *c, const struct sch_node *n, const cJSON *j,
                    const struct sch_ipath *at, size_t *count, bool *contained)
{
    struct sch_vctx q = quiet(c);
    bool ok = true;
    size_t i = 0;
    for (const cJSON *e = j->child; e; e = e->next, i++) {
        struct sch_ipath p = {at, NULL, i};
        bool extra = n->has_tuple && i >= n->tuple.n;
        const struct sch_node *sub = n->has_tuple ? NULL : n->items;
        if (n->has_tuple)
            sub = extra ? n->additional_items : n->tuple.v[i];
        if (extra && sub && sub->boolean == 0) {
            ok = false;
            if (!sch__report(c, n, "additionalItems", &p, e,
                             "is not allowed: additionalItems is false after %u tuple items",
                             n->tuple.n))
                return false;
        } else if (sub && !v_node(c, sub, e, &p)) {
            ok = false;
            if (!c->errs || c->st->aborted)
                return false;
        }
        if (n->contains && !*contained)
            *contained = v_node(&q, n->contains, e, &p);
    }
    *count = i;
    return ok;
}

static bool v_array(const struct sch_vctx *c, const struct sch_node *n, const cJSON *j,
                    const struct sch_ipath *at)
{
    size_t count = 0;
    bool contained = false;
    bool ok = v_items(c, n, j, at, &count, &contained);
    if (!ok && !c->errs)
        return false;
    if (count < n->min_items) {
        ok = false;
        if (!sch__report(c, n, "minItems", at, j, "has fewer than %llu items",
                         (unsigned long long)n->min_items))
            return false;
    }
    if (count > n->max_items) {
        ok = false;
        if (!sch__report(c, n, "maxItems", at, j, "has more than %llu items",
                         (unsigned long long)n->max_items))
            return false;
    }
    if (n->contains && !contained) {
        ok = false;
        if (!sch__report(c, n, "contains", at, j, "has no item that matches \"contains\""))
            return false;
    }
    size_t a = 0, b = 0; /* set when a duplicate is found (gcc -O3 cannot tell) */
    if (n->unique_items && find_duplicate(j, count, &a, &b)) {
        ok = false;
        sch__report(c, n, "uniqueItems", at, j, "has equal items at %zu and %zu", a, b);
    }
    return ok;
}

/* ---- objects ------------------------------------------------------------------------------- */

static bool v_dependency(const struct sch_vctx *c, const struct sch_node *n,
                         const struct sch_dep *d, const cJSON *j, const struct sch_ipath *at)
{
    if (d->schema)
        return v_node(c, d->schema, j, at);
    bool ok = true;
    for (uint32_t i = 0; i < d->n_required; i++) {
        if (cJSON_GetObjectItemCaseSensitive(j, d->required[i]))
            continue;
        ok = false;
        if (!sch__report(c, n, "dependencies", at, NULL,
                         "property \"%s\" is required when \"%s\" is present", d->required[i],
                         d->name))
            return false;
    }
    return ok;
}

/* Checks one member against properties, patternProperties, additionalProperties,
 * propertyNames and its dependency; ticks its required bit. */
/*
 * The name table entry for a member. Producers usually write members in the order the
 * schema lists them, so the entry after the previous match is tried before hashing.
 */
static const struct sch_name *find_name(const struct sch_names *t, const char *key, size_t len,
                                        const struct sch_name **next)
{
    const struct sch_name *e = *next;
    if (!(e < t->v + t->n && e->len == len && !memcmp(e->name, key, len)))
        e = sch__names_find(t, key, len);
    if (e)
        *next = e + 1;
    return e;
}

static bool v_member(const struct sch_vctx *c, const struct sch_node *n, const cJSON *j,
                     const cJSON *m, const struct sch_ipath *at, uint64_t *seen,
                     const struct sch_name **next)
{
    struct sch_ipath p = {at, m->string, 0};
    size_t klen = strlen(m->string);
    bool ok = true, matched = false;
    const struct sch_name *e = n->names.n ? find_name(&n->names, m->string, klen, next) : NULL;
    if (e) {
        if (e->req >= 0 && e->req < 64)
            *seen |= 1ull << e->req;
        if (e->prop) {
            matched = true;
            ok = v_node(c, e->prop, m, &p);
        }
        if (e->dep >= 0 && (ok || c->errs))
            ok = v_dependency(c, n, &n->deps[e->dep], j, at) && ok;
    }
    for (uint32_t i = 0; i < n->n_pprops && (ok || c->errs); i++) {
        int rc = sch__regex_search(c->s, n->pprops[i].re, m->string, klen);
        if (rc < 0)
            return stop(c, n, &p, "a pattern hit the pcre2 match limit (%u steps)",
                        SCH_MATCH_LIMIT);
        if (rc > 0) {
            matched = true;
            ok = v_node(c, n->pprops[i].node, m, &p) && ok;
        }
    }
    if (!matched && n->additional_props && (ok || c->errs)) {
        if (n->additional_props->boolean == 0) {
            ok = false;
            sch__report(c, n, "additionalProperties", &p, NULL,
                        "property \"%s\" is not allowed (additionalProperties is false)",
                        m->string);
        } else {
            ok = v_node(c, n->additional_props, m, &p) && ok;
        }
    }
    if (n->property_names && (ok || c->errs)) {
        cJSON name = {.type = cJSON_String, .valuestring = m->string};
        struct sch_vctx q = quiet(c);
        if (!v_node(&q, n->property_names, &name, &p)) {
            ok = false;
            sch__report(c, n, "propertyNames", &p, NULL,
                        "property name \"%s\" does not match the propertyNames schema", m->string);
        }
    }
    return ok;
}

static bool v_object(const struct sch_vctx *c, const struct sch_node *n, const cJSON *j,
                     const struct sch_ipath *at)
{
    uint64_t seen = 0;
    uint64_t count = 0;
    bool ok = true;
    const struct sch_name *next = n->names.v;
    for (const cJSON *m = j->child; m; m = m->next, count++) {
        if (!v_member(c, n, j, m, at, &seen, &next)) {
            ok = false;
            if (!c->errs || c->st->aborted)
                return false;
        }
    }
    for (uint32_t i = 0; i < n->n_required; i++) {
        const struct sch_name *e = &n->names.v[n->required[i]];
        bool present =
            i < 64 ? ((seen >> i) & 1) != 0 : cJSON_GetObjectItemCaseSensitive(j, e->name) != NULL;
        if (present)
            continue;
        ok = false;
        if (!sch__report(c, n, "required", at, NULL, "required property \"%s\" is missing",
                         e->name))
            return false;
    }
    if (count < n->min_props) {
        ok = false;
        if (!sch__report(c, n, "minProperties", at, j, "has fewer than %llu properties",
                         (unsigned long long)n->min_props))
            return false;
    }
    if (count > n->max_props) {
        ok = false;
        sch__report(c, n, "maxProperties", at, j, "has more than %llu properties",
                    (unsigned long long)n->max_props);
    }
    return ok;
}

/* ---- combinations -------------------------------------------------------------------------- */

static bool v_all_of(const struct sch_vctx *c, const struct sch_node *n, const cJSON *j,
                     const struct sch_ipath *at)
{
    bool ok = true;
    for (uint32_t i = 0; i < n->all_of.n; i++) {
        if (!v_node(c, n->all_of.v[i], j, at)) {
            ok = false;
            if (!c->errs || c->st->aborted)
                return false;
        }
    }
    return ok;
}

static bool v_one_of(const struct sch_vctx *c, const struct sch_node *n, const cJSON *j,
                     const struct sch_ipath *at)
{
    struct sch_vctx q = quiet(c);
    uint32_t matches = 0, first = 0;
    for (uint32_t i = 0; i < n->one_of.n; i++) {
        if (!v_node(&q, n->one_of.v[i], j, at))
            continue;
        if (matches++ == 1) {
            sch__report(c, n, "oneOf", at, j, "matches more than one schema in oneOf (%u and %u)",
                        first, i);
            return false;
        }
        first = i;
    }
    if (matches == 1)
        return true;
    sch__report(c, n, "oneOf", at, j, "does not match any of the %u schemas in oneOf", n->one_of.n);
    return false;
}

static bool v_combine(const struct sch_vctx *c, const struct sch_node *n, const cJSON *j,
                      const struct sch_ipath *at)
{
    struct sch_vctx q = quiet(c);
    bool ok = v_all_of(c, n, j, at);
    if (n->any_of.n && (ok || c->errs)) {
        uint32_t i = 0;
        while (i < n->any_of.n && !v_node(&q, n->any_of.v[i], j, at))
            i++;
        if (i == n->any_of.n) {
            ok = false;
            sch__report(c, n, "anyOf", at, j, "does not match any of the %u schemas in anyOf",
                        n->any_of.n);
        }
    }
    if (n->one_of.n && (ok || c->errs))
        ok = v_one_of(c, n, j, at) && ok;
    if (n->not_schema && (ok || c->errs) && v_node(&q, n->not_schema, j, at)) {
        ok = false;
        sch__report(c, n, "not", at, j, "must not match the schema in \"not\"");
    }
    if (n->if_schema && (ok || c->errs)) {
        const struct sch_node *branch =
            v_node(&q, n->if_schema, j, at) ? n->then_schema : n->else_schema;
        if (branch)
            ok = v_node(c, branch, j, at) && ok;
    }
    return ok;
}

/* ---- nodes --------------------------------------------------------------------------------- */

static bool v_keywords(const struct sch_vctx *c, const struct sch_node *n, const cJSON *j,
                       const struct sch_ipath *at)
{
    bool ok = true;
    if (n->types && !type_ok(n->types, j)) {
        ok = false;
        if (!fail_type(c, n, j, at))
            return false;
    }
    if ((n->has & (SCH_HAS_ENUM | SCH_HAS_CONST)) && !v_enum_const(c, n, j, at)) {
        ok = false;
        if (!c->errs)
            return false;
    }
    bool sub = true;
    switch (j->type & 0xff) {
    case cJSON_Number:
        sub = !(n->has & SCH_HAS_NUMBER) || v_number(c, n, j, at);
        break;
    case cJSON_String:
        sub = !(n->has & SCH_HAS_STRING) || v_string(c, n, j, at);
        break;
    case cJSON_Array:
        sub = !(n->has & SCH_HAS_ARRAY) || v_array(c, n, j, at);
        break;
    case cJSON_Object:
        sub = !(n->has & SCH_HAS_OBJECT) || v_object(c, n, j, at);
        break;
    default:
        break;
    }
    if (!sub) {
        ok = false;
        if (!c->errs || c->st->aborted)
            return false;
    }
    if (n->has & SCH_HAS_COMBINE)
        ok = v_combine(c, n, j, at) && ok;
    return ok;
}

static bool v_node(const struct sch_vctx *c, const struct sch_node *n, const cJSON *j,
                   const struct sch_ipath *at)
{
    struct sch_vstate *st = c->st;
    if (st->aborted)
        return false;
    if (++st->steps > SCHEMA_MAX_STEPS)
        return stop(c, n, at, "more than %u schema evaluations", SCHEMA_MAX_STEPS);
    if (st->depth >= SCHEMA_MAX_DEPTH)
        return stop(c, n, at, "schemas nested more than %u deep (recursive $ref?)",
                    SCHEMA_MAX_DEPTH);
    while (n->ref)
        n = n->ref;
    if (n->boolean == 0) {
        sch__report(c, n, "false", at, j, "is not allowed (false schema)");
        return false;
    }
    if (n->boolean == 1)
        return true;
    st->depth++;
    bool ok = v_keywords(c, n, j, at);
    st->depth--;
    return ok;
}

int schema_validate(const struct schema *s, const cJSON *instance, struct schema_errors *errs)
{
    if (!s || !instance)
        return CORE_E_INVALID;
    if (errs)
        schema_errors_init(errs);
    struct sch_vstate st = {.errs = errs};
    struct sch_vctx c = {s, &st, errs};
    bool ok = v_node(&c, s->root, instance, NULL);
    return ok && !st.aborted ? 0 : 1;
}
