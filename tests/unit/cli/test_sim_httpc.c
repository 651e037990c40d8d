/* Tests of the tiny HTTP client used by `recstream simulate`, against a scripted server on a
 * listening socket in a thread: Content-Length, chunked and close-delimited replies,
 * keep-alive reuse, a server that closes an idle connection, timeouts and bounds. */
#include "cli/httpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- the scripted server ---- */

/* One exchange: read a request, then write reply (NULL: never reply, wait for the client to
 * hang up), then close the connection when close_after. */
struct step {
    const char *reply;
    bool close_after;
    bool trickle; /* write the reply a few bytes at a time */
};

struct fake {
    int lfd;
    char port[8];
    pthread_t thread;
    const struct step *steps;
    size_t nsteps;
    int accepts;
    size_t served;
    pthread_mutex_t mu;      /* guards last_request */
    char last_request[4096]; /* published before the reply is written */
};

/* Reads one request (headers and Content-Length body); false at end of stream. */
static bool read_request(int fd, char *out, size_t size)
{
    size_t len = 0;
    char *end = NULL;
    while (!(end = strstr(out, "\r\n\r\n"))) {
        ssize_t n = recv(fd, out + len, size - 1 - len, 0);
        if (n <= 0)
            return false;
        len += (size_t)n;
        out[len] = '\0';
    }
    size_t body = 0;
    const char *cl = strstr(out, "Content-Length: ");
    if (cl && cl < end)
        body = strtoul(cl + 16, NULL, 10);
    size_t want = (size_t)(end - out) + 4 + body;
    while (len < want) {
        ssize_t n = recv(fd, out + len, size - 1 - len, 0);
        if (n <= 0)
            return false;
        len += (size_t)n;
        out[len] = '\0';
    }
    return true;
}

