/*
 * One item's fields: validation of the JSON object a put takes (and the journal stores),
 * and the canonical JSON that the journal, the snapshot and readers get back. One writer
 * serves all three, so a stored item always reads back in the shape it was validated in.
 */
#include "catalog/catalog_int.h"
/* The event module's UTF-8 check and validating compact writer: item ids follow the rules
 * of event itemIds, and attributes are stored like event properties. */
#include "event/event_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SAFE_INT 9007199254740992.0 /* 2^53: larger doubles are not exact integers */

enum key {
    K_ITEM_ID,
    K_TITLE,
    K_CATEGORIES,
    K_TAGS,
    K_ATTRIBUTES,
    K_PUBLISHED,
    K_AVAILABLE,
    K_UPDATED,
    K__COUNT
};

static const char *const key_names[K__COUNT] = {
    "itemId", "title", "categories", "tags", "attributes", "publishedAt", "available", "updatedAt",
};

static int fail(struct event_error *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct event_error *err, const char *field, const char *fmt, ...)
{
    snprintf(err->field, sizeof err->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return CORE_E_INVALID;
}

/* Absent and JSON null mean the same, as in events. */
static bool is_absent(const cJSON *v)
{
    return !v || cJSON_IsNull(v);
}

static bool is_exact_integer(double v)
{
    return isfinite(v) && fabs(v) < MAX_SAFE_INT && v == trunc(v);
}

/* "/" + key as a JSON pointer ('~' as "~0", '/' as "~1"), cut to fit. */
static void key_pointer(const char *key, char *out, size_t size)
{
    size_t o = 0;
    out[o++] = '/';
    for (const char *k = key ? key : ""; *k && o + 3 < size; k++) {
        if (*k == '~' || *k == '/') {
            out[o++] = '~';
            out[o++] = *k == '~' ? '0' : '1';
        } else {
            out[o++] = *k;
        }
    }
    out[o] = '\0';
}

int cat__id_check(const char *id, size_t len, struct event_error *err)
{
    if (!id || len == 0 || len > EVENT_ITEM_MAX)
        return fail(err, "/itemId", "must be 1 to %d bytes", EVENT_ITEM_MAX);
    if (memchr(id, '\0', len) || !event__utf8_valid(id, len))
        return fail(err, "/itemId", "must be UTF-8 text without NUL characters");
    return 0;
}

/* The member "itemId": a string or an integer (as in events), equal to id when id is given,
 * and the item's id when it is not. */
static int parse_item_id(const cJSON *v, const char *id, size_t id_len, struct cat_fields *f,
                         struct event_error *err)
{
    const char *s = NULL;
    size_t n = 0;
    if (cJSON_IsString(v) && v->valuestring) {
        s = v->valuestring;
        n = strlen(s);
    } else if (cJSON_IsNumber(v) && is_exact_integer(v->valuedouble)) {
        n = (size_t)snprintf(f->id_num, sizeof f->id_num, "%" PRId64, (int64_t)v->valuedouble);
        s = f->id_num;
    } else if (!is_absent(v)) {
        return fail(err, "/itemId", "must be a string or an integer below 2^53");
    }
    if (id) {
        if (s && (n != id_len || memcmp(s, id, n) != 0))
            return fail(err, "/itemId", "does not match the item's id");
        s = id;
        n = id_len;
    } else if (!s) {
        return fail(err, "/itemId", "is required");
    }
    f->id = s;
    f->id_len = n;
    return cat__id_check(s, n, err);
}

static int parse_title(const cJSON *v, struct cat_fields *f, struct event_error *err)
{
    if (is_absent(v))
        return 0;
    if (!cJSON_IsString(v) || !v->valuestring)
        return fail(err, "/title", "must be a string");
    size_t n = strlen(v->valuestring);
    if (n > CATALOG_TITLE_MAX)
        return fail(err, "/title", "must be at most %d bytes", CATALOG_TITLE_MAX);
    if (!event__utf8_valid(v->valuestring, n))
        return fail(err, "/title", "not valid UTF-8");
    f->title = v->valuestring;
    f->title_len = n;
    return 0;
}

/* categories / tags: at most max non-empty strings, kept once each in first-seen order. */
static int parse_symbols(const cJSON *v, const char *name, int max, const char **out,
                         size_t *out_len, int *nout, struct event_error *err)
{
    char field[64];
    *nout = 0;
    if (is_absent(v))
        return 0;
    snprintf(field, sizeof field, "/%s", name);
    if (!cJSON_IsArray(v))
        return fail(err, field, "must be an array of strings");
    if (cJSON_GetArraySize(v) > max)
        return fail(err, field, "must have at most %d entries", max);
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        size_t n = cJSON_IsString(e) && e->valuestring ? strlen(e->valuestring) : 0;
        snprintf(field, sizeof field, "/%s/%d", name, i);
        if (n == 0 || n > CATALOG_SYMBOL_MAX)
            return fail(err, field, "must be a non-empty string of at most %d bytes",
                        CATALOG_SYMBOL_MAX);
        if (!event__utf8_valid(e->valuestring, n))
            return fail(err, field, "not valid UTF-8");
        bool dup = false;
        for (int k = 0; k < *nout && !dup; k++)
            dup = out_len[k] == n && memcmp(out[k], e->valuestring, n) == 0;
        if (!dup) {
            out[*nout] = e->valuestring;
            out_len[*nout] = n;
            (*nout)++;
        }
    }
    return 0;
}

