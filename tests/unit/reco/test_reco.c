/*
 * Tests of the request path (reco.c) over a synthetic world of real state shards and a real
 * in-memory catalog (reco_test_util.h): strategies, exclusions, filters, availability,
 * diversity, determinism, ordering, reasons, recIds, experiments and similar items.
 */
#include "reco/reco_rank.h"
#include "reco_test_util.h"

#include <ctype.h>
#include <math.h>

/* ---- checks ---------------------------------------------------------------------------------- */

/* rec is "<strategy>.<variant>.<16 lowercase hex>". */
static void check_rec_id(const char *rec, const char *strategy, const char *variant)
{
    char want[80];
    snprintf(want, sizeof want, "%s.%s.", strategy, variant);
    size_t n = strlen(want);
    if (strncmp(rec, want, n) != 0)
        fail_msg("recId '%s' does not start with '%s'", rec, want);
    assert_int_equal(strlen(rec + n), 16);
    for (const char *p = rec + n; *p; p++)
        if (!isxdigit((unsigned char)*p) || isupper((unsigned char)*p))
            fail_msg("recId '%s': '%c' is not lowercase hex", rec, *p);
}

static bool available(struct catalog *cat, const char *id)
{
    catalog_read_begin(cat);
    const struct catalog_item *ci = catalog_find(cat, id, strlen(id));
    bool ok = !ci || ci->available;
    catalog_read_end(cat);
    return ok;
}

/* What every list must satisfy: at most count items, distinct, available, finite scores, a
 * known best source and at least one non-empty reason each. */
static void check_items(struct catalog *cat, const struct reco_result *res, int count)
{
    assert_true(res->n >= 0 && res->n <= count);
    for (int i = 0; i < res->n; i++) {
        const struct reco_item *it = &res->items[i];
        if (!available(cat, it->item_id))
            fail_msg("unavailable item %s recommended", it->item_id);
        assert_true(isfinite(it->score));
        assert_true(it->source >= 0 && it->source < RECO_SRC__COUNT);
        assert_true(it->nreasons >= 1 && it->nreasons <= RECO_REASONS_MAX);
        for (int k = 0; k < it->nreasons; k++)
            assert_true(strlen(it->reasons[k]) > 0);
        for (int j = 0; j < i; j++)
            if (!strcmp(res->items[j].item_id, it->item_id))
                fail_msg("%s listed twice", it->item_id);
    }
}

/* Scores descending, equal scores by item id ascending. */
static void check_sorted(const struct reco_result *res)
{
    for (int i = 1; i < res->n; i++) {
        const struct reco_item *a = &res->items[i - 1], *b = &res->items[i];
        if (a->score < b->score || (a->score == b->score && strcmp(a->item_id, b->item_id) >= 0))
            fail_msg("items %d (%s %.9g) and %d (%s %.9g) out of order", i - 1, a->item_id,
                     a->score, i, b->item_id, b->score);
    }
}

/* Items per category ("c1".."c3"; index 0 unused). */
static void category_counts(struct catalog *cat, const struct reco_result *res, int counts[4])
{
    memset(counts, 0, 4 * sizeof counts[0]);
    for (int i = 0; i < res->n; i++) {
        char c[32];
        rt_category_of(cat, res->items[i].item_id, c, sizeof c);
        assert_true(c[0] == 'c' && c[1] >= '1' && c[1] <= '3' && !c[2]);
        counts[c[1] - '0']++;
    }
}

static void recommend(struct rt_world *w, int user, int count, struct reco_result *res)
{
    char key[EVENT_KEY_HEX + 1];
    struct reco_request rq = rt_request(key, user, count);
    assert_int_equal(reco_recommend(w->r, &rq, res), 0);
    check_items(w->cat, res, count);
}

/* The user's interacted items, read from the state (what the recommender must exclude). */
static int history(struct rt_world *w, int user, char items[][EVENT_ITEM_MAX + 1], int max)
{
    char key[EVENT_KEY_HEX + 1];
    rt_key(user, key);
    int32_t p = core_partition_for_key(key, EVENT_KEY_HEX, RT_NSHARDS);
    struct state_user_read *u = malloc(sizeof *u);
    state_shard_user_read(w->shards[p], key, u);
    int n = 0;
    for (int i = 0; u->found && i < u->nrecent && n < max; i++)
        if (u->recent[i].weight > 0)
            snprintf(items[n++], EVENT_ITEM_MAX + 1, "%s", u->recent[i].item_id);
    free(u);
    return n;
}

/* ---- fixtures: a world per test, freed by the teardown even when the test fails ---------- */

struct fx {
    struct rt_world w;
    struct reco_result *a, *b;
};

static int fx_setup_max(void **st, void (*tweak)(struct reco_config *), int64_t max_items)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    rt_world_init_max(&f->w, tweak, max_items);
    f->a = calloc(1, sizeof *f->a);
    f->b = calloc(1, sizeof *f->b);
    assert_true(f->a && f->b);
    *st = f;
    return 0;
}

