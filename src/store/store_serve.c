/*
 * The reader: an API node's view of the serving state (store.h has the key layout).
 *
 * A poller thread reads every partition's version and the catalog's in one pipelined round
 * trip per interval; a changed partition's aggregate image is fetched and restored into the
 * node's local, user-less shard (this thread is those shards' only writer), from which the
 * recommender's refresher rebuilds the model (the item-kNN lists included: the images carry
 * the partitions' co-occurrence rows). Users are not copied: a request GETs its user's record
 * on its own thread's connection (hiredis contexts are not thread-safe), one round trip.
 */
#include "store/store_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct conn {
    redisContext *c;
    struct conn *next;
};

struct store_reader {
    struct store_reader_config cfg;
    pthread_mutex_t mu; /* one poll at a time */
    redisContext *c;
    int64_t *versions; /* per partition: the version last restored (0: none) */
    int64_t catalog_version;
    int64_t epoch;     /* the publisher's (rs:{meta}:config): a new one means refetch everything */
    pthread_key_t tls; /* struct conn * of the calling thread */
    pthread_mutex_t conns_mu;
    struct conn *conns;
    pthread_t thread;
    bool running;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    bool stop;
    atomic_int_fast64_t polls, aggs, cats, user_reads, user_misses, errors, corrupt;
    atomic_int_fast64_t last_restore_us;
    atomic_bool last_poll_ok;
};

/* ---- polling ----------------------------------------------------------------------------------
 */

static int64_t reply_int(const redisReply *r)
{
    int64_t v = 0;
    if (r && r->type == REDIS_REPLY_STRING)
        core_parse_i64(r->str, 0, INT64_MAX, &v);
    return v;
}

/* Restores partition p from its aggregate image (a GET reply). */
static void restore(struct store_reader *rd, int32_t p, const redisReply *r, int64_t version)
{
    if (!r || r->type != REDIS_REPLY_STRING)
        return; /* the version is ahead of the image (a publisher mid-round): next poll */
    int64_t t0 = core_mono_ns();
    int rc = state_shard_restore(rd->cfg.shards[p], r->str, r->len);
    if (rc < 0) {
        rd->versions[p] = version; /* logged once per version, retried with the next one */
        atomic_fetch_add(&rd->corrupt, 1);
        LOG_ERROR("cannot restore a partition's serving state from redis (an API node needs "
                  "the processors' state flags, e.g. --retention-state, to match)",
                  "partition=%d err=\"%s\"", (int)p, core_strerror(rc));
        return;
    }
    rd->versions[p] = version;
    atomic_fetch_add(&rd->aggs, 1);
    atomic_store(&rd->last_restore_us, (core_mono_ns() - t0) / 1000);
}

static int poll_locked(struct store_reader *rd)
{
    int n = rd->cfg.nshards, rc = 0;
    redisReply **reps = core_xcalloc((size_t)n + 2, sizeof *reps);
    int64_t *seen = core_xcalloc((size_t)n, sizeof *seen);
    char key[64];
    for (int32_t p = 0; p < n; p++) {
        store__part_key(key, sizeof key, p, "meta");
        redisAppendCommand(rd->c, "HGET %s version", key);
    }
    redisAppendCommand(rd->c, "HGET %s version", STORE_KEY_CATALOG_META);
    redisAppendCommand(rd->c, "HGET %s epoch", STORE_KEY_CONFIG);
    for (int i = 0; i <= n + 1 && rc == 0; i++)
        if (redisGetReply(rd->c, (void **)&reps[i]) != REDIS_OK)
            rc = CORE_E_FAILED;
    int64_t epoch = rc == 0 ? reply_int(reps[n + 1]) : rd->epoch;
    if (epoch != rd->epoch) { /* a publisher republishing everything (e.g. Redis restarted) */
        for (int32_t p = 0; p < n; p++)
            rd->versions[p] = -1;
        rd->catalog_version = -1;
        rd->epoch = epoch;
    }
    int nget = 0;
    for (int32_t p = 0; p < n && rc == 0; p++) {
        seen[p] = reply_int(reps[p]);
        if (seen[p] != rd->versions[p]) {
            store__part_key(key, sizeof key, p, "agg");
            redisAppendCommand(rd->c, "GET %s", key);
            nget++;
        }
    }
    int64_t catv = rc == 0 ? reply_int(reps[n]) : 0;
    bool get_cat = rd->cfg.catalog && catv != rd->catalog_version;
    if (get_cat)
        redisAppendCommand(rd->c, "GET %s", STORE_KEY_CATALOG);
    for (int32_t p = 0; p < n && rc == 0 && nget > 0; p++) {
        if (seen[p] == rd->versions[p])
            continue;
        redisReply *r = NULL;
        if (redisGetReply(rd->c, (void **)&r) != REDIS_OK) {
            rc = CORE_E_FAILED;
            break;
        }
        restore(rd, p, r, seen[p]);
        freeReplyObject(r);
    }
    if (rc == 0 && get_cat) {
        redisReply *r = NULL;
        if (redisGetReply(rd->c, (void **)&r) != REDIS_OK) {
            rc = CORE_E_FAILED;
        } else if (r->type == REDIS_REPLY_STRING) {
            int arc = store__catalog_apply(rd->cfg.catalog, r->str, r->len);
            if (arc == 0) {
                rd->catalog_version = catv;
                atomic_fetch_add(&rd->cats, 1);
            } else {
                atomic_fetch_add(&rd->corrupt, 1);
                LOG_ERROR("cannot apply the catalog published in redis", "err=\"%s\"",
                          core_strerror(arc));
            }
        }
        if (r)
            freeReplyObject(r);
    }
    for (int i = 0; i <= n + 1; i++)
        if (reps[i])
            freeReplyObject(reps[i]);
    free(reps);
    free(seen);
    return rc;
}

