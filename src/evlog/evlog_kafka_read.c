/*
 * The Kafka backend's read side: one consumer handle with every partition assigned
 * explicitly (no group membership, no commits), each partition's fetched messages on its own
 * queue so readers of different partitions never see each other's messages.
 *
 * A read of partition p takes p's read lock, seeks the queue when the offset asked for is not
 * where the queue stands (a processor reads on from where it stopped, so that is rare), and
 * takes what the queue holds. When the topic is known to hold records at `from` (the high
 * water learned from delivery reports and fetches) but none is fetched yet, it blocks for the
 * first one (up to read_wait_ms), so "0 records" keeps meaning "nothing at or after from yet".
 *
 * Change notification without polling: each partition queue signals (from a librdkafka
 * thread) when messages arrive on it, and every delivery report raises the partition's high
 * water; both bump the change counter and wake wait/wait_change.
 */
#include "evlog/evlog_kafka_int.h"

#include "privacy/userkeys.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define READ_CHUNK 256

/* ==== consumer lifecycle =================================================================== */

/* librdkafka thread: messages arrived on a partition queue. Only our own lock is taken. */
static void on_queue_event(rd_kafka_t *rk, void *opaque)
{
    (void)rk;
    struct evlog_kafka_part *part = opaque;
    struct evlog_kafka *lk = part->lk;
    pthread_mutex_lock(&lk->mu);
    lk->changes++;
    pthread_cond_broadcast(&lk->cond);
    pthread_mutex_unlock(&lk->mu);
}

int evlog__kafka_consumer_open(struct evlog_kafka *lk, int timeout_ms)
{
    (void)timeout_ms;
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* A group id is needed for assign() only; there is no subscribe, so no group is joined
     * and no offsets are committed (offsets live in our checkpoints). */
    int rc = evlog__kafka_conf_set(conf, "bootstrap.servers", lk->brokers);
    rc = rc ? rc : evlog__kafka_conf_set(conf, "client.id", "recstream-reader");
    rc = rc ? rc : evlog__kafka_conf_set(conf, "group.id", "recstream-reader");
    rc = rc ? rc : evlog__kafka_conf_set(conf, "enable.auto.commit", "false");
    rc = rc ? rc : evlog__kafka_conf_set(conf, "enable.auto.offset.store", "false");
    rc = rc ? rc : evlog__kafka_conf_set(conf, "auto.offset.reset", "earliest");
    /* How long a broker holds a fetch that has no data. A real broker answers as soon as
     * data arrives; librdkafka's mock answers only at the end of the wait, so this bounds
     * how soon a record is visible to the processors there (measured: p50 65 ms at 100). */
    rc = rc ? rc : evlog__kafka_conf_set(conf, "fetch.wait.max.ms", "25");
    rc = rc ? rc : evlog__kafka_conf_set(conf, "queued.max.messages.kbytes", "4096");
    if (rc < 0) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    rd_kafka_conf_set_error_cb(conf, evlog__kafka_on_error); /* served by the poller */
    rd_kafka_conf_set_log_cb(conf, evlog__kafka_on_log);
    lk->cons = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!lk->cons) {
        LOG_ERROR("kafka: cannot create the consumer", "err=\"%s\"", err);
        return CORE_E_FAILED;
    }
    int32_t n = lk->base.partitions;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n);
    for (int32_t p = 0; p < n; p++)
        /* A concrete offset (the high water read at open), not OFFSET_END: resolving END
         * is an asynchronous offset lookup whose answer could land after a reader's seek
         * and undo it. */
        rd_kafka_topic_partition_list_add(list, lk->topic, p)->offset = lk->high[p];
    rd_kafka_resp_err_t e = rd_kafka_assign(lk->cons, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (e) {
        LOG_ERROR("kafka: cannot assign the partitions", "topic=%s err=\"%s\"", lk->topic,
                  rd_kafka_err2str(e));
        return CORE_E_FAILED;
    }
    lk->parts = core_xcalloc((size_t)n, sizeof *lk->parts);
    for (int32_t p = 0; p < n; p++) {
        struct evlog_kafka_part *part = &lk->parts[p];
        part->lk = lk;
        part->id = p;
        part->next = -1;
        pthread_mutex_init(&part->read_mu, NULL);
        part->q = rd_kafka_queue_get_partition(lk->cons, lk->topic, p);
        if (!part->q)
            return CORE_E_FAILED;
        rd_kafka_queue_forward(part->q, NULL); /* keep p's messages on p's queue */
        rd_kafka_queue_cb_event_enable(part->q, on_queue_event, part);
    }
    return 0;
}

