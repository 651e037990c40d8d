/*
 * state reads: the canonical dump, user profiles, item figures, neighbours and top items.
 * All run under the shard's read lock and copy out; window figures are evaluated as of the
 * shard's event-time now, decayed values at the shard's now unless the caller gives a time.
 */
#include "state/state_int.h"

#include <assert.h>

#include <stdlib.h>
#include <string.h>

static const char *const window_names[STATE_W__COUNT] = {"1m", "1h", "24h"};

#define USER_OF(ln) ((struct st_user *)((char *)(ln)-offsetof(struct st_user, l)))
#define ITEM_OF(ln) ((struct st_item *)((char *)(ln)-offsetof(struct st_item, l)))

/*
 * Calls fn for each bucket of window w (of a ring with the given head) that lies inside the
 * window as of the shard's now, passing its slot.
 */
static void ring_live(const struct st *d, int w, int64_t head, void (*fn)(void *, int), void *arg)
{
    if (head == ST_EMPTY || !d->have_now)
        return;
    int n = st_ring_n[w];
    int64_t nowb = st__floordiv(d->now, st_ring_width[w]);
    for (int k = 0; k < n; k++) {
        int64_t idx = head - k;
        if (idx > nowb - n && idx <= nowb)
            fn(arg, st__floormod(idx, n));
    }
}

struct item_sum {
    const struct st_item *it;
    int off;
    int64_t *counts; /* [STATE_G__COUNT] */
};

static void item_sum_fn(void *arg, int slot)
{
    struct item_sum *a = arg;
    for (int g = 0; g < STATE_G__COUNT; g++)
        a->counts[g] += a->it->cnt[a->off + slot][g];
}

static void item_counts(const struct st *d, const struct st_item *it, int w,
                        int64_t counts[STATE_G__COUNT])
{
    struct item_sum a = {it, st_ring_off[w], counts};
    ring_live(d, w, it->head[w], item_sum_fn, &a);
}

struct eng_sum {
    const struct st_eng *e;
    int off;
    struct st_ebucket sum;
};

static void eng_sum_fn(void *arg, int slot)
{
    struct eng_sum *a = arg;
    const struct st_ebucket *b = &a->e->b[a->off + slot];
    a->sum.clicks += b->clicks;
    a->sum.views += b->views;
    a->sum.dwell_ms += b->dwell_ms;
    if (b->max_scroll > a->sum.max_scroll)
        a->sum.max_scroll = b->max_scroll;
}

/* ---- sorting ------------------------------------------------------------------------------- */

static int cmp_user(const void *a, const void *b)
{
    return strcmp((*(struct st_user *const *)a)->key, (*(struct st_user *const *)b)->key);
}

static int cmp_item(const void *a, const void *b)
{
    return st__strcmp((*(struct st_item *const *)a)->id, (*(struct st_item *const *)b)->id);
}

struct ranked {
    const struct st_str *id;
    double score;
};

static int cmp_ranked(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return st__strcmp(x->id, y->id);
}

/* The item's neighbours decayed to t, sorted (score desc, id asc); caller frees. */
static struct ranked *ranked_neighbours(const struct st *d, const struct st_item *it, int64_t t)
{
    struct ranked *r = core_xmalloc(((size_t)it->nnb + 1) * sizeof *r);
    for (int i = 0; i < it->nnb; i++)
        r[i] = (struct ranked){it->nb[i].id, st__decay(d, it->nb[i].score, it->nb[i].ts, t)};
    qsort(r, (size_t)it->nnb, sizeof *r, cmp_ranked);
    return r;
}

/* ---- dump ---------------------------------------------------------------------------------- */

static int cmp_aff(const void *a, const void *b)
{
    const struct st_affinity *x = a, *y = b;
    size_t xl, yl;
    const char *xn = st__type_name(x->type, x->tname, &xl);
    const char *yn = st__type_name(y->type, y->tname, &yl);
    int c = memcmp(xn, yn, xl < yl ? xl : yl);
    if (c)
        return c;
    if (xl != yl)
        return xl < yl ? -1 : 1;
    return x->type - y->type;
}

static int cmp_caff(const void *a, const void *b)
{
    return st__strcmp(((const struct st_affinity *)a)->tname,
                      ((const struct st_affinity *)b)->tname);
}

