"""End-to-end: Redis serving state and the serving-only API node (issue 7).

A real redis-server (private unix socket); a processor node (`serve --store`, the embedded
log) ingests a slice of MovieLens 100k; an API node (`serve --role api --store`, its own empty
data directory, the processor's pseudonymisation key) must then return the same
recommendations (item ids, order, scores, sources) and similar items as the processor for many
users, reflect new events within a bounded time, lose an erased user's record, and keep user
records under a TTL. Routes the API node does not serve answer 404 naming the role."""
import json
import os
import re
import subprocess
import time

import rs
import rsdata
import rsredis

LIMIT = 20000  # ratings, oldest first
BATCH = 1000
USERS = 60     # users whose lists are compared
TTL_MS = 365 * 24 * 3600 * 1000
# (no retention ticks during the test: a tick at today's time would expire 1997's users)
COMMON = ["--partitions", "4", "--reco-refresh", "200ms", "--store-interval", "100ms",
          "--retention-state", "365d", "--retention-interval", "1h"]

REDIS = rsredis.Redis()
PROC = None
API = None
R = rs.Runner()
ACTIVE = []  # users of the slice, most active first








def post_events(srv, events):
    for i in range(0, len(events), BATCH):
        st, _, body = srv.post_json("/v1/events", events[i:i + BATCH])
        assert st == 200 and body["accepted"] == len(events[i:i + BATCH]), (st, body)


def metrics(srv):
    st, _, data = srv.request("GET", "/metrics")
    assert st == 200, st
    return data.decode()


def gauge_map(text, name):
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r'^%s\{partition="(\d+)"\} (-?\d+)$' % name, text, re.M)}


def recs(srv, user, count=20):
    st, body = rs.call_json(srv, "GET", "/v1/users/%s/recommendations?count=%d" % (user, count))
    assert st == 200, (st, body)
    return body


def essence(reply):
    return (reply["strategy"],
            [(it["itemId"], it["score"], it["source"], tuple(it["reasons"]))
             for it in reply["items"]])


def similar(srv, item):
    st, body = rs.call_json(srv, "GET", "/v1/items/%s/similar?count=10" % item)
    return st, body


def pseudonym(user):
    p = subprocess.run([rs.BIN, "privacy", "pseudonym", "--data", PROC.data, user],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True)
    return p.stdout.strip().split()[-1]


def caught_up():
    """The API node has restored every partition the processor holds."""
    high = gauge_map(metrics(PROC), "recstream_log_high_water")
    mine = gauge_map(metrics(API), "recstream_store_partition_offset")
    return high == mine and len(high) == 4, (high, mine)


# ---- tests ---------------------------------------------------------------------------------

def test_same_recommendations():
    events = rsdata.movielens_events(LIMIT)
    counts = {}
    for e in events:
        counts[e["userId"]] = counts.get(e["userId"], 0) + 1
    # the most active users of the slice, and some with a single rating
    users = sorted(counts, key=lambda u: (-counts[u], int(u)))[:USERS - 10]
    users += [u for u in counts if counts[u] == 1][:10]
    ACTIVE[:] = users
    items = rsdata.movielens_items()
    for i in range(0, len(items), 500):
        st, body = rs.call_json(PROC, "POST", "/v1/items", items[i:i + 500])
        assert st == 200, (st, body)
    post_events(PROC, events)
    rs.wait_for("the API node to restore every partition", caught_up, lambda v: v[0], timeout=30)

    def diffs():
        out = []
        for u in users:
            a, b = essence(recs(PROC, u)), essence(recs(API, u))
            if a != b:
                out.append((u, a, b))
        return out

    # both models are rebuilt after the last change (refresh 200 ms); then they must agree
    d = rs.wait_for("equal recommendations on both nodes", lambda: diffs()[:1],
                    lambda v: not v, timeout=20, every=0.5)
    assert not d and not diffs()
    personalised = sum(recs(API, u)["strategy"] == "personalized" for u in users)
    assert personalised == len(users), personalised
    assert all(recs(API, u)["items"] for u in users)
    for item in ("50", "100", "181", "258", "1"):
        assert similar(PROC, item) == similar(API, item), item
    for path in ("/v1/trending?window=24h&count=20", "/v1/trending?window=1h&type=view",
                 "/v1/items/50/stats", "/v1/items/181/stats"):
        a, b = rs.call_json(PROC, "GET", path), rs.call_json(API, "GET", path)
        assert a[0] == 200 and a == b, (path, a, b)


