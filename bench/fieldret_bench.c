/*
 * fieldret_bench: what field retention costs at ingest. The real pipeline (decode, schema
 * validation, pseudonymisation, dedup, per-user keys, append to a file log with fsync none)
 * is run over the same batches of events whose schema marks one property "x-retention":
 * "short", A without an epoch key store (the property stays in the record) and B with one
 * (it is moved into a sealed field bundle). Runs alternate A and B; prints ns per event,
 * median [fastest run] of each, and the bytes per record.
 *
 * Not built by CMake. From the repository root, against the release build of the library:
 *
 *   cmake -S . -B /tmp/fr-rel -DCMAKE_BUILD_TYPE=Release -DRECSTREAM_TESTS=OFF \
 *       && cmake --build /tmp/fr-rel -j2 --target recstream_lib
 *   gcc -std=c11 -O2 -D_GNU_SOURCE -Isrc -o /tmp/fieldret_bench bench/fieldret_bench.c \
 *       /tmp/fr-rel/librecstream_lib.a $(pkg-config --libs libcjson libpcre2-8 libxxhash \
 *       libsodium nettle libzstd) -lpthread -lm
 *   /tmp/fieldret_bench [batches per run] [runs]
 */
#include "ingest/ingest.h"
#include "privacy/epochkeys.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 100

static const char *schema =
    "{\"type\":\"object\",\"properties\":{"
    "\"email\":{\"type\":\"string\",\"x-pii\":true,\"x-retention\":\"short\"},"
    "\"plan\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\",\"x-pii\":true}}}";

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
};

