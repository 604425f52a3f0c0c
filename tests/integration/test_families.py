"""Every API family in, every family out, through the real daemon: the
official openai SDK (chat completions, Responses) and @anthropic-ai/sdk
(messages.create, messages.stream), each failing over from a dead target of
its own family to a mock of the other family (tool round trips included)
and then to the local model; errors in each family's shape; a stream cut in
one family continued by a target of another; what cannot be translated
refused with a clear 400."""
import json
import os
import shutil
import subprocess

from gw import Ballast, free_port, run_tests, sse_events, start_mock
from harness import request

SRC = os.environ.get("BALLAST_SRC", ".")
NODE_DIR = os.path.join(SRC, "tests", "node")
STORIES = os.path.join(SRC, "models", "stories260K.gguf")


def providers(oa_port, an_port, dead_oa, dead_an, local=True, oa_extra=""):
    y = ("providers:\n"
         "  - {name: oa, type: openai, base_url: 'http://127.0.0.1:%d/v1'%s}\n"
         "  - {name: an, type: anthropic, base_url: 'http://127.0.0.1:%d/v1', api_key: sk-ant-test}\n"
         "  - {name: dead-oa, type: openai, base_url: 'http://127.0.0.1:%d/v1'}\n"
         "  - {name: dead-an, type: anthropic, base_url: 'http://127.0.0.1:%d/v1'}\n"
         % (oa_port, oa_extra, an_port, dead_oa, dead_an))
    if local:
        y += "  - {name: local, type: local, model: '%s', slots: 2, max_tokens: 32}\n" % STORIES
    return y


def only_anthropic():
    return "  - model: an-only\n    tiers: [[{provider: an, model: claude-3}]]\n"


def routes(local=True):
    tail = "      - [{provider: local, model: stories}]\n" if local else ""
    return ("routes:\n"
            "  - model: gpt-x\n    tiers:\n"
            "      - [{provider: dead-oa, model: gpt-4o}]\n"
            "      - [{provider: an, model: claude-3}]\n" + tail +
            "  - model: claude-x\n    tiers:\n"
            "      - [{provider: dead-an, model: claude-3}]\n"
            "      - [{provider: oa, model: gpt-4o}]\n" + tail)



def run_sdk(b, tools, oa_model="gpt-x", an_model="claude-x"):
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "node is not installed (scripts/deps.sh --test installs it)"
    for pkg in ("openai", "@anthropic-ai/sdk"):
        assert os.path.isdir(os.path.join(NODE_DIR, "node_modules", pkg)), \
            "%s is not installed (scripts/test.sh runs npm ci in tests/node)" % pkg
    env = dict(os.environ, BALLAST_URL=b.url, OPENAI_MODEL=oa_model, ANTHROPIC_MODEL=an_model,
               TOOLS="1" if tools else "0")
    r = subprocess.run([node, "families_sdk.mjs"], cwd=NODE_DIR, capture_output=True, timeout=120,
                       env=env)
    assert r.returncode == 0, r.stderr.decode() + b.log_text()[-3000:]
    return json.loads(r.stdout)


