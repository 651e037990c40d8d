/* Per-user keys shared through a Kafka keys topic (see userkeys_kafka.h). */
#include "privacy/userkeys_kafka.h"

#include "privacy/userkeys_int.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AD_PREFIX "recstream.userkey.v1"
#define VALUE_BYTES (USERKEYS__ENT_PLAIN + SEAL_OVERHEAD)
#define KEY_HEX (2 * SEAL_ID_BYTES)

struct userkeys_kafka {
    struct userkeys *uk;
    char *brokers, *topic;
    rd_kafka_t *prod, *cons;
    int32_t nparts;
    int delivery_timeout_ms;
    pthread_mutex_t mu; /* pos */
    pthread_cond_t cv;  /* pos advanced */
    int64_t *pos;       /* per partition: every offset below it has been applied */
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
};

/* Delivery reports of one publish call (the writer mutex of the store serialises them). */
struct delivery {
    size_t done;
    rd_kafka_resp_err_t err;
};

void userkeys_kafka_options_init(struct userkeys_kafka_options *o)
{
    memset(o, 0, sizeof *o);
    o->open_timeout_ms = 30000;
    o->delivery_timeout_ms = 30000;
    o->catch_up_ms = 5000;
}

void userkeys_kafka_default_topic(const char *events_topic, char *out, size_t size)
{
    snprintf(out, size, "%s.keys", events_topic);
}

static void make_ad(const uint8_t *id, uint8_t *ad)
{
    memcpy(ad, AD_PREFIX, sizeof AD_PREFIX - 1);
    memcpy(ad + sizeof AD_PREFIX - 1, id, SEAL_ID_BYTES);
}

/* ---- client plumbing ------------------------------------------------------------------- */

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque;
    LOG_WARN("kafka keys topic: client error", "client=%s err=\"%s\" reason=\"%s\"",
             rd_kafka_name(rk), rd_kafka_err2str((rd_kafka_resp_err_t)err), reason);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (level <= 4)
        LOG_WARN("kafka keys topic: client log", "client=%s facility=%s msg=\"%s\"",
                 rd_kafka_name(rk), fac, buf);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    (void)opaque;
    struct delivery *d = msg->_private;
    if (msg->err)
        d->err = msg->err;
    d->done++;
}

static int set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char err[256];
    if (rd_kafka_conf_set(conf, name, value, err, sizeof err) != RD_KAFKA_CONF_OK) {
        LOG_ERROR("kafka keys topic: bad client setting", "name=%s err=\"%s\"", name, err);
        return CORE_E_INVALID;
    }
    return 0;
}

static rd_kafka_t *new_client(struct userkeys_kafka *k, rd_kafka_type_t type)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char v[32], err[512];
    int rc = set(conf, "bootstrap.servers", k->brokers);
    if (type == RD_KAFKA_PRODUCER) {
        rc = rc ? rc : set(conf, "client.id", "recstream-keys");
        rc = rc ? rc : set(conf, "enable.idempotence", "true");
        rc = rc ? rc : set(conf, "acks", "all");
        rc = rc ? rc : set(conf, "linger.ms", "0");
        snprintf(v, sizeof v, "%d", k->delivery_timeout_ms);
        rc = rc ? rc : set(conf, "message.timeout.ms", v);
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    } else {
        /* assign() only: no group is joined and nothing is committed. */
        rc = rc ? rc : set(conf, "client.id", "recstream-keys-reader");
        rc = rc ? rc : set(conf, "group.id", "recstream-keys-reader");
        rc = rc ? rc : set(conf, "enable.auto.commit", "false");
        rc = rc ? rc : set(conf, "enable.partition.eof", "true");
        rc = rc ? rc : set(conf, "auto.offset.reset", "earliest");
        rc = rc ? rc : set(conf, "fetch.wait.max.ms", "25");
    }
    if (rc < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
    if (!rk)
        LOG_ERROR("kafka keys topic: cannot create a client", "err=\"%s\"", err);
    return rk;
}

/* The keys topic's partition count (all topics asked for, so asking never creates it). */
static int topic_partitions(struct userkeys_kafka *k, int timeout_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(k->prod, 1, NULL, &md, timeout_ms);
    if (err) {
        LOG_ERROR("kafka keys topic: cannot read the cluster's metadata", "brokers=%s err=\"%s\"",
                  k->brokers, rd_kafka_err2str(err));
        return CORE_E_FAILED;
    }
    int rc = CORE_E_NOTFOUND;
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *t = &md->topics[i];
        if (strcmp(t->topic, k->topic) == 0 && !t->err && t->partition_cnt > 0) {
            k->nparts = t->partition_cnt;
            rc = 0;
        }
    }
    rd_kafka_metadata_destroy(md);
    if (rc < 0)
        LOG_ERROR("kafka keys topic does not exist: create it beside the events topic "
                  "(cleanup.policy=compact; see docs/OPERATIONS.md)",
                  "brokers=%s topic=%s", k->brokers, k->topic);
    return rc;
}

/* ---- consumer -------------------------------------------------------------------------- */

