/*
 * Dataset loaders for `recstream eval`: MovieLens (u.data + u.item, ratings.csv +
 * movies.csv), OTTO sessions, DIGINETICA item views and canonical NDJSON events, all turned
 * into eval_event rows that index two interned string tables, sorted by time.
 */
#include "cli/eval.h"
#include "event/event.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A longer line is an error: it means a wrong --format or a binary file. */
#define LINE_MAX_BYTES ((size_t)64 << 20)
#define FIELDS_MAX 32
/* OTTO's full release has ts in seconds, the sample in ms: anything below this is seconds
 * (1e11 ms is 1973, 1e11 s is the year 5138). */
#define OTTO_SECONDS_BELOW 100000000000LL

/* ---- interned strings ---------------------------------------------------------------------- */

/* Strings in first-seen order with an open-addressing index over them. Indexes handed out
 * are stable, so eval_event can carry a uint32_t. */
struct strtab {
    char **s;
    size_t *len;
    size_t n, cap;
    uint32_t *slot; /* 0 = empty, else string index + 1 */
    size_t nslot;   /* a power of two, kept at least twice n */
};

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

static void strtab_free(struct strtab *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->s[i]);
    free(t->s);
    free(t->len);
    free(t->slot);
    memset(t, 0, sizeof *t);
}

/* Index of the string or SIZE_MAX; *pos is the slot where it is or would go. */
static size_t strtab_find(const struct strtab *t, const char *s, size_t n, size_t *pos)
{
    size_t mask = t->nslot - 1;
    size_t i = (size_t)hash_bytes(s, n) & mask;
    while (t->slot[i]) {
        size_t idx = t->slot[i] - 1;
        if (t->len[idx] == n && memcmp(t->s[idx], s, n) == 0) {
            *pos = i;
            return idx;
        }
        i = (i + 1) & mask;
    }
    *pos = i;
    return SIZE_MAX;
}

static void strtab_rehash(struct strtab *t, size_t nslot)
{
    free(t->slot);
    t->nslot = nslot;
    t->slot = core_xcalloc(nslot, sizeof *t->slot);
    for (size_t idx = 0; idx < t->n; idx++) {
        size_t pos;
        strtab_find(t, t->s[idx], t->len[idx], &pos);
        t->slot[pos] = (uint32_t)(idx + 1);
    }
}

/* Returns the string's index, adding a copy when new. The caller keeps n below UINT32_MAX. */
static uint32_t strtab_intern(struct strtab *t, const char *s, size_t n)
{
    if (t->nslot == 0)
        strtab_rehash(t, 1024);
    size_t pos;
    size_t idx = strtab_find(t, s, n, &pos);
    if (idx != SIZE_MAX)
        return (uint32_t)idx;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1024;
        t->s = core_xrealloc(t->s, t->cap * sizeof *t->s);
        t->len = core_xrealloc(t->len, t->cap * sizeof *t->len);
    }
    idx = t->n++;
    t->s[idx] = core_xstrndup(s, n);
    t->len[idx] = n;
    t->slot[pos] = (uint32_t)(idx + 1);
    if (t->n * 2 > t->nslot)
        strtab_rehash(t, t->nslot * 2);
    return (uint32_t)idx;
}

/* ---- text helpers -------------------------------------------------------------------------- */

/* A copy of s as UTF-8: kept as it is when it already is valid UTF-8, otherwise read as
 * Latin-1 (what ml-100k's u.item is; some redistributed copies were re-encoded to UTF-8). */
static char *dup_utf8(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    bool valid = true;
    for (size_t i = 0, l; i < n && valid; i += l)
        valid = (l = core_utf8_len(u + i, n - i)) > 0;
    if (valid)
        return core_xstrndup(s, n);
    char *out = core_xmalloc(2 * n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (u[i] < 0x80) {
            out[k++] = (char)u[i];
        } else {
            out[k++] = (char)(0xc0 | (u[i] >> 6));
            out[k++] = (char)(0x80 | (u[i] & 0x3f));
        }
    }
    out[k] = '\0';
    return out;
}

