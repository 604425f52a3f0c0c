#!/usr/bin/env python3
"""`ballast check-config`: the real binary on good and bad files.

Good files print the route table on stdout and exit 0 without ever printing a
secret; bad files exit 1 with "file:line:col: message" on stderr.
"""
import os
import subprocess
import sys
import tempfile

BIN = os.environ["BALLAST_BIN"]
SRC = os.environ.get("BALLAST_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
SECRET = "sk-integration-SECRET-4711"
CLIENT_KEY = "client-key-PLAIN-0815"

failures = []


def check(cond, what, proc=None):
    if not cond:
        detail = ""
        if proc is not None:
            detail = f"\n  exit={proc.returncode}\n  stdout={proc.stdout!r}\n  stderr={proc.stderr!r}"
        failures.append(what + detail)
        print("FAIL:", what + detail)
    else:
        print("ok:", what)


def run(args, env_extra=None):
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([BIN, "check-config", *args], capture_output=True, text=True,
                          env=env, timeout=60)


GOOD = """\
listen: 127.0.0.1:18080
keys:
  - ${IT_CLIENT_KEY}
providers:
  - name: primary
    type: openai
    base_url: https://user:pw-SECRET@api.example.com/v1/
    api_key: ${IT_OPENAI_KEY}
  - name: backup
    base_url: http://127.0.0.1:9002/v1
routes:
  - model: gpt-4o-mini
    aliases: [mini]
    tiers:
      - [{provider: primary, model: gpt-4o-mini}]
      - [{provider: backup, model: llama, weight: 2}, {provider: primary, model: nano}]
    hedge: {delay_ms: 0}
    max_attempts: 3
"""

def write(d, name, text):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def main():
    env = {"IT_OPENAI_KEY": SECRET, "IT_CLIENT_KEY": CLIENT_KEY}
    with tempfile.TemporaryDirectory() as d:
        good = write(d, "good.yaml", GOOD)
        for args in ([good], ["-c", good]):
            p = run(args, env)
            check(p.returncode == 0, f"good file exits 0 ({' '.join(args[:-1]) or 'FILE'})", p)
            out = p.stdout
            check("listen: 127.0.0.1:18080" in out, "listen address printed", p)
            check("gpt-4o-mini (aliases: mini)" in out, "route printed", p)
            check("tier 1: primary/gpt-4o-mini weight=1" in out, "tier 1 printed", p)
            check("tier 2: backup/llama weight=2, primary/nano weight=1" in out,
                  "tier 2 printed", p)
            check("base_url: https://api.example.com/v1\n" in out, "userinfo stripped", p)
            check("api_key: set" in out, "api_key reported as set", p)
            check("attempts: 3" in out, "attempts printed", p)
            check(out.rstrip().endswith("configuration OK"), "ends with configuration OK", p)
            for s in (SECRET, CLIENT_KEY, "pw-SECRET"):
                check(s not in out and s not in p.stderr, f"secret {s[:10]}... not printed", p)

        # the shipped examples are valid
        for ex in ("ballast.yaml", "full.yaml"):
            p = run([os.path.join(SRC, "examples", ex)])
            check(p.returncode == 0 and "configuration OK" in p.stdout, f"examples/{ex} passes", p)

        bad_cases = [
            # unknown key with a suggestion
            ("retry:\n  max_atempts: 3\n" + GOOD, {},
             "2:3: unknown key 'max_atempts' in retry (did you mean 'max_attempts'?)"),
            # missing environment variable, column at the '${'
            (GOOD, {"IT_OPENAI_KEY": None},
             "8:14: environment variable IT_OPENAI_KEY is not set"),
            # unknown provider with a suggestion
            (GOOD.replace("provider: backup", "provider: bakup"), {},
             "16:21: unknown provider 'bakup' (did you mean 'backup'?)"),
            # YAML syntax error
            ("listen: [1, 2\n", {}, "2:1: YAML syntax error: did not find expected ',' or ']'"),
            # bad base_url, coming from the environment: not echoed
            (GOOD.replace("http://127.0.0.1:9002/v1", "${IT_OPENAI_KEY}"), {},
             "10:15: base_url a value from the environment must start with http:// or https://"),
        ]
        for i, (text, env_over, want) in enumerate(bad_cases):
            path = write(d, f"bad{i}.yaml", text)
            full_env = dict(os.environ)
            full_env.update(env)
            for k, v in env_over.items():
                if v is None:
                    full_env.pop(k, None)
                else:
                    full_env[k] = v
            p = subprocess.run([BIN, "check-config", path], capture_output=True, text=True,
                               env=full_env, timeout=60)
            check(p.returncode == 1, f"bad file {i} exits 1", p)
            check(p.stderr.startswith(f"{path}:{want}"), f"bad file {i}: {want}", p)
            check(p.stdout == "", f"bad file {i}: nothing on stdout", p)
            for s in (SECRET, CLIENT_KEY, "pw-SECRET"):
                check(s not in p.stderr, f"bad file {i}: secret not in message", p)

        p = run([os.path.join(d, "missing.yaml")])
        check(p.returncode == 1 and "cannot open" in p.stderr, "missing file exits 1", p)
        p = run([])
        check(p.returncode == 2, "no file is a usage error", p)
        p = run(["--help"])
        check(p.returncode == 0 and "check-config" in p.stdout, "--help", p)

    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
