/* API keys: the key file, hashing, token buckets and the server's reloading store. */
#include "privacy/apikey.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const role_names[] = {"none", "ingest", "read", "admin"};

const char *apikey_role_name(enum apikey_role role)
{
    return (unsigned)role < 4 ? role_names[role] : "?";
}

int apikey_role_parse(const char *s, enum apikey_role *out)
{
    for (int r = APIKEY_ROLE_INGEST; r <= APIKEY_ROLE_ADMIN; r++) {
        if (!strcmp(s, role_names[r])) {
            *out = (enum apikey_role)r;
            return 0;
        }
    }
    return CORE_E_INVALID;
}

bool apikey_role_allows(enum apikey_role have, enum apikey_role need)
{
    return need == APIKEY_ROLE_NONE || have == APIKEY_ROLE_ADMIN || have == need;
}

/* ---- token bucket ---------------------------------------------------------------------------- */

bool apikey_bucket_take(struct apikey_bucket *b, double rate, double burst, int64_t now_ns,
                        int *retry_after_s)
{
    if (rate <= 0)
        return true;
    if (burst < 1)
        burst = 1;
    if (b->last_ns == 0) {
        b->tokens = burst;
    } else if (now_ns > b->last_ns) {
        b->tokens += (double)(now_ns - b->last_ns) * 1e-9 * rate;
        if (b->tokens > burst)
            b->tokens = burst;
    }
    b->last_ns = now_ns;
    if (b->tokens >= 1) {
        b->tokens -= 1;
        return true;
    }
    double wait_s = (1 - b->tokens) / rate;
    *retry_after_s = wait_s < 1 ? 1 : (int)ceil(wait_s);
    return false;
}

/* ---- the key file ---------------------------------------------------------------------------- */

void apikey_list_init(struct apikey_list *l)
{
    l->keys = NULL;
    l->n = 0;
    l->cap = 0;
}

static void key_dispose(struct apikey *k)
{
    for (size_t i = 0; i < k->norigins; i++)
        free(k->origins[i]);
    free(k->origins);
    k->origins = NULL;
    k->norigins = 0;
}

void apikey_list_dispose(struct apikey_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        key_dispose(&l->keys[i]);
    free(l->keys);
    apikey_list_init(l);
}

static void key_hash(const char *text, size_t n, uint8_t out[APIKEY_HASH_BYTES])
{
    crypto_generichash(out, APIKEY_HASH_BYTES, (const unsigned char *)text, n, NULL, 0);
}

/* The last key text this thread checked and its hash. A client sends the same key with every
 * request, and hashing it was ~0.3 us of each. The hash is a function of the text alone, so
 * nothing invalidates this (whether the key exists, its role and revocation are read from the
 * key set every time); the text is compared in constant time. */
static _Thread_local struct {
    bool valid;
    char text[APIKEY_TEXT_LEN];
    uint8_t hash[APIKEY_HASH_BYTES];
} tl_last;

/* Whether two key texts are equal, in constant time (no early exit): a word at a time, as
 * sodium_memcmp goes byte by byte through volatile reads (~0.2 us for a key text, most of
 * what the hash cache saves). */
static bool same_key_text(const char *a, const char *b)
{
    uint64_t d = 0;
    size_t i = 0;
    for (; i + 8 <= APIKEY_TEXT_LEN; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        d |= x ^ y;
    }
    for (; i < APIKEY_TEXT_LEN; i++)
        d |= (uint8_t)(a[i] ^ b[i]);
    return d == 0;
}

/* key_hash of a key text of APIKEY_TEXT_LEN bytes, through the thread's last one. */
static void key_hash_cached(const char *text, uint8_t out[APIKEY_HASH_BYTES])
{
    if (!tl_last.valid || !same_key_text(tl_last.text, text)) {
        key_hash(text, APIKEY_TEXT_LEN, tl_last.hash);
        memcpy(tl_last.text, text, APIKEY_TEXT_LEN);
        tl_last.valid = true;
    }
    memcpy(out, tl_last.hash, APIKEY_HASH_BYTES);
}

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

