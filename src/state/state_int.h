/*
 * state internals shared by state.c (apply), state_snap.c (snapshot/restore) and
 * state_read.c (dump and reads). Everything the writer owns lives in struct st so restore
 * can build a complete replacement and swap it in under the write lock.
 */
#ifndef RECSTREAM_STATE_INT_H
#define RECSTREAM_STATE_INT_H

#include "state/state.h"

#include <string.h>

#include <pthread.h>

/* Interned, reference-counted string (item ids, session ids, custom type names). */
struct st_str {
    struct st_str *hnext;
    uint64_t hash;
    uint32_t refs;
    uint32_t len;
    struct st_item *item; /* the item with this id while there is one (st__item_add/free) */
    char s[];
};

/* Chained hash table; nodes embed struct st_hnode as their first member. */
struct st_hnode {
    struct st_hnode *hnext;
    uint64_t hash;
};
struct st_htab {
    struct st_hnode **b;
    size_t mask;
    size_t n;
};

/* Doubly linked list in apply order (head = least recently active). */
struct st_lnode {
    struct st_lnode *prev, *next;
};
struct st_lru {
    struct st_lnode *head, *tail;
};

/* Tumbling, epoch-aligned bucket rings: 1 min = 6 x 10 s, 1 h = 12 x 5 min, 24 h = 24 x 1 h. */
#define ST_RING_TOTAL 42
extern const int st_ring_n[STATE_W__COUNT];
extern const int st_ring_off[STATE_W__COUNT];
extern const int64_t st_ring_width[STATE_W__COUNT];
#define ST_EMPTY INT64_MIN /* head of a ring that has no bucket yet */

#define ST_AFF_MAX 16
#define ST_ENG_W 2 /* user engagement: 1 h and 24 h (STATE_W_1H, STATE_W_24H) */
#define ST_ENG_TOTAL 36

struct st_recent {
    struct st_str *item;
    struct st_str *tname; /* custom type name; NULL for built-in types */
    double weight;
    int64_t ts;
    int32_t type;
};

struct st_sitem {
    struct st_str *item;
    int64_t ts;
};

struct st_affinity {
    int32_t type;
    struct st_str *tname; /* custom types only */
    double v;
    int64_t ts;
};

struct st_ebucket {
    uint32_t clicks, views;
    double dwell_ms;
    double max_scroll;
};

struct st_eng {
    int64_t head[ST_ENG_W];
    struct st_ebucket b[ST_ENG_TOTAL];
};

#define ST_CAFF_MAX 16  /* category affinities per user */
#define ST_ALIAS_MAX 32 /* keys merged into a user (anonymous ids, older pseudonyms) */

/* A key whose state was merged into the user (state_merge.c), with the offset of the newest
 * merge of it applied (in the source key's partition: merges of one source are ordered). */
struct st_alias {
    char key[EVENT_KEY_HEX + 1];
    int64_t offset;
};
#define ST_PREF_MAX 8 /* stated preference categories per user */

struct st_user {
    struct st_hnode h; /* first */
    struct st_lnode l;
    char key[EVENT_KEY_HEX + 1];
    int64_t first_ms, last_ms, events;
    struct st_recent *recent; /* ring: nrecent entries from rhead (oldest) */
    int32_t nrecent, rhead, rcap;
    struct st_str *sess_id; /* NULL: session cut by inactivity */
    int64_t sess_start, sess_last, sess_count;
    struct st_sitem *sess_items; /* oldest first, distinct, at most covisit_window */
    int32_t nsess;
    int32_t naff, affcap;
    struct st_affinity *aff;  /* at most ST_AFF_MAX */
    struct st_eng *eng;       /* allocated on the first engagement event */
    struct st_affinity *caff; /* category affinities (tname = category), ST_CAFF_MAX slots */
    int32_t ncaff;
    int32_t nprefs;
    struct st_str *prefs[ST_PREF_MAX]; /* from the latest "preferences" event */
    int32_t nalias;
    struct st_alias *alias; /* ST_ALIAS_MAX slots, allocated on the first merge; oldest first */
    uint64_t pub_seq;       /* d->pub_seq when last applied (0: restored); state_serve.c */
};

/* Attribution counters of one recommendation strategy/variant (the recId's prefix). */
enum { ST_CTR_IMP, ST_CTR_CLICK, ST_CTR_CART, ST_CTR_PURCHASE, ST_CTR_N };
#define ST_CTX_MAX 512      /* context keys per shard ("device:..", "locale:..", "hour:..") */
#define ST_CTR_KEYS_MAX 256 /* per shard; further prefixes count as "other" */
struct st_ctr {
    struct st_hnode h; /* first */
    struct st_str *key;
    int64_t head[ST_ENG_W]; /* 1 h and 24 h rings, laid out as struct st_eng */
    uint32_t b[ST_ENG_TOTAL][ST_CTR_N];
    int64_t total[ST_CTR_N];
};

