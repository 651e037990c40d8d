/*
 * The collaborative model's item-kNN lists, built from the shards' whole-history
 * co-occurrence rows (state_cooc.c: counted at apply time, per partition, checkpointed). A
 * node sums every shard's row of an item, so the lists are a function of the log alone:
 * an embedded node, a processor and an API node that restored the same partitions agree.
 *
 * An update reads only the rows that changed since the previous one (per-shard positions;
 * a restored or swapped shard, or missed removals, start over) and recomputes those items'
 * neighbours: the asymmetric cosine c_ij / (n_i^ALPHA n_j^(1 - ALPHA) + shrink) (Aiolli 2013)
 * with c summed over shards and n_i the item's positive events, top K, ties by id. A changed
 * row is scored with the current n_j of its neighbours; rows that did not change keep the n_j
 * of their last update. A full update (every row, items in shard order) runs every
 * FULL_EVERY updates and whenever the caller asks (the recommender asks once the shards
 * stopped changing), so nodes that applied the same events converge to identical lists
 * whatever their update history.
 */
#include "reco/reco_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KNN_SHRINK 0.5
/* Asymmetric cosine: 0.5 is the plain cosine, larger values penalise popular neighbours less. */
#define ALPHA 0.7
#define FULL_EVERY 32

struct reco_cooc {
    struct reco_ids it;    /* items with a row in some shard, dense indexes */
    uint32_t cap;          /* of the per-item arrays below */
    double *occ;           /* summed over shards */
    double *occ_a, *occ_b; /* occ^ALPHA, occ^(1 - ALPHA) */
    uint8_t *dirty;
    struct reco_nb **nbs;
    uint16_t *nnb;
    int k;
    int npos;
    struct state_cooc_pos *pos; /* per shard, as of the last update */
    uint64_t updates, full_updates;
    uint32_t live;    /* items some shard still holds a row of */
    uint32_t cursor;  /* where the next budgeted update starts looking for dirty items */
    uint32_t pending; /* dirty items a budgeted update left */
    bool last_full;
    /* merge scratch: summed weights by index, the indexes touched */
    double *acc;
    uint32_t *touched;
    uint32_t ntouched, acc_cap;
};

struct reco_cooc *reco__cooc_new(int neighbours)
{
    struct reco_cooc *c = core_xcalloc(1, sizeof *c);
    reco__ids_init(&c->it);
    c->k = neighbours > 0 && neighbours < 65535 ? neighbours : 50;
    return c;
}

static void clear(struct reco_cooc *c)
{
    for (uint32_t i = 0; i < c->it.n; i++)
        free(c->nbs[i]);
    reco__ids_dispose(&c->it);
    reco__ids_init(&c->it);
}

void reco__cooc_free(struct reco_cooc *c)
{
    if (!c)
        return;
    clear(c);
    reco__ids_dispose(&c->it);
    free(c->occ);
    free(c->occ_a);
    free(c->occ_b);
    free(c->dirty);
    free(c->nbs);
    free(c->nnb);
    free(c->pos);
    free(c->acc);
    free(c->touched);
    free(c);
}

uint32_t reco__cooc_count(const struct reco_cooc *c)
{
    return c->it.n;
}

uint32_t reco__cooc_live(const struct reco_cooc *c)
{
    return c->live;
}

uint64_t reco__cooc_full_updates(const struct reco_cooc *c)
{
    return c->full_updates;
}

bool reco__cooc_settled(const struct reco_cooc *c)
{
    return c->last_full;
}

const char *reco__cooc_id(const struct reco_cooc *c, uint32_t i, uint32_t *len)
{
    *len = c->it.lens[i];
    return c->it.ids[i];
}

const struct reco_nb *reco__cooc_neighbours(const struct reco_cooc *c, uint32_t i, int *n)
{
    *n = c->nnb[i];
    return c->nbs[i];
}

/* ---- which rows changed ------------------------------------------------------------------------
 */

