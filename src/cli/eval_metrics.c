/*
 * Ranking metrics (HR, NDCG, MRR, coverage at several K) with a compact HR time series,
 * latency percentiles over a bounded sample, and the progress line of `recstream eval`.
 */
#include "cli/eval.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- metrics ------------------------------------------------------------------------------- */

/* The series keeps at most this many points; past it, adjacent blocks merge pairwise, so a
 * long run ends with 100..200 points (0.5%..1% of the cases each). */
#define SERIES_MAX 200

struct series_point {
    int64_t ts_ms; /* time of the last case in the block */
    int64_t hits;  /* cumulative hits@ks[0] up to and including this block */
    int64_t cases; /* cumulative cases */
};

struct eval_metrics {
    int nk;
    int *ks;
    int kmax;
    size_t nitems;
    int64_t count;
    int64_t *hits; /* per K */
    double *ndcg, *mrr;
    /* Per item, the best (smallest) 0-based list position it ever had (UINT32_MAX: never
     * recommended): coverage@K counts items with best < K, for every K from one array. */
    uint32_t *best;
    struct series_point pts[SERIES_MAX + 1];
    size_t npts;
    int64_t block;    /* cases per point */
    int64_t in_block; /* cases in the open block (not yet a point) */
    int64_t series_hits;
    int64_t last_ts;
};

struct eval_metrics *eval_metrics_new(const int *ks, int nk, size_t nitems)
{
    assert(nk > 0);
    struct eval_metrics *m = core_xcalloc(1, sizeof *m);
    m->nk = nk;
    m->ks = core_xmalloc((size_t)nk * sizeof *m->ks);
    for (int i = 0; i < nk; i++) {
        assert(ks[i] > 0);
        m->ks[i] = ks[i];
        if (ks[i] > m->kmax)
            m->kmax = ks[i];
    }
    m->nitems = nitems;
    m->hits = core_xcalloc((size_t)nk, sizeof *m->hits);
    m->ndcg = core_xcalloc((size_t)nk, sizeof *m->ndcg);
    m->mrr = core_xcalloc((size_t)nk, sizeof *m->mrr);
    m->best = core_xmalloc((nitems ? nitems : 1) * sizeof *m->best);
    for (size_t i = 0; i < nitems; i++)
        m->best[i] = UINT32_MAX;
    m->block = 1;
    return m;
}

void eval_metrics_free(struct eval_metrics *m)
{
    if (!m)
        return;
    free(m->ks);
    free(m->hits);
    free(m->ndcg);
    free(m->mrr);
    free(m->best);
    free(m);
}

/* Closes the open block as a point; past SERIES_MAX points, merges neighbours pairwise.
 * Points are cumulative, so merging two blocks keeps the later point of the pair. */
static void series_close_block(struct eval_metrics *m)
{
    m->pts[m->npts++] = (struct series_point){m->last_ts, m->series_hits, m->count};
    m->in_block = 0;
    if (m->npts <= SERIES_MAX)
        return;
    size_t pairs = m->npts / 2;
    for (size_t i = 0; i < pairs; i++)
        m->pts[i] = m->pts[2 * i + 1];
    /* An odd point left over is a half-filled block of the new size: it becomes the open
     * block again (its counts live on in series_hits / count). */
    m->in_block = (m->npts % 2) ? m->block : 0;
    m->npts = pairs;
    m->block *= 2;
}

void eval_metrics_add(struct eval_metrics *m, const uint32_t *list, int n, uint32_t target,
                      int64_t ts_ms)
{
    int rank = 0; /* 1-based; 0 = not in the list */
    for (int i = 0; i < n && i < m->kmax; i++) {
        if (list[i] == target) {
            rank = i + 1;
            break;
        }
    }
    for (int i = 0; i < n && i < m->kmax; i++) {
        if (list[i] < m->nitems && m->best[list[i]] > (uint32_t)i)
            m->best[list[i]] = (uint32_t)i;
    }
    for (int i = 0; i < m->nk; i++) {
        if (rank > 0 && rank <= m->ks[i]) {
            m->hits[i]++;
            m->ndcg[i] += 1.0 / log2(rank + 1.0);
            m->mrr[i] += 1.0 / rank;
        }
    }
    m->count++;
    m->series_hits += rank > 0 && rank <= m->ks[0];
    m->last_ts = ts_ms;
    if (++m->in_block >= m->block)
        series_close_block(m);
}

void eval_metrics_result(const struct eval_metrics *m, int i, struct eval_result *out)
{
    assert(i >= 0 && i < m->nk);
    double n = m->count > 0 ? (double)m->count : 1.0;
    size_t covered = 0;
    for (size_t it = 0; it < m->nitems; it++)
        covered += m->best[it] < (uint32_t)m->ks[i];
    out->k = m->ks[i];
    out->hr = (double)m->hits[i] / n;
    out->ndcg = m->ndcg[i] / n;
    out->mrr = m->mrr[i] / n;
    out->coverage = m->nitems ? (double)covered / (double)m->nitems : 0;
}

