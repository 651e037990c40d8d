/* Sealing and opening log records (the frame layout is in evlog_file_int.h). */
#include "evlog/evlog_file_int.h"

#include <string.h>
#include <xxhash.h>

#define AD_BYTES (4 + 24 + SEAL_ID_BYTES)

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Associated data: partition, offset, event and ingest time (header bytes [12, 36)), key id. */
static void make_ad(uint8_t ad[AD_BYTES], int32_t partition, const uint8_t *frame)
{
    put_le(ad, (uint32_t)partition, 4);
    memcpy(ad + 4, frame + 12, 24);
    memcpy(ad + 28, frame + EVLOG_FRAME_HDR, SEAL_ID_BYTES);
}

void evlog__frame_seal(uint8_t *dst, const struct evlog_record *rec, int32_t partition,
                       const struct seal_key *key, struct seal_nonces *nn)
{
    uint32_t plain = 4u + rec->key_len + rec->value_len;
    uint32_t sealed = plain + SEAL_OVERHEAD;
    size_t len = evlog__frame_size(SEAL_ID_BYTES, sealed);
    dst[0] = EVLOG_FRAME_MAGIC;
    dst[1] = EVLOG_FRAME_VERSION;
    put_le(dst + 2, 0, 2);
    put_le(dst + 4, len, 4);
    put_le(dst + 12, (uint64_t)rec->offset, 8);
    put_le(dst + 20, (uint64_t)rec->event_time_ms, 8);
    put_le(dst + 28, (uint64_t)rec->ingest_time_ms, 8);
    put_le(dst + 36, SEAL_ID_BYTES, 4);
    put_le(dst + 40, sealed, 4);
    memcpy(dst + EVLOG_FRAME_HDR, key->id, SEAL_ID_BYTES);
    /* The plaintext is laid out where its ciphertext goes and encrypted in place. */
    uint8_t *body = dst + EVLOG_FRAME_HDR + SEAL_ID_BYTES;
    uint8_t *m = body + SEAL_NONCE_BYTES;
    put_le(m, rec->key_len, 4);
    if (rec->key_len)
        memcpy(m + 4, rec->key, rec->key_len);
    if (rec->value_len)
        memcpy(m + 4 + rec->key_len, rec->value, rec->value_len);
    uint8_t ad[AD_BYTES];
    make_ad(ad, partition, dst);
    seal_record_in_place(key, ad, sizeof ad, body, plain, nn);
    put_le(dst + 8, (uint32_t)XXH3_64bits(dst + 12, len - 12), 4);
}

int evlog__frame_open(uint8_t *frame, size_t flen, int32_t partition, struct userkeys *keys,
                      struct evlog_record *rec, const char **why)
{
    (void)flen;
    if (rec->key_len != SEAL_ID_BYTES || rec->value_len < 4 + SEAL_OVERHEAD) {
        *why = "not a sealed record (key id or sealed length wrong)";
        return CORE_E_CORRUPT;
    }
    struct seal_key key;
    if (userkeys_find_id(keys, rec->key, &key) < 0) {
        rec->key_len = rec->value_len = 0;
        rec->erased = true;
        return EVLOG__FRAME_ERASED;
    }
    uint8_t ad[AD_BYTES];
    make_ad(ad, partition, frame);
    uint8_t *body = frame + EVLOG_FRAME_HDR + SEAL_ID_BYTES;
    uint32_t plain = rec->value_len - SEAL_OVERHEAD;
    int rc = seal_record_open(&key, ad, sizeof ad, body, rec->value_len);
    seal_key_dispose(&key);
    if (rc < 0) {
        *why = "record does not authenticate (tampered, moved, or another key)";
        return CORE_E_CORRUPT;
    }
    const uint8_t *m = body + SEAL_NONCE_BYTES;
    uint32_t klen =
        (uint32_t)m[0] | ((uint32_t)m[1] << 8) | ((uint32_t)m[2] << 16) | ((uint32_t)m[3] << 24);
    if (klen > plain - 4 || klen > EVLOG_MAX_KEY || plain - 4 - klen > EVLOG_MAX_VALUE) {
        *why = "sealed record key length out of range";
        return CORE_E_CORRUPT;
    }
    rec->key = m + 4;
    rec->key_len = klen;
    rec->value = m + 4 + klen;
    rec->value_len = plain - 4 - klen;
    rec->erased = false;
    return 0;
}
