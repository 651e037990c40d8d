/*
 * reco_bench: in-process latency of reco_recommend / reco_similar on a synthetic world.
 *
 * Build (library built in /tmp/build-bench; LIB=... to use another one):
 *   LIB=${LIB:-/tmp/build-bench/librecstream_lib.a}; gcc -std=c11 -O2 -g -D_GNU_SOURCE -Isrc \
 *       bench/reco_bench.c $LIB $(pkg-config --libs libxxhash libcjson libsodium libzstd \
 *       nettle libpcre2-8 libmicrohttpd) -lpthread -lm -o /tmp/reco_bench
 * Run: /tmp/reco_bench [-u users] [-i items] [-n requests] [-s seed] [-d rebuild_s]
 *      [-x 1,3] (defaults: 100000 users, 20000 items, 50000 requests per scenario, seed 1,
 *      15 s of the live-writer-plus-rebuild scenario; -x runs only the listed scenarios,
 *      numbered from 1 in table order, 0 = the live-read and model-scan breakdown; e.g. to
 *      profile one scenario with perf)
 *
 * The world: items "item-NNNNN" in 50 categories (20% of items in a second one) with 3 tags
 * of 300, published over the last 90 days (5% in the last 2 days, so "fresh" has members),
 * 2% unavailable; item popularity is Zipf (s = 1) over a random global rank, and within
 * each category in the same order. Users (keys: 32-hex pseudonyms) have 2-3 favourite
 * categories with tastes, a device and a locale, and 1-4 sessions over the last 3 days of
 * 4-16 events each (10-90 s apart): 70% of picks come from the session's category, 15% from
 * another favourite, 15% from the global Zipf. Types: view 75%, click 12%, scroll 5%,
 * add_to_cart 5%, purchase 2%, like 1%. 8 state shards by core_partition_for_key, the
 * catalog joined at apply time (category affinities), default state and reco configs except
 * refresh_ms 0 (the model is rebuilt only where a scenario says so).
 *
 * Scenarios, each after a warm-up: random known users (1 and 2 threads), the same with
 * device+locale context, unknown users (cold start), reco_similar of Zipf-drawn items, and
 * one reader while a writer thread applies live events (unthrottled; 20k events/s; 20k
 * events/s plus a model rebuild every 2 s, the default of `recstream serve`, after one
 * catch-up rebuild that folds in what the earlier writers added). Writers keep their events,
 * so later scenarios see the users' histories moved on. Then the costs of the live state
 * reads one request makes (user read, co-visitation fan-out over the shards, context lists)
 * timed alone through the public API, and how long a model build's whole-shard scans hold
 * each shard's read lock at the least (callbacks that only count).
 *
 * Latency is wall-clock per call; the "CPU" column is the calling thread's CPU time for the
 * same calls, so a wall-clock tail far above the CPU tail is time spent off the CPU (waiting
 * for a lock, or for a core on this shared machine), not work. Writer notes give its rate and
 * its slowest single state_shard_apply: a wait for a shard's write lock (held for reading by
 * a model build) shows there.
 */
#include "catalog/catalog.h"
#include "core/core.h"
#include "event/event.h"
#include "reco/reco.h"
#include "state/state.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NSHARDS 8
#define NCATS 50
#define NTAGS 300
#define SPAN_MS (3LL * 24 * 3600 * 1000)
#define DAY_MS (24LL * 3600 * 1000)
#define NDEV 3
#define NLOC 5

/* ---- random numbers ---------------------------------------------------------------------- */

struct rng {
    uint64_t s;
};

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rnd(struct rng *r)
{
    return splitmix(&r->s);
}

static double unit(struct rng *r)
{
    return (double)(rnd(r) >> 11) * 0x1.0p-53;
}

static uint32_t below(struct rng *r, uint32_t n)
{
    return (uint32_t)(((rnd(r) >> 32) * n) >> 32);
}

/* Zipf over ranks 0..n-1 (P(k) ~ 1/(k+1)^s) by inverse CDF. */
struct zipf {
    uint32_t n;
    double *cdf;
};

static void zipf_init(struct zipf *z, uint32_t n, double s)
{
    z->n = n;
    z->cdf = core_xmalloc((n ? n : 1) * sizeof *z->cdf);
    double acc = 0;
    for (uint32_t k = 0; k < n; k++)
        z->cdf[k] = acc += 1.0 / pow(k + 1.0, s);
    for (uint32_t k = 0; k < n; k++)
        z->cdf[k] /= acc;
}

