/*
 * Versions of the pseudonymisation secret (privacy.h, "secret versions"): the key file's
 * format, loading, rotation and retirement. The file is always rewritten whole and atomically,
 * so a crash leaves either the old or the new set of versions, never a mix.
 */
#include "privacy/privacy.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RING_FILE_MAX 4096

/* Parses one "<version> <created> <hex>" line (or a bare 64-hex line: version 1). */
static int parse_line(const char *line, size_t n, bool bare_ok, uint32_t *version, int64_t *created,
                      uint8_t bytes[PRIVACY_KEY_BYTES])
{
    char buf[256];
    if (n >= sizeof buf)
        return CORE_E_INVALID;
    memcpy(buf, line, n);
    buf[n] = '\0';
    const char *hex = buf;
    if (bare_ok && n == 2 * PRIVACY_KEY_BYTES) {
        *version = 1;
        *created = 0;
    } else {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(buf, &end, 10);
        if (end == buf || *end != ' ' || v == 0 || v > UINT32_MAX || errno)
            return CORE_E_INVALID;
        char *end2;
        long long c = strtoll(end + 1, &end2, 10);
        if (end2 == end + 1 || *end2 != ' ' || c < 0 || errno)
            return CORE_E_INVALID;
        *version = (uint32_t)v;
        *created = c;
        hex = end2 + 1;
    }
    size_t bin_len = 0;
    if (strlen(hex) != 2 * PRIVACY_KEY_BYTES ||
        sodium_hex2bin(bytes, PRIVACY_KEY_BYTES, hex, strlen(hex), NULL, &bin_len, NULL) != 0 ||
        bin_len != PRIVACY_KEY_BYTES)
        return CORE_E_INVALID;
    sodium_memzero(buf, sizeof buf);
    return 0;
}

/* Parses the file's text into ring (newest first). */
static int parse_ring(const char *path, const char *text, size_t len, struct privacy_keyring *ring)
{
    struct {
        uint32_t version;
        int64_t created;
        uint8_t bytes[PRIVACY_KEY_BYTES];
    } v[PRIVACY_KEY_VERSIONS_MAX];
    const char *lines[PRIVACY_KEY_VERSIONS_MAX + 1];
    size_t lens[PRIVACY_KEY_VERSIONS_MAX + 1];
    int nv = 0, rc = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        const char *line = text + pos;
        pos += n + 1;
        while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' '))
            n--;
        if (n == 0 || line[0] == '#')
            continue;
        if (nv == PRIVACY_KEY_VERSIONS_MAX + 1) {
            rc = CORE_E_INVALID;
            break;
        }
        lines[nv] = line;
        lens[nv++] = n;
    }
    if (nv == 0 || nv > PRIVACY_KEY_VERSIONS_MAX)
        rc = CORE_E_INVALID;
    /* A bare hex line is only valid as the whole file (the format before versions). */
    for (int i = 0; i < nv && rc == 0; i++) {
        rc = parse_line(lines[i], lens[i], nv == 1, &v[i].version, &v[i].created, v[i].bytes);
        /* Versions ascend strictly (oldest first): a repeated or reordered line is refused. */
        if (rc == 0 && i > 0 && v[i].version <= v[i - 1].version)
            rc = CORE_E_INVALID;
    }
    if (rc < 0) {
        LOG_ERROR("key file must hold 64 hex characters, or lines \"<version> <created ms> "
                  "<64 hex>\" with ascending versions",
                  "path=%s", path);
    } else {
        memset(ring, 0, sizeof *ring);
        ring->n = nv;
        for (int i = 0; i < nv; i++) {
            int k = nv - 1 - i; /* newest first */
            ring->version[i] = v[k].version;
            ring->created_ms[i] = v[k].created;
            privacy_key_set(&ring->key[i], v[k].bytes);
        }
    }
    sodium_memzero(v, sizeof v);
    return rc;
}

int privacy_keyring_load(const char *path, struct privacy_keyring *ring)
{
    if (sodium_init() < 0)
        return CORE_E_FAILED;
    struct stat st;
    if (stat(path, &st) < 0)
        return errno == ENOENT ? CORE_E_NOTFOUND : -errno;
    if (st.st_mode & 077) {
        LOG_ERROR("key file is readable by others; chmod 600 it", "path=%s mode=%o", path,
                  (unsigned)(st.st_mode & 0777));
        return CORE_E_INVALID;
    }
    struct core_buf buf;
    core_buf_init(&buf);
    int rc = core_read_file(path, RING_FILE_MAX, &buf);
    if (rc == 0)
        rc = parse_ring(path, buf.data, buf.len, ring);
    if (buf.data)
        sodium_memzero(buf.data, buf.cap);
    core_buf_dispose(&buf);
    return rc;
}

