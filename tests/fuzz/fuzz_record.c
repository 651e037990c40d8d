/*
 * libFuzzer target for the evlog record framing: decodes frames from the input one after
 * another (as reads and recovery do), re-encodes every frame that decodes and requires the
 * same bytes back, tries to open it as a sealed record (as readers do: it must fail cleanly
 * or yield lengths that add up), and runs the recovery scans and the index parser over the
 * same input.
 */
#include "evlog/evlog_file_int.h"

#include <stdlib.h>
#include <string.h>

static void check_roundtrip(const uint8_t *p, const struct evlog_record *rec, size_t flen)
{
    if (flen != evlog__frame_size(rec->key_len, rec->value_len))
        abort();
    uint8_t *again = core_xmalloc(flen);
    evlog__frame_encode(again, rec);
    if (memcmp(again, p, flen) != 0)
        abort();
    free(again);
}

/* Opening a frame that decoded: with the fixed data key of an in-memory store. */
static void check_open(const uint8_t *p, struct evlog_record rec, size_t flen)
{
    static struct userkeys *uk;
    if (!uk) {
        static struct seal_key dk;
        struct userkeys_options o;
        userkeys_options_init(&o);
        o.data_key = &dk;
        if (userkeys_open(&o, &uk) < 0)
            abort();
    }
    uint8_t *copy = core_xmalloc(flen);
    memcpy(copy, p, flen);
    struct evlog_record r2;
    size_t len2;
    if (evlog__frame_decode(copy, flen, &r2, &len2) != 0 || len2 != flen)
        abort();
    const char *why = NULL;
    int rc = evlog__frame_open(copy, flen, 0, uk, &r2, &why);
    if (rc == 0 && 4u + r2.key_len + r2.value_len + SEAL_OVERHEAD != rec.value_len)
        abort();
    if (rc < 0 && !why)
        abort();
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    while (pos < size) {
        struct evlog_record rec;
        size_t flen = 0;
        int rc = evlog__frame_decode(data + pos, size - pos, &rec, &flen);
        const char *why = evlog__frame_error(data + pos, size - pos);
        if (rc == 0) {
            if (flen > size - pos || strcmp(why, "valid record") != 0)
                abort();
            check_roundtrip(data + pos, &rec, flen);
            check_open(data + pos, rec, flen);
            pos += flen;
        } else if (rc == EVLOG__FRAME_SHORT) {
            break;
        } else if (rc == CORE_E_CORRUPT) {
            if (strcmp(why, "valid record") == 0)
                abort();
            pos++; /* resynchronise byte by byte, like recovery's forward scan */
        } else {
            abort();
        }
    }

    struct evlog_seg_info info = {.base = 0, .end = 0};
    struct evlog_index idx;
    evlog__index_init(&idx);
    const char *why = NULL;
    int64_t bad = evlog__scan_frames(data, (int64_t)size, 0, &info, &idx, &why);
    if (bad < 0 || bad > (int64_t)size || info.size != bad)
        abort();
    if (bad < (int64_t)size) {
        int64_t next = evlog__scan_find_valid(data, (int64_t)size, bad, 0);
        if (next >= (int64_t)size)
            abort();
    }
    evlog__index_dispose(&idx);

    struct evlog_index parsed;
    if (evlog__index_decode(data, size, 0, &info, &parsed) == 0)
        evlog__index_dispose(&parsed);
    return 0;
}
