/*
 * The hash-chained audit log (format in audit.h).
 *
 * Durability first: consent changes and admin actions are rare, so every entry is written
 * with one write() and fdatasync()ed before audit_append returns (no group commit). Lines go
 * through audit__write_line alone, which seals each entry (audit_line_seal) under the data
 * key; the chain logic works on plaintext entries only.
 */
#include "privacy/audit.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HASH_SUFFIX ",\"hash\":\""
#define HASH_SUFFIX_LEN 9
#define TAIL_LEN (HASH_SUFFIX_LEN + AUDIT_HASH_HEX + 2) /* ,"hash":"<hex>"} */

struct audit {
    pthread_mutex_t mu;
    struct seal_key key;
    int fd;
    off_t size; /* bytes of complete lines */
    int64_t seq;
    char head[AUDIT_HASH_HEX + 1];
    char *path;
};

static const char zero_hash[AUDIT_HASH_HEX + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

static void sha256_hex(const char *p, size_t n, char out[AUDIT_HASH_HEX + 1])
{
    struct sha256_ctx ctx;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    sha256_update(&ctx, n, (const uint8_t *)p);
    sha256_digest(&ctx, sizeof d, d);
    core_hex(d, sizeof d, out);
}

/* ---- checking lines -------------------------------------------------------------------------- */

static const char *const string_fields[] = {"actor", "action", "subject", "source", "prev", "hash"};

static int problem(char *out, size_t size, const char *msg)
{
    snprintf(out, size, "%s", msg);
    return CORE_E_CORRUPT;
}

int audit_check_line(const char *line, size_t len, int64_t want_seq, const char *want_prev,
                     char hash[AUDIT_HASH_HEX + 1], char *prob, size_t psize)
{
    cJSON *root = len <= AUDIT_LINE_MAX ? cJSON_ParseWithLength(line, len) : NULL;
    int rc = 0;
    if (!cJSON_IsObject(root)) {
        rc = problem(prob, psize, "not a JSON object (entry altered or truncated)");
        goto out;
    }
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(root, "seq");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "ts");
    const cJSON *detail = cJSON_GetObjectItemCaseSensitive(root, "detail");
    bool shape = cJSON_IsNumber(seq) && cJSON_IsNumber(ts) && cJSON_IsObject(detail);
    for (size_t i = 0; shape && i < sizeof string_fields / sizeof *string_fields; i++)
        shape = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, string_fields[i]));
    if (!shape) {
        rc = problem(prob, psize, "missing or mistyped fields (entry altered)");
        goto out;
    }
    /* The hash covers the bytes before `,"hash":"`, which must be the line's last member. */
    if (len < TAIL_LEN + 2 || memcmp(line + len - TAIL_LEN, HASH_SUFFIX, HASH_SUFFIX_LEN) ||
        memcmp(line + len - 2, "\"}", 2)) {
        rc = problem(prob, psize, "\"hash\" is not the last member (entry altered)");
        goto out;
    }
    char got[AUDIT_HASH_HEX + 1];
    sha256_hex(line, len - TAIL_LEN, got);
    if (memcmp(got, line + len - 2 - AUDIT_HASH_HEX, AUDIT_HASH_HEX)) {
        rc = problem(prob, psize, "hash does not match the entry's bytes (entry altered)");
        goto out;
    }
    if (want_seq > 0 && seq->valuedouble != (double)want_seq) {
        snprintf(prob, psize, "seq %.0f where %lld was expected (an entry is missing or reordered)",
                 seq->valuedouble, (long long)want_seq);
        rc = CORE_E_CORRUPT;
        goto out;
    }
    const char *prev = cJSON_GetObjectItemCaseSensitive(root, "prev")->valuestring;
    if (want_prev && strcmp(prev, want_prev)) {
        rc = problem(prob, psize,
                     "prev does not match the previous entry's hash (an entry is missing, "
                     "reordered or altered)");
        goto out;
    }
    memcpy(hash, got, sizeof got);
out:
    cJSON_Delete(root);
    return rc;
}

/* ---- sealing lines ----------------------------------------------------------------------------
 */

static void line_ad(int64_t seq, char ad[48])
{
    snprintf(ad, 48, "recstream audit %lld", (long long)seq);
}

void audit_line_seal(const struct seal_key *key, int64_t seq, const char *entry, size_t n,
                     struct core_buf *out)
{
    char ad[48];
    line_ad(seq, ad);
    core_buf_printf(out, "%lld ", (long long)seq);
    seal_line(key, ad, entry, n, out);
}

int audit_line_open(const struct seal_key *key, const char *line, size_t len, int64_t *seq,
                    struct core_buf *out, char *prob, size_t psize)
{
    if (len > 0 && line[0] == '{')
        return problem(prob, psize,
                       "entry is not sealed (the plaintext format of an older recstream; "
                       "it is not migrated: move the file aside)");
    int64_t s = 0;
    size_t i = 0;
    while (i < len && i < 19 && line[i] >= '0' && line[i] <= '9')
        s = s * 10 + (line[i++] - '0');
    if (i == 0 || i >= len || line[i] != ' ' || s < 1 || len > AUDIT_STORED_LINE_MAX)
        return problem(prob, psize, "not a sealed entry `<seq> <sealed>` (entry altered)");
    char ad[48];
    line_ad(s, ad);
    if (seal_line_open(key, ad, line + i + 1, len - i - 1, out) < 0)
        return problem(prob, psize,
                       "sealed entry does not authenticate (entry altered or moved, or "
                       "another data key)");
    *seq = s;
    return 0;
}

