"""The daemon as operators meet it: endpoints, client keys, secrets, hostile
clients, SIGHUP reload under load and SIGTERM draining."""
import hashlib
import json
import os
import signal
import socket
import subprocess
import threading
import time

from gw import BALLAST, Ballast, provider, run_tests, sse_text, start_mock

SECRET = "sk-test-SECRETVALUE-1234567890abcdef"
CLIENT_KEY = "ballast-client-key-XYZ-987"


def two_mocks():
    return start_mock("a"), start_mock("b")


def base_config(a, b, extra=""):
    return ("providers:\n" + provider("a", a.port, api_key="${UPSTREAM_KEY}") +
            provider("b", b.port) +
            "routes:\n  - model: gpt-4o-mini\n    aliases: [mini]\n    tiers:\n"
            "      - [{provider: a, model: model-a}]\n      - [{provider: b, model: model-b}]\n" + extra)


def test_endpoints_and_errors():
    a, bm = two_mocks()
    b = Ballast(base_config(a, bm), env={"UPSTREAM_KEY": SECRET})
    try:
        st, _, body = b.request("GET", "/v1/models")
        ids = [m["id"] for m in json.loads(body)["data"]]
        assert st == 200 and ids == ["gpt-4o-mini", "mini"], body
        st, _, body = b.request("GET", "/v1/models/mini")
        assert st == 200 and json.loads(body)["id"] == "mini"
        assert b.request("GET", "/v1/models/nope")[0] == 404
        # an alias routes like its model
        st, h, text = b.chat_text(model="mini")
        assert st == 200 and h["x-ballast-backend"] == "a/model-a"
        # completions and embeddings go through the router too
        st, h, body = b.request("POST", "/v1/completions", {"model": "mini", "prompt": "x"})
        assert st == 200 and json.loads(body)["object"] == "text_completion"
        st, h, body = b.request("POST", "/v1/embeddings", {"model": "mini", "input": ["x", "y"]})
        assert st == 200 and len(json.loads(body)["data"]) == 2
        assert a.stats()["by_path"]["/v1/embeddings"] == 1
        # the upstream gets the provider's key, never the client's
        assert a.stats()["last_request"]["headers"]["authorization"] == "Bearer " + SECRET

        def err(st_want, code, method, path, body=None, headers=None):
            st, h, data = b.request(method, path, body, headers)
            e = json.loads(data)["error"]
            assert st == st_want and e["code"] == code, (st, data)
            assert e["message"] and e["type"], e
            return e

        err(404, "model_not_found", "POST", "/v1/chat/completions", {"model": "nope", "messages": []})
        err(400, "missing_model", "POST", "/v1/chat/completions", {"messages": []})
        err(400, "invalid_model", "POST", "/v1/chat/completions", {"model": 5})
        err(400, "invalid_json", "POST", "/v1/chat/completions", '{"model": "mini",')
        err(400, "invalid_json", "POST", "/v1/chat/completions", '[1,2]')
        err(400, "invalid_model", "POST", "/v1/chat/completions", '{"model":"mini","model":"x"}')
        err(400, "invalid_type", "POST", "/v1/chat/completions", {"model": "mini", "stream": "yes"})
        err(405, "method_not_allowed", "GET", "/v1/chat/completions")
        err(404, "unknown_url", "POST", "/v1/nothing", {})
        assert b.request("GET", "/healthz")[0] == 200
    finally:
        b.stop()
        a.stop()
        bm.stop()


def test_client_keys():
    a, bm = two_mocks()
    digest = hashlib.sha256(b"second-key").hexdigest()
    cfg = base_config(a, bm) + "keys:\n  - ${CLIENT_KEY}\n  - sha256:%s\n" % digest
    b = Ballast(cfg, env={"UPSTREAM_KEY": SECRET, "CLIENT_KEY": CLIENT_KEY})
    try:
        assert b.chat()[0] == 401
        assert b.chat(headers={"Authorization": "Bearer wrong"})[0] == 401
        assert b.chat(headers={"Authorization": "Bearer"})[0] == 401
        st, _, body = b.chat(headers={"Authorization": "Basic " + CLIENT_KEY})
        assert st == 401 and json.loads(body)["error"]["code"] == "invalid_api_key"
        assert b.chat(headers={"Authorization": "Bearer " + CLIENT_KEY})[0] == 200
        assert b.chat(headers={"Authorization": "Bearer second-key"})[0] == 200
        assert b.chat(headers={"x-api-key": CLIENT_KEY})[0] == 200
        # probes need no key
        assert b.request("GET", "/healthz")[0] == 200
        assert b.request("GET", "/metrics")[0] == 200
        assert b.request("GET", "/v1/models")[0] == 401
        # the client's key is not forwarded upstream
        assert CLIENT_KEY not in json.dumps(a.stats()["last_request"])
    finally:
        b.stop()
        a.stop()
        bm.stop()
    assert CLIENT_KEY not in b.log_text()


