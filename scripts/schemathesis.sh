#!/usr/bin/env bash
# Runs schemathesis against a release `careq serve` on a fresh database.
# Usage: scripts/schemathesis.sh PATH_TO_ST [MAX_EXAMPLES [MORE ST RUN OPTIONS…]]
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
  "${CAREQ_BIN:-$root/target/release/careq}" serve > "$work/serve.log" 2>&1 &
server=$!
trap 'kill $server $hook 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
token=$(curl -fsS -X POST "http://127.0.0.1:$port/v1/auth/token" -H 'content-type: application/json' \
  -d '{"username":"admin","password":"schemathesis-admin-pw"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
api() { curl -fsS "http://127.0.0.1:$port$1" -H "authorization: Bearer $token" "${@:2}"; }
post() { api "$1" -H 'content-type: application/json' -d "$2"; }
id() { python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
# Seed data random requests cannot make: a clinic with a patient, appointments (which need a
# clinician: the admin, who may see every clinic) and a called ticket, so reads, moves and
# check-ins of them find something. The clinician is also what bookings use (schemathesis.toml).
CAREQ_ST_CLINICIAN=$(api /v1/me | id)
export CAREQ_ST_CLINICIAN
clinic=$(post /v1/clinics '{"name":"Schemathesis","timezone":"UTC","ticket_prefix":"S","country":"AT"}' | id)
patient=$(post /v1/patients '{"clinic_id":"'"$clinic"'","given_name":"Seed","family_name":"Patient","date_of_birth":"1980-01-01","sex":"female","phone":"+43 664 1234567"}' | id)
for day in 01 02 03 04 05 06; do
  post /v1/appointments '{"clinic_id":"'"$clinic"'","patient_id":"'"$patient"'","clinician_id":"'"$CAREQ_ST_CLINICIAN"'","start":"2099-01-'"$day"'T09:00:00Z","duration_minutes":30}' >/dev/null
done
post "/v1/clinics/$clinic/queue/tickets" '{"patient_id":"'"$patient"'"}' >/dev/null
post "/v1/clinics/$clinic/queue/call-next" '{"counter":"1"}' >/dev/null
cd "$root"
# A deleted patient's access log stays readable: scripts/schemathesis_hooks.py says so to use_after_free.
export SCHEMATHESIS_HOOKS="$root/scripts/schemathesis_hooks.py"
# Left out: signing out (DELETE /v1/auth/token) and maintenance mode would end the run's own access.
# Left out: the FHIR operations (tag fhir). Their bodies and search values are defined by the FHIR
# R4 specification, not by this document (which gives them as plain objects and strings), so
# schemathesis would call every schema-valid garbage body or value that FHIR rules refuse (a
# Patient without a name, `birthdate=abc`, an unknown search parameter under handling=strict) a
# wrongly rejected request. They are checked instead by tests/api/fhir.rs, by the R4B models of
# fhir.resources over every body those tests receive, and by fhirpy (scripts/fhir_*.py in CI).
"$st" run "http://127.0.0.1:$port/openapi.json" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  -H "Authorization: Bearer $token" \
  --seed 1 --max-examples "$examples" \
  --exclude-path /v1/admin/maintenance \
  --exclude-name "DELETE /v1/auth/token" \
  --exclude-tag fhir \
  --no-color "${@:3}"
