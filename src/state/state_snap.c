/*
 * state snapshots: a versioned binary image of a whole shard.
 *
 *   u32 magic "RSS1" | u32 version | u64 body length | u64 XXH3-64 of the body | body
 *
 * The body holds the configuration, the shard's clock/offset/counters, then every user and
 * every item in LRU order (least recently active first), so a restored shard expires and
 * evicts exactly as the original would have: restore + continue == uninterrupted run.
 * Integers are LEB128 varints (signed ones zigzagged), doubles their IEEE-754 bits, strings
 * a varint length and bytes ("optional" strings store length + 1, 0 meaning none).
 * Restore parses into a fresh shard image and swaps it in only when everything checked out.
 */
#include "state/state_int.h"

#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#define SNAP_MAGIC 0x31535352u /* "RSS1" little-endian */
/* 2: category affinities, preferences, contexts, attribution; 3: aliases; 4: co-occurrence */
#define SNAP_VERSION 4u
#define SNAP_VERSION_MIN 2u /* version 2 snapshots restore (users without aliases) */
#define SNAP_HEADER 24
/* Timestamps in a snapshot must lie within +-2^50 ms (~35,000 years) or be "empty". */
#define SNAP_TS_LIMIT ((int64_t)1 << 50)

/* ---- writing ------------------------------------------------------------------------------- */

static void put_str(struct core_buf *b, const struct st_str *str)
{
    core_buf_put_varint(b, str->len);
    core_buf_append(b, str->s, str->len);
}

static void put_opt(struct core_buf *b, const struct st_str *str)
{
    if (!str) {
        core_buf_put_varint(b, 0);
        return;
    }
    core_buf_put_varint(b, (uint64_t)str->len + 1);
    core_buf_append(b, str->s, str->len);
}

static void put_config(struct core_buf *b, const struct state_config *c)
{
    st__put_i(b, c->recent_max);
    st__put_i(b, c->session_gap_ms);
    st__put_i(b, c->covisit_window);
    st__put_i(b, c->neighbours_max);
    st__put_i(b, c->half_life_ms);
    st__put_i(b, c->allowed_lateness_ms);
    st__put_i(b, c->user_ttl_ms);
    st__put_i(b, c->item_ttl_ms);
    st__put_i(b, c->max_users);
    st__put_i(b, c->max_items);
    st__put_i(b, c->cooc_items_max); /* version 4 */
}

/* Buckets are written sparsely: only those with any non-zero bit. */
static bool eng_zero(const struct st_ebucket *e)
{
    static const struct st_ebucket zero;
    return memcmp(e, &zero, sizeof zero) == 0;
}

static bool cnt_zero(const uint32_t *c)
{
    for (int g = 0; g < STATE_G__COUNT; g++)
        if (c[g])
            return false;
    return true;
}

