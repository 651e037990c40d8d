/*
 * Proving that a new schema accepts every instance an old one accepts ("the new schema is a
 * superset"), structurally: the two documents are walked side by side and each keyword of the
 * new schema must be implied by what the old one already required. Whatever cannot be proven
 * is reported, so a schema the checker does not understand is refused, never waved through.
 *
 * cmp(a, b) means "every instance valid under a is valid under b" (a old, b new). NULL stands
 * for an absent subschema, which is the true schema. Rules worth knowing:
 *  - $ref is followed (local "#..." JSON pointers only) and both sides compared after it;
 *    a pair met again through $ref, one level or more down the instance, is assumed to hold
 *    (recursive schemas compare coinductively, as recursive types do).
 *  - keywords for one instance type are compared only when the old schema lets that type
 *    through: {"type":"string"} -> {"type":"string","minimum":3} is fine.
 *  - when several old constraints apply to a value (a property listed in "properties" and
 *    matched by "patternProperties", the entries of "allOf"), a new constraint is implied
 *    when any one of them implies it.
 * Trial comparisons ("does any old branch imply this new one?") run quiet: they stop at the
 * first failure and report nothing.
 */
#include "schema/registry_compat_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reporting and paths ----------------------------------------------------------------- */

static void vemit(struct compat *c, const char *fmt, va_list ap)
{
    if (++c->reasons > COMPAT_MAX_REASONS)
        return;
    if (c->reasons > 1)
        core_buf_putc(c->out, '\n');
    if (c->path.len)
        core_buf_append(c->out, c->path.data, c->path.len);
    else
        core_buf_puts(c->out, "(root)");
    core_buf_puts(c->out, ": ");
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    core_buf_puts(c->out, line);
}

