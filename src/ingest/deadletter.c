/*
 * The dead-letter store: append-only NDJSON segment files, an in-memory index of the live
 * entries in id order, and the two bounds. deadletter.h describes the format and why whole
 * segments are deleted rather than files rewritten.
 */
#include "ingest/deadletter.h"

#include <cjson/cJSON.h>
#include <sodium.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define LIST_MAX 1000
#define MAX_ENTRIES_LIMIT 10000000
#define MIN_BYTES 4096
#define TAKE_CHUNK 256                 /* entries offered to fn per lock release */
#define TAKE_CHUNK_BYTES (1u << 20)    /* ... or fewer, once their events reach this size */
#define MAX_JSON_ID 9007199254740992.0 /* 2^53: ids above cannot round-trip through a double */

/* One entry; removed (taken or dropped) entries keep their slot, with line NULL, until the
 * slots are compacted, so the array stays in id order for binary search. */
struct entry {
    int64_t id;
    char *line; /* the NDJSON line without its newline, NUL-terminated; NULL once removed */
    size_t line_len;
    size_t event_off; /* the event object inside line */
    size_t event_len;
};

/* One segment file; only the newest is appended to. */
struct segment {
    int64_t first_id;
    int64_t bytes;
    int64_t lines; /* lines in the file: the next line's number (sealed lines' AD) */
};

struct deadletters {
    pthread_mutex_t mu;      /* guards everything below */
    pthread_mutex_t take_mu; /* one deadletter_take at a time */
    char *dir;
    struct seal_key key; /* seals every line (has_key) */
    bool has_key;
    int64_t max_entries;
    int64_t max_bytes;
    int64_t seg_limit; /* a segment is not grown past this by adds */

    struct entry *ents; /* slots [head, end) in id order; ents[head] is live unless empty */
    size_t head, end, cap;
    int64_t live;

    struct segment *segs; /* oldest first */
    size_t nsegs, segs_cap;
    int fd;             /* the newest segment, or -1 before the first add */
    int64_t disk_bytes; /* sum of segs[].bytes */

    int64_t next_id;
    int64_t dropped_through; /* entries up to this id were dropped by max_entries */
    int64_t total_added;
    int64_t dropped;
};

void deadletter_options_init(struct deadletter_options *o)
{
    o->dir = NULL;
    o->key = NULL;
    o->max_entries = 10000;
    o->max_bytes = 64 << 20;
}

/* ---- the entry index --------------------------------------------------------------------- */

