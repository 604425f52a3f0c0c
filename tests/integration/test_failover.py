"""Failover through the real daemon: one test per upstream failure mode.

Two or three mock providers (real HTTP servers with fault modes) sit behind a
route with one target per tier. For each fault on the first target, the client
must still get a correct answer from the right target, and the headers, the
log line and /metrics must say what happened."""
import json
import socket
import time

from gw import Ballast, provider, run_tests, start_mock, sse_events, sse_text

TIMEOUTS = "{connect_ms: 1000, first_token_ms: 600, total_ms: 2000}"


def setup(names=("a", "b"), route_extra="", top_extra=""):
    mocks = [start_mock(n) for n in names]
    cfg = top_extra + "providers:\n"
    for n, m in zip(names, mocks):
        cfg += provider(n, m.port, timeouts=TIMEOUTS)
    cfg += "routes:\n  - model: gpt-4o-mini\n    tiers:\n"
    for n in names:
        cfg += "      - [{provider: %s, model: model-%s}]\n" % (n, n)
    cfg += route_extra
    return mocks, Ballast(cfg)


def teardown(mocks, b):
    try:
        b.stop()
    finally:
        for m in mocks:
            m.stop()


def expect_from(b, who, stream, attempts=None, degraded=None):
    st, h, text = b.chat_text(stream=stream)
    assert st == 200, (st, text, b.log_text()[-2000:])
    assert h["x-ballast-backend"] == "%s/model-%s" % (who, who), h
    assert text == "Hello from %s (model model-%s)." % (who, who), text
    if attempts is not None:
        assert h["x-ballast-attempts"] == str(attempts), h
    if degraded is not None:
        assert (h.get("x-ballast-degraded") == "true") == degraded, h
    assert len(h["x-request-id"]) == 16
    return h


def failover_case(mode, outcome, **params):
    """Both streaming and not: a faulty first target, the answer from b."""
    mocks, b = setup()
    a, bm = mocks
    try:
        a.set_mode(mode, **params)
        for stream in (False, True):
            h = expect_from(b, "b", stream, attempts=2, degraded=True)
        assert b.metric("ballast_attempts_total", target="a/model-a", outcome=outcome) == 2
        assert b.metric("ballast_failovers_total", route="gpt-4o-mini", reason=outcome) == 2
        assert b.metric("ballast_requests_total", route="gpt-4o-mini", backend="b/model-b",
                        status="200") == 2
        line = b.log_for(h)
        assert [x["outcome"] for x in line["attempts"]] == [outcome, "ok"], line
        assert line["backend"] == "b/model-b"
    finally:
        teardown(mocks, b)


def test_healthy_first_tier_answers():
    mocks, b = setup()
    try:
        for stream in (False, True):
            expect_from(b, "a", stream, attempts=1, degraded=False)
        assert mocks[1].stats()["requests"] == 0
        # the model is rewritten byte for byte; every other field passes untouched
        raw = ('{"model" : "gpt-4o-mini","messages":[{"role":"user","content":"x"}],'
               '"temperature":0.70,"tools":[{"type":"function","function":{"name":"f",'
               '"parameters":{}}}],"future_field":{"a":[1,2.50e3]}}')
        st, h, _ = b.request("POST", "/v1/chat/completions", raw)
        assert st == 200
        got = mocks[0].stats()["last_request"]["body"]
        assert got == raw.replace('"gpt-4o-mini"', '"model-a"'), got
    finally:
        teardown(mocks, b)


def test_connect_refused():
    mocks, b = setup()
    a = mocks[0]
    try:
        a.stop()
        for stream in (False, True):
            expect_from(b, "b", stream, attempts=2, degraded=True)
        assert b.metric("ballast_attempts_total", target="a/model-a", outcome="connect") == 2
    finally:
        teardown(mocks[1:], b)


def test_tls_failure():
    # https to a server that speaks plain HTTP: the handshake fails at once
    a, bm = start_mock("a"), start_mock("b")
    cfg = ("providers:\n"
           "  - {name: a, type: openai, base_url: 'https://127.0.0.1:%d/v1', timeouts: %s}\n"
           % (a.port, TIMEOUTS) + provider("b", bm.port, timeouts=TIMEOUTS) +
           "routes:\n  - model: gpt-4o-mini\n    tiers:\n"
           "      - [{provider: a, model: model-a}]\n      - [{provider: b, model: model-b}]\n")
    b = Ballast(cfg)
    try:
        h = expect_from(b, "b", False, attempts=2, degraded=True)
        assert b.metric("ballast_attempts_total", target="a/model-a", outcome="connect") == 1
        detail = b.log_for(h)["attempts"][0]["detail"]
        assert detail.startswith("tls"), detail
    finally:
        teardown([a, bm], b)


