/*
 * The compact binary encoding of an event: the payload of a log record.
 *
 *   u8      version (1, or 2 exactly when the event has a sealed field bundle)
 *   varint  presence flags (BIN_* below)
 *   varint  type id
 *   varint  zigzag(ts_ms)
 *   varint  zigzag(recv_ms - ts_ms)       usually a few ms: one or two bytes
 *   [16]    user key, raw bytes of the 32 hex chars      if BIN_USER_KEY
 *   [16]    anonymous key                                if BIN_ANON_KEY
 *   [8]     value, little-endian IEEE 754 double         if BIN_VALUE
 *   varint  zigzag(position)                             if BIN_POSITION
 *   varint  dropped_fields (non-zero)                    if BIN_DROPPED
 *   (flag only) BIN_ID_ASSIGNED: the collector generated the eventId
 *   (flag only) BIN_ANONYMOUS: consent allows item aggregates only (no per-user state)
 *   The type id is the type's wire number (event_type_to_wire): stable when types are added.
 *   then for each present string of str_fields, in order: varint length (>= 1), bytes.
 *   then, in version 2 only (flag BIN_FIELDS): varint length (>= 1), the sealed field bundle
 *   (privacy/fieldseal.h: properties of a short retention class, under an epoch key).
 *
 * Version 2 is written only for events that carry a bundle, so every other record keeps the
 * version-1 bytes it always had, and records written before bundles existed decode as they
 * did. A version-1 record with BIN_FIELDS, or a version-2 record without it, is refused.
 *
 * The encoding is canonical: the decoder rejects anything the encoder would not have written
 * (unknown flags, empty present strings, over-long varints, trailing bytes), so one event has
 * exactly one encoding. Raw user ids are never encoded.
 */
#include "event.h"

#include <assert.h>
#include <stddef.h>
#include <string.h>

#define BIN_VERSION 1
#define BIN_VERSION_FIELDS 2

enum {
    BIN_USER_KEY = 1u << 0,
    BIN_ANON_KEY = 1u << 1,
    BIN_VALUE = 1u << 2,
    BIN_POSITION = 1u << 3,
    BIN_DROPPED = 1u << 4,
    BIN_STR0 = 1u << 5, /* first of the str_fields flags */
};

static const struct {
    size_t offset; /* of a struct event_str in struct event */
    size_t max;
} str_fields[] = {
    {offsetof(struct event, event_id), EVENT_ID_MAX},
    {offsetof(struct event, session_id), EVENT_SESSION_MAX},
    {offsetof(struct event, item_id), EVENT_ITEM_MAX},
    {offsetof(struct event, rec_id), EVENT_RECID_MAX},
    {offsetof(struct event, schema), EVENT_SCHEMA_MAX},
    {offsetof(struct event, context_json), EVENT_JSON_FIELD_MAX},
    {offsetof(struct event, properties_json), EVENT_JSON_FIELD_MAX},
    {offsetof(struct event, type_name), 64}, /* custom types only (appended in format 1) */
};
#define STR_FIELD_COUNT (sizeof str_fields / sizeof str_fields[0])
/* After the string flags: the eventId was assigned by the collector (never a dedup key). */
#define BIN_ID_ASSIGNED ((uint64_t)BIN_STR0 << STR_FIELD_COUNT)
/* Then: the user gave no personalization consent (policy "aggregate"). */
#define BIN_ANONYMOUS (BIN_ID_ASSIGNED << 1)
/* Then (version 2): a sealed field bundle follows the strings. */
#define BIN_FIELDS (BIN_ANONYMOUS << 1)
#define BIN_ALL_FLAGS ((BIN_FIELDS << 1) - 1)

static struct event_str *str_at(struct event *ev, size_t i)
{
    return (struct event_str *)((char *)ev + str_fields[i].offset);
}

static const struct event_str *cstr_at(const struct event *ev, size_t i)
{
    return (const struct event_str *)((const char *)ev + str_fields[i].offset);
}

