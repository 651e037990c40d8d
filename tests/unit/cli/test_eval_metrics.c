/*
 * Tests of the eval metrics (hand-computed HR / NDCG / MRR / coverage), the HR series, the
 * latency percentiles and the JSON and SVG reports.
 */
#include "cli/eval.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define EPS 1e-12
/* cmocka before 1.1.6 has no assert_double_equal. */
#define assert_near(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))

/* ---- metrics ---- */

/* Three cases over 20 items: the target at rank 1, at rank 3, and not in the list. */
static struct eval_metrics *three_cases(void)
{
    static const int ks[] = {1, 3, 10};
    struct eval_metrics *m = eval_metrics_new(ks, 3, 20);
    const uint32_t a[] = {5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    const uint32_t b[] = {1, 2, 5, 3, 4};
    const uint32_t c[] = {1, 2, 3};
    eval_metrics_add(m, a, 12, 5, 1000);
    eval_metrics_add(m, b, 5, 5, 2000);
    eval_metrics_add(m, c, 3, 19, 3000);
    return m;
}

static void test_metrics_hand_computed(void **state)
{
    (void)state;
    struct eval_metrics *m = three_cases();
    assert_int_equal(eval_metrics_count(m), 3);
    assert_int_equal(eval__metrics_nk(m), 3);
    struct eval_result r;

    eval_metrics_result(m, 0, &r); /* K = 1: only the rank-1 case hits */
    assert_int_equal(r.k, 1);
    assert_near(r.hr, 1.0 / 3, EPS);
    assert_near(r.ndcg, 1.0 / 3, EPS);
    assert_near(r.mrr, 1.0 / 3, EPS);
    assert_near(r.coverage, 2.0 / 20, EPS); /* items 5 and 1 */

    eval_metrics_result(m, 1, &r); /* K = 3: rank 3 counts: NDCG 1/log2(4) = 0.5, MRR 1/3 */
    assert_int_equal(r.k, 3);
    assert_near(r.hr, 2.0 / 3, EPS);
    assert_near(r.ndcg, (1.0 + 0.5) / 3, EPS);
    assert_near(r.mrr, (1.0 + 1.0 / 3) / 3, EPS);
    assert_near(r.coverage, 6.0 / 20, EPS); /* 5, 6, 7, 1, 2, 3 */

    eval_metrics_result(m, 2, &r); /* K = 10: the rest of the lists up to 10 entries */
    assert_int_equal(r.k, 10);
    assert_near(r.hr, 2.0 / 3, EPS);
    assert_near(r.ndcg, 0.5, EPS);
    assert_near(r.mrr, 4.0 / 9, EPS);
    /* a[0..9] = 5..14 (10 items) plus 1, 2, 3, 4 = 14 distinct; 15 and 16 are past K. */
    assert_near(r.coverage, 14.0 / 20, EPS);
    eval_metrics_free(m);
}

static void test_metrics_edge_cases(void **state)
{
    (void)state;
    static const int ks[] = {5};
    struct eval_metrics *m = eval_metrics_new(ks, 1, 4);
    struct eval_result r;
    eval_metrics_result(m, 0, &r); /* nothing added: zeros, not NaN */
    assert_true(r.hr == 0 && r.ndcg == 0 && r.mrr == 0 && r.coverage == 0);
    assert_int_equal(eval__metrics_series_len(m), 0);
    /* Items outside the catalog never count for coverage; an empty list is a miss. */
    const uint32_t l[] = {99, 3, 3};
    eval_metrics_add(m, l, 3, 3, 1);
    eval_metrics_add(m, NULL, 0, 3, 2);
    eval_metrics_result(m, 0, &r);
    assert_near(r.hr, 0.5, EPS);
    assert_near(r.ndcg, 0.5 * (1 / log2(3.0)), EPS);
    assert_near(r.mrr, 0.25, EPS);
    assert_near(r.coverage, 0.25, EPS);
    eval_metrics_free(m);
}

static void test_metrics_series(void **state)
{
    (void)state;
    static const int ks[] = {1, 10};
    struct eval_metrics *m = eval_metrics_new(ks, 2, 10);
    const uint32_t list[] = {1, 2, 3};
    enum { CASES = 100000 };
    /* cum[i]: hits@1 among cases 0..i; case i has ts 1000 + i. */
    int64_t *cum = malloc(CASES * sizeof *cum);
    for (int i = 0; i < CASES; i++) {
        /* 25% hits in the first 100 cases, then all hits up to half, then none. */
        bool hit = i < 100 ? i % 4 == 0 : i < CASES / 2;
        eval_metrics_add(m, list, 3, hit ? 1 : 2, 1000 + i);
        cum[i] = (i ? cum[i - 1] : 0) + hit;
        if (i == 99) {
            /* Fewer cases than points: one point per case. */
            assert_int_equal(eval__metrics_series_len(m), 100);
            int64_t ts;
            double hr;
            eval__metrics_series_at(m, 0, &ts, &hr);
            assert_int_equal(ts, 1000);
            assert_near(hr, 1.0, EPS);
            eval__metrics_series_at(m, 1, &ts, &hr);
            assert_near(hr, 0.5, EPS);
        }
    }
    size_t n = eval__metrics_series_len(m);
    assert_true(n >= 100 && n <= 201);
    /* Every point closes an equal block of cases (the last may be partial) and carries
     * the cumulative HR up to its last case. */
    int64_t ts, block = 0;
    double hr;
    for (size_t i = 0; i < n; i++) {
        eval__metrics_series_at(m, i, &ts, &hr);
        int64_t cases = ts - 1000 + 1;
        if (i == 0)
            block = cases;
        if (i + 1 < n)
            assert_int_equal(cases, (int64_t)(i + 1) * block);
        else
            assert_true(cases > (int64_t)i * block && cases <= (int64_t)(i + 1) * block);
        assert_near(hr, (double)cum[cases - 1] / (double)cases, EPS);
    }
    assert_true(block >= CASES / 200 && block <= CASES / 100);
    /* The last point is the whole run. */
    eval__metrics_series_at(m, n - 1, &ts, &hr);
    assert_int_equal(ts, 1000 + CASES - 1);
    struct eval_result r;
    eval_metrics_result(m, 0, &r);
    assert_near(hr, r.hr, EPS);
    assert_near(r.hr, (double)cum[CASES - 1] / CASES, EPS);
    free(cum);
    eval_metrics_free(m);
}

/* ---- latency ---- */

static void test_latency_percentiles(void **state)
{
    (void)state;
    struct eval_latency *l = eval_latency_new();
    assert_true(isnan(eval_latency_percentile(l, 50)));
    for (int i = 100; i >= 1; i--) /* 1..100 in reverse: the percentile sorts a copy */
        eval_latency_add(l, i);
    assert_true(eval_latency_percentile(l, 50) == 50);
    assert_true(eval_latency_percentile(l, 99) == 99);
    assert_true(eval_latency_percentile(l, 100) == 100);
    assert_true(eval_latency_percentile(l, 0) == 1);
    assert_true(eval_latency_percentile(l, 0.5) == 1);
    assert_true(eval_latency_percentile(l, 99.5) == 100);
    eval_latency_add(l, 1000); /* 101 samples: rank ceil(50.5) = 51 */
    assert_true(eval_latency_percentile(l, 50) == 51);
    eval_latency_add(l, NAN); /* ignored */
    assert_true(eval_latency_percentile(l, 100) == 1000);
    eval_latency_free(l);

    /* Past a million samples a uniform reservoir keeps the distribution. */
    l = eval_latency_new();
    for (int i = 0; i < 1500000; i++)
        eval_latency_add(l, (double)(i % 1000));
    double p50 = eval_latency_percentile(l, 50), p99 = eval_latency_percentile(l, 99);
    assert_true(p50 > 480 && p50 < 520);
    assert_true(p99 > 980 && p99 <= 999);
    eval_latency_free(l);
}

static void test_progress_quiet_without_tty(void **state)
{
    (void)state;
    /* Under ctest stderr is not a terminal: nothing may be printed, nothing may crash. */
    for (size_t i = 0; i <= 1000; i++)
        eval_progress(i, 1000);
    eval_progress_done();
    eval_progress(0, 0);
    eval_progress_done();
}

/* ---- reports ---- */

static char *read_text(const char *path)
{
    struct core_buf b;
    core_buf_init(&b);
    assert_int_equal(core_read_file(path, 1 << 24, &b), 0);
    return b.data;
}

static double num(const cJSON *obj, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(j))
        fail_msg("no number at %s", key);
    return j->valuedouble;
}