void st__user_put(struct core_buf *b, const struct st_user *u, int max_recent)
{
    size_t klen = strlen(u->key);
    core_buf_put_varint(b, klen);
    core_buf_append(b, u->key, klen);
    st__put_i(b, u->first_ms);
    st__put_i(b, u->last_ms);
    st__put_i(b, u->events);
    int skip = u->nrecent > max_recent ? u->nrecent - max_recent : 0;
    core_buf_put_varint(b, (uint64_t)(u->nrecent - skip));
    for (int i = skip; i < u->nrecent; i++) {
        const struct st_recent *r = &u->recent[(u->rhead + i) % u->rcap];
        put_str(b, r->item);
        st__put_i(b, (int64_t)event_type_to_wire(r->type));
        put_opt(b, r->tname);
        st__put_f(b, r->weight);
        st__put_i(b, r->ts);
    }
    put_opt(b, u->sess_id);
    st__put_i(b, u->sess_start);
    st__put_i(b, u->sess_last);
    st__put_i(b, u->sess_count);
    core_buf_put_varint(b, (uint64_t)u->nsess);
    for (int i = 0; i < u->nsess; i++) {
        put_str(b, u->sess_items[i].item);
        st__put_i(b, u->sess_items[i].ts);
    }
    core_buf_put_varint(b, (uint64_t)u->naff);
    for (int i = 0; i < u->naff; i++) {
        st__put_i(b, (int64_t)event_type_to_wire(u->aff[i].type));
        put_opt(b, u->aff[i].tname);
        st__put_f(b, u->aff[i].v);
        st__put_i(b, u->aff[i].ts);
    }
    core_buf_put_varint(b, u->eng != NULL);
    if (u->eng) {
        for (int k = 0; k < ST_ENG_W; k++)
            st__put_i(b, u->eng->head[k]);
        int nz = 0;
        for (int i = 0; i < ST_ENG_TOTAL; i++)
            nz += !eng_zero(&u->eng->b[i]);
        core_buf_put_varint(b, (uint64_t)nz);
        for (int i = 0; i < ST_ENG_TOTAL; i++) {
            const struct st_ebucket *e = &u->eng->b[i];
            if (eng_zero(e))
                continue;
            core_buf_put_varint(b, (uint64_t)i);
            core_buf_put_varint(b, e->clicks);
            core_buf_put_varint(b, e->views);
            st__put_f(b, e->dwell_ms);
            st__put_f(b, e->max_scroll);
        }
    }
    core_buf_put_varint(b, (uint64_t)u->ncaff);
    for (int i = 0; i < u->ncaff; i++) {
        put_str(b, u->caff[i].tname);
        st__put_f(b, u->caff[i].v);
        st__put_i(b, u->caff[i].ts);
    }
    core_buf_put_varint(b, (uint64_t)u->nprefs);
    for (int i = 0; i < u->nprefs; i++)
        put_str(b, u->prefs[i]);
    core_buf_put_varint(b, (uint64_t)u->nalias);
    for (int i = 0; i < u->nalias; i++) {
        core_buf_put_varint(b, EVENT_KEY_HEX);
        core_buf_append(b, u->alias[i].key, EVENT_KEY_HEX);
        st__put_i(b, u->alias[i].offset);
    }
}

static void put_nbs(struct core_buf *b, const struct st_item *it)
{
    core_buf_put_varint(b, (uint64_t)it->nnb);
    for (int i = 0; i < it->nnb; i++) {
        put_str(b, it->nb[i].id);
        st__put_f(b, it->nb[i].score);
        st__put_i(b, it->nb[i].ts);
    }
}

static void put_ctr(struct core_buf *b, const struct st_ctr *c)
{
    put_str(b, c->key);
    for (int k = 0; k < ST_ENG_W; k++)
        st__put_i(b, c->head[k]);
    for (int k = 0; k < ST_CTR_N; k++)
        st__put_i(b, c->total[k]);
    int nz = 0;
    for (int i = 0; i < ST_ENG_TOTAL; i++)
        nz += !!(c->b[i][0] | c->b[i][1] | c->b[i][2] | c->b[i][3]);
    core_buf_put_varint(b, (uint64_t)nz);
    for (int i = 0; i < ST_ENG_TOTAL; i++) {
        if (!(c->b[i][0] | c->b[i][1] | c->b[i][2] | c->b[i][3]))
            continue;
        core_buf_put_varint(b, (uint64_t)i);
        for (int k = 0; k < ST_CTR_N; k++)
            core_buf_put_varint(b, c->b[i][k]);
    }
}

static int cmp_ctx(const void *a, const void *b)
{
    return st__strcmp((*(const struct st_item *const *)a)->id,
                      (*(const struct st_item *const *)b)->id);
}

static int cmp_ctr(const void *a, const void *b)
{
    return st__strcmp((*(const struct st_ctr *const *)a)->key,
                      (*(const struct st_ctr *const *)b)->key);
}

/* Contexts and attribution counters, sorted by key (so equal states give equal bytes). */
static void put_reco(struct core_buf *b, const struct st *d)
{
    size_t k = 0;
    const struct st_item **v = core_xmalloc((d->ctxs.n + 1) * sizeof *v);
    for (size_t i = 0; d->ctxs.b && i <= d->ctxs.mask; i++)
        for (const struct st_hnode *e = d->ctxs.b[i]; e; e = e->hnext)
            v[k++] = (const struct st_item *)e;
    qsort(v, k, sizeof *v, cmp_ctx);
    core_buf_put_varint(b, k);
    for (size_t i = 0; i < k; i++) {
        put_str(b, v[i]->id);
        put_nbs(b, v[i]);
    }
    free(v);
    const struct st_ctr **c = core_xmalloc((d->ctrs.n + 1) * sizeof *c);
    k = 0;
    for (size_t i = 0; d->ctrs.b && i <= d->ctrs.mask; i++)
        for (const struct st_hnode *e = d->ctrs.b[i]; e; e = e->hnext)
            c[k++] = (const struct st_ctr *)e;
    qsort(c, k, sizeof *c, cmp_ctr);
    core_buf_put_varint(b, k);
    for (size_t i = 0; i < k; i++)
        put_ctr(b, c[i]);
    free(c);
}

