/*
 * The request path: candidates from every source into one table, per-source normalisation,
 * the ranker, then the rules (exclusions, availability, category filter, diversity,
 * exploration) and reasons. Per-thread scratch space keeps requests allocation-free after
 * warm-up.
 */
#include "reco/reco_int.h"
#include "reco/reco_rank.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#define CAND_MAX 4096 /* candidates per request */
#define HCAP 1024     /* hash slots for ids the model does not know (rare: newer items) */
#define HMAX (HCAP / 2)
#define SCRATCH_ARENA (64 * 1024) /* a request's arrays: room for ~800 candidates */
#define COV_MAX 50                /* merged co-visitation neighbours kept per item */
#define CONTENT_SEEDS 3           /* the newest seeds that bring content neighbours (weight 0.05) */
#define CONTENT_DEPTH 20          /* content neighbours each of those seeds brings */

static const char *const source_names[RECO_SRC__COUNT] = {
#define XX(id, name, w) name,
    RECO_SOURCE_MAP(XX)
#undef XX
};

const char *reco_source_name(int src)
{
    return src >= 0 && src < RECO_SRC__COUNT ? source_names[src] : "?";
}

int reco_source_lookup(const char *name, size_t len)
{
    for (int i = 0; i < RECO_SRC__COUNT; i++)
        if (strlen(source_names[i]) == len && !memcmp(source_names[i], name, len))
            return i;
    return -1;
}

void reco_weights_default(struct reco_weights *w)
{
    int i = 0;
#define XX(id, name, wt) w->w[i++] = wt;
    RECO_SOURCE_MAP(XX)
#undef XX
}

void reco_config_init(struct reco_config *c)
{
    memset(c, 0, sizeof *c);
    reco_weights_default(&c->weights);
    c->recent_items = 10;
    c->seed_decay = 0.85;
    c->covisit_seeds = 3;
    c->diversity_cap = 0;
    c->exploration = 0.1;
    c->new_item_ms = (int64_t)7 * 24 * 3600 * 1000;
    c->exclude_types = 0;
    for (int t = 0; t < EVENT_TYPE__COUNT; t++) {
        const struct event_type_info *ti = event_type_get(t);
        if (ti && ti->item_required && ti->weight > 0)
            c->exclude_types |= 1u << t;
    }
    c->refresh_ms = 2000;
    c->knn_neighbours = 50;
    c->knn_items = 200000;
}

/* ---- candidates ------------------------------------------------------------------------------ */

/* A candidate's per-source scores live in the scratch's columns (one array per source, see
 * struct scratch): a list adds to one source, so its random accesses stay in one compact array
 * (a few KiB) instead of touching a wide record per candidate. What is here is written once
 * when the candidate is created, in creation order, and read by the filters and the rules. A
 * model item's id is not copied: it is the model's (cand_id), looked up only for the few
 * candidates a request compares by id or shows. */
struct cand {
    uint32_t idx; /* model index; UINT32_MAX for an id the model does not know */
    bool out;
    bool excluded; /* consumed or explicitly excluded */
    bool resolved; /* catalog metadata looked up (availability, categories) */
    bool top;      /* among the best few selected first */
    /* the fields above are set together when the candidate is created (cand_init) */
    int8_t best, second; /* the sources its reasons name, once picked */
    uint8_t ncats;
    uint32_t len;
    double final;                          /* ranking score, once ranked */
    uint64_t hash;                         /* of the id, for ids the model does not know */
    const char *id;                        /* ids the model does not know: in the scratch arena */
    uint16_t cats[CATALOG_CATEGORIES_MAX]; /* model category indexes (diversity, reasons) */
};

/* The candidate's id and its length (the model's for a model item). */
static inline const char *cand_id(const struct reco_model *m, const struct cand *c, size_t *len)
{
    if (c->idx == UINT32_MAX) {
        *len = c->len;
        return c->id;
    }
    *len = m->it.lens[c->idx];
    return m->it.ids[c->idx];
}

/* Per-thread scratch space. Model items find their candidate through imap, indexed by model
 * index: (request generation << 32) | candidate + 1, so nothing is cleared between requests;
 * the few ids the model does not know go through a small hash table (hslot). */
struct scratch {
    struct cand *c;
    int n;
    /* per source, the candidates' summed scores (src_scores(s, src)[candidate]) and what led to
     * each first (src_whys(s, src)[candidate]: the seed, as an index into the user's recent items,
     * the user category or the context; -1 none), valid where the score is > 0. The scores of the
     * n candidates of the last request are zeroed when the next one starts. */
    float *cols;
    int8_t *whys;
    uint64_t *imap;
    uint32_t icap, gen;
    uint32_t hslot[HCAP]; /* candidate + 1 */
    int nh;
    float max[RECO_SRC__COUNT]; /* per source, the largest candidate score */
    struct core_arena arena;
    struct state_user_read user;
    uint64_t *seen; /* open-addressing set of excluded id hashes (ids the model does not know) */
    uint32_t seen_mask, nseen;
    float *features; /* candidates x RECO_SRC__COUNT, row-major */
    double *scores;
};

static inline float *src_scores(const struct scratch *s, int src)
{
    return s->cols + (size_t)src * CAND_MAX;
}

static inline int8_t *src_whys(const struct scratch *s, int src)
{
    return s->whys + (size_t)src * CAND_MAX;
}

static _Thread_local struct scratch *tl_scratch;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

/* Frees a thread's scratch space when the thread exits. */
static void scratch_free(void *p)
{
    struct scratch *s = p;
    free(s->c);
    free(s->cols);
    free(s->whys);
    free(s->imap);
    core_arena_dispose(&s->arena);
    free(s->seen);
    free(s->features);
    free(s->scores);
    free(s);
}

static void scratch_key_init(void)
{
    pthread_key_create(&scratch_key, scratch_free);
}

/* The calling thread's scratch space, reset for a request against model m. */
static struct scratch *scratch_get(const struct reco_model *m)
{
    if (!tl_scratch) {
        pthread_once(&scratch_once, scratch_key_init);
        struct scratch *s = core_xcalloc(1, sizeof *s);
        s->c = core_xmalloc(CAND_MAX * sizeof *s->c);
        s->cols = core_xcalloc((size_t)RECO_SRC__COUNT * CAND_MAX, sizeof *s->cols);
        s->whys = core_xmalloc((size_t)RECO_SRC__COUNT * CAND_MAX * sizeof *s->whys);
        core_arena_init(&s->arena);
        /* The arena keeps its first chunk across resets: make it big enough for a typical
         * request's arrays (~76 bytes per candidate), or every request mallocs and frees the
         * chunks beyond a small first one. */
        core_arena_alloc(&s->arena, SCRATCH_ARENA);
        core_arena_reset(&s->arena);
        s->seen_mask = 1023;
        s->seen = core_xcalloc(s->seen_mask + 1, sizeof *s->seen);
        s->features = core_xmalloc((size_t)CAND_MAX * RECO_SRC__COUNT * sizeof *s->features);
        s->scores = core_xmalloc((size_t)CAND_MAX * sizeof *s->scores);
        tl_scratch = s;
        pthread_setspecific(scratch_key, s);
    }
    struct scratch *s = tl_scratch;
    if (m->it.n > s->icap || ++s->gen == 0) {
        uint32_t cap = s->icap > 1024 ? s->icap : 1024;
        while (cap < m->it.n)
            cap *= 2;
        free(s->imap);
        s->imap = core_xcalloc(cap, sizeof *s->imap); /* generation 0: nothing */
        s->icap = cap;
        s->gen = 1;
    }
    if (s->nh > 0)
        memset(s->hslot, 0, sizeof s->hslot);
    s->nh = 0;
    for (int k = 0; k < RECO_SRC__COUNT && s->n > 0; k++)
        memset(src_scores(s, k), 0, (size_t)s->n * sizeof *s->cols);
    s->n = 0;
    memset(s->max, 0, sizeof s->max);
    core_arena_reset(&s->arena);
    return s;
}

