/*
 * Segment files of the evlog file backend: naming, listing, verifying scans, recovery of
 * a partition's last segment, index files, the meta file and reader file handles.
 */
#include "evlog/evlog_file_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* 1: plaintext records (before encryption at rest); 2: sealed records (evlog_seal.c). */
#define META_FORMAT 2
#define INDEX_FILE_MAX (256 * 1024 * 1024)

/* ---- naming and listing ----------------------------------------------------------------- */

static char *seg_file_path(const char *part_dir, int64_t base, const char *ext)
{
    struct core_buf b;
    core_buf_init(&b);
    core_buf_printf(&b, "%s/%020" PRId64 "%s", part_dir, base, ext);
    return b.data;
}

struct evlog_segment *evlog__segment_new(const char *part_dir, int64_t base)
{
    struct evlog_segment *seg = core_xcalloc(1, sizeof *seg);
    seg->path = seg_file_path(part_dir, base, ".seg");
    seg->idx_path = seg_file_path(part_dir, base, ".idx");
    seg->info.base = base;
    seg->info.end = base;
    evlog__index_init(&seg->idx);
    seg->fd = -1;
    seg->created_ms = core_now_ms();
    return seg;
}

void evlog__segment_free(struct evlog_segment *seg)
{
    if (!seg)
        return;
    if (seg->fd >= 0)
        close(seg->fd);
    evlog__index_dispose(&seg->idx);
    free(seg->path);
    free(seg->idx_path);
    free(seg);
}

int evlog__segment_create(struct evlog_segment *seg, const char *part_dir)
{
    int fd = open(seg->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        int rc = -errno;
        LOG_ERROR("evlog: cannot create segment", "file=%s err=\"%s\"", seg->path,
                  core_strerror(rc));
        return rc;
    }
    seg->fd = fd;
    seg->writable = true;
    seg->created_ms = core_now_ms();
    return core_fsync_dir(part_dir);
}

/* "<20 digits>.seg" -> base; false for any other name. */
static bool parse_seg_name(const char *name, int64_t *base)
{
    if (strlen(name) != 24 || strcmp(name + 20, ".seg") != 0)
        return false;
    char digits[21];
    memcpy(digits, name, 20);
    digits[20] = '\0';
    return core_parse_i64(digits, 0, INT64_MAX, base) == 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int evlog__segment_list(const char *part_dir, int64_t **bases, size_t *n)
{
    DIR *d = opendir(part_dir);
    if (!d)
        return -errno;
    int64_t *v = NULL;
    size_t len = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int64_t base;
        if (!parse_seg_name(de->d_name, &base))
            continue;
        if (len == cap) {
            cap = cap ? cap * 2 : 16;
            v = core_xrealloc(v, cap * sizeof *v);
        }
        v[len++] = base;
    }
    closedir(d);
    if (len)
        qsort(v, len, sizeof *v, cmp_i64);
    *bases = v;
    *n = len;
    return 0;
}

/* ---- mapping and scanning ---------------------------------------------------------------- */

int evlog__map_file(int fd, const uint8_t **map, int64_t *size)
{
    struct stat st;
    *map = NULL;
    *size = 0;
    if (fstat(fd, &st) < 0)
        return -errno;
    *size = st.st_size;
    if (st.st_size == 0)
        return 0;
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED)
        return -errno;
    *map = m;
    return 0;
}

void evlog__unmap(const uint8_t *map, int64_t size)
{
    if (map)
        munmap((void *)map, (size_t)size);
}

int64_t evlog__scan_frames(const uint8_t *map, int64_t size, int64_t pos,
                           struct evlog_seg_info *info, struct evlog_index *idx, const char **why)
{
    while (pos < size) {
        struct evlog_record rec;
        size_t flen;
        int rc = evlog__frame_decode(map + pos, (size_t)(size - pos), &rec, &flen);
        if (rc != 0) {
            *why = evlog__frame_error(map + pos, (size_t)(size - pos));
            return pos;
        }
        if (rec.offset != info->end) {
            *why = "offset out of sequence";
            return pos;
        }
        evlog__seg_account(info, idx, pos, rec.ingest_time_ms, (uint32_t)flen);
        pos += (int64_t)flen;
    }
    return size;
}

int64_t evlog__scan_find_valid(const uint8_t *map, int64_t size, int64_t pos, int64_t min_offset)
{
    while (map && pos < size) {
        const uint8_t *m = memchr(map + pos, EVLOG_FRAME_MAGIC, (size_t)(size - pos));
        if (!m)
            return -1;
        pos = m - map;
        struct evlog_record rec;
        size_t flen;
        if (evlog__frame_decode(m, (size_t)(size - pos), &rec, &flen) == 0 &&
            rec.offset >= min_offset)
            return pos;
        pos++;
    }
    return -1;
}

/* ---- loading and recovery ----------------------------------------------------------------- */

