/*
 * deadletter: a bounded, persistent store for events the collector rejected, so they are not
 * silently lost. Each entry holds the (already pseudonymised) event, its validation errors,
 * where it came from and when; operators list entries and re-submit them once a schema is
 * fixed (deadletter_take).
 *
 * Storage. The directory holds segment files named "<first-id>.ndjson" (mode 0600), each a
 * sequence of NDJSON lines (each sealed under the data key when options.key is set: the
 * raw rejected bodies can hold personal data), appended with O_APPEND and never rewritten:
 *
 *   {"id":7,"receivedAt":1700000000000,"source":"/v1/events","errors":[...],"event":{...}}
 *   {"removed":[3,5]}           entries taken (re-ingested) and therefore gone
 *   {"droppedThrough":4}        entries up to this id were dropped by the max_entries bound
 *
 * A new segment starts when the current one would grow past max_bytes / 4. Opening reads all
 * segments in order, applies the "removed" and "droppedThrough" lines, and ignores a torn
 * last line (a crash in the middle of an append): it is logged and cut off, so later appends
 * start on a clean line. Ids are assigned in increasing order and never reused, also across
 * restarts (the newest segment is never deleted, so the highest id survives). Appends are
 * not fsynced: entries survive a process crash, not necessarily a power loss.
 *
 * Bounds. max_entries bounds the live entries: an add beyond it drops the oldest entry
 * (counted in "dropped", persisted with a "droppedThrough" line written in the same append).
 * max_bytes bounds the files on disk: when their total passes it, the whole oldest segment is
 * deleted and its remaining live entries count as dropped, so the directory never holds much
 * more than max_bytes, and the live entries drop by about a quarter at a time (lines of taken
 * entries keep counting until their segment goes: no file is ever rewritten). A segment
 * whose entries were all taken or dropped is deleted once it is the oldest: segments are only
 * deleted oldest first, so a "removed" or "droppedThrough" line is never deleted before the
 * entries it refers to. Live entries are kept in memory as their lines, which are a subset of
 * the files, so memory is bounded by max_bytes too.
 *
 * Threads: every function may be called from any thread; one mutex guards the store (takes
 * are also serialised among themselves and call back without the lock held). An add
 * costs one JSON validity check (outside the lock), one formatted line and one writev(2).
 */
#ifndef RECSTREAM_DEADLETTER_H
#define RECSTREAM_DEADLETTER_H

#include "core/core.h"
#include "privacy/seal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct deadletter_options {
    const char *dir; /* directory for the segment files (e.g. "data/deadletters") */
    /* Optional (copied): seals every line on disk (seal_line, AD = segment and line number);
     * a line that does not open is skipped and logged like any corrupt line. */
    const struct seal_key *key;
    int64_t max_entries; /* live entries kept; default 10000, 1 .. 10000000 */
    int64_t max_bytes;   /* bytes kept on disk; default 64 MiB, at least 4096 */
};

/* Sets the defaults (dir NULL: the caller must set it). */
void deadletter_options_init(struct deadletter_options *o);

struct deadletters;

/*
 * Opens the store in o->dir, creating it (0700) if missing, and loads the entries there;
 * lines that are corrupt (not a torn tail) are skipped and logged. If the bounds in o are
 * smaller than what is stored, the oldest entries are dropped. o and o->dir are copied.
 * Returns 0 and sets *out, CORE_E_INVALID for bad options, or -errno.
 */
int deadletter_open(const struct deadletter_options *o, struct deadletters **out);

/* Closes the files and frees the store (NULL is fine). No call may be running. */
void deadletter_free(struct deadletters *d);

/*
 * Stores a rejected event and appends it to the current segment. event_json (event_len bytes)
 * must be one JSON object and errors_json one JSON array, both on a single line (compact);
 * source is a NUL-terminated string such as "/v1/events". All are copied. On success sets
 * *id_out (may be NULL) to the new entry's id and may drop the oldest entries to stay within
 * the bounds. Returns 0, CORE_E_INVALID (not a JSON object/array, or contains a line break),
 * CORE_E_TOOBIG (the line would be larger than max_bytes / 4), or -errno when the append
 * failed (nothing is stored then).
 */
int deadletter_add(struct deadletters *d, int64_t received_ms, const char *source,
                   const char *event_json, size_t event_len, const char *errors_json,
                   size_t errors_len, int64_t *id_out);

/*
 * Appends to out, oldest first, the live entries with id > after_id, at most limit of them
 * (limit is capped at 1000; 0 lists none, which still reports the counts):
 *   {"deadletters":[{"id":..,"receivedAt":..,"source":..,"errors":[..],"event":{..}},...],
 *    "count":n,"total":live,"dropped":D,"nextAfter":id-of-the-last-listed-entry-or-null}
 * "dropped" counts entries dropped by the bounds since this process opened the store. Pass
 * nextAfter back as after_id for the next page. Returns 0.
 */
int deadletter_list_json(struct deadletters *d, int64_t after_id, size_t limit,
                         struct core_buf *out);

/*
 * Replay callback: re-ingests one event (event_json is len bytes, not NUL-terminated, valid
 * only during the call) and returns true when that succeeded, which removes the entry.
 */
typedef bool (*deadletter_take_fn)(void *arg, int64_t id, const char *event_json, size_t len);

/*
 * Calls fn for each live entry whose id is among ids[0..n) (each at most once, oldest first),
 * or for every entry live when the call starts if n == 0, and removes, persistently, the
 * entries for which fn returned true; the others stay. fn runs without the store's lock held,
 * in chunks, so adds continue meanwhile; takes run one at a time. fn may call deadletter_add,
 * _list_json and _stats, but must not call deadletter_take. Returns the number of entries
 * removed, CORE_E_INVALID (fn NULL, or ids NULL with n > 0), or -errno when writing the
 * "removed" line failed (the entries of that chunk then stay and may be offered again).
 */
int deadletter_take(struct deadletters *d, const int64_t *ids, size_t n, deadletter_take_fn fn,
                    void *arg);

/* Erasure: whether a plaintext line (len bytes, no newline) belongs to the user. */
typedef bool (*deadletter_match_fn)(void *arg, const char *line, size_t len);

/*
 * Removes from the files every line fn matches (entries, taken or live, and any other line):
 * each segment holding one is rewritten without it (lines sealed again under new numbers;
 * temporary file, fsync, rename, then the directory fsynced), so nothing of those lines is
 * left in the directory's files (filesystem remanence aside). Matching live entries leave
 * the store. Lines that no longer open are dropped too. Blocks adds and takes while it runs
 * (one segment read at a time: memory is bounded by the segment size). Returns the number of
 * lines removed, CORE_E_INVALID, or -errno (segments already rewritten stay rewritten).
 */
int deadletter_purge(struct deadletters *d, deadletter_match_fn fn, void *arg);

/* Reads the counters; each pointer may be NULL. live: entries stored now; total_added and
 * dropped: entries added and dropped by the bounds since this process opened the store. */
void deadletter_stats(struct deadletters *d, int64_t *live, int64_t *total_added, int64_t *dropped);

#endif
