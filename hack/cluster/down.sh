#!/usr/bin/env bash
# Tears down what hack/cluster/up.sh STATE_DIR brought up and undoes what it and the components
# changed on the machine: pods deleted first (so the CNI plugin releases their addresses), then
# the processes up.sh started (by their recorded PIDs) and the container shims of its containerd,
# kube-proxy's and the guard's iptables rules, the Service route, the bridge, mounts (deepest
# first), the kubepods cgroups, the kernel settings (back to their saved values), CNI result
# files and /var/log/containers links. STATE_DIR is removed except its logs/ folder.
# Safe to run twice, or after a failed up.sh. Exits non-zero when something could not be undone.
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ $# -eq 1 && -n "$1" ]] || die "usage: $0 STATE_DIR"
[[ -d "$1" ]] || { log "$1 does not exist: nothing to tear down"; exit 0; }
set_state_dir "$1"
[[ "$(id -u)" == 0 ]] || die "needs root"
[[ -f "$MARKER" ]] || { log "$S holds no cluster (no $MARKER): nothing to tear down"; exit 0; }

t0="$(now)"
problems=0
problem() { log "NOT UNDONE: $*"; problems=$((problems + 1)); }

stop() {
  local name=$1 wait=${2:-20} pid
  if pid="$(owned_pid "$name")"; then
    stop_pid "$pid" "$wait" || problem "$name (PID $pid) still runs"
  fi
  rm -f "$RUN/$name.pid"
}

# containerd's shims outlive it; they are found by the socket path of this cluster's containerd
# in their command line, and ended by PID.
shim_pids() {
  local d pid
  for d in /proc/[0-9]*; do
    pid="${d#/proc/}"
    tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -qF -- "-address $CTRD_SOCK" && echo "$pid"
  done
  return 0
}

delete_pods() {
  owned_pid kube-apiserver >/dev/null || return 0
  owned_pid kubelet >/dev/null || return 0
  # Nothing may recreate or place pods while they go.
  stop kube-controller-manager
  stop kube-scheduler
  kubectl_ delete pods --all --all-namespaces --grace-period=1 --wait=false >/dev/null 2>&1 || true
  local i
  for ((i = 0; i < 300; i++)); do
    if [[ -z "$(kubectl_ get pods --all-namespaces -o name 2>/dev/null)" ]] &&
      [[ -z "$(ctr_ tasks ls -q 2>/dev/null)" ]]; then
      return 0
    fi
    sleep 0.2
  done
  log "pods were still running after 60 s; killing their tasks"
}

kill_tasks() {
  owned_pid containerd >/dev/null || return 0
  local id
  for id in $(ctr_ tasks ls -q 2>/dev/null); do
    ctr_ tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true
  done
}

remove_iptables() {
  local ipt table chain
  iptables -t mangle -D FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP 2>/dev/null || true
  iptables -t mangle -D INPUT -i "$BRIDGE" ! -d "$NODE_IP" -j DROP 2>/dev/null || true
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null 2>&1 || continue
    for table in filter nat mangle raw; do
      # Jumps into KUBE- chains from the built-in chains, then the KUBE- chains themselves.
      "$ipt" -t "$table" -S 2>/dev/null | grep -E '^-A [A-Z]+ .*-j KUBE-' | grep -vE '^-A KUBE-' |
        while read -r rule; do
          read -ra words <<<"${rule/-A /-D }"
          "$ipt" -t "$table" "${words[@]}" 2>/dev/null || true
        done || true
      for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk '/^-N KUBE-/ { print $2 }'); do
        "$ipt" -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk '/^-N KUBE-/ { print $2 }'); do
        "$ipt" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
  if command -v nft >/dev/null 2>&1; then
    nft delete table ip kube-proxy 2>/dev/null || true
    nft delete table ip6 kube-proxy 2>/dev/null || true
  fi
}

unmount_all() {
  local mp
  # Deepest first; mountinfo escapes spaces as \040.
  for mp in $(awk -v s="$S" 'index($5, s) == 1 || $5 ~ "^/run/containerd/" { print $5 }' /proc/self/mountinfo | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-); do
    umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || problem "could not unmount $mp"
  done
  # Network namespaces containerd made for sandboxes whose CNI DEL did not run.
  local ns
  for ns in $(ls -1 /run/netns 2>/dev/null | grep '^cni-' || true); do
    if ! grep -qxF "$ns" "$SAVED/netns" 2>/dev/null; then
      umount "/run/netns/$ns" 2>/dev/null || umount -l "/run/netns/$ns" 2>/dev/null || true
      rm -f "/run/netns/$ns" 2>/dev/null || problem "could not remove /run/netns/$ns (still mounted somewhere)"
    fi
  done
}

