/*
 * The erasure job of `recstream serve`: runs right-to-erasure requests (DELETE
 * /v1/users/{id}) step by step on one background thread, recording each step in the request's
 * receipt (privacy/erasure.h), and resumes pending receipts after a restart.
 *
 * It lives in cli because it drives every module the server wires together: ingest (the
 * control event), stream (waiting for it to be applied, the checkpoint), the user key store,
 * consent, dead letters and the audit log. Steps are idempotent and every attempt runs all of
 * them (only the first completion's time is recorded), so a crash anywhere is repaired by
 * running the request again: e.g. a restart after the shred but before the checkpoint
 * restores an older checkpoint that still holds the user's state, and the next attempt's
 * forget clears it before the new checkpoint is written.
 */
#ifndef RECSTREAM_CLI_SERVE_ERASURE_H
#define RECSTREAM_CLI_SERVE_ERASURE_H

#include "ingest/deadletter.h"
#include "ingest/ingest.h"
#include "privacy/audit.h"
#include "privacy/consent.h"
#include "privacy/erasure.h"
#include "stream/stream.h"

struct serve_erasure_config {
    struct erasures *receipts; /* all borrowed; must outlive the job */
    struct ingest *ing;
    struct stream *stream;
    struct userkeys *userkeys;
    struct consent *consent;
    struct deadletters *deadletters; /* may be NULL */
    struct audit *audit;
    int64_t deadline_ms;   /* a request not complete by then is marked failed (and retried) */
    int64_t step_delay_ms; /* pause after each step (tests: a window to kill the server) */
};

struct serve_erasure;

/* Starts the job thread, which picks up pending receipts at once. Returns 0. */
int serve_erasure_start(const struct serve_erasure_config *cfg, struct serve_erasure **out);

/* Stops the thread after the step in hand (NULL is fine). Pending receipts stay pending. */
void serve_erasure_stop(struct serve_erasure *j);

/*
 * The API's erasure hook: records a pending receipt for the user (key: the pseudonym; raw:
 * the id of the request, raw_len bytes), audits the request under actor, and waits (up to
 * the deadline) until the user's state is forgotten, so the user leaves serving before the
 * reply. *out gets the receipt. Returns 0 (also when the wait timed out: the job goes on),
 * CORE_E_FULL, or a storage error (nothing to undo: no receipt was written). Any thread.
 */
int serve_erasure_request(void *job, const char *raw, size_t raw_len, const char *key, bool anon,
                          const char *actor, struct erasure_receipt *out);

#endif
