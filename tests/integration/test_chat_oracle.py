"""`ballast run --chat` against a real Jinja engine, through real GGUF files.

For each chat template that models ship ($BALLAST_SHARED/models/templates),
gguf-gen writes a tiny model carrying it in tokenizer.chat_template; ballast
loads it, names the detected family on stderr and writes the rendered prompt
(--verbose-prompt, then one greedy token) to stdout. tests/node-llama/chat_oracle.mjs reads
the template back out of the same GGUF with node-llama-cpp's
readGgufFileInfo and renders the same messages with @huggingface/jinja (the
engine of node-llama-cpp's JinjaTemplateChatWrapper); the two prompts must
be byte-identical (the template's leading BOS dropped: the tokenizer adds
it). A model without a template, or with one we do not know, must say so and
use ChatML. The same with tool definitions (`run --tools`): the families
whose template renders tools against the template given the tools; the others
against the template given ballast's Hermes fallback (the tools section
appended to the system message, rebuilt here in Python). Skipped only when
node is not installed.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

BIN = os.environ["BALLAST_BIN"]
BUILD = os.environ["BALLAST_BUILD"]
SRC = os.environ["BALLAST_SRC"]
TEMPLATES = os.path.join(os.environ["BALLAST_SHARED"], "models", "templates")
NODE_DIR = os.path.join(SRC, "tests", "node-llama")

FIXTURES = {
    "Qwen-Qwen2.5-7B-Instruct.jinja": "qwen2.5",
    "Qwen-Qwen3-0.6B.jinja": "qwen3",
    "meta-llama-Llama-3.2-3B-Instruct.jinja": "llama3.2",
    "microsoft-Phi-3.5-mini-instruct.jinja": "phi3",
    "google-gemma-2-2b-it.jinja": "gemma",
    "HuggingFaceTB-SmolLM3-3B.jinja": "smollm3",
}


def check(cond, msg):
    if not cond:
        print("FAIL:", msg)
        sys.exit(1)


def gguf_gen(out, template=None):
    args = [os.path.join(BUILD, "gguf-gen"), "--out", out, "--shape", "tiny", "--ctx", "8192"]
    if template:
        args += ["--chat-template", template]
    p = subprocess.run(args, capture_output=True, timeout=60)
    check(p.returncode == 0, f"gguf-gen {args}: {p.stderr!r}")


# Function tools as a client sends them (key order kept: templates show it).
TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Weather now \u2014 in \u00b0C, \"quoted\"",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"]}}},
    {"type": "function", "function": {"name": "now", "parameters": {"type": "object",
                                                                     "properties": {}}}},
]
# Families whose template renders tools; the others get ballast's Hermes
# fallback: the tools section appended to the system message.
NATIVE_TOOLS = {"qwen2.5", "qwen3", "llama3.2"}


def hermes_system(system):
    """The fallback's system text, written independently of the C code."""
    text = (system + "\n\n") if system is not None else ""
    text += ("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
             "You are provided with function signatures within <tools></tools> XML tags:\n<tools>")
    for t in TOOLS:
        text += "\n" + json.dumps(t, ensure_ascii=False)
    text += ("\n</tools>\n\nFor each function call, return a json object with function name and "
             "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
             "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>")
    return text


def ballast_prompt(model, user, system=None, tools_file=None):
    # One greedy token after the prompt (-n 0 trips a sanitizer in generate.c
    # on an empty completion); the caller cuts it off.
    args = [BIN, "run", "-m", model, "--chat", "-p", user, "-n", "1", "--temp", "0", "-c", "8192",
            "--verbose-prompt"]
    if system is not None:
        args += ["--system", system]
    if tools_file is not None:
        args += ["--tools", tools_file]
    p = subprocess.run(args, capture_output=True, timeout=60)
    check(p.returncode == 0, f"ballast run {args}: exit {p.returncode}: {p.stderr!r}")
    return p.stdout.decode(), p.stderr.decode()


