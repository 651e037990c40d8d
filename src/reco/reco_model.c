/*
 * The recommender's background model: a snapshot of whole-history structures built from the
 * processor's shards and the catalog, immutable once built and reference-counted so requests
 * keep using the old one while a new one is built.
 *
 * - item-kNN: the lists reco_cooc.c keeps from the shards' whole-history co-occurrence rows
 *   (asymmetric cosine with a small shrinkage, so that items seen by one or two users do not
 *   look perfectly similar to everything those users touched);
 * - content neighbours: TF-IDF cosine over an item's categories and tags (new items, which
 *   nobody has interacted with yet, get neighbours and so exposure);
 * - trending (1 h window count, then 24 h), popular (decayed popularity), fresh (newest
 *   available items) and per-category popular / fresh lists.
 */
#include "reco/reco_int.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LIST_MAX 200     /* trending / popular lists */
#define CAT_POP_MAX 100  /* per category */
#define CAT_FRESH_MAX 30 /* per category */
#define FRESH_MAX 100    /* newest available items */
#define CONTENT_MAX 20   /* content neighbours per item */
#define POSTING_MAX 2000 /* items scanned per token for content similarity */

/* ---- the item table ------------------------------------------------------------------------ */

struct builder {
    const struct reco_config *cfg;
    struct reco_model *m;
    uint32_t cap; /* of the per-item arrays */
    double *pop;
    int64_t *c1h, *c24h;
    int64_t *published;
    bool *available, *in_catalog;
    uint32_t *cat_slot; /* catalog slot of the item at build time, UINT32_MAX: none */
    /* item -> catalog symbols (categories first, then tags) */
    uint32_t *tok_off, *toks, ntoks, tokcap;
    uint8_t *ncat_of;
};

uint32_t reco__model_find(const struct reco_model *m, const char *id, size_t len)
{
    return reco__ids_find(&m->it, id, len);
}

uint32_t reco__model_find_h(const struct reco_model *m, uint64_t h, const char *id, size_t len)
{
    return reco__ids_find_h(&m->it, h, id, len);
}

uint32_t reco__model_find_hash(const struct reco_model *m, uint64_t h, size_t len)
{
    return reco__ids_find_hash(&m->it, h, len);
}

/* The index of id, added when new (the builder's per-item arrays follow the table's
 * capacity). */
static uint32_t intern(struct builder *b, const char *id, size_t len)
{
    bool added;
    uint32_t i = reco__ids_intern(&b->m->it, id, len, &added);
    if (!added)
        return i;
    if (b->cap < b->m->it.cap) {
        uint32_t ncap = b->m->it.cap;
        b->pop = core_xrealloc(b->pop, ncap * sizeof *b->pop);
        b->c1h = core_xrealloc(b->c1h, ncap * sizeof *b->c1h);
        b->c24h = core_xrealloc(b->c24h, ncap * sizeof *b->c24h);
        b->published = core_xrealloc(b->published, ncap * sizeof *b->published);
        b->available = core_xrealloc(b->available, ncap * sizeof *b->available);
        b->in_catalog = core_xrealloc(b->in_catalog, ncap * sizeof *b->in_catalog);
        b->cat_slot = core_xrealloc(b->cat_slot, ncap * sizeof *b->cat_slot);
        b->ncat_of = core_xrealloc(b->ncat_of, ncap * sizeof *b->ncat_of);
        b->cap = ncap;
    }
    b->pop[i] = 0;
    b->c1h[i] = b->c24h[i] = 0;
    b->published[i] = 0;
    b->available[i] = true;
    b->in_catalog[i] = false;
    b->cat_slot[i] = UINT32_MAX;
    b->ncat_of[i] = 0;
    return i;
}

static void item_fn(void *arg, const char *id, size_t len, const struct state_item_brief *br)
{
    struct builder *b = arg;
    uint32_t i = intern(b, id, len);
    b->pop[i] += br->popularity;
    b->c1h[i] += br->count_1h;
    b->c24h[i] += br->count_24h;
}

