/*
 * The event-ingesting routes: Kafka REST Proxy v2 produce, native /v1/events (JSON or
 * NDJSON) and /v1/beacon. Each request body becomes "slots" (one per input record): a slot
 * either failed before validation (bad JSON line, missing value, bad partition) or maps to
 * an ingest item. The reply is written when ingest completes the batch, which may be on
 * the log's writer thread; the connection is suspended meanwhile.
 */
#include "api/api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct slot {
    ssize_t item; /* index into items, or -1 when the slot failed early */
    char field[64];
    char message[192];
};

struct ingest_req {
    struct api *api;
    struct http_request *req;
    enum api_ingest_kind kind;
    cJSON *root; /* the parsed body (JSON bodies) */
    struct slot *slots;
    size_t nslots;
    struct ingest_item *items;
    size_t nitems;
    struct ingest_batch batch;
    bool batch_live;
    struct core_arena json_arena; /* holds the parsed body (see event_json_arena_begin) */
};

static void ingest_req_free(void *p)
{
    struct ingest_req *r = p;
    if (r->batch_live)
        ingest_batch_dispose(&r->batch);
    core_arena_dispose(&r->json_arena); /* frees every parsed tree */
    free(r->slots);
    free(r->items);
    free(r);
}

/* ---- body parsing ------------------------------------------------------------------- */

static bool only_space(const char *p, const char *end)
{
    for (; p < end; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return false;
    }
    return true;
}

