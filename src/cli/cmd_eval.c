/*
 * `recstream eval`: offline evaluation on a real dataset through the real pipeline, in
 * process: every interaction goes through ingest (validation, pseudonymisation, the segment
 * log), the stream processor (state) and the recommender, exactly as when serving.
 *
 * prequential (default): replay in time order; before each interaction whose user already
 * has an earlier one, ask for the user's top K (excluding everything the user interacted
 * with so far), then ingest the interaction. Hit = the item is in the top K.
 * leave-last-out: each user's last interaction is the test case, the rest trains; full
 * ranking over all items (RecBole's definitions).
 * Both compute a popularity baseline in the same run: items by interaction count so far, ties
 * by item id ascending (as strings), same exclusions.
 */
#include "catalog/catalog.h"
#include "cli/cli_int.h"
#include "cli/eval.h"
#include "evlog/evlog.h"
#include "ingest/ingest.h"
#include "privacy/privacy.h"
#include "privacy/userkeys.h"

#include <sodium.h>
#include "reco/reco.h"
#include "stream/stream.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#define MAX_KS 8

struct eval_config {
    char format[32];
    char input[1024];
    char protocol[32];
    char json[1024];
    char svg[1024];
    char data[1024];
    int ks[MAX_KS];
    int nk;
    double threshold;
    int64_t limit;
    int64_t partitions;
    int64_t refresh_every;
    struct reco_config reco;
    bool quiet;
    bool repeats;
};

#define CFG ((struct eval_config *)cfg)

static int set_format(void *cfg, const char *v, char *err, size_t es)
{
    static const char *const ok[] = {"movielens", "movielens-csv", "otto", "diginetica", "ndjson"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!strcmp(v, ok[i]))
            return cli__set_str(CFG->format, sizeof CFG->format, v, err, es);
    snprintf(err, es, "expected movielens, movielens-csv, otto, diginetica or ndjson");
    return CORE_E_INVALID;
}

static int set_input(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(CFG->input, sizeof CFG->input, v, err, es);
}

static int set_protocol(void *cfg, const char *v, char *err, size_t es)
{
    if (strcmp(v, "prequential") && strcmp(v, "leave-last-out")) {
        snprintf(err, es, "expected prequential or leave-last-out");
        return CORE_E_INVALID;
    }
    return cli__set_str(CFG->protocol, sizeof CFG->protocol, v, err, es);
}

static int set_json(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(CFG->json, sizeof CFG->json, v, err, es);
}

static int set_svg(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(CFG->svg, sizeof CFG->svg, v, err, es);
}

static int set_data(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(CFG->data, sizeof CFG->data, v, err, es);
}

static int set_k(void *cfg, const char *v, char *err, size_t es)
{
    CFG->nk = 0;
    const char *p = v;
    while (*p) {
        char *end;
        errno = 0;
        long k = strtol(p, &end, 10);
        if (errno || end == p || k < 1 || k > RECO_COUNT_MAX || CFG->nk == MAX_KS ||
            (*end && *end != ',')) {
            snprintf(err, es, "expected a list such as 10,20 (each 1..%d, at most %d)",
                     RECO_COUNT_MAX, MAX_KS);
            return CORE_E_INVALID;
        }
        CFG->ks[CFG->nk++] = (int)k;
        p = *end ? end + 1 : end;
    }
    return CFG->nk ? 0 : CORE_E_INVALID;
}

static int set_threshold(void *cfg, const char *v, char *err, size_t es)
{
    char *end;
    CFG->threshold = strtod(v, &end);
    if (*end || end == v) {
        snprintf(err, es, "expected a number");
        return CORE_E_INVALID;
    }
    return 0;
}

static int set_limit(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_int(&CFG->limit, v, 0, INT64_MAX, err, es);
}

static int set_partitions(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_int(&CFG->partitions, v, 1, 256, err, es);
}

static int set_refresh(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_int(&CFG->refresh_every, v, 1, INT64_MAX, err, es);
}

static int set_weights(void *cfg, const char *v, char *err, size_t es)
{
    return reco_weights_parse(&CFG->reco.weights, v, err, es);
}