/* Index of the first slot whose id is greater than id (end if none). */
static size_t ents_first_after(const struct deadletters *d, int64_t id)
{
    size_t lo = d->head, hi = d->end;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->ents[mid].id <= id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct entry *ents_find_live(struct deadletters *d, int64_t id)
{
    size_t i = ents_first_after(d, id - 1);
    if (i < d->end && d->ents[i].id == id && d->ents[i].line)
        return &d->ents[i];
    return NULL;
}

/* Appends an entry (ids only grow). When the slots run out and at least half of them are
 * removed ones, the live entries move down instead of the array growing: amortised O(1),
 * and the array stays within about twice the live entries. */
static void ents_push(struct deadletters *d, const struct entry *e)
{
    if (d->end == d->cap) {
        if (d->cap > 0 && d->cap - (size_t)d->live >= d->cap / 2) {
            size_t j = 0;
            for (size_t i = d->head; i < d->end; i++)
                if (d->ents[i].line)
                    d->ents[j++] = d->ents[i];
            d->head = 0;
            d->end = j;
        } else {
            d->cap = d->cap ? d->cap * 2 : 64;
            d->ents = core_xrealloc(d->ents, d->cap * sizeof *d->ents);
        }
    }
    d->ents[d->end++] = *e;
    d->live++;
}

/* Removes the entry in slot i and keeps ents[head] live. */
static void ents_remove(struct deadletters *d, size_t i)
{
    if (!d->ents[i].line)
        return;
    free(d->ents[i].line);
    d->ents[i].line = NULL;
    d->live--;
    while (d->head < d->end && !d->ents[d->head].line)
        d->head++;
    if (d->head == d->end)
        d->head = d->end = 0;
}

/* The id of the k-th oldest live entry (1 <= k <= live). */
static int64_t ents_nth_live_id(const struct deadletters *d, int64_t k)
{
    for (size_t i = d->head; i < d->end; i++)
        if (d->ents[i].line && --k == 0)
            return d->ents[i].id;
    return 0;
}

/* ---- segment files ----------------------------------------------------------------------- */

static int seg_path(const struct deadletters *d, int64_t first_id, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%" PRId64 ".ndjson", d->dir, first_id);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Parses "<first-id>.ndjson"; other names in the directory are not ours. */
static int seg_name_parse(const char *name, int64_t *first_id)
{
    static const char ext[] = ".ndjson";
    size_t n = strlen(name);
    if (n <= sizeof ext - 1 || n - (sizeof ext - 1) > 19 ||
        strcmp(name + n - (sizeof ext - 1), ext) != 0)
        return CORE_E_INVALID;
    char digits[24];
    memcpy(digits, name, n - (sizeof ext - 1));
    digits[n - (sizeof ext - 1)] = '\0';
    return core_parse_i64(digits, 1, INT64_MAX, first_id);
}

static void segs_push(struct deadletters *d, int64_t first_id, int64_t bytes, int64_t lines)
{
    if (d->nsegs == d->segs_cap) {
        d->segs_cap = d->segs_cap ? d->segs_cap * 2 : 8;
        d->segs = core_xrealloc(d->segs, d->segs_cap * sizeof *d->segs);
    }
    d->segs[d->nsegs].first_id = first_id;
    d->segs[d->nsegs].bytes = bytes;
    d->segs[d->nsegs].lines = lines;
    d->nsegs++;
    d->disk_bytes += bytes;
}

/* Opens the segment file for appending, creating it; returns the fd and its size. */
static int seg_open(const struct deadletters *d, int64_t first_id, int *fd_out, int64_t *size)
{
    char path[PATH_MAX];
    int rc = seg_path(d, first_id, path, sizeof path);
    if (rc < 0)
        return rc;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    *fd_out = fd;
    *size = (int64_t)st.st_size;
    return 0;
}

/* Starts a new newest segment whose first entry will be first_id. */
static int seg_start(struct deadletters *d, int64_t first_id)
{
    int fd = -1;
    int64_t size = 0;
    int rc = seg_open(d, first_id, &fd, &size);
    if (rc < 0)
        return rc;
    if (d->fd >= 0)
        close(d->fd);
    d->fd = fd;
    segs_push(d, first_id, size, 0);
    return 0;
}

/* The associated data of a sealed line: its segment and line number. */
static void line_ad(char *ad, size_t size, int64_t first_id, int64_t line)
{
    snprintf(ad, size, "recstream deadletters %" PRId64 " line %" PRId64, first_id, line);
}

/* Seals every line of iov (each element holds whole lines) into out, numbering them from
 * first_line; returns the number of lines. */
static int64_t seal_lines(struct deadletters *d, const struct iovec *iov, int iovcnt,
                          int64_t first_id, int64_t first_line, struct core_buf *out)
{
    int64_t line = first_line;
    char ad[96];
    for (int i = 0; i < iovcnt; i++) {
        const char *p = iov[i].iov_base, *end = p + iov[i].iov_len;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
            line_ad(ad, sizeof ad, first_id, line++);
            seal_line(&d->key, ad, p, n, out);
            core_buf_putc(out, '\n');
            p += n + 1;
        }
    }
    return line - first_line;
}

static int seg_write(struct deadletters *d, struct iovec *iov, int iovcnt);

/* Appends iov (whole lines) to the newest segment, sealing each line when the store has a
 * key. On failure the file is cut back, so no partial line is left for later appends. */
static int seg_append(struct deadletters *d, struct iovec *iov, int iovcnt)
{
    struct segment *seg = &d->segs[d->nsegs - 1];
    if (!d->has_key) {
        int64_t lines = 0;
        for (int i = 0; i < iovcnt; i++)
            for (size_t k = 0; k < iov[i].iov_len; k++)
                lines += ((const char *)iov[i].iov_base)[k] == '\n';
        int rc = seg_write(d, iov, iovcnt);
        if (rc == 0)
            seg->lines += lines;
        return rc;
    }
    struct core_buf sealed;
    core_buf_init(&sealed);
    int64_t lines = seal_lines(d, iov, iovcnt, seg->first_id, seg->lines, &sealed);
    struct iovec one = {sealed.data, sealed.len};
    int rc = seg_write(d, &one, 1);
    if (rc == 0)
        seg->lines += lines;
    core_buf_dispose(&sealed);
    return rc;
}

/* Writes iov to the newest segment with writev, finishing short writes. On failure the file
 * is cut back, so no partial line is left for later appends to continue. */
static int seg_write(struct deadletters *d, struct iovec *iov, int iovcnt)
{
    struct segment *seg = &d->segs[d->nsegs - 1];
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    size_t done = 0;
    while (done < total) {
        ssize_t w = writev(d->fd, iov, iovcnt);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            int rc = w < 0 ? -errno : -EIO;
            if (done > 0 && ftruncate(d->fd, (off_t)seg->bytes) < 0)
                LOG_ERROR("deadletter: cannot cut a failed append", "dir=%s first_id=%" PRId64,
                          d->dir, seg->first_id);
            return rc;
        }
        done += (size_t)w;
        size_t k = (size_t)w;
        while (iovcnt > 0 && k >= iov->iov_len) {
            k -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + k;
            iov->iov_len -= k;
        }
    }
    seg->bytes += (int64_t)total;
    d->disk_bytes += (int64_t)total;
    return 0;
}

