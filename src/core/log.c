/* Structured logfmt logging on stderr. */
#include "core.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static enum core_log_level g_level = CORE_LOG_INFO;

void core_log_set_level(enum core_log_level lvl)
{
    g_level = lvl;
}

int core_log_parse_level(const char *s, enum core_log_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(s, names[i])) {
            *out = (enum core_log_level)i;
            return 0;
        }
    }
    return CORE_E_INVALID;
}

void core_log(enum core_log_level lvl, const char *msg, const char *kvfmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (lvl < g_level)
        return;
    char ts[40];
    core_rfc3339_format(core_now_ms(), ts, sizeof ts);
    char line[2048];
    /* Build on the stack; one fputs keeps lines from different threads whole. */
    int n = snprintf(line, sizeof line, "ts=%s level=%s msg=", ts, names[lvl]);
    size_t len = (size_t)n;
    if (len < sizeof line - 1) {
        struct core_buf tmp;
        core_buf_init(&tmp);
        core_json_cstr(&tmp, msg);
        size_t cp = tmp.len < sizeof line - 1 - len ? tmp.len : sizeof line - 1 - len;
        memcpy(line + len, tmp.data, cp);
        len += cp;
        core_buf_dispose(&tmp);
    }
    if (kvfmt && len < sizeof line - 2) {
        line[len++] = ' ';
        va_list ap;
        va_start(ap, kvfmt);
        int k = vsnprintf(line + len, sizeof line - len, kvfmt, ap);
        va_end(ap);
        if (k > 0)
            len += (size_t)k < sizeof line - len ? (size_t)k : sizeof line - len - 1;
    }
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    line[len] = '\0';
    fputs(line, stderr);
}
