/* The libmicrohttpd wrapper over real sockets, with reply batching on and off: every request
 * gets its own reply (keep-alive, many connections at once, asynchronous completions from
 * another thread or inside the handler), and with batching a reply computed in one event-loop
 * pass leaves only after the next pass's computations, without it at once. Connections are
 * spread over the worker threads in turn, and the connection limit refuses at accept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "cli/httpc.h"
#include "http/http.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct timing {
    _Atomic int64_t slow_started, slow_done, a_started, b_done;
};
static struct timing T;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void *complete_later(void *arg)
{
    struct http_request *req = arg;
    sleep_ms(2);
    core_buf_puts(&req->reply, "async");
    http_request_complete(req);
    return NULL;
}

/* /echo/X replies X; /async completes from another thread, /early inside the handler;
 * /slow, /a and /b sleep (the batching test) and note when they start and end. */
static enum http_action handler(void *app, struct http_request *req)
{
    (void)app;
    const char *u = req->url;
    if (!strncmp(u, "/echo/", 6)) {
        core_buf_puts(&req->reply, u + 6);
        return HTTP_REPLY;
    }
    if (!strcmp(u, "/async")) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, complete_later, req), 0);
        pthread_detach(t);
        return HTTP_ASYNC;
    }
    if (!strcmp(u, "/thread")) { /* which worker thread serves this connection */
        core_buf_printf(&req->reply, "%lu", (unsigned long)pthread_self());
        return HTTP_REPLY;
    }
    if (!strcmp(u, "/early")) {
        core_buf_puts(&req->reply, "early");
        http_request_complete(req);
        return HTTP_ASYNC;
    }
    if (!strcmp(u, "/slow")) {
        atomic_store(&T.slow_started, core_mono_ns());
        sleep_ms(300);
        atomic_store(&T.slow_done, core_mono_ns());
    } else if (!strcmp(u, "/a")) {
        atomic_store(&T.a_started, core_mono_ns());
        sleep_ms(150);
    } else if (!strcmp(u, "/b")) {
        sleep_ms(150);
        atomic_store(&T.b_done, core_mono_ns());
    }
    core_buf_puts(&req->reply, u + 1);
    return HTTP_REPLY;
}

static struct http_server *start_limit(bool batch, unsigned threads, unsigned max_conn)
{
    struct http_options ho;
    http_options_init(&ho);
    assert_true(ho.batch_replies); /* the default */
    ho.host = "127.0.0.1";
    ho.port = 0;
    ho.threads = threads;
    ho.batch_replies = batch;
    if (max_conn)
        ho.max_connections = max_conn;
    struct http_server *srv = NULL;
    assert_int_equal(http_server_start(&ho, handler, NULL, NULL, &srv), 0);
    return srv;
}

static struct http_server *start(bool batch, unsigned threads)
{
    return start_limit(batch, threads, 0);
}

static struct httpc *client(struct http_server *srv)
{
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)http_server_port(srv));
    struct httpc_options co;
    httpc_options_init(&co);
    co.host = "127.0.0.1";
    co.port = port;
    co.timeout_ms = 10000;
    return httpc_new(&co);
}

