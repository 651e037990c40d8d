/*
 * The publisher: processors' serving state to Redis (store.h has the key layout).
 *
 * One thread; every interval, per partition: the users changed since the last publication
 * (state_shard_changes walks only them) become SET + ZADD, removed users DEL + ZREM, and when
 * the partition moved (its next offset changed) its aggregate image is SET and its version
 * bumped after it, so a reader that sees a version also sees that image or a newer one.
 * Everything of one round goes through one pipeline (replies read every STORE_PIPELINE_MAX
 * commands). An image is not re-encoded before 4x the time its last encoding took (at most
 * 4 s) has passed, so large images take at most a fifth of the publisher's time (users go
 * every round; store_publisher_flush ignores this). A failed round drops the connection and
 * republishes everything on the next one, so Redis converges on the shards' state after any outage.
 */
#include "store/store_int.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct part_pub {
    struct state_changes ch;
    int64_t offset;            /* next offset of the last published aggregate image; -1: none yet */
    int64_t next_image_ns;     /* the image is not encoded again before (monotonic) */
    _Atomic int64_t published; /* the same, for /metrics (offset resets on failures) */
};

struct store_publisher {
    struct store_publisher_config cfg;
    pthread_mutex_t mu; /* one round at a time (the thread, store_publisher_flush) */
    redisContext *c;
    struct part_pub *parts;
    uint64_t catalog_version; /* of the last published catalog; UINT64_MAX: none yet */
    bool config_written;
    int64_t epoch; /* random, new at every reset: tells readers to refetch everything */
    struct core_buf agg, cat, stage;
    pthread_t thread;
    bool running;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    bool stop;
    atomic_int_fast64_t rounds, users_set, users_del, aggs, cats, bytes, errors, reconciles;
    atomic_int_fast64_t last_round_us;
};

/* ---- one round --------------------------------------------------------------------------------
 */

struct round {
    struct store_publisher *p;
    struct store_pipe pipe;
    int32_t partition;
    char zkey[64];
    char now[24], ttl[24];
    int64_t users, dels, bytes;
};

static void send_user(struct round *r, const char *key, const void *blob, size_t len)
{
    char ukey[64];
    store__user_key(ukey, sizeof ukey, key);
    const char *set[5] = {"SET", ukey, blob, "PX", r->ttl};
    size_t setl[5] = {3, strlen(ukey), len, 2, strlen(r->ttl)};
    store__pipe_cmd(&r->pipe, 5, set, setl);
    const char *z[4] = {"ZADD", r->zkey, r->now, key};
    size_t zl[4] = {4, strlen(r->zkey), strlen(r->now), strlen(key)};
    store__pipe_cmd(&r->pipe, 4, z, zl);
    r->users++;
    r->bytes += (int64_t)len;
}

static void send_gone(struct round *r, const char *key)
{
    char ukey[64];
    store__user_key(ukey, sizeof ukey, key);
    const char *del[2] = {"DEL", ukey};
    size_t dell[2] = {3, strlen(ukey)};
    store__pipe_cmd(&r->pipe, 2, del, dell);
    const char *z[3] = {"ZREM", r->zkey, key};
    size_t zl[3] = {4, strlen(r->zkey), strlen(key)};
    store__pipe_cmd(&r->pipe, 3, z, zl);
    r->dels++;
}

/* The shard's changes are copied out under its read lock (stage_*) and sent after it is
 * released: sending may wait for Redis (replies are read every STORE_PIPELINE_MAX commands),
 * and the shard's writer must not wait for Redis. Entries: kind (1 user, 2 removal), key
 * length, key, and for users the record's length (u32) and the record. */
static void stage_user(void *arg, const char *key, const void *blob, size_t len, int64_t last_ms)
{
    (void)last_ms;
    struct core_buf *b = arg;
    size_t klen = strlen(key);
    core_buf_putc(b, 1);
    core_buf_putc(b, (char)klen);
    core_buf_append(b, key, klen);
    core_buf_put_u32(b, (uint32_t)len);
    core_buf_append(b, blob, len);
}

