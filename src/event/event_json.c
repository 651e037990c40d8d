/*
 * The JSON decoder and first-cut validator of the canonical event (DESIGN.md, "Canonical
 * event"). One pass over the object's members picks out the known fields; the fields are
 * then checked in a fixed order so that the first failing field reported is deterministic.
 */
#include "event_int.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_SAFE_INT 9007199254740992.0 /* 2^53: larger doubles are not exact integers */
#define FUTURE_SLACK_MS (24LL * 3600 * 1000)
#define POSITION_MAX 100000

enum field {
    F_EVENT_ID,
    F_USER_ID,
    F_ANON_ID,
    F_SESSION_ID,
    F_EVENT_TYPE,
    F_ITEM_ID,
    F_TIMESTAMP,
    F_VALUE,
    F_REC_ID,
    F_POSITION,
    F_SCHEMA,
    F_CONTEXT,
    F_PROPERTIES,
    F__COUNT
};

static const char *const field_names[F__COUNT] = {
    "eventId", "userId", "anonymousId", "sessionId", "eventType", "itemId",     "timestamp",
    "value",   "recId",  "position",    "schema",    "context",   "properties",
};

/* Context keys kept by data minimisation; nested marks those whose value may be an object. */
static const struct {
    const char *name;
    bool nested;
} context_keys[] = {
    {"device", false},    {"locale", false}, {"page", false},     {"referrer", false},
    {"userAgent", false}, {"ip", false},     {"campaign", true},  {"screen", true},
    {"app", true},        {"os", false},     {"timezone", false}, {"country", false},
    {"library", false},
};
#define CONTEXT_KEY_COUNT (sizeof context_keys / sizeof context_keys[0])

/* What one decode call works on. */
struct decoder {
    const cJSON *items[F__COUNT];
    struct core_arena *arena;
    struct event *ev;
    struct event_error *err;
    int64_t recv_ms;
    const struct event_decode_opts *opts;
};

static int fail(struct decoder *d, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct decoder *d, const char *field, const char *fmt, ...)
{
    snprintf(d->err->field, sizeof d->err->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err->message, sizeof d->err->message, fmt, ap);
    va_end(ap);
    return CORE_E_INVALID;
}

static void count_dropped(struct event *ev, uint32_t n)
{
    ev->dropped_fields = n > UINT32_MAX - ev->dropped_fields ? UINT32_MAX : ev->dropped_fields + n;
}

static int field_lookup(const char *key)
{
    for (int i = 0; i < F__COUNT; i++) {
        if (field_names[i][0] == key[0] && strcmp(field_names[i], key) == 0)
            return i;
    }
    return -1;
}

/* Absent and JSON null mean the same: many producers send null for "not set". */
static bool is_absent(const cJSON *item)
{
    return !item || cJSON_IsNull(item);
}

/* True when v is an integer that a double represents exactly (|v| < 2^53). */
static bool is_exact_integer(double v)
{
    return isfinite(v) && fabs(v) < MAX_SAFE_INT && v == trunc(v);
}

/* ---- strings -------------------------------------------------------------------------------- */

/* Rules of one string field. */
struct str_rule {
    enum field f;
    size_t max;
    bool numeric; /* integer JSON numbers are accepted and converted to decimal */
    bool empty_ok;
};

/* Converts an integer id sent as a JSON number to its decimal string in the arena. */
static int numeric_id(struct decoder *d, const struct str_rule *r, double v, struct event_str *out)
{
    if (!is_exact_integer(v))
        return fail(d, field_names[r->f],
                    "must be a string or an integer below 2^53 (send other ids as strings)");
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, (int64_t)v);
    out->ptr = core_arena_strndup(d->arena, tmp, (size_t)n);
    out->len = (size_t)n;
    return 0;
}

static int decode_str(struct decoder *d, const struct str_rule *r, struct event_str *out)
{
    const cJSON *item = d->items[r->f];
    const char *name = field_names[r->f];
    out->ptr = NULL;
    out->len = 0;
    if (is_absent(item))
        return 0;
    if (r->numeric && cJSON_IsNumber(item))
        return numeric_id(d, r, item->valuedouble, out);
    if (!cJSON_IsString(item) || !item->valuestring)
        return fail(d, name, r->numeric ? "must be a string or an integer" : "must be a string");
    size_t len = strlen(item->valuestring);
    if (len == 0 && !r->empty_ok)
        return fail(d, name, "must not be empty");
    if (len > r->max)
        return fail(d, name, "must be at most %zu bytes", r->max);
    if (!event__utf8_valid(item->valuestring, len))
        return fail(d, name, "not valid UTF-8");
    out->ptr = len ? item->valuestring : NULL;
    out->len = len;
    return 0;
}

