-- wrk script for bench/local/refused.py: POST a small non-streaming chat
-- completion for model $BL_MODEL and print one machine-readable line with
-- exact figures (latency in us).
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"' .. (os.getenv("BL_MODEL") or "direct") ..
    '","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}'

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "BENCH requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d errors=%d\n",
        summary.requests, summary.duration,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
        e.connect + e.read + e.write + e.status + e.timeout))
end
