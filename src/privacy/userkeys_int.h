/*
 * Internals shared by userkeys.c and its Kafka replication (userkeys_kafka.c): the entry
 * layout and the hooks through which a store's keys live in a shared keys topic.
 */
#ifndef RECSTREAM_USERKEYS_INT_H
#define RECSTREAM_USERKEYS_INT_H

#include "privacy/userkeys.h"

/* One key: pseudonym, key id, DEK (the plaintext of a stored entry, in this order). */
struct userkeys__ent {
    char name[USERKEYS_NAME_BYTES];
    uint8_t id[SEAL_ID_BYTES];
    uint8_t dek[SEAL_KEY_BYTES];
};

#define USERKEYS__ENT_PLAIN (USERKEYS_NAME_BYTES + SEAL_ID_BYTES + SEAL_KEY_BYTES)

/*
 * Where keys are shared with other processes (the keys topic). Called with the store's writer
 * mutex held (so one call at a time per store) and no reader lock held:
 *   publish_fn: makes k new entries durable in the shared store; returns once they are (0) or
 *               with a negative error (the keys are then not created);
 *   shred_fn:   makes the removal of k key ids durable (tombstones);
 *   catch_up_fn: returns once every entry and tombstone the shared store held when it was
 *               called has been applied here (0), or CORE_E_TIMEOUT after timeout_ms.
 * catch_up_fn is also called without the writer mutex, from readers that meet an unknown id.
 */
struct userkeys__remote {
    void *ctx;
    int (*publish_fn)(void *ctx, const struct userkeys__ent *ents, size_t k);
    int (*shred_fn)(void *ctx, const uint8_t (*ids)[SEAL_ID_BYTES], size_t k);
    int (*catch_up_fn)(void *ctx, int timeout_ms);
    int catch_up_ms; /* how long a reader waits for an unknown id (and a shred for the store) */
};

/* Sets (r non-NULL) or clears the remote store; the caller keeps r->ctx alive until cleared.
 * Only while no other call on uk runs. */
void userkeys__set_remote(struct userkeys *uk, const struct userkeys__remote *r);

/* Applies an entry read from the shared store: added unless its id is known (0), also when
 * its pseudonym already has a key (two creators raced: both ids stay valid). */
void userkeys__apply(struct userkeys *uk, const struct userkeys__ent *e);

/* Applies a tombstone read from the shared store: forgets the key id (no-op when unknown). */
void userkeys__forget_id(struct userkeys *uk, const uint8_t id[SEAL_ID_BYTES]);

#endif
