"""type: local — the daemon answers from its own model when the clouds fail.

Uses the real stories260K model from ../shared/models: greedy completions
through HTTP must equal `ballast run` and llama.cpp's reference continuation."""
import json
import os
import subprocess
import time

from gw import BALLAST, Ballast, provider, run_tests, sse_events, start_mock

SHARED = os.environ.get("BALLAST_SHARED", "../shared")
MODEL = os.path.join(SHARED, "models", "stories260K.gguf")
SHA = "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d"


def reference(prompt="Once upon a time"):
    with open(os.path.join(SHARED, "models", "llamacpp-reference.json")) as f:
        ref = json.load(f)
    for m in ref["models"]:
        if m["file"] == "stories260K.gguf":
            for r in m["results"]:
                if r["prompt"] == prompt:
                    return bytes.fromhex("".join(r["generated_pieces_hex"])).decode()
    raise AssertionError("no reference")


def local_provider(extra=""):
    return ("  - name: local\n    type: local\n    model: %s\n    slots: 2\n%s" % (MODEL, extra))


def config(cloud_port=None, local_extra=""):
    cfg = "providers:\n"
    if cloud_port:
        cfg += provider("cloud", cloud_port, timeouts="{connect_ms: 500, first_token_ms: 2000, total_ms: 5000}")
    cfg += local_provider(local_extra)
    cfg += "routes:\n  - model: gpt-4o-mini\n    tiers:\n"
    if cloud_port:
        cfg += "      - [{provider: cloud, model: gpt-4o-mini}]\n"
    cfg += "      - [{provider: local, model: stories260k}]\n"
    return cfg