/* Deletes the oldest segments that hold no live entry, oldest first and never the newest:
 * a later segment may hold the "removed" lines for entries of an earlier one. */
static void segs_trim(struct deadletters *d)
{
    while (d->nsegs > 1 && (d->live == 0 || d->ents[d->head].id >= d->segs[1].first_id)) {
        char path[PATH_MAX];
        if (seg_path(d, d->segs[0].first_id, path, sizeof path) == 0 && unlink(path) < 0 &&
            errno != ENOENT)
            LOG_WARN("deadletter: cannot delete segment", "file=%s error=\"%s\"", path,
                     core_strerror(-errno));
        d->disk_bytes -= d->segs[0].bytes;
        memmove(d->segs, d->segs + 1, (d->nsegs - 1) * sizeof *d->segs);
        d->nsegs--;
    }
}

/* The max_bytes bound: deletes whole oldest segments, dropping their live entries. */
static void enforce_bytes(struct deadletters *d)
{
    while (d->disk_bytes > d->max_bytes && d->nsegs > 1) {
        while (d->live > 0 && d->ents[d->head].id < d->segs[1].first_id) {
            ents_remove(d, d->head);
            d->dropped++;
        }
        segs_trim(d);
    }
}

/* ---- loading ----------------------------------------------------------------------------- */

/* Parses s as exactly one JSON value (no trailing bytes), or returns NULL. */
static cJSON *json_parse_exact(const char *s, size_t n)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(s, n, &end, false);
    if (j && end != s + n) {
        cJSON_Delete(j);
        j = NULL;
    }
    return j;
}

static int json_id(const cJSON *v, int64_t *id)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 1 && v->valuedouble <= MAX_JSON_ID) ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return CORE_E_CORRUPT;
    *id = (int64_t)v->valuedouble;
    return 0;
}

/*
 * Finds the value of the top-level "event" member of a line this file wrote, where it is an
 * object and the last member, so the event's bytes are handed out exactly as they were added
 * (re-printing the parsed tree could change numbers). Outside strings, '"event":' at depth 1
 * can only be that key: a string value is never followed by ':'.
 */
static int find_event(const char *s, size_t n, size_t *off, size_t *len)
{
    int depth = 0;
    bool in_str = false, esc = false;
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            if (depth == 1 && !start && n - i >= 8 && memcmp(s + i, "\"event\":", 8) == 0) {
                start = i + 8;
                i += 7;
            } else {
                in_str = true;
            }
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
            if (depth == 1 && start) {
                if (s[start] != '{' || i + 2 != n)
                    return CORE_E_CORRUPT;
                *off = start;
                *len = i + 1 - start;
                return 0;
            }
        }
    }
    return CORE_E_CORRUPT;
}

static int load_entry(struct deadletters *d, const cJSON *j, const char *s, size_t n,
                      int64_t *max_id)
{
    int64_t id;
    size_t off, len;
    if (json_id(cJSON_GetObjectItemCaseSensitive(j, "id"), &id) < 0 || id <= *max_id ||
        !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "receivedAt")) ||
        !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "source")) ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "errors")) ||
        !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "event")) ||
        find_event(s, n, &off, &len) < 0)
        return CORE_E_CORRUPT;
    struct entry e = {
        .id = id, .line = core_xstrndup(s, n), .line_len = n, .event_off = off, .event_len = len};
    ents_push(d, &e);
    *max_id = id;
    return 0;
}