/* Opens a stored line and checks the entry in it against the chain (want_seq 0 and want_prev
 * NULL: only against itself and the clear seq). */
static int check_stored(const struct seal_key *key, const char *line, size_t len, int64_t want_seq,
                        const char *want_prev, char hash[AUDIT_HASH_HEX + 1], int64_t *seq,
                        char *prob, size_t psize)
{
    struct core_buf plain;
    core_buf_init(&plain);
    int64_t s = 0;
    int rc = audit_line_open(key, line, len, &s, &plain, prob, psize);
    if (rc == 0)
        rc = audit_check_line(plain.data, plain.len, want_seq > 0 ? want_seq : s, want_prev, hash,
                              prob, psize);
    if (rc == 0 && want_seq > 0 && s != want_seq)
        rc = problem(prob, psize, "clear seq does not match the entry (entry altered)");
    if (rc == 0)
        *seq = s;
    core_buf_dispose(&plain);
    return rc;
}

int audit_verify_file(const char *path, const struct seal_key *key, struct audit_verify *v)
{
    memset(v, 0, sizeof v[0]);
    memcpy(v->head, zero_hash, sizeof v->head);
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? CORE_E_NOTFOUND : -errno;
    char *line = core_xmalloc(AUDIT_STORED_LINE_MAX + 2);
    int64_t lineno = 0;
    int rc = 0;
    while (fgets(line, AUDIT_STORED_LINE_MAX + 2, f)) {
        lineno++;
        size_t n = strlen(line);
        bool nl = n > 0 && line[n - 1] == '\n';
        if (!nl && !feof(f)) {
            v->bad_line = lineno;
            snprintf(v->problem, sizeof v->problem, "line longer than %d bytes",
                     AUDIT_STORED_LINE_MAX);
            break;
        }
        if (nl)
            n--;
        char hash[AUDIT_HASH_HEX + 1];
        int64_t seq;
        if (check_stored(key, line, n, v->entries + 1, v->head, hash, &seq, v->problem,
                         sizeof v->problem) < 0) {
            v->bad_line = lineno;
            v->torn_tail = !nl;
            if (!nl)
                snprintf(v->problem, sizeof v->problem,
                         "torn last line (%zu bytes without a newline: a crash during its "
                         "write; the server cuts it off at its next start)",
                         n);
            break;
        }
        v->entries++;
        memcpy(v->head, hash, sizeof hash);
    }
    if (ferror(f))
        rc = -EIO;
    free(line);
    fclose(f);
    return rc;
}

/* ---- writing --------------------------------------------------------------------------------- */

/* The one place entries reach the file: the entry (plaintext JSON) sealed for its seq, then a
 * single write of the line + newline, then fdatasync. A failed write is rolled back
 * (truncated) so no partial line stays behind. */
static int audit__write_line(struct audit *a, int64_t seq, const char *entry, size_t len)
{
    struct core_buf b;
    core_buf_init(&b);
    audit_line_seal(&a->key, seq, entry, len, &b);
    core_buf_putc(&b, '\n');
    int rc = core_write_full(a->fd, b.data, b.len, (int64_t)a->size);
    if (rc == 0 && fdatasync(a->fd) < 0)
        rc = -errno;
    if (rc < 0) {
        if (ftruncate(a->fd, a->size) == 0)
            (void)fdatasync(a->fd);
    } else {
        a->size += (off_t)b.len;
    }
    core_buf_dispose(&b);
    return rc;
}

