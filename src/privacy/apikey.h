/*
 * API keys: roles, the key file (DATA/privacy/apikeys.json) and the server's key store with
 * per-key rate limits.
 *
 * A key reads "rsk_<id>_<secret>": id = 8 lowercase hex characters (the lookup key, safe to
 * log), secret = 64 hex characters (256 random bits from libsodium). The file keeps only
 * BLAKE2b-256 of the whole key text, so a copy of the file does not let anyone call the API;
 * presented keys are hashed and compared in constant time (sodium_memcmp). The secret is
 * shown once, when the key is created.
 */
#ifndef RECSTREAM_PRIVACY_APIKEY_H
#define RECSTREAM_PRIVACY_APIKEY_H

#include "core/core.h"

#define APIKEY_MAX 10000 /* keys in one file, revoked ones included */
#define APIKEY_ID_LEN 8
#define APIKEY_SECRET_LEN 64
#define APIKEY_TEXT_LEN (4 + APIKEY_ID_LEN + 1 + APIKEY_SECRET_LEN) /* "rsk_" id "_" secret */
#define APIKEY_HASH_BYTES 32
#define APIKEY_NAME_MAX 64
#define APIKEY_ORIGINS_MAX 16
#define APIKEY_ORIGIN_MAX 256
#define APIKEY_FILE_MAX ((size_t)16 << 20)

/* Roles: admin may do everything; read and ingest are disjoint. NONE marks public routes. */
enum apikey_role {
    APIKEY_ROLE_NONE = 0,
    APIKEY_ROLE_INGEST,
    APIKEY_ROLE_READ,
    APIKEY_ROLE_ADMIN,
};

/* "none", "ingest", "read", "admin". */
const char *apikey_role_name(enum apikey_role role);
/* Parses "ingest", "read" or "admin". Returns 0 or CORE_E_INVALID. */
int apikey_role_parse(const char *s, enum apikey_role *out);
/* Whether a key of role have may call a route that needs role need. */
bool apikey_role_allows(enum apikey_role have, enum apikey_role need);

/* ---- token bucket ---------------------------------------------------------------------------- */

struct apikey_bucket {
    double tokens;
    int64_t last_ns; /* 0: never used (starts full) */
};

/*
 * Takes one token from a bucket refilled at rate tokens/s up to burst (rate <= 0: unlimited).
 * Returns true when allowed; otherwise false with *retry_after_s = whole seconds until a
 * token is available (at least 1). Not thread-safe: the caller serialises per bucket.
 */
bool apikey_bucket_take(struct apikey_bucket *b, double rate, double burst, int64_t now_ns,
                        int *retry_after_s);

/* ---- the key file ---------------------------------------------------------------------------- */

struct apikey {
    char id[APIKEY_ID_LEN + 1];
    enum apikey_role role;
    char name[APIKEY_NAME_MAX + 1];
    uint8_t hash[APIKEY_HASH_BYTES]; /* BLAKE2b-256 of the key text */
    int64_t created_ms;
    int64_t revoked_ms; /* 0: active */
    double rate, burst; /* requests per second and burst; rate 0: unlimited */
    char **origins;     /* allowed Origin values (exact match); none: any origin */
    size_t norigins;
};

/* The keys of one file, in file order. */
struct apikey_list {
    struct apikey *keys;
    size_t n, cap;
};

void apikey_list_init(struct apikey_list *l);
void apikey_list_dispose(struct apikey_list *l);

/*
 * Loads path into l (initialised by the caller, replaced on success only). Refuses a file
 * that group or others can access (CORE_E_INVALID: chmod 600), a malformed one
 * (CORE_E_PARSE / CORE_E_INVALID), more than APIKEY_MAX keys or a file over APIKEY_FILE_MAX
 * (CORE_E_TOOBIG); err gets the reason. -ENOENT when the file does not exist.
 */
int apikey_list_load(const char *path, struct apikey_list *l, char *err, size_t es);

/* Writes l to path atomically (temp file, fsync, rename, fsync dir), mode 0600. */
int apikey_list_save(const char *path, const struct apikey_list *l);

/*
 * Adds a new key with a fresh random id and secret; writes the key text (shown once) into
 * key_out (APIKEY_TEXT_LEN + 1 bytes). origins_csv may be NULL ("https://a,https://b").
 * rate 0 means unlimited; burst defaults to max(1, rate) when 0. Returns 0, CORE_E_FULL at
 * APIKEY_MAX keys or CORE_E_INVALID with a reason in err.
 */
int apikey_list_add(struct apikey_list *l, enum apikey_role role, const char *name,
                    const char *origins_csv, double rate, double burst, char *key_out, char *err,
                    size_t es);

/* Marks key id revoked at now_ms. Returns 0, CORE_E_NOTFOUND or CORE_E_EXISTS (already). */
int apikey_list_revoke(struct apikey_list *l, const char *id, int64_t now_ms);

/* Appends the list as JSON without secrets or hashes: [{"id":..,"role":..,...}]. */
void apikey_list_json(const struct apikey_list *l, struct core_buf *out);

/* Appends one key's public fields as a JSON object. */
void apikey_json(const struct apikey *k, struct core_buf *out);

/*
 * Serialises writers of path (the CLI and the server's first start): an exclusive flock on
 * "<path>.lock", held until apikey_file_unlock. Returns 0 (fd in *fd) or -errno.
 */
int apikey_file_lock(const char *path, int *fd);
void apikey_file_unlock(int fd);

/* ---- the server's store ---------------------------------------------------------------------- */

enum apikey_verdict {
    APIKEY_OK = 0,
    APIKEY_UNAUTHENTICATED, /* no key, malformed, unknown or revoked: 401 */
    APIKEY_WRONG_ROLE,      /* 403 */
    APIKEY_BAD_ORIGIN,      /* 403: the key's origin list does not hold the Origin header */
    APIKEY_LIMITED,         /* 429: the key's rate limit */
};

struct apikey_store;

/*
 * Opens the server's store over the key file at path. When the file does not exist it is
 * created with one admin key whose text is written to admin_key_path (0600) first;
 * *created_admin tells. Returns 0 or the apikey_list_load / write error (logged).
 */
int apikey_store_open(const char *path, const char *admin_key_path, struct apikey_store **out,
                      bool *created_admin);
void apikey_store_free(struct apikey_store *s);

/*
 * Checks a presented key (text, n bytes; NULL for none) for a route needing role need,
 * (exact_role: only that role, not admin: keys sent in a URL), with the request's Origin
 * header (NULL when absent), and takes a token from the key's
 * bucket. On APIKEY_OK id_out (APIKEY_ID_LEN + 1) gets the key id; on APIKEY_LIMITED
 * *retry_after_s is set. Before checking, the file is re-read when it changed (stat at most
 * once a second), so keys created or revoked by the CLI apply without a restart. Any thread.
 */
enum apikey_verdict apikey_store_check(struct apikey_store *s, const char *key, size_t n,
                                       enum apikey_role need, bool exact_role, const char *origin,
                                       int64_t now_ns, char *id_out, int *retry_after_s);

/* Active (not revoked) keys in the store. */
size_t apikey_store_active(struct apikey_store *s);

#endif
