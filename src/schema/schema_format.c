/*
 * Patterns (pcre2, compiled once, JIT when available) and the "format" checks. Formats
 * follow the RFCs draft-07 names (3339 dates, 3986 URIs, 1123 host names, 6901 pointers);
 * the checks are syntactic and never touch the network.
 */
#include "schema/schema_int.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- regular expressions ----------------------------------------------------------------- */

/*
 * Escapes pcre2 knows but ECMA-262 does not (\A, \Z, \z, \G, \Q...\E, \K, \h, \R, \X...).
 * Rejecting them keeps schemas portable to the JavaScript validators the rest of the
 * ecosystem uses, where such a pattern means something else or fails to compile.
 */
static int non_ecma_escape(const char *src)
{
    for (size_t i = 0; src[i]; i++) {
        if (src[i] != '\\')
            continue;
        if (!src[i + 1])
            return 0;
        if (strchr("AZzGQEKhHRXCNgoe", src[i + 1]))
            return src[i + 1];
        i++;
    }
    return 0;
}

pcre2_code *sch__regex_compile(const char *src, char *why, size_t why_size)
{
    int bad = non_ecma_escape(src);
    if (bad) {
        snprintf(why, why_size, "\\%c is not an ECMA-262 regular expression escape", bad);
        return NULL;
    }
    int code;
    PCRE2_SIZE off;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED,
                      PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX, &code, &off, NULL);
    if (!re) {
        char msg[160];
        pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof msg);
        snprintf(why, why_size, "invalid regular expression at offset %zu: %s", (size_t)off, msg);
        return NULL;
    }
    /* JIT is an optimisation: when it is unavailable the interpreter gives the same answers. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

/*
 * One match block per thread, created on first use and freed by the key destructor when
 * the thread exits. Matches never nest, so one block serves every pattern.
 */
static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static _Thread_local pcre2_match_data *tl_md;

static void md_free(void *p)
{
    pcre2_match_data_free(p);
}

static void md_key_create(void)
{
    if (pthread_key_create(&md_key, md_free) != 0)
        abort();
}

static pcre2_match_data *thread_match_data(void)
{
    if (!tl_md) {
        pthread_once(&md_once, md_key_create);
        tl_md = pcre2_match_data_create(1, NULL);
        if (!tl_md) {
            fprintf(stderr, "recstream: out of memory (pcre2 match data)\n");
            abort();
        }
        pthread_setspecific(md_key, tl_md);
    }
    return tl_md;
}

int sch__regex_search(const struct schema *s, const pcre2_code *re, const char *subj, size_t len)
{
    int rc = pcre2_match(re, (PCRE2_SPTR)subj, len, 0, 0, thread_match_data(), s ? s->mctx : NULL);
    if (rc >= 0)
        return 1; /* 0 only means the one-pair ovector was too small: still a match */
    if (rc == PCRE2_ERROR_NOMATCH || (rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21))
        return 0; /* a subject that is not UTF-8 matches nothing */
    return rc;
}

/* ---- formats ----------------------------------------------------------------------------- */

static const char *const format_names[] = {
    [SCH_FMT_DATE_TIME] = "date-time",
    [SCH_FMT_DATE] = "date",
    [SCH_FMT_TIME] = "time",
    [SCH_FMT_EMAIL] = "email",
    [SCH_FMT_IDN_EMAIL] = "idn-email",
    [SCH_FMT_HOSTNAME] = "hostname",
    [SCH_FMT_IPV4] = "ipv4",
    [SCH_FMT_IPV6] = "ipv6",
    [SCH_FMT_URI] = "uri",
    [SCH_FMT_URI_REFERENCE] = "uri-reference",
    [SCH_FMT_IRI] = "iri",
    [SCH_FMT_IRI_REFERENCE] = "iri-reference",
    [SCH_FMT_URI_TEMPLATE] = "uri-template",
    [SCH_FMT_UUID] = "uuid",
    [SCH_FMT_JSON_POINTER] = "json-pointer",
    [SCH_FMT_RELATIVE_JSON_POINTER] = "relative-json-pointer",
    [SCH_FMT_REGEX] = "regex",
};

