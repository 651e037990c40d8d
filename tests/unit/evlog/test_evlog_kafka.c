/*
 * The Kafka backend against librdkafka's mock cluster (real protocol on loopback ports),
 * created in this process: 3 brokers, topics of 6 partitions.
 */
#include "evlog_testutil.h"

#include "evlog/evlog.h"
#include "privacy/userkeys.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define PARTS 6

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mc;
static const char *bootstraps;

static int setup(void **state)
{
    (void)state;
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(mock_rk);
    mc = rd_kafka_mock_cluster_new(mock_rk, 3);
    assert_non_null(mc);
    bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    const char *topics[] = {"t-round", "t-agree", "t-seal",  "t-tamper", "t-erase",
                            "t-full",  "t-wait",  "t-close", "t-fail",   "t-pause"};
    for (size_t i = 0; i < sizeof topics / sizeof *topics; i++)
        assert_int_equal(rd_kafka_mock_topic_create(mc, topics[i], PARTS, 3), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mock_rk);
    return 0;
}

static struct evlog *open_log(const char *topic, int64_t queue_bytes)
{
    struct evlog_kafka_options o;
    evlog_kafka_options_init(&o);
    o.brokers = bootstraps;
    o.topic = topic;
    o.keys = tu_keys();
    if (queue_bytes)
        o.queue_bytes = queue_bytes;
    struct evlog *log = NULL;
    assert_int_equal(evlog_kafka_open(&o, &log), 0);
    assert_int_equal(log->partitions, PARTS);
    return log;
}

/* A 32-hex pseudonymous key for user i. */
static void user_key(char key[33], int i)
{
    snprintf(key, 33, "%08x%024x", (unsigned)i * 2654435761u, (unsigned)i);
}

/* ---- open ------------------------------------------------------------------------------- */

static void test_open_checks_topic(void **state)
{
    (void)state;
    struct evlog_kafka_options o;
    evlog_kafka_options_init(&o);
    o.brokers = bootstraps;
    o.keys = tu_keys();
    o.metadata_timeout_ms = 5000;
    struct evlog *log = NULL;
    o.topic = "no-such-topic";
    assert_int_equal(evlog_kafka_open(&o, &log), CORE_E_NOTFOUND);
    o.topic = "t-round";
    o.partitions = 8;
    assert_int_equal(evlog_kafka_open(&o, &log), CORE_E_INVALID);
    assert_null(log);

    char b[128], t[64];
    assert_int_equal(
        evlog_kafka_parse_uri("kafka://h1:9092,h2:9093/events", b, sizeof b, t, sizeof t), 0);
    assert_string_equal(b, "h1:9092,h2:9093");
    assert_string_equal(t, "events");
    assert_int_equal(evlog_kafka_parse_uri("kafka://h1:9092/", b, sizeof b, t, sizeof t),
                     CORE_E_INVALID);
    assert_int_equal(evlog_kafka_parse_uri("file:///x", b, sizeof b, t, sizeof t), CORE_E_INVALID);
    assert_int_equal(evlog_kafka_parse_uri("kafka://h:1/a b", b, sizeof b, t, sizeof t),
                     CORE_E_INVALID);
}

/* ---- round trip ------------------------------------------------------------------------- */

/* Appends n records to partition p (values "v<i>" from first). */
static void append_to(struct evlog *log, int32_t p, int first, int n)
{
    static char key[33];
    static char vals[64][16];
    struct evlog_record recs[64];
    assert_true(n <= 64);
    for (int i = 0; i < 10000; i++) { /* a user key of partition p */
        user_key(key, i);
        if (core_partition_for_key(key, 32, PARTS) == p)
            break;
    }
    for (int i = 0; i < n; i++) {
        snprintf(vals[i], sizeof vals[i], "v%d", first + i);
        recs[i] = (struct evlog_record){.partition = p,
                                        .offset = -1,
                                        .event_time_ms = 1000 + first + i,
                                        .ingest_time_ms = 1700000000000 + first + i,
                                        .key = key,
                                        .key_len = 32,
                                        .value = vals[i],
                                        .value_len = (uint32_t)strlen(vals[i])};
    }
    assert_int_equal(tu_append_sync(log, recs, (size_t)n), 0);
}

/* A partition set off (owned by another processor) is not read; set on again, reads go on
 * from where they are asked to, without a gap, whatever was prefetched before the pause. */