struct st_nb {
    struct st_str *id;
    double score;
    int64_t ts;
    /* log2(score) + ts / half_life: orders entries exactly as their scores decayed to any
     * common time would, without an exp2 per entry (derived; recomputed on restore). */
    double key;
};

/* Whole-history co-occurrence row of an item in this partition (state_cooc.c). */
#define ST_CO_ROW_MAX 512
struct st_co_entry {
    struct st_str *k; /* neighbour id; NULL = empty slot */
    float v;          /* summed pair weights */
};
struct st_co {
    struct st_co_entry *e; /* open addressing by the id's address */
    uint32_t n, cap;
    double occ;     /* positive events of the item */
    uint64_t stamp; /* d->co_seq when it last changed (not in snapshots) */
};

struct st_item {
    struct st_hnode h; /* first */
    struct st_lnode l;
    struct st_str *id;
    int64_t last_ms;
    int64_t head[STATE_W__COUNT];
    uint32_t cnt[ST_RING_TOTAL][STATE_G__COUNT];
    double pop;
    int64_t pop_ts;
    int64_t impressions, clicks;
    struct st_nb *nb;
    int32_t nnb, nbcap;
    int32_t nb_lo;    /* 1 + index of the lowest-key neighbour of a full list; 0 = not known */
    struct st_co *co; /* NULL until the item has a positive event */
};

/* Everything a shard holds apart from its lock. */
struct st {
    struct state_config cfg;
    int32_t partition;
    bool have_now;
    int64_t now; /* max event time seen */
    int64_t next_offset;
    int64_t events, late, expired, evicted, pairs, bytes;
    uint64_t skipped; /* erased records moved past (not in snapshots) */
    struct st_htab strs, users, items;
    struct st_lru ulru, ilru;
    struct st_htab ctxs; /* context pseudo-items ("device:mobile"): neighbours = top items */
    struct st_htab ctrs; /* struct st_ctr by recId prefix */
    /* Change tracking for serving-state publication (state_serve.c; not in snapshots): every
     * apply stamps its user with ++pub_seq; removed users' keys go to a bounded ring. */
    uint64_t pub_seq;
    uint64_t ngone;                  /* users removed so far; the ring holds the last ST_GONE_MAX */
    char (*gone)[EVENT_KEY_HEX + 1]; /* allocated on the first removal */
    /* Co-occurrence change tracking for model builders (state_cooc.c; not in snapshots): a
     * process-unique generation per shard image, a stamp per change, removed rows' ids. */
    uint64_t co_gen, co_seq, co_ngone;
    struct st_str **co_gone; /* ST_CO_GONE_MAX slots, allocated on the first removal */
    int64_t co_rows, co_pairs;
};
#define ST_GONE_MAX 4096
#define ST_CO_GONE_MAX 1024

struct state_shard {
    pthread_rwlock_t lock;
    struct st d;
};

#define USER_OF(ln) ((struct st_user *)((char *)(ln)-offsetof(struct st_user, l)))
#define ITEM_OF(ln) ((struct st_item *)((char *)(ln)-offsetof(struct st_item, l)))

/* ---- the codec of snapshots and serving records (state_snap.c, state_serve.c) ---- */
static inline void st__put_i(struct core_buf *b, int64_t v)
{
    core_buf_put_varint(b, core_zigzag(v));
}

static inline void st__put_f(struct core_buf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    core_buf_put_u64(b, u);
}

/* A bounds-checked reader; the first failure sticks and every later read yields 0. */
struct st_rd {
    const uint8_t *p, *end;
    bool bad;
    uint32_t version; /* of the snapshot being read */
};

static inline uint64_t st__get_u(struct st_rd *r)
{
    uint64_t v = 0;
    if (!r->bad && core_get_varint(&r->p, r->end, &v) < 0)
        r->bad = true;
    return r->bad ? 0 : v;
}

static inline int64_t st__get_i(struct st_rd *r)
{
    return core_unzigzag(st__get_u(r));
}

static inline double st__get_f(struct st_rd *r)
{
    uint64_t u = 0;
    if (!r->bad && core_get_u64(&r->p, r->end, &u) < 0)
        r->bad = true;
    double v;
    memcpy(&v, &u, sizeof v);
    return r->bad ? 0.0 : v;
}

/* A count of at most max entries. */
static inline int st__get_n(struct st_rd *r, int64_t max)
{
    uint64_t v = st__get_u(r);
    if (v > (uint64_t)max) {
        r->bad = true;
        return 0;
    }
    return (int)v;
}