static bool content_type_is(const char *ct, const char *want)
{
    size_t n = strlen(want);
    if (!ct || strncasecmp(ct, want, n) != 0)
        return false;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

static bool is_ndjson(const char *ct)
{
    return content_type_is(ct, "application/x-ndjson") ||
           content_type_is(ct, "application/ndjson") ||
           content_type_is(ct, "application/jsonlines") ||
           content_type_is(ct, "application/x-jsonlines");
}

static void slot_error(struct slot *s, const char *field, const char *message)
{
    s->item = -1;
    snprintf(s->field, sizeof s->field, "%s", field);
    snprintf(s->message, sizeof s->message, "%s", message);
}

static struct ingest_item *add_item(struct ingest_req *r, struct slot *s, const cJSON *value,
                                    int32_t partition)
{
    struct ingest_item *it = &r->items[r->nitems];
    memset(it, 0, sizeof *it);
    it->value = value;
    it->partition = partition;
    s->item = (ssize_t)r->nitems++;
    return it;
}

/* Checks the record count against the limits and allocates one slot per record. */
static int start_slots(struct ingest_req *r, size_t n, const char *what)
{
    if (n == 0) {
        http_reply_error(r->req, 42202, "the body holds no %s", what);
        return -1;
    }
    if ((int64_t)n > r->api->cfg.max_records) {
        http_reply_error(r->req, 41302, "%zu %s exceed the limit of %lld per request", n, what,
                         (long long)r->api->cfg.max_records);
        return -1;
    }
    r->nslots = n;
    r->slots = core_xcalloc(n, sizeof *r->slots);
    r->items = core_xcalloc(n, sizeof *r->items);
    return 0;
}

/* Kafka REST: {"records":[{"key"?,"value":EVENT,"partition"?}, ...]} */
static int rest_slots(struct ingest_req *r)
{
    struct http_request *req = r->req;
    const cJSON *records = cJSON_GetObjectItemCaseSensitive(r->root, "records");
    if (!cJSON_IsObject(r->root) || !cJSON_IsArray(records)) {
        http_reply_error(req, 42202, "body must be an object with a \"records\" array");
        return -1;
    }
    size_t n = (size_t)cJSON_GetArraySize(records);
    if (start_slots(r, n, "records") < 0)
        return -1;
    size_t i = 0;
    const cJSON *rec;
    cJSON_ArrayForEach(rec, records)
    {
        struct slot *s = &r->slots[i++];
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(rec, "value");
        const cJSON *part = cJSON_GetObjectItemCaseSensitive(rec, "partition");
        if (!cJSON_IsObject(rec)) {
            slot_error(s, "", "record must be an object");
        } else if (!value || cJSON_IsNull(value)) {
            slot_error(s, "value", "value is required");
        } else if (part && !cJSON_IsNull(part) &&
                   (!cJSON_IsNumber(part) || part->valuedouble < 0 ||
                    part->valuedouble > 2147483647.0 ||
                    part->valuedouble != (double)(int32_t)part->valuedouble)) {
            slot_error(s, "partition", "partition must be a non-negative integer");
        } else {
            int32_t p = part && cJSON_IsNumber(part) ? (int32_t)part->valuedouble : -1;
            add_item(r, s, value, p);
        }
    }
    return 0;
}

/* /v1/events and /v1/beacon JSON bodies: an array of events or one event. */
static int json_slots(struct ingest_req *r)
{
    size_t n = cJSON_IsArray(r->root) ? (size_t)cJSON_GetArraySize(r->root) : 1;
    if (start_slots(r, n, "events") < 0)
        return -1;
    if (!cJSON_IsArray(r->root)) {
        add_item(r, &r->slots[0], r->root, -1);
        return 0;
    }
    size_t i = 0;
    const cJSON *ev;
    cJSON_ArrayForEach(ev, r->root)
    {
        add_item(r, &r->slots[i++], ev, -1);
    }
    return 0;
}

/* NDJSON: one event per non-empty line; a malformed line fails alone. */
static int ndjson_slots(struct ingest_req *r)
{
    const char *body = r->req->body.data ? r->req->body.data : "";
    size_t len = r->req->body.len;
    size_t n = 0;
    for (size_t i = 0, start = 0; i <= len; i++) {
        if (i == len || body[i] == '\n') {
            if (!only_space(body + start, body + i))
                n++;
            start = i + 1;
        }
    }
    if (start_slots(r, n, "events") < 0)
        return -1;
    size_t k = 0, lineno = 0;
    for (size_t i = 0, start = 0; i <= len; i++) {
        if (i != len && body[i] != '\n')
            continue;
        lineno++;
        if (!only_space(body + start, body + i)) {
            struct slot *s = &r->slots[k++];
            struct event_json_pos pos;
            cJSON *v = event_json_parse(body + start, i - start, &pos);
            if (!v) {
                char msg[128];
                snprintf(msg, sizeof msg, "malformed JSON at line %zu, column %zu", lineno,
                         pos.column);
                slot_error(s, "", msg);
            } else {
                add_item(r, s, v, -1);
            }
        }
        start = i + 1;
    }
    return 0;
}

/* ---- replies ------------------------------------------------------------------------ */

static void item_error_text(const struct ingest_item *it, char *out, size_t size,
                            const char *prefix, const char **field, const char **msg)
{
    static const char *storage = "storage failed; retry later";
    if (it->status == CORE_E_INVALID) {
        *field = it->err.field;
        *msg = it->err.message;
    } else {
        *field = "";
        *msg = storage;
    }
    if (**field)
        snprintf(out, size, "%s%s: %s", prefix, *field, *msg);
    else
        snprintf(out, size, "%s", *msg);
}

struct tally {
    size_t ok, dup, invalid, failed;
    size_t dropped; /* accepted, not stored: no consent (counted in ok too) */
    char first_error[256];
};

static void count(struct tally *t, const char *err)
{
    if (!t->first_error[0]) {
        size_t n = strlen(err);
        if (n >= sizeof t->first_error)
            n = sizeof t->first_error - 1;
        memcpy(t->first_error, err, n);
        t->first_error[n] = '\0';
    }
}

/* Starts the reply object: 200 with ok_head, or, when nothing was stored, 422 (or 503 after a
 * storage failure) with the proxy's error_code and message followed by the usual fields. */
static void reply_head(struct http_request *req, const struct tally *t, const char *noun,
                       const char *ok_head)
{
    core_buf_reset(&req->reply);
    if (t->ok + t->dup > 0) {
        req->status = 200;
        core_buf_puts(&req->reply, ok_head);
        return;
    }
    int code = t->failed ? 50301 : 42201;
    req->status = code / 100;
    core_buf_printf(&req->reply, "{\"error_code\":%d,\"message\":", code);
    char msg[400];
    snprintf(msg, sizeof msg, "no %s was stored; first error: %s", noun, t->first_error);
    core_json_cstr(&req->reply, msg);
    core_buf_putc(&req->reply, ',');
}

static void write_rest_offsets(struct ingest_req *r, struct core_buf *b, struct tally *t)
{
    core_buf_puts(b, "\"offsets\":[");
    for (size_t i = 0; i < r->nslots; i++) {
        const struct slot *s = &r->slots[i];
        char err[300];
        if (i)
            core_buf_putc(b, ',');
        const struct ingest_item *it = s->item >= 0 ? &r->items[s->item] : NULL;
        if (it && it->status == 0 && it->dropped_consent) {
            /* Accepted but deliberately not stored (consent): no position, no error. */
            core_buf_puts(b, "{\"partition\":null,\"offset\":null,\"error_code\":null,"
                             "\"error\":null}");
            t->ok++;
            t->dropped++;
            continue;
        }
        if (it && it->status == 0) {
            core_buf_puts(b, "{\"partition\":");
            core_json_i64(b, it->out_partition);
            core_buf_puts(b, ",\"offset\":");
            core_json_i64(b, it->out_offset);
            core_buf_puts(b, ",\"error_code\":null,\"error\":null}");
            if (it->duplicate)
                t->dup++;
            else
                t->ok++;
            continue;
        }
        int code = 42201;
        if (it) {
            const char *field, *msg;
            item_error_text(it, err, sizeof err, "value.", &field, &msg);
            if (it->status != CORE_E_INVALID) {
                code = 50001;
                t->failed++;
            } else {
                t->invalid++;
            }
        } else {
            if (s->field[0])
                snprintf(err, sizeof err, "%s: %s", s->field, s->message);
            else
                snprintf(err, sizeof err, "%s", s->message);
            t->invalid++;
        }
        char where[512];
        snprintf(where, sizeof where, "records[%zu]: %s", i, err);
        count(t, where);
        core_buf_printf(b,
                        "{\"partition\":null,\"offset\":null,\"error_code\":%d,\"error\":", code);
        core_json_cstr(b, err);
        core_buf_putc(b, '}');
    }
    core_buf_putc(b, ']');
}

static void reply_rest(struct ingest_req *r)
{
    struct http_request *req = r->req;
    struct tally t = {0};
    struct core_buf offsets;
    core_buf_init(&offsets);
    write_rest_offsets(r, &offsets, &t);
    reply_head(req, &t, "record", "{\"key_schema_id\":null,\"value_schema_id\":null,");
    core_buf_append(&req->reply, offsets.data, offsets.len);
    if (t.dropped)
        core_buf_printf(&req->reply, ",\"dropped_consent\":%zu", t.dropped);
    core_buf_putc(&req->reply, '}');
    core_buf_dispose(&offsets);
}

static void reply_native(struct ingest_req *r)
{
    struct http_request *req = r->req;
    struct tally t = {0};
    struct core_buf errs, offs;
    core_buf_init(&errs);
    core_buf_init(&offs);
    for (size_t i = 0; i < r->nslots; i++) {
        const struct slot *s = &r->slots[i];
        const struct ingest_item *it = s->item >= 0 ? &r->items[s->item] : NULL;
        if (i)
            core_buf_putc(&offs, ',');
        if (it && it->status == 0 && it->dropped_consent) {
            core_buf_puts(&offs, "null");
            t.ok++;
            t.dropped++;
            continue;
        }
        if (it && it->status == 0) {
            core_buf_puts(&offs, "{\"partition\":");
            core_json_i64(&offs, it->out_partition);
            core_buf_puts(&offs, ",\"offset\":");
            core_json_i64(&offs, it->out_offset);
            core_buf_putc(&offs, '}');
            if (it->duplicate)
                t.dup++;
            else
                t.ok++;
            continue;
        }
        core_buf_puts(&offs, "null");
        const char *field = s->field, *msg = s->message;
        char text[300];
        if (it) {
            item_error_text(it, text, sizeof text, "", &field, &msg);
            if (it->status != CORE_E_INVALID)
                t.failed++;
            else
                t.invalid++;
        } else {
            t.invalid++;
        }
        char where[512];
        snprintf(where, sizeof where, "[%zu] %s%s%s", i, field, *field ? ": " : "", msg);
        count(&t, where);
        if (errs.len)
            core_buf_putc(&errs, ',');
        core_buf_printf(&errs, "{\"index\":%zu,\"field\":", i);
        core_json_cstr(&errs, field);
        core_buf_puts(&errs, ",\"message\":");
        core_json_cstr(&errs, msg);
        core_buf_putc(&errs, '}');
    }
    reply_head(req, &t, "event", "{");
    core_buf_printf(&req->reply,
                    "\"accepted\":%zu,\"duplicates\":%zu,\"droppedConsent\":%zu,\"rejected\":%zu,"
                    "\"errors\":[%s],\"offsets\":[%s]}",
                    t.ok + t.dup, t.dup, t.dropped, t.invalid + t.failed,
                    errs.data ? errs.data : "", offs.data ? offs.data : "");
    core_buf_dispose(&errs);
    core_buf_dispose(&offs);
}

static bool any_overloaded(const struct ingest_req *r)
{
    for (size_t i = 0; i < r->nitems; i++) {
        if (r->items[i].status == CORE_E_FULL)
            return true;
    }
    return false;
}

static void build_reply(struct ingest_req *r)
{
    if (any_overloaded(r)) {
        /* The log took none of this request's new records: the client retries the whole
         * request (repeats of stored eventIds stay repeats). */
        int s = r->api->cfg.retry_after_s;
        http_reply_error(r->req, 42901, "event log queue is full; retry after %d s", s);
        r->req->retry_after_s = s;
    } else if (r->kind == API_INGEST_REST)
        reply_rest(r);
    else
        reply_native(r);
    api__count_reply(r->api, r->req->status);
}

/* Runs when every item has its outcome: possibly on the log writer thread. */
static void on_batch_done(void *arg)
{
    struct ingest_req *r = arg;
    build_reply(r);
    http_request_complete(r->req);
}

/* ---- the route -------------------------------------------------------------------------- */

static int check_content_type(struct ingest_req *r)
{
    const char *ct = http_request_header(r->req, "Content-Type");
    if (r->kind == API_INGEST_BUILT)
        return 0; /* the route validated its own body */
    if (r->kind == API_INGEST_REST) {
        if (content_type_is(ct, "application/vnd.kafka.json.v2+json") ||
            content_type_is(ct, "application/vnd.kafka.v2+json") ||
            content_type_is(ct, "application/json"))
            return 0;
        http_reply_error(r->req, 41501,
                         "Content-Type must be application/vnd.kafka.json.v2+json, not %s",
                         ct ? ct : "(none)");
        return -1;
    }
    if (!ct || content_type_is(ct, "application/json") || content_type_is(ct, "text/plain") ||
        is_ndjson(ct))
        return 0;
    http_reply_error(r->req, 41501,
                     "Content-Type must be application/json, application/x-ndjson or "
                     "text/plain, not %s",
                     ct);
    return -1;
}

static int parse_body(struct ingest_req *r)
{
    struct http_request *req = r->req;
    const char *ct = http_request_header(req, "Content-Type");
    if (r->kind == API_INGEST_EVENTS && is_ndjson(ct))
        return ndjson_slots(r);
    const char *body = req->body.data ? req->body.data : "";
    struct event_json_pos pos;
    r->root = event_json_parse(body, req->body.len, &pos);
    if (!r->root) {
        http_reply_error(req, 40002, "malformed JSON at byte %zu (line %zu, column %zu)%s",
                         pos.offset, pos.line, pos.column,
                         req->body.len == 0 ? ": empty body"
                         : pos.trailing     ? ": unexpected data after the JSON value"
                                            : "");
        return -1;
    }
    if (r->kind == API_INGEST_REST)
        return rest_slots(r);
    return json_slots(r);
}

/* serve --capture-ip: the client's address becomes context.ip of events that carry none
 * (ingest then truncates or drops it). The first X-Forwarded-For address is taken when
 * present, which is only meaningful behind a proxy that sets it. Runs inside the request's
 * JSON arena, so the added nodes die with the parsed body. */
static void capture_ip(struct ingest_req *r)
{
    char ip[64];
    const char *xff = http_request_header(r->req, "X-Forwarded-For");
    if (xff) {
        while (*xff == ' ')
            xff++;
        size_t n = strcspn(xff, ", ");
        if (n == 0 || n >= sizeof ip)
            return;
        memcpy(ip, xff, n);
        ip[n] = '\0';
    } else if (!http_request_peer(r->req, ip, sizeof ip)) {
        return;
    }
    for (size_t i = 0; i < r->nitems; i++) {
        cJSON *ev = (cJSON *)r->items[i].value; /* our own parsed tree */
        if (!cJSON_IsObject(ev))
            continue;
        cJSON *ctx = cJSON_GetObjectItemCaseSensitive(ev, "context");
        if (!ctx)
            ctx = cJSON_AddObjectToObject(ev, "context");
        if (cJSON_IsObject(ctx) && !cJSON_GetObjectItemCaseSensitive(ctx, "ip"))
            cJSON_AddStringToObject(ctx, "ip", ip);
    }
}

enum http_action api__ingest(struct api *api, struct http_request *req, enum api_ingest_kind kind)
{
    struct ingest_req *r = core_xcalloc(1, sizeof *r);
    r->api = api;
    r->req = req;
    r->kind = kind;
    req->ctx = r;
    req->ctx_free = ingest_req_free;
    core_arena_init(&r->json_arena);
    if (check_content_type(r) < 0)
        return HTTP_REPLY;
    /* The trees are only read until submit returns (ingest encodes what it keeps). */
    event_json_arena_begin(&r->json_arena);
    if (parse_body(r) < 0) {
        event_json_arena_end();
        return HTTP_REPLY;
    }
    if (api->cfg.capture_ip && kind != API_INGEST_BUILT)
        capture_ip(r);
    ingest_batch_init(&r->batch, r->items, r->nitems);
    r->batch_live = true;
    r->batch.source = req->url;
    ingest_batch_submit(api->ing, &r->batch, on_batch_done, r);
    event_json_arena_end();
    return HTTP_ASYNC; /* the completion replies; the connection thread frees r later */
}

bool api__role_collector_route(const char *url)
{
    return !strncmp(url, "/topics/", 8) || !strcmp(url, "/v1/events") ||
           !strcmp(url, "/v1/beacon") || !strcmp(url, "/healthz") || !strcmp(url, "/readyz") ||
           !strcmp(url, "/metrics");
}