def test_sdks_fail_over_across_families_with_tools():
    oa, an = start_mock("oa"), start_mock("an")
    b = Ballast(providers(oa.port, an.port, free_port(), free_port()) + routes())
    try:
        oa.set_tool("get_weather", {"city": "Paris"})
        an.set_tool("get_weather", {"city": "Paris"})
        out = run_sdk(b, tools=True)
        # OpenAI clients, their own family dead: answered by the Anthropic mock
        an_text = "Hello from an (model claude-3)."
        assert out["chat"]["text"] == an_text, out
        assert out["chat"]["backend"] == "an/claude-3" and out["chat"]["finish"] == "stop"
        assert out["chat"]["usage"]["total_tokens"] > 0
        assert out["chat_stream"]["text"] == an_text and out["chat_stream"]["finish"] == "stop"
        assert out["chat_stream"]["usage"]["total_tokens"] > 0, out["chat_stream"]
        assert out["responses"]["text"] == an_text and out["responses"]["status"] == "completed"
        assert out["responses"]["usage"]["output_tokens"] > 0
        rs = out["responses_stream"]
        assert rs["text"] == an_text and rs["final_text"] == an_text and rs["seq_ok"], rs
        assert rs["first"] == "response.created" and rs["last"] == "response.completed", rs
        ct = out["chat_tools"]
        assert ct["finish1"] == "tool_calls" and ct["name"] == "get_weather" and ct["id_ok"], ct
        assert ct["args"] == {"city": "Paris"}, ct
        assert ct["text"].startswith("Done: sunny, 21C"), ct
        rt = out["responses_tools"]
        assert rt["name"] == "get_weather" and rt["args"] == {"city": "Paris"}, rt
        assert rt["deltas_ok"] and rt["text"].startswith("Done: sunny, 21C"), rt
        # Anthropic clients, their own family dead: answered by the OpenAI mock
        oa_text = "Hello from oa (model gpt-4o)."
        assert out["messages"]["text"] == oa_text and out["messages"]["stop"] == "end_turn", out
        assert out["messages"]["backend"] == "oa/gpt-4o"
        assert out["messages"]["usage"]["output_tokens"] > 0
        ms = out["messages_stream"]
        assert ms["text"] == oa_text and ms["final_text"] == oa_text and ms["stop"] == "end_turn"
        assert "claude-x" in out["models"] and "gpt-x" in out["models"]
        mt = out["messages_tools"]
        assert mt["stop1"] == "tool_use" and mt["name"] == "get_weather" and mt["id_ok"], mt
        assert mt["input"] == {"city": "Paris"}, mt
        assert mt["text"].startswith("Done: sunny, 21C") and mt["stop2"] == "end_turn", mt
        # the Anthropic target got its own headers and key, never a bearer token
        last = request(an.port, "GET", "/_mock/last").json()
        hdrs = {k.lower(): v for k, v in last["headers"].items()}
        assert hdrs.get("x-api-key") == "sk-ant-test" and "authorization" not in hdrs, hdrs
        assert hdrs.get("anthropic-version") == "2023-06-01", hdrs

        # Both mocks die: the local model answers every family.
        oa.stop()
        an.stop()
        out = run_sdk(b, tools=False)
        for k in ("chat", "chat_stream", "responses", "messages", "messages_stream"):
            assert "error" not in out[k], (k, out[k], b.log_text()[-2000:])
            assert out[k]["text"], (k, out[k])
        assert out["chat"]["backend"] == "local/stories"
        assert out["messages"]["backend"] == "local/stories"
        assert out["responses_stream"]["seq_ok"] and out["responses_stream"]["last"] in (
            "response.completed", "response.incomplete"), out["responses_stream"]
    finally:
        b.stop()
        oa.stop()
        an.stop()


def test_errors_in_each_familys_shape():
    oa, an = start_mock("oa"), start_mock("an")
    cfg = providers(oa.port, an.port, free_port(), free_port(), local=False) + routes(local=False)
    b = Ballast(cfg)
    try:
        # an OpenAI 400 from the target reaches an Anthropic client as Anthropic's 400
        oa.set_mode("status", code=400)
        st, _, body = b.request("POST", "/v1/messages", {"model": "claude-x", "max_tokens": 5,
                                                         "messages": [{"role": "user", "content": "x"}]})
        j = json.loads(body)
        assert st == 400 and j["type"] == "error", (st, j)
        assert j["error"]["type"] == "invalid_request_error", j
        # Anthropic's 529 overloaded fails over; with nothing left an OpenAI client gets 503
        an.set_mode("status", code=529)
        st, hdrs, body = b.request("POST", "/v1/chat/completions",
                                   {"model": "gpt-x", "messages": [{"role": "user", "content": "x"}]})
        j = json.loads(body)
        assert st == 503 and j["error"]["type"] == "server_error", (st, j)
        assert any(a["status"] == 529 for a in j["error"]["attempts"]), j
        # ... and an Anthropic client with nothing left gets 529 overloaded_error
        oa.set_mode("status", code=503)
        st, hdrs, body = b.request("POST", "/v1/messages", {"model": "claude-x", "max_tokens": 5,
                                                            "messages": [{"role": "user", "content": "x"}]})
        j = json.loads(body)
        assert st == 529 and j["error"]["type"] == "overloaded_error", (st, j)
        # bad requests are refused in the client's own shape
        st, _, body = b.request("POST", "/v1/messages", b"{not json")
        assert st == 400 and json.loads(body)["type"] == "error"
        st, _, body = b.request("POST", "/v1/messages", {"model": "nope", "max_tokens": 5, "messages": []})
        assert st == 404 and json.loads(body)["error"]["type"] == "not_found_error", body
    finally:
        b.stop()
        oa.stop()
        an.stop()


