/*
 * Queryable state (read-only, concurrent with processing):
 *   GET /v1/users/{userId}/profile
 *   GET /v1/items/{itemId}/stats
 *   GET /v1/items/{itemId}/similar?count=
 *   GET /v1/trending?window=1m|1h|24h&type=view|click|cart|purchase|other&count=
 * Users live in one shard (the partition of their pseudonym); item figures are summed over
 * the shards, neighbour and trending lists merged.
 */
#include "api/api_int.h"
#include "stream/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_MAX 100

static const char *group_names[STATE_G__COUNT] = {"view", "click", "cart", "purchase", "other"};
static const char *window_names[STATE_W__COUNT] = {"1m", "1h", "24h"};

/* Percent-decodes a path segment into out; false when empty or too long. */
static bool path_segment(const char *s, size_t n, char *out, size_t size, size_t *len)
{
    if (n == 0 || n >= size)
        return false;
    *len = core_percent_decode(s, n, out, false);
    return *len > 0 && *len <= EVENT_ITEM_MAX; /* ids (user and item) are at most 256 bytes */
}

static int64_t query_count(struct http_request *req, int64_t dflt)
{
    const char *c = http_request_query(req, "count");
    int64_t v;
    if (!c)
        return dflt;
    if (core_parse_i64(c, 1, LIST_MAX, &v))
        return -1;
    return v;
}

/* Per-shard (id, score) lists, merged by write_list: scores of the same id are summed. */
struct merged {
    struct state_neighbour *items;
    int n, cap;
};

static void merge_add(struct merged *m, const struct state_neighbour *nb)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 64;
        m->items = core_xrealloc(m->items, (size_t)m->cap * sizeof *m->items);
    }
    m->items[m->n++] = *nb;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const struct state_neighbour *)a)->item_id,
                  ((const struct state_neighbour *)b)->item_id);
}

static int by_score(const void *a, const void *b)
{
    const struct state_neighbour *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return strcmp(x->item_id, y->item_id);
}

/* Sums the scores of equal ids (sort by id, fold neighbours), then orders by score desc, id
 * asc: O(n log n) over every shard's list instead of a search per entry. */
static void merge_finish(struct merged *m)
{
    if (m->n == 0)
        return; /* items is NULL: qsort's pointer must not be (UBSan) */
    qsort(m->items, (size_t)m->n, sizeof *m->items, by_id);
    int k = 0;
    for (int i = 0; i < m->n; i++) {
        if (k > 0 && !strcmp(m->items[k - 1].item_id, m->items[i].item_id))
            m->items[k - 1].score += m->items[i].score;
        else
            m->items[k++] = m->items[i];
    }
    m->n = k;
    qsort(m->items, (size_t)m->n, sizeof *m->items, by_score);
}

static void write_list(struct core_buf *out, const char *key, struct merged *m, int count,
                       const char *score_name)
{
    merge_finish(m);
    core_buf_printf(out, "\"%s\":[", key);
    for (int i = 0; i < m->n && i < count; i++) {
        core_buf_puts(out, i ? ",{\"itemId\":" : "{\"itemId\":");
        core_json_cstr(out, m->items[i].item_id);
        core_buf_printf(out, ",\"%s\":", score_name);
        core_json_f64(out, m->items[i].score);
        core_buf_putc(out, '}');
    }
    core_buf_putc(out, ']');
}

void api__user_key(struct api *api, const char *id, size_t n, bool anon, char *key)
{
    api__user_keys(api, id, n, anon, key, NULL);
}

void api__user_keys(struct api *api, const char *id, size_t n, bool anon, char *key, char *newest)
{
    if (!api->ing) { /* role api: the newest secret version (what processors move users to) */
        if (anon)
            privacy_pseudonym_anon(api->cfg.pseudonym_key, id, n, key);
        else
            privacy_pseudonym_user(api->cfg.pseudonym_key, id, n, key);
        if (newest)
            memcpy(newest, key, EVENT_KEY_HEX + 1);
        return;
    }
    char v[PRIVACY_KEY_VERSIONS_MAX][33];
    int nv = ingest_pseudonym_versions(api->ing, anon, id, n, v);
    int pick = 0;
    for (int i = 0; api->cfg.stream && nv > 1 && i < nv; i++) {
        int32_t p = core_partition_for_key(v[i], EVENT_KEY_HEX, stream_partitions(api->cfg.stream));
        if (state_shard_user_known(stream_shard(api->cfg.stream, p), v[i])) {
            pick = i;
            break;
        }
    }
    memcpy(key, v[pick], EVENT_KEY_HEX + 1);
    if (newest)
        memcpy(newest, v[0], EVENT_KEY_HEX + 1);
}