static void stage_gone(void *arg, const char *key)
{
    struct core_buf *b = arg;
    size_t klen = strlen(key);
    core_buf_putc(b, 2);
    core_buf_putc(b, (char)klen);
    core_buf_append(b, key, klen);
}

static void send_staged(struct round *r, const struct core_buf *b)
{
    if (b->len == 0)
        return;
    const uint8_t *p = (const uint8_t *)b->data, *end = p + b->len;
    char key[EVENT_KEY_HEX + 1];
    while (p < end) {
        int kind = p[0];
        size_t klen = p[1];
        memcpy(key, p + 2, klen);
        key[klen] = 0;
        p += 2 + klen;
        if (kind == 2) {
            send_gone(r, key);
            continue;
        }
        uint32_t len = 0;
        core_get_u32(&p, end, &len);
        send_user(r, key, p, len);
        p += len;
    }
}

/* Removals were missed (more than the shard's ring holds between two rounds, or a restore):
 * every indexed user the shard no longer holds is deleted. */
static int reconcile(struct round *r, struct state_shard *s)
{
    if (store__pipe_drain(&r->pipe) < 0)
        return CORE_E_FAILED;
    redisReply *rep = redisCommand(r->p->c, "ZRANGE %s 0 -1", r->zkey);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        if (rep)
            freeReplyObject(rep);
        return CORE_E_FAILED;
    }
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        if (e->type == REDIS_REPLY_STRING && e->len <= EVENT_KEY_HEX &&
            !state_shard_has_user(s, e->str))
            send_gone(r, e->str);
    }
    freeReplyObject(rep);
    atomic_fetch_add(&r->p->reconciles, 1);
    return 0;
}

static void put_meta(struct round *r, const char *key, const char *const *fields,
                     const int64_t *vals, int n)
{
    const char *argv[2 + 2 * 8];
    size_t lens[2 + 2 * 8];
    char num[8][24];
    argv[0] = "HSET";
    argv[1] = key;
    for (int i = 0; i < n && i < 8; i++) {
        snprintf(num[i], sizeof num[i], "%lld", (long long)vals[i]);
        argv[2 + 2 * i] = fields[i];
        argv[3 + 2 * i] = num[i];
    }
    for (int i = 0; i < 2 + 2 * n; i++)
        lens[i] = strlen(argv[i]);
    store__pipe_cmd(&r->pipe, 2 + 2 * n, argv, lens);
}

static void bump_version(struct round *r, const char *key)
{
    const char *argv[4] = {"HINCRBY", key, "version", "1"};
    size_t lens[4] = {7, strlen(key), 7, 1};
    store__pipe_cmd(&r->pipe, 4, argv, lens);
}

/* The aggregate image with its version, only when its offset is not behind the one in Redis:
 * another processor may own the partition now (or a restarted one replays from an older
 * checkpoint), and a partition's state at a higher offset is always the newer one. */
static const char agg_script[] =
    "local cur = tonumber(redis.call('HGET', KEYS[2], 'nextOffset') or '-1') "
    "if cur > tonumber(ARGV[1]) then return 0 end "
    "redis.call('SET', KEYS[1], ARGV[2]) "
    "redis.call('HINCRBY', KEYS[2], 'version', 1) "
    "redis.call('HSET', KEYS[2], 'nextOffset', ARGV[1], 'watermark', ARGV[3], 'publishedMs', "
    "ARGV[4], 'aggBytes', ARGV[5]) "
    "return 1";