/* Category affinities sorted by name into buf (ST_CAFF_MAX entries); returns the count. */
static int sorted_caff(const struct st_user *u, struct st_affinity *buf)
{
    if (u->ncaff)
        memcpy(buf, u->caff, (size_t)u->ncaff * sizeof buf[0]);
    qsort(buf, (size_t)u->ncaff, sizeof buf[0], cmp_caff);
    return u->ncaff;
}

static void put_type(struct core_buf *out, int32_t type, const struct st_str *tname)
{
    size_t n;
    const char *name = st__type_name(type, tname, &n);
    core_json_str(out, name, n);
}

static void dump_user(const struct st_user *u, struct core_buf *out)
{
    core_buf_printf(out, "user \"%s\" first=%lld last=%lld events=%lld\n", u->key,
                    (long long)u->first_ms, (long long)u->last_ms, (long long)u->events);
    for (int i = 0; i < u->nrecent; i++) {
        const struct st_recent *r = &u->recent[(u->rhead + i) % u->rcap];
        core_buf_puts(out, "  recent ");
        core_json_str(out, r->item->s, r->item->len);
        core_buf_putc(out, ' ');
        put_type(out, r->type, r->tname);
        core_buf_printf(out, " w=%.9g ts=%lld\n", r->weight, (long long)r->ts);
    }
    core_buf_puts(out, "  session ");
    if (u->sess_id)
        core_json_str(out, u->sess_id->s, u->sess_id->len);
    else
        core_buf_putc(out, '-');
    core_buf_printf(out, " start=%lld last=%lld count=%lld\n", (long long)u->sess_start,
                    (long long)u->sess_last, (long long)u->sess_count);
    for (int i = 0; i < u->nsess; i++) {
        core_buf_puts(out, "  sitem ");
        core_json_str(out, u->sess_items[i].item->s, u->sess_items[i].item->len);
        core_buf_printf(out, " ts=%lld\n", (long long)u->sess_items[i].ts);
    }
    struct st_affinity aff[ST_AFF_MAX];
    memcpy(aff, u->aff ? u->aff : aff, (size_t)u->naff * sizeof aff[0]);
    qsort(aff, (size_t)u->naff, sizeof aff[0], cmp_aff);
    for (int i = 0; i < u->naff; i++) {
        core_buf_puts(out, "  aff ");
        put_type(out, aff[i].type, aff[i].tname);
        core_buf_printf(out, " v=%.9g ts=%lld\n", aff[i].v, (long long)aff[i].ts);
    }
    struct st_affinity caff[ST_CAFF_MAX];
    for (int i = 0, n = sorted_caff(u, caff); i < n; i++) {
        core_buf_puts(out, "  category ");
        core_json_str(out, caff[i].tname->s, caff[i].tname->len);
        core_buf_printf(out, " v=%.9g ts=%lld\n", caff[i].v, (long long)caff[i].ts);
    }
    for (int i = 0; i < u->nprefs; i++) {
        core_buf_puts(out, "  pref ");
        core_json_str(out, u->prefs[i]->s, u->prefs[i]->len);
        core_buf_putc(out, '\n');
    }
    for (int i = 0; i < u->nalias; i++)
        core_buf_printf(out, "  alias \"%s\" offset=%lld\n", u->alias[i].key,
                        (long long)u->alias[i].offset);
    if (!u->eng)
        return;
    for (int k = 0; k < ST_ENG_W; k++) {
        int off = k == 0 ? 0 : st_ring_n[STATE_W_1H];
        core_buf_printf(out, "  eng %s head=%lld", window_names[STATE_W_1H + k],
                        (long long)u->eng->head[k]);
        for (int i = 0; i < st_ring_n[STATE_W_1H + k]; i++) {
            const struct st_ebucket *b = &u->eng->b[off + i];
            if (b->clicks || b->views || b->dwell_ms != 0 || b->max_scroll != 0)
                core_buf_printf(out, " [%d %u %u %.9g %.9g]", i, b->clicks, b->views, b->dwell_ms,
                                b->max_scroll);
        }
        core_buf_putc(out, '\n');
    }
}

static void dump_nbs(const struct st *d, const struct st_item *it, struct core_buf *out);

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

