/*
 * Snapshot/restore of state: restore + continue == uninterrupted, corrupt snapshots rejected,
 * and readers running concurrently with the writer.
 */
#include "state_test_util.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#define T0 ((int64_t)1700000000000)

/* A deterministic synthetic stream exercising every code path (late events, sessions, custom
 * types, values, recIds, eviction and TTL with a small config). */
struct gen {
    uint64_t x;
    int64_t ts;
    char item[32];
    char sess[16];
};

static uint32_t rnd(struct gen *g)
{
    g->x = g->x * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(g->x >> 33);
}

static struct event gen_next(struct gen *g)
{
    static const int types[] = {EVENT_VIEW,        EVENT_CLICK,       EVENT_SCROLL,
                                EVENT_DWELL,       EVENT_ADD_TO_CART, EVENT_PURCHASE,
                                EVENT_IMPRESSION,  EVENT_RATING,      EVENT_REMOVE_FROM_CART,
                                EVENT_TYPE_CUSTOM, EVENT_PAGE_VIEW};
    g->ts += rnd(g) % 120000;
    int64_t ts = rnd(g) % 20 == 0 ? g->ts - (int64_t)(rnd(g) % 7200000) : g->ts;
    char user[8];
    snprintf(user, sizeof user, "%x", rnd(g) % 40);
    snprintf(g->item, sizeof g->item, "item-%u", rnd(g) % 150);
    int type = types[rnd(g) % (sizeof types / sizeof types[0])];
    struct event ev = tu_event(user, rnd(g) % 10 == 0 ? NULL : g->item, type, ts);
    if (type == EVENT_TYPE_CUSTOM) {
        ev.type_name.ptr = rnd(g) % 2 ? "wish" : "follow";
        ev.type_name.len = strlen(ev.type_name.ptr);
    }
    if (rnd(g) % 3 == 0) {
        ev.has_value = true;
        ev.value = (double)(rnd(g) % 1000) / 7.0;
    }
    if (rnd(g) % 4 == 0) {
        ev.rec_id.ptr = "rec";
        ev.rec_id.len = 3;
    }
    if (rnd(g) % 5 == 0) {
        snprintf(g->sess, sizeof g->sess, "s%u", rnd(g) % 3);
        ev.session_id.ptr = g->sess;
        ev.session_id.len = strlen(g->sess);
    }
    return ev;
}

static struct state_shard *small_shard(void)
{
    struct state_config cfg;
    state_config_init(&cfg);
    cfg.recent_max = 8;
    cfg.neighbours_max = 5;
    cfg.covisit_window = 4;
    cfg.half_life_ms = 3600000;
    cfg.user_ttl_ms = 4 * 3600000;
    cfg.item_ttl_ms = 2 * 3600000;
    cfg.max_users = 30;
    cfg.max_items = 100;
    return state_shard_new(&cfg, 3);
}

static void run(struct state_shard *s, struct gen *g, int64_t from, int64_t to)
{
    for (int64_t off = from; off < to; off++) {
        struct event ev = gen_next(g);
        state_shard_apply(s, &ev, off);
    }
}

#define N_EVENTS 6000

