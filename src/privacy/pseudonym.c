/* Pseudonymisation key file and HMAC-based pseudonyms. */
#include "privacy/privacy.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int parent_dir(const char *path, char *dir, size_t size)
{
    size_t n = strlen(path);
    if (n >= size)
        return -ENAMETOOLONG;
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return CORE_E_NOTFOUND;
    if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    return 0;
}

static int create_key_file(const char *path, uint8_t bytes[PRIVACY_KEY_BYTES])
{
    char dir[4096];
    if (parent_dir(path, dir, sizeof dir) == 0) {
        int rc = core_mkdirs(dir, 0700);
        if (rc < 0)
            return rc;
    }
    randombytes_buf(bytes, PRIVACY_KEY_BYTES);
    char hex[2 * PRIVACY_KEY_BYTES + 2];
    core_hex(bytes, PRIVACY_KEY_BYTES, hex);
    hex[2 * PRIVACY_KEY_BYTES] = '\n';
    /* O_EXCL: two processes starting at once must not both invent a secret. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (write(fd, hex, sizeof hex - 1) != (ssize_t)(sizeof hex - 1) || fsync(fd) < 0)
        rc = errno ? -errno : -EIO;
    close(fd);
    sodium_memzero(hex, sizeof hex);
    if (rc < 0) {
        unlink(path);
        return rc;
    }
    if (parent_dir(path, dir, sizeof dir) == 0)
        core_fsync_dir(dir);
    return 0;
}

int privacy_secret_load_or_create(const char *path, uint8_t bytes[PRIVACY_KEY_BYTES], bool *created)
{
    if (sodium_init() < 0)
        return CORE_E_FAILED;
    struct stat st;
    if (stat(path, &st) < 0) {
        if (errno != ENOENT)
            return -errno;
        int rc = create_key_file(path, bytes);
        if (rc == -EEXIST) /* lost a race with another starter: read theirs */
            return privacy_secret_load_or_create(path, bytes, created);
        if (rc < 0)
            return rc;
        *created = true;
        return 0;
    }
    if (st.st_mode & 077) {
        LOG_ERROR("key file is readable by others; chmod 600 it", "path=%s mode=%o", path,
                  (unsigned)(st.st_mode & 0777));
        return CORE_E_INVALID;
    }
    struct core_buf buf;
    core_buf_init(&buf);
    int rc = core_read_file(path, 256, &buf);
    if (rc < 0)
        goto out;
    size_t n = buf.len;
    while (n > 0 && (buf.data[n - 1] == '\n' || buf.data[n - 1] == '\r' || buf.data[n - 1] == ' '))
        n--;
    size_t bin_len = 0;
    if (n != 2 * PRIVACY_KEY_BYTES ||
        sodium_hex2bin(bytes, PRIVACY_KEY_BYTES, buf.data, n, NULL, &bin_len, NULL) != 0 ||
        bin_len != PRIVACY_KEY_BYTES) {
        LOG_ERROR("key file must hold 64 hex characters", "path=%s", path);
        rc = CORE_E_INVALID;
        goto out;
    }
    *created = false;
out:
    if (buf.data)
        sodium_memzero(buf.data, buf.cap);
    core_buf_dispose(&buf);
    return rc;
}

int privacy__key_file_ensure(const char *path, bool *created)
{
    if (sodium_init() < 0)
        return CORE_E_FAILED;
    struct stat st;
    *created = false;
    if (stat(path, &st) == 0)
        return 0;
    if (errno != ENOENT)
        return -errno;
    uint8_t bytes[PRIVACY_KEY_BYTES];
    int rc = create_key_file(path, bytes);
    sodium_memzero(bytes, sizeof bytes);
    if (rc == -EEXIST) /* lost a race with another starter: theirs stands */
        return 0;
    if (rc == 0)
        *created = true;
    return rc;
}

/* The newest version of a (possibly rotated) key file: see pseudonym_ring.c. */
int privacy_key_load_or_create(const char *path, struct privacy_key *key, bool *created)
{
    struct privacy_keyring *ring = core_xmalloc(sizeof *ring);
    int rc = privacy_keyring_load_or_create(path, ring, created);
    if (rc == 0)
        *key = ring->key[0];
    privacy_keyring_dispose(ring);
    free(ring);
    return rc;
}

void privacy_key_dispose(struct privacy_key *key)
{
    sodium_memzero(key, sizeof *key);
}

void privacy_key_set(struct privacy_key *key, const uint8_t bytes[PRIVACY_KEY_BYTES])
{
    memcpy(key->bytes, bytes, PRIVACY_KEY_BYTES);
    hmac_sha256_set_key(&key->user_ctx, PRIVACY_KEY_BYTES, key->bytes);
    key->anon_ctx = key->user_ctx;
    hmac_sha256_update(&key->anon_ctx, 5, (const uint8_t *)"anon:");
}

static void pseudonym(const struct hmac_sha256_ctx *keyed, const char *id, size_t n, char *out)
{
    struct hmac_sha256_ctx ctx = *keyed;
    uint8_t mac[16];
    hmac_sha256_update(&ctx, n, (const uint8_t *)id);
    hmac_sha256_digest(&ctx, sizeof mac, mac);
    core_hex(mac, sizeof mac, out);
    sodium_memzero(&ctx, sizeof ctx);
}

void privacy_pseudonym_user(const struct privacy_key *key, const char *id, size_t n, char *out)
{
    pseudonym(&key->user_ctx, id, n, out);
}

void privacy_pseudonym_anon(const struct privacy_key *key, const char *id, size_t n, char *out)
{
    pseudonym(&key->anon_ctx, id, n, out);
}
