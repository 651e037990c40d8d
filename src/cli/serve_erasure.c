/* The erasure job (see serve_erasure.h). */
#include "cli/serve_erasure.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_MS 1000
/* Keys merged into one pseudonym at most (state.h) times the secret versions held. */
#define ALIASES_MAX (32 * PRIVACY_KEY_VERSIONS_MAX)

/* The keys one attempt covers: the user's pseudonym under every secret version still held
 * (computed from the raw id; the receipt's pseudonym too, in case the secret was rotated since
 * the request) and the keys merged into them (anonymous ids, older pseudonyms: their aliases,
 * read from state before the forget). */
struct keyset {
    int nkeys;
    char keys[PRIVACY_KEY_VERSIONS_MAX + 1][EVENT_KEY_HEX + 1];
    int naliases;
    char aliases[ALIASES_MAX][EVENT_KEY_HEX + 1];
};

struct serve_erasure {
    struct serve_erasure_config cfg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* wakes the job; signals step progress to requests */
    bool stopping, kick;
    uint64_t progress; /* bumped after every step written to a receipt */
    struct keyset ks;  /* of the attempt in progress (job thread only) */
};

/* Sleeps up to ms unless stopping; returns false when stopping. */
static bool pause_ms(struct serve_erasure *j, int64_t ms)
{
    pthread_mutex_lock(&j->mu);
    struct timespec ts = core_deadline_after(CLOCK_REALTIME, ms);
    while (!j->stopping && !j->kick && ms > 0)
        if (pthread_cond_timedwait(&j->cond, &j->mu, &ts) == ETIMEDOUT)
            break;
    j->kick = false;
    bool go = !j->stopping;
    pthread_mutex_unlock(&j->mu);
    return go;
}

/* ---- step: forget (the control event) -------------------------------------------------------- */

struct control {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool done;
};

