#!/usr/bin/env bash
# compare-llama.sh — ghostflow bench against llama.cpp's llama-bench on the
# same GGUF files, in one run, at each thread count; prints ours/theirs.
#
#   LLAMA_BENCH=/path/to/llama-bench bench/compare-llama.sh [options] MODEL.gguf...
#
#   -p N     prompt tokens (default 128)      -n N   generated tokens (default 64)
#   -r N     repetitions (default 5)          -t "1 2"  thread counts (default "1 2")
#
# GHOSTFLOW names our binary (default: $GF_BUILD_DIR/ghostflow, else
# build/ghostflow). llama.cpp is not part of this repository: see
# docs/benchmarks.md for how to build the peer. Each repetition runs both
# engines back to back on each model (one timed run each, after each
# engine's own warm-up), so both see the same machine state; the order
# alternates between repetitions (odd: ours first, even: theirs first), so
# neither always gets the cooler CPU or the emptier page cache. Mean and
# stddev are over the repetitions; ratios above 1 mean ghostflow is faster.
set -euo pipefail

n_prompt=128 n_gen=64 reps=5 threads="1 2"
while getopts "p:n:r:t:h" opt; do
    case $opt in
    p) n_prompt=$OPTARG ;;
    n) n_gen=$OPTARG ;;
    r) reps=$OPTARG ;;
    t) threads=$OPTARG ;;
    h) sed -n '2,19p' "$0"; exit 0 ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -eq 0 ]; then
    echo "compare-llama.sh: no model given (see -h)" >&2
    exit 2
fi
if [ -z "${LLAMA_BENCH:-}" ] || [ ! -x "$LLAMA_BENCH" ]; then
    echo "compare-llama.sh: set LLAMA_BENCH to llama.cpp's llama-bench binary (see docs/benchmarks.md)" >&2
    exit 2
fi
ours=${GHOSTFLOW:-${GF_BUILD_DIR:-build}/ghostflow}
if [ ! -x "$ours" ]; then
    echo "compare-llama.sh: $ours not found: build ghostflow or set GHOSTFLOW" >&2
    exit 2
fi
for m in "$@"; do
    [ -r "$m" ] || { echo "compare-llama.sh: cannot read $m" >&2; exit 2; }
done
# llama.cpp's shared libraries sit next to its binaries in a build tree
export LD_LIBRARY_PATH="$(dirname "$LLAMA_BENCH")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

tlist=$(echo "$threads" | tr ' ' ',')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# name,threads,test,avg_ts,stddev_ts[,bw_pct] from either engine's CSV
extract() { # $1 = ours|theirs, stdin = csv
    awk -F, -v who="$1" '
        NR == 1 { for (i = 1; i <= NF; i++) { h = $i; gsub(/"/, "", h); col[h] = i }; next }
        {
            for (i = 1; i <= NF; i++) gsub(/"/, "", $i)
            name = who == "ours" ? $col["model"] : $col["model_filename"]
            sub(/.*\//, "", name)
            test = who == "ours" ? $col["test"] : ($col["n_prompt"] > 0 ? "pp" $col["n_prompt"] : "tg" $col["n_gen"])
            bw = who == "ours" ? $col["bw_pct"] : ""
            printf "%s,%s,%s,%s,%s,%s\n", name, $col["n_threads"], test, $col["avg_ts"], $col["stddev_ts"], bw
        }'
}

run_ours() { # $1 = model, $2 = repetition
    "$ours" bench -m "$1" -p "$n_prompt" -n "$n_gen" -t "$tlist" -r 1 -o csv 2>"$tmp/one.err" |
        extract ours >>"$tmp/ours.runs"
    if [ "$2" -eq 1 ]; then
        grep "peak RSS" "$tmp/one.err" | sed "s|^|$(basename "$1"): ghostflow |" >>"$tmp/notes" || true
        grep "memory bandwidth" "$tmp/one.err" >>"$tmp/bw" || true
    fi
}
run_theirs() { # $1 = model
    "$LLAMA_BENCH" -m "$1" -p "$n_prompt" -n "$n_gen" -t "$tlist" -r 1 -o csv 2>>"$tmp/theirs.err" |
        extract theirs >>"$tmp/theirs.runs"
}

: >"$tmp/ours.runs"
: >"$tmp/theirs.runs"
for rep in $(seq 1 "$reps"); do
    for m in "$@"; do
        if [ $((rep % 2)) -eq 1 ]; then
            echo "repetition $rep/$reps: $(basename "$m"): ghostflow, then llama.cpp ..." >&2
            run_ours "$m" "$rep"
            run_theirs "$m"
        else
            echo "repetition $rep/$reps: $(basename "$m"): llama.cpp, then ghostflow ..." >&2
            run_theirs "$m"
            run_ours "$m" "$rep"
        fi
    done
done

# one line per key: mean and sample stddev of the repetitions' t/s, mean bw
summarize() {
    awk -F, '
        { key = $1 "," $2 "," $3; if (!(key in n)) order[++keys] = key
          n[key]++; s[key] += $4; ss[key] += $4 * $4; bw[key] += $6 }
        END {
            for (k = 1; k <= keys; k++) {
                key = order[k]; m = s[key] / n[key]
                v = n[key] > 1 ? (ss[key] - n[key] * m * m) / (n[key] - 1) : 0
                sd = v > 0 ? sqrt(v) : 0
                mbw = bw[key] > 0 ? bw[key] / n[key] : ""
                printf "%s,%.4f,%.4f,%s\n", key, m, sd, mbw
            }
        }' "$1"
}
summarize "$tmp/ours.runs" >"$tmp/ours.csv"
summarize "$tmp/theirs.runs" >"$tmp/theirs.csv"

echo "| model | threads | test | ghostflow t/s | llama.cpp t/s | ours/theirs | ghostflow % of bandwidth limit |"
echo "| --- | ---: | --- | ---: | ---: | ---: | ---: |"
awk -F, '
    NR == FNR { key = $1 "," $2 "," $3; theirs[key] = $4; tsd[key] = $5; next }
    {
        key = $1 "," $2 "," $3
        if (!(key in theirs)) { printf "| %s | %s | %s | %.2f ± %.2f | (missing) | | |\n", $1, $2, $3, $4, $5; next }
        bw = ($6 != "" && $6 + 0 > 0) ? sprintf("%.0f %%", $6) : ""
        printf "| %s | %s | %s | %.2f ± %.2f | %.2f ± %.2f | %.2f | %s |\n", $1, $2, $3, $4, $5, theirs[key], tsd[key], $4 / theirs[key], bw
    }' "$tmp/theirs.csv" "$tmp/ours.csv"
echo
[ -s "$tmp/bw" ] && sort "$tmp/bw" | uniq | sed 's/^/    /'
[ -s "$tmp/notes" ] && sed 's/^/    /' "$tmp/notes"
exit 0
