"""End-to-end: the item catalog API (/v1/items): single puts, reads and deletes, bulk NDJSON
and JSON-array loads with per-item errors, validation and parse errors, pagination, and
items surviving both a clean stop (SIGTERM) and a crash (SIGKILL)."""
import json
import signal
import urllib.parse

import rs

SRV = rs.Server("--partitions", "2", "--fsync", "batch:2")


def path(item_id):
    return "/v1/items/" + urllib.parse.quote(item_id, safe="")


def call(method, url, body=None, content_type="application/json"):
    headers = {"Content-Type": content_type} if body is not None else {}
    st, _, data = SRV.request(method, url, body, headers)
    return st, (json.loads(data) if data else None)


def put(item_id, item):
    return call("PUT", path(item_id), json.dumps(item))


def get(item_id):
    return call("GET", path(item_id))


def bulk(lines, content_type="application/x-ndjson"):
    body = "\n".join(l if isinstance(l, str) else json.dumps(l) for l in lines) + "\n"
    return call("POST", "/v1/items", body, content_type)


def all_items(limit):
    """Every item through the paginated listing, checking no page repeats an item."""
    seen, after = [], None
    while True:
        url = "/v1/items?limit=%d" % limit
        if after is not None:
            url += "&after=" + urllib.parse.quote(after, safe="")
        st, page = call("GET", url)
        assert st == 200, page
        assert len(page["items"]) <= limit
        seen += [it["itemId"] for it in page["items"]]
        after = page["next"]
        if after is None:
            break
        assert after == page["items"][-1]["itemId"]
    assert len(seen) == len(set(seen)), "an item was listed twice"
    return seen


def test_put_get_delete():
    item = {"title": "Trail shoe", "categories": ["shoes", "outdoor", "shoes"], "tags": ["sale"],
            "attributes": {"price": 89.9, "sizes": [40, 41]},
            "publishedAt": "2024-01-02T03:04:05Z", "available": True}
    st, body = put("sku/1 é", item)
    assert st == 201, body
    assert body["itemId"] == "sku/1 é" and body["categories"] == ["shoes", "outdoor"], body
    assert body["publishedAt"] == 1704164645000 and body["attributes"] == item["attributes"]
    st, again = get("sku/1 é")
    assert st == 200 and again == body
    item["title"] = "Trail shoe v2"
    st, body = put("sku/1 é", item)
    assert st == 200 and body["title"] == "Trail shoe v2", body
    # A GET reply can be PUT back as it is.
    st, body2 = put("sku/1 é", body)
    assert st == 200 and body2["title"] == body["title"], body2
    st, _ = call("DELETE", path("sku/1 é"))
    assert st == 204
    assert get("sku/1 é")[0] == 404
    assert call("DELETE", path("sku/1 é"))[0] == 404
    # Other methods, and the state routes under /v1/items/{id}/ still answer as before.
    st, body = call("POST", path("x"), "{}")
    assert st == 405 and body["error_code"] == 40501, body
    st, body = call("GET", "/v1/items/none/stats")
    assert st == 404 and body["error_code"] == 40404, body


def test_validation_and_parse_errors():
    st, body = put("v1", {"title": 5})
    assert st == 422 and body["error_code"] == 42201 and body["field"] == "/title", body
    st, body = put("v1", {"title": "ok", "colour": "red"})
    assert st == 422 and body["field"] == "/colour", body
    st, body = put("v1", {"tags": ["a", ""]})
    assert st == 422 and body["field"] == "/tags/1", body
    st, body = put("v1", {"itemId": "other"})
    assert st == 422 and body["field"] == "/itemId", body
    assert get("v1")[0] == 404
    st, body = call("PUT", path("v1"), '{"title": "x",\n "tags": [}')
    assert st == 400 and body["error_code"] == 40002, body
    assert "line 2" in body["message"], body
    st, body = call("PUT", path("v1"), "")
    assert st == 400, body


