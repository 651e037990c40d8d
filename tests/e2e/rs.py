"""Helpers for end-to-end tests: start the real recstream binary, talk HTTP, read the log.

Standard library only. RECSTREAM_BIN names the binary (ctest sets it)."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

BIN = os.environ.get("RECSTREAM_BIN", os.path.join(os.path.dirname(__file__), "../../build/recstream"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


DEFAULT_KEY = object()  # request(..., key=DEFAULT_KEY): the server's admin key


class Server:
    """A recstream serve process on a private port and data directory.

    Auth is on (as in production) unless "--insecure-no-auth" is among args: after start the
    admin key the server created in DATA/privacy/admin.key is in self.key, and request() and
    its helpers send it (key=... sends another key, key=None none)."""

    def __init__(self, *args, data=None, env=None):
        self.tmp = None
        if data is None:
            self.tmp = tempfile.mkdtemp(prefix="rs-e2e-")
            data = os.path.join(self.tmp, "data")
        self.data = data
        self.args = list(args)
        self.env = env
        self.proc = None
        self.port = None
        self.key = None

    def start(self, wait=True):
        self.port = free_port()
        self.stderr_path = os.path.join(os.path.dirname(self.data) or ".", "server-%d.log" % self.port)
        self.stderr = open(self.stderr_path, "w")
        env = dict(os.environ)
        env.update(self.env or {})
        cmd = [BIN, "serve", "--data", self.data, "--listen", "127.0.0.1:%d" % self.port] + self.args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.stderr, env=env)
        if wait:
            self.wait_ready()
        return self

    @property
    def auth(self):
        return "--insecure-no-auth" not in self.args

    def admin_key_path(self):
        return os.path.join(self.data, "privacy", "admin.key")

    def load_key(self):
        """Reads the admin key the server wrote on its first start (None with auth off)."""
        self.key = None
        if self.auth:
            with open(self.admin_key_path()) as f:
                self.key = f.read().strip()
        return self.key

    def auth_headers(self, key=DEFAULT_KEY):
        """{"Authorization": "Bearer <key>"} for key (default: the admin key), {} for None."""
        if key is DEFAULT_KEY:
            key = self.key
        return {"Authorization": "Bearer " + key} if key else {}

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("server exited with %d:\n%s" % (self.proc.returncode, self.log()))
            try:
                status, _, _ = self.request("GET", "/readyz", key=None)
                if status == 200:
                    self.load_key()
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("server not ready:\n" + self.log())

    def log(self):
        with open(self.stderr_path) as f:
            return f.read()

    def request(self, method, path, body=None, headers=None, timeout=30, key=DEFAULT_KEY):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode()
            h = self.auth_headers(key)
            h.update(headers or {})
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), data
        finally:
            conn.close()

    def post_json(self, path, body, content_type="application/json", key=DEFAULT_KEY):
        status, headers, data = self.request("POST", path, body, {"Content-Type": content_type},
                                             key=key)
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            raise AssertionError("reply is not JSON: %r" % data)
        return status, headers, parsed

    def produce(self, records, topic="user-interactions", key=DEFAULT_KEY):
        return self.post_json("/topics/" + topic, {"records": records},
                              "application/vnd.kafka.json.v2+json", key=key)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout)
        rc = self.proc.returncode if self.proc else None
        if self.stderr:
            self.stderr.close()
            self.stderr = None
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.kill()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def wait_for(what, fetch, pred, timeout=20, every=0.05):
    """Calls fetch until pred(its value) holds and returns the value; fails after timeout
    seconds naming what it waited for and the last value."""
    deadline = time.time() + timeout
    while True:
        v = fetch()
        if pred(v):
            return v
        if time.time() > deadline:
            raise AssertionError("timed out waiting for %s; last: %s" % (what, v))
        time.sleep(every)


def call_json(srv, method, url, body=None):
    """One request whose reply must be JSON (or empty): returns (status, parsed reply or None).
    A body that is not already text is sent as JSON."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if body is not None and not isinstance(body, (str, bytes)):
        body = json.dumps(body)
    st, _, data = srv.request(method, url, body, headers)
    try:
        return st, (json.loads(data) if data else None)
    except ValueError:
        raise AssertionError("%s %s: reply is not JSON: %r" % (method, url, data))


def run_cli(*args, check=True):
    p = subprocess.run([BIN] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and p.returncode != 0:
        raise AssertionError("recstream %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr))
    return p


def dump(data):
    """All records of the log as parsed JSON objects."""
    out = run_cli("log", "dump", "--data", data).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def scan_dir_for(root, needles):
    """Returns (path, needle) for every file under root containing any needle (bytes)."""
    hits = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                blob = f.read()
            for n in needles:
                if n in blob:
                    hits.append((path, n))
    return hits


class Runner:
    """Tiny test runner: prints one line per test and 'N passed, M failed' at the end."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, fn):
        t0 = time.time()
        try:
            fn()
            self.passed += 1
            print("ok   %s (%.1fs)" % (fn.__name__, time.time() - t0), flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure and go on
            self.failed += 1
            import traceback
            traceback.print_exc()
            print("FAIL %s: %s" % (fn.__name__, e), flush=True)

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        raise SystemExit(1 if self.failed else 0)


def run_suite(srv, tests):
    """Starts srv, runs tests against it, always stops and removes it, exits with the tally."""
    runner = Runner()
    srv.start()
    try:
        for t in tests:
            runner.run(t)
    finally:
        srv.stop()
        srv.cleanup()
    runner.finish()