/* Applies one line: an entry, a "removed" line or a "droppedThrough" line. */
static int load_line(struct deadletters *d, const char *s, size_t n, int64_t *max_id)
{
    int rc = CORE_E_CORRUPT;
    cJSON *j = json_parse_exact(s, n);
    const cJSON *v;
    int64_t id;
    if (!cJSON_IsObject(j))
        goto out;
    if (cJSON_GetObjectItemCaseSensitive(j, "id")) {
        rc = load_entry(d, j, s, n, max_id);
    } else if ((v = cJSON_GetObjectItemCaseSensitive(j, "removed")) && cJSON_IsArray(v)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, v)
        {
            struct entry *e = json_id(it, &id) == 0 ? ents_find_live(d, id) : NULL;
            if (e)
                ents_remove(d, (size_t)(e - d->ents));
        }
        rc = 0;
    } else if (json_id(cJSON_GetObjectItemCaseSensitive(j, "droppedThrough"), &id) == 0) {
        if (id > d->dropped_through)
            d->dropped_through = id;
        rc = 0;
    }
out:
    cJSON_Delete(j);
    return rc;
}

/* Loads one segment file; a torn last line is logged and cut off. */
static int load_segment(struct deadletters *d, int64_t first_id, int64_t *max_id)
{
    char path[PATH_MAX];
    struct core_buf buf;
    core_buf_init(&buf);
    int rc = seg_path(d, first_id, path, sizeof path);
    if (rc < 0)
        goto out;
    rc = core_read_file(path, SIZE_MAX / 2, &buf);
    if (rc < 0)
        goto out;
    size_t pos = 0, bad = 0;
    int64_t lines = 0;
    struct core_buf plain;
    core_buf_init(&plain);
    char ad[96];
    while (pos < buf.len) {
        const char *nl = memchr(buf.data + pos, '\n', buf.len - pos);
        if (!nl) {
            LOG_WARN("deadletter: ignoring a torn last line", "file=%s bytes=%zu", path,
                     buf.len - pos);
            if (truncate(path, (off_t)pos) < 0) {
                rc = -errno;
                goto out;
            }
            buf.len = pos;
            break;
        }
        size_t n = (size_t)(nl - (buf.data + pos));
        const char *line = buf.data + pos;
        if (d->has_key) {
            /* A line that does not open is damaged, tampered with or moved: skipped. */
            core_buf_reset(&plain);
            line_ad(ad, sizeof ad, first_id, lines);
            if (seal_line_open(&d->key, ad, line, n, &plain) < 0) {
                LOG_ERROR("deadletter: line does not authenticate (damaged or tampered with)",
                          "file=%s line=%" PRId64, path, lines);
                line = NULL;
                bad++;
            } else {
                line = plain.data;
                n = plain.len;
            }
        }
        if (line && n > 0 && load_line(d, line, n, max_id) < 0)
            bad++;
        pos = (size_t)(nl - buf.data) + 1;
        lines++;
    }
    if (bad > 0)
        LOG_WARN("deadletter: skipped corrupt lines", "file=%s lines=%zu", path, bad);
    segs_push(d, first_id, (int64_t)buf.len, lines);
out:
    if (plain.data)
        sodium_memzero(plain.data, plain.cap);
    core_buf_dispose(&plain);
    core_buf_dispose(&buf);
    return rc;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Loads every segment in id order and derives the next id. */
static int load_dir(struct deadletters *d)
{
    DIR *dh = opendir(d->dir);
    if (!dh)
        return -errno;
    int64_t *firsts = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        int64_t first_id;
        if (seg_name_parse(de->d_name, &first_id) < 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            firsts = core_xrealloc(firsts, cap * sizeof *firsts);
        }
        firsts[n++] = first_id;
    }
    closedir(dh);
    if (n > 0)
        qsort(firsts, n, sizeof *firsts, cmp_i64);
    int rc = 0;
    int64_t max_id = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = load_segment(d, firsts[i], &max_id);
    if (rc == 0) {
        /* The newest segment is named after an id that was handed out, even if its line
         * never made it to disk: never hand it out again. */
        d->next_id = max_id + 1;
        if (n > 0 && firsts[n - 1] > max_id)
            d->next_id = firsts[n - 1] + 1;
        if (d->dropped_through >= d->next_id)
            d->next_id = d->dropped_through + 1;
    }
    free(firsts);
    return rc;
}