enum sch_format sch__format_parse(const char *name)
{
    for (size_t i = 1; i < sizeof format_names / sizeof *format_names; i++)
        if (!strcmp(format_names[i], name))
            return (enum sch_format)i;
    return SCH_FMT_NONE;
}

const char *sch__format_name(enum sch_format f)
{
    return f > SCH_FMT_NONE && f <= SCH_FMT_REGEX ? format_names[f] : "";
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Reads exactly n digits at s[*i] as a number; -1 when they are not all digits. */
static int digits(const char *s, size_t len, size_t *i, size_t n)
{
    int v = 0;
    for (size_t k = 0; k < n; k++, (*i)++) {
        if (*i >= len || !is_digit(s[*i]))
            return -1;
        v = v * 10 + (s[*i] - '0');
    }
    return v;
}

static bool full_date(const char *s, size_t len, size_t *i)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = digits(s, len, i, 4);
    if (y < 0 || *i >= len || s[(*i)++] != '-')
        return false;
    int m = digits(s, len, i, 2);
    if (m < 1 || m > 12 || *i >= len || s[(*i)++] != '-')
        return false;
    int d = digits(s, len, i, 2);
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d >= 1 && d <= mdays[m - 1] + (m == 2 && leap);
}

/* RFC 3339 full-time; a leap second is only allowed at 23:59:60 UTC. */
static bool full_time(const char *s, size_t len, size_t *i)
{
    int h = digits(s, len, i, 2);
    if (h < 0 || h > 23 || *i >= len || s[(*i)++] != ':')
        return false;
    int m = digits(s, len, i, 2);
    if (m < 0 || m > 59 || *i >= len || s[(*i)++] != ':')
        return false;
    int sec = digits(s, len, i, 2);
    if (sec < 0 || sec > 60)
        return false;
    if (*i < len && s[*i] == '.') {
        size_t start = ++*i;
        while (*i < len && is_digit(s[*i]))
            (*i)++;
        if (*i == start)
            return false;
    }
    if (*i >= len)
        return false;
    int off = 0;
    char c = s[(*i)++];
    if (c == '+' || c == '-') {
        int oh = digits(s, len, i, 2);
        if (oh < 0 || oh > 23 || *i >= len || s[(*i)++] != ':')
            return false;
        int om = digits(s, len, i, 2);
        if (om < 0 || om > 59)
            return false;
        off = (c == '+' ? 1 : -1) * (oh * 60 + om);
    } else if (c != 'Z' && c != 'z') {
        return false;
    }
    int utc = ((h * 60 + m - off) % 1440 + 1440) % 1440;
    return sec < 60 || utc == 23 * 60 + 59;
}

static bool check_date_time(const char *s, size_t len, enum sch_format f)
{
    size_t i = 0;
    if (f != SCH_FMT_TIME) {
        if (!full_date(s, len, &i))
            return false;
        if (f == SCH_FMT_DATE)
            return i == len;
        if (i >= len || (s[i] != 'T' && s[i] != 't'))
            return false;
        i++;
    }
    return full_time(s, len, &i) && i == len;
}

/* RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens. */
static bool check_hostname(const char *s, size_t len)
{
    if (len == 0 || len > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '-')
            return false;
        if (label == 0 && s[i] == '-')
            return false;
        label++;
    }
    return true;
}

static bool check_ip(const char *s, size_t len, int af)
{
    char buf[64];
    unsigned char addr[16];
    if (len >= sizeof buf || memchr(s, '\0', len))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(af, buf, addr) == 1;
}

/* local@domain: a dot-atom local part (or any non-ASCII for idn-email) and a host name or
 * a bracketed IP literal. */
