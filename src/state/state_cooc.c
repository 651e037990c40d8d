/*
 * Whole-history item co-occurrence of one partition: the counts behind the collaborative
 * item-kNN model, kept as shard state (checkpointed, handed over with the partition, published
 * in the aggregate image) so that the model a node builds by summing its shards is a function
 * of the log alone, whichever processes applied which partitions.
 *
 * When an item event of positive weight is applied, the item is paired with the user's previous
 * items (the recent ring before this event: up to recent_max, positive weights only), a pair d
 * positions apart counting 1 / (1 + GAP_DECAY d) (d = 0 for the previous entry), in both
 * items' rows; the item's occurrence count grows by one. Pairs with an item the shard no longer
 * holds are skipped.
 *
 * Bounds: a row keeps at most ST_CO_ROW_MAX neighbours (when full, the weaker half is dropped:
 * the heavy pairs survive, as in a heavy-hitters sketch); rows live on items, so they go with
 * the item (TTL, max_items). Dropping is decided on values only, so a restored row (whose
 * hash layout differs) evolves exactly as the original.
 */
#include "state/state_int.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Pairs close in a user's sequence say more than distant ones (as position weights in
 * session-based kNN). */
#define GAP_DECAY 0.1

static atomic_uint_fast64_t co_generations = 1;

uint64_t st__co_generation(void)
{
    return atomic_fetch_add(&co_generations, 1);
}

/* By the id's address (no dereference): a row's layout never shows in results (snapshots
 * sort entries, builders sum per id), so it need not be the same after a restore. */
static uint32_t slot_of(const struct st_str *key, uint32_t mask)
{
    uint64_t h = (uint64_t)(uintptr_t)key * 0x9e3779b97f4a7c15u;
    return (uint32_t)(h >> 32) & mask;
}

/* Inserts or adds; the key's reference is taken on insertion. */
static void row_put(struct st_co *r, struct st_str *key, float v)
{
    uint32_t m = r->cap - 1, h = slot_of(key, m);
    while (r->e[h].k && r->e[h].k != key)
        h = (h + 1) & m;
    if (!r->e[h].k) {
        r->e[h] = (struct st_co_entry){st__ref(key), 0};
        r->n++;
    }
    r->e[h].v += v;
}

/* Rehashes into ncap slots (in place when the size stays), keeping the entries worth more
 * than min_keep. */
static void row_resize(struct st *d, struct st_co *r, uint32_t ncap, float min_keep)
{
    struct st_co_entry *old = r->e, *keep = old;
    uint32_t ocap = r->cap, on = r->n;
    if (ncap == ocap) { /* compact the survivors to the front, then reinsert them */
        uint32_t n = 0;
        for (uint32_t i = 0; i < ocap; i++) {
            if (!old[i].k)
                continue;
            if (old[i].v > min_keep)
                old[n++] = old[i];
            else
                st__unref(d, old[i].k);
        }
        struct st_co_entry *tmp = core_xmalloc((n + 1) * sizeof *tmp);
        memcpy(tmp, old, n * sizeof *tmp);
        memset(old, 0, ocap * sizeof *old);
        r->n = 0;
        for (uint32_t i = 0; i < n; i++) {
            row_put(r, tmp[i].k, tmp[i].v);
            st__unref(d, tmp[i].k); /* row_put took its own reference */
        }
        free(tmp);
        d->co_pairs += (int64_t)r->n - (int64_t)on;
        return;
    }
    r->e = st__alloc(d, ncap * sizeof *r->e);
    r->cap = ncap;
    r->n = 0;
    for (uint32_t i = 0; i < ocap; i++) {
        if (!keep[i].k)
            continue;
        if (keep[i].v > min_keep)
            row_put(r, keep[i].k, keep[i].v);
        st__unref(d, keep[i].k);
    }
    d->co_pairs += (int64_t)r->n - (int64_t)on;
    st__free(d, old, ocap * sizeof *old);
}

/* The k-th smallest of v[0..n) (quickselect, Hoare partition; v is reordered). */
static float kth(float *v, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = v[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                float t = v[i];
                v[i++] = v[j];
                v[j--] = t;
            }
        }
        if (k <= j)
            hi = j; /* v[lo..j] <= pivot */
        else if (k >= i)
            lo = i; /* v[i..hi] >= pivot */
        else
            return v[k]; /* between: equal to the pivot */
    }
    return v[k];
}

void st__co_reserve(struct st *d, struct st_item *it, uint32_t n)
{
    struct st_co *r = st__co_row(d, it);
    uint32_t cap = 8;
    while ((n + 1) * 2 > cap && cap < 2 * ST_CO_ROW_MAX)
        cap *= 2;
    if (cap > r->cap)
        row_resize(d, r, cap, -1);
}

struct st_co *st__co_row(struct st *d, struct st_item *it)
{
    if (!it->co) {
        it->co = st__alloc(d, sizeof *it->co);
        d->co_rows++;
    }
    it->co->stamp = ++d->co_seq;
    return it->co;
}

