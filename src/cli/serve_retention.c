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
 * user_ttl_ms, item_ttl_ms, applied by the processor in event time). A shard whose partition
 * gets no events would never expire anything, so for a partition quiet for an interval whose
 * shard still holds entities the job appends a "tick" control record carrying the shard's
 * time advanced by the wall-clock time the partition has been quiet: the shard applies it
 * like any record (state stays a function of the log) and expires what is due.
 *
 * The job owns no data, so it lives with the serve wiring, not in a module below.
 */
#include "cli/serve_retention.h"

#include "event/event.h"

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
    _Atomic uint64_t audit_rotated, audit_removed, ticks, epoch_keys_destroyed;
    /* Per partition, the job thread only: where the quiet clock starts. base_hw is the high
     * water when it was set (a change not caused by our own tick restarts the clock). */
    int64_t *base_hw, *base_now, *base_wall;
};

struct tick_wait {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool done;
    int status;
};

static void tick_done(void *arg, int status)
{
    struct tick_wait *w = arg;
    pthread_mutex_lock(&w->m);
    w->done = true;
    w->status = status;
    pthread_cond_signal(&w->c);
    pthread_mutex_unlock(&w->m);
}

/* Appends a tick with time ts to partition p and waits until it is durable. */
static int append_tick(struct serve_retention *r, int32_t p, int64_t ts)
{
    struct event ev;
    event_init(&ev);
    ev.type = EVENT_TICK;
    ev.id_assigned = true; /* no eventId: dedup rebuilds skip it */
    ev.ts_ms = ts;
    ev.recv_ms = core_now_ms();
    struct core_buf val;
    core_buf_init(&val);
    event_bin_encode(&ev, &val);
    struct evlog_record rec = {.partition = p,
                               .event_time_ms = ts,
                               .ingest_time_ms = ev.recv_ms,
                               .key = "",
                               .value = val.data,
                               .value_len = (uint32_t)val.len};
    struct tick_wait w = {.done = false};
    pthread_mutex_init(&w.m, NULL);
    pthread_cond_init(&w.c, NULL);
    int rc = evlog_append(r->cfg.log, &rec, 1, tick_done, &w);
    if (rc == 0) {
        pthread_mutex_lock(&w.m);
        while (!w.done)
            pthread_cond_wait(&w.c, &w.m);
        pthread_mutex_unlock(&w.m);
        rc = w.status;
    }
    pthread_mutex_destroy(&w.m);
    pthread_cond_destroy(&w.c);
    core_buf_dispose(&val);
    return rc;
}

/* Ticks every quiet partition whose shard holds entities (see the file comment). */
static void run_ticks(struct serve_retention *r)
{
    struct stream *st = r->cfg.stream;
    for (int32_t p = 0; p < r->cfg.log->partitions; p++) {
        struct evlog_partition_stats ps;
        if (evlog_stats(r->cfg.log, p, &ps) < 0 || ps.high_water == 0)
            continue;
        /* Only a shard that has applied everything knows the partition's time. */
        if (stream_wait_applied(st, p, ps.high_water, 0) != 0)
            continue;
        struct state_shard *sh = stream_shard(st, p);
        int64_t now = state_shard_now(sh);
        if (now == 0)
            continue; /* nothing applied yet */
        int64_t wall = core_now_ms();
        if (ps.high_water != r->base_hw[p]) {
            /* New records: the quiet clock starts at the last one's ingest (or now, when
             * retention deleted them all: later, never earlier, expiry). */
            r->base_hw[p] = ps.high_water;
            r->base_now[p] = now;
            r->base_wall[p] = ps.last_ingest_ms > 0 ? ps.last_ingest_ms : wall;
        }
        int64_t quiet = wall - r->base_wall[p];
        struct state_stats ss;
        state_shard_stats(sh, &ss);
        if (quiet < r->cfg.interval_ms || (ss.users == 0 && ss.items == 0))
            continue;
        int64_t ts = r->base_now[p] + quiet;
        int rc = append_tick(r, p, ts);
        if (rc < 0) {
            atomic_fetch_add(&r->errors, 1);
            LOG_ERROR("retention: cannot append a tick", "partition=%d err=\"%s\"", (int)p,
                      core_strerror(rc));
            continue;
        }
        r->base_hw[p] = ps.high_water + 1; /* our own record does not restart the clock */
        atomic_fetch_add(&r->ticks, 1);
        LOG_DEBUG("retention: tick", "partition=%d time=%" PRId64 " quiet_ms=%" PRId64, (int)p, ts,
                  quiet);
    }
}

/* One pass over the log. */
static void run_events(struct serve_retention *r)
{
    struct evlog *log = r->cfg.log;
    if (!evlog_is_file(log))
        return; /* a Kafka topic deletes by its own retention.ms (logged at open) */
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

/* Field retention: destroys the epoch keys whose whole epoch lies beyond their class's TTL
 * (the store is rewritten and synced before the count is reported). */
static void run_epoch_keys(struct serve_retention *r)
{
    size_t destroyed = 0;
    int rc = epochkeys_expire(r->cfg.epochkeys, core_now_ms(), &destroyed);
    if (rc < 0) {
        atomic_fetch_add(&r->errors, 1);
        return;
    }
    if (destroyed) {
        atomic_fetch_add(&r->epoch_keys_destroyed, destroyed);
        LOG_INFO("retention: epoch keys destroyed; their fields are unreadable",
                 "keys=%zu left=%zu", destroyed, epochkeys_count(r->cfg.epochkeys));
    }
}

static void *retention_main(void *arg)
{
    struct serve_retention *r = arg;
    pthread_setname_np(pthread_self(), "retention");
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
        if (r->cfg.epochkeys)
            run_epoch_keys(r);
        if (r->cfg.ticks)
            run_ticks(r);
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
    size_t np = (size_t)cfg->log->partitions;
    r->base_hw = core_xcalloc(np ? np : 1, sizeof *r->base_hw);
    r->base_now = core_xcalloc(np ? np : 1, sizeof *r->base_now);
    r->base_wall = core_xcalloc(np ? np : 1, sizeof *r->base_wall);
    for (size_t i = 0; i < np; i++)
        r->base_hw[i] = -1;
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
        free(r->base_hw);
        free(r->base_now);
        free(r->base_wall);
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
    free(r->base_hw);
    free(r->base_now);
    free(r->base_wall);
    free(r);
}

static void metric(struct core_buf *b, const char *name, const char *help, uint64_t v)
{
    core_buf_metric(b, name, "counter", help, (int64_t)v);
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
    metric(b, "recstream_retention_ticks_total",
           "Tick control records appended to quiet partitions so that their state expires.",
           atomic_load(&r->ticks));
    metric(b, "recstream_retention_epoch_keys_destroyed_total",
           "Field retention epoch keys destroyed because their epoch passed the class TTL.",
           atomic_load(&r->epoch_keys_destroyed));
    if (r->cfg.epochkeys)
        core_buf_metric(b, "recstream_privacy_epoch_keys", "gauge",
                        "Field retention epoch keys stored.",
                        (int64_t)epochkeys_count(r->cfg.epochkeys));
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
