"""End-to-end: recommendations (/v1/users/{id}/recommendations), stated preferences
(/v1/users/{id}/preferences), similar items (/v1/items/{id}/similar), CTR attribution
(/v1/stats/ctr) and A/B experiments (--experiment), driven through a real server.

Two servers: the main one (default weights, a fast model refresh and checkpoints) and an
experiment one (--experiment, --diversity-cap 3, --exploration 0). Each test uses its own item
and user ids. Test order matters on the main server: the cold-start test runs first on an
empty server, and no catalog item on it has a recent publishedAt (so no item is "fresh" and the
exploration slot of a list is filled from the ranked candidates)."""
import json
import math
import os
import re
import shutil
import signal
import tempfile
import time
import urllib.parse

import rs

T0 = int(time.time() * 1000)
SRV = rs.Server("--partitions", "4", "--fsync", "batch:2", "--checkpoint-interval", "200ms",
                "--reco-refresh", "200ms")
EXP_DIR = tempfile.mkdtemp(prefix="rs-e2e-exp-")
EXP_FILE = os.path.join(EXP_DIR, "exp1.json")
EXPERIMENT = {"name": "exp1",
              "variants": [{"name": "control", "share": 50, "weights": {}},
                           {"name": "trend", "share": 50, "weights": {"trending": 3}}]}
XSRV = rs.Server("--partitions", "4", "--fsync", "batch:2", "--checkpoint-interval", "200ms",
                 "--reco-refresh", "200ms", "--experiment", EXP_FILE, "--diversity-cap", "3",
                 "--exploration", "0")

SOURCES = {"session", "covisit", "collab", "category", "content", "trending", "popular",
           "context", "fresh"}
CODES = {"personalized": "pers", "preferences": "pref", "popular": "pop"}
REPLY_KEYS = {"recId", "userId", "items", "strategy", "coldStart", "variant", "tookUs"}
CTR_KEYS = {"strategy", "variant", "impressions", "clicks", "carts", "purchases", "ctr", "ctrLow",
            "ctrHigh", "conversionRate"}
Z95 = 1.959963984540054


# ---- helpers ------------------------------------------------------------------------------

def q(s):
    return urllib.parse.quote(s, safe="")


def call(method, url, body=None, srv=SRV):
    return rs.call_json(srv, method, url, body)


def put_item(item_id, srv=SRV, **fields):
    st, body = call("PUT", "/v1/items/" + q(item_id), fields, srv)
    assert st in (200, 201), body
    return body


def ev(user, etype, item, ts=None, **kw):
    e = {"userId": user, "eventType": etype, "itemId": item, "timestamp": T0 if ts is None else ts}
    e.update(kw)
    return e


def send(events, srv=SRV):
    st, _, body = srv.post_json("/v1/events", events)
    assert st == 200 and body["accepted"] == len(events), body
    return body


MARKS = [0]


def settle(srv=SRV, model=True):
    """Waits until every event sent so far is applied and, with model, until the background
    model was rebuilt after that. A partition is applied in order, so once a page_view of a
    new user (no item: it changes no recommendation) in each partition shows in that user's
    profile, everything sent before is applied. A catalog category made after that, once a
    preference for it is served, shows that a later model exists."""
    MARKS[0] += 1
    n = MARKS[0]
    nparts = int(srv.args[srv.args.index("--partitions") + 1])
    users, parts, k = [], set(), 0
    while len(parts) < nparts and k < 100 * nparts:
        batch = ["zz-mark-%d-%d" % (n, k + i) for i in range(2 * nparts)]
        k += len(batch)
        body = send([{"userId": u, "eventType": "page_view"} for u in batch], srv)
        for u, o in zip(batch, body["offsets"]):
            if o["partition"] not in parts:
                parts.add(o["partition"])
                users.append(u)
    assert len(parts) == nparts, parts
    for u in users:
        wait_for("marker " + u, lambda: call("GET", "/v1/users/%s/profile" % u, srv=srv)[0],
                 lambda st: st == 200)
    if not model:
        return
    cat, user = "zz-model-%d" % n, "zz-model-user-%d" % n
    put_item(cat, srv, title="model marker", categories=[cat], available=False)
    assert call("PUT", "/v1/users/%s/preferences" % user, {"categories": [cat]}, srv)[0] == 200
    wait_for("a model with " + cat, lambda: recs(user, 1, srv),
             lambda r: r["strategy"] == "preferences")


def check_reply(r, user, count):
    """The shape every recommendation reply must have."""
    assert set(r) == REPLY_KEYS, r
    assert r["userId"] == user, r
    assert r["strategy"] in CODES, r
    assert r["coldStart"] is (r["strategy"] != "personalized"), r
    assert isinstance(r["tookUs"], int) and r["tookUs"] >= 0, r
    vname = r["variant"] if r["variant"] == "default" else r["variant"].split(":", 1)[1]
    want = r"%s\.%s\.[0-9a-f]{16}" % (CODES[r["strategy"]], re.escape(vname))
    assert re.fullmatch(want, r["recId"]), r
    assert len(r["items"]) <= count, r
    ids = [it["itemId"] for it in r["items"]]
    assert len(ids) == len(set(ids)), "an item is recommended twice: %s" % r
    for it in r["items"]:
        assert set(it) == {"itemId", "score", "source", "reasons"}, it
        assert isinstance(it["score"], (int, float)) and math.isfinite(it["score"]), it
        assert it["source"] in SOURCES, it
        assert 1 <= len(it["reasons"]) <= 2, it
        assert all(isinstance(x, str) and x.strip() for x in it["reasons"]), it


