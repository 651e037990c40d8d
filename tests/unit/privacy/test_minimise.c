/* Data minimisation: IP truncation (IPv4 /24, IPv6 /48, IPv4-mapped, invalid input) and user
 * agent classification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "privacy/privacy.h"

#include <string.h>

static void expect_ip(const char *in, const char *want)
{
    char out[64];
    bool ok = privacy_ip_truncate(in, strlen(in), out, sizeof out);
    if (!want) {
        assert_false(ok);
        return;
    }
    assert_true(ok);
    assert_string_equal(out, want);
}

static void test_ip_truncation(void **state)
{
    (void)state;
    expect_ip("203.0.113.77", "203.0.113.0");
    expect_ip("10.1.2.255", "10.1.2.0");
    expect_ip("0.0.0.0", "0.0.0.0");
    expect_ip("2001:db8:abcd:12::1", "2001:db8:abcd::");
    expect_ip("2001:0db8:abcd:ffff:ffff:ffff:ffff:ffff", "2001:db8:abcd::");
    expect_ip("::1", "::");
    expect_ip("::ffff:198.51.100.23", "::ffff:198.51.100.0");
    expect_ip("fe80::1%eth0", NULL);
    expect_ip("203.0.113", NULL);
    expect_ip("203.0.113.256", NULL);
    expect_ip("not-an-ip", NULL);
    expect_ip("", NULL);
    expect_ip(" 203.0.113.1", NULL);
    char big[100];
    memset(big, '1', sizeof big);
    char out[64];
    assert_false(privacy_ip_truncate(big, sizeof big, out, sizeof out));
    /* Not NUL-terminated input: only len bytes count. */
    assert_true(privacy_ip_truncate("192.168.7.9xyz", 11, out, sizeof out));
    assert_string_equal(out, "192.168.7.0");
}

static void expect_class(const char *ua, const char *want)
{
    assert_string_equal(privacy_device_class(ua, strlen(ua)), want);
}

static void test_user_agent_classes(void **state)
{
    (void)state;
    expect_class("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
                 "Mobile/15E148",
                 "mobile");
    expect_class("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0 "
                 "Mobile Safari/537.36",
                 "mobile");
    expect_class("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15", "tablet");
    expect_class("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 Chrome/120.0 "
                 "Safari/537.36",
                 "tablet");
    expect_class("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0",
                 "desktop");
    expect_class("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15", "desktop");
    expect_class("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
                 "desktop");
    expect_class("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot");
    expect_class("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X) Mobile Safari (compatible; "
                 "Googlebot/2.1)",
                 "bot");
    expect_class("curl/8.4.0", "bot");
    expect_class("Mozilla/5.0 HeadlessChrome/120.0", "bot");
    expect_class("SmartTV/1.0", "other");
    expect_class("", "other");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ip_truncation),
        cmocka_unit_test(test_user_agent_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
