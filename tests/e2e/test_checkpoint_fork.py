"""End-to-end: periodic checkpoints are serialised in a forked child (`--checkpoint-fork`,
default true). While a child is alive it holds no socket and no file of the server (a client
whose connection the server closes sees the close at once), it is named after the thread
that forked it ("checkpoint"), the OOM killer would take it before the server
(oom_score_adj 800), and a SIGKILLed server takes it along (the test stops the
child with SIGSTOP mid-checkpoint first, so it cannot have finished on its own);
the restarted server restores a checkpoint and catches up. `--checkpoint-fork false` writes
checkpoints too (the processors serialise their own shards). Real data: MovieLens 100k."""
import glob
import os
import signal
import threading
import time

import rs
import rsdata

R = rs.Runner()
LIMIT = 40000
BATCH = 500
ARGS = ["--checkpoint-interval", "50ms", "--partitions", "4", "--processor-threads", "2"]


def children(pid):
    """Pids of pid's child processes (from /proc/*/stat: the field after the state)."""
    out = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.split("/")[2]))
    return out


def state(pid):
    """The process's state letter, or None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def post_all(srv, events, stop=None):
    """Posts events in batches until done or stop is set; returns how many were accepted."""
    n = 0
    for i in range(0, len(events), BATCH):
        if stop is not None and stop.is_set():
            break
        st, _, body = srv.post_json("/v1/events", events[i:i + BATCH])
        assert st == 200 and body["accepted"] == len(events[i:i + BATCH]), body
        n += body["accepted"]
    return n


def applied_total(data):
    """Events applied over all partitions, from the offline dump of a stopped server."""
    dump = rs.run_cli("state", "dump", "--data", data).stdout
    return sum(int(line.split()[4]) for line in dump.splitlines() if line.startswith("# partition "))


def catch_child(srv, events, timeout=60):
    """Sends events until a checkpoint child of srv is seen; returns (child pid, its fd
    targets, its name, events sent), the first three read while it was alive."""
    stop = threading.Event()
    sent = []
    t = threading.Thread(target=lambda: sent.append(post_all(srv, events, stop)))
    t.start()
    try:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for c in children(srv.proc.pid):
                # Its last step before the snapshots sets oom_score_adj: once it reads 800, the
                # child is past its setup (descriptors closed). Then stop it there.
                try:
                    with open("/proc/%d/oom_score_adj" % c) as f:
                        if f.read().strip() != "800":
                            continue
                    os.kill(c, signal.SIGSTOP)  # it stays alive, mid-checkpoint, until killed
                    fds = [os.readlink(f) for f in glob.glob("/proc/%d/fd/*" % c)]
                    with open("/proc/%d/comm" % c) as f:
                        name = f.read().strip()
                except OSError:
                    continue  # it exited meanwhile
                if state(c) not in (None, "Z"):
                    stop.set()
                    t.join()
                    return c, fds, name, sent[0]
            time.sleep(0.001)
        raise AssertionError("no checkpoint child seen in %d s" % timeout)
    finally:
        stop.set()
        t.join()


def test_child_holds_nothing_and_dies_with_the_server():
    events = rsdata.movielens_events(LIMIT)
    srv = rs.Server(*ARGS).start()
    try:
        if "checkpoints=in-process" in srv.log():
            print("  skipped: forked checkpoints are off in this build (AddressSanitizer before LLVM 16)")
            return
        sent = post_all(srv, events[:LIMIT // 2])
        deadline = time.time() + 60  # a first checkpoint, for the restart to restore
        while "checkpoint written" not in srv.log():
            assert time.time() < deadline, srv.log()
            time.sleep(0.02)
        child, fds, name, more = catch_child(srv, events[LIMIT // 2:])
        sent += more
        assert name == "checkpoint", name  # (oom_score_adj 800: how it was caught)
        # Only what the child was given or opens itself: stdin/stdout/stderr, its pipe to the
        # server, and files under the checkpoint directory. No socket, no log segment.
        sockets = [f for f in fds if f.startswith("socket:")]
        assert not sockets, fds
        ckpt_dir = os.path.join(srv.data, "checkpoints")
        others = [f for f in fds if not (f.startswith("pipe:") or f.startswith(ckpt_dir)
                                         or f.startswith("/dev/") or f == srv.stderr_path)]
        assert not others, fds
        # The child is stopped mid-checkpoint: it cannot finish by itself. SIGKILL the
        # server: the child goes too (PR_SET_PDEATHSIG), and no stale writer is left.
        assert state(child) == "T", state(child)
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        deadline = time.time() + 10
        while state(child) not in (None, "Z"):
            assert time.time() < deadline, "checkpoint child %d outlived the server" % child
            time.sleep(0.01)
        srv.stop()
        srv.start()
        assert "state restored from checkpoint" in srv.log(), srv.log()
        assert srv.stop() == 0
        # Every event acknowledged before the kill is in the state after the restart.
        assert applied_total(srv.data) == sent, (applied_total(srv.data), sent)
        # A clean stop leaves no temporary directory of this server behind.
        assert not [n for n in os.listdir(ckpt_dir) if n.endswith(".tmp") and
                    n.split(".")[1] == str(srv.proc.pid)], os.listdir(ckpt_dir)
    finally:
        srv.cleanup()


def test_inline_checkpoints():
    events = rsdata.movielens_events(10000)
    srv = rs.Server("--checkpoint-fork", "false", *ARGS).start()
    try:
        post_all(srv, events)
        deadline = time.time() + 60
        while "checkpoint written" not in srv.log():
            assert time.time() < deadline, srv.log()
            time.sleep(0.05)
        assert "forked=true" not in srv.log()
        assert not children(srv.proc.pid)
        assert srv.stop() == 0
        srv.start()
        assert "state restored from checkpoint" in srv.log(), srv.log()
        assert srv.stop() == 0
    finally:
        srv.cleanup()


R.run(test_child_holds_nothing_and_dies_with_the_server)
R.run(test_inline_checkpoints)
R.finish()
