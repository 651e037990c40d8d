/*
 * The item catalog routes:
 *   PUT    /v1/items/{itemId}        create or replace one item (201 / 200, the stored item)
 *   GET    /v1/items/{itemId}        the item
 *   DELETE /v1/items/{itemId}        204
 *   POST   /v1/items                 bulk: NDJSON (one item with "itemId" per line) or a JSON
 *                                    array of such items; one journal write and fsync
 *   GET    /v1/items?limit=&after=   a page in idx order
 * /v1/items/{itemId}/stats and /similar stay with the state routes (api_state.c).
 */
#include "api/api_int.h"
#include "catalog/catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_DEFAULT 100
#define PAGE_MAX 1000

static bool is_method(const struct http_request *req, const char *m)
{
    return strcmp(req->method, m) == 0;
}

static bool only_space(const char *p, const char *end)
{
    for (; p < end; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return false;
    }
    return true;
}

static void reply_malformed(struct http_request *req, const struct event_json_pos *pos, size_t line,
                            bool empty)
{
    http_reply_error(req, 40002, "malformed JSON at line %zu, column %zu (byte %zu)%s", line,
                     pos->column, pos->offset,
                     empty           ? ": empty body"
                     : pos->trailing ? ": unexpected data after the JSON value"
                                     : "");
}

static void reply_invalid(struct http_request *req, const struct event_error *err)
{
    req->status = 422;
    core_buf_reset(&req->reply);
    core_buf_puts(&req->reply, "{\"error_code\":42201,\"message\":");
    core_json_cstr(&req->reply, err->message);
    core_buf_puts(&req->reply, ",\"field\":");
    core_json_cstr(&req->reply, err->field);
    core_buf_putc(&req->reply, '}');
}

static void reply_store_error(struct http_request *req, int rc, const struct event_error *err)
{
    if (rc == CORE_E_FULL)
        http_reply_error(req, 40905, "%s", err->message);
    else
        http_reply_error(req, 50001, "cannot store: %s", core_strerror(rc));
}

/* ---- one item ------------------------------------------------------------------------------- */

static void put_item(struct catalog *cat, struct http_request *req, const char *id, size_t len)
{
    const char *body = req->body.data ? req->body.data : "";
    struct event_json_pos pos;
    cJSON *root = event_json_parse(body, req->body.len, &pos);
    if (!root) {
        reply_malformed(req, &pos, pos.line, req->body.len == 0);
        return;
    }
    struct event_error err;
    bool created = false;
    int rc = catalog_put(cat, id, len, root, &created, &err);
    cJSON_Delete(root);
    if (rc == CORE_E_INVALID) {
        reply_invalid(req, &err);
        return;
    }
    if (rc < 0) {
        reply_store_error(req, rc, &err);
        return;
    }
    req->status = created ? 201 : 200;
    if (catalog_get_json(cat, id, len, &req->reply) < 0) {
        /* Deleted again by another request in the meantime. */
        core_buf_puts(&req->reply, "{\"itemId\":");
        core_json_str(&req->reply, id, len);
        core_buf_putc(&req->reply, '}');
    }
}

static enum http_action one_item(struct catalog *cat, struct http_request *req, const char *seg)
{
    char id[3 * EVENT_ITEM_MAX + 2]; /* room for a fully percent-encoded id, and one byte more */
    size_t raw = strlen(seg), len;
    if (raw == 0) {
        http_reply_error(req, 40400, "no route for %s %s", req->method, req->url);
        return HTTP_REPLY;
    }
    /* A longer segment cannot decode to a valid id: keep EVENT_ITEM_MAX + 1 bytes, enough for
     * catalog_put to say so, and for lookups to miss. */
    len = core_percent_decode(seg, raw < sizeof id - 1 ? raw : sizeof id - 1, id, false);
    if (raw >= sizeof id - 1 && len <= EVENT_ITEM_MAX)
        len = EVENT_ITEM_MAX + 1;
    if (is_method(req, "PUT")) {
        put_item(cat, req, id, len);
    } else if (is_method(req, "GET") || is_method(req, "HEAD")) {
        if (catalog_get_json(cat, id, len, &req->reply) < 0)
            http_reply_error(req, 40405, "item not in the catalog");
    } else if (is_method(req, "DELETE")) {
        int rc = catalog_delete(cat, id, len);
        if (rc == CORE_E_NOTFOUND)
            http_reply_error(req, 40405, "item not in the catalog");
        else if (rc < 0)
            http_reply_error(req, 50001, "cannot store: %s", core_strerror(rc));
        else
            req->status = 204;
    } else {
        http_reply_error(req, 40501, "method %s not allowed; use GET, PUT or DELETE", req->method);
    }
    return HTTP_REPLY;
}

