"""End-to-end: scale-out processors in one Kafka consumer group (issue 7).

librdkafka's mock cluster (`recstream dev kafka-mock`, 3 brokers, 6 partitions, and the keys
topic), a real redis-server, one collector (`serve --role collector`) that takes a slice of
MovieLens 100k over the real HTTP API, and two processors (`serve --role processor --group`)
sharing one checkpoint directory. The processors split the partitions; one is SIGKILLed in the
middle of ingestion; the other takes every partition over after the session timeout (6 s) and
applies every event. Its final state (the profiles of every user of the slice) equals that of a
single processor that reads the same topic from scratch. kcat sees every acknowledged eventId
exactly once. Every process runs under a timeout or is killed in the finally clause."""
import os
import shutil
import tempfile
import threading
import time

import rs
import rskafka
import rsdata
import rsredis
from rskafka import gauge_map, metrics, owned

TOPIC = "events-group"
LIMIT = 3000  # ratings, the first lines of u.data
BATCH = 100
COMMON = ["--insecure-no-auth", "--store-interval", "100ms", "--retention-state", "365d",
          "--retention-interval", "1h", "--checkpoint-interval", "300ms"]
R = rs.Runner()
S = {}


def processor(name, group, ckpt):
    c = S["collector"]
    return rs.Server(*(COMMON + [
        "--role", "processor", "--log", "kafka://%s/%s" % (S["bootstrap"], TOPIC),
        "--group", group, "--group-session-timeout", "6s", "--checkpoint-dir", ckpt,
        "--store", S["redis"].url,
        "--key-file", os.path.join(c.data, "privacy", "pseudonym.key"),
        "--data-key", os.path.join(c.data, "privacy", "data.key")]),
        data=os.path.join(S["tmp"], name))


def applied_all(srv):
    """Every partition owned here has applied every acknowledged record."""
    have = gauge_map(metrics(srv), "recstream_store_partition_offset")
    mine = owned(srv)
    return mine == list(range(6)) and all(have.get(p, -1) >= S["end"].get(p, 0) for p in mine), \
        (mine, have, S["end"])


ITEM_PATHS = ["/v1/items/%d/stats" % i for i in (1, 50, 100, 181, 258, 286, 302)] + \
    ["/v1/trending?window=24h&count=20", "/v1/trending?window=1h&type=other&count=20"]


def profiles(srv):
    """Every user's profile and the aggregates of some items (partition-wide state)."""
    out = {}
    for u in S["users"]:
        st, body = rs.call_json(srv, "GET", "/v1/users/%s/profile" % u)
        assert st == 200, (u, st, body)
        out[u] = body
    for path in ITEM_PATHS:
        out[path] = rs.call_json(srv, "GET", path)
    return out


def post(batch):
    st, _, body = S["collector"].post_json("/v1/events", batch)
    assert st == 200 and body["accepted"] == len(batch), (st, body)
    for o in body["offsets"]:
        S["end"][o["partition"]] = max(S["end"].get(o["partition"], 0), o["offset"] + 1)


# ---- tests ---------------------------------------------------------------------------------

def test_collector_routes():
    c = S["collector"]
    for path in ("/v1/users/1/recommendations", "/v1/users/1/profile", "/v1/trending",
                 "/v1/items/1", "/v1/consent"):
        st, body = rs.call_json(c, "GET", path)
        assert st == 404 and body["error_code"] == 40421 and "--role collector" in body["message"], \
            (path, st, body)
    assert c.request("GET", "/readyz")[0] == 200


def test_processors_split_then_take_over():
    events = rsdata.movielens_events(LIMIT, oldest=False)  # ~900 users
    S["users"] = sorted({e["userId"] for e in events}, key=int)
    ckpt = os.path.join(S["tmp"], "checkpoints")
    p1, p2 = processor("p1", "g-split", ckpt), processor("p2", "g-split", ckpt)
    S["procs"] += [p1, p2]
    p1.start()
    p2.start()
    split = rs.wait_for("the two processors to split the partitions",
                        lambda: (owned(p1), owned(p2)),
                        lambda v: len(v[0]) == 3 and len(v[1]) == 3, timeout=30, every=0.2)
    assert sorted(split[0] + split[1]) == list(range(6)), split
    # a third of the events, then SIGKILL p1 while the rest is being posted
    third = LIMIT // 3 // BATCH * BATCH
    for i in range(0, third, BATCH):
        post(events[i:i + BATCH])
    rest = [events[i:i + BATCH] for i in range(third, LIMIT, BATCH)]
    posted = []
    errors = []

    def client():
        try:
            for b in rest:
                post(b)
                posted.append(len(b))
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    t = threading.Thread(target=client)
    t.start()
    rs.wait_for("ingestion under way", lambda: len(posted), lambda n: n >= 3, timeout=30,
                every=0.01)
    p1.kill()
    killed = time.time()
    t.join(60)
    assert not errors and sum(posted) == LIMIT - third, (errors, sum(posted))
    rs.wait_for("p2 to own every partition", lambda: owned(p2), lambda v: len(v) == 6,
                timeout=40, every=0.1)
    print("take-over: p2 owns all 6 partitions %.1f s after the SIGKILL (session timeout 6 s)"
          % (time.time() - killed), flush=True)
    rs.wait_for("p2 to own every partition and apply every event", lambda: applied_all(p2),
                lambda v: v[0], timeout=40, every=0.2)
    assert "partitions revoked" in p2.log() or "partitions assigned" in p2.log()
    S["split"] = profiles(p2)
    assert sum(S["split"][u]["events"] for u in S["users"]) == LIMIT
    assert S["split"]["/v1/items/50/stats"][0] == 200, S["split"]["/v1/items/50/stats"]
    ids = rskafka.topic_event_ids(S["bootstrap"], TOPIC)
    assert len(ids) == len(set(ids)) == LIMIT and set(ids) == {e["eventId"] for e in events}, \
        (len(ids), len(set(ids)))
    assert p2.stop() == 0, p2.log()[-3000:]


def test_single_processor_equals():
    single = processor("single", "g-single", os.path.join(S["tmp"], "checkpoints-single"))
    S["procs"].append(single)
    single.start()
    rs.wait_for("the single processor to apply every event", lambda: applied_all(single),
                lambda v: v[0], timeout=40, every=0.2)
    got = profiles(single)
    diff = [k for k in got if got[k] != S["split"][k]]
    assert not diff, (len(diff), diff[:3], got[diff[0]] if diff else None,
                      S["split"][diff[0]] if diff else None)
    assert single.stop() == 0, single.log()[-3000:]


def main():
    tmp = tempfile.mkdtemp(prefix="rs-group-")
    S.update(tmp=tmp, procs=[], end={})
    mock = None
    redis = rsredis.Redis()
    try:
        mock, S["bootstrap"] = rskafka.start_mock(TOPIC)
        S["redis"] = redis.start()
        S["collector"] = rs.Server(*(COMMON + ["--role", "collector", "--log",
                                               "kafka://%s/%s" % (S["bootstrap"], TOPIC)]),
                                   data=os.path.join(tmp, "collector"))
        S["procs"].append(S["collector"])
        S["collector"].start()
        for t in (test_collector_routes, test_processors_split_then_take_over,
                  test_single_processor_equals):
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
