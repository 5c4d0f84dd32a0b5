# Shared by hack/cluster/up.sh and down.sh: the cluster's fixed addresses, its folder layout and
# the helpers that start and stop the processes it owns. Sourced, not run.

# The reserved benchmark ranges (RFC 2544): nothing on a real network uses them, so the cluster
# can never shadow or reach a real address.
BRIDGE="${CLUSTER_BRIDGE:-twofold0}"
NODE_NAME="${CLUSTER_NODE_NAME:-twofold-node}"
NODE_IP=198.18.0.1
POD_CIDR=198.18.0.0/16
NODE_POD_SUBNET=198.18.0.0/24
SERVICE_CIDR=198.19.0.0/16
KUBERNETES_SVC_IP=198.19.0.1
DNS_IP=198.19.0.10
CNI_NETWORK=twofold-cluster
API_PORT="${CLUSTER_API_PORT:-6443}"
ETCD_PORT="${CLUSTER_ETCD_PORT:-12379}"
ETCD_PEER_PORT="${CLUSTER_ETCD_PEER_PORT:-12380}"
KUBELET_PORT="${CLUSTER_KUBELET_PORT:-10250}"
KUBELET_HEALTHZ_PORT="${CLUSTER_KUBELET_HEALTHZ_PORT:-10248}"
PROXY_HEALTHZ_PORT="${CLUSTER_PROXY_HEALTHZ_PORT:-10256}"
PROXY_METRICS_PORT="${CLUSTER_PROXY_METRICS_PORT:-10249}"
PAUSE_IMAGE_DEFAULT=twofold.local/cluster/pause:1
COREDNS_IMAGE=twofold.local/cluster/coredns:1.15.0

# Kernel settings the kubelet and kube-proxy change outside the cluster's folder; up.sh saves
# them before the first start and down.sh puts them back.
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.conf.all.route_localnet
  net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait net.bridge.bridge-nf-call-iptables
  net.bridge.bridge-nf-call-ip6tables net.ipv4.ip_forward)
# Folders outside the cluster's folder that the components create when missing; the ones that
# were missing before up.sh are removed by down.sh.
GLOBAL_PATHS=(/var/lib/cni /run/containerd /opt/containerd /var/log/containers /var/log/pods
  /var/lib/kubelet /etc/kubernetes /run/netns /etc/cni)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
K8S_VERSION="${K8S_VERSION:-1.37.2}"
BIN="${CLUSTER_BIN_DIR:-$ROOT/bin/k8s/$K8S_VERSION}"

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# set_state_dir makes the absolute folder layout from the STATE_DIR argument.
set_state_dir() {
  [[ $# -eq 1 && -n "$1" ]] || die "usage: $0 STATE_DIR"
  mkdir -p "$1"
  S="$(cd "$1" && pwd -P)"
  # down.sh empties this folder: refuse the root and top-level folders.
  [[ "$S" == /*/* ]] || die "STATE_DIR must be at least two levels below / (got $S)"
  MARKER="$S/.twofold-cluster"
  PKI="$S/pki"
  RUN="$S/run"
  LOGS="$S/logs"
  SAVED="$S/saved"
  CTRD_SOCK="$S/containerd/containerd.sock"
  KUBECONFIG_ADMIN="$S/kubeconfig"
}

kubectl_() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }
ctr_() { ctr --address "$CTRD_SOCK" --namespace k8s.io "$@"; }

# owned_pid prints the PID recorded for NAME when that process still runs and is the one
# up.sh started (its command line names the cluster's folder), so a recycled PID is never hit.
owned_pid() {
  local f="$RUN/$1.pid" pid
  [[ -f "$f" ]] || return 1
  pid="$(<"$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$S" || return 1
  echo "$pid"
}

# stop_pid sends SIGTERM to PID, waits up to SECONDS for it to exit, then sends SIGKILL.
stop_pid() {
  local pid=$1 wait=${2:-20} i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < wait * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "PID $pid did not stop after ${wait}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
