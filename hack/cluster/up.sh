#!/usr/bin/env bash
# Brings up a throw-away single-node Kubernetes cluster on this machine, for tests that need
# real pods, Services and DNS: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# containerd, the kubelet, kube-proxy (iptables mode) and CoreDNS as a pod.
#
#   hack/cluster/up.sh STATE_DIR     # then: kubectl --kubeconfig STATE_DIR/kubeconfig ...
#   hack/cluster/down.sh STATE_DIR   # undoes everything up.sh did
#
# Everything lives in STATE_DIR except what Linux keeps globally (the bridge, iptables rules,
# routes, cgroups, sysctls), which down.sh removes or restores. Network: pods get addresses in
# 198.18.0.0/24 on the bridge $CLUSTER_BRIDGE (default twofold0, host side 198.18.0.1), Services
# in 198.19.0.0/16 routed to that bridge, DNS at 198.19.0.10. Pods reach only the bridge: a
# mangle rule drops whatever they send elsewhere, and forwarding is on for the bridge alone (the
# global ip_forward stays as it is). Every listener on the host is on 127.0.0.1 or 198.18.0.1.
# Needs root. Run again on a running cluster, it starts only what is missing.
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set_state_dir "$@"

[[ "$(id -u)" == 0 ]] || die "needs root (it creates a bridge, iptables rules and cgroups)"
# Unix socket paths are limited to 108 bytes, and containerd adds ".ttrpc" to its own.
(( ${#CTRD_SOCK} + 6 < 104 )) ||
  die "STATE_DIR $S is too long for containerd's socket path: use one of at most $((104 - 6 - ${#CTRD_SOCK} + ${#S} - 1)) characters, e.g. under /tmp"
if [[ ! -f "$MARKER" ]]; then
  [[ -z "$(ls -A "$S" | grep -vx logs || true)" ]] ||
    die "$S is neither empty nor a cluster's folder: down.sh would empty it, so pick another"
  touch "$MARKER"
fi
# Pod to Service to pod on the same bridge needs bridged packets to pass iptables, for
# kube-proxy's NAT to be undone on the way back.
[[ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null)" == 1 ]] ||
  die "bridged traffic does not pass iptables: load the br_netfilter kernel module (modprobe br_netfilter) and set net.bridge.bridge-nf-call-iptables=1"
t0="$(now)"
"$ROOT/hack/cluster/binaries.sh" >/dev/null
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl coredns; do
  [[ -x "$BIN/$b" ]] || die "$BIN/$b is missing: run hack/cluster/binaries.sh"
done
mkdir -p "$PKI" "$RUN" "$LOGS" "$SAVED" "$S/config" "$S/images" "$S/bin" "$S/cni/net.d" \
  "$S/cni/networks" "$S/containerd" "$S/kubelet" "$S/pod-logs" "$S/etcd"
chmod 700 "$S/etcd"

# start NAME CMD... runs CMD detached (its own session, output to logs/NAME.log) unless the
# process up.sh started for NAME still runs, and records its PID for down.sh.
start() {
  local name=$1
  shift
  if owned_pid "$name" >/dev/null; then
    return 0
  fi
  log "Starting $name"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

# wait_for WHAT SECONDS CMD... retries CMD every 0.2 s until it succeeds, or fails naming WHAT
# and the log to read.
wait_for() {
  local what=$1 secs=$2 logname=$3 i
  shift 3
  for ((i = 0; i < secs * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if ! owned_pid "$logname" >/dev/null; then
      die "$logname exited while waiting for $what; last lines of $LOGS/$logname.log:
$(tail -n 20 "$LOGS/$logname.log" 2>/dev/null)"
    fi
    sleep 0.2
  done
  die "timed out after ${secs}s waiting for $what; last lines of $LOGS/$logname.log:
$(tail -n 20 "$LOGS/$logname.log" 2>/dev/null)"
}

save_host_state() {
  # Saved once: a second up.sh must not record the cluster's own values as the machine's.
  if [[ ! -f "$SAVED/sysctls" ]]; then
    local k
    for k in "${SYSCTLS[@]}"; do
      if v="$(sysctl -n "$k" 2>/dev/null)"; then printf '%s=%s\n' "$k" "$v"; fi
    done >"$SAVED/sysctls.tmp"
    mv "$SAVED/sysctls.tmp" "$SAVED/sysctls"
  fi
  if [[ ! -f "$SAVED/created-paths" ]]; then
    local p
    for p in "${GLOBAL_PATHS[@]}"; do
      [[ -e "$p" ]] || echo "$p"
    done >"$SAVED/created-paths"
  fi
  if [[ ! -f "$SAVED/netns" ]]; then
    ls -1 /run/netns 2>/dev/null >"$SAVED/netns" || true
  fi
}

setup_network() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "Creating the bridge $BRIDGE ($NODE_IP)"
    ip link add "$BRIDGE" type bridge
    echo "$BRIDGE" >"$SAVED/bridge"
  fi
  # No IPv6 on the bridge: pods have no IPv6 route, and the host offers them nothing over it.
  sysctl -qw "net.ipv6.conf.$BRIDGE.disable_ipv6=1" 2>/dev/null || true
  ip addr show dev "$BRIDGE" | grep -qF " $NODE_IP/16 " || ip addr add "$NODE_IP/16" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  ip route replace "$SERVICE_CIDR" dev "$BRIDGE" src "$NODE_IP"
  # Pod to Service to pod on the same bridge is routed through the host: forwarding on this
  # interface only.
  sysctl -qw "net.ipv4.conf.$BRIDGE.forwarding=1"
  # The guards: nothing a pod sends leaves through another interface, and the host answers pods
  # only on the bridge's own address.
  iptables -t mangle -C FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP 2>/dev/null ||
    iptables -t mangle -I FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP
  iptables -t mangle -C INPUT -i "$BRIDGE" ! -d "$NODE_IP" -j DROP 2>/dev/null ||
    iptables -t mangle -I INPUT -i "$BRIDGE" ! -d "$NODE_IP" -j DROP

  cat >"$S/cni/net.d/10-$CNI_NETWORK.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": false,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$S/cni/networks",
        "ranges": [[{ "subnet": "$NODE_POD_SUBNET", "gateway": "$NODE_IP" }]],
        "routes": [{ "dst": "0.0.0.0/0", "gw": "$NODE_IP" }]
      }
    }
  ]
}
JSON
  # Pods must never see the host's resolver: only the search domain, the kubelet adds CoreDNS.
  echo "search cluster.local" >"$S/resolv.conf"
}

write_configs() {
  cat >"$S/config/containerd.toml" <<TOML
version = 2
root = "$S/containerd/root"
state = "$S/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$CTRD_SOCK"

[plugins."io.containerd.internal.v1.opt"]
  path = "$S/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Without it every sandbox fails ("can't get final child's PID from pipe"): the machine
  # lacks CAP_SYS_RESOURCE and containerd would ask for oom_score_adj -998.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$S/containerd/runc"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$S/cni/net.d"
TOML

  cat >"$S/config/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $PKI/ca.crt
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://$CTRD_SOCK
# containerd 1.6 cannot report its cgroup driver; the machine has no systemd.
cgroupDriver: cgroupfs
# The machines run cgroup v1, which the kubelet refuses from 1.35 on unless told.
failCgroupV1: false
failSwapOn: false
# Leave the host's iptables to kube-proxy, and its kernel settings alone where it can.
makeIPTablesUtilChains: false
protectKernelDefaults: false
# A test machine's disk and memory are shared: never evict test pods because of them, and
# never garbage-collect images (nothing can be pulled back).
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
resolvConf: $S/resolv.conf
podLogsDir: $S/pod-logs
clusterDomain: cluster.local
clusterDNS:
- $DNS_IP
serializeImagePulls: false
# Mounted Secrets and ConfigMaps are refreshed when the kubelet syncs the pod: every 10 s here
# instead of every minute, so a Secret written after its pod started (the manager's webhook
# certificate, docs/install.md) arrives sooner and the tests wait less.
syncFrequency: 10s
rotateCertificates: false
maxPods: 60
YAML

  cat >"$S/config/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $PKI/admin.kubeconfig
mode: iptables
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
clusterCIDR: $POD_CIDR
detectLocalMode: ClusterCIDR
# NodePorts on the bridge only, never on the machine's own addresses or on localhost (which
# would need route_localnet).
nodePortAddresses:
- $NODE_IP/32
iptables:
  localhostNodePorts: false
  masqueradeAll: false
  syncPeriod: 30s
  minSyncPeriod: 0s
# Zero: leave the machine's conntrack settings as they are.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
YAML
}

# import_image loads a docker-archive tarball into the cluster's containerd unless present.
import_image() {
  local tar=$1 ref=$2
  ctr_ images ls -q | grep -qxF "$ref" && return 0
  ctr_ images import "$tar" >/dev/null
}

build_images() {
  log "Building cluster-kit and the pause and CoreDNS images"
  (cd "$ROOT" && go build -o "$S/bin/cluster-kit" ./hack/cluster)
  # The image engineers' pause image wins when `make images` has built it.
  local shared
  shared="$(ls -1 "$ROOT"/bin/images/*pause*.tar 2>/dev/null | head -n 1 || true)"
  if [[ -n "$shared" ]]; then
    PAUSE_TAR="$shared"
    PAUSE_IMAGE="$("$S/bin/cluster-kit" image-ref "$shared")"
  else
    (cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$S/bin/pause" ./hack/pause)
    "$S/bin/cluster-kit" image -ref "$PAUSE_IMAGE_DEFAULT" -binary "$S/bin/pause" -out "$S/images/pause.tar" -user 65535
    PAUSE_TAR="$S/images/pause.tar"
    PAUSE_IMAGE="$PAUSE_IMAGE_DEFAULT"
  fi
  if [[ ! -f "$S/images/coredns.tar" ]]; then
    "$S/bin/cluster-kit" image -ref "$COREDNS_IMAGE" -binary "$BIN/coredns" -out "$S/images/coredns.tar" \
      -user 65532 -- -conf /etc/coredns/Corefile
  fi
}

start_control_plane() {
  "$S/bin/cluster-kit" pki -dir "$PKI" -server "https://$NODE_IP:$API_PORT" -node "$NODE_NAME" \
    -ips "127.0.0.1,$NODE_IP,$KUBERNETES_SVC_IP"
  cp "$PKI/admin.kubeconfig" "$KUBECONFIG_ADMIN"
  start etcd "$BIN/etcd" --name=twofold --data-dir="$S/etcd" --unsafe-no-fsync \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="twofold=http://127.0.0.1:$ETCD_PEER_PORT" --log-level=warn
  start kube-apiserver "$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port="$API_PORT" \
    --cert-dir="$S/apiserver" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" --service-cluster-ip-range="$SERVICE_CIDR" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --allow-privileged=true \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP --profiling=false --v=1
  wait_for "the API server to be ready" 90 kube-apiserver kubectl_ get --raw /readyz
  log "API server ready after $(since "$t0") s"
  start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$PKI/admin.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=0 --leader-elect=false \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --service-cluster-ip-range="$SERVICE_CIDR" --cluster-cidr="$POD_CIDR" --allocate-node-cidrs=false \
    --use-service-account-credentials=false --profiling=false --v=1
  start kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$PKI/admin.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=0 --leader-elect=false --profiling=false --v=1
}

start_node() {
  start containerd containerd --config "$S/config/containerd.toml"
  wait_for "containerd's socket" 30 containerd ctr --address "$CTRD_SOCK" version
  import_image "$PAUSE_TAR" "$PAUSE_IMAGE"
  import_image "$S/images/coredns.tar" "$COREDNS_IMAGE"
  start kubelet "$BIN/kubelet" --config="$S/config/kubelet.yaml" --kubeconfig="$PKI/kubelet.kubeconfig" \
    --root-dir="$S/kubelet" --cert-dir="$S/kubelet/pki" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1
  start kube-proxy "$BIN/kube-proxy" --config="$S/config/kube-proxy.yaml" --v=1
  wait_for "node $NODE_NAME to be Ready" 120 kubelet \
    bash -c "'$BIN/kubectl' --kubeconfig '$KUBECONFIG_ADMIN' get node '$NODE_NAME' -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
  log "Node Ready after $(since "$t0") s"
}

start_dns() {
  sed -e "s|@DNS_IP@|$DNS_IP|g" -e "s|@IMAGE@|$COREDNS_IMAGE|g" "$ROOT/hack/cluster/coredns.yaml" |
    kubectl_ apply -f - >/dev/null
  wait_for "CoreDNS to be available" 180 kube-controller-manager \
    bash -c "'$BIN/kubectl' --kubeconfig '$KUBECONFIG_ADMIN' -n kube-system get deploy coredns -o jsonpath='{.status.availableReplicas}' | grep -qx 1"
  log "DNS ready after $(since "$t0") s"
}

save_host_state
setup_network
PAUSE_IMAGE="$PAUSE_IMAGE_DEFAULT"
build_images
write_configs
start_control_plane
start_node
start_dns
log "Cluster up in $(since "$t0") s: export KUBECONFIG=$KUBECONFIG_ADMIN"