void evlog__kafka_consumer_close(struct evlog_kafka *lk)
{
    if (!lk->cons)
        return;
    /* Every reference we hold goes before the handle: a queue or partition list left
     * behind makes rd_kafka_destroy wait forever. */
    for (int32_t p = 0; lk->parts && p < lk->base.partitions; p++) {
        struct evlog_kafka_part *part = &lk->parts[p];
        pthread_mutex_lock(&part->read_mu); /* a reader may still be in it (bounded wait) */
        if (part->q) {
            rd_kafka_queue_cb_event_enable(part->q, NULL, NULL);
            rd_kafka_queue_destroy(part->q);
            part->q = NULL;
        }
        pthread_mutex_unlock(&part->read_mu);
        pthread_mutex_destroy(&part->read_mu);
    }
    rd_kafka_assign(lk->cons, NULL);
    rd_kafka_consumer_close(lk->cons);
    rd_kafka_destroy(lk->cons);
    lk->cons = NULL;
    free(lk->parts);
    lk->parts = NULL;
}

/* ==== reading ============================================================================== */

void evlog__kafka_fetch(struct evlog *log, int32_t p, bool on)
{
    struct evlog_kafka *lk = (struct evlog_kafka *)log;
    if (p < 0 || p >= log->partitions || !lk->cons)
        return;
    struct evlog_kafka_part *part = &lk->parts[p];
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, lk->topic, p);
    pthread_mutex_lock(&part->read_mu);
    /* Whatever was prefetched before the pause may be gone: the next read seeks, so it can
     * never take a later message for the one it asked for (reads accept any offset at or
     * after the position they expect). */
    part->next = -1;
    rd_kafka_resp_err_t e =
        on ? rd_kafka_resume_partitions(lk->cons, list) : rd_kafka_pause_partitions(lk->cons, list);
    pthread_mutex_unlock(&part->read_mu);
    if (e)
        LOG_WARN("kafka: cannot pause or resume a partition", "topic=%s partition=%d err=\"%s\"",
                 lk->topic, (int)p, rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(list);
}

static int64_t known_high(struct evlog_kafka *lk, int32_t p)
{
    int64_t lo = -1, hi = -1;
    /* Cached from fetch responses: no request. */
    if (rd_kafka_get_watermark_offsets(lk->cons, lk->topic, p, &lo, &hi) == 0 && hi >= 0)
        evlog__kafka_note(lk, p, lo, hi);
    pthread_mutex_lock(&lk->mu);
    int64_t h = lk->high[p];
    pthread_mutex_unlock(&lk->mu);
    return h;
}

static int seek(struct evlog_kafka *lk, struct evlog_kafka_part *part, int64_t from)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, lk->topic, part->id)->offset = from;
    /* Asynchronous: the version barrier that makes the queue drop messages fetched for the
     * old position is set by this call; waiting for the fetcher to confirm the seek was seen
     * to time out now and then under load (librdkafka 2.0.2), and the read waits for the
     * first message anyway. */
    rd_kafka_error_t *error = rd_kafka_seek_partitions(lk->cons, list, 0);
    int rc = 0;
    rd_kafka_resp_err_t e = list->elems[0].err;
    if (error || (e && e != RD_KAFKA_RESP_ERR__IN_PROGRESS)) {
        LOG_WARN("kafka: seek failed", "topic=%s partition=%d offset=%lld err=\"%s\"", lk->topic,
                 (int)part->id, (long long)from,
                 error ? rd_kafka_error_string(error) : rd_kafka_err2str(e));
        rc = CORE_E_TIMEOUT;
    }
    if (error)
        rd_kafka_error_destroy(error);
    rd_kafka_topic_partition_list_destroy(list);
    if (rc == 0)
        part->next = from;
    return rc;
}