static void on_control_done(void *arg)
{
    struct control *c = arg;
    pthread_mutex_lock(&c->mu);
    c->done = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

/* Withdraws the user's consent (so ingest drops their events while the erasure runs: none
 * can slip in between the forget and the shred), then appends a "consent" control event
 * withdrawing everything (marked "erasure") under the user's pseudonym and waits until the
 * processor applied it: the state is then forgotten the way replays and restarts forget it
 * too. The consent step removes the withdrawal again; events after it are new data. */
static int forget_key(struct serve_erasure *j, const char *key, bool anon, char *why, size_t ws);

/* The receipt's keys (see struct keyset). */
static void keys_of(struct serve_erasure *j, const struct erasure_receipt *r)
{
    struct keyset *ks = &j->ks;
    char v[PRIVACY_KEY_VERSIONS_MAX][33];
    int n = ingest_pseudonym_versions(j->cfg.ing, r->anon, r->raw, r->raw_len, v);
    ks->nkeys = 0;
    bool has_receipt_key = false;
    for (int i = 0; i < n; i++) {
        memcpy(ks->keys[ks->nkeys++], v[i], EVENT_KEY_HEX + 1);
        has_receipt_key |= !strcmp(v[i], r->key);
    }
    if (!has_receipt_key)
        memcpy(ks->keys[ks->nkeys++], r->key, EVENT_KEY_HEX + 1);
    sodium_memzero(v, sizeof v);
}

/* Reads the aliases of every key from state (before the forget drops them) and shreds them at
 * once: a crash after the forget could not find them again. Their consent records go too. */
static int forget_aliases(struct serve_erasure *j, char *why, size_t ws)
{
    struct keyset *ks = &j->ks;
    ks->naliases = 0;
    int32_t np = stream_partitions(j->cfg.stream);
    for (int i = 0; i < ks->nkeys && ks->naliases < ALIASES_MAX; i++) {
        int32_t p = core_partition_for_key(ks->keys[i], EVENT_KEY_HEX, np);
        ks->naliases +=
            state_shard_user_aliases(stream_shard(j->cfg.stream, p), ks->keys[i],
                                     ks->aliases + ks->naliases, ALIASES_MAX - ks->naliases);
    }
    for (int i = 0; i < ks->naliases; i++) {
        int rc = userkeys_shred(j->cfg.userkeys, ks->aliases[i]);
        if (rc < 0 && rc != CORE_E_NOTFOUND) {
            snprintf(why, ws, "a merged key could not be shredded (%s)", core_strerror(rc));
            return rc;
        }
        rc = consent_forget(j->cfg.consent, ks->aliases[i]);
        if (rc < 0 && rc != CORE_E_NOTFOUND) {
            snprintf(why, ws, "a merged key's consent could not be removed (%s)",
                     core_strerror(rc));
            return rc;
        }
    }
    return 0;
}

static int step_forget(struct serve_erasure *j, const struct erasure_receipt *r, char *why,
                       size_t ws)
{
    struct consent_state off = {.analytics = false, .personalization = false};
    snprintf(off.source, sizeof off.source, "erasure");
    off.ts = core_now_ms();
    int crc = consent_set(j->cfg.consent, r->key, &off, "system", NULL, NULL);
    if (crc < 0 && crc != CORE_E_FULL) {
        snprintf(why, ws, "the consent withdrawal could not be stored (%s)", core_strerror(crc));
        return crc;
    }
    int rc = forget_aliases(j, why, ws);
    for (int i = 0; rc == 0 && i < j->ks.nkeys; i++)
        rc = forget_key(j, j->ks.keys[i], r->anon, why, ws);
    return rc;
}

/* Appends the forgetting control event for one key and waits until it is applied. */
static int forget_key(struct serve_erasure *j, const char *key, bool anon, char *why, size_t ws)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, anon ? "anonymousId" : "userId", key);
    cJSON_AddStringToObject(ev, "eventType", "consent");
    cJSON *props = cJSON_AddObjectToObject(ev, "properties");
    cJSON_AddBoolToObject(props, "analytics", false);
    cJSON_AddBoolToObject(props, "personalization", false);
    cJSON_AddBoolToObject(props, "erasure", true);
    struct ingest_item item = {.value = ev, .partition = -1, .prekeyed = true};
    struct ingest_batch batch;
    ingest_batch_init(&batch, &item, 1);
    batch.source = "erasure";
    batch.control = true;
    batch.no_deadletters = true;
    struct control c = {.done = false};
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cond, NULL);
    ingest_batch_submit(j->cfg.ing, &batch, on_control_done, &c);
    pthread_mutex_lock(&c.mu);
    while (!c.done)
        pthread_cond_wait(&c.cond, &c.mu);
    pthread_mutex_unlock(&c.mu);
    int rc = item.status;
    if (rc < 0)
        snprintf(why, ws, "the control event could not be logged (%s)", core_strerror(rc));
    else if (item.out_partition < 0)
        rc = CORE_E_FAILED, snprintf(why, ws, "the control event was not stored");
    /* A processor in a consumer group may not own the partition: the control event is durable
     * in the topic and whichever processor owns the partition applies it (its lag later). */
    bool owned = rc == 0 && stream_owns(j->cfg.stream, item.out_partition);
    if (rc == 0 && !owned)
        LOG_INFO("erasure: the user's partition is owned by another processor, which applies "
                 "the forgetting event from the log",
                 "partition=%d offset=%lld", (int)item.out_partition, (long long)item.out_offset);
    if (owned) {
        rc = stream_wait_applied(j->cfg.stream, item.out_partition, item.out_offset + 1,
                                 (int)(j->cfg.deadline_ms > 0 ? j->cfg.deadline_ms : 60000));
        if (rc < 0)
            snprintf(why, ws, "the processor did not apply the control event (%s)",
                     core_strerror(rc));
    }
    ingest_batch_dispose(&batch);
    cJSON_Delete(ev);
    pthread_cond_destroy(&c.cond);
    pthread_mutex_destroy(&c.mu);
    return rc;
}

/* ---- the other steps ------------------------------------------------------------------------- */