def test_catalog_change_reaches_the_api_node():
    user = ACTIVE[2]
    top = recs(API, user)["items"][0]["itemId"]
    st, body = rs.call_json(PROC, "PUT", "/v1/items/" + top, {"title": "gone", "available": False})
    assert st == 200, (st, body)

    def state():
        a, b = recs(PROC, user), recs(API, user)
        return top in [it["itemId"] for it in b["items"]] or essence(a) != essence(b)
    rs.wait_for("the API node to apply the catalog change", state, lambda v: not v, timeout=10,
                every=0.1)
    st, _ = similar(API, top)
    assert st == 200


def test_unknown_user_same_cold_start():
    a, b = recs(PROC, "nobody-at-all"), recs(API, "nobody-at-all")
    assert a["coldStart"] and b["coldStart"]
    assert essence(a) == essence(b)


def test_freshness():
    user = "fresh-user-1"
    assert recs(API, user)["strategy"] == "popular"
    t0 = time.time()
    post_events(PROC, [{"userId": user, "eventType": "rating", "itemId": "50", "value": 5,
                        "timestamp": 893286638000 + 1000},
                       {"userId": user, "eventType": "rating", "itemId": "181", "value": 5,
                        "timestamp": 893286638000 + 2000}])
    r = rs.wait_for("the API node to personalise a new user", lambda: recs(API, user),
                    lambda v: v["strategy"] == "personalized", timeout=5, every=0.02)
    took = time.time() - t0
    ids = [it["itemId"] for it in r["items"]]
    assert "50" not in ids and "181" not in ids, ids  # consumed items are excluded
    print("freshness: ack to personalised on the API node in %.0f ms" % (took * 1000))


def test_ttl_on_user_keys():
    key = "rs:{u:%s}" % pseudonym(ACTIVE[0])
    pttl = REDIS.cmd("PTTL", key)
    assert 0 < pttl <= TTL_MS, pttl
    assert REDIS.cmd("ZSCORE", "rs:{p%d}:users" % partition_of(key), key[6:-1]) is not None


def partition_of(key):
    for p in range(4):
        if REDIS.cmd("ZSCORE", "rs:{p%d}:users" % p, key[6:-1]) is not None:
            return p
    raise AssertionError("user not indexed in any partition")


def test_erasure_deletes_user_key():
    user = ACTIVE[1]
    key = "rs:{u:%s}" % pseudonym(user)
    assert REDIS.cmd("EXISTS", key) == 1
    st, body = rs.call_json(PROC, "DELETE", "/v1/users/" + user)
    assert st in (200, 202), (st, body)
    rs.wait_for("the erased user's record to leave redis", lambda: REDIS.cmd("EXISTS", key),
                lambda v: v == 0, timeout=20)
    assert all(REDIS.cmd("ZSCORE", "rs:{p%d}:users" % p, key[6:-1]) is None for p in range(4))
    r = rs.wait_for("the API node to forget the user", lambda: recs(API, user),
                    lambda v: v["coldStart"], timeout=5)
    assert r["strategy"] == "popular"


