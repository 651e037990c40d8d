/*
 * event: the canonical behaviour event, its JSON decoder/validator (the first-cut envelope
 * rules of DESIGN.md), its JSON encoder (for dumps and replies) and its compact binary
 * codec (the payload of a log record).
 */
#ifndef RECSTREAM_EVENT_H
#define RECSTREAM_EVENT_H

#include "core/core.h"

#include <cjson/cJSON.h>

/* ---- event types --------------------------------------------------------------------------- */

#define EVENT_TYPE_MAP(XX)                                                                         \
    XX(VIEW, "view", 1.0, true)                                                                    \
    XX(CLICK, "click", 2.0, true)                                                                  \
    XX(SCROLL, "scroll", 0.5, true)                                                                \
    XX(DWELL, "dwell", 1.0, true)                                                                  \
    XX(FORM_SUBMIT, "form_submit", 3.0, false)                                                     \
    XX(ADD_TO_CART, "add_to_cart", 4.0, true)                                                      \
    XX(REMOVE_FROM_CART, "remove_from_cart", -1.0, true)                                           \
    XX(PURCHASE, "purchase", 6.0, true)                                                            \
    XX(RATING, "rating", 3.0, true)                                                                \
    XX(LIKE, "like", 3.0, true)                                                                    \
    XX(SHARE, "share", 3.0, true)                                                                  \
    XX(BOOKMARK, "bookmark", 3.0, true)                                                            \
    XX(IMPRESSION, "impression", 0.0, true)                                                        \
    XX(SEARCH, "search", 0.0, false)                                                               \
    XX(PAGE_VIEW, "page_view", 0.0, false)

enum event_type {
#define XX(id, name, weight, item) EVENT_##id,
    EVENT_TYPE_MAP(XX)
#undef XX
        EVENT_TYPE__COUNT
};

/* A type registered at run time (a schema of that name exists in the registry): its name is
 * carried in event.type_name. Custom types have weight 1 and no required itemId. */
#define EVENT_TYPE_CUSTOM EVENT_TYPE__COUNT

struct event_type_info {
    const char *name;
    double weight;      /* default interaction weight (negative: undoes interest) */
    bool item_required; /* itemId is required for this type */
};

/* Returns the info of a type id (0 <= type < EVENT_TYPE__COUNT, or EVENT_TYPE_CUSTOM whose
 * info has the name "custom"); NULL otherwise. */
const struct event_type_info *event_type_get(int type);
/* Looks a type name up; returns its id or -1 when not registered. */
int event_type_lookup(const char *name, size_t len);

/* ---- the event ----------------------------------------------------------------------------- */

/* Field limits of the canonical event (DESIGN.md). */
#define EVENT_ID_MAX 64
#define EVENT_USER_MAX 256
#define EVENT_ITEM_MAX 256
#define EVENT_SESSION_MAX 256
#define EVENT_RECID_MAX 128
#define EVENT_SCHEMA_MAX 256
#define EVENT_JSON_FIELD_MAX 16384 /* serialised context / properties */
#define EVENT_KEY_HEX 32           /* pseudonymous key: hex of a 128-bit HMAC-SHA-256 prefix */

/* A borrowed byte string; ptr is not necessarily NUL-terminated. */
struct event_str {
    const char *ptr;
    size_t len;
};

/*
 * The canonical event. Strings are borrowed: from the parsed JSON tree / the caller's
 * arena (decoder) or from the encoded bytes (binary decoder).
 * Raw identities (user_id, anonymous_id) exist only between decoding and
 * pseudonymisation; the log stores user_key / anon_key (EVENT_KEY_HEX hex chars, "" = none).
 */