/* A new candidate: its index, excluded or not, and out, resolved and top false, in one store;
 * no reason sources yet. */
static inline void cand_init(struct cand *c, uint32_t idx, bool excluded)
{
    uint64_t v = (uint64_t)idx | (uint64_t)excluded << (8 * offsetof(struct cand, excluded));
    memcpy(c, &v, sizeof v);
    c->best = c->second = -1;
}
_Static_assert(offsetof(struct cand, idx) == 0 && offsetof(struct cand, out) == 4 &&
                   offsetof(struct cand, top) == 7 && sizeof(bool) == 1 &&
                   __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "cand_init writes idx and the four flags as one 64-bit little-endian word");

/* The candidate number of model item x in the map imap (generation gen) and the array cands
 * of *n candidates, added when new; -1 when the array is full. */
static inline int cand_at(uint64_t *imap, struct cand *cands, uint32_t gen, int *n, uint32_t x)
{
    uint64_t e = imap[x];
    bool marked = (uint32_t)(e >> 32) == gen; /* a candidate, or excluded before it was one */
    if (marked && (uint32_t)e)
        return (int)(uint32_t)e - 1;
    if (*n >= CAND_MAX)
        return -1;
    imap[x] = (uint64_t)gen << 32 | (uint32_t)(*n + 1);
    cand_init(&cands[*n], x, marked);
    return (*n)++;
}

/* The candidate number of model item x, added when new (-1: full). */
static inline int cand_of(struct scratch *s, uint32_t x)
{
    return cand_at(s->imap, s->c, s->gen, &s->n, x);
}

/* The candidate number of an id the model does not know, added (copied) when new (-1: full). */
static int cand_of_id(struct scratch *s, const char *id, size_t len)
{
    uint64_t h = XXH3_64bits(id, len);
    uint32_t k = (uint32_t)h & (HCAP - 1);
    for (uint32_t e; (e = s->hslot[k]); k = (k + 1) & (HCAP - 1)) {
        struct cand *c = &s->c[e - 1];
        if (c->hash == h && c->len == len && memcmp(c->id, id, len) == 0)
            return (int)e - 1;
    }
    if (s->n >= CAND_MAX || s->nh >= HMAX)
        return -1;
    s->nh++;
    s->hslot[k] = (uint32_t)(s->n + 1);
    struct cand *c = &s->c[s->n];
    cand_init(c, UINT32_MAX, false);
    c->id = core_arena_strndup(&s->arena, id, len);
    c->len = (uint32_t)len;
    c->hash = h;
    return s->n++;
}

/* Adds score (> 0) to candidate i's source (column sc, whys wy); returns the source's new
 * total. Sources are read strongest seed (category, context) first: the first contribution
 * names what led to it. */
static inline float cand_add(float *sc, int8_t *wy, int i, float score, int w)
{
    float old = sc[i], v = old + score;
    sc[i] = v;
    uint32_t bits;
    memcpy(&bits, &old, sizeof bits);
    if (bits == 0) /* +0: nothing added yet (scores are positive) */
        wy[i] = (int8_t)w;
    return v;
}

static inline void cand_score(struct scratch *s, int i, int src, float score, int w)
{
    float v = cand_add(src_scores(s, src), src_whys(s, src), i, score, w);
    if (v > s->max[src])
        s->max[src] = v;
}

/* Candidate i's raw score per source, gathered from the columns. */
static inline void cand_scores(const struct scratch *s, int i, float *out)
{
    for (int k = 0; k < RECO_SRC__COUNT; k++)
        out[k] = src_scores(s, k)[i];
}

/* f = score x inv per source, four sources per instruction (the same products as one at a
 * time: IEEE multiplication is per element). */
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4si __attribute__((vector_size(16)));
_Static_assert(RECO_SRC__COUNT == 9, "feature_row handles 2 x 4 + 1 sources");

static inline void feature_row(float *f, const float *score, const float *inv)
{
    v4f a, b, ia, ib;
    memcpy(&a, score, sizeof a);
    memcpy(&b, score + 4, sizeof b);
    memcpy(&ia, inv, sizeof ia);
    memcpy(&ib, inv + 4, sizeof ib);
    a *= ia;
    b *= ib;
    memcpy(f, &a, sizeof a);
    memcpy(f + 4, &b, sizeof b);
    f[8] = score[8] * inv[8];
}

/* Four rows of a column times a weight. */
static inline v4f wcol(const float *c, int i, v4f w)
{
    v4f x;
    memcpy(&x, c + i, sizeof x);
    return x * w;
}

/* The scores of a linear ranker for the scratch's candidates, from raw source scores and
 * folded weights (fw[k] = weight x normaliser), four candidates per instruction: per
 * candidate the nine products summed in a fixed order, (s0 w0 + s4 w4) + (s1 w1 + s5 w5) +
 * (s2 w2 + s6 w6) + (s3 w3 + s7 w7) + s8 w8, as the sources' lanes were summed before.
 * A score that is not finite is 0. out has room for n rounded up to 4. */
static void linear_scores(const struct scratch *s, const float *fw, float *out)
{
    const float *c[RECO_SRC__COUNT];
    v4f w[RECO_SRC__COUNT];
    for (int k = 0; k < RECO_SRC__COUNT; k++) {
        c[k] = src_scores(s, k);
        w[k] = (v4f){fw[k], fw[k], fw[k], fw[k]};
    }
    for (int i = 0; i < s->n; i += 4) { /* the columns are zero past n (CAND_MAX % 4 == 0) */
        v4f v = ((wcol(c[0], i, w[0]) + wcol(c[4], i, w[4])) +
                 (wcol(c[1], i, w[1]) + wcol(c[5], i, w[5]))) +
                ((wcol(c[2], i, w[2]) + wcol(c[6], i, w[6])) +
                 (wcol(c[3], i, w[3]) + wcol(c[7], i, w[7]))) +
                wcol(c[8], i, w[8]);
        v4si finite = (v - v) == 0;  /* inf - inf and NaN - NaN are NaN */
        v = (v4f)((v4si)v & finite); /* a score that is not finite counts 0 */
        memcpy(out + i, &v, sizeof v);
    }
}
_Static_assert(CAND_MAX % 4 == 0, "linear_scores reads whole groups of four");

/* ---- exclusion set ------------------------------------------------------------------------- */

/* Marks an id (model index x, UINT32_MAX when the model does not know it; h its XXH3 hash) as
 * excluded: its candidate (now, or when it becomes one), else its hash in the seen set. */
