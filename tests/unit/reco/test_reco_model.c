/*
 * Tests of the model's life cycle (reco_core.c, reco_model.c): statistics, rebuilds picking
 * up state and catalog changes, the background refresher, and rebuilds while other threads
 * request recommendations and the processor applies events (run under ASan in CI).
 */
#include "reco_test_util.h"

#include "reco/reco_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

static int setup_world(void **st)
{
    struct rt_world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    rt_world_init(w, NULL);
    *st = w;
    return 0;
}

static int teardown_world(void **st)
{
    struct rt_world *w = *st;
    rt_world_free(w);
    free(w);
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ---- statistics and rebuilds ------------------------------------------------------------- */

static void test_stats_count_builds_and_requests(void **st)
{
    struct rt_world *w = st[0];
    struct reco_stats s;
    reco_get_stats(w->r, &s);
    assert_int_equal(s.model_builds, 1); /* reco_new builds the first model */
    assert_int_equal(s.requests, 0);
    assert_int_equal(s.cold_starts, 0);
    assert_int_equal(s.model_items, 31); /* 30 items with events or in the catalog + new-1 */
    assert_true(s.model_build_us >= 0 && s.model_age_ms >= 0);

    static struct reco_result res;
    char key[EVENT_KEY_HEX + 1];
    struct reco_request rq = rt_request(key, RT_USER_PERS, 5);
    for (int i = 0; i < 3; i++)
        assert_int_equal(reco_recommend(w->r, &rq, &res), 0);
    rq = rt_request(key, RT_USER_COLD, 5);
    assert_int_equal(reco_recommend(w->r, &rq, &res), 0);
    rq = rt_request(key, RT_USER_PREF, 5);
    assert_int_equal(reco_recommend(w->r, &rq, &res), 0);
    rq.count = 0; /* refused: not counted */
    assert_int_equal(reco_recommend(w->r, &rq, &res), CORE_E_INVALID);
    struct reco_item items[5];
    assert_true(reco_similar(w->r, "c1-3", 4, 5, items) > 0);
    reco_get_stats(w->r, &s);
    assert_int_equal(s.requests, 5);
    assert_int_equal(s.cold_starts, 2);
    assert_int_equal(s.model_builds, 1);

    reco_refresh(w->r);
    reco_refresh(w->r);
    reco_get_stats(w->r, &s);
    assert_int_equal(s.model_builds, 3);
    assert_int_equal(s.model_items, 31);
    assert_int_equal(s.requests, 5);
}

/* A rebuild picks up new items from the state and the catalog; until then the old model
 * keeps serving. */
static void test_refresh_picks_up_changes(void **st)
{
    struct rt_world *w = st[0];
    char key[EVENT_KEY_HEX + 1];
    rt_key(7, key);
    rt_view(w, key, "c2-0", EVENT_VIEW, RT_T0 + 519 * RT_MIN, NULL);
    rt_view(w, key, "x-new", EVENT_VIEW, RT_T0 + 520 * RT_MIN, NULL);
    rt_put(w->cat, "new-2",
           "{\"title\":\"Another\",\"categories\":[\"c2\"],\"tags\":[\"t-c2\",\"t-odd\"]}");
    struct reco_stats s;
    reco_get_stats(w->r, &s);
    assert_int_equal(s.model_items, 31);
    struct reco_item items[10];
    /* Known (catalog) but not in the model yet: no content neighbours. */
    assert_int_equal(reco_similar(w->r, "new-2", 5, 10, items), 0);
    reco_refresh(w->r);
    reco_get_stats(w->r, &s);
    assert_int_equal(s.model_items, 33);
    int n = reco_similar(w->r, "new-2", 5, 10, items);
    assert_int_equal(n, 10);
    for (int i = 0; i < n; i++) {
        char c[32];
        rt_category_of(w->cat, items[i].item_id, c, sizeof c);
        assert_string_equal(c, "c2");
    }
    /* x-new (no catalog entry) is co-visited with c2-0 in user 7's new session. */
    n = reco_similar(w->r, "x-new", 5, 10, items);
    assert_true(n >= 1);
    assert_string_equal(items[0].item_id, "c2-0");
    assert_int_equal(items[0].source, RECO_SRC_COVISIT);
}

/* ---- the bound on co-occurrence rows --------------------------------------------------------- */

static void small_knn(struct reco_config *c)
{
    c->knn_items = 12; /* per shard */
}

static int setup_small_knn(void **st)
{
    struct rt_world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    rt_world_init(w, small_knn);
    *st = w;
    return 0;
}

/* Item-kNN neighbours of id in the current model (-1: not in the model). */
static int knn_of(struct reco *r, const char *id, char out[][16], int max)
{
    struct reco_model *m = reco__model_get(r);
    uint32_t x = reco__model_find(m, id, strlen(id));
    int n = -1;
    if (x != UINT32_MAX) {
        n = 0;
        for (uint32_t k = m->knn.off[x]; k < m->knn.off[x + 1] && n < max; k++)
            snprintf(out[n++], 16, "%s", m->it.ids[m->knn.e[k].idx]);
    }
    reco__model_unref(m);
    return n;
}

static int64_t cooc_rows(struct rt_world *w, int p)
{
    struct state_stats ss;
    state_shard_stats(w->shards[p], &ss);
    return ss.cooc_rows;
}

/* A shard keeps at most cooc_items_max co-occurrence rows: beyond, the rows of the least
 * recently active quarter go, and the kNN lists follow. */
static void test_knn_items_bounded(void **st)
{
    struct rt_world *w = st[0];
    for (int p = 0; p < RT_NSHARDS; p++)
        assert_true(cooc_rows(w, p) >= 1 && cooc_rows(w, p) <= 12);
    struct reco_stats s;
    reco_get_stats(w->r, &s);
    assert_true(s.knn_items > 0 && s.knn_items <= 2 * 12);
    /* 30 new items seen in pairs by new users, after everything else: the rows of the items
     * not seen since go, the new ones have neighbours. */
    char key[EVENT_KEY_HEX + 1], id[16], nb[64][16];
    for (int i = 0; i < 30; i++) {
        rt_key(500 + i / 2, key);
        snprintf(id, sizeof id, "z-%d", i);
        rt_view(w, key, id, EVENT_VIEW, RT_T0 + 600 * RT_MIN + i * 1000, NULL);
    }
    reco_refresh(w->r);
    for (int p = 0; p < RT_NSHARDS; p++)
        assert_true(cooc_rows(w, p) <= 12);
    reco_get_stats(w->r, &s);
    assert_true(s.knn_items > 0 && s.knn_items <= 2 * 12);
    assert_int_equal(knn_of(w->r, "z-29", nb, 64), 1);
    assert_string_equal(nb[0], "z-28");
    /* c2-8 was seen by users 45-49 only, long before: its row went */
    assert_int_equal(knn_of(w->r, "c2-8", nb, 64), 0);
    /* Recommendations still work from the bounded model. */
    static struct reco_result res;
    struct reco_request rq = rt_request(key, RT_USER_PERS, 10);
    assert_int_equal(reco_recommend(w->r, &rq, &res), 0);
    assert_int_equal(res.n, 10);
}

/* ---- the background refresher ------------------------------------------------------------ */

static int64_t builds_of(struct reco *r)
{
    struct reco_stats s;
    reco_get_stats(r, &s);
    return s.model_builds;
}

static void test_background_refresher(void **st)
{
    struct rt_world *w = st[0];
    struct reco_config cfg = w->cfg;
    cfg.refresh_ms = 10;
    struct reco *r = reco_new(&cfg, w->shards, RT_NSHARDS, w->cat);
    reco_start(r);
    reco_start(r); /* idempotent */
    assert_int_equal(builds_of(r), 1);
    /* Nothing changed: no rebuild. */
    sleep_ms(60);
    assert_int_equal(builds_of(r), 1);
    struct reco_stats s;
    reco_get_stats(r, &s);
    assert_int_equal(s.knn_full_updates, 1); /* the first update reads every row */
    /* An event: rebuilt within a few periods (the kNN lists of the changed rows), then, once
     * nothing changes, once more with every row (settling: reco_cooc.c). */
    char key[EVENT_KEY_HEX + 1];
    rt_key(3, key);
    rt_view(w, key, "c1-5", EVENT_CLICK, RT_T0 + 530 * RT_MIN, NULL);
    for (int i = 0; i < 500 && builds_of(r) < 3; i++)
        sleep_ms(10);
    sleep_ms(60);
    assert_int_equal(builds_of(r), 3);
    reco_get_stats(r, &s);
    assert_int_equal(s.knn_full_updates, 2);
    /* A catalog edit counts as a change too (no row changed: no settling build after it). */
    rt_put(w->cat, "new-3", "{\"categories\":[\"c1\"]}");
    for (int i = 0; i < 500 && builds_of(r) < 4; i++)
        sleep_ms(10);
    assert_int_equal(builds_of(r), 4);
    reco_get_stats(r, &s);
    assert_int_equal(s.model_items, 32);
    assert_int_equal(s.knn_full_updates, 2);
    sleep_ms(60);
    assert_int_equal(builds_of(r), 4);
    reco_free(r);

    /* Stopping does not wait for the period to end. */
    cfg.refresh_ms = 60000;
    r = reco_new(&cfg, w->shards, RT_NSHARDS, w->cat);
    reco_start(r);
    sleep_ms(20);
    int64_t t0 = core_mono_ns();
    reco_free(r);
    assert_true(core_mono_ns() - t0 < (int64_t)2000000000);
    /* Without a period, reco_start starts nothing. */
    cfg.refresh_ms = 0;
    r = reco_new(&cfg, w->shards, RT_NSHARDS, w->cat);
    reco_start(r);
    reco_free(r);
}

/* ---- rebuilds under load ------------------------------------------------------------------- */

#define READERS 4
#define ITERATIONS 300
#define REBUILDS 60

struct load {
    struct rt_world *w;
    atomic_int errors;
    atomic_int requests;
    atomic_int stop;
    char first_error[200];
    pthread_mutex_t mu;
};

static void load_error(struct load *l, const char *msg, const char *detail)
{
    if (atomic_fetch_add(&l->errors, 1) == 0) {
        pthread_mutex_lock(&l->mu);
        snprintf(l->first_error, sizeof l->first_error, "%s: %s", msg, detail);
        pthread_mutex_unlock(&l->mu);
    }
}

struct reader_arg {
    struct load *l;
    int id;
};

static void *reader(void *p)
{
    struct reader_arg *a = p;
    struct load *l = a->l;
    struct reco_result *res = malloc(sizeof *res);
    struct reco_item items[20];
    static const char *const cats[] = {NULL, "c1", "c2", "c3"};
    for (int i = 0; i < ITERATIONS; i++) {
        int user = (i * 7 + a->id * 13) % 53;
        if (user >= 50)
            user = RT_USER_PERS + user - 50;
        char key[EVENT_KEY_HEX + 1];
        struct reco_request rq = rt_request(key, user, 1 + (i + a->id) % 20);
        rq.category = cats[i % 4];
        rq.device = i % 3 ? "mobile" : NULL;
        if (reco_recommend(l->w->r, &rq, res) != 0) {
            load_error(l, "reco_recommend failed", key);
            continue;
        }
        atomic_fetch_add(&l->requests, 1);
        if (res->n < 0 || res->n > rq.count)
            load_error(l, "bad count", key);
        for (int k = 0; k < res->n; k++) {
            if (res->items[k].nreasons < 1 || !res->items[k].item_id[0])
                load_error(l, "item without id or reason", res->items[k].item_id);
            for (int j = 0; j < k; j++)
                if (!strcmp(res->items[j].item_id, res->items[k].item_id))
                    load_error(l, "duplicate item", res->items[k].item_id);
        }
        if (i % 10 == 0) {
            static const char *const seeds[] = {"c1-3", "c2-8", "new-1", "c3-0"};
            const char *seed = seeds[(i / 10) % 4];
            int n = reco_similar(l->w->r, seed, strlen(seed), 20, items);
            if (n < 1)
                load_error(l, "no similar items", seed);
        }
    }
    free(res);
    return NULL;
}

/* The processor: applies events to the shards and edits the catalog meanwhile. */
static void *writer(void *p)
{
    struct load *l = p;
    char key[EVENT_KEY_HEX + 1], item[16];
    for (int i = 0; !atomic_load(&l->stop); i++) {
        rt_key(i % 60, key);
        snprintf(item, sizeof item, "c%d-%d", i % 3 + 1, (i / 3) % 10);
        rt_view(l->w, key, item, i % 4 ? EVENT_VIEW : EVENT_CLICK, RT_T0 + 540 * RT_MIN + i * 1000,
                i % 2 ? "mobile" : "desktop");
        if (i % 50 == 0) {
            char json[160];
            snprintf(json, sizeof json,
                     "{\"title\":\"Item c3-7\",\"categories\":[\"c3\"],\"tags\":[\"t-c3\"],"
                     "\"available\":%s}",
                     (i / 50) % 2 ? "false" : "true");
            rt_put(l->w->cat, "c3-7", json);
        }
        if (i % 8 == 0)
            sched_yield();
    }
    return NULL;
}

static void test_refresh_while_requests_run(void **st)
{
    struct rt_world *w = st[0];
    struct load l = {.w = w};
    atomic_init(&l.errors, 0);
    atomic_init(&l.requests, 0);
    atomic_init(&l.stop, 0);
    pthread_mutex_init(&l.mu, NULL);
    pthread_t rt[READERS], wt;
    struct reader_arg args[READERS];
    assert_int_equal(pthread_create(&wt, NULL, writer, &l), 0);
    for (int i = 0; i < READERS; i++) {
        args[i] = (struct reader_arg){&l, i};
        assert_int_equal(pthread_create(&rt[i], NULL, reader, &args[i]), 0);
    }
    for (int i = 0; i < REBUILDS; i++)
        reco_refresh(w->r);
    for (int i = 0; i < READERS; i++)
        pthread_join(rt[i], NULL);
    atomic_store(&l.stop, 1);
    pthread_join(wt, NULL);
    pthread_mutex_destroy(&l.mu);
    if (atomic_load(&l.errors))
        fail_msg("%d errors; first: %s", atomic_load(&l.errors), l.first_error);
    assert_int_equal(atomic_load(&l.requests), READERS * ITERATIONS);
    struct reco_stats s;
    reco_get_stats(w->r, &s);
    assert_int_equal(s.model_builds, 1 + REBUILDS);
    assert_int_equal(s.requests, READERS * ITERATIONS); /* similar-item lookups are not counted */
    /* And the recommender still works on the grown state. */
    reco_refresh(w->r);
    static struct reco_result res;
    char key[EVENT_KEY_HEX + 1];
    struct reco_request rq = rt_request(key, RT_USER_PERS, 10);
    assert_int_equal(reco_recommend(w->r, &rq, &res), 0);
    assert_int_equal(res.n, 10);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_world, teardown_world)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_stats_count_builds_and_requests),
        T(test_refresh_picks_up_changes),
        T(test_background_refresher),
        T(test_refresh_while_requests_run),
        cmocka_unit_test_setup_teardown(test_knn_items_bounded, setup_small_knn, teardown_world),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