void reg__reason(struct compat *c, const char *fmt, ...)
{
    if (c->quiet) {
        c->failed = true;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vemit(c, fmt, ap);
    va_end(ap);
}

static void give_up(struct compat *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void give_up(struct compat *c, const char *fmt, ...)
{
    c->failed = true;
    if (c->gave_up)
        return;
    c->gave_up = true;
    va_list ap;
    va_start(ap, fmt);
    vemit(c, fmt, ap); /* even inside a trial: the whole comparison is over */
    va_end(ap);
}

bool reg__stopped(const struct compat *c)
{
    return c->gave_up || (c->quiet && c->failed);
}

size_t reg__path_push(struct compat *c, const char *seg)
{
    size_t mark = c->path.len;
    core_buf_putc(&c->path, '/');
    for (const char *p = seg; *p; p++) {
        if (*p == '~')
            core_buf_puts(&c->path, "~0");
        else if (*p == '/')
            core_buf_puts(&c->path, "~1");
        else
            core_buf_putc(&c->path, *p);
    }
    return mark;
}

size_t reg__path_push2(struct compat *c, const char *seg, const char *seg2)
{
    size_t mark = reg__path_push(c, seg);
    reg__path_push(c, seg2);
    return mark;
}

size_t reg__path_push_index(struct compat *c, const char *seg, size_t i)
{
    size_t mark = reg__path_push(c, seg);
    core_buf_printf(&c->path, "/%zu", i);
    return mark;
}

void reg__path_pop(struct compat *c, size_t mark)
{
    c->path.len = mark;
    c->path.data[mark] = '\0';
}

/* Compares a and b at the location "seg" below the current one. */
void reg__cmp_at(struct compat *c, const char *seg, const cJSON *a, const cJSON *b)
{
    size_t mark = reg__path_push(c, seg);
    reg__cmp(c, a, b);
    reg__path_pop(c, mark);
}

/* A trial comparison: true when proven, nothing reported. swap compares new against old. */
bool reg__holds(struct compat *c, const cJSON *a, const cJSON *b, bool swap)
{
    if (c->gave_up)
        return false;
    bool quiet = c->quiet, failed = c->failed, swapped = c->swapped;
    c->quiet = true;
    c->failed = false;
    c->swapped = swap ? !swapped : swapped;
    reg__cmp(c, a, b);
    bool ok = !c->failed && !c->gave_up;
    c->quiet = quiet;
    c->failed = failed;
    c->swapped = swapped;
    return ok;
}

static bool equivalent(struct compat *c, const cJSON *a, const cJSON *b)
{
    return reg__holds(c, a, b, false) && reg__holds(c, b, a, true);
}

/* Follows $ref from *s in the old (side 0) or new (side 1) document. */
static bool deref(struct compat *c, const cJSON **s, int side, bool *via_ref)
{
    const struct compat_doc *d = &c->docs[c->swapped ? 1 - side : side];
    for (int hops = 0;; hops++) {
        const cJSON *ref = reg__kw(*s, "$ref");
        if (!cJSON_IsString(ref))
            return true;
        const cJSON *t = d->refs_ok ? reg__pointer_get(d->root, ref->valuestring) : NULL;
        if (!t || hops == COMPAT_MAX_HOPS) {
            char p[96];
            reg__preview(ref, p, sizeof p);
            reg__reason(c,
                        "cannot prove compatible: $ref %s is not followed (only local \"#/...\" "
                        "pointers outside nested $id scopes are)",
                        p);
            return false;
        }
        *s = t;
        *via_ref = true;
    }
}

/* ---- type, enum, const -------------------------------------------------------------------- */

static unsigned type_bit(const char *name)
{
    static const struct {
        const char *name;
        unsigned bit;
    } types[] = {{"null", SCH_T_NULL},      {"boolean", SCH_T_BOOLEAN}, {"object", SCH_T_OBJECT},
                 {"array", SCH_T_ARRAY},    {"number", SCH_T_NUMBER},   {"string", SCH_T_STRING},
                 {"integer", SCH_T_INTEGER}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (!strcmp(name, types[i].name))
            return types[i].bit;
    }
    return 0;
}

static unsigned types_of(const cJSON *s)
{
    const cJSON *t = reg__kw(s, "type"), *e;
    if (cJSON_IsString(t))
        return type_bit(t->valuestring);
    if (!cJSON_IsArray(t))
        return COMPAT_T_ALL;
    unsigned m = 0;
    cJSON_ArrayForEach(e, t)
    {
        if (cJSON_IsString(e))
            m |= type_bit(e->valuestring);
    }
    return m;
}

static void types_text(const cJSON *s, char *out, size_t size)
{
    const cJSON *t = reg__kw(s, "type");
    size_t n = 0;
    const cJSON *e;
    out[0] = '\0';
    if (cJSON_IsString(t)) {
        snprintf(out, size, "[\"%s\"]", t->valuestring);
        return;
    }
    n += (size_t)snprintf(out + n, size - n, "[");
    cJSON_ArrayForEach(e, t)
    {
        if (n < size)
            n += (size_t)snprintf(out + n, size - n, "%s\"%s\"", e == t->child ? "" : ",",
                                  cJSON_IsString(e) ? e->valuestring : "?");
    }
    if (n < size)
        snprintf(out + n, size - n, "]");
}

/* Reports type narrowing; returns the old schema's type bits ("integer" inside "number"). */
static unsigned check_type(struct compat *c, const cJSON *a, const cJSON *b)
{
    unsigned ta = types_of(a), tb = types_of(b);
    unsigned covered = tb & SCH_T_NUMBER ? tb | SCH_T_INTEGER : tb;
    if (ta & ~covered) {
        char from[128], to[128];
        types_text(b, to, sizeof to);
        if (!reg__kw(a, "type")) {
            reg__reason(c, "type %s added (any type was allowed)", to);
        } else {
            types_text(a, from, sizeof from);
            reg__reason(c, "type narrowed from %s to %s", from, to);
        }
    }
    return ta & SCH_T_NUMBER ? ta | SCH_T_INTEGER : ta;
}

/* enum and const: the old schema's allowed values (const, else enum, else any) must all pass
 * the new schema's enum and const. */
static void check_values(struct compat *c, const cJSON *a, const cJSON *b)
{
    const cJSON *ae = reg__kw(a, "enum"), *ac = reg__kw(a, "const");
    const cJSON *be = reg__kw(b, "enum"), *bc = reg__kw(b, "const");
    char p[96], q[96];
    if (be && !(ae && sch__json_equal(ae, be))) {
        if (!ac && !ae) {
            reg__preview(be, p, sizeof p);
            reg__reason(c, "enum %s added", p);
        } else if (ac && !reg__value_in(be, ac)) {
            reg__preview(ac, p, sizeof p);
            reg__reason(c, "enum does not allow the old const %s", p);
        } else if (!ac) {
            struct core_buf gone;
            core_buf_init(&gone);
            struct vset now;
            reg__vset_init(&now, be, VSET_VALUES);
            const cJSON *e;
            cJSON_ArrayForEach(e, ae)
            {
                if (!reg__vset_has(&now, e)) {
                    reg__preview(e, p, sizeof p);
                    core_buf_printf(&gone, "%s%s", gone.len ? ", " : "", p);
                }
            }
            reg__vset_dispose(&now);
            if (gone.len)
                reg__reason(c, "enum values removed: %.400s", gone.data);
            core_buf_dispose(&gone);
        }
    }
    if (bc) {
        reg__preview(bc, q, sizeof q);
        if (ac && !sch__json_equal(ac, bc)) {
            reg__preview(ac, p, sizeof p);
            reg__reason(c, "const changed from %s to %s", p, q);
        } else if (!ac && !ae) {
            reg__reason(c, "const %s added", q);
        } else if (!ac) {
            const cJSON *e;
            cJSON_ArrayForEach(e, ae)
            {
                if (!sch__json_equal(e, bc)) {
                    reg__reason(c, "const %s added where enum allowed more values", q);
                    break;
                }
            }
        }
    }
}

/* ---- numbers, strings, counts -------------------------------------------------------------- */

/* True when bound nv lets through everything bound ov did (strict: nv must be beyond ov). */
static bool looser(bool upper, double nv, double ov, bool strict)
{
    if (upper)
        return strict ? nv > ov : nv >= ov;
    return strict ? nv < ov : nv <= ov;
}

static void bound_reason(struct compat *c, const char *k, bool had, double ov, double nv,
                         bool upper)
{
    char o[32], n[32];
    sch__num_format(nv, n, sizeof n);
    if (!had) {
        reg__reason(c, "%s %s added", k, n);
        return;
    }
    sch__num_format(ov, o, sizeof o);
    reg__reason(c, "%s %s from %s to %s", k, upper ? "lowered" : "raised", o, n);
}

/* minimum/exclusiveMinimum, or with upper maximum/exclusiveMaximum. */
static void check_bound(struct compat *c, const cJSON *a, const cJSON *b, bool upper)
{
    const char *inc = upper ? "maximum" : "minimum";
    const char *exc = upper ? "exclusiveMaximum" : "exclusiveMinimum";
    double ai = 0, ae = 0, bi, be;
    bool hai = reg__num_kw(a, inc, &ai), hae = reg__num_kw(a, exc, &ae);
    if (reg__num_kw(b, inc, &bi) &&
        !((hai && looser(upper, bi, ai, false)) || (hae && looser(upper, bi, ae, false))))
        bound_reason(c, inc, hai, ai, bi, upper);
    if (reg__num_kw(b, exc, &be) &&
        !((hae && looser(upper, be, ae, false)) || (hai && looser(upper, be, ai, true))))
        bound_reason(c, exc, hae, ae, be, upper);
}

/* minLength, maxItems, ...: a minimum may only fall, a maximum only rise. */
void reg__check_count(struct compat *c, const cJSON *a, const cJSON *b, const char *k, bool upper)
{
    double av = 0, bv;
    if (!reg__num_kw(b, k, &bv) || (!upper && bv <= 0))
        return;
    bool had = reg__num_kw(a, k, &av);
    if (!had || !looser(upper, bv, av, false))
        bound_reason(c, k, had, av, bv, upper);
}

/* pattern, format: only keeping the same value (or dropping it) is proven. */
static void check_same_string(struct compat *c, const cJSON *a, const cJSON *b, const char *k)
{
    const cJSON *bs = reg__kw(b, k), *as = reg__kw(a, k);
    if (!cJSON_IsString(bs) || (cJSON_IsString(as) && !strcmp(as->valuestring, bs->valuestring)))
        return;
    if (!strcmp(k, "format") && sch__format_parse(bs->valuestring) == SCH_FMT_NONE)
        return; /* the validator ignores formats it does not know */
    char p[96], q[96];
    reg__preview(bs, q, sizeof q);
    if (!cJSON_IsString(as)) {
        reg__reason(c, "%s %s added", k, q);
        return;
    }
    reg__preview(as, p, sizeof p);
    reg__reason(c, "%s changed from %s to %s", k, p, q);
}

static void check_numbers(struct compat *c, const cJSON *a, const cJSON *b)
{
    check_bound(c, a, b, false);
    check_bound(c, a, b, true);
    double am, bm;
    if (reg__num_kw(b, "multipleOf", &bm)) {
        bool had = reg__num_kw(a, "multipleOf", &am);
        double q = had ? am / bm : 0;
        if (!had || !isfinite(q) || q < 1 || q != floor(q)) {
            char o[32], n[32];
            sch__num_format(bm, n, sizeof n);
            if (had) {
                sch__num_format(am, o, sizeof o);
                reg__reason(c, "multipleOf changed from %s to %s", o, n);
            } else {
                reg__reason(c, "multipleOf %s added", n);
            }
        }
    }
}

static void check_strings(struct compat *c, const cJSON *a, const cJSON *b)
{
    reg__check_count(c, a, b, "minLength", false);
    reg__check_count(c, a, b, "maxLength", true);
    check_same_string(c, a, b, "pattern");
    check_same_string(c, a, b, "format");
}

/* ---- combinators --------------------------------------------------------------------------- */

/* Each new allOf entry must follow from the old schema as a whole or from one old entry. */
static void check_all_of(struct compat *c, const cJSON *a, const cJSON *b)
{
    const cJSON *al = reg__kw(a, "allOf"), *e;
    const cJSON *same = al ? al->child : NULL; /* the old entry at the same index */
    size_t j = 0;
    cJSON_ArrayForEach(e, reg__kw(b, "allOf"))
    {
        const cJSON *x;
        bool ok = same && reg__holds(c, same, e, false);
        cJSON_ArrayForEach(x, al)
        {
            if (!ok && x != same)
                ok = reg__holds(c, x, e, false);
        }
        if (!ok && same)
            ok = reg__holds(c, a, e, false);
        if (!ok) {
            size_t mark = reg__path_push_index(c, "allOf", j);
            reg__cmp(c, same ? same : a, e); /* again, loud, for the reasons */
            reg__path_pop(c, mark);
        }
        j++;
        same = same ? same->next : NULL;
    }
}

/* Each old anyOf branch must be implied by a new one (or the old schema by a new branch). */
static void check_any_of(struct compat *c, const cJSON *a, const cJSON *b)
{
    const cJSON *bl = reg__kw(b, "anyOf"), *al = reg__kw(a, "anyOf"), *x, *y;
    cJSON_ArrayForEach(y, bl)
    {
        if (reg__holds(c, a, y, false))
            return;
    }
    size_t i = 0;
    cJSON_ArrayForEach(x, al)
    {
        bool ok = false;
        cJSON_ArrayForEach(y, bl)
        {
            if (!ok)
                ok = reg__holds(c, x, y, false);
        }
        if (!ok) {
            size_t mark = reg__path_push_index(c, "anyOf", i);
            reg__reason(c,
                        "cannot prove compatible: old anyOf branch %zu is not covered by any new "
                        "branch",
                        i);
            reg__path_pop(c, mark);
        }
        i++;
    }
    if (!al) {
        size_t mark = reg__path_push(c, "anyOf");
        reg__reason(c, "cannot prove compatible: anyOf added");
        reg__path_pop(c, mark);
    }
}

static void check_one_of(struct compat *c, const cJSON *a, const cJSON *b)
{
    const cJSON *bl = reg__kw(b, "oneOf"), *al = reg__kw(a, "oneOf");
    bool ok = al && cJSON_GetArraySize(al) == cJSON_GetArraySize(bl);
    for (const cJSON *x = al ? al->child : NULL, *y = bl->child; ok && x && y;
         x = x->next, y = y->next)
        ok = equivalent(c, x, y);
    if (!ok) {
        size_t mark = reg__path_push(c, "oneOf");
        reg__reason(c, "cannot prove compatible: oneOf %s", al ? "changed" : "added");
        reg__path_pop(c, mark);
    }
}

static void check_not(struct compat *c, const cJSON *a, const cJSON *b)
{
    const cJSON *an = reg__kw(a, "not"), *bn = reg__kw(b, "not");
    /* not B accepts all of not A when B rejects less: B is a subset of A. */
    if (!an || !reg__holds(c, bn, an, true)) {
        size_t mark = reg__path_push(c, "not");
        reg__reason(c, "cannot prove compatible: not %s", an ? "changed" : "added");
        reg__path_pop(c, mark);
    }
}

static void check_if(struct compat *c, const cJSON *a, const cJSON *b)
{
    const cJSON *ai = reg__kw(a, "if"), *bi = reg__kw(b, "if");
    const cJSON *bt = reg__kw(b, "then"), *be = reg__kw(b, "else");
    if (!ai) {
        if (!reg__holds(c, NULL, bt, false) || !reg__holds(c, NULL, be, false)) {
            size_t mark = reg__path_push(c, "if");
            reg__reason(c, "cannot prove compatible: if/then/else added");
            reg__path_pop(c, mark);
        }
        return;
    }
    if (!equivalent(c, ai, bi)) {
        size_t mark = reg__path_push(c, "if");
        reg__reason(c, "cannot prove compatible: if changed");
        reg__path_pop(c, mark);
        return;
    }
    if (bt)
        reg__cmp_at(c, "then", reg__kw(a, "then"), bt);
    if (be)
        reg__cmp_at(c, "else", reg__kw(a, "else"), be);
}

static void check_combinators(struct compat *c, const cJSON *a, const cJSON *b)
{
    if (reg__kw(b, "allOf"))
        check_all_of(c, a, b);
    if (reg__kw(b, "anyOf") && !reg__stopped(c))
        check_any_of(c, a, b);
    if (reg__kw(b, "oneOf") && !reg__stopped(c))
        check_one_of(c, a, b);
    if (reg__kw(b, "not") && !reg__stopped(c))
        check_not(c, a, b);
    if (reg__kw(b, "if") && !reg__stopped(c))
        check_if(c, a, b);
}

/* ---- the walk ---------------------------------------------------------------------------- */

static const struct compat_pair *pair_find(const struct compat *c, const cJSON *a, const cJSON *b)
{
    for (size_t i = 0; i < c->n_pairs; i++) {
        const struct compat_pair *p = &c->pairs[i];
        if (p->a == a && p->b == b && p->swapped == c->swapped)
            return p;
    }
    return NULL;
}

void reg__cmp(struct compat *c, const cJSON *a, const cJSON *b)
{
    if (reg__stopped(c))
        return;
    if (++c->steps > COMPAT_MAX_STEPS || c->depth >= COMPAT_MAX_DEPTH) {
        give_up(c, "cannot prove compatible: the schemas are too complex to compare");
        return;
    }
    bool via_ref = false;
    if (!deref(c, &a, 0, &via_ref) || !deref(c, &b, 1, &via_ref))
        return;
    if (cJSON_IsFalse(a) || reg__is_true(b))
        return; /* nothing was valid before, or everything is valid now */
    if (cJSON_IsFalse(b)) {
        reg__reason(c, "no value is valid any more (the schema is false)");
        return;
    }
    if (a && !reg__has_ref(a) && !reg__has_ref(b) && sch__json_equal(a, b))
        return;
    size_t n_pairs = c->n_pairs;
    if (via_ref || c->depth == 0) {
        const struct compat_pair *seen = pair_find(c, a, b);
        /* Recursion that went one level into the instance may assume what is being proven
         * (the instance is finite). Recursion that did not never ends: the validator stops
         * it at its depth limit and rejects the instance, whatever the schemas say. */
        if (seen && seen->idepth < c->idepth)
            return;
        if (seen) {
            reg__reason(c, "cannot prove compatible: a $ref cycle that does not descend into the "
                           "instance");
            return;
        }
        if (c->n_pairs == c->cap_pairs) {
            c->cap_pairs = c->cap_pairs ? c->cap_pairs * 2 : 16;
            c->pairs = core_xrealloc(c->pairs, c->cap_pairs * sizeof *c->pairs);
        }
        c->pairs[c->n_pairs++] = (struct compat_pair){a, b, c->swapped, c->idepth};
    }
    c->depth++;
    unsigned ta = check_type(c, a, b);
    check_values(c, a, b);
    if (ta & (SCH_T_NUMBER | SCH_T_INTEGER) && !reg__stopped(c))
        check_numbers(c, a, b);
    if (ta & SCH_T_STRING && !reg__stopped(c))
        check_strings(c, a, b);
    if (ta & SCH_T_ARRAY && !reg__stopped(c))
        reg__check_arrays(c, a, b);
    if (ta & SCH_T_OBJECT && !reg__stopped(c))
        reg__check_objects(c, a, b);
    if (!reg__stopped(c))
        check_combinators(c, a, b);
    c->depth--;
    c->n_pairs = n_pairs;
}

size_t reg__compat(const cJSON *old_doc, const cJSON *new_doc, const struct schema *new_schema,
                   struct core_buf *out)
{
    struct compat c = {0};
    c.docs[0] = (struct compat_doc){old_doc, reg__refs_resolve_locally(old_doc, true)};
    c.docs[1] = (struct compat_doc){new_doc, reg__refs_resolve_locally(new_doc, true)};
    c.out = out;
    core_buf_init(&c.path);
    core_buf_reserve(&c.path, 64);
    const char *stall = reg__stall_find(new_schema);
    if (stall) {
        core_buf_puts(&c.path, stall + 1); /* "#/a/b" -> "/a/b" */
        reg__reason(&c, "cannot prove compatible: a $ref cycle that does not descend into the "
                        "instance makes validation give up");
        reg__path_pop(&c, 0);
    }
    reg__cmp(&c, old_doc, new_doc);
    if (c.reasons > COMPAT_MAX_REASONS)
        core_buf_printf(out, "\n... and %zu more", c.reasons - COMPAT_MAX_REASONS);
    core_buf_dispose(&c.path);
    free(c.pairs);
    return c.reasons;
}
