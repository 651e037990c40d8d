/*
 * ingest: the collector pipeline without HTTP: decode -> validate -> pseudonymise ->
 * dedup (eventId) -> partition -> append to the event log, with completion once the log's
 * durability policy is met. The HTTP API, replay and tests all call it directly.
 */
#ifndef RECSTREAM_INGEST_H
#define RECSTREAM_INGEST_H

#include "core/core.h"
#include "event/event.h"
#include "evlog/evlog.h"
#include "privacy/consent.h"
#include "privacy/epochkeys.h"
#include "privacy/privacy.h"
#include "privacy/userkeys.h"
#include "schema/registry.h"

struct deadletters;

struct ingest_config {
    int64_t dedup_window_ms; /* a repeated eventId within this window is not stored again */
    int64_t dedup_max;       /* bound on remembered eventIds (oldest forgotten first) */
    /* Optional, borrowed (must outlive the ingest): registered schemas validate `properties`
     * (an event's "schema":"name/M-R-A", else the latest schema named like its eventType)
     * and make registered names valid custom event types; rejected events go, pseudonymised
     * and with their reasons, to the dead-letter store. */
    struct schema_registry *registry;
    struct deadletters *deadletters;
    /* Optional, borrowed: consent is enforced per event, by the pseudonym of its userId and
     * of its anonymousId (the stricter decision wins): CONSENT_DROP = not stored (the item
     * reports dropped_consent), CONSENT_AGGREGATE = stored flagged anonymous. */
    struct consent *consent;
    /* Data minimisation (default on): context.ip truncated or dropped (ip_mode), a
     * context.userAgent replaced by its device class (context.device). */
    bool minimise;
    enum privacy_ip_mode ip_mode;
    /* Optional, borrowed: per-user keys (encryption at rest). Each record is sealed under its
     * user's key, created on the user's first event; NULL seals under the log's data key. */
    struct userkeys *userkeys;
    /* Optional, borrowed: epoch keys for field retention (privacy/epochkeys.h). Properties of a
     * retention class its policy seals are stored in a sealed field bundle under the class's
     * epoch key instead of in the event's properties. NULL: every property stays in place. */
    struct epochkeys *epochkeys;
    /* Optional, borrowed (copied at ingest_new): every version of the pseudonymisation secret,
     * newest first (privacy.h); the key passed to ingest_new must be its newest. With older
     * versions, a user's first event (per link, see links_max) emits a "merge" moving the
     * state under each older pseudonym to the newest one, and consent is looked up under the
     * newest version that holds a record. NULL: only the key of ingest_new. */
    const struct privacy_keyring *keyring;
    /* Identity links (anonymousId + userId, older pseudonym -> newest) emitted recently and not
     * emitted again: a direct-mapped set of this many slots (default 2^20, 8 MiB; duplicates are
     * harmless, the merge is idempotent). */
    size_t links_max;
};

void ingest_config_init(struct ingest_config *cfg);

/* Counters since start (read with ingest_stats; updated atomically). */
struct ingest_stats {
    uint64_t accepted;           /* records newly appended */
    uint64_t duplicates;         /* records acknowledged as repeats of an earlier eventId */
    uint64_t rejected;           /* records failing validation */
    uint64_t dropped_fields;     /* unknown fields removed (data minimisation) */
    uint64_t overloaded;         /* batches refused because the log queue was full */
    uint64_t failed;             /* records whose append failed */
    uint64_t deadlettered;       /* rejected records recorded in the dead-letter store */
    uint64_t dropped_consent;    /* valid records not stored: no consent (see consent.h) */
    uint64_t aggregated_consent; /* records stored flagged anonymous (aggregates only) */
    uint64_t pii_fields;         /* properties stored that their schema marks "x-pii" */
    uint64_t sealed_fields;      /* events whose short-class properties went into a bundle */
    uint64_t by_type[EVENT_TYPE_CUSTOM + 1]; /* valid events per type id (custom: last) */
    uint64_t dedup_entries;                  /* eventIds currently remembered */
    uint64_t dedup_evicted; /* eventIds forgotten early because dedup_max was reached */
};

/* One input record of a batch, and its outcome. */
struct ingest_item {
    const cJSON *value; /* the event object (borrowed; must outlive the batch) */
    int32_t partition;  /* explicit partition (Kafka REST), or -1 to hash the user key */
    bool prekeyed;      /* replay of a dead letter: userId/anonymousId hold the stored
                         * pseudonyms (32 hex chars), not raw ids */
    /* outcome, valid once the batch completed */
    int status; /* 0 stored or duplicate; CORE_E_INVALID (see err); other: failure */
    bool duplicate;
    bool dropped_consent; /* status 0 but not stored: the user's consent does not allow it
                           * (out_partition / out_offset stay -1) */
    int32_t out_partition;
    int64_t out_offset;
    struct event_error err;
};