/* ---- bulk ----------------------------------------------------------------------------------- */

struct bulk {
    cJSON *root; /* a JSON array body */
    cJSON **lines;
    size_t n;
    struct catalog_put_req *reqs;
};

static void bulk_dispose(struct bulk *b)
{
    cJSON_Delete(b->root);
    for (size_t i = 0; b->lines && i < b->n; i++)
        cJSON_Delete(b->lines[i]);
    free(b->lines);
    free(b->reqs);
}

/* Parses the body into b->reqs: a JSON array, or NDJSON. Replies and returns -1 on failure. */
static int bulk_parse(struct api *api, struct http_request *req, struct bulk *b)
{
    const char *body = req->body.data ? req->body.data : "";
    size_t len = req->body.len, first = 0;
    while (first < len && only_space(body + first, body + first + 1))
        first++;
    struct event_json_pos pos;
    if (first == len) {
        http_reply_error(req, 42202, "the body holds no items");
        return -1;
    }
    if (body[first] == '[') {
        b->root = event_json_parse(body, len, &pos);
        if (!b->root) {
            reply_malformed(req, &pos, pos.line, false);
            return -1;
        }
        b->n = (size_t)cJSON_GetArraySize(b->root);
    } else {
        for (size_t i = 0, start = 0; i <= len; i++) {
            if (i == len || body[i] == '\n') {
                b->n += !only_space(body + start, body + i);
                start = i + 1;
            }
        }
    }
    if ((int64_t)b->n > api->cfg.max_records) {
        http_reply_error(req, 41302, "%zu items exceed the limit of %lld per request", b->n,
                         (long long)api->cfg.max_records);
        return -1;
    }
    if (b->n == 0) {
        http_reply_error(req, 42202, "the body holds no items");
        return -1;
    }
    b->reqs = core_xcalloc(b->n, sizeof *b->reqs);
    if (b->root) {
        size_t k = 0;
        for (const cJSON *e = b->root->child; e; e = e->next)
            b->reqs[k++].obj = e;
        return 0;
    }
    b->lines = core_xcalloc(b->n, sizeof *b->lines);
    size_t k = 0, lineno = 0;
    for (size_t i = 0, start = 0; i <= len; i++) {
        if (i != len && body[i] != '\n')
            continue;
        lineno++;
        if (!only_space(body + start, body + i)) {
            b->lines[k] = event_json_parse(body + start, i - start, &pos);
            if (!b->lines[k]) {
                pos.offset += start;
                reply_malformed(req, &pos, lineno, false);
                return -1;
            }
            b->reqs[k].obj = b->lines[k];
            k++;
        }
        start = i + 1;
    }
    return 0;
}

/* The "itemId" member as given (string or number), or null. */
static void given_id(struct core_buf *out, const cJSON *obj)
{
    const cJSON *v = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, "itemId") : NULL;
    if (cJSON_IsString(v) && v->valuestring)
        core_json_cstr(out, v->valuestring);
    else if (cJSON_IsNumber(v))
        core_json_f64(out, v->valuedouble);
    else
        core_buf_puts(out, "null");
}

