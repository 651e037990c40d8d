/* Growable buffers, little-endian/varint codecs and arenas. */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void core_buf_init(struct core_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void core_buf_dispose(struct core_buf *b)
{
    free(b->data);
    core_buf_init(b);
}

void core_buf_reset(struct core_buf *b)
{
    b->len = 0;
    if (b->cap)
        b->data[0] = '\0';
}

void core_buf_reserve(struct core_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = core_xrealloc(b->data, cap);
    b->cap = cap;
}

void core_buf_printf(struct core_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_end(ap2);
        return;
    }
    if ((size_t)n < sizeof tmp) {
        core_buf_append(b, tmp, (size_t)n);
    } else {
        core_buf_reserve(b, (size_t)n);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

void core_buf_put_u16(struct core_buf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    core_buf_append(b, x, 2);
}

void core_buf_put_u32(struct core_buf *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    core_buf_append(b, x, 4);
}

void core_buf_put_u64(struct core_buf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    core_buf_append(b, x, 8);
}

void core_buf_put_varint(struct core_buf *b, uint64_t v)
{
    uint8_t x[10];
    size_t n = 0;
    while (v >= 0x80) {
        x[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    x[n++] = (uint8_t)v;
    core_buf_append(b, x, n);
}

static int get_le(const uint8_t **p, const uint8_t *end, int nbytes, uint64_t *v)
{
    if (end - *p < nbytes)
        return CORE_E_CORRUPT;
    uint64_t r = 0;
    for (int i = 0; i < nbytes; i++)
        r |= (uint64_t)(*p)[i] << (8 * i);
    *p += nbytes;
    *v = r;
    return 0;
}

int core_get_u16(const uint8_t **p, const uint8_t *end, uint16_t *v)
{
    uint64_t x;
    int rc = get_le(p, end, 2, &x);
    if (rc == 0)
        *v = (uint16_t)x;
    return rc;
}

int core_get_u32(const uint8_t **p, const uint8_t *end, uint32_t *v)
{
    uint64_t x;
    int rc = get_le(p, end, 4, &x);
    if (rc == 0)
        *v = (uint32_t)x;
    return rc;
}

int core_get_u64(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    return get_le(p, end, 8, v);
}

int core_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    const uint8_t *q = *p;
    for (int shift = 0; shift < 64; shift += 7) {
        if (q >= end)
            return CORE_E_CORRUPT;
        uint8_t c = *q++;
        r |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *p = q;
            *v = r;
            return 0;
        }
    }
    return CORE_E_CORRUPT;
}

/* ---- arena ---- */

struct core_arena_chunk {
    struct core_arena_chunk *next;
    size_t size;
    size_t used;
    max_align_t data[];
};

#define ARENA_CHUNK 4096

void core_arena_init(struct core_arena *a)
{
    a->head = NULL;
    a->used = 0;
}

void core_arena_dispose(struct core_arena *a)
{
    struct core_arena_chunk *c = a->head;
    while (c) {
        struct core_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    core_arena_init(a);
}

void core_arena_reset(struct core_arena *a)
{
    if (!a->head)
        return;
    /* Keep the oldest chunk (the tail of the list): it is the one every request needs. */
    struct core_arena_chunk *c = a->head;
    while (c->next) {
        struct core_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    c->used = 0;
    a->head = c;
    a->used = 0;
}

void *core_arena_alloc(struct core_arena *a, size_t n)
{
    size_t align = sizeof(max_align_t);
    n = (n + align - 1) & ~(align - 1);
    struct core_arena_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        /* Chunks double (up to 1 MiB) so big requests need few mallocs. */
        size_t size = c ? (c->size < (1u << 20) ? c->size * 2 : c->size) : ARENA_CHUNK;
        if (size < n)
            size = n;
        c = core_xmalloc(sizeof(*c) + size);
        c->size = size;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    a->used += n;
    return p;
}

char *core_arena_strndup(struct core_arena *a, const char *s, size_t n)
{
    char *p = core_arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void core_buf_metric(struct core_buf *b, const char *name, const char *type, const char *help,
                     int64_t v)
{
    core_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", name, help, name, type, name,
                    (long long)v);
}
