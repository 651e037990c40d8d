/* The deterministic traffic model of `recstream simulate`: catalog, users with latent
 * category tastes, sessions, and the events a step produces. No I/O. */
#include "cli/sim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS (24LL * 3600 * 1000)

/* ---- vocabularies ------------------------------------------------------------------------ */

static const char *const categories[SIM_NCATEGORIES] = {
    "electronics", "books",  "home",    "garden", "sports", "toys",
    "fashion",     "beauty", "grocery", "music",  "movies", "games",
};

/* Typical price per category (the median of a lognormal), in currency units. */
static const double median_price[SIM_NCATEGORIES] = {120, 15, 40, 25, 35, 20,
                                                     60,  18, 8,  22, 15, 45};

#define NOUNS 6
static const char *const nouns[SIM_NCATEGORIES][NOUNS] = {
    {"Headphones", "Speaker", "Charger", "Monitor", "Keyboard", "Camera"},
    {"Novel", "Cookbook", "Biography", "Atlas", "Anthology", "Field Guide"},
    {"Lamp", "Blanket", "Kettle", "Mirror", "Vase", "Shelf"},
    {"Planter", "Hose", "Trowel", "Bird Feeder", "Lantern", "Seed Kit"},
    {"Yoga Mat", "Dumbbell", "Tennis Racket", "Water Bottle", "Running Shoes", "Jump Rope"},
    {"Puzzle", "Robot Kit", "Plush Bear", "Building Blocks", "Kite", "Toy Train"},
    {"Jacket", "Scarf", "Sneakers", "Handbag", "Sunglasses", "Watch"},
    {"Face Serum", "Lipstick", "Shampoo", "Perfume", "Hand Cream", "Nail Kit"},
    {"Coffee Beans", "Olive Oil", "Green Tea", "Dark Chocolate", "Pasta", "Honey"},
    {"Vinyl Record", "Guitar Strings", "Ukulele", "Drum Pad", "Songbook", "Microphone"},
    {"Box Set", "Documentary", "Classic Film", "Animated Film", "Thriller", "Comedy"},
    {"Board Game", "Card Game", "Controller", "Strategy Game", "Puzzle Game", "Racing Game"},
};

#define ADJECTIVES 16
static const char *const adjectives[ADJECTIVES] = {
    "Classic", "Compact", "Deluxe",   "Eco",     "Essential", "Premium", "Portable", "Smart",
    "Vintage", "Modern",  "Handmade", "Organic", "Ultra",     "Cozy",    "Bold",     "Mini",
};

#define BRANDS 16
static const char *const brands[BRANDS] = {
    "Acme",  "Northwind", "Globex",  "Initech", "Umbrella",  "Stark",    "Wayne",  "Wonka",
    "Hooli", "Vandelay",  "Soylent", "Tyrell",  "Cyberdyne", "Aperture", "Oscorp", "Contoso",
};

#define TAGS 20
static const char *const tags[TAGS] = {
    "new",    "bestseller", "sale",     "eco-friendly", "gift",    "limited", "premium",
    "budget", "trending",   "handmade", "family",       "outdoor", "indoor",  "classic",
    "kids",   "travel",     "compact",  "wireless",     "organic", "bundle",
};

#define DEVICES 3
static const char *const devices[DEVICES] = {"mobile", "desktop", "tablet"};

#define LOCALES 8
static const char *const locales[LOCALES] = {"en-US", "en-GB", "de-DE", "fr-FR",
                                             "es-ES", "it-IT", "ja-JP", "pt-BR"};

const char *sim_category_name(unsigned cat)
{
    return cat < SIM_NCATEGORIES ? categories[cat] : "?";
}

const char *sim_device_name(unsigned device)
{
    return device < DEVICES ? devices[device] : "?";
}

const char *sim_locale_name(unsigned locale)
{
    return locale < LOCALES ? locales[locale] : "?";
}

