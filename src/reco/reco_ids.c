/* Interned item ids with dense indexes: the model's item table and the co-occurrence
 * kNN table (reco_cooc.c) share this (open addressing keyed by XXH3, compared hash first). */
#include "reco/reco_int.h"

#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

void reco__ids_init(struct reco_ids *t)
{
    memset(t, 0, sizeof *t);
    core_arena_init(&t->arena);
}

void reco__ids_dispose(struct reco_ids *t)
{
    core_arena_dispose(&t->arena);
    free(t->ids);
    free(t->lens);
    free(t->hashes);
    free(t->htab);
    memset(t, 0, sizeof *t);
}

/* The entry with hash h, length len and (id not NULL) those bytes. */
static inline uint32_t probe(const struct reco_ids *t, uint64_t h, const char *id, size_t len)
{
    if (!t->htab)
        return UINT32_MAX;
    for (uint32_t e, k = (uint32_t)h & t->hmask; (e = t->htab[k]); k = (k + 1) & t->hmask) {
        if (t->hashes[e - 1] == h && t->lens[e - 1] == len &&
            (!id || memcmp(t->ids[e - 1], id, len) == 0))
            return e - 1;
    }
    return UINT32_MAX;
}

uint32_t reco__ids_find_h(const struct reco_ids *t, uint64_t h, const char *id, size_t len)
{
    return probe(t, h, id, len);
}

uint32_t reco__ids_find_hash(const struct reco_ids *t, uint64_t h, size_t len)
{
    return probe(t, h, NULL, len);
}

uint32_t reco__ids_find(const struct reco_ids *t, const char *id, size_t len)
{
    return reco__ids_find_h(t, XXH3_64bits(id, len), id, len);
}

static void place(uint32_t *tab, uint32_t mask, uint64_t h, uint32_t i)
{
    uint32_t k = (uint32_t)h & mask;
    while (tab[k])
        k = (k + 1) & mask;
    tab[k] = i + 1;
}

uint32_t reco__ids_intern(struct reco_ids *t, const char *id, size_t len, bool *added)
{
    return reco__ids_intern_h(t, XXH3_64bits(id, len), id, len, added);
}

uint32_t reco__ids_intern_h(struct reco_ids *t, uint64_t h, const char *id, size_t len, bool *added)
{
    uint32_t i = reco__ids_find_h(t, h, id, len);
    *added = i == UINT32_MAX;
    if (!*added)
        return i;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1024;
        t->ids = core_xrealloc(t->ids, t->cap * sizeof *t->ids);
        t->lens = core_xrealloc(t->lens, t->cap * sizeof *t->lens);
        t->hashes = core_xrealloc(t->hashes, t->cap * sizeof *t->hashes);
    }
    if (!t->htab || (uint64_t)(t->n + 1) * 2 > (uint64_t)t->hmask + 1) {
        uint32_t ncap = t->htab ? (t->hmask + 1) * 2 : 1024;
        uint32_t *tab = core_xcalloc(ncap, sizeof *tab);
        for (uint32_t j = 0; j < t->n; j++)
            place(tab, ncap - 1, t->hashes[j], j);
        free(t->htab);
        t->htab = tab;
        t->hmask = ncap - 1;
    }
    i = t->n++;
    t->ids[i] = core_arena_strndup(&t->arena, id, len);
    t->lens[i] = (uint32_t)len;
    t->hashes[i] = h;
    place(t->htab, t->hmask, h, i);
    return i;
}