static int fx_setup(void **st, void (*tweak)(struct reco_config *))
{
    return fx_setup_max(st, tweak, 0);
}

static int fx_teardown(void **st)
{
    struct fx *f = *st;
    rt_world_free(&f->w);
    free(f->a);
    free(f->b);
    free(f);
    return 0;
}

static int setup_default(void **st)
{
    return fx_setup(st, NULL);
}

static int setup_small_catalog(void **st)
{
    return fx_setup_max(st, NULL, 512);
}

static void no_exploration(struct reco_config *c)
{
    c->exploration = 0;
}

static int setup_no_exploration(void **st)
{
    return fx_setup(st, no_exploration);
}

static void cap3_no_exploration(struct reco_config *c)
{
    c->diversity_cap = 3;
    c->exploration = 0;
}

static int setup_cap3(void **st)
{
    return fx_setup(st, cap3_no_exploration);
}

static void big_cap_no_exploration(struct reco_config *c)
{
    c->diversity_cap = RECO_COUNT_MAX;
    c->exploration = 0;
}

static int setup_big_cap(void **st)
{
    return fx_setup(st, big_cap_no_exploration);
}

static const char experiment_json[] =
    "{\"name\":\"exp-1\",\"variants\":[{\"name\":\"control\",\"share\":50},"
    "{\"name\":\"no_collab\",\"share\":50,\"weights\":{\"collab\":0,\"trending\":1}}]}";

static void with_experiment(struct reco_config *c)
{
    char err[200];
    assert_int_equal(reco_experiment_parse(&c->experiment, experiment_json, strlen(experiment_json),
                                           err, sizeof err),
                     0);
}

static int setup_experiment(void **st)
{
    return fx_setup(st, with_experiment);
}

/* ---- strategies -------------------------------------------------------------------------- */

static void test_personalized(void **st)
{
    struct fx *f = *st;
    struct reco_result *res = f->a;
    recommend(&f->w, RT_USER_PERS, 10, res);
    assert_string_equal(res->strategy, "personalized");
    assert_false(res->cold_start);
    assert_string_equal(res->variant, "default");
    check_rec_id(res->rec_id, "pers", "default");
    assert_int_equal(res->n, 10);
    /* The user's own items are consumed; the session's co-visited c1 items lead. */
    assert_int_equal(rt_find(res, "c1-0"), -1);
    assert_int_equal(rt_find(res, "c1-1"), -1);
    assert_int_equal(rt_find(res, "c1-2"), -1);
    assert_int_equal(rt_find(res, "c1-9"), -1); /* unavailable */
    assert_true(rt_find(res, "c1-3") >= 0);     /* co-visited with c1-1 and c1-2 */
    char c[32];
    rt_category_of(f->w.cat, res->items[0].item_id, c, sizeof c);
    assert_string_equal(c, "c1");
    int src = res->items[0].source;
    assert_true(src == RECO_SRC_SESSION || src == RECO_SRC_COVISIT || src == RECO_SRC_COLLAB);
    /* Reasons name the seed item by its catalog title. */
    bool titled = false;
    for (int k = 0; k < res->items[0].nreasons; k++)
        titled |= strstr(res->items[0].reasons[k], "Item c1-") != NULL;
    assert_true(titled);
    /* recIds are unique per request. */
    recommend(&f->w, RT_USER_PERS, 10, f->b);
    assert_string_not_equal(res->rec_id, f->b->rec_id);
}

/* A reason naming an item whose title does not fit is cut at a character boundary. */
static void test_reason_long_title(void **st)
{
    struct fx *f = *st;
    struct reco_result *res = f->a;
    char title[400] = "Item ", json[512];
    for (int i = 0; i < 150; i++)
        strcat(title, "\xc3\xa9"); /* U+00E9, two bytes: 305 bytes in all */
    for (int i = 0; i < 9; i++) {
        char id[16];
        snprintf(id, sizeof id, "c1-%d", i);
        snprintf(json, sizeof json, "{\"title\":\"%s\",\"categories\":[\"c1\"]}", title);
        rt_put(f->w.cat, id, json);
    }
    recommend(&f->w, RT_USER_PERS, 10, res);
    bool cut = false;
    for (int i = 0; i < res->n; i++)
        for (int k = 0; k < res->items[i].nreasons; k++) {
            const char *t = res->items[i].reasons[k];
            size_t n = strlen(t);
            assert_true(n < RECO_REASON_LEN);
            for (size_t p = 0; p < n;) { /* valid UTF-8 all through */
                size_t l = core_utf8_len((const unsigned char *)t + p, n - p);
                assert_true(l > 0);
                p += l;
            }
            cut |= strstr(t, "Item \xc3\xa9\xc3\xa9") && n >= RECO_REASON_LEN - 2;
        }
    assert_true(cut);
}