static const void *header(const rd_kafka_message_t *m, const char *name, size_t *len)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *v = NULL;
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, name, &v, len) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    return v;
}

static int unhex12(const char *s, size_t n, uint8_t out[SEAL_ID_BYTES])
{
    if (n != 2 * SEAL_ID_BYTES)
        return CORE_E_CORRUPT;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return CORE_E_CORRUPT;
        if (i % 2 == 0)
            out[i / 2] = (uint8_t)(d << 4);
        else
            out[i / 2] |= (uint8_t)d;
    }
    return 0;
}

static void put_rec(struct evlog_batch *b, const struct evlog_record *rec)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->recs = core_xrealloc(b->recs, b->cap * sizeof *b->recs);
    }
    b->recs[b->n++] = *rec;
}

/*
 * Opens message m into the batch: its plaintext (key, then value) is appended to b->buf and
 * the record's key/value hold positions in it until the caller fixes the pointers. Returns
 * 0 or CORE_E_CORRUPT (*why set).
 */
static int open_message(struct evlog_kafka *lk, const rd_kafka_message_t *m, struct evlog_batch *b,
                        const char **why)
{
    struct evlog_record rec = {.partition = m->partition, .offset = m->offset};
    rd_kafka_timestamp_type_t tt;
    rec.ingest_time_ms = rd_kafka_message_timestamp(m, &tt);
    size_t klen = 0, ilen = 0, tlen = 0;
    const char *kid = header(m, "keyId", &klen);
    const char *id = header(m, "eventId", &ilen);
    const char *et = header(m, "eventTime", &tlen);
    char tbuf[24];
    uint8_t key_id[SEAL_ID_BYTES];
    if (!kid || !et || tlen == 0 || tlen >= sizeof tbuf || ilen > EVLOG_KAFKA_MAX_ID ||
        unhex12(kid, klen, key_id) < 0) {
        *why = "not a recstream record (headers keyId, eventId, eventTime missing or malformed)";
        return CORE_E_CORRUPT;
    }
    memcpy(tbuf, et, tlen);
    tbuf[tlen] = '\0';
    if (core_parse_i64(tbuf, INT64_MIN, INT64_MAX, &rec.event_time_ms)) {
        *why = "eventTime header is not a number";
        return CORE_E_CORRUPT;
    }
    if (m->len < 4 + SEAL_OVERHEAD) {
        *why = "value too short to be sealed";
        return CORE_E_CORRUPT;
    }
    struct seal_key key;
    if (userkeys_find_id(lk->keys, key_id, &key) < 0) {
        rec.erased = true; /* the user's key was shredded: nothing left to read */
        rec.key = rec.value = (const void *)(uintptr_t)b->buf.len;
        put_rec(b, &rec);
        return 0;
    }
    uint8_t ad[EVLOG_KAFKA_AD_MAX];
    size_t adlen = evlog__kafka_ad(ad, m->partition, rec.event_time_ms, rec.ingest_time_ms, key_id,
                                   id ? id : "", id ? ilen : 0);
    size_t at = b->buf.len;
    core_buf_append(&b->buf, m->payload, m->len);
    uint8_t *sealed = (uint8_t *)b->buf.data + at;
    int rc = seal_record_open(&key, ad, adlen, sealed, m->len);
    seal_key_dispose(&key);
    if (rc < 0) {
        b->buf.len = at;
        *why = "record does not authenticate (tampered, moved, or another key)";
        return CORE_E_CORRUPT;
    }
    const uint8_t *pt = sealed + SEAL_NONCE_BYTES;
    uint32_t plain = (uint32_t)(m->len - SEAL_OVERHEAD);
    uint32_t kl = (uint32_t)pt[0] | ((uint32_t)pt[1] << 8) | ((uint32_t)pt[2] << 16) |
                  ((uint32_t)pt[3] << 24);
    if (kl > plain - 4 || kl > EVLOG_KAFKA_MAX_KEY) {
        b->buf.len = at;
        *why = "sealed record key length out of range";
        return CORE_E_CORRUPT;
    }
    rec.key = (const void *)(uintptr_t)(at + SEAL_NONCE_BYTES + 4);
    rec.key_len = kl;
    rec.value = (const void *)(uintptr_t)(at + SEAL_NONCE_BYTES + 4 + kl);
    rec.value_len = plain - 4 - kl;
    put_rec(b, &rec);
    return 0;
}

