/* `recstream log tail|dump|check|stats`: inspect the embedded event log. */
#include "cli/cli_int.h"
#include "event/event.h"
#include "evlog/evlog.h"
#include "privacy/fieldseal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct log_config {
    char data[1024];
    char data_key[1024];
    struct cli_keys keys;
    int64_t partition; /* -1: all */
    int64_t from;
    int64_t limit; /* -1: no limit */
    int64_t lines; /* tail: records per partition */
    bool follow;
    bool json;
};

#define LCFG ((struct log_config *)cfg)

static int set_data(void *cfg, const char *v, char *err, size_t es)
{
    if (strlen(v) >= sizeof LCFG->data) {
        snprintf(err, es, "path too long");
        return CORE_E_INVALID;
    }
    memcpy(LCFG->data, v, strlen(v) + 1);
    return 0;
}

static int set_data_key(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(LCFG->data_key, sizeof LCFG->data_key, v, err, es);
}

static int set_i64(int64_t *dst, const char *v, int64_t min, char *err, size_t es)
{
    if (core_parse_i64(v, min, INT64_MAX, dst)) {
        snprintf(err, es, "expected an integer >= %lld", (long long)min);
        return CORE_E_INVALID;
    }
    return 0;
}

static int set_partition(void *cfg, const char *v, char *err, size_t es)
{
    return set_i64(&LCFG->partition, v, 0, err, es);
}
static int set_from(void *cfg, const char *v, char *err, size_t es)
{
    return set_i64(&LCFG->from, v, 0, err, es);
}
static int set_limit(void *cfg, const char *v, char *err, size_t es)
{
    return set_i64(&LCFG->limit, v, 0, err, es);
}
static int set_lines(void *cfg, const char *v, char *err, size_t es)
{
    return set_i64(&LCFG->lines, v, 0, err, es);
}
static int set_follow(void *cfg, const char *v, char *err, size_t es)
{
    (void)v;
    (void)err;
    (void)es;
    LCFG->follow = true;
    return 0;
}
static int set_json(void *cfg, const char *v, char *err, size_t es)
{
    (void)v;
    (void)err;
    (void)es;
    LCFG->json = true;
    return 0;
}

static const struct cli_opt log_opts[] = {
    {"data", "DIR", "data directory (default ./data)", set_data},
    {"data-key", "FILE", "data key (default DIR/privacy/data.key)", set_data_key},
    {"partition", "P", "only this partition (dump, tail)", set_partition},
    {"from", "OFFSET", "first offset to print (dump)", set_from},
    {"limit", "N", "print at most N records (dump)", set_limit},
    {"lines", "N", "records per partition (tail; default 10)", set_lines},
    {"follow", NULL, "keep printing new records (tail)", set_follow},
    {"json", NULL, "machine-readable output (stats, check)", set_json},
};

static const char *usage = "tail|dump|check|stats [options]";

static int open_log(const struct log_config *c, struct evlog **log)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/log", c->data);
    struct evlog_file_options lo;
    evlog_file_options_init(&lo);
    lo.dir = path;
    lo.partitions = 0; /* read it from the log's meta file */
    lo.read_only = true;
    lo.keys = c->keys.uk;
    int rc = evlog_file_open(&lo, log);
    if (rc < 0)
        fprintf(stderr, "recstream log: cannot open %s: %s\n", path, core_strerror(rc));
    return rc;
}

