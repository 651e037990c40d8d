#!/usr/bin/env python3
"""Differential check of recommendation replies between two builds: pure efficiency changes
must not change a single reply.

One server state is loaded as bench/reco_http.py loads it (`recstream simulate`, 2,000 users,
2,000 items, 20 s at 20,000 events/s) by the OLD binary, which is then stopped; each binary
then serves a copy of that data directory (restored the same way), and the same requests go to
both: 300 random users, counts 1-100, `category=`, device/locale context, `exclude=`, unknown
users, similar items. Replies are compared byte for byte after blanking `tookUs` and the
random part of the recId. Exit status 1 and the first differences when any reply differs.
With --score-tol REL, scores may differ by that relative amount (a change of floating-point
arithmetic, e.g. another summation order); items, their order, sources and reasons must not.

Usage: bench/reco_diff.py OLD_BINARY NEW_BINARY [--keep DIR] [--score-tol REL]"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from benchlib import admin_key, auth_headers, free_port, wait_port

CATEGORIES = ["grocery", "fashion", "toys", "home", "movies", "music", "games"]


def start(binary, data):
    port = free_port()
    log = open(data + ".log", "a")
    proc = subprocess.Popen([binary, "serve", "--data", data, "--listen", "127.0.0.1:%d" % port,
                             "--fsync", "batch:5", "--queue-bytes", "256MiB"], stderr=log)
    wait_port(port, 120)
    return proc, port, admin_key(data)


def get(port, key, path):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), headers=auth_headers(key))
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read().decode()
    except urllib.error.HTTPError as e:
        return "HTTP%d %s" % (e.code, e.read().decode())


def settle(port, key, quiet_s=7):
    """Waits until the model stops being rebuilt (as reco_http.py does)."""
    last, since = None, time.time()
    while True:
        m = re.search(r"^recstream_reco_model_builds_total (\S+)$", get(port, key, "/metrics"), re.M)
        b = m and m.group(1)
        if b != last:
            last, since = b, time.time()
        elif time.time() - since >= quiet_s:
            return
        time.sleep(0.5)


def requests():
    rnd = random.Random(11)
    paths = ["/v1/users/user-%04d/recommendations?count=10" % rnd.randint(1, 2000)
             for _ in range(300)]
    paths += ["/v1/users/user-%04d/recommendations?count=%d" % (u, c)
              for u, c in ((5, 1), (17, 50), (33, 100), (77, 3))]
    paths += ["/v1/users/user-%04d/recommendations?count=10&category=%s" % (u, CATEGORIES[u % 7])
              for u in range(1, 30)]
    paths += ["/v1/users/user-%04d/recommendations?count=10&context.device=mobile"
              "&context.locale=en-US" % u for u in range(1, 30)]
    paths += ["/v1/users/nobody-%d/recommendations?count=10" % i for i in range(5)]
    paths += ["/v1/users/user-0042/recommendations?count=10&exclude=item-00610,item-00174"]
    paths += ["/v1/items/item-%05d/similar?count=10" % i for i in range(1, 30)]
    paths += ["/v1/users/user-%04d/recommendations?count=10&context.device=desktop"
              "&exclude=item-00610" % u for u in range(100, 130)]
    return paths


def same(x, y, tol):
    """x and y equal, numbers under key "score" within relative tolerance tol (plus one unit
    of the 6 decimals printed: a value near a rounding boundary may print either way)."""
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(
            abs(x[k] - y[k]) <= tol * max(abs(x[k]), abs(y[k])) + 1.5e-6 if k == "score" and tol
            and isinstance(x[k], (int, float)) and isinstance(y[k], (int, float))
            else same(x[k], y[k], tol) for k in x)
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(same(a, b, tol) for a, b in zip(x, y))
    return x == y


def first_diff(x, y, path=""):
    """Where two parsed replies first differ, as "path: old -> new"."""
    if isinstance(x, dict) and isinstance(y, dict) and x.keys() == y.keys():
        for k in x:
            d = first_diff(x[k], y[k], path + "." + k)
            if d:
                return d
        return None
    if isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        for i, (a, b) in enumerate(zip(x, y)):
            d = first_diff(a, b, "%s[%d]" % (path, i))
            if d:
                return d
        return None
    return None if x == y else "%s: %s -> %s" % (path or "reply", json.dumps(x)[:200],
                                                  json.dumps(y)[:200])


def where(x, y):
    try:
        return first_diff(json.loads(x), json.loads(y))
    except ValueError:
        return "not JSON"


def equal(x, y, tol):
    if x == y:
        return True
    try:
        return bool(tol) and same(json.loads(x), json.loads(y), tol)
    except ValueError:
        return False


def replies(binary, gold, work):
    shutil.copytree(gold, work, symlinks=True)
    proc, port, key = start(binary, os.path.join(work, "data"))
    try:
        settle(port, key)
        out = []
        for path in requests():
            body = re.sub(r'"tookUs":\d+', '"tookUs":0', get(port, key, path))
            body = re.sub(r'"recId":"([a-z]+\.[^".]+)\.[0-9a-f]{16}"', r'"recId":"\1.X"', body)
            out.append((path, body))
        return out
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--keep", help="keep the loaded state in this directory")
    ap.add_argument("--score-tol", type=float, default=0,
                    help="relative tolerance for scores (default 0: byte-identical replies)")
    args = ap.parse_args()
    tmp = args.keep or tempfile.mkdtemp(prefix="rs-reco-diff-")
    try:
        gold = os.path.join(tmp, "gold")
        if not os.path.isdir(gold):
            os.makedirs(gold)
            proc, port, key = start(args.old, os.path.join(gold, "data"))
            subprocess.run([args.old, "simulate", "--url", "http://127.0.0.1:%d" % port,
                            "--users", "2000", "--items", "2000", "--rate", "20000",
                            "--duration", "20", "--seed", "1", "--quiet"], check=True,
                           stdout=subprocess.DEVNULL, env=dict(os.environ, RECSTREAM_API_KEY=key))
            settle(port, key)
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        a = replies(args.old, gold, os.path.join(tmp, "old"))
        b = replies(args.new, gold, os.path.join(tmp, "new"))
        diff = [(p, x, y) for (p, x), (_, y) in zip(a, b) if not equal(x, y, args.score_tol)]
        print("%d requests, %d replies differ" % (len(a), len(diff)))
        for p, x, y in diff[:3]:
            print("%s\n  old: %s\n  new: %s\n  first difference at %s" % (p, x[:400], y[:400],
                                                                where(x, y)))
        return 1 if diff else 0
    finally:
        for d in ("old", "new"):
            shutil.rmtree(os.path.join(tmp, d), ignore_errors=True)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
