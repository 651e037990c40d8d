"""End-to-end: consent (PUT/GET /v1/users/{id}/consent) enforced at ingest and in
recommendations, the consent control event clearing state (also across a SIGKILL and a
restart), the hash-chained audit log (`recstream audit verify` catches an edited and a deleted
line) and data minimisation (truncated IPs, user agents reduced to a device class).

Three servers: the default one (policy drop), one with --consent-policy aggregate and one with
--consent-required (strict opt-in). Each test uses its own user and item ids."""
import json
import os
import re
import shutil
import signal
import tempfile
import time
import urllib.parse

import rs

ARGS = ("--partitions", "2", "--fsync", "batch:2", "--checkpoint-interval", "200ms",
        "--reco-refresh", "200ms")
SRV = rs.Server(*ARGS)
AGG = rs.Server(*(ARGS + ("--consent-policy", "aggregate", "--capture-ip")))
REQ = rs.Server(*(ARGS + ("--consent-required", "--ip", "drop")))
T0 = int(time.time() * 1000)


def q(s):
    return urllib.parse.quote(s, safe="")


def call(method, url, body=None, srv=SRV):
    return rs.call_json(srv, method, url, body)


def send(events, srv=SRV):
    st, _, body = srv.post_json("/v1/events", events)
    assert st == 200, body
    return body


def ev(user, etype, item, ts, **kw):
    e = {"userId": user, "eventType": etype, "itemId": item, "timestamp": ts}
    e.update(kw)
    return e


def consent(user, analytics, personalization, srv=SRV, source="banner"):
    st, body = call("PUT", "/v1/users/%s/consent" % q(user),
                    {"analytics": analytics, "personalization": personalization, "source": source,
                     "ts": T0}, srv)
    assert st == 200, body
    return body


def wait_for(what, fetch, pred, timeout=10):
    return rs.wait_for(what, fetch, pred, timeout, 0.02)


def recs(user, srv=SRV):
    st, r = call("GET", "/v1/users/%s/recommendations?count=5" % q(user), srv=srv)
    assert st == 200, r
    return r


def profile_status(user, srv=SRV):
    return call("GET", "/v1/users/%s/profile" % q(user), srv=srv)[0]


def high_water(srv=SRV):
    st, _, body = srv.request("GET", "/metrics")
    assert st == 200
    return sum(int(m) for m in re.findall(r'recstream_log_high_water\{partition="\d+"\} (\d+)',
                                          body.decode()))


def history_for(user, items, ts, srv=SRV):
    """Gives user a history over items and makes co-visitation neighbours for them; returns
    the user's partition."""
    evs = []
    for k, other in enumerate(("%s-peer1" % user, "%s-peer2" % user)):
        evs += [ev(other, "view", it, ts + 10 * j + k) for j, it in enumerate(items + ["%s-x" % user])]
    evs += [ev(user, "view", it, ts + 100 + j) for j, it in enumerate(items)]
    body = send(evs, srv)
    wait_for("personalised list for " + user, lambda: recs(user, srv),
             lambda r: r["strategy"] == "personalized")
    return body["offsets"][-1]["partition"]


MARKS = [0]


def applied_through(partition, srv=SRV):
    """Waits until everything stored in partition so far is applied: a new user's page_view
    in that partition shows in their profile (a partition is applied in order)."""
    while True:
        MARKS[0] += 1
        user = "zz-mark-%d" % MARKS[0]
        body = send([{"userId": user, "eventType": "page_view"}], srv)
        if body["offsets"][0]["partition"] == partition:
            break
    wait_for("marker " + user, lambda: profile_status(user, srv), lambda s: s == 200)


# ---- the default server: policy drop --------------------------------------------------------