static void test_snapshot_continue_equals_uninterrupted(void **st)
{
    (void)st;
    struct core_buf full, cont, snap, snap2;
    core_buf_init(&full);
    core_buf_init(&cont);
    core_buf_init(&snap);
    core_buf_init(&snap2);
    struct state_shard *a = small_shard();
    struct gen ga = {42, T0, {0}, {0}};
    run(a, &ga, 0, N_EVENTS);
    tu_dump(a, &full);
    struct state_stats stats;
    state_shard_stats(a, &stats);
    assert_true(stats.late > 0 && stats.evicted > 0 && stats.expired > 0 && stats.pairs > 0);

    static const int64_t cuts[] = {0, 1, 777, 3000, N_EVENTS - 1, N_EVENTS};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        struct state_shard *b = small_shard();
        struct gen gb = {42, T0, {0}, {0}};
        run(b, &gb, 0, cuts[c]);
        core_buf_reset(&snap);
        state_shard_snapshot(b, &snap);
        state_shard_free(b);

        struct state_shard *r = small_shard();
        assert_int_equal(state_shard_restore(r, snap.data, snap.len), 0);
        assert_int_equal(state_shard_next_offset(r), cuts[c]);
        core_buf_reset(&snap2);
        state_shard_snapshot(r, &snap2);
        assert_int_equal(snap.len, snap2.len);
        assert_memory_equal(snap.data, snap2.data, snap.len);
        run(r, &gb, cuts[c], N_EVENTS);
        tu_dump(r, &cont);
        assert_int_equal(full.len, cont.len);
        assert_memory_equal(full.data, cont.data, full.len);
        state_shard_free(r);
    }
    /* Restoring replaces whatever the shard held. */
    core_buf_reset(&snap);
    state_shard_snapshot(a, &snap);
    struct state_shard *r = small_shard();
    struct gen gr = {7, T0, {0}, {0}};
    run(r, &gr, 0, 500);
    assert_int_equal(state_shard_restore(r, snap.data, snap.len), 0);
    tu_dump(r, &cont);
    assert_memory_equal(full.data, cont.data, full.len);
    state_shard_free(r);

    /* A different configuration is refused. */
    struct state_shard *other = state_shard_new(&(struct state_config){0}, 3);
    assert_int_equal(state_shard_restore(other, snap.data, snap.len), CORE_E_INVALID);
    state_shard_free(other);

    state_shard_free(a);
    core_buf_dispose(&full);
    core_buf_dispose(&cont);
    core_buf_dispose(&snap);
    core_buf_dispose(&snap2);
}

/* Co-occurrence rows long enough for the radix sort of the snapshot writer (48 entries and
 * more), with entries of items the shard no longer holds (code 0, sorted by id): the bytes
 * are the same after a restore (whose hash tables are filled in another order), and
 * continuing from the restored shard gives the uninterrupted state. */
static void test_long_rows_roundtrip(void **st)
{
    (void)st;
    struct state_config cfg;
    state_config_init(&cfg);
    cfg.max_items = 150; /* evictions leave row entries of dropped items */
    struct state_shard *a = state_shard_new(&cfg, 0);
    char user[16], item[16];
    int64_t off = 0;
    for (int u = 0; u < 6; u++)
        for (int i = 0; i < 120; i++) {
            snprintf(user, sizeof user, "u%d", u);
            snprintf(item, sizeof item, "it-%d", (i * 7 + u * 31) % 200);
            struct event ev = tu_event(user, item, EVENT_VIEW, T0 + off * 1000);
            state_shard_apply(a, &ev, off++);
        }
    struct state_stats stats;
    state_shard_stats(a, &stats);
    assert_true(stats.evicted > 0);
    struct core_buf snap, snap2, d1, d2;
    core_buf_init(&snap);
    core_buf_init(&snap2);
    core_buf_init(&d1);
    core_buf_init(&d2);
    state_shard_snapshot(a, &snap);
    struct state_shard *r = state_shard_new(&cfg, 0);
    assert_int_equal(state_shard_restore(r, snap.data, snap.len), 0);
    state_shard_snapshot(r, &snap2);
    assert_int_equal(snap.len, snap2.len);
    assert_memory_equal(snap.data, snap2.data, snap.len);
    for (int i = 0; i < 50; i++) {
        snprintf(item, sizeof item, "it-%d", i * 3);
        struct event ev = tu_event("u9", item, EVENT_VIEW, T0 + off * 1000);
        state_shard_apply(a, &ev, off);
        state_shard_apply(r, &ev, off++);
    }
    tu_dump(a, &d1);
    tu_dump(r, &d2);
    assert_int_equal(d1.len, d2.len);
    assert_memory_equal(d1.data, d2.data, d1.len);
    state_shard_free(a);
    state_shard_free(r);
    core_buf_dispose(&snap);
    core_buf_dispose(&snap2);
    core_buf_dispose(&d1);
    core_buf_dispose(&d2);
}

