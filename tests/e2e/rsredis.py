"""A real redis-server for end-to-end tests (on a private unix socket) and a tiny RESP client.

Standard library only. redis-server is installed by scripts/install-deps.sh: a missing one is
a failure, not a skip."""
import os
import shutil
import socket
import subprocess
import tempfile
import time


class Redis:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="rs-redis-")
        self.sock = os.path.join(self.tmp, "redis.sock")
        self.proc = None

    @property
    def url(self):
        return "unix://" + self.sock

    def start(self):
        exe = shutil.which("redis-server")
        if not exe:
            raise AssertionError("redis-server not found (scripts/install-deps.sh installs it)")
        self.proc = subprocess.Popen(
            [exe, "--port", "0", "--unixsocket", self.sock, "--save", "", "--appendonly", "no",
             "--dir", self.tmp],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if self.cmd("PING") == "PONG":
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def cmd(self, *args):
        """Sends one command, returns the decoded reply (bytes for bulk strings)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect(self.sock)
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            f = s.makefile("rb")
            return _read(f)
        finally:
            s.close()

    def restart(self):
        """Stops redis-server and starts a new, empty one on the same socket."""
        self.proc.terminate()
        self.proc.wait(10)
        return self.start()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.tmp, ignore_errors=True)


def _read(f):
    line = f.readline()
    if not line:
        raise OSError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise AssertionError("redis error: " + rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read(f) for _ in range(n)]
    raise AssertionError("bad RESP reply: %r" % line)