static void test_report_json(void **state)
{
    (void)state;
    struct eval_metrics *m = three_cases();
    static const int ks[] = {10};
    struct eval_metrics *pop = eval_metrics_new(ks, 1, 20);
    const uint32_t l[] = {4};
    eval_metrics_add(pop, l, 1, 4, 1);
    struct eval_latency *lat = eval_latency_new();
    for (int i = 1; i <= 100; i++)
        eval_latency_add(lat, i * 10);
    struct eval_method methods[] = {{"recstream", m, lat}, {"pop\"ularity", pop, NULL}};
    char path[] = "/tmp/recstream-test-eval-report-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(eval_report_json(path, "prequential", "ml-100k", 100000, methods, 2), 0);
    char *text = read_text(path);
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "protocol")), "prequential");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "dataset")), "ml-100k");
    assert_true(num(j, "events") == 100000);
    assert_true(num(j, "evaluated") == 3);
    const cJSON *ms = cJSON_GetObjectItem(j, "methods");
    assert_int_equal(cJSON_GetArraySize(ms), 2);
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(ms, "recstream");
    assert_non_null(rs);
    assert_int_equal(cJSON_GetArraySize(rs), 3 * 4 + 2);
    assert_near(num(rs, "hr@1"), 1.0 / 3, EPS);
    assert_near(num(rs, "hr@3"), 2.0 / 3, EPS);
    assert_near(num(rs, "ndcg@3"), 0.5, EPS);
    assert_near(num(rs, "mrr@10"), 4.0 / 9, EPS);
    assert_near(num(rs, "coverage@10"), 0.7, EPS);
    assert_true(num(rs, "evaluated") == 3);
    const cJSON *lj = cJSON_GetObjectItem(rs, "latencyUs");
    assert_true(num(lj, "p50") == 500);
    assert_true(num(lj, "p99") == 990);
    const cJSON *pj = cJSON_GetObjectItemCaseSensitive(ms, "pop\"ularity");
    assert_non_null(pj);
    assert_true(num(pj, "hr@10") == 1);
    assert_true(num(pj, "evaluated") == 1);
    assert_null(cJSON_GetObjectItem(pj, "latencyUs"));
    cJSON_Delete(j);
    free(text);
    unlink(path);
    eval_metrics_free(m);
    eval_metrics_free(pop);
    eval_latency_free(lat);
}

