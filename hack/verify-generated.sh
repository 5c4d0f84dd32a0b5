#!/usr/bin/env bash
# Fails when the committed generated files (DeepCopy methods, CRDs) differ from what the API
# types generate. It regenerates them in place, so after a failure the tree holds the fresh
# files, ready to review and commit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CONTROLLER_GEN="${CONTROLLER_GEN:-bin/controller-gen}"

generated() { git ls-files --cached --others --exclude-standard -- 'api/**/zz_generated.*.go' 'config/crd/bases/*.yaml' 'config/rbac/role.yaml' 'charts/twofold/files/crds/*.yaml' 'charts/twofold/files/rbac/role.yaml'; }

before="$(mktemp -d)"
trap 'rm -rf "$before"' EXIT
while read -r f; do
  mkdir -p "$before/$(dirname "$f")"
  cp "$f" "$before/$f"
done < <(generated)

make --no-print-directory -s generate manifests CONTROLLER_GEN="$CONTROLLER_GEN" >/dev/null

stale=0
while read -r f; do
  if [[ ! -f "$before/$f" ]]; then
    echo "generated file $f was missing"
    stale=1
  elif ! cmp -s "$before/$f" "$f"; then
    echo "generated file $f was stale:"
    diff -u "$before/$f" "$f" | head -40 || true
    stale=1
  fi
done < <(generated)

if [[ $stale -ne 0 ]]; then
  echo "Generated files did not match the API types. They are regenerated now: review and commit them (make generate manifests)."
  exit 1
fi
