/*
 * state_bench: apply throughput, memory per user/item and snapshot cost of keyed state.
 *
 * Build (after building recstream_lib in /tmp/build-state-gcc):
 *   gcc -std=c11 -O2 -D_GNU_SOURCE -Isrc bench/state_bench.c
 * /tmp/build-state-gcc/librecstream_lib.a \
 *       $(pkg-config --libs libxxhash libcjson libsodium libzstd nettle libpcre2-8 \
 *       libmicrohttpd) -lpthread -lm -o /tmp/state_bench
 * Run: /tmp/state_bench [ml-100k/u.data] [diginetica-sample/sample_train-item-views.csv]
 *      (defaults: the copies under /work/shared/data)
 *
 * 1. ml-100k: all 100k ratings as "rating" events sorted by (time, line), one shard and 8
 *    shards partitioned by user key, single core; TTLs disabled so every entity stays.
 * 2. 1M synthetic users (each: 3 views over 10k items) on one shard: memory and snapshot.
 */
#include "core/core.h"
#include "event/event.h"
#include "state/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rating {
    int64_t ts_ms;
    int line;
    char user[EVENT_KEY_HEX + 1];
    char item[12];
};

static int cmp_rating(const void *a, const void *b)
{
    const struct rating *x = a, *y = b;
    if (x->ts_ms != y->ts_ms)
        return x->ts_ms < y->ts_ms ? -1 : 1;
    return x->line - y->line;
}

static struct rating *load(const char *path, int *count)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    struct rating *r = calloc(100000, sizeof *r);
    char line[128];
    int n = 0;
    while (n < 100000 && fgets(line, sizeof line, f)) {
        char *p = line, *e;
        long u = strtol(p, &e, 10);
        long it = strtol(e, &p, 10);
        (void)strtol(p, &e, 10);
        long long secs = strtoll(e, &p, 10);
        if (p == e)
            continue;
        r[n].ts_ms = (int64_t)secs * 1000;
        r[n].line = n;
        snprintf(r[n].user, sizeof r[n].user, "%032lx", u);
        snprintf(r[n].item, sizeof r[n].item, "%ld", it);
        n++;
    }
    fclose(f);
    qsort(r, (size_t)n, sizeof *r, cmp_rating);
    *count = n;
    return r;
}

/* DIGINETICA sample (session_id;user_id;item_id;timeframe;eventdate): views; the user is
 * user_id, or the session for anonymous rows; order (eventdate, session_id, timeframe) as
 * the data set's SOURCE.md says; time = date + timeframe ms. */
struct dg {
    int64_t date_ms;
    long session, tf;
    char user[EVENT_KEY_HEX + 1];
    char item[12];
};

static int cmp_dg(const void *a, const void *b)
{
    const struct dg *x = a, *y = b;
    if (x->date_ms != y->date_ms)
        return x->date_ms < y->date_ms ? -1 : 1;
    if (x->session != y->session)
        return x->session < y->session ? -1 : 1;
    return (x->tf > y->tf) - (x->tf < y->tf);
}

