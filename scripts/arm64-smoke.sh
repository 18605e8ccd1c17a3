#!/usr/bin/env bash
# The arm64 artifacts that scripts/sam-build.sh produced, run on this x86_64
# machine under qemu-user (Debian's qemu-user-static, loader root from
# libc6-arm64-cross) against a stand-in Lambda Runtime API and moto, each with
# its function's IAM user: they must answer the sample events of tests/events/
# as the native x86_64 build does (scripts/arm64-smoke.py). Prints each
# artifact's init time, emulated. Expects AWS_ENDPOINT_URL and CE_IAM_USERS
# (scripts/with-moto.sh sets both) and .aws-sam/build (or SAM_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

# Install the emulator and the AArch64 loader and libc once (apt).
if ! command -v qemu-aarch64-static >/dev/null || [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then
  echo "==> installing qemu-user-static and libc6-arm64-cross (apt)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq qemu-user-static libc6-arm64-cross >/dev/null
fi

build_dir="${SAM_BUILD_DIR:-.aws-sam/build}"
[ -x "$build_dir/InstancesFunction/bootstrap" ] || { echo "error: no $build_dir: run scripts/sam-build.sh first" >&2; exit 1; }
# The native x86_64 builds to compare with (already built by cargo test).
cargo build -q --workspace --bins
tables=$(cargo run -q -p ce-local --bin ce-admin -- init-local --table-prefix arm64-)
key=$(python3 -c 'import os,base64; print(base64.b64encode(os.urandom(32)).decode())')
python3 scripts/arm64-smoke.py "$build_dir" "${CARGO_TARGET_DIR:-target}/debug" \
  "$tables,CE_ENCRYPTION_KEY=$key,ALLOW_PRIVATE_NETWORK=true,POLL_RULE_PREFIX=arm64-,POLLER_FUNCTION_ARN=arn:aws:lambda:us-east-1:123456789012:function:arm64-poller"
