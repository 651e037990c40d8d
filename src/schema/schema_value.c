/* JSON value helpers for the validator: deep equality, hashing, copies, short previews. */
#include "schema/schema_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* cJSON keeps flags (IsReference, StringIsConst) above the low byte of type. */
static int json_type(const cJSON *j)
{
    return j->type & 0xff;
}

static bool object_equal(const cJSON *a, const cJSON *b)
{
    int na = 0, nb = 0;
    for (const cJSON *m = a->child; m; m = m->next)
        na++;
    for (const cJSON *m = b->child; m; m = m->next)
        nb++;
    if (na != nb)
        return false;
    for (const cJSON *m = a->child; m; m = m->next) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(b, m->string);
        if (!o || !sch__json_equal(m, o))
            return false;
    }
    return true;
}

bool sch__json_equal(const cJSON *a, const cJSON *b)
{
    if (json_type(a) != json_type(b))
        return false;
    switch (json_type(a)) {
    case cJSON_Number:
        return a->valuedouble == b->valuedouble;
    case cJSON_String:
    case cJSON_Raw:
        return strcmp(a->valuestring, b->valuestring) == 0;
    case cJSON_Array: {
        const cJSON *x = a->child, *y = b->child;
        for (; x && y; x = x->next, y = y->next)
            if (!sch__json_equal(x, y))
                return false;
        return !x && !y;
    }
    case cJSON_Object:
        return object_equal(a, b);
    default: /* null, true, false: the type says it all */
        return true;
    }
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

uint64_t sch__json_hash(const cJSON *j)
{
    uint64_t h = (uint64_t)json_type(j) * 0x9e3779b97f4a7c15ULL;
    switch (json_type(j)) {
    case cJSON_Number: {
        double v = j->valuedouble == 0 ? 0.0 : j->valuedouble; /* -0 == 0 */
        return h ^ XXH3_64bits(&v, sizeof v);
    }
    case cJSON_String:
    case cJSON_Raw:
        return h ^ XXH3_64bits(j->valuestring, strlen(j->valuestring));
    case cJSON_Array:
        for (const cJSON *m = j->child; m; m = m->next)
            h = mix(h + sch__json_hash(m));
        return h;
    case cJSON_Object: {
        /* Members are summed so that key order does not matter. */
        uint64_t sum = 0;
        for (const cJSON *m = j->child; m; m = m->next)
            sum += mix(XXH3_64bits(m->string, strlen(m->string)) ^ sch__json_hash(m));
        return h ^ mix(sum);
    }
    default:
        return h;
    }
}

cJSON *sch__json_copy(struct core_arena *a, const cJSON *src)
{
    cJSON *c = core_arena_alloc(a, sizeof *c);
    memset(c, 0, sizeof *c);
    c->type = json_type(src) | cJSON_IsReference;
    c->valueint = src->valueint;
    c->valuedouble = src->valuedouble;
    if (src->valuestring)
        c->valuestring = core_arena_strndup(a, src->valuestring, strlen(src->valuestring));
    if (src->string)
        c->string = core_arena_strndup(a, src->string, strlen(src->string));
    cJSON *prev = NULL;
    for (const cJSON *m = src->child; m; m = m->next) {
        cJSON *k = sch__json_copy(a, m);
        if (prev) {
            prev->next = k;
            k->prev = prev;
        } else {
            c->child = k;
        }
        prev = k;
    }
    if (c->child)
        c->child->prev = prev; /* cJSON keeps the last element in child->prev */
    return c;
}

void sch__num_format(double v, char *out, size_t size)
{
    if (isnan(v)) {
        snprintf(out, size, "NaN");
    } else if (isinf(v)) {
        snprintf(out, size, v > 0 ? "Infinity" : "-Infinity");
    } else if (v == floor(v) && fabs(v) < 1e16) {
        snprintf(out, size, "%.0f", v);
    } else {
        snprintf(out, size, "%.15g", v);
        if (strtod(out, NULL) != v)
            snprintf(out, size, "%.17g", v);
    }
}

size_t sch__utf8_count(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += ((unsigned char)s[i] & 0xc0) != 0x80;
    return count;
}

/* ---- previews ---------------------------------------------------------------------------- */

/* A bounded writer: keeps room for "..." and the NUL, and marks itself full when cut. */
struct preview {
    char *out;
    size_t size, len;
    bool full;
};

static void pv_put(struct preview *p, const char *s, size_t n)
{
    if (p->full)
        return;
    if (p->len + n + 4 > p->size) {
        p->full = true;
        return;
    }
    memcpy(p->out + p->len, s, n);
    p->len += n;
}

static void pv_str(struct preview *p, const char *s)
{
    pv_put(p, "\"", 1);
    for (size_t i = 0; s[i] && !p->full;) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            pv_put(p, esc, 2);
            i++;
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            pv_put(p, esc, 6);
            i++;
        } else {
            /* Copy a whole UTF-8 sequence at once so a cut never splits a character. */
            size_t n = 1;
            while (s[i + n] && ((unsigned char)s[i + n] & 0xc0) == 0x80 && n < 4)
                n++;
            pv_put(p, s + i, n);
            i += n;
        }
    }
    pv_put(p, "\"", 1);
}

static void pv_value(struct preview *p, const cJSON *j)
{
    char num[40];
    switch (json_type(j)) {
    case cJSON_NULL:
        pv_put(p, "null", 4);
        break;
    case cJSON_True:
        pv_put(p, "true", 4);
        break;
    case cJSON_False:
        pv_put(p, "false", 5);
        break;
    case cJSON_Number:
        sch__num_format(j->valuedouble, num, sizeof num);
        pv_put(p, num, strlen(num));
        break;
    case cJSON_String:
    case cJSON_Raw:
        pv_str(p, j->valuestring);
        break;
    case cJSON_Array:
    case cJSON_Object: {
        bool obj = json_type(j) == cJSON_Object;
        pv_put(p, obj ? "{" : "[", 1);
        for (const cJSON *m = j->child; m && !p->full; m = m->next) {
            if (m != j->child)
                pv_put(p, ",", 1);
            if (obj) {
                pv_str(p, m->string);
                pv_put(p, ":", 1);
            }
            pv_value(p, m);
        }
        pv_put(p, obj ? "}" : "]", 1);
        break;
    }
    default:
        pv_put(p, "?", 1);
    }
}

void sch__json_preview(const cJSON *j, char *out, size_t size)
{
    struct preview p = {out, size, 0, false};
    if (size < 8) {
        if (size)
            out[0] = '\0';
        return;
    }
    pv_value(&p, j);
    if (p.full) {
        memcpy(out + p.len, "...", 3);
        p.len += 3;
    }
    out[p.len] = '\0';
}
