/*
 * The consent store (format and threading in consent.h).
 *
 * The map is open addressing over pseudonyms with linear probing; entries leave only by
 * erasure (consent_forget), which re-inserts the rest of the probe cluster: no tombstones. Each
 * entry's history grows one state at a time up to CONSENT_HISTORY_MAX. Memory is bounded by
 * max_entries: a put for a new user beyond it is refused with CORE_E_FULL, which the API turns into
 * 507.
 */
#include "privacy/consent.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <nettle/hmac.h>
#include <sodium.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

struct entry {
    char key[CONSENT_KEY_HEX + 1];
    uint8_t n, cap;
    struct consent_state *hist; /* oldest first */
};

struct consent {
    struct consent_options opt;
    char *dir;
    pthread_mutex_t wmu;   /* serialises writers (journal, audit, compaction) */
    pthread_rwlock_t lock; /* the map: readers vs the in-memory update */
    struct entry **slots;
    size_t mask;
    atomic_int_fast64_t count;
    int64_t states; /* history states held (sizes the compaction threshold) */
    int fd;         /* journal */
    int64_t journal_lines;
    int64_t next_n; /* the next change's number */
    struct hmac_sha256_ctx ref_ctx;
    struct seal_key dkey; /* seals the journal and the snapshot */
};

void consent_options_init(struct consent_options *o)
{
    memset(o, 0, sizeof *o);
    o->max_entries = 1000000;
    o->policy = CONSENT_POLICY_DROP;
    o->fsync = true;
}

static bool valid_key(const char *key)
{
    if (!key || strlen(key) != CONSENT_KEY_HEX)
        return false;
    for (int i = 0; i < CONSENT_KEY_HEX; i++)
        if (!((key[i] >= '0' && key[i] <= '9') || (key[i] >= 'a' && key[i] <= 'f')))
            return false;
    return true;
}

/* ---- the map --------------------------------------------------------------------------------- */

static size_t slot_of(const struct consent *c, const char *key)
{
    return (size_t)XXH3_64bits(key, CONSENT_KEY_HEX) & c->mask;
}

static struct entry *find(const struct consent *c, const char *key)
{
    for (size_t i = slot_of(c, key);; i = (i + 1) & c->mask) {
        struct entry *e = c->slots[i];
        if (!e || !memcmp(e->key, key, CONSENT_KEY_HEX))
            return e;
    }
}

static void insert_slot(struct entry **slots, size_t mask, struct entry *e)
{
    size_t i = (size_t)XXH3_64bits(e->key, CONSENT_KEY_HEX) & mask;
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = e;
}

/* Adds a new entry, growing the table at half load. Caller holds the write lock. */
static struct entry *add(struct consent *c, const char *key)
{
    if ((size_t)(atomic_load(&c->count) + 1) * 2 > c->mask + 1) {
        size_t nmask = 2 * (c->mask + 1) - 1;
        struct entry **ns = core_xcalloc(nmask + 1, sizeof *ns);
        for (size_t i = 0; i <= c->mask; i++)
            if (c->slots[i])
                insert_slot(ns, nmask, c->slots[i]);
        free(c->slots);
        c->slots = ns;
        c->mask = nmask;
    }
    struct entry *e = core_xcalloc(1, sizeof *e);
    memcpy(e->key, key, CONSENT_KEY_HEX + 1);
    insert_slot(c->slots, c->mask, e);
    atomic_fetch_add(&c->count, 1);
    return e;
}

static void push_state(struct consent *c, struct entry *e, const struct consent_state *st)
{
    if (e->n == CONSENT_HISTORY_MAX) {
        memmove(&e->hist[0], &e->hist[1], (CONSENT_HISTORY_MAX - 1) * sizeof *e->hist);
        e->n--;
        c->states--;
    }
    if (e->n == e->cap) {
        e->cap = (uint8_t)(e->cap ? 2 * e->cap : 1);
        if (e->cap > CONSENT_HISTORY_MAX)
            e->cap = CONSENT_HISTORY_MAX;
        e->hist = core_xrealloc(e->hist, e->cap * sizeof *e->hist);
    }
    e->hist[e->n++] = *st;
    c->states++;
}