static int set_seed_decay(void *cfg, const char *v, char *err, size_t es)
{
    char *end;
    double x = strtod(v, &end);
    if (*end || !(x > 0 && x <= 1)) {
        snprintf(err, es, "expected a number in (0, 1]");
        return CORE_E_INVALID;
    }
    CFG->reco.seed_decay = x;
    return 0;
}

static int set_seeds(void *cfg, const char *v, char *err, size_t es)
{
    int64_t n;
    if (core_parse_i64(v, 1, STATE_READ_RECENT_MAX, &n)) {
        snprintf(err, es, "expected 1..%d", STATE_READ_RECENT_MAX);
        return CORE_E_INVALID;
    }
    CFG->reco.recent_items = (int)n;
    return 0;
}

static int set_repeats(void *cfg, const char *v, char *err, size_t es)
{
    (void)v;
    (void)err;
    (void)es;
    CFG->repeats = true;
    CFG->reco.exclude_types = 0;
    return 0;
}

static int set_covisit_seeds(void *cfg, const char *v, char *err, size_t es)
{
    int64_t n;
    if (core_parse_i64(v, 0, STATE_READ_RECENT_MAX, &n)) {
        snprintf(err, es, "expected 0..%d", STATE_READ_RECENT_MAX);
        return CORE_E_INVALID;
    }
    CFG->reco.covisit_seeds = (int)n;
    return 0;
}

static int set_diversity(void *cfg, const char *v, char *err, size_t es)
{
    int64_t n;
    if (core_parse_i64(v, 0, RECO_COUNT_MAX, &n)) {
        snprintf(err, es, "expected 0..%d", RECO_COUNT_MAX);
        return CORE_E_INVALID;
    }
    CFG->reco.diversity_cap = (int)n;
    return 0;
}

static int set_quiet(void *cfg, const char *v, char *err, size_t es)
{
    (void)v;
    (void)err;
    (void)es;
    CFG->quiet = true;
    return 0;
}

static const struct cli_opt eval_opts[] = {
    {"format", "FORMAT", "movielens | movielens-csv | otto | diginetica | ndjson", set_format},
    {"input", "PATH", "the dataset file (u.data, ratings.csv, train.jsonl, ...)", set_input},
    {"protocol", "NAME", "prequential (default) | leave-last-out", set_protocol},
    {"k", "K,K", "cut-offs (default 10)", set_k},
    {"json", "FILE", "write the results as JSON", set_json},
    {"svg", "FILE", "draw HR@K over time per method", set_svg},
    {"threshold", "R", "ratings below R are dropped (default 0: keep all)", set_threshold},
    {"limit", "N", "use the first N interactions of the file (default all)", set_limit},
    {"partitions", "N", "log partitions of the in-process pipeline (default 8)", set_partitions},
    {"refresh-every", "N", "rebuild the recommender's model every N events (default 200)",
     set_refresh},
    {"reco-weights", "SRC=W,..", "blend weights (as recstream serve)", set_weights},
    {"seeds", "N", "recent items of the user used as seeds (default 10)", set_seeds},
    {"covisit-seeds", "N", "newest seeds whose co-visitation is read live (default 3)",
     set_covisit_seeds},
    {"diversity-cap", "N",
     "most items of one category per list (default 0 = half the list, as serve)", set_diversity},
    {"seed-decay", "X", "weight of the k-th most recent seed: X^k (default 0.85)", set_seed_decay},
    {"data", "DIR", "keep the pipeline's data here (default: a temporary directory, removed)",
     set_data},
    {"repeats", NULL,
     "items the user already interacted with may be recommended and count as hits (both "
     "methods; for sessions that revisit items, e.g. OTTO)",
     set_repeats},
    {"quiet", NULL, "no progress", set_quiet},
};

/* ---- the in-process pipeline -------------------------------------------------------------- */

struct pipe {
    struct evlog *log;
    struct ingest *ing;
    struct stream *st;
    struct catalog *cat;
    struct reco *reco;
    struct state_shard **shards;
    int32_t np;
    int64_t *pending; /* per partition: next offset to wait for (-1: nothing pending) */
    struct privacy_key key;
    struct seal_key data_key;
    struct userkeys *uk; /* in memory: the run's data is deleted with it */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
};

