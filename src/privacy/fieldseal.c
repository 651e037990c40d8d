/* Sealed field bundles (fieldseal.h): sealing at ingest, opening and merging for readers. */
#include "privacy/fieldseal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define FS_VERSION 1

int fieldseal_seal(struct epochkeys *ek, int cls, int64_t t_ms, const char *names, size_t nlen,
                   const char *json, size_t n, const uint8_t *nonce, struct core_buf *out)
{
    struct seal_key key;
    int64_t start;
    int rc = epochkeys_acquire(ek, cls, t_ms, &key, &start);
    if (rc < 0)
        return rc;
    size_t base = out->len;
    core_buf_putc(out, FS_VERSION);
    core_buf_putc(out, (char)cls);
    core_buf_put_varint(out, (uint64_t)start);
    core_buf_put_varint(out, nlen);
    core_buf_append(out, names, nlen);
    size_t adlen = out->len - base;
    if (adlen + n + SEAL_OVERHEAD > EVENT_FIELDS_MAX) {
        out->len = base;
        seal_key_dispose(&key);
        return CORE_E_TOOBIG;
    }
    core_buf_reserve(out, n + SEAL_OVERHEAD);
    /* The header is the associated data; it sits in out just before the sealed part. A
     * nonce from the caller's pool saves a getrandom call per event (seal.h). */
    uint8_t *dst = (uint8_t *)out->data + out->len;
    if (nonce)
        memcpy(dst, nonce, SEAL_NONCE_BYTES);
    else
        randombytes_buf(dst, SEAL_NONCE_BYTES);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(dst + SEAL_NONCE_BYTES, &clen, (const uint8_t *)json,
                                               n, (const uint8_t *)out->data + base, adlen, NULL,
                                               dst, key.key);
    out->len += n + SEAL_OVERHEAD;
    seal_key_dispose(&key);
    return 0;
}

static int parse_header(const uint8_t **p, const uint8_t *end, struct fieldseal_info *info)
{
    uint64_t start, nlen;
    if (end - *p < 2 || (*p)[0] != FS_VERSION || (*p)[1] >= EPOCHKEYS_CLASSES)
        return CORE_E_CORRUPT;
    info->cls = (*p)[1];
    *p += 2;
    if (core_get_varint(p, end, &start) < 0 || start > INT64_MAX ||
        core_get_varint(p, end, &nlen) < 0 || nlen == 0 || nlen > (uint64_t)(end - *p))
        return CORE_E_CORRUPT;
    info->start_ms = (int64_t)start;
    info->names = (struct event_str){(const char *)*p, (size_t)nlen};
    *p += nlen;
    return 0;
}

int fieldseal_open(struct epochkeys *ek, const void *bundle, size_t n, struct core_buf *json,
                   struct fieldseal_info *info)
{
    const uint8_t *p = bundle, *end = p + n;
    if (!bundle || parse_header(&p, end, info) < 0 || (size_t)(end - p) < SEAL_OVERHEAD)
        return CORE_E_CORRUPT;
    size_t adlen = (size_t)(p - (const uint8_t *)bundle);
    struct seal_key key;
    int rc = epochkeys_get(ek, info->cls, info->start_ms, &key);
    if (rc < 0)
        return CORE_E_NOTFOUND;
    size_t slen = (size_t)(end - p);
    uint8_t *tmp = core_xmalloc(slen);
    memcpy(tmp, p, slen);
    rc = seal_record_open(&key, bundle, adlen, tmp, slen);
    seal_key_dispose(&key);
    if (rc == 0)
        core_buf_append(json, tmp + SEAL_NONCE_BYTES, slen - SEAL_OVERHEAD);
    sodium_memzero(tmp, slen);
    free(tmp);
    return rc;
}

int fieldseal_merge(struct epochkeys *ek, struct event *ev, struct core_arena *arena,
                    struct event_str *expired)
{
    if (expired)
        *expired = (struct event_str){NULL, 0};
    if (!ev->fields_sealed.len)
        return 0;
    struct core_buf json;
    core_buf_init(&json);
    struct fieldseal_info info;
    int rc = fieldseal_open(ek, ev->fields_sealed.ptr, ev->fields_sealed.len, &json, &info);
    ev->fields_sealed = (struct event_str){NULL, 0};
    if (rc == CORE_E_NOTFOUND) {
        if (expired)
            *expired = info.names;
        rc = 0;
        goto out;
    }
    /* Both are compact JSON objects; the fields join the kept ones at the end. */
    if (rc < 0 || json.len < 2 || json.data[0] != '{' || json.data[json.len - 1] != '}') {
        rc = CORE_E_CORRUPT;
        goto out;
    }
    const struct event_str *pj = &ev->properties_json;
    bool kept = pj->len > 2;
    size_t len = kept ? pj->len - 1 + 1 + json.len - 1 : json.len;
    char *m = core_arena_alloc(arena, len);
    if (kept) {
        memcpy(m, pj->ptr, pj->len - 1);
        m[pj->len - 1] = ',';
        memcpy(m + pj->len, json.data + 1, json.len - 1);
    } else {
        memcpy(m, json.data, json.len);
    }
    ev->properties_json = (struct event_str){m, len};
out:
    if (json.data)
        sodium_memzero(json.data, json.len);
    core_buf_dispose(&json);
    return rc;
}

void fieldseal_names_json(struct event_str names, struct core_buf *out)
{
    core_buf_putc(out, '[');
    const char *p = names.ptr, *end = p + names.len;
    while (p && p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        if (p != names.ptr)
            core_buf_putc(out, ',');
        core_json_str(out, p, (size_t)(stop - p));
        p = stop + 1;
    }
    core_buf_putc(out, ']');
}
