/* `recstream serve`: the collector on the embedded log. */
#include "api/api.h"
#include "catalog/catalog.h"
#include "cli/cli_int.h"
#include "cli/serve_api.h"
#include "cli/serve_erasure.h"
#include "evlog/evlog.h"
#include "http/http.h"
#include "ingest/deadletter.h"
#include "ingest/ingest.h"
#include "cli/serve_kafka.h"
#include "cli/serve_roles.h"
#include "cli/serve_retention.h"
#include "privacy/audit.h"
#include "privacy/consent.h"
#include "privacy/apikey.h"
#include "privacy/privacy.h"
#include "reco/reco.h"
#include "store/store.h"
#include "stream/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define MAX_TOPICS 16

struct serve_config {
    char data[1024];
    char key_file[1100];
    char data_key[1100];
    int64_t userkeys_max;
    char host[64];
    uint16_t port;
    int32_t partitions;
    bool partitions_set; /* given explicitly (a Kafka topic's count must then match) */
    char log_uri[1024];  /* --log: "" = the embedded log, or kafka://... */
    enum evlog_fsync fsync;
    int fsync_ms;
    char topics_buf[1024];
    const char *topics[MAX_TOPICS];
    size_t ntopics;
    int64_t max_body, max_records, queue_bytes, dedup_window_ms, dedup_max, segment_bytes,
        segment_ms;
    int64_t max_connections, timeout_s, threads, retry_after_s;
    int64_t checkpoint_interval_ms, processor_threads;
    char cors_origin[256];
    bool insecure_no_auth, metrics_auth, batch_replies, checkpoint_fork;
    char tls_cert[1024], tls_key[1024];
    struct reco_config reco;
    bool consent_required;
    enum consent_policy consent_policy;
    int64_t consent_max;
    enum privacy_ip_mode ip_mode;
    bool capture_ip;
    /* Retention (docs/PRIVACY.md): 0 = kept forever (events, audit). */
    int64_t retention_events_ms, retention_state_ms, retention_aggregates_ms, retention_interval_ms,
        retention_audit_ms, audit_rotate_ms;
    int64_t retention_short_ms, retention_long_ms, retention_epoch_ms; /* field retention */
    int64_t erasure_deadline_ms, erasure_step_delay_ms;
    /* Scale-out (issue 7): serve_api.c, src/store/ */
    bool role_api;        /* --role api: a serving-only node */
    bool role_processor;  /* --role processor: all but recommendation serving */
    bool role_collector;  /* --role collector: ingest only (serve_roles.c) */
    char keys_topic[256]; /* --keys-topic: "" = "<topic>.keys" (Kafka mode) */
    char group[256];      /* --group: consumer group of processors (Kafka mode) */
    int64_t group_session_ms;
    char checkpoint_dir[1024]; /* --checkpoint-dir: "" = DATA/checkpoints */
    struct store_addr store;   /* --store; store.port 0 and no unix path: none */
    bool have_store;
    int64_t store_interval_ms; /* --store-interval */
    char store_auth[1024];     /* --store-auth-file */
};

#define CFG ((struct serve_config *)cfg)

static int set_data(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(CFG->data, sizeof CFG->data, v, err, es);
}

static int set_data_key(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(CFG->data_key, sizeof CFG->data_key, v, err, es);
}

static int set_userkeys_max(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_int(&CFG->userkeys_max, v, 1, INT32_MAX / 4, err, es);
}

static int set_key_file(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(CFG->key_file, sizeof CFG->key_file, v, err, es);
}

static int set_listen(void *cfg, const char *v, char *err, size_t es)
{
    const char *colon = strrchr(v, ':');
    int64_t port;
    if (!colon || colon == v || (size_t)(colon - v) >= sizeof CFG->host ||
        core_parse_i64(colon + 1, 0, 65535, &port)) {
        snprintf(err, es, "expected HOST:PORT, e.g. 0.0.0.0:8080");
        return CORE_E_INVALID;
    }
    memcpy(CFG->host, v, (size_t)(colon - v));
    CFG->host[colon - v] = '\0';
    CFG->port = (uint16_t)port;
    return 0;
}

static int set_partitions(void *cfg, const char *v, char *err, size_t es)
{
    int64_t p;
    int rc = cli__set_int(&p, v, 1, 1024, err, es);
    if (rc == 0)
        CFG->partitions = (int32_t)p;
    CFG->partitions_set = rc == 0;
    return rc;
}

static int set_log(void *cfg, const char *v, char *err, size_t es)
{
    if (serve_log_check(v, err, es) < 0)
        return CORE_E_INVALID;
    return cli__set_str(CFG->log_uri, sizeof CFG->log_uri, v, err, es);
}

static int set_fsync(void *cfg, const char *v, char *err, size_t es)
{
    int64_t ms;
    if (!strcmp(v, "always")) {
        CFG->fsync = EVLOG_FSYNC_ALWAYS;
    } else if (!strcmp(v, "none")) {
        CFG->fsync = EVLOG_FSYNC_NONE;
    } else if (!strncmp(v, "batch:", 6) && cli__parse_duration_ms(v + 6, &ms) == 0 && ms > 0 &&
               ms <= 60000) {
        CFG->fsync = EVLOG_FSYNC_BATCH;
        CFG->fsync_ms = (int)ms;
    } else {
        snprintf(err, es, "expected always, batch:MS (1..60000) or none");
        return CORE_E_INVALID;
    }
    return 0;
}

