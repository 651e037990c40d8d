/*
 * The store against a real redis-server (started here on a private unix socket; a missing
 * redis-server fails the test: scripts/install-deps.sh installs it): the publisher writes
 * every user record (with its TTL), the partition index, aggregate images, versions and the
 * kNN lists in pipelined rounds; a reader over empty shards restores the same aggregates,
 * reads the same users and, with the imported kNN lists, recommends exactly what the
 * publishing side does; removals delete records; and the pipelined rate is measured.
 */
#include "../reco/reco_test_util.h"
#include "store/store.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[256], sock[300];
static pid_t redis_pid;

static redisContext *connect_redis(void)
{
    redisContext *c = redisConnectUnix(sock);
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    return c;
}

static int start_redis(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rs-store-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(sock, sizeof sock, "%s/redis.sock", tmpdir);
    redis_pid = fork();
    if (redis_pid == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(126);
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sock, "--save", "",
               "--appendonly", "no", "--dir", tmpdir, "--loglevel", "warning", (char *)NULL);
        fprintf(stderr, "redis-server not found: scripts/install-deps.sh installs it\n");
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        redisContext *c = redisConnectUnix(sock);
        if (c && !c->err) {
            redisFree(c);
            return 0;
        }
        if (c)
            redisFree(c);
        int status;
        if (waitpid(redis_pid, &status, WNOHANG) == redis_pid)
            return -1; /* it exited: not installed */
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static int stop_redis(void **state)
{
    (void)state;
    kill(redis_pid, SIGTERM);
    waitpid(redis_pid, NULL, 0);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void flushall(void)
{
    redisContext *c = connect_redis();
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    redisFree(c);
}

static long long int_reply(redisContext *c, const char *fmt, const char *arg)
{
    redisReply *r = redisCommand(c, fmt, arg);
    assert_non_null(r);
    long long v = r->type == REDIS_REPLY_INTEGER  ? r->integer
                  : r->type == REDIS_REPLY_STRING ? atoll(r->str)
                                                  : -1;
    freeReplyObject(r);
    return v;
}

static struct store_addr addr(void)
{
    struct store_addr a;
    char err[128];
    char url[320];
    snprintf(url, sizeof url, "unix://%s", sock);
    assert_int_equal(store_addr_parse(url, &a, err, sizeof err), 0);
    return a;
}

static void test_addr_parse(void **state)
{
    (void)state;
    struct store_addr a;
    char err[128];
    assert_int_equal(store_addr_parse("redis://127.0.0.1:6380", &a, err, sizeof err), 0);
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 6380);
    assert_string_equal(a.unix_path, "");
    assert_int_equal(store_addr_parse("unix:///run/redis.sock", &a, err, sizeof err), 0);
    assert_string_equal(a.unix_path, "/run/redis.sock");
    const char *bad[] = {"redis://host", "redis://:1",      "redis://h:0",    "redis://h:99999",
                         "http://h:1",   "unix://relative", "redis://h:1/db", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(store_addr_parse(bad[i], &a, err, sizeof err), CORE_E_INVALID);
}

static struct store_publisher *publisher(struct rt_world *w)
{
    struct store_publisher_config pc = {.addr = addr(),
                                        .shards = w->shards,
                                        .nshards = RT_NSHARDS,
                                        .catalog = w->cat,
                                        .interval_ms = 3600 * 1000, /* rounds: flush() */
                                        .user_ttl_ms = 600 * 1000};
    struct store_publisher *p = NULL;
    assert_int_equal(store_publisher_start(&pc, &p), 0);
    return p;
}

static void test_publish_then_serve_the_same(void **state)
{
    (void)state;
    flushall();
    struct rt_world w;
    rt_world_init(&w, NULL);
    struct store_publisher *p = publisher(&w);
    assert_int_equal(store_publisher_flush(p), 0);

    redisContext *c = connect_redis();
    char key[EVENT_KEY_HEX + 1], rkey[64];
    long long indexed = 0;
    for (int part = 0; part < RT_NSHARDS; part++) {
        struct state_stats st;
        state_shard_stats(w.shards[part], &st);
        snprintf(rkey, sizeof rkey, "rs:{p%d}:users", part);
        assert_int_equal(int_reply(c, "ZCARD %s", rkey), st.users);
        indexed += st.users;
        snprintf(rkey, sizeof rkey, "rs:{p%d}:meta", part);
        redisReply *r = redisCommand(c, "HGET %s version", rkey);
        assert_string_equal(r->str, "1");
        freeReplyObject(r);
    }
    assert_true(indexed >= 45);
    rt_key(RT_USER_PERS, key);
    snprintf(rkey, sizeof rkey, "rs:{u:%s}", key);
    long long pttl = int_reply(c, "PTTL %s", rkey);
    assert_true(pttl > 590 * 1000 && pttl <= 600 * 1000);
    assert_int_equal(int_reply(c, "HGET %s partitions", "rs:{meta}:config"), RT_NSHARDS);

    /* an API node: empty shards, its own catalog, the reader */
    int32_t nparts = 0;
    struct store_addr a = addr();
    assert_int_equal(store_read_partitions(&a, 1000, &nparts), 0);
    assert_int_equal(nparts, RT_NSHARDS);
    struct state_config sc;
    state_config_init(&sc);
    struct state_shard *mine[RT_NSHARDS];
    for (int part = 0; part < RT_NSHARDS; part++)
        mine[part] = state_shard_new(&sc, part);
    struct catalog *cat = rt_catalog_new();
    struct store_reader_config rc = {.addr = a,
                                     .shards = mine,
                                     .nshards = RT_NSHARDS,
                                     .catalog = cat,
                                     .interval_ms = 3600 * 1000,
                                     .half_life_ms = sc.half_life_ms};
    struct store_reader *rd = NULL;
    assert_int_equal(store_reader_start(&rc, &rd), 0);
    for (int part = 0; part < RT_NSHARDS; part++)
        assert_int_equal(state_shard_next_offset(mine[part]),
                         state_shard_next_offset(w.shards[part]));
    assert_int_equal(catalog_count(cat), catalog_count(w.cat));
    struct reco_config cfg = w.cfg;
    cfg.user_read_fn = store_reader_user_read;
    cfg.user_read_arg = rd;
    struct reco *r2 = reco_new(&cfg, mine, RT_NSHARDS, cat); /* kNN rows from the images */

    struct reco_result *x = malloc(sizeof *x), *y = malloc(sizeof *y);
    int personal = 0;
    for (int u = 0; u < 50; u++) {
        struct reco_request rq = rt_request(key, u, 10);
        assert_int_equal(reco_recommend(w.r, &rq, x), 0);
        assert_int_equal(reco_recommend(r2, &rq, y), 0);
        assert_string_equal(x->strategy, y->strategy);
        assert_int_equal(x->n, y->n);
        for (int k = 0; k < x->n; k++) {
            assert_string_equal(x->items[k].item_id, y->items[k].item_id);
            assert_true(x->items[k].score == y->items[k].score);
        }
        personal += !x->cold_start;
    }
    assert_int_equal(personal, 50);

    /* a removed user's record goes at the next round; an unchanged partition is not resent */
    rt_key(7, key);
    int32_t part = core_partition_for_key(key, EVENT_KEY_HEX, RT_NSHARDS);
    assert_true(state_shard_user_forget(w.shards[part], key));
    assert_int_equal(store_publisher_flush(p), 0);
    snprintf(rkey, sizeof rkey, "rs:{u:%s}", key);
    assert_int_equal(int_reply(c, "EXISTS %s", rkey), 0);
    snprintf(rkey, sizeof rkey, "rs:{p%d}:meta", part);
    assert_int_equal(int_reply(c, "HGET %s version", rkey), 1);
    struct reco_request rq = rt_request(key, 7, 10);
    assert_int_equal(reco_recommend(r2, &rq, y), 0);
    assert_true(y->cold_start);

    /* a new event: its partition's version moves, the reader restores it */
    struct event ev = rt_event(key, "c2-2", EVENT_CLICK, RT_T0 + RT_DAY);
    state_shard_apply(w.shards[part], &ev, state_shard_next_offset(w.shards[part]));
    assert_int_equal(store_publisher_flush(p), 0);
    assert_int_equal(int_reply(c, "HGET %s version", rkey), 2);
    assert_int_equal(store_reader_poll(rd), 0);
    assert_int_equal(state_shard_next_offset(mine[part]), state_shard_next_offset(w.shards[part]));
    assert_int_equal(reco_recommend(r2, &rq, y), 0);
    assert_false(y->cold_start);

    free(x);
    free(y);
    store_reader_stop(rd);
    reco_free(r2);
    catalog_close(cat);
    for (int i = 0; i < RT_NSHARDS; i++)
        state_shard_free(mine[i]);
    redisFree(c);
    store_publisher_stop(p);
    rt_world_free(&w);
}

static void test_unreachable_redis(void **state)
{
    (void)state;
    struct rt_world w;
    rt_world_init(&w, NULL);
    struct store_publisher_config pc = {.shards = w.shards, .nshards = RT_NSHARDS};
    char err[64];
    assert_int_equal(store_addr_parse("unix:///nonexistent/redis.sock", &pc.addr, err, sizeof err),
                     0);
    struct store_publisher *p = NULL;
    assert_int_equal(store_publisher_start(&pc, &p), CORE_E_FAILED);
    int32_t n;
    assert_int_equal(store_read_partitions(&pc.addr, 0, &n), CORE_E_FAILED);
    rt_world_free(&w);
}

static long long metric_value(struct store_publisher *p, const char *name)
{
    struct core_buf m;
    core_buf_init(&m);
    store_publisher_metrics(p, &m);
    char pat[128];
    snprintf(pat, sizeof pat, "\n%s ", name);
    const char *at = strstr(m.data, pat);
    assert_non_null(at);
    long long v = atoll(at + strlen(pat));
    core_buf_dispose(&m);
    return v;
}

/* More removals between two rounds than the shard's ring holds: the publisher reconciles the
 * partition's index with the shard and still deletes every removed user's record. */
static void test_missed_removals_reconciled(void **state)
{
    (void)state;
    flushall();
    struct rt_world w;
    rt_world_init(&w, NULL);
    const int n = 10000; /* 5000 per shard: more than its ring of 4096 */
    char key[EVENT_KEY_HEX + 1];
    for (int u = 0; u < n; u++) {
        snprintf(key, sizeof key, "%032x", 0x800000u + (unsigned)u);
        struct event ev = rt_event(key, "c1-1", EVENT_VIEW, RT_T0 + RT_DAY + u);
        rt_apply(&w, &ev);
    }
    struct store_publisher *p = publisher(&w);
    assert_int_equal(store_publisher_flush(p), 0);
    redisContext *c = connect_redis();
    long long before = int_reply(c, "DBSIZE", NULL);
    assert_true(before >= n);
    for (int u = 0; u < n; u++) {
        snprintf(key, sizeof key, "%032x", 0x800000u + (unsigned)u);
        int32_t part = core_partition_for_key(key, EVENT_KEY_HEX, RT_NSHARDS);
        assert_true(state_shard_user_forget(w.shards[part], key));
    }
    assert_int_equal(store_publisher_flush(p), 0);
    assert_int_equal(int_reply(c, "DBSIZE", NULL), before - n);
    assert_true(metric_value(p, "recstream_store_reconciles_total") >= 1);
    assert_int_equal(metric_value(p, "recstream_store_users_deleted_total"), n);
    rt_key(3, key); /* the world's users stay */
    char rkey[64];
    snprintf(rkey, sizeof rkey, "rs:{u:%s}", key);
    assert_int_equal(int_reply(c, "EXISTS %s", rkey), 1);
    redisFree(c);
    store_publisher_stop(p);
    rt_world_free(&w);
}

/* Pipelined publication rate: many users changed in one round. */
static void test_pipelined_rate(void **state)
{
    (void)state;
    flushall();
    struct rt_world w;
    rt_world_init(&w, NULL);
    const int n = 20000;
    char key[EVENT_KEY_HEX + 1], item[16];
    for (int u = 0; u < n; u++) {
        snprintf(key, sizeof key, "%032x", 0x700000u + (unsigned)u);
        for (int k = 0; k < 5; k++) {
            snprintf(item, sizeof item, "c%d-%d", 1 + (u + k) % 3, (u * 7 + k) % 10);
            struct event ev = rt_event(key, item, EVENT_VIEW, RT_T0 + RT_DAY + u * 10 + k);
            rt_apply(&w, &ev);
        }
    }
    struct store_publisher *p = publisher(&w);
    int64_t t0 = core_mono_ns();
    assert_int_equal(store_publisher_flush(p), 0);
    double s = (double)(core_mono_ns() - t0) / 1e9;
    redisContext *c = connect_redis();
    long long keys = int_reply(c, "DBSIZE", NULL);
    assert_true(keys >= n);
    struct core_buf m;
    core_buf_init(&m);
    store_publisher_metrics(p, &m);
    const char *b = strstr(m.data, "\nrecstream_store_bytes_total ");
    assert_non_null(b);
    long long bytes = atoll(b + 29);
    printf("publish: %d users (+%d aggregates, kNN, catalog) in %.3f s: %.0f users/s, %.1f MB/s "
           "of values, %lld keys\n",
           n + 50, RT_NSHARDS, s, (n + 50) / s, (double)bytes / 1e6 / s, keys);
    core_buf_dispose(&m);
    redisFree(c);
    store_publisher_stop(p);
    rt_world_free(&w);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

/* AUTH from --store-auth-file: refused without it or with a wrong one, accepted with it; the
 * file must be private. */
static void test_auth(void **state)
{
    (void)state;
    redisContext *c = connect_redis();
    freeReplyObject(redisCommand(c, "CONFIG SET requirepass s3cret-pw"));
    struct rt_world w;
    rt_world_init(&w, NULL);
    struct store_publisher_config pc = {.addr = addr(), .shards = w.shards, .nshards = RT_NSHARDS};
    struct store_publisher *p = NULL;
    assert_int_equal(store_publisher_start(&pc, &p), CORE_E_FAILED); /* NOAUTH */

    char path[400], err[256];
    snprintf(path, sizeof path, "%s/auth", tmpdir);
    write_file(path, "s3cret-pw\n", 0644);
    assert_int_equal(store_addr_read_auth(&pc.addr, path, err, sizeof err), CORE_E_INVALID);
    assert_non_null(strstr(err, "chmod 600"));
    write_file(path, "wrong\n", 0600);
    assert_int_equal(store_addr_read_auth(&pc.addr, path, err, sizeof err), 0);
    assert_int_equal(store_publisher_start(&pc, &p), CORE_E_FAILED);
    write_file(path, "default s3cret-pw\n", 0600); /* USER PASSWORD (Redis 6 ACL) */
    assert_int_equal(store_addr_read_auth(&pc.addr, path, err, sizeof err), 0);
    assert_string_equal(pc.addr.user, "default");
    assert_int_equal(store_publisher_start(&pc, &p), 0);
    assert_int_equal(store_publisher_flush(p), 0);
    store_publisher_stop(p);

    redisFree(c);
    c = connect_redis();
    freeReplyObject(redisCommand(c, "AUTH s3cret-pw"));
    freeReplyObject(redisCommand(c, "CONFIG SET requirepass %s", ""));
    redisFree(c);
    rt_world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_parse),
        cmocka_unit_test(test_publish_then_serve_the_same),
        cmocka_unit_test(test_unreachable_redis),
        cmocka_unit_test(test_missed_removals_reconciled),
        cmocka_unit_test(test_pipelined_rate),
        cmocka_unit_test(test_auth),
    };
    return cmocka_run_group_tests(tests, start_redis, stop_redis);
}
