#!/usr/bin/env python3
"""Ingestion benchmark: wrk against `recstream serve` and, in the same run, against nginx
answering the same POSTs with `return 200`. Reports requests/s, events/s, p50/p99 and the
ratio to nginx (medians over REPEAT runs), plus bytes on disk per event.

Auth is on, as in production: every POST carries the server's admin key (Authorization:
Bearer); nginx gets the same header. --auth off runs recstream with --insecure-no-auth, --auth
both interleaves the two to measure what access control costs.

Usage: bench/ingest.py [--duration S] [--repeat N] [--connections C] [--auth on|off|both]
                       [--insecure-no-auth] [--out FILE]"""
import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

from benchlib import BIN, ROOT, admin_key, free_port, wait_port
LUA = os.path.join(ROOT, "bench", "post.lua")
# Targets that check no key (nginx, --insecure-no-auth) get a well-formed dummy key, so every
# target receives the same request bytes and an A/B measures the server's check alone.
DUMMY_KEY = "rsk_00000000_" + "0" * 64
TYPES = ["view", "view", "view", "click", "scroll", "dwell", "add_to_cart", "purchase"]


def make_bodies(path, events_per_request, n_bodies=200):
    rnd = random.Random(42)
    now = int(time.time() * 1000)
    with open(path, "w") as f:
        for _ in range(n_bodies):
            recs = []
            for _ in range(events_per_request):
                ev = {"userId": "user-%d" % rnd.randint(1, 100000), "eventType": rnd.choice(TYPES),
                      "itemId": "product-%d" % rnd.randint(1, 20000), "timestamp": now - rnd.randint(0, 60000),
                      "sessionId": "s-%d" % rnd.randint(1, 1000000),
                      "context": {"device": rnd.choice(["mobile", "desktop"]), "page": "/p/%d" % rnd.randint(1, 999)}}
                recs.append({"value": ev})
            f.write(json.dumps({"records": recs}, separators=(",", ":")) + "\n")


def wrk(url, bodies, duration, connections, ctype, key=None):
    env = dict(os.environ, BODIES_FILE=bodies, CONTENT_TYPE=ctype, API_KEY=key or "")
    out = subprocess.run(["wrk", "-t2", "-c%d" % connections, "-d%ds" % duration, "-s", LUA, url],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, check=True).stdout
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[8:])
    raise RuntimeError("wrk printed no summary:\n" + out)


def start_nginx(tmp):
    port = free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""worker_processes 2; daemon off; pid %(t)s/nginx.pid; error_log %(t)s/nginx.err;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path %(t)s; proxy_temp_path %(t)s; fastcgi_temp_path %(t)s;
  uwsgi_temp_path %(t)s; scgi_temp_path %(t)s; client_max_body_size 16m; keepalive_requests 1000000;
  server { listen 127.0.0.1:%(p)d; location / { return 200 '{"offsets":[]}'; } } }
