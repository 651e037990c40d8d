/* Per-user data-encryption keys for crypto-shredding (see userkeys.h for the file format). */
#include "privacy/userkeys_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define HDR_BYTES 16
#define ENT_PLAIN USERKEYS__ENT_PLAIN
#define END_PLAIN 11 /* "END" || u64 count */
#define REC_MAX (4 + ENT_PLAIN + SEAL_OVERHEAD)
#define FILE_MAX ((size_t)1 << 34)

struct userkeys {
    char *dir; /* NULL: memory only */
    struct seal_key data_key;
    int64_t max_users;
    bool fsync;
    pthread_rwlock_t lock;      /* entries and indexes: lookups share it, publishing takes it */
    pthread_mutex_t wlock;      /* one writer of the files (create, compact, shred) at a time */
    struct userkeys__ent *ents; /* live entries, dense */
    size_t n, cap;
    uint32_t *by_name, *by_id; /* entry index + 1, 0 = empty; linear probing */
    size_t mask;
    /* Files (dir only): generation of both files, the journal's fd, records and size. */
    uint64_t gen;
    int jfd;
    uint64_t jrecs;
    int64_t jsize;
    /* Kafka mode: the keys topic is the store (userkeys_int.h); dir is NULL then. */
    struct userkeys__remote remote;
    bool have_remote;
};

/* ---- memory: two open-addressing indexes over the dense entries ----------------------- */

static size_t name_hash(const char *name)
{
    return (size_t)XXH3_64bits(name, USERKEYS_NAME_BYTES);
}

static size_t id_hash(const uint8_t *id)
{
    return (size_t)XXH3_64bits(id, SEAL_ID_BYTES);
}

static void index_insert(struct userkeys *uk, size_t i)
{
    size_t h = name_hash(uk->ents[i].name) & uk->mask;
    while (uk->by_name[h])
        h = (h + 1) & uk->mask;
    uk->by_name[h] = (uint32_t)i + 1;
    h = id_hash(uk->ents[i].id) & uk->mask;
    while (uk->by_id[h])
        h = (h + 1) & uk->mask;
    uk->by_id[h] = (uint32_t)i + 1;
}

/* Rebuilds both indexes for room for at least want entries (load <= 1/2). */
static void reindex(struct userkeys *uk, size_t want)
{
    size_t size = 16;
    while (size < 2 * want)
        size *= 2;
    free(uk->by_name);
    free(uk->by_id);
    uk->by_name = core_xcalloc(size, sizeof *uk->by_name);
    uk->by_id = core_xcalloc(size, sizeof *uk->by_id);
    uk->mask = size - 1;
    for (size_t i = 0; i < uk->n; i++)
        index_insert(uk, i);
}

static struct userkeys__ent *find_name(const struct userkeys *uk, const char *name)
{
    for (size_t h = name_hash(name) & uk->mask; uk->by_name[h]; h = (h + 1) & uk->mask) {
        struct userkeys__ent *e = &uk->ents[uk->by_name[h] - 1];
        if (!memcmp(e->name, name, USERKEYS_NAME_BYTES))
            return e;
    }
    return NULL;
}

static struct userkeys__ent *find_id(const struct userkeys *uk, const uint8_t *id)
{
    for (size_t h = id_hash(id) & uk->mask; uk->by_id[h]; h = (h + 1) & uk->mask) {
        struct userkeys__ent *e = &uk->ents[uk->by_id[h] - 1];
        if (!memcmp(e->id, id, SEAL_ID_BYTES))
            return e;
    }
    return NULL;
}

/* Appends an entry (room checked by the caller against max_users). */
static void add_entry(struct userkeys *uk, const struct userkeys__ent *e)
{
    if (uk->n == uk->cap) {
        size_t cap = uk->cap ? 2 * uk->cap : 64;
        /* Grow through fresh memory so the old copy of the DEKs can be wiped. */
        struct userkeys__ent *ents = core_xmalloc(cap * sizeof *ents);
        if (uk->n)
            memcpy(ents, uk->ents, uk->n * sizeof *ents);
        if (uk->ents)
            sodium_memzero(uk->ents, uk->cap * sizeof *uk->ents);
        free(uk->ents);
        uk->ents = ents;
        uk->cap = cap;
    }
    uk->ents[uk->n++] = *e;
    if (2 * uk->n > uk->mask + 1)
        reindex(uk, uk->n);
    else
        index_insert(uk, uk->n - 1);
}