/* After loading: applies the dropped-through mark, then the (possibly smaller) bounds. */
static void load_apply_bounds(struct deadletters *d)
{
    while (d->live > 0 && d->ents[d->head].id <= d->dropped_through)
        ents_remove(d, d->head);
    if (d->live > d->max_entries) {
        while (d->live > d->max_entries) {
            d->dropped_through = d->ents[d->head].id;
            ents_remove(d, d->head);
            d->dropped++;
        }
        char mark[64];
        int n =
            snprintf(mark, sizeof mark, "{\"droppedThrough\":%" PRId64 "}\n", d->dropped_through);
        struct iovec iov = {mark, (size_t)n};
        int rc = seg_append(d, &iov, 1);
        if (rc < 0)
            LOG_WARN("deadletter: cannot record dropped entries", "dir=%s error=\"%s\"", d->dir,
                     core_strerror(rc));
    }
    segs_trim(d);
    enforce_bytes(d);
}

int deadletter_open(const struct deadletter_options *o, struct deadletters **out)
{
    if (!o || !o->dir || !*o->dir || o->max_entries < 1 || o->max_entries > MAX_ENTRIES_LIMIT ||
        o->max_bytes < MIN_BYTES)
        return CORE_E_INVALID;
    int rc = core_mkdirs(o->dir, 0700);
    if (rc < 0)
        return rc;
    struct deadletters *d = core_xcalloc(1, sizeof *d);
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->take_mu, NULL);
    d->dir = core_xstrdup(o->dir);
    if (o->key) {
        d->key = *o->key;
        d->has_key = true;
    }
    d->max_entries = o->max_entries;
    d->max_bytes = o->max_bytes;
    d->seg_limit = o->max_bytes / 4;
    d->fd = -1;
    d->next_id = 1;
    rc = load_dir(d);
    if (rc < 0)
        goto out;
    if (d->nsegs > 0) {
        int64_t size;
        rc = seg_open(d, d->segs[d->nsegs - 1].first_id, &d->fd, &size);
        if (rc < 0)
            goto out;
    }
    load_apply_bounds(d);
    LOG_INFO("deadletter: store opened",
             "dir=%s entries=%" PRId64 " segments=%zu bytes=%" PRId64 " next_id=%" PRId64, d->dir,
             d->live, d->nsegs, d->disk_bytes, d->next_id);
    *out = d;
    d = NULL;
out:
    deadletter_free(d);
    return rc;
}

void deadletter_free(struct deadletters *d)
{
    if (!d)
        return;
    if (d->fd >= 0)
        close(d->fd);
    for (size_t i = d->head; i < d->end; i++)
        free(d->ents[i].line);
    free(d->ents);
    free(d->segs);
    free(d->dir);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->take_mu);
    sodium_memzero(&d->key, sizeof d->key);
    free(d);
}

/* ---- adding ------------------------------------------------------------------------------ */

/* True when s is exactly one JSON object ('{') or array ('[') without line breaks, so that it
 * fits on one NDJSON line and lists as valid JSON. */
static bool json_is_line(const char *s, size_t n, char open)
{
    if (!s || n < 2 || s[0] != open || memchr(s, '\n', n) || memchr(s, '\r', n))
        return false;
    cJSON *j = json_parse_exact(s, n);
    bool ok = open == '{' ? cJSON_IsObject(j) : cJSON_IsArray(j);
    cJSON_Delete(j);
    return ok;
}

