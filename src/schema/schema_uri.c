/*
 * URI references (RFC 3986): splitting, resolution against a base for $id and $ref, and the
 * syntax checks behind the uri, uri-reference, iri and iri-reference formats.
 */
#include "schema/schema_int.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

/* The five components of RFC 3986 appendix B; pointers into the original string. */
struct uri {
    const char *scheme, *auth, *path, *query, *frag;
    size_t scheme_len, auth_len, path_len, query_len, frag_len;
    bool has_scheme, has_auth, has_query, has_frag;
};

static void uri_split(const char *s, size_t len, struct uri *u)
{
    memset(u, 0, sizeof *u);
    size_t i = 0, j = 0;
    while (j < len && !strchr(":/?#", s[j]))
        j++;
    if (j > 0 && j < len && s[j] == ':') {
        u->has_scheme = true;
        u->scheme = s;
        u->scheme_len = j;
        i = j + 1;
    }
    if (i + 1 < len && s[i] == '/' && s[i + 1] == '/') {
        u->has_auth = true;
        u->auth = s + i + 2;
        for (i += 2; i < len && !strchr("/?#", s[i]); i++)
            ;
        u->auth_len = (size_t)(s + i - u->auth);
    }
    u->path = s + i;
    while (i < len && s[i] != '?' && s[i] != '#')
        i++;
    u->path_len = (size_t)(s + i - u->path);
    if (i < len && s[i] == '?') {
        u->has_query = true;
        u->query = s + ++i;
        while (i < len && s[i] != '#')
            i++;
        u->query_len = (size_t)(s + i - u->query);
    }
    if (i < len && s[i] == '#') {
        u->has_frag = true;
        u->frag = s + i + 1;
        u->frag_len = len - i - 1;
    }
}

/* ---- resolution -------------------------------------------------------------------------- */

/* RFC 3986 section 5.2.4, appending the result to out. */
static void remove_dots(struct core_buf *out, const char *in, size_t n)
{
    size_t start = out->len;
    core_buf_reserve(out, n + 1);
    size_t i = 0;
    while (i < n) {
        const char *p = in + i;
        size_t rest = n - i;
        if (rest >= 3 && !strncmp(p, "../", 3)) {
            i += 3;
        } else if ((rest >= 2 && !strncmp(p, "./", 2)) || (rest >= 3 && !strncmp(p, "/./", 3))) {
            i += 2; /* "./" goes; "/./" becomes "/" */
        } else if (rest == 2 && !strncmp(p, "/.", 2)) {
            core_buf_putc(out, '/');
            i += 2;
        } else if ((rest >= 4 && !strncmp(p, "/../", 4)) || (rest == 3 && !strncmp(p, "/..", 3))) {
            /* Drops the last output segment; "/../" leaves its "/" as the next input. */
            size_t len = out->len;
            while (len > start && out->data[len - 1] != '/')
                len--;
            out->len = len > start ? len - 1 : len;
            out->data[out->len] = '\0';
            if (rest == 3)
                core_buf_putc(out, '/');
            i += 3;
        } else if ((rest == 1 && p[0] == '.') || (rest == 2 && !strncmp(p, "..", 2))) {
            i = n;
        } else {
            size_t k = p[0] == '/' ? 1 : 0; /* a segment with its leading "/" */
            while (k < rest && p[k] != '/')
                k++;
            core_buf_append(out, p, k);
            i += k;
        }
    }
}

static void put_part(struct core_buf *out, const char *pre, const char *p, size_t n, bool has)
{
    if (!has)
        return;
    core_buf_puts(out, pre);
    core_buf_append(out, p, n);
}

/* The path of ref merged with base's (RFC 3986 section 5.2.3), dots removed. */
static void merge_paths(struct core_buf *out, const struct uri *b, const struct uri *r)
{
    struct core_buf merged;
    core_buf_init(&merged);
    if (b->has_auth && b->path_len == 0) {
        core_buf_putc(&merged, '/');
    } else {
        const char *slash = NULL;
        for (size_t i = 0; i < b->path_len; i++)
            if (b->path[i] == '/')
                slash = b->path + i;
        if (slash)
            core_buf_append(&merged, b->path, (size_t)(slash - b->path) + 1);
    }
    core_buf_append(&merged, r->path, r->path_len);
    remove_dots(out, merged.data, merged.len);
    core_buf_dispose(&merged);
}

