/* Tests of the `recstream simulate` model: random streams, the Zipf sampler, the catalog and
 * users, the events of a step, click probabilities, sessions and the scheduler. */
#include "cli/sim.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define NOW_MS 1700000000000LL

/* ---- random numbers ---- */

static void test_rng_same_seed_same_sequence(void **state)
{
    (void)state;
    struct sim_rng a, b, c, d;
    sim_rng_seed(&a, 42, 7);
    sim_rng_seed(&b, 42, 7);
    sim_rng_seed(&c, 42, 8);
    sim_rng_seed(&d, 43, 7);
    int same_c = 0, same_d = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = sim_rng_next(&a);
        assert_true(x == sim_rng_next(&b));
        same_c += x == sim_rng_next(&c);
        same_d += x == sim_rng_next(&d);
    }
    assert_int_equal(same_c, 0);
    assert_int_equal(same_d, 0);
}

static void test_rng_ranges(void **state)
{
    (void)state;
    struct sim_rng r;
    sim_rng_seed(&r, 1, 0);
    double sum = 0;
    int hist[7] = {0};
    for (int i = 0; i < 70000; i++) {
        double u = sim_rng_unit(&r);
        assert_true(u >= 0.0 && u < 1.0);
        sum += u;
        uint32_t k = sim_rng_below(&r, 7);
        assert_true(k < 7);
        hist[k]++;
    }
    assert_true(fabs(sum / 70000 - 0.5) < 0.01);
    for (int k = 0; k < 7; k++)
        assert_true(hist[k] > 9000 && hist[k] < 11000);
    /* Lognormal: half the samples below the median. */
    int below = 0;
    for (int i = 0; i < 20000; i++) {
        double x = sim_rng_lognormal(&r, 5000, 0.8);
        assert_true(x > 0 && isfinite(x));
        below += x < 5000;
    }
    assert_true(below > 9500 && below < 10500);
}

/* ---- Zipf ---- */

static void test_zipf_distribution(void **state)
{
    (void)state;
    enum { N = 100, SAMPLES = 400000 };
    struct sim_zipf z;
    sim_zipf_init(&z, N, 1.1);
    struct sim_rng r;
    sim_rng_seed(&r, 9, 1);
    static int hist[N];
    memset(hist, 0, sizeof hist);
    for (int i = 0; i < SAMPLES; i++) {
        size_t k = sim_zipf_sample(&z, &r);
        assert_true(k < N);
        hist[k]++;
    }
    double h = 0;
    for (int k = 1; k <= N; k++)
        h += 1.0 / pow(k, 1.1);
    /* Each of the first ranks within 5% of its expected frequency 1 / (k^s H). */
    for (int k = 0; k < 10; k++) {
        double expect = SAMPLES / (pow(k + 1, 1.1) * h);
        assert_true(fabs(hist[k] - expect) / expect < 0.05);
    }
    /* rank 1 / rank 2 = 2^1.1 */
    double ratio = (double)hist[0] / hist[1];
    assert_true(fabs(ratio - pow(2, 1.1)) < 0.1);
    /* The tail is rare but reached. */
    assert_true(hist[N - 1] > 0 && hist[N - 1] < hist[0] / 50);
    sim_zipf_dispose(&z);

    sim_zipf_init(&z, 1, 1.1);
    for (int i = 0; i < 10; i++)
        assert_int_equal(sim_zipf_sample(&z, &r), 0);
    sim_zipf_dispose(&z);
    sim_zipf_init(&z, 0, 1.1);
    assert_int_equal(sim_zipf_sample(&z, &r), 0);
    sim_zipf_dispose(&z);
}

/* ---- catalog and users ---- */