/*
 * Splits line in place at sep into at most max fields; returns the field count, max + 1
 * when there are more, or -1 on broken quoting. With quoted, a field that starts with '"'
 * runs to the closing quote ("" is a literal quote) and is unquoted in place (RFC 4180).
 */
static int split_fields(char *line, char sep, bool quoted, char **f, int max)
{
    int nf = 0;
    char *p = line;
    for (;;) {
        if (nf == max)
            return max + 1;
        if (quoted && *p == '"') {
            char *w = p;
            f[nf++] = w;
            p++;
            for (;;) {
                if (*p == '\0')
                    return -1;
                if (*p == '"' && p[1] == '"') {
                    *w++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *w++ = *p++;
                }
            }
            if (*p != sep && *p != '\0')
                return -1;
            *w = '\0';
        } else {
            f[nf++] = p;
            while (*p != sep && *p != '\0')
                p++;
        }
        if (*p == '\0')
            return nf;
        *p++ = '\0';
    }
}

/* "YYYY-MM-DD" as ms since the epoch (UTC midnight), through the RFC 3339 parser. */
static int parse_date(const char *s, int64_t *out_ms)
{
    char buf[32];
    if (strlen(s) != 10)
        return CORE_E_PARSE;
    int n = snprintf(buf, sizeof buf, "%sT00:00:00Z", s);
    return core_rfc3339_parse(buf, (size_t)n, out_ms);
}

/* MovieLens u.item release dates, "01-Jan-1995". */
static int parse_release_date(const char *s, int64_t *out_ms)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    if (strlen(s) != 11 || s[2] != '-' || s[6] != '-')
        return CORE_E_PARSE;
    for (int m = 0; m < 12; m++) {
        if (memcmp(months + 3 * (size_t)m, s + 3, 3) == 0) {
            char iso[16];
            snprintf(iso, sizeof iso, "%.4s-%02d-%.2s", s + 7, m + 1, s);
            return parse_date(iso, out_ms);
        }
    }
    return CORE_E_PARSE;
}

/* ---- the loader ---------------------------------------------------------------------------- */

struct loader {
    const struct eval_load_opts *o;
    const char *path; /* the file being read, for messages */
    size_t line;      /* 1-based line number in path */
    struct strtab users, items;
    struct eval_event *ev;
    size_t n, cap;
    struct eval_item_meta *meta;
    size_t skipped;
    bool full; /* o->limit reached */
    char *err;
    size_t errlen;
};

typedef int (*line_fn)(struct loader *ld, char *line, size_t len, void *arg);

static int fail(struct loader *ld, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct loader *ld, int rc, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ld->line > 0)
        snprintf(ld->err, ld->errlen, "%s:%zu: %s", ld->path, ld->line, msg);
    else
        snprintf(ld->err, ld->errlen, "%s: %s", ld->path, msg);
    return rc;
}

static int add_event(struct loader *ld, const char *user, size_t ulen, const char *item,
                     size_t ilen, int64_t ts_ms, int type, bool has_value, double value)
{
    if (ld->n >= UINT32_MAX - 1 || ld->users.n >= UINT32_MAX - 1 || ld->items.n >= UINT32_MAX - 1)
        return fail(ld, CORE_E_TOOBIG, "more than 2^32 interactions, users or items");
    if (ld->n == ld->cap) {
        ld->cap = ld->cap ? ld->cap * 2 : 4096;
        ld->ev = core_xrealloc(ld->ev, ld->cap * sizeof *ld->ev);
    }
    struct eval_event *e = &ld->ev[ld->n];
    e->ts_ms = ts_ms;
    e->user = strtab_intern(&ld->users, user, ulen);
    e->item = strtab_intern(&ld->items, item, ilen);
    e->type = type;
    e->has_value = has_value;
    e->value = has_value ? value : 0;
    /* Kept interactions are numbered in input order, which follows the line numbers (and
     * the event order inside an OTTO session line). */
    e->order = (uint32_t)ld->n;
    ld->n++;
    if (ld->o->limit > 0 && ld->n >= ld->o->limit)
        ld->full = true;
    return 0;
}

