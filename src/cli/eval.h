/*
 * Offline evaluation support for `recstream eval`: dataset loaders (to canonical
 * interactions in time order), ranking metrics, and the JSON / SVG reports. The protocol
 * drivers (prequential, leave-last-out) live in cmd_eval.c and call the real ingest, stream
 * and reco code; this file has no pipeline inside.
 */
#ifndef RECSTREAM_CLI_EVAL_H
#define RECSTREAM_CLI_EVAL_H

#include "core/core.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- datasets ------------------------------------------------------------------------------ */

/* One interaction. user / item index the data set's string tables. */
struct eval_event {
    int64_t ts_ms;
    uint32_t user;
    uint32_t item;
    int type;       /* enum event_type (event/event.h) */
    bool has_value; /* ratings: value = the rating */
    double value;
    uint32_t order; /* input order (line number based), the tie-break of the time sort */
};

/* Item metadata found beside the interactions (MovieLens u.item / movies.csv), if any. */
struct eval_item_meta {
    char *title;       /* NULL when unknown */
    char **categories; /* genres */
    int ncategories;
    int64_t published_ms; /* release date; 0 when unknown */
};

struct eval_data {
    struct eval_event *ev; /* sorted by (ts_ms, order) */
    size_t n;
    char **users; /* user id strings, index = eval_event.user */
    size_t nusers;
    char **items; /* item id strings */
    size_t nitems;
    struct eval_item_meta *meta; /* nitems entries, or NULL when no metadata file */
    size_t skipped;              /* input lines dropped (below threshold, malformed, ...) */
};

struct eval_load_opts {
    double threshold; /* ratings below it are dropped (default 0: keep every rating) */
    int rating_type;  /* event type a kept rating becomes (default EVENT_VIEW) */
    size_t limit;     /* stop after this many kept interactions (0 = all) */
};
void eval_load_opts_init(struct eval_load_opts *o);

/* format: "movielens" (u.data; u.item + u.genre beside it give titles and genres),
 * "movielens-csv" (ratings.csv; movies.csv beside it), "otto" (jsonl sessions; a session is a
 * user; clicks/carts/orders -> click/add_to_cart/purchase), "diginetica" (train-item-views
 * csv; a session is a user; timestamp = eventdate + timeframe ms), "ndjson" (canonical events,
 * one per line; lines without an itemId are skipped). Returns 0, or a negative code with a
 * message naming the file, line and problem in err. */
int eval_load(const char *format, const char *path, const struct eval_load_opts *o,
              struct eval_data *out, char *err, size_t errlen);
void eval_data_free(struct eval_data *d);

/* ---- metrics ------------------------------------------------------------------------------- */

/* Accumulates HR@K, NDCG@K, MRR@K over evaluated interactions for several K, catalog
 * coverage@K (distinct items ever recommended in the top K / nitems), and a time series of
 * HR@K for the SVG. Definitions (as RecBole, one relevant item per case): hit = target in the
 * top K; NDCG = 1/log2(rank+1) when hit (rank 1-based); MRR = 1/rank when hit. */
struct eval_metrics;
struct eval_metrics *eval_metrics_new(const int *ks, int nk, size_t nitems);
void eval_metrics_free(struct eval_metrics *m);
/* list: the top-N recommended item indexes (N >= max K when enough items exist), target the
 * held-out item, ts its time (for the series). */
void eval_metrics_add(struct eval_metrics *m, const uint32_t *list, int n, uint32_t target,
                      int64_t ts_ms);
struct eval_result {
    int k;
    double hr, ndcg, mrr, coverage;
};
/* Result for the i-th K given at creation. */
void eval_metrics_result(const struct eval_metrics *m, int i, struct eval_result *out);
int64_t eval_metrics_count(const struct eval_metrics *m);

/* Latency samples (microseconds) and their percentiles (p in [0,100]). */
struct eval_latency;
struct eval_latency *eval_latency_new(void);
void eval_latency_free(struct eval_latency *l);
void eval_latency_add(struct eval_latency *l, double us);
double eval_latency_percentile(struct eval_latency *l, double p);

/* ---- reports ------------------------------------------------------------------------------- */

struct eval_method {
    const char *name; /* "recstream", "popularity" */
    const struct eval_metrics *metrics;
    struct eval_latency *latency; /* may be NULL */
};

/* {"protocol":..,"dataset":..,"events":N,"evaluated":M,"methods":{"recstream":{"hr@10":..,
 * "ndcg@10":..,"mrr@10":..,"coverage@10":..,"latencyUs":{"p50":..,"p99":..}},...}} */
int eval_report_json(const char *path, const char *protocol, const char *dataset, size_t events,
                     const struct eval_method *methods, int nmethods);
/* An SVG line chart of HR@K (the first K) over event time (cumulative, one point per 1% of
 * the evaluated interactions), one line per method, with axes, labels and a legend. */
int eval_report_svg(const char *path, const char *title, const struct eval_method *methods,
                    int nmethods);

/* Internals shared by eval_metrics.c, eval_report.c and their tests: the number of cut-offs
 * and the HR@K time series (points of (event time, cumulative HR at the first K)). */
int eval__metrics_nk(const struct eval_metrics *m);
size_t eval__metrics_series_len(const struct eval_metrics *m);
void eval__metrics_series_at(const struct eval_metrics *m, size_t i, int64_t *ts_ms, double *hr);

/* Progress on stderr when it is a TTY ("\r[eval] 42% 41,000/99,057"); done()=newline. */
void eval_progress(size_t done, size_t total);
void eval_progress_done(void);

#endif