int deadletter_add(struct deadletters *d, int64_t received_ms, const char *source,
                   const char *event_json, size_t event_len, const char *errors_json,
                   size_t errors_len, int64_t *id_out)
{
    if (!d || !source || !json_is_line(event_json, event_len, '{') ||
        !json_is_line(errors_json, errors_len, '['))
        return CORE_E_INVALID;
    int rc = 0;
    struct core_buf line;
    core_buf_init(&line);
    pthread_mutex_lock(&d->mu);
    int64_t id = d->next_id;
    core_buf_reserve(&line, event_len + errors_len + strlen(source) + 96);
    core_buf_puts(&line, "{\"id\":");
    core_json_i64(&line, id);
    core_buf_puts(&line, ",\"receivedAt\":");
    core_json_i64(&line, received_ms);
    core_buf_puts(&line, ",\"source\":");
    core_json_cstr(&line, source);
    core_buf_puts(&line, ",\"errors\":");
    core_buf_append(&line, errors_json, errors_len);
    core_buf_puts(&line, ",\"event\":");
    core_buf_append(&line, event_json, event_len);
    core_buf_puts(&line, "}\n");
    if ((int64_t)line.len > d->seg_limit) {
        rc = CORE_E_TOOBIG;
        goto out;
    }
    /* Consumed even if the append fails: part of the line may have reached the disk. */
    d->next_id++;

    /* The max_entries bound: the oldest entries this add pushes out are recorded in the same
     * append, so they stay dropped after a restart even if later takes shrink the store. */
    int64_t ndrop = d->live + 1 > d->max_entries ? d->live + 1 - d->max_entries : 0;
    int64_t through = ndrop > 0 ? ents_nth_live_id(d, ndrop) : d->dropped_through;
    char mark[64];
    size_t mark_len = 0;
    if (ndrop > 0)
        mark_len =
            (size_t)snprintf(mark, sizeof mark, "{\"droppedThrough\":%" PRId64 "}\n", through);

    if (d->nsegs == 0 ||
        (d->segs[d->nsegs - 1].bytes > 0 &&
         d->segs[d->nsegs - 1].bytes + (int64_t)(line.len + mark_len) > d->seg_limit)) {
        rc = seg_start(d, id);
        if (rc < 0)
            goto out;
    }
    struct iovec iov[2] = {{line.data, line.len}, {mark, mark_len}};
    rc = seg_append(d, iov, mark_len ? 2 : 1);
    if (rc < 0)
        goto out;

    struct entry e = {.id = id,
                      .line = core_xrealloc(line.data, line.len + 1),
                      .line_len = line.len - 1,
                      .event_off = line.len - 2 - event_len,
                      .event_len = event_len};
    e.line[e.line_len] = '\0';
    core_buf_init(&line); /* the entry owns the bytes now */
    ents_push(d, &e);
    for (int64_t i = 0; i < ndrop; i++)
        ents_remove(d, d->head);
    d->dropped += ndrop;
    d->dropped_through = through;
    d->total_added++;
    segs_trim(d);
    enforce_bytes(d);
    if (id_out)
        *id_out = id;
out:
    pthread_mutex_unlock(&d->mu);
    core_buf_dispose(&line);
    return rc;
}

/* ---- listing and stats ------------------------------------------------------------------- */

int deadletter_list_json(struct deadletters *d, int64_t after_id, size_t limit,
                         struct core_buf *out)
{
    if (limit > LIST_MAX)
        limit = LIST_MAX;
    size_t count = 0;
    int64_t last = 0;
    pthread_mutex_lock(&d->mu);
    core_buf_puts(out, "{\"deadletters\":[");
    for (size_t i = ents_first_after(d, after_id); i < d->end && count < limit; i++) {
        const struct entry *e = &d->ents[i];
        if (!e->line)
            continue;
        if (count > 0)
            core_buf_putc(out, ',');
        core_buf_append(out, e->line, e->line_len);
        count++;
        last = e->id;
    }
    core_buf_puts(out, "],\"count\":");
    core_json_i64(out, (int64_t)count);
    core_buf_puts(out, ",\"total\":");
    core_json_i64(out, d->live);
    core_buf_puts(out, ",\"dropped\":");
    core_json_i64(out, d->dropped);
    core_buf_puts(out, ",\"nextAfter\":");
    if (count > 0)
        core_json_i64(out, last);
    else
        core_buf_puts(out, "null");
    core_buf_putc(out, '}');
    pthread_mutex_unlock(&d->mu);
    return 0;
}

void deadletter_stats(struct deadletters *d, int64_t *live, int64_t *total_added, int64_t *dropped)
{
    pthread_mutex_lock(&d->mu);
    if (live)
        *live = d->live;
    if (total_added)
        *total_added = d->total_added;
    if (dropped)
        *dropped = d->dropped;
    pthread_mutex_unlock(&d->mu);
}

/* ---- taking (replay) --------------------------------------------------------------------- */

/* Copies of the entries offered to fn in one round, so fn runs without the lock. */
struct take_chunk {
    int64_t ids[TAKE_CHUNK];
    size_t off[TAKE_CHUNK];
    size_t len[TAKE_CHUNK];
    bool ok[TAKE_CHUNK];
    size_t n;
    struct core_buf events;
};

static void chunk_add(struct take_chunk *ch, const struct entry *e)
{
    ch->ids[ch->n] = e->id;
    ch->off[ch->n] = ch->events.len;
    ch->len[ch->n] = e->event_len;
    ch->ok[ch->n] = false;
    core_buf_append(&ch->events, e->line + e->event_off, e->event_len);
    ch->n++;
}

static bool chunk_full(const struct take_chunk *ch)
{
    return ch->n == TAKE_CHUNK || ch->events.len >= TAKE_CHUNK_BYTES;
}

