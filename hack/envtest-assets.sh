#!/usr/bin/env bash
# Builds envtest's control-plane binaries (kube-apiserver, etcd) from the Go module proxy, so the
# controller and webhook tests run on machines without direct internet access. The binaries are
# cached in a git-ignored folder and reused; KUBEBUILDER_ASSETS, when set to a folder that holds
# them, wins. Prints the folder that holds the binaries on its last line.
#
#   hack/envtest-assets.sh            # build if needed, print the folder
#   KUBEBUILDER_ASSETS=/x hack/...    # use /x as it is
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${ENVTEST_ASSETS_DIR:-$ROOT/bin/k8s/$K8S_VERSION}"

log() { printf '[envtest-assets] %s\n' "$*" >&2; }

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  if [[ -x "$KUBEBUILDER_ASSETS/kube-apiserver" && -x "$KUBEBUILDER_ASSETS/etcd" ]]; then
    echo "$KUBEBUILDER_ASSETS"
    exit 0
  fi
  log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks kube-apiserver or etcd; building into $DEST instead"
fi

mkdir -p "$DEST"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [[ ! -x "$DEST/kube-apiserver" ]]; then
  log "Building kube-apiserver v$K8S_VERSION from the Go module proxy (first time only: about 5 minutes on 2 cores)"
  # shellcheck source=hack/k8s-build.sh
  source "$ROOT/hack/k8s-build.sh"
  k8s_build "$work" "$DEST" "$K8S_VERSION" kube-apiserver
  log "Built $DEST/kube-apiserver"
fi

if [[ ! -x "$DEST/etcd" ]]; then
  log "Building etcd v$ETCD_VERSION from the Go module proxy (first time only: about 30 seconds)"
  mod="$work/etcd"
  mkdir -p "$mod"
  cd "$mod"
  go mod init twofold.local/envtest-etcd >/dev/null 2>&1
  cat >main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >/dev/null 2>&1
  go mod tidy >/dev/null 2>&1 || go mod tidy
  go build -o "$DEST/etcd.tmp" .
  mv "$DEST/etcd.tmp" "$DEST/etcd"
  log "Built $DEST/etcd"
fi

echo "$DEST"
