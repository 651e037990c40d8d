#!/usr/bin/env python3
"""Startup time with a large log: fills a data directory with N events over HTTP (100-event
batches, 100k users, 20k items), lets the processor catch up, stops cleanly (final
checkpoint), then measures restarts: (a) with the checkpoint: time to /readyz and to state
caught up; (b) with the checkpoints removed: full replay of the log.

Usage: bench/startup.py [--events N]"""
import argparse
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from benchlib import BIN, admin_key, auth_headers, free_port, wait_ready

AUTH = {}  # Authorization header with the server's admin key (auth on, as in production)


def start(data, port):
    proc = subprocess.Popen([BIN, "serve", "--data", data, "--listen", "127.0.0.1:%d" % port,
                             "--fsync", "batch:5", "--queue-bytes", "256MiB"], stderr=subprocess.DEVNULL)
    t0 = time.time()
    wait_ready(port, 3600)
    AUTH.update(auth_headers(admin_key(data)))
    return proc, time.time() - t0


def caught_up(port, probe_user, expect):
    """Seconds until the probe user's profile shows `expect` events."""
    t0 = time.time()
    c = http.client.HTTPConnection("127.0.0.1", port)
    while True:
        c.request("GET", "/v1/users/%s/profile" % probe_user, headers=AUTH)
        r = c.getresponse()
        body = r.read()
        assert r.status in (200, 404), r.status
        if r.status == 200 and json.loads(body)["events"] >= expect:
            return time.time() - t0
        time.sleep(0.01)


def fill(port, n, threads=2):
    per = n // threads

    def run(tid):
        rnd = random.Random(tid)
        c = http.client.HTTPConnection("127.0.0.1", port)
        now = int(time.time() * 1000) - 3600 * 1000
        for b in range(per // 100):
            evs = [{"userId": "u%d" % rnd.randint(1, 100000), "eventType": "view",
                    "itemId": "i%d" % rnd.randint(1, 20000), "timestamp": now + b} for _ in range(100)]
            c.request("POST", "/v1/events", json.dumps(evs), {"Content-Type": "application/json", **AUTH})
            r = c.getresponse()
            r.read()
            assert r.status == 200
    ts = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rs-startup-")
    data = os.path.join(tmp, "data")
    port = free_port()
    try:
        proc, _ = start(data, port)
        t0 = time.time()
        fill(port, args.events)
        fill_s = time.time() - t0
        # The probe: one known user, last event, so "caught up" is observable.
        c = http.client.HTTPConnection("127.0.0.1", port)
        c.request("POST", "/v1/events", json.dumps([{"userId": "probe", "eventType": "view", "itemId": "p"}]),
                  {"Content-Type": "application/json", **AUTH})
        c.getresponse().read()
        process_s = caught_up(port, "probe", 1) + fill_s
        proc.send_signal(signal.SIGTERM)
        proc.wait(600)
        du = subprocess.run(["du", "-sb", os.path.join(data, "log"), os.path.join(data, "checkpoints")],
                            stdout=subprocess.PIPE, text=True).stdout.split()
        print("filled %d events in %.1f s; processed by %.1f s; log %.0f MiB, checkpoints %.0f MiB" % (
            args.events, fill_s, process_s, int(du[0]) / 2**20, int(du[2]) / 2**20))
        proc, ready = start(data, port)
        up = caught_up(port, "probe", 1)
        print("restart with checkpoint: ready after %.2f s, state caught up %.2f s later" % (ready, up))
        proc.send_signal(signal.SIGTERM)
        proc.wait(600)
        shutil.rmtree(os.path.join(data, "checkpoints"))
        proc, ready = start(data, port)
        up = caught_up(port, "probe", 1)
        print("restart without checkpoint (full replay): ready after %.2f s, state caught up %.2f s later" % (ready, up))
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
