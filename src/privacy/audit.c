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
#include <dirent.h>
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
    int64_t file_first_ts; /* ts of the current file's first entry (0: empty file) */
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

static int append_locked(struct audit *a, const char *actor, const char *action,
                         const char *subject_ref, const char *source, const char *detail);

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

/* The prev and seq of a stored line (opened; not checked against anything). */
static int line_start(const struct seal_key *key, const char *line, size_t len, int64_t *seq,
                      char prev[AUDIT_HASH_HEX + 1])
{
    struct core_buf plain;
    core_buf_init(&plain);
    char prob[160];
    int64_t s = 0;
    int rc = audit_line_open(key, line, len, &s, &plain, prob, sizeof prob);
    cJSON *root = rc == 0 ? cJSON_ParseWithLength(plain.data, plain.len) : NULL;
    const cJSON *pv = cJSON_GetObjectItemCaseSensitive(root, "prev");
    if (rc == 0 && cJSON_IsString(pv) && strlen(pv->valuestring) == AUDIT_HASH_HEX) {
        memcpy(prev, pv->valuestring, AUDIT_HASH_HEX + 1);
        *seq = s;
    } else {
        rc = CORE_E_CORRUPT;
    }
    cJSON_Delete(root);
    core_buf_dispose(&plain);
    return rc;
}

/* Walks one file, continuing the chain in v (v->entries counts on; the next seq is
 * v->first_seq + v->entries). first: the oldest file still present, whose first entry may
 * start after seq 1 when older files were deleted by retention: its prev is then taken as
 * given (the anchor). */
