/*
 * Merging one user's state into another's: the anonymous-to-identified merge and the move of a
 * user to a rotated pseudonym (docs/ARCHITECTURE.md, "Identity").
 *
 * The source's state travels through the log: the processor of the source's partition reads it
 * as a user image (state_shard_user_image, the snapshot's user record) before it applies the
 * "merge" record that forgets the source, and appends it in a "merge_in" record to the target's
 * partition, whose processor merges it here. Like everything a shard does, the merge is a
 * function of the record and the shard alone.
 *
 * Idempotence: the target remembers each merged source key with the offset of the newest merge
 * of it (merges of one source are records of one partition, so their offsets are ordered); a
 * merge_in at or below that offset is a repeat (a re-append after a crash that the dedup window
 * no longer caught) and changes nothing. So applying a merge_in twice gives the state of once.
 * The merge itself: counters add up, first/last seen are min/max, recent interactions are the
 * union by identity (item, type, weight, time), sorted by time and cut to the bound, decayed
 * affinities are summed as if both users' events had been one user's, the later session and
 * the target's stated preferences (the source's when the target has none) are kept.
 */
#include "state/state_int.h"

#include <cjson/cJSON.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int state_shard_user_image(struct state_shard *s, const char *key, int max_recent,
                           struct core_buf *out)
{
    size_t n = strnlen(key, EVENT_KEY_HEX + 1);
    int rc = CORE_E_NOTFOUND;
    pthread_rwlock_rdlock(&s->lock);
    const struct st_user *u = n == EVENT_KEY_HEX ? st__user_find(&s->d, key, n) : NULL;
    if (u) {
        st__user_put(out, u, max_recent);
        rc = 0;
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

bool state_shard_user_known(struct state_shard *s, const char *key)
{
    size_t n = strnlen(key, EVENT_KEY_HEX + 1);
    pthread_rwlock_rdlock(&s->lock);
    bool known = n == EVENT_KEY_HEX && st__user_find(&s->d, key, n) != NULL;
    pthread_rwlock_unlock(&s->lock);
    return known;
}

int state_shard_user_aliases(struct state_shard *s, const char *key, char (*out)[EVENT_KEY_HEX + 1],
                             int max)
{
    size_t n = strnlen(key, EVENT_KEY_HEX + 1);
    int count = 0;
    pthread_rwlock_rdlock(&s->lock);
    const struct st_user *u = n == EVENT_KEY_HEX ? st__user_find(&s->d, key, n) : NULL;
    for (int i = 0; u && i < u->nalias && count < max; i++)
        memcpy(out[count++], u->alias[i].key, EVENT_KEY_HEX + 1);
    pthread_rwlock_unlock(&s->lock);
    return count;
}

/* ---- merging ------------------------------------------------------------------------------- */

static struct st_str *move_str(struct st *d, const struct st_str *str)
{
    return str ? st__intern(d, str->s, str->len) : NULL;
}

/* A total order on recent entries, so that the merged list does not depend on which side an
 * entry came from (that is what makes union + cut idempotent). */
static int cmp_recent(const void *pa, const void *pb)
{
    const struct st_recent *a = pa, *b = pb;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    int c = st__strcmp(a->item, b->item);
    if (c)
        return c;
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    if (a->tname != b->tname) {
        if (!a->tname || !b->tname)
            return a->tname ? 1 : -1;
        c = st__strcmp(a->tname, b->tname);
        if (c)
            return c;
    }
    if (a->weight != b->weight)
        return a->weight < b->weight ? -1 : 1;
    return 0;
}

static void merge_recent(struct st *d, struct st_user *u, const struct st_user *src)
{
    int total = u->nrecent + src->nrecent;
    if (src->nrecent == 0)
        return;
    struct st_recent *all = core_xmalloc((size_t)total * sizeof *all);
    int n = 0;
    for (int i = 0; i < u->nrecent; i++)
        all[n++] = u->recent[(u->rhead + i) % u->rcap]; /* references move over */
    for (int i = 0; i < src->nrecent; i++) {
        const struct st_recent *r = &src->recent[(src->rhead + i) % src->rcap];
        all[n++] = (struct st_recent){move_str(d, r->item), move_str(d, r->tname), r->weight, r->ts,
                                      r->type};
    }
    qsort(all, (size_t)n, sizeof *all, cmp_recent);
    int m = 0; /* distinct entries, in order */
    for (int i = 0; i < n; i++) {
        if (m > 0 && cmp_recent(&all[m - 1], &all[i]) == 0) {
            st__unref(d, all[i].item);
            st__unref(d, all[i].tname);
            continue;
        }
        all[m++] = all[i];
    }
    int drop = m > d->cfg.recent_max ? m - d->cfg.recent_max : 0;
    for (int i = 0; i < drop; i++) {
        st__unref(d, all[i].item);
        st__unref(d, all[i].tname);
    }
    st__free(d, u->recent, (size_t)u->rcap * sizeof *u->recent);
    u->rcap = m - drop;
    u->recent = st__alloc(d, (size_t)u->rcap * sizeof *u->recent);
    memcpy(u->recent, all + drop, (size_t)u->rcap * sizeof *u->recent);
    u->nrecent = u->rcap;
    u->rhead = 0;
    free(all);
}

/* Adds src's decayed accumulators into the matching entries of list (by type and name, names
 * compared after interning into d); entries without a match take a free slot, if any. */
static void merge_acc(struct st *d, struct st_affinity **list, int32_t *n, int32_t *cap, int max,
                      const struct st_affinity *src, int nsrc)
{
    for (int i = 0; i < nsrc; i++) {
        struct st_str *name = move_str(d, src[i].tname);
        int j = 0;
        while (j < *n && ((*list)[j].type != src[i].type || (*list)[j].tname != name))
            j++;
        if (j < *n) {
            st__acc_add(d, &(*list)[j].v, &(*list)[j].ts, src[i].v, src[i].ts);
            st__unref(d, name);
            continue;
        }
        if (*n == max) {
            st__unref(d, name);
            continue;
        }
        if (*n == *cap) {
            int ncap = *cap ? *cap * 2 : 2;
            ncap = ncap > max ? max : ncap;
            *list =
                st__realloc(d, *list, (size_t)*cap * sizeof **list, (size_t)ncap * sizeof **list);
            *cap = ncap;
        }
        (*list)[(*n)++] = (struct st_affinity){src[i].type, name, src[i].v, src[i].ts};
    }
}

static void merge_session(struct st *d, struct st_user *u, const struct st_user *src)
{
    if (src->sess_count == 0 || (u->sess_count > 0 && u->sess_last >= src->sess_last))
        return;
    st__unref(d, u->sess_id);
    for (int i = 0; i < u->nsess; i++)
        st__unref(d, u->sess_items[i].item);
    u->sess_id = move_str(d, src->sess_id);
    u->sess_start = src->sess_start;
    u->sess_last = src->sess_last;
    u->sess_count = src->sess_count;
    u->nsess = 0;
    if (src->nsess > 0 && !u->sess_items)
        u->sess_items = st__alloc(d, (size_t)d->cfg.covisit_window * sizeof *u->sess_items);
    for (int i = 0; i < src->nsess; i++)
        u->sess_items[u->nsess++] =
            (struct st_sitem){move_str(d, src->sess_items[i].item), src->sess_items[i].ts};
}

/* Engagement rings: bucket by bucket when both rings are at the same bucket, else the newer. */
static void merge_engagement(struct st *d, struct st_user *u, const struct st_user *src)
{
    if (!src->eng)
        return;
    if (!u->eng) {
        u->eng = st__alloc(d, sizeof *u->eng);
        *u->eng = *src->eng;
        return;
    }
    for (int k = 0; k < ST_ENG_W; k++) {
        int off = k == 0 ? 0 : st_ring_n[STATE_W_1H], n = st_ring_n[STATE_W_1H + k];
        if (src->eng->head[k] == ST_EMPTY ||
            (u->eng->head[k] != ST_EMPTY && src->eng->head[k] < u->eng->head[k]))
            continue;
        if (u->eng->head[k] != src->eng->head[k]) {
            u->eng->head[k] = src->eng->head[k];
            memcpy(&u->eng->b[off], &src->eng->b[off], (size_t)n * sizeof u->eng->b[0]);
            continue;
        }
        for (int i = off; i < off + n; i++) {
            struct st_ebucket *a = &u->eng->b[i];
            const struct st_ebucket *b = &src->eng->b[i];
            a->clicks += b->clicks;
            a->views += b->views;
            a->dwell_ms += b->dwell_ms;
            if (b->max_scroll > a->max_scroll)
                a->max_scroll = b->max_scroll;
        }
    }
}

/* Records that key was merged in at offset (the newest wins; the oldest alias makes way when
 * the list is full). */
static void alias_note(struct st *d, struct st_user *u, const char *key, int64_t offset)
{
    if (strcmp(key, u->key) == 0)
        return;
    if (!u->alias)
        u->alias = st__alloc(d, ST_ALIAS_MAX * sizeof *u->alias);
    for (int i = 0; i < u->nalias; i++) {
        if (strcmp(u->alias[i].key, key) == 0) {
            if (offset > u->alias[i].offset)
                u->alias[i].offset = offset;
            return;
        }
    }
    if (u->nalias == ST_ALIAS_MAX) {
        memmove(&u->alias[0], &u->alias[1], (ST_ALIAS_MAX - 1) * sizeof *u->alias);
        u->nalias--;
    }
    memcpy(u->alias[u->nalias].key, key, EVENT_KEY_HEX + 1);
    u->alias[u->nalias++].offset = offset;
}

static void merge_user(struct st *d, struct st_user *u, const struct st_user *src)
{
    u->events += src->events;
    if (src->first_ms != ST_EMPTY && (u->first_ms == ST_EMPTY || src->first_ms < u->first_ms))
        u->first_ms = src->first_ms;
    if (src->last_ms != ST_EMPTY && (u->last_ms == ST_EMPTY || src->last_ms > u->last_ms))
        u->last_ms = src->last_ms;
    merge_recent(d, u, src);
    merge_session(d, u, src);
    merge_acc(d, &u->aff, &u->naff, &u->affcap, ST_AFF_MAX, src->aff, src->naff);
    int32_t ccap = ST_CAFF_MAX;
    if (!u->caff && src->ncaff > 0)
        u->caff = st__alloc(d, ST_CAFF_MAX * sizeof *u->caff);
    merge_acc(d, &u->caff, &u->ncaff, &ccap, ST_CAFF_MAX, src->caff, src->ncaff);
    merge_engagement(d, u, src);
    if (u->nprefs == 0)
        for (int i = 0; i < src->nprefs; i++)
            u->prefs[u->nprefs++] = move_str(d, src->prefs[i]);
    for (int i = 0; i < src->nalias; i++)
        alias_note(d, u, src->alias[i].key, src->alias[i].offset);
}

/* The merge_in's properties: {"offset":N,"state":"<base64 user image>"}. */
static int parse_props(const struct event *ev, int64_t *moff, struct core_buf *image)
{
    cJSON *o = cJSON_ParseWithLength(ev->properties_json.ptr, ev->properties_json.len);
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(o, "offset");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "state");
    int rc = CORE_E_INVALID;
    if (cJSON_IsNumber(off) && off->valuedouble >= 0 && cJSON_IsString(st) && st->valuestring &&
        st->valuestring[0]) {
        size_t n = strlen(st->valuestring), len = 0;
        core_buf_reserve(image, n);
        if (sodium_base642bin((unsigned char *)image->data, image->cap, st->valuestring, n, NULL,
                              &len, NULL, sodium_base64_VARIANT_ORIGINAL) == 0) {
            image->len = len;
            *moff = (int64_t)off->valuedouble;
            rc = 0;
        }
    }
    cJSON_Delete(o);
    return rc;
}

void st__merge_in(struct st *d, const struct event *ev)
{
    const char *to = ev->user_key, *from = ev->anon_key;
    if (strlen(to) != EVENT_KEY_HEX || strlen(from) != EVENT_KEY_HEX || !strcmp(to, from))
        return;
    int64_t moff = 0;
    struct core_buf image;
    core_buf_init(&image);
    if (parse_props(ev, &moff, &image) < 0)
        goto out;
    struct st_user *u = st__user_find(d, to, EVENT_KEY_HEX);
    for (int i = 0; u && i < u->nalias; i++)
        if (!strcmp(u->alias[i].key, from) && u->alias[i].offset >= moff)
            goto out; /* a repeat of a merge already applied */
    struct st scratch;
    st__init(&scratch, &d->cfg, d->partition);
    struct st_user *src = st__user_parse(&scratch, image.data, image.len);
    if (src && strcmp(src->key, from) == 0) {
        if (!u)
            u = st__user_add(d, to, EVENT_KEY_HEX);
        else
            st__user_touch(d, u);
        merge_user(d, u, src);
        alias_note(d, u, from, moff);
    }
    st__dispose(&scratch);
out:
    core_buf_dispose(&image);
}
