"""Shared helpers for bench/local/*.py (Python 3 stdlib only).

The daemon and the mock are started with the integration-test helpers
(tests/integration/gw.py and harness.py), imported from the source tree, so
the benchmark runs the real binaries exactly as the tests do. $BALLAST_BIN
and $BALLAST_MOCK name the binaries (bench/local.sh sets them).
"""
import http.client
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import gw  # noqa: E402  (after the sys.path change)
import harness  # noqa: E402,F401

HOST = "127.0.0.1"


def log(*a):
    print("local.sh:", *a, file=sys.stderr, flush=True)


def pct(vals, p):
    """Nearest-rank percentile of a list (0 for an empty one)."""
    v = sorted(vals)
    if not v:
        return 0.0
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def median(vals):
    return pct(vals, 50)


def fmt(x, nd=1):
    if x is None:
        return "?"
    return ("%%.%df" % nd) % x


def verdict(ok):
    if ok is None:
        return "n/a"
    return "PASS" if ok else "FAIL"


def stream(port, path, body, timeout=120):
    """POST a stream:true request and read the SSE stream line by line,
    timing every event. Returns a dict:
      status, headers, t0 (just before the request is sent), times (one per
      event with non-empty text), texts, usage (or None), done ([DONE] seen),
      error (a string or None). Events are parsed after the stream ends so
      the client does as little as possible while tokens arrive."""
    out = {"status": 0, "headers": {}, "t0": 0.0, "times": [], "texts": [], "usage": None,
           "done": False, "error": None, "t_end": 0.0}
    raw = []
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        data = json.dumps(body)
        c.connect()
        out["t0"] = time.perf_counter()
        c.request("POST", path, body=data, headers={"Content-Type": "application/json",
                                                     "Accept": "text/event-stream"})
        r = c.getresponse()
        out["status"] = r.status
        out["headers"] = {k.lower(): v for k, v in r.getheaders()}
        if r.status != 200:
            out["error"] = "status %d: %s" % (r.status, r.read()[:200])
            return out
        while True:
            line = r.readline()
            if not line:
                break
            if line.startswith(b"data:"):
                raw.append((time.perf_counter(), line[5:].strip()))
        out["t_end"] = time.perf_counter()
    except OSError as e:
        out["error"] = repr(e)
        return out
    finally:
        c.close()
    for t, d in raw:
        if d == b"[DONE]":
            out["done"] = True
            continue
        try:
            ev = json.loads(d)
        except ValueError:
            out["error"] = out["error"] or "bad event %r" % d[:80]
            continue
        if ev.get("error"):
            out["error"] = out["error"] or "error event %r" % d[:200]
        if ev.get("usage"):
            out["usage"] = ev["usage"]
        text = ""
        for ch in ev.get("choices") or []:
            text += ch.get("text") or (ch.get("delta") or {}).get("content") or ""
        if text:
            out["times"].append(t)
            out["texts"].append(text)
    return out


def completion_body(prompt, max_tokens, model, stream_=True):
    b = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
         "seed": 1}
    if stream_:
        b["stream"] = True
        b["stream_options"] = {"include_usage": True}
    return b


def bench_engine(ballast, model, threads, prompt_tokens, gen_tokens):
    """`ballast bench-engine` once: its key: value lines as a dict of strings."""
    r = subprocess.run([ballast, "bench-engine", "-m", model, "--threads", str(threads),
                        "--prompt-tokens", str(prompt_tokens), "--gen-tokens", str(gen_tokens)],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError("bench-engine failed: %s" % r.stderr[-500:])
    kv = {}
    for line in r.stdout.splitlines():
        k, sep, v = line.partition(": ")
        if sep:
            kv[k.strip()] = v.strip()
    return kv


def readyz(b):
    st, _, data = b.request("GET", "/readyz", timeout=5)
    try:
        return st, json.loads(data)
    except ValueError:
        return st, {}


def wait_local_ready(b, route, timeout=120):
    """Until /readyz says the local model of `route` has loaded."""
    end = time.time() + timeout
    while time.time() < end:
        _, j = readyz(b)
        for t in j.get("routes", {}).get(route, {}).get("targets", []):
            if t.get("local_model") == "ready":
                return
            if t.get("local_model") == "failed":
                raise RuntimeError("local model failed to load: %s" % t.get("error"))
        time.sleep(0.05)
    raise RuntimeError("local model of route %s did not load in %d s" % (route, timeout))


def breaker_states(b, route):
    """{target: breaker state} of a route, from /readyz."""
    _, j = readyz(b)
    targets = j.get("routes", {}).get(route, {}).get("targets", [])
    return {t["target"]: t["breaker"] for t in targets}
