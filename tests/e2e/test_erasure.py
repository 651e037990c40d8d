"""Right to erasure and right of access, end to end: DELETE /v1/users/{id} removes the user
from serving at once and, within the deadline, from every file of the data directory
(checked by opening every sealed file with `recstream privacy scan` and the log with `log
dump`), other users stay intact, a replay from scratch does not bring the user back, an
erasure interrupted by SIGKILL completes after the restart, one whose step keeps failing is
reported "failed" past the deadline and completes once the fault is gone, and the export
shows the user's events and consent history before the erasure and nothing after."""
import glob
import json
import os
import re
import shutil
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import rs  # noqa: E402

A = "erase-me-raw-4417"
B = "keep-me-raw-8820"
ANON = "erase-anon-raw-3391"
ARGS = ("--partitions", "2", "--checkpoint-interval", "200ms", "--reco-refresh", "200ms",
        "--erasure-deadline", "20s")
# Event times near the wall clock: the erasure's forget records carry the ingest time and move
# a shard's "now", so events from years ago would expire users the test expects to keep
# (docs/PRIVACY.md, "State expiry, exactly").
T0 = (int(time.time()) - 3600) * 1000
ITEMS = ["er-item-%d" % i for i in range(4)]


def q(s):
    return urllib.parse.quote(s, safe="")