/* Splits a presented key text; false when it is not "rsk_<8 hex>_<64 hex>". */
static bool key_text_id(const char *text, size_t n, char id[APIKEY_ID_LEN + 1])
{
    if (n != APIKEY_TEXT_LEN || memcmp(text, "rsk_", 4) || text[4 + APIKEY_ID_LEN] != '_' ||
        !is_lower_hex(text + 4, APIKEY_ID_LEN) ||
        !is_lower_hex(text + 5 + APIKEY_ID_LEN, APIKEY_SECRET_LEN))
        return false;
    memcpy(id, text + 4, APIKEY_ID_LEN);
    id[APIKEY_ID_LEN] = '\0';
    return true;
}

/* Origins are kept as given, without a trailing '/' ("https://shop.example"). */
static bool origin_valid(const char *o, size_t n)
{
    if (n == 0 || n > APIKEY_ORIGIN_MAX)
        return false;
    if (strncmp(o, "https://", 8) && strncmp(o, "http://", 7))
        return false;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)o[i] <= ' ' || o[i] == ',' || o[i] == '"' || o[i] == 0x7f)
            return false;
    }
    return o[n - 1] != '/';
}

static int add_origin(struct apikey *k, const char *o, size_t n, char *err, size_t es)
{
    if (k->norigins == APIKEY_ORIGINS_MAX) {
        snprintf(err, es, "at most %d origins per key", APIKEY_ORIGINS_MAX);
        return CORE_E_INVALID;
    }
    if (!origin_valid(o, n)) {
        snprintf(err, es, "origin '%.*s' is not like https://host[:port] (no path, no '/')",
                 (int)(n > 300 ? 300 : n), o);
        return CORE_E_INVALID;
    }
    k->origins = core_xrealloc(k->origins, (k->norigins + 1) * sizeof *k->origins);
    k->origins[k->norigins++] = core_xstrndup(o, n);
    return 0;
}

static bool name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n > APIKEY_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < ' ' || s[i] == 0x7f)
            return false;
    }
    return true;
}

static bool rate_valid(double rate, double burst)
{
    return rate >= 0 && rate <= 1e9 && burst >= 0 && burst <= 1e9 && isfinite(rate) &&
           isfinite(burst);
}

static struct apikey *find_id(const struct apikey_list *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++) {
        if (!strcmp(l->keys[i].id, id))
            return &l->keys[i];
    }
    return NULL;
}

