/*
 * The privacy audit log: append-only, hash-chained JSON lines in DATA/privacy/audit.log.
 *
 *   {"seq":N,"ts":MS,"actor":"..","action":"..","subject":"..","source":"..","detail":{..},
 *    "prev":"<64 hex>","hash":"<64 hex>"}
 *
 * hash = SHA-256 over the line's bytes up to (not including) `,"hash":` — that prefix holds
 * prev, the previous entry's hash (64 zeros for the first entry) — so editing, removing or
 * reordering any entry breaks the chain at that line. Subjects are references (see
 * consent_subject_ref), never raw user ids or pseudonyms. Every entry is fsynced before
 * audit_append returns.
 *
 * Sealed at rest: each entry is stored as one text line `<seq> <sealed>`, where <sealed> is
 * seal_line (XChaCha20-Poly1305 under the data key, base64) of the entry above with the
 * associated data "recstream audit <seq>". The seq in clear only says which associated data
 * to use: changing it, moving a line, or flipping any byte makes the line fail to open. The
 * chain is over the plaintext entries, so verification proves order and content as before.
 * A file of the unsealed format (a line starting with '{') is refused, not migrated.
 */
#ifndef RECSTREAM_PRIVACY_AUDIT_H
#define RECSTREAM_PRIVACY_AUDIT_H

#include "core/core.h"
#include "privacy/seal.h"

#define AUDIT_HASH_HEX 64
#define AUDIT_FIELD_MAX 256   /* actor, action, subject, source */
#define AUDIT_DETAIL_MAX 4096 /* the detail object as compact JSON */
#define AUDIT_LINE_MAX 8192   /* an entry never exceeds this */
/* A stored (sealed) line never exceeds this: seq, space, base64 of nonce + entry + tag. */
#define AUDIT_STORED_LINE_MAX (24 + (AUDIT_LINE_MAX + SEAL_OVERHEAD + 2) / 3 * 4)

struct audit;

/*
 * Opens (creating it and its directory, 0700/0600) the audit log at path, sealed under key
 * (the data key; copied, wiped at close), and continues its
 * chain: the last entry's hash is checked against its bytes. A torn last line (no trailing
 * newline: a crash during its write, before its fsync, so never acknowledged) is cut off and
 * logged. A last complete line that does not verify refuses the open (CORE_E_CORRUPT,
 * logged): run `recstream audit verify`. A file in the unsealed format of an older
 * recstream is refused (CORE_E_INVALID, logged). Other errors: -errno.
 */
int audit_open(const char *path, const struct seal_key *key, struct audit **out);
void audit_close(struct audit *a);

/*
 * Appends one entry and fsyncs it. actor, action, subject_ref, source: plain strings (NULL
 * = ""), at most AUDIT_FIELD_MAX bytes; detail_json: a JSON object (NULL = {}) of at most
 * AUDIT_DETAIL_MAX bytes, re-serialised compactly. Returns 0, CORE_E_INVALID (bad detail or
 * field too long; nothing written) or a storage error. Thread-safe; the signature suits an
 * API hook for admin actions (api_config's audit_fn).
 */
int audit_append(struct audit *a, const char *actor, const char *action, const char *subject_ref,
                 const char *source, const char *detail_json);

/*
 * Rotation (called by the retention job). When the current file's first entry is period_ms
 * old or more, the file (complete, every entry fsynced) is renamed to
 * "<dir>/audit.<its first seq, 20 digits>.log" and a new current file starts with an anchor
 * entry (action "audit.anchor", detail previousFile, previousHead, previousLastSeq) that
 * continues the chain: seq and prev go on across files, so verification walks them as one
 * chain. *rotated tells whether it happened. Returns 0 or a storage error. Thread-safe.
 */
int audit_rotate(struct audit *a, int64_t period_ms, bool *rotated);

/* Deletes rotated files whose last entry (the file's mtime: rotated files are never written
 * again) is older than before_ms, oldest first and stopping at the first younger one, so the
 * remaining files are a suffix of the chain; never the current file. *removed gets the
 * count. Returns 0 or -errno. Thread-safe. */
int audit_prune(struct audit *a, int64_t before_ms, int *removed);

/* Entries written so far (the last seq) and the head hash (65 bytes). Thread-safe. */
void audit_head(struct audit *a, int64_t *seq, char head[AUDIT_HASH_HEX + 1]);

/* ---- verification (used by `recstream audit verify` and by audit_open) --------------------- */

struct audit_verify {
    int64_t entries;                 /* entries that verified */
    char head[AUDIT_HASH_HEX + 1];   /* hash of the last entry that verified */
    int64_t first_seq;               /* seq of the oldest entry still present (1 unless
                                        retention deleted older files) */
    char anchor[AUDIT_HASH_HEX + 1]; /* that entry's prev, taken as given (zeros from seq 1) */
    int files;                       /* files walked (rotated ones, then the current) */
    char file[4200];                 /* the file bad_line is in (the last walked) */
    int64_t bad_line;                /* 1-based line of the first problem, 0 when none */
    char problem[160];               /* what is wrong at bad_line */
    bool torn_tail;                  /* the last line has no newline (crash while writing) */
};

/* Opens every line under key and walks the whole chain: the rotated files of path (oldest
 * first, see audit_rotate), then path itself. Returns 0 (see
 * v->bad_line for the outcome) or an I/O error (-errno, CORE_E_NOTFOUND when the file does not
 * exist). */
int audit_verify_file(const char *path, const struct seal_key *key, struct audit_verify *v);

/* Appends to out the stored form of entry (n bytes of plaintext JSON, no newline) with the
 * given seq: "<seq> <sealed>", no newline. */
void audit_line_seal(const struct seal_key *key, int64_t seq, const char *entry, size_t n,
                     struct core_buf *out);

/* Opens one stored line (without its newline): sets *seq to its clear seq and appends the
 * plaintext entry to out. Returns 0, or CORE_E_CORRUPT with a reason in problem (unsealed
 * format, malformed, or the line does not authenticate under key and its seq). The entry
 * itself is not checked: see audit_check_line. */
int audit_line_open(const struct seal_key *key, const char *line, size_t len, int64_t *seq,
                    struct core_buf *out, char *problem, size_t psize);

/* Checks one line (without its newline) against the expected seq and prev; fills seq and the
 * line's hash. Returns 0 or CORE_E_CORRUPT with a reason in problem. */
int audit_check_line(const char *line, size_t len, int64_t want_seq, const char *want_prev,
                     char hash[AUDIT_HASH_HEX + 1], char *problem, size_t psize);

#endif
