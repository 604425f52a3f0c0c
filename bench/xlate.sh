#!/usr/bin/env bash
# Translation overhead: a request translated between API families against
# the same request passed through untranslated, through one ballast, on
# 127.0.0.1.
#
#   bench/xlate.sh                      # build dir: ./build-bench (or $BALLAST_BUILD)
#   DURATION=5s ROUNDS=5 bench/xlate.sh
#
# ballast-mock is the upstream: it answers chat completions, Responses and
# Anthropic Messages alike. Four paths, each a non-streamed request at one
# connection (wrk -c1, everything pinned to CPU $CPU):
#   responses -> responses   passed through (target: type openai, api: responses)
#   responses -> chat        translated     (target: type openai, api: chat)
#   messages  -> messages    passed through (target: type anthropic)
#   messages  -> chat        translated     (target: type openai)
# The mock's endpoints differ in cost, so each path's added latency is its
# p50 through ballast minus the p50 of its upstream endpoint asked directly,
# and the translation's cost is that figure for the translated path minus
# the same for the passed-through one (target: <= 20 us). Then STREAM_N
# streamed requests per path check the text each client assembles (target:
# 100% intact). Rounds interleave the paths; the table shows medians.
# Prints the CPU and ISA beside the figures. Exit 0 when the harness worked.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE=$ROOT/bench/xlate
BUILD=${BALLAST_BUILD:-$ROOT/build-bench}
DURATION=${DURATION:-2}
DURATION=${DURATION%s}
ROUNDS=${ROUNDS:-3}
STREAM_N=${STREAM_N:-100}
CPU=${CPU:-0}
NO_BUILD=${NO_BUILD:-0}
log() { echo "xlate.sh: $*" >&2; }

"$ROOT/scripts/deps.sh" --bench
for t in wrk taskset python3 curl; do
    command -v "$t" >/dev/null || { log "$t not found"; exit 1; }
done
if [ "$NO_BUILD" != 1 ]; then
    [ -f "$BUILD/CMakeCache.txt" ] ||
        cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$BUILD" -j2 --target ballast ballast-mock >"$BUILD/bench-build.log" 2>&1 ||
        { tail -n 20 "$BUILD/bench-build.log" >&2; exit 1; }
fi
BALLAST=$BUILD/ballast
MOCK=$BUILD/tests/ballast-mock

TMP=$(mktemp -d /tmp/ballast-xlbench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r MOCK_PORT BALLAST_PORT < <(python3 "$ROOT/bench/gateway/freeport.py" 2)
taskset -c "$CPU" "$MOCK" --port "$MOCK_PORT" --name bench --chunks 16 >"$TMP/mock.log" 2>&1 &
PIDS+=($!)
# The response store is off: it costs both Responses paths alike (a SQLite
# write per answer) and would only add noise to their difference.
cat >"$TMP/ballast.yaml" <<EOF
listen: 127.0.0.1:$BALLAST_PORT
response_store: {enabled: false}
providers:
  - {name: chat, type: openai, base_url: 'http://127.0.0.1:$MOCK_PORT/v1'}
  - {name: resp, type: openai, api: responses, base_url: 'http://127.0.0.1:$MOCK_PORT/v1'}
  - {name: anth, type: anthropic, base_url: 'http://127.0.0.1:$MOCK_PORT/v1'}
routes:
  - {model: via-chat, tiers: [[{provider: chat, model: bench}]]}
  - {model: via-resp, tiers: [[{provider: resp, model: bench}]]}
  - {model: via-anth, tiers: [[{provider: anth, model: bench}]]}
EOF
taskset -c "$CPU" "$BALLAST" serve -c "$TMP/ballast.yaml" >"$TMP/ballast.log" 2>&1 &
PIDS+=($!)
for i in $(seq 200); do
    curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$BALLAST_PORT/healthz" && break
    sleep 0.05
done

RESP='{"model":"MODEL","input":"Say hello.","max_output_tokens":16}'
MSG='{"model":"MODEL","max_tokens":16,"messages":[{"role":"user","content":"Say hello."}]}'
CHAT='{"model":"bench","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}'
# name port path body
PATHS=(
    "direct-responses $MOCK_PORT /v1/responses ${RESP/MODEL/bench}"
    "direct-messages $MOCK_PORT /v1/messages ${MSG/MODEL/bench}"
    "direct-chat $MOCK_PORT /v1/chat/completions $CHAT"
    "responses-pass $BALLAST_PORT /v1/responses ${RESP/MODEL/via-resp}"
    "responses-to-chat $BALLAST_PORT /v1/responses ${RESP/MODEL/via-chat}"
    "messages-pass $BALLAST_PORT /v1/messages ${MSG/MODEL/via-anth}"
    "messages-to-chat $BALLAST_PORT /v1/messages ${MSG/MODEL/via-chat}"
)

flag() { grep -m1 '^flags' /proc/cpuinfo | grep -qw "$1" && echo yes || echo no; }
echo "# ballast translation benchmark"
echo
echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "cpu:      $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "isa:      avx2=$(flag avx2) avx512f=$(flag avx512f) avx512_vnni=$(flag avx512_vnni) amx_tile=$(flag amx_tile)"
echo "loadavg:  $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ballast:  $("$BALLAST" --version 2>&1 | head -n 1), git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "settings: ${DURATION}s x $ROUNDS rounds per path, wrk -c1 -t1, all on CPU $CPU; STREAM_N=$STREAM_N"
echo

declare -A P50
ERR=0
for r in $(seq "$ROUNDS"); do
    for entry in "${PATHS[@]}"; do
        read -r name port path body <<<"$entry"
        line=$(BPATH=$path BODY=$body taskset -c "$CPU" wrk -c1 -t1 -d "${DURATION}s" --latency \
            -s "$HERE/post.lua" "http://127.0.0.1:$port" | grep '^BENCH ' || true)
        errs=$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$line")
        if [ -z "$line" ] || [ "${errs:-1}" != 0 ]; then
            log "$name: wrk failed or saw errors: $line"
            ERR=1
            continue
        fi
        P50[$name]+=" $(sed -n 's/.* p50_us=\([0-9]*\).*/\1/p' <<<"$line")"
    done
done
median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : 0)}'; }
for k in "${!P50[@]}"; do P50[$k]=$(median "${P50[$k]}"); done

