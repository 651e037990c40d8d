/*
 * state: applying events to a shard. Every update is a function of the event and the shard's
 * own event-time clock ("now" = max event time applied), never of the wall clock, and floating
 * point is accumulated in one fixed order per event, so replaying the same (event, offset)
 * sequence gives bit-identical state. Iteration order of the hash tables never influences
 * state: expiry and eviction follow the LRU lists (apply order), reads and dumps sort.
 */
#include "state/state_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

const int st_ring_n[STATE_W__COUNT] = {6, 12, 24};
const int st_ring_off[STATE_W__COUNT] = {0, 6, 18};
const int64_t st_ring_width[STATE_W__COUNT] = {10000, 300000, 3600000};

/* Entities checked for TTL expiry per apply (from the LRU head); keeps expiry incremental. */
#define ST_EXPIRE_PER_APPLY 2

void state_config_init(struct state_config *cfg)
{
    cfg->recent_max = 50;
    cfg->session_gap_ms = 30 * 60 * 1000;
    cfg->covisit_window = 10;
    cfg->neighbours_max = 50;
    cfg->half_life_ms = 24 * 3600 * 1000;
    cfg->allowed_lateness_ms = 5000;
    cfg->user_ttl_ms = (int64_t)30 * 24 * 3600 * 1000;
    cfg->item_ttl_ms = (int64_t)30 * 24 * 3600 * 1000;
    cfg->max_users = 1000000;
    cfg->catalog = NULL;
    cfg->max_items = 1000000;
    cfg->cooc_items_max = 200000;
}

/* ---- small helpers ------------------------------------------------------------------------- */

void *st__alloc(struct st *d, size_t n)
{
    d->bytes += (int64_t)n;
    return core_xcalloc(1, n);
}

void *st__realloc(struct st *d, void *p, size_t old, size_t n)
{
    d->bytes += (int64_t)n - (int64_t)old;
    return core_xrealloc(p, n);
}

void st__free(struct st *d, void *p, size_t n)
{
    if (!p)
        return;
    d->bytes -= (int64_t)n;
    free(p);
}

uint64_t st__hash(const void *p, size_t n)
{
    return XXH3_64bits(p, n);
}

double st__decay(const struct st *d, double v, int64_t t0, int64_t t1)
{
    if (t0 == t1 || v == 0.0)
        return v;
    return v * exp2(-(double)(t1 - t0) / (double)d->cfg.half_life_ms);
}

/* Adds w observed at t to the decayed accumulator (v, ts): the accumulator's reference time
 * is the newest time it has seen, so older (late) additions are decayed to it instead. */
void st__acc_add(const struct st *d, double *v, int64_t *ts, double w, int64_t t)
{
    if (t >= *ts) {
        *v = st__decay(d, *v, *ts, t) + w;
        *ts = t;
    } else {
        *v += st__decay(d, w, t, *ts);
    }
}

int st__strcmp(const struct st_str *a, const struct st_str *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, n);
    if (c)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

int64_t st__floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

int st__floormod(int64_t a, int64_t b)
{
    return (int)(a - st__floordiv(a, b) * b);
}

const char *st__type_name(int32_t type, const struct st_str *tname, size_t *len)
{
    if (tname) {
        *len = tname->len;
        return tname->s;
    }
    const struct event_type_info *ti = event_type_get(type);
    const char *name = ti ? ti->name : "unknown";
    *len = strlen(name);
    return name;
}

/* ---- hash tables and LRU lists ------------------------------------------------------------- */

void st__htab_init(struct st *d, struct st_htab *t)
{
    t->mask = 63;
    t->n = 0;
    t->b = st__alloc(d, (t->mask + 1) * sizeof *t->b);
}

void st__htab_insert(struct st *d, struct st_htab *t, struct st_hnode *h)
{
    if (t->n + 1 > (t->mask + 1)) {
        size_t ncap = (t->mask + 1) * 2;
        struct st_hnode **nb = st__alloc(d, ncap * sizeof *nb);
        for (size_t i = 0; i <= t->mask; i++) {
            struct st_hnode *e = t->b[i];
            while (e) {
                struct st_hnode *nx = e->hnext;
                e->hnext = nb[e->hash & (ncap - 1)];
                nb[e->hash & (ncap - 1)] = e;
                e = nx;
            }
        }
        st__free(d, t->b, (t->mask + 1) * sizeof *t->b);
        t->b = nb;
        t->mask = ncap - 1;
    }
    h->hnext = t->b[h->hash & t->mask];
    t->b[h->hash & t->mask] = h;
    t->n++;
}