def wait_ready(b, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        st, _, body = b.request("GET", "/readyz")
        if st == 200:
            return json.loads(body)
        time.sleep(0.02)
    raise AssertionError("local model never became ready: " + b.log_text()[-2000:])


def complete(b, stream, **extra):
    body = {"model": "gpt-4o-mini", "prompt": "Once upon a time", "max_tokens": 32,
            "temperature": 0}
    body.update(extra)
    if stream:
        body["stream"] = True
    st, h, data = b.request("POST", "/v1/completions", body)
    assert st == 200, (st, data)
    if not stream:
        d = json.loads(data)
        assert d["object"] == "text_completion" and d["id"].startswith("cmpl-"), d
        if "stop" not in extra:
            assert d["usage"]["completion_tokens"] == 32, d
        return h, d["choices"][0]["text"]
    evs = sse_events(data)
    assert evs[-1] == "[DONE]", evs
    text = "".join(json.loads(e)["choices"][0]["text"] for e in evs[:-1])
    return h, text


def test_greedy_equals_run_and_llamacpp():
    b = Ballast(config(local_extra="    sha256: %s\n" % SHA))
    try:
        wait_ready(b)
        want = reference()
        run = subprocess.run([BALLAST, "run", "-m", MODEL, "-p", "Once upon a time", "-n", "32",
                              "--temp", "0"], capture_output=True, timeout=60)
        assert run.returncode == 0, run.stderr
        assert run.stdout.decode() == want
        for stream in (False, True):
            h, text = complete(b, stream)
            assert text == want, (stream, text, want)
            assert h["x-ballast-backend"] == "local/stories260k"
    finally:
        b.stop()


def test_clouds_down_local_answers_chat_streaming():
    cloud = start_mock("cloud")
    b = Ballast(config(cloud.port))
    try:
        wait_ready(b)
        st, h, _ = b.chat()
        assert st == 200 and h["x-ballast-backend"] == "cloud/gpt-4o-mini"
        cloud.set_mode("status", code=503)
        for stream in (False, True):
            st, h, data = b.chat(stream=stream, extra={"max_tokens": 16, "temperature": 0,
                                                       "stream_options": {"include_usage": True}})
            assert st == 200, data
            assert h["x-ballast-backend"] == "local/stories260k"
            assert h["x-ballast-degraded"] == "true"
            if stream:
                evs = [json.loads(e) for e in sse_events(data)[:-1]]
                assert evs[0]["choices"][0]["delta"]["role"] == "assistant"
                assert evs[0]["object"] == "chat.completion.chunk"
                assert evs[-2]["choices"][0]["finish_reason"] in ("length", "stop")
                assert evs[-1]["usage"]["completion_tokens"] >= 1
                assert "".join(e["choices"][0]["delta"].get("content", "")
                               for e in evs if e["choices"])
            else:
                d = json.loads(data)
                assert d["object"] == "chat.completion"
                assert d["choices"][0]["message"]["role"] == "assistant"
                assert d["choices"][0]["message"]["content"]
                assert d["usage"]["prompt_tokens"] > 0
        assert b.metric("ballast_local_model_state", provider="local", state="ready") == 1
    finally:
        b.stop()
        cloud.stop()


def test_local_errors_have_openai_shapes():
    b = Ballast(config(local_extra="    context: 64\n"))
    try:
        wait_ready(b)
        st, _, data = b.request("POST", "/v1/completions",
                                {"model": "gpt-4o-mini", "prompt": "Once upon a time " * 40})
        err = json.loads(data)["error"]
        assert st == 400 and err["code"] == "context_length_exceeded", data
        assert "64 tokens" in err["message"]
        # function tools are served (test_local_tools.py); other tool types are not
        st, _, data = b.chat(extra={"tools": [{"type": "web_search_preview"}]})
        assert st == 400 and json.loads(data)["error"]["code"] == "unsupported_value", data
        st, _, data = b.chat(extra={"n": 17})  # 2..16 are served (test_n_choices...)
        assert st == 400 and json.loads(data)["error"]["code"] == "invalid_value", data
        st, _, data = b.chat(extra={"temperature": 7})
        assert st == 400 and json.loads(data)["error"]["code"] == "invalid_value", data
        # the stop sequence is honoured and not included
        h, text = complete(b, False, stop=["girl"], max_tokens=32)
        assert text == ", there was a little ", text
        h, text = complete(b, True, stop=["girl"], max_tokens=32)
        assert text == ", there was a little ", text
    finally:
        b.stop()


def test_tampered_or_missing_model_never_serves_and_clouds_keep_going():
    cloud = start_mock("cloud")
    bad_sha = "0" * 64
    b = Ballast(config(cloud.port, local_extra="    sha256: %s\n" % bad_sha))
    try:
        end = time.time() + 10
        while "cannot serve" not in b.log_text() and time.time() < end:
            time.sleep(0.02)
        assert "sha256 is %s" % SHA in b.log_text(), b.log_text()
        st, _, body = b.request("GET", "/readyz")
        t = json.loads(body)["routes"]["gpt-4o-mini"]["targets"][1]
        assert t["local_model"] == "failed" and "sha256" in t["error"], t
        st, h, _ = b.chat()
        assert st == 200 and h["x-ballast-backend"] == "cloud/gpt-4o-mini"
        cloud.set_mode("status", code=500)
        st, _, data = b.chat()
        assert st == 503 and "local model not ready" in json.loads(data)["error"]["message"], data
    finally:
        b.stop()
    missing = Ballast(config(cloud.port).replace(MODEL, "/nonexistent/model.gguf"))
    try:
        end = time.time() + 10
        while "cannot serve" not in missing.log_text() and time.time() < end:
            time.sleep(0.02)
        assert "/nonexistent/model.gguf" in missing.log_text(), missing.log_text()
        cloud.set_mode("ok")
        assert missing.chat()[0] == 200
    finally:
        missing.stop()
        cloud.stop()


def test_prompt_prefix_is_reused_without_changing_answers():
    a = "Once upon a time there was a little dog named Max. He liked to run"
    bprompt = "Once upon a time there was a little dog named Max. He liked to eat"

    def ask(b, prompt):
        st, _, data = b.request("POST", "/v1/completions", {"model": "gpt-4o-mini", "prompt": prompt,
                                                             "max_tokens": 24, "temperature": 0})
        assert st == 200, data
        d = json.loads(data)
        return d["choices"][0]["text"], d["usage"]

    fresh = Ballast(config())
    try:
        wait_ready(fresh)
        want, usage = ask(fresh, bprompt)
        assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    finally:
        fresh.stop()
    one_slot = config().replace("    slots: 2\n", "    slots: 1\n")
    b = Ballast(one_slot)
    try:
        wait_ready(b)
        ask(b, a)
        got, usage = ask(b, bprompt)
        assert got == want, (got, want)
        # everything up to "liked to" came from the slot's cache
        cached = usage["prompt_tokens_details"]["cached_tokens"]
        assert 10 < cached < usage["prompt_tokens"], usage
        again, usage = ask(b, bprompt)
        assert again == want
        # the same prompt again: all but the last token reused
        assert usage["prompt_tokens_details"]["cached_tokens"] == usage["prompt_tokens"] - 1, usage
    finally:
        b.stop()


def test_midstream_failover_into_local_continues_exactly():
    cloud = start_mock("cloud")
    b = Ballast(config(cloud.port))
    try:
        wait_ready(b)
        # what the local model says when asked to continue "Hello from " itself
        cloud.set_mode("status", code=500)
        st, _, data = b.request("POST", "/v1/chat/completions", {
            "model": "gpt-4o-mini", "temperature": 0, "max_tokens": 12,
            "messages": [{"role": "user", "content": "hi"},
                         {"role": "assistant", "content": "Hello from "}]})
        assert st == 200, data
        d = json.loads(data)
        continuation = d["choices"][0]["message"]["content"]
        assert d["model"] == "stories260k" and continuation
        # the cloud streams "Hello from " and breaks off; the stream goes on locally
        cloud.set_mode("cut", events=3)
        time.sleep(0.05)
        st, h, data = b.chat(stream=True, extra={"temperature": 0, "max_tokens": 12})
        assert st == 200 and h["x-ballast-backend"] == "cloud/gpt-4o-mini"
        evs = [json.loads(e) for e in sse_events(data)[:-1]]
        text = "".join(e["choices"][0]["delta"].get("content", "") for e in evs)
        assert text == "Hello from " + continuation, (text, continuation)
        assert evs[-1]["x_ballast"]["to"] == "local/stories260k"
    finally:
        b.stop()
        cloud.stop()


def test_concurrent_requests_decode_as_one_batch_exactly():
    import threading
    prompts = ["Once upon a time", "The little dog", "Lily and Tom went to the park",
               "One day, a big bird"]
    b = Ballast(config().replace("    slots: 2\n", "    slots: 4\n"))
    try:
        wait_ready(b)

        def ask(p):
            st, _, data = b.request("POST", "/v1/completions", {
                "model": "gpt-4o-mini", "prompt": p, "max_tokens": 48, "temperature": 0})
            assert st == 200, data
            return json.loads(data)["choices"][0]["text"]

        alone = [ask(p) for p in prompts]
        for _ in range(3):
            together = [None] * len(prompts)
            threads = [threading.Thread(target=lambda i=i: together.__setitem__(i, ask(prompts[i])))
                       for i in range(len(prompts))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert together == alone, (together, alone)
    finally:
        b.stop()


def test_full_queue_answers_503_with_retry_after():
    cfg = config().replace("    slots: 2\n", "    slots: 1\n    max_queue: 0\n    max_tokens: 4000\n")
    b = Ballast("retry: {max_attempts: 1}\n" + cfg)
    try:
        wait_ready(b)
        import socket
        s = socket.create_connection(("127.0.0.1", b.port))
        body = json.dumps({"model": "gpt-4o-mini", "prompt": "Once upon a time", "stream": True,
                           "max_tokens": 4000, "temperature": 1, "seed": 1})
        s.sendall(("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: %d\r\n\r\n%s" % (len(body), body)).encode())
        s.recv(200)  # the one slot is busy streaming
        st, h, data = b.request("POST", "/v1/completions",
                                {"model": "gpt-4o-mini", "prompt": "hi", "max_tokens": 4})
        s.close()
        assert st == 503, (st, data)
        err = json.loads(data)["error"]
        assert err["attempts"] == [{"target": "local/stories260k", "outcome": "http_5xx",
                                    "status": 503}], err
        assert int(h["retry-after"]) >= 1
        # and once the slot is free again it serves (the closed client freed it)
        end = time.time() + 10
        while time.time() < end:
            st, _, _ = b.request("POST", "/v1/completions",
                                 {"model": "gpt-4o-mini", "prompt": "hi", "max_tokens": 4})
            if st == 200:
                break
            time.sleep(0.05)
        assert st == 200
    finally:
        b.stop()


def test_embeddings_from_the_local_model():
    import base64
    import math
    import struct
    b = Ballast(config())
    try:
        wait_ready(b)
        st, h, data = b.request("POST", "/v1/embeddings", {"model": "gpt-4o-mini",
                                                            "input": ["a cat", "a dog", "a cat"]})
        assert st == 200 and h["x-ballast-backend"] == "local/stories260k", data
        d = json.loads(data)
        assert d["object"] == "list" and [e["index"] for e in d["data"]] == [0, 1, 2]
        vecs = [e["embedding"] for e in d["data"]]
        assert len(vecs[0]) == 64  # stories260K's n_embd
        for v in vecs:
            assert abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-5  # normalized
        assert vecs[0] == vecs[2] and vecs[0] != vecs[1]
        assert d["usage"]["prompt_tokens"] > 0
        # base64, the openai SDK's default: the same floats, little-endian float32
        st, _, data = b.request("POST", "/v1/embeddings", {"model": "gpt-4o-mini", "input": "a cat",
                                                            "encoding_format": "base64"})
        raw = base64.b64decode(json.loads(data)["data"][0]["embedding"])
        got = struct.unpack("<64f", raw)
        assert all(abs(a - b_) < 1e-6 for a, b_ in zip(got, vecs[0]))
        st, _, data = b.request("POST", "/v1/embeddings", {"model": "gpt-4o-mini", "input": [[1, 2]]})
        assert st == 400, data
    finally:
        b.stop()


def test_sighup_swaps_the_local_model_without_dropping_requests():
    import signal
    import threading
    b = Ballast(config())
    failures, count, done = [], [0], threading.Event()
    try:
        wait_ready(b)

        def load(stream):
            while not done.is_set():
                try:
                    st, h, data = b.request("POST", "/v1/completions", {
                        "model": "gpt-4o-mini", "prompt": "Once upon a time", "max_tokens": 24,
                        "temperature": 0, "stream": stream})
                    if st != 200 or h.get("x-ballast-backend") != "local/stories260k":
                        failures.append((st, data[:200]))
                    count[0] += 1
                except Exception as e:  # noqa: BLE001 - any error is a dropped request
                    failures.append(repr(e))

        threads = [threading.Thread(target=load, args=(s,)) for s in (False, True, False)]
        for t in threads:
            t.start()
        for i in range(6):
            time.sleep(0.15)
            # new settings each time: a new instance loads while the old one serves
            b.write_config(config(local_extra="    max_tokens: %d\n" % (500 + i)))
            b.signal(signal.SIGHUP)
        time.sleep(0.3)
        done.set()
        for t in threads:
            t.join()
        assert not failures, failures[:5]
        assert count[0] > 20, count
        assert b.log_text().count("replaces") >= 5, b.log_text()[-3000:]
    finally:
        done.set()
        b.stop()


def test_a_long_prompt_is_fed_in_chunks_between_other_streams_tokens():
    """A long prompt's prefill is cut into chunks fed between decode steps,
    so a stream already running keeps getting tokens while it is fed (the
    order of events is what is checked, not their timing). Its answer is
    the same as when fed whole."""
    import http.client
    import threading
    b = Ballast(config(local_extra="    context: 4096\n    max_tokens: 4000\n"))
    try:
        wait_ready(b)
        events = []  # ("a", n) for each chunk of A, ("b-sent",), ("b-first",)
        lock = threading.Lock()
        a_started = threading.Event()

        def run_a():
            c = http.client.HTTPConnection("127.0.0.1", b.port, timeout=60)
            c.request("POST", "/v1/completions", json.dumps({
                "model": "gpt-4o-mini", "prompt": "Once upon a time", "max_tokens": 1000,
                "temperature": 0, "stream": True}), {"Content-Type": "application/json"})
            r = c.getresponse()
            n = 0
            while True:
                line = r.fp.readline()
                if not line or line.startswith(b"data: [DONE]"):
                    break
                if line.startswith(b"data: "):
                    n += 1
                    with lock:
                        events.append(("a", n))
                    if n == 3:
                        a_started.set()
            c.close()

        ta = threading.Thread(target=run_a)
        ta.start()
        assert a_started.wait(20)
        long_prompt = "Once upon a time there was a little girl who loved the sun. " * 70
        c = http.client.HTTPConnection("127.0.0.1", b.port, timeout=60)
        with lock:
            events.append(("b-sent",))
        c.request("POST", "/v1/completions", json.dumps({
            "model": "gpt-4o-mini", "prompt": long_prompt, "max_tokens": 8, "temperature": 0,
            "stream": True}), {"Content-Type": "application/json"})
        r = c.getresponse()
        b_text = ""
        while True:
            line = r.fp.readline()
            if not line or line.startswith(b"data: [DONE]"):
                break
            if line.startswith(b"data: "):
                d = json.loads(line[6:])
                if d.get("choices") and d["choices"][0].get("text"):
                    if not b_text:
                        with lock:
                            events.append(("b-first",))
                    b_text += d["choices"][0]["text"]
        c.close()
        ta.join(60)
        i = events.index(("b-sent",))
        j = events.index(("b-first",))
        during = sum(1 for e in events[i:j] if e[0] == "a")
        # the prompt is ~1400 tokens, six 256-token chunks: fed whole, A would
        # get no token while it is fed (only ones already on their way)
        assert during >= 4, (during, events[i - 2:j + 2])
    finally:
        b.stop()
    # and B's answer is what the prompt gives when fed whole (prefill_chunk: 0)
    b = Ballast(config(local_extra="    context: 4096\n    prefill_chunk: 0\n"))
    try:
        wait_ready(b)
        _, whole = complete(b, True, prompt=long_prompt, max_tokens=8)
        assert b_text == whole and whole, (b_text, whole)
    finally:
        b.stop()


def test_n_choices_from_the_local_model():
    """n > 1: the choices are separate sequences (decoded together when the
    slots allow) merged into one answer; choice i of a seeded request uses
    seed + i, so streamed and whole answers agree choice by choice."""
    b = Ballast(config())
    try:
        wait_ready(b)
        body = {"model": "gpt-4o-mini", "prompt": "Once upon a time", "max_tokens": 16,
                "temperature": 1.0, "seed": 42, "n": 3}
        st, _, data = b.request("POST", "/v1/completions", body)
        assert st == 200, data
        d = json.loads(data)
        texts = [c["text"] for c in sorted(d["choices"], key=lambda c: c["index"])]
        assert [c["index"] for c in sorted(d["choices"], key=lambda c: c["index"])] == [0, 1, 2], d
        assert len(set(texts)) >= 2, texts  # different seeds, different stories
        assert d["usage"]["completion_tokens"] == 48, d["usage"]  # 3 x 16, the prompt once
        assert d["usage"]["prompt_tokens"] < 10, d["usage"]
        # choice i is the n = 1 answer with seed 42 + i
        one = dict(body, n=1, seed=43)
        st, _, data1 = b.request("POST", "/v1/completions", one)
        assert json.loads(data1)["choices"][0]["text"] == texts[1]
        # streamed: chunks carry their choice's index, one id, one [DONE]
        st, _, sdata = b.request("POST", "/v1/completions", dict(body, stream=True,
                                                                 stream_options={"include_usage": True}))
        evs = sse_events(sdata)
        assert evs[-1] == "[DONE]" and evs.count("[DONE]") == 1, evs[-3:]
        objs = [json.loads(e) for e in evs[:-1]]
        assert len({o["id"] for o in objs}) == 1, {o["id"] for o in objs}
        got = {}
        for o in objs:
            for c in o["choices"]:
                got[c["index"]] = got.get(c["index"], "") + c["text"]
        assert [got[i] for i in range(3)] == texts, (got, texts)
        assert objs[-1]["usage"]["completion_tokens"] == 48, objs[-1]
        # chat, greedy: every choice is the greedy answer
        st, _, cdata = b.request("POST", "/v1/chat/completions", {
            "model": "gpt-4o-mini", "n": 2, "max_tokens": 8, "temperature": 0,
            "messages": [{"role": "user", "content": "Once upon a time"}]})
        c = json.loads(cdata)["choices"]
        assert len(c) == 2 and c[0]["message"]["content"] == c[1]["message"]["content"], c
        st, _, edata = b.request("POST", "/v1/completions", dict(body, n=17))
        assert st == 400 and "'n'" in json.loads(edata)["error"]["message"], edata
    finally:
        b.stop()


if __name__ == "__main__":
    run_tests([
        test_n_choices_from_the_local_model,
        test_a_long_prompt_is_fed_in_chunks_between_other_streams_tokens,
        test_greedy_equals_run_and_llamacpp,
        test_clouds_down_local_answers_chat_streaming,
        test_local_errors_have_openai_shapes,
        test_tampered_or_missing_model_never_serves_and_clouds_keep_going,
        test_prompt_prefix_is_reused_without_changing_answers,
        test_midstream_failover_into_local_continues_exactly,
        test_concurrent_requests_decode_as_one_batch_exactly,
        test_full_queue_answers_503_with_retry_after,
        test_embeddings_from_the_local_model,
        test_sighup_swaps_the_local_model_without_dropping_requests,
    ])
