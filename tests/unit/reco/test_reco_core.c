/*
 * Tests of reco_core.c and the pure helpers: weight specs, experiment documents, the
 * experiment report's statistics (Wilson interval, two-proportion z-test) and variant
 * assignment.
 */
#include "reco/reco.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* ---- weights ----------------------------------------------------------------------------------
 */

static void test_sources(void **st)
{
    (void)st;
    assert_string_equal(reco_source_name(RECO_SRC_COLLAB), "collab");
    assert_string_equal(reco_source_name(-1), "?");
    assert_string_equal(reco_source_name(RECO_SRC__COUNT), "?");
    for (int i = 0; i < RECO_SRC__COUNT; i++) {
        const char *n = reco_source_name(i);
        assert_int_equal(reco_source_lookup(n, strlen(n)), i);
    }
    assert_int_equal(reco_source_lookup("collabx", 7), -1);
    assert_int_equal(reco_source_lookup("collab", 5), -1); /* a prefix is not a name */
    struct reco_weights w;
    reco_weights_default(&w);
    /* the defaults are the weights listed in RECO_SOURCE_MAP, every one of them positive */
    int i = 0;
#define XX(id, name, wt) assert_true(w.w[i++] == (wt) && (wt) > 0);
    RECO_SOURCE_MAP(XX)
#undef XX
    assert_int_equal(i, RECO_SRC__COUNT);
}

static void test_weights_parse_good(void **st)
{
    (void)st;
    struct reco_weights w, d;
    reco_weights_default(&w);
    reco_weights_default(&d);
    char err[128] = "";
    assert_int_equal(reco_weights_parse(&w, "collab=1.5,trending=0", err, sizeof err), 0);
    assert_true(w.w[RECO_SRC_COLLAB] == 1.5);
    assert_true(w.w[RECO_SRC_TRENDING] == 0);
    for (int i = 0; i < RECO_SRC__COUNT; i++)
        if (i != RECO_SRC_COLLAB && i != RECO_SRC_TRENDING)
            assert_true(w.w[i] == d.w[i]); /* the rest untouched */
    /* Later entries win; an empty spec changes nothing. */
    assert_int_equal(reco_weights_parse(&w, "fresh=2,fresh=0.25", err, sizeof err), 0);
    assert_true(w.w[RECO_SRC_FRESH] == 0.25);
    assert_int_equal(reco_weights_parse(&w, "", err, sizeof err), 0);
    assert_true(w.w[RECO_SRC_FRESH] == 0.25);
    assert_int_equal(reco_weights_parse(&w, "context=1e-3", err, sizeof err), 0);
    assert_true(w.w[RECO_SRC_CONTEXT] == 1e-3);
}

static void expect_bad_weights(const char *spec, const char *needle)
{
    struct reco_weights w;
    reco_weights_default(&w);
    char err[128] = "";
    assert_int_equal(reco_weights_parse(&w, spec, err, sizeof err), CORE_E_INVALID);
    if (!strstr(err, needle))
        fail_msg("spec '%s': message '%s' does not name '%s'", spec, err, needle);
}

static void test_weights_parse_bad(void **st)
{
    (void)st;
    expect_bad_weights("bogus=1", "bogus");          /* unknown source */
    expect_bad_weights("collab=1,bogus=1", "bogus"); /* unknown after a good one */
    expect_bad_weights("Collab=1", "Collab");        /* names are case-sensitive */
    expect_bad_weights("collab=abc", "collab");      /* not a number */
    expect_bad_weights("collab=1x", "collab");       /* trailing garbage */
    expect_bad_weights("collab=", "collab");         /* no number */
    expect_bad_weights("collab=-1", "collab");       /* negative */
    expect_bad_weights("collab=-0.5", ">= 0");
    expect_bad_weights("collab=inf", "collab");   /* not finite */
    expect_bad_weights("collab=nan", "collab");   /* not a number at all */
    expect_bad_weights("collab=1e999", "collab"); /* overflows */
    expect_bad_weights("collab", "source=weight");
    expect_bad_weights("collab=1,trending", "trending");
    expect_bad_weights("collab=000000000000000000000000000000001", "collab"); /* too long */
}

/* ---- experiments -------------------------------------------------------------------------- */

static int parse(struct reco_experiment *x, const char *json, char *err, size_t errlen)
{
    return reco_experiment_parse(x, json, strlen(json), err, errlen);
}

