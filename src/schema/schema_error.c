/* Validation errors: recording into the caller's collector, and formatting them as text. */
#include "schema/schema_int.h"

#include <stdio.h>
#include <string.h>

/* Marks a cut string by ending it in "...". */
static void mark_cut(char *buf, size_t size)
{
    memcpy(buf + size - 4, "...", 4);
}

/* Appends one JSON pointer token at w; returns the new length or size when full. */
static size_t put_token(char *out, size_t size, size_t w, const struct sch_ipath *at)
{
    char num[24];
    const char *tok = at->key;
    if (!tok) {
        snprintf(num, sizeof num, "%zu", at->index);
        tok = num;
    }
    if (w + 1 >= size)
        return size;
    out[w++] = '/';
    for (const char *p = tok; *p; p++) {
        bool esc = *p == '~' || *p == '/';
        if (w + 1 + esc >= size)
            return size;
        if (esc) {
            out[w++] = '~';
            out[w++] = *p == '~' ? '0' : '1';
        } else {
            out[w++] = *p;
        }
    }
    return w;
}

static size_t render_path(const struct sch_ipath *at, char *out, size_t size)
{
    if (!at)
        return 0;
    size_t w = render_path(at->up, out, size);
    return w >= size ? size : put_token(out, size, w, at);
}

bool sch__report(const struct sch_vctx *c, const struct sch_node *n, const char *kw,
                 const struct sch_ipath *at, const cJSON *value, const char *fmt, ...)
{
    struct schema_errors *errs = c->errs;
    if (!errs || c->st->aborted)
        return false; /* after a "limit" error the rest is noise */
    errs->total++;
    if (errs->count >= SCHEMA_ERRORS_MAX)
        return true;
    struct schema_error *e = &errs->items[errs->count++];

    size_t w = render_path(at, e->instance_path, sizeof e->instance_path);
    if (w >= sizeof e->instance_path)
        mark_cut(e->instance_path, sizeof e->instance_path);
    else
        e->instance_path[w] = '\0';

    bool own = !strcmp(kw, "false") || !strcmp(kw, "limit");
    int len = snprintf(e->schema_path, sizeof e->schema_path, "%s%s%s", n->path, own ? "" : "/",
                       own ? "" : kw);
    if (len < 0 || (size_t)len >= sizeof e->schema_path)
        mark_cut(e->schema_path, sizeof e->schema_path);
    snprintf(e->keyword, sizeof e->keyword, "%s", kw);

    size_t off = 0;
    if (value) {
        sch__json_preview(value, e->message, 72);
        off = strlen(e->message);
        e->message[off++] = ' ';
    }
    va_list ap;
    va_start(ap, fmt);
    len = vsnprintf(e->message + off, sizeof e->message - off, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof e->message - off)
        mark_cut(e->message, sizeof e->message);
    return true;
}

void schema_errors_init(struct schema_errors *errs)
{
    errs->count = 0;
    errs->total = 0;
}

void schema_error_format(const struct schema_error *e, struct core_buf *out)
{
    core_buf_printf(out, "%s: %s", e->instance_path[0] ? e->instance_path : "(root)", e->message);
}

void schema_errors_format(const struct schema_errors *errs, struct core_buf *out)
{
    for (size_t i = 0; i < errs->count; i++) {
        if (i)
            core_buf_puts(out, "; ");
        schema_error_format(&errs->items[i], out);
    }
    if (errs->total > errs->count)
        core_buf_printf(out, "; ... %zu more", errs->total - errs->count);
}
