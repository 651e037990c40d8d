"""End-to-end: the ingestion endpoints of a real `recstream serve`."""
import json
import os
import subprocess
import time

import rs

SRV = rs.Server("--partitions", "4", "--fsync", "always", "--max-body", "64k", "--max-records", "500")


def ev(user="123", typ="click", item="product456", **kw):
    e = {"userId": user, "eventType": typ, "itemId": item, "timestamp": int(time.time() * 1000)}
    e.update(kw)
    return e


def test_seed_request_via_curl():
    # The original design's fetch() call, sent verbatim by curl.
    body = json.dumps({"records": [{"value": ev()}]})
    out = subprocess.run(
        ["curl", "-sS", "-X", "POST", "-H", "Content-Type: application/vnd.kafka.json.v2+json",
         "-H", "Authorization: Bearer " + SRV.key,
         "--data-binary", body, "-w", "\n%{http_code}",
         "http://127.0.0.1:%d/topics/user-interactions" % SRV.port],
        stdout=subprocess.PIPE, text=True, check=True).stdout
    text, code = out.rsplit("\n", 1)
    assert code == "200", out
    reply = json.loads(text)
    assert reply["key_schema_id"] is None and reply["value_schema_id"] is None
    assert len(reply["offsets"]) == 1
    off = reply["offsets"][0]
    assert off["error_code"] is None and off["error"] is None
    assert 0 <= off["partition"] < 4 and off["offset"] >= 0


def test_rest_partition_follows_user_key():
    # Same user -> same partition, offsets increase; an explicit partition wins.
    st, _, r1 = SRV.produce([{"value": ev(user="alice")}, {"value": ev(user="alice")}])
    assert st == 200
    p = [o["partition"] for o in r1["offsets"]]
    assert p[0] == p[1]
    assert r1["offsets"][1]["offset"] == r1["offsets"][0]["offset"] + 1
    st, _, r2 = SRV.produce([{"value": ev(user="alice"), "partition": (p[0] + 1) % 4}])
    assert st == 200 and r2["offsets"][0]["partition"] == (p[0] + 1) % 4
    st, _, r3 = SRV.produce([{"value": ev(user="alice"), "partition": 9}])
    assert st == 422 and "partition" in r3["offsets"][0]["error"]


def test_mixed_batch_keeps_valid_records():
    records = [
        {"value": ev(user="u-mixed-1", eventId="mixed-1")},
        {"value": {"eventType": "click", "itemId": "x"}},             # no user
        {"value": ev(user="u-mixed-2", typ="teleport")},                # unknown type
        {"value": ev(user="u-mixed-3", timestamp="yesterday")},        # bad timestamp
        {"key": "k"},                                                   # no value
        {"value": ev(user="u-mixed-4", eventId="mixed-4")},
    ]
    st, _, reply = SRV.produce(records)
    assert st == 200, reply
    offs = reply["offsets"]
    assert len(offs) == 6
    assert offs[0]["error_code"] is None and offs[5]["error_code"] is None
    for i, field in [(1, "userId"), (2, "eventType"), (3, "timestamp"), (4, "value")]:
        assert offs[i]["partition"] is None and offs[i]["offset"] is None
        assert offs[i]["error_code"] == 42201
        assert field in offs[i]["error"], (i, offs[i])
    ids = [r["event"]["eventId"] for r in rs.dump(SRV.data)]
    assert "mixed-1" in ids and "mixed-4" in ids


def test_all_invalid_is_422():
    st, _, reply = SRV.produce([{"value": {"userId": "x"}}])
    assert st == 422 and reply["error_code"] == 42201
    assert "eventType" in reply["message"]
    st, _, reply = SRV.post_json("/v1/events", [{"userId": "x", "eventType": "nope"}])
    assert st == 422 and reply["rejected"] == 1 and reply["errors"][0]["field"] == "eventType"


def test_malformed_json_reports_position():
    body = '{"records": [\n  {"value": {"userId": "1",, "eventType": "view"}}]}'
    st, _, reply = SRV.post_json("/topics/user-interactions", body, "application/vnd.kafka.json.v2+json")
    assert st == 400 and reply["error_code"] == 40002
    assert "line 2" in reply["message"] and "byte" in reply["message"], reply
    st, _, reply = SRV.post_json("/v1/events", "[1, 2", "application/json")
    assert st == 400 and reply["error_code"] == 40002
    st, _, reply = SRV.post_json("/v1/events", '{"a":1} trailing', "application/json")
    assert st == 400 and reply["error_code"] == 40002


def test_oversize_body_is_413():
    big = {"records": [{"value": ev(properties={"pad": "x" * 70000})}]}
    st, _, reply = SRV.post_json("/topics/user-interactions", big, "application/vnd.kafka.json.v2+json")
    assert st == 413 and reply["error_code"] == 41301, reply
    # Too many records in an otherwise small body.
    st, _, reply = SRV.post_json("/v1/events", [ev()] * 501)
    assert st == 413 and reply["error_code"] == 41302
    # The server is still fine.
    st, _, _ = SRV.produce([{"value": ev()}])
    assert st == 200


