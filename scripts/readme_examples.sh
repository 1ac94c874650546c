#!/usr/bin/env bash
# Runs the README's "first session with curl" as written: the server block's environment with the
# given binary (standing in for `cargo run --release --`, which would rebuild), then the client
# block with `set -euo pipefail`, so any answer that is not a success fails the run.
# The port is the only change: 127.0.0.1:8080 becomes a free one, in case 8080 is taken.
# Usage: scripts/readme_examples.sh PATH_TO_CAREQ_BINARY
set -euo pipefail
bin=$(realpath "${1:?usage: scripts/readme_examples.sh PATH_TO_CAREQ_BINARY}")
readme="$(dirname "$0")/../README.md"
command -v jq >/dev/null || { apt-get update -qq && apt-get install -y -qq jq; }

block() { # the fenced block right after the marker line <!-- readme-example:$1 -->
  awk -v m="<!-- readme-example:$1 -->" '
    $0 == m { want = 1; next }
    want && /^```/ { if (inside) exit; inside = 1; next }
    inside { print }' "$readme"
}
server=$(block server)
client=$(block client)
[ -n "$server" ] && [ -n "$client" ] || { echo "README example blocks not found"; exit 1; }
case "$server" in
  *"cargo run --release -- serve"*) ;;
  *) echo "the server block no longer starts careq with cargo run: update this script"; exit 1 ;;
esac

dir=$(mktemp -d)
port=$((21000 + RANDOM % 900))
# The server block's words, with the binary in place of `cargo run --release --`.
start=${server//cargo run --release --/\"$bin\"}
( cd "$dir" && export CAREQ_LISTEN="127.0.0.1:$port" && eval "$start" > "$dir/serve.log" 2>&1 ) &
pid=$!
# (`|| true`: under `set -e` the server's exit status from `wait` would become the script's.)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

# The client's output goes through a pipe: the README's `curl -D /dev/stderr` opens that file
# afresh, and when CI sends its output to a log file, that opening truncated the log (everything
# before this step was lost). A pipe cannot be truncated. (pipefail keeps the client's status.)
bash -euo pipefail -c "${client//127.0.0.1:8080/127.0.0.1:$port}" 2>&1 | cat
echo "README examples ran: every request succeeded"
