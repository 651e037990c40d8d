#!/usr/bin/env python3
"""Recommendation serving over HTTP: wrk against GET /v1/users/{id}/recommendations?count=10
of `recstream serve` (random users, each with history) and, in the same run, against nginx
answering every GET with `return 200` and a JSON body of the same size. Reports requests/s,
the ratio to nginx (target >= 0.5), wrk's latency percentiles and the CPU time per request
of the server (from /proc) and of wrk, medians over REPEAT
alternated runs (with the range).

The server is loaded first by `recstream simulate` (catalog upload over POST /v1/items, then
sessions of events over POST /v1/events), and the script waits until the processor has
applied everything and the model is rebuilt (recstream_reco_model_builds_total stops moving).

Usage: bench/reco_http.py [--duration S] [--repeat N] [--connections C] [--users U]
       [--items I] [--rate EV_PER_S] [--load-seconds S] [--background EV_PER_S] [--out FILE]
The binary is build/recstream, or $RECSTREAM_BIN."""
import argparse
import json
import os
import random
import resource
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.request

from benchlib import BIN, ROOT, admin_key, auth_headers, free_port, wait_port

KEY = None  # the server's admin key (auth on, as in production), set by start_recstream
LUA = os.path.join(ROOT, "bench", "reco_get.lua")


def cpu_ticks(pids):
    """User + system CPU clock ticks of processes (and all their threads) so far."""
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total


def wrk(url, args, users, server_pids):
    """One wrk run; adds the server's and wrk's CPU microseconds per request (server_pids:
    the processes answering, read from /proc; wrk from this process's children usage)."""
    env = dict(os.environ, USERS=str(users), PREFIX="user-", WIDTH="4", COUNT=str(args.count),
               API_KEY=KEY or "")
    hz = os.sysconf("SC_CLK_TCK")
    s0, c0 = cpu_ticks(server_pids), resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["wrk", "-t2", "-c%d" % args.connections, "-d%ds" % args.duration,
                          "--latency", "-s", LUA, url],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                         check=True).stdout
    s1, c1 = cpu_ticks(server_pids), resource.getrusage(resource.RUSAGE_CHILDREN)
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            r = json.loads(line[8:])
            n = max(r["requests"], 1)
            r["server_cpu_us"] = (s1 - s0) * 1e6 / hz / n
            r["wrk_cpu_us"] = ((c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)) * 1e6 / n
            return r
    raise RuntimeError("wrk printed no summary:\n" + out)


def nginx_escape(body):
    # inside '...' of an nginx directive: \ and ' escaped; $ would start a variable
    return body.replace("\\", "\\\\").replace("'", "\\'").replace("$", "S")


def start_nginx(tmp, body):
    port = free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""worker_processes 2; daemon off; pid %(t)s/nginx.pid; error_log %(t)s/nginx.err;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path %(t)s; proxy_temp_path %(t)s; fastcgi_temp_path %(t)s;
  uwsgi_temp_path %(t)s; scgi_temp_path %(t)s; keepalive_requests 1000000;
  server { listen 127.0.0.1:%(p)d; default_type application/json;
    location / { return 200 '%(b)s'; } } }
