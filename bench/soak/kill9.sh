#!/usr/bin/env bash
# bench/soak/kill9.sh — kill -9 soak of the encrypted history: does any
# acknowledged exchange get lost, or any database corrupted, when a ghostflow
# process dies at a random moment?
#
#   bench/soak/kill9.sh [TRIALS] [run|serve|rekey...]    (default 1000, all three)
#
# Trials are shared out 2:1:2 among the scenarios:
#   run    `ghostflow run --db` killed at a random time during load, prompt
#          commit, generation or storing. Acknowledged: the process exited 0
#          (the exchange must be stored, answer identical to what it printed),
#          or it printed any answer text (its prompt must be stored: prompts
#          commit before generation starts).
#   serve  `ghostflow serve --parallel 4` under 4 looping HTTP clients (curl),
#          killed at a random time. Acknowledged: every exchange whose HTTP
#          response was received whole (stored with the same answer text).
#   rekey  `ghostflow rekey` of a 16 MB history killed at a random time, nothing
#          else having the file open. Afterwards exactly one of the old and new
#          keys must open it (the new one if rekey exited 0) and no row may be
#          missing. Each trial starts from a fresh copy of the same database.
# After every kill the database is reopened, `PRAGMA integrity_check` run
# through the zqlite CLI, and `ghostflow history --json` compared with every
# exchange acknowledged so far (run and serve keep one database across their
# trials). The summary counts lost acknowledged exchanges and corrupt
# databases; both must be 0 (exit 1 otherwise). Its notes also give the
# databases' file modes (a history should stay 0600).
#
# Keys are raw ("x'<64 hex>'"), so no Argon2 cost; files live in /dev/shm.
# Environment: GF_BIN, ZQLITE_BIN (default build/ghostflow, build/zqlite: a
# Release build), GF_SOAK_MODEL (default ../shared/models/stories260K.gguf),
# GF_SOAK_DIR (default a new directory in /dev/shm, removed at the end).
set -uo pipefail
cd "$(dirname "$0")/../.."

GF=${GF_BIN:-$PWD/build/ghostflow}
ZQ=${ZQLITE_BIN:-$PWD/build/zqlite}
MODEL=${GF_SOAK_MODEL:-$PWD/../shared/models/stories260K.gguf}
KEY1="x'000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'"
KEY2="x'f0e0d0c0b0a090807060504030201000ffeeddccbbaa99887766554433221100'"
export GHOSTFLOW_API_KEY=sk-soak
unset GHOSTFLOW_KEY GHOSTFLOW_NEW_KEY ZQLITE_KEY

total=1000
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
  total=$1
  shift
fi
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(run serve rekey)
for s in "${scenarios[@]}"; do
  case $s in run | serve | rekey) ;; *)
    echo "kill9: unknown scenario '$s' (run, serve, rekey)" >&2
    exit 2
    ;;
  esac
done
for f in "$GF" "$ZQ" "$MODEL"; do
  [ -e "$f" ] || {
    echo "kill9: $f missing (build: cmake --build build --target ghostflow zqlite)" >&2
    exit 2
  }
done
command -v jq >/dev/null && command -v curl >/dev/null || {
  echo "kill9: needs jq and curl" >&2
  exit 2
}

weight() { case $1 in serve) echo 1 ;; *) echo 2 ;; esac; }
sum=0
for s in "${scenarios[@]}"; do sum=$((sum + $(weight "$s"))); done
declare -A trials
left=$total
for s in "${scenarios[@]}"; do
  trials[$s]=$((total * $(weight "$s") / sum))
  left=$((left - trials[$s]))
done
trials[${scenarios[0]}]=$((trials[${scenarios[0]}] + left))

work=${GF_SOAK_DIR:-$(mktemp -d /dev/shm/gf-soak.XXXXXX)}
mkdir -p "$work"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null
  [ -z "${GF_SOAK_DIR:-}" ] && rm -rf "$work"
}
trap cleanup EXIT
log="$work/details.log"
: >"$log"

lost=0
corrupt=0
declare -A done_trials lost_in corrupt_in secs_in note

sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
now_ms() { date +%s%3N; }

# integrity DB KEY -> 0 "ok", 3 wrong key, anything else: not a sound database
integrity() {
  local out rc
  out=$(ZQLITE_KEY=$2 "$ZQ" -b "$1" "PRAGMA integrity_check" 2>&1)
  rc=$?
  if [ $rc -eq 0 ] && [ "$out" = ok ]; then return 0; fi
  [ $rc -eq 3 ] && return 3
  printf 'integrity %s: rc %d: %s\n' "$1" "$rc" "$(head -c 300 <<<"$out")" >>"$log"
  return 1
}

