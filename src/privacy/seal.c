/* Encryption at rest: the data key file and sealed records, lines and files (see seal.h). */
#include "privacy/seal.h"
#include "privacy/privacy.h"

#include <sodium.h>
#include <string.h>

const uint8_t SEAL_ID_DATA[SEAL_ID_BYTES] = {0};

int seal_init(void)
{
    return sodium_init() < 0 ? CORE_E_FAILED : 0;
}

int seal_data_key_load_or_create(const char *path, struct seal_key *key, bool *created)
{
    _Static_assert(SEAL_KEY_BYTES == PRIVACY_KEY_BYTES, "one key-file format for both");
    uint8_t bytes[SEAL_KEY_BYTES];
    int rc = privacy_secret_load_or_create(path, bytes, created);
    if (rc == 0) {
        memset(key->id, 0, sizeof key->id);
        memcpy(key->key, bytes, sizeof key->key);
    }
    sodium_memzero(bytes, sizeof bytes);
    return rc;
}

void seal_key_dispose(struct seal_key *key)
{
    sodium_memzero(key, sizeof *key);
}

bool seal_id_is_data(const uint8_t id[SEAL_ID_BYTES])
{
    return sodium_is_zero(id, SEAL_ID_BYTES) == 1;
}

/* ---- records --------------------------------------------------------------------------- */

void seal_record(const struct seal_key *key, const void *ad, size_t adlen, const void *plain,
                 size_t n, uint8_t *out)
{
    randombytes_buf(out, SEAL_NONCE_BYTES);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + SEAL_NONCE_BYTES, &clen, plain, n, ad, adlen,
                                               NULL, out, key->key);
}

void seal_nonces_init(struct seal_nonces *nn)
{
    nn->used = sizeof nn->pool;
}

void seal_record_in_place(const struct seal_key *key, const void *ad, size_t adlen, uint8_t *buf,
                          size_t n, struct seal_nonces *nn)
{
    if (!nn) {
        randombytes_buf(buf, SEAL_NONCE_BYTES);
    } else {
        if (nn->used + SEAL_NONCE_BYTES > sizeof nn->pool) {
            randombytes_buf(nn->pool, sizeof nn->pool);
            nn->used = 0;
        }
        memcpy(buf, nn->pool + nn->used, SEAL_NONCE_BYTES);
        /* Each nonce is handed out once: wipe it from the pool. */
        memset(nn->pool + nn->used, 0, SEAL_NONCE_BYTES);
        nn->used += SEAL_NONCE_BYTES;
    }
    unsigned long long clen = 0;
    uint8_t *m = buf + SEAL_NONCE_BYTES; /* libsodium encrypts in place when c == m */
    crypto_aead_xchacha20poly1305_ietf_encrypt(m, &clen, m, n, ad, adlen, NULL, buf, key->key);
}

int seal_record_open(const struct seal_key *key, const void *ad, size_t adlen, uint8_t *sealed,
                     size_t n)
{
    if (n < SEAL_OVERHEAD)
        return CORE_E_CORRUPT;
    /* libsodium decrypts in place when message and ciphertext share their start. */
    uint8_t *c = sealed + SEAL_NONCE_BYTES;
    unsigned long long mlen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(c, &mlen, NULL, c, n - SEAL_NONCE_BYTES, ad,
                                                   adlen, sealed, key->key) != 0)
        return CORE_E_CORRUPT;
    return 0;
}

/* ---- lines ----------------------------------------------------------------------------- */

#define B64_VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING

void seal_line(const struct seal_key *key, const char *ad, const void *plain, size_t n,
               struct core_buf *out)
{
    size_t slen = n + SEAL_OVERHEAD;
    uint8_t *tmp = core_xmalloc(slen);
    seal_record(key, ad, strlen(ad), plain, n, tmp);
    size_t b64 = sodium_base64_ENCODED_LEN(slen, B64_VARIANT);
    core_buf_reserve(out, b64);
    sodium_bin2base64(out->data + out->len, b64, tmp, slen, B64_VARIANT);
    out->len += b64 - 1; /* without the NUL sodium writes */
    free(tmp);
}

int seal_line_open(const struct seal_key *key, const char *ad, const char *line, size_t n,
                   struct core_buf *out)
{
    size_t cap = n / 4 * 3 + 3, blen = 0;
    uint8_t *tmp = core_xmalloc(cap ? cap : 1);
    int rc = CORE_E_CORRUPT;
    if (sodium_base642bin(tmp, cap, line, n, NULL, &blen, NULL, B64_VARIANT) != 0 ||
        seal_record_open(key, ad, strlen(ad), tmp, blen) < 0)
        goto out;
    core_buf_append(out, tmp + SEAL_NONCE_BYTES, blen - SEAL_OVERHEAD);
    rc = 0;
out:
    sodium_memzero(tmp, cap ? cap : 1);
    free(tmp);
    return rc;
}