/* ---- lines ----------------------------------------------------------------------------------- */

static void write_line(struct core_buf *b, int64_t n, const char *key,
                       const struct consent_state *st)
{
    core_buf_printf(b, "{\"n\":%lld,\"key\":\"%s\",\"analytics\":%s,\"personalization\":%s,",
                    (long long)n, key, st->analytics ? "true" : "false",
                    st->personalization ? "true" : "false");
    core_buf_puts(b, "\"source\":");
    core_json_cstr(b, st->source);
    core_buf_printf(b, ",\"ts\":%lld,\"updated\":%lld}\n", (long long)st->ts,
                    (long long)st->updated);
}

/* ---- sealing (format in consent.h) ---------------------------------------------------------- */

static const char snapshot_ad[] = "recstream consent snapshot";

static void journal_ad(int64_t n, char ad[48])
{
    snprintf(ad, 48, "recstream consent journal %lld", (long long)n);
}

/* Appends the stored form of a plaintext journal line (plain ends with its newline). */
static void seal_journal_line(const struct consent *c, int64_t n, const struct core_buf *plain,
                              struct core_buf *out)
{
    char ad[48];
    journal_ad(n, ad);
    core_buf_printf(out, "%lld ", (long long)n);
    seal_line(&c->dkey, ad, plain->data, plain->len - 1, out);
    core_buf_putc(out, '\n');
}

/* Opens a stored journal line into plain (replacing it). CORE_E_INVALID: the unsealed format;
 * CORE_E_CORRUPT: malformed or does not authenticate. */
static int open_journal_line(const struct consent *c, const char *line, size_t len,
                             struct core_buf *plain, int64_t *clear_n)
{
    core_buf_reset(plain);
    if (len > 0 && line[0] == '{')
        return CORE_E_INVALID;
    int64_t n = 0;
    size_t i = 0;
    while (i < len && i < 19 && line[i] >= '0' && line[i] <= '9')
        n = n * 10 + (line[i++] - '0');
    if (i == 0 || i >= len || line[i] != ' ')
        return CORE_E_CORRUPT;
    char ad[48];
    journal_ad(n, ad);
    *clear_n = n;
    return seal_line_open(&c->dkey, ad, line + i + 1, len - i - 1, plain);
}

static void refuse_unsealed(const char *path)
{
    LOG_ERROR("consent store is in the unsealed format of an older recstream; it is not "
              "migrated: move DIR/privacy/consent aside and start again",
              "path=%s", path);
}

/* Parses one journal/snapshot line. */
static int parse_line(const char *p, size_t len, int64_t *n, char *key, struct consent_state *st)
{
    cJSON *o = cJSON_ParseWithLength(p, len);
    int rc = CORE_E_CORRUPT;
    const cJSON *jn = cJSON_GetObjectItemCaseSensitive(o, "n");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "key");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "analytics");
    const cJSON *pe = cJSON_GetObjectItemCaseSensitive(o, "personalization");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "source");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(o, "ts");
    const cJSON *up = cJSON_GetObjectItemCaseSensitive(o, "updated");
    if (cJSON_IsNumber(jn) && cJSON_IsString(k) && valid_key(k->valuestring) && cJSON_IsBool(a) &&
        cJSON_IsBool(pe) && cJSON_IsString(s) && strlen(s->valuestring) <= CONSENT_SOURCE_MAX &&
        cJSON_IsNumber(ts) && cJSON_IsNumber(up)) {
        *n = (int64_t)jn->valuedouble;
        memcpy(key, k->valuestring, CONSENT_KEY_HEX + 1);
        memset(st, 0, sizeof *st);
        st->analytics = cJSON_IsTrue(a);
        st->personalization = cJSON_IsTrue(pe);
        snprintf(st->source, sizeof st->source, "%s", s->valuestring);
        st->ts = (int64_t)ts->valuedouble;
        st->updated = (int64_t)up->valuedouble;
        rc = 0;
    }
    cJSON_Delete(o);
    return rc;
}