static void send_aggregates(struct store_publisher *p, struct round *r, int32_t part, int64_t off)
{
    char key[64], meta[64], v[4][24];
    store__part_key(key, sizeof key, part, "agg");
    store__part_key(meta, sizeof meta, part, "meta");
    int64_t vals[4] = {off, state_shard_watermark(p->cfg.shards[part]), core_now_ms(),
                       (int64_t)p->agg.len};
    for (int i = 0; i < 4; i++)
        snprintf(v[i], sizeof v[i], "%lld", (long long)vals[i]);
    const char *argv[9] = {"EVAL", agg_script, "2", key, meta, v[0], p->agg.data ? p->agg.data : "",
                           v[1],   v[2]};
    const char *argv2[10];
    memcpy(argv2, argv, sizeof argv);
    argv2[9] = v[3];
    size_t lens[10];
    for (int i = 0; i < 10; i++)
        lens[i] = i == 6 ? p->agg.len : strlen(argv2[i]);
    store__pipe_cmd(&r->pipe, 10, argv2, lens);
}

/* Ownership (processors in a group): a partition not owned here is not published and its
 * positions are forgotten, so that when it comes back everything of it is published again. */
static bool owned(struct store_publisher *p, int32_t part)
{
    if (!p->cfg.owns_fn || p->cfg.owns_fn(p->cfg.owns_arg, part))
        return true;
    memset(&p->parts[part].ch, 0, sizeof p->parts[part].ch);
    p->parts[part].offset = -1;
    return false;
}

static int publish_partition(struct store_publisher *p, struct round *r, int32_t part, bool force)
{
    struct state_shard *s = p->cfg.shards[part];
    struct part_pub *pp = &p->parts[part];
    r->partition = part;
    store__part_key(r->zkey, sizeof r->zkey, part, "users");
    if (!owned(p, part))
        return 0;
    p->stage.len = 0;
    state_shard_changes(s, &pp->ch, stage_user, stage_gone, &p->stage);
    /* Revocation clears ownership before it empties the shard: owned still, the staged
     * changes were read from the shard before it was emptied. */
    if (!owned(p, part))
        return 0;
    send_staged(r, &p->stage);
    if (pp->ch.gone_lost && reconcile(r, s) < 0)
        return CORE_E_FAILED;
    int64_t off = state_shard_next_offset(s), t0 = core_mono_ns();
    if (off != pp->offset && (force || t0 >= pp->next_image_ns)) {
        p->agg.len = 0;
        state_shard_snapshot_aggregates(s, &p->agg);
        /* A large image is not re-encoded every round: at most a quarter of the publisher's
         * time goes to one partition's image (users' records still go every round). */
        int64_t cost = core_mono_ns() - t0;
        pp->next_image_ns = t0 + (cost > 1000000000 ? 4000000000 : 4 * cost);
        if (!owned(p, part)) /* emptied meanwhile: its image must not go out */
            return 0;
        send_aggregates(p, r, part, off);
        pp->offset = off;
        atomic_store(&pp->published, off);
        r->bytes += (int64_t)p->agg.len;
        atomic_fetch_add(&p->aggs, 1);
    }
    /* users idle past the TTL leave the index (their records expire by PX) */
    char min[32];
    snprintf(min, sizeof min, "(%lld", (long long)(core_now_ms() - p->cfg.user_ttl_ms));
    const char *zr[4] = {"ZREMRANGEBYSCORE", r->zkey, "-inf", min};
    size_t zrl[4] = {16, strlen(r->zkey), 4, strlen(min)};
    store__pipe_cmd(&r->pipe, 4, zr, zrl);
    return 0;
}