static int set_topics(void *cfg, const char *v, char *err, size_t es)
{
    if (cli__set_str(CFG->topics_buf, sizeof CFG->topics_buf, v, err, es))
        return CORE_E_INVALID;
    CFG->ntopics = 0;
    char *save = NULL;
    for (char *t = strtok_r(CFG->topics_buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (CFG->ntopics == MAX_TOPICS) {
            snprintf(err, es, "at most %d topics", MAX_TOPICS);
            return CORE_E_INVALID;
        }
        for (const char *c = t; *c; c++) {
            if (!(*c == '.' || *c == '_' || *c == '-' || (*c >= 'a' && *c <= 'z') ||
                  (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9'))) {
                snprintf(err, es, "topic names use [a-zA-Z0-9._-]");
                return CORE_E_INVALID;
            }
        }
        CFG->topics[CFG->ntopics++] = t;
    }
    if (CFG->ntopics == 0) {
        snprintf(err, es, "at least one topic");
        return CORE_E_INVALID;
    }
    return 0;
}

static int set_size(int64_t *dst, const char *v, int64_t min, char *err, size_t es)
{
    if (core_parse_size(v, dst) || *dst < min) {
        snprintf(err, es, "expected a size >= %lld such as 1048576, 64k, 1MiB", (long long)min);
        return CORE_E_INVALID;
    }
    return 0;
}

static int set_duration(int64_t *dst, const char *v, int64_t min, char *err, size_t es)
{
    if (cli__parse_duration_ms(v, dst) || *dst < min) {
        snprintf(err, es, "expected a duration such as 500ms, 10s, 30m, 24h");
        return CORE_E_INVALID;
    }
    return 0;
}

#define SIZE_SETTER(fn, field, min)                                                                \
    static int fn(void *cfg, const char *v, char *err, size_t es)                                  \
    {                                                                                              \
        return set_size(&CFG->field, v, min, err, es);                                             \
    }
#define INT_SETTER(fn, field, min, max)                                                            \
    static int fn(void *cfg, const char *v, char *err, size_t es)                                  \
    {                                                                                              \
        return cli__set_int(&CFG->field, v, min, max, err, es);                                    \
    }
#define DURATION_SETTER(fn, field, min)                                                            \
    static int fn(void *cfg, const char *v, char *err, size_t es)                                  \
    {                                                                                              \
        return set_duration(&CFG->field, v, min, err, es);                                         \
    }

SIZE_SETTER(set_max_body, max_body, 1024)
SIZE_SETTER(set_queue_bytes, queue_bytes, 4096)
SIZE_SETTER(set_segment_bytes, segment_bytes, 4096)
INT_SETTER(set_max_records, max_records, 1, 1000000)
INT_SETTER(set_dedup_max, dedup_max, 16, 1000000000)
INT_SETTER(set_max_connections, max_connections, 1, 1000000)
INT_SETTER(set_timeout, timeout_s, 1, 3600)
INT_SETTER(set_threads, threads, 1, 256)
INT_SETTER(set_retry_after, retry_after_s, 1, 3600)
DURATION_SETTER(set_dedup_window, dedup_window_ms, 0)
DURATION_SETTER(set_segment_age, segment_ms, 1000)
DURATION_SETTER(set_checkpoint_interval, checkpoint_interval_ms, 10)
DURATION_SETTER(set_erasure_deadline, erasure_deadline_ms, 1000)
DURATION_SETTER(set_erasure_step_delay, erasure_step_delay_ms, 0)
INT_SETTER(set_processor_threads, processor_threads, 1, 1024)
DURATION_SETTER(set_retention_state, retention_state_ms, 1000)
DURATION_SETTER(set_retention_aggregates, retention_aggregates_ms, 1000)
DURATION_SETTER(set_retention_interval, retention_interval_ms, 100)
DURATION_SETTER(set_audit_rotate, audit_rotate_ms, 1000)
DURATION_SETTER(set_retention_short, retention_short_ms, 1000)
DURATION_SETTER(set_retention_long, retention_long_ms, 1000)
DURATION_SETTER(set_retention_epoch, retention_epoch_ms, 1000)

/* A TTL that may be 'off' (0: kept forever). */
static int set_ttl_or_off(int64_t *dst, const char *v, char *err, size_t es)
{
    if (!strcmp(v, "off")) {
        *dst = 0;
        return 0;
    }
    return set_duration(dst, v, 1000, err, es);
}

static int set_retention_events(void *cfg, const char *v, char *err, size_t es)
{
    return set_ttl_or_off(&CFG->retention_events_ms, v, err, es);
}

static int set_retention_audit(void *cfg, const char *v, char *err, size_t es)
{
    return set_ttl_or_off(&CFG->retention_audit_ms, v, err, es);
}

static int set_consent_required(void *cfg, const char *v, char *err, size_t es)
{
    if (!v || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
        CFG->consent_required = true;
    else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no"))
        CFG->consent_required = false;
    else {
        snprintf(err, es, "expected true or false");
        return CORE_E_INVALID;
    }
    return 0;
}

static int set_consent_policy(void *cfg, const char *v, char *err, size_t es)
{
    if (!strcmp(v, "drop"))
        CFG->consent_policy = CONSENT_POLICY_DROP;
    else if (!strcmp(v, "aggregate"))
        CFG->consent_policy = CONSENT_POLICY_AGGREGATE;
    else {
        snprintf(err, es, "expected drop or aggregate");
        return CORE_E_INVALID;
    }
    return 0;
}

static int set_ip_mode(void *cfg, const char *v, char *err, size_t es)
{
    if (!strcmp(v, "truncate"))
        CFG->ip_mode = PRIVACY_IP_TRUNCATE;
    else if (!strcmp(v, "drop"))
        CFG->ip_mode = PRIVACY_IP_DROP;
    else {
        snprintf(err, es, "expected truncate or drop");
        return CORE_E_INVALID;
    }
    return 0;
}

INT_SETTER(set_consent_max, consent_max, 1, 1000000000)

static int set_capture_ip(void *cfg, const char *v, char *err, size_t es)
{
    CFG->capture_ip = !v || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes");
    if (!CFG->capture_ip && v && strcmp(v, "false") && strcmp(v, "0") && strcmp(v, "no")) {
        snprintf(err, es, "expected true or false");
        return CORE_E_INVALID;
    }
    return 0;
}

static int set_cors(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(CFG->cors_origin, sizeof CFG->cors_origin, v, err, es);
}

/* Boolean flags: bare, or =true/false, 1/0 (environment variables and config files). */
static int set_bool(bool *dst, const char *v, char *err, size_t es)
{
    if (!v || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes")) {
        *dst = true;
    } else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no")) {
        *dst = false;
    } else {
        snprintf(err, es, "expected true or false");
        return CORE_E_INVALID;
    }
    return 0;
}

static int set_insecure(void *cfg, const char *v, char *err, size_t es)
{
    return set_bool(&CFG->insecure_no_auth, v, err, es);
}

static int set_metrics_auth(void *cfg, const char *v, char *err, size_t es)
{
    return set_bool(&CFG->metrics_auth, v, err, es);
}

static int set_batch_replies(void *cfg, const char *v, char *err, size_t es)
{
    return set_bool(&CFG->batch_replies, v, err, es);
}

static int set_checkpoint_fork(void *cfg, const char *v, char *err, size_t es)
{
    return set_bool(&CFG->checkpoint_fork, v, err, es);
}

static int set_tls_cert(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(CFG->tls_cert, sizeof CFG->tls_cert, v, err, es);
}

static int set_tls_key(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(CFG->tls_key, sizeof CFG->tls_key, v, err, es);
}

static int set_log_level(void *cfg, const char *v, char *err, size_t es)
{
    (void)cfg;
    enum core_log_level lvl;
    if (core_log_parse_level(v, &lvl)) {
        snprintf(err, es, "expected debug, info, warn or error");
        return CORE_E_INVALID;
    }
    core_log_set_level(lvl);
    return 0;
}

static int set_reco_weights(void *cfg, const char *v, char *err, size_t es)
{
    return reco_weights_parse(&CFG->reco.weights, v, err, es);
}

static int set_experiment(void *cfg, const char *v, char *err, size_t es)
{
    struct core_buf doc;
    core_buf_init(&doc);
    int rc = core_read_file(v, 1 << 20, &doc);
    if (rc < 0) {
        snprintf(err, es, "cannot read %s: %s", v, core_strerror(rc));
    } else {
        char msg[256];
        rc = reco_experiment_parse(&CFG->reco.experiment, doc.data, doc.len, msg, sizeof msg);
        if (rc < 0)
            snprintf(err, es, "%s: %s", v, msg);
    }
    core_buf_dispose(&doc);
    return rc;
}

static int set_reco_refresh(void *cfg, const char *v, char *err, size_t es)
{
    return set_duration(&CFG->reco.refresh_ms, v, 100, err, es);
}

static int set_diversity_cap(void *cfg, const char *v, char *err, size_t es)
{
    int64_t n;
    if (core_parse_i64(v, 0, RECO_COUNT_MAX, &n)) {
        snprintf(err, es, "expected 0..%d", RECO_COUNT_MAX);
        return CORE_E_INVALID;
    }
    CFG->reco.diversity_cap = (int)n;
    return 0;
}

static int set_knn_items(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_int(&CFG->reco.knn_items, v, 1000, 100000000, err, es);
}

static int set_exclude_types(void *cfg, const char *v, char *err, size_t es)
{
    uint32_t mask = 0;
    const char *p = v;
    while (*p && strcmp(v, "none")) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        int t = event_type_lookup(p, n);
        if (t < 0 || t >= 32) {
            snprintf(err, es, "unknown event type '%.*s'", (int)n, p);
            return CORE_E_INVALID;
        }
        mask |= 1u << t;
        p = end ? end + 1 : p + n;
    }
    CFG->reco.exclude_types = mask;
    return 0;
}

static int set_exploration(void *cfg, const char *v, char *err, size_t es)
{
    char *end;
    double x = strtod(v, &end);
    if (*end || !(x >= 0 && x <= 0.5)) {
        snprintf(err, es, "expected a share between 0 and 0.5");
        return CORE_E_INVALID;
    }
    CFG->reco.exploration = x;
    return 0;
}

static int set_role(void *cfg, const char *v, char *err, size_t es)
{
    if (strcmp(v, "all") && strcmp(v, "api") && strcmp(v, "processor") && strcmp(v, "collector")) {
        snprintf(err, es, "expected all (default), collector, processor or api");
        return CORE_E_INVALID;
    }
    CFG->role_api = !strcmp(v, "api");
    CFG->role_processor = !strcmp(v, "processor");
    CFG->role_collector = !strcmp(v, "collector");
    return 0;
}

static int set_keys_topic(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(CFG->keys_topic, sizeof CFG->keys_topic, v, err, es);
}

static int set_group(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(CFG->group, sizeof CFG->group, v, err, es);
}

static int set_checkpoint_dir(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(CFG->checkpoint_dir, sizeof CFG->checkpoint_dir, v, err, es);
}

DURATION_SETTER(set_group_session, group_session_ms, 1000)

static int set_store(void *cfg, const char *v, char *err, size_t es)
{
    int rc = store_addr_parse(v, &CFG->store, err, es);
    CFG->have_store = rc == 0;
    return rc;
}

DURATION_SETTER(set_store_interval, store_interval_ms, 10)

static int set_store_auth(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(CFG->store_auth, sizeof CFG->store_auth, v, err, es);
}

static const struct cli_opt serve_opts[] = {
    {"role", "ROLE",
     "all (default: collector, processors and API in one process) | collector (ingest only; "
     "needs a kafka:// --log) | processor (all but recommendation routes; publishes to "
     "--store; with a kafka:// --log it joins --group) | api (serving only, from --store)",
     set_role},
    {"keys-topic", "TOPIC",
     "Kafka mode: the topic holding per-user encryption keys (default <topic>.keys; must exist)",
     set_keys_topic},
    {"group", "NAME",
     "Kafka mode, role processor: consumer group whose members split the partitions (default "
     "recstream-processors)",
     set_group},
    {"group-session-timeout", "DURATION",
     "Kafka mode, role processor: a dead member's partitions move after this (default 10s)",
     set_group_session},
    {"checkpoint-dir", "DIR",
     "checkpoints (default DIR/checkpoints); processors of one group share one directory",
     set_checkpoint_dir},
    {"store", "URL",
     "publish serving state to Redis (role all), or read it (role api): redis://HOST:PORT or "
     "unix:///PATH",
     set_store},
    {"store-interval", "DURATION", "publish / poll the serving state this often (default 200ms)",
     set_store_interval},
    {"store-auth-file", "FILE",
     "Redis AUTH credentials for --store: one line PASSWORD or USER PASSWORD (mode 0600)",
     set_store_auth},
    {"data", "DIR", "data directory (default ./data)", set_data},
    {"listen", "HOST:PORT", "HTTP listen address (default 0.0.0.0:8080)", set_listen},
    {"partitions", "N", "log partitions, fixed when the log is created (default 8)",
     set_partitions},
    {"log", "URI",
     "event log: the embedded segment files in DIR/log (default) or "
     "kafka://HOST:PORT[,HOST:PORT]/TOPIC (an existing topic; its partition count is used)",
     set_log},
    {"fsync", "POLICY", "always | batch:MS | none (default always)", set_fsync},
    {"key-file", "PATH", "pseudonymisation secret (default DIR/privacy/pseudonym.key)",
     set_key_file},
    {"data-key", "FILE",
     "encryption-at-rest key (default DIR/privacy/data.key; back it up: losing it loses the data)",
     set_data_key},
    {"userkeys-max", "N", "users with an encryption key at most (default 1000000)",
     set_userkeys_max},
    {"topics", "A,B", "Kafka REST topic names accepted (default user-interactions)", set_topics},
    {"max-body", "SIZE", "largest request body (default 1MiB; larger: 413)", set_max_body},
    {"max-records", "N", "most records per request (default 10000; more: 413)", set_max_records},
    {"queue-bytes", "SIZE", "bound on unwritten log bytes (default 64MiB; full: 429)",
     set_queue_bytes},
    {"segment-bytes", "SIZE", "roll log segments at this size (default 64MiB)", set_segment_bytes},
    {"segment-age", "DURATION", "roll log segments at this age (default 1h)", set_segment_age},
    {"retention-events", "DURATION",
     "delete log segments whose newest event was ingested longer ago, once checkpointed "
     "past (default 30d; 'off' keeps them)",
     set_retention_events},
    {"retention-state", "DURATION",
     "per-user state idle this long (event time) is expired (default 30d)", set_retention_state},
    {"retention-aggregates", "DURATION",
     "item state idle this long (event time) is expired (default 30d)", set_retention_aggregates},
    {"retention-audit", "DURATION",
     "delete rotated audit files whose last entry is older (default off: kept)",
     set_retention_audit},
    {"audit-rotate", "DURATION", "start a new audit file this often (default 1d)",
     set_audit_rotate},
    {"retention-short", "DURATION",
     "properties a schema marks \"x-retention\": \"short\" become unreadable after this "
     "(default 7d; sealed under epoch keys when shorter than --retention-events)",
     set_retention_short},
    {"retention-long", "DURATION",
     "TTL of \"long\" properties (default: that of the events; not shorter than them)",
     set_retention_long},
    {"retention-epoch", "DURATION",
     "epoch of the field retention keys (default: the class TTL / 8, at least 1h)",
     set_retention_epoch},
    {"retention-interval", "DURATION", "period of the retention job (default 60s)",
     set_retention_interval},
    {"dedup-window", "DURATION", "remember eventIds this long (default 24h)", set_dedup_window},
    {"dedup-max", "N", "remember at most N eventIds (default 1000000)", set_dedup_max},
    {"max-connections", "N", "concurrent connections (default 10000)", set_max_connections},
    {"timeout", "SECONDS", "idle / slow client timeout (default 30)", set_timeout},
    {"threads", "N", "HTTP worker threads (default: twice the number of cores)", set_threads},
    {"retry-after", "SECONDS", "Retry-After sent with 429 (default 1)", set_retry_after},
    {"checkpoint-interval", "DURATION", "write a state checkpoint this often (default 10s)",
     set_checkpoint_interval},
    {"checkpoint-fork", "BOOL",
     "serialise periodic checkpoints in a forked child, so processing pauses only for the "
     "fork (default true; false: the processors serialise their shards themselves)",
     set_checkpoint_fork},
    {"processor-threads", "N", "stream processor threads (default 1)", set_processor_threads},
    {"cors-origin", "ORIGIN", "Access-Control-Allow-Origin for event routes (default *)", set_cors},
    {"consent-required", NULL,
     "strict opt-in: users without a consent record are not collected or personalised",
     set_consent_required},
    {"consent-policy", "POLICY",
     "events of users without personalization consent: drop (default) | aggregate (stored "
     "for item aggregates only)",
     set_consent_policy},
    {"erasure-deadline", "DURATION",
     "an erasure (DELETE /v1/users/{id}) not complete by then is reported failed and retried "
     "(default 60s)",
     set_erasure_deadline},
    {"erasure-step-delay", "DURATION", "pause after each erasure step (testing only; default 0)",
     set_erasure_step_delay},
    {"consent-max", "N", "most users with a consent record (default 1000000; full: 507)",
     set_consent_max},
    {"ip", "MODE", "client IPs in context.ip: truncate (IPv4 /24, IPv6 /48; default) | drop",
     set_ip_mode},
    {"capture-ip", NULL,
     "events without context.ip get the client's address (first X-Forwarded-For, else the "
     "connection), minimised per --ip",
     set_capture_ip},
    {"insecure-no-auth", NULL,
     "accept requests without API keys (local experiments only; default: keys required)",
     set_insecure},
    {"metrics-auth", NULL, "/metrics needs a read key too (default: open, no personal data)",
     set_metrics_auth},
    {"batch-replies", "BOOL",
     "send the replies computed in one event-loop pass together (default true; false sends "
     "each at once)",
     set_batch_replies},
    {"tls-cert", "FILE", "serve HTTPS with this PEM certificate (chain); needs --tls-key",
     set_tls_cert},
    {"tls-key", "FILE", "PEM private key of --tls-cert", set_tls_key},
    {"log-level", "LEVEL", "debug | info | warn | error (default info)", set_log_level},
    {"reco-weights", "SRC=W,..",
     "blend weights of candidate sources (session covisit collab category content trending "
     "popular context fresh)",
     set_reco_weights},
    {"experiment", "FILE", "A/B experiment: JSON with name and variants (share, weights)",
     set_experiment},
    {"reco-refresh", "DURATION", "rebuild the recommendation model this often (default 2s)",
     set_reco_refresh},
    {"diversity-cap", "N", "most items of one category per list (default 0 = half the list)",
     set_diversity_cap},
    {"reco-knn-items", "N",
     "items holding a whole-history co-occurrence row, per partition (default 200000; beyond, "
     "the least recently active quarter's rows are dropped)",
     set_knn_items},
    {"exploration", "SHARE", "share of slots for new items (default 0.1)", set_exploration},
    {"reco-exclude-types", "T,T",
     "items a user had these events with are not recommended again (default: every item "
     "type with a positive weight; 'none' allows repeats)",
     set_exclude_types},
};

static void serve_defaults(struct serve_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->data, sizeof c->data, "./data");
    snprintf(c->host, sizeof c->host, "0.0.0.0");
    c->port = 8080;
    c->partitions = 8;
    snprintf(c->group, sizeof c->group, "recstream-processors");
    c->fsync = EVLOG_FSYNC_ALWAYS;
    c->fsync_ms = 5;
    char err[64];
    set_topics(c, "user-interactions", err, sizeof err);
    c->max_body = 1024 * 1024;
    c->max_records = 10000;
    c->queue_bytes = 64 * 1024 * 1024;
    c->segment_bytes = 64 * 1024 * 1024;
    c->segment_ms = 3600 * 1000;
    c->dedup_window_ms = 24LL * 3600 * 1000;
    c->dedup_max = 1000000;
    c->max_connections = 10000;
    c->timeout_s = 30;
    struct http_options hd;
    http_options_init(&hd);
    c->threads = hd.threads; /* the HTTP layer's defaults */
    c->batch_replies = hd.batch_replies;
    c->retry_after_s = 1;
    c->checkpoint_interval_ms = 10000;
    c->checkpoint_fork = stream_fork_checkpoints_supported();
    c->processor_threads = 1;
    c->retention_events_ms = 30LL * 24 * 3600 * 1000;
    c->retention_state_ms = 30LL * 24 * 3600 * 1000;
    c->retention_aggregates_ms = 30LL * 24 * 3600 * 1000;
    c->retention_interval_ms = 60 * 1000;
    c->retention_short_ms = 7LL * 24 * 3600 * 1000;
    c->audit_rotate_ms = 24LL * 3600 * 1000;
    snprintf(c->cors_origin, sizeof c->cors_origin, "*");
    reco_config_init(&c->reco);
    c->consent_policy = CONSENT_POLICY_DROP;
    c->consent_max = 1000000;
    c->erasure_deadline_ms = 60000;
    c->ip_mode = PRIVACY_IP_TRUNCATE;
    c->store_interval_ms = 200;
}

static const char *fsync_name(const struct serve_config *c, char *buf, size_t size)
{
    if (c->fsync == EVLOG_FSYNC_ALWAYS)
        return "always";
    if (c->fsync == EVLOG_FSYNC_NONE)
        return "none";
    snprintf(buf, size, "batch:%d", c->fsync_ms);
    return buf;
}

/* Opens DIR/registry and makes sure the built-in envelope schema is registered. */
static int open_registry(const struct serve_config *c, struct schema_registry **out)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/registry", c->data);
    int rc = schema_registry_open(path, out);
    if (rc < 0) {
        LOG_ERROR("cannot open the schema registry", "dir=%s err=\"%s\"", path,
                  schema_registry_strerror(rc));
        return rc;
    }
    struct core_buf doc, msg;
    core_buf_init(&doc);
    core_buf_init(&msg);
    event_envelope_schema_json(&doc);
    rc = schema_registry_put(*out, "recstream.event", "1-0-0", doc.data, doc.len, &msg);
    if (rc < 0)
        LOG_WARN("built-in envelope schema not registered", "err=\"%s\" detail=\"%s\"",
                 schema_registry_strerror(rc), msg.data ? msg.data : "");
    core_buf_dispose(&doc);
    core_buf_dispose(&msg);
    return 0;
}