/* ---- fields --------------------------------------------------------------------------------- */

static int decode_ids(struct decoder *d)
{
    static const struct str_rule event_id = {F_EVENT_ID, EVENT_ID_MAX, false, false};
    static const struct str_rule user_id = {F_USER_ID, EVENT_USER_MAX, true, false};
    static const struct str_rule anon_id = {F_ANON_ID, EVENT_USER_MAX, true, false};
    static const struct str_rule session_id = {F_SESSION_ID, EVENT_SESSION_MAX, false, false};
    struct event *ev = d->ev;
    int rc;
    if ((rc = decode_str(d, &event_id, &ev->event_id)) < 0 ||
        (rc = decode_str(d, &user_id, &ev->user_id)) < 0 ||
        (rc = decode_str(d, &anon_id, &ev->anonymous_id)) < 0)
        return rc;
    if (ev->user_id.len == 0 && ev->anonymous_id.len == 0)
        return fail(d, "userId", "userId or anonymousId is required");
    return decode_str(d, &session_id, &ev->session_id);
}

/* Length of at most max bytes of s that does not end inside a UTF-8 sequence. */
static int clip_utf8(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return (int)len;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return (int)max;
}

static int decode_type_item(struct decoder *d)
{
    static const struct str_rule type_rule = {F_EVENT_TYPE, 64, false, true};
    static const struct str_rule item_id = {F_ITEM_ID, EVENT_ITEM_MAX, true, false};
    const cJSON *item = d->items[F_EVENT_TYPE];
    struct event *ev = d->ev;
    if (is_absent(item))
        return fail(d, "eventType", "eventType is required");
    if (!cJSON_IsString(item) || !item->valuestring)
        return fail(d, "eventType", "must be a string");
    const char *name = item->valuestring;
    size_t len = strlen(name);
    ev->type = event_type_lookup(name, len);
    if (ev->type < 0 && d->opts && d->opts->custom_type &&
        d->opts->custom_type(d->opts->arg, name, len)) {
        int rc = decode_str(d, &type_rule, &ev->type_name); /* checks length and UTF-8 */
        if (rc < 0)
            return rc;
        ev->type = EVENT_TYPE_CUSTOM;
    }
    if (ev->type == EVENT_CONSENT && !(d->opts && d->opts->allow_control))
        return fail(d, "eventType",
                    "eventType \"consent\" is written by the server only; use PUT "
                    "/v1/users/{userId}/consent");
    if (ev->type == EVENT_TICK || ((ev->type == EVENT_MERGE || ev->type == EVENT_MERGE_IN) &&
                                   !(d->opts && d->opts->allow_control)))
        return fail(d, "eventType", "eventType \"%s\" is written by the server only",
                    event_type_get(ev->type)->name);
    if (ev->type < 0) {
        struct event_str ignored;
        int rc = decode_str(d, &type_rule, &ignored); /* reports invalid UTF-8 first */
        if (rc < 0)
            return rc;
        return fail(d, "eventType", "unknown eventType \"%.*s\"", clip_utf8(name, len, 64), name);
    }
    int rc = decode_str(d, &item_id, &ev->item_id);
    if (rc < 0)
        return rc;
    const struct event_type_info *ti = event_type_get(ev->type);
    if (ti->item_required && ev->item_id.len == 0)
        return fail(d, "itemId", "itemId is required for eventType \"%s\"", ti->name);
    return 0;
}

