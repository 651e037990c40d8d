/*
 * Serving state (state_serve.c): user records round trip exactly (decode(encode(x)) equals
 * what state_shard_user_read returns) and corrupted ones are refused; the aggregate image
 * restores to the same aggregates; change tracking reports exactly the changed and removed
 * users.
 */
#include "../reco/reco_test_util.h"

#include <stdlib.h>

static const int USERS[] = {
    0, 1, 2, 3, 7, 12, 20, 33, 44, 45, 46, 49, RT_USER_PERS, RT_USER_PREF, RT_USER_COLD};
#define NUSERS ((int)(sizeof USERS / sizeof USERS[0]))

static struct state_shard *shard_of(struct rt_world *w, const char *key)
{
    return w->shards[core_partition_for_key(key, strlen(key), RT_NSHARDS)];
}

static void assert_items_equal(const struct state_user_item *a, const struct state_user_item *b,
                               int n)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(a[i].len, b[i].len);
        assert_string_equal(a[i].item_id, b[i].item_id);
        assert_int_equal(a[i].type, b[i].type);
        assert_true(a[i].weight == b[i].weight);
        assert_int_equal(a[i].ts, b[i].ts);
    }
}

static void assert_reads_equal(const struct state_user_read *a, const struct state_user_read *b)
{
    assert_int_equal(a->found, b->found);
    assert_int_equal(a->now_ms, b->now_ms);
    if (!a->found)
        return;
    assert_int_equal(a->events, b->events);
    assert_int_equal(a->first_ms, b->first_ms);
    assert_int_equal(a->last_ms, b->last_ms);
    assert_int_equal(a->nrecent, b->nrecent);
    assert_items_equal(a->recent, b->recent, a->nrecent);
    assert_int_equal(a->nsession, b->nsession);
    for (int i = 0; i < a->nsession; i++) {
        assert_string_equal(a->session[i].item_id, b->session[i].item_id);
        assert_int_equal(a->session[i].ts, b->session[i].ts);
    }
    assert_int_equal(a->ncats, b->ncats);
    for (int i = 0; i < a->ncats; i++) {
        assert_string_equal(a->cats[i].name, b->cats[i].name);
        assert_true(a->cats[i].v == b->cats[i].v); /* bit-exact: the same decay */
    }
    assert_int_equal(a->nprefs, b->nprefs);
    for (int i = 0; i < a->nprefs; i++)
        assert_string_equal(a->prefs[i], b->prefs[i]);
}

static int64_t half_life(void)
{
    struct state_config sc;
    state_config_init(&sc);
    return sc.half_life_ms;
}

static void test_user_blob_round_trip(void **state)
{
    (void)state;
    struct rt_world w;
    rt_world_init(&w, NULL);
    struct state_user_read *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    struct core_buf blob;
    core_buf_init(&blob);
    int with_cats = 0, with_prefs = 0;
    for (int i = 0; i < NUSERS; i++) {
        char key[EVENT_KEY_HEX + 1];
        rt_key(USERS[i], key);
        struct state_shard *s = shard_of(&w, key);
        state_shard_user_read(s, key, a);
        core_buf_reset(&blob);
        int rc = state_shard_user_blob(s, key, &blob);
        if (!a->found) {
            assert_int_equal(rc, CORE_E_NOTFOUND);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(
            state_user_blob_decode(blob.data, blob.len, state_shard_now(s), half_life(), b), 0);
        assert_reads_equal(a, b);
        with_cats += a->ncats > 0;
        with_prefs += a->nprefs > 0;
    }
    assert_true(with_cats > 5 && with_prefs == 1); /* the world exercises every field */
    core_buf_dispose(&blob);
    free(a);
    free(b);
    rt_world_free(&w);
}

static void test_corrupted_user_blob_refused(void **state)
{
    (void)state;
    struct rt_world w;
    rt_world_init(&w, NULL);
    char key[EVENT_KEY_HEX + 1];
    rt_key(RT_USER_PERS, key);
    struct core_buf blob;
    core_buf_init(&blob);
    assert_int_equal(state_shard_user_blob(shard_of(&w, key), key, &blob), 0);
    struct state_user_read *u = malloc(sizeof *u);
    for (size_t i = 0; i < blob.len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            blob.data[i] ^= (char)(1 << bit);
            assert_int_equal(state_user_blob_decode(blob.data, blob.len, 0, half_life(), u),
                             CORE_E_CORRUPT);
            assert_false(u->found);
            blob.data[i] ^= (char)(1 << bit);
        }
    }
    for (size_t n = 0; n < blob.len; n++)
        assert_int_equal(state_user_blob_decode(blob.data, n, 0, half_life(), u), CORE_E_CORRUPT);
    assert_int_equal(state_user_blob_decode(blob.data, blob.len, 0, half_life(), u), 0);
    assert_true(u->found);
    free(u);
    core_buf_dispose(&blob);
    rt_world_free(&w);
}

struct nb_list {
    char ids[64][EVENT_ITEM_MAX + 1];
    double scores[64];
    int n;
};

static void nb_fn(void *arg, const char *id, size_t len, double score)
{
    struct nb_list *l = arg;
    if (l->n < 64) {
        memcpy(l->ids[l->n], id, len);
        l->ids[l->n][len] = 0;
        l->scores[l->n++] = score;
    }
}

