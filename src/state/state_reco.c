/*
 * State the recommender reads beyond users and items:
 * - category affinities: events are joined with the item catalog at apply time and the
 *   event's weight is spread over the item's categories (decayed like type affinities);
 * - stated preferences: the categories of a user's latest "preferences" event (onboarding);
 * - context popularity: per context key ("device:mobile", "locale:de-DE", "hour:13") a bounded
 *   top list of items, kept with the same decayed neighbour-list machinery as co-visitation;
 * - attribution: impressions, clicks, carts and purchases carrying a recId, counted by the
 *   recId's "<strategy>.<variant>" prefix in 1 h / 24 h rings and all-time totals.
 * All of it is a function of the applied events (and the catalog, see state.h).
 */
#include "catalog/catalog.h"
#include "state/state_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* ---- category affinities ------------------------------------------------------------------- */

static void caff_add(struct st *d, struct st_user *u, const char *name, size_t len, double w,
                     int64_t ts)
{
    for (int i = 0; i < u->ncaff; i++) {
        struct st_affinity *a = &u->caff[i];
        if (a->tname->len == len && memcmp(a->tname->s, name, len) == 0) {
            st__acc_add(d, &a->v, &a->ts, w, ts);
            return;
        }
    }
    if (!u->caff)
        u->caff = st__alloc(d, ST_CAFF_MAX * sizeof *u->caff);
    int slot = u->ncaff;
    if (u->ncaff == ST_CAFF_MAX) {
        slot = 0;
        double lo = st__decay(d, u->caff[0].v, u->caff[0].ts, d->now);
        for (int i = 1; i < u->ncaff; i++) {
            double v = st__decay(d, u->caff[i].v, u->caff[i].ts, d->now);
            if (v <= lo) {
                lo = v;
                slot = i;
            }
        }
        st__unref(d, u->caff[slot].tname);
    } else {
        u->ncaff++;
    }
    u->caff[slot] = (struct st_affinity){0, st__intern(d, name, len), w, ts};
}

static void category_join(struct st *d, struct st_user *u, const struct event *ev, double w)
{
    struct catalog *cat = d->cfg.catalog;
    if (!cat || !(w > 0))
        return;
    catalog_read_begin(cat);
    const struct catalog_item *ci = catalog_find(cat, ev->item_id.ptr, ev->item_id.len);
    if (ci && ci->ncategories > 0) {
        double share = w / ci->ncategories;
        for (int i = 0; i < ci->ncategories; i++) {
            const char *name = catalog_symbol(cat, ci->categories[i]);
            if (name)
                caff_add(d, u, name, strlen(name), share, ev->ts_ms);
        }
    }
    catalog_read_end(cat);
}

/* ---- preferences ---------------------------------------------------------------------------- */

static void preferences(struct st *d, struct st_user *u, const struct event *ev)
{
    if (ev->properties_json.len == 0)
        return;
    cJSON *root = cJSON_ParseWithLength(ev->properties_json.ptr, ev->properties_json.len);
    const cJSON *cats = cJSON_GetObjectItemCaseSensitive(root, "categories");
    if (cJSON_IsArray(cats)) {
        for (int i = 0; i < u->nprefs; i++)
            st__unref(d, u->prefs[i]);
        u->nprefs = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, cats)
        {
            size_t n = cJSON_IsString(c) ? strlen(c->valuestring) : 0;
            if (n == 0 || n > STATE_SYMBOL_MAX || u->nprefs == ST_PREF_MAX)
                continue;
            u->prefs[u->nprefs++] = st__intern(d, c->valuestring, n);
        }
    }
    cJSON_Delete(root);
}

/* ---- context popularity ------------------------------------------------------------------- */

struct st_item *st__ctx_find(const struct st *d, const char *key, size_t len)
{
    uint64_t h = st__hash(key, len);
    for (struct st_hnode *e = d->ctxs.b ? d->ctxs.b[h & d->ctxs.mask] : NULL; e; e = e->hnext) {
        struct st_item *it = (struct st_item *)e;
        if (it->id->hash == h && it->id->len == len && memcmp(it->id->s, key, len) == 0)
            return it;
    }
    return NULL;
}

struct st_item *st__ctx_add(struct st *d, struct st_str *key)
{
    struct st_item *it = st__alloc(d, sizeof *it);
    memset(it, 0, sizeof *it);
    it->id = st__ref(key);
    it->h.hash = key->hash;
    it->last_ms = ST_EMPTY;
    for (int k = 0; k < STATE_W__COUNT; k++)
        it->head[k] = ST_EMPTY;
    it->pop_ts = ST_EMPTY;
    if (!d->ctxs.b)
        st__htab_init(d, &d->ctxs);
    st__htab_insert(d, &d->ctxs, &it->h);
    return it;
}