/*
 * Calls fn for every non-empty line of path (the newline and a CR before it removed, the
 * line NUL-terminated) until it fails or the limit is reached. A missing file is
 * -ENOENT with a message, so callers can treat optional files as absent.
 */
static int each_line(struct loader *ld, const char *path, line_fn fn, void *arg)
{
    ld->path = path;
    ld->line = 0;
    FILE *fp = fopen(path, "r");
    if (!fp)
        return fail(ld, -errno, "%s", strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    ssize_t r;
    while (!ld->full && (r = getline(&line, &cap, fp)) >= 0) {
        ld->line++;
        size_t len = (size_t)r;
        if (len > LINE_MAX_BYTES) {
            rc = fail(ld, CORE_E_TOOBIG, "line longer than %zu bytes", LINE_MAX_BYTES);
            break;
        }
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (len == 0)
            continue;
        if (memchr(line, '\0', len)) {
            rc = fail(ld, CORE_E_PARSE, "NUL byte in line");
            break;
        }
        rc = fn(ld, line, len, arg);
        if (rc < 0)
            break;
    }
    if (rc == 0 && ferror(fp))
        rc = fail(ld, -EIO, "read error");
    free(line);
    fclose(fp);
    return rc;
}

/* ---- MovieLens ratings ----------------------------------------------------------------------- */

/* One rating row of either MovieLens format: timestamps in seconds, threshold applied. */
static int rating_row(struct loader *ld, const char *user, const char *item, const char *rating,
                      const char *ts)
{
    char *end;
    errno = 0;
    double v = strtod(rating, &end);
    if (end == rating || *end != '\0' || errno || !isfinite(v))
        return fail(ld, CORE_E_PARSE, "bad rating \"%.32s\"", rating);
    int64_t secs;
    if (core_parse_i64(ts, INT64_MIN / 1000, INT64_MAX / 1000, &secs) < 0)
        return fail(ld, CORE_E_PARSE, "bad timestamp \"%.32s\"", ts);
    if (!*user || !*item)
        return fail(ld, CORE_E_PARSE, "empty user or item id");
    if (v < ld->o->threshold) {
        ld->skipped++;
        return 0;
    }
    return add_event(ld, user, strlen(user), item, strlen(item), secs * 1000, ld->o->rating_type,
                     true, v);
}

static int movielens_line(struct loader *ld, char *line, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    char *f[FIELDS_MAX];
    int nf = split_fields(line, '\t', false, f, 4);
    if (nf != 4)
        return fail(ld, CORE_E_PARSE, "expected 4 tab-separated fields (user item rating time)");
    return rating_row(ld, f[0], f[1], f[2], f[3]);
}

static int movielens_csv_line(struct loader *ld, char *line, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    if (ld->line == 1 && strncmp(line, "userId,", 7) == 0)
        return 0;
    char *f[FIELDS_MAX];
    int nf = split_fields(line, ',', true, f, 4);
    if (nf != 4)
        return fail(ld, CORE_E_PARSE, "expected 4 fields (userId,movieId,rating,timestamp)");
    return rating_row(ld, f[0], f[1], f[2], f[3]);
}

/* ---- DIGINETICA ------------------------------------------------------------------------------ */

static int diginetica_line(struct loader *ld, char *line, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    if (ld->line == 1 && strncmp(line, "session_id;", 11) == 0)
        return 0;
    char *f[FIELDS_MAX];
    int nf = split_fields(line, ';', false, f, 5);
    if (nf != 5)
        return fail(ld, CORE_E_PARSE,
                    "expected 5 ';'-separated fields (session_id;user_id;item_id;timeframe;"
                    "eventdate)");
    int64_t frame, day;
    if (core_parse_i64(f[3], 0, INT64_MAX / 4, &frame) < 0)
        return fail(ld, CORE_E_PARSE, "bad timeframe \"%.32s\"", f[3]);
    if (parse_date(f[4], &day) < 0)
        return fail(ld, CORE_E_PARSE, "bad eventdate \"%.32s\" (want YYYY-MM-DD)", f[4]);
    if (!*f[0] || !*f[2])
        return fail(ld, CORE_E_PARSE, "empty session_id or item_id");
    return add_event(ld, f[0], strlen(f[0]), f[2], strlen(f[2]), day + frame, EVENT_VIEW, false, 0);
}

/* ---- JSON lines (OTTO, canonical NDJSON) --------------------------------------------------- */

/* An id that is a JSON string or an integral number, as a string (numbers printed into buf). */
static bool json_id(const cJSON *j, char *buf, size_t bufsz, const char **s, size_t *len)
{
    if (cJSON_IsString(j) && j->valuestring[0]) {
        *s = j->valuestring;
        *len = strlen(j->valuestring);
        return true;
    }
    if (cJSON_IsNumber(j) && isfinite(j->valuedouble) && fabs(j->valuedouble) < 9.0e15 &&
        j->valuedouble == floor(j->valuedouble)) {
        *s = buf;
        *len = (size_t)snprintf(buf, bufsz, "%" PRId64, (int64_t)j->valuedouble);
        return true;
    }
    return false;
}

static int parse_json_line(struct loader *ld, const char *line, size_t len, cJSON **out)
{
    struct event_json_pos pos;
    cJSON *j = event_json_parse(line, len, &pos);
    if (!j)
        return fail(ld, CORE_E_PARSE, "%s at column %zu",
                    pos.trailing ? "text after the JSON value" : "invalid JSON", pos.column);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return fail(ld, CORE_E_PARSE, "not a JSON object");
    }
    *out = j;
    return 0;
}