static void mark(void *arg, const char *id, size_t len, uint64_t hash)
{
    struct reco_cooc *c = arg;
    bool added;
    uint32_t i = reco__ids_intern_h(&c->it, hash, id, len, &added);
    if (added && c->cap < c->it.cap) {
        uint32_t nc = c->it.cap;
        c->occ = core_xrealloc(c->occ, nc * sizeof *c->occ);
        c->occ_a = core_xrealloc(c->occ_a, nc * sizeof *c->occ_a);
        c->occ_b = core_xrealloc(c->occ_b, nc * sizeof *c->occ_b);
        c->dirty = core_xrealloc(c->dirty, nc * sizeof *c->dirty);
        c->nbs = core_xrealloc(c->nbs, nc * sizeof *c->nbs);
        c->nnb = core_xrealloc(c->nnb, nc * sizeof *c->nnb);
        c->cap = nc;
    }
    if (added) {
        c->occ[i] = c->occ_a[i] = c->occ_b[i] = 0;
        c->nbs[i] = NULL;
        c->nnb[i] = 0;
    }
    c->dirty[i] = 1;
}

/* ---- neighbours --------------------------------------------------------------------------------
 */

static void add_entry(void *arg, const char *id, size_t len, uint64_t hash, float w)
{
    struct reco_cooc *c = arg;
    uint32_t j = reco__ids_find_h(&c->it, hash, id, len);
    if (j == UINT32_MAX)
        return; /* no shard holds its row any more */
    if (c->acc[j] == 0)
        c->touched[c->ntouched++] = j;
    c->acc[j] += w;
}

/* Whether x ranks before y: higher score, then smaller id. */
static bool before(const struct reco_cooc *c, struct reco_nb x, struct reco_nb y)
{
    if (x.score != y.score)
        return x.score > y.score;
    uint32_t lx = c->it.lens[x.idx], ly = c->it.lens[y.idx];
    int d = memcmp(c->it.ids[x.idx], c->it.ids[y.idx], lx < ly ? lx : ly);
    return d ? d < 0 : lx < ly;
}

static int cmp_nb(const void *a, const void *b, void *arg)
{
    const struct reco_nb *x = a, *y = b;
    return before(arg, *x, *y) ? -1 : before(arg, *y, *x);
}

