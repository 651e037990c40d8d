/*
 * Tests of what the state keeps for the recommender (state_reco.c; they live here with the
 * other recommender tests): attribution counters by recId prefix, context popularity, the
 * user read (category affinities joined from the catalog, stated preferences, recent and
 * session items), and snapshot/restore of all of it.
 */
#include "reco_test_util.h"

#include <math.h>

#define T0 RT_T0
#define MIN RT_MIN
#define HOUR RT_HOUR

static struct state_shard *new_shard(struct catalog *cat)
{
    struct state_config cfg;
    state_config_init(&cfg);
    cfg.catalog = cat;
    return state_shard_new(&cfg, 0);
}

static void apply(struct state_shard *s, const struct event *ev)
{
    state_shard_apply(s, ev, state_shard_next_offset(s));
}

/* An event of user number u on item, with recId (may be NULL). */
static void apply_rec(struct state_shard *s, int u, const char *item, int type, int64_t ts,
                      const char *rec)
{
    char key[EVENT_KEY_HEX + 1];
    rt_key(u, key);
    struct event ev = rt_event(key, item, type, ts);
    if (rec)
        rt_str(&ev.rec_id, rec);
    apply(s, &ev);
}

static void dump(struct state_shard *s, struct core_buf *b)
{
    core_buf_reset(b);
    state_shard_dump(s, b);
}

/* ---- attribution --------------------------------------------------------------------------- */

#define PERS "pers.default.0123456789abcdef"
#define PERS2 "pers.default.fedcba9876543210"
#define POP "pop.exp-b.00000000000000aa"

static const struct state_ctr_row *row_of(const struct state_ctr_row *rows, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(rows[i].key, key))
            return &rows[i];
    fail_msg("no counter row '%s'", key);
    return NULL;
}

static void expect_row(const struct state_ctr_row *rows, int n, const char *key, int64_t imp,
                       int64_t clicks, int64_t carts, int64_t purchases)
{
    const struct state_ctr_row *r = row_of(rows, n, key);
    if (r->impressions != imp || r->clicks != clicks || r->carts != carts ||
        r->purchases != purchases)
        fail_msg("%s: got [%lld %lld %lld %lld], want [%lld %lld %lld %lld]", key,
                 (long long)r->impressions, (long long)r->clicks, (long long)r->carts,
                 (long long)r->purchases, (long long)imp, (long long)clicks, (long long)carts,
                 (long long)purchases);
}

static int ctr(struct state_shard *s, int window, struct state_ctr_row *rows)
{
    memset(rows, 0, 8 * sizeof *rows);
    return state_shard_ctr(s, window, rows, 0, 8);
}

