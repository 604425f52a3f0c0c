"""The outage drill as a benchmark (bench/local.sh runs this).

The phases of tests/integration/test_outage_drill.py (three ballast-mock
clouds, then the local tier; healthy -> one refusing -> all hanging -> all
500 -> 429 with Retry-After -> streams cut mid-way -> recovery), with the same
daemon config, under a steady mixed load (--clients threads, half streaming),
each phase --phase seconds long (hanging twice that, recovery three times).
Prints per phase: requests, client-visible errors, share answered locally,
p50/p99 latency (whole request), p50/p99 time to first token of streams, and
the time from the phase's start to the first answer from the local model;
then the time from the clouds failing ("all hanging" set) to the first token
served locally. Daemon and mocks come from tests/integration (gw.py,
harness.py), imported, not copied.
"""
import argparse
import json
import os
import sys
import threading
import time

from common import ROOT, fmt, gw, log, pct, stream, verdict

SHARED = os.environ.get("BALLAST_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
TIMEOUTS = "{connect_ms: 500, first_token_ms: 400, total_ms: 1500}"  # as in the test
PHASES = ["healthy", "one refusing", "all hanging", "all 500", "all 429", "streams cut", "recovery"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model",
                    default=os.path.normpath(os.path.join(SHARED, "models", "stories260K.gguf")))
    ap.add_argument("--local-name", default="stories260k")
    ap.add_argument("--phase", type=float, default=3.0, help="seconds per phase")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0,
                    help="threads: of the local provider (0 = cores)")
    a = ap.parse_args()

    clouds = [gw.start_mock(n) for n in ("a", "b", "c")]
    cfg = ("breaker: {failure_threshold: 3, cooldown_ms: 800}\nretry: {max_attempts: 8}\n"
           "providers:\n")
    for n, m in zip("abc", clouds):
        cfg += gw.provider(n, m.port, timeouts=TIMEOUTS)
    cfg += ("  - name: local\n    type: local\n    model: %s\n    slots: 4\n    max_tokens: 24\n"
            "    threads: %d\n" % (a.model, a.threads))
    cfg += "routes:\n  - model: gpt-4o-mini\n    tiers:\n"
    for n in "abc":
        cfg += "      - [{provider: %s, model: model-%s}]\n" % (n, n)
    cfg += "      - [{provider: local, model: %s}]\n" % a.local_name
    b = None
    recs, lock, done = [], threading.Lock(), threading.Event()
    phase = [PHASES[0]]
    marks = {}

    def client(streaming):
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": a.max_tokens}
        while not done.is_set():
            ph = phase[0]
            t0 = time.perf_counter()
            rec = {"phase": ph, "t0": t0, "stream": streaming, "ok": False, "backend": "",
                   "first": None}
            try:
                if streaming:
                    r = stream(b.port, "/v1/chat/completions", dict(body, stream=True), timeout=20)
                    rec["backend"] = r["headers"].get("x-ballast-backend", "")
                    rec["ok"] = (r["status"] == 200 and r["done"] and not r["error"] and
                                 bool(r["texts"]) and bool(rec["backend"]))
                    rec["first"] = r["times"][0] if r["times"] else None
                    rec["err"] = r["error"] or ("status %d" % r["status"])
                else:
                    st, h, data = b.chat(extra={"max_tokens": a.max_tokens}, timeout=20)
                    rec["backend"] = h.get("x-ballast-backend", "")
                    text = json.loads(data)["choices"][0]["message"]["content"] if st == 200 else ""
                    rec["ok"] = st == 200 and bool(text) and bool(rec["backend"])
                    rec["err"] = "status %d: %r" % (st, data[:200])
            except Exception as e:  # noqa: BLE001 - a dropped request is what we count
                rec["err"] = repr(e)
            rec["t1"] = time.perf_counter()
            if rec["first"] is None:
                rec["first"] = rec["t1"]
            with lock:
                recs.append(rec)

    try:
        b = gw.Ballast(cfg)
        end = time.time() + 30
        while time.time() < end and b.request("GET", "/readyz")[0] != 200:
            time.sleep(0.02)
        threads = [threading.Thread(target=client, args=(i % 2 == 1,)) for i in range(a.clients)]
        for t in threads:
            t.start()

        def enter(name):
            phase[0] = name
            marks[name] = time.perf_counter()

        def set_all(mode, **params):
            for m in clouds:
                m.set_mode(mode, **params)

        enter("healthy")
        time.sleep(a.phase)
        clouds[0].set_mode("refuse")
        enter("one refusing")
        time.sleep(a.phase)
        clouds[0].relisten()
        set_all("hang")
        enter("all hanging")
        time.sleep(a.phase * 2)
        set_all("status", code=500)
        enter("all 500")
        time.sleep(a.phase)
        set_all("status", code=429, retry_after="1")
        enter("all 429")
        time.sleep(a.phase)
        set_all("cut", events=3)
        enter("streams cut")
        time.sleep(a.phase)
        set_all("ok")
        enter("recovery")
        time.sleep(a.phase * 3)
        done.set()
        for t in threads:
            t.join(30)
        marks["end"] = time.perf_counter()
    finally:
        done.set()
        try:
            if b is not None:
                b.stop()
        finally:
            for m in clouds:
                m.stop()

    local = "local/" + a.local_name
    print("| phase | requests | errors | answered locally | p50 (ms) | p99 (ms) | max (ms) "
          "| stream TTFT p50 (ms) | stream TTFT p99 (ms) "
          "| first local token after phase start (ms) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    total_err = 0
    bounds = PHASES + ["end"]
    for i, ph in enumerate(PHASES):
        rs = [r for r in recs if r["phase"] == ph]
        errs = [r for r in rs if not r["ok"]]
        total_err += len(errs)
        lat = [(r["t1"] - r["t0"]) * 1e3 for r in rs if r["ok"]]
        ttft = [(r["first"] - r["t0"]) * 1e3 for r in rs if r["ok"] and r["stream"]]
        nloc = sum(1 for r in rs if r["backend"] == local)
        # first token from the local model seen during this phase
        lo, hi = marks[ph], marks[bounds[i + 1]]
        firsts = [r["first"] for r in recs
                  if r["ok"] and r["backend"] == local and lo <= r["first"] < hi]
        first_local = "%.0f" % ((min(firsts) - lo) * 1e3) if firsts else "–"
        print("| %s | %d | %d | %d%% | %s | %s | %s | %s | %s | %s |" % (
            ph, len(rs), len(errs), 100 * nloc // max(1, len(rs)), fmt(pct(lat, 50)),
            fmt(pct(lat, 99)),
            fmt(max(lat) if lat else None),
            fmt(pct(ttft, 50)), fmt(pct(ttft, 99)), first_local))
        for r in errs[:3]:
            log("drill: error in phase %s: %s" % (ph, r.get("err")))
    t_fail = marks["all hanging"]
    after = [r["first"] for r in recs if r["ok"] and r["backend"] == local and r["first"] >= t_fail]
    to_local = (min(after) - t_fail) * 1e3 if after else None
    late = [r["backend"] for r in recs
            if r["phase"] == "recovery" and r["t0"] > marks["recovery"] + 2]
    back = bool(late) and set(late) == {"a/model-a"}
    print()
    print("| drill metric | value | target | result |")
    print("| --- | ---: | --- | --- |")
    print("| clouds fail (all hanging) -> first token served locally (ms) | %s | | |"
          % fmt(to_local, 0))
    print("| client-visible errors, whole drill | %d | 0 | %s |"
          % (total_err, verdict(total_err == 0)))
    print("| after recovery (+2 s) all answers from tier 1 | %d of %d | all | %s |" % (
        sum(1 for x in late if x == "a/model-a"), len(late), verdict(back)))
    print()
    print("Model %s (local tier, threads %d), %d clients (half streaming), max_tokens %d, "
          "phases of %.1f s (hanging x2, recovery x3); mock timeouts %s; latency is per whole "
          "request, phase = the one in force when the request started."
          % (os.path.basename(a.model), a.threads, a.clients, a.max_tokens, a.phase, TIMEOUTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
