/* Per-user keys for the records of a batch (encryption at rest, privacy/userkeys.h). */
#include "ingest/ingest_int.h"

#include <sodium.h>
#include <stdlib.h>

int ingest__seal_keys(struct ingest *ing, struct ingest_batch *b)
{
    if (!ing->cfg.userkeys || b->nrecs == 0)
        return 0; /* records are sealed under the log's data key */
    const char **names = core_xmalloc(b->nrecs * sizeof *names);
    for (size_t j = 0; j < b->nrecs; j++)
        names[j] = b->recs[j].key; /* the pseudonym, EVENT_KEY_HEX == USERKEYS_NAME_BYTES */
    b->seals = core_xmalloc(b->cap * sizeof *b->seals); /* b->cap >= b->nrecs: wiped whole */
    int rc = userkeys_acquire(ing->cfg.userkeys, names, b->nrecs, b->seals);
    free(names);
    if (rc < 0) {
        /* Nothing of the batch can be stored: its new users have no durable key. */
        LOG_ERROR("cannot issue user keys; batch refused", "records=%zu err=\"%s\"", b->nrecs,
                  core_strerror(rc));
        for (size_t j = 0; j < b->nrecs; j++)
            if (b->rec_item[j] != SIZE_MAX)
                b->items[b->rec_item[j]].status = CORE_E_FAILED;
        atomic_fetch_add(&ing->failed, b->nrecs);
        b->nrecs = 0;
        return rc;
    }
    for (size_t j = 0; j < b->nrecs; j++)
        b->recs[j].seal = &b->seals[j];
    return 0;
}

void ingest__seal_dispose(struct ingest_batch *b)
{
    if (b->seals)
        sodium_memzero(b->seals, sizeof *b->seals * b->cap);
    free(b->seals);
    b->seals = NULL;
}
