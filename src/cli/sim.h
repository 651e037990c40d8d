/*
 * sim: the synthetic-traffic model and driver behind `recstream simulate`.
 *
 * The model (sim_model.c) is pure and deterministic: given a seed it makes the same catalog,
 * the same users with the same tastes, and each user makes the same choices (every user
 * draws from its own random stream, so the interleaving of users, the number of worker
 * threads and the timing of replies never change what a user does next; only the
 * recommendations the server returns do). It writes events as JSON; it does no I/O.
 *
 * The driver (sim_run.c) owns the network: catalog upload, onboarding preferences,
 * recommendation requests, batching events to the rate, retries and the summaries.
 */
#ifndef RECSTREAM_CLI_SIM_H
#define RECSTREAM_CLI_SIM_H

#include "cli/httpc.h"
#include "core/core.h"

/* ---- random numbers ---------------------------------------------------------------------- */

/* xoshiro256** seeded through splitmix64: small, fast and good enough for a traffic model. */
struct sim_rng {
    uint64_t s[4];
};

/* Seeds r from (seed, stream): different streams of one seed are independent sequences. */
void sim_rng_seed(struct sim_rng *r, uint64_t seed, uint64_t stream);
uint64_t sim_rng_next(struct sim_rng *r);
/* Uniform in [0, 1). */
double sim_rng_unit(struct sim_rng *r);
/* Uniform integer in [0, n); n > 0. */
uint32_t sim_rng_below(struct sim_rng *r, uint32_t n);
/* Lognormal with the given median and sigma (of the underlying normal). */
double sim_rng_lognormal(struct sim_rng *r, double median, double sigma);

/* ---- Zipf sampler ----------------------------------------------------------------------- */

/* P(rank k) proportional to 1 / (k + 1)^s for k in [0, n): inverse CDF by binary search. */
struct sim_zipf {
    size_t n;
    double *cdf; /* n entries, cdf[n - 1] == 1 */
};

/* n may be 0 (then sampling returns 0 and callers must not use it). */
void sim_zipf_init(struct sim_zipf *z, size_t n, double s);
void sim_zipf_dispose(struct sim_zipf *z);
size_t sim_zipf_sample(const struct sim_zipf *z, struct sim_rng *r);

/* ---- the catalog and the users ----------------------------------------------------------- */

#define SIM_NCATEGORIES 12
#define SIM_ZIPF_S 1.1
#define SIM_REC_MAX 50       /* recommendation list entries the model looks at */
#define SIM_ID_MAX 24        /* "item-00001", "user-0001" with room for big counts */
#define SIM_MATCH_OTHER 0.05 /* taste match of a category the user does not favour */

struct sim_item {
    uint8_t ncats;
    uint8_t cats[2];
    uint8_t ntags;
    uint8_t tags[4];
    uint8_t adjective, noun, brand;
    bool available;
    uint32_t price_cents;
    int64_t age_ms; /* publishedAt = upload time - age_ms */
};

/* Items of one category, most popular first (popularity within it is Zipf). */
struct sim_category {
    size_t n;
    uint32_t *items;
    struct sim_zipf zipf;
};

struct sim_user {
    uint32_t idx; /* "user-%04u" of idx + 1 */
    uint8_t nfav;
    uint8_t fav[3];
    double weight[3]; /* taste for fav[i] in (0, 1], the strongest is 1 */
    uint8_t device, locale;
    bool onboarding; /* answers the onboarding survey before its first session */
    struct sim_rng rng;
    uint32_t session;    /* sessions started so far */
    uint32_t steps_left; /* of the current session; 0 between sessions */
    int64_t next_ms;     /* simulated time of the next step */
};

struct sim_model {
    uint64_t seed;
    size_t nitems, nusers;
    struct sim_item *items;
    struct sim_category cats[SIM_NCATEGORIES];
    struct sim_user *users;
};

/* Builds the catalog (nitems >= 1) and the users (nusers >= 1) of seed. Aborts on out of
 * memory; never fails otherwise. */
void sim_model_init(struct sim_model *m, uint64_t seed, size_t nitems, size_t nusers);
void sim_model_dispose(struct sim_model *m);

/* Names of the fixed vocabularies (static strings). */
const char *sim_category_name(unsigned cat);
const char *sim_device_name(unsigned device);
const char *sim_locale_name(unsigned locale);

/* "item-00001" for index 0 and "user-0001" for user 0, into out (SIM_ID_MAX bytes). */
void sim_item_id(size_t idx, char *out);
void sim_user_id(size_t idx, char *out);
/* The catalog index of an "item-NNNNN" id of this model, or -1 for any other id. */
int64_t sim_item_index(const struct sim_model *m, const char *id);

