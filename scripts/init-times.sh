#!/usr/bin/env bash
# Init time of each release function under a stand-in Lambda Runtime API:
# from exec until the bootstrap first asks for an invocation. Needs a
# DynamoDB server (run it under scripts/with-moto.sh): init includes the
# DynamoDB warm-up call. Builds x86_64, the architecture this machine runs;
# the deployed arm64 sizes come from scripts/sam-build.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> cargo lambda build --release (x86_64) of the four functions"
cargo lambda build --release --compiler cargo -p instances -p webhooks -p dispatcher -p poller
cargo build -q -p ce-local --bin ce-admin
tables=$(cargo run -q -p ce-local --bin ce-admin -- init-local)
key=$(python3 -c 'import os,base64; print(base64.b64encode(os.urandom(32)).decode())')
for fn in instances webhooks dispatcher poller; do
  ls -l "target/lambda/$fn/bootstrap" | awk -v f="$fn" '{printf "%s: release binary %.2f MB (x86_64)\n", f, $5/1000000}'
  python3 scripts/init-time.py "$fn" "$tables,CE_ENCRYPTION_KEY=$key"
done
