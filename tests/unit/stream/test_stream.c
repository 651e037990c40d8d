/* stream: processing, checkpoints, recovery and the offline dump on a real file log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "evlog/evlog_group.h"
#include "stream/stream_int.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <time.h>

/* ---- helpers ------------------------------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rmtree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The keys of every test log and checkpoint: an in-memory user key store under a fixed data
 * key, one per process so that reopened logs open with the same keys. */
static struct userkeys *test_keys(void)
{
    static struct userkeys *uk;
    static struct seal_key dk;
    if (!uk) {
        memset(&dk, 0, sizeof dk);
        memset(dk.key, 0x33, sizeof dk.key);
        struct userkeys_options o;
        userkeys_options_init(&o);
        o.data_key = &dk;
        assert_int_equal(userkeys_open(&o, &uk), 0);
    }
    return uk;
}

struct env {
    char data[64];
    char log_dir[128];
    char ckpt_dir[128];
    struct evlog *log;
};

static void env_open(struct env *e, int32_t parts)
{
    struct evlog_file_options lo;
    evlog_file_options_init(&lo);
    lo.dir = e->log_dir;
    lo.partitions = parts;
    lo.fsync = EVLOG_FSYNC_NONE;
    lo.keys = test_keys();
    assert_int_equal(evlog_file_open(&lo, &e->log), 0);
}

static void env_init(struct env *e, int32_t parts)
{
    snprintf(e->data, sizeof e->data, "/tmp/stream-test-XXXXXX");
    assert_non_null(mkdtemp(e->data));
    snprintf(e->log_dir, sizeof e->log_dir, "%s/log", e->data);
    snprintf(e->ckpt_dir, sizeof e->ckpt_dir, "%s/checkpoints", e->data);
    env_open(e, parts);
}

static void env_dispose(struct env *e)
{
    if (e->log)
        evlog_close(e->log);
    rmtree(e->data);
}

struct done {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool fired;
    int status;
};

static void on_done(void *arg, int status)
{
    struct done *d = arg;
    pthread_mutex_lock(&d->m);
    d->fired = true;
    d->status = status;
    pthread_cond_broadcast(&d->c);
    pthread_mutex_unlock(&d->m);
}

/* Appends one raw value to partition p and waits for it to be durable. */
static void append_raw_sealed(struct evlog *log, int32_t p, const void *value, size_t len,
                              const struct seal_key *seal)
{
    struct done d = {.fired = false};
    pthread_mutex_init(&d.m, NULL);
    pthread_cond_init(&d.c, NULL);
    struct evlog_record rec = {.partition = p,
                               .event_time_ms = 1000,
                               .ingest_time_ms = 1000,
                               .key = "k",
                               .key_len = 1,
                               .value = value,
                               .value_len = (uint32_t)len,
                               .seal = seal};
    assert_int_equal(evlog_append(log, &rec, 1, on_done, &d), 0);
    pthread_mutex_lock(&d.m);
    while (!d.fired)
        pthread_cond_wait(&d.c, &d.m);
    pthread_mutex_unlock(&d.m);
    assert_int_equal(d.status, 0);
    pthread_mutex_destroy(&d.m);
    pthread_cond_destroy(&d.c);
}

static void append_raw(struct evlog *log, int32_t p, const void *value, size_t len)
{
    append_raw_sealed(log, p, value, len, NULL);
}

/* Appends n encoded events (ids tag-<i>) to each partition. */
static void append_events(struct evlog *log, const char *tag, int n)
{
    struct core_buf val;
    core_buf_init(&val);
    char id[64], item[32];
    for (int32_t p = 0; p < log->partitions; p++) {
        for (int i = 0; i < n; i++) {
            struct event ev;
            event_init(&ev);
            snprintf(id, sizeof id, "%s-%d-%d", tag, (int)p, i);
            snprintf(item, sizeof item, "item-%d", i % 7);
            ev.event_id = (struct event_str){id, strlen(id)};
            snprintf(ev.user_key, sizeof ev.user_key, "%032x", (unsigned)(p * 1000 + i % 5));
            ev.type = event_type_lookup("view", 4);
            ev.item_id = (struct event_str){item, strlen(item)};
            ev.ts_ms = 1700000000000LL + i * 1000;
            ev.recv_ms = ev.ts_ms;
            ev.has_value = true;
            ev.value = i % 5;
            core_buf_reset(&val);
            event_bin_encode(&ev, &val);
            append_raw(log, p, val.data, val.len);
        }
    }
    core_buf_dispose(&val);
}