static void test_experiment_parse_good(void **st)
{
    (void)st;
    struct reco_experiment x;
    char err[200] = "";
    const char *json = "{\"name\":\"ranker-2024_q3\",\"variants\":["
                       "{\"name\":\"control\",\"share\":34},"
                       "{\"name\":\"more-collab\",\"share\":33,\"weights\":{\"collab\":2.5,"
                       "\"trending\":0}},"
                       "{\"name\":\"B_3\",\"share\":33,\"weights\":{}}]}";
    if (parse(&x, json, err, sizeof err) != 0)
        fail_msg("valid experiment refused: %s", err);
    assert_string_equal(x.name, "ranker-2024_q3");
    assert_int_equal(x.nvariants, 3);
    assert_string_equal(x.variants[0].name, "control");
    assert_string_equal(x.variants[1].name, "more-collab");
    assert_string_equal(x.variants[2].name, "B_3");
    assert_int_equal(x.variants[0].share, 34);
    assert_int_equal(x.variants[1].share, 33);
    /* Weights override the defaults; the rest stay default. */
    struct reco_weights d;
    reco_weights_default(&d);
    for (int i = 0; i < RECO_SRC__COUNT; i++) {
        assert_true(x.variants[0].weights.w[i] == d.w[i]);
        assert_true(x.variants[2].weights.w[i] == d.w[i]);
        if (i != RECO_SRC_COLLAB && i != RECO_SRC_TRENDING)
            assert_true(x.variants[1].weights.w[i] == d.w[i]);
    }
    assert_true(x.variants[1].weights.w[RECO_SRC_COLLAB] == 2.5);
    assert_true(x.variants[1].weights.w[RECO_SRC_TRENDING] == 0);

    /* One variant with the whole share; a share of 0 is allowed. */
    assert_int_equal(parse(&x,
                           "{\"name\":\"e\",\"variants\":[{\"name\":\"a\",\"share\":100},"
                           "{\"name\":\"b\",\"share\":0}]}",
                           err, sizeof err),
                     0);
    assert_int_equal(x.nvariants, 2);
}

/* The document is refused with CORE_E_INVALID, a message naming field, and *x left empty. */
static void expect_bad_experiment(const char *json, const char *field)
{
    struct reco_experiment x;
    memset(&x, 0x5a, sizeof x);
    char err[200] = "";
    assert_int_equal(parse(&x, json, err, sizeof err), CORE_E_INVALID);
    if (!strstr(err, field))
        fail_msg("%s\n  message '%s' does not name '%s'", json, err, field);
    assert_int_equal(x.nvariants, 0);
    assert_string_equal(x.name, "");
}

static void test_experiment_parse_bad(void **st)
{
    (void)st;
    /* Shares must add up to 100. */
    expect_bad_experiment("{\"name\":\"e\",\"variants\":[{\"name\":\"a\",\"share\":50},"
                          "{\"name\":\"b\",\"share\":40}]}",
                          "/variants: shares add up to 90");
    expect_bad_experiment("{\"name\":\"e\",\"variants\":[{\"name\":\"a\",\"share\":60},"
                          "{\"name\":\"b\",\"share\":60}]}",
                          "/variants");
    /* Duplicate variant names. */
    expect_bad_experiment("{\"name\":\"e\",\"variants\":[{\"name\":\"a\",\"share\":50},"
                          "{\"name\":\"a\",\"share\":50}]}",
                          "/variants/1/name");
    /* Names become part of recIds ("<strategy>.<variant>.<id>"): no dots. */
    expect_bad_experiment("{\"name\":\"e\",\"variants\":[{\"name\":\"a.b\",\"share\":100}]}",
                          "/variants/0/name");
    expect_bad_experiment("{\"name\":\"e.1\",\"variants\":[{\"name\":\"a\",\"share\":100}]}",
                          "/name");
    expect_bad_experiment("{\"name\":\"e\",\"variants\":[{\"name\":\"\",\"share\":100}]}",
                          "/variants/0/name");
    expect_bad_experiment("{\"name\":\"e\",\"variants\":[{\"name\":\"ok\",\"share\":50},"
                          "{\"name\":\"has space\",\"share\":50}]}",
                          "/variants/1/name");
    expect_bad_experiment("{\"name\":\"e\",\"variants\":[{\"name\":"
                          "\"abcdefghijabcdefghijabcdefghij-32\",\"share\":100}]}",
                          "/variants/0/name"); /* 33 chars: too long */
    /* Weights: unknown source, bad weight. */
    expect_bad_experiment("{\"name\":\"e\",\"variants\":[{\"name\":\"a\",\"share\":100,"
                          "\"weights\":{\"bogus\":1}}]}",
                          "/variants/0/weights/bogus");
    expect_bad_experiment("{\"name\":\"e\",\"variants\":[{\"name\":\"a\",\"share\":50},"
                          "{\"name\":\"b\",\"share\":50,\"weights\":{\"collab\":-1}}]}",
                          "/variants/1/weights/collab");
    expect_bad_experiment("{\"name\":\"e\",\"variants\":[{\"name\":\"a\",\"share\":100,"
                          "\"weights\":{\"collab\":\"2\"}}]}",
                          "/variants/0/weights/collab");
    expect_bad_experiment("{\"name\":\"e\",\"variants\":[{\"name\":\"a\",\"share\":100,"
                          "\"weights\":[1]}]}",
                          "/variants/0/weights");
    /* Shares: integers 0..100. */
    expect_bad_experiment("{\"name\":\"e\",\"variants\":[{\"name\":\"a\",\"share\":50.5},"
                          "{\"name\":\"b\",\"share\":49.5}]}",
                          "/variants/0/share");
    expect_bad_experiment("{\"name\":\"e\",\"variants\":[{\"name\":\"a\",\"share\":-10},"
                          "{\"name\":\"b\",\"share\":110}]}",
                          "/variants/0/share");
    expect_bad_experiment("{\"name\":\"e\",\"variants\":[{\"name\":\"a\"}]}", "/variants/0/share");
    /* Shape. */
    expect_bad_experiment("{\"variants\":[{\"name\":\"a\",\"share\":100}]}", "/name");
    expect_bad_experiment("{\"name\":\"e\",\"variants\":[]}", "/variants");
    expect_bad_experiment("{\"name\":\"e\"}", "/variants");
    expect_bad_experiment("{\"name\":\"e\",\"variants\":[{\"name\":\"a\",\"share\":10},"
                          "{\"name\":\"b\",\"share\":10},{\"name\":\"c\",\"share\":10},"
                          "{\"name\":\"d\",\"share\":10},{\"name\":\"e\",\"share\":10},"
                          "{\"name\":\"f\",\"share\":10},{\"name\":\"g\",\"share\":10},"
                          "{\"name\":\"h\",\"share\":10},{\"name\":\"i\",\"share\":20}]}",
                          "/variants"); /* 9 > RECO_VARIANTS_MAX */
    expect_bad_experiment("[1,2]", "experiment");
    expect_bad_experiment("{\"name\":", "experiment");
    expect_bad_experiment("", "experiment");
}

