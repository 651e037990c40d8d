/*
 * erasure: the receipts of right-to-erasure requests, in DATA/privacy/erasures/.
 *
 * One file per request, "<id>.rcpt" (0600, written atomically), sealed as a whole file under
 * the data key (seal_file, AD "recstream erasure <id>"). Its plaintext is one JSON object:
 *
 *   {"erasureId":"<32 hex>","subject":"<subject_ref>","idType":"user"|"anonymous",
 *    "status":"pending"|"complete"|"failed","requested":MS,"completed":MS|null,
 *    "steps":[{"step":"forget","done":MS},...],"error":".."|null,
 *    "pending":{"key":"<pseudonym>","id":"<raw id>"}}
 *
 * "pending" is present only while the erasure is not complete (pending, or failed and still
 * retried): resuming after a crash needs the
 * pseudonym (to shred its key) and the raw id (to find dead letters). It is dropped by the
 * write that marks the receipt complete, so a completed receipt names the user only by its
 * subject reference (the audit log's, see consent_subject_ref), never by pseudonym or id.
 * The erasure id is random (not derived from the user).
 *
 * Threads: every function may be called from any thread (one mutex).
 */
#ifndef RECSTREAM_PRIVACY_ERASURE_H
#define RECSTREAM_PRIVACY_ERASURE_H

#include "core/core.h"
#include "privacy/seal.h"

#define ERASURE_ID_HEX 32
#define ERASURE_KEY_HEX 32
#define ERASURE_RAW_MAX 256
#define ERASURE_MAX 100000 /* receipts kept; more requests are refused (CORE_E_FULL) */

/* The steps of an erasure, in the order the job runs them. */
enum erasure_step {
    ERASURE_STEP_FORGET,      /* control event appended and applied: state forgotten */
    ERASURE_STEP_SHRED,       /* the user's key shredded: their log records unreadable */
    ERASURE_STEP_CONSENT,     /* consent records removed */
    ERASURE_STEP_DEADLETTERS, /* dead letters of the user removed, files rewritten */
    ERASURE_STEP_CHECKPOINT,  /* a new checkpoint written, every older one deleted */
    ERASURE_STEPS
};

enum erasure_status { ERASURE_PENDING, ERASURE_COMPLETE, ERASURE_FAILED };

/* "forget", "shred", ...; "pending", "complete", "failed". */
const char *erasure_step_name(enum erasure_step step);
const char *erasure_status_name(enum erasure_status st);

struct erasure_receipt {
    char id[ERASURE_ID_HEX + 1];
    char subject[ERASURE_KEY_HEX + 1];
    bool anon;
    enum erasure_status status;
    int64_t requested_ms, completed_ms;
    int64_t step_ms[ERASURE_STEPS]; /* 0: not done yet */
    char error[128];
    /* only while pending */
    char key[ERASURE_KEY_HEX + 1];
    char raw[ERASURE_RAW_MAX + 1];
    size_t raw_len;
};

struct erasures;

/* Opens (creating, 0700) the receipt directory and loads every receipt. A receipt that does
 * not open or parse refuses the open (CORE_E_CORRUPT, logged with its file). */
int erasures_open(const char *dir, const struct seal_key *data_key, struct erasures **out);
void erasures_free(struct erasures *e);

/* Creates a pending receipt with a fresh random id for the user (pseudonym key, raw id of
 * raw_len bytes) and writes it durably. Returns 0 with a copy in *out, CORE_E_FULL
 * (ERASURE_MAX receipts), CORE_E_INVALID or a storage error. */
int erasures_create(struct erasures *e, const char *key, const char *raw, size_t raw_len, bool anon,
                    const char *subject, struct erasure_receipt *out);

/* Writes r (status, steps, error) over its stored receipt, dropping the pending part when r is
 * no longer pending. Returns 0 or a storage error (the stored receipt is then unchanged). */
int erasures_update(struct erasures *e, const struct erasure_receipt *r);

/* Copies the receipt id; CORE_E_NOTFOUND when unknown. */
int erasures_get(struct erasures *e, const char *id, struct erasure_receipt *out);

/* Copies the oldest receipt not complete (pending or failed: both are retried);
 * CORE_E_NOTFOUND when there is none. */
int erasures_next_pending(struct erasures *e, struct erasure_receipt *out);

/* Appends the receipts of subject (completed and pending) as a JSON array of receipt
 * objects (erasure_receipt_json). */
void erasures_of_subject_json(struct erasures *e, const char *subject, struct core_buf *out);

/* Appends the public JSON of a receipt (never the pending part):
 * {"erasureId","status","idType","requested","completed","steps":[{"step","done"}],"error"}. */
void erasure_receipt_json(const struct erasure_receipt *r, struct core_buf *out);

#endif
