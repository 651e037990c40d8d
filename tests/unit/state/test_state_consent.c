/* Consent in state: events flagged anonymous update item aggregates only (never users,
 * sessions or co-visitation); a "consent" control event clears its user deterministically
 * (a snapshot taken before it, restored and replayed, ends byte-identical to an
 * uninterrupted run); a grant leaves the user alone; the binary codec keeps the flag and the
 * type's stored number. */
#include "state_test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#define T0 ((int64_t)1700000000000)
#define MIN ((int64_t)60000)

static struct state_shard *new_shard(void)
{
    struct state_config cfg;
    state_config_init(&cfg);
    return state_shard_new(&cfg, 0);
}

static void apply(struct state_shard *s, struct event ev)
{
    state_shard_apply(s, &ev, state_shard_next_offset(s));
}

static struct event consent_event(const char *user, const char *props, int64_t ts)
{
    struct event ev = tu_event(user, NULL, EVENT_CONSENT, ts);
    ev.properties_json.ptr = props;
    ev.properties_json.len = strlen(props);
    return ev;
}

static struct state_item_view view_of(struct state_shard *s, const char *item)
{
    struct state_item_view v;
    memset(&v, 0, sizeof v);
    state_shard_item_view(s, item, strlen(item), &v);
    return v;
}

static void test_anonymous_updates_items_only(void **st)
{
    (void)st;
    struct state_shard *s = new_shard();
    struct event a = tu_event("anon", "A", EVENT_VIEW, T0);
    struct event b = tu_event("anon", "B", EVENT_CLICK, T0 + 1);
    a.anonymous = b.anonymous = true;
    apply(s, a);
    apply(s, b);
    struct core_buf out;
    core_buf_init(&out);
    char key[EVENT_KEY_HEX + 1];
    tu_key("anon", key);
    assert_int_equal(state_shard_user_json(s, key, &out), CORE_E_NOTFOUND);
    struct state_item_view v = view_of(s, "B");
    assert_true(v.found);
    assert_int_equal(v.counts[STATE_W_1H][STATE_G_CLICK], 1);
    assert_true(v.popularity > 0);
    struct state_neighbour nb[4];
    assert_int_equal(state_shard_neighbours(s, "A", 1, T0 + 1, nb, 4), 0); /* no co-visitation */
    struct state_stats stats;
    state_shard_stats(s, &stats);
    assert_int_equal(stats.users, 0);
    core_buf_dispose(&out);
    state_shard_free(s);
}

static void test_consent_event_clears_user(void **st)
{
    (void)st;
    struct state_shard *s = new_shard();
    apply(s, tu_event("u1", "A", EVENT_VIEW, T0));
    apply(s, tu_event("u1", "B", EVENT_VIEW, T0 + MIN));
    apply(s, tu_event("u2", "A", EVENT_VIEW, T0 + MIN));
    char k1[EVENT_KEY_HEX + 1], k2[EVENT_KEY_HEX + 1];
    tu_key("u1", k1);
    tu_key("u2", k2);
    struct core_buf out;
    core_buf_init(&out);
    /* A grant changes nothing. */
    apply(s, consent_event("u1", "{\"analytics\":true,\"personalization\":true}", T0 + 2 * MIN));
    assert_int_equal(state_shard_user_json(s, k1, &out), 0);
    apply(s, consent_event("u1", "{\"analytics\":true,\"personalization\":false}", T0 + 3 * MIN));
    assert_int_equal(state_shard_user_json(s, k1, &out), CORE_E_NOTFOUND);
    assert_int_equal(state_shard_user_json(s, k2, &out), 0); /* others keep theirs */
    assert_true(view_of(s, "A").found);                      /* aggregates stay */
    /* Re-granting starts fresh. */
    apply(s, tu_event("u1", "C", EVENT_VIEW, T0 + 4 * MIN));
    core_buf_reset(&out);
    assert_int_equal(state_shard_user_json(s, k1, &out), 0);
    assert_non_null(strstr(out.data, "\"events\":1,"));
    assert_null(strstr(out.data, "\"itemId\":\"A\""));
    /* The direct form. */
    assert_true(state_shard_user_forget(s, k2));
    assert_false(state_shard_user_forget(s, k2));
    core_buf_dispose(&out);
    state_shard_free(s);
}

static void run(struct state_shard *s, int from, int to)
{
    for (int i = from; i < to; i++) {
        char *user = i % 3 ? "p" : "q";
        static const char *items[] = {"A", "B", "C", "D"};
        if (i == 7)
            apply(s, consent_event("p", "{\"analytics\":false}", T0 + i * MIN));
        else
            apply(s, tu_event(user, items[i % 4], EVENT_VIEW, T0 + i * MIN));
    }
}

static void test_replay_is_deterministic(void **st)
{
    (void)st;
    struct state_shard *a = new_shard(), *b = new_shard();
    run(a, 0, 12);
    run(b, 0, 5);
    struct core_buf snap, da, db;
    core_buf_init(&snap);
    core_buf_init(&da);
    core_buf_init(&db);
    state_shard_snapshot(b, &snap);
    state_shard_free(b);
    b = new_shard();
    assert_int_equal(state_shard_restore(b, snap.data, snap.len), 0);
    run(b, 5, 12);
    tu_dump(a, &da);
    tu_dump(b, &db);
    assert_int_equal(da.len, db.len);
    assert_memory_equal(da.data, db.data, da.len);
    core_buf_dispose(&snap);
    core_buf_dispose(&da);
    core_buf_dispose(&db);
    state_shard_free(a);
    state_shard_free(b);
}

static void test_codec_flag_and_wire_numbers(void **st)
{
    (void)st;
    struct event ev = tu_event("a1", "A", EVENT_VIEW, T0), out;
    ev.anonymous = true;
    struct core_buf b;
    core_buf_init(&b);
    event_bin_encode(&ev, &b);
    assert_int_equal(event_bin_decode(b.data, b.len, &out), 0);
    assert_true(out.anonymous);
    /* Stored type numbers: custom stays 16, consent (added later) is 17. */
    assert_int_equal(event_type_to_wire(EVENT_TYPE_CUSTOM), 16);
    assert_int_equal(event_type_to_wire(EVENT_CONSENT), 17);
    assert_int_equal(event_type_to_wire(EVENT_PREFERENCES), EVENT_PREFERENCES);
    for (int t = 0; t <= EVENT_TYPE_CUSTOM; t++)
        assert_int_equal(event_type_from_wire(event_type_to_wire(t)), t);
    assert_int_equal(event_type_from_wire(18), EVENT_TICK);  /* added after consent */
    assert_int_equal(event_type_from_wire(19), EVENT_MERGE); /* identity control records */
    assert_int_equal(event_type_from_wire(20), EVENT_MERGE_IN);
    assert_int_equal(event_type_from_wire(21), -1);
    ev = tu_event("a1", NULL, EVENT_CONSENT, T0);
    core_buf_reset(&b);
    event_bin_encode(&ev, &b);
    assert_int_equal(((const uint8_t *)b.data)[2], 17);
    assert_int_equal(event_bin_decode(b.data, b.len, &out), 0);
    assert_int_equal(out.type, EVENT_CONSENT);
    assert_false(out.anonymous);
    core_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anonymous_updates_items_only),
        cmocka_unit_test(test_consent_event_clears_user),
        cmocka_unit_test(test_replay_is_deterministic),
        cmocka_unit_test(test_codec_flag_and_wire_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