static void fix_pointers(struct evlog_batch *b)
{
    /* A batch whose records are all empty (erased ones) has no buffer: every offset is 0 */
    const char *base = b->buf.data ? b->buf.data : "";
    for (size_t i = 0; i < b->n; i++) {
        struct evlog_record *rec = &b->recs[i];
        rec->key = base + (uintptr_t)rec->key;
        rec->value = base + (uintptr_t)rec->value;
        if (rec->erased)
            rec->key_len = rec->value_len = 0;
    }
}

/* Takes up to max messages of part's queue into msgs; waits up to wait_ms for the first. */
static size_t take(struct evlog_kafka_part *part, rd_kafka_message_t **msgs, size_t max,
                   int wait_ms)
{
    rd_kafka_message_t *first = rd_kafka_consume_queue(part->q, wait_ms);
    if (!first)
        return 0;
    msgs[0] = first;
    if (max == 1)
        return 1;
    ssize_t more = rd_kafka_consume_batch_queue(part->q, 0, msgs + 1, max - 1);
    return 1 + (more > 0 ? (size_t)more : 0);
}

int evlog__kafka_read(struct evlog *log, int32_t p, int64_t from, size_t max, struct evlog_batch *b)
{
    struct evlog_kafka *lk = (struct evlog_kafka *)log;
    if (p < 0 || p >= log->partitions)
        return CORE_E_INVALID;
    b->n = 0;
    b->buf.len = 0;
    if (max == 0)
        return 0;
    struct evlog_kafka_part *part = &lk->parts[p];
    rd_kafka_message_t *msgs[READ_CHUNK];
    int rc = 0;
    pthread_mutex_lock(&part->read_mu);
    pthread_mutex_lock(&lk->mu);
    if (from < lk->low[p])
        from = lk->low[p]; /* clamped up to the low-water mark, as the file log does */
    bool closing = lk->closing;
    pthread_mutex_unlock(&lk->mu);
    if (closing) {
        rc = CORE_E_CLOSED;
        goto out;
    }
    if (part->next != from) {
        rc = seek(lk, part, from);
        if (rc < 0)
            goto out;
    }
    int64_t start = core_mono_ns();
    int64_t deadline = start + (int64_t)lk->read_wait_ms * 1000000;
    bool reseeked = false;
    while (b->n < max) {
        int wait_ms = 0;
        if (b->n == 0 && from < known_high(lk, p)) {
            int64_t now = core_mono_ns(), left = (deadline - now) / 1000000;
            if (left <= 0) {
                LOG_WARN("kafka: records known to exist were not fetched in time",
                         "topic=%s partition=%d offset=%lld", lk->topic, (int)p, (long long)from);
                break;
            }
            if (!reseeked && now - start > (int64_t)1000 * 1000000) {
                /* Nothing for a second: position the fetcher again (cheap, and it heals a
                 * seek that a concurrent fetcher state change may have overridden). */
                reseeked = true;
                if (seek(lk, part, from) < 0)
                    break;
            }
            wait_ms = left < 100 ? (int)left : 100;
        }
        size_t want = max - b->n < READ_CHUNK ? max - b->n : READ_CHUNK;
        size_t got = take(part, msgs, want, wait_ms);
        if (got == 0 && wait_ms == 0)
            break;
        for (size_t i = 0; i < got; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (rc == 0 && m->err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                m->offset >= part->next) { /* never backwards, never twice */
                const char *why = NULL;
                rc = open_message(lk, m, b, &why);
                if (rc < 0)
                    LOG_ERROR("kafka: corrupt record",
                              "topic=%s partition=%d offset=%lld "
                              "why=\"%s\"",
                              lk->topic, (int)p, (long long)m->offset, why);
                else
                    part->next = m->offset + 1;
            } else if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                LOG_WARN("kafka: fetch error", "topic=%s partition=%d err=\"%s\"", lk->topic,
                         (int)p, rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
        }
        if (rc < 0) {
            part->next = -1; /* messages after the bad one were taken: seek next time */
            goto out;
        }
        if (got < want && b->n > 0)
            break; /* the queue is drained */
    }
out:
    pthread_mutex_unlock(&part->read_mu);
    if (rc < 0) {
        b->n = 0;
        return rc;
    }
    fix_pointers(b);
    return (int)b->n;
}

/* ==== waiting ============================================================================== */

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

int evlog__kafka_wait(struct evlog *log, int32_t p, int64_t offset, int timeout_ms)
{
    struct evlog_kafka *lk = (struct evlog_kafka *)log;
    if (p < 0 || p >= log->partitions)
        return CORE_E_INVALID;
    struct timespec ts;
    deadline_after(&ts, timeout_ms < 0 ? 0 : timeout_ms);
    int rc = 0, out, recheck = 0;
    pthread_mutex_lock(&lk->mu);
    lk->waiters++; /* for the whole call: close waits for us before freeing the consumer */
    for (;;) {
        pthread_mutex_unlock(&lk->mu);
        /* Records other producers wrote, as far as fetches have seen them (outside mu). */
        known_high(lk, p);
        pthread_mutex_lock(&lk->mu);
        out = lk->high[p] > offset ? 0 : lk->closing ? CORE_E_CLOSED : CORE_E_TIMEOUT;
        if (out != CORE_E_TIMEOUT || rc == ETIMEDOUT)
            break;
        if (recheck > 0) {
            /* librdkafka signals a fetch before it updates the cached watermarks: look
             * again shortly, a few times, after each wake-up (never while idle). */
            recheck--;
            struct timespec soon;
            deadline_after(&soon, 5);
            bool later =
                soon.tv_sec > ts.tv_sec || (soon.tv_sec == ts.tv_sec && soon.tv_nsec > ts.tv_nsec);
            rc = pthread_cond_timedwait(&lk->cond, &lk->mu, timeout_ms >= 0 && later ? &ts : &soon);
            if (rc == ETIMEDOUT && !(timeout_ms >= 0 && later))
                rc = 0;
            continue;
        }
        uint64_t seen = lk->changes;
        if (timeout_ms < 0)
            pthread_cond_wait(&lk->cond, &lk->mu);
        else
            rc = pthread_cond_timedwait(&lk->cond, &lk->mu, &ts);
        if (lk->changes != seen)
            recheck = 10;
    }
    lk->waiters--;
    pthread_cond_broadcast(&lk->cond); /* close waits for the last waiter to leave */
    pthread_mutex_unlock(&lk->mu);
    return out;
}

uint64_t evlog__kafka_changes(struct evlog *log)
{
    struct evlog_kafka *lk = (struct evlog_kafka *)log;
    pthread_mutex_lock(&lk->mu);
    uint64_t c = lk->changes;
    pthread_mutex_unlock(&lk->mu);
    return c;
}

int evlog__kafka_wait_change(struct evlog *log, uint64_t seen, int timeout_ms)
{
    struct evlog_kafka *lk = (struct evlog_kafka *)log;
    struct timespec ts;
    deadline_after(&ts, timeout_ms < 0 ? 0 : timeout_ms);
    int rc = 0;
    pthread_mutex_lock(&lk->mu);
    lk->waiters++;
    while (lk->changes == seen && !lk->closing && rc != ETIMEDOUT) {
        if (timeout_ms < 0)
            pthread_cond_wait(&lk->cond, &lk->mu);
        else
            rc = pthread_cond_timedwait(&lk->cond, &lk->mu, &ts);
    }
    int out = lk->changes != seen ? 0 : lk->closing ? CORE_E_CLOSED : CORE_E_TIMEOUT;
    lk->waiters--;
    pthread_cond_broadcast(&lk->cond);
    pthread_mutex_unlock(&lk->mu);
    return out;
}

/* ==== stats and time lookup ================================================================ */

int evlog__kafka_stats(struct evlog *log, int32_t p, struct evlog_partition_stats *out)
{
    struct evlog_kafka *lk = (struct evlog_kafka *)log;
    if (p < 0 || p >= log->partitions)
        return CORE_E_INVALID;
    known_high(lk, p);
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&lk->mu);
    out->low_water = lk->low[p];
    out->high_water = lk->high[p];
    pthread_mutex_unlock(&lk->mu);
    return 0;
}

