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
 */
#ifndef RECSTREAM_PRIVACY_AUDIT_H
#define RECSTREAM_PRIVACY_AUDIT_H

#include "core/core.h"

#define AUDIT_HASH_HEX 64
#define AUDIT_FIELD_MAX 256   /* actor, action, subject, source */
#define AUDIT_DETAIL_MAX 4096 /* the detail object as compact JSON */
#define AUDIT_LINE_MAX 8192   /* an entry never exceeds this */

struct audit;

/*
 * Opens (creating it and its directory, 0700/0600) the audit log at path and continues its
 * chain: the last entry's hash is checked against its bytes. A torn last line (no trailing
 * newline: a crash during its write, before its fsync, so never acknowledged) is cut off and
 * logged. A last complete line that does not verify refuses the open (CORE_E_CORRUPT,
 * logged): run `recstream audit verify`. Other errors: -errno.
 */
int audit_open(const char *path, struct audit **out);
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

/* Entries written so far (the last seq) and the head hash (65 bytes). Thread-safe. */
void audit_head(struct audit *a, int64_t *seq, char head[AUDIT_HASH_HEX + 1]);

/* ---- verification (used by `recstream audit verify` and by audit_open) --------------------- */

struct audit_verify {
    int64_t entries;               /* entries that verified */
    char head[AUDIT_HASH_HEX + 1]; /* hash of the last entry that verified */
    int64_t bad_line;              /* 1-based line of the first problem, 0 when none */
    char problem[160];             /* what is wrong at bad_line */
    bool torn_tail;                /* the last line has no newline (crash while writing) */
};

/* Walks the whole chain of the file at path. Returns 0 (see v->bad_line for the outcome) or
 * an I/O error (-errno, CORE_E_NOTFOUND when the file does not exist). */
int audit_verify_file(const char *path, struct audit_verify *v);

/* Checks one line (without its newline) against the expected seq and prev; fills seq and the
 * line's hash. Returns 0 or CORE_E_CORRUPT with a reason in problem. */
int audit_check_line(const char *line, size_t len, int64_t want_seq, const char *want_prev,
                     char hash[AUDIT_HASH_HEX + 1], char *problem, size_t psize);

#endif
