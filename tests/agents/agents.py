"""Run the real coding agents (Codex CLI, Claude Code) against a local server.

    from agents import run_codex, run_claude, available
    ok, why = available()                  # both binaries installed?
    rc, out, err = run_codex("http://127.0.0.1:8080", workdir, "Create hello.txt", 60)
    rc, out, err = run_claude("http://127.0.0.1:8080", workdir, "Create hello.txt", 60)

Both agents come from npm (package.json / package-lock.json next to this
file; `npm ci` here installs them, ~800 MB). They are looked up in
$BALLAST_AGENTS_DIR/node_modules if set, else in this folder's node_modules.
Node itself is only needed by the codex launcher (bin/codex.js).

Each run gets a fresh temporary HOME (and CODEX_HOME), a scrubbed
environment (no real keys, no proxies), stdin from /dev/null and its own
process group, killed whole on timeout. The final agent message is printed on
stdout by both agents; progress/transcript goes to stderr (codex) or nowhere
(claude -p). Exit code 0 does NOT prove success: codex exits 0 with empty
stdout if the stream never had a response.output_item.done, so assert on
stdout and on the side effect (the file the agent was told to create).

Settings chosen so that nothing leaves 127.0.0.1 (checked with strace: only
the base_url's port is connected to, no DNS lookups), and so that failures
are fast instead of retried for minutes.
"""
import os
import shutil
import signal
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

# Exact versions the findings were made with (also pinned in package.json).
CODEX_VERSION = "0.169.0"
CLAUDE_VERSION = "2.1.331"

CODEX_MODEL = "gpt-5-codex"        # what a Codex user would type after -m
CLAUDE_MODEL = None                # None = Claude Code's default (claude-opus-5-5)
CODEX_PROVIDER_ID = "ballast"
CODEX_KEY_ENV = "BALLAST_AGENT_KEY"


def _node_modules():
    base = os.environ.get("BALLAST_AGENTS_DIR") or HERE
    return os.path.join(base, "node_modules")


def codex_bin():
    """The npm launcher (node script that execs the platform binary)."""
    return os.path.join(_node_modules(), ".bin", "codex")


def claude_bin():
    """The native claude binary. bin/claude.exe is a 500-byte stub until the
    package's postinstall has copied the platform binary over it (it does not
    run under --ignore-scripts), so fall back to the platform package."""
    nm = _node_modules()
    main = os.path.join(nm, "@anthropic-ai", "claude-code", "bin", "claude.exe")
    try:
        if os.path.getsize(main) > 1 << 20:
            return main
    except OSError:
        pass
    return os.path.join(nm, "@anthropic-ai", "claude-code-linux-x64", "claude")


def available():
    """(True, "") when both agents can be run, else (False, reason)."""
    cx = codex_bin()
    if not os.access(cx, os.X_OK):
        return False, "codex not installed (%s); run npm ci in %s" % (cx, HERE)
    if shutil.which("node") is None:
        return False, "node not on PATH (the codex launcher is a node script)"
    native = os.path.join(_node_modules(), "@openai", "codex-linux-x64")
    if not os.path.isdir(native):
        return False, "@openai/codex-linux-x64 missing (installed with --omit=optional?)"
    cl = claude_bin()
    if not os.access(cl, os.X_OK) or os.path.getsize(cl) < (1 << 20):
        return False, "claude native binary missing (%s)" % cl
    return True, ""


def _base_env(home):
    """Scrubbed environment: nothing from the caller that names a provider,
    a key, a proxy or an agent config, so runs are hermetic."""
    keep = ("PATH", "LANG", "LC_ALL", "TERM", "TMPDIR", "TZ")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["HOME"] = home
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env["no_proxy"] = env["NO_PROXY"]
    return env


def _run(argv, env, cwd, timeout):
    """(rc, stdout, stderr); rc 124 and a note on stderr after a timeout."""
    p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
        rc = 124
        err += b"\n[agents.py: timed out after %gs]\n" % timeout
    return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


SLIM_CODEX_INSTRUCTIONS = (
    "You are a coding agent in a terminal. Run shell commands with the exec_command tool. "
    "When the task is done, reply with a short final message.\n")


