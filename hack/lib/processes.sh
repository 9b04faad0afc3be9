# Shell helpers shared by hack/run.sh and the benchmarks: sourced, not run. The caller
# defines die().

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
