/*
 * The processor runtime. Partition p belongs to processor thread p % threads, the single
 * writer of its shard. A processor reads batches from each of its partitions in turn and
 * applies them; when none has data it blocks in evlog_wait_change until any partition gets
 * new records (the timeout only bounds how late a checkpoint request is served).
 *
 * Checkpoints: the checkpoint thread bumps snap_gen; each processor notices it between
 * batches and reports back. With fork_checkpoints (the default) the processors then wait,
 * parked, while the checkpoint thread holds every shard's read lock and forks; they resume
 * as soon as fork returns, and the child, which has the state as of that instant, serialises
 * the shards, writes the checkpoint, reports through a pipe and exits (as Redis's BGSAVE).
 * Processing pauses for the fork only (its page-table copy: 4-20 ms at 2.5 GiB), not for the
 * serialisation (seconds for GBs). Without it, each processor serialises its own shards
 * (the pause) and the checkpoint thread writes the files while processing goes on.
 */
#include "stream/stream_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READ_MAX 1024
#define WAIT_MS 50

/* AddressSanitizer runtimes before LLVM 16 do not lock their allocator around fork: a
 * checkpoint child could deadlock in its first malloc. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && defined(__clang_major__) && __clang_major__ < 16
#define FORK_UNSAFE_ALLOCATOR 1
#endif
#endif
#ifndef FORK_UNSAFE_ALLOCATOR
#define FORK_UNSAFE_ALLOCATOR 0
#endif

bool stream_fork_checkpoints_supported(void)
{
    return !FORK_UNSAFE_ALLOCATOR;
}

void stream_config_init(struct stream_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->checkpoint_dir = "data/checkpoints";
    cfg->checkpoint_interval_ms = 10000;
    cfg->checkpoint_events = 1000000;
    cfg->keep = 3;
    cfg->threads = 1;
    cfg->fork_checkpoints = stream_fork_checkpoints_supported();
    state_config_init(&cfg->state);
}

static void cond_init_mono(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

static void mark_failed(struct stream *s)
{
    atomic_store(&s->failed, true);
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
    for (int32_t p = 0; p < s->nparts; p++) {
        pthread_mutex_lock(&s->parts[p].mu);
        pthread_cond_broadcast(&s->parts[p].cond);
        pthread_mutex_unlock(&s->parts[p].mu);
    }
}

/* ---- processors ---------------------------------------------------------------------------- */

static void snapshot_part(struct stream_part *part)
{
    core_buf_reset(&part->snap);
    part->snap_valid = atomic_load(&part->owned);
    if (!part->snap_valid)
        return;
    state_shard_snapshot(part->shard, &part->snap);
    part->snap_offset = state_shard_next_offset(part->shard);
}

