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
# docs/benchmarks.md for how to build the peer. For each model the two
# engines run back to back (ours, then theirs) so both see the same machine
# state; ratios above 1 mean ghostflow is faster.
set -euo pipefail

n_prompt=128 n_gen=64 reps=5 threads="1 2"
while getopts "p:n:r:t:h" opt; do
    case $opt in
    p) n_prompt=$OPTARG ;;
    n) n_gen=$OPTARG ;;
    r) reps=$OPTARG ;;
    t) threads=$OPTARG ;;
    h) sed -n '2,16p' "$0"; exit 0 ;;
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

for m in "$@"; do
    echo "measuring $(basename "$m") ..." >&2
    "$ours" bench -m "$m" -p "$n_prompt" -n "$n_gen" -t "$tlist" -r "$reps" -o csv 2>"$tmp/one.err" |
        extract ours >>"$tmp/ours.csv"
    grep "peak RSS" "$tmp/one.err" | sed "s|^|$(basename "$m"): ghostflow |" >>"$tmp/notes" || true
    grep "memory bandwidth" "$tmp/one.err" >>"$tmp/bw" || true
    "$LLAMA_BENCH" -m "$m" -p "$n_prompt" -n "$n_gen" -t "$tlist" -r "$reps" -o csv 2>>"$tmp/theirs.err" |
        extract theirs >>"$tmp/theirs.csv"
done

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
