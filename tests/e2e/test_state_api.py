"""End-to-end: queryable state (profiles, item stats, similar items, trending) follows the
events a real server receives, and survives a restart through its checkpoint."""
import json
import time
import urllib.parse

import rs

SRV = rs.Server("--partitions", "4", "--fsync", "batch:2", "--checkpoint-interval", "200ms")


def get(path):
    st, _, body = SRV.request("GET", path)
    return st, json.loads(body)


def wait_for(path, pred, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st, body = get(path)
        if st == 200 and pred(body):
            return body
        time.sleep(0.01)
    raise AssertionError("%s never satisfied: %s" % (path, get(path)))


def test_profile_and_items():
    now = int(time.time() * 1000)
    evs = []
    for u in ("alice", "bob", "carol"):
        evs += [{"userId": u, "eventType": "view", "itemId": "shoe", "timestamp": now},
                {"userId": u, "eventType": "click", "itemId": "sock", "timestamp": now + 1000},
                {"userId": u, "eventType": "add_to_cart", "itemId": "lace", "timestamp": now + 2000}]
    evs.append({"userId": "alice", "eventType": "dwell", "itemId": "lace", "value": 4200, "timestamp": now + 3000})
    st, _, reply = SRV.post_json("/v1/events", evs)
    assert st == 200 and reply["accepted"] == len(evs)
    prof = wait_for("/v1/users/alice/profile", lambda b: b["events"] == 4)
    assert [r["itemId"] for r in prof["recent"]] == ["lace", "lace", "sock", "shoe"], prof
    assert prof["engagement"]["1h"]["dwellMs"] == 4200 and prof["engagement"]["1h"]["clicks"] == 1
    assert prof["session"]["count"] == 4
    assert "alice" not in json.dumps(prof)  # pseudonymous key only
    stats = wait_for("/v1/items/sock/stats", lambda b: b["counts"]["1h"]["click"] == 3)
    assert stats["counts"]["24h"]["click"] == 3 and stats["popularity"] > 0
    sim = get("/v1/items/shoe/similar?count=5")[1]
    ids = [s["itemId"] for s in sim["similar"]]
    assert set(ids) == {"sock", "lace"}, sim
    tr = get("/v1/trending?window=1h&type=click&count=2")[1]
    assert tr["items"][0]["itemId"] == "sock" and tr["items"][0]["count"] == 3, tr


def test_unknown_and_bad_queries():
    assert SRV.request("GET", "/v1/users/nobody/profile")[0] == 404
    assert SRV.request("GET", "/v1/items/none/stats")[0] == 404
    assert SRV.request("GET", "/v1/items/none/similar")[0] == 404
    assert SRV.request("GET", "/v1/trending?window=2y")[0] == 400
    assert SRV.request("GET", "/v1/items/shoe/similar?count=0")[0] == 400
    # Ids with reserved characters are percent-encoded in the path.
    st, _, _ = SRV.post_json("/v1/events", [{"userId": "a/b c", "eventType": "view", "itemId": "x/y"}])
    assert st == 200
    wait_for("/v1/users/%s/profile" % urllib.parse.quote("a/b c", safe=""), lambda b: b["events"] == 1)
    wait_for("/v1/items/%s/stats" % urllib.parse.quote("x/y", safe=""), lambda b: True)


def test_state_survives_restart():
    before = get("/v1/users/alice/profile")[1]
    SRV.stop()
    SRV.start()
    after = get("/v1/users/alice/profile")[1]
    assert after == before
    dump = rs.run_cli("state", "dump", "--data", SRV.data).stdout
    assert "# partition 0" in dump and before["userKey"] in dump


def main():
    rs.run_suite(SRV, [test_profile_and_items, test_unknown_and_bad_queries, test_state_survives_restart])


if __name__ == "__main__":
    main()