/* ---- encoding ------------------------------------------------------------------------------- */

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static void put_key(struct core_buf *out, const char *key)
{
    uint8_t raw[EVENT_KEY_HEX / 2];
    for (size_t i = 0; i < sizeof raw; i++) {
        int hi = hex_nibble(key[2 * i]), lo = hex_nibble(key[2 * i + 1]);
        assert(hi >= 0 && lo >= 0 && "keys are 32 lowercase hex chars");
        raw[i] = (uint8_t)(hi << 4 | lo);
    }
    assert(key[EVENT_KEY_HEX] == '\0');
    core_buf_append(out, raw, sizeof raw);
}

static uint64_t encode_flags(const struct event *ev)
{
    uint64_t flags = 0;
    if (ev->user_key[0])
        flags |= BIN_USER_KEY;
    if (ev->anon_key[0])
        flags |= BIN_ANON_KEY;
    if (ev->has_value)
        flags |= BIN_VALUE;
    if (ev->has_position)
        flags |= BIN_POSITION;
    if (ev->dropped_fields)
        flags |= BIN_DROPPED;
    if (ev->id_assigned)
        flags |= BIN_ID_ASSIGNED;
    if (ev->anonymous)
        flags |= BIN_ANONYMOUS;
    if (ev->fields_sealed.len)
        flags |= BIN_FIELDS;
    for (size_t i = 0; i < STR_FIELD_COUNT; i++) {
        if (cstr_at(ev, i)->len)
            flags |= (uint64_t)BIN_STR0 << i;
    }
    return flags;
}

void event_bin_encode(const struct event *ev, struct core_buf *out)
{
    assert(event_type_get(ev->type) != NULL);
    uint64_t flags = encode_flags(ev);
    core_buf_putc(out, (flags & BIN_FIELDS) ? BIN_VERSION_FIELDS : BIN_VERSION);
    core_buf_put_varint(out, flags);
    core_buf_put_varint(out, event_type_to_wire(ev->type));
    core_buf_put_varint(out, core_zigzag(ev->ts_ms));
    /* Wrapping unsigned difference: exact for any pair of times. */
    core_buf_put_varint(out, core_zigzag((int64_t)((uint64_t)ev->recv_ms - (uint64_t)ev->ts_ms)));
    if (flags & BIN_USER_KEY)
        put_key(out, ev->user_key);
    if (flags & BIN_ANON_KEY)
        put_key(out, ev->anon_key);
    if (flags & BIN_VALUE) {
        uint64_t bits;
        memcpy(&bits, &ev->value, sizeof bits);
        core_buf_put_u64(out, bits);
    }
    if (flags & BIN_POSITION)
        core_buf_put_varint(out, core_zigzag(ev->position));
    if (flags & BIN_DROPPED)
        core_buf_put_varint(out, ev->dropped_fields);
    for (size_t i = 0; i < STR_FIELD_COUNT; i++) {
        const struct event_str *s = cstr_at(ev, i);
        if (!s->len)
            continue;
        assert(s->len <= str_fields[i].max);
        core_buf_put_varint(out, s->len);
        core_buf_append(out, s->ptr, s->len);
    }
    if (flags & BIN_FIELDS) {
        assert(ev->fields_sealed.len <= EVENT_FIELDS_MAX);
        core_buf_put_varint(out, ev->fields_sealed.len);
        core_buf_append(out, ev->fields_sealed.ptr, ev->fields_sealed.len);
    }
}

/* ---- decoding ------------------------------------------------------------------------------- */

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* A varint in its shortest form only, so that every event has a single encoding. */
static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    const uint8_t *start = *p;
    int rc = core_get_varint(p, end, v);
    if (rc < 0)
        return rc;
    size_t n = (size_t)(*p - start);
    if (n != varint_size(*v) || (n == 10 && start[9] > 1))
        return CORE_E_CORRUPT;
    return 0;
}

static int get_key(const uint8_t **p, const uint8_t *end, char *key)
{
    if (end - *p < EVENT_KEY_HEX / 2)
        return CORE_E_CORRUPT;
    core_hex(*p, EVENT_KEY_HEX / 2, key);
    *p += EVENT_KEY_HEX / 2;
    return 0;
}