def test_reset_mid_body():
    # non-streamed: the body breaks off, so b answers
    mocks, b = setup()
    try:
        mocks[0].set_mode("reset")
        expect_from(b, "b", False, attempts=2, degraded=True)
        assert b.metric("ballast_attempts_total", target="a/model-a", outcome="reset") == 1
        # streamed: the reset comes after the first token reached the client,
        # so the answer continues on b (mid-stream failover, tested below)
        st, h, data = b.chat(stream=True)
        assert st == 200 and h["x-ballast-backend"] == "a/model-a"
        assert sse_events(data)[-1] == "[DONE]"
        assert b.metric("ballast_midstream_failovers_total", route="gpt-4o-mini") == 1
    finally:
        teardown(mocks, b)


def test_stream_broken_before_first_token_fails_over():
    # the role chunk came, then the connection closed: nothing the user could
    # see was sent, so the request moves on and the client sees only b
    mocks, b = setup()
    try:
        mocks[0].set_mode("cut", events=1)
        st, h, data = b.chat(stream=True)
        assert st == 200 and h["x-ballast-backend"] == "b/model-b"
        assert sse_text(data) == "Hello from b (model model-b)."
        roles = [e for e in sse_events(data) if '"role"' in e]
        assert len(roles) == 1  # no role chunk from a leaked through
    finally:
        teardown(mocks, b)


def test_first_token_timeout_counts_tokens_not_the_role_chunk():
    # a sends its role chunk at once, then drips slower than first_token_ms
    mocks, b = setup()
    try:
        mocks[0].set_mode("drip", ms=900)
        expect_from(b, "b", True, attempts=2)
        assert b.metric("ballast_attempts_total", target="a/model-a", outcome="timeout") == 1
    finally:
        teardown(mocks, b)


def test_http_500():
    failover_case("status", "http_5xx", code=500)


def test_http_408():
    failover_case("status", "http_408", code=408)


def test_malformed_json():
    failover_case("malformed", "malformed")


def test_hang_times_out():
    # stream: first_token_ms (600 ms); non-stream: total_ms (2 s)
    failover_case("hang", "timeout")


def test_slow_first_byte():
    mocks, b = setup()
    try:
        mocks[0].set_mode("slow_first_byte", ms=3000)
        expect_from(b, "b", True, attempts=2, degraded=True)
        assert b.metric("ballast_attempts_total", target="a/model-a", outcome="timeout") == 1
    finally:
        teardown(mocks, b)


def test_stream_cut_before_first_event_fails_over():
    mocks, b = setup()
    try:
        mocks[0].set_mode("cut", events=0)
        expect_from(b, "b", True, attempts=2)
    finally:
        teardown(mocks, b)


def test_stream_cut_with_nowhere_to_continue_is_reported():
    mocks, b = setup(names=("a",), top_extra="retry: {max_attempts: 1}\n")
    try:
        mocks[0].set_mode("cut", events=3)
        st, h, data = b.chat(stream=True)
        assert st == 200 and h["x-ballast-backend"] == "a/model-a"
        events = sse_events(data)
        # what reached the client stays; then an error event says the stream broke
        assert len(events) == 4, events
        assert json.loads(events[-1])["error"]["code"] == "stream_interrupted"
        assert "[DONE]" not in events
        assert b.log_for(h)["stream_cut"] is True
        assert b.metric("ballast_attempts_total", target="a/model-a", outcome="stream_cut") == 1
    finally:
        teardown(mocks, b)


def test_midstream_failover_continues_the_stream():
    mocks, b = setup()
    a, bm = mocks
    try:
        a.set_mode("cut", events=3)  # role chunk + "Hello " + "from ", then the connection drops
        st, h, data = b.chat(stream=True)
        assert st == 200 and h["x-ballast-backend"] == "a/model-a"
        events = sse_events(data)
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        # one unbroken stream: one role chunk, one id and model throughout
        assert sum(1 for c in chunks if "role" in c["choices"][0]["delta"]) == 1
        assert {c["id"] for c in chunks} == {chunks[0]["id"]}
        assert {c["model"] for c in chunks} == {"model-a"}
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
        assert chunks[-1]["x_ballast"] == {"midstream_failover": True, "from": "a/model-a",
                                           "to": "b/model-b"}
        assert not any("error" in c for c in chunks)
        # b was asked to continue: the partial answer, then the instruction
        sent = json.loads(bm.stats()["last_request"]["body"])
        assert sent["model"] == "model-b" and sent["stream"] is True
        assert sent["messages"][-2] == {"role": "assistant", "content": "Hello from "}
        assert sent["messages"][-1]["role"] == "user" and "Continue" in sent["messages"][-1]["content"]
        assert b.metric("ballast_midstream_failovers_total", route="gpt-4o-mini") == 1
        line = b.log_for(h)
        assert line["midstream_failovers"] == 1 and "stream_cut" not in line
        assert [x["outcome"] for x in line["attempts"]] == ["stream_cut", "ok"]
    finally:
        teardown(mocks, b)


