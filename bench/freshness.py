#!/usr/bin/env python3
"""Freshness: time from the HTTP acknowledgement of an event to its effect being visible in
a state read (GET /v1/users/{id}/profile), on the embedded default. Each sample posts one
event of a new user and polls the profile as fast as one keep-alive connection allows, so
the figure includes one HTTP round trip of polling granularity (~0.1 ms here).

Usage: bench/freshness.py [--samples N] [--fsync POLICY] [--background EV_PER_S]"""
import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time

from benchlib import BIN, admin_key, auth_headers, free_port, wait_port

AUTH = {}  # Authorization header with the server's admin key (auth on, as in production)


def background_load(port, rate, stop):
    """Other users' events at about `rate` events/s in batches of 50, so the processor is busy."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    i = 0
    while not stop.is_set():
        t0 = time.time()
        evs = [{"userId": "bg-%d" % ((i + k) % 5000), "eventType": "view", "itemId": "item-%d" % ((i * 7 + k) % 2000)}
               for k in range(50)]
        i += 50
        conn.request("POST", "/v1/events", json.dumps(evs), {"Content-Type": "application/json", **AUTH})
        conn.getresponse().read()
        delay = 50.0 / rate - (time.time() - t0)
        if delay > 0:
            time.sleep(delay)


def sample_once(post, poll, user, item, auth):
    """Posts one click of user (a new one) on post and polls its profile on poll until it
    shows; returns the milliseconds from the acknowledgement to the profile."""
    post.request("POST", "/v1/events", json.dumps([{"userId": user, "eventType": "click", "itemId": item}]),
                 {"Content-Type": "application/json", **auth})
    r = post.getresponse()
    r.read()
    acked = time.perf_counter()
    assert r.status == 200, r.status
    while True:
        poll.request("GET", "/v1/users/%s/profile" % user, headers=auth)
        pr = poll.getresponse()
        pr.read()
        assert pr.status in (200, 404), pr.status
        if pr.status == 200:
            return (time.perf_counter() - acked) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--fsync", default="always")
    ap.add_argument("--background", type=int, default=0)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rs-fresh-")
    port = free_port()
    proc = subprocess.Popen([BIN, "serve", "--data", os.path.join(tmp, "data"), "--listen",
                             "127.0.0.1:%d" % port, "--fsync", args.fsync], stderr=subprocess.DEVNULL)
    stop = threading.Event()
    try:
        wait_port(port)
        AUTH.update(auth_headers(admin_key(os.path.join(tmp, "data"))))
        if args.background:
            threading.Thread(target=background_load, args=(port, args.background, stop), daemon=True).start()
        post = http.client.HTTPConnection("127.0.0.1", port)
        poll = http.client.HTTPConnection("127.0.0.1", port)
        lat = []
        for i in range(args.samples):
            lat.append(sample_once(post, poll, "fresh-%d" % i, "item-%d" % (i % 100), AUTH) * 1e3)
        lat.sort()
        p50 = statistics.median(lat)
        p99 = lat[int(len(lat) * 0.99) - 1]
        print("freshness (ack -> visible in profile), fsync=%s, background=%d ev/s, %d samples: "
              "p50 %.0f us, p99 %.0f us, max %.0f us" % (args.fsync, args.background, len(lat), p50, p99, lat[-1]))
    finally:
        stop.set()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