static void catalog_load(struct builder *b, struct catalog *cat)
{
    struct reco_model *m = b->m;
    catalog_read_begin(cat);
    /* categories: catalog symbol -> model category index */
    uint32_t cap = catalog_capacity(cat);
    int32_t *cat_of_sym = NULL;
    size_t nsym = 0;
    for (uint32_t c = 0; c < cap; c++) {
        const struct catalog_item *ci = catalog_at(cat, c);
        if (!ci)
            continue;
        uint32_t i = intern(b, ci->id, ci->id_len);
        b->in_catalog[i] = true;
        b->cat_slot[i] = c;
        b->available[i] = ci->available;
        b->published[i] = ci->published_ms;
        b->tokcap += (uint32_t)(ci->ncategories + ci->ntags);
        for (int k = 0; k < ci->ncategories; k++) {
            uint32_t sym = ci->categories[k];
            if (sym >= nsym) {
                size_t nn = (sym + 1) * 2;
                cat_of_sym = core_xrealloc(cat_of_sym, nn * sizeof *cat_of_sym);
                for (size_t z = nsym; z < nn; z++)
                    cat_of_sym[z] = -1;
                nsym = nn;
            }
            if (cat_of_sym[sym] < 0) {
                cat_of_sym[sym] = m->ncats++;
                const char *name = catalog_symbol(cat, sym);
                bool added;
                uint32_t ci_name =
                    reco__ids_intern(&m->cats, name ? name : "", name ? strlen(name) : 0, &added);
                /* one symbol per name (the catalog interns them), so category c is cats' id c */
                assert(added && ci_name == (uint32_t)m->ncats - 1);
                (void)ci_name;
            }
        }
    }
    /* second pass: tokens per item (category tokens are model category ids; tag tokens are
     * offset by the symbol count so the two spaces do not collide) */
    b->tok_off = core_xcalloc((size_t)m->it.n + 1, sizeof *b->tok_off);
    uint32_t *tmp_start = core_xcalloc((size_t)m->it.n + 1, sizeof *tmp_start);
    uint32_t *tmp_n = core_xcalloc((size_t)m->it.n + 1, sizeof *tmp_n);
    b->ntoks = 0;
    b->toks = core_xmalloc(((size_t)b->tokcap + 1) * sizeof *b->toks);
    for (uint32_t c = 0; c < cap; c++) {
        const struct catalog_item *ci = catalog_at(cat, c);
        if (!ci)
            continue;
        uint32_t i = reco__model_find(m, ci->id, ci->id_len);
        tmp_start[i] = b->ntoks;
        int nc = ci->ncategories < 255 ? ci->ncategories : 255;
        b->ncat_of[i] = (uint8_t)nc;
        for (int k = 0; k < nc; k++)
            b->toks[b->ntoks++] = (uint32_t)cat_of_sym[ci->categories[k]];
        for (int k = 0; k < ci->ntags; k++)
            b->toks[b->ntoks++] = (uint32_t)m->ncats + ci->tags[k];
        tmp_n[i] = b->ntoks - tmp_start[i];
    }
    catalog_read_end(cat);
    /* make tok_off a CSR in item order */
    uint32_t *toks = core_xmalloc(((size_t)b->ntoks + 1) * sizeof *toks);
    uint32_t k = 0;
    for (uint32_t i = 0; i < m->it.n; i++) {
        b->tok_off[i] = k;
        memcpy(toks + k, b->toks + tmp_start[i], tmp_n[i] * sizeof *toks);
        k += tmp_n[i];
    }
    b->tok_off[m->it.n] = k;
    free(b->toks);
    b->toks = toks;
    free(tmp_start);
    free(tmp_n);
    m->cat_of_sym = cat_of_sym; /* kept: the request path maps item categories with it */
    m->nsym = (uint32_t)nsym;
}

/* ---- top-k selection ------------------------------------------------------------------------ */

/* A bounded min-heap on score (ties: larger idx is "smaller", so lower ids win). */
struct topk {
    struct reco_nb *h;
    int n, k;
};

static bool nb_less(const struct reco_nb *a, const struct reco_nb *b)
{
    return a->score < b->score || (a->score == b->score && a->idx > b->idx);
}

