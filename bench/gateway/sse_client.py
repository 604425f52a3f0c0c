"""Streaming client for bench/gateway.sh (Python 3 stdlib only).

Sends N stream:true chat completions one after another on one keep-alive
connection per port (with several --ports, round-robin across them, so a
burst of other work on the machine hits every target alike) and measures time to first SSE event: from just before send() of
the request to the return of the recv() that first delivers body bytes
containing "data:". Each whole stream is de-chunked and checked: the
concatenated delta contents must equal --expect and the last event must be
[DONE].

Python's own cost (a send and a recv per request, a few microseconds) is in
every figure alike, direct and proxied, so it cancels out of the "added"
numbers the script reports; the absolute values are slightly pessimistic.

Prints one line per port, in the order given:
  STREAM port=P n=N p50_us=.. p90_us=.. p99_us=.. max_us=.. intact=K bad="first problem"
"""
import argparse
import gc
import json
import socket
import sys
import time

READ_TIMEOUT = 10.0


def pct(sorted_vals, p):
    if not sorted_vals:
        return 0
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def dechunk(buf, start):
    """De-chunk buf[start:]; returns (body, end) once the last chunk is in, else None."""
    out = []
    i = start
    while True:
        j = buf.find(b"\r\n", i)
        if j < 0:
            return None
        size = int(buf[i:j].split(b";", 1)[0], 16)
        if size == 0:
            k = buf.find(b"\r\n\r\n", j)  # no trailers expected: "0\r\n\r\n"
            if k < 0:
                return None
            return b"".join(out), k + 4
        if len(buf) < j + 2 + size + 2:
            return None
        out.append(buf[j + 2:j + 2 + size])
        i = j + 2 + size + 2


def sse_events(body):
    text = body.decode("utf-8", "replace").replace("\r\n", "\n")
    events = []
    for block in text.split("\n\n"):
        data = [l[5:].lstrip(" ") for l in block.split("\n") if l.startswith("data:")]
        if data:
            events.append("\n".join(data))
    return events


def check(body, expect):
    """None when the stream is intact, else a short description of the first problem."""
    events = sse_events(body)
    if not events or events[-1] != "[DONE]":
        return "stream does not end with [DONE]"
    text = ""
    for ev in events[:-1]:
        try:
            d = json.loads(ev)
        except ValueError:
            return "event is not JSON: %r" % ev[:80]
        for ch in d.get("choices", []):
            text += (ch.get("delta") or {}).get("content") or ""
    if text != expect:
        return "text %r != expected %r" % (text[:80], expect[:80])
    return None


class Conn:
    def __init__(self, port):
        self.port = port
        self.sock = None

    def open(self):
        self.close()
        s = socket.create_connection(("127.0.0.1", self.port), timeout=READ_TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def one(self, req):
        """One request; returns (first_event_ns, body, keep_alive)."""
        if self.sock is None:
            self.open()
        s = self.sock
        buf = b""
        hdr_end = -1
        first = None
        t0 = time.perf_counter_ns()
        s.sendall(req)
        while True:
            chunk = s.recv(65536)
            now = time.perf_counter_ns()
            if not chunk:
                raise OSError("connection closed mid-response")
            buf += chunk
            if hdr_end < 0:
                hdr_end = buf.find(b"\r\n\r\n")
                if hdr_end < 0:
                    continue
                hdr_end += 4
                head = buf[:hdr_end].decode("latin-1").lower()
                if not head.startswith("http/1.1 200"):
                    raise OSError("status: " + head.split("\r\n", 1)[0])
                if "transfer-encoding: chunked" not in head:
                    raise OSError("response is not chunked")
                keep = "connection: close" not in head
            if first is None and buf.find(b"data:", hdr_end) >= 0:
                first = now - t0
            r = dechunk(buf, hdr_end)
            if r is not None:
                body, end = r
                if end != len(buf):
                    raise OSError("bytes after the end of the response")
                return first, body, keep


class Target:
    def __init__(self, port):
        self.conn = Conn(port)
        self.port = port
        self.times, self.intact, self.done, self.bad = [], 0, 0, None

    def run_one(self, req, expect, measured):
        c = self.conn
        try:
            first, sbody, keep = c.one(req)
        except OSError as e:
            c.close()
            if measured:
                self.done += 1
                self.bad = self.bad or "request failed: %s" % e
            return
        if not keep:
            c.close()
        if not measured:
            return
        self.done += 1
        problem = check(sbody, expect)
        if first is None:
            problem = problem or "no data: event"
        else:
            self.times.append(first / 1000.0)
        if problem is None:
            self.intact += 1
        else:
            self.bad = self.bad or problem


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports", required=True, help="comma-separated ports")
    ap.add_argument("--n", type=int, default=200, help="measured requests per port")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--model", default="bench")
    ap.add_argument("--expect", required=True)
    ap.add_argument("--deadline", type=float, default=60.0, help="seconds for the whole run")
    a = ap.parse_args()

    body = json.dumps({"model": a.model, "stream": True,
                       "messages": [{"role": "user", "content": "Say hello."}]}).encode()
    req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           b"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body)) + body

    targets = [Target(int(p)) for p in a.ports.split(",") if p]
    end = time.monotonic() + a.deadline
    gc.disable()  # no collector pauses inside the timed loop
    for i in range(a.warmup + a.n):
        if time.monotonic() > end:
            for t in targets:
                t.bad = t.bad or "deadline reached after %d requests" % t.done
            break
        for t in targets:
            t.run_one(req, a.expect, i >= a.warmup)
    gc.enable()
    ok = True
    for t in targets:
        t.conn.close()
        t.times.sort()
        v = t.times
        print("STREAM port=%d n=%d p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f intact=%d bad=%s" % (
            t.port, a.n, pct(v, 50), pct(v, 90), pct(v, 99), v[-1] if v else 0, t.intact,
            json.dumps(t.bad or "")))
        ok = ok and t.intact == a.n
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