static void new_entry(struct userkeys *uk, const char *name, struct userkeys__ent *e)
{
    memcpy(e->name, name, USERKEYS_NAME_BYTES);
    do
        randombytes_buf(e->id, sizeof e->id);
    while (seal_id_is_data(e->id) || find_id(uk, e->id));
    randombytes_buf(e->dek, sizeof e->dek);
}

/* ---- files ------------------------------------------------------------------------------ */

static void put_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void file_header(uint8_t hdr[HDR_BYTES], char kind, uint64_t gen)
{
    memcpy(hdr, "RSUK", 4);
    hdr[4] = 1;
    hdr[5] = (uint8_t)kind;
    hdr[6] = hdr[7] = 0;
    put_u64le(hdr + 8, gen);
}

/* Appends record number seq of a file with header hdr: u32 length || sealed plaintext. */
static void put_record(struct core_buf *out, const struct seal_key *key, const uint8_t *hdr,
                       uint64_t seq, const void *plain, size_t n)
{
    uint8_t ad[HDR_BYTES + 8];
    memcpy(ad, hdr, HDR_BYTES);
    put_u64le(ad + HDR_BYTES, seq);
    core_buf_put_u32(out, (uint32_t)(n + SEAL_OVERHEAD));
    core_buf_reserve(out, n + SEAL_OVERHEAD);
    seal_record(key, ad, sizeof ad, plain, n, (uint8_t *)out->data + out->len);
    out->len += n + SEAL_OVERHEAD;
    out->data[out->len] = '\0';
}

static void put_entry(struct core_buf *out, const struct seal_key *key, const uint8_t *hdr,
                      uint64_t seq, const struct userkeys__ent *e)
{
    uint8_t plain[ENT_PLAIN];
    memcpy(plain, e->name, USERKEYS_NAME_BYTES);
    memcpy(plain + USERKEYS_NAME_BYTES, e->id, SEAL_ID_BYTES);
    memcpy(plain + USERKEYS_NAME_BYTES + SEAL_ID_BYTES, e->dek, SEAL_KEY_BYTES);
    put_record(out, key, hdr, seq, plain, sizeof plain);
    sodium_memzero(plain, sizeof plain);
}

static void path_of(const struct userkeys *uk, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", uk->dir, name);
}

static void wipe_buf(struct core_buf *b)
{
    if (b->data)
        sodium_memzero(b->data, b->cap);
    core_buf_dispose(b);
}

/* Writes a snapshot of every live entry and an empty journal, both of generation gen + 1, and
 * reopens the journal. On failure the store on disk is the old one, or the new snapshot with a
 * stale journal (which load ignores); in the second case no journal is open (jfd -1) and the
 * next append compacts again first. */
static int compact(struct userkeys *uk)
{
    char path[4200];
    uint64_t gen = uk->gen + 1;
    uint8_t hdr[HDR_BYTES];
    struct core_buf b;
    core_buf_init(&b);
    file_header(hdr, 'S', gen);
    core_buf_append(&b, hdr, HDR_BYTES);
    for (size_t i = 0; i < uk->n; i++)
        put_entry(&b, &uk->data_key, hdr, i, &uk->ents[i]);
    uint8_t end[END_PLAIN];
    memcpy(end, "END", 3);
    put_u64le(end + 3, uk->n);
    put_record(&b, &uk->data_key, hdr, uk->n, end, sizeof end);
    path_of(uk, "snapshot", path, sizeof path);
    int rc = core_write_file_atomic(path, b.data, b.len, 0600);
    wipe_buf(&b);
    if (rc < 0)
        return rc;
    /* From here the old journal is stale: no append may go to it any more. */
    uk->gen = gen;
    if (uk->jfd >= 0)
        close(uk->jfd);
    uk->jfd = -1;
    file_header(hdr, 'J', gen);
    path_of(uk, "journal", path, sizeof path);
    rc = core_write_file_atomic(path, hdr, HDR_BYTES, 0600);
    if (rc < 0)
        return rc;
    uk->jfd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (uk->jfd < 0)
        return -errno;
    uk->jrecs = 0;
    uk->jsize = HDR_BYTES;
    return 0;
}

