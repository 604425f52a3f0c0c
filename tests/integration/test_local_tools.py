"""Tools on the local model: the tool definitions, earlier tool calls and
tool results a client sends reach the engine rendered the way the model's
chat template renders them.

gguf-gen writes a tiny Qwen2-architecture model with the real Qwen2
vocabulary and Qwen2.5's chat template. `ballast run --chat --tools` shows
the prompt (--verbose-prompt): it must be exactly Qwen2.5's tools layout,
written out here from the template. The daemon, serving the same model as a
`type: local` provider, must then feed the engine that same prompt for a chat
request with `tools` (its usage.prompt_tokens equals the CLI's count), fewer
tokens for tool_choice "none" (tools left out), the opening of a call after
the prompt for "required" and (with the function's name, only its definition
rendered) a named tool_choice, and accept tool calls and results in the history, over
the Anthropic and Responses APIs too. A random-weight model cannot be made to call a tool,
so reading calls back out of the text is covered by the unit tests
(tests/engine/test_chat_tools.c, tests/local/test_wire_tools.c).
"""
import json
import os
import re
import subprocess
import tempfile
import time

from gw import BALLAST, Ballast, run_tests, sse_events

SHARED = os.environ.get("BALLAST_SHARED", "../shared")
BUILD = os.environ.get("BALLAST_BUILD", "build")
TEMPLATE = os.path.join(SHARED, "models", "templates", "Qwen-Qwen2.5-7B-Instruct.jinja")
VOCAB = os.path.join(SHARED, "models", "vocab", "ggml-vocab-qwen2.gguf")

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather \u2014 \u00b0C",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
NOW = {"type": "function", "function": {"name": "now", "parameters": {"type": "object",
                                                                       "properties": {}}}}
TOOLS = [WEATHER, NOW]
USER = "Weather in Paris?"
DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."


def expected_prompt(tools):
    """Qwen2.5's template with tools, for a lone user message."""
    text = "<|im_start|>system\n" + DEFAULT_SYSTEM
    text += ("\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
             "You are provided with function signatures within <tools></tools> XML tags:\n<tools>")
    for t in tools:
        text += "\n" + json.dumps(t, ensure_ascii=False)
    text += ("\n</tools>\n\nFor each function call, return a json object with function name and "
             "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
             "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>"
             "<|im_end|>\n")
    return text + "<|im_start|>user\n" + USER + "<|im_end|>\n<|im_start|>assistant\n"