static void topk_push(struct topk *t, uint32_t idx, float score)
{
    struct reco_nb e = {idx, score};
    if (t->n < t->k) {
        int i = t->n++;
        while (i > 0 && nb_less(&e, &t->h[(i - 1) / 2])) {
            t->h[i] = t->h[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        t->h[i] = e;
        return;
    }
    if (!nb_less(&t->h[0], &e))
        return;
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, s = -1;
        const struct reco_nb *best = &e;
        if (l < t->n && nb_less(&t->h[l], best)) {
            s = l;
            best = &t->h[l];
        }
        if (r < t->n && nb_less(&t->h[r], best))
            s = r;
        if (s < 0)
            break;
        t->h[i] = t->h[s];
        i = s;
    }
    t->h[i] = e;
}

static int cmp_nb_desc(const void *a, const void *b)
{
    const struct reco_nb *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sorts the heap's content descending (score, then idx ascending) and returns the count. */
static int topk_finish(struct topk *t)
{
    qsort(t->h, (size_t)t->n, sizeof *t->h, cmp_nb_desc);
    return t->n;
}

/* ---- item-kNN: reco_cooc.c's neighbour lists, whose items have the same indexes ----------- */

static void build_knn(struct builder *b, const struct reco_cooc *cooc)
{
    struct reco_model *m = b->m;
    uint32_t n = m->it.n, nc = cooc ? reco__cooc_count(cooc) : 0;
    m->knn.off = core_xmalloc(((size_t)n + 1) * sizeof *m->knn.off);
    size_t total = 0;
    for (uint32_t i = 0; i < nc; i++) {
        int k;
        reco__cooc_neighbours(cooc, i, &k);
        total += (size_t)k;
    }
    m->knn.e = core_xmalloc((total + 1) * sizeof *m->knn.e);
    size_t ne = 0;
    for (uint32_t i = 0; i < n; i++) {
        m->knn.off[i] = (uint32_t)ne;
        if (i >= nc)
            continue;
        int k;
        const struct reco_nb *e = reco__cooc_neighbours(cooc, i, &k);
        if (k > 0) /* an item whose list is still pending has none yet */
            memcpy(m->knn.e + ne, e, (size_t)k * sizeof *e);
        ne += (size_t)k;
    }
    m->knn.off[n] = (uint32_t)ne;
}

/* ---- content neighbours ---------------------------------------------------------------------- */

static void build_content(struct builder *b)
{
    struct reco_model *m = b->m;
    uint32_t n = m->it.n;
    m->content.off = core_xcalloc((size_t)n + 1, sizeof *m->content.off);
    if (!b->toks || b->tok_off[n] == 0) {
        m->content.e = core_xmalloc(sizeof *m->content.e);
        return;
    }
    uint32_t ntok = 0;
    for (uint32_t j = 0; j < b->tok_off[n]; j++)
        if (b->toks[j] + 1 > ntok)
            ntok = b->toks[j] + 1;
    uint32_t *df = core_xcalloc((size_t)ntok + 1, sizeof *df);
    for (uint32_t j = 0; j < b->tok_off[n]; j++)
        df[b->toks[j]]++;
    uint32_t *poff = core_xmalloc(((size_t)ntok + 1) * sizeof *poff);
    uint32_t s = 0;
    for (uint32_t t = 0; t < ntok; t++) {
        poff[t] = s;
        s += df[t];
    }
    poff[ntok] = s;
    uint32_t *post = core_xmalloc(((size_t)s + 1) * sizeof *post);
    uint32_t *fill = core_xcalloc((size_t)ntok + 1, sizeof *fill);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = b->tok_off[i]; j < b->tok_off[i + 1]; j++) {
            uint32_t t = b->toks[j];
            post[poff[t] + fill[t]++] = i;
        }
    free(fill);
    double *idf = core_xmalloc(((size_t)ntok + 1) * sizeof *idf);
    for (uint32_t t = 0; t < ntok; t++)
        idf[t] = df[t] ? log(1.0 + (double)n / df[t]) : 0;
    double *norm = core_xcalloc((size_t)n + 1, sizeof *norm);
    for (uint32_t i = 0; i < n; i++) {
        double q = 0;
        for (uint32_t j = b->tok_off[i]; j < b->tok_off[i + 1]; j++)
            q += idf[b->toks[j]] * idf[b->toks[j]];
        norm[i] = sqrt(q);
    }
    float *acc = core_xcalloc((size_t)n + 1, sizeof *acc);
    uint32_t *touched = core_xmalloc(((size_t)n + 1) * sizeof *touched);
    size_t ecap = 1024, ne = 0;
    m->content.e = core_xmalloc(ecap * sizeof *m->content.e);
    struct topk tk = {core_xmalloc(CONTENT_MAX * sizeof *tk.h), 0, CONTENT_MAX};
    for (uint32_t i = 0; i < n; i++) {
        m->content.off[i] = (uint32_t)ne;
        if (!b->available[i] || norm[i] == 0)
            continue;
        uint32_t nt = 0;
        for (uint32_t j = b->tok_off[i]; j < b->tok_off[i + 1]; j++) {
            uint32_t t = b->toks[j];
            uint32_t end = poff[t + 1];
            if (end - poff[t] > POSTING_MAX)
                end = poff[t] + POSTING_MAX;
            for (uint32_t p = poff[t]; p < end; p++) {
                uint32_t x = post[p];
                if (x == i || !b->available[x])
                    continue;
                if (acc[x] == 0)
                    touched[nt++] = x;
                acc[x] += (float)(idf[t] * idf[t]);
            }
        }
        tk.n = 0;
        for (uint32_t z = 0; z < nt; z++) {
            uint32_t x = touched[z];
            topk_push(&tk, x, (float)(acc[x] / (norm[i] * norm[x])));
            acc[x] = 0;
        }
        int k = topk_finish(&tk);
        if (ne + (size_t)k > ecap) {
            ecap = (ecap + (size_t)k) * 2;
            m->content.e = core_xrealloc(m->content.e, ecap * sizeof *m->content.e);
        }
        memcpy(m->content.e + ne, tk.h, (size_t)k * sizeof *tk.h);
        ne += (size_t)k;
    }
    m->content.off[n] = (uint32_t)ne;
    free(tk.h);
    free(acc);
    free(touched);
    free(norm);
    free(idf);
    free(post);
    free(poff);
    free(df);
}

/* ---- ranked lists ---------------------------------------------------------------------------- */

static struct reco_nb *list_copy(struct topk *t, int *n)
{
    *n = topk_finish(t);
    struct reco_nb *out = core_xmalloc(((size_t)*n + 1) * sizeof *out);
    memcpy(out, t->h, (size_t)*n * sizeof *out);
    return out;
}

static void build_lists(struct builder *b)
{
    struct reco_model *m = b->m;
    const struct reco_config *cfg = b->cfg;
    struct topk tr = {core_xmalloc(LIST_MAX * sizeof *tr.h), 0, LIST_MAX};
    struct topk po = {core_xmalloc(LIST_MAX * sizeof *po.h), 0, LIST_MAX};
    struct topk fr = {core_xmalloc(FRESH_MAX * sizeof *fr.h), 0, FRESH_MAX};
    /* freshness is judged on the event clock; before any event, on the wall clock */
    int64_t clock = m->now_ms > 0 ? m->now_ms : core_now_ms();
    int64_t horizon = clock - cfg->new_item_ms;
    for (uint32_t i = 0; i < m->it.n; i++) {
        if (!b->available[i])
            continue;
        double trend = (double)b->c1h[i] + (double)b->c24h[i] / 24.0;
        if (trend > 0)
            topk_push(&tr, i, (float)trend);
        if (b->pop[i] > 0)
            topk_push(&po, i, (float)b->pop[i]);
        if (b->in_catalog[i] && b->published[i] > horizon && b->published[i] <= clock)
            topk_push(&fr, i, (float)((double)(b->published[i] - horizon) / 3600000.0));
    }
    m->trending = list_copy(&tr, &m->ntrending);
    m->popular = list_copy(&po, &m->npopular);
    m->fresh = list_copy(&fr, &m->nfresh);
    free(tr.h);
    free(po.h);
    free(fr.h);

    /* per category */
    int nc = m->ncats;
    m->cat_pop.off = core_xcalloc((size_t)nc + 1, sizeof *m->cat_pop.off);
    m->cat_fresh.off = core_xcalloc((size_t)nc + 1, sizeof *m->cat_fresh.off);
    struct topk *cp = core_xcalloc((size_t)nc + 1, sizeof *cp);
    struct topk *cf = core_xcalloc((size_t)nc + 1, sizeof *cf);
    for (int c = 0; c < nc; c++) {
        cp[c] = (struct topk){core_xmalloc(CAT_POP_MAX * sizeof *cp[c].h), 0, CAT_POP_MAX};
        cf[c] = (struct topk){core_xmalloc(CAT_FRESH_MAX * sizeof *cf[c].h), 0, CAT_FRESH_MAX};
    }
    for (uint32_t i = 0; i < m->it.n && b->tok_off; i++) {
        if (!b->available[i])
            continue;
        for (uint32_t j = b->tok_off[i]; j < b->tok_off[i] + b->ncat_of[i]; j++) {
            uint32_t c = b->toks[j];
            /* popularity with a floor so that items nobody has touched yet still rank (after
             * every touched one) */
            topk_push(&cp[c], i, (float)(b->pop[i] + 1e-9));
            if (b->published[i] > horizon && b->published[i] <= clock)
                topk_push(&cf[c], i, (float)((double)(b->published[i] - horizon) / 3600000.0));
        }
    }
    size_t pn = 0, fn = 0;
    for (int c = 0; c < nc; c++) {
        pn += (size_t)cp[c].n;
        fn += (size_t)cf[c].n;
    }
    m->cat_pop.e = core_xmalloc((pn + 1) * sizeof *m->cat_pop.e);
    m->cat_fresh.e = core_xmalloc((fn + 1) * sizeof *m->cat_fresh.e);
    pn = fn = 0;
    for (int c = 0; c < nc; c++) {
        m->cat_pop.off[c] = (uint32_t)pn;
        int k = topk_finish(&cp[c]);
        memcpy(m->cat_pop.e + pn, cp[c].h, (size_t)k * sizeof *cp[c].h);
        pn += (size_t)k;
        m->cat_fresh.off[c] = (uint32_t)fn;
        k = topk_finish(&cf[c]);
        memcpy(m->cat_fresh.e + fn, cf[c].h, (size_t)k * sizeof *cf[c].h);
        fn += (size_t)k;
        free(cp[c].h);
        free(cf[c].h);
    }
    m->cat_pop.off[nc] = (uint32_t)pn;
    m->cat_fresh.off[nc] = (uint32_t)fn;
    free(cp);
    free(cf);
}

/* ---- context popularity ------------------------------------------------------------------------
 */

#define CTX_MAX 50 /* items per context key */

struct ctx_entry {
    uint32_t key, item;
    float score;
};

struct ctx_builder {
    struct builder *b;
    struct ctx_entry *e;
    size_t n, cap;
};

static void ctx_fn(void *arg, const char *key, size_t klen, const char *id, size_t len,
                   double score)
{
    struct ctx_builder *cb = arg;
    bool added;
    uint32_t k = reco__ids_intern(&cb->b->m->ctxs, key, klen, &added);
    if (cb->n == cb->cap) {
        cb->cap = cb->cap ? cb->cap * 2 : 1024;
        cb->e = core_xrealloc(cb->e, cb->cap * sizeof *cb->e);
    }
    cb->e[cb->n++] = (struct ctx_entry){k, intern(cb->b, id, len), (float)score};
}

static int cmp_ctx_entry(const void *a, const void *b)
{
    const struct ctx_entry *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->item < y->item ? -1 : x->item > y->item;
}

/* Merges the shards' context lists: scores of the same (key, item) add up; top CTX_MAX. */
static void build_contexts(struct builder *b, struct state_shard *const *shards, int nshards)
{
    struct ctx_builder cb = {.b = b};
    for (int p = 0; p < nshards; p++)
        state_shard_contexts_each(shards[p], ctx_fn, &cb);
    struct reco_model *m = b->m;
    if (cb.n > 0)
        qsort(cb.e, cb.n, sizeof *cb.e, cmp_ctx_entry);
    uint32_t nkeys = m->ctxs.n; /* key k is ctxs' id k */
    m->ctx.off = core_xcalloc((size_t)nkeys + 1, sizeof *m->ctx.off);
    m->ctx.e = core_xmalloc(((size_t)nkeys * CTX_MAX + 1) * sizeof *m->ctx.e);
    struct topk t = {core_xmalloc(CTX_MAX * sizeof *t.h), 0, CTX_MAX};
    size_t i = 0, ne = 0;
    for (uint32_t k = 0; k < nkeys; k++) {
        m->ctx.off[k] = (uint32_t)ne;
        t.n = 0;
        while (i < cb.n && cb.e[i].key == k) {
            uint32_t item = cb.e[i].item;
            double sum = 0;
            for (; i < cb.n && cb.e[i].key == k && cb.e[i].item == item; i++)
                sum += cb.e[i].score;
            topk_push(&t, item, (float)sum);
        }
        int n = topk_finish(&t);
        memcpy(m->ctx.e + ne, t.h, (size_t)n * sizeof *t.h);
        ne += (size_t)n;
    }
    m->ctx.off[nkeys] = (uint32_t)ne;
    free(t.h);
    free(cb.e);
}

int reco__model_ctx(const struct reco_model *m, const char *key)
{
    uint32_t k = reco__ids_find(&m->ctxs, key, strlen(key));
    return k != UINT32_MAX ? (int)k : -1;
}

int reco__model_cat(const struct reco_model *m, const char *name)
{
    uint32_t c = reco__ids_find(&m->cats, name, strlen(name));
    return c != UINT32_MAX ? (int)c : -1;
}

struct reco_model *reco__model_build(const struct reco_config *cfg,
                                     struct state_shard *const *shards, int nshards,
                                     struct catalog *cat, const struct reco_cooc *cooc)
{
    int64_t t0 = core_mono_ns();
    struct reco_model *m = core_xcalloc(1, sizeof *m);
    atomic_init(&m->refs, 1);
    core_arena_init(&m->arena);
    reco__ids_init(&m->it);
    reco__ids_init(&m->cats);
    reco__ids_init(&m->ctxs);
    struct builder b = {.cfg = cfg, .m = m};
    for (uint32_t i = 0, nc = cooc ? reco__cooc_count(cooc) : 0; i < nc; i++) {
        uint32_t len;
        const char *id = reco__cooc_id(cooc, i, &len);
        intern(&b, id, len); /* same index as in the kNN table */
    }
    int64_t now = 0;
    for (int p = 0; p < nshards; p++) {
        int64_t t = state_shard_now(shards[p]);
        if (t > now)
            now = t;
        state_shard_items_each(shards[p], item_fn, &b);
    }
    m->now_ms = now; /* event time; 0 before any event */
    build_contexts(&b, shards, nshards);
    if (cat)
        catalog_load(&b, cat);
    m->pop = core_xmalloc(((size_t)m->it.n + 1) * sizeof *m->pop);
    for (uint32_t i = 0; i < m->it.n; i++)
        m->pop[i] = (float)b.pop[i];
    build_knn(&b, cooc);
    build_content(&b);
    build_lists(&b);
    free(b.pop);
    free(b.c1h);
    free(b.c24h);
    free(b.published);
    free(b.available);
    free(b.in_catalog);
    m->cat_slot = b.cat_slot;
    free(b.ncat_of);
    free(b.tok_off);
    free(b.toks);
    m->cov = core_xcalloc((size_t)m->it.n + 1, sizeof *m->cov);
    m->built_ns = core_mono_ns();
    m->build_us = (m->built_ns - t0) / 1000;
    return m;
}

void reco__model_unref(struct reco_model *m)
{
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1)
        return;
    for (uint32_t i = 0; m->cov && i < m->it.n; i++)
        free(atomic_load(&m->cov[i]));
    free(m->cov);
    core_arena_dispose(&m->arena);
    reco__ids_dispose(&m->it);
    reco__ids_dispose(&m->cats);
    reco__ids_dispose(&m->ctxs);
    free(m->cat_of_sym);
    free(m->ctx.off);
    free(m->ctx.e);
    free(m->pop);
    free(m->cat_slot);
    free(m->knn.off);
    free(m->knn.e);
    free(m->content.off);
    free(m->content.e);
    free(m->trending);
    free(m->popular);
    free(m->fresh);
    free(m->cat_pop.off);
    free(m->cat_pop.e);
    free(m->cat_fresh.off);
    free(m->cat_fresh.e);
    free(m);
}
