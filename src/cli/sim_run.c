/* The driver of `recstream simulate`: uploads the catalog, runs the users of the model on
 * one or more worker threads (each with its own keep-alive connection and its own users),
 * paces events with a token bucket, retries without ever changing a batch, and reports. */
#include "cli/sim.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CATALOG_BATCH 500
#define BATCH_MAX 500            /* events in one POST /v1/events */
#define REQUEST_TIMEOUT_MS 10000 /* per request; also bounds how long a stop can take */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define REPORT_EVERY_NS (10LL * 1000000000)
#define MESSAGES_MAX 10         /* error lines shown on stderr; the rest are only counted */
#define AUTO_WORKERS_ABOVE 5000 /* ev/s one connection sustains with room to spare */
#define AUTO_WORKERS 4

/* Totals of the run, updated by every worker. */
struct stats {
    _Atomic uint64_t events;   /* stored by the server (accepted, duplicates included) */
    _Atomic uint64_t rejected; /* refused by the server's validation */
    _Atomic uint64_t dropped;  /* never delivered: the run stopped while retrying */
    _Atomic uint64_t rec_requests, rec_missing, rec_empty;
    _Atomic uint64_t impressions, clicks, carts, purchases, views;
    _Atomic uint64_t prefs, prefs_missing;
    _Atomic uint64_t errors;  /* failed requests and error replies */
    _Atomic uint64_t retries; /* resends after 429, 5xx or a connection error */
};

struct run {
    const struct sim_options *o;
    struct sim_model model;
    struct stats st;
    atomic_bool stop;
    atomic_bool reached; /* some request got a reply */
    atomic_bool refused; /* the server refused the API key: the run stops */
    atomic_uint messages;
    atomic_bool said_no_recs, said_no_prefs;
    pthread_mutex_t mu; /* with cv: wakes sleeping workers when the run stops */
    pthread_cond_t cv;
    sigset_t signals; /* SIGINT, SIGTERM: blocked everywhere, waited for by the main thread */
    int64_t start_ns, deadline_ns; /* deadline 0: none */
    char run_id[16];
};

struct worker {
    struct run *run;
    size_t id;
    double rate; /* events per second for this worker */
    size_t batch_target;
    struct httpc *http;
    struct sim_sched sched;
    struct core_buf body, path;
    struct httpc_reply reply;
    struct sim_sink sink;
    char run_id[48];
    pthread_t thread;
};