def test_slow_drip_is_not_a_failure():
    mocks, b = setup()
    try:
        mocks[0].set_mode("drip", ms=150)  # slow, but each gap is under first_token_ms
        st, h, data = b.chat(stream=True)
        assert st == 200 and h["x-ballast-backend"] == "a/model-a"
        assert sse_text(data) == "Hello from a (model model-a)."
        assert sse_events(data)[-1] == "[DONE]"
    finally:
        teardown(mocks, b)


def retry_after_case(code):
    mocks, b = setup()
    a, bm = mocks
    try:
        a.set_mode("status", code=code, retry_after="2")
        expect_from(b, "b", False, attempts=2)
        a.set_mode("ok")
        seen = a.stats()["requests"]
        # cooling down: the next requests skip a without trying it
        for _ in range(3):
            expect_from(b, "b", False, attempts=1, degraded=True)
        assert a.stats()["requests"] == seen
        assert b.metric("ballast_target_cooldown_seconds", target="a/model-a") > 0
        time.sleep(2.2)
        expect_from(b, "a", False, attempts=1, degraded=False)
    finally:
        teardown(mocks, b)


def test_429_retry_after_cools_down():
    retry_after_case(429)


def test_503_retry_after_cools_down():
    retry_after_case(503)


def test_client_errors_pass_through():
    mocks, b = setup()
    a, bm = mocks
    try:
        for code in (400, 401, 403, 404, 413, 422):
            a.set_mode("status", code=code)
            st, h, data = b.chat()
            assert st == code, (code, st, data)
            assert json.loads(data)["error"]["message"], data
            assert h["x-ballast-backend"] == "a/model-a"
            assert h["x-ballast-attempts"] == "1"
        assert bm.stats()["requests"] == 0  # never retried elsewhere
        assert b.metric("ballast_breaker_state", target="a/model-a") == 0
    finally:
        teardown(mocks, b)


def test_everything_down_gives_503_with_each_failure():
    mocks, b = setup(names=("a", "b", "c"))
    try:
        mocks[0].stop()
        mocks[1].set_mode("status", code=500)
        mocks[2].set_mode("malformed")
        st, h, data = b.chat()
        assert st == 503, (st, data)
        assert int(h["retry-after"]) >= 1
        err = json.loads(data)["error"]
        assert err["type"] == "server_error" and err["code"] == "upstream_unavailable"
        for t in ("a/model-a", "b/model-b", "c/model-c"):
            assert t in err["message"], err
        # then attempts left (retry.max_attempts 4) go round again, with backoff
        assert [x["outcome"] for x in err["attempts"]][:3] == ["connect", "http_5xx", "malformed"]
        assert len(err["attempts"]) == 4
    finally:
        teardown(mocks[1:], b)


def test_breaker_opens_half_opens_and_closes():
    mocks, b = setup(top_extra="breaker: {failure_threshold: 2, cooldown_ms: 700}\n")
    a, bm = mocks
    try:
        a.set_mode("status", code=500)
        expect_from(b, "b", False, attempts=2)
        expect_from(b, "b", False, attempts=2)
        assert b.metric("ballast_breaker_state", target="a/model-a") == 2  # open
        st, _, body = b.request("GET", "/readyz")
        ready = json.loads(body)
        assert st == 200  # b still usable
        assert ready["routes"]["gpt-4o-mini"]["targets"][0]["breaker"] == "open"
        seen = a.stats()["requests"]
        for _ in range(3):
            expect_from(b, "b", False, attempts=1)  # a is not even tried
        assert a.stats()["requests"] == seen
        time.sleep(0.8)
        # half-open: one probe goes to a; it fails, so the breaker opens again
        expect_from(b, "b", False, attempts=2)
        assert a.stats()["requests"] == seen + 1
        assert b.metric("ballast_breaker_state", target="a/model-a") == 2
        time.sleep(0.8)
        a.set_mode("ok")
        expect_from(b, "a", False, attempts=1)  # the probe succeeds: closed
        assert b.metric("ballast_breaker_state", target="a/model-a") == 0
        assert b.metric("ballast_breaker_transitions_total", target="a/model-a", state="closed") == 1
        expect_from(b, "a", True, attempts=1)
    finally:
        teardown(mocks, b)