static void test_ctr_by_prefix_and_window(void **st)
{
    (void)st;
    struct state_shard *s = new_shard(NULL);
    struct state_ctr_row rows[8];
    assert_int_equal(ctr(s, -1, rows), 0);

    for (int i = 0; i < 4; i++)
        apply_rec(s, 1, "a", EVENT_IMPRESSION, T0 + i, PERS);
    apply_rec(s, 1, "a", EVENT_CLICK, T0 + 10, PERS);
    apply_rec(s, 1, "b", EVENT_CLICK, T0 + 11, PERS2); /* same prefix, other list */
    apply_rec(s, 1, "a", EVENT_ADD_TO_CART, T0 + 12, PERS);
    apply_rec(s, 1, "a", EVENT_PURCHASE, T0 + 13, PERS);
    apply_rec(s, 2, "c", EVENT_IMPRESSION, T0 + 14, POP);
    apply_rec(s, 2, "c", EVENT_IMPRESSION, T0 + 15, POP);
    apply_rec(s, 2, "c", EVENT_CLICK, T0 + 16, POP);
    apply_rec(s, 2, "c", EVENT_VIEW, T0 + 17, POP);   /* views are not attributed */
    apply_rec(s, 2, "c", EVENT_CLICK, T0 + 18, NULL); /* no recId */
    apply_rec(s, 2, "d", EVENT_CLICK, T0 + 19, "r1"); /* no prefix */

    for (int w = -1; w <= STATE_W_24H; w += (w == -1 ? 2 : 1)) {
        int n = ctr(s, w, rows);
        assert_int_equal(n, 3);
        expect_row(rows, n, "pers.default", 4, 2, 1, 1);
        expect_row(rows, n, "pop.exp-b", 2, 1, 0, 0);
        expect_row(rows, n, "unknown", 0, 1, 0, 0);
    }

    /* Two hours on: the 1 h window holds only the new events. */
    apply_rec(s, 1, "a", EVENT_IMPRESSION, T0 + 2 * HOUR, PERS);
    int n = ctr(s, STATE_W_1H, rows);
    expect_row(rows, n, "pers.default", 1, 0, 0, 0);
    expect_row(rows, n, "pop.exp-b", 0, 0, 0, 0);
    n = ctr(s, STATE_W_24H, rows);
    expect_row(rows, n, "pers.default", 5, 2, 1, 1);
    expect_row(rows, n, "pop.exp-b", 2, 1, 0, 0);
    /* 25.5 h on: the 24 h window has dropped T0's events but keeps T0 + 2 h. */
    apply_rec(s, 1, "a", EVENT_CLICK, T0 + 25 * HOUR + 30 * MIN, PERS);
    n = ctr(s, STATE_W_24H, rows);
    expect_row(rows, n, "pers.default", 1, 1, 0, 0);
    expect_row(rows, n, "pop.exp-b", 0, 0, 0, 0);
    n = ctr(s, STATE_W_1H, rows);
    expect_row(rows, n, "pers.default", 0, 1, 0, 0);
    n = ctr(s, -1, rows);
    expect_row(rows, n, "pers.default", 5, 3, 1, 1);
    expect_row(rows, n, "pop.exp-b", 2, 1, 0, 0);
    expect_row(rows, n, "unknown", 0, 1, 0, 0);

    /* Rows are added into (a reader sums over shards) and bounded by max. */
    struct state_shard *s2 = new_shard(NULL);
    apply_rec(s2, 3, "a", EVENT_IMPRESSION, T0, PERS);
    apply_rec(s2, 3, "a", EVENT_CLICK, T0 + 1, "pref.v2.0000000000000001");
    n = ctr(s, -1, rows);
    n = state_shard_ctr(s2, -1, rows, n, 8);
    assert_int_equal(n, 4);
    expect_row(rows, n, "pers.default", 6, 3, 1, 1);
    expect_row(rows, n, "pref.v2", 0, 1, 0, 0);
    memset(rows, 0, sizeof rows);
    assert_int_equal(state_shard_ctr(s, -1, rows, 0, 2), 2);
    state_shard_free(s2);
    state_shard_free(s);
}

/* At most 256 prefixes per shard; the rest are counted together as "other". */
static void test_ctr_prefixes_bounded(void **st)
{
    (void)st;
    struct state_shard *s = new_shard(NULL);
    char rec[64];
    for (int i = 0; i < 300; i++) {
        snprintf(rec, sizeof rec, "pers.v%d.0123456789abcdef", i);
        apply_rec(s, 1, "a", EVENT_CLICK, T0 + i, rec);
    }
    apply_rec(s, 1, "a", EVENT_CLICK, T0 + 300, "pers.v0.0000000000000000"); /* known */
    struct state_ctr_row *rows = calloc(400, sizeof *rows);
    int n = state_shard_ctr(s, -1, rows, 0, 400);
    assert_int_equal(n, 257);
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        total += rows[i].clicks;
    assert_int_equal(total, 301);
    expect_row(rows, n, "other", 0, 44, 0, 0);
    expect_row(rows, n, "pers.v0", 0, 2, 0, 0);
    /* ... and survive a snapshot. */
    struct core_buf snap, da, db;
    core_buf_init(&snap);
    core_buf_init(&da);
    core_buf_init(&db);
    state_shard_snapshot(s, &snap);
    struct state_shard *r = new_shard(NULL);
    assert_int_equal(state_shard_restore(r, snap.data, snap.len), 0);
    dump(s, &da);
    dump(r, &db);
    assert_int_equal(da.len, db.len);
    assert_memory_equal(da.data, db.data, da.len);
    core_buf_dispose(&snap);
    core_buf_dispose(&da);
    core_buf_dispose(&db);
    free(rows);
    state_shard_free(r);
    state_shard_free(s);
}