/* One JSON line per record: position, times, key and the decoded event. */
static void print_record(const struct evlog_record *r, struct epochkeys *ek, struct core_buf *out)
{
    struct event ev;
    struct core_arena arena;
    struct event_str expired = {NULL, 0};
    core_arena_init(&arena);
    core_buf_reset(out);
    if (r->erased) {
        core_buf_printf(out, "{\"partition\":%d,\"offset\":%lld,\"erased\":true}\n",
                        (int)r->partition, (long long)r->offset);
        fwrite(out->data, 1, out->len, stdout);
        return;
    }
    core_buf_printf(out,
                    "{\"partition\":%d,\"offset\":%lld,\"eventTime\":%lld,\"ingestTime\":%lld,"
                    "\"key\":",
                    (int)r->partition, (long long)r->offset, (long long)r->event_time_ms,
                    (long long)r->ingest_time_ms);
    core_json_str(out, r->key, r->key_len);
    core_buf_puts(out, ",\"event\":");
    if (event_bin_decode(r->value, r->value_len, &ev) == 0) {
        /* Fields of a short retention class come back while their epoch key exists. */
        if (fieldseal_merge(ek, &ev, &arena, &expired) < 0)
            core_buf_puts(out, "null,\"error\":\"field bundle does not open\"");
        else
            event_json_encode(&ev, out);
    } else {
        core_buf_puts(out, "null,\"error\":\"undecodable payload\"");
    }
    if (expired.len) {
        core_buf_puts(out, ",\"expiredFields\":");
        fieldseal_names_json(expired, out);
    }
    core_buf_puts(out, "}\n");
    core_arena_dispose(&arena);
    fwrite(out->data, 1, out->len, stdout);
}

/* Prints records of p from `from` until high water (or limit); returns the next offset. */
static int64_t print_range(struct evlog *log, struct epochkeys *ek, int32_t p, int64_t from,
                           int64_t *limit, struct evlog_batch *batch, struct core_buf *out)
{
    for (;;) {
        if (*limit == 0)
            return from;
        size_t max = *limit > 0 && *limit < 1024 ? (size_t)*limit : 1024;
        int n = evlog_read(log, p, from, max, batch);
        if (n <= 0) {
            if (n < 0)
                fprintf(stderr, "recstream log: partition %d: %s\n", (int)p, core_strerror(n));
            return from;
        }
        for (size_t i = 0; i < batch->n; i++)
            print_record(&batch->recs[i], ek, out);
        if (*limit > 0)
            *limit -= (int64_t)batch->n;
        from = batch->recs[batch->n - 1].offset + 1;
    }
}

static int cmd_dump(struct log_config *c, bool tail)
{
    struct evlog *log;
    if (open_log(c, &log) < 0)
        return 1;
    struct evlog_batch batch;
    evlog_batch_init(&batch);
    struct core_buf out;
    core_buf_init(&out);
    int32_t np = log->partitions;
    int64_t *next = core_xcalloc((size_t)np, sizeof *next);
    int64_t limit = c->limit;
    for (int32_t p = 0; p < np; p++) {
        if (c->partition >= 0 && p != c->partition)
            continue;
        struct evlog_partition_stats st;
        evlog_stats(log, p, &st);
        int64_t from = c->from;
        if (tail)
            from =
                st.high_water - c->lines > st.low_water ? st.high_water - c->lines : st.low_water;
        int64_t lim = tail ? -1 : limit;
        next[p] = print_range(log, c->keys.ek, p, from, &lim, &batch, &out);
        if (!tail)
            limit = lim;
    }
    fflush(stdout);
    while (tail && c->follow) {
        /* Another process appends: re-open periodically to see its new records. This is a
         * CLI convenience; in-process readers use evlog_wait and never poll. */
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        evlog_close(log);
        if (open_log(c, &log) < 0)
            break;
        for (int32_t p = 0; p < np; p++) {
            if (c->partition >= 0 && p != c->partition)
                continue;
            int64_t lim = -1;
            next[p] = print_range(log, c->keys.ek, p, next[p], &lim, &batch, &out);
        }
        fflush(stdout);
    }
    free(next);
    core_buf_dispose(&out);
    evlog_batch_dispose(&batch);
    evlog_close(log);
    return 0;
}

static void report_problem(void *arg, const char *file, int64_t position, const char *what)
{
    (void)arg;
    printf("%s: position %lld: %s\n", file, (long long)position, what);
}

