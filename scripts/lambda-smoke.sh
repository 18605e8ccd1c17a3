#!/usr/bin/env bash
# Smoke test of the cargo-lambda workflow: `cargo lambda watch` serves every
# function against the local DynamoDB server, and `cargo lambda invoke` sends
# each sample event of tests/events/, checking the answer.
# Expects AWS_ENDPOINT_URL (scripts/with-moto.sh sets it).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-lambda >/dev/null || { echo "==> installing cargo-lambda with pip"; python3 -m pip install --quiet --disable-pip-version-check cargo-lambda; command -v pyenv >/dev/null && pyenv rehash || true; }

tables=$(cargo run -q -p ce-local --bin ce-admin -- init-local)
key=$(python3 -c 'import os,base64; print(base64.b64encode(os.urandom(32)).decode())')
env_vars="$tables,CE_ENCRYPTION_KEY=$key,ALLOW_PRIVATE_NETWORK=true,AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL,AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY,AWS_REGION=$AWS_REGION"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp -t lambda-watch.XXXXXX.log)
echo "==> cargo lambda watch on 127.0.0.1:$port"
cargo lambda watch -A 127.0.0.1 -P "$port" --env-var "$env_vars" >"$log" 2>&1 &
watch_pid=$!
cleanup() { kill "$watch_pid" 2>/dev/null || true; wait "$watch_pid" 2>/dev/null || true; rm -f "$log"; }
trap cleanup EXIT
for _ in $(seq 1 300); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && break
  kill -0 "$watch_pid" 2>/dev/null || { cat "$log" >&2; echo "error: cargo lambda watch exited" >&2; exit 1; }
  sleep 0.2
done

failures=0
check() { # function event expected-status-or-key
  local fn=$1 event=$2 expect=$3 out
  echo "==> cargo lambda invoke $fn --data-file tests/events/$event (first call compiles $fn)"
  # The first call of a function compiles it; a function that fails at init
  # must fail here, not hang.
  if ! out=$(timeout 600 cargo lambda invoke "$fn" -A 127.0.0.1 -P "$port" --data-file "tests/events/$event" 2>&1); then
    echo "FAIL $fn $event: $out"; failures=$((failures+1)); return
  fi
  if python3 - "$expect" "$out" <<'PY'
import json, sys
expect, out = sys.argv[1], json.loads(sys.argv[2])
ok = str(out.get("statusCode")) == expect if expect.isdigit() else expect in out
sys.exit(0 if ok else 1)
PY
  then echo "ok   $fn $event -> $expect"; else echo "FAIL $fn $event: expected $expect, got $out"; failures=$((failures+1)); fi
}
check instances instances-apigw-v2-list.json 200
check instances instances-apigw-v1-list.json 200
check instances instances-apigw-v1-unauthorized.json 401
check instances instances-apigw-v2-create.json 200
check webhooks webhooks-apigw-v2-one-unknown-instance.json 404
check webhooks webhooks-apigw-v1-woocommerce-ping.json 200
check dispatcher dispatcher-dynamodb-stream.json batchItemFailures
check dispatcher dispatcher-eventbridge-scheduled.json due
check poller poller-scheduled-interval.json polled
check poller poller-continuation.json polled
check console console-apigw-v2-index.json 200
echo "lambda smoke: $((11-failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
