"""End-to-end: the schema registry API, schema validation of event properties at ingest,
persistence across restarts, custom event types, and the dead-letter store with replay."""
import json
import time

import rs

SRV = rs.Server("--partitions", "2", "--fsync", "batch:2")

PURCHASE_1 = {"type": "object", "properties": {
    "price": {"type": "number", "minimum": 0},
    "currency": {"type": "string", "enum": ["EUR", "USD"]}},
    "required": ["price"], "additionalProperties": False}


def put(name, version, schema):
    st, _, data = SRV.request("PUT", "/v1/schemas/%s/%s" % (name, version), json.dumps(schema),
                              {"Content-Type": "application/json"})
    return st, json.loads(data)


def purchase(user, props, **kw):
    e = {"userId": user, "eventType": "purchase", "itemId": "sku-1", "properties": props}
    e.update(kw)
    return e


def test_register_and_read_back():
    st, reply = put("purchase", "1-0-0", PURCHASE_1)
    assert st == 201 and reply["created"] is True, reply
    st, reply = put("purchase", "1-0-0", PURCHASE_1)  # identical: a no-op
    assert st == 200 and reply["created"] is False
    st, _, body = SRV.request("GET", "/v1/schemas")
    names = [s["name"] for s in json.loads(body)["schemas"]]
    assert "purchase" in names and "recstream.event" in names  # the built-in envelope
    st, _, body = SRV.request("GET", "/v1/schemas/purchase")
    assert json.loads(body) == {"name": "purchase", "versions": ["1-0-0"], "latest": "1-0-0"}
    st, _, body = SRV.request("GET", "/v1/schemas/purchase/1-0-0")
    assert st == 200 and json.loads(body) == PURCHASE_1
    assert SRV.request("GET", "/v1/schemas/nope")[0] == 404


def test_evolution_accepted_and_rejected():
    # Compatible ADDITION: a new optional property.
    v101 = json.loads(json.dumps(PURCHASE_1))
    v101["properties"]["coupon"] = {"type": "string"}
    st, reply = put("purchase", "1-0-1", v101)
    assert st == 201, reply
    # Claims ADDITION but adds a required field: 409 with the reason.
    v102 = json.loads(json.dumps(v101))
    v102["required"] = ["price", "coupon"]
    st, reply = put("purchase", "1-0-2", v102)
    assert st == 409 and reply["error_code"] == 40902, reply
    assert any("coupon" in r for r in reply["reasons"]), reply
    # Removing an enum value is not an ADDITION either.
    v102b = json.loads(json.dumps(v101))
    v102b["properties"]["currency"]["enum"] = ["EUR"]
    st, reply = put("purchase", "1-0-2", v102b)
    assert st == 409 and any("currency" in r for r in reply["reasons"]), reply
    # The same change as a REVISION declares the break and is accepted.
    st, reply = put("purchase", "1-1-0", v102)
    assert st == 201 and reply["breakingChanges"], reply
    # Registered versions are immutable; gaps are refused.
    st, reply = put("purchase", "1-0-0", v101)
    assert st == 409 and reply["error_code"] == 40901
    st, reply = put("purchase", "1-0-5", v101)
    assert st == 409 and reply["error_code"] == 40903
    st, reply = put("purchase", "1-0-2", {"type": "strnig"})
    assert st == 400 and reply["error_code"] == 40003


def test_properties_validated_at_ingest():
    # The latest purchase schema (1-1-0) requires coupon; 1-0-0 does not.
    st, _, reply = SRV.post_json("/v1/events", [
        purchase("u1", {"price": 10, "coupon": "X"}),
        purchase("u2", {"price": "ten", "coupon": "X"}),
        purchase("u3", {"price": 5}, schema="purchase/1-0-0"),
        purchase("u4", {"price": 5}),
        purchase("u5", {"price": 5}, schema="purchase/9-0-0"),
    ])
    assert st == 200, reply
    assert reply["accepted"] == 2 and reply["rejected"] == 3, reply
    errs = {e["index"]: e for e in reply["errors"]}
    assert errs[1]["field"] == "properties/price" and "number" in errs[1]["message"], errs
    assert errs[3]["field"].startswith("properties") and "coupon" in errs[3]["message"], errs
    assert errs[4]["field"] == "schema", errs
    recs = {r["event"]["eventId"]: r for r in rs.dump(SRV.data)}
    schemas = sorted(r["event"].get("schema") for r in recs.values() if r["event"]["eventType"] == "purchase")
    assert schemas == ["purchase/1-0-0", "purchase/1-1-0"], schemas


