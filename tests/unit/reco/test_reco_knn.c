/*
 * The collaborative model between nodes: a recommender over user-less shards restored from
 * aggregate images (an API node) recommends exactly what the node that applied the events
 * does; incremental kNN updates converge once settled, whatever the update history; the
 * user_read_fn hook replaces the shard read (its errors fail the request).
 */
#include "reco_test_util.h"

#include "reco/reco_int.h"

static const int USERS[] = {
    0, 1, 2, 5, 9, 13, 21, 30, 44, 45, 47, RT_USER_PERS, RT_USER_PREF, RT_USER_COLD};
#define NUSERS ((int)(sizeof USERS / sizeof USERS[0]))

static void assert_same(struct reco *a, struct reco *b)
{
    struct reco_result *x = malloc(sizeof *x), *y = malloc(sizeof *y);
    char key[EVENT_KEY_HEX + 1];
    int personal = 0, collab = 0;
    for (int i = 0; i < NUSERS; i++) {
        struct reco_request rq = rt_request(key, USERS[i], 10);
        rq.now_ms = RT_T0 + RT_DAY;
        assert_int_equal(reco_recommend(a, &rq, x), 0);
        assert_int_equal(reco_recommend(b, &rq, y), 0);
        assert_string_equal(x->strategy, y->strategy);
        assert_int_equal(x->n, y->n);
        for (int k = 0; k < x->n; k++) {
            assert_string_equal(x->items[k].item_id, y->items[k].item_id);
            assert_true(x->items[k].score == y->items[k].score);
            assert_int_equal(x->items[k].source, y->items[k].source);
            collab += x->items[k].source == RECO_SRC_COLLAB;
        }
        personal += !x->cold_start;
    }
    assert_true(personal > NUSERS / 2 && collab > 0);
    free(x);
    free(y);
}

/* Whether a and b give every user the same collaborative candidates in the same order. */
static bool same_collab(struct reco *a, struct reco *b)
{
    struct reco_result *x = malloc(sizeof *x), *y = malloc(sizeof *y);
    char key[EVENT_KEY_HEX + 1];
    bool same = true;
    for (int i = 0; i < NUSERS && same; i++) {
        struct reco_request rq = rt_request(key, USERS[i], 10);
        rq.now_ms = RT_T0 + RT_DAY;
        reco_recommend(a, &rq, x);
        reco_recommend(b, &rq, y);
        same = x->n == y->n;
        for (int k = 0; k < x->n && same; k++)
            same = !strcmp(x->items[k].item_id, y->items[k].item_id) &&
                   x->items[k].score == y->items[k].score;
    }
    free(x);
    free(y);
    return same;
}

/* Reads users from the shards of another node (arg: its shards), through serving records, as
 * an API node reads them from Redis. */
static int remote_read(void *arg, struct state_shard *shard, int32_t partition, const char *key,
                       struct state_user_read *out)
{
    (void)shard;
    struct state_shard **src = arg;
    struct core_buf b;
    core_buf_init(&b);
    struct state_config sc;
    state_config_init(&sc);
    if (state_shard_user_blob(src[partition], key, &b) == 0) {
        assert_int_equal(state_user_blob_decode(b.data, b.len, state_shard_now(src[partition]),
                                                sc.half_life_ms, out),
                         0);
    } else {
        out->found = false;
        out->nrecent = out->nsession = out->ncats = out->nprefs = 0;
        out->pool_used = 0;
        out->now_ms = state_shard_now(src[partition]);
    }
    core_buf_dispose(&b);
    return 0;
}

/* User-less shards restored from aggregate images (what an API node holds). */
static void restore_images(struct state_shard **from, struct state_shard **to)
{
    struct state_config sc;
    state_config_init(&sc);
    struct core_buf img;
    core_buf_init(&img);
    for (int p = 0; p < RT_NSHARDS; p++) {
        img.len = 0;
        state_shard_snapshot_aggregates(from[p], &img);
        if (!to[p])
            to[p] = state_shard_new(&sc, p);
        assert_int_equal(state_shard_restore(to[p], img.data, img.len), 0);
    }
    core_buf_dispose(&img);
}

/* An API node builds its kNN lists from the partitions' co-occurrence rows in the aggregate
 * images, and recommends exactly what the node that applied the events does. */