static uint32_t zipf_draw(const struct zipf *z, struct rng *r)
{
    double u = unit(r);
    uint32_t lo = 0, hi = z->n - 1;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (z->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- the world --------------------------------------------------------------------------- */

/* A generated event, compact (the struct event is built at apply time). */
struct gev {
    int64_t ts;
    uint32_t user, item;
    uint16_t sess;
    uint8_t type;
};

struct world {
    int nusers, nitems;
    char (*ukey)[EVENT_KEY_HEX + 1];
    char (*iid)[16];
    uint8_t *udev, *uloc, *unfav;
    uint8_t (*ufav)[3];
    float (*ufw)[3];
    uint32_t *by_rank; /* item of global popularity rank r */
    struct zipf gzipf;
    uint32_t *cat_n, **cat_items; /* per category, most popular first */
    struct zipf czipf[NCATS];
    char ctx[NDEV][NLOC][64];
    int64_t t_end;
    struct gev *ev;
    size_t nev;
    struct catalog *cat;
    struct state_shard *shards[NSHARDS];
    int64_t off[NSHARDS];
};

static const char *const devices[NDEV] = {"mobile", "desktop", "tablet"};
static const char *const locales[NLOC] = {"en-US", "de-DE", "fr-FR", "es-ES", "ja-JP"};

static void user_key(uint32_t u, char out[EVENT_KEY_HEX + 1])
{
    uint64_t x = 0x5eed0000ull + u, a = splitmix(&x), b = splitmix(&x);
    snprintf(out, EVENT_KEY_HEX + 1, "%016llx%016llx", (unsigned long long)a,
             (unsigned long long)b);
}

static void load_catalog(struct world *w, struct rng *r)
{
    struct catalog_options o;
    catalog_options_init(&o);
    o.dir = NULL;
    o.fsync = false;
    if (catalog_open(&o, &w->cat) != 0) {
        fprintf(stderr, "catalog_open failed\n");
        exit(1);
    }
    uint8_t(*icat)[2] = core_xcalloc((size_t)w->nitems, sizeof *icat);
    uint8_t *incat = core_xcalloc((size_t)w->nitems, 1);
    for (int i = 0; i < w->nitems; i++) {
        char buf[32];
        cJSON *obj = cJSON_CreateObject();
        snprintf(buf, sizeof buf, "Item %d", i + 1);
        cJSON_AddStringToObject(obj, "title", buf);
        cJSON *cats = cJSON_AddArrayToObject(obj, "categories");
        icat[i][0] = (uint8_t)below(r, NCATS);
        incat[i] = 1;
        if (unit(r) < 0.2) {
            icat[i][1] = (uint8_t)((icat[i][0] + 1 + below(r, NCATS - 1)) % NCATS);
            incat[i] = 2;
        }
        for (int k = 0; k < incat[i]; k++) {
            snprintf(buf, sizeof buf, "cat-%02d", icat[i][k]);
            cJSON_AddItemToArray(cats, cJSON_CreateString(buf));
        }
        cJSON *tags = cJSON_AddArrayToObject(obj, "tags");
        for (int k = 0; k < 3; k++) {
            /* tags loosely tied to the category, so content similarity means something */
            unsigned t = unit(r) < 0.6 ? (icat[i][0] * 6u + below(r, 6)) % NTAGS : below(r, NTAGS);
            snprintf(buf, sizeof buf, "tag-%03u", t);
            cJSON_AddItemToArray(tags, cJSON_CreateString(buf));
        }
        int64_t age =
            unit(r) < 0.05 ? (int64_t)(unit(r) * 2 * DAY_MS) : (int64_t)(unit(r) * 90 * DAY_MS);
        cJSON_AddNumberToObject(obj, "publishedAt", (double)(w->t_end - age));
        cJSON_AddBoolToObject(obj, "available", unit(r) >= 0.02);
        bool created;
        struct event_error err;
        int rc = catalog_put(w->cat, w->iid[i], strlen(w->iid[i]), obj, &created, &err);
        if (rc != 0) {
            fprintf(stderr, "catalog_put %s: %s %s\n", w->iid[i], err.field, err.message);
            exit(1);
        }
        cJSON_Delete(obj);
    }
    /* popularity: a random global rank; category lists in rank order */
    w->by_rank = core_xmalloc((size_t)w->nitems * sizeof *w->by_rank);
    for (int i = 0; i < w->nitems; i++)
        w->by_rank[i] = (uint32_t)i;
    for (int i = w->nitems - 1; i > 0; i--) {
        uint32_t j = below(r, (uint32_t)i + 1), t = w->by_rank[i];
        w->by_rank[i] = w->by_rank[j];
        w->by_rank[j] = t;
    }
    zipf_init(&w->gzipf, (uint32_t)w->nitems, 1.0);
    w->cat_n = core_xcalloc(NCATS, sizeof *w->cat_n);
    w->cat_items = core_xcalloc(NCATS, sizeof *w->cat_items);
    for (int c = 0; c < NCATS; c++)
        w->cat_items[c] = core_xmalloc((size_t)w->nitems * sizeof **w->cat_items);
    for (int k = 0; k < w->nitems; k++) {
        uint32_t i = w->by_rank[k];
        for (int j = 0; j < incat[i]; j++)
            w->cat_items[icat[i][j]][w->cat_n[icat[i][j]]++] = i;
    }
    for (int c = 0; c < NCATS; c++)
        zipf_init(&w->czipf[c], w->cat_n[c], 1.0);
    free(icat);
    free(incat);
}

static void make_users(struct world *w, struct rng *r)
{
    w->ukey = core_xmalloc((size_t)w->nusers * sizeof *w->ukey);
    w->udev = core_xmalloc((size_t)w->nusers);
    w->uloc = core_xmalloc((size_t)w->nusers);
    w->unfav = core_xmalloc((size_t)w->nusers);
    w->ufav = core_xmalloc((size_t)w->nusers * sizeof *w->ufav);
    w->ufw = core_xmalloc((size_t)w->nusers * sizeof *w->ufw);
    for (int u = 0; u < w->nusers; u++) {
        user_key((uint32_t)u, w->ukey[u]);
        double d = unit(r);
        w->udev[u] = d < 0.6 ? 0 : d < 0.95 ? 1 : 2;
        w->uloc[u] = (uint8_t)below(r, NLOC);
        w->unfav[u] = (uint8_t)(2 + below(r, 2));
        for (int k = 0; k < w->unfav[u]; k++) {
            uint8_t c;
            bool dup;
            do {
                c = (uint8_t)below(r, NCATS);
                dup = false;
                for (int j = 0; j < k; j++)
                    dup |= w->ufav[u][j] == c;
            } while (dup);
            w->ufav[u][k] = c;
            w->ufw[u][k] = k == 0 ? 1.0f : (float)(0.2 + 0.8 * unit(r));
        }
    }
    for (int d = 0; d < NDEV; d++)
        for (int l = 0; l < NLOC; l++)
            snprintf(w->ctx[d][l], sizeof w->ctx[d][l], "{\"device\":\"%s\",\"locale\":\"%s\"}",
                     devices[d], locales[l]);
}

static int fav_pick(const struct world *w, uint32_t u, struct rng *r)
{
    double tot = 0;
    for (int k = 0; k < w->unfav[u]; k++)
        tot += w->ufw[u][k];
    double x = unit(r) * tot;
    for (int k = 0; k < w->unfav[u]; k++)
        if ((x -= w->ufw[u][k]) < 0)
            return w->ufav[u][k];
    return w->ufav[u][0];
}

/* One session of user u starting at t0: len events into out; returns the time after it. */
static int64_t gen_session(const struct world *w, struct rng *r, uint32_t u, uint16_t sess,
                           int64_t t0, int len, struct gev *out)
{
    int c = fav_pick(w, u, r);
    int64_t t = t0;
    for (int k = 0; k < len; k++) {
        double x = unit(r);
        uint32_t item;
        if (x < 0.15) {
            item = w->by_rank[zipf_draw(&w->gzipf, r)];
        } else {
            int cc = x < 0.30 ? fav_pick(w, u, r) : c;
            item = w->cat_items[cc][zipf_draw(&w->czipf[cc], r)];
        }
        double y = unit(r);
        int type = y < 0.75   ? EVENT_VIEW
                   : y < 0.87 ? EVENT_CLICK
                   : y < 0.92 ? EVENT_SCROLL
                   : y < 0.97 ? EVENT_ADD_TO_CART
                   : y < 0.99 ? EVENT_PURCHASE
                              : EVENT_LIKE;
        out[k] = (struct gev){t, u, item, sess, (uint8_t)type};
        t += 10000 + below(r, 80000);
    }
    return t;
}

static int cmp_gev(const void *a, const void *b)
{
    const struct gev *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->user < y->user ? -1 : x->user > y->user;
}

static void make_events(struct world *w, struct rng *r)
{
    size_t cap = (size_t)w->nusers * 30, n = 0;
    w->ev = core_xmalloc(cap * sizeof *w->ev);
    for (int u = 0; u < w->nusers; u++) {
        int ns = 1 + (int)below(r, 4);
        for (int s = 0; s < ns; s++) {
            int len = 4 + (int)below(r, 13);
            if (n + (size_t)len > cap) {
                cap *= 2;
                w->ev = core_xrealloc(w->ev, cap * sizeof *w->ev);
            }
            int64_t t0 = w->t_end - SPAN_MS + (int64_t)(unit(r) * (double)(SPAN_MS - 1800000));
            gen_session(w, r, (uint32_t)u, (uint16_t)s, t0, len, w->ev + n);
            n += (size_t)len;
        }
    }
    w->nev = n;
    qsort(w->ev, n, sizeof *w->ev, cmp_gev);
}

/* Applies one generated event to its user's shard (single writer per shard). */
static void apply_one(struct world *w, const struct gev *g, int only_mod, int mod)
{
    const char *key = w->ukey[g->user];
    int p = core_partition_for_key(key, EVENT_KEY_HEX, NSHARDS);
    if (mod > 1 && p % mod != only_mod)
        return;
    char sid[24];
    int sn = snprintf(sid, sizeof sid, "%x-%u", g->user, g->sess);
    struct event ev;
    event_init(&ev);
    memcpy(ev.user_key, key, sizeof ev.user_key);
    ev.item_id.ptr = w->iid[g->item];
    ev.item_id.len = strlen(w->iid[g->item]);
    ev.session_id.ptr = sid;
    ev.session_id.len = (size_t)sn;
    ev.type = g->type;
    ev.ts_ms = ev.recv_ms = g->ts;
    const char *ctx = w->ctx[w->udev[g->user]][w->uloc[g->user]];
    ev.context_json.ptr = ctx;
    ev.context_json.len = strlen(ctx);
    state_shard_apply(w->shards[p], &ev, w->off[p]++);
}

struct apply_arg {
    struct world *w;
    int part, mod;
};

static void *apply_thread(void *arg)
{
    struct apply_arg *a = arg;
    for (size_t i = 0; i < a->w->nev; i++)
        apply_one(a->w, &a->w->ev[i], a->part, a->mod);
    return NULL;
}

/* ---- measurement helpers ----------------------------------------------------------------- */

static double rss_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = strtod(line + 6, NULL);
    if (f)
        fclose(f);
    return kb / 1024.0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct(const int64_t *v, size_t n, double p)
{
    size_t i = (size_t)ceil(p / 100.0 * (double)n);
    return (double)v[i ? i - 1 : 0] / 1000.0;
}

enum kind { K_WARM, K_CONTEXT, K_COLD, K_SIMILAR };

struct reader {
    struct world *w;
    struct reco *reco;
    enum kind kind;
    int n;             /* requests (0: until *stop) */
    atomic_bool *stop; /* when n == 0 */
    uint64_t seed;
    int64_t *lat, *cpu; /* ns per request: wall clock, this thread's CPU time */
    int cap, done, short_lists;
};

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *reader_thread(void *arg)
{
    struct reader *rd = arg;
    struct world *w = rd->w;
    struct rng r = {rd->seed};
    struct reco_result *res = core_xmalloc(sizeof *res);
    struct reco_item *sim = core_xmalloc(10 * sizeof *sim);
    char key[EVENT_KEY_HEX + 1];
    rd->done = rd->short_lists = 0;
    for (int i = 0; rd->n ? i < rd->n : !atomic_load(rd->stop); i++) {
        int64_t t0, t1, c0 = thread_cpu_ns();
        int got;
        if (rd->kind == K_SIMILAR) {
            uint32_t it = w->by_rank[zipf_draw(&w->gzipf, &r)];
            t0 = core_mono_ns();
            got = reco_similar(rd->reco, w->iid[it], strlen(w->iid[it]), 10, sim);
            t1 = core_mono_ns();
        } else {
            uint32_t u = below(&r, (uint32_t)w->nusers);
            if (rd->kind == K_COLD)
                user_key(u + 100000000u, key);
            struct reco_request rq = {.user_key = rd->kind == K_COLD ? key : w->ukey[u],
                                      .count = 10};
            if (rd->kind == K_CONTEXT) {
                rq.device = devices[w->udev[u]];
                rq.locale = locales[w->uloc[u]];
            }
            t0 = core_mono_ns();
            reco_recommend(rd->reco, &rq, res);
            t1 = core_mono_ns();
            got = res->n;
        }
        int64_t c1 = thread_cpu_ns();
        if (got < 10)
            rd->short_lists++;
        if (rd->done == rd->cap) {
            rd->cap = rd->cap ? rd->cap * 2 : 65536;
            rd->lat = core_xrealloc(rd->lat, (size_t)rd->cap * sizeof *rd->lat);
            rd->cpu = core_xrealloc(rd->cpu, (size_t)rd->cap * sizeof *rd->cpu);
        }
        rd->cpu[rd->done] = c1 - c0;
        rd->lat[rd->done++] = t1 - t0;
    }
    free(res);
    free(sim);
    return NULL;
}

/* A live writer: sessions of random users at the world's clock, unthrottled (rate 0) or
 * paced to rate events/s (the only writer of every shard while it runs). */
struct writer {
    struct world *w;
    double rate;
    atomic_bool stop;
    int64_t applied, start_ns, end_ns;
    int64_t max_apply_ns, slow_applies; /* one event's apply (write lock wait included); >= 10 ms */
};

static void *writer_thread(void *arg)
{
    struct writer *wr = arg;
    struct world *w = wr->w;
    struct rng r = {0xabcdef};
    struct gev buf[16];
    wr->start_ns = core_mono_ns();
    int64_t t = w->t_end;
    uint16_t sess = 100;
    while (!atomic_load(&wr->stop)) {
        uint32_t u = below(&r, (uint32_t)w->nusers);
        int len = 4 + (int)below(&r, 13);
        gen_session(w, &r, u, sess++, t, len, buf);
        /* Interleave users in time loosely: the clock advances 1 s per session. */
        t += 1000;
        for (int k = 0; k < len; k++) {
            int64_t a0 = core_mono_ns();
            apply_one(w, &buf[k], 0, 1);
            int64_t took = core_mono_ns() - a0;
            if (took > wr->max_apply_ns)
                wr->max_apply_ns = took;
            wr->slow_applies += took >= 10000000;
            wr->applied++;
        }
        if (wr->rate > 0) {
            int64_t due = wr->start_ns + (int64_t)((double)wr->applied / wr->rate * 1e9);
            int64_t now = core_mono_ns();
            if (due > now) {
                struct timespec ts = {(time_t)((due - now) / 1000000000),
                                      (long)((due - now) % 1000000000)};
                nanosleep(&ts, NULL);
            }
        }
    }
    wr->end_ns = core_mono_ns();
    return NULL;
}

struct rebuilder {
    struct reco *reco;
    int64_t period_ms;
    atomic_bool stop;
    int builds;
    int64_t max_us, sum_us;
};

static void *rebuild_thread(void *arg)
{
    struct rebuilder *rb = arg;
    while (!atomic_load(&rb->stop)) {
        for (int64_t slept = 0; slept < rb->period_ms && !atomic_load(&rb->stop); slept += 50)
            usleep(50000);
        if (atomic_load(&rb->stop))
            break;
        int64_t t0 = core_mono_ns();
        reco_refresh_within(rb->reco, rb->period_ms / 2); /* as serve's refresher */
        int64_t us = (core_mono_ns() - t0) / 1000;
        rb->builds++;
        rb->sum_us += us;
        if (us > rb->max_us)
            rb->max_us = us;
    }
    return NULL;
}

struct scenario {
    const char *name;
    enum kind kind;
    int threads;
    double writer_rate;  /* < 0: no writer; 0: unthrottled */
    int64_t rebuild_ms;  /* > 0: rebuild thread */
    int64_t duration_ms; /* > 0: run for this long instead of n requests */
};

static void run(struct world *w, struct reco *reco, const struct scenario *sc, int n)
{
    struct reader rd[2];
    pthread_t th[2], wth, bth;
    atomic_bool stop = false;
    struct writer wr = {.w = w, .rate = sc->writer_rate};
    struct rebuilder rb = {.reco = reco, .period_ms = sc->rebuild_ms};
    atomic_init(&wr.stop, false);
    atomic_init(&rb.stop, false);
    /* warm-up: per-thread scratch, caches */
    for (int t = 0; t < sc->threads; t++) {
        rd[t] = (struct reader){
            .w = w, .reco = reco, .kind = sc->kind, .n = 2000, .seed = 1000u + (uint64_t)t};
        reader_thread(&rd[t]);
    }
    /* Fold what earlier scenarios' writers added into the model first, so the periodic
     * rebuilds measured below each carry only their own period's events, as in a server. */
    int64_t catchup_us = -1;
    if (sc->rebuild_ms > 0) {
        int64_t c0 = core_mono_ns();
        reco_refresh(reco);
        catchup_us = (core_mono_ns() - c0) / 1000;
    }
    if (sc->writer_rate >= 0)
        pthread_create(&wth, NULL, writer_thread, &wr);
    if (sc->rebuild_ms > 0)
        pthread_create(&bth, NULL, rebuild_thread, &rb);
    int64_t t0 = core_mono_ns();
    for (int t = 0; t < sc->threads; t++) {
        rd[t].n = sc->duration_ms > 0 ? 0 : n;
        rd[t].stop = &stop;
        rd[t].seed = 77u + (uint64_t)t * 7919;
        pthread_create(&th[t], NULL, reader_thread, &rd[t]);
    }
    if (sc->duration_ms > 0) {
        usleep((useconds_t)(sc->duration_ms * 1000));
        atomic_store(&stop, true);
    }
    for (int t = 0; t < sc->threads; t++)
        pthread_join(th[t], NULL);
    double secs = (double)(core_mono_ns() - t0) / 1e9;
    atomic_store(&wr.stop, true);
    atomic_store(&rb.stop, true);
    if (sc->writer_rate >= 0)
        pthread_join(wth, NULL);
    if (sc->rebuild_ms > 0)
        pthread_join(bth, NULL);
    size_t total = 0;
    int shorts = 0;
    for (int t = 0; t < sc->threads; t++) {
        total += (size_t)rd[t].done;
        shorts += rd[t].short_lists;
    }
    int64_t *all = core_xmalloc(total * sizeof *all), *cpu = core_xmalloc(total * sizeof *cpu);
    size_t k = 0;
    for (int t = 0; t < sc->threads; t++) {
        memcpy(all + k, rd[t].lat, (size_t)rd[t].done * sizeof *all);
        memcpy(cpu + k, rd[t].cpu, (size_t)rd[t].done * sizeof *cpu);
        k += (size_t)rd[t].done;
        free(rd[t].lat);
        free(rd[t].cpu);
    }
    qsort(all, total, sizeof *all, cmp_i64);
    qsort(cpu, total, sizeof *cpu, cmp_i64);
    double sum = 0;
    for (size_t i = 0; i < total; i++)
        sum += (double)all[i];
    char extra[224] = "";
    if (sc->writer_rate >= 0)
        snprintf(extra, sizeof extra, "writer %.0f ev/s, slowest apply %.1f ms (%lld >= 10 ms)",
                 (double)wr.applied / ((double)(wr.end_ns - wr.start_ns) / 1e9),
                 (double)wr.max_apply_ns / 1e6, (long long)wr.slow_applies);
    if (sc->rebuild_ms > 0) {
        size_t m = strlen(extra);
        snprintf(extra + m, sizeof extra - m,
                 "; %d rebuilds, avg %.0f ms, max %.0f ms (catch-up build before: %.0f ms)",
                 rb.builds, rb.builds ? (double)rb.sum_us / rb.builds / 1000.0 : 0,
                 (double)rb.max_us / 1000.0, (double)catchup_us / 1000.0);
    }
    printf("| %-34s | %d | %7zu | %7.0f | %6.1f | %6.0f | %6.0f | %6.0f | %7.0f | %7.0f | %4.1f / "
           "%4.0f | %5.2f%% | %s |\n",
           sc->name, sc->threads, total, (double)total / secs, sum / (double)total / 1000.0,
           pct(all, total, 50), pct(all, total, 90), pct(all, total, 99), pct(all, total, 99.9),
           (double)all[total - 1] / 1000.0, pct(cpu, total, 50), pct(cpu, total, 99),
           100.0 * shorts / (double)total, extra);
    fflush(stdout);
    free(all);
    free(cpu);
}

/* ---- the cost of the live reads one request makes ----------------------------------------- */

/* Counts callbacks and distinct ids (an FNV-1a hash set, cleared per request). */
struct counter {
    int64_t calls, distinct;
    uint64_t set[16384];
};

static void count_fn(void *arg, const char *id, size_t len, double score)
{
    struct counter *c = arg;
    (void)score;
    c->calls++;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)id[i]) * 1099511628211ull;
    h |= 1;
    uint32_t k = (uint32_t)h & 16383;
    while (c->set[k] && c->set[k] != h)
        k = (k + 1) & 16383;
    if (!c->set[k]) {
        c->set[k] = h;
        c->distinct++;
    }
}

