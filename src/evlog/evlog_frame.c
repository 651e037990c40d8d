/* Record framing and sparse segment indexes of the evlog file backend (pure code, no I/O). */
#include "evlog/evlog_file_int.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* ---- little-endian helpers ------------------------------------------------------------ */

static inline void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | ((uint64_t)get_u32(p + 4) << 32);
}

/* ---- frames ----------------------------------------------------------------------------- */

static uint32_t frame_checksum(const uint8_t *frame, size_t len)
{
    return (uint32_t)XXH3_64bits(frame + 12, len - 12);
}

void evlog__frame_encode(uint8_t *dst, const struct evlog_record *rec)
{
    size_t len = evlog__frame_size(rec->key_len, rec->value_len);
    dst[0] = EVLOG_FRAME_MAGIC;
    dst[1] = EVLOG_FRAME_VERSION;
    put_u16(dst + 2, 0);
    put_u32(dst + 4, (uint32_t)len);
    put_u64(dst + 12, (uint64_t)rec->offset);
    put_u64(dst + 20, (uint64_t)rec->event_time_ms);
    put_u64(dst + 28, (uint64_t)rec->ingest_time_ms);
    put_u32(dst + 36, rec->key_len);
    put_u32(dst + 40, rec->value_len);
    if (rec->key_len)
        memcpy(dst + EVLOG_FRAME_HDR, rec->key, rec->key_len);
    if (rec->value_len)
        memcpy(dst + EVLOG_FRAME_HDR + rec->key_len, rec->value, rec->value_len);
    put_u32(dst + 8, frame_checksum(dst, len));
}

/* Header checks shared by decode and the error explainer. Returns NULL when the header
 * is acceptable (*len set), else the reason. */
static const char *header_problem(const uint8_t *p, size_t avail, size_t *len)
{
    if (avail >= 1 && p[0] != EVLOG_FRAME_MAGIC)
        return "bad magic";
    if (avail >= 2 && p[1] != EVLOG_FRAME_VERSION)
        return "unknown format version";
    if (avail >= 4 && get_u16(p + 2) != 0)
        return "unknown flags";
    if (avail < EVLOG_FRAME_HDR)
        return NULL;
    uint32_t klen = get_u32(p + 36), vlen = get_u32(p + 40);
    if (klen > EVLOG_MAX_FRAME_KEY || vlen > EVLOG_MAX_FRAME_VALUE)
        return "key or value too long";
    if (get_u32(p + 4) != evlog__frame_size(klen, vlen))
        return "frame length disagrees with key and value lengths";
    if (get_u64(p + 12) > (uint64_t)INT64_MAX)
        return "offset out of range";
    *len = get_u32(p + 4);
    return NULL;
}

int evlog__frame_decode(const uint8_t *p, size_t avail, struct evlog_record *rec, size_t *frame_len)
{
    size_t len = 0;
    if (header_problem(p, avail, &len))
        return CORE_E_CORRUPT;
    if (avail < EVLOG_FRAME_HDR)
        return EVLOG__FRAME_SHORT;
    *frame_len = len;
    if (avail < len)
        return EVLOG__FRAME_SHORT;
    if (get_u32(p + 8) != frame_checksum(p, len))
        return CORE_E_CORRUPT;
    rec->partition = 0;
    rec->seal = NULL;
    rec->erased = false;
    rec->offset = (int64_t)get_u64(p + 12);
    rec->event_time_ms = (int64_t)get_u64(p + 20);
    rec->ingest_time_ms = (int64_t)get_u64(p + 28);
    rec->key_len = get_u32(p + 36);
    rec->value_len = get_u32(p + 40);
    rec->key = p + EVLOG_FRAME_HDR;
    rec->value = p + EVLOG_FRAME_HDR + rec->key_len;
    return 0;
}

const char *evlog__frame_error(const uint8_t *p, size_t avail)
{
    size_t len = 0;
    const char *why = header_problem(p, avail, &len);
    if (why)
        return why;
    if (avail < EVLOG_FRAME_HDR || avail < len)
        return "truncated record";
    if (get_u32(p + 8) != frame_checksum(p, len))
        return "checksum mismatch";
    return "valid record";
}

void evlog__frame_peek(const uint8_t *p, uint32_t *len, int64_t *offset, int64_t *ingest_ms)
{
    *len = get_u32(p + 4);
    *offset = (int64_t)get_u64(p + 12);
    *ingest_ms = (int64_t)get_u64(p + 28);
}

/* ---- sparse index ----------------------------------------------------------------------- */

void evlog__index_init(struct evlog_index *idx)
{
    idx->e = NULL;
    idx->n = 0;
    idx->cap = 0;
    idx->next_pos = 0;
}

void evlog__index_dispose(struct evlog_index *idx)
{
    free(idx->e);
    evlog__index_init(idx);
}

void evlog__index_push(struct evlog_index *idx, const struct evlog_index_entry *ent)
{
    if (idx->n == idx->cap) {
        idx->cap = idx->cap ? idx->cap * 2 : 16;
        idx->e = core_xrealloc(idx->e, idx->cap * sizeof *idx->e);
    }
    idx->e[idx->n++] = *ent;
}