/* ---- whole files ----------------------------------------------------------------------- */

/*
 * File image: "RSSEAL1\n", the 24-byte secretstream header, then chunks, each a u32
 * (little-endian) ciphertext length and the ciphertext of at most FILE_CHUNK plaintext bytes.
 * The last chunk, and only it, carries TAG_FINAL (an empty plaintext gets one empty chunk).
 */
#define FILE_MAGIC "RSSEAL1\n"
#define FILE_MAGIC_LEN 8
#define FILE_CHUNK (64u * 1024u)
#define CHUNK_ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define STREAM_HDR crypto_secretstream_xchacha20poly1305_HEADERBYTES

size_t seal_file_size(size_t n)
{
    size_t chunks = n == 0 ? 1 : (n + FILE_CHUNK - 1) / FILE_CHUNK;
    return FILE_MAGIC_LEN + STREAM_HDR + n + chunks * (4 + CHUNK_ABYTES);
}

static void put_u32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void seal_file(const struct seal_key *key, const char *ad, const void *plain, size_t n,
               struct core_buf *out)
{
    size_t total = seal_file_size(n), adlen = strlen(ad);
    core_buf_reset(out);
    core_buf_reserve(out, total);
    uint8_t *p = (uint8_t *)out->data;
    memcpy(p, FILE_MAGIC, FILE_MAGIC_LEN);
    crypto_secretstream_xchacha20poly1305_state st;
    crypto_secretstream_xchacha20poly1305_init_push(&st, p + FILE_MAGIC_LEN, key->key);
    size_t pos = FILE_MAGIC_LEN + STREAM_HDR, done = 0;
    const uint8_t *m = plain;
    do {
        size_t take = n - done > FILE_CHUNK ? FILE_CHUNK : n - done;
        bool last = done + take == n;
        put_u32le(p + pos, (uint32_t)(take + CHUNK_ABYTES));
        crypto_secretstream_xchacha20poly1305_push(
            &st, p + pos + 4, NULL, m + done, take, (const uint8_t *)ad, adlen,
            last ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
        pos += 4 + take + CHUNK_ABYTES;
        done += take;
    } while (done < n);
    sodium_memzero(&st, sizeof st);
    out->len = pos;
    out->data[pos] = '\0';
}

int seal_file_open(const struct seal_key *key, const char *ad, const void *sealed, size_t n,
                   struct core_buf *out)
{
    const uint8_t *p = sealed;
    size_t adlen = strlen(ad);
    core_buf_reset(out);
    if (n < FILE_MAGIC_LEN + STREAM_HDR || memcmp(p, FILE_MAGIC, FILE_MAGIC_LEN) != 0)
        return CORE_E_CORRUPT;
    crypto_secretstream_xchacha20poly1305_state st;
    if (crypto_secretstream_xchacha20poly1305_init_pull(&st, p + FILE_MAGIC_LEN, key->key) != 0)
        return CORE_E_CORRUPT;
    core_buf_reserve(out, n);
    size_t pos = FILE_MAGIC_LEN + STREAM_HDR;
    bool final = false;
    int rc = CORE_E_CORRUPT;
    while (!final) {
        if (n - pos < 4)
            goto out; /* truncated: the final chunk is missing */
        uint32_t clen = (uint32_t)p[pos] | ((uint32_t)p[pos + 1] << 8) |
                        ((uint32_t)p[pos + 2] << 16) | ((uint32_t)p[pos + 3] << 24);
        pos += 4;
        if (clen < CHUNK_ABYTES || clen > FILE_CHUNK + CHUNK_ABYTES || clen > n - pos)
            goto out;
        unsigned long long mlen = 0;
        unsigned char tag = 0;
        if (crypto_secretstream_xchacha20poly1305_pull(&st, (uint8_t *)out->data + out->len, &mlen,
                                                       &tag, p + pos, clen, (const uint8_t *)ad,
                                                       adlen) != 0)
            goto out;
        out->len += (size_t)mlen;
        pos += clen;
        final = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
    }
    if (pos == n)
        rc = 0; /* nothing may follow the final chunk */
out:
    sodium_memzero(&st, sizeof st);
    if (rc < 0) {
        sodium_memzero(out->data, out->cap);
        core_buf_reset(out);
    } else {
        out->data[out->len] = '\0';
    }
    return rc;
}