/* ---- context popularity ------------------------------------------------------------------ */

struct collected {
    int n;
    char id[16][EVENT_ITEM_MAX + 1];
    double score[16];
};

static void collect(void *arg, const char *id, size_t len, double score)
{
    struct collected *c = arg;
    assert_true(c->n < 16);
    snprintf(c->id[c->n], EVENT_ITEM_MAX + 1, "%.*s", (int)len, id);
    c->score[c->n++] = score;
}

static double score_of(const struct collected *c, const char *id)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->id[i], id))
            return c->score[i];
    return -1;
}

static int context(struct state_shard *s, const char *key, int64_t as_of, struct collected *c)
{
    c->n = 0;
    int n = state_shard_context_each(s, key, strlen(key), as_of, collect, c);
    assert_int_equal(n, c->n);
    return n;
}

static void ctx_event(struct state_shard *s, int u, const char *item, int type, int64_t ts,
                      const char *ctx)
{
    char key[EVENT_KEY_HEX + 1];
    rt_key(u, key);
    struct event ev = rt_event(key, item, type, ts);
    if (ctx)
        rt_str(&ev.context_json, ctx);
    apply(s, &ev);
}

static void test_context_popularity(void **st)
{
    (void)st;
    struct state_shard *s = new_shard(NULL);
    struct collected c;
    assert_int_equal(context(s, "device:mobile", T0, &c), 0);
    const char *mobile = "{\"device\":\"mobile\"}";
    ctx_event(s, 1, "x", EVENT_VIEW, T0, mobile);  /* 1 */
    ctx_event(s, 2, "x", EVENT_CLICK, T0, mobile); /* 2 */
    ctx_event(s, 1, "y", EVENT_VIEW, T0, "{\"device\":\"mobile\",\"locale\":\"de-DE\"}");
    ctx_event(s, 3, "z", EVENT_VIEW, T0, "{\"device\":\"desktop\"}");
    ctx_event(s, 3, "w", EVENT_IMPRESSION, T0, mobile); /* weight 0: not popularity */
    ctx_event(s, 3, "v", EVENT_VIEW, T0, NULL);

    assert_int_equal(context(s, "device:mobile", T0, &c), 2);
    assert_true(fabs(score_of(&c, "x") - 3.0) < 1e-12);
    assert_true(fabs(score_of(&c, "y") - 1.0) < 1e-12);
    assert_true(score_of(&c, "z") < 0 && score_of(&c, "w") < 0 && score_of(&c, "v") < 0);
    assert_int_equal(context(s, "device:desktop", T0, &c), 1);
    assert_string_equal(c.id[0], "z");
    assert_int_equal(context(s, "locale:de-DE", T0, &c), 1);
    assert_string_equal(c.id[0], "y");
    assert_int_equal(context(s, "device:tablet", T0, &c), 0);
    assert_int_equal(context(s, "device:mobil", T0, &c), 0);
    /* Every positive event counts for its UTC hour. */
    char hour[16];
    snprintf(hour, sizeof hour, "hour:%02d", (int)((T0 / HOUR) % 24));
    assert_int_equal(context(s, hour, T0, &c), 4);
    assert_true(fabs(score_of(&c, "x") - 3.0) < 1e-12);
    assert_true(score_of(&c, "v") > 0);
    /* Scores decay to the reading time (half-life 24 h). */
    assert_int_equal(context(s, "device:mobile", T0 + 24 * HOUR, &c), 2);
    assert_true(fabs(score_of(&c, "x") - 1.5) < 1e-12);
    state_shard_free(s);
}

