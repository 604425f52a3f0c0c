"""ballast-mock behaves as its fault modes and OpenAI shapes promise."""
import json
import os
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import post_json, request, sse_request, raw_exchange  # noqa: E402

CHAT = "/v1/chat/completions"
M = None


def setUpModule():
    global M
    M = harness.start_mock("alpha")


def tearDownModule():
    assert M.stop() == 0, "mock did not exit cleanly on SIGTERM"


def chat_body(stream=False, model="gpt-test", **kw):
    b = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        b["stream"] = True
    b.update(kw)
    return b


class Shapes(unittest.TestCase):
    def test_chat_nonstream(self):
        r = post_json(M.port, CHAT, chat_body(), {"Authorization": "Bearer sk-abc"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["x-mock-name"], "alpha")
        self.assertEqual(r.headers["content-type"], "application/json")
        j = r.json()
        self.assertEqual(j["object"], "chat.completion")
        self.assertEqual(j["model"], "gpt-test")
        ch = j["choices"][0]
        self.assertEqual(ch["message"]["role"], "assistant")
        self.assertEqual(ch["message"]["content"], "Hello from alpha (model gpt-test).")
        self.assertEqual(ch["finish_reason"], "stop")
        u = j["usage"]
        self.assertEqual(u["completion_tokens"], 5)
        self.assertEqual(u["total_tokens"], u["prompt_tokens"] + u["completion_tokens"])

    def test_chat_stream(self):
        body = chat_body(True, model='we"ird', stream_options={"include_usage": True})
        r, events = sse_request(M.port, CHAT, body)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "text/event-stream")
        self.assertEqual(r.headers["x-mock-name"], "alpha")
        self.assertEqual(events[-1], "[DONE]")
        chunks = [json.loads(e) for e in events[:-1]]
        for c in chunks:
            self.assertEqual(c["object"], "chat.completion.chunk")
            self.assertEqual(c["model"], 'we"ird')
        self.assertEqual(chunks[0]["choices"][0]["delta"]["role"], "assistant")
        content = [c["choices"][0]["delta"]["content"] for c in chunks[1:-2]]
        self.assertEqual(len(content), 5)
        self.assertEqual("".join(content), 'Hello from alpha (model we"ird).')
        self.assertEqual(chunks[-2]["choices"][0]["finish_reason"], "stop")
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], 5)
        # without include_usage there is no usage chunk
        _, ev2 = sse_request(M.port, CHAT, chat_body(True))
        self.assertNotIn("usage", json.loads(ev2[-2]))

    def test_chunks_parameter(self):
        _, events = sse_request(M.port, CHAT, chat_body(True, model="m"),
                                {"x-mock-fault": "ok;chunks=12"})
        content = [json.loads(e)["choices"][0]["delta"]["content"] for e in events[1:-2]]
        self.assertEqual(len(content), 12)
        self.assertTrue("".join(content).startswith("Hello from alpha (model m)."))
        r = post_json(M.port, CHAT, chat_body(model="m"), {"x-mock-fault": "ok;chunks=12"})
        self.assertEqual(r.json()["choices"][0]["message"]["content"], "".join(content))

    def test_completions(self):
        r = post_json(M.port, "/v1/completions", {"model": "c1", "prompt": "x"})
        j = r.json()
        self.assertEqual(j["object"], "text_completion")
        self.assertEqual(j["choices"][0]["text"], "Hello from alpha (model c1).")
        _, events = sse_request(M.port, "/v1/completions",
                                {"model": "c1", "prompt": "x", "stream": True})
        self.assertEqual(events[-1], "[DONE]")
        text = "".join(json.loads(e)["choices"][0]["text"] for e in events[:-1])
        self.assertEqual(text, "Hello from alpha (model c1).")

    def test_embeddings_and_models(self):
        r = post_json(M.port, "/v1/embeddings", {"model": "e1", "input": ["a", "b", "a"]})
        j = r.json()
        self.assertEqual(j["object"], "list")
        self.assertEqual(j["model"], "e1")
        self.assertEqual([d["index"] for d in j["data"]], [0, 1, 2])
        self.assertEqual(j["data"][0]["object"], "embedding")
        self.assertEqual(len(j["data"][0]["embedding"]), 8)
        self.assertEqual(j["data"][0]["embedding"], j["data"][2]["embedding"])
        self.assertNotEqual(j["data"][0]["embedding"], j["data"][1]["embedding"])
        self.assertEqual(post_json(M.port, "/v1/embeddings", {"model": "e1", "input": 3}).status,
                         400)
        m = request(M.port, "GET", "/v1/models").json()
        self.assertEqual(m["object"], "list")
        self.assertTrue(all(d["object"] == "model" for d in m["data"]))

    def test_anthropic_messages(self):
        body = {"model": "claude-t", "max_tokens": 50,
                "messages": [{"role": "user", "content": "hi"}]}
        r = post_json(M.port, "/v1/messages", body)
        j = r.json()
        self.assertEqual(j["type"], "message")
        self.assertEqual(j["model"], "claude-t")
        self.assertEqual(j["content"], [{"type": "text",
                                         "text": "Hello from alpha (model claude-t)."}])
        self.assertEqual(j["stop_reason"], "end_turn")
        self.assertEqual(j["usage"]["output_tokens"], 5)
        body["stream"] = True
        r, events = sse_request(M.port, "/v1/messages", body, with_events=True)
        self.assertEqual(r.headers["content-type"], "text/event-stream")
        names = [e for e, _ in events]
        self.assertEqual(names[:3], ["message_start", "content_block_start", "ping"])
        self.assertEqual(names[-3:], ["content_block_stop", "message_delta", "message_stop"])
        for name, data in events:
            self.assertEqual(json.loads(data)["type"], name)
        text = "".join(json.loads(d)["delta"]["text"] for e, d in events
                       if e == "content_block_delta")
        self.assertEqual(text, "Hello from alpha (model claude-t).")
        r = post_json(M.port, "/v1/messages", body, {"x-mock-fault": "status;code=529"})
        self.assertEqual(r.status, 529)
        self.assertEqual(r.json()["error"]["type"], "overloaded_error")

    def test_bad_requests(self):
        r = post_json(M.port, CHAT, "{not json")
        self.assertEqual(r.status, 400)
        self.assertIn("error", r.json())
        self.assertEqual(r.headers["x-mock-name"], "alpha")
        self.assertEqual(request(M.port, "GET", "/nope").status, 404)

    def test_keepalive_pipelining_and_chunked_body(self):
        body = json.dumps(chat_body(model="p1")).encode()
        one = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
               % len(body)) + body
        half = len(body) // 2
        chunked = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                   b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                   + b"%x\r\n" % half + body[:half] + b"\r\n"
                   + b"%x\r\n" % (len(body) - half) + body[half:] + b"\r\n0\r\n\r\n")
        out, err = raw_exchange(M.port, one + one + chunked)
        self.assertIsNone(err)
        self.assertEqual(out.count(b"HTTP/1.1 200 OK"), 3)
        self.assertEqual(out.count(b"Hello from alpha (model p1)."), 3)