def test_custom_event_type():
    st, _, reply = SRV.post_json("/v1/events", [{"userId": "u", "eventType": "video_play", "properties": {"secs": 3}}])
    assert st == 422  # not registered yet
    st, reply = put("video_play", "1-0-0", {"type": "object", "properties": {"secs": {"type": "integer"}}})
    assert st == 201
    st, _, reply = SRV.post_json("/v1/events", [{"userId": "u", "eventType": "video_play", "properties": {"secs": 3}},
                                                {"userId": "u", "eventType": "video_play", "properties": {"secs": 1.5}}])
    assert st == 200 and reply["accepted"] == 1 and reply["errors"][0]["field"] == "properties/secs", reply
    types = [r["event"]["eventType"] for r in rs.dump(SRV.data)]
    assert "video_play" in types


def test_dead_letters_and_replay():
    st, _, body = SRV.request("GET", "/v1/deadletters")
    assert st == 200
    dl = json.loads(body)
    rejected = [d for d in dl["deadletters"] if d["event"].get("eventType") == "purchase"]
    assert len(rejected) >= 3, dl
    one = [d for d in rejected if d["event"].get("properties", {}).get("price") == "ten"][0]
    assert one["errors"][0]["field"] == "properties/price" and one["source"] == "/v1/events"
    # Pseudonymised: no raw user id, a userKey instead.
    assert "userId" not in one["event"] and len(one["event"]["userKey"]) == 32
    # Fix: a MODEL bump that accepts prices as strings, without coupon; then replay all.
    v2 = {"type": "object", "properties": {"price": {"type": ["number", "string"]}}, "required": ["price"]}
    assert put("purchase", "2-0-0", v2)[0] == 201
    before = len(rs.dump(SRV.data))
    st, _, reply = SRV.post_json("/v1/deadletters/replay", {})
    assert st == 200 and reply["replayed"] >= 2, reply
    time.sleep(0.2)
    after = rs.dump(SRV.data)
    assert len(after) == before + reply["replayed"]
    replayed = [r for r in after if r["event"].get("properties", {}).get("price") == "ten"]
    assert len(replayed) == 1 and replayed[0]["key"] == one["event"]["userKey"], replayed
    st, _, body = SRV.request("GET", "/v1/deadletters")
    left = json.loads(body)["deadletters"]
    assert all(d["event"].get("properties", {}).get("price") != "ten" for d in left)


def test_registry_and_dead_letters_survive_restart():
    st, _, before = SRV.request("GET", "/v1/schemas")
    st, _, dl_before = SRV.request("GET", "/v1/deadletters")
    SRV.stop()
    SRV.start()
    st, _, after = SRV.request("GET", "/v1/schemas")
    assert json.loads(after) == json.loads(before)
    st, _, dl_after = SRV.request("GET", "/v1/deadletters")
    assert json.loads(dl_after)["deadletters"] == json.loads(dl_before)["deadletters"]
    # Validation still uses the restored registry.
    st, _, reply = SRV.post_json("/v1/events", [purchase("u9", {"price": []})])
    assert st == 422 and reply["errors"][0]["field"] == "properties/price"


def test_no_raw_ids_in_data_dir():
    marker = "raw-dl-user-5d1e"
    SRV.post_json("/v1/events", [purchase(marker, {"price": "bad-" + marker[:3]}, schema="purchase/1-0-0")])
    SRV.stop()
    assert not rs.scan_dir_for(SRV.data, [marker.encode()])
    SRV.start()


def main():
    rs.run_suite(SRV, [test_register_and_read_back, test_evolution_accepted_and_rejected,
                              test_properties_validated_at_ingest, test_custom_event_type,
                              test_dead_letters_and_replay, test_registry_and_dead_letters_survive_restart,
                              test_no_raw_ids_in_data_dir])


if __name__ == "__main__":
    main()
