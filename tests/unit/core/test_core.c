/* Tests of the core utilities: hashing, time, JSON output, buffers, parsing, arenas. */
#include "core/core.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* ---- murmur2 and partitions ---- */

static void test_murmur2_kafka_vectors(void **state)
{
    (void)state;
    /* org.apache.kafka.common.utils.UtilsTest.testMurmur2 */
    static const struct {
        const char *key;
        int32_t hash;
    } cases[] = {
        {"21", -973932308},
        {"foobar", -790332482},
        {"a-little-bit-long-string", -985981536},
        {"a-little-bit-longer-string", -1486304829},
        {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(core_murmur2(cases[i].key, strlen(cases[i].key)), cases[i].hash);
    static const char abc[] = {'a', 'b', 'c'};
    assert_int_equal(core_murmur2(abc, sizeof abc), 479470107);
}

static void test_partition_for_key(void **state)
{
    (void)state;
    /* toPositive(murmur2(key)) % partitions, as Kafka's DefaultPartitioner. */
    assert_int_equal(core_partition_for_key("21", 2, 100), 1173551340 % 100);
    assert_int_equal(core_partition_for_key("foobar", 6, 12), 1357151166 % 12);
    assert_int_equal(core_partition_for_key("abc", 3, 6), 479470107 % 6);
    assert_int_equal(core_partition_for_key("foobar", 6, 1), 0);
    for (int i = 0; i < 1000; i++) {
        char key[16];
        int n = snprintf(key, sizeof key, "user-%d", i);
        int32_t p = core_partition_for_key(key, (size_t)n, 7);
        assert_true(p >= 0 && p < 7);
    }
}

static void test_hex(void **state)
{
    (void)state;
    static const uint8_t in[] = {0x00, 0x0f, 0xa5, 0xff};
    char out[9];
    core_hex(in, sizeof in, out);
    assert_string_equal(out, "000fa5ff");
    core_hex(in, 0, out);
    assert_string_equal(out, "");
}

/* ---- RFC 3339 ---- */

static int64_t parse_ok(const char *s)
{
    int64_t ms = -1;
    int rc = core_rfc3339_parse(s, strlen(s), &ms);
    if (rc != 0)
        fail_msg("\"%s\" did not parse", s);
    return ms;
}

static void test_rfc3339_parse(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(parse_ok("2023-11-14T22:13:20Z"), 1700000000000LL);
    assert_int_equal(parse_ok("2023-11-14T22:13:20.1Z"), 1700000000100LL);
    assert_int_equal(parse_ok("2023-11-14T22:13:20.12Z"), 1700000000120LL);
    assert_int_equal(parse_ok("2023-11-14T22:13:20.123999Z"), 1700000000123LL);
    assert_int_equal(parse_ok("2023-11-15T00:13:20+02:00"), 1700000000000LL);
    assert_int_equal(parse_ok("2023-11-14T12:13:20-10:00"), 1700000000000LL);
    assert_int_equal(parse_ok("2023-11-14T22:43:20.5+00:30"), 1700000000500LL);
    assert_int_equal(parse_ok("2023-11-14t22:13:20z"), 1700000000000LL);
    assert_int_equal(parse_ok("2024-02-29T00:00:00Z"), 1709164800000LL);
    assert_int_equal(parse_ok("2000-02-29T00:00:00Z"), 951782400000LL);
    assert_int_equal(parse_ok("1969-12-31T23:59:59Z"), -1000);
    /* A leap second is clamped to :59. */
    assert_int_equal(parse_ok("2016-12-31T23:59:60Z"), parse_ok("2016-12-31T23:59:59Z"));
}

static void test_rfc3339_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "junk",
        "2023-11-14",
        "2023-11-14T22:13:20",       /* no offset */
        "2023-13-01T00:00:00Z",      /* month */
        "2023-00-01T00:00:00Z",      /* month */
        "2023-01-00T00:00:00Z",      /* day */
        "2023-01-32T00:00:00Z",      /* day */
        "2023-04-31T00:00:00Z",      /* day of a 30-day month */
        "2023-02-29T00:00:00Z",      /* not a leap year */
        "1900-02-29T00:00:00Z",      /* centuries are not leap years */
        "2023-02-30T00:00:00Z",      /* never */
        "2023-11-14T24:00:00Z",      /* hour */
        "2023-11-14T22:60:00Z",      /* minute */
        "2023-11-14T22:13:61Z",      /* second */
        "2023-11-14T22:13:20.Z",     /* empty fraction */
        "2023-11-14T22:13:20+0100",  /* offset without colon */
        "2023-11-14T22:13:20+01",    /* short offset */
        "2023-11-14T22:13:20+24:00", /* offset hour */
        "2023-11-14T22:13:20Zjunk",  /* trailing */
        "2023-11-14T22:13:20+01:00x",
        "2023/11/14T22:13:20Z",
        "2023-11-14X22:13:20Z",
        "+2023-11-14T22:13:20Z",
        "2023-1-14T22:13:20Z",
        "2023-11-14T22:13:2aZ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 42;
        if (core_rfc3339_parse(bad[i], strlen(bad[i]), &ms) != CORE_E_PARSE)
            fail_msg("\"%s\" was accepted", bad[i]);
        assert_int_equal(ms, 42);
    }
    /* Length is honoured: a valid prefix of a longer buffer. */
    const char *s = "2023-11-14T22:13:20Z trailing";
    int64_t ms;
    assert_int_equal(core_rfc3339_parse(s, 20, &ms), 0);
    assert_int_equal(ms, 1700000000000LL);
    assert_int_equal(core_rfc3339_parse(s, 19, &ms), CORE_E_PARSE);
}