/* Parses the records of a file image; calls back for each entry. Returns the records read
 * (the END trailer not counted) or CORE_E_CORRUPT; *torn_at is set to the position of a
 * damaged last record of a journal (-1 when none). */
static int64_t parse_file(struct userkeys *uk, const char *path, struct core_buf *b, char kind,
                          uint64_t *gen, int64_t *torn_at)
{
    uint8_t *p = (uint8_t *)b->data;
    size_t n = b->len, pos = HDR_BYTES;
    *torn_at = -1;
    if (n < HDR_BYTES || memcmp(p, "RSUK", 4) || p[4] != 1 || p[5] != (uint8_t)kind || p[6] ||
        p[7]) {
        LOG_ERROR("user key store: bad file header", "file=%s", path);
        return CORE_E_CORRUPT;
    }
    *gen = get_u64le(p + 8);
    uint8_t ad[HDR_BYTES + 8];
    memcpy(ad, p, HDR_BYTES);
    int64_t seq = 0;
    bool ended = false;
    while (pos < n && !ended) {
        uint32_t len = n - pos >= 4
                           ? (uint32_t)p[pos] | ((uint32_t)p[pos + 1] << 8) |
                                 ((uint32_t)p[pos + 2] << 16) | ((uint32_t)p[pos + 3] << 24)
                           : 0;
        bool whole = n - pos >= 4 && len <= REC_MAX && len <= n - pos - 4;
        put_u64le(ad + HDR_BYTES, (uint64_t)seq);
        bool ok = whole && seal_record_open(&uk->data_key, ad, sizeof ad, p + pos + 4, len) == 0;
        size_t plen = ok ? len - SEAL_OVERHEAD : 0;
        const uint8_t *m = p + pos + 4 + SEAL_NONCE_BYTES;
        if (ok && kind == 'S' && plen == END_PLAIN && !memcmp(m, "END", 3) &&
            get_u64le(m + 3) == (uint64_t)seq) {
            ended = true;
        } else if (ok && plen == ENT_PLAIN) {
            struct userkeys__ent e;
            memcpy(e.name, m, USERKEYS_NAME_BYTES);
            memcpy(e.id, m + USERKEYS_NAME_BYTES, SEAL_ID_BYTES);
            memcpy(e.dek, m + USERKEYS_NAME_BYTES + SEAL_ID_BYTES, SEAL_KEY_BYTES);
            if (find_name(uk, e.name) || find_id(uk, e.id) || seal_id_is_data(e.id)) {
                LOG_ERROR("user key store: duplicate entry", "file=%s record=%" PRId64, path, seq);
                return CORE_E_CORRUPT;
            }
            if ((int64_t)uk->n >= uk->max_users) {
                LOG_ERROR("user key store holds more users than --userkeys-max allows",
                          "file=%s max=%" PRId64, path, uk->max_users);
                return CORE_E_FULL;
            }
            add_entry(uk, &e);
            sodium_memzero(&e, sizeof e);
        } else {
            /* A damaged last journal record is an append that never completed. */
            size_t next = whole ? pos + 4 + len : n;
            if (kind == 'J' && next == n) {
                *torn_at = (int64_t)pos;
                return seq;
            }
            LOG_ERROR("user key store: record does not authenticate (tampered or wrong data "
                      "key)",
                      "file=%s record=%" PRId64 " position=%zu", path, seq, pos);
            return CORE_E_CORRUPT;
        }
        pos += 4 + len;
        seq++;
    }
    if (kind == 'S' && (!ended || pos != n)) {
        LOG_ERROR("user key store: snapshot truncated or extended", "file=%s", path);
        return CORE_E_CORRUPT;
    }
    return kind == 'S' ? seq - 1 : seq;
}

