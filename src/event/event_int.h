/*
 * Internals shared by the files of the event module: UTF-8 validation and the compact JSON
 * writer that serialises context / properties into the caller's arena.
 */
#ifndef RECSTREAM_EVENT_INT_H
#define RECSTREAM_EVENT_INT_H

#include "event.h"

/* True when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF). */
bool event__utf8_valid(const char *s, size_t n);

/*
 * A compact JSON writer that validates while it writes. It writes into buf while the output
 * fits in cap bytes and keeps counting past that, so a caller can try a small buffer first
 * and, when the value turns out bigger, run the same walk again into an exactly sized arena
 * block. This keeps the decoder free of per-event heap allocations. Walks stop with
 * CORE_E_TOOBIG once more than max bytes would be written.
 */
struct event__jw {
    char *buf;          /* may be NULL (cap 0): count only */
    size_t cap;         /* capacity of buf */
    size_t len;         /* bytes written, or that would have been written */
    size_t max;         /* size limit of the value */
    const char *reason; /* why a value was refused (static string) */
};

void event__jw_init(struct event__jw *w, char *buf, size_t cap, size_t max);
void event__jw_raw(struct event__jw *w, const char *s, size_t n);
/* Writes a JSON string; refuses invalid UTF-8 (CORE_E_INVALID, w->reason set). */
int event__jw_str(struct event__jw *w, const char *s, size_t n);
/* Writes a number (shortest round-trip form); refuses NaN and infinities. */
int event__jw_num(struct event__jw *w, double v);
/* Writes a scalar (string, number, bool, null); CORE_E_INVALID for objects and arrays. */
int event__jw_scalar(struct event__jw *w, const cJSON *item);
/* Writes any JSON value, recursively. Returns 0, CORE_E_INVALID (w->reason set) or
 * CORE_E_TOOBIG once more than max bytes would be written. */
int event__jw_value(struct event__jw *w, const cJSON *item);

#endif
