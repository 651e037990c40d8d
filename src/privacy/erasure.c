/*
 * Erasure receipts (format and threading in erasure.h). Receipts are few and small: all are
 * kept in memory (bounded by ERASURE_MAX) and each change rewrites its one file.
 */
#include "privacy/erasure.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const step_names[ERASURE_STEPS] = {"forget", "shred", "consent", "deadletters",
                                                      "checkpoint"};
static const char *const status_names[] = {"pending", "complete", "failed"};

const char *erasure_step_name(enum erasure_step step)
{
    return step_names[step];
}

const char *erasure_status_name(enum erasure_status st)
{
    return status_names[st];
}

struct erasures {
    pthread_mutex_t mu;
    char *dir;
    struct seal_key key;
    struct erasure_receipt *rs; /* in creation order (load: file order by requested time) */
    size_t n, cap;
};

static void file_path(const struct erasures *e, const char *id, char *out, size_t size)
{
    snprintf(out, size, "%s/%s.rcpt", e->dir, id);
}

static void file_ad(const char *id, char *out, size_t size)
{
    snprintf(out, size, "recstream erasure %s", id);
}

static void write_public(const struct erasure_receipt *r, struct core_buf *o)
{
    core_buf_puts(o, "{\"erasureId\":");
    core_json_cstr(o, r->id);
    core_buf_printf(o, ",\"status\":\"%s\",\"idType\":\"%s\",\"requested\":%lld,\"completed\":",
                    erasure_status_name(r->status), r->anon ? "anonymous" : "user",
                    (long long)r->requested_ms);
    if (r->completed_ms)
        core_buf_printf(o, "%lld", (long long)r->completed_ms);
    else
        core_buf_puts(o, "null");
    core_buf_puts(o, ",\"steps\":[");
    bool first = true;
    for (int i = 0; i < ERASURE_STEPS; i++) {
        if (!r->step_ms[i])
            continue;
        core_buf_printf(o, "%s{\"step\":\"%s\",\"done\":%lld}", first ? "" : ",", step_names[i],
                        (long long)r->step_ms[i]);
        first = false;
    }
    core_buf_puts(o, "],\"error\":");
    if (r->error[0])
        core_json_cstr(o, r->error);
    else
        core_buf_puts(o, "null");
}

void erasure_receipt_json(const struct erasure_receipt *r, struct core_buf *out)
{
    write_public(r, out);
    core_buf_putc(out, '}');
}

/* The stored form: the public object plus the subject and, while pending, the user. */
static int store(struct erasures *e, const struct erasure_receipt *r)
{
    struct core_buf plain, sealed;
    core_buf_init(&plain);
    core_buf_init(&sealed);
    write_public(r, &plain);
    core_buf_puts(&plain, ",\"subject\":");
    core_json_cstr(&plain, r->subject);
    if (r->status != ERASURE_COMPLETE) {
        core_buf_puts(&plain, ",\"pending\":{\"key\":");
        core_json_cstr(&plain, r->key);
        core_buf_puts(&plain, ",\"id\":");
        core_json_str(&plain, r->raw, r->raw_len);
        core_buf_putc(&plain, '}');
    }
    core_buf_putc(&plain, '}');
    char ad[96], path[4200];
    file_ad(r->id, ad, sizeof ad);
    seal_file(&e->key, ad, plain.data, plain.len, &sealed);
    file_path(e, r->id, path, sizeof path);
    int rc = core_write_file_atomic(path, sealed.data, sealed.len, 0600);
    sodium_memzero(plain.data, plain.cap);
    core_buf_dispose(&plain);
    core_buf_dispose(&sealed);
    return rc;
}

static bool hex_field(const cJSON *o, const char *name, char *out, size_t len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsString(v) || strlen(v->valuestring) != len)
        return false;
    memcpy(out, v->valuestring, len + 1);
    return true;
}

static int64_t num_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

