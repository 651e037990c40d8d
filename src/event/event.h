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
    XX(PAGE_VIEW, "page_view", 0.0, false)                                                         \
    XX(PREFERENCES, "preferences", 0.0, false)                                                     \
    XX(CONSENT, "consent", 0.0, false)                                                             \
    XX(TICK, "tick", 0.0, false)                                                                   \
    XX(MERGE, "merge", 0.0, false)                                                                 \
    XX(MERGE_IN, "merge_in", 0.0, false)

enum event_type {
#define XX(id, name, weight, item) EVENT_##id,
    EVENT_TYPE_MAP(XX)
#undef XX
        EVENT_TYPE__COUNT
};

/* A type registered at run time (a schema of that name exists in the registry): its name is
 * carried in event.type_name. Custom types have weight 1 and no required itemId. */
#define EVENT_TYPE_CUSTOM EVENT_TYPE__COUNT

/* "consent" is a control event: the server writes it when a user's consent changes (never
 * accepted from clients); the processor clears the user's state when it withdraws
 * personalization. Types keep stable numbers in stored records (event_type_to_wire): the
 * types listed before CONSENT are 0..15, custom is 16 as it was before CONSENT existed, and
 * types added later take 17 and up. "tick" is another control record, written by the retention
 * job straight to the log (no user): it carries the time to a quiet state shard so that TTL
 * expiry happens there too (state.h). "merge" (wire 19) and "merge_in" (wire 20) carry the
 * anonymous-to-identified merge and the move to a rotated pseudonym through the log
 * (docs/ARCHITECTURE.md, "Identity"): userKey is the key that keeps the state (the target),
 * anonKey the key whose state moves (the source); a "merge" is stored in the source's
 * partition, a "merge_in" (its properties carry the source's state) in the target's. */
#define EVENT_WIRE_CUSTOM 16
uint64_t event_type_to_wire(int type);
/* -1 for a number that names no type. */
int event_type_from_wire(uint64_t wire);

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
/* A sealed field bundle (privacy/fieldseal.h): at most the moved properties, their names and
 * the sealing overhead. */
#define EVENT_FIELDS_MAX (2 * EVENT_JSON_FIELD_MAX + 256)

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
    bool id_assigned;              /* event_id was generated by the collector, not the client */
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
    /* Properties of a retention class shorter than the event's TTL, moved out of
     * properties_json and sealed under an epoch key (privacy/fieldseal.h); opaque bytes here,
     * empty when the event has none. Readers merge them back while the key exists. */
    struct event_str fields_sealed;
    uint32_t dropped_fields; /* unknown top-level / context keys dropped (counted) */
    bool anonymous;          /* consent: the user gave no personalization consent; the processor
                              * updates item aggregates only, never per-user state */
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
    /* Data minimisation of context (NULL: stored as sent). minimise_ip writes what to store
     * for a string context.ip into out (NUL-terminated) or returns false to leave it out.
     * device_class maps a string context.userAgent to a device class ("mobile", ...): the
     * raw agent is then never stored, and the class becomes context.device unless the event
     * has a device of its own. Non-string values of either are left out. */
    bool (*minimise_ip)(void *arg, const char *ip, size_t len, char *out, size_t cap);
    const char *(*device_class)(void *arg, const char *ua, size_t len);
    bool allow_control; /* accept eventType "consent", "merge", "merge_in" (the server's own
                         * control events) */
};

/* event_json_decode with options (opts may be NULL). */
int event_json_decode_ex(const cJSON *obj, int64_t recv_ms, struct core_arena *arena,
                         const struct event_decode_opts *opts, struct event *ev,
                         struct event_error *err);

/* Re-encodes an event's properties from obj (an object; {} gives the empty string) into
 * arena, as the decoder does: e.g. after ingest dropped members a schema does not declare.
 * Returns 0, or CORE_E_INVALID / CORE_E_TOOBIG (out untouched). */
int event_properties_encode(const cJSON *obj, struct core_arena *arena, struct event_str *out);

/* The event's type name (built-in or custom), not NUL-terminated; length in *len. */
const char *event_type_name(const struct event *ev, size_t *len);

/*
 * Appends the event as a canonical JSON object (pseudonymous keys, never raw ids):
 * {"eventId":..,"userKey":..,"anonKey":..,"sessionId":..,"eventType":..,"itemId":..,
 *  "timestamp":..,"receivedAt":..,"value":..,"recId":..,"position":..,"schema":..,
 *  "context":{..},"properties":{..},"anonymous":true} with absent (false) fields left out, in
 *  that order.
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
/* 64 bits from the same per-thread generator: unique per thread (a counter mixed under a
 * seed from the OS), not unpredictable. */
uint64_t event_random_u64(void);

#endif
