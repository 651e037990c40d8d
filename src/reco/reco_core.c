/* The recommender object: model ownership and the background refresher; configuration
 * parsing (weights, experiments); the statistics behind the experiment report. */
#include "reco/reco_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

struct reco *reco_new(const struct reco_config *cfg, struct state_shard *const *shards, int nshards,
                      struct catalog *catalog)
{
    struct reco *r = core_xcalloc(1, sizeof *r);
    r->cfg = *cfg;
    for (int k = 0; k < STATE_READ_RECENT_MAX; k++)
        r->seed_w[k] = pow(cfg->seed_decay, k);
    r->shards = shards;
    r->nshards = nshards;
    r->catalog = catalog;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->build_mu, NULL);
    pthread_mutex_init(&r->stop_mu, NULL);
    pthread_cond_init(&r->stop_cv, NULL);
    r->last_events = -1;
    r->cooc = reco__cooc_new(cfg->knn_neighbours);
    reco_refresh(r);
    return r;
}

struct reco_model *reco__model_get(struct reco *r)
{
    pthread_mutex_lock(&r->mu);
    struct reco_model *m = r->model;
    atomic_fetch_add(&m->refs, 1);
    pthread_mutex_unlock(&r->mu);
    return m;
}

static void refresh(struct reco *r, bool full, int64_t budget_ns)
{
    pthread_mutex_lock(&r->build_mu);
    reco__cooc_update(r->cooc, r->shards, r->nshards, full, budget_ns);
    atomic_store(&r->knn_pending, reco__cooc_pending(r->cooc));
    atomic_store(&r->knn_items, reco__cooc_live(r->cooc));
    atomic_store(&r->knn_full, (int64_t)reco__cooc_full_updates(r->cooc));
    struct reco_model *m = reco__model_build(&r->cfg, r->shards, r->nshards, r->catalog, r->cooc);
    pthread_mutex_lock(&r->mu);
    struct reco_model *old = r->model;
    r->model = m;
    pthread_mutex_unlock(&r->mu);
    reco__model_unref(old);
    atomic_fetch_add(&r->builds, 1);
    pthread_mutex_unlock(&r->build_mu);
}

void reco_refresh(struct reco *r)
{
    refresh(r, false, 0);
}

void reco_refresh_within(struct reco *r, int64_t budget_ms)
{
    refresh(r, false, budget_ms * 1000000);
}

void reco_settle(struct reco *r)
{
    refresh(r, true, 0);
}

/* Something changed since the last build: events applied or catalog edits. */
static bool changed(struct reco *r)
{
    int64_t events = 0;
    for (int p = 0; p < r->nshards; p++) {
        struct state_stats st;
        state_shard_stats(r->shards[p], &st);
        events += st.events;
    }
    uint64_t cv = r->catalog ? catalog_version(r->catalog) : 0;
    bool c = events != r->last_events || cv != r->last_catalog_version;
    r->last_events = events;
    r->last_catalog_version = cv;
    return c;
}