static void on_done(void *arg)
{
    struct pipe *p = arg;
    pthread_mutex_lock(&p->mu);
    p->done = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Ingests one interaction and waits for its acknowledgement. */
static int ingest_one(struct pipe *p, const struct eval_data *d, const struct eval_event *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "userId", d->users[e->user]);
    cJSON_AddStringToObject(o, "eventType", event_type_get(e->type)->name);
    cJSON_AddStringToObject(o, "itemId", d->items[e->item]);
    cJSON_AddNumberToObject(o, "timestamp", (double)e->ts_ms);
    if (e->has_value)
        cJSON_AddNumberToObject(o, "value", e->value);
    struct ingest_item it = {.value = o, .partition = -1};
    struct ingest_batch b;
    ingest_batch_init(&b, &it, 1);
    b.source = "eval";
    b.no_deadletters = true;
    p->done = false;
    ingest_batch_submit(p->ing, &b, on_done, p);
    pthread_mutex_lock(&p->mu);
    while (!p->done)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    int rc = it.status;
    if (rc == 0 && !it.duplicate)
        p->pending[it.out_partition] = it.out_offset + 1;
    if (rc != 0)
        fprintf(stderr, "recstream eval: event rejected: %s %s\n", it.err.field, it.err.message);
    ingest_batch_dispose(&b);
    cJSON_Delete(o);
    return rc;
}

/* Waits until the processors applied everything ingested so far. */
static int settle(struct pipe *p)
{
    for (int32_t i = 0; i < p->np; i++) {
        if (p->pending[i] < 0)
            continue;
        int rc = stream_wait_applied(p->st, i, p->pending[i], 60000);
        if (rc < 0)
            return rc;
        p->pending[i] = -1;
    }
    return 0;
}

static int pipe_open(struct pipe *p, const struct eval_config *c, const char *dir,
                     const struct eval_data *d)
{
    char path[1200];
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    uint8_t kb[PRIVACY_KEY_BYTES];
    for (size_t i = 0; i < sizeof kb; i++)
        kb[i] = (uint8_t)(i * 31 + 7); /* eval-only key: the data never leaves the run */
    privacy_key_set(&p->key, kb);
    /* Sealed like serve's log (the measured pipeline is the real one), under a random key. */
    memset(p->data_key.id, 0, sizeof p->data_key.id);
    randombytes_buf(p->data_key.key, sizeof p->data_key.key);
    struct userkeys_options uo;
    userkeys_options_init(&uo);
    uo.data_key = &p->data_key;
    uo.max_users = INT32_MAX / 4;
    int rc = userkeys_open(&uo, &p->uk);
    if (rc < 0)
        return rc;
    struct evlog_file_options lo;
    evlog_file_options_init(&lo);
    lo.keys = p->uk;
    snprintf(path, sizeof path, "%s/log", dir);
    lo.dir = path;
    lo.partitions = (int32_t)c->partitions;
    lo.fsync = EVLOG_FSYNC_NONE;
    rc = evlog_file_open(&lo, &p->log);
    if (rc < 0)
        return rc;
    struct ingest_config ic;
    ingest_config_init(&ic);
    ic.userkeys = p->uk;
    rc = ingest_new(&ic, p->log, &p->key, &p->ing);
    if (rc < 0)
        return rc;
    struct catalog_options co;
    catalog_options_init(&co);
    co.dir = NULL;
    co.fsync = false;
    rc = catalog_open(&co, &p->cat);
    if (rc < 0)
        return rc;
    for (size_t i = 0; d->meta && i < d->nitems; i++) {
        const struct eval_item_meta *m = &d->meta[i];
        cJSON *o = cJSON_CreateObject();
        if (m->title)
            cJSON_AddStringToObject(o, "title", m->title);
        cJSON *cats = cJSON_AddArrayToObject(o, "categories");
        for (int k = 0; k < m->ncategories && k < CATALOG_CATEGORIES_MAX; k++)
            cJSON_AddItemToArray(cats, cJSON_CreateString(m->categories[k]));
        if (m->published_ms)
            cJSON_AddNumberToObject(o, "publishedAt", (double)m->published_ms);
        bool created;
        struct event_error err;
        if (catalog_put(p->cat, d->items[i], strlen(d->items[i]), o, &created, &err) < 0)
            fprintf(stderr, "recstream eval: item %s metadata skipped: %s %s\n", d->items[i],
                    err.field, err.message);
        cJSON_Delete(o);
    }
    struct stream_config sc;
    stream_config_init(&sc);
    snprintf(path, sizeof path, "%s/checkpoints", dir);
    sc.checkpoint_dir = path;
    sc.checkpoint_interval_ms = 3600 * 1000;
    sc.checkpoint_events = INT64_MAX;
    sc.state.catalog = p->cat;
    sc.data_key = &p->data_key;
    /* the dataset is the population: nobody expires (serve's 30-day idle TTL would drop
     * users who come back after a month, common in ratings data) */
    sc.state.user_ttl_ms = INT64_MAX / 4;
    sc.state.item_ttl_ms = INT64_MAX / 4;
    rc = stream_start(&sc, p->log, &p->st);
    if (rc < 0)
        return rc;
    p->np = stream_partitions(p->st);
    p->shards = core_xmalloc((size_t)p->np * sizeof *p->shards);
    p->pending = core_xmalloc((size_t)p->np * sizeof *p->pending);
    for (int32_t i = 0; i < p->np; i++) {
        p->shards[i] = stream_shard(p->st, i);
        p->pending[i] = -1;
    }
    struct reco_config rc2 = c->reco;
    rc2.refresh_ms = 0;
    rc2.exploration = 0; /* offline: no exploration slots (they are for new catalog items) */
    p->reco = reco_new(&rc2, p->shards, p->np, p->cat);
    return 0;
}

