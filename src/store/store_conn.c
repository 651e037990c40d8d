/* Redis addresses, connections and pipelines (hiredis 0.14, blocking contexts). */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/time.h>

int store_addr_parse(const char *url, struct store_addr *out, char *err, size_t errlen)
{
    struct store_addr a;
    memset(&a, 0, sizeof a);
    if (!strncmp(url, "unix://", 7)) {
        const char *path = url + 7;
        if (path[0] != '/' || strlen(path) >= sizeof a.unix_path) {
            snprintf(err, errlen, "expected unix:///absolute/path/to/redis.sock");
            return CORE_E_INVALID;
        }
        snprintf(a.unix_path, sizeof a.unix_path, "%s", path);
        *out = a;
        return 0;
    }
    const char *hp = !strncmp(url, "redis://", 8) ? url + 8 : NULL;
    const char *colon = hp ? strrchr(hp, ':') : NULL;
    int64_t port = 0;
    if (!hp || !colon || colon == hp || (size_t)(colon - hp) >= sizeof a.host ||
        strchr(colon, '/') || core_parse_i64(colon + 1, 1, 65535, &port)) {
        snprintf(err, errlen, "expected redis://HOST:PORT or unix:///PATH");
        return CORE_E_INVALID;
    }
    memcpy(a.host, hp, (size_t)(colon - hp));
    a.port = (int)port;
    *out = a;
    return 0;
}

int store_addr_read_auth(struct store_addr *a, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -errno;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen, "%s is readable by group or others (chmod 600 it)", path);
        return CORE_E_INVALID;
    }
    struct core_buf b;
    core_buf_init(&b);
    int rc = core_read_file(path, 1024, &b);
    if (rc < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, core_strerror(rc));
        core_buf_dispose(&b);
        return rc;
    }
    char line[sizeof a->user + sizeof a->password + 2];
    size_t n = strcspn(b.data, "\r\n");
    if (n >= sizeof line)
        n = sizeof line - 1;
    memcpy(line, b.data, n);
    line[n] = 0;
    sodium_memzero(b.data, b.cap);
    core_buf_dispose(&b);
    char *sp = strchr(line, ' ');
    const char *user = sp ? line : "", *pass = sp ? sp + 1 : line;
    if (sp)
        *sp = 0;
    rc = 0;
    if (!*pass || strlen(pass) >= sizeof a->password || strlen(user) >= sizeof a->user ||
        strchr(pass, ' ')) {
        snprintf(err, errlen, "%s: expected one line, PASSWORD or USER PASSWORD", path);
        rc = CORE_E_INVALID;
    } else {
        snprintf(a->user, sizeof a->user, "%s", user);
        snprintf(a->password, sizeof a->password, "%s", pass);
    }
    sodium_memzero(line, sizeof line);
    return rc;
}

/* AUTH when configured, then PING: a connection that cannot run commands is no connection. */
static bool handshake(redisContext *c, const struct store_addr *a)
{
    redisReply *r = NULL;
    if (a->password[0]) {
        r = a->user[0] ? redisCommand(c, "AUTH %s %s", a->user, a->password)
                       : redisCommand(c, "AUTH %s", a->password);
        bool ok = r && r->type == REDIS_REPLY_STATUS;
        if (r && !ok)
            snprintf(c->errstr, sizeof c->errstr, "AUTH: %s", r->str ? r->str : "refused");
        if (r)
            freeReplyObject(r);
        if (!ok)
            return false;
    }
    r = redisCommand(c, "PING");
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (r && !ok)
        snprintf(c->errstr, sizeof c->errstr, "%s", r->str ? r->str : "PING refused");
    if (r)
        freeReplyObject(r);
    return ok;
}

redisContext *store__connect(const struct store_addr *a)
{
    struct timeval tv = {1, 0};
    redisContext *c = a->unix_path[0] ? redisConnectUnixWithTimeout(a->unix_path, tv)
                                      : redisConnectWithTimeout(a->host, a->port, tv);
    if (c && !c->err) {
        redisSetTimeout(c, tv);
        if (!handshake(c, a) && !c->err)
            c->err = REDIS_ERR_OTHER;
    }
    if (!c || c->err) {
        char where[300];
        if (a->unix_path[0])
            snprintf(where, sizeof where, "%s", a->unix_path);
        else
            snprintf(where, sizeof where, "%s:%d", a->host, a->port);
        LOG_WARN("cannot connect to redis", "addr=%s err=\"%s\"", where,
                 c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    return c;
}

void store__user_key(char *out, size_t size, const char *user_key)
{
    snprintf(out, size, "rs:{u:%s}", user_key);
}

void store__part_key(char *out, size_t size, int32_t p, const char *what)
{
    snprintf(out, size, "rs:{p%d}:%s", (int)p, what);
}

void store__pipe_init(struct store_pipe *pp, redisContext *c)
{
    pp->c = c;
    pp->pending = 0;
    pp->errors = 0;
}

void store__pipe_cmd(struct store_pipe *pp, int argc, const char **argv, const size_t *lens)
{
    if (redisAppendCommandArgv(pp->c, argc, argv, lens) != REDIS_OK) {
        pp->errors++;
        return;
    }
    if (++pp->pending >= STORE_PIPELINE_MAX)
        store__pipe_drain(pp);
}

int store__pipe_drain(struct store_pipe *pp)
{
    for (; pp->pending > 0; pp->pending--) {
        void *rep = NULL;
        if (redisGetReply(pp->c, &rep) != REDIS_OK) {
            pp->errors++;
            pp->pending = 0;
            break;
        }
        redisReply *r = rep;
        if (r->type == REDIS_REPLY_ERROR) {
            if (pp->errors == 0)
                LOG_WARN("redis command failed", "err=\"%s\"", r->str);
            pp->errors++;
        }
        freeReplyObject(r);
    }
    return pp->errors ? CORE_E_FAILED : 0;
}
