/* Internals shared by the files of the ingest module. */
#ifndef RECSTREAM_INGEST_INT_H
#define RECSTREAM_INGEST_INT_H

#include "ingest/ingest.h"

#include <pthread.h>
#include <stdatomic.h>

/*
 * The dedup window: remembers the 128-bit hash of recent eventIds with where they were
 * stored. Bounded: at most max entries (the oldest is forgotten first) and entries older
 * than window_ms expire. Open addressing with linear probing over an index table; entries
 * live in a ring in insertion order, which makes expiry and eviction O(1).
 * Not thread-safe: the ingest mutex guards it.
 */
struct dedup_entry {
    uint64_t h1, h2;
    int64_t time_ms;
    int32_t partition;
    int64_t offset;
    struct ingest_group *group; /* non-NULL while the original's append is in flight */
    size_t group_index;         /* which record of that group */
    bool live;
};

struct dedup {
    struct dedup_entry *ring;
    size_t max;   /* ring capacity */
    size_t head;  /* next slot to write */
    size_t count; /* live + dead entries between tail and head */
    size_t live;
    uint32_t *table; /* ring index + 1; 0 = empty */
    size_t table_mask;
    int64_t window_ms;
    uint64_t evicted;
};

void ingest__dedup_init(struct dedup *d, size_t max, int64_t window_ms);
void ingest__dedup_dispose(struct dedup *d);
/* Hash of an eventId. */
void ingest__dedup_hash(const char *id, size_t n, uint64_t *h1, uint64_t *h2);
/* Finds a live entry or NULL. */
struct dedup_entry *ingest__dedup_find(struct dedup *d, uint64_t h1, uint64_t h2);
/* Inserts (evicting the oldest entry when full); returns the new entry. */
struct dedup_entry *ingest__dedup_insert(struct dedup *d, uint64_t h1, uint64_t h2,
                                         int64_t time_ms);
/* Forgets an entry (e.g. its append was refused). */
void ingest__dedup_remove(struct dedup *d, struct dedup_entry *e);
/* Drops entries older than now_ms - window. */
void ingest__dedup_expire(struct dedup *d, int64_t now_ms);

/* The dedup window (above) and the pipeline state. */
struct ingest {
    struct ingest_config cfg;
    struct evlog *log;
    struct privacy_key key;
    pthread_mutex_t mu;
    struct dedup dedup;
    struct event_decode_opts decode_opts;
    atomic_uint_fast64_t accepted, duplicates, rejected, dropped_fields, overloaded, failed,
        deadlettered, dropped_consent, aggregated_consent, pii_fields, sealed_fields;
    atomic_uint_fast64_t by_type[EVENT_TYPE_CUSTOM + 1]; /* valid events per type */
    atomic_bool log_failed;
    struct privacy_keyring *ring; /* copy of cfg.keyring, or NULL */
    _Atomic uint64_t *links;      /* recently emitted identity links (ingest_merge.c) */
    pthread_mutex_t nonce_mu;     /* guards nonces: field bundles (ingest_fields.c) */
    struct seal_nonces nonces;
    size_t links_max;
};

/* ---- schemas and dead letters (ingest_schema.c) ------------------------------------------ */

/*
 * Validates the decoded event's properties against its registered schema (explicit
 * "schema" reference, else the latest schema named like its type). On success may set
 * ev->schema to the resolved "name/M-R-A" (allocated in arena). On failure fills it->err
 * (field "properties/...", or "schema") and returns CORE_E_INVALID; errs (non-NULL whenever a
 * registry is configured) receives every schema error for the dead letter.
 */
int ingest__check_schema(struct ingest *ing, struct ingest_item *it, struct event *ev,
                         struct core_arena *arena, struct schema_errors *errs);

/* Records a rejected item in the dead-letter store (no-op without one): the event with raw
 * ids replaced by their pseudonyms, and its reasons (errs when it failed on the schema). */
void ingest__deadletter(struct ingest *ing, const struct ingest_batch *b,
                        const struct ingest_item *it, const struct schema_errors *errs);

/* ---- field retention (ingest_fields.c) --------------------------------------------------- */

/*
 * Moves the validated properties (props, the object that was validated) whose retention class
 * is sealed by cfg.epochkeys' policy out of ev->properties_json into ev->fields_sealed (both
 * allocated in arena). No-op without an epoch key store or such properties. Returns 0, or
 * CORE_E_FAILED (logged) when no epoch key could be made durable: the event is not stored.
 */
int ingest__fields_split(struct ingest *ing, const struct schema *s, const cJSON *props,
                         struct event *ev, struct core_arena *arena);

/* ---- per-user keys (ingest_seal.c) ------------------------------------------------------ */

/*
 * Gets (creating, durably) the key of every candidate record's user and points each record's
 * seal at it. When keys cannot be issued (store full or I/O error) every candidate fails with
 * CORE_E_FAILED and b->nrecs becomes 0; returns that error. No-op without a key store.
 */
int ingest__seal_keys(struct ingest *ing, struct ingest_batch *b);
/* Wipes and frees the batch's keys. */
void ingest__seal_dispose(struct ingest_batch *b);

/* ---- identity (ingest_merge.c) --------------------------------------------------------- */

/* Most "merge" records one event can add (0 when there is nothing to link). */
size_t ingest__merges_max(const struct ingest *ing);

/* Pseudonymises the event's ids under older secret versions too and writes the identity links
 * it carries (source -> target key pairs, not emitted recently) into from/to; returns their
 * count (at most ingest__merges_max). raw ids must still be in ev. */
size_t ingest__links(struct ingest *ing, const struct event *ev, char (*from)[EVENT_KEY_HEX + 1],
                     char (*to)[EVENT_KEY_HEX + 1]);

/* The consent decision for an event key under the newest version holding a record (the raw id
 * must be given: older pseudonyms are computed from it). */
enum consent_decision ingest__consent(struct ingest *ing, bool anon, const char *id, size_t n,
                                      const char *key);

void ingest__merge_init(struct ingest *ing);
void ingest__merge_dispose(struct ingest *ing);

/* Accepts registered schema names as custom event types (event_decode_opts.custom_type). */
bool ingest__custom_type(void *arg, const char *name, size_t len);

#endif
