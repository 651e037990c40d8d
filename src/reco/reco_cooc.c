/*
 * The collaborative model's accumulator: item co-occurrence over the whole history, kept
 * across model builds. Every build reads each user's recent history from the shards, finds
 * the entries added since the previous build (by the newest entry it saw last time) and
 * pairs each new entry with the user's up to knn_history previous items, so co-occurrence
 * counts grow with the whole stream, not just with the current windows. Item-kNN
 * neighbours (asymmetric cosine, see ALPHA) are recomputed for the items whose rows changed.
 *
 * Bounds: a row keeps at most ROW_MAX neighbours (when full, the weaker half is dropped:
 * the heavy pairs survive, as in a heavy-hitters sketch); the item table holds at most
 * max_items (when an update leaves more, it is compacted to the 3/4 seen most often, and
 * pairs with dropped items go with them); the user table holds the users the shards hold. After a
 * restart the accumulator starts again from the users' recent histories (it is derived, not
 * checkpointed).
 */
#include "reco/reco_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#define ROW_MAX 512
#define KNN_SHRINK 0.5
/* Pairs close in a user's sequence say more than distant ones: a pair d positions apart
 * counts 1 / (1 + GAP_DECAY (d - 1)) (as position weights in session-based kNN). */
#define GAP_DECAY 0.1
/* Asymmetric cosine (Aiolli 2013): sim(i -> j) = c_ij / (n_i^ALPHA n_j^(1 - ALPHA) + shrink);
 * 0.5 is the plain cosine, larger values penalise popular neighbours less. */
#define ALPHA 0.7

struct cooc_row {
    uint32_t *k; /* neighbour idx + 1; 0 = empty */
    float *v;
    uint32_t n, cap;
};

struct cooc_user {
    char key[EVENT_KEY_HEX + 1]; /* "" = empty slot */
    int64_t ts;
    uint64_t item_hash;
};

struct reco_cooc {
    struct reco_ids it; /* the items seen, with dense indexes */
    uint32_t cap;       /* of the per-item arrays below */
    double *occ;
    struct cooc_row *rows;
    uint8_t *dirty;
    struct reco_nb **nbs;
    uint16_t *nnb;
    struct cooc_user *users;
    uint32_t umask;
    /* histories with new entries, copied under a shard's lock, folded in after it */
    struct core_arena pend_arena;
    struct pend_user *pend;
    size_t npend, pend_cap;
    struct pend_entry *pend_e;
    size_t npend_e, pend_ecap;
    /* the table being built during one update */
    struct cooc_user *nusers;
    uint32_t numask, nun;
    int hist, k;
    uint32_t max_items;
    uint64_t compactions;
    double gap_decay, alpha; /* pair weight 1/(1 + gap_decay * (distance - 1)); cosine skew */
};

struct reco_cooc *reco__cooc_new(int history, int neighbours, int64_t max_items)
{
    struct reco_cooc *c = core_xcalloc(1, sizeof *c);
    c->max_items = max_items > 0 && max_items < UINT32_MAX / 2 ? (uint32_t)max_items : 200000;
    reco__ids_init(&c->it);
    core_arena_init(&c->pend_arena);
    c->hist = history > 0 ? history : 50;
    c->k = neighbours > 0 && neighbours < 65535 ? neighbours : 50;
    c->gap_decay = GAP_DECAY;
    c->alpha = ALPHA;
    return c;
}

void reco__cooc_free(struct reco_cooc *c)
{
    if (!c)
        return;
    for (uint32_t i = 0; i < c->it.n; i++) {
        free(c->rows[i].k);
        free(c->rows[i].v);
        free(c->nbs[i]);
    }
    reco__ids_dispose(&c->it);
    free(c->occ);
    free(c->rows);
    free(c->dirty);
    free(c->nbs);
    free(c->nnb);
    free(c->users);
    free(c->pend);
    free(c->pend_e);
    core_arena_dispose(&c->pend_arena);
    free(c);
}

uint32_t reco__cooc_count(const struct reco_cooc *c)
{
    return c->it.n;
}