static void test_aggregates_round_trip(void **state)
{
    (void)state;
    struct rt_world w;
    rt_world_init(&w, NULL);
    struct state_config sc;
    state_config_init(&sc);
    struct core_buf a, b;
    core_buf_init(&a);
    core_buf_init(&b);
    for (int p = 0; p < RT_NSHARDS; p++) {
        struct state_shard *copy = state_shard_new(&sc, p);
        core_buf_reset(&a);
        state_shard_snapshot_aggregates(w.shards[p], &a);
        assert_int_equal(state_shard_restore(copy, a.data, a.len), 0);
        struct state_stats s0, s1;
        state_shard_stats(w.shards[p], &s0);
        state_shard_stats(copy, &s1);
        assert_true(s0.users > 0);
        assert_int_equal(s1.users, 0);
        assert_int_equal(s1.items, s0.items);
        assert_int_equal(s1.events, s0.events);
        assert_int_equal(state_shard_now(copy), state_shard_now(w.shards[p]));
        assert_int_equal(state_shard_next_offset(copy), state_shard_next_offset(w.shards[p]));
        core_buf_reset(&b);
        state_shard_snapshot_aggregates(copy, &b);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        struct nb_list x = {.n = 0}, y = {.n = 0};
        state_shard_neighbours_each(w.shards[p], "c1-9", 4, RT_T0 + RT_DAY, nb_fn, &x);
        state_shard_neighbours_each(copy, "c1-9", 4, RT_T0 + RT_DAY, nb_fn, &y);
        assert_true(x.n > 0);
        assert_int_equal(x.n, y.n);
        for (int i = 0; i < x.n; i++) {
            assert_string_equal(x.ids[i], y.ids[i]);
            assert_true(x.scores[i] == y.scores[i]);
        }
        a.data[a.len / 2] ^= 0x10; /* refused, and the shard keeps what it had */
        assert_int_equal(state_shard_restore(copy, a.data, a.len), CORE_E_CORRUPT);
        state_shard_stats(copy, &s1);
        assert_int_equal(s1.items, s0.items);
        state_shard_free(copy);
    }
    core_buf_dispose(&a);
    core_buf_dispose(&b);
    rt_world_free(&w);
}

struct seen {
    int users, gone;
    char last_user[EVENT_KEY_HEX + 1], last_gone[EVENT_KEY_HEX + 1];
};

static void on_user(void *arg, const char *key, const void *blob, size_t len, int64_t last_ms)
{
    struct seen *s = arg;
    struct state_user_read *u = malloc(sizeof *u);
    assert_int_equal(state_user_blob_decode(blob, len, last_ms, half_life(), u), 0);
    free(u);
    s->users++;
    snprintf(s->last_user, sizeof s->last_user, "%s", key);
}

static void on_gone(void *arg, const char *key)
{
    struct seen *s = arg;
    s->gone++;
    snprintf(s->last_gone, sizeof s->last_gone, "%s", key);
}

static void test_changes(void **state)
{
    (void)state;
    struct rt_world w;
    rt_world_init(&w, NULL);
    struct state_shard *s = w.shards[0];
    struct state_stats st;
    state_shard_stats(s, &st);
    struct state_changes c;
    memset(&c, 0, sizeof c);
    struct seen seen = {0};
    assert_int_equal(state_shard_changes(s, &c, on_user, on_gone, &seen), st.users);
    assert_int_equal(seen.users, st.users);
    assert_int_equal(seen.gone, 0);
    memset(&seen, 0, sizeof seen); /* nothing changed */
    assert_int_equal(state_shard_changes(s, &c, on_user, on_gone, &seen), 0);
    assert_int_equal(seen.users + seen.gone, 0);

    /* one event: exactly its user */
    char key[EVENT_KEY_HEX + 1], other[EVENT_KEY_HEX + 1];
    int u = 0;
    do
        rt_key(u++, key);
    while (shard_of(&w, key) != s);
    do
        rt_key(u++, other);
    while (shard_of(&w, other) != s);
    struct event ev = rt_event(key, "c1-1", EVENT_VIEW, RT_T0 + RT_DAY);
    state_shard_apply(s, &ev, state_shard_next_offset(s));
    assert_int_equal(state_shard_changes(s, &c, on_user, on_gone, &seen), 1);
    assert_string_equal(seen.last_user, key);

    /* a removal: reported once; a removal followed by a return: only the return */
    memset(&seen, 0, sizeof seen);
    assert_true(state_shard_user_forget(s, other));
    state_shard_changes(s, &c, on_user, on_gone, &seen);
    assert_int_equal(seen.users, 0);
    assert_int_equal(seen.gone, 1);
    assert_string_equal(seen.last_gone, other);
    assert_false(c.gone_lost);
    memset(&seen, 0, sizeof seen);
    assert_true(state_shard_user_forget(s, key));
    ev.ts_ms += 1000;
    state_shard_apply(s, &ev, state_shard_next_offset(s));
    state_shard_changes(s, &c, on_user, on_gone, &seen);
    assert_int_equal(seen.users, 1);
    assert_int_equal(seen.gone, 0);

    /* more removals than the ring holds: reported as lost (the publisher reconciles) */
    char k[EVENT_KEY_HEX + 1];
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "%032x", 0x900000u + (unsigned)i);
        struct event e = rt_event(k, "c1-1", EVENT_VIEW, RT_T0 + RT_DAY + 2000);
        state_shard_apply(s, &e, state_shard_next_offset(s));
    }
    state_shard_changes(s, &c, on_user, on_gone, &seen);
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "%032x", 0x900000u + (unsigned)i);
        assert_true(state_shard_user_forget(s, k));
    }
    memset(&seen, 0, sizeof seen);
    state_shard_changes(s, &c, on_user, on_gone, &seen);
    assert_true(c.gone_lost);
    assert_int_equal(seen.gone, 4096);
    rt_world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_blob_round_trip),
        cmocka_unit_test(test_corrupted_user_blob_refused),
        cmocka_unit_test(test_aggregates_round_trip),
        cmocka_unit_test(test_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