char *sch__uri_resolve(struct core_arena *a, const char *base, const char *ref)
{
    struct uri b, r;
    uri_split(base, strlen(base), &b);
    uri_split(ref, strlen(ref), &r);
    struct core_buf out;
    core_buf_init(&out);
    core_buf_reserve(&out, strlen(base) + strlen(ref) + 4);
    if (r.has_scheme) {
        put_part(&out, "", r.scheme, r.scheme_len, true);
        core_buf_putc(&out, ':');
        put_part(&out, "//", r.auth, r.auth_len, r.has_auth);
        remove_dots(&out, r.path, r.path_len);
        put_part(&out, "?", r.query, r.query_len, r.has_query);
    } else {
        if (b.has_scheme) {
            core_buf_append(&out, b.scheme, b.scheme_len);
            core_buf_putc(&out, ':');
        }
        if (r.has_auth) {
            put_part(&out, "//", r.auth, r.auth_len, true);
            remove_dots(&out, r.path, r.path_len);
            put_part(&out, "?", r.query, r.query_len, r.has_query);
        } else {
            put_part(&out, "//", b.auth, b.auth_len, b.has_auth);
            if (r.path_len == 0) {
                core_buf_append(&out, b.path, b.path_len);
                if (r.has_query)
                    put_part(&out, "?", r.query, r.query_len, true);
                else
                    put_part(&out, "?", b.query, b.query_len, b.has_query);
            } else {
                if (r.path[0] == '/')
                    remove_dots(&out, r.path, r.path_len);
                else
                    merge_paths(&out, &b, &r);
                put_part(&out, "?", r.query, r.query_len, r.has_query);
            }
        }
    }
    put_part(&out, "#", r.frag, r.frag_len, r.has_frag);
    char *res = core_arena_strndup(a, out.data ? out.data : "", out.len);
    core_buf_dispose(&out);
    return res;
}

/* ---- syntax checks ----------------------------------------------------------------------- */

static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_hexdig(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Every character unreserved, a sub-delim, %XX, in extra, or (for IRIs) non-ASCII. */
static bool uri_chars(const char *s, size_t n, const char *extra, bool iri)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return false;
            if (!is_hexdig((unsigned char)s[i + 1]) || !is_hexdig((unsigned char)s[i + 2]))
                return false;
            i += 2;
            continue;
        }
        if (c == '\0')
            return false;
        if (is_alnum(c) || strchr("-._~!$&'()*+,;=", c) || (iri && c >= 0x80))
            continue;
        if (!strchr(extra, c))
            return false;
    }
    return true;
}

static bool check_host(const char *h, size_t n, bool iri)
{
    if (n > 0 && h[0] == '[') {
        if (h[n - 1] != ']')
            return false;
        char buf[64];
        unsigned char addr[16];
        if (n - 2 >= sizeof buf)
            return false;
        if (n > 2 && (h[1] == 'v' || h[1] == 'V')) /* IPvFuture */
            return uri_chars(h + 2, n - 3, ":", false);
        memcpy(buf, h + 1, n - 2);
        buf[n - 2] = '\0';
        return inet_pton(AF_INET6, buf, addr) == 1;
    }
    return uri_chars(h, n, "", iri);
}

static bool check_authority(const char *a, size_t n, bool iri)
{
    const char *at = memrchr(a, '@', n);
    if (at) {
        if (!uri_chars(a, (size_t)(at - a), ":", iri))
            return false;
        n -= (size_t)(at + 1 - a);
        a = at + 1;
    }
    size_t host = n;
    /* A port follows the last ':' unless that ':' is inside an IP literal. */
    const char *colon = memrchr(a, ':', n);
    const char *bracket = memrchr(a, ']', n);
    if (colon && (!bracket || colon > bracket)) {
        host = (size_t)(colon - a);
        for (const char *p = colon + 1; p < a + n; p++)
            if (*p < '0' || *p > '9')
                return false;
    }
    return check_host(a, host, iri);
}

bool sch__uri_check(const char *s, size_t len, bool reference, bool iri)
{
    struct uri u;
    if (memchr(s, '\0', len))
        return false;
    uri_split(s, len, &u);
    if (!u.has_scheme && !reference)
        return false;
    if (u.has_scheme) {
        if (!is_alnum((unsigned char)s[0]) || (s[0] >= '0' && s[0] <= '9'))
            return false;
        for (size_t i = 1; i < u.scheme_len; i++)
            if (!is_alnum((unsigned char)s[i]) && !strchr("+-.", s[i]))
                return false;
    } else if (!u.has_auth && memchr(u.path, ':', u.path_len)) {
        /* A relative path's first segment may not hold a ':' (it would read as a scheme). */
        const char *slash = memchr(u.path, '/', u.path_len);
        const char *colon = memchr(u.path, ':', u.path_len);
        if (!slash || colon < slash)
            return false;
    }
    if (u.has_auth && !check_authority(u.auth, u.auth_len, iri))
        return false;
    return uri_chars(u.path, u.path_len, ":@/", iri) &&
           uri_chars(u.query, u.query_len, ":@/?", iri) &&
           uri_chars(u.frag, u.frag_len, ":@/?", iri);
}