def test_untranslatable_requests_get_a_clear_400():
    oa, an = start_mock("oa"), start_mock("an")
    cfg = (providers(oa.port, an.port, free_port(), free_port(), local=False) + routes(local=False)
           + only_anthropic() + "  - model: oa-only\n    tiers: [[{provider: oa, model: gpt-4o}]]\n")
    b = Ballast(cfg)
    try:
        # a hosted tool only OpenAI's Responses API runs: offered, it is left out for
        # a chat target (Codex offers web_search on every request); forced, it is a 400
        st, _, body = b.request("POST", "/v1/responses", {
            "model": "oa-only", "input": "news?", "tools": [{"type": "web_search_preview"}]})
        assert st == 200, body
        sent = json.loads(request(oa.port, "GET", "/_mock/last").json()["body"])
        assert "tools" not in sent, sent
        before = oa.stats()["requests"]
        st, _, body = b.request("POST", "/v1/responses", {
            "model": "oa-only", "input": "news?", "tools": [{"type": "web_search_preview"}],
            "tool_choice": {"type": "web_search_preview"}})
        j = json.loads(body)
        assert st == 400 and "web_search_preview" in j["error"]["message"], (st, j)
        assert j["error"]["type"] == "invalid_request_error"
        assert oa.stats()["requests"] == before, "an untranslatable request reached a target"
        # n > 1 cannot be asked of an Anthropic target
        st, _, body = b.request("POST", "/v1/chat/completions", {
            "model": "an-only", "n": 2, "messages": [{"role": "user", "content": "x"}]})
        j = json.loads(body)
        assert st == 400 and "n > 1" in j["error"]["message"], j
        assert an.stats()["requests"] == 0, "an untranslatable request reached a target"
        # completions have no Anthropic form: a route of only Anthropic targets says so
        st, _, body = b.request("POST", "/v1/completions", {"model": "an-only", "prompt": "x"})
        assert st == 400 and "/completions" in json.loads(body)["error"]["message"], body
    finally:
        b.stop()
        oa.stop()
        an.stop()


def test_count_tokens():
    oa, an = start_mock("oa"), start_mock("an")
    cfg = (providers(oa.port, an.port, free_port(), free_port(), local=False) + routes(local=False)
           + "  - model: oa-only\n    tiers: [[{provider: oa, model: gpt-4o}]]\n")
    b = Ballast(cfg)
    try:
        # no Anthropic target to count, or one without the endpoint (the mock
        # answers 404): an estimate, said to be one
        for model in ("oa-only", "gpt-x"):
            body = {"model": model, "messages": [{"role": "user", "content": "hello there " * 40}]}
            st, hdrs, out = b.request("POST", "/v1/messages/count_tokens", body)
            j = json.loads(out)
            assert st == 200 and hdrs.get("x-ballast-estimate") == "true", (st, hdrs, out)
            assert 100 <= j["input_tokens"] <= 200, j  # 480 bytes of text
    finally:
        b.stop()
        oa.stop()
        an.stop()


def stream_events(b, path, body, headers=None):
    st, hdrs, data = b.request("POST", path, body, headers=headers, timeout=30)
    assert st == 200, (st, data, b.log_text()[-2000:])
    return hdrs, data