/* One key object of the file; err gets the reason when it is refused. */
static int key_from_json(const cJSON *o, struct apikey *k, char *err, size_t es)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(o, "role");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    const cJSON *hash = cJSON_GetObjectItemCaseSensitive(o, "blake2b");
    const cJSON *created = cJSON_GetObjectItemCaseSensitive(o, "created");
    const cJSON *revoked = cJSON_GetObjectItemCaseSensitive(o, "revoked");
    const cJSON *rate = cJSON_GetObjectItemCaseSensitive(o, "rate");
    const cJSON *burst = cJSON_GetObjectItemCaseSensitive(o, "burst");
    const cJSON *origins = cJSON_GetObjectItemCaseSensitive(o, "origins");
    memset(k, 0, sizeof *k);
    if (!cJSON_IsString(id) || strlen(id->valuestring) != APIKEY_ID_LEN ||
        !is_lower_hex(id->valuestring, APIKEY_ID_LEN)) {
        snprintf(err, es, "id must be %d lowercase hex characters", APIKEY_ID_LEN);
        return CORE_E_INVALID;
    }
    memcpy(k->id, id->valuestring, APIKEY_ID_LEN + 1);
    if (!cJSON_IsString(role) || apikey_role_parse(role->valuestring, &k->role)) {
        snprintf(err, es, "key %s: role must be ingest, read or admin", k->id);
        return CORE_E_INVALID;
    }
    if (name && !(cJSON_IsString(name) && name_valid(name->valuestring))) {
        snprintf(err, es, "key %s: name must be a string of at most %d characters", k->id,
                 APIKEY_NAME_MAX);
        return CORE_E_INVALID;
    }
    if (name)
        snprintf(k->name, sizeof k->name, "%s", name->valuestring);
    size_t bin = 0;
    if (!cJSON_IsString(hash) || strlen(hash->valuestring) != 2 * APIKEY_HASH_BYTES ||
        sodium_hex2bin(k->hash, sizeof k->hash, hash->valuestring, 2 * APIKEY_HASH_BYTES, NULL,
                       &bin, NULL) ||
        bin != APIKEY_HASH_BYTES) {
        snprintf(err, es, "key %s: blake2b must be %d hex characters", k->id,
                 2 * APIKEY_HASH_BYTES);
        return CORE_E_INVALID;
    }
    if (!cJSON_IsNumber(created) || (revoked && !cJSON_IsNumber(revoked)) ||
        (rate && !cJSON_IsNumber(rate)) || (burst && !cJSON_IsNumber(burst))) {
        snprintf(err, es, "key %s: created, revoked, rate and burst must be numbers", k->id);
        return CORE_E_INVALID;
    }
    k->created_ms = (int64_t)created->valuedouble;
    k->revoked_ms = revoked ? (int64_t)revoked->valuedouble : 0;
    k->rate = rate ? rate->valuedouble : 0;
    k->burst = burst ? burst->valuedouble : 0;
    if (!rate_valid(k->rate, k->burst)) {
        snprintf(err, es, "key %s: rate and burst must be 0..1e9", k->id);
        return CORE_E_INVALID;
    }
    if (origins && !cJSON_IsArray(origins)) {
        snprintf(err, es, "key %s: origins must be an array of strings", k->id);
        return CORE_E_INVALID;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, origins)
    {
        char why[400];
        if (!cJSON_IsString(it) ||
            add_origin(k, it->valuestring, strlen(it->valuestring), why, sizeof why) < 0) {
            snprintf(err, es, "key %s: %s", k->id,
                     cJSON_IsString(it) ? why : "origins must be strings");
            key_dispose(k);
            return CORE_E_INVALID;
        }
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Refuses a list naming one id twice: O(n log n), a 10,000-key file is re-read on the
 * request path. */
static int check_unique_ids(const struct apikey_list *l, char *err, size_t es)
{
    if (l->n < 2)
        return 0;
    const char **ids = core_xmalloc(l->n * sizeof *ids);
    for (size_t i = 0; i < l->n; i++)
        ids[i] = l->keys[i].id;
    qsort(ids, l->n, sizeof *ids, cmp_str);
    int rc = 0;
    for (size_t i = 1; i < l->n && rc == 0; i++) {
        if (!strcmp(ids[i - 1], ids[i])) {
            snprintf(err, es, "key id %s appears twice", ids[i]);
            rc = CORE_E_INVALID;
        }
    }
    free(ids);
    return rc;
}

static int list_from_json(const char *text, size_t len, struct apikey_list *out, char *err,
                          size_t es)
{
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(text, len, &end, false);
    while (doc && end < text + len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
        end++;
    if (doc && end != text + len) {
        cJSON_Delete(doc);
        doc = NULL;
    }
    if (!doc) {
        snprintf(err, es, "malformed JSON at byte %zu", end ? (size_t)(end - text) : (size_t)0);
        return CORE_E_PARSE;
    }
    int rc = 0;
    struct apikey_list l;
    apikey_list_init(&l);
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(doc, "version");
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(doc, "keys");
    if (!cJSON_IsNumber(version) || version->valuedouble != 1 || !cJSON_IsArray(keys)) {
        snprintf(err, es, "expected {\"version\":1,\"keys\":[...]}");
        rc = CORE_E_INVALID;
        goto out;
    }
    size_t n = (size_t)cJSON_GetArraySize(keys);
    if (n > APIKEY_MAX) {
        snprintf(err, es, "%zu keys; at most %d", n, APIKEY_MAX);
        rc = CORE_E_TOOBIG;
        goto out;
    }
    l.keys = core_xcalloc(n ? n : 1, sizeof *l.keys);
    l.cap = n ? n : 1;
    const cJSON *it;
    cJSON_ArrayForEach(it, keys)
    {
        rc = key_from_json(it, &l.keys[l.n], err, es);
        if (rc < 0)
            goto out;
        l.n++;
    }
    rc = check_unique_ids(&l, err, es);
    if (rc < 0)
        goto out;
    apikey_list_dispose(out);
    *out = l;
    apikey_list_init(&l);
out:
    apikey_list_dispose(&l);
    cJSON_Delete(doc);
    return rc;
}

int apikey_list_load(const char *path, struct apikey_list *l, char *err, size_t es)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        snprintf(err, es, "%s", strerror(errno));
        return -errno;
    }
    if (st.st_mode & 077) {
        snprintf(err, es, "readable by group or others (mode %o); chmod 600 it",
                 (unsigned)(st.st_mode & 0777));
        return CORE_E_INVALID;
    }
    struct core_buf buf;
    core_buf_init(&buf);
    int rc = core_read_file(path, APIKEY_FILE_MAX, &buf);
    if (rc == CORE_E_TOOBIG)
        snprintf(err, es, "larger than %zu bytes", APIKEY_FILE_MAX);
    else if (rc < 0)
        snprintf(err, es, "%s", core_strerror(rc));
    else
        rc = list_from_json(buf.data, buf.len, l, err, es);
    core_buf_dispose(&buf);
    return rc;
}