static void publish_catalog(struct store_publisher *p, struct round *r)
{
    if (!p->cfg.catalog || catalog_version(p->cfg.catalog) == p->catalog_version)
        return;
    uint64_t v = catalog_version(p->cfg.catalog); /* read first: a later edit publishes again */
    p->cat.len = 0;
    store__catalog_blob(p->cfg.catalog, &p->cat);
    const char *set[3] = {"SET", STORE_KEY_CATALOG, p->cat.data ? p->cat.data : ""};
    size_t setl[3] = {3, strlen(STORE_KEY_CATALOG), p->cat.len};
    store__pipe_cmd(&r->pipe, 3, set, setl);
    bump_version(r, STORE_KEY_CATALOG_META);
    static const char *const fields[4] = {"catalogVersion", "items", "publishedMs", "bytes"};
    int64_t vals[4] = {(int64_t)v, catalog_count(p->cfg.catalog), core_now_ms(),
                       (int64_t)p->cat.len};
    put_meta(r, STORE_KEY_CATALOG_META, fields, vals, 4);
    p->catalog_version = v;
    r->bytes += (int64_t)p->cat.len;
    atomic_fetch_add(&p->cats, 1);
}

/* Forget every position: the next round republishes everything, under a new epoch (after a
 * Redis restart the versions start again from 1 and could equal what a reader has seen). */
static void reset(struct store_publisher *p)
{
    for (int i = 0; i < p->cfg.nshards; i++) {
        memset(&p->parts[i].ch, 0, sizeof p->parts[i].ch);
        p->parts[i].offset = -1;
    }
    p->catalog_version = UINT64_MAX;
    p->config_written = false;
    p->epoch = (int64_t)(randombytes_random() & 0x7fffffff) << 31 | randombytes_random() >> 1;
}

void store_publisher_barrier(struct store_publisher *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    pthread_mutex_unlock(&p->mu);
}

static int do_round(struct store_publisher *p, bool force);

int store_publisher_flush(struct store_publisher *p)
{
    return do_round(p, true);
}

/* One round; force: every moved partition's image, however recently it was encoded. */
static int do_round(struct store_publisher *p, bool force)
{
    pthread_mutex_lock(&p->mu);
    int64_t t0 = core_mono_ns();
    int rc = 0;
    if (!p->c) {
        p->c = store__connect(&p->cfg.addr);
        if (!p->c) {
            rc = CORE_E_FAILED;
            goto out;
        }
    }
    struct round r = {.p = p};
    store__pipe_init(&r.pipe, p->c);
    snprintf(r.now, sizeof r.now, "%lld", (long long)core_now_ms());
    snprintf(r.ttl, sizeof r.ttl, "%lld", (long long)p->cfg.user_ttl_ms);
    if (!p->config_written) {
        static const char *const fields[3] = {"partitions", "format", "epoch"};
        int64_t vals[3] = {p->cfg.nshards, STORE_FORMAT, p->epoch};
        put_meta(&r, STORE_KEY_CONFIG, fields, vals, 3);
    }
    for (int32_t part = 0; part < p->cfg.nshards && rc == 0; part++)
        rc = publish_partition(p, &r, part, force);
    if (rc == 0)
        publish_catalog(p, &r);
    if (store__pipe_drain(&r.pipe) < 0)
        rc = CORE_E_FAILED;
    if (rc < 0) {
        atomic_fetch_add(&p->errors, 1);
        LOG_WARN("publishing serving state to redis failed; everything is republished on "
                 "the next round",
                 "err=\"%s\"", p->c->errstr[0] ? p->c->errstr : "error reply");
        redisFree(p->c);
        p->c = NULL;
        reset(p);
        goto out;
    }
    p->config_written = true;
    atomic_fetch_add(&p->rounds, 1);
    atomic_fetch_add(&p->users_set, r.users);
    atomic_fetch_add(&p->users_del, r.dels);
    atomic_fetch_add(&p->bytes, r.bytes);
    atomic_store(&p->last_round_us, (core_mono_ns() - t0) / 1000);
out:
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* ---- the thread -------------------------------------------------------------------------------
 */

static void *publisher(void *arg)
{
    struct store_publisher *p = arg;
    pthread_setname_np(pthread_self(), "store-publish");
    pthread_mutex_lock(&p->stop_mu);
    while (!p->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (p->cfg.interval_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(p->cfg.interval_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&p->stop_cv, &p->stop_mu, &ts);
        bool last = p->stop;
        pthread_mutex_unlock(&p->stop_mu);
        do_round(p, false);
        pthread_mutex_lock(&p->stop_mu);
        if (last)
            break;
    }
    pthread_mutex_unlock(&p->stop_mu);
    return NULL;
}

int store_publisher_start(const struct store_publisher_config *cfg, struct store_publisher **out)
{
    struct store_publisher *p = core_xcalloc(1, sizeof *p);
    p->cfg = *cfg;
    if (p->cfg.interval_ms <= 0)
        p->cfg.interval_ms = 200;
    if (p->cfg.user_ttl_ms <= 0)
        p->cfg.user_ttl_ms = 30LL * 24 * 3600 * 1000;
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->stop_mu, NULL);
    pthread_cond_init(&p->stop_cv, NULL);
    core_buf_init(&p->agg);
    core_buf_init(&p->cat);
    core_buf_init(&p->stage);
    p->parts = core_xcalloc((size_t)cfg->nshards, sizeof *p->parts);
    reset(p);
    p->c = store__connect(&p->cfg.addr);
    if (!p->c) {
        p->running = false;
        store_publisher_stop(p);
        return CORE_E_FAILED;
    }
    p->running = pthread_create(&p->thread, NULL, publisher, p) == 0;
    *out = p;
    return 0;
}

void store_publisher_stop(struct store_publisher *p)
{
    if (!p)
        return;
    if (p->running) {
        pthread_mutex_lock(&p->stop_mu);
        p->stop = true;
        pthread_cond_signal(&p->stop_cv);
        pthread_mutex_unlock(&p->stop_mu);
        pthread_join(p->thread, NULL);
    }
    if (p->c)
        redisFree(p->c);
    core_buf_dispose(&p->agg);
    core_buf_dispose(&p->cat);
    core_buf_dispose(&p->stage);
    free(p->parts);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->stop_mu);
    pthread_cond_destroy(&p->stop_cv);
    free(p);
}