static void test_preferences_user(void **st)
{
    struct fx *f = *st;
    struct reco_result *res = f->a;
    reco_refresh(f->w.r);
    recommend(&f->w, RT_USER_PREF, 10, res);
    assert_string_equal(res->strategy, "preferences");
    assert_true(res->cold_start);
    check_rec_id(res->rec_id, "pref", "default");
    assert_int_equal(res->n, 10);
    char c[32];
    rt_category_of(f->w.cat, res->items[0].item_id, c, sizeof c);
    assert_string_equal(c, "c1");
    /* c1 fills its whole diversity share (count / 2), its items saying why. */
    int counts[4];
    category_counts(f->w.cat, res, counts);
    assert_true(counts[1] >= 5);
    for (int i = 0; i < res->n; i++) {
        rt_category_of(f->w.cat, res->items[i].item_id, c, sizeof c);
        if (!strcmp(c, "c1") && res->items[i].source == RECO_SRC_CATEGORY)
            assert_string_equal(res->items[i].reasons[0], "matches your interest in c1");
    }
    assert_int_equal(rt_find(res, "c1-9"), -1);
}

/*
 * A stated category brings its items even when nobody has interacted with them yet and they
 * have no publishedAt (onboarding in a new catalog). reco_model.c (build_lists) puts an item
 * into its categories' popular lists only when pop + 1e-6 * (published > 0) is positive, and
 * into the fresh lists only with a recent publishedAt, so such items are in no list: the user
 * gets strategy "preferences" and nothing of the category.
 */
static void test_preferences_unseen_items(void **st)
{
    struct fx *f = *st;
    rt_put(f->w.cat, "pn-1", "{\"title\":\"never seen 1\",\"categories\":[\"pn-new\"]}");
    rt_put(f->w.cat, "pn-2", "{\"title\":\"never seen 2\",\"categories\":[\"pn-new\"]}");
    char key[EVENT_KEY_HEX + 1];
    rt_key(RT_USER_PREF + 10, key);
    struct event ev = rt_event(key, NULL, EVENT_PREFERENCES, RT_T0 + 520 * RT_MIN);
    rt_str(&ev.properties_json, "{\"categories\":[\"pn-new\"]}");
    rt_apply(&f->w, &ev);
    reco_refresh(f->w.r);
    recommend(&f->w, RT_USER_PREF + 10, 10, f->a);
    assert_string_equal(f->a->strategy, "preferences");
    int i1 = rt_find(f->a, "pn-1"), i2 = rt_find(f->a, "pn-2");
    if (i1 < 0 || i2 < 0)
        fail_msg("strategy preferences but pn-1 at %d, pn-2 at %d", i1, i2);
    assert_string_equal(f->a->items[i1].reasons[0], "matches your interest in pn-new");
}

static void test_cold_user(void **st)
{
    struct fx *f = *st;
    struct reco_result *res = f->a;
    struct reco_stats s0, s1;
    reco_get_stats(f->w.r, &s0);
    char key[EVENT_KEY_HEX + 1];
    struct reco_request rq = rt_request(key, RT_USER_COLD, 10);
    rq.device = "mobile";
    assert_int_equal(reco_recommend(f->w.r, &rq, res), 0);
    check_items(f->w.cat, res, 10);
    assert_string_equal(res->strategy, "popular");
    assert_true(res->cold_start);
    check_rec_id(res->rec_id, "pop", "default");
    assert_int_equal(res->n, 10);
    bool device_reason = false;
    for (int i = 0; i < res->n; i++)
        for (int k = 0; k < res->items[i].nreasons; k++)
            device_reason |= !strcmp(res->items[i].reasons[k], "popular on mobile");
    assert_true(device_reason);
    reco_get_stats(f->w.r, &s1);
    assert_int_equal(s1.requests, s0.requests + 1);
    assert_int_equal(s1.cold_starts, s0.cold_starts + 1);
    /* A personalised request is no cold start. */
    recommend(&f->w, RT_USER_PERS, 5, res);
    reco_get_stats(f->w.r, &s0);
    assert_int_equal(s0.requests, s1.requests + 1);
    assert_int_equal(s0.cold_starts, s1.cold_starts);
}

static void test_invalid_request(void **st)
{
    struct fx *f = *st;
    struct reco_result *res = f->a;
    char key[EVENT_KEY_HEX + 1];
    struct reco_stats s0, s1;
    reco_get_stats(f->w.r, &s0);
    struct reco_request rq = rt_request(key, RT_USER_PERS, 0);
    assert_int_equal(reco_recommend(f->w.r, &rq, res), CORE_E_INVALID);
    rq.count = -3;
    assert_int_equal(reco_recommend(f->w.r, &rq, res), CORE_E_INVALID);
    rq.count = RECO_COUNT_MAX + 1;
    assert_int_equal(reco_recommend(f->w.r, &rq, res), CORE_E_INVALID);
    rq.count = 5;
    rq.user_key = NULL;
    assert_int_equal(reco_recommend(f->w.r, &rq, res), CORE_E_INVALID);
    reco_get_stats(f->w.r, &s1);
    assert_int_equal(s1.requests, s0.requests);
    /* The largest count is fine; the world has fewer items than that. */
    rq = rt_request(key, RT_USER_PERS, RECO_COUNT_MAX);
    assert_int_equal(reco_recommend(f->w.r, &rq, res), 0);
    check_items(f->w.cat, res, RECO_COUNT_MAX);
    assert_true(res->n > 10 && res->n < RECO_COUNT_MAX);
}

