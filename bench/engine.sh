#!/bin/sh
# Local engine speed against llama.cpp on the same files and thread counts.
#
# Generates random-weight models of realistic shapes with the project's own
# gguf-gen (into bench/out/, gitignored), runs `ballast bench-engine` and
# llama.cpp (prebuilt, via node-llama-cpp in bench/node/) on each at 1 and 2
# threads, and prints a table of tokens/s with ballast/llama.cpp ratios.
#
#   bench/engine.sh                     # build dir: ./build (or $BALLAST_BUILD)
#   MODELS="tinyllama-1.1b:Q4_0" THREADS="2" bench/engine.sh
#
# Needs: a built tree (ballast, gguf-gen), node + npm for the peer (installed
# on first run into bench/node/node_modules; skipped with NO_PEER=1).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BALLAST_BUILD:-$ROOT/build}
OUT=$ROOT/bench/out
MODELS=${MODELS:-"qwen-0.5b:Q8_0 tinyllama-1.1b:Q4_0"}
THREADS=${THREADS:-"1 2"}
PROMPT_TOKENS=${PROMPT_TOKENS:-128}
GEN_TOKENS=${GEN_TOKENS:-128}
NO_PEER=${NO_PEER:-0}

for exe in ballast gguf-gen; do
    if [ ! -x "$BUILD/$exe" ]; then
        echo "engine.sh: $BUILD/$exe not found; build first (scripts/build.sh) or set BALLAST_BUILD" >&2
        exit 1
    fi
done
mkdir -p "$OUT"

if [ "$NO_PEER" != 1 ] && [ ! -d "$ROOT/bench/node/node_modules/node-llama-cpp" ]; then
    echo "engine.sh: installing the llama.cpp peer (node-llama-cpp 3.22.1) into bench/node/" >&2
    if ! (cd "$ROOT/bench/node" && npm install --ignore-scripts --omit=optional --no-audit \
        --no-fund >/dev/null); then
        echo "engine.sh: npm install failed; running without the llama.cpp peer" >&2
        NO_PEER=1
    fi
fi

# value of "key: value" in a file
val() { sed -n "s/^$1: //p" "$2" | head -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

ROWS=$OUT/rows.txt
: > "$ROWS"
for spec in $MODELS; do
    shape=${spec%%:*}
    type=${spec##*:}
    model=$OUT/$shape-$type.gguf
    if [ ! -f "$model" ]; then
        echo "engine.sh: generating $model" >&2
        "$BUILD/gguf-gen" --out "$model.tmp" --shape "$shape" --type "$type" >&2
        mv "$model.tmp" "$model"
    fi
    for t in $THREADS; do
        log=$OUT/$shape-$type-t$t.ballast.txt
        echo "engine.sh: ballast bench-engine $shape $type, $t thread(s)" >&2
        "$BUILD/ballast" bench-engine -m "$model" --threads "$t" \
            --prompt-tokens "$PROMPT_TOKENS" --gen-tokens "$GEN_TOKENS" > "$log"
        cat "$log" >&2
        bpp=$(val prefill_tok_s "$log")
        btg=$(val decode_tok_s "$log")
        frac=$(val decode_bw_fraction "$log")
        lpp=0
        ltg=0
        if [ "$NO_PEER" != 1 ]; then
            plog=$OUT/$shape-$type-t$t.llamacpp.txt
            echo "engine.sh: llama.cpp $shape $type, $t thread(s)" >&2
            if node "$ROOT/bench/node/peer.mjs" "$model" "$t" "$PROMPT_TOKENS" "$GEN_TOKENS" \
                > "$plog" 2> "$plog.err"; then
                lpp=$(val prefill_tok_s "$plog")
                ltg=$(val decode_tok_s "$plog")
            else
                echo "engine.sh: llama.cpp peer failed; see $plog.err" >&2
            fi
        fi
        printf '%s %s %s %s %s %s %s %s %s %s\n' "$shape" "$type" "$t" "$bpp" "$lpp" \
            "$(ratio "$bpp" "$lpp")" "$btg" "$ltg" "$(ratio "$btg" "$ltg")" "$frac" >> "$ROWS"
    done
done

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
echo
echo "CPU: $cpu; prompt $PROMPT_TOKENS tokens, decode $GEN_TOKENS tokens"
printf '%-16s %-5s %3s | %11s %11s %6s | %10s %10s %6s | %8s\n' model type thr \
    "pp ballast" "pp llama" ratio "tg ballast" "tg llama" ratio "tg/bw"
while read -r shape type t bpp lpp rpp btg ltg rtg frac; do
    printf '%-16s %-5s %3s | %11s %11s %6s | %10s %10s %6s | %8s\n' "$shape" "$type" "$t" \
        "$bpp" "$lpp" "$rpp" "$btg" "$ltg" "$rtg" "$frac"
done < "$ROWS"
echo "(tok/s; ratio = ballast / llama.cpp; tg/bw = decode weight reads over measured read bandwidth)"