void apikey_json(const struct apikey *k, struct core_buf *out)
{
    core_buf_puts(out, "{\"id\":");
    core_json_cstr(out, k->id);
    core_buf_printf(out, ",\"role\":\"%s\",\"name\":", apikey_role_name(k->role));
    core_json_cstr(out, k->name);
    core_buf_printf(out, ",\"created\":%lld,\"revoked\":%lld,\"rate\":", (long long)k->created_ms,
                    (long long)k->revoked_ms);
    core_json_f64(out, k->rate);
    core_buf_puts(out, ",\"burst\":");
    core_json_f64(out, k->burst);
    core_buf_puts(out, ",\"origins\":[");
    for (size_t i = 0; i < k->norigins; i++) {
        if (i)
            core_buf_putc(out, ',');
        core_json_cstr(out, k->origins[i]);
    }
    core_buf_puts(out, "]}");
}

void apikey_list_json(const struct apikey_list *l, struct core_buf *out)
{
    core_buf_putc(out, '[');
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            core_buf_putc(out, ',');
        apikey_json(&l->keys[i], out);
    }
    core_buf_putc(out, ']');
}

int apikey_list_save(const char *path, const struct apikey_list *l)
{
    struct core_buf b;
    core_buf_init(&b);
    core_buf_puts(&b, "{\"version\":1,\"keys\":[\n");
    for (size_t i = 0; i < l->n; i++) {
        const struct apikey *k = &l->keys[i];
        /* The public fields, then the hash: one object per line. */
        apikey_json(k, &b);
        b.len--; /* reopen the object */
        char hex[2 * APIKEY_HASH_BYTES + 1];
        core_hex(k->hash, APIKEY_HASH_BYTES, hex);
        core_buf_printf(&b, ",\"blake2b\":\"%s\"}%s\n", hex, i + 1 < l->n ? "," : "");
    }
    core_buf_puts(&b, "]}\n");
    int rc = core_write_file_atomic(path, b.data, b.len, 0600);
    core_buf_dispose(&b);
    return rc;
}