static struct rating *load_diginetica(const char *path, int *count)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    int cap = 20000, n = 0;
    struct dg *d = calloc((size_t)cap, sizeof *d);
    char line[256];
    while (n < cap && fgets(line, sizeof line, f)) {
        char *fld[5];
        int k = 0;
        char *save = NULL;
        for (char *t = strtok_r(line, ";\n", &save); t && k < 5; t = strtok_r(NULL, ";\n", &save))
            fld[k++] = t;
        if (k < 5 || !strcmp(fld[0], "session_id"))
            continue;
        d[n].session = strtol(fld[0], NULL, 10);
        d[n].tf = strtol(fld[3], NULL, 10);
        if (core_rfc3339_parse(fld[4], strlen(fld[4]), &d[n].date_ms) < 0) {
            char iso[40];
            snprintf(iso, sizeof iso, "%sT00:00:00Z", fld[4]);
            if (core_rfc3339_parse(iso, strlen(iso), &d[n].date_ms) < 0)
                continue;
        }
        if (!strcmp(fld[1], "NA"))
            snprintf(d[n].user, sizeof d[n].user, "5e55%028lx", d[n].session);
        else
            snprintf(d[n].user, sizeof d[n].user, "%032lx", strtol(fld[1], NULL, 10));
        snprintf(d[n].item, sizeof d[n].item, "%s", fld[2]);
        n++;
    }
    fclose(f);
    qsort(d, (size_t)n, sizeof *d, cmp_dg);
    struct rating *r = calloc((size_t)n, sizeof *r);
    for (int i = 0; i < n; i++) {
        r[i].ts_ms = d[i].date_ms + d[i].tf;
        r[i].line = i;
        memcpy(r[i].user, d[i].user, sizeof r[i].user);
        memcpy(r[i].item, d[i].item, sizeof r[i].item);
    }
    free(d);
    *count = n;
    return r;
}

static void config(struct state_config *cfg)
{
    state_config_init(cfg);
    cfg->user_ttl_ms = INT64_MAX / 4;
    cfg->item_ttl_ms = INT64_MAX / 4;
    cfg->max_users = 2000000;
    cfg->max_items = 2000000;
}

struct row {
    const char *name;
    double events_per_s;
    struct state_stats st;
    size_t snap_bytes;
    double snap_ms, restore_ms;
};

static void snap_row(struct state_shard **s, int shards, struct row *row)
{
    struct core_buf b;
    core_buf_init(&b);
    int64_t t0 = core_mono_ns();
    size_t total = 0;
    for (int i = 0; i < shards; i++) {
        core_buf_reset(&b);
        state_shard_snapshot(s[i], &b);
        total += b.len;
    }
    row->snap_ms = (double)(core_mono_ns() - t0) / 1e6;
    row->snap_bytes = total;
    /* Restore timing on the last shard's snapshot only, scaled to all shards' bytes. */
    struct state_config cfg;
    config(&cfg);
    struct state_shard *r = state_shard_new(&cfg, shards - 1);
    t0 = core_mono_ns();
    if (state_shard_restore(r, b.data, b.len) != 0)
        fprintf(stderr, "restore failed\n");
    row->restore_ms = (double)(core_mono_ns() - t0) / 1e6 * (double)total / (double)b.len;
    state_shard_free(r);
    core_buf_dispose(&b);
    memset(&row->st, 0, sizeof row->st);
    for (int i = 0; i < shards; i++) {
        struct state_stats st;
        state_shard_stats(s[i], &st);
        row->st.users += st.users;
        row->st.items += st.items;
        row->st.pairs += st.pairs;
        row->st.events += st.events;
        row->st.bytes += st.bytes;
    }
}

static void replay(const struct rating *r, int n, int shards, int type, struct row *row)
{
    struct state_config cfg;
    config(&cfg);
    struct state_shard *s[8];
    for (int i = 0; i < shards; i++)
        s[i] = state_shard_new(&cfg, i);
    int64_t off[8] = {0};
    int64_t t0 = core_mono_ns();
    for (int i = 0; i < n; i++) {
        struct event ev;
        event_init(&ev);
        memcpy(ev.user_key, r[i].user, sizeof ev.user_key);
        ev.item_id.ptr = r[i].item;
        ev.item_id.len = strlen(r[i].item);
        ev.type = type;
        ev.ts_ms = ev.recv_ms = r[i].ts_ms;
        int p = core_partition_for_key(ev.user_key, EVENT_KEY_HEX, shards);
        state_shard_apply(s[p], &ev, off[p]++);
    }
    row->events_per_s = (double)n / ((double)(core_mono_ns() - t0) / 1e9);
    snap_row(s, shards, row);
    for (int i = 0; i < shards; i++)
        state_shard_free(s[i]);
}

