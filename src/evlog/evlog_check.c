/*
 * evlog_file_check: an offline verifier of a file log. Unlike recovery at open, which trusts
 * rolled segments, it reads every frame of every segment, checks offsets run on without gaps
 * across segments, and compares each index file with one rebuilt from the segment.
 */
#include "evlog/evlog_file_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct checker {
    evlog_check_fn report;
    void *arg;
    int problems;
    struct userkeys *keys;
    int64_t erased;
    struct core_buf scratch; /* a writable copy of the frame being opened */
};

static void problem(struct checker *ck, const char *file, int64_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void problem(struct checker *ck, const char *file, int64_t pos, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    ck->problems++;
    if (ck->report)
        ck->report(ck->arg, file, pos, what);
}

static bool index_equal(const struct evlog_seg_info *a, const struct evlog_index *ia,
                        const struct evlog_seg_info *b, const struct evlog_index *ib)
{
    if (memcmp(a, b, sizeof *a) != 0 || ia->n != ib->n)
        return false;
    for (size_t i = 0; i < ia->n; i++) {
        if (ia->e[i].rel != ib->e[i].rel || ia->e[i].pos != ib->e[i].pos ||
            ia->e[i].max_ingest_before != ib->e[i].max_ingest_before)
            return false;
    }
    return true;
}

/* Compares the segment's index file, if any, with what its frames give. */
static void check_index(struct checker *ck, const struct evlog_segment *seg,
                        const struct evlog_seg_info *info, const struct evlog_index *idx)
{
    struct core_buf b;
    core_buf_init(&b);
    struct evlog_seg_info got = {0};
    struct evlog_index gidx;
    evlog__index_init(&gidx);
    int rc = core_read_file(seg->idx_path, 256u * 1024 * 1024, &b);
    if (rc == -ENOENT)
        goto out;
    if (rc == 0)
        rc = evlog__index_decode((const uint8_t *)b.data, b.len, seg->info.base, &got, &gidx);
    if (rc < 0) {
        problem(ck, seg->idx_path, 0, "index file unreadable: %s", core_strerror(rc));
        goto out;
    }
    if (!index_equal(&got, &gidx, info, idx))
        problem(ck, seg->idx_path, 0, "index does not match its segment");
out:
    evlog__index_dispose(&gidx);
    core_buf_dispose(&b);
}

/* Opens every valid frame of map[from, to) with its key: reports the ones that do not
 * authenticate, counts the shredded ones. */
static void check_seals(struct checker *ck, const struct evlog_segment *seg, int32_t p,
                        const uint8_t *map, int64_t from, int64_t to)
{
    int64_t pos = from;
    while (pos < to) {
        struct evlog_record rec;
        size_t flen = 0;
        if (evlog__frame_decode(map + pos, (size_t)(to - pos), &rec, &flen) != 0)
            return;
        core_buf_reset(&ck->scratch);
        core_buf_append(&ck->scratch, map + pos, flen);
        uint8_t *f = (uint8_t *)ck->scratch.data;
        evlog__frame_decode(f, flen, &rec, &flen);
        const char *why = NULL;
        int rc = evlog__frame_open(f, flen, p, ck->keys, &rec, &why);
        if (rc == EVLOG__FRAME_ERASED)
            ck->erased++;
        else if (rc < 0)
            problem(ck, seg->path, pos, "record offset %" PRId64 ": %s", rec.offset, why);
        pos += (int64_t)flen;
    }
}

/* Walks every frame of a mapped segment, reporting each damaged stretch and offset jump.
 * Returns the number of problems found in it. */
static int check_frames(struct checker *ck, const struct evlog_segment *seg, int32_t p,
                        const uint8_t *map, int64_t size, struct evlog_seg_info *info,
                        struct evlog_index *idx)
{
    int before = ck->problems;
    int64_t pos = 0;
    while (pos < size) {
        const char *why;
        int64_t bad = evlog__scan_frames(map, size, pos, info, idx, &why);
        check_seals(ck, seg, p, map, pos, bad);
        if (bad >= size)
            break;
        int64_t next = evlog__scan_find_valid(map, size, bad + 1, 0);
        struct evlog_record rec;
        size_t flen;
        if (evlog__frame_decode(map + bad, (size_t)(size - bad), &rec, &flen) == 0) {
            problem(ck, seg->path, bad, "record offset %" PRId64 " where %" PRId64 " expected",
                    rec.offset, info->end);
            next = bad;
        } else {
            problem(ck, seg->path, bad, "%s; %" PRId64 " bytes unreadable", why,
                    (next < 0 ? size : next) - bad);
        }
        if (next < 0)
            break;
        /* Resynchronise on the next valid frame and carry on from its offset. */
        evlog__frame_decode(map + next, (size_t)(size - next), &rec, &flen);
        check_seals(ck, seg, p, map, next, next + (int64_t)flen);
        info->end = rec.offset;
        evlog__seg_account(info, idx, next, rec.ingest_time_ms, (uint32_t)flen);
        pos = next + (int64_t)flen;
    }
    return ck->problems - before;
}

/* Checks one segment; *prev_end is the offset the previous segment ended at (-1: first). */
static void check_segment(struct checker *ck, const struct evlog_segment *seg, int32_t p,
                          int64_t *prev_end)
{
    if (*prev_end >= 0 && seg->info.base != *prev_end)
        problem(ck, seg->path, 0,
                "segment starts at offset %" PRId64 ", previous ended at %" PRId64, seg->info.base,
                *prev_end);
    const uint8_t *map = NULL;
    int64_t size = 0;
    struct evlog_seg_info info = {.base = seg->info.base, .end = seg->info.base};
    struct evlog_index idx;
    evlog__index_init(&idx);
    int fd = open(seg->path, O_RDONLY | O_CLOEXEC);
    int rc = fd < 0 ? -errno : evlog__map_file(fd, &map, &size);
    if (rc < 0) {
        problem(ck, seg->path, 0, "cannot read segment: %s", core_strerror(rc));
        goto out;
    }
    int before = ck->problems;
    check_frames(ck, seg, p, map, size, &info, &idx);
    if (ck->problems == before)
        check_index(ck, seg, &info, &idx);
    *prev_end = info.end;
out:
    evlog__unmap(map, size);
    if (fd >= 0)
        close(fd);
    evlog__index_dispose(&idx);
}

static void check_partition(struct checker *ck, const char *dir, int32_t p)
{
    struct core_buf pdir;
    core_buf_init(&pdir);
    core_buf_printf(&pdir, "%s/%d", dir, (int)p);
    int64_t *bases = NULL;
    size_t n = 0;
    int rc = evlog__segment_list(pdir.data, &bases, &n);
    if (rc < 0)
        problem(ck, pdir.data, 0, "cannot list partition: %s", core_strerror(rc));
    int64_t prev_end = -1;
    for (size_t i = 0; i < n; i++) {
        struct evlog_segment *seg = evlog__segment_new(pdir.data, bases[i]);
        check_segment(ck, seg, p, &prev_end);
        evlog__segment_free(seg);
    }
    free(bases);
    core_buf_dispose(&pdir);
}

int evlog_file_check(const char *dir, struct userkeys *keys, evlog_check_fn report, void *arg,
                     int64_t *erased)
{
    struct checker ck = {.report = report, .arg = arg, .keys = keys};
    if (!keys)
        return CORE_E_INVALID;
    int32_t partitions = 0;
    int rc = evlog__meta_load(dir, &partitions, false);
    if (rc < 0)
        return rc;
    core_buf_init(&ck.scratch);
    for (int32_t p = 0; p < partitions; p++)
        check_partition(&ck, dir, p);
    core_buf_dispose(&ck.scratch);
    if (erased)
        *erased = ck.erased;
    return ck.problems;
}
