/*
 * Registered schemas at ingest (validating `properties`, custom event types) and the
 * dead-letter path for rejected events.
 */
#include "ingest/deadletter.h"
#include "ingest/ingest_int.h"

#include <stdio.h>
#include <string.h>

/* Names under "recstream." are the system's own schemas (the event envelope), never types. */
static bool system_name(const char *name, size_t len)
{
    return len >= 10 && memcmp(name, "recstream.", 10) == 0;
}

bool ingest__custom_type(void *arg, const char *name, size_t len)
{
    struct ingest *ing = arg;
    return ing->cfg.registry && !system_name(name, len) &&
           schema_registry_has(ing->cfg.registry, name, len);
}

static void item_error(struct ingest_item *it, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void item_error(struct ingest_item *it, const char *field, const char *fmt, ...)
{
    snprintf(it->err.field, sizeof it->err.field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->err.message, sizeof it->err.message, fmt, ap);
    va_end(ap);
}

/* Finds the schema an event's properties must satisfy; NULL with no error when none. */
static int find_schema(struct ingest *ing, struct ingest_item *it, struct event *ev,
                       struct core_arena *arena, const struct schema **out)
{
    struct schema_registry *reg = ing->cfg.registry;
    char name[SCHEMA_NAME_MAX + 1];
    struct schema_version v;
    *out = NULL;
    if (ev->schema.len) {
        if (schema_ref_parse(ev->schema.ptr, ev->schema.len, name, sizeof name, &v) < 0) {
            item_error(it, "schema", "must be \"name/MODEL-REVISION-ADDITION\"");
            return CORE_E_INVALID;
        }
        *out = schema_registry_get(reg, name, strlen(name), &v);
        if (!*out) {
            item_error(it, "schema", "unknown schema \"%.*s\"", (int)ev->schema.len,
                       ev->schema.ptr);
            return CORE_E_INVALID;
        }
        return 0;
    }
    size_t len;
    const char *type = event_type_name(ev, &len);
    if (system_name(type, len))
        return 0;
    *out = schema_registry_resolve(reg, type, len, NULL, &v);
    if (*out) {
        /* Record which version validated the event, so consumers can tell. */
        char ver[SCHEMA_VERSION_STR_SIZE];
        schema_version_format(&v, ver, sizeof ver);
        size_t n = len + 1 + strlen(ver);
        char *ref = core_arena_alloc(arena, n + 1);
        snprintf(ref, n + 1, "%.*s/%s", (int)len, type, ver);
        ev->schema = (struct event_str){ref, n};
    }
    return 0;
}

/*
 * Data minimisation by schema: when the schema's root is closed ("additionalProperties":
 * false), top-level members it does not declare are dropped (counted with the other dropped
 * fields) rather than failing the event, and the stored properties are re-encoded without
 * them. Returns the kept members as a new object of references, or NULL when nothing is
 * dropped.
 */
static cJSON *drop_undeclared(const struct schema *s, const cJSON *props, struct event *ev,
                              struct core_arena *arena)
{
    if (!cJSON_IsObject(props) || !schema_root_closed(s))
        return NULL;
    uint32_t undeclared = 0;
    for (const cJSON *c = props->child; c; c = c->next)
        if (!c->string || !schema_root_declares(s, c->string, strlen(c->string)))
            undeclared++;
    if (!undeclared)
        return NULL;
    cJSON *kept = cJSON_CreateObject();
    for (cJSON *c = props->child; c; c = c->next)
        if (c->string && schema_root_declares(s, c->string, strlen(c->string)))
            cJSON_AddItemReferenceToObject(kept, c->string, c);
    if (event_properties_encode(kept, arena, &ev->properties_json) < 0) {
        cJSON_Delete(kept);
        return NULL; /* cannot happen for a subset of valid properties; validate them whole */
    }
    ev->dropped_fields =
        ev->dropped_fields > UINT32_MAX - undeclared ? UINT32_MAX : ev->dropped_fields + undeclared;
    return kept;
}

/* Counts the top-level properties the schema marks "x-pii": true. */
static void count_pii(struct ingest *ing, const struct schema *s, const cJSON *props)
{
    uint64_t n = 0;
    for (const cJSON *c = props->child; c; c = c->next)
        n += c->string && schema_pii_property(s, c->string, strlen(c->string));
    if (n)
        atomic_fetch_add(&ing->pii_fields, n);
}

int ingest__check_schema(struct ingest *ing, struct ingest_item *it, struct event *ev,
                         struct core_arena *arena, struct schema_errors *errs)
{
    if (!ing->cfg.registry)
        return 0;
    const struct schema *s;
    int rc = find_schema(ing, it, ev, arena, &s);
    if (rc < 0 || !s)
        return rc;
    static const cJSON empty = {.type = cJSON_Object};
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(it->value, "properties");
    if (!props || cJSON_IsNull(props))
        props = &empty;
    cJSON *kept = drop_undeclared(s, props, ev, arena);
    if (kept)
        props = kept;
    int invalid = schema_validate(s, props, errs);
    if (invalid == 0) {
        count_pii(ing, s, props);
        rc = ingest__fields_split(ing, s, props, ev, arena);
        if (rc < 0)
            item_error(it, "properties", "cannot store fields of a short retention class");
    }
    cJSON_Delete(kept); /* references only: the event's own tree stays */
    if (invalid == 0)
        return rc;
    const struct schema_error *e = &errs->items[0];
    /* The item's field is short; a very deep path is cut (the dead letter keeps it whole). */
    char field[sizeof it->err.field];
    size_t plen = strlen(e->instance_path);
    size_t room = sizeof field - 11;
    memcpy(field, "properties", 10);
    memcpy(field + 10, e->instance_path, plen < room ? plen : room);
    field[10 + (plen < room ? plen : room)] = '\0';
    if (errs->total > 1)
        item_error(it, field, "%s (and %zu more)", e->message, errs->total - 1);
    else
        item_error(it, field, "%s", e->message);
    return CORE_E_INVALID;
}

/* ---- dead letters ------------------------------------------------------------------------ */

/* Replaces a raw id member by its pseudonym (or drops it when it is not an id at all). */
static void swap_id(struct ingest *ing, cJSON *obj, const char *member, bool anon)
{
    cJSON *id = cJSON_DetachItemFromObjectCaseSensitive(obj, member);
    if (!id)
        return;
    char text[64];
    const char *s = NULL;
    size_t n = 0;
    if (cJSON_IsString(id) && id->valuestring) {
        s = id->valuestring;
        n = strlen(s);
    } else if (cJSON_IsNumber(id)) {
        n = (size_t)snprintf(text, sizeof text, "%.17g", id->valuedouble);
        s = text;
    }
    if (s && n > 0) {
        char key[EVENT_KEY_HEX + 1];
        if (anon)
            privacy_pseudonym_anon(&ing->key, s, n, key);
        else
            privacy_pseudonym_user(&ing->key, s, n, key);
        cJSON_AddStringToObject(obj, anon ? "anonKey" : "userKey", key);
    }
    cJSON_Delete(id);
}

static void errors_json(const struct ingest_item *it, const struct schema_errors *errs,
                        struct core_buf *out)
{
    core_buf_putc(out, '[');
    if (errs && errs->count > 0) {
        for (size_t i = 0; i < errs->count; i++) {
            char field[300];
            snprintf(field, sizeof field, "properties%s", errs->items[i].instance_path);
            core_buf_puts(out, i ? ",{\"field\":" : "{\"field\":");
            core_json_cstr(out, field);
            core_buf_puts(out, ",\"keyword\":");
            core_json_cstr(out, errs->items[i].keyword);
            core_buf_puts(out, ",\"message\":");
            core_json_cstr(out, errs->items[i].message);
            core_buf_putc(out, '}');
        }
    } else {
        core_buf_puts(out, "{\"field\":");
        core_json_cstr(out, it->err.field);
        core_buf_puts(out, ",\"message\":");
        core_json_cstr(out, it->err.message);
        core_buf_putc(out, '}');
    }
    core_buf_putc(out, ']');
}

/* The stored copy of a rejected event is minimised like a stored event: context.ip
 * truncated or removed, context.userAgent replaced by context.device. */
static void minimise_context(struct ingest *ing, cJSON *copy)
{
    cJSON *ctx = cJSON_GetObjectItemCaseSensitive(copy, "context");
    if (!ing->cfg.minimise || !cJSON_IsObject(ctx))
        return;
    cJSON *ip = cJSON_DetachItemFromObjectCaseSensitive(ctx, "ip");
    char out[64];
    if (cJSON_IsString(ip) && ing->cfg.ip_mode == PRIVACY_IP_TRUNCATE &&
        privacy_ip_truncate(ip->valuestring, strlen(ip->valuestring), out, sizeof out))
        cJSON_AddStringToObject(ctx, "ip", out);
    cJSON_Delete(ip);
    cJSON *ua = cJSON_DetachItemFromObjectCaseSensitive(ctx, "userAgent");
    if (cJSON_IsString(ua) && !cJSON_GetObjectItemCaseSensitive(ctx, "device"))
        cJSON_AddStringToObject(ctx, "device",
                                privacy_device_class(ua->valuestring, strlen(ua->valuestring)));
    cJSON_Delete(ua);
}

/* Whether consent allows keeping anything of this event (dead letters included). */
static bool consent_allows(struct ingest *ing, const cJSON *copy)
{
    if (!ing->cfg.consent)
        return true;
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(copy, "userKey");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(copy, "anonKey");
    enum consent_decision d =
        consent_stricter(consent_decide(ing->cfg.consent, cJSON_IsString(u) ? u->valuestring : ""),
                         consent_decide(ing->cfg.consent, cJSON_IsString(a) ? a->valuestring : ""));
    return d != CONSENT_DROP;
}

void ingest__deadletter(struct ingest *ing, const struct ingest_batch *b,
                        const struct ingest_item *it, const struct schema_errors *errs)
{
    if (!ing->cfg.deadletters || !cJSON_IsObject(it->value))
        return;
    /* Raw ids never reach the data directory: the stored copy carries pseudonyms. */
    cJSON *copy = cJSON_Duplicate(it->value, 1);
    if (!copy)
        return;
    swap_id(ing, copy, "userId", false);
    swap_id(ing, copy, "anonymousId", true);
    if (!consent_allows(ing, copy)) {
        cJSON_Delete(copy); /* a user who did not consent leaves no dead letter either */
        return;
    }
    minimise_context(ing, copy);
    char *text = cJSON_PrintUnformatted(copy);
    struct core_buf reasons;
    core_buf_init(&reasons);
    errors_json(it, errs, &reasons);
    if (text) {
        int64_t id;
        if (deadletter_add(ing->cfg.deadletters, core_now_ms(), b->source ? b->source : "ingest",
                           text, strlen(text), reasons.data, reasons.len, &id) == 0)
            atomic_fetch_add(&ing->deadlettered, 1);
    }
    core_buf_dispose(&reasons);
    cJSON_free(text);
    cJSON_Delete(copy);
}
