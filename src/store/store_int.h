/* store internals shared by store_conn.c, store_publish.c and store_serve.c. */
#ifndef RECSTREAM_STORE_INT_H
#define RECSTREAM_STORE_INT_H

#include "store/store.h"

#include <hiredis/hiredis.h>

#define STORE_FORMAT 2 /* 2: aggregate images carry co-occurrence rows */
/* Commands in flight at most before the publisher reads replies (bounds both buffers). */
#define STORE_PIPELINE_MAX 1024

#define STORE_KEY_CONFIG "rs:{meta}:config"
#define STORE_KEY_CATALOG "rs:{catalog}:items"
#define STORE_KEY_CATALOG_META "rs:{catalog}:meta"
/* Key of user key u / of partition p's object ("users", "agg", "meta"), NUL-terminated. */
void store__user_key(char *out, size_t size, const char *user_key);
void store__part_key(char *out, size_t size, int32_t p, const char *what);

/* A blocking connection (1 s connect and command timeouts). NULL (logged) on failure. */
redisContext *store__connect(const struct store_addr *a);

/* A pipeline: commands appended, replies read later, each reply checked. */
struct store_pipe {
    redisContext *c;
    int pending;
    int errors; /* error replies and I/O failures */
};
void store__pipe_init(struct store_pipe *pp, redisContext *c);
/* Appends a command (argv form: binary-safe); reads replies when STORE_PIPELINE_MAX are pending.*/
void store__pipe_cmd(struct store_pipe *pp, int argc, const char **argv, const size_t *lens);
/* Reads every pending reply. Returns 0 or CORE_E_FAILED (some command or the connection failed;
 * after an I/O failure the context is unusable). */
int store__pipe_drain(struct store_pipe *pp);

/* The catalog's live items as NDJSON, in idx order (store_catalog.c). */
void store__catalog_blob(struct catalog *cat, struct core_buf *out);
/* Makes cat hold exactly the blob's items. CORE_E_CORRUPT (a bad line: nothing changed) or
 * CORE_E_FAILED (the catalog's journal could not be written). */
int store__catalog_apply(struct catalog *cat, const char *data, size_t len);

#endif
