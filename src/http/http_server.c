/*
 * libmicrohttpd wrapper. Each worker thread is an MHD daemon running its own epoll loop; each
 * connection stays on the worker our accept thread handed it to (see acceptor_main). The access
 * handler is called several times per request: first with headers only, then once per body chunk,
 * then with no data once the body is complete; only that last call dispatches to the application.
 * Asynchronous replies suspend the connection; http_request_complete resumes it from any thread and
 * MHD calls us once more to send.
 *
 * Reply batching: a reply ready in the final call is not queued at once. The handler returns
 * without a response, and MHD calls it again on its next pass over the ready connections
 * (documented: "the callback can be called again immediately"), after it has read and
 * answered the others; it is queued then and sent on the pass after. So the replies of one
 * pass leave together instead of one between each computation, as Redis writes its replies
 * before the event loop sleeps: a busy client is woken once per batch instead of once per
 * reply, and the server thread is preempted less by those wakeups. Under light load a pass
 * holds one request and the delay is two empty epoll_wait calls (BENCHMARKS.md, "Over HTTP").
 */
#include "http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * Per-connection memory for MHD's read buffer and headers. MHD clears the whole pool after
 * every request on a keep-alive connection; its 32 KiB default made that memset 6% of the
 * CPU of small POSTs. 16 KiB still leaves room for large cookie headers; bodies stream
 * through it in chunks into our own buffer.
 */
#define HTTP_CONN_MEMORY (16 * 1024)

enum req_state {
    REQ_RECEIVING,  /* headers seen, body arriving */
    REQ_TOO_BIG,    /* body over the limit: discarding, answer 413 at the end */
    REQ_IN_HANDLER, /* the handler runs (or returned HTTP_ASYNC and we are about to suspend) */
    REQ_EARLY,      /* completed while still in the handler: reply without suspending */
    REQ_SUSPENDED,  /* connection suspended until http_request_complete */
    REQ_COMPLETED,  /* resumed, or batched (see above): reply ready to send */
    REQ_SENT,
};

struct http_worker;

struct http_server {
    struct http_worker *workers; /* one MHD daemon (one thread) each, see acceptor_main */
    unsigned nworkers;
    unsigned next; /* the accept thread's turn */
    int listen_fd; /* ours, not MHD's; -1 once quiesced */
    pthread_t acceptor;
    atomic_ullong refused;
    struct http_options opt;
    http_handler_fn handler;
    void *app;
    char *cors_origin;
    atomic_uint inflight;
    uint16_t port;
};

struct conn_req {
    struct http_request req;
    struct http_server *srv;
    _Atomic int state;
    struct core_arena scratch; /* decoded query values */
};

void http_options_init(struct http_options *opt)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    opt->host = "0.0.0.0";
    opt->port = 8080;
    /* Twice the cores: when a thread is preempted by another process (or by this one's
     * processor), its connections wait for it while the core serves the other threads;
     * BENCHMARKS.md, "Over HTTP", measured cores vs 2x and 4x. */
    opt->threads = cores > 0 ? 2 * (unsigned)cores : 4;
    opt->body_limit = 1024 * 1024;
    opt->max_connections = 10000;
    opt->timeout_s = 30;
    opt->batch_replies = true;
    opt->tls_cert_pem = NULL;
    opt->tls_key_pem = NULL;
}

bool http_request_peer(struct http_request *req, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out,
                         (socklen_t)cap) != NULL;
    if (sa->sa_family == AF_INET6)
        return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
                         (socklen_t)cap) != NULL;
    return false;
}

const char *http_request_header(struct http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/*
 * MHD is told not to unescape anything (see keep_raw) so that a path segment may carry an
 * escaped '/' (item ids are often URLs): routes decode path segments themselves, and query
 * values are decoded here ('+' is a space in query strings).
 */
static size_t keep_raw(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

const char *http_request_query(struct http_request *req, const char *name)
{
    const char *raw = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
    if (!raw)
        return NULL;
    struct conn_req *cr = (struct conn_req *)req;
    size_t n = strlen(raw);
    char *out = core_arena_alloc(&cr->scratch, n + 1);
    core_percent_decode(raw, n, out, true);
    return out;
}

void http_reply_error(struct http_request *req, int error_code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    req->status = error_code / 100;
    core_buf_reset(&req->reply);
    core_buf_printf(&req->reply, "{\"error_code\":%d,\"message\":", error_code);
    core_json_cstr(&req->reply, msg);
    core_buf_putc(&req->reply, '}');
}

static enum MHD_Result send_reply(struct conn_req *cr)
{
    struct http_request *req = &cr->req;
    struct MHD_Response *resp;
    if (req->reply.len) {
        resp =
            MHD_create_response_from_buffer(req->reply.len, req->reply.data, MHD_RESPMEM_MUST_FREE);
        core_buf_init(&req->reply); /* MHD owns the memory now */
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!resp)
        return MHD_NO;
    if (req->status != 204)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                req->content_type ? req->content_type : "application/json");
    if (req->retry_after_s > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", req->retry_after_s);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, v);
    }
    if (req->auth_challenge)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"recstream\"");
    if (req->cors && cr->srv->cors_origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", cr->srv->cors_origin);
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", "POST, GET, OPTIONS");
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                "Content-Type, Authorization, X-API-Key");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "86400");
        if (strcmp(cr->srv->cors_origin, "*") != 0)
            MHD_add_response_header(resp, "Vary", "Origin");
    }
    enum MHD_Result r = MHD_queue_response(req->conn, (unsigned)req->status, resp);
    MHD_destroy_response(resp);
    atomic_store(&cr->state, REQ_SENT);
    return r;
}

