#!/usr/bin/env python3
"""Scale-out end to end: events/s and freshness through Kafka, a processor, Redis and an API node,
against the embedded single node with the same Redis and API node, alternated in one run.

Topology of the "kafka" target (all on this machine, every process started here):

    wrk --HTTP--> serve --log kafka://MOCK/bench --store redis://127.0.0.1:PORT   (ingest + process
                    |  produce / consume               |  publish                  + publish)
                    v                                  v
          dev kafka-mock (3 brokers, 6 partitions)   redis-server (private port, no persistence)
                                                       |  poll + per-request user reads
                                                       v
                                  serve --role api --store redis://127.0.0.1:PORT  <--probe--

The "embedded" target is the same with the embedded segment log (`--fsync batch:5`) instead of
Kafka, 6 partitions. Every repetition starts a fresh mock, Redis and data directories, for both
targets, in alternating order.

Measured per run:
- accepted: events/s acknowledged over HTTP (wrk -t2, bench/post.lua, Kafka REST v2 bodies of
  bench/ingest.py, EVENTS events per request, auth on);
- visible: events/s *applied end to end*: the API node's restored offsets
  (recstream_store_partition_offset, summed over partitions; they move only once the processor
  applied the events and published the partition's image) sampled every 100 ms; reported as
  the rate while wrk ran, and total events / (time from wrk's start until the API node had
  every event the log holds, recstream_log_high_water);
- freshness: after the load, SAMPLES events of new users posted to the ingesting node, each
  timed from its acknowledgement until the API node's list for that user is personalised
  (benchlib.freshness, shared with bench/api_node.py);
- replay (unless --no-replay): a second processor reads the whole log from offset 0 into a
  fresh Redis; its apply + publish rate between 10 % and 90 % of the log;
- sizes: an event on the topic (kcat), a user's record and the aggregate images in Redis.
Before the measurement every user of the request bodies sends one event (a user's first event
creates and fsyncs their encryption key; the load then measures known users).

Usage: bench/scaleout.py [--duration S] [--repeat N] [--events N] [--bodies N] [--connections C]
                         [--samples N] [--store-interval DURATION] [--targets kafka,embedded]
                         [--no-replay] [--no-kcat]
The binary is build/recstream, or $RECSTREAM_BIN (use a release build). Needs wrk, redis-server.
Every process is stopped by its PID on exit, also on failure, SIGINT or SIGTERM."""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time

from benchlib import (BIN, duration_s, free_port, freshness, metric, metric_labels, pct,
                      rs_module)
from ingest import make_bodies, wrk

rs = rs_module()
import rsredis  # noqa: E402  (tests/e2e, on the path after rs_module())

PARTITIONS = 6
TOPIC = "bench"


class Procs:
    """Every child process started here, stopped by PID (SIGTERM, then SIGKILL)."""

    def __init__(self):
        self.items = []

    def add(self, proc):
        self.items.append(proc)
        return proc

    def stop(self, proc, timeout=60):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if proc in self.items:
            self.items.remove(proc)

    def stop_all(self):
        for proc in reversed(list(self.items)):
            self.stop(proc, 20)


