"""End-to-end: retention with TTLs of seconds and a short job interval.

- events: the log segment holding old events is deleted once they are older than
  --retention-events (and checkpointed past); a younger segment stays, and exactly the young
  records remain (`log dump`), in order, with the low-water mark moved to the first of them;
- state: an idle user's state expires (event time, --retention-state) while an active one's
  stays, and nothing else goes; on a shard that gets no more events the job's tick records
  expire it too, on time;
- audit: the log rotates every second into files that each start with an anchor entry;
  files older than --retention-audit are deleted, only those, and `audit verify` still proves
  the remaining chain (from the oldest anchor left) to the current head;
- the audit log and the consent store are sealed: their bytes hold no pseudonym, raw id or
  entry in clear, and a flipped byte is caught.

- never past the checkpoint: on a server whose processor has not checkpointed (a 1 h
  checkpoint interval), expired segments stay; after a clean stop (final checkpoint) and a
  restart they go.

One server, one partition (so every user shares the shard whose expiry we watch), and a
second one for the checkpoint rule."""
import json
import os
import re
import time
import urllib.parse

import rs

EVENTS_TTL_S = 6
SRV = rs.Server("--partitions", "1", "--fsync", "batch:2", "--checkpoint-interval", "200ms",
                "--segment-age", "1s", "--retention-events", "%ds" % EVENTS_TTL_S,
                "--retention-interval", "300ms", "--retention-state", "5s",
                "--retention-aggregates", "1h", "--audit-rotate", "1s", "--retention-audit", "4s")
AUDIT_TTL_S = 4
T0 = int(time.time() * 1000)


def q(s):
    return urllib.parse.quote(s, safe="")


def send(events):
    st, _, body = SRV.post_json("/v1/events", events)
    assert st == 200 and None not in body["offsets"], body
    return body


def metric(name):
    st, _, body = SRV.request("GET", "/metrics")
    assert st == 200
    m = re.search(r"^%s (\d+)$" % re.escape(name), body.decode(), re.M)
    assert m, name
    return int(m.group(1))


def is_tick(r):
    return (r.get("event") or {}).get("eventType") == "tick"


def events(data=None):
    """The log's records without the retention job's tick control records."""
    return [r for r in rs.dump(data or SRV.data) if not is_tick(r)]


def dump_items():
    return [r["event"].get("itemId") for r in events()]


def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def test_old_segments_go_young_stay():
    t_old = time.time()
    send([{"userId": "old-%d" % i, "eventType": "view", "itemId": "old-item-%d" % i,
           "timestamp": T0} for i in range(20)])
    # Past the segment age: the next append (or the job) rolls, so the young ones get their
    # own segment.
    time.sleep(2.5)
    send([{"userId": "young-%d" % i, "eventType": "view", "itemId": "young-item-%d" % i,
           "timestamp": T0} for i in range(10)])
    t_young = time.time()
    items = dump_items()
    assert sorted(items) == sorted(["old-item-%d" % i for i in range(20)] +
                                   ["young-item-%d" % i for i in range(10)]), items
    # Nothing is deleted before its TTL.
    assert metric("recstream_retention_segments_deleted_total") == 0
    wait_for(lambda: metric("recstream_retention_segments_deleted_total") >= 1,
             EVENTS_TTL_S + 5, "the old segment's deletion")
    deleted_at = time.time()
    assert deleted_at - t_old >= EVENTS_TTL_S, deleted_at - t_old
    # The bound: TTL + segment age + 2 intervals + a checkpoint interval, plus slack for a
    # slow (sanitizer) build.
    assert deleted_at - t_old <= EVENTS_TTL_S + 1 + 0.6 + 0.2 + 2.5, deleted_at - t_old
    assert time.time() - t_young < EVENTS_TTL_S - 0.5, "too slow to see the young ones alive"
    # Exactly the young records remain, in order; every record below the first remaining one
    # (the 20 old events and any ticks between them) was deleted, nothing above it. (A
    # segment of ticks only may go meanwhile: the deleted count is read around the dump.)
    deleted_before = metric("recstream_retention_records_deleted_total")
    recs = rs.dump(SRV.data)
    deleted_after = metric("recstream_retention_records_deleted_total")
    items = [r["event"].get("itemId") for r in recs if not is_tick(r)]
    assert items == ["young-item-%d" % i for i in range(10)], items
    low = recs[0]["offset"]
    assert [r["offset"] for r in recs] == list(range(low, low + len(recs)))
    first_event = next(r["offset"] for r in recs if not is_tick(r))
    assert low >= 20 and all(is_tick(r) for r in recs if r["offset"] < first_event)
    assert deleted_before <= low <= deleted_after, (deleted_before, low, deleted_after)
    assert metric("recstream_retention_errors_total") == 0
    assert "retention: expired events deleted" in SRV.log()


