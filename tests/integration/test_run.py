"""`ballast run` end to end: the real binary on a real model.

The greedy completion must equal llama.cpp's (joined token pieces from
models/llamacpp-reference.json); stdout holds only the completion; errors
exit 1 with a message on stderr.
"""
import json
import os
import subprocess
import sys

BIN = os.environ["BALLAST_BIN"]
SHARED = os.environ["BALLAST_SHARED"]
MODELS = os.path.join(SHARED, "models")


def run(*args, timeout=120):
    return subprocess.run([BIN, "run", *args], capture_output=True, timeout=timeout)


def reference(model, prompt):
    with open(os.path.join(MODELS, "llamacpp-reference.json")) as f:
        ref = json.load(f)
    for m in ref["models"]:
        if m["file"] == model:
            for r in m["results"]:
                if r["prompt"] == prompt:
                    return b"".join(bytes.fromhex(h) for h in r["generated_pieces_hex"])
    raise AssertionError(f"no reference for {model} / {prompt}")


def check(cond, msg):
    if not cond:
        print("FAIL:", msg)
        sys.exit(1)


def main():
    stories = os.path.join(MODELS, "stories260K.gguf")
    for model in ("stories260K.gguf", "llama-2-tiny-random.gguf"):
        for prompt in ("Once upon a time", "Hello, world!"):
            want = reference(model, prompt)
            for isa in ([], ["--isa", "scalar"]):
                p = run("-m", os.path.join(MODELS, model), "-p", prompt, "-n", "32", "--temp",
                        "0", "-t", "2", *isa)
                check(p.returncode == 0, f"{model}: exit {p.returncode}: {p.stderr!r}")
                check(p.stdout == want, f"{model} {isa} '{prompt}': stdout {p.stdout!r}, "
                      f"llama.cpp {want!r}")
                check(b"tok/s" in p.stderr, f"no speed on stderr: {p.stderr!r}")

    # the prompt from a file, and a reverse prompt that stops early
    want = reference("stories260K.gguf", "Once upon a time")
    path = os.path.join(os.environ.get("BALLAST_BUILD", "/tmp"), "test_run_prompt.txt")
    with open(path, "w") as f:
        f.write("Once upon a time")
    p = run("-m", stories, "-f", path, "-n", "32", "--temp", "0", "-r", "Lily")
    os.unlink(path)
    check(p.returncode == 0, f"-f: exit {p.returncode}: {p.stderr!r}")
    check(p.stdout == want[:want.index(b"Lily")], f"-r Lily: {p.stdout!r}")

    # same seed, same text at temperature 0.8; the seed is printed
    outs = [run("-m", stories, "-p", "Once upon a time", "-n", "24", "--seed", "7") for _ in (0, 1)]
    check(all(o.returncode == 0 for o in outs), "seeded runs failed")
    check(outs[0].stdout == outs[1].stdout and outs[0].stdout, "same seed, different text")
    check(b"seed 7" in outs[0].stderr, f"seed not printed: {outs[0].stderr!r}")

    # errors: exit 1 with a message naming the problem
    p = run("-m", "/nonexistent/model.gguf", "-p", "hi")
    check(p.returncode == 1, f"bad path: exit {p.returncode}")
    check(b"/nonexistent/model.gguf" in p.stderr, f"bad path message: {p.stderr!r}")
    check(p.stdout == b"", "bad path wrote to stdout")
    p = run("-m", stories, "-p", "Once upon a time", "-c", "3")
    check(p.returncode == 1 and b"context" in p.stderr, f"small context: {p.stderr!r}")
    p = run("-m", stories, "-p", "x", "--temp", "hot")
    check(p.returncode == 1 and b"--temp" in p.stderr, f"bad --temp: {p.stderr!r}")
    p = run("-m", stories)
    check(p.returncode == 1 and b"-p" in p.stderr, f"no prompt: {p.stderr!r}")
    p = run("--bogus")
    check(p.returncode == 1 and b"--bogus" in p.stderr, f"unknown flag: {p.stderr!r}")
    # bench-engine prints its measurements as key: value lines
    p = subprocess.run([BIN, "bench-engine", "-m", stories, "-t", "1", "--prompt-tokens", "16",
                        "--gen-tokens", "8"], capture_output=True, timeout=300)
    check(p.returncode == 0, f"bench-engine: exit {p.returncode}: {p.stderr!r}")
    vals = dict(line.split(": ", 1) for line in p.stdout.decode().splitlines() if ": " in line)
    for key in ("cpu", "isa", "load_ms", "prefill_tok_s", "decode_tok_s", "peak_rss_mb",
                "weight_bytes_per_token", "mem_read_bw_gb_s", "decode_bw_fraction"):
        check(key in vals, f"bench-engine: no {key} in {p.stdout!r}")
    check(float(vals["decode_tok_s"]) > 0 and float(vals["mem_read_bw_gb_s"]) > 0,
          f"bench-engine values: {vals}")
    check(int(vals["weight_bytes_per_token"]) > 1000000, f"weight bytes: {vals}")
    p = subprocess.run([BIN, "bench-engine", "-m", "/nonexistent.gguf"], capture_output=True,
                       timeout=60)
    check(p.returncode == 1 and b"/nonexistent.gguf" in p.stderr, f"bench bad path: {p.stderr!r}")
    print("ok")


if __name__ == "__main__":
    main()