def test_wrong_content_type_and_unknown_topic():
    st, _, reply = SRV.post_json("/topics/user-interactions", {"records": [{"value": ev()}]}, "text/plain")
    assert st == 415 and reply["error_code"] == 41501
    st, _, reply = SRV.produce([{"value": ev()}], topic="nope")
    assert st == 404 and reply["error_code"] == 40401
    st, _, reply = SRV.post_json("/nowhere", {})
    assert st == 404


def test_native_json_and_ndjson():
    st, _, reply = SRV.post_json("/v1/events", [ev(user="n1"), ev(user="n2", typ="view"), {"bad": 1}])
    assert st == 200 and reply["accepted"] == 2 and reply["rejected"] == 1
    assert reply["errors"][0]["index"] == 2 and reply["offsets"][2] is None
    assert reply["offsets"][0]["offset"] >= 0
    lines = "\n".join([json.dumps(ev(user="nd1")), "{not json", "", json.dumps(ev(user="nd2"))])
    st, _, reply = SRV.post_json("/v1/events", lines, "application/x-ndjson")
    assert st == 200 and reply["accepted"] == 2 and reply["rejected"] == 1, reply
    assert reply["errors"][0]["index"] == 1 and "malformed JSON" in reply["errors"][0]["message"]
    # A single object is accepted too.
    st, _, reply = SRV.post_json("/v1/events", ev(user="single"))
    assert st == 200 and reply["accepted"] == 1