static void *refresher(void *arg)
{
    struct reco *r = arg;
    pthread_setname_np(pthread_self(), "reco-model");
    pthread_mutex_lock(&r->stop_mu);
    while (!r->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (r->cfg.refresh_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(r->cfg.refresh_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&r->stop_cv, &r->stop_mu, &ts);
        if (r->stop)
            break;
        pthread_mutex_unlock(&r->stop_mu);
        /* Once the shards stop changing, one full kNN update: nodes that applied the same
         * events then hold identical lists, whatever their update history (reco_cooc.c). */
        bool ch = changed(r), settle = false;
        if (!ch) {
            pthread_mutex_lock(&r->build_mu);
            settle = !reco__cooc_settled(r->cooc);
            pthread_mutex_unlock(&r->build_mu);
        }
        if (ch || settle) {
            /* half a period for kNN lists, so the rest of the model keeps its period
             * (explicit refreshes, e.g. recstream eval's, have no budget) */
            if (settle)
                reco_settle(r);
            else
                reco_refresh_within(r, r->cfg.refresh_ms / 2);
            struct reco_model *m = reco__model_get(r);
            LOG_DEBUG("recommendation model rebuilt", "items=%u took_us=%lld", m->it.n,
                      (long long)m->build_us);
            reco__model_unref(m);
        }
        pthread_mutex_lock(&r->stop_mu);
    }
    pthread_mutex_unlock(&r->stop_mu);
    return NULL;
}

void reco_start(struct reco *r)
{
    if (r->cfg.refresh_ms <= 0 || r->running)
        return;
    changed(r);
    r->running = pthread_create(&r->thread, NULL, refresher, r) == 0;
}

void reco_free(struct reco *r)
{
    if (!r)
        return;
    if (r->running) {
        pthread_mutex_lock(&r->stop_mu);
        r->stop = true;
        pthread_cond_signal(&r->stop_cv);
        pthread_mutex_unlock(&r->stop_mu);
        pthread_join(r->thread, NULL);
    }
    reco__model_unref(r->model);
    reco__cooc_free(r->cooc);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->build_mu);
    pthread_mutex_destroy(&r->stop_mu);
    pthread_cond_destroy(&r->stop_cv);
    free(r);
}

void reco_get_stats(struct reco *r, struct reco_stats *out)
{
    out->requests = atomic_load(&r->requests);
    out->cold_starts = atomic_load(&r->cold_starts);
    out->model_builds = atomic_load(&r->builds);
    out->knn_items = atomic_load(&r->knn_items);
    out->knn_full_updates = atomic_load(&r->knn_full);
    out->knn_pending = atomic_load(&r->knn_pending);
    struct reco_model *m = reco__model_get(r);
    out->model_items = m->it.n;
    out->model_build_us = m->build_us;
    out->model_age_ms = (core_mono_ns() - m->built_ns) / 1000000;
    reco__model_unref(m);
}

/* ---- configuration -------------------------------------------------------------------------- */

int reco_weights_parse(struct reco_weights *out, const char *spec, char *err, size_t errlen)
{
    struct reco_weights copy = *out, *w = &copy; /* *out changes only on success */
    const char *p = spec;
    while (*p) {
        const char *eq = strchr(p, '=');
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        if (!eq || eq > end) {
            snprintf(err, errlen, "expected source=weight, got '%.*s'", (int)(end - p), p);
            return CORE_E_INVALID;
        }
        int src = reco_source_lookup(p, (size_t)(eq - p));
        if (src < 0) {
            snprintf(err, errlen, "unknown source '%.*s'", (int)(eq - p), p);
            return CORE_E_INVALID;
        }
        char num[32];
        size_t n = (size_t)(end - eq - 1);
        if (n == 0 || n >= sizeof num) {
            snprintf(err, errlen, "bad weight for %s", reco_source_name(src));
            return CORE_E_INVALID;
        }
        memcpy(num, eq + 1, n);
        num[n] = 0;
        char *stop;
        errno = 0;
        double v = strtod(num, &stop);
        if (*stop || errno || !isfinite(v) || v < 0) {
            snprintf(err, errlen, "bad weight '%s' for %s (a number >= 0)", num,
                     reco_source_name(src));
            return CORE_E_INVALID;
        }
        w->w[src] = v;
        p = *end ? end + 1 : end;
    }
    *out = copy;
    return 0;
}

static bool name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
            return false;
    return true;
}

