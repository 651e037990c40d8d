#!/usr/bin/env python3
"""Ingestion through Kafka: wrk against `recstream serve --log kafka://...` on librdkafka's
mock cluster (`recstream dev kafka-mock`, 3 brokers, 6 partitions, all on this machine), and
in the same run against `recstream serve` on the embedded log (--fsync batch:5) for a
reference. A reply means every record of the request has its delivery report (acks=all,
idempotent producer). Reports requests/s, events/s, p50/p99 (medians over REPEAT runs).

Usage: bench/kafka_ingest.py [--duration S] [--repeat N] [--connections C] [--sizes 1,10,100]"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import tempfile

from benchlib import BIN, admin_key, free_port, wait_port
from ingest import make_bodies, wrk


def start_mock():
    proc = subprocess.Popen([BIN, "dev", "kafka-mock", "--brokers", "3", "--partitions", "6",
                             "--topic", "bench"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().strip()
    assert line.startswith("bootstrap="), line
    return proc, line[len("bootstrap="):]


def start_server(tmp, label, extra):
    port = free_port()
    data = os.path.join(tmp, "data-" + label)
    shutil.rmtree(data, ignore_errors=True)
    log = open(os.path.join(tmp, "recstream-%s.log" % label), "a")
    proc = subprocess.Popen([BIN, "serve", "--data", data, "--listen", "127.0.0.1:%d" % port,
                             "--queue-bytes", "256MiB", "--dedup-max", "100000"] + extra,
                            stderr=log)
    wait_port(port, timeout=60)
    return proc, port, admin_key(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--sizes", default="1,10,100")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rs-kbench-")
    sizes = [int(x) for x in args.sizes.split(",")]
    bodies = {}
    for n in sizes:
        bodies[n] = os.path.join(tmp, "bodies-%d.txt" % n)
        make_bodies(bodies[n], n)
    results = {}
    # A fresh mock cluster per kafka run, so no run replays the previous runs' topic.
    targets = [("kafka", None), ("file batch:5", ["--fsync", "batch:5"])]
    mock = None
    try:
        for rep in range(args.repeat):
            for n in sizes:
                for label, extra in (targets if rep % 2 == 0 else targets[::-1]):
                    if extra is None:
                        mock, bootstrap = start_mock()
                        extra = ["--log", "kafka://%s/bench" % bootstrap]
                    proc, port, key = start_server(tmp, label.split()[0], extra)
                    try:
                        r = wrk("http://127.0.0.1:%d/topics/user-interactions" % port, bodies[n],
                                args.duration, args.connections,
                                "application/vnd.kafka.json.v2+json", key)
                    finally:
                        proc.send_signal(signal.SIGTERM)
                        proc.wait(120)
                        if mock:
                            mock.send_signal(signal.SIGTERM)
                            mock.wait(30)
                            mock = None
                    results.setdefault((label, n), []).append(r)
                    print("rep %d %-13s n=%-3d %8.0f req/s %9.0f ev/s p50 %6d us p99 %7d us" % (
                        rep, label, n, r["rps"], r["rps"] * n, r["p50_us"], r["p99_us"]),
                        flush=True)
    finally:
        if mock:
            mock.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n| target | events/request | req/s | events/s | p50 us | p99 us |")
    print("|---|---|---|---|---|---|")
    for n in sizes:
        for label, _ in targets:
            rs = results[(label, n)]
            rps = statistics.median(r["rps"] for r in rs)
            print("| %s | %d | %.0f | %.0f | %d | %d |" % (
                label, n, rps, rps * n, statistics.median(r["p50_us"] for r in rs),
                statistics.median(r["p99_us"] for r in rs)))


if __name__ == "__main__":
    main()
