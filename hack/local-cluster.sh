#!/usr/bin/env bash
# A real one-node Kubernetes cluster without Docker: etcd, kube-apiserver,
# kube-controller-manager and kube-scheduler (Kubernetes v1.20.2, built from Debian bookworm's
# `kubernetes` source package) as plain processes, and a real node: the kubelet with
# containerd and runc, kube-proxy, a CNI bridge of its own and a local OCI registry
# (Debian's docker-registry). See hack/README.md.
#
#   hack/local-cluster.sh up     [--dir DIR] [--no-node] [--fake-nodes N]
#                                              start a cluster (builds the binaries once);
#                                              --no-node: the control plane alone, on
#                                              loopback (several can run side by side);
#                                              --fake-nodes N: also register N Node objects
#                                              no kubelet backs (DaemonSet fan-out tests)
#   hack/local-cluster.sh down   [--dir DIR]   stop what `up` started, remove DIR
#   hack/local-cluster.sh build                only build (and cache) the binaries
#   hack/local-cluster.sh status [--dir DIR]   processes, ports, /readyz
#   hack/local-cluster.sh env    [--dir DIR]   print the export lines
#   hack/local-cluster.sh logs   [--dir DIR] [COMPONENT|build|apt|pki|setup...] [-n LINES]
#
#   eval "$(hack/local-cluster.sh up)"    # progress goes to stderr, the exports to stdout
#
# Variables:
#   PALISADE_CLUSTER_DIR            state dir (default: <repo>/.palisade/cluster); --dir wins
#   PALISADE_KUBE_CACHE             cache root for the built binaries (default:
#                                   ${XDG_CACHE_HOME:-$HOME/.cache}/palisade); the binaries
#                                   live in $PALISADE_KUBE_CACHE/kubernetes-v1.20.2/bin
#   PALISADE_APISERVER_EXTRA_FLAGS  more kube-apiserver flags, split on whitespace, e.g.
#                                   "--enable-admission-plugins=PodSecurityPolicy"
#   PALISADE_CONTROLLER_MANAGER_EXTRA_FLAGS   the same for kube-controller-manager
#   PALISADE_DEBIAN_MIRROR          Debian mirror for the source package (default: the
#                                   machine's own bookworm entry, else deb.debian.org)
#   PALISADE_READY_TIMEOUT          seconds to wait for each component (default 120)
#   PALISADE_CLUSTER_NODE           0: as --no-node
set -euo pipefail

readonly KUBE_VERSION=1.20.2
# shellcheck source=hack/lib/node.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/node.sh"
readonly SUITE=bookworm
readonly CONTROL_PLANE=(etcd kube-apiserver kube-controller-manager)
# In start order; stopped in reverse.
readonly NODE_COMPONENTS=(docker-registry etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)
COMPONENTS=("${CONTROL_PLANE[@]}")
NODE=1
FAKE_NODES=0
# Where the API server listens: loopback for a bare control plane, the node's IP otherwise
# (pods reach it through the kubernetes Service).
API_HOST=127.0.0.1

: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The cache key names what the cache holds: "node" caches also hold the kubelet, scheduler,
# proxy and pause binaries; a cache of an older key is left alone and rebuilt once.
readonly CACHE_KEY="kubernetes-v${KUBE_VERSION}-node1"
CACHE_ROOT="${PALISADE_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/palisade}/$CACHE_KEY"
BIN_DIR="$CACHE_ROOT/bin"
READY_TIMEOUT=${PALISADE_READY_TIMEOUT:-120}

CMD=""
DIR=""
STEP=""
STEP_LOG=""
STARTED=()   # components started by this run, stopped again if `up` fails
TMP_DIRS=()  # removed on exit
CHOSEN_PORTS=" "
ERR_FD=2

# ---------------------------------------------------------------- output and failure