void evlog__seg_account(struct evlog_seg_info *info, struct evlog_index *idx, int64_t pos,
                        int64_t ingest_ms, uint32_t frame_len)
{
    bool first = info->end == info->base;
    if (pos >= idx->next_pos) {
        struct evlog_index_entry ent = {
            .rel = (uint32_t)(info->end - info->base),
            .pos = (uint32_t)pos,
            .max_ingest_before = first ? INT64_MIN : info->max_ingest_ms,
        };
        evlog__index_push(idx, &ent);
        idx->next_pos = pos + EVLOG_INDEX_INTERVAL;
    }
    if (first) {
        info->first_ingest_ms = ingest_ms;
        info->max_ingest_ms = ingest_ms;
    } else if (ingest_ms > info->max_ingest_ms) {
        info->max_ingest_ms = ingest_ms;
    }
    info->last_ingest_ms = ingest_ms;
    info->end++;
    info->size = pos + frame_len;
}

size_t evlog__index_find_offset(const struct evlog_index *idx, int64_t base, int64_t offset)
{
    size_t lo = 0, hi = idx->n; /* answer in [lo, hi) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (base + (int64_t)idx->e[mid].rel <= offset)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

size_t evlog__index_find_time(const struct evlog_index *idx, int64_t ts_ms)
{
    size_t lo = 0, hi = idx->n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (idx->e[mid].max_ingest_before < ts_ms)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/*
 * Index file: "RSEVIDX1", then u64 base, end, size, i64 first, last and max ingest time,
 * u32 entry count, u32 reserved (0), the entries (u32 rel, u32 pos, i64 max ingest before),
 * and u64 XXH3_64bits of everything before it.
 */
#define IDX_MAGIC "RSEVIDX1"
#define IDX_HDR 64u
#define IDX_ENT 16u

void evlog__index_encode(const struct evlog_seg_info *info, const struct evlog_index *idx,
                         struct core_buf *out)
{
    size_t n = IDX_HDR + idx->n * IDX_ENT + 8;
    core_buf_reset(out);
    core_buf_reserve(out, n);
    uint8_t *p = (uint8_t *)out->data;
    memcpy(p, IDX_MAGIC, 8);
    put_u64(p + 8, (uint64_t)info->base);
    put_u64(p + 16, (uint64_t)info->end);
    put_u64(p + 24, (uint64_t)info->size);
    put_u64(p + 32, (uint64_t)info->first_ingest_ms);
    put_u64(p + 40, (uint64_t)info->last_ingest_ms);
    put_u64(p + 48, (uint64_t)info->max_ingest_ms);
    put_u32(p + 56, (uint32_t)idx->n);
    put_u32(p + 60, 0);
    for (size_t i = 0; i < idx->n; i++) {
        uint8_t *q = p + IDX_HDR + i * IDX_ENT;
        put_u32(q, idx->e[i].rel);
        put_u32(q + 4, idx->e[i].pos);
        put_u64(q + 8, (uint64_t)idx->e[i].max_ingest_before);
    }
    put_u64(p + n - 8, XXH3_64bits(p, n - 8));
    out->len = n;
    out->data[n] = '\0';
}

/* Entries must start at record 0, position 0 and grow strictly inside the segment. */
static bool entries_sane(const struct evlog_seg_info *info, const struct evlog_index *idx)
{
    if ((idx->n == 0) != (info->end == info->base))
        return false;
    for (size_t i = 0; i < idx->n; i++) {
        const struct evlog_index_entry *e = &idx->e[i];
        if (i == 0 ? (e->rel != 0 || e->pos != 0) : (e->rel <= e[-1].rel || e->pos <= e[-1].pos))
            return false;
        if ((int64_t)e->rel >= info->end - info->base || (int64_t)e->pos >= info->size)
            return false;
    }
    return true;
}

int evlog__index_decode(const uint8_t *p, size_t n, int64_t base, struct evlog_seg_info *info,
                        struct evlog_index *idx)
{
    if (n < IDX_HDR + 8 || memcmp(p, IDX_MAGIC, 8) != 0)
        return CORE_E_CORRUPT;
    uint32_t count = get_u32(p + 56);
    if (n != IDX_HDR + (size_t)count * IDX_ENT + 8 || get_u32(p + 60) != 0)
        return CORE_E_CORRUPT;
    if (get_u64(p + n - 8) != XXH3_64bits(p, n - 8))
        return CORE_E_CORRUPT;
    struct evlog_seg_info in = {
        .base = (int64_t)get_u64(p + 8),
        .end = (int64_t)get_u64(p + 16),
        .size = (int64_t)get_u64(p + 24),
        .first_ingest_ms = (int64_t)get_u64(p + 32),
        .last_ingest_ms = (int64_t)get_u64(p + 40),
        .max_ingest_ms = (int64_t)get_u64(p + 48),
    };
    if (in.base != base || in.end < in.base || in.size < 0)
        return CORE_E_CORRUPT;
    struct evlog_index tmp;
    evlog__index_init(&tmp);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *q = p + IDX_HDR + (size_t)i * IDX_ENT;
        struct evlog_index_entry ent = {get_u32(q), get_u32(q + 4), (int64_t)get_u64(q + 8)};
        evlog__index_push(&tmp, &ent);
    }
    if (!entries_sane(&in, &tmp)) {
        evlog__index_dispose(&tmp);
        return CORE_E_CORRUPT;
    }
    tmp.next_pos = tmp.n ? (int64_t)tmp.e[tmp.n - 1].pos + EVLOG_INDEX_INTERVAL : 0;
    *info = in;
    *idx = tmp;
    return 0;
}
