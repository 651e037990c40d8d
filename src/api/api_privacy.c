/*
 * Consent routes:
 *   PUT /v1/users/{userId}/consent   {"analytics":B,"personalization":B,"source":"..","ts":MS}
 *   GET /v1/users/{userId}/consent
 * ?idType=anonymous addresses the consent of an anonymousId instead of a userId.
 *
 * A PUT is stored (journal fsynced, audit entry fsynced) before the reply. When it leaves
 * personalization or analytics withdrawn, a "consent" control event is appended to the log
 * too, so the processor clears the user's state as part of the log (replays and restarts do
 * the same); the reply waits for that append's durability as well.
 */
#include "api/api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUTE_SUFFIX "/consent"

bool api__privacy_route(const char *url)
{
    const char *slash;
    return !strncmp(url, "/v1/users/", 10) && (slash = strchr(url + 10, '/')) &&
           !strcmp(slash, ROUTE_SUFFIX);
}

static void write_state(struct core_buf *o, const struct consent_state *st)
{
    core_buf_printf(o, "{\"analytics\":%s,\"personalization\":%s,\"source\":",
                    st->analytics ? "true" : "false", st->personalization ? "true" : "false");
    core_json_cstr(o, st->source);
    core_buf_printf(o, ",\"ts\":%lld,\"updated\":%lld}", (long long)st->ts, (long long)st->updated);
}

/* {"userId":..,"consent":{current}|null,"default":bool,"history":[oldest first]} */
static void write_view(struct api *api, struct core_buf *o, const char *user, size_t ulen,
                       const char *key)
{
    struct consent_view *v = core_xmalloc(sizeof *v);
    bool known = consent_get(api->cfg.consent, key, v) == 0;
    core_buf_puts(o, "{\"userId\":");
    core_json_str(o, user, ulen);
    core_buf_puts(o, ",\"consent\":");
    if (known)
        write_state(o, &v->history[v->n - 1]);
    else
        core_buf_puts(o, "null");
    /* What applies to a user never asked: allowed unless serve --consent-required. */
    core_buf_printf(o, ",\"allowed\":%s,\"history\":[",
                    consent_decide(api->cfg.consent, key) == CONSENT_ALLOW ? "true" : "false");
    for (int i = 0; known && i < v->n; i++) {
        if (i)
            core_buf_putc(o, ',');
        write_state(o, &v->history[i]);
    }
    core_buf_puts(o, "]}");
    free(v);
}

/* Strict body validation: 42201 naming the field. Returns NULL when valid. */
static const char *parse_consent(const cJSON *root, struct consent_state *st)
{
    memset(st, 0, sizeof *st);
    if (!cJSON_IsObject(root))
        return "the body must be an object {\"analytics\":bool,\"personalization\":bool,...}";
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "analytics");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "personalization");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "source");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "ts");
    for (const cJSON *k = root->child; k; k = k->next) {
        if (strcmp(k->string, "analytics") && strcmp(k->string, "personalization") &&
            strcmp(k->string, "source") && strcmp(k->string, "ts"))
            return "unknown field (allowed: analytics, personalization, source, ts)";
    }
    if (!cJSON_IsBool(a))
        return "/analytics is required and must be a boolean";
    if (!cJSON_IsBool(p))
        return "/personalization is required and must be a boolean";
    if (s && !(cJSON_IsString(s) && strlen(s->valuestring) <= CONSENT_SOURCE_MAX))
        return "/source must be a string of at most 64 bytes";
    if (ts && !(cJSON_IsNumber(ts) && ts->valuedouble >= 0 && ts->valuedouble < 9e15 &&
                ts->valuedouble == (double)(int64_t)ts->valuedouble))
        return "/ts must be an integer (milliseconds since the epoch)";
    st->analytics = cJSON_IsTrue(a);
    st->personalization = cJSON_IsTrue(p);
    snprintf(st->source, sizeof st->source, "%s", s ? s->valuestring : "api");
    st->ts = ts ? (int64_t)ts->valuedouble : core_now_ms();
    return NULL;
}

/* ---- the control event ------------------------------------------------------------------------
 */

struct consent_req {
    struct api *api;
    struct http_request *req;
    struct ingest_item item;
    struct ingest_batch batch;
    bool batch_live;
};

static void consent_req_free(void *p)
{
    struct consent_req *r = p;
    if (r->batch_live)
        ingest_batch_dispose(&r->batch);
    free(r);
}

static void on_control_done(void *arg)
{
    struct consent_req *r = arg;
    if (r->item.status != 0) {
        /* The consent is stored (and enforced) but the state is not cleared yet: the client
         * retries the PUT, which appends the control event again. */
        http_reply_error(r->req, 50303,
                         "consent stored, but the state clearing could not be logged (%s); "
                         "retry the request",
                         r->item.status == CORE_E_FULL ? "log queue full" : "log not writable");
    }
    api__count_reply(r->api, r->req->status);
    http_request_complete(r->req);
}

