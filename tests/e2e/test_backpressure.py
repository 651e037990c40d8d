"""End-to-end: a full append queue answers 429 with Retry-After and buffers nothing."""
import json
import threading
import time

import rs

R = rs.Runner()


def events(prefix, n):
    return [{"eventId": "%s-%d" % (prefix, i), "userId": "u%d" % i, "eventType": "view",
             "itemId": "item-%d" % i, "properties": {"pad": "x" * 100}} for i in range(n)]


def test_queue_full_is_429():
    srv = rs.Server("--queue-bytes", "4096", "--fsync", "always", "--retry-after", "2")
    try:
        srv.start()
        st, headers, reply = srv.post_json("/v1/events", events("big", 100))
        assert st == 429, (st, reply)
        assert reply["error_code"] == 42901
        assert headers.get("retry-after") == "2"
        st, _, reply = srv.produce([{"value": e} for e in events("bigrest", 100)])
        assert st == 429 and reply["error_code"] == 42901
        # Nothing of the refused requests was stored; small requests still work.
        st, _, reply = srv.post_json("/v1/events", events("small", 3))
        assert st == 200 and reply["accepted"] == 3
        ids = [r["event"]["eventId"] for r in rs.dump(srv.data)]
        assert sorted(ids) == ["small-0", "small-1", "small-2"], ids
        st, _, body = srv.request("GET", "/metrics")
        assert b"recstream_overloaded_total 2" in body, body
    finally:
        srv.stop()
        srv.cleanup()


def test_concurrent_overload_loses_nothing_acknowledged():
    srv = rs.Server("--queue-bytes", "16k", "--fsync", "always")
    acked, refused, lock = set(), set(), threading.Lock()
    counts = {"200": 0, "429": 0, "other": 0}
    try:
        srv.start()

        def client(cid):
            for i in range(40):
                batch = events("c%d-%d" % (cid, i), 20)
                st, headers, reply = srv.post_json("/v1/events", batch)
                with lock:
                    if st == 200:
                        counts["200"] += 1
                        acked.update(e["eventId"] for e in batch)
                    elif st == 429:
                        counts["429"] += 1
                        assert headers.get("retry-after")
                        refused.update(e["eventId"] for e in batch)
                    else:
                        counts["other"] += 1

        threads = [threading.Thread(target=client, args=(c,)) for c in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("  replies: %s" % counts, flush=True)
        assert counts["other"] == 0
        ids = [r["event"]["eventId"] for r in rs.dump(srv.data)]
        assert len(ids) == len(set(ids))
        assert set(ids) == acked, "stored set differs from acknowledged set"
        assert not (set(ids) & refused)
    finally:
        srv.stop()
        srv.cleanup()


def main():
    for t in [test_queue_full_is_429, test_concurrent_overload_loses_nothing_acknowledged]:
        R.run(t)
    R.finish()


if __name__ == "__main__":
    main()