/* The timestamp of the first record at or after x in p (*at its offset); 1 when there is
 * none, 0, or a negative error. Moves p's reader. */
static int peek_time(struct evlog_kafka *lk, int32_t p, int64_t x, int64_t *ts, int64_t *at)
{
    struct evlog_kafka_part *part = &lk->parts[p];
    int rc = 1;
    pthread_mutex_lock(&part->read_mu);
    if (part->next != x && seek(lk, part, x) < 0) {
        rc = CORE_E_TIMEOUT;
        goto out;
    }
    int64_t deadline = core_mono_ns() + (int64_t)lk->read_wait_ms * 1000000;
    while (rc == 1 && x < known_high(lk, p) && core_mono_ns() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consume_queue(part->q, 100);
        if (!m)
            continue;
        if (!m->err && m->offset >= x) {
            rd_kafka_timestamp_type_t tt;
            *ts = rd_kafka_message_timestamp(m, &tt);
            *at = m->offset;
            LOG_DEBUG("kafka: peek", "p=%d x=%lld at=%lld ts=%lld", (int)p, (long long)x,
                      (long long)m->offset, (long long)*ts);
            part->next = m->offset + 1;
            rc = 0;
        }
        rd_kafka_message_destroy(m);
    }
out:
    pthread_mutex_unlock(&part->read_mu);
    return rc;
}