/* Loads seg's index file if it describes exactly the size bytes of the segment. */
static int load_index_file(struct evlog_segment *seg, int64_t size)
{
    struct core_buf b;
    core_buf_init(&b);
    struct evlog_seg_info info;
    struct evlog_index idx;
    int rc = core_read_file(seg->idx_path, INDEX_FILE_MAX, &b);
    if (rc < 0)
        goto out;
    rc = evlog__index_decode((const uint8_t *)b.data, b.len, seg->info.base, &info, &idx);
    if (rc < 0)
        goto out;
    if (info.size != size) {
        evlog__index_dispose(&idx);
        rc = CORE_E_CORRUPT;
        goto out;
    }
    evlog__index_dispose(&seg->idx);
    seg->info = info;
    seg->idx = idx;
out:
    core_buf_dispose(&b);
    return rc;
}

/*
 * Scans the whole segment file fd into seg. Returns the position of the first invalid frame
 * (== *size when clean) or a negative error; *why explains an invalid frame and *next_valid
 * is where a later valid frame (offset past the valid prefix) starts, or -1.
 */
static int64_t scan_segment(struct evlog_segment *seg, int fd, int64_t *size, const char **why,
                            int64_t *next_valid)
{
    const uint8_t *map = NULL;
    int rc = evlog__map_file(fd, &map, size);
    if (rc < 0)
        return rc;
    struct evlog_seg_info info = {.base = seg->info.base, .end = seg->info.base};
    struct evlog_index idx;
    evlog__index_init(&idx);
    int64_t bad = evlog__scan_frames(map, *size, 0, &info, &idx, why);
    *next_valid = bad < *size ? evlog__scan_find_valid(map, *size, bad, info.end) : -1;
    evlog__unmap(map, *size);
    evlog__index_dispose(&seg->idx);
    seg->info = info;
    seg->idx = idx;
    return bad;
}

