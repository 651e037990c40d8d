/* Helpers shared by the state tests: building events and comparing dumps. */
#ifndef RECSTREAM_STATE_TEST_UTIL_H
#define RECSTREAM_STATE_TEST_UTIL_H

#include "event/event.h"
#include "state/state.h"

#include <stdio.h>
#include <string.h>

/* An event of type for user (a short name, padded to a 32-hex key) on item (NULL: none). */
static inline struct event tu_event(const char *user, const char *item, int type, int64_t ts)
{
    struct event ev;
    event_init(&ev);
    if (user) {
        size_t n = strlen(user);
        memset(ev.user_key, '0', EVENT_KEY_HEX);
        memcpy(ev.user_key + EVENT_KEY_HEX - n, user, n);
        ev.user_key[EVENT_KEY_HEX] = '\0';
    }
    if (item) {
        ev.item_id.ptr = item;
        ev.item_id.len = strlen(item);
    }
    ev.type = type;
    ev.ts_ms = ts;
    ev.recv_ms = ts;
    return ev;
}

static inline void tu_key(const char *user, char out[EVENT_KEY_HEX + 1])
{
    size_t n = strlen(user);
    memset(out, '0', EVENT_KEY_HEX);
    memcpy(out + EVENT_KEY_HEX - n, user, n);
    out[EVENT_KEY_HEX] = '\0';
}

static inline void tu_dump(struct state_shard *s, struct core_buf *b)
{
    core_buf_reset(b);
    state_shard_dump(s, b);
}

#endif