def call(srv, method, url, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    st, _, data = srv.request(method, url, json.dumps(body) if body is not None else None, headers)
    try:
        return st, (json.loads(data) if data else None)
    except ValueError:
        raise AssertionError("%s %s: reply is not JSON: %r" % (method, url, data))


def wait_for(what, fetch, pred, timeout=20):
    return rs.wait_for(what, fetch, pred, timeout, 0.05)


def profile(srv, user):
    return call(srv, "GET", "/v1/users/%s/profile" % q(user))


def ingest_user(srv, user, n, anon=None):
    evs = [{"userId": user, "eventType": "click", "itemId": ITEMS[i % len(ITEMS)],
            "timestamp": T0 + i} for i in range(n)]
    if anon:
        evs.append({"anonymousId": anon, "eventType": "view", "itemId": ITEMS[0], "timestamp": T0})
    st, _, body = srv.post_json("/v1/events", evs)
    assert st == 200 and body["accepted"] == len(evs), body
    wait_for("profile of " + user, lambda: profile(srv, user),
             lambda r: r[0] == 200 and r[1]["events"] == n)


def dead_letter(srv, user):
    """A click without itemId is rejected (422) and kept as a dead letter."""
    st, _, body = srv.post_json("/v1/events", [{"userId": user, "eventType": "click",
                                                "timestamp": T0 + 99}])
    assert st == 422, body


def erase(srv, user, anon=False):
    st, body = call(srv, "DELETE", "/v1/users/%s%s" % (q(user), "?idType=anonymous" if anon else ""))
    assert st == 202, (st, body)
    assert re.fullmatch(r"[0-9a-f]{32}", body["erasureId"]) and body["status"] == "pending", body
    return body["erasureId"]


def wait_complete(srv, eid, timeout=20):
    t0 = time.time()
    r = wait_for("erasure " + eid, lambda: call(srv, "GET", "/v1/erasures/" + eid),
                 lambda r: r[0] == 200 and r[1]["status"] == "complete", timeout)[1]
    assert time.time() - t0 < timeout
    assert [s["step"] for s in r["steps"]] == ["forget", "shred", "consent", "deadletters",
                                               "checkpoint"], r
    assert all(s["done"] >= r["requested"] for s in r["steps"]) and r["completed"], r
    return r


def pseudonym(data, user, anon=False):
    args = ["privacy", "pseudonym", "--data", data] + (["--anonymous"] if anon else []) + [user]
    return rs.run_cli(*args).stdout.strip()


def scan(data, user, anon=False):
    args = ["privacy", "scan", "--data", data] + (["--anonymous"] if anon else []) + [user]
    return rs.run_cli(*args, check=False)


def export(srv, user, query=""):
    st, body = call(srv, "GET", "/v1/users/%s/export%s" % (q(user), query))
    assert st == 200, (st, body)
    return body


def test_erasure_end_to_end():
    srv = rs.Server(*ARGS)
    try:
        srv.start()
        data = srv.data
        st, body = call(srv, "PUT", "/v1/users/%s/consent" % q(A),
                        {"analytics": True, "personalization": True, "source": "banner", "ts": T0})
        assert st == 200, body
        st, body = call(srv, "PUT", "/v1/users/%s/consent" % q(B),
                        {"analytics": True, "personalization": True, "source": "banner", "ts": T0})
        assert st == 200, body
        ingest_user(srv, A, 5, anon=ANON)
        ingest_user(srv, B, 3)
        dead_letter(srv, A)
        dead_letter(srv, B)
        pa, pb = pseudonym(data, A), pseudonym(data, B)
        panon = pseudonym(data, ANON, anon=True)

        # Right of access, before: events, consent history, the pseudonym.
        ex = export(srv, A)
        assert ex["userId"] == A and ex["pseudonym"] == pa, ex
        assert len(ex["events"]) == 5 and all(e["event"]["userKey"] == pa for e in ex["events"]), ex
        assert ex["consent"]["history"][0]["source"] == "banner" and ex["erasures"] == [], ex
        assert ex["profile"]["events"] == 5 and ex["nextFrom"] is None, ex
        page = export(srv, A, "?limit=2")
        assert len(page["events"]) == 2 and page["nextFrom"] is not None, page
        rest = export(srv, A, "?from=%d" % page["nextFrom"])
        assert len(rest["events"]) == 3, rest

        # Erase A: out of serving before the reply.
        eid = erase(srv, A)
        assert pa not in eid
        assert profile(srv, A)[0] == 404
        st, r = call(srv, "GET", "/v1/users/%s/recommendations?count=5" % q(A))
        assert st == 200 and r["strategy"] != "personalized", r
        eanon = erase(srv, ANON, anon=True)
        rec = wait_complete(srv, eid)
        assert pa not in json.dumps(rec) and A not in json.dumps(rec), rec
        wait_complete(srv, eanon)

        # Right of access, after: nothing but the receipt.
        ex = export(srv, A)
        assert ex["events"] == [] and ex["consent"] is None and ex["profile"] is None, ex
        assert [e["erasureId"] for e in ex["erasures"]] == [eid], ex
        # B intact, its dead letter kept; A's gone.
        st, pr = profile(srv, B)
        assert st == 200 and pr["events"] == 3, pr
        st, dl = call(srv, "GET", "/v1/deadletters")
        keys = [d["event"].get("userKey") for d in dl["deadletters"]]
        assert keys == [pb], dl
        assert srv.stop() == 0

        # Every file, sealed ones opened: no trace of A or of the anonymous id.
        for user, anon in ((A, False), (ANON, True)):
            p = scan(data, user, anon)
            assert p.returncode == 0 and p.stdout.startswith("CLEAN"), p.stdout + p.stderr
            assert int(re.search(r"(\d+) sealed files opened", p.stdout).group(1)) >= 3, p.stdout
        p = scan(data, B)  # the scanner does find a user who is there, inside sealed files
        assert p.returncode == 1 and "(sealed checkpoint, opened)" in p.stdout, p.stdout
        assert "(sealed dead letter, opened)" in p.stdout, p.stdout
        assert "(sealed consent " in p.stdout, p.stdout  # B's consent stays, found opened
        recs = rs.dump(data)
        assert not [r for r in recs if r.get("key") in (pa, panon)], "A's records still readable"
        assert sum(1 for r in recs if r.get("erased")) >= 7, recs  # 5 + anon 1 + 2 control
        assert sum(1 for r in recs if r.get("key") == pb) == 3  # a grant appends no control event
        assert len(glob.glob(os.path.join(data, "checkpoints", "*"))) >= 1
        # The audit log is sealed at rest: `audit tail` opens it.
        out = rs.run_cli("audit", "tail", "--data", data, "--lines", "100000").stdout
        audit = [json.loads(line) for line in out.splitlines()]
        done = [e for e in audit if e["action"] == "erasure.complete"]
        req = [e for e in audit if e["action"] == "erasure.request"]
        assert len(done) == 2 and len(req) == 2, audit
        assert req[0]["subject"] == done[0]["subject"] != pa and req[0]["actor"].startswith("key:")
        consent_subjects = {e["subject"] for e in audit if e["action"].startswith("consent")}
        assert req[0]["subject"] in consent_subjects, (req[0], consent_subjects)
        assert rs.run_cli("audit", "verify", "--data", data).returncode == 0

        # Replay from scratch: A does not come back, B does.
        shutil.rmtree(os.path.join(data, "checkpoints"))
        srv.start()
        wait_for("B replayed", lambda: profile(srv, B), lambda r: r[0] == 200 and r[1]["events"] == 3)
        assert profile(srv, A)[0] == 404
        st, rec2 = call(srv, "GET", "/v1/erasures/" + eid)
        assert st == 200 and rec2["status"] == "complete", rec2  # receipts survive restarts
        # New events of A after the erasure are new data, under a new key.
        ingest_user(srv, A, 1)
        assert len(export(srv, A)["events"]) == 1
    finally:
        srv.cleanup()


def test_erasure_resumes_after_sigkill():
    slow = rs.Server(*(ARGS + ("--erasure-step-delay", "3s")))
    try:
        slow.start()
        data = slow.data
        ingest_user(slow, A, 4)
        ingest_user(slow, B, 2)
        dead_letter(slow, A)
        eid = erase(slow, A)
        assert profile(slow, A)[0] == 404
        st, r = call(slow, "GET", "/v1/erasures/" + eid)
        assert st == 200 and r["status"] == "pending" and len(r["steps"]) < 5, r
        # While the erasure runs, the user's events are accepted but not stored.
        st, _, body = slow.post_json("/v1/events", [{"userId": A, "eventType": "click",
                                                     "itemId": ITEMS[0], "timestamp": T0 + 50}])
        assert st == 200 and body["droppedConsent"] == 1, body
        slow.kill()
        assert scan(data, A).returncode == 1  # not done yet: still there
        fast = rs.Server(*ARGS, data=data)
        fast.start()
        try:
            wait_complete(fast, eid)
            assert profile(fast, A)[0] == 404
            st, pr = profile(fast, B)
            assert st == 200 and pr["events"] == 2, pr
            assert fast.stop() == 0
        finally:
            fast.cleanup()
        p = scan(data, A)
        assert p.returncode == 0, p.stdout
    finally:
        slow.cleanup()


def test_erasure_fails_past_the_deadline_then_completes():
    """A step that keeps failing (the checkpoint directory replaced by a file, so no
    checkpoint can be written) turns the receipt "failed" once the deadline passes, with the
    error and an audit entry; the job keeps retrying, and when the fault is gone the same
    erasure completes and the user is gone from every file."""
    srv = rs.Server("--partitions", "2", "--checkpoint-interval", "1h", "--erasure-deadline",
                    "2s")
    try:
        srv.start()
        ingest_user(srv, A, 3)
        ckpt = os.path.join(srv.data, "checkpoints")
        aside = ckpt + ".aside"
        os.rename(ckpt, aside)
        with open(ckpt, "w") as f:
            f.write("not a directory\n")
        eid = erase(srv, A)
        assert profile(srv, A)[0] == 404  # gone from serving at once, whatever follows
        st, r = wait_for("erasure %s failed" % eid, lambda: call(srv, "GET", "/v1/erasures/" + eid),
                         lambda r: r[0] == 200 and r[1]["status"] == "failed", 30)
        assert [x["step"] for x in r["steps"]] == ["forget", "shred", "consent", "deadletters"], r
        assert r["error"].startswith("checkpoint:") and r["completed"] is None, r
        tail = rs.run_cli("audit", "tail", "--data", srv.data, "--lines", "20").stdout
        assert "erasure.failed" in tail, tail
        os.remove(ckpt)
        os.rename(aside, ckpt)
        wait_complete(srv, eid, timeout=30)
        assert srv.stop() == 0
        p = scan(srv.data, A)
        assert p.returncode == 0, p.stdout
    finally:
        srv.cleanup()


def test_bad_requests():
    srv = rs.Server(*ARGS)
    try:
        srv.start()
        st, body = call(srv, "DELETE", "/v1/users/x?idType=robot")
        assert st == 400 and "idType" in body["message"], body
        st, body = call(srv, "GET", "/v1/erasures/not-an-id")
        assert st == 404, body
        st, body = call(srv, "GET", "/v1/erasures/" + "0" * 32)
        assert st == 404, body
        st, body = call(srv, "GET", "/v1/users/x/export?limit=0")
        assert st == 400 and "limit" in body["message"], body
        st, body = call(srv, "POST", "/v1/users/x")
        assert st == 405, body
        st, body = call(srv, "DELETE", "/v1/users/" + "u" * 300)
        assert st == 400, body
        # Admin only: a read key may not erase or export.
        p = rs.run_cli("keys", "create", "--data", srv.data, "--role", "read", "--name", "r")
        rkey = re.search(r"rsk_[0-9a-f]+_[0-9a-f]+", p.stdout).group(0)
        time.sleep(1.1)  # the server re-reads the key file at most once a second
        for method, url in (("DELETE", "/v1/users/x"), ("GET", "/v1/users/x/export"),
                            ("GET", "/v1/erasures/" + "0" * 32)):
            st, _, _ = srv.request(method, url, key=rkey)
            assert st == 403, (method, url, st)
    finally:
        srv.cleanup()


def main():
    runner = rs.Runner()
    for t in (test_erasure_end_to_end, test_erasure_resumes_after_sigkill,
              test_erasure_fails_past_the_deadline_then_completes, test_bad_requests):
        runner.run(t)
    runner.finish()


if __name__ == "__main__":
    main()
