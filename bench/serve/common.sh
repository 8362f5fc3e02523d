# shellcheck shell=bash disable=SC2154
# common.sh — sourced by the bench/serve scripts: finds our build, keeps a
# temporary folder and the server under test, and starts `ghostflow serve`.
# The sourcing script sets `me` (its name, for messages) first.
#
#   gf, load      ghostflow and bench_serve_load in $GF_BUILD_DIR (default build/)
#   tmp           a temporary folder, removed at exit with the server in $pid
#   start_ghostflow MODEL ARGS...   serve MODEL on a free port with a fresh
#                 history in $tmp; sets pid and url (exits on failure)
#   stop_server   stops the server in $pid

build=${GF_BUILD_DIR:-build}
gf=$build/ghostflow
load=$build/bench/bench_serve_load
for f in "$gf" "$load"; do
    [ -x "$f" ] || { echo "$me: $f is missing: build ghostflow and bench_serve_load" >&2; exit 1; }
done

tmp=$(mktemp -d)
pid=""
stop_server() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; }
cleanup() {
    if [ -n "$pid" ]; then stop_server; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

start_ghostflow() {
    local model=$1
    shift
    # gf.out goes first: the child truncates it only after the fork, and the
    # loop below must not read the previous run's port.
    rm -f "$tmp"/serve.db* "$tmp/gf.out"
    GHOSTFLOW_KEY=bench-db-key GHOSTFLOW_API_KEY=bench-key "$gf" serve -m "$model" \
        --db "$tmp/serve.db" --port 0 "$@" >"$tmp/gf.out" 2>"$tmp/gf.err" &
    pid=$!
    url=""
    for _ in $(seq 300); do
        url=$(sed -n 's/^listening on //p' "$tmp/gf.out" 2>/dev/null)
        [ -n "$url" ] && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            local st=0
            wait "$pid" || st=$?
            pid=""
            echo "$me: ghostflow serve exited ($st) before listening:" >&2
            cat "$tmp/gf.err" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "$me: ghostflow serve did not start" >&2
    exit 1
}
