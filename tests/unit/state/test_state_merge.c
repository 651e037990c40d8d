/* Identity merges in state: a merge forgets the source in its shard; a merge_in carrying the
 * source's user image merges it into the target (history, counters, aliases); applying the same
 * merge_in twice gives the state of once, a later merge of the same source applies again; the
 * alias list survives snapshot/restore; a snapshot taken before the merge_in, restored and
 * replayed, ends byte-identical to an uninterrupted run. */
#include "state_test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>
#include <sodium.h>

#define T0 ((int64_t)1700000000000)
#define MIN ((int64_t)60000)

static struct state_shard *new_shard(int32_t p)
{
    struct state_config cfg;
    state_config_init(&cfg);
    return state_shard_new(&cfg, p);
}

static void apply(struct state_shard *s, struct event ev)
{
    state_shard_apply(s, &ev, state_shard_next_offset(s));
}

/* The merge_in the stream runtime would append for source (in src) merged at offset moff. */
static void merge_in(struct state_shard *dst, struct state_shard *src, const char *from,
                     const char *to, int64_t moff, int64_t ts)
{
    char fk[EVENT_KEY_HEX + 1], tk[EVENT_KEY_HEX + 1];
    tu_key(from, fk);
    tu_key(to, tk);
    struct core_buf img, props;
    core_buf_init(&img);
    core_buf_init(&props);
    assert_int_equal(state_shard_user_image(src, fk, 1000, &img), 0);
    size_t b64 = sodium_base64_encoded_len(img.len, sodium_base64_VARIANT_ORIGINAL);
    char *enc = malloc(b64);
    sodium_bin2base64(enc, b64, (const unsigned char *)img.data, img.len,
                      sodium_base64_VARIANT_ORIGINAL);
    core_buf_printf(&props, "{\"offset\":%lld,\"state\":\"%s\"}", (long long)moff, enc);
    struct event ev = tu_event(to, NULL, EVENT_MERGE_IN, ts);
    memcpy(ev.anon_key, fk, sizeof fk);
    ev.properties_json.ptr = props.data;
    ev.properties_json.len = props.len;
    apply(dst, ev);
    free(enc);
    core_buf_dispose(&img);
    core_buf_dispose(&props);
}

static void merge_out(struct state_shard *src, const char *from, const char *to, int64_t ts)
{
    struct event ev = tu_event(to, NULL, EVENT_MERGE, ts);
    tu_key(from, ev.anon_key);
    apply(src, ev);
}

static void profile(struct state_shard *s, const char *user, struct core_buf *out)
{
    char k[EVENT_KEY_HEX + 1];
    tu_key(user, k);
    core_buf_reset(out);
    assert_int_equal(state_shard_user_json(s, k, out), 0);
    core_buf_putc(out, '\0');
}

static void test_merge_moves_history(void **st)
{
    (void)st;
    struct state_shard *src = new_shard(0), *dst = new_shard(1);
    apply(src, tu_event("a1", "A", EVENT_VIEW, T0));
    apply(src, tu_event("a1", "B", EVENT_ADD_TO_CART, T0 + MIN));
    apply(dst, tu_event("b2", "C", EVENT_CLICK, T0 + 2 * MIN));
    int64_t moff = state_shard_next_offset(src);
    merge_in(dst, src, "a1", "b2", moff, T0 + 3 * MIN);
    merge_out(src, "a1", "b2", T0 + 3 * MIN);

    struct core_buf out;
    core_buf_init(&out);
    char ak[EVENT_KEY_HEX + 1];
    tu_key("a1", ak);
    assert_int_equal(state_shard_user_json(src, ak, &out), CORE_E_NOTFOUND);
    profile(dst, "b2", &out);
    assert_non_null(strstr(out.data, "\"events\":3"));
    assert_non_null(strstr(out.data, "\"itemId\":\"A\""));
    assert_non_null(strstr(out.data, "\"itemId\":\"B\""));
    assert_non_null(strstr(out.data, "\"itemId\":\"C\""));
    assert_non_null(strstr(out.data, "\"firstSeen\":1700000000000"));
    assert_non_null(strstr(out.data, "\"add_to_cart\":"));
    assert_non_null(strstr(out.data, ak));
    char al[4][EVENT_KEY_HEX + 1];
    char bk[EVENT_KEY_HEX + 1];
    tu_key("b2", bk);
    assert_int_equal(state_shard_user_aliases(dst, bk, al, 4), 1);
    assert_string_equal(al[0], ak);
    core_buf_dispose(&out);
    state_shard_free(src);
    state_shard_free(dst);
}

