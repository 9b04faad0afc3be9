# The local cluster's real node: a local OCI registry, containerd with runc, the kubelet,
# kube-scheduler and kube-proxy, on a bridge of their own. Sourced by hack/local-cluster.sh,
# which defines DIR, BIN_DIR, KUBE_VERSION, say/note/step/die, pick_port, launch, kc.
#
# Everything lives under DIR or is undone by node_down: the bridge and its route, the
# network namespaces and mounts of the pods, the iptables chains of the kubelet, kube-proxy
# and the CNI plugins, and the pod log directories the kubelet writes in /var/log.
# shellcheck shell=bash

readonly NODE_NAME=palisade-node
readonly BRIDGE=palisade0
readonly NODE_IP=10.244.0.1
readonly POD_CIDR=10.244.0.0/24
readonly SERVICE_CIDR=10.0.0.0/24
# One node cluster per machine: the bridge, the node IP and kube-proxy's iptables chains
# are machine-wide. This file names the cluster dir that owns them.
readonly NODE_OWNER=/run/palisade-local-node
# Our guard chain: pods talk to each other, the node and the Services, nothing beyond.
readonly GUARD_CHAIN=PALISADE-LOCAL-NODE
# Chains made by the kubelet, kube-proxy and the CNI plugins; node_down removes them.
readonly NODE_CHAIN_RE='^(KUBE-|CNI-|PALISADE-)'

# ---------------------------------------------------------------- before anything starts

node_tools() {
  ensure_tools "$DIR/logs/apt.log" containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins \
    iptables:iptables buildah:buildah docker-registry:docker-registry ip:iproute2 findmnt:util-linux
}

# Refuses to start a second node beside one that runs, or beside chains and a bridge that
# are not ours (a real Kubernetes node on this machine).
node_preflight() {
  local owner
  if [[ -s $NODE_OWNER ]]; then
    owner=$(<"$NODE_OWNER")
    if [[ -f $owner/.palisade-cluster ]] && owner_running "$owner"; then
      die "a local cluster with a node already runs in $owner (one per machine: the bridge $BRIDGE and kube-proxy's iptables chains are machine-wide). Stop it with: $0 down --dir $owner, or start this one with --no-node"
    fi
    # Its processes were killed (a machine's session ended, kill -9): what they left on
    # the machine would block this node. Its dir stays for `down` or a look at its logs.
    note "the node of $owner is not running: clearing what it left on the machine"
    node_leftovers_down "$owner"
  fi
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    die "the bridge $BRIDGE exists but no local cluster owns it; remove it (ip link del $BRIDGE) or use --no-node"
  fi
  if iptables-save 2>/dev/null | grep -Eq '^:KUBE-'; then
    die "this machine already has KUBE- iptables chains (another Kubernetes node?); the local node would fight over them. Use --no-node"
  fi
  if ip route show to match "$NODE_IP" 2>/dev/null | grep -qv '^default'; then
    die "$POD_CIDR overlaps a route of this machine ($(ip route show to match "$NODE_IP" | grep -v '^default' | head -n 1)); use --no-node"
  fi
}

# What the machine had before, so that down removes only what the node added.
node_record_before() {
  mkdir -p "$DIR/node"
  ip netns list 2>/dev/null | awk '{print $1}' | sort >"$DIR/node/netns.before"
  # Paths containerd and the kubelet use whatever their configuration says: pod logs, the
  # shims' sockets, the network namespaces' mount points.
  for d in /var/log/pods /var/log/containers /run/containerd /run/netns /sys/fs/cgroup/memory/kubepods; do
    if [[ -e $d ]]; then echo "$d"; fi
  done >"$DIR/node/paths.before"
}

node_network_up() {
  step "creating the node's bridge $BRIDGE ($NODE_IP, pods in $POD_CIDR) and its guard chain" "$DIR/logs/setup.log"
  echo "$DIR" >"$NODE_OWNER"
  {
    ip link add "$BRIDGE" type bridge
    ip addr add "$NODE_IP/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    # Service IPs answer from the node: kube-proxy's DNAT needs a route to start from, even
    # on a machine with no default route.
    ip route add "$SERVICE_CIDR" dev "$BRIDGE" src "$NODE_IP"
    # bridge-nf-call-iptables makes bridged pod traffic visible to kube-proxy's rules; it is
    # built into this kernel, a module elsewhere.
    modprobe br_netfilter 2>/dev/null || true
    sysctl -qw net.ipv4.ip_forward=1
    iptables -N "$GUARD_CHAIN"
    iptables -A "$GUARD_CHAIN" -i "$BRIDGE" -o "$BRIDGE" -j RETURN
    iptables -A "$GUARD_CHAIN" -i "$BRIDGE" -m comment --comment "palisade local node: pods reach nothing beyond this machine" -j DROP
    iptables -I FORWARD 1 -j "$GUARD_CHAIN"
  } >>"$DIR/logs/setup.log" 2>&1
}