static void test_fetch_pause(void **state)
{
    (void)state;
    struct evlog *log = open_log("t-pause", 0);
    append_to(log, 1, 0, 30);
    append_to(log, 2, 0, 5);
    struct evlog_batch b;
    evlog_batch_init(&b);
    assert_int_equal(evlog_read(log, 1, 0, 3, &b), 3);
    assert_int_equal(b.recs[2].offset, 2);
    evlog_fetch(log, 1, false);
    append_to(log, 1, 30, 40);
    assert_int_equal(evlog_read(log, 2, 0, 10, &b), 5); /* the others go on */
    evlog_fetch(log, 1, true);
    int64_t off = 3;
    while (off < 70) {
        int n = evlog_read(log, 1, off, 16, &b);
        assert_true(n > 0);
        for (int k = 0; k < n; k++) {
            assert_int_equal(b.recs[k].offset, off);
            char want[16];
            snprintf(want, sizeof want, "v%d", (int)off);
            assert_int_equal(b.recs[k].value_len, strlen(want));
            assert_memory_equal(b.recs[k].value, want, strlen(want));
            off++;
        }
    }
    assert_int_equal(evlog_read(log, 1, 70, 10, &b), 0);
    evlog_batch_dispose(&b);
    evlog_close(log);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct evlog *log = open_log("t-round", 0);
    enum { N = 300 };
    static char keys[N][33], vals[N][64];
    static struct evlog_record recs[N];
    for (int i = 0; i < N; i++) {
        user_key(keys[i], i % 40);
        snprintf(vals[i], sizeof vals[i], "value-%d", i);
        recs[i] = (struct evlog_record){
            .partition = core_partition_for_key(keys[i], 32, PARTS),
            .offset = -1,
            .event_time_ms = 1000 + i,
            .ingest_time_ms = 1700000000000 + i,
            .key = keys[i],
            .key_len = 32,
            .value = vals[i],
            .value_len = (uint32_t)strlen(vals[i]),
        };
    }
    /* Three appends, so records of one partition span calls. */
    assert_int_equal(tu_append_sync(log, recs, 100), 0);
    assert_int_equal(tu_append_sync(log, recs + 100, 150), 0);
    assert_int_equal(tu_append_sync(log, recs + 250, 50), 0);
    /* Offsets from the delivery reports: gap-free per partition, in append order. */
    int64_t next[PARTS] = {0};
    for (int i = 0; i < N; i++) {
        assert_int_equal(recs[i].offset, next[recs[i].partition]);
        next[recs[i].partition]++;
    }
    struct evlog_batch b;
    evlog_batch_init(&b);
    int seen = 0;
    for (int32_t p = 0; p < PARTS; p++) {
        struct evlog_partition_stats ps;
        assert_int_equal(evlog_stats(log, p, &ps), 0);
        assert_int_equal(ps.low_water, 0);
        assert_int_equal(ps.high_water, next[p]);
        int64_t off = 0;
        int want = 0; /* index into recs of the next record of p */
        while (off < next[p]) {
            int n = evlog_read(log, p, off, 7, &b);
            assert_true(n > 0 && n <= 7);
            for (int k = 0; k < n; k++) {
                while (recs[want].partition != p)
                    want++;
                const struct evlog_record *r = &b.recs[k];
                assert_int_equal(r->offset, recs[want].offset);
                assert_int_equal(r->partition, p);
                assert_false(r->erased);
                assert_int_equal(r->event_time_ms, recs[want].event_time_ms);
                assert_int_equal(r->ingest_time_ms, recs[want].ingest_time_ms);
                assert_int_equal(r->key_len, 32);
                assert_memory_equal(r->key, keys[want], 32);
                assert_int_equal(r->value_len, recs[want].value_len);
                assert_memory_equal(r->value, vals[want], recs[want].value_len);
                want++;
                seen++;
            }
            off = b.recs[n - 1].offset + 1;
        }
        /* Nothing beyond the end: 0 at once. */
        assert_int_equal(evlog_read(log, p, next[p], 10, &b), 0);
        /* A read from the middle seeks. */
        if (next[p] > 3) {
            assert_int_equal(evlog_read(log, p, 2, 1, &b), 1);
            assert_int_equal(b.recs[0].offset, 2);
        }
        /* Time lookup on the ingest time (Kafka's timestamp). */
        int64_t o = -1;
        assert_int_equal(evlog_offset_for_time(log, p, 0, &o), 0);
        assert_int_equal(o, 0);
        assert_int_equal(evlog_offset_for_time(log, p, 1800000000000, &o), 0);
        assert_int_equal(o, next[p]);
    }
    assert_int_equal(seen, N);
    /* offset_for_time finds the first record at or after a time inside the range. */
    int32_t p0 = recs[150].partition;
    int64_t o = -1;
    assert_int_equal(evlog_offset_for_time(log, p0, recs[150].ingest_time_ms, &o), 0);
    assert_int_equal(o, recs[150].offset);
    evlog_batch_dispose(&b);

    /* A second log on the same topic (a restart) sees everything from its first read. */
    evlog_close(log);
    log = open_log("t-round", 0);
    int64_t got = 0;
    while (got < next[recs[0].partition]) {
        int n = evlog_read(log, recs[0].partition, got, 1000, &b);
        assert_true(n > 0);
        assert_int_equal(b.recs[0].offset, got);
        got += n;
    }
    assert_int_equal(got, next[recs[0].partition]);
    evlog_batch_dispose(&b);
    evlog_close(log);
}

