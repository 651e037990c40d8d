/* Opening `serve`'s event log on a Kafka topic (see serve_kafka.h). */
#include "cli/serve_kafka.h"

#include <stdio.h>
#include <string.h>

bool serve_log_is_kafka(const char *uri)
{
    return strncmp(uri, "kafka://", 8) == 0;
}

int serve_log_check(const char *uri, char *err, size_t es)
{
    char brokers[1024], topic[256];
    if (uri[0] == '\0' ||
        evlog_kafka_parse_uri(uri, brokers, sizeof brokers, topic, sizeof topic) == 0)
        return 0;
    snprintf(err, es, "expected kafka://HOST:PORT[,HOST:PORT]/TOPIC (topic: [a-zA-Z0-9._-])");
    return CORE_E_INVALID;
}

int serve_kafka_open(const char *uri, int32_t partitions, int64_t queue_bytes,
                     struct userkeys *keys, struct evlog **out)
{
    char brokers[1024], topic[256];
    if (evlog_kafka_parse_uri(uri, brokers, sizeof brokers, topic, sizeof topic) < 0)
        return CORE_E_INVALID;
    struct evlog_kafka_options o;
    evlog_kafka_options_init(&o);
    o.brokers = brokers;
    o.topic = topic;
    o.partitions = partitions;
    o.queue_bytes = queue_bytes;
    o.keys = keys;
    int rc = evlog_kafka_open(&o, out);
    if (rc < 0)
        return rc;
    /* What the embedded log does that the topic does for itself, or that does not apply. */
    LOG_INFO("kafka log: the topic's retention.ms deletes events (--retention-events, "
             "--segment-bytes/--segment-age and --fsync do not apply; `recstream log check` "
             "reads the embedded log only)",
             "topic=%s", topic);
    return 0;
}
