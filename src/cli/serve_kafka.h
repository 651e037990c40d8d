/*
 * `recstream serve --log kafka://...` (serve_kafka.c): opening the event log on a Kafka
 * topic instead of the embedded segment files.
 */
#ifndef RECSTREAM_CLI_SERVE_KAFKA_H
#define RECSTREAM_CLI_SERVE_KAFKA_H

#include "evlog/evlog.h"

/* True when uri names a Kafka log (kafka://...). */
bool serve_log_is_kafka(const char *uri);

/* Checks a --log value: "" (the embedded log) or kafka://HOST:PORT[,HOST:PORT]/TOPIC.
 * Returns 0 or CORE_E_INVALID with err filled. */
int serve_log_check(const char *uri, char *err, size_t es);

/*
 * Opens the Kafka log named by uri with keys (borrowed). partitions: 0 takes the topic's
 * count, otherwise (given explicitly with --partitions) it must equal it. queue_bytes bounds
 * the bytes awaiting delivery reports. Logs which file-log features do not apply. Returns 0 or
 * the error of evlog_kafka_open (logged there).
 */
int serve_kafka_open(const char *uri, int32_t partitions, int64_t queue_bytes,
                     struct userkeys *keys, struct evlog **out);

#endif
