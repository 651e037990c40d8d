/*
 * Helpers shared by the recommender tests: events built by hand, an in-memory catalog, and a
 * small synthetic world (two state shards, 31 catalog items in three categories, ~50 users
 * with co-visitation patterns) with a recommender over it.
 *
 * The world, in event time from RT_T0:
 * - users 0..44 (group g = u % 3, category c<g+1>), one session each at u * 10 min: a view of
 *   c<g+1>-9 (the category's hit), views of three neighbouring items c<g+1>-b, -b+1, -b+2
 *   (b = (u / 3) % 8) with a click on -b+1, an add_to_cart of -b for every 5th user and a
 *   view of another category's -b for every 4th user; context device mobile / desktop;
 * - users 45..49 view c2-8 and c3-8 together four times each, at the same timestamps (so the
 *   two items tie on every live and model figure);
 * - RT_USER_PERS (c1 history: c1-0, c1-1 viewed, c1-2 clicked, in the current session),
 *   RT_USER_PREF (only a preferences event: categories ["c1"]) and RT_USER_COLD (nothing).
 * Catalog: cK-i with categories [cK] and tags [t-cK, t-even|t-odd] published 30 days before
 * RT_T0; c3-3 also has the tag t-rare; c1-9 is unavailable; new-1 (categories [c3], tags
 * [t-rare, t-c3], published at RT_T0) has no interactions at all.
 */
#ifndef RECSTREAM_RECO_TEST_UTIL_H
#define RECSTREAM_RECO_TEST_UTIL_H

#include "catalog/catalog.h"
#include "event/event.h"
#include "reco/reco.h"
#include "state/state.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define RT_T0 ((int64_t)1700000000000) /* a multiple of 1 h */
#define RT_MIN ((int64_t)60000)
#define RT_HOUR (60 * RT_MIN)
#define RT_DAY (24 * RT_HOUR)
#define RT_NSHARDS 2

#define RT_USER_PERS 100
#define RT_USER_PREF 101
#define RT_USER_COLD 102

/* The 32-hex user key of user number u. */
static inline void rt_key(int u, char out[EVENT_KEY_HEX + 1])
{
    snprintf(out, EVENT_KEY_HEX + 1, "%032x", 0x5e0000u + (unsigned)u);
}

/* An event of type by user key (NULL: none) on item (NULL: none); strings are borrowed. */
static inline struct event rt_event(const char *key, const char *item, int type, int64_t ts)
{
    struct event ev;
    event_init(&ev);
    if (key)
        snprintf(ev.user_key, sizeof ev.user_key, "%s", key);
    if (item) {
        ev.item_id.ptr = item;
        ev.item_id.len = strlen(item);
    }
    ev.type = type;
    ev.ts_ms = ts;
    ev.recv_ms = ts;
    return ev;
}

static inline void rt_str(struct event_str *s, const char *v)
{
    s->ptr = v;
    s->len = strlen(v);
}

/* An in-memory catalog; max_items 0: the default. */
static inline struct catalog *rt_catalog_new_max(int64_t max_items)
{
    struct catalog_options o;
    catalog_options_init(&o);
    o.dir = NULL;
    o.fsync = false;
    if (max_items > 0)
        o.max_items = max_items;
    struct catalog *cat = NULL;
    assert_int_equal(catalog_open(&o, &cat), 0);
    return cat;
}

static inline struct catalog *rt_catalog_new(void)
{
    return rt_catalog_new_max(0);
}

/* Puts item id from a JSON text; fails the test when the catalog refuses it. */
static inline void rt_put(struct catalog *cat, const char *id, const char *json)
{
    cJSON *obj = cJSON_Parse(json);
    assert_non_null(obj);
    bool created = false;
    struct event_error err;
    memset(&err, 0, sizeof err);
    int rc = catalog_put(cat, id, strlen(id), obj, &created, &err);
    cJSON_Delete(obj);
    if (rc != 0)
        fail_msg("catalog_put %s: %d %s: %s", id, rc, err.field, err.message);
}

/* The first category of a catalog item ("" when it has none or is unknown). */
static inline void rt_category_of(struct catalog *cat, const char *id, char *out, size_t size)
{
    out[0] = 0;
    catalog_read_begin(cat);
    const struct catalog_item *ci = catalog_find(cat, id, strlen(id));
    if (ci && ci->ncategories > 0)
        snprintf(out, size, "%s", catalog_symbol(cat, ci->categories[0]));
    catalog_read_end(cat);
}

/* ---- the world ------------------------------------------------------------------------------ */

struct rt_world {
    struct catalog *cat;
    struct state_shard *shards[RT_NSHARDS];
    struct reco_config cfg;
    struct reco *r;
};

/* Applies ev to the shard its user key is partitioned to (as the processor does). */
static inline void rt_apply(struct rt_world *w, const struct event *ev)
{
    int32_t p = core_partition_for_key(ev->user_key, strlen(ev->user_key), RT_NSHARDS);
    state_shard_apply(w->shards[p], ev, state_shard_next_offset(w->shards[p]));
}

static inline void rt_view(struct rt_world *w, const char *key, const char *item, int type,
                           int64_t ts, const char *device)
{
    char ctx[64];
    struct event ev = rt_event(key, item, type, ts);
    if (device) {
        snprintf(ctx, sizeof ctx, "{\"device\":\"%s\"}", device);
        rt_str(&ev.context_json, ctx);
    }
    rt_apply(w, &ev);
}