void st__htab_remove(struct st_htab *t, struct st_hnode *h)
{
    struct st_hnode **pp = &t->b[h->hash & t->mask];
    while (*pp != h)
        pp = &(*pp)->hnext;
    *pp = h->hnext;
    t->n--;
}

static void lru_remove(struct st_lru *l, struct st_lnode *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
}

static void lru_push(struct st_lru *l, struct st_lnode *n)
{
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
}

static void lru_touch(struct st_lru *l, struct st_lnode *n)
{
    if (l->tail == n)
        return;
    lru_remove(l, n);
    lru_push(l, n);
}

/* ---- interned strings ---------------------------------------------------------------------- */

struct st_str *st__intern(struct st *d, const char *p, size_t n)
{
    uint64_t h = st__hash(p, n);
    for (struct st_hnode *e = d->strs.b[h & d->strs.mask]; e; e = e->hnext) {
        struct st_str *str = (struct st_str *)e;
        if (e->hash == h && str->len == n && memcmp(str->s, p, n) == 0) {
            str->refs++;
            return str;
        }
    }
    struct st_str *str = st__alloc(d, sizeof *str + n + 1);
    str->hash = h;
    str->refs = 1;
    str->len = (uint32_t)n;
    memcpy(str->s, p, n);
    st__htab_insert(d, &d->strs, (struct st_hnode *)str);
    return str;
}

void st__unref(struct st *d, struct st_str *str)
{
    if (!str || --str->refs > 0)
        return;
    st__htab_remove(&d->strs, (struct st_hnode *)str);
    st__free(d, str, sizeof *str + str->len + 1);
}

struct st_str *st__ref(struct st_str *str)
{
    if (str)
        str->refs++;
    return str;
}

/* ---- users and items ----------------------------------------------------------------------- */

struct st_user *st__user_find(struct st *d, const char *key, size_t n)
{
    uint64_t h = st__hash(key, n);
    for (struct st_hnode *e = d->users.b[h & d->users.mask]; e; e = e->hnext) {
        struct st_user *u = (struct st_user *)e;
        if (e->hash == h && strlen(u->key) == n && memcmp(u->key, key, n) == 0)
            return u;
    }
    return NULL;
}

struct st_user *st__user_add(struct st *d, const char *key, size_t n)
{
    struct st_user *u = st__alloc(d, sizeof *u);
    memcpy(u->key, key, n);
    u->h.hash = st__hash(key, n);
    u->first_ms = u->last_ms = ST_EMPTY;
    st__htab_insert(d, &d->users, &u->h);
    lru_push(&d->ulru, &u->l);
    return u;
}

void st__user_touch(struct st *d, struct st_user *u)
{
    lru_touch(&d->ulru, &u->l);
}

static void user_free(struct st *d, struct st_user *u)
{
    st__user_gone(d, u->key);
    st__htab_remove(&d->users, &u->h);
    lru_remove(&d->ulru, &u->l);
    st__reco_user_free(d, u);
    for (int i = 0; i < u->nrecent; i++) {
        struct st_recent *r = &u->recent[(u->rhead + i) % u->rcap];
        st__unref(d, r->item);
        st__unref(d, r->tname);
    }
    st__free(d, u->recent, (size_t)u->rcap * sizeof *u->recent);
    for (int i = 0; i < u->nsess; i++)
        st__unref(d, u->sess_items[i].item);
    st__free(d, u->sess_items,
             u->sess_items ? (size_t)d->cfg.covisit_window * sizeof *u->sess_items : 0);
    st__unref(d, u->sess_id);
    for (int i = 0; i < u->naff; i++)
        st__unref(d, u->aff[i].tname);
    st__free(d, u->aff, (size_t)u->affcap * sizeof *u->aff);
    st__free(d, u->eng, u->eng ? sizeof *u->eng : 0);
    st__free(d, u->alias, u->alias ? ST_ALIAS_MAX * sizeof *u->alias : 0);
    st__free(d, u, sizeof *u);
}