static void live_reads(struct world *w, int n, int live_seeds)
{
    struct state_user_read *u = core_xmalloc(sizeof *u);
    struct counter *cov = core_xcalloc(1, sizeof *cov), *ctx = core_xcalloc(1, sizeof *ctx);
    struct rng r = {4242};
    int64_t t_user = 0, t_cov = 0, t_ctx = 0, seeds = 0, locks = 0;
    for (int i = 0; i < n; i++) {
        memset(cov->set, 0, sizeof cov->set);
        memset(ctx->set, 0, sizeof ctx->set);
        uint32_t ui = below(&r, (uint32_t)w->nusers);
        const char *key = w->ukey[ui];
        int p = core_partition_for_key(key, EVENT_KEY_HEX, NSHARDS);
        int64_t t0 = core_mono_ns();
        state_shard_user_read(w->shards[p], key, u);
        int64_t t1 = core_mono_ns();
        /* as reco.c: up to live_seeds distinct positive-weight recent items, newest first, each
         * read from every shard */
        const char *seen[STATE_READ_RECENT_MAX];
        int ns = 0;
        for (int k = u->nrecent - 1; k >= 0 && ns < live_seeds; k--) {
            if (!(u->recent[k].weight > 0))
                continue;
            bool dup = false;
            for (int j = 0; j < ns && !dup; j++)
                dup = !strcmp(seen[j], u->recent[k].item_id);
            if (dup)
                continue;
            seen[ns++] = u->recent[k].item_id;
            for (int s = 0; s < NSHARDS; s++)
                state_shard_neighbours_each(w->shards[s], u->recent[k].item_id,
                                            strlen(u->recent[k].item_id), u->now_ms, count_fn, cov);
            locks += NSHARDS;
        }
        int64_t t2 = core_mono_ns();
        char hk[16];
        int hn = snprintf(hk, sizeof hk, "hour:%02d", (int)((u->now_ms / 3600000) % 24));
        for (int s = 0; s < NSHARDS; s++)
            state_shard_context_each(w->shards[s], hk, (size_t)hn, u->now_ms, count_fn, ctx);
        int64_t t3 = core_mono_ns();
        t_user += t1 - t0;
        t_cov += t2 - t1;
        t_ctx += t3 - t2;
        seeds += ns;
    }
    printf("\nLive state reads per request (mean of %d random users, one thread, no writer):\n", n);
    printf("  state_shard_user_read:                        %7.1f us\n", t_user / 1e3 / n);
    printf("  co-visitation, %.1f seeds x %d shards (%.0f locks): %7.1f us, %.0f neighbour "
           "callbacks, %.0f distinct items\n",
           (double)seeds / n, NSHARDS, (double)locks / n, t_cov / 1e3 / n, (double)cov->calls / n,
           (double)cov->distinct / n);
    printf("  context hour:HH x %d shards:                   %7.1f us, %.0f callbacks, %.0f "
           "distinct items\n",
           NSHARDS, t_ctx / 1e3 / n, (double)ctx->calls / n, (double)ctx->distinct / n);
    printf(
        "  (timings include the counting callback: an FNV-1a hash and a set insert per entry)\n");
    free(u);
    free(cov);
    free(ctx);
}

