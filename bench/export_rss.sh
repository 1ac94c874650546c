#!/usr/bin/env bash
# The memory an export takes (issue 12, item 6): seeds a fresh SQLite database with N patients
# (`careq bench-seed`), starts the release `careq serve` on it, exports every patient as CSV
# through the API, and prints the server's resident set size (VmRSS) before, at its peak during,
# and after the export, with the file's size and rows. A figure, not a timed test.
#
#   bench/export_rss.sh [--patients N] [--format csv|ndjson] [--database postgres://…]
#
# Default: 100000 patients, CSV. --database moves the seeded data into a new PostgreSQL database
# beside the one named (`careq migrate-data`; dropped afterwards) and exports from there.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

patients=100000 format=csv database=""
while [ $# -gt 0 ]; do
  case "$1" in
    --patients) patients=$2; shift 2 ;;
    --format) format=$2; shift 2 ;;
    --database) database=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "export_rss: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ "$patients" =~ ^[0-9]+$ ]] || { echo "export_rss: not a number: $patients" >&2; exit 2; }
case "$format" in csv|ndjson) ;; *) echo "export_rss: --format csv or ndjson" >&2; exit 2 ;; esac
while read -r v; do unset "$v"; done < <(compgen -e | grep '^CAREQ_' || true)
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "export_rss: $tool is required" >&2; exit 1; }
done

echo "export_rss: building the release binary"
cargo build --release -q -p careq
careq_bin=$root/target/release/careq

work=$(mktemp -d "${TMPDIR:-/tmp}/careq-export-rss.XXXXXX")
careq_pid="" pg_db=""
cleanup() {
  [ -z "$careq_pid" ] || { kill -TERM "$careq_pid" 2>/dev/null || true; wait "$careq_pid" 2>/dev/null || true; }
  rm -rf "$work"
  [ -z "$pg_db" ] || psql -q "$database" -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
json() { python3 -c "import json,sys; v=json.load(sys.stdin); print(eval(sys.argv[1], {'v': v}))" "$1"; }

echo "export_rss: seeding $patients patients"
start=$SECONDS
"$careq_bin" bench-seed --database-url "sqlite://$work/bench.db" --patients "$patients" \
  --tickets 0 --out "$work/seed.json"
echo "export_rss: seeded in $((SECONDS - start)) s"
db_url="sqlite://$work/bench.db" engine=sqlite
if [ -n "$database" ]; then
  command -v psql >/dev/null || { echo "export_rss: psql is required for --database" >&2; exit 1; }
  pg_db="careq_export_rss_$$"
  psql -q "$database" -c "CREATE DATABASE $pg_db" >/dev/null
  db_url="${database%/*}/$pg_db" engine=postgres
  "$careq_bin" migrate-data --from "sqlite://$work/bench.db" --to "$db_url" > "$work/move.log"
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
CAREQ_LISTEN="127.0.0.1:$port" CAREQ_DATABASE_URL="$db_url" CAREQ_LOG=warn \
  CAREQ_EXPORT_DIR="$work/exports" "$careq_bin" serve > "$work/careq.log" 2>&1 &
careq_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null "$base/healthz" 2>/dev/null && break
  kill -0 "$careq_pid" 2>/dev/null || { cat "$work/careq.log" >&2; exit 1; }
  sleep 0.1
done

password=$(json "v['password']" < "$work/seed.json")
token=$(curl -fsS "$base/v1/auth/token" -H 'Content-Type: application/json' \
  -d "{\"username\":\"bench\",\"password\":\"$password\"}" | json "v['access_token']")
# One warm-up request, so "before" is a server that has served.
curl -fsS -o /dev/null -H "Authorization: Bearer $token" "$base/v1/patients?limit=1"
before=$(rss_kb "$careq_pid")

start_ms=$(date +%s%3N)
job=$(curl -fsS "$base/v1/exports" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' -d "{\"kind\":\"patients\",\"format\":\"$format\"}" | json "v['id']")
peak=$before
while :; do
  rss=$(rss_kb "$careq_pid"); [ "$rss" -gt "$peak" ] && peak=$rss
  code=$(curl -sS -o "$work/job.json" -w '%{http_code}' -H "Authorization: Bearer $token" "$base/v1/jobs/$job")
  [ "$code" = 303 ] && break
  [ "$code" = 200 ] || { echo "export_rss: the job answered $code" >&2; exit 1; }
  [ "$(json "v['state']" < "$work/job.json")" != failed ] || { cat "$work/job.json" >&2; exit 1; }
  sleep 0.05
done
elapsed_ms=$(( $(date +%s%3N) - start_ms ))
rows=$(json "v['progress']['rows_written']" < "$work/job.json")
size=$(json "v['size_bytes']" < "$work/job.json")
# The download streams from disk: its RSS is measured too.
curl -fsS -o /dev/null -H "Authorization: Bearer $token" "$base/v1/exports/$job/file" &
curl_pid=$!
while kill -0 "$curl_pid" 2>/dev/null; do
  rss=$(rss_kb "$careq_pid"); [ "$rss" -gt "$peak" ] && peak=$rss
  sleep 0.02
done
wait "$curl_pid"
after=$(rss_kb "$careq_pid")

mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }
echo
echo "export of $rows patients ($format, $engine): $((size / 1024 / 1024)) MiB written in ${elapsed_ms} ms"
echo "server RSS before: $(mb "$before")"
echo "server RSS peak during export and download: $(mb "$peak") (+$(mb $((peak - before))))"
echo "server RSS after: $(mb "$after")"