int apikey_list_add(struct apikey_list *l, enum apikey_role role, const char *name,
                    const char *origins_csv, double rate, double burst, char *key_out, char *err,
                    size_t es)
{
    if (l->n >= APIKEY_MAX) {
        snprintf(err, es, "the key file holds %d keys already (revoked included)", APIKEY_MAX);
        return CORE_E_FULL;
    }
    if (role < APIKEY_ROLE_INGEST || role > APIKEY_ROLE_ADMIN) {
        snprintf(err, es, "role must be ingest, read or admin");
        return CORE_E_INVALID;
    }
    if (name && !name_valid(name)) {
        snprintf(err, es, "name: at most %d printable characters", APIKEY_NAME_MAX);
        return CORE_E_INVALID;
    }
    if (!rate_valid(rate, burst)) {
        snprintf(err, es, "rate and burst must be 0..1e9");
        return CORE_E_INVALID;
    }
    struct apikey k;
    memset(&k, 0, sizeof k);
    k.role = role;
    snprintf(k.name, sizeof k.name, "%s", name ? name : "");
    k.rate = rate;
    k.burst = rate > 0 && burst == 0 ? (rate > 1 ? rate : 1) : burst;
    k.created_ms = core_now_ms();
    for (const char *p = origins_csv; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (add_origin(&k, p, n, err, es) < 0) {
            key_dispose(&k);
            return CORE_E_INVALID;
        }
        p = comma ? comma + 1 : p + n;
    }
    uint8_t rnd[APIKEY_SECRET_LEN / 2];
    do {
        uint8_t idb[APIKEY_ID_LEN / 2];
        randombytes_buf(idb, sizeof idb);
        core_hex(idb, sizeof idb, k.id);
    } while (find_id(l, k.id));
    randombytes_buf(rnd, sizeof rnd);
    char secret[APIKEY_SECRET_LEN + 1];
    core_hex(rnd, sizeof rnd, secret);
    snprintf(key_out, APIKEY_TEXT_LEN + 1, "rsk_%s_%s", k.id, secret);
    key_hash(key_out, APIKEY_TEXT_LEN, k.hash);
    sodium_memzero(rnd, sizeof rnd);
    sodium_memzero(secret, sizeof secret);
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        l->keys = core_xrealloc(l->keys, l->cap * sizeof *l->keys);
    }
    l->keys[l->n++] = k;
    return 0;
}

int apikey_list_revoke(struct apikey_list *l, const char *id, int64_t now_ms)
{
    struct apikey *k = find_id(l, id);
    if (!k)
        return CORE_E_NOTFOUND;
    if (k->revoked_ms)
        return CORE_E_EXISTS;
    k->revoked_ms = now_ms > 0 ? now_ms : 1;
    return 0;
}

int apikey_file_lock(const char *path, int *fd_out)
{
    char lock[4200];
    if (snprintf(lock, sizeof lock, "%s.lock", path) >= (int)sizeof lock)
        return -ENAMETOOLONG;
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            return -e;
        }
    }
    *fd_out = fd;
    return 0;
}

void apikey_file_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

/* ---- the server's store ---------------------------------------------------------------------- */

/* A loaded file: keys sorted by id for bsearch, one bucket per key. */
struct keyset {
    struct apikey_list list;
    struct apikey_bucket *buckets;
    pthread_mutex_t *bucket_mu;
    size_t active;
};

struct file_sig {
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns;
};

struct apikey_store {
    char *path;
    pthread_rwlock_t lock; /* readers: checks; writer: swapping in a reloaded set */
    struct keyset *set;
    pthread_mutex_t reload_mu;
    struct file_sig sig;
    atomic_int_fast64_t next_check_ns;
};

static int cmp_id(const void *a, const void *b)
{
    return strcmp(((const struct apikey *)a)->id, ((const struct apikey *)b)->id);
}

static struct keyset *keyset_new(struct apikey_list *l)
{
    struct keyset *ks = core_xcalloc(1, sizeof *ks);
    ks->list = *l;
    apikey_list_init(l);
    if (ks->list.n > 1)
        qsort(ks->list.keys, ks->list.n, sizeof *ks->list.keys, cmp_id);
    size_t n = ks->list.n ? ks->list.n : 1;
    ks->buckets = core_xcalloc(n, sizeof *ks->buckets);
    ks->bucket_mu = core_xcalloc(n, sizeof *ks->bucket_mu);
    for (size_t i = 0; i < ks->list.n; i++) {
        pthread_mutex_init(&ks->bucket_mu[i], NULL);
        ks->active += ks->list.keys[i].revoked_ms == 0;
    }
    return ks;
}

