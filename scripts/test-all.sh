#!/usr/bin/env bash
# Every check CI runs, in order, failing fast. Expects AWS_ENDPOINT_URL and
# CE_IAM_USERS (scripts/with-moto.sh sets them: moto enforces IAM, and every
# test runs each function as its own template-derived IAM user).
set -euo pipefail

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> cfn-lint template.yaml"
cfn-lint template.yaml
echo "==> sam validate --lint"
SAM_CLI_TELEMETRY=0 sam validate --lint
echo "==> template checks beyond lint: DLQs, alarms, log retention, no wildcard on tables, PITR, SSE"
python3 scripts/template-checks.py --self-test
python3 scripts/template-checks.py
echo "==> docs/capacity.md's cost tables are what docs/capacity/inputs.json gives"
python3 scripts/capacity-cost.py --check
echo "==> moto answers the same with scripts/moto_fast.py's fast paths as without"
python3 scripts/moto-fast-check.py
echo "==> cargo-lambda smoke test (tests/events/)"
scripts/lambda-smoke.sh
echo "==> cargo test (DynamoDB at $AWS_ENDPOINT_URL)"
log=$(mktemp -t cargo-test.XXXXXX.log)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole workspace: cargo prints one per test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "workspace: %d passed, %d failed\n", p, f }' "$log"
[ "$status" -eq 0 ] || exit "$status"
echo "==> the deployed arm64 artifacts: sam build (cold: about 6 min; warm: seconds), then each under qemu"
scripts/sam-build.sh
scripts/arm64-smoke.sh
