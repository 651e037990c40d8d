/*
 * state: the keyed state the stream processor derives from the event log, sharded by log
 * partition. A shard is a pure function of the prefix of its partition's log it has applied
 * (no wall clock, no cross-partition input), so a checkpoint of every shard with its
 * partition offset, plus replay from those offsets, reproduces exactly the state of an
 * uninterrupted run. Users live in exactly one shard (the partition is a function of the user
 * key); item state is partial per shard and merged by readers (sums, merged neighbour lists).
 *
 * Threads: one writer per shard (the processor thread that owns the partition) calls
 * apply/advance/snapshot/restore; any thread may call the read functions concurrently (they
 * take the shard's read lock for the duration of one copy; the writer holds the write lock
 * for one event at a time; the lock prefers writers so busy readers cannot starve it).
 *
 * Semantics (implementation notes, state.c):
 * - "now" is the max event time applied; windows, decay and TTL are evaluated against it.
 * - Windows are epoch-aligned tumbling bucket rings (1m: 6 x 10 s, 1h: 12 x 5 min,
 *   24h: 24 x 1 h); an event whose bucket has left the window as of now is not counted
 *   (this is what "closed" means for late events).
 * - Recent interactions hold item events except impressions; sessions pair only items with
 *   positive weight; a differing sessionId starts a new session, otherwise an inactivity gap
 *   > session_gap_ms does. Pairs with an item no longer in the shard are skipped; neighbour
 *   entries naming expired items stay until they are displaced.
 * - Decayed values are (value, time) pairs updated at the newest time seen; older additions
 *   are decayed forward to it, so the result does not depend on reading time.
 * - TTL expiry checks 2 least-recently-applied users and items per apply; max_users/items
 *   evict the least recently applied. Expired and evicted entities are counted. A "tick"
 *   control record (event.h; written by the retention job when a partition is quiet) moves
 *   "now" to its time and expires everything due, so a shard without events expires too.
 * Memory (bench/state_bench.c, x86-64): a user with one item-less event ~270 B; a user with
 * views (engagement rings allocated) ~1.4 KB plus ~32 B per recent entry; an item ~1 KB
 * (window counters 840 B) plus 32 B per neighbour, plus its whole-history co-occurrence row
 * (state_cooc.c: 16 B slots, at most 1024, i.e. up to 16 KiB for an item with 512 partners).
 */
#ifndef RECSTREAM_STATE_H
#define RECSTREAM_STATE_H

#include "core/core.h"
#include "event/event.h"

struct state_config {
    int recent_max;         /* user: last N interactions kept (default 50) */
    int64_t session_gap_ms; /* session window gap (default 30 min) */
    int covisit_window;     /* co-visitation: pair an item with the last K of the session (10) */
    int neighbours_max;     /* item: top-N co-visited neighbours kept (default 50) */
    int64_t half_life_ms;   /* decay of popularity, affinities, co-visitation (default 24 h) */
    int64_t allowed_lateness_ms; /* watermark = max event time - this (default 5 s) */
    int64_t user_ttl_ms;         /* users idle this long (event time) are expired (default 30 d) */
    int64_t item_ttl_ms;         /* items idle this long are expired (default 30 d) */
    int64_t max_users;           /* per shard; least recently active evicted beyond (default 1M) */
    int64_t max_items;           /* per shard (default 1M) */
    /* per shard: items holding a whole-history co-occurrence row (default 200,000); beyond,
     * the rows of the least recently active quarter are dropped */
    int64_t cooc_items_max;
    /* Item metadata joined at apply time (category affinities); borrowed, may be NULL. Not
     * part of the snapshot: a replay after a catalog change joins with the newer metadata
     * (a lookup join, as stream processors do with reference data). */
    struct catalog *catalog;
};

void state_config_init(struct state_config *cfg);

/* Interaction groups counted per item and window. */
enum state_group {
    STATE_G_VIEW,
    STATE_G_CLICK,
    STATE_G_CART,
    STATE_G_PURCHASE,
    STATE_G_OTHER,
    STATE_G__COUNT
};
/* Windows counted per item and per user engagement. */
enum state_window { STATE_W_1M, STATE_W_1H, STATE_W_24H, STATE_W__COUNT };

struct state_shard;

/* A shard for partition p. */
struct state_shard *state_shard_new(const struct state_config *cfg, int32_t partition);
void state_shard_free(struct state_shard *s);
/* Exchanges the contents of two shards of the same partition under both write locks, so a
 * reader holding either pointer sees one whole state or the other (the stream hands a
 * partition's restored or emptied state to the shard readers know this way). */
void state_shard_swap(struct state_shard *a, struct state_shard *b);

