#!/usr/bin/env python3
"""API node vs embedded node: recommendation latency and freshness through Redis.

Starts a redis-server (private unix socket), a processor node (`serve --store`, embedded log)
and an API node (`serve --role api --store`, its own data directory, the processor's
pseudonymisation key); loads the MovieLens 100k items and the first RATINGS ratings into the
processor; waits until the API node has restored every partition and both models are
stable; then, alternating REPEAT times, runs wrk (GET /v1/users/{1..943}/recommendations,
reco_get.lua) against each node, and reports medians of requests/s and latency percentiles.
Freshness: SAMPLES times, at a random moment, one event for a new user posted to the processor, then the API
node polled (every 2 ms) until that user's list is personalised: acknowledgement to visible.

Usage: bench/api_node.py [--ratings N] [--duration S] [--repeat N] [--connections C]
       [--samples N] [--store-interval DURATION]
The binary is build/recstream, or $RECSTREAM_BIN (use a release build)."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import rs  # noqa: E402
import rsredis  # noqa: E402
from benchlib import BIN, duration_s, freshness, metric, metric_labels, pct  # noqa: E402

rs.BIN = BIN
SHARED = os.environ.get("RECSTREAM_SHARED", os.path.join(HERE, "..", "..", "shared"))
ML = os.path.join(SHARED, "data", "ml-100k")
if not os.path.exists(ML):
    ML = os.path.join(SHARED, "ml-100k")


def load(proc, ratings):
    with open(os.path.join(ML, "u.genre"), encoding="latin-1") as f:
        genres = [line.split("|")[0] for line in f if "|" in line]
    items = []
    with open(os.path.join(ML, "u.item"), encoding="latin-1") as f:
        for line in f:
            c = line.rstrip("\n").split("|")
            if len(c) >= 6:
                items.append({"itemId": c[0], "title": c[1][:200],
                              "categories": [g for g, x in zip(genres, c[5:]) if x == "1"][:8]})
    for i in range(0, len(items), 500):
        st, body = rs.call_json(proc, "POST", "/v1/items", items[i:i + 500])
        assert st == 200, body
    rows = []
    with open(os.path.join(ML, "u.data")) as f:
        for n, line in enumerate(f, 1):
            u, i, r, s = line.split()
            rows.append((int(s), n, u, i, int(r)))
    rows.sort()
    events = [{"eventId": "ml-%d" % n, "userId": u, "eventType": "rating", "itemId": i,
               "value": r, "timestamp": s * 1000} for s, n, u, i, r in rows[:ratings]]
    for i in range(0, len(events), 1000):
        st, _, body = proc.post_json("/v1/events", events[i:i + 1000])
        assert st == 200, body
    return rows[ratings - 1][0] * 1000 if ratings <= len(rows) else rows[-1][0] * 1000


def wrk(srv, args):
    env = dict(os.environ, USERS="943", PREFIX="", WIDTH="1", COUNT="10", API_KEY=srv.key or "")
    out = subprocess.run(["wrk", "-t2", "-c%d" % args.connections, "-d%ds" % args.duration,
                          "--latency", "-s", os.path.join(HERE, "reco_get.lua"),
                          "http://127.0.0.1:%d" % srv.port],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                         check=True).stdout
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[8:])
    raise RuntimeError("wrk printed no summary:\n" + out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ratings", type=int, default=100000)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--store-interval", default="200ms")
    args = ap.parse_args()
    redis = rsredis.Redis().start()
    common = ["--partitions", "8", "--store", redis.url, "--store-interval", args.store_interval,
              "--retention-state", "3650d", "--retention-aggregates", "3650d"]
    proc = rs.Server(*(common + ["--fsync", "none", "--queue-bytes", "256MiB"]))
    api = None
    try:
        proc.start()
        api = rs.Server(*(common + ["--role", "api", "--key-file",
                                    os.path.join(proc.data, "privacy", "pseudonym.key")]))
        api.start()
        t0 = time.time()
        last_ts = load(proc, args.ratings)
        print("loaded %d ratings in %.1f s" % (args.ratings, time.time() - t0), flush=True)
        rs.wait_for("the API node to catch up",
                    lambda: metric_labels(proc, "recstream_log_high_water") ==
                    metric_labels(api, "recstream_store_partition_offset"), lambda v: v, timeout=120,
                    every=0.2)
        builds = lambda: (metric(proc, "recstream_reco_model_builds_total"),  # noqa: E731
                          metric(api, "recstream_reco_model_builds_total"))
        prev = None
        for _ in range(60):  # models stable: no build for 3 s
            time.sleep(3)
            b = builds()
            if b == prev:
                break
            prev = b
        res = {"embedded": [], "api": []}
        for _ in range(args.repeat):
            for name, srv in (("embedded", proc), ("api", api)):
                res[name].append(wrk(srv, args))
        print("\n| node | req/s | p50 ms | p90 ms | p99 ms | non-2xx |")
        print("|---|---|---|---|---|---|")
        for name in ("embedded", "api"):
            r = res[name]
            med = lambda k: statistics.median(x[k] for x in r)  # noqa: E731
            print("| %s | %.0f (%.0f-%.0f) | %.2f | %.2f | %.2f | %d |" % (
                name, med("rps"), min(x["rps"] for x in r), max(x["rps"] for x in r),
                med("p50_us") / 1000, med("p90_us") / 1000, med("p99_us") / 1000,
                sum(x["non2xx"] for x in r)))
        f = freshness(proc, api, args.samples, last_ts + 1000, duration_s(args.store_interval))
        print("\nfreshness (ack on the processor -> personalised on the API node, %d samples, "
              "--store-interval %s): p50 %.0f ms, p90 %.0f ms, p99 %.0f ms, max %.0f ms" % (
                  len(f), args.store_interval, pct(f, 50), pct(f, 90), pct(f, 99), max(f)))
        m = metric_labels(api, "recstream_store_partition_offset")
        print("API node restored %d partitions; store metrics:" % len(m))
        for n in ("recstream_store_aggregates_restored_total", "recstream_store_user_reads_total",
                  "recstream_store_restore_us"):
            print("  %s %s" % (n, metric(api, n)))
        for n in ("recstream_store_rounds_total", "recstream_store_users_published_total",
                  "recstream_store_bytes_total", "recstream_store_round_us"):
            print("  %s %s" % (n, metric(proc, n)))
        print("  aggregate images (aggBytes per partition): %s" % ", ".join(
            (redis.cmd("HGET", "rs:{p%d}:meta" % p, "aggBytes") or b"0").decode()
            for p in range(len(m))))
    finally:
        for s in (api, proc):
            if s:
                s.stop()
                s.cleanup()
        redis.stop()


if __name__ == "__main__":
    main()
