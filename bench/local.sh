#!/usr/bin/env bash
# Local fallback speed (issue 7, "Speed"): the local engine served through the
# real daemon, failing over into it, and the outage drill with numbers.
#
#   bench/local.sh                      # build dir: ./build-bench (or $BALLAST_BUILD)
#   MODELS="qwen-0.5b:Q8_0" THREADS="1" bench/local.sh
#   PARTS="refused drill" bench/local.sh    # only some parts (speed refused drill)
#
# Models are random-weight GGUF files of realistic shapes made by the repo's
# gguf-gen, cached in bench/out/ (shared with bench/engine.sh): by default
# qwen-0.5b (Qwen2.5-0.5B dims) in Q8_0 and tinyllama-1.1b (TinyLlama dims)
# in Q4_0. One run measures, printed as ratios:
#   speed    (bench/local/speed.py) for each model at each thread count:
#            1. one stream through HTTP (type: local provider, /v1/completions,
#               stream:true, temperature 0, GEN tokens) decode tok/s from the
#               first to the last token event vs `ballast bench-engine` decode
#               on the same file, threads and prompt length (>= 0.95x);
#            2. 4 concurrent streams (slots: 4): aggregate decode tok/s vs one
#               stream (>= 2.5x);
#            3. time to first token on a route whose 3 cloud tiers (two refused
#               ports, one hanging mock) have open breakers vs bench-engine's
#               prefill time for the same prompt length (<= prefill + 5 ms);
#   refused  (bench/local/refused.py) route [refused port -> mock] vs [mock],
#            non-streamed, wrk -c1, p50, with the refused target's breaker
#            kept closed and with it open (<= +1 ms);
#   drill    (bench/local/drill.py) the outage drill of
#            tests/integration/test_outage_drill.py under steady mixed load:
#            p50/p99 per phase and the time from the clouds failing to the
#            first token served locally (stories260K from ../shared/models).
# Knobs: MODELS ("qwen-0.5b:Q8_0 tinyllama-1.1b:Q4_0"), THREADS ("1 2"),
# GEN (128 tokens), REPS (4 runs per speed figure, best taken), PARTS,
# ROUNDS (3) and DURATION (2, seconds) for refused, PHASE (3, seconds) and
# DRILL_MODEL for the drill, LAT_CPU (0), NO_BUILD=1, OUT (bench/out/local).
#
# Exit status: 0 when the harness worked (whether or not targets are met),
# 1 when something broke, 2 on bad usage. Results (markdown tables) go to
# stdout, progress and details to stderr and $OUT/local.log.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE=$ROOT/bench/local
BUILD=${BALLAST_BUILD:-$ROOT/build-bench}
CACHE=$ROOT/bench/out
OUT=${OUT:-$ROOT/bench/out/local}
MODELS=${MODELS:-"qwen-0.5b:Q8_0 tinyllama-1.1b:Q4_0"}
THREADS=${THREADS:-"1 2"}
GEN=${GEN:-128}
REPS=${REPS:-4}
PARTS=${PARTS:-"speed refused drill"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-2}
PHASE=${PHASE:-3}
LAT_CPU=${LAT_CPU:-0}
NO_BUILD=${NO_BUILD:-0}
export PYTHONDONTWRITEBYTECODE=1
export BALLAST_SHARED=${BALLAST_SHARED:-$(cd "$ROOT/.." && pwd)/shared}
DRILL_MODEL=${DRILL_MODEL:-$BALLAST_SHARED/models/stories260K.gguf}

log() { echo "local.sh: $*" >&2; }
for v in GEN REPS ROUNDS DURATION LAT_CPU; do
    [[ "${!v}" =~ ^[0-9]+$ && "${!v}" -ge 0 ]] || { log "$v must be a whole number"; exit 2; }
done
[ "$GEN" -ge 2 ] && [ "$REPS" -ge 1 ] || { log "GEN >= 2 and REPS >= 1 please"; exit 2; }
for p in $PARTS; do
    case $p in speed | refused | drill) ;; *) log "unknown part '$p' (speed refused drill)"; exit 2 ;; esac
done

# ---- dependencies and build ------------------------------------------------------------------
"$ROOT/scripts/deps.sh" --bench >&2
for t in wrk taskset python3; do
    command -v "$t" >/dev/null || { log "$t not found"; exit 1; }
