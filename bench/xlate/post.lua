-- wrk script: POST the body in $BODY to $BPATH (non-streaming) and print one
-- machine-readable line with exact figures (latency in us).
wrk.method = "POST"
wrk.path = os.getenv("BPATH")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.body = os.getenv("BODY")

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d\n",
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
        e.connect + e.read + e.write + e.status + e.timeout))
end