/* ---- rules ----------------------------------------------------------------------------------- */

static void test_consumed_items_excluded(void **st)
{
    struct fx *f = *st;
    struct reco_result *res = f->a;
    char hist[STATE_READ_RECENT_MAX][EVENT_ITEM_MAX + 1];
    int users[47];
    for (int u = 0; u < 45; u++)
        users[u] = u;
    users[45] = 47;
    users[46] = RT_USER_PERS;
    for (size_t k = 0; k < sizeof users / sizeof users[0]; k++) {
        int nh = history(&f->w, users[k], hist, STATE_READ_RECENT_MAX);
        assert_true(nh >= 2);
        recommend(&f->w, users[k], 20, res);
        assert_string_equal(res->strategy, "personalized");
        assert_int_equal(res->n, 20);
        for (int i = 0; i < nh; i++)
            if (rt_find(res, hist[i]) >= 0)
                fail_msg("user %d: consumed item %s recommended", users[k], hist[i]);
    }
}

struct excl_arg {
    struct catalog *cat;
    int calls;
};

/* Excludes every c1 item. */
static bool exclude_c1(void *arg, const char *id, size_t len)
{
    struct excl_arg *a = arg;
    a->calls++;
    char c[32], buf[EVENT_ITEM_MAX + 1];
    snprintf(buf, sizeof buf, "%.*s", (int)len, id);
    rt_category_of(a->cat, buf, c, sizeof c);
    return !strcmp(c, "c1");
}

/* Unavailability is found only while picking (the catalog is read lazily): when unavailable
 * items use up the best few candidates the picker selected first, it ranks the rest on
 * demand, and the answer equals excluding the same items up front. */
static void test_rank_beyond_the_first_few(void **st)
{
    struct fx *f = *st;
    struct reco_result *res = f->a, *ref = f->b;
    enum { N = 14 }; /* more than the 1 * 2 + 8 selected first for count 1 */
    char gone[N][EVENT_ITEM_MAX + 1], key[EVENT_KEY_HEX + 1];
    const char *ex[N];
    size_t exl[N];
    double score[N];
    for (int i = 0; i < N; i++) { /* the i-th best, the better ones excluded by id */
        struct reco_request rq = rt_request(key, RT_USER_PERS, 1);
        rq.exclude = ex;
        rq.exclude_len = exl;
        rq.nexclude = i;
        assert_int_equal(reco_recommend(f->w.r, &rq, ref), 0);
        assert_int_equal(ref->n, 1);
        snprintf(gone[i], sizeof gone[i], "%s", ref->items[0].item_id);
        score[i] = ref->items[0].score;
        ex[i] = gone[i];
        exl[i] = strlen(gone[i]);
    }
    for (int i = 0; i < N - 1; i++) { /* now the same items become unavailable instead */
        char cat[32], json[96];
        rt_category_of(f->w.cat, gone[i], cat, sizeof cat);
        snprintf(json, sizeof json, "{\"categories\":[\"%s\"],\"available\":false}", cat);
        rt_put(f->w.cat, gone[i], json);
        recommend(&f->w, RT_USER_PERS, 1, res);
        assert_int_equal(res->n, 1);
        assert_string_equal(res->items[0].item_id, gone[i + 1]);
        assert_true(res->items[0].score == score[i + 1]);
    }
}

static void test_explicit_excludes(void **st)
{
    struct fx *f = *st;
    struct reco_result *base = f->a, *res = f->b;
    recommend(&f->w, RT_USER_PERS, 10, base);
    assert_int_equal(base->n, 10);

    /* The two best items excluded by id: gone, the list still full. */
    char key[EVENT_KEY_HEX + 1];
    struct reco_request rq = rt_request(key, RT_USER_PERS, 10);
    const char *ex[2] = {base->items[0].item_id, base->items[1].item_id};
    size_t exl[2] = {strlen(ex[0]), strlen(ex[1])};
    rq.exclude = ex;
    rq.exclude_len = exl;
    rq.nexclude = 2;
    assert_int_equal(reco_recommend(f->w.r, &rq, res), 0);
    check_items(f->w.cat, res, 10);
    assert_int_equal(res->n, 10);
    assert_int_equal(rt_find(res, ex[0]), -1);
    assert_int_equal(rt_find(res, ex[1]), -1);
    assert_int_equal(rt_find(res, "c1-0"), -1); /* the history is still excluded too */

    /* exclude_fn: no c1 item at all, and it was consulted. */
    struct excl_arg a = {f->w.cat, 0};
    rq = rt_request(key, RT_USER_PERS, 10);
    rq.exclude_fn = exclude_c1;
    rq.exclude_arg = &a;
    assert_int_equal(reco_recommend(f->w.r, &rq, res), 0);
    check_items(f->w.cat, res, 10);
    assert_true(a.calls > 0);
    assert_int_equal(res->n, 10);
    int counts[4];
    category_counts(f->w.cat, res, counts);
    assert_int_equal(counts[1], 0);
}