static void on_done(void *arg)
{
    struct waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void submit(struct ingest *ing, cJSON **roots, struct ingest_item *items)
{
    memset(items, 0, BATCH * sizeof *items);
    for (size_t i = 0; i < BATCH; i++) {
        items[i].value = roots[i];
        items[i].partition = -1;
    }
    struct ingest_batch b;
    ingest_batch_init(&b, items, BATCH);
    struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    ingest_batch_submit(ing, &b, on_done, &w);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    for (size_t i = 0; i < BATCH; i++)
        if (items[i].status != 0) {
            fprintf(stderr, "event refused: %s\n", items[i].err.message);
            exit(1);
        }
    ingest_batch_dispose(&b);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct side {
    struct evlog *log;
    struct ingest *ing;
    double *ns;
};

static void open_side(const char *dir, struct userkeys *uk, struct schema_registry *reg,
                      struct epochkeys *ek, const struct privacy_key *key, struct side *s)
{
    struct evlog_file_options o;
    evlog_file_options_init(&o);
    o.keys = uk;
    o.dir = dir;
    o.partitions = 4;
    o.fsync = EVLOG_FSYNC_NONE;
    if (evlog_file_open(&o, &s->log) < 0)
        exit(1);
    struct ingest_config c;
    ingest_config_init(&c);
    c.userkeys = uk;
    c.registry = reg;
    c.epochkeys = ek;
    c.dedup_window_ms = 0;
    if (ingest_new(&c, s->log, key, &s->ing) < 0)
        exit(1);
}

int main(int argc, char **argv)
{
    int batches = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 200;
    int runs = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 9;
    if (batches <= 0 || runs <= 0 || seal_init() < 0)
        return 2;
    char tmp[] = "/tmp/rs-fieldret-bench-XXXXXX";
    if (!mkdtemp(tmp))
        return 1;
    char path[256];
    snprintf(path, sizeof path, "%s/registry", tmp);
    struct schema_registry *reg;
    struct core_buf msg;
    core_buf_init(&msg);
    if (schema_registry_open(path, &reg) < 0 ||
        schema_registry_put(reg, "signup", "1-0-0", schema, strlen(schema), &msg) < 0) {
        fprintf(stderr, "registry: %s\n", msg.data ? msg.data : "?");
        return 1;
    }
    struct seal_key dk;
    randombytes_buf(dk.key, sizeof dk.key);
    memset(dk.id, 0, sizeof dk.id);
    struct userkeys_options uo;
    userkeys_options_init(&uo);
    uo.data_key = &dk;
    struct userkeys *uk;
    if (userkeys_open(&uo, &uk) < 0)
        return 1;
    struct epochkeys_options eo;
    epochkeys_options_init(&eo);
    snprintf(path, sizeof path, "%s/epochkeys", tmp);
    eo.path = path;
    eo.data_key = &dk;
    struct epochkeys *ek;
    if (epochkeys_open(&eo, &ek) < 0)
        return 1;
    int64_t day = 24LL * 3600 * 1000;
    struct epochkeys_policy pol = {
        {true, false, false}, {7 * day, 30 * day, 0}, {21 * day / 24, 0, 0}};
    epochkeys_set_policy(ek, &pol);
    struct privacy_key key;
    uint8_t kb[PRIVACY_KEY_BYTES];
    randombytes_buf(kb, sizeof kb);
    privacy_key_set(&key, kb);

    struct side a = {0}, b = {0};
    char dir_a[300], dir_b[300];
    snprintf(dir_a, sizeof dir_a, "%s/log-a", tmp);
    snprintf(dir_b, sizeof dir_b, "%s/log-b", tmp);
    open_side(dir_a, uk, reg, NULL, &key, &a);
    open_side(dir_b, uk, reg, ek, &key, &b);
    a.ns = calloc((size_t)runs, sizeof(double));
    b.ns = calloc((size_t)runs, sizeof(double));

    cJSON *roots[BATCH];
    for (int i = 0; i < BATCH; i++) {
        char ev[512];
        snprintf(ev, sizeof ev,
                 "{\"userId\":\"user-%d\",\"eventType\":\"signup\",\"properties\":{"
                 "\"email\":\"user-%d@example.com\",\"plan\":\"pro\",\"age\":%d}}",
                 i * 7, i * 7, 20 + i % 50);
        roots[i] = cJSON_Parse(ev);
    }
    struct ingest_item items[BATCH];
    submit(a.ing, roots, items); /* warm-up: user keys, the epoch key */
    submit(b.ing, roots, items);
    for (int r = 0; r < runs; r++) {
        struct side *order[2] = {&a, &b};
        if (r & 1) {
            order[0] = &b;
            order[1] = &a;
        }
        for (int k = 0; k < 2; k++) {
            int64_t t0 = core_mono_ns();
            for (int i = 0; i < batches; i++)
                submit(order[k]->ing, roots, items);
            order[k]->ns[r] = (double)(core_mono_ns() - t0) / ((double)batches * BATCH);
        }
    }
    qsort(a.ns, (size_t)runs, sizeof(double), cmp_double);
    qsort(b.ns, (size_t)runs, sizeof(double), cmp_double);
    struct evlog_partition_stats sa, sb;
    int64_t bytes_a = 0, bytes_b = 0, recs_a = 0, recs_b = 0;
    for (int32_t p = 0; p < 4; p++) {
        evlog_stats(a.log, p, &sa);
        evlog_stats(b.log, p, &sb);
        recs_a += sa.high_water;
        recs_b += sb.high_water;
        bytes_a += sa.bytes;
        bytes_b += sb.bytes;
    }
    printf("events per run: %d (batches of %d), runs: %d\n", batches * BATCH, BATCH, runs);
    printf("A  no field retention:       %.0f ns/event [%.0f]\n", a.ns[runs / 2], a.ns[0]);
    printf("B  short field in a bundle:  %.0f ns/event [%.0f]\n", b.ns[runs / 2], b.ns[0]);
    printf("B - A: %.0f ns/event (median), %.0f (fastest)\n", b.ns[runs / 2] - a.ns[runs / 2],
           b.ns[0] - a.ns[0]);
    printf("bytes per record: A %.1f, B %.1f\n", (double)bytes_a / (double)recs_a,
           (double)bytes_b / (double)recs_b);
    for (int i = 0; i < BATCH; i++)
        cJSON_Delete(roots[i]);
    ingest_free(a.ing);
    ingest_free(b.ing);
    evlog_close(a.log);
    evlog_close(b.log);
    epochkeys_free(ek);
    userkeys_free(uk);
    schema_registry_free(reg);
    core_buf_dispose(&msg);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    return system(cmd) == 0 ? 0 : 1;
}
