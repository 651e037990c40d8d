"""Shared bits of the benchmark scripts: where the release binary is (RECSTREAM_BIN overrides),
free ports, and the admin API key a server creates on its first start."""
import os
import http.client
import socket
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("RECSTREAM_BIN", os.path.join(ROOT, "build", "recstream"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d not listening" % port)


def wait_ready(port, timeout=300):
    """Waits until GET /readyz answers 200 (the log recovered, the state restored)."""
    deadline = time.time() + timeout
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        if time.time() > deadline:
            raise RuntimeError("port %d not ready in %d s" % (port, timeout))
        time.sleep(0.01)


def admin_key(data, timeout=20):
    """The admin key a server wrote to DATA/privacy/admin.key on its first start (auth is on by
    default, and benchmarks measure with it on)."""
    path = os.path.join(data, "privacy", "admin.key")
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(path) as f:
                key = f.read().strip()
            if key:
                return key
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("no admin key in " + path)


def auth_headers(key):
    return {"Authorization": "Bearer " + key} if key else {}


# ---- shared by the scale-out benchmarks (api_node.py, scaleout.py) --------------------------
# They drive servers through tests/e2e/rs.py (rs.Server: private port and data directory, killed
# by its own PID), imported lazily so that benchmarks without it keep importing this module.

def rs_module():
    """tests/e2e/rs.py with BIN as its binary."""
    import sys
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    import rs
    rs.BIN = BIN
    return rs


def metric_labels(srv, name):
    """{label value: int} of a labelled metric (e.g. per partition) from srv's /metrics."""
    st, _, data = srv.request("GET", "/metrics")
    out = {}
    for line in data.decode().splitlines():
        if line.startswith(name + "{"):
            out[line.split('"')[1]] = int(float(line.split()[-1]))
    return out


def metric(srv, name):
    """An unlabelled metric's value from srv's /metrics, or None."""
    st, _, data = srv.request("GET", "/metrics")
    for line in data.decode().splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[-1]))
    return None


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def freshness(ingest, api, samples, ts, interval_s, item="50", prefix="fresh"):
    """Acknowledgement -> visible through an API node, in ms, SAMPLES times: at a random moment
    (not in step with the publisher's rounds) one event of a user nobody has seen is posted to
    the ingesting node and acknowledged; then the API node is polled every 2 ms until that
    user's list is personalised. A fresh user's first event is the only thing that can turn
    their list from "popular" to "personalized", so the change is unambiguous."""
    import random
    rs = rs_module()
    out = []
    rnd = random.Random(1)
    for k in range(samples):
        time.sleep(rnd.random() * interval_s)
        user = "%s-%d-%d-%d" % (prefix, os.getpid(), int(time.time()), k)
        t0 = time.perf_counter()
        st, _, body = ingest.post_json("/v1/events", [{"userId": user, "eventType": "rating",
                                                       "itemId": item, "value": 5,
                                                       "timestamp": ts + k}])
        assert st == 200, body
        deadline = t0 + 10
        while time.perf_counter() < deadline:
            st, body = rs.call_json(api, "GET", "/v1/users/%s/recommendations?count=5" % user)
            if st == 200 and body["strategy"] == "personalized":
                break
            time.sleep(0.002)
        else:
            raise RuntimeError("the API node never personalised " + user)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def duration_s(text):
    """'200ms', '2s' -> seconds."""
    return int(text[:-2]) / 1000 if text.endswith("ms") else float(text.rstrip("s"))