static void keyset_free(struct keyset *ks)
{
    if (!ks)
        return;
    for (size_t i = 0; i < ks->list.n; i++)
        pthread_mutex_destroy(&ks->bucket_mu[i]);
    free(ks->bucket_mu);
    free(ks->buckets);
    apikey_list_dispose(&ks->list);
    free(ks);
}

static const struct apikey *keyset_find(const struct keyset *ks, const char *id)
{
    if (ks->list.n == 0)
        return NULL; /* keys may be NULL: bsearch's base must not be */
    struct apikey probe;
    memcpy(probe.id, id, APIKEY_ID_LEN + 1);
    return bsearch(&probe, ks->list.keys, ks->list.n, sizeof probe, cmp_id);
}

static int file_sig_get(const char *path, struct file_sig *sig)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    sig->dev = st.st_dev;
    sig->ino = st.st_ino;
    sig->size = st.st_size;
    sig->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    return 0;
}

static bool file_sig_equal(const struct file_sig *a, const struct file_sig *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns;
}

/* First start: an admin key, its text in admin_key_path, then the key file. */
static int create_first(const char *path, const char *admin_key_path)
{
    struct apikey_list l;
    apikey_list_init(&l);
    char key[APIKEY_TEXT_LEN + 2], err[128];
    int rc = apikey_list_add(&l, APIKEY_ROLE_ADMIN, "admin (first start)", NULL, 0, 0, key, err,
                             sizeof err);
    if (rc == 0) {
        key[APIKEY_TEXT_LEN] = '\n';
        rc = core_write_file_atomic(admin_key_path, key, APIKEY_TEXT_LEN + 1, 0600);
        sodium_memzero(key, sizeof key);
    }
    if (rc == 0)
        rc = apikey_list_save(path, &l);
    apikey_list_dispose(&l);
    return rc;
}

int apikey_store_open(const char *path, const char *admin_key_path, struct apikey_store **out,
                      bool *created_admin)
{
    if (sodium_init() < 0)
        return CORE_E_FAILED;
    *created_admin = false;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        int rc = core_mkdirs(dir, 0700);
        if (rc < 0)
            return rc;
    }
    int lock_fd = -1;
    int rc = apikey_file_lock(path, &lock_fd);
    if (rc < 0)
        return rc;
    struct apikey_list l;
    apikey_list_init(&l);
    char err[512];
    rc = apikey_list_load(path, &l, err, sizeof err);
    if (rc == -ENOENT) {
        rc = create_first(path, admin_key_path);
        if (rc == 0) {
            *created_admin = true;
            rc = apikey_list_load(path, &l, err, sizeof err);
        } else {
            snprintf(err, sizeof err, "cannot create: %s", core_strerror(rc));
        }
    }
    struct file_sig sig = {0};
    if (rc == 0)
        rc = file_sig_get(path, &sig);
    apikey_file_unlock(lock_fd);
    if (rc < 0) {
        LOG_ERROR("cannot load the API key file", "path=%s err=\"%s\"", path, err);
        apikey_list_dispose(&l);
        return rc;
    }
    struct apikey_store *s = core_xcalloc(1, sizeof *s);
    s->path = core_xstrdup(path);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&s->reload_mu, NULL);
    s->set = keyset_new(&l);
    s->sig = sig;
    atomic_store(&s->next_check_ns, core_mono_ns() + 1000000000);
    *out = s;
    return 0;
}

void apikey_store_free(struct apikey_store *s)
{
    if (!s)
        return;
    keyset_free(s->set);
    pthread_rwlock_destroy(&s->lock);
    pthread_mutex_destroy(&s->reload_mu);
    free(s->path);
    free(s);
}

/* Re-reads the file when its identity, size or mtime changed. A bad file keeps the old keys
 * (logged once per change); buckets of keys that stay carry over. */
