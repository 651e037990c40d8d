"""Helpers for scale-out end-to-end tests: librdkafka's mock cluster (`recstream dev
kafka-mock`), kcat as an outside client, /metrics gauges and the MovieLens slice.

Standard library only."""
import os
import re
import signal
import subprocess

import rs


def start_mock(topic, partitions=6, brokers=3):
    """Starts the mock cluster with topic and its keys topic; returns (process, bootstrap).
    Not under `timeout`: stop_proc must be able to signal the mock itself."""
    proc = subprocess.Popen([rs.BIN, "dev", "kafka-mock", "--brokers", str(brokers),
                             "--partitions", str(partitions), "--topic", topic],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    assert line.startswith("bootstrap="), line
    return proc, line[len("bootstrap="):]


def stop_proc(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


def topic_event_ids(bootstrap, topic):
    """Every eventId header in the topic, as kcat (an outside Kafka client) reads them."""
    p = subprocess.run(["timeout", "60", "kcat", "-C", "-b", bootstrap, "-t", topic, "-o",
                        "beginning", "-e", "-q", "-f", "%h\\n"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 0, p.stderr
    ids = []
    for line in p.stdout.splitlines():
        headers = dict(h.split("=", 1) for h in line.split(",") if "=" in h)
        if headers.get("eventId"):
            ids.append(headers["eventId"])
    return ids


def metrics(srv):
    st, _, data = srv.request("GET", "/metrics")
    assert st == 200, st
    return data.decode()


def gauge_map(text, name):
    """{partition: value} of a per-partition gauge."""
    return {int(m.group(1)): int(m.group(2))
            for m in re.finditer(r'^%s\{partition="(\d+)"\} (-?\d+)$' % name, text, re.M)}


def dataset_path():
    shared = os.environ.get("RECSTREAM_SHARED",
                            os.path.join(os.path.dirname(__file__), "../../../shared"))
    for rel in ("ml-100k/u.data", "data/ml-100k/u.data"):
        path = os.path.join(shared, rel)
        if os.path.exists(path):
            return path
    raise AssertionError("ml-100k/u.data not found under %s (set RECSTREAM_SHARED)" % shared)


def load_events(limit, oldest=True):
    """limit ratings of MovieLens 100k as events: the oldest, or (oldest=False) the first
    lines of u.data (in file order, which spreads over many more users)."""
    rows = []
    with open(dataset_path()) as f:
        for line_no, line in enumerate(f, 1):
            user, item, rating, seconds = line.split()
            rows.append((int(seconds), line_no, user, item, int(rating)))
            if not oldest and len(rows) == limit:
                break
    if oldest:
        rows.sort()
    return [{"eventId": "ml-%d" % n, "userId": u, "eventType": "rating", "itemId": i,
             "value": r, "timestamp": s * 1000} for s, n, u, i, r in rows[:limit]]


def load_items():
    """The MovieLens items with their genres as categories; every 17th is unavailable."""
    base = os.path.dirname(dataset_path())
    with open(os.path.join(base, "u.genre"), encoding="latin-1") as f:
        genres = [line.split("|")[0] for line in f if "|" in line]
    items = []
    with open(os.path.join(base, "u.item"), encoding="latin-1") as f:
        for line in f:
            cols = line.rstrip("\n").split("|")
            if len(cols) < 6:
                continue
            cats = [g for g, flag in zip(genres, cols[5:]) if flag == "1"]
            items.append({"itemId": cols[0], "title": cols[1][:200], "categories": cats[:8],
                          "available": int(cols[0]) % 17 != 0})
    return items
