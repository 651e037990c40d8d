/*
 * JSON output of the event module: the compact writer used by the decoder to store context
 * and properties, and the canonical JSON encoding of an event.
 */
#include "event_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 ---------------------------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence starting with the non-ASCII byte u[0] (n bytes
 * available), or 0 when it is malformed: overlong, a surrogate or past U+10FFFF. */
static size_t utf8_seq(const unsigned char *u, size_t n)
{
    unsigned char c = u[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* past U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || u[1] < lo || u[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++) {
        if ((u[k] & 0xc0) != 0x80)
            return 0;
    }
    return len;
}

bool event__utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t len = utf8_seq(u + i, n - i);
        if (!len)
            return false;
        i += len;
    }
    return true;
}

/* ---- compact writer ------------------------------------------------------------------------- */

void event__jw_init(struct event__jw *w, char *buf, size_t cap, size_t max)
{
    w->buf = buf;
    w->cap = buf ? cap : 0;
    w->len = 0;
    w->max = max;
    w->reason = NULL;
}

void event__jw_raw(struct event__jw *w, const char *s, size_t n)
{
    if (n <= w->cap && w->len <= w->cap - n)
        memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static int refuse(struct event__jw *w, const char *reason)
{
    w->reason = reason;
    return CORE_E_INVALID;
}

/* Escapes one byte that JSON does not allow raw in a string. */
static void write_escape(struct event__jw *w, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char esc[6] = {'\\', (char)c};
    size_t len = 2;
    switch (c) {
    case '"':
    case '\\':
        break;
    case '\b':
        esc[1] = 'b';
        break;
    case '\f':
        esc[1] = 'f';
        break;
    case '\n':
        esc[1] = 'n';
        break;
    case '\r':
        esc[1] = 'r';
        break;
    case '\t':
        esc[1] = 't';
        break;
    default:
        esc[1] = 'u';
        esc[2] = '0';
        esc[3] = '0';
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 15];
        len = 6;
    }
    event__jw_raw(w, esc, len);
}

int event__jw_str(struct event__jw *w, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    event__jw_raw(w, "\"", 1);
    size_t run = 0; /* start of the bytes not yet written */
    size_t i = 0;
    while (i < n) {
        unsigned char c = u[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
        } else if (c >= 0x80) {
            size_t len = utf8_seq(u + i, n - i);
            if (!len)
                return refuse(w, "not valid UTF-8");
            i += len;
        } else {
            event__jw_raw(w, s + run, i - run);
            write_escape(w, c);
            run = ++i;
        }
    }
    event__jw_raw(w, s + run, n - run);
    event__jw_raw(w, "\"", 1);
    return 0;
}

int event__jw_num(struct event__jw *w, double v)
{
    if (!isfinite(v))
        return refuse(w, "numbers must be finite");
    char tmp[32];
    if (fabs(v) < 9007199254740992.0 && v == trunc(v)) {
        /* Integers are the common case (counts, sizes, ids): format them by hand. */
        uint64_t u = (uint64_t)fabs(v);
        char *p = tmp + sizeof tmp;
        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (v < 0)
            *--p = '-';
        event__jw_raw(w, p, (size_t)(tmp + sizeof tmp - p));
        return 0;
    }
    /* The shorter of the two precisions that reads back as the same double. */
    int n = snprintf(tmp, sizeof tmp, "%.15g", v);
    if (strtod(tmp, NULL) != v)
        n = snprintf(tmp, sizeof tmp, "%.17g", v);
    event__jw_raw(w, tmp, (size_t)n);
    return 0;
}