static void test_images_give_the_same_recommendations(void **st)
{
    (void)st;
    struct rt_world w;
    rt_world_init(&w, NULL);
    struct state_shard *api[RT_NSHARDS] = {0};
    restore_images(w.shards, api);
    for (int p = 0; p < RT_NSHARDS; p++) {
        struct state_stats a, b;
        state_shard_stats(w.shards[p], &a);
        state_shard_stats(api[p], &b);
        assert_true(a.cooc_rows > 0 && a.cooc_pairs > 0);
        assert_int_equal(a.cooc_rows, b.cooc_rows);
        assert_int_equal(a.cooc_pairs, b.cooc_pairs);
        assert_int_equal(b.users, 0);
    }
    struct reco_config cfg = w.cfg;
    cfg.user_read_fn = remote_read;
    cfg.user_read_arg = w.shards;
    struct reco *r2 = reco_new(&cfg, api, RT_NSHARDS, w.cat);
    assert_same(w.r, r2);
    /* the check can fail: events the images do not have change the lists */
    char key[EVENT_KEY_HEX + 1];
    for (int u = 0; u < 20; u++) {
        rt_key(u, key);
        rt_view(&w, key, "c3-1", EVENT_VIEW, RT_T0 + (600 + u) * RT_MIN, NULL);
        rt_view(&w, key, "c1-9", EVENT_VIEW, RT_T0 + (600 + u) * RT_MIN + 1000, NULL);
    }
    reco_settle(w.r);
    reco_settle(r2);
    assert_false(same_collab(w.r, r2));
    /* new images: the same again */
    restore_images(w.shards, api);
    reco_settle(r2);
    assert_same(w.r, r2);
    reco_free(r2);
    for (int p = 0; p < RT_NSHARDS; p++)
        state_shard_free(api[p]);
    rt_world_free(&w);
}

/* Extra events after the world's, in rounds (the same on every world). */
static void more_events(struct rt_world *w, int round)
{
    char key[EVENT_KEY_HEX + 1], id[16];
    for (int u = 0; u < 12; u++) {
        rt_key((u * 7 + round) % 45, key);
        snprintf(id, sizeof id, "c%d-%d", 1 + (u + round) % 3, (u * 3 + round) % 8);
        rt_view(w, key, id, EVENT_VIEW, RT_T0 + (700 + round * 20 + u) * RT_MIN, NULL);
    }
}

/* Whether two recommenders' models hold the same kNN lists (ids and scores). */
static bool same_knn(struct reco *a, struct reco *b)
{
    struct reco_model *x = reco__model_get(a), *y = reco__model_get(b);
    bool same = x->it.n == y->it.n;
    for (uint32_t i = 0; i < x->it.n && same; i++) {
        uint32_t j = reco__model_find(y, x->it.ids[i], x->it.lens[i]);
        same = j != UINT32_MAX &&
               x->knn.off[i + 1] - x->knn.off[i] == y->knn.off[j + 1] - y->knn.off[j];
        for (uint32_t k = 0; same && k < x->knn.off[i + 1] - x->knn.off[i]; k++) {
            struct reco_nb e = x->knn.e[x->knn.off[i] + k], f = y->knn.e[y->knn.off[j] + k];
            same = e.score == f.score && !strcmp(x->it.ids[e.idx], y->it.ids[f.idx]);
        }
    }
    reco__model_unref(x);
    reco__model_unref(y);
    return same;
}

/* Incremental updates score a changed row with its neighbours' current counts and leave the
 * other rows alone, so two nodes' lists depend on when they updated; a settling update
 * (every row) makes them equal again. */
static void test_update_history_settles(void **st)
{
    (void)st;
    struct rt_world a, b;
    rt_world_init(&a, NULL);
    rt_world_init(&b, NULL);
    for (int round = 0; round < 6; round++) { /* a updates after every round, b never */
        more_events(&a, round);
        more_events(&b, round);
        reco_refresh(a.r);
    }
    struct reco *fresh = reco_new(&b.cfg, b.shards, RT_NSHARDS, b.cat);
    assert_false(same_knn(a.r, fresh)); /* the check can fail */
    reco_settle(a.r);
    assert_true(same_knn(a.r, fresh));
    assert_same(a.r, fresh);
    reco_free(fresh);
    rt_world_free(&a);
    rt_world_free(&b);
}

