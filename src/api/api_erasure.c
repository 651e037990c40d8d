/*
 * Right to erasure and right of access (docs/PRIVACY.md):
 *   DELETE /v1/users/{userId}          erase the user: 202 {"erasureId":..,"status":..}
 *   GET    /v1/erasures/{erasureId}    the erasure's receipt (steps, status)
 *   GET    /v1/users/{userId}/export   everything held about the user
 * ?idType=anonymous addresses an anonymousId, as on the consent routes.
 *
 * The erasure itself runs in the server's erasure job (cli/serve_erasure.c) behind
 * api_config.erase_fn; this file parses, replies and reads.
 */
#include "api/api_int.h"
#include "privacy/fieldseal.h"

#include "privacy/erasure.h"
#include "stream/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT_LIMIT_DEFAULT 1000
#define EXPORT_LIMIT_MAX 10000
#define EXPORT_SCAN_MAX 200000 /* records read per request at most (then "nextFrom") */

bool api__erasure_route(const char *url)
{
    if (!strncmp(url, "/v1/erasures/", 13))
        return true;
    if (strncmp(url, "/v1/users/", 10))
        return false;
    const char *slash = strchr(url + 10, '/');
    return !slash || !strcmp(slash, "/export");
}

/* The user of the path and the id type; false after replying with the error. */
static bool parse_user(struct http_request *req, char *user, size_t *ulen, bool *anon)
{
    const char *rest = req->url + 10, *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    *ulen = n > 0 && n <= 3 * EVENT_USER_MAX ? core_percent_decode(rest, n, user, false) : 0;
    if (*ulen == 0 || *ulen > EVENT_USER_MAX) {
        http_reply_error(req, 40011, "the user id must be 1..%d bytes", EVENT_USER_MAX);
        return false;
    }
    const char *idt = http_request_query(req, "idType");
    *anon = idt && !strcmp(idt, "anonymous");
    if (idt && !*anon && strcmp(idt, "user")) {
        http_reply_error(req, 40012, "idType is user or anonymous");
        return false;
    }
    return true;
}

static enum http_action erase_user(struct api *api, struct http_request *req, const char *user,
                                   size_t ulen, const char *key, bool anon)
{
    char actor[32];
    if (req->auth_key_id[0])
        snprintf(actor, sizeof actor, "key:%s", req->auth_key_id);
    else
        snprintf(actor, sizeof actor, "api");
    struct erasure_receipt *r = core_xcalloc(1, sizeof *r);
    int rc = api->cfg.erase_fn(api->cfg.erase_arg, user, ulen, key, anon, actor, r);
    if (rc == CORE_E_FULL)
        http_reply_error(req, 50702, "too many erasure receipts are stored; nothing was done");
    else if (rc < 0)
        http_reply_error(req, 50305, "the erasure could not be recorded durably (%s); retry",
                         core_strerror(rc));
    else {
        req->status = 202;
        core_buf_printf(&req->reply, "{\"erasureId\":\"%s\",\"status\":\"%s\"}", r->id,
                        erasure_status_name(r->status));
    }
    free(r);
    return HTTP_REPLY;
}

static enum http_action get_erasure(struct api *api, struct http_request *req)
{
    const char *id = req->url + 13;
    struct erasure_receipt *r = core_xcalloc(1, sizeof *r);
    if (strlen(id) != ERASURE_ID_HEX || erasures_get(api->cfg.erasures, id, r) < 0)
        http_reply_error(req, 40404, "no erasure with this id");
    else
        erasure_receipt_json(r, &req->reply);
    free(r);
    return HTTP_REPLY;
}

/* ---- export ---------------------------------------------------------------------------------- */

/* Appends an event with its field bundle (field retention) opened and merged back, then
 * ,"expiredFields":[names] when its key was destroyed (the fields are gone for good). */
static void export_event(struct api *api, struct event *ev, struct core_buf *o)
{
    struct core_arena arena;
    core_arena_init(&arena);
    struct event_str expired;
    if (fieldseal_merge(api->cfg.epochkeys, ev, &arena, &expired) < 0)
        LOG_WARN("export: a sealed field bundle does not open; fields left out", NULL);
    event_json_encode(ev, o);
    if (expired.len) {
        core_buf_puts(o, ",\"expiredFields\":");
        fieldseal_names_json(expired, o);
    }
    core_arena_dispose(&arena);
}

/* Appends the user's events of partition p from `from`: at most limit events, reading at most
 * EXPORT_SCAN_MAX records; returns the offset to continue from, or -1 at the log's end. */
