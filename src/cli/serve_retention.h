/*
 * The retention job of `recstream serve` (serve_retention.c): one thread enforcing the
 * --retention-* TTLs every interval, with its counters for /metrics.
 */
#ifndef RECSTREAM_CLI_SERVE_RETENTION_H
#define RECSTREAM_CLI_SERVE_RETENTION_H

#include "evlog/evlog.h"
#include "privacy/audit.h"
#include "privacy/epochkeys.h"
#include "stream/stream.h"

struct serve_retention_config {
    struct evlog *log;           /* borrowed; the file backend */
    struct stream *stream;       /* borrowed; its checkpoints bound what may be deleted */
    int64_t interval_ms;         /* period of the job (> 0) */
    bool ticks;                  /* append tick records to quiet partitions (state expiry) */
    int64_t events_ms;           /* events ingested longer ago are deleted (0: kept) */
    struct audit *audit;         /* borrowed, may be NULL */
    int64_t audit_rotate_ms;     /* the audit log rotates into a new file this often (> 0) */
    int64_t audit_ms;            /* rotated audit files whose last entry is older go (0: kept) */
    int64_t user_ttl_ms;         /* for the log line only: state enforces it */
    int64_t item_ttl_ms;         /* likewise */
    struct epochkeys *epochkeys; /* borrowed, may be NULL: field retention keys whose epoch
                                  * lies beyond their class's TTL are destroyed each pass */
};

struct serve_retention;

/* Starts the job's thread (first pass after one interval). Returns 0, CORE_E_INVALID or
 * -errno. Stop it before the log and the stream. */
int serve_retention_start(const struct serve_retention_config *cfg, struct serve_retention **out);

/* Stops and joins the thread (a pass in progress finishes first), frees. NULL is a no-op. */
void serve_retention_stop(struct serve_retention *r);

/* Appends the job's counters (and the state's expiry count) in Prometheus text format; fits
 * api_config.metrics_fn with r as its argument. Any thread. */
void serve_retention_metrics(void *r, struct core_buf *out);

/*
 * Field retention (serve_fields.c): sets ek's policy from the TTLs (ms; 0 = off/default):
 * "short" properties are sealed under epoch keys when short_ms is shorter than events_ms
 * (epoch_ms, or the TTL / 8 and at least 1 h); "standard" keys live events_ms and "long"
 * ones long_ms (default events_ms). Returns 0, or CORE_E_INVALID (logged) when long_ms is
 * shorter than events_ms.
 */
int serve_fields_policy(struct epochkeys *ek, int64_t events_ms, int64_t short_ms, int64_t long_ms,
                        int64_t epoch_ms);

#endif