/* Appends item idx as one NDJSON line of POST /v1/items (with "itemId" and a trailing
 * newline); publishedAt is relative to now_ms. */
void sim_item_json(const struct sim_model *m, size_t idx, int64_t now_ms, struct core_buf *out);
/* Appends the onboarding body of PUT /v1/users/{id}/preferences: {"categories":[...]}. */
void sim_user_prefs_json(const struct sim_user *u, struct core_buf *out);

/* How much u likes item idx (-1: an item not in the catalog): the taste weight of the
 * item's best category, SIM_MATCH_OTHER when it has none of u's favourites. */
double sim_user_match(const struct sim_model *m, const struct sim_user *u, int64_t idx);
/* P(click) of an item with taste match at 1-based position: 0.6 * match / (1 + 0.3 pos). */
double sim_click_prob(double match, int position);
/* A browsing choice: a category by taste (sometimes any), then an item by Zipf in it. */
size_t sim_user_pick_item(const struct sim_model *m, struct sim_user *u);

/* ---- sessions and events ----------------------------------------------------------------- */

/* Where a step's events go: the caller's JSON array under construction, and tallies of what
 * was written since the caller last cleared them. */
struct sim_sink {
    struct core_buf *out; /* events are appended as "," separated JSON objects */
    size_t n;             /* events in out; a "," precedes every one but the first */
    const char *run_id;   /* prefix of eventIds and sessionIds: unique per process */
    uint64_t seq;         /* next eventId number */
    int64_t now_ms;       /* event timestamps */
    uint64_t impressions, clicks, carts, purchases, views;
};

enum sim_action { SIM_ACT_RECOMMEND, SIM_ACT_BROWSE };

/* A recommendation list as the server returned it (pointers owned by the caller). */
struct sim_rec {
    const char *rec_id;
    size_t n;
    const char *items[SIM_REC_MAX];
};

/* Starts u's next step (and a new session of 3..15 steps when none is running) and says
 * whether the user asks for recommendations or browses. */
enum sim_action sim_step_begin(const struct sim_model *m, struct sim_user *u);
/* u saw rec: one impression per item, at most one click (cascade: top down, each position
 * clicked with sim_click_prob, stop at the first), which may lead to add_to_cart and
 * purchase, all carrying rec_id. Returns the clicked 1-based position or 0. */
int sim_step_recommended(const struct sim_model *m, struct sim_user *u, const struct sim_rec *rec,
                         struct sim_sink *sink);
/* u browses one item: view, dwell (lognormal ms), sometimes scroll, add_to_cart, purchase. */
void sim_step_browse(const struct sim_model *m, struct sim_user *u, struct sim_sink *sink);
/* Ends the step: schedules u's next step a few simulated seconds later, or its next session
 * after an idle gap. */
void sim_step_end(struct sim_user *u);

/* ---- scheduling: which user acts next --------------------------------------------------- */

/* A min-heap of users by (next_ms, idx): the user whose next step is due first. */
struct sim_sched {
    size_t n;
    struct sim_user **heap;
};

/* Schedules the users of m with idx % nparts == part (each driver thread owns one part). */
void sim_sched_init(struct sim_sched *s, struct sim_model *m, size_t part, size_t nparts);
void sim_sched_dispose(struct sim_sched *s);
/* The user due next (NULL when the part is empty); after its step, call sim_sched_update. */
struct sim_user *sim_sched_peek(const struct sim_sched *s);
/* Restores the order after the top user's next_ms moved forward. */
void sim_sched_update(struct sim_sched *s);

/* ---- the driver ------------------------------------------------------------------------- */

struct sim_options {
    struct httpc_url url;
    int64_t users, items;
    int64_t rate;        /* events per second */
    int64_t duration_ms; /* 0: until SIGINT / SIGTERM */
    int64_t seed;
    int64_t workers; /* threads, each with its own connection and users; 0: automatic */
    bool quiet;
    char api_key[128]; /* sent as Authorization: Bearer; "" for none */
};

/*
 * Runs the simulation: uploads the catalog, then sends traffic until the duration passed or
 * SIGINT / SIGTERM arrived, printing a summary line every ~10 s (unless quiet) and a final
 * one. The calling thread must have blocked SIGINT and SIGTERM (threads started here
 * inherit the mask; the calling thread waits for them). Returns the exit status: 0, or 1
 * when the server could not be reached at all or refused the API key (401/403).
 */
int sim_run(const struct sim_options *o);

#endif
