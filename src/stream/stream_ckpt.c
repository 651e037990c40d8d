/*
 * The checkpoint store: one directory per checkpoint, <dir>/<seq as 20 digits>/, holding
 * p<N>.snap (state_shard_snapshot of partition N) and a MANIFEST:
 *
 *   recstream-checkpoint 1
 *   partitions <P>
 *   p <N> <next offset> <snapshot bytes> <xxh3-64 of the snapshot, 16 hex>    (P lines)
 *   total <xxh3-64 of every byte above this line, 16 hex>
 *
 * A checkpoint is built in <seq>.tmp/, every file and the directory fsynced, then renamed to
 * <seq> and the parent fsynced, so a crash leaves either no checkpoint or a complete one.
 * Recovery still verifies every checksum: a disk can lose or damage files after the fact.
 *
 * Every file is sealed whole under the data key (seal_file: secretstream, so truncation and
 * reordering are detected) with the associated data "recstream checkpoint <seq> <file name>",
 * so a file moved to another checkpoint or partition fails to open. Sizes and checksums in
 * the MANIFEST are those of the plaintext snapshots.
 */
#include "stream/stream_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define CKPT_FORMAT 2 /* 2: sealed files */
#define CKPT_NAME_LEN 20
#define MANIFEST_MAX (1u << 20)

static bool is_ckpt_name(const char *name)
{
    if (strlen(name) != CKPT_NAME_LEN)
        return false;
    for (const char *c = name; *c; c++)
        if (*c < '0' || *c > '9')
            return false;
    return true;
}

static int write_file(const char *path, const void *data, size_t n);

static void file_ad(char *ad, size_t size, uint64_t seq, const char *name)
{
    snprintf(ad, size, "recstream checkpoint %" PRIu64 " %s", seq, name);
}

/* Writes data sealed under key (AD names checkpoint seq and file name) to dir/name. */
static int write_sealed(const char *dir, uint64_t seq, const char *name, const struct seal_key *key,
                        const void *data, size_t n, struct core_buf *scratch)
{
    char path[1300], ad[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    file_ad(ad, sizeof ad, seq, name);
    seal_file(key, ad, data, n, scratch);
    return write_file(path, scratch->data, scratch->len);
}

/* Reads and opens dir/name (sealed, at most plain_max plaintext bytes) into out. */
static int read_sealed(const char *dir, uint64_t seq, const char *name, const struct seal_key *key,
                       size_t plain_max, struct core_buf *scratch, struct core_buf *out)
{
    char path[1300], ad[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    file_ad(ad, sizeof ad, seq, name);
    int rc = core_read_file(path, seal_file_size(plain_max) + 1, scratch);
    if (rc < 0) {
        LOG_WARN("checkpoint file unreadable", "path=%s err=\"%s\"", path, core_strerror(rc));
        return rc;
    }
    rc = seal_file_open(key, ad, scratch->data, scratch->len, out);
    if (rc < 0)
        LOG_ERROR("checkpoint file does not authenticate (damaged, tampered with, moved, or "
                  "another data key)",
                  "path=%s", path);
    return rc;
}

static int write_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = core_write_full(fd, data, n, -1);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* Removes a checkpoint directory (flat: files only). Missing is fine. */
static int remove_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *de;
    char file[1200];
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(file, sizeof file, "%s/%s", path, de->d_name);
        unlink(file);
    }
    closedir(d);
    return rmdir(path) < 0 ? -errno : 0;
}

static int cmp_u64_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The checkpoint numbers in dir, newest first (*out malloc'd). Missing dir: none. */
static int list_ckpts(const char *dir, uint64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!is_ckpt_name(de->d_name))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = core_xrealloc(*out, cap * sizeof **out);
        }
        (*out)[(*n)++] = strtoull(de->d_name, NULL, 10);
    }
    closedir(d);
    if (*n > 1)
        qsort(*out, *n, sizeof **out, cmp_u64_desc);
    return 0;
}

/* Deletes checkpoints beyond the newest keep and any leftover *.tmp directory. */
static void prune(const char *dir, int keep)
{
    uint64_t *seqs;
    size_t n;
    char path[1200];
    if (list_ckpts(dir, &seqs, &n) == 0) {
        for (size_t i = keep > 0 ? (size_t)keep : 1; i < n; i++) {
            snprintf(path, sizeof path, "%s/%020" PRIu64, dir, seqs[i]);
            int rc = remove_dir(path);
            if (rc < 0)
                LOG_WARN("cannot delete old checkpoint", "dir=%s err=\"%s\"", path,
                         core_strerror(rc));
        }
        free(seqs);
    }
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len == CKPT_NAME_LEN + 4 && !strcmp(de->d_name + CKPT_NAME_LEN, ".tmp")) {
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            remove_dir(path);
        }
    }
    closedir(d);
    core_fsync_dir(dir);
}