/* Opens DIR/privacy/audit.log and the consent store, and records the consent settings this
 * server enforces (so a policy change is itself in the audit trail). */
static int open_privacy(const struct serve_config *c, const struct privacy_key *key,
                        const struct seal_key *data_key, struct audit **audit,
                        struct consent **consent)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/privacy/audit.log", c->data);
    int rc = audit_open(path, data_key, audit);
    if (rc < 0) {
        LOG_ERROR("cannot open the audit log", "path=%s err=\"%s\"", path, core_strerror(rc));
        return rc;
    }
    struct consent_options o;
    consent_options_init(&o);
    snprintf(path, sizeof path, "%s/privacy/consent", c->data);
    o.dir = path;
    o.max_entries = c->consent_max;
    o.required = c->consent_required;
    o.policy = c->consent_policy;
    o.fsync = c->fsync != EVLOG_FSYNC_NONE;
    o.audit = *audit;
    o.key = key;
    o.data_key = data_key;
    rc = consent_open(&o, consent);
    if (rc < 0) {
        LOG_ERROR("cannot open the consent store", "dir=%s err=\"%s\"", path, core_strerror(rc));
        return rc;
    }
    char detail[256];
    snprintf(detail, sizeof detail,
             "{\"consentRequired\":%s,\"consentPolicy\":\"%s\",\"ip\":\"%s\"}",
             c->consent_required ? "true" : "false",
             c->consent_policy == CONSENT_POLICY_DROP ? "drop" : "aggregate",
             c->ip_mode == PRIVACY_IP_DROP ? "drop" : "truncate");
    rc = audit_append(*audit, "system", "serve.start", "", "cli", detail);
    if (rc < 0)
        LOG_ERROR("cannot write to the audit log", "err=\"%s\"", core_strerror(rc));
    return rc;
}