def test_idle_user_state_expires():
    ts = T0 + 60_000
    expired0 = metric("recstream_state_expired_total")
    # The users of the test above were idle past the TTL while the partition was quiet: the
    # job's ticks have expired them already, or this test's events will.
    earlier = ["old-%d" % i for i in range(20)] + ["young-%d" % i for i in range(10)]
    still = sum(SRV.request("GET", "/v1/users/%s/profile" % q(u))[0] == 200 for u in earlier)
    send([{"userId": "idle-1", "eventType": "view", "itemId": "s-1", "timestamp": ts},
          {"userId": "active-1", "eventType": "view", "itemId": "s-1", "timestamp": ts}])
    wait_for(lambda: SRV.request("GET", "/v1/users/idle-1/profile")[0] == 200, 10, "idle-1")
    # Event time moves 10 s on in this shard (TTL 5 s); every apply expires the least recently
    # active users idle past the TTL: the 30 users above and idle-1, never active-1.
    for i in range(20):
        send([{"userId": "active-1", "eventType": "view", "itemId": "s-2",
               "timestamp": ts + 10_000 + i}])
    wait_for(lambda: SRV.request("GET", "/v1/users/idle-1/profile")[0] == 404, 10,
             "idle-1 to expire")
    assert SRV.request("GET", "/v1/users/active-1/profile")[0] == 200
    for u in ["old-%d" % i for i in range(20)] + ["young-%d" % i for i in range(10)]:
        assert SRV.request("GET", "/v1/users/%s/profile" % q(u))[0] == 404, u
    # Exactly idle-1 and those still there expired (items live 1 h: none of them).
    assert metric("recstream_state_expired_total") - expired0 == 1 + still, \
        (metric("recstream_state_expired_total") - expired0, still)
    st, _, body = SRV.request("GET", "/v1/items/s-1/stats")
    assert st == 200, body


def test_quiet_shard_expires():
    """No event after a user's last one: the job's ticks carry the time to the shard, so the
    user still expires, on time (not before its TTL of quiet, not much after)."""
    base = T0 + 200_000  # ahead of every earlier event in this shard
    ticks0 = metric("recstream_retention_ticks_total")
    send([{"userId": "quiet-1", "eventType": "view", "itemId": "q-1", "timestamp": base},
          {"userId": "quiet-2", "eventType": "view", "itemId": "q-1", "timestamp": base}])
    t1 = time.time()
    wait_for(lambda: SRV.request("GET", "/v1/users/quiet-1/profile")[0] == 200, 10, "apply")
    time.sleep(2.5)
    send([{"userId": "quiet-2", "eventType": "view", "itemId": "q-2", "timestamp": base + 2500}])
    assert SRV.request("GET", "/v1/users/quiet-1/profile")[0] == 200  # not before its TTL
    wait_for(lambda: SRV.request("GET", "/v1/users/quiet-1/profile")[0] == 404, 10,
             "quiet-1 to expire without any further event")
    gone = time.time() - t1
    assert 5 <= gone <= 5 + 0.3 + 2.5, gone  # TTL + interval (+ slack)
    assert SRV.request("GET", "/v1/users/quiet-2/profile")[0] == 200  # active 2.5 s later
    assert metric("recstream_retention_ticks_total") > ticks0
    # Clients cannot send ticks.
    st, _, body = SRV.post_json("/v1/events", [{"userId": "x", "eventType": "tick"}])
    assert st in (200, 422) and body.get("rejected", 1) >= 1, body
    assert "tick" in json.dumps(body), body


def audit_files():
    pdir = os.path.join(SRV.data, "privacy")
    return sorted(n for n in os.listdir(pdir) if re.fullmatch(r"audit\.\d{20}\.log", n))


def test_audit_rotates_and_old_files_go():
    # By now (the tests above took > 8 s) the log has rotated every second and the files
    # older than the audit TTL are gone.
    assert metric("recstream_retention_audit_files_rotated_total") >= 4
    wait_for(lambda: metric("recstream_retention_audit_files_removed_total") >= 1, 10,
             "an old audit file's deletion")
    files = audit_files()
    assert files, files
    now = time.time()
    pdir = os.path.join(SRV.data, "privacy")
    # Only old files went: every rotated file left is younger than the TTL (+ one interval
    # and slack), and the files left are one contiguous run of seqs up to the current file.
    for n in files:
        age = now - os.stat(os.path.join(pdir, n)).st_mtime
        assert age < AUDIT_TTL_S + 0.3 + 1.5, (n, age)
    v = rs.run_cli("audit", "verify", "--data", SRV.data)
    m = re.search(r"OK .*: (\d+) entries from seq (\d+)", v.stdout)
    assert m, v.stdout
    first = int(m.group(2))
    assert first > 1 and first == int(files[0].split(".")[1]), (first, files)
    last = json.loads(rs.run_cli("audit", "tail", "--data", SRV.data, "--lines", "1")
                      .stdout.splitlines()[-1])
    assert int(m.group(1)) == last["seq"] - first + 1, (m.group(1), last["seq"], first)
    # Every file starts with an anchor naming the previous file's head.
    assert last["action"] in ("audit.anchor", "consent.update", "serve.start"), last


