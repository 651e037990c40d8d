/*
 * Serving state: what the store module publishes so that API nodes without a log or
 * processors can answer recommendation requests (src/store/).
 *
 * Change tracking costs the writer one counter increment per apply (struct st_user.pub_seq)
 * and one key copy per removed user (the ring in struct st); everything else happens here, on
 * the publisher's thread under the shard's read lock. Users are kept in apply order (the LRU
 * list, tail = newest), so the users changed since a publisher's position are a suffix of that
 * list: a walk from the tail stops at the first user it has already published.
 */
#include "state/state_int.h"

#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#define BLOB_MAGIC 0x31555352u /* "RSU1" little-endian */
#define BLOB_VERSION 1u
#define BLOB_HEADER 16

#define USER_OF(ln) ((struct st_user *)((char *)(ln)-offsetof(struct st_user, l)))

void st__user_gone(struct st *d, const char *key)
{
    if (!d->gone)
        d->gone = core_xcalloc(ST_GONE_MAX, sizeof *d->gone);
    memcpy(d->gone[d->ngone % ST_GONE_MAX], key, EVENT_KEY_HEX + 1);
    d->ngone++;
}

/* ---- encoding ---------------------------------------------------------------------------------
 */

static void put_s(struct core_buf *b, const char *s, size_t n)
{
    core_buf_put_varint(b, n);
    core_buf_append(b, s, n);
}

/* The record of one user (caller holds the read lock). */
static void put_blob(struct core_buf *b, const struct st_user *u)
{
    size_t start = b->len;
    core_buf_put_u32(b, BLOB_MAGIC);
    core_buf_put_u32(b, BLOB_VERSION);
    core_buf_put_u64(b, 0);
    size_t body = b->len;
    put_s(b, u->key, strlen(u->key));
    st__put_i(b, u->events);
    st__put_i(b, u->first_ms);
    st__put_i(b, u->last_ms);
    int skip = u->nrecent > STATE_READ_RECENT_MAX ? u->nrecent - STATE_READ_RECENT_MAX : 0;
    core_buf_put_varint(b, (uint64_t)(u->nrecent - skip));
    for (int i = skip; i < u->nrecent; i++) {
        const struct st_recent *r = &u->recent[(u->rhead + i) % u->rcap];
        put_s(b, r->item->s, r->item->len);
        core_buf_put_varint(b, event_type_to_wire(r->type));
        st__put_f(b, r->weight);
        st__put_i(b, r->ts);
    }
    int ns = u->nsess < STATE_READ_RECENT_MAX ? u->nsess : STATE_READ_RECENT_MAX;
    core_buf_put_varint(b, (uint64_t)ns);
    for (int i = 0; i < ns; i++) {
        put_s(b, u->sess_items[i].item->s, u->sess_items[i].item->len);
        st__put_i(b, u->sess_items[i].ts);
    }
    int nc = u->ncaff < STATE_READ_CATS_MAX ? u->ncaff : STATE_READ_CATS_MAX;
    core_buf_put_varint(b, (uint64_t)nc);
    for (int i = 0; i < nc; i++) {
        const struct st_affinity *a = &u->caff[i];
        put_s(b, a->tname->s, a->tname->len < STATE_SYMBOL_MAX ? a->tname->len : STATE_SYMBOL_MAX);
        st__put_f(b, a->v);
        st__put_i(b, a->ts);
    }
    core_buf_put_varint(b, (uint64_t)u->nprefs);
    for (int i = 0; i < u->nprefs; i++)
        put_s(b, u->prefs[i]->s,
              u->prefs[i]->len < STATE_SYMBOL_MAX ? u->prefs[i]->len : STATE_SYMBOL_MAX);
    uint64_t sum = XXH3_64bits(b->data + body, b->len - body);
    for (int i = 0; i < 8; i++)
        b->data[start + 8 + i] = (char)(sum >> (8 * i));
}

int state_shard_user_blob(struct state_shard *s, const char *user_key, struct core_buf *out)
{
    pthread_rwlock_rdlock(&s->lock);
    struct st_user *u = st__user_find(&s->d, user_key, strnlen(user_key, EVENT_KEY_HEX));
    if (u)
        put_blob(out, u);
    pthread_rwlock_unlock(&s->lock);
    return u ? 0 : CORE_E_NOTFOUND;
}

bool state_shard_has_user(struct state_shard *s, const char *user_key)
{
    pthread_rwlock_rdlock(&s->lock);
    bool has = st__user_find(&s->d, user_key, strnlen(user_key, EVENT_KEY_HEX)) != NULL;
    pthread_rwlock_unlock(&s->lock);
    return has;
}

int state_shard_changes(struct state_shard *s, struct state_changes *c, state_user_blob_fn user_fn,
                        state_user_gone_fn gone_fn, void *arg)
{
    struct core_buf b;
    core_buf_init(&b);
    int n = 0;
    pthread_rwlock_rdlock(&s->lock);
    struct st *d = &s->d;
    c->gone_lost = false;
    if (d->pub_seq < c->seq || d->ngone < c->ngone) { /* a restore replaced the shard */
        c->seq = 0;
        c->ngone = d->ngone;
        c->gone_lost = true;
    }
    /* the changed users are a suffix of the apply-ordered list: find its start, then report
     * oldest first (so an index by change time is written in order) */
    const struct st_lnode *l = c->seq == 0 ? d->ulru.head : NULL;
    for (const struct st_lnode *x = d->ulru.tail; c->seq > 0 && x; x = x->prev) {
        if (USER_OF(x)->pub_seq <= c->seq)
            break;
        l = x;
    }
    for (; l; l = l->next) {
        const struct st_user *u = USER_OF(l);
        b.len = 0;
        put_blob(&b, u);
        user_fn(arg, u->key, b.data, b.len, u->last_ms);
        n++;
    }
    c->seq = d->pub_seq;
    uint64_t from = c->ngone;
    if (d->ngone - from > ST_GONE_MAX) {
        from = d->ngone - ST_GONE_MAX;
        c->gone_lost = true;
    }
    for (uint64_t g = from; g < d->ngone; g++) {
        const char *key = d->gone[g % ST_GONE_MAX];
        if (!st__user_find(d, key, strnlen(key, EVENT_KEY_HEX)))
            gone_fn(arg, key);
    }
    c->ngone = d->ngone;
    pthread_rwlock_unlock(&s->lock);
    core_buf_dispose(&b);
    return n;
}