/* Whether scenario k is in the -x list (no list: all). */
static bool selected(const char *only, int k)
{
    if (!only)
        return true;
    for (const char *p = only; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        if (v == k)
            return true;
        p = *end == ',' ? end + 1 : end;
    }
    return false;
}

/* The whole-shard item scan a model build makes under one shard's read lock, with a callback
 * that only counts: the least time a build holds each lock (a writer waiting for it holds up
 * every new reader of that shard, since the lock prefers writers). Builds no longer scan
 * users' histories: co-occurrence is counted at apply time (state_cooc.c). */
static void item_fn(void *arg, const char *id, size_t len, const struct state_item_brief *b)
{
    (void)id;
    (void)len;
    (void)b;
    ++*(int64_t *)arg;
}

static void scans(struct world *w)
{
    int64_t ti = 0, maxi = 0, items = 0;
    for (int p = 0; p < NSHARDS; p++) {
        int64_t t0 = core_mono_ns();
        state_shard_items_each(w->shards[p], item_fn, &items);
        int64_t t = core_mono_ns() - t0;
        ti += t;
        if (t > maxi)
            maxi = t;
    }
    printf("Model-build scans, counting callbacks (lock hold per shard, no writer): items "
           "%.1f ms avg / %.1f ms max (%lld items in all)\n",
           ti / 1e6 / NSHARDS, maxi / 1e6, (long long)items);
}