# ---------------------------------------------------------------- certificates

node_pki() {
  step "making the node's certificates (kubelet, apiserver-to-kubelet, scheduler, kube-proxy)" "$DIR/logs/pki.log"
  cat >>"$DIR/pki/openssl.cnf" <<EOF
[v3_kubelet]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
subjectAltName = IP:$NODE_IP,DNS:$NODE_NAME
EOF
  (
    umask 077
    cd "$DIR/pki"
    # shellcheck disable=SC2317 # called below
    leaf() { # name subject extensions
      openssl req -new -nodes -newkey rsa:2048 -config openssl.cnf -subj "$2" -keyout "$1.key" -out "$1.csr"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
        -days 825 -sha256 -extfile openssl.cnf -extensions "$3" -out "$1.crt"
      rm -f "$1.csr"
      openssl verify -CAfile ca.crt "$1.crt"
    }
    # The kubelet's identity for the Node authorizer and NodeRestriction.
    leaf kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" v3_client
    leaf kubelet-serving "/CN=$NODE_NAME" v3_kubelet
    # The apiserver's identity towards the kubelet (logs, exec, port-forward); the kubelet
    # asks the apiserver whether it may (authorization mode Webhook).
    leaf apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" v3_client
    leaf scheduler "/CN=system:kube-scheduler" v3_client
    leaf kube-proxy "/CN=system:kube-proxy" v3_client
  ) >>"$DIR/logs/pki.log" 2>&1
}

# ---------------------------------------------------------------- the registry

registry_args() {
  pick_port REGISTRY_PORT
  mkdir -p "$DIR/registry/data"
  cat >"$DIR/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $DIR/registry/data
  delete:
    enabled: true
http:
  addr: $NODE_IP:$REGISTRY_PORT
EOF
  ARGS=(serve "$DIR/registry/config.yml")
}
registry_check() { curl -fsS --max-time 2 "http://$NODE_IP:$REGISTRY_PORT/v2/"; }

# ---------------------------------------------------------------- containerd

containerd_args() {
  local c="$DIR/containerd"
  mkdir -p "$c/root" "$c/state" "$c/runc" "$c/opt" "$DIR/cni/net.d" "$DIR/cni/ipam"
  cat >"$c/config.toml" <<EOF
# containerd for the palisade local node: every path its own, nothing under /var/lib or
# /run/containerd of the machine.
version = 2
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$c/containerd.sock"

[ttrpc]
  address = "$c/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$REGISTRY/pause:v$KUBE_VERSION"
  # No CAP_SYS_RESOURCE here: the kubelet's oom_score_adj of -998 for sandboxes would make
  # runc fail ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$c/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REGISTRY"]
    endpoint = ["http://$REGISTRY"]
EOF
  cat >"$DIR/cni/net.d/10-palisade.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "palisade",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$DIR/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  ARGS=(--config "$c/config.toml")
}
containerd_check() { ctr_node version; }
ctr_node() { ctr --address "$DIR/containerd/containerd.sock" --namespace k8s.io "$@"; }

# The sandbox image, from the pause binary built with the other binaries: nothing is pulled
# from outside the machine.
push_pause_image() {
  local b=(buildah --root "$DIR/buildah/storage" --runroot "$DIR/buildah/run" --storage-driver vfs) ctr
  step "pushing the pause image to the local registry ($REGISTRY/pause:v$KUBE_VERSION)" "$DIR/logs/setup.log"
  {
    ctr=$("${b[@]}" from scratch)
    "${b[@]}" copy "$ctr" "$BIN_DIR/pause" /pause
    "${b[@]}" config --entrypoint '["/pause"]' --user 65535:65535 "$ctr"
    "${b[@]}" commit --rm "$ctr" "pause:v$KUBE_VERSION"
    "${b[@]}" push --tls-verify=false "pause:v$KUBE_VERSION" "docker://$REGISTRY/pause:v$KUBE_VERSION"
  } >>"$DIR/logs/setup.log" 2>&1
  rm -rf "$DIR/buildah"
}

