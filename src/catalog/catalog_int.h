/*
 * Internals shared by the files of the catalog module: the catalog struct, the hash index
 * used for item ids and symbols, the validated fields of one item, and the store (journal
 * and snapshot files).
 */
#ifndef RECSTREAM_CATALOG_INT_H
#define RECSTREAM_CATALOG_INT_H

#include "catalog/catalog.h"

#include <pthread.h>
#include <stdatomic.h>

#define CAT_NONE UINT32_MAX /* "no value" from an index lookup */

/* ---- hash index ------------------------------------------------------------------------- */

/* Compares the key of value val with s[0..n). */
typedef bool (*cat_key_eq_fn)(const void *ctx, uint32_t val, const char *s, size_t n);

struct cat_ix_ent {
    uint32_t hash; /* low 32 bits of the key's XXH3 */
    uint32_t val1; /* value + 1; 0 = empty */
};

/* Open addressing with linear probing over uint32 values whose keys live elsewhere (the
 * caller's eq callback reads them). Never more than half full. */
struct cat_index {
    struct cat_ix_ent *ents;
    uint32_t mask;
    uint32_t n;
};

uint32_t cat__hash(const char *s, size_t n);
void cat__ix_init(struct cat_index *ix);
void cat__ix_dispose(struct cat_index *ix);
/* The value whose key is s[0..n), or CAT_NONE. */
uint32_t cat__ix_find(const struct cat_index *ix, uint32_t hash, const char *s, size_t n,
                      cat_key_eq_fn eq, const void *ctx);
/* Adds val (its key must not be in the index yet). */
void cat__ix_insert(struct cat_index *ix, uint32_t hash, uint32_t val);
/* Removes val, which is in the index under hash. */
void cat__ix_remove(struct cat_index *ix, uint32_t hash, uint32_t val);

/* ---- one item's validated fields ------------------------------------------------------------ */

/* The fields of an item as text, before its symbols are interned: what catalog_put accepts,
 * what the journal stores and what readers get back. Strings are borrowed (from the JSON
 * tree or the item) except attrs, which cat__fields_parse allocates (cat__fields_dispose). */
struct cat_fields {
    const char *id; /* the item's id (the argument, or the object's "itemId") */
    size_t id_len;
    char id_num[24]; /* an integer "itemId" as decimal text (id may point here) */
    const char *title;
    size_t title_len;
    int ncategories, ntags;
    const char *categories[CATALOG_CATEGORIES_MAX];
    size_t category_len[CATALOG_CATEGORIES_MAX];
    const char *tags[CATALOG_TAGS_MAX];
    size_t tag_len[CATALOG_TAGS_MAX];
    const char *attrs; /* compact JSON object */
    size_t attrs_len;
    bool attrs_owned;
    int64_t published_ms; /* 0 = absent */
    int64_t updated_ms;
    bool available;
};

/* Checks an item id: 1..EVENT_ITEM_MAX bytes of UTF-8 without NUL. */
int cat__id_check(const char *id, size_t len, struct event_error *err);

/*
 * Validates obj into f. id (may be NULL) is what a member "itemId" must equal; without id
 * the member is required and gives the id. f must not be copied (f->id may point into it).
 * restore
 * (journal and snapshot lines) also reads "updatedAt", which a put ignores so that a GET
 * reply can be PUT back. Returns 0 or CORE_E_INVALID with err naming the field as a JSON
 * pointer ("/title", "/tags/3", "/foo" for an unknown key).
 */
int cat__fields_parse(const cJSON *obj, const char *id, size_t id_len, bool restore,
                      struct cat_fields *f, struct event_error *err);
void cat__fields_dispose(struct cat_fields *f);
/* Appends the item object; with id, "itemId" comes first. */
void cat__fields_json(const struct cat_fields *f, const char *id, size_t id_len,
                      struct core_buf *out);

/* ---- the catalog ---------------------------------------------------------------------------- */

/* One idx. Its id stays (and stays in the index) after a delete, so a re-put of the id gets
 * its idx back; only when slots run out is a deleted slot given to a new id. */
struct cat_slot {
    char *id;
    size_t id_len;
    uint32_t hash;
    struct catalog_item *item; /* NULL when deleted */
    bool in_free;              /* listed in free_idx */
};

struct cat_symbol {
    char *s;
    size_t len;
    uint32_t hash;
};

struct catalog {
    /* Writers (put, delete, compaction) hold wmu for the whole operation, journal I/O
     * included; they take lock for writing only to publish the change, so readers never
     * wait for an fsync. Readers take lock for reading; writers read freely under wmu. */
    pthread_mutex_t wmu;
    pthread_rwlock_t lock;

    struct cat_slot *slots;
    uint32_t nslots, slots_cap, slot_limit;
    uint32_t *free_idx; /* deleted slots, reused once nslots reaches slot_limit */
    uint32_t nfree, free_cap;
    struct cat_index ids;

    struct cat_symbol *syms;
    uint32_t nsyms, syms_cap, sym_limit;
    struct cat_index sym_ix;

    int64_t max_items;
    atomic_int_fast64_t live;
    atomic_uint_fast64_t version;

    /* store; dir NULL = in memory only */
    char *dir;
    bool fsync;
    int fd;                /* the journal, O_APPEND */
    int64_t journal_bytes; /* its size */
    int64_t journal_lines;
    int64_t compact_at; /* compaction is tried once journal_lines exceeds this */
};

bool cat__slot_eq(const void *ctx, uint32_t idx, const char *s, size_t n);
bool cat__sym_eq(const void *ctx, uint32_t sym, const char *s, size_t n);

/* Applies a validated put or a delete in memory (loading, or a writer holding the write
 * lock). put returns whether the id was new. */
bool cat__apply_put(struct catalog *c, const char *id, size_t id_len, const struct cat_fields *f);
bool cat__apply_delete(struct catalog *c, const char *id, size_t id_len);
/* Fills f from a stored item (borrowing its strings). Readers or writers. */
void cat__item_fields(struct catalog *c, const struct catalog_item *it, struct cat_fields *f);

/* ---- store (catalog_store.c) ------------------------------------------------------------ */

/* Loads DIR/snapshot.ndjson then DIR/journal.ndjson and opens the journal for appends. */
int cat__store_open(struct catalog *c);
void cat__store_close(struct catalog *c);
/* Appends lines (whole NDJSON lines, nlines of them) and fsyncs per the options. On failure
 * nothing of them stays in the file. Writers only. */
int cat__store_append(struct catalog *c, const char *lines, size_t len, int64_t nlines);
/* Writes a snapshot and empties the journal when the journal has grown past max(1000,
 * 2 x live items). Failures are logged; the journal stays valid. Writers only. */
void cat__store_maybe_compact(struct catalog *c);
/* Appends the journal line of a put or a delete (f NULL). */
void cat__store_line(struct core_buf *out, const char *id, size_t id_len,
                     const struct cat_fields *f);

#endif