void http_request_complete(struct http_request *req)
{
    struct conn_req *cr = (struct conn_req *)req;
    int expect = REQ_IN_HANDLER;
    if (atomic_compare_exchange_strong(&cr->state, &expect, REQ_EARLY))
        return; /* the connection thread sends it when the handler returns */
    /* The connection is suspended (see on_request): resume it to send. */
    struct http_server *srv = cr->srv;
    atomic_store(&cr->state, REQ_COMPLETED);
    MHD_resume_connection(req->conn);
    atomic_fetch_sub(&srv->inflight, 1);
}

/* A reply complete in the final call: queued now, or (batching) on MHD's next pass, which
 * calls us again in state REQ_COMPLETED because no response was queued. */
static enum MHD_Result reply_now_or_next_pass(struct conn_req *cr)
{
    if (!cr->srv->opt.batch_replies)
        return send_reply(cr);
    atomic_store(&cr->state, REQ_COMPLETED);
    return MHD_YES;
}

/* The handler returned HTTP_ASYNC: reply now if it already completed, else suspend. */
static enum MHD_Result wait_async(struct conn_req *cr)
{
    if (atomic_load(&cr->state) == REQ_EARLY)
        return reply_now_or_next_pass(cr);
    atomic_fetch_add(&cr->srv->inflight, 1);
    MHD_suspend_connection(cr->req.conn);
    int expect = REQ_IN_HANDLER;
    if (atomic_compare_exchange_strong(&cr->state, &expect, REQ_SUSPENDED))
        return MHD_YES; /* http_request_complete will resume us */
    /* Completed between the check and the suspension: undo it; MHD calls us again. */
    atomic_store(&cr->state, REQ_COMPLETED);
    MHD_resume_connection(cr->req.conn);
    atomic_fetch_sub(&cr->srv->inflight, 1);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct http_server *srv = cls;
    struct conn_req *cr = *con_cls;
    if (!cr) {
        cr = core_xcalloc(1, sizeof *cr);
        cr->srv = srv;
        cr->req.method = method;
        cr->req.url = url;
        cr->req.conn = conn;
        cr->req.status = 200;
        core_buf_init(&cr->req.body);
        core_buf_init(&cr->req.reply);
        core_arena_init(&cr->scratch);
        atomic_store(&cr->state, REQ_RECEIVING);
        *con_cls = cr;
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        int64_t len;
        if (cl && core_parse_i64(cl, 0, INT64_MAX, &len) == 0 && len > srv->opt.body_limit) {
            /* Refuse before reading the body; MHD closes the connection afterwards. */
            http_reply_error(&cr->req, 41301,
                             "request body of %lld bytes exceeds the limit of %lld", (long long)len,
                             (long long)srv->opt.body_limit);
            return send_reply(cr);
        }
        if (cl && len > 0)
            core_buf_reserve(&cr->req.body, (size_t)len);
        return MHD_YES;
    }
    int state = atomic_load(&cr->state);
    if (*upload_data_size > 0) {
        if (state == REQ_RECEIVING) {
            if ((int64_t)(cr->req.body.len + *upload_data_size) > srv->opt.body_limit)
                atomic_store(&cr->state, REQ_TOO_BIG);
            else
                core_buf_append(&cr->req.body, upload_data, *upload_data_size);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    switch (state) {
    case REQ_TOO_BIG:
        http_reply_error(&cr->req, 41301, "request body exceeds the limit of %lld bytes",
                         (long long)srv->opt.body_limit);
        return send_reply(cr);
    case REQ_RECEIVING:
        atomic_store(&cr->state, REQ_IN_HANDLER);
        if (srv->handler(srv->app, &cr->req) == HTTP_ASYNC)
            return wait_async(cr);
        return reply_now_or_next_pass(cr);
    case REQ_COMPLETED:
        return send_reply(cr);
    case REQ_IN_HANDLER:
    case REQ_EARLY:
    case REQ_SUSPENDED: /* a spurious call while suspended: keep waiting */
    case REQ_SENT:
    default:
        return MHD_YES;
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct conn_req *cr = *con_cls;
    if (!cr)
        return;
    if (cr->req.ctx_free)
        cr->req.ctx_free(cr->req.ctx);
    core_buf_dispose(&cr->req.body);
    core_buf_dispose(&cr->req.reply);
    core_arena_dispose(&cr->scratch);
    free(cr);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    LOG_DEBUG("libmicrohttpd", "detail=\"%s\"", msg);
}

/*
 * Accepting. A pool of MHD threads sharing one listening socket accepts on whichever thread
 * wakes first, up to ten connections per wakeup: a burst of keep-alive connections (a load
 * balancer's pool, a benchmark's clients) often landed on two of four threads and left the
 * others idle for the connections' lifetime (measured: BENCHMARKS.md, "Session 9"). So each
 * worker here is its own single-threaded MHD daemon without a listening socket, and one
 * accept thread hands the connections to the workers in turn (MHD_add_connection; MHD_USE_ITC
 * wakes the worker), skipping workers at their share of the connection limit.
 */
struct http_worker {
    struct MHD_Daemon *daemon;
    atomic_uint open; /* connections open on it (MHD's connection notifications) */
    unsigned limit;   /* its share of --max-connections (0: gets none) */
};

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)c;
    (void)socket_context;
    struct http_worker *w = cls;
    static _Thread_local bool named;
    if (!named) { /* MHD names its threads "MHD-single"; top -H and profiles show this */
        named = true;
        pthread_setname_np(pthread_self(), "http-worker");
    }
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add_explicit(&w->open, 1, memory_order_relaxed);
    else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
        atomic_fetch_sub_explicit(&w->open, 1, memory_order_relaxed);
}

static int listen_on(const struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int on = 1; /* as MHD_OPTION_LISTENING_ADDRESS_REUSE 1 did: restart while old sockets linger */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0 ||
        bind(fd, (const struct sockaddr *)addr, sizeof *addr) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* The next worker in turn below its share of the connection limit, NULL when all are full. */
static struct http_worker *next_worker(struct http_server *srv)
{
    for (unsigned k = 0; k < srv->nworkers; k++) {
        struct http_worker *w = &srv->workers[srv->next++ % srv->nworkers];
        if (atomic_load_explicit(&w->open, memory_order_relaxed) < w->limit)
            return w;
    }
    return NULL;
}

static void *acceptor_main(void *arg)
{
    struct http_server *srv = arg;
    pthread_setname_np(pthread_self(), "http-accept");
    int64_t warned_ms = 0;
    for (;;) {
        struct sockaddr_storage sa;
        socklen_t len = sizeof sa;
        int fd =
            accept4(srv->listen_fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            struct http_worker *w = next_worker(srv);
            if (!w) {
                close(fd);
                atomic_fetch_add_explicit(&srv->refused, 1, memory_order_relaxed);
            } else if (MHD_add_connection(w->daemon, fd, (struct sockaddr *)&sa, len) != MHD_YES) {
                atomic_fetch_add_explicit(&srv->refused, 1, memory_order_relaxed); /* closed */
            }
            continue;
        }
        int e = errno;
        if (e == EINTR || e == ECONNABORTED || e == EPROTO)
            continue;
        if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
            int64_t now_ms = core_mono_ns() / 1000000;
            if (now_ms - warned_ms >= 1000) { /* once a second at most */
                warned_ms = now_ms;
                LOG_WARN("cannot accept: out of descriptors or memory; retrying every 10 ms",
                         "error=\"%s\"", strerror(e));
            }
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        return NULL; /* EINVAL after http_server_quiesce's shutdown */
    }
}

bool http_tls_supported(void)
{
    return MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES;
}

static void server_free(struct http_server *srv)
{
    for (unsigned i = 0; i < srv->nworkers; i++)
        if (srv->workers[i].daemon)
            MHD_stop_daemon(srv->workers[i].daemon);
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    free(srv->workers);
    free(srv->cors_origin);
    free(srv);
}

int http_server_start(const struct http_options *opt, http_handler_fn handler, void *app,
                      const char *cors_origin, struct http_server **out)
{
    bool tls = opt->tls_cert_pem != NULL;
    if (tls && !http_tls_supported()) {
        LOG_ERROR("this libmicrohttpd has no TLS support (needs GnuTLS); use a TLS proxy",
                  "host=%s", opt->host);
        return CORE_E_INVALID;
    }
    if (tls != (opt->tls_key_pem != NULL)) {
        LOG_ERROR("TLS needs both a certificate and a key", "host=%s", opt->host);
        return CORE_E_INVALID;
    }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(opt->port);
    if (inet_pton(AF_INET, opt->host, &addr.sin_addr) != 1) {
        LOG_ERROR("listen address must be an IPv4 address", "host=%s", opt->host);
        return CORE_E_INVALID;
    }
    struct http_server *srv = core_xcalloc(1, sizeof *srv);
    srv->opt = *opt;
    srv->handler = handler;
    srv->app = app;
    srv->cors_origin = cors_origin ? core_xstrdup(cors_origin) : NULL;
    srv->nworkers = opt->threads > 1 ? opt->threads : 1;
    srv->workers = core_xcalloc(srv->nworkers, sizeof *srv->workers);
    srv->listen_fd = listen_on(&addr);
    if (srv->listen_fd < 0) {
        LOG_ERROR("cannot listen", "host=%s port=%u error=\"%s\"", opt->host, (unsigned)opt->port,
                  strerror(-srv->listen_fd));
        server_free(srv);
        return CORE_E_FAILED;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
                     MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG | MHD_USE_TURBO |
                     (tls ? MHD_USE_TLS : 0);
    /* The TLS options go last: with plain HTTP the list ends before them. */
    enum MHD_OPTION tls_cert = tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        struct http_worker *w = &srv->workers[i];
        /* the limit split exactly: the first max % n workers take one more */
        w->limit =
            opt->max_connections / srv->nworkers + (i < opt->max_connections % srv->nworkers);
        w->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_CONNECTION_LIMIT,
            w->limit > 0 ? w->limit : 1u, MHD_OPTION_CONNECTION_TIMEOUT, opt->timeout_s,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION,
            on_connection, w, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
            MHD_OPTION_UNESCAPE_CALLBACK, keep_raw, srv, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
            (size_t)HTTP_CONN_MEMORY, tls_cert, opt->tls_cert_pem, MHD_OPTION_HTTPS_MEM_KEY,
            opt->tls_key_pem, MHD_OPTION_END);
        if (!w->daemon) {
            LOG_ERROR(tls ? "cannot start the HTTP server (or the TLS certificate/key were "
                            "refused)"
                          : "cannot start the HTTP server",
                      "host=%s port=%u", opt->host, (unsigned)opt->port);
            server_free(srv);
            return CORE_E_FAILED;
        }
    }
    struct sockaddr_in bound;
    socklen_t blen = sizeof bound;
    srv->port = getsockname(srv->listen_fd, (struct sockaddr *)&bound, &blen) == 0
                    ? ntohs(bound.sin_port)
                    : opt->port;
    if (pthread_create(&srv->acceptor, NULL, acceptor_main, srv) != 0) {
        LOG_ERROR("cannot start the accept thread", "host=%s port=%u", opt->host,
                  (unsigned)srv->port);
        server_free(srv);
        return CORE_E_FAILED;
    }
    *out = srv;
    return 0;
}

uint16_t http_server_port(struct http_server *srv)
{
    return srv->port;
}

void http_server_quiesce(struct http_server *srv)
{
    if (srv->listen_fd < 0)
        return;
    shutdown(srv->listen_fd, SHUT_RDWR); /* wakes the blocked accept (EINVAL) */
    pthread_join(srv->acceptor, NULL);
    close(srv->listen_fd);
    srv->listen_fd = -1;
}

void http_server_metrics(struct http_server *srv, struct core_buf *out)
{
    core_buf_puts(out, "# HELP recstream_http_connections Open connections per HTTP worker "
                       "thread.\n# TYPE recstream_http_connections gauge\n");
    for (unsigned i = 0; i < srv->nworkers; i++)
        core_buf_printf(out, "recstream_http_connections{worker=\"%u\"} %u\n", i,
                        atomic_load_explicit(&srv->workers[i].open, memory_order_relaxed));
    core_buf_metric(out, "recstream_http_connections_refused_total", "counter",
                    "Connections closed at accept: every worker at its share of "
                    "--max-connections.",
                    (int64_t)atomic_load_explicit(&srv->refused, memory_order_relaxed));
}

unsigned http_server_inflight(struct http_server *srv)
{
    return atomic_load(&srv->inflight);
}

void http_server_stop(struct http_server *srv)
{
    /* MHD must not be stopped with suspended connections: give them time to complete. */
    for (int i = 0; i < 3000 && atomic_load(&srv->inflight) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    http_server_quiesce(srv); /* no connection is added to a stopping daemon */
    server_free(srv);
}