/* The shards item reads go over: the stream's, or (role api) the restored ones. */
static int32_t nshards(const struct api *api)
{
    return api->cfg.stream ? stream_partitions(api->cfg.stream) : api->cfg.nshards;
}

static struct state_shard *shard(const struct api *api, int32_t p)
{
    return api->cfg.stream ? stream_shard(api->cfg.stream, p) : api->cfg.shards[p];
}

static enum http_action user_profile(struct api *api, struct http_request *req, const char *id,
                                     size_t len)
{
    char key[EVENT_KEY_HEX + 1];
    const char *idt = http_request_query(req, "idType"); /* anonymous: an anonymousId's */
    if (idt && strcmp(idt, "anonymous") && strcmp(idt, "user")) {
        http_reply_error(req, 40012, "idType is user or anonymous");
        return HTTP_REPLY;
    }
    bool anon = idt && !strcmp(idt, "anonymous");
    char newest[EVENT_KEY_HEX + 1];
    api__user_keys(api, id, len, anon, key, newest);
    /* A withdrawal hides the profile at once; the processor deletes it shortly after. */
    if (api->cfg.consent &&
        ingest_consent_decide_key(api->ing, anon, id, len, newest) != CONSENT_ALLOW) {
        http_reply_error(req, 40403, "no profile for this user (no personalization consent)");
        return HTTP_REPLY;
    }
    int32_t p = core_partition_for_key(key, EVENT_KEY_HEX, stream_partitions(api->cfg.stream));
    if (state_shard_user_json(stream_shard(api->cfg.stream, p), key, &req->reply) < 0)
        http_reply_error(req, 40403, "no profile for this user");
    return HTTP_REPLY;
}

static enum http_action item_stats(struct api *api, struct http_request *req, const char *id,
                                   size_t len)
{
    struct state_item_view v;
    memset(&v, 0, sizeof v);
    for (int32_t p = 0; p < nshards(api); p++)
        state_shard_item_view(shard(api, p), id, len, &v);
    if (!v.found) {
        http_reply_error(req, 40404, "no stats for this item");
        return HTTP_REPLY;
    }
    struct core_buf *out = &req->reply;
    core_buf_puts(out, "{\"itemId\":");
    core_json_str(out, id, len);
    core_buf_puts(out, ",\"counts\":{");
    for (int w = 0; w < STATE_W__COUNT; w++) {
        core_buf_printf(out, "%s\"%s\":{", w ? "," : "", window_names[w]);
        for (int g = 0; g < STATE_G__COUNT; g++) {
            core_buf_printf(out, "%s\"%s\":", g ? "," : "", group_names[g]);
            core_json_i64(out, v.counts[w][g]);
        }
        core_buf_putc(out, '}');
    }
    core_buf_puts(out, "},\"popularity\":");
    core_json_f64(out, v.popularity);
    core_buf_puts(out, ",\"impressions\":");
    core_json_i64(out, v.impressions);
    core_buf_puts(out, ",\"clicks\":");
    core_json_i64(out, v.clicks);
    core_buf_puts(out, ",\"ctr\":");
    core_json_f64(out, v.impressions ? (double)v.clicks / (double)v.impressions : 0.0);
    core_buf_puts(out, ",\"lastSeen\":");
    core_json_i64(out, v.last_seen_ms);
    core_buf_putc(out, '}');
    return HTTP_REPLY;
}

