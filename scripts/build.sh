#!/usr/bin/env bash
# Configure and build one tree.
#   scripts/build.sh                 release build in build/
#   scripts/build.sh asan            clang ASan+UBSan+libFuzzer build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
case "${1:-release}" in
release)
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build build -j"$jobs"
    ;;
asan)
    CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBL_SANITIZE=ON -DBL_FUZZ=ON \
        -DCMAKE_C_FLAGS="-O1 -g" >/dev/null
    cmake --build build-asan -j"$jobs"
    ;;
*) echo "build.sh: unknown build '$1'" >&2; exit 2 ;;
esac