/*
 * Applies the event stored at offset of the shard's partition. Deterministic. Events later
 * than the watermark (event time < watermark) are "late": they update long-term state
 * (recent interactions, decayed popularity, co-visitation, CTR) but not window counts of
 * windows already closed, and are counted in the shard's late counter. Writer only.
 */
void state_shard_apply(struct state_shard *s, const struct event *ev, int64_t offset);

/*
 * Events flagged anonymous (no personalization consent) update item aggregates only
 * (window counts, popularity, context popularity, attribution), never users, sessions or
 * co-visitation. A "consent" control event clears its user's state (unless it says both
 * analytics and personalization are granted), deterministically, as part of the log.
 */

/* Removes a user's state at once (writer only, like apply; the log's consent events are how
 * a running server does it). Returns whether the shard knew the user. */
bool state_shard_user_forget(struct state_shard *s, const char *user_key);

/*
 * Identity (state_merge.c). A "merge" record (event.h: userKey = target, anonKey = source, in
 * the source's partition) forgets the source; a "merge_in" record (in the target's partition,
 * properties {"offset": the merge's offset, "state": base64 of the source's user image})
 * merges the source's state into the target and records the source among the target's aliases
 * (at most 32, oldest dropped first). Applying a merge_in twice gives the state of once.
 */

/* Appends the user's image (the snapshot's user record: recent interactions, at most
 * max_recent of the newest, session, affinities, engagement, preferences, aliases) for a
 * merge_in. Returns 0, or CORE_E_NOTFOUND when the shard has no such user. Any thread. */
int state_shard_user_image(struct state_shard *s, const char *key, int max_recent,
                           struct core_buf *out);

/* Whether the shard holds the user. Any thread. */
bool state_shard_user_known(struct state_shard *s, const char *key);

/* Copies up to max keys merged into the user (its aliases), oldest first; returns the count
 * (0 for an unknown user). Any thread. */
int state_shard_user_aliases(struct state_shard *s, const char *key, char (*out)[EVENT_KEY_HEX + 1],
                             int max);

/* Moves past the record at offset without applying anything: its key was shredded, so it
 * cannot be read (erasure by crypto-shredding). Counted (state_shard_skipped). Writer only. */
void state_shard_skip(struct state_shard *s, int64_t offset);
/* Records skipped since the shard was created (not part of snapshots). Any thread. */
uint64_t state_shard_skipped(const struct state_shard *s);

/* The shard's watermark (max event time seen - allowed lateness), and the next offset it
 * expects (last applied + 1; 0 for a new shard). */
int64_t state_shard_watermark(const struct state_shard *s);
int64_t state_shard_next_offset(const struct state_shard *s);

/* Binary snapshot (versioned, XXH3-checked) of the whole shard including its offset and
 * watermark; restore replaces the shard's contents (CORE_E_CORRUPT on a bad snapshot, which
 * leaves the shard unchanged; CORE_E_INVALID when the snapshot was taken with a different
 * state_config). Restoring and continuing gives the same state as never snapshotting. */
void state_shard_snapshot(struct state_shard *s, struct core_buf *out);
/* For a snapshot in a forked child: state_shard_hold takes the shard's read lock (no writer
 * is inside it, none can start) and state_shard_release drops it; fork while holding it, and
 * the child, whose copy of the lock is held, snapshots with state_shard_snapshot_held (the
 * same bytes as state_shard_snapshot, without taking the lock). */
void state_shard_hold(struct state_shard *s);
void state_shard_release(struct state_shard *s);
void state_shard_snapshot_held(struct state_shard *s, struct core_buf *out);
int state_shard_restore(struct state_shard *s, const void *data, size_t len);

/* Appends a canonical, sorted, human-readable text dump of everything in the shard (floats
 * printed with %.9g so dumps of equal states are byte-identical). */
void state_shard_dump(struct state_shard *s, struct core_buf *out);

/* Memory the shard uses now (bytes, approximate) and its entity counts. */
struct state_stats {
    int64_t users, items, pairs, events, late, expired, evicted, bytes;
    int64_t cooc_rows, cooc_pairs; /* whole-history co-occurrence: items with a row, entries */
};
void state_shard_stats(struct state_shard *s, struct state_stats *out);

/* ---- reads (any thread) ------------------------------------------------------------------- */

/* Appends the user's profile as JSON: {"userKey":..,"events":n,"firstSeen":..,"lastSeen":..,
 * "recent":[{"itemId":..,"eventType":..,"weight":..,"timestamp":..}],"session":{...},
 * "engagement":{"1h":{"clicks":..,"views":..,"dwellMs":..,"maxScrollDepth":..},"24h":{..}},
 * "affinities":{...},..,"mergedKeys":[..]} (mergedKeys: the user's aliases, only when there
 * are any); CORE_E_NOTFOUND when the shard has no such user. */
