/* The registered event types, event initialisation and UUIDv7 event ids. */
#include "event.h"

#include <string.h>

#include <sodium.h>

static const struct event_type_info types[EVENT_TYPE__COUNT] = {
#define XX(id, name, weight, item) {name, weight, item},
    EVENT_TYPE_MAP(XX)
#undef XX
};

const struct event_type_info *event_type_get(int type)
{
    if (type < 0 || type >= EVENT_TYPE__COUNT)
        return NULL;
    return &types[type];
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
 */
void event_id_generate(int64_t ms, char out[37])
{
    uint8_t b[16];
    randombytes_buf(b + 6, sizeof b - 6);
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