/* The API's audit hook: every authorised admin request goes to the hash-chained audit log,
 * as "key:<id>". A path under /v1/users/ names a user: it is not written (the action's route
 * pattern says what was done; user-level actions write their own entries with a
 * subject_ref). */
static void audit_admin(void *arg, const char *actor_key_id, const char *action,
                        const char *subject, const char *detail_json)
{
    char actor[64];
    snprintf(actor, sizeof actor, "key:%s", actor_key_id[0] ? actor_key_id : "none");
    if (!strncmp(subject, "/v1/users/", 10))
        subject = "";
    int rc = audit_append(arg, actor, action, subject, "api", detail_json);
    if (rc < 0)
        LOG_ERROR("cannot write an admin action to the audit log", "action=\"%s\" err=\"%s\"",
                  action, core_strerror(rc));
}

/* Wipes a buffer that held a secret. */
static void wipe_buf(struct core_buf *b)
{
    if (b->data)
        sodium_memzero(b->data, b->cap);
}

/* Reads --tls-cert and --tls-key into memory (libmicrohttpd takes PEM from memory). */
static int read_tls(const struct serve_config *c, struct core_buf *cert, struct core_buf *key)
{
    if (!c->tls_cert[0] && !c->tls_key[0])
        return 0;
    if (!c->tls_cert[0] || !c->tls_key[0]) {
        LOG_ERROR("TLS needs both --tls-cert and --tls-key", NULL);
        return CORE_E_INVALID;
    }
    if (!http_tls_supported()) {
        LOG_ERROR("this libmicrohttpd was built without TLS (GnuTLS) support", NULL);
        return CORE_E_INVALID;
    }
    const char *paths[2] = {c->tls_cert, c->tls_key};
    struct core_buf *bufs[2] = {cert, key};
    for (int i = 0; i < 2; i++) {
        int rc = core_read_file(paths[i], 1 << 20, bufs[i]);
        if (rc == 0 && !strstr(bufs[i]->data, "-----BEGIN "))
            rc = CORE_E_PARSE;
        if (rc < 0) {
            LOG_ERROR(i ? "cannot read the TLS key (PEM)" : "cannot read the TLS certificate (PEM)",
                      "path=%s err=\"%s\"", paths[i], core_strerror(rc));
            return rc;
        }
    }
    return 0;
}

