/*
 * userkeys_kafka: the per-user keys of a store shared through a Kafka "keys topic", so that
 * in scale-out mode every node (collectors, processors, on any machine) can open records
 * sealed under a key another node created, and a shred on one node reaches them all.
 *
 * Topic: any partition count (1+), `cleanup.policy=compact` on real clusters. A key is one
 * message: Kafka key = key id (24 hex chars), value = seal_record(data key, AD =
 * "recstream.userkey.v1" || key id, pseudonym || key id || DEK). A shred is a tombstone (null
 * value) under the same Kafka key, so compaction removes the key itself. The data key is the
 * file every node shares (DATA/privacy/data.key).
 *
 * Once attached, userkeys_acquire produces new keys (idempotent producer, acks=all) and
 * returns only after their delivery reports (so a key is durable in the cluster before any
 * record sealed under it can be acknowledged); userkeys_shred reads the topic to its end,
 * then produces a tombstone for every key id of the user and awaits them; userkeys_find_id
 * of an unknown id waits (up to catch_up_ms) until this node has read the topic up to its
 * high watermarks as of that moment, then answers. A consumer thread reads every partition
 * from the beginning into the store (in memory; nothing about keys is written locally).
 */
#ifndef RECSTREAM_USERKEYS_KAFKA_H
#define RECSTREAM_USERKEYS_KAFKA_H

#include "privacy/userkeys.h"

struct userkeys_kafka_options {
    const char *brokers;     /* bootstrap servers, "host:port[,host:port]" */
    const char *topic;       /* the keys topic; must exist */
    int open_timeout_ms;     /* metadata and initial load (default 30000) */
    int delivery_timeout_ms; /* a key's or tombstone's delivery (default 30000) */
    int catch_up_ms;         /* a reader's wait for an unknown key id (default 5000) */
};

void userkeys_kafka_options_init(struct userkeys_kafka_options *o);

struct userkeys_kafka;

/*
 * Attaches uk (borrowed; it must outlive the result and be a memory-only store, dir NULL) to
 * the keys topic: reads the topic to its end (so every key that existed at open is known when
 * this returns), then keeps following it. Returns 0, CORE_E_NOTFOUND (no such topic, logged),
 * CORE_E_TIMEOUT (the initial load took too long), CORE_E_INVALID or CORE_E_FAILED.
 */
int userkeys_kafka_open(struct userkeys *uk, const struct userkeys_kafka_options *o,
                        struct userkeys_kafka **out);

/* Detaches from uk and stops (uk keeps the keys it has). Call when nothing else uses uk. */
void userkeys_kafka_free(struct userkeys_kafka *k);

/* "<topic>.keys": the default keys topic of an events topic. */
void userkeys_kafka_default_topic(const char *events_topic, char *out, size_t size);

#endif
