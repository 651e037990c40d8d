/*
 * The Kafka backend of the evlog table (librdkafka): an idempotent producer whose delivery
 * reports complete appends, and a consumer with every partition assigned explicitly (no
 * group) for the read side (evlog_kafka_read.c).
 *
 * An append seals each record (the same sealed body as a file frame, with associated data
 * that cannot include the offset: see evlog_kafka_int.h) and produces it to the partition the
 * caller chose, with the pseudonymous user key as Kafka key. Its done runs once, on the poller
 * thread, after the delivery report of its last record (each record's offset then filled in
 * from its report), or with the first failure. The bytes of appends awaiting delivery reports
 * are bounded by queue_bytes, which we count ourselves and check before anything of an append
 * is produced: so a full queue refuses the whole append (CORE_E_FULL, the API's 429) instead
 * of leaving part of it queued, which librdkafka's own queue-full error could not promise.
 */
#include "evlog/evlog_kafka_int.h"

#include "event/event.h"
#include "privacy/userkeys.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct evlog_ops kafka_ops;

/* One append in flight. */
struct kappend {
    struct evlog_kafka *lk;
    evlog_done_fn done;
    void *arg;
    struct evlog_record *recs;
    int64_t bytes;
    atomic_size_t left; /* records (and the producing call) still to report */
    atomic_int status;
    struct kmsg {
        struct kappend *a;
        size_t i;
    } msgs[];
};

void evlog_kafka_options_init(struct evlog_kafka_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->queue_bytes = (int64_t)64 << 20;
    opt->delivery_timeout_ms = 30000;
    opt->metadata_timeout_ms = 10000;
    opt->read_wait_ms = 5000;
}

int evlog_kafka_parse_uri(const char *uri, char *brokers, size_t bsize, char *topic, size_t tsize)
{
    static const char scheme[] = "kafka://";
    if (strncmp(uri, scheme, sizeof scheme - 1) != 0)
        return CORE_E_INVALID;
    const char *b = uri + sizeof scheme - 1;
    const char *slash = strchr(b, '/');
    if (!slash || slash == b || !slash[1])
        return CORE_E_INVALID;
    size_t blen = (size_t)(slash - b), tlen = strlen(slash + 1);
    if (blen >= bsize || tlen >= tsize || tlen > 249)
        return CORE_E_INVALID;
    for (const char *c = slash + 1; *c; c++) {
        if (!(*c == '.' || *c == '_' || *c == '-' || (*c >= 'a' && *c <= 'z') ||
              (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            return CORE_E_INVALID;
    }
    memcpy(brokers, b, blen);
    brokers[blen] = '\0';
    memcpy(topic, slash + 1, tlen + 1);
    return 0;
}

bool evlog_is_file(const struct evlog *log)
{
    return strcmp(log->ops->name, "file") == 0;
}

size_t evlog__kafka_ad(uint8_t *ad, int32_t partition, int64_t event_ms, int64_t ingest_ms,
                       const uint8_t key_id[SEAL_ID_BYTES], const char *id, size_t id_len)
{
    size_t n = 0;
    memcpy(ad, "rsk1", 4);
    n += 4;
    for (int i = 0; i < 4; i++)
        ad[n++] = (uint8_t)((uint32_t)partition >> (8 * i));
    for (int i = 0; i < 8; i++)
        ad[n++] = (uint8_t)((uint64_t)event_ms >> (8 * i));
    for (int i = 0; i < 8; i++)
        ad[n++] = (uint8_t)((uint64_t)ingest_ms >> (8 * i));
    memcpy(ad + n, key_id, SEAL_ID_BYTES);
    n += SEAL_ID_BYTES;
    ad[n++] = (uint8_t)id_len;
    if (id_len) /* control records (ticks) have no eventId: id may be NULL */
        memcpy(ad + n, id, id_len);
    return n + id_len;
}

void evlog__kafka_note(struct evlog_kafka *lk, int32_t p, int64_t low, int64_t high)
{
    pthread_mutex_lock(&lk->mu);
    bool moved = false;
    if (high > lk->high[p]) {
        lk->high[p] = high;
        moved = true;
    }
    if (low > lk->low[p])
        lk->low[p] = low;
    if (moved) {
        lk->changes++;
        pthread_cond_broadcast(&lk->cond);
    }
    pthread_mutex_unlock(&lk->mu);
}

/* ==== producing ============================================================================ */

static int map_delivery_error(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return 0;
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
        return CORE_E_TIMEOUT; /* transient: the cluster did not answer in time */
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
        return CORE_E_CLOSED;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        return CORE_E_FULL;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        return CORE_E_TOOBIG;
    default:
        return CORE_E_FAILED;
    }
}

/* Runs done once every record of a has reported (or the producing call gave up). */
static void finish_append(struct kappend *a)
{
    struct evlog_kafka *lk = a->lk;
    int status = atomic_load(&a->status);
    atomic_fetch_sub(&lk->queued_bytes, a->bytes);
    a->done(a->arg, status);
    free(a);
    pthread_mutex_lock(&lk->mu);
    lk->inflight--;
    pthread_cond_broadcast(&lk->cond);
    pthread_mutex_unlock(&lk->mu);
}

static void release(struct kappend *a, size_t k)
{
    if (atomic_fetch_sub(&a->left, k) == k)
        finish_append(a);
}

/* Delivery report of one record (poller thread, inside rd_kafka_poll). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct evlog_kafka *lk = opaque;
    struct kmsg *km = m->_private;
    struct kappend *a = km->a;
    int st = map_delivery_error(m->err);
    if (st < 0) {
        int zero = 0;
        if (atomic_compare_exchange_strong(&a->status, &zero, st)) /* one line per append */
            LOG_WARN("kafka: record not delivered", "topic=%s partition=%d err=\"%s\"", lk->topic,
                     (int)m->partition, rd_kafka_err2str(m->err));
    } else {
        a->recs[km->i].offset = m->offset;
        evlog__kafka_note(lk, m->partition, -1, m->offset + 1);
    }
    release(a, 1);
}

