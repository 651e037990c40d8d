/* Internals shared by the files of the ingest module. */
#ifndef RECSTREAM_INGEST_INT_H
#define RECSTREAM_INGEST_INT_H

#include "ingest/ingest.h"

/*
 * The dedup window: remembers the 128-bit hash of recent eventIds with where they were
 * stored. Bounded: at most max entries (the oldest is forgotten first) and entries older
 * than window_ms expire. Open addressing with linear probing over an index table; entries
 * live in a ring in insertion order, which makes expiry and eviction O(1).
 * Not thread-safe: the ingest mutex guards it.
 */
struct dedup_entry {
    uint64_t h1, h2;
    int64_t time_ms;
    int32_t partition;
    int64_t offset;
    struct ingest_group *group; /* non-NULL while the original's append is in flight */
    size_t group_index;         /* which record of that group */
    bool live;
};

struct dedup {
    struct dedup_entry *ring;
    size_t max;      /* ring capacity */
    size_t head;     /* next slot to write */
    size_t count;    /* live + dead entries between tail and head */
    size_t live;
    uint32_t *table; /* ring index + 1; 0 = empty */
    size_t table_mask;
    int64_t window_ms;
    uint64_t evicted;
};

void ingest__dedup_init(struct dedup *d, size_t max, int64_t window_ms);
void ingest__dedup_dispose(struct dedup *d);
/* Hash of an eventId. */
void ingest__dedup_hash(const char *id, size_t n, uint64_t *h1, uint64_t *h2);
/* Finds a live entry or NULL. */
struct dedup_entry *ingest__dedup_find(struct dedup *d, uint64_t h1, uint64_t h2);
/* Inserts (evicting the oldest entry when full); returns the new entry. */
struct dedup_entry *ingest__dedup_insert(struct dedup *d, uint64_t h1, uint64_t h2,
                                         int64_t time_ms);
/* Forgets an entry (e.g. its append was refused). */
void ingest__dedup_remove(struct dedup *d, struct dedup_entry *e);
/* Drops entries older than now_ms - window. */
void ingest__dedup_expire(struct dedup *d, int64_t now_ms);

#endif
