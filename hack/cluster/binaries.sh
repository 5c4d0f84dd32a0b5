#!/usr/bin/env bash
# Builds what a throw-away single-node cluster needs (hack/cluster/up.sh) on a machine that has
# only the Go module proxy and Debian's packages:
#   - Debian: containerd, runc, containernetworking-plugins, iptables, iproute2 (installed when
#     missing);
#   - from the Go module proxy, into the git-ignored bin/k8s/VERSION/ next to envtest's
#     kube-apiserver and etcd: kubelet, kube-controller-manager, kube-scheduler, kube-proxy,
#     kubectl (stamped so they report their version) and a CoreDNS with only the plugins the
#     cluster uses. kube-apiserver and etcd come from hack/envtest-assets.sh.
# Binaries already there are kept, so warm runs cost a few milliseconds. Prints the folder on
# its last line.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
COREDNS_VERSION="${COREDNS_VERSION:-1.15.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="${CLUSTER_BIN_DIR:-$ROOT/bin/k8s/$K8S_VERSION}"
KUBE_CMDS=(kubelet kube-controller-manager kube-scheduler kube-proxy kubectl)

log() { printf '[cluster-binaries] %s\n' "$*" >&2; }
# shellcheck source=hack/k8s-build.sh
source "$ROOT/hack/k8s-build.sh"
die() { log "$*"; exit 1; }

# Debian packages, each named with a binary that shows it is installed.
install_packages() {
  local missing=() pkg bin
  for pair in containerd:/usr/bin/containerd runc:/usr/sbin/runc \
    containernetworking-plugins:/usr/lib/cni/bridge iptables:/usr/sbin/iptables iproute2:/usr/sbin/ip; do
    pkg="${pair%%:*}" bin="${pair#*:}"
    # By path: iproute2 also has a command named bridge.
    if [[ ! -x "$bin" ]]; then
      missing+=("$pkg")
    fi
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  [[ "$(id -u)" == 0 ]] || die "not root: install the Debian packages ${missing[*]} as root and run again"
  command -v apt-get >/dev/null 2>&1 || die "apt-get is not available: install ${missing[*]} and run again"
  log "Installing the Debian packages ${missing[*]}"
  apt-get update >&2 || die "apt-get update failed: install ${missing[*]} and run again"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
    die "apt-get install ${missing[*]} failed: install them and run again"
}

# The -X flags that make a binary built outside the Kubernetes release tooling report its
# version (without them, v0.0.0-master; the node's kubeletVersion would say so too).
build_kube() {
  local missing=() c
  for c in "${KUBE_CMDS[@]}"; do
    [[ -x "$DEST/$c" ]] || missing+=("$c")
  done
  # An API server built before it carried its version says v0.0.0-master, which Helm refuses
  # against a chart's kubeVersion: build it again.
  if ! "$DEST/kube-apiserver" --version 2>/dev/null | grep -qxF "Kubernetes v$K8S_VERSION"; then
    missing+=(kube-apiserver)
  fi
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "Building ${missing[*]} v$K8S_VERSION from the Go module proxy (first time only: about 5 minutes on 2 cores)"
  k8s_build "$work" "$DEST" "$K8S_VERSION" "${missing[@]}"
  for c in "${missing[@]}"; do log "Built $DEST/$c"; done
}

build_coredns() {
  [[ -x "$DEST/coredns" ]] && return 0
  log "Building CoreDNS v$COREDNS_VERSION from the Go module proxy (first time only: about 70 seconds)"
  local mod="$work/coredns" minor="${K8S_VERSION#1.}"
  mkdir -p "$mod"
  (
    cd "$mod"
    go mod init twofold.local/cluster-coredns >/dev/null 2>&1
    cat >main.go <<'GO'
// Command coredns is CoreDNS with only the plugins the throw-away test cluster uses. There is no
// forward plugin: the cluster has nothing outside it to ask.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	// The order in which the server chains the plugins, as in CoreDNS's plugin.cfg.
	dnsserver.Directives = []string{"errors", "health", "ready", "log", "cache", "kubernetes"}
}

func main() { coremain.Run() }
GO
    go get "github.com/coredns/coredns@v$COREDNS_VERSION" >/dev/null 2>&1 || go get "github.com/coredns/coredns@v$COREDNS_VERSION"
    go get "k8s.io/client-go@v0.$minor" "k8s.io/api@v0.$minor" "k8s.io/apimachinery@v0.$minor" >/dev/null 2>&1 ||
      go get "k8s.io/client-go@v0.$minor" "k8s.io/api@v0.$minor" "k8s.io/apimachinery@v0.$minor"
    go mod tidy >/dev/null 2>&1 || go mod tidy
    CGO_ENABLED=0 go build -ldflags "-s -w" -o "$work/coredns.bin" .
  )
  mv "$work/coredns.bin" "$DEST/coredns"
  log "Built $DEST/coredns"
}

install_packages
mkdir -p "$DEST"
# Two builds at once would only fight over the two cores and the same files.
exec 9>"$DEST/.cluster-binaries.lock"
flock 9
work="$(mktemp -d "${TMPDIR:-/tmp}/twofold-cluster-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
ENVTEST_ASSETS_DIR="$DEST" K8S_VERSION="$K8S_VERSION" "$ROOT/hack/envtest-assets.sh" >/dev/null
build_kube
build_coredns
echo "$DEST"