static void pipe_close(struct pipe *p)
{
    reco_free(p->reco);
    if (p->ing)
        ingest_free(p->ing);
    if (p->st)
        stream_stop(p->st, false);
    if (p->log)
        evlog_close(p->log);
    catalog_close(p->cat);
    free(p->shards);
    free(p->pending);
    privacy_key_dispose(&p->key);
    userkeys_free(p->uk);
    seal_key_dispose(&p->data_key);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
}

/* ---- the user's history (exclusions) and item lookup ------------------------------------------
 */

struct seen {
    uint64_t *t;
    size_t mask;
};

static void seen_init(struct seen *s, size_t n)
{
    size_t cap = 1024;
    while (cap < n * 2 + 16)
        cap *= 2;
    s->t = core_xcalloc(cap, sizeof *s->t);
    s->mask = cap - 1;
}

static uint64_t pair(uint32_t user, uint32_t item)
{
    return ((uint64_t)user << 32 | item) + 1;
}

static bool seen_has(const struct seen *s, uint64_t k)
{
    for (size_t i = XXH3_64bits(&k, sizeof k) & s->mask; s->t[i]; i = (i + 1) & s->mask)
        if (s->t[i] == k)
            return true;
    return false;
}

static bool seen_add(struct seen *s, uint64_t k)
{
    size_t i = XXH3_64bits(&k, sizeof k) & s->mask;
    for (; s->t[i]; i = (i + 1) & s->mask)
        if (s->t[i] == k)
            return false;
    s->t[i] = k;
    return true;
}

struct items_index {
    uint32_t *t;
    size_t mask;
    const struct eval_data *d;
};

static void index_build(struct items_index *x, const struct eval_data *d)
{
    size_t cap = 1024;
    while (cap < d->nitems * 2 + 16)
        cap *= 2;
    x->t = core_xcalloc(cap, sizeof *x->t);
    x->mask = cap - 1;
    x->d = d;
    for (uint32_t i = 0; i < d->nitems; i++) {
        size_t k = XXH3_64bits(d->items[i], strlen(d->items[i])) & x->mask;
        while (x->t[k])
            k = (k + 1) & x->mask;
        x->t[k] = i + 1;
    }
}

static uint32_t index_find(const struct items_index *x, const char *id, size_t len)
{
    for (size_t k = XXH3_64bits(id, len) & x->mask; x->t[k]; k = (k + 1) & x->mask) {
        const char *s = x->d->items[x->t[k] - 1];
        if (strlen(s) == len && !memcmp(s, id, len))
            return x->t[k] - 1;
    }
    return UINT32_MAX;
}

