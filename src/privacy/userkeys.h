/*
 * userkeys: one data-encryption key (DEK) per user, for erasure by crypto-shredding.
 *
 * Each pseudonymous user key (32 hex chars) gets a random 32-byte DEK and a random,
 * meaningless 12-byte key id. Log records of the user are sealed under the DEK and name only
 * the key id; the pseudonym travels inside the ciphertext. userkeys_shred forgets the DEK
 * and rewrites the store, after which the user's records cannot be opened and nothing in the
 * data directory links them (their key id) to the pseudonym.
 *
 * Storage (dir, e.g. DATA/privacy/userkeys/, 0700): "snapshot" and "journal", each a 16-byte
 * header ("RSUK", version 1, kind 'S' or 'J', 2 zero bytes, u64 generation) followed by
 * records u32 length || seal_record(data key, AD = header || u64 record number, plaintext).
 * A plaintext is pseudonym (32) || key id (12) || DEK (32); the snapshot ends with a trailer
 * record "END" || u64 entry count, so a truncated snapshot is refused. New keys are appended to
 * the journal and fdatasynced before userkeys_acquire returns (so before any record sealed
 * under them can be acknowledged). Compaction (when the journal outgrows the live entries, and
 * on every shred) writes a new snapshot and an empty journal of the next generation, each
 * through a temporary file, fsync and rename; a journal of an older generation than the
 * snapshot is stale and ignored. A torn last journal record (crash during an append that was
 * never acknowledged) is cut off; any other bad record refuses the open (CORE_E_CORRUPT).
 *
 * Remanence of overwritten or unlinked blocks on the filesystem or SSD is out of scope.
 *
 * Kafka mode (scale-out): a memory-only store (dir NULL) attached to a keys topic by
 * userkeys_kafka_open (userkeys_kafka.h) keeps the same contracts across processes: acquire
 * returns once new keys are replicated in the topic, find_id of an unknown id first reads the
 * topic to its end, and shred writes tombstones for every key id of the user.
 *
 * Threads: every function may be called from any thread. Lookups share a rwlock; creating
 * keys, compaction and shreds take a writer mutex and hold the rwlock exclusively only to
 * publish, so lookups (the log's readers, requests of known users) go on during an fsync.
 */
#ifndef RECSTREAM_USERKEYS_H
#define RECSTREAM_USERKEYS_H

#include "privacy/seal.h"

/* Length of a pseudonymous user key (hex chars, as EVENT_KEY_HEX). */
#define USERKEYS_NAME_BYTES 32

struct userkeys_options {
    const char *dir;                 /* store directory; NULL: in memory only (eval, tests) */
    const struct seal_key *data_key; /* seals the store; copied */
    int64_t max_users;               /* bound on live users (default 1000000) */
    bool fsync;                      /* fdatasync new keys before returning (default true) */
};

void userkeys_options_init(struct userkeys_options *o);

struct userkeys;

/* Opens (creating) the store and loads it. Returns 0, CORE_E_INVALID (options), CORE_E_CORRUPT
 * (logged: file and record), CORE_E_FULL (more users stored than max_users), or -errno. */
int userkeys_open(const struct userkeys_options *o, struct userkeys **out);
void userkeys_free(struct userkeys *uk);

/*
 * Fills out[i] with the key of names[i] (each USERKEYS_NAME_BYTES long), creating keys for
 * users without one; new keys are durable (journal written and, with fsync, synced) before
 * this returns. All or nothing: CORE_E_FULL when the new users would pass max_users, -errno
 * when persisting failed (no key created then).
 */
int userkeys_acquire(struct userkeys *uk, const char *const *names, size_t n, struct seal_key *out);

/* The key of a user (CORE_E_NOTFOUND when none). */
int userkeys_get(struct userkeys *uk, const char *name, struct seal_key *out);

/* The key named by id: the data key for SEAL_ID_DATA, else a user's (CORE_E_NOTFOUND when
 * unknown, i.e. shredded or never issued). */
int userkeys_find_id(struct userkeys *uk, const uint8_t id[SEAL_ID_BYTES], struct seal_key *out);

/*
 * Crypto-shredding: forgets the user's DEK and rewrites the store so that neither the DEK nor
 * the pseudonym remain in its files. Returns 0, CORE_E_NOTFOUND (no such user), or -errno
 * (the store is then unchanged on disk and in memory).
 */
int userkeys_shred(struct userkeys *uk, const char *name);

/* Live users. */
int64_t userkeys_count(struct userkeys *uk);

/* The data key the store was opened with (valid while uk lives). */
const struct seal_key *userkeys_data_key(const struct userkeys *uk);

#endif