def recs(user, count=10, srv=SRV, params=None):
    qs = {"count": count}
    qs.update(params or {})
    st, r = call("GET", "/v1/users/%s/recommendations?%s" % (q(user), urllib.parse.urlencode(qs)),
                 srv=srv)
    assert st == 200, r
    check_reply(r, user, count)
    return r


def ids(r):
    return [it["itemId"] for it in r["items"]]


def item(r, item_id):
    for it in r["items"]:
        if it["itemId"] == item_id:
            return it
    raise AssertionError("%s not recommended: %s" % (item_id, r))


def wait_for(what, fetch, pred, timeout=60):
    """rs.wait_for, polling every 20 ms. The timeout is generous: under ASan on a loaded
    two-core machine a model rebuild can take seconds, and it returns as soon as pred holds."""
    return rs.wait_for(what, fetch, pred, timeout, 0.02)


def similar(item_id, count=10, srv=SRV):
    st, r = call("GET", "/v1/items/%s/similar?count=%d" % (q(item_id), count), srv=srv)
    assert st == 200, r
    assert r["itemId"] == item_id and len(r["similar"]) <= count, r
    for s in r["similar"]:
        assert set(s) == {"itemId", "score", "source", "reasons"}, s
        assert s["itemId"] != item_id and s["source"] in SOURCES, s
        assert s["reasons"] and all(x.strip() for x in s["reasons"]), s
    return r


def ctr(window="1h", srv=SRV):
    st, r = call("GET", "/v1/stats/ctr?window=" + window, srv=srv)
    assert st == 200, r
    assert r["window"] == window, r
    for g in r["groups"]:
        assert set(g) == CTR_KEYS, g
    return r


def group(report, strategy, variant):
    for g in report["groups"]:
        if g["strategy"] == strategy and g["variant"] == variant:
            return g
    return None