void st__user_free(struct st *d, struct st_user *u)
{
    user_free(d, u);
}

struct st_item *st__item_find(struct st *d, struct st_str *id)
{
    (void)d;
    return id->item;
}

struct st_item *st__item_lookup(const struct st *d, uint64_t h, const char *p, size_t n)
{
    for (struct st_hnode *e = d->items.b[h & d->items.mask]; e; e = e->hnext) {
        struct st_item *it = (struct st_item *)e;
        if (e->hash == h && it->id->len == n && memcmp(it->id->s, p, n) == 0)
            return it;
    }
    return NULL;
}

struct st_item *st__item_add(struct st *d, struct st_str *id)
{
    struct st_item *it = st__alloc(d, sizeof *it);
    it->id = st__ref(id);
    id->item = it;
    it->h.hash = id->hash;
    it->last_ms = it->pop_ts = ST_EMPTY;
    for (int w = 0; w < STATE_W__COUNT; w++)
        it->head[w] = ST_EMPTY;
    st__htab_insert(d, &d->items, &it->h);
    lru_push(&d->ilru, &it->l);
    return it;
}

static void item_free(struct st *d, struct st_item *it)
{
    st__htab_remove(&d->items, &it->h);
    lru_remove(&d->ilru, &it->l);
    st__co_free(d, it);
    it->id->item = NULL;
    for (int i = 0; i < it->nnb; i++)
        st__unref(d, it->nb[i].id);
    d->pairs -= it->nnb;
    st__free(d, it->nb, (size_t)it->nbcap * sizeof *it->nb);
    st__unref(d, it->id);
    st__free(d, it, sizeof *it);
}

void st__init(struct st *d, const struct state_config *cfg, int32_t partition)
{
    memset(d, 0, sizeof *d);
    d->cfg = *cfg;
    if (d->cfg.recent_max < 1)
        d->cfg.recent_max = 1;
    if (d->cfg.covisit_window < 1)
        d->cfg.covisit_window = 1;
    if (d->cfg.neighbours_max < 1)
        d->cfg.neighbours_max = 1;
    if (d->cfg.half_life_ms < 1)
        d->cfg.half_life_ms = 1;
    if (d->cfg.max_users < 1)
        d->cfg.max_users = 1;
    if (d->cfg.max_items < 1)
        d->cfg.max_items = 1;
    if (d->cfg.cooc_items_max < 4)
        d->cfg.cooc_items_max = 4;
    d->partition = partition;
    d->pub_seq = 1; /* users stamped 0 (restored) are older than any publisher's position */
    d->co_gen = st__co_generation();
    st__htab_init(d, &d->strs);
    st__htab_init(d, &d->users);
    st__htab_init(d, &d->items);
}

void st__dispose(struct st *d)
{
    while (d->ulru.head)
        user_free(d, USER_OF(d->ulru.head));
    while (d->ilru.head)
        item_free(d, ITEM_OF(d->ilru.head));
    st__co_dispose(d);
    st__reco_dispose(d);
    free(d->gone);
    free(d->strs.b);
    free(d->users.b);
    free(d->items.b);
    memset(d, 0, sizeof *d);
}

struct state_shard *state_shard_new(const struct state_config *cfg, int32_t partition)
{
    struct state_shard *s = core_xcalloc(1, sizeof *s);
    /* Writer-preferring: readers calling in a loop must not starve the processor thread. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    if (pthread_rwlock_init(&s->lock, &attr) != 0)
        abort();
    pthread_rwlockattr_destroy(&attr);
    st__init(&s->d, cfg, partition);
    return s;
}

void state_shard_free(struct state_shard *s)
{
    if (!s)
        return;
    st__dispose(&s->d);
    pthread_rwlock_destroy(&s->lock);
    free(s);
}

void state_shard_swap(struct state_shard *a, struct state_shard *b)
{
    if (a == b)
        return;
    /* Locks in address order: two swaps of the same pair cannot deadlock. */
    struct state_shard *x = (uintptr_t)a < (uintptr_t)b ? a : b, *y = x == a ? b : a;
    pthread_rwlock_wrlock(&x->lock);
    pthread_rwlock_wrlock(&y->lock);
    struct st t = a->d; /* no pointer in st points into st itself */
    a->d = b->d;
    b->d = t;
    pthread_rwlock_unlock(&y->lock);
    pthread_rwlock_unlock(&x->lock);
}

