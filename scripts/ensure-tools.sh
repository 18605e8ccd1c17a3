#!/usr/bin/env bash
# Installs what the local stack and the tests need, if missing: moto's server
# (the local DynamoDB/EventBridge-compatible endpoint), cfn-lint, cargo-lambda
# and the SAM CLI.
set -euo pipefail

need_pip=()
# moto exactly as measured and patched: scripts/moto-iam.py and
# scripts/moto_fast.py replace functions of this version (5.2.6 already
# answers differently), and docs/benchmarks.md's figures are for it.
moto_version=5.2.1
if ! command -v moto_server >/dev/null 2>&1 ||
   ! python3 -c "import moto, sys; sys.exit(moto.__version__ != '$moto_version')" 2>/dev/null; then
  need_pip+=("moto[server]==$moto_version")
fi
command -v cfn-lint >/dev/null 2>&1 || need_pip+=("cfn-lint")
command -v cargo-lambda >/dev/null 2>&1 || need_pip+=("cargo-lambda")
command -v sam >/dev/null 2>&1 || need_pip+=("aws-sam-cli")
# scripts/moto-iam.py reads the template and creates IAM users with these.
python3 -c 'import yaml, boto3' 2>/dev/null || need_pip+=("pyyaml" "boto3")
if [ ${#need_pip[@]} -gt 0 ]; then
  echo "==> installing with pip: ${need_pip[*]}"
  python3 -m pip install --quiet --disable-pip-version-check "${need_pip[@]}"
  hash -r
  # pyenv installs scripts behind shims that need a rehash.
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
fi
for tool in moto_server cfn-lint cargo-lambda sam; do
  command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool is still not on PATH after pip install" >&2; exit 1; }
done
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is not installed; install Rust from https://rustup.rs" >&2
  exit 1
fi