def start_mock(procs):
    proc = procs.add(subprocess.Popen(
        [BIN, "dev", "kafka-mock", "--brokers", "3", "--partitions", str(PARTITIONS), "--topic",
         TOPIC], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
    line = proc.stdout.readline().strip()
    if not line.startswith("bootstrap="):
        raise RuntimeError("kafka-mock printed %r" % line)
    return proc, line[len("bootstrap="):]


def redis_cmd(port, *args):
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        s.sendall(out)
        return rsredis._read(s.makefile("rb"))


def start_redis(procs, tmp):
    port = free_port()
    proc = procs.add(subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            if redis_cmd(port, "PING") == "PONG":
                return proc, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def serve(procs, tmp, name, args):
    srv = rs.Server(*args, data=os.path.join(tmp, name))
    srv.start(wait=False)
    procs.add(srv.proc)
    srv.wait_ready(timeout=60)
    return srv


def visible(api):
    return sum(metric_labels(api, "recstream_store_partition_offset").values())


def high_water(node):
    return sum(metric_labels(node, "recstream_log_high_water").values())


def run_target(target, args, bodies, procs):
    """One run of one target on fresh processes; returns a dict of results."""
    tmp = tempfile.mkdtemp(prefix="rs-scaleout-")
    started = []
    try:
        redis, rport = start_redis(procs, tmp)
        started.append(redis)
        store = ["--store", "redis://127.0.0.1:%d" % rport, "--store-interval", args.store_interval]
        if target == "kafka":
            mock, bootstrap = start_mock(procs)
            started.append(mock)
            log = ["--log", "kafka://%s/%s" % (bootstrap, TOPIC)]
        else:
            log = ["--partitions", str(PARTITIONS), "--fsync", "batch:5"]
        proc = serve(procs, tmp, "proc", log + store + ["--queue-bytes", "256MiB",
                                                         "--dedup-max", "100000"])
        started.append(proc.proc)
        api = serve(procs, tmp, "api", store + ["--role", "api", "--key-file",
                                                os.path.join(proc.data, "privacy",
                                                             "pseudonym.key")])
        started.append(api.proc)

        # Warm-up: every user of the bodies sends one event first, so the measured load is users
        # the node already knows (a user's first event creates and fsyncs their encryption key,
        # which would make this a benchmark of key creation).
        with open(bodies) as f:
            evs = [rec["value"] for line in f for rec in json.loads(line)["records"]]
        first = list({e["userId"]: e for e in evs}.values())
        for i in range(0, len(first), 500):
            st, _, body = proc.post_json("/v1/events", first[i:i + 500])
            assert st == 200, body
        hw0 = high_water(proc)
        deadline = time.time() + 120
        while visible(api) < hw0:
            if time.time() > deadline:
                raise RuntimeError("%s: the API node did not catch up with the warm-up" % target)
            time.sleep(0.05)
        vis0 = visible(api)

        samples = []
        stop = threading.Event()

        def sampler():
            while not stop.is_set():
                try:
                    samples.append((time.perf_counter(), visible(api)))
                except OSError:
                    pass
                stop.wait(0.1)

        th = threading.Thread(target=sampler, daemon=True)
        t0 = time.perf_counter()
        th.start()
        r = wrk("http://127.0.0.1:%d/topics/user-interactions" % proc.port, bodies, args.duration,
                args.connections, "application/vnd.kafka.json.v2+json", proc.key)
        t_end = time.perf_counter()
        total = high_water(proc)
        at_end = visible(api)
        if total == hw0:
            raise RuntimeError("%s: no event accepted" % target)
        deadline = time.time() + 120
        while visible(api) < total:
            if time.time() > deadline:
                raise RuntimeError("%s: the API node did not catch up: %d of %d" % (
                    target, visible(api), total))
            time.sleep(0.05)
        t_caught = time.perf_counter()
        stop.set()
        th.join()
        # Peak visible rate over any 1 s window while wrk ran.
        peak = 0.0
        for i, (ta, va) in enumerate(samples):
            for tb, vb in samples[i + 1:]:
                if tb - ta >= 1.0:
                    peak = max(peak, (vb - va) / (tb - ta))
                    break
        res = {
            "accepted": r["rps"] * args.events,
            "req_p50_us": r["p50_us"], "req_p99_us": r["p99_us"], "non2xx": r["non2xx"],
            "events": total - hw0, "visible_during": (at_end - vis0) / (t_end - t0),
            "lag_at_end": total - at_end, "catchup_s": t_caught - t_end,
            "e2e": (total - hw0) / (t_caught - t0), "peak_visible": peak,
            "rounds": metric(proc, "recstream_store_rounds_total"),
            "store_bytes": metric(proc, "recstream_store_bytes_total"),
            "users_published": metric(proc, "recstream_store_users_published_total"),
        }
        res["fresh"] = freshness(proc, api, args.samples, int(time.time() * 1000),
                                 duration_s(args.store_interval), item="product-1",
                                 prefix="fresh-" + target)
        if target == "kafka" and shutil.which("kcat") and args.kcat:
            # What one event costs on the topic: key + value + headers, as an outside client
            # reads them (kcat's %K key length, %S value length, %h headers).
            out = subprocess.run(
                ["kcat", "-C", "-b", bootstrap, "-t", TOPIC, "-o", "-200", "-e", "-q",
                 "-f", "%K %S %h\n"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                text=True, timeout=60).stdout
            sizes = []
            for line in out.splitlines():
                parts = line.split(" ", 2)
                if len(parts) >= 2:
                    sizes.append((int(parts[0]), int(parts[1]),
                                  len(parts[2]) if len(parts) > 2 else 0))
            if sizes:
                res["kafka_key"] = statistics.mean(s[0] for s in sizes)
                res["kafka_value"] = statistics.mean(s[1] for s in sizes)
                res["kafka_headers_text"] = statistics.mean(s[2] for s in sizes)
        res["replay_events"] = high_water(proc)
        users = redis_cmd(rport, "ZCARD", "rs:{p0}:users") or 0
        mem = redis_cmd(rport, "INFO", "memory").decode()
        used = int([x for x in mem.split("\r\n") if x.startswith("used_memory:")][0].split(":")[1])
        keys = redis_cmd(rport, "SCAN", "0", "MATCH", "rs:{u:*", "COUNT", "2000")[1][:200]
        usage = [u for u in (redis_cmd(rport, "MEMORY", "USAGE", k) for k in keys) if u]
        res["redis_used"] = used
        # The partitions' aggregate images (items, co-visitation, contexts; no users): size and
        # how many distinct items the load touched, for the bytes-per-item estimate.
        res["agg_bytes"] = [int(redis_cmd(rport, "HGET", "rs:{p%d}:meta" % p, "aggBytes") or 0)
                            for p in range(PARTITIONS)]
        with open(bodies) as f:
            res["items"] = len({rec["value"]["itemId"] for line in f
                                for rec in json.loads(line)["records"]})
        res["redis_dbsize"] = redis_cmd(rport, "DBSIZE")
        res["redis_user_bytes"] = statistics.mean(usage) if usage else 0
        res["users_p0"] = users
        if args.replay:
            for srv in (api, proc):
                procs.stop(srv.proc)
            res.update(replay(target, args, procs, tmp, proc.data, log, res["replay_events"]))
        return res
    finally:
        for p in reversed(started):
            procs.stop(p)
        shutil.rmtree(tmp, ignore_errors=True)


def replay(target, args, procs, tmp, data, log, total):
    """A second processor replays the log from the start (a fresh data directory with a copy of the
    first one's keys; on the embedded log, a copy of its log without checkpoints) into a fresh
    Redis: its apply rate when it is not waiting for HTTP. Timed from the process start until
    its published offsets (recstream_store_partition_offset, every 50 ms) reach the log's end."""
    redis, rport = start_redis(procs, tmp)
    data2 = os.path.join(tmp, "replay")
    if target == "kafka":
        os.makedirs(data2)
        shutil.copytree(os.path.join(data, "privacy"), os.path.join(data2, "privacy"))
    else:
        shutil.copytree(data, data2, ignore=shutil.ignore_patterns("LOCK"))
        shutil.rmtree(os.path.join(data2, "checkpoints"), ignore_errors=True)
    srv = rs.Server(*(log + ["--store", "redis://127.0.0.1:%d" % rport, "--store-interval", "50ms",
                             "--queue-bytes", "256MiB", "--dedup-max", "100000"]), data=data2)
    t0 = time.perf_counter()
    srv.start(wait=False)
    procs.add(srv.proc)
    try:
        srv.wait_ready(timeout=60)
        t_ready = time.perf_counter()
        deadline = time.time() + 120
        seen = []
        while True:
            v = sum(metric_labels(srv, "recstream_store_partition_offset").values())
            seen.append((time.perf_counter(), v))
            if v >= total:
                break
            if time.time() > deadline:
                raise RuntimeError("%s: the replaying processor did not catch up" % target)
            time.sleep(0.02)
        t1 = time.perf_counter()
    finally:
        procs.stop(srv.proc)
        procs.stop(redis)
    # The rate between the first samples at >= 10 % and >= 90 % of the log, so the start-up
    # (key loading, dedup rebuild) and the last publication round do not count.
    a = next(x for x in seen if x[1] >= 0.1 * total)
    b = next(x for x in seen if x[1] >= 0.9 * total)
    rate = (b[1] - a[1]) / (b[0] - a[0]) if b[0] > a[0] else float("nan")
    return {"replay_s": t1 - t0, "replay_ready_s": t_ready - t0, "replay_rate": rate}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--events", type=int, default=1, help="events per request")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--samples", type=int, default=100, help="freshness probes per run")
    ap.add_argument("--store-interval", default="200ms")
    ap.add_argument("--targets", default="kafka,embedded")
    ap.add_argument("--no-kcat", dest="kcat", action="store_false")
    ap.add_argument("--no-replay", dest="replay", action="store_false",
                    help="skip the second processor replaying the log")
    ap.add_argument("--bodies", type=int, default=2000,
                    help="distinct request bodies (with 1 event each: about as many users)")
    args = ap.parse_args()
    procs = Procs()

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    tmp = tempfile.mkdtemp(prefix="rs-scaleout-bodies-")
    targets = args.targets.split(",")
    results = {t: [] for t in targets}
    try:
        bodies = os.path.join(tmp, "bodies.txt")
        make_bodies(bodies, args.events, args.bodies)
        for rep in range(args.repeat):
            for t in (targets if rep % 2 == 0 else targets[::-1]):
                r = run_target(t, args, bodies, procs)
                results[t].append(r)
                f = r["fresh"]
                print("rep %d %-8s accepted %7.0f ev/s | visible during load %7.0f ev/s, peak 1s "
                      "%7.0f, lag at end %6d, caught up %.2f s later, end to end %7.0f ev/s | "
                      "fresh p50 %.1f p99 %.1f ms | req p99 %d us non2xx %d | rounds %s bytes %s"
                      " | replay %s ev/s" % (
                          rep, t, r["accepted"], r["visible_during"], r["peak_visible"],
                          r["lag_at_end"], r["catchup_s"], r["e2e"], pct(f, 50), pct(f, 99),
                          r["req_p99_us"], r["non2xx"], r["rounds"], r["store_bytes"],
                          "%.0f (%d events in %.2f s, ready after %.2f s)" % (
                              r["replay_rate"], r["replay_events"], r["replay_s"],
                              r["replay_ready_s"]) if "replay_rate" in r else "-"),
                      flush=True)
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    def med(t, k):
        xs = [r[k] for r in results[t]]
        return statistics.median(xs), min(xs), max(xs)

    print("\n| target | accepted ev/s | visible during load ev/s | end to end ev/s | "
          "lag at end (events) | catch-up s | freshness p50 ms | p90 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for t in targets:
        fr = [x for r in results[t] for x in r["fresh"]]
        cells = []
        for k in ("accepted", "visible_during", "e2e", "lag_at_end"):
            m, lo, hi = med(t, k)
            cells.append("%.0f (%.0f-%.0f)" % (m, lo, hi))
        m, lo, hi = med(t, "catchup_s")
        cells.append("%.2f (%.2f-%.2f)" % (m, lo, hi))
        print("| %s | %s | %.0f | %.0f | %.0f | %.0f |" % (
            t, " | ".join(cells), pct(fr, 50), pct(fr, 90), pct(fr, 99), max(fr)))
        print("|   per run freshness p50/p99 ms: %s | %d samples |" % (
            ", ".join("%.0f/%.0f" % (pct(r["fresh"], 50), pct(r["fresh"], 99))
                      for r in results[t]), len(fr)))
    if len(targets) == 2:
        a, b = targets
        print("\nratios %s/%s, per repetition (run i of each): " % (a, b))
        for k in ("accepted", "visible_during", "e2e") + (("replay_rate",) if args.replay else ()):
            rat = [ra[k] / rb[k] for ra, rb in zip(results[a], results[b]) if rb[k]]
            print("  %-15s median %.2f (%s)" % (k, statistics.median(rat),
                                                 ", ".join("%.2f" % x for x in rat)))
        fa = [pct(r["fresh"], 50) / pct(s["fresh"], 50) for r, s in zip(results[a], results[b])]
        print("  %-15s median %.2f (%s)" % ("freshness p50", statistics.median(fa),
                                             ", ".join("%.2f" % x for x in fa)))
    for t in targets:
        r = results[t][-1]
        print("\n%s, last run: %d events, %s rounds, %s bytes published (%.0f per event), "
              "%s users published; Redis used_memory %d B, %d keys, %.0f B per user record "
              "(MEMORY USAGE, mean of up to 200)" % (
                  t, r["events"], r["rounds"], r["store_bytes"],
                  r["store_bytes"] / max(1, r["events"]), r["users_published"], r["redis_used"],
                  r["redis_dbsize"], r["redis_user_bytes"]))
        print("  aggregate images (aggBytes per partition): %s; %d distinct items in the load" % (
            ", ".join(str(x) for x in r["agg_bytes"]), r["items"]))
        if "kafka_key" in r:
            print("  on the topic (kcat, last 200 per partition): key %.1f B, value %.1f B, "
                  "headers as text %.1f B" % (r["kafka_key"], r["kafka_value"],
                                              r["kafka_headers_text"]))


if __name__ == "__main__":
    main()
