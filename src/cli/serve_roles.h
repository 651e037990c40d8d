/*
 * Scale-out pieces of `recstream serve` (serve_roles.c): the per-user keys shared through the
 * Kafka keys topic, a processor's consumer-group membership, and the collector role.
 * docs/ARCHITECTURE.md, "Roles", says what each role holds and serves.
 */
#ifndef RECSTREAM_CLI_SERVE_ROLES_H
#define RECSTREAM_CLI_SERVE_ROLES_H

#include "cli/cli_int.h"
#include "privacy/userkeys_kafka.h"

struct stream;
struct evlog_group;

/*
 * Kafka mode: loads the data key (data_key_path, or DATA/privacy/data.key; created when
 * missing, and then every node must be given the same file) and opens an in-memory user key
 * store attached to the keys topic (keys_topic, or "<events topic>.keys" when empty) of the
 * cluster named by log_uri. Nothing about user keys is written to the data directory. Returns 0
 * or an error (logged); on success close with userkeys_kafka_free(*out) then cli__keys_close.
 */
int serve_kafka_keys_open(const char *data, const char *data_key_path, int64_t max_users,
                          const char *log_uri, const char *keys_topic, struct cli_keys *k,
                          struct userkeys_kafka **out);

/*
 * --role processor --group NAME: joins the consumer group of the topic named by log_uri, whose
 * rebalances assign and revoke st's partitions (st started owning none). session_ms 0 takes the
 * default. Returns 0 or an error (logged). Leave with stream_group_leave before stream_stop.
 */
int serve_group_join(struct stream *st, const char *log_uri, const char *group, int session_ms,
                     struct evlog_group **out);

/* Prometheus lines of a processor in a group: recstream_group_generation (rebalances seen) and
 * recstream_stream_partition_owned{partition} (1 owned here, 0 not). Any thread. */
void serve_group_metrics(struct stream *st, struct evlog_group *g, struct core_buf *out);

/* A store_publisher_config.owns_fn over a struct stream * (stream_owns). */
bool serve_owns_partition(void *stream, int32_t p);

/* A stream_config.revoked_fn over a struct store_publisher ** (store_publisher_barrier). */
void serve_publisher_barrier(void *pubp);

#endif
