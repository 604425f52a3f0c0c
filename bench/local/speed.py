"""Local-engine speed through the real daemon (bench/local.sh runs this).

For each model file and thread count:
  1. one stream through HTTP (POST /v1/completions, stream:true, temperature
     0, --gen tokens): decode tokens/s from the first to the last token event,
     against `ballast bench-engine` decode on the same file and threads;
  2. 4 concurrent streams: aggregate decode tokens/s over the window in which
     all four are decoding, against one stream;
  3. time to first token through a route whose three cloud tiers (two
     refused ports and a mock that hangs) all have open breakers, against
     bench-engine's prefill time for the same prompt length (and against the
     same request on a local-only route).
Prompts differ in their first tokens so the engine's prompt-prefix reuse
never skips a prefill. bench-engine runs alternate with the HTTP single
streams (the daemon idles meanwhile). Speeds are the best of --reps runs on
both sides (the machine is shared: the best run is the least disturbed one);
every run is printed in the detail lines. bench-engine's prefill is its
first pass over the freshly mmap'd weights, so it can read slower than the
warm daemon's: the TTFT of the local-only route is printed beside it.

Prints detail lines to stderr and, on stdout, one markdown table.
"""
import argparse
import json
import os
import sys
import threading
import time

from common import (bench_engine, breaker_states, completion_body, fmt, gw, harness, log, median,
                    stream, verdict, wait_local_ready)

BASE = ("the old lighthouse keeper walked down to the harbour every morning to count the boats, "
        "write the weather in his book and talk with the fishermen about the wind and the tide")


def prompt(i):
    # A different first word for every request: no prefix to reuse.
    return "Request %d. %s" % (i, BASE)


class Counter:
    def __init__(self):
        self.n = 0
        self.lock = threading.Lock()

    def next(self):
        with self.lock:
            self.n += 1
            return self.n


def config(model, threads, dead1, dead2, hang_port, gen):
    # cloud breakers open after 2 failures and stay open for the whole run
    to = "{connect_ms: 200, first_token_ms: 300, total_ms: 1000}"
    return """breaker: {failure_threshold: 2, error_rate: 1, min_requests: 1000,
          cooldown_ms: 600000}
retry: {max_attempts: 8}
providers:
  - name: local
    type: local
    model: %s
    threads: %d
    slots: 4
    context: 1024
    max_queue: 32
    max_tokens: %d
%s%s%sroutes:
  - model: local
    tiers:
      - [{provider: local, model: local}]
  - model: outage
    tiers:
      - [{provider: dead1, model: m}]
      - [{provider: dead2, model: m}]
      - [{provider: hang, model: m}]
      - [{provider: local, model: local}]
""" % (model, threads, gen + 16,
       gw.provider("dead1", dead1, timeouts=to), gw.provider("dead2", dead2, timeouts=to),
       gw.provider("hang", hang_port, timeouts=to))


def decode_rate(r):
    """(tokens, decode tok/s from first to last token event, events)."""
    n = (r["usage"] or {}).get("completion_tokens") or len(r["times"])
    ts = r["times"]
    if len(ts) < 2 or ts[-1] <= ts[0]:
        return n, 0.0, len(ts)
    # the first event carries the first token: n - 1 tokens came after it
    return n, (n - 1) / (ts[-1] - ts[0]), len(ts)


def check(r, what):
    if r["error"] or r["status"] != 200 or not r["done"]:
        raise RuntimeError("%s: status %s, error %s, [DONE] %s" % (what, r["status"], r["error"],
                                                                  r["done"]))


