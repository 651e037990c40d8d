/*
 * evlog_append: append throughput and append-to-done latency of the evlog file backend.
 *
 * N producer threads each keep up to `window` appends in flight, like HTTP worker threads
 * serving that many connections each (window 1: a thread per connection, blocking until its
 * reply): each call appends 1 or 10 records with ~150-byte values. Each fsync policy and call
 * size gets a fresh log for a fixed time; the program prints records/s and the p50/p99/max
 * latency from calling evlog_append until the reply could go out: done has run and append
 * has returned, whichever is later (so a caller that writes for others pays for that too).
 *
 * Not built by CMake. From the repository root:
 *
 *   gcc -std=c11 -O2 -g -D_GNU_SOURCE -Wall -Wextra -Isrc -o /tmp/evlog_append \
 *       bench/evlog_append.c src/core/[a-z]*.c src/evlog/[a-z]*.c src/privacy/[a-z]*.c \
 *       -lxxhash -lsodium -lnettle -lpthread -lm
 *
 * Records are sealed (encryption at rest) under the data key, as the log always does.
 *
 * Usage: /tmp/evlog_append [-t threads] [-w window] [-s seconds] [-p partitions]
 *            [-i fsync_interval_ms] [-d parent_dir] [-P always|batch|none] [-n 1|10]
 * The log lives in a fresh directory under parent_dir (default /tmp) and is removed after.
 */
#include "core/core.h"
#include "evlog/evlog.h"
#include "privacy/userkeys.h"

#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VALUE_LEN 150
#define MAX_CALL 10

struct bench_cfg {
    int threads;
    int window;
    int seconds;
    int32_t partitions;
    int interval_ms;
    const char *parent;
    int only_policy; /* -1: all */
    int only_n;      /* 0: both */
};

struct producer;

/* One append in flight: the records must stay valid until done runs. */
struct slot {
    struct producer *pr;
    struct evlog_record recs[MAX_CALL];
    int64_t t0;
    bool busy, returned, done;
};

struct producer {
    struct evlog *log;
    int id;
    int n; /* records per call */
    int32_t partitions;
    atomic_bool *stop;
    pthread_mutex_t m;
    pthread_cond_t c; /* a slot became free */
    struct slot *slots;
    int window, nbusy;
    char keys[MAX_CALL][24];
    char vals[MAX_CALL][VALUE_LEN];
    uint64_t seq;
    int64_t *lat; /* append call to reply possible, ns */
    size_t nlat, cap_lat;
    uint64_t records;
    int failures;
};

/* The reply can go out once done ran and append returned, whichever is later (producer lock
 * held). */
static void slot_finish(struct slot *sl, int64_t now)
{
    struct producer *pr = sl->pr;
    if (pr->nlat == pr->cap_lat) {
        pr->cap_lat = pr->cap_lat ? 2 * pr->cap_lat : 4096;
        pr->lat = core_xrealloc(pr->lat, pr->cap_lat * sizeof *pr->lat);
    }
    pr->lat[pr->nlat++] = now - sl->t0;
    pr->records += (uint64_t)pr->n;
    sl->busy = false;
    pr->nbusy--;
    pthread_cond_signal(&pr->c);
}