static void put_item(struct core_buf *b, const struct st_item *it)
{
    put_str(b, it->id);
    st__put_i(b, it->last_ms);
    for (int k = 0; k < STATE_W__COUNT; k++)
        st__put_i(b, it->head[k]);
    int nz = 0;
    for (int i = 0; i < ST_RING_TOTAL; i++)
        nz += !cnt_zero(it->cnt[i]);
    core_buf_put_varint(b, (uint64_t)nz);
    for (int i = 0; i < ST_RING_TOTAL; i++) {
        if (cnt_zero(it->cnt[i]))
            continue;
        core_buf_put_varint(b, (uint64_t)i);
        for (int g = 0; g < STATE_G__COUNT; g++)
            core_buf_put_varint(b, it->cnt[i][g]);
    }
    st__put_f(b, it->pop);
    st__put_i(b, it->pop_ts);
    st__put_i(b, it->impressions);
    st__put_i(b, it->clicks);
    put_nbs(b, it);
}

/* Item positions in the snapshot's item list, keyed by the id's address. */
struct pos_map {
    const struct st_str **k;
    uint32_t *v;
    uint32_t mask;
};

static uint32_t pos_slot(const struct pos_map *m, const struct st_str *id)
{
    uint32_t h = (uint32_t)id->hash & m->mask;
    while (m->k[h] && m->k[h] != id)
        h = (h + 1) & m->mask;
    return h;
}

struct co_out {
    uint32_t code; /* position + 1, 0: not in the item list */
    float v;
    const struct st_str *id;
};

/* Entries of items the shard no longer holds (code 0) are ordered by id. */
static int cmp_co_id(const void *a, const void *b)
{
    const struct co_out *x = a, *y = b;
    return st__strcmp(x->id, y->id);
}

/* Sorts v[0..n) by code, ascending and stably (tmp: room for n): insertion for short runs,
 * else least-significant-digit radix by bytes, as many passes as max_code has bytes. With
 * qsort and a comparator a whole snapshot took about twice as long (BENCHMARKS.md). */
static void sort_by_code(struct co_out *v, struct co_out *tmp, uint32_t n, uint32_t max_code)
{
    if (n < 48) {
        for (uint32_t i = 1; i < n; i++) {
            struct co_out x = v[i];
            uint32_t j = i;
            for (; j > 0 && v[j - 1].code > x.code; j--)
                v[j] = v[j - 1];
            v[j] = x;
        }
        return;
    }
    struct co_out *src = v, *dst = tmp;
    for (int shift = 0; shift < 32 && (max_code >> shift) != 0; shift += 8) {
        uint32_t at[257] = {0};
        for (uint32_t i = 0; i < n; i++)
            at[((src[i].code >> shift) & 255) + 1]++;
        for (int k = 0; k < 256; k++)
            at[k + 1] += at[k];
        for (uint32_t i = 0; i < n; i++)
            dst[at[(src[i].code >> shift) & 255]++] = src[i];
        struct co_out *t = src;
        src = dst;
        dst = t;
    }
    if (src != v)
        memcpy(v, src, n * sizeof *v);
}

/* Co-occurrence rows (version 4), after everything else: the number of rows, then per item
 * with a row its position in the item list, its occurrence count and its entries, each an
 * item of the list by position + 1 (or 0 and the id of an item the shard no longer holds)
 * and the weight's float bits, in that order (so equal states give equal bytes). */
