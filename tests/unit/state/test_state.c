/* Tests of keyed state: users, items, windows, decay, co-visitation, lateness, TTL, bounds. */
#include "state_test_util.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#define T0 ((int64_t)1700000000000) /* a multiple of 1 h */
#define MIN ((int64_t)60000)
#define HOUR (60 * MIN)

static struct state_shard *new_shard(void (*tweak)(struct state_config *))
{
    struct state_config cfg;
    state_config_init(&cfg);
    if (tweak)
        tweak(&cfg);
    return state_shard_new(&cfg, 0);
}

static void apply(struct state_shard *s, struct event ev)
{
    state_shard_apply(s, &ev, state_shard_next_offset(s));
}

static struct state_item_view view_of(struct state_shard *s, const char *item)
{
    struct state_item_view v;
    memset(&v, 0, sizeof v);
    state_shard_item_view(s, item, strlen(item), &v);
    return v;
}

static void test_user_profile(void **st)
{
    (void)st;
    struct state_shard *s = new_shard(NULL);
    apply(s, tu_event("a1", "i1", EVENT_VIEW, T0));
    apply(s, tu_event("a1", "i2", EVENT_CLICK, T0 + 1000));
    struct event ev = tu_event("a1", "i2", EVENT_DWELL, T0 + 2000);
    ev.has_value = true;
    ev.value = 1500;
    apply(s, ev);
    ev = tu_event("a1", NULL, EVENT_SCROLL, T0 + 3000);
    ev.has_value = true;
    ev.value = 0.75;
    apply(s, ev);
    apply(s, tu_event("a1", "i3", EVENT_PURCHASE, T0 + 40 * MIN)); /* new session (gap) */

    char key[EVENT_KEY_HEX + 1];
    tu_key("a1", key);
    struct core_buf b;
    core_buf_init(&b);
    assert_int_equal(state_shard_user_json(s, key, &b), 0);
    assert_non_null(strstr(b.data, "\"events\":5,\"firstSeen\":1700000000000"));
    assert_non_null(strstr(b.data, "\"recent\":[{\"itemId\":\"i3\",\"eventType\":\"purchase\","
                                   "\"weight\":6,\"timestamp\":1700002400000}"));
    assert_non_null(strstr(b.data, "\"start\":1700002400000,\"last\":1700002400000,"
                                   "\"count\":1,\"items\":[\"i3\"]"));
    assert_non_null(strstr(b.data, "\"1h\":{\"clicks\":1,\"views\":1,\"dwellMs\":1500,"
                                   "\"maxScrollDepth\":0.75}"));
    assert_non_null(strstr(b.data, "\"affinities\":{\"click\":"));
    core_buf_reset(&b);
    assert_int_equal(state_shard_user_json(s, "nobody", &b), CORE_E_NOTFOUND);

    /* Explicit session ids win over the gap rule. */
    ev = tu_event("a1", "i4", EVENT_VIEW, T0 + 41 * MIN);
    ev.session_id.ptr = "s-9";
    ev.session_id.len = 3;
    apply(s, ev);
    core_buf_reset(&b);
    assert_int_equal(state_shard_user_json(s, key, &b), 0);
    assert_non_null(strstr(b.data, "\"sessionId\":\"s-9\",\"start\":1700002460000"));
    core_buf_dispose(&b);
    state_shard_free(s);
}

static void test_recent_bounded(void **st)
{
    (void)st;
    struct state_shard *s = new_shard(NULL);
    static char ids[60][8];
    for (int i = 0; i < 60; i++) {
        snprintf(ids[i], sizeof ids[i], "it%d", i);
        apply(s, tu_event("b", ids[i], EVENT_VIEW, T0 + i * 1000));
    }
    char key[EVENT_KEY_HEX + 1];
    tu_key("b", key);
    struct core_buf b;
    core_buf_init(&b);
    assert_int_equal(state_shard_user_json(s, key, &b), 0);
    assert_non_null(strstr(b.data, "\"itemId\":\"it10\""));
    assert_null(strstr(b.data, "\"itemId\":\"it9\""));
    core_buf_dispose(&b);
    state_shard_free(s);
}