/* Fills the next chunk: from the sorted, distinct want[*wi..] or, when nwant == 0, the live
 * entries after *cursor up to id upto. Called with the lock held. */
static void chunk_fill(struct deadletters *d, struct take_chunk *ch, const int64_t *want,
                       size_t nwant, size_t *wi, int64_t *cursor, int64_t upto)
{
    ch->n = 0;
    core_buf_reset(&ch->events);
    if (nwant == 0) {
        for (size_t i = ents_first_after(d, *cursor);
             i < d->end && d->ents[i].id <= upto && !chunk_full(ch); i++) {
            *cursor = d->ents[i].id;
            if (d->ents[i].line)
                chunk_add(ch, &d->ents[i]);
        }
        return;
    }
    while (*wi < nwant && !chunk_full(ch)) {
        const struct entry *e = ents_find_live(d, want[(*wi)++]);
        if (e)
            chunk_add(ch, e);
    }
}

/* Removes the chunk's accepted entries that are still live, after persisting their ids in
 * one "removed" line. Called with the lock held. Returns how many, or -errno (then none). */
static int chunk_remove(struct deadletters *d, const struct take_chunk *ch)
{
    struct core_buf tomb;
    core_buf_init(&tomb);
    core_buf_puts(&tomb, "{\"removed\":[");
    int n = 0;
    for (size_t i = 0; i < ch->n; i++) {
        if (!ch->ok[i] || !ents_find_live(d, ch->ids[i]))
            continue;
        if (n++ > 0)
            core_buf_putc(&tomb, ',');
        core_json_i64(&tomb, ch->ids[i]);
    }
    core_buf_puts(&tomb, "]}\n");
    int rc = 0;
    if (n > 0) {
        struct iovec iov = {tomb.data, tomb.len};
        rc = seg_append(d, &iov, 1);
    }
    if (n > 0 && rc == 0) {
        for (size_t i = 0; i < ch->n; i++) {
            struct entry *e = ch->ok[i] ? ents_find_live(d, ch->ids[i]) : NULL;
            if (e)
                ents_remove(d, (size_t)(e - d->ents));
        }
        segs_trim(d);
        enforce_bytes(d);
    }
    core_buf_dispose(&tomb);
    return rc < 0 ? rc : n;
}

int deadletter_take(struct deadletters *d, const int64_t *ids, size_t n, deadletter_take_fn fn,
                    void *arg)
{
    if (!d || !fn || (n > 0 && !ids))
        return CORE_E_INVALID;
    /* Sorted and distinct: each entry is offered once, oldest first. */
    int64_t *want = NULL;
    size_t nwant = 0;
    if (n > 0) {
        want = core_xmalloc(n * sizeof *want);
        memcpy(want, ids, n * sizeof *want);
        qsort(want, n, sizeof *want, cmp_i64);
        for (size_t i = 0; i < n; i++)
            if (nwant == 0 || want[i] != want[nwant - 1])
                want[nwant++] = want[i];
    }
    struct take_chunk *ch = core_xcalloc(1, sizeof *ch);
    core_buf_init(&ch->events);
    int rc = 0, removed = 0;
    size_t wi = 0;
    int64_t cursor = 0;

    pthread_mutex_lock(&d->take_mu);
    pthread_mutex_lock(&d->mu);
    int64_t upto = d->next_id - 1; /* entries added during the take are not offered */
    pthread_mutex_unlock(&d->mu);
    for (;;) {
        pthread_mutex_lock(&d->mu);
        chunk_fill(d, ch, want, nwant, &wi, &cursor, upto);
        pthread_mutex_unlock(&d->mu);
        if (ch->n == 0)
            break;
        for (size_t i = 0; i < ch->n; i++)
            ch->ok[i] = fn(arg, ch->ids[i], ch->events.data + ch->off[i], ch->len[i]);
        pthread_mutex_lock(&d->mu);
        rc = chunk_remove(d, ch);
        pthread_mutex_unlock(&d->mu);
        if (rc < 0)
            break;
        removed += rc;
    }
    pthread_mutex_unlock(&d->take_mu);

    core_buf_dispose(&ch->events);
    free(ch);
    free(want);
    return rc < 0 ? rc : removed;
}

/* ---- erasure ----------------------------------------------------------------------------- */

