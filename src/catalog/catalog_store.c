/*
 * The catalog's files in DIR:
 *   journal.ndjson   one line per change, appended (and fsynced) before the change is visible:
 *                    {"op":"put","itemId":..,"item":{canonical item}} or {"op":"del","itemId":..}
 *   snapshot.ndjson  the live items as "put" lines in idx order, replaced atomically
 *                    (temporary file, fsync, rename, fsync of the directory)
 * Opening loads the snapshot, then replays the journal over it. Compaction writes a snapshot
 * and then empties the journal; a crash in between replays a journal whose changes the
 * snapshot already holds, which ends in the same state (each id ends as its last line says).
 */
#include "catalog/catalog_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAPSHOT_NAME "snapshot.ndjson"
#define JOURNAL_NAME "journal.ndjson"
#define COMPACT_MIN_LINES 1000
#define SNAPSHOT_CHUNK (1u << 20) /* the snapshot is written in pieces of about this size */

static int path_of(const struct catalog *c, const char *name, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%s", c->dir, name);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

void cat__store_line(struct core_buf *out, const char *id, size_t id_len,
                     const struct cat_fields *f)
{
    core_buf_puts(out, f ? "{\"op\":\"put\",\"itemId\":" : "{\"op\":\"del\",\"itemId\":");
    core_json_str(out, id, id_len);
    if (f) {
        core_buf_puts(out, ",\"item\":");
        cat__fields_json(f, NULL, 0, out);
    }
    core_buf_puts(out, "}\n");
}

/* ---- loading -------------------------------------------------------------------------------- */

/* Applies one line; CORE_E_CORRUPT when it is not a well-formed change. */
static int load_line(struct catalog *c, const char *s, size_t n)
{
    int rc = CORE_E_CORRUPT;
    cJSON *j = event_json_parse(s, n, NULL);
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(j, "op");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "itemId");
    struct event_error err = {0};
    if (!cJSON_IsObject(j) || !cJSON_IsString(op) || !cJSON_IsString(id) || !id->valuestring ||
        cat__id_check(id->valuestring, strlen(id->valuestring), &err) < 0)
        goto out;
    size_t id_len = strlen(id->valuestring);
    if (!strcmp(op->valuestring, "del")) {
        cat__apply_delete(c, id->valuestring, id_len);
        rc = 0;
    } else if (!strcmp(op->valuestring, "put")) {
        struct cat_fields f;
        if (cat__fields_parse(cJSON_GetObjectItemCaseSensitive(j, "item"), id->valuestring, id_len,
                              true, &f, &err) == 0) {
            cat__apply_put(c, id->valuestring, id_len, &f);
            cat__fields_dispose(&f);
            rc = 0;
        }
    }
out:
    cJSON_Delete(j);
    return rc;
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    }
    return true;
}

/*
 * Loads one file. In the journal, a last line without its newline, or one that does not
 * parse, is a write the crash cut short: it was never acknowledged, so it is logged and cut
 * off. Any other bad line is corruption: refused, naming file and line.
 */
static int load_file(struct catalog *c, const char *name, bool journal)
{
    char path[PATH_MAX];
    struct core_buf buf;
    core_buf_init(&buf);
    int rc = path_of(c, name, path, sizeof path);
    if (rc == 0)
        rc = core_read_file(path, SIZE_MAX / 2, &buf);
    if (rc == -ENOENT) {
        rc = 0;
        goto out;
    }
    if (rc < 0) {
        LOG_ERROR("catalog: cannot read", "file=%s err=\"%s\"", path, core_strerror(rc));
        goto out;
    }
    size_t pos = 0, lineno = 0;
    while (pos < buf.len) {
        const char *s = buf.data + pos;
        const char *nl = memchr(s, '\n', buf.len - pos);
        size_t n = nl ? (size_t)(nl - s) : buf.len - pos;
        bool last = !nl || pos + n + 1 == buf.len;
        lineno++;
        if (blank(s, n)) {
            pos += n + (nl ? 1 : 0);
            continue;
        }
        if (nl && load_line(c, s, n) == 0) {
            pos += n + 1;
            if (journal)
                c->journal_lines++;
            continue;
        }
        if (!journal || !last) {
            LOG_ERROR("catalog: corrupt line; refusing to start (repair or remove the file)",
                      "file=%s line=%zu", path, lineno);
            rc = CORE_E_CORRUPT;
            goto out;
        }
        LOG_WARN("catalog: cutting off a torn last journal line", "file=%s line=%zu bytes=%zu",
                 path, lineno, buf.len - pos);
        if (truncate(path, (off_t)pos) < 0) {
            rc = -errno;
            LOG_ERROR("catalog: cannot truncate", "file=%s err=\"%s\"", path, core_strerror(rc));
            goto out;
        }
        buf.len = pos;
    }
    if (journal)
        c->journal_bytes = (int64_t)buf.len;
out:
    core_buf_dispose(&buf);
    return rc;
}