static void test_merge_in_idempotent(void **st)
{
    (void)st;
    struct state_shard *src = new_shard(0), *dst = new_shard(1);
    for (int i = 0; i < 30; i++) {
        char item[8];
        snprintf(item, sizeof item, "i%d", i % 7);
        apply(src, tu_event("a1", item, i % 3 ? EVENT_VIEW : EVENT_CLICK, T0 + i * 1000));
        apply(dst, tu_event("b2", item, EVENT_VIEW, T0 + i * 1000 + 500));
    }
    int64_t moff = state_shard_next_offset(src);
    merge_in(dst, src, "a1", "b2", moff, T0 + 40000);
    struct core_buf once, twice, img1, img2;
    core_buf_init(&once);
    core_buf_init(&twice);
    core_buf_init(&img1);
    core_buf_init(&img2);
    profile(dst, "b2", &once);
    char bk[EVENT_KEY_HEX + 1];
    tu_key("b2", bk);
    assert_int_equal(state_shard_user_image(dst, bk, 1000, &img1), 0);
    /* The same merge_in again (a re-append after a crash): nothing changes. */
    merge_in(dst, src, "a1", "b2", moff, T0 + 40000);
    profile(dst, "b2", &twice);
    assert_string_equal(once.data, twice.data);
    assert_int_equal(state_shard_user_image(dst, bk, 1000, &img2), 0);
    assert_int_equal(img1.len, img2.len);
    assert_memory_equal(img1.data, img2.data, img1.len);
    assert_non_null(strstr(once.data, "\"events\":60"));

    /* The source browses on and logs in again: that later merge applies. */
    merge_out(src, "a1", "b2", T0 + 40000);
    apply(src, tu_event("a1", "new", EVENT_PURCHASE, T0 + 50000));
    merge_in(dst, src, "a1", "b2", state_shard_next_offset(src), T0 + 60000);
    profile(dst, "b2", &twice);
    assert_non_null(strstr(twice.data, "\"events\":61"));
    assert_non_null(strstr(twice.data, "\"itemId\":\"new\""));
    core_buf_dispose(&once);
    core_buf_dispose(&twice);
    core_buf_dispose(&img1);
    core_buf_dispose(&img2);
    state_shard_free(src);
    state_shard_free(dst);
}

static void test_aliases_snapshot_and_replay(void **st)
{
    (void)st;
    struct state_shard *src = new_shard(0), *dst = new_shard(1), *copy = new_shard(1);
    apply(src, tu_event("a1", "A", EVENT_VIEW, T0));
    apply(src, tu_event("c3", "B", EVENT_VIEW, T0 + 1));
    apply(dst, tu_event("b2", "C", EVENT_VIEW, T0 + 2));
    struct core_buf snap, d1, d2;
    core_buf_init(&snap);
    core_buf_init(&d1);
    core_buf_init(&d2);
    struct core_buf before;
    core_buf_init(&before);
    state_shard_snapshot(dst, &before); /* before the merges */
    merge_in(dst, src, "a1", "b2", 7, T0 + 10);
    merge_in(dst, src, "c3", "b2", 8, T0 + 11);
    apply(dst, tu_event("b2", "D", EVENT_CLICK, T0 + 12));
    tu_dump(dst, &d1);
    assert_non_null(strstr(d1.data, "alias"));

    /* Restore the snapshot with the aliases: same dump and aliases. */
    core_buf_reset(&snap);
    state_shard_snapshot(dst, &snap);
    assert_int_equal(state_shard_restore(copy, snap.data, snap.len), 0);
    tu_dump(copy, &d2);
    assert_int_equal(d1.len, d2.len);
    assert_memory_equal(d1.data, d2.data, d1.len);
    char bk[EVENT_KEY_HEX + 1], al[4][EVENT_KEY_HEX + 1], ak[EVENT_KEY_HEX + 1];
    tu_key("b2", bk);
    assert_int_equal(state_shard_user_aliases(copy, bk, al, 4), 2);
    tu_key("a1", ak);
    assert_string_equal(al[0], ak);
    tu_key("c3", ak);
    assert_string_equal(al[1], ak);
    /* Replay from the snapshot taken before the merges (a crash and recovery) reapplies the
     * same records; a merge_in re-appended after the crash is recognised as applied. */
    struct state_shard *again = new_shard(1);
    assert_int_equal(state_shard_restore(again, before.data, before.len), 0);
    merge_in(again, src, "a1", "b2", 7, T0 + 10);
    merge_in(again, src, "c3", "b2", 8, T0 + 11);
    apply(again, tu_event("b2", "D", EVENT_CLICK, T0 + 12));
    tu_dump(again, &d2);
    assert_int_equal(d1.len, d2.len);
    assert_memory_equal(d1.data, d2.data, d1.len);
    profile(again, "b2", &d2);
    merge_in(again, src, "a1", "b2", 7, T0 + 12);
    profile(again, "b2", &before);
    assert_string_equal(d2.data, before.data);
    state_shard_free(again);
    core_buf_dispose(&before);
    core_buf_dispose(&snap);
    core_buf_dispose(&d1);
    core_buf_dispose(&d2);
    state_shard_free(src);
    state_shard_free(dst);
    state_shard_free(copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_moves_history),
        cmocka_unit_test(test_merge_in_idempotent),
        cmocka_unit_test(test_aliases_snapshot_and_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
