"""End-to-end: collector -> Kafka -> two processors -> Redis -> API node (issue 7).

librdkafka's mock cluster (`recstream dev kafka-mock`, 3 brokers, 6 partitions, and the keys
topic) and a real redis-server. A slice of MovieLens 100k and its catalog go through the
scale-out path (events to a collector, the catalog to both processors, which split the
partitions in one consumer group, recommendations from an API node) and, for reference, through
the embedded mode (one `serve` with the file log, the same pseudonymisation key and partition
count). The API node must return the same recommendations (item ids, order, scores, sources,
reasons) as the embedded node for many users: the collaborative model is built from the
partitions' co-occurrence rows, whichever processor applied them. kcat must see every
acknowledged eventId exactly once. Every process is killed in the finally clause."""
import os
import shutil
import tempfile

import rs
import rskafka
import rsdata
import rsredis
from rskafka import gauge_map, metrics, owned

TOPIC = "events-scale"
LIMIT = 6000
BATCH = 500
USERS = 40
COMMON = ["--insecure-no-auth", "--reco-refresh", "200ms", "--store-interval", "100ms",
          "--retention-state", "365d", "--retention-interval", "1h"]
R = rs.Runner()
S = {}


def post(srv, events, track=None):
    for i in range(0, len(events), BATCH):
        batch = events[i:i + BATCH]
        st, _, body = srv.post_json("/v1/events", batch)
        assert st == 200 and body["accepted"] == len(batch), (st, body)
        for o in body["offsets"] if track is not None else ():
            track[o["partition"]] = max(track.get(o["partition"], 0), o["offset"] + 1)


def post_items(srv, items):
    for i in range(0, len(items), 500):
        st, body = rs.call_json(srv, "POST", "/v1/items", items[i:i + 500])
        assert st == 200, (st, body)


def recs(srv, user, count=20):
    st, body = rs.call_json(srv, "GET", "/v1/users/%s/recommendations?count=%d" % (user, count))
    assert st == 200, (st, body)
    return body


def essence(reply):
    return (reply["strategy"],
            [(it["itemId"], it["score"], it["source"], tuple(it["reasons"]))
             for it in reply["items"]])


def test_same_recommendations_as_embedded():
    procs = S["processors"]
    split = rs.wait_for("the two processors to split the partitions",
                        lambda: [owned(p) for p in procs],
                        lambda v: all(len(o) == 3 for o in v), timeout=30, every=0.2)
    assert sorted(split[0] + split[1]) == list(range(6)), split
    events = rsdata.movielens_events(LIMIT)  # users with long histories too
    items = rsdata.movielens_items()
    counts = {}
    for e in events:
        counts[e["userId"]] = counts.get(e["userId"], 0) + 1
    users = sorted(counts, key=lambda u: (-counts[u], int(u)))[:USERS - 5]
    users += [u for u in counts if counts[u] == 1][:5]
    S["users"] = users
    # the embedded reference
    emb = S["embedded"]
    post_items(emb, items)
    post(emb, events)
    # scale-out: the catalog to both processors (each joins its events with it), events to
    # the collector
    for proc in procs:
        post_items(proc, items)
    end = {}
    post(S["collector"], events, end)
    api = S["api"]

    def caught_up():
        have = gauge_map(metrics(api), "recstream_store_partition_offset")
        return all(have.get(p, -1) >= o for p, o in end.items()), (have, end)
    rs.wait_for("the API node to restore every partition", caught_up, lambda v: v[0],
                timeout=40, every=0.2)
    assert [owned(p) for p in procs] == split  # no rebalance: both published their half

    def diffs():
        out = []
        for u in users:
            a, b = essence(recs(emb, u)), essence(recs(api, u))
            if a != b:
                k = next((i for i, (x, y) in enumerate(zip(a[1], b[1])) if x != y), None)
                out.append((u, a[0], b[0], k, a[1][k:k + 2] if k is not None else len(a[1]),
                            b[1][k:k + 2] if k is not None else len(b[1])))
        return out
    d = rs.wait_for("equal recommendations on the embedded and the API node",
                    lambda: diffs()[:1], lambda v: not v, timeout=30, every=0.5)
    assert not d and not diffs()
    assert sum(recs(api, u)["strategy"] == "personalized" for u in users) == len(users)
    for item in ("50", "100", "181", "258", "1"):
        a = rs.call_json(emb, "GET", "/v1/items/%s/similar?count=10" % item)
        b = rs.call_json(api, "GET", "/v1/items/%s/similar?count=10" % item)
        assert a == b, (item, a, b)
    ids = rskafka.topic_event_ids(S["bootstrap"], TOPIC)
    assert len(ids) == len(set(ids)) == len(events) and set(ids) == {e["eventId"] for e in events}, \
        (len(ids), len(set(ids)))