int state_shard_user_json(struct state_shard *s, const char *user_key, struct core_buf *out);

/* Item figures, ADDED into *v (so a reader sums over shards). */
struct state_item_view {
    bool found;
    int64_t counts[STATE_W__COUNT][STATE_G__COUNT]; /* events per window (closed + current) */
    double popularity;                              /* decayed weighted interactions */
    int64_t impressions, clicks;                    /* attributed through recId */
    int64_t last_seen_ms;
};
void state_shard_item_view(struct state_shard *s, const char *item_id, size_t len,
                           struct state_item_view *v);

/* Co-visited neighbours of an item in this shard: up to max (item id copied into out's
 * buffers), scores decayed to as_of_ms. Returns the count. */
struct state_neighbour {
    char item_id[EVENT_ITEM_MAX + 1];
    double score;
};
int state_shard_neighbours(struct state_shard *s, const char *item_id, size_t len, int64_t as_of_ms,
                           struct state_neighbour *out, int max);

/* Items of this shard ranked by count in window w for group g (g < 0: all groups), top max,
 * as (item, count) with count in score. Returns the count. */
int state_shard_top_items(struct state_shard *s, enum state_window w, int g,
                          struct state_neighbour *out, int max);

/* ---- reads for the recommender (any thread) ------------------------------------------------- */

#define STATE_READ_RECENT_MAX 64
#define STATE_READ_CATS_MAX 16
#define STATE_READ_PREFS_MAX 8
#define STATE_SYMBOL_MAX 128

struct state_user_item {
    const char *item_id; /* NUL-terminated, in the read's pool */
    uint64_t hash;       /* XXH3_64bits of the id */
    uint32_t len;
    int32_t type; /* enum event_type (custom types: EVENT_TYPE_CUSTOM) */
    double weight;
    int64_t ts;
};
struct state_user_cat {
    char name[STATE_SYMBOL_MAX + 1];
    double v; /* decayed to the shard's now */
};
/* A copy of what the recommender needs about one user. */
struct state_user_read {
    bool found;
    int64_t events, first_ms, last_ms;
    int64_t now_ms; /* the shard's event-time clock */
    int nrecent;    /* newest LAST */
    struct state_user_item recent[STATE_READ_RECENT_MAX];
    int nsession; /* current session's distinct items, newest last */
    struct state_user_item session[STATE_READ_RECENT_MAX];
    int ncats; /* category affinities, strongest first */
    struct state_user_cat cats[STATE_READ_CATS_MAX];
    int nprefs; /* stated preferences (onboarding), in given order */
    char prefs[STATE_READ_PREFS_MAX][STATE_SYMBOL_MAX + 1];
    /* the item ids, packed (a request touches a few KiB, not 2 x 64 fixed-size slots) */
    size_t pool_used;
    char pool[2 * STATE_READ_RECENT_MAX * (EVENT_ITEM_MAX + 1)];
};
/* Fills *out (out->found false when the shard has no such user). */
void state_shard_user_read(struct state_shard *s, const char *user_key,
                           struct state_user_read *out);

/* Calls fn for every co-visited neighbour of an item (scores decayed to as_of_ms) under the
 * shard's read lock; fn must only copy. Returns the count. */
typedef void (*state_score_fn)(void *arg, const char *id, size_t len, double score);
int state_shard_neighbours_each(struct state_shard *s, const char *item_id, size_t len,
                                int64_t as_of_ms, state_score_fn fn, void *arg);

/* Context popularity: the top items (decayed weighted interactions) among events whose
 * context had this key, e.g. "device:mobile", "locale:de-DE", "hour:13" (UTC hour of the
 * event). Same calling rules as neighbours_each. */
int state_shard_context_each(struct state_shard *s, const char *key, size_t len, int64_t as_of_ms,
                             state_score_fn fn, void *arg);

/* Every context list of the shard (key, item, score decayed to the shard's now), for
 * background model builds. Runs under the read lock: fn must only copy. */
void state_shard_contexts_each(struct state_shard *s,
                               void (*fn)(void *arg, const char *key, size_t klen, const char *id,
                                          size_t len, double score),
                               void *arg);

/* Every item of the shard, for background model builds: id, decayed popularity as of the
 * shard's now, interest events (views, clicks, carts, purchases: not the "other" group with
 * impressions) in the 1 h and 24 h windows, and
 * the time of the last event. Runs under the read lock: fn must only copy. */