static int64_t export_events(struct api *api, int32_t p, const char *key, int64_t from,
                             int64_t limit, struct core_buf *o)
{
    struct evlog_batch b;
    evlog_batch_init(&b);
    struct evlog_partition_stats ps;
    int64_t next = -1, scanned = 0, found = 0;
    if (evlog_stats(api->log, p, &ps) < 0)
        goto out;
    if (from < ps.low_water)
        from = ps.low_water;
    bool first = true;
    while (from < ps.high_water) {
        if (scanned >= EXPORT_SCAN_MAX || found >= limit) {
            next = from;
            break;
        }
        if (evlog_read(api->log, p, from, 256, &b) < 0 || b.n == 0)
            break;
        for (size_t i = 0; i < b.n; i++) {
            const struct evlog_record *rec = &b.recs[i];
            from = rec->offset + 1;
            scanned++;
            struct event ev;
            if (rec->erased || rec->key_len != EVENT_KEY_HEX ||
                memcmp(rec->key, key, EVENT_KEY_HEX) ||
                event_bin_decode(rec->value, rec->value_len, &ev) < 0)
                continue;
            core_buf_printf(o, "%s{\"partition\":%d,\"offset\":%lld,\"event\":", first ? "" : ",",
                            (int)p, (long long)rec->offset);
            export_event(api, &ev, o);
            core_buf_putc(o, '}');
            first = false;
            if (++found >= limit)
                break;
        }
    }
out:
    evlog_batch_dispose(&b);
    return next;
}

static void export_consent(struct api *api, const char *key, struct core_buf *o)
{
    struct consent_view *v = core_xmalloc(sizeof *v);
    if (!api->cfg.consent || consent_get(api->cfg.consent, key, v) < 0) {
        core_buf_puts(o, "null");
        free(v);
        return;
    }
    core_buf_puts(o, "{\"history\":[");
    for (int i = 0; i < v->n; i++) {
        const struct consent_state *st = &v->history[i];
        core_buf_printf(o, "%s{\"analytics\":%s,\"personalization\":%s,\"source\":", i ? "," : "",
                        st->analytics ? "true" : "false", st->personalization ? "true" : "false");
        core_json_cstr(o, st->source);
        core_buf_printf(o, ",\"ts\":%lld,\"updated\":%lld}", (long long)st->ts,
                        (long long)st->updated);
    }
    core_buf_puts(o, "]}");
    free(v);
}

/* One key linked to the exported user: its profile, consent and first `limit` events. */
static void export_linked(struct api *api, const char *key, const char *link, int64_t limit,
                          struct core_buf *o)
{
    core_buf_printf(o, "{\"pseudonym\":\"%s\",\"link\":\"%s\",\"profile\":", key, link);
    int32_t p = core_partition_for_key(key, EVENT_KEY_HEX, stream_partitions(api->cfg.stream));
    size_t mark = o->len;
    if (state_shard_user_json(stream_shard(api->cfg.stream, p), key, o) < 0) {
        o->len = mark;
        core_buf_puts(o, "null");
    }
    core_buf_puts(o, ",\"consent\":");
    export_consent(api, key, o);
    core_buf_puts(o, ",\"events\":[");
    int64_t next = export_events(api, p, key, 0, limit, o);
    core_buf_printf(o, "],\"eventsTruncated\":%s}", next >= 0 ? "true" : "false");
}

/*
 * The keys linked to the user (docs/PRIVACY.md, "Identity"): the pseudonyms under older
 * secret versions still held, and the keys merged into any of them (anonymous ids, older
 * pseudonyms), as "linkedKeys":[...].
 */
static void export_links(struct api *api, const char *user, size_t ulen, bool anon, int64_t limit,
                         struct core_buf *o)
{
    char v[PRIVACY_KEY_VERSIONS_MAX][33];
    int nv = ingest_pseudonym_versions(api->ing, anon, user, ulen, v);
    core_buf_puts(o, ",\"linkedKeys\":[");
    /* Each key once: an older version's pseudonym is usually among the newest's aliases too. */
    char seen[PRIVACY_KEY_VERSIONS_MAX * 33][EVENT_KEY_HEX + 1];
    int nseen = 0;
    for (int i = 0; i < nv; i++)
        memcpy(seen[nseen++], v[i], EVENT_KEY_HEX + 1);
    bool first = true;
    for (int i = 1; api->cfg.stream && i < nv; i++) {
        core_buf_puts(o, first ? "" : ",");
        export_linked(api, v[i], "olderSecretVersion", limit, o);
        first = false;
    }
    for (int i = 0; api->cfg.stream && i < nv; i++) {
        char al[32][EVENT_KEY_HEX + 1];
        int32_t p = core_partition_for_key(v[i], EVENT_KEY_HEX, stream_partitions(api->cfg.stream));
        int na = state_shard_user_aliases(stream_shard(api->cfg.stream, p), v[i], al, 32);
        for (int k = 0; k < na; k++) {
            bool dup = false;
            for (int x = 0; x < nseen && !dup; x++)
                dup = !strcmp(seen[x], al[k]);
            if (dup || nseen == (int)(sizeof seen / sizeof seen[0]))
                continue;
            memcpy(seen[nseen++], al[k], EVENT_KEY_HEX + 1);
            core_buf_puts(o, first ? "" : ",");
            export_linked(api, al[k], "merged", limit, o);
            first = false;
        }
    }
    core_buf_putc(o, ']');
}

