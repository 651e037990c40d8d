/*
 * privacy: pseudonymisation of user identities (HMAC-SHA-256 under a secret key that lives
 * in a 0600 key file). Consent, retention and erasure arrive here later.
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

#endif
