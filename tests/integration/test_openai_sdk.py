"""The official openai npm SDK (tests/node) as a real client of the daemon:
chat (plain and streamed), completions, embeddings, models and an error,
first with every target healthy, then with the first tier dead."""
import json
import os
import shutil
import subprocess

from gw import Ballast, provider, run_tests, start_mock

NODE_DIR = os.path.join(os.environ.get("BALLAST_SRC", "."), "tests", "node")


def run_sdk(b):
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "node is not installed (scripts/deps.sh --test installs it)"
    assert os.path.isdir(os.path.join(NODE_DIR, "node_modules", "openai")), \
        "the openai SDK is not installed (scripts/test.sh runs npm ci in tests/node)"
    r = subprocess.run([node, "openai_sdk.mjs"], cwd=NODE_DIR, capture_output=True, timeout=60,
                       env=dict(os.environ, BALLAST_URL=b.url + "/v1"))
    assert r.returncode == 0, r.stderr.decode() + b.log_text()[-3000:]
    return json.loads(r.stdout)


def check(out, who, degraded):
    text = "Hello from %s (model model-%s)." % (who, who)
    assert out["chat"]["content"] == text, out
    assert out["chat"]["backend"] == "%s/model-%s" % (who, who)
    assert (out["chat"]["degraded"] == "true") == degraded
    assert out["chat"]["usage"]["total_tokens"] > 0
    assert out["stream"]["text"] == text and out["stream"]["finish_reason"] == "stop"
    assert out["stream"]["usage"]["total_tokens"] > 0  # stream_options.include_usage
    assert out["completion"]["text"]
    assert out["embeddings"] == {"n": 2, "dim": 8}
    assert out["models"] == ["gpt-4o-mini"]
    assert out["unknown_model"] == {"status": 404, "code": "model_not_found",
                                    "type": "invalid_request_error"}, out


def test_openai_sdk_through_failover():
    a, bm = start_mock("a"), start_mock("b")
    cfg = ("providers:\n" + provider("a", a.port) + provider("b", bm.port) +
           "routes:\n  - model: gpt-4o-mini\n    tiers:\n"
           "      - [{provider: a, model: model-a}]\n      - [{provider: b, model: model-b}]\n")
    b = Ballast(cfg)
    try:
        check(run_sdk(b), "a", False)
        a.stop()
        check(run_sdk(b), "b", True)
    finally:
        b.stop()
        a.stop()
        bm.stop()


if __name__ == "__main__":
    run_tests([test_openai_sdk_through_failover])
