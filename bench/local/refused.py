"""Connect-refused failover overhead (bench/local.sh runs this).

Two daemons, each with two routes to the same upstream (tests' ballast-mock):
  direct:  [mock]
  refused: [a port with nothing listening] -> [mock]
Daemon "breaker closed" has a breaker that never opens (failure_threshold
1000000, error_rate 1), so every request on `refused` first tries the dead
port; daemon "breaker open" has failure_threshold 3 and a 10-minute
cool-down, opened before measuring, so requests skip the dead target.
wrk -c1 -t1 (non-streamed chat completions) runs ROUNDS rounds of DURATION
seconds per (daemon, route), interleaved; everything is pinned to one CPU
(as in bench/gateway.sh's latency runs). The median round's p50 is used.

Prints detail lines to stderr and a markdown table on stdout.
"""
import argparse
import os
import subprocess
import sys

from common import breaker_states, gw, harness, log, median, verdict

HERE = os.path.dirname(os.path.abspath(__file__))


def config(breaker, dead, mock):
    return ("breaker: %s\nproviders:\n%s%sroutes:\n"
            "  - model: direct\n    tiers:\n      - [{provider: mock, model: bench}]\n"
            "  - model: refused\n    tiers:\n      - [{provider: dead, model: bench}]\n"
            "      - [{provider: mock, model: bench}]\n") % (
                breaker, gw.provider("dead", dead), gw.provider("mock", mock))


def pin(pid, cpu):
    subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(pid)], stdout=subprocess.DEVNULL,
                   check=False)


def wrk(port, model, cpu, dur):
    env = dict(os.environ, BL_MODEL=model)
    r = subprocess.run(["taskset", "-c", str(cpu), "wrk", "-c1", "-t1", "-d%ds" % dur,
                        "--timeout", "5s", "-s", os.path.join(HERE, "post.lua"),
                        "http://127.0.0.1:%d/v1/chat/completions" % port],
                       capture_output=True, text=True, env=env, timeout=dur + 30)
    for line in r.stdout.splitlines():
        if line.startswith("BENCH "):
            return {k: int(v) for k, v in (f.split("=") for f in line.split()[1:])}
    raise RuntimeError("wrk printed no BENCH line: %s %s" % (r.stdout[-300:], r.stderr[-300:]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=2)
    ap.add_argument("--cpu", type=int, default=0)
    a = ap.parse_args()
    mock = harness.start_mock("up")
    daemons = {}
    errors = 0
    try:
        pin(mock.proc.pid, a.cpu)
        never = "{failure_threshold: 1000000, error_rate: 1, min_requests: 1000000}"
        opens = "{failure_threshold: 3, cooldown_ms: 600000}"
        for name, brk in (("closed", never), ("open", opens)):
            b = gw.Ballast(config(brk, harness.free_port(), mock.port))
            daemons[name] = b
            pin(b.proc.pid, a.cpu)
        for name, b in daemons.items():
            for _ in range(10):
                st, h, _ = b.chat(model="refused")
                if st != 200:
                    raise RuntimeError("%s: refused route answered %d" % (name, st))
                if name == "closed" or breaker_states(b, "refused").get("dead/bench") == "open":
                    break
            st, h, _ = b.chat(model="refused")
            log("refused route, breaker %s: backend %s, attempts %s, breakers %s" % (
                name, h.get("x-ballast-backend"), h.get("x-ballast-attempts"),
                breaker_states(b, "refused")))
        res = {}
        cases = [(n, m) for n in daemons for m in ("direct", "refused")]
        for n, m in cases:  # warm-up
            wrk(daemons[n].port, m, a.cpu, 1)
        for r in range(a.rounds):
            for n, m in cases:
                w = wrk(daemons[n].port, m, a.cpu, a.duration)
                errors += w["errors"]
                res.setdefault((n, m), []).append(w)
        for n, b in daemons.items():
            log("after the runs, breaker %s daemon: %s" % (n, breaker_states(b, "refused")))
    finally:
        for b in daemons.values():
            b.stop()
        mock.stop()

    print("| breaker of the refused target | direct p50 (µs) | refused -> next p50 (µs) "
          "| added p50 (µs) | direct p99 | refused p99 | requests/round | target | result |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    for n in daemons:
        d50 = median([w["p50_us"] for w in res[(n, "direct")]])
        r50 = median([w["p50_us"] for w in res[(n, "refused")]])
        d99 = median([w["p99_us"] for w in res[(n, "direct")]])
        r99 = median([w["p99_us"] for w in res[(n, "refused")]])
        nreq = median([w["requests"] for w in res[(n, "refused")]])
        log("breaker %s: p50 direct rounds %s, refused rounds %s" % (
            n, [w["p50_us"] for w in res[(n, "direct")]],
            [w["p50_us"] for w in res[(n, "refused")]]))
        print("| %s | %d | %d | %+d | %d | %d | %d | ≤ +1000 | %s |" % (
            n, d50, r50, r50 - d50, d99, r99, nreq, verdict(r50 - d50 <= 1000)))
    print()
    print("wrk -c1 -t1, %d rounds x %d s per case, interleaved, all on CPU %d; median round; "
          "wrk errors: %d" % (a.rounds, a.duration, a.cpu, errors))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
