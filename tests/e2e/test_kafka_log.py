"""End-to-end: `recstream serve --log kafka://BOOTSTRAP/TOPIC` on librdkafka's mock cluster
(`recstream dev kafka-mock`, 3 brokers, 6 partitions; real protocol on loopback).

Events posted over HTTP go through Kafka to the processors: profiles and recommendations
come back. kcat, as an outside client, lists every acknowledged eventId exactly once (the
eventId header). The server is SIGKILLed in the middle of ingesting and restarted against
the same cluster; the client resends what was not acknowledged (eventId dedup, rebuilt from
the topic, keeps that exactly-once). The recovered server's state equals that of a fresh
server replaying the topic from scratch. Every process runs under a timeout."""
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import rs
import rskafka

R = rs.Runner()
TOPIC = "events-e2e"
USERS = 12
ITEMS = 30


def start_mock():
    return rskafka.start_mock(TOPIC)


def stop_mock(proc):
    rskafka.stop_proc(proc)


def topic_event_ids(bootstrap):
    return rskafka.topic_event_ids(bootstrap, TOPIC)


def event(n):
    user = n % USERS
    return {"eventId": "k-%d" % n, "userId": "user-%d" % user,
            "eventType": ("view", "click", "add_to_cart")[n % 3],
            "itemId": "item-%d" % ((n * 7 + user) % ITEMS), "timestamp": 1700000000000 + n * 1000}