static void test_category_filter(void **st)
{
    struct fx *f = *st;
    struct reco_result *res = f->a;
    char key[EVENT_KEY_HEX + 1];
    static const int users[] = {RT_USER_PERS, RT_USER_PREF, RT_USER_COLD, 4};
    static const char *const cats[] = {"c1", "c2", "c3"};
    for (size_t u = 0; u < 4; u++)
        for (int k = 0; k < 3; k++) {
            struct reco_request rq = rt_request(key, users[u], 8);
            rq.category = cats[k];
            assert_int_equal(reco_recommend(f->w.r, &rq, res), 0);
            check_items(f->w.cat, res, 8);
            assert_true(res->n >= 4);
            for (int i = 0; i < res->n; i++) {
                char c[32];
                rt_category_of(f->w.cat, res->items[i].item_id, c, sizeof c);
                if (strcmp(c, cats[k]) != 0)
                    fail_msg("category %s: got %s (%s)", cats[k], res->items[i].item_id, c);
            }
        }
    /* A category nobody knows: nothing, not everything. */
    struct reco_request rq = rt_request(key, RT_USER_PERS, 8);
    rq.category = "no-such-category";
    assert_int_equal(reco_recommend(f->w.r, &rq, res), 0);
    assert_int_equal(res->n, 0);
}

/*
 * The filter must see every category of an item (the catalog allows CATALOG_CATEGORIES_MAX).
 * reco_recommend copies at most 4 of an item's categories into the candidate (struct cand
 * cats[4], the "c->ncats < 4" loop in the filter section of reco.c), so an item asked for
 * by its fifth category is filtered out: "x5" finds nothing while "x4" finds the item.
 */
static void test_category_filter_every_category(void **st)
{
    struct fx *f = *st;
    rt_put(f->w.cat, "multi",
           "{\"title\":\"Multi\",\"categories\":[\"x1\",\"x2\",\"x3\",\"x4\",\"x5\",\"x6\"]}");
    char key[EVENT_KEY_HEX + 1];
    rt_key(7, key);
    rt_view(&f->w, key, "multi", EVENT_CLICK, RT_T0 + 520 * RT_MIN, NULL);
    reco_refresh(f->w.r);
    static const char *const cats[] = {"x1", "x4", "x5", "x6"};
    for (int k = 0; k < 4; k++) {
        struct reco_request rq = rt_request(key, RT_USER_COLD, 5);
        rq.category = cats[k];
        assert_int_equal(reco_recommend(f->w.r, &rq, f->a), 0);
        if (f->a->n != 1 || strcmp(f->a->items[0].item_id, "multi") != 0)
            fail_msg("category %s: %d items, want [multi]", cats[k], f->a->n);
    }
}

/* Whether any user's list or any similar-items list names id. */
static bool listed_anywhere(struct fx *f, const char *id)
{
    struct reco_item sim[30];
    bool found = false;
    for (int u = 0; u < 50 && !found; u++) {
        recommend(&f->w, u, 20, f->b);
        found = rt_find(f->b, id) >= 0;
    }
    static const char *const seeds[] = {"c2-0", "c2-1", "c2-5", "c2-8", "c3-8"};
    for (size_t k = 0; k < 5 && !found; k++) {
        int n = reco_similar(f->w.r, seeds[k], strlen(seeds[k]), 30, sim);
        for (int i = 0; i < n; i++)
            found |= !strcmp(sim[i].item_id, id);
    }
    return found;
}

static void test_unavailable_never_returned(void **st)
{
    struct fx *f = *st;
    /* c1-9 is every c1 user's first view, but unavailable. */
    assert_false(listed_anywhere(f, "c1-9"));
    /* c2-9 is listed while available; once withdrawn it is not, before and after a model
     * rebuild (availability is read live from the catalog). */
    assert_true(listed_anywhere(f, "c2-9"));
    char json[200];
    snprintf(json, sizeof json,
             "{\"title\":\"Item c2-9\",\"categories\":[\"c2\"],\"tags\":[\"t-c2\",\"t-odd\"],"
             "\"publishedAt\":%lld,\"available\":false}",
             (long long)(RT_T0 - 30 * RT_DAY));
    rt_put(f->w.cat, "c2-9", json);
    assert_false(listed_anywhere(f, "c2-9"));
    reco_refresh(f->w.r);
    assert_false(listed_anywhere(f, "c2-9"));
}

