/*
 * http: the server wrapper around libmicrohttpd: listen, per-connection limits, body
 * accumulation with a size cap, asynchronous completion (suspend/resume) and JSON replies.
 * Routes and JSON shapes live in src/api; this module knows nothing about events.
 */
#ifndef RECSTREAM_HTTP_H
#define RECSTREAM_HTTP_H

#include "core/core.h"

struct http_options {
    const char *host; /* listen address, e.g. "0.0.0.0" or "127.0.0.1" */
    uint16_t port;
    unsigned threads;   /* worker threads in the pool (default: 2 x cores) */
    int64_t body_limit; /* larger bodies get 413 before being read (default 1 MiB) */
    unsigned max_connections;
    unsigned timeout_s; /* idle / slow-client timeout */
    /* Reply batching (default on): a reply computed during an event-loop pass is handed to
     * libmicrohttpd on its next pass, so the replies of one pass leave together instead of
     * one between each computation (the client is woken once per batch, not per reply). */
    bool batch_replies;
    /* TLS: PEM certificate (chain) and private key held in memory, both NULL for plain HTTP.
     * Borrowed until http_server_start returns (libmicrohttpd copies them into GnuTLS). */
    const char *tls_cert_pem;
    const char *tls_key_pem;
};

void http_options_init(struct http_options *opt);

/* One request. Valid from the handler call until http_request_complete's response is sent. */
struct http_request {
    const char *method;
    const char *url; /* path without the query string, still percent-encoded */
    struct core_buf body;
    /* reply, filled by the handler (synchronously or before http_request_complete) */
    int status;
    struct core_buf reply;
    const char *content_type; /* default application/json */
    int retry_after_s;        /* > 0 adds Retry-After */
    bool cors;                /* add CORS headers (origin from the server's setting) */
    bool auth_challenge;      /* add WWW-Authenticate: Bearer (a 401 for a missing/bad key) */
    /* The API key that authenticated this request ("" when none or auth is off); set by the
     * api before routing, so handlers and the audit hook know the actor. */
    char auth_key_id[16];
    /* handler-owned state, freed by the handler's cleanup callback */
    void *ctx;
    void (*ctx_free)(void *ctx);
    /* internal */
    void *conn;
};

/* Request header lookup (case-insensitive); NULL when absent. Handler threads only. */
const char *http_request_header(struct http_request *req, const char *name);
/* The connection's peer address as text (IPv4 or IPv6) into out (cap >= 46); false when
 * unknown. Handler threads only. */
bool http_request_peer(struct http_request *req, char *out, size_t cap);
/* Query-string argument, percent-decoded (valid until the request ends); NULL when absent.
 * Handler threads only. */
const char *http_request_query(struct http_request *req, const char *name);

enum http_action {
    HTTP_REPLY, /* the reply is filled in: send it */
    HTTP_ASYNC, /* work was started whose completion calls http_request_complete exactly once */
};

/*
 * Sends the reply filled into req. Call exactly once for every HTTP_ASYNC, from any thread,
 * even before the handler has returned: a completion that happens while the handler still
 * runs is answered on the spot without suspending the connection (the common case when the
 * log acknowledges inline); otherwise the connection is suspended and resumed here.
 */
void http_request_complete(struct http_request *req);

/* Called once per request with the complete body (bodies over the limit never get here). */
typedef enum http_action (*http_handler_fn)(void *app, struct http_request *req);

struct http_server;

/* Whether this libmicrohttpd was built with TLS (GnuTLS) support. */
bool http_tls_supported(void);

/* Starts listening; handler runs on the pool threads. cors_origin may be NULL (no CORS).
 * With opt->tls_cert_pem set the server speaks HTTPS only (CORE_E_INVALID when the library
 * lacks TLS support or the certificate/key are refused). */
int http_server_start(const struct http_options *opt, http_handler_fn handler, void *app,
                      const char *cors_origin, struct http_server **out);
/* The bound port (useful with port 0). */
uint16_t http_server_port(struct http_server *srv);
/* Stops accepting new connections; in-flight requests continue. */
void http_server_quiesce(struct http_server *srv);
/* Number of requests suspended and not yet completed. */
unsigned http_server_inflight(struct http_server *srv);
/* Prometheus lines: open connections per worker thread, connections refused at the limit. */
void http_server_metrics(struct http_server *srv, struct core_buf *out);
/* Stops the server (waits for in-flight suspended requests first) and frees it. */
void http_server_stop(struct http_server *srv);

/* Helpers for replies: {"error_code":code,"message":msg}, status = code / 100. */
void http_reply_error(struct http_request *req, int error_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