static void put_co(struct core_buf *b, const struct st *d)
{
    struct co_out *tmp = core_xmalloc((2 * ST_CO_ROW_MAX + 1) * sizeof *tmp);
    struct co_out *spare = core_xmalloc((2 * ST_CO_ROW_MAX + 1) * sizeof *spare);
    struct pos_map m = {0};
    uint32_t cap = 16;
    while (cap < 2 * d->items.n + 2)
        cap *= 2;
    m.k = core_xcalloc(cap, sizeof *m.k);
    m.v = core_xmalloc(cap * sizeof *m.v);
    m.mask = cap - 1;
    uint32_t n = 0;
    for (struct st_lnode *l = d->ilru.head; l; l = l->next, n++) {
        const struct st_item *it = ITEM_OF(l);
        uint32_t h = pos_slot(&m, it->id);
        m.k[h] = it->id;
        m.v[h] = n;
    }
    core_buf_put_varint(b, (uint64_t)d->co_rows);
    n = 0;
    for (struct st_lnode *l = d->ilru.head; l; l = l->next, n++) {
        const struct st_co *r = ITEM_OF(l)->co;
        if (!r)
            continue;
        core_buf_put_varint(b, n);
        st__put_f(b, r->occ);
        core_buf_put_varint(b, r->n);
        /* Entries of items the shard no longer holds (code 0) first, by id; then by code. */
        uint32_t ne = 0, nz = 0, max_code = 0;
        for (uint32_t x = 0; x < r->cap; x++) {
            if (!r->e[x].k)
                continue;
            uint32_t h = pos_slot(&m, r->e[x].k);
            struct co_out o = {m.k[h] ? m.v[h] + 1 : 0, r->e[x].v, r->e[x].k};
            if (o.code == 0) {
                tmp[ne++] = tmp[nz];
                tmp[nz++] = o;
            } else {
                tmp[ne++] = o;
                max_code = o.code > max_code ? o.code : max_code;
            }
        }
        if (nz > 1)
            qsort(tmp, nz, sizeof *tmp, cmp_co_id);
        sort_by_code(tmp + nz, spare, ne - nz, max_code);
        for (uint32_t e = 0; e < ne; e++) {
            core_buf_put_varint(b, tmp[e].code);
            if (!tmp[e].code)
                put_str(b, tmp[e].id);
            uint32_t bits;
            memcpy(&bits, &tmp[e].v, sizeof bits);
            core_buf_put_u32(b, bits);
        }
    }
    free(tmp);
    free(spare);
    free(m.k);
    free(m.v);
}

/* The whole shard, or (users false) everything but its users: the serving store's aggregate
 * image, which restores like any snapshot into a shard that then simply has no users. */
static void snapshot(struct state_shard *s, struct core_buf *out, bool users, bool lock)
{
    if (lock)
        pthread_rwlock_rdlock(&s->lock);
    const struct st *d = &s->d;
    size_t start = out->len;
    core_buf_put_u32(out, SNAP_MAGIC);
    core_buf_put_u32(out, SNAP_VERSION);
    core_buf_put_u64(out, 0);
    core_buf_put_u64(out, 0);
    size_t body = out->len;
    put_config(out, &d->cfg);
    st__put_i(out, d->partition);
    core_buf_put_varint(out, d->have_now);
    st__put_i(out, d->now);
    st__put_i(out, d->next_offset);
    st__put_i(out, d->events);
    st__put_i(out, d->late);
    st__put_i(out, d->expired);
    st__put_i(out, d->evicted);
    core_buf_put_varint(out, users ? d->users.n : 0);
    for (const struct st_lnode *l = users ? d->ulru.head : NULL; l; l = l->next)
        st__user_put(out, (const struct st_user *)((const char *)l - offsetof(struct st_user, l)),
                     INT32_MAX);
    core_buf_put_varint(out, d->items.n);
    for (const struct st_lnode *l = d->ilru.head; l; l = l->next)
        put_item(out, (const struct st_item *)((const char *)l - offsetof(struct st_item, l)));
    put_reco(out, d);
    put_co(out, d);
    if (lock)
        pthread_rwlock_unlock(&s->lock);

    uint64_t len = out->len - body;
    uint64_t sum = XXH3_64bits(out->data + body, (size_t)len);
    for (int i = 0; i < 8; i++) {
        out->data[start + 8 + i] = (char)(len >> (8 * i));
        out->data[start + 16 + i] = (char)(sum >> (8 * i));
    }
}

void state_shard_snapshot(struct state_shard *s, struct core_buf *out)
{
    snapshot(s, out, true, true);
}

void state_shard_hold(struct state_shard *s)
{
    pthread_rwlock_rdlock(&s->lock);
}

void state_shard_release(struct state_shard *s)
{
    pthread_rwlock_unlock(&s->lock);
}

void state_shard_snapshot_held(struct state_shard *s, struct core_buf *out)
{
    snapshot(s, out, true, false);
}

