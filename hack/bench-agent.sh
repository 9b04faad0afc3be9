#!/usr/bin/env bash
# `make bench-agent`: what palisade-agent costs on this machine, with no cluster. The agent
# runs `--standalone` (every default runtime rule, Audit, from a policy file) with this
# script's shell as the host (`--host-pid $$`), so any process in a mount namespace of its
# own counts as a container process; the load comes from the agent's `loadgen` example,
# started with `unshare -m`. Needs root (eBPF, unshare).
#
#   opens        loadgen opens PALISADE_BENCH_OPEN_PATH read-only at Falco's published
#                rate (4,400 events/s, where Falco took 38% of a CPU and dropped 2%) for
#                PALISADE_BENCH_SECONDS, then as fast as it can for
#                PALISADE_BENCH_MAX_SECONDS, each with a fresh agent; the full-speed run
#                also without the agent, which shows what the kernel programs cost the
#                process that opens. The default path, /etc/hostname, is watched (the kernel
#                sends every open under /etc/, which the write-below-etc rule needs) but
#                breaks no rule: every record crosses the ring buffer and is decoded and
#                judged by every open rule, and no JSON line is written (/etc/shadow would
#                add a detection and a JSON line per open). Figures: records/s (the delta of
#                palisade_agent_sensor_records_total), drops (kernel: ring buffer full;
#                agent: queue full), the agent's CPU from /proc/PID/stat (utime+stime, its
#                start-up and the verifier's work left out), records judged per agent
#                CPU-second (events/s ÷ CPU fraction), VmHWM and VmRSS.
#   exec loop    loadgen runs /bin/true PALISADE_BENCH_EXECS times to completion, timed: a
#                fork, an exec, the loader's open of /etc/ld.so.cache and an exit each. There
#                are PALISADE_BENCH_ROUNDS rounds, each timing the loop without and with the
#                agent, the order alternating (ABBA) so that a shared machine's drift falls on
#                both. The agent is started before each "with" loop (timing starts once its
#                rules are applied and a probe record has arrived) and stopped after it: a
#                kept agent would leave its programs attached during the "without" loops.
#                Figure: the median over rounds of with ÷ without.
#
# A benchmark, not a test: it prints figures and fails only when something does not run.
# Variables: PALISADE_BENCH_RATE (4400), PALISADE_BENCH_SECONDS (30),
# PALISADE_BENCH_MAX_SECONDS (10), PALISADE_BENCH_OPEN_PATH (/etc/hostname),
# PALISADE_BENCH_EXECS (10000), PALISADE_BENCH_ROUNDS (5), PALISADE_BENCH_DIR
# (target/bench-agent: agent logs and JSON lines, metrics scrapes, raw figures).
# The table and one JSON line per figure go to stdout, and to PALISADE_BENCH_DIR/summary.md
# and figures.jsonl; progress goes to stderr.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
RATE=${PALISADE_BENCH_RATE:-4400}
SECONDS_AT_RATE=${PALISADE_BENCH_SECONDS:-30}
SECONDS_AT_MAX=${PALISADE_BENCH_MAX_SECONDS:-10}
OPEN_PATH=${PALISADE_BENCH_OPEN_PATH:-/etc/hostname}
EXECS=${PALISADE_BENCH_EXECS:-10000}
ROUNDS=${PALISADE_BENCH_ROUNDS:-5}
OUT=$(realpath -m "${PALISADE_BENCH_DIR:-target/bench-agent}")
RELEASE=$(realpath -m "${CARGO_TARGET_DIR:-target}/release")
AGENT=$RELEASE/palisade-agent
LOADGEN=$RELEASE/examples/agent_loadgen

say() { printf '==> [%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}

AGENT_PID=
LOAD_PID=
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $LOAD_PID ]]; then
    kill -TERM "$LOAD_PID" 2>/dev/null || true
    wait "$LOAD_PID" 2>/dev/null || true
  fi
  stop_agent
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

((EUID == 0)) || die "the agent's eBPF programs and unshare need root"
command -v unshare >/dev/null 2>&1 || die "unshare (util-linux) is needed"
command -v curl >/dev/null 2>&1 || die "curl is needed"
rm -rf "$OUT"
mkdir -p "$OUT"

say "building palisade-agent and its loadgen example (release)"
hack/agent-tools.sh >&2
cargo build --locked --release -q -p palisade-agent --bin palisade-agent --example agent_loadgen
[[ -x $AGENT && -x $LOADGEN ]] || die "no $AGENT or $LOADGEN after the build"

cat >"$OUT/policy.yaml" <<'EOF'
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: runtime-all}
spec:
  runtime: {mode: Audit}