static void test_item_windows_roll(void **st)
{
    (void)st;
    struct state_shard *s = new_shard(NULL);
    apply(s, tu_event("u", "x", EVENT_VIEW, T0));
    apply(s, tu_event("u", "x", EVENT_CLICK, T0 + 1000));
    apply(s, tu_event("u", "x", EVENT_ADD_TO_CART, T0 + 2000));
    struct state_item_view v = view_of(s, "x");
    assert_true(v.found);
    for (int w = 0; w < STATE_W__COUNT; w++) {
        assert_int_equal(v.counts[w][STATE_G_VIEW], 1);
        assert_int_equal(v.counts[w][STATE_G_CLICK], 1);
        assert_int_equal(v.counts[w][STATE_G_CART], 1);
    }
    /* Time moves on through another item: the 1 min window empties, then the 1 h one. */
    apply(s, tu_event("u", "y", EVENT_VIEW, T0 + 2 * MIN));
    v = view_of(s, "x");
    assert_int_equal(v.counts[STATE_W_1M][STATE_G_VIEW], 0);
    assert_int_equal(v.counts[STATE_W_1H][STATE_G_VIEW], 1);
    apply(s, tu_event("u", "x", EVENT_VIEW, T0 + 30 * MIN));
    v = view_of(s, "x");
    assert_int_equal(v.counts[STATE_W_1H][STATE_G_VIEW], 2);
    apply(s, tu_event("u", "y", EVENT_VIEW, T0 + 80 * MIN));
    v = view_of(s, "x");
    assert_int_equal(v.counts[STATE_W_1H][STATE_G_VIEW], 1); /* T0's bucket left */
    assert_int_equal(v.counts[STATE_W_24H][STATE_G_VIEW], 2);
    apply(s, tu_event("u", "y", EVENT_VIEW, T0 + 25 * HOUR));
    v = view_of(s, "x");
    assert_int_equal(v.counts[STATE_W_24H][STATE_G_VIEW], 0);
    assert_int_equal(v.counts[STATE_W_24H][STATE_G_CLICK], 0);
    assert_true(v.found);

    struct state_neighbour top[4];
    assert_int_equal(state_shard_top_items(s, STATE_W_24H, -1, top, 4), 1);
    assert_string_equal(top[0].item_id, "y");
    assert_true(top[0].score == 1.0);
    apply(s, tu_event("u", "x", EVENT_CLICK, T0 + 25 * HOUR));
    apply(s, tu_event("u", "x", EVENT_CLICK, T0 + 25 * HOUR));
    assert_int_equal(state_shard_top_items(s, STATE_W_1H, -1, top, 4), 2);
    assert_string_equal(top[0].item_id, "x");
    assert_int_equal(state_shard_top_items(s, STATE_W_1H, STATE_G_VIEW, top, 1), 1);
    assert_string_equal(top[0].item_id, "y");
    state_shard_free(s);
}

static void test_popularity_decay(void **st)
{
    (void)st;
    struct state_shard *s = new_shard(NULL);
    apply(s, tu_event("u", "p", EVENT_CLICK, T0)); /* weight 2 */
    struct state_item_view v = view_of(s, "p");
    assert_true(v.popularity == 2.0);
    apply(s, tu_event("u2", "q", EVENT_VIEW, T0 + 24 * HOUR));
    v = view_of(s, "p");
    assert_true(fabs(v.popularity - 1.0) < 1e-12);
    apply(s, tu_event("u2", "q", EVENT_VIEW, T0 + 48 * HOUR));
    v = view_of(s, "p");
    assert_true(fabs(v.popularity - 0.5) < 1e-12);
    /* Reads add into the view (summing over shards). */
    state_shard_item_view(s, "p", 1, &v);
    assert_true(fabs(v.popularity - 1.0) < 1e-12);
    state_shard_free(s);
}