static int verify_one(const char *path, const struct seal_key *key, struct audit_verify *v,
                      bool first)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? CORE_E_NOTFOUND : -errno;
    snprintf(v->file, sizeof v->file, "%s", path);
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
        if (first && lineno == 1) {
            int64_t s;
            char prev[AUDIT_HASH_HEX + 1];
            if (line_start(key, line, n, &s, prev) == 0 && s > 1) {
                v->first_seq = s;
                memcpy(v->anchor, prev, sizeof prev);
                memcpy(v->head, prev, sizeof prev);
            }
        }
        char hash[AUDIT_HASH_HEX + 1];
        int64_t seq;
        if (check_stored(key, line, n, v->first_seq + v->entries, v->head, hash, &seq, v->problem,
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

/* Splits path into its directory and the rotated-file prefix ("<dir>/audit" for
 * "<dir>/audit.log": rotated files are "<prefix>.<first seq, 20 digits>.log"). */
static void rotated_prefix(const char *path, char *dir, size_t dsize, char *stem, size_t ssize)
{
    const char *slash = strrchr(path, '/');
    snprintf(dir, dsize, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    const char *base = slash ? slash + 1 : path;
    size_t bl = strlen(base);
    if (bl > 4 && !strcmp(base + bl - 4, ".log"))
        bl -= 4;
    snprintf(stem, ssize, "%.*s", (int)bl, base);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int rotated_list(const char *path, int64_t **seqs, size_t *n)
{
    char dir[4096], stem[512];
    rotated_prefix(path, dir, sizeof dir, stem, sizeof stem);
    *seqs = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    size_t cap = 0, sl = strlen(stem);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        if (strlen(nm) != sl + 1 + 20 + 4 || strncmp(nm, stem, sl) || nm[sl] != '.' ||
            strcmp(nm + sl + 21, ".log"))
            continue;
        int64_t v = 0;
        bool digits = true;
        for (size_t i = 0; i < 20 && digits; i++) {
            char ch = nm[sl + 1 + i];
            digits = ch >= '0' && ch <= '9';
            v = v * 10 + (ch - '0');
        }
        if (!digits)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *seqs = core_xrealloc(*seqs, cap * sizeof **seqs);
        }
        (*seqs)[(*n)++] = v;
    }
    closedir(d);
    if (*n)
        qsort(*seqs, *n, sizeof **seqs, cmp_i64);
    return 0;
}

static void rotated_path(const char *path, int64_t first_seq, char *out, size_t size)
{
    char dir[4096], stem[512];
    rotated_prefix(path, dir, sizeof dir, stem, sizeof stem);
    int w = snprintf(out, size, "%s/%s.%020lld.log", dir, stem, (long long)first_seq);
    /* audit_open refuses paths of 4096 bytes or more and callers pass 4200-byte buffers. */
    if (w < 0 || (size_t)w >= size)
        abort();
}

int audit_verify_file(const char *path, const struct seal_key *key, struct audit_verify *v)
{
    memset(v, 0, sizeof v[0]);
    memcpy(v->head, zero_hash, sizeof v->head);
    memcpy(v->anchor, zero_hash, sizeof v->anchor);
    v->first_seq = 1;
    int64_t *seqs;
    size_t n;
    int rc = rotated_list(path, &seqs, &n);
    for (size_t i = 0; rc == 0 && i < n && !v->bad_line; i++) {
        char rp[4200];
        rotated_path(path, seqs[i], rp, sizeof rp);
        rc = verify_one(rp, key, v, i == 0);
        v->files++;
    }
    free(seqs);
    if (rc == 0 && !v->bad_line) {
        rc = verify_one(path, key, v, n == 0);
        v->files++;
        if (rc == CORE_E_NOTFOUND && n > 0)
            rc = 0; /* rotated, the current file not created yet */
    }
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
/* Continues the chain from the last complete line of the file open as fd (size bytes): the
 * current file (a->fd; a torn last line is cut off) or, when that is empty, the newest
 * rotated one. */
static int tail_of(struct audit *a, int fd, off_t size)
{
    size_t want = 2 * AUDIT_STORED_LINE_MAX + 2;
    off_t start = size > (off_t)want ? size - (off_t)want : 0;
    size_t n = (size_t)(size - start);
    char *buf = core_xmalloc(n + 1);
    int rc = 0;
    ssize_t got = pread(fd, buf, n, start);
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
        if (fd != a->fd || ftruncate(a->fd, start + (off_t)end) < 0 || fdatasync(a->fd) < 0) {
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

/* The ts of the current file's first entry (0 when empty or unreadable). */
static int64_t first_ts(struct audit *a)
{
    char *line = core_xmalloc(AUDIT_STORED_LINE_MAX + 1);
    ssize_t got = pread(a->fd, line, AUDIT_STORED_LINE_MAX, 0);
    int64_t ts = 0;
    if (got > 0) {
        line[got] = '\0';
        struct core_buf plain;
        core_buf_init(&plain);
        char prob[160];
        int64_t seq;
        if (audit_line_open(&a->key, line, strcspn(line, "\n"), &seq, &plain, prob, sizeof prob) ==
            0) {
            cJSON *root = cJSON_ParseWithLength(plain.data, plain.len);
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "ts");
            ts = cJSON_IsNumber(t) ? (int64_t)t->valuedouble : 0;
            cJSON_Delete(root);
        }
        core_buf_dispose(&plain);
    }
    free(line);
    return ts;
}

/* Finds where the chain stands: the current file's last entry, or (current file empty after
 * a rotation) the newest rotated file's. *anchor_due: the current file is empty but older
 * files exist, so it must start with an anchor. */
static int continue_chain(struct audit *a, bool *anchor_due)
{
    struct stat st;
    *anchor_due = false;
    if (fstat(a->fd, &st) < 0)
        return -errno;
    a->size = st.st_size;
    a->seq = 0;
    memcpy(a->head, zero_hash, sizeof a->head);
    int rc = st.st_size > 0 ? tail_of(a, a->fd, st.st_size) : 0;
    if (rc < 0)
        return rc;
    if (a->size > 0) {
        a->file_first_ts = first_ts(a);
        return 0;
    }
    int64_t *seqs;
    size_t n;
    rc = rotated_list(a->path, &seqs, &n);
    if (rc == 0 && n > 0) {
        char rp[4200];
        rotated_path(a->path, seqs[n - 1], rp, sizeof rp);
        int fd = open(rp, O_RDONLY | O_CLOEXEC);
        struct stat rst;
        if (fd < 0 || fstat(fd, &rst) < 0)
            rc = -errno;
        else if (rst.st_size > 0)
            rc = tail_of(a, fd, rst.st_size);
        if (fd >= 0)
            close(fd);
        *anchor_due = rc == 0;
    }
    free(seqs);
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
    bool anchor_due;
    int rc = continue_chain(a, &anchor_due);
    if (rc == 0 && anchor_due) {
        /* A crash between a rotation's rename and its anchor: write the anchor now. */
        char detail[256];
        snprintf(detail, sizeof detail, "{\"previousHead\":\"%s\",\"previousLastSeq\":%lld}",
                 a->head, (long long)a->seq);
        pthread_mutex_lock(&a->mu);
        rc = append_locked(a, "system", "audit.anchor", "", "retention", detail);
        pthread_mutex_unlock(&a->mu);
    }
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

/* Builds, seals and writes the next entry (a->mu held); detail is compact JSON. */
static int append_locked(struct audit *a, const char *actor, const char *action,
                         const char *subject_ref, const char *source, const char *detail)
{
    struct core_buf b;
    core_buf_init(&b);
    /* ts is taken under the lock so that entries are in time order too. */
    int64_t ts = core_now_ms();
    core_buf_printf(&b, "{\"seq\":%lld,\"ts\":%lld,\"actor\":", (long long)(a->seq + 1),
                    (long long)ts);
    core_json_cstr(&b, actor ? actor : "");
    core_buf_puts(&b, ",\"action\":");
    core_json_cstr(&b, action ? action : "");
    core_buf_puts(&b, ",\"subject\":");
    core_json_cstr(&b, subject_ref ? subject_ref : "");
    core_buf_puts(&b, ",\"source\":");
    core_json_cstr(&b, source ? source : "");
    core_buf_printf(&b, ",\"detail\":%s,\"prev\":\"%s\"", detail, a->head);
    char hash[AUDIT_HASH_HEX + 1];
    sha256_hex(b.data, b.len, hash);
    core_buf_printf(&b, HASH_SUFFIX "%s\"}", hash);
    int rc = audit__write_line(a, a->seq + 1, b.data, b.len);
    if (rc == 0) {
        a->seq++;
        memcpy(a->head, hash, sizeof hash);
        if (a->file_first_ts == 0)
            a->file_first_ts = ts;
    }
    core_buf_dispose(&b);
    if (rc < 0)
        LOG_ERROR("audit log write failed", "path=%s err=\"%s\"", a->path, core_strerror(rc));
    return rc;
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
    pthread_mutex_lock(&a->mu);
    int rc = append_locked(a, actor, action, subject_ref, source, compact);
    pthread_mutex_unlock(&a->mu);
    cJSON_free(compact);
    return rc;
}

/* ---- rotation and retention ------------------------------------------------------------------ */

int audit_rotate(struct audit *a, int64_t period_ms, bool *rotated)
{
    *rotated = false;
    pthread_mutex_lock(&a->mu);
    int rc = 0;
    if (a->file_first_ts == 0 || core_now_ms() - a->file_first_ts < period_ms)
        goto out;
    /* The current file's first seq names it once rotated. */
    int64_t first_seq = a->seq;
    char *line = core_xmalloc(AUDIT_STORED_LINE_MAX + 1);
    ssize_t got = pread(a->fd, line, AUDIT_STORED_LINE_MAX, 0);
    if (got > 0) {
        line[got] = '\0';
        char prev[AUDIT_HASH_HEX + 1];
        if (line_start(&a->key, line, strcspn(line, "\n"), &first_seq, prev) < 0)
            rc = CORE_E_CORRUPT;
    } else {
        rc = got < 0 ? -errno : CORE_E_CORRUPT;
    }
    free(line);
    if (rc < 0)
        goto out;
    char rp[4200], dir[4096], stem[512];
    rotated_path(a->path, first_seq, rp, sizeof rp);
    rotated_prefix(a->path, dir, sizeof dir, stem, sizeof stem);
    /* The old file is complete and fsynced (every entry was); rename, fsync the directory,
     * then the new file starts with an anchor naming the old one's head. A crash after the
     * rename leaves no current file: the next open creates it and continues the chain from
     * the newest rotated file (see continue_chain). */
    if (rename(a->path, rp) < 0) {
        rc = -errno;
        goto out;
    }
    core_fsync_dir(dir);
    int fd = open(a->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    close(a->fd);
    a->fd = fd;
    a->size = 0;
    a->file_first_ts = 0;
    core_fsync_dir(dir);
    const char *base = strrchr(rp, '/');
    struct core_buf detail;
    core_buf_init(&detail);
    core_buf_puts(&detail, "{\"previousFile\":");
    core_json_cstr(&detail, base ? base + 1 : rp);
    core_buf_printf(&detail, ",\"previousHead\":\"%s\",\"previousLastSeq\":%lld}", a->head,
                    (long long)a->seq);
    rc = append_locked(a, "system", "audit.anchor", "", "retention", detail.data);
    core_buf_dispose(&detail);
    if (rc == 0) {
        *rotated = true;
        LOG_INFO("audit log rotated", "file=%s next_seq=%lld", rp, (long long)a->seq);
    }
out:
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int audit_prune(struct audit *a, int64_t before_ms, int *removed)
{
    *removed = 0;
    int64_t *seqs;
    size_t n;
    pthread_mutex_lock(&a->mu);
    int rc = rotated_list(a->path, &seqs, &n);
    char dir[4096], stem[512];
    rotated_prefix(a->path, dir, sizeof dir, stem, sizeof stem);
    /* Oldest first, stopping at the first file still young, so what remains is a suffix of
     * the chain. A rotated file is never written again: its mtime is its last entry's time. */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char rp[4200];
        rotated_path(a->path, seqs[i], rp, sizeof rp);
        struct stat st;
        if (stat(rp, &st) < 0) {
            rc = -errno;
            break;
        }
        int64_t mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
        if (mtime_ms >= before_ms)
            break;
        if (unlink(rp) < 0) {
            rc = -errno;
            break;
        }
        (*removed)++;
        LOG_INFO("retention: deleted audit file", "file=%s", rp);
    }
    if (*removed > 0)
        core_fsync_dir(dir);
    pthread_mutex_unlock(&a->mu);
    free(seqs);
    return rc;
}