int evlog__segment_load(struct evlog_segment *seg, bool read_only)
{
    struct stat st;
    if (stat(seg->path, &st) < 0)
        return -errno;
    if (load_index_file(seg, st.st_size) == 0)
        return 0;
    int fd = open(seg->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int64_t size, next_valid;
    const char *why = NULL;
    int64_t bad = scan_segment(seg, fd, &size, &why, &next_valid);
    close(fd);
    if (bad < 0)
        return (int)bad;
    if (bad < size) {
        /* A rolled segment was fsynced before the next one was created: any damage in it
         * is corruption, never a torn write. */
        LOG_ERROR("evlog: corrupt record in rolled segment",
                  "file=%s position=%" PRId64 " reason=\"%s\" bytes_after=%" PRId64, seg->path, bad,
                  why, size - bad);
        if (!read_only)
            return CORE_E_CORRUPT;
        return 0;
    }
    if (read_only)
        return 0;
    int rc = evlog__segment_write_index(seg);
    if (rc == 0)
        LOG_INFO("evlog: rebuilt segment index", "file=%s records=%" PRId64, seg->idx_path,
                 seg->info.end - seg->info.base);
    return rc;
}

static int truncate_tail(struct evlog_segment *seg, int fd, int64_t bad, int64_t size,
                         const char *why)
{
    if (ftruncate(fd, bad) < 0 || fdatasync(fd) < 0) {
        int rc = -errno;
        LOG_ERROR("evlog: cannot truncate torn tail", "file=%s err=\"%s\"", seg->path,
                  core_strerror(rc));
        return rc;
    }
    LOG_WARN("evlog: truncated torn tail",
             "file=%s position=%" PRId64 " dropped_bytes=%" PRId64 " reason=\"%s\"", seg->path, bad,
             size - bad, why);
    return 0;
}

int evlog__segment_recover(struct evlog_segment *seg, bool read_only)
{
    int fd = open(seg->path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = 0;
    int64_t size, next_valid;
    const char *why = NULL;
    int64_t bad = scan_segment(seg, fd, &size, &why, &next_valid);
    if (bad < 0) {
        rc = (int)bad;
        goto out;
    }
    if (bad < size && next_valid >= 0 && read_only) {
        LOG_WARN("evlog: corrupt record followed by valid records; reading stops before it",
                 "file=%s position=%" PRId64 " reason=\"%s\" next_valid_position=%" PRId64,
                 seg->path, bad, why, next_valid);
        goto out;
    }
    if (bad < size && next_valid >= 0) {
        LOG_ERROR("evlog: corrupt record followed by valid records; refusing to open",
                  "file=%s position=%" PRId64 " reason=\"%s\" next_valid_position=%" PRId64,
                  seg->path, bad, why, next_valid);
        rc = CORE_E_CORRUPT;
        goto out;
    }
    if (bad < size && read_only) {
        LOG_WARN("evlog: torn tail (left in place, read-only)",
                 "file=%s position=%" PRId64 " bytes=%" PRId64, seg->path, bad, size - bad);
    } else if (bad < size) {
        rc = truncate_tail(seg, fd, bad, size, why);
        if (rc < 0)
            goto out;
    }
    /* The active segment's index lives in memory; a file left by an interrupted roll would
     * go stale as soon as records are appended. */
    if (!read_only && unlink(seg->idx_path) < 0 && errno != ENOENT) {
        rc = -errno;
        goto out;
    }
    if (seg->info.end > seg->info.base)
        seg->created_ms = seg->info.first_ingest_ms < seg->created_ms ? seg->info.first_ingest_ms
                                                                      : seg->created_ms;
    if (!read_only) {
        seg->fd = fd;
        seg->writable = true;
        fd = -1;
    }
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

int evlog__segment_write_index(const struct evlog_segment *seg)
{
    struct core_buf b;
    core_buf_init(&b);
    evlog__index_encode(&seg->info, &seg->idx, &b);
    int rc = core_write_file_atomic(seg->idx_path, b.data, b.len, 0644);
    if (rc < 0)
        LOG_ERROR("evlog: cannot write segment index", "file=%s err=\"%s\"", seg->idx_path,
                  core_strerror(rc));
    core_buf_dispose(&b);
    return rc;
}

/* ---- meta ------------------------------------------------------------------------------- */

static int meta_parse(const char *text, int64_t *format, int64_t *partitions)
{
    char fmt[32], parts[32];
    if (sscanf(text, "recstream-evlog\nformat=%31[0-9]\npartitions=%31[0-9]\n", fmt, parts) != 2)
        return CORE_E_CORRUPT;
    if (core_parse_i64(fmt, 0, INT32_MAX, format) < 0 ||
        core_parse_i64(parts, 1, INT32_MAX, partitions) < 0)
        return CORE_E_CORRUPT;
    return 0;
}

int evlog__meta_load(const char *dir, int32_t *partitions, bool create)
{
    struct core_buf path, text;
    core_buf_init(&path);
    core_buf_init(&text);
    core_buf_printf(&path, "%s/meta", dir);
    int64_t format = 0, have = 0;
    int rc = core_read_file(path.data, 4096, &text);
    if (rc == -ENOENT && create && *partitions > 0) {
        core_buf_reset(&text);
        core_buf_printf(&text, "recstream-evlog\nformat=%d\npartitions=%d\n", META_FORMAT,
                        (int)*partitions);
        rc = core_write_file_atomic(path.data, text.data, text.len, 0644);
        goto out;
    }
    if (rc == -ENOENT && create) {
        LOG_ERROR("evlog: a new log needs a partition count", "dir=%s", dir);
        rc = CORE_E_INVALID;
        goto out;
    }
    if (rc == -ENOENT) {
        LOG_ERROR("evlog: no log here (meta file missing)", "dir=%s", dir);
        rc = CORE_E_NOTFOUND;
        goto out;
    }
    if (rc == 0)
        rc = meta_parse(text.data, &format, &have);
    if (rc < 0) {
        LOG_ERROR("evlog: cannot read meta", "file=%s err=\"%s\"", path.data, core_strerror(rc));
        goto out;
    }
    if (format == 1) {
        LOG_ERROR("evlog: this log was written unencrypted by an older recstream (format 1); "
                  "this version only reads sealed logs (format 2). Keep the old binary for "
                  "this data directory, or start with a new one (docs/OPERATIONS.md, "
                  "\"Encryption at rest\")",
                  "file=%s", path.data);
        rc = CORE_E_INVALID;
        goto out;
    }
    if (format != META_FORMAT) {
        LOG_ERROR("evlog: unsupported log format", "file=%s format=%" PRId64, path.data, format);
        rc = CORE_E_INVALID;
        goto out;
    }
    if (*partitions > 0 && have != *partitions) {
        LOG_ERROR("evlog: partition count differs from the existing log",
                  "dir=%s existing=%" PRId64 " requested=%d", dir, have, (int)*partitions);
        rc = CORE_E_INVALID;
        goto out;
    }
    *partitions = (int32_t)have;
out:
    core_buf_dispose(&path);
    core_buf_dispose(&text);
    return rc;
}

/* ---- reader file handles ---------------------------------------------------------------- */

int evlog__segment_acquire(struct evlog_part *part, struct evlog_segment *seg)
{
    if (seg->fd < 0) {
        int fd = open(seg->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            int rc = -errno;
            LOG_ERROR("evlog: cannot open segment", "file=%s err=\"%s\"", seg->path,
                      core_strerror(rc));
            return rc;
        }
        seg->fd = fd;
        part->open_rolled++;
    }
    seg->readers++;
    seg->last_use = ++part->use_clock;
    evlog__part_trim_fds(part);
    return 0;
}

void evlog__segment_release(struct evlog_part *part, struct evlog_segment *seg)
{
    (void)part;
    seg->readers--;
}

void evlog__part_trim_fds(struct evlog_part *part)
{
    while (part->open_rolled > EVLOG_OPEN_ROLLED_MAX) {
        struct evlog_segment *victim = NULL;
        for (size_t i = 0; i < part->nsegs; i++) {
            struct evlog_segment *seg = part->segs[i];
            if (seg->fd >= 0 && !seg->writable && seg->readers == 0 &&
                (!victim || seg->last_use < victim->last_use))
                victim = seg;
        }
        if (!victim)
            return; /* all busy: over the soft limit until readers finish */
        close(victim->fd);
        victim->fd = -1;
        part->open_rolled--;
    }
}