/* ---- bucket rings -------------------------------------------------------------------------- */

/*
 * Returns the slot (relative to the window's first bucket) event time ts falls in, rolling the
 * ring forward to ts's bucket (clearing the buckets in between through clear()), or -1 when
 * the bucket already left the window as of the shard's now: such late events are not counted.
 */
int st__ring_slot(const struct st *d, int w, int64_t *head, int64_t ts,
                  void (*clear)(void *arg, int slot), void *arg)
{
    int n = st_ring_n[w];
    int64_t b = st__floordiv(ts, st_ring_width[w]);
    int64_t nowb = st__floordiv(d->now, st_ring_width[w]);
    if (b <= nowb - n)
        return -1;
    if (*head == ST_EMPTY || b - *head >= n) {
        for (int i = 0; i < n; i++)
            clear(arg, i);
        *head = b;
    } else if (b > *head) {
        for (int64_t i = *head + 1; i <= b; i++)
            clear(arg, st__floormod(i, n));
        *head = b;
    } else if (b <= *head - n) {
        return -1;
    }
    return st__floormod(b, n);
}

struct item_ring_arg {
    struct st_item *it;
    int off;
};

static void item_clear(void *arg, int slot)
{
    struct item_ring_arg *a = arg;
    memset(a->it->cnt[a->off + slot], 0, sizeof a->it->cnt[0]);
}

struct eng_ring_arg {
    struct st_eng *e;
    int off;
};

static void eng_clear(void *arg, int slot)
{
    struct eng_ring_arg *a = arg;
    memset(&a->e->b[a->off + slot], 0, sizeof a->e->b[0]);
}

/* ---- applying ------------------------------------------------------------------------------ */

static enum state_group group_of(int type)
{
    switch (type) {
    case EVENT_VIEW:
    case EVENT_PAGE_VIEW:
        return STATE_G_VIEW;
    case EVENT_CLICK:
        return STATE_G_CLICK;
    case EVENT_ADD_TO_CART:
        return STATE_G_CART;
    case EVENT_PURCHASE:
        return STATE_G_PURCHASE;
    default:
        return STATE_G_OTHER;
    }
}

static void user_affinity(struct st *d, struct st_user *u, const struct event *ev, double w)
{
    size_t tlen = 0;
    const char *tn = ev->type == EVENT_TYPE_CUSTOM ? ev->type_name.ptr : NULL;
    if (tn)
        tlen = ev->type_name.len;
    for (int i = 0; i < u->naff; i++) {
        struct st_affinity *a = &u->aff[i];
        if (a->type != ev->type)
            continue;
        if (tn && (a->tname->len != tlen || memcmp(a->tname->s, tn, tlen) != 0))
            continue;
        st__acc_add(d, &a->v, &a->ts, w, ev->ts_ms);
        return;
    }
    int slot = u->naff;
    if (u->naff == u->affcap && u->affcap < ST_AFF_MAX) {
        int ncap = u->affcap ? u->affcap * 2 : 2;
        u->aff = st__realloc(d, u->aff, (size_t)u->affcap * sizeof *u->aff,
                             (size_t)ncap * sizeof *u->aff);
        u->affcap = ncap;
    }
    if (u->naff == ST_AFF_MAX) {
        /* Full: replace the entry with the lowest decayed value (ties: the later slot). */
        slot = 0;
        double lo = st__decay(d, u->aff[0].v, u->aff[0].ts, d->now);
        for (int i = 1; i < u->naff; i++) {
            double v = st__decay(d, u->aff[i].v, u->aff[i].ts, d->now);
            if (v <= lo) {
                lo = v;
                slot = i;
            }
        }
        st__unref(d, u->aff[slot].tname);
    } else {
        u->naff++;
    }
    struct st_affinity *a = &u->aff[slot];
    a->type = ev->type;
    a->tname = tn ? st__intern(d, tn, tlen) : NULL;
    a->v = w;
    a->ts = ev->ts_ms;
}

