/*
 * The hash index of the catalog: item ids to idx, symbol text to symbol id, and, while a
 * bulk put is planned, the ids and symbols it adds. Values are small integers whose keys
 * the caller keeps; the index stores only a 32-bit hash next to each value, so a probe
 * touches one array until the hashes match.
 */
#include "catalog/catalog_int.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define IX_MIN_CAP 16

uint32_t cat__hash(const char *s, size_t n)
{
    return (uint32_t)XXH3_64bits(s, n);
}

void cat__ix_init(struct cat_index *ix)
{
    ix->ents = core_xcalloc(IX_MIN_CAP, sizeof *ix->ents);
    ix->mask = IX_MIN_CAP - 1;
    ix->n = 0;
}

void cat__ix_dispose(struct cat_index *ix)
{
    free(ix->ents);
    ix->ents = NULL;
    ix->mask = 0;
    ix->n = 0;
}

/* The slot a hash starts probing at (XXH3 bits are uniform already). */
static inline uint32_t home_of(const struct cat_index *ix, uint32_t hash)
{
    return hash & ix->mask;
}

uint32_t cat__ix_find(const struct cat_index *ix, uint32_t hash, const char *s, size_t n,
                      cat_key_eq_fn eq, const void *ctx)
{
    for (uint32_t i = home_of(ix, hash);; i = (i + 1) & ix->mask) {
        const struct cat_ix_ent *e = &ix->ents[i];
        if (!e->val1)
            return CAT_NONE;
        if (e->hash == hash && eq(ctx, e->val1 - 1, s, n))
            return e->val1 - 1;
    }
}

static void put_ent(struct cat_index *ix, uint32_t hash, uint32_t val1)
{
    uint32_t i = home_of(ix, hash);
    while (ix->ents[i].val1)
        i = (i + 1) & ix->mask;
    ix->ents[i].hash = hash;
    ix->ents[i].val1 = val1;
}

void cat__ix_insert(struct cat_index *ix, uint32_t hash, uint32_t val)
{
    if ((ix->n + 1) * 2 > ix->mask + 1) {
        struct cat_ix_ent *old = ix->ents;
        uint32_t old_cap = ix->mask + 1;
        ix->ents = core_xcalloc((size_t)old_cap * 2, sizeof *ix->ents);
        ix->mask = old_cap * 2 - 1;
        for (uint32_t i = 0; i < old_cap; i++) {
            if (old[i].val1)
                put_ent(ix, old[i].hash, old[i].val1);
        }
        free(old);
    }
    put_ent(ix, hash, val + 1);
    ix->n++;
}

/* Backward-shift deletion: the entries after the hole that could live in it move up, so
 * probes never need tombstones. */
void cat__ix_remove(struct cat_index *ix, uint32_t hash, uint32_t val)
{
    uint32_t i = home_of(ix, hash);
    while (ix->ents[i].val1 != val + 1) {
        if (!ix->ents[i].val1)
            return; /* not present */
        i = (i + 1) & ix->mask;
    }
    for (uint32_t j = (i + 1) & ix->mask; ix->ents[j].val1; j = (j + 1) & ix->mask) {
        uint32_t home = home_of(ix, ix->ents[j].hash);
        /* ents[j] may move to the hole at i when its home is not in (i, j] cyclically. */
        bool in_between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_between) {
            ix->ents[i] = ix->ents[j];
            i = j;
        }
    }
    ix->ents[i].val1 = 0;
    ix->ents[i].hash = 0;
    ix->n--;
}