static size_t count_of(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* A small well-formedness check: tags nest and close in order, attributes are quoted,
 * entities are the predefined ones, and no '<' or '&' is loose in the text. */
static void assert_well_formed(const char *s)
{
    const char *stack[64];
    size_t stack_len[64];
    int depth = 0;
    bool root_done = false;
    for (const char *p = s; *p;) {
        if (*p == '&') {
            const char *ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
            bool ok = false;
            for (size_t i = 0; i < 5 && !ok; i++)
                ok = strncmp(p, ents[i], strlen(ents[i])) == 0;
            if (!ok)
                fail_msg("bad entity at %.20s", p);
            p++;
            continue;
        }
        if (*p != '<') {
            if (depth == 0 && *p != '\n')
                fail_msg("text outside the root: %.20s", p);
            p++;
            continue;
        }
        assert_false(root_done);
        bool closing = p[1] == '/';
        const char *name = p + (closing ? 2 : 1);
        size_t nlen = strcspn(name, " />\n");
        assert_true(nlen > 0);
        const char *q = name + nlen;
        bool in_quote = false;
        while (*q && (in_quote || *q != '>')) {
            if (*q == '"')
                in_quote = !in_quote;
            else if (in_quote && (*q == '<'))
                fail_msg("'<' in an attribute");
            q++;
        }
        if (!*q)
            fail_msg("unterminated tag %.20s", p);
        bool self_closing = q[-1] == '/';
        if (closing) {
            assert_true(depth > 0);
            depth--;
            if (stack_len[depth] != nlen || strncmp(stack[depth], name, nlen) != 0)
                fail_msg("</%.*s> closes <%.*s>", (int)nlen, name, (int)stack_len[depth],
                         stack[depth]);
            root_done = depth == 0;
        } else if (!self_closing) {
            assert_true(depth < 64);
            stack[depth] = name;
            stack_len[depth++] = nlen;
        }
        p = q + 1;
    }
    assert_int_equal(depth, 0);
    assert_true(root_done);
}

static void test_report_svg(void **state)
{
    (void)state;
    static const int ks[] = {10, 20};
    struct eval_metrics *a = eval_metrics_new(ks, 2, 50), *b = eval_metrics_new(ks, 2, 50);
    uint32_t list[10];
    for (int i = 0; i < 10; i++)
        list[i] = (uint32_t)i;
    int64_t t0 = 874724710000LL; /* 1997-09-20 */
    for (int i = 0; i < 5000; i++) {
        int64_t ts = t0 + (int64_t)i * 3600 * 1000;
        eval_metrics_add(a, list, 10, (uint32_t)(i % 15), ts);
        eval_metrics_add(b, list, 10, (uint32_t)(i % 40), ts);
    }
    struct eval_method methods[] = {{"recstream", a, NULL}, {"pop <&> \"x\" \xff", b, NULL}};
    char path[] = "/tmp/recstream-test-eval-svg-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(eval_report_svg(path, "HR@10 on ml-100k & friends", methods, 2), 0);
    char *svg = read_text(path);
    assert_int_equal(strncmp(svg, "<svg", 4), 0);
    size_t len = strlen(svg);
    while (len > 0 && svg[len - 1] == '\n')
        len--;
    assert_true(len > 6 && strncmp(svg + len - 6, "</svg>", 6) == 0);
    assert_int_equal(count_of(svg, "<polyline"), 2);
    assert_int_equal(count_of(svg, "nan"), 0);
    assert_int_equal(count_of(svg, "NaN"), 0);
    assert_int_equal(count_of(svg, "inf"), 0);
    assert_int_equal(count_of(svg, "<script"), 0);
    assert_non_null(strstr(svg, "width=\"800\" height=\"450\""));
    assert_non_null(strstr(svg, "ml-100k &amp; friends"));
    assert_non_null(strstr(svg, "pop &lt;&amp;&gt; &quot;x&quot; \xef\xbf\xbd"));
    assert_non_null(strstr(svg, ">1997-09-2")); /* date labels */
    assert_non_null(strstr(svg, "HR@10"));
    assert_non_null(strstr(svg, "#1f77b4"));
    assert_non_null(strstr(svg, "#d62728"));
    assert_well_formed(svg);
    free(svg);

    /* No cases at all still gives a well-formed chart with one (empty) line per method. */
    struct eval_metrics *e = eval_metrics_new(ks, 2, 50);
    struct eval_method empty[] = {{"recstream", e, NULL}};
    assert_int_equal(eval_report_svg(path, "empty", empty, 1), 0);
    svg = read_text(path);
    assert_int_equal(count_of(svg, "<polyline"), 1);
    assert_int_equal(count_of(svg, "nan"), 0);
    assert_int_equal(count_of(svg, "inf"), 0);
    assert_well_formed(svg);
    free(svg);
    unlink(path);
    eval_metrics_free(a);
    eval_metrics_free(b);
    eval_metrics_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_hand_computed),
        cmocka_unit_test(test_metrics_edge_cases),
        cmocka_unit_test(test_metrics_series),
        cmocka_unit_test(test_latency_percentiles),
        cmocka_unit_test(test_progress_quiet_without_tty),
        cmocka_unit_test(test_report_json),
        cmocka_unit_test(test_report_svg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
