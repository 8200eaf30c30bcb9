#!/usr/bin/env bash
# WireGuard throughput benchmark: iperf3 single-stream TCP through
#   1. a plain veth pair (baseline),
#   2. wireguard-go <-> wireguard-go,
#   3. wisp wireguard (Java) <-> wisp wireguard (Java),
# each between two fresh network namespaces, in one run on this machine. Reports Gbit/s and CPU
# seconds per GiB three ways over the measured run: the two WireGuard processes' (/proc/<pid>/stat);
# the benchmark's tasks' (those two, both iperf3 ends from iperf3's own rusage report, and the
# kernel's ksoftirqd threads: with tick accounting a task's system time includes the TCP, UDP, TUN
# and veth work done in its context, offloads included); and the whole machine's (/proc/stat:
# user+nice+system+irq+softirq of all CPUs), with how busy the machine was during the run and over
# an idle interval just before it (on a saturated shared machine the whole-machine figure is only
# cores x seconds / GiB). Ratios Java / wireguard-go for each. Needs root, wireguard-go, wg, iperf3.
# Results: bench/results/wireguard.txt
#   bench/wireguard/run.sh [seconds-per-run]
# WISP_BENCH_BASELINE_CP=<class path of another wisp build> adds a row for that build (e.g. the
# commit before a change, built elsewhere), measured in the same run, labelled $WISP_BENCH_BASELINE_LABEL.
set -euo pipefail
umask 077
root=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
secs=${1:-15}
out="$root/bench/results/wireguard.txt"
tmp=$(mktemp -d)
sfx=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
nsa="bwa$sfx"; nsb="bwb$sfx"
pids=()

. "$root/bench/lib/cpu.sh"
java=$(find_java)
[ -f "$root/cli/target/wisp-cli.jar" ] || (cd "$root" && ./mvnw -q -B -pl cli -am package -DskipTests -Dspotless.check.skip=true)
cp="$root/cli/target/wisp-cli.jar:$root/cli/target/lib/*"
baseline_cp=${WISP_BENCH_BASELINE_CP:-}
baseline_label=${WISP_BENCH_BASELINE_LABEL:-baseline build}
load_start=$(cut -d' ' -f1 /proc/loadavg)

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do
    alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break; sleep 0.1
  done
  ip netns del "$nsa" 2>/dev/null || true
  ip netns del "$nsb" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

setup_ns() {
  ip netns del "$nsa" 2>/dev/null || true; ip netns del "$nsb" 2>/dev/null || true
  ip netns add "$nsa"; ip netns add "$nsb"
  ip link add "va$sfx" type veth peer name "vb$sfx"
  ip link set "va$sfx" netns "$nsa"; ip link set "vb$sfx" netns "$nsb"
  ip -n "$nsa" addr add 192.168.250.1/24 dev "va$sfx"; ip -n "$nsb" addr add 192.168.250.2/24 dev "vb$sfx"
  for n in "$nsa" "$nsb"; do ip -n "$n" link set lo up; done
  ip -n "$nsa" link set "va$sfx" up; ip -n "$nsb" link set "vb$sfx" up
}

# measure address pids... -> prints "bytes wg_ticks iperf3_ticks ksoftirqd_ticks machine_ticks background_ticks wall_ms"
measure() {
  local addr=$1; shift
  local bg c0=0 c1=0 k0 k1 m0 m1 t0 t1 res p
  bg=$(background_ticks)
  for p in "$@"; do c0=$((c0 + $(cpu_ticks "$p"))); done
  k0=$(ksoftirqd_ticks); m0=$(machine_ticks); t0=$(date +%s%N)
  res=$(run_iperf "$addr")
  m1=$(machine_ticks); t1=$(date +%s%N); k1=$(ksoftirqd_ticks)
  for p in "$@"; do c1=$((c1 + $(cpu_ticks "$p"))); done
  set -- $res
  echo "$1 $((c1 - c0)) $2 $((k1 - k0)) $((m1 - m0)) $bg $(( (t1 - t0) / 1000000 ))"
}