static void test_model_is_deterministic(void **state)
{
    (void)state;
    struct sim_model a, b, c;
    sim_model_init(&a, 5, 300, 40);
    sim_model_init(&b, 5, 300, 40);
    sim_model_init(&c, 6, 300, 40);
    assert_memory_equal(a.items, b.items, 300 * sizeof *a.items);
    assert_true(memcmp(a.items, c.items, 300 * sizeof *a.items) != 0);
    for (size_t i = 0; i < 40; i++) {
        assert_memory_equal(a.users[i].fav, b.users[i].fav, sizeof a.users[i].fav);
        assert_int_equal(a.users[i].device, b.users[i].device);
        assert_int_equal(a.users[i].locale, b.users[i].locale);
    }
    for (int k = 0; k < SIM_NCATEGORIES; k++) {
        assert_int_equal(a.cats[k].n, b.cats[k].n);
        assert_memory_equal(a.cats[k].items, b.cats[k].items, a.cats[k].n * sizeof(uint32_t));
    }
    /* A user's tastes do not depend on how many users there are. */
    struct sim_model more;
    sim_model_init(&more, 5, 300, 400);
    assert_memory_equal(&a.users[39].rng, &more.users[39].rng, sizeof a.users[39].rng);
    sim_model_dispose(&more);
    sim_model_dispose(&a);
    sim_model_dispose(&b);
    sim_model_dispose(&c);
}

static void test_catalog_items(void **state)
{
    (void)state;
    struct sim_model m;
    sim_model_init(&m, 1, 2000, 10);
    struct core_buf b;
    core_buf_init(&b);
    int unavailable = 0, recent = 0, two_cats = 0;
    for (size_t i = 0; i < m.nitems; i++) {
        core_buf_reset(&b);
        sim_item_json(&m, i, NOW_MS, &b);
        assert_true(b.len > 0 && b.data[b.len - 1] == '\n');
        assert_null(memchr(b.data, '\n', b.len - 1)); /* one NDJSON line */
        cJSON *j = cJSON_Parse(b.data);
        assert_non_null(j);
        char id[SIM_ID_MAX];
        sim_item_id(i, id);
        assert_string_equal(cJSON_GetObjectItem(j, "itemId")->valuestring, id);
        assert_true(strlen(cJSON_GetObjectItem(j, "title")->valuestring) > 5);
        int ncat = cJSON_GetArraySize(cJSON_GetObjectItem(j, "categories"));
        assert_true(ncat == 1 || ncat == 2);
        two_cats += ncat == 2;
        int ntags = cJSON_GetArraySize(cJSON_GetObjectItem(j, "tags"));
        assert_true(ntags >= 1 && ntags <= 4);
        cJSON *attr = cJSON_GetObjectItem(j, "attributes");
        assert_true(cJSON_GetObjectItem(attr, "price")->valuedouble > 0);
        assert_true(cJSON_IsString(cJSON_GetObjectItem(attr, "brand")));
        double pub = cJSON_GetObjectItem(j, "publishedAt")->valuedouble;
        assert_true(pub <= NOW_MS && pub >= NOW_MS - 90.0 * 86400000);
        recent += pub >= NOW_MS - 86400000.0;
        cJSON *avail = cJSON_GetObjectItem(j, "available");
        assert_true(cJSON_IsBool(avail));
        unavailable += cJSON_IsFalse(avail);
        cJSON_Delete(j);
    }
    assert_true(unavailable >= 20 && unavailable <= 120); /* ~3% */
    assert_true(recent >= 100);                           /* some within the last day */
    assert_true(two_cats > 300 && two_cats < 900);
    /* Every item is in the lists of its categories. */
    size_t listed = 0;
    for (int k = 0; k < SIM_NCATEGORIES; k++)
        listed += m.cats[k].n;
    assert_int_equal(listed, m.nitems + (size_t)two_cats);
    core_buf_dispose(&b);
    sim_model_dispose(&m);
}

static void test_ids(void **state)
{
    (void)state;
    struct sim_model m;
    sim_model_init(&m, 1, 2000, 10);
    char id[SIM_ID_MAX];
    sim_item_id(0, id);
    assert_string_equal(id, "item-00001");
    sim_user_id(0, id);
    assert_string_equal(id, "user-0001");
    sim_user_id(499, id);
    assert_string_equal(id, "user-0500");
    assert_int_equal(sim_item_index(&m, "item-00001"), 0);
    assert_int_equal(sim_item_index(&m, "item-02000"), 1999);
    assert_int_equal(sim_item_index(&m, "item-02001"), -1);
    assert_int_equal(sim_item_index(&m, "item-00000"), -1);
    assert_int_equal(sim_item_index(&m, "item-1"), -1);
    assert_int_equal(sim_item_index(&m, "shoe"), -1);
    assert_int_equal(sim_item_index(&m, "item-0000x"), -1);
    sim_model_dispose(&m);
}