/* The request path finds catalog items through the slot they had when the model was built;
 * a slot that went to another id since must not lend that item's availability. */
static void test_catalog_slot_reused_after_build(void **st)
{
    struct fx *f = *st;
    assert_true(listed_anywhere(f, "c2-9"));
    /* Ids that come and go until the catalog has all its slots (2 x 512 = 1024): then a new
     * id takes the slot deleted last. */
    char id[16];
    for (int i = 0; i < 1024; i++) {
        snprintf(id, sizeof id, "fill-%d", i);
        rt_put(f->w.cat, id, "{\"categories\":[\"c3\"]}");
        assert_int_equal(catalog_delete(f->w.cat, id, strlen(id)), 0);
    }
    catalog_read_begin(f->w.cat);
    int64_t slot = catalog_idx_find(f->w.cat, "c2-9", 4);
    catalog_read_end(f->w.cat);
    assert_true(slot >= 0);
    /* c2-9 leaves the catalog (an item the catalog does not know may still be listed) and an
     * unavailable item takes its slot */
    assert_int_equal(catalog_delete(f->w.cat, "c2-9", 4), 0);
    rt_put(f->w.cat, "reuses-slot", "{\"categories\":[\"c2\"],\"available\":false}");
    catalog_read_begin(f->w.cat);
    int64_t now_at = catalog_idx_find(f->w.cat, "reuses-slot", 11);
    catalog_read_end(f->w.cat);
    assert_int_equal(now_at, slot);
    assert_true(listed_anywhere(f, "c2-9"));
}

/* Every list of count items for users 0..49 and the special users has at most cap items of
 * one category. */
static void check_caps(struct fx *f, int count, int cap)
{
    struct reco_result *res = f->a;
    for (int u = 0; u < 50 + 3; u++) {
        int user = u < 50 ? u : RT_USER_PERS + (u - 50);
        recommend(&f->w, user, count, res);
        assert_int_equal(res->n, count);
        int counts[4];
        category_counts(f->w.cat, res, counts);
        for (int k = 1; k <= 3; k++)
            if (counts[k] > cap)
                fail_msg("user %d (%s): %d items of c%d in %d, cap %d; last item %s", user,
                         res->strategy, counts[k], k, count, cap, res->items[res->n - 1].item_id);
    }
}

/* Three categories with plenty of available candidates each: the cap always holds. */
static void test_diversity_cap_explicit(void **st)
{
    check_caps(*st, 9, 3); /* so every list is 3 + 3 + 3 */
}

static void test_diversity_cap_default(void **st)
{
    check_caps(*st, 10, 5); /* default cap: half the count */
    check_caps(*st, 4, 2);
}

/*
 * The same with the default exploration share (10 %: one slot in ten). When no new item is
 * a candidate, that slot goes to the best remaining candidate whatever its category (reco.c,
 * the "nothing new to explore: fill" loop after the exploration loop), so a category already
 * at its cap gets one more although other categories have plenty of candidates: user 1 gets
 * six c2 items in ten (the sixth last, out of score order).
 */
static void test_diversity_cap_with_exploration_slot(void **st)
{
    check_caps(*st, 10, 5);
}

/* ---- ordering and determinism ------------------------------------------------------------ */

static void check_same(const struct reco_result *a, const struct reco_result *b)
{
    assert_int_equal(a->n, b->n);
    assert_string_equal(a->strategy, b->strategy);
    for (int i = 0; i < a->n; i++) {
        assert_string_equal(a->items[i].item_id, b->items[i].item_id);
        assert_true(a->items[i].score == b->items[i].score);
        assert_int_equal(a->items[i].source, b->items[i].source);
        assert_int_equal(a->items[i].nreasons, b->items[i].nreasons);
        assert_string_equal(a->items[i].reasons[0], b->items[i].reasons[0]);
    }
}

/* Without diversity re-ranking or exploration slots the list is in score order. */
static void test_deterministic_and_sorted(void **st)
{
    struct fx *f = *st;
    static const int users[] = {RT_USER_PERS, RT_USER_PREF, RT_USER_COLD, 0, 1, 2, 17, 46};
    for (size_t u = 0; u < sizeof users / sizeof users[0]; u++) {
        recommend(&f->w, users[u], 20, f->a);
        recommend(&f->w, users[u], 20, f->b);
        assert_int_equal(f->a->n, 20);
        check_same(f->a, f->b);
        check_sorted(f->a);
    }
    /* c2-8 and c3-8 tie on every figure: equal scores, the lower id first. */
    recommend(&f->w, RT_USER_COLD, 10, f->a);
    int i2 = rt_find(f->a, "c2-8"), i3 = rt_find(f->a, "c3-8");
    assert_true(i2 >= 0 && i3 == i2 + 1);
    assert_true(f->a->items[i2].score == f->a->items[i3].score);
    /* A model rebuilt from the same state gives the same lists. */
    recommend(&f->w, RT_USER_PERS, 20, f->b);
    reco_refresh(f->w.r);
    recommend(&f->w, RT_USER_PERS, 20, f->a);
    check_same(f->a, f->b);
}