def send(srv, batch, timeout=30):
    """Posts one batch; returns the reply, or None when the server did not answer."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
    try:
        conn.request("POST", "/v1/events", json.dumps(batch),
                     {"Content-Type": "application/json", **srv.auth_headers()})
        resp = conn.getresponse()
        data = resp.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
    if resp.status != 200:
        return None
    return json.loads(data)


def profile(srv, user):
    st, body = rs.call_json(srv, "GET", "/v1/users/user-%d/profile" % user)
    return body if st == 200 else None


def profiles(srv):
    return [profile(srv, u) for u in range(USERS)]


def events_applied(srv):
    return sum(p["events"] for p in profiles(srv) if p)


def serve(bootstrap, data, *extra):
    return rs.Server("--log", "kafka://%s/%s" % (bootstrap, TOPIC), "--checkpoint-interval",
                     "300ms", *extra, data=data)


STATE = {}


def test_ingest_state_reco_and_kcat():
    srv = STATE["srv"]
    # one event, a batch, and the Kafka REST produce route (another HTTP shape, same log)
    r = send(srv, [event(0)])
    assert r and r["accepted"] == 1, r
    off = r["offsets"][0]
    assert 0 <= off["partition"] < 6 and off["offset"] >= 0, r
    r = send(srv, [event(n) for n in range(1, 120)])
    assert r and r["accepted"] == 119 and r["rejected"] == 0, r
    st, _, body = srv.produce([{"value": event(n)} for n in range(120, 150)])
    assert st == 200 and all(o["error_code"] is None for o in body["offsets"]), body
    # a repeat is a duplicate with the original's position, not a second record
    r2 = send(srv, [event(0)])
    assert r2["duplicates"] == 1 and r2["offsets"][0] == off, r2
    STATE["acked"] = {"k-%d" % n for n in range(150)}
    rs.wait_for("150 events applied", lambda: events_applied(srv), lambda n: n == 150)
    p = profile(srv, 3)
    assert p["events"] == len([n for n in range(150) if n % USERS == 3]), p
    st, reco = rs.call_json(srv, "GET", "/v1/users/user-3/recommendations?count=5")
    assert st == 200, reco
    reco = rs.wait_for("recommendations", lambda: rs.call_json(
        srv, "GET", "/v1/users/user-3/recommendations?count=5")[1],
        lambda b: b and len(b["items"]) > 0, timeout=20)
    assert all(it["itemId"].startswith("item-") for it in reco["items"]), reco
    ids = topic_event_ids(STATE["bootstrap"])
    assert sorted(ids) == sorted(STATE["acked"]), (len(ids), len(STATE["acked"]))


def test_kill_mid_ingest_then_recover():
    srv = STATE["srv"]
    acked = STATE["acked"]
    batches = [[event(n) for n in range(b, b + 25)] for b in range(150, 1150, 25)]
    sent = []  # indexes of acknowledged batches
    stop = threading.Event()

    def client():
        for i, batch in enumerate(batches):
            if stop.is_set():
                return
            r = send(srv, batch, timeout=10)
            if r is None:
                return
            assert r["accepted"] == len(batch), r
            sent.append(i)

    t = threading.Thread(target=client)
    t.start()
    rs.wait_for("some batches acknowledged", lambda: len(sent), lambda n: n >= 8, timeout=30)
    srv.kill()  # SIGKILL while the client is still posting
    STATE["first_log"] = srv.stderr_path
    stop.set()
    t.join(30)
    assert 8 <= len(sent) < len(batches), len(sent)
    for i in sent:
        acked.update(e["eventId"] for e in batches[i])
    # Restart on the same data directory and cluster; resend everything not acknowledged
    # (the batch in flight may be partly in the topic: dedup answers those as duplicates).
    srv.start()
    for i, batch in enumerate(batches):
        if i not in sent:
            r = send(srv, batch)
            assert r and r["accepted"] == len(batch), r
            acked.update(e["eventId"] for e in batch)
    ids = topic_event_ids(STATE["bootstrap"])
    if len(ids) != len(set(ids)):
        p = subprocess.run(["timeout", "60", "kcat", "-C", "-b", STATE["bootstrap"], "-t", TOPIC,
                            "-o", "beginning", "-e", "-q", "-f", "%p %o %T %h\\n"],
                           stdout=subprocess.PIPE, text=True)
        dups = {i for i in ids if ids.count(i) > 1}
        lines = [l for l in p.stdout.splitlines() if any("eventId=%s," % d in l for d in dups)]
        raise AssertionError("eventIds in the topic twice: %s\nsent=%s\n%s\n%s" % (
            "\n".join(sorted(lines)), sent, srv.log()[-3000:], open(STATE["first_log"]).read()[-6000:]))
    assert set(ids) == acked, (len(set(ids)), len(acked))
    total = len(acked)
    rs.wait_for("every event applied after recovery", lambda: events_applied(srv),
                lambda n: n == total, timeout=30)
    STATE["profiles"] = profiles(srv)
    assert srv.stop() == 0, srv.log()


def test_fresh_replay_equals_recovered_state():
    # Same keys (pseudonyms, data key, per-user keys), no checkpoints: the whole topic is
    # replayed from offset 0.
    fresh = os.path.join(STATE["tmp"], "fresh")
    shutil.copytree(STATE["srv"].data, fresh,
                    ignore=shutil.ignore_patterns("checkpoints", "LOCK", "server-*.log"))
    srv = serve(STATE["bootstrap"], fresh)
    STATE["fresh"] = srv
    srv.start()
    total = len(STATE["acked"])
    rs.wait_for("fresh replay", lambda: events_applied(srv), lambda n: n == total, timeout=30)
    assert profiles(srv) == STATE["profiles"]
    assert srv.stop() == 0, srv.log()


def test_refuses_missing_topic_and_partition_mismatch():
    data = os.path.join(STATE["tmp"], "bad")
    for args, want in ((["--log", "kafka://%s/no-such-topic" % STATE["bootstrap"]],
                        "topic does not exist"),
                       (["--log", "kafka://%s/%s" % (STATE["bootstrap"], TOPIC), "--partitions",
                         "4"], "--partitions differs")):
        p = subprocess.run(["timeout", "60", rs.BIN, "serve", "--data", data, "--listen",
                            "127.0.0.1:0"] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        assert p.returncode == 1 and want in p.stderr, (p.returncode, p.stderr[-2000:])
    p = subprocess.run(["timeout", "60", rs.BIN, "serve", "--data", data, "--log", "kafka://x"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 2 and "kafka://HOST:PORT" in p.stderr, p.stderr


def main():
    tmp = tempfile.mkdtemp(prefix="rs-kafka-")
    mock, bootstrap = start_mock()
    STATE.update(tmp=tmp, bootstrap=bootstrap)
    STATE["srv"] = serve(bootstrap, os.path.join(tmp, "data"))
    try:
        STATE["srv"].start()
        for t in (test_ingest_state_reco_and_kcat, test_kill_mid_ingest_then_recover,
                  test_fresh_replay_equals_recovered_state,
                  test_refuses_missing_topic_and_partition_mismatch):
            R.run(t)
    finally:
        for key in ("srv", "fresh"):
            if key in STATE and not os.environ.get("RS_KEEP"):
                STATE[key].cleanup()
        stop_mock(mock)
        if not os.environ.get("RS_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
    R.finish()


main()
