/*
 * `recstream dev kafka-mock`: starts librdkafka's built-in mock cluster (it speaks the real
 * Kafka protocol on loopback ports, so kcat, Java clients and recstream itself can connect)
 * with a topic, prints its bootstrap address and runs until SIGINT/SIGTERM. For trying the
 * scale-out mode and for tests without installing Kafka; see DESIGN.md for what the mock
 * does not enforce (transactions, retention beyond ~5 MiB per partition).
 */
#include "cli/cli_int.h"
#include "privacy/userkeys_kafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <string.h>

struct dev_config {
    int64_t brokers, partitions;
    char topic[250];
};

#define DCFG ((struct dev_config *)cfg)

static int set_brokers(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_int(&DCFG->brokers, v, 1, 16, err, es);
}

static int set_partitions(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_int(&DCFG->partitions, v, 1, 1024, err, es);
}

static int set_topic(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(DCFG->topic, sizeof DCFG->topic, v, err, es);
}

static const struct cli_opt dev_opts[] = {
    {"brokers", "N", "mock brokers (default 3)", set_brokers},
    {"partitions", "N", "partitions of the topic (default 6)", set_partitions},
    {"topic", "NAME", "topic to create (default user-interactions)", set_topic},
};

static const char *usage = "kafka-mock [--brokers N] [--partitions N] [--topic NAME]";

/* Runs the mock cluster until SIGINT or SIGTERM. The bootstrap address goes to stdout as
 * `bootstrap=<host:port,...>` (one line, flushed) so scripts can read it. */
static int kafka_mock(const struct dev_config *c)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* The handle only hosts the cluster; it never connects anywhere itself. */
    if (rd_kafka_conf_set(conf, "client.id", "recstream-kafka-mock", err, sizeof err) !=
        RD_KAFKA_CONF_OK) {
        fprintf(stderr, "recstream dev: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "recstream dev: cannot create the Kafka handle: %s\n", err);
        return 1;
    }
    int rc = 1;
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, (int)c->brokers);
    if (!mc) {
        fprintf(stderr, "recstream dev: cannot start the mock cluster\n");
        goto out;
    }
    /* The events topic and its keys topic (per-user encryption keys shared by every node,
     * privacy/userkeys_kafka.h; the mock has no compaction, a real cluster compacts it). */
    char keys_topic[300];
    userkeys_kafka_default_topic(c->topic, keys_topic, sizeof keys_topic);
    rd_kafka_resp_err_t e =
        rd_kafka_mock_topic_create(mc, c->topic, (int)c->partitions, (int)c->brokers);
    if (!e)
        e = rd_kafka_mock_topic_create(mc, keys_topic, 1, (int)c->brokers);
    if (e) {
        fprintf(stderr, "recstream dev: cannot create topics %s and %s: %s\n", c->topic, keys_topic,
                rd_kafka_err2str(e));
        rd_kafka_mock_cluster_destroy(mc);
        goto out;
    }
    /* Block the signals first so sigwait sees them (librdkafka's threads inherit the mask). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    printf("bootstrap=%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    fprintf(stderr,
            "recstream dev: Kafka mock cluster with %d brokers, topic %s with %d partitions "
            "and keys topic %s (librdkafka %s); Ctrl-C stops it\n",
            (int)c->brokers, c->topic, (int)c->partitions, keys_topic, rd_kafka_version_str());
    int sig = 0;
    sigwait(&set, &sig);
    rd_kafka_mock_cluster_destroy(mc);
    rc = 0;
out:
    rd_kafka_destroy(rk);
    return rc;
}

int cli_cmd_dev(int argc, char **argv)
{
    size_t nopts = sizeof dev_opts / sizeof *dev_opts;
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            cli__help(stdout, "dev", usage, dev_opts, nopts);
            return 0;
        }
        fprintf(stderr, "usage: recstream dev %s\n", usage);
        return 2;
    }
    const char *sub = argv[1];
    struct dev_config c = {.brokers = 3, .partitions = 6};
    snprintf(c.topic, sizeof c.topic, "user-interactions");
    int rc = cli__parse("dev", usage, dev_opts, nopts, &c, argc - 1, argv + 1);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (!strcmp(sub, "kafka-mock"))
        return kafka_mock(&c);
    fprintf(stderr, "recstream dev: unknown subcommand '%s' (kafka-mock)\n", sub);
    return 2;
}