def test_audit_and_consent_sealed():
    st, _, _ = SRV.request("PUT", "/v1/users/carol/consent",
                           json.dumps({"analytics": True, "personalization": False,
                                       "source": "banner"}),
                           {"Content-Type": "application/json"})
    assert st == 200
    pdir = os.path.join(SRV.data, "privacy")
    for name in ["audit.log"] + audit_files():
        raw = open(os.path.join(pdir, name), "rb").read()
        assert b"carol" not in raw and b"consent" not in raw and b"anchor" not in raw, name
    cdir = os.path.join(pdir, "consent")
    for name in os.listdir(cdir):
        raw = open(os.path.join(cdir, name), "rb").read()
        assert b"carol" not in raw and b"banner" not in raw and b'"key"' not in raw, name
    # Restart: the chain continues over the sealed files and verifies.
    assert SRV.stop() == 0
    SRV.start()
    assert SRV.stop() == 0
    ok = rs.run_cli("audit", "verify", "--data", SRV.data)
    assert re.search(r"OK .*: (\d+) entries", ok.stdout), ok.stdout
    tail = rs.run_cli("audit", "tail", "--data", SRV.data, "--lines", "4").stdout.splitlines()
    acts = [json.loads(l)["action"] for l in tail]
    assert acts[-1] == "serve.start", acts
    # A flipped byte in the middle of a sealed line is caught (server stopped).
    path = os.path.join(pdir, "audit.log")
    lines = open(path, "rb").read().splitlines(True)
    assert len(lines) >= 2, lines
    line = bytearray(lines[1])
    i = line.index(b" ") + 12
    line[i:i + 1] = b"B" if line[i:i + 1] == b"A" else b"A"
    open(path, "wb").write(b"".join(lines[:1] + [bytes(line)] + lines[2:]))
    p = rs.run_cli("audit", "verify", "--data", SRV.data, check=False)
    assert p.returncode == 1 and "line 2" in p.stdout and "authenticate" in p.stdout, p.stdout


def test_never_past_the_checkpoint():
    srv = rs.Server("--partitions", "1", "--fsync", "batch:2", "--checkpoint-interval", "1h",
                    "--segment-age", "1s", "--retention-events", "1s",
                    "--retention-interval", "200ms")
    srv.start()
    try:
        st, _, body = srv.post_json("/v1/events", [
            {"userId": "cp-%d" % i, "eventType": "view", "itemId": "cp-item-%d" % i}
            for i in range(15)])
        assert st == 200 and None not in body["offsets"], body
        # Applied by the processor, older than the TTL, rolled by the job: but no checkpoint
        # covers them, so nothing goes.
        wait_for(lambda: srv.request("GET", "/v1/users/cp-14/profile")[0] == 200, 10, "apply")
        time.sleep(3)
        st, _, m = srv.request("GET", "/metrics")
        text = m.decode()
        assert re.search(r"^recstream_retention_segments_rolled_total [1-9]", text, re.M), text
        assert re.search(r"^recstream_retention_segments_deleted_total 0$", text, re.M), text
        assert len(events(srv.data)) == 15
        # A clean stop writes the final checkpoint; after the restart the job may delete.
        assert srv.stop() == 0
        srv.start()
        deadline = time.time() + 10
        while time.time() < deadline and events(srv.data):
            time.sleep(0.2)
        assert events(srv.data) == []
        st, _, m = srv.request("GET", "/metrics")
        assert re.search(r"^recstream_retention_records_deleted_total (1[5-9]|[2-9]\d)$",
                         m.decode(), re.M), m.decode()
        # The state those events built is still there (it came from the checkpoint).
        assert srv.request("GET", "/v1/users/cp-3/profile")[0] == 200
    finally:
        srv.stop()
        srv.cleanup()


def main():
    runner = rs.Runner()
    SRV.start()
    try:
        for t in (test_old_segments_go_young_stay, test_idle_user_state_expires,
                  test_quiet_shard_expires, test_audit_rotates_and_old_files_go,
                  test_audit_and_consent_sealed):
            runner.run(t)
    finally:
        SRV.stop()
        SRV.cleanup()
    runner.run(test_never_past_the_checkpoint)
    runner.finish()


if __name__ == "__main__":
    main()
