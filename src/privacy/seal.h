/*
 * seal: encryption at rest with XChaCha20-Poly1305 (libsodium). Everything written to the data
 * directory that holds event data is sealed, so reading it needs a key and changing any byte
 * of it is detected.
 *
 * Keys. A struct seal_key is a 32-byte key plus a 12-byte key id that names it on disk. The
 * data key (DATA/privacy/data.key, 0600, same file rules as the pseudonym key) seals files that
 * are not a user's (checkpoints, dead letters, the user-key store); its id is all zeros
 * (SEAL_ID_DATA). Per-user keys come from userkeys.h; their ids are random.
 *
 * Three shapes, all authenticated encryption with associated data (AD) that says where the
 * bytes belong, so sealed bytes moved to another place (another offset, partition, file or
 * line) fail to open:
 *   - records: nonce (24, random) || ciphertext || tag (16), seal_record / seal_record_open;
 *   - lines:   the same, base64 (URL-safe, no padding) on one text line, seal_line / _open;
 *   - files:   crypto_secretstream_xchacha20poly1305 in 64 KiB chunks whose last one carries
 *              the FINAL tag, so truncation, reordering and appended bytes are detected.
 *
 * All functions are thread-safe (no shared state) and need sodium_init() (seal_init).
 */
#ifndef RECSTREAM_SEAL_H
#define RECSTREAM_SEAL_H

#include "core/core.h"

#define SEAL_KEY_BYTES 32
#define SEAL_ID_BYTES 12
#define SEAL_NONCE_BYTES 24
#define SEAL_TAG_BYTES 16
/* Bytes a sealed record adds to its plaintext. */
#define SEAL_OVERHEAD (SEAL_NONCE_BYTES + SEAL_TAG_BYTES)

struct seal_key {
    uint8_t id[SEAL_ID_BYTES];
    uint8_t key[SEAL_KEY_BYTES];
};

/* The reserved key id of the data key (all zeros; random ids are never all zeros). */
extern const uint8_t SEAL_ID_DATA[SEAL_ID_BYTES];

/* Initialises libsodium. Returns 0 or CORE_E_FAILED. */
int seal_init(void);

/*
 * Loads the data key from path (64 hex chars) or creates it (0600, parents 0700) with a fresh
 * random key; *created tells which. Refuses a group/other-readable or malformed file
 * (CORE_E_INVALID, logged). key->id is SEAL_ID_DATA.
 */
int seal_data_key_load_or_create(const char *path, struct seal_key *key, bool *created);

/* Wipes a key (sodium_memzero). */
void seal_key_dispose(struct seal_key *key);

/* True when id is SEAL_ID_DATA. */
bool seal_id_is_data(const uint8_t id[SEAL_ID_BYTES]);

/* ---- records ----------------------------------------------------------------------------- */

/*
 * Seals n bytes of plain into out (n + SEAL_OVERHEAD bytes: nonce, ciphertext, tag) under key
 * with associated data ad (adlen bytes, not stored). out must not overlap plain.
 */
void seal_record(const struct seal_key *key, const void *ad, size_t adlen, const void *plain,
                 size_t n, uint8_t *out);

/*
 * Random nonces drawn from the OS generator in bulk: one getrandom(2) per 170 nonces instead
 * of one per record (a syscall cost ~0.75 us here, a third of sealing a 200-byte record).
 * The nonces are as random as randombytes_buf's; not thread-safe (one owner, e.g. under the
 * log's queue lock). Zero-initialise (or seal_nonces_init) before use.
 */
struct seal_nonces {
    uint8_t pool[170 * SEAL_NONCE_BYTES];
    size_t used; /* bytes of pool handed out; sizeof pool = refill first */
};

void seal_nonces_init(struct seal_nonces *nn);

/* seal_record for a plaintext already in place: buf has room for n + SEAL_OVERHEAD bytes and
 * holds the plaintext at buf + SEAL_NONCE_BYTES; it is encrypted where it lies (no copy). The
 * nonce comes from nn (NULL: a fresh randombytes_buf call). */
void seal_record_in_place(const struct seal_key *key, const void *ad, size_t adlen, uint8_t *buf,
                          size_t n, struct seal_nonces *nn);

/*
 * Opens a sealed record of n bytes in place: on success the plaintext (n - SEAL_OVERHEAD
 * bytes) is at sealed + SEAL_NONCE_BYTES. Returns 0, or CORE_E_CORRUPT when the record is too
 * short or does not authenticate under key and ad (the bytes are then unspecified).
 */
int seal_record_open(const struct seal_key *key, const void *ad, size_t adlen, uint8_t *sealed,
                     size_t n);

/* ---- lines ------------------------------------------------------------------------------- */

/* Appends to out one line (no newline) holding plain sealed under key with ad (a
 * NUL-terminated string naming the line's place). The line is URL-safe base64. */
void seal_line(const struct seal_key *key, const char *ad, const void *plain, size_t n,
               struct core_buf *out);

/* Opens a line made by seal_line (n bytes, no newline) and appends the plaintext to out.
 * Returns 0 or CORE_E_CORRUPT (not base64, too short, or does not authenticate). */
int seal_line_open(const struct seal_key *key, const char *ad, const char *line, size_t n,
                   struct core_buf *out);

/* ---- whole files ------------------------------------------------------------------------- */

/* Bytes seal_file produces for n bytes of plaintext. */
size_t seal_file_size(size_t n);

/* Replaces out's contents with plain sealed as a file image under key, every chunk bound to
 * ad (a NUL-terminated string naming the file, e.g. "checkpoint 7 p3.snap"). */
void seal_file(const struct seal_key *key, const char *ad, const void *plain, size_t n,
               struct core_buf *out);

/* Opens a file image made by seal_file into out (replacing its contents). Returns 0 or
 * CORE_E_CORRUPT (bad magic, a chunk that does not authenticate, chunks missing, reordered
 * or truncated, or bytes after the final chunk). out is wiped on failure. */
int seal_file_open(const struct seal_key *key, const char *ad, const void *sealed, size_t n,
                   struct core_buf *out);

#endif