/* Appends {"userId"|"anonymousId": key, "eventType":"consent", "properties":{..}} through
 * ingest (prekeyed: the id already is the pseudonym). The prepared reply is sent once it is
 * durable. */
static enum http_action append_control(struct api *api, struct http_request *req, const char *key,
                                       bool anon, const struct consent_state *st)
{
    struct consent_req *r = core_xcalloc(1, sizeof *r);
    r->api = api;
    r->req = req;
    req->ctx = r;
    req->ctx_free = consent_req_free;
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, anon ? "anonymousId" : "userId", key);
    cJSON_AddStringToObject(ev, "eventType", "consent");
    cJSON *props = cJSON_AddObjectToObject(ev, "properties");
    cJSON_AddBoolToObject(props, "analytics", st->analytics);
    cJSON_AddBoolToObject(props, "personalization", st->personalization);
    r->item.value = ev;
    r->item.partition = -1;
    r->item.prekeyed = true;
    ingest_batch_init(&r->batch, &r->item, 1);
    r->batch_live = true;
    r->batch.source = req->url;
    r->batch.control = true;
    r->batch.no_deadletters = true;
    ingest_batch_submit(api->ing, &r->batch, on_control_done, r);
    cJSON_Delete(ev); /* ingest reads the tree only until submit returns */
    return HTTP_ASYNC;
}

static enum http_action put_consent(struct api *api, struct http_request *req, const char *user,
                                    size_t ulen, const char *key, bool anon)
{
    struct event_json_pos pos;
    cJSON *root = event_json_parse(req->body.data ? req->body.data : "", req->body.len, &pos);
    if (!root) {
        http_reply_error(req, 40002, "malformed JSON at byte %zu (line %zu, column %zu)%s",
                         pos.offset, pos.line, pos.column, req->body.len ? "" : ": empty body");
        return HTTP_REPLY;
    }
    struct consent_state st;
    const char *bad = parse_consent(root, &st);
    cJSON_Delete(root);
    if (bad) {
        http_reply_error(req, 42201, "%s", bad);
        return HTTP_REPLY;
    }
    char actor[32]; /* the API key that made the change ("api" when auth is off) */
    if (req->auth_key_id[0])
        snprintf(actor, sizeof actor, "key:%s", req->auth_key_id);
    else
        snprintf(actor, sizeof actor, "api");
    int rc = consent_set(api->cfg.consent, key, &st, actor, NULL, NULL);
    if (rc == CORE_E_FULL) {
        http_reply_error(req, 50701,
                         "the consent store is full (serve --consent-max); nothing was stored");
        return HTTP_REPLY;
    }
    if (rc < 0) {
        http_reply_error(req, 50304, "consent could not be stored durably (%s); retry",
                         core_strerror(rc));
        return HTTP_REPLY;
    }
    write_view(api, &req->reply, user, ulen, key);
    if (st.analytics && st.personalization)
        return HTTP_REPLY;
    return append_control(api, req, key, anon, &st);
}

enum http_action api__privacy(struct api *api, struct http_request *req)
{
    if (!api->cfg.consent) {
        http_reply_error(req, 50302, "consent is not served in this role");
        return HTTP_REPLY;
    }
    const char *rest = req->url + 10, *slash = strchr(rest, '/');
    char user[3 * EVENT_USER_MAX + 1];
    size_t n = (size_t)(slash - rest);
    size_t ulen = n > 0 && n <= 3 * EVENT_USER_MAX ? core_percent_decode(rest, n, user, false) : 0;
    if (ulen == 0 || ulen > EVENT_USER_MAX) {
        http_reply_error(req, 40011, "the user id must be 1..%d bytes", EVENT_USER_MAX);
        return HTTP_REPLY;
    }
    const char *idt = http_request_query(req, "idType");
    bool anon = idt && !strcmp(idt, "anonymous");
    if (idt && !anon && strcmp(idt, "user")) {
        http_reply_error(req, 40012, "idType is user or anonymous");
        return HTTP_REPLY;
    }
    char key[EVENT_KEY_HEX + 1];
    if (anon)
        ingest_pseudonym_anon(api->ing, user, ulen, key);
    else
        ingest_pseudonym_user(api->ing, user, ulen, key);
    bool get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
    if (get) {
        /* After a rotation, the record under an older version until a PUT writes a newer. */
        ingest_consent_key(api->ing, anon, user, ulen, key);
        write_view(api, &req->reply, user, ulen, key);
        return HTTP_REPLY;
    }
    if (!strcmp(req->method, "PUT"))
        return put_consent(api, req, user, ulen, key, anon);
    http_reply_error(req, 40501, "method %s not allowed; use GET or PUT", req->method);
    return HTTP_REPLY;
}
