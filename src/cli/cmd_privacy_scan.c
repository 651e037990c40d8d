/*
 * `recstream privacy scan --data DIR ID`: searches every file under the data directory for a
 * user's raw id and pseudonym, opening what is sealed under the data key first, so that an
 * erasure can be checked end to end (docs/PRIVACY.md, "Right to erasure"):
 *
 *   - every file as stored (key files, indexes, ...);
 *   - checkpoints (checkpoints/<seq>/<file>), dead letters (deadletters/<n>.ndjson, per line),
 *     erasure receipts (privacy/erasures/<id>.rcpt), the audit log (privacy/audit*.log) and
 *     the consent store (privacy/consent/journal.ndjson, snapshot.ndjson) after opening them;
 *   - the user key store: whether it still holds a key for the pseudonym.
 * With a rotated secret (privacy.h), the pseudonyms under every version still held are
 * searched for.
 * Log records are sealed under users' keys: `recstream log dump` opens those still readable.
 * With --value TEXT, TEXT is searched for as well: in every file as above and in every log
 * record the user keys still open, with its sealed field bundle merged back while its epoch
 * key exists (field retention: a short-class value must stop showing up once its key is
 * destroyed).
 *
 * Prints one line per hit ("HIT <file>: <what>") and a summary; exit 1 when anything was
 * found, 2 on errors (a sealed file that does not open is an error: it was not searched).
 */
#include "cli/cli_int.h"
#include "evlog/evlog.h"
#include "privacy/fieldseal.h"
#include "privacy/privacy.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SCAN_FILE_MAX ((size_t)1 << 30)

struct scan {
    const char *data;
    const struct seal_key *key;
    const char *needles[2 + PRIVACY_KEY_VERSIONS_MAX]; /* raw id, pseudonym per version, value */
    const char *what[2 + PRIVACY_KEY_VERSIONS_MAX];
    int nneedles;
    int64_t files, opened, hits, errors;
};

static void search(struct scan *s, const char *path, const char *how, const char *p, size_t n)
{
    for (int i = 0; i < s->nneedles; i++) {
        if (memmem(p, n, s->needles[i], strlen(s->needles[i]))) {
            printf("HIT %s: %s%s\n", path, s->what[i], how);
            s->hits++;
        }
    }
}

static void open_failed(struct scan *s, const char *path)
{
    printf("ERROR %s: sealed, but does not open under the data key (not searched)\n", path);
    s->errors++;
}

/* checkpoints/<seq>/<name>: the whole file sealed, AD "recstream checkpoint <seq> <name>". */
/* A file sealed whole under the data key with associated data ad (an empty file is empty). */
static void scan_sealed_file(struct scan *s, const char *path, const char *ad, const char *how,
                             const struct core_buf *b)
{
    struct core_buf plain;
    core_buf_init(&plain);
    if (b->len == 0 || seal_file_open(s->key, ad, b->data, b->len, &plain) == 0) {
        s->opened++;
        search(s, path, how, plain.data, plain.len);
    } else {
        open_failed(s, path);
    }
    core_buf_dispose(&plain);
}

static void scan_checkpoint(struct scan *s, const char *path, const char *seq, const char *name,
                            const struct core_buf *b)
{
    char ad[400];
    char *end;
    uint64_t n = strtoull(seq, &end, 10);
    if (*end || !*seq)
        return;
    snprintf(ad, sizeof ad, "recstream checkpoint %" PRIu64 " %s", n, name);
    scan_sealed_file(s, path, ad, " (sealed checkpoint, opened)", b);
}

/* deadletters/<first>.ndjson: one sealed line each, AD "... <first> line <n>". */
static void scan_deadletters(struct scan *s, const char *path, const char *name,
                             const struct core_buf *b)
{
    char *end;
    long long first = strtoll(name, &end, 10);
    if (strcmp(end, ".ndjson"))
        return;
    struct core_buf plain;
    core_buf_init(&plain);
    char ad[96];
    int64_t line = 0;
    bool ok = true;
    for (size_t pos = 0; pos < b->len; line++) {
        const char *nl = memchr(b->data + pos, '\n', b->len - pos);
        size_t n = nl ? (size_t)(nl - (b->data + pos)) : b->len - pos;
        snprintf(ad, sizeof ad, "recstream deadletters %lld line %" PRId64, first, line);
        core_buf_reset(&plain);
        if (seal_line_open(s->key, ad, b->data + pos, n, &plain) == 0)
            search(s, path, " (sealed dead letter, opened)", plain.data, plain.len);
        else
            ok = false;
        pos += n + 1;
    }
    if (ok)
        s->opened++;
    else
        open_failed(s, path);
    core_buf_dispose(&plain);
}