/* Reads one line of a file: the snapshot's are plaintext (the file was opened whole), the
 * journal's are opened one by one, and their clear number must be the one inside. */
static int read_line(const struct consent *c, bool snapshot, const char *line, size_t len,
                     struct core_buf *plain, int64_t *n, char *key, struct consent_state *st)
{
    if (snapshot)
        return parse_line(line, len, n, key, st);
    int64_t clear_n;
    int rc = open_journal_line(c, line, len, plain, &clear_n);
    if (rc == 0)
        rc = parse_line(plain->data, plain->len, n, key, st);
    return rc == 0 && *n != clear_n ? CORE_E_CORRUPT : rc;
}

/* Applies a stored change while loading (no locks needed: nobody else sees the store yet). */
static void load_change(struct consent *c, int64_t n, const char *key,
                        const struct consent_state *st)
{
    struct entry *e = find(c, key);
    if (!e)
        e = add(c, key);
    push_state(c, e, st);
    if (n >= c->next_n)
        c->next_n = n + 1;
}

/*
 * Loads one file of lines. The snapshot sets *upto from its first line; journal lines
 * numbered <= *upto are already in it and skipped. A torn last journal line is left out:
 * *valid_len is the length of the complete lines, to which the caller truncates.
 */
static int load_file(struct consent *c, const char *path, bool snapshot, int64_t *upto,
                     off_t *valid_len)
{
    struct core_buf b, plain;
    core_buf_init(&b);
    core_buf_init(&plain);
    int rc = core_read_file(path, (size_t)1 << 34, &b);
    if (rc == -ENOENT || rc == CORE_E_NOTFOUND) {
        core_buf_dispose(&b);
        *valid_len = 0;
        return 0;
    }
    if (rc < 0)
        goto out;
    if (snapshot && b.len > 0) {
        if (b.data[0] == '{') {
            refuse_unsealed(path);
            rc = CORE_E_INVALID;
            goto out;
        }
        rc = seal_file_open(&c->dkey, snapshot_ad, b.data, b.len, &plain);
        if (rc < 0) {
            LOG_ERROR("consent snapshot does not open (altered, truncated, or another data key)",
                      "path=%s", path);
            goto out;
        }
        /* Parse the opened image below, as the plaintext format. */
        struct core_buf t = b;
        b = plain;
        plain = t;
    }
    size_t pos = 0, lineno = 0;
    while (pos < b.len) {
        lineno++;
        char *nl = memchr(b.data + pos, '\n', b.len - pos);
        size_t end = nl ? (size_t)(nl - b.data) : b.len;
        const char *line = b.data + pos;
        size_t len = end - pos;
        int64_t n = 0;
        char key[CONSENT_KEY_HEX + 1];
        struct consent_state st;
        if (snapshot && lineno == 1) {
            cJSON *o = cJSON_ParseWithLength(line, len);
            const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "upto");
            bool ok = cJSON_IsNumber(u) && nl;
            if (ok)
                *upto = (int64_t)u->valuedouble;
            cJSON_Delete(o);
            if (!ok) {
                rc = CORE_E_CORRUPT;
                LOG_ERROR("consent snapshot: bad first line", "path=%s", path);
                goto out;
            }
        } else if ((rc = read_line(c, snapshot, line, len, &plain, &n, key, &st)) < 0 || !nl) {
            if (rc == CORE_E_INVALID) {
                refuse_unsealed(path);
                goto out;
            }
            if (!snapshot && !nl) {
                rc = 0;
                LOG_WARN("consent journal: cut off a torn last line", "path=%s bytes=%zu", path,
                         len);
                break;
            }
            rc = CORE_E_CORRUPT;
            LOG_ERROR("consent store: bad line", "path=%s line=%zu", path, lineno);
            goto out;
        } else if (snapshot || n > *upto) {
            load_change(c, n, key, &st);
            if (!snapshot)
                c->journal_lines++;
        }
        pos = nl ? end + 1 : b.len;
    }
    rc = 0;
    *valid_len = (off_t)pos;