EOF
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
METRICS=http://127.0.0.1:$PORT/metrics

scrape() { curl -fsS --max-time 5 "$METRICS"; }

# The sum of the samples of one metric in a scrape on stdin.
metric_sum() { awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%d\n", s }'; }

# utime+stime of a process, in clock ticks.
cpu_ticks() {
  local stat rest
  read -r stat <"/proc/$1/stat"
  rest=${stat##*) } # after the command name, which may hold spaces
  # shellcheck disable=SC2086 # split into the fields
  set -- $rest
  echo $((${12} + ${13}))
}

# Starts the agent, logs named after $1, and returns once it judges: the eBPF sensor is up,
# its rules are applied and a probe open from a container has arrived.
start_agent() {
  local name=$1
  "$AGENT" --standalone --policy-file "$OUT/policy.yaml" --host-pid $$ --sensor ebpf \
    --admin-addr "127.0.0.1:$PORT" >"$OUT/$name.agent.jsonl" 2>"$OUT/$name.agent.log" &
  AGENT_PID=$!
  local i
  for ((i = 0; ; i++)); do
    kill -0 "$AGENT_PID" 2>/dev/null || die "the agent exited: $(tail -5 "$OUT/$name.agent.log")"
    scrape 2>/dev/null | grep -q '^palisade_agent_sensor{sensor="ebpf"} 1' && break
    ((i < 300)) || die "the agent did not serve its metrics within 30 s (log: $OUT/$name.agent.log)"
    sleep 0.1
  done
  # The kernel filters follow the rules a moment after start: probe until an open arrives.
  for ((i = 0; ; i++)); do
    unshare -m -- "$LOADGEN" open --path "$OPEN_PATH" --rate 100 --seconds 0.05 >/dev/null
    (($(scrape | metric_sum palisade_agent_sensor_records_total) > 0)) && break
    ((i < 100)) || die "no record reached the agent within 10 s of its start (log: $OUT/$name.agent.log)"
    sleep 0.1
  done
}

stop_agent() {
  [[ -n $AGENT_PID ]] || return 0
  kill -TERM "$AGENT_PID" 2>/dev/null || true
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$AGENT_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$AGENT_PID" 2>/dev/null || true
  wait "$AGENT_PID" 2>/dev/null || true
  AGENT_PID=
}

# Waits until the agent has taken in what the kernel queued: two scrapes in a row with the
# same records and drops (the kernel's drop count is read after each ring-buffer poll).
settle() {
  local last='' now i
  for ((i = 0; i < 100; i++)); do
    now=$(scrape | grep -E '^palisade_agent_sensor_(records|dropped)_total')
    [[ $now == "$last" ]] && return 0
    last=$now
    sleep 0.3
  done
  die "the agent's counts did not settle within 30 s"
}

# Runs loadgen in a container (arguments: the output file, then loadgen's arguments).
load() {
  local out=$1
  shift
  unshare -m -- "$LOADGEN" "$@" >"$out" &
  LOAD_PID=$!
  wait "$LOAD_PID" || die "loadgen $* failed"
  LOAD_PID=
}

# Before and after `load ...` with the running agent: scrapes, CPU ticks, wall clock and
# memory in files named after $1.
measured() {
  local name=$1
  shift
  settle
  scrape >"$OUT/$name.before.prom"
  local t0 c0 t1 c1
  c0=$(cpu_ticks "$AGENT_PID")
  t0=$EPOCHREALTIME
  load "$OUT/$name.load.json" "$@"
  settle
  c1=$(cpu_ticks "$AGENT_PID")
  t1=$EPOCHREALTIME
  scrape >"$OUT/$name.after.prom"
  {
    echo "cpu_ticks_before=$c0"
    echo "cpu_ticks_after=$c1"
    echo "clk_tck=$(getconf CLK_TCK)"
    echo "wall_before=$t0"
    echo "wall_after=$t1"
    grep -E '^(VmHWM|VmRSS):' "/proc/$AGENT_PID/status" | tr -d ' \t' | sed 's/:/=/; s/kB$//'
  } >"$OUT/$name.proc"
}

# --- opens ------------------------------------------------------------------------------
say "opens of $OPEN_PATH at $RATE/s for $SECONDS_AT_RATE s"
start_agent rate
measured rate open --path "$OPEN_PATH" --rate "$RATE" --seconds "$SECONDS_AT_RATE"
stop_agent

say "opens of $OPEN_PATH as fast as one process can, for $SECONDS_AT_MAX s: without the agent, then with it"
load "$OUT/max-none.load.json" open --path "$OPEN_PATH" --rate 0 --seconds "$SECONDS_AT_MAX"
start_agent max
measured max open --path "$OPEN_PATH" --rate 0 --seconds "$SECONDS_AT_MAX"
stop_agent

# --- exec loop --------------------------------------------------------------------------
say "exec loop: a warm-up of 1000 runs of /bin/true"
load "$OUT/exec-warmup.load.json" exec --count 1000
for ((round = 1; round <= ROUNDS; round++)); do
  if ((round % 2)); then order=(without with); else order=(with without); fi
  for mode in "${order[@]}"; do
    say "exec loop: round $round/$ROUNDS, $EXECS runs $mode the agent"
    if [[ $mode == with ]]; then
      start_agent "exec-$round"
      measured "exec-$round-with" exec --count "$EXECS"
      stop_agent
    else
      load "$OUT/exec-$round-without.load.json" exec --count "$EXECS"
    fi
    sleep 1 # the detached programs' teardown stays out of the next loop
  done
done

# --- summary ----------------------------------------------------------------------------
python3 - "$OUT" "$ROUNDS" "$RATE" "$OPEN_PATH" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'EOF'
import json, os, statistics, sys

out, rounds, rate, path, cpus, load = sys.argv[1:]
rounds, rate = int(rounds), int(rate)

# Falco's published performance test: 4,400 events/s at 38% of a CPU, 2% dropped.
FALCO_PER_CPU = 4400 / 0.38

def prom(name):
    samples = {}
    for line in open(os.path.join(out, name)):
        if line.startswith("#") or not line.strip():
            continue
        key, value = line.rsplit(" ", 1)
        samples[key] = float(value)
    return samples

def delta(name, key):
    return prom(name + ".after.prom").get(key, 0) - prom(name + ".before.prom").get(key, 0)

def total(name, prefix):
    a, b = prom(name + ".after.prom"), prom(name + ".before.prom")
    return sum(v for k, v in a.items() if k.startswith(prefix)) - sum(
        v for k, v in b.items() if k.startswith(prefix))

def run(name):
    load = json.load(open(os.path.join(out, name + ".load.json")))
    proc = dict(line.strip().split("=", 1) for line in open(os.path.join(out, name + ".proc")))
    records = total(name, "palisade_agent_sensor_records_total{")
    opens = delta(name, 'palisade_agent_sensor_records_total{kind="open"}')
    kernel = delta(name, 'palisade_agent_sensor_dropped_total{where="kernel"}')
    agent = delta(name, 'palisade_agent_sensor_dropped_total{where="agent"}')
    cpu = (int(proc["cpu_ticks_after"]) - int(proc["cpu_ticks_before"])) / int(proc["clk_tck"])
    wall = float(proc["wall_after"]) - float(proc["wall_before"])
    judged = records - agent
    return {
        "load": load,
        "records": records,
        "opens": opens,
        "records_per_s": records / load["seconds"],
        "dropped_kernel": kernel,
        "dropped_agent": agent,
        "dropped_percent": 100 * (kernel + agent) / max(records + kernel, 1),
        "cpu_s": cpu,
        "cpu_percent": 100 * cpu / wall,
        "per_cpu_s": judged / cpu if cpu > 0 else float("inf"),
        "detections": total(name, "palisade_agent_detections_total{"),
        "vmhwm_mib": int(proc["VmHWM"]) / 1024,
        "vmrss_mib": int(proc["VmRSS"]) / 1024,
    }

figures = []
def figure(name, value, unit):
    figures.append({"bench": "agent", "figure": name, "value": round(value, 4), "unit": unit})

lines = []
p = lines.append
p(f"# palisade-agent, standalone, every default runtime rule (Audit); {cpus} CPUs, "
  f"load average {load} at the end\n")
p(f"Opens of {path} from one process in its own mount namespace, a fresh agent per run. "
  f"Records per CPU-second are the records judged over the agent's CPU time (events/s ÷ "
  f"CPU fraction); Falco's test gives {FALCO_PER_CPU:,.0f} (4,400/s at 38%), ten times "
  f"that is {10 * FALCO_PER_CPU:,.0f}.\n")
p("| run | opens/s offered | records/s | dropped (kernel + agent) | agent CPU | records per CPU-second | VmHWM | VmRSS |")
p("| --- | --- | --- | --- | --- | --- | --- | --- |")
for name, label in [("rate", f"{rate:,}/s"), ("max", "full speed")]:
    r = run(name)
    p(f"| {label} | {r['load']['per_second']:,.0f} | {r['records_per_s']:,.0f} | "
      f"{r['dropped_kernel'] + r['dropped_agent']:,.0f} ({r['dropped_percent']:.2f}%) | "
      f"{r['cpu_percent']:.1f}% ({r['cpu_s']:.2f} s) | {r['per_cpu_s']:,.0f} "
      f"({1e6 / r['per_cpu_s']:.1f} µs each) | "
      f"{r['vmhwm_mib']:.1f} MiB | {r['vmrss_mib']:.1f} MiB |")
    for key, unit in [("records_per_s", "records/s"), ("dropped_kernel", "records"),
                      ("dropped_agent", "records"), ("dropped_percent", "%"),
                      ("cpu_percent", "% of a CPU"), ("per_cpu_s", "records/CPU-s"),
                      ("detections", "detections"), ("vmhwm_mib", "MiB"), ("vmrss_mib", "MiB")]:
        figure(f"open_{name}.{key}", r[key], unit)
    figure(f"open_{name}.offered_per_s", r["load"]["per_second"], "opens/s")
none = json.load(open(os.path.join(out, "max-none.load.json")))
with_agent = run("max")["load"]
cost_us = 1e6 / with_agent["per_second"] - 1e6 / none["per_second"]
p(f"| full speed, no agent | {none['per_second']:,.0f} | | | | | | |")
p("")
p(f"The kernel programs cost the opening process {cost_us:.1f} µs per watched open "
  f"({none['per_second']:,.0f} opens/s alone, {with_agent['per_second']:,.0f} with the agent).")
figure("open_max_no_agent.offered_per_s", none["per_second"], "opens/s")
figure("open.kernel_cost_per_open_us", cost_us, "µs")

p("")
p(f"Exec loop: {rounds} rounds of /bin/true run to completion, without and with the agent "
  f"(started before and stopped after each of its loops), order alternating.\n")
p("| round | without s | with s | with ÷ without | agent records | dropped | agent CPU |")
p("| --- | --- | --- | --- | --- | --- | --- |")
ratios, withouts, withs = [], [], []
for i in range(1, rounds + 1):
    without = json.load(open(os.path.join(out, f"exec-{i}-without.load.json")))
    w = run(f"exec-{i}-with")
    ratio = w["load"]["seconds"] / without["seconds"]
    ratios.append(ratio)
    withouts.append(without["seconds"])
    withs.append(w["load"]["seconds"])
    p(f"| {i} | {without['seconds']:.3f} | {w['load']['seconds']:.3f} | {ratio:.3f} | "
      f"{w['records']:,.0f} | {w['dropped_kernel'] + w['dropped_agent']:,.0f} | "
      f"{w['cpu_percent']:.1f}% |")
    figure(f"exec.round{i}.without_s", without["seconds"], "s")
    figure(f"exec.round{i}.with_s", w["load"]["seconds"], "s")
    figure(f"exec.round{i}.ratio", ratio, "with/without")
    figure(f"exec.round{i}.dropped", w["dropped_kernel"] + w["dropped_agent"], "records")
median = statistics.median(ratios)
p(f"| median | {statistics.median(withouts):.3f} | {statistics.median(withs):.3f} | "
  f"{median:.3f} | | | |")
figure("exec.ratio_median", median, "with/without")
figure("exec.slowdown_median_percent", 100 * (median - 1), "%")

rate_run, max_run = run("rate"), run("max")
p("")
p("| goal | measured | met |")
p("| --- | --- | --- |")
for label, r in [(f"at {rate:,}/s", rate_run), ("at full speed", max_run)]:
    per_cpu = r["per_cpu_s"]
    p(f"| ≥ {10 * FALCO_PER_CPU:,.0f} records per CPU-second (10× Falco), {label} | "
      f"{per_cpu:,.0f} ({per_cpu / FALCO_PER_CPU:.1f}× Falco) | "
      f"{'yes' if per_cpu >= 10 * FALCO_PER_CPU else 'no'} |")
drops = rate_run["dropped_kernel"] + rate_run["dropped_agent"]
p(f"| no drops at {rate:,}/s | {drops:,.0f} | {'yes' if drops == 0 else 'no'} |")
p(f"| exec loop ≤ 5% slower | {100 * (median - 1):+.1f}% (median ratio {median:.3f}) | "
  f"{'yes' if median <= 1.05 else 'no'} |")

summary = "\n".join(lines) + "\n"
open(os.path.join(out, "summary.md"), "w").write(summary)
with open(os.path.join(out, "figures.jsonl"), "w") as f:
    for fig in figures:
        f.write(json.dumps(fig) + "\n")
print(summary)
for fig in figures:
    print(json.dumps(fig))
EOF
say "raw results in ${OUT#"$REPO"/}"