class Fixture:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="bl-tools-")
        self.model = os.path.join(self.dir, "qwen-tools.gguf")
        p = subprocess.run([os.path.join(BUILD, "gguf-gen"), "--out", self.model, "--shape",
                            "tiny-qwen2", "--vocab-from", VOCAB, "--chat-template", TEMPLATE,
                            "--ctx", "4096", "--type", "Q8_0"], capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr

    def tools_file(self, tools, name="tools.json"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            json.dump(tools, f)
        return path

    def run(self, tools=None):
        """The CLI's prompt and its token count."""
        args = [BALLAST, "run", "-m", self.model, "--chat", "-p", USER, "-n", "1", "--temp", "0",
                "--verbose-prompt"]
        if tools is not None:
            args += ["--tools", self.tools_file(tools)]
        p = subprocess.run(args, capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr
        err = p.stderr.decode()
        assert "ballast: chat template qwen2.5\n" in err, err
        n = int(re.search(r"prompt (\d+) tokens", err).group(1))
        return p.stdout.decode(), n

    def cleanup(self):
        for f in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, f))
        os.rmdir(self.dir)


FIX = None


def fixture():
    global FIX
    if FIX is None:
        FIX = Fixture()
    return FIX


def daemon():
    cfg = ("providers:\n  - name: local\n    type: local\n    model: %s\n    slots: 1\n"
           "    context: 4096\n"
           "routes:\n  - model: gpt-4o-mini\n    tiers:\n"
           "      - [{provider: local, model: qwen-tools}]\n" % fixture().model)
    b = Ballast(cfg)
    end = time.time() + 20
    while time.time() < end:
        st, _, _ = b.request("GET", "/readyz")
        if st == 200:
            return b
        time.sleep(0.05)
    b.stop()
    raise AssertionError("the local model never became ready")


def ask(b, stream=False, **extra):
    body = {"messages": [{"role": "user", "content": USER}], "max_tokens": 2, "temperature": 0}
    body.update(extra)
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    st, _, data = b.chat(stream=False, extra=body)
    assert st == 200, (st, data)
    if stream:
        evs = sse_events(data)
        assert evs[-1] == "[DONE]", evs
        usage = json.loads(evs[-2])["usage"]
        return usage["prompt_tokens"]
    d = json.loads(data)
    assert d["choices"][0]["finish_reason"] in ("length", "stop", "tool_calls"), d
    return d["usage"]["prompt_tokens"]


def test_cli_renders_qwen_tools():
    f = fixture()
    text, n_tools = f.run(TOOLS)
    want = expected_prompt(TOOLS)
    assert text.startswith(want) and len(text) - len(want) <= 32, (text, want)
    plain, n_plain = f.run()
    assert "# Tools" not in plain and n_plain < n_tools, (plain, n_plain, n_tools)


def test_daemon_feeds_the_engine_the_tools_prompt():
    f = fixture()
    _, n_all = f.run(TOOLS)
    _, n_plain = f.run()
    _, n_weather = f.run([WEATHER])
    b = daemon()
    try:
        assert ask(b, tools=TOOLS) == n_all
        assert ask(b, stream=True, tools=TOOLS) == n_all
        assert ask(b, tools=TOOLS, tool_choice="auto", parallel_tool_calls=False) == n_all
        assert ask(b, tools=TOOLS, tool_choice="none") == n_plain
        assert ask(b) == n_plain
        # A required call begins for the model (the prompt ends with the call
        # marker) and is held to the tools' schemas while sampling: even this
        # random-weight model can only write a valid call. With enum-only
        # arguments the call is bounded, so it completes.
        unit = {"type": "function", "function": {"name": "set_unit", "parameters": {
            "type": "object", "properties": {"unit": {"enum": ["celsius", "fahrenheit"]},
                                             "loud": {"type": "boolean"}},
            "required": ["unit", "loud"], "additionalProperties": False}}}
        now = {"type": "function", "function": {"name": "now", "parameters": {
            "type": "object", "properties": {}, "additionalProperties": False}}}
        for choice, tools in (("required", [unit, now]),
                              ({"type": "function", "function": {"name": "set_unit"}}, [unit, WEATHER])):
            for stream in (False, True):
                body = {"messages": [{"role": "user", "content": USER}], "max_tokens": 120,
                        "temperature": 0, "tools": tools, "tool_choice": choice}
                if stream:
                    body["stream"] = True
                st, _, data = b.chat(extra=body)
                assert st == 200, data
                if stream:
                    calls, finish = {}, None
                    for ev in sse_events(data):
                        if ev == "[DONE]":
                            continue
                        ch = json.loads(ev)["choices"][0]
                        finish = ch.get("finish_reason") or finish
                        for tc in ch["delta"].get("tool_calls") or []:
                            c = calls.setdefault(tc["index"], {"name": "", "arguments": ""})
                            c["name"] += tc.get("function", {}).get("name") or ""
                            c["arguments"] += tc.get("function", {}).get("arguments") or ""
                    got = [calls[k] for k in sorted(calls)]
                else:
                    d = json.loads(data)
                    finish = d["choices"][0]["finish_reason"]
                    got = [c["function"] for c in d["choices"][0]["message"].get("tool_calls") or []]
                assert finish == "tool_calls" and got, (choice, stream, data)
                assert got[0]["name"] in ("set_unit", "now"), got
                args = json.loads(got[0]["arguments"])
                if got[0]["name"] == "set_unit":
                    assert args["unit"] in ("celsius", "fahrenheit"), args
                    assert isinstance(args["loud"], bool) and set(args) == {"unit", "loud"}, args
                if isinstance(choice, dict):
                    assert got[0]["name"] == "set_unit", got
        # response_format: the answer is JSON the schema accepts; a schema the
        # engine cannot enforce is refused, naming the construct
        schema = {"type": "object", "properties": {"ok": {"type": "boolean"},
                                                   "n": {"enum": [1, 2, 3]}},
                  "required": ["ok", "n"], "additionalProperties": False}
        st, _, data = b.chat(extra={"messages": [{"role": "user", "content": USER}],
                                    "max_tokens": 60, "temperature": 0,
                                    "response_format": {"type": "json_schema", "json_schema": {
                                        "name": "r", "schema": schema}}})
        assert st == 200, data
        out = json.loads(json.loads(data)["choices"][0]["message"]["content"])
        assert isinstance(out["ok"], bool) and out["n"] in (1, 2, 3) and set(out) == {"ok", "n"}
        st, _, data = b.chat(extra={"messages": [{"role": "user", "content": USER}],
                                    "max_tokens": 4, "response_format": {
                                        "type": "json_schema", "json_schema": {"name": "r", "schema": {
                                            "type": "object", "properties": {"zip": {
                                                "type": "string", "pattern": "^[0-9]{5}$"}}}}}})
        err = json.loads(data)["error"]
        assert st == 400 and "'pattern'" in err["message"] and "#/properties/zip" in err["message"], data
        # A history with a call and its result renders (more tokens than without).
        history = [{"role": "user", "content": USER},
                   {"role": "assistant", "content": None, "tool_calls": [
                       {"id": "call_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                   {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"}]
        assert ask(b, tools=TOOLS, messages=history) > n_all
        # Requests the local model cannot serve, in OpenAI's error shape.
        for extra in ({"tools": {"type": "function"}},
                      {"tools": [{"type": "web_search_preview"}]},
                      {"tools": TOOLS, "tool_choice": "sometimes"},
                      {"tools": TOOLS, "tool_choice": {"type": "function",
                                                       "function": {"name": "nope"}}},
                      {"messages": [{"role": "user", "content": "x", "tool_calls": []}]},
                      {"messages": [{"role": "assistant", "content": None, "tool_calls": [
                          {"id": "c", "type": "function", "function": {"arguments": "{}"}}]}]}):
            body = {"messages": [{"role": "user", "content": USER}], "max_tokens": 2}
            body.update(extra)
            st, _, data = b.chat(extra=body)
            assert st == 400, (extra, st, data)
            assert json.loads(data)["error"]["type"] == "invalid_request_error", data
        # An Anthropic client's tools reach the local model through the translation.
        st, _, data = b.request("POST", "/v1/messages", {
            "model": "gpt-4o-mini", "max_tokens": 2, "temperature": 0,
            "messages": [{"role": "user", "content": USER}],
            "tools": [{"name": "get_weather", "description": "Current weather",
                       "input_schema": {"type": "object",
                                        "properties": {"city": {"type": "string"}}}}]},
            headers={"anthropic-version": "2023-06-01", "x-api-key": "k"})
        assert st == 200, (st, data)
        msg = json.loads(data)
        assert msg["type"] == "message" and msg["usage"]["input_tokens"] > n_plain, msg
        # And a Responses client's (Codex CLI's API).
        st, _, data = b.request("POST", "/v1/responses", {
            "model": "gpt-4o-mini", "max_output_tokens": 16, "temperature": 0, "input": USER,
            "tools": [{"type": "function", "name": "get_weather", "description": "Current weather",
                       "parameters": {"type": "object",
                                      "properties": {"city": {"type": "string"}}}}]})
        assert st == 200, (st, data)
        resp = json.loads(data)
        assert resp["object"] == "response" and resp["usage"]["input_tokens"] > n_plain, resp
    finally:
        b.stop()


if __name__ == "__main__":
    try:
        run_tests([test_cli_renders_qwen_tools, test_daemon_feeds_the_engine_the_tools_prompt])
    finally:
        if FIX is not None:
            FIX.cleanup()