static enum http_action item_similar(struct api *api, struct http_request *req, const char *id,
                                     size_t len)
{
    int64_t count = query_count(req, 10);
    if (count < 0) {
        http_reply_error(req, 40007, "count must be 1..%d", LIST_MAX);
        return HTTP_REPLY;
    }
    struct merged m = {0};
    struct state_neighbour nb[LIST_MAX];
    int64_t as_of = core_now_ms();
    bool known = false;
    for (int32_t p = 0; p < nshards(api); p++) {
        struct state_shard *sh = shard(api, p);
        struct state_item_view v;
        memset(&v, 0, sizeof v);
        state_shard_item_view(sh, id, len, &v);
        known = known || v.found;
        int n = state_shard_neighbours(sh, id, len, as_of, nb, LIST_MAX);
        for (int i = 0; i < n; i++)
            merge_add(&m, &nb[i]);
    }
    if (!known) {
        free(m.items);
        http_reply_error(req, 40404, "unknown item");
        return HTTP_REPLY;
    }
    core_buf_puts(&req->reply, "{\"itemId\":");
    core_json_str(&req->reply, id, len);
    core_buf_putc(&req->reply, ',');
    write_list(&req->reply, "similar", &m, (int)count, "score");
    core_buf_putc(&req->reply, '}');
    free(m.items);
    return HTTP_REPLY;
}

static enum http_action trending(struct api *api, struct http_request *req)
{
    const char *wq = http_request_query(req, "window");
    const char *tq = http_request_query(req, "type");
    int w = STATE_W_1H, g = -1;
    if (wq) {
        for (w = 0; w < STATE_W__COUNT && strcmp(wq, window_names[w]); w++)
            ;
    }
    if (tq && *tq) {
        for (g = 0; g < STATE_G__COUNT && strcmp(tq, group_names[g]); g++)
            ;
    }
    int64_t count = query_count(req, 10);
    if (w == STATE_W__COUNT || g == STATE_G__COUNT || count < 0) {
        http_reply_error(req, 40008,
                         "window is 1m, 1h or 24h; type view, click, cart, purchase "
                         "or other; count 1..%d",
                         LIST_MAX);
        return HTTP_REPLY;
    }
    struct merged m = {0};
    struct state_neighbour nb[LIST_MAX];
    for (int32_t p = 0; p < nshards(api); p++) {
        int n = state_shard_top_items(shard(api, p), (enum state_window)w, g, nb, LIST_MAX);
        for (int i = 0; i < n; i++)
            merge_add(&m, &nb[i]);
    }
    core_buf_printf(&req->reply, "{\"window\":\"%s\",\"type\":", window_names[w]);
    if (g < 0)
        core_buf_puts(&req->reply, "null,");
    else
        core_buf_printf(&req->reply, "\"%s\",", group_names[g]);
    write_list(&req->reply, "items", &m, (int)count, "count");
    core_buf_putc(&req->reply, '}');
    free(m.items);
    return HTTP_REPLY;
}

enum http_action api__state(struct api *api, struct http_request *req)
{
    const char *url = req->url;
    if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD")) {
        http_reply_error(req, 40501, "method %s not allowed; use GET", req->method);
        return HTTP_REPLY;
    }
    if (!api->cfg.stream && !api->cfg.shards) {
        http_reply_error(req, 50302, "stream processing is not running in this role");
        return HTTP_REPLY;
    }
    if (!strcmp(url, "/v1/trending"))
        return trending(api, req);
    char id[3 * EVENT_ITEM_MAX + 1]; /* room for a fully percent-encoded id */
    size_t len;
    const char *rest, *slash;
    if (!strncmp(url, "/v1/users/", 10)) {
        rest = url + 10;
        slash = strchr(rest, '/');
        if (slash && !strcmp(slash, "/profile") &&
            path_segment(rest, (size_t)(slash - rest), id, sizeof id, &len))
            return user_profile(api, req, id, len);
    } else if (!strncmp(url, "/v1/items/", 10)) {
        rest = url + 10;
        slash = strchr(rest, '/');
        if (slash && path_segment(rest, (size_t)(slash - rest), id, sizeof id, &len)) {
            if (!strcmp(slash, "/stats"))
                return item_stats(api, req, id, len);
            if (!strcmp(slash, "/similar"))
                return item_similar(api, req, id, len);
        }
    }
    http_reply_error(req, 40400, "no route for %s %s", req->method, url);
    return HTTP_REPLY;
}
