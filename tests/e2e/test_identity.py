"""Identity, end to end: an anonymous visitor's history follows them when they log in (an
event with both anonymousId and userId), the anonymous profile is gone, and a SIGKILL with
replay (from scratch, or while 200 merges are being carried) gives the same state with no
merge stored twice; rotation of the pseudonymisation secret
(server stopped, rotate, restart) keeps a user's history under the new pseudonym the first
time the user is seen again, and retirement drops the old version after the grace period;
erasure after a merge and after a rotation leaves nothing of the user or of the anonymous id
(`recstream privacy scan`)."""
import os
import shutil
import stat
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import rs  # noqa: E402

ARGS = ("--partitions", "4", "--checkpoint-interval", "200ms", "--reco-refresh", "200ms",
        "--erasure-deadline", "20s")
# Event times close to the wall clock, as the server's retention assumes (docs/PRIVACY.md,
# "State expiry, exactly"). The server stamps the consent records it writes itself (a consent
# PUT, an erasure) with the ingest time, and they move their shard's "now" like any record: with
# event times years old, the next event in that shard would drop every user idle past
# --retention-state (30 d), e.g. the bystander below whenever its pseudonym shares a partition
# with one of those records.
T0 = (int(time.time()) - 3600) * 1000


def q(s):
    return urllib.parse.quote(s, safe="")


def profile(srv, uid, anon=False):
    return rs.call_json(srv, "GET", "/v1/users/%s/profile%s" % (q(uid), "?idType=anonymous" if anon else ""))


def send(srv, evs):
    st, _, body = srv.post_json("/v1/events", evs)
    assert st == 200 and body["accepted"] == len(evs), (st, body)


def items_of(p):
    return sorted({r["itemId"] for r in p["recent"]})


def pseudonym(data, uid, anon=False):
    args = ["privacy", "pseudonym", "--data", data, uid] + (["--anonymous"] if anon else [])
    return rs.run_cli(*args).stdout.strip()


def scan_clean(data, uid, anon=False):
    args = ["privacy", "scan", "--data", data, uid] + (["--anonymous"] if anon else [])
    p = rs.run_cli(*args, check=False)
    assert p.returncode == 0, "scan of %s: %s" % (uid, p.stdout[-3000:])


def anonymous_then_login(srv, anon, user, n=5, base=0):
    """n anonymous views, then a login (identify) carrying both ids."""
    send(srv, [{"anonymousId": anon, "eventType": "view", "itemId": "anon-item-%d" % i,
                "timestamp": T0 + base + i} for i in range(n)])
    rs.wait_for("anonymous profile", lambda: profile(srv, anon, True),
                lambda r: r[0] == 200 and r[1]["events"] == n)
    send(srv, [{"anonymousId": anon, "userId": user, "eventType": "click", "itemId": "login-item",
                "timestamp": T0 + base + 100}])
    p = rs.wait_for("merged profile", lambda: profile(srv, user),
                    lambda r: r[0] == 200 and r[1]["events"] == n + 1)[1]
    return p


def erase(srv, user, anon=False):
    st, body = rs.call_json(srv, "DELETE", "/v1/users/%s%s" % (q(user), "?idType=anonymous" if anon else ""))
    assert st == 202, (st, body)
    eid = body["erasureId"]
    rs.wait_for("erasure " + eid, lambda: rs.call_json(srv, "GET", "/v1/erasures/" + eid),
                lambda r: r[0] == 200 and r[1]["status"] == "complete")
    assert profile(srv, user, anon)[0] == 404


def key_versions(data):
    path = os.path.join(data, "privacy", "pseudonym.key")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip() and not line.startswith("#")]


