#!/usr/bin/env bash
# Builds the peers the sidecar is measured against (hack/bench-sidecar.sh with PEERS=1):
# oauth2-proxy and Ory Oathkeeper at pinned versions, each from the Go module proxy in a
# scratch module of its own (go get -tool, then go build), into bin/peers/. Binaries already
# built are reused. Prints "name path" per peer on stdout; exits non-zero naming the peer that
# could not be fetched or built.
#
#   hack/peers.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${PEERS_DIR:-$ROOT/bin/peers}
log() { printf '[peers] %s\n' "$*" >&2; }

# build NAME MODULE VERSION: the module's main package at its root.
build() {
  local name=$1 module=$2 version=$3
  local out=$DIR/$name-$version src=$DIR/src/$name-$version
  if [[ ! -x "$out" ]]; then
    mkdir -p "$src"
    (
      cd "$src"
      [[ -f go.mod ]] || go mod init "peers/$name" >/dev/null 2>&1
      log "fetching $module@$version (a few minutes the first time)"
      if ! go get -tool "$module@$version" >&2; then
        log "could not fetch $module@$version from the Go module proxy"
        exit 1
      fi
      log "building $name"
      go build -trimpath -ldflags="-s -w" -o "$out.tmp" "$module" >&2
      mv "$out.tmp" "$out"
    )
  fi
  echo "$name $out"
}

build oauth2-proxy github.com/oauth2-proxy/oauth2-proxy/v7 v7.15.4
build oathkeeper github.com/ory/oathkeeper v0.40.9