static void write_all(int fd, const char *s, size_t n, bool trickle)
{
    while (n > 0) {
        size_t chunk = trickle && n > 3 ? 3 : n;
        ssize_t w = send(fd, s, chunk, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
        if (trickle)
            usleep(200);
    }
}

static void *serve(void *arg)
{
    struct fake *f = arg;
    int fd = -1;
    char req[sizeof f->last_request];
    for (size_t i = 0; i < f->nsteps;) {
        if (fd < 0) {
            fd = accept(f->lfd, NULL, NULL);
            if (fd < 0)
                break;
            f->accepts++;
        }
        req[0] = '\0';
        if (!read_request(fd, req, sizeof req)) {
            close(fd); /* the client gave up on this connection; it will open another */
            fd = -1;
            continue;
        }
        pthread_mutex_lock(&f->mu);
        memcpy(f->last_request, req, sizeof req);
        pthread_mutex_unlock(&f->mu);
        const struct step *s = &f->steps[i++];
        if (!s->reply) {
            char sink[256];
            while (recv(fd, sink, sizeof sink, 0) > 0)
                ;
        } else {
            write_all(fd, s->reply, strlen(s->reply), s->trickle);
        }
        f->served++;
        if (s->close_after || !s->reply) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void fake_start(struct fake *f, const struct step *steps, size_t n)
{
    memset(f, 0, sizeof *f);
    f->steps = steps;
    f->nsteps = n;
    pthread_mutex_init(&f->mu, NULL);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->lfd, 8), 0);
    socklen_t len = sizeof a;
    getsockname(f->lfd, (struct sockaddr *)&a, &len);
    snprintf(f->port, sizeof f->port, "%u", (unsigned)ntohs(a.sin_port));
    assert_int_equal(pthread_create(&f->thread, NULL, serve, f), 0);
}

static void fake_stop(struct fake *f)
{
    shutdown(f->lfd, SHUT_RDWR); /* wakes a pending accept */
    pthread_join(f->thread, NULL);
    close(f->lfd);
    pthread_mutex_destroy(&f->mu);
}

/* Whether the last request the server read contains needle. */
static bool last_request_has(struct fake *f, const char *needle)
{
    pthread_mutex_lock(&f->mu);
    bool found = strstr(f->last_request, needle) != NULL;
    pthread_mutex_unlock(&f->mu);
    return found;
}

static struct httpc *client(const struct fake *f, int timeout_ms, int64_t max_body)
{
    struct httpc_options o;
    httpc_options_init(&o);
    o.host = "127.0.0.1";
    o.port = f->port;
    o.timeout_ms = timeout_ms;
    o.max_body = max_body;
    return httpc_new(&o);
}

/* Steps: a reply; a reply then close; a reply written a few bytes at a time. */
#define REPLY(s)                                                                                   \
    {                                                                                              \
        .reply = (s)                                                                               \
    }
#define REPLY_CLOSE(s)                                                                             \
    {                                                                                              \
        .reply = (s), .close_after = true                                                          \
    }
#define REPLY_TRICKLE(s, close)                                                                    \
    {                                                                                              \
        .reply = (s), .close_after = (close), .trickle = true                                      \
    }

#define OK_JSON(body) "HTTP/1.1 200 OK\r\nContent-Length: " #body "\r\n\r\n"

/* ---- tests ---- */

static void test_content_length_and_keep_alive(void **state)
{
    (void)state;
    static const struct step steps[] = {
        REPLY("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
              "{\"a\":\"one\"}"),
        REPLY("HTTP/1.1 201 Created\r\ncontent-length:   2  \r\n\r\nok"),
        REPLY("HTTP/1.1 204 No Content\r\n\r\n"),
        REPLY("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    };
    struct fake f;
    fake_start(&f, steps, 4);
    struct httpc *c = client(&f, 5000, 0);
    struct httpc_reply r;
    httpc_reply_init(&r);
    assert_int_equal(httpc_request(c, "GET", "/v1/a?x=1", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "{\"a\":\"one\"}");
    assert_int_equal(r.retry_after_s, -1);
    assert_true(last_request_has(&f, "GET /v1/a?x=1 HTTP/1.1\r\n"));
    assert_true(last_request_has(&f, "Host: 127.0.0.1:"));

    static const char body[] = "[{\"userId\":\"u\"}]";
    assert_int_equal(
        httpc_request(c, "POST", "/v1/events", "application/json", body, strlen(body), &r), 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body.data, "ok");
    assert_true(last_request_has(&f, "Content-Type: application/json\r\n"));
    assert_true(last_request_has(&f, "Content-Length: 16\r\n"));
    assert_true(last_request_has(&f, "\r\n\r\n[{\"userId\":\"u\"}]"));

    assert_int_equal(httpc_request(c, "DELETE", "/x", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.body.len, 0);
    assert_int_equal(httpc_request(c, "PUT", "/y", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(last_request_has(&f, "Content-Length: 0\r\n"));

    assert_int_equal(httpc_connects(c), 1); /* all four on one connection */
    httpc_free(c);
    fake_stop(&f);
    assert_int_equal(f.accepts, 1);
    httpc_reply_dispose(&r);
}

static void test_chunked(void **state)
{
    (void)state;
    static const struct step steps[] = {
        REPLY("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              "5\r\nhello\r\n7;ext=1\r\n, world\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"),
        REPLY("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        REPLY_TRICKLE("HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n"
                      "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
                      false),
    };
    struct fake f;
    fake_start(&f, steps, 3);
    struct httpc *c = client(&f, 5000, 0);
    struct httpc_reply r;
    httpc_reply_init(&r);
    assert_int_equal(httpc_request(c, "GET", "/c", NULL, NULL, 0, &r), 0);
    assert_string_equal(r.body.data, "hello, world0123456789");
    assert_int_equal(httpc_request(c, "GET", "/c", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 0);
    assert_int_equal(httpc_request(c, "GET", "/c", NULL, NULL, 0, &r), 0);
    assert_string_equal(r.body.data, "abcdef");
    assert_int_equal(httpc_connects(c), 1);
    httpc_free(c);
    fake_stop(&f);
    httpc_reply_dispose(&r);
}

static void test_connection_close_and_close_delimited(void **state)
{
    (void)state;
    static const struct step steps[] = {
        REPLY_CLOSE("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\none"),
        REPLY_TRICKLE("HTTP/1.0 200 OK\r\n\r\nuntil the end", true),
        REPLY("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\nfour"),
        REPLY(OK_JSON(2) "{}"),
    };
    struct fake f;
    fake_start(&f, steps, 4);
    struct httpc *c = client(&f, 5000, 0);
    struct httpc_reply r;
    httpc_reply_init(&r);
    assert_int_equal(httpc_request(c, "GET", "/1", NULL, NULL, 0, &r), 0);
    assert_string_equal(r.body.data, "one");
    assert_int_equal(httpc_request(c, "GET", "/2", NULL, NULL, 0, &r), 0);
    assert_string_equal(r.body.data, "until the end");
    assert_int_equal(httpc_request(c, "GET", "/3", NULL, NULL, 0, &r), 0);
    assert_string_equal(r.body.data, "four");
    assert_int_equal(httpc_request(c, "GET", "/4", NULL, NULL, 0, &r), 0);
    assert_string_equal(r.body.data, "{}");
    assert_int_equal(httpc_connects(c), 3); /* 1, 2, then 3 and 4 share one */
    httpc_free(c);
    fake_stop(&f);
    assert_int_equal(f.accepts, 3);
    httpc_reply_dispose(&r);
}

/* The server drops an idle keep-alive connection without saying so: the next request goes
 * again, once, on a fresh connection, and the caller sees only the reply. */
static void test_stale_keep_alive_is_retried(void **state)
{
    (void)state;
    static const struct step steps[] = {
        REPLY_CLOSE(OK_JSON(1) "a"),
        REPLY(OK_JSON(1) "b"),
    };
    struct fake f;
    fake_start(&f, steps, 2);
    struct httpc *c = client(&f, 5000, 0);
    struct httpc_reply r;
    httpc_reply_init(&r);
    assert_int_equal(httpc_request(c, "GET", "/1", NULL, NULL, 0, &r), 0);
    assert_string_equal(r.body.data, "a");
    usleep(20000); /* let the server's close arrive */
    assert_int_equal(httpc_request(c, "POST", "/2", "text/plain", "x", 1, &r), 0);
    assert_string_equal(r.body.data, "b");
    assert_int_equal(httpc_connects(c), 2);
    httpc_free(c);
    fake_stop(&f);
    httpc_reply_dispose(&r);
}

static void test_retry_after_and_interim(void **state)
{
    (void)state;
    static const struct step steps[] = {
        REPLY("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Length: 2\r\n\r\n{}"),
        REPLY("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz"),
        REPLY("HTTP/1.1 503 Unavailable\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
              "Content-Length: 0\r\n\r\n"),
    };
    struct fake f;
    fake_start(&f, steps, 3);
    struct httpc *c = client(&f, 5000, 0);
    struct httpc_reply r;
    httpc_reply_init(&r);
    assert_int_equal(httpc_request(c, "POST", "/e", "application/json", "[]", 2, &r), 0);
    assert_int_equal(r.status, 429);
    assert_int_equal(r.retry_after_s, 3);
    assert_int_equal(httpc_request(c, "GET", "/e", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.retry_after_s, -1);
    assert_string_equal(r.body.data, "z");
    assert_int_equal(httpc_request(c, "GET", "/e", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 503);
    assert_int_equal(r.retry_after_s, -1); /* HTTP-date form: not understood */
    httpc_free(c);
    fake_stop(&f);
    httpc_reply_dispose(&r);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct step steps[] = {
        REPLY("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789012345678901234567890123"
              "456789012345678901234567890123456789012345678901234567890123456789"),
        REPLY_CLOSE("SMTP ready\r\n\r\n"),
        REPLY_CLOSE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        REPLY_CLOSE("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"),
        {.reply = NULL}, /* never answers */
    };
    struct fake f;
    fake_start(&f, steps, 5);
    struct httpc *c = client(&f, 300, 64);
    struct httpc_reply r;
    httpc_reply_init(&r);
    assert_int_equal(httpc_request(c, "GET", "/big", NULL, NULL, 0, &r), CORE_E_TOOBIG);
    assert_int_equal(httpc_request(c, "GET", "/smtp", NULL, NULL, 0, &r), CORE_E_PARSE);
    assert_int_equal(httpc_request(c, "GET", "/chunk", NULL, NULL, 0, &r), CORE_E_PARSE);
    assert_int_equal(httpc_request(c, "GET", "/short", NULL, NULL, 0, &r), CORE_E_CLOSED);
    int64_t t0 = core_mono_ns();
    assert_int_equal(httpc_request(c, "GET", "/slow", NULL, NULL, 0, &r), CORE_E_TIMEOUT);
    int64_t ms = (core_mono_ns() - t0) / 1000000;
    assert_true(ms >= 250 && ms < 3000);
    assert_int_equal(httpc_connects(c), 5); /* every error closed the connection */
    httpc_free(c);
    fake_stop(&f);

    /* Nobody listening. */
    struct httpc_options o;
    httpc_options_init(&o);
    o.host = "127.0.0.1";
    o.port = f.port; /* closed by fake_stop */
    c = httpc_new(&o);
    assert_int_equal(httpc_request(c, "GET", "/", NULL, NULL, 0, &r), -ECONNREFUSED);
    httpc_free(c);
    httpc_reply_dispose(&r);
}

static void test_url_parse(void **state)
{
    (void)state;
    struct httpc_url u;
    assert_int_equal(httpc_url_parse("http://127.0.0.1:8080", &u), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_string_equal(u.port, "8080");
    assert_string_equal(u.base, "");
    assert_int_equal(httpc_url_parse("http://example.com/", &u), 0);
    assert_string_equal(u.host, "example.com");
    assert_string_equal(u.port, "80");
    assert_string_equal(u.base, "");
    assert_int_equal(httpc_url_parse("HTTP://[::1]:9000/api/rs//", &u), 0);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.port, "9000");
    assert_string_equal(u.base, "/api/rs");
    const char *bad[] = {"https://x",   "127.0.0.1:8080", "http://",      "http://:80",
                         "http://h:0",  "http://h:65536", "http://h:80x", "http://h/p?q=1",
                         "http://[::1", "http://h:"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(httpc_url_parse(bad[i], &u), CORE_E_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length_and_keep_alive),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_connection_close_and_close_delimited),
        cmocka_unit_test(test_stale_keep_alive_is_retried),
        cmocka_unit_test(test_retry_after_and_interim),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_url_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