static inline void rt_world_catalog(struct catalog *cat)
{
    char id[16], json[256];
    for (int k = 1; k <= 3; k++)
        for (int i = 0; i < 10; i++) {
            snprintf(id, sizeof id, "c%d-%d", k, i);
            snprintf(
                json, sizeof json,
                "{\"title\":\"Item %s\",\"categories\":[\"c%d\"],\"tags\":[\"t-c%d\",\"%s\"%s],"
                "\"publishedAt\":%lld,\"available\":%s}",
                id, k, k, i % 2 ? "t-odd" : "t-even", k == 3 && i == 3 ? ",\"t-rare\"" : "",
                (long long)(RT_T0 - 30 * RT_DAY), k == 1 && i == 9 ? "false" : "true");
            rt_put(cat, id, json);
        }
    snprintf(json, sizeof json,
             "{\"title\":\"New one\",\"categories\":[\"c3\"],\"tags\":[\"t-rare\",\"t-c3\"],"
             "\"publishedAt\":%lld}",
             (long long)RT_T0);
    rt_put(cat, "new-1", json);
}

static inline void rt_world_events(struct rt_world *w)
{
    char key[EVENT_KEY_HEX + 1], it[16];
    for (int u = 0; u < 45; u++) {
        int k = u % 3 + 1, b = (u / 3) % 8;
        int64_t ts = RT_T0 + u * 10 * RT_MIN;
        const char *dev = u % 2 ? "desktop" : "mobile";
        rt_key(u, key);
        snprintf(it, sizeof it, "c%d-9", k);
        rt_view(w, key, it, EVENT_VIEW, ts, dev);
        for (int j = 0; j < 3; j++) {
            snprintf(it, sizeof it, "c%d-%d", k, (b + j) % 8);
            rt_view(w, key, it, EVENT_VIEW, ts + (1 + j) * RT_MIN, dev);
            if (j == 1)
                rt_view(w, key, it, EVENT_CLICK, ts + (1 + j) * RT_MIN + 1000, dev);
        }
        if (u % 5 == 0) {
            snprintf(it, sizeof it, "c%d-%d", k, b);
            rt_view(w, key, it, EVENT_ADD_TO_CART, ts + 5 * RT_MIN, dev);
        }
        if (u % 4 == 0) {
            snprintf(it, sizeof it, "c%d-%d", k % 3 + 1, b);
            rt_view(w, key, it, EVENT_VIEW, ts + 6 * RT_MIN, dev);
        }
    }
    for (int u = 45; u < 50; u++) {
        int64_t ts = RT_T0 + 460 * RT_MIN + (u - 45) * 5 * RT_MIN;
        rt_key(u, key);
        for (int rep = 0; rep < 4; rep++) {
            rt_view(w, key, "c2-8", EVENT_VIEW, ts + rep * RT_MIN, NULL);
            rt_view(w, key, "c3-8", EVENT_VIEW, ts + rep * RT_MIN, NULL);
        }
    }
    int64_t ts = RT_T0 + 510 * RT_MIN;
    rt_key(RT_USER_PERS, key);
    rt_view(w, key, "c1-0", EVENT_VIEW, ts, "mobile");
    rt_view(w, key, "c1-1", EVENT_VIEW, ts + RT_MIN, "mobile");
    rt_view(w, key, "c1-2", EVENT_CLICK, ts + 2 * RT_MIN, "mobile");
    rt_key(RT_USER_PREF, key);
    struct event ev = rt_event(key, NULL, EVENT_PREFERENCES, ts + 5 * RT_MIN);
    rt_str(&ev.properties_json, "{\"categories\":[\"c1\"]}");
    rt_apply(w, &ev);
}

/* Builds the world; tweak (may be NULL) adjusts the recommender's configuration; the catalog
 * holds at most max_items live items (0: the default). */
static inline void rt_world_init_max(struct rt_world *w, void (*tweak)(struct reco_config *),
                                     int64_t max_items)
{
    memset(w, 0, sizeof *w);
    w->cat = rt_catalog_new_max(max_items);
    rt_world_catalog(w->cat);
    reco_config_init(&w->cfg);
    w->cfg.refresh_ms = 0;
    if (tweak)
        tweak(&w->cfg);
    struct state_config sc;
    state_config_init(&sc);
    sc.catalog = w->cat;
    sc.cooc_items_max = w->cfg.knn_items; /* as the server passes it */
    for (int p = 0; p < RT_NSHARDS; p++)
        w->shards[p] = state_shard_new(&sc, p);
    rt_world_events(w);
    w->r = reco_new(&w->cfg, w->shards, RT_NSHARDS, w->cat);
    assert_non_null(w->r);
}

static inline void rt_world_init(struct rt_world *w, void (*tweak)(struct reco_config *))
{
    rt_world_init_max(w, tweak, 0);
}

static inline void rt_world_free(struct rt_world *w)
{
    reco_free(w->r);
    for (int p = 0; p < RT_NSHARDS; p++)
        state_shard_free(w->shards[p]);
    catalog_close(w->cat);
}

/* A request for user number u. */
static inline struct reco_request rt_request(char key[EVENT_KEY_HEX + 1], int u, int count)
{
    struct reco_request rq;
    memset(&rq, 0, sizeof rq);
    rt_key(u, key);
    rq.user_key = key;
    rq.count = count;
    return rq;
}

/* Index of item id in res, or -1. */
static inline int rt_find(const struct reco_result *res, const char *id)
{
    for (int i = 0; i < res->n; i++)
        if (!strcmp(res->items[i].item_id, id))
            return i;
    return -1;
}

#endif