static void exclude(struct scratch *s, uint32_t x, uint64_t h)
{
    if (x != UINT32_MAX) {
        uint64_t e = s->imap[x];
        if ((uint32_t)(e >> 32) == s->gen && (uint32_t)e)
            s->c[(uint32_t)e - 1].excluded = true;
        else
            s->imap[x] = (uint64_t)s->gen << 32;
        return;
    }
    h |= 1;
    uint32_t k = (uint32_t)h & s->seen_mask;
    while (s->seen[k] && s->seen[k] != h)
        k = (k + 1) & s->seen_mask;
    s->nseen += !s->seen[k];
    s->seen[k] = h;
}

static bool seen_has(const struct scratch *s, uint64_t h)
{
    if (s->nseen == 0)
        return false;
    h |= 1;
    for (uint32_t k = (uint32_t)h & s->seen_mask; s->seen[k]; k = (k + 1) & s->seen_mask)
        if (s->seen[k] == h)
            return true;
    return false;
}

static void seen_reset(struct scratch *s, int need)
{
    uint32_t cap = 1024;
    while (cap < (uint32_t)need * 2)
        cap *= 2;
    if (cap > s->seen_mask + 1) {
        free(s->seen);
        s->seen = core_xcalloc(cap, sizeof *s->seen);
        s->seen_mask = cap - 1;
    } else if (s->nseen > 0) {
        memset(s->seen, 0, (s->seen_mask + 1) * sizeof *s->seen);
    }
    s->nseen = 0;
}

/* ---- sources -------------------------------------------------------------------------------- */

struct live_arg {
    struct scratch *s;
    const struct reco_model *m;
    int src;
    double w;
    int why;
};

static void live_fn(void *arg, const char *id, size_t len, double score)
{
    struct live_arg *a = arg;
    float v = (float)(score * a->w);
    if (!(v > 0))
        return;
    uint32_t x = reco__model_find(a->m, id, len);
    int i = x != UINT32_MAX ? cand_of(a->s, x) : cand_of_id(a->s, id, len);
    if (i >= 0)
        cand_score(a->s, i, a->src, v, a->why);
}

/* One list's accumulation, the scratch fields in locals: stores into a candidate may alias
 * them, so the compiler would otherwise reload them (and store the source's maximum) for
 * every entry. */
struct acc {
    uint64_t *imap;
    struct cand *cands;
    float *sc;  /* the source's column */
    int8_t *wy; /* and its whys */
    uint32_t gen;
    int n;
    float mx, w;
    int why;
};

static inline void acc_entry(struct acc *a, const struct reco_nb *e)
{
    float v = a->w * e->score;
    int i = v > 0 ? cand_at(a->imap, a->cands, a->gen, &a->n, e->idx) : -1;
    if (i >= 0) {
        float sv = cand_add(a->sc, a->wy, i, v, a->why);
        if (sv > a->mx)
            a->mx = sv;
    }
}

static void model_list(struct scratch *s, const struct reco_nb *e, int n, int src, double w,
                       int why, int max)
{
    struct acc a = {s->imap,  s->c, src_scores(s, src), src_whys(s, src), s->gen, s->n, s->max[src],
                    (float)w, why};
    if (n > max)
        n = max;
    int i = 0;
    for (; i + 8 < n; i++) { /* the candidate map is read at random: ask for it early */
        __builtin_prefetch(&a.imap[e[i + 8].idx]);
        acc_entry(&a, &e[i]);
    }
    for (; i < n; i++)
        acc_entry(&a, &e[i]);
    s->n = a.n;
    s->max[src] = a.mx;
}

static void model_csr(struct scratch *s, const struct reco_csr *c, uint32_t key, int src, double w,
                      int why, int max)
{
    model_list(s, c->e + c->off[key], (int)(c->off[key + 1] - c->off[key]), src, w, why, max);
}

/* Asks for the first max entries of a list. The lists one request reads lie scattered over
 * the model (MiBs): asked for together, their cache misses overlap instead of coming one
 * list at a time. */
static inline void prefetch_list(const struct reco_nb *e, int n, int max)
{
    const char *p = (const char *)e, *end = (const char *)(e + (n < max ? n : max));
    for (; p < end; p += 64)
        __builtin_prefetch(p);
}

static inline void prefetch_csr(const struct reco_csr *c, uint32_t key, int max)
{
    prefetch_list(c->e + c->off[key], (int)(c->off[key + 1] - c->off[key]), max);
}

/* How many collaborative neighbours the k-th seed contributes: older seeds weigh less. */
static inline int knn_depth(int k)
{
    return k < 5 ? 50 : k < 10 ? 30 : 15;
}

static inline bool same_item(const struct state_user_item *a, const struct state_user_item *b)
{
    return a->hash == b->hash && a->len == b->len && !memcmp(a->item_id, b->item_id, a->len);
}

/* Seeds: the user's recent distinct items, newest first (index into user.recent); midx holds
 * their model indexes. */
static int seeds(const struct state_user_read *u, const uint32_t *midx, int max, int *out)
{
    int n = 0;
    for (int i = u->nrecent - 1; i >= 0 && n < max; i--) {
        if (!(u->recent[i].weight > 0))
            continue;
        bool dup = false;
        for (int j = 0; j < n && !dup; j++)
            dup = midx[i] != UINT32_MAX ? midx[out[j]] == midx[i]
                                        : same_item(&u->recent[out[j]], &u->recent[i]);
        if (!dup)
            out[n++] = i;
    }
    return n;
}

/* User categories: stated preferences first, then affinities; weights sum to 1. */
struct ucats {
    int n;
    int idx[8]; /* model category */
    double w[8];
    bool pref[8];
};

static void user_categories(const struct reco_model *m, const struct state_user_read *u,
                            struct ucats *uc)
{
    uc->n = 0;
    double total = 0;
    for (int i = 0; i < u->nprefs && uc->n < 8; i++) {
        int c = reco__model_cat(m, u->prefs[i]);
        if (c < 0)
            continue;
        uc->idx[uc->n] = c;
        uc->w[uc->n] = 1.0 / (1 + i * 0.25);
        uc->pref[uc->n++] = true;
    }
    double top = u->ncats > 0 ? u->cats[0].v : 0;
    for (int i = 0; i < u->ncats && uc->n < 8 && i < 4; i++) {
        int c = reco__model_cat(m, u->cats[i].name);
        if (c < 0 || !(top > 0))
            continue;
        bool dup = false;
        for (int j = 0; j < uc->n && !dup; j++)
            if (uc->idx[j] == c) {
                uc->w[j] += u->cats[i].v / top;
                dup = true;
            }
        if (dup)
            continue;
        uc->idx[uc->n] = c;
        uc->w[uc->n] = u->cats[i].v / top;
        uc->pref[uc->n++] = false;
    }
    for (int i = 0; i < uc->n; i++)
        total += uc->w[i];
    for (int i = 0; i < uc->n; i++)
        uc->w[i] /= total;
}

/* ---- the request ----------------------------------------------------------------------------- */

/* out = the parts concatenated, cut to size - 1 bytes as snprintf would; returns the length
 * uncut. (snprintf's format parsing was a visible share of a request.) */