# ---------------------------------------------------------------- control plane additions

scheduler_args() {
  pick_port SCHEDULER_PORT
  ARGS=(
    --kubeconfig="$DIR/scheduler.kubeconfig"
    --leader-elect=false
    --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" --port=0
    --cert-dir="$DIR/kube-scheduler"
  )
}
scheduler_check() { curl -fsSk --max-time 2 "https://127.0.0.1:$SCHEDULER_PORT/healthz"; }

# ---------------------------------------------------------------- kubelet

kubelet_args() {
  local k="$DIR/kubelet"
  pick_port KUBELET_PORT
  pick_port KUBELET_HEALTHZ_PORT
  mkdir -p "$k/root"
  cat >"$k/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $DIR/pki/kubelet-serving.crt
tlsPrivateKeyFile: $DIR/pki/kubelet-serving.key
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $DIR/pki/ca.crt
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
failSwapOn: false
clusterDomain: cluster.local
# No cluster DNS runs: pods resolve with the node's resolv.conf.
resolvConf: /etc/resolv.conf
# A shared development machine: evict only when really short, never for a busy disk.
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  imagefs.available: 1%
  nodefs.inodesFree: 1%
imageGCHighThresholdPercent: 100
serializeImagePulls: false
# The e2e suite runs many small pods at once, more than the default 110; the pod range
# ($POD_CIDR) has 253 addresses, and some stay held while pods are torn down.
maxPods: 200
# No CAP_SYS_RESOURCE on these machines.
oomScoreAdj: 0
featureGates:
  EphemeralContainers: true
EOF
  kubeconfig "$DIR/kubelet.kubeconfig" "system:node:$NODE_NAME" kubelet-client
  ARGS=(
    --config="$k/config.yaml"
    --kubeconfig="$DIR/kubelet.kubeconfig"
    --root-dir="$k/root"
    --cert-dir="$k/pki"
    --container-runtime=remote
    --container-runtime-endpoint="unix://$DIR/containerd/containerd.sock"
    --runtime-request-timeout=5m
    --hostname-override="$NODE_NAME"
    --node-ip="$NODE_IP"
    --v=1
  )
}
kubelet_check() { curl -fsS --max-time 2 "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz"; }