/* Checkpoints by fork (the default) or by the processors themselves. */
static bool g_fork = true;

/* A stream over e's log and checkpoint directory owning the given partitions (owned NULL:
 * all), only explicit checkpoints. */
static struct stream *start_with(struct env *e, int threads, const int32_t *owned, int32_t n)
{
    struct stream_config cfg;
    stream_config_init(&cfg);
    cfg.fork_checkpoints = g_fork;
    cfg.checkpoint_dir = e->ckpt_dir;
    cfg.checkpoint_interval_ms = 3600 * 1000; /* only explicit checkpoints */
    cfg.threads = threads;
    cfg.keep = 3;
    cfg.owned = owned;
    cfg.nowned = n;
    cfg.data_key = userkeys_data_key(test_keys());
    struct stream *s = NULL;
    assert_int_equal(stream_start(&cfg, e->log, &s), 0);
    return s;
}

static struct stream *start(struct env *e, int threads)
{
    return start_with(e, threads, NULL, 0);
}

static void wait_all(struct stream *s, int64_t offset)
{
    for (int32_t p = 0; p < stream_partitions(s); p++)
        assert_int_equal(stream_wait_applied(s, p, offset, 10000), 0);
}

/* The same text stream_dump_offline produces. */
static char *live_dump(struct stream *s)
{
    struct core_buf b;
    core_buf_init(&b);
    for (int32_t p = 0; p < stream_partitions(s); p++) {
        core_buf_printf(&b, "# partition %d offset %lld\n", (int)p,
                        (long long)state_shard_next_offset(stream_shard(s, p)));
        state_shard_dump(stream_shard(s, p), &b);
    }
    return b.data;
}

static char *offline_dump(struct env *e)
{
    struct state_config sc;
    state_config_init(&sc);
    struct core_buf b;
    core_buf_init(&b);
    assert_int_equal(stream_dump_offline(e->data, test_keys(), &sc, &b), 0);
    return b.data;
}

/* ---- tests --------------------------------------------------------------------------------- */

static void apply_checkpoint_restart(void)
{
    struct env e;
    env_init(&e, 3);
    append_events(e.log, "a", 40);
    struct stream *s = start(&e, 2); /* thread 0 owns partitions 0 and 2 */
    wait_all(s, 40);
    for (int32_t p = 0; p < 3; p++) {
        struct state_stats st;
        state_shard_stats(stream_shard(s, p), &st);
        assert_int_equal(st.events, 40);
        assert_int_equal(state_shard_next_offset(stream_shard(s, p)), 40);
    }
    assert_int_equal(stream_wait_applied(s, 0, 41, 50), CORE_E_TIMEOUT);
    assert_int_equal(stream_checkpoint(s), 0);
    append_events(e.log, "b", 25); /* consumed while running, not checkpointed */
    wait_all(s, 65);
    char *before = live_dump(s);
    assert_true(stream_healthy(s));
    stream_stop(s, false);

    /* Restart: checkpoint at 40 + replay of 25 gives the same state. */
    s = start(&e, 1);
    wait_all(s, 65);
    char *after = live_dump(s);
    assert_string_equal(before, after);
    append_events(e.log, "c", 5);
    wait_all(s, 70);
    free(after);
    after = live_dump(s);
    char *off = offline_dump(&e);
    assert_string_equal(after, off);
    stream_stop(s, true);
    free(before);
    free(after);
    free(off);
    env_dispose(&e);
}

static void test_apply_checkpoint_restart(void **state)
{
    (void)state;
    struct stream_config cfg;
    stream_config_init(&cfg);
    assert_true(cfg.fork_checkpoints == stream_fork_checkpoints_supported()); /* the default */
    g_fork = cfg.fork_checkpoints;
    apply_checkpoint_restart();
    g_fork = true;
}

static void test_apply_checkpoint_restart_inline(void **state)
{
    (void)state;
    g_fork = false;
    apply_checkpoint_restart();
    g_fork = true;
}