static void bulk_reply(struct http_request *req, const struct bulk *b, int stored)
{
    struct core_buf errs;
    core_buf_init(&errs);
    size_t rejected = 0, created = 0;
    const struct catalog_put_req *first = NULL;
    for (size_t i = 0; i < b->n; i++) {
        const struct catalog_put_req *r = &b->reqs[i];
        if (r->rc == 0) {
            created += r->created;
            continue;
        }
        if (!first)
            first = r;
        core_buf_printf(&errs, "%s{\"index\":%zu,\"itemId\":", rejected++ ? "," : "", i);
        given_id(&errs, r->obj);
        core_buf_puts(&errs, ",\"field\":");
        core_json_cstr(&errs, r->err.field);
        core_buf_puts(&errs, ",\"message\":");
        core_json_cstr(&errs, r->err.message);
        core_buf_putc(&errs, '}');
    }
    struct core_buf *out = &req->reply;
    core_buf_reset(out);
    if (stored > 0) {
        req->status = 200;
        core_buf_putc(out, '{');
    } else {
        char msg[400];
        snprintf(msg, sizeof msg, "no item was stored; first error: [%zu] %s%s%s",
                 first ? (size_t)(first - b->reqs) : 0, first ? first->err.field : "",
                 first && first->err.field[0] ? ": " : "", first ? first->err.message : "");
        req->status = 422;
        core_buf_puts(out, "{\"error_code\":42201,\"message\":");
        core_json_cstr(out, msg);
        core_buf_putc(out, ',');
    }
    core_buf_printf(out, "\"accepted\":%d,\"created\":%zu,\"rejected\":%zu,\"errors\":[%s]}",
                    stored, created, rejected, errs.data ? errs.data : "");
    core_buf_dispose(&errs);
}

static void put_bulk(struct api *api, struct http_request *req)
{
    struct bulk b = {0};
    if (bulk_parse(api, req, &b) == 0) {
        int rc = catalog_put_many(api->cfg.catalog, b.reqs, b.n);
        if (rc < 0)
            http_reply_error(req, 50001, "cannot store: %s", core_strerror(rc));
        else
            bulk_reply(req, &b, rc);
    }
    bulk_dispose(&b);
}

/* ---- listing -------------------------------------------------------------------------------- */

static void list_items(struct catalog *cat, struct http_request *req)
{
    const char *lq = http_request_query(req, "limit");
    const char *after = http_request_query(req, "after");
    int64_t limit = PAGE_DEFAULT;
    if (lq && core_parse_i64(lq, 1, PAGE_MAX, &limit) < 0) {
        http_reply_error(req, 40009, "limit must be 1..%d", PAGE_MAX);
        return;
    }
    struct core_buf *out = &req->reply;
    catalog_read_begin(cat);
    uint32_t idx = 0, cap = catalog_capacity(cat);
    if (after && *after) {
        int64_t a = catalog_idx_find(cat, after, strlen(after));
        if (a < 0) {
            catalog_read_end(cat);
            http_reply_error(req, 40009, "after: unknown itemId");
            return;
        }
        idx = (uint32_t)a + 1;
    }
    core_buf_puts(out, "{\"items\":[");
    int64_t n = 0;
    const struct catalog_item *last = NULL;
    for (; idx < cap && n < limit; idx++) {
        const struct catalog_item *it = catalog_at(cat, idx);
        if (!it)
            continue;
        if (n++)
            core_buf_putc(out, ',');
        catalog_item_json(cat, it, out);
        last = it;
    }
    while (idx < cap && !catalog_at(cat, idx))
        idx++;
    core_buf_puts(out, "],\"next\":");
    if (last && idx < cap)
        core_json_str(out, last->id, last->id_len);
    else
        core_buf_puts(out, "null");
    core_buf_puts(out, ",\"total\":");
    core_json_i64(out, catalog_count(cat));
    core_buf_putc(out, '}');
    catalog_read_end(cat);
}

/* ---- the route ------------------------------------------------------------------------------ */

enum http_action api__catalog(struct api *api, struct http_request *req)
{
    struct catalog *cat = api->cfg.catalog;
    if (!cat) {
        http_reply_error(req, 50302, "the item catalog is not available in this role");
        return HTTP_REPLY;
    }
    if (strcmp(req->url, "/v1/items") != 0)
        return one_item(cat, req, req->url + 10);
    if (is_method(req, "GET") || is_method(req, "HEAD"))
        list_items(cat, req);
    else if (is_method(req, "POST"))
        put_bulk(api, req);
    else
        http_reply_error(req, 40501, "method %s not allowed; use GET or POST", req->method);
    return HTTP_REPLY;
}
