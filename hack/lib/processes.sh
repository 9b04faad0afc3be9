# Shell helpers shared by hack/run.sh, hack/run-local.sh and the benchmarks: sourced, not
# run. The caller defines die() (and say() and k() for the sample helpers).

# Stop a process: TERM, then KILL after 5 s.
stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
}

# A free port on 127.0.0.1 below the ephemeral range, not one already picked.
PICKED=" "
free_port() {
  local lo hi p used
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range || lo=32768
  hi=$((lo - 1))
  lo=$((hi - 10000))
  used=" $(ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' | tr '\n' ' ') "
  for _ in $(seq 200); do
    p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
    [[ $PICKED == *" $p "* || $used == *" $p "* ]] && continue
    PICKED+="$p "
    echo "$p"
    return 0
  done
  die "no free port in $lo-$hi"
}

# Wait up to $1 seconds for the command after it to succeed.
wait_for() {
  local secs=$1
  shift
  for _ in $(seq $((secs * 5))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

# The sample policy that `make run` and `make run-local` show refusing a pod.
SAMPLE_TRY=config/samples/workloads/bad-privileged-pod.yaml

# sample_denial CHECK: applies the sample namespaces and policies with the caller's k(), then
# waits (up to 30 s, running CHECK between tries) until the webhook refuses $SAMPLE_TRY in a
# server-side dry run; sets DENIAL to what kubectl printed.
sample_denial() {
  local check=$1 out=""
  say "applying the sample namespaces and policies (config/samples/)"
  k apply -f config/samples/workloads/namespaces.yaml | sed 's/^/    /' >&2
  k apply -f config/samples/ | sed 's/^/    /' >&2
  DENIAL=""
  # The webhook learns the policies through its watch.
  for _ in $(seq 120); do
    if ! out=$(k apply --dry-run=server -f "$SAMPLE_TRY" 2>&1) && [[ $out == *"denied the request"* ]]; then
      DENIAL=$out
      return 0
    fi
    "$check"
    sleep 0.25
  done
  die "the webhook did not refuse $SAMPLE_TRY within 30s: $out"
}

# print_try LOCAL: what to try next, with $DENIAL; LOCAL=true adds the KUBECONFIG to export.
print_try() {
  if $1; then
    echo
    echo "In another terminal:"
    echo
    echo "  export KUBECONFIG=$KUBECONFIG"
    if [[ -n ${PALISADE_KUBECTL:-} ]]; then
      echo "  # kubectl matching the server (v1.20): $PALISADE_KUBECTL; a newer kubectl works too"
    fi
  fi
  echo
  echo "Try:"
  echo
  echo "  kubectl apply -f $SAMPLE_TRY"
  echo
  echo "which is refused (this is a server-side dry run of it, just now):"
  echo
  grep -v 'version difference between client' <<<"$DENIAL" | sed 's/^/  /'
  echo
  echo "  kubectl apply -f config/samples/workloads/     # all sample workloads: refused, warned, admitted"
  echo "  kubectl get secpol                            # the policies: Ready, audit Violations"
  echo "  kubectl get policyreport -A                   # what the audit found in each namespace"
}
