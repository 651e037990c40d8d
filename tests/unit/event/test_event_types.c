/* Tests of the event type table, event_init and UUIDv7 event ids. */
#include "event/event.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static void test_type_table(void **state)
{
    (void)state;
    assert_int_equal(event_type_lookup("view", 4), EVENT_VIEW);
    assert_int_equal(event_type_lookup("click", 5), EVENT_CLICK);
    assert_int_equal(event_type_lookup("page_view", 9), EVENT_PAGE_VIEW);
    assert_int_equal(event_type_lookup("clicks", 5), EVENT_CLICK); /* length decides */
    assert_int_equal(event_type_lookup("clicks", 6), -1);
    assert_int_equal(event_type_lookup("", 0), -1);
    assert_int_equal(event_type_lookup("view\0\0", 6), -1);
    assert_int_equal(event_type_lookup("VIEW", 4), -1);
    for (int t = 0; t < EVENT_TYPE__COUNT; t++) {
        const struct event_type_info *ti = event_type_get(t);
        assert_non_null(ti);
        assert_int_equal(event_type_lookup(ti->name, strlen(ti->name)), t);
    }
    assert_null(event_type_get(-1));
    assert_string_equal(event_type_get(EVENT_TYPE_CUSTOM)->name, "custom");
    assert_null(event_type_get(EVENT_TYPE_CUSTOM + 1));
    assert_true(event_type_get(EVENT_PURCHASE)->weight == 6.0);
    assert_true(event_type_get(EVENT_REMOVE_FROM_CART)->weight < 0);
    assert_true(event_type_get(EVENT_CLICK)->item_required);
    assert_false(event_type_get(EVENT_SEARCH)->item_required);
}

static void test_init(void **state)
{
    (void)state;
    struct event ev;
    memset(&ev, 0xab, sizeof ev);
    event_init(&ev);
    assert_int_equal(ev.type, -1);
    assert_int_equal(ev.event_id.len, 0);
    assert_string_equal(ev.user_key, "");
    assert_false(ev.has_value);
    assert_int_equal(ev.dropped_fields, 0);
}

static int hexval(char c)
{
    return c >= 'a' ? c - 'a' + 10 : c - '0';
}

static void test_uuid_v7(void **state)
{
    (void)state;
    int64_t ms = 1700000000123LL; /* 0x018bcfe5687b */
    char a[37], b[37];
    event_id_generate(ms, a);
    event_id_generate(ms, b);
    assert_int_equal(strlen(a), 36);
    assert_string_not_equal(a, b);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(a[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", a[i]));
    }
    assert_memory_equal(a, "018bcfe5-687b-7", 15);
    assert_int_equal(hexval(a[19]) & 0xc, 0x8); /* variant 10 */
    event_id_generate(0, a);
    assert_memory_equal(a, "00000000-0000-7", 15);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_table),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_uuid_v7),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