static void count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t get(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static bool stopping(struct run *r)
{
    return atomic_load(&r->stop);
}

static void request_stop(struct run *r)
{
    pthread_mutex_lock(&r->mu);
    atomic_store(&r->stop, true);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* A bounded number of error lines on stderr; every error is counted in stats either way. */
static void message(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void message(struct run *r, const char *fmt, ...)
{
    unsigned n = atomic_fetch_add(&r->messages, 1);
    if (n > MESSAGES_MAX)
        return;
    if (n == MESSAGES_MAX) {
        fprintf(stderr, "recstream simulate: further errors are only counted\n");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fputs("recstream simulate: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Sleeps ns on a worker thread; returns true (early) when the run stops. */
static bool worker_sleep(struct run *r, int64_t ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t until = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + ns;
    ts.tv_sec = until / 1000000000;
    ts.tv_nsec = until % 1000000000;
    pthread_mutex_lock(&r->mu);
    while (!atomic_load(&r->stop)) {
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&r->mu);
    return stopping(r);
}

/* Waits ns on the main thread: returns true when SIGINT / SIGTERM arrived or the duration
 * is over (the run is then stopped), false when ns passed. */
static bool main_wait(struct run *r, int64_t ns)
{
    int64_t until = core_mono_ns() + (ns > 0 ? ns : 0);
    if (r->deadline_ns && r->deadline_ns < until)
        until = r->deadline_ns;
    for (;;) {
        int64_t left = until - core_mono_ns();
        if (left < 0)
            left = 0; /* still collect a signal that is already pending */
        struct timespec ts = {.tv_sec = left / 1000000000, .tv_nsec = left % 1000000000};
        int sig = sigtimedwait(&r->signals, NULL, &ts);
        if (sig > 0 || (r->deadline_ns && core_mono_ns() >= r->deadline_ns)) {
            request_stop(r);
            return true;
        }
        if (sig < 0 && errno == EINTR)
            continue;
        if (core_mono_ns() >= until)
            return false;
    }
}

static int64_t backoff_ms(int attempt)
{
    int64_t ms = BACKOFF_MIN_MS << (attempt < 6 ? attempt : 6);
    return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

static void set_path(struct core_buf *path, const struct run *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_path(struct core_buf *path, const struct run *r, const char *fmt, ...)
{
    char tail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tail, sizeof tail, fmt, ap);
    va_end(ap);
    core_buf_reset(path);
    core_buf_puts(path, r->o->url.base);
    core_buf_puts(path, tail);
}

/* The "message" of an error reply, for stderr. */
static void reply_message(const struct httpc_reply *reply, char *out, size_t size)
{
    cJSON *j = cJSON_ParseWithLength(reply->body.data ? reply->body.data : "", reply->body.len);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
    snprintf(out, size, "%s",
             cJSON_IsString(m) ? m->valuestring
             : reply->body.len ? reply->body.data
                               : "");
    cJSON_Delete(j);
}

static int64_t json_int(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 ? (int64_t)v->valuedouble : 0;
}

/* ---- the catalog ------------------------------------------------------------------------- */

/* Reports an upload reply; returns true when the batch is done (stored or refused for good),
 * false when it should be sent again. */
static bool catalog_reply(struct run *r, const struct httpc_reply *reply, size_t first, size_t n,
                          bool *no_route)
{
    char msg[512];
    if (reply->status == 404) {
        *no_route = true;
        return true;
    }
    if (reply->status == 429 || reply->status >= 500)
        return false;
    if (reply->status == 401 || reply->status == 403) {
        reply_message(reply, msg, sizeof msg);
        fprintf(stderr,
                "recstream simulate: the server refused the API key (HTTP %d: %s); simulate "
                "uploads the catalog, so give it an admin key with --api-key or "
                "RECSTREAM_API_KEY (e.g. the key in DATA/privacy/admin.key)\n",
                reply->status, msg);
        atomic_store(&r->refused, true);
        return true;
    }
    if (reply->status != 200 && reply->status != 201 && reply->status != 422) {
        reply_message(reply, msg, sizeof msg);
        count(&r->st.errors, 1);
        message(r, "catalog: items %zu..%zu refused (HTTP %d): %s", first + 1, first + n,
                reply->status, msg);
        return true;
    }
    cJSON *j = cJSON_ParseWithLength(reply->body.data, reply->body.len);
    int64_t rejected = json_int(j, "rejected");
    if (rejected > 0) {
        const cJSON *errs = cJSON_GetObjectItemCaseSensitive(j, "errors");
        char *first_err = cJSON_PrintUnformatted(cJSON_GetArrayItem(errs, 0));
        message(r, "catalog: %lld of items %zu..%zu rejected; first: %s", (long long)rejected,
                first + 1, first + n, first_err ? first_err : "?");
        free(first_err);
    }
    cJSON_Delete(j);
    return true;
}

/* Sends the catalog in NDJSON batches. Returns false when the run stopped first. */
static bool upload_catalog(struct run *r, struct httpc *http)
{
    const struct sim_model *m = &r->model;
    struct core_buf body, path;
    struct httpc_reply reply;
    core_buf_init(&body);
    core_buf_init(&path);
    httpc_reply_init(&reply);
    set_path(&path, r, "/v1/items");
    bool no_route = false, done = true;
    for (size_t first = 0; first < m->nitems && !no_route && done && !atomic_load(&r->refused);
         first += CATALOG_BATCH) {
        size_t n = m->nitems - first < CATALOG_BATCH ? m->nitems - first : CATALOG_BATCH;
        int64_t now = core_now_ms();
        core_buf_reset(&body);
        for (size_t i = first; i < first + n; i++)
            sim_item_json(m, i, now, &body);
        for (int attempt = 0;; attempt++) {
            int rc = httpc_request(http, "POST", path.data, "application/x-ndjson", body.data,
                                   body.len, &reply);
            int64_t wait_ms = backoff_ms(attempt);
            if (rc == 0) {
                atomic_store(&r->reached, true);
                if (catalog_reply(r, &reply, first, n, &no_route))
                    break;
                if (reply.status == 429 && reply.retry_after_s >= 0)
                    wait_ms = reply.retry_after_s * 1000;
            } else if (attempt == 0 || attempt % 10 == 0) {
                message(r, "cannot reach %s:%s: %s (retrying)", r->o->url.host, r->o->url.port,
                        core_strerror(rc));
            }
            count(&r->st.retries, 1);
            if (main_wait(r, wait_ms * 1000000)) {
                done = false;
                break;
            }
        }
    }
    if (no_route)
        fprintf(stderr, "recstream simulate: the server has no catalog route (POST /v1/items "
                        "answered 404); continuing without a catalog\n");
    core_buf_dispose(&body);
    core_buf_dispose(&path);
    httpc_reply_dispose(&reply);
    return done;
}

/* ---- one step of one user ---------------------------------------------------------------- */

static void send_prefs(struct worker *w, struct sim_user *u)
{
    struct run *r = w->run;
    char uid[SIM_ID_MAX];
    sim_user_id(u->idx, uid);
    set_path(&w->path, r, "/v1/users/%s/preferences", uid);
    struct core_buf body;
    core_buf_init(&body);
    sim_user_prefs_json(u, &body);
    int rc = httpc_request(w->http, "PUT", w->path.data, "application/json", body.data, body.len,
                           &w->reply);
    core_buf_dispose(&body);
    if (rc < 0) {
        count(&r->st.errors, 1);
        return;
    }
    atomic_store(&r->reached, true);
    if (w->reply.status / 100 == 2) {
        count(&r->st.prefs, 1);
    } else if (w->reply.status == 404 || w->reply.status == 405) {
        count(&r->st.prefs_missing, 1);
        if (!atomic_exchange(&r->said_no_prefs, true))
            fprintf(stderr,
                    "recstream simulate: PUT /v1/users/{id}/preferences answered %d; "
                    "skipping onboarding surveys the server does not take\n",
                    w->reply.status);
    } else {
        count(&r->st.errors, 1);
    }
}

/* Asks for u's recommendations. Returns the parsed reply (rec points into it) or NULL when
 * there are none to show (the user then browses). */
static cJSON *fetch_recs(struct worker *w, struct sim_user *u, struct sim_rec *rec)
{
    struct run *r = w->run;
    char uid[SIM_ID_MAX];
    sim_user_id(u->idx, uid);
    set_path(&w->path, r,
             "/v1/users/%s/recommendations?count=10&context.device=%s&context.locale=%s", uid,
             sim_device_name(u->device), sim_locale_name(u->locale));
    count(&r->st.rec_requests, 1);
    int rc = httpc_request(w->http, "GET", w->path.data, NULL, NULL, 0, &w->reply);
    if (rc < 0) {
        count(&r->st.errors, 1);
        return NULL;
    }
    atomic_store(&r->reached, true);
    if (w->reply.status == 404) {
        /* The route may not exist on this server (or knows nothing for the user yet). */
        count(&r->st.rec_missing, 1);
        if (!atomic_exchange(&r->said_no_recs, true))
            fprintf(stderr, "recstream simulate: GET /v1/users/{id}/recommendations answered "
                            "404; those users browse instead (counted as \"no recs\")\n");
        return NULL;
    }
    cJSON *j = w->reply.status == 200 ? cJSON_ParseWithLength(w->reply.body.data, w->reply.body.len)
                                      : NULL;
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(j, "recId");
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "items");
    if (!cJSON_IsString(rid) || !cJSON_IsArray(items)) {
        char msg[256];
        reply_message(&w->reply, msg, sizeof msg);
        count(&r->st.errors, 1);
        message(r, "recommendations for %s: HTTP %d: %s", uid, w->reply.status, msg);
        cJSON_Delete(j);
        return NULL;
    }
    rec->rec_id = rid->valuestring;
    rec->n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "itemId");
        if (cJSON_IsString(id) && rec->n < SIM_REC_MAX)
            rec->items[rec->n++] = id->valuestring;
    }
    if (rec->n == 0) {
        count(&r->st.rec_empty, 1);
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static void run_step(struct worker *w, struct sim_user *u)
{
    const struct sim_model *m = &w->run->model;
    if (u->onboarding && u->session == 0 && u->steps_left == 0)
        send_prefs(w, u);
    w->sink.now_ms = core_now_ms();
    enum sim_action act = sim_step_begin(m, u);
    struct sim_rec rec;
    cJSON *reply = act == SIM_ACT_RECOMMEND ? fetch_recs(w, u, &rec) : NULL;
    w->sink.now_ms = core_now_ms();
    if (reply)
        sim_step_recommended(m, u, &rec, &w->sink);
    else
        sim_step_browse(m, u, &w->sink);
    cJSON_Delete(reply);
    sim_step_end(u);
}

/* ---- batches of events ------------------------------------------------------------------- */

static void fill_batch(struct worker *w)
{
    struct sim_sink *k = &w->sink;
    core_buf_reset(&w->body);
    core_buf_putc(&w->body, '[');
    k->n = 0;
    k->impressions = k->clicks = k->carts = k->purchases = k->views = 0;
    while (k->n < w->batch_target && !stopping(w->run)) {
        run_step(w, sim_sched_peek(&w->sched));
        sim_sched_update(&w->sched);
    }
    core_buf_putc(&w->body, ']');
}

static void count_delivered(struct worker *w)
{
    struct stats *st = &w->run->st;
    cJSON *j = cJSON_ParseWithLength(w->reply.body.data, w->reply.body.len);
    int64_t accepted = json_int(j, "accepted"), rejected = json_int(j, "rejected");
    if (!j)
        accepted = (int64_t)w->sink.n; /* a 200 without a readable tally */
    count(&st->events, (uint64_t)accepted);
    count(&st->rejected, (uint64_t)rejected);
    if (rejected > 0) {
        char *first = cJSON_PrintUnformatted(
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "errors"), 0));
        message(w->run, "%lld of %zu events rejected; first: %s", (long long)rejected, w->sink.n,
                first ? first : "?");
        free(first);
    }
    cJSON_Delete(j);
    count(&st->impressions, w->sink.impressions);
    count(&st->clicks, w->sink.clicks);
    count(&st->carts, w->sink.carts);
    count(&st->purchases, w->sink.purchases);
    count(&st->views, w->sink.views);
}

/* POSTs the batch until it is delivered or refused for good. Every attempt sends the same
 * bytes: the eventIds in them let the server drop what an earlier attempt already stored. */
static void post_batch(struct worker *w)
{
    struct run *r = w->run;
    set_path(&w->path, r, "/v1/events");
    for (int attempt = 0;; attempt++) {
        int rc = httpc_request(w->http, "POST", w->path.data, "application/json", w->body.data,
                               w->body.len, &w->reply);
        int64_t wait_ms = backoff_ms(attempt);
        if (rc == 0) {
            atomic_store(&r->reached, true);
            int status = w->reply.status;
            if (status == 200) {
                count_delivered(w);
                return;
            }
            if (status != 429 && status < 500) { /* the same body would fail again */
                char msg[512];
                reply_message(&w->reply, msg, sizeof msg);
                count(&r->st.errors, 1);
                count(&r->st.rejected, w->sink.n);
                message(r, "POST /v1/events: HTTP %d: %s", status, msg);
                return;
            }
            if (status == 429 && w->reply.retry_after_s >= 0)
                wait_ms = w->reply.retry_after_s * 1000;
            if (status != 429)
                count(&r->st.errors, 1);
        } else {
            count(&r->st.errors, 1);
            if (attempt == 0 || attempt % 10 == 0)
                message(r, "POST /v1/events: %s (retrying)", core_strerror(rc));
        }
        if (stopping(r) || worker_sleep(r, wait_ms * 1000000)) {
            count(&r->st.dropped, w->sink.n);
            return;
        }
        count(&r->st.retries, 1);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct run *r = w->run;
    /* Token bucket as a virtual schedule: a batch of n events may go at next_ns and moves
     * it n / rate later. Credit saved while a slow server held us back is capped at half a
     * second, so a recovering server sees at most that burst. */
    double ns_per_event = 1e9 / w->rate;
    int64_t next_ns = core_mono_ns();
    while (!stopping(r) && w->sched.n > 0) {
        int64_t now = core_mono_ns();
        if (next_ns > now && worker_sleep(r, next_ns - now))
            break;
        now = core_mono_ns();
        if (next_ns < now - 500000000)
            next_ns = now - 500000000;
        fill_batch(w);
        if (w->sink.n == 0)
            break;
        post_batch(w);
        next_ns += (int64_t)((double)w->sink.n * ns_per_event);
    }
    return NULL;
}

/* ---- reporting --------------------------------------------------------------------------- */

static void print_summary(struct run *r, const char *what, double secs, uint64_t events_before,
                          double interval_s)
{
    struct stats *st = &r->st;
    uint64_t ev = get(&st->events), imp = get(&st->impressions), clk = get(&st->clicks);
    double rate = interval_s > 0 ? (double)(ev - events_before) / interval_s : 0;
    printf("simulate: %s %.1fs: events=%llu (%.0f/s) rec_requests=%llu (no recs %llu) "
           "impressions=%llu clicks=%llu ctr=%.2f%% carts=%llu purchases=%llu errors=%llu "
           "retries=%llu rejected=%llu dropped=%llu\n",
           what, secs, (unsigned long long)ev, rate, (unsigned long long)get(&st->rec_requests),
           (unsigned long long)(get(&st->rec_missing) + get(&st->rec_empty)),
           (unsigned long long)imp, (unsigned long long)clk,
           imp ? 100.0 * (double)clk / (double)imp : 0.0, (unsigned long long)get(&st->carts),
           (unsigned long long)get(&st->purchases), (unsigned long long)get(&st->errors),
           (unsigned long long)get(&st->retries), (unsigned long long)get(&st->rejected),
           (unsigned long long)get(&st->dropped));
    fflush(stdout);
}

/* ---- the run ----------------------------------------------------------------------------- */

static size_t worker_count(const struct sim_options *o)
{
    int64_t n = o->workers > 0 ? o->workers : o->rate > AUTO_WORKERS_ABOVE ? AUTO_WORKERS : 1;
    return (size_t)(n < o->users ? n : o->users);
}

static void worker_init(struct worker *w, struct run *r, size_t id, size_t nworkers)
{
    memset(w, 0, sizeof *w);
    w->run = r;
    w->id = id;
    w->rate = (double)r->o->rate / (double)nworkers;
    /* About 20 POSTs a second per worker: one step per POST at low rates, batches of up
     * to BATCH_MAX events at high ones. */
    double target = w->rate / 20.0;
    w->batch_target = target < 1 ? 1 : target > BATCH_MAX ? BATCH_MAX : (size_t)target;
    struct httpc_options ho;
    httpc_options_init(&ho);
    ho.host = r->o->url.host;
    ho.port = r->o->url.port;
    ho.timeout_ms = REQUEST_TIMEOUT_MS;
    ho.bearer = r->o->api_key;
    w->http = httpc_new(&ho);
    sim_sched_init(&w->sched, &r->model, id, nworkers);
    core_buf_init(&w->body);
    core_buf_init(&w->path);
    httpc_reply_init(&w->reply);
    snprintf(w->run_id, sizeof w->run_id, "%sw%zu", r->run_id, id);
    w->sink = (struct sim_sink){.out = &w->body, .run_id = w->run_id};
}

static void worker_dispose(struct worker *w)
{
    httpc_free(w->http);
    sim_sched_dispose(&w->sched);
    core_buf_dispose(&w->body);
    core_buf_dispose(&w->path);
    httpc_reply_dispose(&w->reply);
}

/* Runs the workers and reports every REPORT_EVERY_NS until the run stops. */
static void run_traffic(struct run *r)
{
    size_t nworkers = worker_count(r->o);
    struct worker *ws = core_xcalloc(nworkers, sizeof *ws);
    size_t started = 0;
    for (size_t i = 0; i < nworkers; i++) {
        worker_init(&ws[i], r, i, nworkers);
        if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0) {
            fprintf(stderr, "recstream simulate: cannot start worker thread\n");
            worker_dispose(&ws[i]);
            break;
        }
        started++;
    }
    int64_t last_ns = core_mono_ns();
    uint64_t last_events = 0;
    while (started > 0 && !main_wait(r, REPORT_EVERY_NS - (core_mono_ns() - last_ns))) {
        int64_t now = core_mono_ns();
        if (now - last_ns < REPORT_EVERY_NS - 1000000)
            continue;
        if (!r->o->quiet)
            print_summary(r, "after", (double)(now - r->start_ns) / 1e9, last_events,
                          (double)(now - last_ns) / 1e9);
        last_events = get(&r->st.events);
        last_ns = now;
    }
    request_stop(r);
    for (size_t i = 0; i < started; i++) {
        pthread_join(ws[i].thread, NULL);
        worker_dispose(&ws[i]);
    }
    free(ws);
}

int sim_run(const struct sim_options *o)
{
    struct run *r = core_xcalloc(1, sizeof *r);
    r->o = o;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    sigemptyset(&r->signals);
    sigaddset(&r->signals, SIGINT);
    sigaddset(&r->signals, SIGTERM);
    r->start_ns = core_mono_ns();
    r->deadline_ns = o->duration_ms > 0 ? r->start_ns + o->duration_ms * 1000000 : 0;
    /* eventIds and sessionIds must differ between runs (even of one seed), or the server's
     * dedup would swallow a second run's events. */
    uint64_t x =
        (uint64_t)core_now_ms() * 1000003u ^ (uint64_t)getpid() << 40 ^ (uint64_t)core_mono_ns();
    struct sim_rng idr;
    sim_rng_seed(&idr, x, 0);
    snprintf(r->run_id, sizeof r->run_id, "s%010llx",
             (unsigned long long)(sim_rng_next(&idr) & 0xffffffffffULL));
    sim_model_init(&r->model, (uint64_t)o->seed, (size_t)o->items, (size_t)o->users);

    struct httpc_options ho;
    httpc_options_init(&ho);
    ho.host = o->url.host;
    ho.port = o->url.port;
    ho.timeout_ms = REQUEST_TIMEOUT_MS;
    ho.bearer = o->api_key;
    struct httpc *http = httpc_new(&ho);
    if (upload_catalog(r, http) && !atomic_load(&r->refused))
        run_traffic(r);
    httpc_free(http);

    double secs = (double)(core_mono_ns() - r->start_ns) / 1e9;
    print_summary(r, "done in", secs, 0, secs);
    int status = 0;
    if (!atomic_load(&r->reached)) {
        fprintf(stderr, "recstream simulate: the server at %s:%s was never reachable\n",
                o->url.host, o->url.port);
        status = 1;
    }
    if (atomic_load(&r->refused))
        status = 1;
    sim_model_dispose(&r->model);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
    return status;
}
