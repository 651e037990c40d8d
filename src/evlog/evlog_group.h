/*
 * evlog_group: membership of a Kafka consumer group, for processors sharing a topic.
 *
 * The group only decides which member owns which partitions; it never delivers records (the
 * partitions it is given are paused at once). Records come through the log's own reader (the
 * Kafka evlog backend), and processed offsets live in our checkpoints: exactly-once state does
 * not depend on Kafka's offsets. Offsets are still committed to the group (evlog_group_commit)
 * so lag shows in standard Kafka tooling (kafka-consumer-groups, kcat -Q, Burrow).
 *
 * Callbacks run on the group's own thread, during a rebalance: on_assign with the partitions
 * this member now owns (it should restore their state, e.g. stream_assign), on_revoke with the
 * partitions it loses, before any other member gets them (it should stop applying them and
 * checkpoint them, e.g. stream_revoke; the next owner starts from that checkpoint). The
 * eager "roundrobin" assignor is used: every rebalance revokes everything, then assigns.
 * A member that dies without revoking (SIGKILL) loses its partitions after the session
 * timeout; the next owner restores the dead member's newest checkpoint and replays from it.
 */
#ifndef RECSTREAM_EVLOG_GROUP_H
#define RECSTREAM_EVLOG_GROUP_H

#include "core/core.h"

typedef void (*evlog_group_fn)(void *arg, const int32_t *partitions, int32_t n);

struct evlog_group_options {
    const char *brokers; /* bootstrap servers, "host:port[,host:port]" */
    const char *topic;
    const char *group;      /* group.id (default "recstream-processors") */
    const char *client_id;  /* shown in group tooling (default "recstream") */
    int session_timeout_ms; /* a dead member is noticed after this (default 10000) */
    int commit_interval_ms; /* offsets stored by evlog_group_commit go out this often (1000) */
    evlog_group_fn on_assign;
    evlog_group_fn on_revoke;
    /* Optional: the next offset to process of an assigned partition (-1: unknown), asked at
     * every commit interval on the group's thread, instead of evlog_group_commit. */
    int64_t (*offset_of)(void *arg, int32_t partition);
    void *arg;
};

void evlog_group_options_init(struct evlog_group_options *o);

struct evlog_group;

/* Joins the group and starts its thread; the first assignment arrives through on_assign a few
 * seconds later. Returns 0 or CORE_E_INVALID (bad options; logged). */
int evlog_group_join(const struct evlog_group_options *o, struct evlog_group **out);

/* Records the next offset to process of partition p (committed at the next commit interval,
 * only while p is assigned here; commits failing during a rebalance are retried). Any thread. */
void evlog_group_commit(struct evlog_group *g, int32_t p, int64_t next_offset);

/* The partitions currently assigned here, ascending, up to max; returns the count. */
int32_t evlog_group_assignment(struct evlog_group *g, int32_t *out, int32_t max);

/* Rebalances completed so far (assignments received). */
uint64_t evlog_group_generation(struct evlog_group *g);

/* Leaves the group: on_revoke runs for what is assigned (on this thread), the last offsets are
 * committed, the handle is freed. */
void evlog_group_leave(struct evlog_group *g);

#endif