# iperf3 from A to B at address $1 for $secs; prints "bytes"
run_iperf() {
  ip netns exec "$nsb" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
  local srv=$!
  sleep 0.5
  ip netns exec "$nsa" iperf3 -c "$1" -p 5201 -t "$secs" -J > "$tmp/iperf.json"
  wait "$srv" || true
  # bytes received, and both iperf3 ends' CPU (their rusage, as % of the test's wall time) in ticks
  python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["end"]; c=e["cpu_utilization_percent"]
print(int(e["sum_received"]["bytes"]), round((c["host_total"] + c["remote_total"]) / 100 * e["sum_received"]["seconds"] * float(sys.argv[2])))' "$tmp/iperf.json" "$(getconf CLK_TCK)"
}

start_wg() { # start_wg ns iface kind(go|java|baseline)
  if [ "$3" = go ]; then
    ip netns exec "$1" wireguard-go "$2"
  else
    local use_cp=$cp; [ "$3" = baseline ] && use_cp=$baseline_cp
    ip netns exec "$1" "$java" --enable-native-access=ALL-UNNAMED -cp "$use_cp" dev.wisp.cli.Wisp wireguard -f "$2" \
      >"$tmp/$2.log" 2>&1 &
  fi
  for _ in $(seq 600); do [ -S "/var/run/wireguard/$2.sock" ] && break; sleep 0.1; done
  [ -S "/var/run/wireguard/$2.sock" ] || { echo "$3 device $2 did not start" >&2; cat "$tmp/$2.log" >&2 || true; exit 1; }
}

pid_of() { # the WireGuard process of iface $1 (its command line ends with the name)
  pgrep -f "(wireguard-go|wireguard -f) $1\$" | head -1
}

wg_pair() { # wg_pair kind -> prints what measure prints
  setup_ns
  local ia="ba$sfx" ib="bb$sfx"
  start_wg "$nsa" "$ia" "$1"; start_wg "$nsb" "$ib" "$1"
  wg genkey > "$tmp/ka"; wg genkey > "$tmp/kb"
  ip netns exec "$nsa" wg set "$ia" private-key "$tmp/ka" listen-port 51820 peer "$(wg pubkey < "$tmp/kb")" \
    endpoint 192.168.250.2:51820 allowed-ips 10.250.0.2/32
  ip netns exec "$nsb" wg set "$ib" private-key "$tmp/kb" listen-port 51820 peer "$(wg pubkey < "$tmp/ka")" \
    endpoint 192.168.250.1:51820 allowed-ips 10.250.0.1/32
  ip -n "$nsa" addr add 10.250.0.1/24 dev "$ia"; ip -n "$nsb" addr add 10.250.0.2/24 dev "$ib"
  ip -n "$nsa" link set "$ia" up; ip -n "$nsb" link set "$ib" up
  ip netns exec "$nsa" ping -c 3 -i 0.2 -W 3 10.250.0.2 >/dev/null
  local pa pb
  pa=$(pid_of "$ia"); pb=$(pid_of "$ib")
  pids+=("$pa" "$pb")
  # Warm up (JIT), then measure.
  secs_saved=$secs; secs=3; run_iperf 10.250.0.2 >/dev/null; secs=$secs_saved
  measure 10.250.0.2 "$pa" "$pb"
  ip -n "$nsa" link del "$ia" 2>/dev/null || true; ip -n "$nsb" link del "$ib" 2>/dev/null || true
  for _ in $(seq 100); do [ -S "/var/run/wireguard/$ia.sock" ] || [ -S "/var/run/wireguard/$ib.sock" ] || break; sleep 0.1; done
}

hz=$(getconf CLK_TCK)
setup_ns
measure 192.168.250.2 > "$tmp/veth.out"
wg_pair go > "$tmp/go.out"
wg_pair java > "$tmp/java.out"
rows="veth go java"
if [ -n "$baseline_cp" ]; then
  wg_pair baseline > "$tmp/baseline.out"
  rows="$rows baseline"