# missing DB KEY ACKS -> prints how many acknowledged lines of ACKS
# ("marker<TAB>answered|prompt<TAB>text" with text as jq's @tsv writes it)
# the history of DB does not hold.
missing() {
  local hist
  hist=$(GHOSTFLOW_KEY=$2 "$GF" history --db "$1" --json --limit 0 2>>"$log" |
    jq -r '.[] | [(first(.prompt | capture("(?<m>soak-[a-z]-[0-9-]+)") | .m) // ""),
                  .status, (.response.text // "")] | @tsv') || {
    echo "history --json failed on $1" >>"$log"
    wc -l <"$3"
    return
  }
  awk -F'\t' -v logf="$log" '
    NR == FNR { st[$1] = $2; tx[$1] = $3; next }
    {
      bad = !($1 in st) || ($2 == "answered" && (st[$1] != "answered" || tx[$1] != $3))
      if (bad) { n++; print "lost: " $0 " (stored: " ($1 in st ? st[$1] " " tx[$1] : "nothing") ")" >> logf }
    }
    END { print n + 0 }' <(printf '%s\n' "$hist") "$3"
}

# check SCENARIO DB KEY ACKS: reopen after a kill and count what broke.
check() {
  if ! integrity "$2" "$3"; then
    corrupt=$((corrupt + 1))
    corrupt_in[$1]=$((${corrupt_in[$1]:-0} + 1))
    return
  fi
  count_lost "$1" "$(missing "$2" "$3" "$4")"
}

# count_lost SCENARIO N: N more acknowledged exchanges lost ("" counts as a
# failed check, never as zero).
count_lost() {
  local m=$2
  if ! [[ $m =~ ^[0-9]+$ ]]; then
    echo "$1: the history check failed (${m:-no output})" >>"$log"
    m=1
  fi
  lost=$((lost + m))
  lost_in[$1]=$((${lost_in[$1]:-0} + m))
}

# ---- run -----------------------------------------------------------------------------------------

soak_run() {
  local db="$work/run.db" acks="$work/run.acks" i out rc
  : >"$acks"
  local printed=0 completed=0
  for ((i = 0; i < trials[run]; i++)); do
    out="$work/run.out"
    GHOSTFLOW_KEY=$KEY1 "$GF" run -m "$MODEL" --db "$db" -n $((32 + RANDOM % 200)) --seed "$i" \
      "soak-r-$i Once upon a time" >"$out" 2>/dev/null &
    local pid=$!
    sleep_ms $((RANDOM % 60))
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    rc=$?
    if [ $rc -eq 0 ]; then
      completed=$((completed + 1))
      printf 'soak-r-%d\tanswered\t%s\n' "$i" "$(jq -Rsr 'sub("\n$"; "") | [.] | @tsv' <"$out")" >>"$acks"
    elif [ -s "$out" ]; then
      printed=$((printed + 1))
      printf 'soak-r-%d\tprompt\t\n' "$i" >>"$acks"
    fi
    check run "$db" "$KEY1" "$acks"
  done
  note[run]="$completed completed before the kill, $printed killed after printing answer text; file mode $(stat -c %a "$db")"
}

# ---- serve ---------------------------------------------------------------------------------------

# client TRIAL C PORT: chat requests until one fails; acknowledges each answer received whole.
client() {
  local j=0 m resp code text
  while :; do
    m="soak-s-$1-$2-$j"
    resp=$(curl -s --max-time 20 -H "Authorization: Bearer $GHOSTFLOW_API_KEY" \
      -H 'Content-Type: application/json' -w '\n%{http_code}' \
      -d "{\"messages\":[{\"role\":\"user\",\"content\":\"$m Tell me a story\"}],\"max_tokens\":$((8 + RANDOM % 56)),\"seed\":$j}" \
      "http://127.0.0.1:$3/v1/chat/completions") || break
    code=${resp##*$'\n'}
    [ "$code" = 200 ] || break
    text=$(jq -er '[.choices[0].message.content] | @tsv' <<<"${resp%$'\n'*}") || break
    printf '%s\tanswered\t%s\n' "$m" "$text" >>"$work/serve.acks.$2"
    j=$((j + 1))
  done
}

soak_serve() {
  local db="$work/serve.db" acks="$work/serve.acks" i c port t0 exchanges=0
  : >"$acks"
  for ((i = 0; i < trials[serve]; i++)); do
    GHOSTFLOW_KEY=$KEY1 "$GF" serve -m "$MODEL" --db "$db" --port 0 --parallel 4 \
      >"$work/serve.out" 2>"$work/serve.err" &
    server_pid=$!
    port=""
    t0=$(now_ms)
    while [ -z "$port" ] && [ $(($(now_ms) - t0)) -lt 10000 ]; do
      port=$(grep -oE '127\.0\.0\.1:[0-9]+' "$work/serve.out" | head -1 | cut -d: -f2)
      [ -n "$port" ] || sleep 0.01
    done
    if [ -z "$port" ]; then
      echo "serve trial $i: no port; stderr: $(head -c 300 "$work/serve.err")" >>"$log"
    fi
    for c in 1 2 3 4; do
      : >"$work/serve.acks.$c"
      [ -n "$port" ] && client "$i" "$c" "$port" &
    done
    sleep_ms $((100 + RANDOM % 1400))
    kill -9 "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    server_pid=""
    wait
    for c in 1 2 3 4; do
      exchanges=$((exchanges + $(wc -l <"$work/serve.acks.$c")))
      cat "$work/serve.acks.$c" >>"$acks"
    done
    check serve "$db" "$KEY1" "$acks"
  done
  note[serve]="$exchanges acknowledged HTTP exchanges; file mode $(stat -c %a "$db")"
}

# ---- rekey ---------------------------------------------------------------------------------------

soak_rekey() {
  local base="$work/rekey-base.db" db="$work/rekey/h.db" acks="$work/rekey.acks" i
  local rows want got k1 k2 rc t0 t_ms old=0 new=0 acked=0 leftovers=0
  : >"$acks"
  for i in $(seq 0 19); do
    GHOSTFLOW_KEY=$KEY1 "$GF" run -m "$MODEL" --db "$base" -n 48 --seed "$i" "soak-k-$i Once upon a time" \
      >"$work/rekey.out" 2>/dev/null || {
      echo "kill9: rekey base: run failed" >&2
      exit 1
    }
    printf 'soak-k-%d\tanswered\t%s\n' "$i" "$(jq -Rsr 'sub("\n$"; "") | [.] | @tsv' <"$work/rekey.out")" >>"$acks"
  done
  rows="SELECT count(*), sum(length(x)), sum(id * length(x)) FROM soak_filler"
  ZQLITE_KEY=$KEY1 "$ZQ" -b "$base" "CREATE TABLE soak_filler(id INTEGER PRIMARY KEY, x BLOB)" \
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000)
     INSERT INTO soak_filler(x) SELECT randomblob(3000 + i % 2000) FROM n" >/dev/null || exit 1
  want=$(ZQLITE_KEY=$KEY1 "$ZQ" -b "$base" "$rows")
  mkdir -p "$work/rekey"
  # how long an undisturbed rekey takes, so the kills spread over it
  cp "$base" "$db"
  t0=$(now_ms)
  GHOSTFLOW_KEY=$KEY1 GHOSTFLOW_NEW_KEY=$KEY2 "$GF" rekey --db "$db" >/dev/null 2>&1 || exit 1
  t_ms=$(($(now_ms) - t0))
  local mode_before mode_after
  mode_before=$(stat -c %a "$base") mode_after=$(stat -c %a "$db")
  for ((i = 0; i < trials[rekey]; i++)); do
    rm -f "$work"/rekey/*
    cp "$base" "$db"
    GHOSTFLOW_KEY=$KEY1 GHOSTFLOW_NEW_KEY=$KEY2 "$GF" rekey --db "$db" >/dev/null 2>&1 &
    local pid=$!
    sleep_ms $((RANDOM % (t_ms * 6 / 5 + 1)))
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    rc=$?
    integrity "$db" "$KEY1"
    k1=$?
    integrity "$db" "$KEY2"
    k2=$?
    local key=""
    if [ $k1 -eq 0 ] && [ $k2 -eq 3 ]; then
      key=$KEY1 old=$((old + 1))
    elif [ $k2 -eq 0 ] && [ $k1 -eq 3 ]; then
      key=$KEY2 new=$((new + 1))
    fi
    [ $rc -eq 0 ] && acked=$((acked + 1))
    if [ -z "$key" ] || { [ $rc -eq 0 ] && [ "$key" = "$KEY1" ]; }; then
      echo "rekey trial $i: rekey rc $rc, old key $k1, new key $k2" >>"$log"
      corrupt=$((corrupt + 1))
      corrupt_in[rekey]=$((${corrupt_in[rekey]:-0} + 1))
      continue
    fi
    got=$(ZQLITE_KEY=$key "$ZQ" -b "$db" "$rows")
    if [ "$got" != "$want" ]; then
      echo "rekey trial $i: filler rows $got, want $want" >>"$log"
      count_lost rekey 1
    fi
    count_lost rekey "$(missing "$db" "$key" "$acks")"
    [ "$(ls "$work/rekey" | grep -cvE '^h\.db(-wal|-shm|-journal)?$')" -gt 0 ] && leftovers=$((leftovers + 1))
  done
  note[rekey]="undisturbed rekey ${t_ms} ms, file mode $mode_before -> $mode_after; afterwards old key $old, new key $new; $acked exited 0; $leftovers left a stale DB-zqrekey (documented: the next rekey removes it)"
}

start=$(now_ms)
for s in "${scenarios[@]}"; do
  t0=$(now_ms)
  "soak_$s"
  secs_in[$s]=$((($(now_ms) - t0) / 1000))
done
echo "kill -9 soak: $total trials, $(($(($(now_ms) - start)) / 1000)) s ($GF, $(basename "$MODEL"), $work)"
for s in "${scenarios[@]}"; do
  printf '  %-6s %5d trials %5d s  lost acknowledged %d  corrupt %d  (%s)\n' "$s" "${trials[$s]}" \
    "${secs_in[$s]}" "${lost_in[$s]:-0}" "${corrupt_in[$s]:-0}" "${note[$s]}"
done
echo "lost acknowledged exchanges: $lost   corrupt databases: $corrupt"
if [ $((lost + corrupt)) -gt 0 ]; then
  echo "details:" >&2
  head -50 "$log" >&2
  exit 1
fi
