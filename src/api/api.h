/*
 * api: the HTTP routes and their JSON shapes. No business logic: requests are decoded and
 * handed to ingest (and, later, stream/reco); replies are written here.
 *
 *   POST /topics/{topic}   Kafka REST Proxy v2 produce
 *   POST /v1/events        JSON array / single object / NDJSON
 *   POST /v1/beacon        navigator.sendBeacon bodies (text/plain JSON)
 *   OPTIONS on the above   CORS preflight
 *   GET  /healthz /readyz /metrics
 *   /v1/schemas..., /v1/deadletters...  (api_schema.c)
 *   /v1/items, /v1/items/{itemId}       the item catalog (api_catalog.c)
 *   /v1/users/{userId}/consent          consent (api_privacy.c)
 * Access control: api_auth.c holds the route -> role table that api_handle consults first.
 */
#ifndef RECSTREAM_API_H
#define RECSTREAM_API_H

#include "evlog/evlog.h"
#include "http/http.h"
#include "ingest/ingest.h"

struct stream;
struct reco;
struct reco_experiment;
struct catalog;
struct consent;
struct apikey_store;
struct privacy_key;

/*
 * Audit hook, called on the handler thread after every authorised request to a route that
 * needs the admin role: actor_key_id is the key's id ("" with --insecure-no-auth), action
 * "METHOD /route/pattern" from the route table, subject the request path, detail_json a
 * JSON object such as {"status":201}. Strings are valid during the call only.
 */
typedef void (*api_audit_fn)(void *arg, const char *actor_key_id, const char *action,
                             const char *subject, const char *detail_json);

struct erasures;
struct erasure_receipt;

/* Erasure hook (serve_erasure_request): records and starts the erasure of the user (raw id of
 * raw_len bytes, pseudonym key), filling *out. Returns 0 or a negative error. */
typedef int (*api_erase_fn)(void *arg, const char *raw, size_t raw_len, const char *key, bool anon,
                            const char *actor, struct erasure_receipt *out);

struct api_config {
    const char *const *topics; /* Kafka REST topic names accepted (aliases of the event log) */
    size_t ntopics;
    int64_t max_records;                           /* records per request; more is 413 (41302) */
    int retry_after_s;                             /* Retry-After on 429 */
    struct schema_registry *registry;              /* borrowed; /v1/schemas */
    struct deadletters *deadletters;               /* borrowed; /v1/deadletters */
    struct stream *stream;                         /* borrowed, may be NULL; state queries */
    struct reco *reco;                             /* borrowed, may be NULL; recommendations */
    const struct reco_experiment *reco_experiment; /* borrowed, may be NULL; CTR report */
    struct catalog *catalog;                       /* borrowed, may be NULL; /v1/items */
    struct consent *consent; /* borrowed, may be NULL; /v1/users/{id}/consent, reco checks */
    /* borrowed, may be NULL: opens the sealed field bundles of exported events (field
     * retention, privacy/fieldseal.h); without it such fields are reported expired */
    struct epochkeys *epochkeys;
    bool capture_ip; /* events without context.ip get the client's (X-Forwarded-For, else the
                      * connection's); ingest minimises it like any context.ip */
    struct apikey_store *keys; /* borrowed; NULL: auth off (insecure) */
    bool metrics_auth;         /* /metrics needs a read key */
    api_audit_fn audit_fn;     /* may be NULL */
    void *audit_arg;
    /* Appends more metrics (Prometheus text) to /metrics; may be NULL. Any thread. */
    void (*metrics_fn)(void *arg, struct core_buf *out);
    void *metrics_arg;
    struct erasures *erasures; /* borrowed, may be NULL; erasure receipts and export */
    api_erase_fn erase_fn;     /* may be NULL (then erasure and export answer 503) */
    void *erase_arg;
    /* A serving-only node (serve --role api): no ingest, log or stream (api_new gets NULL for
     * both); only health, metrics, recommendations, similar items, trending and item stats are
     * routed, everything else answers 404 (40420) naming the role. User ids are pseudonymised with
     * this key (the processors' secret). */
    bool role_api;
    /* A collector (serve --role collector): ingest only, no stream (NULL) and no recommender;
     * the ingest routes, health and metrics are routed, everything else answers 404 (40421). */
    bool role_collector;
    const struct privacy_key *pseudonym_key;
    /* role api: the user-less shards restored from the store (borrowed); trending and item
     * stats read them where an embedded node reads the stream's shards. */
    struct state_shard *const *shards;
    int nshards;
    /* /readyz also asks this (may be NULL): role api is ready while its store is readable. */
    bool (*ready_fn)(void *arg);
    void *ready_arg;
};

struct api;

/* Creates the route table over ingest and log (borrowed). */
struct api *api_new(const struct api_config *cfg, struct ingest *ing, struct evlog *log);
void api_free(struct api *api);

/* The http_handler_fn to pass to http_server_start with the api as app. Every request is
 * checked against the route table (api_auth.c) before it is routed. */
enum http_action api_handle(void *app, struct http_request *req);
/* The server api_handle runs under, once http_server_start has returned it (borrowed: the
 * api must not outlive it in use): /metrics reports its connections per worker thread. */
void api_set_http_server(struct api *api, struct http_server *srv);

/* Appends the route table as JSON: [{"method":..,"path":..,"role":..,"queryKey":bool,
 * "metrics":bool},...] (a "*" matches one path segment). Routes not listed need admin. */
void api_auth_routes_json(struct core_buf *out);

#endif