static size_t count_checkpoints(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        n += strlen(de->d_name) == 20 && strspn(de->d_name, "0123456789") == 20;
    closedir(d);
    return n;
}

/* A forked checkpoint: written by a child that is reaped (no zombie, no child left), its
 * offsets reach the parent (stream_checkpointed_offset), and processing goes on meanwhile;
 * a checkpoint of the processors' own snapshots and one by fork restore the same state. */
static void test_fork_checkpoint(void **state)
{
    (void)state;
    if (!stream_fork_checkpoints_supported()) {
        print_message(
            "forked checkpoints are off in this build (AddressSanitizer before LLVM 16)\n");
        skip();
    }
    struct env e;
    env_init(&e, 3);
    append_events(e.log, "a", 30);
    struct stream *s = start(&e, 2);
    wait_all(s, 30);
    for (int32_t p = 0; p < 3; p++)
        assert_int_equal(stream_checkpointed_offset(s, p), 0);
    assert_int_equal(stream_checkpoint(s), 0);
    int st;
    assert_int_equal(waitpid(-1, &st, WNOHANG), -1); /* the child was reaped */
    assert_int_equal(errno, ECHILD);
    assert_int_equal(count_checkpoints(e.ckpt_dir), 1);
    for (int32_t p = 0; p < 3; p++)
        assert_int_equal(stream_checkpointed_offset(s, p), 30);
    for (int k = 0; k < 5; k++) { /* processing resumes after each fork */
        append_events(e.log, "b", 2);
        wait_all(s, 32 + 2 * k);
        assert_int_equal(stream_checkpoint(s), 0);
        for (int32_t p = 0; p < 3; p++)
            assert_int_equal(stream_checkpointed_offset(s, p), 32 + 2 * k);
    }
    assert_int_equal(count_checkpoints(e.ckpt_dir), 3); /* keep 3: the children pruned */
    char *live = live_dump(s);
    stream_stop(s, false);
    s = start(&e, 1); /* restored from the newest forked checkpoint, nothing to replay */
    wait_all(s, 40);
    char *back = live_dump(s);
    assert_string_equal(live, back);
    free(back);
    stream_stop(s, false);
    g_fork = false;
    s = start(&e, 2);
    wait_all(s, 40);
    assert_int_equal(stream_checkpoint(s), 0); /* in-process snapshots of the same state */
    stream_stop(s, false);
    g_fork = true;
    s = start(&e, 2);
    wait_all(s, 40);
    back = live_dump(s);
    assert_string_equal(live, back);
    stream_stop(s, false);
    free(live);
    free(back);
    env_dispose(&e);
}

static void test_corrupt_newest_falls_back(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, 2);
    append_events(e.log, "a", 10);
    struct stream *s = start(&e, 2);
    wait_all(s, 10);
    assert_int_equal(stream_checkpoint(s), 0); /* seq 1 at offset 10 */
    append_events(e.log, "b", 10);
    wait_all(s, 20);
    assert_int_equal(stream_checkpoint(s), 0); /* seq 2 at offset 20 */
    char *live = live_dump(s);
    stream_stop(s, false);

    char path[256];
    snprintf(path, sizeof path, "%s/%020d/p1.snap", e.ckpt_dir, 2);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 45, SEEK_SET); /* inside the sealed snapshot's ciphertext */
    int c = fgetc(f);
    fseek(f, 45, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);

    struct state_config sc;
    state_config_init(&sc);
    struct state_shard *shards[2] = {state_shard_new(&sc, 0), state_shard_new(&sc, 1)};
    uint64_t max_seq = 0;
    assert_int_equal(stream__recover(e.ckpt_dir, e.log, &sc, shards, 2, NULL, &max_seq,
                                     userkeys_data_key(test_keys())),
                     0);
    assert_int_equal(max_seq, 2);
    /* partitions are independent: p0 from seq 2, the damaged p1 from seq 1 */
    assert_int_equal(state_shard_next_offset(shards[0]), 20);
    assert_int_equal(state_shard_next_offset(shards[1]), 10);
    state_shard_free(shards[0]);
    state_shard_free(shards[1]);

    /* A damaged manifest is skipped the same way. */
    snprintf(path, sizeof path, "%s/%020d/MANIFEST", e.ckpt_dir, 1);
    f = fopen(path, "r+b");
    assert_non_null(f);
    fputc('X', f);
    fclose(f);
    shards[0] = state_shard_new(&sc, 0);
    shards[1] = state_shard_new(&sc, 1);
    assert_int_equal(stream__recover(e.ckpt_dir, e.log, &sc, shards, 2, NULL, &max_seq,
                                     userkeys_data_key(test_keys())),
                     0);
    assert_int_equal(state_shard_next_offset(shards[0]), 20);
    assert_int_equal(state_shard_next_offset(shards[1]), 0); /* nothing valid: empty */
    state_shard_free(shards[0]);
    state_shard_free(shards[1]);

    /* The stream still reaches the same state by replay; the offline dump agrees. */
    s = start(&e, 1);
    wait_all(s, 20);
    char *again = live_dump(s);
    assert_string_equal(live, again);
    stream_stop(s, false);
    char *off = offline_dump(&e);
    assert_string_equal(live, off);
    free(live);
    free(again);
    free(off);
    env_dispose(&e);
}

