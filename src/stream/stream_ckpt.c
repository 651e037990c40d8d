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
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define CKPT_FORMAT 3 /* 2: sealed files, every partition; 3: any subset of them */
#define CKPT_NAME_LEN 20
#define MANIFEST_MAX (1u << 20)

pid_t stream__ckpt_owner;

/* The pid that names this process's temporary directories: a checkpoint child's parent's. */
static long owner_pid(void)
{
    return stream__ckpt_owner ? (long)stream__ckpt_owner : (long)getpid();
}

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

/* Checkpoint seq's MANIFEST in dir, opened and parsed (manifest.c below). */
struct manifest_part {
    int32_t p;
    int64_t offset;
    size_t size;
    uint64_t hash;
};
static int read_manifest(const char *dir, uint64_t seq, int32_t nparts, const struct seal_key *key,
                         struct manifest_part *parts, int *nfound);

/* A leftover temporary directory: "<seq>.<pid>.tmp" (or a format-2 "<seq>.tmp"). Ours, a
 * format-2 one, or one untouched for an hour (its writer is gone) may be deleted. */
static bool stale_tmp(const char *dir, const char *name)
{
    size_t len = strlen(name);
    if (len < CKPT_NAME_LEN + 4 || strcmp(name + len - 4, ".tmp") != 0)
        return false;
    for (size_t i = 0; i < CKPT_NAME_LEN; i++)
        if (name[i] < '0' || name[i] > '9')
            return false;
    if (len == CKPT_NAME_LEN + 4)
        return true;
    if (name[CKPT_NAME_LEN] != '.' || atol(name + CKPT_NAME_LEN + 1) == owner_pid())
        return name[CKPT_NAME_LEN] == '.';
    char path[1200];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 && st.st_mtime < time(NULL) - 3600;
}

/*
 * Deletes every checkpoint that is not among the newest keep holding one of its partitions
 * (with every partition in every checkpoint, as in a single process: all but the newest keep;
 * with processors owning parts of the partitions, each partition keeps its newest keep). A
 * checkpoint whose MANIFEST does not open counts as holding nothing but is kept while among
 * the newest keep. Then leftover temporary directories.
 */
static void prune(const char *dir, int32_t nparts, int keep, const struct seal_key *key)
{
    uint64_t *seqs;
    size_t n;
    char path[1200];
    if (keep < 1)
        keep = 1;
    if (list_ckpts(dir, &seqs, &n) == 0) {
        int *held = core_xcalloc((size_t)nparts, sizeof *held);
        struct manifest_part *parts = core_xcalloc((size_t)nparts, sizeof *parts);
        for (size_t i = 0; i < n; i++) {
            int found = 0;
            bool needed = i < (size_t)keep;
            if (read_manifest(dir, seqs[i], nparts, key, parts, &found) == 0) {
                for (int k = 0; k < found; k++)
                    if (held[parts[k].p]++ < keep)
                        needed = true;
            }
            if (needed)
                continue;
            snprintf(path, sizeof path, "%s/%020" PRIu64, dir, seqs[i]);
            int rc = remove_dir(path);
            if (rc < 0)
                LOG_WARN("cannot delete old checkpoint", "dir=%s err=\"%s\"", path,
                         core_strerror(rc));
        }
        free(parts);
        free(held);
        free(seqs);
    }
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (stale_tmp(dir, de->d_name)) {
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            remove_dir(path);
        }
    }
    closedir(d);
    core_fsync_dir(dir);
}

/* Writes checkpoint dir/seq from a temporary directory. Returns 0, CORE_E_EXISTS when another
 * process took seq first (nothing left behind), or another negative error. */
static int write_once(const char *dir, uint64_t seq, const struct stream__snap *snaps, int nsnaps,
                      int32_t nparts, const struct seal_key *key, size_t *bytes)
{
    char tmp[1200], final[1200], file[1300];
    struct core_buf man, sealed;
    core_buf_init(&man);
    core_buf_init(&sealed);
    *bytes = 0;
    snprintf(tmp, sizeof tmp, "%s/%020" PRIu64 ".%ld.tmp", dir, seq, owner_pid());
    snprintf(final, sizeof final, "%s/%020" PRIu64, dir, seq);
    remove_dir(tmp);
    int rc = 0;
    if (mkdir(tmp, 0700) < 0) {
        rc = -errno;
        goto out;
    }
    core_buf_printf(&man, "recstream-checkpoint %d\npartitions %d\n", CKPT_FORMAT, (int)nparts);
    for (int i = 0; i < nsnaps; i++) {
        snprintf(file, sizeof file, "p%d.snap", (int)snaps[i].partition);
        rc = write_sealed(tmp, seq, file, key, snaps[i].data, snaps[i].len, &sealed);
        if (rc < 0)
            goto out;
        *bytes += snaps[i].len;
        core_buf_printf(&man, "p %d %lld %zu %016llx\n", (int)snaps[i].partition,
                        (long long)snaps[i].offset, snaps[i].len,
                        (unsigned long long)XXH3_64bits(snaps[i].data, snaps[i].len));
    }
    core_buf_printf(&man, "total %016llx\n", (unsigned long long)XXH3_64bits(man.data, man.len));
    rc = write_sealed(tmp, seq, "MANIFEST", key, man.data, man.len, &sealed);
    if (rc < 0)
        goto out;
    *bytes += man.len;
    rc = core_fsync_dir(tmp);
    if (rc < 0)
        goto out;
    /* rename(2) onto an existing non-empty directory fails: another processor wrote seq. */
    if (rename(tmp, final) < 0) {
        rc = errno == EEXIST || errno == ENOTEMPTY ? CORE_E_EXISTS : -errno;
        goto out;
    }
    rc = core_fsync_dir(dir);
out:
    if (rc < 0)
        remove_dir(tmp);
    core_buf_dispose(&man);
    core_buf_dispose(&sealed);
    return rc;
}

