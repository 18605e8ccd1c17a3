#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver, which the console's browser
# tests (tests/console.rs) drive over WebDriver, if either is missing. The
# tests never skip: without a browser they fail and say how to install one.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: chromium and chromedriver are missing and there is no apt-get; install them with your package manager" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "==> installing chromium and chromium-driver (apt-get; about a minute)"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
command -v chromedriver >/dev/null 2>&1 || { echo "error: chromedriver is still not on PATH" >&2; exit 1; }