int stream__ckpt_write(const char *dir, uint64_t seq, const struct stream__snap *snaps,
                       int32_t nparts, int keep, const struct seal_key *key)
{
    char tmp[1200], final[1200], file[1300];
    struct core_buf man, sealed;
    core_buf_init(&man);
    core_buf_init(&sealed);
    int64_t t0 = core_mono_ns();
    size_t total_bytes = 0;
    int rc = core_mkdirs(dir, 0700);
    if (rc < 0)
        goto out;
    snprintf(tmp, sizeof tmp, "%s/%020" PRIu64 ".tmp", dir, seq);
    snprintf(final, sizeof final, "%s/%020" PRIu64, dir, seq);
    remove_dir(tmp);
    if (mkdir(tmp, 0700) < 0) {
        rc = -errno;
        goto out;
    }
    core_buf_printf(&man, "recstream-checkpoint %d\npartitions %d\n", CKPT_FORMAT, (int)nparts);
    for (int32_t p = 0; p < nparts; p++) {
        snprintf(file, sizeof file, "p%d.snap", (int)p);
        rc = write_sealed(tmp, seq, file, key, snaps[p].data, snaps[p].len, &sealed);
        if (rc < 0)
            goto out;
        total_bytes += snaps[p].len;
        core_buf_printf(&man, "p %d %lld %zu %016llx\n", (int)p, (long long)snaps[p].offset,
                        snaps[p].len, (unsigned long long)XXH3_64bits(snaps[p].data, snaps[p].len));
    }
    core_buf_printf(&man, "total %016llx\n", (unsigned long long)XXH3_64bits(man.data, man.len));
    rc = write_sealed(tmp, seq, "MANIFEST", key, man.data, man.len, &sealed);
    if (rc < 0)
        goto out;
    rc = core_fsync_dir(tmp);
    if (rc < 0)
        goto out;
    if (rename(tmp, final) < 0) {
        rc = -errno;
        goto out;
    }
    rc = core_fsync_dir(dir);
    if (rc < 0)
        goto out;
    LOG_INFO("checkpoint written", "dir=%s partitions=%d bytes=%zu took_ms=%lld", final,
             (int)nparts, total_bytes + man.len, (long long)((core_mono_ns() - t0) / 1000000));
    prune(dir, keep);
out:
    if (rc < 0) {
        LOG_ERROR("checkpoint failed", "dir=%s err=\"%s\"", dir, core_strerror(rc));
        remove_dir(tmp);
    }
    core_buf_dispose(&man);
    core_buf_dispose(&sealed);
    return rc;
}

/* ---- recovery ------------------------------------------------------------------------------ */

struct manifest_part {
    int64_t offset;
    size_t size;
    uint64_t hash;
};

/* Parses and verifies MANIFEST text; parts gets nparts entries. */
static int parse_manifest(const char *path, const struct core_buf *b, int32_t nparts,
                          struct manifest_part *parts)
{
    const char *s = b->data, *end = b->data + b->len;
    int version = 0, found = -1, used = 0;
    if (sscanf(s, "recstream-checkpoint %d\npartitions %d\n%n", &version, &found, &used) != 2 ||
        used == 0 || version != CKPT_FORMAT) {
        LOG_WARN("checkpoint manifest unreadable", "path=%s", path);
        return CORE_E_CORRUPT;
    }
    /* The total covers every byte before the "total" line. */
    const char *tl = NULL;
    for (const char *q = end - 1; q > s; q--) {
        if (q[-1] == '\n' && !strncmp(q, "total ", 6)) {
            tl = q;
            break;
        }
    }
    unsigned long long total;
    int tused = 0;
    if (!tl || sscanf(tl, "total %16llx\n%n", &total, &tused) != 1 || tl + tused != end ||
        total != XXH3_64bits(s, (size_t)(tl - s))) {
        LOG_WARN("checkpoint manifest checksum mismatch", "path=%s", path);
        return CORE_E_CORRUPT;
    }
    if (found != nparts) {
        LOG_ERROR("checkpoint was written for a different partition count; refusing it",
                  "path=%s checkpoint_partitions=%d log_partitions=%d", path, found, (int)nparts);
        return CORE_E_INVALID;
    }
    s += used;
    for (int32_t p = 0; p < nparts; p++) {
        int idx = -1, n = 0;
        long long off;
        size_t size;
        unsigned long long h;
        if (sscanf(s, "p %d %lld %zu %16llx\n%n", &idx, &off, &size, &h, &n) != 4 || n == 0 ||
            idx != p || off < 0) {
            LOG_WARN("checkpoint manifest malformed", "path=%s partition=%d", path, (int)p);
            return CORE_E_CORRUPT;
        }
        parts[p] = (struct manifest_part){.offset = off, .size = size, .hash = h};
        s += n;
    }
    return s == tl ? 0 : CORE_E_CORRUPT;
}