int privacy_keyring_load_or_create(const char *path, struct privacy_keyring *ring, bool *created)
{
    /* Creation (O_EXCL, 0600, parent 0700) is the single-secret path: its file is version 1. */
    int rc = privacy__key_file_ensure(path, created);
    if (rc < 0)
        return rc;
    return privacy_keyring_load(path, ring);
}

void privacy_keyring_dispose(struct privacy_keyring *ring)
{
    sodium_memzero(ring, sizeof *ring);
}

/* Writes ring (newest first in memory, oldest first in the file) atomically, mode 0600. */
static int write_ring(const char *path, const struct privacy_keyring *ring)
{
    struct core_buf out;
    core_buf_init(&out);
    core_buf_printf(&out, "# recstream pseudonymisation secrets: <version> <created ms> <hex>, "
                          "oldest first; new events use the last\n");
    for (int i = ring->n - 1; i >= 0; i--) {
        char hex[2 * PRIVACY_KEY_BYTES + 1];
        core_hex(ring->key[i].bytes, PRIVACY_KEY_BYTES, hex);
        core_buf_printf(&out, "%" PRIu32 " %" PRId64 " %s\n", ring->version[i], ring->created_ms[i],
                        hex);
        sodium_memzero(hex, sizeof hex);
    }
    int rc = core_write_file_atomic(path, out.data, out.len, 0600);
    sodium_memzero(out.data, out.cap);
    core_buf_dispose(&out);
    return rc;
}

int privacy_keyring_rotate(const char *path, int64_t now_ms, uint32_t *version)
{
    struct privacy_keyring *ring = core_xmalloc(sizeof *ring);
    int rc = privacy_keyring_load(path, ring);
    if (rc == 0 && ring->n == PRIVACY_KEY_VERSIONS_MAX)
        rc = CORE_E_FULL;
    if (rc == 0) {
        memmove(&ring->version[1], &ring->version[0], (size_t)ring->n * sizeof ring->version[0]);
        memmove(&ring->created_ms[1], &ring->created_ms[0],
                (size_t)ring->n * sizeof ring->created_ms[0]);
        memmove(&ring->key[1], &ring->key[0], (size_t)ring->n * sizeof ring->key[0]);
        ring->n++;
        ring->version[0] = ring->version[1] + 1;
        ring->created_ms[0] = now_ms;
        uint8_t bytes[PRIVACY_KEY_BYTES];
        randombytes_buf(bytes, sizeof bytes);
        privacy_key_set(&ring->key[0], bytes);
        sodium_memzero(bytes, sizeof bytes);
        rc = write_ring(path, ring);
        if (rc == 0)
            *version = ring->version[0];
    }
    privacy_keyring_dispose(ring);
    free(ring);
    return rc;
}

int privacy_keyring_retire(const char *path, int64_t grace_ms, int64_t now_ms, uint32_t *version)
{
    struct privacy_keyring *ring = core_xmalloc(sizeof *ring);
    int rc = privacy_keyring_load(path, ring);
    if (rc == 0 && ring->n < 2)
        rc = CORE_E_NOTFOUND;
    /* The oldest is the last; it was superseded when the one before it was added. */
    if (rc == 0 && now_ms - ring->created_ms[ring->n - 2] < grace_ms)
        rc = CORE_E_TIMEOUT;
    if (rc == 0) {
        uint32_t dropped = ring->version[ring->n - 1];
        ring->n--;
        rc = write_ring(path, ring);
        if (rc == 0)
            *version = dropped;
    }
    privacy_keyring_dispose(ring);
    free(ring);
    return rc;
}

int privacy_keyring_pseudonyms(const struct privacy_keyring *ring, bool anon, const char *id,
                               size_t n, char out[][33])
{
    for (int i = 0; i < ring->n; i++) {
        if (anon)
            privacy_pseudonym_anon(&ring->key[i], id, n, out[i]);
        else
            privacy_pseudonym_user(&ring->key[i], id, n, out[i]);
    }
    return ring->n;
}