/* With the default rules too, the same request gives the same list. */
static void test_deterministic_default_rules(void **st)
{
    struct fx *f = *st;
    for (int u = 0; u < 50; u += 7) {
        recommend(&f->w, u, 10, f->a);
        recommend(&f->w, u, 10, f->b);
        check_same(f->a, f->b);
    }
}

/* ---- rankers -----------------------------------------------------------------------------------
 */

/* The blend ranker is linear, so requests score it from the raw source scores with folded
 * weights; the same ranker declared non-linear goes through the feature matrix. Both must
 * give the same lists (scores equal but for float rounding): this checks the fold and the
 * matrix path a learned ranker will take. */
static void test_ranker_matrix_path_same_lists(void **st)
{
    struct fx *f = *st;
    const struct reco_ranker *blend = reco_ranker_blend();
    assert_true(blend->linear);
    struct reco_ranker matrix = {"blend-matrix", blend->score, false};
    struct reco_config cfg = f->w.cfg;
    cfg.ranker = &matrix;
    struct reco *r2 = reco_new(&cfg, f->w.shards, RT_NSHARDS, f->w.cat);
    assert_non_null(r2);
    reco_refresh(r2);
    static const int users[] = {RT_USER_PERS, RT_USER_PREF, RT_USER_COLD, 0, 1, 2, 17, 46};
    int compared = 0;
    for (size_t u = 0; u < sizeof users / sizeof users[0]; u++) {
        char key[EVENT_KEY_HEX + 1];
        struct reco_request rq = rt_request(key, users[u], 20);
        assert_int_equal(reco_recommend(f->w.r, &rq, f->a), 0);
        assert_int_equal(reco_recommend(r2, &rq, f->b), 0);
        assert_int_equal(f->a->n, f->b->n);
        assert_string_equal(f->a->strategy, f->b->strategy);
        for (int i = 0; i < f->a->n; i++) {
            const struct reco_item *x = &f->a->items[i], *y = &f->b->items[i];
            assert_string_equal(x->item_id, y->item_id);
            assert_int_equal(x->source, y->source);
            assert_true(fabs(x->score - y->score) <= 1e-5 * fabs(y->score) + 1e-9);
            assert_int_equal(x->nreasons, y->nreasons);
            for (int k = 0; k < x->nreasons; k++)
                assert_string_equal(x->reasons[k], y->reasons[k]);
            compared++;
        }
    }
    assert_true(compared >= 100);
    reco_free(r2);
}

/* ---- experiments ----------------------------------------------------------------------------- */

static void test_experiment_variants(void **st)
{
    struct fx *f = *st;
    struct reco_result *res = f->a;
    const struct reco_experiment *x = &f->w.cfg.experiment;
    assert_int_equal(x->nvariants, 2);
    int seen[2] = {0, 0};
    for (int u = 0; u < 50 + 3; u++) {
        int user = u < 50 ? u : RT_USER_PERS + (u - 50);
        char key[EVENT_KEY_HEX + 1];
        rt_key(user, key);
        int vi = reco_assign_variant(x, key);
        assert_true(vi == 0 || vi == 1);
        seen[vi]++;
        recommend(&f->w, user, 10, res);
        const char *vname = x->variants[vi].name;
        char want[100];
        snprintf(want, sizeof want, "exp-1:%s", vname);
        assert_string_equal(res->variant, want);
        const char *pfx = !strcmp(res->strategy, "personalized")  ? "pers"
                          : !strcmp(res->strategy, "preferences") ? "pref"
                                                                  : "pop";
        check_rec_id(res->rec_id, pfx, vname);
        /* The no_collab variant's weights are in force: collab never explains an item. */
        for (int i = 0; vi == 1 && i < res->n; i++)
            assert_int_not_equal(res->items[i].source, RECO_SRC_COLLAB);
    }
    assert_true(seen[0] > 5 && seen[1] > 5);
}

/* ---- similar items --------------------------------------------------------------------------- */

struct nb_sum {
    int n;
    char id[64][EVENT_ITEM_MAX + 1];
};

/* An item's co-visited neighbours over every shard. */
static void covisited(struct rt_world *w, const char *item, struct nb_sum *out)
{
    out->n = 0;
    struct state_neighbour nb[64];
    for (int p = 0; p < RT_NSHARDS; p++) {
        int n = state_shard_neighbours(w->shards[p], item, strlen(item),
                                       state_shard_now(w->shards[p]), nb, 64);
        for (int i = 0; i < n; i++) {
            int k = 0;
            while (k < out->n && strcmp(out->id[k], nb[i].item_id) != 0)
                k++;
            if (k == out->n && out->n < 64)
                snprintf(out->id[out->n++], EVENT_ITEM_MAX + 1, "%.*s", EVENT_ITEM_MAX,
                         nb[i].item_id);
        }
    }
}

