/*
 * catalog: the item catalog (metadata of the items users interact with), persisted under
 * DATA/catalog and restored on start. Items carry a title, categories, tags, free attributes,
 * a publication time and an availability flag. The processor joins events with it (category
 * affinity) and the recommender reads it (category / content candidates, availability,
 * diversity, reasons).
 *
 * Items get a dense index (idx) that is stable for the life of the process, and categories
 * and tags are interned into dense symbol ids, so readers can use small integer arrays.
 *
 * Threads: any thread may call every function. Writers (put/delete/bulk) serialise on an
 * internal lock; readers bracket lookups with catalog_read_begin/end (a shared lock held for
 * the duration of one request's lookups; pointers returned inside the bracket are valid
 * until catalog_read_end). Brackets do not nest (the lock prefers writers), and a thread
 * inside one must not put or delete. Writers hold the lock exclusively only while they
 * publish a change in memory, never during journal I/O.
 *
 * An idx is never given to another id while its item lives, and a re-put of a deleted id
 * gets its old idx back. Memory stays bounded: deleted slots are handed to new ids once
 * 2 x max_items slots exist (catalog_version changes, so derived data is rebuilt anyway).
 */
#ifndef RECSTREAM_CATALOG_H
#define RECSTREAM_CATALOG_H

#include "core/core.h"
#include "event/event.h"

#define CATALOG_TITLE_MAX 512
#define CATALOG_CATEGORIES_MAX 16
#define CATALOG_TAGS_MAX 32
#define CATALOG_SYMBOL_MAX 128      /* bytes in one category or tag */
#define CATALOG_ATTRIBUTES_MAX 8192 /* serialised attributes object */

struct catalog;

struct catalog_options {
    const char *dir;   /* DATA/catalog; created when missing; NULL = in memory only */
    int64_t max_items; /* more live items than this: put fails with CORE_E_FULL (default 10M) */
    bool fsync;        /* fsync the journal before a write returns (default true) */
};
void catalog_options_init(struct catalog_options *o);

/* Opens (creating or restoring) the catalog. CORE_E_INVALID for bad options, -errno on I/O
 * errors, CORE_E_CORRUPT when a snapshot line or a journal line other than the last does not
 * parse (logged with the file and line; a torn last journal line is cut off instead). */
int catalog_open(const struct catalog_options *o, struct catalog **out);
/* Closes and frees c (NULL is fine) once no other thread uses it. */
void catalog_close(struct catalog *c);

/* One item as readers see it (inside a read bracket). */
struct catalog_item {
    uint32_t idx;   /* dense, stable for the process lifetime */
    const char *id; /* NUL-terminated */
    size_t id_len;
    const char *title;    /* NUL-terminated, "" when absent */
    bool available;       /* false: never recommended */
    int64_t published_ms; /* 0 when absent */
    int64_t updated_ms;   /* wall-clock time of the last put */
    int ncategories;
    const uint32_t *categories; /* symbol ids */
    int ntags;
    const uint32_t *tags;        /* symbol ids */
    const char *attributes_json; /* compact JSON object, "{}" when absent */
};

/* Creates or replaces item id from a JSON object:
 * {"title"?:str,"categories"?:[str],"tags"?:[str],"attributes"?:{},"publishedAt"?:ms|RFC3339,
 *  "available"?:bool (default true)}. Unknown keys, wrong types, too many or too long values
 * fail with CORE_E_INVALID and err naming the field. Durable (journal, fsync per options)
 * before it returns. *created tells whether the id was new. Errors: CORE_E_INVALID (err
 * filled; fields named as JSON pointers: "/title", "/tags/2", "/foo" for an unknown key),
 * CORE_E_FULL (max_items live items, or too many distinct categories and tags), -errno when
 * the journal cannot be written (nothing changed). null members count as absent; a member
 * "itemId" must equal id, and "updatedAt" is ignored, so a GET reply can be PUT back. */
int catalog_put(struct catalog *c, const char *id, size_t id_len, const cJSON *obj, bool *created,
                struct event_error *err);

/* Removes an item: CORE_E_NOTFOUND when absent. Durable before it returns (-errno when the
 * journal cannot be written; then it is not removed). */
int catalog_delete(struct catalog *c, const char *id, size_t id_len);

/* Appends the item as JSON ({"itemId":..,"title":..,"categories":[..],"tags":[..],
 * "attributes":{..},"publishedAt":..,"available":..,"updatedAt":..}); CORE_E_NOTFOUND when
 * absent. publishedAt is null when absent; times are ms since the epoch. Takes the read lock:
 * not inside a read bracket (see catalog_item_json). */
int catalog_get_json(struct catalog *c, const char *id, size_t id_len, struct core_buf *out);

/* Live items, the version (incremented by every successful put/delete; readers use it to
 * know when derived data is stale) and the number of symbols. */
int64_t catalog_count(struct catalog *c);
uint64_t catalog_version(struct catalog *c);

/* ---- reads inside a bracket ---------------------------------------------------------------- */
void catalog_read_begin(struct catalog *c);
void catalog_read_end(struct catalog *c);

/* The live item with this id, or NULL. */
const struct catalog_item *catalog_find(struct catalog *c, const char *id, size_t id_len);
/* Iteration: idx from 0 to catalog_capacity()-1; returns NULL for deleted slots. */
uint32_t catalog_capacity(struct catalog *c);
const struct catalog_item *catalog_at(struct catalog *c, uint32_t idx);
/* Inside a read bracket: asks the cache for the item at slot idx, its id and its categories
 * (a hint: a caller about to look up several items issues these first, so their misses
 * overlap). */
void catalog_prefetch(struct catalog *c, uint32_t idx);
/* A symbol's text (NUL-terminated), or NULL when out of range; symbol_find returns the id or
 * -1. Symbols are never removed. */
const char *catalog_symbol(struct catalog *c, uint32_t sym);
int64_t catalog_symbol_find(struct catalog *c, const char *s, size_t len);

/* ---- additions ----------------------------------------------------------------------------- */

/* One put of a bulk: obj and id are the arguments of catalog_put (id NULL: the object's
 * "itemId", a string or an integer, gives it); rc, created and err are its outcome. */
struct catalog_put_req {
    const cJSON *obj;
    const char *id;
    size_t id_len;
    int rc; /* 0 stored, CORE_E_INVALID (err says why), CORE_E_FULL, or the storage error */
    bool created;
    struct event_error err;
};

/* catalog_put for n objects in order, with one journal write and one fsync: the valid ones
 * are stored even when others fail, and a later put of the same id replaces an earlier one.
 * Returns how many were stored, or a negative storage error (-errno) when the journal could
 * not be written: then none was stored and each valid request's rc is that error. */
int catalog_put_many(struct catalog *c, struct catalog_put_req *reqs, size_t n);

/* Inside a read bracket: appends it (from catalog_find / catalog_at) as catalog_get_json
 * does, and the number of symbols (ids 0..n-1). Brackets do not nest, so inside one use
 * these rather than catalog_get_json. */
void catalog_item_json(struct catalog *c, const struct catalog_item *it, struct core_buf *out);
uint32_t catalog_symbol_count(struct catalog *c);
/* Inside a read bracket: the idx of id, also when its item was deleted (until the slot goes
 * to another id), or -1. Lets a listing continue after an item deleted between pages. */
int64_t catalog_idx_find(struct catalog *c, const char *id, size_t id_len);

#endif