static struct stream *start_owning(struct env *e, const int32_t *owned, int32_t n)
{
    return start_with(e, 2, owned, n);
}

/* The dump of every partition, each from whichever of the streams owns it. */
static char *group_dump(struct stream **ss, int n)
{
    struct core_buf b;
    core_buf_init(&b);
    for (int32_t p = 0; p < stream_partitions(ss[0]); p++) {
        struct stream *o = NULL;
        for (int i = 0; i < n; i++)
            if (stream_owns(ss[i], p)) {
                assert_null(o); /* exactly one owner */
                o = ss[i];
            }
        assert_non_null(o);
        core_buf_printf(&b, "# partition %d offset %lld\n", (int)p,
                        (long long)state_shard_next_offset(stream_shard(o, p)));
        state_shard_dump(stream_shard(o, p), &b);
    }
    return b.data;
}

/* Two processors share a log and a checkpoint directory; partitions move between them by
 * revoke + assign (through a checkpoint) and by takeover after one dies without a final
 * checkpoint; the end state equals one processor's over the same log. */
static void test_partition_handover(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, 4);
    append_events(e.log, "a", 30);
    struct stream *a = start_owning(&e, (const int32_t[]){0, 1}, 2);
    struct stream *b = start_owning(&e, (const int32_t[]){2, 3}, 2);
    assert_true(stream_owns(a, 1));
    assert_false(stream_owns(a, 2));
    assert_int_equal(stream_wait_applied(a, 1, 30, 10000), 0);
    assert_int_equal(stream_wait_applied(b, 3, 30, 10000), 0);
    assert_int_equal(state_shard_next_offset(stream_shard(a, 2)), 0); /* not a's to apply */

    /* revoke: a checkpoint of partition 1 alone, the shard emptied, nothing applied after */
    assert_int_equal(stream_revoke(a, (const int32_t[]){1}, 1), 0);
    assert_false(stream_owns(a, 1));
    assert_int_equal(state_shard_next_offset(stream_shard(a, 1)), 0);
    append_events(e.log, "b", 20);
    assert_int_equal(stream_wait_applied(a, 0, 50, 10000), 0);
    assert_int_equal(state_shard_next_offset(stream_shard(a, 1)), 0);

    /* assign: b restores partition 1 at 30 from that checkpoint (at once, no replay wait),
     * then applies the rest */
    assert_int_equal(stream_assign(b, (const int32_t[]){1}, 1), 0);
    assert_true(stream_owns(b, 1));
    assert_true(state_shard_next_offset(stream_shard(b, 1)) >= 30);
    assert_int_equal(stream_wait_applied(b, 1, 50, 10000), 0);
    assert_int_equal(stream_checkpoint(b), 0); /* partitions 1, 2, 3 at 50 */
    assert_int_equal(stream_checkpoint(a), 0); /* partition 0 at 50 */

    /* a dies (no final checkpoint, no revoke); b takes partition 0 over from a's checkpoint
     * and replays what a applied after it */
    append_events(e.log, "c", 10);
    assert_int_equal(stream_wait_applied(a, 0, 60, 10000), 0);
    stream_stop(a, false);
    assert_int_equal(stream_assign(b, (const int32_t[]){0}, 1), 0);
    assert_int_equal(state_shard_next_offset(stream_shard(b, 0)), 50);
    wait_all(b, 60);
    char *group = group_dump(&b, 1);

    /* one processor, fresh checkpoint directory: the same state */
    char *solo_dir = e.ckpt_dir + 0;
    char saved[128];
    snprintf(saved, sizeof saved, "%s", solo_dir);
    snprintf(e.ckpt_dir, sizeof e.ckpt_dir, "%s/solo", e.data);
    struct stream *s = start(&e, 1);
    wait_all(s, 60);
    char *solo = live_dump(s);
    assert_string_equal(group, solo);
    stream_stop(s, false);
    snprintf(e.ckpt_dir, sizeof e.ckpt_dir, "%s", saved);

    /* the checkpoints left let a restart of everything reach it too */
    stream_stop(b, true);
    s = start(&e, 2);
    wait_all(s, 60);
    char *again = live_dump(s);
    assert_string_equal(group, again);
    stream_stop(s, false);
    free(group);
    free(solo);
    free(again);
    env_dispose(&e);
}