/* Context lists and attribution counters, sorted by key. */
static void dump_reco(const struct st *d, struct core_buf *out)
{
    size_t k = 0;
    const struct st_item **v = core_xmalloc((d->ctxs.n + 1) * sizeof *v);
    for (size_t i = 0; d->ctxs.b && i <= d->ctxs.mask; i++)
        for (const struct st_hnode *e = d->ctxs.b[i]; e; e = e->hnext)
            v[k++] = (const struct st_item *)e;
    qsort(v, k, sizeof *v, cmp_ctx);
    for (size_t i = 0; i < k; i++) {
        core_buf_puts(out, "context ");
        core_json_str(out, v[i]->id->s, v[i]->id->len);
        core_buf_putc(out, '\n');
        dump_nbs(d, v[i], out);
    }
    free(v);
    const struct st_ctr **c = core_xmalloc((d->ctrs.n + 1) * sizeof *c);
    k = 0;
    for (size_t i = 0; d->ctrs.b && i <= d->ctrs.mask; i++)
        for (const struct st_hnode *e = d->ctrs.b[i]; e; e = e->hnext)
            c[k++] = (const struct st_ctr *)e;
    qsort(c, k, sizeof *c, cmp_ctr);
    for (size_t i = 0; i < k; i++) {
        core_buf_puts(out, "ctr ");
        core_json_str(out, c[i]->key->s, c[i]->key->len);
        core_buf_printf(out, " total=[%lld %lld %lld %lld] head=%lld,%lld",
                        (long long)c[i]->total[0], (long long)c[i]->total[1],
                        (long long)c[i]->total[2], (long long)c[i]->total[3],
                        (long long)c[i]->head[0], (long long)c[i]->head[1]);
        for (int j = 0; j < ST_ENG_TOTAL; j++) {
            const uint32_t *b = c[i]->b[j];
            if (b[0] | b[1] | b[2] | b[3])
                core_buf_printf(out, " [%d %u %u %u %u]", j, b[0], b[1], b[2], b[3]);
        }
        core_buf_putc(out, '\n');
    }
    free(c);
}

static void dump_item(const struct st *d, const struct st_item *it, struct core_buf *out)
{
    core_buf_puts(out, "item ");
    core_json_str(out, it->id->s, it->id->len);
    core_buf_printf(out, " last=%lld pop=%.9g pop_ts=%lld impressions=%lld clicks=%lld\n",
                    (long long)it->last_ms, it->pop, (long long)it->pop_ts,
                    (long long)it->impressions, (long long)it->clicks);
    for (int w = 0; w < STATE_W__COUNT; w++) {
        core_buf_printf(out, "  counts %s head=%lld", window_names[w], (long long)it->head[w]);
        for (int i = 0; i < st_ring_n[w]; i++) {
            const uint32_t *c = it->cnt[st_ring_off[w] + i];
            if (c[0] | c[1] | c[2] | c[3] | c[4])
                core_buf_printf(out, " [%d %u %u %u %u %u]", i, c[0], c[1], c[2], c[3], c[4]);
        }
        core_buf_putc(out, '\n');
    }
    dump_nbs(d, it, out);
}

static void dump_nbs(const struct st *d, const struct st_item *it, struct core_buf *out)
{
    struct ranked *r = ranked_neighbours(d, it, d->now);
    for (int i = 0; i < it->nnb; i++) {
        const struct st_nb *nb = NULL;
        for (int j = 0; j < it->nnb; j++)
            if (it->nb[j].id == r[i].id)
                nb = &it->nb[j];
        assert(nb != NULL); /* r lists exactly the item's neighbours */
        core_buf_puts(out, "  nb ");
        core_json_str(out, r[i].id->s, r[i].id->len);
        core_buf_printf(out, " score=%.9g ts=%lld\n", nb->score, (long long)nb->ts);
    }
    free(r);
}

void state_shard_dump(struct state_shard *s, struct core_buf *out)
{
    pthread_rwlock_rdlock(&s->lock);
    const struct st *d = &s->d;
    core_buf_printf(out,
                    "shard partition=%d have_now=%d now=%lld next_offset=%lld events=%lld "
                    "late=%lld expired=%lld evicted=%lld users=%zu items=%zu pairs=%lld\n",
                    (int)d->partition, (int)d->have_now, (long long)d->now,
                    (long long)d->next_offset, (long long)d->events, (long long)d->late,
                    (long long)d->expired, (long long)d->evicted, d->users.n, d->items.n,
                    (long long)d->pairs);
    struct st_user **us = core_xmalloc((d->users.n + 1) * sizeof *us);
    size_t n = 0;
    for (struct st_lnode *l = d->ulru.head; l; l = l->next)
        us[n++] = USER_OF(l);
    qsort(us, n, sizeof *us, cmp_user);
    for (size_t i = 0; i < n; i++)
        dump_user(us[i], out);
    free(us);
    struct st_item **is = core_xmalloc((d->items.n + 1) * sizeof *is);
    n = 0;
    for (struct st_lnode *l = d->ilru.head; l; l = l->next)
        is[n++] = ITEM_OF(l);
    qsort(is, n, sizeof *is, cmp_item);
    for (size_t i = 0; i < n; i++)
        dump_item(d, is[i], out);
    free(is);
    dump_reco(d, out);
    pthread_rwlock_unlock(&s->lock);
}