/* Lines of a dump starting with prefix (no strstr: under ASan it rescans the whole rest). */
static int lines_starting(const char *text, const char *prefix)
{
    int n = 0;
    size_t plen = strlen(prefix);
    for (const char *p = text; *p;) {
        n += strncmp(p, prefix, plen) == 0;
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    return n;
}

/*
 * Context keys come from client input (any device or locale string up to 63 bytes), so
 * their number must be bounded, as the recId prefixes are (ST_CTR_KEYS_MAX) and as the
 * house rules require of anything external input can grow. state_reco.c (context_add ->
 * st__ctx_add) creates a pseudo-item (a full struct st_item, ~1 KB with its window
 * counters) for every new key and never expires or evicts one: neither max_items nor the
 * item TTL applies to them, so memory and snapshots grow with every distinct value.
 */
static void test_context_keys_bounded(void **st)
{
    (void)st;
    struct state_shard *s = new_shard(NULL);
    enum { N = 20000 };
    char ctx[64];
    for (int i = 0; i < N; i++) {
        snprintf(ctx, sizeof ctx, "{\"device\":\"dev-%d\"}", i);
        ctx_event(s, i % 50, "x", EVENT_VIEW, T0 + i * 1000, ctx);
    }
    struct core_buf b;
    core_buf_init(&b);
    dump(s, &b);
    int contexts = lines_starting(b.data, "context \"device:");
    core_buf_dispose(&b);
    state_shard_free(s);
    if (contexts > N / 2)
        fail_msg("%d distinct device values kept %d context keys: unbounded", N, contexts);
}

/* ---- the user read ----------------------------------------------------------------------- */

static struct catalog *small_catalog(void)
{
    struct catalog *cat = rt_catalog_new();
    rt_put(cat, "a", "{\"title\":\"A\",\"categories\":[\"c1\"]}");
    rt_put(cat, "b", "{\"title\":\"B\",\"categories\":[\"c1\",\"c2\"]}");
    rt_put(cat, "c", "{\"title\":\"C\",\"categories\":[\"c3\"],\"tags\":[\"t\"]}");
    rt_put(cat, "d", "{\"title\":\"D\"}");
    return cat;
}

static void prefs_event(struct state_shard *s, int u, int64_t ts, const char *props)
{
    char key[EVENT_KEY_HEX + 1];
    rt_key(u, key);
    struct event ev = rt_event(key, NULL, EVENT_PREFERENCES, ts);
    if (props)
        rt_str(&ev.properties_json, props);
    apply(s, &ev);
}

/* User 1: a (c1), b (c1 + c2), d (no category), then c (c3) in a new session, then stated
 * preferences; context on a and c. */
static void user_events(struct state_shard *s)
{
    ctx_event(s, 1, "a", EVENT_VIEW, T0, "{\"device\":\"mobile\"}");
    apply_rec(s, 1, "b", EVENT_CLICK, T0 + MIN, PERS);
    apply_rec(s, 1, "d", EVENT_VIEW, T0 + 2 * MIN, NULL);
    apply_rec(s, 1, "a", EVENT_IMPRESSION, T0 + 3 * MIN, PERS);
    apply_rec(s, 1, "a", EVENT_REMOVE_FROM_CART, T0 + 4 * MIN, NULL); /* negative: no join */
    ctx_event(s, 1, "c", EVENT_PURCHASE, T0 + 40 * MIN, "{\"locale\":\"fr-FR\"}");
    prefs_event(s, 1, T0 + 41 * MIN, "{\"categories\":[\"c2\",\"c3\"]}");
}

static double decayed(double v, int64_t from, int64_t to)
{
    return v * exp2(-(double)(to - from) / (double)(24 * HOUR));
}

static void test_user_read(void **st)
{
    (void)st;
    struct catalog *cat = small_catalog();
    struct state_shard *s = new_shard(cat);
    struct state_user_read *u = malloc(sizeof *u);
    char key[EVENT_KEY_HEX + 1];
    rt_key(1, key);
    state_shard_user_read(s, key, u);
    assert_false(u->found);
    user_events(s);
    state_shard_user_read(s, key, u);
    assert_true(u->found);
    assert_int_equal(u->events, 7);
    assert_int_equal(u->first_ms, T0);
    assert_int_equal(u->last_ms, T0 + 41 * MIN);
    assert_int_equal(u->now_ms, T0 + 41 * MIN);
    /* Recent: item events except impressions, newest last. */
    static const char *const rec[] = {"a", "b", "d", "a", "c"};
    static const int types[] = {EVENT_VIEW, EVENT_CLICK, EVENT_VIEW, EVENT_REMOVE_FROM_CART,
                                EVENT_PURCHASE};
    assert_int_equal(u->nrecent, 5);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(u->recent[i].item_id, rec[i]);
        assert_int_equal(u->recent[i].type, types[i]);
    }
    assert_true(u->recent[1].weight == 2 && u->recent[3].weight == -1);
    assert_int_equal(u->recent[4].ts, T0 + 40 * MIN);
    /* Session: the 40 min gap started a new one holding c only. */
    assert_int_equal(u->nsession, 1);
    assert_string_equal(u->session[0].item_id, "c");
    /* Category affinities from the catalog, strongest first, decayed to now:
     * c3 = 6 (purchase), c1 = 1 (view a) + 1 (half of b's click), c2 = 1. */
    int64_t now = T0 + 41 * MIN;
    assert_int_equal(u->ncats, 3);
    assert_string_equal(u->cats[0].name, "c3");
    assert_string_equal(u->cats[1].name, "c1");
    assert_string_equal(u->cats[2].name, "c2");
    assert_true(fabs(u->cats[0].v - decayed(6, T0 + 40 * MIN, now)) < 1e-9);
    assert_true(fabs(u->cats[1].v - (decayed(1, T0, now) + decayed(1, T0 + MIN, now))) < 1e-9);
    assert_true(fabs(u->cats[2].v - decayed(1, T0 + MIN, now)) < 1e-9);
    /* Stated preferences in the given order. */
    assert_int_equal(u->nprefs, 2);
    assert_string_equal(u->prefs[0], "c2");
    assert_string_equal(u->prefs[1], "c3");

    /* The latest preferences event replaces them; one without a categories array does not;
     * entries that are not non-empty strings are skipped. */
    prefs_event(s, 1, T0 + 42 * MIN, "{\"categories\":[\"c1\",7,\"\",\"c9\"]}");
    state_shard_user_read(s, key, u);
    assert_int_equal(u->nprefs, 2);
    assert_string_equal(u->prefs[0], "c1");
    assert_string_equal(u->prefs[1], "c9");
    prefs_event(s, 1, T0 + 43 * MIN, "{\"other\":true}");
    prefs_event(s, 1, T0 + 44 * MIN, NULL);
    state_shard_user_read(s, key, u);
    assert_int_equal(u->nprefs, 2);
    prefs_event(s, 1, T0 + 45 * MIN, "{\"categories\":[]}");
    state_shard_user_read(s, key, u);
    assert_int_equal(u->nprefs, 0);

    /* A user with only preferences: found, no items, no affinities. */
    prefs_event(s, 2, T0 + 46 * MIN, "{\"categories\":[\"c3\"]}");
    rt_key(2, key);
    state_shard_user_read(s, key, u);
    assert_true(u->found);
    assert_int_equal(u->nrecent, 0);
    assert_int_equal(u->nsession, 0);
    assert_int_equal(u->ncats, 0);
    assert_int_equal(u->nprefs, 1);
    assert_string_equal(u->prefs[0], "c3");
    free(u);
    state_shard_free(s);
    catalog_close(cat);
}

