/*
 * store: serving state in Redis, so that API nodes (serve --role api) answer recommendation
 * requests with no log, no processors and no state of their own.
 *
 * Processors publish (store_publisher, one thread): per partition, every interval in which the
 * shard changed, the changed users' serving records, the removed users' deletions, the
 * shard's aggregate image (items, co-visitation, whole-history co-occurrence, contexts,
 * attribution, clock, offset) and a version. API nodes read (store_reader): a poller thread
 * follows the versions and restores the aggregates into local user-less shards, from which
 * their recommender builds the model an embedded node builds from the same partitions; each
 * request reads its user with one GET on its thread's own connection.
 *
 * Key layout (docs/ARCHITECTURE.md, "Serving state in Redis"); every key has a hash tag so
 * a Redis Cluster places each partition's keys, each user and the model on one slot:
 *   rs:{meta}:config        hash: partitions, format, epoch (new at every full republication)
 *   rs:{u:<userkey>}        a user's serving record (state_user_blob), PX = user TTL
 *   rs:{p<N>}:users         zset: user key -> last publish time (ms), pruned after the TTL
 *   rs:{p<N>}:agg           partition N's aggregate image (state snapshot without users)
 *   rs:{p<N>}:meta          hash: version (HINCRBY), nextOffset, watermark, publishedMs, aggBytes
 *   rs:{catalog}:items      the item catalog, NDJSON (one catalog item JSON per line)
 *   rs:{catalog}:meta       hash: version (HINCRBY), catalogVersion, items, publishedMs, bytes
 *
 * hiredis 0.14 (Debian): blocking contexts, pipelining with redisAppendCommand; no RESP3, no TLS.
 */
#ifndef RECSTREAM_STORE_H
#define RECSTREAM_STORE_H

#include "catalog/catalog.h"
#include "core/core.h"
#include "reco/reco.h"
#include "state/state.h"

/* A parsed --store URL: redis://HOST:PORT or unix:///PATH/TO/SOCKET, and the credentials. */
struct store_addr {
    char host[256];
    int port;
    char unix_path[256]; /* non-empty: a unix socket */
    char user[64];       /* AUTH user (Redis 6 ACL); "" = the default user */
    char password[256];  /* "" = no AUTH */
};
/* CORE_E_INVALID with a message in err on a bad URL (credentials are left empty). */
int store_addr_parse(const char *url, struct store_addr *out, char *err, size_t errlen);
/* Reads AUTH credentials from a file: one line "PASSWORD" or "USER PASSWORD" (kept out of
 * the command line, where ps shows it). The file must not be readable by group or others.
 * CORE_E_INVALID (err says why) or -errno. */
int store_addr_read_auth(struct store_addr *a, const char *path, char *err, size_t errlen);

/* ---- processors --------------------------------------------------------------------------------
 */

struct store_publisher_config {
    struct store_addr addr;
    struct state_shard *const *shards; /* borrowed, read only */
    int nshards;
    struct catalog *catalog; /* borrowed, may be NULL: published when its version changes */
    int64_t interval_ms;     /* publish period (default 200) */
    int64_t user_ttl_ms;     /* PX of user records; users idle this long leave the index too */
    /* Optional (processors in a consumer group): whether partition p is owned here; only owned
     * partitions are published. Called on the publisher's thread. */
    bool (*owns_fn)(void *arg, int32_t p);
    void *owns_arg;
};
struct store_publisher;

/* Connects (CORE_E_FAILED when Redis cannot be reached) and starts the publisher thread. */
int store_publisher_start(const struct store_publisher_config *cfg, struct store_publisher **out);
/* Publishes what changed now, on the caller's thread (tests; the thread does it every
 * interval), every moved partition's image included (the thread defers an image encoded
 * very recently). Returns 0 or CORE_E_FAILED. Not concurrently with itself. */
int store_publisher_flush(struct store_publisher *p);
/* Waits for a publication round in progress to end (after a partition was revoked: the rounds
 * that follow see it is not owned, so nothing of it goes out once this returns). NULL is fine.
 * Any thread but the publisher's. */
void store_publisher_barrier(struct store_publisher *p);
/* Stops the thread after a last publication. NULL is fine. */
void store_publisher_stop(struct store_publisher *p);
/* Prometheus lines (recstream_store_*): an api_config.metrics_fn. Any thread. */
void store_publisher_metrics(void *arg, struct core_buf *out);

/* ---- API nodes ---------------------------------------------------------------------------------
 */

/* Reads the partition count the processors publish (rs:{meta}:config), waiting up to
 * wait_ms for one to appear. CORE_E_FAILED (no connection) or CORE_E_TIMEOUT. */
int store_read_partitions(const struct store_addr *addr, int64_t wait_ms, int32_t *out);

struct store_reader_config {
    struct store_addr addr;
    struct state_shard *const *shards; /* borrowed: user-less shards this reader restores */
    int nshards;
    struct catalog *catalog; /* borrowed, may be NULL: kept equal to the published catalog */
    int64_t interval_ms;     /* poll period (default 200) */
    int64_t half_life_ms;    /* the shards' (decays users' category affinities) */
};
struct store_reader;

/* Connects, loads the current state once (so the first requests see it) and starts the poller. */
int store_reader_start(const struct store_reader_config *cfg, struct store_reader **out);
/* Loads what changed now on the caller's thread (the poller does it every interval). */
int store_reader_poll(struct store_reader *rd);
void store_reader_stop(struct store_reader *rd);
/* A reco_config.user_read_fn (arg: the reader): GET rs:{u:<key>} on the calling thread's own
 * connection; decodes it against the partition's restored clock. CORE_E_FAILED when Redis
 * cannot be reached. Any thread. */
int store_reader_user_read(void *arg, struct state_shard *shard, int32_t partition,
                           const char *user_key, struct state_user_read *out);
/* Prometheus lines (recstream_store_*). Any thread. */
void store_reader_metrics(void *arg, struct core_buf *out);
/* Whether the last poll reached Redis (an api_config.ready_fn). Any thread. */
bool store_reader_ready(void *arg);

#endif
