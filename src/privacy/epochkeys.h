/*
 * epochkeys: keys per retention class and time epoch, for field retention by crypto-shredding
 * (docs/PRIVACY.md, "Field retention").
 *
 * A schema may give a property a retention class ("x-retention": short | standard | long).
 * Events have one TTL (--retention-events) and their records are sealed and immutable, so a
 * property whose class lives shorter is not stored in the event's properties: ingest seals it
 * into a field bundle (fieldseal.h) under the epoch key K(class, epoch) whose epoch covers the
 * record's ingest time. The retention job destroys a key once its whole epoch lies beyond the
 * class's TTL; from then on the field cannot be read by anyone, wherever the record lives
 * (segment files, Kafka topics, backups), while the rest of the event stays readable.
 *
 * A key is identified by (class, start): its epoch is [start, end) in wall-clock ms. Epochs
 * start at multiples of their length, so the key a record names stays the same whatever
 * epoch length a later run is given (a new length only shapes the keys created from then on).
 *
 * Storage (path, e.g. DATA/privacy/epochkeys, 0600): one file sealed under the data key
 * (seal_file, AD "recstream epochkeys"): "RSEK", u8 version 1, u32 count, then per key u8
 * class, u64 start, u64 end, 32 key bytes. Keys are created rarely (one per class and epoch),
 * so every change rewrites the whole file atomically (temporary file, fsync, rename, fsync of
 * the directory) before the new key is used or the destroyed key is reported gone. A file
 * that does not open (tampered, truncated, another data key) refuses the open.
 *
 * Threads: every function may be called from any thread (one mutex; lookups hold it for a
 * table scan of at most max_keys entries, creation and destruction also for the rewrite).
 */
#ifndef RECSTREAM_EPOCHKEYS_H
#define RECSTREAM_EPOCHKEYS_H

#include "privacy/seal.h"

/* Retention classes, numbered as enum schema_retention (short, standard, long). */
#define EPOCHKEYS_CLASSES 3

/* Shortest epoch derived from a TTL (an explicit epoch_ms may be shorter, e.g. in tests). */
#define EPOCHKEYS_EPOCH_MIN_MS (3600LL * 1000)

struct epochkeys_options {
    const char *path;                /* store file; NULL: in memory only (tests, readers) */
    const struct seal_key *data_key; /* seals the store; copied */
    int64_t max_keys;                /* bound on stored keys (default 4096) */
    bool fsync;                      /* fsync every rewrite (default true) */
};

void epochkeys_options_init(struct epochkeys_options *o);

/*
 * Which classes are sealed, and for how long their keys live. ttl_ms[c] > 0 with sealed[c]:
 * fields of class c go into bundles under keys of epoch_ms[c] (> 0), destroyed once
 * end + ttl_ms[c] has passed. A class not sealed (any more) keeps keys that exist until
 * end + its ttl_ms (0: kept).
 */
struct epochkeys_policy {
    bool sealed[EPOCHKEYS_CLASSES];
    int64_t ttl_ms[EPOCHKEYS_CLASSES];
    int64_t epoch_ms[EPOCHKEYS_CLASSES];
};

/* The epoch length for a TTL: TTL / 8, at least EPOCHKEYS_EPOCH_MIN_MS (docs/PRIVACY.md). */
int64_t epochkeys_epoch_for_ttl(int64_t ttl_ms);

struct epochkeys;

/* Opens (the file may be missing: an empty store) and loads the store. Returns 0,
 * CORE_E_INVALID (options), CORE_E_CORRUPT (logged: the file does not open or is malformed),
 * CORE_E_FULL (more keys stored than max_keys) or -errno. */
int epochkeys_open(const struct epochkeys_options *o, struct epochkeys **out);
void epochkeys_free(struct epochkeys *ek);

/* Sets the policy (copied). Any thread; takes effect for the next call. */
void epochkeys_set_policy(struct epochkeys *ek, const struct epochkeys_policy *pol);

/* Whether fields of class cls are sealed under epoch keys. NULL ek: false. */
bool epochkeys_class_sealed(struct epochkeys *ek, int cls);

/*
 * The key of class cls (sealed by the policy) whose epoch holds t_ms, created when none does;
 * a new key is durable before this returns. *start_ms names it. Returns 0, CORE_E_INVALID
 * (class not sealed), CORE_E_FULL (max_keys reached) or -errno (nothing created).
 */
int epochkeys_acquire(struct epochkeys *ek, int cls, int64_t t_ms, struct seal_key *out,
                      int64_t *start_ms);

/* The key (cls, start_ms): 0, or CORE_E_NOTFOUND (destroyed, or never created). */
int epochkeys_get(struct epochkeys *ek, int cls, int64_t start_ms, struct seal_key *out);

/*
 * Destroys every key whose epoch ended at least its class's TTL before now_ms and rewrites the
 * store without them (durably) before returning. *destroyed (may be NULL) gets the count.
 * Returns 0 or -errno (the store is then unchanged in memory and on disk).
 */
int epochkeys_expire(struct epochkeys *ek, int64_t now_ms, size_t *destroyed);

/* Keys stored. */
size_t epochkeys_count(struct epochkeys *ek);

#endif
