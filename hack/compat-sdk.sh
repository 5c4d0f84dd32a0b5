#!/usr/bin/env bash
# Builds the SuperTokens frontend bundles the compatibility tests (test/compat) load in
# Chromium: installs the pinned packages of test/compat/js with npm ci into its node_modules
# and bundles, with esbuild, entry.js (supertokens-web-js) into test/compat/js/dist/sdk.js and
# react.jsx (supertokens-auth-react's prebuilt UI) into dist/react.js. Both folders are
# git-ignored; bundles built from the same package.json, package-lock.json and sources are
# reused. Exits non-zero with a message naming what is missing (npm, or the npm registry), so
# the tests fail rather than skip. Prints the bundle's path on its last line.
#
#   hack/compat-sdk.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=$ROOT/test/compat/js
OUT=$DIR/dist/sdk.js
log() { printf '[compat-sdk] %s\n' "$*" >&2; }

stamp=$(cat "$DIR/package.json" "$DIR/package-lock.json" "$DIR/entry.js" "$DIR/react.jsx" | sha256sum | cut -d' ' -f1)
if [[ -f "$OUT" && "$(cat "$DIR/dist/.stamp" 2>/dev/null)" == "$stamp" ]]; then
  echo "$OUT"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  log "npm is not on the PATH: install Node.js 20 or newer with npm, then run again"
  exit 1
fi
cd "$DIR"
# --ignore-scripts: no package needs an install script; esbuild's binary comes as an
# optional dependency.
if ! npm ci --no-audit --no-fund --ignore-scripts >&2; then
  log "npm ci failed in $DIR: the npm registry must be reachable to install supertokens-web-js, supertokens-auth-react, React and esbuild"
  exit 1
fi
mkdir -p dist
./node_modules/.bin/esbuild entry.js --bundle --format=iife --target=chrome120 --log-level=warning --outfile="$OUT" >&2
./node_modules/.bin/esbuild react.jsx --bundle --format=iife --target=chrome120 --log-level=warning --jsx=automatic \
  --define:process.env.NODE_ENV='"production"' --outfile="$DIR/dist/react.js" >&2
echo "$stamp" > dist/.stamp
log "built $OUT"
echo "$OUT"
