/*
 * The collaborative model between nodes: a recommender that imports another's item-kNN lists
 * (reco_knn_export / reco_knn_import) over the same state recommends exactly what the
 * exporting one does; a corrupted blob is refused; the user_read_fn hook replaces the shard
 * read (its errors fail the request).
 */
#include "reco_test_util.h"

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

static void test_import_gives_the_same_recommendations(void **st)
{
    (void)st;
    struct rt_world w;
    rt_world_init(&w, NULL);
    struct core_buf blob;
    core_buf_init(&blob);
    uint64_t v = 0;
    assert_int_equal(reco_knn_export(w.r, &blob, &v), 1);
    assert_true(v > 0 && blob.len > 0);
    size_t len = blob.len;
    assert_int_equal(reco_knn_export(w.r, &blob, &v), 0); /* unchanged: nothing appended */
    assert_int_equal(blob.len, len);

    /* a recommender whose own accumulator would differ: it only ever saw half the users */
    struct reco_config cfg = w.cfg;
    cfg.knn_history = 2;
    struct reco *r2 = reco_new(&cfg, w.shards, RT_NSHARDS, w.cat);
    assert_int_equal(reco_knn_import(r2, blob.data, blob.len), 0);
    reco_refresh(r2);
    assert_same(w.r, r2);
    /* imported once, never updated locally: a rebuild keeps it */
    reco_refresh(r2);
    assert_same(w.r, r2);
    reco_free(r2);
    /* the check can fail: without the import that recommender differs */
    struct reco *r3 = reco_new(&cfg, w.shards, RT_NSHARDS, w.cat);
    assert_false(same_collab(w.r, r3));
    reco_free(r3);
    core_buf_dispose(&blob);
    rt_world_free(&w);
}

static void test_corrupted_blob_refused(void **st)
{
    (void)st;
    struct rt_world w;
    rt_world_init(&w, NULL);
    struct core_buf blob;
    core_buf_init(&blob);
    uint64_t v = 0;
    assert_int_equal(reco_knn_export(w.r, &blob, &v), 1);
    for (size_t i = 0; i < blob.len; i += 7) {
        blob.data[i] ^= 0x41;
        assert_int_equal(reco_knn_import(w.r, blob.data, blob.len), CORE_E_CORRUPT);
        blob.data[i] ^= 0x41;
    }
    assert_int_equal(reco_knn_import(w.r, blob.data, blob.len - 1), CORE_E_CORRUPT);
    assert_int_equal(reco_knn_import(w.r, blob.data, blob.len), 0);
    core_buf_dispose(&blob);
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
        cmocka_unit_test(test_import_gives_the_same_recommendations),
        cmocka_unit_test(test_corrupted_blob_refused),
        cmocka_unit_test(test_user_read_hook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
