"""Stream N requests of each kind and check the text each family's client
would assemble equals the expected text: prints one line per kind,
STREAM kind=K n=N intact=I."""
import http.client
import json
import sys


def events(data):
    for block in data.replace("\r\n", "\n").split("\n\n"):
        lines = [l[5:].lstrip(" ") for l in block.split("\n") if l.startswith("data:")]
        if lines:
            yield "\n".join(lines)


def text_of(kind, data):
    out = ""
    for ev in events(data):
        if ev == "[DONE]":
            continue
        e = json.loads(ev)
        if kind.startswith("chat"):
            for ch in e.get("choices", []):
                out += (ch.get("delta") or {}).get("content") or ""
        elif kind.startswith("responses"):
            if e.get("type") == "response.output_text.delta":
                out += e["delta"]
        else:
            if e.get("type") == "content_block_delta" and e["delta"].get("type") == "text_delta":
                out += e["delta"]["text"]
    return out


def main():
    port, n, expect = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    kinds = json.loads(sys.argv[4])  # {kind: [path, body]}
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for kind, (path, body) in kinds.items():
        body = dict(body, stream=True)
        ok = 0
        for _ in range(n):
            c.request("POST", path, json.dumps(body), {"Content-Type": "application/json",
                                                      "anthropic-version": "2023-06-01"})
            r = c.getresponse()
            data = r.read().decode()
            ok += r.status == 200 and text_of(kind, data) == expect
        print("STREAM kind=%s n=%d intact=%d" % (kind, n, ok))


main()
