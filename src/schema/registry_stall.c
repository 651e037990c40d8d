/*
 * Finding $ref cycles that do not descend into the instance, in a compiled schema.
 *
 * {"anyOf": [{"type": "string"}, {"$ref": "#"}]} compiles (it is not made only of $refs), but
 * validating a number walks round the loop without consuming input until the validator's
 * depth limit ends the whole validation as invalid, whichever branch might have matched. So
 * a schema with such a loop rejects instances no keyword comparison can see; the
 * compatibility proof refuses it rather than reasoning about the limit.
 *
 * The walk is on the compiled tree, where every $ref (pointer, $id or "#name") is already
 * resolved: every node the validator can reach from the root is searched, depth first and
 * without recursion, for a cycle along the keywords that apply to the same instance ($ref,
 * allOf, anyOf, oneOf, not, if, then, else, dependencies).
 */
#include "schema/registry_compat_int.h"

#include <stdlib.h>

enum { STALL_ON_STACK = 1, STALL_DONE = 2 };

/* The i-th subschema of n applied to the instance n applies to (NULL entries included). */
static const struct sch_node *same_child(const struct sch_node *n, size_t i, bool *end)
{
    *end = false;
    if (n->ref) {
        *end = i > 0;
        return n->ref;
    }
    const struct sch_list *lists[] = {&n->all_of, &n->any_of, &n->one_of};
    for (size_t k = 0; k < 3; k++) {
        if (i < lists[k]->n)
            return lists[k]->v[i];
        i -= lists[k]->n;
    }
    const struct sch_node *single[] = {n->not_schema, n->if_schema, n->then_schema, n->else_schema};
    if (i < 4)
        return single[i];
    i -= 4;
    if (i < n->n_deps)
        return n->deps[i].schema;
    *end = true;
    return NULL;
}

/* The i-th subschema of n applied to a member or item of the instance (NULL entries too). */
static const struct sch_node *deeper_child(const struct sch_node *n, size_t i, bool *end)
{
    *end = false;
    if (n->ref) {
        *end = true;
        return NULL;
    }
    const struct sch_node *single[] = {n->items, n->additional_items, n->contains,
                                       n->additional_props, n->property_names};
    if (i < 5)
        return single[i];
    i -= 5;
    if (i < n->tuple.n)
        return n->tuple.v[i];
    i -= n->tuple.n;
    if (i < n->names.n)
        return n->names.v[i].prop;
    i -= n->names.n;
    if (i < n->n_pprops)
        return n->pprops[i].node;
    *end = true;
    return NULL;
}

struct frame {
    const struct sch_node *n;
    size_t i;
};

struct stall {
    struct sch_ptrmap state; /* node -> STALL_* */
    struct sch_ptrmap seen;  /* nodes reached from the root */
    struct frame *stack;
    size_t n, cap;
};

static void push(struct stall *st, const struct sch_node *n)
{
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 64;
        st->stack = core_xrealloc(st->stack, st->cap * sizeof *st->stack);
    }
    st->stack[st->n++] = (struct frame){n, 0};
}

/* Depth-first search along same-instance edges from start; the node closing a cycle, or NULL.
 * Uses the stack above base and leaves it as it found it. */
static const struct sch_node *find_cycle(struct stall *st, const struct sch_node *start)
{
    size_t base = st->n;
    if (sch__ptrmap_get(&st->state, start))
        return NULL;
    sch__ptrmap_put(&st->state, start, (void *)(uintptr_t)STALL_ON_STACK);
    push(st, start);
    while (st->n > base) {
        struct frame *f = &st->stack[st->n - 1];
        bool end;
        const struct sch_node *c = same_child(f->n, f->i++, &end);
        if (end) {
            sch__ptrmap_put(&st->state, f->n, (void *)(uintptr_t)STALL_DONE);
            st->n--;
            continue;
        }
        if (!c)
            continue;
        uintptr_t s = (uintptr_t)sch__ptrmap_get(&st->state, c);
        if (s == STALL_ON_STACK) {
            st->n = base;
            return c;
        }
        if (s == 0) {
            sch__ptrmap_put(&st->state, c, (void *)(uintptr_t)STALL_ON_STACK);
            push(st, c);
        }
    }
    return NULL;
}

/* Edges of either kind: the same-instance ones first. */
static const struct sch_node *any_child(const struct sch_node *n, size_t i, bool *end)
{
    size_t same = n->ref ? 1 : n->all_of.n + n->any_of.n + n->one_of.n + 4 + n->n_deps;
    if (i < same)
        return same_child(n, i, end);
    return deeper_child(n, i - same, end);
}

const char *reg__stall_find(const struct schema *s)
{
    struct stall st = {0};
    const struct sch_node *hit = NULL;
    /* Reach every node from the root along both kinds of edges; search each for a cycle
     * (the search from a node skips what an earlier search finished). */
    sch__ptrmap_put(&st.seen, s->root, (void *)1);
    push(&st, s->root);
    while (st.n > 0) {
        if (st.stack[st.n - 1].i == 0 && (hit = find_cycle(&st, st.stack[st.n - 1].n)))
            break;
        struct frame *f = &st.stack[st.n - 1];
        bool end;
        const struct sch_node *c = any_child(f->n, f->i++, &end);
        if (end) {
            st.n--;
            continue;
        }
        if (c && !sch__ptrmap_get(&st.seen, c)) {
            sch__ptrmap_put(&st.seen, c, (void *)1);
            push(&st, c);
        }
    }
    sch__ptrmap_dispose(&st.state);
    sch__ptrmap_dispose(&st.seen);
    free(st.stack);
    return hit ? hit->path : NULL;
}