void state_shard_snapshot_aggregates(struct state_shard *s, struct core_buf *out)
{
    snapshot(s, out, false, true);
}

/* ---- reading ------------------------------------------------------------------------------- */

static int64_t get_ts(struct st_rd *r, bool empty_ok)
{
    int64_t v = st__get_i(r);
    if (empty_ok && v == ST_EMPTY)
        return v;
    if (v < -SNAP_TS_LIMIT || v > SNAP_TS_LIMIT)
        r->bad = true;
    return r->bad ? 0 : v;
}

/* A string of 1..max bytes (opt: length + 1, 0 = none) interned into d, or NULL. */
static struct st_str *get_str(struct st_rd *r, struct st *d, size_t max, bool opt)
{
    uint64_t n = st__get_u(r);
    if (r->bad || (opt && n == 0))
        return NULL;
    if (opt)
        n--;
    if (n == 0 || n > max || n > (uint64_t)(r->end - r->p)) {
        r->bad = true;
        return NULL;
    }
    struct st_str *str = st__intern(d, (const char *)r->p, (size_t)n);
    r->p += n;
    return str;
}

static int32_t get_type(struct st_rd *r, struct st *d, struct st_str **tname)
{
    /* Stored as wire numbers (event_type_to_wire): stable when types are added. */
    int64_t w = st__get_i(r);
    int t = w < 0 ? -1 : event_type_from_wire((uint64_t)w);
    *tname = get_str(r, d, EVENT_ITEM_MAX, true);
    if (t < 0 || (t == EVENT_TYPE_CUSTOM) != (*tname != NULL))
        r->bad = true;
    return (int32_t)t;
}

static bool config_equal(const struct state_config *a, const struct state_config *b)
{
    return a->recent_max == b->recent_max && a->session_gap_ms == b->session_gap_ms &&
           a->covisit_window == b->covisit_window && a->neighbours_max == b->neighbours_max &&
           a->half_life_ms == b->half_life_ms && a->allowed_lateness_ms == b->allowed_lateness_ms &&
           a->user_ttl_ms == b->user_ttl_ms && a->item_ttl_ms == b->item_ttl_ms &&
           a->max_users == b->max_users && a->max_items == b->max_items &&
           a->cooc_items_max == b->cooc_items_max;
}