say() { printf '==> [%3ds] %s\n' "$SECONDS" "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}
# Names the step that runs now; on failure the EXIT trap names it again and shows the
# tail of its log.
step() {
  STEP=$1
  STEP_LOG=${2:-}
  say "$1"
}

on_exit() {
  local rc=$? name
  set +e
  # A signal may land while a command runs with stderr sent to a log or /dev/null; the
  # trap would inherit that redirection and fail silently. Back to the original stderr.
  exec 2>&"$ERR_FD"
  if ((rc != 0)) && [[ -n $STEP ]]; then
    local why="FAILED (exit $rc)"
    ((rc == 130 || rc == 143)) && why="INTERRUPTED"
    printf '\n%s during step: %s\n' "$why" "$STEP" >&2
    if [[ -n $STEP_LOG && -s $STEP_LOG ]]; then
      printf -- '--- last 40 lines of %s ---\n' "$STEP_LOG" >&2
      tail -n 40 "$STEP_LOG" >&2
      printf -- '--- end of %s ---\n' "$STEP_LOG" >&2
    fi
    if [[ $CMD == up ]] && ((${#STARTED[@]} > 0)); then
      printf '==> stopping the processes this run started\n' >&2
      for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
        name=${STARTED[i]}
        stop_component "$name"
      done
      printf "    logs kept in %s/logs; '%s down --dir %s' removes them\n" "$DIR" "$0" "$DIR" >&2
    fi
  fi
  for d in "${TMP_DIRS[@]}"; do
    rm -rf -- "$d"
  done
  exit "$rc"
}
exec {ERR_FD}>&2
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

# ---------------------------------------------------------------- packages

as_root() {
  if ((EUID == 0)); then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@"
  else
    die "installing packages needs root (or sudo): $*"
  fi
}

apt_install() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "$@"
}

# ensure_tools LOG CHECK:PACKAGE...  (CHECK is a command name, or an absolute path that must exist)
ensure_tools() {
  local log=$1 spec check pkg missing=()
  shift
  for spec in "$@"; do
    check=${spec%%:*}
    pkg=${spec#*:}
    if [[ $check == /* ]]; then
      [[ -e $check ]] && continue
    else
      command -v "$check" >/dev/null 2>&1 && continue
    fi
    [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
  done
  ((${#missing[@]} > 0)) || return 0
  step "installing Debian packages: ${missing[*]}" "$log"
  # A fresh machine may have empty package lists: update once, then retry.
  if ! apt_install "${missing[@]}" >>"$log" 2>&1; then
    note "install failed; running apt-get update and trying again"
    as_root apt-get update >>"$log" 2>&1
    apt_install "${missing[@]}" >>"$log" 2>&1
  fi
}

# ---------------------------------------------------------------- building the binaries

readonly KUBE_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
cache_complete() {
  local b
  [[ -f $BIN_DIR/VERSION && -x $BIN_DIR/kubectl && -x $BIN_DIR/pause ]] || return 1
  for b in "${KUBE_BINARIES[@]}"; do [[ -x $BIN_DIR/$b ]] || return 1; done
}

debian_mirror() {
  if [[ -n ${PALISADE_DEBIAN_MIRROR:-} ]]; then
    echo "$PALISADE_DEBIAN_MIRROR"
    return
  fi
  local uri
  # shellcheck disable=SC2016 # $(...) is apt's format syntax
  uri=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'Identifier: Packages' 2>/dev/null |
    awk -v s="$SUITE" '$2 == s && $3 == "main" { print $1; exit }') || true
  echo "${uri:-http://deb.debian.org/debian/}"
}

# apt with a private sources list, lists and cache: the machine's apt state is left alone
# (an `apt-get update` against only a deb-src list would otherwise drop the machine's
# binary package lists).
APT_DIR=""
apt_private() {
  local opts=(
    -o "Dir::Etc::SourceList=$APT_DIR/sources.list"
    -o "Dir::Etc::SourceParts=$APT_DIR/parts"
    -o "Dir::State::Lists=$APT_DIR/lists"
    -o "Dir::Cache=$APT_DIR/cache"
  )
  ((EUID == 0)) && opts+=(-o "APT::Sandbox::User=root")
  apt-get "${opts[@]}" "$@"
}

build_binaries() {
  local log=$1
  mkdir -p "$CACHE_ROOT"
  exec 9>"$CACHE_ROOT/.lock"
  if ! flock -n 9; then
    step "waiting for another run that is building into $CACHE_ROOT" "$log"
    flock -w 3600 9 || die "the build lock $CACHE_ROOT/.lock was held for an hour"
  fi
  if cache_complete; then
    exec 9>&-
    return 0
  fi

  ensure_tools "$log" /usr/lib/go/bin/go:golang-go rsync:rsync make:make gcc:gcc \
    /usr/share/gocode/src/github.com/modern-go/reflect2/reflect2.go:golang-github-modern-go-reflect2-dev \
    dpkg-deb:dpkg

  # Everything is built in a temp dir next to the cache and renamed into place at the end:
  # an interrupted build never leaves a half-filled bin/.
  local work src mirror
  work=$(mktemp -d "$CACHE_ROOT/.build.XXXXXX")
  TMP_DIRS+=("$work")
  chmod 755 "$work"
  APT_DIR="$work/apt"
  mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$APT_DIR/parts" "$work/pkg"
  mirror=$(debian_mirror)
  cat >"$APT_DIR/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $SUITE main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $SUITE main
EOF

  step "fetching Debian's kubernetes source package ($SUITE, $mirror)" "$log"
  apt_private update >>"$log" 2>&1
  (cd "$work/pkg" && apt_private source --download-only kubernetes) >>"$log" 2>&1
  local orig
  orig=$(compgen -G "$work/pkg/kubernetes_*.orig.tar.gz" | head -n 1) || true
  [[ -n $orig ]] || die "no kubernetes_*.orig.tar.gz was downloaded (see $log)"
  note "$(basename "$orig")"

  step "unpacking the source" "$log"
  # Only the upstream tarball is used: Debian's patches touch kubectl's printers only.
  tar -xzf "$orig" -C "$work" >>"$log" 2>&1
  src="$work/kubernetes-$KUBE_VERSION"
  [[ -d $src/cmd/kube-apiserver ]] ||
    die "the source package is not Kubernetes v$KUBE_VERSION (top dirs: $(cd "$work" && echo kubernetes-*)); update KUBE_VERSION and the cache key"

  # Go >= 1.18 crashes this tree's apiserver at the first JSON map encoding ("fatal error:
  # fault" in reflect.mapiterinit) because of the vendored reflect2 v1.0.1; Debian ships the
  # fixed v1.0.2.
  step "replacing vendored reflect2 v1.0.1 with Debian's v1.0.2" "$log"
  rm -rf "$src/vendor/github.com/modern-go/reflect2"
  cp -rL /usr/share/gocode/src/github.com/modern-go/reflect2 "$src/vendor/github.com/modern-go/reflect2"
  rm -f "$src/vendor/github.com/modern-go/reflect2/go.mod"

  # kubectl matching the server: Debian ships it as kubernetes-client. It is unpacked into
  # the cache, not installed: it would overwrite /usr/bin/kubectl, which on these machines
  # belongs to another package (`kubectl`, v1.32 from the Google Cloud SDK) and dpkg refuses.
  # If the package cannot be had, cmd/kubectl is built from the same tree instead.
  local what="${KUBE_BINARIES[*]/#/cmd/}" kubectl_from=""
  step "fetching kubectl v$KUBE_VERSION (Debian's kubernetes-client)" "$log"
  if (cd "$work/pkg" && apt_private download kubernetes-client) >>"$log" 2>&1 &&
    dpkg-deb -x "$(compgen -G "$work/pkg/kubernetes-client_*.deb" | head -n 1)" "$work/kc" >>"$log" 2>&1 &&
    "$work/kc/usr/bin/kubectl" version --client --short 2>>"$log" | grep -q "v$KUBE_VERSION\$"; then
    kubectl_from="Debian package $(basename "$(compgen -G "$work/pkg/kubernetes-client_*.deb")")"
  else
    note "no kubectl v$KUBE_VERSION from Debian; building cmd/kubectl as well"
    what+=" cmd/kubectl"
    kubectl_from="built from the source tree"
  fi

  local go_bin=/usr/lib/go/bin
  step "building ${KUBE_BINARIES[*]} with $("$go_bin/go" version | awk '{print $3}') (about 20 minutes on 2 cores; once, then cached in $BIN_DIR)" "$log"
  mkdir -p "$src/.go/src/k8s.io"
  ln -s ../../.. "$src/.go/src/k8s.io/kubernetes"
  local t0=$SECONDS
  (
    cd "$src"
    # A caller's make (e.g. `make run`) or Go settings must not leak into this build.
    unset MAKEFLAGS MFLAGS MAKELEVEL GOFLAGS GOROOT GOBIN GOOS GOARCH GO111MODULE GOTOOLCHAIN
    export PATH="$go_bin:$PATH" GOPATH="$src/.go" GOCACHE="$work/gocache" GOPROXY=off CGO_ENABLED=0 HOME
    make WHAT="$what"
  ) >>"$log" 2>&1
  note "built in $((SECONDS - t0))s"

  step "installing the binaries into the cache $BIN_DIR" "$log"
  mkdir "$work/bin"
  local b
  for b in "${KUBE_BINARIES[@]}"; do cp "$src/_output/bin/$b" "$work/bin/"; done
  # The pod sandbox's pause process, from the same tree: the node never pulls it.
  gcc -Os -static -DVERSION="v$KUBE_VERSION-palisade" -o "$work/bin/pause" "$src/build/pause/linux/pause.c" >>"$log" 2>&1
  if [[ $what == *cmd/kubectl* ]]; then
    cp "$src/_output/bin/kubectl" "$work/bin/"
  else
    cp "$work/kc/usr/bin/kubectl" "$work/bin/"
  fi
  "$work/bin/kube-apiserver" --version 2>>"$log" | grep -q "v$KUBE_VERSION\$" ||
    die "the built kube-apiserver does not report v$KUBE_VERSION"
  cat >"$work/bin/VERSION" <<EOF
kubernetes v$KUBE_VERSION from Debian source $(basename "$orig")
go: $("$go_bin/go" version)
vendor/github.com/modern-go/reflect2 replaced with Debian's golang-github-modern-go-reflect2-dev
kubectl: $kubectl_from
built: $(date -u +%Y-%m-%dT%H:%M:%SZ)
EOF
  cp "$log" "$work/bin/build.log"
  sync "$work/bin"/*
  if [[ -e $BIN_DIR ]]; then # incomplete leftovers (e.g. a file deleted by hand)
    mv -T "$BIN_DIR" "$work/stale-bin"
  fi
  mv -T "$work/bin" "$BIN_DIR"
  rm -rf "$work"
  exec 9>&-
}

# ---------------------------------------------------------------- certificates

pki() {
  local pki="$DIR/pki" log=$1
  step "making certificates (CA, apiserver serving, admin and controller-manager clients, service-account keys)" "$log"
  mkdir -p "$pki"
  chmod 700 "$pki"
  # Every certificate is X.509 v3 with explicit extensions: rustls refuses v1 certificates
  # ("UnsupportedCertVersion"), which is what a bare `openssl x509 -req` makes.
  cat >"$pki/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
subjectAltName = IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.0.0.1,IP:10.244.0.1
[v3_client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
EOF
  (
    umask 077
    cd "$pki"
    openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 3650 -config openssl.cnf \
      -extensions v3_ca -subj "/CN=palisade-local-ca" -keyout ca.key -out ca.crt
    leaf() { # name subject extensions
      openssl req -new -nodes -newkey rsa:2048 -config openssl.cnf -subj "$2" -keyout "$1.key" -out "$1.csr"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
        -days 825 -sha256 -extfile openssl.cnf -extensions "$3" -out "$1.crt"
      rm -f "$1.csr"
      openssl verify -CAfile ca.crt "$1.crt"
    }
    leaf apiserver "/CN=kube-apiserver" v3_server
    leaf admin "/O=system:masters/CN=palisade-admin" v3_client
    # The controller-manager's own identity, bound by the bootstrap RBAC policy.
    leaf controller-manager "/CN=system:kube-controller-manager" v3_client
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key
    openssl pkey -in sa.key -pubout -out sa.pub
    for c in ca apiserver admin controller-manager; do
      openssl x509 -in "$c.crt" -noout -text | grep -q 'Version: 3 (0x2)' || {
        echo "$c.crt is not X.509 v3"
        exit 1
      }
    done
  ) >>"$log" 2>&1
}

kubeconfig() { # file user cert-basename
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: palisade-local
  cluster:
    server: https://$API_HOST:$API_PORT
    certificate-authority-data: $(base64 -w0 <"$DIR/pki/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 <"$DIR/pki/$3.crt")
    client-key-data: $(base64 -w0 <"$DIR/pki/$3.key")
contexts:
- name: palisade-local
  context:
    cluster: palisade-local
    user: $2
    namespace: default
current-context: palisade-local
EOF
  chmod 600 "$1"
}

# ---------------------------------------------------------------- processes

bin_of() {
  case $1 in
  etcd | containerd | docker-registry) command -v "$1" ;;
  *) echo "$BIN_DIR/$1" ;;
  esac
}

# True when the recorded PID is still the process this cluster started: its command line
# names the binary and this cluster's dir (a recycled PID or another cluster's process is
# never signalled).
is_ours() {
  local pidfile="$DIR/run/$1.pid" pid cmdline
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $cmdline == *"$1"* && $cmdline == *"$DIR/"* ]]
}

stop_component() {
  local name=$1 pidfile="$DIR/run/$1.pid" pid i
  if is_ours "$name"; then
    pid=$(<"$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
      is_ours "$name" || break
      sleep 0.1
    done
    if is_ours "$name"; then
      printf '    %s (pid %s) ignored SIGTERM for 15s: SIGKILL\n' "$name" "$pid" >&2
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        is_ours "$name" || break
        sleep 0.1
      done
    fi
    printf '    stopped %s (pid %s)\n' "$name" "$pid" >&2
  fi
  rm -f "$pidfile"
}

# A port nobody uses, below the kernel's ephemeral range (outgoing connections such as the
# apiserver's to etcd take their source ports from that range), distinct from the ports
# this run already picked. Two runs may still pick the same port at the same moment: the
# launchers retry on "address already in use". (Fixed ports are no option anyway: on a
# machine with systemd, installing etcd-server starts a system etcd on 2379/2380.)
pick_port() {
  local lo hi p used
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range || lo=32768
  hi=$((lo - 1))
  lo=$((hi - 12000 > 1024 ? hi - 12000 : 1025))
  used=" $(ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' | tr '\n' ' ') "
  for _ in $(seq 200); do
    p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
    [[ $CHOSEN_PORTS == *" $p "* || $used == *" $p "* ]] && continue
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then continue; fi
    CHOSEN_PORTS+="$p "
    printf -v "$1" '%s' "$p"
    return 0
  done
  die "no free port found in $lo-$hi"
}

# start NAME ARGS...: runs the binary in its own session (a Ctrl-C or the end of the calling
# shell does not reach it), logs to DIR/logs/NAME.log, records its PID in DIR/run/NAME.pid.
start() {
  local name=$1 pidfile="$DIR/run/$1.pid" i
  shift
  rm -f "$pidfile"
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell, which execs the binary
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$(bin_of "$name")" "$@" \
    </dev/null >>"$DIR/logs/$name.log" 2>&1 {ERR_FD}>&- &
  for ((i = 0; i < 100; i++)); do
    [[ -s $pidfile ]] && break
    sleep 0.05
  done
  [[ -s $pidfile ]] || die "$name did not start"
  STARTED+=("$name")
}

# wait_ready NAME TIMEOUT CHECK...: 0 ready, 2 the process died, 1 timeout.
wait_ready() {
  local name=$1 timeout=$2 deadline
  shift 2
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    is_ours "$name" || return 2
    ((SECONDS < deadline)) || return 1
    sleep 0.25
  done
}

# launch NAME CHECK-FUNCTION ARGS-FUNCTION: picks ports (ARGS-FUNCTION does, via pick_port),
# starts, waits; retries with new ports when a port was taken in the meantime.
launch() {
  local name=$1 check=$2 mkargs=$3 log="$DIR/logs/$1.log" attempt offset rc args=()
  for attempt in 1 2 3 4 5; do
    "$mkargs"
    args=("${ARGS[@]}")
    offset=$(($(stat -c %s "$log" 2>/dev/null || echo 0) + 1))
    start "$name" "${args[@]}"
    rc=0
    wait_ready "$name" "$READY_TIMEOUT" "$check" || rc=$?
    case $rc in
    0) return 0 ;;
    1) die "$name was not ready after ${READY_TIMEOUT}s" ;;
    esac
    unset 'STARTED[${#STARTED[@]}-1]'
    if tail -c "+$offset" "$log" | grep -q 'address already in use' && ((attempt < 5)); then
      note "a port was taken meanwhile; retrying $name with new ports"
      continue
    fi
    die "$name exited during startup"
  done
}

ARGS=()

etcd_args() {
  pick_port ETCD_PORT
  pick_port ETCD_PEER_PORT
  ARGS=(
    --name=palisade --data-dir="$DIR/etcd"
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT"
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT"
    --initial-cluster="palisade=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state=new
    --logger=zap --log-outputs=stderr
  )
}
etcd_check() { curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"; }

apiserver_args() {
  local extra=() node_plugins=""
  ((NODE)) && node_plugins=",NodeRestriction"
  pick_port API_PORT
  read -r -a extra <<<"${PALISADE_APISERVER_EXTRA_FLAGS:-}"
  ARGS=(
    --etcd-servers="http://127.0.0.1:$ETCD_PORT"
    --bind-address="$API_HOST" --advertise-address="$API_HOST" --secure-port="$API_PORT"
    --cert-dir="$DIR/kube-apiserver"
    --tls-cert-file="$DIR/pki/apiserver.crt" --tls-private-key-file="$DIR/pki/apiserver.key"
    --client-ca-file="$DIR/pki/ca.crt"
    --service-account-key-file="$DIR/pki/sa.pub" --service-account-signing-key-file="$DIR/pki/sa.key"
    --service-account-issuer=https://kubernetes.default.svc
    --service-cluster-ip-range=10.0.0.0/24
    --allow-privileged=true
    --feature-gates=EphemeralContainers=true
    # Added to the defaults of v1.20 (which already include NamespaceLifecycle, LimitRanger,
    # ServiceAccount, Priority, DefaultTolerationSeconds, DefaultStorageClass, ResourceQuota,
    # MutatingAdmissionWebhook, ValidatingAdmissionWebhook, ...). The flag is a list that
    # repeats add to: PALISADE_APISERVER_EXTRA_FLAGS=--enable-admission-plugins=PodSecurityPolicy
    # adds PSP to these. With PSP on, no pod is admitted until a PodSecurityPolicy allows it.
    "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,DefaultTolerationSeconds,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ResourceQuota,Priority$node_plugins"
  )
  if ((NODE)); then
    ARGS+=(
      # The kubelet has node credentials: the Node authorizer and NodeRestriction confine
      # it to its own Node and pods.
      --authorization-mode=Node,RBAC
      # The kubernetes Service's endpoint is the node IP, reachable from pods.
      --endpoint-reconciler-type=lease
      --kubelet-preferred-address-types=InternalIP
      --kubelet-client-certificate="$DIR/pki/apiserver-kubelet-client.crt"
      --kubelet-client-key="$DIR/pki/apiserver-kubelet-client.key"
      --kubelet-certificate-authority="$DIR/pki/ca.crt"
    )
  else
    ARGS+=(
      --authorization-mode=RBAC
      # The "kubernetes" Service would get the endpoint 127.0.0.1, which Endpoints
      # validation refuses (loopback): an error every 10s. Nothing runs in-cluster.
      --endpoint-reconciler-type=none
    )
  fi
  ARGS+=("${extra[@]}")
}
apiserver_check() {
  curl -fsS --max-time 3 --cacert "$DIR/pki/ca.crt" --cert "$DIR/pki/admin.crt" --key "$DIR/pki/admin.key" \
    "https://$API_HOST:$API_PORT/readyz"
}

controller_manager_args() {
  local extra=() kc="$DIR/controller-manager.kubeconfig"
  pick_port CM_PORT
  read -r -a extra <<<"${PALISADE_CONTROLLER_MANAGER_EXTRA_FLAGS:-}"
  ARGS=(
    # No --authentication/authorization-kubeconfig: only /healthz (always allowed) is used,
    # and without a front-proxy CA on the apiserver they log errors at every start.
    --kubeconfig="$kc"
    --service-account-private-key-file="$DIR/pki/sa.key" --root-ca-file="$DIR/pki/ca.crt"
    --cluster-signing-cert-file="$DIR/pki/ca.crt" --cluster-signing-key-file="$DIR/pki/ca.key"
    --use-service-account-credentials=true
    # Without a node no kubelet ever reports, so the node lifecycle controller would mark
    # the fake Nodes unreachable after 40s and taint them NoSchedule, and DaemonSets would
    # stop fanning out to them. It runs only with the real node.
    "--controllers=*$( ((NODE)) || echo ',-nodelifecycle')"
    --leader-elect=false
    # --port=0: v1.20 still opens an insecure port, 10252, by default; two clusters would collide.
    --bind-address=127.0.0.1 --secure-port="$CM_PORT" --port=0
    --cert-dir="$DIR/kube-controller-manager"
    --feature-gates=EphemeralContainers=true
    "${extra[@]}"
  )
}
controller_manager_check() { curl -fsSk --max-time 2 "https://127.0.0.1:$CM_PORT/healthz"; }

kc() { "$BIN_DIR/kubectl" --kubeconfig "$DIR/kubeconfig" "$@"; }

register_fake_nodes() {
  local now n names=()
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for ((n = 1; n <= FAKE_NODES; n++)); do
    names+=("palisade-fake-node-$n")
    # A Node's status given at creation is kept (a kubelet registers this way).
    kc create -f - <<EOF
apiVersion: v1
kind: Node
metadata:
  name: palisade-fake-node-$n
  labels:
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: palisade-fake-node-$n
spec: {}
status:
  capacity: {cpu: "4", memory: 8Gi, pods: "110"}
  allocatable: {cpu: "4", memory: 8Gi, pods: "110"}
  conditions:
  - {type: Ready, status: "True", reason: KubeletReady, message: "registered by hack/local-cluster.sh (no kubelet runs)", lastHeartbeatTime: "$now", lastTransitionTime: "$now"}
  nodeInfo: {architecture: amd64, operatingSystem: linux, kubeletVersion: v$KUBE_VERSION, kubeProxyVersion: v$KUBE_VERSION, bootID: "", containerRuntimeVersion: "", kernelVersion: "", machineID: "", osImage: "", systemUUID: ""}
EOF
  done
  # The TaintNodesByCondition admission plugin taints every new Node
  # node.kubernetes.io/not-ready:NoSchedule; the node lifecycle controller (off, see above)
  # would lift it. DaemonSets do not tolerate it, so it is lifted here.
  kc taint nodes "${names[@]}" node.kubernetes.io/not-ready:NoSchedule-
}

# In v1.20 the ServiceAccount admission plugin rejects pods until the service account has a
# token Secret (created by the controller-manager's token controller), not only the account.
default_sa_ready() {
  [[ -n $(kc -n default get serviceaccount default -o 'jsonpath={.secrets[0].name}' 2>/dev/null) ]]
}

# ---------------------------------------------------------------- commands

load_state() {
  [[ -f $DIR/cluster.env ]] || return 1
  # shellcheck source=/dev/null
  . "$DIR/cluster.env"
}

print_env() {
  printf 'export KUBECONFIG=%q\n' "$DIR/kubeconfig"
  printf 'export PALISADE_KUBECTL=%q\n' "$BIN_DIR/kubectl"
  [[ -n ${REGISTRY:-} ]] && printf 'export PALISADE_REGISTRY=%q\n' "$REGISTRY"
  return 0
}

all_running() {
  local c
  for c in "${COMPONENTS[@]}"; do is_ours "$c" || return 1; done
  load_state && apiserver_check >/dev/null 2>&1
}

# The components of the cluster in DIR, as `up` recorded them.
load_components() {
  if load_state && [[ ${NODE:-0} == 1 ]]; then
    COMPONENTS=("${NODE_COMPONENTS[@]}")
  else
    COMPONENTS=("${CONTROL_PLANE[@]}")
  fi
}

cmd_up() {
  local t0=$SECONDS t_bin
  if [[ -f $DIR/.palisade-cluster ]]; then
    local want_node=$NODE
    load_components
    if all_running && [[ $NODE == "$want_node" ]]; then
      say "a cluster is already running in $DIR (https://$API_HOST:$API_PORT)"
      print_env
      return 0
    fi
    say "leftovers of an earlier cluster in $DIR (or one with(out) a node): stopping them, starting afresh"
    cmd_down
    NODE=$want_node
    REGISTRY=""
  elif [[ -e $DIR ]] && [[ -n $(ls -A "$DIR") ]]; then
    die "$DIR exists and is not a cluster dir of this script; choose another --dir"
  fi
  if ((NODE)); then
    COMPONENTS=("${NODE_COMPONENTS[@]}")
    API_HOST=$NODE_IP
    ((EUID == 0)) || die "the node (bridge, iptables, containerd, kubelet) needs root; use --no-node for the control plane alone"
  else
    COMPONENTS=("${CONTROL_PLANE[@]}")
    API_HOST=127.0.0.1
  fi
  ((FAKE_NODES == 0 || NODE == 0)) || die "--fake-nodes needs --no-node: the node lifecycle controller would taint Nodes no kubelet backs"
  mkdir -p "$DIR/logs" "$DIR/run"
  echo "palisade local cluster (hack/local-cluster.sh)" >"$DIR/.palisade-cluster"

  ensure_tools "$DIR/logs/apt.log" etcd:etcd-server openssl:openssl curl:curl setsid:util-linux \
    flock:util-linux ss:iproute2
  # kubectl for people and tests: Debian's kubernetes-client if none is on PATH (these
  # machines already have Google's kubectl v1.32 in /usr/bin, which works with skew warnings).
  ensure_tools "$DIR/logs/apt.log" kubectl:kubernetes-client
  ((NODE)) && node_tools

  if ! cache_complete; then
    build_binaries "$DIR/logs/build.log"
  fi
  say "binaries: $BIN_DIR ($(head -n 1 "$BIN_DIR/VERSION"))"
  t_bin=$SECONDS

  pki "$DIR/logs/pki.log"
  {
    echo "NODE=$NODE"
    echo "API_HOST=$API_HOST"
  } >"$DIR/cluster.env"
  if ((NODE)); then
    node_preflight
    node_record_before
    node_pki
    node_network_up
    step "starting the local registry (docker-registry $(docker-registry --version 2>/dev/null | awk '{print $3}'))" "$DIR/logs/docker-registry.log"
    launch docker-registry registry_check registry_args
    REGISTRY="$NODE_IP:$REGISTRY_PORT"
    echo "REGISTRY=$REGISTRY" >>"$DIR/cluster.env"
    note "registry on http://$REGISTRY, pid $(<"$DIR/run/docker-registry.pid")"
  fi

  step "starting etcd $(etcd --version 2>/dev/null | awk 'NR==1 {print $3}')" "$DIR/logs/etcd.log"
  launch etcd etcd_check etcd_args
  note "etcd on 127.0.0.1:$ETCD_PORT (peer $ETCD_PEER_PORT), pid $(<"$DIR/run/etcd.pid")"

  step "starting kube-apiserver v$KUBE_VERSION and waiting for /readyz" "$DIR/logs/kube-apiserver.log"
  launch kube-apiserver apiserver_check apiserver_args
  note "kube-apiserver on https://$API_HOST:$API_PORT, pid $(<"$DIR/run/kube-apiserver.pid")"
  kubeconfig "$DIR/kubeconfig" palisade-admin admin
  kubeconfig "$DIR/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
  cat >>"$DIR/cluster.env" <<EOF
ETCD_PORT=$ETCD_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
API_PORT=$API_PORT
EOF

  step "starting kube-controller-manager" "$DIR/logs/kube-controller-manager.log"
  launch kube-controller-manager controller_manager_check controller_manager_args
  echo "CM_PORT=$CM_PORT" >>"$DIR/cluster.env"
  note "kube-controller-manager on https://127.0.0.1:$CM_PORT, pid $(<"$DIR/run/kube-controller-manager.pid")"

  if ((FAKE_NODES > 0)); then
    step "registering $FAKE_NODES Node objects no kubelet backs (palisade-fake-node-N)" "$DIR/logs/setup.log"
    register_fake_nodes >>"$DIR/logs/setup.log" 2>&1
  fi

  if ((NODE)); then
    kubeconfig "$DIR/scheduler.kubeconfig" system:kube-scheduler scheduler
    step "starting kube-scheduler" "$DIR/logs/kube-scheduler.log"
    launch kube-scheduler scheduler_check scheduler_args
    echo "SCHEDULER_PORT=$SCHEDULER_PORT" >>"$DIR/cluster.env"

    step "starting containerd $(containerd --version | awk '{print $3}') (runc $(runc --version | awk 'NR==1 {print $3}'))" "$DIR/logs/containerd.log"
    launch containerd containerd_check containerd_args
    push_pause_image

    step "starting the kubelet and waiting for Node $NODE_NAME to be Ready" "$DIR/logs/kubelet.log"
    launch kubelet kubelet_check kubelet_args
    echo "KUBELET_PORT=$KUBELET_PORT" >>"$DIR/cluster.env"
    local rc=0
    wait_ready kubelet "$READY_TIMEOUT" node_ready || rc=$?
    case $rc in
    1) die "Node $NODE_NAME was not Ready and untainted after ${READY_TIMEOUT}s: $(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].message} {.spec.taints}' 2>&1)" ;;
    2) die "the kubelet exited" ;;
    esac

    step "starting kube-proxy (iptables)" "$DIR/logs/kube-proxy.log"
    launch kube-proxy proxy_check proxy_args
  fi

  step "waiting for the default ServiceAccount and its token in namespace default" "$DIR/logs/kube-controller-manager.log"
  local rc=0
  wait_ready kube-controller-manager "$READY_TIMEOUT" default_sa_ready || rc=$?
  case $rc in
  1) die "no default ServiceAccount with a token after ${READY_TIMEOUT}s" ;;
  2) die "kube-controller-manager exited" ;;
  esac

  say "cluster ready in $((SECONDS - t0))s ($((SECONDS - t_bin))s after the binaries were at hand): https://$API_HOST:$API_PORT"
  if ((NODE)); then
    note "node $NODE_NAME ($NODE_IP; pods in $POD_CIDR on bridge $BRIDGE), registry http://$REGISTRY (exported as PALISADE_REGISTRY)"
  fi
  note "kubectl v$KUBE_VERSION matching the server: $BIN_DIR/kubectl (exported as PALISADE_KUBECTL)"
  note "stop with: $0 down --dir $DIR"
  STEP=""
  print_env
}

cmd_down() {
  local c i
  if [[ ! -e $DIR ]]; then
    say "no cluster in $DIR: nothing to do"
    return 0
  fi
  [[ -f $DIR/.palisade-cluster ]] || die "$DIR is not a cluster dir of this script; not touching it"
  load_components
  step "stopping the cluster in $DIR"
  if [[ ${NODE:-0} == 1 ]]; then
    # Nothing may recreate the pods that the drain deletes.
    stop_component kube-controller-manager
    node_drain
  fi
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    c=${COMPONENTS[i]}
    stop_component "$c"
  done
  [[ ${NODE:-0} == 1 ]] && node_sweep
  rm -rf -- "$DIR"
  note "removed $DIR"
}

cmd_status() {
  local c pid rc=0
  if [[ ! -f $DIR/.palisade-cluster ]]; then
    echo "no cluster in $DIR"
    return 3
  fi
  load_components
  for c in "${COMPONENTS[@]}"; do
    pid=$(cat "$DIR/run/$c.pid" 2>/dev/null || echo -)
    if is_ours "$c"; then
      printf '%-24s running  pid %s\n' "$c" "$pid"
    else
      printf '%-24s STOPPED  (pid file: %s)\n' "$c" "$pid"
      rc=1
    fi
  done
  printf 'ports: etcd %s (peer %s), kube-apiserver %s, kube-controller-manager %s\n' \
    "${ETCD_PORT:--}" "${ETCD_PEER_PORT:--}" "${API_PORT:--}" "${CM_PORT:--}"
  if [[ ${NODE:-0} == 1 ]]; then
    printf 'node: %s (%s), kubelet %s, kube-scheduler %s, registry http://%s\n' \
      "$NODE_NAME" "$NODE_IP" "${KUBELET_PORT:--}" "${SCHEDULER_PORT:--}" "${REGISTRY:--}"
  fi
  if [[ -n ${API_PORT:-} ]] && apiserver_check >/dev/null 2>&1; then
    echo "/readyz: ok"
  else
    echo "/readyz: NOT ready"
    rc=1
  fi
  echo "kubeconfig: $DIR/kubeconfig"
  return "$rc"
}

# Only the binaries, e.g. to fill the cache ahead of a test run.
cmd_build() {
  if cache_complete; then
    say "binaries already cached in $BIN_DIR"
    return 0
  fi
  mkdir -p "$CACHE_ROOT"
  build_binaries "$CACHE_ROOT/build.log"
  say "binaries cached in $BIN_DIR"
}

cmd_env() {
  [[ -f $DIR/kubeconfig ]] || die "no cluster in $DIR; run: $0 up --dir $DIR"
  load_state || true
  print_env
}

cmd_logs() {
  local lines=50 names=() n
  while (($#)); do
    case $1 in
    -n) lines=$2; shift 2 ;;
    etcd | kube-apiserver | kube-controller-manager | kube-scheduler | containerd | kubelet | kube-proxy | docker-registry | build | apt | pki | setup | down) names+=("$1"); shift ;;
    registry) names+=(docker-registry); shift ;;
    apiserver) names+=(kube-apiserver); shift ;;
    controller-manager) names+=(kube-controller-manager); shift ;;
    *) die "logs: unknown argument $1" ;;
    esac
  done
  load_components
  ((${#names[@]})) || names=("${COMPONENTS[@]}")
  for n in "${names[@]}"; do
    echo "--- $DIR/logs/$n.log (last $lines lines) ---"
    tail -n "$lines" "$DIR/logs/$n.log" 2>/dev/null || echo "(no log)"
  done
}

main() {
  (($#)) || usage
  CMD=$1
  shift
  local rest=()
  DIR=${PALISADE_CLUSTER_DIR:-$REPO_ROOT/.palisade/cluster}
  [[ ${PALISADE_CLUSTER_NODE:-1} == 0 ]] && NODE=0
  while (($#)); do
    case $1 in
    --no-node) NODE=0; shift ;;
    --fake-nodes)
      FAKE_NODES=${2:?--fake-nodes needs a number}
      [[ $FAKE_NODES =~ ^[0-9]+$ ]] || die "--fake-nodes takes a number, not '$FAKE_NODES'"
      shift 2
      ;;
    --dir) DIR=${2:?--dir needs a value}; shift 2 ;;
    --dir=*) DIR=${1#--dir=}; shift ;;
    -h | --help) usage 0 ;;
    *) rest+=("$1"); shift ;;
    esac
  done
  DIR=$(realpath -m -- "$DIR")
  [[ $DIR != / ]] || die "refusing --dir /"
  case $CMD in
  up) cmd_up ;;
  build) cmd_build ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  logs) cmd_logs "${rest[@]}" ;;
  -h | --help | help) usage 0 ;;
  *) usage ;;
  esac
}

main "$@"
