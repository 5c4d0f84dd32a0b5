#!/usr/bin/env bash
# Builds the release archives of the kubectl plugin and its krew manifest: for each platform
# krew installs from, kubectl-twofold_<os>_<arch>.tar.gz (the binary) into bin/dist/, and
# bin/dist/twofold.yaml from plugins/krew/twofold.yaml.tmpl with the version, the archives'
# addresses under RELEASE_URL and their SHA-256 sums. Attach the archives to the release and
# submit the manifest to the krew index.
#
#   VERSION=v0.1.0 RELEASE_URL=https://github.com/twofold-dev/twofold/releases/download/v0.1.0 hack/krew.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=${VERSION:-v$(awk '/^appVersion:/ {gsub(/"/, "", $2); print $2}' "$ROOT/charts/twofold/Chart.yaml")}
RELEASE_URL=${RELEASE_URL:-https://github.com/twofold-dev/twofold/releases/download/$VERSION}
DIST=$ROOT/bin/dist
mkdir -p "$DIST"

declare -A SUM
for platform in linux/amd64 linux/arm64 darwin/arm64; do
  os=${platform%/*} arch=${platform#*/}
  work=$(mktemp -d)
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -C "$ROOT" -trimpath \
    -ldflags "-s -w -X github.com/twofold-dev/twofold/version.Version=${VERSION#v}" -o "$work/kubectl-twofold" ./cmd/kubectl-twofold
  archive=$DIST/kubectl-twofold_${os}_${arch}.tar.gz
  tar -C "$work" --owner=0 --group=0 --mtime=@0 -czf "$archive" kubectl-twofold
  rm -rf "$work"
  SUM[${os}_${arch}]=$(sha256sum "$archive" | cut -d' ' -f1)
  echo "[krew] $archive" >&2
done

sed -e "s|\${VERSION}|$VERSION|" -e "s|\${RELEASE_URL}|$RELEASE_URL|" \
  -e "s|\${SHA256_LINUX_AMD64}|${SUM[linux_amd64]}|" -e "s|\${SHA256_LINUX_ARM64}|${SUM[linux_arm64]}|" \
  -e "s|\${SHA256_DARWIN_ARM64}|${SUM[darwin_arm64]}|" "$ROOT/plugins/krew/twofold.yaml.tmpl" >"$DIST/twofold.yaml"
echo "$DIST/twofold.yaml"