static int load(struct userkeys *uk)
{
    char path[4200];
    struct core_buf b;
    core_buf_init(&b);
    uint64_t sgen = 0, jgen = 0;
    int64_t torn = -1;
    path_of(uk, "snapshot", path, sizeof path);
    int rc = core_read_file(path, FILE_MAX, &b);
    if (rc == -ENOENT) {
        rc = compact(uk); /* a new store */
        goto out;
    }
    if (rc == 0) {
        int64_t r = parse_file(uk, path, &b, 'S', &sgen, &torn);
        rc = r < 0 ? (int)r : 0;
    }
    if (rc < 0)
        goto out;
    uk->gen = sgen;
    path_of(uk, "journal", path, sizeof path);
    rc = core_read_file(path, FILE_MAX, &b);
    int64_t jrecs = 0;
    if (rc == 0 && b.len >= HDR_BYTES && get_u64le((uint8_t *)b.data + 8) < sgen) {
        rc = -ENOENT; /* stale: compaction stopped between its two renames */
    } else if (rc == 0) {
        jrecs = parse_file(uk, path, &b, 'J', &jgen, &torn);
        rc = jrecs < 0 ? (int)jrecs : 0;
        if (rc == 0 && jgen != sgen) {
            LOG_ERROR("user key store: journal newer than snapshot", "file=%s", path);
            rc = CORE_E_CORRUPT;
        }
    }
    if (rc == -ENOENT) {
        uk->gen = sgen - 1; /* compact writes generation sgen again, over the stale journal */
        rc = compact(uk);
        goto out;
    }
    if (rc < 0)
        goto out;
    if (torn >= 0) {
        LOG_WARN("user key store: cut off a torn last journal record", "file=%s bytes=%zu", path,
                 b.len - (size_t)torn);
        if (truncate(path, torn) < 0) {
            rc = -errno;
            goto out;
        }
    }
    uk->jfd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (uk->jfd < 0) {
        rc = -errno;
        goto out;
    }
    uk->jrecs = (uint64_t)jrecs;
    uk->jsize = torn >= 0 ? torn : (int64_t)b.len;
out:
    wipe_buf(&b);
    if (rc < 0)
        LOG_ERROR("cannot open the user key store", "dir=%s err=\"%s\"", uk->dir,
                  core_strerror(rc));
    return rc;
}

/* ---- public ---------------------------------------------------------------------------- */

void userkeys_options_init(struct userkeys_options *o)
{
    memset(o, 0, sizeof *o);
    o->max_users = 1000000;
    o->fsync = true;
}

int userkeys_open(const struct userkeys_options *o, struct userkeys **out)
{
    if (!o->data_key || o->max_users < 1 || o->max_users > INT32_MAX / 4)
        return CORE_E_INVALID;
    int rc = seal_init();
    if (rc < 0)
        return rc;
    struct userkeys *uk = core_xcalloc(1, sizeof *uk);
    uk->data_key = *o->data_key;
    uk->max_users = o->max_users;
    uk->fsync = o->fsync;
    uk->jfd = -1;
    pthread_rwlock_init(&uk->lock, NULL);
    pthread_mutex_init(&uk->wlock, NULL);
    reindex(uk, 0);
    if (o->dir) {
        uk->dir = core_xstrdup(o->dir);
        rc = core_mkdirs(o->dir, 0700);
        if (rc == 0)
            rc = load(uk);
        if (rc < 0) {
            userkeys_free(uk);
            return rc;
        }
    }
    *out = uk;
    return 0;
}