static void hex12(char out[2 * SEAL_ID_BYTES + 1], const uint8_t id[SEAL_ID_BYTES])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < SEAL_ID_BYTES; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[2 * SEAL_ID_BYTES] = '\0';
}

/* Seals rec into a new buffer (nonce || ciphertext || tag) and produces it. */
static rd_kafka_resp_err_t produce_one(struct evlog_kafka *lk, const struct evlog_record *rec,
                                       struct kmsg *km, struct seal_nonces *nn)
{
    const struct seal_key *key = rec->seal ? rec->seal : userkeys_data_key(lk->keys);
    struct event ev;
    event_init(&ev);
    const char *id = "";
    size_t id_len = 0;
    if (event_bin_decode(rec->value, rec->value_len, &ev) == 0 &&
        ev.event_id.len <= EVLOG_KAFKA_MAX_ID) {
        id = ev.event_id.ptr;
        id_len = ev.event_id.len;
    }
    uint32_t plain = 4u + rec->key_len + rec->value_len;
    uint8_t *buf = core_xmalloc(plain + SEAL_OVERHEAD);
    uint8_t *m = buf + SEAL_NONCE_BYTES;
    for (int i = 0; i < 4; i++)
        m[i] = (uint8_t)(rec->key_len >> (8 * i));
    if (rec->key_len)
        memcpy(m + 4, rec->key, rec->key_len);
    if (rec->value_len)
        memcpy(m + 4 + rec->key_len, rec->value, rec->value_len);
    /* Kafka reads a timestamp of 0 as "now": the time sealed is the time sent. */
    int64_t ingest_ms = rec->ingest_time_ms > 0 ? rec->ingest_time_ms : core_now_ms();
    uint8_t ad[EVLOG_KAFKA_AD_MAX];
    size_t adlen =
        evlog__kafka_ad(ad, rec->partition, rec->event_time_ms, ingest_ms, key->id, id, id_len);
    /* Sealed before produce copies the id out of the value: ev points into rec->value. */
    seal_record_in_place(key, ad, adlen, buf, plain, nn);
    char kid[2 * SEAL_ID_BYTES + 1], et[24];
    hex12(kid, key->id);
    int etn = snprintf(et, sizeof et, "%lld", (long long)rec->event_time_ms);
    const void *kkey = rec->key_len ? rec->key : NULL; /* the macros cast without parentheses */
    rd_kafka_resp_err_t err = rd_kafka_producev(
        lk->prod, RD_KAFKA_V_TOPIC(lk->topic), RD_KAFKA_V_PARTITION(rec->partition),
        RD_KAFKA_V_KEY(kkey, rec->key_len), RD_KAFKA_V_VALUE(buf, plain + SEAL_OVERHEAD),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_TIMESTAMP(ingest_ms),
        RD_KAFKA_V_HEADER("keyId", kid, 2 * SEAL_ID_BYTES),
        RD_KAFKA_V_HEADER("eventId", id, (ssize_t)id_len),
        RD_KAFKA_V_HEADER("eventTime", et, (ssize_t)etn), RD_KAFKA_V_OPAQUE(km), RD_KAFKA_V_END);
    if (err)
        free(buf);
    return err;
}

