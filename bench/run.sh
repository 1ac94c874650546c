#!/usr/bin/env bash
# careq's benchmark (issue 9, item 6). Measures whatever this checkout contains, over HTTP only:
# builds the release binaries, seeds a fresh temporary database with `careq bench-seed`, starts
# `careq serve` and the bare-hyper baseline side by side, drives each scenario with wrk, and
# prints one table (also written as markdown to target/bench/results.md).
#
#   bench/run.sh [--patients N] [--tickets M] [--duration S] [--runs R] [--connections C]
#                [--warmup S] [--statuses] [--only NAME,NAME...] [--database postgres://…]
#
# Defaults: 100000 patients, 3 runs x 10 s, 64 connections, 2 s warm-up; waiting tickets: three
# per patient up to 300000 (enough that call-next does not run dry; fewer keeps a smoke run fast).
# --statuses makes wrk count every response's status (slower client; for diagnosis).
# --only runs just the named scenarios (and the baselines), e.g. --only search_name,search_mrn
# for the large search run.
# --database runs careq on PostgreSQL: the seeded SQLite file is moved with `careq migrate-data`
# into a new database made beside the one named (dropped afterwards); the table is written to
# target/bench/results-postgres.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

patients=100000 tickets="" duration=10 runs=3 connections=64 warmup=2 statuses=0 only="" database=""
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --patients) patients=$2; shift 2 ;;
    --tickets) tickets=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --statuses) statuses=1; shift ;;
    --only) only=",$2,"; shift 2 ;;
    --database) database=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "bench: unknown argument $1" >&2; usage ;;
  esac
done
tickets=${tickets:-$((patients * 3 < 300000 ? patients * 3 : 300000))}
for n in "$patients" "$tickets" "$duration" "$runs" "$connections" "$warmup"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "bench: not a number: $n" >&2; exit 2; }
done
[ "$patients" -ge 1 ] && [ "$duration" -ge 1 ] && [ "$runs" -ge 1 ] && [ "$connections" -ge 1 ] ||
  { echo "bench: patients, duration, runs and connections must be at least 1" >&2; exit 2; }

# The server's settings are the ones below, not whatever the caller's shell exports.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^CAREQ_' || true)

if ! command -v wrk >/dev/null; then
  echo "bench: installing wrk"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk
fi
command -v python3 >/dev/null || { echo "bench: python3 is required" >&2; exit 1; }

echo "bench: building release binaries"
cargo build --release -q -p careq -p baseline
careq_bin=$root/target/release/careq
baseline_bin=$root/target/release/baseline