static void synthetic(int users, struct row *row)
{
    struct state_config cfg;
    config(&cfg);
    struct state_shard *s = state_shard_new(&cfg, 0);
    int64_t t0 = core_mono_ns(), off = 0, ts = 1700000000000;
    uint64_t x = 1;
    char item[16];
    for (int u = 0; u < users; u++) {
        for (int k = 0; k < 3; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            snprintf(item, sizeof item, "i%u", (unsigned)(x >> 33) % 10000);
            struct event ev;
            event_init(&ev);
            snprintf(ev.user_key, sizeof ev.user_key, "%032x", u);
            ev.item_id.ptr = item;
            ev.item_id.len = strlen(item);
            ev.type = EVENT_VIEW;
            ev.ts_ms = ev.recv_ms = ts++;
            state_shard_apply(s, &ev, off++);
        }
    }
    row->events_per_s = (double)off / ((double)(core_mono_ns() - t0) / 1e9);
    snap_row(&s, 1, row);
    state_shard_free(s);
}

/* Bytes per bare entity: n users with one item-less view each, or n items viewed by nobody. */
static double per_entity(int n, bool users)
{
    struct state_config cfg;
    config(&cfg);
    struct state_shard *s = state_shard_new(&cfg, 0);
    struct state_stats st0, st;
    state_shard_stats(s, &st0);
    char item[16];
    for (int i = 0; i < n; i++) {
        struct event ev;
        event_init(&ev);
        if (users) {
            snprintf(ev.user_key, sizeof ev.user_key, "%032x", i);
        } else {
            snprintf(item, sizeof item, "i%d", i);
            ev.item_id.ptr = item;
            ev.item_id.len = strlen(item);
        }
        ev.type = EVENT_RATING;
        ev.ts_ms = 1700000000000 + i;
        state_shard_apply(s, &ev, i);
    }
    state_shard_stats(s, &st);
    state_shard_free(s);
    return (double)(st.bytes - st0.bytes) / n;
}

static void print_row(const struct row *r)
{
    printf("%-22s %10.0f %9lld %7lld %9lld %10.1f %11.2f %10.1f %10.1f\n", r->name, r->events_per_s,
           (long long)r->st.users, (long long)r->st.items, (long long)r->st.pairs,
           (double)r->st.bytes / 1048576.0, (double)r->snap_bytes / 1048576.0, r->snap_ms,
           r->restore_ms);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "/work/shared/data/ml-100k/u.data";
    printf("%-22s %10s %9s %7s %9s %10s %11s %10s %10s\n", "run", "events/s", "users", "items",
           "pairs", "mem MiB", "snap MiB", "snap ms", "restore ms");
    int n = 0;
    struct rating *r = load(path, &n);
    if (r) {
        struct row a = {.name = "ml-100k 1 shard"}, b = {.name = "ml-100k 8 shards"};
        replay(r, n, 1, EVENT_RATING, &a);
        print_row(&a);
        replay(r, n, 8, EVENT_RATING, &b);
        print_row(&b);
        free(r);
    } else {
        fprintf(stderr, "cannot read %s\n", path);
    }
    const char *dpath =
        argc > 2 ? argv[2] : "/work/shared/data/diginetica-sample/sample_train-item-views.csv";
    r = load_diginetica(dpath, &n);
    if (r) {
        struct row a = {.name = "diginetica 1 shard"}, b = {.name = "diginetica 8 shards"};
        replay(r, n, 1, EVENT_VIEW, &a);
        print_row(&a);
        replay(r, n, 8, EVENT_VIEW, &b);
        print_row(&b);
        free(r);
    } else {
        fprintf(stderr, "cannot read %s\n", dpath);
    }
    struct row c = {.name = "synthetic 1M users"};
    synthetic(1000000, &c);
    print_row(&c);
    printf("bytes per bare user (1 event, no item): %.0f\n", per_entity(100000, true));
    printf("bytes per bare item (no neighbours):    %.0f\n", per_entity(100000, false));
    printf("(the user/item/pair columns and mem MiB give the loaded averages)\n");
    return 0;
}
