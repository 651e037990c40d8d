/* Privacy annotations of compiled schemas ("x-pii", "x-retention") and the root's declared
 * properties, for ingest's data minimisation. */
#include "schema/schema_int.h"

#include <string.h>

/* The root object schema, through $refs (pure $ref cycles are refused at compile time). */
static const struct sch_node *root_of(const struct schema *s)
{
    const struct sch_node *n = s ? s->root : NULL;
    for (int hops = 0; n && n->ref && hops < 64; hops++)
        n = n->ref;
    return n && !n->ref ? n : NULL;
}

static const struct sch_node *prop_of(const struct schema *s, const char *name, size_t len)
{
    const struct sch_node *root = root_of(s);
    if (!root || !root->names.n)
        return NULL;
    const struct sch_name *e = sch__names_find(&root->names, name, len);
    const struct sch_node *p = e ? e->prop : NULL;
    for (int hops = 0; p && p->ref && hops < 64; hops++)
        p = p->ref;
    return p;
}

const char *schema_retention_name(enum schema_retention r)
{
    static const char *const names[] = {"short", "standard", "long"};
    return (unsigned)r < 3 ? names[r] : "standard";
}

size_t schema_pii_each(const struct schema *s,
                       void (*fn)(void *arg, const char *name, enum schema_retention r), void *arg)
{
    const struct sch_node *root = root_of(s);
    size_t count = 0;
    for (uint32_t i = 0; root && i < root->names.n; i++) {
        const struct sch_name *e = &root->names.v[i];
        const struct sch_node *p = prop_of(s, e->name, e->len);
        if (!p || !p->pii)
            continue;
        count++;
        if (fn)
            fn(arg, e->name,
               p->retention ? (enum schema_retention)(p->retention - 1)
                            : SCHEMA_RETENTION_STANDARD);
    }
    return count;
}

bool schema_pii_property(const struct schema *s, const char *name, size_t len)
{
    const struct sch_node *p = prop_of(s, name, len);
    return p && p->pii;
}

enum schema_retention schema_property_retention(const struct schema *s, const char *name,
                                                size_t len)
{
    const struct sch_node *p = prop_of(s, name, len);
    return p && p->retention ? (enum schema_retention)(p->retention - 1)
                             : SCHEMA_RETENTION_STANDARD;
}

bool schema_root_closed(const struct schema *s)
{
    const struct sch_node *root = root_of(s);
    return root && root->boolean < 0 && root->additional_props &&
           root->additional_props->boolean == 0 && root->n_pprops == 0;
}

bool schema_root_declares(const struct schema *s, const char *name, size_t len)
{
    const struct sch_node *root = root_of(s);
    if (!root || !root->names.n)
        return false;
    const struct sch_name *e = sch__names_find(&root->names, name, len);
    return e && e->prop;
}