static int decode_timestamp(struct decoder *d)
{
    static const char *const wrong =
        "must be an integer (ms since the epoch) or an RFC 3339 string";
    const cJSON *item = d->items[F_TIMESTAMP];
    struct event *ev = d->ev;
    int64_t ts;
    if (is_absent(item)) {
        ev->ts_ms = d->recv_ms;
        return 0;
    }
    if (cJSON_IsNumber(item)) {
        double v = item->valuedouble;
        if (!is_exact_integer(v) || v <= 0)
            return fail(d, "timestamp", "%s", wrong);
        ts = (int64_t)v;
    } else if (cJSON_IsString(item) && item->valuestring) {
        const char *s = item->valuestring;
        if (core_rfc3339_parse(s, strlen(s), &ts) < 0)
            return fail(d, "timestamp",
                        "not a valid RFC 3339 date-time (e.g. "
                        "\"2024-01-02T03:04:05.678Z\")");
        if (ts <= 0)
            return fail(d, "timestamp", "must be after 1970-01-01T00:00:00Z");
    } else {
        return fail(d, "timestamp", "%s", wrong);
    }
    /* Clocks drift and devices send late, but not from tomorrow. */
    if (d->recv_ms < INT64_MAX - FUTURE_SLACK_MS && ts > d->recv_ms + FUTURE_SLACK_MS)
        return fail(d, "timestamp", "is more than 24 h in the future (ahead of the receive time)");
    ev->ts_ms = ts;
    return 0;
}

/* One SchemaVer part: decimal, no leading zero, at most 6 digits; advances *i. */
static bool version_part(const char *s, size_t n, size_t *i, bool nonzero)
{
    size_t start = *i;
    while (*i < n && s[*i] >= '0' && s[*i] <= '9')
        (*i)++;
    size_t len = *i - start;
    if (len == 0 || len > 6 || (len > 1 && s[start] == '0'))
        return false;
    return !nonzero || s[start] != '0';
}

/* "name/MODEL-REVISION-ADDITION" with the registry's name rule (the registry resolves it). */
static bool schema_ref_shaped(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return false;
    while (i < n && s[i] != '/') {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
        i++;
    }
    if (i == 0 || i > 128 || i == n)
        return false;
    i++;
    return version_part(s, n, &i, true) && i < n && s[i++] == '-' &&
           version_part(s, n, &i, false) && i < n && s[i++] == '-' &&
           version_part(s, n, &i, false) && i == n;
}

static int decode_reco(struct decoder *d)
{
    static const struct str_rule rec_id = {F_REC_ID, EVENT_RECID_MAX, false, false};
    static const struct str_rule schema = {F_SCHEMA, EVENT_SCHEMA_MAX, false, true};
    struct event *ev = d->ev;
    const cJSON *value = d->items[F_VALUE];
    if (!is_absent(value)) {
        if (!cJSON_IsNumber(value) || !isfinite(value->valuedouble))
            return fail(d, "value", "must be a finite number");
        ev->has_value = true;
        ev->value = value->valuedouble;
    }
    int rc = decode_str(d, &rec_id, &ev->rec_id);
    if (rc < 0)
        return rc;
    const cJSON *pos = d->items[F_POSITION];
    if (!is_absent(pos)) {
        double v = cJSON_IsNumber(pos) ? pos->valuedouble : -1;
        if (!is_exact_integer(v) || v < 0 || v > POSITION_MAX)
            return fail(d, "position", "must be an integer from 0 to %d", POSITION_MAX);
        ev->has_position = true;
        ev->position = (int32_t)v;
    }
    rc = decode_str(d, &schema, &ev->schema);
    if (rc == 0 && ev->schema.len && !schema_ref_shaped(ev->schema.ptr, ev->schema.len))
        return fail(d, "schema",
                    "must be \"name/MODEL-REVISION-ADDITION\", e.g. \"purchase/1-0-2\"");
    return rc;
}

/* ---- context and properties ----------------------------------------------------------------- */

static int context_key(const char *key)
{
    for (size_t i = 0; i < CONTEXT_KEY_COUNT; i++) {
        if (context_keys[i].name[0] == key[0] && strcmp(context_keys[i].name, key) == 0)
            return (int)i;
    }
    return -1;
}

/* A nested context value: an object of scalars, one level deep. */
static int write_context_object(struct event__jw *w, const cJSON *obj)
{
    event__jw_raw(w, "{", 1);
    for (const cJSON *c = obj->child; c; c = c->next) {
        if (c != obj->child)
            event__jw_raw(w, ",", 1);
        const char *k = c->string ? c->string : "";
        int rc = event__jw_str(w, k, strlen(k));
        if (rc < 0)
            return rc;
        event__jw_raw(w, ":", 1);
        if ((rc = event__jw_scalar(w, c)) < 0)
            return rc;
    }
    event__jw_raw(w, "}", 1);
    return 0;
}

