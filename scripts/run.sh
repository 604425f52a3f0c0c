#!/usr/bin/env bash
# Fresh Debian 12 -> a running gateway. Builds ballast, starts two mock
# providers on 127.0.0.1:9001/9002 (no cloud keys needed) and serves
# examples/ballast.yaml on 127.0.0.1:8080. Pass another config as $1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh release
config="${1:-examples/ballast.yaml}"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
if [ "$config" = examples/ballast.yaml ]; then
    build/tests/ballast-mock --port 9001 --name mock-a & pids+=($!)
    build/tests/ballast-mock --port 9002 --name mock-b & pids+=($!)
fi
echo "ballast: try  curl -s localhost:8080/v1/chat/completions -H 'content-type: application/json' \\"
echo "                -d '{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}'"
build/ballast serve -c "$config"