/*
 * A weight must be a finite number >= 0, as reco_weights_parse requires. JSON numbers that
 * overflow a double parse as infinity (cJSON uses strtod), and reco_experiment_parse
 * (reco_core.c, the weights loop) checks only "number" and ">= 0", so {"collab":1e999}
 * is accepted as an infinite weight; in reco_recommend, inf x 0 makes NaN scores for
 * every candidate without a collab score, and the ranking compares NaNs.
 */
static void test_experiment_weight_must_be_finite(void **st)
{
    (void)st;
    expect_bad_experiment("{\"name\":\"e\",\"variants\":[{\"name\":\"a\",\"share\":100,"
                          "\"weights\":{\"collab\":1e999}}]}",
                          "/variants/0/weights/collab");
}

/* ---- statistics -------------------------------------------------------------------------- */

static void test_wilson(void **st)
{
    (void)st;
    double lo, hi;
    /* Reference values (95 %, z = 1.95996): 10/40 -> [0.14187, 0.40194]. */
    reco_wilson(10, 40, &lo, &hi);
    assert_true(fabs(lo - 0.141871186) < 1e-6);
    assert_true(fabs(hi - 0.401939614) < 1e-6);
    reco_wilson(1, 2, &lo, &hi);
    assert_true(fabs(lo - 0.094531206) < 1e-6);
    assert_true(fabs(hi - 0.905468794) < 1e-6);
    /* No trials: no information. */
    reco_wilson(0, 0, &lo, &hi);
    assert_true(lo == 0 && hi == 1);
    /* Edges: 0/n starts at 0, n/n ends at 1, both stay inside [0, 1]. */
    reco_wilson(0, 10, &lo, &hi);
    assert_true(lo == 0);
    assert_true(fabs(hi - 0.277532800) < 1e-6);
    reco_wilson(10, 10, &lo, &hi);
    assert_true(fabs(lo - 0.722467200) < 1e-6);
    assert_true(hi <= 1 && hi > 0.9999999);
    /* The interval contains the proportion and narrows as n grows. */
    double lo2, hi2;
    reco_wilson(100, 400, &lo2, &hi2);
    assert_true(lo2 < 0.25 && hi2 > 0.25);
    reco_wilson(10, 40, &lo, &hi);
    assert_true(hi2 - lo2 < 0.09 && hi - lo > 0.25);
}