struct excl_arg {
    const struct items_index *idx;
    const struct seen *seen;
    uint32_t user;
};

static bool exclude_fn(void *arg, const char *id, size_t len)
{
    const struct excl_arg *a = arg;
    uint32_t i = index_find(a->idx, id, len);
    return i != UINT32_MAX && seen_has(a->seen, pair(a->user, i));
}

/* ---- the popularity baseline: items ordered by (count desc, id asc), bubbled on increment --- */

struct popularity {
    uint32_t *order, *pos;
    int64_t *count;
    const struct eval_data *d;
};

static const struct eval_data *sort_data;

static int cmp_id(const void *a, const void *b)
{
    return strcmp(sort_data->items[*(const uint32_t *)a], sort_data->items[*(const uint32_t *)b]);
}

static void pop_init(struct popularity *p, const struct eval_data *d)
{
    p->d = d;
    p->order = core_xmalloc((d->nitems + 1) * sizeof *p->order);
    p->pos = core_xmalloc((d->nitems + 1) * sizeof *p->pos);
    p->count = core_xcalloc(d->nitems + 1, sizeof *p->count);
    for (uint32_t i = 0; i < d->nitems; i++)
        p->order[i] = i;
    sort_data = d;
    qsort(p->order, d->nitems, sizeof *p->order, cmp_id);
    for (uint32_t i = 0; i < d->nitems; i++)
        p->pos[p->order[i]] = i;
}

static bool pop_better(const struct popularity *p, uint32_t a, uint32_t b)
{
    if (p->count[a] != p->count[b])
        return p->count[a] > p->count[b];
    return strcmp(p->d->items[a], p->d->items[b]) < 0;
}

static void pop_inc(struct popularity *p, uint32_t item)
{
    p->count[item]++;
    uint32_t i = p->pos[item];
    while (i > 0 && pop_better(p, item, p->order[i - 1])) {
        p->order[i] = p->order[i - 1];
        p->pos[p->order[i]] = i;
        i--;
    }
    p->order[i] = item;
    p->pos[item] = i;
}

static int pop_top(const struct popularity *p, const struct seen *s, uint32_t user, int k,
                   uint32_t *out)
{
    int n = 0;
    for (size_t i = 0; i < p->d->nitems && n < k; i++)
        if (!s || !seen_has(s, pair(user, p->order[i])))
            out[n++] = p->order[i];
    return n;
}

static void pop_free(struct popularity *p)
{
    free(p->order);
    free(p->pos);
    free(p->count);
}

/* ---- protocols ------------------------------------------------------------------------------ */

struct run {
    const struct eval_config *c;
    const struct eval_data *d;
    struct pipe p;
    struct items_index idx;
    struct seen seen;
    struct popularity pop;
    char (*keys)[EVENT_KEY_HEX + 1];
    struct eval_metrics *m_reco, *m_pop;
    struct eval_latency *lat;
    int maxk;
    int64_t since_refresh;
    struct reco_result res;
};

/* Recommends for user and scores both methods against target. */
static void evaluate(struct run *r, uint32_t user, uint32_t target, int64_t ts)
{
    struct excl_arg ea = {&r->idx, &r->seen, user};
    struct reco_request rq = {.user_key = r->keys[user],
                              .count = r->maxk,
                              .exclude_fn = r->c->repeats ? NULL : exclude_fn,
                              .exclude_arg = &ea};
    int64_t t0 = core_mono_ns();
    reco_recommend(r->p.reco, &rq, &r->res);
    eval_latency_add(r->lat, (double)(core_mono_ns() - t0) / 1000.0);
    uint32_t list[RECO_COUNT_MAX];
    int n = 0;
    for (int i = 0; i < r->res.n; i++) {
        uint32_t it = index_find(&r->idx, r->res.items[i].item_id, strlen(r->res.items[i].item_id));
        if (it != UINT32_MAX)
            list[n++] = it;
    }
    eval_metrics_add(r->m_reco, list, n, target, ts);
    n = pop_top(&r->pop, r->c->repeats ? NULL : &r->seen, user, r->maxk, list);
    eval_metrics_add(r->m_pop, list, n, target, ts);
}