/* Finds the last complete line of the file, cutting off a torn one. */
static int continue_chain(struct audit *a)
{
    struct stat st;
    if (fstat(a->fd, &st) < 0)
        return -errno;
    a->size = st.st_size;
    a->seq = 0;
    memcpy(a->head, zero_hash, sizeof a->head);
    if (st.st_size == 0)
        return 0;
    size_t want = 2 * AUDIT_STORED_LINE_MAX + 2;
    off_t start = st.st_size > (off_t)want ? st.st_size - (off_t)want : 0;
    size_t n = (size_t)(st.st_size - start);
    char *buf = core_xmalloc(n + 1);
    int rc = 0;
    ssize_t got = pread(a->fd, buf, n, start);
    if (got != (ssize_t)n) {
        rc = got < 0 ? -errno : -EIO;
        goto out;
    }
    size_t end = n; /* end of complete lines within buf */
    if (buf[n - 1] != '\n') {
        char *nl = memrchr(buf, '\n', n);
        end = nl ? (size_t)(nl - buf) + 1 : 0;
        if (!nl && start > 0) {
            rc = CORE_E_CORRUPT;
            LOG_ERROR("audit log ends with an over-long line", "path=%s", a->path);
            goto out;
        }
        LOG_WARN("audit log: cut off a torn last line (a crash during its write)",
                 "path=%s bytes=%zu", a->path, n - end);
        if (ftruncate(a->fd, start + (off_t)end) < 0 || fdatasync(a->fd) < 0) {
            rc = -errno;
            goto out;
        }
        a->size = start + (off_t)end;
    }
    if (end == 0)
        goto out; /* only a torn line: the file is empty now */
    char *prev_nl = end > 1 ? memrchr(buf, '\n', end - 1) : NULL;
    if (!prev_nl && start > 0) {
        rc = CORE_E_CORRUPT;
        LOG_ERROR("audit log ends with an over-long line", "path=%s", a->path);
        goto out;
    }
    const char *line = prev_nl ? prev_nl + 1 : buf;
    size_t len = (size_t)(buf + end - 1 - line);
    char prob[160];
    if (len > 0 && line[0] == '{') {
        rc = CORE_E_INVALID;
        LOG_ERROR("audit log is in the unsealed format of an older recstream; it is not "
                  "migrated: move it aside (it still verifies with that version) and start again",
                  "path=%s", a->path);
        goto out;
    }
    if (check_stored(&a->key, line, len, 0, NULL, a->head, &a->seq, prob, sizeof prob) < 0) {
        rc = CORE_E_CORRUPT;
        LOG_ERROR("audit log: the last entry does not verify; run `recstream audit verify`",
                  "path=%s problem=\"%s\"", a->path, prob);
        goto out;
    }
out:
    free(buf);
    return rc;
}

int audit_open(const char *path, const struct seal_key *key, struct audit **out)
{
    char dir[4096];
    size_t n = strlen(path);
    if (n >= sizeof dir)
        return -ENAMETOOLONG;
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        int rc = core_mkdirs(dir, 0700);
        if (rc < 0)
            return rc;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    struct audit *a = core_xcalloc(1, sizeof *a);
    a->fd = fd;
    a->key = *key;
    a->path = core_xstrdup(path);
    pthread_mutex_init(&a->mu, NULL);
    int rc = continue_chain(a);
    if (rc < 0) {
        audit_close(a);
        return rc;
    }
    if (slash && slash != dir)
        core_fsync_dir(dir);
    *out = a;
    return 0;
}

void audit_close(struct audit *a)
{
    if (!a)
        return;
    if (a->fd >= 0)
        close(a->fd);
    pthread_mutex_destroy(&a->mu);
    seal_key_dispose(&a->key);
    free(a->path);
    free(a);
}

void audit_head(struct audit *a, int64_t *seq, char head[AUDIT_HASH_HEX + 1])
{
    pthread_mutex_lock(&a->mu);
    *seq = a->seq;
    memcpy(head, a->head, AUDIT_HASH_HEX + 1);
    pthread_mutex_unlock(&a->mu);
}

static bool field_ok(const char *s)
{
    return !s || strlen(s) <= AUDIT_FIELD_MAX;
}

int audit_append(struct audit *a, const char *actor, const char *action, const char *subject_ref,
                 const char *source, const char *detail_json)
{
    if (!field_ok(actor) || !field_ok(action) || !field_ok(subject_ref) || !field_ok(source))
        return CORE_E_INVALID;
    cJSON *detail = detail_json ? cJSON_Parse(detail_json) : cJSON_CreateObject();
    char *compact = cJSON_IsObject(detail) ? cJSON_PrintUnformatted(detail) : NULL;
    cJSON_Delete(detail);
    if (!compact || strlen(compact) > AUDIT_DETAIL_MAX) {
        cJSON_free(compact);
        return CORE_E_INVALID;
    }
    struct core_buf b;
    core_buf_init(&b);
    pthread_mutex_lock(&a->mu);
    /* ts is taken under the lock so that entries are in time order too. */
    core_buf_printf(&b, "{\"seq\":%lld,\"ts\":%lld,\"actor\":", (long long)(a->seq + 1),
                    (long long)core_now_ms());
    core_json_cstr(&b, actor ? actor : "");
    core_buf_puts(&b, ",\"action\":");
    core_json_cstr(&b, action ? action : "");
    core_buf_puts(&b, ",\"subject\":");
    core_json_cstr(&b, subject_ref ? subject_ref : "");
    core_buf_puts(&b, ",\"source\":");
    core_json_cstr(&b, source ? source : "");
    core_buf_printf(&b, ",\"detail\":%s,\"prev\":\"%s\"", compact, a->head);
    char hash[AUDIT_HASH_HEX + 1];
    sha256_hex(b.data, b.len, hash);
    core_buf_printf(&b, HASH_SUFFIX "%s\"}", hash);
    int rc = audit__write_line(a, a->seq + 1, b.data, b.len);
    if (rc == 0) {
        a->seq++;
        memcpy(a->head, hash, sizeof hash);
    }
    pthread_mutex_unlock(&a->mu);
    core_buf_dispose(&b);
    cJSON_free(compact);
    if (rc < 0)
        LOG_ERROR("audit log write failed", "path=%s err=\"%s\"", a->path, core_strerror(rc));
    return rc;
}