/* The pooled two-proportion z-test, written out. */
static double pooled_p(double k1, double n1, double k2, double n2)
{
    double p = (k1 + k2) / (n1 + n2);
    double z = fabs(k1 / n1 - k2 / n2) / sqrt(p * (1 - p) * (1 / n1 + 1 / n2));
    return erfc(z / sqrt(2.0));
}

static void test_two_proportion_p(void **st)
{
    (void)st;
    /* Identical proportions: no evidence of a difference. */
    assert_true(fabs(reco_two_proportion_p(50, 500, 100, 1000) - 1.0) < 1e-12);
    assert_true(fabs(reco_two_proportion_p(7, 70, 7, 70) - 1.0) < 1e-12);
    /* 100/1000 vs 150/1000: z = 3.3806, p = 0.000723. */
    double p = reco_two_proportion_p(100, 1000, 150, 1000);
    assert_true(fabs(p - pooled_p(100, 1000, 150, 1000)) < 1e-12);
    assert_true(fabs(p - 0.000723233) < 1e-8);
    assert_true(p < 0.001);
    /* Symmetric. */
    assert_true(p == reco_two_proportion_p(150, 1000, 100, 1000));
    /* A small difference on small samples is not significant. */
    double q = reco_two_proportion_p(10, 100, 12, 100);
    assert_true(fabs(q - pooled_p(10, 100, 12, 100)) < 1e-12);
    assert_true(q > 0.5);
    /* Degenerate inputs: no trials, or no variance. */
    assert_true(reco_two_proportion_p(0, 0, 5, 10) == 1);
    assert_true(reco_two_proportion_p(5, 10, 0, 0) == 1);
    assert_true(reco_two_proportion_p(0, 10, 0, 20) == 1);
    assert_true(reco_two_proportion_p(10, 10, 20, 20) == 1);
    p = reco_two_proportion_p(0, 100, 100, 100);
    assert_true(p >= 0 && p < 1e-10);
}

/* ---- variant assignment ------------------------------------------------------------------- */

static void key_of(int i, char out[EVENT_KEY_HEX + 1])
{
    snprintf(out, EVENT_KEY_HEX + 1, "%08x%08x%08x%08x", (unsigned)i * 2654435761u,
             (unsigned)i ^ 0xdeadbeefu, (unsigned)i, 0x1234u);
}

static void test_assign_variant(void **st)
{
    (void)st;
    struct reco_experiment none;
    memset(&none, 0, sizeof none);
    char key[EVENT_KEY_HEX + 1];
    key_of(1, key);
    assert_int_equal(reco_assign_variant(&none, key), -1);

    struct reco_experiment x;
    char err[200];
    const char *json = "{\"name\":\"split\",\"variants\":[{\"name\":\"a\",\"share\":50},"
                       "{\"name\":\"b\",\"share\":30},{\"name\":\"c\",\"share\":20},"
                       "{\"name\":\"never\",\"share\":0}]}";
    assert_int_equal(parse(&x, json, err, sizeof err), 0);
    int counts[4] = {0};
    enum { N = 10000 };
    for (int i = 0; i < N; i++) {
        key_of(i, key);
        int v = reco_assign_variant(&x, key);
        assert_true(v >= 0 && v < 4);
        assert_int_equal(reco_assign_variant(&x, key), v); /* deterministic */
        counts[v]++;
    }
    /* Within 3 points of the shares (binomial sd is at most 0.5 points here). */
    assert_true(counts[0] > N * 47 / 100 && counts[0] < N * 53 / 100);
    assert_true(counts[1] > N * 27 / 100 && counts[1] < N * 33 / 100);
    assert_true(counts[2] > N * 17 / 100 && counts[2] < N * 23 / 100);
    assert_int_equal(counts[3], 0);

    /* Another experiment name splits the same users independently. */
    struct reco_experiment y = x;
    snprintf(y.name, sizeof y.name, "split-2");
    int same = 0;
    for (int i = 0; i < N; i++) {
        key_of(i, key);
        same += reco_assign_variant(&x, key) == reco_assign_variant(&y, key);
    }
    /* Independent: P(same) = .5^2 + .3^2 + .2^2 = 0.38. */
    assert_true(same > N * 34 / 100 && same < N * 42 / 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sources),
        cmocka_unit_test(test_weights_parse_good),
        cmocka_unit_test(test_weights_parse_bad),
        cmocka_unit_test(test_experiment_parse_good),
        cmocka_unit_test(test_experiment_parse_bad),
        cmocka_unit_test(test_experiment_weight_must_be_finite),
        cmocka_unit_test(test_wilson),
        cmocka_unit_test(test_two_proportion_p),
        cmocka_unit_test(test_assign_variant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
