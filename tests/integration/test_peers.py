"""Peers: a ballast node lists another as a `type: ballast` target, so an
office of laptops or an edge fleet fails over to a neighbour's models before
failing. A request a peer sent (x-ballast-hop) never goes to a peer again,
so two nodes that list each other cannot bounce a request between them."""
import json
import time

from gw import Ballast, free_port, run_tests, sse_events, start_mock
from harness import request


def peer_cfg(peer_port, tail, key=None):
    return ("providers:\n"
            "  - {name: cloud, type: openai, base_url: 'http://127.0.0.1:%d/v1'}\n"
            "  - {name: peer, type: ballast, base_url: 'http://127.0.0.1:%d/v1'%s}\n"
            % (free_port(), peer_port, ", api_key: %s" % key if key else "") + tail)


def route_lines(b, route="gpt-x"):
    """The request log lines of a route (lines are written once per loop turn)."""
    for _ in range(100):
        lines = [l for l in b.log_lines() if l.get("route") == route]
        if lines:
            return lines
        time.sleep(0.02)
    return []


def reload(b, cfg):
    """Rewrite the config, SIGHUP, and wait until the new one serves."""
    before = b.metric("ballast_config_reloads_total", result="ok") or 0
    b.write_config(cfg)
    b.signal(1)
    for _ in range(200):
        if (b.metric("ballast_config_reloads_total", result="ok") or 0) > before:
            return
        time.sleep(0.02)
    raise AssertionError("config was not reloaded:\n" + b.log_text()[-2000:])


def test_fail_over_to_a_peer_and_never_back():
    mock = start_mock("mock")
    # B: the peer first (it is A), then its own mock; needs a key
    b_tail = ("  - {name: m, type: openai, base_url: 'http://127.0.0.1:%d/v1'}\n"
              "keys: [sekrit]\n"
              "routes:\n  - model: gpt-x\n    tiers:\n"
              "      - [{provider: peer, model: gpt-x}]\n"
              "      - [{provider: m, model: from-b}]\n" % mock.port)
    a_tail = ("routes:\n  - model: gpt-x\n    tiers:\n"
              "      - [{provider: cloud, model: gpt-x}]\n"
              "      - [{provider: peer, model: gpt-x}]\n")
    a = Ballast(peer_cfg(free_port(), a_tail))
    b = Ballast(peer_cfg(a.port, b_tail))
    try:
        reload(a, peer_cfg(b.port, a_tail, key="sekrit"))
        # A's cloud is down: B answers, from its mock; B did not send it back to A
        st, h, body = a.request("POST", "/v1/chat/completions",
                                {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]})
        assert st == 200, (st, body, a.log_text()[-2000:], b.log_text()[-2000:])
        assert json.loads(body)["choices"][0]["message"]["content"] == \
            "Hello from mock (model from-b).", body
        assert h["x-ballast-backend"] == "peer/gpt-x" and h["x-ballast-degraded"] == "true", h
        sent = request(mock.port, "GET", "/_mock/last").json()
        assert sent["headers"].get("authorization") is None  # the peer key stays between peers
        # B logged one request with no attempt on its own peer target
        lines = route_lines(b)
        assert lines and [t["target"] for t in lines[-1]["attempts"]] == ["m/from-b"], lines[-1:]

        # streamed and in another family, through the peer alike
        st, h, body = a.request("POST", "/v1/messages", {
            "model": "gpt-x", "max_tokens": 20, "stream": True,
            "messages": [{"role": "user", "content": "hi"}]},
            headers={"anthropic-version": "2023-06-01"})
        assert st == 200 and b"event: message_stop" in body, body
        text = "".join(e["delta"]["text"] for e in map(json.loads, sse_events(body))
                       if e["type"] == "content_block_delta")
        assert text == "Hello from mock (model from-b).", text

        # without the key, B refuses A: a client error passed through, not retried
        reload(a, peer_cfg(b.port, a_tail))
        st, h, body = a.request("POST", "/v1/chat/completions",
                                {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]})
        assert st == 401, (st, body)
    finally:
        a.stop()
        b.stop()
        mock.stop()


def test_two_peers_listing_each_other_do_not_loop():
    mock = start_mock("mock")
    tail = "routes:\n  - model: gpt-x\n    tiers: [[{provider: peer, model: gpt-x}]]\n"
    a = Ballast(peer_cfg(free_port(), tail))
    b = Ballast(peer_cfg(a.port, tail))
    try:
        reload(a, peer_cfg(b.port, tail))
        t0 = time.time()
        st, h, body = a.request("POST", "/v1/chat/completions",
                                {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]})
        assert st == 503, (st, body)
        assert time.time() - t0 < 5
        # B said why: the only target it has is a peer, and the request came from one
        lines = route_lines(b)
        assert len(lines) >= 1 and all(l["status"] == 503 for l in lines), lines
        assert mock.stats()["requests"] == 0
    finally:
        a.stop()
        b.stop()
        mock.stop()


if __name__ == "__main__":
    run_tests([test_fail_over_to_a_peer_and_never_back, test_two_peers_listing_each_other_do_not_loop])
