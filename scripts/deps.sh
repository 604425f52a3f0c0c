#!/usr/bin/env bash
# The one list of what ballast needs from Debian 12.
#   scripts/deps.sh          build + run dependencies
#   scripts/deps.sh --test   also what the test suite needs (clang for the
#                            sanitizer/fuzz build, node for the SDK and agent
#                            tests, redis-server for the Redis store tests)
#   scripts/deps.sh --bench  also what bench/ needs (wrk, nginx)
set -euo pipefail

BUILD_PKGS=(build-essential cmake pkg-config
    libuv1-dev libcurl4-openssl-dev libhttp-parser-dev libjansson-dev libyaml-dev
    libssl-dev libsqlite3-dev libhiredis-dev)
TEST_PKGS=(libcmocka-dev clang libclang-rt-14-dev llvm python3 nodejs npm curl redis-server)
BENCH_PKGS=(wrk nginx-light python3 nodejs npm)

pkgs=("${BUILD_PKGS[@]}")
for a in "$@"; do
    case "$a" in
    --test) pkgs+=("${TEST_PKGS[@]}") ;;
    --bench) pkgs+=("${BENCH_PKGS[@]}" "${TEST_PKGS[@]}") ;;
    *) echo "deps.sh: unknown option $a" >&2; exit 2 ;;
    esac
done

# Skip apt entirely when everything is already there (fast re-runs, no root needed).
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node may come from outside Debian (e.g. nodesource); accept any node >= 18 with npm.
if command -v node >/dev/null && command -v npm >/dev/null; then
    filtered=()
    for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
    missing=("${filtered[@]}")
fi
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps.sh: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