uint64_t reco__cooc_compactions(const struct reco_cooc *c)
{
    return c->compactions;
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

/* ---- items ------------------------------------------------------------------------------------
 */

static uint32_t item(struct reco_cooc *c, const char *id, size_t len)
{
    bool added;
    uint32_t i = reco__ids_intern(&c->it, id, len, &added);
    if (!added)
        return i;
    if (c->cap < c->it.cap) {
        uint32_t nc = c->it.cap;
        c->occ = core_xrealloc(c->occ, nc * sizeof *c->occ);
        c->rows = core_xrealloc(c->rows, nc * sizeof *c->rows);
        c->dirty = core_xrealloc(c->dirty, nc * sizeof *c->dirty);
        c->nbs = core_xrealloc(c->nbs, nc * sizeof *c->nbs);
        c->nnb = core_xrealloc(c->nnb, nc * sizeof *c->nnb);
        c->cap = nc;
    }
    c->occ[i] = 0;
    memset(&c->rows[i], 0, sizeof c->rows[i]);
    c->dirty[i] = 0;
    c->nbs[i] = NULL;
    c->nnb[i] = 0;
    return i;
}

/* ---- rows ------------------------------------------------------------------------------------ */

static void row_put(struct cooc_row *r, uint32_t key, float v)
{
    uint32_t m = r->cap - 1, h = (key * 2654435761u) & m;
    while (r->k[h] && r->k[h] != key)
        h = (h + 1) & m;
    if (!r->k[h]) {
        r->k[h] = key;
        r->v[h] = 0;
        r->n++;
    }
    r->v[h] += v;
}

static void row_resize(struct cooc_row *r, uint32_t ncap, float min_keep)
{
    uint32_t *ok = r->k;
    float *ov = r->v;
    uint32_t ocap = r->cap;
    r->k = core_xcalloc(ncap, sizeof *r->k);
    r->v = core_xmalloc(ncap * sizeof *r->v);
    r->cap = ncap;
    r->n = 0;
    for (uint32_t i = 0; i < ocap; i++)
        if (ok[i] && ov[i] > min_keep)
            row_put(r, ok[i], ov[i]);
    free(ok);
    free(ov);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static void row_add(struct reco_cooc *c, uint32_t i, uint32_t j, float w)
{
    struct cooc_row *r = &c->rows[i];
    if (!r->cap)
        row_resize(r, 8, -1);
    if ((r->n + 1) * 2 > r->cap) {
        if (r->cap < 2 * ROW_MAX) {
            row_resize(r, r->cap * 2, -1);
        } else {
            /* full: keep the heavier half */
            float *vals = core_xmalloc(r->n * sizeof *vals);
            uint32_t n = 0;
            for (uint32_t x = 0; x < r->cap; x++)
                if (r->k[x])
                    vals[n++] = r->v[x];
            qsort(vals, n, sizeof *vals, cmp_float);
            float median = vals[n / 2];
            free(vals);
            row_resize(r, r->cap, median);
            if ((r->n + 1) * 2 > r->cap) /* all equal: drop them all but this pair's */
                row_resize(r, r->cap, INFINITY);
        }
    }
    row_put(r, j + 1, w);
    c->dirty[i] = 1;
}

/* ---- users ----------------------------------------------------------------------------------- */

static struct cooc_user *user_slot(struct cooc_user *t, uint32_t mask, const char *key)
{
    if (!t)
        return NULL;
    uint32_t h = (uint32_t)XXH3_64bits(key, strlen(key)) & mask;
    while (t[h].key[0] && strcmp(t[h].key, key))
        h = (h + 1) & mask;
    return &t[h];
}

static uint64_t id_hash(const char *id, size_t len)
{
    return XXH3_64bits(id, len);
}

/* Histories with new entries are copied out under the shard's read lock (history_fn only
 * compares and copies) and folded in after the scan, so a build never holds the lock while
 * it accumulates. */
struct pend_entry {
    const char *id;
    uint32_t len;
    int32_t type;
};
struct pend_user {
    int n, start; /* entries, of which [start, n) are new */
    size_t off;   /* into the entry array */
};

static void pend_reset(struct reco_cooc *c)
{
    core_arena_reset(&c->pend_arena);
    c->npend = c->npend_e = 0;
}

static void history_fn(void *arg, const struct state_user_history *h)
{
    struct reco_cooc *c = arg;
    struct cooc_user *old = user_slot(c->users, c->umask, h->key);
    int start = 0;
    if (old && old->key[0]) {
        start = -1;
        for (int a = h->n - 1; a >= 0; a--)
            if (h->ts[a] == old->ts && id_hash(h->ids[a], h->lens[a]) == old->item_hash) {
                start = a + 1;
                break;
            }
        if (start < 0)
            start = 0; /* rolled past the window since the last build */
    }
    /* remember the newest entry in the new table */
    if ((c->nun + 1) * 2 > c->numask + 1) {
        uint32_t ncap = (c->numask + 1) * 2;
        struct cooc_user *t = core_xcalloc(ncap, sizeof *t);
        for (uint32_t x = 0; x <= c->numask; x++)
            if (c->nusers[x].key[0])
                *user_slot(t, ncap - 1, c->nusers[x].key) = c->nusers[x];
        free(c->nusers);
        c->nusers = t;
        c->numask = ncap - 1;
    }
    struct cooc_user *u = user_slot(c->nusers, c->numask, h->key);
    if (!u->key[0])
        c->nun++;
    snprintf(u->key, sizeof u->key, "%s", h->key);
    u->ts = h->ts[h->n - 1];
    u->item_hash = id_hash(h->ids[h->n - 1], h->lens[h->n - 1]);
    if (start >= h->n)
        return; /* nothing new */
    /* copy the new entries and the history they pair with */
    int from = start - c->hist > 0 ? start - c->hist : 0;
    if (c->npend == c->pend_cap) {
        c->pend_cap = c->pend_cap ? c->pend_cap * 2 : 1024;
        c->pend = core_xrealloc(c->pend, c->pend_cap * sizeof *c->pend);
    }
    if (c->npend_e + (size_t)(h->n - from) > c->pend_ecap) {
        c->pend_ecap = (c->pend_ecap + (size_t)(h->n - from)) * 2;
        c->pend_e = core_xrealloc(c->pend_e, c->pend_ecap * sizeof *c->pend_e);
    }
    c->pend[c->npend++] = (struct pend_user){h->n - from, start - from, c->npend_e};
    for (int a = from; a < h->n; a++)
        c->pend_e[c->npend_e++] =
            (struct pend_entry){core_arena_strndup(&c->pend_arena, h->ids[a], h->lens[a]),
                                (uint32_t)h->lens[a], h->types[a]};
}

/* Pairs each new entry of a copied history with the user's previous items. */
static void fold(struct reco_cooc *c, const struct pend_user *pu)
{
    const struct pend_entry *e = c->pend_e + pu->off;
    uint32_t idx[STATE_READ_RECENT_MAX];
    bool pos[STATE_READ_RECENT_MAX];
    for (int a = 0; a < pu->n; a++) {
        const struct event_type_info *ti = event_type_get(e[a].type);
        pos[a] = !ti || ti->weight > 0;
        idx[a] = pos[a] ? item(c, e[a].id, e[a].len) : UINT32_MAX;
    }
    for (int a = pu->start; a < pu->n; a++) {
        if (!pos[a])
            continue;
        uint32_t i = idx[a];
        c->occ[i] += 1;
        c->dirty[i] = 1;
        for (int b = a - 1; b >= 0 && b >= a - c->hist; b--) {
            uint32_t j = idx[b];
            if (!pos[b] || j == i || j == UINT32_MAX)
                continue;
            float w = (float)(1.0 / (1.0 + c->gap_decay * (a - b - 1)));
            row_add(c, i, j, w);
            row_add(c, j, i, w);
        }
    }
}

/* ---- neighbours --------------------------------------------------------------------------------
 */

static int cmp_nb(const void *a, const void *b)
{
    const struct reco_nb *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void neighbours(struct reco_cooc *c, uint32_t i, struct reco_nb *tmp)
{
    const struct cooc_row *r = &c->rows[i];
    uint32_t n = 0;
    for (uint32_t x = 0; x < r->cap; x++) {
        if (!r->k[x])
            continue;
        uint32_t j = r->k[x] - 1;
        double sim =
            r->v[x] / (pow(c->occ[i], c->alpha) * pow(c->occ[j], 1 - c->alpha) + KNN_SHRINK);
        tmp[n++] = (struct reco_nb){j, (float)sim};
    }
    qsort(tmp, n, sizeof *tmp, cmp_nb);
    if (n > (uint32_t)c->k)
        n = (uint32_t)c->k;
    if (n > c->nnb[i] || !c->nbs[i])
        c->nbs[i] = core_xrealloc(c->nbs[i], (n + 1) * sizeof *tmp);
    memcpy(c->nbs[i], tmp, n * sizeof *tmp);
    c->nnb[i] = (uint16_t)n;
}

static int cmp_occ(const void *a, const void *b, void *arg)
{
    const double *occ = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    if (occ[x] != occ[y])
        return occ[x] < occ[y] ? 1 : -1;
    return x < y ? -1 : x > y;
}

/* Keeps the 3/4 * max_items items seen most often (ties: the earlier seen), in their order,
 * and drops the rest with every pair that names them; every kept row's neighbours are
 * recomputed. Indexes only move down, so the per-item arrays are compacted in place. */
static void compact(struct reco_cooc *c)
{
    uint32_t n = c->it.n, keep = c->max_items - c->max_items / 4;
    uint32_t *ord = core_xmalloc(n * sizeof *ord), *map = core_xmalloc(n * sizeof *map);
    for (uint32_t i = 0; i < n; i++) {
        ord[i] = i;
        map[i] = UINT32_MAX;
    }
    qsort_r(ord, n, sizeof *ord, cmp_occ, c->occ);
    for (uint32_t k = 0; k < keep; k++)
        map[ord[k]] = 0;
    free(ord);
    struct reco_ids nt;
    reco__ids_init(&nt);
    for (uint32_t i = 0; i < n; i++) {
        if (map[i] == UINT32_MAX)
            continue;
        bool added;
        map[i] = reco__ids_intern(&nt, c->it.ids[i], c->it.lens[i], &added);
    }
    for (uint32_t i = 0; i < n; i++) {
        struct cooc_row r = c->rows[i];
        free(c->nbs[i]);
        c->nbs[i] = NULL;
        uint32_t j = map[i];
        if (j == UINT32_MAX) {
            free(r.k);
            free(r.v);
            continue;
        }
        struct cooc_row nr = {0};
        if (r.cap) {
            nr.cap = r.cap;
            nr.k = core_xcalloc(nr.cap, sizeof *nr.k);
            nr.v = core_xmalloc(nr.cap * sizeof *nr.v);
            for (uint32_t x = 0; x < r.cap; x++)
                if (r.k[x] && map[r.k[x] - 1] != UINT32_MAX)
                    row_put(&nr, map[r.k[x] - 1] + 1, r.v[x]);
            free(r.k);
            free(r.v);
        }
        c->occ[j] = c->occ[i];
        c->rows[j] = nr;
        c->nnb[j] = 0;
        c->dirty[j] = 1;
    }
    free(map);
    reco__ids_dispose(&c->it);
    c->it = nt;
    c->compactions++;
}

void reco__cooc_update(struct reco_cooc *c, struct state_shard *const *shards, int nshards)
{
    c->numask = 1023;
    c->nun = 0;
    c->nusers = core_xcalloc(c->numask + 1, sizeof *c->nusers);
    for (int p = 0; p < nshards; p++) {
        pend_reset(c);
        state_shard_user_histories(shards[p], c->hist, history_fn, c); /* copies only */
        for (size_t k = 0; k < c->npend; k++)
            fold(c, &c->pend[k]);
    }
    pend_reset(c);
    free(c->users);
    c->users = c->nusers;
    c->umask = c->numask;
    c->nusers = NULL;
    if (c->it.n > c->max_items)
        compact(c);
    struct reco_nb *tmp = core_xmalloc((2 * ROW_MAX + 1) * sizeof *tmp);
    for (uint32_t i = 0; i < c->it.n; i++) {
        if (!c->dirty[i])
            continue;
        neighbours(c, i, tmp);
        c->dirty[i] = 0;
    }
    free(tmp);
}

/* ---- export / import (serving-only nodes) -----------------------------------------------------
 *
 *   u32 magic "RSK1" | u32 version | u64 XXH3-64 of the body | body
 *   body: varint n, then per item: varint id length, id bytes, varint neighbours, then per
 *   neighbour varint index and the float score's 32 bits
 *
 * Items keep their order, so a model built over an imported accumulator gives every item the
 * model index the exporting node's model gives it.
 */

#define KNN_MAGIC 0x314b5352u /* "RSK1" little-endian */
#define KNN_VERSION 1u

void reco__cooc_export(const struct reco_cooc *c, struct core_buf *out)
{
    size_t start = out->len;
    core_buf_put_u32(out, KNN_MAGIC);
    core_buf_put_u32(out, KNN_VERSION);
    core_buf_put_u64(out, 0);
    size_t body = out->len;
    core_buf_put_varint(out, c->it.n);
    for (uint32_t i = 0; i < c->it.n; i++) {
        core_buf_put_varint(out, c->it.lens[i]);
        core_buf_append(out, c->it.ids[i], c->it.lens[i]);
        core_buf_put_varint(out, c->nnb[i]);
        for (uint32_t k = 0; k < c->nnb[i]; k++) {
            uint32_t bits;
            memcpy(&bits, &c->nbs[i][k].score, sizeof bits);
            core_buf_put_varint(out, c->nbs[i][k].idx);
            core_buf_put_u32(out, bits);
        }
    }
    uint64_t sum = XXH3_64bits(out->data + body, out->len - body);
    for (int i = 0; i < 8; i++)
        out->data[start + 8 + i] = (char)(sum >> (8 * i));
}

int reco__cooc_import(const void *data, size_t len, struct reco_cooc **out)
{
    const uint8_t *p = data, *end = p + len;
    uint32_t magic = 0, version = 0;
    uint64_t sum = 0, n = 0;
    if (core_get_u32(&p, end, &magic) < 0 || core_get_u32(&p, end, &version) < 0 ||
        core_get_u64(&p, end, &sum) < 0 || magic != KNN_MAGIC || version != KNN_VERSION ||
        XXH3_64bits(p, (size_t)(end - p)) != sum || core_get_varint(&p, end, &n) < 0 ||
        n > (uint64_t)(end - p))
        return CORE_E_CORRUPT;
    struct reco_cooc *c = reco__cooc_new(0, 0, 0);
    int rc = 0;
    for (uint64_t i = 0; i < n && rc == 0; i++) {
        uint64_t idlen = 0, k = 0;
        if (core_get_varint(&p, end, &idlen) < 0 || idlen == 0 || idlen > EVENT_ITEM_MAX ||
            idlen > (uint64_t)(end - p)) {
            rc = CORE_E_CORRUPT;
            break;
        }
        uint32_t x = item(c, (const char *)p, (size_t)idlen);
        p += idlen;
        if (x != i || core_get_varint(&p, end, &k) < 0 || k > 65535 ||
            k * 5 > (uint64_t)(end - p)) {
            rc = CORE_E_CORRUPT; /* a repeated id, or a bad count */
            break;
        }
        c->nbs[x] = core_xmalloc((size_t)(k + 1) * sizeof *c->nbs[x]);
        c->nnb[x] = (uint16_t)k;
        for (uint64_t j = 0; j < k && rc == 0; j++) {
            uint64_t idx = 0;
            uint32_t bits = 0;
            if (core_get_varint(&p, end, &idx) < 0 || idx >= n || core_get_u32(&p, end, &bits) < 0)
                rc = CORE_E_CORRUPT;
            c->nbs[x][j].idx = (uint32_t)idx;
            memcpy(&c->nbs[x][j].score, &bits, sizeof bits);
        }
    }
    if (rc == 0 && p != end)
        rc = CORE_E_CORRUPT;
    if (rc < 0) {
        reco__cooc_free(c);
        return rc;
    }
    *out = c;
    return 0;
}