int store_reader_poll(struct store_reader *rd)
{
    pthread_mutex_lock(&rd->mu);
    int rc = 0;
    if (!rd->c)
        rd->c = store__connect(&rd->cfg.addr);
    if (!rd->c) {
        rc = CORE_E_FAILED;
    } else {
        rc = poll_locked(rd);
        if (rc < 0) {
            LOG_WARN("reading serving state from redis failed", "err=\"%s\"", rd->c->errstr);
            redisFree(rd->c);
            rd->c = NULL;
        }
    }
    atomic_fetch_add(rc < 0 ? &rd->errors : &rd->polls, 1);
    atomic_store(&rd->last_poll_ok, rc == 0);
    pthread_mutex_unlock(&rd->mu);
    return rc;
}

static void *poller(void *arg)
{
    struct store_reader *rd = arg;
    pthread_setname_np(pthread_self(), "store-poll");
    pthread_mutex_lock(&rd->stop_mu);
    while (!rd->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (rd->cfg.interval_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(rd->cfg.interval_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&rd->stop_cv, &rd->stop_mu, &ts);
        if (rd->stop)
            break;
        pthread_mutex_unlock(&rd->stop_mu);
        store_reader_poll(rd);
        pthread_mutex_lock(&rd->stop_mu);
    }
    pthread_mutex_unlock(&rd->stop_mu);
    return NULL;
}

int store_read_partitions(const struct store_addr *addr, int64_t wait_ms, int32_t *out)
{
    redisContext *c = store__connect(addr);
    if (!c)
        return CORE_E_FAILED;
    int64_t deadline = core_mono_ns() + wait_ms * 1000000;
    int rc = CORE_E_TIMEOUT;
    for (;;) {
        redisReply *r = redisCommand(c, "HGET %s partitions", STORE_KEY_CONFIG);
        if (!r) {
            rc = CORE_E_FAILED;
            break;
        }
        int64_t n = reply_int(r);
        freeReplyObject(r);
        if (n >= 1 && n <= 1024) {
            *out = (int32_t)n;
            rc = 0;
            break;
        }
        if (core_mono_ns() > deadline)
            break;
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
    redisFree(c);
    return rc;
}

int store_reader_start(const struct store_reader_config *cfg, struct store_reader **out)
{
    struct store_reader *rd = core_xcalloc(1, sizeof *rd);
    rd->cfg = *cfg;
    if (rd->cfg.interval_ms <= 0)
        rd->cfg.interval_ms = 200;
    pthread_mutex_init(&rd->mu, NULL);
    pthread_mutex_init(&rd->conns_mu, NULL);
    pthread_mutex_init(&rd->stop_mu, NULL);
    pthread_cond_init(&rd->stop_cv, NULL);
    pthread_key_create(&rd->tls, NULL);
    rd->versions = core_xcalloc((size_t)cfg->nshards, sizeof *rd->versions);
    int rc = store_reader_poll(rd);
    if (rc < 0) {
        store_reader_stop(rd);
        return rc;
    }
    rd->running = pthread_create(&rd->thread, NULL, poller, rd) == 0;
    *out = rd;
    return 0;
}

void store_reader_stop(struct store_reader *rd)
{
    if (!rd)
        return;
    if (rd->running) {
        pthread_mutex_lock(&rd->stop_mu);
        rd->stop = true;
        pthread_cond_signal(&rd->stop_cv);
        pthread_mutex_unlock(&rd->stop_mu);
        pthread_join(rd->thread, NULL);
    }
    if (rd->c)
        redisFree(rd->c);
    for (struct conn *k = rd->conns, *next; k; k = next) {
        next = k->next;
        if (k->c)
            redisFree(k->c);
        free(k);
    }
    pthread_key_delete(rd->tls);
    free(rd->versions);
    pthread_mutex_destroy(&rd->mu);
    pthread_mutex_destroy(&rd->conns_mu);
    pthread_mutex_destroy(&rd->stop_mu);
    pthread_cond_destroy(&rd->stop_cv);
    free(rd);
}

/* ---- requests ---------------------------------------------------------------------------------
 */

/* The calling thread's connection (made on its first request; freed by store_reader_stop). */
static struct conn *thread_conn(struct store_reader *rd)
{
    struct conn *k = pthread_getspecific(rd->tls);
    if (!k) {
        k = core_xcalloc(1, sizeof *k);
        pthread_mutex_lock(&rd->conns_mu);
        k->next = rd->conns;
        rd->conns = k;
        pthread_mutex_unlock(&rd->conns_mu);
        pthread_setspecific(rd->tls, k);
    }
    if (!k->c)
        k->c = store__connect(&rd->cfg.addr);
    return k;
}

int store_reader_user_read(void *arg, struct state_shard *shard, int32_t partition,
                           const char *user_key, struct state_user_read *out)
{
    (void)partition;
    struct store_reader *rd = arg;
    char key[64];
    store__user_key(key, sizeof key, user_key);
    redisReply *r = NULL;
    for (int attempt = 0; attempt < 2 && !r; attempt++) { /* one reconnect */
        struct conn *k = thread_conn(rd);
        if (!k->c)
            break;
        r = redisCommand(k->c, "GET %s", key);
        if (!r) {
            redisFree(k->c);
            k->c = NULL;
        }
    }
    atomic_fetch_add(&rd->user_reads, 1);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (r)
            freeReplyObject(r);
        atomic_fetch_add(&rd->errors, 1);
        return CORE_E_FAILED;
    }
    int64_t now = state_shard_now(shard);
    int rc = 0;
    if (r->type == REDIS_REPLY_STRING) {
        rc = state_user_blob_decode(r->str, r->len, now, rd->cfg.half_life_ms, out);
        if (rc < 0) {
            atomic_fetch_add(&rd->corrupt, 1);
            LOG_WARN("a user's serving record in redis does not check out; served as unknown",
                     "partition=%d", (int)partition);
        }
    } else {
        out->found = false; /* as state_shard_user_read leaves an unknown user */
        out->nrecent = out->nsession = out->ncats = out->nprefs = 0;
        out->pool_used = 0;
        out->now_ms = now;
        atomic_fetch_add(&rd->user_misses, 1);
    }
    freeReplyObject(r);
    return 0;
}

bool store_reader_ready(void *arg)
{
    struct store_reader *rd = arg;
    return atomic_load(&rd->last_poll_ok);
}

void store_reader_metrics(void *arg, struct core_buf *out)
{
    struct store_reader *rd = arg;
    core_buf_metric(out, "recstream_store_polls_total", "counter",
                    "Polls of the serving state versions.", atomic_load(&rd->polls));
    core_buf_metric(out, "recstream_store_errors_total", "counter",
                    "Failed polls and user reads (Redis unreachable or an error reply).",
                    atomic_load(&rd->errors));
    core_buf_metric(out, "recstream_store_corrupt_total", "counter",
                    "Serving state in Redis that did not check out (refused).",
                    atomic_load(&rd->corrupt));
    core_buf_metric(out, "recstream_store_aggregates_restored_total", "counter",
                    "Partition aggregate images restored.", atomic_load(&rd->aggs));
    core_buf_metric(out, "recstream_store_catalog_applied_total", "counter",
                    "Published item catalogs applied to the local copy.", atomic_load(&rd->cats));
    core_buf_metric(out, "recstream_store_user_reads_total", "counter",
                    "User records read per request.", atomic_load(&rd->user_reads));
    core_buf_metric(out, "recstream_store_user_misses_total", "counter",
                    "User reads that found no record (unknown, expired or erased users).",
                    atomic_load(&rd->user_misses));
    core_buf_metric(out, "recstream_store_restore_us", "gauge", "Duration of the last restore.",
                    atomic_load(&rd->last_restore_us));
    core_buf_puts(out, "# HELP recstream_store_partition_offset Next offset of the partition's "
                       "restored aggregate image.\n# TYPE recstream_store_partition_offset "
                       "gauge\n");
    for (int i = 0; i < rd->cfg.nshards; i++)
        core_buf_printf(out, "recstream_store_partition_offset{partition=\"%d\"} %lld\n", i,
                        (long long)state_shard_next_offset(rd->cfg.shards[i]));
}