/* A dead letter belongs to the user when it holds the pseudonym, or the raw id as a JSON
 * string (a body rejected before pseudonymisation). */
struct match {
    const struct keyset *ks;
    struct core_buf quoted;
};

static bool match_line(void *arg, const char *line, size_t len)
{
    const struct match *m = arg;
    for (int i = 0; i < m->ks->nkeys; i++)
        if (memmem(line, len, m->ks->keys[i], EVENT_KEY_HEX))
            return true;
    for (int i = 0; i < m->ks->naliases; i++)
        if (memmem(line, len, m->ks->aliases[i], EVENT_KEY_HEX))
            return true;
    return m->quoted.len > 2 && memmem(line, len, m->quoted.data, m->quoted.len);
}

/* Runs fn on every key of the attempt (versions), NOTFOUND counting as done. */
static int each_key(struct serve_erasure *j, void *store, int (*fn)(void *, const char *))
{
    for (int i = 0; i < j->ks.nkeys; i++) {
        int rc = fn(store, j->ks.keys[i]);
        if (rc < 0 && rc != CORE_E_NOTFOUND)
            return rc;
    }
    return 0;
}

static int shred_fn(void *store, const char *key)
{
    return userkeys_shred(store, key);
}

static int consent_fn(void *store, const char *key)
{
    return consent_forget(store, key);
}

static int step_run(struct serve_erasure *j, enum erasure_step step,
                    const struct erasure_receipt *r, char *why, size_t ws)
{
    int rc = 0;
    switch (step) {
    case ERASURE_STEP_FORGET:
        return step_forget(j, r, why, ws);
    case ERASURE_STEP_SHRED:
        rc = each_key(j, j->cfg.userkeys, shred_fn);
        break;
    case ERASURE_STEP_CONSENT:
        rc = each_key(j, j->cfg.consent, consent_fn);
        break;
    case ERASURE_STEP_DEADLETTERS: {
        if (!j->cfg.deadletters)
            break;
        struct match m = {.ks = &j->ks};
        core_buf_init(&m.quoted);
        core_json_str(&m.quoted, r->raw, r->raw_len);
        rc = deadletter_purge(j->cfg.deadletters, match_line, &m);
        sodium_memzero(m.quoted.data, m.quoted.cap);
        core_buf_dispose(&m.quoted);
        rc = rc > 0 ? 0 : rc;
        break;
    }
    case ERASURE_STEP_CHECKPOINT:
        rc = stream_checkpoint_only(j->cfg.stream);
        break;
    case ERASURE_STEPS:
        break;
    }
    if (rc < 0)
        snprintf(why, ws, "%s: %s", erasure_step_name(step), core_strerror(rc));
    return rc;
}

static void audit(struct serve_erasure *j, const char *actor, const char *action,
                  const struct erasure_receipt *r)
{
    char detail[160];
    snprintf(detail, sizeof detail, "{\"erasureId\":\"%s\",\"idType\":\"%s\",\"status\":\"%s\"}",
             r->id, r->anon ? "anonymous" : "user", erasure_status_name(r->status));
    int rc = audit_append(j->cfg.audit, actor, action, r->subject, "api", detail);
    if (rc < 0)
        LOG_ERROR("cannot write an erasure to the audit log", "erasure=%s err=\"%s\"", r->id,
                  core_strerror(rc));
}

static void publish(struct serve_erasure *j, const struct erasure_receipt *r)
{
    int rc = erasures_update(j->cfg.receipts, r);
    if (rc < 0)
        LOG_ERROR("cannot write an erasure receipt", "erasure=%s err=\"%s\"", r->id,
                  core_strerror(rc));
    pthread_mutex_lock(&j->mu);
    j->progress++;
    pthread_cond_broadcast(&j->cond);
    pthread_mutex_unlock(&j->mu);
}