static bool parse_key(const rd_kafka_message_t *m, uint8_t *id)
{
    if (!m->key || m->key_len != KEY_HEX)
        return false;
    size_t bin = 0;
    return sodium_hex2bin(id, SEAL_ID_BYTES, m->key, KEY_HEX, NULL, &bin, NULL) == 0 &&
           bin == SEAL_ID_BYTES;
}

static void apply_message(struct userkeys_kafka *k, const rd_kafka_message_t *m)
{
    uint8_t id[SEAL_ID_BYTES];
    if (!parse_key(m, id)) {
        LOG_WARN("kafka keys topic: message without a key id skipped", "partition=%d offset=%lld",
                 (int)m->partition, (long long)m->offset);
        return;
    }
    if (!m->payload) {
        userkeys__forget_id(k->uk, id); /* a tombstone: the user was erased */
        return;
    }
    uint8_t buf[VALUE_BYTES], ad[sizeof AD_PREFIX - 1 + SEAL_ID_BYTES];
    make_ad(id, ad);
    bool ok = m->len == VALUE_BYTES;
    if (ok) {
        memcpy(buf, m->payload, VALUE_BYTES);
        ok = seal_record_open(userkeys_data_key(k->uk), ad, sizeof ad, buf, VALUE_BYTES) == 0;
    }
    struct userkeys__ent e;
    if (ok) {
        memcpy(&e, buf + SEAL_NONCE_BYTES, USERKEYS__ENT_PLAIN);
        ok = memcmp(e.id, id, SEAL_ID_BYTES) == 0;
    }
    if (ok)
        userkeys__apply(k->uk, &e);
    else
        LOG_WARN("kafka keys topic: entry does not authenticate (tampered, or another data key)",
                 "partition=%d offset=%lld", (int)m->partition, (long long)m->offset);
    sodium_memzero(buf, sizeof buf);
    sodium_memzero(&e, sizeof e);
}

