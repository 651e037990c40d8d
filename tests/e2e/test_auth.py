"""End-to-end: access control. Every route of the server's own route table (`recstream keys
routes`) is called without a key and with ingest, read, admin and revoked keys, and must
answer 401 / 403 / neither exactly as the table says; plus Origin allow-lists, ?key= on the
beacon, per-key rate limits (429 + Retry-After), keys created and revoked by the CLI while the
server runs, the first start's admin key, --insecure-no-auth, --metrics-auth and TLS."""
import http.client
import json
import os
import re
import socket
import ssl
import stat
import subprocess
import time

import rs

SRV = rs.Server("--partitions", "2", "--fsync", "batch:2")
KEYS = {}  # kind -> key text, made by the first test


def create_key(*args, data=None):
    p = rs.run_cli("keys", "create", "--data", data or SRV.data, *args)
    return json.loads(p.stdout)


def wait_for(fn, timeout=4.0):
    """Polls fn until it returns true (the server re-reads the key file once a second)."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > deadline:
            return v
        time.sleep(0.1)


def call(method, path, key, headers=None, srv=None):
    srv = srv or SRV
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    body = "{}" if method in ("POST", "PUT") else None
    st, hdrs, data = srv.request(method, path, body, h, key=key)
    try:
        err = json.loads(data).get("error_code") if data else None
    except (ValueError, AttributeError):
        err = None
    return st, hdrs, err


def example_path(pattern):
    """A concrete path for a pattern: "*" becomes "x", except where only real names route."""
    real = {"/topics/*": "/topics/user-interactions", "/v1/stats/*": "/v1/stats/ctr"}
    return real.get(pattern, pattern.replace("*", "x"))


# Routes the table lists ahead of their handlers (none at the moment).
PENDING = set()


def test_setup_keys():
    for role in ("ingest", "read", "admin"):
        KEYS[role] = create_key("--role", role, "--name", "test-" + role)["key"]
    revoked = create_key("--role", "admin", "--name", "to-revoke")
    rs.run_cli("keys", "revoke", "--data", SRV.data, revoked["id"])
    KEYS["revoked"] = revoked["key"]
    assert wait_for(lambda: call("GET", "/v1/trending", KEYS["read"])[0] == 200)


def test_every_route_by_role():
    routes = json.loads(rs.run_cli("keys", "routes").stdout)
    assert len(routes) >= 25, routes
    roles = {r["role"] for r in routes}
    assert roles == {"none", "ingest", "read", "admin"}, roles
    checked = 0
    for r in routes:
        path = example_path(r["path"])
        need = r["role"]
        for kind in ("none", "ingest", "read", "admin", "revoked"):
            key = None if kind == "none" else KEYS[kind]
            st, hdrs, err = call(r["method"], path, key)
            what = "%s %s with %s key -> %d (%s)" % (r["method"], path, kind, st, err)
            if need == "none":
                assert st not in (401, 403), what
            elif kind in ("none", "revoked"):
                assert st == 401 and err == 40101, what
                assert hdrs.get("www-authenticate", "").startswith("Bearer"), what
            elif kind == "admin" or kind == need:
                assert st not in (401, 403), what
                if (r["method"], r["path"]) not in PENDING:
                    assert err != 40400, "the table lists a route the server lacks: " + what
            else:
                assert st == 403 and err == 40301, what
            checked += 1
    assert checked == 5 * len(routes)


def test_api_doc_lists_the_table():
    """docs/API.md's route table is the binary's, row for row (so the doc cannot drift)."""
    doc = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "API.md")
    rows = []
    for line in open(doc):
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        if len(parts) == 4 and parts[1].startswith("`/"):
            rows.append((parts[0], parts[1].strip("`"), parts[2]))
    routes = json.loads(rs.run_cli("keys", "routes").stdout)
    assert rows == [(r["method"], r["path"], r["role"]) for r in routes], rows


def test_unlisted_routes_need_admin():
    """Deny by default: a path or method missing from the table needs the admin role, and
    only then is it answered 404 / 405."""
    for method, path, admin_status in (("GET", "/v1/nope", 404), ("DELETE", "/v1/events", 405),
                                       ("GET", "/v1/users/x/no-such-thing", 404)):
        assert call(method, path, None)[0] == 401
        assert call(method, path, KEYS["ingest"])[0] == 403
        assert call(method, path, KEYS["read"])[0] == 403
        assert call(method, path, KEYS["admin"])[0] == admin_status, (method, path)


def test_admin_actions_audited():
    """Requests to admin routes go to the hash-chained audit log with the key id and the
    route pattern; read-role routes do not; a path naming a user is not written."""
    admin_id = KEYS["admin"].split("_")[1]
    st, _, _ = SRV.request("PUT", "/v1/items/audited-item", {"categories": ["c"]},
                           key=KEYS["admin"])
    assert st in (200, 201), st
    st, _, _ = SRV.request("GET", "/v1/items/audited-item", key=KEYS["admin"])
    assert st == 200
    v = rs.run_cli("audit", "verify", "--data", SRV.data)
    assert "OK" in v.stdout, v.stdout
    entries = [json.loads(l) for l in rs.run_cli("audit", "tail", "--data", SRV.data,
                                                  "--lines", "1000").stdout.splitlines() if l]
    mine = [e for e in entries if e.get("actor") == "key:" + admin_id]
    assert any(e["action"] == "PUT /v1/items/*" and e["subject"] == "/v1/items/audited-item"
               for e in mine), mine[-5:]
    assert not any(e["action"] == "GET /v1/items/*" for e in mine), mine
    assert all("/v1/users/" not in e.get("subject", "") for e in entries)


def test_key_headers_and_malformed_keys():
    ev = [{"userId": "u1", "eventType": "view", "itemId": "i1"}]
    for h in ({"Authorization": "Bearer " + KEYS["ingest"]}, {"X-API-Key": KEYS["ingest"]},
              {"Authorization": "bearer  " + KEYS["ingest"]}):
        st, _, _ = SRV.request("POST", "/v1/events", ev, dict(h, **{"Content-Type": "application/json"}),
                               key=None)
        assert st == 200, h
    good = KEYS["read"]
    wrong_secret = good[:-1] + ("0" if good[-1] != "0" else "1")
    for bad in ("", "rsk_", good[:-1], good + "0", good.upper(), wrong_secret,
                "Basic " + good, "rsk_zzzzzzzz_" + "0" * 64):
        st, _, err = call("GET", "/v1/trending", None, {"Authorization": "Bearer " + bad})
        assert st == 401 and err == 40101, bad


def test_beacon_query_key():
    body = json.dumps([{"userId": "u2", "eventType": "view", "itemId": "i2"}])
    st, _, _ = SRV.request("POST", "/v1/beacon?key=" + KEYS["ingest"], body,
                           {"Content-Type": "text/plain"}, key=None)
    assert st == 200, st
    # Only ingest keys may travel in a URL, and only to the beacon.
    st, _, data = SRV.request("POST", "/v1/beacon?key=" + KEYS["admin"], body,
                              {"Content-Type": "text/plain"}, key=None)
    assert st == 403 and json.loads(data)["error_code"] == 40301, data
    st, _, _ = SRV.request("POST", "/v1/events?key=" + KEYS["ingest"], body,
                           {"Content-Type": "application/json"}, key=None)
    assert st == 401


def test_origin_allow_list():
    k = create_key("--role", "ingest", "--origins", "https://shop.example,http://localhost:3000")
    ev = [{"userId": "u3", "eventType": "view", "itemId": "i3"}]

    def post(origin):
        h = {"Content-Type": "application/json", "X-API-Key": k["key"]}
        if origin:
            h["Origin"] = origin
        st, hdrs, data = SRV.request("POST", "/v1/events", ev, h, key=None)
        return st, hdrs, data

    assert wait_for(lambda: post("https://shop.example")[0] == 200)
    assert post("http://localhost:3000")[0] == 200
    assert post(None)[0] == 200  # servers send no Origin; browsers always do
    st, hdrs, data = post("https://evil.example")
    assert st == 403 and json.loads(data)["error_code"] == 40301, data
    assert "access-control-allow-origin" in hdrs  # a browser page can read the refusal
    assert post("https://shop.example.evil")[0] == 403
    assert post("https://SHOP.example")[0] == 403
    # Bad origins are refused at creation with a clear error.
    p = rs.run_cli("keys", "create", "--data", SRV.data, "--role", "ingest", "--origins",
                   "shop.example", check=False)
    assert p.returncode == 2 and "origin" in p.stderr, p.stderr


def test_rate_limit():
    k = create_key("--role", "read", "--rate", "0.5", "--burst", "3")["key"]
    assert wait_for(lambda: call("GET", "/v1/trending", k)[0] == 200)
    statuses = []
    for _ in range(6):
        st, hdrs, err = call("GET", "/v1/trending", k)
        statuses.append(st)
        if st == 429:
            assert err == 42902 and int(hdrs["retry-after"]) >= 1, (err, hdrs)
    # The burst (3) was partly spent by the polling above; at most 3 more pass in a row.
    assert statuses.count(429) >= 3 and statuses[-1] == 429, statuses
    # Other keys are not limited by it.
    assert call("GET", "/v1/trending", KEYS["read"])[0] == 200


def test_cli_keys_apply_without_restart():
    k = create_key("--role", "read", "--name", "live")
    assert wait_for(lambda: call("GET", "/v1/trending", k["key"])[0] == 200)
    listed = json.loads(rs.run_cli("keys", "list", "--data", SRV.data).stdout)
    mine = [x for x in listed if x["id"] == k["id"]]
    assert mine and mine[0]["role"] == "read" and mine[0]["name"] == "live" and not mine[0]["revoked"]
    rs.run_cli("keys", "revoke", "--data", SRV.data, k["id"])
    assert wait_for(lambda: call("GET", "/v1/trending", k["key"])[0] == 401)
    again = rs.run_cli("keys", "revoke", "--data", SRV.data, k["id"], check=False)
    assert again.returncode == 1 and "already revoked" in again.stderr
    p = rs.run_cli("keys", "revoke", "--data", SRV.data, "ffffffff", check=False)
    assert p.returncode == 1 and "not found" in p.stderr
    p = rs.run_cli("keys", "create", "--data", SRV.data, "--role", "root", check=False)
    assert p.returncode == 2 and "ingest, read or admin" in p.stderr


def test_first_start_admin_key_and_secrets_at_rest():
    admin = SRV.admin_key_path()
    keyfile = os.path.join(SRV.data, "privacy", "apikeys.json")
    for path in (admin, keyfile):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    assert SRV.key.startswith("rsk_") and len(SRV.key) == 77
    log = SRV.log()
    assert admin in log and SRV.key not in log and SRV.key[13:] not in log
    blob = open(keyfile).read()
    listed = rs.run_cli("keys", "list", "--data", SRV.data).stdout
    for k in list(KEYS.values()) + [SRV.key]:
        secret = k[13:]
        assert secret not in blob and secret not in listed and secret not in log
    assert "blake2b" in blob and "blake2b" not in listed


def test_bad_key_file_refuses_start():
    srv = rs.Server()
    try:
        os.makedirs(os.path.join(srv.data, "privacy"), 0o700)
        path = os.path.join(srv.data, "privacy", "apikeys.json")
        with open(path, "w") as f:
            f.write('{"version":1,"keys":[{"id":"nothex!!"}]}')
        os.chmod(path, 0o600)
        srv.start(wait=False)
        assert srv.proc.wait(20) != 0
        assert "cannot load the API key file" in srv.log() and "lowercase hex" in srv.log()
        os.chmod(path, 0o644)
        with open(path, "w") as f:
            f.write('{"version":1,"keys":[]}')
        srv.start(wait=False)
        assert srv.proc.wait(20) != 0 and "chmod 600" in srv.log()
    finally:
        srv.cleanup()


def test_insecure_no_auth_and_metrics_auth():
    srv = rs.Server("--insecure-no-auth")
    try:
        srv.start()
        assert srv.key is None
        assert srv.request("GET", "/v1/trending")[0] == 200
        assert srv.request("PUT", "/v1/schemas/x/1-0-0", "{}")[0] != 401
        st, _, body = srv.request("GET", "/readyz")
        assert json.loads(body)["auth"] == "disabled"
        assert b"recstream_auth_enabled 0" in srv.request("GET", "/metrics")[2]
        assert "AUTHENTICATION IS OFF" in srv.log()
        assert not os.path.exists(os.path.join(srv.data, "privacy", "apikeys.json"))
    finally:
        srv.stop()
        srv.cleanup()
    # /metrics is open by default (operational numbers only) and closed with --metrics-auth.
    st, _, body = SRV.request("GET", "/metrics", key=None)
    assert st == 200 and b"recstream_auth_enabled 1" in body
    assert b'recstream_auth_refused_total{reason="rate_limited"}' in body
    # the HTTP worker threads' open connections: this request's connection is one of them
    conns = [int(v) for v in re.findall(rb'^recstream_http_connections\{worker="\d+"\} (\d+)$', body,
                                        re.M)]
    assert len(conns) >= 1 and sum(conns) >= 1, conns
    assert re.search(rb"^recstream_http_connections_refused_total 0$", body, re.M)
    srv = rs.Server("--metrics-auth")
    try:
        srv.start()
        assert srv.request("GET", "/metrics", key=None)[0] == 401
        read = create_key("--role", "read", data=srv.data)["key"]
        assert wait_for(lambda: srv.request("GET", "/metrics", key=read)[0] == 200)
        ingest = create_key("--role", "ingest", data=srv.data)["key"]
        assert wait_for(lambda: srv.request("GET", "/metrics", key=ingest)[0] == 403)
        assert srv.request("GET", "/healthz", key=None)[0] == 200
    finally:
        srv.stop()
        srv.cleanup()


def test_tls():
    srv = rs.Server()
    try:
        d = os.path.dirname(srv.data)
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                        "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
        srv.args += ["--tls-cert", cert, "--tls-key", key]
        srv.start(wait=False)
        ctx = ssl.create_default_context(cafile=cert)
        deadline = time.time() + 20
        while True:
            try:
                c = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=5)
                c.request("GET", "/readyz")
                r = c.getresponse()
                if r.status == 200:
                    break
            except OSError:
                assert time.time() < deadline and srv.proc.poll() is None, srv.log()
                time.sleep(0.1)
        srv.load_key()
        c = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=5)
        c.request("GET", "/v1/trending", headers=srv.auth_headers())
        r = c.getresponse()
        assert r.status == 200 and json.loads(r.read())["window"] == "1h"
        c.request("GET", "/v1/trending")
        r = c.getresponse()
        assert r.status == 401
        r.read()
        assert "scheme=https" in srv.log()
        # Plain HTTP on the TLS port gets no HTTP reply.
        try:
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = s.recv(100)
            s.close()
        except OSError:
            reply = b""
        assert not reply.startswith(b"HTTP/1.1 200"), reply
        # A missing or non-PEM key refuses the start.
        bad = rs.Server("--tls-cert", cert, "--tls-key", os.path.join(d, "nope.pem"))
        try:
            bad.start(wait=False)
            assert bad.proc.wait(20) != 0 and "TLS key" in bad.log()
        finally:
            bad.cleanup()
    finally:
        srv.stop()
        srv.cleanup()


def main():
    rs.run_suite(SRV, [test_setup_keys, test_every_route_by_role, test_api_doc_lists_the_table,
                       test_unlisted_routes_need_admin, test_admin_actions_audited,
                       test_key_headers_and_malformed_keys, test_beacon_query_key,
                       test_origin_allow_list, test_rate_limit, test_cli_keys_apply_without_restart,
                       test_first_start_admin_key_and_secrets_at_rest, test_bad_key_file_refuses_start,
                       test_insecure_no_auth_and_metrics_auth, test_tls])


if __name__ == "__main__":
    main()