/* Pruning keeps each partition's newest checkpoints: many checkpoints of some partitions do
 * not push out the only checkpoint of the others. */
static void test_prune_per_partition(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, 2);
    struct stream *b = start_owning(&e, (const int32_t[]){1}, 1);
    append_events(e.log, "a", 5);
    assert_int_equal(stream_wait_applied(b, 1, 5, 10000), 0);
    assert_int_equal(stream_checkpoint(b), 0); /* seq 1: partition 1 */
    struct stream *a = start_owning(&e, (const int32_t[]){0}, 1);
    for (int i = 0; i < 5; i++) {
        append_events(e.log, "x", 2);
        assert_int_equal(stream_wait_applied(a, 0, 5 + 2 * (i + 1), 10000), 0);
        assert_int_equal(stream_checkpoint(a), 0); /* seq 2..6: partition 0 */
    }
    stream_stop(a, false);
    stream_stop(b, false);
    char path[256];
    struct stat st;
    for (int seq = 1; seq <= 6; seq++) {
        snprintf(path, sizeof path, "%s/%020d", e.ckpt_dir, seq);
        assert_int_equal(stat(path, &st) == 0, seq == 1 || seq >= 4);
    }
    /* and recovery combines them: partition 1 at 5 from seq 1, partition 0 at 15 from seq 6 */
    struct state_config sc;
    state_config_init(&sc);
    struct state_shard *shards[2] = {state_shard_new(&sc, 0), state_shard_new(&sc, 1)};
    uint64_t max_seq = 0;
    assert_int_equal(stream__recover(e.ckpt_dir, e.log, &sc, shards, 2, NULL, &max_seq,
                                     userkeys_data_key(test_keys())),
                     0);
    assert_int_equal(max_seq, 6);
    assert_int_equal(state_shard_next_offset(shards[0]), 15);
    assert_int_equal(state_shard_next_offset(shards[1]), 5);
    state_shard_free(shards[0]);
    state_shard_free(shards[1]);
    env_dispose(&e);
}

/* Waits until stream s owns exactly n partitions (at most 60 s: a mock-cluster rebalance takes
 * about the session timeout). */
static void wait_owning(struct stream *s, int32_t n)
{
    for (int t = 0; t < 600; t++) {
        int32_t k = 0;
        for (int32_t p = 0; p < stream_partitions(s); p++)
            k += stream_owns(s, p);
        if (k == n)
            return;
        nanosleep(&(struct timespec){0, 100000000}, NULL);
    }
    fail_msg("the stream never came to own %d partitions", (int)n);
}

/* Waits until every partition is applied to offset by whichever stream owns it. */
static void wait_group(struct stream **ss, int n, int64_t offset)
{
    for (int32_t p = 0; p < stream_partitions(ss[0]); p++) {
        int i = 0;
        while (i < n && !stream_owns(ss[i], p))
            i++;
        assert_true(i < n);
        assert_int_equal(stream_wait_applied(ss[i], p, offset, 10000), 0);
    }
}

static struct evlog_group *group_join(struct stream *s, const char *bootstraps)
{
    struct evlog_group_options o;
    evlog_group_options_init(&o);
    o.brokers = bootstraps;
    o.topic = "events";
    o.group = "processors";
    o.session_timeout_ms = 6000;
    o.commit_interval_ms = 200;
    struct evlog_group *g = NULL;
    assert_int_equal(stream_group_join(s, &o, &g), 0);
    return g;
}