def main():
    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        print("SKIP: node is not installed, so there is no Jinja engine to compare with")
        return
    check(os.path.isdir(os.path.join(NODE_DIR, "node_modules", "node-llama-cpp")),
          f"node-llama-cpp is not installed: run `npm ci` in {NODE_DIR}")

    with tempfile.TemporaryDirectory(prefix="bl-chat-") as tmp:
        cases, ours = [], {}
        tools_file = os.path.join(tmp, "tools.json")
        with open(tools_file, "w") as f:
            json.dump(TOOLS, f)
        for i, (fixture, family) in enumerate(sorted(FIXTURES.items())):
            model = os.path.join(tmp, f"m{i}.gguf")
            gguf_gen(model, os.path.join(TEMPLATES, fixture))
            convs = [("Hello", None), ("  What is 2+2?\n", None)]
            if family != "gemma":  # Gemma's template refuses a system message
                convs.append(("Hello", "You are terse."))
            for j, (user, system) in enumerate(convs):
                text, err = ballast_prompt(model, user, system)
                check(f"ballast: chat template {family}\n" in err,
                      f"{fixture}: expected 'chat template {family}' on stderr: {err!r}")
                cid = f"{fixture}/{j}"
                ours[cid] = text
                msgs = ([{"role": "system", "content": system}] if system is not None else [])
                msgs.append({"role": "user", "content": user})
                cases.append({"id": cid, "gguf": model, "messages": msgs,
                              "add_generation_prompt": True, "bos": "<s>", "eos": "</s>",
                              "strip_bos": True})
            # With tools: the template's own tools rendering, or (other
            # families) the template rendering the fallback's system message.
            for j, system in enumerate([None, "You are terse."]):
                if family == "gemma":  # the fallback adds a system message: Gemma refuses it
                    continue
                user = "Weather in Paris?"
                text, err = ballast_prompt(model, user, system, tools_file)
                cid = f"{fixture}/tools{j}"
                ours[cid] = text
                case = {"id": cid, "gguf": model, "add_generation_prompt": True, "bos": "<s>",
                        "eos": "</s>", "strip_bos": True}
                if family in NATIVE_TOOLS:
                    case["tools"] = TOOLS
                    msgs = [{"role": "system", "content": system}] if system is not None else []
                else:
                    msgs = [{"role": "system", "content": hermes_system(system)}]
                case["messages"] = msgs + [{"role": "user", "content": user}]
                cases.append(case)

        p = subprocess.run([node, "chat_oracle.mjs"], cwd=NODE_DIR, input=json.dumps(cases),
                           capture_output=True, text=True, timeout=120)
        check(p.returncode == 0, f"chat_oracle.mjs: exit {p.returncode}: {p.stderr}")
        results = json.loads(p.stdout)
        check(len(results) == len(cases), f"{len(results)} results for {len(cases)} cases")
        for r in results:
            check("text" in r, f"{r['id']}: the Jinja engine failed: {r.get('error')}")
            got, want = ours[r["id"]], r["text"]
            # what follows the prompt is the one generated token's text
            check(got.startswith(want) and len(got) - len(want) <= 16,
                  f"{r['id']}: ballast rendered {got!r}, Jinja {want!r}")
        print(f"{len(results)} prompts equal the Jinja engine's")

        # No template, and one we do not know: ChatML, and the log says so.
        chatml = "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
        plain = os.path.join(tmp, "plain.gguf")
        gguf_gen(plain)
        text, err = ballast_prompt(plain, "Hello")
        check("ballast: no chat template, using ChatML\n" in err, f"no template: {err!r}")
        check(text.startswith(chatml) and len(text) - len(chatml) <= 16, f"no template: {text!r}")
        odd_tmpl = os.path.join(tmp, "odd.jinja")
        with open(odd_tmpl, "w") as f:
            f.write("{% for m in messages %}### {{ m.role }}: {{ m.content }}\n{% endfor %}")
        odd = os.path.join(tmp, "odd.gguf")
        gguf_gen(odd, odd_tmpl)
        text, err = ballast_prompt(odd, "Hello")
        check("ballast: unknown chat template, using ChatML\n" in err, f"unknown: {err!r}")
        check(text.startswith(chatml) and len(text) - len(chatml) <= 16,
              f"unknown template: {text!r}")

        # A tools file that is not a JSON array is refused.
        bad_tools = os.path.join(tmp, "bad.json")
        with open(bad_tools, "w") as f:
            f.write('{"type": "function"}')
        p = subprocess.run([BIN, "run", "-m", plain, "--chat", "--tools", bad_tools, "-p", "Hi"],
                           capture_output=True, timeout=60)
        check(p.returncode == 1 and b"JSON array" in p.stderr, f"bad --tools: {p.stderr!r}")

        # --system without --chat is a usage error.
        p = subprocess.run([BIN, "run", "-m", plain, "--system", "x", "-p", "Hi"],
                           capture_output=True, timeout=60)
        check(p.returncode == 1 and b"--system needs --chat" in p.stderr,
              f"--system alone: {p.returncode} {p.stderr!r}")
    print("ok")


if __name__ == "__main__":
    main()