/* ---- main -------------------------------------------------------------------------------- */

static int64_t arg_i64(const char *s, int64_t min, int64_t max)
{
    int64_t v;
    if (core_parse_i64(s, min, max, &v)) {
        fprintf(stderr, "bad number '%s' (%lld..%lld)\n", s, (long long)min, (long long)max);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    struct world w = {.nusers = 100000, .nitems = 20000};
    int n = 50000;
    uint64_t seed = 1;
    int64_t rebuild_s = 15;
    const char *only = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "u:i:n:s:d:x:")) != -1) {
        switch (opt) {
        case 'u':
            w.nusers = (int)arg_i64(optarg, 1, 10000000);
            break;
        case 'i':
            w.nitems = (int)arg_i64(optarg, NCATS, 1000000);
            break;
        case 'n':
            n = (int)arg_i64(optarg, 1, 100000000);
            break;
        case 's':
            seed = (uint64_t)arg_i64(optarg, 0, INT64_MAX);
            break;
        case 'd':
            rebuild_s = arg_i64(optarg, 1, 3600);
            break;
        case 'x':
            only = optarg;
            break;
        default:
            fprintf(stderr,
                    "usage: %s [-u users] [-i items] [-n requests] [-s seed] [-d secs] "
                    "[-x 1,2]\n",
                    argv[0]);
            return 2;
        }
    }
    core_log_set_level(CORE_LOG_WARN);
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress is visible when redirected */
    struct rng r = {seed};
    w.t_end = 1764000000000; /* a fixed "now" (event time), so runs are comparable */
    w.iid = core_xmalloc((size_t)w.nitems * sizeof *w.iid);
    for (int i = 0; i < w.nitems; i++)
        snprintf(w.iid[i], sizeof w.iid[i], "item-%05d", i + 1);

    double rss0 = rss_mib();
    int64_t t0 = core_mono_ns();
    load_catalog(&w, &r);
    int64_t t1 = core_mono_ns();
    make_users(&w, &r);
    make_events(&w, &r);
    int64_t t2 = core_mono_ns();
    printf("world: %d users, %d items, %d categories, %zu events (%.1f per user)\n", w.nusers,
           w.nitems, NCATS, w.nev, (double)w.nev / w.nusers);
    printf("generation: catalog %.2f s, users + events + sort %.2f s\n", (t1 - t0) / 1e9,
           (t2 - t1) / 1e9);

    struct state_config cfg;
    state_config_init(&cfg);
    cfg.catalog = w.cat;
    for (int p = 0; p < NSHARDS; p++)
        w.shards[p] = state_shard_new(&cfg, p);
    /* two apply threads, each the single writer of half of the shards */
    struct apply_arg aa[2] = {{&w, 0, 2}, {&w, 1, 2}};
    pthread_t at[2];
    int64_t t3 = core_mono_ns();
    for (int t = 0; t < 2; t++)
        pthread_create(&at[t], NULL, apply_thread, &aa[t]);
    for (int t = 0; t < 2; t++)
        pthread_join(at[t], NULL);
    int64_t t4 = core_mono_ns();
    free(w.ev);
    w.ev = NULL;
    struct state_stats tot = {0};
    for (int p = 0; p < NSHARDS; p++) {
        struct state_stats st;
        state_shard_stats(w.shards[p], &st);
        tot.users += st.users;
        tot.items += st.items;
        tot.pairs += st.pairs;
        tot.bytes += st.bytes;
    }
    printf("apply: %.2f s on 2 threads (%.0f events/s); state: %lld users, %lld item entries "
           "(over shards), %lld co-visit pairs, %.0f MiB by state_shard_stats\n",
           (t4 - t3) / 1e9, (double)w.nev / ((t4 - t3) / 1e9), (long long)tot.users,
           (long long)tot.items, (long long)tot.pairs, tot.bytes / 1048576.0);
    double rss1 = rss_mib();
    printf("VmRSS: %.0f MiB at start, %.0f MiB with catalog + state (event array freed)\n", rss0,
           rss1);

    struct reco_config rc;
    reco_config_init(&rc);
    rc.refresh_ms = 0;
    int64_t t5 = core_mono_ns();
    struct reco *reco = reco_new(&rc, w.shards, NSHARDS, w.cat);
    int64_t t6 = core_mono_ns();
    double rss2 = rss_mib();
    reco_refresh(reco);
    int64_t t7 = core_mono_ns();
    double rss3 = rss_mib();
    struct reco_stats rs;
    reco_get_stats(reco, &rs);
    printf("model: reco_new (first build) %.0f ms, reco_refresh %.0f ms (model_build_us %lld), "
           "%lld items\n",
           (t6 - t5) / 1e6, (t7 - t6) / 1e6, (long long)rs.model_build_us,
           (long long)rs.model_items);
    printf("VmRSS: %.0f MiB after the first build (+%.0f), %.0f MiB after a rebuild\n", rss2,
           rss2 - rss1, rss3);

    printf("\n| scenario | thr | requests | req/s | mean us | p50 us | p90 us | p99 us | p99.9 us "
           "| max us | CPU p50 / p99 us | <10 items | notes |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    const struct scenario sc[] = {
        {"recommend, known users", K_WARM, 1, -1, 0, 0},
        {"recommend, known users", K_WARM, 2, -1, 0, 0},
        {"recommend, + device/locale context", K_CONTEXT, 1, -1, 0, 0},
        {"recommend, unknown users (cold)", K_COLD, 1, -1, 0, 0},
        {"similar items (Zipf-drawn)", K_SIMILAR, 1, -1, 0, 0},
        {"recommend + writer (unthrottled)", K_WARM, 1, 0, 0, 0},
        {"recommend + writer 20k ev/s", K_WARM, 1, 20000, 0, 0},
        {"recommend + writer 20k + rebuild 2s", K_WARM, 1, 20000, 2000, rebuild_s * 1000},
    };
    for (size_t i = 0; i < sizeof sc / sizeof *sc; i++)
        if (selected(only, (int)i + 1))
            run(&w, reco, &sc[i], n);
    if (selected(only, 0)) {
        live_reads(&w, 20000, rc.covisit_seeds);
        scans(&w);
    }
    reco_free(reco);
    for (int p = 0; p < NSHARDS; p++)
        state_shard_free(w.shards[p]);
    catalog_close(w.cat);
    return 0;
}