static void on_done(void *arg, int status)
{
    struct slot *sl = arg;
    if (status < 0) {
        fprintf(stderr, "append failed: %s\n", core_strerror(status));
        exit(1);
    }
    int64_t now = core_mono_ns();
    pthread_mutex_lock(&sl->pr->m);
    sl->done = true;
    if (sl->returned)
        slot_finish(sl, now);
    pthread_mutex_unlock(&sl->pr->m);
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static void fill_slot(struct producer *pr, struct slot *sl)
{
    for (int i = 0; i < pr->n; i++) {
        uint64_t h = mix(++pr->seq);
        snprintf(pr->keys[i], sizeof pr->keys[i], "u%016llx", (unsigned long long)h);
        memset(pr->vals[i], 'a' + (int)(h % 26), sizeof pr->vals[i]);
        memcpy(pr->vals[i], &pr->seq, sizeof pr->seq);
        sl->recs[i] = (struct evlog_record){
            .partition = (int32_t)(h % (uint64_t)pr->partitions),
            .event_time_ms = core_now_ms(),
            .ingest_time_ms = core_now_ms(),
            .key = pr->keys[i],
            .key_len = (uint32_t)strlen(pr->keys[i]),
            .value = pr->vals[i],
            .value_len = VALUE_LEN,
        };
    }
}

static void *producer_main(void *arg)
{
    struct producer *pr = arg;
    pr->seq = (uint64_t)pr->id << 40;
    pthread_mutex_lock(&pr->m);
    while (!atomic_load_explicit(pr->stop, memory_order_relaxed)) {
        while (pr->nbusy == pr->window)
            pthread_cond_wait(&pr->c, &pr->m);
        struct slot *sl = pr->slots;
        while (sl->busy)
            sl++;
        sl->busy = true;
        sl->returned = sl->done = false;
        pr->nbusy++;
        pthread_mutex_unlock(&pr->m);
        fill_slot(pr, sl);
        sl->t0 = core_mono_ns();
        int rc = evlog_append(pr->log, sl->recs, (size_t)pr->n, on_done, sl);
        int64_t now = core_mono_ns();
        pthread_mutex_lock(&pr->m);
        if (rc < 0) {
            pr->failures++; /* CORE_E_FULL: try again */
            sl->busy = false;
            pr->nbusy--;
            continue;
        }
        sl->returned = true;
        if (sl->done)
            slot_finish(sl, now);
    }
    while (pr->nbusy > 0)
        pthread_cond_wait(&pr->c, &pr->m);
    pthread_mutex_unlock(&pr->m);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static const char *policy_name(enum evlog_fsync f)
{
    return f == EVLOG_FSYNC_ALWAYS ? "always" : f == EVLOG_FSYNC_BATCH ? "batch" : "none";
}

static void run_case(const struct bench_cfg *cfg, enum evlog_fsync policy, int n)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/evlog-bench-XXXXXX", cfg->parent);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    struct evlog_file_options opt;
    evlog_file_options_init(&opt);
    opt.dir = dir;
    opt.partitions = cfg->partitions;
    opt.fsync = policy;
    opt.fsync_interval_ms = cfg->interval_ms;
    /* Records are sealed under the data key (as records without a user key are). */
    struct seal_key dk = {.key = {7}};
    struct userkeys_options uo;
    userkeys_options_init(&uo);
    uo.data_key = &dk;
    if (userkeys_open(&uo, &opt.keys) < 0)
        exit(1);
    struct evlog *log;
    int rc = evlog_file_open(&opt, &log);
    if (rc < 0) {
        fprintf(stderr, "open %s: %s\n", dir, core_strerror(rc));
        exit(1);
    }
    atomic_bool stop = false;
    struct producer *prs = core_xcalloc((size_t)cfg->threads, sizeof *prs);
    pthread_t *th = core_xcalloc((size_t)cfg->threads, sizeof *th);
    int64_t t0 = core_mono_ns();
    for (int t = 0; t < cfg->threads; t++) {
        struct producer *pr = &prs[t];
        pr->log = log;
        pr->id = t;
        pr->n = n;
        pr->partitions = cfg->partitions;
        pr->stop = &stop;
        pr->window = cfg->window;
        pr->slots = core_xcalloc((size_t)cfg->window, sizeof *pr->slots);
        for (int w = 0; w < cfg->window; w++)
            pr->slots[w].pr = pr;
        pthread_mutex_init(&pr->m, NULL);
        pthread_cond_init(&pr->c, NULL);
        pthread_create(&th[t], NULL, producer_main, pr);
    }
    sleep((unsigned)cfg->seconds);
    atomic_store(&stop, true);
    uint64_t records = 0;
    size_t nlat = 0;
    int failures = 0;
    for (int t = 0; t < cfg->threads; t++) {
        pthread_join(th[t], NULL);
        records += prs[t].records;
        nlat += prs[t].nlat;
        failures += prs[t].failures;
    }
    double secs = (double)(core_mono_ns() - t0) / 1e9;
    int64_t *all = core_xmalloc((nlat ? nlat : 1) * sizeof *all);
    size_t k = 0;
    for (int t = 0; t < cfg->threads; t++) {
        memcpy(all + k, prs[t].lat, prs[t].nlat * sizeof *all);
        k += prs[t].nlat;
        free(prs[t].lat);
        free(prs[t].slots);
        pthread_mutex_destroy(&prs[t].m);
        pthread_cond_destroy(&prs[t].c);
    }
    qsort(all, nlat, sizeof *all, cmp_i64);
    double p50 = nlat ? (double)all[nlat / 2] / 1e3 : 0;
    double p99 = nlat ? (double)all[nlat * 99 / 100] / 1e3 : 0;
    double pmax = nlat ? (double)all[nlat - 1] / 1e3 : 0;
    int64_t tc = core_mono_ns();
    evlog_close(log);
    userkeys_free(opt.keys);
    double close_ms = (double)(core_mono_ns() - tc) / 1e6;
    printf(
        "%-6s n=%-2d threads=%-3d window=%-3d %10.0f rec/s  %9.0f calls/s  p50 %8.1f us  p99 %8.1f "
        "us  max %8.1f us  full=%d close=%.1fms\n",
        policy_name(policy), n, cfg->threads, cfg->window, (double)records / secs,
        (double)nlat / secs, p50, p99, pmax, failures, close_ms);
    fflush(stdout);
    free(all);
    free(prs);
    free(th);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv)
{
    struct bench_cfg cfg = {8, 1, 3, 4, 10, "/tmp", -1, 0};
    int c;
    while ((c = getopt(argc, argv, "t:w:s:p:i:d:P:n:")) != -1) {
        switch (c) {
        case 't':
            cfg.threads = (int)strtol(optarg, NULL, 10);
            break;
        case 'w':
            cfg.window = (int)strtol(optarg, NULL, 10);
            break;
        case 's':
            cfg.seconds = (int)strtol(optarg, NULL, 10);
            break;
        case 'p':
            cfg.partitions = (int32_t)strtol(optarg, NULL, 10);
            break;
        case 'i':
            cfg.interval_ms = (int)strtol(optarg, NULL, 10);
            break;
        case 'd':
            cfg.parent = optarg;
            break;
        case 'P':
            cfg.only_policy = !strcmp(optarg, "always")  ? EVLOG_FSYNC_ALWAYS
                              : !strcmp(optarg, "batch") ? EVLOG_FSYNC_BATCH
                                                         : EVLOG_FSYNC_NONE;
            break;
        case 'n':
            cfg.only_n = (int)strtol(optarg, NULL, 10);
            break;
        default:
            fprintf(stderr,
                    "usage: %s [-t threads] [-w window] [-s seconds] [-p partitions] "
                    "[-i fsync_interval_ms] [-d parent_dir] [-P policy] [-n 1|10]\n",
                    argv[0]);
            return 2;
        }
    }
    if (cfg.threads < 1 || cfg.window < 1 || cfg.seconds < 1 || cfg.partitions < 1 ||
        cfg.interval_ms < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    core_log_set_level(CORE_LOG_WARN);
    enum evlog_fsync policies[] = {EVLOG_FSYNC_ALWAYS, EVLOG_FSYNC_BATCH, EVLOG_FSYNC_NONE};
    int sizes[] = {1, MAX_CALL};
    for (int pi = 0; pi < 3; pi++) {
        if (cfg.only_policy >= 0 && (int)policies[pi] != cfg.only_policy)
            continue;
        for (int si = 0; si < 2; si++)
            if (!cfg.only_n || cfg.only_n == sizes[si])
                run_case(&cfg, policies[pi], sizes[si]);
    }
    return 0;
}
