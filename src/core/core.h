/*
 * core: small shared utilities used by every module: error codes, allocation,
 * growable buffers, arenas, JSON string writing, hashing, time and logging.
 * Nothing here knows about events, HTTP or the log.
 */
#ifndef RECSTREAM_CORE_H
#define RECSTREAM_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define RECSTREAM_VERSION "0.1.0"

/* ---- errors ------------------------------------------------------------------------------ */

/*
 * Functions return 0 on success and a negative code on failure: system errors as -errno,
 * recstream's own conditions from this table (values below -10000 never clash with errno).
 */
#define CORE_ERR_MAP(XX)                                                                           \
    XX(FULL, -10001, "queue full")                                                                 \
    XX(TOOBIG, -10002, "too large")                                                                \
    XX(CORRUPT, -10003, "corrupt data")                                                            \
    XX(PARSE, -10004, "parse error")                                                               \
    XX(INVALID, -10005, "invalid value")                                                           \
    XX(NOTFOUND, -10006, "not found")                                                              \
    XX(CLOSED, -10007, "closed")                                                                   \
    XX(TIMEOUT, -10008, "timed out")                                                               \
    XX(EXISTS, -10009, "already exists")                                                           \
    XX(FAILED, -10010, "storage failed")

enum core_err {
#define XX(name, val, msg) CORE_E_##name = (val),
    CORE_ERR_MAP(XX)
#undef XX
};

/* Returns a static message for a code from CORE_ERR_MAP or a -errno value. */
const char *core_strerror(int err);

/* ---- allocation -------------------------------------------------------------------------- */

/* Allocation that aborts with a message on out-of-memory (small, internal allocations only;
 * anything outside input can grow is bounded before it gets here). */
void *core_xmalloc(size_t n);
void *core_xcalloc(size_t count, size_t n);
void *core_xrealloc(void *p, size_t n);
/* align: a power of two; n is rounded up to a multiple of it. Free with free(). */
void *core_xaligned(size_t align, size_t n);
char *core_xstrndup(const char *s, size_t n);
char *core_xstrdup(const char *s);

/* ---- growable byte buffer ---------------------------------------------------------------- */

struct core_buf {
    char *data; /* always NUL-terminated when cap > 0 (not counted in len) */
    size_t len;
    size_t cap;
};

void core_buf_init(struct core_buf *b);
void core_buf_dispose(struct core_buf *b);
void core_buf_reset(struct core_buf *b);
void core_buf_reserve(struct core_buf *b, size_t extra);
/* append and putc are inline: with the room reserved (replies reserve theirs at once) they
 * are a copy and a store, and JSON writers call them for every string and punctuation mark. */
static inline void core_buf_append(struct core_buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap)
        core_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}
/* Inline so that the length of a literal is known at compile time. */
static inline void core_buf_puts(struct core_buf *b, const char *s)
{
    core_buf_append(b, s, strlen(s));
}
static inline void core_buf_putc(struct core_buf *b, char c)
{
    if (b->len + 2 > b->cap)
        core_buf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}
void core_buf_printf(struct core_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* One metric without labels in the Prometheus text format: HELP, TYPE (counter, gauge) and
 * the value. */
void core_buf_metric(struct core_buf *b, const char *name, const char *type, const char *help,
                     int64_t v);

/* Little-endian fixed-width and LEB128 varint writers, used by binary codecs. */
void core_buf_put_u16(struct core_buf *b, uint16_t v);
void core_buf_put_u32(struct core_buf *b, uint32_t v);
void core_buf_put_u64(struct core_buf *b, uint64_t v);
void core_buf_put_varint(struct core_buf *b, uint64_t v);

/* Readers for the same encodings. Each returns 0 and advances *p, or CORE_E_CORRUPT when
 * fewer than the needed bytes remain before end. */
int core_get_u16(const uint8_t **p, const uint8_t *end, uint16_t *v);
int core_get_u32(const uint8_t **p, const uint8_t *end, uint32_t *v);
int core_get_u64(const uint8_t **p, const uint8_t *end, uint64_t *v);
int core_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v);

static inline uint64_t core_zigzag(int64_t v)
{
    uint64_t u = (uint64_t)v;
    return (u << 1) ^ (0 - (u >> 63)); /* sign mask without a signed shift */
}
static inline int64_t core_unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* ---- arena: many small allocations freed at once; pointers stay valid until reset ------- */

struct core_arena_chunk;
struct core_arena {
    struct core_arena_chunk *head;
    size_t used; /* bytes handed out since init/reset */
};

void core_arena_init(struct core_arena *a);
void core_arena_dispose(struct core_arena *a);
/* Frees all but the first chunk and makes it empty again. */
void core_arena_reset(struct core_arena *a);
void *core_arena_alloc(struct core_arena *a, size_t n);
char *core_arena_strndup(struct core_arena *a, const char *s, size_t n);

/* ---- JSON output ------------------------------------------------------------------------- */

/* Appends s (n bytes of UTF-8) as a quoted, escaped JSON string. Invalid UTF-8 bytes are
 * written as U+FFFD so the output is always valid JSON. */