def test_rotation_keeps_history_and_erasure_covers_it():
    srv = rs.Server(*ARGS)
    srv.start()
    try:
        anon, user, other = "rot-visitor-3301", "rot-customer-9912", "rot-bystander-1"
        anonymous_then_login(srv, anon, user, n=4)
        send(srv, [{"userId": other, "eventType": "view", "itemId": "o-%d" % i,
                    "timestamp": T0 + i} for i in range(3)])
        rs.wait_for("bystander", lambda: profile(srv, other), lambda r: r[0] == 200)
        before = profile(srv, user)[1]
        optout = "rot-optout-77"
        st, _ = rs.call_json(srv, "PUT", "/v1/users/%s/consent" % optout,
                             {"analytics": True, "personalization": False, "source": "banner"})
        assert st == 200, st
        old, old_anon = pseudonym(srv.data, user), pseudonym(srv.data, anon, True)
        old_other = pseudonym(srv.data, other)
        srv.stop()

        p = rs.run_cli("privacy", "rotate-pseudonym-key", "--data", srv.data)
        assert "version 2" in p.stdout, p.stdout
        assert key_versions(srv.data) == ["1", "2"]
        new = pseudonym(srv.data, user)
        assert new != old
        # Retiring right away is refused: the grace period has not passed.
        p = rs.run_cli("privacy", "retire-pseudonym-key", "--data", srv.data, check=False)
        assert p.returncode == 2 and "grace" in p.stderr, p.stderr

        srv.start()
        # Beside a running server the key commands refuse (it would not use the change anyway).
        p = rs.run_cli("privacy", "retire-pseudonym-key", "--data", srv.data, "--grace", "0",
                       check=False)
        assert p.returncode == 2 and "server is running" in p.stderr, p.stderr
        # Consent given under the old version still governs (until a PUT under the new one).
        st, c = rs.call_json(srv, "GET", "/v1/users/%s/consent" % optout)
        assert st == 200 and c["consent"]["personalization"] is False, c
        st, _, body = srv.post_json("/v1/events", [{"userId": optout, "eventType": "view",
                                                    "itemId": "x", "timestamp": T0}])
        assert st == 200 and body["droppedConsent"] == 1, body
        # The user is seen again: the state under the old pseudonym moves to the new one.
        send(srv, [{"userId": user, "eventType": "click", "itemId": "after-rotation",
                    "timestamp": T0 + 1000}])
        after = rs.wait_for("history under the new pseudonym", lambda: profile(srv, user),
                            lambda r: r[0] == 200 and r[1]["events"] == before["events"] + 1)[1]
        assert after["userKey"] == new
        assert set(items_of(before)) < set(items_of(after)), (before, after)
        assert old in after["mergedKeys"] and old_anon in after["mergedKeys"], after
        st, exp = rs.call_json(srv, "GET", "/v1/users/%s/export" % q(user))
        links = {k["pseudonym"]: k["link"] for k in exp["linkedKeys"]}
        assert st == 200 and len(links) == len(exp["linkedKeys"]), exp
        assert links.get(old) == "olderSecretVersion" and links.get(old_anon) == "merged", exp
        assert any(e["event"].get("itemId") == "anon-item-0" for k in exp["linkedKeys"]
                   for e in k["events"]), exp  # the anonymous visitor's own events
        # Erasure covers both versions of the pseudonym and the merged anonymous key.
        erase(srv, user)
        # The bystander, not seen since the rotation, is still read under the old version with
        # their whole history (the erasure's records and checkpoint leave them alone); their
        # next event moves them. (The bystander's partition may still be replaying: wait.)
        kept = rs.wait_for("bystander after the restart", lambda: profile(srv, other),
                           lambda r: r[0] == 200 and r[1]["events"] == 3)[1]
        assert kept["userKey"] == old_other, (old_other, kept)
        send(srv, [{"userId": other, "eventType": "view", "itemId": "o-new", "timestamp": T0 + 9}])
        moved = rs.wait_for("bystander moved", lambda: profile(srv, other),
                            lambda r: r[0] == 200 and r[1]["events"] == 4)[1]
        assert moved["userKey"] == pseudonym(srv.data, other), moved
        srv.stop()
        scan_clean(srv.data, user)
        scan_clean(srv.data, anon, anon=True)

        p = rs.run_cli("privacy", "retire-pseudonym-key", "--data", srv.data, "--grace", "0")
        assert "version 1 retired" in p.stdout, p.stdout
        assert key_versions(srv.data) == ["2"]
        tail = rs.run_cli("audit", "tail", "--data", srv.data, "--lines", "50").stdout
        assert "pseudonym.rotate" in tail and "pseudonym.retire" in tail, tail
        rs.run_cli("audit", "verify", "--data", srv.data)
        srv.start()
        rs.wait_for("bystander after the second restart", lambda: profile(srv, other),
                    lambda r: r[0] == 200 and r[1]["events"] == 4)
        srv.stop()
    finally:
        srv.stop() if srv.proc and srv.proc.poll() is None else None
        srv.cleanup()


