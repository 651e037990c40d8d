/*
 * The catalog in memory: slots (idx -> item), the id and symbol indexes, reads inside the
 * read bracket, and the write path (validate without locks, plan and journal under the
 * writer mutex, publish under the write lock). Files are in catalog_store.c, the item JSON
 * in catalog_item.c.
 */
#include "catalog/catalog_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ITEMS_LIMIT (1LL << 30) /* slots (2 x max_items) stay below 2^31 */
#define MIN_SLOTS 1024
#define SYMBOLS_MIN 65536
#define SYMBOLS_MAX (1u << 24)

void catalog_options_init(struct catalog_options *o)
{
    o->dir = NULL;
    o->max_items = 10000000;
    o->fsync = true;
}

bool cat__slot_eq(const void *ctx, uint32_t idx, const char *s, size_t n)
{
    const struct cat_slot *slot = &((const struct catalog *)ctx)->slots[idx];
    return slot->id_len == n && memcmp(slot->id, s, n) == 0;
}

bool cat__sym_eq(const void *ctx, uint32_t sym, const char *s, size_t n)
{
    const struct cat_symbol *y = &((const struct catalog *)ctx)->syms[sym];
    return y->len == n && memcmp(y->s, s, n) == 0;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

int catalog_open(const struct catalog_options *o, struct catalog **out)
{
    if (!o || !out || o->max_items < 1 || o->max_items > MAX_ITEMS_LIMIT || (o->dir && !*o->dir))
        return CORE_E_INVALID;
    struct catalog *c = core_xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->wmu, NULL);
    /* Writer-preferring: a stream of readers must not starve puts. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    if (pthread_rwlock_init(&c->lock, &attr) != 0)
        abort();
    pthread_rwlockattr_destroy(&attr);
    cat__ix_init(&c->ids);
    cat__ix_init(&c->sym_ix);
    c->max_items = o->max_items;
    c->slot_limit = (uint32_t)(2 * o->max_items > MIN_SLOTS ? 2 * o->max_items : MIN_SLOTS);
    int64_t syms = 4 * o->max_items;
    c->sym_limit = syms < SYMBOLS_MIN   ? SYMBOLS_MIN
                   : syms > SYMBOLS_MAX ? SYMBOLS_MAX
                                        : (uint32_t)syms;
    c->fsync = o->fsync;
    c->fd = -1;
    int rc = 0;
    if (o->dir) {
        c->dir = core_xstrdup(o->dir);
        rc = cat__store_open(c);
        if (rc < 0) {
            catalog_close(c);
            return rc;
        }
    }
    if (atomic_load(&c->live) > c->max_items)
        LOG_WARN("catalog: more items than max_items; puts of new items will fail",
                 "items=%" PRId64 " max_items=%" PRId64, (int64_t)atomic_load(&c->live),
                 c->max_items);
    LOG_INFO("catalog: opened", "dir=%s items=%" PRId64 " symbols=%u journal_lines=%" PRId64,
             c->dir ? c->dir : "(memory)", (int64_t)atomic_load(&c->live), c->nsyms,
             c->journal_lines);
    *out = c;
    return 0;
}

void catalog_close(struct catalog *c)
{
    if (!c)
        return;
    cat__store_close(c);
    for (uint32_t i = 0; i < c->nslots; i++) {
        free(c->slots[i].item);
        free(c->slots[i].id);
    }
    free(c->slots);
    free(c->free_idx);
    for (uint32_t i = 0; i < c->nsyms; i++)
        free(c->syms[i].s);
    free(c->syms);
    cat__ix_dispose(&c->ids);
    cat__ix_dispose(&c->sym_ix);
    free(c->dir);
    pthread_rwlock_destroy(&c->lock);
    pthread_mutex_destroy(&c->wmu);
    free(c);
}

/* ---- applying changes in memory ---------------------------------------------------------------
 */

/* A slot for a new id: a fresh one while under slot_limit, else a deleted one whose old id
 * leaves the index. */
static uint32_t slot_new(struct catalog *c, const char *id, size_t len, uint32_t hash)
{
    uint32_t idx = CAT_NONE;
    while (c->nslots >= c->slot_limit && c->nfree > 0) {
        uint32_t cand = c->free_idx[--c->nfree];
        c->slots[cand].in_free = false;
        if (!c->slots[cand].item) {
            idx = cand;
            break;
        }
    }
    if (idx != CAT_NONE) {
        struct cat_slot *old = &c->slots[idx];
        cat__ix_remove(&c->ids, old->hash, idx);
        free(old->id);
    } else {
        if (c->nslots == c->slots_cap) {
            c->slots_cap = c->slots_cap ? c->slots_cap * 2 : 64;
            c->slots = core_xrealloc(c->slots, (size_t)c->slots_cap * sizeof *c->slots);
        }
        idx = c->nslots++;
    }
    struct cat_slot *slot = &c->slots[idx];
    memset(slot, 0, sizeof *slot);
    slot->id = core_xstrndup(id, len);
    slot->id_len = len;
    slot->hash = hash;
    cat__ix_insert(&c->ids, hash, idx);
    return idx;
}

static uint32_t intern(struct catalog *c, const char *s, size_t n)
{
    uint32_t hash = cat__hash(s, n);
    uint32_t sym = cat__ix_find(&c->sym_ix, hash, s, n, cat__sym_eq, c);
    if (sym != CAT_NONE)
        return sym;
    if (c->nsyms == c->syms_cap) {
        c->syms_cap = c->syms_cap ? c->syms_cap * 2 : 64;
        c->syms = core_xrealloc(c->syms, (size_t)c->syms_cap * sizeof *c->syms);
    }
    sym = c->nsyms++;
    c->syms[sym] = (struct cat_symbol){core_xstrndup(s, n), n, hash};
    cat__ix_insert(&c->sym_ix, hash, sym);
    return sym;
}

/* One allocation per item: the struct, its symbol ids, title and attributes. Its id is the
 * slot's copy, which outlives it. */
static struct catalog_item *item_new(struct catalog *c, uint32_t idx, const struct cat_fields *f)
{
    size_t nsym = (size_t)f->ncategories + (size_t)f->ntags;
    size_t size =
        sizeof(struct catalog_item) + nsym * sizeof(uint32_t) + f->title_len + 1 + f->attrs_len + 1;
    struct catalog_item *it = core_xmalloc(size);
    uint32_t *syms = (uint32_t *)(it + 1);
    for (int i = 0; i < f->ncategories; i++)
        syms[i] = intern(c, f->categories[i], f->category_len[i]);
    for (int i = 0; i < f->ntags; i++)
        syms[f->ncategories + i] = intern(c, f->tags[i], f->tag_len[i]);
    char *title = (char *)(syms + nsym);
    memcpy(title, f->title, f->title_len);
    title[f->title_len] = '\0';
    char *attrs = title + f->title_len + 1;
    memcpy(attrs, f->attrs, f->attrs_len);
    attrs[f->attrs_len] = '\0';
    *it = (struct catalog_item){.idx = idx,
                                .id = c->slots[idx].id,
                                .id_len = c->slots[idx].id_len,
                                .title = title,
                                .available = f->available,
                                .published_ms = f->published_ms,
                                .updated_ms = f->updated_ms,
                                .ncategories = f->ncategories,
                                .categories = syms,
                                .ntags = f->ntags,
                                .tags = syms + f->ncategories,
                                .attributes_json = attrs};
    return it;
}

bool cat__apply_put(struct catalog *c, const char *id, size_t id_len, const struct cat_fields *f)
{
    uint32_t hash = cat__hash(id, id_len);
    uint32_t idx = cat__ix_find(&c->ids, hash, id, id_len, cat__slot_eq, c);
    if (idx == CAT_NONE)
        idx = slot_new(c, id, id_len, hash);
    struct cat_slot *slot = &c->slots[idx];
    bool created = slot->item == NULL;
    struct catalog_item *it = item_new(c, idx, f);
    free(slot->item);
    slot->item = it;
    if (created)
        atomic_fetch_add(&c->live, 1);
    return created;
}

bool cat__apply_delete(struct catalog *c, const char *id, size_t id_len)
{
    uint32_t idx = cat__ix_find(&c->ids, cat__hash(id, id_len), id, id_len, cat__slot_eq, c);
    if (idx == CAT_NONE || !c->slots[idx].item)
        return false;
    struct cat_slot *slot = &c->slots[idx];
    free(slot->item);
    slot->item = NULL;
    atomic_fetch_sub(&c->live, 1);
    if (!slot->in_free) {
        if (c->nfree == c->free_cap) {
            c->free_cap = c->free_cap ? c->free_cap * 2 : 64;
            c->free_idx = core_xrealloc(c->free_idx, (size_t)c->free_cap * sizeof *c->free_idx);
        }
        c->free_idx[c->nfree++] = idx;
        slot->in_free = true;
    }
    return true;
}

void cat__item_fields(struct catalog *c, const struct catalog_item *it, struct cat_fields *f)
{
    memset(f, 0, sizeof *f);
    f->id = it->id;
    f->id_len = it->id_len;
    f->title = it->title;
    f->title_len = strlen(it->title);
    f->ncategories = it->ncategories;
    for (int i = 0; i < it->ncategories; i++) {
        f->categories[i] = c->syms[it->categories[i]].s;
        f->category_len[i] = c->syms[it->categories[i]].len;
    }
    f->ntags = it->ntags;
    for (int i = 0; i < it->ntags; i++) {
        f->tags[i] = c->syms[it->tags[i]].s;
        f->tag_len[i] = c->syms[it->tags[i]].len;
    }
    f->attrs = it->attributes_json;
    f->attrs_len = strlen(it->attributes_json);
    f->published_ms = it->published_ms;
    f->updated_ms = it->updated_ms;
    f->available = it->available;
}

/* ---- writes --------------------------------------------------------------------------------- */

/*
 * What a bulk adds before it is applied, so the bounds are checked exactly: the ids it
 * creates (values: request numbers) and the symbols it creates (values: numbers into
 * syms). Built under the writer mutex, where the catalog does not change.
 */
struct plan {
    const struct cat_fields *fs;
    struct cat_index ids;
    struct cat_index new_syms;
    struct {
        const char *s;
        size_t len;
        uint32_t hash;
    } * syms;
    uint32_t nsyms, syms_cap;
};

static bool plan_id_eq(const void *ctx, uint32_t i, const char *s, size_t n)
{
    const struct cat_fields *f = &((const struct plan *)ctx)->fs[i];
    return f->id_len == n && memcmp(f->id, s, n) == 0;
}

static bool plan_sym_eq(const void *ctx, uint32_t k, const char *s, size_t n)
{
    const struct plan *p = ctx;
    return p->syms[k].len == n && memcmp(p->syms[k].s, s, n) == 0;
}

/* Adds s to the plan's new symbols unless the catalog or the plan has it; returns whether
 * it was added. */
static bool plan_sym(struct catalog *c, struct plan *p, const char *s, size_t n)
{
    uint32_t hash = cat__hash(s, n);
    if (cat__ix_find(&c->sym_ix, hash, s, n, cat__sym_eq, c) != CAT_NONE ||
        cat__ix_find(&p->new_syms, hash, s, n, plan_sym_eq, p) != CAT_NONE)
        return false;
    if (p->nsyms == p->syms_cap) {
        p->syms_cap = p->syms_cap ? p->syms_cap * 2 : 64;
        p->syms = core_xrealloc(p->syms, (size_t)p->syms_cap * sizeof *p->syms);
    }
    p->syms[p->nsyms].s = s;
    p->syms[p->nsyms].len = n;
    p->syms[p->nsyms].hash = hash;
    cat__ix_insert(&p->new_syms, hash, p->nsyms++);
    return true;
}

/* Checks request i against the bounds, counting what the earlier ones add. */
static int plan_one(struct catalog *c, struct plan *p, uint32_t i, int64_t *live,
                    struct event_error *err)
{
    const struct cat_fields *f = &p->fs[i];
    uint32_t hash = cat__hash(f->id, f->id_len);
    uint32_t idx = cat__ix_find(&c->ids, hash, f->id, f->id_len, cat__slot_eq, c);
    bool exists = (idx != CAT_NONE && c->slots[idx].item) ||
                  cat__ix_find(&p->ids, hash, f->id, f->id_len, plan_id_eq, p) != CAT_NONE;
    if (!exists && *live >= c->max_items) {
        snprintf(err->field, sizeof err->field, "%s", "");
        snprintf(err->message, sizeof err->message,
                 "the catalog holds its maximum of %" PRId64 " items", c->max_items);
        return CORE_E_FULL;
    }
    uint32_t before = p->nsyms;
    for (int k = 0; k < f->ncategories; k++)
        plan_sym(c, p, f->categories[k], f->category_len[k]);
    for (int k = 0; k < f->ntags; k++)
        plan_sym(c, p, f->tags[k], f->tag_len[k]);
    if ((uint64_t)c->nsyms + p->nsyms > c->sym_limit) {
        while (p->nsyms > before) {
            p->nsyms--;
            cat__ix_remove(&p->new_syms, p->syms[p->nsyms].hash, p->nsyms);
        }
        snprintf(err->field, sizeof err->field, "%s", "");
        snprintf(err->message, sizeof err->message,
                 "the catalog holds its maximum of %u distinct categories and tags", c->sym_limit);
        return CORE_E_FULL;
    }
    if (!exists) {
        cat__ix_insert(&p->ids, hash, i);
        (*live)++;
    }
    return 0;
}

static void storage_error(struct catalog_put_req *r, int rc)
{
    r->rc = rc;
    snprintf(r->err.field, sizeof r->err.field, "%s", "");
    snprintf(r->err.message, sizeof r->err.message, "storage failed: %s", core_strerror(rc));
}

int catalog_put_many(struct catalog *c, struct catalog_put_req *reqs, size_t n)
{
    if (n > INT32_MAX)
        return CORE_E_INVALID;
    struct cat_fields *fs = core_xcalloc(n ? n : 1, sizeof *fs);
    int64_t now = core_now_ms();
    for (size_t i = 0; i < n; i++) {
        reqs[i].created = false;
        memset(&reqs[i].err, 0, sizeof reqs[i].err);
        reqs[i].rc =
            cat__fields_parse(reqs[i].obj, reqs[i].id, reqs[i].id_len, false, &fs[i], &reqs[i].err);
        fs[i].updated_ms = now;
    }
    struct plan p = {.fs = fs};
    cat__ix_init(&p.ids);
    cat__ix_init(&p.new_syms);
    struct core_buf lines;
    core_buf_init(&lines);
    int64_t nlines = 0, stored = 0;
    int rc = 0;

    pthread_mutex_lock(&c->wmu);
    int64_t live = atomic_load(&c->live);
    for (size_t i = 0; i < n; i++) {
        if (reqs[i].rc == 0)
            reqs[i].rc = plan_one(c, &p, (uint32_t)i, &live, &reqs[i].err);
        if (reqs[i].rc < 0)
            continue;
        cat__store_line(&lines, fs[i].id, fs[i].id_len, &fs[i]);
        nlines++;
    }
    if (nlines > 0)
        rc = cat__store_append(c, lines.data, lines.len, nlines);
    if (rc < 0) {
        for (size_t i = 0; i < n; i++) {
            if (reqs[i].rc == 0)
                storage_error(&reqs[i], rc);
        }
    } else if (nlines > 0) {
        pthread_rwlock_wrlock(&c->lock);
        for (size_t i = 0; i < n; i++) {
            if (reqs[i].rc == 0) {
                reqs[i].created = cat__apply_put(c, fs[i].id, fs[i].id_len, &fs[i]);
                atomic_fetch_add(&c->version, 1);
                stored++;
            }
        }
        pthread_rwlock_unlock(&c->lock);
        cat__store_maybe_compact(c);
    }
    pthread_mutex_unlock(&c->wmu);

    core_buf_dispose(&lines);
    free(p.syms);
    cat__ix_dispose(&p.ids);
    cat__ix_dispose(&p.new_syms);
    for (size_t i = 0; i < n; i++)
        cat__fields_dispose(&fs[i]);
    free(fs);
    return rc < 0 ? rc : (int)stored;
}

int catalog_put(struct catalog *c, const char *id, size_t id_len, const cJSON *obj, bool *created,
                struct event_error *err)
{
    struct catalog_put_req r = {.obj = obj, .id = id, .id_len = id_len};
    int rc = catalog_put_many(c, &r, 1);
    if (rc < 0 && r.rc == 0)
        r.rc = rc;
    if (r.rc < 0) {
        if (err)
            *err = r.err;
        return r.rc;
    }
    if (created)
        *created = r.created;
    return 0;
}

int catalog_delete(struct catalog *c, const char *id, size_t id_len)
{
    if (!id || id_len == 0 || id_len > EVENT_ITEM_MAX)
        return CORE_E_NOTFOUND;
    struct core_buf line;
    core_buf_init(&line);
    pthread_mutex_lock(&c->wmu);
    int rc = CORE_E_NOTFOUND;
    uint32_t idx = cat__ix_find(&c->ids, cat__hash(id, id_len), id, id_len, cat__slot_eq, c);
    if (idx != CAT_NONE && c->slots[idx].item) {
        cat__store_line(&line, id, id_len, NULL);
        rc = cat__store_append(c, line.data, line.len, 1);
    }
    if (rc == 0) {
        pthread_rwlock_wrlock(&c->lock);
        cat__apply_delete(c, id, id_len);
        atomic_fetch_add(&c->version, 1);
        pthread_rwlock_unlock(&c->lock);
        cat__store_maybe_compact(c);
    }
    pthread_mutex_unlock(&c->wmu);
    core_buf_dispose(&line);
    return rc;
}

/* ---- reads ---------------------------------------------------------------------------------- */

int64_t catalog_count(struct catalog *c)
{
    return atomic_load(&c->live);
}

uint64_t catalog_version(struct catalog *c)
{
    return atomic_load(&c->version);
}

void catalog_read_begin(struct catalog *c)
{
    pthread_rwlock_rdlock(&c->lock);
}

void catalog_read_end(struct catalog *c)
{
    pthread_rwlock_unlock(&c->lock);
}

const struct catalog_item *catalog_find(struct catalog *c, const char *id, size_t id_len)
{
    int64_t idx = catalog_idx_find(c, id, id_len);
    return idx < 0 ? NULL : c->slots[idx].item;
}

int64_t catalog_idx_find(struct catalog *c, const char *id, size_t id_len)
{
    if (!id)
        return -1;
    uint32_t idx = cat__ix_find(&c->ids, cat__hash(id, id_len), id, id_len, cat__slot_eq, c);
    return idx == CAT_NONE ? -1 : (int64_t)idx;
}

uint32_t catalog_capacity(struct catalog *c)
{
    return c->nslots;
}

const struct catalog_item *catalog_at(struct catalog *c, uint32_t idx)
{
    return idx < c->nslots ? c->slots[idx].item : NULL;
}

void catalog_prefetch(struct catalog *c, uint32_t idx)
{
    const struct catalog_item *it = idx < c->nslots ? c->slots[idx].item : NULL;
    if (it) {
        __builtin_prefetch(it);
        __builtin_prefetch(it->id);
        __builtin_prefetch(it->categories);
    }
}

const char *catalog_symbol(struct catalog *c, uint32_t sym)
{
    return sym < c->nsyms ? c->syms[sym].s : NULL;
}

int64_t catalog_symbol_find(struct catalog *c, const char *s, size_t len)
{
    if (!s)
        return -1;
    uint32_t sym = cat__ix_find(&c->sym_ix, cat__hash(s, len), s, len, cat__sym_eq, c);
    return sym == CAT_NONE ? -1 : (int64_t)sym;
}

uint32_t catalog_symbol_count(struct catalog *c)
{
    return c->nsyms;
}

void catalog_item_json(struct catalog *c, const struct catalog_item *it, struct core_buf *out)
{
    struct cat_fields f;
    cat__item_fields(c, it, &f);
    cat__fields_json(&f, it->id, it->id_len, out);
}

int catalog_get_json(struct catalog *c, const char *id, size_t id_len, struct core_buf *out)
{
    catalog_read_begin(c);
    const struct catalog_item *it = catalog_find(c, id, id_len);
    if (it)
        catalog_item_json(c, it, out);
    catalog_read_end(c);
    return it ? 0 : CORE_E_NOTFOUND;
}
