/* The API's access control over a real server (libmicrohttpd, file log, schema registry):
 * the audit hook sees every authorised admin request with the key id as actor, the route
 * pattern as action and the reply status, and nothing else (reads, refusals). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "api/api.h"
#include "cli/httpc.h"
#include "privacy/apikey.h"
#include "privacy/privacy.h"
#include "privacy/userkeys.h"
#include "schema/registry.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_MAX 16

struct audit_rec {
    char actor[16], action[160], subject[160], detail[64];
};

struct audit_log {
    pthread_mutex_t mu;
    int n;
    struct audit_rec recs[AUDIT_MAX];
};

static void on_audit(void *arg, const char *actor, const char *action, const char *subject,
                     const char *detail)
{
    struct audit_log *a = arg;
    pthread_mutex_lock(&a->mu);
    if (a->n < AUDIT_MAX) {
        struct audit_rec *r = &a->recs[a->n++];
        snprintf(r->actor, sizeof r->actor, "%s", actor);
        snprintf(r->action, sizeof r->action, "%s", action);
        snprintf(r->subject, sizeof r->subject, "%s", subject);
        snprintf(r->detail, sizeof r->detail, "%s", detail);
    }
    pthread_mutex_unlock(&a->mu);
}

struct fixture {
    char dir[64];
    struct privacy_key key;
    struct evlog *log;
    struct seal_key data_key;
    struct userkeys *uk; /* in memory: the sealed log needs keys */
    struct ingest *ing;
    struct schema_registry *reg;
    struct apikey_store *keys;
    struct api *api;
    struct http_server *srv;
    struct httpc *http;
    struct httpc_reply reply;
    struct audit_log audit;
    char admin[APIKEY_TEXT_LEN + 1], read[APIKEY_TEXT_LEN + 1];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/rs-apiauth-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    uint8_t bytes[32] = {7};
    privacy_key_set(&f->key, bytes);
    char path[128], admin_path[128], err[256];
    struct evlog_file_options o;
    evlog_file_options_init(&o);
    snprintf(path, sizeof path, "%s/log", f->dir);
    o.dir = path;
    o.partitions = 2;
    o.fsync = EVLOG_FSYNC_NONE;
    struct userkeys_options uo;
    userkeys_options_init(&uo);
    f->data_key.key[0] = 9;
    uo.data_key = &f->data_key;
    assert_int_equal(userkeys_open(&uo, &f->uk), 0);
    o.keys = f->uk;
    assert_int_equal(evlog_file_open(&o, &f->log), 0);
    struct ingest_config ic;
    ingest_config_init(&ic);
    ic.userkeys = f->uk;
    assert_int_equal(ingest_new(&ic, f->log, &f->key, &f->ing), 0);
    snprintf(path, sizeof path, "%s/registry", f->dir);
    assert_int_equal(schema_registry_open(path, &f->reg), 0);
    /* The key file: an admin and a read key. */
    struct apikey_list l;
    apikey_list_init(&l);
    assert_int_equal(
        apikey_list_add(&l, APIKEY_ROLE_ADMIN, "ops", NULL, 0, 0, f->admin, err, sizeof err), 0);
    assert_int_equal(
        apikey_list_add(&l, APIKEY_ROLE_READ, "app", NULL, 0, 0, f->read, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/apikeys.json", f->dir);
    assert_int_equal(apikey_list_save(path, &l), 0);
    apikey_list_dispose(&l);
    snprintf(admin_path, sizeof admin_path, "%s/admin.key", f->dir);
    bool created = true;
    assert_int_equal(apikey_store_open(path, admin_path, &f->keys, &created), 0);
    assert_false(created);
    pthread_mutex_init(&f->audit.mu, NULL);
    const char *topics[] = {"t"};
    struct api_config ac = {.topics = topics,
                            .ntopics = 1,
                            .max_records = 100,
                            .retry_after_s = 1,
                            .registry = f->reg,
                            .keys = f->keys,
                            .audit_fn = on_audit,
                            .audit_arg = &f->audit};
    f->api = api_new(&ac, f->ing, f->log);
    struct http_options ho;
    http_options_init(&ho);
    ho.host = "127.0.0.1";
    ho.port = 0;
    ho.threads = 2;
    assert_int_equal(http_server_start(&ho, api_handle, f->api, "*", &f->srv), 0);
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)http_server_port(f->srv));
    struct httpc_options co;
    httpc_options_init(&co);
    co.host = "127.0.0.1";
    co.port = port;
    f->http = httpc_new(&co);
    httpc_reply_init(&f->reply);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    httpc_reply_dispose(&f->reply);
    httpc_free(f->http);
    http_server_stop(f->srv);
    api_free(f->api);
    apikey_store_free(f->keys);
    schema_registry_free(f->reg);
    ingest_free(f->ing);
    evlog_close(f->log);
    userkeys_free(f->uk);
    pthread_mutex_destroy(&f->audit.mu);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Sends one request with key (NULL: none) through a fresh client; returns the status. */
