/*
 * A realistic determinism test: MovieLens 100k ratings (user item rating unix-seconds, sorted
 * by time then line) replayed through a shard twice give byte-identical dumps, and a snapshot
 * taken halfway, restored and continued gives the same dump again.
 */
#include "state_test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#define DATA "/work/shared/data/ml-100k/u.data"
#define MAX_EVENTS 100000

struct rating {
    int64_t ts_ms;
    int line;
    char user[EVENT_KEY_HEX + 1];
    char item[12];
    double value;
};

static int cmp_rating(const void *a, const void *b)
{
    const struct rating *x = a, *y = b;
    if (x->ts_ms != y->ts_ms)
        return x->ts_ms < y->ts_ms ? -1 : 1;
    return x->line - y->line;
}

static struct rating *load(int *count)
{
    FILE *f = fopen(DATA, "r");
    if (!f)
        return NULL;
    struct rating *r = calloc(MAX_EVENTS, sizeof *r);
    char line[128];
    int n = 0;
    while (n < MAX_EVENTS && fgets(line, sizeof line, f)) {
        char *p = line, *e;
        long u = strtol(p, &e, 10);
        long it = strtol(e, &p, 10);
        long rating = strtol(p, &e, 10);
        long long secs = strtoll(e, &p, 10);
        if (p == e)
            continue;
        r[n].ts_ms = (int64_t)secs * 1000;
        r[n].line = n;
        snprintf(r[n].user, sizeof r[n].user, "%032lx", u);
        snprintf(r[n].item, sizeof r[n].item, "%ld", it);
        r[n].value = (double)rating;
        n++;
    }
    fclose(f);
    qsort(r, (size_t)n, sizeof *r, cmp_rating);
    *count = n;
    return r;
}

static void replay(struct state_shard *s, const struct rating *r, int from, int to)
{
    for (int i = from; i < to; i++) {
        struct event ev;
        event_init(&ev);
        memcpy(ev.user_key, r[i].user, sizeof ev.user_key);
        ev.item_id.ptr = r[i].item;
        ev.item_id.len = strlen(r[i].item);
        ev.type = EVENT_RATING;
        ev.ts_ms = ev.recv_ms = r[i].ts_ms;
        ev.has_value = true;
        ev.value = r[i].value;
        state_shard_apply(s, &ev, i);
    }
}

static void test_ml100k_deterministic(void **st)
{
    (void)st;
    int n = 0;
    struct rating *r = load(&n);
    if (!r) {
        print_message("skipping: %s not readable\n", DATA);
        skip();
    }
    assert_true(n > 1000);
    struct state_config cfg;
    state_config_init(&cfg);
    struct core_buf d1, d2, snap;
    core_buf_init(&d1);
    core_buf_init(&d2);
    core_buf_init(&snap);

    struct state_shard *a = state_shard_new(&cfg, 0);
    replay(a, r, 0, n);
    tu_dump(a, &d1);
    struct state_stats stats;
    state_shard_stats(a, &stats);
    assert_int_equal(stats.events, n);
    /* ml-100k spans 7 months: the 30-day TTL expires most users and items. */
    assert_true(stats.users > 0 && stats.expired > 0 && stats.pairs > 0);
    state_shard_free(a);

    struct state_shard *b = state_shard_new(&cfg, 0);
    replay(b, r, 0, n / 2);
    state_shard_snapshot(b, &snap);
    state_shard_free(b);
    struct state_shard *c = state_shard_new(&cfg, 0);
    assert_int_equal(state_shard_restore(c, snap.data, snap.len), 0);
    replay(c, r, n / 2, n);
    tu_dump(c, &d2);
    assert_int_equal(d1.len, d2.len);
    assert_memory_equal(d1.data, d2.data, d1.len);
    state_shard_free(c);

    core_buf_dispose(&d1);
    core_buf_dispose(&d2);
    core_buf_dispose(&snap);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ml100k_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
