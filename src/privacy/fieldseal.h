/*
 * fieldseal: the sealed field bundle of an event (struct event.fields_sealed): properties of a
 * retention class shorter than the event's TTL, sealed under that class's epoch key
 * (epochkeys.h), so destroying the key removes them from every copy of the record.
 *
 *   u8      version (1)
 *   u8      class (enum schema_retention: 0 short, 1 standard, 2 long)
 *   varint  start of the key's epoch (ms; names the key with the class)
 *   varint  length of names, then names: the moved property names, comma-separated (schema
 *           property names, not personal data: kept in clear so a reader can say which
 *           fields expired)
 *   nonce (24) || XChaCha20-Poly1305(compact JSON object of the moved properties) || tag (16)
 *
 * The associated data is every byte before the nonce, so names, class and key cannot be
 * changed without the bundle failing to open. The bundle sits inside the record, which is
 * itself sealed under the user's key: reading a field needs both keys.
 *
 * Any thread.
 */
#ifndef RECSTREAM_FIELDSEAL_H
#define RECSTREAM_FIELDSEAL_H

#include "event/event.h"
#include "privacy/epochkeys.h"

/*
 * Seals json (a compact, non-empty JSON object of the moved properties) and their names
 * (comma-separated) under the key of class cls for time t_ms (created durably when needed)
 * and appends the bundle to out. nonce: SEAL_NONCE_BYTES random bytes used once (e.g. from a
 * seal_nonces pool), or NULL to draw them here. Returns 0, or the error of epochkeys_acquire
 * (nothing appended), or CORE_E_TOOBIG when the bundle would exceed EVENT_FIELDS_MAX.
 */
int fieldseal_seal(struct epochkeys *ek, int cls, int64_t t_ms, const char *names, size_t nlen,
                   const char *json, size_t n, const uint8_t *nonce, struct core_buf *out);

/* What a bundle says in clear. names points into the bundle. */
struct fieldseal_info {
    int cls;
    int64_t start_ms;
    struct event_str names;
};

/*
 * Opens a bundle: fills *info (when the header parses) and appends the JSON object of the
 * fields to json. Returns 0, CORE_E_NOTFOUND when the key is gone (destroyed by retention, or
 * ek is NULL: info is still filled), or CORE_E_CORRUPT (malformed, does not authenticate).
 */
int fieldseal_open(struct epochkeys *ek, const void *bundle, size_t n, struct core_buf *json,
                   struct fieldseal_info *info);

/*
 * For readers: merges the event's bundle back into ev->properties_json (allocated in arena)
 * and clears ev->fields_sealed. When the key is gone the properties stay as they are and
 * *expired (may be NULL) gets the names of the fields that expired (pointing into the
 * bundle); otherwise it is set empty. Returns 0 or CORE_E_CORRUPT (the event unchanged but
 * for the bundle, which is cleared: a reader shows the rest).
 */
int fieldseal_merge(struct epochkeys *ek, struct event *ev, struct core_arena *arena,
                    struct event_str *expired);

/* Appends names (comma-separated, as in a bundle) as a JSON array of strings. */
void fieldseal_names_json(struct event_str names, struct core_buf *out);

#endif
