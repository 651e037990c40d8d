/*
 * Recommendation routes:
 *   GET /v1/users/{userId}/recommendations?count=&category=&exclude=a,b&context.device=
 *       &context.locale=
 *   PUT /v1/users/{userId}/preferences   {"categories":[...]}  (onboarding; becomes a
 *       "preferences" event through the normal ingest path, so it is durable and replayed)
 *   GET /v1/items/{itemId}/similar?count=
 *   GET /v1/stats/ctr?window=1h|24h|all
 */
#include "api/api_int.h"
#include "privacy/privacy.h"
#include "reco/reco.h"
#include "stream/stream.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXCLUDE_MAX 100
#define CTR_ROWS 512

/* A recommendation's result (~70 KiB: room for RECO_COUNT_MAX items) per thread, kept: a
 * malloc and free of that size per request was a visible share of the request's CPU. */
static pthread_key_t result_key;
static pthread_once_t result_once = PTHREAD_ONCE_INIT;

static void result_key_init(void)
{
    pthread_key_create(&result_key, free);
}

static struct reco_result *thread_result(void)
{
    pthread_once(&result_once, result_key_init);
    struct reco_result *res = pthread_getspecific(result_key);
    if (!res) {
        res = core_xmalloc(sizeof *res);
        pthread_setspecific(result_key, res);
    }
    return res;
}

static bool segment(const char *s, size_t n, char *out, size_t *len)
{
    if (n == 0 || n > 3 * EVENT_ITEM_MAX)
        return false;
    *len = core_percent_decode(s, n, out, false);
    out[*len] = 0;
    return *len > 0 && *len <= EVENT_ITEM_MAX && !memchr(out, 0, *len);
}

static enum http_action recommendations(struct api *api, struct http_request *req, const char *user,
                                        size_t ulen)
{
    int64_t count = 10;
    const char *c = http_request_query(req, "count");
    if (c && core_parse_i64(c, 1, RECO_COUNT_MAX, &count)) {
        http_reply_error(req, 40009, "count must be 1..%d", RECO_COUNT_MAX);
        return HTTP_REPLY;
    }
    char key[EVENT_KEY_HEX + 1], newest[EVENT_KEY_HEX + 1];
    /* key: an older secret version's, when only it has state */
    api__user_keys(api, user, ulen, false, key, newest);
    /* Without personalization consent the user's state is never read: withdrawal takes
     * effect with this very request, before the processor has cleared the state. */
    bool personal_ok = !api->cfg.consent || ingest_consent_decide_key(api->ing, false, user, ulen,
                                                                      newest) == CONSENT_ALLOW;
    struct reco_request rq = {.user_key = key, .count = (int)count, .anonymous = !personal_ok};
    const char *cat = http_request_query(req, "category");
    rq.category = cat && *cat ? cat : NULL;
    rq.device = http_request_query(req, "context.device");
    rq.locale = http_request_query(req, "context.locale");
    const char *ex = http_request_query(req, "exclude");
    const char *ids[EXCLUDE_MAX];
    size_t lens[EXCLUDE_MAX];
    while (ex && *ex && rq.nexclude < EXCLUDE_MAX) {
        const char *end = strchr(ex, ',');
        size_t n = end ? (size_t)(end - ex) : strlen(ex);
        if (n > 0) {
            ids[rq.nexclude] = ex;
            lens[rq.nexclude++] = n;
        }
        ex = end ? end + 1 : NULL;
    }
    rq.exclude = ids;
    rq.exclude_len = lens;
    struct reco_result *res = thread_result();
    int rc = reco_recommend(api->cfg.reco, &rq, res);
    if (rc < 0) { /* the user could not be read (role api: Redis unreachable) */
        http_reply_error(req, 50320, "the user's serving state cannot be read: %s",
                         core_strerror(rc));
        return HTTP_REPLY;
    }
    struct core_buf *o = &req->reply;
    /* room for a typical reply at once (~190 bytes per item): growing from 64 bytes took six
     * reallocations per request */
    core_buf_reserve(o, 512 + (size_t)res->n * 256);
    core_buf_puts(o, "{\"recId\":");
    core_json_cstr(o, res->rec_id);
    core_buf_puts(o, ",\"userId\":");
    core_json_str(o, user, ulen);
    core_buf_puts(o, ",\"items\":[");
    for (int i = 0; i < res->n; i++) {
        const struct reco_item *it = &res->items[i];
        core_buf_puts(o, i ? ",{\"itemId\":" : "{\"itemId\":");
        core_json_cstr(o, it->item_id);
        core_buf_puts(o, ",\"score\":");
        core_json_fixed(o, it->score, 6);
        core_buf_puts(o, ",\"source\":");
        core_json_cstr(o, reco_source_name(it->source));
        core_buf_puts(o, ",\"reasons\":[");
        for (int k = 0; k < it->nreasons; k++) {
            if (k)
                core_buf_putc(o, ',');
            core_json_cstr(o, it->reasons[k]);
        }
        core_buf_puts(o, "]}");
    }
    core_buf_puts(o, "],\"strategy\":");
    core_json_cstr(o, res->strategy);
    core_buf_puts(o, res->cold_start ? ",\"coldStart\":true,\"variant\":"
                                     : ",\"coldStart\":false,\"variant\":");
    core_json_cstr(o, res->variant);
    if (!personal_ok)
        core_buf_puts(o, ",\"personalization\":false,\"reason\":\"the user has not consented "
                         "to personalization: a non-personalised list\"");
    core_buf_puts(o, ",\"tookUs\":");
    core_json_i64(o, res->took_us);
    core_buf_putc(o, '}');
    return HTTP_REPLY;
}

