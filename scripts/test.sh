#!/usr/bin/env bash
# Fresh Debian 12 -> every test. Installs what the tests need, builds the
# release tree (gcc) and the ASan+UBSan+libFuzzer tree (clang), runs the whole
# ctest suite in both, and ends with one "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test || exit 1
# Test clients from npm (never part of the product). node-llama-cpp lists
# optional per-platform packages the registry here does not all serve, so
# its folder uses `npm install --omit=optional` against the committed lockfile
# rather than `npm ci`.
(cd tests/node && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) || exit 1
(cd tests/node-llama && npm install --ignore-scripts --omit=optional --no-audit --no-fund \
    --loglevel=error) || exit 1
# The coding agents (Codex CLI, Claude Code; ~800 MB with their native
# binaries). No install scripts: tests/agents/agents.py runs the binaries from
# their platform packages.
(cd tests/agents && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) || exit 1
scripts/build.sh release || exit 1
scripts/build.sh asan || exit 1

pass=0; fail=0
run_suite() {
    local dir=$1 log
    log=$(mktemp)
    ctest --test-dir "$dir" --output-on-failure -j2 --timeout 600 2>&1 | tee "$log"
    # ctest: "100% tests passed, 0 tests failed out of 12"
    local line p f total
    line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1)
    if [ -z "$line" ]; then fail=$((fail + 1)); rm -f "$log"; return; fi
    f=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$line")
    p=$((total - f))
    pass=$((pass + p)); fail=$((fail + f))
    rm -f "$log"
}
echo "=== release build (gcc) ==="
run_suite build
echo "=== ASan+UBSan build (clang) ==="
run_suite build-asan
echo
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