/* The entry id of a plaintext line ({"id":N,...}), or 0 for the other kinds of lines. */
static int64_t line_entry_id(const char *s, size_t n)
{
    cJSON *j = json_parse_exact(s, n);
    int64_t id = 0;
    if (j && json_id(cJSON_GetObjectItemCaseSensitive(j, "id"), &id) < 0)
        id = 0;
    cJSON_Delete(j);
    return id;
}

/* Rewrites segment k without the lines fn matches (sealed again, renumbered), atomically.
 * Returns the number of lines removed or a negative error (the file is then unchanged). */
static int purge_segment(struct deadletters *d, size_t k, deadletter_match_fn fn, void *arg)
{
    struct segment *seg = &d->segs[k];
    char path[PATH_MAX], ad[96];
    struct core_buf buf, plain, kept, out;
    core_buf_init(&buf);
    core_buf_init(&plain);
    core_buf_init(&kept);
    core_buf_init(&out);
    int64_t *gone = NULL;
    size_t ngone = 0, cap = 0;
    int removed = 0;
    int rc = seg_path(d, seg->first_id, path, sizeof path);
    if (rc == 0)
        rc = core_read_file(path, SIZE_MAX / 2, &buf);
    int64_t line = 0, kept_lines = 0;
    for (size_t pos = 0; rc == 0 && pos < buf.len; line++) {
        const char *nl = memchr(buf.data + pos, '\n', buf.len - pos);
        size_t n = nl ? (size_t)(nl - (buf.data + pos)) : buf.len - pos;
        const char *p = buf.data + pos;
        pos += n + 1;
        core_buf_reset(&plain);
        if (d->has_key) {
            line_ad(ad, sizeof ad, seg->first_id, line);
            if (seal_line_open(&d->key, ad, p, n, &plain) < 0) {
                removed++; /* unreadable already; it would not open under a new number */
                continue;
            }
        } else {
            core_buf_append(&plain, p, n);
        }
        if (fn(arg, plain.data, plain.len)) {
            int64_t id = line_entry_id(plain.data, plain.len);
            if (id > 0) {
                if (ngone == cap) {
                    cap = cap ? 2 * cap : 16;
                    gone = core_xrealloc(gone, cap * sizeof *gone);
                }
                gone[ngone++] = id;
            }
            removed++;
            continue;
        }
        if (d->has_key) {
            line_ad(ad, sizeof ad, seg->first_id, kept_lines);
            seal_line(&d->key, ad, plain.data, plain.len, &out);
        } else {
            core_buf_append(&out, plain.data, plain.len);
        }
        core_buf_putc(&out, '\n');
        kept_lines++;
    }
    if (rc == 0 && removed > 0)
        rc = core_write_file_atomic(path, out.data ? out.data : "", out.len, 0600);
    if (rc == 0 && removed > 0) {
        d->disk_bytes += (int64_t)out.len - seg->bytes;
        seg->bytes = (int64_t)out.len;
        seg->lines = kept_lines;
        if (k == d->nsegs - 1 && d->fd >= 0) {
            /* The rename replaced the file the appends go to: reopen it. */
            int fd = -1;
            int64_t size = 0;
            close(d->fd);
            d->fd = seg_open(d, seg->first_id, &fd, &size) == 0 ? fd : -1;
        }
        for (size_t i = 0; i < ngone; i++) {
            struct entry *e = ents_find_live(d, gone[i]);
            if (e)
                ents_remove(d, (size_t)(e - d->ents));
        }
    }
    if (plain.data)
        sodium_memzero(plain.data, plain.cap);
    if (out.data)
        sodium_memzero(out.data, out.cap);
    core_buf_dispose(&plain);
    core_buf_dispose(&kept);
    core_buf_dispose(&out);
    core_buf_dispose(&buf);
    free(gone);
    return rc < 0 ? rc : removed;
}

int deadletter_purge(struct deadletters *d, deadletter_match_fn fn, void *arg)
{
    if (!d || !fn)
        return CORE_E_INVALID;
    int rc = 0, removed = 0;
    pthread_mutex_lock(&d->take_mu);
    pthread_mutex_lock(&d->mu);
    for (size_t k = 0; k < d->nsegs && rc >= 0; k++) {
        rc = purge_segment(d, k, fn, arg);
        if (rc > 0)
            removed += rc;
    }
    if (removed > 0) {
        core_fsync_dir(d->dir);
        segs_trim(d);
    }
    pthread_mutex_unlock(&d->mu);
    pthread_mutex_unlock(&d->take_mu);
    return rc < 0 ? rc : removed;
}