/* The string value of "name" in a compact JSON object written by the event codec; false when
 * absent, not a plain string (escapes are not worth decoding here) or too long. */
static bool json_field(const struct event_str *obj, const char *name, char *out, size_t cap)
{
    char pat[32];
    int pn = snprintf(pat, sizeof pat, "\"%s\":\"", name);
    const char *p = obj->ptr, *end = obj->ptr + obj->len;
    const char *hit = pn > 0 ? memmem(p, obj->len, pat, (size_t)pn) : NULL;
    if (!hit)
        return false;
    const char *v = hit + pn;
    size_t n = 0;
    while (v + n < end && v[n] != '"') {
        if (v[n] == '\\' || n + 1 >= cap)
            return false;
        n++;
    }
    if (n == 0 || v + n >= end)
        return false;
    memcpy(out, v, n);
    out[n] = 0;
    return true;
}

static void context_add(struct st *d, const char *key, struct st_item *it, double w, int64_t ts)
{
    size_t len = strlen(key);
    struct st_item *c = st__ctx_find(d, key, len);
    if (!c && d->ctxs.n >= ST_CTX_MAX)
        return; /* bounded: context values beyond the first ST_CTX_MAX are not tracked */
    if (!c) {
        struct st_str *k = st__intern(d, key, len);
        c = st__ctx_add(d, k);
        st__unref(d, k);
    }
    st__nb_add(d, c, it->id, w, ts);
}

static void contexts(struct st *d, struct st_item *it, const struct event *ev, double w)
{
    char key[96], v[64];
    if (ev->context_json.len > 0) {
        if (json_field(&ev->context_json, "device", v, sizeof v)) {
            snprintf(key, sizeof key, "device:%s", v);
            context_add(d, key, it, w, ev->ts_ms);
        }
        if (json_field(&ev->context_json, "locale", v, sizeof v)) {
            snprintf(key, sizeof key, "locale:%s", v);
            context_add(d, key, it, w, ev->ts_ms);
        }
    }
    snprintf(key, sizeof key, "hour:%02d", st__floormod(st__floordiv(ev->ts_ms, 3600000), 24));
    context_add(d, key, it, w, ev->ts_ms);
}

/* ---- attribution ---------------------------------------------------------------------------- */

struct st_ctr *st__ctr_find(const struct st *d, const char *key, size_t len)
{
    uint64_t h = st__hash(key, len);
    for (struct st_hnode *e = d->ctrs.b ? d->ctrs.b[h & d->ctrs.mask] : NULL; e; e = e->hnext) {
        struct st_ctr *c = (struct st_ctr *)e;
        if (c->key->hash == h && c->key->len == len && memcmp(c->key->s, key, len) == 0)
            return c;
    }
    return NULL;
}

struct st_ctr *st__ctr_get(struct st *d, struct st_str *key)
{
    struct st_ctr *c = st__ctr_find(d, key->s, key->len);
    if (c)
        return c;
    c = st__alloc(d, sizeof *c);
    memset(c, 0, sizeof *c);
    c->key = st__ref(key);
    c->h.hash = key->hash;
    c->head[0] = c->head[1] = ST_EMPTY;
    if (!d->ctrs.b)
        st__htab_init(d, &d->ctrs);
    st__htab_insert(d, &d->ctrs, &c->h);
    return c;
}

struct ctr_ring_arg {
    struct st_ctr *c;
    int off;
};

static void st__ctr_clear(void *arg, int slot)
{
    struct ctr_ring_arg *a = arg;
    memset(a->c->b[a->off + slot], 0, sizeof a->c->b[0]);
}

static void attribution(struct st *d, const struct event *ev)
{
    int k;
    switch (ev->type) {
    case EVENT_IMPRESSION:
        k = ST_CTR_IMP;
        break;
    case EVENT_CLICK:
        k = ST_CTR_CLICK;
        break;
    case EVENT_ADD_TO_CART:
        k = ST_CTR_CART;
        break;
    case EVENT_PURCHASE:
        k = ST_CTR_PURCHASE;
        break;
    default:
        return;
    }
    const char *r = ev->rec_id.ptr;
    size_t n = ev->rec_id.len;
    while (n > 0 && r[n - 1] != '.')
        n--;
    if (n > 0)
        n--; /* drop the dot and the unique part */
    const char *key = n > 0 ? r : "unknown";
    size_t klen = n > 0 ? n : 7;
    struct st_ctr *c = st__ctr_find(d, key, klen);
    if (!c) {
        if (d->ctrs.n >= ST_CTR_KEYS_MAX) {
            key = "other";
            klen = 5;
            c = st__ctr_find(d, key, klen);
        }
        if (!c) {
            struct st_str *s = st__intern(d, key, klen);
            c = st__ctr_get(d, s);
            st__unref(d, s);
        }
    }
    c->total[k]++;
    for (int w = 0; w < ST_ENG_W; w++) {
        struct ctr_ring_arg arg = {c, w == 0 ? 0 : st_ring_n[STATE_W_1H]};
        int slot = st__ring_slot(d, STATE_W_1H + w, &c->head[w], ev->ts_ms, st__ctr_clear, &arg);
        if (slot >= 0)
            c->b[arg.off + slot][k]++;
    }
}