def test_routes_of_the_api_role():
    for method, path in (("POST", "/v1/events"), ("GET", "/v1/users/1/profile"),
                         ("GET", "/v1/stats/ctr"), ("PUT", "/v1/items/x")):
        st, _, data = API.request(method, path, "[]" if method != "GET" else None,
                                  {"Content-Type": "application/json"})
        body = json.loads(data)
        assert st == 404 and body["error_code"] == 40420 and "--role api" in body["message"], \
            (method, path, st, body)
    st, _, _ = API.request("GET", "/readyz")
    assert st == 200
    m = metrics(API)
    assert "recstream_store_user_reads_total" in m and "recstream_reco_knn_items" in m


def test_redis_restart():
    """Redis restarts empty: the processor republishes everything (new epoch) and the API
    node, reconnecting, serves the same lists again."""
    users = ACTIVE[:10]
    REDIS.proc.terminate()
    REDIS.proc.wait(10)
    rs.wait_for("the API node to report not ready while Redis is down",
                lambda: API.request("GET", "/readyz")[0], lambda v: v == 503, timeout=10)
    st, body = rs.call_json(API, "GET", "/v1/users/%s/recommendations" % users[0])
    assert st == 503 and body["error_code"] == 50320, (st, body)
    REDIS.start()
    assert REDIS.cmd("DBSIZE") == 0

    def differing():
        out = []
        for u in users:
            st, body = rs.call_json(API, "GET", "/v1/users/%s/recommendations?count=20" % u)
            now = essence(body) if st == 200 else st
            ref = essence(recs(PROC, u))  # the processor's lists now (not `before`: its
            if now != ref:                # state may move on, e.g. by a retention tick)
                out.append((u, ref, now))
        return out[:1]
    rs.wait_for("the API node to serve the same lists after a Redis restart", differing,
                lambda v: not v, timeout=20, every=0.2)
    m = metrics(PROC)
    assert int(re.search(r"^recstream_store_errors_total (\d+)$", m, re.M).group(1)) >= 1


def test_processor_role():
    """--role processor: everything but recommendation serving (API nodes do that); it needs
    --store. Runs last: it publishes its own (empty) state to the same Redis."""
    p = subprocess.run([rs.BIN, "serve", "--role", "processor", "--data", "/nonexistent"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    assert p.returncode == 2 and "--store" in p.stderr, (p.returncode, p.stderr)
    srv = rs.Server(*(COMMON + ["--role", "processor", "--fsync", "none", "--store", REDIS.url]))
    try:
        srv.start()
        st, body = rs.call_json(srv, "GET", "/v1/users/1/recommendations")
        assert st == 503 and body["error_code"] == 50302, (st, body)
        st, body = rs.call_json(srv, "GET", "/v1/items/50/similar")
        assert st == 503 and body["error_code"] == 50302, (st, body)
        st, _, body = srv.post_json("/v1/events", [{"userId": "p1", "eventType": "view",
                                                   "itemId": "50"}])
        assert st == 200 and body["accepted"] == 1, (st, body)
        st, body = rs.call_json(srv, "PUT", "/v1/users/p1/preferences", {"categories": ["Drama"]})
        assert st in (200, 202), (st, body)
        st, body = rs.call_json(srv, "GET", "/v1/stats/ctr")
        assert st == 200, (st, body)
    finally:
        srv.stop()
        srv.cleanup()


def main():
    global PROC, API
    REDIS.start()
    PROC = rs.Server(*(COMMON + ["--fsync", "none", "--store", REDIS.url]))
    try:
        PROC.start()
        API = rs.Server(*(COMMON + ["--role", "api", "--store", REDIS.url, "--key-file",
                                    os.path.join(PROC.data, "privacy", "pseudonym.key")]))
        API.start()
        for t in (test_same_recommendations, test_catalog_change_reaches_the_api_node,
                  test_unknown_user_same_cold_start, test_freshness,
                  test_ttl_on_user_keys, test_erasure_deletes_user_key,
                  test_routes_of_the_api_role, test_redis_restart, test_processor_role):
            R.run(t)
    finally:
        for s in (API, PROC):
            if s:
                s.stop()
                s.cleanup()
        REDIS.stop()
    R.finish()


if __name__ == "__main__":
    main()
