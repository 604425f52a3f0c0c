"""Gateway test helpers: start the real ballast daemon on loopback with a
config, talk HTTP to it, read its log and metrics. Mock providers come from
harness.py (start_mock)."""
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from harness import die_with_parent, free_port, start_mock  # noqa: F401 (re-exported)

BALLAST = os.environ.get("BALLAST_BIN", "build/ballast")


class Ballast:
    """The daemon under test. `config` is YAML text; the listen line is
    added. stop() sends SIGTERM and asserts a clean exit (ASan builds report
    leaks through the exit code)."""

    def __init__(self, config, env=None, wait_ready=True):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="ballast-test-")
        self.config_path = os.path.join(self.dir, "ballast.yaml")
        self.write_config(config)
        self.log_path = os.path.join(self.dir, "ballast.log")
        self.log = open(self.log_path, "wb")
        e = dict(os.environ)
        e["XDG_STATE_HOME"] = self.dir  # the response store's file stays in the test's folder
        e.update(env or {})
        self.proc = subprocess.Popen([BALLAST, "serve", "-c", self.config_path],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=e,
                                     preexec_fn=die_with_parent)
        if wait_ready:
            self.wait_up()

    def write_config(self, config):
        text = "listen: 127.0.0.1:%d\n%s" % (self.port, config)
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.config_path)

    def wait_up(self, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise AssertionError("ballast exited early (%s):\n%s" % (self.proc.returncode, self.log_text()))
            try:
                st, _, _ = self.request("GET", "/healthz", timeout=1)
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("ballast did not come up:\n" + self.log_text())

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def request(self, method, path, body=None, headers=None, timeout=15):
        """One request on a fresh connection: (status, headers dict lowercased, body bytes)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            h = {"Content-Type": "application/json"}
            h.update(headers or {})
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def chat(self, model="gpt-4o-mini", stream=False, extra=None, headers=None, timeout=15):
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        if stream:
            body["stream"] = True
        body.update(extra or {})
        st, h, data = self.request("POST", "/v1/chat/completions", body, headers, timeout)
        return st, h, data

    def chat_text(self, **kw):
        """A chat request; returns (status, headers, assistant text) for
        streaming and non-streaming alike."""
        st, h, data = self.chat(**kw)
        if st != 200:
            return st, h, data.decode(errors="replace")
        if kw.get("stream"):
            return st, h, sse_text(data)
        return st, h, json.loads(data)["choices"][0]["message"]["content"]

    def metrics(self):
        st, _, data = self.request("GET", "/metrics")
        assert st == 200
        return data.decode()

    def metric(self, name, **labels):
        """Sum of the samples of `name` whose labels include `labels`."""
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith("#"):
                continue
            m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
            if not m or m.group(1) != name:
                continue
            got = dict(re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
            if all(got.get(k) == str(v) for k, v in labels.items()):
                total += float(m.group(4))
        return total

    def log_text(self):
        if getattr(self, "final_log", None) is not None:
            return self.final_log  # stopped and cleaned up
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def log_lines(self, msg="request"):
        out = []
        for line in self.log_text().splitlines():
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if d.get("msg") == msg:
                out.append(d)
        return out

    def log_for(self, headers, timeout=5):
        """The log line of the request whose response carried these headers.
        Lines reach the log at the end of the daemon's loop turn, a moment
        after the response: wait for it."""
        rid = headers["x-request-id"]
        end = time.time() + timeout
        while True:
            for line in self.log_lines():
                if line.get("request_id") == rid:
                    return line
            if time.time() > end:
                raise AssertionError("no log line for request %s:\n%s" % (rid, self.log_text()[-2000:]))
            time.sleep(0.01)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("ballast did not stop on SIGTERM:\n" + self.log_text())
        self.log.close()
        if self.proc.returncode != 0:
            raise AssertionError("ballast exited with %d:\n%s" % (self.proc.returncode, self.log_text()))
        self.cleanup()

    def cleanup(self):
        """Remove the config and log; the log's text stays readable."""
        self.final_log = self.log_text()
        shutil.rmtree(self.dir, ignore_errors=True)


def sse_events(data):
    """The data payloads of an SSE body, in order."""
    text = data.decode() if isinstance(data, bytes) else data
    events = []
    for block in re.split(r"\r\n\r\n|\n\n|\r\r", text):
        lines = [l[5:].lstrip(" ") if l.startswith("data:") else None for l in re.split(r"\r\n|\n|\r", block)]
        payload = [l for l in lines if l is not None]
        if payload:
            events.append("\n".join(payload))
    return events


def sse_text(data):
    """Concatenated delta content of an OpenAI chat stream."""
    out = ""
    for ev in sse_events(data):
        if ev == "[DONE]":
            continue
        d = json.loads(ev)
        for ch in d.get("choices", []):
            out += (ch.get("delta") or {}).get("content") or ""
    return out


def provider(name, port, **extra):
    """YAML for one openai-type provider on a mock port."""
    y = "  - name: %s\n    type: openai\n    base_url: http://127.0.0.1:%d/v1\n" % (name, port)
    for k, v in extra.items():
        y += "    %s: %s\n" % (k, v)
    return y


def run_tests(tests):
    """Run test functions, print a summary, exit non-zero on failure."""
    import traceback
    failed = 0
    for t in tests:
        start = time.time()
        try:
            t()
            print("ok   %s (%.2fs)" % (t.__name__, time.time() - start), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s" % t.__name__, flush=True)
            traceback.print_exc()
    print("%d passed, %d failed" % (len(tests) - failed, failed))
    raise SystemExit(1 if failed else 0)