static int get_str(const uint8_t **p, const uint8_t *end, size_t max, struct event_str *s)
{
    uint64_t len;
    if (get_varint(p, end, &len) < 0 || len == 0 || len > max || len > (uint64_t)(end - *p))
        return CORE_E_CORRUPT;
    s->ptr = (const char *)*p;
    s->len = (size_t)len;
    *p += len;
    return 0;
}

/* The fixed header: version, flags, type and the two times. */
static int get_header(const uint8_t **p, const uint8_t *end, struct event *ev, uint64_t *flags)
{
    uint64_t type, ts, delta;
    if (*p >= end || (**p != BIN_VERSION && **p != BIN_VERSION_FIELDS))
        return CORE_E_CORRUPT;
    bool v2 = **p == BIN_VERSION_FIELDS;
    (*p)++;
    if (get_varint(p, end, flags) < 0 || (*flags & ~(uint64_t)BIN_ALL_FLAGS) ||
        v2 != ((*flags & BIN_FIELDS) != 0) || get_varint(p, end, &type) < 0 ||
        event_type_from_wire(type) < 0 || get_varint(p, end, &ts) < 0 ||
        get_varint(p, end, &delta) < 0)
        return CORE_E_CORRUPT;
    ev->type = event_type_from_wire(type);
    ev->ts_ms = core_unzigzag(ts);
    ev->recv_ms = (int64_t)((uint64_t)ev->ts_ms + (uint64_t)core_unzigzag(delta));
    return 0;
}

static int get_numbers(const uint8_t **p, const uint8_t *end, uint64_t flags, struct event *ev)
{
    if (flags & BIN_VALUE) {
        uint64_t bits;
        if (core_get_u64(p, end, &bits) < 0)
            return CORE_E_CORRUPT;
        memcpy(&ev->value, &bits, sizeof bits);
        ev->has_value = true;
    }
    if (flags & BIN_POSITION) {
        uint64_t z;
        if (get_varint(p, end, &z) < 0)
            return CORE_E_CORRUPT;
        int64_t pos = core_unzigzag(z);
        if (pos < INT32_MIN || pos > INT32_MAX)
            return CORE_E_CORRUPT;
        ev->position = (int32_t)pos;
        ev->has_position = true;
    }
    if (flags & BIN_DROPPED) {
        uint64_t n;
        if (get_varint(p, end, &n) < 0 || n == 0 || n > UINT32_MAX)
            return CORE_E_CORRUPT;
        ev->dropped_fields = (uint32_t)n;
    }
    return 0;
}

int event_bin_decode(const void *data, size_t len, struct event *ev)
{
    if (!data)
        return CORE_E_CORRUPT;
    const uint8_t *p = data;
    const uint8_t *end = p + len;
    uint64_t flags;
    struct event tmp;
    event_init(&tmp);
    if (get_header(&p, end, &tmp, &flags) < 0)
        return CORE_E_CORRUPT;
    tmp.id_assigned = (flags & BIN_ID_ASSIGNED) != 0;
    tmp.anonymous = (flags & BIN_ANONYMOUS) != 0;
    if (((flags & BIN_USER_KEY) && get_key(&p, end, tmp.user_key) < 0) ||
        ((flags & BIN_ANON_KEY) && get_key(&p, end, tmp.anon_key) < 0) ||
        get_numbers(&p, end, flags, &tmp) < 0)
        return CORE_E_CORRUPT;
    for (size_t i = 0; i < STR_FIELD_COUNT; i++) {
        if ((flags & ((uint64_t)BIN_STR0 << i)) &&
            get_str(&p, end, str_fields[i].max, str_at(&tmp, i)) < 0)
            return CORE_E_CORRUPT;
    }
    if ((flags & BIN_FIELDS) && get_str(&p, end, EVENT_FIELDS_MAX, &tmp.fields_sealed) < 0)
        return CORE_E_CORRUPT;
    if (p != end)
        return CORE_E_CORRUPT;
    /* A type name exactly when the type is custom: one encoding per event. */
    if ((tmp.type == EVENT_TYPE_CUSTOM) != (tmp.type_name.len > 0))
        return CORE_E_CORRUPT;
    *ev = tmp;
    return 0;
}