/* ---- partitioning agrees with librdkafka's murmur2_random -------------------------------- */

struct agree {
    int delivered;
    int mismatches;
    int errors;
};

static void agree_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct agree *a = opaque;
    a->delivered++;
    if (m->err) {
        a->errors++;
        return;
    }
    if (core_partition_for_key(m->key, m->key_len, PARTS) != m->partition)
        a->mismatches++;
}

static void test_partition_agreement(void **state)
{
    (void)state;
    char err[256];
    struct agree a = {0};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, err, sizeof err),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "partitioner", "murmur2_random", err, sizeof err),
                     RD_KAFKA_CONF_OK);
    rd_kafka_conf_set_dr_msg_cb(conf, agree_dr);
    rd_kafka_conf_set_opaque(conf, &a);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(rk);
    enum { N = 500 };
    int32_t hits[PARTS] = {0};
    for (int i = 0; i < N; i++) {
        char key[33];
        user_key(key, i);
        hits[core_partition_for_key(key, 32, PARTS)]++;
        assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("t-agree"),
                                           RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
                                           RD_KAFKA_V_KEY(key, 32), RD_KAFKA_V_VALUE("x", 1),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END),
                         0);
    }
    assert_int_equal(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);
    assert_int_equal(a.delivered, N);
    assert_int_equal(a.errors, 0);
    assert_int_equal(a.mismatches, 0);
    for (int p = 0; p < PARTS; p++)
        assert_true(hits[p] > 0); /* every partition was exercised */
}

/* ---- sealing ------------------------------------------------------------------------------ */

/* Reads message `offset` of topic/p with a plain consumer (what an outside client sees). */
static rd_kafka_message_t *raw_read(rd_kafka_t **rk_out, const char *topic, int32_t p,
                                    int64_t offset)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, err, sizeof err),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    assert_non_null(rk);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    assert_int_equal(rd_kafka_consume_start(rkt, p, offset), 0);
    rd_kafka_message_t *m = NULL;
    for (int i = 0; i < 50 && !m; i++) {
        m = rd_kafka_consume(rkt, p, 200);
        if (m && m->err) {
            rd_kafka_message_destroy(m);
            m = NULL;
        }
    }
    assert_non_null(m);
    rd_kafka_consume_stop(rkt, p);
    rd_kafka_topic_destroy(rkt);
    *rk_out = rk;
    return m;
}

/* Produces a copy of m (headers, timestamp, key) with value v to topic/p. */
static void raw_copy(const rd_kafka_message_t *m, const void *v, size_t vlen, const char *topic,
                     int32_t p)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, err, sizeof err),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(rk);
    rd_kafka_headers_t *h = NULL;
    assert_int_equal(rd_kafka_message_headers(m, &h), 0);
    rd_kafka_timestamp_type_t tt;
    assert_int_equal(
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                          RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE((void *)v, vlen),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_TIMESTAMP(rd_kafka_message_timestamp(m, &tt)),
                          RD_KAFKA_V_HEADERS(rd_kafka_headers_copy(h)), RD_KAFKA_V_END),
        0);
    assert_int_equal(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);
}