def test_bulk_mixed():
    lines = [{"itemId": "b1", "title": "one", "categories": ["books"]},
             {"title": "no id"},
             {"itemId": "b2", "title": "two", "tags": ["x", 3]},
             {"itemId": "b3", "title": "three", "categories": ["books"]},
             {"itemId": 4, "title": "numeric id"}]
    st, body = bulk(lines)
    assert st == 200, body
    assert body["accepted"] == 3 and body["rejected"] == 2, body
    errs = {(e["index"], e["field"]) for e in body["errors"]}
    assert errs == {(1, "/itemId"), (2, "/tags/1")}, body
    assert [e["itemId"] for e in body["errors"]] == [None, "b2"], body
    for item_id, title in (("b1", "one"), ("b3", "three"), ("4", "numeric id")):
        st, item = get(item_id)
        assert st == 200 and item["title"] == title, item
    assert get("b2")[0] == 404
    # A JSON array works too; a later entry for the same id replaces an earlier one.
    st, body = call("POST", "/v1/items", json.dumps([{"itemId": "b5", "title": "a"},
                                                      {"itemId": "b5", "title": "b"}]))
    assert st == 200 and body["accepted"] == 2 and body["created"] == 1, body
    assert get("b5")[1]["title"] == "b"


def test_bulk_all_invalid_and_malformed():
    st, body = bulk([{"itemId": "c1", "bogus": 1}, {"itemId": "c2", "available": "yes"}])
    assert st == 422 and body["error_code"] == 42201, body
    assert body["accepted"] == 0 and body["rejected"] == 2, body
    assert [e["field"] for e in body["errors"]] == ["/bogus", "/available"], body
    # A line that is not JSON refuses the whole body, naming the line; nothing is stored.
    st, body = bulk([{"itemId": "c3"}, {"itemId": "c4"}, '{"itemId": "c5",'])
    assert st == 400 and body["error_code"] == 40002 and "line 3" in body["message"], body
    assert get("c3")[0] == 404
    st, body = call("POST", "/v1/items", "")
    assert st == 422, body


def test_pagination():
    before = set(all_items(1000))
    lines = [{"itemId": "p%03d" % i, "title": "page item %d" % i, "categories": ["c%d" % (i % 4)]}
             for i in range(250)]
    st, body = bulk(lines)
    assert st == 200 and body["accepted"] == 250, body
    want = before | {"p%03d" % i for i in range(250)}
    assert set(all_items(37)) == want
    st, page = call("GET", "/v1/items?limit=5")
    assert page["total"] == len(want), page
    # Deleting the item a client paginates after does not lose its place.
    st, page = call("GET", "/v1/items?limit=10")
    cursor = page["next"]
    assert call("DELETE", path(cursor))[0] == 204
    st, rest = call("GET", "/v1/items?limit=1000&after=" + urllib.parse.quote(cursor, safe=""))
    assert st == 200, rest
    ids = [it["itemId"] for it in page["items"][:-1]] + [it["itemId"] for it in rest["items"]]
    assert set(ids) == want - {cursor} and len(ids) == len(set(ids))
    assert call("GET", "/v1/items?limit=0")[0] == 400
    assert call("GET", "/v1/items?limit=1001")[0] == 400
    assert call("DELETE", "/v1/items")[0] == 405


def restart(sig):
    if sig == signal.SIGKILL:
        SRV.kill()
    else:
        SRV.stop()
    SRV.start()


def test_survives_restart():
    put("r1", {"title": "kept", "tags": ["t"]})
    put("r2", {"title": "deleted"})
    assert call("DELETE", path("r2"))[0] == 204
    before = all_items(100)
    snapshot = {i: get(i)[1] for i in before}
    restart(signal.SIGTERM)
    assert all_items(100) == before
    assert {i: get(i)[1] for i in before} == snapshot
    assert get("r2")[0] == 404
    # Acknowledged changes survive a crash too.
    put("r3", {"title": "after restart"})
    assert call("DELETE", path("r1"))[0] == 204
    bulk([{"itemId": "r4", "title": "bulk before crash"}])
    restart(signal.SIGKILL)
    assert get("r3")[1]["title"] == "after restart"
    assert get("r4")[1]["title"] == "bulk before crash"
    assert get("r1")[0] == 404 and get("r2")[0] == 404
    assert sorted(all_items(7)) == sorted((set(before) - {"r1"}) | {"r3", "r4"})


def main():
    rs.run_suite(SRV, [test_put_get_delete, test_validation_and_parse_errors, test_bulk_mixed,
                       test_bulk_all_invalid_and_malformed, test_pagination,
                       test_survives_restart])


if __name__ == "__main__":
    main()