struct event {
    struct event_str event_id;     /* empty until assigned (ingest assigns a UUIDv7) */
    struct event_str user_id;      /* raw; never written anywhere */
    struct event_str anonymous_id; /* raw; never written anywhere */
    char user_key[EVENT_KEY_HEX + 1];
    char anon_key[EVENT_KEY_HEX + 1];
    struct event_str session_id;
    int type;                   /* enum event_type, or EVENT_TYPE_CUSTOM */
    struct event_str type_name; /* the custom type's name (EVENT_TYPE_CUSTOM only) */
    struct event_str item_id;
    int64_t ts_ms;   /* event time */
    int64_t recv_ms; /* receive (ingest) time */
    bool has_value;
    double value;
    struct event_str rec_id;
    bool has_position;
    int32_t position;
    struct event_str schema;          /* "name/1-0-2" or empty */
    struct event_str context_json;    /* compact JSON object of allow-listed keys, or empty */
    struct event_str properties_json; /* compact JSON object, or empty */
    uint32_t dropped_fields;          /* unknown top-level / context keys dropped (counted) */
};

void event_init(struct event *ev);

/* Where and why a record failed validation. field is a JSON-pointer-like path relative to
 * the event ("userId", "context.page", "" for the whole record). */
struct event_error {
    char field[64];
    char message[192];
};

/*
 * Decodes and validates one event object. recv_ms is the receive time (used when timestamp
 * is missing and stored as recv_ms). Strings borrow from obj or are allocated in arena
 * (context/properties JSON); both must outlive ev. Returns 0, or CORE_E_INVALID with *err
 * filled. Never aborts on any input. Unknown top-level fields and context keys outside the
 * allow-list are dropped and counted in ev->dropped_fields.
 */
int event_json_decode(const cJSON *obj, int64_t recv_ms, struct core_arena *arena, struct event *ev,
                      struct event_error *err);

/* Decoding options: custom_type (when set) is asked about an eventType that is not built in;
 * returning true accepts it as EVENT_TYPE_CUSTOM. Called on the decoding thread. */
struct event_decode_opts {
    bool (*custom_type)(void *arg, const char *name, size_t len);
    void *arg;
};

/* event_json_decode with options (opts may be NULL). */
int event_json_decode_ex(const cJSON *obj, int64_t recv_ms, struct core_arena *arena,
                         const struct event_decode_opts *opts, struct event *ev,
                         struct event_error *err);

/* The event's type name (built-in or custom), not NUL-terminated; length in *len. */
const char *event_type_name(const struct event *ev, size_t *len);

/*
 * Appends the event as a canonical JSON object (pseudonymous keys, never raw ids):
 * {"eventId":..,"userKey":..,"anonKey":..,"sessionId":..,"eventType":..,"itemId":..,
 *  "timestamp":..,"receivedAt":..,"value":..,"recId":..,"position":..,"schema":..,
 *  "context":{..},"properties":{..}} with absent fields left out, in that order.
 */
void event_json_encode(const struct event *ev, struct core_buf *out);

/* Appends the compact binary encoding (the log record payload). */
void event_bin_encode(const struct event *ev, struct core_buf *out);
/* Decodes a payload; strings in ev point into data. Returns 0 or CORE_E_CORRUPT on any
 * malformed input (never reads out of bounds). */
int event_bin_decode(const void *data, size_t len, struct event *ev);

/*
 * Routes cJSON's allocations on the calling thread into arena until event_json_arena_end.
 * Trees parsed in between must not be freed with cJSON_Delete after _end (they are freed
 * with the arena) and must not outlive it. Nests not; any thread.
 */
void event_json_arena_begin(struct core_arena *arena);
void event_json_arena_end(void);

/* Where a JSON document failed to parse. */
struct event_json_pos {
    size_t offset; /* byte offset of the error */
    size_t line;   /* 1-based */
    size_t column; /* 1-based, in bytes */
    bool trailing; /* a valid value followed by something other than whitespace */
};

/* Parses text[0..len) as exactly one JSON value (whitespace around it allowed). Returns the
 * tree (free with cJSON_Delete, or with the arena, see event_json_arena_begin), or NULL with
 * *err (may be NULL) saying where parsing failed. Any thread. */
cJSON *event_json_parse(const char *text, size_t len, struct event_json_pos *err);

/* Appends the canonical envelope as a JSON Schema draft-07 document (see event_envelope.c
 * for how it relates to the decoder). */
void event_envelope_schema_json(struct core_buf *out);

/* Writes a new UUIDv7 for time ms as 36 chars + NUL into out. */
void event_id_generate(int64_t ms, char out[37]);

#endif
