#!/usr/bin/env bash
# Runs schemathesis against a release `careq serve` on a fresh database.
# Usage: scripts/schemathesis.sh PATH_TO_ST [MAX_EXAMPLES]
set -euo pipefail
st=${1:?path to the st executable}
examples=${2:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
port=$((19000 + RANDOM % 900))
hook_port=$((port + 1000))
# A local notifier that accepts every message, so `notify` is exercised rather than left at 501.
python3 - "$hook_port" <<'PY' &
import http.server, sys
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
PY
hook=$!
CAREQ_NOTIFY_URL="http://127.0.0.1:$hook_port/hook" CAREQ_LISTEN="127.0.0.1:$port" CAREQ_DATABASE_URL="sqlite://$work/st.db" \
  CAREQ_ADMIN_PASSWORD="schemathesis-admin-pw" CAREQ_RATE_BURST=1000000 CAREQ_RATE_PER_SECOND=1000000 \
  CAREQ_LOGIN_ATTEMPTS=1000000 CAREQ_LOG=warn \
  "$root/target/release/careq" serve > "$work/serve.log" 2>&1 &
server=$!
trap 'kill $server $hook 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
token=$(curl -fsS -X POST "http://127.0.0.1:$port/v1/auth/token" -H 'content-type: application/json' \
  -d '{"username":"admin","password":"schemathesis-admin-pw"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -fsS -X POST "http://127.0.0.1:$port/v1/clinics" -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"name":"Schemathesis","timezone":"UTC","ticket_prefix":"S"}' >/dev/null
cd "$root"
"$st" run "http://127.0.0.1:$port/openapi.json" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  -H "Authorization: Bearer $token" \
  --seed 1 --max-examples "$examples" \
  --exclude-path /v1/admin/maintenance \
  --exclude-path /v1/auth/token \
  --exclude-path '/v1/clinics/{id}/queue/live' \
  --exclude-path '/v1/clinics/{id}/queue/now-serving' \
  --no-color
