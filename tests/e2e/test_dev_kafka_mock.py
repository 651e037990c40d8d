"""End-to-end: `recstream dev kafka-mock` starts a mock Kafka cluster that an outside client
(kcat) can use: metadata shows the brokers and partitions asked for, and a record produced
by kcat is consumed back by kcat. Every process runs under a timeout."""
import json
import signal
import subprocess
import time

import rs

R = rs.Runner()


def start(*args):
    proc = subprocess.Popen([rs.BIN, "dev", "kafka-mock"] + list(args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    assert line.startswith("bootstrap="), (line, proc.stderr.read() if proc.poll() else "")
    return proc, line[len("bootstrap="):]


def kcat(*args, stdin=None, timeout=30):
    return subprocess.run(["timeout", str(timeout), "kcat"] + list(args), input=stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_metadata_and_round_trip():
    proc, bootstrap = start("--brokers", "3", "--partitions", "6", "--topic", "events-t")
    try:
        assert bootstrap.count(",") == 2, bootstrap  # three brokers
        md = kcat("-b", bootstrap, "-L", "-J", "-t", "events-t")
        assert md.returncode == 0, md.stderr
        meta = json.loads(md.stdout)
        assert len(meta["brokers"]) == 3, meta["brokers"]
        topic = [t for t in meta["topics"] if t["topic"] == "events-t"][0]
        assert len(topic["partitions"]) == 6, topic
        # produce three keyed records, read them back from the beginning
        p = kcat("-b", bootstrap, "-P", "-t", "events-t", "-K", ":",
                 stdin="u1:{\"a\":1}\nu2:{\"a\":2}\nu3:{\"a\":3}\n")
        assert p.returncode == 0, p.stderr
        seen = set()
        deadline = time.time() + 20
        while len(seen) < 3 and time.time() < deadline:
            c = kcat("-b", bootstrap, "-C", "-t", "events-t", "-o", "beginning", "-e", "-q",
                     "-f", "%k=%s\\n")
            assert c.returncode == 0, c.stderr
            seen = {l for l in c.stdout.splitlines() if l}
        assert seen == {'u1={"a":1}', 'u2={"a":2}', 'u3={"a":3}'}, seen
    finally:
        stop(proc)


def test_defaults_and_bad_options():
    proc, bootstrap = start()
    try:
        meta = json.loads(kcat("-b", bootstrap, "-L", "-J").stdout)
        assert len(meta["brokers"]) == 3
        topic = [t for t in meta["topics"] if t["topic"] == "user-interactions"][0]
        assert len(topic["partitions"]) == 6
    finally:
        stop(proc)
    bad = subprocess.run([rs.BIN, "dev", "kafka-mock", "--partitions", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    assert bad.returncode == 2 and "partitions" in bad.stderr, bad.stderr
    bad = subprocess.run([rs.BIN, "dev", "nope"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=30)
    assert bad.returncode == 2 and "kafka-mock" in bad.stderr, bad.stderr


for t in (test_metadata_and_round_trip, test_defaults_and_bad_options):
    R.run(t)
R.finish()
