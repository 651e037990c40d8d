/*
 * libFuzzer target for sealed field bundles (privacy/fieldseal.h), which readers open from
 * every log record that carries one: the input is a bundle, opened and merged into an event
 * with a store that holds a key for every (class, epoch) the input may name at epoch 0 and
 * 3600000; it must fail cleanly (CORE_E_CORRUPT / CORE_E_NOTFOUND) or merge into a
 * well-formed object. A bundle sealed by fieldseal_seal from the input as JSON must open to
 * the same bytes.
 */
#include "privacy/fieldseal.h"

#include <stdlib.h>
#include <string.h>

static struct epochkeys *store(void)
{
    static struct epochkeys *ek;
    if (ek)
        return ek;
    static struct seal_key dk;
    struct epochkeys_options o;
    epochkeys_options_init(&o);
    o.data_key = &dk;
    if (seal_init() < 0 || epochkeys_open(&o, &ek) < 0)
        abort();
    struct epochkeys_policy pol = {{true, true, true}, {1, 1, 1}, {3600000, 3600000, 3600000}};
    epochkeys_set_policy(ek, &pol);
    struct seal_key k;
    int64_t start;
    for (int c = 0; c < EPOCHKEYS_CLASSES; c++)
        for (int64_t t = 0; t < 2 * 3600000; t += 3600000)
            if (epochkeys_acquire(ek, c, t, &k, &start) < 0)
                abort();
    return ek;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct epochkeys *ek = store();
    struct event ev;
    event_init(&ev);
    ev.properties_json = (struct event_str){"{\"a\":1}", 7};
    ev.fields_sealed = (struct event_str){(const char *)data, size};
    struct core_arena arena;
    core_arena_init(&arena);
    struct event_str expired;
    int rc = fieldseal_merge(ek, &ev, &arena, &expired);
    if (rc != 0 && rc != CORE_E_CORRUPT)
        abort();
    if (ev.fields_sealed.len || ev.properties_json.len < 2 || ev.properties_json.ptr[0] != '{' ||
        ev.properties_json.ptr[ev.properties_json.len - 1] != '}')
        abort();
    core_arena_dispose(&arena);
    /* Sealing any bytes (as JSON) and opening them gives the same bytes back. */
    if (size > 0 && size <= EVENT_JSON_FIELD_MAX) {
        struct core_buf b, out;
        core_buf_init(&b);
        core_buf_init(&out);
        if (fieldseal_seal(ek, (int)(data[0] % EPOCHKEYS_CLASSES), 5, "f", 1, (const char *)data,
                           size, NULL, &b) != 0)
            abort();
        struct fieldseal_info info;
        if (fieldseal_open(ek, b.data, b.len, &out, &info) != 0 || out.len != size ||
            memcmp(out.data, data, size) != 0)
            abort();
        core_buf_dispose(&b);
        core_buf_dispose(&out);
    }
    return 0;
}