static int write_context_value(struct event__jw *w, const cJSON *item, bool nested)
{
    if (cJSON_IsObject(item) && nested)
        return write_context_object(w, item);
    if (cJSON_IsObject(item) || cJSON_IsArray(item)) {
        w->reason = nested ? "must be a string, number, boolean or an object of those"
                           : "must be a string, number or boolean";
        return CORE_E_INVALID;
    }
    return event__jw_scalar(w, item);
}

/* Data minimisation of one context member (see event_decode_opts): 1 = written, 0 = left
 * out, negative = error. *device_class gets the class of a user agent. */
static int write_minimised(struct event__jw *w, const cJSON *c, int k,
                           const struct event_decode_opts *opts, const char **device_class)
{
    const char *name = context_keys[k].name;
    bool is_ip = !strcmp(name, "ip") && opts && opts->minimise_ip;
    bool is_ua = !strcmp(name, "userAgent") && opts && opts->device_class;
    if (!is_ip && !is_ua)
        return 2; /* not minimised: the caller writes it as sent */
    if (!cJSON_IsString(c))
        return 0; /* not an address / agent: nothing to keep */
    if (is_ua) {
        *device_class = opts->device_class(opts->arg, c->valuestring, strlen(c->valuestring));
        return 0;
    }
    char ip[64];
    if (!opts->minimise_ip(opts->arg, c->valuestring, strlen(c->valuestring), ip, sizeof ip))
        return 0;
    event__jw_str(w, name, strlen(name));
    event__jw_raw(w, ":", 1);
    return event__jw_str(w, ip, strlen(ip)) < 0 ? CORE_E_INVALID : 1;
}

/*
 * Writes the allow-listed members of context (one pass of the two). Unknown keys and repeats
 * are counted in *dropped; null members are left out. On a refused value *bad names its key.
 * With minimisation options, ip is rewritten (or left out) and a userAgent is replaced by
 * a "device" class (added at the end when the event has no device of its own).
 */
static int write_context(struct event__jw *w, const cJSON *ctx, uint32_t *dropped, int *bad,
                         const struct event_decode_opts *opts)
{
    uint32_t seen = 0;
    bool first = true;
    const char *device_class = NULL;
    event__jw_raw(w, "{", 1);
    for (const cJSON *c = ctx->child; c; c = c->next) {
        int k = c->string ? context_key(c->string) : -1;
        if (k < 0 || (seen & (1u << k))) {
            *dropped += *dropped < UINT32_MAX;
            continue;
        }
        seen |= 1u << k;
        if (cJSON_IsNull(c))
            continue;
        *bad = k;
        size_t mark = w->len;
        if (!first)
            event__jw_raw(w, ",", 1);
        int rc = write_minimised(w, c, k, opts, &device_class);
        if (rc == 0) {
            w->len = mark; /* left out: undo the comma */
            continue;
        }
        if (rc == 2) {
            event__jw_str(w, context_keys[k].name, strlen(context_keys[k].name));
            event__jw_raw(w, ":", 1);
            rc = write_context_value(w, c, context_keys[k].nested);
        }
        first = false;
        if (rc >= 0 && w->len > w->max)
            rc = CORE_E_TOOBIG;
        if (rc < 0)
            return rc;
    }
    if (device_class && !(seen & 1u << context_key("device"))) {
        if (!first)
            event__jw_raw(w, ",", 1);
        first = false;
        event__jw_str(w, "device", 6);
        event__jw_raw(w, ":", 1);
        event__jw_str(w, device_class, strlen(device_class));
    }
    event__jw_raw(w, "}", 1);
    *bad = -1;
    return first ? 1 : 0; /* 1: nothing kept */
}

/* One walk of the writer over context (allow-listed) or properties (whole). */
static int write_blob(struct event__jw *w, enum field f, const cJSON *obj, uint32_t *dropped,
                      int *bad, const struct event_decode_opts *opts)
{
    if (f == F_CONTEXT)
        return write_context(w, obj, dropped, bad, opts);
    return event__jw_value(w, obj);
}

/*
 * Serialises one object (context or properties) into the arena, validating on the way.
 * Typical objects fit the stack buffer and are copied; bigger ones are walked a second time
 * straight into an arena block of the size the first walk measured.
 */