static int cmd_check(struct log_config *c)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/log", c->data);
    int64_t erased = 0;
    int n = evlog_file_check(path, c->keys.uk, report_problem, NULL, &erased);
    if (n < 0) {
        fprintf(stderr, "recstream log check: cannot read %s: %s\n", path, core_strerror(n));
        return 2;
    }
    printf("%s: %d problem%s, %lld erased record%s (key shredded)\n", path, n, n == 1 ? "" : "s",
           (long long)erased, erased == 1 ? "" : "s");
    return n == 0 ? 0 : 1;
}

static int cmd_stats(struct log_config *c)
{
    struct evlog *log;
    if (open_log(c, &log) < 0)
        return 1;
    int64_t total_records = 0, total_bytes = 0, total_segments = 0;
    if (!c->json)
        printf("%-9s %12s %12s %10s %14s %9s\n", "partition", "low", "high", "records", "bytes",
               "segments");
    else
        printf("{\"partitions\":[");
    for (int32_t p = 0; p < log->partitions; p++) {
        struct evlog_partition_stats st;
        if (evlog_stats(log, p, &st) < 0)
            continue;
        int64_t recs = st.high_water - st.low_water;
        total_records += recs;
        total_bytes += st.bytes;
        total_segments += st.segments;
        if (c->json)
            printf("%s{\"partition\":%d,\"low\":%lld,\"high\":%lld,\"records\":%lld,"
                   "\"bytes\":%lld,\"segments\":%d}",
                   p ? "," : "", (int)p, (long long)st.low_water, (long long)st.high_water,
                   (long long)recs, (long long)st.bytes, (int)st.segments);
        else
            printf("%-9d %12lld %12lld %10lld %14lld %9d\n", (int)p, (long long)st.low_water,
                   (long long)st.high_water, (long long)recs, (long long)st.bytes,
                   (int)st.segments);
    }
    double per = total_records ? (double)total_bytes / (double)total_records : 0.0;
    if (c->json)
        printf("],\"records\":%lld,\"bytes\":%lld,\"segments\":%lld,\"bytes_per_record\":%.1f}\n",
               (long long)total_records, (long long)total_bytes, (long long)total_segments, per);
    else
        printf("%-9s %12s %12s %10lld %14lld %9lld\nbytes per record: %.1f\n", "total", "", "",
               (long long)total_records, (long long)total_bytes, (long long)total_segments, per);
    evlog_close(log);
    return 0;
}

int cli_cmd_log(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            cli__help(stdout, "log", usage, log_opts, sizeof log_opts / sizeof *log_opts);
            return 0;
        }
        fprintf(stderr, "usage: recstream log %s\n", usage);
        return 2;
    }
    const char *sub = argv[1];
    struct log_config c = {.partition = -1, .from = 0, .limit = -1, .lines = 10};
    snprintf(c.data, sizeof c.data, "./data");
    int rc = cli__parse("log", usage, log_opts, sizeof log_opts / sizeof *log_opts, &c, argc - 1,
                        argv + 1);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    bool known = !strcmp(sub, "dump") || !strcmp(sub, "tail") || !strcmp(sub, "check") ||
                 !strcmp(sub, "stats");
    if (!known) {
        fprintf(stderr, "recstream log: unknown subcommand '%s' (tail, dump, check, stats)\n", sub);
        return 2;
    }
    if (cli__keys_open(c.data, c.data_key, false, 0, &c.keys) < 0)
        return 2;
    if (!strcmp(sub, "dump"))
        rc = cmd_dump(&c, false);
    else if (!strcmp(sub, "tail"))
        rc = cmd_dump(&c, true);
    else if (!strcmp(sub, "check"))
        rc = cmd_check(&c);
    else
        rc = cmd_stats(&c);
    cli__keys_close(&c.keys);
    return rc;
}
