"""Encryption at rest, end to end: nothing personal is stored in clear anywhere under the data
directory (raw ids, pseudonyms, item ids, property strings), a flipped byte in a log record or
a checkpoint is detected (never silently accepted), the server restarts with intact state from
valid files, and a missing data key or key store is refused with a clear error."""
import glob
import json
import os
import shutil
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import rs  # noqa: E402

USER = "enc-user-raw-7731"
ANON = "enc-anon-raw-5519"
ITEMS = ["enc-item-%d-qz" % i for i in range(5)]
PROP = "enc-prop-vermilion-88"


def flip(path, pos):
    with open(path, "r+b") as f:
        f.seek(pos)
        c = f.read(1)[0]
        f.seek(pos)
        f.write(bytes([c ^ 0x01]))


def profile(srv, uid):
    st, _, body = srv.request("GET", "/v1/users/%s/profile" % urllib.parse.quote(uid, safe=""))
    assert st == 200, (st, body)
    return json.loads(body)


def wait_events(srv, uid, n):
    """The user's profile once it counts n events (404 until the processor applied the
    first one: the acknowledgement comes before the apply)."""
    def fetch():
        st, _, body = srv.request("GET", "/v1/users/%s/profile" % urllib.parse.quote(uid, safe=""))
        assert st in (200, 404), (st, body)
        return json.loads(body) if st == 200 else None
    return rs.wait_for("profile of %s with %d events" % (uid, n), fetch,
                       lambda p: p is not None and p.get("events") == n)


def main():
    tmp = tempfile.mkdtemp(prefix="rs-enc-")
    data = os.path.join(tmp, "data")
    key = os.path.join(tmp, "keys", "data.key")  # kept outside the data directory
    srv = rs.Server("--partitions", "2", "--data-key", key, "--checkpoint-interval", "200ms",
                    data=data)
    try:
        srv.start()
        events = [{"userId": USER, "eventType": "click", "itemId": it, "timestamp": 1700000000000 + i,
                   "properties": {"note": PROP}} for i, it in enumerate(ITEMS)]
        events.append({"anonymousId": ANON, "eventType": "view", "itemId": ITEMS[0],
                       "timestamp": 1700000000100})
        st, _, reply = srv.post_json("/v1/events", events)
        assert st == 200 and reply["accepted"] == 6, reply
        # A rejected event goes to the dead-letter store, with its property strings.
        st, _, reply = srv.post_json("/v1/events", [{"userId": USER, "eventType": "click",
                                                     "timestamp": 1700000000200,
                                                     "properties": {"note": PROP}}])
        assert st == 422, reply
        before = wait_events(srv, USER, 5)
        pseudonym = rs.run_cli("privacy", "pseudonym", "--data", data, USER).stdout.strip()
        assert pseudonym == before["userKey"], (pseudonym, before)
        anon_key = rs.run_cli("privacy", "pseudonym", "--anonymous", "--data", data, ANON).stdout.strip()
        assert srv.stop() == 0
        assert os.path.exists(key) and not os.path.exists(os.path.join(data, "privacy", "data.key"))

        # 1. Nothing in clear anywhere under the data directory.
        needles = [USER.encode(), ANON.encode(), pseudonym.encode(), anon_key.encode(), PROP.encode()]
        needles += [it.encode() for it in ITEMS]
        hits = rs.scan_dir_for(data, needles)
        assert not hits, "found in clear: %r" % hits
        assert glob.glob(os.path.join(data, "deadletters", "*.ndjson")), "no dead letter written"
        assert glob.glob(os.path.join(data, "checkpoints", "*", "p0.snap")), "no checkpoint written"

        # ... yet the owner of the key reads everything back.
        out = rs.run_cli("log", "dump", "--data", data, "--data-key", key).stdout
        recs = [json.loads(line) for line in out.splitlines()]
        assert len(recs) == 6 and sorted(r["event"]["itemId"] for r in recs if r["key"] == pseudonym) == ITEMS
        chk = rs.run_cli("log", "check", "--data", data, "--data-key", key)
        assert "0 problems" in chk.stdout, chk.stdout

        # 2. Restart with valid files: state intact.
        srv.start()
        assert profile(srv, USER) == before
        st, _, metrics = srv.request("GET", "/metrics")
        assert b"recstream_stream_erased_records_total 0" in metrics, metrics
        assert srv.stop() == 0

        # 3. A flipped byte inside a sealed record (ciphertext of the user's first record, with
        #    more records after it): check reports it and the server refuses to start.
        seg = [p for p in glob.glob(os.path.join(data, "log", "*", "*.seg")) if os.path.getsize(p) > 600]
        assert len(seg) == 1, seg
        pos = 44 + 12 + 24 + 10
        flip(seg[0], pos)
        chk = rs.run_cli("log", "check", "--data", data, "--data-key", key, check=False)
        assert chk.returncode == 1 and "1 problem" in chk.stdout, chk.stdout
        srv.start(wait=False)
        rc = srv.proc.wait(30)
        assert rc != 0 and "corrupt" in srv.log(), srv.log()
        srv.stop()
        flip(seg[0], pos)  # repaired
        assert "0 problems" in rs.run_cli("log", "check", "--data", data, "--data-key", key).stdout

        # 4. A flipped byte inside a sealed checkpoint: detected, the checkpoint is skipped, the
        #    state is rebuilt from an older one or the log, and comes out the same.
        newest = sorted(glob.glob(os.path.join(data, "checkpoints", "[0-9]*")))[-1]
        snaps = sorted(glob.glob(os.path.join(newest, "p*.snap")), key=os.path.getsize)
        flip(snaps[-1], os.path.getsize(snaps[-1]) // 2)
        srv.start()
        log = srv.log()
        assert "does not authenticate" in log and "skipping invalid checkpoint" in log, log
        assert profile(srv, USER) == before
        assert srv.stop() == 0

        # 5. Without its data key the directory is refused, with a clear reason.
        shutil.move(key, key + ".away")
        srv.start(wait=False)
        assert srv.proc.wait(30) != 0 and "data key missing" in srv.log(), srv.log()
        srv.stop()
        p = rs.run_cli("log", "check", "--data", data, "--data-key", key, check=False)
        assert p.returncode != 0 and "data key missing" in p.stderr, p.stderr
        shutil.move(key + ".away", key)
        # ... and so is one whose per-user key store is missing (its users' records would
        # silently become unreadable otherwise).
        store = os.path.join(data, "privacy", "userkeys")
        shutil.move(store, store + ".away")
        srv.start(wait=False)
        assert srv.proc.wait(30) != 0 and "user key store missing" in srv.log(), srv.log()
        srv.stop()
        shutil.move(store + ".away", store)
        srv.start()
        assert profile(srv, USER) == before
        assert srv.stop() == 0
        print("ok   test_encryption")
    finally:
        srv.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