def test_secrets_never_leak():
    a, bm = two_mocks()
    cfg = base_config(a, bm) + "keys: [\"${CLIENT_KEY}\"]\n"
    env = {"UPSTREAM_KEY": SECRET, "CLIENT_KEY": CLIENT_KEY}
    b = Ballast(cfg, env=env)
    seen = []
    try:
        auth = {"Authorization": "Bearer " + CLIENT_KEY}
        a.set_mode("status", code=500)
        seen.append(b.chat(headers=auth)[2])
        a.stop()
        seen.append(b.chat(headers=auth)[2])
        seen.append(b.chat(stream=True, headers=auth)[2])
        bm.set_mode("status", code=401)  # a 4xx error body passes through
        seen.append(b.chat(headers=auth)[2])
        bm.stop()
        seen.append(b.chat(headers=auth)[2])  # 503 listing every failure
        seen.append(b.request("GET", "/metrics")[2])
        seen.append(b.request("GET", "/readyz")[2])
        b.signal(signal.SIGHUP)
        time.sleep(0.3)
        check = subprocess.run([BALLAST, "check-config", b.config_path], capture_output=True,
                               env=dict(os.environ, **env))
        assert check.returncode == 0, check.stderr
    finally:
        b.stop()
    everything = b"".join(seen) + b.log_text().encode() + check.stdout + check.stderr
    assert SECRET.encode() not in everything
    assert CLIENT_KEY.encode() not in everything