static void user_engagement(struct st *d, struct st_user *u, const struct event *ev)
{
    bool click = ev->type == EVENT_CLICK;
    bool view = ev->type == EVENT_VIEW || ev->type == EVENT_PAGE_VIEW;
    bool dwell = ev->type == EVENT_DWELL && ev->has_value && isfinite(ev->value);
    bool scroll = ev->type == EVENT_SCROLL && ev->has_value && isfinite(ev->value);
    if (!click && !view && !dwell && !scroll)
        return;
    if (!u->eng) {
        u->eng = st__alloc(d, sizeof *u->eng);
        u->eng->head[0] = u->eng->head[1] = ST_EMPTY;
    }
    for (int k = 0; k < ST_ENG_W; k++) {
        struct eng_ring_arg arg = {u->eng, k == 0 ? 0 : st_ring_n[STATE_W_1H]};
        int slot = st__ring_slot(d, STATE_W_1H + k, &u->eng->head[k], ev->ts_ms, eng_clear, &arg);
        if (slot < 0)
            continue;
        struct st_ebucket *b = &u->eng->b[arg.off + slot];
        b->clicks += click;
        b->views += view;
        if (dwell)
            b->dwell_ms += ev->value;
        if (scroll && ev->value > b->max_scroll)
            b->max_scroll = ev->value;
    }
}

static void user_recent(struct st *d, struct st_user *u, struct st_str *item,
                        const struct event *ev, double w)
{
    int max = d->cfg.recent_max;
    if (u->nrecent == u->rcap && u->rcap < max) {
        int ncap = u->rcap ? u->rcap * 2 : 4;
        if (ncap > max)
            ncap = max;
        u->recent = st__realloc(d, u->recent, (size_t)u->rcap * sizeof *u->recent,
                                (size_t)ncap * sizeof *u->recent);
        u->rcap = ncap; /* entries are contiguous from 0 until the ring is full */
    }
    struct st_recent *r;
    if (u->nrecent == max) {
        r = &u->recent[u->rhead];
        st__unref(d, r->item);
        st__unref(d, r->tname);
        u->rhead = (u->rhead + 1) % max;
    } else {
        r = &u->recent[(u->rhead + u->nrecent) % u->rcap];
        u->nrecent++;
    }
    r->item = st__ref(item);
    r->tname =
        ev->type == EVENT_TYPE_CUSTOM ? st__intern(d, ev->type_name.ptr, ev->type_name.len) : NULL;
    r->type = ev->type;
    r->weight = w;
    r->ts = ev->ts_ms;
}

double st__nb_key(const struct st *d, double score, int64_t ts)
{
    return log2(score) + (double)ts / (double)d->cfg.half_life_ms;
}

/* Index of the lowest-key neighbour (ties: the greatest id), cached in it->nb_lo until an
 * entry changes: most pairs offered to a full list lose against it without a scan. */
static int nb_lowest(struct st_item *it)
{
    if (it->nb_lo > 0)
        return it->nb_lo - 1;
    int lo = 0;
    for (int i = 1; i < it->nnb; i++) {
        double v = it->nb[i].key, lov = it->nb[lo].key;
        if (v < lov || (v == lov && st__strcmp(it->nb[i].id, it->nb[lo].id) > 0))
            lo = i;
    }
    it->nb_lo = lo + 1;
    return lo;
}

/* Adds sc (observed at t) to it's neighbour nb_id; bounded at neighbours_max. Full lists
 * are ordered by a log-score key (struct st_nb) rather than by decaying every entry. */