def test_erasure_shreds_keys_for_every_node():
    """An erasure on the processor shreds the user's keys through the keys topic: a processor
    that starts afterwards cannot open the user's records (its profile is gone there)."""
    user = S["users"][1]

    def owner():
        for p in S["processors"]:
            st, body = rs.call_json(p, "GET", "/v1/users/%s/profile" % user)
            if st == 200:
                return p, body
        return None, None
    proc, body = rs.wait_for("the user's profile on the processor owning it", owner,
                             lambda v: v[0] is not None, timeout=30, every=0.2)
    assert body["events"] > 0, body
    st, body = rs.call_json(proc, "DELETE", "/v1/users/" + user)
    assert st in (200, 202), (st, body)
    rs.wait_for("the user to be erased on the processor",
                lambda: rs.call_json(proc, "GET", "/v1/users/%s/profile" % user)[0],
                lambda v: v == 404, timeout=20, every=0.2)
    c = S["collector"]
    fresh = rs.Server(*(COMMON + [
        "--role", "processor", "--log", "kafka://%s/%s" % (S["bootstrap"], TOPIC),
        "--group", "g-fresh", "--group-session-timeout", "6s", "--store", S["redis"].url,
        "--checkpoint-dir", os.path.join(S["tmp"], "ckpt-fresh"),
        "--key-file", os.path.join(c.data, "privacy", "pseudonym.key"),
        "--data-key", os.path.join(c.data, "privacy", "data.key")]),
        data=os.path.join(S["tmp"], "fresh"))
    S["procs"].append(fresh)
    fresh.start()
    other = [u for u in S["users"] if u != user][0]
    rs.wait_for("the fresh processor to replay the topic",
                lambda: rs.call_json(fresh, "GET", "/v1/users/%s/profile" % other)[0],
                lambda v: v == 200, timeout=30, every=0.2)
    st, body = rs.call_json(fresh, "GET", "/v1/users/%s/profile" % user)
    assert st == 404, (st, body)
    assert fresh.stop() == 0, fresh.log()[-3000:]


def main():
    tmp = tempfile.mkdtemp(prefix="rs-scale-")
    S.update(tmp=tmp, procs=[])
    mock = None
    redis = rsredis.Redis()
    try:
        mock, S["bootstrap"] = rskafka.start_mock(TOPIC)
        S["redis"] = redis.start()
        kafka = "kafka://%s/%s" % (S["bootstrap"], TOPIC)
        c = rs.Server(*(COMMON + ["--role", "collector", "--log", kafka]),
                      data=os.path.join(tmp, "collector"))
        S["procs"].append(c)
        S["collector"] = c.start()
        shared = ["--key-file", os.path.join(c.data, "privacy", "pseudonym.key")]
        S["processors"] = []
        for name in ("p1", "p2"):
            p = rs.Server(*(COMMON + shared + [
                "--role", "processor", "--log", kafka, "--store", redis.url,
                "--group", "g-e2e", "--group-session-timeout", "6s",
                "--checkpoint-dir", os.path.join(tmp, "checkpoints"),
                "--data-key", os.path.join(c.data, "privacy", "data.key")]),
                data=os.path.join(tmp, name))
            S["procs"].append(p)
            S["processors"].append(p.start())
        a = rs.Server(*(COMMON + shared + ["--role", "api", "--store", redis.url]),
                      data=os.path.join(tmp, "api"))
        S["procs"].append(a)
        S["api"] = a.start()
        e = rs.Server(*(COMMON + shared + ["--partitions", "6", "--fsync", "none"]),
                      data=os.path.join(tmp, "embedded"))
        S["procs"].append(e)
        S["embedded"] = e.start()
        for t in (test_same_recommendations_as_embedded, test_erasure_shreds_keys_for_every_node):
            R.run(t)
    finally:
        for p in S["procs"]:
            p.cleanup()
        rskafka.stop_proc(mock)
        redis.stop()
        if not os.environ.get("RS_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
    R.finish()


if __name__ == "__main__":
    main()