def test_beacon_and_cors():
    st, headers, reply = SRV.post_json("/v1/beacon", json.dumps(ev(user="beacon")), "text/plain;charset=UTF-8")
    assert st == 200 and reply["accepted"] == 1
    assert headers.get("access-control-allow-origin") == "*"
    st, headers, _ = SRV.request("OPTIONS", "/v1/events", headers={
        "Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert st == 204
    assert "POST" in headers["access-control-allow-methods"]
    assert "Content-Type" in headers["access-control-allow-headers"]


def test_duplicate_event_id_stored_once():
    e = ev(user="dup-user", eventId="evt-dup-1")
    st, _, r1 = SRV.produce([{"value": e}])
    st2, _, r2 = SRV.produce([{"value": e}, {"value": e}])
    assert st == 200 and st2 == 200
    o1 = r1["offsets"][0]
    assert r2["offsets"][0] == o1 and r2["offsets"][1] == o1
    st, _, r3 = SRV.post_json("/v1/events", [e])
    assert r3["duplicates"] == 1 and r3["offsets"][0] == {"partition": o1["partition"], "offset": o1["offset"]}
    ids = [r["event"]["eventId"] for r in rs.dump(SRV.data)]
    assert ids.count("evt-dup-1") == 1


def test_health_and_metrics():
    st, _, body = SRV.request("GET", "/healthz")
    assert st == 200
    st, _, body = SRV.request("GET", "/readyz")
    assert st == 200 and b"ready" in body
    st, headers, body = SRV.request("GET", "/metrics")
    assert st == 200 and b"recstream_events_accepted_total" in body
    accepted = [l for l in body.decode().splitlines() if l.startswith("recstream_events_accepted_total ")]
    assert int(accepted[0].split()[1]) >= 5
    clicks = [l for l in body.decode().splitlines() if l.startswith('recstream_events_by_type_total{type="click"}')]
    assert int(clicks[0].split()[1]) >= 3, clicks


def test_dump_shows_pseudonymous_events():
    recs = rs.dump(SRV.data)
    assert recs, "log is empty"
    r = recs[0]
    for k in ("partition", "offset", "eventTime", "ingestTime", "key", "event"):
        assert k in r
    assert len(r["key"]) == 32 and r["event"]["userKey"] == r["key"]
    assert "userId" not in r["event"]


def test_restart_keeps_everything_and_dedup():
    before = rs.dump(SRV.data)
    assert SRV.stop() == 0, SRV.log()
    assert "stopped cleanly" in SRV.log()
    SRV.start()
    after = rs.dump(SRV.data)
    assert after == before
    # The dedup window survives the restart.
    st, _, reply = SRV.produce([{"value": ev(user="dup-user", eventId="evt-dup-1")}])
    assert reply["offsets"][0]["offset"] == [r for r in before if r["event"]["eventId"] == "evt-dup-1"][0]["offset"]
    assert len(rs.dump(SRV.data)) == len(before)
    # New events continue after the old offsets.
    st, _, reply = SRV.produce([{"value": ev(user="after-restart")}])
    p = reply["offsets"][0]["partition"]
    assert reply["offsets"][0]["offset"] == max([r["offset"] for r in before if r["partition"] == p] + [-1]) + 1
    chk = rs.run_cli("log", "check", "--data", SRV.data)
    assert "0 problems" in chk.stdout


def test_raw_user_ids_appear_nowhere():
    marker = "raw-user-id-7f3a9c"
    st, _, _ = SRV.produce([{"value": ev(user=marker)}, {"value": {"anonymousId": marker + "-anon", "eventType": "page_view"}}])
    assert st == 200
    SRV.stop()
    hits = rs.scan_dir_for(SRV.data, [marker.encode()])
    assert not hits, hits
    SRV.start()


def test_cli_errors():
    p = rs.run_cli("serve", "--bogus", check=False)
    assert p.returncode == 2 and "unknown option '--bogus'" in p.stderr
    p = rs.run_cli("serve", "--fsync", "sometimes", check=False)
    assert p.returncode == 2 and "--fsync" in p.stderr
    p = rs.run_cli("serve", "--listen", "nonsense", check=False)
    assert p.returncode == 2 and "HOST:PORT" in p.stderr
    p = rs.run_cli("--version")
    assert p.stdout.startswith("recstream ")
    p = rs.run_cli("serve", "--help")
    assert "--fsync" in p.stdout and "--partitions" in p.stdout
    p = rs.run_cli("frobnicate", check=False)
    assert p.returncode == 2
    env = dict(os.environ, RECSTREAM_PARTITIONS="zero")
    p = subprocess.run([rs.BIN, "serve"], env=env, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 2 and "RECSTREAM_PARTITIONS" in p.stderr


def test_partition_count_is_fixed():
    # The same data directory with another partition count is refused clearly.
    other = rs.Server("--partitions", "3", data=SRV.data)
    SRV.stop()
    other.start(wait=False)
    rc = other.proc.wait(30)
    assert rc != 0 and "partition" in other.log().lower(), other.log()
    SRV.start()


def test_second_server_on_same_data_refused():
    other = rs.Server(data=SRV.data)
    other.start(wait=False)
    rc = other.proc.wait(30)
    assert rc != 0 and "in use" in other.log(), other.log()
    st, _, _ = SRV.request("GET", "/readyz")
    assert st == 200


def test_config_file_and_env():
    # Options come from a config file, the environment and flags; flags win over env, env
    # over the file.
    import tempfile
    d = tempfile.mkdtemp(prefix="rs-cfg-")
    cfg = os.path.join(d, "recstream.conf")
    with open(cfg, "w") as f:
        f.write("# comment\npartitions = 3\ntopics = from-file,other\nmax-records 7\n")
    srv = rs.Server("--config", cfg, data=os.path.join(d, "data"), env={"RECSTREAM_MAX_RECORDS": "5"})
    try:
        srv.start()
        st, _, reply = srv.produce([{"value": ev()}], topic="from-file")
        assert st == 200 and reply["offsets"][0]["partition"] < 3
        st, _, reply = srv.produce([{"value": ev()}] * 6, topic="other")
        assert st == 413 and "limit of 5" in reply["message"], reply
        st, _, _ = srv.produce([{"value": ev()}])  # default topic not configured any more
        assert st == 404
        stats = rs.run_cli("log", "stats", "--json", "--data", srv.data)
        assert len(json.loads(stats.stdout)["partitions"]) == 3
    finally:
        srv.stop()
        srv.cleanup()
    with open(cfg, "w") as f:
        f.write("bogus = 1\n")
    p = rs.run_cli("serve", "--config", cfg, check=False)
    assert p.returncode == 2 and "unknown option 'bogus'" in p.stderr and ":1" in p.stderr


def test_log_tail_and_stats():
    out = rs.run_cli("log", "tail", "--data", SRV.data, "--lines", "2").stdout.splitlines()
    assert 1 <= len(out) <= 2 * 4
    for line in out:
        json.loads(line)
    st = json.loads(rs.run_cli("log", "stats", "--json", "--data", SRV.data).stdout)
    assert st["records"] == len(rs.dump(SRV.data)) and st["bytes_per_record"] > 40


def test_slow_client_times_out():
    srv = rs.Server("--timeout", "1")
    try:
        srv.start()
        import socket
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
        s.settimeout(10)
        t0 = time.time()
        data = s.recv(100)
        assert data == b"" and time.time() - t0 < 8, "slow client was not cut off"
        s.close()
        assert srv.request("GET", "/healthz")[0] == 200
    finally:
        srv.stop()
        srv.cleanup()


def main():
    rs.run_suite(SRV, [test_seed_request_via_curl, test_rest_partition_follows_user_key,
                              test_mixed_batch_keeps_valid_records, test_all_invalid_is_422,
                              test_malformed_json_reports_position, test_oversize_body_is_413,
                              test_wrong_content_type_and_unknown_topic, test_native_json_and_ndjson,
                              test_beacon_and_cors, test_duplicate_event_id_stored_once,
                              test_health_and_metrics, test_dump_shows_pseudonymous_events,
                              test_restart_keeps_everything_and_dedup, test_raw_user_ids_appear_nowhere,
                              test_cli_errors, test_partition_count_is_fixed,
                              test_second_server_on_same_data_refused, test_config_file_and_env,
                              test_log_tail_and_stats, test_slow_client_times_out])


if __name__ == "__main__":
    main()
