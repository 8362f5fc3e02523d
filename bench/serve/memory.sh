#!/usr/bin/env bash
# memory.sh — does `ghostflow serve` keep flat memory under sustained load?
# Starts the server on MODEL with a fresh encrypted history, sends ROUNDS
# rounds of REQUESTS streaming chat completions (bench_serve_load, CLIENTS
# at a time), and prints the server's resident set after each round. The
# history grows all the while (every exchange is stored), so the database's
# page cache fills first (`--db-cache`, 512 KiB by default) and then must stay
# put; the summary gives the growth per request over the second half.
#
#   bench/serve/memory.sh [options] MODEL.gguf
#
#   -c N  concurrent clients = --parallel (default 4)
#   -r N  rounds (default 10)            -q N  requests per round (default 1000)
#   -n N  max_tokens (default 16)        -x "ARGS"  more `ghostflow serve` arguments
#
# GF_BUILD_DIR names our build (default build/): it needs ghostflow and
# bench/bench_serve_load. Exits 1 if any request failed.
set -euo pipefail

clients=4 rounds=10 per_round=1000 max_tokens=16 extra=""
while getopts "c:r:q:n:x:h" opt; do
    case $opt in
    c) clients=$OPTARG ;;
    r) rounds=$OPTARG ;;
    q) per_round=$OPTARG ;;
    n) max_tokens=$OPTARG ;;
    x) extra=$OPTARG ;;
    h) sed -n '2,18p' "$0"; exit 0 ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -ne 1 ]; then
    echo "memory.sh: give one model (see -h)" >&2
    exit 2
fi
model=$1
me=memory.sh
# shellcheck source=bench/serve/common.sh
. "$(dirname "$0")/common.sh"

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }

# shellcheck disable=SC2086
start_ghostflow "$model" --parallel "$clients" --queue "$clients" --ctx 256 $extra

start=$(rss_kib)
echo "model $(basename "$model"), $clients clients, max_tokens $max_tokens; RSS at start $((start / 1024)) MiB"
echo
echo "| requests | RSS MiB | change KiB | db + wal MiB | tokens/s | errors |"
echo "|---|---|---|---|---|---|"
failed=0 prev=$start half_rss=$start half_at=0
for r in $(seq "$rounds"); do
    out=$("$load" -u "$url" -c "$clients" -r "$per_round" -n "$max_tokens" -k bench-key) || failed=1
    field() { echo "$out" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
    errors=$(field errors)
    now=$(rss_kib)
    db=$(du -cm "$tmp"/serve.db* | awk 'END {print $1}') # with the -wal file
    printf '| %d | %.1f | %+d | %s | %s | %s |\n' $((r * per_round)) "$(awk -v k="$now" 'BEGIN {print k / 1024}')" \
        $((now - prev)) "$db" "$(field tok_s)" "${errors:-?}"
    prev=$now
    if [ "$r" -eq $(((rounds + 1) / 2)) ]; then half_rss=$now half_at=$((r * per_round)); fi
done
n=$((rounds * per_round - half_at))
if [ "$n" -gt 0 ]; then
    echo
    echo "second half ($n requests): $(((prev - half_rss) * 1024 / n)) B/request, $((prev - half_rss)) KiB in all"
fi
exit "$failed"
