/* Epoch keys per retention class (epochkeys.h): the table, its sealed file, expiry. */
#include "privacy/epochkeys.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define EK_MAGIC "RSEK"
#define EK_VERSION 1
#define EK_AD "recstream epochkeys"
#define EK_ENTRY_BYTES (1 + 8 + 8 + SEAL_KEY_BYTES)

struct ek_entry {
    uint8_t cls;
    int64_t start_ms, end_ms;
    uint8_t key[SEAL_KEY_BYTES];
};

struct epochkeys {
    struct epochkeys_options o;
    char *path;
    struct seal_key data_key;
    pthread_mutex_t mu;
    struct epochkeys_policy pol;
    struct ek_entry *v; /* max_keys slots */
    size_t n;
};

void epochkeys_options_init(struct epochkeys_options *o)
{
    memset(o, 0, sizeof *o);
    o->max_keys = 4096;
    o->fsync = true;
}

int64_t epochkeys_epoch_for_ttl(int64_t ttl_ms)
{
    /* An eighth of the TTL bounds how long a field outlives its class (one epoch) to 12.5 %
     * of the TTL, with about nine live keys per class; an hour at least keeps a short TTL
     * from creating a key every few minutes (each one is a synced rewrite of the store). */
    int64_t e = ttl_ms / 8;
    return e < EPOCHKEYS_EPOCH_MIN_MS ? EPOCHKEYS_EPOCH_MIN_MS : e;
}

/* ---- the file ------------------------------------------------------------------------------ */

/* Writes the table (with n entries of v) to the store file; the table in memory is unchanged. */
static int persist(struct epochkeys *ek, const struct ek_entry *v, size_t n)
{
    if (!ek->path)
        return 0;
    struct core_buf plain, sealed;
    core_buf_init(&plain);
    core_buf_init(&sealed);
    core_buf_append(&plain, EK_MAGIC, 4);
    core_buf_putc(&plain, EK_VERSION);
    core_buf_put_u32(&plain, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        core_buf_putc(&plain, (char)v[i].cls);
        core_buf_put_u64(&plain, (uint64_t)v[i].start_ms);
        core_buf_put_u64(&plain, (uint64_t)v[i].end_ms);
        core_buf_append(&plain, v[i].key, SEAL_KEY_BYTES);
    }
    seal_file(&ek->data_key, EK_AD, plain.data, plain.len, &sealed);
    int rc = core_write_file_atomic(ek->path, sealed.data, sealed.len, 0600);
    if (rc < 0)
        LOG_ERROR("cannot write the epoch key store", "path=%s err=\"%s\"", ek->path,
                  core_strerror(rc));
    sodium_memzero(plain.data, plain.len);
    core_buf_dispose(&plain);
    core_buf_dispose(&sealed);
    return rc;
}

static int parse(struct epochkeys *ek, const uint8_t *p, const uint8_t *end)
{
    uint32_t n;
    if (end - p < 5 || memcmp(p, EK_MAGIC, 4) != 0 || p[4] != EK_VERSION)
        return CORE_E_CORRUPT;
    p += 5;
    if (core_get_u32(&p, end, &n) < 0 || (size_t)(end - p) != (size_t)n * EK_ENTRY_BYTES)
        return CORE_E_CORRUPT;
    if ((int64_t)n > ek->o.max_keys)
        return CORE_E_FULL;
    for (uint32_t i = 0; i < n; i++) {
        struct ek_entry *e = &ek->v[i];
        uint64_t s, t;
        e->cls = *p++;
        core_get_u64(&p, end, &s);
        core_get_u64(&p, end, &t);
        memcpy(e->key, p, SEAL_KEY_BYTES);
        p += SEAL_KEY_BYTES;
        e->start_ms = (int64_t)s;
        e->end_ms = (int64_t)t;
        if (e->cls >= EPOCHKEYS_CLASSES || e->end_ms <= e->start_ms)
            return CORE_E_CORRUPT;
    }
    ek->n = n;
    return 0;
}

