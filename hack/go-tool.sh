#!/usr/bin/env bash
# Installs a Go command at a pinned version into the git-ignored bin/ folder as bin/NAME-VERSION
# and prints its path on the last line. A binary already there is reused, so warm runs cost
# nothing. Only the Go module proxy is needed (no other network access).
#
#   hack/go-tool.sh helm helm.sh/helm/v3/cmd/helm v3.22.0
#   hack/go-tool.sh kustomize sigs.k8s.io/kustomize/kustomize/v5 v5.8.3
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 NAME PACKAGE VERSION" >&2
  exit 2
fi
name="$1" pkg="$2" version="$3"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCALBIN="${LOCALBIN:-$ROOT/bin}"
dest="$LOCALBIN/$name-$version"

if [[ -x "$dest" ]]; then
  echo "$dest"
  exit 0
fi

mkdir -p "$LOCALBIN"
gobin="$(mktemp -d "$LOCALBIN/.gobin-$name.XXXXXX")"
trap 'rm -rf "$gobin"' EXIT
echo "[go-tool] Installing $pkg@$version into $dest" >&2
# Outside any module, so the project's go.mod neither constrains nor records the tool.
(cd "$gobin" && GOBIN="$gobin" go install "$pkg@$version") >&2
# The command is named after the last path element that is not a major version (v5).
bin="$(find "$gobin" -maxdepth 1 -type f -perm -u+x | head -n 1)"
if [[ -z "$bin" ]]; then
  echo "[go-tool] go install $pkg@$version produced no binary" >&2
  exit 1
fi
mv "$bin" "$dest"
echo "$dest"