void st__nb_add(struct st *d, struct st_item *it, struct st_str *nb_id, double sc, int64_t t)
{
    for (int i = 0; i < it->nnb; i++) {
        if (it->nb[i].id == nb_id) {
            st__acc_add(d, &it->nb[i].score, &it->nb[i].ts, sc, t);
            it->nb[i].key = st__nb_key(d, it->nb[i].score, it->nb[i].ts);
            if (it->nb_lo == i + 1)
                it->nb_lo = 0; /* the minimum grew: find it again when needed */
            return;
        }
    }
    int max = d->cfg.neighbours_max;
    if (it->nnb < max) {
        if (it->nnb == it->nbcap) {
            int ncap = it->nbcap ? it->nbcap * 2 : 4;
            if (ncap > max)
                ncap = max;
            it->nb = st__realloc(d, it->nb, (size_t)it->nbcap * sizeof *it->nb,
                                 (size_t)ncap * sizeof *it->nb);
            it->nbcap = ncap;
        }
        it->nb[it->nnb++] = (struct st_nb){st__ref(nb_id), sc, t, st__nb_key(d, sc, t)};
        it->nb_lo = 0;
        d->pairs++;
        return;
    }
    /* Full: the lowest (ties: the greatest id) makes way for a higher one. */
    int lo = nb_lowest(it);
    double key = st__nb_key(d, sc, t);
    if (key <= it->nb[lo].key)
        return;
    st__unref(d, it->nb[lo].id);
    it->nb[lo] = (struct st_nb){st__ref(nb_id), sc, t, key};
    it->nb_lo = 0;
}

/* Session windowing and co-visitation of item (weight w > 0 pairs it with the session). */
static void user_session(struct st *d, struct st_user *u, const struct event *ev,
                         struct st_item *ib, double w)
{
    bool has_id = ev->session_id.len > 0;
    bool same;
    if (u->sess_count == 0)
        same = false;
    else if (has_id)
        same = u->sess_id && u->sess_id->len == ev->session_id.len &&
               memcmp(u->sess_id->s, ev->session_id.ptr, ev->session_id.len) == 0;
    else
        same = ev->ts_ms - u->sess_last <= d->cfg.session_gap_ms;
    if (!same) {
        st__unref(d, u->sess_id);
        u->sess_id = has_id ? st__intern(d, ev->session_id.ptr, ev->session_id.len) : NULL;
        for (int i = 0; i < u->nsess; i++)
            st__unref(d, u->sess_items[i].item);
        u->nsess = 0;
        u->sess_start = u->sess_last = ev->ts_ms;
        u->sess_count = 0;
    }
    u->sess_count++;
    if (ev->ts_ms < u->sess_start)
        u->sess_start = ev->ts_ms;
    if (ev->ts_ms > u->sess_last)
        u->sess_last = ev->ts_ms;
    if (!ib || !(w > 0))
        return;
    struct st_str *b = ib->id;
    int pos = -1;
    for (int i = 0; i < u->nsess; i++) {
        struct st_sitem *a = &u->sess_items[i];
        if (a->item == b) {
            pos = i;
            continue;
        }
        struct st_item *ia = st__item_find(d, a->item);
        if (!ia)
            continue; /* expired or evicted meanwhile */
        double gap_min = fabs((double)(ev->ts_ms - a->ts)) / 60000.0;
        double sc = w * (1.0 / (1.0 + gap_min));
        st__nb_add(d, ia, b, sc, ev->ts_ms);
        st__nb_add(d, ib, a->item, sc, ev->ts_ms);
    }
    if (!u->sess_items)
        u->sess_items = st__alloc(d, (size_t)d->cfg.covisit_window * sizeof *u->sess_items);
    if (pos >= 0) {
        st__unref(d, u->sess_items[pos].item);
    } else if (u->nsess == d->cfg.covisit_window) {
        pos = 0;
        st__unref(d, u->sess_items[0].item);
    } else {
        pos = u->nsess++;
        u->sess_items[pos].item = NULL;
    }
    memmove(&u->sess_items[pos], &u->sess_items[pos + 1],
            (size_t)(u->nsess - 1 - pos) * sizeof *u->sess_items);
    u->sess_items[u->nsess - 1] = (struct st_sitem){st__ref(b), ev->ts_ms};
}

static void item_update(struct st *d, struct st_item *it, const struct event *ev, double w)
{
    enum state_group g = group_of(ev->type);
    for (int k = 0; k < STATE_W__COUNT; k++) {
        struct item_ring_arg arg = {it, st_ring_off[k]};
        int slot = st__ring_slot(d, k, &it->head[k], ev->ts_ms, item_clear, &arg);
        if (slot >= 0)
            it->cnt[arg.off + slot][g]++;
    }
    if (it->pop_ts == ST_EMPTY)
        it->pop_ts = ev->ts_ms;
    st__acc_add(d, &it->pop, &it->pop_ts, w, ev->ts_ms);
    if (ev->type == EVENT_IMPRESSION)
        it->impressions++;
    else if ((ev->type == EVENT_CLICK || ev->type == EVENT_ADD_TO_CART ||
              ev->type == EVENT_PURCHASE) &&
             ev->rec_id.len > 0)
        it->clicks++;
    if (it->last_ms == ST_EMPTY || ev->ts_ms > it->last_ms)
        it->last_ms = ev->ts_ms;
}