struct state_item_brief {
    double popularity;
    int64_t count_1h, count_24h, last_ms;
};
void state_shard_items_each(struct state_shard *s,
                            void (*fn)(void *arg, const char *id, size_t len,
                                       const struct state_item_brief *b),
                            void *arg);

/* Whole-history item co-occurrence of the shard (state_cooc.c), for item-kNN model builds
 * that sum every shard's rows. A position says how far a builder has read one shard: when
 * its generation is not the shard's (a restore, a swap, another shard) or removed rows were
 * missed, cooc_changes reports every item with a row and returns true (start over);
 * otherwise the items whose row changed or went away since. fn runs under the read lock and
 * must only copy. */
struct state_cooc_pos {
    uint64_t gen, seq, ngone;
};
typedef void (*state_cooc_item_fn)(void *arg, const char *id, size_t len, uint64_t hash);
bool state_shard_cooc_changes(struct state_shard *s, const struct state_cooc_pos *since,
                              state_cooc_item_fn fn, void *arg, struct state_cooc_pos *now);
/* One item's row (hash: XXH3-64 of the id): returns its occurrence count (0: no row) and,
 * with fn, calls fn for every neighbour (id, hash, summed pair weight) under the read lock. */
typedef void (*state_cooc_entry_fn)(void *arg, const char *id, size_t len, uint64_t hash,
                                    float weight);
double state_shard_cooc_row(struct state_shard *s, const char *id, size_t len, uint64_t hash,
                            state_cooc_entry_fn fn, void *arg);

/* Recommendation attribution counters (events carrying a recId "<strategy>.<variant>.<id>"),
 * by recId prefix, ADDED into rows (matching key or a new row; at most max rows). window:
 * STATE_W_1H, STATE_W_24H, or -1 for all time. Returns the number of rows. */
struct state_ctr_row {
    char key[EVENT_RECID_MAX + 1];
    int64_t impressions, clicks, carts, purchases;
};
int state_shard_ctr(struct state_shard *s, int window, struct state_ctr_row *rows, int nrows,
                    int max);

/* The shard's event-time clock (max event or tick time applied; 0 before any event). */
int64_t state_shard_now(struct state_shard *s);

/* ---- serving state (the store module publishes it; state_serve.c) ---------------------------- */

/* The shard without its users (items, co-visitation, contexts, attribution, clock, offset), in
 * the snapshot format: state_shard_restore loads it into a shard that then has no users. Any
 * thread (takes the read lock). */
void state_shard_snapshot_aggregates(struct state_shard *s, struct core_buf *out);

/*
 * A user's serving record: what state_shard_user_read returns, as a self-checking blob
 *   u32 magic "RSU1" | u32 version | u64 XXH3-64 of the body | body
 * (varints, doubles as IEEE-754 bits; category affinities as (value, time) so a reader decays
 * them to its own clock exactly as the shard would).
 */
#define STATE_USER_BLOB_MAX (2 * STATE_READ_RECENT_MAX * (EVENT_ITEM_MAX + 40) + 8192)

/* Where a publisher is in a shard's change stream. Zero-initialise: the first call reports
 * every user. */
struct state_changes {
    uint64_t seq;   /* users applied after this are reported */
    uint64_t ngone; /* removals after this are reported */
    bool gone_lost; /* out: removals were missed (more than the ring holds, or a restore):
                     * the caller must reconcile with what it published */
};
/* Reports every user changed since c (user_fn: key, serving record, last event time) and then
 * every user removed since c and not present again (gone_fn), and advances c. Runs under the
 * read lock: the callbacks must only copy. Any thread, one caller per c. Returns the number of
 * users reported. */
typedef void (*state_user_blob_fn)(void *arg, const char *key, const void *blob, size_t len,
                                   int64_t last_ms);
typedef void (*state_user_gone_fn)(void *arg, const char *key);
int state_shard_changes(struct state_shard *s, struct state_changes *c, state_user_blob_fn user_fn,
                        state_user_gone_fn gone_fn, void *arg);
/* Whether the shard holds the user now. Any thread. */
bool state_shard_has_user(struct state_shard *s, const char *user_key);

/* Appends the serving record of one user (CORE_E_NOTFOUND when the shard has no such user).
 * Any thread. */
int state_shard_user_blob(struct state_shard *s, const char *user_key, struct core_buf *out);

/* Decodes a serving record into *out as state_shard_user_read would fill it on a shard whose
 * clock is now_ms and half-life half_life_ms (category affinities decayed to now_ms).
 * CORE_E_CORRUPT (and out->found false) on a blob that does not check out. */
int state_user_blob_decode(const void *blob, size_t len, int64_t now_ms, int64_t half_life_ms,
                           struct state_user_read *out);

#endif