/* Turns the body into a "preferences" event and ingests it like POST /v1/events. */
static enum http_action preferences(struct api *api, struct http_request *req, const char *user)
{
    struct event_json_pos pos;
    cJSON *root = event_json_parse(req->body.data ? req->body.data : "", req->body.len, &pos);
    if (!root) {
        http_reply_error(req, 40002, "malformed JSON at byte %zu (line %zu, column %zu)",
                         pos.offset, pos.line, pos.column);
        return HTTP_REPLY;
    }
    const cJSON *cats = cJSON_GetObjectItemCaseSensitive(root, "categories");
    const char *bad = NULL;
    if (!cJSON_IsObject(root))
        bad = "the body must be an object {\"categories\":[...]}";
    else if (!cJSON_IsArray(cats) || cJSON_GetArraySize(cats) > STATE_READ_PREFS_MAX)
        bad = "/categories must be an array of at most 8 category names";
    const cJSON *e, *list = bad ? NULL : cats;
    cJSON_ArrayForEach(e, list)
    {
        if (!cJSON_IsString(e) || !e->valuestring[0] || strlen(e->valuestring) > STATE_SYMBOL_MAX)
            bad = "/categories entries must be non-empty strings of at most 128 bytes";
    }
    for (cJSON *k = root ? root->child : NULL; k && !bad; k = k->next)
        if (strcmp(k->string, "categories"))
            bad = "unknown field (only \"categories\" is allowed)";
    if (bad) {
        cJSON_Delete(root);
        http_reply_error(req, 42201, "%s", bad);
        return HTTP_REPLY;
    }
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "userId", user); /* NUL-terminated by segment() */
    cJSON_AddStringToObject(ev, "eventType", "preferences");
    cJSON *props = cJSON_AddObjectToObject(ev, "properties");
    cJSON_AddItemToObject(props, "categories", cJSON_Duplicate(cats, true));
    cJSON_Delete(root);
    char *text = cJSON_PrintUnformatted(ev);
    cJSON_Delete(ev);
    core_buf_reset(&req->body);
    core_buf_putc(&req->body, '[');
    core_buf_puts(&req->body, text);
    core_buf_putc(&req->body, ']');
    cJSON_free(text);
    return api__ingest(api, req, API_INGEST_BUILT);
}

static enum http_action similar(struct api *api, struct http_request *req, const char *id,
                                size_t len)
{
    int64_t count = 10;
    const char *c = http_request_query(req, "count");
    if (c && core_parse_i64(c, 1, RECO_COUNT_MAX, &count)) {
        http_reply_error(req, 40007, "count must be 1..%d", RECO_COUNT_MAX);
        return HTTP_REPLY;
    }
    struct reco_item *items = core_xmalloc(RECO_COUNT_MAX * sizeof *items);
    int n = reco_similar(api->cfg.reco, id, len, (int)count, items);
    if (n < 0) {
        free(items);
        http_reply_error(req, 40404, "unknown item");
        return HTTP_REPLY;
    }
    struct core_buf *o = &req->reply;
    core_buf_puts(o, "{\"itemId\":");
    core_json_str(o, id, len);
    core_buf_puts(o, ",\"similar\":[");
    for (int i = 0; i < n; i++) {
        core_buf_puts(o, i ? ",{\"itemId\":" : "{\"itemId\":");
        core_json_cstr(o, items[i].item_id);
        core_buf_puts(o, ",\"score\":");
        core_json_fixed(o, items[i].score, 6);
        core_buf_puts(o, ",\"source\":");
        core_json_cstr(o, reco_source_name(items[i].source));
        core_buf_puts(o, ",\"reasons\":[");
        core_json_cstr(o, items[i].reasons[0]);
        core_buf_puts(o, "]}");
    }
    core_buf_puts(o, "]}");
    free(items);
    return HTTP_REPLY;
}