/* ---- random numbers ---------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void sim_rng_seed(struct sim_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed;
    x = splitmix64(&x) ^ (stream * 0xd1b54a32d192ed03ULL);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sim_rng_next(struct sim_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double sim_rng_unit(struct sim_rng *r)
{
    return (double)(sim_rng_next(r) >> 11) * 0x1.0p-53;
}

uint32_t sim_rng_below(struct sim_rng *r, uint32_t n)
{
    /* Lemire's multiply-shift; the bias (n / 2^32) is irrelevant here. */
    return (uint32_t)(((sim_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

double sim_rng_lognormal(struct sim_rng *r, double median, double sigma)
{
    double u1 = 1.0 - sim_rng_unit(r); /* (0, 1]: log() stays finite */
    double u2 = sim_rng_unit(r);
    double normal = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
    return median * exp(sigma * normal);
}

/* Exponentially distributed with the given mean. */
static double rng_exp(struct sim_rng *r, double mean)
{
    return -mean * log(1.0 - sim_rng_unit(r));
}

/* ---- Zipf -------------------------------------------------------------------------------- */

void sim_zipf_init(struct sim_zipf *z, size_t n, double s)
{
    z->n = n;
    z->cdf = n ? core_xmalloc(n * sizeof *z->cdf) : NULL;
    double sum = 0;
    for (size_t k = 0; k < n; k++) {
        sum += 1.0 / pow((double)(k + 1), s);
        z->cdf[k] = sum;
    }
    for (size_t k = 0; k < n; k++)
        z->cdf[k] /= sum;
    if (n)
        z->cdf[n - 1] = 1.0;
}

void sim_zipf_dispose(struct sim_zipf *z)
{
    free(z->cdf);
    z->cdf = NULL;
    z->n = 0;
}

size_t sim_zipf_sample(const struct sim_zipf *z, struct sim_rng *r)
{
    if (z->n == 0)
        return 0;
    double u = sim_rng_unit(r);
    size_t lo = 0, hi = z->n - 1; /* the first k with cdf[k] > u */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* ---- the catalog ------------------------------------------------------------------------- */

enum { STREAM_CATALOG = 1, STREAM_USERS = 1 << 20 };

static void item_make(struct sim_item *it, struct sim_rng *r)
{
    it->ncats = 1;
    it->cats[0] = (uint8_t)sim_rng_below(r, SIM_NCATEGORIES);
    if (sim_rng_unit(r) < 0.3) {
        it->cats[1] =
            (uint8_t)((it->cats[0] + 1 + sim_rng_below(r, SIM_NCATEGORIES - 1)) % SIM_NCATEGORIES);
        it->ncats = 2;
    }
    it->ntags = 0;
    for (uint32_t want = 1 + sim_rng_below(r, 4); it->ntags < want;) {
        uint8_t t = (uint8_t)sim_rng_below(r, TAGS);
        bool dup = false;
        for (int i = 0; i < it->ntags; i++)
            dup |= it->tags[i] == t;
        if (!dup)
            it->tags[it->ntags++] = t;
    }
    it->adjective = (uint8_t)sim_rng_below(r, ADJECTIVES);
    it->noun = (uint8_t)sim_rng_below(r, NOUNS);
    it->brand = (uint8_t)sim_rng_below(r, BRANDS);
    it->available = sim_rng_unit(r) >= 0.03;
    double price = sim_rng_lognormal(r, median_price[it->cats[0]], 0.6);
    if (price > 5000)
        price = 5000;
    it->price_cents = (uint32_t)price * 100 + 99; /* shop prices end in .99 */
    /* Spread over the last 90 days, with a tenth published within the last day. */
    it->age_ms = sim_rng_unit(r) < 0.1 ? (int64_t)sim_rng_below(r, (uint32_t)DAY_MS)
                                       : (int64_t)(sim_rng_unit(r) * 90.0 * (double)DAY_MS);
}

/* Fills each category's item list (in a seeded random popularity order) and its Zipf. */
static void categories_make(struct sim_model *m, struct sim_rng *r)
{
    for (size_t i = 0; i < m->nitems; i++) {
        for (int k = 0; k < m->items[i].ncats; k++)
            m->cats[m->items[i].cats[k]].n++;
    }
    for (int c = 0; c < SIM_NCATEGORIES; c++) {
        struct sim_category *cat = &m->cats[c];
        cat->items = core_xmalloc((cat->n ? cat->n : 1) * sizeof *cat->items);
        cat->n = 0;
    }
    for (size_t i = 0; i < m->nitems; i++) {
        for (int k = 0; k < m->items[i].ncats; k++) {
            struct sim_category *cat = &m->cats[m->items[i].cats[k]];
            cat->items[cat->n++] = (uint32_t)i;
        }
    }
    for (int c = 0; c < SIM_NCATEGORIES; c++) {
        struct sim_category *cat = &m->cats[c];
        for (size_t i = cat->n; i > 1; i--) { /* Fisher-Yates */
            size_t j = sim_rng_below(r, (uint32_t)i);
            uint32_t t = cat->items[i - 1];
            cat->items[i - 1] = cat->items[j];
            cat->items[j] = t;
        }
        sim_zipf_init(&cat->zipf, cat->n, SIM_ZIPF_S);
    }
}

static void user_make(struct sim_user *u, uint64_t seed, uint32_t idx, size_t nusers)
{
    memset(u, 0, sizeof *u);
    u->idx = idx;
    sim_rng_seed(&u->rng, seed, STREAM_USERS + (uint64_t)idx);
    struct sim_rng *r = &u->rng;
    u->nfav = (uint8_t)(2 + sim_rng_below(r, 2));
    double max = 0;
    for (int i = 0; i < u->nfav;) {
        uint8_t c = (uint8_t)sim_rng_below(r, SIM_NCATEGORIES);
        bool dup = false;
        for (int k = 0; k < i; k++)
            dup |= u->fav[k] == c;
        if (dup)
            continue;
        u->fav[i] = c;
        u->weight[i] = 0.3 + 0.7 * sim_rng_unit(r);
        max = u->weight[i] > max ? u->weight[i] : max;
        i++;
    }
    for (int i = 0; i < u->nfav; i++)
        u->weight[i] /= max;
    double d = sim_rng_unit(r);
    u->device = d < 0.55 ? 0 : d < 0.9 ? 1 : 2;
    u->locale = sim_rng_unit(r) < 0.4 ? 0 : (uint8_t)(1 + sim_rng_below(r, LOCALES - 1));
    u->onboarding = sim_rng_unit(r) < 0.2;
    /* Users arrive over the first simulated minute in id order (with jitter), so user-0001,
     * the one the docs point at, has a profile within the first second of a run. */
    uint32_t slot = (uint32_t)(60000 / nusers) + 1;
    u->next_ms = (int64_t)(60000 * (uint64_t)idx / nusers) + sim_rng_below(r, slot);
}

void sim_model_init(struct sim_model *m, uint64_t seed, size_t nitems, size_t nusers)
{
    memset(m, 0, sizeof *m);
    m->seed = seed;
    m->nitems = nitems ? nitems : 1;
    m->nusers = nusers ? nusers : 1;
    m->items = core_xcalloc(m->nitems, sizeof *m->items);
    m->users = core_xcalloc(m->nusers, sizeof *m->users);
    struct sim_rng r;
    sim_rng_seed(&r, seed, STREAM_CATALOG);
    for (size_t i = 0; i < m->nitems; i++)
        item_make(&m->items[i], &r);
    categories_make(m, &r);
    for (size_t i = 0; i < m->nusers; i++)
        user_make(&m->users[i], seed, (uint32_t)i, m->nusers);
}

void sim_model_dispose(struct sim_model *m)
{
    for (int c = 0; c < SIM_NCATEGORIES; c++) {
        free(m->cats[c].items);
        sim_zipf_dispose(&m->cats[c].zipf);
    }
    free(m->items);
    free(m->users);
    memset(m, 0, sizeof *m);
}

/* ---- ids and JSON ------------------------------------------------------------------------ */

void sim_item_id(size_t idx, char *out)
{
    snprintf(out, SIM_ID_MAX, "item-%05zu", idx + 1);
}

void sim_user_id(size_t idx, char *out)
{
    snprintf(out, SIM_ID_MAX, "user-%04zu", idx + 1);
}

int64_t sim_item_index(const struct sim_model *m, const char *id)
{
    if (strncmp(id, "item-", 5) != 0 || strlen(id + 5) < 5 || strlen(id + 5) > 12)
        return -1;
    int64_t n;
    if (core_parse_i64(id + 5, 1, (int64_t)m->nitems, &n))
        return -1;
    return n - 1;
}

static void put_price(struct core_buf *out, uint32_t cents)
{
    core_buf_printf(out, "%u.%02u", cents / 100, cents % 100);
}

void sim_item_json(const struct sim_model *m, size_t idx, int64_t now_ms, struct core_buf *out)
{
    const struct sim_item *it = &m->items[idx];
    char id[SIM_ID_MAX];
    sim_item_id(idx, id);
    core_buf_printf(out, "{\"itemId\":\"%s\",\"title\":\"%s %s %s\",\"categories\":[", id,
                    brands[it->brand], adjectives[it->adjective], nouns[it->cats[0]][it->noun]);
    for (int k = 0; k < it->ncats; k++)
        core_buf_printf(out, "%s\"%s\"", k ? "," : "", categories[it->cats[k]]);
    core_buf_puts(out, "],\"tags\":[");
    for (int k = 0; k < it->ntags; k++)
        core_buf_printf(out, "%s\"%s\"", k ? "," : "", tags[it->tags[k]]);
    core_buf_puts(out, "],\"attributes\":{\"price\":");
    put_price(out, it->price_cents);
    core_buf_printf(out, ",\"brand\":\"%s\"},\"publishedAt\":%lld,\"available\":%s}\n",
                    brands[it->brand], (long long)(now_ms - it->age_ms),
                    it->available ? "true" : "false");
}

void sim_user_prefs_json(const struct sim_user *u, struct core_buf *out)
{
    core_buf_puts(out, "{\"categories\":[");
    for (int i = 0; i < u->nfav; i++)
        core_buf_printf(out, "%s\"%s\"", i ? "," : "", categories[u->fav[i]]);
    core_buf_puts(out, "]}");
}

/* ---- tastes ------------------------------------------------------------------------------ */

double sim_user_match(const struct sim_model *m, const struct sim_user *u, int64_t idx)
{
    if (idx < 0 || (size_t)idx >= m->nitems)
        return SIM_MATCH_OTHER;
    const struct sim_item *it = &m->items[idx];
    double best = SIM_MATCH_OTHER;
    for (int k = 0; k < it->ncats; k++) {
        for (int i = 0; i < u->nfav; i++) {
            if (u->fav[i] == it->cats[k] && u->weight[i] > best)
                best = u->weight[i];
        }
    }
    return best;
}

double sim_click_prob(double match, int position)
{
    return 0.6 * match / (1.0 + 0.3 * position);
}

size_t sim_user_pick_item(const struct sim_model *m, struct sim_user *u)
{
    struct sim_rng *r = &u->rng;
    unsigned cat;
    if (sim_rng_unit(r) < 0.85) { /* a favourite, in proportion to taste */
        double total = 0;
        for (int i = 0; i < u->nfav; i++)
            total += u->weight[i];
        double x = sim_rng_unit(r) * total;
        int i = 0;
        while (i + 1 < u->nfav && x >= u->weight[i]) {
            x -= u->weight[i];
            i++;
        }
        cat = u->fav[i];
    } else { /* exploring */
        cat = sim_rng_below(r, SIM_NCATEGORIES);
    }
    const struct sim_category *c = &m->cats[cat];
    if (c->n == 0) /* tiny catalogs leave categories empty */
        return sim_rng_below(r, (uint32_t)m->nitems);
    return c->items[sim_zipf_sample(&c->zipf, r)];
}

/* ---- events ------------------------------------------------------------------------------ */

struct ev {
    const char *type;
    const char *item;
    const char *rec_id;   /* NULL: none */
    int position;         /* 0: none */
    int64_t value;        /* < 0: none */
    uint32_t price_cents; /* > 0: value is this price (purchases) */
};

static void emit(const struct sim_user *u, struct sim_sink *k, const struct ev *e)
{
    struct core_buf *b = k->out;
    if (k->n++)
        core_buf_putc(b, ',');
    char uid[SIM_ID_MAX];
    sim_user_id(u->idx, uid);
    core_buf_printf(b, "{\"eventId\":\"%s-%llu\",\"userId\":\"%s\",\"eventType\":\"%s\",",
                    k->run_id, (unsigned long long)k->seq++, uid, e->type);
    core_buf_puts(b, "\"itemId\":");
    core_json_cstr(b, e->item);
    core_buf_printf(b, ",\"sessionId\":\"%s-u%u-s%u\",\"timestamp\":%lld", k->run_id,
                    (unsigned)u->idx + 1, (unsigned)u->session, (long long)k->now_ms);
    if (e->price_cents) {
        core_buf_puts(b, ",\"value\":");
        put_price(b, e->price_cents);
    } else if (e->value >= 0) {
        core_buf_printf(b, ",\"value\":%lld", (long long)e->value);
    }
    if (e->rec_id) {
        core_buf_puts(b, ",\"recId\":");
        core_json_cstr(b, e->rec_id);
    }
    if (e->position > 0)
        core_buf_printf(b, ",\"position\":%d", e->position);
    core_buf_printf(b, ",\"context\":{\"device\":\"%s\",\"locale\":\"%s\"}}", devices[u->device],
                    locales[u->locale]);
}

enum sim_action sim_step_begin(const struct sim_model *m, struct sim_user *u)
{
    (void)m;
    bool first = false;
    if (u->steps_left == 0) {
        u->session++;
        u->steps_left = 3 + sim_rng_below(&u->rng, 13);
        first = true;
    }
    /* A session usually opens on a page with recommendations (home, app start). */
    double p = first ? 0.7 : 0.4;
    return sim_rng_unit(&u->rng) < p ? SIM_ACT_RECOMMEND : SIM_ACT_BROWSE;
}

/* add_to_cart, then sometimes purchase, of an item the user chose. */
static void maybe_buy(const struct sim_model *m, struct sim_user *u, struct sim_sink *k,
                      struct ev *e, int64_t idx, double p_cart)
{
    const struct sim_item *it = idx >= 0 ? &m->items[idx] : NULL;
    if ((it && !it->available) || sim_rng_unit(&u->rng) >= p_cart)
        return;
    e->type = "add_to_cart";
    e->value = -1;
    emit(u, k, e);
    k->carts++;
    if (sim_rng_unit(&u->rng) >= 1.0 / 3.0)
        return;
    e->type = "purchase";
    e->price_cents = it ? it->price_cents : 0;
    emit(u, k, e);
    k->purchases++;
}

int sim_step_recommended(const struct sim_model *m, struct sim_user *u, const struct sim_rec *rec,
                         struct sim_sink *k)
{
    size_t n = rec->n < SIM_REC_MAX ? rec->n : SIM_REC_MAX;
    for (size_t i = 0; i < n; i++) {
        struct ev e = {.type = "impression",
                       .item = rec->items[i],
                       .rec_id = rec->rec_id,
                       .position = (int)i + 1,
                       .value = -1};
        emit(u, k, &e);
    }
    k->impressions += n;
    for (size_t i = 0; i < n; i++) {
        int64_t idx = sim_item_index(m, rec->items[i]);
        double p = sim_click_prob(sim_user_match(m, u, idx), (int)i + 1);
        if (sim_rng_unit(&u->rng) >= p)
            continue;
        struct ev e = {.type = "click",
                       .item = rec->items[i],
                       .rec_id = rec->rec_id,
                       .position = (int)i + 1,
                       .value = -1};
        emit(u, k, &e);
        k->clicks++;
        maybe_buy(m, u, k, &e, idx, 0.15);
        return (int)i + 1;
    }
    return 0;
}

void sim_step_browse(const struct sim_model *m, struct sim_user *u, struct sim_sink *k)
{
    size_t idx = sim_user_pick_item(m, u);
    double match = sim_user_match(m, u, (int64_t)idx);
    char id[SIM_ID_MAX];
    sim_item_id(idx, id);
    struct ev e = {.type = "view", .item = id, .value = -1};
    emit(u, k, &e);
    k->views++;
    /* Dwell: lognormal, longer on items the user likes; bounded to 10 minutes. */
    double dwell = sim_rng_lognormal(&u->rng, 4000.0 + 8000.0 * match, 0.8);
    e.type = "dwell";
    e.value = dwell < 300 ? 300 : dwell > 600000 ? 600000 : (int64_t)dwell;
    emit(u, k, &e);
    if (sim_rng_unit(&u->rng) < 0.35) {
        e.type = "scroll";
        e.value = 10 + sim_rng_below(&u->rng, 91); /* depth in % */
        emit(u, k, &e);
    }
    maybe_buy(m, u, k, &e, (int64_t)idx, 0.04 + 0.12 * match);
}

void sim_step_end(struct sim_user *u)
{
    if (u->steps_left > 0)
        u->steps_left--;
    double gap = u->steps_left > 0 ? 1000.0 + rng_exp(&u->rng, 3000.0)     /* next page */
                                   : 30000.0 + rng_exp(&u->rng, 120000.0); /* next visit */
    u->next_ms += (int64_t)(gap < 3600000.0 ? gap : 3600000.0);
}

/* ---- scheduling -------------------------------------------------------------------------- */

static bool due_before(const struct sim_user *a, const struct sim_user *b)
{
    return a->next_ms < b->next_ms || (a->next_ms == b->next_ms && a->idx < b->idx);
}

static void sift_down(struct sim_sched *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, min = i;
        if (l < s->n && due_before(s->heap[l], s->heap[min]))
            min = l;
        if (r < s->n && due_before(s->heap[r], s->heap[min]))
            min = r;
        if (min == i)
            return;
        struct sim_user *t = s->heap[i];
        s->heap[i] = s->heap[min];
        s->heap[min] = t;
        i = min;
    }
}

void sim_sched_init(struct sim_sched *s, struct sim_model *m, size_t part, size_t nparts)
{
    s->n = 0;
    s->heap = core_xmalloc((m->nusers / nparts + 1) * sizeof *s->heap);
    for (size_t i = part; i < m->nusers; i += nparts)
        s->heap[s->n++] = &m->users[i];
    for (size_t i = s->n / 2; i-- > 0;)
        sift_down(s, i);
}

void sim_sched_dispose(struct sim_sched *s)
{
    free(s->heap);
    s->heap = NULL;
    s->n = 0;
}

struct sim_user *sim_sched_peek(const struct sim_sched *s)
{
    return s->n ? s->heap[0] : NULL;
}

void sim_sched_update(struct sim_sched *s)
{
    if (s->n)
        sift_down(s, 0);
}