remove_cgroups() {
  local root pid
  for root in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d "$root" ]] || continue
    # Anything left in them is a container of this cluster.
    for pid in $(find "$root" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u); do
      kill -KILL "$pid" 2>/dev/null || true
    done
    find "$root" -depth -type d -exec rmdir {} + 2>/dev/null || true
    sleep 0.1
    find "$root" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [[ -d "$root" ]] && problem "cgroup $root remains"
  done
  return 0
}

restore_sysctls() {
  [[ -f "$SAVED/sysctls" ]] || return 0
  local line k v
  while IFS= read -r line; do
    k="${line%%=*}" v="${line#*=}"
    [[ "$(sysctl -n "$k" 2>/dev/null)" == "$v" ]] && continue
    sysctl -qw "$k=$v" 2>/dev/null || problem "could not restore $k to $v"
  done <"$SAVED/sysctls"
}

remove_files() {
  local f
  # CNI results of this cluster's network (libcni names them NETWORK-CONTAINERID-IFNAME).
  for f in /var/lib/cni/results/"$CNI_NETWORK"-*; do
    [[ -e "$f" ]] && rm -f "$f"
  done
  # The kubelet's links to this cluster's container logs.
  for f in /var/log/containers/*.log; do
    [[ -L "$f" ]] || continue
    case "$(readlink "$f")" in "$S"/*) rm -f "$f" ;; esac
  done
  if [[ -f "$SAVED/created-paths" ]]; then
    while IFS= read -r f; do
      [[ -n "$f" && -e "$f" ]] || continue
      case "$f" in
      /run/netns | /var/log/containers | /var/log/pods | /var/lib/cni | /etc/cni | /etc/kubernetes)
        # Shared folders: removed only when empty, and /var/lib/cni only after its results.
        rmdir /var/lib/cni/results /var/lib/cni/networks 2>/dev/null || true
        rmdir "$f" 2>/dev/null || problem "$f was created by the cluster but is not empty"
        ;;
      *) rm -rf "$f" ;;
      esac
    done <"$SAVED/created-paths"
  fi
}

# step runs one part of the teardown; a part that fails is reported and the rest still runs,
# so one surprise never leaves the machine half restored.
step() { "$@" || problem "$* failed"; }

stop_shims() {
  local pid
  for pid in $(shim_pids); do
    stop_pid "$pid" 5 || problem "shim PID $pid still runs"
  done
}

cleanup_kube_proxy() {
  [[ -x "$BIN/kube-proxy" ]] || return 0
  "$BIN/kube-proxy" --cleanup --v=0 >>"$LOGS/kube-proxy-cleanup.log" 2>&1 || true
}

remove_bridge() {
  ip route del "$SERVICE_CIDR" dev "$BRIDGE" 2>/dev/null || true
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link del "$BRIDGE" || problem "could not delete the bridge $BRIDGE"
  fi
}

step delete_pods
step kill_tasks
step stop kube-controller-manager
step stop kube-scheduler
step stop kube-proxy
step cleanup_kube_proxy
step stop kubelet 30
step stop containerd
step stop_shims
step stop kube-apiserver
step stop etcd
step remove_iptables
step remove_bridge
step remove_cgroups
step unmount_all
step restore_sysctls
step remove_files

# What the test and the next up.sh rely on, checked rather than assumed.
for ipt in iptables ip6tables; do
  if "$ipt" -S 2>/dev/null | grep -q KUBE- || "$ipt" -t nat -S 2>/dev/null | grep -q KUBE-; then
    problem "$ipt still has KUBE- rules"
  fi
done
ip link show "$BRIDGE" >/dev/null 2>&1 && problem "the bridge $BRIDGE still exists"
for pid in $(shim_pids); do problem "shim PID $pid still runs"; done

if [[ $problems -gt 0 ]]; then
  # The saved settings and PIDs stay, so another down.sh can finish the job.
  die "$problems thing(s) could not be undone (see above); $S is kept: run $0 $S again"
fi
# The logs stay for whoever wants to read why something failed.
find "$S" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} + 2>/dev/null || die "could not empty $S"
log "Cluster down in $(since "$t0") s"