void st__co_add(struct st *d, struct st_item *it, struct st_str *nb, float w)
{
    struct st_co *r = st__co_row(d, it);
    if (!r->cap)
        row_resize(d, r, 8, -1);
    if ((r->n + 1) * 2 > r->cap) {
        if (r->cap < 2 * ST_CO_ROW_MAX) {
            row_resize(d, r, r->cap * 2, -1);
        } else {
            /* full: keep the heavier half */
            float vals[2 * ST_CO_ROW_MAX];
            uint32_t n = 0;
            for (uint32_t x = 0; x < r->cap; x++)
                if (r->e[x].k)
                    vals[n++] = r->e[x].v;
            float median = kth(vals, (int)n, (int)(n / 2));
            row_resize(d, r, r->cap, median);
            if ((r->n + 1) * 2 > r->cap) /* all equal: drop them all but this pair's */
                row_resize(d, r, r->cap, INFINITY);
        }
    }
    uint32_t before = r->n;
    row_put(r, nb, w);
    d->co_pairs += (int64_t)(r->n - before);
}

void st__co_apply(struct st *d, const struct st_user *u, struct st_item *it, double w)
{
    if (!(w > 0))
        return;
    st__co_row(d, it)->occ += 1;
    int dist = 0;
    for (int a = u->nrecent - 1; a >= 0; a--, dist++) {
        const struct st_recent *e = &u->recent[(u->rhead + a) % u->rcap];
        if (!(e->weight > 0) || e->item == it->id)
            continue;
        struct st_item *other = st__item_find(d, e->item);
        if (!other)
            continue; /* expired or evicted meanwhile */
        float pw = (float)(1.0 / (1.0 + GAP_DECAY * dist));
        st__co_add(d, it, other->id, pw);
        st__co_add(d, other, it->id, pw);
    }
}

void st__co_free(struct st *d, struct st_item *it)
{
    struct st_co *r = it->co;
    if (!r)
        return;
    for (uint32_t x = 0; x < r->cap; x++)
        if (r->e[x].k)
            st__unref(d, r->e[x].k);
    d->co_pairs -= r->n;
    d->co_rows--;
    st__free(d, r->e, r->cap * sizeof *r->e);
    st__free(d, r, sizeof *r);
    it->co = NULL;
    /* the builder must learn that this item's row is gone */
    if (!d->co_gone)
        d->co_gone = core_xcalloc(ST_CO_GONE_MAX, sizeof *d->co_gone);
    struct st_str **slot = &d->co_gone[d->co_ngone % ST_CO_GONE_MAX];
    if (*slot)
        st__unref(d, *slot);
    *slot = st__ref(it->id);
    d->co_ngone++;
}

void st__co_trim(struct st *d)
{
    int64_t keep = d->cfg.cooc_items_max - d->cfg.cooc_items_max / 4;
    for (struct st_lnode *l = d->ilru.head; l && d->co_rows > keep; l = l->next)
        st__co_free(d, ITEM_OF(l));
}

void st__co_dispose(struct st *d)
{
    if (d->co_gone) {
        uint64_t n = d->co_ngone < ST_CO_GONE_MAX ? d->co_ngone : ST_CO_GONE_MAX;
        for (uint64_t i = 0; i < n; i++)
            st__unref(d, d->co_gone[i]);
        free(d->co_gone);
        d->co_gone = NULL;
    }
}

/* ---- reads for model builds ------------------------------------------------------------------ */

bool state_shard_cooc_changes(struct state_shard *s, const struct state_cooc_pos *since,
                              state_cooc_item_fn fn, void *arg, struct state_cooc_pos *now)
{
    pthread_rwlock_rdlock(&s->lock);
    const struct st *d = &s->d;
    bool full = !since || since->gen != d->co_gen || d->co_ngone - since->ngone > ST_CO_GONE_MAX ||
                since->seq > d->co_seq;
    uint64_t seq = full ? 0 : since->seq;
    for (struct st_lnode *l = d->ilru.head; l; l = l->next) {
        const struct st_item *it = ITEM_OF(l);
        if (it->co && it->co->stamp > seq)
            fn(arg, it->id->s, it->id->len, it->id->hash);
    }
    if (!full)
        for (uint64_t g = since->ngone; g < d->co_ngone; g++) {
            const struct st_str *id = d->co_gone[g % ST_CO_GONE_MAX];
            fn(arg, id->s, id->len, id->hash);
        }
    *now = (struct state_cooc_pos){d->co_gen, d->co_seq, d->co_ngone};
    pthread_rwlock_unlock(&s->lock);
    return full;
}

double state_shard_cooc_row(struct state_shard *s, const char *id, size_t len, uint64_t hash,
                            state_cooc_entry_fn fn, void *arg)
{
    pthread_rwlock_rdlock(&s->lock);
    const struct st_item *it = st__item_lookup(&s->d, hash, id, len);
    double occ = 0;
    if (it && it->co) {
        const struct st_co *r = it->co;
        occ = r->occ;
        for (uint32_t x = 0; fn && x < r->cap; x++) {
            if (x + 8 < r->cap && r->e[x + 8].k)
                __builtin_prefetch(r->e[x + 8].k); /* the ids are scattered: a miss each */
            if (r->e[x].k)
                fn(arg, r->e[x].k->s, r->e[x].k->len, r->e[x].k->hash, r->e[x].v);
        }
    }
    pthread_rwlock_unlock(&s->lock);
    return occ;
}