static int otto_event(struct loader *ld, const char *user, size_t ulen, const cJSON *e, int i)
{
    static const struct {
        const char *name;
        int type;
    } types[] = {{"clicks", EVENT_CLICK}, {"carts", EVENT_ADD_TO_CART}, {"orders", EVENT_PURCHASE}};
    char ibuf[32];
    const char *item;
    size_t ilen;
    if (!cJSON_IsObject(e) ||
        !json_id(cJSON_GetObjectItemCaseSensitive(e, "aid"), ibuf, sizeof ibuf, &item, &ilen))
        return fail(ld, CORE_E_PARSE, "events[%d]: no aid", i);
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(e, "ts");
    if (!cJSON_IsNumber(ts) || !isfinite(ts->valuedouble) || ts->valuedouble < 0 ||
        ts->valuedouble > 9.0e15)
        return fail(ld, CORE_E_PARSE, "events[%d]: no valid ts", i);
    int64_t ms = (int64_t)ts->valuedouble;
    if (ms < OTTO_SECONDS_BELOW)
        ms *= 1000;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
    const char *tname = cJSON_GetStringValue(type);
    for (size_t t = 0; tname && t < sizeof types / sizeof types[0]; t++) {
        if (strcmp(tname, types[t].name) == 0)
            return add_event(ld, user, ulen, item, ilen, ms, types[t].type, false, 0);
    }
    return fail(ld, CORE_E_PARSE, "events[%d]: type is not clicks, carts or orders", i);
}

static int otto_line(struct loader *ld, char *line, size_t len, void *arg)
{
    (void)arg;
    cJSON *j = NULL;
    int rc = parse_json_line(ld, line, len, &j);
    if (rc < 0)
        return rc;
    char ubuf[32];
    const char *user;
    size_t ulen;
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(j, "events");
    if (!json_id(cJSON_GetObjectItemCaseSensitive(j, "session"), ubuf, sizeof ubuf, &user, &ulen)) {
        rc = fail(ld, CORE_E_PARSE, "no session id");
    } else if (!cJSON_IsArray(events)) {
        rc = fail(ld, CORE_E_PARSE, "no events array");
    } else {
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, events)
        {
            if (ld->full)
                break;
            rc = otto_event(ld, user, ulen, e, i++);
            if (rc < 0)
                break;
        }
    }
    cJSON_Delete(j);
    return rc;
}

