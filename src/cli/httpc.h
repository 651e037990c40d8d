/*
 * httpc: a tiny blocking HTTP/1.1 client for the command line tools (`recstream simulate`).
 * One struct httpc is one keep-alive TCP connection to one host, opened on first use and
 * reopened when the server closed it. Replies may carry a Content-Length body, a chunked
 * body or (HTTP/1.0 style) a body that ends when the connection closes. No TLS, no
 * redirects, no proxies: it talks to a recstream server on a trusted network.
 *
 * Threads: a struct httpc belongs to one thread at a time.
 */
#ifndef RECSTREAM_CLI_HTTPC_H
#define RECSTREAM_CLI_HTTPC_H

#include "core/core.h"

#define HTTPC_HOST_MAX 256
#define HTTPC_PORT_MAX 8
#define HTTPC_BASE_MAX 512
#define HTTPC_HEADERS_MAX ((size_t)64 * 1024) /* status line + headers of one reply */
#define HTTPC_BODY_MAX (64LL * 1024 * 1024)   /* default bound of one reply body */

/* The parts of an "http://host[:port][/base]" URL. */
struct httpc_url {
    char host[HTTPC_HOST_MAX]; /* without brackets for IPv6 literals */
    char port[HTTPC_PORT_MAX]; /* "80" when absent */
    char base[HTTPC_BASE_MAX]; /* path prefix without the trailing '/'; "" for none */
};

/* Parses url into out. Only the http scheme is supported. Returns 0 or CORE_E_INVALID. */
int httpc_url_parse(const char *url, struct httpc_url *out);

/* One reply. body is NUL-terminated (core_buf); retry_after_s is -1 without a usable
 * Retry-After header (the HTTP-date form is not understood and counts as absent). */
struct httpc_reply {
    int status;
    int64_t retry_after_s;
    struct core_buf body;
};

void httpc_reply_init(struct httpc_reply *r);
void httpc_reply_dispose(struct httpc_reply *r);

struct httpc_options {
    const char *host;   /* copied */
    const char *port;   /* copied */
    int timeout_ms;     /* per request: connect, send and receive together (default 30000) */
    int64_t max_body;   /* larger replies fail with CORE_E_TOOBIG (default HTTPC_BODY_MAX) */
    const char *bearer; /* API key sent as "Authorization: Bearer" on every request (copied);
                           NULL: none */
};
void httpc_options_init(struct httpc_options *o);

struct httpc;

/* Creates a client; no connection is made until the first request. Never fails (aborts on
 * out of memory). */
struct httpc *httpc_new(const struct httpc_options *o);
void httpc_free(struct httpc *c);

/*
 * Sends one request and reads its reply into reply (reset first). path starts with '/';
 * content_type may be NULL when there is no body. A request written on a reused connection
 * that the server had already closed is sent once more on a fresh connection (the caller's
 * requests must tolerate that: recstream's event POSTs carry eventIds for dedup).
 *
 * Returns 0 when a complete reply was read (any status), or a negative error: -errno for
 * name resolution, connect and socket errors, CORE_E_TIMEOUT, CORE_E_CLOSED when the
 * server closed the connection mid-reply, CORE_E_PARSE for a malformed reply and
 * CORE_E_TOOBIG for headers or a body over the bounds. After an error the connection is
 * closed; the next request opens a new one.
 */
int httpc_request(struct httpc *c, const char *method, const char *path, const char *content_type,
                  const void *body, size_t body_len, struct httpc_reply *reply);

/* TCP connections opened so far (keep-alive reuse keeps it at 1). */
uint64_t httpc_connects(const struct httpc *c);

#endif
