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


def owned(srv):
    """The partitions a processor owns now (its recstream_stream_partition_owned gauge)."""
    return sorted(p for p, v in gauge_map(metrics(srv), "recstream_stream_partition_owned").items()
                  if v)