/* A bounded heap whose root ranks last: offers that do not beat it are rejected at once. */
static void heap_offer(const struct reco_cooc *c, struct reco_nb *h, uint32_t *n, uint32_t k,
                       struct reco_nb e)
{
    uint32_t i;
    if (*n < k) {
        i = (*n)++;
        while (i > 0 && before(c, h[(i - 1) / 2], e)) {
            h[i] = h[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        h[i] = e;
        return;
    }
    if (!before(c, e, h[0]))
        return;
    i = 0;
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, w = i;
        struct reco_nb we = e;
        if (l < *n && before(c, we, h[l]))
            w = l, we = h[l];
        if (r < *n && before(c, we, h[r]))
            w = r;
        if (w == i)
            break;
        h[i] = h[w];
        i = w;
    }
    h[i] = e;
}

/* Sums item i's rows over the shards and keeps its top K by asymmetric cosine. */
static void neighbours(struct reco_cooc *c, uint32_t i, struct state_shard *const *shards,
                       int nshards, struct reco_nb **tmp, uint32_t *tmp_cap)
{
    c->ntouched = 0;
    for (int p = 0; p < nshards; p++)
        state_shard_cooc_row(shards[p], c->it.ids[i], c->it.lens[i], c->it.hashes[i], add_entry, c);
    uint32_t k = (uint32_t)c->k, n = 0;
    if (k > *tmp_cap) {
        *tmp_cap = k;
        *tmp = core_xrealloc(*tmp, *tmp_cap * sizeof **tmp);
    }
    bool any = c->occ[i] > 0;
    double ai = c->occ_a[i];
    for (uint32_t t = 0; t < c->ntouched; t++) {
        uint32_t j = c->touched[t];
        double v = c->acc[j];
        c->acc[j] = 0;
        if (!any || !(c->occ[j] > 0) || j == i)
            continue;
        float sim = (float)(v / (ai * c->occ_b[j] + KNN_SHRINK));
        heap_offer(c, *tmp, &n, k, (struct reco_nb){j, sim});
    }
    qsort_r(*tmp, n, sizeof **tmp, cmp_nb, c);
    if (n > c->nnb[i] || !c->nbs[i])
        c->nbs[i] = core_xrealloc(c->nbs[i], (n + 1) * sizeof **tmp);
    memcpy(c->nbs[i], *tmp, n * sizeof **tmp);
    c->nnb[i] = (uint16_t)n;
}

void reco__cooc_update(struct reco_cooc *c, struct state_shard *const *shards, int nshards,
                       bool full, int64_t budget_ns)
{
    int64_t t0 = core_mono_ns();
    if (c->npos != nshards) {
        c->pos = core_xrealloc(c->pos, (size_t)(nshards + 1) * sizeof *c->pos);
        c->npos = nshards;
        full = true;
    }
    full = full || c->updates % FULL_EVERY == 0;
    struct state_cooc_pos *now = core_xmalloc((size_t)(nshards + 1) * sizeof *now);
    if (!full)
        for (int p = 0; p < nshards && !full; p++)
            full = state_shard_cooc_changes(shards[p], &c->pos[p], mark, c, &now[p]);
    if (full) {
        /* every row, items in shard order: the same table on every node */
        clear(c);
        c->cursor = 0;
        for (int p = 0; p < nshards; p++)
            state_shard_cooc_changes(shards[p], NULL, mark, c, &now[p]);
    }
    memcpy(c->pos, now, (size_t)nshards * sizeof *now);
    free(now);
    uint32_t ndirty = 0;
    for (uint32_t i = 0; i < c->it.n; i++)
        ndirty += c->dirty[i];
    c->live = 0;
    c->updates++;
    c->full_updates += full;
    bool was_settled = full || (c->last_full && ndirty == 0); /* nothing changed: settled */
    if (c->acc_cap < c->it.n) {
        free(c->acc);
        free(c->touched);
        c->acc_cap = c->it.cap;
        c->acc = core_xcalloc(c->acc_cap, sizeof *c->acc);
        c->touched = core_xmalloc(c->acc_cap * sizeof *c->touched);
    }
    /* the changed items' counts first: their rows are scored with them */
    for (uint32_t i = 0; i < c->it.n; i++) {
        if (!c->dirty[i])
            continue;
        double occ = 0;
        for (int p = 0; p < nshards; p++)
            occ += state_shard_cooc_row(shards[p], c->it.ids[i], c->it.lens[i], c->it.hashes[i],
                                        NULL, NULL);
        c->occ[i] = occ;
        c->occ_a[i] = pow(occ, ALPHA);
        c->occ_b[i] = pow(occ, 1 - ALPHA);
    }
    for (uint32_t i = 0; i < c->it.n; i++)
        c->live += c->occ[i] > 0;
    /* A budget (never for full updates) leaves the rest dirty for the next update, which
     * starts where this one stopped: the model's other parts keep their refresh period. */
    struct reco_nb *tmp = NULL;
    uint32_t tmp_cap = 0, n = c->it.n, done = 0;
    uint32_t start = c->cursor < n ? c->cursor : 0, k = 0;
    for (; k < n; k++) {
        uint32_t i = (start + k) % n;
        if (!c->dirty[i])
            continue;
        if (!full && budget_ns > 0 && done % 16 == 0 && done > 0 && core_mono_ns() - t0 > budget_ns)
            break;
        neighbours(c, i, shards, nshards, &tmp, &tmp_cap);
        c->dirty[i] = 0;
        done++;
    }
    free(tmp);
    c->cursor = n ? (start + k) % n : 0;
    c->pending = ndirty - done;
    c->last_full = was_settled && c->pending == 0;
}

uint32_t reco__cooc_pending(const struct reco_cooc *c)
{
    return c->pending;
}