def one_combo(a, model, threads, ctr):
    """All measurements for one model file and thread count: a dict."""
    res = {"model": os.path.basename(model), "threads": threads, "notes": []}
    dead1, dead2 = harness.free_port(), harness.free_port()
    hang = harness.start_mock("hang", mode="hang")
    b = None
    try:
        b = gw.Ballast(config(model, threads, dead1, dead2, hang.port, a.gen))
        t0 = time.time()
        wait_local_ready(b, "local")
        log("%s t%d: model loaded in %.1f s" % (res["model"], threads, time.time() - t0))
        r = stream(b.port, "/v1/completions", completion_body(prompt(ctr.next()), 8, "local"))
        check(r, "warm-up")
        warm_ptoks = (r["usage"] or {}).get("prompt_tokens") or 64

        # 1. one stream, alternating with bench-engine on the same file,
        # threads and prompt length (the daemon is idle meanwhile), so both
        # sides sample the same stretch of the shared machine's load
        singles, ptoks, eng = [], [], []
        for _ in range(a.reps):
            kv = bench_engine(a.ballast, model, threads, warm_ptoks, a.gen)
            eng.append((float(kv["decode_tok_s"]), float(kv["prefill_tok_s"])))
            r = stream(b.port, "/v1/completions",
                       completion_body(prompt(ctr.next()), a.gen, "local"))
            check(r, "single stream")
            n, rate, ev = decode_rate(r)
            singles.append(rate)
            ptoks.append((r["usage"] or {}).get("prompt_tokens", 0))
            if n != a.gen:
                res["notes"].append("a stream stopped after %d of %d tokens" % (n, a.gen))
            if ev != n:
                res["notes"].append("%d token events for %d tokens" % (ev, n))
        res["http_decode"] = max(singles)
        res["prompt_tokens"] = int(median(ptoks))
        log("%s t%d: one stream decode tok/s %s (prompt %d tokens)" % (
            res["model"], threads, " ".join(fmt(x) for x in singles), res["prompt_tokens"]))

        # 2. four concurrent streams
        aggs = []
        for _ in range(a.reps):
            rs = [None] * a.streams
            bar = threading.Barrier(a.streams)

            def go(i):
                body = completion_body(prompt(ctr.next()), a.gen, "local")
                bar.wait()
                rs[i] = stream(b.port, "/v1/completions", body)
            th = [threading.Thread(target=go, args=(i,)) for i in range(a.streams)]
            for t in th:
                t.start()
            for t in th:
                t.join()
            for r in rs:
                check(r, "concurrent stream")
            # the window in which every stream is decoding: from the last
            # first token to the first last token; count the token events in it
            if any(len(r["times"]) < 2 for r in rs):
                raise RuntimeError("a concurrent stream brought fewer than 2 token events")
            lo = max(r["times"][0] for r in rs)
            hi = min(r["times"][-1] for r in rs)
            n = sum(sum(1 for t in r["times"] if lo < t <= hi) for r in rs)
            agg = n / (hi - lo) if hi > lo else 0.0
            wall = sum(decode_rate(r)[0] for r in rs) / (max(r["t_end"] for r in rs) -
                                                         min(r["t0"] for r in rs))
            log("%s t%d: %d streams: decode window %.2f s, aggregate %.1f tok/s "
                "(end to end incl. prefill %.1f tok/s)" % (res["model"], threads, a.streams,
                                                           hi - lo, agg, wall))
            aggs.append(agg)
        res["agg4"] = max(aggs)

        # 3. every cloud breaker open, then TTFT
        opened = False
        for i in range(40):
            st = breaker_states(b, "outage")
            clouds = {k: v for k, v in st.items() if not k.startswith("local/")}
            if clouds and all(v == "open" for v in clouds.values()):
                opened = True
                break
            b.request("POST", "/v1/completions",
                      completion_body(prompt(ctr.next()), 1, "outage", stream_=False), timeout=30)
        log("%s t%d: breakers %s" % (res["model"], threads,
                                     json.dumps(breaker_states(b, "outage"))))
        if not opened:
            res["notes"].append("cloud breakers did not all open")
        ttft, ttft_direct, attempts = [], [], set()
        for i in range(a.ttft_n):
            for route, dst in (("outage", ttft), ("local", ttft_direct)):
                r = stream(b.port, "/v1/completions", completion_body(prompt(ctr.next()), 2, route))
                check(r, "ttft via %s" % route)
                if route == "outage":
                    attempts.add(r["headers"].get("x-ballast-attempts", "?"))
                    if not r["headers"].get("x-ballast-backend", "").startswith("local/"):
                        res["notes"].append("outage answered by %s"
                                            % r["headers"].get("x-ballast-backend"))
                if r["times"]:
                    dst.append((r["times"][0] - r["t0"]) * 1e3)
                else:
                    res["notes"].append("a TTFT request streamed no text")
        # best (least disturbed) run, like the speeds and bench-engine's prefill
        res["ttft"] = min(ttft)
        res["ttft_direct"] = min(ttft_direct)
        res["attempts"] = ",".join(sorted(attempts))
        log("%s t%d: TTFT ms, all clouds open: %s; local route: %s; x-ballast-attempts %s" % (
            res["model"], threads, " ".join(fmt(x) for x in ttft),
            " ".join(fmt(x) for x in ttft_direct),
            res["attempts"]))
    finally:
        if b is not None:
            b.stop()
        hang.stop()

    res["engine_decode"] = max(e[0] for e in eng)
    res["engine_prefill_tps"] = max(e[1] for e in eng)
    res["prefill_ms"] = res["prompt_tokens"] * 1e3 / res["engine_prefill_tps"]  # same P +- 1
    log("%s t%d: bench-engine decode %s tok/s, prefill %s tok/s (%d tokens -> %.1f ms)" % (
        res["model"], threads, " ".join(fmt(e[0]) for e in eng), " ".join(fmt(e[1]) for e in eng),
        res["prompt_tokens"], res["prefill_ms"]))
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ballast", required=True)
    ap.add_argument("--models", required=True, help="comma-separated GGUF files")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--ttft-n", type=int, default=5)
    a = ap.parse_args()
    ctr = Counter()
    rows, failed = [], False
    for m in a.models.split(","):
        for t in a.threads.split(","):
            try:
                rows.append(one_combo(a, m, int(t), ctr))
            except Exception as e:  # noqa: BLE001 - report and go on with the next combination
                log("%s t%s: FAILED: %s" % (os.path.basename(m), t, e))
                failed = True
    print("| model | thr | HTTP 1 stream tok/s | bench-engine tok/s | ratio | target | result "
          "| 4 streams tok/s | x one | target | result "
          "| TTFT clouds open (ms) | TTFT local-only route (ms) | prefill (ms) "
          "| TTFT - prefill (ms) | target | result |")
    print("| --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | --- | --- "
          "| ---: | ---: | ---: | ---: | --- | --- |")
    for r in rows:
        ratio = r["http_decode"] / r["engine_decode"] if r["engine_decode"] else 0
        x4 = r["agg4"] / r["http_decode"] if r["http_decode"] else 0
        over = r["ttft"] - r["prefill_ms"]
        print("| %s | %d | %s | %s | %.2f | ≥ 0.95 | %s | %s | %.2f | ≥ 2.5 | %s | %s | %s | %s "
              "| %+.1f | ≤ +5 | %s |" % (
                  r["model"], r["threads"], fmt(r["http_decode"]), fmt(r["engine_decode"]), ratio,
                  verdict(ratio >= 0.95), fmt(r["agg4"]), x4, verdict(x4 >= 2.5), fmt(r["ttft"]),
                  fmt(r["ttft_direct"]), fmt(r["prefill_ms"]), over, verdict(over <= 5)))
    print()
    print("Prompt %d tokens (median; `Request N. ...`, a different first word each time), "
          "%d tokens decoded, temperature 0; speeds, TTFT and prefill are each the best of the "
          "runs (all runs on stderr). "
          "bench-engine's prefill is its first pass over freshly mmap'd weights; the local-only "
          "route's TTFT (HTTP included) is the warm reference." % (
              rows[0]["prompt_tokens"] if rows else 0, a.gen))
    for r in rows:
        if r["notes"]:
            print("- %s t%d: %s" % (r["model"], r["threads"], "; ".join(sorted(set(r["notes"])))))
        print("- %s t%d: outage route: x-ballast-attempts %s; its TTFT minus the local-only "
              "route's: %+.1f ms"
              % (r["model"], r["threads"], r["attempts"], r["ttft"] - r["ttft_direct"]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