""" % {"t": tmp, "p": port, "b": nginx_escape(body)})
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", tmp], stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def start_recstream(tmp):
    global KEY
    port = free_port()
    data = os.path.join(tmp, "data")
    log = open(os.path.join(tmp, "recstream.log"), "a")
    proc = subprocess.Popen([BIN, "serve", "--data", data, "--listen", "127.0.0.1:%d" % port,
                             "--fsync", "batch:5", "--queue-bytes", "256MiB"], stderr=log)
    wait_port(port)
    KEY = admin_key(data)
    return proc, port


def get(port, path):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), headers=auth_headers(KEY))
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read().decode()


def metrics(port):
    out = {}
    for line in get(port, "/metrics").splitlines():
        m = re.match(r"^(recstream_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$", line)
        if m and not m.group(2):
            out[m.group(1)] = float(m.group(3))
    return out


def wait_settled(port, quiet_s=7, timeout=600):
    """Waits until the model stops being rebuilt: the refresher rebuilds (every 2 s) only when
    the shards' event counts changed, so no rebuild for quiet_s means the processor has applied
    everything and the model in use was built from it."""
    deadline = time.time() + timeout
    last, since = None, time.time()
    while time.time() < deadline:
        b = metrics(port).get("recstream_reco_model_builds_total")
        if b != last:
            last, since = b, time.time()
        elif time.time() - since >= quiet_s:
            return
        time.sleep(0.5)
    raise RuntimeError("the model never settled")


def simulate(port, users, items, rate, seconds, seed=1):
    t0 = time.time()
    out = subprocess.run([BIN, "simulate", "--url", "http://127.0.0.1:%d" % port, "--users",
                          str(users), "--items", str(items), "--rate", str(rate), "--duration",
                          str(seconds), "--seed", str(seed), "--quiet"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=True,
                         env=dict(os.environ, RECSTREAM_API_KEY=KEY or ""))
    return out.stdout.strip(), time.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=int(os.environ.get("DURATION", 8)))
    ap.add_argument("--repeat", type=int, default=int(os.environ.get("REPEAT", 3)))
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--rate", type=int, default=20000, help="simulate's events/s while loading")
    ap.add_argument("--load-seconds", type=int, default=20)
    ap.add_argument("--background", type=int, default=0,
                    help="events/s simulated during the measurements (0: none)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rs-reco-bench-")
    results = {"nginx": [], "recstream": []}
    bg = None
    try:
        rs, port = start_recstream(tmp)
        summary, secs = simulate(port, args.users, args.items, args.rate, args.load_seconds)
        m = metrics(port)
        print("load: %.0f s of `recstream simulate --users %d --items %d --rate %d`: %d events "
              "accepted" % (secs, args.users, args.items, args.rate,
                            m.get("recstream_events_accepted_total", 0)), flush=True)
        print("  " + (summary.splitlines()[-1] if summary else ""), flush=True)
        t0 = time.time()
        wait_settled(port)
        m = metrics(port)
        print("settled after %.0f s: model %d items, last build %.0f ms" % (
            time.time() - t0, m.get("recstream_reco_model_items", 0),
            m.get("recstream_reco_model_build_us", 0) / 1000), flush=True)
        # sample replies: size for the nginx body, and how many users get a personal list
        rnd = random.Random(7)
        bodies, personal = [], 0
        for _ in range(200):
            body = get(port, "/v1/users/user-%04d/recommendations?count=%d" % (
                rnd.randint(1, args.users), args.count))
            bodies.append(body)
            personal += json.loads(body)["strategy"] == "personalized"
        sizes = sorted(len(b.encode()) for b in bodies)
        size = int(statistics.median(sizes))
        print("reply: median %d bytes (%d-%d); %d/200 sampled users personalized" % (
            size, sizes[0], sizes[-1], personal), flush=True)
        # nginx answers with a real reply of the median size (escapes aside)
        nbody = min(bodies, key=lambda b: abs(len(b.encode()) - size))
        ng, ng_port = start_nginx(tmp, nbody)
        if args.background > 0:
            bg = subprocess.Popen([BIN, "simulate", "--url", "http://127.0.0.1:%d" % port,
                                   "--users", str(args.users), "--items", str(args.items),
                                   "--rate", str(args.background), "--duration", "0",
                                   "--seed", "2", "--quiet"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=dict(os.environ, RECSTREAM_API_KEY=KEY or ""))
            time.sleep(2)
        for rep in range(args.repeat):
            # alternate the targets so machine noise hits both alike
            nginx_pids = [ng.pid] + [int(x) for x in open(
                "/proc/%d/task/%d/children" % (ng.pid, ng.pid)).read().split()]
            for name, p, pids in (("nginx", ng_port, nginx_pids), ("recstream", port, [rs.pid])):
                r = wrk("http://127.0.0.1:%d/" % p, args, args.users, pids)
                results[name].append(r)
                print("rep %d %-9s %8.0f req/s  p50 %6d  p90 %6d  p99 %6d  p99.9 %6d  max %7d us"
                      "  non2xx %d  errors %d  cpu/request: server %.1f us, wrk %.1f us" % (
                          rep, name, r["rps"], r["p50_us"], r["p90_us"], r["p99_us"],
                          r["p999_us"], r["max_us"], r["non2xx"], r["socket_errors"],
                          r["server_cpu_us"], r["wrk_cpu_us"]), flush=True)
        if bg:
            bg.send_signal(signal.SIGTERM)
            bg.wait(30)
            bg = None
        ng.send_signal(signal.SIGQUIT)
        ng.wait(10)
        m = metrics(port)
        rs.send_signal(signal.SIGTERM)
        rs.wait(60)
    finally:
        if bg:
            bg.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    def med(name, field):
        return statistics.median(r[field] for r in results[name])

    def rng(name, field):
        v = [r[field] for r in results[name]]
        return "%.0f-%.0f" % (min(v), max(v))

    ratios = [a["rps"] / b["rps"] for a, b in zip(results["recstream"], results["nginx"])]
    lines = ["| target | req/s median (range) | vs nginx | p50 us | p90 us | p99 us | p99.9 us | max us"
             " | CPU us/request: server, wrk |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in ("nginx", "recstream"):
        ratio = "1.00" if name == "nginx" else "%.2f (%.2f-%.2f)" % (
            statistics.median(ratios), min(ratios), max(ratios))
        lines.append("| %s | %.0f (%s) | %s | %d | %d | %d | %d | %d | %.1f, %.1f |" % (
            "nginx `return 200` (%d B)" % len(nbody.encode()) if name == "nginx"
            else "recstream GET recommendations", med(name, "rps"), rng(name, "rps"), ratio,
            med(name, "p50_us"), med(name, "p90_us"), med(name, "p99_us"), med(name, "p999_us"),
            med(name, "max_us"), med(name, "server_cpu_us"), med(name, "wrk_cpu_us")))
    table = "\n".join(lines)
    print()
    print(table)
    print("(%d runs of %d s each, wrk -t2 -c%d; medians of each column; model builds at the end: %d)"
          % (args.repeat, args.duration, args.connections,
             m.get("recstream_reco_model_builds_total", 0)))
    # Server and wrk share the cores, so a CPU-bound run's rate is cores / (server + wrk CPU
    # per request): the ratio of those totals is what the rate ratio tends to, and it moves
    # less with the other tenants of a shared machine than the rates themselves do.
    cpu = {n: [r["server_cpu_us"] + r["wrk_cpu_us"] for r in results[n]] for n in results}
    cratios = [b / a for a, b in zip(cpu["recstream"], cpu["nginx"])]
    print("CPU per request, server + wrk: recstream %.1f us, nginx %.1f us; nginx / recstream "
          "%.2f (%.2f-%.2f)" % (statistics.median(cpu["recstream"]), statistics.median(cpu["nginx"]),
                                statistics.median(cratios), min(cratios), max(cratios)))
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
