"""Helpers for ballast integration tests (stdlib only).

    m = start_mock("alpha")            # ballast-mock on a free port
    m.url, m.port, m.stats(), m.reset(), m.set_mode("status", code=503)
    r = request(m.port, "POST", "/v1/chat/completions", {"model": "x"})
    events = sse_request(m.port, "/v1/chat/completions", {"model": "x", "stream": True})
    m.stop()

    b = start_ballast(yaml_text, port=8080)   # "$BALLAST_BIN serve -c FILE"
    b.stop()

Binaries come from $BALLAST_MOCK and $BALLAST_BIN (set by ctest).
"""
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import http.client

HOST = "127.0.0.1"


def die_with_parent():
    """preexec_fn for processes tests start: SIGTERM when the test process
    ends, however it ends, so no server outlives its test (or holds ctest's
    output pipe open)."""
    import ctypes
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lowercased name -> value
        self.body = body        # bytes

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "Response(%d, %r)" % (self.status, self.body[:200])


def _encode(body):
    if body is None:
        return None
    if isinstance(body, (dict, list)):
        return json.dumps(body).encode()
    if isinstance(body, str):
        return body.encode()
    return body


def request(port, method, path, body=None, headers=None, timeout=10, host=HOST):
    """One HTTP request on a fresh connection; body may be dict/str/bytes."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        hdrs.update(headers or {})
        conn.request(method, path, body=_encode(body), headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def post_json(port, path, obj, headers=None, timeout=10):
    return request(port, "POST", path, obj, headers, timeout)


def iter_sse_events(resp):
    """Yield (event, data) for each SSE event of an http.client response
    (event is "message" when the stream names none)."""
    data, event = [], None
    while True:
        line = resp.readline()
        if not line:
            return  # an unterminated event at the end is dropped (SSE rules)
        line = line.decode("utf-8", "replace").rstrip("\r\n")
        if line == "":
            if data:
                yield (event or "message", "\n".join(data))
            data, event = [], None
        elif line.startswith(":"):
            continue
        else:
            name, _, v = line.partition(":")
            v = v[1:] if v.startswith(" ") else v
            if name == "data":
                data.append(v)
            elif name == "event":
                event = v


def iter_sse(resp):
    """Yield the data field of each SSE event of an http.client response."""
    for _, data in iter_sse_events(resp):
        yield data


def sse_request(port, path, body, headers=None, timeout=10, host=HOST, with_events=False):
    """POST and read the whole SSE stream: (Response without body, [data...]),
    or [(event, data)...] with with_events=True."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        hdrs = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        hdrs.update(headers or {})
        conn.request("POST", path, body=_encode(body), headers=hdrs)
        r = conn.getresponse()
        resp = Response(r.status, {k.lower(): v for k, v in r.getheaders()}, b"")
        return resp, list(iter_sse_events(r) if with_events else iter_sse(r))
    finally:
        conn.close()


def raw_exchange(port, data, timeout=5, host=HOST):
    """Send raw bytes, read until the peer closes or timeout; returns
    (bytes read, error or None). A reset shows up as ConnectionResetError."""
    out = b""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out, None
                out += chunk
        except (socket.timeout, ConnectionResetError) as e:
            return out, e


class Mock:
    def __init__(self, proc, port, name):
        self.proc = proc
        self.port = port
        self.name = name
        self.url = "http://%s:%d" % (HOST, port)

    def stats(self):
        return request(self.port, "GET", "/_mock/stats").json()

    def reset(self):
        request(self.port, "POST", "/_mock/reset", {})

    def set_mode(self, mode, **params):
        """Process-wide fault mode for later requests, e.g. set_mode("status", code=503)."""
        body = dict(params)
        body["mode"] = mode
        r = request(self.port, "POST", "/_mock/mode", body)
        if r.status != 200:
            raise RuntimeError("set_mode %s: %r" % (mode, r))

    def set_tool(self, name, args):
        """Script a tool call: requests offering that tool get it (mock.c)."""
        r = request(self.port, "POST", "/_mock/tool", {"name": name, "arguments": args})
        if r.status != 200:
            raise RuntimeError("set_tool %s: %r" % (name, r))

    def relisten(self):
        """After mode "refuse": listen again (SIGUSR1) and wait until it answers."""
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                request(self.port, "GET", "/_mock/mode", timeout=1)
                return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("mock did not listen again")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_mock(name="mock", mode=None, chunks=None, port=0, extra_args=()):
    """Start $BALLAST_MOCK on an ephemeral (or given) port; mode uses the
    header syntax ("status;code=503")."""
    exe = os.environ.get("BALLAST_MOCK")
    if not exe:
        raise RuntimeError("BALLAST_MOCK is not set")
    fd, port_file = tempfile.mkstemp(prefix="bl-mock-port-")
    os.close(fd)
    os.unlink(port_file)
    args = [exe, "--port", str(port), "--name", name, "--port-file", port_file]
    if mode:
        args += ["--mode", mode]
    if chunks:
        args += ["--chunks", str(chunks)]
    args += list(extra_args)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, preexec_fn=die_with_parent)
    deadline = time.time() + 10
    try:
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("ballast-mock exited with %d" % proc.returncode)
            try:
                with open(port_file) as f:
                    got = int(f.read().strip())
                return Mock(proc, got, name)
            except (OSError, ValueError):
                time.sleep(0.005)
        proc.kill()
        raise RuntimeError("ballast-mock did not start")
    finally:
        if os.path.exists(port_file):
            os.unlink(port_file)


class Ballast:
    def __init__(self, proc, port, config_path, stderr_path, workdir):
        self.proc = proc
        self.port = port
        self.url = "http://%s:%d" % (HOST, port)
        self.config_path = config_path
        self.stderr_path = stderr_path
        self.workdir = workdir

    def stderr(self):
        with open(self.stderr_path, "r", errors="replace") as f:
            return f.read()

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_ballast(config_text, port=None, extra_args=(), env=None, timeout=15):
    """Write config_text to a temp file, start "$BALLAST_BIN serve -c FILE",
    wait until GET /healthz answers. port defaults to the first
    "listen: ...:PORT" in the config."""
    exe = os.environ.get("BALLAST_BIN")
    if not exe:
        raise RuntimeError("BALLAST_BIN is not set")
    if port is None:
        m = re.search(r"listen\w*\s*:\s*\"?[\w.\[\]:]*:(\d+)", config_text)
        if not m:
            raise ValueError("give port= or a 'listen: HOST:PORT' line")
        port = int(m.group(1))
    workdir = tempfile.mkdtemp(prefix="bl-ballast-")
    config_path = os.path.join(workdir, "ballast.yaml")
    with open(config_path, "w") as f:
        f.write(config_text)
    stderr_path = os.path.join(workdir, "stderr.log")
    penv = dict(os.environ)
    penv.update(env or {})
    with open(stderr_path, "wb") as errf:
        proc = subprocess.Popen([exe, "serve", "-c", config_path] + list(extra_args),
                                stdout=subprocess.DEVNULL, stderr=errf, env=penv, cwd=workdir)
    b = Ballast(proc, port, config_path, stderr_path, workdir)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("ballast exited with %d:\n%s" % (proc.returncode, b.stderr()))
        try:
            if request(port, "GET", "/healthz", timeout=1).status == 200:
                return b
        except OSError:
            pass
        time.sleep(0.02)
    b.stop()
    raise RuntimeError("ballast did not answer /healthz:\n" + b.stderr())