static int load(struct epochkeys *ek)
{
    struct core_buf raw, plain;
    core_buf_init(&raw);
    core_buf_init(&plain);
    int rc = core_read_file(ek->path, 1 << 24, &raw);
    if (rc == -ENOENT) {
        rc = 0; /* no key created yet */
        goto out;
    }
    if (rc < 0)
        goto out;
    rc = seal_file_open(&ek->data_key, EK_AD, raw.data, raw.len, &plain);
    if (rc == 0)
        rc = parse(ek, (const uint8_t *)plain.data, (const uint8_t *)plain.data + plain.len);
    if (rc < 0)
        LOG_ERROR("epoch key store does not open (tampered, truncated or another data key)",
                  "path=%s err=\"%s\"", ek->path, core_strerror(rc));
out:
    if (plain.data)
        sodium_memzero(plain.data, plain.len);
    core_buf_dispose(&plain);
    core_buf_dispose(&raw);
    return rc;
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

int epochkeys_open(const struct epochkeys_options *o, struct epochkeys **out)
{
    if (!o->data_key || o->max_keys <= 0)
        return CORE_E_INVALID;
    struct epochkeys *ek = core_xcalloc(1, sizeof *ek);
    ek->o = *o;
    ek->path = o->path ? core_xstrdup(o->path) : NULL;
    ek->o.path = ek->path;
    ek->data_key = *o->data_key;
    ek->o.data_key = &ek->data_key;
    ek->v = core_xcalloc((size_t)o->max_keys, sizeof *ek->v);
    pthread_mutex_init(&ek->mu, NULL);
    int rc = ek->path ? load(ek) : 0;
    if (rc < 0) {
        epochkeys_free(ek);
        return rc;
    }
    *out = ek;
    return 0;
}

void epochkeys_free(struct epochkeys *ek)
{
    if (!ek)
        return;
    sodium_memzero(ek->v, (size_t)ek->o.max_keys * sizeof *ek->v);
    free(ek->v);
    seal_key_dispose(&ek->data_key);
    pthread_mutex_destroy(&ek->mu);
    free(ek->path);
    free(ek);
}

void epochkeys_set_policy(struct epochkeys *ek, const struct epochkeys_policy *pol)
{
    pthread_mutex_lock(&ek->mu);
    ek->pol = *pol;
    pthread_mutex_unlock(&ek->mu);
}

bool epochkeys_class_sealed(struct epochkeys *ek, int cls)
{
    if (!ek || cls < 0 || cls >= EPOCHKEYS_CLASSES)
        return false;
    pthread_mutex_lock(&ek->mu);
    bool sealed = ek->pol.sealed[cls] && ek->pol.ttl_ms[cls] > 0 && ek->pol.epoch_ms[cls] > 0;
    pthread_mutex_unlock(&ek->mu);
    return sealed;
}

/* ---- keys ---------------------------------------------------------------------------------- */

static void key_out(const struct ek_entry *e, struct seal_key *out)
{
    memset(out->id, 0, sizeof out->id); /* the bundle names the key by class and start */
    memcpy(out->key, e->key, SEAL_KEY_BYTES);
}

static int64_t floor_to(int64_t t, int64_t len)
{
    int64_t q = t / len;
    if (t % len < 0)
        q--;
    return q * len;
}

int epochkeys_acquire(struct epochkeys *ek, int cls, int64_t t_ms, struct seal_key *out,
                      int64_t *start_ms)
{
    if (!epochkeys_class_sealed(ek, cls))
        return CORE_E_INVALID;
    int rc = 0;
    pthread_mutex_lock(&ek->mu);
    /* Newest first: the current epoch's key is almost always the last one created. */
    for (size_t i = ek->n; i-- > 0;) {
        const struct ek_entry *e = &ek->v[i];
        if (e->cls == cls && e->start_ms <= t_ms && t_ms < e->end_ms) {
            key_out(e, out);
            *start_ms = e->start_ms;
            goto out;
        }
    }
    if ((int64_t)ek->n >= ek->o.max_keys) {
        LOG_ERROR("epoch key store full; fields of short retention classes cannot be stored",
                  "max=%lld", (long long)ek->o.max_keys);
        rc = CORE_E_FULL;
        goto out;
    }
    struct ek_entry *e = &ek->v[ek->n];
    int64_t len = ek->pol.epoch_ms[cls];
    e->cls = (uint8_t)cls;
    e->start_ms = floor_to(t_ms, len);
    e->end_ms = e->start_ms + len;
    /* After a change of epoch length the new epoch may overlap an older key's: it then
     * starts where that one ends, so one time has one key. */
    for (size_t i = 0; i < ek->n; i++)
        if (ek->v[i].cls == cls && ek->v[i].end_ms > e->start_ms && ek->v[i].start_ms <= t_ms)
            e->start_ms = ek->v[i].end_ms;
    randombytes_buf(e->key, SEAL_KEY_BYTES);
    rc = persist(ek, ek->v, ek->n + 1);
    if (rc < 0) {
        sodium_memzero(e, sizeof *e);
        goto out;
    }
    ek->n++;
    LOG_INFO("epoch key created", "class=%d start_ms=%lld end_ms=%lld", cls, (long long)e->start_ms,
             (long long)e->end_ms);
    key_out(e, out);
    *start_ms = e->start_ms;
out:
    pthread_mutex_unlock(&ek->mu);
    return rc;
}

int epochkeys_get(struct epochkeys *ek, int cls, int64_t start_ms, struct seal_key *out)
{
    if (!ek)
        return CORE_E_NOTFOUND;
    int rc = CORE_E_NOTFOUND;
    pthread_mutex_lock(&ek->mu);
    for (size_t i = ek->n; i-- > 0;) {
        if (ek->v[i].cls == cls && ek->v[i].start_ms == start_ms) {
            key_out(&ek->v[i], out);
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&ek->mu);
    return rc;
}

int epochkeys_expire(struct epochkeys *ek, int64_t now_ms, size_t *destroyed)
{
    pthread_mutex_lock(&ek->mu);
    size_t old = ek->n;
    struct ek_entry *keep = core_xcalloc(old ? old : 1, sizeof *keep);
    size_t nkeep = 0;
    for (size_t i = 0; i < ek->n; i++) {
        const struct ek_entry *e = &ek->v[i];
        int64_t ttl = ek->pol.ttl_ms[e->cls];
        if (ttl > 0 && e->end_ms <= now_ms - ttl)
            continue; /* the whole epoch lies beyond the class's TTL */
        keep[nkeep++] = *e;
    }
    size_t gone = ek->n - nkeep;
    int rc = gone ? persist(ek, keep, nkeep) : 0;
    if (rc == 0 && gone) {
        sodium_memzero(ek->v, old * sizeof *ek->v);
        memcpy(ek->v, keep, nkeep * sizeof *keep);
        ek->n = nkeep;
    }
    sodium_memzero(keep, (old ? old : 1) * sizeof *keep);
    free(keep);
    pthread_mutex_unlock(&ek->mu);
    if (rc == 0 && destroyed)
        *destroyed = gone;
    return rc;
}

size_t epochkeys_count(struct epochkeys *ek)
{
    pthread_mutex_lock(&ek->mu);
    size_t n = ek->n;
    pthread_mutex_unlock(&ek->mu);
    return n;
}
