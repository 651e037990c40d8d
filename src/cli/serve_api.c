/* `recstream serve --role api`: the serving-only node (serve_api.h). */
#include "cli/serve_api.h"

#include "api/api.h"
#include "cli/cli_int.h"
#include "http/http.h"
#include "privacy/apikey.h"
#include "privacy/privacy.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The API node needs the processors' pseudonymisation secret: a new one would give every user
 * a key nobody published. */
static int load_key(const struct serve_api_config *c, struct privacy_key *key)
{
    if (access(c->key_file, R_OK) != 0) {
        LOG_ERROR("an API node needs the processors' pseudonymisation key (--key-file FILE, a "
                  "copy of the processors' DATA/privacy/pseudonym.key)",
                  "path=%s", c->key_file);
        return CORE_E_INVALID;
    }
    bool created = false;
    int rc = privacy_key_load_or_create(c->key_file, key, &created);
    if (rc < 0)
        LOG_ERROR("cannot load pseudonymisation key", "path=%s err=\"%s\"", c->key_file,
                  core_strerror(rc));
    return rc;
}

int serve_api_run(const struct serve_api_config *c)
{
    int rc;
    struct privacy_key key;
    bool key_loaded = false;
    struct apikey_store *apikeys = NULL;
    struct state_shard **shards = NULL;
    int32_t nshards = 0;
    struct store_reader *rd = NULL;
    struct reco *reco = NULL;
    struct api *api = NULL;
    struct http_server *srv = NULL;
    struct catalog *cat = NULL;
    char path[1100];

    rc = core_mkdirs(c->data, 0700);
    if (rc < 0) {
        LOG_ERROR("cannot create data directory", "dir=%s err=\"%s\"", c->data, core_strerror(rc));
        goto out;
    }
    rc = load_key(c, &key);
    if (rc < 0)
        goto out;
    key_loaded = true;
    rc = cli__apikeys_open(c->data, c->insecure_no_auth, "recommendations of any user", &apikeys);
    if (rc < 0)
        goto out;
    /* a cache of the processors' catalog (store_catalog.c keeps it equal to theirs) */
    struct catalog_options co;
    catalog_options_init(&co);
    snprintf(path, sizeof path, "%s/catalog", c->data);
    co.dir = path;
    co.fsync = false;
    rc = catalog_open(&co, &cat);
    if (rc < 0) {
        LOG_ERROR("cannot open the item catalog", "dir=%s err=\"%s\"", path, core_strerror(rc));
        goto out;
    }
    rc = store_read_partitions(&c->store, 30000, &nshards);
    if (rc < 0) {
        LOG_ERROR("no serving state in redis (start a processor with --store first)", "err=\"%s\"",
                  core_strerror(rc));
        goto out;
    }
    struct state_config sc;
    state_config_init(&sc);
    sc.user_ttl_ms = c->user_ttl_ms;
    sc.item_ttl_ms = c->item_ttl_ms;
    sc.cooc_items_max = c->reco.knn_items;
    shards = core_xcalloc((size_t)nshards, sizeof *shards);
    for (int32_t p = 0; p < nshards; p++)
        shards[p] = state_shard_new(&sc, p);
    struct store_reader_config rc_cfg = {.addr = c->store,
                                         .shards = shards,
                                         .nshards = nshards,
                                         .catalog = cat,
                                         .interval_ms = c->store_interval_ms,
                                         .half_life_ms = sc.half_life_ms};
    rc = store_reader_start(&rc_cfg, &rd);
    if (rc < 0) {
        LOG_ERROR("cannot read the serving state from redis", "err=\"%s\"", core_strerror(rc));
        goto out;
    }
    struct reco_config recfg = c->reco;
    recfg.user_read_fn = store_reader_user_read;
    recfg.user_read_arg = rd;
    reco = reco_new(&recfg, shards, nshards, cat);
    reco_refresh(reco);
    reco_start(reco);

    struct api_config ac = {.reco = reco,
                            .catalog = cat,
                            .reco_experiment = &c->reco.experiment,
                            .keys = apikeys,
                            .metrics_auth = c->metrics_auth,
                            .metrics_fn = store_reader_metrics,
                            .metrics_arg = rd,
                            .ready_fn = store_reader_ready,
                            .ready_arg = rd,
                            .role_api = true,
                            .shards = shards,
                            .nshards = nshards,
                            .pseudonym_key = &key};
    api = api_new(&ac, NULL, NULL);
    struct http_options ho;
    http_options_init(&ho);
    ho.host = c->host;
    ho.port = c->port;
    ho.threads = c->threads;
    ho.body_limit = c->max_body;
    ho.max_connections = (unsigned)c->max_connections;
    ho.timeout_s = (unsigned)c->timeout_s;
    ho.batch_replies = c->batch_replies;
    rc = http_server_start(&ho, api_handle, api, c->cors_origin, &srv);
    if (rc < 0)
        goto out;
    api_set_http_server(api, srv);
    LOG_INFO("recstream API node listening", "addr=%s:%u role=api partitions=%d auth=%s pid=%d",
             c->host, (unsigned)http_server_port(srv), (int)nshards, apikeys ? "on" : "OFF",
             (int)getpid());

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int sig = 0;
    sigwait(&set, &sig);
    LOG_INFO("shutting down", "signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_server_quiesce(srv);
    rc = 0;
out:
    if (srv)
        http_server_stop(srv);
    api_free(api);
    store_reader_stop(rd); /* before the recommender: it imports into it */
    reco_free(reco);
    catalog_close(cat);
    for (int32_t p = 0; shards && p < nshards; p++)
        state_shard_free(shards[p]);
    free(shards);
    apikey_store_free(apikeys);
    if (key_loaded)
        privacy_key_dispose(&key);
    if (rc == 0)
        LOG_INFO("stopped cleanly", NULL);
    return rc < 0 ? 1 : 0;
}