/* Files of "<n> <sealed>" lines, each sealed with the AD "<prefix> <n>" (the audit log, the
 * consent journal). */
static void scan_numbered_lines(struct scan *s, const char *path, const char *prefix,
                                const char *how, const struct core_buf *b)
{
    struct core_buf plain;
    core_buf_init(&plain);
    char ad[96];
    bool ok = true;
    for (size_t pos = 0; pos < b->len;) {
        const char *nl = memchr(b->data + pos, '\n', b->len - pos);
        size_t n = nl ? (size_t)(nl - (b->data + pos)) : b->len - pos;
        const char *line = b->data + pos, *sp = memchr(line, ' ', n);
        char *end;
        long long seq = strtoll(line, &end, 10);
        core_buf_reset(&plain);
        if (n > 0 && sp && end == sp) {
            snprintf(ad, sizeof ad, "%s %lld", prefix, seq);
            if (seal_line_open(s->key, ad, sp + 1, n - (size_t)(sp + 1 - line), &plain) == 0)
                search(s, path, how, plain.data, plain.len);
            else
                ok = false;
        } else if (n > 0) {
            ok = false;
        }
        pos += n + 1;
    }
    if (ok)
        s->opened++;
    else
        open_failed(s, path);
    core_buf_dispose(&plain);
}

static void scan_receipt(struct scan *s, const char *path, const char *name,
                         const struct core_buf *b)
{
    size_t n = strlen(name);
    if (n < 6 || strcmp(name + n - 5, ".rcpt"))
        return;
    char ad[96];
    snprintf(ad, sizeof ad, "recstream erasure %.*s", (int)(n - 5), name);
    scan_sealed_file(s, path, ad, " (sealed erasure receipt, opened)", b);
}

static void scan_file(struct scan *s, const char *path, const char *rel, const char *name)
{
    struct core_buf b;
    core_buf_init(&b);
    int rc = core_read_file(path, SCAN_FILE_MAX, &b);
    if (rc < 0) {
        printf("ERROR %s: %s\n", path, core_strerror(rc));
        s->errors++;
        core_buf_dispose(&b);
        return;
    }
    s->files++;
    search(s, path, "", b.data, b.len);
    char seq[64];
    if (!strncmp(rel, "checkpoints/", 12) && sscanf(rel + 12, "%63[0-9]/", seq) == 1 &&
        !strcmp(rel + 12 + strlen(seq) + 1, name))
        scan_checkpoint(s, path, seq, name, &b);
    else if (!strncmp(rel, "deadletters/", 12) && !strchr(rel + 12, '/'))
        scan_deadletters(s, path, name, &b);
    else if (!strncmp(rel, "privacy/erasures/", 17) && !strchr(rel + 17, '/'))
        scan_receipt(s, path, name, &b);
    else if (!strncmp(rel, "privacy/audit", 13) && !strchr(rel + 8, '/') && strlen(name) > 4 &&
             !strcmp(name + strlen(name) - 4, ".log"))
        scan_numbered_lines(s, path, "recstream audit", " (sealed audit entry, opened)", &b);
    else if (!strcmp(rel, "privacy/consent/journal.ndjson"))
        scan_numbered_lines(s, path, "recstream consent journal",
                            " (sealed consent record, opened)", &b);
    else if (!strcmp(rel, "privacy/consent/snapshot.ndjson"))
        scan_sealed_file(s, path, "recstream consent snapshot",
                         " (sealed consent snapshot, opened)", &b);
    sodium_memzero(b.data, b.cap);
    core_buf_dispose(&b);
}

