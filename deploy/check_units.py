#!/usr/bin/env python3
"""Runs the ExecStart command lines of deploy/systemd/recstream-processor.service,
recstream-api.service and the scale-out units in deploy/systemd/target/ (a collector, a
processor in a consumer group), with deploy/systemd/cluster.conf, against a local Kafka mock cluster and
a password-protected redis-server, so the units' flags are checked against the real binary.

What is substituted (everything else is run as written in the unit): the binary path
(build-d/recstream or $RECSTREAM_BIN), `%d` (the credentials directory: a read-only temp
directory holding pseudonym.key, data.key and redis.auth, 0400, as systemd's LoadCredential
provides them), /etc/recstream/cluster.conf (a copy whose `log` and `store` lines name the mock
and the local Redis), the --data directories and the --listen addresses (free local ports).
Then: both nodes ready, an event posted to the processor, the API node personalises that
user's list. Every process is stopped by its PID at exit. Exit 0 = pass.

Usage: deploy/check_units.py   (needs redis-server; no systemd, no root)"""
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
os.environ.setdefault("RECSTREAM_BIN", os.path.join(ROOT, "build-d", "recstream"))
import benchlib  # noqa: E402
import rs  # noqa: E402
from scaleout import Procs  # noqa: E402

BIN = benchlib.BIN
rs.BIN = BIN
TOPIC = "user-interactions"


def exec_start(unit):
    """The ExecStart line of a unit file, continuation lines joined, as an argument list."""
    with open(os.path.join(HERE, "systemd", unit)) as f:
        text = f.read().replace("\\\n", " ")
    line = [x for x in text.splitlines() if x.startswith("ExecStart=")][0]
    return shlex.split(line[len("ExecStart="):])


def substitute(argv, creds, conf, data, port):
    out = []
    for i, a in enumerate(argv):
        prev = argv[i - 1] if i else ""
        if a == "/usr/local/bin/recstream":
            a = BIN
        elif a == "/etc/recstream/cluster.conf":
            a = conf
        elif prev == "--data":
            a = data
        elif prev == "--listen":
            a = "127.0.0.1:%d" % port
        out.append(a.replace("%d", creds))
    return out


def start(procs, argv, data, port, tmp):
    srv = rs.Server(data=data)
    srv.port = port
    srv.stderr_path = os.path.join(tmp, "node-%d.log" % port)
    srv.stderr = open(srv.stderr_path, "w")
    print("running: " + " ".join(shlex.quote(a) for a in argv), flush=True)
    srv.proc = procs.add(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=srv.stderr))
    srv.wait_ready(timeout=60)
    return srv


def main():
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(128 + s))
    procs = Procs()
    tmp = tempfile.mkdtemp(prefix="rs-units-")
    try:
        # Keys as an operator makes them: a first start of any node on a scratch directory.
        init = os.path.join(tmp, "init")
        p = procs.add(subprocess.Popen([BIN, "serve", "--data", init, "--listen", "127.0.0.1:%d" %
                                        benchlib.free_port()], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL))
        benchlib.admin_key(init)
        procs.stop(p)
        creds = os.path.join(tmp, "creds")
        os.makedirs(creds)
        for name in ("pseudonym.key", "data.key"):
            shutil.copy(os.path.join(init, "privacy", name), os.path.join(creds, name))
        with open(os.path.join(creds, "redis.auth"), "w") as f:
            f.write("unit-check-secret\n")
        for name in os.listdir(creds):
            os.chmod(os.path.join(creds, name), 0o400)
        os.chmod(creds, 0o500)

        rport = benchlib.free_port()
        procs.add(subprocess.Popen(
            ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--requirepass", "unit-check-secret", "--dir", tmp],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        benchlib.wait_port(rport)
        mock = procs.add(subprocess.Popen(
            [BIN, "dev", "kafka-mock", "--brokers", "3", "--partitions", "6", "--topic", TOPIC],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
        bootstrap = mock.stdout.readline().strip().split("=", 1)[1]

        with open(os.path.join(HERE, "systemd", "cluster.conf")) as f:
            conf_text = f.read()
        conf_text = re.sub(r"(?m)^log = .*$", "log = kafka://%s/%s" % (bootstrap, TOPIC), conf_text)
        conf_text = re.sub(r"(?m)^store = .*$", "store = redis://127.0.0.1:%d" % rport, conf_text)
        conf = os.path.join(tmp, "cluster.conf")
        with open(conf, "w") as f:
            f.write(conf_text)

        pport, aport = benchlib.free_port(), benchlib.free_port()
        proc = start(procs, substitute(exec_start("recstream-processor.service"), creds, conf,
                                       os.path.join(tmp, "proc"), pport), os.path.join(tmp, "proc"),
                     pport, tmp)
        api = start(procs, substitute(exec_start("recstream-api.service"), creds, conf,
                                      os.path.join(tmp, "api"), aport), os.path.join(tmp, "api"),
                    aport, tmp)
        assert "kafka log open" in proc.log(), proc.log()
        st, _, body = proc.request("GET", "/v1/users/x/recommendations", key=proc.key)
        assert st == 503, (st, body)  # role processor leaves recommendations to API nodes
        f = benchlib.freshness(proc, api, 5, int(time.time() * 1000), 0.2, item="i-1",
                               prefix="unit-check")
        print("PASS: processor (Kafka mock, Redis with AUTH) and API node started from the "
              "units' command lines; ack -> personalised on the API node: %s ms" %
              ", ".join("%.0f" % x for x in f), flush=True)

        # The scale-out units (deploy/systemd/target/): a collector and a processor in the
        # consumer group (the first processor stops: the group member takes every partition).
        procs.stop(proc.proc)
        gdata, cdata = os.path.join(tmp, "group"), os.path.join(tmp, "collector")
        gport, cport = benchlib.free_port(), benchlib.free_port()
        argv = substitute(exec_start("target/recstream-processor-group.service"), creds, conf,
                          gdata, gport)
        shared = os.path.join(tmp, "shared-checkpoints")
        argv = [shared if prev == "--checkpoint-dir" else a for prev, a in zip([""] + argv, argv)]
        grp = start(procs, argv, gdata, gport, tmp)
        col = start(procs, substitute(exec_start("target/recstream-collector.service"), creds,
                                      conf, cdata, cport), cdata, cport, tmp)
        deadline = time.time() + 60
        while True:
            owned = sum(int(v) for v in re.findall(
                r'^recstream_stream_partition_owned\{partition="\d+"\} (\d+)$',
                grp.request("GET", "/metrics", key=grp.key)[2].decode(), re.M))
            if owned == 6:
                break
            assert time.time() < deadline, "the group processor never owned the 6 partitions"
            time.sleep(0.2)
        st, _, body = col.request("GET", "/v1/users/x/recommendations", key=col.key)
        assert st == 404, (st, body)  # a collector only ingests
        f = benchlib.freshness(col, api, 5, int(time.time() * 1000), 0.2, item="i-2",
                               prefix="unit-target")
        print("PASS: collector and group processor started from the target units' command "
              "lines; ack on the collector -> personalised on the API node: %s ms" %
              ", ".join("%.0f" % x for x in f))
    finally:
        procs.stop_all()
        if os.path.isdir(os.path.join(tmp, "creds")):
            os.chmod(os.path.join(tmp, "creds"), 0o700)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