/* /metrics additions of the embedded node: the retention job's and the store publisher's. */
struct serve_metrics {
    struct serve_retention *ret;
    struct store_publisher *pub;
    struct stream *st;
    struct evlog_group *group;
};

static void serve_metrics(void *arg, struct core_buf *out)
{
    struct serve_metrics *m = arg;
    if (m->ret) /* none on a collector */
        serve_retention_metrics(m->ret, out);
    store_publisher_metrics(m->pub, out);
    if (m->group)
        serve_group_metrics(m->st, m->group, out);
}

static int run(struct serve_config *c)
{
    struct store_publisher *pub = NULL;
    struct serve_metrics sm = {NULL, NULL, NULL, NULL};
    int rc, lock_fd = -1;
    struct evlog *log = NULL;
    struct ingest *ing = NULL;
    struct api *api = NULL;
    struct http_server *srv = NULL;
    struct schema_registry *reg = NULL;
    struct deadletters *dead = NULL;
    struct catalog *cat = NULL;
    struct stream *st = NULL;
    struct reco *reco = NULL;
    struct state_shard **shards = NULL;
    struct audit *audit = NULL;
    struct serve_retention *ret = NULL;
    struct consent *consent = NULL;
    struct erasures *erasures = NULL;
    struct serve_erasure *erasure_job = NULL;
    struct privacy_key key;
    bool key_loaded = false, keys_open = false;
    struct cli_keys keys;
    struct userkeys_kafka *keys_kafka = NULL;
    struct evlog_group *group = NULL;
    char path[1100];
    struct apikey_store *apikeys = NULL;
    struct core_buf tls_cert, tls_key;
    core_buf_init(&tls_cert);
    core_buf_init(&tls_key);

    rc = core_mkdirs(c->data, 0700);
    if (rc < 0) {
        LOG_ERROR("cannot create data directory", "dir=%s err=\"%s\"", c->data, core_strerror(rc));
        goto out;
    }
    /* Only one server may own a data directory. The lock lives as long as the process. */
    rc = cli__lock_data_dir(c->data, &lock_fd);
    if (rc < 0) {
        LOG_ERROR(rc == CORE_E_EXISTS ? "data directory is in use by another recstream"
                                      : "cannot lock data directory",
                  "dir=%s err=\"%s\"", c->data, core_strerror(rc));
        goto out;
    }
    if (!c->key_file[0])
        snprintf(c->key_file, sizeof c->key_file, "%s/privacy/pseudonym.key", c->data);
    bool created = false;
    rc = privacy_key_load_or_create(c->key_file, &key, &created);
    if (rc < 0) {
        LOG_ERROR("cannot load pseudonymisation key", "path=%s err=\"%s\"", c->key_file,
                  core_strerror(rc));
        goto out;
    }
    key_loaded = true;
    if (created)
        LOG_INFO("created pseudonymisation key (keep it secret, back it up)", "path=%s",
                 c->key_file);

    rc = cli__apikeys_open(c->data, c->insecure_no_auth,
                           "every route: read, change and delete everything", &apikeys);
    if (rc < 0)
        goto out;
    rc = read_tls(c, &tls_cert, &tls_key);
    if (rc < 0)
        goto out;
    if (serve_log_is_kafka(c->log_uri)) /* keys shared by every node: the keys topic */
        rc = serve_kafka_keys_open(c->data, c->data_key, c->userkeys_max, c->log_uri, c->keys_topic,
                                   &keys, &keys_kafka);
    else
        rc = cli__keys_open(c->data, c->data_key, true, c->userkeys_max, &keys);
    if (rc < 0)
        goto out;
    keys_open = true;

    struct evlog_file_options lo;
    evlog_file_options_init(&lo);
    lo.keys = keys.uk;
    snprintf(path, sizeof path, "%s/log", c->data);
    lo.dir = path;
    lo.partitions = c->partitions;
    lo.fsync = c->fsync;
    lo.fsync_interval_ms = c->fsync_ms;
    lo.segment_bytes = c->segment_bytes;
    lo.segment_ms = c->segment_ms;
    lo.queue_bytes = c->queue_bytes;
    int64_t t0 = core_mono_ns();
    if (serve_log_is_kafka(c->log_uri)) {
        rc = serve_kafka_open(c->log_uri, c->partitions_set ? c->partitions : 0, c->queue_bytes,
                              keys.uk, &log);
        snprintf(path, sizeof path, "%s", c->log_uri);
        if (rc == 0)
            c->partitions = log->partitions;
    } else {
        rc = evlog_file_open(&lo, &log);
    }
    if (rc < 0) {
        LOG_ERROR("cannot open the event log", "dir=%s err=\"%s\"", path, core_strerror(rc));
        goto out;
    }
    rc = open_registry(c, &reg);
    if (rc < 0)
        goto out;
    struct deadletter_options dlo;
    deadletter_options_init(&dlo);
    char dl_path[1100];
    snprintf(dl_path, sizeof dl_path, "%s/deadletters", c->data);
    dlo.dir = dl_path;
    dlo.key = &keys.data_key;
    rc = deadletter_open(&dlo, &dead);
    if (rc < 0) {
        LOG_ERROR("cannot open the dead-letter store", "dir=%s err=\"%s\"", dl_path,
                  core_strerror(rc));
        goto out;
    }
    struct catalog_options co;
    catalog_options_init(&co);
    char cat_path[1100];
    snprintf(cat_path, sizeof cat_path, "%s/catalog", c->data);
    co.dir = cat_path;
    co.fsync = c->fsync != EVLOG_FSYNC_NONE;
    rc = catalog_open(&co, &cat);
    if (rc < 0) {
        LOG_ERROR("cannot open the item catalog", "dir=%s err=\"%s\"", cat_path, core_strerror(rc));
        goto out;
    }
    rc = open_privacy(c, &key, &keys.data_key, &audit, &consent);
    if (rc < 0)
        goto out;
    rc = serve_fields_policy(keys.ek, c->retention_events_ms, c->retention_short_ms,
                             c->retention_long_ms, c->retention_epoch_ms);
    if (rc < 0)
        goto out;
    struct ingest_config ic;
    ingest_config_init(&ic);
    ic.epochkeys = keys.ek;
    ic.consent = consent;
    ic.ip_mode = c->ip_mode;
    ic.dedup_window_ms = c->dedup_window_ms;
    ic.dedup_max = c->dedup_max;
    ic.registry = reg;
    ic.deadletters = dead;
    ic.userkeys = keys.uk;
    /* Every secret version: older ones move users to the newest (docs/PRIVACY.md, Identity). */
    struct privacy_keyring *ring = core_xmalloc(sizeof *ring);
    if (privacy_keyring_load(c->key_file, ring) == 0 && ring->n > 1) {
        ic.keyring = ring;
        LOG_INFO("pseudonymisation secret has older versions; users move to the newest",
                 "versions=%d newest=%u", ring->n, (unsigned)ring->version[0]);
    }
    rc = ingest_new(&ic, log, &key, &ing);
    privacy_keyring_dispose(ring);
    free(ring);
    if (rc < 0) {
        LOG_ERROR("cannot start ingest", "err=\"%s\"", core_strerror(rc));
        goto out;
    }
    LOG_INFO("log recovered", "dir=%s partitions=%d took_ms=%lld", path, (int)c->partitions,
             (long long)((core_mono_ns() - t0) / 1000000));

    struct stream_config sc;
    stream_config_init(&sc);
    char ckpt_path[1100];
    snprintf(ckpt_path, sizeof ckpt_path, "%s/checkpoints", c->data);
    sc.checkpoint_dir = c->checkpoint_dir[0] ? c->checkpoint_dir : ckpt_path;
    sc.checkpoint_interval_ms = c->checkpoint_interval_ms;
    sc.fork_checkpoints = c->checkpoint_fork;
    sc.threads = (int)c->processor_threads;
    sc.state.catalog = cat;
    sc.state.user_ttl_ms = c->retention_state_ms;
    sc.state.item_ttl_ms = c->retention_aggregates_ms;
    sc.state.cooc_items_max = c->reco.knn_items;
    sc.data_key = &keys.data_key;
    sc.merge_fn = ingest_merge_in_append; /* identity merges reach the target's partition */
    sc.merge_arg = ing;
    bool in_group = c->role_processor && serve_log_is_kafka(c->log_uri);
    int32_t none = 0;
    if (in_group) { /* partitions come from the group's rebalances */
        sc.owned = &none;
        sc.nowned = 0;
        sc.revoked_fn = serve_publisher_barrier; /* nothing revoked is published after */
        sc.revoked_arg = &pub;
    }
    rc = c->role_collector ? 0 : stream_start(&sc, log, &st);
    if (rc < 0)
        goto out;
    if (c->role_collector)
        goto serve_http; /* no stream, retention, recommender, publisher or erasure job */
    struct serve_retention_config rcfg = {.log = log,
                                          .stream = st,
                                          .interval_ms = c->retention_interval_ms,
                                          .events_ms = c->retention_events_ms,
                                          .ticks = true,
                                          .audit = audit,
                                          .audit_rotate_ms = c->audit_rotate_ms,
                                          .audit_ms = c->retention_audit_ms,
                                          .epochkeys = keys.ek,
                                          .user_ttl_ms = c->retention_state_ms,
                                          .item_ttl_ms = c->retention_aggregates_ms};
    rc = serve_retention_start(&rcfg, &ret);
    if (rc < 0) {
        LOG_ERROR("cannot start the retention job", "err=\"%s\"", core_strerror(rc));
        goto out;
    }
    shards = core_xmalloc((size_t)stream_partitions(st) * sizeof *shards);
    for (int32_t p = 0; p < stream_partitions(st); p++)
        shards[p] = stream_shard(st, p);
    if (!c->role_processor) { /* processors serve no recommendations (API nodes do) */
        reco = reco_new(&c->reco, shards, stream_partitions(st), cat);
        reco_start(reco);
    }
    if (c->have_store) {
        struct store_publisher_config pc = {.addr = c->store,
                                            .shards = shards,
                                            .nshards = stream_partitions(st),
                                            .catalog = cat,
                                            .interval_ms = c->store_interval_ms,
                                            .user_ttl_ms = c->retention_state_ms,
                                            .owns_fn = in_group ? serve_owns_partition : NULL,
                                            .owns_arg = st};
        rc = store_publisher_start(&pc, &pub);
        if (rc < 0) {
            LOG_ERROR("cannot publish serving state: redis unreachable", NULL);
            goto out;
        }
    }
    if (in_group) { /* after the publisher: revocations wait for its round in flight */
        rc = serve_group_join(st, c->log_uri, c->group, (int)c->group_session_ms, &group);
        if (rc < 0)
            goto out;
        sm.st = st;
        sm.group = group;
    }
    sm.ret = ret;
    sm.pub = pub;

    snprintf(path, sizeof path, "%s/privacy/erasures", c->data);
    rc = erasures_open(path, &keys.data_key, &erasures);
    if (rc < 0) {
        LOG_ERROR("cannot open the erasure receipts", "dir=%s err=\"%s\"", path, core_strerror(rc));
        goto out;
    }
    struct serve_erasure_config ec = {.receipts = erasures,
                                      .ing = ing,
                                      .stream = st,
                                      .userkeys = keys.uk,
                                      .consent = consent,
                                      .deadletters = dead,
                                      .audit = audit,
                                      .deadline_ms = c->erasure_deadline_ms,
                                      .step_delay_ms = c->erasure_step_delay_ms};
    rc = serve_erasure_start(&ec, &erasure_job);
    if (rc < 0)
        goto out;

serve_http:;
    struct api_config ac = {.topics = c->topics,
                            .ntopics = c->ntopics,
                            .max_records = c->max_records,
                            .retry_after_s = (int)c->retry_after_s,
                            .registry = reg,
                            .deadletters = dead,
                            .stream = st,
                            .catalog = cat,
                            .reco = reco, /* NULL on processors: API nodes serve */
                            .role_collector = c->role_collector,
                            .consent = consent,
                            .epochkeys = keys.ek,
                            .capture_ip = c->capture_ip,
                            .reco_experiment = &c->reco.experiment,
                            .keys = apikeys,
                            .metrics_auth = c->metrics_auth,
                            .audit_fn = audit_admin,
                            .audit_arg = audit,
                            .metrics_fn = serve_metrics,
                            .metrics_arg = &sm,
                            .erasures = erasures,
                            .erase_fn = serve_erasure_request,
                            .erase_arg = erasure_job};
    api = api_new(&ac, ing, log);
    struct http_options ho;
    http_options_init(&ho);
    ho.host = c->host;
    ho.port = c->port;
    ho.threads = (unsigned)c->threads;
    ho.body_limit = c->max_body;
    ho.max_connections = (unsigned)c->max_connections;
    ho.timeout_s = (unsigned)c->timeout_s;
    ho.batch_replies = c->batch_replies;
    ho.tls_cert_pem = tls_cert.len ? tls_cert.data : NULL;
    ho.tls_key_pem = tls_key.len ? tls_key.data : NULL;
    rc = http_server_start(&ho, api_handle, api, c->cors_origin[0] ? c->cors_origin : NULL, &srv);
    if (rc < 0)
        goto out;
    api_set_http_server(api, srv);
    char fs[32];
    wipe_buf(&tls_key);
    LOG_INFO(
        "recstream listening", "addr=%s:%u scheme=%s auth=%s data=%s fsync=%s topics=%s pid=%d",
        c->host, (unsigned)http_server_port(srv), tls_cert.len ? "https" : "http",
        apikeys ? "on" : "OFF", c->data, fsync_name(c, fs, sizeof fs), c->topics[0], (int)getpid());

    /* Signals were blocked in every thread; this one waits for them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int sig = 0;
    sigwait(&set, &sig);
    LOG_INFO("shutting down", "signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_server_quiesce(srv);
    evlog_flush(log); /* completes every suspended request */
    http_server_stop(srv);
    srv = NULL;
    rc = 0;
out:
    if (srv)
        http_server_stop(srv);
    api_free(api);
    sm.group = NULL;
    if (group) /* revokes (checkpoints for the next owner); before the publisher it waits on */
        stream_group_leave(group);
    serve_erasure_stop(erasure_job); /* it uses ingest, the stream and the stores below */
    erasures_free(erasures);
    store_publisher_stop(pub); /* before the processors: it reads their shards */
    reco_free(reco);           /* before the processors: its refresher reads their shards */
    free(shards);
    serve_retention_stop(ret); /* it uses the log and the stream */
    /* Processors read the log: stop them (final checkpoint on a clean stop) before closing. */
    if (st)
        stream_stop(st, rc == 0);
    ingest_free(ing); /* after the processors: they append merge_in records through it */
    if (log)
        evlog_close(log);
    deadletter_free(dead);
    catalog_close(cat); /* after the server and the processors, its readers */
    consent_close(consent);
    audit_close(audit);
    schema_registry_free(reg);
    apikey_store_free(apikeys);
    wipe_buf(&tls_key);
    core_buf_dispose(&tls_key);
    core_buf_dispose(&tls_cert);
    if (key_loaded)
        privacy_key_dispose(&key);
    userkeys_kafka_free(keys_kafka); /* after the log, the ingest and the stream: they read keys */
    if (keys_open)
        cli__keys_close(&keys); /* after the log, the ingest and the stream, its users */
    if (lock_fd >= 0)
        close(lock_fd);
    if (rc == 0)
        LOG_INFO("stopped cleanly", NULL);
    return rc < 0 ? 1 : 0;
}