static int kafka_append(struct evlog *log, struct evlog_record *recs, size_t n, evlog_done_fn done,
                        void *arg)
{
    struct evlog_kafka *lk = (struct evlog_kafka *)log;
    int64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].partition < 0 || recs[i].partition >= log->partitions)
            return CORE_E_INVALID;
        if (recs[i].key_len > EVLOG_KAFKA_MAX_KEY || recs[i].value_len > EVLOG_KAFKA_MAX_VALUE)
            return CORE_E_TOOBIG;
        bytes += (int64_t)recs[i].key_len * 2 + recs[i].value_len + SEAL_OVERHEAD +
                 EVLOG_KAFKA_REC_OVERHEAD;
    }
    if (n == 0) {
        done(arg, 0);
        return 0;
    }
    if (atomic_load(&lk->failed))
        return CORE_E_FAILED;
    /* Take the budget first; an append larger than the whole budget passes alone. */
    int_fast64_t cur = atomic_load(&lk->queued_bytes);
    do {
        if (cur > 0 && cur + bytes > lk->queue_bytes)
            return CORE_E_FULL;
    } while (!atomic_compare_exchange_weak(&lk->queued_bytes, &cur, cur + bytes));

    pthread_mutex_lock(&lk->mu);
    bool closing = lk->closing;
    if (!closing)
        lk->inflight++;
    pthread_mutex_unlock(&lk->mu);
    if (closing) {
        atomic_fetch_sub(&lk->queued_bytes, bytes);
        return CORE_E_CLOSED;
    }
    struct kappend *a = core_xmalloc(sizeof *a + n * sizeof a->msgs[0]);
    a->lk = lk;
    a->done = done;
    a->arg = arg;
    a->recs = recs;
    a->bytes = bytes;
    atomic_init(&a->left, n + 1); /* + 1: this call, so done cannot run while we produce */
    atomic_init(&a->status, 0);
    size_t produced = 0;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    /* Nonces drawn in bulk for a large call (one getrandom per 170 records; the pool is
     * this call's own, so no lock); a small one draws each nonce alone (a 4 KiB refill
     * would cost more than a few 24-byte draws). */
    struct seal_nonces nn;
    seal_nonces_init(&nn);
    struct seal_nonces *pool = n > 8 ? &nn : NULL;
    for (; produced < n; produced++) {
        a->msgs[produced] = (struct kmsg){a, produced};
        err = produce_one(lk, &recs[produced], &a->msgs[produced], pool);
        if (err)
            break;
    }
    if (produced == 0) {
        /* Nothing of it queued: refuse it whole, done never runs. */
        free(a);
        atomic_fetch_sub(&lk->queued_bytes, bytes);
        pthread_mutex_lock(&lk->mu);
        lk->inflight--;
        pthread_cond_broadcast(&lk->cond);
        pthread_mutex_unlock(&lk->mu);
        LOG_WARN("kafka: produce refused", "topic=%s err=\"%s\"", lk->topic, rd_kafka_err2str(err));
        return map_delivery_error(err) == CORE_E_FULL ? CORE_E_FULL : CORE_E_FAILED;
    }
    if (produced < n) {
        /* Part of it is queued: those records report; the append fails as a whole. */
        int st = map_delivery_error(err), zero = 0;
        atomic_compare_exchange_strong(&a->status, &zero, st < 0 ? st : CORE_E_FAILED);
        LOG_WARN("kafka: produce refused part of an append",
                 "topic=%s queued=%zu of=%zu "
                 "err=\"%s\"",
                 lk->topic, produced, n, rd_kafka_err2str(err));
    }
    release(a, (n - produced) + 1);
    return 0;
}