def test_withdrawal_stops_personalisation_at_once():
    history_for("alice", ["a1", "a2"], T0)
    key = call("GET", "/v1/users/alice/profile")[1]["userKey"]
    body = consent("alice", True, False)
    assert body["consent"]["personalization"] is False and body["allowed"] is False, body
    # Right after the reply: no personalised list, with the reason.
    r = recs("alice")
    assert r["strategy"] != "personalized" and r["coldStart"] is True, r
    assert r["personalization"] is False and "consent" in r["reason"], r
    assert profile_status("alice") == 404  # hidden at once (the log clears it: see below)
    # Events after the withdrawal are accepted but not stored (policy drop).
    hw = high_water()
    body = send([ev("alice", "click", "a1", T0 + 1000), ev("alice", "view", "a2", T0 + 1001)])
    assert body["accepted"] == 2 and body["droppedConsent"] == 2 and body["offsets"] == [None, None], body
    st, _, rest = SRV.produce([{"value": ev("alice", "view", "a1", T0 + 1002)}])
    assert st == 200 and rest["dropped_consent"] == 1, rest
    assert rest["offsets"] == [{"partition": None, "offset": None, "error_code": None, "error": None}], rest
    assert high_water() == hw
    time.sleep(0.3)
    assert profile_status("alice") == 404
    # Consent history and the audit log never hold the raw id or the pseudonym.
    st, view = call("GET", "/v1/users/alice/consent")
    assert st == 200 and view["consent"]["source"] == "banner" and len(view["history"]) == 1, view
    # The audit log is sealed: its bytes hold no entry in clear (not even the action); opened
    # with the data key (`audit tail`), the entries name neither.
    audit = open(os.path.join(SRV.data, "privacy", "audit.log"), "rb").read()
    assert b"alice" not in audit and key.encode() not in audit
    assert b"consent" not in audit and b'"seq"' not in audit and b"{" not in audit
    # The consent store (journal, snapshot when there is one) is sealed too: no pseudonym.
    cdir = os.path.join(SRV.data, "privacy", "consent")
    names = os.listdir(cdir)
    assert "journal.ndjson" in names, names
    for name in names:
        raw = open(os.path.join(cdir, name), "rb").read()
        assert key.encode() not in raw and b"alice" not in raw and b"banner" not in raw, name
    opened = rs.run_cli("audit", "tail", "--data", SRV.data, "--lines", "1000").stdout
    assert '"action":"consent.update"' in opened
    assert "alice" not in opened and key not in opened


def test_regrant_starts_fresh():
    consent("alice", True, True)
    body = send([ev("alice", "view", "a9", T0 + 2000)])
    assert body["droppedConsent"] == 0 and body["offsets"][0] is not None, body
    prof = wait_for("alice's fresh profile", lambda: call("GET", "/v1/users/alice/profile"),
                    lambda v: v[0] == 200)[1]
    assert prof["events"] == 1 and [x["itemId"] for x in prof["recent"]] == ["a9"], prof
    st, view = call("GET", "/v1/users/alice/consent")
    assert [h["personalization"] for h in view["history"]] == [False, True], view


def test_analytics_false_drops_regardless():
    consent("amy", False, True)
    body = send([ev("amy", "view", "a1", T0)])
    assert body["droppedConsent"] == 1, body


def test_bad_consent_bodies():
    url = "/v1/users/val/consent"
    st, body = call("PUT", url, '{"analytics": tru')
    assert st == 400 and "byte" in body["message"], body
    st, body = call("PUT", url, {"analytics": "yes", "personalization": True})
    assert st == 422 and "/analytics" in body["message"], body
    st, body = call("PUT", url, {"analytics": True})
    assert st == 422 and "/personalization" in body["message"], body
    st, body = call("PUT", url, {"analytics": True, "personalization": True, "ts": "soon"})
    assert st == 422 and "/ts" in body["message"], body
    st, body = call("PUT", url, {"analytics": True, "personalization": True, "extra": 1})
    assert st == 422 and "unknown field" in body["message"], body
    st, body = call("GET", url)
    assert st == 200 and body["consent"] is None and body["history"] == [], body
    # Clients cannot forge the control event.
    st, _, body = SRV.post_json("/v1/events", [{"userId": "val", "eventType": "consent"}])
    assert st == 422 and "server" in body["errors"][0]["message"], body