int64_t eval_metrics_count(const struct eval_metrics *m)
{
    return m->count;
}

/* Internals declared in eval.h: the HR series includes the open block as a last point. */
int eval__metrics_nk(const struct eval_metrics *m)
{
    return m->nk;
}

size_t eval__metrics_series_len(const struct eval_metrics *m)
{
    return m->npts + (m->in_block > 0);
}

void eval__metrics_series_at(const struct eval_metrics *m, size_t i, int64_t *ts_ms, double *hr)
{
    assert(i < eval__metrics_series_len(m));
    struct series_point p =
        i < m->npts ? m->pts[i] : (struct series_point){m->last_ts, m->series_hits, m->count};
    *ts_ms = p.ts_ms;
    *hr = p.cases > 0 ? (double)p.hits / (double)p.cases : 0;
}

/* ---- latency ------------------------------------------------------------------------------- */

/* Beyond this many samples (8 MB), reservoir sampling keeps a uniform subset. */
#define LATENCY_MAX_SAMPLES 1000000

struct eval_latency {
    double *v;
    size_t n, cap;
    uint64_t seen; /* samples offered, kept or not */
    uint64_t rng;  /* splitmix64 state: fixed seed, so runs are reproducible */
    double *sorted;
    size_t nsorted; /* n at the last sort; SIZE_MAX when samples changed since */
};

struct eval_latency *eval_latency_new(void)
{
    struct eval_latency *l = core_xcalloc(1, sizeof *l);
    l->rng = 0x9e3779b97f4a7c15ull;
    l->nsorted = SIZE_MAX;
    return l;
}

void eval_latency_free(struct eval_latency *l)
{
    if (!l)
        return;
    free(l->v);
    free(l->sorted);
    free(l);
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void eval_latency_add(struct eval_latency *l, double us)
{
    if (!isfinite(us))
        return;
    l->seen++;
    l->nsorted = SIZE_MAX;
    if (l->n < LATENCY_MAX_SAMPLES) {
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 1024;
            if (l->cap > LATENCY_MAX_SAMPLES)
                l->cap = LATENCY_MAX_SAMPLES;
            l->v = core_xrealloc(l->v, l->cap * sizeof *l->v);
        }
        l->v[l->n++] = us;
        return;
    }
    /* Algorithm R: the new sample replaces a random one with probability MAX / seen. */
    uint64_t j = splitmix64(&l->rng) % l->seen;
    if (j < LATENCY_MAX_SAMPLES)
        l->v[j] = us;
}

static int double_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least p% of the samples at or below it. NaN
 * when there are no samples (reports write null). */
double eval_latency_percentile(struct eval_latency *l, double p)
{
    if (l->n == 0)
        return NAN;
    if (l->nsorted != l->n) {
        l->sorted = core_xrealloc(l->sorted, l->n * sizeof *l->sorted);
        memcpy(l->sorted, l->v, l->n * sizeof *l->sorted);
        qsort(l->sorted, l->n, sizeof *l->sorted, double_cmp);
        l->nsorted = l->n;
    }
    /* p * n first: 99 * 100 / 100 is exactly 99, 0.99 * 100 may not be. */
    double rank = ceil(p * (double)l->n / 100.0 - 1e-9);
    size_t r = rank < 1 ? 1 : rank > (double)l->n ? l->n : (size_t)rank;
    return l->sorted[r - 1];
}

/* ---- progress ------------------------------------------------------------------------------ */

/* The progress line belongs to the process's stderr, so its throttle is process state too
 * (the one place in eval with statics; call from one thread). */
static int64_t progress_last_ns;
static bool progress_shown;

static void group_thousands(size_t v, char *out, size_t outsz)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%zu", v);
    size_t k = 0;
    for (int i = 0; i < n && k + 2 < outsz; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[k++] = ',';
        out[k++] = digits[i];
    }
    out[k] = '\0';
}

void eval_progress(size_t done, size_t total)
{
    /* The clock first: it is a vDSO read, isatty is a system call. */
    int64_t now = core_mono_ns();
    if (progress_last_ns != 0 && now - progress_last_ns < 100000000 && done != total)
        return;
    progress_last_ns = now;
    if (!isatty(STDERR_FILENO))
        return;
    progress_shown = true;
    char d[32], t[32];
    group_thousands(done, d, sizeof d);
    group_thousands(total, t, sizeof t);
    int pct = total ? (int)((double)done * 100.0 / (double)total) : 100;
    fprintf(stderr, "\r[eval] %d%% %s/%s", pct, d, t);
    fflush(stderr);
}

void eval_progress_done(void)
{
    if (progress_shown && isatty(STDERR_FILENO))
        fputc('\n', stderr);
    progress_shown = false;
    progress_last_ns = 0;
}