static int sim_find(const struct reco_item *items, int n, const char *id)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(items[i].item_id, id))
            return i;
    return -1;
}

static void test_similar_unknown(void **st)
{
    struct fx *f = *st;
    struct reco_item items[4];
    assert_int_equal(reco_similar(f->w.r, "nope", 4, 4, items), CORE_E_NOTFOUND);
    assert_int_equal(reco_similar(f->w.r, "c1-", 3, 4, items), CORE_E_NOTFOUND);
}

/* Every available co-visited neighbour is listed and a co-visited one leads; never the item
 * itself or an unavailable one; score order. */
static void test_similar_covisited(void **st)
{
    struct fx *f = *st;
    static struct reco_item items[40];
    static struct nb_sum nb;
    static const char *const seeds[] = {"c1-3", "c2-8", "c3-0", "c1-9"};
    for (int s = 0; s < 4; s++) {
        covisited(&f->w, seeds[s], &nb);
        assert_true(nb.n >= 1);
        int n = reco_similar(f->w.r, seeds[s], strlen(seeds[s]), 40, items);
        assert_true(n >= nb.n - 1 && n <= 40);
        assert_int_equal(sim_find(items, n, seeds[s]), -1);
        assert_int_equal(sim_find(items, n, "c1-9"), -1);
        for (int i = 0; i < nb.n; i++)
            if (available(f->w.cat, nb.id[i]) && sim_find(items, n, nb.id[i]) < 0)
                fail_msg("%s: co-visited %s not listed", seeds[s], nb.id[i]);
        assert_int_equal(items[0].source, RECO_SRC_COVISIT);
        assert_string_equal(items[0].reasons[0], "viewed together");
        bool is_nb = false;
        for (int i = 0; i < nb.n; i++)
            is_nb |= !strcmp(nb.id[i], items[0].item_id);
        assert_true(is_nb);
        for (int i = 1; i < n; i++)
            assert_true(items[i - 1].score > items[i].score ||
                        (items[i - 1].score == items[i].score &&
                         strcmp(items[i - 1].item_id, items[i].item_id) < 0));
        for (int i = 0; i < n; i++)
            assert_int_equal(items[i].nreasons, 1);
    }
    /* c2-8's only co-visited item is c3-8 (users 45..49): it leads; count is honoured. */
    int n = reco_similar(f->w.r, "c2-8", 4, 5, items);
    assert_int_equal(n, 5);
    assert_string_equal(items[0].item_id, "c3-8");
}

/* A catalog item nobody touched still has content neighbours: items sharing its category or
 * tags, the one that also shares the rare tag first. */
static void test_similar_content_only(void **st)
{
    struct fx *f = *st;
    struct reco_item items[40];
    int n = reco_similar(f->w.r, "new-1", 5, 40, items);
    assert_true(n >= 5);
    assert_string_equal(items[0].item_id, "c3-3");
    assert_true(items[0].score > items[1].score);
    for (int i = 0; i < n; i++) {
        char c[32];
        rt_category_of(f->w.cat, items[i].item_id, c, sizeof c);
        assert_string_equal(c, "c3");
        assert_int_equal(items[i].source, RECO_SRC_CONTENT);
        assert_string_equal(items[i].reasons[0], "similar categories and tags");
    }
}

#define T(fn, setup) cmocka_unit_test_setup_teardown(fn, setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_personalized, setup_default),
        T(test_reason_long_title, setup_default),
        T(test_rank_beyond_the_first_few, setup_default),
        T(test_preferences_user, setup_default),
        T(test_preferences_unseen_items, setup_default),
        T(test_cold_user, setup_default),
        T(test_invalid_request, setup_default),
        T(test_consumed_items_excluded, setup_default),
        T(test_explicit_excludes, setup_default),
        T(test_category_filter, setup_default),
        T(test_category_filter_every_category, setup_default),
        T(test_unavailable_never_returned, setup_default),
        T(test_catalog_slot_reused_after_build, setup_small_catalog),
        T(test_diversity_cap_explicit, setup_cap3),
        T(test_diversity_cap_default, setup_no_exploration),
        T(test_diversity_cap_with_exploration_slot, setup_default),
        T(test_deterministic_and_sorted, setup_big_cap),
        T(test_deterministic_default_rules, setup_default),
        T(test_ranker_matrix_path_same_lists, setup_default),
        T(test_experiment_variants, setup_experiment),
        T(test_similar_unknown, setup_default),
        T(test_similar_covisited, setup_default),
        T(test_similar_content_only, setup_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