def codex_argv(base_url, workdir, prompt, model=CODEX_MODEL, sandbox="none",
               web_search=None, extra_args=(), instructions_file=None):
    """The codex exec command line. base_url is the server root or its /v1;
    Codex posts to <base_url>/responses, so /v1 is appended when missing.

    sandbox: "none" = --dangerously-bypass-approvals-and-sandbox (works
    everywhere); "workspace-write" = the bundled bubblewrap sandbox (needs
    user namespaces; works in this container). The default read-only sandbox
    cannot create files, so the tool call "succeeds" with an error output.
    web_search: None keeps Codex's default (a hosted {"type": "web_search"}
    tool in every request); "disabled" removes it.
    instructions_file: replaces Codex's ~17 KB base prompt (slim mode).
    """
    url = base_url.rstrip("/")
    if not url.endswith("/v1"):
        url += "/v1"
    p = "model_providers.%s." % CODEX_PROVIDER_ID
    argv = [codex_bin(), "exec",
            "--skip-git-repo-check", "--ephemeral", "--color", "never",
            "--strict-config",  # a misspelt -c key is an error, not ignored
            "-c", p + 'name="ballast"',
            "-c", p + 'base_url="%s"' % url,
            "-c", p + 'wire_api="responses"',
            "-c", p + 'env_key="%s"' % CODEX_KEY_ENV,
            # one attempt: failover is ballast's job, and a dead server must
            # fail in a second, not after 5 backoffs (25 s) or forever
            "-c", p + "request_max_retries=0",
            "-c", p + "stream_max_retries=0",
            "--disable", "unbounded_connection_retries",
            "-c", "model_provider=%s" % CODEX_PROVIDER_ID,
            # no DNS / no traffic to chatgpt.com, ab.chatgpt.com, github.com
            "-c", "analytics.enabled=false",
            "-c", "check_for_update_on_startup=false",
            "--disable", "plugins",
            "-m", model, "-C", workdir]
    if web_search is not None:
        argv += ["-c", 'web_search="%s"' % web_search]
    if instructions_file:
        argv += ["-c", 'model_instructions_file="%s"' % instructions_file,
                 "--disable", "multi_agent", "--disable", "goals"]
    if sandbox == "none":
        argv.append("--dangerously-bypass-approvals-and-sandbox")
    else:
        argv += ["-s", sandbox, "-c", 'approval_policy="never"']
    argv += list(extra_args)
    argv.append(prompt)
    return argv


def run_codex(base_url, workdir, prompt, timeout=60, model=CODEX_MODEL, api_key="dummy",
              sandbox="none", web_search=None, slim=False, extra_args=()):
    """Run `codex exec` once against base_url. Returns (rc, stdout, stderr).
    stdout is the agent's final message (e.g. "All done.\\n").
    slim=True shrinks the request from ~40 KB to ~9 KB (own short base
    prompt; no web_search, multi_agent namespace or goal tools) for runs
    answered by a small local model; tools keep exec_command."""
    tmp = tempfile.mkdtemp(prefix="bl-codex-")
    try:
        env = _base_env(os.path.join(tmp, "home"))
        env["CODEX_HOME"] = os.path.join(tmp, "codex-home")
        env[CODEX_KEY_ENV] = api_key
        os.makedirs(env["HOME"])
        os.makedirs(env["CODEX_HOME"])
        instr = None
        if slim:
            instr = os.path.join(tmp, "instructions.md")
            with open(instr, "w") as f:
                f.write(SLIM_CODEX_INSTRUCTIONS)
            if web_search is None:
                web_search = "disabled"
        argv = codex_argv(base_url, workdir, prompt, model, sandbox, web_search, extra_args,
                          instr)
        return _run(argv, env, workdir, timeout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def claude_argv(prompt, model=CLAUDE_MODEL, allowed_tools="Bash,Write,Edit,Read",
                extra_args=(), slim=False):
    """The claude -p command line. The prompt comes right after -p because
    --allowedTools takes a variadic list that would swallow a later one."""
    argv = [claude_bin(), "-p", prompt,
            "--allowedTools", allowed_tools,  # root may not use --dangerously-skip-permissions
            "--no-session-persistence"]
    if model:
        argv += ["--model", model]
    if slim:
        argv.append("--bare")  # tools Bash/Edit/Read only, request ~5 KB instead of ~50 KB
    argv += list(extra_args)
    return argv


def run_claude(base_url, workdir, prompt, timeout=60, model=CLAUDE_MODEL, api_key="dummy",
               allowed_tools="Bash,Write,Edit,Read", max_retries=0, slim=False, extra_args=()):
    """Run `claude -p` once against base_url (the server root: Claude Code
    posts to <base_url>/v1/messages?beta=true). Returns (rc, stdout, stderr).
    stdout is the final message; API errors are printed on stdout too
    ("API Error: 400 ...") with rc 1. slim=True adds --bare (3 tools, short
    system prompt) for runs answered by a small local model."""
    url = base_url.rstrip("/")
    if url.endswith("/v1"):
        url = url[:-3]
    tmp = tempfile.mkdtemp(prefix="bl-claude-")
    try:
        env = _base_env(os.path.join(tmp, "home"))
        os.makedirs(env["HOME"])
        env["ANTHROPIC_BASE_URL"] = url
        env["ANTHROPIC_API_KEY"] = api_key  # sent as x-api-key
        # without it: HEAD <base>/api/hello and DNS lookups for telemetry hosts
        env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1"
        env["DISABLE_AUTOUPDATER"] = "1"
        # default retries back off for minutes on 5xx/529; ballast does failover
        env["CLAUDE_CODE_MAX_RETRIES"] = str(max_retries)
        argv = claude_argv(prompt, model, allowed_tools, extra_args, slim)
        return _run(argv, env, workdir, timeout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    # Manual check: python3 agents.py codex|claude BASE_URL [PROMPT]
    import sys
    which, base = sys.argv[1], sys.argv[2]
    prompt = sys.argv[3] if len(sys.argv) > 3 else "Create a file hello.txt containing hello"
    wd = tempfile.mkdtemp(prefix="bl-agent-wd-")
    fn = run_codex if which == "codex" else run_claude
    rc, out, err = fn(base, wd, prompt, 60)
    print("rc=%d\n--- stdout\n%s--- stderr\n%s--- workdir %s: %s"
          % (rc, out, err[-3000:], wd, os.listdir(wd)))