int reco_experiment_parse(struct reco_experiment *x, const char *json, size_t len, char *err,
                          size_t errlen)
{
    memset(x, 0, sizeof *x);
    cJSON *root = cJSON_ParseWithLength(json, len);
    int rc = CORE_E_INVALID;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
    const cJSON *vars = cJSON_GetObjectItemCaseSensitive(root, "variants");
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "experiment: not a JSON object");
        goto out;
    }
    if (!cJSON_IsString(name) || strlen(name->valuestring) >= sizeof x->name ||
        !name_ok(name->valuestring)) {
        snprintf(err, errlen, "/name: a string of letters, digits, '-' or '_' (< 64)");
        goto out;
    }
    snprintf(x->name, sizeof x->name, "%s", name->valuestring);
    if (!cJSON_IsArray(vars) || cJSON_GetArraySize(vars) < 1 ||
        cJSON_GetArraySize(vars) > RECO_VARIANTS_MAX) {
        snprintf(err, errlen, "/variants: an array of 1..%d variants", RECO_VARIANTS_MAX);
        goto out;
    }
    int total = 0, i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, vars)
    {
        struct reco_variant *rv = &x->variants[i];
        const cJSON *vn = cJSON_GetObjectItemCaseSensitive(v, "name");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(v, "share");
        const cJSON *ws = cJSON_GetObjectItemCaseSensitive(v, "weights");
        if (!cJSON_IsString(vn) || strlen(vn->valuestring) >= sizeof rv->name ||
            !name_ok(vn->valuestring)) {
            snprintf(err, errlen, "/variants/%d/name: letters, digits, '-' or '_' (< 32)", i);
            goto out;
        }
        snprintf(rv->name, sizeof rv->name, "%s", vn->valuestring);
        if (!cJSON_IsNumber(sh) || sh->valuedouble < 0 || sh->valuedouble > 100 ||
            sh->valuedouble != floor(sh->valuedouble)) {
            snprintf(err, errlen, "/variants/%d/share: an integer percentage", i);
            goto out;
        }
        rv->share = (int)sh->valuedouble;
        total += rv->share;
        reco_weights_default(&rv->weights);
        if (ws && !cJSON_IsObject(ws)) {
            snprintf(err, errlen, "/variants/%d/weights: an object of source: weight", i);
            goto out;
        }
        const cJSON *e;
        cJSON_ArrayForEach(e, ws)
        {
            int src = reco_source_lookup(e->string, strlen(e->string));
            if (src < 0 || !cJSON_IsNumber(e) || !isfinite(e->valuedouble) || e->valuedouble < 0) {
                snprintf(err, errlen, "/variants/%d/weights/%s: unknown source or bad weight", i,
                         e->string);
                goto out;
            }
            rv->weights.w[src] = e->valuedouble;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(x->variants[j].name, rv->name)) {
                snprintf(err, errlen, "/variants/%d/name: duplicate '%s'", i, rv->name);
                goto out;
            }
        i++;
    }
    if (total != 100) {
        snprintf(err, errlen, "/variants: shares add up to %d, not 100", total);
        goto out;
    }
    x->nvariants = i;
    rc = 0;
out:
    cJSON_Delete(root);
    if (rc)
        memset(x, 0, sizeof *x);
    return rc;
}

/* ---- statistics --------------------------------------------------------------------------------
 */

void reco_wilson(int64_t k, int64_t n, double *lo, double *hi)
{
    if (n <= 0) {
        *lo = 0;
        *hi = 1;
        return;
    }
    const double z = 1.959963984540054;
    double p = (double)k / (double)n, nn = (double)n;
    double den = 1 + z * z / nn;
    double centre = (p + z * z / (2 * nn)) / den;
    double half = z * sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn)) / den;
    *lo = fmax(0, centre - half);
    *hi = fmin(1, centre + half);
}

double reco_two_proportion_p(int64_t k1, int64_t n1, int64_t k2, int64_t n2)
{
    if (n1 <= 0 || n2 <= 0)
        return 1;
    double p1 = (double)k1 / (double)n1, p2 = (double)k2 / (double)n2;
    double p = (double)(k1 + k2) / (double)(n1 + n2);
    double se = sqrt(p * (1 - p) * (1.0 / (double)n1 + 1.0 / (double)n2));
    if (!(se > 0))
        return p1 == p2 ? 1 : 0;
    double z = fabs(p1 - p2) / se;
    return erfc(z / sqrt(2.0));
}