/* Two streams over one log, each a member of a Kafka consumer group on the mock cluster (the
 * group only decides ownership; records come from the file log here): the group's rebalances
 * move partitions between them through checkpoints, applied offsets reach the group, and the
 * state equals one stream's over the same log. */
static void test_group_rebalances(void **state)
{
    (void)state;
    char err[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), err, sizeof err);
    assert_non_null(rk);
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 1);
    assert_non_null(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, "events", 4, 1), 0);
    const char *boot = rd_kafka_mock_cluster_bootstraps(mc);

    struct env e;
    env_init(&e, 4);
    append_events(e.log, "a", 20);
    struct stream *ss[2];
    ss[0] = start_owning(&e, (const int32_t[]){0}, 0); /* owns nothing until the group says */
    assert_false(stream_owns(ss[0], 0));
    struct evlog_group *g0 = group_join(ss[0], boot);
    wait_owning(ss[0], 4);
    wait_group(ss, 1, 20);

    /* the applied offsets reach the group (what lag tools read) */
    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(cc, "bootstrap.servers", boot, err, sizeof err), 0);
    assert_int_equal(rd_kafka_conf_set(cc, "group.id", "processors", err, sizeof err), 0);
    rd_kafka_t *reader = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof err);
    assert_non_null(reader);
    int64_t committed = -1;
    for (int t = 0; t < 100 && committed != 20; t++) {
        nanosleep(&(struct timespec){0, 100000000}, NULL);
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, "events", 3);
        if (rd_kafka_committed(reader, l, 5000) == 0)
            committed = l->elems[0].offset;
        rd_kafka_topic_partition_list_destroy(l);
    }
    rd_kafka_consumer_close(reader);
    rd_kafka_destroy(reader);
    assert_int_equal(committed, 20);

    /* a second member: two partitions each, handed over through checkpoints */
    ss[1] = start_owning(&e, (const int32_t[]){0}, 0);
    struct evlog_group *g1 = group_join(ss[1], boot);
    wait_owning(ss[1], 2);
    wait_owning(ss[0], 2);
    append_events(e.log, "b", 15);
    wait_group(ss, 2, 35);
    char *split = group_dump(ss, 2);

    /* the second leaves (revoke: checkpoint): the first takes everything back */
    stream_group_leave(g1);
    stream_stop(ss[1], false);
    wait_owning(ss[0], 4);
    append_events(e.log, "c", 5);
    wait_group(ss, 1, 40);
    char *back = group_dump(ss, 1);
    stream_group_leave(g0);
    wait_owning(ss[0], 0); /* leaving revokes everything */
    stream_stop(ss[0], false);

    /* one stream alone over the same log, own checkpoint directory */
    snprintf(e.ckpt_dir, sizeof e.ckpt_dir, "%s/solo", e.data);
    struct stream *solo = start(&e, 1);
    wait_all(solo, 40);
    char *want = live_dump(solo);
    assert_string_equal(back, want);
    stream_stop(solo, false);
    assert_non_null(strstr(split, "# partition 3 offset 35"));
    free(split);
    free(back);
    free(want);
    env_dispose(&e);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
}

static void test_keep_prunes_old(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, 1);
    struct stream *s = start(&e, 1);
    for (int i = 0; i < 5; i++) {
        append_events(e.log, i % 2 ? "x" : "y", 3);
        wait_all(s, 3 * (i + 1));
        assert_int_equal(stream_checkpoint(s), 0);
    }
    stream_stop(s, false);
    char path[256];
    struct stat st;
    for (int seq = 1; seq <= 5; seq++) {
        snprintf(path, sizeof path, "%s/%020d", e.ckpt_dir, seq);
        assert_int_equal(stat(path, &st) == 0, seq >= 3);
    }
    env_dispose(&e);
}

static void test_partition_mismatch_refused(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, 2);
    append_events(e.log, "a", 3);
    struct stream *s = start(&e, 1);
    wait_all(s, 3);
    stream_stop(s, true);
    evlog_close(e.log);
    rmtree(e.log_dir);
    env_open(&e, 3);
    struct stream_config cfg;
    stream_config_init(&cfg);
    cfg.checkpoint_dir = e.ckpt_dir;
    s = NULL;
    assert_int_equal(stream_start(&cfg, e.log, &s), CORE_E_INVALID);
    assert_null(s);
    env_dispose(&e);
}

