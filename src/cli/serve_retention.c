/*
 * The retention job of `recstream serve`: one thread that, every interval, enforces the
 * TTLs whose data it can reach from outside its owner (docs/PRIVACY.md, "Retention").
 *
 * Events: the log's quiet partitions get their aged active segment rolled
 * (evlog_file_roll_aged), then each partition's oldest whole segments go when their newest
 * record was ingested more than events_ms ago and they lie wholly below the partition's offset
 * in the newest checkpoint (stream_checkpointed_offset), so neither an unprocessed record nor
 * one that recovery from that checkpoint would replay is ever deleted.
 *
 * Audit: the log rotates into a new file every audit_rotate_ms (audit_rotate; the chain goes
 * on across files through an anchor entry) and whole rotated files older than audit_ms are
 * deleted (audit_prune).
 *
 * Per-user and item state expire inside the state shards themselves (state_config's
 * user_ttl_ms, item_ttl_ms, applied by the processor in event time); this job only reports
 * them. The job owns no data, so it lives with the serve wiring, not in a module below.
 */
#include "cli/serve_retention.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

struct serve_retention {
    struct serve_retention_config cfg;
    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* stop */
    bool stop;
    _Atomic uint64_t runs, segments_deleted, records_deleted, segments_rolled, errors;
    _Atomic uint64_t audit_rotated, audit_removed;
};

/* One pass over the log. */
static void run_events(struct serve_retention *r)
{
    struct evlog *log = r->cfg.log;
    int rolled = 0;
    int rc = evlog_file_roll_aged(log, &rolled);
    if (rc < 0) {
        atomic_fetch_add(&r->errors, 1);
        LOG_ERROR("retention: cannot roll aged segments", "err=\"%s\"", core_strerror(rc));
        return;
    }
    atomic_fetch_add(&r->segments_rolled, (uint64_t)rolled);
    int64_t before = core_now_ms() - r->cfg.events_ms;
    for (int32_t p = 0; p < log->partitions; p++) {
        int64_t upto = stream_checkpointed_offset(r->cfg.stream, p);
        int deleted = 0;
        int64_t records = 0;
        rc = evlog_file_delete_segments(log, p, upto, before, &deleted, &records);
        if (rc < 0)
            atomic_fetch_add(&r->errors, 1);
        atomic_fetch_add(&r->segments_deleted, (uint64_t)deleted);
        atomic_fetch_add(&r->records_deleted, (uint64_t)records);
        if (deleted > 0)
            LOG_INFO("retention: expired events deleted",
                     "partition=%d segments=%d records=%" PRId64 " checkpointed_offset=%" PRId64,
                     (int)p, deleted, records, upto);
    }
}

static void run_audit(struct serve_retention *r)
{
    bool rotated = false;
    int rc = audit_rotate(r->cfg.audit, r->cfg.audit_rotate_ms, &rotated);
    if (rc < 0) {
        atomic_fetch_add(&r->errors, 1);
        LOG_ERROR("retention: cannot rotate the audit log", "err=\"%s\"", core_strerror(rc));
    }
    if (rotated)
        atomic_fetch_add(&r->audit_rotated, 1);
    if (r->cfg.audit_ms <= 0)
        return;
    int removed = 0;
    rc = audit_prune(r->cfg.audit, core_now_ms() - r->cfg.audit_ms, &removed);
    if (rc < 0) {
        atomic_fetch_add(&r->errors, 1);
        LOG_ERROR("retention: cannot delete old audit files", "err=\"%s\"", core_strerror(rc));
    }
    atomic_fetch_add(&r->audit_removed, (uint64_t)removed);
}

static void *retention_main(void *arg)
{
    struct serve_retention *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + (r->cfg.interval_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(r->cfg.interval_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&r->cond, &r->mu, &ts);
        if (r->stop)
            break;
        pthread_mutex_unlock(&r->mu);
        if (r->cfg.events_ms > 0)
            run_events(r);
        if (r->cfg.audit)
            run_audit(r);
        atomic_fetch_add(&r->runs, 1);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int serve_retention_start(const struct serve_retention_config *cfg, struct serve_retention **out)
{
    if (!cfg->log || !cfg->stream || cfg->interval_ms < 1 || cfg->events_ms < 0 ||
        (cfg->audit && cfg->audit_rotate_ms < 1))
        return CORE_E_INVALID;
    struct serve_retention *r = core_xcalloc(1, sizeof *r);
    r->cfg = *cfg;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* wall-clock steps do not skew the period */
    pthread_cond_init(&r->cond, &ca);
    pthread_condattr_destroy(&ca);
    int rc = -pthread_create(&r->tid, NULL, retention_main, r);
    if (rc < 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cond);
        free(r);
        return rc;
    }
    LOG_INFO("retention job started",
             "interval_ms=%" PRId64 " events_ms=%" PRId64 " state_user_ms=%" PRId64
             " state_item_ms=%" PRId64 " audit_rotate_ms=%" PRId64 " audit_ms=%" PRId64,
             cfg->interval_ms, cfg->events_ms, cfg->user_ttl_ms, cfg->item_ttl_ms,
             cfg->audit_rotate_ms, cfg->audit_ms);
    *out = r;
    return 0;
}

void serve_retention_stop(struct serve_retention *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->tid, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cond);
    free(r);
}

static void metric(struct core_buf *b, const char *name, const char *help, uint64_t v)
{
    core_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
                    (unsigned long long)v);
}

void serve_retention_metrics(void *arg, struct core_buf *b)
{
    struct serve_retention *r = arg;
    metric(b, "recstream_retention_runs_total", "Passes of the retention job.",
           atomic_load(&r->runs));
    metric(b, "recstream_retention_segments_deleted_total",
           "Log segments deleted because their events outlived --retention-events.",
           atomic_load(&r->segments_deleted));
    metric(b, "recstream_retention_records_deleted_total", "Log records in those segments.",
           atomic_load(&r->records_deleted));
    metric(b, "recstream_retention_segments_rolled_total",
           "Aged active segments of quiet partitions rolled by the retention job.",
           atomic_load(&r->segments_rolled));
    metric(b, "recstream_retention_audit_files_rotated_total",
           "Audit log files closed and continued in a new file (anchor entry).",
           atomic_load(&r->audit_rotated));
    metric(b, "recstream_retention_audit_files_removed_total",
           "Rotated audit files deleted because they outlived --retention-audit.",
           atomic_load(&r->audit_removed));
    metric(b, "recstream_retention_errors_total", "Retention steps that failed (logged).",
           atomic_load(&r->errors));
    /* Users and items expired by their TTLs, over all shards (state counts them together). */
    uint64_t expired = 0;
    for (int32_t p = 0; p < stream_partitions(r->cfg.stream); p++) {
        struct state_stats st;
        state_shard_stats(stream_shard(r->cfg.stream, p), &st);
        expired += (uint64_t)st.expired;
    }
    metric(b, "recstream_state_expired_total",
           "Users and items dropped from state because they were idle past their TTL.", expired);
}
