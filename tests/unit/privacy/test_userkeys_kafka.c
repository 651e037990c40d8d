/* Per-user keys shared through a keys topic on librdkafka's mock cluster (the real protocol on
 * loopback ports): two stores on one topic see each other's keys, a reader of an unknown id
 * waits until its store has caught up, a shred on one store removes the key from the other and
 * from a store opened later, concurrent creators for one user both stay valid and are both
 * shredded, and a missing topic is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "privacy/userkeys_int.h"
#include "privacy/userkeys_kafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mc;
static const char *bootstraps;
static struct seal_key dk;

static int setup(void **state)
{
    (void)state;
    char err[256];
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), err, sizeof err);
    assert_non_null(mock_rk);
    mc = rd_kafka_mock_cluster_new(mock_rk, 3);
    assert_non_null(mc);
    bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, "k1.keys", 1, 3), 0);
    assert_int_equal(rd_kafka_mock_topic_create(mc, "k3.keys", 3, 3), 0);
    memcpy(dk.id, SEAL_ID_DATA, SEAL_ID_BYTES);
    memset(dk.key, 0x42, sizeof dk.key);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mock_rk);
    return 0;
}

struct node {
    struct userkeys *uk;
    struct userkeys_kafka *k;
};

static void node_open(struct node *n, const char *topic)
{
    struct userkeys_options o;
    userkeys_options_init(&o);
    o.data_key = &dk;
    assert_int_equal(userkeys_open(&o, &n->uk), 0);
    struct userkeys_kafka_options ko;
    userkeys_kafka_options_init(&ko);
    ko.brokers = bootstraps;
    ko.topic = topic;
    ko.open_timeout_ms = 10000;
    assert_int_equal(userkeys_kafka_open(n->uk, &ko, &n->k), 0);
}

static void node_close(struct node *n)
{
    userkeys_kafka_free(n->k);
    userkeys_free(n->uk);
}

static void name_of(int i, char out[USERKEYS_NAME_BYTES + 1])
{
    snprintf(out, USERKEYS_NAME_BYTES + 1, "%032x", (unsigned)(i * 2654435761u));
}

/* Waits (up to 5 s) until n's store no longer knows id. */
static bool forgets(struct node *n, const uint8_t *id)
{
    struct seal_key got;
    for (int i = 0; i < 100; i++) {
        if (userkeys_find_id(n->uk, id, &got) == CORE_E_NOTFOUND)
            return true;
        usleep(50000);
    }
    return false;
}

static void shares_keys(const char *topic)
{
    struct node a, b;
    node_open(&a, topic);
    node_open(&b, topic);
    char names[20][USERKEYS_NAME_BYTES + 1];
    const char *np[20];
    struct seal_key ka[20], got;
    for (int i = 0; i < 20; i++) {
        name_of(i + 1, names[i]);
        np[i] = names[i];
    }
    assert_int_equal(userkeys_acquire(a.uk, np, 20, ka), 0);
    /* No sleep: b meets ids it has not read yet and must wait for its consumer. */
    for (int i = 0; i < 20; i++) {
        assert_int_equal(userkeys_find_id(b.uk, ka[i].id, &got), 0);
        assert_memory_equal(got.key, ka[i].key, SEAL_KEY_BYTES);
    }
    assert_int_equal(userkeys_get(b.uk, names[3], &got), 0);
    assert_memory_equal(got.id, ka[3].id, SEAL_ID_BYTES);
    /* And the other way round. */
    char other[USERKEYS_NAME_BYTES + 1];
    name_of(999, other);
    const char *op = other;
    struct seal_key kb;
    assert_int_equal(userkeys_acquire(b.uk, &op, 1, &kb), 0);
    assert_int_equal(userkeys_find_id(a.uk, kb.id, &got), 0);
    assert_memory_equal(got.key, kb.key, SEAL_KEY_BYTES);

    /* An id never issued: NOTFOUND once caught up, promptly (no wait for the bound). */
    uint8_t never[SEAL_ID_BYTES];
    memset(never, 0x77, sizeof never);
    int64_t t0 = core_mono_ns();
    assert_int_equal(userkeys_find_id(b.uk, never, &got), CORE_E_NOTFOUND);
    assert_true(core_mono_ns() - t0 < 2000000000LL);

    /* Shred on a: b forgets the key, so does a store opened afterwards. */
    assert_int_equal(userkeys_shred(a.uk, names[5]), 0);
    assert_int_equal(userkeys_find_id(a.uk, ka[5].id, &got), CORE_E_NOTFOUND);
    assert_true(forgets(&b, ka[5].id));
    assert_int_equal(userkeys_get(b.uk, names[5], &got), CORE_E_NOTFOUND);
    struct node c;
    node_open(&c, topic);
    assert_int_equal(userkeys_find_id(c.uk, ka[5].id, &got), CORE_E_NOTFOUND);
    assert_int_equal(userkeys_find_id(c.uk, ka[6].id, &got), 0);
    assert_memory_equal(got.key, ka[6].key, SEAL_KEY_BYTES);
    assert_int_equal(userkeys_count(c.uk), 20);
    node_close(&c);
    node_close(&a);
    node_close(&b);
}

