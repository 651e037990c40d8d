/* Routing, health endpoints and metrics. */
#include "api/api_int.h"
#include "privacy/apikey.h"
#include "reco/reco.h"
#include "stream/stream.h"

#include <stdlib.h>
#include <string.h>

struct api *api_new(const struct api_config *cfg, struct ingest *ing, struct evlog *log)
{
    struct api *api = core_xcalloc(1, sizeof *api);
    api->cfg = *cfg;
    api->topics = core_xcalloc(cfg->ntopics ? cfg->ntopics : 1, sizeof *api->topics);
    for (size_t i = 0; i < cfg->ntopics; i++)
        api->topics[i] = core_xstrdup(cfg->topics[i]);
    api->cfg.topics = (const char *const *)api->topics;
    api->ing = ing;
    api->log = log;
    return api;
}

void api_set_http_server(struct api *api, struct http_server *srv)
{
    atomic_store(&api->http, srv);
}

void api_free(struct api *api)
{
    if (!api)
        return;
    for (size_t i = 0; i < api->cfg.ntopics; i++)
        free(api->topics[i]);
    free(api->topics);
    free(api);
}

void api__count_reply(struct api *api, int status)
{
    if (status == 429)
        atomic_fetch_add(&api->replies_429, 1);
    if (status >= 500)
        atomic_fetch_add(&api->replies_5xx, 1);
    else if (status >= 400)
        atomic_fetch_add(&api->replies_4xx, 1);
    else
        atomic_fetch_add(&api->replies_2xx, 1);
}