static void learn(struct run *r, const struct eval_event *e)
{
    seen_add(&r->seen, pair(e->user, e->item));
    pop_inc(&r->pop, e->item);
}

static int prequential(struct run *r, size_t *evaluated)
{
    const struct eval_data *d = r->d;
    uint8_t *has = core_xcalloc(d->nusers + 1, 1);
    for (size_t i = 0; i < d->n; i++) {
        const struct eval_event *e = &d->ev[i];
        if (has[e->user]) {
            int rc = settle(&r->p);
            if (rc < 0)
                return rc;
            if (r->since_refresh >= r->c->refresh_every) {
                reco_refresh(r->p.reco);
                r->since_refresh = 0;
            }
            evaluate(r, e->user, e->item, e->ts_ms);
            (*evaluated)++;
        }
        if (ingest_one(&r->p, d, e) < 0)
            return CORE_E_INVALID;
        learn(r, e);
        has[e->user] = 1;
        r->since_refresh++;
        if (!r->c->quiet)
            eval_progress(i + 1, d->n);
    }
    free(has);
    return 0;
}

static int leave_last_out(struct run *r, size_t *evaluated)
{
    const struct eval_data *d = r->d;
    size_t *last = core_xmalloc((d->nusers + 1) * sizeof *last);
    uint32_t *cnt = core_xcalloc(d->nusers + 1, sizeof *cnt);
    for (size_t i = 0; i < d->n; i++) {
        last[d->ev[i].user] = i; /* sorted by time: the last one wins */
        cnt[d->ev[i].user]++;
    }
    for (size_t i = 0; i < d->n; i++) {
        const struct eval_event *e = &d->ev[i];
        if (cnt[e->user] >= 2 && last[e->user] == i)
            continue; /* the test case */
        if (ingest_one(&r->p, d, e) < 0)
            return CORE_E_INVALID;
        learn(r, e);
        if (!r->c->quiet)
            eval_progress(i + 1, 2 * d->n);
    }
    int rc = settle(&r->p);
    if (rc < 0)
        return rc;
    reco_refresh(r->p.reco);
    size_t done = 0;
    for (uint32_t u = 0; u < d->nusers; u++) {
        if (cnt[u] < 2)
            continue;
        const struct eval_event *e = &d->ev[last[u]];
        evaluate(r, u, e->item, e->ts_ms);
        (*evaluated)++;
        if (!r->c->quiet)
            eval_progress(d->n + (++done) * d->n / d->nusers, 2 * d->n);
    }
    free(last);
    free(cnt);
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void print_table(const struct eval_config *c, const struct eval_method *ms, int nm,
                        size_t events, size_t evaluated, double secs)
{
    printf("protocol %s  dataset %s  events %zu  evaluated %zu  (%.1f s)\n", c->protocol, c->input,
           events, evaluated, secs);
    printf("%-12s", "method");
    for (int i = 0; i < c->nk; i++)
        printf("  HR@%-4d NDCG@%-4d MRR@%-4d cov@%-4d", c->ks[i], c->ks[i], c->ks[i], c->ks[i]);
    printf("  p50us   p99us\n");
    for (int m = 0; m < nm; m++) {
        printf("%-12s", ms[m].name);
        for (int i = 0; i < c->nk; i++) {
            struct eval_result er;
            eval_metrics_result(ms[m].metrics, i, &er);
            printf("  %-7.4f %-9.4f %-8.4f %-8.4f", er.hr, er.ndcg, er.mrr, er.coverage);
        }
        if (ms[m].latency)
            printf("  %-7.0f %-7.0f", eval_latency_percentile(ms[m].latency, 50),
                   eval_latency_percentile(ms[m].latency, 99));
        printf("\n");
    }
}

int cli_cmd_eval(int argc, char **argv)
{
    struct eval_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.protocol, sizeof c.protocol, "prequential");
    c.ks[0] = 10;
    c.nk = 1;
    c.partitions = 8;
    c.refresh_every = 200;
    reco_config_init(&c.reco);
    int prc = cli__parse("eval", "--format FORMAT --input PATH [options]", eval_opts,
                         sizeof eval_opts / sizeof *eval_opts, &c, argc, argv);
    if (prc)
        return prc > 0 ? 0 : 2;
    if (!c.format[0] || !c.input[0]) {
        fprintf(stderr, "recstream eval: --format and --input are required\n");
        return 2;
    }
    core_log_set_level(CORE_LOG_WARN);
    struct eval_load_opts lo;
    eval_load_opts_init(&lo);
    lo.threshold = c.threshold;
    lo.limit = (size_t)c.limit;
    struct eval_data d;
    char err[512];
    int64_t t0 = core_mono_ns();
    if (eval_load(c.format, c.input, &lo, &d, err, sizeof err) < 0) {
        fprintf(stderr, "recstream eval: %s\n", err);
        return 1;
    }
    if (d.n == 0) {
        fprintf(stderr, "recstream eval: %s has no interactions\n", c.input);
        eval_data_free(&d);
        return 1;
    }
    char dir[1100];
    bool tmp = !c.data[0];
    if (tmp) {
        snprintf(dir, sizeof dir, "%s/recstream-eval-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(dir)) {
            fprintf(stderr, "recstream eval: cannot create a temporary directory: %s\n",
                    strerror(errno));
            eval_data_free(&d);
            return 1;
        }
    } else {
        snprintf(dir, sizeof dir, "%s", c.data);
    }

    static struct run r;
    memset(&r, 0, sizeof r);
    r.c = &c;
    r.d = &d;
    for (int i = 0; i < c.nk; i++)
        if (c.ks[i] > r.maxk)
            r.maxk = c.ks[i];
    int rc = pipe_open(&r.p, &c, dir, &d);
    if (rc < 0) {
        fprintf(stderr, "recstream eval: cannot start the pipeline in %s: %s\n", dir,
                core_strerror(rc));
    } else {
        index_build(&r.idx, &d);
        seen_init(&r.seen, d.n);
        pop_init(&r.pop, &d);
        r.keys = core_xmalloc((d.nusers + 1) * sizeof *r.keys);
        for (size_t u = 0; u < d.nusers; u++)
            privacy_pseudonym_user(&r.p.key, d.users[u], strlen(d.users[u]), r.keys[u]);
        r.m_reco = eval_metrics_new(c.ks, c.nk, d.nitems);
        r.m_pop = eval_metrics_new(c.ks, c.nk, d.nitems);
        r.lat = eval_latency_new();
        size_t evaluated = 0;
        rc = strcmp(c.protocol, "prequential") ? leave_last_out(&r, &evaluated)
                                               : prequential(&r, &evaluated);
        if (!c.quiet)
            eval_progress_done();
        if (rc < 0) {
            fprintf(stderr, "recstream eval: the pipeline failed: %s\n", core_strerror(rc));
        } else {
            struct eval_method ms[2] = {{"recstream", r.m_reco, r.lat},
                                        {"popularity", r.m_pop, NULL}};
            print_table(&c, ms, 2, d.n, evaluated, (double)(core_mono_ns() - t0) / 1e9);
            struct reco_stats rs;
            reco_get_stats(r.p.reco, &rs);
            printf("model: %lld builds, last build %.1f ms, %lld items\n",
                   (long long)rs.model_builds, (double)rs.model_build_us / 1000.0,
                   (long long)rs.model_items);
            if (c.json[0] && eval_report_json(c.json, c.protocol, c.input, d.n, ms, 2) < 0) {
                fprintf(stderr, "recstream eval: cannot write %s\n", c.json);
                rc = CORE_E_FAILED;
            }
            char title[1200];
            const char *base = strrchr(c.input, '/');
            snprintf(title, sizeof title, "%s: %s, %zu interactions", base ? base + 1 : c.input,
                     c.protocol, d.n);
            if (c.svg[0] && eval_report_svg(c.svg, title, ms, 2) < 0) {
                fprintf(stderr, "recstream eval: cannot write %s\n", c.svg);
                rc = CORE_E_FAILED;
            }
        }
        eval_metrics_free(r.m_reco);
        eval_metrics_free(r.m_pop);
        eval_latency_free(r.lat);
        pop_free(&r.pop);
        free(r.seen.t);
        free(r.idx.t);
        free(r.keys);
    }
    pipe_close(&r.p);
    if (tmp)
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    eval_data_free(&d);
    return rc < 0 ? 1 : 0;
}