int evlog__kafka_offset_for_time(struct evlog *log, int32_t p, int64_t ts_ms, int64_t *offset)
{
    struct evlog_kafka *lk = (struct evlog_kafka *)log;
    if (p < 0 || p >= log->partitions)
        return CORE_E_INVALID;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, lk->topic, p)->offset = ts_ms;
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(lk->cons, list, lk->read_wait_ms);
    if (!err)
        err = list->elems[0].err;
    int64_t o = list->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(list);
    if (err) {
        LOG_WARN("kafka: offsets_for_times failed", "topic=%s partition=%d err=\"%s\"", lk->topic,
                 (int)p, rd_kafka_err2str(err));
        return CORE_E_FAILED;
    }
    int64_t high = known_high(lk, p);
    if (o < 0 || o > high)
        o = high; /* no record at or after ts_ms */
    /*
     * Check the answer with the record before it: a broker without a time index for the
     * range (librdkafka's mock cluster answers the end offset for any time) would otherwise
     * make us skip records. When that record is not older than ts_ms, binary search over
     * the record timestamps (our producer writes the ingest time, nearly monotonic per
     * partition). On a real broker this costs the one peek.
     */
    pthread_mutex_lock(&lk->mu);
    int64_t lo = lk->low[p];
    pthread_mutex_unlock(&lk->mu);
    int64_t t = 0, at = 0;
    if (o > lo) {
        int rc = peek_time(lk, p, o - 1, &t, &at);
        if (rc < 0)
            return rc;
        if (rc == 0 && t >= ts_ms) {
            int64_t hi = o - 1; /* record hi is at or after ts_ms */
            while (lo < hi) {
                int64_t mid = lo + (hi - lo) / 2;
                rc = peek_time(lk, p, mid, &t, &at);
                if (rc < 0)
                    return rc;
                if (rc == 1 || t >= ts_ms)
                    hi = mid;
                else
                    lo = at + 1;
            }
            o = hi;
        }
    }
    LOG_DEBUG("kafka: offset_for_time", "p=%d ts=%lld offset=%lld", (int)p, (long long)ts_ms,
              (long long)o);
    *offset = o;
    return 0;
}