/* The first of the keys that holds a non-empty string. */
static const char *first_str(const cJSON *j, const char *const *keys)
{
    for (; *keys; keys++) {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, *keys));
        if (s && *s)
            return s;
    }
    return NULL;
}

static int ndjson_fields(struct loader *ld, const cJSON *j)
{
    /* Raw ids from a producer, or the pseudonymous keys of a `recstream log` dump. */
    static const char *const user_keys[] = {"userId", "anonymousId", "userKey", "anonKey", NULL};
    char ibuf[32];
    const char *item;
    size_t ilen;
    const cJSON *jitem = cJSON_GetObjectItemCaseSensitive(j, "itemId");
    if (!jitem || cJSON_IsNull(jitem)) {
        ld->skipped++;
        return 0;
    }
    if (!json_id(jitem, ibuf, sizeof ibuf, &item, &ilen))
        return fail(ld, CORE_E_PARSE, "itemId is not a non-empty string");
    const char *user = first_str(j, user_keys);
    if (!user)
        return fail(ld, CORE_E_PARSE, "no userId or anonymousId");
    const char *tname = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "eventType"));
    if (!tname)
        return fail(ld, CORE_E_PARSE, "no eventType");
    int type = event_type_lookup(tname, strlen(tname));
    if (type < 0)
        return fail(ld, CORE_E_PARSE, "unknown eventType \"%.64s\"", tname);
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(j, "timestamp");
    int64_t ms;
    if (cJSON_IsString(ts)) {
        if (core_rfc3339_parse(ts->valuestring, strlen(ts->valuestring), &ms) < 0)
            return fail(ld, CORE_E_PARSE, "timestamp is not RFC 3339");
    } else if (cJSON_IsNumber(ts) && isfinite(ts->valuedouble) && fabs(ts->valuedouble) < 9.0e15) {
        ms = (int64_t)ts->valuedouble;
    } else {
        return fail(ld, CORE_E_PARSE, "no timestamp (ms number or RFC 3339 string)");
    }
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(j, "value");
    bool has_value = cJSON_IsNumber(value) && isfinite(value->valuedouble);
    return add_event(ld, user, strlen(user), item, ilen, ms, type, has_value,
                     has_value ? value->valuedouble : 0);
}

static int ndjson_line(struct loader *ld, char *line, size_t len, void *arg)
{
    (void)arg;
    cJSON *j = NULL;
    int rc = parse_json_line(ld, line, len, &j);
    if (rc < 0)
        return rc;
    rc = ndjson_fields(ld, j);
    cJSON_Delete(j);
    return rc;
}

/* ---- item metadata --------------------------------------------------------------------------- */

/* ml-100k's u.genre, for when the file is missing beside u.item. */
static const char *const ml100k_genres[] = {
    "unknown",     "Action", "Adventure", "Animation", "Children's", "Comedy",  "Crime",
    "Documentary", "Drama",  "Fantasy",   "Film-Noir", "Horror",     "Musical", "Mystery",
    "Romance",     "Sci-Fi", "Thriller",  "War",       "Western"};

struct genres {
    char **name; /* by index */
    size_t n;
};

static int genre_line(struct loader *ld, char *line, size_t len, void *arg)
{
    (void)len;
    struct genres *g = arg;
    char *f[FIELDS_MAX];
    int64_t idx;
    if (split_fields(line, '|', false, f, 2) != 2 || core_parse_i64(f[1], 0, 1000, &idx) < 0)
        return fail(ld, CORE_E_PARSE, "expected name|index");
    if ((size_t)idx >= g->n) {
        g->name = core_xrealloc(g->name, (size_t)(idx + 1) * sizeof *g->name);
        memset(g->name + g->n, 0, ((size_t)idx + 1 - g->n) * sizeof *g->name);
        g->n = (size_t)idx + 1;
    }
    free(g->name[idx]);
    g->name[idx] = core_xstrdup(f[0]);
    return 0;
}

