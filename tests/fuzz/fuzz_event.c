/*
 * libFuzzer target for the event codecs: the input is tried both as a JSON event (decode,
 * then binary round trip and canonical JSON) and as a binary payload (decode, re-encode).
 * Any crash, sanitizer report or round-trip mismatch is a bug.
 */
#include "event/event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_event: check failed: %s (line %d)\n", #cond, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static bool same_str(struct event_str a, struct event_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool same_event(const struct event *a, const struct event *b)
{
    return same_str(a->event_id, b->event_id) && !strcmp(a->user_key, b->user_key) &&
           !strcmp(a->anon_key, b->anon_key) && same_str(a->session_id, b->session_id) &&
           a->type == b->type && same_str(a->item_id, b->item_id) && a->ts_ms == b->ts_ms &&
           a->recv_ms == b->recv_ms && a->has_value == b->has_value &&
           memcmp(&a->value, &b->value, sizeof a->value) == 0 && same_str(a->rec_id, b->rec_id) &&
           a->has_position == b->has_position && a->position == b->position &&
           same_str(a->schema, b->schema) && same_str(a->context_json, b->context_json) &&
           same_str(a->properties_json, b->properties_json) &&
           a->dropped_fields == b->dropped_fields;
}

/* The canonical JSON of an event must always parse back as an object. */
static void check_json(const struct event *ev)
{
    struct core_buf out;
    core_buf_init(&out);
    event_json_encode(ev, &out);
    cJSON *back = cJSON_ParseWithLength(out.data, out.len);
    CHECK(cJSON_IsObject(back));
    cJSON_Delete(back);
    core_buf_dispose(&out);
}

static void fuzz_json(const uint8_t *data, size_t size)
{
    cJSON *root = cJSON_ParseWithLength((const char *)data, size);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return;
    }
    struct core_arena arena;
    core_arena_init(&arena);
    struct event ev;
    struct event_error err;
    if (event_json_decode(root, 1700000000000LL, &arena, &ev, &err) == 0) {
        if (size & 1) /* exercise the keys on half of the inputs */
            memcpy(ev.user_key, "00112233445566778899aabbccddeeff", EVENT_KEY_HEX + 1);
        struct core_buf bin;
        core_buf_init(&bin);
        event_bin_encode(&ev, &bin);
        struct event back;
        CHECK(event_bin_decode(bin.data, bin.len, &back) == 0);
        CHECK(same_event(&ev, &back));
        check_json(&ev);
        core_buf_dispose(&bin);
    } else {
        CHECK(err.message[0] != '\0');
    }
    core_arena_dispose(&arena);
    cJSON_Delete(root);
}

static void fuzz_bin(const uint8_t *data, size_t size)
{
    struct event ev;
    if (event_bin_decode(data, size, &ev) != 0)
        return;
    /* The encoding is canonical: what decodes re-encodes to the same bytes. */
    struct core_buf bin;
    core_buf_init(&bin);
    event_bin_encode(&ev, &bin);
    CHECK(bin.len == size && memcmp(bin.data, data, size) == 0);
    core_buf_dispose(&bin);
    /* Binary strings are not UTF-8 checked; the JSON writer must still stay valid. */
    struct core_buf out;
    core_buf_init(&out);
    event_json_encode(&ev, &out);
    core_buf_dispose(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_json(data, size);
    fuzz_bin(data, size);
    return 0;
}
