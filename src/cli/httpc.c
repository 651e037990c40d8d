/* A tiny blocking HTTP/1.1 client: keep-alive, Content-Length, chunked and close-delimited
 * replies, all bounded. Sockets are non-blocking and every wait is a poll() against the
 * request's deadline, so a stuck server costs at most timeout_ms. */
#include "cli/httpc.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK 16384
#define LINE_MAX_BYTES 4096 /* a chunk-size or trailer line */

struct httpc {
    char host[HTTPC_HOST_MAX];
    char port[HTTPC_PORT_MAX];
    int timeout_ms;
    int64_t max_body;
    char *bearer;       /* NULL: no Authorization header */
    int fd;             /* -1 while not connected */
    struct core_buf in; /* received bytes; [pos, len) not consumed yet */
    size_t pos;
    struct core_buf out; /* the request being sent */
    uint64_t connects;
    uint64_t received; /* bytes received on the current connection */
};

/* What the status line and headers of one reply say. */
struct reply_head {
    int status;
    bool close; /* the server closes the connection after this reply */
    bool chunked;
    int64_t content_length; /* -1: absent */
    int64_t retry_after_s;
};

/* ---- URLs ------------------------------------------------------------------------------- */

int httpc_url_parse(const char *url, struct httpc_url *out)
{
    if (strncasecmp(url, "http://", 7) != 0)
        return CORE_E_INVALID;
    const char *p = url + 7;
    const char *host = p, *host_end;
    if (*p == '[') { /* IPv6 literal */
        host = p + 1;
        host_end = strchr(host, ']');
        if (!host_end)
            return CORE_E_INVALID;
        p = host_end + 1;
    } else {
        p += strcspn(p, ":/?#");
        host_end = p;
    }
    size_t host_len = (size_t)(host_end - host);
    if (host_len == 0 || host_len >= sizeof out->host)
        return CORE_E_INVALID;
    char port[HTTPC_PORT_MAX] = "80";
    if (*p == ':') {
        p++;
        size_t plen = strspn(p, "0123456789");
        int64_t v;
        if (plen == 0 || plen >= sizeof port)
            return CORE_E_INVALID;
        memcpy(port, p, plen);
        port[plen] = '\0';
        if (core_parse_i64(port, 1, 65535, &v))
            return CORE_E_INVALID;
        p += plen;
    }
    if (*p && *p != '/')
        return CORE_E_INVALID;
    size_t base_len = strcspn(p, "?#");
    if (p[base_len])
        return CORE_E_INVALID; /* a query or fragment makes no sense as a base */
    while (base_len > 0 && p[base_len - 1] == '/')
        base_len--;
    if (base_len >= sizeof out->base)
        return CORE_E_INVALID;
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    memcpy(out->port, port, strlen(port) + 1);
    memcpy(out->base, p, base_len);
    out->base[base_len] = '\0';
    return 0;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

void httpc_reply_init(struct httpc_reply *r)
{
    r->status = 0;
    r->retry_after_s = -1;
    core_buf_init(&r->body);
}

void httpc_reply_dispose(struct httpc_reply *r)
{
    core_buf_dispose(&r->body);
}

void httpc_options_init(struct httpc_options *o)
{
    o->host = "127.0.0.1";
    o->port = "80";
    o->timeout_ms = 30000;
    o->max_body = HTTPC_BODY_MAX;
    o->bearer = NULL;
}

struct httpc *httpc_new(const struct httpc_options *o)
{
    struct httpc *c = core_xcalloc(1, sizeof *c);
    snprintf(c->host, sizeof c->host, "%s", o->host);
    snprintf(c->port, sizeof c->port, "%s", o->port);
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
    c->max_body = o->max_body > 0 ? o->max_body : HTTPC_BODY_MAX;
    c->bearer = o->bearer && o->bearer[0] ? core_xstrdup(o->bearer) : NULL;
    c->fd = -1;
    core_buf_init(&c->in);
    core_buf_init(&c->out);
    return c;
}

static void disconnect(struct httpc *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    core_buf_reset(&c->in);
    c->pos = 0;
    c->received = 0;
}

void httpc_free(struct httpc *c)
{
    if (!c)
        return;
    disconnect(c);
    core_buf_dispose(&c->in);
    core_buf_dispose(&c->out);
    free(c->bearer);
    free(c);
}

uint64_t httpc_connects(const struct httpc *c)
{
    return c->connects;
}

/* ---- socket I/O against a deadline --------------------------------------------------- */

/* Waits until fd is ready for events; CORE_E_TIMEOUT once the deadline passed. */
static int wait_fd(int fd, short events, int64_t deadline_ns)
{
    for (;;) {
        int64_t left_ms = (deadline_ns - core_mono_ns()) / 1000000;
        if (left_ms <= 0)
            return CORE_E_TIMEOUT;
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, left_ms > 1000 ? 1000 : (int)left_ms);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

static int connect_addr(const struct addrinfo *ai, int64_t deadline_ns, int *out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            goto out;
        }
        rc = wait_fd(fd, POLLOUT, deadline_ns);
        if (rc < 0)
            goto out;
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
            rc = -errno;
        else if (soerr)
            rc = -soerr;
    }
out:
    if (rc < 0) {
        close(fd);
        return rc;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *out = fd;
    return 0;
}

static int open_connection(struct httpc *c, int64_t deadline_ns)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(c->host, c->port, &hints, &res);
    if (g != 0)
        return g == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
    int rc = -ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        rc = connect_addr(ai, deadline_ns, &c->fd);
        if (rc == 0 || rc == CORE_E_TIMEOUT)
            break;
    }
    freeaddrinfo(res);
    if (rc == 0)
        c->connects++;
    return rc;
}

