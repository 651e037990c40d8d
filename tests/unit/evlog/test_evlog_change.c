/* The log-wide change counter: wait_change wakes when any partition publishes, times out
 * when nothing happens, and never loses a publish that happened after the counter was read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "evlog/evlog.h"
#include "privacy/userkeys.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void noop_done(void *arg, int status)
{
    (void)arg;
    (void)status;
}

static void append_one(struct evlog *log, int32_t p)
{
    static struct evlog_record rec;
    rec = (struct evlog_record){.partition = p,
                                .key = "k",
                                .key_len = 1,
                                .value = "v",
                                .value_len = 1,
                                .event_time_ms = 1,
                                .ingest_time_ms = 1};
    assert_int_equal(evlog_append(log, &rec, 1, noop_done, NULL), 0);
    assert_int_equal(evlog_flush(log), 0);
}

struct later {
    struct evlog *log;
    int32_t p;
};

static void *append_later(void *arg)
{
    struct later *l = arg;
    usleep(50 * 1000);
    append_one(l->log, l->p);
    return NULL;
}

static void test_wait_change(void **state)
{
    (void)state;
    char dir[] = "/tmp/rs-chg-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct evlog_file_options o;
    evlog_file_options_init(&o);
    o.dir = dir;
    o.partitions = 4;
    o.fsync = EVLOG_FSYNC_NONE;
    struct seal_key dk = {.key = {1}};
    struct userkeys_options uo;
    userkeys_options_init(&uo);
    uo.data_key = &dk;
    assert_int_equal(userkeys_open(&uo, &o.keys), 0);
    struct evlog *log;
    assert_int_equal(evlog_file_open(&o, &log), 0);

    uint64_t seen = evlog_changes(log);
    assert_int_equal(evlog_wait_change(log, seen, 30), CORE_E_TIMEOUT);
    /* A publish after reading the counter: the wait returns at once. */
    append_one(log, 3);
    assert_int_equal(evlog_wait_change(log, seen, 1000), 0);
    /* A publish while waiting, on another partition, wakes the waiter. */
    seen = evlog_changes(log);
    pthread_t t;
    struct later l = {log, 1};
    pthread_create(&t, NULL, append_later, &l);
    int64_t t0 = core_mono_ns();
    assert_int_equal(evlog_wait_change(log, seen, 5000), 0);
    assert_true(core_mono_ns() - t0 < 2000LL * 1000 * 1000);
    pthread_join(t, NULL);
    assert_true(evlog_changes(log) != seen);
    evlog_close(log);
    userkeys_free(o.keys);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_wait_change)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
