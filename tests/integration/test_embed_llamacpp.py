"""bl_embed against llama.cpp (the prebuilt CPU build node-llama-cpp ships).

What bl_embed promises is llama.cpp's pooling MEAN followed by llama-server's
default L2 normalisation: the mean over the text's tokens of the final hidden
state (after the output norm), scaled to unit length. node-llama-cpp 3.22.1
cannot ask for MEAN: its embedding context takes the model's pooling type,
and these generative files declare none, so getEmbeddingFor(text) returns
the LAST token's hidden state, unnormalised (llama_get_embeddings_ith(-1)).
tests/node-llama/embed_oracle.mjs therefore takes every token's hidden state
from llama.cpp (the getEmbeddingFor of the prefix ending at it; attention is
causal, so that is the token's state in the whole text) and this test
averages and normalises them, then compares with bl_embed through the
engine's shared library (ctypes). The direct getEmbeddingFor(text) is
checked to be the last of those states (so the oracle's premise holds) and
its cosine to bl_embed is printed, to show how far llama.cpp's default for
these models is from what we serve.

Tolerance: cosine >= 0.9999 per text (and the token ids identical). Both
sides compute in F32 with an F16 KV cache (and 8-bit activations for Q8_0
weights, quantized the same way); only the order of float sums differs,
which moves a vector by 1e-6..1e-5 relative (measured below), so 1 - cos
stays near 1e-9..1e-7. 1e-4 leaves room for other CPUs' kernels while a real
mistake (pooling the last token, or no output norm) costs far more: the
last-token vector is asserted to miss the bound on every multi-token text.
"""
import ctypes
import json
import math
import os
import subprocess
import sys
import tempfile

SRC = os.environ.get("BALLAST_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BALLAST_BUILD", os.path.join(SRC, "build"))
SHARED = os.environ.get("BALLAST_SHARED", os.path.join(SRC, "..", "shared"))
NODE_DIR = os.path.join(SRC, "tests", "node-llama")
GGUF_GEN = os.path.join(BUILD, "gguf-gen")
MIN_COS = 0.9999
N_CTX = 1024

TEXTS = [
    "Once upon a time, there was a little girl named Lily.",
    "Tom was sad.",
    "Hi",
    "",
    "A café, a ☕ and \"quotes\" with <s> spelled out.",
    " ".join(["The little dog ran to the park and played with the big red ball."] * 6),
]

failed = False


def check(cond, msg):
    global failed
    if not cond:
        print("FAIL:", msg)
        failed = True


