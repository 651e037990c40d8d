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
 * Loads the NEWEST secret version from path (see privacy_keyring below) or, when the file
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

/* ---- secret versions (pseudonym_ring.c) ------------------------------------------------------ */

/*
 * The pseudonymisation key file holds one or more secret versions, so that the secret can be
 * rotated without losing history (docs/PRIVACY.md, "Identity"). Format (0600), one version a
 * line, oldest first, '#' lines are comments:
 *
 *   <version> <created, ms since the epoch> <64 hex chars>
 *
 * A file holding only 64 hex chars (the format before rotation existed) is version 1, created
 * at 0. New events are pseudonymised under the newest version; the older ones are kept so
 * that a user's state under an old pseudonym can be moved to the new one when the user is
 * seen again, and so that erasure and export find every pseudonym still retained.
 */
#define PRIVACY_KEY_VERSIONS_MAX 8

struct privacy_keyring {
    int n;                                        /* versions held, newest FIRST */
    uint32_t version[PRIVACY_KEY_VERSIONS_MAX];   /* 1, 2, ... */
    int64_t created_ms[PRIVACY_KEY_VERSIONS_MAX]; /* when the version was added */
    struct privacy_key key[PRIVACY_KEY_VERSIONS_MAX];
};

/* Loads every version from path, or creates the file with one fresh version 1 (as
 * privacy_key_load_or_create). Same refusals (mode, format: CORE_E_INVALID, logged). */
int privacy_keyring_load_or_create(const char *path, struct privacy_keyring *ring, bool *created);

/* Loads an existing file only (CORE_E_NOTFOUND when there is none). */
int privacy_keyring_load(const char *path, struct privacy_keyring *ring);

void privacy_keyring_dispose(struct privacy_keyring *ring);

/* Adds a new random version (max + 1, created now_ms) and rewrites the file atomically
 * (temporary file 0600, fsync, rename, fsync dir), keeping every older version. Returns 0
 * with the new number in *version, CORE_E_FULL at PRIVACY_KEY_VERSIONS_MAX versions (retire
 * one first), CORE_E_NOTFOUND without a file, or a load/storage error. Not for a file a
 * running server is creating at the same moment (run it with the server stopped). */
int privacy_keyring_rotate(const char *path, int64_t now_ms, uint32_t *version);

/* Drops the oldest version when the version after it was added at least grace_ms before
 * now_ms, and rewrites the file atomically. Returns 0 with the dropped number in *version,
 * CORE_E_NOTFOUND when only one version is left, CORE_E_TIMEOUT when the grace period has not
 * passed yet (nothing changed), or a load/storage error. */
int privacy_keyring_retire(const char *path, int64_t grace_ms, int64_t now_ms, uint32_t *version);

/* Creates the key file with one fresh secret when it does not exist (*created true), else
 * leaves it (*created false). Shared by pseudonym.c and pseudonym_ring.c. */
int privacy__key_file_ensure(const char *path, bool *created);

/* Writes the pseudonyms of a user id (anon: of an anonymousId) under every version, newest
 * first, into out (33 bytes each); returns the count (ring->n). */
int privacy_keyring_pseudonyms(const struct privacy_keyring *ring, bool anon, const char *id,
                               size_t n, char out[][33]);

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