void userkeys_free(struct userkeys *uk)
{
    if (!uk)
        return;
    if (uk->jfd >= 0)
        close(uk->jfd);
    if (uk->ents)
        sodium_memzero(uk->ents, uk->cap * sizeof *uk->ents);
    free(uk->ents);
    free(uk->by_name);
    free(uk->by_id);
    free(uk->dir);
    pthread_rwlock_destroy(&uk->lock);
    pthread_mutex_destroy(&uk->wlock);
    sodium_memzero(uk, sizeof *uk);
    free(uk);
}

static void key_of(const struct userkeys__ent *e, struct seal_key *out)
{
    memcpy(out->id, e->id, SEAL_ID_BYTES);
    memcpy(out->key, e->dek, SEAL_KEY_BYTES);
}

/* Appends k new entries to the journal and syncs it (wlock held; the rwlock is not: readers
 * go on during the write and fdatasync). */
static int journal_append(struct userkeys *uk, const struct userkeys__ent *ents, size_t k)
{
    if (!uk->dir || k == 0)
        return 0;
    if (uk->jfd < 0)
        return -EBADF; /* a compaction failed half-way: the caller compacts first */
    struct core_buf b;
    core_buf_init(&b);
    uint8_t hdr[HDR_BYTES];
    file_header(hdr, 'J', uk->gen);
    for (size_t i = 0; i < k; i++)
        put_entry(&b, &uk->data_key, hdr, uk->jrecs + i, &ents[i]);
    int rc = core_write_full(uk->jfd, b.data, b.len, -1);
    if (rc == 0 && uk->fsync && fdatasync(uk->jfd) < 0)
        rc = -errno;
    if (rc < 0) {
        /* Cut off whatever part was written, so the journal ends on a record boundary. */
        if (ftruncate(uk->jfd, uk->jsize) < 0)
            LOG_ERROR("user key store: cannot cut off a failed append", "dir=%s", uk->dir);
    } else {
        uk->jsize += (int64_t)b.len;
        uk->jrecs += k;
    }
    wipe_buf(&b);
    return rc;
}

/* Fills out[i] for every name (all known; rdlock taken here). */
static void fill_keys(struct userkeys *uk, const char *const *names, size_t n, struct seal_key *out)
{
    pthread_rwlock_rdlock(&uk->lock);
    for (size_t i = 0; i < n; i++)
        key_of(find_name(uk, names[i]), &out[i]);
    pthread_rwlock_unlock(&uk->lock);
}

/* The names among names[from..n) without a key, each once (wlock held). */
static size_t missing_names(struct userkeys *uk, const char *const *names, size_t from, size_t n,
                            const char **miss)
{
    size_t k = 0;
    pthread_rwlock_rdlock(&uk->lock);
    for (size_t i = from; i < n; i++) {
        if (find_name(uk, names[i]))
            continue;
        bool dup = false;
        for (size_t j = 0; j < k && !dup; j++)
            dup = !memcmp(miss[j], names[i], USERKEYS_NAME_BYTES);
        if (!dup)
            miss[k++] = names[i];
    }
    pthread_rwlock_unlock(&uk->lock);
    return k;
}

