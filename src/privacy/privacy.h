/*
 * privacy: pseudonymisation of user identities (HMAC-SHA-256 under a secret key that lives
 * in a 0600 key file) and data minimisation (IP truncation, user agent -> device class).
 * Consent lives in consent.h, the audit log in audit.h, erasure receipts in erasure.h;
 * retention comes later.
 */
#ifndef RECSTREAM_PRIVACY_H
#define RECSTREAM_PRIVACY_H

#include "core/core.h"

#include <nettle/hmac.h>

#define PRIVACY_KEY_BYTES 32

/*
 * The pseudonymisation secret. Treat as sensitive: never logged, wiped on dispose.
 * The HMAC states are keyed once at load so each pseudonym costs one copy and two SHA-256
 * compressions (nettle uses the CPU's SHA extensions where present: ~150 ns, 10x libsodium).
 */
struct privacy_key {
    uint8_t bytes[PRIVACY_KEY_BYTES];
    struct hmac_sha256_ctx user_ctx; /* keyed */
    struct hmac_sha256_ctx anon_ctx; /* keyed, then "anon:" absorbed */
};

/*
 * Loads the secret from path (64 hex chars, optional trailing newline) or, when the file
 * does not exist, creates it with a fresh random secret and mode 0600 (parent directories
 * 0700). *created tells which happened. Refuses (CORE_E_INVALID, logged) a file that is
 * readable by group/others or malformed. Call after core init; thread-safe.
 */
int privacy_key_load_or_create(const char *path, struct privacy_key *key, bool *created);

void privacy_key_dispose(struct privacy_key *key);

/* The key-file logic of privacy_key_load_or_create for any 256-bit secret (the pseudonym key,
 * the data key of seal.h): loads bytes from path or creates the file, same rules. */
int privacy_secret_load_or_create(const char *path, uint8_t bytes[PRIVACY_KEY_BYTES],
                                  bool *created);

/* Sets key->bytes and prepares the HMAC states (used by load and by tests). */
void privacy_key_set(struct privacy_key *key, const uint8_t bytes[PRIVACY_KEY_BYTES]);

/*
 * The pseudonymous key of a user id: lowercase hex of the first 16 bytes of
 * HMAC-SHA-256(secret, id). Anonymous ids use a separate domain ("anon:" || id) so that an
 * anonymous id can never collide with a user id of the same spelling. out gets 33 bytes.
 */
void privacy_pseudonym_user(const struct privacy_key *key, const char *id, size_t n, char *out);
void privacy_pseudonym_anon(const struct privacy_key *key, const char *id, size_t n, char *out);

/* ---- minimisation (minimise.c) -------------------------------------------------------------- */

enum privacy_ip_mode {
    PRIVACY_IP_TRUNCATE, /* IPv4 to /24, IPv6 to /48 (default) */
    PRIVACY_IP_DROP,     /* never stored */
};

/*
 * Truncates an IP address given as text: IPv4 to its /24 ("203.0.113.0"), IPv6 to its /48
 * ("2001:db8:1::"), an IPv4-mapped IPv6 address as IPv4 ("::ffff:203.0.113.0"). Writes the
 * canonical text into out (cap >= 46) and returns true; false for anything that is not an
 * address (it is then not stored at all). Any thread.
 */
bool privacy_ip_truncate(const char *ip, size_t len, char *out, size_t cap);

/* The device class of a User-Agent string: "bot", "tablet", "mobile", "desktop" or "other"
 * (substring rules, case-insensitive; bots first). Returns a static string. Any thread. */
const char *privacy_device_class(const char *ua, size_t len);

#endif