int stream__ckpt_write(const char *dir, uint64_t *seq, const struct stream__snap *snaps, int nsnaps,
                       int32_t nparts, int keep, const struct seal_key *key, size_t *bytes_out)
{
    int64_t t0 = core_mono_ns();
    size_t bytes = 0;
    int rc = core_mkdirs(dir, 0700);
    for (int attempt = 0; rc == 0; attempt++) {
        rc = write_once(dir, *seq, snaps, nsnaps, nparts, key, &bytes);
        if (rc != CORE_E_EXISTS || attempt == 16)
            break;
        /* Another processor sharing the directory took the number: take the next free one
         * (the files are sealed under their checkpoint number, so they are written again). */
        uint64_t *seqs;
        size_t n;
        rc = list_ckpts(dir, &seqs, &n);
        if (rc == 0 && n && seqs[0] >= *seq)
            *seq = seqs[0] + 1;
        else if (rc == 0)
            (*seq)++;
        free(seqs);
    }
    if (rc < 0) {
        LOG_ERROR("checkpoint failed", "dir=%s err=\"%s\"", dir, core_strerror(rc));
        return rc;
    }
    LOG_INFO("checkpoint written", "dir=%s/%020" PRIu64 " partitions=%d bytes=%zu took_ms=%lld",
             dir, *seq, nsnaps, bytes, (long long)((core_mono_ns() - t0) / 1000000));
    if (bytes_out)
        *bytes_out = bytes;
    (*seq)++;
    prune(dir, nparts, keep, key);
    return 0;
}

/* ---- recovery ------------------------------------------------------------------------------ */

/* Parses and verifies MANIFEST text: format 2 lists every partition in order, format 3 any
 * non-empty subset in ascending order. parts (room for nparts) gets *nfound entries. */