int userkeys_acquire(struct userkeys *uk, const char *const *names, size_t n, struct seal_key *out)
{
    /* Fast path: every user already has a key. */
    size_t found = 0;
    pthread_rwlock_rdlock(&uk->lock);
    for (; found < n; found++) {
        const struct userkeys__ent *e = find_name(uk, names[found]);
        if (!e)
            break;
        key_of(e, &out[found]);
    }
    pthread_rwlock_unlock(&uk->lock);
    if (found == n)
        return 0;

    /* Creating keys: one creator at a time (wlock), readers and lookups continue meanwhile;
     * the rwlock is held exclusively only to publish the new entries. */
    pthread_mutex_lock(&uk->wlock);
    const char **miss = core_xmalloc((n - found) * sizeof *miss);
    size_t k = missing_names(uk, names, found, n, miss);
    struct userkeys__ent *fresh = k ? core_xmalloc(k * sizeof *fresh) : NULL;
    int rc = 0;
    if ((int64_t)(uk->n + k) > uk->max_users) {
        rc = CORE_E_FULL;
        goto out;
    }
    pthread_rwlock_rdlock(&uk->lock);
    for (size_t i = 0; i < k; i++)
        new_entry(uk, miss[i], &fresh[i]);
    pthread_rwlock_unlock(&uk->lock);
    if (uk->dir && uk->jfd < 0)
        rc = compact(uk); /* a compaction failed half-way earlier: redo it first */
    if (rc == 0)
        rc = journal_append(uk, fresh, k);
    if (rc == 0 && uk->have_remote && k)
        rc = uk->remote.publish_fn(uk->remote.ctx, fresh, k);
    if (rc < 0)
        goto out;
    pthread_rwlock_wrlock(&uk->lock);
    for (size_t i = 0; i < k; i++)
        if (!find_id(uk, fresh[i].id)) /* the keys consumer may have applied it already */
            add_entry(uk, &fresh[i]);
    pthread_rwlock_unlock(&uk->lock);
    if (uk->dir && uk->jrecs > 1024 && uk->jrecs > (uint64_t)uk->n) {
        int crc = compact(uk); /* reads the entries: stable while wlock is held */
        if (crc < 0)
            LOG_WARN("user key store: compaction failed", "dir=%s err=\"%s\"", uk->dir,
                     core_strerror(crc));
    }
    fill_keys(uk, names + found, n - found, out + found);
out:
    if (fresh)
        sodium_memzero(fresh, k * sizeof *fresh);
    free(fresh);
    free(miss);
    pthread_mutex_unlock(&uk->wlock);
    if (rc == CORE_E_FULL)
        LOG_WARN("user key store full: events of new users refused; raise --userkeys-max",
                 "max=%" PRId64, uk->max_users);
    return rc;
}

int userkeys_get(struct userkeys *uk, const char *name, struct seal_key *out)
{
    pthread_rwlock_rdlock(&uk->lock);
    const struct userkeys__ent *e = find_name(uk, name);
    if (e)
        key_of(e, out);
    pthread_rwlock_unlock(&uk->lock);
    return e ? 0 : CORE_E_NOTFOUND;
}

static bool lookup_id(struct userkeys *uk, const uint8_t *id, struct seal_key *out)
{
    pthread_rwlock_rdlock(&uk->lock);
    const struct userkeys__ent *e = find_id(uk, id);
    if (e)
        key_of(e, out);
    pthread_rwlock_unlock(&uk->lock);
    return e != NULL;
}

int userkeys_find_id(struct userkeys *uk, const uint8_t id[SEAL_ID_BYTES], struct seal_key *out)
{
    if (seal_id_is_data(id)) {
        *out = uk->data_key;
        return 0;
    }
    if (lookup_id(uk, id, out))
        return 0;
    /* Kafka mode: the key may have been created by another node and not be applied here yet.
     * It was in the keys topic before any record sealed under it was acknowledged, so once
     * this node has read the keys topic up to its current end, an id still unknown is
     * shredded (or was never issued). */
    if (uk->have_remote && uk->remote.catch_up_fn(uk->remote.ctx, uk->remote.catch_up_ms) == 0 &&
        lookup_id(uk, id, out))
        return 0;
    return CORE_E_NOTFOUND;
}

/* Removes entry i (rwlock held exclusively). */
static void remove_at(struct userkeys *uk, size_t i)
{
    uk->ents[i] = uk->ents[uk->n - 1];
    sodium_memzero(&uk->ents[uk->n - 1], sizeof *uk->ents);
    uk->n--;
    reindex(uk, uk->n);
}

/* Kafka mode: tombstones for every key id of the user (two collectors may each have created
 * one), after reading the keys topic to its end so ids created elsewhere are known too; then
 * the entries go from memory. */
