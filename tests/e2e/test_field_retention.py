"""End-to-end: field retention by crypto-shredding (docs/PRIVACY.md, "Field retention").

A schema marks `email` as `"x-pii": true, "x-retention": "short"`. With
`--retention-short 3s --retention-epoch 1s --retention-interval 300ms`:

- while the epoch key lives, the export and `log dump` show the whole event, `email` included;
  the value never appears in clear in any file of the data directory (it sits in a bundle
  sealed under the epoch key, inside the record sealed under the user's key);
- once the short TTL (plus at most one epoch and one job interval) has passed, the epoch key
  is destroyed (`recstream_retention_epoch_keys_destroyed_total`, the key count gauge drops to
  0): the export shows the event without `email` and reports it in `expiredFields`, the
  other properties stay, `log dump` likewise; the value appears nowhere in the data
  directory, and `recstream privacy scan --value` (which opens every sealed file and every
  readable log record, bundles included) reports CLEAN;
- a restart keeps it gone (the destroyed key is not in the store file any more);
- an event sent after the expiry gets a new key and is whole again;
- Kafka log (`recstream dev kafka-mock`): the bundle travels unchanged inside the record value
  (kcat sees no clear value), reads back whole, and is shredded the same way.
"""
import re
import signal
import subprocess
import time
import urllib.parse

import rs

SHORT_S = 3
ARGS = ("--partitions", "1", "--fsync", "batch:2", "--checkpoint-interval", "200ms",
        "--retention-short", "%ds" % SHORT_S, "--retention-epoch", "1s",
        "--retention-interval", "300ms")
SRV = rs.Server(*ARGS)
EMAIL = "field-retention-secret@example.com"
SCHEMA = {"type": "object",
          "properties": {"email": {"type": "string", "x-pii": True, "x-retention": "short"},
                         "plan": {"type": "string"},
                         "age": {"type": "integer", "x-pii": True}}}


def q(s):
    return urllib.parse.quote(s, safe="")


def metric(name, srv=SRV):
    st, _, body = srv.request("GET", "/metrics")
    assert st == 200
    m = re.search(r"^%s (\d+)$" % re.escape(name), body.decode(), re.M)
    assert m, name
    return int(m.group(1))


def export(user, srv=SRV):
    st, body = rs.call_json(srv, "GET", "/v1/users/%s/export" % q(user))
    assert st == 200, (st, body)
    return body["events"]


def send(events, srv=SRV):
    st, _, body = srv.post_json("/v1/events", events)
    assert st == 200 and body["accepted"] == len(events) and None not in body["offsets"], body
    return body


def dumped(event_id):
    return [r for r in rs.dump(SRV.data) if (r.get("event") or {}).get("eventId") == event_id]


def scan_value():
    # The id of a user who never sent anything: only the value can be found.
    return rs.run_cli("privacy", "scan", "--data", SRV.data, "--value", EMAIL, "nobody-at-all",
                      check=False)


def test_short_field_lives_then_is_shredded():
    st, body = rs.call_json(SRV, "PUT", "/v1/schemas/signup/1-0-0", SCHEMA)
    assert st in (200, 201), body
    t_sent = time.time()
    send([{"userId": "frank", "eventType": "signup", "eventId": "fr-1",
           "properties": {"email": EMAIL, "plan": "pro", "age": 41}}])
    # Readable while the key lives: export, and `log dump` (another process, same store).
    ev = export("frank")
    assert len(ev) == 1 and ev[0]["event"]["properties"] == {
        "email": EMAIL, "plan": "pro", "age": 41}, ev
    assert "expiredFields" not in ev[0], ev
    rec = dumped("fr-1")
    assert rec and rec[0]["event"]["properties"]["email"] == EMAIL, rec
    assert metric("recstream_privacy_epoch_keys") >= 1
    # Never in clear at rest: sealed in a bundle inside a sealed record.
    assert rs.scan_dir_for(SRV.data, [EMAIL.encode()]) == []
    p = scan_value()
    # Found (in the log record, bundle opened) while the key lives: the scan can see it.
    assert p.returncode == 1 and "the value (partition 0 offset" in p.stdout, p.stdout

    # Past the TTL (+ one epoch + one interval) the key is gone and so is the field.
    destroyed = rs.wait_for("the epoch key destroyed",
                            lambda: metric("recstream_retention_epoch_keys_destroyed_total"),
                            lambda n: n >= 1, timeout=SHORT_S + 6)
    assert time.time() - t_sent >= SHORT_S, "destroyed before its TTL"
    assert destroyed >= 1 and metric("recstream_privacy_epoch_keys") == 0
    ev = export("frank")
    assert ev[0]["event"]["properties"] == {"plan": "pro", "age": 41}, ev
    assert ev[0]["expiredFields"] == ["email"], ev
    rec = dumped("fr-1")
    assert rec[0]["event"]["properties"] == {"plan": "pro", "age": 41}, rec
    assert rec[0]["expiredFields"] == ["email"], rec
    assert rs.scan_dir_for(SRV.data, [EMAIL.encode()]) == []
    p = scan_value()
    assert p.returncode == 0 and p.stdout.startswith("CLEAN"), p.stdout + p.stderr