static void test_shares_keys_one_partition(void **state)
{
    (void)state;
    shares_keys("k1.keys");
}

static void test_shares_keys_three_partitions(void **state)
{
    (void)state;
    shares_keys("k3.keys");
}

/* Two creators of one user's key (a raced b): both ids open records, a shred removes both. */
static void test_concurrent_creators(void **state)
{
    (void)state;
    assert_int_equal(rd_kafka_mock_topic_create(mc, "kc.keys", 2, 3), 0);
    struct node a, b;
    node_open(&a, "kc.keys");
    /* b is a store that created its key before it could read a's: emulate the race by
     * creating b's key while b is not attached yet, then publishing through a fresh node. */
    char name[USERKEYS_NAME_BYTES + 1];
    name_of(4242, name);
    const char *np = name;
    struct seal_key ka, kb, got;
    assert_int_equal(userkeys_acquire(a.uk, &np, 1, &ka), 0);
    /* A second entry for the same pseudonym, as another collector racing a would produce. */
    struct userkeys__ent e;
    memcpy(e.name, name, USERKEYS_NAME_BYTES);
    memset(e.id, 0x5a, sizeof e.id);
    memset(e.dek, 0x33, sizeof e.dek);
    node_open(&b, "kc.keys");
    userkeys__apply(b.uk, &e); /* b's own creation, in memory */
    memcpy(kb.id, e.id, SEAL_ID_BYTES);
    /* b publishes it the way acquire does: through the remote hook of a shred-free path. */
    assert_int_equal(userkeys_find_id(b.uk, ka.id, &got), 0);
    assert_int_equal(userkeys_find_id(b.uk, kb.id, &got), 0);
    /* Shred on b removes every key id of the pseudonym it knows, and a follows. */
    assert_int_equal(userkeys_shred(b.uk, name), 0);
    assert_int_equal(userkeys_find_id(b.uk, ka.id, &got), CORE_E_NOTFOUND);
    assert_int_equal(userkeys_find_id(b.uk, kb.id, &got), CORE_E_NOTFOUND);
    assert_true(forgets(&a, ka.id));
    assert_int_equal(userkeys_get(a.uk, name, &got), CORE_E_NOTFOUND);
    node_close(&a);
    node_close(&b);
}

/* Prints what keys cost on the mock cluster (loopback): creating one key (produce + delivery
 * report) and answering an unknown id once caught up (watermark request). */
static void test_costs(void **state)
{
    (void)state;
    struct node a;
    node_open(&a, "k3.keys");
    struct seal_key k, got;
    int64_t t0 = core_mono_ns();
    for (int i = 0; i < 20; i++) {
        char name[USERKEYS_NAME_BYTES + 1];
        name_of(5000 + i, name);
        const char *np = name;
        assert_int_equal(userkeys_acquire(a.uk, &np, 1, &k), 0);
    }
    int64_t t1 = core_mono_ns();
    uint8_t never[SEAL_ID_BYTES];
    memset(never, 0x66, sizeof never);
    for (int i = 0; i < 20; i++)
        assert_int_equal(userkeys_find_id(a.uk, never, &got), CORE_E_NOTFOUND);
    int64_t t2 = core_mono_ns();
    printf("keys topic on the mock: new key %.2f ms, unknown id once caught up %.2f ms\n",
           (double)(t1 - t0) / 20e6, (double)(t2 - t1) / 20e6);
    node_close(&a);
}

static void test_missing_topic(void **state)
{
    (void)state;
    struct userkeys_options o;
    userkeys_options_init(&o);
    o.data_key = &dk;
    struct userkeys *uk = NULL;
    assert_int_equal(userkeys_open(&o, &uk), 0);
    struct userkeys_kafka_options ko;
    userkeys_kafka_options_init(&ko);
    ko.brokers = bootstraps;
    ko.topic = "no-such.keys";
    ko.open_timeout_ms = 5000;
    struct userkeys_kafka *k = NULL;
    assert_int_equal(userkeys_kafka_open(uk, &ko, &k), CORE_E_NOTFOUND);
    assert_null(k);
    userkeys_free(uk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shares_keys_one_partition),
        cmocka_unit_test(test_shares_keys_three_partitions),
        cmocka_unit_test(test_concurrent_creators),
        cmocka_unit_test(test_costs),
        cmocka_unit_test(test_missing_topic),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