class Stats(unittest.TestCase):
    def test_stats_and_reset(self):
        M.reset()
        post_json(M.port, CHAT, chat_body(), {"Authorization": "Bearer sk-zzz", "X-Custom": "V"})
        request(M.port, "GET", "/v1/models")
        s = M.stats()
        self.assertEqual(s["name"], "alpha")
        self.assertEqual(s["requests"], 2)
        self.assertEqual(s["by_path"], {CHAT: 1, "/v1/models": 1})
        self.assertEqual(s["connections"], 3)  # two requests + this stats call
        self.assertEqual(s["last_request"]["path"], "/v1/models")
        post_json(M.port, CHAT, chat_body(model="last"), {"Authorization": "Bearer sk-zzz"})
        last = M.stats()["last_request"]
        self.assertEqual(last["headers"]["authorization"], "Bearer sk-zzz")
        self.assertEqual(json.loads(last["body"])["model"], "last")
        M.reset()
        s = M.stats()
        self.assertEqual(s["requests"], 0)
        self.assertEqual(s["by_path"], {})
        self.assertIsNone(s["last_request"])


class Faults(unittest.TestCase):
    def test_status(self):
        r = post_json(M.port, CHAT, chat_body(), {"x-mock-fault": "status;code=429;retry_after=3"})
        self.assertEqual(r.status, 429)
        self.assertEqual(r.headers["retry-after"], "3")
        self.assertEqual(r.json()["error"]["code"], "rate_limit_exceeded")
        date = "Wed, 21 Oct 2015 07:28:00 GMT"
        r = post_json(M.port, CHAT, chat_body(), {"x-mock-fault": "status;code=503;retry_after=" + date})
        self.assertEqual(r.status, 503)
        self.assertEqual(r.headers["retry-after"], date)
        self.assertEqual(r.json()["error"]["type"], "server_error")
        r = post_json(M.port, CHAT, chat_body(), {"x-mock-fault": "status;code=401"})
        self.assertEqual(r.status, 401)
        self.assertNotIn("retry-after", r.headers)
        self.assertEqual(post_json(M.port, CHAT, chat_body(), {"x-mock-fault": "bogus"}).status, 400)

    def test_reset(self):
        body = json.dumps(chat_body(True)).encode()
        req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
               b"x-mock-fault: reset\r\n\r\n" % len(body)) + body
        out, err = raw_exchange(M.port, req)
        self.assertIsInstance(err, ConnectionResetError)
        # what arrived before the RST (if any) is a partial stream
        self.assertNotIn(b"[DONE]", out)

    def test_cut(self):
        body = json.dumps(chat_body(True)).encode()
        req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
               b"x-mock-fault: cut;events=2\r\n\r\n" % len(body)) + body
        out, err = raw_exchange(M.port, req)
        self.assertIsNone(err)  # a clean close...
        self.assertEqual(out.count(b"data: "), 2)
        self.assertFalse(out.endswith(b"0\r\n\r\n"))  # ...without the last chunk

    def test_refuse_header_closes_without_answer(self):
        req = (b"GET /v1/models HTTP/1.1\r\nHost: x\r\nx-mock-fault: refuse\r\n\r\n")
        out, err = raw_exchange(M.port, req)
        self.assertEqual(out, b"")
        self.assertEqual(request(M.port, "GET", "/v1/models").status, 200)  # still listening

    def test_malformed(self):
        r = post_json(M.port, CHAT, chat_body(), {"x-mock-fault": "malformed"})
        self.assertEqual(r.status, 200)
        with self.assertRaises(ValueError):
            json.loads(r.body)
        _, events = sse_request(M.port, CHAT, chat_body(True), {"x-mock-fault": "malformed"})
        bad = 0
        for e in events[:-1]:
            try:
                json.loads(e)
            except ValueError:
                bad += 1
        self.assertEqual(bad, 1)

    def test_hang_counts_disconnect(self):
        M.reset()
        body = json.dumps(chat_body()).encode()
        req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
               b"x-mock-fault: hang\r\n\r\n" % len(body)) + body
        out, err = raw_exchange(M.port, req, timeout=0.3)
        self.assertIsInstance(err, socket.timeout)
        self.assertEqual(out, b"")
        s = M.stats()
        self.assertEqual(s["requests"], 1)
        self.assertEqual(s["disconnects_before_response"], 1)

    def test_slow_first_byte_drip_delay(self):
        # lower bounds only: each mode must wait at least what it was told
        t = time.time()
        r = post_json(M.port, CHAT, chat_body(), {"x-mock-fault": "slow_first_byte;ms=150"})
        self.assertEqual(r.status, 200)
        self.assertGreaterEqual(time.time() - t, 0.14)
        t = time.time()
        _, events = sse_request(M.port, CHAT, chat_body(True), {"x-mock-fault": "drip;ms=30"})
        self.assertEqual(events[-1], "[DONE]")
        self.assertGreaterEqual(time.time() - t, 0.03 * (len(events) - 1) - 0.01)
        t = time.time()
        r = post_json(M.port, CHAT, chat_body(), {"x-mock-fault": "delay;ms=150"})
        self.assertEqual(r.status, 200)
        self.assertGreaterEqual(time.time() - t, 0.14)

    def test_slow_first_byte_sends_headers_first(self):
        body = json.dumps(chat_body()).encode()
        req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
               b"x-mock-fault: slow_first_byte;ms=300\r\nConnection: close\r\n\r\n" % len(body)
               ) + body
        with socket.create_connection(("127.0.0.1", M.port), timeout=5) as s:
            s.sendall(req)
            first = s.recv(65536)
            self.assertTrue(first.startswith(b"HTTP/1.1 200"))
            self.assertTrue(first.endswith(b"\r\n\r\n"))  # headers only, body later
            rest = b""
            while True:
                c = s.recv(65536)
                if not c:
                    break
                rest += c
            self.assertIn(b"Hello from alpha", rest)


