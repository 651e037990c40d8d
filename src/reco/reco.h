/*
 * reco: recommendations from the processor's state and the item catalog.
 *
 *   candidates (session co-visitation, history co-visitation, collaborative item-kNN,
 *   category affinity / stated preferences, content similarity, trending, popularity,
 *   context popularity, fresh items)
 *   -> features (one normalised score per source) -> ranker (pluggable; blend by default)
 *   -> rules (consumed items, unavailable items, explicit excludes, category filter,
 *      per-category diversity cap, exploration slots for new items)
 *   -> items with scores and reasons, a recId, the strategy (which path served it) and the
 *      experiment variant.
 *
 * Live sources read the shards directly (co-visitation and context lists change with every
 * event); whole-history structures (item-kNN, content neighbours, trending/popular and
 * per-category lists) form an immutable model that a background thread rebuilds (or the
 * caller, with reco_refresh) and swaps in without blocking requests.
 *
 * Threads: reco_recommend from any number of threads; reco_refresh from one at a time.
 */
#ifndef RECSTREAM_RECO_H
#define RECSTREAM_RECO_H

#include "catalog/catalog.h"
#include "core/core.h"
#include "state/state.h"

struct reco_ranker; /* reco_rank.h */

/* Candidate sources; each has a blend weight (0 disables it). */
#define RECO_SOURCE_MAP(XX)                                                                        \
    XX(SESSION, "session", 0.6)                                                                    \
    XX(COVISIT, "covisit", 0.4)                                                                    \
    XX(COLLAB, "collab", 1.0)                                                                      \
    XX(CATEGORY, "category", 0.1)                                                                  \
    XX(CONTENT, "content", 0.05)                                                                   \
    XX(TRENDING, "trending", 0.1)                                                                  \
    XX(POPULAR, "popular", 0.1)                                                                    \
    XX(CONTEXT, "context", 0.05)                                                                   \
    XX(FRESH, "fresh", 0.05)

enum reco_source {
#define XX(id, name, w) RECO_SRC_##id,
    RECO_SOURCE_MAP(XX)
#undef XX
        RECO_SRC__COUNT
};
const char *reco_source_name(int src);
int reco_source_lookup(const char *name, size_t len);

struct reco_weights {
    double w[RECO_SRC__COUNT];
};
void reco_weights_default(struct reco_weights *w);
/* Parses "collab=1.5,trending=0" over *w; CORE_E_INVALID with a message on a bad entry. */
int reco_weights_parse(struct reco_weights *w, const char *spec, char *err, size_t errlen);

/* An A/B experiment: users are assigned to variants by hash(user key, experiment name). */
#define RECO_VARIANTS_MAX 8
struct reco_variant {
    char name[32];
    int share; /* percent; shares of an experiment add up to 100 */
    struct reco_weights weights;
};
struct reco_experiment {
    char name[64];
    int nvariants; /* 0: no experiment (variant "default") */
    struct reco_variant variants[RECO_VARIANTS_MAX];
};
/* Parses {"name":"..","variants":[{"name":"control","share":50,"weights":{"collab":1}},..]}
 * (weights override the defaults). CORE_E_INVALID with a message naming the field. */
int reco_experiment_parse(struct reco_experiment *x, const char *json, size_t len, char *err,
                          size_t errlen);

struct reco_config {
    struct reco_weights weights; /* used when no experiment is configured */
    struct reco_experiment experiment;
    int recent_items;       /* user history items used as seeds (default 10) */
    double seed_decay;      /* weight of the k-th most recent seed: seed_decay^k (0.85) */
    int covisit_seeds;      /* newest seeds whose co-visitation is read live (default 3) */
    int diversity_cap;      /* max items of one category per list; 0 = (count+1)/2 (min 2) */
    double exploration;     /* share of slots reserved for new items (default 0.1) */
    int64_t new_item_ms;    /* "new": published within this (default 7 days) */
    uint32_t exclude_types; /* bit per event type: items the user had such an event
                               with are not recommended (default: every item type with a
                               positive weight) */
    int64_t refresh_ms;     /* background model rebuild period (default 2 s; 0 = manual) */
    int knn_neighbours;     /* item-kNN: neighbours kept per item (default 50) */
    int64_t knn_items;      /* item-kNN: items with a co-occurrence row per shard (default
                               200,000; the server passes it to state_config.cooc_items_max) */
    /* Where a request reads its user: NULL = state_shard_user_read on the user's shard (the
     * embedded node). A serving-only node (role api) reads the store instead. Called on the
     * request's thread with the shard of the user's partition; fills *out like
     * state_shard_user_read; a negative return fails the request with that error. */
    int (*user_read_fn)(void *arg, struct state_shard *shard, int32_t partition,
                        const char *user_key, struct state_user_read *out);
    void *user_read_arg;
    /* The ranker (reco_rank.h); NULL = the blend ranker, with the weights above. */
    const struct reco_ranker *ranker;
};
void reco_config_init(struct reco_config *c);

