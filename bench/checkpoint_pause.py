#!/usr/bin/env python3
"""Checkpoint pauses: what a periodic checkpoint does to freshness when the state is large.

Fills a data directory with N view events over HTTP (100-event batches, 100k users, 20k
items, as bench/startup.py) and stops cleanly. Then, per repetition and per mode
(`--checkpoint-fork true` and `false`, alternating which goes first), starts a server on a
copy of that directory with `--checkpoint-interval 2s`, waits until it is ready, sends
background events at --background events/s and samples freshness back to back for
--duration seconds: post one event of a new user, poll its profile until it shows (one
keep-alive connection each). A checkpoint that pauses processing shows as samples that wait
for the pause. Reports per mode the median of each repetition's p50 / p99 / p99.9 / max
freshness, the samples over 100 ms, and from the server's log the checkpoints written and
(forked mode) the processing pause per checkpoint; also the server's peak resident memory
and (forked mode) the checkpoint child's peak private memory (sampled every 50 ms from
/proc: its serialised snapshots plus the pages the server copied on write meanwhile).

Usage: bench/checkpoint_pause.py [--events N] [--duration S] [--repeat R] [--background EV_PER_S]"""
import argparse
import glob
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time

import startup
from benchlib import BIN, admin_key, auth_headers, free_port, wait_ready
from freshness import background_load, sample_once, AUTH as FRESH_AUTH


def serve(data, port, fork, log):
    proc = subprocess.Popen([BIN, "serve", "--data", data, "--listen", "127.0.0.1:%d" % port,
                             "--fsync", "batch:5", "--queue-bytes", "256MiB",
                             "--checkpoint-interval", "2s", "--checkpoint-fork", fork],
                            stderr=open(log, "w"))
    wait_ready(port)
    return proc


def sample(port, auth, duration, tag):
    post = http.client.HTTPConnection("127.0.0.1", port)
    poll = http.client.HTTPConnection("127.0.0.1", port)
    lat = []
    end = time.time() + duration
    i = 0
    while time.time() < end:
        i += 1
        lat.append(sample_once(post, poll, "fresh-%s-%d" % (tag, i), "i%d" % (i % 100), auth))
    return sorted(lat)


def kib(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def watch_memory(pid, stop, peak):
    """Peak VmRSS of pid and peak Private_Dirty of any child of pid, in MiB."""
    while not stop.is_set():
        peak["rss"] = max(peak["rss"], kib("/proc/%d/status" % pid, "VmRSS") / 1024)
        kids = []
        for t in glob.glob("/proc/%d/task/*/children" % pid):  # forked by the checkpoint thread
            try:
                kids += open(t).read().split()
            except OSError:
                pass
        for k in kids:
            peak["child"] = max(peak["child"], kib("/proc/%s/smaps_rollup" % k, "Private_Dirty") / 1024)
        time.sleep(0.05)


def pct(v, q):
    return v[min(len(v) - 1, int(len(v) * q))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--background", type=int, default=5000)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rs-ckpt-pause-")
    base = os.path.join(tmp, "base")
    try:
        port = free_port()
        proc, _ = startup.start(base, port)
        t0 = time.time()
        startup.fill(port, args.events)
        c = http.client.HTTPConnection("127.0.0.1", port)
        c.request("POST", "/v1/events", json.dumps([{"userId": "probe", "eventType": "view", "itemId": "p"}]),
                  {"Content-Type": "application/json", **startup.AUTH})
        c.getresponse().read()
        startup.caught_up(port, "probe", 1)
        proc.send_signal(signal.SIGTERM)
        proc.wait(600)
        du = subprocess.run(["du", "-sb", os.path.join(base, "checkpoints")], stdout=subprocess.PIPE,
                            text=True).stdout.split()
        print("filled and processed %d events in %.0f s; checkpoints %.0f MiB (3 kept)" % (
            args.events, time.time() - t0, int(du[0]) / 2**20), flush=True)
        res = {"true": [], "false": []}
        for rep in range(args.repeat):
            for fork in (["true", "false"] if rep % 2 == 0 else ["false", "true"]):
                data = os.path.join(tmp, "run")
                shutil.rmtree(data, ignore_errors=True)
                shutil.copytree(base, data)
                log = os.path.join(tmp, "server-%d-%s.log" % (rep, fork))
                port = free_port()
                proc = serve(data, port, fork, log)
                auth = auth_headers(admin_key(data))
                FRESH_AUTH.clear()
                FRESH_AUTH.update(auth)
                stop = threading.Event()
                bg = threading.Thread(target=background_load, args=(port, args.background, stop), daemon=True)
                peak = {"rss": 0, "child": 0}
                mem = threading.Thread(target=watch_memory, args=(proc.pid, stop, peak), daemon=True)
                try:
                    time.sleep(1)
                    mem.start()
                    bg.start()
                    lat = sample(port, auth, args.duration, "%d%s" % (rep, fork))
                finally:
                    stop.set()
                    bg.join(10)
                    mem.join(10)
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(600)
                text = open(log).read()
                ckpts = [l for l in text.splitlines() if "checkpoint written" in l]
                paused = [float(x) for x in re.findall(r"paused_ms=([0-9.]+)", text)]
                took = [int(x) for x in re.findall(r"took_ms=(\d+)", "\n".join(ckpts[:-1]))]
                row = {"n": len(lat), "p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "p999": pct(lat, 0.999),
                       "max": lat[-1], "over100": sum(1 for x in lat if x > 100), "ckpts": len(ckpts) - 1,
                       "paused": statistics.median(paused) if paused else None,
                       "took": statistics.median(took) if took else None,
                       "rss": peak["rss"], "child": peak["child"]}
                res[fork].append(row)
                print("rep %d fork=%-5s samples %5d  p50 %.2f ms  p99 %.2f ms  p99.9 %.1f ms  max %.1f ms  "
                      ">100ms %d  checkpoints %d (took %s ms, paused %s ms)  rss %.0f MiB child %.0f MiB" % (
                          rep, fork, row["n"], row["p50"], row["p99"], row["p999"], row["max"],
                          row["over100"], row["ckpts"], row["took"], row["paused"], row["rss"],
                          row["child"]), flush=True)
        print("\n| --checkpoint-fork | reps | samples | p50 ms | p99 ms | p99.9 ms | max ms | samples > 100 ms | "
              "checkpoint took ms | paused ms | server peak RSS MiB | child peak private MiB |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for fork in ("true", "false"):
            rows = res[fork]
            med = lambda k: statistics.median(r[k] for r in rows)
            pz = [r["paused"] for r in rows if r["paused"] is not None]
            tk = [r["took"] for r in rows if r["took"] is not None]
            print("| %s | %d | %d | %.2f | %.2f | %.1f | %.1f | %d | %s | %s | %.0f | %s |" % (
                fork, len(rows), med("n"), med("p50"), med("p99"), med("p999"), med("max"), med("over100"),
                "%.0f" % statistics.median(tk) if tk else "-",
                "%.1f" % statistics.median(pz) if pz else "(not logged: the whole serialisation)",
                med("rss"), "%.0f" % med("child") if fork == "true" else "-"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