out:
    core_buf_dispose(&plain);
    core_buf_dispose(&b);
    return rc;
}

/* ---- compaction ------------------------------------------------------------------------------ */

static int fsync_fd(const struct consent *c, int fd)
{
    return c->opt.fsync && fdatasync(fd) < 0 ? -errno : 0;
}

/* Writes every entry's history as a snapshot, then empties the journal. Writer lock held. */
static int compact(struct consent *c)
{
    char path[4200], tmp[4210];
    snprintf(path, sizeof path, "%s/snapshot.ndjson", c->dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    struct core_buf b;
    core_buf_init(&b);
    core_buf_printf(&b, "{\"upto\":%lld}\n", (long long)(c->next_n - 1));
    for (size_t i = 0; i <= c->mask; i++) {
        const struct entry *e = c->slots[i];
        for (int k = 0; e && k < e->n; k++)
            write_line(&b, 0, e->key, &e->hist[k]);
    }
    struct core_buf sealed;
    core_buf_init(&sealed);
    seal_file(&c->dkey, snapshot_ad, b.data, b.len, &sealed);
    sodium_memzero(b.data, b.len);
    core_buf_dispose(&b);
    int rc = core_write_file_atomic(path, sealed.data, sealed.len, 0600);
    core_buf_dispose(&sealed);
    if (rc < 0)
        return rc;
    if (ftruncate(c->fd, 0) < 0)
        return -errno;
    rc = fsync_fd(c, c->fd);
    if (rc == 0)
        c->journal_lines = 0;
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

int consent_open(const struct consent_options *o, struct consent **out)
{
    if (!o->dir || !o->key || !o->data_key || o->max_entries < 1)
        return CORE_E_INVALID;
    int rc = core_mkdirs(o->dir, 0700);
    if (rc < 0)
        return rc;
    struct consent *c = core_xcalloc(1, sizeof *c);
    c->opt = *o;
    c->dkey = *o->data_key;
    c->opt.data_key = NULL; /* the copy above is used */
    c->dir = core_xstrdup(o->dir);
    c->fd = -1;
    c->next_n = 1;
    pthread_mutex_init(&c->wmu, NULL);
    /* Writer-preferring: a steady stream of ingest lookups must not starve a consent change. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&c->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    c->mask = 63;
    c->slots = core_xcalloc(c->mask + 1, sizeof *c->slots);
    /* The subject-reference key: HMAC(secret, label), used for nothing else. */
    uint8_t derived[32];
    struct hmac_sha256_ctx kctx;
    hmac_sha256_set_key(&kctx, PRIVACY_KEY_BYTES, o->key->bytes);
    hmac_sha256_update(&kctx, 26, (const uint8_t *)"recstream audit subject v1");
    hmac_sha256_digest(&kctx, sizeof derived, derived);
    hmac_sha256_set_key(&c->ref_ctx, sizeof derived, derived);
    memset(derived, 0, sizeof derived);

    char path[4200];
    int64_t upto = 0;
    off_t valid = 0;
    snprintf(path, sizeof path, "%s/snapshot.ndjson", c->dir);
    rc = load_file(c, path, true, &upto, &valid);
    if (rc < 0)
        goto fail;
    if (upto >= c->next_n)
        c->next_n = upto + 1;
    snprintf(path, sizeof path, "%s/journal.ndjson", c->dir);
    rc = load_file(c, path, false, &upto, &valid);
    if (rc < 0)
        goto fail;
    c->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (c->fd < 0) {
        rc = -errno;
        goto fail;
    }
    struct stat st;
    if (fstat(c->fd, &st) < 0 || (st.st_size > valid && ftruncate(c->fd, valid) < 0)) {
        rc = -errno;
        goto fail;
    }
    core_fsync_dir(c->dir);
    LOG_INFO("consent store loaded", "dir=%s users=%lld", c->dir,
             (long long)atomic_load(&c->count));
    *out = c;
    return 0;
fail:
    consent_close(c);
    return rc;
}

void consent_close(struct consent *c)
{
    if (!c)
        return;
    for (size_t i = 0; i <= c->mask; i++) {
        if (c->slots[i]) {
            free(c->slots[i]->hist);
            free(c->slots[i]);
        }
    }
    free(c->slots);
    if (c->fd >= 0)
        close(c->fd);
    pthread_mutex_destroy(&c->wmu);
    pthread_rwlock_destroy(&c->lock);
    seal_key_dispose(&c->dkey);
    free(c->dir);
    free(c);
}

int64_t consent_count(struct consent *c)
{
    return atomic_load(&c->count);
}

void consent_subject_ref(struct consent *c, const char *key, char out[CONSENT_KEY_HEX + 1])
{
    struct hmac_sha256_ctx ctx = c->ref_ctx;
    uint8_t mac[16];
    hmac_sha256_update(&ctx, strlen(key), (const uint8_t *)key);
    hmac_sha256_digest(&ctx, sizeof mac, mac);
    core_hex(mac, sizeof mac, out);
}

/* ---- reads ----------------------------------------------------------------------------------- */

int consent_get(struct consent *c, const char *key, struct consent_view *out)
{
    if (!valid_key(key))
        return CORE_E_NOTFOUND;
    pthread_rwlock_rdlock(&c->lock);
    const struct entry *e = find(c, key);
    if (e) {
        out->n = e->n;
        memcpy(out->history, e->hist, e->n * sizeof *e->hist);
    }
    pthread_rwlock_unlock(&c->lock);
    return e ? 0 : CORE_E_NOTFOUND;
}

static enum consent_decision decide_state(const struct consent *c, const struct consent_state *st)
{
    if (!st->analytics)
        return CONSENT_DROP;
    if (!st->personalization)
        return c->opt.policy == CONSENT_POLICY_AGGREGATE ? CONSENT_AGGREGATE : CONSENT_DROP;
    return CONSENT_ALLOW;
}

enum consent_decision consent_decide(struct consent *c, const char *key)
{
    if (!key || !key[0])
        return CONSENT_ALLOW;
    enum consent_decision unknown = c->opt.required ? CONSENT_DROP : CONSENT_ALLOW;
    if (atomic_load(&c->count) == 0)
        return unknown; /* the common case before anyone set consent: no lock */
    pthread_rwlock_rdlock(&c->lock);
    const struct entry *e = find(c, key);
    enum consent_decision d = e ? decide_state(c, &e->hist[e->n - 1]) : unknown;
    pthread_rwlock_unlock(&c->lock);
    return d;
}

/* ---- writes ---------------------------------------------------------------------------------- */

static void audit_detail(struct core_buf *b, bool had, const struct consent_state *prev,
                         const struct consent_state *st)
{
    core_buf_printf(b, "{\"analytics\":%s,\"personalization\":%s,\"ts\":%lld,\"changed\":[",
                    st->analytics ? "true" : "false", st->personalization ? "true" : "false",
                    (long long)st->ts);
    bool first = true;
    if (!had || prev->analytics != st->analytics) {
        core_buf_puts(b, "\"analytics\"");
        first = false;
    }
    if (!had || prev->personalization != st->personalization)
        core_buf_puts(b, first ? "\"personalization\"" : ",\"personalization\"");
    core_buf_puts(b, "],\"previous\":");
    if (had)
        core_buf_printf(b, "{\"analytics\":%s,\"personalization\":%s}",
                        prev->analytics ? "true" : "false",
                        prev->personalization ? "true" : "false");
    else
        core_buf_puts(b, "null");
    core_buf_putc(b, '}');
}

int consent_set(struct consent *c, const char *key, const struct consent_state *in,
                const char *actor, bool *had_prev, struct consent_state *prev_out)
{
    if (!valid_key(key) || strlen(in->source) > CONSENT_SOURCE_MAX)
        return CORE_E_INVALID;
    struct consent_state st = *in;
    st.updated = core_now_ms();
    struct core_buf b;
    core_buf_init(&b);
    pthread_mutex_lock(&c->wmu);
    /* Writers are serialised by wmu, so reading the map here needs no read lock. */
    struct entry *e = find(c, key);
    bool had = e != NULL;
    struct consent_state prev;
    memset(&prev, 0, sizeof prev);
    if (had)
        prev = e->hist[e->n - 1];
    int rc = 0;
    if (!had && atomic_load(&c->count) >= c->opt.max_entries) {
        rc = CORE_E_FULL;
        goto out;
    }
    struct core_buf plain;
    core_buf_init(&plain);
    write_line(&plain, c->next_n, key, &st);
    seal_journal_line(c, c->next_n, &plain, &b);
    core_buf_dispose(&plain);
    struct stat fst;
    if (fstat(c->fd, &fst) < 0) {
        rc = -errno;
        goto out;
    }
    rc = core_write_full(c->fd, b.data, b.len, (int64_t)fst.st_size);
    if (rc == 0)
        rc = fsync_fd(c, c->fd);
    if (rc < 0) {
        if (ftruncate(c->fd, fst.st_size) < 0)
            LOG_ERROR("consent journal: cannot roll back a failed write", "dir=%s", c->dir);
        goto out;
    }
    c->next_n++;
    c->journal_lines++;
    if (c->opt.audit) {
        char ref[CONSENT_KEY_HEX + 1];
        consent_subject_ref(c, key, ref);
        core_buf_reset(&b);
        audit_detail(&b, had, &prev, &st);
        rc = audit_append(c->opt.audit, actor ? actor : "api", "consent.update", ref, st.source,
                          b.data);
    }
    /* Published even when the audit write failed: the journal holds it durably already, and
     * answering from the older state would contradict what a restart loads. */
    pthread_rwlock_wrlock(&c->lock);
    if (!e)
        e = add(c, key);
    push_state(c, e, &st);
    pthread_rwlock_unlock(&c->lock);
    if (c->journal_lines > 1000 && c->journal_lines > 2 * c->states) {
        int crc = compact(c);
        if (crc < 0)
            LOG_WARN("consent journal compaction failed (retried later)", "dir=%s err=\"%s\"",
                     c->dir, core_strerror(crc));
    }
out:
    pthread_mutex_unlock(&c->wmu);
    core_buf_dispose(&b);
    if (rc == 0) {
        if (had_prev)
            *had_prev = had;
        if (prev_out)
            *prev_out = prev;
    }
    return rc;
}

/* ---- erasure --------------------------------------------------------------------------------- */

/* Takes slot i out of the table and re-inserts the rest of its probe cluster, so lookups that
 * passed over i still find their entries (linear probing without tombstones). Write lock. */
static void remove_slot(struct consent *c, size_t i)
{
    c->slots[i] = NULL;
    for (size_t j = (i + 1) & c->mask; c->slots[j]; j = (j + 1) & c->mask) {
        struct entry *e = c->slots[j];
        c->slots[j] = NULL;
        insert_slot(c->slots, c->mask, e);
    }
}

int consent_forget(struct consent *c, const char *key)
{
    if (!valid_key(key))
        return CORE_E_INVALID;
    pthread_mutex_lock(&c->wmu);
    pthread_rwlock_wrlock(&c->lock);
    struct entry *e = NULL;
    size_t i;
    for (i = slot_of(c, key); c->slots[i]; i = (i + 1) & c->mask) {
        if (!memcmp(c->slots[i]->key, key, CONSENT_KEY_HEX)) {
            e = c->slots[i];
            break;
        }
    }
    if (e) {
        remove_slot(c, i);
        c->states -= e->n;
        atomic_fetch_sub(&c->count, 1);
    }
    pthread_rwlock_unlock(&c->lock);
    /* Compaction rewrites the snapshot without the entry and empties the journal, so its
     * pseudonym leaves both files (also when it was already gone from memory: a retry after
     * a failed compaction). */
    int rc = compact(c);
    pthread_mutex_unlock(&c->wmu);
    if (e) {
        sodium_memzero(e->hist, e->cap * sizeof *e->hist);
        free(e->hist);
        sodium_memzero(e, sizeof *e);
        free(e);
    }
    if (rc < 0)
        return rc;
    return e ? 0 : CORE_E_NOTFOUND;
}