static void test_sealing(void **state)
{
    (void)state;
    struct evlog *log = open_log("t-seal", 0);
    char key[33];
    user_key(key, 7);
    const char *val = "the binary event";
    struct evlog_record rec = {.partition = 2,
                               .event_time_ms = 5,
                               .ingest_time_ms = 1700000000000,
                               .key = key,
                               .key_len = 32,
                               .value = val,
                               .value_len = (uint32_t)strlen(val)};
    assert_int_equal(tu_append_sync(log, &rec, 1), 0);
    evlog_close(log);

    rd_kafka_t *rk;
    rd_kafka_message_t *m = raw_read(&rk, "t-seal", 2, 0);
    /* Sealed: the value does not hold the plaintext; the headers name key id and time. */
    assert_null(memmem(m->payload, m->len, val, strlen(val)));
    assert_int_equal(m->key_len, 32);
    assert_memory_equal(m->key, key, 32);
    uint8_t *copy = core_xmalloc(m->len);
    memcpy(copy, m->payload, m->len);
    raw_copy(m, copy, m->len, "t-tamper", 2); /* offset 0: intact, same partition */
    raw_copy(m, copy, m->len, "t-tamper", 3); /* moved to another partition */
    copy[m->len / 2] ^= 1;
    raw_copy(m, copy, m->len, "t-tamper", 4); /* one bit flipped */
    free(copy);
    rd_kafka_message_destroy(m);
    rd_kafka_destroy(rk);

    log = open_log("t-tamper", 0);
    struct evlog_batch b;
    evlog_batch_init(&b);
    assert_int_equal(evlog_read(log, 2, 0, 10, &b), 1);
    assert_int_equal(b.recs[0].value_len, strlen(val));
    assert_memory_equal(b.recs[0].value, val, strlen(val));
    assert_int_equal(evlog_read(log, 3, 0, 10, &b), CORE_E_CORRUPT);
    assert_int_equal(evlog_read(log, 4, 0, 10, &b), CORE_E_CORRUPT);
    /* The partition stays readable after the error (the reader re-seeks). */
    assert_int_equal(evlog_read(log, 2, 0, 10, &b), 1);
    evlog_batch_dispose(&b);
    evlog_close(log);
}

/* ---- erasure (crypto-shredding) ----------------------------------------------------------- */

static void test_erased(void **state)
{
    (void)state;
    struct evlog *log = open_log("t-erase", 0);
    char keys[2][33];
    user_key(keys[0], 1001);
    user_key(keys[1], 1002);
    const char *names[2] = {keys[0], keys[1]};
    struct seal_key sk[2];
    assert_int_equal(userkeys_acquire(tu_keys(), names, 2, sk), 0);
    struct evlog_record recs[2];
    for (int i = 0; i < 2; i++)
        recs[i] = (struct evlog_record){.partition = 1,
                                        .event_time_ms = i,
                                        .ingest_time_ms = 1700000000000 + i,
                                        .key = keys[i],
                                        .key_len = 32,
                                        .value = "v",
                                        .value_len = 1,
                                        .seal = &sk[i]};
    assert_int_equal(tu_append_sync(log, recs, 2), 0);
    assert_int_equal(userkeys_shred(tu_keys(), keys[0]), 0);
    struct evlog_batch b;
    evlog_batch_init(&b);
    assert_int_equal(evlog_read(log, 1, 0, 10, &b), 2);
    assert_true(b.recs[0].erased);
    assert_int_equal(b.recs[0].offset, 0);
    assert_int_equal(b.recs[0].key_len, 0);
    assert_int_equal(b.recs[0].value_len, 0);
    assert_false(b.recs[1].erased);
    assert_int_equal(b.recs[1].offset, 1);
    assert_memory_equal(b.recs[1].key, keys[1], 32);
    evlog_batch_dispose(&b);
    /* A batch of erased records only has no bytes, so no buffer: its (empty) keys and values
     * must still be valid pointers (the sanitizer build stopped here on NULL + 0). */
    evlog_batch_init(&b);
    assert_int_equal(evlog_read(log, 1, 0, 1, &b), 1);
    assert_true(b.recs[0].erased);
    assert_non_null(b.recs[0].key);
    assert_non_null(b.recs[0].value);
    assert_int_equal(b.recs[0].key_len, 0);
    evlog_batch_dispose(&b);
    seal_key_dispose(&sk[0]);
    seal_key_dispose(&sk[1]);
    evlog_close(log);
}

