/*
 * The collector pipeline: decode -> validate -> pseudonymise -> dedup -> partition ->
 * append, completing each batch once its records are durable (or known duplicates of
 * durable records).
 *
 * Dedup and append happen under one mutex so that two requests carrying the same eventId
 * can never both be stored: the first inserts a pending dedup entry that points at its
 * in-flight group; a later repeat either reads the stored position or waits on that group.
 */
#include "ingest/ingest_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct waiter {
    struct ingest_batch *batch; /* the batch holding the repeat */
    size_t item;                /* its item */
    size_t rec;                 /* the original's record index in the awaited group */
};

struct ingest_group {
    struct ingest_batch *batch;
    struct ingest *ing;
    bool own_pending;       /* its own append has not completed yet */
    size_t waits;           /* its items waiting on other groups */
    int status;             /* outcome of its own append */
    struct waiter *waiters; /* other batches' items waiting on this group's records */
    size_t nwaiters, cap_waiters;
    uint64_t *hashes; /* per record: eventId hash (h1, h2), or 0,0 when server-assigned */
};

void ingest_config_init(struct ingest_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->dedup_window_ms = 24LL * 3600 * 1000;
    cfg->dedup_max = 1000000;
    cfg->minimise = true;
    cfg->ip_mode = PRIVACY_IP_TRUNCATE;
    cfg->links_max = (size_t)1 << 20;
}

void ingest_batch_init(struct ingest_batch *b, struct ingest_item *items, size_t n)
{
    memset(b, 0, sizeof *b);
    b->items = items;
    b->n = n;
    core_arena_init(&b->arena);
    core_buf_init(&b->payload);
    for (size_t i = 0; i < n; i++) {
        items[i].status = 0;
        items[i].duplicate = false;
        items[i].dropped_consent = false;
        items[i].out_partition = -1;
        items[i].out_offset = -1;
        items[i].err.field[0] = '\0';
        items[i].err.message[0] = '\0';
    }
}

void ingest_batch_dispose(struct ingest_batch *b)
{
    core_arena_dispose(&b->arena);
    core_buf_dispose(&b->payload);
    free(b->recs);
    free(b->rec_item);
    ingest__seal_dispose(b);
    b->recs = NULL;
    b->rec_item = NULL;
}

/* ---- rebuilding the dedup window from the log ---------------------------------------- */

static int rebuild_dedup(struct ingest *ing)
{
    int64_t since = core_now_ms() - ing->cfg.dedup_window_ms;
    struct evlog_batch batch;
    evlog_batch_init(&batch);
    int rc = 0;
    size_t loaded = 0;
    for (int32_t p = 0; p < ing->log->partitions && rc == 0; p++) {
        int64_t off;
        rc = evlog_offset_for_time(ing->log, p, since, &off);
        while (rc == 0) {
            int n = evlog_read(ing->log, p, off, 4096, &batch);
            if (n < 0) {
                rc = n;
                break;
            }
            if (n == 0)
                break;
            for (size_t i = 0; i < batch.n; i++) {
                const struct evlog_record *r = &batch.recs[i];
                struct event ev;
                /* Only client eventIds can be repeated by clients; ids the collector made up
                 * would only crowd them out of the bounded window. */
                if (r->erased || r->ingest_time_ms < since ||
                    event_bin_decode(r->value, r->value_len, &ev) || ev.id_assigned)
                    continue;
                uint64_t h1, h2;
                ingest__dedup_hash(ev.event_id.ptr, ev.event_id.len, &h1, &h2);
                struct dedup_entry *e = ingest__dedup_find(&ing->dedup, h1, h2);
                if (!e)
                    e = ingest__dedup_insert(&ing->dedup, h1, h2, r->ingest_time_ms);
                e->partition = p;
                e->offset = r->offset;
                loaded++;
            }
            off = batch.recs[batch.n - 1].offset + 1;
        }
    }
    evlog_batch_dispose(&batch);
    if (rc == 0)
        LOG_INFO("dedup window rebuilt from the log", "events=%zu remembered=%zu", loaded,
                 ing->dedup.live);
    return rc;
}

static bool minimise_ip(void *arg, const char *ip, size_t len, char *out, size_t cap)
{
    const struct ingest *ing = arg;
    return ing->cfg.ip_mode == PRIVACY_IP_TRUNCATE && privacy_ip_truncate(ip, len, out, cap);
}