static bool check_email(const char *s, size_t len, bool idn)
{
    const char *at = memrchr(s, '@', len);
    if (!at || at == s || at == s + len - 1)
        return false;
    size_t local = (size_t)(at - s);
    for (size_t i = 0; i < local; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = is_alpha((char)c) || is_digit((char)c) || strchr("!#$%&'*+/=?^_`{|}~-", c) ||
                  (c == '.' && i > 0 && i + 1 < local && s[i + 1] != '.') || (idn && c >= 0x80);
        if (!ok || c == '\0')
            return false;
    }
    const char *d = at + 1;
    size_t dlen = len - local - 1;
    if (d[0] == '[' && d[dlen - 1] == ']') {
        if (dlen > 6 && !strncmp(d + 1, "IPv6:", 5))
            return check_ip(d + 6, dlen - 7, AF_INET6);
        return check_ip(d + 1, dlen - 2, AF_INET);
    }
    if (idn) {
        for (size_t i = 0; i < dlen; i++)
            if ((unsigned char)d[i] < 0x80 && !is_alpha(d[i]) && !is_digit(d[i]) &&
                !strchr("-.", d[i]))
                return false;
        return dlen > 0;
    }
    return check_hostname(d, dlen);
}

static bool check_uuid(const char *s, size_t len)
{
    if (len != 36)
        return false;
    for (size_t i = 0; i < len; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !is_hex(s[i]))
            return false;
    }
    return true;
}

static bool check_json_pointer(const char *s, size_t len)
{
    if (len > 0 && s[0] != '/')
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '~' && (i + 1 >= len || (s[i + 1] != '0' && s[i + 1] != '1')))
            return false;
    return true;
}

static bool check_relative_pointer(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && is_digit(s[i]))
        i++;
    if (i == 0 || (s[0] == '0' && i > 1))
        return false;
    if (i < len && s[i] == '#')
        return i + 1 == len;
    return check_json_pointer(s + i, len - i);
}

/* RFC 6570: literals outside braces, one level of non-empty {expressions}. */
static bool check_uri_template(const char *s, size_t len)
{
    bool in = false;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '{') {
            if (in)
                return false;
            in = true;
            start = i;
        } else if (c == '}') {
            if (!in || i == start + 1)
                return false;
            in = false;
        } else if (c <= 0x20 || strchr("\"'<>\\^`|", c)) {
            return false;
        }
    }
    return !in;
}

static bool check_regex(const char *s, size_t len)
{
    char why[8];
    if (memchr(s, '\0', len))
        return false;
    pcre2_code *re = sch__regex_compile(s, why, sizeof why);
    bool ok = re != NULL;
    pcre2_code_free(re);
    return ok;
}

bool sch__format_check(enum sch_format f, const char *s, size_t len)
{
    switch (f) {
    case SCH_FMT_DATE_TIME:
    case SCH_FMT_DATE:
    case SCH_FMT_TIME:
        return check_date_time(s, len, f);
    case SCH_FMT_EMAIL:
    case SCH_FMT_IDN_EMAIL:
        return check_email(s, len, f == SCH_FMT_IDN_EMAIL);
    case SCH_FMT_HOSTNAME:
        return check_hostname(s, len);
    case SCH_FMT_IPV4:
        return check_ip(s, len, AF_INET);
    case SCH_FMT_IPV6:
        return check_ip(s, len, AF_INET6);
    case SCH_FMT_URI:
    case SCH_FMT_URI_REFERENCE:
    case SCH_FMT_IRI:
    case SCH_FMT_IRI_REFERENCE:
        return sch__uri_check(s, len, f == SCH_FMT_URI_REFERENCE || f == SCH_FMT_IRI_REFERENCE,
                              f == SCH_FMT_IRI || f == SCH_FMT_IRI_REFERENCE);
    case SCH_FMT_URI_TEMPLATE:
        return check_uri_template(s, len);
    case SCH_FMT_UUID:
        return check_uuid(s, len);
    case SCH_FMT_JSON_POINTER:
        return check_json_pointer(s, len);
    case SCH_FMT_RELATIVE_JSON_POINTER:
        return check_relative_pointer(s, len);
    case SCH_FMT_REGEX:
        return check_regex(s, len);
    default:
        return true;
    }
}