static void advance(struct userkeys_kafka *k, int32_t p, int64_t next)
{
    if (p < 0 || p >= k->nparts)
        return;
    pthread_mutex_lock(&k->mu);
    if (next > k->pos[p])
        k->pos[p] = next;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

static void *consume(void *arg)
{
    struct userkeys_kafka *k = arg;
    pthread_setname_np(pthread_self(), "userkeys-kafka");
    while (!atomic_load(&k->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(k->cons, 100);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            advance(k, m->partition, m->offset);
        } else if (m->err) {
            LOG_WARN("kafka keys topic: consumer error", "err=\"%s\"", rd_kafka_err2str(m->err));
        } else {
            apply_message(k, m);
            advance(k, m->partition, m->offset + 1);
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

/* ---- hooks called by userkeys.c --------------------------------------------------------- */

static int64_t now_ms(void)
{
    return core_mono_ns() / 1000000;
}

static int catch_up(void *ctx, int timeout_ms)
{
    struct userkeys_kafka *k = ctx;
    int64_t deadline = now_ms() + timeout_ms;
    int64_t *hi = core_xcalloc((size_t)k->nparts, sizeof *hi);
    int rc = 0;
    for (int32_t p = 0; p < k->nparts && rc == 0; p++) {
        int64_t lo = 0, left = deadline - now_ms();
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
            k->prod, k->topic, p, &lo, &hi[p], (int)(left > 0 ? left : 0));
        if (err)
            rc = CORE_E_TIMEOUT;
    }
    pthread_mutex_lock(&k->mu);
    for (int32_t p = 0; p < k->nparts && rc == 0; p++) {
        while (k->pos[p] < hi[p] && rc == 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0) {
                rc = CORE_E_TIMEOUT;
                break;
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t wait = left < 100 ? left : 100;
            ts.tv_nsec += (long)(wait * 1000000);
            ts.tv_sec += ts.tv_nsec / 1000000000;
            ts.tv_nsec %= 1000000000;
            pthread_cond_timedwait(&k->cv, &k->mu, &ts);
        }
    }
    pthread_mutex_unlock(&k->mu);
    free(hi);
    if (rc < 0)
        LOG_WARN("kafka keys topic: could not read the keys topic to its end in time",
                 "topic=%s timeout_ms=%d", k->topic, timeout_ms);
    return rc;
}

/* Produces n messages (values NULL: tombstones) and waits for every delivery report. */
static int produce_all(struct userkeys_kafka *k, const uint8_t (*ids)[SEAL_ID_BYTES],
                       const uint8_t *values, size_t n)
{
    struct delivery d = {0, RD_KAFKA_RESP_ERR_NO_ERROR};
    size_t queued = 0;
    rd_kafka_resp_err_t qerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (size_t i = 0; i < n && !qerr; i++) {
        char hex[KEY_HEX + 1];
        core_hex(ids[i], SEAL_ID_BYTES, hex);
        qerr = rd_kafka_producev(
            k->prod, RD_KAFKA_V_TOPIC(k->topic), RD_KAFKA_V_KEY(hex, KEY_HEX),
            RD_KAFKA_V_VALUE(values ? (void *)(values + i * VALUE_BYTES) : NULL,
                             values ? VALUE_BYTES : 0),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(&d), RD_KAFKA_V_END);
        if (!qerr)
            queued++;
    }
    /* d lives on this stack: wait for every queued message's report (message.timeout.ms
     * bounds it) before returning, whatever happened. */
    while (d.done < queued)
        rd_kafka_poll(k->prod, 50);
    rd_kafka_resp_err_t err = qerr ? qerr : d.err;
    if (err) {
        LOG_ERROR("kafka keys topic: write failed", "topic=%s err=\"%s\"", k->topic,
                  rd_kafka_err2str(err));
        return CORE_E_FAILED;
    }
    return 0;
}

static int publish(void *ctx, const struct userkeys__ent *ents, size_t n)
{
    struct userkeys_kafka *k = ctx;
    uint8_t *values = core_xmalloc(n * VALUE_BYTES);
    uint8_t(*ids)[SEAL_ID_BYTES] = core_xmalloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        uint8_t ad[sizeof AD_PREFIX - 1 + SEAL_ID_BYTES];
        make_ad(ents[i].id, ad);
        memcpy(ids[i], ents[i].id, SEAL_ID_BYTES);
        seal_record(userkeys_data_key(k->uk), ad, sizeof ad, &ents[i], USERKEYS__ENT_PLAIN,
                    values + i * VALUE_BYTES);
    }
    int rc = produce_all(k, (const uint8_t(*)[SEAL_ID_BYTES])ids, values, n);
    free(values);
    free(ids);
    return rc;
}

static int shred(void *ctx, const uint8_t (*ids)[SEAL_ID_BYTES], size_t n)
{
    return produce_all(ctx, ids, NULL, n);
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static void stop_clients(struct userkeys_kafka *k)
{
    if (k->thread_started) {
        atomic_store(&k->stop, true);
        pthread_join(k->thread, NULL);
        k->thread_started = false;
    }
    if (k->cons) {
        rd_kafka_assign(k->cons, NULL);
        rd_kafka_consumer_close(k->cons);
        rd_kafka_destroy(k->cons);
        k->cons = NULL;
    }
    if (k->prod) {
        rd_kafka_flush(k->prod, 5000);
        rd_kafka_destroy(k->prod);
        k->prod = NULL;
    }
}

int userkeys_kafka_open(struct userkeys *uk, const struct userkeys_kafka_options *o,
                        struct userkeys_kafka **out)
{
    if (!o->brokers || !o->topic || !*o->topic || o->catch_up_ms < 0 || o->open_timeout_ms < 1 ||
        o->delivery_timeout_ms < 1)
        return CORE_E_INVALID;
    struct userkeys_kafka *k = core_xcalloc(1, sizeof *k);
    k->uk = uk;
    k->brokers = core_xstrdup(o->brokers);
    k->topic = core_xstrdup(o->topic);
    k->delivery_timeout_ms = o->delivery_timeout_ms;
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    int rc = CORE_E_FAILED;
    k->prod = new_client(k, RD_KAFKA_PRODUCER);
    k->cons = new_client(k, RD_KAFKA_CONSUMER);
    if (!k->prod || !k->cons)
        goto fail;
    rc = topic_partitions(k, o->open_timeout_ms);
    if (rc < 0)
        goto fail;
    k->pos = core_xcalloc((size_t)k->nparts, sizeof *k->pos);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(k->nparts);
    for (int32_t p = 0; p < k->nparts; p++)
        rd_kafka_topic_partition_list_add(list, k->topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t e = rd_kafka_assign(k->cons, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (e) {
        LOG_ERROR("kafka keys topic: cannot assign its partitions", "topic=%s err=\"%s\"", k->topic,
                  rd_kafka_err2str(e));
        rc = CORE_E_FAILED;
        goto fail;
    }
    if (pthread_create(&k->thread, NULL, consume, k) != 0) {
        rc = CORE_E_FAILED;
        goto fail;
    }
    k->thread_started = true;
    int64_t t0 = core_mono_ns();
    rc = catch_up(k, o->open_timeout_ms);
    if (rc < 0)
        goto fail;
    struct userkeys__remote r = {.ctx = k,
                                 .publish_fn = publish,
                                 .shred_fn = shred,
                                 .catch_up_fn = catch_up,
                                 .catch_up_ms = o->catch_up_ms};
    userkeys__set_remote(uk, &r);
    LOG_INFO("kafka keys topic loaded", "topic=%s partitions=%d users=%lld took_ms=%lld", k->topic,
             (int)k->nparts, (long long)userkeys_count(uk),
             (long long)((core_mono_ns() - t0) / 1000000));
    *out = k;
    return 0;
fail:
    userkeys_kafka_free(k);
    return rc;
}

void userkeys_kafka_free(struct userkeys_kafka *k)
{
    if (!k)
        return;
    userkeys__set_remote(k->uk, NULL);
    stop_clients(k);
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    free(k->pos);
    free(k->brokers);
    free(k->topic);
    free(k);
}