/* A time budget (the background refresher's) leaves lists pending; later updates drain
 * them, starting where the previous one stopped, and only then is the state settled. */
static void test_budget_leaves_lists_pending(void **st)
{
    (void)st;
    struct rt_world w;
    rt_world_init(&w, NULL);
    struct reco_cooc *c = reco__cooc_new(50);
    reco__cooc_update(c, w.shards, RT_NSHARDS, false, 1); /* first: full, never budgeted */
    assert_int_equal(reco__cooc_pending(c), 0);
    assert_true(reco__cooc_settled(c));
    for (int round = 0; round < 3; round++)
        more_events(&w, round);
    char key[EVENT_KEY_HEX + 1], id[16];
    for (int i = 0; i < 40; i++) { /* new items: rows the lists have never seen */
        rt_key(i % 5, key);
        snprintf(id, sizeof id, "n-%d", i);
        rt_view(&w, key, id, EVENT_VIEW, RT_T0 + (800 + i) * RT_MIN, NULL);
    }
    reco__cooc_update(c, w.shards, RT_NSHARDS, false, 1);
    uint32_t first = reco__cooc_pending(c);
    assert_true(first > 0); /* 16 lists per budget check: the rest waits */
    assert_false(reco__cooc_settled(c));
    /* a model built meanwhile has no lists for the pending items yet */
    struct reco_model *m = reco__model_build(&w.cfg, w.shards, RT_NSHARDS, w.cat, c);
    assert_true(m->it.n >= reco__cooc_count(c));
    reco__model_unref(m);
    uint32_t prev = first;
    for (int i = 0; i < 10 && reco__cooc_pending(c) > 0; i++) {
        reco__cooc_update(c, w.shards, RT_NSHARDS, false, 1);
        assert_true(reco__cooc_pending(c) < prev); /* progress every time */
        prev = reco__cooc_pending(c);
    }
    assert_int_equal(reco__cooc_pending(c), 0);
    /* without a budget everything is done at once */
    more_events(&w, 3);
    reco__cooc_update(c, w.shards, RT_NSHARDS, false, 0);
    assert_int_equal(reco__cooc_pending(c), 0);
    reco__cooc_free(c);
    rt_world_free(&w);
}

/* A user_read_fn reading through serving records (as an API node does through Redis). */
static int blob_read(void *arg, struct state_shard *shard, int32_t partition, const char *key,
                     struct state_user_read *out)
{
    (void)partition;
    int *fail = arg;
    if (*fail)
        return CORE_E_FAILED;
    struct core_buf b;
    core_buf_init(&b);
    struct state_config sc;
    state_config_init(&sc);
    if (state_shard_user_blob(shard, key, &b) == 0) {
        assert_int_equal(
            state_user_blob_decode(b.data, b.len, state_shard_now(shard), sc.half_life_ms, out), 0);
    } else {
        out->found = false;
        out->nrecent = out->nsession = out->ncats = out->nprefs = 0;
        out->pool_used = 0;
        out->now_ms = state_shard_now(shard);
    }
    core_buf_dispose(&b);
    return 0;
}

static void test_user_read_hook(void **st)
{
    (void)st;
    struct rt_world w;
    rt_world_init(&w, NULL);
    int fail = 0;
    struct reco_config cfg = w.cfg;
    cfg.user_read_fn = blob_read;
    cfg.user_read_arg = &fail;
    struct reco *r2 = reco_new(&cfg, w.shards, RT_NSHARDS, w.cat);
    assert_same(w.r, r2);
    fail = 1;
    char key[EVENT_KEY_HEX + 1];
    struct reco_request rq = rt_request(key, RT_USER_PERS, 10);
    struct reco_result *res = malloc(sizeof *res);
    assert_int_equal(reco_recommend(r2, &rq, res), CORE_E_FAILED);
    rq.anonymous = true; /* an anonymous request reads no user at all */
    assert_int_equal(reco_recommend(r2, &rq, res), 0);
    free(res);
    reco_free(r2);
    rt_world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_images_give_the_same_recommendations),
        cmocka_unit_test(test_update_history_settles),
        cmocka_unit_test(test_budget_leaves_lists_pending),
        cmocka_unit_test(test_user_read_hook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