class ProcessModes(unittest.TestCase):
    def test_mode_endpoint_and_header_wins(self):
        try:
            M.set_mode("status", code=503, retry_after=5)
            r = post_json(M.port, CHAT, chat_body())
            self.assertEqual(r.status, 503)
            self.assertEqual(r.headers["retry-after"], "5")
            self.assertEqual(post_json(M.port, CHAT, chat_body(), {"x-mock-fault": "ok"}).status,
                             200)
            self.assertEqual(M.stats()["mode"], "status")  # control is never faulted
        finally:
            M.set_mode("ok")
        self.assertEqual(post_json(M.port, CHAT, chat_body()).status, 200)
        self.assertEqual(request(M.port, "POST", "/_mock/mode", {"mode": "nope"}).status, 400)

    def test_refuse_and_relisten(self):
        with harness.start_mock("beta") as b:
            conn = socket.create_connection(("127.0.0.1", b.port), timeout=5)  # idle keep-alive
            b.set_mode("refuse")
            with self.assertRaises(ConnectionRefusedError):
                request(b.port, "GET", "/v1/models", timeout=2)
            conn.settimeout(2)
            self.assertEqual(conn.recv(10), b"")  # existing connections were closed
            conn.close()
            b.relisten()
            r = request(b.port, "GET", "/v1/models")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["x-mock-name"], "beta")

    def test_mode_from_command_line(self):
        with harness.start_mock("gamma", mode="status;code=502", chunks=3) as g:
            self.assertEqual(post_json(g.port, CHAT, chat_body()).status, 502)
            _, ev = sse_request(g.port, CHAT, chat_body(True), {"x-mock-fault": "ok"})
            self.assertEqual(len(ev), 1 + 3 + 1 + 1)  # role, 3 content, finish, [DONE]
            g.proc.send_signal(signal.SIGINT)
            self.assertEqual(g.proc.wait(5), 0)


