#!/usr/bin/env python3
"""`ballast models pull` and `ballast models list` against a local HTTP server
(127.0.0.1, ephemeral port) serving a gguf-gen file: a plain download, the
hub's X-Linked-ETag hash, a connection cut mid-file (pull retries with a Range
request), Ctrl-C keeping the .part and the next run resuming it, a server that
ignores Range, a wrong hash, 404, a redirect to a non-local http URL, and the
already-present case."""
import hashlib
import http.server
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ["BALLAST_BIN"]
BUILD = os.environ["BALLAST_BUILD"]
GEN = os.path.join(BUILD, "gguf-gen")


def check(cond, msg):
    if not cond:
        print("FAIL:", msg, file=sys.stderr)
        sys.exit(1)


class State:
    data = b""
    sha = ""
    requests = []  # (path, Range header or None)
    cut_once = set()  # paths whose first request is cut after CUT bytes
    lock = threading.Lock()


CUT = 5000


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_HEAD(self):
        self.serve(head=True)

    def do_GET(self):
        self.serve(head=False)

    def serve(self, head):
        path = self.path
        rng = self.headers.get("Range")
        with State.lock:
            State.requests.append((path, rng))
        name = path.rsplit("/", 1)[-1]
        mode = path.split("/")[1] if path.count("/") >= 2 else ""
        if mode == "missing":
            body = b"no such file\n"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)
            return
        if mode == "redirect-out":
            self.send_response(302)
            self.send_header("Location", "http://example.com/" + name)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if mode == "hop":
            # hub-like: the hash travels on the redirect, as on huggingface.co
            self.send_response(302)
            self.send_header("Location", "/plain/" + name)
            self.send_header("X-Linked-ETag", '"%s"' % State.sha)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = State.data
        start = 0
        if rng and mode != "norange" and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
        if start >= len(data) and start > 0:
            self.send_response(416)
            self.send_header("Content-Range", "bytes */%d" % len(data))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = data[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        self.send_header("Accept-Ranges", "none" if mode == "norange" else "bytes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head:
            return
        cut = False
        with State.lock:
            if path in State.cut_once:
                State.cut_once.discard(path)
                cut = True
        if cut:
            # send part of the body, then drop the connection
            self.wfile.write(body[:CUT])
            self.wfile.flush()
            self.close_connection = True
            return
        if mode == "slow":
            # a trickle the test can interrupt: 4 KiB every 50 ms
            for i in range(0, len(body), 4096):
                try:
                    self.wfile.write(body[i:i + 4096])
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.05)
            return
        try:
            self.wfile.write(body)
        except OSError:
            pass  # the client hung up (e.g. curl refusing a 200 to its Range request)


def main():
    tmp = tempfile.mkdtemp(prefix="bl_pull_")
    srv = None
    try:
        src = os.path.join(tmp, "src.gguf")
        r = subprocess.run([GEN, "--out", src, "--shape", "tiny"], capture_output=True, text=True,
                           timeout=120)
        check(r.returncode == 0, f"gguf-gen: {r.stderr}")
        State.data = open(src, "rb").read()
        State.sha = hashlib.sha256(State.data).hexdigest()
        check(len(State.data) > 4 * CUT, f"tiny model too small: {len(State.data)}")

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        base = "http://127.0.0.1:%d" % srv.server_address[1]

        store = os.path.join(tmp, "store", "nested")  # created with mkdir -p
        env = dict(os.environ, BALLAST_MODELS=store)
        env.pop("HF_TOKEN", None)

        def pull(*args):
            return subprocess.run([BIN, "models", "pull", *args], capture_output=True, text=True,
                                  timeout=120, env=env)

        def ranges_for(path):
            return [rg for p, rg in State.requests if p == path]

        # aliases
        r = pull("--list-aliases")
        check(r.returncode == 0 and "qwen2.5-0.5b-instruct" in r.stdout and
              "https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/"
              "qwen2.5-0.5b-instruct-q4_k_m.gguf" in r.stdout and
              "smollm2-135m-instruct" in r.stdout, f"--list-aliases: {r.stdout}")
        r = pull("no-such-alias")
        check(r.returncode != 0 and "no-such-alias" in r.stderr, f"unknown alias: {r.stderr}")
        r = pull("http://example.com/a.gguf")
        check(r.returncode != 0 and "https" in r.stderr, f"plain http refused: {r.stderr}")

        # normal, with --sha256; not a terminal: plain progress lines
        r = pull(base + "/plain/a.gguf", "--sha256", State.sha.upper())
        check(r.returncode == 0, f"plain pull: {r.returncode} {r.stderr}")
        dest = os.path.join(store, "a.gguf")
        check(open(dest, "rb").read() == State.data, "a.gguf content differs")
        check(not os.path.exists(dest + ".part"), ".part left after success")
        check("100%" in r.stderr and "\r" not in r.stderr, f"progress lines: {r.stderr!r}")
        check("verified" in r.stdout, r.stdout)
        check(os.stat(os.path.join(tmp, "store")).st_mode & 0o777 == 0o755, "store mode")

        # already present with the right hash: no download, exit 0
        n_before = len(State.requests)
        r = pull(base + "/plain/a.gguf", "--sha256", State.sha)
        check(r.returncode == 0 and "already" in r.stdout, f"already present: {r.stdout} {r.stderr}")
        check(len(State.requests) == n_before, "already-present pull downloaded again")
        # ... and with a different expected hash: refused, file kept
        r = pull(base + "/plain/a.gguf", "--sha256", "1" * 64)
        check(r.returncode == 1 and "--force" in r.stderr, f"present, wrong hash: {r.stderr}")
        check(os.path.exists(dest), "present file removed")

        # hash from the hub's X-Linked-ETag on a redirect
        r = pull(base + "/hop/b.gguf")
        check(r.returncode == 0 and "verified" in r.stdout, f"hop pull: {r.stdout} {r.stderr}")
        check(open(os.path.join(store, "b.gguf"), "rb").read() == State.data, "b.gguf differs")
        check(open(os.path.join(store, "b.gguf.sha256")).read().startswith(State.sha),
              "sidecar hash")

        # no hash known at all: kept with a warning naming the computed hash
        r = pull(base + "/plain/nohash.gguf")
        check(r.returncode == 0 and "warning" in r.stderr and State.sha in r.stderr,
              f"no-hash pull: {r.stderr}")

        # connection cut after CUT bytes: pull retries and resumes with a Range
        State.cut_once.add("/plain/c.gguf")
        r = pull(base + "/plain/c.gguf", "--sha256", State.sha)
        check(r.returncode == 0, f"cut pull: {r.returncode} {r.stderr}")
        check(open(os.path.join(store, "c.gguf"), "rb").read() == State.data, "c.gguf differs")
        rg = ranges_for("/plain/c.gguf")
        check(rg[0] is None and len(rg) == 2 and rg[1] == "bytes=%d-" % CUT,
              f"resume requests: {rg}")
        check("retrying" in r.stderr and "resuming" in r.stderr, r.stderr)

        # Ctrl-C keeps the .part; the next run resumes from it
        p = subprocess.Popen([BIN, "models", "pull", base + "/slow/d.gguf", "--sha256", State.sha],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        part = os.path.join(store, "d.gguf.part")
        deadline = time.time() + 60
        while time.time() < deadline and (not os.path.exists(part) or
                                          os.path.getsize(part) < 8192):
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        check(p.returncode == 130 and "resume" in err, f"interrupt: {p.returncode} {err}")
        kept = os.path.getsize(part)
        check(0 < kept < len(State.data), f".part size after Ctrl-C: {kept}")
        check(not os.path.exists(os.path.join(store, "d.gguf")), "interrupted file in place")
        check(State.data.startswith(open(part, "rb").read()), ".part is not a prefix")
        r = pull(base + "/slow/d.gguf", "--sha256", State.sha)
        check(r.returncode == 0, f"resume after Ctrl-C: {r.stderr}")
        check(ranges_for("/slow/d.gguf")[-1] == "bytes=%d-" % kept,
              f"resume range: {ranges_for('/slow/d.gguf')} kept {kept}")
        check(open(os.path.join(store, "d.gguf"), "rb").read() == State.data, "d.gguf differs")

        # a server that ignores Range: the stale .part restarts from zero
        with open(os.path.join(store, "e.gguf.part"), "wb") as f:
            f.write(b"X" * 3000)
        r = pull(base + "/norange/e.gguf", "--sha256", State.sha)
        check(r.returncode == 0 and "ignored the Range" in r.stderr, f"norange: {r.stderr}")
        check(open(os.path.join(store, "e.gguf"), "rb").read() == State.data, "e.gguf differs")

        # wrong hash: refused, nothing in place, no .part
        r = pull(base + "/plain/f.gguf", "--sha256", "0" * 64)
        check(r.returncode == 1 and "mismatch" in r.stderr, f"wrong hash: {r.stderr}")
        check(not os.path.exists(os.path.join(store, "f.gguf")), "bad file in place")
        check(not os.path.exists(os.path.join(store, "f.gguf.part")), "bad .part kept")

        # 404
        r = pull(base + "/missing/g.gguf")
        check(r.returncode == 1 and "404" in r.stderr and "not found" in r.stderr,
              f"404: {r.returncode} {r.stderr}")
        check(not os.path.exists(os.path.join(store, "g.gguf")), "404 file in place")
        check(not os.path.exists(os.path.join(store, "g.gguf.part")), "404 left a .part")

        # a redirect to plain http elsewhere is not followed
        r = pull(base + "/redirect-out/h.gguf")
        check(r.returncode == 1 and "refusing http://example.com" in r.stderr,
              f"redirect-out: {r.stderr}")

        # list: the pulled files with arch llama; a broken file marked
        with open(os.path.join(store, "broken.gguf"), "wb") as f:
            f.write(State.data[:100])
        r = subprocess.run([BIN, "models", "list"], capture_output=True, text=True, timeout=60,
                           env=env)
        check(r.returncode == 0, f"list: {r.stderr}")
        lines = {ln.split()[1] if ln.startswith("!") else ln.split()[0]: ln
                 for ln in r.stdout.splitlines()[1:] if ln.strip()}
        check("a.gguf" in lines and " llama " in lines["a.gguf"], f"list:\n{r.stdout}")
        check(lines["a.gguf"].split()[-1] in ("F32", "F16", "Q8_0", "Q4_0", "Q4_K", "Q4_K_M"),
              f"quant column:\n{r.stdout}")
        check(lines["broken.gguf"].startswith("!") and "cannot open" in lines["broken.gguf"],
              f"broken marker:\n{r.stdout}")
        check("f.gguf" not in lines and "b.gguf.sha256" not in lines, r.stdout)

        empty = dict(env, BALLAST_MODELS=os.path.join(tmp, "none"))
        r = subprocess.run([BIN, "models", "list"], capture_output=True, text=True, timeout=60,
                           env=empty)
        check(r.returncode == 0 and "no models" in r.stdout, f"empty list: {r.stdout}")
        print("ok")
    finally:
        if srv:
            srv.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