static enum http_action export_user(struct api *api, struct http_request *req, const char *user,
                                    size_t ulen, const char *key, bool anon)
{
    int64_t limit = EXPORT_LIMIT_DEFAULT, from = 0;
    const char *q = http_request_query(req, "limit");
    if (q && core_parse_i64(q, 1, EXPORT_LIMIT_MAX, &limit) < 0) {
        http_reply_error(req, 40013, "limit must be an integer in 1..%d", EXPORT_LIMIT_MAX);
        return HTTP_REPLY;
    }
    q = http_request_query(req, "from");
    if (q && core_parse_i64(q, 0, INT64_MAX, &from) < 0) {
        http_reply_error(req, 40014, "from must be a log offset (an integer >= 0)");
        return HTTP_REPLY;
    }
    struct core_buf *o = &req->reply;
    core_buf_printf(o, "{\"%s\":", anon ? "anonymousId" : "userId");
    core_json_str(o, user, ulen);
    core_buf_printf(o, ",\"pseudonym\":\"%s\",\"profile\":", key);
    int32_t p = -1;
    size_t mark = o->len;
    if (api->cfg.stream) {
        p = core_partition_for_key(key, EVENT_KEY_HEX, stream_partitions(api->cfg.stream));
        if (anon || state_shard_user_json(stream_shard(api->cfg.stream, p), key, o) < 0) {
            o->len = mark;
            core_buf_puts(o, "null");
        }
    } else {
        core_buf_puts(o, "null");
    }
    core_buf_puts(o, ",\"consent\":");
    export_consent(api, key, o);
    core_buf_puts(o, ",\"erasures\":");
    char subject[CONSENT_KEY_HEX + 1];
    if (api->cfg.consent && api->cfg.erasures) {
        consent_subject_ref(api->cfg.consent, key, subject);
        erasures_of_subject_json(api->cfg.erasures, subject, o);
    } else {
        core_buf_puts(o, "[]");
    }
    core_buf_puts(o, ",\"events\":[");
    int64_t next = p >= 0 ? export_events(api, p, key, from, limit, o) : -1;
    core_buf_putc(o, ']');
    export_links(api, user, ulen, anon, limit, o);
    core_buf_printf(o, ",\"limit\":%lld,\"nextFrom\":", (long long)limit);
    if (next >= 0)
        core_buf_printf(o, "%lld}", (long long)next);
    else
        core_buf_puts(o, "null}");
    return HTTP_REPLY;
}

enum http_action api__erasure(struct api *api, struct http_request *req)
{
    bool get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
    if (!api->cfg.erasures || !api->cfg.erase_fn) {
        http_reply_error(req, 50302, "erasure and export are not served in this role");
        return HTTP_REPLY;
    }
    if (!strncmp(req->url, "/v1/erasures/", 13)) {
        if (!get) {
            http_reply_error(req, 40501, "method %s not allowed; use GET", req->method);
            return HTTP_REPLY;
        }
        return get_erasure(api, req);
    }
    bool export = strchr(req->url + 10, '/') != NULL;
    if (export ? !get : strcmp(req->method, "DELETE")) {
        http_reply_error(req, 40501, "method %s not allowed; use %s", req->method,
                         export ? "GET" : "DELETE");
        return HTTP_REPLY;
    }
    char user[3 * EVENT_USER_MAX + 1];
    size_t ulen;
    bool anon;
    if (!parse_user(req, user, &ulen, &anon))
        return HTTP_REPLY;
    char key[EVENT_KEY_HEX + 1];
    if (anon)
        ingest_pseudonym_anon(api->ing, user, ulen, key);
    else
        ingest_pseudonym_user(api->ing, user, ulen, key);
    if (export)
        return export_user(api, req, user, ulen, key, anon);
    return erase_user(api, req, user, ulen, key, anon);
}