struct reco;

/* shards are borrowed (the processor's state; readers only); catalog may be NULL. */
struct reco *reco_new(const struct reco_config *cfg, struct state_shard *const *shards, int nshards,
                      struct catalog *catalog);
/* Starts the background refresher (when refresh_ms > 0). */
void reco_start(struct reco *r);
void reco_free(struct reco *r);

/* Rebuilds the model now (blocking the caller, not readers). */
void reco_refresh(struct reco *r);
/* The same, spending at most about budget_ms on recomputing item-kNN lists (the rest waits
 * for the next refresh): what the background refresher does, with half its period. */
void reco_refresh_within(struct reco *r, int64_t budget_ms);
/* The same, with the item-kNN lists recomputed from every row (what the refresher does once
 * the shards stop changing): nodes holding the same shards then hold the same model. */
void reco_settle(struct reco *r);

/* Model statistics for /metrics. */
struct reco_stats {
    int64_t requests, cold_starts, model_builds, model_items, model_build_us;
    int64_t model_age_ms;
    int64_t knn_items, knn_full_updates; /* the item-kNN lists: items, full recomputations */
    int64_t knn_pending; /* lists left for the next update by the refresher's time budget */
};
void reco_get_stats(struct reco *r, struct reco_stats *out);

/* ---- a request ----------------------------------------------------------------------------- */

#define RECO_COUNT_MAX 100
#define RECO_REASONS_MAX 2
#define RECO_REASON_LEN 200

struct reco_request {
    const char *user_key;       /* pseudonymous key (hex); required */
    int count;                  /* 1..RECO_COUNT_MAX */
    const char *category;       /* only items of this category (NULL: any) */
    const char *const *exclude; /* explicit excludes */
    const size_t *exclude_len;
    int nexclude;
    /* Optional extra exclusion (eval uses it for the user's whole history). */
    bool (*exclude_fn)(void *arg, const char *id, size_t len);
    void *exclude_arg;
    const char *device, *locale; /* context (NULL: unknown) */
    int64_t now_ms;              /* for hour-of-day context and freshness (0: wall clock) */
    bool anonymous; /* no personalization consent: the user's state is not read at all (the
                     * non-personalised popular / context list, coldStart) */
};

struct reco_item {
    char item_id[EVENT_ITEM_MAX + 1];
    double score;
    int source; /* the source that contributed most */
    int nreasons;
    char reasons[RECO_REASONS_MAX][RECO_REASON_LEN];
};

struct reco_result {
    char rec_id[80];   /* "<strategy>.<variant>.<unique>": attribution reads the prefix */
    char strategy[24]; /* personalized | preferences | popular */
    char variant[100]; /* "experiment:variant" or "default" */
    bool cold_start;
    int n;
    struct reco_item items[RECO_COUNT_MAX];
    int64_t took_us;
};

/* Fills *out. Returns 0, CORE_E_INVALID (bad count) or the user_read_fn's error. */
int reco_recommend(struct reco *r, const struct reco_request *rq, struct reco_result *out);

/* Items similar to one item: co-visitation (live) combined with collaborative and content
 * similarity (model); available items only. Returns the count written to out, or
 * CORE_E_NOTFOUND when neither the state nor the catalog knows the item. */
int reco_similar(struct reco *r, const char *item_id, size_t len, int count, struct reco_item *out);

/* ---- experiments report --------------------------------------------------------------------- */

/* Wilson score interval (95%) of k successes in n trials. */
void reco_wilson(int64_t k, int64_t n, double *lo, double *hi);
/* Two-sided p-value of the two-proportion z-test (pooled) of k1/n1 against k2/n2 (1 when
 * either n is 0). */
double reco_two_proportion_p(int64_t k1, int64_t n1, int64_t k2, int64_t n2);

/* The variant a user is assigned to (index into cfg experiment, or -1 without experiment). */
int reco_assign_variant(const struct reco_experiment *x, const char *user_key);

#endif