static size_t join(char *out, size_t size, const char *const *part, int nparts)
{
    size_t n = 0;
    for (int i = 0; i < nparts; i++) {
        size_t len = strlen(part[i]);
        if (n < size - 1)
            memcpy(out + n, part[i], len < size - 1 - n ? len : size - 1 - n);
        n += len;
    }
    out[n < size - 1 ? n : size - 1] = 0;
    return n;
}

static void rec_id(char *out, size_t size, const char *strategy, const char *variant)
{
    uint64_t h = event_random_u64();
    uint8_t be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (uint8_t)(h >> (56 - 8 * i));
    char hex[17];
    core_hex(be, sizeof be, hex);
    join(out, size, (const char *const[]){strategy, ".", variant, ".", hex}, 5);
}

/* Tie-break order: by id (bytes, then length). */
static inline bool id_before(const struct reco_model *m, const struct cand *x, const struct cand *y)
{
    size_t xl, yl;
    const char *xi = cand_id(m, x, &xl), *yi = cand_id(m, y, &yl);
    int c = memcmp(xi, yi, xl < yl ? xl : yl);
    return c ? c < 0 : xl < yl;
}

/* Rank order: higher score first, ties by id. */
static inline bool before(const struct reco_model *m, const struct cand *x, const struct cand *y)
{
    return x->final != y->final ? x->final > y->final : id_before(m, x, y);
}

/* qsort_r comparator of candidate pointers in rank order; arg: the model. */
static int cmp_final(const void *a, const void *b, void *arg)
{
    const struct cand *x = *(const struct cand *const *)a, *y = *(const struct cand *const *)b;
    return before(arg, x, y) ? -1 : before(arg, y, x);
}

/* The catalog item of id (model index x, UINT32_MAX when the model does not know it), or NULL.
 * The slot the item had when the model was built holds it still when its id is there (a slot's
 * id is unique in the catalog), which costs one comparison instead of hashing and probing. */
static const struct catalog_item *item_find(struct catalog *cat, const struct reco_model *m,
                                            uint32_t x, const char *id, size_t len)
{
    if (!cat)
        return NULL;
    if (x != UINT32_MAX && m->cat_slot[x] != UINT32_MAX) {
        const struct catalog_item *ci = catalog_at(cat, m->cat_slot[x]);
        if (ci && ci->id_len == len && memcmp(ci->id, id, len) == 0)
            return ci;
    }
    return catalog_find(cat, id, len);
}

/* Looks the candidate up in the catalog once (only candidates that may be shown pay for it):
 * its categories, and false (marking it out) when the catalog says it is unavailable. */
static bool resolve(struct catalog *cat, const struct reco_model *m, struct cand *c)
{
    if (c->resolved)
        return !c->out;
    c->resolved = true;
    c->ncats = 0;
    size_t len;
    const char *id = cand_id(m, c, &len);
    const struct catalog_item *ci = item_find(cat, m, c->idx, id, len);
    if (ci && !ci->available) {
        c->out = true;
        return false;
    }
    for (int k = 0; ci && k < ci->ncategories && c->ncats < CATALOG_CATEGORIES_MAX; k++) {
        int mc = reco__model_cat_sym(m, ci->categories[k]);
        if (mc >= 0)
            c->cats[c->ncats++] = (uint16_t)mc;
    }
    return true;
}

static bool over_cap(const struct cand *c, const int *per_cat, int cap)
{
    for (int k = 0; k < c->ncats; k++)
        if (per_cat[c->cats[k]] >= cap)
            return true;
    return false;
}

static bool excluded_by_fn(const struct reco_model *m, const struct reco_request *rq,
                           const struct cand *c)
{
    size_t len;
    const char *id = cand_id(m, c, &len);
    return rq->exclude_fn(rq->exclude_arg, id, len);
}

static void take(struct cand *c, int *per_cat)
{
    for (int k = 0; k < c->ncats; k++)
        per_cat[c->cats[k]]++;
    c->out = true;
}

/* A candidate's place in the ranking heap (contiguous: the heap touches only these). */
struct rank {
    double final;
    struct cand *c;
};

static inline bool rank_before(const struct reco_model *m, const struct rank *x,
                               const struct rank *y)
{
    return x->final != y->final ? x->final > y->final : id_before(m, x->c, y->c);
}

/* A candidate leaves the ranking: its score goes with it. */
static inline struct cand *ranked(const struct rank *x)
{
    x->c->final = x->final;
    return x->c;
}