/* --role api: the serving-only node (serve_api.c) with the flags that apply to it. */
static int run_api(struct serve_config *c)
{
    if (!c->have_store) {
        LOG_ERROR("--role api needs --store redis://HOST:PORT (where the processors publish)",
                  NULL);
        return 2;
    }
    if (c->tls_cert[0]) {
        LOG_ERROR("--role api does not serve HTTPS yet: put it behind a TLS-terminating proxy",
                  NULL);
        return 2;
    }
    if (!c->key_file[0])
        snprintf(c->key_file, sizeof c->key_file, "%s/privacy/pseudonym.key", c->data);
    struct serve_api_config ac = {.data = c->data,
                                  .key_file = c->key_file,
                                  .host = c->host,
                                  .port = c->port,
                                  .threads = (unsigned)c->threads,
                                  .max_body = c->max_body,
                                  .max_connections = c->max_connections,
                                  .timeout_s = c->timeout_s,
                                  .insecure_no_auth = c->insecure_no_auth,
                                  .metrics_auth = c->metrics_auth,
                                  .batch_replies = c->batch_replies,
                                  .cors_origin = c->cors_origin[0] ? c->cors_origin : NULL,
                                  .reco = c->reco,
                                  .store = c->store,
                                  .store_interval_ms = c->store_interval_ms,
                                  .user_ttl_ms = c->retention_state_ms,
                                  .item_ttl_ms = c->retention_aggregates_ms};
    return serve_api_run(&ac);
}

int cli_cmd_serve(int argc, char **argv)
{
    struct serve_config c;
    serve_defaults(&c);
    int rc = cli__parse("serve", "[options]", serve_opts, sizeof serve_opts / sizeof *serve_opts,
                        &c, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (c.store_auth[0]) {
        char err[1200];
        if (!c.have_store) {
            fprintf(stderr, "recstream serve: --store-auth-file needs --store\n");
            return 2;
        }
        if (store_addr_read_auth(&c.store, c.store_auth, err, sizeof err) < 0) {
            fprintf(stderr, "recstream serve: --store-auth-file: %s\n", err);
            return 2;
        }
    }
    if (c.role_processor && !c.have_store) {
        fprintf(stderr, "recstream serve: --role processor needs --store (API nodes serve "
                        "recommendations from it)\n");
        return 2;
    }
    if (c.role_collector && !serve_log_is_kafka(c.log_uri)) {
        fprintf(stderr, "recstream serve: --role collector needs --log kafka://HOST:PORT/TOPIC "
                        "(the processors read the events from there)\n");
        return 2;
    }
    if (c.role_api)
        return run_api(&c);
    return run(&c);
}
