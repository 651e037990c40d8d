/*
 * Cost of the API key check on the request path (apikey_store_check: parse, BLAKE2b-256 of
 * the key, read lock, binary search among the file's keys, sodium_memcmp, role and Origin,
 * and the token bucket for a rate-limited key), from 1 and 2 threads.
 *
 * Build (library built in /tmp/build-auth; LIB=... to use another one):
 *   LIB=${LIB:-/tmp/build-auth/librecstream_lib.a}; gcc -std=c11 -O2 -g -D_GNU_SOURCE -Isrc \
 *     bench/auth_bench.c $LIB $(pkg-config --libs libmicrohttpd libcjson libsodium libxxhash \
 *     libzstd nettle libpcre2-8) -lpthread -lm -o /tmp/auth_bench
 * Run: /tmp/auth_bench [keys in the file (default 1000)]
 */
#include "privacy/apikey.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 1000000

struct job {
    struct apikey_store *s;
    const char *key;
    enum apikey_role need;
    double ns_per_check;
    int ok;
};

static void *run(void *arg)
{
    struct job *j = arg;
    char id[APIKEY_ID_LEN + 1];
    int retry, ok = 0;
    size_t n = strlen(j->key);
    int64_t t0 = core_mono_ns();
    for (int i = 0; i < N; i++)
        ok += apikey_store_check(j->s, j->key, n, j->need, false, NULL, core_mono_ns(), id,
                                 &retry) == APIKEY_OK;
    j->ns_per_check = (double)(core_mono_ns() - t0) / N;
    j->ok = ok;
    return NULL;
}

static void measure(const char *what, struct apikey_store *s, const char *key, int threads)
{
    pthread_t th[2];
    struct job jobs[2];
    for (int t = 0; t < threads; t++) {
        jobs[t] = (struct job){s, key, APIKEY_ROLE_INGEST, 0, 0};
        pthread_create(&th[t], NULL, run, &jobs[t]);
    }
    double sum = 0;
    int ok = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        sum += jobs[t].ns_per_check;
        ok += jobs[t].ok;
    }
    printf("%-34s %d thread%s: %6.0f ns per check (%d of %d allowed)\n", what, threads,
           threads > 1 ? "s" : " ", sum / threads, ok, threads * N);
}

int main(int argc, char **argv)
{
    int nkeys = argc > 1 ? atoi(argv[1]) : 1000;
    if (sodium_init() < 0 || nkeys < 2 || nkeys > APIKEY_MAX)
        return 1;
    char dir[] = "/tmp/rs-auth-bench-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[128], admin[128], err[256];
    snprintf(path, sizeof path, "%s/apikeys.json", dir);
    snprintf(admin, sizeof admin, "%s/admin.key", dir);
    struct apikey_list l;
    apikey_list_init(&l);
    char plain[APIKEY_TEXT_LEN + 1], limited[APIKEY_TEXT_LEN + 1], other[APIKEY_TEXT_LEN + 1];
    apikey_list_add(&l, APIKEY_ROLE_INGEST, "plain", NULL, 0, 0, plain, err, sizeof err);
    apikey_list_add(&l, APIKEY_ROLE_INGEST, "limited", NULL, 1e9, 1e9, limited, err, sizeof err);
    for (int i = 2; i < nkeys; i++)
        apikey_list_add(&l, APIKEY_ROLE_READ, NULL, NULL, 0, 0, other, err, sizeof err);
    apikey_list_save(path, &l);
    apikey_list_dispose(&l);
    struct apikey_store *s = NULL;
    bool created;
    if (apikey_store_open(path, admin, &s, &created) < 0)
        return 1;
    /* What one request pays when the file changed: the re-read (parse, checks, sort). */
    apikey_list_init(&l);
    int64_t t0 = core_mono_ns();
    if (apikey_list_load(path, &l, err, sizeof err) < 0)
        return 1;
    printf("%d keys in the file; loading it takes %.2f ms\n", nkeys,
           (double)(core_mono_ns() - t0) / 1e6);
    apikey_list_dispose(&l);
    for (int threads = 1; threads <= 2; threads++) {
        measure("valid ingest key, no rate limit", s, plain, threads);
        measure("valid ingest key, token bucket", s, limited, threads);
        measure("wrong role (read key)", s, other, threads);
    }
    apikey_store_free(s);
    unlink(path);
    snprintf(path, sizeof path, "%s/apikeys.json.lock", dir);
    unlink(path);
    rmdir(dir);
    return 0;
}