static const char *device_class(void *arg, const char *ua, size_t len)
{
    (void)arg;
    return privacy_device_class(ua, len);
}

int ingest_new(const struct ingest_config *cfg, struct evlog *log, const struct privacy_key *key,
               struct ingest **out)
{
    struct ingest *ing = core_xcalloc(1, sizeof *ing);
    ing->cfg = *cfg;
    ing->log = log;
    ing->key = *key;
    pthread_mutex_init(&ing->mu, NULL);
    ing->decode_opts.custom_type = ingest__custom_type;
    ing->decode_opts.arg = ing;
    if (cfg->minimise) {
        ing->decode_opts.minimise_ip = minimise_ip;
        ing->decode_opts.device_class = device_class;
    }
    ingest__merge_init(ing);
    pthread_mutex_init(&ing->nonce_mu, NULL);
    seal_nonces_init(&ing->nonces);
    ingest__dedup_init(&ing->dedup, (size_t)cfg->dedup_max, cfg->dedup_window_ms);
    int rc = rebuild_dedup(ing);
    if (rc < 0) {
        ingest_free(ing);
        return rc;
    }
    *out = ing;
    return 0;
}

void ingest_free(struct ingest *ing)
{
    if (!ing)
        return;
    ingest__dedup_dispose(&ing->dedup);
    ingest__merge_dispose(ing);
    pthread_mutex_destroy(&ing->nonce_mu);
    pthread_mutex_destroy(&ing->mu);
    privacy_key_dispose(&ing->key);
    free(ing);
}

void ingest_stats(struct ingest *ing, struct ingest_stats *out)
{
    out->accepted = atomic_load(&ing->accepted);
    out->duplicates = atomic_load(&ing->duplicates);
    out->rejected = atomic_load(&ing->rejected);
    out->dropped_fields = atomic_load(&ing->dropped_fields);
    out->overloaded = atomic_load(&ing->overloaded);
    out->failed = atomic_load(&ing->failed);
    out->deadlettered = atomic_load(&ing->deadlettered);
    out->dropped_consent = atomic_load(&ing->dropped_consent);
    out->aggregated_consent = atomic_load(&ing->aggregated_consent);
    out->pii_fields = atomic_load(&ing->pii_fields);
    out->sealed_fields = atomic_load(&ing->sealed_fields);
    for (int t = 0; t <= EVENT_TYPE_CUSTOM; t++)
        out->by_type[t] = atomic_load(&ing->by_type[t]);
    pthread_mutex_lock(&ing->mu);
    out->dedup_entries = ing->dedup.live;
    out->dedup_evicted = ing->dedup.evicted;
    pthread_mutex_unlock(&ing->mu);
}

void ingest_pseudonym_user(struct ingest *ing, const char *id, size_t n, char *out)
{
    privacy_pseudonym_user(&ing->key, id, n, out);
}

void ingest_pseudonym_anon(struct ingest *ing, const char *id, size_t n, char *out)
{
    privacy_pseudonym_anon(&ing->key, id, n, out);
}

bool ingest_ready(struct ingest *ing)
{
    return !atomic_load(&ing->log_failed);
}

/* ---- decoding a batch ------------------------------------------------------------------ */

static void set_error(struct ingest_item *it, const char *field, const char *msg)
{
    it->status = CORE_E_INVALID;
    snprintf(it->err.field, sizeof it->err.field, "%s", field);
    snprintf(it->err.message, sizeof it->err.message, "%s", msg);
}

/* Decodes every item into an encoded payload and a candidate record. Records that will be
 * appended are decided later (dedup); rec_item maps each candidate to its item. */
/* A replayed dead letter carries its stored pseudonyms where raw ids would be. */
static int take_keys(struct ingest_item *it, struct event *ev)
{
    const struct event_str *ids[2] = {&ev->user_id, &ev->anonymous_id};
    char *keys[2] = {ev->user_key, ev->anon_key};
    for (int k = 0; k < 2; k++) {
        if (!ids[k]->len)
            continue;
        bool hex = ids[k]->len == EVENT_KEY_HEX;
        for (size_t c = 0; hex && c < EVENT_KEY_HEX; c++)
            hex = (ids[k]->ptr[c] >= '0' && ids[k]->ptr[c] <= '9') ||
                  (ids[k]->ptr[c] >= 'a' && ids[k]->ptr[c] <= 'f');
        if (!hex) {
            set_error(it, k ? "anonKey" : "userKey", "not a stored pseudonym");
            return CORE_E_INVALID;
        }
        memcpy(keys[k], ids[k]->ptr, EVENT_KEY_HEX);
        keys[k][EVENT_KEY_HEX] = '\0';
    }
    return 0;
}