RESP = "/v1/responses"
TOOL_ARGS = {"cmd": ["ls", "-la"], "workdir": "/tmp/é", "n": 3}
RESP_TEXT_EVENTS = ["response.created", "response.in_progress", "response.output_item.added",
                    "response.content_part.added"]
RESP_TEXT_TAIL = ["response.output_text.done", "response.content_part.done",
                  "response.output_item.done", "response.completed"]


def resp_body(stream=False, **kw):
    b = {"model": "gpt-r", "input": "hi"}
    if stream:
        b["stream"] = True
    b.update(kw)
    return b


def set_tool(port, name, args=None):
    body = {"name": name}
    if args is not None:
        body["arguments"] = args
    return request(port, "POST", "/_mock/tool", body)


def chat_tools(*names):
    return [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
            for n in names]


def resp_tools(*names):
    return [{"type": "function", "name": n, "parameters": {"type": "object"}} for n in names]


def anth_tools(*names):
    return [{"name": n, "input_schema": {"type": "object"}} for n in names]


def resp_events(port, body, headers=None):
    """POST a streamed /v1/responses: (response, [(event, parsed data)...]) after checking
    that every event names its type and sequence_number counts from 0."""
    r, raw = sse_request(port, RESP, body, headers, with_events=True)
    events = [(e, json.loads(d)) for e, d in raw]
    for i, (name, data) in enumerate(events):
        assert data["type"] == name, (name, data)
        assert data["sequence_number"] == i, (i, data)
    return r, events