void core_json_str(struct core_buf *b, const char *s, size_t n);
/* Length of the valid UTF-8 sequence at s (n >= 1 bytes available), or 0 when invalid
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
size_t core_utf8_len(const unsigned char *s, size_t n);
void core_json_cstr(struct core_buf *b, const char *s);
/* Appends a number; non-finite doubles become null. */
void core_json_f64(struct core_buf *b, double v);
/* Appends v rounded to `decimals` (1-9) places, trailing zeros dropped ("0.25", "3", "-1.5");
 * falls back to core_json_f64 beyond +-1e15. For scores, where 17 digits are noise. */
void core_json_fixed(struct core_buf *b, double v, int decimals);
void core_json_i64(struct core_buf *b, int64_t v);

/* ---- hashing ----------------------------------------------------------------------------- */

/* Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2, seed 0x9747b28c). */
int32_t core_murmur2(const void *data, size_t len);
/* The partition Kafka's Java client picks for a key: toPositive(murmur2(key)) % partitions. */
int32_t core_partition_for_key(const void *key, size_t len, int32_t partitions);

/* Percent-decodes s[0..n) into out (room for n + 1 bytes; NUL-terminated) and returns the
 * decoded length. Malformed escapes are copied as they are; with plus_space, '+' becomes a
 * space (query strings). */
size_t core_percent_decode(const char *s, size_t n, char *out, bool plus_space);

/* Lowercase hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void core_hex(const uint8_t *in, size_t n, char *out);

/* ---- time -------------------------------------------------------------------------------- */

int64_t core_now_ms(void);  /* wall clock, ms since the epoch */
int64_t core_mono_ns(void); /* monotonic clock */
/* The absolute time ms from now on clock (for pthread_cond_timedwait: CLOCK_REALTIME, or
 * CLOCK_MONOTONIC with a condvar set up for it). */
struct timespec core_deadline_after(int clock, int64_t ms);
/* Parses an RFC 3339 date-time ("2024-01-02T03:04:05.678Z", offsets allowed) into ms since
 * the epoch. Returns 0 or CORE_E_PARSE. */
int core_rfc3339_parse(const char *s, size_t n, int64_t *out_ms);
/* Formats ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC) into out (at least 32 bytes). */
void core_rfc3339_format(int64_t ms, char *out, size_t out_size);

/* ---- parsing helpers --------------------------------------------------------------------- */

/* Strict decimal integer parse of the whole string (no sign unless allowed, no junk). */
int core_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* A unit suffix and its multiplier; tables end with a NULL name. */
struct core_unit {
    const char *name;
    int64_t mult;
};
/* Parses "<digits><unit>" where unit is one of units (case-insensitive; "" for a bare
 * number if listed), checking overflow. Returns 0 or CORE_E_INVALID. */
int core_parse_scaled(const char *s, const struct core_unit *units, int64_t *out);
/* Parses sizes like "1048576", "64k", "1MiB", "2m", "1g" into bytes. */
int core_parse_size(const char *s, int64_t *out);

/* ---- logging ----------------------------------------------------------------------------- */

/*
 * Structured logs on stderr in logfmt: ts=... level=info msg="..." key=value...
 * The level is process-wide (the one deliberate global: logging has no other owner).
 */
/* CORE_LOG_OFF, as a level only: nothing is logged (e.g. in a forked child, where another
 * thread of the parent may have held stderr's lock at the fork). */
enum core_log_level { CORE_LOG_DEBUG, CORE_LOG_INFO, CORE_LOG_WARN, CORE_LOG_ERROR, CORE_LOG_OFF };

void core_log_set_level(enum core_log_level lvl);
int core_log_parse_level(const char *s, enum core_log_level *out);
/* msg is quoted as needed; kvfmt (may be NULL) is a printf format for the key=value tail. */
void core_log(enum core_log_level lvl, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_DEBUG(msg, ...) core_log(CORE_LOG_DEBUG, msg, __VA_ARGS__)
#define LOG_INFO(msg, ...) core_log(CORE_LOG_INFO, msg, __VA_ARGS__)
#define LOG_WARN(msg, ...) core_log(CORE_LOG_WARN, msg, __VA_ARGS__)
#define LOG_ERROR(msg, ...) core_log(CORE_LOG_ERROR, msg, __VA_ARGS__)

/* ---- files ------------------------------------------------------------------------------- */

/* Writes all n bytes, retrying short writes and EINTR: at offset with pwrite, or at the file
 * position with write when offset < 0. Returns 0 or -errno. */
int core_write_full(int fd, const void *data, size_t n, int64_t offset);
/* mkdir -p with mode. */
int core_mkdirs(const char *path, unsigned mode);
/* fsync a directory (after creating, renaming or unlinking entries in it). */
int core_fsync_dir(const char *path);
/* Writes data to path atomically: temp file, fsync, rename, fsync directory. */
int core_write_file_atomic(const char *path, const void *data, size_t n, unsigned mode);
/* Reads a whole file (at most max bytes) into buf. */
int core_read_file(const char *path, size_t max, struct core_buf *buf);

#endif
