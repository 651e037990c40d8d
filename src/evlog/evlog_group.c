/*
 * Consumer-group membership on librdkafka (evlog_group.h). One consumer handle subscribed to
 * the topic, served by its own thread: the rebalance callback pauses whatever it is given (the
 * handle never delivers records) and hands the partition lists to the owner's callbacks;
 * stored offsets are committed synchronously from the same thread.
 */
#include "evlog/evlog_group.h"
#include "evlog/evlog_kafka_int.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GROUP_PARTITIONS_MAX 4096 /* partitions of the topic this member can be given */
#define POLL_MS 100

struct evlog_group {
    rd_kafka_t *rk;
    struct evlog_group_options o;
    char *brokers, *topic, *group, *client_id;
    pthread_t tid;
    bool started;
    atomic_bool stop;
    pthread_mutex_t mu; /* guards the arrays and gen */
    bool assigned[GROUP_PARTITIONS_MAX];
    int64_t stored[GROUP_PARTITIONS_MAX];    /* next offset to process, -1 none */
    int64_t committed[GROUP_PARTITIONS_MAX]; /* last committed, -1 none */
    uint64_t gen;
};

void evlog_group_options_init(struct evlog_group_options *o)
{
    memset(o, 0, sizeof *o);
    o->group = "recstream-processors";
    o->client_id = "recstream";
    o->session_timeout_ms = 10000;
    o->commit_interval_ms = 1000;
}

/* Commits every assigned partition whose stored offset moved (the group thread only). A
 * failure (during a rebalance, commits fail) leaves them to the next round. */
static void commit_stored(struct evlog_group *g)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    if (g->o.offset_of) {
        int32_t parts[GROUP_PARTITIONS_MAX];
        int32_t n = evlog_group_assignment(g, parts, GROUP_PARTITIONS_MAX);
        for (int32_t i = 0; i < n; i++)
            evlog_group_commit(g, parts[i], g->o.offset_of(g->o.arg, parts[i]));
    }
    pthread_mutex_lock(&g->mu);
    for (int32_t p = 0; p < GROUP_PARTITIONS_MAX; p++)
        if (g->assigned[p] && g->stored[p] >= 0 && g->stored[p] != g->committed[p])
            rd_kafka_topic_partition_list_add(l, g->topic, p)->offset = g->stored[p];
    pthread_mutex_unlock(&g->mu);
    if (l->cnt > 0) {
        rd_kafka_resp_err_t err = rd_kafka_commit(g->rk, l, 0);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            pthread_mutex_lock(&g->mu);
            for (int i = 0; i < l->cnt; i++)
                if (l->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
                    g->committed[l->elems[i].partition] = l->elems[i].offset;
            pthread_mutex_unlock(&g->mu);
        } else if (err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
            LOG_DEBUG("kafka group commit deferred", "err=\"%s\"", rd_kafka_err2str(err));
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct evlog_group *g = opaque;
    int32_t *ids = core_xcalloc((size_t)parts->cnt + 1, sizeof *ids);
    int32_t n = 0;
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        if (!strcmp(parts->elems[i].topic, g->topic) && p >= 0 && p < GROUP_PARTITIONS_MAX)
            ids[n++] = p;
        else
            LOG_WARN("kafka group: partition ignored", "topic=%s partition=%d",
                     parts->elems[i].topic, (int)p);
    }
    qsort(ids, (size_t)n, sizeof *ids, cmp_i32);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rd_kafka_assign(rk, parts);
        rd_kafka_pause_partitions(rk, parts); /* records come through the log's reader */
        pthread_mutex_lock(&g->mu);
        for (int32_t i = 0; i < n; i++) {
            g->assigned[ids[i]] = true;
            g->stored[ids[i]] = g->committed[ids[i]] = -1;
        }
        g->gen++;
        pthread_mutex_unlock(&g->mu);
        LOG_INFO("kafka group: partitions assigned", "group=%s count=%d", g->group, (int)n);
        if (g->o.on_assign)
            g->o.on_assign(g->o.arg, ids, n);
    } else {
        if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            LOG_WARN("kafka group: rebalance error; partitions dropped", "err=\"%s\"",
                     rd_kafka_err2str(err));
        if (g->o.on_revoke)
            g->o.on_revoke(g->o.arg, ids, n); /* stops and checkpoints them */
        commit_stored(g);                     /* may fail mid-rebalance: lag only */
        pthread_mutex_lock(&g->mu);
        for (int32_t i = 0; i < n; i++)
            g->assigned[ids[i]] = false;
        pthread_mutex_unlock(&g->mu);
        LOG_INFO("kafka group: partitions revoked", "group=%s count=%d", g->group, (int)n);
        rd_kafka_assign(rk, NULL);
    }
    free(ids);
}