static void test_users_and_prefs(void **state)
{
    (void)state;
    struct sim_model m;
    sim_model_init(&m, 3, 500, 1000);
    int onboarding = 0, devices[3] = {0};
    struct core_buf b;
    core_buf_init(&b);
    for (size_t i = 0; i < m.nusers; i++) {
        const struct sim_user *u = &m.users[i];
        assert_true(u->nfav == 2 || u->nfav == 3);
        double max = 0;
        for (int k = 0; k < u->nfav; k++) {
            assert_true(u->weight[k] > 0 && u->weight[k] <= 1.0);
            max = u->weight[k] > max ? u->weight[k] : max;
            for (int l = 0; l < k; l++)
                assert_int_not_equal(u->fav[k], u->fav[l]);
        }
        assert_true(max == 1.0);
        onboarding += u->onboarding;
        devices[u->device]++;
    }
    assert_true(onboarding > 150 && onboarding < 250); /* ~20% */
    assert_true(devices[0] > devices[1] && devices[1] > devices[2]);
    sim_user_prefs_json(&m.users[0], &b);
    cJSON *j = cJSON_Parse(b.data);
    cJSON *cats = cJSON_GetObjectItem(j, "categories");
    assert_int_equal(cJSON_GetArraySize(cats), m.users[0].nfav);
    assert_string_equal(cJSON_GetArrayItem(cats, 0)->valuestring,
                        sim_category_name(m.users[0].fav[0]));
    cJSON_Delete(j);
    core_buf_dispose(&b);
    sim_model_dispose(&m);
}

/* Browsing follows taste: most picks are in the user's favourite categories, and within a
 * category the most popular item is picked most. */
static void test_browsing_follows_taste(void **state)
{
    (void)state;
    struct sim_model m;
    sim_model_init(&m, 11, 2000, 1);
    struct sim_user *u = &m.users[0];
    int fav = 0;
    enum { PICKS = 20000 };
    int *hist = calloc(m.nitems, sizeof *hist);
    for (int i = 0; i < PICKS; i++) {
        size_t idx = sim_user_pick_item(&m, u);
        assert_true(idx < m.nitems);
        hist[idx]++;
        fav += sim_user_match(&m, u, (int64_t)idx) > SIM_MATCH_OTHER;
    }
    assert_true(fav > PICKS * 8 / 10);
    const struct sim_category *top = &m.cats[u->fav[0]];
    assert_true(hist[top->items[0]] > hist[top->items[1]]);
    assert_true(hist[top->items[0]] > 5 * hist[top->items[top->n - 1]]);
    free(hist);
    sim_model_dispose(&m);
}

/* ---- clicks ---- */

static void test_click_probability_decreases_with_position(void **state)
{
    (void)state;
    assert_true(fabs(sim_click_prob(1.0, 1) - 0.6 / 1.3) < 1e-12);
    const double matches[] = {SIM_MATCH_OTHER, 0.4, 1.0};
    for (size_t i = 0; i < 3; i++) {
        for (int pos = 1; pos < 20; pos++)
            assert_true(sim_click_prob(matches[i], pos + 1) < sim_click_prob(matches[i], pos));
    }
    assert_true(sim_click_prob(1.0, 3) > sim_click_prob(0.4, 3));
    assert_true(sim_click_prob(0.4, 3) > sim_click_prob(SIM_MATCH_OTHER, 3));

    /* Observed: lists of ten items the user likes; clicks at the top dominate. */
    struct sim_model m;
    sim_model_init(&m, 2, 2000, 1);
    struct sim_user *u = &m.users[0];
    const struct sim_category *cat = &m.cats[u->fav[0]];
    char ids[10][SIM_ID_MAX];
    struct sim_rec rec = {.rec_id = "r1", .n = 10};
    for (int i = 0; i < 10; i++) {
        sim_item_id(cat->items[i], ids[i]);
        rec.items[i] = ids[i];
    }
    int clicks[11] = {0};
    struct core_buf b;
    core_buf_init(&b);
    struct sim_sink k = {.out = &b, .run_id = "t", .now_ms = NOW_MS};
    for (int i = 0; i < 5000; i++) {
        core_buf_reset(&b);
        k.n = 0;
        clicks[sim_step_recommended(&m, u, &rec, &k)]++;
    }
    assert_true(clicks[1] > clicks[3] && clicks[3] > clicks[6] && clicks[6] > clicks[10]);
    assert_true(clicks[0] < 5000 / 4); /* liked items: most lists get a click */
    assert_int_equal(k.impressions, 5000 * 10);
    core_buf_dispose(&b);
    sim_model_dispose(&m);
}