/* ---- backpressure ------------------------------------------------------------------------- */

static void set_rtt(int ms)
{
    for (int32_t id = 1; id <= 3; id++)
        rd_kafka_mock_broker_set_rtt(mc, id, ms);
}

static void test_full(void **state)
{
    (void)state;
    struct evlog *log = open_log("t-full", 4096);
    static char val[1500];
    memset(val, 'v', sizeof val);
    struct evlog_record a[2], c[2];
    for (int i = 0; i < 2; i++) {
        a[i] = (struct evlog_record){.partition = i, .value = val, .value_len = sizeof val};
        c[i] = a[i];
    }
    set_rtt(300); /* keeps the first append's reports away while the second one tries */
    struct tu_done d;
    tu_done_init(&d);
    d.pending = 1;
    assert_int_equal(evlog_append(log, a, 2, tu_done_cb, &d), 0);
    /* ~3.4 KB waiting for reports + ~3.4 KB more > 4 KiB: refused whole, nothing queued. */
    assert_int_equal(evlog_append(log, c, 2, tu_done_cb, &d), CORE_E_FULL);
    tu_done_wait(&d, 0);
    assert_int_equal(d.status, 0);
    set_rtt(0);
    /* The reports released the budget. */
    assert_int_equal(tu_append_sync(log, c, 2), 0);
    struct evlog_partition_stats ps;
    assert_int_equal(evlog_stats(log, 0, &ps), 0);
    assert_int_equal(ps.high_water, 2); /* a[0] and c[0] only: the refused append left nothing */
    tu_done_dispose(&d);
    evlog_close(log);
}

/* ---- delivery errors ---------------------------------------------------------------------- */

static void set_brokers_up(bool up)
{
    for (int32_t id = 1; id <= 3; id++) {
        if (up)
            rd_kafka_mock_broker_set_up(mc, id);
        else
            rd_kafka_mock_broker_set_down(mc, id);
    }
}