/* ---- user profile -------------------------------------------------------------------------- */

static void user_json(const struct st *d, const struct st_user *u, struct core_buf *out)
{
    core_buf_puts(out, "{\"userKey\":");
    core_json_cstr(out, u->key);
    core_buf_printf(out, ",\"events\":%lld,\"firstSeen\":%lld,\"lastSeen\":%lld,\"recent\":[",
                    (long long)u->events, (long long)u->first_ms, (long long)u->last_ms);
    for (int i = u->nrecent - 1; i >= 0; i--) { /* newest first */
        const struct st_recent *r = &u->recent[(u->rhead + i) % u->rcap];
        core_buf_puts(out, i == u->nrecent - 1 ? "{\"itemId\":" : ",{\"itemId\":");
        core_json_str(out, r->item->s, r->item->len);
        core_buf_puts(out, ",\"eventType\":");
        put_type(out, r->type, r->tname);
        core_buf_puts(out, ",\"weight\":");
        core_json_f64(out, r->weight);
        core_buf_printf(out, ",\"timestamp\":%lld}", (long long)r->ts);
    }
    core_buf_puts(out, "],\"session\":{\"sessionId\":");
    if (u->sess_id)
        core_json_str(out, u->sess_id->s, u->sess_id->len);
    else
        core_buf_puts(out, "null");
    core_buf_printf(out, ",\"start\":%lld,\"last\":%lld,\"count\":%lld,\"items\":[",
                    (long long)u->sess_start, (long long)u->sess_last, (long long)u->sess_count);
    for (int i = 0; i < u->nsess; i++) {
        if (i)
            core_buf_putc(out, ',');
        core_json_str(out, u->sess_items[i].item->s, u->sess_items[i].item->len);
    }
    core_buf_puts(out, "]},\"engagement\":{");
    for (int k = 0; k < ST_ENG_W; k++) {
        struct eng_sum a = {u->eng, k == 0 ? 0 : st_ring_n[STATE_W_1H], {0}};
        if (u->eng)
            ring_live(d, STATE_W_1H + k, u->eng->head[k], eng_sum_fn, &a);
        core_buf_printf(out, "%s\"%s\":{\"clicks\":%u,\"views\":%u,\"dwellMs\":", k ? "," : "",
                        window_names[STATE_W_1H + k], a.sum.clicks, a.sum.views);
        core_json_f64(out, a.sum.dwell_ms);
        core_buf_puts(out, ",\"maxScrollDepth\":");
        core_json_f64(out, a.sum.max_scroll);
        core_buf_putc(out, '}');
    }
    core_buf_puts(out, "},\"affinities\":{");
    struct st_affinity aff[ST_AFF_MAX];
    memcpy(aff, u->aff ? u->aff : aff, (size_t)u->naff * sizeof aff[0]);
    qsort(aff, (size_t)u->naff, sizeof aff[0], cmp_aff);
    for (int i = 0; i < u->naff; i++) {
        if (i)
            core_buf_putc(out, ',');
        put_type(out, aff[i].type, aff[i].tname);
        core_buf_putc(out, ':');
        core_json_f64(out, st__decay(d, aff[i].v, aff[i].ts, d->now));
    }
    core_buf_puts(out, "},\"categories\":{");
    struct st_affinity caff[ST_CAFF_MAX];
    for (int i = 0, n = sorted_caff(u, caff); i < n; i++) {
        if (i)
            core_buf_putc(out, ',');
        core_json_str(out, caff[i].tname->s, caff[i].tname->len);
        core_buf_putc(out, ':');
        core_json_f64(out, st__decay(d, caff[i].v, caff[i].ts, d->now));
    }
    core_buf_puts(out, "},\"preferences\":[");
    for (int i = 0; i < u->nprefs; i++) {
        if (i)
            core_buf_putc(out, ',');
        core_json_str(out, u->prefs[i]->s, u->prefs[i]->len);
    }
    core_buf_putc(out, ']');
    if (u->nalias > 0) {
        core_buf_puts(out, ",\"mergedKeys\":[");
        for (int i = 0; i < u->nalias; i++) {
            if (i)
                core_buf_putc(out, ',');
            core_json_cstr(out, u->alias[i].key);
        }
        core_buf_putc(out, ']');
    }
    core_buf_putc(out, '}');
}