/* Parses a stored receipt; false when something required is missing. */
static bool parse(const char *s, size_t n, struct erasure_receipt *r)
{
    memset(r, 0, sizeof *r);
    cJSON *j = cJSON_ParseWithLength(s, n);
    bool ok = false;
    if (!cJSON_IsObject(j) || !hex_field(j, "erasureId", r->id, ERASURE_ID_HEX) ||
        !hex_field(j, "subject", r->subject, ERASURE_KEY_HEX))
        goto out;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
    const cJSON *idt = cJSON_GetObjectItemCaseSensitive(j, "idType");
    if (!cJSON_IsString(st) || !cJSON_IsString(idt))
        goto out;
    int k;
    for (k = 0; k < 3 && strcmp(st->valuestring, status_names[k]); k++)
        ;
    if (k == 3)
        goto out;
    r->status = (enum erasure_status)k;
    r->anon = !strcmp(idt->valuestring, "anonymous");
    r->requested_ms = num_field(j, "requested");
    r->completed_ms = num_field(j, "completed");
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(j, "steps"), *s1;
    cJSON_ArrayForEach(s1, steps)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(s1, "step");
        for (int i = 0; cJSON_IsString(name) && i < ERASURE_STEPS; i++)
            if (!strcmp(name->valuestring, step_names[i]))
                r->step_ms[i] = num_field(s1, "done");
    }
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (cJSON_IsString(err))
        snprintf(r->error, sizeof r->error, "%s", err->valuestring);
    if (r->status != ERASURE_COMPLETE) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "pending");
        const cJSON *raw = cJSON_GetObjectItemCaseSensitive(p, "id");
        if (!hex_field(p, "key", r->key, ERASURE_KEY_HEX) || !cJSON_IsString(raw) ||
            strlen(raw->valuestring) > ERASURE_RAW_MAX)
            goto out;
        r->raw_len = strlen(raw->valuestring);
        memcpy(r->raw, raw->valuestring, r->raw_len + 1);
    }
    ok = true;
out:
    cJSON_Delete(j);
    return ok;
}

static void push(struct erasures *e, const struct erasure_receipt *r)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 16;
        e->rs = core_xrealloc(e->rs, e->cap * sizeof *e->rs);
    }
    e->rs[e->n++] = *r;
}

static int load_one(struct erasures *e, const char *name)
{
    char path[4200], ad[96], id[ERASURE_ID_HEX + 1];
    snprintf(id, sizeof id, "%.*s", ERASURE_ID_HEX, name);
    snprintf(path, sizeof path, "%s/%s", e->dir, name);
    struct core_buf b, plain;
    core_buf_init(&b);
    core_buf_init(&plain);
    int rc = core_read_file(path, 1 << 20, &b);
    if (rc == 0) {
        file_ad(id, ad, sizeof ad);
        struct erasure_receipt r;
        rc = seal_file_open(&e->key, ad, b.data, b.len, &plain) == 0 &&
                     parse(plain.data, plain.len, &r) && !strcmp(r.id, id)
                 ? 0
                 : CORE_E_CORRUPT;
        if (rc == 0)
            push(e, &r);
    }
    if (rc < 0)
        LOG_ERROR("erasure receipt cannot be read", "file=%s err=\"%s\"", path, core_strerror(rc));
    if (plain.data)
        sodium_memzero(plain.data, plain.cap);
    core_buf_dispose(&plain);
    core_buf_dispose(&b);
    return rc;
}

static int cmp_requested(const void *a, const void *b)
{
    const struct erasure_receipt *x = a, *y = b;
    return (x->requested_ms > y->requested_ms) - (x->requested_ms < y->requested_ms);
}

int erasures_open(const char *dir, const struct seal_key *data_key, struct erasures **out)
{
    int rc = core_mkdirs(dir, 0700);
    if (rc < 0)
        return rc;
    struct erasures *e = core_xcalloc(1, sizeof *e);
    pthread_mutex_init(&e->mu, NULL);
    e->dir = core_xstrdup(dir);
    e->key = *data_key;
    DIR *d = opendir(dir);
    if (!d) {
        rc = -errno;
        goto out;
    }
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len == ERASURE_ID_HEX + 5 && !strcmp(de->d_name + ERASURE_ID_HEX, ".rcpt"))
            rc = e->n >= ERASURE_MAX ? CORE_E_FULL : load_one(e, de->d_name);
    }
    closedir(d);
    if (e->n)
        qsort(e->rs, e->n, sizeof *e->rs, cmp_requested);
