/*
 * Field retention at ingest (docs/PRIVACY.md, "Field retention"): properties whose schema
 * retention class lives shorter than the event are moved out of the event's properties into a
 * sealed field bundle under the class's epoch key (privacy/fieldseal.h), after validation and
 * minimisation and before the record is encoded and sealed.
 */
#include "ingest/ingest_int.h"
#include "privacy/fieldseal.h"

#include <sodium.h>
#include <string.h>

int ingest__fields_split(struct ingest *ing, const struct schema *s, const cJSON *props,
                         struct event *ev, struct core_arena *arena)
{
    struct epochkeys *ek = ing->cfg.epochkeys;
    if (!ek || !cJSON_IsObject(props) || !props->child)
        return 0;
    bool sealed[EPOCHKEYS_CLASSES];
    for (int r = 0; r < EPOCHKEYS_CLASSES; r++)
        sealed[r] = epochkeys_class_sealed(ek, r);
    /* One bundle per event, under the shortest sealed class among its fields. */
    int cls = EPOCHKEYS_CLASSES;
    for (const cJSON *c = props->child; c; c = c->next) {
        if (!c->string)
            continue;
        int r = (int)schema_property_retention(s, c->string, strlen(c->string));
        if (r < cls && sealed[r])
            cls = r;
    }
    if (cls == EPOCHKEYS_CLASSES)
        return 0;
    cJSON *kept = cJSON_CreateObject(), *moved = cJSON_CreateObject();
    struct core_buf names, bundle;
    core_buf_init(&names);
    core_buf_init(&bundle);
    for (cJSON *c = props->child; c; c = c->next) {
        if (!c->string)
            continue;
        int r = (int)schema_property_retention(s, c->string, strlen(c->string));
        if (sealed[r]) {
            if (names.len)
                core_buf_putc(&names, ',');
            core_buf_puts(&names, c->string);
            cJSON_AddItemReferenceToObject(moved, c->string, c);
        } else {
            cJSON_AddItemReferenceToObject(kept, c->string, c);
        }
    }
    struct event_str kept_json, moved_json;
    int rc = event_properties_encode(kept, arena, &kept_json);
    if (rc == 0)
        rc = event_properties_encode(moved, arena, &moved_json);
    if (rc == 0) {
        /* Nonces come from a pool (one getrandom per 170 events); the lock is held only to
         * take one, not while sealing. */
        uint8_t nonce[SEAL_NONCE_BYTES];
        pthread_mutex_lock(&ing->nonce_mu);
        struct seal_nonces *nn = &ing->nonces;
        if (nn->used + SEAL_NONCE_BYTES > sizeof nn->pool) {
            randombytes_buf(nn->pool, sizeof nn->pool);
            nn->used = 0;
        }
        memcpy(nonce, nn->pool + nn->used, SEAL_NONCE_BYTES);
        sodium_memzero(nn->pool + nn->used, SEAL_NONCE_BYTES); /* handed out once */
        nn->used += SEAL_NONCE_BYTES;
        pthread_mutex_unlock(&ing->nonce_mu);
        rc = fieldseal_seal(ek, cls, ev->recv_ms, names.data, names.len, moved_json.ptr,
                            moved_json.len, nonce, &bundle);
    }
    if (rc == 0) {
        char *b = core_arena_alloc(arena, bundle.len);
        memcpy(b, bundle.data, bundle.len);
        ev->fields_sealed = (struct event_str){b, bundle.len};
        ev->properties_json = kept_json;
        atomic_fetch_add(&ing->sealed_fields, 1);
    } else {
        LOG_ERROR("cannot seal fields of a short retention class; event refused", "err=\"%s\"",
                  core_strerror(rc));
        rc = CORE_E_FAILED;
    }
    cJSON_Delete(kept); /* references only */
    cJSON_Delete(moved);
    core_buf_dispose(&names);
    core_buf_dispose(&bundle);
    return rc;
}