fi

python3 - "$secs" "$hz" "$(nproc)" "$load_start" "$baseline_label" "$idle_secs" "$tmp" $rows > "$out" <<'PY'
import sys, datetime
secs, hz, cores, load0, blabel, idle = sys.argv[1:7]
tmp, rows = sys.argv[7], sys.argv[8:]
secs, hz, cores = float(secs), float(hz), int(cores)
m = {r: list(map(int, open("%s/%s.out" % (tmp, r)).read().split("\n")[-2].split())) for r in rows}  # its last line
label = {"veth": "veth baseline (no WireGuard)", "go": "wireguard-go <-> wireguard-go",
         "java": "wisp (Java) <-> wisp (Java)", "baseline": ("wisp " + blabel)[:34]}
gbps = lambda r: m[r][0] * 8 / secs / 1e9
per_gib = lambda ticks, r: (ticks / hz) / (m[r][0] / 2**30) if m[r][0] else float('nan')
wg = lambda r: per_gib(m[r][1], r)
tasks = lambda r: per_gib(m[r][1] + m[r][2] + m[r][3], r)
mach = lambda r: per_gib(m[r][4], r)
busy = lambda t, s: 100.0 * t / (cores * s * hz)
print("WireGuard throughput: iperf3, one TCP stream, %d s per run, namespace A -> B over a veth pair" % secs)
print("date: %s UTC; cores: %d (shared machine); MTU 1420 on the WireGuard interfaces" % (datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M'), cores))
print("load average at the start: %s, at the end: %s (other work shares these cores)" % (load0, open('/proc/loadavg').read().split()[0]))
print("CPU seconds per GiB received over the measured run, three ways:")
print("  WG procs  = utime+stime of both WireGuard processes (/proc/<pid>/stat)")
print("  tasks     = WG procs + both iperf3 ends (their rusage, from iperf3's report) + the ksoftirqd threads: the")
print("              kernel's TCP/UDP/TUN/veth work and offloads done in those tasks' context (tick accounting,")
print("              no separate IRQ time on this kernel) or in softirq threads")
print("  machine   = /proc/stat user+nice+system+irq+softirq of all CPUs; busy% = that over cores x wall seconds,")
print("              during the run / over %s s of no benchmark traffic just before it. When the machine is" % idle)
print("              saturated by other work (busy ~100% either way), this figure is cores x seconds / GiB, i.e.")
print("              it follows throughput and says nothing about the work: read the tasks figure then")
print()
print("%-32s %7s %9s %9s %9s %13s" % ("setup", "Gbit/s", "WG procs", "tasks", "machine", "busy% run/bg"))
for r in rows:
    w = "-" if r == "veth" else "%.2f" % wg(r)
    print("%-32s %7.2f %9s %9.2f %9.2f %8.0f/%-4.0f" % (label[r], gbps(r), w, tasks(r), mach(r), busy(m[r][4], m[r][6] / 1000.0), busy(m[r][5], float(idle))))
print()
def ratio(a, b, name):
    return ("ratio Java / %s: throughput %.2f; CPU per GiB: WG procs %.2f, tasks %.2f, machine %.2f (lower is better)"
            % (name, gbps(a) / gbps(b), wg(a) / wg(b), tasks(a) / tasks(b), mach(a) / mach(b)))
print(ratio("java", "go", "wireguard-go"))
if "baseline" in rows:
    print(ratio("java", "baseline", "wisp " + blabel))
print()
print("raw (bytes, WG ticks, iperf3 ticks, ksoftirqd ticks, machine ticks, background machine ticks over %s s, wall ms; %d ticks/s):" % (idle, hz))
for r in rows:
    print("  %s: %s" % (r, " ".join(map(str, m[r]))))
PY
cat "$out"