static int send_all(struct httpc *c, const char *p, size_t n, int64_t deadline_ns)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(c->fd, POLLOUT, deadline_ns);
            if (rc < 0)
                return rc;
        } else if (w < 0 && errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

/* Reads more bytes into c->in. Returns the count, 0 at end of stream, or an error. */
static int fill(struct httpc *c, int64_t deadline_ns)
{
    if (c->pos == c->in.len) {
        core_buf_reset(&c->in);
        c->pos = 0;
    } else if (c->in.data && c->pos >= READ_CHUNK) {
        memmove(c->in.data, c->in.data + c->pos, c->in.len - c->pos);
        c->in.len -= c->pos;
        c->in.data[c->in.len] = '\0';
        c->pos = 0;
    }
    core_buf_reserve(&c->in, READ_CHUNK);
    for (;;) {
        ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len - 1, 0);
        if (n > 0) {
            c->in.len += (size_t)n;
            c->in.data[c->in.len] = '\0';
            c->received += (uint64_t)n;
            return (int)n;
        }
        if (n == 0)
            return 0;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int rc = wait_fd(c->fd, POLLIN, deadline_ns);
            if (rc < 0)
                return rc;
        } else if (errno != EINTR) {
            return -errno;
        }
    }
}

/* Makes at least n unconsumed bytes available. */
static int need(struct httpc *c, size_t n, int64_t deadline_ns)
{
    while (c->in.len - c->pos < n) {
        int rc = fill(c, deadline_ns);
        if (rc <= 0)
            return rc == 0 ? CORE_E_CLOSED : rc;
    }
    return 0;
}

/* Makes a whole CRLF-terminated line available; *len excludes the CRLF. */
static int need_line(struct httpc *c, size_t *len, int64_t deadline_ns)
{
    for (;;) {
        const char *s = c->in.data ? c->in.data + c->pos : "";
        const char *nl = memchr(s, '\n', c->in.len - c->pos);
        if (nl) {
            size_t l = (size_t)(nl - s);
            if (l == 0 || s[l - 1] != '\r')
                return CORE_E_PARSE;
            *len = l - 1;
            return 0;
        }
        if (c->in.len - c->pos > LINE_MAX_BYTES)
            return CORE_E_PARSE;
        int rc = fill(c, deadline_ns);
        if (rc <= 0)
            return rc == 0 ? CORE_E_CLOSED : rc;
    }
}

/* ---- reply parsing ----------------------------------------------------------------------- */

static bool has_token(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token);
    for (size_t i = 0; i + tl <= n; i++) {
        if (strncasecmp(v + i, token, tl) == 0 && (i == 0 || v[i - 1] == ',' || v[i - 1] == ' ') &&
            (i + tl == n || v[i + tl] == ',' || v[i + tl] == ' ' || v[i + tl] == ';'))
            return true;
    }
    return false;
}

static int parse_number(const char *v, size_t n, int64_t *out)
{
    char tmp[24];
    if (n == 0 || n >= sizeof tmp)
        return CORE_E_PARSE;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    return core_parse_i64(tmp, 0, INT64_MAX, out) ? CORE_E_PARSE : 0;
}