/* ==== the poller thread ==================================================================== */

static void *poller_main(void *arg)
{
    struct evlog_kafka *lk = arg;
    pthread_setname_np(pthread_self(), "kafka-poll");
    char err[256];
    while (!atomic_load(&lk->stop_poller)) {
        /* Returns as soon as a delivery report was served, else after 100 ms. */
        rd_kafka_poll(lk->prod, 100);
        if (lk->cons)
            rd_kafka_poll(lk->cons, 0); /* the consumer's errors and logs */
        if (!atomic_load(&lk->failed) && rd_kafka_fatal_error(lk->prod, err, sizeof err)) {
            atomic_store(&lk->failed, true);
            LOG_ERROR("kafka: fatal producer error; the log refuses appends", "err=\"%s\"", err);
        }
    }
    return NULL;
}

void evlog__kafka_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque;
    /* Mostly transient (a broker restarting): librdkafka retries by itself. */
    LOG_WARN("kafka: client error", "client=%s err=\"%s\" reason=\"%s\"", rd_kafka_name(rk),
             rd_kafka_err2str((rd_kafka_resp_err_t)err), reason);
}

void evlog__kafka_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* syslog levels: 0-4 are emergencies to warnings. */
    if (level <= 4)
        LOG_WARN("kafka: client log", "client=%s facility=%s msg=\"%s\"", rd_kafka_name(rk), fac,
                 buf);
    else
        LOG_DEBUG("kafka: client log", "client=%s facility=%s msg=\"%s\"", rd_kafka_name(rk), fac,
                  buf);
}

/* ==== lifecycle ============================================================================ */

int evlog__kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char err[256];
    if (rd_kafka_conf_set(conf, name, value, err, sizeof err) != RD_KAFKA_CONF_OK) {
        LOG_ERROR("kafka: bad client setting", "name=%s value=%s err=\"%s\"", name, value, err);
        return CORE_E_INVALID;
    }
    return 0;
}

static int new_producer(struct evlog_kafka *lk, const struct evlog_kafka_options *opt)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char v[32], err[512];
    /* librdkafka's own bounds sit above ours so its queue-full error never comes first. */
    int64_t kb = lk->queue_bytes / 1024 * 2 + 1024;
    int64_t msgs = lk->queue_bytes / EVLOG_KAFKA_REC_OVERHEAD * 2 + 1000;
    int rc = evlog__kafka_conf_set(conf, "bootstrap.servers", lk->brokers);
    rc = rc ? rc : evlog__kafka_conf_set(conf, "client.id", "recstream");
    rc = rc ? rc : evlog__kafka_conf_set(conf, "enable.idempotence", "true");
    rc = rc ? rc : evlog__kafka_conf_set(conf, "acks", "all");
    rc = rc ? rc : evlog__kafka_conf_set(conf, "partitioner", "murmur2_random");
    rc = rc ? rc : evlog__kafka_conf_set(conf, "linger.ms", "2");
    snprintf(v, sizeof v, "%lld", (long long)(kb < 2097151 ? kb : 2097151));
    rc = rc ? rc : evlog__kafka_conf_set(conf, "queue.buffering.max.kbytes", v);
    snprintf(v, sizeof v, "%lld", (long long)(msgs < 2147483647 ? msgs : 2147483647));
    rc = rc ? rc : evlog__kafka_conf_set(conf, "queue.buffering.max.messages", v);
    snprintf(v, sizeof v, "%d", opt->delivery_timeout_ms);
    rc = rc ? rc : evlog__kafka_conf_set(conf, "message.timeout.ms", v);
    if (rc < 0) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, evlog__kafka_on_error);
    rd_kafka_conf_set_log_cb(conf, evlog__kafka_on_log);
    rd_kafka_conf_set_opaque(conf, lk);
    lk->prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!lk->prod) {
        LOG_ERROR("kafka: cannot create the producer", "err=\"%s\"", err);
        return CORE_E_FAILED;
    }
    return 0;
}

