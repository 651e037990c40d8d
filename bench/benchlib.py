"""Shared bits of the benchmark scripts: where the release binary is (RECSTREAM_BIN overrides),
free ports, and the admin API key a server creates on its first start."""
import os
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
