/* A small escaping JSON writer: replies and dumps are written straight into a buffer. */
#include "core.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

size_t core_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* True when none of the 8 bytes needs a look: no control character, '"', '\\' or non-ASCII
 * byte (each test is the exact "some byte below n" bit trick, n <= 128). */
static inline bool plain8(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t q = v ^ (ones * '"'), bs = v ^ (ones * '\\');
    uint64_t ctl = (v - ones * 0x20) & ~v, quote = (q - ones) & ~q, bsl = (bs - ones) & ~bs;
    return ((ctl | quote | bsl | v) & high) == 0;
}

/* plain8 for 16 bytes, in vector instructions. */
typedef unsigned char v16u __attribute__((vector_size(16)));
typedef signed char v16s __attribute__((vector_size(16)));

static inline bool plain16(const unsigned char *p)
{
    v16u v;
    memcpy(&v, p, sizeof v);
    v16s bad = (v < 0x20) | (v == '"') | (v == '\\') | (v >= 0x80);
    uint64_t w[2];
    memcpy(w, &bad, sizeof w);
    return (w[0] | w[1]) == 0;
}

static inline bool plain_byte(unsigned char c)
{
    return c >= 0x20 && c != '"' && c != '\\' && c < 0x80;
}

/* True when no byte of u[0..n) needs a look; short strings (ids, names) in a few overlapping
 * loads. */
static inline bool plain(const unsigned char *u, size_t n)
{
    if (n < 8) {
        for (size_t i = 0; i < n; i++)
            if (!plain_byte(u[i]))
                return false;
        return true;
    }
    if (n < 16)
        return plain8(u) && plain8(u + n - 8);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        if (!plain16(u + i))
            return false;
    return i == n || plain16(u + n - 16);
}

void core_json_str(struct core_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    if (plain(u, n)) { /* most strings: copied between quotes at once */
        if (b->len + n + 3 > b->cap)
            core_buf_reserve(b, n + 2);
        char *d = b->data + b->len;
        d[0] = '"';
        if (n) /* s may be NULL when empty */
            memcpy(d + 1, s, n);
        d[n + 1] = '"';
        d[n + 2] = 0;
        b->len += n + 2;
        return;
    }
    core_buf_reserve(b, n + 2);
    core_buf_putc(b, '"');
    size_t run = 0; /* start of a run of bytes that need no escaping */
    size_t i = 0;
    while (i < n) {
        while (i + 16 <= n && plain16(u + i)) /* ids, titles, reasons: mostly plain ASCII */
            i += 16;
        while (i + 8 <= n && plain8(u + i))
            i += 8;
        if (i >= n)
            break;
        unsigned char c = u[i];
        if (plain_byte(c)) {
            i++;
            continue;
        }
        size_t ul = c >= 0x80 ? core_utf8_len(u + i, n - i) : 0;
        if (ul > 0) {
            i += ul;
            continue;
        }
        core_buf_append(b, s + run, i - run);
        switch (c) {
        case '"':
            core_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            core_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            core_buf_append(b, "\\n", 2);
            break;
        case '\r':
            core_buf_append(b, "\\r", 2);
            break;
        case '\t':
            core_buf_append(b, "\\t", 2);
            break;
        default:
            if (c < 0x20) {
                char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                core_buf_append(b, esc, 6);
            } else {
                core_buf_append(b, "\xef\xbf\xbd", 3); /* U+FFFD for an invalid byte */
            }
        }
        i++;
        run = i;
    }
    core_buf_append(b, s + run, n - run);
    core_buf_putc(b, '"');
}

void core_json_cstr(struct core_buf *b, const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    core_json_str(b, s, n);
}

void core_json_f64(struct core_buf *b, double v)
{
    if (!isfinite(v)) {
        core_buf_puts(b, "null");
        return;
    }
    if (fabs(v) < 9007199254740992.0 && v == (double)(int64_t)v) {
        core_json_i64(b, (int64_t)v);
        return;
    }
    core_buf_printf(b, "%.17g", v);
}

void core_json_fixed(struct core_buf *b, double v, int decimals)
{
    static const int64_t scale[10] = {1,      10,      100,      1000,      10000,
                                      100000, 1000000, 10000000, 100000000, 1000000000};
    if (decimals < 1 || decimals > 9 || !isfinite(v) || fabs(v) >= 1e15) {
        core_json_f64(b, v);
        return;
    }
    int64_t q = llround(fabs(v) * (double)scale[decimals]);
    int64_t ip = q / scale[decimals], fp = q % scale[decimals];
    if (v < 0 && q > 0)
        core_buf_putc(b, '-');
    core_json_i64(b, ip);
    if (fp == 0)
        return;
    char tmp[12];
    int n = decimals;
    while (fp % 10 == 0) {
        fp /= 10;
        n--;
    }
    tmp[0] = '.';
    for (int i = n; i >= 1; i--) {
        tmp[i] = (char)('0' + fp % 10);
        fp /= 10;
    }
    core_buf_append(b, tmp, (size_t)n + 1);
}

/* Hand-rolled: replies print an offset or two per record, and snprintf's format parsing
 * showed up in profiles of 100-record requests. */
void core_json_i64(struct core_buf *b, int64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    core_buf_append(b, p, (size_t)(tmp + sizeof tmp - p));
}