void store_publisher_metrics(void *arg, struct core_buf *out)
{
    struct store_publisher *p = arg;
    if (!p)
        return;
    core_buf_metric(out, "recstream_store_rounds_total", "counter",
                    "Publication rounds to Redis that succeeded.", atomic_load(&p->rounds));
    core_buf_metric(out, "recstream_store_errors_total", "counter",
                    "Publication rounds that failed (everything is republished next).",
                    atomic_load(&p->errors));
    core_buf_metric(out, "recstream_store_users_published_total", "counter",
                    "User serving records written to Redis.", atomic_load(&p->users_set));
    core_buf_metric(out, "recstream_store_users_deleted_total", "counter",
                    "User serving records deleted from Redis (removed from state).",
                    atomic_load(&p->users_del));
    core_buf_metric(out, "recstream_store_aggregates_published_total", "counter",
                    "Partition aggregate images written to Redis.", atomic_load(&p->aggs));
    core_buf_metric(out, "recstream_store_catalog_published_total", "counter",
                    "Item catalogs written to Redis.", atomic_load(&p->cats));
    core_buf_metric(out, "recstream_store_bytes_total", "counter",
                    "Bytes of values written to Redis.", atomic_load(&p->bytes));
    core_buf_metric(out, "recstream_store_reconciles_total", "counter",
                    "Partition indexes reconciled after missed removals.",
                    atomic_load(&p->reconciles));
    core_buf_metric(out, "recstream_store_round_us", "gauge",
                    "Duration of the last publication round.", atomic_load(&p->last_round_us));
    core_buf_puts(out, "# HELP recstream_store_partition_offset Next offset of the partition's "
                       "last published aggregate image.\n# TYPE recstream_store_partition_offset "
                       "gauge\n");
    for (int i = 0; i < p->cfg.nshards; i++)
        core_buf_printf(out, "recstream_store_partition_offset{partition=\"%d\"} %lld\n", i,
                        (long long)atomic_load(&p->parts[i].published));
}