/* ---- events, sessions, scheduling ---- */

/* Runs steps of all users in schedule order with fixed recommendations into one array. */
static void run_steps(struct sim_model *m, int steps, struct core_buf *out)
{
    struct sim_sched s;
    sim_sched_init(&s, m, 0, 1);
    struct sim_sink k = {.out = out, .run_id = "run", .now_ms = NOW_MS};
    const char *items[] = {"item-00003", "item-00001", "other-item"};
    struct sim_rec rec = {.rec_id = "rec-1", .n = 3};
    memcpy(rec.items, items, sizeof items);
    core_buf_putc(out, '[');
    int64_t last = INT64_MIN;
    for (int i = 0; i < steps; i++) {
        struct sim_user *u = sim_sched_peek(&s);
        assert_true(u->next_ms >= last);
        last = u->next_ms;
        if (sim_step_begin(m, u) == SIM_ACT_RECOMMEND)
            sim_step_recommended(m, u, &rec, &k);
        else
            sim_step_browse(m, u, &k);
        sim_step_end(u);
        sim_sched_update(&s);
    }
    core_buf_putc(out, ']');
    sim_sched_dispose(&s);
}

static void test_same_seed_same_events(void **state)
{
    (void)state;
    struct core_buf a, b, c;
    core_buf_init(&a);
    core_buf_init(&b);
    core_buf_init(&c);
    struct sim_model m1, m2, m3;
    sim_model_init(&m1, 7, 200, 50);
    sim_model_init(&m2, 7, 200, 50);
    sim_model_init(&m3, 8, 200, 50);
    run_steps(&m1, 500, &a);
    run_steps(&m2, 500, &b);
    run_steps(&m3, 500, &c);
    assert_true(a.len > 1000);
    assert_string_equal(a.data, b.data);
    assert_true(strcmp(a.data, c.data) != 0);
    core_buf_dispose(&a);
    core_buf_dispose(&b);
    core_buf_dispose(&c);
    sim_model_dispose(&m1);
    sim_model_dispose(&m2);
    sim_model_dispose(&m3);
}

static void test_events_are_valid(void **state)
{
    (void)state;
    struct sim_model m;
    sim_model_init(&m, 4, 200, 20);
    struct core_buf out;
    core_buf_init(&out);
    run_steps(&m, 300, &out);
    cJSON *arr = cJSON_Parse(out.data);
    assert_non_null(arr);
    int n = cJSON_GetArraySize(arr), impressions = 0, views = 0, dwells = 0;
    assert_true(n > 300);
    const char *known[] = {"impression", "click",       "view",    "dwell",
                           "scroll",     "add_to_cart", "purchase"};
    cJSON *ev;
    cJSON_ArrayForEach(ev, arr)
    {
        const char *type = cJSON_GetObjectItem(ev, "eventType")->valuestring;
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof *known; i++)
            ok |= !strcmp(type, known[i]);
        assert_true(ok);
        assert_true(strlen(cJSON_GetObjectItem(ev, "eventId")->valuestring) <= 64);
        assert_true(!strncmp(cJSON_GetObjectItem(ev, "userId")->valuestring, "user-", 5));
        assert_true(cJSON_IsString(cJSON_GetObjectItem(ev, "itemId")));
        assert_true(cJSON_IsString(cJSON_GetObjectItem(ev, "sessionId")));
        assert_true(cJSON_GetObjectItem(ev, "timestamp")->valuedouble == (double)NOW_MS);
        cJSON *ctx = cJSON_GetObjectItem(ev, "context");
        assert_true(cJSON_IsString(cJSON_GetObjectItem(ctx, "device")));
        assert_true(cJSON_IsString(cJSON_GetObjectItem(ctx, "locale")));
        if (!strcmp(type, "impression") || !strcmp(type, "click")) {
            assert_string_equal(cJSON_GetObjectItem(ev, "recId")->valuestring, "rec-1");
            int pos = cJSON_GetObjectItem(ev, "position")->valueint;
            assert_true(pos >= 1 && pos <= 3);
            impressions += !strcmp(type, "impression");
        }
        if (!strcmp(type, "dwell")) {
            double v = cJSON_GetObjectItem(ev, "value")->valuedouble;
            assert_true(v >= 300 && v <= 600000);
            dwells++;
        }
        if (!strcmp(type, "scroll")) {
            double v = cJSON_GetObjectItem(ev, "value")->valuedouble;
            assert_true(v >= 10 && v <= 100);
        }
        views += !strcmp(type, "view");
    }
    assert_true(impressions > 0 && impressions % 3 == 0);
    assert_true(views > 0 && views == dwells);
    /* eventIds are unique. */
    for (int i = 0; i < n; i++) {
        const char *id = cJSON_GetObjectItem(cJSON_GetArrayItem(arr, i), "eventId")->valuestring;
        const char *next =
            i + 1 < n ? cJSON_GetObjectItem(cJSON_GetArrayItem(arr, i + 1), "eventId")->valuestring
                      : "";
        assert_true(strcmp(id, next) != 0);
    }
    cJSON_Delete(arr);
    core_buf_dispose(&out);
    sim_model_dispose(&m);
}