static int send_req(struct fixture *f, const char *method, const char *path, const char *key,
                    const char *body)
{
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)http_server_port(f->srv));
    struct httpc_options co;
    httpc_options_init(&co);
    co.host = "127.0.0.1";
    co.port = port;
    co.bearer = key;
    struct httpc *c = httpc_new(&co);
    int rc = httpc_request(c, method, path, body ? "application/json" : NULL, body,
                           body ? strlen(body) : 0, &f->reply);
    httpc_free(c);
    assert_int_equal(rc, 0);
    return f->reply.status;
}

static int audit_count(struct fixture *f)
{
    pthread_mutex_lock(&f->audit.mu);
    int n = f->audit.n;
    pthread_mutex_unlock(&f->audit.mu);
    return n;
}

static void test_audit_hook_sees_admin_requests(void **state)
{
    struct fixture *f = *state;
    char admin_id[APIKEY_ID_LEN + 1];
    memcpy(admin_id, f->admin + 4, APIKEY_ID_LEN);
    admin_id[APIKEY_ID_LEN] = '\0';
    const char *schema = "{\"type\":\"object\"}";
    /* Refused requests and reads are not audited. */
    assert_int_equal(send_req(f, "PUT", "/v1/schemas/s/1-0-0", NULL, schema), 401);
    assert_int_equal(send_req(f, "PUT", "/v1/schemas/s/1-0-0", f->read, schema), 403);
    assert_int_equal(send_req(f, "GET", "/v1/schemas", f->read, NULL), 200);
    assert_int_equal(send_req(f, "GET", "/v1/schemas", f->admin, NULL), 200);
    assert_int_equal(send_req(f, "GET", "/healthz", NULL, NULL), 200);
    assert_int_equal(audit_count(f), 0);
    /* An admin write: actor, action (method + route pattern), subject, status. */
    assert_int_equal(send_req(f, "PUT", "/v1/schemas/s/1-0-0", f->admin, schema), 201);
    assert_int_equal(audit_count(f), 1);
    struct audit_rec *r = &f->audit.recs[0];
    assert_string_equal(r->actor, admin_id);
    assert_string_equal(r->action, "PUT /v1/schemas/*/*");
    assert_string_equal(r->subject, "/v1/schemas/s/1-0-0");
    assert_string_equal(r->detail, "{\"status\":201}");
    /* A failing admin request is audited with its status too; an unlisted route is admin. */
    assert_int_equal(send_req(f, "PUT", "/v1/schemas/s/1-0-0", f->admin, "{\"type\":\"string\"}"),
                     409);
    assert_int_equal(send_req(f, "GET", "/v1/nope", f->admin, NULL), 404);
    assert_int_equal(audit_count(f), 3);
    assert_string_equal(f->audit.recs[1].detail, "{\"status\":409}");
    assert_string_equal(f->audit.recs[2].action, "GET *");
    assert_string_equal(f->audit.recs[2].subject, "/v1/nope");
    /* The client used by the fixture keeps working (keep-alive after refusals). */
    assert_int_equal(httpc_request(f->http, "GET", "/readyz", NULL, NULL, 0, &f->reply), 0);
    assert_int_equal(f->reply.status, 200);
}

static void test_route_table_json(void **state)
{
    (void)state;
    struct core_buf b;
    core_buf_init(&b);
    api_auth_routes_json(&b);
    cJSON *j = cJSON_Parse(b.data);
    assert_non_null(j);
    int n = cJSON_GetArraySize(j), admin = 0, ingest = 0, open = 0;
    for (int i = 0; i < n; i++) {
        const char *role = cJSON_GetObjectItem(cJSON_GetArrayItem(j, i), "role")->valuestring;
        admin += !strcmp(role, "admin");
        ingest += !strcmp(role, "ingest");
        open += !strcmp(role, "none");
    }
    assert_true(n >= 25 && admin >= 5 && ingest >= 5 && open >= 3);
    assert_non_null(strstr(b.data,
                           "{\"method\":\"POST\",\"path\":\"/v1/beacon\",\"role\":\"ingest\","
                           "\"queryKey\":true"));
    cJSON_Delete(j);
    core_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_audit_hook_sees_admin_requests, setup, teardown),
        cmocka_unit_test(test_route_table_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