/* The meta entry of an item id, or NULL when the item has no interactions. */
static struct eval_item_meta *meta_for(struct loader *ld, const char *id)
{
    size_t pos;
    if (ld->items.nslot == 0)
        return NULL;
    size_t idx = strtab_find(&ld->items, id, strlen(id), &pos);
    return idx == SIZE_MAX ? NULL : &ld->meta[idx];
}

static void meta_add_category(struct eval_item_meta *mt, const char *name)
{
    mt->categories = core_xrealloc(mt->categories, (size_t)(mt->ncategories + 1) * sizeof(char *));
    mt->categories[mt->ncategories++] = dup_utf8(name);
}

static int uitem_line(struct loader *ld, char *line, size_t len, void *arg)
{
    (void)len;
    const struct genres *g = arg;
    char *f[FIELDS_MAX];
    int nf = split_fields(line, '|', false, f, FIELDS_MAX);
    if (nf < 5 || nf > FIELDS_MAX)
        return fail(ld, CORE_E_PARSE, "expected id|title|release|video release|url|genre flags");
    struct eval_item_meta *mt = meta_for(ld, f[0]);
    if (!mt || mt->title)
        return 0;
    mt->title = dup_utf8(f[1]);
    int64_t ms;
    mt->published_ms = parse_release_date(f[2], &ms) == 0 ? ms : 0;
    for (int i = 5; i < nf; i++) {
        size_t gi = (size_t)(i - 5);
        if (strcmp(f[i], "1") != 0)
            continue;
        const char *name = gi < g->n ? g->name[gi] : NULL;
        if (!name && g->n == 0 && gi < sizeof ml100k_genres / sizeof ml100k_genres[0])
            name = ml100k_genres[gi];
        if (name)
            meta_add_category(mt, name);
    }
    return 0;
}

static int movies_csv_line(struct loader *ld, char *line, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    if (ld->line == 1 && strncmp(line, "movieId,", 8) == 0)
        return 0;
    char *f[FIELDS_MAX];
    if (split_fields(line, ',', true, f, 3) != 3)
        return fail(ld, CORE_E_PARSE, "expected 3 fields (movieId,title,genres)");
    struct eval_item_meta *mt = meta_for(ld, f[0]);
    if (!mt || mt->title)
        return 0;
    mt->title = dup_utf8(f[1]);
    if (strcmp(f[2], "(no genres listed)") == 0)
        return 0;
    for (char *p = f[2], *bar; *p; p = bar ? bar + 1 : p + strlen(p)) {
        bar = strchr(p, '|');
        if (bar)
            *bar = '\0';
        if (*p)
            meta_add_category(mt, p);
    }
    return 0;
}

/* Reads the metadata files beside the interactions; missing files leave meta NULL. */
static int load_meta(struct loader *ld, const char *format, const char *path)
{
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path) : 1;
    const char *dir = slash ? path : ".";
    size_t plen = strlen(path) + 32;
    char *item_path = core_xmalloc(plen), *genre_path = core_xmalloc(plen);
    bool ml100k = strcmp(format, "movielens") == 0;
    snprintf(item_path, plen, "%.*s/%s", dirlen, dir, ml100k ? "u.item" : "movies.csv");
    snprintf(genre_path, plen, "%.*s/u.genre", dirlen, dir);
    struct genres g = {NULL, 0};
    int rc = 0;
    ld->full = false; /* the limit counts interactions, not metadata lines */
    ld->meta = core_xcalloc(ld->items.n ? ld->items.n : 1, sizeof *ld->meta);
    if (ml100k) {
        rc = each_line(ld, genre_path, genre_line, &g);
        if (rc == -ENOENT)
            rc = 0;
    }
    if (rc == 0)
        rc = each_line(ld, item_path, ml100k ? uitem_line : movies_csv_line, &g);
    if (rc == -ENOENT) {
        free(ld->meta); /* nothing was added before the open failed */
        ld->meta = NULL;
        rc = 0;
    }
    for (size_t i = 0; i < g.n; i++)
        free(g.name[i]);
    free(g.name);
    free(item_path);
    free(genre_path);
    return rc;
}

