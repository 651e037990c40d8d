/* Scale-out pieces of `recstream serve` (see serve_roles.h). */
#include "cli/serve_roles.h"

#include "cli/serve_kafka.h"
#include "evlog/evlog_group.h"
#include "store/store.h"
#include "stream/stream.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int serve_kafka_keys_open(const char *data, const char *data_key_path, int64_t max_users,
                          const char *log_uri, const char *keys_topic, struct cli_keys *k,
                          struct userkeys_kafka **out)
{
    char brokers[1024], topic[256], ktopic[300], path[1200];
    int rc = evlog_kafka_parse_uri(log_uri, brokers, sizeof brokers, topic, sizeof topic);
    if (rc < 0)
        return CORE_E_INVALID;
    if (keys_topic && *keys_topic)
        snprintf(ktopic, sizeof ktopic, "%s", keys_topic);
    else
        userkeys_kafka_default_topic(topic, ktopic, sizeof ktopic);
    if (data_key_path && *data_key_path)
        snprintf(path, sizeof path, "%s", data_key_path);
    else
        snprintf(path, sizeof path, "%s/privacy/data.key", data);
    memset(k, 0, sizeof *k);
    bool created = false;
    rc = seal_data_key_load_or_create(path, &k->data_key, &created);
    if (rc < 0) {
        LOG_ERROR("cannot load the data key", "path=%s err=\"%s\"", path, core_strerror(rc));
        return rc;
    }
    if (created)
        LOG_WARN("created a data key: in Kafka mode every node (collectors, processors) must "
                 "use the same one, copy this file to the others (or pass --data-key)",
                 "path=%s", path);
    snprintf(path, sizeof path, "%s/privacy/userkeys", data);
    struct stat st;
    if (stat(path, &st) == 0)
        LOG_WARN("a local user key store exists but Kafka mode keeps user keys in the keys topic "
                 "only: records sealed under local keys cannot be opened here",
                 "dir=%s topic=%s", path, ktopic);
    struct userkeys_options uo;
    userkeys_options_init(&uo);
    uo.data_key = &k->data_key;
    if (max_users > 0)
        uo.max_users = max_users;
    rc = userkeys_open(&uo, &k->uk);
    if (rc < 0) {
        seal_key_dispose(&k->data_key);
        return rc;
    }
    struct userkeys_kafka_options ko;
    userkeys_kafka_options_init(&ko);
    ko.brokers = brokers;
    ko.topic = ktopic;
    rc = userkeys_kafka_open(k->uk, &ko, out);
    if (rc < 0)
        LOG_ERROR("cannot open the keys topic", "topic=%s err=\"%s\"", ktopic, core_strerror(rc));
    else
        rc = cli__epochkeys_open(data, k); /* not shared yet: docs/PRIVACY.md, Field retention */
    if (rc < 0) {
        userkeys_kafka_free(*out);
        *out = NULL;
        cli__keys_close(k);
    }
    return rc;
}

int serve_group_join(struct stream *st, const char *log_uri, const char *group, int session_ms,
                     struct evlog_group **out)
{
    char brokers[1024], topic[256];
    if (evlog_kafka_parse_uri(log_uri, brokers, sizeof brokers, topic, sizeof topic) < 0)
        return CORE_E_INVALID;
    struct evlog_group_options go;
    evlog_group_options_init(&go);
    go.brokers = brokers;
    go.topic = topic;
    go.group = group;
    go.client_id = "recstream-processor";
    if (session_ms > 0)
        go.session_timeout_ms = session_ms;
    int rc = stream_group_join(st, &go, out);
    if (rc < 0)
        LOG_ERROR("cannot join the consumer group", "group=%s topic=%s err=\"%s\"", group, topic,
                  core_strerror(rc));
    else
        LOG_INFO("joined the consumer group: partitions come with the first rebalance",
                 "group=%s topic=%s session_timeout_ms=%d", group, topic, go.session_timeout_ms);
    return rc;
}

bool serve_owns_partition(void *stream, int32_t p)
{
    return stream_owns(stream, p);
}

void serve_publisher_barrier(void *pubp)
{
    store_publisher_barrier(*(struct store_publisher **)pubp);
}

void serve_group_metrics(struct stream *st, struct evlog_group *g, struct core_buf *out)
{
    core_buf_metric(out, "recstream_group_generation", "counter",
                    "Rebalances of the consumer group seen.", (int64_t)evlog_group_generation(g));
    core_buf_puts(out, "# HELP recstream_stream_partition_owned 1 when the partition is owned "
                       "(applied and published) here.\n# TYPE recstream_stream_partition_owned "
                       "gauge\n");
    for (int32_t p = 0; p < stream_partitions(st); p++)
        core_buf_printf(out, "recstream_stream_partition_owned{partition=\"%d\"} %d\n", (int)p,
                        stream_owns(st, p) ? 1 : 0);
}
