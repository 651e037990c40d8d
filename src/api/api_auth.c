/*
 * Access control: the one table saying which role each route needs, and the check that
 * api_handle runs before routing. A route not in the table needs the admin role, so a route
 * added elsewhere is closed until it is listed here (deny by default): an unknown path gets
 * 401 without a key, 403 with a non-admin key and its 404 only with an admin key.
 *
 * Keys arrive as "Authorization: Bearer <key>" or "X-API-Key: <key>"; /v1/beacon also takes
 * "?key=" because navigator.sendBeacon cannot set headers (ingest keys only: a key in a URL
 * ends up in proxy logs and browser history).
 */
#include "api/api_int.h"
#include "privacy/apikey.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

enum {
    ROUTE_QUERY_KEY = 1, /* ?key= accepted */
    ROUTE_METRICS = 2,   /* public unless --metrics-auth, then read */
};

struct api_route {
    const char *method; /* "GET" also covers HEAD */
    const char *path;   /* "*" matches one non-empty path segment */
    enum apikey_role role;
    unsigned flags;
};

#define NONE APIKEY_ROLE_NONE
#define INGEST APIKEY_ROLE_INGEST
#define READ APIKEY_ROLE_READ
#define ADMIN APIKEY_ROLE_ADMIN

static const struct api_route routes[] = {
    /* operations */
    {"GET", "/healthz", NONE, 0},
    {"GET", "/readyz", NONE, 0},
    {"GET", "/metrics", NONE, ROUTE_METRICS},
    /* events (ingest keys may sit in a web page) */
    {"POST", "/topics/*", INGEST, 0},
    {"OPTIONS", "/topics/*", NONE, 0},
    {"POST", "/v1/events", INGEST, 0},
    {"OPTIONS", "/v1/events", NONE, 0},
    {"POST", "/v1/beacon", INGEST, ROUTE_QUERY_KEY},
    {"OPTIONS", "/v1/beacon", NONE, 0},
    {"PUT", "/v1/users/*/preferences", INGEST, 0},
    {"PUT", "/v1/users/*/consent", INGEST, 0},
    {"GET", "/v1/users/*/consent", READ, 0},
    /* reads */
    {"GET", "/v1/users/*/recommendations", READ, 0},
    {"GET", "/v1/users/*/profile", READ, 0},
    {"GET", "/v1/items", READ, 0},
    {"GET", "/v1/items/*", READ, 0},
    {"GET", "/v1/items/*/stats", READ, 0},
    {"GET", "/v1/items/*/similar", READ, 0},
    {"GET", "/v1/trending", READ, 0},
    {"GET", "/v1/stats/*", READ, 0},
    {"GET", "/v1/schemas", READ, 0},
    {"GET", "/v1/schemas/*", READ, 0},
    {"GET", "/v1/schemas/*/*", READ, 0},
    /* administration */
    {"PUT", "/v1/schemas/*", ADMIN, 0},
    {"PUT", "/v1/schemas/*/*", ADMIN, 0},
    {"POST", "/v1/items", ADMIN, 0},
    {"PUT", "/v1/items/*", ADMIN, 0},
    {"DELETE", "/v1/items/*", ADMIN, 0},
    {"GET", "/v1/deadletters", ADMIN, 0},
    {"POST", "/v1/deadletters/replay", ADMIN, 0},
    {"DELETE", "/v1/users/*", ADMIN, 0},
    {"GET", "/v1/users/*/export", ADMIN, 0},
    {"GET", "/v1/erasures/*", ADMIN, 0},
};

#define NROUTES (sizeof routes / sizeof *routes)

static bool method_matches(const char *want, const char *method)
{
    return !strcmp(want, method) || (!strcmp(want, "GET") && !strcmp(method, "HEAD"));
}

static bool path_matches(const char *pat, const char *path)
{
    while (*pat && *path) {
        if (*pat == '*') {
            const char *end = strchr(path, '/');
            size_t n = end ? (size_t)(end - path) : strlen(path);
            if (n == 0)
                return false;
            path += n;
            pat++;
        } else if (*pat++ != *path++) {
            return false;
        }
    }
    return !*pat && !*path;
}