/* ---- decoding ---------------------------------------------------------------------------------
 */

/* A string of 1..max bytes; *n its length. Points into the blob. */
static const char *get_s(struct st_rd *r, size_t max, size_t *n)
{
    uint64_t v = st__get_u(r);
    if (r->bad || v == 0 || v > max || v > (uint64_t)(r->end - r->p)) {
        r->bad = true;
        *n = 0;
        return "";
    }
    const char *s = (const char *)r->p;
    r->p += v;
    *n = (size_t)v;
    return s;
}

static void get_item(struct st_rd *r, struct state_user_read *out, struct state_user_item *o)
{
    size_t n;
    const char *id = get_s(r, EVENT_ITEM_MAX, &n);
    if (r->bad || out->pool_used + n + 1 > sizeof out->pool) {
        r->bad = true;
        return;
    }
    char *p = out->pool + out->pool_used;
    memcpy(p, id, n);
    p[n] = 0;
    out->pool_used += n + 1;
    o->item_id = p;
    o->hash = st__hash(p, n);
    o->len = (uint32_t)n;
    o->type = 0;
    o->weight = 0;
}

static int cmp_cat(const void *a, const void *b)
{
    const struct state_user_cat *x = a, *y = b;
    if (x->v != y->v)
        return x->v < y->v ? 1 : -1;
    return strcmp(x->name, y->name);
}

static void get_symbol(struct st_rd *r, char *dst)
{
    size_t n;
    const char *s = get_s(r, STATE_SYMBOL_MAX, &n);
    memcpy(dst, s, n);
    dst[n] = 0;
}

static void parse_blob(struct st_rd *r, int64_t now_ms, int64_t half_life_ms,
                       struct state_user_read *out)
{
    size_t klen;
    get_s(r, EVENT_KEY_HEX, &klen);
    out->events = st__get_i(r);
    out->first_ms = st__get_i(r);
    out->last_ms = st__get_i(r);
    out->nrecent = st__get_n(r, STATE_READ_RECENT_MAX);
    for (int i = 0; i < out->nrecent && !r->bad; i++) {
        struct state_user_item *o = &out->recent[i];
        get_item(r, out, o);
        uint64_t wire = st__get_u(r);
        int t = event_type_from_wire(wire);
        if (t < 0)
            r->bad = true;
        o->type = t;
        o->weight = st__get_f(r);
        o->ts = st__get_i(r);
    }
    out->nsession = st__get_n(r, STATE_READ_RECENT_MAX);
    for (int i = 0; i < out->nsession && !r->bad; i++) {
        get_item(r, out, &out->session[i]);
        out->session[i].ts = st__get_i(r);
    }
    out->ncats = st__get_n(r, STATE_READ_CATS_MAX);
    /* decayed exactly as state_shard_user_read does (st__decay with this half-life) */
    struct st d = {.cfg.half_life_ms = half_life_ms > 0 ? half_life_ms : 1};
    for (int i = 0; i < out->ncats && !r->bad; i++) {
        get_symbol(r, out->cats[i].name);
        double v = st__get_f(r);
        int64_t ts = st__get_i(r);
        out->cats[i].v = st__decay(&d, v, ts, now_ms);
    }
    out->nprefs = st__get_n(r, STATE_READ_PREFS_MAX);
    for (int i = 0; i < out->nprefs && !r->bad; i++)
        get_symbol(r, out->prefs[i]);
    if (r->p != r->end)
        r->bad = true;
}

int state_user_blob_decode(const void *blob, size_t len, int64_t now_ms, int64_t half_life_ms,
                           struct state_user_read *out)
{
    out->found = false;
    out->nrecent = out->nsession = out->ncats = out->nprefs = 0;
    out->pool_used = 0;
    out->now_ms = now_ms;
    const uint8_t *p = blob, *end = p + len;
    uint32_t magic = 0, version = 0;
    uint64_t sum = 0;
    if (len < BLOB_HEADER || core_get_u32(&p, end, &magic) < 0 ||
        core_get_u32(&p, end, &version) < 0 || core_get_u64(&p, end, &sum) < 0 ||
        magic != BLOB_MAGIC || version != BLOB_VERSION || XXH3_64bits(p, (size_t)(end - p)) != sum)
        return CORE_E_CORRUPT;
    struct st_rd r = {p, end, false, BLOB_VERSION};
    parse_blob(&r, now_ms, half_life_ms, out);
    if (r.bad) {
        out->nrecent = out->nsession = out->ncats = out->nprefs = 0;
        out->pool_used = 0;
        return CORE_E_CORRUPT;
    }
    qsort(out->cats, (size_t)out->ncats, sizeof out->cats[0], cmp_cat);
    out->found = true;
    return 0;
}