static int parse_attributes(const cJSON *v, struct cat_fields *f, struct event_error *err)
{
    if (is_absent(v))
        return 0;
    if (!cJSON_IsObject(v))
        return fail(err, "/attributes", "must be an object");
    if (!v->child)
        return 0;
    char *buf = core_xmalloc(CATALOG_ATTRIBUTES_MAX + 1);
    struct event__jw w;
    event__jw_init(&w, buf, CATALOG_ATTRIBUTES_MAX, CATALOG_ATTRIBUTES_MAX);
    int rc = event__jw_value(&w, v);
    if (rc == CORE_E_TOOBIG || (rc == 0 && w.len > CATALOG_ATTRIBUTES_MAX)) {
        rc = fail(err, "/attributes", "must be at most %d bytes as compact JSON",
                  CATALOG_ATTRIBUTES_MAX);
    } else if (rc < 0) {
        rc = fail(err, "/attributes", "%s", w.reason ? w.reason : "invalid value");
    }
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf = core_xrealloc(buf, w.len + 1);
    buf[w.len] = '\0';
    f->attrs = buf;
    f->attrs_len = w.len;
    f->attrs_owned = true;
    return 0;
}

/* An integer number of ms since the epoch or an RFC 3339 string; 0 when absent. */
static int parse_time(const cJSON *v, const char *field, int64_t *out, struct event_error *err)
{
    *out = 0;
    if (is_absent(v))
        return 0;
    if (cJSON_IsNumber(v) && is_exact_integer(v->valuedouble)) {
        *out = (int64_t)v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v) && v->valuestring &&
        core_rfc3339_parse(v->valuestring, strlen(v->valuestring), out) == 0)
        return 0;
    return fail(err, field,
                "must be an integer (ms since the epoch) or an RFC 3339 string "
                "(e.g. \"2024-01-02T03:04:05Z\")");
}

static int parse_available(const cJSON *v, struct cat_fields *f, struct event_error *err)
{
    if (is_absent(v))
        return 0;
    if (!cJSON_IsBool(v))
        return fail(err, "/available", "must be true or false");
    f->available = cJSON_IsTrue(v);
    return 0;
}

/* Picks out the members by name: unknown and repeated names are errors. */
static int collect(const cJSON *obj, const cJSON **v, struct event_error *err)
{
    for (const cJSON *m = obj->child; m; m = m->next) {
        int k = 0;
        while (k < K__COUNT && (!m->string || strcmp(m->string, key_names[k]) != 0))
            k++;
        char field[64];
        key_pointer(m->string, field, sizeof field);
        if (k == K__COUNT)
            return fail(err, field, "unknown field");
        if (v[k])
            return fail(err, field, "appears more than once");
        v[k] = m;
    }
    return 0;
}

int cat__fields_parse(const cJSON *obj, const char *id, size_t id_len, bool restore,
                      struct cat_fields *f, struct event_error *err)
{
    memset(f, 0, sizeof *f);
    f->title = "";
    f->attrs = "{}";
    f->attrs_len = 2;
    f->available = true;
    if (!cJSON_IsObject(obj))
        return fail(err, "", "an item must be a JSON object");
    const cJSON *v[K__COUNT] = {0};
    int rc;
    if ((rc = collect(obj, v, err)) < 0 ||
        (rc = parse_item_id(v[K_ITEM_ID], id, id_len, f, err)) < 0 ||
        (rc = parse_title(v[K_TITLE], f, err)) < 0 ||
        (rc = parse_symbols(v[K_CATEGORIES], "categories", CATALOG_CATEGORIES_MAX, f->categories,
                            f->category_len, &f->ncategories, err)) < 0 ||
        (rc = parse_symbols(v[K_TAGS], "tags", CATALOG_TAGS_MAX, f->tags, f->tag_len, &f->ntags,
                            err)) < 0 ||
        (rc = parse_time(v[K_PUBLISHED], "/publishedAt", &f->published_ms, err)) < 0 ||
        (rc = parse_available(v[K_AVAILABLE], f, err)) < 0 ||
        (restore && (rc = parse_time(v[K_UPDATED], "/updatedAt", &f->updated_ms, err)) < 0) ||
        (rc = parse_attributes(v[K_ATTRIBUTES], f, err)) < 0) {
        cat__fields_dispose(f);
        return rc;
    }
    return 0;
}

void cat__fields_dispose(struct cat_fields *f)
{
    if (f->attrs_owned)
        free((char *)f->attrs);
    f->attrs = "{}";
    f->attrs_len = 2;
    f->attrs_owned = false;
}

static void symbols_json(struct core_buf *out, const char *key, const char *const *s,
                         const size_t *len, int n)
{
    core_buf_printf(out, ",\"%s\":[", key);
    for (int i = 0; i < n; i++) {
        if (i)
            core_buf_putc(out, ',');
        core_json_str(out, s[i], len[i]);
    }
    core_buf_putc(out, ']');
}

void cat__fields_json(const struct cat_fields *f, const char *id, size_t id_len,
                      struct core_buf *out)
{
    core_buf_putc(out, '{');
    if (id) {
        core_buf_puts(out, "\"itemId\":");
        core_json_str(out, id, id_len);
        core_buf_putc(out, ',');
    }
    core_buf_puts(out, "\"title\":");
    core_json_str(out, f->title, f->title_len);
    symbols_json(out, "categories", f->categories, f->category_len, f->ncategories);
    symbols_json(out, "tags", f->tags, f->tag_len, f->ntags);
    core_buf_puts(out, ",\"attributes\":");
    core_buf_append(out, f->attrs, f->attrs_len);
    core_buf_puts(out, ",\"publishedAt\":");
    if (f->published_ms)
        core_json_i64(out, f->published_ms);
    else
        core_buf_puts(out, "null");
    core_buf_puts(out, f->available ? ",\"available\":true" : ",\"available\":false");
    core_buf_puts(out, ",\"updatedAt\":");
    core_json_i64(out, f->updated_ms);
    core_buf_putc(out, '}');
}
