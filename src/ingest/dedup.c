/* The bounded dedup window of recent eventIds (see ingest_int.h). */
#include "ingest/ingest_int.h"

#include <stdlib.h>
#include <xxhash.h>

void ingest__dedup_init(struct dedup *d, size_t max, int64_t window_ms)
{
    if (max < 16)
        max = 16;
    d->max = max;
    d->ring = core_xcalloc(max, sizeof *d->ring);
    d->head = 0;
    d->count = 0;
    d->live = 0;
    size_t tsize = 16;
    while (tsize < 2 * max)
        tsize *= 2;
    d->table = core_xcalloc(tsize, sizeof *d->table);
    d->table_mask = tsize - 1;
    d->window_ms = window_ms;
    d->evicted = 0;
}

void ingest__dedup_dispose(struct dedup *d)
{
    free(d->ring);
    free(d->table);
    d->ring = NULL;
    d->table = NULL;
}

void ingest__dedup_hash(const char *id, size_t n, uint64_t *h1, uint64_t *h2)
{
    XXH128_hash_t h = XXH3_128bits(id, n);
    *h1 = h.low64;
    *h2 = h.high64;
}

struct dedup_entry *ingest__dedup_find(struct dedup *d, uint64_t h1, uint64_t h2)
{
    for (size_t pos = h1 & d->table_mask;; pos = (pos + 1) & d->table_mask) {
        uint32_t v = d->table[pos];
        if (v == 0)
            return NULL;
        struct dedup_entry *e = &d->ring[v - 1];
        if (e->h1 == h1 && e->h2 == h2)
            return e;
    }
}

/* Removes ring index idx from the table; backward-shift keeps probe chains intact. */
static void table_delete(struct dedup *d, size_t idx)
{
    struct dedup_entry *e = &d->ring[idx];
    size_t pos = e->h1 & d->table_mask;
    while (d->table[pos] != idx + 1) {
        pos = (pos + 1) & d->table_mask;
    }
    size_t hole = pos;
    for (size_t next = (hole + 1) & d->table_mask; d->table[next];
         next = (next + 1) & d->table_mask) {
        size_t home = d->ring[d->table[next] - 1].h1 & d->table_mask;
        /* Move next into the hole unless its home lies cyclically in (hole, next]. */
        bool in_range =
            hole <= next ? (home > hole && home <= next) : (home > hole || home <= next);
        if (!in_range) {
            d->table[hole] = d->table[next];
            hole = next;
        }
    }
    d->table[hole] = 0;
}

static size_t tail_index(const struct dedup *d)
{
    return (d->head + d->max - d->count) % d->max;
}

static void pop_tail(struct dedup *d)
{
    size_t idx = tail_index(d);
    struct dedup_entry *e = &d->ring[idx];
    if (e->live) {
        table_delete(d, idx);
        e->live = false;
        d->live--;
    }
    d->count--;
}

struct dedup_entry *ingest__dedup_insert(struct dedup *d, uint64_t h1, uint64_t h2, int64_t time_ms)
{
    if (d->count == d->max) {
        if (d->ring[tail_index(d)].live)
            d->evicted++;
        pop_tail(d);
    }
    size_t idx = d->head;
    struct dedup_entry *e = &d->ring[idx];
    *e = (struct dedup_entry){
        .h1 = h1, .h2 = h2, .time_ms = time_ms, .live = true, .partition = -1, .offset = -1};
    size_t pos = h1 & d->table_mask;
    while (d->table[pos])
        pos = (pos + 1) & d->table_mask;
    d->table[pos] = (uint32_t)(idx + 1);
    d->head = (d->head + 1) % d->max;
    d->count++;
    d->live++;
    return e;
}

void ingest__dedup_remove(struct dedup *d, struct dedup_entry *e)
{
    if (!e->live)
        return;
    table_delete(d, (size_t)(e - d->ring));
    e->live = false;
    d->live--;
}

void ingest__dedup_expire(struct dedup *d, int64_t now_ms)
{
    int64_t cutoff = now_ms - d->window_ms;
    while (d->count > 0) {
        struct dedup_entry *e = &d->ring[tail_index(d)];
        if (e->live && (e->time_ms >= cutoff || e->group))
            break;
        pop_tail(d);
    }
}
