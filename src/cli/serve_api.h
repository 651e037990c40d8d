/*
 * `recstream serve --role api` (serve_api.c): a serving-only node. No log, no processors, no
 * state of its own: user-less shards restored from the processors' Redis serving state, the
 * recommender over them, users read from Redis per request (src/store/).
 */
#ifndef RECSTREAM_CLI_SERVE_API_H
#define RECSTREAM_CLI_SERVE_API_H

#include "reco/reco.h"
#include "store/store.h"

struct serve_api_config {
    const char *data;     /* holds only privacy/ (API keys) */
    const char *key_file; /* the processors' pseudonymisation secret; must exist */
    const char *host;
    uint16_t port;
    unsigned threads;
    int64_t max_body, max_connections, timeout_s;
    bool insecure_no_auth, metrics_auth, batch_replies;
    const char *cors_origin; /* may be NULL */
    struct reco_config reco;
    struct store_addr store;
    int64_t store_interval_ms;
    int64_t user_ttl_ms, item_ttl_ms; /* must match the processors' (state snapshots check) */
};

/* Runs until SIGTERM/SIGINT (blocked by the caller). Returns the process exit status. */
int serve_api_run(const struct serve_api_config *c);

#endif