static void test_sessions_have_3_to_15_steps(void **state)
{
    (void)state;
    struct sim_model m;
    sim_model_init(&m, 12, 100, 1);
    struct sim_user *u = &m.users[0];
    struct core_buf out;
    core_buf_init(&out);
    struct sim_sink k = {.out = &out, .run_id = "r", .now_ms = NOW_MS};
    int steps = 0, min = 100, max = 0, sessions = 0;
    uint32_t session = 0;
    for (int i = 0; i < 5000; i++) {
        sim_step_begin(&m, u);
        if (u->session != session) {
            if (session) {
                min = steps < min ? steps : min;
                max = steps > max ? steps : max;
                sessions++;
            }
            session = u->session;
            steps = 0;
        }
        steps++;
        int64_t before = u->next_ms;
        sim_step_browse(&m, u, &k);
        sim_step_end(u);
        /* A few seconds between steps, longer between sessions. */
        int64_t gap = u->next_ms - before;
        assert_true(gap >= (u->steps_left ? 1000 : 30000));
        core_buf_reset(&out);
        k.n = 0;
    }
    assert_true(sessions > 200);
    assert_int_equal(min, 3);
    assert_int_equal(max, 15);
    core_buf_dispose(&out);
    sim_model_dispose(&m);
}

static void test_sched_partitions_users(void **state)
{
    (void)state;
    struct sim_model m;
    sim_model_init(&m, 1, 10, 10);
    struct sim_sched s0, s1;
    sim_sched_init(&s0, &m, 0, 2);
    sim_sched_init(&s1, &m, 1, 2);
    assert_int_equal(s0.n, 5);
    assert_int_equal(s1.n, 5);
    for (size_t i = 0; i < s0.n; i++)
        assert_int_equal(s0.heap[i]->idx % 2, 0);
    for (size_t i = 0; i < s1.n; i++)
        assert_int_equal(s1.heap[i]->idx % 2, 1);
    /* Due order: popping by pushing next_ms far ahead yields nondecreasing times. */
    int64_t last = INT64_MIN;
    for (int i = 0; i < 5; i++) {
        struct sim_user *u = sim_sched_peek(&s0);
        assert_true(u->next_ms >= last);
        last = u->next_ms;
        u->next_ms = INT64_MAX / 2;
        sim_sched_update(&s0);
    }
    sim_sched_dispose(&s0);
    sim_sched_dispose(&s1);
    sim_model_dispose(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_same_seed_same_sequence),
        cmocka_unit_test(test_rng_ranges),
        cmocka_unit_test(test_zipf_distribution),
        cmocka_unit_test(test_model_is_deterministic),
        cmocka_unit_test(test_catalog_items),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_users_and_prefs),
        cmocka_unit_test(test_browsing_follows_taste),
        cmocka_unit_test(test_click_probability_decreases_with_position),
        cmocka_unit_test(test_same_seed_same_events),
        cmocka_unit_test(test_events_are_valid),
        cmocka_unit_test(test_sessions_have_3_to_15_steps),
        cmocka_unit_test(test_sched_partitions_users),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