def reexec_with_asan():
    """A sanitizer build's library needs the ASan runtime loaded first."""
    for cc, lib in (("clang", "libclang_rt.asan-x86_64.so"), ("gcc", "libasan.so")):
        try:
            rt = subprocess.run([cc, f"-print-file-name={lib}"], capture_output=True,
                                text=True).stdout.strip()
        except OSError:
            continue
        if os.path.isabs(rt) and os.path.exists(rt):
            env = dict(os.environ, LD_PRELOAD=rt, BL_ASAN_PRELOADED="1",
                       BL_ASAN_OPTIONS_WAS=os.environ.get("ASAN_OPTIONS", ""),
                       ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0")
            os.execve(sys.executable, [sys.executable, *sys.argv], env)
    print("FAIL: the engine library needs the ASan runtime, which was not found")
    sys.exit(1)


def child_env():
    """The environment for gguf-gen and node: without the preloaded runtime."""
    env = dict(os.environ)
    if env.pop("BL_ASAN_PRELOADED", None):
        env.pop("LD_PRELOAD", None)
        env["ASAN_OPTIONS"] = env.pop("BL_ASAN_OPTIONS_WAS", "")
    return env


class Engine:
    class ModelParams(ctypes.Structure):
        _fields_ = [("n_threads", ctypes.c_int), ("isa", ctypes.c_int)]

    class CtxParams(ctypes.Structure):
        _fields_ = [("n_ctx", ctypes.c_uint32)]

    def __init__(self, path):
        try:
            self.lib = ctypes.CDLL(path)
        except OSError as e:
            if "__asan" not in str(e) or os.environ.get("BL_ASAN_PRELOADED"):
                raise
            reexec_with_asan()

    def embed(self, model, texts):
        """[(token ids, vector)] for each text, or raises."""
        lib, err = self.lib, ctypes.create_string_buffer(512)
        m, c = ctypes.c_void_p(), ctypes.c_void_p()
        if lib.bl_model_load(model.encode(), ctypes.byref(self.ModelParams(2, 0)),
                             ctypes.byref(m), err, 512):
            raise RuntimeError(f"{model}: load: {err.value!r}")
        out = []
        try:
            if lib.bl_ctx_new(m, ctypes.byref(self.CtxParams(N_CTX)), ctypes.byref(c), err, 512):
                raise RuntimeError(f"{model}: context: {err.value!r}")
            for text in texts:
                b = text.encode()
                ids, n = (ctypes.c_int32 * N_CTX)(), ctypes.c_size_t()
                rc = lib.bl_tokenize(m, b, len(b), True, False, ids, N_CTX, ctypes.byref(n))
                if rc:
                    raise RuntimeError(f"{model}: tokenize {text!r}: {rc}")
                vec, n_tok = (ctypes.c_float * 8192)(), ctypes.c_size_t()
                rc = lib.bl_embed(c, b, len(b), vec, 8192, ctypes.byref(n_tok))
                if rc:
                    raise RuntimeError(f"{model}: bl_embed {text!r}: {rc}")
                check(n_tok.value == n.value, f"{text!r}: bl_embed counted {n_tok.value} "
                      f"tokens, bl_tokenize {n.value}")
                out.append((list(ids[:n.value]), vec))
        finally:
            lib.bl_ctx_free(c)
            lib.bl_model_free(m)
        return out


def unit(v):
    s = math.sqrt(sum(x * x for x in v))
    return [x / s for x in v]


def mean_pool(rows):
    return unit([sum(col) for col in zip(*rows)])


def cos(a, b):
    return sum(x * y for x, y in zip(a, b))


def main():
    node_mod = os.path.join(NODE_DIR, "node_modules", "node-llama-cpp")
    if not os.path.isdir(node_mod):
        print(f"FAIL: llama.cpp is not installed: no {node_mod} (run npm ci in {NODE_DIR})")
        sys.exit(1)
    if not os.path.exists(GGUF_GEN):
        print(f"FAIL: no {GGUF_GEN}")
        sys.exit(1)
    engine = Engine(os.path.join(BUILD, "libballast-engine.so"))
    with tempfile.TemporaryDirectory(prefix="bl-embed-") as tmp:
        gen = os.path.join(tmp, "tiny-Q8_0.gguf")
        # q and k at std 0.25 peak attention as in a trained model
        p = subprocess.run([GGUF_GEN, "--out", gen, "--shape", "tiny", "--type", "Q8_0",
                            "--seed", "7", "--qk-std", "0.25"], capture_output=True, text=True,
                           env=child_env())
        if p.returncode:
            print(f"FAIL: gguf-gen: {p.stderr}")
            sys.exit(1)
        models = [os.path.join(SHARED, "models", "stories260K.gguf"), gen]
        cases = [{"model": mp, "n_ctx": N_CTX, "texts": TEXTS} for mp in models]
        p = subprocess.run(["node", os.path.join(NODE_DIR, "embed_oracle.mjs")], cwd=NODE_DIR,
                           input=json.dumps(cases), capture_output=True, text=True, timeout=120,
                           env=child_env())
        if p.returncode:
            print(f"FAIL: embed_oracle.mjs: {p.stderr[-2000:]}")
            sys.exit(1)
        oracle = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
        check(len(oracle) == len(models) * len(TEXTS), f"oracle gave {len(oracle)} lines")
        for mp in models:
            ours = engine.embed(mp, TEXTS)
            name = os.path.basename(mp)
            for (ids, vec), ref in zip(ours, [o for o in oracle if o["model"] == mp]):
                text = ref["text"]
                check(ids == ref["tokens"], f"{name} {text!r}: tokens {ids} != "
                      f"llama.cpp's {ref['tokens']}")
                check(not ref["add_eos"], f"{name}: llama.cpp appends EOS; bl_embed does not")
                want = mean_pool(ref["hidden"])
                got = list(vec[:len(want)])
                c = cos(got, want)
                diff = max(abs(x - y) for x, y in zip(got, want))
                # the oracle's premise: getEmbeddingFor(text) is its last token's state
                # (it returns [] for "": bl_embed embeds BOS alone, as llama-server does)
                last = ref["hidden"][-1]
                if text:
                    same = max(abs(x - y) for x, y in zip(ref["direct"], last))
                    check(same < 1e-5, f"{name} {text!r}: getEmbeddingFor(text) is not the "
                          f"last token's state (max diff {same:.2e}): pooling is not NONE")
                c_last = cos(got, unit(last))
                print(f"{name} {len(ids):3d} tokens {text[:30]!r:34}: 1 - cos {1 - c:.2e}, "
                      f"max |diff| {diff:.2e}; llama.cpp default (last token) cos {c_last:.4f}")
                check(abs(math.sqrt(cos(got, got)) - 1) < 1e-5, f"{name} {text!r}: not unit")
                check(c >= MIN_COS, f"{name} {text!r}: cosine {c:.7f} < {MIN_COS}")
                if len(ids) >= 3:
                    check(c_last < MIN_COS, f"{name} {text!r}: the last token's state alone "
                          f"passes the bound (cos {c_last:.6f}): the test cannot tell")
    if failed:
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