class Responses(unittest.TestCase):
    def test_nonstream(self):
        tools = resp_tools("lookup")
        r = post_json(M.port, RESP, resp_body(instructions="be brief", temperature=0.5,
                                              tools=tools, tool_choice="none"))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertEqual(r.headers["x-mock-name"], "alpha")
        j = r.json()
        self.assertTrue(j["id"].startswith("resp_"))
        self.assertEqual(j["object"], "response")
        self.assertEqual(j["status"], "completed")
        self.assertEqual(j["model"], "gpt-r")
        self.assertIsInstance(j["created_at"], int)
        self.assertEqual(len(j["output"]), 1)
        item = j["output"][0]
        self.assertEqual(item["type"], "message")
        self.assertTrue(item["id"].startswith("msg_"))
        self.assertEqual((item["status"], item["role"]), ("completed", "assistant"))
        self.assertEqual(item["content"], [{"type": "output_text", "annotations": [],
                                            "logprobs": [],
                                            "text": "Hello from alpha (model gpt-r)."}])
        u = j["usage"]
        self.assertEqual(u["output_tokens"], 5)
        self.assertEqual(u["input_tokens_details"], {"cached_tokens": 0})
        self.assertEqual(u["output_tokens_details"], {"reasoning_tokens": 0})
        self.assertEqual(u["total_tokens"], u["input_tokens"] + u["output_tokens"])
        # request fields are echoed, the rest have the API's defaults
        self.assertEqual(j["instructions"], "be brief")
        self.assertEqual(j["temperature"], 0.5)
        self.assertEqual(j["tools"], tools)
        self.assertEqual(j["tool_choice"], "none")
        self.assertEqual(j["text"], {"format": {"type": "text"}})
        self.assertIs(j["parallel_tool_calls"], True)
        self.assertEqual(j["top_p"], 1.0)
        self.assertIsNone(j["error"])
        j2 = post_json(M.port, RESP, resp_body()).json()
        self.assertEqual((j2["tools"], j2["tool_choice"], j2["instructions"]), ([], "auto", None))
        self.assertNotEqual(j2["id"], j["id"])

    def test_stream(self):
        r, events = resp_events(M.port, resp_body(True, model='r"q'))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "text/event-stream")
        names = [e for e, _ in events]
        self.assertEqual(names, RESP_TEXT_EVENTS + ["response.output_text.delta"] * 5
                         + RESP_TEXT_TAIL)
        by = {e: d for e, d in events}
        created = by["response.created"]["response"]
        self.assertEqual((created["status"], created["output"], created["usage"]),
                         ("in_progress", [], None))
        self.assertEqual(created["model"], 'r"q')
        item_id = by["response.output_item.added"]["item"]["id"]
        self.assertTrue(item_id.startswith("msg_"))
        self.assertEqual(by["response.output_item.added"]["item"]["status"], "in_progress")
        self.assertEqual(by["response.content_part.added"]["part"]["text"], "")
        deltas = [d for e, d in events if e == "response.output_text.delta"]
        for d in deltas:
            self.assertEqual((d["item_id"], d["output_index"], d["content_index"]),
                             (item_id, 0, 0))
        text = "".join(d["delta"] for d in deltas)
        self.assertEqual(text, 'Hello from alpha (model r"q).')
        self.assertEqual(by["response.output_text.done"]["text"], text)
        self.assertEqual(by["response.content_part.done"]["part"]["text"], text)
        done_item = by["response.output_item.done"]["item"]
        self.assertEqual((done_item["id"], done_item["status"]), (item_id, "completed"))
        final = by["response.completed"]["response"]
        self.assertEqual(final["id"], created["id"])
        self.assertEqual(final["status"], "completed")
        self.assertEqual(final["output"], [done_item])
        self.assertEqual(final["usage"]["output_tokens"], 5)

    def test_chunks(self):
        _, events = resp_events(M.port, resp_body(True), {"x-mock-fault": "ok;chunks=9"})
        self.assertEqual(sum(e == "response.output_text.delta" for e, _ in events), 9)

    def test_status_fault_is_openai_shaped(self):
        r = post_json(M.port, RESP, resp_body(), {"x-mock-fault": "status;code=429;retry_after=2"})
        self.assertEqual(r.status, 429)
        self.assertEqual(r.headers["retry-after"], "2")
        self.assertEqual(r.json()["error"]["code"], "rate_limit_exceeded")
        try:
            M.set_mode("status", code=503)
            r = post_json(M.port, RESP, resp_body(True))
            self.assertEqual(r.status, 503)
            self.assertEqual(r.json()["error"]["type"], "server_error")
        finally:
            M.set_mode("ok")

    def test_cut_and_malformed(self):
        body = json.dumps(resp_body(True)).encode()
        req = (b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
               b"x-mock-fault: cut;events=4\r\n\r\n" % len(body)) + body
        out, err = raw_exchange(M.port, req)
        self.assertIsNone(err)
        self.assertEqual(out.count(b"data: "), 4)
        self.assertNotIn(b"response.output_text.delta", out)
        self.assertFalse(out.endswith(b"0\r\n\r\n"))
        r = post_json(M.port, RESP, resp_body(), {"x-mock-fault": "malformed"})
        self.assertEqual(r.status, 200)
        with self.assertRaises(ValueError):
            json.loads(r.body)
        _, raw = sse_request(M.port, RESP, resp_body(True), {"x-mock-fault": "malformed"},
                             with_events=True)
        bad = []
        for e, d in raw:
            try:
                json.loads(d)
            except ValueError:
                bad.append(e)
        self.assertEqual(bad, ["response.output_text.delta"])
        self.assertNotIn("response.completed", [e for e, _ in raw])

    def test_counted_and_bad_requests(self):
        M.reset()
        post_json(M.port, RESP, resp_body())
        self.assertEqual(M.stats()["by_path"], {RESP: 1})
        r = post_json(M.port, RESP, {"input": "no model"})
        self.assertEqual(r.status, 400)
        self.assertIn("error", r.json())
        self.assertEqual(request(M.port, "GET", RESP).status, 405)