done
if [ "$NO_BUILD" != 1 ]; then
    if [ ! -f "$BUILD/CMakeCache.txt" ]; then
        log "configuring $BUILD (RelWithDebInfo)"
        cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    fi
    log "building ballast, ballast-mock and gguf-gen in $BUILD"
    if ! cmake --build "$BUILD" -j2 --target ballast ballast-mock gguf-gen >"$BUILD/bench-local-build.log" 2>&1; then
        tail -n 20 "$BUILD/bench-local-build.log" >&2
        if [ -x "$BUILD/ballast" ] && [ -x "$BUILD/tests/ballast-mock" ] && [ -x "$BUILD/gguf-gen" ]; then
            log "build failed; using the binaries already in $BUILD"
        else
            exit 1
        fi
    fi
fi
export BALLAST_BIN=$BUILD/ballast
export BALLAST_MOCK=$BUILD/tests/ballast-mock
for exe in "$BALLAST_BIN" "$BALLAST_MOCK" "$BUILD/gguf-gen"; do
    [ -x "$exe" ] || { log "$exe not found"; exit 1; }
done
BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
mkdir -p "$OUT" "$CACHE"
LOG=$OUT/local.log
: >"$LOG"

# ---- models (the cache of bench/engine.sh) ---------------------------------------------------
FILES=""
for spec in $MODELS; do
    shape=${spec%%:*}
    type=${spec##*:}
    model=$CACHE/$shape-$type.gguf
    if [ ! -f "$model" ]; then
        log "generating $model"
        "$BUILD/gguf-gen" --out "$model.tmp" --shape "$shape" --type "$type" >&2
        mv "$model.tmp" "$model"
    fi
    FILES=${FILES:+$FILES,}$model
done

# ---- header ----------------------------------------------------------------------------------
flag() { grep -m1 '^flags' /proc/cpuinfo | grep -qw "$1" && echo yes || echo no; }
echo "# ballast local fallback benchmark"
echo
echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "cpu:      $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "isa:      avx2=$(flag avx2) avx512f=$(flag avx512f) avx512_vnni=$(flag avx512_vnni) amx_tile=$(flag amx_tile)"
echo "cores:    $(nproc) online ($(grep -c ^processor /proc/cpuinfo) in /proc/cpuinfo)"
echo "kernel:   $(uname -sr)"
echo "loadavg:  $(cut -d' ' -f1-3 /proc/loadavg) (other work on this machine skews every figure)"
echo "tools:    $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2), $(python3 --version), $(cc --version | head -n 1)"
echo "ballast:  $("$BALLAST_BIN" --version 2>&1 | head -n 1), build $BUILD_TYPE ($BUILD), git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src include 2>/dev/null || echo '+dirty')"
echo "models:   $MODELS (random weights from gguf-gen, in $CACHE)"
echo "settings: THREADS='$THREADS' GEN=$GEN REPS=$REPS ROUNDS=$ROUNDS DURATION=${DURATION}s PHASE=${PHASE}s PARTS='$PARTS'"
echo

# ---- parts -----------------------------------------------------------------------------------
ERRORS=0
run_part() { # TITLE CMD...: stdout to stdout, stderr to the log and stderr
    local title=$1 rc=0
    shift
    echo "## $title"
    echo
    (cd "$HERE" && "$@") 2> >(tee -a "$LOG" >&2) || rc=$?
    if [ "$rc" -ne 0 ]; then
        log "$title: exit $rc (see $LOG)"
        ERRORS=$((ERRORS + 1))
    fi
    echo
}
for p in $PARTS; do
    case $p in
    speed)
        run_part "Local engine through the daemon" timeout 1800 python3 speed.py --ballast "$BALLAST_BIN" \
            --models "$FILES" --threads "$(tr ' ' ',' <<<"$THREADS")" --gen "$GEN" --reps "$REPS"
        ;;
    refused)
        run_part "Connect refused -> next target" timeout 600 python3 refused.py --rounds "$ROUNDS" \
            --duration "$DURATION" --cpu "$LAT_CPU"
        ;;
    drill)
        if [ -f "$DRILL_MODEL" ]; then
            run_part "Outage drill" timeout 600 python3 drill.py --model "$DRILL_MODEL" --phase "$PHASE" \
                --local-name "$(basename "$DRILL_MODEL" .gguf | tr 'A-Z' 'a-z')"
        else
            log "drill model $DRILL_MODEL not found"
            ERRORS=$((ERRORS + 1))
        fi
        ;;
    esac
done

echo "loadavg at the end: $(cut -d' ' -f1-3 /proc/loadavg) (2-thread figures on a 2-core machine under other load mean little)"

if [ "$ERRORS" -ne 0 ]; then
    log "$ERRORS part(s) broke; details in $LOG"
    exit 1
fi
exit 0
