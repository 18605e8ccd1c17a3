#!/usr/bin/env bash
# Runs a command with moto's server on a free loopback port, exporting
# AWS_ENDPOINT_URL; stops the server afterwards, whatever the command's outcome.
# The server enforces IAM as deployed (scripts/moto-iam.py): the command gets
# an admin's keys (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), and CE_IAM_USERS
# names a JSON file with one user per function of template.yaml, holding
# exactly that function's policy, which the tests run each function as.
set -euo pipefail

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp -t moto.XXXXXX.log)
users=$(mktemp -t moto-iam-users.XXXXXX.json)
# Its first three requests (the admin's creation) need no credentials.
# MOTO_IAM_ENFORCE=0 turns enforcement off, to measure what it costs.
no_auth=3; [ "${MOTO_IAM_ENFORCE:-1}" = 0 ] && no_auth=inf
INITIAL_NO_AUTH_ACTION_COUNT=$no_auth python3 "$(dirname "$0")/moto-iam.py" server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
# ce-load reads the server's CPU time from /proc/$MOTO_PID/stat.
export MOTO_PID=$moto_pid
cleanup() {
  kill "$moto_pid" 2>/dev/null || true
  wait "$moto_pid" 2>/dev/null || true
  rm -f "$log" "$users"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for _ in $(seq 1 150); do
  if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then
    echo "error: moto_server exited during start-up:" >&2; cat "$log" >&2; exit 1
  fi
  sleep 0.2
done
echo "==> moto_server listening on 127.0.0.1:$port"

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_REGION="${AWS_REGION:-us-east-1}"
python3 "$(dirname "$0")/moto-iam.py" bootstrap "$users"
export CE_IAM_USERS="$users"
AWS_ACCESS_KEY_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin"]["access_key_id"])' "$users")
AWS_SECRET_ACCESS_KEY=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin"]["secret_access_key"])' "$users")
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
echo "==> IAM enforced: one user per function of template.yaml ($users)"
"$@"