class Tools(unittest.TestCase):
    def setUp(self):
        r = set_tool(M.port, "exec_command", TOOL_ARGS)
        self.assertEqual(r.status, 200)

    def tearDown(self):
        set_tool(M.port, None)

    def test_control(self):
        j = request(M.port, "GET", "/_mock/tool").json()
        self.assertEqual(j, {"name": "exec_command", "arguments": TOOL_ARGS})
        # arguments may also come as JSON text, the way OpenAI carries them
        r = set_tool(M.port, "other", json.dumps({"a": 1}))
        self.assertEqual(r.json(), {"name": "other", "arguments": {"a": 1}})
        self.assertEqual(set_tool(M.port, "x").json()["arguments"], {})
        for bad in ({"name": 3}, {"name": "x", "arguments": [1]},
                    {"name": "x", "arguments": "not json"}, {"name": ""}, {}):
            self.assertEqual(request(M.port, "POST", "/_mock/tool", bad).status, 400, bad)
        self.assertEqual(request(M.port, "POST", "/_mock/tool", "{oops").status, 400)
        self.assertEqual(set_tool(M.port, None).json(), {"name": None, "arguments": None})
        self.assertEqual(request(M.port, "GET", "/_mock/tool").json()["name"], None)
        M.reset()
        set_tool(M.port, "exec_command", TOOL_ARGS)
        self.assertEqual(M.stats()["requests"], 0)  # control is not counted

    def test_chat(self):
        body = chat_body(tools=chat_tools("read_file", "exec_command"))
        j = post_json(M.port, CHAT, body).json()
        ch = j["choices"][0]
        self.assertEqual(ch["finish_reason"], "tool_calls")
        msg = ch["message"]
        self.assertEqual(msg["role"], "assistant")
        self.assertIsNone(msg["content"])
        self.assertEqual(len(msg["tool_calls"]), 1)
        tc = msg["tool_calls"][0]
        self.assertTrue(tc["id"].startswith("call_"))
        self.assertEqual(tc["type"], "function")
        self.assertEqual(tc["function"]["name"], "exec_command")
        self.assertIsInstance(tc["function"]["arguments"], str)
        self.assertEqual(json.loads(tc["function"]["arguments"]), TOOL_ARGS)

        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        _, events = sse_request(M.port, CHAT, body)
        self.assertEqual(events[-1], "[DONE]")
        chunks = [json.loads(e) for e in events[:-1]]
        first = chunks[0]["choices"][0]["delta"]
        self.assertEqual(first["role"], "assistant")
        self.assertEqual(first["tool_calls"][0]["index"], 0)
        self.assertTrue(first["tool_calls"][0]["id"].startswith("call_"))
        self.assertEqual(first["tool_calls"][0]["type"], "function")
        self.assertEqual(first["tool_calls"][0]["function"]["name"], "exec_command")
        pieces = []
        for c in chunks[1:-2]:
            tcs = c["choices"][0]["delta"]["tool_calls"]
            self.assertEqual(tcs[0]["index"], 0)
            self.assertNotIn("id", tcs[0])
            pieces.append(tcs[0]["function"]["arguments"])
        self.assertIn(len(pieces), (2, 3))
        self.assertEqual(json.loads("".join(pieces)), TOOL_ARGS)
        self.assertEqual(chunks[-2]["choices"][0]["finish_reason"], "tool_calls")
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], len(pieces))

    def test_responses(self):
        tools = resp_tools("exec_command")
        j = post_json(M.port, RESP, resp_body(tools=tools)).json()
        self.assertEqual(j["status"], "completed")
        self.assertEqual(len(j["output"]), 1)
        fc = j["output"][0]
        self.assertEqual(fc["type"], "function_call")
        self.assertTrue(fc["id"].startswith("fc_"))
        self.assertTrue(fc["call_id"].startswith("call_"))
        self.assertEqual((fc["name"], fc["status"]), ("exec_command", "completed"))
        self.assertEqual(json.loads(fc["arguments"]), TOOL_ARGS)

        _, events = resp_events(M.port, resp_body(True, tools=tools))
        names = [e for e, _ in events]
        n = names.count("response.function_call_arguments.delta")
        self.assertIn(n, (2, 3))
        self.assertEqual(names, ["response.created", "response.in_progress",
                                 "response.output_item.added"]
                         + ["response.function_call_arguments.delta"] * n
                         + ["response.function_call_arguments.done",
                            "response.output_item.done", "response.completed"])
        added = events[2][1]["item"]
        self.assertEqual((added["type"], added["status"], added["arguments"], added["name"]),
                         ("function_call", "in_progress", "", "exec_command"))
        deltas = [d for e, d in events if e == "response.function_call_arguments.delta"]
        self.assertTrue(all(d["item_id"] == added["id"] and d["output_index"] == 0
                            for d in deltas))
        args = "".join(d["delta"] for d in deltas)
        self.assertEqual(json.loads(args), TOOL_ARGS)
        done = events[-3][1]
        self.assertEqual((done["item_id"], done["arguments"], done["name"]),
                         (added["id"], args, "exec_command"))
        item = events[-2][1]["item"]
        self.assertEqual((item["id"], item["call_id"], item["status"], item["arguments"]),
                         (added["id"], added["call_id"], "completed", args))
        final = events[-1][1]["response"]
        self.assertEqual(final["output"], [item])
        self.assertEqual(final["tools"], tools)

    def test_anthropic(self):
        body = {"model": "claude-t", "max_tokens": 50, "tools": anth_tools("exec_command"),
                "messages": [{"role": "user", "content": "list files"}]}
        j = post_json(M.port, "/v1/messages", body).json()
        self.assertEqual(j["stop_reason"], "tool_use")
        self.assertEqual(len(j["content"]), 1)
        tu = j["content"][0]
        self.assertEqual(tu["type"], "tool_use")
        self.assertTrue(tu["id"].startswith("toolu_"))
        self.assertEqual((tu["name"], tu["input"]), ("exec_command", TOOL_ARGS))

        body["stream"] = True
        _, raw = sse_request(M.port, "/v1/messages", body, with_events=True)
        events = [(e, json.loads(d)) for e, d in raw]
        for name, data in events:
            self.assertEqual(data["type"], name)
        names = [e for e, _ in events]
        n = names.count("content_block_delta")
        self.assertIn(n, (2, 3))
        self.assertEqual(names, ["message_start", "content_block_start", "ping"]
                         + ["content_block_delta"] * n
                         + ["content_block_stop", "message_delta", "message_stop"])
        block = events[1][1]["content_block"]
        self.assertEqual((block["type"], block["name"], block["input"]),
                         ("tool_use", "exec_command", {}))
        self.assertTrue(block["id"].startswith("toolu_"))
        deltas = [d["delta"] for e, d in events if e == "content_block_delta"]
        self.assertTrue(all(d["type"] == "input_json_delta" for d in deltas))
        self.assertEqual(json.loads("".join(d["partial_json"] for d in deltas)), TOOL_ARGS)
        self.assertEqual(events[-2][1]["delta"]["stop_reason"], "tool_use")

    def test_final_answer_after_tool_result(self):
        out = "total 0\nfile-a"
        chat = chat_body(tools=chat_tools("exec_command"))
        chat["messages"] += [
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "exec_command", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": out}]
        resp = resp_body(tools=resp_tools("exec_command"), input=[
            {"role": "user", "content": "hi"},
            {"type": "function_call", "call_id": "call_1", "name": "exec_command",
             "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1",
             "output": [{"type": "input_text", "text": out}]}])
        anth = {"model": "claude-t", "max_tokens": 50, "tools": anth_tools("exec_command"),
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": [
                        {"type": "tool_use", "id": "toolu_1", "name": "exec_command",
                         "input": {}}]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": out}]}]}
        want = "Done: " + out
        for with_script in (True, False):
            if not with_script:
                set_tool(M.port, None)
            j = post_json(M.port, CHAT, chat).json()
            self.assertEqual(j["choices"][0]["message"]["content"], want)
            self.assertEqual(j["choices"][0]["finish_reason"], "stop")
            j = post_json(M.port, RESP, resp).json()
            self.assertEqual(j["output"][0]["content"][0]["text"], want)
            j = post_json(M.port, "/v1/messages", anth).json()
            self.assertEqual(j["content"], [{"type": "text", "text": want}])
            self.assertEqual(j["stop_reason"], "end_turn")
        # streamed too
        _, ev = sse_request(M.port, CHAT, dict(chat, stream=True))
        self.assertEqual("".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                                 for e in ev[:-1]), want)
        _, ev = resp_events(M.port, dict(resp, stream=True))
        self.assertEqual(ev[-1][1]["response"]["output"][0]["content"][0]["text"], want)
        _, ev = sse_request(M.port, "/v1/messages", dict(anth, stream=True), with_events=True)
        self.assertEqual("".join(json.loads(d)["delta"]["text"] for e, d in ev
                                 if e == "content_block_delta"), want)

    def test_result_is_cut_to_200_bytes_on_a_character(self):
        result = "a" * 199 + "é" * 10  # byte 200 falls inside the first "é"
        body = chat_body()
        body["messages"].append({"role": "tool", "tool_call_id": "c", "content": result})
        text = post_json(M.port, CHAT, body).json()["choices"][0]["message"]["content"]
        self.assertEqual(text, "Done: " + "a" * 199)
        body["messages"][-1]["content"] = "b" * 198 + "é" * 10
        text = post_json(M.port, CHAT, body).json()["choices"][0]["message"]["content"]
        self.assertEqual(text, "Done: " + "b" * 198 + "é")

    def test_plain_text_without_the_tool(self):
        greeting = "Hello from alpha (model gpt-test)."
        for tools in (None, chat_tools("read_file")):
            body = chat_body(tools=tools) if tools else chat_body()
            j = post_json(M.port, CHAT, body).json()
            self.assertEqual(j["choices"][0]["message"]["content"], greeting)
            self.assertEqual(j["choices"][0]["finish_reason"], "stop")
        j = post_json(M.port, RESP, resp_body(tools=resp_tools("read_file"))).json()
        self.assertEqual(j["output"][0]["type"], "message")
        # chat-shaped tools on /v1/responses do not name the tool there
        j = post_json(M.port, RESP, resp_body(tools=chat_tools("exec_command"))).json()
        self.assertEqual(j["output"][0]["type"], "message")
        # a tool result followed by a new user turn asks for the tool again
        body = chat_body(tools=chat_tools("exec_command"))
        body["messages"] += [{"role": "tool", "tool_call_id": "c", "content": "x"},
                             {"role": "user", "content": "again"}]
        j = post_json(M.port, CHAT, body).json()
        self.assertEqual(j["choices"][0]["finish_reason"], "tool_calls")

    def test_faults_apply_to_tool_calls(self):
        body = chat_body(True, tools=chat_tools("exec_command"))
        raw = json.dumps(body).encode()
        req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
               b"x-mock-fault: cut;events=2\r\n\r\n" % len(raw)) + raw
        out, err = raw_exchange(M.port, req)
        self.assertIsNone(err)
        self.assertEqual(out.count(b"data: "), 2)
        self.assertIn(b"tool_calls", out)
        r = post_json(M.port, CHAT, chat_body(tools=chat_tools("exec_command")),
                      {"x-mock-fault": "status;code=500"})
        self.assertEqual(r.status, 500)

    def test_command_line_script(self):
        args = ["--tool-name", "apply_patch", "--tool-args", '{"patch": "*** Begin"}']
        with harness.start_mock("delta", extra_args=args) as d:
            self.assertEqual(request(d.port, "GET", "/_mock/tool").json(),
                             {"name": "apply_patch", "arguments": {"patch": "*** Begin"}})
            j = post_json(d.port, "/v1/messages",
                          {"model": "c", "max_tokens": 5, "tools": anth_tools("apply_patch"),
                           "messages": [{"role": "user", "content": "fix"}]}).json()
            self.assertEqual(j["content"][0]["input"], {"patch": "*** Begin"})
        with self.assertRaises(RuntimeError):
            harness.start_mock("bad", extra_args=["--tool-name", "x", "--tool-args", "[1]"])


