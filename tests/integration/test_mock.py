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


if __name__ == "__main__":
    unittest.main(verbosity=1)