static void test_delivery_error(void **state)
{
    (void)state;
    struct evlog_kafka_options o;
    evlog_kafka_options_init(&o);
    o.brokers = bootstraps;
    o.topic = "t-fail";
    o.keys = tu_keys();
    o.delivery_timeout_ms = 1500;
    struct evlog *log = NULL;
    assert_int_equal(evlog_kafka_open(&o, &log), 0);
    struct evlog_record recs[2] = {{.partition = 0, .value = "a", .value_len = 1},
                                   {.partition = 1, .value = "b", .value_len = 1}};
    /* A permanent error from the broker (Produce is ApiKey 0): the append fails once. */
    struct evlog_record same[2] = {{.partition = 2, .value = "a", .value_len = 1},
                                   {.partition = 2, .value = "b", .value_len = 1}};
    rd_kafka_mock_push_request_errors(mc, 0, 1, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    struct tu_done d;
    tu_done_init(&d);
    d.pending = 1;
    assert_int_equal(evlog_append(log, same, 2, tu_done_cb, &d), 0);
    tu_done_wait(&d, 0);
    assert_int_equal(d.status, CORE_E_TOOBIG);
    assert_int_equal(tu_append_sync(log, same, 2), 0); /* the next request is fine */
    assert_int_equal(same[1].offset, same[0].offset + 1);

    set_brokers_up(false);
    /* The cluster is gone: the append's done gets a negative status once, for both. */
    d.status = 0;
    d.pending = 1;
    assert_int_equal(evlog_append(log, recs, 2, tu_done_cb, &d), 0);
    tu_done_wait(&d, 0);
    assert_int_equal(d.pending, 0);
    assert_int_equal(d.status, CORE_E_TIMEOUT);
    set_brokers_up(true);
    /* Transient: once the producer has reconnected the log takes appends again. */
    int rc = CORE_E_TIMEOUT;
    for (int i = 0; i < 10 && rc == CORE_E_TIMEOUT; i++)
        rc = tu_append_sync(log, recs, 2);
    assert_int_equal(rc, 0);
    tu_done_dispose(&d);
    evlog_close(log);
}

/* ---- waking readers ----------------------------------------------------------------------- */

struct waiter_arg {
    struct evlog *log;
    uint64_t seen;
    int p;
    int64_t offset;
    int rc;
    int64_t took_ms;
};

static void *change_waiter(void *arg)
{
    struct waiter_arg *w = arg;
    int64_t t0 = core_mono_ns();
    w->rc = evlog_wait_change(w->log, w->seen, 10000);
    w->took_ms = (core_mono_ns() - t0) / 1000000;
    return NULL;
}

static void *offset_waiter(void *arg)
{
    struct waiter_arg *w = arg;
    int64_t t0 = core_mono_ns();
    w->rc = evlog_wait(w->log, w->p, w->offset, 10000);
    w->took_ms = (core_mono_ns() - t0) / 1000000;
    return NULL;
}

static void test_wait_wakeups(void **state)
{
    (void)state;
    struct evlog *log = open_log("t-wait", 0);
    /* Nothing comes: both waits time out. */
    assert_int_equal(evlog_wait(log, 0, 0, 200), CORE_E_TIMEOUT);
    assert_int_equal(evlog_wait_change(log, evlog_changes(log), 200), CORE_E_TIMEOUT);

    struct waiter_arg wc = {.log = log, .seen = evlog_changes(log)};
    struct waiter_arg wo = {.log = log, .p = 3, .offset = 0};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, change_waiter, &wc);
    pthread_create(&t2, NULL, offset_waiter, &wo);
    usleep(200 * 1000);
    struct evlog_record rec = {.partition = 3, .value = "x", .value_len = 1};
    assert_int_equal(tu_append_sync(log, &rec, 1), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(wc.rc, 0);
    assert_int_equal(wo.rc, 0);
    assert_true(wc.took_ms < 5000);
    assert_true(wo.took_ms < 5000);

    /* A record another producer writes wakes wait_change too (through the fetch). */
    struct evlog_batch b;
    evlog_batch_init(&b);
    assert_int_equal(evlog_read(log, 5, 0, 10, &b), 0); /* positions partition 5's reader */
    wc.seen = evlog_changes(log);
    pthread_create(&t1, NULL, change_waiter, &wc);
    usleep(200 * 1000);
    rd_kafka_t *rk;
    rd_kafka_message_t *m = raw_read(&rk, "t-wait", 3, 0);
    raw_copy(m, m->payload, m->len, "t-wait", 5);
    rd_kafka_message_destroy(m);
    rd_kafka_destroy(rk);
    pthread_join(t1, NULL);
    assert_int_equal(wc.rc, 0);
    /* The other producer's record is visible through the fetch: wait sees it. */
    assert_int_equal(evlog_wait(log, 5, 0, 5000), 0);
    /* The copy was sealed for partition 3: moved, it does not authenticate. */
    assert_int_equal(evlog_read(log, 5, 0, 10, &b), CORE_E_CORRUPT);
    evlog_batch_dispose(&b);
    evlog_close(log);
}

/* ---- closing ------------------------------------------------------------------------------ */

static void test_close_wakes_and_does_not_hang(void **state)
{
    (void)state;
    struct evlog *log = open_log("t-close", 0);
    struct evlog_record rec = {.partition = 0, .value = "x", .value_len = 1};
    assert_int_equal(tu_append_sync(log, &rec, 1), 0);
    struct evlog_batch b;
    evlog_batch_init(&b);
    assert_int_equal(evlog_read(log, 0, 0, 10, &b), 1);
    evlog_batch_dispose(&b);
    struct waiter_arg wc = {.log = log, .p = 1, .offset = 0};
    pthread_t t1;
    pthread_create(&t1, NULL, offset_waiter, &wc);
    usleep(100 * 1000);
    /* Appends still in flight at close complete (delivered, or CORE_E_CLOSED). */
    struct tu_done d;
    tu_done_init(&d);
    d.pending = 1;
    assert_int_equal(evlog_append(log, &rec, 1, tu_done_cb, &d), 0);
    int64_t t0 = core_mono_ns();
    evlog_close(log);
    pthread_join(t1, NULL);
    assert_true((core_mono_ns() - t0) / 1000000 < 5000);
    assert_int_equal(wc.rc, CORE_E_CLOSED);
    assert_int_equal(d.pending, 0);
    tu_done_dispose(&d);
}

int main(void)
{
    core_log_set_level(CORE_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_checks_topic),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_fetch_pause),
        cmocka_unit_test(test_partition_agreement),
        cmocka_unit_test(test_sealing),
        cmocka_unit_test(test_erased),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_delivery_error),
        cmocka_unit_test(test_wait_wakeups),
        cmocka_unit_test(test_close_wakes_and_does_not_hang),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
