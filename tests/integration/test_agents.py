"""The coding agents themselves, from npm, as a new user would run them,
through the real daemon with their own provider dead:

  Codex CLI (OpenAI Responses API only) -> its OpenAI target refuses
  connections -> ballast answers from an Anthropic mock, translated;
  Claude Code (Anthropic Messages API only) -> its Anthropic target refuses
  connections -> ballast answers from an OpenAI chat mock, translated.

Each mock is scripted like a model that uses tools: the first answer calls
the agent's own command tool (Codex's exec_command, Claude Code's Bash) to
create a file, the answer after the tool's result is a final message. The
test asserts the agent ran the tool (the file exists with its content) and
printed the final message. Nothing leaves 127.0.0.1 (tests/agents/agents.py
sets the agents up so: no update checks, telemetry or retries)."""
import os
import shutil
import sys
import tempfile

from gw import Ballast, free_port, run_tests, start_mock
from harness import request

SRC = os.environ.get("BALLAST_SRC", ".")
sys.path.insert(0, os.path.join(SRC, "tests", "agents"))
import agents  # noqa: E402


def require_agents():
    ok, why = agents.available()
    assert ok, why + " (scripts/test.sh runs npm ci in tests/agents)"



def test_codex_through_an_openai_outage():
    require_agents()
    an = start_mock("an")
    wd = tempfile.mkdtemp(prefix="bl-codex-wd-")
    cfg = ("providers:\n"
           "  - {name: openai, type: openai, api: responses, base_url: 'http://127.0.0.1:%d/v1'}\n"
           "  - {name: claude, type: anthropic, base_url: 'http://127.0.0.1:%d/v1'}\n"
           "routes:\n  - model: gpt-5-codex\n    tiers:\n"
           "      - [{provider: openai, model: gpt-5-codex}]\n"
           "      - [{provider: claude, model: claude-sonnet-4-5}]\n" % (free_port(), an.port))
    b = Ballast(cfg)
    try:
        an.set_tool("exec_command", {"cmd": "printf codex-was-here > made-by-codex.txt"})
        rc, out, err = agents.run_codex(b.url, wd, "Create the file made-by-codex.txt.", timeout=90)
        made = os.path.join(wd, "made-by-codex.txt")
        assert os.path.exists(made), (rc, out, err[-3000:], b.log_text()[-3000:])
        with open(made) as f:
            assert f.read() == "codex-was-here"
        assert rc == 0 and "Done:" in out, (rc, out, err[-2000:])
        # both turns went to the Anthropic mock, as Anthropic requests
        assert an.stats()["requests"] >= 2
        last = request(an.port, "GET", "/_mock/last").json()
        assert last["path"] == "/v1/messages" and "anthropic-version" in last["headers"], last
    finally:
        b.stop()
        an.stop()
        shutil.rmtree(wd, ignore_errors=True)


def test_claude_code_through_an_anthropic_outage():
    require_agents()
    oa = start_mock("oa")
    wd = tempfile.mkdtemp(prefix="bl-claude-wd-")
    cfg = ("providers:\n"
           "  - {name: anthropic, type: anthropic, base_url: 'http://127.0.0.1:%d/v1'}\n"
           "  - {name: openai, type: openai, base_url: 'http://127.0.0.1:%d/v1'}\n"
           "routes:\n  - model: claude-sonnet-4-5\n    aliases: [claude-haiku-4-5]\n    tiers:\n"
           "      - [{provider: anthropic, model: claude-sonnet-4-5}]\n"
           "      - [{provider: openai, model: gpt-4.1}]\n" % (free_port(), oa.port))
    b = Ballast(cfg)
    try:
        oa.set_tool("Bash", {"command": "printf claude-was-here > made-by-claude.txt",
                              "description": "create the file"})
        rc, out, err = agents.run_claude(b.url, wd, "Create the file made-by-claude.txt.",
                                         timeout=90, model="claude-sonnet-4-5")
        made = os.path.join(wd, "made-by-claude.txt")
        assert os.path.exists(made), (rc, out, err[-3000:], b.log_text()[-3000:])
        with open(made) as f:
            assert f.read() == "claude-was-here"
        assert rc == 0 and "Done:" in out, (rc, out, err[-2000:])
        last = request(oa.port, "GET", "/_mock/last").json()
        assert last["path"] == "/v1/chat/completions", last
    finally:
        b.stop()
        oa.stop()
        shutil.rmtree(wd, ignore_errors=True)


if __name__ == "__main__":
    run_tests([test_codex_through_an_openai_outage, test_claude_code_through_an_anthropic_outage])