static void test_checkpoint_ahead_of_log(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, 1);
    append_events(e.log, "a", 5);
    struct stream *s = start(&e, 1);
    wait_all(s, 5);
    stream_stop(s, true);
    /* The log "lost" its records: a fresh log, shorter than the checkpoint. */
    evlog_close(e.log);
    rmtree(e.log_dir);
    env_open(&e, 1);
    append_events(e.log, "b", 2);
    s = start(&e, 1); /* refuses the checkpoint (logged) and rebuilds from the log */
    wait_all(s, 2);
    struct state_stats st;
    state_shard_stats(stream_shard(s, 0), &st);
    assert_int_equal(st.events, 2);
    stream_stop(s, false);
    env_dispose(&e);
}

static void test_undecodable_record_stops(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, 1);
    append_events(e.log, "a", 2);
    append_raw(e.log, 0, "\xff\xff\xff", 3);
    append_events(e.log, "b", 2);
    struct stream *s = start(&e, 1);
    assert_int_equal(stream_wait_applied(s, 0, 5, 5000), CORE_E_FAILED);
    assert_false(stream_healthy(s));
    assert_int_equal(state_shard_next_offset(stream_shard(s, 0)), 2);
    assert_int_equal(stream_checkpoint(s), CORE_E_FAILED);
    stream_stop(s, true);
    struct state_config sc;
    state_config_init(&sc);
    struct core_buf b;
    core_buf_init(&b);
    assert_int_equal(stream_dump_offline(e.data, test_keys(), &sc, &b), CORE_E_CORRUPT);
    core_buf_dispose(&b);
    env_dispose(&e);
}

/* A record whose user key was shredded is moved past (counted), not applied and not an
 * error: the processor stays healthy and later records are applied. */
static void test_erased_record_skipped(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, 1);
    const char *user = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
    struct seal_key key;
    assert_int_equal(userkeys_acquire(test_keys(), &user, 1, &key), 0);
    append_events(e.log, "a", 2);
    struct event ev;
    event_init(&ev);
    memcpy(ev.user_key, user, 33);
    ev.event_id = (struct event_str){"erased-1", 8};
    ev.type = event_type_lookup("view", 4);
    ev.item_id = (struct event_str){"secret-item", 11};
    ev.ts_ms = ev.recv_ms = 1700000005000LL;
    struct core_buf val;
    core_buf_init(&val);
    event_bin_encode(&ev, &val);
    append_raw_sealed(e.log, 0, val.data, val.len, &key);
    core_buf_dispose(&val);
    append_events(e.log, "b", 2);
    assert_int_equal(userkeys_shred(test_keys(), user), 0);

    struct stream *s = start(&e, 1);
    assert_int_equal(stream_wait_applied(s, 0, 5, 5000), 0);
    assert_true(stream_healthy(s));
    assert_int_equal(state_shard_next_offset(stream_shard(s, 0)), 5);
    assert_int_equal(state_shard_skipped(stream_shard(s, 0)), 1);
    char *live = live_dump(s);
    assert_null(strstr(live, "secret-item"));
    assert_null(strstr(live, user));
    stream_stop(s, false);
    char *off = offline_dump(&e);
    assert_string_equal(live, off);
    free(live);
    free(off);
    env_dispose(&e);
}

int main(void)
{
    core_log_set_level(CORE_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply_checkpoint_restart),
        cmocka_unit_test(test_apply_checkpoint_restart_inline),
        cmocka_unit_test(test_fork_checkpoint),
        cmocka_unit_test(test_corrupt_newest_falls_back),
        cmocka_unit_test(test_keep_prunes_old),
        cmocka_unit_test(test_partition_handover),
        cmocka_unit_test(test_prune_per_partition),
        cmocka_unit_test(test_group_rebalances),
        cmocka_unit_test(test_partition_mismatch_refused),
        cmocka_unit_test(test_checkpoint_ahead_of_log),
        cmocka_unit_test(test_undecodable_record_stops),
        cmocka_unit_test(test_erased_record_skipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
