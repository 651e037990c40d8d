/* Clocks and RFC 3339 timestamps. */
#include "core.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int64_t core_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t core_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct timespec core_deadline_after(int clock, int64_t ms)
{
    struct timespec ts;
    clock_gettime((clockid_t)clock, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Howard Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, size_t n, size_t at, size_t count, int *out)
{
    if (at + count > n)
        return -1;
    int v = 0;
    for (size_t i = 0; i < count; i++) {
        char c = s[at + i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return 0;
}

int core_rfc3339_parse(const char *s, size_t n, int64_t *out_ms)
{
    int y, mo, d, h, mi, sec;
    if (digits(s, n, 0, 4, &y) || n < 20 || s[4] != '-' || digits(s, n, 5, 2, &mo) || s[7] != '-' ||
        digits(s, n, 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s, n, 11, 2, &h) || s[13] != ':' || digits(s, n, 14, 2, &mi) || s[16] != ':' ||
        digits(s, n, 17, 2, &sec))
        return CORE_E_PARSE;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
        return CORE_E_PARSE;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap)
        return CORE_E_PARSE;
    size_t i = 19;
    int64_t frac_ms = 0;
    if (i < n && s[i] == '.') {
        i++;
        size_t start = i;
        int64_t scale = 100;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            frac_ms += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start)
            return CORE_E_PARSE;
    }
    int64_t offset_min = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (digits(s, n, i + 1, 2, &oh) || i + 3 >= n || s[i + 3] != ':' ||
            digits(s, n, i + 4, 2, &om) || oh > 23 || om > 59)
            return CORE_E_PARSE;
        offset_min = (s[i] == '+' ? 1 : -1) * (oh * 60 + om);
        i += 6;
    } else {
        return CORE_E_PARSE;
    }
    if (i != n)
        return CORE_E_PARSE;
    if (sec == 60)
        sec = 59; /* leap second: clamp, as most systems do */
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    *out_ms = secs * 1000 + frac_ms;
    return 0;
}

void core_rfc3339_format(int64_t ms, char *out, size_t out_size)
{
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int msec = (int)(ms - secs * 1000);
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, out_size, "invalid-time");
        return;
    }
    snprintf(out, out_size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, msec);
}

int core_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s)
        return CORE_E_INVALID;
    bool neg = false;
    const char *p = s;
    if (*p == '-') {
        neg = true;
        p++;
    }
    if (!*p)
        return CORE_E_INVALID;
    uint64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return CORE_E_INVALID;
        if (v > (UINT64_MAX - 9) / 10)
            return CORE_E_INVALID;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
            return CORE_E_INVALID;
    }
    int64_t r = neg ? -(int64_t)(v - 1) - 1 : (int64_t)v;
    if (r < min || r > max)
        return CORE_E_INVALID;
    *out = r;
    return 0;
}

int core_parse_scaled(const char *s, const struct core_unit *units, int64_t *out)
{
    size_t n = strlen(s);
    size_t digits_end = 0;
    while (digits_end < n && s[digits_end] >= '0' && s[digits_end] <= '9')
        digits_end++;
    if (digits_end == 0 || digits_end > 15)
        return CORE_E_INVALID;
    char num[16];
    memcpy(num, s, digits_end);
    num[digits_end] = '\0';
    int64_t v;
    if (core_parse_i64(num, 0, INT64_MAX, &v))
        return CORE_E_INVALID;
    for (const struct core_unit *u = units; u->name; u++) {
        if (strcasecmp(s + digits_end, u->name) == 0) {
            if (v > INT64_MAX / u->mult)
                return CORE_E_INVALID;
            *out = v * u->mult;
            return 0;
        }
    }
    return CORE_E_INVALID;
}

int core_parse_size(const char *s, int64_t *out)
{
    static const struct core_unit units[] = {
        {"", 1},          {"b", 1},          {"k", 1024},        {"kb", 1024},
        {"kib", 1024},    {"m", 1 << 20},    {"mb", 1 << 20},    {"mib", 1 << 20},
        {"g", 1LL << 30}, {"gb", 1LL << 30}, {"gib", 1LL << 30}, {NULL, 0},
    };
    return core_parse_scaled(s, units, out);
}
