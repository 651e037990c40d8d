"""End-to-end: scale-out processors in one Kafka consumer group (issue 7).

librdkafka's mock cluster (`recstream dev kafka-mock`, 3 brokers, 6 partitions, and the keys
topic), a real redis-server, one collector (`serve --role collector`) that takes a slice of
MovieLens 100k over the real HTTP API, and two processors (`serve --role processor --group`)
sharing one checkpoint directory. The processors split the partitions; one is SIGKILLed in the
middle of ingestion; the other takes every partition over after the session timeout (6 s) and
applies every event. Its final state (the profiles of every user of the slice) equals that of a
single processor that reads the same topic from scratch. kcat sees every acknowledged eventId
exactly once. Every process runs under a timeout or is killed in the finally clause."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading

import rs
import rsredis

TOPIC = "events-group"
LIMIT = 3000  # ratings, oldest first
BATCH = 100
COMMON = ["--insecure-no-auth", "--store-interval", "100ms", "--retention-state", "365d",
          "--retention-interval", "1h", "--checkpoint-interval", "300ms"]
R = rs.Runner()
S = {}


def dataset_path():
    shared = os.environ.get("RECSTREAM_SHARED",
                            os.path.join(os.path.dirname(__file__), "../../../shared"))
    for rel in ("ml-100k/u.data", "data/ml-100k/u.data"):
        path = os.path.join(shared, rel)
        if os.path.exists(path):
            return path
    raise AssertionError("ml-100k/u.data not found under %s (set RECSTREAM_SHARED)" % shared)


def load_events():
    rows = []
    with open(dataset_path()) as f:
        for line_no, line in enumerate(f, 1):
            user, item, rating, seconds = line.split()
            rows.append((int(seconds), line_no, user, item, int(rating)))
    rows.sort()
    return [{"eventId": "ml-%d" % n, "userId": u, "eventType": "rating", "itemId": i,
             "value": r, "timestamp": s * 1000} for s, n, u, i, r in rows[:LIMIT]]


def start_mock():
    proc = subprocess.Popen([rs.BIN, "dev", "kafka-mock", "--brokers", "3", "--partitions", "6",
                             "--topic", TOPIC],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    assert line.startswith("bootstrap="), line
    return proc, line[len("bootstrap="):]


def stop_proc(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


def topic_event_ids(bootstrap, topic):
    p = subprocess.run(["timeout", "60", "kcat", "-C", "-b", bootstrap, "-t", topic, "-o",
                        "beginning", "-e", "-q", "-f", "%h\\n"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 0, p.stderr
    ids = []
    for line in p.stdout.splitlines():
        headers = dict(h.split("=", 1) for h in line.split(",") if "=" in h)
        if headers.get("eventId"):
            ids.append(headers["eventId"])
    return ids


def metrics(srv):
    st, _, data = srv.request("GET", "/metrics")
    assert st == 200, st
    return data.decode()


def gauge_map(text, name):
    return {int(m.group(1)): int(m.group(2))
            for m in re.finditer(r'^%s\{partition="(\d+)"\} (-?\d+)$' % name, text, re.M)}


def owned(srv):
    return sorted(p for p, v in gauge_map(metrics(srv), "recstream_stream_partition_owned").items()
                  if v)


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


def profiles(srv):
    out = {}
    for u in S["users"]:
        st, body = rs.call_json(srv, "GET", "/v1/users/%s/profile" % u)
        assert st == 200, (u, st, body)
        out[u] = body
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
    events = load_events()
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
    t.join(60)
    assert not errors and sum(posted) == LIMIT - third, (errors, sum(posted))
    rs.wait_for("p2 to own every partition and apply every event", lambda: applied_all(p2),
                lambda v: v[0], timeout=40, every=0.2)
    assert "partitions revoked" in p2.log() or "partitions assigned" in p2.log()
    S["split"] = profiles(p2)
    assert sum(p["events"] for p in S["split"].values()) == LIMIT, \
        sum(p["events"] for p in S["split"].values())
    ids = topic_event_ids(S["bootstrap"], TOPIC)
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
    diff = [u for u in S["users"] if got[u] != S["split"][u]]
    assert not diff, (len(diff), diff[:3], got[diff[0]] if diff else None,
                      S["split"][diff[0]] if diff else None)
    assert single.stop() == 0, single.log()[-3000:]


def main():
    tmp = tempfile.mkdtemp(prefix="rs-group-")
    S.update(tmp=tmp, procs=[], end={})
    mock = None
    redis = rsredis.Redis()
    try:
        mock, S["bootstrap"] = start_mock()
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
        stop_proc(mock)
        redis.stop()
        if not os.environ.get("RS_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
    R.finish()


if __name__ == "__main__":
    main()