def test_midstream_failover_across_families():
    # an Anthropic stream is cut after 3 events; an OpenAI target finishes it
    an = start_mock("an", chunks=8)
    oa = start_mock("oa", chunks=8)
    cfg = ("providers:\n"
           "  - {name: an, type: anthropic, base_url: 'http://127.0.0.1:%d/v1'}\n"
           "  - {name: oa, type: openai, base_url: 'http://127.0.0.1:%d/v1'}\n"
           "routes:\n  - model: claude-x\n    tiers:\n"
           "      - [{provider: an, model: claude-3}]\n      - [{provider: oa, model: gpt-4o}]\n"
           % (an.port, oa.port))
    b = Ballast(cfg)
    try:
        an.set_mode("cut", events=6)
        _, data = stream_events(b, "/v1/messages", {
            "model": "claude-x", "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "hi"}]})
        evs = [json.loads(d) for d in sse_events(data)]
        types = [e["type"] for e in evs]
        assert types.count("message_start") == 1 and types[-1] == "message_stop", types
        assert "error" not in types, types
        deltas = [e for e in evs if e["type"] == "content_block_delta"]
        assert {d["index"] for d in deltas} == {0}, deltas  # one text block, continued
        text = "".join(d["delta"]["text"] for d in deltas)
        assert text.startswith("Hello from an") and "Hello from oa" in text, text
        assert evs[-1].get("x_ballast", {}).get("midstream_failover") is True, evs[-1]
        assert evs[-1]["x_ballast"]["from"] == "an/claude-3", evs[-1]
        # the continuation asked the OpenAI target to go on from the partial answer
        last = request(oa.port, "GET", "/_mock/last").json()
        sent = json.loads(last["body"])
        assert sent["messages"][-2]["role"] == "assistant", sent["messages"]
        assert sent["messages"][-2]["content"].startswith("Hello from an"), sent["messages"]

        # a chat client on a chat target cut mid-stream, continued by Anthropic
        cfg2 = cfg.replace("model: claude-x", "model: gpt-x").replace(
            "[{provider: an, model: claude-3}]\n      - [{provider: oa, model: gpt-4o}]",
            "[{provider: oa, model: gpt-4o}]\n      - [{provider: an, model: claude-3}]")
        b.write_config(cfg2)
        b.signal(1)  # SIGHUP
        an.set_mode("ok")
        oa.set_mode("cut", events=4)
        import time
        for _ in range(100):
            st, _, _ = b.request("POST", "/v1/chat/completions",
                                 {"model": "gpt-x", "messages": [{"role": "user", "content": "x"}]})
            if st != 404:
                break
            time.sleep(0.05)
        _, data = stream_events(b, "/v1/chat/completions", {
            "model": "gpt-x", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
        chunks = sse_events(data)
        assert chunks[-1] == "[DONE]", chunks
        objs = [json.loads(c) for c in chunks[:-1]]
        assert len({o["id"] for o in objs}) == 1, [o["id"] for o in objs]  # one stream
        text = "".join((o["choices"][0]["delta"].get("content") or "") for o in objs if o["choices"])
        assert text.startswith("Hello from oa") and "Hello from an" in text, text
        assert objs[-1].get("x_ballast", {}).get("midstream_failover") is True, objs[-1]
        assert not any("error" in o for o in objs)
    finally:
        b.stop()
        an.stop()
        oa.stop()


def test_responses_stream_cut_continued_by_anthropic():
    # a Responses stream passed through from an OpenAI Responses target is cut;
    # an Anthropic target finishes it under the same response, numbering on
    rs = start_mock("rs", chunks=8)
    an = start_mock("an", chunks=8)
    cfg = ("providers:\n"
           "  - {name: rs, type: openai, api: responses, base_url: 'http://127.0.0.1:%d/v1'}\n"
           "  - {name: an, type: anthropic, base_url: 'http://127.0.0.1:%d/v1'}\n"
           "routes:\n  - model: gpt-x\n    tiers:\n"
           "      - [{provider: rs, model: gpt-4o}]\n      - [{provider: an, model: claude-3}]\n"
           % (rs.port, an.port))
    b = Ballast(cfg)
    try:
        rs.set_mode("cut", events=7)
        _, data = stream_events(b, "/v1/responses", {"model": "gpt-x", "input": "hi", "stream": True})
        evs = [json.loads(d) for d in sse_events(data)]
        assert [e["sequence_number"] for e in evs] == list(range(len(evs))), evs
        types = [e["type"] for e in evs]
        assert types[0] == "response.created" and types[-1] == "response.completed", types
        assert types.count("response.created") == 1 and "response.failed" not in types, types
        ids = {e["response"]["id"] for e in evs if "response" in e}
        assert len(ids) == 1, ids
        text = "".join(e["delta"] for e in evs if e["type"] == "response.output_text.delta")
        assert text.startswith("Hello from rs") and "Hello from an" in text, text
        final = evs[-1]["response"]
        assert final["output"][0]["content"][0]["text"] == text, (final, text)
        assert final.get("x_ballast", {}).get("midstream_failover") is True, final
        done = [e for e in evs if e["type"] == "response.output_text.done"]
        assert len(done) == 1 and done[0]["text"] == text, done
    finally:
        b.stop()
        rs.stop()
        an.stop()


def test_previous_response_id_from_the_store():
    oa = start_mock("oa")
    cfg = ("providers:\n  - {name: oa, type: openai, base_url: 'http://127.0.0.1:%d/v1'}\n"
           "routes:\n  - model: gpt-x\n    tiers: [[{provider: oa, model: gpt-4o}]]\n" % oa.port)
    import tempfile
    state = tempfile.mkdtemp(prefix="ballast-state-")
    b = Ballast(cfg, env={"XDG_STATE_HOME": state})
    try:
        def post(body):
            st, _, data = b.request("POST", "/v1/responses", body)
            return st, json.loads(data)

        def sent_messages():
            return json.loads(request(oa.port, "GET", "/_mock/last").json()["body"])["messages"]

        st, r1 = post({"model": "gpt-x", "input": "My name is Ada.", "instructions": "Be kind."})
        assert st == 200 and r1["id"].startswith("resp_"), r1
        st, r2 = post({"model": "gpt-x", "input": "What is my name?", "previous_response_id": r1["id"]})
        assert st == 200, r2
        msgs = sent_messages()
        # the history came from the store; the old instructions did not
        assert [m["role"] for m in msgs] == ["user", "assistant", "user"], msgs
        assert msgs[0]["content"] == "My name is Ada." and msgs[2]["content"] == "What is my name?"
        assert msgs[1]["content"] == "Hello from oa (model gpt-4o).", msgs
        # a chain: the third turn sees all of it
        st, r3 = post({"model": "gpt-x", "input": [{"role": "user", "content": "And again?"}],
                       "previous_response_id": r2["id"]})
        assert st == 200, r3
        assert len(sent_messages()) == 5, sent_messages()
        # unknown id: OpenAI's error
        st, e = post({"model": "gpt-x", "input": "x", "previous_response_id": "resp_nope"})
        assert st == 400 and e["error"]["code"] == "previous_response_not_found", e
        assert e["error"]["param"] == "previous_response_id"
        # store: false keeps nothing
        st, r4 = post({"model": "gpt-x", "input": "secret", "store": False})
        st, e = post({"model": "gpt-x", "input": "x", "previous_response_id": r4["id"]})
        assert st == 400 and e["error"]["code"] == "previous_response_not_found", e
        # a streamed answer is stored from its response.completed event
        st, h, data = b.request("POST", "/v1/responses",
                                {"model": "gpt-x", "input": "Streamed turn.", "stream": True})
        done = [json.loads(d) for d in sse_events(data) if '"response.completed"' in d]
        assert done, data
        sid = done[0]["response"]["id"]
        st, r5 = post({"model": "gpt-x", "input": "next", "previous_response_id": sid})
        assert st == 200 and sent_messages()[0]["content"] == "Streamed turn.", sent_messages()
        # the store outlives the process (SQLite file in the state folder)
        b.stop()
        b = Ballast(cfg, env={"XDG_STATE_HOME": state})
        st, r6 = post({"model": "gpt-x", "input": "after restart", "previous_response_id": r1["id"]})
        assert st == 200 and len(sent_messages()) == 3, sent_messages()
        assert os.path.exists(os.path.join(state, "ballast", "responses.db"))
    finally:
        b.stop()
        oa.stop()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    run_tests([test_sdks_fail_over_across_families_with_tools, test_errors_in_each_familys_shape,
               test_untranslatable_requests_get_a_clear_400, test_count_tokens,
               test_midstream_failover_across_families,
               test_responses_stream_cut_continued_by_anthropic,
               test_previous_response_id_from_the_store])