work=$(mktemp -d "${TMPDIR:-/tmp}/careq-bench.XXXXXX")
careq_pid="" baseline_pid="" pg_bench=""
cleanup() {
  for pid in $careq_pid $baseline_pid; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  # careq's warnings and errors (CAREQ_LOG=warn) outlive the run, for a look at any 5xx.
  [ -f "$work/careq.log" ] && mkdir -p "$root/target/bench" && cp "$work/careq.log" "$root/target/bench/careq.log"
  rm -rf "$work"
  [ -z "$pg_bench" ] || psql -q "$database" -c "DROP DATABASE IF EXISTS $pg_bench WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_http() { # url pid
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench: nothing answers at $1" >&2
  return 1
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

echo "bench: seeding $patients patients and $tickets waiting tickets"
start=$SECONDS
timeout 1800 "$careq_bin" bench-seed --database-url "sqlite://$work/bench.db" \
  --patients "$patients" --tickets "$tickets" --out "$work/seed.json"
echo "bench: seeded in $((SECONDS - start)) s"
db_url="sqlite://$work/bench.db" engine=sqlite results=target/bench/results.md
if [ -n "$database" ]; then
  case "$database" in postgres://*|postgresql://*) ;; *) echo "bench: --database takes a postgres:// URL" >&2; exit 2 ;; esac
  command -v psql >/dev/null || { echo "bench: psql is required for --database" >&2; exit 1; }
  pg_bench="careq_bench_$$"
  psql -q "$database" -c "CREATE DATABASE $pg_bench" >/dev/null
  db_url="${database%/*}/$pg_bench" engine=postgres results=target/bench/results-postgres.md
  start=$SECONDS
  "$careq_bin" migrate-data --from "sqlite://$work/bench.db" --to "$db_url" > "$work/move.log"
  echo "bench: moved to PostgreSQL in $((SECONDS - start)) s ($(tail -1 "$work/move.log"))"
fi

port=$(free_port)
CAREQ_LISTEN="127.0.0.1:$port" CAREQ_DATABASE_URL="$db_url" CAREQ_LOG=warn \
  CAREQ_RATE_PER_SECOND=1000000000 CAREQ_RATE_BURST=1000000000 CAREQ_LOGIN_ATTEMPTS=1000000 \
  CAREQ_MAX_IN_FLIGHT=$((connections * 4 + 256)) \
  "$careq_bin" serve > "$work/careq.log" 2>&1 &
careq_pid=$!
bport=$(free_port)
"$baseline_bin" "127.0.0.1:$bport" > "$work/baseline.log" 2>&1 &
baseline_pid=$!
wait_http "http://127.0.0.1:$port/healthz" "$careq_pid" || { cat "$work/careq.log" >&2; exit 1; }
wait_http "http://127.0.0.1:$bport/" "$baseline_pid"
python3 bench/prepare.py "$work/seed.json" "http://127.0.0.1:$port" "$work/data.lua" > /dev/null
echo "bench: careq at :$port (RSS $(rss_kb "$careq_pid") kB), baseline at :$bport"

mkdir -p "$work/out"
nonce=0
# wrk with this bench's settings: 1 thread, C connections, latency distribution, a hard bound.
drive() { # scenario seconds url output
  nonce=$((nonce + 1))
  BENCH_DATA="$work/data.lua" BENCH_SCENARIO="$1" BENCH_NONCE="$nonce" BENCH_STATUSES="$statuses" \
    timeout --kill-after=5 $(($2 + 30)) \
    wrk -t1 -c"$connections" -d"${2}s" --timeout 10s --latency -s bench/lua/scenario.lua "$3" > "$4"
}
# scenario label server basis: warm up, measure R runs, note the server's RSS afterwards.
scenario() {
  local name=$1 label=$2 server=$3 basis=$4 url pid
  if [ -n "$only" ] && [ "$server" != baseline ] && [[ "$only" != *",$name,"* ]]; then return; fi
  if [ "$server" = baseline ]; then url="http://127.0.0.1:$bport" pid=$baseline_pid
  else url="http://127.0.0.1:$port" pid=$careq_pid; fi
  printf 'bench: %-44s' "$label"
  [ "$warmup" -eq 0 ] || drive "$name" "$warmup" "$url" /dev/null
  for r in $(seq 1 "$runs"); do
    drive "$name" "$duration" "$url" "$work/out/$name.$r.txt" ||
      { echo; echo "bench: wrk failed in $name" >&2; exit 1; }
    printf ' %s' "$(awk '/^Requests\/sec:/ {print $2}' "$work/out/$name.$r.txt")"
  done
  echo
  kill -0 "$pid" 2>/dev/null || { echo "bench: the $server server died" >&2; tail "$work/careq.log" >&2; exit 1; }
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$label" "$server" "$basis" "$(rss_kb "$pid")" >> "$work/manifest.tsv"
}

scenario baseline_get "baseline GET (bare hyper)" baseline -
scenario baseline_post "baseline POST (bare hyper)" baseline -
scenario get_patient "GET patient" careq baseline_get
scenario get_patient_304 "GET patient, If-None-Match (304)" careq baseline_get
scenario search_name "search: name prefix (q=)" careq baseline_get
scenario search_common "search: a common given name typed (ro/rob/robe)" careq baseline_get
scenario search_mrn "search: MRN" careq baseline_get
scenario search_dob "search: date of birth" careq baseline_get
scenario list_page "list page (limit=50)" careq baseline_get
scenario queue_304 "queue view, If-None-Match (small clinic)" careq baseline_get
scenario create_patient "create patient" careq baseline_post
scenario issue_ticket "issue ticket (big clinic)" careq baseline_post
scenario call_next "call-next (big clinic)" careq baseline_post
scenario mixed "mixed: 55% read, 20% create, 15% issue, 10% call" careq baseline_get

mkdir -p target/bench
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || commit="$commit+dirty"
python3 bench/report.py "$work" "$results" \
  "commit $commit; $engine; $patients patients, $tickets tickets; $runs x ${duration}s after ${warmup}s warm-up; wrk 1 thread, $connections connections; $(nproc) cores"
