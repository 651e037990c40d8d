/*
 * Item metadata between nodes: the processor's catalog as one NDJSON blob (catalog_item_json
 * per live item, in idx order) under rs:{catalog}:items, versioned by rs:{catalog}:meta; an
 * API node applies it to its own catalog (a cache in its data directory): every published
 * item is put (one bulk, one journal write) and local items the blob no longer names are
 * deleted. Catalog edits are rare and whole-catalog blobs keep the API node's copy exactly
 * the processor's; per-item keys would suit catalogs of millions of items better (not needed
 * yet: docs/ARCHITECTURE.md).
 */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

void store__catalog_blob(struct catalog *cat, struct core_buf *out)
{
    catalog_read_begin(cat);
    uint32_t n = catalog_capacity(cat);
    for (uint32_t i = 0; i < n; i++) {
        const struct catalog_item *it = catalog_at(cat, i);
        if (!it)
            continue;
        catalog_item_json(cat, it, out);
        core_buf_putc(out, '\n');
    }
    catalog_read_end(cat);
}

/* Ids the blob names, sorted, to find local items to delete. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int store__catalog_apply(struct catalog *cat, const char *data, size_t len)
{
    size_t cap = 64, n = 0;
    cJSON **objs = core_xmalloc(cap * sizeof *objs);
    const char *p = data, *end = data + len;
    int rc = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (l > 0) {
            cJSON *o = cJSON_ParseWithLength(p, l);
            if (!cJSON_IsObject(o) ||
                !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "itemId"))) {
                cJSON_Delete(o);
                rc = CORE_E_CORRUPT;
                break;
            }
            cJSON_DeleteItemFromObjectCaseSensitive(o, "updatedAt");
            if (n == cap) {
                cap *= 2;
                objs = core_xrealloc(objs, cap * sizeof *objs);
            }
            objs[n++] = o;
        }
        p += l + 1;
    }
    struct catalog_put_req *reqs = core_xcalloc(n ? n : 1, sizeof *reqs);
    const char **ids = core_xcalloc(n ? n : 1, sizeof *ids);
    for (size_t i = 0; i < n && rc == 0; i++) {
        reqs[i].obj = objs[i];
        ids[i] = cJSON_GetObjectItemCaseSensitive(objs[i], "itemId")->valuestring;
    }
    if (rc == 0 && n > 0 && catalog_put_many(cat, reqs, n) < 0)
        rc = CORE_E_FAILED;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (reqs[i].rc < 0) {
            LOG_WARN("a published catalog item was refused", "item=\"%s\" err=\"%s\"", ids[i],
                     core_strerror(reqs[i].rc));
        }
    if (rc == 0) { /* local items the processor no longer has */
        qsort(ids, n, sizeof *ids, cmp_str);
        char **gone = NULL;
        size_t ngone = 0, gcap = 0;
        catalog_read_begin(cat);
        for (uint32_t i = 0, cn = catalog_capacity(cat); i < cn; i++) {
            const struct catalog_item *it = catalog_at(cat, i);
            if (!it || bsearch(&it->id, ids, n, sizeof *ids, cmp_str))
                continue;
            if (ngone == gcap) {
                gcap = gcap ? 2 * gcap : 16;
                gone = core_xrealloc(gone, gcap * sizeof *gone);
            }
            gone[ngone++] = core_xstrdup(it->id);
        }
        catalog_read_end(cat);
        for (size_t i = 0; i < ngone; i++) {
            catalog_delete(cat, gone[i], strlen(gone[i]));
            free(gone[i]);
        }
        free(gone);
    }
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(objs[i]);
    free(objs);
    free(reqs);
    free(ids);
    return rc;
}