def test_sigkill_while_merging():
    """200 logins, SIGKILL right after their acknowledgement (merges still being carried),
    restart: every user ends with their anonymous history, no merge_in is stored twice, and the
    state equals a replay of the whole log from scratch."""
    srv = rs.Server(*ARGS)
    srv.start()
    try:
        n = 200
        send(srv, [{"anonymousId": "mid-anon-%d" % u, "eventType": "view",
                    "itemId": "m-%d" % ((u + k) % 50), "timestamp": T0 + 10 * u + k}
                   for u in range(n) for k in range(3)])
        rs.wait_for("anonymous state", lambda: profile(srv, "mid-anon-%d" % (n - 1), True),
                    lambda r: r[0] == 200 and r[1]["events"] == 3)
        send(srv, [{"anonymousId": "mid-anon-%d" % u, "userId": "mid-user-%d" % u,
                    "eventType": "click", "itemId": "m-login", "timestamp": T0 + 5000 + u}
                   for u in range(n)])
        srv.kill()
        srv.start()
        for u in range(0, n, 7):
            rs.wait_for("merged user %d" % u, lambda: profile(srv, "mid-user-%d" % u),
                        lambda r: r[0] == 200 and r[1]["events"] == 4)
            assert profile(srv, "mid-anon-%d" % u, True)[0] == 404
        rs.wait_for("every merge", lambda: profile(srv, "mid-user-%d" % (n - 1)),
                    lambda r: r[0] == 200 and r[1]["events"] == 4)
        srv.stop()
        after = rs.run_cli("state", "dump", "--data", srv.data).stdout
        merge_ins = [r["event"]["eventId"] for r in rs.dump(srv.data)
                     if r["event"].get("eventType") == "merge_in"]
        assert len(merge_ins) == n and len(set(merge_ins)) == n, len(merge_ins)
        shutil.rmtree(os.path.join(srv.data, "checkpoints"))
        scratch = rs.run_cli("state", "dump", "--data", srv.data).stdout
        assert after == scratch, "state after the SIGKILL differs from a replay from scratch"
    finally:
        srv.stop() if srv.proc and srv.proc.poll() is None else None
        srv.cleanup()


def test_merge_and_crash_replay():
    srv = rs.Server(*ARGS)
    srv.start()
    try:
        anon, user = "visitor-cookie-7781", "customer-5521"
        p = anonymous_then_login(srv, anon, user)
        assert items_of(p) == sorted(["anon-item-%d" % i for i in range(5)] + ["login-item"]), p
        assert p["mergedKeys"] == [pseudonym(srv.data, anon, True)], p
        rs.wait_for("anonymous profile gone", lambda: profile(srv, anon, True),
                    lambda r: r[0] == 404)
        # The user's recommendations use what they did before logging in: the anonymous items
        # count as consumed and are not recommended back.
        st, reco = rs.call_json(srv, "GET", "/v1/users/%s/recommendations?count=5" % q(user))
        assert st == 200 and reco["strategy"] != "popular", reco
        # Repeating the login emits no second merge that changes anything.
        send(srv, [{"anonymousId": anon, "userId": user, "eventType": "view",
                    "itemId": "login-item", "timestamp": T0 + 200}])
        rs.wait_for("second event", lambda: profile(srv, user),
                    lambda r: r[0] == 200 and r[1]["events"] == 7)
        srv.kill()
        after_kill = rs.run_cli("state", "dump", "--data", srv.data).stdout
        # Without checkpoints the restart replays everything, the merges included: the
        # processor re-appends the same merge_in (same eventId), which dedup drops.
        shutil.rmtree(os.path.join(srv.data, "checkpoints"))
        srv.start()
        p2 = rs.wait_for("profile after restart", lambda: profile(srv, user),
                         lambda r: r[0] == 200 and r[1]["events"] == 7)[1]
        assert items_of(p2) == items_of(p) and p2["mergedKeys"] == p["mergedKeys"], (p, p2)
        assert profile(srv, anon, True)[0] == 404
        srv.stop()
        clean = rs.run_cli("state", "dump", "--data", srv.data).stdout
        assert clean == after_kill, "state after SIGKILL + replay differs"
        merge_ins = [r for r in rs.dump(srv.data) if r["event"].get("eventType") == "merge_in"]
        assert len(merge_ins) == 1, merge_ins
        # Erasure of the user after the merge covers the anonymous key merged into it (the
        # scan does find the anonymous key before: its records' key is still held).
        p = rs.run_cli("privacy", "scan", "--data", srv.data, "--anonymous", anon, check=False)
        assert p.returncode == 1 and "holds a key" in p.stdout, p.stdout[-2000:]
        srv.start()
        erase(srv, user)
        srv.stop()
        scan_clean(srv.data, user)
        scan_clean(srv.data, anon, anon=True)
    finally:
        srv.stop() if srv.proc and srv.proc.poll() is None else None
        srv.cleanup()


if __name__ == "__main__":
    r = rs.Runner()
    for t in (test_merge_and_crash_replay, test_sigkill_while_merging,
              test_rotation_keeps_history_and_erasure_covers_it):
        r.run(t)
    r.finish()