/* Decodes, validates and pseudonymises one item into ev; failures are recorded on the item
 * and sent to the dead-letter store. */
/* What decode_one decided besides the event: its consent and the identity links it carries. */
struct decided {
    enum consent_decision consent;
    size_t nlinks;
    char (*from)[EVENT_KEY_HEX + 1], (*to)[EVENT_KEY_HEX + 1];
};

/* Consent (by the newest secret version holding a record) and identity links, while the raw
 * ids are still known. Control events and replayed dead letters carry no links. */
static void decide(struct ingest *ing, struct ingest_batch *b, struct ingest_item *it,
                   struct event *ev, struct decided *dd)
{
    dd->consent = CONSENT_ALLOW;
    dd->nlinks = 0;
    if (b->control)
        return;
    if (ing->cfg.consent && it->prekeyed)
        dd->consent = consent_stricter(consent_decide(ing->cfg.consent, ev->user_key),
                                       consent_decide(ing->cfg.consent, ev->anon_key));
    else if (ing->cfg.consent)
        dd->consent = consent_stricter(
            ingest__consent(ing, false, ev->user_id.ptr, ev->user_id.len, ev->user_key),
            ingest__consent(ing, true, ev->anonymous_id.ptr, ev->anonymous_id.len, ev->anon_key));
    if (dd->consent == CONSENT_ALLOW && !it->prekeyed)
        dd->nlinks = ingest__links(ing, ev, dd->from, dd->to);
}

static int decode_one(struct ingest *ing, struct ingest_batch *b, struct ingest_item *it,
                      struct event *ev, int64_t now, struct schema_errors *errs, struct decided *dd)
{
    if (errs)
        errs->count = errs->total = 0;
    struct event_decode_opts opts = ing->decode_opts;
    opts.allow_control = b->control;
    int rc = event_json_decode_ex(it->value, now, &b->arena, &opts, ev, &it->err);
    if (rc == 0 && it->partition >= ing->log->partitions) {
        set_error(it, "partition", "no such partition");
        rc = CORE_E_INVALID;
    }
    /* Control events have a fixed shape of the server's own: a registered schema that
     * happens to share their type's name must not be able to refuse them. */
    if (rc == 0 && !b->control)
        rc = ingest__check_schema(ing, it, ev, &b->arena, errs);
    if (rc == 0 && it->prekeyed)
        rc = take_keys(it, ev);
    if (rc < 0) {
        /* Not storable (no durable epoch key) is a failure of ours, not of the event. */
        it->status = rc == CORE_E_FAILED ? CORE_E_FAILED : CORE_E_INVALID;
        if (it->status == CORE_E_FAILED)
            atomic_fetch_add(&ing->failed, 1);
        else if (!b->no_deadletters)
            ingest__deadletter(ing, b, it, errs);
        return rc;
    }
    atomic_fetch_add(&ing->dropped_fields, ev->dropped_fields);
    atomic_fetch_add(&ing->by_type[ev->type], 1);
    if (!it->prekeyed && ev->user_id.len)
        privacy_pseudonym_user(&ing->key, ev->user_id.ptr, ev->user_id.len, ev->user_key);
    if (!it->prekeyed && ev->anonymous_id.len)
        privacy_pseudonym_anon(&ing->key, ev->anonymous_id.ptr, ev->anonymous_id.len, ev->anon_key);
    decide(ing, b, it, ev, dd);
    ev->user_id = (struct event_str){NULL, 0};
    ev->anonymous_id = (struct event_str){NULL, 0};
    return 0;
}

/* Adds candidate record j: a "merge" of from into to (the collector's own record, not an
 * item's), in from's partition, sealed under to's key. */
