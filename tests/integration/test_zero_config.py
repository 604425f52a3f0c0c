"""`ballast serve` with no config: routes come from API keys in the
environment and GGUF files in $BALLAST_MODELS, and the table it built is
printed (without the keys). OpenAI is played by ballast-mock through
OPENAI_BASE_URL; the local tier is a tiny model gguf-gen writes."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from gw import BALLAST, free_port, run_tests, start_mock

BUILD = os.environ.get("BALLAST_BUILD", "build")
SECRET = "sk-zero-config-dummy-7f3a9c"


class Daemon:
    """`ballast serve` with no arguments, in a clean environment."""

    def __init__(self, env):
        self.dir = tempfile.mkdtemp(prefix="ballast-zc-")
        self.port = free_port()
        e = {k: v for k, v in os.environ.items()
             if not k.endswith("_API_KEY") and not k.startswith(("BALLAST_MODELS", "BALLAST_LISTEN",
                                                                  "OPENAI_"))}
        e["HOME"] = self.dir  # never the user's own model store
        e["BALLAST_LISTEN"] = "127.0.0.1:%d" % self.port
        e.update(env)
        self.log_path = os.path.join(self.dir, "serve.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([BALLAST, "serve"], stdout=self.log, stderr=subprocess.STDOUT,
                                     env=e)

    def text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def request(self, method, path, body=None, timeout=15):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=json.dumps(body) if body is not None else None,
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def chat(self, model):
        return self.request("POST", "/v1/chat/completions",
                            {"model": model, "max_tokens": 8, "temperature": 0,
                             "messages": [{"role": "user", "content": "hi"}]})

    def wait(self, path="/readyz", timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise AssertionError("ballast exited (%d):\n%s" % (self.proc.returncode, self.text()))
            try:
                if self.request("GET", path, timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("%s never answered 200:\n%s" % (path, self.text()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        out = self.text()
        shutil.rmtree(self.dir, ignore_errors=True)
        assert self.proc.returncode == 0, "exit %d:\n%s" % (self.proc.returncode, out)
        return out


def gguf_gen(path):
    p = subprocess.run([os.path.join(BUILD, "gguf-gen"), "--out", path, "--shape", "tiny"],
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr


def test_cloud_then_local():
    store = tempfile.mkdtemp(prefix="ballast-zc-store-")
    mock = start_mock("openai")
    d = None
    try:
        gguf_gen(os.path.join(store, "tiny-chat.gguf"))
        d = Daemon({"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": mock.url + "/v1",
                    "BALLAST_MODELS": store, "ANTHROPIC_API_KEY": "sk-ant-" + SECRET,
                    # a port nothing listens on: the test never leaves 127.0.0.1
                    "ANTHROPIC_BASE_URL": "http://127.0.0.1:%d/v1" % free_port()})
        d.wait()
        table = d.text()
        assert SECRET not in table, table
        assert "zero-config" in table and "api_key: set" in table, table
        assert "  openai\n    type: openai\n" in table, table
        assert "base_url: %s/v1" % mock.url in table, table
        assert "  local-tiny-chat\n    type: local\n" in table, table
        assert ("  gpt-4o-mini (aliases: default)\n"
                "    tier 1: openai/gpt-4o-mini weight=1\n"
                "    tier 2: anthropic/claude-haiku-4-5 weight=1\n"
                "    tier 3: local-tiny-chat/tiny-chat weight=1\n") in table, table
        assert "  anthropic\n    type: anthropic" in table, table
        assert ("  claude-sonnet-4-5\n"
                "    tier 1: anthropic/claude-sonnet-4-5 weight=1\n"
                "    tier 2: openai/gpt-4o weight=1\n"
                "    tier 3: local-tiny-chat/tiny-chat weight=1\n") in table, table

        st, h, body = d.chat("gpt-4o-mini")
        assert st == 200, body
        assert h["x-ballast-backend"] == "openai/gpt-4o-mini", h
        assert "x-ballast-degraded" not in h or h["x-ballast-degraded"] != "true", h
        assert mock.stats()["requests"] >= 1, mock.stats()

        mock.stop()
        for model in ("gpt-4o-mini", "default", "gpt-4o"):
            st, h, body = d.chat(model)
            assert st == 200, (model, body, d.text()[-2000:])
            assert h["x-ballast-backend"] == "local-tiny-chat/tiny-chat", (model, h)
            assert json.loads(body)["choices"][0]["message"]["role"] == "assistant"
        # The local model by its own name.
        st, h, _ = d.chat("tiny-chat")
        assert st == 200 and h["x-ballast-backend"] == "local-tiny-chat/tiny-chat", h

        # SIGHUP rebuilds from the store: a new file becomes a route.
        st, _, _ = d.chat("second")
        assert st == 404, st
        gguf_gen(os.path.join(store, "second.gguf"))
        d.proc.send_signal(signal.SIGHUP)
        end = time.time() + 20
        while True:
            st, h, body = d.chat("second")
            if st == 200:
                break
            assert time.time() < end, (st, body, d.text()[-2000:])
            time.sleep(0.1)
        assert h["x-ballast-backend"] == "local-second/second", h
        assert "config reloaded from the environment and model store" in d.text()
        out = d.stop()
        d = None
        assert SECRET not in out
    finally:
        if d:
            d.stop()
        mock.stop()
        shutil.rmtree(store, ignore_errors=True)


def test_demo_model_without_keys_or_store():
    """Empty store, no keys: the repository's demo model, said to be one."""
    store = tempfile.mkdtemp(prefix="ballast-zc-store-")
    d = Daemon({"BALLAST_MODELS": store})
    try:
        d.wait()
        text = d.text()
        assert "no cloud API key" in text, text
        assert "children's stories" in text and "ballast models pull qwen2.5-0.5b" in text, text
        assert "    tier 1: local-stories260K/stories260K weight=1\n" in text, text
        st, h, body = d.request("POST", "/v1/completions",
                                {"model": "gpt-4o-mini", "prompt": "Once upon a time",
                                 "max_tokens": 8, "temperature": 0})
        assert st == 200, body
        assert h["x-ballast-backend"] == "local-stories260K/stories260K", h
    finally:
        d.stop()
        shutil.rmtree(store, ignore_errors=True)


def test_nothing_to_serve():
    """No key and no model anywhere: a clear error, exit 1. The demo model is
    hidden by running a copy of the binary from a folder without models/."""
    tmp = tempfile.mkdtemp(prefix="ballast-zc-bin-")
    try:
        exe = os.path.join(tmp, "bin", "ballast")
        os.makedirs(os.path.dirname(exe))
        shutil.copy(BALLAST, exe)
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        env["HOME"] = tmp
        env["BALLAST_MODELS"] = tmp
        p = subprocess.run([exe, "serve"], capture_output=True, timeout=30, env=env)
        assert p.returncode == 1, (p.returncode, p.stderr)
        err = p.stderr.decode()
        assert "nothing to serve" in err and "OPENAI_API_KEY" in err, err
        assert "ballast models pull" in err and "-c FILE" in err, err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run_tests([test_cloud_then_local, test_demo_model_without_keys_or_store, test_nothing_to_serve])
