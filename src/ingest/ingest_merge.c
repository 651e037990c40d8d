/*
 * Identity at ingest (docs/ARCHITECTURE.md, "Identity"): the links an event carries and the
 * "merge_in" records the stream runtime asks for.
 *
 * An event with both anonymousId and userId links the anonymous key to the user's; with older
 * secret versions held (a rotation in its grace period), each id's older pseudonyms link to its
 * newest. Every link becomes a "merge" control record in the SOURCE key's partition (userKey =
 * target, anonKey = source), sealed under the target's key; the processor of that partition
 * moves the source's state to the target through a merge_in (stream.c, state_merge.c). A
 * bounded direct-mapped set of recently emitted links keeps one login from emitting a merge per
 * event; a forgotten link is emitted again, which is harmless (merges are idempotent; a merge
 * of a key without state moves nothing).
 */
#include "ingest/ingest_int.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#define LINKS_DEFAULT ((size_t)1 << 20)

void ingest__merge_init(struct ingest *ing)
{
    if (ing->cfg.keyring) {
        ing->ring = core_xmalloc(sizeof *ing->ring);
        *ing->ring = *ing->cfg.keyring;
    }
    ing->cfg.keyring = NULL; /* borrowed only during ingest_new */
    ing->links_max = ing->cfg.links_max ? ing->cfg.links_max : LINKS_DEFAULT;
    ing->links = core_xcalloc(ing->links_max, sizeof *ing->links);
}

void ingest__merge_dispose(struct ingest *ing)
{
    if (ing->ring) {
        privacy_keyring_dispose(ing->ring);
        free(ing->ring);
    }
    free(ing->links);
}

static int versions(const struct ingest *ing)
{
    return ing->ring ? ing->ring->n : 1;
}

size_t ingest__merges_max(const struct ingest *ing)
{
    return 1 + 2 * (size_t)(versions(ing) - 1);
}

int ingest_pseudonym_versions(struct ingest *ing, bool anon, const char *id, size_t n,
                              char (*out)[33])
{
    if (ing->ring)
        return privacy_keyring_pseudonyms(ing->ring, anon, id, n, out);
    if (anon)
        privacy_pseudonym_anon(&ing->key, id, n, out[0]);
    else
        privacy_pseudonym_user(&ing->key, id, n, out[0]);
    return 1;
}

/* Marks the link as emitted; false when it was emitted recently. Lock-free: a race emits it
 * twice, which is harmless. */
static bool link_fresh(struct ingest *ing, const char *from, const char *to)
{
    char both[2 * EVENT_KEY_HEX];
    memcpy(both, from, EVENT_KEY_HEX);
    memcpy(both + EVENT_KEY_HEX, to, EVENT_KEY_HEX);
    uint64_t h = XXH3_64bits(both, sizeof both) | 1; /* 0 marks an empty slot */
    _Atomic uint64_t *slot = &ing->links[h % ing->links_max];
    if (atomic_load_explicit(slot, memory_order_relaxed) == h)
        return false;
    atomic_store_explicit(slot, h, memory_order_relaxed);
    return true;
}

static void add_link(struct ingest *ing, const char *from, const char *to,
                     char (*out_from)[EVENT_KEY_HEX + 1], char (*out_to)[EVENT_KEY_HEX + 1],
                     size_t *n)
{
    if (!from[0] || strcmp(from, to) == 0 || !link_fresh(ing, from, to))
        return;
    memcpy(out_from[*n], from, EVENT_KEY_HEX + 1);
    memcpy(out_to[*n], to, EVENT_KEY_HEX + 1);
    (*n)++;
}

size_t ingest__links(struct ingest *ing, const struct event *ev, char (*from)[EVENT_KEY_HEX + 1],
                     char (*to)[EVENT_KEY_HEX + 1])
{
    const char *target = ev->user_key[0] ? ev->user_key : ev->anon_key;
    size_t n = 0;
    if (ev->user_key[0] && ev->anon_key[0])
        add_link(ing, ev->anon_key, target, from, to, &n);
    int nv = versions(ing);
    if (nv < 2)
        return n;
    char old[PRIVACY_KEY_VERSIONS_MAX][33];
    if (ev->user_id.len) {
        ingest_pseudonym_versions(ing, false, ev->user_id.ptr, ev->user_id.len, old);
        for (int v = 1; v < nv; v++)
            add_link(ing, old[v], target, from, to, &n);
    }
    if (ev->anonymous_id.len) {
        ingest_pseudonym_versions(ing, true, ev->anonymous_id.ptr, ev->anonymous_id.len, old);
        for (int v = 1; v < nv; v++)
            add_link(ing, old[v], target, from, to, &n);
    }
    return n;
}