static int parse_manifest(const char *path, const struct core_buf *b, int32_t nparts,
                          struct manifest_part *parts, int *nfound)
{
    const char *s = b->data, *end = b->data + b->len;
    int version = 0, found = -1, used = 0;
    *nfound = 0;
    if (sscanf(s, "recstream-checkpoint %d\npartitions %d\n%n", &version, &found, &used) != 2 ||
        used == 0 || (version != 2 && version != CKPT_FORMAT)) {
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
    int k = 0;
    while (s < tl) {
        int idx = -1, n = 0;
        long long off;
        size_t size;
        unsigned long long h;
        if (k == nparts || sscanf(s, "p %d %lld %zu %16llx\n%n", &idx, &off, &size, &h, &n) != 4 ||
            n == 0 || idx < 0 || idx >= nparts || (version == 2 && idx != k) ||
            (k > 0 && idx <= parts[k - 1].p) || off < 0) {
            LOG_WARN("checkpoint manifest malformed", "path=%s entry=%d", path, k);
            return CORE_E_CORRUPT;
        }
        parts[k++] = (struct manifest_part){.p = idx, .offset = off, .size = size, .hash = h};
        s += n;
    }
    if (s != tl || k == 0 || (version == 2 && k != nparts))
        return CORE_E_CORRUPT;
    *nfound = k;
    return 0;
}

static int read_manifest(const char *dir, uint64_t seq, int32_t nparts, const struct seal_key *key,
                         struct manifest_part *parts, int *nfound)
{
    char cdir[1200], path[1300];
    struct core_buf b, sealed;
    core_buf_init(&b);
    core_buf_init(&sealed);
    snprintf(cdir, sizeof cdir, "%s/%020" PRIu64, dir, seq);
    snprintf(path, sizeof path, "%s/MANIFEST", cdir);
    *nfound = 0;
    int rc = read_sealed(cdir, seq, "MANIFEST", key, MANIFEST_MAX, &sealed, &b);
    if (rc == 0)
        rc = parse_manifest(path, &b, nparts, parts, nfound);
    core_buf_dispose(&b);
    core_buf_dispose(&sealed);
    return rc;
}

/* Restores partition mp->p from checkpoint seq into a new shard (*out). */
static int load_part(const char *dir, uint64_t seq, const struct manifest_part *mp,
                     struct evlog *log, const struct state_config *cfg, const struct seal_key *key,
                     struct state_shard **out)
{
    char cdir[1200], path[1300], name[32];
    struct core_buf b, sealed;
    core_buf_init(&b);
    core_buf_init(&sealed);
    snprintf(cdir, sizeof cdir, "%s/%020" PRIu64, dir, seq);
    snprintf(path, sizeof path, "%s/p%d.snap", cdir, (int)mp->p);
    snprintf(name, sizeof name, "p%d.snap", (int)mp->p);
    struct state_shard *shard = state_shard_new(cfg, mp->p);
    int rc = read_sealed(cdir, seq, name, key, mp->size + 1, &sealed, &b);
    if (rc < 0 || b.len != mp->size || XXH3_64bits(b.data, b.len) != mp->hash) {
        LOG_WARN("checkpoint snapshot does not verify", "path=%s err=\"%s\"", path,
                 rc < 0 ? core_strerror(rc) : "size or checksum mismatch");
        rc = CORE_E_CORRUPT;
        goto out;
    }
    rc = state_shard_restore(shard, b.data, b.len);
    if (rc == 0 && state_shard_next_offset(shard) != mp->offset)
        rc = CORE_E_CORRUPT;
    if (rc < 0) {
        LOG_WARN("checkpoint snapshot rejected by the state", "path=%s err=\"%s\"", path,
                 core_strerror(rc));
        goto out;
    }
    struct evlog_partition_stats st;
    rc = evlog_stats(log, mp->p, &st);
    if (rc < 0)
        goto out;
    if (mp->offset > st.high_water) {
        LOG_ERROR("checkpoint is ahead of the log: the log lost acknowledged records "
                  "(crash with fsync=none?); trying an older checkpoint",
                  "checkpoint=%s partition=%d checkpoint_offset=%lld log_high_water=%lld", cdir,
                  (int)mp->p, (long long)mp->offset, (long long)st.high_water);
        rc = CORE_E_CORRUPT;
    }
out:
    if (rc == 0)
        *out = shard;
    else
        state_shard_free(shard);
    core_buf_dispose(&b);
    core_buf_dispose(&sealed);
    return rc;
}

int stream__recover(const char *dir, struct evlog *log, const struct state_config *cfg,
                    struct state_shard **shards, int32_t nparts, const bool *want,
                    uint64_t *max_seq, const struct seal_key *key)
{
    uint64_t *seqs;
    size_t n;
    int rc = list_ckpts(dir, &seqs, &n);
    if (rc < 0) {
        LOG_ERROR("cannot list checkpoints", "dir=%s err=\"%s\"", dir, core_strerror(rc));
        return rc;
    }
    *max_seq = n ? seqs[0] : 0;
    bool *done = core_xcalloc((size_t)nparts, sizeof *done);
    struct manifest_part *parts = core_xcalloc((size_t)nparts, sizeof *parts);
    int32_t left = 0;
    for (int32_t p = 0; p < nparts; p++)
        left += !want || want[p];
    bool skipped = false;
    for (size_t i = 0; i < n && left > 0; i++) {
        int64_t t0 = core_mono_ns();
        int found = 0, restored = 0, failed = 0;
        rc = read_manifest(dir, seqs[i], nparts, key, parts, &found);
        if (rc == CORE_E_INVALID)
            goto out;
        for (int k = 0; rc == 0 && k < found; k++) {
            int32_t p = parts[k].p;
            if ((want && !want[p]) || done[p])
                continue;
            struct state_shard *shard;
            if (load_part(dir, seqs[i], &parts[k], log, cfg, key, &shard) < 0) {
                failed++;
                continue;
            }
            state_shard_free(shards[p]);
            shards[p] = shard;
            done[p] = true;
            restored++;
            left--;
        }
        if (restored)
            LOG_INFO("state restored from checkpoint",
                     "dir=%s/%020" PRIu64 " partitions=%d took_ms=%lld", dir, seqs[i], restored,
                     (long long)((core_mono_ns() - t0) / 1000000));
        if (rc < 0 || failed) {
            skipped = true;
            LOG_WARN("skipping invalid checkpoint", "dir=%s/%020" PRIu64 " partitions=%d", dir,
                     seqs[i], rc < 0 ? found : failed);
        }
    }
    rc = 0;
    if (left > 0 && (n || skipped))
        LOG_WARN("no valid checkpoint for some partitions; rebuilding them from the whole log",
                 "dir=%s partitions=%d", dir, (int)left);
out:
    free(parts);
    free(done);
    free(seqs);
    return rc;
}