/* ---- state.c ---- */
void st__init(struct st *d, const struct state_config *cfg, int32_t partition);
void st__dispose(struct st *d);
uint64_t st__hash(const void *p, size_t n);
struct st_str *st__intern(struct st *d, const char *p, size_t n);
void st__unref(struct st *d, struct st_str *str);
struct st_user *st__user_find(struct st *d, const char *key, size_t n);
struct st_user *st__user_add(struct st *d, const char *key, size_t n);
struct st_item *st__item_find(struct st *d, struct st_str *id);
struct st_item *st__item_add(struct st *d, struct st_str *id);
void *st__alloc(struct st *d, size_t n);
void *st__realloc(struct st *d, void *p, size_t old, size_t n);
void st__free(struct st *d, void *p, size_t n);
/* v decayed from t0 to t1 with the shard's half-life (t1 < t0 grows it). */
double st__decay(const struct st *d, double v, int64_t t0, int64_t t1);
/* Orders strings: bytes, then length. */
int st__strcmp(const struct st_str *a, const struct st_str *b);
int64_t st__floordiv(int64_t a, int64_t b);
int st__floormod(int64_t a, int64_t b);
/* Type name of a recent entry / affinity (built-in name or the custom name). */
const char *st__type_name(int32_t type, const struct st_str *tname, size_t *len);

void st__htab_init(struct st *d, struct st_htab *t);
void st__htab_insert(struct st *d, struct st_htab *t, struct st_hnode *h);
void st__htab_remove(struct st_htab *t, struct st_hnode *h);
struct st_str *st__ref(struct st_str *str);
void st__acc_add(const struct st *d, double *v, int64_t *ts, double w, int64_t t);
int st__ring_slot(const struct st *d, int w, int64_t *head, int64_t ts,
                  void (*clear)(void *arg, int slot), void *arg);
void st__nb_add(struct st *d, struct st_item *it, struct st_str *nb_id, double sc, int64_t t);

void st__user_touch(struct st *d, struct st_user *u);
void st__user_free(struct st *d, struct st_user *u);

/* ---- state_snap.c: one user's image (the snapshot's user record), for merges ---- */
/* Appends u as in a snapshot, with only its newest max_recent recent entries. */
void st__user_put(struct core_buf *b, const struct st_user *u, int max_recent);
/* Parses one user image (st__user_put, snapshot version 3) into d, which must not hold that
 * key. Returns the user, or NULL when the image is malformed (nothing is left in d). */
struct st_user *st__user_parse(struct st *d, const void *data, size_t len);

/* ---- state_merge.c ---- */
/* Applies a merge_in record: merges the source's state into the target (see state.h). */
void st__merge_in(struct st *d, const struct event *ev);
/* ---- state_serve.c ---- */
/* Records a removed user's key for the publisher (called by user_free). */
void st__user_gone(struct st *d, const char *key);

/* ---- state_reco.c: category affinity, preferences, context popularity, CTR ---- */
void st__reco_apply(struct st *d, struct st_user *u, struct st_item *it, const struct event *ev,
                    double w);
void st__reco_user_free(struct st *d, struct st_user *u);
void st__reco_dispose(struct st *d);
struct st_item *st__ctx_add(struct st *d, struct st_str *key);
struct st_item *st__ctx_find(const struct st *d, const char *key, size_t len);
struct st_ctr *st__ctr_get(struct st *d, struct st_str *key);
struct st_ctr *st__ctr_find(const struct st *d, const char *key, size_t len);

/* ---- state_cooc.c: whole-history co-occurrence ---- */
uint64_t st__co_generation(void);
/* Pairs it (an event of weight w by u, applied before u's recent ring takes it) with u's
 * previous items. */
void st__co_apply(struct st *d, const struct st_user *u, struct st_item *it, double w);
/* Adds w to it's row entry for nb (snapshot restore, apply). */
void st__co_add(struct st *d, struct st_item *it, struct st_str *nb, float w);
/* it's row, created if needed, stamped as changed. */
struct st_co *st__co_row(struct st *d, struct st_item *it);
/* Room for n entries in it's row without rehashing (restore). */
void st__co_reserve(struct st *d, struct st_item *it, uint32_t n);
void st__co_free(struct st *d, struct st_item *it);
/* Drops the rows of the least recently active items until 3/4 of cooc_items_max are left. */
void st__co_trim(struct st *d);
void st__co_dispose(struct st *d);

/* The item with id p[0..n) (hash h = st__hash(p, n)), without interning. */
struct st_item *st__item_lookup(const struct st *d, uint64_t h, const char *p, size_t n);

/* The key of a neighbour entry (see struct st_nb). */
double st__nb_key(const struct st *d, double score, int64_t ts);

#endif