static void test_rfc3339_round_trip(void **state)
{
    (void)state;
    static const int64_t cases[] = {
        0,
        1,
        999,
        1700000000000LL,
        1700000000123LL,
        951782400000LL,
        1709164800000LL,
        253402300799999LL, /* 9999-12-31T23:59:59.999Z */
        -1,
        -1000,
        -86400001,
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        core_rfc3339_format(cases[i], buf, sizeof buf);
        assert_int_equal(strlen(buf), 24);
        assert_int_equal(parse_ok(buf), cases[i]);
    }
    char buf[32];
    core_rfc3339_format(1700000000123LL, buf, sizeof buf);
    assert_string_equal(buf, "2023-11-14T22:13:20.123Z");
    core_rfc3339_format(-1, buf, sizeof buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
}

/* ---- JSON output ---- */

static void assert_json_str(const char *in, size_t n, const char *want)
{
    struct core_buf b;
    core_buf_init(&b);
    core_json_str(&b, in, n);
    assert_string_equal(b.data, want);
    assert_int_equal(b.len, strlen(want));
    core_buf_dispose(&b);
}

static void test_json_str(void **state)
{
    (void)state;
    assert_json_str("", 0, "\"\"");
    assert_json_str("plain", 5, "\"plain\"");
    assert_json_str("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
    assert_json_str("\n\r\t", 3, "\"\\n\\r\\t\"");
    assert_json_str("\x01\x1f\b\f", 4, "\"\\u0001\\u001f\\u0008\\u000c\"");
    assert_json_str("a\0b", 3, "\"a\\u0000b\"");
    assert_json_str("/\x7f", 2, "\"/\x7f\"");
    /* Valid UTF-8 passes through untouched. */
    assert_json_str("h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 12,
                    "\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    /* Invalid bytes become U+FFFD, one per byte. */
    assert_json_str("a\xff"
                    "b",
                    3,
                    "\"a\xef\xbf\xbd"
                    "b\"");
    assert_json_str("\xc3", 1, "\"\xef\xbf\xbd\"");                 /* truncated sequence */
    assert_json_str("\xc0\xaf", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\""); /* overlong */
    assert_json_str("\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* surrogate */
    assert_json_str("\xf4\x90\x80\x80", 4,
                    "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* > U+10FFFF */
    assert_json_str("\xe2\x82"
                    "\"",
                    3, "\"\xef\xbf\xbd\xef\xbf\xbd\\\"\"");

    struct core_buf b;
    core_buf_init(&b);
    core_json_cstr(&b, "x\"y");
    assert_string_equal(b.data, "\"x\\\"y\"");
    core_buf_dispose(&b);
}

/* The escaper's rules one byte at a time (what core_json_str did before its 8-byte skip). */
static void ref_json_str(struct core_buf *b, const unsigned char *u, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    core_buf_putc(b, '"');
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        size_t ul = c >= 0x80 ? core_utf8_len(u + i, n - i) : 0;
        if (ul > 0) {
            core_buf_append(b, u + i, ul);
            i += ul;
            continue;
        }
        i++;
        if (c == '"')
            core_buf_append(b, "\\\"", 2);
        else if (c == '\\')
            core_buf_append(b, "\\\\", 2);
        else if (c == '\n')
            core_buf_append(b, "\\n", 2);
        else if (c == '\r')
            core_buf_append(b, "\\r", 2);
        else if (c == '\t')
            core_buf_append(b, "\\t", 2);
        else if (c < 0x20)
            core_buf_append(b, (char[]){'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]}, 6);
        else if (c >= 0x80)
            core_buf_append(b, "\xef\xbf\xbd", 3);
        else
            core_buf_putc(b, (char)c);
    }
    core_buf_putc(b, '"');
}

/* The fast paths (whole plain strings; 16, then 8 plain bytes at a time) agree with the byte rules
 * on random strings of every length and alignment, rich in the bytes that need escaping or UTF-8
 * checks. */
static void test_json_str_random(void **state)
{
    (void)state;
    static const unsigned char alphabet[] = {'a',  'Z',  '0',  ' ',  '~',  0x7f, '"',  '\\',
                                             '\n', 0x01, 0x1f, 0x00, 0xc3, 0xa9, 0xe2, 0x82,
                                             0xac, 0xf0, 0x9f, 0x98, 0x80, 0xff, 0xed, 0xa0};
    unsigned char buf[80];
    uint64_t x = 88172645463325252ull;
    struct core_buf got, want;
    core_buf_init(&got);
    core_buf_init(&want);
    for (int t = 0; t < 20000; t++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t n = x % 64, off = (x >> 8) % 8;
        int plain = (int)((x >> 16) % 4); /* often long plain runs with rare specials */
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[off + i] =
                plain && x % 16 ? (unsigned char)('a' + x % 26) : alphabet[x % sizeof alphabet];
        }
        core_buf_reset(&got);
        core_buf_reset(&want);
        core_json_str(&got, (const char *)buf + off, n);
        ref_json_str(&want, buf + off, n);
        assert_int_equal(got.len, want.len);
        assert_memory_equal(got.data, want.data, got.len);
    }
    core_buf_dispose(&got);
    core_buf_dispose(&want);
}

static void assert_json_f64(double v, const char *want)
{
    struct core_buf b;
    core_buf_init(&b);
    core_json_f64(&b, v);
    assert_string_equal(b.data, want);
    core_buf_dispose(&b);
}

static void test_json_numbers(void **state)
{
    (void)state;
    assert_json_f64(0, "0");
    assert_json_f64(-3, "-3");
    assert_json_f64(1700000000000.0, "1700000000000");
    assert_json_f64(0.5, "0.5");
    assert_json_f64(NAN, "null");
    assert_json_f64(INFINITY, "null");
    assert_json_f64(-INFINITY, "null");
    /* Outside the int64 range (once undefined behaviour in the integer test). */
    assert_json_f64(1e300, "1.0000000000000001e+300");
    assert_json_f64(-1e19, "-1e+19");
    struct core_buf b;
    core_buf_init(&b);
    core_json_i64(&b, INT64_MIN);
    core_buf_putc(&b, ',');
    core_json_i64(&b, INT64_MAX);
    assert_string_equal(b.data, "-9223372036854775808,9223372036854775807");
    core_buf_dispose(&b);
}

static void assert_json_fixed(double v, int decimals, const char *want)
{
    struct core_buf b;
    core_buf_init(&b);
    core_json_fixed(&b, v, decimals);
    assert_string_equal(b.data, want);
    core_buf_dispose(&b);
}

static void test_json_fixed(void **state)
{
    (void)state;
    assert_json_fixed(0, 6, "0");
    assert_json_fixed(3, 6, "3");
    assert_json_fixed(0.25, 6, "0.25");
    assert_json_fixed(1.1038241505622863, 6, "1.103824");
    assert_json_fixed(0.9999996, 6, "1"); /* rounds up into the integer */
    assert_json_fixed(0.0000004, 6, "0"); /* rounds to zero: no "-0" either */
    assert_json_fixed(-0.0000004, 6, "0");
    assert_json_fixed(-1.5, 6, "-1.5");
    assert_json_fixed(0.000123, 6, "0.000123"); /* leading zeros of the fraction kept */
    assert_json_fixed(0.1000004, 6, "0.1");
    assert_json_fixed(0.125, 2, "0.13"); /* exact halves round away from zero */
    assert_json_fixed(-0.125, 2, "-0.13");
    assert_json_fixed(12.3456789, 9, "12.3456789");
    assert_json_fixed(NAN, 6, "null");
    assert_json_fixed(1e300, 6, "1.0000000000000001e+300"); /* beyond +-1e15: core_json_f64 */
    assert_json_fixed(0.5, 0, "0.5");                       /* decimals out of range: same */
}

/* ---- buffers ---- */

static void test_buf_basics(void **state)
{
    (void)state;
    struct core_buf b;
    core_buf_init(&b);
    core_buf_puts(&b, "abc");
    core_buf_putc(&b, 'd');
    core_buf_printf(&b, "-%d-%s", 42, "x");
    assert_string_equal(b.data, "abcd-42-x");
    /* printf longer than the stack buffer */
    char big[600];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    core_buf_reset(&b);
    core_buf_printf(&b, "<%s>", big);
    assert_int_equal(b.len, 601);
    assert_int_equal(b.data[600], '>');
    assert_int_equal(b.data[601], '\0');
    core_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    core_buf_dispose(&b);
    assert_null(b.data);
}

static void test_buf_varint(void **state)
{
    (void)state;
    static const uint64_t values[] = {
        0,
        1,
        127,
        128,
        255,
        300,
        16383,
        16384,
        (1ULL << 32) - 1,
        1ULL << 32,
        (1ULL << 63) - 1,
        1ULL << 63,
        UINT64_MAX,
    };
    static const size_t sizes[] = {1, 1, 1, 2, 2, 2, 2, 3, 5, 5, 9, 10, 10};
    struct core_buf b;
    core_buf_init(&b);
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        core_buf_reset(&b);
        core_buf_put_varint(&b, values[i]);
        assert_int_equal(b.len, sizes[i]);
        const uint8_t *p = (const uint8_t *)b.data, *end = p + b.len;
        uint64_t v;
        assert_int_equal(core_get_varint(&p, end, &v), 0);
        assert_true(v == values[i]);
        assert_ptr_equal(p, end);
        /* Every truncation fails and leaves the cursor alone. */
        for (size_t n = 0; n < b.len; n++) {
            p = (const uint8_t *)b.data;
            assert_int_equal(core_get_varint(&p, p + n, &v), CORE_E_CORRUPT);
            assert_ptr_equal(p, (const uint8_t *)b.data);
        }
    }
    /* More than ten bytes of continuation is corrupt. */
    static const uint8_t endless[11] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                        0x80, 0x80, 0x80, 0x80, 0x00};
    const uint8_t *p = endless;
    uint64_t v;
    assert_int_equal(core_get_varint(&p, endless + sizeof endless, &v), CORE_E_CORRUPT);
    core_buf_dispose(&b);
}

static void test_buf_fixed_and_zigzag(void **state)
{
    (void)state;
    struct core_buf b;
    core_buf_init(&b);
    core_buf_put_u16(&b, 0xbeef);
    core_buf_put_u32(&b, 0xdeadbeef);
    core_buf_put_u64(&b, 0x0123456789abcdefULL);
    assert_int_equal(b.len, 14);
    assert_int_equal((uint8_t)b.data[0], 0xef); /* little-endian */
    const uint8_t *p = (const uint8_t *)b.data, *end = p + b.len;
    uint16_t a;
    uint32_t c;
    uint64_t d;
    assert_int_equal(core_get_u16(&p, end, &a), 0);
    assert_int_equal(core_get_u32(&p, end, &c), 0);
    assert_int_equal(core_get_u64(&p, end - 1, &d), CORE_E_CORRUPT);
    assert_int_equal(core_get_u64(&p, end, &d), 0);
    assert_int_equal(a, 0xbeef);
    assert_int_equal(c, 0xdeadbeef);
    assert_true(d == 0x0123456789abcdefULL);
    assert_int_equal(core_get_u16(&p, end, &a), CORE_E_CORRUPT);
    core_buf_dispose(&b);

    static const int64_t z[] = {0, -1, 1, -2, 2, INT64_MAX, INT64_MIN, 1700000000000LL};
    for (size_t i = 0; i < sizeof z / sizeof z[0]; i++)
        assert_true(core_unzigzag(core_zigzag(z[i])) == z[i]);
    assert_int_equal(core_zigzag(0), 0);
    assert_int_equal(core_zigzag(-1), 1);
    assert_int_equal(core_zigzag(1), 2);
    assert_true(core_zigzag(INT64_MIN) == UINT64_MAX);
}

/* ---- parsing ---- */

static void test_parse_i64(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(core_parse_i64("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(core_parse_i64("10", 0, 10, &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(core_parse_i64("-10", -10, 10, &v), 0);
    assert_int_equal(v, -10);
    assert_int_equal(core_parse_i64("9223372036854775807", 0, INT64_MAX, &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(core_parse_i64("-9223372036854775807", INT64_MIN, 0, &v), 0);
    assert_true(v == -INT64_MAX);
    v = 7;
    static const char *const bad[] = {
        "",
        "-",
        "+5",
        " 5",
        "5 ",
        "1x",
        "0x10",
        "1.0",
        "9223372036854775808",
        "99999999999999999999",
        "--1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (core_parse_i64(bad[i], INT64_MIN, INT64_MAX, &v) != CORE_E_INVALID)
            fail_msg("\"%s\" was accepted", bad[i]);
    }
    assert_int_equal(core_parse_i64(NULL, 0, 1, &v), CORE_E_INVALID);
    /* Bounds. */
    assert_int_equal(core_parse_i64("11", 0, 10, &v), CORE_E_INVALID);
    assert_int_equal(core_parse_i64("-1", 0, 10, &v), CORE_E_INVALID);
    assert_int_equal(core_parse_i64("-11", -10, 10, &v), CORE_E_INVALID);
    assert_int_equal(v, 7); /* untouched on failure */
}

static void test_parse_size(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t v;
    } good[] = {
        {"0", 0},
        {"1048576", 1048576},
        {"64k", 65536},
        {"64K", 65536},
        {"64kb", 65536},
        {"64KiB", 65536},
        {"1MiB", 1048576},
        {"2m", 2097152},
        {"1g", 1073741824},
        {"3GB", 3221225472LL},
        {"10b", 10},
        {"10B", 10},
        {"999999999999999", 999999999999999LL},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t v = -1;
        if (core_parse_size(good[i].s, &v) != 0)
            fail_msg("\"%s\" was rejected", good[i].s);
        assert_true(v == good[i].v);
    }
    static const char *const bad[] = {
        "", "k", "-1", "1.5m", "1 m", "1x", "1tb", "1kk", "1000000000000000", "99999999999999g",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 5;
        if (core_parse_size(bad[i], &v) != CORE_E_INVALID)
            fail_msg("\"%s\" was accepted", bad[i]);
        assert_int_equal(v, 5);
    }
}

/* ---- arena ---- */

static void test_arena(void **state)
{
    (void)state;
    struct core_arena a;
    core_arena_init(&a);
    char *s = core_arena_strndup(&a, "hello world", 5);
    assert_string_equal(s, "hello");
    /* Many allocations across several chunks, each aligned and writable. */
    char *ptrs[2000];
    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)(i % 37) + 1;
        ptrs[i] = core_arena_alloc(&a, n);
        assert_int_equal((uintptr_t)ptrs[i] % _Alignof(max_align_t), 0);
        memset(ptrs[i], i & 0xff, n);
    }
    for (int i = 0; i < 2000; i++)
        assert_int_equal((uint8_t)ptrs[i][0], i & 0xff);
    assert_string_equal(s, "hello");
    /* An allocation larger than a chunk. */
    char *big = core_arena_alloc(&a, 100000);
    memset(big, 1, 100000);
    assert_true(a.used >= 100000 + 2000);
    /* Reset keeps one chunk and starts again from zero. */
    core_arena_reset(&a);
    assert_int_equal(a.used, 0);
    char *t = core_arena_strndup(&a, "again", 5);
    assert_string_equal(t, "again");
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 500; i++)
            memset(core_arena_alloc(&a, 64), 0, 64);
        core_arena_reset(&a);
    }
    core_arena_dispose(&a);
    assert_null(a.head);
    core_arena_reset(&a); /* no-op on an empty arena */
    core_arena_dispose(&a);
}

/* ---- errors ---- */

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(core_strerror(CORE_E_CORRUPT), "corrupt data");
    assert_string_equal(core_strerror(0), "success");
    assert_non_null(core_strerror(-2)); /* ENOENT */
    assert_string_equal(core_strerror(-99999), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_murmur2_kafka_vectors),
        cmocka_unit_test(test_partition_for_key),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_rfc3339_parse),
        cmocka_unit_test(test_rfc3339_rejects),
        cmocka_unit_test(test_rfc3339_round_trip),
        cmocka_unit_test(test_json_str),
        cmocka_unit_test(test_json_str_random),
        cmocka_unit_test(test_json_numbers),
        cmocka_unit_test(test_json_fixed),
        cmocka_unit_test(test_buf_basics),
        cmocka_unit_test(test_buf_varint),
        cmocka_unit_test(test_buf_fixed_and_zigzag),
        cmocka_unit_test(test_parse_i64),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