int cat__store_open(struct catalog *c)
{
    char path[PATH_MAX];
    int rc = core_mkdirs(c->dir, 0700);
    if (rc < 0) {
        LOG_ERROR("catalog: cannot create directory", "dir=%s err=\"%s\"", c->dir,
                  core_strerror(rc));
        return rc;
    }
    if ((rc = load_file(c, SNAPSHOT_NAME, false)) < 0 ||
        (rc = load_file(c, JOURNAL_NAME, true)) < 0 ||
        (rc = path_of(c, JOURNAL_NAME, path, sizeof path)) < 0)
        return rc;
    bool existed = access(path, F_OK) == 0;
    c->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (c->fd < 0) {
        rc = -errno;
        LOG_ERROR("catalog: cannot open the journal", "file=%s err=\"%s\"", path,
                  core_strerror(rc));
        return rc;
    }
    if (!existed && (rc = core_fsync_dir(c->dir)) < 0)
        return rc;
    cat__store_maybe_compact(c);
    return 0;
}

void cat__store_close(struct catalog *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* ---- appending ------------------------------------------------------------------------------ */

int cat__store_append(struct catalog *c, const char *lines, size_t len, int64_t nlines)
{
    if (!c->dir)
        return 0;
    int rc = core_write_full(c->fd, lines, len, -1);
    if (rc == 0 && c->fsync && fdatasync(c->fd) < 0)
        rc = -errno;
    if (rc < 0) {
        /* Cut back what was written, so later lines do not follow a partial one and no
         * change that was refused comes back on the next start. */
        if (ftruncate(c->fd, (off_t)c->journal_bytes) < 0)
            LOG_ERROR("catalog: cannot cut a failed journal append", "dir=%s", c->dir);
        LOG_ERROR("catalog: journal append failed", "dir=%s err=\"%s\"", c->dir, core_strerror(rc));
        return rc;
    }
    c->journal_bytes += (int64_t)len;
    c->journal_lines += nlines;
    return 0;
}

/* ---- compaction ----------------------------------------------------------------------------- */

/* Streams the live items into path.tmp (a large catalog is never held twice in memory),
 * fsyncs it and renames it over path: core_write_file_atomic's steps, in pieces. */
static int write_snapshot(struct catalog *c, const char *path, int64_t *bytes)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = 0;
    struct core_buf chunk;
    core_buf_init(&chunk);
    *bytes = 0;
    for (uint32_t idx = 0; idx < c->nslots && rc == 0; idx++) {
        const struct catalog_item *it = c->slots[idx].item;
        if (it) {
            struct cat_fields f;
            cat__item_fields(c, it, &f);
            cat__store_line(&chunk, it->id, it->id_len, &f);
        }
        if (chunk.len >= SNAPSHOT_CHUNK || (idx + 1 == c->nslots && chunk.len > 0)) {
            rc = core_write_full(fd, chunk.data, chunk.len, -1);
            *bytes += (int64_t)chunk.len;
            core_buf_reset(&chunk);
        }
    }
    core_buf_dispose(&chunk);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        return rc;
    }
    return core_fsync_dir(c->dir);
}

void cat__store_maybe_compact(struct catalog *c)
{
    int64_t live = atomic_load(&c->live);
    int64_t limit = 2 * live > COMPACT_MIN_LINES ? 2 * live : COMPACT_MIN_LINES;
    if (!c->dir || c->journal_lines <= limit || c->journal_lines <= c->compact_at)
        return;
    char path[PATH_MAX];
    int64_t t0 = core_mono_ns(), bytes = 0;
    int rc = path_of(c, SNAPSHOT_NAME, path, sizeof path);
    if (rc == 0)
        rc = write_snapshot(c, path, &bytes);
    /* The snapshot holds every change now: the journal may go (O_APPEND writes follow). If
     * the emptying is lost in a crash, the replay over the snapshot changes nothing. */
    if (rc == 0 && ftruncate(c->fd, 0) < 0)
        rc = -errno;
    if (rc < 0) {
        /* Retried once the journal has doubled, not on every write. */
        c->compact_at = 2 * c->journal_lines;
        LOG_WARN("catalog: compaction failed; the journal keeps growing", "dir=%s err=\"%s\"",
                 c->dir, core_strerror(rc));
        return;
    }
    LOG_INFO("catalog: compacted",
             "dir=%s items=%" PRId64 " journal_lines=%" PRId64 " snapshot_bytes=%" PRId64
             " took_ms=%lld",
             c->dir, live, c->journal_lines, bytes, (long long)((core_mono_ns() - t0) / 1000000));
    c->journal_lines = 0;
    c->journal_bytes = 0;
    c->compact_at = 0;
    if (fdatasync(c->fd) < 0)
        LOG_WARN("catalog: cannot fsync the emptied journal", "dir=%s err=\"%s\"", c->dir,
                 core_strerror(-errno));
}
