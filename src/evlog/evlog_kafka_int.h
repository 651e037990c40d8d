/*
 * Internals shared by the Kafka backend's files: evlog_kafka.c (lifecycle, the producer, the
 * poller thread) and evlog_kafka_read.c (the consumer side: read, wait, stats, time lookup).
 *
 * Record layout in the topic (see docs/ARCHITECTURE.md, "Kafka log"):
 *   key       the pseudonymous user key (hex), as the Java client partitions by it
 *   value     nonce (24) || XChaCha20-Poly1305(u32 key length || key || binary event) || tag
 *   timestamp the ingest time (CreateTime)
 *   headers   keyId (24 hex chars), eventId (when the event has one), eventTime (decimal ms)
 * The associated data binds the value to its partition, event and ingest time, key id and
 * eventId (evlog__kafka_ad); the offset is not known before the broker assigns it.
 */
#ifndef RECSTREAM_EVLOG_KAFKA_INT_H
#define RECSTREAM_EVLOG_KAFKA_INT_H

#include "evlog/evlog.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>

#define EVLOG_KAFKA_MAX_KEY (64u * 1024u)
#define EVLOG_KAFKA_MAX_VALUE (1024u * 1024u)
#define EVLOG_KAFKA_MAX_ID 64
/* "rsk1" || partition (4) || event time (8) || ingest time (8) || key id || id len (1) || id */
#define EVLOG_KAFKA_AD_MAX (4 + 4 + 8 + 8 + SEAL_ID_BYTES + 1 + EVLOG_KAFKA_MAX_ID)
/* Bytes charged to the queue budget per record on top of its sealed value and key. */
#define EVLOG_KAFKA_REC_OVERHEAD 160

/* One partition's read side. */
struct evlog_kafka_part {
    struct evlog_kafka *lk;
    int32_t id;
    pthread_mutex_t read_mu; /* one reader at a time: the queue has one position */
    rd_kafka_queue_t *q;     /* the partition's fetch queue (not forwarded) */
    int64_t next;            /* offset the queue delivers next; -1: unknown (seek first) */
};

struct evlog_kafka {
    struct evlog base;
    char *brokers, *topic;
    struct userkeys *keys;
    int64_t queue_bytes;
    int read_wait_ms;
    rd_kafka_t *prod, *cons;
    struct evlog_kafka_part *parts;

    pthread_t poller;
    atomic_bool stop_poller;
    atomic_int_fast64_t queued_bytes; /* budget taken by appends awaiting delivery reports */
    atomic_bool failed;               /* fatal producer error: appends refused */

    /* mu guards everything below; never held across a librdkafka call (its threads call
     * back into us holding their own locks). */
    pthread_mutex_t mu;
    pthread_cond_t cond; /* changes, high waters, inflight, closing */
    uint64_t changes;
    int64_t *high;    /* per partition: next offset known to exist */
    int64_t *low;     /* per partition: first offset known to exist */
    int64_t inflight; /* appends whose done has not run */
    int waiters;
    bool closing;
};

/* librdkafka's error and log callbacks, into our log (both handles use them). */
void evlog__kafka_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque);
void evlog__kafka_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf);
/* rd_kafka_conf_set, logging a refused setting: 0 or CORE_E_INVALID. */
int evlog__kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value);

/* Writes the associated data of a record into ad; returns its length. */
size_t evlog__kafka_ad(uint8_t *ad, int32_t partition, int64_t event_ms, int64_t ingest_ms,
                       const uint8_t key_id[SEAL_ID_BYTES], const char *id, size_t id_len);

/* Raises the known high water of p to at least high (and low to at least low when >= 0),
 * bumps the change counter when it moved and wakes waiters. Any thread but with mu free. */
void evlog__kafka_note(struct evlog_kafka *lk, int32_t p, int64_t low, int64_t high);

/* Read side (evlog_kafka_read.c). */
/* evlog_ops.fetch: pauses or resumes fetching p (resuming makes the next read seek). */
void evlog__kafka_fetch(struct evlog *log, int32_t p, bool on);
int evlog__kafka_read(struct evlog *log, int32_t p, int64_t from, size_t max,
                      struct evlog_batch *b);
int evlog__kafka_wait(struct evlog *log, int32_t p, int64_t offset, int timeout_ms);
uint64_t evlog__kafka_changes(struct evlog *log);
int evlog__kafka_wait_change(struct evlog *log, uint64_t seen, int timeout_ms);
int evlog__kafka_stats(struct evlog *log, int32_t p, struct evlog_partition_stats *out);
int evlog__kafka_offset_for_time(struct evlog *log, int32_t p, int64_t ts_ms, int64_t *offset);

/* Creates the consumer, assigns every partition and sets up the partition queues. */
int evlog__kafka_consumer_open(struct evlog_kafka *lk, int timeout_ms);
/* Releases every partition queue, unassigns and closes the consumer (never hangs). */
void evlog__kafka_consumer_close(struct evlog_kafka *lk);

#endif