def test_minimisation():
    ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit Mobile/15E148"
    send([ev("mini", "view", "m1", T0, eventId="mini-1",
             context={"ip": "203.0.113.77", "userAgent": ua}),
          ev("mini", "view", "m2", T0, eventId="mini-2",
             context={"ip": "2001:db8:abcd:12::1", "userAgent": "Googlebot/2.1", "device": "tv"}),
          ev("mini", "view", "m3", T0, eventId="mini-3", context={"ip": "not-an-ip"})])
    out = rs.run_cli("log", "tail", "--data", SRV.data, "--lines", "50").stdout
    events = [json.loads(line)["event"] for line in out.splitlines()]
    recs_ = {e["eventId"]: e for e in events if e["eventId"].startswith("mini-")}
    assert len(recs_) == 3, out
    assert recs_["mini-1"]["context"] == {"ip": "203.0.113.0", "device": "mobile"}, recs_
    assert recs_["mini-2"]["context"] == {"ip": "2001:db8:abcd::", "device": "tv"}, recs_
    assert "context" not in recs_["mini-3"], recs_
    assert "iPhone" not in out and "Googlebot" not in out and "203.0.113.77" not in out
    # Rejected events are dead-lettered minimised too, and not at all without consent.
    st, _, body = SRV.post_json("/v1/events", [
        {"userId": "mini", "eventType": "warp", "eventId": "mini-dl", "context": {"ip": "203.0.113.77", "userAgent": ua}},
        {"userId": "amy", "eventType": "warp", "eventId": "amy-dl"}])
    assert st == 422, body
    st, _, body = SRV.request("GET", "/v1/deadletters")
    dls = {d["event"].get("eventId"): d["event"] for d in json.loads(body)["deadletters"]}
    assert dls["mini-dl"]["context"] == {"ip": "203.0.113.0", "device": "mobile"}, dls
    assert "amy-dl" not in dls, dls


def metric(name, srv=SRV):
    st, _, body = srv.request("GET", "/metrics")
    m = re.search(r"^%s (\d+)$" % name, body.decode(), re.M)
    return int(m.group(1))


def test_schema_pii_marks_and_undeclared_properties():
    schema = {"type": "object", "additionalProperties": False,
              "properties": {"email": {"type": "string", "x-pii": True, "x-retention": "short"},
                             "plan": {"type": "string"}}}
    st, body = call("PUT", "/v1/schemas/signup/1-0-0", schema)
    assert st in (200, 201), body
    st, view = call("GET", "/v1/schemas/signup/latest?view=privacy")
    assert st == 200 and view == {"name": "signup", "version": "1-0-0", "closed": True,
                                  "pii": [{"property": "email", "retention": "short"}]}, view
    pii, dropped = metric("recstream_pii_fields_total"), metric("recstream_fields_dropped_total")
    body = send([{"userId": "sig", "eventType": "signup", "eventId": "sig-1",
                  "properties": {"email": "a@example.com", "plan": "pro", "extra": 1, "more": "x"}}])
    assert body["accepted"] == 1 and body["rejected"] == 0, body
    stored = [r["event"] for r in rs.dump(SRV.data) if r["event"]["eventId"] == "sig-1"]
    assert stored[0]["properties"] == {"email": "a@example.com", "plan": "pro"}, stored
    assert metric("recstream_pii_fields_total") == pii + 1
    assert metric("recstream_fields_dropped_total") == dropped + 2
    # Declared properties still validate: a wrong type is rejected.
    st, _, body = SRV.post_json("/v1/events", [{"userId": "sig", "eventType": "signup",
                                                "properties": {"plan": 5, "extra": 1}}])
    assert st == 422 and body["errors"][0]["field"] == "properties/plan", body