static int parse_header(struct reply_head *h, const char *line, size_t n)
{
    const char *colon = memchr(line, ':', n);
    if (!colon || colon == line)
        return CORE_E_PARSE;
    size_t name_len = (size_t)(colon - line);
    const char *v = colon + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vlen = (size_t)(end - v);
#define IS(name) (name_len == sizeof(name) - 1 && strncasecmp(line, name, name_len) == 0)
    if (IS("Content-Length")) {
        int64_t cl;
        if (parse_number(v, vlen, &cl) < 0 || (h->content_length >= 0 && h->content_length != cl))
            return CORE_E_PARSE;
        h->content_length = cl;
    } else if (IS("Transfer-Encoding")) {
        h->chunked = has_token(v, vlen, "chunked");
    } else if (IS("Connection")) {
        if (has_token(v, vlen, "close"))
            h->close = true;
        else if (has_token(v, vlen, "keep-alive"))
            h->close = false;
    } else if (IS("Retry-After")) {
        int64_t s;
        if (parse_number(v, vlen, &s) == 0)
            h->retry_after_s = s;
    }
#undef IS
    return 0;
}

/* Parses the status line and headers in [pos, pos + n) (n includes the final CRLF CRLF). */
static int parse_head(struct httpc *c, size_t n, struct reply_head *h)
{
    const char *s = c->in.data + c->pos, *end = s + n - 2;
    const char *eol = memmem(s, n, "\r\n", 2);
    if (eol - s < 12 || strncmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') ||
        s[8] != ' ')
        return CORE_E_PARSE;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (s[i] < '0' || s[i] > '9')
            return CORE_E_PARSE;
        status = status * 10 + (s[i] - '0');
    }
    if (eol - s > 12 && s[12] != ' ')
        return CORE_E_PARSE;
    *h = (struct reply_head){.status = status,
                             .close = s[7] == '0', /* HTTP/1.0: close unless keep-alive */
                             .content_length = -1,
                             .retry_after_s = -1};
    for (const char *line = eol + 2; line < end;) {
        const char *next = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        if (next - line > 0) {
            int rc = parse_header(h, line, (size_t)(next - line));
            if (rc < 0)
                return rc;
        }
        line = next + 2;
    }
    return 0;
}

static int read_head(struct httpc *c, struct reply_head *h, int64_t deadline_ns)
{
    for (;;) {
        const char *s = c->in.data ? c->in.data + c->pos : "";
        const char *end = memmem(s, c->in.len - c->pos, "\r\n\r\n", 4);
        if (end) {
            size_t n = (size_t)(end - s) + 4;
            int rc = parse_head(c, n, h);
            c->pos += n;
            return rc;
        }
        if (c->in.len - c->pos > HTTPC_HEADERS_MAX)
            return CORE_E_TOOBIG;
        int rc = fill(c, deadline_ns);
        if (rc <= 0)
            return rc == 0 ? CORE_E_CLOSED : rc;
    }
}

static int take_bytes(struct httpc *c, size_t n, struct core_buf *body, int64_t deadline_ns)
{
    if ((int64_t)(body->len + n) > c->max_body)
        return CORE_E_TOOBIG;
    int rc = need(c, n, deadline_ns);
    if (rc < 0)
        return rc;
    core_buf_append(body, c->in.data + c->pos, n);
    c->pos += n;
    return 0;
}

static int read_chunked(struct httpc *c, struct core_buf *body, int64_t deadline_ns)
{
    for (;;) {
        size_t len;
        int rc = need_line(c, &len, deadline_ns);
        if (rc < 0)
            return rc;
        const char *s = c->in.data + c->pos;
        uint64_t size = 0;
        size_t i = 0;
        for (; i < len && i < 16; i++) {
            char ch = s[i];
            int d = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                             : -1;
            if (d < 0)
                break;
            size = size * 16 + (uint64_t)d;
        }
        if (i == 0 || (i < len && s[i] != ';' && s[i] != ' '))
            return CORE_E_PARSE;
        c->pos += len + 2;
        if (size == 0)
            break;
        if (size > (uint64_t)c->max_body)
            return CORE_E_TOOBIG;
        rc = take_bytes(c, (size_t)size, body, deadline_ns);
        if (rc == 0)
            rc = need(c, 2, deadline_ns);
        if (rc < 0)
            return rc;
        if (memcmp(c->in.data + c->pos, "\r\n", 2) != 0)
            return CORE_E_PARSE;
        c->pos += 2;
    }
    for (;;) { /* trailers, up to the empty line */
        size_t len;
        int rc = need_line(c, &len, deadline_ns);
        if (rc < 0)
            return rc;
        c->pos += len + 2;
        if (len == 0)
            return 0;
    }
}