static void maybe_reload(struct apikey_store *s, int64_t now_ns)
{
    int64_t next = atomic_load_explicit(&s->next_check_ns, memory_order_relaxed);
    if (now_ns < next ||
        !atomic_compare_exchange_strong(&s->next_check_ns, &next, now_ns + 1000000000))
        return;
    pthread_mutex_lock(&s->reload_mu);
    struct file_sig sig = {0};
    int rc = file_sig_get(s->path, &sig);
    if (rc < 0 || file_sig_equal(&sig, &s->sig)) {
        if (rc < 0 && !(s->sig.size == -1)) {
            LOG_ERROR("API key file vanished; keeping the keys loaded before", "path=%s err=\"%s\"",
                      s->path, core_strerror(rc));
            s->sig.size = -1;
        }
        pthread_mutex_unlock(&s->reload_mu);
        return;
    }
    s->sig = sig;
    struct apikey_list l;
    apikey_list_init(&l);
    char err[512];
    rc = apikey_list_load(s->path, &l, err, sizeof err);
    if (rc < 0) {
        LOG_ERROR("API key file refused; keeping the keys loaded before", "path=%s err=\"%s\"",
                  s->path, err);
        pthread_mutex_unlock(&s->reload_mu);
        return;
    }
    struct keyset *ks = keyset_new(&l);
    pthread_rwlock_wrlock(&s->lock);
    struct keyset *old = s->set;
    for (size_t i = 0; i < ks->list.n; i++) {
        const struct apikey *o = keyset_find(old, ks->list.keys[i].id);
        if (o)
            ks->buckets[i] = old->buckets[o - old->list.keys];
    }
    s->set = ks;
    pthread_rwlock_unlock(&s->lock);
    LOG_INFO("API keys reloaded", "path=%s keys=%zu active=%zu", s->path, ks->list.n, ks->active);
    keyset_free(old);
    pthread_mutex_unlock(&s->reload_mu);
}

static bool origin_allowed(const struct apikey *k, const char *origin)
{
    if (!origin || k->norigins == 0)
        return true;
    for (size_t i = 0; i < k->norigins; i++) {
        if (!strcmp(k->origins[i], origin))
            return true;
    }
    return false;
}

enum apikey_verdict apikey_store_check(struct apikey_store *s, const char *key, size_t n,
                                       enum apikey_role need, bool exact_role, const char *origin,
                                       int64_t now_ns, char *id_out, int *retry_after_s)
{
    maybe_reload(s, now_ns);
    char id[APIKEY_ID_LEN + 1];
    if (!key || !key_text_id(key, n, id))
        return APIKEY_UNAUTHENTICATED;
    uint8_t h[APIKEY_HASH_BYTES];
    key_hash_cached(key, h); /* key_text_id: n == APIKEY_TEXT_LEN */
    enum apikey_verdict v = APIKEY_OK;
    pthread_rwlock_rdlock(&s->lock);
    struct keyset *ks = s->set;
    const struct apikey *k = keyset_find(ks, id);
    if (!k || sodium_memcmp(h, k->hash, APIKEY_HASH_BYTES) != 0 || k->revoked_ms)
        v = APIKEY_UNAUTHENTICATED;
    else if (exact_role ? k->role != need : !apikey_role_allows(k->role, need))
        v = APIKEY_WRONG_ROLE;
    else if (!origin_allowed(k, origin))
        v = APIKEY_BAD_ORIGIN;
    else if (k->rate > 0) {
        size_t i = (size_t)(k - ks->list.keys);
        pthread_mutex_lock(&ks->bucket_mu[i]);
        if (!apikey_bucket_take(&ks->buckets[i], k->rate, k->burst, now_ns, retry_after_s))
            v = APIKEY_LIMITED;
        pthread_mutex_unlock(&ks->bucket_mu[i]);
    }
    pthread_rwlock_unlock(&s->lock);
    if (v == APIKEY_OK)
        memcpy(id_out, id, APIKEY_ID_LEN + 1);
    return v;
}

size_t apikey_store_active(struct apikey_store *s)
{
    pthread_rwlock_rdlock(&s->lock);
    size_t n = s->set->active;
    pthread_rwlock_unlock(&s->lock);
    return n;
}
