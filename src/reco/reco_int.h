/* reco internals: the immutable model the background refresher builds (reco_model.c) and the
 * request path reads (reco.c). */
#ifndef RECSTREAM_RECO_INT_H
#define RECSTREAM_RECO_INT_H

#include "reco/reco.h"

#include <pthread.h>
#include <stdatomic.h>

/* (item index, score) */
struct reco_nb {
    uint32_t idx;
    float score;
};

/* A compressed list per key: entries of key k are e[off[k] .. off[k+1]). */
struct reco_csr {
    uint32_t *off;
    struct reco_nb *e;
};

/* A merged co-visitation list (over every shard), cached in the model the first time a
 * request needs it: model indexes, best first. */
struct reco_cov {
    int n;
    struct reco_nb e[];
};

/* Interned item ids with dense indexes 0..n-1 (reco_ids.c). */
struct reco_ids {
    struct core_arena arena; /* the id bytes */
    uint32_t n, cap;         /* cap: of ids/lens/hashes (callers size parallel arrays by it) */
    const char **ids;
    uint32_t *lens;
    uint64_t *hashes; /* XXH3 of each id (compared before the bytes) */
    uint32_t *htab;   /* open addressing: index + 1, 0 = empty */
    uint32_t hmask;
};
void reco__ids_init(struct reco_ids *t);
void reco__ids_dispose(struct reco_ids *t);
/* Index of id, or UINT32_MAX; _h when its XXH3 hash h is known. */
uint32_t reco__ids_find(const struct reco_ids *t, const char *id, size_t len);
uint32_t reco__ids_find_h(const struct reco_ids *t, uint64_t h, const char *id, size_t len);
/* Index of the id with XXH3 hash h and length len, its bytes not compared. */
uint32_t reco__ids_find_hash(const struct reco_ids *t, uint64_t h, size_t len);
/* Index of id, added (copied) when new; *added tells which. t->cap may grow. */
uint32_t reco__ids_intern(struct reco_ids *t, const char *id, size_t len, bool *added);
uint32_t reco__ids_intern_h(struct reco_ids *t, uint64_t h, const char *id, size_t len,
                            bool *added);

struct reco_model {
    atomic_int refs;
    _Atomic(struct reco_cov *) *cov; /* per item, NULL until first needed */
    struct core_arena arena;
    struct reco_ids it;      /* items: every item the shards or the catalog know */
    float *pop;              /* decayed popularity summed over shards */
    uint32_t *cat_slot;      /* catalog slot (catalog_at) at build time, UINT32_MAX: none */
    struct reco_csr knn;     /* collaborative item-kNN (cosine over users' recent items) */
    struct reco_csr content; /* content neighbours (TF-IDF cosine of categories + tags) */
    struct reco_nb *trending, *popular, *fresh;
    int ntrending, npopular, nfresh;
    /* categories (catalog symbols) with their popular and fresh items */
    int ncats;
    struct reco_ids cats; /* category names: category c is cats' id c */
    int32_t *cat_of_sym;  /* catalog symbol -> category index (-1: not a category) */
    uint32_t nsym;
    struct reco_csr cat_pop, cat_fresh;
    /* context popularity merged over the shards: key "device:mobile" -> top items */
    struct reco_ids ctxs; /* context keys: key k is ctxs' id k, its list ctx row k */
    struct reco_csr ctx;
    int64_t now_ms;   /* event time the model was built at (0: no events yet) */
    int64_t built_ns; /* monotonic */
    int64_t build_us;
};

/* Item-kNN lists from the shards' co-occurrence rows (reco_cooc.c). */
struct reco_cooc;
struct reco_cooc *reco__cooc_new(int neighbours);
void reco__cooc_free(struct reco_cooc *c);
/* Recomputes the lists of the items whose rows changed since the last update (full: every
 * item, in shard order; also every 32nd update and after a shard was replaced). budget_ns >
 * 0 (not for full updates): stop recomputing after about that long; the rest stays pending
 * for the next update. */
void reco__cooc_update(struct reco_cooc *c, struct state_shard *const *shards, int nshards,
                       bool full, int64_t budget_ns);
/* Items whose lists the last update left for the next one (budget). */
uint32_t reco__cooc_pending(const struct reco_cooc *c);
uint32_t reco__cooc_count(const struct reco_cooc *c);
/* Items some shard holds a row of (count() also has removed ones until a full update). */
uint32_t reco__cooc_live(const struct reco_cooc *c);
uint64_t reco__cooc_full_updates(const struct reco_cooc *c);
/* Whether the last update was a full one. */
bool reco__cooc_settled(const struct reco_cooc *c);
const char *reco__cooc_id(const struct reco_cooc *c, uint32_t i, uint32_t *len);
const struct reco_nb *reco__cooc_neighbours(const struct reco_cooc *c, uint32_t i, int *n);

/* Builds a model from the shards, the catalog and the item-kNN lists (reco_cooc.c: its items
 * get the first model indexes, in its order). */
struct reco_model *reco__model_build(const struct reco_config *cfg,
                                     struct state_shard *const *shards, int nshards,
                                     struct catalog *cat, const struct reco_cooc *cooc);
void reco__model_unref(struct reco_model *m);
/* Index of an item id, or UINT32_MAX. */
uint32_t reco__model_find(const struct reco_model *m, const char *id, size_t len);
/* The same for an id whose XXH3 hash h is known (callers looking up several ids hash them
 * all and prefetch reco__model_slot first). */
uint32_t reco__model_find_h(const struct reco_model *m, uint64_t h, const char *id, size_t len);
/* The index of the item whose id has XXH3 hash h and length len, the bytes not compared (no
 * read of the id itself): for matching a user's history against the model, where two ids
 * sharing 64 hash bits would at worst exclude an item from that user's own list. */
uint32_t reco__model_find_hash(const struct reco_model *m, uint64_t h, size_t len);
static inline const uint32_t *reco__model_slot(const struct reco_model *m, uint64_t h)
{
    return m->it.htab ? &m->it.htab[(uint32_t)h & m->it.hmask] : NULL;
}
/* Index of a category name, or -1. */
int reco__model_cat(const struct reco_model *m, const char *name);
/* Category index of a catalog symbol, or -1 (symbols newer than the model, tags). */
static inline int reco__model_cat_sym(const struct reco_model *m, uint32_t sym)
{
    return sym < m->nsym ? m->cat_of_sym[sym] : -1;
}
/* Index of a context key, or -1. */
int reco__model_ctx(const struct reco_model *m, const char *key);

struct reco {
    struct reco_config cfg;
    double seed_w[STATE_READ_RECENT_MAX]; /* pow(cfg.seed_decay, k): a seed's weight */
    struct state_shard *const *shards;
    int nshards;
    struct catalog *catalog;
    pthread_mutex_t mu; /* guards model (the pointer swap) */
    struct reco_model *model;
    pthread_mutex_t build_mu; /* one build at a time; guards cooc */
    struct reco_cooc *cooc;
    pthread_t thread;
    bool running;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    bool stop;
    atomic_int_fast64_t requests, cold_starts, builds;
    atomic_int_fast64_t knn_items, knn_full; /* the kNN table's items, full updates */
    atomic_int_fast64_t knn_pending;         /* lists a budgeted update left for the next */
    uint64_t last_catalog_version;
    int64_t last_events;
};

/* A counted reference to the current model (never NULL after reco_new). */
struct reco_model *reco__model_get(struct reco *r);

#endif