static void add_merge(struct ingest *ing, struct ingest_batch *b, const struct event *ev,
                      const char *from, const char *to, int64_t now, size_t j, uint64_t *hashes,
                      size_t *value_off)
{
    struct event m;
    event_init(&m);
    m.type = EVENT_MERGE;
    memcpy(m.user_key, to, EVENT_KEY_HEX + 1);
    memcpy(m.anon_key, from, EVENT_KEY_HEX + 1);
    m.ts_ms = ev->ts_ms;
    m.recv_ms = ev->recv_ms;
    char *id = core_arena_alloc(&b->arena, 37);
    event_id_generate(now, id);
    m.event_id = (struct event_str){id, 36};
    m.id_assigned = true;
    hashes[2 * j] = hashes[2 * j + 1] = 0;
    struct evlog_record *r = &b->recs[j];
    r->partition = core_partition_for_key(from, EVENT_KEY_HEX, ing->log->partitions);
    r->offset = -1;
    r->event_time_ms = m.ts_ms;
    r->ingest_time_ms = m.recv_ms;
    value_off[2 * j] = b->payload.len;
    core_buf_append(&b->payload, to, EVENT_KEY_HEX);
    value_off[2 * j + 1] = b->payload.len;
    event_bin_encode(&m, &b->payload);
    r->key_len = EVENT_KEY_HEX;
    r->value_len = (uint32_t)(b->payload.len - value_off[2 * j + 1]);
    b->rec_item[j] = SIZE_MAX;
}

/* Decodes every item into an encoded payload and a candidate record. Records that will be
 * appended are decided later (dedup); rec_item maps each candidate to its item. */
static void decode_items(struct ingest *ing, struct ingest_batch *b, uint64_t *hashes,
                         size_t *value_off)
{
    int64_t now = core_now_ms();
    size_t j = 0;
    /* The error collector (~13 KiB) is only needed when schemas are checked at all. */
    struct schema_errors *errs = ing->cfg.registry ? core_xmalloc(sizeof *errs) : NULL;
    size_t mmax = ingest__merges_max(ing);
    struct decided dd = {.from = core_xmalloc(mmax * sizeof *dd.from),
                         .to = core_xmalloc(mmax * sizeof *dd.to)};
    for (size_t i = 0; i < b->n; i++) {
        struct ingest_item *it = &b->items[i];
        struct event ev;
        event_init(&ev);
        if (decode_one(ing, b, it, &ev, now, errs, &dd) < 0)
            continue;
        if (ing->cfg.consent && !b->control) {
            enum consent_decision dec = dd.consent;
            if (dec == CONSENT_DROP) {
                it->dropped_consent = true; /* status 0: accepted, deliberately not stored */
                atomic_fetch_add(&ing->dropped_consent, 1);
                continue;
            }
            if (dec == CONSENT_AGGREGATE) {
                ev.anonymous = true;
                atomic_fetch_add(&ing->aggregated_consent, 1);
            }
        }
        /* The collector's merges come first, so the item's own record is its last. */
        if (!ev.anonymous)
            for (size_t l = 0; l < dd.nlinks; l++, j++)
                add_merge(ing, b, &ev, dd.from[l], dd.to[l], now, j, hashes, value_off);
        if (ev.event_id.len) {
            ingest__dedup_hash(ev.event_id.ptr, ev.event_id.len, &hashes[2 * j],
                               &hashes[2 * j + 1]);
        } else {
            char *id = core_arena_alloc(&b->arena, 37);
            event_id_generate(now, id);
            ev.event_id = (struct event_str){id, 36};
            ev.id_assigned = true;
            hashes[2 * j] = hashes[2 * j + 1] = 0;
        }
        const char *key = ev.user_key[0] ? ev.user_key : ev.anon_key;
        struct evlog_record *r = &b->recs[j];
        r->partition = it->partition >= 0
                           ? it->partition
                           : core_partition_for_key(key, EVENT_KEY_HEX, ing->log->partitions);
        r->offset = -1;
        r->event_time_ms = ev.ts_ms;
        r->ingest_time_ms = ev.recv_ms;
        /* The key is copied into the payload buffer too, so one buffer owns both. */
        value_off[2 * j] = b->payload.len;
        core_buf_append(&b->payload, key, EVENT_KEY_HEX);
        value_off[2 * j + 1] = b->payload.len;
        event_bin_encode(&ev, &b->payload);
        r->key_len = EVENT_KEY_HEX;
        r->value_len = (uint32_t)(b->payload.len - value_off[2 * j + 1]);
        b->rec_item[j] = i;
        j++;
    }
    free(errs);
    free(dd.from);
    free(dd.to);
    b->nrecs = j;
    for (j = 0; j < b->nrecs; j++) {
        b->recs[j].key = b->payload.data + value_off[2 * j];
        b->recs[j].value = b->payload.data + value_off[2 * j + 1];
    }
}