static void reply_metrics(struct api *api, struct http_request *req)
{
    struct ingest_stats st;
    memset(&st, 0, sizeof st);
    if (api->ing)
        ingest_stats(api->ing, &st);
    struct core_buf *b = &req->reply;
    core_buf_metric(b, "recstream_events_accepted_total", "counter", "Events appended to the log.",
                    st.accepted);
    core_buf_metric(b, "recstream_events_duplicate_total", "counter",
                    "Events acknowledged as repeats of an earlier eventId.", st.duplicates);
    core_buf_metric(b, "recstream_events_rejected_total", "counter", "Events failing validation.",
                    st.rejected);
    core_buf_metric(b, "recstream_events_failed_total", "counter", "Events whose append failed.",
                    st.failed);
    core_buf_metric(b, "recstream_fields_dropped_total", "counter",
                    "Unknown event fields removed at ingest.", st.dropped_fields);
    core_buf_metric(b, "recstream_overloaded_total", "counter", "Requests refused with 429.",
                    st.overloaded);
    core_buf_metric(b, "recstream_deadletters_total", "counter",
                    "Rejected events recorded in the dead-letter store.", st.deadlettered);
    core_buf_metric(b, "recstream_consent_dropped_total", "counter",
                    "Valid events not stored for lack of consent.", st.dropped_consent);
    core_buf_metric(b, "recstream_consent_aggregated_total", "counter",
                    "Events stored for item aggregates only (no personalization consent).",
                    st.aggregated_consent);
    core_buf_metric(b, "recstream_pii_fields_total", "counter",
                    "Event properties stored that their schema marks x-pii.", st.pii_fields);
    core_buf_metric(b, "recstream_dedup_entries", "gauge", "eventIds in the dedup window.",
                    st.dedup_entries);
    core_buf_metric(b, "recstream_dedup_evicted_total", "counter",
                    "eventIds forgotten early because the dedup window was full.",
                    st.dedup_evicted);
    core_buf_puts(b, "# HELP recstream_events_by_type_total Valid events received, by type.\n"
                     "# TYPE recstream_events_by_type_total counter\n");
    for (int t = 0; t <= EVENT_TYPE_CUSTOM; t++)
        core_buf_printf(b, "recstream_events_by_type_total{type=\"%s\"} %llu\n",
                        event_type_get(t)->name, (unsigned long long)st.by_type[t]);
    core_buf_metric(b, "recstream_http_requests_total", "counter", "HTTP requests handled.",
                    atomic_load(&api->requests));
    core_buf_puts(b, "# HELP recstream_http_replies_total HTTP replies by status class.\n"
                     "# TYPE recstream_http_replies_total counter\n");
    core_buf_printf(b, "recstream_http_replies_total{class=\"2xx\"} %llu\n",
                    (unsigned long long)atomic_load(&api->replies_2xx));
    core_buf_printf(b, "recstream_http_replies_total{class=\"4xx\"} %llu\n",
                    (unsigned long long)atomic_load(&api->replies_4xx));
    core_buf_printf(b, "recstream_http_replies_total{class=\"5xx\"} %llu\n",
                    (unsigned long long)atomic_load(&api->replies_5xx));
    core_buf_metric(b, "recstream_auth_enabled", "gauge",
                    "1 when API keys are checked, 0 under --insecure-no-auth.",
                    api->cfg.keys != NULL);
    if (api->cfg.keys)
        core_buf_metric(b, "recstream_api_keys_active", "gauge", "API keys that are not revoked.",
                        apikey_store_active(api->cfg.keys));
    core_buf_puts(b, "# HELP recstream_auth_refused_total Requests refused by access control.\n"
                     "# TYPE recstream_auth_refused_total counter\n");
    core_buf_printf(b, "recstream_auth_refused_total{reason=\"unauthenticated\"} %llu\n",
                    (unsigned long long)atomic_load(&api->auth_401));
    core_buf_printf(b, "recstream_auth_refused_total{reason=\"forbidden\"} %llu\n",
                    (unsigned long long)atomic_load(&api->auth_403));
    core_buf_printf(b, "recstream_auth_refused_total{reason=\"rate_limited\"} %llu\n",
                    (unsigned long long)atomic_load(&api->auth_429));
    core_buf_puts(b, "# HELP recstream_log_high_water Next offset per partition.\n"
                     "# TYPE recstream_log_high_water gauge\n");
    for (int32_t p = 0; api->log && p < api->log->partitions; p++) {
        struct evlog_partition_stats ps;
        if (evlog_stats(api->log, p, &ps) == 0)
            core_buf_printf(b, "recstream_log_high_water{partition=\"%d\"} %lld\n", (int)p,
                            (long long)ps.high_water);
    }
    if (api->cfg.stream) {
        /* Records whose user key was shredded: unreadable by design, moved past, counted. */
        uint64_t erased = 0;
        for (int32_t p = 0; p < stream_partitions(api->cfg.stream); p++)
            erased += state_shard_skipped(stream_shard(api->cfg.stream, p));
        core_buf_metric(
            b, "recstream_stream_erased_records_total", "counter",
            "Log records skipped by the processor because their user's key was shredded.", erased);
    }
    if (api->cfg.metrics_fn)
        api->cfg.metrics_fn(api->cfg.metrics_arg, b);
    struct http_server *srv = atomic_load(&api->http);
    if (srv)
        http_server_metrics(srv, b);
    if (api->cfg.reco) {
        struct reco_stats rs;
        reco_get_stats(api->cfg.reco, &rs);
        core_buf_metric(b, "recstream_reco_requests_total", "counter",
                        "Recommendation requests served.", (uint64_t)rs.requests);
        core_buf_metric(b, "recstream_reco_cold_starts_total", "counter",
                        "Recommendation requests for users without history.",
                        (uint64_t)rs.cold_starts);
        core_buf_metric(b, "recstream_reco_model_builds_total", "counter",
                        "Recommendation model rebuilds.", (uint64_t)rs.model_builds);
        core_buf_metric(b, "recstream_reco_model_items", "gauge",
                        "Items in the recommendation model.", (uint64_t)rs.model_items);
        core_buf_metric(b, "recstream_reco_model_build_us", "gauge",
                        "Duration of the last model build (microseconds).",
                        (uint64_t)rs.model_build_us);
        core_buf_metric(b, "recstream_reco_model_age_ms", "gauge", "Age of the model in use.",
                        (uint64_t)rs.model_age_ms);
        core_buf_metric(b, "recstream_reco_knn_items", "gauge",
                        "Items with item-kNN lists (items holding a co-occurrence row).",
                        (uint64_t)rs.knn_items);
        core_buf_metric(b, "recstream_reco_knn_full_updates_total", "counter",
                        "Item-kNN recomputations over every row (periodic and settling).",
                        (uint64_t)rs.knn_full_updates);
        core_buf_metric(b, "recstream_reco_knn_pending", "gauge",
                        "Item-kNN lists the last update left for the next (time budget).",
                        (uint64_t)rs.knn_pending);
    }
    req->content_type = "text/plain; version=0.0.4";
}

static bool is_method(const struct http_request *req, const char *m)
{
    return strcmp(req->method, m) == 0;
}

static bool topic_known(const struct api *api, const char *name)
{
    for (size_t i = 0; i < api->cfg.ntopics; i++) {
        if (strcmp(api->cfg.topics[i], name) == 0)
            return true;
    }
    return false;
}