def test_restart_keeps_it_gone():
    SRV.stop()
    SRV.start()
    ev = export("frank")
    assert ev[0]["event"]["properties"] == {"plan": "pro", "age": 41}, ev
    assert ev[0]["expiredFields"] == ["email"], ev
    assert metric("recstream_privacy_epoch_keys") == 0


def test_new_event_gets_a_new_key():
    send([{"userId": "frank", "eventType": "signup", "eventId": "fr-2",
           "properties": {"email": "second@example.com", "plan": "free"}}])
    ev = [e for e in export("frank") if e["event"]["eventId"] == "fr-2"]
    assert ev[0]["event"]["properties"] == {"email": "second@example.com", "plan": "free"}, ev
    assert metric("recstream_privacy_epoch_keys") == 1
    # An event without the marked property carries no bundle and is stored as before.
    send([{"userId": "frank", "eventType": "signup", "eventId": "fr-3",
           "properties": {"plan": "team"}}])
    ev = [e for e in export("frank") if e["event"]["eventId"] == "fr-3"]
    assert ev[0]["event"]["properties"] == {"plan": "team"} and "expiredFields" not in ev[0], ev


TOPIC = "fieldret-e2e"


def test_kafka_log_carries_the_bundle():
    mock = subprocess.Popen([rs.BIN, "dev", "kafka-mock", "--brokers", "1", "--partitions", "2",
                             "--topic", TOPIC], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    srv = None
    try:
        line = mock.stdout.readline().strip()
        assert line.startswith("bootstrap="), line
        bootstrap = line[len("bootstrap="):]
        srv = rs.Server("--log", "kafka://%s/%s" % (bootstrap, TOPIC), *ARGS[2:])
        srv.start()
        st, body = rs.call_json(srv, "PUT", "/v1/schemas/signup/1-0-0", SCHEMA)
        assert st in (200, 201), body
        send([{"userId": "kay", "eventType": "signup", "eventId": "k-1",
               "properties": {"email": EMAIL, "plan": "pro"}}], srv)
        ev = rs.wait_for("the event in the export", lambda: export("kay", srv),
                         lambda e: len(e) == 1)
        assert ev[0]["event"]["properties"] == {"email": EMAIL, "plan": "pro"}, ev
        p = subprocess.run(["timeout", "60", "kcat", "-C", "-b", bootstrap, "-t", TOPIC, "-o",
                            "beginning", "-e", "-q", "-f", "%s\n"], stdout=subprocess.PIPE)
        assert p.returncode == 0 and p.stdout and EMAIL.encode() not in p.stdout
        rs.wait_for("the epoch key destroyed",
                    lambda: metric("recstream_retention_epoch_keys_destroyed_total", srv),
                    lambda n: n >= 1, timeout=SHORT_S + 6)
        ev = export("kay", srv)
        assert ev[0]["event"]["properties"] == {"plan": "pro"}, ev
        assert ev[0]["expiredFields"] == ["email"], ev
    except Exception:
        if srv:
            print(open(srv.stderr_path).read()[-3000:])
        raise
    finally:
        if srv:
            srv.stop()
            srv.cleanup()
        if mock.poll() is None:
            mock.send_signal(signal.SIGTERM)
            try:
                mock.wait(30)
            except subprocess.TimeoutExpired:
                mock.kill()
                mock.wait(30)


if __name__ == "__main__":
    runner = rs.Runner()
    SRV.start()
    try:
        for t in (test_short_field_lives_then_is_shredded, test_restart_keeps_it_gone,
                  test_new_event_gets_a_new_key):
            runner.run(t)
    finally:
        SRV.stop()
        SRV.cleanup()
    runner.run(test_kafka_log_carries_the_bundle)
    runner.finish()
