#!/usr/bin/env bash
# Puts a static binary into an image and loads it into the cluster that hack/cluster/up.sh runs
# in STATE_DIR, so pods can use it with imagePullPolicy: Never (nothing can be pulled here).
#
#   hack/cluster/image.sh STATE_DIR REF BINARY [ARG...]
#   e.g. hack/cluster/image.sh .cluster twofold.local/test/echo:1 bin/echo -listen :8080
#
# The binary must be static (CGO_ENABLED=0); it becomes /NAME, the image's entrypoint (with
# ARGs), running as user 65532.
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ $# -ge 3 ]] || die "usage: $0 STATE_DIR REF BINARY [ARG...]"
set_state_dir "$1"
ref=$2 binary=$3
shift 3
[[ -f "$MARKER" && -S "$CTRD_SOCK" ]] || die "no cluster runs in $S: run hack/cluster/up.sh $S first"
[[ -x "$S/bin/cluster-kit" ]] || die "$S/bin/cluster-kit is missing: run hack/cluster/up.sh $S again"
tar="$(mktemp "$S/images/image.XXXXXX")"
trap 'rm -f "$tar"' EXIT
"$S/bin/cluster-kit" image -ref "$ref" -binary "$binary" -out "$tar" -- "$@"
ctr_ images import "$tar" >/dev/null
log "Loaded $ref"