/* One attempt at every step of r. Returns 0 when complete, else the failing step's error. */
static int attempt(struct serve_erasure *j, struct erasure_receipt *r)
{
    char why[sizeof r->error] = "";
    keys_of(j, r);
    for (int s = 0; s < ERASURE_STEPS; s++) {
        int rc = step_run(j, (enum erasure_step)s, r, why, sizeof why);
        if (rc < 0) {
            snprintf(r->error, sizeof r->error, "%s", why);
            if (r->status == ERASURE_PENDING &&
                core_now_ms() - r->requested_ms > j->cfg.deadline_ms) {
                r->status = ERASURE_FAILED;
                audit(j, "system", "erasure.failed", r);
            }
            publish(j, r);
            LOG_WARN("erasure step failed; retrying", "erasure=%s step=%s err=\"%s\"", r->id,
                     erasure_step_name((enum erasure_step)s), why);
            return rc;
        }
        if (!r->step_ms[s]) {
            r->step_ms[s] = core_now_ms();
            publish(j, r);
        }
        if (j->cfg.step_delay_ms > 0 && !pause_ms(j, j->cfg.step_delay_ms))
            return CORE_E_CLOSED;
    }
    r->status = ERASURE_COMPLETE;
    r->completed_ms = core_now_ms();
    r->error[0] = '\0';
    publish(j, r); /* drops the pseudonym and raw id from the receipt */
    audit(j, "system", "erasure.complete", r);
    LOG_INFO("erasure complete", "erasure=%s took_ms=%lld", r->id,
             (long long)(r->completed_ms - r->requested_ms));
    return 0;
}

static void *job_main(void *arg)
{
    struct serve_erasure *j = arg;
    pthread_setname_np(pthread_self(), "erasure");
    struct erasure_receipt *r = core_xmalloc(sizeof *r);
    for (;;) {
        pthread_mutex_lock(&j->mu);
        bool stop = j->stopping;
        pthread_mutex_unlock(&j->mu);
        if (stop)
            break;
        int rc = erasures_next_pending(j->cfg.receipts, r);
        if (rc == 0)
            rc = attempt(j, r);
        if (rc == CORE_E_NOTFOUND || rc < 0) {
            if (!pause_ms(j, RETRY_MS))
                break;
        }
    }
    sodium_memzero(r, sizeof *r);
    free(r);
    return NULL;
}

int serve_erasure_start(const struct serve_erasure_config *cfg, struct serve_erasure **out)
{
    struct serve_erasure *j = core_xcalloc(1, sizeof *j);
    j->cfg = *cfg;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cond, NULL);
    int rc = pthread_create(&j->thread, NULL, job_main, j);
    if (rc != 0) {
        pthread_cond_destroy(&j->cond);
        pthread_mutex_destroy(&j->mu);
        free(j);
        return -rc;
    }
    *out = j;
    return 0;
}

void serve_erasure_stop(struct serve_erasure *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    j->stopping = true;
    pthread_cond_broadcast(&j->cond);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->thread, NULL);
    pthread_cond_destroy(&j->cond);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

int serve_erasure_request(void *job, const char *raw, size_t raw_len, const char *key, bool anon,
                          const char *actor, struct erasure_receipt *out)
{
    struct serve_erasure *j = job;
    char subject[CONSENT_KEY_HEX + 1];
    consent_subject_ref(j->cfg.consent, key, subject);
    int rc = erasures_create(j->cfg.receipts, key, raw, raw_len, anon, subject, out);
    if (rc < 0)
        return rc;
    audit(j, actor, "erasure.request", out);
    pthread_mutex_lock(&j->mu);
    j->kick = true;
    pthread_cond_broadcast(&j->cond);
    struct timespec ts = core_deadline_after(CLOCK_REALTIME, j->cfg.deadline_ms);
    while (!j->stopping) {
        if (erasures_get(j->cfg.receipts, out->id, out) == 0 &&
            (out->step_ms[ERASURE_STEP_FORGET] || out->status != ERASURE_PENDING))
            break;
        if (pthread_cond_timedwait(&j->cond, &j->mu, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&j->mu);
    sodium_memzero(out->key, sizeof out->key);
    sodium_memzero(out->raw, sizeof out->raw);
    return 0;
}