static int read_until_close(struct httpc *c, struct core_buf *body, int64_t deadline_ns)
{
    for (;;) {
        size_t have = c->in.len - c->pos;
        if ((int64_t)(body->len + have) > c->max_body)
            return CORE_E_TOOBIG;
        core_buf_append(body, c->in.data ? c->in.data + c->pos : "", have);
        c->pos += have;
        int rc = fill(c, deadline_ns);
        if (rc <= 0)
            return rc;
    }
}

static int read_reply(struct httpc *c, bool head_request, struct httpc_reply *reply,
                      bool *close_after, int64_t deadline_ns)
{
    struct reply_head h;
    int rc;
    do { /* 1xx interim replies carry no body; the real one follows */
        rc = read_head(c, &h, deadline_ns);
        if (rc < 0)
            return rc;
    } while (h.status >= 100 && h.status < 200);
    reply->status = h.status;
    reply->retry_after_s = h.retry_after_s;
    *close_after = h.close;
    if (head_request || h.status == 204 || h.status == 304)
        return 0;
    if (h.chunked)
        return read_chunked(c, &reply->body, deadline_ns);
    if (h.content_length >= 0) {
        if (h.content_length > c->max_body)
            return CORE_E_TOOBIG;
        return take_bytes(c, (size_t)h.content_length, &reply->body, deadline_ns);
    }
    *close_after = true;
    return read_until_close(c, &reply->body, deadline_ns);
}

/* ---- requests ---------------------------------------------------------------------------- */

static void build_request(struct httpc *c, const char *method, const char *path,
                          const char *content_type, size_t body_len)
{
    struct core_buf *b = &c->out;
    core_buf_reset(b);
    bool v6 = strchr(c->host, ':') != NULL;
    core_buf_printf(b, "%s %s HTTP/1.1\r\nHost: %s%s%s:%s\r\n", method, path, v6 ? "[" : "",
                    c->host, v6 ? "]" : "", c->port);
    core_buf_puts(b, "User-Agent: recstream/" RECSTREAM_VERSION "\r\nAccept: */*\r\n");
    if (c->bearer)
        core_buf_printf(b, "Authorization: Bearer %s\r\n", c->bearer);
    if (content_type)
        core_buf_printf(b, "Content-Type: %s\r\n", content_type);
    if (content_type || body_len > 0 || !strcmp(method, "POST") || !strcmp(method, "PUT"))
        core_buf_printf(b, "Content-Length: %zu\r\n", body_len);
    core_buf_puts(b, "\r\n");
}

int httpc_request(struct httpc *c, const char *method, const char *path, const char *content_type,
                  const void *body, size_t body_len, struct httpc_reply *reply)
{
    int64_t deadline_ns = core_mono_ns() + (int64_t)c->timeout_ms * 1000000;
    build_request(c, method, path, content_type, body_len);
    bool head_request = !strcmp(method, "HEAD");
    int rc = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        reply->status = 0;
        reply->retry_after_s = -1;
        core_buf_reset(&reply->body);
        bool reused = c->fd >= 0;
        if (!reused) {
            rc = open_connection(c, deadline_ns);
            if (rc < 0)
                return rc;
        }
        uint64_t received_before = c->received;
        rc = send_all(c, c->out.data, c->out.len, deadline_ns);
        if (rc == 0 && body_len > 0)
            rc = send_all(c, body, body_len, deadline_ns);
        bool close_after = false;
        if (rc == 0)
            rc = read_reply(c, head_request, reply, &close_after, deadline_ns);
        if (rc == 0) {
            if (close_after)
                disconnect(c);
            return 0;
        }
        /* A keep-alive connection the server closed while idle fails before any byte of a
         * reply arrives: that one request goes again on a fresh connection. */
        bool stale = reused && c->received == received_before && rc != CORE_E_TIMEOUT &&
                     rc != CORE_E_TOOBIG && rc != CORE_E_PARSE;
        disconnect(c);
        if (!stale)
            break;
    }
    return rc;
}