static const struct api_route *route_find(const char *method, const char *path)
{
    for (size_t i = 0; i < NROUTES; i++) {
        if (method_matches(routes[i].method, method) && path_matches(routes[i].path, path))
            return &routes[i];
    }
    return NULL;
}

void api_auth_routes_json(struct core_buf *out)
{
    core_buf_putc(out, '[');
    for (size_t i = 0; i < NROUTES; i++) {
        const struct api_route *r = &routes[i];
        core_buf_printf(out,
                        "%s{\"method\":\"%s\",\"path\":\"%s\",\"role\":\"%s\",\"queryKey\":%s,"
                        "\"metrics\":%s}",
                        i ? "," : "", r->method, r->path, apikey_role_name(r->role),
                        r->flags & ROUTE_QUERY_KEY ? "true" : "false",
                        r->flags & ROUTE_METRICS ? "true" : "false");
    }
    core_buf_putc(out, ']');
}

/* The presented key: Authorization: Bearer, X-API-Key, or (query_ok) ?key=. */
static const char *presented_key(struct http_request *req, bool query_ok, bool *from_query)
{
    *from_query = false;
    const char *h = http_request_header(req, "Authorization");
    if (h && !strncasecmp(h, "Bearer ", 7)) {
        h += 7;
        while (*h == ' ')
            h++;
        return h;
    }
    h = http_request_header(req, "X-API-Key");
    if (h)
        return h;
    if (query_ok && (h = http_request_query(req, "key")) != NULL) {
        *from_query = true;
        return h;
    }
    return NULL;
}

bool api__authorize(struct api *api, struct http_request *req, const char **action)
{
    const struct api_route *r = route_find(req->method, req->url);
    enum apikey_role need = r ? r->role : ADMIN;
    if (r && (r->flags & ROUTE_METRICS) && api->cfg.metrics_auth)
        need = READ;
    *action = need == ADMIN ? (r ? r->path : "*") : NULL;
    req->auth_key_id[0] = '\0';
    if (!api->cfg.keys || need == NONE)
        return true;
    bool from_query;
    const char *key = presented_key(req, r && (r->flags & ROUTE_QUERY_KEY), &from_query);
    int retry = 0;
    enum apikey_verdict v = apikey_store_check(api->cfg.keys, key, key ? strlen(key) : 0, need,
                                               from_query, http_request_header(req, "Origin"),
                                               core_mono_ns(), req->auth_key_id, &retry);
    switch (v) {
    case APIKEY_OK:
        return true;
    case APIKEY_UNAUTHENTICATED:
        atomic_fetch_add(&api->auth_401, 1);
        req->auth_challenge = true;
        http_reply_error(req, 40101,
                         key ? "unknown or revoked API key"
                             : "an API key is required: Authorization: Bearer <key>");
        break;
    case APIKEY_WRONG_ROLE:
        atomic_fetch_add(&api->auth_403, 1);
        http_reply_error(req, 40301, "this API key may not call %s %s (needs the %s role%s)",
                         req->method, req->url, apikey_role_name(need),
                         from_query ? " and only ingest keys may be sent in the URL" : "");
        break;
    case APIKEY_BAD_ORIGIN:
        atomic_fetch_add(&api->auth_403, 1);
        http_reply_error(req, 40301, "this API key is not allowed from this Origin");
        break;
    case APIKEY_LIMITED:
        atomic_fetch_add(&api->auth_429, 1);
        req->retry_after_s = retry;
        http_reply_error(req, 42902, "rate limit of this API key exceeded");
        break;
    }
    /* Browsers need the CORS headers to read the refusal of an event route. */
    req->cors = r && r->role == INGEST;
    return false;
}

void api__audit(struct api *api, struct http_request *req, const char *action, enum http_action a)
{
    if (!api->cfg.audit_fn || !action)
        return;
    char act[160], detail[64];
    snprintf(act, sizeof act, "%s %s", req->method, action);
    if (a == HTTP_ASYNC)
        snprintf(detail, sizeof detail, "{\"status\":null}");
    else
        snprintf(detail, sizeof detail, "{\"status\":%d}", req->status);
    api->cfg.audit_fn(api->cfg.audit_arg, req->auth_key_id, act, req->url, detail);
}
