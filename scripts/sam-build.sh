#!/usr/bin/env bash
# Builds the five deployable arm64 functions exactly as AWS gets them
# (`sam build`, which runs `cargo lambda build --release --arm64` per function,
# no Docker), then checks each bootstrap against the 10 MB size budget.
#
#   scripts/sam-build.sh            # artifacts in .aws-sam/build
#   SAM_BUILD_DIR=/tmp/b scripts/sam-build.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-tools.sh
# cargo-lambda cross-links with zig, which pip installs beside it as ziglang.
python3 -c 'import ziglang' 2>/dev/null || {
  echo "==> installing zig for cross-linking (pip install ziglang)"
  python3 -m pip install --quiet --disable-pip-version-check ziglang
}
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  echo "==> installing the arm64 standard library (rustup target add aarch64-unknown-linux-gnu)"
  timeout 300 rustup target add aarch64-unknown-linux-gnu || {
    echo "error: could not install the aarch64 target from static.rust-lang.org within 5 minutes" >&2
    exit 1
  }
fi

build_dir="${SAM_BUILD_DIR:-.aws-sam/build}"
echo "==> sam build into $build_dir (a cold build takes 5-8 minutes)"
SAM_CLI_TELEMETRY=0 sam build --beta-features --build-dir "$build_dir"

# 10 MB, decimal, as docs/benchmarks.md reports sizes (8 MB until the release
# profile unwound panics, issue 15). e_machine 183 is AArch64.
python3 - "$build_dir" <<'PY'
import os, struct, sys
build_dir, budget, over = sys.argv[1], 10_000_000, False
for fn in ("InstancesFunction", "WebhooksFunction", "DispatcherFunction", "PollerFunction", "ConsoleFunction"):
    path = os.path.join(build_dir, fn, "bootstrap")
    with open(path, "rb") as f:
        header = f.read(20)
    if header[:4] != b"\x7fELF" or struct.unpack_from("<H", header, 18)[0] != 183:
        sys.exit(f"error: {path} is not an arm64 executable")
    size = os.path.getsize(path)
    over |= size > budget
    print(f"{fn:<20} {size / 1e6:5.2f} MB  {'OVER the 10 MB budget' if size > budget else 'ok'}")
sys.exit(1 if over else 0)
PY