/* ---- apply / free --------------------------------------------------------------------------- */

void st__reco_apply(struct st *d, struct st_user *u, struct st_item *it, const struct event *ev,
                    double w)
{
    if (ev->rec_id.len > 0)
        attribution(d, ev);
    if (u && ev->type == EVENT_PREFERENCES)
        preferences(d, u, ev);
    if (!it || !(w > 0))
        return;
    if (u)
        category_join(d, u, ev, w);
    contexts(d, it, ev, w);
}

void st__reco_user_free(struct st *d, struct st_user *u)
{
    for (int i = 0; i < u->ncaff; i++)
        st__unref(d, u->caff[i].tname);
    if (u->caff)
        st__free(d, u->caff, ST_CAFF_MAX * sizeof *u->caff);
    for (int i = 0; i < u->nprefs; i++)
        st__unref(d, u->prefs[i]);
    u->caff = NULL;
    u->ncaff = u->nprefs = 0;
}

void st__reco_dispose(struct st *d)
{
    for (size_t b = 0; d->ctxs.b && b <= d->ctxs.mask; b++) {
        struct st_hnode *e = d->ctxs.b[b];
        while (e) {
            struct st_hnode *nx = e->hnext;
            struct st_item *it = (struct st_item *)e;
            for (int i = 0; i < it->nnb; i++)
                st__unref(d, it->nb[i].id);
            st__free(d, it->nb, (size_t)it->nbcap * sizeof *it->nb);
            st__unref(d, it->id);
            st__free(d, it, sizeof *it);
            e = nx;
        }
    }
    for (size_t b = 0; d->ctrs.b && b <= d->ctrs.mask; b++) {
        struct st_hnode *e = d->ctrs.b[b];
        while (e) {
            struct st_hnode *nx = e->hnext;
            struct st_ctr *c = (struct st_ctr *)e;
            st__unref(d, c->key);
            st__free(d, c, sizeof *c);
            e = nx;
        }
    }
    free(d->ctxs.b);
    free(d->ctrs.b);
    memset(&d->ctxs, 0, sizeof d->ctxs);
    memset(&d->ctrs, 0, sizeof d->ctrs);
}

/* ---- reads ---------------------------------------------------------------------------------- */

static void copy_user_item(struct state_user_read *out, struct state_user_item *o,
                           const struct st_str *id, int32_t type, double weight, int64_t ts)
{
    char *p = out->pool + out->pool_used;
    memcpy(p, id->s, id->len);
    p[id->len] = 0;
    out->pool_used += id->len + 1;
    o->item_id = p;
    o->hash = id->hash;
    o->len = id->len;
    o->type = type;
    o->weight = weight;
    o->ts = ts;
}

static int cmp_cat(const void *a, const void *b)
{
    const struct state_user_cat *x = a, *y = b;
    if (x->v != y->v)
        return x->v < y->v ? 1 : -1;
    return strcmp(x->name, y->name);
}