/* ---- entry points ---------------------------------------------------------------------------- */

void eval_load_opts_init(struct eval_load_opts *o)
{
    o->threshold = 0;
    o->rating_type = EVENT_VIEW;
    o->limit = 0;
}

static int event_cmp(const void *a, const void *b)
{
    const struct eval_event *x = a, *y = b;
    if (x->ts_ms != y->ts_ms)
        return x->ts_ms < y->ts_ms ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void free_meta(struct eval_item_meta *meta, size_t n)
{
    for (size_t i = 0; meta && i < n; i++) {
        free(meta[i].title);
        for (int c = 0; c < meta[i].ncategories; c++)
            free(meta[i].categories[c]);
        free(meta[i].categories);
    }
    free(meta);
}

int eval_load(const char *format, const char *path, const struct eval_load_opts *o,
              struct eval_data *out, char *err, size_t errlen)
{
    static const struct {
        const char *name;
        line_fn fn;
        bool meta;
    } formats[] = {
        {"movielens", movielens_line, true}, {"movielens-csv", movielens_csv_line, true},
        {"otto", otto_line, false},          {"diginetica", diginetica_line, false},
        {"ndjson", ndjson_line, false},
    };
    struct eval_load_opts defaults;
    if (!o) {
        eval_load_opts_init(&defaults);
        o = &defaults;
    }
    struct loader ld = {.o = o, .path = path, .err = err, .errlen = errlen};
    int fi = -1;
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        if (strcmp(format, formats[i].name) == 0)
            fi = (int)i;
    }
    if (fi < 0)
        return fail(&ld, CORE_E_INVALID,
                    "unknown format \"%s\" (movielens, movielens-csv, otto, diginetica, ndjson)",
                    format);
    if (o->rating_type < 0 || o->rating_type >= EVENT_TYPE__COUNT)
        return fail(&ld, CORE_E_INVALID, "rating type %d is not an event type", o->rating_type);
    int rc = each_line(&ld, path, formats[fi].fn, NULL);
    if (rc == 0 && formats[fi].meta)
        rc = load_meta(&ld, format, path);
    if (rc < 0) {
        free(ld.ev);
        free_meta(ld.meta, ld.items.n);
        strtab_free(&ld.users);
        strtab_free(&ld.items);
        return rc;
    }
    /* order is unique, so qsort's instability cannot reorder ties; most files are nearly
     * sorted already and skip the sort entirely. */
    size_t i = 1;
    while (i < ld.n && event_cmp(&ld.ev[i - 1], &ld.ev[i]) < 0)
        i++;
    if (i < ld.n)
        qsort(ld.ev, ld.n, sizeof *ld.ev, event_cmp);
    memset(out, 0, sizeof *out);
    out->ev = ld.ev;
    out->n = ld.n;
    out->users = ld.users.s;
    out->nusers = ld.users.n;
    out->items = ld.items.s;
    out->nitems = ld.items.n;
    out->meta = ld.meta;
    out->skipped = ld.skipped;
    if (errlen > 0)
        err[0] = '\0'; /* an absent optional metadata file left its message there */
    free(ld.users.len);
    free(ld.users.slot);
    free(ld.items.len);
    free(ld.items.slot);
    return 0;
}

void eval_data_free(struct eval_data *d)
{
    if (!d)
        return;
    free(d->ev);
    for (size_t i = 0; i < d->nusers; i++)
        free(d->users[i]);
    free(d->users);
    free_meta(d->meta, d->nitems);
    for (size_t i = 0; i < d->nitems; i++)
        free(d->items[i]);
    free(d->items);
    memset(d, 0, sizeof *d);
}
