# Sourced by hack/envtest-assets.sh and hack/cluster/binaries.sh.
#
# k8s_build WORK DEST VERSION CMD... builds k8s.io/kubernetes/cmd/CMD (kube-apiserver, kubelet,
# ...) at vVERSION from the Go module proxy into DEST/CMD, in a throw-away module under WORK.
# k8s.io/kubernetes is not meant to be required as a module: its go.mod replaces every staging
# module (k8s.io/api, k8s.io/client-go, ...) with a folder of its own repository, so the
# throw-away module replaces each with the published v0.MINOR.PATCH instead. The binaries carry the
# version, as release builds do (`kubectl version`, and Helm's kubeVersion check, read it).
k8s_build() {
  local work=$1 dest=$2 version=$3
  shift 3
  local mod="$work/k8s-$$" major="${version%%.*}" minor="${version#*.}" flags="-s -w" p c pkgs=()
  minor="${minor%%.*}"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $p.gitVersion=v$version -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    flags+=" -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  for c in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  mkdir -p "$mod/out"
  (
    cd "$mod"
    go mod init twofold.local/k8s-build >/dev/null 2>&1
    go mod download -json "k8s.io/kubernetes@v$version" >k8s.json
    local gomod
    gomod="$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p' k8s.json)"
    {
      echo "require k8s.io/kubernetes v$version"
      grep -E '=> \./staging/src/' "$gomod" | awk -v v="v0.${version#1.}" '{print "replace " $1 " => " $1 " " v}'
    } >>go.mod
    {
      printf '//go:build tools\n\npackage tools\n\nimport (\n'
      for c in "${pkgs[@]}"; do printf '\t_ "%s"\n' "$c"; done
      printf ')\n'
    } >tools.go
    go mod tidy >/dev/null 2>&1 || go mod tidy
    go build -ldflags "$flags" -o out/ "${pkgs[@]}"
  )
  for c in "$@"; do
    cp "$mod/out/$c" "$dest/$c.tmp"
    mv "$dest/$c.tmp" "$dest/$c"
  done
}