/* Without a catalog there is nothing to join: no category affinities. */
static void test_user_read_without_catalog(void **st)
{
    (void)st;
    struct state_shard *s = new_shard(NULL);
    user_events(s);
    struct state_user_read *u = malloc(sizeof *u);
    char key[EVENT_KEY_HEX + 1];
    rt_key(1, key);
    state_shard_user_read(s, key, u);
    assert_true(u->found);
    assert_int_equal(u->ncats, 0);
    assert_int_equal(u->nrecent, 5);
    assert_int_equal(u->nprefs, 2);
    free(u);
    state_shard_free(s);
}

/* ---- snapshot ------------------------------------------------------------------------------ */

static void test_snapshot_restore(void **st)
{
    (void)st;
    struct catalog *cat = small_catalog();
    struct state_shard *a = new_shard(cat);
    user_events(a);
    apply_rec(a, 2, "c", EVENT_IMPRESSION, T0 + 50 * MIN, POP);
    apply_rec(a, 2, "c", EVENT_CLICK, T0 + 51 * MIN, POP);
    ctx_event(a, 3, "b", EVENT_ADD_TO_CART, T0 + 52 * MIN, "{\"device\":\"tablet\"}");
    prefs_event(a, 3, T0 + 53 * MIN, "{\"categories\":[\"c2\"]}");

    struct core_buf da, db, snap, snap2;
    core_buf_init(&da);
    core_buf_init(&db);
    core_buf_init(&snap);
    core_buf_init(&snap2);
    dump(a, &da);
    /* The dump shows all of it, so equal dumps mean equal state. */
    assert_non_null(strstr(da.data, "ctr \"pers.default\""));
    assert_non_null(strstr(da.data, "ctr \"pop.exp-b\""));
    assert_non_null(strstr(da.data, "context \"device:mobile\""));
    assert_non_null(strstr(da.data, "context \"device:tablet\""));
    assert_non_null(strstr(da.data, "context \"locale:fr-FR\""));
    assert_non_null(strstr(da.data, "category \"c3\""));
    assert_non_null(strstr(da.data, "pref \"c2\""));

    state_shard_snapshot(a, &snap);
    struct state_shard *b = new_shard(cat);
    apply_rec(b, 9, "zz", EVENT_CLICK, T0, "pers.other.0000000000000000"); /* replaced */
    assert_int_equal(state_shard_restore(b, snap.data, snap.len), 0);
    dump(b, &db);
    assert_int_equal(da.len, db.len);
    assert_memory_equal(da.data, db.data, da.len);
    state_shard_snapshot(b, &snap2);
    assert_int_equal(snap.len, snap2.len);
    assert_memory_equal(snap.data, snap2.data, snap.len);

    /* The reads agree too. */
    struct state_ctr_row ra[8], rb[8];
    int na = ctr(a, -1, ra), nb = ctr(b, -1, rb);
    assert_int_equal(na, nb);
    for (int i = 0; i < na; i++) {
        const struct state_ctr_row *r = row_of(rb, nb, ra[i].key);
        assert_memory_equal(r, &ra[i], sizeof *r);
    }
    assert_int_equal(state_shard_ctr(b, -1, rb, 0, 8), 2);
    struct collected ca, cb;
    assert_int_equal(context(a, "device:tablet", T0 + HOUR, &ca), 1);
    assert_int_equal(context(b, "device:tablet", T0 + HOUR, &cb), 1);
    assert_true(ca.score[0] == cb.score[0]);
    struct state_user_read *ua = malloc(sizeof *ua), *ub = malloc(sizeof *ub);
    char key[EVENT_KEY_HEX + 1];
    rt_key(1, key);
    state_shard_user_read(a, key, ua);
    state_shard_user_read(b, key, ub);
    assert_int_equal(ua->ncats, ub->ncats);
    for (int i = 0; i < ua->ncats; i++) {
        assert_string_equal(ua->cats[i].name, ub->cats[i].name);
        assert_true(ua->cats[i].v == ub->cats[i].v);
    }
    assert_int_equal(ua->nprefs, ub->nprefs);
    assert_string_equal(ub->prefs[0], "c2");
    assert_int_equal(ua->nsession, ub->nsession);
    free(ua);
    free(ub);

    /* Continuing both with the same events keeps them equal. */
    struct state_shard *both[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        apply_rec(both[k], 1, "a", EVENT_CLICK, T0 + 2 * HOUR, PERS);
        ctx_event(both[k], 3, "c", EVENT_VIEW, T0 + 2 * HOUR, "{\"device\":\"tablet\"}");
        prefs_event(both[k], 2, T0 + 2 * HOUR, "{\"categories\":[\"c1\"]}");
    }
    dump(a, &da);
    dump(b, &db);
    assert_int_equal(da.len, db.len);
    assert_memory_equal(da.data, db.data, da.len);

    state_shard_free(a);
    state_shard_free(b);
    core_buf_dispose(&da);
    core_buf_dispose(&db);
    core_buf_dispose(&snap);
    core_buf_dispose(&snap2);
    catalog_close(cat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctr_by_prefix_and_window),
        cmocka_unit_test(test_ctr_prefixes_bounded),
        cmocka_unit_test(test_context_popularity),
        cmocka_unit_test(test_context_keys_bounded),
        cmocka_unit_test(test_user_read),
        cmocka_unit_test(test_user_read_without_catalog),
        cmocka_unit_test(test_snapshot_restore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