static void *group_main(void *arg)
{
    struct evlog_group *g = arg;
    pthread_setname_np(pthread_self(), "log-group");
    int64_t last = core_mono_ns();
    while (!atomic_load(&g->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(g->rk, POLL_MS);
        if (m) {
            if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                LOG_DEBUG("kafka group consumer", "err=\"%s\"", rd_kafka_err2str(m->err));
            rd_kafka_message_destroy(m); /* paused partitions: only a fetch in flight */
        }
        int64_t now = core_mono_ns();
        if ((now - last) / 1000000 >= g->o.commit_interval_ms) {
            commit_stored(g);
            last = now;
        }
    }
    return NULL;
}

static void group_free(struct evlog_group *g)
{
    free(g->brokers);
    free(g->topic);
    free(g->group);
    free(g->client_id);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

int evlog_group_join(const struct evlog_group_options *o, struct evlog_group **out)
{
    if (!o->brokers || !*o->brokers || !o->topic || !*o->topic || !o->group || !*o->group)
        return CORE_E_INVALID;
    struct evlog_group *g = core_xcalloc(1, sizeof *g);
    g->o = *o;
    g->brokers = core_xstrdup(o->brokers);
    g->topic = core_xstrdup(o->topic);
    g->group = core_xstrdup(o->group);
    g->client_id = core_xstrdup(o->client_id ? o->client_id : "recstream");
    pthread_mutex_init(&g->mu, NULL);
    for (int32_t p = 0; p < GROUP_PARTITIONS_MAX; p++)
        g->stored[p] = g->committed[p] = -1;
    char session[24], heartbeat[24];
    int st = o->session_timeout_ms > 0 ? o->session_timeout_ms : 10000;
    snprintf(session, sizeof session, "%d", st);
    snprintf(heartbeat, sizeof heartbeat, "%d", st / 3 > 100 ? st / 3 : 100);
    if (g->o.commit_interval_ms <= 0)
        g->o.commit_interval_ms = 1000;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = evlog__kafka_conf_set(conf, "bootstrap.servers", g->brokers);
    rc = rc ? rc : evlog__kafka_conf_set(conf, "group.id", g->group);
    rc = rc ? rc : evlog__kafka_conf_set(conf, "client.id", g->client_id);
    rc = rc ? rc : evlog__kafka_conf_set(conf, "session.timeout.ms", session);
    rc = rc ? rc : evlog__kafka_conf_set(conf, "heartbeat.interval.ms", heartbeat);
    rc = rc ? rc : evlog__kafka_conf_set(conf, "partition.assignment.strategy", "roundrobin");
    rc = rc ? rc : evlog__kafka_conf_set(conf, "enable.auto.commit", "false");
    rc = rc ? rc : evlog__kafka_conf_set(conf, "enable.auto.offset.store", "false");
    rc = rc ? rc : evlog__kafka_conf_set(conf, "enable.partition.eof", "false");
    rc = rc ? rc : evlog__kafka_conf_set(conf, "queued.max.messages.kbytes", "64");
    if (rc < 0) {
        rd_kafka_conf_destroy(conf);
        group_free(g);
        return CORE_E_INVALID;
    }
    rd_kafka_conf_set_log_cb(conf, evlog__kafka_on_log);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_opaque(conf, g);
    char err[256];
    g->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!g->rk) {
        LOG_ERROR("kafka group: cannot create the consumer", "err=\"%s\"", err);
        rd_kafka_conf_destroy(conf);
        group_free(g);
        return CORE_E_INVALID;
    }
    rd_kafka_poll_set_consumer(g->rk);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, g->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(g->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        LOG_ERROR("kafka group: cannot subscribe", "topic=%s err=\"%s\"", g->topic,
                  rd_kafka_err2str(e));
        rd_kafka_destroy(g->rk);
        group_free(g);
        return CORE_E_INVALID;
    }
    if (pthread_create(&g->tid, NULL, group_main, g) != 0) {
        rd_kafka_consumer_close(g->rk);
        rd_kafka_destroy(g->rk);
        group_free(g);
        return CORE_E_FAILED;
    }
    g->started = true;
    LOG_INFO("kafka group joining", "brokers=%s topic=%s group=%s session_timeout_ms=%d",
             g->brokers, g->topic, g->group, st);
    *out = g;
    return 0;
}

void evlog_group_commit(struct evlog_group *g, int32_t p, int64_t next_offset)
{
    if (p < 0 || p >= GROUP_PARTITIONS_MAX || next_offset < 0)
        return;
    pthread_mutex_lock(&g->mu);
    if (g->assigned[p])
        g->stored[p] = next_offset;
    pthread_mutex_unlock(&g->mu);
}

int32_t evlog_group_assignment(struct evlog_group *g, int32_t *out, int32_t max)
{
    int32_t n = 0;
    pthread_mutex_lock(&g->mu);
    for (int32_t p = 0; p < GROUP_PARTITIONS_MAX && n < max; p++)
        if (g->assigned[p])
            out[n++] = p;
    pthread_mutex_unlock(&g->mu);
    return n;
}

uint64_t evlog_group_generation(struct evlog_group *g)
{
    pthread_mutex_lock(&g->mu);
    uint64_t gen = g->gen;
    pthread_mutex_unlock(&g->mu);
    return gen;
}

void evlog_group_leave(struct evlog_group *g)
{
    if (!g)
        return;
    atomic_store(&g->stop, true);
    if (g->started)
        pthread_join(g->tid, NULL);
    /* Serves the final revoke (on_revoke on this thread) and leaves the group at once. */
    rd_kafka_consumer_close(g->rk);
    rd_kafka_destroy(g->rk);
    LOG_INFO("kafka group left", "group=%s", g->group);
    group_free(g);
}