static int decode_blob(struct decoder *d, enum field f, struct event_str *out)
{
    const cJSON *obj = d->items[f];
    const char *name = field_names[f];
    out->ptr = NULL;
    out->len = 0;
    if (is_absent(obj))
        return 0;
    if (!cJSON_IsObject(obj))
        return fail(d, name, "must be an object");
    if (!obj->child)
        return 0; /* {} is kept as absent */
    char stack[1024];
    struct event__jw w;
    uint32_t dropped = 0;
    int bad = -1;
    event__jw_init(&w, stack, sizeof stack, EVENT_JSON_FIELD_MAX);
    int rc = write_blob(&w, f, obj, &dropped, &bad, d->opts);
    if (rc == CORE_E_TOOBIG || (rc >= 0 && w.len > EVENT_JSON_FIELD_MAX))
        return fail(d, name, "must be at most %d bytes as compact JSON", EVENT_JSON_FIELD_MAX);
    if (rc < 0) {
        char path[64];
        snprintf(path, sizeof path, "%s%s%s", name, bad >= 0 ? "." : "",
                 bad >= 0 ? context_keys[bad].name : "");
        return fail(d, path, "%s", w.reason ? w.reason : "invalid value");
    }
    count_dropped(d->ev, dropped);
    if (rc == 1)
        return 0; /* nothing kept */
    size_t len = w.len;
    char *buf = core_arena_alloc(d->arena, len + 1);
    if (len <= sizeof stack) {
        memcpy(buf, stack, len);
    } else {
        event__jw_init(&w, buf, len, EVENT_JSON_FIELD_MAX);
        rc = write_blob(&w, f, obj, &dropped, &bad, d->opts);
        assert(rc >= 0 && w.len == len); /* the same walk over the same tree */
    }
    buf[len] = '\0';
    out->ptr = buf;
    out->len = len;
    return 0;
}

/* ---- entry point ---------------------------------------------------------------------------- */

int event_json_decode(const cJSON *obj, int64_t recv_ms, struct core_arena *arena, struct event *ev,
                      struct event_error *err)
{
    return event_json_decode_ex(obj, recv_ms, arena, NULL, ev, err);
}

int event_json_decode_ex(const cJSON *obj, int64_t recv_ms, struct core_arena *arena,
                         const struct event_decode_opts *opts, struct event *ev,
                         struct event_error *err)
{
    struct event tmp;
    struct decoder d = {.arena = arena, .ev = &tmp, .err = err, .recv_ms = recv_ms, .opts = opts};
    event_init(&tmp);
    tmp.recv_ms = recv_ms;
    err->field[0] = '\0';
    err->message[0] = '\0';
    if (!cJSON_IsObject(obj))
        return fail(&d, "", "event must be a JSON object");
    for (const cJSON *c = obj->child; c; c = c->next) {
        int f = c->string ? field_lookup(c->string) : -1;
        if (f < 0 || d.items[f]) {
            count_dropped(&tmp, 1); /* unknown, or a repeat: the first occurrence wins */
            continue;
        }
        d.items[f] = c;
    }
    int rc;
    if ((rc = decode_ids(&d)) < 0 || (rc = decode_type_item(&d)) < 0 ||
        (rc = decode_timestamp(&d)) < 0 || (rc = decode_reco(&d)) < 0 ||
        (rc = decode_blob(&d, F_CONTEXT, &tmp.context_json)) < 0 ||
        (rc = decode_blob(&d, F_PROPERTIES, &tmp.properties_json)) < 0)
        return rc;
    *ev = tmp;
    return 0;
}

int event_properties_encode(const cJSON *obj, struct core_arena *arena, struct event_str *out)
{
    if (!cJSON_IsObject(obj))
        return CORE_E_INVALID;
    if (!obj->child) {
        *out = (struct event_str){NULL, 0};
        return 0;
    }
    struct event__jw w;
    event__jw_init(&w, NULL, 0, EVENT_JSON_FIELD_MAX);
    int rc = event__jw_value(&w, obj);
    if (rc < 0 || w.len > EVENT_JSON_FIELD_MAX)
        return rc < 0 ? rc : CORE_E_TOOBIG;
    size_t len = w.len;
    char *buf = core_arena_alloc(arena, len + 1);
    event__jw_init(&w, buf, len, EVENT_JSON_FIELD_MAX);
    rc = event__jw_value(&w, obj);
    assert(rc >= 0 && w.len == len);
    buf[len] = '\0';
    *out = (struct event_str){buf, len};
    return 0;
}
