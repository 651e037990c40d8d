/* Internals shared by the api files. */
#ifndef RECSTREAM_API_INT_H
#define RECSTREAM_API_INT_H

#include "api/api.h"

#include <stdatomic.h>

struct api {
    struct api_config cfg;
    char **topics;
    struct ingest *ing;
    struct evlog *log;
    atomic_uint_fast64_t requests, replies_2xx, replies_4xx, replies_5xx, replies_429;
    atomic_uint_fast64_t auth_401, auth_403, auth_429;
    struct http_server *_Atomic http; /* for its metrics, once serving (api_set_http_server) */
};

/* Access control (api_auth.c). Looks the route up in the route table and checks the key;
 * false when the request was refused (the reply is filled in: 401, 403 or 429). *action is
 * the route pattern when the route needs the admin role (for the audit hook), else NULL. */
bool api__authorize(struct api *api, struct http_request *req, const char **action);
/* Calls the configured audit hook for an admin route (action from api__authorize). */
void api__audit(struct api *api, struct http_request *req, const char *action, enum http_action a);

/* The event-ingesting routes (api_ingest.c). kind: which body shape the route takes. */
enum api_ingest_kind {
    API_INGEST_REST,
    API_INGEST_EVENTS,
    API_INGEST_BEACON,
    API_INGEST_BUILT, /* a JSON array the server built from another route's body */
};
enum http_action api__ingest(struct api *api, struct http_request *req, enum api_ingest_kind kind);

/* The key a read of a user's state uses (api_state.c): the pseudonym under the newest secret
 * version, or under an older version still held when only that one has state (a user not seen
 * since a rotation: the move happens at their next event). key gets 33 bytes. */
void api__user_key(struct api *api, const char *id, size_t n, bool anon, char *key);

/* api__user_key, and the pseudonym under the newest version in newest (33 bytes; the consent
 * decision's key: ingest_consent_decide_key), each computed once. */
void api__user_keys(struct api *api, const char *id, size_t n, bool anon, char *key, char *newest);

/* Schema registry and dead-letter routes (api_schema.c); rest is the path after the prefix. */
enum http_action api__schemas(struct api *api, struct http_request *req, const char *rest);
enum http_action api__deadletters(struct api *api, struct http_request *req, const char *rest);

/* Queryable state routes (api_state.c): /v1/users/.../profile, /v1/items/..., /v1/trending. */
enum http_action api__state(struct api *api, struct http_request *req);

/* Item catalog routes (api_catalog.c): /v1/items and /v1/items/{itemId}. */
enum http_action api__catalog(struct api *api, struct http_request *req);

/* Recommendation routes (api_reco.c): recommendations, preferences, similar items, CTR. */
bool api__reco_route(const char *url);
enum http_action api__reco(struct api *api, struct http_request *req);

/* Consent routes (api_privacy.c): /v1/users/{userId}/consent. */
bool api__privacy_route(const char *url);
enum http_action api__privacy(struct api *api, struct http_request *req);

/* Erasure and export routes (api_erasure.c): DELETE /v1/users/{userId}, GET
 * /v1/users/{userId}/export, GET /v1/erasures/{erasureId}. */
bool api__erasure_route(const char *url);
enum http_action api__erasure(struct api *api, struct http_request *req);

/* Routes a serving-only node (api_config.role_api) answers (api_reco.c). */
bool api__role_api_route(const char *url);

/* True for the routes a collector (--role collector) serves: ingest, health, metrics. */
bool api__role_collector_route(const char *url);
/* The pseudonymous key of a user id: through ingest, or the configured key (role api). */
void api__pseudonym_user(struct api *api, const char *id, size_t n, char *out);

/* Counts a reply status for /metrics. */
void api__count_reply(struct api *api, int status);

#endif