/* The topic's partition count from the cluster's metadata (all topics, so that asking never
 * auto-creates the topic). */
static int topic_partitions(struct evlog_kafka *lk, int timeout_ms, int32_t *out)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(lk->prod, 1, NULL, &md, timeout_ms);
    if (err) {
        LOG_ERROR("kafka: cannot read the cluster's metadata", "brokers=%s err=\"%s\"", lk->brokers,
                  rd_kafka_err2str(err));
        return CORE_E_FAILED;
    }
    int rc = CORE_E_NOTFOUND;
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *t = &md->topics[i];
        if (strcmp(t->topic, lk->topic) != 0)
            continue;
        if (t->err || t->partition_cnt <= 0)
            break;
        *out = t->partition_cnt;
        rc = 0;
        break;
    }
    rd_kafka_metadata_destroy(md);
    if (rc < 0)
        LOG_ERROR("kafka: the topic does not exist (create it with the partition count you "
                  "want; recstream does not create topics)",
                  "brokers=%s topic=%s", lk->brokers, lk->topic);
    return rc;
}

/* Initial watermarks of every partition (so stats and reads know what the topic holds). */
static int query_watermarks(struct evlog_kafka *lk, int timeout_ms)
{
    for (int32_t p = 0; p < lk->base.partitions; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(lk->prod, lk->topic, p, &lo, &hi, timeout_ms);
        if (err) {
            LOG_ERROR("kafka: cannot read a partition's offsets",
                      "topic=%s partition=%d "
                      "err=\"%s\"",
                      lk->topic, (int)p, rd_kafka_err2str(err));
            return CORE_E_FAILED;
        }
        lk->low[p] = lo;
        lk->high[p] = hi;
    }
    return 0;
}

static void kafka_close(struct evlog *log);

int evlog_kafka_open(const struct evlog_kafka_options *opt, struct evlog **out)
{
    if (!opt->brokers || !opt->topic || !opt->keys || opt->queue_bytes <= 0)
        return CORE_E_INVALID;
    struct evlog_kafka *lk = core_xcalloc(1, sizeof *lk);
    lk->base.ops = &kafka_ops;
    lk->brokers = core_xstrdup(opt->brokers);
    lk->topic = core_xstrdup(opt->topic);
    lk->keys = opt->keys;
    lk->queue_bytes = opt->queue_bytes;
    lk->read_wait_ms = opt->read_wait_ms;
    pthread_mutex_init(&lk->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&lk->cond, &ca);
    pthread_condattr_destroy(&ca);
    int32_t parts = 0;
    int rc = new_producer(lk, opt);
    if (rc == 0)
        rc = topic_partitions(lk, opt->metadata_timeout_ms, &parts);
    if (rc == 0 && opt->partitions > 0 && opt->partitions != parts) {
        LOG_ERROR("kafka: --partitions differs from the topic's partition count",
                  "topic=%s topic_partitions=%d partitions=%d", lk->topic, (int)parts,
                  (int)opt->partitions);
        rc = CORE_E_INVALID;
    }
    if (rc < 0)
        goto fail;
    lk->base.partitions = parts;
    lk->high = core_xcalloc((size_t)parts, sizeof *lk->high);
    lk->low = core_xcalloc((size_t)parts, sizeof *lk->low);
    rc = query_watermarks(lk, opt->metadata_timeout_ms);
    if (rc == 0)
        rc = evlog__kafka_consumer_open(lk, opt->metadata_timeout_ms);
    if (rc < 0)
        goto fail;
    if (pthread_create(&lk->poller, NULL, poller_main, lk) != 0) {
        rc = CORE_E_FAILED;
        goto fail;
    }
    LOG_INFO("kafka log open", "brokers=%s topic=%s partitions=%d librdkafka=%s", lk->brokers,
             lk->topic, (int)parts, rd_kafka_version_str());
    *out = &lk->base;
    return 0;
fail:
    atomic_store(&lk->stop_poller, true); /* never started: close skips the join */
    kafka_close(&lk->base);
    return rc;
}