def test_state_cleared_after_sigkill_and_restart():
    p = history_for("dave", ["d1", "d2"], T0 + 5000)
    time.sleep(0.4)  # a checkpoint that holds dave's state
    consent("dave", True, False)
    SRV.kill()  # right after the acknowledged withdrawal, before any clean checkpoint
    SRV.start()
    r = recs("dave")
    assert r["strategy"] != "personalized" and r["personalization"] is False, r
    assert profile_status("dave") == 404  # hidden by the consent check at once
    # Re-granting lifts the check, so the profile route shows the real state: gone, because
    # the control event was replayed after the restart.
    consent("dave", True, True)
    for part in (0, 1):
        applied_through(part)
    assert profile_status("dave") == 404
    assert profile_status("dave-peer1") == 200  # other users keep their state
    assert recs("dave")["strategy"] != "personalized"
    st, view = call("GET", "/v1/users/dave/consent")
    assert st == 200 and [h["personalization"] for h in view["history"]] == [False, True], view
    # And after a full replay from an empty state (no checkpoints) too.
    SRV.stop()
    shutil.rmtree(os.path.join(SRV.data, "checkpoints"), ignore_errors=True)
    SRV.start()
    for part in (0, 1):
        applied_through(part)
    assert profile_status("dave") == 404 and profile_status("dave-peer1") == 200


def test_audit_chain_verifies_and_detects_tampering():
    ok = rs.run_cli("audit", "verify", "--data", SRV.data)
    m = re.search(r"OK .*: (\d+) entries, head ([0-9a-f]{64})", ok.stdout)
    assert m and int(m.group(1)) >= 6, ok.stdout
    tail = rs.run_cli("audit", "tail", "--data", SRV.data, "--lines", "2").stdout.splitlines()
    assert len(tail) == 2 and json.loads(tail[-1])["hash"] == m.group(2), tail
    lines = open(os.path.join(SRV.data, "privacy", "audit.log"), "rb").read().splitlines(True)
    tmp = tempfile.mkdtemp(prefix="rs-audit-")
    try:
        os.makedirs(os.path.join(tmp, "privacy"))
        path = os.path.join(tmp, "privacy", "audit.log")
        dk = os.path.join(SRV.data, "privacy", "data.key")
        open(path, "wb").write(b"".join(lines))
        p = rs.run_cli("audit", "verify", "--data", tmp, "--data-key", dk, check=False)
        assert p.returncode == 0 and m.group(2) in p.stdout, p.stdout
        # One byte of the sealed text of line 3 flipped (a base64 digit swapped for another).
        edited = list(lines)
        line = bytearray(edited[2])
        i = line.index(b" ") + 30
        line[i:i + 1] = b"B" if line[i:i + 1] == b"A" else b"A"
        edited[2] = bytes(line)
        open(path, "wb").write(b"".join(edited))
        p = rs.run_cli("audit", "verify", "--data", tmp, "--data-key", dk, check=False)
        assert p.returncode == 1 and "line 3" in p.stdout and "authenticate" in p.stdout, p.stdout
        # A sealed line removed: the next one's seq is not the expected one.
        open(path, "wb").write(b"".join(lines[:3] + lines[4:]))
        p = rs.run_cli("audit", "verify", "--data", tmp, "--data-key", dk, check=False)
        assert p.returncode == 1 and "line 4" in p.stdout and "missing" in p.stdout, p.stdout
        # Line 3 swapped with line 4 (each still opens under its own seq): order is proven.
        open(path, "wb").write(b"".join(lines[:2] + [lines[3], lines[2]] + lines[4:]))
        p = rs.run_cli("audit", "verify", "--data", tmp, "--data-key", dk, check=False)
        assert p.returncode == 1 and "line 3" in p.stdout, p.stdout
        # Without the data key nothing opens.
        os.remove(os.path.join(tmp, "privacy", "data.key")) if os.path.exists(
            os.path.join(tmp, "privacy", "data.key")) else None
        p = rs.run_cli("audit", "verify", "--data", tmp, check=False)
        assert p.returncode == 2, p.stdout
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- policy aggregate --------------------------------------------------------------------------

