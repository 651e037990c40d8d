/* Error strings and aborting allocators. */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *core_strerror(int err)
{
    switch (err) {
#define XX(name, val, msg)                                                                         \
    case val:                                                                                      \
        return msg;
        CORE_ERR_MAP(XX)
#undef XX
    case 0:
        return "success";
    default:
        break;
    }
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}

static void oom(size_t n)
{
    fprintf(stderr, "recstream: out of memory allocating %zu bytes\n", n);
    abort();
}

void *core_xaligned(size_t align, size_t n)
{
    n = (n + align - 1) / align * align;
    void *p = aligned_alloc(align, n ? n : align);
    if (!p)
        oom(n);
    return p;
}

void *core_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *core_xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        oom(count * n);
    return p;
}

void *core_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *core_xstrndup(const char *s, size_t n)
{
    char *p = core_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *core_xstrdup(const char *s)
{
    return core_xstrndup(s, strlen(s));
}