/* Depth-first over dir; rel is the path below the data directory. */
static void walk(struct scan *s, const char *dir, const char *rel)
{
    DIR *d = opendir(dir);
    if (!d) {
        printf("ERROR %s: %s\n", dir, strerror(errno));
        s->errors++;
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char path[4096], sub[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", de->d_name);
        struct stat st;
        if (lstat(path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode))
            walk(s, path, sub);
        else if (S_ISREG(st.st_mode))
            scan_file(s, path, sub, de->d_name);
    }
    closedir(d);
}

/* The file log's records, opened with the user keys and their field bundles with the epoch
 * keys still held, searched for value only (a user's own records name their pseudonym). */
static void scan_log(struct scan *s, const struct cli_keys *keys, const char *value)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/log/meta", s->data);
    struct stat st;
    if (stat(path, &st) != 0)
        return; /* no file log here */
    snprintf(path, sizeof path, "%s/log", s->data);
    struct evlog_file_options lo;
    evlog_file_options_init(&lo);
    lo.dir = path;
    lo.read_only = true;
    lo.keys = keys->uk;
    struct evlog *log;
    if (evlog_file_open(&lo, &log) < 0) {
        printf("ERROR %s: the log does not open (not searched)\n", path);
        s->errors++;
        return;
    }
    struct evlog_batch b;
    evlog_batch_init(&b);
    struct core_buf out;
    core_buf_init(&out);
    for (int32_t p = 0; p < log->partitions; p++) {
        struct evlog_partition_stats ps;
        if (evlog_stats(log, p, &ps) < 0)
            continue;
        for (int64_t from = ps.low_water; from < ps.high_water;) {
            int n = evlog_read(log, p, from, 1024, &b);
            if (n <= 0) {
                if (n < 0) {
                    printf("ERROR %s: partition %d: %s\n", path, (int)p, core_strerror(n));
                    s->errors++;
                }
                break;
            }
            for (size_t i = 0; i < b.n; i++) {
                const struct evlog_record *r = &b.recs[i];
                from = r->offset + 1;
                struct event ev;
                if (r->erased || event_bin_decode(r->value, r->value_len, &ev) < 0)
                    continue;
                struct core_arena arena;
                core_arena_init(&arena);
                core_buf_reset(&out);
                fieldseal_merge(keys->ek, &ev, &arena, NULL);
                event_json_encode(&ev, &out);
                if (memmem(out.data, out.len, value, strlen(value))) {
                    printf("HIT %s: the value (partition %d offset %lld, record opened)\n", path,
                           (int)p, (long long)r->offset);
                    s->hits++;
                }
                core_arena_dispose(&arena);
            }
        }
    }
    sodium_memzero(out.data, out.cap);
    core_buf_dispose(&out);
    evlog_batch_dispose(&b);
    evlog_close(log);
}

int cli__privacy_scan(const char *data, const char *key_file, const char *data_key, const char *id,
                      bool anonymous, const char *value)
{
    struct privacy_keyring *ring = core_xmalloc(sizeof *ring);
    if (privacy_keyring_load(key_file, ring) < 0) {
        fprintf(stderr, "recstream privacy scan: no pseudonymisation key at %s\n", key_file);
        free(ring);
        return 2;
    }
    char pseudonyms[PRIVACY_KEY_VERSIONS_MAX][33];
    int nv = privacy_keyring_pseudonyms(ring, anonymous, id, strlen(id), pseudonyms);
    privacy_keyring_dispose(ring);
    free(ring);
    struct cli_keys keys;
    if (cli__keys_open(data, data_key, false, 0, &keys) < 0) {
        fprintf(stderr, "recstream privacy scan: cannot open the data key or user key store\n");
        return 2;
    }
    struct scan s = {.data = data, .key = &keys.data_key, .nneedles = 1 + nv};
    s.needles[0] = id;
    s.what[0] = "the raw id";
    char what[PRIVACY_KEY_VERSIONS_MAX][64];
    for (int v = 0; v < nv; v++) {
        snprintf(what[v], sizeof what[v], "the pseudonym%s", v ? " (older secret version)" : "");
        s.needles[1 + v] = pseudonyms[v];
        s.what[1 + v] = what[v];
    }
    if (value) {
        s.needles[s.nneedles] = value;
        s.what[s.nneedles++] = "the value";
    }
    walk(&s, data, "");
    if (value)
        scan_log(&s, &keys, value);
    for (int v = 0; v < nv; v++) {
        struct seal_key uk;
        if (userkeys_get(keys.uk, pseudonyms[v], &uk) == 0) {
            printf("HIT %s/privacy/userkeys: holds a key for %s (not shredded)\n", data, what[v]);
            s.hits++;
            seal_key_dispose(&uk);
        }
    }
    cli__keys_close(&keys);
    printf("%s: %" PRId64 " files searched, %" PRId64 " sealed files opened, %" PRId64
           " hits, %" PRId64 " errors\n",
           s.hits     ? "FOUND"
           : s.errors ? "INCOMPLETE"
                      : "CLEAN",
           s.files, s.opened, s.hits, s.errors);
    return s.errors ? 2 : s.hits ? 1 : 0;
}