EXPECT=$(curl -fs -H 'Content-Type: application/json' -d "$CHAT" \
    "http://127.0.0.1:$MOCK_PORT/v1/chat/completions" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["message"]["content"])')
KINDS=$(python3 -c '
import json, sys
r, m = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({
  "responses-pass": ["/v1/responses", dict(r, model="via-resp")],
  "responses-to-chat": ["/v1/responses", dict(r, model="via-chat")],
  "messages-pass": ["/v1/messages", dict(m, model="via-anth")],
  "messages-to-chat": ["/v1/messages", dict(m, model="via-chat")]}))' "$RESP" "$MSG")
SOUT=$(taskset -c "$CPU" python3 "$HERE/stream_check.py" "$BALLAST_PORT" "$STREAM_N" "$EXPECT" "$KINDS")
echo "$SOUT"
echo

add() { echo $(( P50[$1] - P50[$2] )); }
rp=$(add responses-pass direct-responses)
rc=$(add responses-to-chat direct-chat)
mp=$(add messages-pass direct-messages)
mc=$(add messages-to-chat direct-chat)
intact() { sed -n "s/^STREAM kind=$1 n=\([0-9]*\) intact=\([0-9]*\)/\2\/\1/p" <<<"$SOUT"; }
verdict() { [ "$1" -le 20 ] && echo PASS || echo FAIL; }
echo "| path | p50 via ballast (us) | p50 upstream direct (us) | added (us) | translation cost (us) | target | result | streams intact |"
echo "| --- | ---: | ---: | ---: | ---: | --- | --- | ---: |"
echo "| responses -> responses (pass) | ${P50[responses-pass]} | ${P50[direct-responses]} | $rp | | | | $(intact responses-pass) |"
echo "| responses -> chat | ${P50[responses-to-chat]} | ${P50[direct-chat]} | $rc | $((rc - rp)) | <= 20 | $(verdict $((rc - rp))) | $(intact responses-to-chat) |"
echo "| messages -> messages (pass) | ${P50[messages-pass]} | ${P50[direct-messages]} | $mp | | | | $(intact messages-pass) |"
echo "| messages -> chat | ${P50[messages-to-chat]} | ${P50[direct-chat]} | $mc | $((mc - mp)) | <= 20 | $(verdict $((mc - mp))) | $(intact messages-to-chat) |"
exit $ERR