def test_aggregate_policy_counts_items_only():
    AGG.start()
    try:
        consent("gina", True, False, AGG)
        body = send([ev("gina", "view", "g1", T0), ev("gina", "click", "g1", T0 + 1)], AGG)
        assert body["droppedConsent"] == 0 and None not in body["offsets"], body
        stats = wait_for("g1 stats", lambda: call("GET", "/v1/items/g1/stats", srv=AGG),
                         lambda v: v[0] == 200 and v[1]["counts"]["1h"]["click"] == 1)[1]
        assert stats["popularity"] > 0, stats
        # Re-granting lifts the profile route's consent check: the processor, which applied
        # both events (the stats show them), never created gina.
        consent("gina", True, True, AGG)
        assert profile_status("gina", AGG) == 404
        stored = [r["event"] for r in rs.dump(AGG.data) if r["event"].get("itemId") == "g1"]
        assert len(stored) == 2 and all(r.get("anonymous") is True for r in stored), stored
        # --capture-ip: the client's address (first X-Forwarded-For, else the connection's),
        # truncated like any context.ip; an ip the event carries wins.
        hdr = {"Content-Type": "application/json", "X-Forwarded-For": "198.51.100.23, 10.0.0.1"}
        st, _, _ = AGG.request("POST", "/v1/events",
                               [ev("cap", "view", "c1", T0, eventId="cap-1"),
                                ev("cap", "view", "c2", T0, eventId="cap-2",
                                   context={"ip": "192.0.2.9", "locale": "de"})], hdr)
        assert st == 200
        send([ev("cap", "view", "c3", T0, eventId="cap-3")], AGG)
        got = {r["event"]["eventId"]: r["event"].get("context") for r in rs.dump(AGG.data)
               if r["event"].get("eventId", "").startswith("cap-")}
        assert got == {"cap-1": {"ip": "198.51.100.0"}, "cap-2": {"ip": "192.0.2.0", "locale": "de"},
                       "cap-3": {"ip": "127.0.0.0"}}, got
    finally:
        AGG.stop()
        AGG.cleanup()


# ---- strict opt-in ------------------------------------------------------------------------------

def test_consent_required_for_unknown_users():
    REQ.start()
    try:
        body = send([ev("nina", "view", "n1", T0)], REQ)
        assert body["droppedConsent"] == 1, body
        r = recs("nina", REQ)
        assert r["personalization"] is False and r["coldStart"] is True, r
        view = consent("nina", True, True, REQ)
        assert view["allowed"] is True, view
        body = send([ev("nina", "view", "n1", T0 + 1, eventId="nina-1",
                        context={"ip": "203.0.113.5", "page": "/x"})], REQ)
        assert body["droppedConsent"] == 0, body
        stored = [r["event"] for r in rs.dump(REQ.data) if r["event"]["eventId"] == "nina-1"]
        assert stored[0]["context"] == {"page": "/x"}, stored  # --ip drop
        wait_for("nina's profile", lambda: profile_status("nina", REQ), lambda s: s == 200)
    finally:
        REQ.stop()
        REQ.cleanup()


def main():
    runner = rs.Runner()
    SRV.start()
    try:
        for t in (test_withdrawal_stops_personalisation_at_once, test_regrant_starts_fresh,
                  test_analytics_false_drops_regardless, test_bad_consent_bodies, test_minimisation,
                  test_schema_pii_marks_and_undeclared_properties,
                  test_state_cleared_after_sigkill_and_restart,
                  test_audit_chain_verifies_and_detects_tampering):
            runner.run(t)
    finally:
        SRV.stop()
        SRV.cleanup()
    runner.run(test_aggregate_policy_counts_items_only)
    runner.run(test_consent_required_for_unknown_users)
    runner.finish()


if __name__ == "__main__":
    main()