node_ready() {
  [[ $(kc get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]] &&
    [[ -z $(kc get node "$NODE_NAME" -o 'jsonpath={.spec.taints}' 2>/dev/null) ]]
}

# ---------------------------------------------------------------- kube-proxy

proxy_args() {
  pick_port PROXY_HEALTHZ_PORT
  pick_port PROXY_METRICS_PORT
  mkdir -p "$DIR/kube-proxy"
  kubeconfig "$DIR/kube-proxy.kubeconfig" system:kube-proxy kube-proxy
  cat >"$DIR/kube-proxy/config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $DIR/kube-proxy.kubeconfig
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
mode: iptables
clusterCIDR: $POD_CIDR
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
# Leave the machine's conntrack settings and OOM scores alone.
oomScoreAdj: 0
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
  ARGS=(--config="$DIR/kube-proxy/config.yaml" --v=1)
}
proxy_check() { curl -fsS --max-time 2 "http://127.0.0.1:$PROXY_HEALTHZ_PORT/healthz"; }

# ---------------------------------------------------------------- down

# Pods first, through the kubelet while it still runs, so that it tears their sandboxes down
# itself (CNI DEL, network namespaces, volume mounts). With the controller-manager already
# stopped nothing recreates them.
node_drain() {
  is_ours kubelet && is_ours kube-apiserver || return 0
  kc delete pods --all-namespaces --all --grace-period=0 --force --wait=false >>"$DIR/logs/down.log" 2>&1 || true
  local i
  for ((i = 0; i < 60; i++)); do
    ctr_node tasks ls 2>/dev/null | awk '$3 == "RUNNING" { found = 1 } END { exit !found }' || return 0
    sleep 0.5
  done
  note "pods still running after 30s; killing their containers"
}

# What is left once every process is stopped: containers the drain missed, then mounts,
# network namespaces, iptables chains, the bridge, pod logs.
node_sweep() {
  local pid cmd
  # Shims of our containerd outlive it; they name its socket on their command line.
  for pid in $(pgrep -f containerd-shim 2>/dev/null); do
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
    if [[ $cmd == *"$DIR/containerd/"* ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  # Container processes (children of the shims) run in our runc root's cgroups; runc knows them.
  if [[ -d $DIR/containerd/runc ]]; then
    local ns id
    for ns in "$DIR/containerd/runc"/*/; do
      [[ -d $ns ]] || continue
      for id in $(runc --root "$ns" list -q 2>/dev/null); do
        runc --root "$ns" kill "$id" KILL 2>/dev/null || true
        runc --root "$ns" delete --force "$id" 2>/dev/null || true
      done
    done
  fi
  # Mounts under the cluster dir, deepest first.
  findmnt -rn -o TARGET 2>/dev/null | awk -v d="$DIR/" 'index($0, d) == 1' | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  # The bridge and the chains are machine-wide: only the node that made them removes them
  # (a second `up`, refused beside a running node, made none).
  if [[ -s $NODE_OWNER && $(<"$NODE_OWNER") != "$DIR" ]]; then
    return 0
  fi
  node_network_down "$DIR"
}

# Whether the kubelet or the API server of the cluster in DIR still runs.
owner_running() {
  local dir=$1 c pid cmdline
  for c in kubelet kube-apiserver containerd; do
    pid=$(cat "$dir/run/$c.pid" 2>/dev/null) || continue
    [[ $pid =~ ^[0-9]+$ ]] || continue
    cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || continue
    [[ $cmdline == *"$c"* && $cmdline == *"$dir/"* ]] && return 0
  done
  return 1
}

# What a node whose processes are gone left on the machine: shims and containers, mounts,
# then the network.
node_leftovers_down() {
  local saved=$DIR
  DOWN_LOG="$DIR/logs/down.log"
  DIR=$1
  node_sweep
  DIR=$saved
  unset DOWN_LOG
}

# Undoes node_network_up and what the CNI plugins, kubelet and kube-proxy added; also used
# for the leftovers of a cluster whose dir is gone.
node_network_down() {
  local owner=$1 n t
  if [[ -f $owner/node/netns.before ]]; then
    for n in $(comm -13 "$owner/node/netns.before" <(ip netns list 2>/dev/null | awk '{print $1}' | sort)); do
      ip netns delete "$n" 2>/dev/null || true
    done
  else
    # No record: only the CNI's own namespaces (containerd names them cni-<uuid>).
    for n in $(ip netns list 2>/dev/null | awk '$1 ~ /^cni-/ {print $1}'); do ip netns delete "$n" 2>/dev/null || true; done
  fi
  for t in iptables ip6tables; do
    command -v "$t-save" >/dev/null 2>&1 || continue
    remove_chains "$t"
  done
  # The route goes with the bridge.
  ip link del "$BRIDGE" 2>/dev/null || true
  if [[ -f $owner/node/paths.before ]]; then
    for n in /var/log/pods /var/log/containers /run/containerd; do
      grep -qx "$n" "$owner/node/paths.before" || rm -rf -- "$n"
    done
    # The kubelet's cgroups (cgroup v1: one tree per controller), empty once the pods are gone.
    if ! grep -qx /sys/fs/cgroup/memory/kubepods "$owner/node/paths.before"; then
      find /sys/fs/cgroup/*/kubepods -depth -type d -exec rmdir {} + 2>/dev/null || true
    fi
    # Other tools may have mounted namespaces there meanwhile: only an empty dir goes.
    grep -qx /run/netns "$owner/node/paths.before" || rmdir /run/netns 2>/dev/null || true
  fi
  if [[ -s $NODE_OWNER && $(<"$NODE_OWNER") == "$owner" ]]; then rm -f "$NODE_OWNER"; fi
  return 0
}

# remove_chains iptables|ip6tables: deletes the rules that jump to our chains, then the
# chains, in every table, in one atomic restore per table.
remove_chains() {
  local t=$1 table dump
  for table in filter nat mangle raw; do
    dump=$("$t-save" -t "$table" 2>/dev/null) || continue
    grep -Eq "^:(KUBE-|CNI-|PALISADE-)" <<<"$dump" || continue
    awk -v re="$NODE_CHAIN_RE" '
      /^:/ { name = substr($1, 2); if (name ~ re) next }
      /^-A / { chain = $2; if (chain ~ re) next
               for (i = 3; i <= NF; i++) if (($i == "-j" || $i == "-g") && $(i + 1) ~ re) next }
      { print }' <<<"$dump" | "$t-restore" -T "$table" 2>>"${DOWN_LOG:-$DIR/logs/down.log}" ||
      note "could not remove the KUBE-/CNI- chains of $t table $table (see ${DOWN_LOG:-$DIR/logs/down.log})"
  done
}