static int shred_remote(struct userkeys *uk, const char *name)
{
    int rc = uk->remote.catch_up_fn(uk->remote.ctx, uk->remote.catch_up_ms);
    if (rc < 0)
        return rc; /* erasure must not report done while a key may live on */
    pthread_rwlock_rdlock(&uk->lock);
    size_t k = 0;
    uint8_t(*ids)[SEAL_ID_BYTES] = core_xmalloc((uk->n ? uk->n : 1) * sizeof *ids);
    for (size_t i = 0; i < uk->n; i++)
        if (!memcmp(uk->ents[i].name, name, USERKEYS_NAME_BYTES))
            memcpy(ids[k++], uk->ents[i].id, SEAL_ID_BYTES);
    pthread_rwlock_unlock(&uk->lock);
    rc = k ? uk->remote.shred_fn(uk->remote.ctx, (const uint8_t(*)[SEAL_ID_BYTES])ids, k)
           : CORE_E_NOTFOUND;
    if (rc == 0) {
        pthread_rwlock_wrlock(&uk->lock);
        for (size_t j = 0; j < k; j++) {
            struct userkeys__ent *e = find_id(uk, ids[j]);
            if (e)
                remove_at(uk, (size_t)(e - uk->ents));
        }
        pthread_rwlock_unlock(&uk->lock);
    }
    free(ids);
    return rc;
}

void userkeys__set_remote(struct userkeys *uk, const struct userkeys__remote *r)
{
    pthread_mutex_lock(&uk->wlock);
    uk->have_remote = r != NULL;
    if (r)
        uk->remote = *r;
    else
        memset(&uk->remote, 0, sizeof uk->remote);
    pthread_mutex_unlock(&uk->wlock);
}

void userkeys__apply(struct userkeys *uk, const struct userkeys__ent *e)
{
    if (seal_id_is_data(e->id))
        return;
    pthread_rwlock_wrlock(&uk->lock);
    if (!find_id(uk, e->id))
        add_entry(uk, e); /* not bounded by max_users: the records need it to be read */
    pthread_rwlock_unlock(&uk->lock);
}

void userkeys__forget_id(struct userkeys *uk, const uint8_t id[SEAL_ID_BYTES])
{
    pthread_rwlock_wrlock(&uk->lock);
    struct userkeys__ent *e = find_id(uk, id);
    if (e)
        remove_at(uk, (size_t)(e - uk->ents));
    pthread_rwlock_unlock(&uk->lock);
}

int userkeys_shred(struct userkeys *uk, const char *name)
{
    if (uk->have_remote) {
        pthread_mutex_lock(&uk->wlock);
        int rc = shred_remote(uk, name);
        pthread_mutex_unlock(&uk->wlock);
        if (rc < 0 && rc != CORE_E_NOTFOUND)
            LOG_ERROR("user key store: shred through the keys topic failed", "err=\"%s\"",
                      core_strerror(rc));
        return rc;
    }
    pthread_mutex_lock(&uk->wlock);
    pthread_rwlock_wrlock(&uk->lock);
    struct userkeys__ent *e = find_name(uk, name);
    int rc = 0;
    if (!e) {
        pthread_rwlock_unlock(&uk->lock);
        rc = CORE_E_NOTFOUND;
        goto out;
    }
    struct userkeys__ent saved = *e;
    remove_at(uk, (size_t)(e - uk->ents));
    pthread_rwlock_unlock(&uk->lock);
    if (uk->dir)
        rc = compact(uk); /* wlock keeps the entries stable; lookups go on */
    if (rc < 0) {
        /* Put the entry back: the store on disk may still hold it. */
        pthread_rwlock_wrlock(&uk->lock);
        add_entry(uk, &saved);
        pthread_rwlock_unlock(&uk->lock);
        LOG_ERROR("user key store: shred failed", "dir=%s err=\"%s\"", uk->dir, core_strerror(rc));
    }
    sodium_memzero(&saved, sizeof saved);
out:
    pthread_mutex_unlock(&uk->wlock);
    return rc;
}

int64_t userkeys_count(struct userkeys *uk)
{
    pthread_rwlock_rdlock(&uk->lock);
    int64_t n = (int64_t)uk->n;
    pthread_rwlock_unlock(&uk->lock);
    return n;
}

const struct seal_key *userkeys_data_key(const struct userkeys *uk)
{
    return &uk->data_key;
}