/* Restores the heap h[0..n) below i: the best-ranked candidate at the root. */
static void heap_down(const struct reco_model *m, struct rank *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, w = i;
        if (l < n && rank_before(m, &h[l], &h[w]))
            w = l;
        if (l + 1 < n && rank_before(m, &h[l + 1], &h[w]))
            w = l + 1;
        if (w == i)
            return;
        struct rank t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* The rules see candidates in rank order: first the best few (selected in one pass, most
 * candidates cost one comparison), then, only if the rules exhaust those, the rest through
 * a heap built on demand. */
struct picker {
    struct catalog *cat;
    const struct reco_model *m;
    struct cand **all;   /* every live candidate (feature row order) */
    const double *score; /* ranker scores, by row */
    int nall;
    struct rank *top; /* the best ntop, in rank order */
    int ntop;
    struct rank *heap; /* the others, once needed */
    int nheap;
    bool heaped;
    struct cand **order; /* order[0..sorted): candidates in rank order */
    int sorted;
    int n;               /* candidates a pass considers (the best n) */
    struct cand **fresh; /* candidates from the fresh source, not yet considered */
    int nfresh;
    struct cand **pick;
    int np;
    int *per_cat;
    int cap;
};

/* Selects the best k of p->all into p->top. */
static void select_top(struct picker *p, int k)
{
    struct rank *top = p->top;
    int nt = 0;
    /* once full, most candidates score below the last one kept: one comparison, no tie */
    double last = -INFINITY;
    for (int i = 0; i < p->nall; i++) {
        double f = p->score[i];
        if (nt == k && f < last)
            continue;
        struct rank x = {f, p->all[i]};
        if (nt == k && !rank_before(p->m, &x, &top[k - 1]))
            continue;
        int j = nt < k ? nt++ : k - 1;
        for (; j > 0 && rank_before(p->m, &x, &top[j - 1]); j--)
            top[j] = top[j - 1];
        top[j] = x;
        last = top[nt - 1].final;
    }
    p->ntop = nt;
    for (int i = 0; i < nt; i++)
        top[i].c->top = true;
}

/* The next candidate in rank order (p->sorted < p->nall). */
static struct cand *next_ranked(struct picker *p)
{
    if (p->sorted < p->ntop)
        return ranked(&p->top[p->sorted]);
    if (!p->heaped) {
        p->heaped = true;
        for (int i = 0; i < p->nall; i++)
            if (!p->all[i]->top)
                p->heap[p->nheap++] = (struct rank){p->score[i], p->all[i]};
        for (int i = p->nheap / 2 - 1; i >= 0; i--)
            heap_down(p->m, p->heap, p->nheap, i);
    }
    struct cand *c = ranked(&p->heap[0]);
    p->heap[0] = p->heap[--p->nheap];
    heap_down(p->m, p->heap, p->nheap, 0);
    return c;
}

/* The two sources that contributed most to c's score (the second only when it brought at
 * least a quarter of the first's contribution). */
static void top_sources(struct cand *c, const struct reco_weights *w, const float *f)
{
    double b1 = 0, b2 = 0;
    c->best = c->second = -1;
    for (int k = 0; k < RECO_SRC__COUNT; k++) {
        double v = w->w[k] * f[k];
        if (v > b1) {
            b2 = b1;
            c->second = c->best;
            b1 = v;
            c->best = k;
        } else if (v > b2) {
            b2 = v;
            c->second = k;
        }
    }
    if (b2 < 0.25 * b1)
        c->second = -1;
}

/* Appends candidates in rank order until np reaches want; relaxed ignores the cap; fresh
 * takes only candidates of the fresh source (exploration), the best-ranked first wherever
 * they rank. */
static void pick_run(struct picker *p, int want, bool relaxed, bool fresh)
{
    while (fresh && p->nfresh > 0 && p->np < want) {
        int b = 0;
        for (int i = 1; i < p->nfresh; i++)
            if (before(p->m, p->fresh[i], p->fresh[b]))
                b = i;
        struct cand *c = p->fresh[b];
        p->fresh[b] = p->fresh[--p->nfresh]; /* considered once */
        if (c->out || !resolve(p->cat, p->m, c) || over_cap(c, p->per_cat, p->cap))
            continue;
        take(c, p->per_cat);
        c->best = RECO_SRC_FRESH;
        c->second = -2; /* exploration slot: the reason is "new", not the top source */
        p->pick[p->np++] = c;
    }
    for (int i = 0; !fresh && i < p->n && p->np < want; i++) {
        if (i == p->sorted) {
            p->order[p->sorted] = next_ranked(p);
            p->sorted++;
        }
        struct cand *c = p->order[i];
        if (c->out || !resolve(p->cat, p->m, c) || (!relaxed && over_cap(c, p->per_cat, p->cap)))
            continue;
        take(c, p->per_cat);
        p->pick[p->np++] = c;
    }
}

/* What reasons call the user's recent item i: its catalog title, else its id; each looked up
 * once per request (a list's reasons name the same few seeds again and again). */
struct seed_names {
    const struct reco_model *m;
    const uint32_t *midx; /* model index of each recent item */
    uint64_t done;        /* bit i: name[i] looked up */
    const char *name[STATE_READ_RECENT_MAX];
};

static const char *seed_name(struct catalog *cat, const struct state_user_read *u,
                             struct seed_names *sn, int i)
{
    if (!(sn->done >> i & 1)) {
        const struct catalog_item *ci =
            item_find(cat, sn->m, sn->midx[i], u->recent[i].item_id, u->recent[i].len);
        sn->name[i] = ci && ci->title[0] ? ci->title : u->recent[i].item_id;
        sn->done |= (uint64_t)1 << i;
    }
    return sn->name[i];
}

/* out = a b c, cut to fit RECO_REASON_LEN at a UTF-8 character boundary. */
static void reason_cat(char *out, const char *a, const char *b, const char *c)
{
    const char *part[3] = {a, b, c};
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        size_t len = strlen(part[i]), room = RECO_REASON_LEN - 1 - n;
        if (len <= room) {
            memcpy(out + n, part[i], len);
            n += len;
            continue;
        }
        memcpy(out + n, part[i], room);
        n += room;
        /* cut mid-character: drop its first bytes too */
        if (((unsigned char)part[i][room] & 0xC0) == 0x80) {
            while (n > 0 && ((unsigned char)out[n - 1] & 0xC0) == 0x80)
                n--;
            n -= n > 0;
        }
        break;
    }
    out[n] = 0;
}

static void reason(struct reco *r, const struct reco_model *m, const struct state_user_read *u,
                   struct seed_names *sn, const struct ucats *uc, const struct reco_request *rq,
                   const struct cand *c, int src, int why, char *out)
{
    const char *seed = NULL;
    if ((src == RECO_SRC_SESSION || src == RECO_SRC_COVISIT || src == RECO_SRC_COLLAB ||
         src == RECO_SRC_CONTENT) &&
        why >= 0 && why < u->nrecent)
        seed = seed_name(r->catalog, u, sn, why);
    const char *cat = NULL;
    if ((src == RECO_SRC_CATEGORY || src == RECO_SRC_FRESH) && why >= 0 && why < uc->n)
        cat = m->cats.ids[uc->idx[why]];
    else if (c->ncats > 0)
        cat = m->cats.ids[c->cats[0]];
    switch (src) {
    case RECO_SRC_SESSION:
        reason_cat(out, "viewed together with ", seed ? seed : "items", " in this session");
        break;
    case RECO_SRC_COVISIT:
        reason_cat(out, "because you viewed ", seed ? seed : "similar items", "");
        break;
    case RECO_SRC_COLLAB:
        reason_cat(out, "people who liked ", seed ? seed : "your items", " also liked this");
        break;
    case RECO_SRC_CONTENT:
        reason_cat(out, "similar to ", seed ? seed : "items you liked", "");
        break;
    case RECO_SRC_CATEGORY:
        if (why >= 0 && why < uc->n && uc->pref[why])
            reason_cat(out, "matches your interest in ", cat ? cat : "it", "");
        else
            reason_cat(out, "popular in ", cat ? cat : "your categories", "");
        break;
    case RECO_SRC_TRENDING:
        reason_cat(out, cat ? "trending in " : "trending now", cat ? cat : "", "");
        break;
    case RECO_SRC_POPULAR:
        reason_cat(out, "popular", "", "");
        break;
    case RECO_SRC_CONTEXT:
        if (why == 0 && rq->device)
            reason_cat(out, "popular on ", rq->device, "");
        else if (why == 1 && rq->locale)
            reason_cat(out, "popular in ", rq->locale, "");
        else
            reason_cat(out, "popular at this time of day", "", "");
        break;
    case RECO_SRC_FRESH:
        reason_cat(out, "new in ", cat ? cat : "the catalog", "");
        break;
    default:
        reason_cat(out, "recommended", "", "");
    }
}

int reco_assign_variant(const struct reco_experiment *x, const char *user_key)
{
    if (x->nvariants == 0)
        return -1;
    char buf[EVENT_KEY_HEX + 64 + 2];
    int n = snprintf(buf, sizeof buf, "%s/%s", user_key, x->name);
    uint64_t h = XXH3_64bits(buf, (size_t)(n > 0 ? n : 0)) % 100;
    int acc = 0;
    for (int i = 0; i < x->nvariants; i++) {
        acc += x->variants[i].share;
        if ((int)h < acc)
            return i;
    }
    return x->nvariants - 1;
}

/* Live co-visitation of one seed over every shard. */
/* Collects one item's neighbours from every shard into a merged (model index, score) list. */
struct merge_arg {
    const struct reco_model *m;
    struct reco_nb *e;
    int n, cap;
};

static void merge_fn(void *arg, const char *id, size_t len, double score)
{
    struct merge_arg *a = arg;
    uint32_t x = reco__model_find(a->m, id, len);
    if (x == UINT32_MAX || !(score > 0))
        return; /* an item newer than the model: it joins at the next build */
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->e = core_xrealloc(a->e, (size_t)a->cap * sizeof *a->e);
    }
    a->e[a->n++] = (struct reco_nb){x, (float)score};
}