/* The event routes share CORS handling and the POST-only rule. */
static enum http_action route_ingest(struct api *api, struct http_request *req,
                                     enum api_ingest_kind kind)
{
    req->cors = true;
    if (is_method(req, "OPTIONS")) {
        req->status = 204;
        return HTTP_REPLY;
    }
    if (!is_method(req, "POST")) {
        http_reply_error(req, 40501, "method %s not allowed; use POST", req->method);
        return HTTP_REPLY;
    }
    return api__ingest(api, req, kind);
}

static enum http_action route(struct api *api, struct http_request *req)
{
    const char *url = req->url;
    if (api->cfg.role_api && !api__role_api_route(url)) {
        http_reply_error(req, 40420,
                         "%s is not served by an API node (--role api): send it to a processor "
                         "node",
                         url);
        return HTTP_REPLY;
    }
    if (api->cfg.role_collector && !api__role_collector_route(url)) {
        http_reply_error(req, 40421,
                         "%s is not served by a collector (--role collector): collectors take "
                         "events only; send it to an API node or a processor",
                         url);
        return HTTP_REPLY;
    }
    if (strncmp(url, "/topics/", 8) == 0) {
        const char *topic = url + 8;
        if (!topic_known(api, topic)) {
            req->cors = true;
            http_reply_error(req, 40401, "topic '%s' not found", topic);
            return HTTP_REPLY;
        }
        return route_ingest(api, req, API_INGEST_REST);
    }
    if (strcmp(url, "/v1/events") == 0)
        return route_ingest(api, req, API_INGEST_EVENTS);
    if (strcmp(url, "/v1/beacon") == 0)
        return route_ingest(api, req, API_INGEST_BEACON);
    if (!strcmp(url, "/v1/schemas") || !strncmp(url, "/v1/schemas/", 12))
        return api__schemas(api, req, url[11] ? url + 12 : "");
    if (!strcmp(url, "/v1/deadletters") || !strncmp(url, "/v1/deadletters/", 16))
        return api__deadletters(api, req, url + 15);
    if (!strcmp(url, "/v1/items") || (!strncmp(url, "/v1/items/", 10) && !strchr(url + 10, '/')))
        return api__catalog(api, req);
    if (api__reco_route(url))
        return api__reco(api, req);
    if (api__privacy_route(url))
        return api__privacy(api, req);
    if (api__erasure_route(url))
        return api__erasure(api, req);
    if (!strncmp(url, "/v1/users/", 10) || !strncmp(url, "/v1/items/", 10) ||
        !strcmp(url, "/v1/trending"))
        return api__state(api, req);
    bool get = is_method(req, "GET") || is_method(req, "HEAD");
    if (strcmp(url, "/healthz") == 0 && get) {
        core_buf_puts(&req->reply, "{\"status\":\"ok\"}");
        return HTTP_REPLY;
    }
    if (strcmp(url, "/readyz") == 0 && get) {
        if ((!api->ing || ingest_ready(api->ing)) &&
            (!api->cfg.stream || stream_healthy(api->cfg.stream)) &&
            (!api->cfg.ready_fn || api->cfg.ready_fn(api->cfg.ready_arg))) {
            core_buf_puts(&req->reply, api->cfg.keys
                                           ? "{\"status\":\"ready\"}"
                                           : "{\"status\":\"ready\",\"auth\":\"disabled\"}");
        } else {
            http_reply_error(req, 50301, "event log is not writable or stream processing failed");
        }
        return HTTP_REPLY;
    }
    if (strcmp(url, "/metrics") == 0 && get) {
        reply_metrics(api, req);
        return HTTP_REPLY;
    }
    if (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0 ||
        strcmp(url, "/metrics") == 0) {
        http_reply_error(req, 40501, "method %s not allowed; use GET", req->method);
        return HTTP_REPLY;
    }
    http_reply_error(req, 40400, "no route for %s %s", req->method, url);
    return HTTP_REPLY;
}

enum http_action api_handle(void *app, struct http_request *req)
{
    struct api *api = app;
    atomic_fetch_add(&api->requests, 1);
    const char *action;
    if (!api__authorize(api, req, &action)) {
        api__count_reply(api, req->status);
        return HTTP_REPLY;
    }
    enum http_action a = route(api, req);
    if (a == HTTP_REPLY)
        api__count_reply(api, req->status);
    api__audit(api, req, action, a);
    return a;
}