/* ---- CTR report -------------------------------------------------------------------------------
 */

static const char *strategy_name(const char *code, size_t n)
{
    static const char *const map[][2] = {
        {"pers", "personalized"}, {"pref", "preferences"}, {"pop", "popular"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strlen(map[i][0]) == n && !memcmp(map[i][0], code, n))
            return map[i][1];
    return NULL;
}

static void rates(struct core_buf *o, int64_t imp, int64_t clicks, int64_t carts, int64_t purchases)
{
    double lo, hi;
    reco_wilson(clicks, imp, &lo, &hi);
    core_buf_printf(o, "\"impressions\":%lld,\"clicks\":%lld,\"carts\":%lld,\"purchases\":%lld",
                    (long long)imp, (long long)clicks, (long long)carts, (long long)purchases);
    core_buf_puts(o, ",\"ctr\":");
    core_json_fixed(o, imp ? (double)clicks / (double)imp : 0, 6);
    core_buf_puts(o, ",\"ctrLow\":");
    core_json_fixed(o, lo, 6);
    core_buf_puts(o, ",\"ctrHigh\":");
    core_json_fixed(o, hi, 6);
    core_buf_puts(o, ",\"conversionRate\":");
    core_json_fixed(o, imp ? (double)purchases / (double)imp : 0, 6);
}

static int cmp_row(const void *a, const void *b)
{
    return strcmp(((const struct state_ctr_row *)a)->key, ((const struct state_ctr_row *)b)->key);
}

static enum http_action ctr(struct api *api, struct http_request *req)
{
    const char *wq = http_request_query(req, "window");
    int window;
    const char *wname = wq ? wq : "24h";
    if (!strcmp(wname, "1h"))
        window = STATE_W_1H;
    else if (!strcmp(wname, "24h"))
        window = STATE_W_24H;
    else if (!strcmp(wname, "all"))
        window = -1;
    else {
        http_reply_error(req, 40010, "window is 1h, 24h or all");
        return HTTP_REPLY;
    }
    struct state_ctr_row *rows = core_xcalloc(CTR_ROWS, sizeof *rows);
    int n = 0;
    for (int32_t p = 0; p < stream_partitions(api->cfg.stream); p++)
        n = state_shard_ctr(stream_shard(api->cfg.stream, p), window, rows, n, CTR_ROWS);
    qsort(rows, (size_t)n, sizeof *rows, cmp_row);
    struct core_buf *o = &req->reply;
    core_buf_printf(o, "{\"window\":\"%s\",\"groups\":[", wname);
    const struct reco_experiment *x = api->cfg.reco_experiment;
    int nv = x ? x->nvariants : 0;
    int64_t vsum[RECO_VARIANTS_MAX][4];
    memset(vsum, 0, sizeof vsum);
    for (int i = 0; i < n; i++) {
        const char *k = rows[i].key, *dot = strchr(k, '.');
        const char *sname = dot ? strategy_name(k, (size_t)(dot - k)) : NULL;
        core_buf_puts(o, i ? ",{\"strategy\":" : "{\"strategy\":");
        if (sname)
            core_json_cstr(o, sname);
        else
            core_json_str(o, k, dot ? (size_t)(dot - k) : strlen(k));
        core_buf_puts(o, ",\"variant\":");
        core_json_cstr(o, dot ? dot + 1 : "");
        core_buf_putc(o, ',');
        rates(o, rows[i].impressions, rows[i].clicks, rows[i].carts, rows[i].purchases);
        core_buf_putc(o, '}');
        for (int v = 0; v < nv && dot; v++)
            if (!strcmp(dot + 1, x->variants[v].name)) {
                vsum[v][0] += rows[i].impressions;
                vsum[v][1] += rows[i].clicks;
                vsum[v][2] += rows[i].carts;
                vsum[v][3] += rows[i].purchases;
            }
    }
    core_buf_putc(o, ']');
    if (nv > 0) {
        core_buf_puts(o, ",\"experiment\":{\"name\":");
        core_json_cstr(o, x->name);
        core_buf_puts(o, ",\"control\":");
        core_json_cstr(o, x->variants[0].name);
        core_buf_puts(o, ",\"variants\":[");
        for (int v = 0; v < nv; v++) {
            core_buf_puts(o, v ? ",{\"name\":" : "{\"name\":");
            core_json_cstr(o, x->variants[v].name);
            core_buf_putc(o, ',');
            rates(o, vsum[v][0], vsum[v][1], vsum[v][2], vsum[v][3]);
            if (v > 0) {
                double pv = reco_two_proportion_p(vsum[v][1], vsum[v][0], vsum[0][1], vsum[0][0]);
                core_buf_puts(o, ",\"pValue\":");
                core_json_f64(o, pv);
                core_buf_printf(o, ",\"significant\":%s", pv < 0.05 ? "true" : "false");
            }
            core_buf_putc(o, '}');
        }
        core_buf_puts(o, "]}");
    }
    core_buf_putc(o, '}');
    free(rows);
    return HTTP_REPLY;
}

bool api__role_api_route(const char *url)
{
    if (!strcmp(url, "/healthz") || !strcmp(url, "/readyz") || !strcmp(url, "/metrics") ||
        !strcmp(url, "/v1/trending"))
        return true;
    bool users = !strncmp(url, "/v1/users/", 10), items = !strncmp(url, "/v1/items/", 10);
    const char *slash = users || items ? strchr(url + 10, '/') : NULL;
    return slash && slash > url + 10 &&
           (users ? !strcmp(slash, "/recommendations")
                  : !strcmp(slash, "/similar") || !strcmp(slash, "/stats"));
}

void api__pseudonym_user(struct api *api, const char *id, size_t n, char *out)
{
    if (api->ing)
        ingest_pseudonym_user(api->ing, id, n, out);
    else
        privacy_pseudonym_user(api->cfg.pseudonym_key, id, n, out);
}

enum http_action api__reco(struct api *api, struct http_request *req)
{
    const char *url = req->url;
    bool get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
    if (!api->cfg.stream && !api->cfg.role_api) {
        http_reply_error(req, 50302, "recommendations are not served in this role");
        return HTTP_REPLY;
    }
    if (!strcmp(url, "/v1/stats/ctr")) {
        if (!get) {
            http_reply_error(req, 40501, "method %s not allowed; use GET", req->method);
            return HTTP_REPLY;
        }
        return ctr(api, req);
    }
    char id[EVENT_ITEM_MAX * 3 + 1];
    size_t len;
    bool users = !strncmp(url, "/v1/users/", 10);
    const char *rest = url + 10, *slash = strchr(rest, '/');
    if (!slash || !segment(rest, (size_t)(slash - rest), id, &len)) {
        http_reply_error(req, 40400, "no route for %s %s", req->method, url);
        return HTTP_REPLY;
    }
    bool serving =
        (users && !strcmp(slash, "/recommendations")) || (!users && !strcmp(slash, "/similar"));
    if (serving && !api->cfg.reco) { /* --role processor: API nodes serve these */
        http_reply_error(req, 50302,
                         "recommendations are not served in this role: ask an API node");
        return HTTP_REPLY;
    }
    if (users && !strcmp(slash, "/recommendations")) {
        if (!get) {
            http_reply_error(req, 40501, "method %s not allowed; use GET", req->method);
            return HTTP_REPLY;
        }
        return recommendations(api, req, id, len);
    }
    if (users && !strcmp(slash, "/preferences")) {
        if (strcmp(req->method, "PUT")) {
            http_reply_error(req, 40501, "method %s not allowed; use PUT", req->method);
            return HTTP_REPLY;
        }
        return preferences(api, req, id);
    }
    if (!users && !strcmp(slash, "/similar")) {
        if (!get) {
            http_reply_error(req, 40501, "method %s not allowed; use GET", req->method);
            return HTTP_REPLY;
        }
        return similar(api, req, id, len);
    }
    http_reply_error(req, 40400, "no route for %s %s", req->method, url);
    return HTTP_REPLY;
}

/* Whether api__reco serves this path. */
bool api__reco_route(const char *url)
{
    if (!strcmp(url, "/v1/stats/ctr"))
        return true;
    const char *slash;
    if (!strncmp(url, "/v1/users/", 10) && (slash = strchr(url + 10, '/')))
        return !strcmp(slash, "/recommendations") || !strcmp(slash, "/preferences");
    if (!strncmp(url, "/v1/items/", 10) && (slash = strchr(url + 10, '/')))
        return !strcmp(slash, "/similar");
    return false;
}
