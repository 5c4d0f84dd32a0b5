#!/usr/bin/env bash
# Makes sure Debian's chromium is installed for the browser tests (test/browser), which drive
# it headless from Go with chromedp. Installs it with apt-get when /usr/bin/chromium is
# missing; exits non-zero with a message naming the package when that is not possible, so the
# tests fail rather than skip. Prints the browser's path on its last line.
#
#   hack/chromium.sh
set -euo pipefail

BIN=/usr/bin/chromium
log() { printf '[chromium] %s\n' "$*" >&2; }

if [[ -x "$BIN" ]]; then
  echo "$BIN"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  log "apt-get is not available: install the Debian package 'chromium' (it provides $BIN) and run again"
  exit 1
fi

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
  else
    log "not root and no sudo: install the Debian package 'chromium' (it provides $BIN) as root and run again"
    exit 1
  fi
fi

log "installing the Debian package 'chromium'"
if ! "${SUDO[@]}" apt-get update >&2; then
  log "apt-get update failed: install the Debian package 'chromium' (it provides $BIN) and run again"
  exit 1
fi
if ! DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y chromium >&2; then
  log "apt-get install chromium failed: install the Debian package 'chromium' (it provides $BIN) and run again"
  exit 1
fi
if [[ ! -x "$BIN" ]]; then
  log "the package 'chromium' is installed but $BIN is missing"
  exit 1
fi
echo "$BIN"