out:
    if (rc < 0) {
        erasures_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

void erasures_free(struct erasures *e)
{
    if (!e)
        return;
    if (e->rs)
        sodium_memzero(e->rs, e->cap * sizeof *e->rs);
    free(e->rs);
    seal_key_dispose(&e->key);
    pthread_mutex_destroy(&e->mu);
    free(e->dir);
    free(e);
}

static struct erasure_receipt *find(struct erasures *e, const char *id)
{
    for (size_t i = 0; i < e->n; i++)
        if (!strcmp(e->rs[i].id, id))
            return &e->rs[i];
    return NULL;
}

int erasures_create(struct erasures *e, const char *key, const char *raw, size_t raw_len, bool anon,
                    const char *subject, struct erasure_receipt *out)
{
    if (strlen(key) != ERASURE_KEY_HEX || strlen(subject) != ERASURE_KEY_HEX ||
        raw_len > ERASURE_RAW_MAX)
        return CORE_E_INVALID;
    struct erasure_receipt r;
    memset(&r, 0, sizeof r);
    uint8_t rnd[ERASURE_ID_HEX / 2];
    randombytes_buf(rnd, sizeof rnd);
    core_hex(rnd, sizeof rnd, r.id);
    memcpy(r.subject, subject, ERASURE_KEY_HEX + 1);
    memcpy(r.key, key, ERASURE_KEY_HEX + 1);
    memcpy(r.raw, raw, raw_len);
    r.raw_len = raw_len;
    r.anon = anon;
    r.status = ERASURE_PENDING;
    r.requested_ms = core_now_ms();
    pthread_mutex_lock(&e->mu);
    int rc = e->n >= ERASURE_MAX ? CORE_E_FULL : store(e, &r);
    if (rc == 0) {
        push(e, &r);
        *out = r;
    }
    pthread_mutex_unlock(&e->mu);
    sodium_memzero(&r, sizeof r);
    return rc;
}

int erasures_update(struct erasures *e, const struct erasure_receipt *r)
{
    pthread_mutex_lock(&e->mu);
    struct erasure_receipt *cur = find(e, r->id);
    int rc = cur ? store(e, r) : CORE_E_NOTFOUND;
    if (rc == 0) {
        *cur = *r;
        if (cur->status == ERASURE_COMPLETE) {
            sodium_memzero(cur->key, sizeof cur->key);
            sodium_memzero(cur->raw, sizeof cur->raw);
            cur->raw_len = 0;
        }
    }
    pthread_mutex_unlock(&e->mu);
    return rc;
}

int erasures_get(struct erasures *e, const char *id, struct erasure_receipt *out)
{
    pthread_mutex_lock(&e->mu);
    struct erasure_receipt *r = find(e, id);
    if (r)
        *out = *r;
    pthread_mutex_unlock(&e->mu);
    return r ? 0 : CORE_E_NOTFOUND;
}

int erasures_next_pending(struct erasures *e, struct erasure_receipt *out)
{
    int rc = CORE_E_NOTFOUND;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->n && rc; i++) {
        if (e->rs[i].status != ERASURE_COMPLETE) {
            *out = e->rs[i];
            rc = 0;
        }
    }
    pthread_mutex_unlock(&e->mu);
    return rc;
}

void erasures_of_subject_json(struct erasures *e, const char *subject, struct core_buf *out)
{
    core_buf_putc(out, '[');
    bool first = true;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->n; i++) {
        if (strcmp(e->rs[i].subject, subject))
            continue;
        if (!first)
            core_buf_putc(out, ',');
        erasure_receipt_json(&e->rs[i], out);
        first = false;
    }
    pthread_mutex_unlock(&e->mu);
    core_buf_putc(out, ']');
}