/* ---- completion ------------------------------------------------------------------------ */

static bool group_complete(const struct ingest_group *g)
{
    return !g->own_pending && g->waits == 0;
}

static void fill_from_record(struct ingest_item *it, const struct evlog_record *r, int status)
{
    it->status = status;
    if (status == 0) {
        it->out_partition = r->partition;
        it->out_offset = r->offset;
    }
}

/* Finishes a batch: frees its group and runs done last, since done may free the batch. */
static void finish(struct ingest_batch *b)
{
    struct ingest_group *g = b->group;
    ingest_done_fn done = b->done;
    void *arg = b->done_arg;
    b->group = NULL;
    free(g->waiters);
    free(g->hashes);
    free(g);
    done(arg);
}

/* The log's completion: may run on the log's thread or inside evlog_append on this one
 * (the inline leader write), which is why submit holds no lock across evlog_append. */
static void complete_group(struct ingest_group *g, int status);

static void on_appended(void *arg, int status)
{
    complete_group(arg, status);
}

static void complete_group(struct ingest_group *g, int status)
{
    struct ingest *ing = g->ing;
    struct ingest_batch *b = g->batch;
    struct ingest_batch *ready[64];
    size_t nready = 0;
    struct ingest_batch **more = NULL; /* when more than 64 batches complete at once */
    size_t nmore = 0;

    pthread_mutex_lock(&ing->mu);
    g->own_pending = false;
    g->status = status;
    /* A full queue and a delivery timeout (Kafka: the cluster did not answer in time) are
     * transient; any other failure means the log is not writable. */
    if (status < 0 && status != CORE_E_FULL && status != CORE_E_TIMEOUT)
        atomic_store(&ing->log_failed, true);
    size_t own = 0; /* records of items (not the collector's merges) */
    for (size_t j = 0; j < b->nrecs; j++) {
        if (b->rec_item[j] == SIZE_MAX)
            continue;
        own++;
        fill_from_record(&b->items[b->rec_item[j]], &b->recs[j], status);
        if (g->hashes[2 * j] == 0 && g->hashes[2 * j + 1] == 0)
            continue;
        struct dedup_entry *e =
            ingest__dedup_find(&ing->dedup, g->hashes[2 * j], g->hashes[2 * j + 1]);
        if (!e || e->group != g)
            continue;
        e->group = NULL;
        if (status == 0) {
            e->partition = b->recs[j].partition;
            e->offset = b->recs[j].offset;
        } else {
            ingest__dedup_remove(&ing->dedup, e);
        }
    }
    /* Repeats inside this batch point at records of this batch. */
    for (size_t i = 0; i < b->n; i++) {
        struct ingest_item *it = &b->items[i];
        if (it->duplicate && it->out_offset == -2) {
            fill_from_record(it, &b->recs[(size_t)it->out_partition], status);
        }
    }
    if (status == 0)
        atomic_fetch_add(&ing->accepted, own);
    else if (status == CORE_E_FULL)
        atomic_fetch_add(&ing->overloaded, 1);
    else
        atomic_fetch_add(&ing->failed, own);
    for (size_t w = 0; w < g->nwaiters; w++) {
        struct waiter *wt = &g->waiters[w];
        fill_from_record(&wt->batch->items[wt->item], &b->recs[wt->rec], status);
        struct ingest_group *wg = wt->batch->group;
        wg->waits--;
        if (group_complete(wg)) {
            if (nready < 64) {
                ready[nready++] = wt->batch;
            } else {
                more = core_xrealloc(more, (nmore + 1) * sizeof *more);
                more[nmore++] = wt->batch;
            }
        }
    }
    bool self = group_complete(g);
    pthread_mutex_unlock(&ing->mu);

    for (size_t i = 0; i < nready; i++)
        finish(ready[i]);
    for (size_t i = 0; i < nmore; i++)
        finish(more[i]);
    free(more);
    if (self)
        finish(b);
}

/* ---- submit ---------------------------------------------------------------------------- */

static void add_waiter(struct ingest_group *on, struct ingest_batch *b, size_t item, size_t rec)
{
    if (on->nwaiters == on->cap_waiters) {
        on->cap_waiters = on->cap_waiters ? 2 * on->cap_waiters : 4;
        on->waiters = core_xrealloc(on->waiters, on->cap_waiters * sizeof *on->waiters);
    }
    on->waiters[on->nwaiters++] = (struct waiter){b, item, rec};
}

