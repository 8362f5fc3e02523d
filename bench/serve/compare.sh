#!/usr/bin/env bash
# compare.sh — `ghostflow serve` vs llama.cpp's llama-server under the same
# loopback load (bench_serve_load): C concurrent streaming chat clients against
# a server with C slots (`--parallel C` / `-np C`), for each C and model.
# Prints a markdown table: aggregate generated tokens/s, p50/p99 time to first
# token, errors, and each server's resident memory after the run.
#
#   LLAMA_SERVER=/path/to/llama-server bench/serve/compare.sh [options] MODEL.gguf...
#
#   -c "1 4 8"  client counts (default)     -r N  requests per client (default 8)
#   -n N        max_tokens (default 128)    -t N  threads of both servers (default: nproc)
#
# GF_BUILD_DIR names our build (default build/): it needs ghostflow and
# bench/bench_serve_load. llama.cpp is not part of this repository (see
# docs/benchmarks.md); without LLAMA_SERVER only our rows are printed. Both
# servers get 512 context tokens per slot and decode all slots in one batch
# on -t threads.
set -euo pipefail

clients="1 4 8" per_client=8 max_tokens=128 threads=$(nproc)
while getopts "c:r:n:t:h" opt; do
    case $opt in
    c) clients=$OPTARG ;;
    r) per_client=$OPTARG ;;
    n) max_tokens=$OPTARG ;;
    t) threads=$OPTARG ;;
    h) sed -n '2,17p' "$0"; exit 0 ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -eq 0 ]; then
    echo "compare.sh: no model given (see -h)" >&2
    exit 2
fi
me=compare.sh
# shellcheck source=bench/serve/common.sh
. "$(dirname "$0")/common.sh"
llama=${LLAMA_SERVER:-}
if [ -n "$llama" ] && [ ! -x "$llama" ]; then
    echo "compare.sh: LLAMA_SERVER=$llama is not executable" >&2
    exit 1
fi

rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# Runs the load against $url with $1 clients; prints one table row for $2.
measure() {
    local c=$1 who=$2 model=$3 out
    out=$("$load" -u "$url" -c "$c" -r $((c * per_client)) -n "$max_tokens" -k bench-key) ||
        echo "compare.sh: $who reported errors" >&2
    # shellcheck disable=SC2086
    local $out # clients= requests= errors= tokens= wall_s= tok_s= ttft_p50_ms= ttft_p99_ms=
    # shellcheck disable=SC2154 # the names come from $out
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$(basename "$model")" "$c" "$who" \
        "$tok_s" "$ttft_p50_ms" "$ttft_p99_ms" "$tokens" "$errors" "$(rss_mib "$pid")"
}

echo "| model | clients | server | tokens/s | TTFT p50 ms | TTFT p99 ms | tokens | errors | RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|"
for model in "$@"; do
    for c in $clients; do
        start_ghostflow "$model" --parallel "$c" --queue "$c" --ctx 512 -t "$threads"
        measure "$c" ghostflow "$model"
        stop_server

        [ -n "$llama" ] || continue
        port=$((18000 + RANDOM % 2000))
        "$llama" -m "$model" --host 127.0.0.1 --port "$port" -np "$c" -c $((512 * c)) \
            -t "$threads" --api-key bench-key >"$tmp/llama.log" 2>&1 &
        pid=$!
        url=http://127.0.0.1:$port
        for _ in $(seq 300); do
            curl -sf "$url/health" >/dev/null && break
            kill -0 "$pid" 2>/dev/null || { tail -5 "$tmp/llama.log" >&2; exit 1; }
            sleep 0.1
        done
        measure "$c" llama-server "$model"
        stop_server
    done
done