/* GET path; asserts 200 and the body. */
static void get_expect(struct httpc *c, const char *path, const char *body)
{
    struct httpc_reply r;
    httpc_reply_init(&r);
    assert_int_equal(httpc_request(c, "GET", path, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal((const char *)r.body.data, body);
    httpc_reply_dispose(&r);
}

static void test_keepalive_and_async(void **state)
{
    bool batch = *(const bool *)*state;
    struct http_server *srv = start(batch, 2);
    struct httpc *c = client(srv);
    char path[32], want[16];
    for (int i = 0; i < 100; i++) {
        snprintf(want, sizeof want, "%d", i);
        snprintf(path, sizeof path, "/echo/%s", want);
        get_expect(c, path, want);
        if (i % 10 == 3)
            get_expect(c, "/async", "async");
        if (i % 10 == 7)
            get_expect(c, "/early", "early");
    }
    assert_int_equal(httpc_connects(c), 1); /* one keep-alive connection throughout */
    httpc_free(c);
    http_server_stop(srv);
}

#define CLIENTS 32
#define PER_CLIENT 40

struct worker {
    struct http_server *srv;
    int id;
};

static void *worker(void *arg)
{
    struct worker *w = arg;
    struct httpc *c = client(w->srv);
    char path[48], want[32];
    for (int i = 0; i < PER_CLIENT; i++) {
        snprintf(want, sizeof want, "c%d-r%d", w->id, i);
        snprintf(path, sizeof path, "/echo/%s", want);
        get_expect(c, path, want);
        if (i % 8 == 5)
            get_expect(c, i % 16 == 5 ? "/async" : "/early", i % 16 == 5 ? "async" : "early");
    }
    httpc_free(c);
    return NULL;
}

/* Many connections at once: replies of one pass never cross connections or go missing. */
static void test_concurrent(void **state)
{
    bool batch = *(const bool *)*state;
    struct http_server *srv = start(batch, 2);
    pthread_t t[CLIENTS];
    struct worker w[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        w[i] = (struct worker){srv, i};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
    }
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(t[i], NULL);
    http_server_stop(srv);
}

struct one {
    struct httpc *c; /* connected already (a request was answered on it) */
    const char *path;
    _Atomic int64_t replied;
};

static void *get_one(void *arg)
{
    struct one *o = arg;
    get_expect(o->c, o->path, o->path + 1);
    atomic_store(&o->replied, core_mono_ns());
    return NULL;
}

/* One loop thread. /slow holds it for 300 ms; /a and /b arrive meanwhile and are computed
 * in the next pass. Batched: /slow's reply is queued in that pass and sent in the one after,
 * so it arrives after /b was computed. Unbatched: it arrives before /a starts. */
static void test_pass_order(void **state)
{
    bool batch = *(const bool *)*state;
    memset(&T, 0, sizeof T);
    struct http_server *srv = start(batch, 1);
    struct one slow = {client(srv), "/slow", 0}, a = {client(srv), "/a", 0},
               b = {client(srv), "/b", 0};
    get_expect(slow.c, "/echo/0", "0"); /* connections established: /a and /b are read */
    get_expect(a.c, "/echo/1", "1");    /* in the pass after /slow's */
    get_expect(b.c, "/echo/2", "2");
    pthread_t ts, ta, tb;
    assert_int_equal(pthread_create(&ts, NULL, get_one, &slow), 0);
    while (!atomic_load(&T.slow_started))
        sleep_ms(1);
    assert_int_equal(pthread_create(&ta, NULL, get_one, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, get_one, &b), 0);
    pthread_join(ts, NULL);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_true(atomic_load(&T.a_started) > atomic_load(&T.slow_done)); /* one loop thread */
    if (batch)
        assert_true(atomic_load(&slow.replied) > atomic_load(&T.b_done));
    else
        assert_true(atomic_load(&slow.replied) < atomic_load(&T.b_done));
    httpc_free(slow.c);
    httpc_free(a.c);
    httpc_free(b.c);
    http_server_stop(srv);
}

/* GET /thread on c: the serving thread's id. */
static unsigned long thread_of(struct httpc *c)
{
    struct httpc_reply r;
    httpc_reply_init(&r);
    assert_int_equal(httpc_request(c, "GET", "/thread", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    unsigned long t = strtoul((const char *)r.body.data, NULL, 10);
    httpc_reply_dispose(&r);
    return t;
}

/* The value on http_server_metrics' line that starts with name (-1 when missing). */
static long metric(struct http_server *srv, const char *name)
{
    struct core_buf b;
    core_buf_init(&b);
    core_buf_putc(&b, '\n');
    http_server_metrics(srv, &b);
    core_buf_putc(&b, 0);
    char line[96];
    snprintf(line, sizeof line, "\n%s", name);
    const char *p = strstr((const char *)b.data, line);
    long v = p ? strtol(p + strlen(line), NULL, 10) : -1;
    core_buf_dispose(&b);
    return v;
}

/* Threads of this process whose name is name (/proc/self/task/N/comm). */
static int threads_named(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(comm, sizeof comm, f))
            comm[strcspn(comm, "\n")] = 0;
        fclose(f);
        n += !strcmp(comm, name);
    }
    closedir(d);
    return n;
}

/* 4 workers, 8 keep-alive connections opened one after another: two on each worker thread
 * (MHD's own accepting let whichever thread woke first take them, often two threads all).
 * The per-worker gauges follow, and fall back to 0 when the clients leave. */
static void test_spread(void **state)
{
    bool batch = *(const bool *)*state;
    struct http_server *srv = start(batch, 4);
    struct httpc *c[8];
    unsigned long tid[8];
    for (int i = 0; i < 8; i++) {
        c[i] = client(srv);
        tid[i] = thread_of(c[i]);
    }
    for (int i = 0; i < 8; i++) {
        int same = 0;
        for (int j = 0; j < 8; j++)
            same += tid[j] == tid[i];
        assert_int_equal(same, 2);                 /* four threads, two connections each */
        assert_int_equal(thread_of(c[i]), tid[i]); /* and each connection stays on its thread */
    }
    const char *gauge[4] = {
        "recstream_http_connections{worker=\"0\"} ", "recstream_http_connections{worker=\"1\"} ",
        "recstream_http_connections{worker=\"2\"} ", "recstream_http_connections{worker=\"3\"} "};
    for (int k = 0; k < 4; k++)
        assert_int_equal(metric(srv, gauge[k]), 2);
    assert_int_equal(threads_named("http-worker"), 4); /* named at their first connection */
    for (int i = 0; i < 8; i++)
        httpc_free(c[i]);
    long open = 1;
    for (int t = 0; t < 500 && open > 0; t++) { /* the workers see the closes */
        open = 0;
        for (int k = 0; k < 4; k++)
            open += metric(srv, gauge[k]);
        if (open > 0)
            sleep_ms(10);
    }
    assert_int_equal(open, 0);
    assert_int_equal(metric(srv, "recstream_http_connections_refused_total "), 0);
    http_server_stop(srv);
}

/* Opens n connections (each answered), then one more, which must be closed at accept and
 * counted; the n keep working. */
static void limit_holds(struct http_server *srv, int n)
{
    struct httpc *c[8];
    for (int i = 0; i < n; i++) {
        c[i] = client(srv);
        get_expect(c[i], "/echo/in", "in");
    }
    struct httpc *extra = client(srv);
    struct httpc_reply r;
    httpc_reply_init(&r);
    assert_true(httpc_request(extra, "GET", "/echo/x", NULL, NULL, 0, &r) < 0);
    httpc_reply_dispose(&r);
    httpc_free(extra);
    assert_true(metric(srv, "recstream_http_connections_refused_total ") >= 1);
    for (int i = 0; i < n; i++) {
        get_expect(c[i], "/echo/still", "still");
        httpc_free(c[i]);
    }
}

/* --max-connections split over the workers: 4 over 2 (2 each); 3 over 4, where one worker
 * gets none (each worker taking at least one would let a fourth in). */
static void test_connection_limit(void **state)
{
    bool batch = *(const bool *)*state;
    struct http_server *srv = start_limit(batch, 2, 4);
    limit_holds(srv, 4);
    http_server_stop(srv);
    srv = start_limit(batch, 4, 3);
    limit_holds(srv, 3);
    http_server_stop(srv);
}

/* Each test runs with batching on, then off (its state points to the mode). */
static bool ON = true, OFF = false;
/* clang-format off */
#define BATCHED(f) {#f "_batched", f, NULL, NULL, &ON}
#define UNBATCHED(f) {#f "_unbatched", f, NULL, NULL, &OFF}
/* clang-format on */

int main(void)
{
    const struct CMUnitTest tests[] = {
        BATCHED(test_keepalive_and_async),
        UNBATCHED(test_keepalive_and_async),
        BATCHED(test_concurrent),
        UNBATCHED(test_concurrent),
        BATCHED(test_pass_order),
        UNBATCHED(test_pass_order),
        BATCHED(test_spread),
        UNBATCHED(test_spread),
        BATCHED(test_connection_limit),
        UNBATCHED(test_connection_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
