/* Record framing and index encoding of the evlog file backend. */
#include "evlog_testutil.h"

static size_t encode_sample(uint8_t *buf, int64_t offset)
{
    struct evlog_record rec = {
        .offset = offset,
        .event_time_ms = -12345,
        .ingest_time_ms = 1700000000123,
        .key = "user-42",
        .key_len = 7,
        .value = "\x00\x01payload\xff",
        .value_len = 10,
    };
    evlog__frame_encode(buf, &rec);
    return evlog__frame_size(rec.key_len, rec.value_len);
}

static void test_frame_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t len = encode_sample(buf, 987654321);
    assert_int_equal(len, EVLOG_FRAME_HDR + 17);
    struct evlog_record rec;
    size_t flen = 0;
    assert_int_equal(evlog__frame_decode(buf, len, &rec, &flen), 0);
    assert_int_equal(flen, len);
    assert_int_equal(rec.offset, 987654321);
    assert_int_equal(rec.event_time_ms, -12345);
    assert_int_equal(rec.ingest_time_ms, 1700000000123);
    assert_int_equal(rec.key_len, 7);
    assert_memory_equal(rec.key, "user-42", 7);
    assert_int_equal(rec.value_len, 10);
    assert_memory_equal(rec.value, "\x00\x01payload\xff", 10);

    /* Decoding then encoding again gives the same bytes. */
    uint8_t again[128];
    evlog__frame_encode(again, &rec);
    assert_memory_equal(buf, again, len);

    /* Trailing bytes after a frame are not its business. */
    memset(buf + len, 0xEB, 20);
    assert_int_equal(evlog__frame_decode(buf, len + 20, &rec, &flen), 0);
    assert_int_equal(flen, len);

    /* Empty key and value are fine. */
    struct evlog_record empty = {.offset = 1};
    evlog__frame_encode(buf, &empty);
    assert_int_equal(evlog__frame_decode(buf, EVLOG_FRAME_HDR, &rec, &flen), 0);
    assert_int_equal(flen, EVLOG_FRAME_HDR);
    assert_int_equal(rec.key_len + rec.value_len, 0);
}

static void test_frame_every_byte_flip_detected(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t len = encode_sample(buf, 7);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            struct evlog_record rec;
            size_t flen;
            int rc = evlog__frame_decode(buf, len, &rec, &flen);
            assert_int_not_equal(rc, 0);
            assert_true(rc == CORE_E_CORRUPT || rc == EVLOG__FRAME_SHORT);
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* A flipped payload byte is a checksum mismatch, and is explained as such. */
    buf[len - 1] ^= 0x40;
    struct evlog_record rec;
    size_t flen;
    assert_int_equal(evlog__frame_decode(buf, len, &rec, &flen), CORE_E_CORRUPT);
    assert_string_equal(evlog__frame_error(buf, len), "checksum mismatch");
    buf[0] = 0;
    assert_string_equal(evlog__frame_error(buf, len), "bad magic");
}

static void test_frame_short_prefixes(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t len = encode_sample(buf, 7);
    for (size_t n = 0; n < len; n++) {
        struct evlog_record rec;
        size_t flen = 0;
        assert_int_equal(evlog__frame_decode(buf, n, &rec, &flen), EVLOG__FRAME_SHORT);
        if (n >= EVLOG_FRAME_HDR)
            assert_int_equal(flen, len);
    }
    /* Garbage is recognised at once, not after waiting for more bytes. */
    uint8_t zeros[8] = {0};
    struct evlog_record rec;
    size_t flen;
    assert_int_equal(evlog__frame_decode(zeros, sizeof zeros, &rec, &flen), CORE_E_CORRUPT);
}

static void test_frame_limits(void **state)
{
    (void)state;
    uint8_t buf[EVLOG_FRAME_HDR];
    struct evlog_record rec = {.offset = 1};
    evlog__frame_encode(buf, &rec);
    /* A header claiming an oversized value is corrupt even before its bytes arrive. */
    buf[40] = 0xff;
    buf[41] = 0xff;
    buf[42] = 0xff;
    size_t flen;
    assert_int_equal(evlog__frame_decode(buf, sizeof buf, &rec, &flen), CORE_E_CORRUPT);
}

static void test_index_roundtrip_and_lookup(void **state)
{
    (void)state;
    struct evlog_seg_info info = {.base = 100, .end = 100};
    struct evlog_index idx;
    evlog__index_init(&idx);
    int64_t pos = 0;
    int64_t ingest[] = {10, 30, 20, 40, 40, 35, 50};
    for (int i = 0; i < 700; i++) {
        evlog__seg_account(&info, &idx, pos, ingest[i % 7] + (i / 7) * 100, 100);
        pos += 100;
    }
    assert_int_equal(info.end, 800);
    assert_int_equal(info.size, 70000);
    assert_true(idx.n > 10 && idx.n < 30);
    assert_int_equal(idx.e[0].rel, 0);
    assert_int_equal(idx.e[0].pos, 0);
    /* Entries cover about EVLOG_INDEX_INTERVAL bytes each. */
    assert_true(idx.e[1].pos >= EVLOG_INDEX_INTERVAL && idx.e[1].pos < EVLOG_INDEX_INTERVAL + 100);

    size_t e = evlog__index_find_offset(&idx, 100, 100 + 345);
    assert_true(100 + idx.e[e].rel <= 445);
    assert_true(e + 1 == idx.n || 100 + idx.e[e + 1].rel > 445);
    e = evlog__index_find_time(&idx, 3000);
    assert_true(idx.e[e].max_ingest_before < 3000);
    assert_true(e + 1 == idx.n || idx.e[e + 1].max_ingest_before >= 3000);

    struct core_buf img;
    core_buf_init(&img);
    evlog__index_encode(&info, &idx, &img);
    struct evlog_seg_info info2;
    struct evlog_index idx2;
    assert_int_equal(evlog__index_decode((uint8_t *)img.data, img.len, 100, &info2, &idx2), 0);
    assert_memory_equal(&info, &info2, sizeof info);
    assert_int_equal(idx.n, idx2.n);
    assert_memory_equal(idx.e, idx2.e, idx.n * sizeof *idx.e);
    evlog__index_dispose(&idx2);
    /* Wrong base, or any flipped byte: rejected. */
    assert_int_equal(evlog__index_decode((uint8_t *)img.data, img.len, 101, &info2, &idx2),
                     CORE_E_CORRUPT);
    img.data[70] ^= 1;
    assert_int_equal(evlog__index_decode((uint8_t *)img.data, img.len, 100, &info2, &idx2),
                     CORE_E_CORRUPT);
    core_buf_dispose(&img);
    evlog__index_dispose(&idx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_roundtrip),
        cmocka_unit_test(test_frame_every_byte_flip_detected),
        cmocka_unit_test(test_frame_short_prefixes),
        cmocka_unit_test(test_frame_limits),
        cmocka_unit_test(test_index_roundtrip_and_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