int ingest_batch_submit(struct ingest *ing, struct ingest_batch *b, ingest_done_fn done, void *arg)
{
    struct ingest_group *g = core_xcalloc(1, sizeof *g);
    g->batch = b;
    g->ing = ing;
    b->group = g;
    b->done = done;
    b->done_arg = arg;
    /* Room for every item's record and the identity merges it may add. */
    b->cap = (b->n ? b->n : 1) * (1 + (b->control ? 0 : ingest__merges_max(ing)));
    b->recs = core_xcalloc(b->cap, sizeof *b->recs);
    b->rec_item = core_xcalloc(b->cap, sizeof *b->rec_item);
    uint64_t *hashes = core_xcalloc(2 * b->cap, sizeof *hashes);
    size_t *value_off = core_xcalloc(2 * b->cap, sizeof *value_off);
    decode_items(ing, b, hashes, value_off);
    free(value_off);
    ingest__seal_keys(ing, b);
    for (size_t i = 0; i < b->n; i++) {
        if (b->items[i].status == CORE_E_INVALID)
            atomic_fetch_add(&ing->rejected, 1);
    }

    /* Dedup decides which candidates are appended; kept ones are compacted to the front. */
    struct waiter *waits = core_xcalloc(b->nrecs ? b->nrecs : 1, sizeof *waits);
    struct ingest_group **wait_on = core_xcalloc(b->nrecs ? b->nrecs : 1, sizeof *wait_on);
    size_t nwaits = 0, kept = 0, ndups = 0;

    pthread_mutex_lock(&ing->mu);
    ingest__dedup_expire(&ing->dedup, core_now_ms());
    for (size_t j = 0; j < b->nrecs; j++) {
        uint64_t h1 = hashes[2 * j], h2 = hashes[2 * j + 1];
        size_t item = b->rec_item[j];
        struct dedup_entry *e = (h1 || h2) ? ingest__dedup_find(&ing->dedup, h1, h2) : NULL;
        if (e) {
            struct ingest_item *it = &b->items[item];
            it->duplicate = true;
            ndups++;
            if (!e->group) {
                it->out_partition = e->partition;
                it->out_offset = e->offset;
            } else if (e->group == g) {
                /* Repeat within this batch: resolved at completion from the kept record.
                 * out_offset -2 marks it; out_partition holds the kept record's index. */
                it->out_offset = -2;
                it->out_partition = (int32_t)e->group_index;
            } else {
                waits[nwaits] = (struct waiter){b, item, e->group_index};
                wait_on[nwaits++] = e->group;
            }
            continue;
        }
        if (h1 || h2) {
            e = ingest__dedup_insert(&ing->dedup, h1, h2, b->recs[j].ingest_time_ms);
            e->group = g;
            e->group_index = kept;
        }
        b->recs[kept] = b->recs[j];
        b->rec_item[kept] = item;
        hashes[2 * kept] = h1;
        hashes[2 * kept + 1] = h2;
        kept++;
    }
    b->nrecs = kept;
    g->hashes = hashes;
    /* Everything that others may look at is in place before the lock is dropped: the
     * pending dedup entries, our waits on other groups, whether our own append is due. */
    g->own_pending = kept > 0;
    for (size_t k = 0; k < nwaits; k++)
        add_waiter(wait_on[k], b, waits[k].item, waits[k].rec);
    g->waits = nwaits;
    bool sync_done = group_complete(g);
    atomic_fetch_add(&ing->duplicates, ndups);
    pthread_mutex_unlock(&ing->mu);
    free(waits);
    free(wait_on);

    /* From here on b may be completed (and freed by done) on another thread at any time. */
    if (sync_done) {
        finish(b);
        return 0;
    }
    if (kept > 0) {
        /* Appending outside the lock lets other threads parse, dedup and enqueue while the
         * log writes inline. A refused append completes the group like a failed one: its
         * dedup entries are dropped and its items (and repeats waiting on them) get the
         * error, CORE_E_FULL for a full queue. */
        int rc = evlog_append(ing->log, b->recs, kept, on_appended, g);
        if (rc < 0)
            complete_group(g, rc);
    }
    return 0;
}