/* A consent record stays under the pseudonym it was given under: the newest version that has
 * one governs (a PUT after a rotation writes under the newest). Writes that key into out. */
static void consent_key(struct ingest *ing, bool anon, const char *id, size_t n, const char *key,
                        char *out)
{
    struct consent *c = ing->cfg.consent;
    memcpy(out, key, EVENT_KEY_HEX + 1);
    int nv = versions(ing);
    struct consent_view *view = NULL;
    if (!c || nv < 2 || n == 0)
        return;
    view = core_xmalloc(sizeof *view);
    if (consent_get(c, key, view) < 0) {
        char old[PRIVACY_KEY_VERSIONS_MAX][33];
        ingest_pseudonym_versions(ing, anon, id, n, old);
        for (int v = 1; v < nv; v++) {
            if (consent_get(c, old[v], view) == 0) {
                memcpy(out, old[v], EVENT_KEY_HEX + 1);
                break;
            }
        }
    }
    free(view);
}

enum consent_decision ingest__consent(struct ingest *ing, bool anon, const char *id, size_t n,
                                      const char *key)
{
    char k[EVENT_KEY_HEX + 1];
    consent_key(ing, anon, id, n, key, k);
    return consent_decide(ing->cfg.consent, k);
}

void ingest_consent_key(struct ingest *ing, bool anon, const char *id, size_t n, char *out)
{
    char key[EVENT_KEY_HEX + 1];
    if (anon)
        privacy_pseudonym_anon(&ing->key, id, n, key);
    else
        privacy_pseudonym_user(&ing->key, id, n, key);
    consent_key(ing, anon, id, n, key, out);
}

enum consent_decision ingest_consent_decide(struct ingest *ing, bool anon, const char *id, size_t n)
{
    if (!ing->cfg.consent)
        return CONSENT_ALLOW;
    char key[33];
    if (anon)
        privacy_pseudonym_anon(&ing->key, id, n, key);
    else
        privacy_pseudonym_user(&ing->key, id, n, key);
    return ingest_consent_decide_key(ing, anon, id, n, key);
}

enum consent_decision ingest_consent_decide_key(struct ingest *ing, bool anon, const char *id,
                                                size_t n, const char *key)
{
    if (!ing->cfg.consent)
        return CONSENT_ALLOW;
    return ingest__consent(ing, anon, id, n, key);
}

/* ---- merge_in records (the stream runtime's hook) ------------------------------------------ */

struct wait {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool done;
};

static void on_done(void *arg)
{
    struct wait *w = arg;
    pthread_mutex_lock(&w->mu);
    w->done = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

int ingest_merge_in_append(void *arg, int32_t partition, int64_t offset, const struct event *merge,
                           const void *image, size_t len)
{
    struct ingest *ing = arg;
    /* The target withdrew consent since the link was made: its state must not grow again;
     * the source is forgotten all the same (its history is the target's, not to be kept). */
    if (ing->cfg.consent && consent_decide(ing->cfg.consent, merge->user_key) != CONSENT_ALLOW) {
        LOG_INFO("merge not carried: the target has no personalization consent",
                 "partition=%d offset=%lld", (int)partition, (long long)offset);
        return 0;
    }
    size_t b64 = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
    char *enc = core_xmalloc(b64);
    sodium_bin2base64(enc, b64, image, len, sodium_base64_VARIANT_ORIGINAL);
    char id[64];
    snprintf(id, sizeof id, "merge-%d-%lld", (int)partition, (long long)offset);
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "eventId", id);
    cJSON_AddStringToObject(ev, "userId", merge->user_key);
    cJSON_AddStringToObject(ev, "anonymousId", merge->anon_key);
    cJSON_AddStringToObject(ev, "eventType", "merge_in");
    cJSON_AddNumberToObject(ev, "timestamp", (double)merge->ts_ms);
    cJSON *props = cJSON_AddObjectToObject(ev, "properties");
    cJSON_AddNumberToObject(props, "offset", (double)offset);
    cJSON_AddStringToObject(props, "state", enc);
    free(enc);
    struct ingest_item item = {.value = ev, .partition = -1, .prekeyed = true};
    struct ingest_batch batch;
    ingest_batch_init(&batch, &item, 1);
    batch.source = "merge";
    batch.control = true;
    batch.no_deadletters = true;
    struct wait w = {.done = false};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cond, NULL);
    ingest_batch_submit(ing, &batch, on_done, &w);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.mu);
    pthread_mutex_unlock(&w.mu);
    int rc = item.status;
    if (rc == CORE_E_INVALID)
        LOG_ERROR("merge_in record refused", "field=%s err=\"%s\"", item.err.field,
                  item.err.message);
    ingest_batch_dispose(&batch);
    cJSON_Delete(ev);
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.mu);
    return rc;
}
