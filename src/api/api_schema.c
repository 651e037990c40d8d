/*
 * Schema registry and dead-letter routes:
 *   GET  /v1/schemas                       list
 *   GET  /v1/schemas/{name}                versions of one schema
 *   GET  /v1/schemas/{name}/{version}      the document as registered ("latest" allowed);
 *        ?view=privacy: {"name","version","closed","pii":[{"property","retention"}]}
 *   PUT  /v1/schemas/{name}/{version}      register (also PUT /v1/schemas/{name}?version=)
 *   GET  /v1/deadletters?after=&limit=     rejected events with their reasons
 *   POST /v1/deadletters/replay            re-submit them (all, or {"ids":[...]})
 */
#include "api/api_int.h"
#include "ingest/deadletter.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Splits "/v1/schemas/name/version" into its parts (pointers into a copy in buf). */
static void split_path(const char *rest, char *buf, size_t size, const char **name,
                       const char **version)
{
    snprintf(buf, size, "%s", rest);
    *name = buf[0] ? buf : NULL;
    *version = NULL;
    char *slash = strchr(buf, '/');
    if (slash) {
        *slash = '\0';
        *version = slash[1] ? slash + 1 : NULL;
    }
}

/* Appends "reasons":[one string per line of text]. */
static void reasons_json(struct core_buf *out, const char *key, const struct core_buf *text)
{
    core_buf_printf(out, "\"%s\":[", key);
    const char *p = text->data ? text->data : "";
    bool first = true;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n) {
            if (!first)
                core_buf_putc(out, ',');
            core_json_str(out, p, n);
            first = false;
        }
        p += n + (nl ? 1 : 0);
    }
    core_buf_putc(out, ']');
}

static void put_schema(struct api *api, struct http_request *req, const char *name,
                       const char *version)
{
    struct core_buf msg;
    core_buf_init(&msg);
    const char *body = req->body.data ? req->body.data : "";
    int rc = schema_registry_put(api->cfg.registry, name, version, body, req->body.len, &msg);
    struct core_buf *out = &req->reply;
    int code = 0;
    const char *what = NULL;
    switch (rc) {
    case 0:
    case 1:
        req->status = rc == 0 ? 201 : 200;
        core_buf_puts(out, "{\"name\":");
        core_json_cstr(out, name);
        core_buf_puts(out, ",\"version\":");
        core_json_cstr(out, version);
        core_buf_printf(out, ",\"created\":%s,", rc == 0 ? "true" : "false");
        reasons_json(out, "breakingChanges", &msg);
        core_buf_putc(out, '}');
        break;
    case CORE_E_INVALID:
        http_reply_error(req, 40003, "%s", msg.data ? msg.data : "invalid schema");
        break;
    case CORE_E_EXISTS:
        code = 40901;
        what = "this version exists with different content; versions are immutable";
        break;
    case SCHEMA_REG_INCOMPATIBLE:
        code = 40902;
        what = "not a compatible ADDITION: bump REVISION or MODEL to declare a breaking change";
        break;
    case SCHEMA_REG_BAD_SEQUENCE:
        code = 40903;
        what = "version out of sequence";
        break;
    case CORE_E_TOOBIG:
        http_reply_error(req, 41303, "schema document too large");
        break;
    case CORE_E_FULL:
        code = 40904;
        what = "registry limit reached";
        break;
    default:
        http_reply_error(req, 50001, "cannot store the schema: %s", schema_registry_strerror(rc));
        break;
    }
    if (code) {
        req->status = code / 100;
        core_buf_printf(out, "{\"error_code\":%d,\"message\":", code);
        core_json_cstr(out, what);
        core_buf_putc(out, ',');
        reasons_json(out, "reasons", &msg);
        core_buf_putc(out, '}');
    }
    core_buf_dispose(&msg);
}

static void pii_json(void *arg, const char *name, enum schema_retention r)
{
    struct core_buf *o = arg;
    if (o->data[o->len - 1] != '[')
        core_buf_putc(o, ',');
    core_buf_puts(o, "{\"property\":");
    core_json_cstr(o, name);
    core_buf_printf(o, ",\"retention\":\"%s\"}", schema_retention_name(r));
}

/* The privacy annotations the compiled schema recorded ("x-pii", "x-retention") and whether
 * undeclared properties are dropped at ingest ("closed"). */
static int privacy_view(struct api *api, struct http_request *req, const char *name,
                        const char *version)
{
    struct schema_version v, found;
    bool latest = !strcmp(version, "latest");
    if (!latest && schema_version_parse(version, strlen(version), &v) < 0)
        return CORE_E_INVALID;
    const struct schema *s =
        schema_registry_resolve(api->cfg.registry, name, strlen(name), latest ? NULL : &v, &found);
    if (!s)
        return CORE_E_NOTFOUND;
    char ver[SCHEMA_VERSION_STR_SIZE];
    schema_version_format(&found, ver, sizeof ver);
    struct core_buf *o = &req->reply;
    core_buf_puts(o, "{\"name\":");
    core_json_cstr(o, name);
    core_buf_printf(o, ",\"version\":\"%s\",\"closed\":%s,\"pii\":[", ver,
                    schema_root_closed(s) ? "true" : "false");
    schema_pii_each(s, pii_json, o);
    core_buf_puts(o, "]}");
    return 0;
}