void state_shard_user_read(struct state_shard *s, const char *user_key, struct state_user_read *out)
{
    out->found = false;
    out->nrecent = out->nsession = out->ncats = out->nprefs = 0;
    out->pool_used = 0;
    pthread_rwlock_rdlock(&s->lock);
    struct st *d = &s->d;
    out->now_ms = d->have_now ? d->now : 0;
    struct st_user *u = st__user_find(d, user_key, strnlen(user_key, EVENT_KEY_HEX));
    if (u) {
        out->found = true;
        out->events = u->events;
        out->first_ms = u->first_ms;
        out->last_ms = u->last_ms;
        int skip = u->nrecent > STATE_READ_RECENT_MAX ? u->nrecent - STATE_READ_RECENT_MAX : 0;
        /* The interned ids are scattered over the heap: ask for them all first so the cache
         * misses overlap instead of coming one copy at a time. */
        /* ring positions by increment and wrap (a division per entry cost more than the
         * copy) */
        int first = u->nrecent > skip ? (u->rhead + skip) % u->rcap : 0;
        for (int i = skip, k = first; i < u->nrecent; i++, k = k + 1 == u->rcap ? 0 : k + 1)
            __builtin_prefetch(u->recent[k].item);
        for (int i = 0; i < u->nsess && i < STATE_READ_RECENT_MAX; i++)
            __builtin_prefetch(u->sess_items[i].item);
        for (int i = skip, k = first; i < u->nrecent; i++, k = k + 1 == u->rcap ? 0 : k + 1) {
            const struct st_recent *r = &u->recent[k];
            copy_user_item(out, &out->recent[out->nrecent++], r->item, r->type, r->weight, r->ts);
        }
        for (int i = 0; i < u->nsess && i < STATE_READ_RECENT_MAX; i++)
            copy_user_item(out, &out->session[out->nsession++], u->sess_items[i].item, 0, 0,
                           u->sess_items[i].ts);
        for (int i = 0; i < u->ncaff && i < STATE_READ_CATS_MAX; i++) {
            const struct st_affinity *a = &u->caff[i];
            struct state_user_cat *c = &out->cats[out->ncats++];
            size_t n = a->tname->len < STATE_SYMBOL_MAX ? a->tname->len : STATE_SYMBOL_MAX;
            memcpy(c->name, a->tname->s, n);
            c->name[n] = 0;
            c->v = st__decay(d, a->v, a->ts, d->now);
        }
        for (int i = 0; i < u->nprefs; i++) {
            size_t n = u->prefs[i]->len < STATE_SYMBOL_MAX ? u->prefs[i]->len : STATE_SYMBOL_MAX;
            memcpy(out->prefs[out->nprefs], u->prefs[i]->s, n);
            out->prefs[out->nprefs++][n] = 0;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    /* strongest first: a stable insertion sort of the few (<= STATE_READ_CATS_MAX) entries,
     * as qsort's merge sort ordered them, without its temporary buffer (malloc'ed for
     * entries this size) */
    for (int i = 1; i < out->ncats; i++) {
        struct state_user_cat c = out->cats[i];
        int j = i;
        for (; j > 0 && cmp_cat(&c, &out->cats[j - 1]) < 0; j--)
            out->cats[j] = out->cats[j - 1];
        out->cats[j] = c;
    }
}

static int list_each(struct st *d, const struct st_item *it, int64_t as_of, state_score_fn fn,
                     void *arg)
{
    if (!it)
        return 0;
    for (int i = 0; i < it->nnb; i++) {
        const struct st_nb *nb = &it->nb[i];
        /* decay forward only: another shard's clock may be behind this one's */
        double v = as_of > nb->ts ? st__decay(d, nb->score, nb->ts, as_of) : nb->score;
        fn(arg, nb->id->s, nb->id->len, v);
    }
    return it->nnb;
}

int state_shard_neighbours_each(struct state_shard *s, const char *item_id, size_t len,
                                int64_t as_of_ms, state_score_fn fn, void *arg)
{
    pthread_rwlock_rdlock(&s->lock);
    struct st *d = &s->d;
    int n = 0;
    uint64_t h = st__hash(item_id, len);
    for (struct st_hnode *e = d->strs.b[h & d->strs.mask]; e; e = e->hnext) {
        struct st_str *str = (struct st_str *)e;
        if (str->hash == h && str->len == len && memcmp(str->s, item_id, len) == 0) {
            n = list_each(d, st__item_find(d, str), as_of_ms, fn, arg);
            break;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    return n;
}

int state_shard_context_each(struct state_shard *s, const char *key, size_t len, int64_t as_of_ms,
                             state_score_fn fn, void *arg)
{
    pthread_rwlock_rdlock(&s->lock);
    int n = list_each(&s->d, st__ctx_find(&s->d, key, len), as_of_ms, fn, arg);
    pthread_rwlock_unlock(&s->lock);
    return n;
}

void state_shard_contexts_each(struct state_shard *s,
                               void (*fn)(void *arg, const char *key, size_t klen, const char *id,
                                          size_t len, double score),
                               void *arg)
{
    pthread_rwlock_rdlock(&s->lock);
    struct st *d = &s->d;
    for (size_t b = 0; d->ctxs.b && b <= d->ctxs.mask; b++)
        for (const struct st_hnode *e = d->ctxs.b[b]; e; e = e->hnext) {
            const struct st_item *c = (const struct st_item *)e;
            for (int i = 0; i < c->nnb; i++)
                fn(arg, c->id->s, c->id->len, c->nb[i].id->s, c->nb[i].id->len,
                   st__decay(d, c->nb[i].score, c->nb[i].ts, d->now));
        }
    pthread_rwlock_unlock(&s->lock);
}

struct count_arg {
    const struct st_item *it;
    int off;
    int64_t sum;
};

/* Interest only: views, clicks, carts, purchases (not the "other" group, which holds
 * impressions, removals from carts, scrolls and the like). */
static void count_fn(void *arg, int slot)
{
    struct count_arg *a = arg;
    for (int g = 0; g < STATE_G_OTHER; g++)
        a->sum += a->it->cnt[a->off + slot][g];
}

/* Sum over the live buckets of window w (as state_read.c's ring_live). */
static int64_t window_count(const struct st *d, const struct st_item *it, int w)
{
    struct count_arg a = {it, st_ring_off[w], 0};
    if (it->head[w] == ST_EMPTY)
        return 0;
    int n = st_ring_n[w];
    int64_t nowb = st__floordiv(d->now, st_ring_width[w]);
    for (int64_t b = it->head[w]; b > it->head[w] - n; b--)
        if (b > nowb - n)
            count_fn(&a, st__floormod(b, n));
    return a.sum;
}

void state_shard_items_each(struct state_shard *s,
                            void (*fn)(void *arg, const char *id, size_t len,
                                       const struct state_item_brief *b),
                            void *arg)
{
    pthread_rwlock_rdlock(&s->lock);
    struct st *d = &s->d;
    for (const struct st_lnode *l = d->ilru.head; l; l = l->next) {
        const struct st_item *it =
            (const struct st_item *)((const char *)l - offsetof(struct st_item, l));
        struct state_item_brief b;
        b.popularity = st__decay(d, it->pop, it->pop_ts, d->now);
        b.count_1h = window_count(d, it, STATE_W_1H);
        b.count_24h = window_count(d, it, STATE_W_24H);
        b.last_ms = it->last_ms;
        fn(arg, it->id->s, it->id->len, &b);
    }
    pthread_rwlock_unlock(&s->lock);
}

struct ctr_sum_arg {
    const struct st_ctr *c;
    int off;
    int64_t n[ST_CTR_N];
};

static void ctr_sum_fn(void *arg, int slot)
{
    struct ctr_sum_arg *a = arg;
    for (int k = 0; k < ST_CTR_N; k++)
        a->n[k] += a->c->b[a->off + slot][k];
}

int state_shard_ctr(struct state_shard *s, int window, struct state_ctr_row *rows, int nrows,
                    int max)
{
    pthread_rwlock_rdlock(&s->lock);
    struct st *d = &s->d;
    for (size_t b = 0; d->ctrs.b && b <= d->ctrs.mask; b++) {
        for (struct st_hnode *e = d->ctrs.b[b]; e; e = e->hnext) {
            const struct st_ctr *c = (const struct st_ctr *)e;
            struct ctr_sum_arg a = {c, 0, {0}};
            if (window < 0) {
                memcpy(a.n, c->total, sizeof a.n);
            } else {
                int k = window == STATE_W_1H ? 0 : 1, w = STATE_W_1H + k;
                a.off = k == 0 ? 0 : st_ring_n[STATE_W_1H];
                int n = st_ring_n[w];
                int64_t nowb = st__floordiv(d->now, st_ring_width[w]);
                for (int64_t bk = c->head[k]; c->head[k] != ST_EMPTY && bk > c->head[k] - n; bk--)
                    if (bk > nowb - n)
                        ctr_sum_fn(&a, st__floormod(bk, n));
            }
            int r = 0;
            while (r < nrows && (strlen(rows[r].key) != c->key->len ||
                                 memcmp(rows[r].key, c->key->s, c->key->len) != 0))
                r++;
            if (r == nrows) {
                if (nrows == max)
                    continue;
                memset(&rows[r], 0, sizeof rows[r]);
                memcpy(rows[r].key, c->key->s, c->key->len);
                nrows++;
            }
            rows[r].impressions += a.n[ST_CTR_IMP];
            rows[r].clicks += a.n[ST_CTR_CLICK];
            rows[r].carts += a.n[ST_CTR_CART];
            rows[r].purchases += a.n[ST_CTR_PURCHASE];
        }
    }
    pthread_rwlock_unlock(&s->lock);
    return nrows;
}

int64_t state_shard_now(struct state_shard *s)
{
    pthread_rwlock_rdlock(&s->lock);
    int64_t now = s->d.have_now ? s->d.now : 0;
    pthread_rwlock_unlock(&s->lock);
    return now;
}