/* Waits until every append so far has run its done (or timeout_ms passed). */
static int wait_inflight(struct evlog_kafka *lk, int timeout_ms)
{
    int64_t deadline = core_mono_ns() + (int64_t)timeout_ms * 1000000;
    pthread_mutex_lock(&lk->mu);
    while (lk->inflight > 0 && core_mono_ns() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 50 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&lk->cond, &lk->mu, &ts);
    }
    int rc = lk->inflight > 0 ? CORE_E_TIMEOUT : 0;
    pthread_mutex_unlock(&lk->mu);
    return rc;
}

static int kafka_flush(struct evlog *log)
{
    struct evlog_kafka *lk = (struct evlog_kafka *)log;
    /* rd_kafka_flush serves delivery reports itself, so this works with the poller stopped
     * too; then the poller may still be inside a done callback: wait for those. */
    rd_kafka_resp_err_t err = rd_kafka_flush(lk->prod, 30000);
    int rc = wait_inflight(lk, 1000);
    if (err || rc < 0) {
        LOG_WARN("kafka: flush did not complete", "topic=%s err=\"%s\"", lk->topic,
                 rd_kafka_err2str(err));
        return CORE_E_TIMEOUT;
    }
    return 0;
}

static void kafka_close(struct evlog *log)
{
    struct evlog_kafka *lk = (struct evlog_kafka *)log;
    pthread_mutex_lock(&lk->mu);
    lk->closing = true;
    pthread_cond_broadcast(&lk->cond);
    while (lk->waiters > 0)
        pthread_cond_wait(&lk->cond, &lk->mu);
    pthread_mutex_unlock(&lk->mu);
    if (lk->prod) {
        if (rd_kafka_flush(lk->prod, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* Undeliverable now: their appends fail with CORE_E_CLOSED. */
            rd_kafka_purge(lk->prod, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_flush(lk->prod, 1000);
        }
    }
    if (!atomic_load(&lk->stop_poller)) {
        atomic_store(&lk->stop_poller, true);
        pthread_join(lk->poller, NULL);
    }
    if (lk->prod)
        rd_kafka_poll(lk->prod, 0); /* reports the poller left behind */
    evlog__kafka_consumer_close(lk);
    if (lk->prod)
        rd_kafka_destroy(lk->prod);
    pthread_mutex_destroy(&lk->mu);
    pthread_cond_destroy(&lk->cond);
    free(lk->high);
    free(lk->low);
    free(lk->brokers);
    free(lk->topic);
    free(lk);
}

static const struct evlog_ops kafka_ops = {
    .name = "kafka",
    .append = kafka_append,
    .read = evlog__kafka_read,
    .wait = evlog__kafka_wait,
    .changes = evlog__kafka_changes,
    .wait_change = evlog__kafka_wait_change,
    .stats = evlog__kafka_stats,
    .offset_for_time = evlog__kafka_offset_for_time,
    .flush = kafka_flush,
    .close = kafka_close,
    .fetch = evlog__kafka_fetch,
};