def wilson(k, n):
    p = k / n
    den = 1 + Z95 * Z95 / n
    centre = (p + Z95 * Z95 / (2 * n)) / den
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95 * Z95 / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_p(k1, n1, k2, n2):
    p1, p2, p = k1 / n1, k2 / n2, (k1 + k2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return math.erfc(abs(p1 - p2) / se / math.sqrt(2))


def close(a, b, tol=1e-6):
    """Rates and scores are replied rounded to 6 decimals."""
    return abs(a - b) <= tol * max(1.0, abs(b))


def check_rates(g, imp, clicks, carts=0, purchases=0):
    assert (g["impressions"], g["clicks"], g["carts"], g["purchases"]) == \
        (imp, clicks, carts, purchases), g
    assert close(g["ctr"], clicks / imp), g
    assert close(g["conversionRate"], purchases / imp), g
    lo, hi = wilson(clicks, imp)
    assert close(g["ctrLow"], lo) and close(g["ctrHigh"], hi), (g, lo, hi)
    assert g["ctrLow"] < g["ctr"] < g["ctrHigh"], g


def restart(srv, sig):
    """Stops srv with sig (checking a clean exit and a clean sanitizer log), starts it and
    waits until the processors have replayed the log tail: /readyz only means the log is
    recovered, the state catches up from the checkpoint asynchronously."""
    rc = srv.stop(sig)
    log = srv.log()
    assert "Sanitizer" not in log and "runtime error" not in log, log[-3000:]
    if sig == signal.SIGTERM:
        assert rc == 0, "exit %s:\n%s" % (rc, log[-3000:])
    srv.start()
    settle(srv)


# ---- main server --------------------------------------------------------------------------

def test_cold_start_and_context():
    # Nothing has happened yet: a new user gets the popular strategy and an empty list.
    r = recs("cs-newcomer")
    assert r["strategy"] == "popular" and r["coldStart"] is True and r["items"] == [], r
    assert r["variant"] == "default" and r["recId"].startswith("pop.default."), r
    put_item("cs-1", title="Blue mug", categories=["cs-mugs"])
    put_item("cs-2", title="Red mug", categories=["cs-mugs"])
    put_item("cs-3", title="Green mug", categories=["cs-mugs"])
    put_item("cs-tv", title="Remote", categories=["cs-screens"])
    put_item("cs-de", title="Bratwurst", categories=["cs-food"])
    evs = [ev("cs-u%d" % u, "view", "cs-1") for u in range(5)]
    evs += [ev("cs-u%d" % u, "view", "cs-2") for u in range(3)]
    evs += [ev("cs-u0", "view", "cs-3")]
    evs += [ev("cs-t%d" % u, "purchase", "cs-tv", context={"device": "tv"}) for u in range(4)]
    evs += [ev("cs-d%d" % u, "purchase", "cs-de", context={"locale": "de-DE"}) for u in range(4)]
    send(evs)
    settle()
    r = recs("cs-newcomer")
    assert {"cs-1", "cs-2", "cs-3", "cs-tv", "cs-de"} <= set(ids(r)), r
    assert r["strategy"] == "popular" and r["coldStart"] is True, r
    assert r["recId"].startswith("pop.default."), r
    assert ids(r).index("cs-1") < ids(r).index("cs-3"), r  # 5 viewers before 1
    assert recs("cs-newcomer")["recId"] != r["recId"], "recIds must be unique"
    assert not any("popular on" in x for it in r["items"] for x in it["reasons"]), r
    # Asking for recommendations does not create the user.
    assert call("GET", "/v1/users/cs-newcomer/profile")[0] == 404
    # Context popularity: the device / locale of the request brings what is popular there.
    r = recs("cs-newcomer", params={"context.device": "tv"})
    assert "popular on tv" in item(r, "cs-tv")["reasons"], r
    r = recs("cs-newcomer", params={"context.locale": "de-DE"})
    assert "popular in de-DE" in item(r, "cs-de")["reasons"], r
    assert not any("popular on" in x for it in r["items"] for x in it["reasons"]), r


def test_request_errors():
    for bad in ("0", "101", "-1", "ten", ""):
        st, body = call("GET", "/v1/users/x/recommendations?count=" + bad)
        assert st == 400 and body["error_code"] == 40009, (bad, body)
    st, body = call("POST", "/v1/users/x/recommendations", "{}")
    assert st == 405 and body["error_code"] == 40501, body
    st, body = call("GET", "/v1/users/x/preferences")
    assert st == 405 and body["error_code"] == 40501, body
    st, body = call("GET", "/v1/users/x/nothing-here")
    assert st == 404 and body["error_code"] == 40400, body
    # Ids with reserved characters are percent-encoded; the reply echoes the raw id.
    r = recs("a/b c+é", count=3)
    assert r["userId"] == "a/b c+é", r
    assert len(recs("cs-newcomer", count=1)["items"]) == 1


def test_exclusions_and_reasons():
    put_item("ex-a", title="Alpha Lamp", categories=["ex-lamps"])
    put_item("ex-c", title="Gamma Shade", categories=["ex-shades"])
    put_item("ex-d", title="Delta Bulb", categories=["ex-lamps"])
    put_item("ex-e", title="Epsilon Cord", categories=["ex-cords"])
    # ex-b is not in the catalog: reasons name it by id.
    evs = []
    for u in range(6):
        s, t = "ex-s%d" % u, T0 - 60000
        evs += [ev("ex-o%d" % u, "view", "ex-a", t, sessionId=s),
                ev("ex-o%d" % u, "view", "ex-b", t + 1000, sessionId=s)]
        if u < 3:
            evs += [ev("ex-o%d" % u, "view", it, t + 2000 + k, sessionId=s)
                    for k, it in enumerate(("ex-c", "ex-d", "ex-e"))]
    send(evs)
    settle(model=False)
    top = similar("ex-b")["similar"]
    assert top[0]["itemId"] == "ex-a" and top[0]["source"] == "covisit", top
    # The user views ex-a and ex-b, puts ex-d in the cart and was shown ex-e (an impression is
    # not an interaction: ex-e stays recommendable).
    send([ev("ex-user", "view", "ex-a", T0), ev("ex-user", "view", "ex-b", T0 + 1000),
          ev("ex-user", "add_to_cart", "ex-d", T0 + 2000),
          ev("ex-user", "impression", "ex-e", T0 + 3000)])
    settle()
    r = recs("ex-user", 20)
    assert r["strategy"] == "personalized" and {"ex-c", "ex-e"} <= set(ids(r)), r
    assert r["coldStart"] is False and r["recId"].startswith("pers.default."), r
    for gone in ("ex-a", "ex-b", "ex-d"):
        assert gone not in ids(r), "%s was interacted with but is recommended: %s" % (gone, r)
    # Reasons name what the user did, by title or by id (ex-b is not in the catalog).
    reasons = item(r, "ex-c")["reasons"]
    assert any(("Alpha Lamp" in x or "ex-b" in x or "Delta Bulb" in x) and
               re.match(r"(because you viewed|viewed together with|people who liked|similar to) ",
                        x) for x in reasons), reasons
    # Explicit excludes.
    r = recs("ex-user", 20, params={"exclude": "ex-c"})
    assert "ex-c" not in ids(r) and "ex-e" in ids(r), r
    r = recs("ex-user", 20, params={"exclude": "ex-e,,ex-c"})
    assert not {"ex-c", "ex-e"} & set(ids(r)), r
    r = recs("cs-newcomer", 20, params={"exclude": "cs-1"})
    assert "cs-1" not in ids(r) and "cs-2" in ids(r), r


def test_category_filter():
    cat = "cf C++ & Co/Ω"
    put_item("cf-1", title="one", categories=[cat, "cf-other"])
    put_item("cf-2", title="two", categories=[cat])
    put_item("cf-3", title="three", categories=["cf-other"])
    send([ev("cf-u%d" % u, "view", i) for u in range(2) for i in ("cf-1", "cf-2", "cf-3")])
    settle()
    r = recs("cf-new", params={"category": cat})
    assert set(ids(r)) == {"cf-1", "cf-2"}, r
    r = recs("cf-new", params={"category": "cs-mugs"})
    assert set(ids(r)) == {"cs-1", "cs-2", "cs-3"}, r
    for it in r["items"]:
        assert "cs-mugs" in call("GET", "/v1/items/" + q(it["itemId"]))[1]["categories"]
    # A personalized user: the filter applies on top of the exclusions.
    r = recs("ex-user", params={"category": "ex-lamps"})
    assert ids(r) == [], r  # ex-a viewed, ex-d in the cart
    r = recs("ex-user", params={"category": "ex-shades"})
    assert ids(r) == ["ex-c"], r
    assert recs("cf-new", params={"category": "no-such-category"})["items"] == []
    # An empty category means no filter.
    assert len(recs("cf-new", params={"category": ""})["items"]) > 2


def test_unavailable_items():
    for i in (1, 2, 3):
        put_item("un-%d" % i, title="un %d" % i, categories=["un-cat"])
    evs = [ev("un-u%d" % u, "view", "un-1", T0 + u) for u in range(5)]
    evs += [ev("un-u%d" % u, "view", "un-2", T0 + 100 + u) for u in range(3)]
    evs += [ev("un-u0", "view", "un-3", T0 + 200)]
    send(evs)
    settle()
    r = recs("un-new", params={"category": "un-cat"})
    assert ids(r) == ["un-1", "un-2", "un-3"], r
    assert "un-1" in ids_of(similar("un-2")), similar("un-2")
    put_item("un-1", title="un 1", categories=["un-cat"], available=False)
    # The catalog is read on every request: no model rebuild is needed.
    r = recs("un-new", params={"category": "un-cat"})
    assert set(ids(r)) == {"un-2", "un-3"}, r
    assert "un-1" not in ids(recs("un-new", 100)), "unavailable item recommended"
    assert "un-1" not in ids(recs("un-u1", 100)), "unavailable item recommended (personalized)"
    assert "un-1" not in ids_of(similar("un-2", 100)), "unavailable item listed as similar"
    # Still unavailable after the model was rebuilt.
    settle()
    assert "un-1" not in ids(recs("un-new", 100))
    put_item("un-1", title="un 1", categories=["un-cat"], available=True)
    settle()
    assert ids(recs("un-new", params={"category": "un-cat"})) == ["un-1", "un-2", "un-3"]


def test_diversity_default_cap():
    for i in range(8):
        put_item("dv-a%d" % i, title="dv a%d" % i, categories=["dv-a"])
    # dv-a items are the most bought items of the server: without the cap they would fill lists.
    send([ev("dv-u%d" % u, "purchase", "dv-a%d" % i, T0 + i) for u in range(8) for i in range(8)])
    settle()
    cats = lambda r: [i for i in ids(r) if i.startswith("dv-a")]  # noqa: E731
    for count, cap in ((10, 5), (4, 2), (5, 3), (2, 2)):
        r = recs("dv-new", count)
        assert len(r["items"]) == count, r
        n = len(cats(r))
        assert n <= cap, "%d dv-a items in a list of %d (cap %d): %s" % (n, count, cap, ids(r))
        assert n == cap, r
    # Relaxed when the list would be short otherwise.
    r = recs("dv-new", 8, params={"category": "dv-a"})
    assert sorted(ids(r)) == ["dv-a%d" % i for i in range(8)], r


def test_impressions_are_not_interest():
    """Being shown is not being liked: items that only had impressions are neither trending
    nor popular (otherwise every recommendation would promote itself)."""
    put_item("im-1", title="shown only", categories=["im-cat"])
    put_item("im-2", title="viewed", categories=["im-cat"])
    send([ev("im-u%d" % u, "impression", "im-1", T0 + u, position=0) for u in range(20)] +
         [ev("im-u%d" % u, "impression", "im-9", T0 + u, position=1) for u in range(20)] +
         [ev("im-v0", "view", "im-2", T0)])
    settle()
    r = recs("im-new", 100)
    assert "im-2" in ids(r), r
    assert not {"im-1", "im-9"} & set(ids(r)), \
        "items with impressions only are recommended: %s" % \
        [it for it in r["items"] if it["itemId"] in ("im-1", "im-9")]
    r = recs("im-new", 100, params={"category": "im-cat"})
    assert ids(r) == ["im-2"], r


def test_preferences():
    for i in (1, 2, 3):
        put_item("pf-%d" % i, title="garden %d" % i, categories=["pf-garden"])
    put_item("pf-k1", title="kitchen 1", categories=["pf-kitchen"])
    send([ev("pf-o%d" % u, "view", "pf-%d" % i) for i in (1, 2, 3) for u in range(4 - i)] +
         [ev("pf-o%d" % u, "view", "pf-k1") for u in range(2)])
    st, body = call("PUT", "/v1/users/pf-user/preferences", {"categories": ["pf-garden"]})
    assert st == 200 and body["accepted"] == 1 and body["rejected"] == 0, body
    settle()
    r = recs("pf-user", 30)
    assert r["strategy"] == "preferences" and {"pf-1", "pf-2", "pf-3"} <= set(ids(r)), r
    assert r["coldStart"] is True and r["recId"].startswith("pref.default."), r
    assert "matches your interest in pf-garden" in item(r, "pf-1")["reasons"], r
    assert not any("interest in pf-kitchen" in x for it in r["items"] for x in it["reasons"]), r
    # A new PUT replaces the stated categories.
    st, body = call("PUT", "/v1/users/pf-user/preferences", {"categories": ["pf-kitchen"]})
    assert st == 200, body
    settle(model=False)
    r = recs("pf-user", 30)
    assert r["strategy"] == "preferences", r
    assert "matches your interest in pf-kitchen" in item(r, "pf-k1")["reasons"], r
    assert not any("interest in pf-garden" in x for it in r["items"] for x in it["reasons"]), r
    # An empty list clears them.
    assert call("PUT", "/v1/users/pf-user2/preferences", {"categories": ["pf-garden"]})[0] == 200
    settle(model=False)
    assert recs("pf-user2")["strategy"] == "preferences"
    assert call("PUT", "/v1/users/pf-user2/preferences", {"categories": []})[0] == 200
    settle(model=False)
    assert recs("pf-user2")["strategy"] == "popular"
    # A category no catalog item has cannot be served: popular items instead.
    assert call("PUT", "/v1/users/pf-user3/preferences", {"categories": ["pf-nothing"]})[0] == 200
    settle(model=False)
    assert call("GET", "/v1/users/pf-user3/profile")[0] == 200
    assert recs("pf-user3")["strategy"] == "popular"
    # The preference is an event in the log, under the pseudonym only.
    stored = [r["event"] for r in rs.dump(SRV.data) if r["event"].get("eventType") == "preferences"]
    assert {"categories": ["pf-kitchen"]} in [e.get("properties") for e in stored], stored
    assert all("userId" not in e and e.get("userKey") for e in stored), stored
    assert "pf-user" not in json.dumps(stored)


def test_preferences_validation():
    bad = [('{"categories":"pf-garden"}', 422), ('{"categories":[1]}', 422),
           ('{"categories":[""]}', 422), ('{"categories":["%s"]}' % ("x" * 129), 422),
           ('{"categories":["a","b","c","d","e","f","g","h","i"]}', 422),
           ('{"categories":["a"],"extra":1}', 422), ('{}', 422), ('["a"]', 422), ('"a"', 422),
           ('{"categories":["a"', 400), ('', 400)]
    for body, status in bad:
        st, reply = call("PUT", "/v1/users/pv-user/preferences", body)
        assert st == status, (body, st, reply)
        assert reply["error_code"] == (42201 if status == 422 else 40002), (body, reply)
    st, reply = call("PUT", "/v1/users/pv-user/preferences",
                     {"categories": ["c%d" % i for i in range(8)]})
    assert st == 200, reply
    # Only the valid PUT was stored.
    settle(model=False)
    key = call("GET", "/v1/users/pv-user/profile")[1]["userKey"]
    stored = [r["event"] for r in rs.dump(SRV.data) if r["event"].get("userKey") == key]
    assert [e["properties"] for e in stored] == [{"categories": ["c%d" % i for i in range(8)]}], \
        stored


def test_preferences_content_types():
    """The body is JSON whatever the Content-Type says, as for PUT /v1/items and
    /v1/schemas (curl -d sends application/x-www-form-urlencoded)."""
    put_item("pt-1", title="pt", categories=["pt-cat"])
    bad = []
    for k, ct in enumerate((None, "application/json", "text/plain",
                            "application/x-www-form-urlencoded", "application/x-ndjson")):
        user = "pt-user-%d" % k
        headers = {"Content-Type": ct} if ct else {}
        st, _, data = SRV.request("PUT", "/v1/users/%s/preferences" % user,
                                  '{"categories":["pt-cat"]}', headers)
        if st != 200:
            bad.append("%s: %d %s" % (ct, st, data.decode()))
            continue
        settle()
        if recs(user)["strategy"] != "preferences":
            bad.append("%s: 200 but the preference was not applied" % ct)
    assert not bad, "PUT preferences with a valid body refused: " + "; ".join(bad)


def test_preferences_unseen_items():
    """A stated category brings its items even when nobody has interacted with them yet and
    they have no publishedAt (a new catalog; onboarding is exactly when this happens)."""
    put_item("pn-1", title="never seen 1", categories=["pn-new"])
    put_item("pn-2", title="never seen 2", categories=["pn-new"])
    assert call("PUT", "/v1/users/pn-user/preferences", {"categories": ["pn-new"]})[0] == 200
    settle()
    r = recs("pn-user", 30)
    assert r["strategy"] == "preferences", r
    assert {"pn-1", "pn-2"} <= set(ids(r)), \
        "strategy 'preferences' but no item of the stated category pn-new: %s" % ids(r)
    assert "matches your interest in pn-new" in item(r, "pn-1")["reasons"], r


def test_similar_items():
    put_item("sim-a", title="A", categories=["sim-cat"], tags=["red", "wool"])
    put_item("sim-b", title="B", categories=["sim-cat"], tags=["red", "wool"])
    put_item("sim-c", title="C", categories=["sim-other"], tags=["blue"])
    put_item("sim-d", title="D", categories=["sim-cat"], tags=["red"])
    # Content similarity: no interactions at all.
    settle()
    r = similar("sim-a")
    assert ids_of(r)[:2] == ["sim-b", "sim-d"], r
    assert r["similar"][0]["source"] == "content", r
    assert r["similar"][0]["reasons"] == ["similar categories and tags"], r
    assert r["similar"][0]["score"] > r["similar"][1]["score"], r
    assert "sim-c" not in ids_of(r), r
    assert len(similar("sim-a", 1)["similar"]) == 1
    # Co-visitation: items viewed in the same sessions (sim-x is not in the catalog).
    send([ev("sim-u%d" % u, "view", it, T0 + k * 1000)
          for u in range(3) for k, it in enumerate(("sim-x", "sim-c"))])
    settle(model=False)
    r = similar("sim-x")
    assert "sim-c" in ids_of(r), r
    s = [s for s in r["similar"] if s["itemId"] == "sim-c"][0]
    assert s["source"] == "covisit" and s["reasons"] == ["viewed together"], r
    # Both combined: sim-a's content neighbours and its co-visited item.
    send([ev("sim-v%d" % u, "view", it, T0 + k * 1000)
          for u in range(3) for k, it in enumerate(("sim-a", "sim-c"))])
    settle()
    r = similar("sim-a")
    assert {"sim-b", "sim-c", "sim-d"} <= set(ids_of(r)), r
    # Unavailable items are never listed.
    put_item("sim-b", title="B", categories=["sim-cat"], tags=["red", "wool"], available=False)
    assert "sim-b" not in ids_of(similar("sim-a")), similar("sim-a")
    # Unknown items, bad counts.
    st, body = call("GET", "/v1/items/no-such-item/similar")
    assert st == 404 and body["error_code"] == 40404, body
    for bad in ("0", "101", "x"):
        st, body = call("GET", "/v1/items/sim-a/similar?count=" + bad)
        assert st == 400, (bad, body)
    st, body = call("POST", "/v1/items/sim-a/similar", "{}")
    assert st == 405, body


def ids_of(sim):
    return [s["itemId"] for s in sim["similar"]]


CTR_REC = {}


def test_ctr():
    for w in ("1h", "24h", "all"):
        assert ctr(w)["groups"] == [], "no attributed event was sent yet"
    r = recs("ctr-user")
    assert r["strategy"] == "popular" and r["items"], r
    rid = r["recId"]
    CTR_REC["pop"] = rid
    shown = ids(r)
    evs = [ev("ctr-user", "impression", shown[p % len(shown)], recId=rid, position=p)
           for p in range(40)]
    evs += [ev("ctr-user", "click", shown[p % len(shown)], recId=rid, position=p)
            for p in range(10)]
    evs += [ev("ctr-user", "add_to_cart", shown[0], recId=rid, position=0),
            ev("ctr-user", "add_to_cart", shown[1 % len(shown)], recId=rid, position=1),
            ev("ctr-user", "purchase", shown[0], recId=rid, position=0)]
    # Not attributed: no recId, or an event type that is not counted.
    evs += [ev("ctr-user", "click", shown[0]), ev("ctr-user", "view", shown[0], recId=rid)]
    send(evs)
    settle(model=False)
    for w in ("1h", "24h", "all"):
        rep = ctr(w)
        check_rates(group(rep, "popular", "default"), 40, 10, 2, 1)
        assert group(rep, "popular", "default")["ctr"] == 0.25
        assert "experiment" not in rep, rep
    assert call("GET", "/v1/stats/ctr")[1]["window"] == "24h"
    # Windows follow event time: events 2 h old count in 24h and all, not in 1h. The user
    # also has current events, so its shard's clock is now.
    p = recs("ex-user")
    assert p["strategy"] == "personalized", p
    prid = p["recId"]
    CTR_REC["pers"] = prid
    old = T0 - 2 * 3600 * 1000
    send([ev("ex-user", "impression", "ex-c", old + k, recId=prid, position=k) for k in range(5)] +
         [ev("ex-user", "click", "ex-c", old + 10 + k, recId=prid, position=k) for k in range(2)] +
         [ev("ex-user", "impression", "ex-c", T0 + 10 + k, recId=prid, position=k)
          for k in range(4)] +
         [ev("ex-user", "click", "ex-c", T0 + 20, recId=prid, position=0)])
    settle(model=False)
    check_rates(group(ctr("24h"), "personalized", "default"), 9, 3)
    check_rates(group(ctr("all"), "personalized", "default"), 9, 3)
    check_rates(group(ctr("1h"), "personalized", "default"), 4, 1)
    # The popular group is unchanged by the other group's events.
    check_rates(group(ctr("all"), "popular", "default"), 40, 10, 2, 1)
    for bad in ("7d", "", "1H"):
        st, body = call("GET", "/v1/stats/ctr?window=" + bad)
        assert st == 400 and body["error_code"] == 40010, (bad, body)
    st, body = call("POST", "/v1/stats/ctr", "{}")
    assert st == 405, body


def test_state_survives_restart():
    """Preferences and CTR counts survive a clean stop (checkpoint) and a crash (replay)."""
    reports = {w: ctr(w) for w in ("1h", "24h", "all")}
    pref = recs("pf-user", 30)
    assert pref["strategy"] == "preferences", pref
    restart(SRV, signal.SIGTERM)
    for w, rep in reports.items():
        assert ctr(w) == rep, (w, ctr(w), rep)
    r = recs("pf-user", 30)
    assert r["strategy"] == "preferences", r
    assert "matches your interest in pf-kitchen" in item(r, "pf-k1")["reasons"], r
    r = recs("ex-user", 20)
    assert r["strategy"] == "personalized" and not {"ex-a", "ex-b", "ex-d"} & set(ids(r)), r
    # Changes after the last checkpoint are replayed from the log after a crash, exactly once.
    send([ev("ctr-user", "impression", "cs-1", recId=CTR_REC["pop"], position=p) for p in range(5)])
    assert call("PUT", "/v1/users/pf-user/preferences", {"categories": ["pf-garden"]})[0] == 200
    restart(SRV, signal.SIGKILL)
    rep = ctr("all")
    check_rates(group(rep, "popular", "default"), 45, 10, 2, 1)
    check_rates(group(rep, "personalized", "default"), 9, 3)
    r = recs("pf-user", 30)
    assert r["strategy"] == "preferences", r
    assert "matches your interest in pf-garden" in item(r, "pf-1")["reasons"], r
    # And nothing is counted twice by later checkpoints and restarts.
    settle()
    restart(SRV, signal.SIGTERM)
    check_rates(group(ctr("all"), "popular", "default"), 45, 10, 2, 1)


# ---- experiment server --------------------------------------------------------------------

VARIANTS = {}


def assignments(n):
    out = {}
    for i in range(n):
        r = recs("xu-%d" % i, 3, XSRV)
        assert r["variant"] in ("exp1:control", "exp1:trend"), r
        assert r["recId"].split(".")[1] == r["variant"].split(":")[1], r
        out["xu-%d" % i] = (r["variant"], r["recId"])
    return out


def test_experiment_assignment():
    send([ev("xo-%d" % u, "view", "xi-%d" % i) for u in range(3) for i in range(5)], XSRV)
    a = assignments(200)
    VARIANTS.update(a)
    n = sum(1 for v, _ in a.values() if v == "exp1:trend")
    assert 70 <= n <= 130, "%d of 200 users in 'trend'" % n
    again = assignments(40)
    assert all(again[u][0] == a[u][0] for u in again), "assignment not stable across requests"
    rep = ctr("24h", XSRV)
    x = rep["experiment"]
    assert x["name"] == "exp1" and x["control"] == "control", x
    assert [v["name"] for v in x["variants"]] == ["control", "trend"], x
    assert all(v["impressions"] == 0 and v["clicks"] == 0 for v in x["variants"]), x
    restart(XSRV, signal.SIGTERM)
    after = assignments(200)
    changed = [u for u in a if after[u][0] != a[u][0]]
    assert not changed, "variants changed after a restart: %s" % changed[:5]


def test_experiment_significance():
    users = {v: [u for u, (vv, _) in sorted(VARIANTS.items()) if vv == "exp1:" + v][:5]
             for v in ("control", "trend")}
    rids = {v: [recs(u, 3, XSRV)["recId"] for u in us] for v, us in users.items()}

    def traffic(variant, imps, clicks, base):
        out = []
        for k in range(imps):
            j = k % len(rids[variant])
            out.append(ev(users[variant][j], "impression", "xi-%d" % (k % 5), T0 + base + k,
                          recId=rids[variant][j], position=k % 10))
        for k in range(clicks):
            j = k % len(rids[variant])
            out.append(ev(users[variant][j], "click", "xi-%d" % (k % 5), T0 + base + 5000 + k,
                          recId=rids[variant][j], position=k % 10))
        return out

    # Similar rates on little traffic: not significant.
    send(traffic("control", 40, 4, 0) + traffic("trend", 40, 5, 0), XSRV)
    settle(XSRV, model=False)
    x = ctr("24h", XSRV)["experiment"]
    control, trend = x["variants"]
    check_rates(control, 40, 4)
    check_rates(trend, 40, 5)
    assert "pValue" not in control and "significant" not in control, control
    assert close(trend["pValue"], two_proportion_p(5, 40, 4, 40), 1e-6), trend
    assert trend["significant"] is False, trend
    # Much higher CTR for 'trend' on 200 impressions each: significant.
    send(traffic("control", 160, 6, 10000) + traffic("trend", 160, 55, 10000), XSRV)
    settle(XSRV, model=False)
    rep = ctr("24h", XSRV)
    control, trend = rep["experiment"]["variants"]
    check_rates(control, 200, 10)
    check_rates(trend, 200, 60)
    p = two_proportion_p(60, 200, 10, 200)
    assert p < 0.001 and close(trend["pValue"], p, 1e-6), (trend, p)
    assert trend["significant"] is True, trend
    # The groups carry the bare variant name; they add up to the experiment's totals.
    for v, n, c in (("control", 200, 10), ("trend", 200, 60)):
        gs = [g for g in rep["groups"] if g["variant"] == v]
        assert sum(g["impressions"] for g in gs) == n and sum(g["clicks"] for g in gs) == c, gs


def test_diversity_cap_option():
    for i in range(6):
        put_item("xd-a%d" % i, XSRV, title="a%d" % i, categories=["xd-a"])
        put_item("xd-b%d" % i, XSRV, title="b%d" % i, categories=["xd-b"])
    evs = [ev("xd-u%d" % u, "purchase", "xd-a%d" % i, T0 + i) for u in range(6) for i in range(6)]
    evs += [ev("xd-u%d" % u, "add_to_cart", "xd-b%d" % i, T0 + i)
            for u in range(4) for i in range(6)]
    send(evs, XSRV)
    settle(XSRV)

    def per_cat(r):
        return {c: sum(1 for i in ids(r) if i.startswith(c)) for c in ("xd-a", "xd-b")}
    # Cold users of both variants: whatever the weights, at most 3 of a category. The xd-a
    # items outrank the xd-b ones, so an xd-b item in the list shows the cap at work.
    seen = set()
    for k in range(40):
        user = "xd-new%d" % k
        r = recs(user, 10, XSRV)
        seen.add(r["variant"])
        assert len(r["items"]) == 10 and per_cat(r)["xd-a"] == 3, (per_cat(r), r)
        assert 1 <= per_cat(r)["xd-b"] <= 3, (per_cat(r), r)
        if len(seen) == 2:
            break
    assert len(seen) == 2, seen
    r = recs("xd-new1", 6, XSRV, params={"category": "xd-a"})
    assert len(r["items"]) == 6, r


def thp_mode():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return f.read()
    except OSError:
        return ""


def environ(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        return dict(kv.decode().split("=", 1) for kv in f.read().split(b"\0") if b"=" in kv)


def test_huge_pages():
    """serve re-executes itself once with glibc's heap on transparent huge pages (same pid: the
    process started is the one serving), unless THP is off or RECSTREAM_HUGE_PAGES=0."""
    mode = thp_mode()
    on = bool(mode) and "[never]" not in mode
    env = environ(SRV.proc.pid)
    assert ("glibc.malloc.hugetlb=1" in env.get("GLIBC_TUNABLES", "")) == on, (mode, env)
    assert (env.get("RECSTREAM_HUGE_PAGES") == "exec") == on, (mode, env)
    # the process and its threads keep the binary's name (not "exe" from /proc/self/exe)
    name = os.path.basename(rs.BIN)[:15]
    comms = [open("/proc/%d/task/%s/comm" % (SRV.proc.pid, t)).read().strip()
             for t in os.listdir("/proc/%d/task" % SRV.proc.pid)]
    assert open("/proc/%d/comm" % SRV.proc.pid).read().strip() == name, comms
    assert "exe" not in comms and "stream-proc" in comms and "checkpoint" in comms, comms
    off = rs.Server(env={"RECSTREAM_HUGE_PAGES": "0"})
    try:
        off.start()
        env = environ(off.proc.pid)
        assert "hugetlb" not in env.get("GLIBC_TUNABLES", "") and env["RECSTREAM_HUGE_PAGES"] == "0"
        assert off.request("GET", "/healthz")[0] == 200
    finally:
        off.stop()
        off.cleanup()
    # the user's own tunables are kept (glibc shows only the first one in the environment
    # after parsing), and the second start does not execute again
    kept = rs.Server(env={"GLIBC_TUNABLES": "glibc.malloc.check=0"})
    try:
        kept.start()
        env = environ(kept.proc.pid)
        assert env["GLIBC_TUNABLES"].startswith("glibc.malloc.check=0"), env
        assert (env.get("RECSTREAM_HUGE_PAGES") == "exec") == on, (mode, env)
        assert kept.request("GET", "/healthz")[0] == 200
    finally:
        kept.stop()
        kept.cleanup()


def test_bad_options():
    cases = [
        ({"name": "e", "variants": [{"name": "a", "share": 40}, {"name": "b", "share": 50}]},
         "shares add up to 90"),
        ({"name": "e", "variants": [{"name": "a", "share": 50, "weights": {"bogus": 1}},
                                    {"name": "b", "share": 50}]}, "/variants/0/weights/bogus"),
        ({"name": "e", "variants": [{"name": "a", "share": 50, "weights": {"trending": -1}},
                                    {"name": "b", "share": 50}]}, "/variants/0/weights/trending"),
        ({"name": "e", "variants": [{"name": "a", "share": 50}, {"name": "a", "share": 50}]},
         "duplicate"),
        ({"name": "e", "variants": [{"name": "a.b", "share": 100}]}, "/variants/0/name"),
        ({"name": "e", "variants": []}, "/variants"),
        ({"variants": [{"name": "a", "share": 100}]}, "/name"),
        ("not json", "not a JSON object"),
    ]
    data = os.path.join(EXP_DIR, "bad-data")
    for doc, msg in cases:
        path = os.path.join(EXP_DIR, "bad.json")
        with open(path, "w") as f:
            f.write(doc if isinstance(doc, str) else json.dumps(doc))
        p = rs.run_cli("serve", "--data", data, "--listen", "127.0.0.1:0", "--experiment", path,
                       check=False)
        assert p.returncode == 2, (doc, p.returncode, p.stderr)
        assert msg in p.stderr, (msg, p.stderr)
    for opt, val in (("--experiment", os.path.join(EXP_DIR, "missing.json")),
                     ("--reco-weights", "bogus=1"), ("--reco-weights", "trending=-1"),
                     ("--reco-refresh", "10ms"), ("--diversity-cap", "101"),
                     ("--exploration", "0.9")):
        p = rs.run_cli("serve", "--data", data, "--listen", "127.0.0.1:0", opt, val, check=False)
        assert p.returncode == 2 and opt in p.stderr, (opt, val, p.returncode, p.stderr)


def main():
    with open(EXP_FILE, "w") as f:
        json.dump(EXPERIMENT, f)
    runner = rs.Runner()
    suites = [(SRV, [test_cold_start_and_context, test_request_errors, test_exclusions_and_reasons,
                     test_category_filter, test_unavailable_items, test_diversity_default_cap,
                     test_impressions_are_not_interest,
                     test_preferences, test_preferences_validation,
                     test_preferences_content_types, test_preferences_unseen_items,
                     test_similar_items, test_ctr, test_state_survives_restart,
                     test_huge_pages]),
              (XSRV, [test_experiment_assignment, test_experiment_significance,
                      test_diversity_cap_option])]
    try:
        for srv, tests in suites:
            srv.start()
            try:
                for t in tests:
                    runner.run(t)
            finally:
                def test_clean_shutdown():
                    rc = srv.stop()
                    log = srv.log()
                    assert "Sanitizer" not in log and "runtime error" not in log, log[-3000:]
                    assert rc == 0, "exit %s:\n%s" % (rc, log[-3000:])
                runner.run(test_clean_shutdown)
                srv.cleanup()
        runner.run(test_bad_options)
    finally:
        shutil.rmtree(EXP_DIR, ignore_errors=True)
    runner.finish()


if __name__ == "__main__":
    main()