/* TTL expiry of up to n least recently active users and n items, then the size bounds. */
static void expire_n(struct st *d, const struct st_user *keep_u, const struct st_item *keep_i,
                     int n)
{
    for (int i = 0; i < n && d->ulru.head; i++) {
        struct st_user *u = USER_OF(d->ulru.head);
        if (u == keep_u || d->now - u->last_ms <= d->cfg.user_ttl_ms)
            break;
        user_free(d, u);
        d->expired++;
    }
    for (int i = 0; i < n && d->ilru.head; i++) {
        struct st_item *it = ITEM_OF(d->ilru.head);
        if (it == keep_i || d->now - it->last_ms <= d->cfg.item_ttl_ms)
            break;
        item_free(d, it);
        d->expired++;
    }
    while ((int64_t)d->users.n > d->cfg.max_users) {
        user_free(d, USER_OF(d->ulru.head));
        d->evicted++;
    }
    while ((int64_t)d->items.n > d->cfg.max_items) {
        item_free(d, ITEM_OF(d->ilru.head));
        d->evicted++;
    }
    if (d->co_rows > d->cfg.cooc_items_max)
        st__co_trim(d);
}

/* TTL expiry of a few least recently active entities per apply, then the size bounds. */
static void expire(struct st *d, const struct st_user *keep_u, const struct st_item *keep_i)
{
    expire_n(d, keep_u, keep_i, ST_EXPIRE_PER_APPLY);
}

/* Forgets everything the shard holds about one user (item aggregates the user contributed
 * to stay: they are not per-user). Returns whether the user was known. */
static bool user_forget(struct st *d, const char *key)
{
    size_t klen = strnlen(key, EVENT_KEY_HEX);
    struct st_user *u = klen ? st__user_find(d, key, klen) : NULL;
    if (u)
        user_free(d, u);
    return u != NULL;
}

/* A consent control event: the server writes one when a user withdraws personalization or
 * analytics consent; anything short of both granted clears the user's state. */
static void apply_consent(struct st *d, const struct event *ev)
{
    const struct event_str *p = &ev->properties_json;
    bool granted = p->len && memmem(p->ptr, p->len, "\"analytics\":true", 16) &&
                   memmem(p->ptr, p->len, "\"personalization\":true", 22);
    if (granted)
        return;
    user_forget(d, ev->user_key);
    user_forget(d, ev->anon_key);
}

/* Most entities one tick expires: bounds the time the writer lock is held; the next tick (or
 * event) continues. */
#define ST_EXPIRE_PER_TICK 100000

/* A tick control record: the retention job's time for a quiet shard. It moves "now" (never
 * back) and expires everything idle past its TTL, up to a bound; it is not an event (not
 * counted, no entity touched), so state stays a pure function of the log. */
static void apply_tick(struct st *d, const struct event *ev, int64_t offset)
{
    if (!d->have_now || ev->ts_ms > d->now)
        d->now = ev->ts_ms;
    d->have_now = true;
    d->next_offset = offset + 1;
    expire_n(d, NULL, NULL, ST_EXPIRE_PER_TICK);
}