int event__jw_scalar(struct event__jw *w, const cJSON *item)
{
    if (cJSON_IsString(item)) {
        const char *s = item->valuestring ? item->valuestring : "";
        return event__jw_str(w, s, strlen(s));
    }
    if (cJSON_IsNumber(item))
        return event__jw_num(w, item->valuedouble);
    if (cJSON_IsTrue(item))
        event__jw_raw(w, "true", 4);
    else if (cJSON_IsFalse(item))
        event__jw_raw(w, "false", 5);
    else if (cJSON_IsNull(item))
        event__jw_raw(w, "null", 4);
    else
        return refuse(w, "must be a string, number or boolean");
    return 0;
}

/* Writes the members of an object or the elements of an array between open and close. */
static int write_children(struct event__jw *w, const cJSON *item, bool keys, char open, char close)
{
    event__jw_raw(w, &open, 1);
    for (const cJSON *c = item->child; c; c = c->next) {
        if (c != item->child)
            event__jw_raw(w, ",", 1);
        if (keys) {
            const char *k = c->string ? c->string : "";
            int rc = event__jw_str(w, k, strlen(k));
            if (rc < 0)
                return rc;
            event__jw_raw(w, ":", 1);
        }
        int rc = event__jw_value(w, c);
        if (rc < 0)
            return rc;
    }
    event__jw_raw(w, &close, 1);
    return 0;
}

int event__jw_value(struct event__jw *w, const cJSON *item)
{
    int rc;
    if (cJSON_IsObject(item))
        rc = write_children(w, item, true, '{', '}');
    else if (cJSON_IsArray(item))
        rc = write_children(w, item, false, '[', ']');
    else
        rc = event__jw_scalar(w, item);
    if (rc == 0 && w->len > w->max)
        rc = CORE_E_TOOBIG;
    return rc;
}

/* ---- canonical encoding --------------------------------------------------------------------- */

static void put_key(struct core_buf *out, bool *first, const char *key)
{
    core_buf_append(out, *first ? "\"" : ",\"", *first ? 1 : 2);
    core_buf_puts(out, key);
    core_buf_append(out, "\":", 2);
    *first = false;
}

static void put_str(struct core_buf *out, bool *first, const char *key, const char *s, size_t n)
{
    if (n == 0)
        return;
    put_key(out, first, key);
    core_json_str(out, s, n);
}

static void put_raw(struct core_buf *out, bool *first, const char *key, struct event_str raw)
{
    if (raw.len == 0)
        return;
    put_key(out, first, key);
    core_buf_append(out, raw.ptr, raw.len);
}

void event_json_encode(const struct event *ev, struct core_buf *out)
{
    bool first = true;
    size_t type_len;
    const char *type_name = event_type_name(ev, &type_len);
    core_buf_putc(out, '{');
    put_str(out, &first, "eventId", ev->event_id.ptr, ev->event_id.len);
    put_str(out, &first, "userKey", ev->user_key, strnlen(ev->user_key, EVENT_KEY_HEX));
    put_str(out, &first, "anonKey", ev->anon_key, strnlen(ev->anon_key, EVENT_KEY_HEX));
    put_str(out, &first, "sessionId", ev->session_id.ptr, ev->session_id.len);
    put_str(out, &first, "eventType", type_name, type_len);
    put_str(out, &first, "itemId", ev->item_id.ptr, ev->item_id.len);
    put_key(out, &first, "timestamp");
    core_json_i64(out, ev->ts_ms);
    put_key(out, &first, "receivedAt");
    core_json_i64(out, ev->recv_ms);
    if (ev->has_value) {
        put_key(out, &first, "value");
        core_json_f64(out, ev->value);
    }
    put_str(out, &first, "recId", ev->rec_id.ptr, ev->rec_id.len);
    if (ev->has_position) {
        put_key(out, &first, "position");
        core_json_i64(out, ev->position);
    }
    put_str(out, &first, "schema", ev->schema.ptr, ev->schema.len);
    put_raw(out, &first, "context", ev->context_json);
    put_raw(out, &first, "properties", ev->properties_json);
    if (ev->anonymous) {
        put_key(out, &first, "anonymous");
        core_buf_puts(out, "true");
    }
    core_buf_putc(out, '}');
}