static void test_restore_rejects_corruption(void **st)
{
    (void)st;
    struct state_shard *a = small_shard();
    struct gen g = {9, T0, {0}, {0}};
    run(a, &g, 0, 400);
    struct core_buf snap, before, after;
    core_buf_init(&snap);
    core_buf_init(&before);
    core_buf_init(&after);
    state_shard_snapshot(a, &snap);

    struct state_shard *r = small_shard();
    struct gen g2 = {10, T0, {0}, {0}};
    run(r, &g2, 0, 50);
    tu_dump(r, &before);
    for (size_t len = 0; len < snap.len; len += 1 + len / 3)
        assert_int_equal(state_shard_restore(r, snap.data, len), CORE_E_CORRUPT);
    char *copy = malloc(snap.len + 1);
    for (size_t i = 0; i < snap.len; i += 1 + i / 50) {
        memcpy(copy, snap.data, snap.len);
        copy[i] ^= (char)(1u << (i % 8));
        assert_int_equal(state_shard_restore(r, copy, snap.len), CORE_E_CORRUPT);
    }
    memcpy(copy, snap.data, snap.len);
    copy[snap.len] = 0;
    assert_int_equal(state_shard_restore(r, copy, snap.len + 1), CORE_E_CORRUPT);
    tu_dump(r, &after);
    assert_int_equal(before.len, after.len);
    assert_memory_equal(before.data, after.data, before.len);
    free(copy);
    state_shard_free(r);
    state_shard_free(a);
    core_buf_dispose(&snap);
    core_buf_dispose(&before);
    core_buf_dispose(&after);
}

/* ---- concurrent readers -------------------------------------------------------------------- */

struct reader_arg {
    struct state_shard *s;
    volatile int *stop;
    long reads;
};

static void *reader(void *p)
{
    struct reader_arg *a = p;
    struct core_buf b;
    core_buf_init(&b);
    struct state_neighbour nb[10];
    char key[EVENT_KEY_HEX + 1];
    while (!__atomic_load_n(a->stop, __ATOMIC_ACQUIRE)) {
        char item[32], user[8];
        snprintf(item, sizeof item, "item-%ld", a->reads % 150);
        snprintf(user, sizeof user, "%lx", a->reads % 40);
        tu_key(user, key);
        core_buf_reset(&b);
        (void)state_shard_user_json(a->s, key, &b);
        struct state_item_view v;
        memset(&v, 0, sizeof v);
        state_shard_item_view(a->s, item, strlen(item), &v);
        (void)state_shard_neighbours(a->s, item, strlen(item), T0, nb, 10);
        (void)state_shard_top_items(a->s, STATE_W_1H, -1, nb, 10);
        struct state_stats stats;
        state_shard_stats(a->s, &stats);
        if (a->reads % 64 == 0) {
            core_buf_reset(&b);
            state_shard_dump(a->s, &b);
        }
        a->reads++;
    }
    core_buf_dispose(&b);
    return NULL;
}

static void test_concurrent_readers(void **st)
{
    (void)st;
    struct state_shard *s = small_shard();
    volatile int stop = 0;
    pthread_t th[3];
    struct reader_arg args[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (struct reader_arg){s, &stop, 0};
        assert_int_equal(pthread_create(&th[i], NULL, reader, &args[i]), 0);
    }
    struct gen g = {5, T0, {0}, {0}};
    run(s, &g, 0, 20000);
    struct core_buf snap;
    core_buf_init(&snap);
    state_shard_snapshot(s, &snap);
    assert_int_equal(state_shard_restore(s, snap.data, snap.len), 0);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    struct state_stats stats;
    state_shard_stats(s, &stats);
    assert_int_equal(stats.events, 20000);
    core_buf_dispose(&snap);
    state_shard_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_continue_equals_uninterrupted),
        cmocka_unit_test(test_long_rows_roundtrip),
        cmocka_unit_test(test_restore_rejects_corruption),
        cmocka_unit_test(test_concurrent_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