enum http_action api__schemas(struct api *api, struct http_request *req, const char *rest)
{
    char buf[512];
    const char *name, *version;
    split_path(rest, buf, sizeof buf, &name, &version);
    bool get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
    if (!strcmp(req->method, "PUT") && name) {
        if (!version)
            version = http_request_query(req, "version");
        if (!version) {
            http_reply_error(req, 40004,
                             "give the version: PUT /v1/schemas/%s/MODEL-REVISION-ADDITION", name);
            return HTTP_REPLY;
        }
        put_schema(api, req, name, version);
        return HTTP_REPLY;
    }
    if (!get) {
        http_reply_error(req, 40501, "method %s not allowed", req->method);
        return HTTP_REPLY;
    }
    int rc = 0;
    const char *view = http_request_query(req, "view");
    if (name && version && view && !strcmp(view, "privacy"))
        rc = privacy_view(api, req, name, version);
    else if (!name)
        schema_registry_list_json(api->cfg.registry, &req->reply);
    else if (!version)
        rc = schema_registry_versions_json(api->cfg.registry, name, &req->reply);
    else
        rc = schema_registry_schema_json(api->cfg.registry, name,
                                         strcmp(version, "latest") ? version : NULL, &req->reply);
    if (rc == CORE_E_NOTFOUND)
        http_reply_error(req, 40402, "schema %s%s%s not found", name, version ? "/" : "",
                         version ? version : "");
    else if (rc < 0)
        http_reply_error(req, 40005, "malformed version \"%s\"", version);
    return HTTP_REPLY;
}

/* ---- dead letters ------------------------------------------------------------------------- */

struct replay {
    struct api *api;
    size_t ok, invalid;
};

struct wait_done {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
};

static void on_replayed(void *arg)
{
    struct wait_done *w = arg;
    pthread_mutex_lock(&w->mu);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* A stored dead letter carries pseudonyms as userKey/anonKey: hand them back to ingest in
 * the id fields, marked as already pseudonymised. */
static void rename_member(cJSON *obj, const char *from, const char *to)
{
    cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(obj, from);
    if (v)
        cJSON_AddItemToObject(obj, to, v);
}

static bool replay_one(void *arg, int64_t id, const char *json, size_t len)
{
    (void)id;
    struct replay *rp = arg;
    cJSON *ev = cJSON_ParseWithLength(json, len);
    if (!ev)
        return false;
    rename_member(ev, "userKey", "userId");
    rename_member(ev, "anonKey", "anonymousId");
    struct ingest_item item = {.value = ev, .partition = -1, .prekeyed = true};
    struct ingest_batch b;
    ingest_batch_init(&b, &item, 1);
    b.source = "replay";
    b.no_deadletters = true; /* the store is locked while it hands entries out */
    struct wait_done w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    ingest_batch_submit(rp->api->ing, &b, on_replayed, &w);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    bool ok = item.status == 0;
    ingest_batch_dispose(&b);
    cJSON_Delete(ev);
    if (ok)
        rp->ok++;
    else
        rp->invalid++;
    return ok;
}

static enum http_action replay(struct api *api, struct http_request *req)
{
    int64_t ids[1000];
    size_t n = 0;
    cJSON *body = req->body.len ? cJSON_ParseWithLength(req->body.data, req->body.len) : NULL;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(body, "ids");
    if (req->body.len && (!body || (list && !cJSON_IsArray(list)))) {
        cJSON_Delete(body);
        http_reply_error(req, 40002, "body must be {} or {\"ids\":[...]}");
        return HTTP_REPLY;
    }
    const cJSON *v;
    cJSON_ArrayForEach(v, list)
    {
        if (n < sizeof ids / sizeof *ids && cJSON_IsNumber(v))
            ids[n++] = (int64_t)v->valuedouble;
    }
    bool want_ids = list != NULL;
    cJSON_Delete(body);
    if (want_ids && n == 0) {
        http_reply_error(req, 42202, "\"ids\" is empty");
        return HTTP_REPLY;
    }
    struct replay rp = {.api = api};
    deadletter_take(api->cfg.deadletters, ids, n, replay_one, &rp);
    int64_t live, added, dropped;
    deadletter_stats(api->cfg.deadletters, &live, &added, &dropped);
    core_buf_printf(&req->reply, "{\"replayed\":%zu,\"stillInvalid\":%zu,\"remaining\":%lld}",
                    rp.ok, rp.invalid, (long long)live);
    return HTTP_REPLY;
}

enum http_action api__deadletters(struct api *api, struct http_request *req, const char *rest)
{
    if (!strcmp(rest, "/replay")) {
        if (strcmp(req->method, "POST")) {
            http_reply_error(req, 40501, "method %s not allowed; use POST", req->method);
            return HTTP_REPLY;
        }
        return replay(api, req);
    }
    if (rest[0] || (strcmp(req->method, "GET") && strcmp(req->method, "HEAD"))) {
        http_reply_error(req, 40400, "no route for %s %s", req->method, req->url);
        return HTTP_REPLY;
    }
    int64_t after = 0, limit = 100;
    const char *a = http_request_query(req, "after");
    const char *l = http_request_query(req, "limit");
    if ((a && core_parse_i64(a, 0, INT64_MAX, &after)) ||
        (l && core_parse_i64(l, 1, 1000, &limit))) {
        http_reply_error(req, 40006, "after must be an id >= 0 and limit 1..1000");
        return HTTP_REPLY;
    }
    deadletter_list_json(api->cfg.deadletters, after, (size_t)limit, &req->reply);
    return HTTP_REPLY;
}
