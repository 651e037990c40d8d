"""End-to-end: SIGKILL while clients stream events with --fsync always; after restart every
acknowledged event is in the log exactly once, at the offset it was acknowledged with."""
import glob
import http.client
import json
import os
import random
import threading
import time

import rs

R = rs.Runner()
CLIENTS = 6


class Client(threading.Thread):
    """Sends batches of uniquely identified events until the server goes away."""

    def __init__(self, srv, cid, attempted, acked, lock):
        super().__init__(daemon=True)
        self.srv, self.cid, self.attempted, self.acked, self.lock = srv, cid, attempted, acked, lock
        self.seq = 0
        self.auth = srv.auth_headers()

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=10)
        rest = self.cid % 2 == 0
        while True:
            n = random.randint(1, 20)
            events = []
            for _ in range(n):
                self.seq += 1
                eid = "c%d-%s-%d" % (self.cid, self.srv.port, self.seq)
                events.append({"eventId": eid, "userId": "user-%d" % random.randint(1, 500),
                               "eventType": random.choice(["view", "click", "add_to_cart"]),
                               "itemId": "item-%d" % random.randint(1, 2000),
                               "timestamp": int(time.time() * 1000)})
            with self.lock:
                for e in events:
                    self.attempted[e["eventId"]] = e
            try:
                if rest:
                    body = json.dumps({"records": [{"value": e} for e in events]})
                    conn.request("POST", "/topics/user-interactions", body,
                                 {"Content-Type": "application/vnd.kafka.json.v2+json", **self.auth})
                else:
                    conn.request("POST", "/v1/events", json.dumps(events),
                                 {"Content-Type": "application/json", **self.auth})
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException):
                return
            if resp.status != 200:
                continue
            reply = json.loads(data)
            offs = reply["offsets"]
            with self.lock:
                for e, o in zip(events, offs):
                    if o is not None and o.get("offset") is not None:
                        self.acked[e["eventId"]] = (o["partition"], o["offset"])


def check_log(data, acked, attempted):
    recs = rs.dump(data)
    seen = {}
    for r in recs:
        eid = r["event"]["eventId"]
        assert eid not in seen, "event %s stored twice: %s and %s" % (eid, seen[eid], (r["partition"], r["offset"]))
        seen[eid] = (r["partition"], r["offset"])
    missing = [e for e in acked if e not in seen]
    assert not missing, "%d acknowledged events lost, e.g. %s" % (len(missing), missing[:3])
    moved = [e for e, pos in acked.items() if seen[e] != pos]
    assert not moved, "acknowledged offsets changed: %s" % moved[:3]
    unknown = [e for e in seen if e not in attempted]
    assert not unknown, unknown[:3]
    chk = rs.run_cli("log", "check", "--data", data, check=False)
    assert chk.returncode == 0 and "0 problems" in chk.stdout, chk.stdout
    return seen


def test_sigkill_while_streaming():
    srv = rs.Server("--partitions", "4", "--fsync", "always")
    attempted, acked, lock = {}, {}, threading.Lock()
    try:
        for round_ in range(3):
            srv.start()
            clients = [Client(srv, c + 10 * round_, attempted, acked, lock) for c in range(CLIENTS)]
            for c in clients:
                c.start()
            time.sleep(random.uniform(0.8, 2.0))
            srv.kill()
            for c in clients:
                c.join(15)
            srv.start()
            with lock:
                seen = check_log(srv.data, dict(acked), dict(attempted))
            print("  round %d: attempted %d, acknowledged %d, stored %d" % (
                round_, len(attempted), len(acked), len(seen)), flush=True)
            srv.stop()
        assert len(acked) > 500, "too little traffic to prove anything: %d" % len(acked)
        # Clients retry everything they ever sent (at-least-once); dedup keeps it exactly-once.
        srv.start()
        ids = list(attempted)
        for i in range(0, len(ids), 200):
            st, _, reply = srv.post_json("/v1/events", [attempted[e] for e in ids[i:i + 200]])
            assert st == 200, reply
            for e, o in zip(ids[i:i + 200], reply["offsets"]):
                if e in acked:
                    assert (o["partition"], o["offset"]) == acked[e]
        seen = check_log(srv.data, acked, attempted)
        assert set(seen) == set(attempted)
        srv.stop()
    finally:
        srv.cleanup()


def last_segment(data, partition):
    segs = sorted(glob.glob(os.path.join(data, "log", str(partition), "*.seg")))
    return segs[-1]


def test_torn_tail_is_truncated():
    srv = rs.Server("--partitions", "2", "--fsync", "always")
    try:
        srv.start()
        events = [{"eventId": "t-%d" % i, "userId": "u%d" % i, "eventType": "view", "itemId": "i"} for i in range(50)]
        st, _, reply = srv.post_json("/v1/events", events)
        assert st == 200
        srv.kill()
        seg = last_segment(srv.data, reply["offsets"][0]["partition"])
        size = os.path.getsize(seg)
        with open(seg, "rb") as f:
            head = f.read(64)
        with open(seg, "ab") as f:
            f.write(head[:37])  # a partial copy of a real frame: a torn write
        srv.start()
        assert "truncat" in srv.log().lower(), srv.log()
        assert os.path.getsize(seg) == size
        assert sorted(r["event"]["eventId"] for r in rs.dump(srv.data)) == sorted(e["eventId"] for e in events)
        st, _, reply2 = srv.post_json("/v1/events", [{"userId": "u0", "eventType": "view", "itemId": "j"}])
        assert st == 200
        srv.stop()
    finally:
        srv.cleanup()


def test_corruption_in_the_middle_is_refused():
    srv = rs.Server("--partitions", "1", "--fsync", "always")
    try:
        srv.start()
        events = [{"eventId": "m-%d" % i, "userId": "u%d" % i, "eventType": "view", "itemId": "i"} for i in range(100)]
        assert srv.post_json("/v1/events", events)[0] == 200
        srv.stop()
        seg = last_segment(srv.data, 0)
        with open(seg, "r+b") as f:
            f.seek(os.path.getsize(seg) // 3)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0xFF]))
        srv.start(wait=False)
        rc = srv.proc.wait(30)
        assert rc != 0, "server started on a corrupt log"
        assert "corrupt" in srv.log().lower(), srv.log()
        chk = rs.run_cli("log", "check", "--data", srv.data, check=False)
        assert chk.returncode == 1 and "problem" in chk.stdout, chk.stdout
    finally:
        srv.cleanup()


def main():
    for t in [test_sigkill_while_streaming, test_torn_tail_is_truncated, test_corruption_in_the_middle_is_refused]:
        R.run(t)
    R.finish()


if __name__ == "__main__":
    main()
