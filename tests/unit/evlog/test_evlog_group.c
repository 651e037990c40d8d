/* evlog_group: consumer-group membership against librdkafka's mock cluster (the real
 * protocol on loopback ports). Runs under `timeout` (tests/CMakeLists.txt). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "evlog/evlog_group.h"

#define TOPIC "events"
#define PARTS 6
#define SESSION_MS 6000 /* the mock cluster rebalances in about session.timeout - 1 s */

struct cluster {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    const char *bootstraps;
};

static void cluster_start(struct cluster *c)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(c->rk);
    c->mc = rd_kafka_mock_cluster_new(c->rk, 3);
    assert_non_null(c->mc);
    assert_int_equal(rd_kafka_mock_topic_create(c->mc, TOPIC, PARTS, 3), 0);
    c->bootstraps = rd_kafka_mock_cluster_bootstraps(c->mc);
}

static void cluster_stop(struct cluster *c)
{
    rd_kafka_mock_cluster_destroy(c->mc);
    rd_kafka_destroy(c->rk);
}

/* Who owns each partition according to the callbacks: a partition is never assigned to a
 * member before the previous owner's revoke returned. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int owner[PARTS];
static int assigns[3], revokes[3];
static int violations;

struct member {
    int id;
    struct evlog_group *g;
};

static void on_assign(void *arg, const int32_t *parts, int32_t n)
{
    struct member *m = arg;
    pthread_mutex_lock(&mu);
    for (int32_t i = 0; i < n; i++) {
        if (owner[parts[i]] != 0)
            violations++;
        owner[parts[i]] = m->id;
    }
    assigns[m->id]++;
    pthread_mutex_unlock(&mu);
}

static void on_revoke(void *arg, const int32_t *parts, int32_t n)
{
    struct member *m = arg;
    pthread_mutex_lock(&mu);
    for (int32_t i = 0; i < n; i++) {
        if (owner[parts[i]] != m->id)
            violations++;
        owner[parts[i]] = 0;
    }
    revokes[m->id]++;
    pthread_mutex_unlock(&mu);
}

static void join(struct member *m, int id, const char *bootstraps)
{
    m->id = id;
    struct evlog_group_options o;
    evlog_group_options_init(&o);
    o.brokers = bootstraps;
    o.topic = TOPIC;
    o.group = "test-group";
    o.session_timeout_ms = SESSION_MS;
    o.commit_interval_ms = 200;
    o.on_assign = on_assign;
    o.on_revoke = on_revoke;
    o.arg = m;
    assert_int_equal(evlog_group_join(&o, &m->g), 0);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Waits until the members hold `want[i]` partitions each (at most timeout_ms). */
static bool wait_counts(struct member *ms, const int *want, int n, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 100) {
        bool ok = true;
        int32_t parts[PARTS];
        for (int i = 0; i < n && ok; i++)
            ok = evlog_group_assignment(ms[i].g, parts, PARTS) == want[i];
        if (ok)
            return true;
        sleep_ms(100);
    }
    return false;
}

/* The group's committed offset of partition p, read by another client as lag tools do. */
static int64_t committed(const char *bootstraps, int32_t p)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, err, sizeof err), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "test-group", err, sizeof err), 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, TOPIC, p);
    assert_int_equal(rd_kafka_committed(rk, l, 10000), 0);
    int64_t off = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return off;
}

static void test_members_split_and_take_over(void **state)
{
    (void)state;
    struct cluster c;
    cluster_start(&c);
    struct member ms[2];

    /* one member: everything */
    join(&ms[0], 1, c.bootstraps);
    assert_true(wait_counts(ms, (const int[]){PARTS}, 1, 30000));
    uint64_t gen1 = evlog_group_generation(ms[0].g);
    assert_true(gen1 >= 1);

    /* offsets committed for lag show to other clients */
    evlog_group_commit(ms[0].g, 2, 17);
    int64_t seen = -1;
    for (int t = 0; t < 100 && seen != 17; t++) {
        sleep_ms(100);
        seen = committed(c.bootstraps, 2);
    }
    assert_int_equal(seen, 17);

    /* a second member: half each, disjoint, everything owned */
    join(&ms[1], 2, c.bootstraps);
    assert_true(wait_counts(ms, (const int[]){PARTS / 2, PARTS / 2}, 2, 60000));
    pthread_mutex_lock(&mu);
    int n1 = 0, n2 = 0;
    for (int p = 0; p < PARTS; p++) {
        n1 += owner[p] == 1;
        n2 += owner[p] == 2;
    }
    assert_int_equal(n1, PARTS / 2);
    assert_int_equal(n2, PARTS / 2);
    assert_true(revokes[1] >= 1); /* eager: member 1 gave everything back first */
    assert_int_equal(violations, 0);
    pthread_mutex_unlock(&mu);

    /* the second leaves (revoking on the way out): the first takes everything back */
    evlog_group_leave(ms[1].g);
    assert_true(wait_counts(ms, (const int[]){PARTS}, 1, 60000));
    pthread_mutex_lock(&mu);
    for (int p = 0; p < PARTS; p++)
        assert_int_equal(owner[p], 1);
    assert_true(revokes[2] >= 1);
    assert_int_equal(violations, 0);
    pthread_mutex_unlock(&mu);
    assert_true(evlog_group_generation(ms[0].g) > gen1);

    evlog_group_leave(ms[0].g);
    pthread_mutex_lock(&mu);
    for (int p = 0; p < PARTS; p++)
        assert_int_equal(owner[p], 0); /* leaving revokes */
    pthread_mutex_unlock(&mu);
    cluster_stop(&c);
}

static void test_bad_options(void **state)
{
    (void)state;
    struct evlog_group_options o;
    evlog_group_options_init(&o);
    struct evlog_group *g = NULL;
    assert_int_equal(evlog_group_join(&o, &g), CORE_E_INVALID); /* no brokers, no topic */
    o.brokers = "127.0.0.1:1";
    o.topic = TOPIC;
    o.group = "";
    assert_int_equal(evlog_group_join(&o, &g), CORE_E_INVALID);
    o.group = "g";
    o.session_timeout_ms = 7200000; /* above librdkafka's range */
    assert_int_equal(evlog_group_join(&o, &g), CORE_E_INVALID);
    assert_null(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_members_split_and_take_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