def raw(port, data, read_timeout=3):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(read_timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    finally:
        s.close()
    return out


def test_hostile_clients_get_clean_errors_while_others_are_served():
    a, bm = two_mocks()
    cfg = base_config(a, bm) + ("server: {max_body_bytes: 4096, header_timeout_ms: 500,"
                                " body_timeout_ms: 500}\n")
    b = Ballast(cfg, env={"UPSTREAM_KEY": SECRET})
    try:
        assert raw(b.port, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400")
        big = b'{"model":"mini","x":"' + b"a" * 10000 + b'"}'
        out = raw(b.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                  % len(big) + big)
        assert out.startswith(b"HTTP/1.1 413"), out[:100]
        huge_header = b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 100000 + b"\r\n\r\n"
        assert raw(b.port, huge_header).startswith(b"HTTP/1.1 431")
        # slow loris: headers that never finish, while a normal client is served
        s = socket.create_connection(("127.0.0.1", b.port))
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        assert b.chat()[0] == 200
        s.settimeout(3)
        got = s.recv(1000)
        assert got.startswith(b"HTTP/1.1 408"), got
        s.close()
        # a body that stops half-way
        s = socket.create_connection(("127.0.0.1", b.port))
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        s.settimeout(3)
        assert s.recv(1000).startswith(b"HTTP/1.1 408")
        s.close()
        # chunked request bodies and Expect: 100-continue work
        body = json.dumps({"model": "mini", "messages": []}).encode()
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        out = raw(b.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
        assert out.startswith(b"HTTP/1.1 200"), out[:200]
        s = socket.create_connection(("127.0.0.1", b.port))
        s.settimeout(3)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(body)
        out = b""
        while not out.endswith(b"}") or b"\r\n\r\n" not in out:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        assert out.startswith(b"HTTP/1.1 200"), out[:200]
        s.close()
        assert b.chat(stream=True)[0] == 200
    finally:
        b.stop()
        a.stop()
        bm.stop()


def test_sighup_reload_under_load_drops_nothing():
    a, bm = two_mocks()
    b = Ballast(base_config(a, bm), env={"UPSTREAM_KEY": SECRET})
    failures, done, count = [], threading.Event(), [0]

    def load(stream):
        while not done.is_set():
            try:
                st, h, text = b.chat_text(model="gpt-4o-mini", stream=stream)
                if st != 200 or not text.startswith("Hello from"):
                    failures.append((st, text))
                count[0] += 1
            except Exception as e:  # noqa: BLE001 - any error is a dropped request
                failures.append(repr(e))

    threads = [threading.Thread(target=load, args=(s,)) for s in (False, True, False, True)]
    for t in threads:
        t.start()
    try:
        for i in range(6):
            time.sleep(0.15)
            # flip the tiers: b first, then a first again; add a route
            if i % 2 == 0:
                cfg = base_config(bm, a).replace("model-a", "model-x")
                cfg += "  - model: added-%d\n    tiers: [[{provider: b, model: m}]]\n" % i
            else:
                cfg = base_config(a, bm)
            b.write_config(cfg)
            b.signal(signal.SIGHUP)
        time.sleep(0.3)
        # a bad config is rejected and the old one keeps serving
        b.write_config(base_config(a, bm) + "retry: {max_atempts: 3}\n")
        b.signal(signal.SIGHUP)
        time.sleep(0.3)
    finally:
        done.set()
        for t in threads:
            t.join()
    try:
        assert not failures, failures[:5]
        assert count[0] > 20, count
        assert "max_atempts" in b.log_text() and "reload rejected" in b.log_text()
        assert b.metric("ballast_config_reloads_total", result="ok") == 6
        assert b.metric("ballast_config_reloads_total", result="error") == 1
        assert b.chat()[0] == 200  # still serving the last good config
        assert b.request("GET", "/v1/models")[0] == 200
    finally:
        b.stop()
        a.stop()
        bm.stop()


def test_sigterm_drains_in_flight_requests():
    a, bm = two_mocks()
    b = Ballast(base_config(a, bm), env={"UPSTREAM_KEY": SECRET})
    try:
        a.set_mode("drip", ms=200)  # a streamed answer that takes ~1.2 s
        result = {}

        def client():
            result["r"] = b.chat_text(stream=True)

        t = threading.Thread(target=client)
        t.start()
        time.sleep(0.3)
        b.signal(signal.SIGTERM)
        time.sleep(0.2)
        # no longer accepting
        try:
            socket.create_connection(("127.0.0.1", b.port), timeout=1).close()
            refused = False
        except OSError:
            refused = True
        assert refused
        t.join(10)
        st, h, text = result["r"]
        assert st == 200 and text == "Hello from a (model model-a).", result
        b.proc.wait(10)
        assert b.proc.returncode == 0, b.log_text()
    finally:
        b.stop()
        a.stop()
        bm.stop()


def test_bad_config_fails_to_start_with_location():
    bad = "listen: 127.0.0.1:1\nprovidrs: []\n"
    p = "/tmp/ballast-bad-%d.yaml" % os.getpid()
    with open(p, "w") as f:
        f.write(bad)
    r = subprocess.run([BALLAST, "serve", "-c", p], capture_output=True, timeout=10)
    os.unlink(p)
    assert r.returncode == 1
    assert (p + ":2:1:").encode() in r.stderr and b"did you mean 'providers'" in r.stderr, r.stderr


def test_version_and_help():
    r = subprocess.run([BALLAST, "--version"], capture_output=True)
    assert r.returncode == 0 and r.stdout.startswith(b"ballast ")
    r = subprocess.run([BALLAST, "--help"], capture_output=True)
    assert r.returncode == 0 and b"serve" in r.stdout and b"check-config" in r.stdout
    r = subprocess.run([BALLAST, "serve", "--help"], capture_output=True)
    assert r.returncode == 0 and b"--config" in r.stdout
    r = subprocess.run([BALLAST, "bogus"], capture_output=True)
    assert r.returncode == 2


if __name__ == "__main__":
    run_tests([
        test_endpoints_and_errors,
        test_client_keys,
        test_secrets_never_leak,
        test_hostile_clients_get_clean_errors_while_others_are_served,
        test_sighup_reload_under_load_drops_nothing,
        test_sigterm_drains_in_flight_requests,
        test_bad_config_fails_to_start_with_location,
        test_version_and_help,
    ])