""" % {"t": tmp, "p": port})
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", tmp], stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def start_recstream(tmp, fsync, auth=True):
    """Starts a server on a fresh data directory; returns (proc, port, data, admin key or None)."""
    port = free_port()
    data = os.path.join(tmp, "data-" + fsync.replace(":", ""))
    shutil.rmtree(data, ignore_errors=True)
    log = open(os.path.join(tmp, "recstream.log"), "a")
    proc = subprocess.Popen([BIN, "serve", "--data", data, "--listen", "127.0.0.1:%d" % port,
                             "--fsync", fsync, "--queue-bytes", "256MiB", "--dedup-max", "100000"]
                            + ([] if auth else ["--insecure-no-auth"]), stderr=log)
    wait_port(port)
    return proc, port, data, admin_key(data) if auth else None


def bytes_per_event(data):
    out = subprocess.run([BIN, "log", "stats", "--json", "--data", data], stdout=subprocess.PIPE,
                         text=True, check=True).stdout
    s = json.loads(out)
    return s["bytes_per_record"], s["records"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=int(os.environ.get("DURATION", 8)))
    ap.add_argument("--repeat", type=int, default=int(os.environ.get("REPEAT", 3)))
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--sizes", default="1,10,100")
    ap.add_argument("--fsync", default="batch:5,always")
    ap.add_argument("--auth", choices=["on", "off", "both"], default="on",
                    help="API keys checked (on, the default), --insecure-no-auth (off), or both")
    ap.add_argument("--insecure-no-auth", action="store_true", help="same as --auth off")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.insecure_no_auth:
        args.auth = "off"
    tmp = tempfile.mkdtemp(prefix="rs-bench-")
    sizes = [int(x) for x in args.sizes.split(",")]
    # Each target: (label, fsync policy, auth on?)
    auths = {"on": [True], "off": [False], "both": [True, False]}[args.auth]
    policies = [(pol + ("" if a else " no-auth"), pol, a) for pol in args.fsync.split(",")
                for a in auths]
    results = {}
    bodies = {}
    for n in sizes:
        bodies[n] = os.path.join(tmp, "bodies-%d.txt" % n)
        make_bodies(bodies[n], n)
    disk = {}
    try:
        ng, ng_port = start_nginx(tmp)
        for rep in range(args.repeat):
            # Interleave targets within each repetition so machine noise hits all alike.
            for n in sizes:
                r = wrk("http://127.0.0.1:%d/topics/user-interactions" % ng_port, bodies[n],
                        args.duration, args.connections, "application/vnd.kafka.json.v2+json",
                        DUMMY_KEY)
                results.setdefault(("nginx", n), []).append(r)
                print("rep %d nginx       n=%-3d %8.0f req/s p50 %5d us p99 %6d us" % (
                    rep, n, r["rps"], r["p50_us"], r["p99_us"]), flush=True)
                # Alternate the order too: the first target after nginx runs on a different
                # machine state (page cache, nginx winding down) than the ones after it.
                for pol, fsync, auth in (policies if rep % 2 == 0 else policies[::-1]):
                    proc, port, data, key = start_recstream(tmp, fsync, auth)
                    try:
                        r = wrk("http://127.0.0.1:%d/topics/user-interactions" % port, bodies[n],
                                args.duration, args.connections, "application/vnd.kafka.json.v2+json",
                                key or DUMMY_KEY)
                    finally:
                        proc.send_signal(signal.SIGTERM)
                        proc.wait(60)
                    results.setdefault((pol, n), []).append(r)
                    disk[(pol, n)] = bytes_per_event(data)
                    print("rep %d %-11s n=%-3d %8.0f req/s %9.0f ev/s p50 %5d us p99 %6d us non2xx %d" % (
                        rep, pol, n, r["rps"], r["rps"] * n, r["p50_us"], r["p99_us"], r["non2xx"]), flush=True)
                    shutil.rmtree(data, ignore_errors=True)
        ng.send_signal(signal.SIGQUIT)
        ng.wait(10)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def med(key, field):
        return statistics.median(r[field] for r in results[key])

    lines = ["| target | events/request | req/s (median) | events/s | p50 us | p99 us | vs nginx req/s | bytes on disk/event |",
             "|---|---|---|---|---|---|---|---|"]
    for n in sizes:
        ng_rps = med(("nginx", n), "rps")
        lines.append("| nginx `return 200` | %d | %.0f | - | %d | %d | 1.00 | - |" % (
            n, ng_rps, med(("nginx", n), "p50_us"), med(("nginx", n), "p99_us")))
        for pol, _, _ in policies:
            rps = med((pol, n), "rps")
            lines.append("| recstream `--fsync %s` | %d | %.0f | %.0f | %d | %d | %.2f | %.1f |" % (
                pol, n, rps, rps * n, med((pol, n), "p50_us"), med((pol, n), "p99_us"), rps / ng_rps,
                disk[(pol, n)][0]))
    table = "\n".join(lines)
    print()
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