static bool is_key(const uint8_t *p, uint64_t n)
{
    if (n != EVENT_KEY_HEX)
        return false;
    for (uint64_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    return true;
}

static void get_aliases(struct st_rd *r, struct st *d, struct st_user *u)
{
    int n = r->version >= 3 ? st__get_n(r, ST_ALIAS_MAX) : 0;
    if (n > 0 && !r->bad)
        u->alias = st__alloc(d, ST_ALIAS_MAX * sizeof *u->alias);
    for (int i = 0; i < n && !r->bad; i++) {
        uint64_t klen = st__get_u(r);
        if (r->bad || klen > (uint64_t)(r->end - r->p) || !is_key(r->p, klen)) {
            r->bad = true;
            break;
        }
        struct st_alias *a = &u->alias[u->nalias++];
        memcpy(a->key, r->p, EVENT_KEY_HEX);
        a->key[EVENT_KEY_HEX] = '\0';
        r->p += klen;
        a->offset = st__get_i(r);
    }
}

static struct st_user *get_user(struct st_rd *r, struct st *d)
{
    uint64_t klen = st__get_u(r);
    if (r->bad || klen == 0 || klen > EVENT_KEY_HEX || klen > (uint64_t)(r->end - r->p) ||
        memchr(r->p, 0, (size_t)klen) || st__user_find(d, (const char *)r->p, (size_t)klen)) {
        r->bad = true;
        return NULL;
    }
    struct st_user *u = st__user_add(d, (const char *)r->p, (size_t)klen);
    r->p += klen;
    u->first_ms = get_ts(r, false);
    u->last_ms = get_ts(r, false);
    u->events = st__get_i(r);
    int n = st__get_n(r, d->cfg.recent_max);
    if (n > 0) {
        u->recent = st__alloc(d, (size_t)n * sizeof *u->recent);
        u->rcap = n;
    }
    for (int i = 0; i < n && !r->bad; i++) {
        struct st_recent *e = &u->recent[i];
        e->item = get_str(r, d, EVENT_ITEM_MAX, false);
        u->nrecent++; /* owned from here so a failure frees it */
        e->type = get_type(r, d, &e->tname);
        e->weight = st__get_f(r);
        e->ts = get_ts(r, false);
    }
    u->sess_id = get_str(r, d, EVENT_SESSION_MAX, true);
    u->sess_start = get_ts(r, false);
    u->sess_last = get_ts(r, false);
    u->sess_count = st__get_i(r);
    n = st__get_n(r, d->cfg.covisit_window);
    if (n > 0)
        u->sess_items = st__alloc(d, (size_t)d->cfg.covisit_window * sizeof *u->sess_items);
    for (int i = 0; i < n && !r->bad; i++) {
        struct st_str *item = get_str(r, d, EVENT_ITEM_MAX, false);
        u->sess_items[u->nsess++] = (struct st_sitem){item, get_ts(r, false)};
        for (int j = 0; j < i; j++)
            if (u->sess_items[j].item == item)
                r->bad = true;
    }
    n = st__get_n(r, ST_AFF_MAX);
    if (n > 0) {
        u->aff = st__alloc(d, (size_t)n * sizeof *u->aff);
        u->affcap = n;
    }
    for (int i = 0; i < n && !r->bad; i++) {
        struct st_affinity *a = &u->aff[u->naff++];
        a->type = get_type(r, d, &a->tname);
        a->v = st__get_f(r);
        a->ts = get_ts(r, false);
    }
    uint64_t has_eng = st__get_u(r);
    if (has_eng > 1)
        r->bad = true;
    if (has_eng == 1 && !r->bad) {
        u->eng = st__alloc(d, sizeof *u->eng);
        for (int k = 0; k < ST_ENG_W; k++)
            u->eng->head[k] = get_ts(r, true);
        int nz = st__get_n(r, ST_ENG_TOTAL);
        int prev = -1;
        for (int k = 0; k < nz && !r->bad; k++) {
            uint64_t i = st__get_u(r);
            if ((int64_t)i <= prev || i >= ST_ENG_TOTAL) {
                r->bad = true;
                break;
            }
            prev = (int)i;
            struct st_ebucket *e = &u->eng->b[i];
            uint64_t c = st__get_u(r), v = st__get_u(r);
            if (c > UINT32_MAX || v > UINT32_MAX)
                r->bad = true;
            e->clicks = (uint32_t)c;
            e->views = (uint32_t)v;
            e->dwell_ms = st__get_f(r);
            e->max_scroll = st__get_f(r);
        }
    }
    n = st__get_n(r, ST_CAFF_MAX);
    if (n > 0 && !r->bad)
        u->caff = st__alloc(d, ST_CAFF_MAX * sizeof *u->caff);
    for (int i = 0; i < n && !r->bad; i++) {
        struct st_str *name = get_str(r, d, STATE_SYMBOL_MAX, false);
        if (!name)
            break;
        struct st_affinity *a = &u->caff[u->ncaff++];
        a->tname = name;
        a->type = 0;
        a->v = st__get_f(r);
        a->ts = get_ts(r, false);
    }
    n = st__get_n(r, ST_PREF_MAX);
    for (int i = 0; i < n && !r->bad; i++) {
        struct st_str *name = get_str(r, d, STATE_SYMBOL_MAX, false);
        if (name)
            u->prefs[u->nprefs++] = name;
    }
    get_aliases(r, d, u);
    return u;
}

struct st_user *st__user_parse(struct st *d, const void *data, size_t len)
{
    struct st_rd r = {data, (const uint8_t *)data + len, false, SNAP_VERSION};
    struct st_user *u = get_user(&r, d);
    if (u && (r.bad || r.p != r.end)) {
        st__user_free(d, u);
        return NULL;
    }
    return r.bad ? NULL : u;
}

static void get_nbs(struct st_rd *r, struct st *d, struct st_item *it);

static void get_item(struct st_rd *r, struct st *d)
{
    struct st_str *id = get_str(r, d, EVENT_ITEM_MAX, false);
    if (!id)
        return;
    if (st__item_find(d, id)) {
        st__unref(d, id);
        r->bad = true;
        return;
    }
    struct st_item *it = st__item_add(d, id);
    st__unref(d, id);
    it->last_ms = get_ts(r, false);
    for (int k = 0; k < STATE_W__COUNT; k++)
        it->head[k] = get_ts(r, true);
    int nz = st__get_n(r, ST_RING_TOTAL);
    int prev = -1;
    for (int k = 0; k < nz && !r->bad; k++) {
        uint64_t i = st__get_u(r);
        if ((int64_t)i <= prev || i >= ST_RING_TOTAL) {
            r->bad = true;
            break;
        }
        prev = (int)i;
        for (int g = 0; g < STATE_G__COUNT; g++) {
            uint64_t c = st__get_u(r);
            if (c > UINT32_MAX)
                r->bad = true;
            it->cnt[i][g] = (uint32_t)c;
        }
    }
    it->pop = st__get_f(r);
    it->pop_ts = get_ts(r, false);
    it->impressions = st__get_i(r);
    it->clicks = st__get_i(r);
    get_nbs(r, d, it);
}

/* A neighbour list into it (an item or a context pseudo-item). */
static void get_nbs(struct st_rd *r, struct st *d, struct st_item *it)
{
    int n = st__get_n(r, d->cfg.neighbours_max);
    if (n > 0) {
        it->nb = st__alloc(d, (size_t)n * sizeof *it->nb);
        it->nbcap = n;
    }
    for (int i = 0; i < n && !r->bad; i++) {
        struct st_nb *nb = &it->nb[i];
        nb->id = get_str(r, d, EVENT_ITEM_MAX, false);
        it->nnb++;
        d->pairs++;
        nb->score = st__get_f(r);
        nb->ts = get_ts(r, false);
        nb->key = st__nb_key(d, nb->score, nb->ts);
        for (int j = 0; j < i; j++)
            if (it->nb[j].id == nb->id)
                r->bad = true;
    }
}

static void get_ctr(struct st_rd *r, struct st *d)
{
    struct st_str *key = get_str(r, d, EVENT_RECID_MAX, false);
    if (!key)
        return;
    if (st__ctr_find(d, key->s, key->len) || d->ctrs.n >= ST_CTR_KEYS_MAX + 1) {
        st__unref(d, key);
        r->bad = true;
        return;
    }
    struct st_ctr *c = st__ctr_get(d, key);
    st__unref(d, key);
    for (int k = 0; k < ST_ENG_W; k++)
        c->head[k] = get_ts(r, true);
    for (int k = 0; k < ST_CTR_N; k++)
        c->total[k] = st__get_i(r);
    int nz = st__get_n(r, ST_ENG_TOTAL), prev = -1;
    for (int k = 0; k < nz && !r->bad; k++) {
        uint64_t i = st__get_u(r);
        if ((int64_t)i <= prev || i >= ST_ENG_TOTAL) {
            r->bad = true;
            break;
        }
        prev = (int)i;
        for (int j = 0; j < ST_CTR_N; j++) {
            uint64_t v = st__get_u(r);
            if (v > UINT32_MAX)
                r->bad = true;
            c->b[i][j] = (uint32_t)v;
        }
    }
}

static void get_reco(struct st_rd *r, struct st *d)
{
    int64_t n = st__get_n(r, ST_CTX_MAX);
    for (int64_t i = 0; i < n && !r->bad; i++) {
        struct st_str *key = get_str(r, d, EVENT_ITEM_MAX, false);
        if (!key)
            return;
        if (st__ctx_find(d, key->s, key->len)) {
            st__unref(d, key);
            r->bad = true;
            return;
        }
        struct st_item *it = st__ctx_add(d, key);
        st__unref(d, key);
        get_nbs(r, d, it);
    }
    n = st__get_n(r, ST_CTR_KEYS_MAX + 1);
    for (int64_t i = 0; i < n && !r->bad; i++)
        get_ctr(r, d);
}

static void get_co(struct st_rd *r, struct st *d)
{
    int64_t rows = st__get_n(r, (int64_t)d->items.n);
    if (r->bad || rows == 0)
        return;
    struct st_item **items = core_xmalloc((d->items.n + 1) * sizeof *items);
    uint32_t nitems = 0;
    for (struct st_lnode *l = d->ilru.head; l; l = l->next)
        items[nitems++] = ITEM_OF(l);
    int64_t prev = -1;
    for (int64_t k = 0; k < rows && !r->bad; k++) {
        int64_t at = st__get_n(r, (int64_t)nitems - 1);
        if (r->bad || at <= prev) {
            r->bad = true;
            break;
        }
        prev = at;
        struct st_item *it = items[at];
        double occ = st__get_f(r);
        int n = st__get_n(r, ST_CO_ROW_MAX);
        if (!(occ >= 0) || occ > 1e15)
            r->bad = true;
        else
            st__co_row(d, it)->occ = occ;
        if (!r->bad && n > 0)
            st__co_reserve(d, it, (uint32_t)n);
        for (int e = 0; e < n && !r->bad; e++) {
            int64_t p = st__get_n(r, nitems);
            struct st_str *id =
                p > 0 ? st__ref(items[p - 1]->id) : get_str(r, d, EVENT_ITEM_MAX, false);
            uint32_t bits = 0;
            if (!r->bad && core_get_u32(&r->p, r->end, &bits) < 0)
                r->bad = true;
            float v;
            memcpy(&v, &bits, sizeof v);
            if (!r->bad && (!(v > 0) || v > 1e30f || id == it->id))
                r->bad = true;
            int64_t before = d->co_pairs;
            if (!r->bad && id) {
                st__co_add(d, it, id, v);
                if (d->co_pairs == before) /* the same neighbour twice */
                    r->bad = true;
            }
            if (id)
                st__unref(d, id);
        }
    }
    free(items);
}

static int parse_body(struct st_rd *r, struct st *d)
{
    struct state_config cfg;
    cfg.recent_max = (int)st__get_i(r);
    cfg.session_gap_ms = st__get_i(r);
    cfg.covisit_window = (int)st__get_i(r);
    cfg.neighbours_max = (int)st__get_i(r);
    cfg.half_life_ms = st__get_i(r);
    cfg.allowed_lateness_ms = st__get_i(r);
    cfg.user_ttl_ms = st__get_i(r);
    cfg.item_ttl_ms = st__get_i(r);
    cfg.max_users = st__get_i(r);
    cfg.max_items = st__get_i(r);
    cfg.cooc_items_max = r->version >= 4 ? st__get_i(r) : d->cfg.cooc_items_max;
    if (r->bad)
        return CORE_E_CORRUPT;
    if (!config_equal(&cfg, &d->cfg))
        return CORE_E_INVALID;
    d->partition = (int32_t)st__get_i(r);
    uint64_t have_now = st__get_u(r);
    d->have_now = have_now == 1;
    d->now = get_ts(r, false);
    d->next_offset = st__get_i(r);
    d->events = st__get_i(r);
    d->late = st__get_i(r);
    d->expired = st__get_i(r);
    d->evicted = st__get_i(r);
    if (have_now > 1 || d->next_offset < 0)
        r->bad = true;
    int64_t n = st__get_n(r, d->cfg.max_users);
    for (int64_t i = 0; i < n && !r->bad; i++)
        get_user(r, d);
    n = st__get_n(r, d->cfg.max_items);
    for (int64_t i = 0; i < n && !r->bad; i++)
        get_item(r, d);
    get_reco(r, d);
    if (r->version >= 4)
        get_co(r, d);
    if (r->bad || r->p != r->end)
        return CORE_E_CORRUPT;
    return 0;
}

int state_shard_restore(struct state_shard *s, const void *data, size_t len)
{
    const uint8_t *p = data, *end = p + len;
    uint32_t magic = 0, version = 0;
    uint64_t blen = 0, sum = 0;
    if (len < SNAP_HEADER || core_get_u32(&p, end, &magic) < 0 ||
        core_get_u32(&p, end, &version) < 0 || core_get_u64(&p, end, &blen) < 0 ||
        core_get_u64(&p, end, &sum) < 0)
        return CORE_E_CORRUPT;
    if (magic != SNAP_MAGIC || version < SNAP_VERSION_MIN || version > SNAP_VERSION ||
        blen != (uint64_t)(end - p) || XXH3_64bits(p, (size_t)blen) != sum)
        return CORE_E_CORRUPT;

    struct st fresh, old;
    /* Only the writer changes s->d, and the writer is the caller: reading cfg is safe. */
    st__init(&fresh, &s->d.cfg, s->d.partition);
    struct st_rd r = {p, end, false, version};
    int rc = parse_body(&r, &fresh);
    if (rc < 0) {
        st__dispose(&fresh);
        return rc;
    }
    pthread_rwlock_wrlock(&s->lock);
    old = s->d;
    s->d = fresh;
    pthread_rwlock_unlock(&s->lock);
    st__dispose(&old);
    return 0;
}