/* Completion of a batch: every item has its outcome. Runs on the submitting thread (when
 * nothing had to wait) or on the log's writer thread; must not block. */
typedef void (*ingest_done_fn)(void *arg);

struct ingest_group; /* internal completion bookkeeping */

/* A batch of records from one request. Caller-owned; must stay alive until done ran. */
struct ingest_batch {
    struct ingest_item *items;
    size_t n;
    const char *source;  /* where the records came from (e.g. the route), for dead letters */
    bool no_deadletters; /* do not record rejections (dead-letter replay) */
    bool control;        /* the server's own control events ("consent"): accepted as such and
                          * exempt from consent enforcement */
    /* internal */
    struct core_arena arena;
    struct core_buf payload;
    struct evlog_record *recs;
    size_t *rec_item;       /* recs[j] belongs to items[rec_item[j]]; SIZE_MAX: a record of
                             * the collector's own (an identity "merge"), not of an item */
    size_t cap;             /* capacity of recs, rec_item and seals */
    struct seal_key *seals; /* recs[j].seal (per-user keys), wiped at dispose */
    size_t nrecs;
    struct ingest_group *group;
    ingest_done_fn done;
    void *done_arg;
};

void ingest_batch_init(struct ingest_batch *b, struct ingest_item *items, size_t n);
void ingest_batch_dispose(struct ingest_batch *b);

struct ingest;

/* Creates the pipeline over log (borrowed; must outlive it) with a copy of key, and
 * rebuilds the dedup window by reading the log's recent records. */
int ingest_new(const struct ingest_config *cfg, struct evlog *log, const struct privacy_key *key,
               struct ingest **out);
void ingest_free(struct ingest *ing);

/*
 * Validates, pseudonymises, dedups, partitions and appends the batch, then runs done(arg)
 * exactly once (possibly before this returns, possibly on the log's thread) when every item
 * has its outcome. Items the log refused carry CORE_E_FULL (queue full: answer 429; nothing
 * of the batch was stored) or another negative code (log not writable). Invalid records
 * never block valid ones. Returns 0. Must not be called holding a lock that done takes.
 */
int ingest_batch_submit(struct ingest *ing, struct ingest_batch *b, ingest_done_fn done, void *arg);

void ingest_stats(struct ingest *ing, struct ingest_stats *out);

/* The pseudonymous key of a raw user id (as stored in the log), for lookups. Any thread. */
void ingest_pseudonym_user(struct ingest *ing, const char *id, size_t n, char *out);

/* The same for an anonymousId (the "anon:" domain). */
void ingest_pseudonym_anon(struct ingest *ing, const char *id, size_t n, char *out);

/* The pseudonyms of a raw id (anon: an anonymousId) under every secret version still held,
 * newest first, into out (33 bytes each); returns the count (1 without a keyring). Any thread. */
int ingest_pseudonym_versions(struct ingest *ing, bool anon, const char *id, size_t n,
                              char (*out)[33]);

/*
 * The stream runtime's merge hook (stream_config.merge_fn, arg: the ingest): appends the
 * "merge_in" record that carries a source user's image (state_shard_user_image) to the
 * target's partition, for the "merge" at (partition, offset). Its eventId
 * "merge-<partition>-<offset>" is deterministic, so a re-append after a crash and replay is a
 * duplicate that dedup drops. Blocks until the record is durable (or known as a duplicate).
 * Nothing is appended (0 returned) when the target has no personalization consent by now.
 * Returns 0 or a negative error (nothing stored). Any thread but the log's.
 */
int ingest_merge_in_append(void *ing, int32_t partition, int64_t offset, const struct event *merge,
                           const void *image, size_t len);

/* The consent decision for a raw id's events as ingest makes it: under the newest secret
 * version holding a consent record (CONSENT_ALLOW without a consent store). Any thread. */
enum consent_decision ingest_consent_decide(struct ingest *ing, bool anon, const char *id,
                                            size_t n);

/* ingest_consent_decide with the id's pseudonym under the newest secret version (key, as
 * ingest_pseudonym_versions gives it first) already computed. */
enum consent_decision ingest_consent_decide_key(struct ingest *ing, bool anon, const char *id,
                                                size_t n, const char *key);

/* The pseudonym whose consent record that decision uses (the newest version's when none has
 * one); out gets 33 bytes. Any thread. */
void ingest_consent_key(struct ingest *ing, bool anon, const char *id, size_t n, char *out);

/* Readiness: the log opened, recovered and is writable. */
bool ingest_ready(struct ingest *ing);

#endif
