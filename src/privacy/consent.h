/*
 * Consent: per-user consent state (analytics, personalization) keyed by pseudonym, kept in
 * memory and persisted as a journal with compaction in DATA/privacy/consent/:
 *
 *   journal.ndjson   one line per change, fsynced before consent_set returns
 *   snapshot.ndjson  every entry's bounded history at compaction time, written atomically
 *
 * Lines: {"n":N,"key":"<32 hex>","analytics":B,"personalization":B,"source":"..","ts":MS,
 * "updated":MS}; the snapshot starts with {"upto":N} (journal lines with n <= N are already
 * in it, so a crash between the snapshot's rename and the journal's truncation replays
 * nothing twice). Every change is also written to the audit log (when one is configured)
 * under a subject reference that is neither the raw id nor the pseudonym.
 *
 * Sealed at rest under the data key (the lines hold pseudonyms): a journal line is stored as
 * `<n> <sealed>` (seal_line of the JSON line, associated data "recstream consent journal <n>",
 * so a line moved to another number does not open); the snapshot is one seal_file image
 * (associated data "recstream consent snapshot"). Files of the unsealed format of an older
 * recstream (a line starting with '{') are refused with a message, not migrated.
 *
 * Threads: consent_decide / consent_get from any thread (a read lock held for one lookup;
 * a lock-free fast path while the store is empty); consent_set from any thread (writers are
 * serialised; the read lock is blocked only for the in-memory update, never during I/O).
 */
#ifndef RECSTREAM_PRIVACY_CONSENT_H
#define RECSTREAM_PRIVACY_CONSENT_H

#include "core/core.h"
#include "privacy/audit.h"
#include "privacy/privacy.h"
#include "privacy/seal.h"

#define CONSENT_KEY_HEX 32
#define CONSENT_SOURCE_MAX 64
#define CONSENT_HISTORY_MAX 8 /* per user, oldest forgotten first (the audit log keeps all) */

/* What happens to events of a user without personalization consent. */
enum consent_policy {
    CONSENT_POLICY_DROP,      /* not stored */
    CONSENT_POLICY_AGGREGATE, /* stored flagged anonymous: item aggregates only */
};

/* The outcome for one event. */
enum consent_decision {
    CONSENT_ALLOW,     /* stored and applied to per-user state */
    CONSENT_AGGREGATE, /* stored flagged anonymous */
    CONSENT_DROP,      /* not stored */
};

struct consent_options {
    const char *dir;     /* DATA/privacy/consent */
    int64_t max_entries; /* users with a consent record (default 1,000,000; full: 507) */
    bool required;       /* users never asked are not allowed (strict opt-in) */
    enum consent_policy policy;
    bool fsync;                      /* fsync the journal (default true) */
    struct audit *audit;             /* borrowed, may be NULL */
    const struct privacy_key *key;   /* required: subject references derive from it */
    const struct seal_key *data_key; /* required: seals the journal and snapshot (copied) */
};
void consent_options_init(struct consent_options *o);

struct consent_state {
    bool analytics, personalization;
    char source[CONSENT_SOURCE_MAX + 1];
    int64_t ts;      /* when the user gave it (client time; server time when not given) */
    int64_t updated; /* when the server stored it */
};

/* A user's current state (history[n - 1]) and its bounded history, oldest first. */
struct consent_view {
    int n;
    struct consent_state history[CONSENT_HISTORY_MAX];
};

struct consent;

/* Opens the store (creating dir 0700), loading the snapshot then the journal. A torn last
 * journal line is cut off (logged); any other bad line refuses the open with
 * CORE_E_CORRUPT, naming file and line in the log. */
int consent_open(const struct consent_options *o, struct consent **out);
void consent_close(struct consent *c);

/*
 * Stores a new state for key (32 hex chars) with the server time as updated: journal line
 * fsynced, then an audit entry (actor, e.g. "api" or an API key id; what changed), then the
 * in-memory update. *prev (may be NULL) gets whether a previous state existed and it.
 * Returns 0, CORE_E_FULL (max_entries users already have a record; nothing stored),
 * CORE_E_INVALID (bad key or source), or a storage error (the change may be in the journal
 * without its audit entry: the client's retry writes both).
 */
int consent_set(struct consent *c, const char *key, const struct consent_state *st,
                const char *actor, bool *had_prev, struct consent_state *prev);

/* Copies the user's view; CORE_E_NOTFOUND when the user has no record. */
int consent_get(struct consent *c, const char *key, struct consent_view *out);

/* The decision for an event of key (NULL or "" = no such key: allowed), under the store's
 * policy and default. */
enum consent_decision consent_decide(struct consent *c, const char *key);

/* The stricter of two decisions. */
static inline enum consent_decision consent_stricter(enum consent_decision a,
                                                     enum consent_decision b)
{
    return a > b ? a : b;
}

/* The audit subject reference of a pseudonym: hex of 128 bits of HMAC-SHA-256 under a key
 * derived from the pseudonymisation secret for this purpose only. It proves which user an
 * entry concerns to whoever holds the secret and the user's id, yet it is not the pseudonym,
 * so erasing the pseudonym from the data directory leaves the audit chain intact. */
void consent_subject_ref(struct consent *c, const char *key, char out[CONSENT_KEY_HEX + 1]);

/*
 * Erasure: removes the user's record and history from memory and from the store's files
 * (compaction: a new snapshot without it, an empty journal). Returns 0, CORE_E_NOTFOUND (no
 * record: the files were compacted all the same), CORE_E_INVALID (bad key) or a storage error
 * (the record is gone from memory; a retry rewrites the files). The audit log keeps its
 * entries, which name subject references only. Any thread.
 */
int consent_forget(struct consent *c, const char *key);

/* Entries (users with a record) now. */
int64_t consent_count(struct consent *c);

#endif