static void test_ctr_attribution(void **st)
{
    (void)st;
    struct state_shard *s = new_shard(NULL);
    for (int i = 0; i < 4; i++)
        apply(s, tu_event("u", "c", EVENT_IMPRESSION, T0 + i));
    struct event ev = tu_event("u", "c", EVENT_CLICK, T0 + 10);
    ev.rec_id.ptr = "r1";
    ev.rec_id.len = 2;
    apply(s, ev);
    apply(s, tu_event("u", "c", EVENT_CLICK, T0 + 11)); /* no recId: not attributed */
    struct state_item_view v = view_of(s, "c");
    assert_int_equal(v.impressions, 4);
    assert_int_equal(v.clicks, 1);
    assert_int_equal(v.last_seen_ms, T0 + 11);
    state_shard_free(s);
}

static void small_nb(struct state_config *c)
{
    c->neighbours_max = 3;
}

static void test_covisitation(void **st)
{
    (void)st;
    struct state_shard *s = new_shard(small_nb);
    apply(s, tu_event("u", "A", EVENT_VIEW, T0));
    apply(s, tu_event("u", "B", EVENT_VIEW, T0));                 /* gap 0: 1.0 */
    apply(s, tu_event("u", "C", EVENT_CLICK, T0 + 1 * MIN));      /* to A: 2/(1+1) = 1 */
    apply(s, tu_event("u", "X", EVENT_IMPRESSION, T0 + 1 * MIN)); /* weight 0: no pairs */
    struct state_neighbour nb[8];
    int n = state_shard_neighbours(s, "A", 1, T0 + MIN, nb, 8);
    assert_int_equal(n, 2);
    assert_string_equal(nb[0].item_id, "C");
    assert_true(fabs(nb[0].score - 1.0) < 1e-12);
    assert_string_equal(nb[1].item_id, "B"); /* 1.0 at T0, decayed by one minute */
    assert_true(fabs(nb[1].score - exp2(-1.0 / (24 * 60))) < 1e-12);
    n = state_shard_neighbours(s, "C", 1, T0 + MIN, nb, 8);
    assert_int_equal(n, 2);
    assert_string_equal(nb[0].item_id, "A"); /* A and B both 2/(1+1) = 1: id order */
    n = state_shard_neighbours(s, "X", 1, T0 + MIN, nb, 8);
    assert_int_equal(n, 0);

    /* Bounded: A keeps its 3 best neighbours. */
    apply(s, tu_event("u", "D", EVENT_PURCHASE, T0 + 2 * MIN));
    apply(s, tu_event("u", "E", EVENT_VIEW, T0 + 20 * MIN));
    n = state_shard_neighbours(s, "A", 1, T0 + 20 * MIN, nb, 8);
    assert_int_equal(n, 3);
    assert_string_equal(nb[0].item_id, "D"); /* 6/(1+2) = 2 */
    struct state_stats stats;
    state_shard_stats(s, &stats);
    assert_true(stats.pairs > 0);
    state_shard_free(s);
}

static void test_late_events(void **st)
{
    (void)st;
    struct state_shard *s = new_shard(NULL);
    assert_true(state_shard_watermark(s) == INT64_MIN);
    apply(s, tu_event("u", "L", EVENT_VIEW, T0 + HOUR));
    assert_true(state_shard_watermark(s) == T0 + HOUR - 5000);
    apply(s, tu_event("u", "L", EVENT_VIEW, T0 + HOUR - 4000)); /* within allowed lateness */
    apply(s, tu_event("u", "L", EVENT_VIEW, T0));               /* late */
    struct state_stats stats;
    state_shard_stats(s, &stats);
    assert_int_equal(stats.late, 1);
    assert_int_equal(stats.events, 3);
    struct state_item_view v = view_of(s, "L");
    assert_int_equal(v.counts[STATE_W_1M][STATE_G_VIEW], 2);
    assert_int_equal(v.counts[STATE_W_1H][STATE_G_VIEW], 2); /* T0 window closed */
    assert_int_equal(v.counts[STATE_W_24H][STATE_G_VIEW], 3);
    assert_true(v.popularity > 2.9); /* long-term state includes the late event */
    assert_int_equal(v.last_seen_ms, T0 + HOUR);
    state_shard_free(s);
}

static void ttl_cfg(struct state_config *c)
{
    c->user_ttl_ms = HOUR;
    c->item_ttl_ms = HOUR;
}