static void apply_locked(struct st *d, const struct event *ev, int64_t offset)
{
    if (ev->type == EVENT_TICK) {
        apply_tick(d, ev, offset);
        return;
    }
    int64_t ts = ev->ts_ms;
    if (d->have_now && ts < d->now - d->cfg.allowed_lateness_ms)
        d->late++;
    if (!d->have_now || ts > d->now)
        d->now = ts;
    d->have_now = true;
    d->events++;
    d->next_offset = offset + 1;

    if (ev->type == EVENT_CONSENT) {
        apply_consent(d, ev);
        return;
    }
    /* A merge in the source's partition: the source's state has been carried to the target's
     * partition by a merge_in record (the stream runtime appends it before applying this), so
     * the source is forgotten here. A merge_in merges it into the target. */
    if (ev->type == EVENT_MERGE) {
        if (strcmp(ev->anon_key, ev->user_key) != 0)
            user_forget(d, ev->anon_key);
        return;
    }
    if (ev->type == EVENT_MERGE_IN) {
        st__merge_in(d, ev);
        return;
    }
    const struct event_type_info *ti = event_type_get(ev->type);
    double w = ti ? ti->weight : 1.0;

    struct st_item *it = NULL;
    if (ev->item_id.len > 0 && ev->item_id.len <= EVENT_ITEM_MAX) {
        struct st_str *id = st__intern(d, ev->item_id.ptr, ev->item_id.len);
        it = st__item_find(d, id);
        if (!it)
            it = st__item_add(d, id);
        else
            lru_touch(&d->ilru, &it->l);
        st__unref(d, id);
        item_update(d, it, ev, w);
    }

    /* Without personalization consent (anonymous) only item aggregates are updated. */
    const char *key = ev->anonymous ? "" : ev->user_key[0] ? ev->user_key : ev->anon_key;
    size_t klen = strnlen(key, EVENT_KEY_HEX);
    struct st_user *u = NULL;
    if (klen > 0) {
        u = st__user_find(d, key, klen);
        if (!u)
            u = st__user_add(d, key, klen);
        else
            lru_touch(&d->ulru, &u->l);
        u->events++;
        u->pub_seq = ++d->pub_seq;
        if (u->first_ms == ST_EMPTY || ts < u->first_ms)
            u->first_ms = ts;
        if (u->last_ms == ST_EMPTY || ts > u->last_ms)
            u->last_ms = ts;
        user_affinity(d, u, ev, w);
        user_engagement(d, u, ev);
        if (it && ev->type != EVENT_IMPRESSION) {
            st__co_apply(d, u, it, w);
            user_recent(d, u, it->id, ev, w);
        }
        user_session(d, u, ev, it, w);
    }
    st__reco_apply(d, u, it, ev, w);
    expire(d, u, it);
}

void state_shard_apply(struct state_shard *s, const struct event *ev, int64_t offset)
{
    pthread_rwlock_wrlock(&s->lock);
    apply_locked(&s->d, ev, offset);
    pthread_rwlock_unlock(&s->lock);
}

bool state_shard_user_forget(struct state_shard *s, const char *user_key)
{
    pthread_rwlock_wrlock(&s->lock);
    bool known = user_forget(&s->d, user_key);
    pthread_rwlock_unlock(&s->lock);
    return known;
}

void state_shard_skip(struct state_shard *s, int64_t offset)
{
    pthread_rwlock_wrlock(&s->lock);
    s->d.next_offset = offset + 1;
    s->d.skipped++;
    pthread_rwlock_unlock(&s->lock);
}

uint64_t state_shard_skipped(const struct state_shard *s)
{
    struct state_shard *m = (struct state_shard *)s; /* the lock is not part of the value */
    pthread_rwlock_rdlock(&m->lock);
    uint64_t n = s->d.skipped;
    pthread_rwlock_unlock(&m->lock);
    return n;
}

int64_t state_shard_watermark(const struct state_shard *s)
{
    if (!s->d.have_now)
        return INT64_MIN;
    return s->d.now - s->d.cfg.allowed_lateness_ms;
}

int64_t state_shard_next_offset(const struct state_shard *s)
{
    return s->d.next_offset;
}

void state_shard_stats(struct state_shard *s, struct state_stats *out)
{
    pthread_rwlock_rdlock(&s->lock);
    out->users = (int64_t)s->d.users.n;
    out->items = (int64_t)s->d.items.n;
    out->pairs = s->d.pairs;
    out->events = s->d.events;
    out->late = s->d.late;
    out->expired = s->d.expired;
    out->evicted = s->d.evicted;
    out->bytes = s->d.bytes + (int64_t)sizeof *s;
    out->cooc_rows = s->d.co_rows;
    out->cooc_pairs = s->d.co_pairs;
    pthread_rwlock_unlock(&s->lock);
}