def test_readyz_fails_when_a_route_has_no_usable_target():
    mocks, b = setup(names=("a",), top_extra="breaker: {failure_threshold: 1, cooldown_ms: 60000}\n")
    try:
        assert b.request("GET", "/readyz")[0] == 200
        mocks[0].set_mode("status", code=500)
        assert b.chat()[0] == 503
        st, _, body = b.request("GET", "/readyz")
        assert st == 503 and json.loads(body)["status"] == "not_ready"
    finally:
        teardown(mocks, b)


def test_hedging_takes_the_faster_target():
    mocks, b = setup(route_extra="    hedge: {delay_ms: 100}\n")
    a, bm = mocks
    try:
        a.set_mode("slow_first_byte", ms=1500)
        t0 = time.time()
        h = expect_from(b, "b", True, attempts=2)
        assert time.time() - t0 < 1.4  # answered by the hedge, not after a's first byte
        assert b.metric("ballast_hedges_total", route="gpt-4o-mini") == 1
        assert b.metric("ballast_attempts_total", target="a/model-a", outcome="canceled") == 1
        # the loser was cancelled: a saw its client leave before it answered
        deadline = time.time() + 3
        while a.stats()["disconnects_before_response"] < 1 and time.time() < deadline:
            time.sleep(0.02)
        assert a.stats()["disconnects_before_response"] >= 1
        # a hedge loser is not a failure: the breaker stays closed
        assert b.metric("ballast_breaker_state", target="a/model-a") == 0
        del h
    finally:
        teardown(mocks, b)


def test_hedging_waits_for_the_observed_p95():
    # delay_ms 0: hedge after the target's own p95 time to first token
    mocks, b = setup(route_extra="    hedge: {delay_ms: 0, min_delay_ms: 30}\n")
    a, bm = mocks
    try:
        for _ in range(12):  # enough samples for a p95 (a answers in ~1 ms)
            expect_from(b, "a", True, attempts=1)
        assert b.metric("ballast_hedges_total", route="gpt-4o-mini") == 0
        a.set_mode("slow_first_byte", ms=2000)
        t0 = time.time()
        expect_from(b, "b", True, attempts=2)
        # hedged at the 30 ms floor; without samples it would wait
        # first_token_ms / 2 = 300 ms
        assert time.time() - t0 < 0.25
        assert b.metric("ballast_hedges_total", route="gpt-4o-mini") == 1
    finally:
        teardown(mocks, b)


def test_client_disconnect_cancels_upstream():
    mocks, b = setup()
    a = mocks[0]
    try:
        a.set_mode("drip", ms=300)
        s = socket.create_connection(("127.0.0.1", b.port))
        body = json.dumps({"model": "gpt-4o-mini", "stream": True, "messages": []})
        s.sendall(("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: %d\r\n\r\n%s" % (len(body), body)).encode())
        s.recv(100)  # the stream has started
        s.close()
        deadline = time.time() + 2
        while a.stats()["disconnects_before_response"] < 1 and time.time() < deadline:
            time.sleep(0.01)
        assert a.stats()["disconnects_before_response"] == 1
        assert b.metric("ballast_inflight_requests") == 0
        expect_from(b, "a", True)  # and the daemon carries on
    finally:
        teardown(mocks, b)


if __name__ == "__main__":
    run_tests([
        test_healthy_first_tier_answers,
        test_connect_refused,
        test_tls_failure,
        test_reset_mid_body,
        test_stream_broken_before_first_token_fails_over,
        test_first_token_timeout_counts_tokens_not_the_role_chunk,
        test_http_500,
        test_http_408,
        test_malformed_json,
        test_hang_times_out,
        test_slow_first_byte,
        test_stream_cut_before_first_event_fails_over,
        test_stream_cut_with_nowhere_to_continue_is_reported,
        test_midstream_failover_continues_the_stream,
        test_slow_drip_is_not_a_failure,
        test_429_retry_after_cools_down,
        test_503_retry_after_cools_down,
        test_client_errors_pass_through,
        test_everything_down_gives_503_with_each_failure,
        test_breaker_opens_half_opens_and_closes,
        test_readyz_fails_when_a_route_has_no_usable_target,
        test_hedging_takes_the_faster_target,
        test_hedging_waits_for_the_observed_p95,
        test_client_disconnect_cancels_upstream,
    ])