/* Serves a pending snapshot request for the worker's partitions. */
static void serve_snapshot(struct stream_worker *w)
{
    struct stream *s = w->s;
    uint64_t gen = atomic_load(&s->snap_gen);
    if (gen == w->seen_gen)
        return;
    w->seen_gen = gen;
    bool park = atomic_load(&s->parked);
    for (int32_t p = w->idx; !park && p < s->nparts; p += s->nworkers)
        snapshot_part(&s->parts[p]);
    pthread_mutex_lock(&s->mu);
    s->snaps_pending--;
    pthread_cond_broadcast(&s->cond);
    while (park && atomic_load(&s->parked) && !s->stopping)
        pthread_cond_wait(&s->cond, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

/* Largest user image a merge_in carries: its base64 and the JSON around it must fit the
 * event's properties (EVENT_JSON_FIELD_MAX). */
#define MERGE_IMAGE_MAX ((EVENT_JSON_FIELD_MAX - 128) / 4 * 3)
#define MERGE_RETRY_MS 100

/*
 * Before a "merge" is applied (it forgets the source), the source's state is carried to the
 * target's partition in a merge_in, durably: a crash in between replays the merge, which
 * appends the same merge_in again (same eventId: a duplicate). A source without state needs
 * none. An image too large for one record keeps fewer recent interactions. Returns 0, or
 * CORE_E_CLOSED when the stream stops before the append succeeded (the merge is then not
 * applied; recovery replays it).
 */
static int carry_merge(struct stream *s, int32_t p, const struct evlog_record *rec,
                       const struct event *ev)
{
    struct state_shard *shard = s->parts[p].shard;
    if (!s->cfg.merge_fn || !strcmp(ev->anon_key, ev->user_key))
        return 0;
    struct core_buf img;
    core_buf_init(&img);
    int max_recent = s->cfg.state.recent_max;
    int rc = state_shard_user_image(shard, ev->anon_key, max_recent, &img);
    while (rc == 0 && img.len > MERGE_IMAGE_MAX && max_recent > 0) {
        max_recent /= 2;
        core_buf_reset(&img);
        rc = state_shard_user_image(shard, ev->anon_key, max_recent, &img);
    }
    if (rc == CORE_E_NOTFOUND) {
        rc = 0;
        goto out;
    }
    rc = CORE_E_CLOSED;
    while (!atomic_load(&s->stop_workers)) {
        rc = s->cfg.merge_fn(s->cfg.merge_arg, p, rec->offset, ev, img.data, img.len);
        if (rc == 0 || rc == CORE_E_INVALID)
            break; /* INVALID (logged): never storable; the source keeps nothing either way */
        LOG_WARN("cannot append a merge_in; retrying", "partition=%d offset=%lld err=\"%s\"",
                 (int)p, (long long)rec->offset, core_strerror(rc));
        struct timespec ts = {0, MERGE_RETRY_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    rc = rc == 0 || rc == CORE_E_INVALID ? 0 : CORE_E_CLOSED;
out:
    core_buf_dispose(&img);
    return rc;
}

/* Applies one batch of partition p. Returns records applied, or a negative hard error. */
static int apply_batch(struct stream *s, int32_t p, struct evlog_batch *batch)
{
    struct stream_part *part = &s->parts[p];
    int64_t from = state_shard_next_offset(part->shard);
    int n = evlog_read(s->log, p, from, READ_MAX, batch);
    if (n <= 0) {
        if (n < 0)
            LOG_ERROR("stream cannot read the log; partition stopped",
                      "partition=%d offset=%lld "
                      "err=\"%s\"",
                      (int)p, (long long)from, core_strerror(n));
        return n;
    }
    for (size_t i = 0; i < batch->n; i++) {
        const struct evlog_record *rec = &batch->recs[i];
        struct event ev;
        event_init(&ev);
        if (rec->erased) {
            state_shard_skip(part->shard, rec->offset); /* its user's key was shredded */
            continue;
        }
        if (event_bin_decode(rec->value, rec->value_len, &ev) < 0) {
            LOG_ERROR("undecodable log record; stream stopped (state would diverge if skipped)",
                      "partition=%d offset=%lld", (int)p, (long long)rec->offset);
            return CORE_E_CORRUPT;
        }
        if (ev.type == EVENT_MERGE && carry_merge(s, p, rec, &ev) < 0)
            break; /* stopping: the merge and what follows are applied after recovery */
        state_shard_apply(part->shard, &ev, rec->offset);
    }
    pthread_mutex_lock(&part->mu);
    part->applied = state_shard_next_offset(part->shard);
    pthread_cond_broadcast(&part->cond);
    pthread_mutex_unlock(&part->mu);

    int64_t before = atomic_fetch_add(&s->events_since, (int64_t)batch->n);
    int64_t limit = s->cfg.checkpoint_events;
    if (limit > 0 && before < limit && before + (int64_t)batch->n >= limit) {
        pthread_mutex_lock(&s->mu);
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->mu);
    }
    return n;
}

static void *worker_main(void *arg)
{
    struct stream_worker *w = arg;
    pthread_setname_np(pthread_self(), "stream-proc");
    struct stream *s = w->s;
    struct evlog_batch batch;
    evlog_batch_init(&batch);
    while (!atomic_load(&s->stop_workers)) {
        serve_snapshot(w);
        /* Read the change counter before looking: a publish after this wakes the wait. */
        uint64_t seen = evlog_changes(s->log);
        bool any = false;
        for (int32_t p = w->idx; p < s->nparts; p += s->nworkers) {
            struct stream_part *part = &s->parts[p];
            if (!atomic_load(&part->owned))
                continue;
            pthread_mutex_lock(&part->run_mu);
            int n = atomic_load(&part->owned) ? apply_batch(s, p, &batch) : 0;
            pthread_mutex_unlock(&part->run_mu);
            if (n < 0) {
                mark_failed(s);
                goto out;
            }
            if (n > 0)
                any = true;
        }
        if (any)
            continue;
        int rc = evlog_wait_change(s->log, seen, WAIT_MS);
        if (rc == CORE_E_CLOSED)
            break;
    }
out:
    evlog_batch_dispose(&batch);
    return NULL;
}

/* ---- checkpoints --------------------------------------------------------------------------- */

/* Writes the snapshots in parts[].snap of the partitions owned when they were taken as the
 * next checkpoint; each partition keeps its newest keep checkpoints. Nothing owned: nothing
 * written. */
static int write_snaps(struct stream *s, int keep)
{
    struct stream__snap *snaps = core_xcalloc((size_t)s->nparts, sizeof *snaps);
    int n = 0;
    for (int32_t p = 0; p < s->nparts; p++)
        if (s->parts[p].snap_valid)
            snaps[n++] = (struct stream__snap){.partition = p,
                                               .data = s->parts[p].snap.data,
                                               .len = s->parts[p].snap.len,
                                               .offset = s->parts[p].snap_offset};
    int rc = 0;
    if (n > 0) {
        pthread_mutex_lock(&s->write_mu);
        rc = stream__ckpt_write(s->ckpt_dir, &s->next_seq, snaps, n, s->nparts, keep, &s->data_key,
                                NULL);
        pthread_mutex_unlock(&s->write_mu);
    }
    for (int i = 0; rc == 0 && i < n; i++)
        atomic_store(&s->parts[snaps[i].partition].ckpt_offset, snaps[i].offset);
    free(snaps);
    return rc;
}

/* What a checkpoint child reports through its pipe: the header, then n of {partition,
 * offset}. */
struct fork_report {
    int32_t rc, n;
    uint64_t seq; /* the number written */
    uint64_t bytes;
};

static int write_all(int fd, const void *p, size_t n)
{
    for (const char *c = p; n > 0;) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* The child: alone in its copy of the process (other threads' locks may be held forever, so
 * no logging and no lock but the allocator's, which glibc and the sanitizers reset at fork).
 * Serialises the partitions owned at the fork, writes the checkpoint, reports, exits. */
static _Noreturn void checkpoint_child(struct stream *s, int keep, int fd, pid_t parent)
{
    /* Die with the serving thread: a SIGKILLed server leaves no writer behind (its temporary
     * directory, named by the parent's pid, goes as any crashed writer's: after an hour). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    core_log_set_level(CORE_LOG_OFF);
    stream__ckpt_owner = parent;
    /* Sockets and files the server closes must not stay open here (a client would wait for
     * its connection's end until the child exits). */
    if (fd > 3)
        close_range(3, (unsigned)fd - 1, 0);
    close_range((unsigned)fd + 1, ~0U, 0);
    /* Under memory pressure the OOM killer takes the child, not the server (the pages they
     * share count for both; the value is Redis's for its background savers). */
    int oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (oom >= 0) {
        if (write(oom, "800", 3) < 0) {
            /* not allowed here: the default score */
        }
        close(oom);
    }
    struct stream__snap *snaps = core_xcalloc((size_t)s->nparts, sizeof *snaps);
    struct core_buf *bufs = core_xcalloc((size_t)s->nparts, sizeof *bufs);
    int n = 0;
    for (int32_t p = 0; p < s->nparts; p++) {
        if (!atomic_load(&s->parts[p].owned))
            continue;
        core_buf_init(&bufs[n]);
        state_shard_snapshot_held(s->parts[p].shard, &bufs[n]);
        snaps[n] = (struct stream__snap){.partition = p,
                                         .data = bufs[n].data,
                                         .len = bufs[n].len,
                                         .offset = state_shard_next_offset(s->parts[p].shard)};
        n++;
    }
    uint64_t seq = s->next_seq;
    size_t bytes = 0;
    int rc = n > 0 ? stream__ckpt_write(s->ckpt_dir, &seq, snaps, n, s->nparts, keep, &s->data_key,
                                        &bytes)
                   : 0;
    struct fork_report r = {.rc = rc, .n = rc == 0 ? n : 0, .seq = seq - 1, .bytes = bytes};
    int bad = write_all(fd, &r, sizeof r);
    for (int i = 0; !bad && i < r.n; i++) {
        int64_t po[2] = {snaps[i].partition, snaps[i].offset};
        bad = write_all(fd, po, sizeof po);
    }
    _exit(bad || rc < 0 ? 1 : 0);
}

/* Reads exactly n bytes from fd, giving up (CORE_E_CLOSED) when the stream stops. */
static int read_report(struct stream *s, int fd, void *p, size_t n)
{
    for (char *c = p; n > 0;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int k = poll(&pf, 1, 200);
        if (k < 0 && errno != EINTR)
            return -errno;
        if (k <= 0) {
            pthread_mutex_lock(&s->mu);
            bool stop = s->stopping;
            pthread_mutex_unlock(&s->mu);
            if (stop)
                return CORE_E_CLOSED;
            continue;
        }
        ssize_t m = read(fd, c, n);
        if (m < 0 && errno == EINTR)
            continue;
        if (m <= 0)
            return CORE_E_FAILED; /* the child died without a full report */
        c += m;
        n -= (size_t)m;
    }
    return 0;
}

/* Lets parked processors go on (mu held). */
static void unpark(struct stream *s)
{
    atomic_store(&s->parked, false);
    pthread_cond_broadcast(&s->cond);
}

/*
 * A checkpoint by fork (mu held; processors asked to park). Returns 1 when fork or pipe
 * failed before anything happened (the caller falls back to in-process snapshots), else 0
 * or a negative error.
 */
static int checkpoint_forked(struct stream *s, int keep)
{
    int64_t t0 = core_mono_ns();
    /* write_mu first (a revocation may be writing): taken with mu held, processors could wait
     * for mu meanwhile. Order: write_mu, then mu. */
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&s->write_mu);
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->events_since, 0);
    s->snaps_pending = s->nworkers;
    atomic_store(&s->parked, true);
    atomic_fetch_add(&s->snap_gen, 1);
    while (s->snaps_pending > 0 && !s->stopping && !atomic_load(&s->failed))
        pthread_cond_wait(&s->cond, &s->mu);
    int rc = 0;
    if (s->snaps_pending > 0) {
        rc = atomic_load(&s->failed) ? CORE_E_FAILED : CORE_E_CLOSED;
        goto out;
    }
    /* Every processor waits in serve_snapshot; other writers (erasure, assignment) are kept
     * out by the read locks, and checkpoint writers of this process by write_mu. */
    int64_t t_parked = core_mono_ns();
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        rc = 1;
        goto out;
    }
    for (int32_t p = 0; p < s->nparts; p++)
        state_shard_hold(s->parts[p].shard);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        checkpoint_child(s, keep, fds[1], parent);
    int fork_errno = errno;
    for (int32_t p = 0; p < s->nparts; p++)
        state_shard_release(s->parts[p].shard);
    int64_t paused = core_mono_ns() - t_parked;
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        if (!s->fork_failed_logged)
            LOG_WARN("cannot fork for a checkpoint; the processors serialise their own shards",
                     "err=\"%s\"", strerror(fork_errno));
        s->fork_failed_logged = true;
        rc = 1;
        goto out;
    }
    unpark(s);
    pthread_mutex_unlock(&s->mu);

    struct fork_report r;
    struct {
        int64_t p, offset;
    } *po = NULL;
    rc = read_report(s, fds[0], &r, sizeof r);
    if (rc == 0 && (r.n < 0 || r.n > s->nparts))
        rc = CORE_E_FAILED;
    if (rc == 0 && r.n > 0) {
        po = core_xmalloc((size_t)r.n * sizeof *po);
        rc = read_report(s, fds[0], po, (size_t)r.n * sizeof *po);
    }
    close(fds[0]);
    if (rc == CORE_E_CLOSED)
        kill(pid, SIGKILL); /* stopping: the final checkpoint supersedes it */
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (rc == 0 && r.rc < 0)
        rc = r.rc;
    if (rc == 0) {
        s->next_seq = r.seq + 1;
        for (int32_t i = 0; i < r.n; i++)
            if (po[i].p >= 0 && po[i].p < s->nparts)
                atomic_store(&s->parts[po[i].p].ckpt_offset, po[i].offset);
        if (r.n > 0)
            LOG_INFO("checkpoint written",
                     "dir=%s/%020" PRIu64 " partitions=%d bytes=%" PRIu64
                     " took_ms=%lld paused_ms=%.1f forked=true",
                     s->ckpt_dir, r.seq, (int)r.n, r.bytes,
                     (long long)((core_mono_ns() - t0) / 1000000), (double)paused / 1e6);
    } else if (rc != CORE_E_CLOSED) {
        LOG_ERROR("checkpoint failed", "dir=%s err=\"%s\" child_status=%d", s->ckpt_dir,
                  core_strerror(rc), status);
    }
    free(po);
    pthread_mutex_unlock(&s->write_mu);
    pthread_mutex_lock(&s->mu);
    return rc;
out:
    unpark(s);
    pthread_mutex_unlock(&s->write_mu);
    return rc;
}

/* Asks every processor for snapshots, waits for them (mu held), then writes unlocked. */
static int checkpoint_locked(struct stream *s, int keep)
{
    if (s->cfg.fork_checkpoints) {
        int rc = checkpoint_forked(s, keep);
        if (rc != 1)
            return rc;
    }
    atomic_store(&s->events_since, 0);
    s->snaps_pending = s->nworkers;
    atomic_fetch_add(&s->snap_gen, 1);
    while (s->snaps_pending > 0 && !s->stopping && !atomic_load(&s->failed))
        pthread_cond_wait(&s->cond, &s->mu);
    if (s->snaps_pending > 0)
        return atomic_load(&s->failed) ? CORE_E_FAILED : CORE_E_CLOSED;
    pthread_mutex_unlock(&s->mu);
    int rc = write_snaps(s, keep);
    pthread_mutex_lock(&s->mu);
    return rc;
}

static void *ckpt_main(void *arg)
{
    struct stream *s = arg;
    pthread_setname_np(pthread_self(), "checkpoint");
    pthread_mutex_lock(&s->mu);
    int64_t last = core_mono_ns();
    while (!s->stopping) {
        int64_t interval_ns = s->cfg.checkpoint_interval_ms * 1000000;
        int64_t now = core_mono_ns();
        bool due = (s->cfg.checkpoint_interval_ms > 0 && now - last >= interval_ns) ||
                   s->want_gen > s->done_gen ||
                   (s->cfg.checkpoint_events > 0 &&
                    atomic_load(&s->events_since) >= s->cfg.checkpoint_events);
        if (!due || atomic_load(&s->failed)) {
            int64_t wait_ms = s->cfg.checkpoint_interval_ms > 0
                                  ? (interval_ns - (now - last)) / 1000000 + 1
                                  : 1000;
            struct timespec ts =
                core_deadline_after(CLOCK_MONOTONIC, wait_ms > 1000 ? 1000 : wait_ms);
            pthread_cond_timedwait(&s->cond, &s->mu, &ts);
            if (atomic_load(&s->failed) && s->want_gen > s->done_gen) {
                s->done_gen = s->want_gen;
                s->last_rc = CORE_E_FAILED;
                pthread_cond_broadcast(&s->cond);
            }
            continue;
        }
        uint64_t target = s->want_gen;
        bool idle = atomic_load(&s->events_since) == 0 && target <= s->done_gen;
        /* Older checkpoints go only after the new one is durable (stream__ckpt_write prunes
         * after its rename), and only this thread writes or prunes checkpoints. */
        bool only = s->only_gen > s->done_gen && s->only_gen <= target;
        int rc = idle ? 0 : checkpoint_locked(s, only ? 1 : s->cfg.keep);
        if (rc < 0) /* not idle any more: retry at the next tick */
            atomic_fetch_add(&s->events_since, 1);
        last = core_mono_ns();
        if (target > s->done_gen)
            s->done_gen = target;
        s->last_rc = rc;
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static int checkpoint_wait(struct stream *s, bool only)
{
    pthread_mutex_lock(&s->mu);
    uint64_t gen = ++s->want_gen;
    if (only)
        s->only_gen = gen;
    pthread_cond_broadcast(&s->cond);
    while (s->done_gen < gen && !s->stopping)
        pthread_cond_wait(&s->cond, &s->mu);
    int rc = s->done_gen >= gen ? s->last_rc : CORE_E_CLOSED;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int stream_checkpoint(struct stream *s)
{
    return checkpoint_wait(s, false);
}

int stream_checkpoint_only(struct stream *s)
{
    return checkpoint_wait(s, true);
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

static void stream_free(struct stream *s)
{
    for (int32_t p = 0; p < s->nparts; p++) {
        state_shard_free(s->parts[p].shard);
        core_buf_dispose(&s->parts[p].snap);
        pthread_mutex_destroy(&s->parts[p].run_mu);
        pthread_mutex_destroy(&s->parts[p].mu);
        pthread_cond_destroy(&s->parts[p].cond);
    }
    free(s->parts);
    free(s->workers);
    free(s->ckpt_dir);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->write_mu);
    pthread_mutex_destroy(&s->own_mu);
    pthread_cond_destroy(&s->cond);
    seal_key_dispose(&s->data_key);
    free(s);
}

static void stop_threads(struct stream *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
    if (s->ckpt_started)
        pthread_join(s->ckpt_tid, NULL);
    atomic_store(&s->stop_workers, true);
    for (int i = 0; s->workers && i < s->nworkers; i++)
        if (s->workers[i].started)
            pthread_join(s->workers[i].tid, NULL);
    /* Wake stream_wait_applied callers. */
    for (int32_t p = 0; p < s->nparts; p++) {
        pthread_mutex_lock(&s->parts[p].mu);
        pthread_cond_broadcast(&s->parts[p].cond);
        pthread_mutex_unlock(&s->parts[p].mu);
    }
}

int stream_start(const struct stream_config *cfg, struct evlog *log, struct stream **out)
{
    if (!cfg->data_key)
        return CORE_E_INVALID;
    struct stream *s = core_xcalloc(1, sizeof *s);
    s->cfg = *cfg;
    s->data_key = *cfg->data_key;
    s->cfg.data_key = &s->data_key;
    s->ckpt_dir = core_xstrdup(cfg->checkpoint_dir);
    s->cfg.checkpoint_dir = s->ckpt_dir;
    s->log = log;
    s->nparts = log->partitions;
    s->nworkers = cfg->threads < 1 ? 1 : cfg->threads > s->nparts ? (int)s->nparts : cfg->threads;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->write_mu, NULL);
    pthread_mutex_init(&s->own_mu, NULL);
    cond_init_mono(&s->cond);
    s->parts = core_xcalloc((size_t)s->nparts, sizeof *s->parts);
    struct state_shard **shards = core_xcalloc((size_t)s->nparts, sizeof *shards);
    bool *want = core_xcalloc((size_t)s->nparts, sizeof *want);
    for (int32_t p = 0; p < s->nparts; p++)
        shards[p] = state_shard_new(&cfg->state, p);
    for (int32_t i = 0; i < (cfg->owned ? cfg->nowned : s->nparts); i++) {
        int32_t p = cfg->owned ? cfg->owned[i] : i;
        if (p >= 0 && p < s->nparts)
            want[p] = true;
    }
    if (s->cfg.fork_checkpoints && !stream_fork_checkpoints_supported()) {
        LOG_WARN("forked checkpoints are not safe in this build (AddressSanitizer before LLVM "
                 "16); the processors serialise their own shards",
                 NULL);
        s->cfg.fork_checkpoints = false;
    }
    s->cfg.owned = NULL; /* borrowed only for the start */
    s->cfg.nowned = 0;
    int64_t t0 = core_mono_ns();
    int rc = stream__recover(s->ckpt_dir, log, &cfg->state, shards, s->nparts, want, &s->next_seq,
                             &s->data_key);
    s->next_seq++;
    for (int32_t p = 0; p < s->nparts; p++) {
        struct stream_part *part = &s->parts[p];
        part->shard = shards[p];
        atomic_store(&part->owned, want[p]);
        pthread_mutex_init(&part->run_mu, NULL);
        pthread_mutex_init(&part->mu, NULL);
        cond_init_mono(&part->cond);
        core_buf_init(&part->snap);
        part->applied = state_shard_next_offset(part->shard);
        atomic_store(&part->ckpt_offset, part->applied);
        if (!want[p])
            evlog_fetch(log, p, false); /* owned elsewhere: not even prefetched */
    }
    free(shards);
    free(want);
    if (rc < 0)
        goto fail;
    rc = core_mkdirs(s->ckpt_dir, 0700);
    if (rc < 0) {
        LOG_ERROR("cannot create checkpoint directory", "dir=%s err=\"%s\"", s->ckpt_dir,
                  core_strerror(rc));
        goto fail;
    }
    s->workers = core_xcalloc((size_t)s->nworkers, sizeof *s->workers);
    for (int i = 0; i < s->nworkers; i++) {
        struct stream_worker *w = &s->workers[i];
        w->s = s;
        w->idx = i;
        rc = -pthread_create(&w->tid, NULL, worker_main, w);
        if (rc < 0)
            goto fail;
        w->started = true;
    }
    rc = -pthread_create(&s->ckpt_tid, NULL, ckpt_main, s);
    if (rc < 0)
        goto fail;
    s->ckpt_started = true;
    LOG_INFO(
        "stream started", "partitions=%d threads=%d checkpoint_dir=%s checkpoints=%s took_ms=%lld",
        (int)s->nparts, s->nworkers, s->ckpt_dir, s->cfg.fork_checkpoints ? "forked" : "in-process",
        (long long)((core_mono_ns() - t0) / 1000000));
    *out = s;
    return 0;
fail:
    LOG_ERROR("stream not started", "err=\"%s\"", core_strerror(rc));
    stop_threads(s);
    stream_free(s);
    return rc;
}

void stream_stop(struct stream *s, bool final_checkpoint)
{
    if (!s)
        return;
    stop_threads(s);
    /* The processors are gone, so this thread is now the only writer of every shard. */
    if (final_checkpoint && !atomic_load(&s->failed)) {
        for (int32_t p = 0; p < s->nparts; p++)
            snapshot_part(&s->parts[p]);
        write_snaps(s, s->cfg.keep);
    }
    stream_free(s);
}

int64_t stream_checkpointed_offset(struct stream *s, int32_t p)
{
    return p >= 0 && p < s->nparts ? atomic_load(&s->parts[p].ckpt_offset) : 0;
}

struct state_shard *stream_shard(struct stream *s, int32_t p)
{
    return p >= 0 && p < s->nparts ? s->parts[p].shard : NULL;
}

int32_t stream_partitions(struct stream *s)
{
    return s->nparts;
}

bool stream_healthy(struct stream *s)
{
    return !atomic_load(&s->failed);
}

int stream_wait_applied(struct stream *s, int32_t p, int64_t offset, int timeout_ms)
{
    if (p < 0 || p >= s->nparts)
        return CORE_E_INVALID;
    struct stream_part *part = &s->parts[p];
    struct timespec ts = core_deadline_after(CLOCK_MONOTONIC, timeout_ms < 0 ? 0 : timeout_ms);
    int rc = 0;
    pthread_mutex_lock(&part->mu);
    while (part->applied < offset) {
        if (atomic_load(&s->failed)) {
            rc = CORE_E_FAILED;
            break;
        }
        if (atomic_load(&s->stop_workers)) {
            rc = CORE_E_CLOSED;
            break;
        }
        if (pthread_cond_timedwait(&part->cond, &part->mu, &ts) == ETIMEDOUT) {
            rc = part->applied >= offset ? 0 : CORE_E_TIMEOUT;
            break;
        }
    }
    pthread_mutex_unlock(&part->mu);
    return rc;
}

/* ---- partition ownership ------------------------------------------------------------------- */

bool stream_owns(struct stream *s, int32_t p)
{
    return p >= 0 && p < s->nparts && atomic_load(&s->parts[p].owned);
}

int64_t stream_applied(struct stream *s, int32_t p)
{
    if (p < 0 || p >= s->nparts)
        return 0;
    struct stream_part *part = &s->parts[p];
    pthread_mutex_lock(&part->mu);
    int64_t v = part->applied;
    pthread_mutex_unlock(&part->mu);
    return v;
}

int stream_assign(struct stream *s, const int32_t *parts, int32_t n)
{
    pthread_mutex_lock(&s->own_mu);
    bool *want = core_xcalloc((size_t)s->nparts, sizeof *want);
    struct state_shard **fresh = core_xcalloc((size_t)s->nparts, sizeof *fresh);
    int32_t count = 0;
    int rc = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t p = parts[i];
        if (p < 0 || p >= s->nparts) {
            rc = CORE_E_INVALID;
            goto out;
        }
        if (!atomic_load(&s->parts[p].owned) && !want[p]) {
            want[p] = true;
            fresh[p] = state_shard_new(&s->cfg.state, p);
            count++;
        }
    }
    if (count == 0)
        goto out;
    for (int32_t p = 0; p < s->nparts; p++)
        if (want[p])
            evlog_fetch(s->log, p, true);
    uint64_t max_seq = 0;
    rc = stream__recover(s->ckpt_dir, s->log, &s->cfg.state, fresh, s->nparts, want, &max_seq,
                         &s->data_key);
    if (rc < 0)
        goto out;
    pthread_mutex_lock(&s->write_mu);
    if (max_seq >= s->next_seq)
        s->next_seq = max_seq + 1;
    pthread_mutex_unlock(&s->write_mu);
    for (int32_t p = 0; p < s->nparts; p++) {
        if (!want[p])
            continue;
        struct stream_part *part = &s->parts[p];
        /* Readers hold the shard object: the restored state moves into it. */
        state_shard_swap(part->shard, fresh[p]);
        int64_t next = state_shard_next_offset(part->shard);
        pthread_mutex_lock(&part->mu);
        part->applied = next;
        pthread_cond_broadcast(&part->cond);
        pthread_mutex_unlock(&part->mu);
        atomic_store(&part->ckpt_offset, next);
        atomic_store(&part->owned, true);
    }
    LOG_INFO("partitions assigned", "count=%d", (int)count);
out:
    for (int32_t p = 0; p < s->nparts; p++)
        state_shard_free(fresh[p]);
    free(fresh);
    free(want);
    pthread_mutex_unlock(&s->own_mu);
    return rc;
}

int stream_revoke(struct stream *s, const int32_t *parts, int32_t n)
{
    pthread_mutex_lock(&s->own_mu);
    bool *gone = core_xcalloc((size_t)s->nparts, sizeof *gone);
    struct stream__snap *snaps = core_xcalloc((size_t)s->nparts, sizeof *snaps);
    struct core_buf *bufs = core_xcalloc((size_t)s->nparts, sizeof *bufs);
    int nsnaps = 0, rc = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t p = parts[i];
        if (p < 0 || p >= s->nparts) {
            rc = CORE_E_INVALID;
            continue;
        }
        struct stream_part *part = &s->parts[p];
        if (!atomic_load(&part->owned) || gone[p])
            continue;
        atomic_store(&part->owned, false);
        /* Wait for the batch in hand: after this the processor leaves the shard alone. */
        pthread_mutex_lock(&part->run_mu);
        pthread_mutex_unlock(&part->run_mu);
        evlog_fetch(s->log, p, false);
        gone[p] = true;
    }
    /* A checkpoint of exactly the revoked partitions, so the next owner replays little. */
    for (int32_t p = 0; p < s->nparts; p++) {
        if (!gone[p] || atomic_load(&s->failed))
            continue;
        core_buf_init(&bufs[p]);
        state_shard_snapshot(s->parts[p].shard, &bufs[p]);
        snaps[nsnaps++] =
            (struct stream__snap){.partition = p,
                                  .data = bufs[p].data,
                                  .len = bufs[p].len,
                                  .offset = state_shard_next_offset(s->parts[p].shard)};
    }
    if (nsnaps > 0) {
        pthread_mutex_lock(&s->write_mu);
        int wrc = stream__ckpt_write(s->ckpt_dir, &s->next_seq, snaps, nsnaps, s->nparts,
                                     s->cfg.keep, &s->data_key, NULL);
        pthread_mutex_unlock(&s->write_mu);
        if (wrc < 0 && rc == 0)
            rc = wrc;
    }
    int32_t count = 0;
    for (int32_t p = 0; p < s->nparts; p++) {
        if (!gone[p])
            continue;
        struct stream_part *part = &s->parts[p];
        struct state_shard *empty = state_shard_new(&s->cfg.state, p);
        state_shard_swap(part->shard, empty);
        state_shard_free(empty);
        pthread_mutex_lock(&part->mu);
        part->applied = 0;
        pthread_cond_broadcast(&part->cond);
        pthread_mutex_unlock(&part->mu);
        core_buf_dispose(&bufs[p]);
        count++;
    }
    if (count)
        LOG_INFO("partitions revoked", "count=%d checkpointed=%d", (int)count, nsnaps);
    free(bufs);
    free(snaps);
    free(gone);
    pthread_mutex_unlock(&s->own_mu);
    return rc;
}
