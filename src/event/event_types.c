/* The registered event types, event initialisation and UUIDv7 event ids. */
#include "event.h"

#include <string.h>

#include <sodium.h>
#include <xxhash.h>

static const struct event_type_info types[EVENT_TYPE__COUNT] = {
#define XX(id, name, weight, item) {name, weight, item},
    EVENT_TYPE_MAP(XX)
#undef XX
};

static const struct event_type_info custom_info = {"custom", 1.0, false};

const struct event_type_info *event_type_get(int type)
{
    if (type == EVENT_TYPE_CUSTOM)
        return &custom_info;
    if (type < 0 || type >= EVENT_TYPE__COUNT)
        return NULL;
    return &types[type];
}

const char *event_type_name(const struct event *ev, size_t *len)
{
    if (ev->type == EVENT_TYPE_CUSTOM) {
        *len = ev->type_name.len;
        return ev->type_name.ptr;
    }
    const struct event_type_info *ti = event_type_get(ev->type);
    *len = ti ? strlen(ti->name) : 0;
    return ti ? ti->name : "";
}

uint64_t event_type_to_wire(int type)
{
    if (type == EVENT_TYPE_CUSTOM)
        return EVENT_WIRE_CUSTOM;
    return type < EVENT_WIRE_CUSTOM ? (uint64_t)type : (uint64_t)type + 1;
}

int event_type_from_wire(uint64_t wire)
{
    if (wire < EVENT_WIRE_CUSTOM)
        return (int)wire;
    if (wire == EVENT_WIRE_CUSTOM)
        return EVENT_TYPE_CUSTOM;
    return wire <= EVENT_TYPE__COUNT ? (int)wire - 1 : -1;
}

int event_type_lookup(const char *name, size_t len)
{
    /* A linear scan: the table is short. */
    for (int i = 0; i < EVENT_TYPE__COUNT; i++) {
        const char *t = types[i].name;
        if (strlen(t) == len && memcmp(t, name, len) == 0)
            return i;
    }
    return -1;
}

void event_init(struct event *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->type = -1;
}

/*
 * RFC 9562 UUIDv7: 48 bits of big-endian Unix milliseconds, the version nibble 7, 12 random
 * bits, the variant bits 10 and 62 more random bits. Ids from one millisecond are not ordered
 * among themselves; dedup needs uniqueness, not order.
 *
 * The random bits come from a per-thread generator: a 128-bit seed from the OS (once per
 * thread) and a counter, mixed by XXH3-128. A getrandom() call per id cost ~0.7 us, more
 * than the rest of decoding; server-assigned ids need to be unique, not unpredictable.
 */
struct id_rng {
    bool seeded;
    uint64_t seed;
    uint64_t salt;
    uint64_t counter;
};

static _Thread_local struct id_rng tl_rng;

static struct id_rng *rng(void)
{
    struct id_rng *r = &tl_rng;
    if (!r->seeded) {
        randombytes_buf(&r->seed, sizeof r->seed);
        randombytes_buf(&r->salt, sizeof r->salt);
        r->seeded = true;
    }
    return r;
}

uint64_t event_random_u64(void)
{
    struct id_rng *r = rng();
    uint64_t in[2] = {r->counter++, r->salt};
    return XXH3_64bits_withSeed(in, sizeof in, r->seed);
}

static void random_tail(uint8_t *b, size_t n)
{
    struct id_rng *r = rng();
    uint64_t in[2] = {r->counter++, r->salt};
    XXH128_hash_t h = XXH3_128bits_withSeed(in, sizeof in, r->seed);
    uint8_t x[16];
    memcpy(x, &h.low64, 8);
    memcpy(x + 8, &h.high64, 8);
    memcpy(b, x, n);
}

void event_id_generate(int64_t ms, char out[37])
{
    uint8_t b[16];
    random_tail(b + 6, sizeof b - 6);
    uint64_t t = (uint64_t)ms & 0xffffffffffffULL;
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(t >> (8 * (5 - i)));
    b[6] = (uint8_t)(0x70 | (b[6] & 0x0f));
    b[8] = (uint8_t)(0x80 | (b[8] & 0x3f));
    char hex[33];
    core_hex(b, sizeof b, hex);
    /* 8-4-4-4-12 */
    memcpy(out, hex, 8);
    out[8] = '-';
    memcpy(out + 9, hex + 8, 4);
    out[13] = '-';
    memcpy(out + 14, hex + 12, 4);
    out[18] = '-';
    memcpy(out + 19, hex + 16, 4);
    out[23] = '-';
    memcpy(out + 24, hex + 20, 12);
    out[36] = '\0';
}
