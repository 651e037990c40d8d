"""End-to-end: exactly-once state across crashes. A real dataset (MovieLens 100k ratings,
all 100k, sorted by time then line; lower LIMIT if ASan runs get slow) is sent in batches to a
server that is SIGKILLed at least 5 times at random moments and restarted (the batch in
flight is resent: eventId dedup makes that exactly-once; checkpoints every 200 ms make
recovery restore a checkpoint and replay the rest). The first kill waits for the first
checkpoint (under ASan on a loaded machine it can take seconds), so every restart must
restore one. After a clean stop, `recstream state dump` must be byte-identical to the dump
of a run that was never interrupted."""
import glob
import http.client
import json
import os
import random
import shutil
import tempfile
import threading
import time

import rs
import rsdata

R = rs.Runner()
LIMIT = 100000  # the whole dataset: about 10 s under ASan with the real state
BATCH = 500
KILLS = 8
SERVE_ARGS = ["--checkpoint-interval", "200ms", "--partitions", "4", "--processor-threads", "2"]
CHECKPOINT_WAIT_S = 120


def send(srv, batch):
    """Posts one batch; returns True when every event was accepted or a duplicate."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        conn.request("POST", "/v1/events", json.dumps(batch),
                     {"Content-Type": "application/json", **srv.auth_headers()})
        resp = conn.getresponse()
        data = resp.read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
    if resp.status != 200:
        return False
    reply = json.loads(data)
    assert reply["rejected"] == 0, reply
    assert reply["accepted"] == len(batch), reply
    return True


def state_dump(data):
    return rs.run_cli("state", "dump", "--data", data).stdout


def applied_total(dump):
    return sum(int(line.split()[4]) for line in dump.splitlines() if line.startswith("# partition "))


def wait_for_checkpoint(data):
    """Waits until data has a finished checkpoint (a directory named by 20 digits)."""
    path = os.path.join(data, "checkpoints")
    deadline = time.time() + CHECKPOINT_WAIT_S
    while not (os.path.isdir(path) and any(n.isdigit() and len(n) == 20 for n in os.listdir(path))):
        assert time.time() < deadline, "no checkpoint written in %d s" % CHECKPOINT_WAIT_S
        time.sleep(0.05)


def checkpoint_lines(tmp):
    """The checkpoint, warning and error lines of every server log, oldest log first."""
    out = []
    for name in sorted(glob.glob(os.path.join(tmp, "server-*.log")), key=os.path.getmtime):
        with open(name) as f:
            out.append("%s:" % os.path.basename(name))
            out += ["  " + l[:300] for l in f.read().splitlines()
                    if "checkpoint" in l or "level=warn" in l or "level=error" in l]
    return "\n".join(out)


def run(events, data, key_file, kills):
    """Sends every batch, SIGKILLing the server at the batches in kills. Returns the dump."""
    srv = rs.Server(*(SERVE_ARGS + ["--key-file", key_file]), data=data).start()
    killed = 0
    try:
        batches = [events[i:i + BATCH] for i in range(0, len(events), BATCH)]
        for i, batch in enumerate(batches):
            timer = victim = None
            if i in kills:
                wait_for_checkpoint(data)
                # Kill while this batch is in flight or, with a longer delay, while the
                # processors replay / a checkpoint is being written.
                victim = srv.proc
                timer = threading.Timer(random.choice([0.0, 0.005, 0.02, 0.1, 0.3]), victim.kill)
                timer.start()
            while not send(srv, batch):
                if srv.proc.poll() is None:
                    time.sleep(0.05)
                    continue
                srv.stop()
                killed += 1
                srv.start()
            if timer:
                timer.join()
                if srv.proc is victim:  # killed after the batch was acknowledged
                    victim.wait()
                    srv.stop()
                    killed += 1
                    srv.start()
        assert srv.stop() == 0, srv.log()
        log = srv.log()
    finally:
        srv.cleanup()
    return killed, log


def test_exactly_once_across_sigkill():
    events = rsdata.movielens_events(LIMIT)
    tmp = tempfile.mkdtemp(prefix="rs-e2e-eo-")
    try:
        key_file = os.path.join(tmp, "pseudonym.key")
        clean = os.path.join(tmp, "clean")
        crashy = os.path.join(tmp, "crashy")
        nbatches = (len(events) + BATCH - 1) // BATCH
        kills = set(random.sample(range(1, nbatches - 1), KILLS))
        killed, log = run(events, crashy, key_file, kills)
        assert killed >= 5, "only %d kills happened" % killed
        restores = 0
        for name in glob.glob(os.path.join(tmp, "server-*.log")):
            with open(name) as f:
                restores += f.read().count("state restored from checkpoint")
        assert restores == killed, "%d of %d restarts restored a checkpoint:\n%s" % (
            restores, killed, checkpoint_lines(tmp))
        assert "state restored from checkpoint" in log, "the last restart restored no checkpoint"
        assert os.listdir(os.path.join(crashy, "checkpoints")), "no checkpoint written"
        _, _ = run(events, clean, key_file, set())
        a, b = state_dump(crashy), state_dump(clean)
        assert applied_total(b) == len(events), "uninterrupted run applied %d of %d" % (
            applied_total(b), len(events))
        assert applied_total(a) == len(events), "crashed run applied %d of %d" % (
            applied_total(a), len(events))
        assert a == b, "state dumps differ after %d kills" % killed
        print("  %d events, %d kills, %d checkpoint restores, dumps identical (%d bytes)" % (
            len(events), killed, restores, len(a)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


R.run(test_exactly_once_across_sigkill)
R.finish()