static int cmp_nb_idx(const void *a, const void *b)
{
    const struct reco_nb *x = a, *y = b;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int cmp_nb_score(const void *a, const void *b)
{
    const struct reco_nb *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Co-visitation of one seed (model index x, UINT32_MAX when the model does not know it). An
 * item the model knows has its lists merged over the shards once per model (then cached:
 * contiguous, no locks, at most one model period old); a newer item is read from the shards
 * every time. */
static void covisit(struct reco *r, struct scratch *s, const struct reco_model *m, const char *id,
                    size_t len, uint32_t x, int src, double w, int why, int64_t as_of)
{
    if (x == UINT32_MAX) {
        struct live_arg a = {s, m, src, w, why};
        for (int p = 0; p < r->nshards; p++)
            state_shard_neighbours_each(r->shards[p], id, len, as_of, live_fn, &a);
        return;
    }
    struct reco_cov *c = atomic_load_explicit(&m->cov[x], memory_order_acquire);
    if (!c) {
        struct merge_arg a = {m, NULL, 0, 0};
        for (int p = 0; p < r->nshards; p++)
            state_shard_neighbours_each(r->shards[p], id, len, as_of, merge_fn, &a);
        if (a.n > 0) { /* sum the shards' partial scores per item, then rank */
            qsort(a.e, (size_t)a.n, sizeof *a.e, cmp_nb_idx);
            int k = 0;
            for (int i = 0; i < a.n; i++) {
                if (k > 0 && a.e[k - 1].idx == a.e[i].idx)
                    a.e[k - 1].score += a.e[i].score;
                else
                    a.e[k++] = a.e[i];
            }
            a.n = k;
            qsort(a.e, (size_t)a.n, sizeof *a.e, cmp_nb_score);
        }
        int n = a.n < COV_MAX ? a.n : COV_MAX;
        c = core_xmalloc(sizeof *c + (size_t)n * sizeof c->e[0]);
        c->n = n;
        if (n > 0)
            memcpy(c->e, a.e, (size_t)n * sizeof *a.e);
        free(a.e);
        struct reco_cov *expected = NULL;
        if (!atomic_compare_exchange_strong(&m->cov[x], &expected, c)) {
            free(c); /* another request cached it first */
            c = expected;
        }
    }
    model_list(s, c->e, c->n, src, w, why, COV_MAX);
}

static void context_source(struct scratch *s, const struct reco_model *m,
                           const struct reco_request *rq, int64_t now, double w, int max)
{
    char key[96];
    const char *vals[3] = {rq->device, rq->locale, NULL};
    const char *pfx[3] = {"device", "locale", "hour"};
    int h = (int)((now / 3600000) % 24);
    char hour[3] = {(char)('0' + h / 10), (char)('0' + h % 10), 0};
    vals[2] = hour;
    for (int k = 0; k < 3; k++) {
        if (!vals[k] || !vals[k][0])
            continue;
        size_t n = join(key, sizeof key, (const char *const[]){pfx[k], ":", vals[k]}, 3);
        int c = n < sizeof key ? reco__model_ctx(m, key) : -1;
        if (c >= 0)
            model_csr(s, &m->ctx, (uint32_t)c, RECO_SRC_CONTEXT, w * (k == 2 ? 0.5 : 1.0), k, max);
    }
}

int reco_recommend(struct reco *r, const struct reco_request *rq, struct reco_result *out)
{
    int64_t t0 = core_mono_ns();
    if (rq->count < 1 || rq->count > RECO_COUNT_MAX || !rq->user_key)
        return CORE_E_INVALID;
    atomic_fetch_add(&r->requests, 1);
    struct reco_model *m = reco__model_get(r);
    struct scratch *s = scratch_get(m);

    /* variant and weights */
    const struct reco_experiment *x = &r->cfg.experiment;
    int vi = reco_assign_variant(x, rq->user_key);
    struct reco_weights w = vi >= 0 ? x->variants[vi].weights : r->cfg.weights;
    if (vi >= 0)
        join(out->variant, sizeof out->variant,
             (const char *const[]){x->name, ":", x->variants[vi].name}, 3);
    else
        join(out->variant, sizeof out->variant, (const char *const[]){"default"}, 1);

    /* the user */
    struct state_user_read *u = &s->user;
    int32_t p = core_partition_for_key(rq->user_key, strlen(rq->user_key), r->nshards);
    if (rq->anonymous) {
        u->found = false;
        u->events = u->first_ms = u->last_ms = u->now_ms = 0;
        u->nrecent = u->nsession = u->ncats = u->nprefs = 0;
        u->pool_used = 0;
    } else if (!r->cfg.user_read_fn) {
        state_shard_user_read(r->shards[p], rq->user_key, u);
    } else {
        int rc = r->cfg.user_read_fn(r->cfg.user_read_arg, r->shards[p], p, rq->user_key, u);
        if (rc < 0) {
            reco__model_unref(m);
            return rc;
        }
    }
    /* event-time "now": the newest clock among the user's shard and the model (shards'
     * clocks differ; live scores are only ever decayed forward) */
    int64_t now = rq->now_ms > 0 ? rq->now_ms : (u->now_ms > m->now_ms ? u->now_ms : m->now_ms);
    if (now <= 0)
        now = core_now_ms();              /* no event yet anywhere */
    uint32_t midx[STATE_READ_RECENT_MAX]; /* model index of each recent item */
    for (int i = 0; i < u->nrecent; i++)  /* fetch their slots, then probe */
        __builtin_prefetch(reco__model_slot(m, u->recent[i].hash));
    for (int i = 0; i < u->nrecent; i++) /* by hash: most are only excluded (see find_hash) */
        midx[i] = reco__model_find_hash(m, u->recent[i].hash, u->recent[i].len);
    int seed_idx[STATE_READ_RECENT_MAX];
    int nseeds = seeds(u, midx, r->cfg.recent_items, seed_idx);
    for (int k = 0; k < nseeds; k++) { /* the seeds lead to lists: their ids are compared */
        int i = seed_idx[k];
        uint32_t mi = midx[i];
        if (mi != UINT32_MAX && memcmp(m->it.ids[mi], u->recent[i].item_id, u->recent[i].len) != 0)
            midx[i] =
                reco__model_find_h(m, u->recent[i].hash, u->recent[i].item_id, u->recent[i].len);
    }
    struct ucats uc;
    user_categories(m, u, &uc);
    bool personal = nseeds > 0;
    out->cold_start = !personal;
    const char *strategy = personal ? "personalized" : uc.n > 0 ? "preferences" : "popular";
    join(out->strategy, sizeof out->strategy, &strategy, 1);
    if (!personal)
        atomic_fetch_add(&r->cold_starts, 1);

    /* candidates */
    if (personal) {
        for (int k = 0; k < nseeds; k++) {
            uint32_t mi = midx[seed_idx[k]];
            if (mi == UINT32_MAX)
                continue;
            const struct reco_cov *cv =
                k < r->cfg.covisit_seeds ? atomic_load_explicit(&m->cov[mi], memory_order_acquire)
                                         : NULL;
            if (cv)
                prefetch_list(cv->e, cv->n, COV_MAX);
            if (w.w[RECO_SRC_COLLAB] > 0)
                prefetch_csr(&m->knn, mi, knn_depth(k));
            if (w.w[RECO_SRC_CONTENT] > 0 && k < CONTENT_SEEDS)
                prefetch_csr(&m->content, mi, CONTENT_DEPTH);
        }
        /* session items first, then the rest of the history */
        for (int k = 0; k < nseeds && k < r->cfg.covisit_seeds; k++) {
            const struct state_user_item *it = &u->recent[seed_idx[k]];
            bool in_session = false;
            for (int j = 0; j < u->nsession && !in_session; j++)
                in_session = same_item(&u->session[j], it);
            double sw = r->seed_w[k];
            if (in_session && w.w[RECO_SRC_SESSION] > 0)
                covisit(r, s, m, it->item_id, it->len, midx[seed_idx[k]], RECO_SRC_SESSION, sw,
                        seed_idx[k], now);
            else if (w.w[RECO_SRC_COVISIT] > 0)
                covisit(r, s, m, it->item_id, it->len, midx[seed_idx[k]], RECO_SRC_COVISIT, sw,
                        seed_idx[k], now);
        }
        for (int k = 0; k < nseeds; k++) {
            uint32_t mi = midx[seed_idx[k]];
            if (mi == UINT32_MAX)
                continue;
            double sw = r->seed_w[k];
            if (w.w[RECO_SRC_COLLAB] > 0)
                model_csr(s, &m->knn, mi, RECO_SRC_COLLAB, sw, seed_idx[k], knn_depth(k));
            if (w.w[RECO_SRC_CONTENT] > 0 && k < CONTENT_SEEDS)
                model_csr(s, &m->content, mi, RECO_SRC_CONTENT, sw, seed_idx[k], CONTENT_DEPTH);
        }
    }
    /* the low-weight lists (category, global): a user with a rich history needs only their
     * heads (measured: the same quality on every data set in EVALUATION.md, fewer
     * candidates); the others lean on them */
    bool rich = nseeds >= 3;
    for (int k = 0; k < uc.n; k++) {
        if (w.w[RECO_SRC_CATEGORY] > 0)
            model_csr(s, &m->cat_pop, (uint32_t)uc.idx[k], RECO_SRC_CATEGORY, uc.w[k], k,
                      rich ? 20 : 30);
        if (w.w[RECO_SRC_FRESH] > 0)
            model_csr(s, &m->cat_fresh, (uint32_t)uc.idx[k], RECO_SRC_FRESH, uc.w[k], k, 10);
    }
    int global = rich ? 10 : 50;
    if (w.w[RECO_SRC_TRENDING] > 0)
        model_list(s, m->trending, m->ntrending, RECO_SRC_TRENDING, 1, -1, global);
    if (w.w[RECO_SRC_POPULAR] > 0)
        model_list(s, m->popular, m->npopular, RECO_SRC_POPULAR, 1, -1, global);
    if (w.w[RECO_SRC_FRESH] > 0 && uc.n == 0)
        model_list(s, m->fresh, m->nfresh, RECO_SRC_FRESH, 1, -1, 20);
    if (w.w[RECO_SRC_CONTEXT] > 0)
        context_source(s, m, rq, now, 1, global);
    if (!personal) {
        /* cold start: what the user stated and the context carry the list */
        w.w[RECO_SRC_CATEGORY] = w.w[RECO_SRC_CATEGORY] > 0 ? 1.0 : 0;
        w.w[RECO_SRC_CONTEXT] = w.w[RECO_SRC_CONTEXT] > 0 ? 0.6 : 0;
    }

    /* exclusions */
    seen_reset(s, u->nrecent + rq->nexclude);
    for (int i = 0; i < u->nrecent; i++)
        if (u->recent[i].type >= 0 && u->recent[i].type < 32 &&
            (r->cfg.exclude_types & (1u << u->recent[i].type)))
            exclude(s, midx[i], u->recent[i].hash);
    for (int i = 0; i < rq->nexclude; i++) {
        uint64_t h = XXH3_64bits(rq->exclude[i], rq->exclude_len[i]);
        exclude(s, reco__model_find_h(m, h, rq->exclude[i], rq->exclude_len[i]), h);
    }

    /* features, filters */
    float inv[RECO_SRC__COUNT], fw[RECO_SRC__COUNT];
    for (int k = 0; k < RECO_SRC__COUNT; k++) {
        inv[k] = s->max[k] > 0 ? 1.0f / s->max[k] : 0;
        fw[k] = (float)w.w[k] * inv[k]; /* a linear ranker's weight of the raw score */
    }
    const struct reco_ranker *ranker = r->cfg.ranker ? r->cfg.ranker : reco_ranker_blend();
    int want = rq->category ? reco__model_cat(m, rq->category) : -1;
    if (r->catalog)
        catalog_read_begin(r->catalog);
    int nf = 0, nfresh = 0;
    struct cand **live = core_arena_alloc(&s->arena, (size_t)(s->n + 1) * sizeof *live);
    int *fresh_rows = core_arena_alloc(&s->arena, (size_t)(s->n + 1) * sizeof *fresh_rows);
    float *lin = NULL;
    if (ranker->linear) { /* every candidate's score at once, column by column */
        lin = core_arena_alloc(&s->arena, (size_t)(s->n + 4) * sizeof *lin);
        linear_scores(s, fw, lin);
    }
    const float *fresh = src_scores(s, RECO_SRC_FRESH);
    for (int i = 0; i < s->n; i++) { /* one pass over the candidates: filters, features */
        struct cand *c = &s->c[i];
        if (c->excluded || (c->idx == UINT32_MAX && seen_has(s, c->hash)) ||
            (rq->exclude_fn && excluded_by_fn(m, rq, c)))
            continue;
        if (rq->category) {
            if (!resolve(r->catalog, m, c))
                continue;
            bool ok = false;
            for (int k = 0; k < c->ncats && !ok; k++)
                ok = c->cats[k] == want;
            if (!ok)
                continue;
        }
        if (lin) {
            s->scores[nf] = lin[i];
        } else {
            float raw[RECO_SRC__COUNT];
            cand_scores(s, i, raw);
            feature_row(s->features + (size_t)nf * RECO_SRC__COUNT, raw, inv);
        }
        if (fresh[i] > 0)
            fresh_rows[nfresh++] = nf;
        live[nf++] = c;
    }
    if (!ranker->linear) {
        ranker->score(ranker, &w, s->features, nf, s->scores);
        for (int i = 0; i < nf; i++)
            if (!isfinite(s->scores[i]))
                s->scores[i] = 0;
    }
    /* diversity: at most cap items per category, relaxed when the list would be short */
    int count = rq->count;
    int cap = r->cfg.diversity_cap > 0 ? r->cfg.diversity_cap : (count + 1) / 2;
    if (cap < 2)
        cap = 2;
    int *per_cat = core_arena_alloc(&s->arena, (size_t)(m->ncats + 1) * sizeof *per_cat);
    memset(per_cat, 0, (size_t)(m->ncats + 1) * sizeof *per_cat);
    int nexplore = (int)floor(count * r->cfg.exploration);
    struct picker pk = {.cat = r->catalog,
                        .m = m,
                        .all = live,
                        .score = s->scores,
                        .nall = nf,
                        .per_cat = per_cat,
                        .cap = cap};
    pk.pick = core_arena_alloc(&s->arena, (size_t)count * sizeof *pk.pick);
    pk.order = core_arena_alloc(&s->arena, (size_t)(nf + 1) * sizeof *pk.order);
    pk.top = core_arena_alloc(&s->arena, (size_t)(nf + 1) * sizeof *pk.top);
    pk.heap = core_arena_alloc(&s->arena, (size_t)(nf + 1) * sizeof *pk.heap);
    pk.fresh = core_arena_alloc(&s->arena, (size_t)(nf + 1) * sizeof *pk.fresh);
    for (int i = 0; i < nfresh; i++)
        pk.fresh[pk.nfresh++] =
            ranked(&(struct rank){s->scores[fresh_rows[i]], live[fresh_rows[i]]});
    select_top(&pk, count * 2 + 8);
    for (int i = 0; r->catalog && i < pk.ntop && i < count + 4; i++) { /* the rules read these */
        uint32_t mi = pk.top[i].c->idx;
        if (mi != UINT32_MAX && m->cat_slot[mi] != UINT32_MAX)
            catalog_prefetch(r->catalog, m->cat_slot[mi]);
    }
    /* the rules see the best few first; the rest only when they exhaust them */
    int head = count * 8 > 64 ? count * 8 : 64;
    for (pk.n = head < nf ? head : nf;; pk.n = nf) {
        pick_run(&pk, count - nexplore, false, false); /* main list, leaving exploration */
        pick_run(&pk, count, false, true);             /* exploration: new items */
        pick_run(&pk, count, false, false);            /* fill under the cap */
        pick_run(&pk, count, true, false);             /* relax the cap if still short */
        if (pk.np == count || pk.n == nf)
            break;
    }
    struct cand **pick = pk.pick;
    int np = pk.np;
    for (int i = 0; i < np; i++) /* reasons: the sources that contributed most */
        if (pick[i]->best != RECO_SRC_FRESH || pick[i]->second != -2) {
            float raw[RECO_SRC__COUNT], f[RECO_SRC__COUNT];
            cand_scores(s, (int)(pick[i] - s->c), raw);
            feature_row(f, raw, inv);
            top_sources(pick[i], &w, f);
        }
    /* rank order; the picks come mostly in that order already, and ids are unique, so an
     * insertion sort gives what qsort_r did without its indirect calls */
    for (int i = 1; i < np; i++) {
        struct cand *c = pick[i];
        int j = i;
        for (; j > 0 && before(m, c, pick[j - 1]); j--)
            pick[j] = pick[j - 1];
        pick[j] = c;
    }

    out->n = np;
    struct seed_names sn;
    sn.m = m;
    sn.midx = midx;
    sn.done = 0;
    for (int i = 0; i < np; i++) {
        struct cand *c = pick[i];
        struct reco_item *o = &out->items[i];
        size_t len;
        const char *id = cand_id(m, c, &len);
        memcpy(o->item_id, id, len);
        o->item_id[len] = 0;
        o->score = c->final;
        o->source = c->best;
        o->nreasons = 0;
        int ci = (int)(c - s->c);
        if (c->best >= 0)
            reason(r, m, u, &sn, &uc, rq, c, c->best, src_whys(s, c->best)[ci],
                   o->reasons[o->nreasons++]);
        if (c->second >= 0)
            reason(r, m, u, &sn, &uc, rq, c, c->second, src_whys(s, c->second)[ci],
                   o->reasons[o->nreasons++]);
    }
    if (r->catalog)
        catalog_read_end(r->catalog);
    rec_id(out->rec_id, sizeof out->rec_id,
           personal   ? "pers"
           : uc.n > 0 ? "pref"
                      : "pop",
           vi >= 0 ? x->variants[vi].name : "default");
    reco__model_unref(m);
    out->took_us = (core_mono_ns() - t0) / 1000;
    return 0;
}

/* ---- similar items ----------------------------------------------------------------------------
 */

int reco_similar(struct reco *r, const char *item_id, size_t len, int count, struct reco_item *out)
{
    bool known = false;
    for (int p = 0; p < r->nshards && !known; p++) {
        struct state_item_view v;
        memset(&v, 0, sizeof v);
        state_shard_item_view(r->shards[p], item_id, len, &v);
        known = v.found;
    }
    if (!known && r->catalog) {
        catalog_read_begin(r->catalog);
        known = catalog_find(r->catalog, item_id, len) != NULL;
        catalog_read_end(r->catalog);
    }
    if (!known)
        return CORE_E_NOTFOUND;
    struct reco_model *m = reco__model_get(r);
    struct scratch *s = scratch_get(m);
    char id[EVENT_ITEM_MAX + 1];
    if (len > EVENT_ITEM_MAX)
        len = EVENT_ITEM_MAX;
    memcpy(id, item_id, len);
    id[len] = 0;
    uint32_t mi = reco__model_find(m, item_id, len);
    covisit(r, s, m, id, len, mi, RECO_SRC_COVISIT, 1, -1, m->now_ms);
    if (mi != UINT32_MAX) {
        model_csr(s, &m->knn, mi, RECO_SRC_COLLAB, 1, -1, 50);
        model_csr(s, &m->content, mi, RECO_SRC_CONTENT, 1, -1, 20);
    }
    const float *maxs = s->max;
    static const double sw[3] = {1.0, 0.8, 0.4};
    static const int src[3] = {RECO_SRC_COVISIT, RECO_SRC_COLLAB, RECO_SRC_CONTENT};
    static const char *const why[3] = {"viewed together", "liked by the same people",
                                       "similar categories and tags"};
    struct cand **live = core_arena_alloc(&s->arena, (size_t)(s->n + 1) * sizeof *live);
    int nf = 0;
    if (r->catalog)
        catalog_read_begin(r->catalog);
    for (int i = 0; i < s->n; i++) {
        struct cand *c = &s->c[i];
        size_t clen;
        const char *cid = cand_id(m, c, &clen);
        if (clen == len && !memcmp(cid, item_id, len))
            continue;
        const struct catalog_item *ci = item_find(r->catalog, m, c->idx, cid, clen);
        if (ci && !ci->available)
            continue;
        c->final = 0;
        double b = 0;
        for (int k = 0; k < 3; k++) {
            double v = maxs[src[k]] > 0 ? sw[k] * src_scores(s, src[k])[i] / maxs[src[k]] : 0;
            c->final += v;
            if (v > b) {
                b = v;
                c->best = k;
            }
        }
        live[nf++] = c;
    }
    if (r->catalog)
        catalog_read_end(r->catalog);
    qsort_r(live, (size_t)nf, sizeof *live, cmp_final, m);
    int n = 0;
    for (; n < nf && n < count; n++) {
        struct reco_item *o = &out[n];
        size_t clen;
        const char *cid = cand_id(m, live[n], &clen);
        memcpy(o->item_id, cid, clen);
        o->item_id[clen] = 0;
        o->score = live[n]->final;
        o->source = src[live[n]->best];
        o->nreasons = 1;
        snprintf(o->reasons[0], RECO_REASON_LEN, "%s", why[live[n]->best]);
    }
    reco__model_unref(m);
    return n;
}
