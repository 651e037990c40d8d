/* Tick control records (written by the retention job to quiet partitions): a tick moves the
 * shard's clock (never back) and expires every user and item idle past its TTL at once, not
 * two per apply; it creates nothing and is not counted as an event; the binary codec keeps
 * its type and its id_assigned flag (so dedup rebuilds skip it). */
#include "state_test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#define T0 ((int64_t)1700000000000)
#define TTL ((int64_t)60000)

static struct state_shard *new_shard(void)
{
    struct state_config cfg;
    state_config_init(&cfg);
    cfg.user_ttl_ms = TTL;
    cfg.item_ttl_ms = 2 * TTL;
    return state_shard_new(&cfg, 0);
}

static void apply(struct state_shard *s, struct event ev)
{
    state_shard_apply(s, &ev, state_shard_next_offset(s));
}

static struct event tick(int64_t ts)
{
    struct event ev;
    event_init(&ev);
    ev.type = EVENT_TICK;
    ev.ts_ms = ts;
    ev.id_assigned = true;
    return ev;
}

static struct state_stats stats(struct state_shard *s)
{
    struct state_stats st;
    state_shard_stats(s, &st);
    return st;
}

static void test_tick_expires_everything_due(void **st)
{
    (void)st;
    struct state_shard *s = new_shard();
    char user[16], item[16];
    for (int i = 0; i < 10; i++) {
        snprintf(user, sizeof user, "u%d", i);
        snprintf(item, sizeof item, "i%d", i);
        apply(s, tu_event(user, item, EVENT_VIEW, T0 + i));
    }
    assert_int_equal(stats(s).users, 10);
    int64_t events = stats(s).events;
    /* Not yet due (u0 was last active at T0: due after T0 + TTL). */
    apply(s, tick(T0 + TTL));
    assert_int_equal(stats(s).users, 10);
    assert_int_equal(state_shard_now(s), T0 + TTL);
    /* u0..u4 due: all five go in one tick (an event would take 2 per apply). */
    apply(s, tick(T0 + TTL + 5));
    assert_int_equal(stats(s).users, 5);
    assert_int_equal(stats(s).items, 10); /* items live 2 x TTL */
    assert_int_equal(stats(s).expired, 5);
    /* A tick from the past does not move the clock back. */
    apply(s, tick(T0));
    assert_int_equal(state_shard_now(s), T0 + TTL + 5);
    /* Everything due. */
    apply(s, tick(T0 + 3 * TTL));
    assert_int_equal(stats(s).users, 0);
    assert_int_equal(stats(s).items, 0);
    assert_int_equal(stats(s).expired, 20);
    /* Ticks are records (the offset moves) but not events, and create nothing. */
    assert_int_equal(state_shard_next_offset(s), 14);
    assert_int_equal(stats(s).events, events);
    state_shard_free(s);
}

static void test_tick_codec(void **st)
{
    (void)st;
    struct event ev = tick(T0 + 7);
    struct core_buf b;
    core_buf_init(&b);
    event_bin_encode(&ev, &b);
    struct event back;
    assert_int_equal(event_bin_decode(b.data, b.len, &back), 0);
    assert_int_equal(back.type, EVENT_TICK);
    assert_int_equal(back.ts_ms, T0 + 7);
    assert_true(back.id_assigned);
    assert_int_equal(event_type_to_wire(EVENT_TICK), 18); /* stored numbers are frozen */
    core_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tick_expires_everything_due),
        cmocka_unit_test(test_tick_codec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