static void test_ttl_expiry(void **st)
{
    (void)st;
    struct state_shard *s = new_shard(ttl_cfg);
    apply(s, tu_event("old", "i-old", EVENT_VIEW, T0));
    apply(s, tu_event("mid", "i-mid", EVENT_VIEW, T0 + 30 * MIN));
    apply(s, tu_event("new", "i-new", EVENT_VIEW, T0 + 2 * HOUR));
    struct state_stats stats;
    state_shard_stats(s, &stats);
    assert_int_equal(stats.users, 1);
    assert_int_equal(stats.items, 1);
    assert_int_equal(stats.expired, 4);
    char key[EVENT_KEY_HEX + 1];
    tu_key("old", key);
    struct core_buf b;
    core_buf_init(&b);
    assert_int_equal(state_shard_user_json(s, key, &b), CORE_E_NOTFOUND);
    assert_false(view_of(s, "i-old").found);
    assert_true(view_of(s, "i-new").found);
    core_buf_dispose(&b);
    state_shard_free(s);
}

static void max_cfg(struct state_config *c)
{
    c->max_users = 2;
    c->max_items = 2;
}

static void test_max_eviction(void **st)
{
    (void)st;
    struct state_shard *s = new_shard(max_cfg);
    apply(s, tu_event("u1", "a", EVENT_VIEW, T0));
    apply(s, tu_event("u2", "b", EVENT_VIEW, T0 + 1));
    apply(s, tu_event("u1", "a", EVENT_VIEW, T0 + 2)); /* u1 / a recently active again */
    apply(s, tu_event("u3", "c", EVENT_VIEW, T0 + 3));
    struct state_stats stats;
    state_shard_stats(s, &stats);
    assert_int_equal(stats.users, 2);
    assert_int_equal(stats.items, 2);
    assert_int_equal(stats.evicted, 2);
    char key[EVENT_KEY_HEX + 1];
    struct core_buf b;
    core_buf_init(&b);
    tu_key("u2", key);
    assert_int_equal(state_shard_user_json(s, key, &b), CORE_E_NOTFOUND);
    tu_key("u1", key);
    assert_int_equal(state_shard_user_json(s, key, &b), 0);
    assert_false(view_of(s, "b").found);
    assert_true(view_of(s, "a").found);
    assert_true(stats.bytes > 0);
    core_buf_dispose(&b);
    state_shard_free(s);
}

static void test_custom_type_and_anon(void **st)
{
    (void)st;
    struct state_shard *s = new_shard(NULL);
    struct event ev = tu_event(NULL, "z", EVENT_TYPE_CUSTOM, T0);
    memcpy(ev.anon_key, "ffffffffffffffffffffffffffffffff", EVENT_KEY_HEX + 1);
    ev.type_name.ptr = "wishlist";
    ev.type_name.len = 8;
    apply(s, ev);
    struct core_buf b;
    core_buf_init(&b);
    assert_int_equal(state_shard_user_json(s, "ffffffffffffffffffffffffffffffff", &b), 0);
    assert_non_null(strstr(b.data, "\"eventType\":\"wishlist\",\"weight\":1"));
    assert_non_null(strstr(b.data, "\"affinities\":{\"wishlist\":1}"));
    /* No user at all: item state only. */
    apply(s, tu_event(NULL, "z", EVENT_VIEW, T0 + 1));
    assert_int_equal(view_of(s, "z").counts[STATE_W_1M][STATE_G_OTHER], 1);
    assert_int_equal(view_of(s, "z").counts[STATE_W_1M][STATE_G_VIEW], 1);
    core_buf_dispose(&b);
    state_shard_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_profile),      cmocka_unit_test(test_recent_bounded),
        cmocka_unit_test(test_item_windows_roll), cmocka_unit_test(test_popularity_decay),
        cmocka_unit_test(test_ctr_attribution),   cmocka_unit_test(test_covisitation),
        cmocka_unit_test(test_late_events),       cmocka_unit_test(test_ttl_expiry),
        cmocka_unit_test(test_max_eviction),      cmocka_unit_test(test_custom_type_and_anon),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