int state_shard_user_json(struct state_shard *s, const char *user_key, struct core_buf *out)
{
    int rc = CORE_E_NOTFOUND;
    size_t n = strnlen(user_key, EVENT_KEY_HEX + 1);
    pthread_rwlock_rdlock(&s->lock);
    const struct st_user *u = n <= EVENT_KEY_HEX ? st__user_find(&s->d, user_key, n) : NULL;
    if (u) {
        user_json(&s->d, u, out);
        rc = 0;
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

/* ---- items --------------------------------------------------------------------------------- */

void state_shard_item_view(struct state_shard *s, const char *item_id, size_t len,
                           struct state_item_view *v)
{
    pthread_rwlock_rdlock(&s->lock);
    const struct st *d = &s->d;
    const struct st_item *it = st__item_lookup(&s->d, st__hash(item_id, len), item_id, len);
    if (it) {
        v->found = true;
        for (int w = 0; w < STATE_W__COUNT; w++)
            item_counts(d, it, w, v->counts[w]);
        v->popularity += st__decay(d, it->pop, it->pop_ts, d->now);
        v->impressions += it->impressions;
        v->clicks += it->clicks;
        if (it->last_ms > v->last_seen_ms)
            v->last_seen_ms = it->last_ms;
    }
    pthread_rwlock_unlock(&s->lock);
}

static void copy_id(struct state_neighbour *o, const struct st_str *id, double score)
{
    memcpy(o->item_id, id->s, id->len);
    o->item_id[id->len] = '\0';
    o->score = score;
}

int state_shard_neighbours(struct state_shard *s, const char *item_id, size_t len, int64_t as_of_ms,
                           struct state_neighbour *out, int max)
{
    int n = 0;
    pthread_rwlock_rdlock(&s->lock);
    const struct st_item *it = st__item_lookup(&s->d, st__hash(item_id, len), item_id, len);
    if (it && max > 0) {
        struct ranked *r = ranked_neighbours(&s->d, it, as_of_ms);
        for (; n < it->nnb && n < max; n++)
            copy_id(&out[n], r[n].id, r[n].score);
        free(r);
    }
    pthread_rwlock_unlock(&s->lock);
    return n;
}

int state_shard_top_items(struct state_shard *s, enum state_window w, int g,
                          struct state_neighbour *out, int max)
{
    if (max <= 0 || (int)w < 0 || w >= STATE_W__COUNT || g >= STATE_G__COUNT)
        return 0;
    struct ranked *top = core_xmalloc(((size_t)max + 1) * sizeof *top);
    int n = 0;
    pthread_rwlock_rdlock(&s->lock);
    const struct st *d = &s->d;
    for (const struct st_lnode *l = d->ilru.head; l; l = l->next) {
        const struct st_item *it = ITEM_OF(l);
        int64_t c[STATE_G__COUNT] = {0};
        item_counts(d, it, w, c);
        int64_t sum = 0;
        for (int k = 0; k < STATE_G__COUNT; k++)
            if (g < 0 || k == g)
                sum += c[k];
        if (sum == 0)
            continue;
        /* Insertion into the sorted top list (count desc, id asc). */
        struct ranked cand = {it->id, (double)sum};
        if (n == max && cmp_ranked(&cand, &top[n - 1]) >= 0)
            continue;
        int pos = n < max ? n++ : max - 1;
        while (pos > 0 && cmp_ranked(&cand, &top[pos - 1]) < 0) {
            top[pos] = top[pos - 1];
            pos--;
        }
        top[pos] = cand;
    }
    for (int i = 0; i < n; i++)
        copy_id(&out[i], top[i].id, top[i].score);
    pthread_rwlock_unlock(&s->lock);
    free(top);
    return n;
}