class Capture(unittest.TestCase):
    def test_last_request(self):
        M.reset()
        self.assertEqual(request(M.port, "GET", "/_mock/last").status, 404)
        raw = '{"model": "cap", "input": "x",  "z": 1}'
        post_json(M.port, RESP + "?trace=1", raw, {"Authorization": "Bearer sk-cap",
                                                   "X-Thing": "v1"})
        request(M.port, "GET", "/_mock/stats")  # control requests are not captured
        last = request(M.port, "GET", "/_mock/last").json()
        self.assertEqual(last["method"], "POST")
        self.assertEqual(last["path"], RESP)
        self.assertEqual(last["headers"]["authorization"], "Bearer sk-cap")
        self.assertEqual(last["headers"]["x-thing"], "v1")
        self.assertEqual(last["body"], raw)  # byte for byte, not re-encoded
        self.assertEqual(M.stats()["last_request"], last)
        # a faulted request is captured too
        post_json(M.port, CHAT, chat_body(model="f"), {"x-mock-fault": "status;code=503"})
        last = request(M.port, "GET", "/_mock/last").json()
        self.assertEqual((last["path"], json.loads(last["body"])["model"]), (CHAT, "f"))
        # control is never faulted
        try:
            M.set_mode("status", code=500)
            self.assertEqual(request(M.port, "GET", "/_mock/last").status, 200)
        finally:
            M.set_mode("ok")
        M.reset()
        self.assertEqual(request(M.port, "GET", "/_mock/last").status, 404)


if __name__ == "__main__":
    unittest.main(verbosity=1)
