#!/usr/bin/env python3
"""`ballast models inspect` on a real GGUF file, a truncated copy, and a file
written by gguf-gen; `ballast models --help`."""
import os
import shutil
import subprocess
import sys
import tempfile

BIN = os.environ["BALLAST_BIN"]
SHARED = os.environ.get("BALLAST_SHARED", os.path.join(os.path.dirname(__file__), "../../../shared"))
BUILD = os.environ.get("BALLAST_BUILD", "")
STORIES = os.path.join(SHARED, "models", "stories260K.gguf")
STORIES_SHA = "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d"


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=120)


def field(out, name):
    for line in out.splitlines():
        if line.startswith(name + " "):
            return line[len(name):].strip()
    raise AssertionError(f"no '{name}' line in:\n{out}")


def check(cond, msg):
    if not cond:
        print("FAIL:", msg, file=sys.stderr)
        sys.exit(1)


def main():
    r = run("models", "--help")
    check(r.returncode == 0 and "inspect" in r.stdout, f"--help: {r.returncode} {r.stdout!r}")
    r = run("models", "frobnicate")
    check(r.returncode != 0 and "frobnicate" in r.stderr, f"unknown subcommand: {r.stderr!r}")

    r = run("models", "inspect", STORIES)
    check(r.returncode == 0, f"inspect exit {r.returncode}: {r.stderr}")
    out = r.stdout
    check(field(out, "sha256") == STORIES_SHA, f"sha256 in:\n{out}")
    check(field(out, "architecture") == "llama", out)
    check(field(out, "gguf version") == "3", out)
    check(field(out, "size").startswith("1185376 bytes"), out)
    check(field(out, "layers") == "5", out)
    check(field(out, "heads") == "8", out)
    check(field(out, "kv heads") == "4", out)
    check(field(out, "embedding") == "64", out)
    check(field(out, "feed forward") == "172", out)
    check(field(out, "vocab size") == "512", out)
    check(field(out, "context length") == "2048", out)
    check(field(out, "tensors") == "48 (F32: 48)", out)
    check(field(out, "dominant type") == "F32", out)
    check(r.stderr == "", f"stderr not empty: {r.stderr!r}")

    tmp = tempfile.mkdtemp(prefix="bl_models_")
    try:
        # truncated in the middle of the tensor data
        cut = os.path.join(tmp, "cut.gguf")
        with open(STORIES, "rb") as f:
            data = f.read()
        with open(cut, "wb") as f:
            f.write(data[:600000])
        r = run("models", "inspect", cut)
        check(r.returncode == 1, f"truncated: exit {r.returncode}")
        check("cut.gguf" in r.stderr and "exceeds file size 600000" in r.stderr,
              f"truncated: {r.stderr!r}")
        check(r.stdout == "", f"truncated: stdout {r.stdout!r}")
        # truncated inside the vocabulary
        with open(cut, "wb") as f:
            f.write(data[:5000])
        r = run("models", "inspect", cut)
        check(r.returncode == 1 and "truncated" in r.stderr and "tokenizer.ggml.tokens" in r.stderr,
              f"truncated vocab: {r.stderr!r}")
        r = run("models", "inspect", os.path.join(tmp, "missing.gguf"))
        check(r.returncode == 1 and "missing.gguf" in r.stderr, f"missing: {r.stderr!r}")

        # a generated quantized model: histogram and dominant type
        gen = os.path.join(BUILD, "gguf-gen")
        if os.path.exists(gen):
            model = os.path.join(tmp, "tiny.gguf")
            g = subprocess.run([gen, "--out", model, "--shape", "tiny", "--type", "Q8_0",
                                "--seed", "3"], capture_output=True, text=True, timeout=120)
            check(g.returncode == 0, f"gguf-gen: {g.stderr}")
            r = run("models", "inspect", model)
            check(r.returncode == 0, r.stderr)
            # 2 layers * 7 matrices + token_embd + output are Q8_0; 2*2 + 1 norms are F32
            check(field(r.stdout, "tensors") == "21 (F32: 5, Q8_0: 16)", r.stdout)
            check(field(r.stdout, "dominant type") == "Q8_0", r.stdout)
            check(field(r.stdout, "vocab size") == "512", r.stdout)
            check(field(r.stdout, "rope base") == "10000", r.stdout)
            check(field(r.stdout, "name") == "tiny", r.stdout)
            sha = field(r.stdout, "sha256")
            # the same seed gives the same bytes; another seed does not
            again = os.path.join(tmp, "again.gguf")
            for seed, same in (("3", True), ("4", False)):
                g = subprocess.run([gen, "--out", again, "--shape", "tiny", "--type", "Q8_0",
                                    "--seed", seed], capture_output=True, text=True, timeout=120)
                check(g.returncode == 0, g.stderr)
                r = run("models", "inspect", again)
                check((field(r.stdout, "sha256") == sha) == same, f"seed {seed}: {r.stdout}")
            # a real vocabulary sets the vocab size; tied embeddings drop output.weight
            g = subprocess.run([gen, "--out", again, "--shape", "tiny", "--tied", "--vocab-from",
                                os.path.join(SHARED, "models", "llama-2-tiny-random.gguf")],
                               capture_output=True, text=True, timeout=120)
            check(g.returncode == 0, g.stderr)
            r = run("models", "inspect", again)
            check(field(r.stdout, "vocab size") == "32000", r.stdout)
            check(field(r.stdout, "tensors") == "20 (F32: 20)", r.stdout)
    finally:
        shutil.rmtree(tmp)
    print("ok")


if __name__ == "__main__":
    main()