/* Restores every shard from checkpoint seq. Shards may be left half-restored on error. */
static int load_ckpt(const char *dir, uint64_t seq, struct evlog *log, struct state_shard **shards,
                     int32_t nparts, const struct seal_key *key)
{
    char cdir[1200], path[1300], name[32];
    struct core_buf b, sealed;
    core_buf_init(&b);
    core_buf_init(&sealed);
    struct manifest_part *parts = core_xcalloc((size_t)nparts, sizeof *parts);
    snprintf(cdir, sizeof cdir, "%s/%020" PRIu64, dir, seq);
    snprintf(path, sizeof path, "%s/MANIFEST", cdir);
    int rc = read_sealed(cdir, seq, "MANIFEST", key, MANIFEST_MAX, &sealed, &b);
    if (rc < 0)
        goto out;
    rc = parse_manifest(path, &b, nparts, parts);
    if (rc < 0)
        goto out;
    for (int32_t p = 0; p < nparts; p++) {
        snprintf(path, sizeof path, "%s/p%d.snap", cdir, (int)p);
        snprintf(name, sizeof name, "p%d.snap", (int)p);
        rc = read_sealed(cdir, seq, name, key, parts[p].size + 1, &sealed, &b);
        if (rc < 0 || b.len != parts[p].size || XXH3_64bits(b.data, b.len) != parts[p].hash) {
            LOG_WARN("checkpoint snapshot does not verify", "path=%s err=\"%s\"", path,
                     rc < 0 ? core_strerror(rc) : "size or checksum mismatch");
            rc = CORE_E_CORRUPT;
            goto out;
        }
        rc = state_shard_restore(shards[p], b.data, b.len);
        if (rc == 0 && state_shard_next_offset(shards[p]) != parts[p].offset)
            rc = CORE_E_CORRUPT;
        if (rc < 0) {
            LOG_WARN("checkpoint snapshot rejected by the state", "path=%s err=\"%s\"", path,
                     core_strerror(rc));
            goto out;
        }
        struct evlog_partition_stats st;
        rc = evlog_stats(log, p, &st);
        if (rc < 0)
            goto out;
        if (parts[p].offset > st.high_water) {
            LOG_ERROR("checkpoint is ahead of the log: the log lost acknowledged records "
                      "(crash with fsync=none?); trying an older checkpoint",
                      "checkpoint=%s partition=%d checkpoint_offset=%lld log_high_water=%lld", cdir,
                      (int)p, (long long)parts[p].offset, (long long)st.high_water);
            rc = CORE_E_CORRUPT;
            goto out;
        }
    }
out:
    free(parts);
    core_buf_dispose(&b);
    core_buf_dispose(&sealed);
    return rc;
}

int stream__recover(const char *dir, struct evlog *log, const struct state_config *cfg,
                    struct state_shard **shards, int32_t nparts, uint64_t *max_seq,
                    const struct seal_key *key)
{
    uint64_t *seqs;
    size_t n;
    int rc = list_ckpts(dir, &seqs, &n);
    if (rc < 0) {
        LOG_ERROR("cannot list checkpoints", "dir=%s err=\"%s\"", dir, core_strerror(rc));
        return rc;
    }
    *max_seq = n ? seqs[0] : 0;
    for (size_t i = 0; i < n; i++) {
        int64_t t0 = core_mono_ns();
        rc = load_ckpt(dir, seqs[i], log, shards, nparts, key);
        if (rc == 0) {
            LOG_INFO("state restored from checkpoint", "dir=%s/%020" PRIu64 " took_ms=%lld", dir,
                     seqs[i], (long long)((core_mono_ns() - t0) / 1000000));
            goto out;
        }
        /* Throw away whatever the failed attempt restored. */
        for (int32_t p = 0; p < nparts; p++) {
            state_shard_free(shards[p]);
            shards[p] = state_shard_new(cfg, p);
        }
        if (rc == CORE_E_INVALID)
            goto out;
        LOG_WARN("skipping invalid checkpoint", "dir=%s/%020" PRIu64, dir, seqs[i]);
    }
    rc = 0;
    if (n)
        LOG_WARN("no valid checkpoint; rebuilding state from the whole log", "dir=%s", dir);
out:
    free(seqs);
    return rc;
}
