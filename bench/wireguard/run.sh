#!/usr/bin/env bash
# WireGuard throughput benchmark: iperf3 single-stream TCP through
#   1. a plain veth pair (baseline),
#   2. wireguard-go <-> wireguard-go,
#   3. wisp wireguard (Java) <-> wisp wireguard (Java),
# each between two fresh network namespaces, in one run on this machine. Reports Gbit/s and the CPU
# seconds per GiB that the two WireGuard processes spent (from /proc/<pid>/stat), and the Java /
# wireguard-go ratios. Needs root, wireguard-go, wg, iperf3. Results: bench/results/wireguard.txt
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

java=$(ls -d /usr/lib/jvm/*/bin/java | sort -rV | while read -r j; do
  v=$("$j" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
  [ "${v%%.*}" -ge 25 ] 2>/dev/null && { echo "$j"; break; }; done)
[ -n "$java" ] || { echo "needs a JDK >= 25 under /usr/lib/jvm" >&2; exit 1; }
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

cpu_ticks() { # utime+stime of a pid and its threads, in clock ticks
  awk '{print $14+$15}' "/proc/$1/stat"
}

# iperf3 from A to B at address $1 for $secs; prints "bytes"
run_iperf() {
  ip netns exec "$nsb" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
  local srv=$!
  sleep 0.5
  ip netns exec "$nsa" iperf3 -c "$1" -p 5201 -t "$secs" -J > "$tmp/iperf.json"
  wait "$srv" || true
  python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["end"]["sum_received"]["bytes"]))' "$tmp/iperf.json"
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

wg_pair() { # wg_pair kind -> prints "bytes cpu_ticks"
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
  local c0 bytes c1
  c0=$(( $(cpu_ticks "$pa") + $(cpu_ticks "$pb") ))
  bytes=$(run_iperf 10.250.0.2)
  c1=$(( $(cpu_ticks "$pa") + $(cpu_ticks "$pb") ))
  echo "$bytes $((c1 - c0))"
  ip -n "$nsa" link del "$ia" 2>/dev/null || true; ip -n "$nsb" link del "$ib" 2>/dev/null || true
  for _ in $(seq 100); do [ -S "/var/run/wireguard/$ia.sock" ] || [ -S "/var/run/wireguard/$ib.sock" ] || break; sleep 0.1; done
}

hz=$(getconf CLK_TCK)
setup_ns
veth_bytes=$(run_iperf 192.168.250.2)
wg_pair go > "$tmp/go.out"
read -r go_bytes go_ticks < "$tmp/go.out"
wg_pair java > "$tmp/java.out"
read -r java_bytes java_ticks < "$tmp/java.out"
base_bytes=0; base_ticks=0
if [ -n "$baseline_cp" ]; then
  wg_pair baseline > "$tmp/base.out"
  read -r base_bytes base_ticks < "$tmp/base.out"
fi

python3 - "$secs" "$hz" "$veth_bytes" "$go_bytes" "$go_ticks" "$java_bytes" "$java_ticks" "$(nproc)" \
  "$load_start" "$base_bytes" "$base_ticks" "$baseline_label" > "$out" <<'PY'
import sys, datetime
secs, hz, veth, gob, got, jb, jt, cores, load0, bb, bt, blabel = sys.argv[1:]
bb, bt = int(bb), int(bt)
secs, hz = float(secs), float(hz)
veth, gob, got, jb, jt = map(int, (veth, gob, got, jb, jt))
gbps = lambda b: b * 8 / secs / 1e9
cpu_per_gib = lambda t, b: (t / hz) / (b / 2**30) if b else float('nan')
print("WireGuard throughput: iperf3, one TCP stream, %d s per run, namespace A -> B over a veth pair" % secs)
print("date: %s UTC; cores: %s (shared machine); MTU 1420 on the WireGuard interfaces" % (datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M'), cores))
print("CPU = user+system seconds of both WireGuard processes (/proc/<pid>/stat) during the measured run")
print("load average at the start: %s, at the end: %s (other work shares these cores)" % (load0, open('/proc/loadavg').read().split()[0]))
print()
print("%-34s %10s %14s" % ("setup", "Gbit/s", "CPU s per GiB"))
print("%-34s %10.2f %14s" % ("veth baseline (no WireGuard)", gbps(veth), "-"))
print("%-34s %10.2f %14.2f" % ("wireguard-go <-> wireguard-go", gbps(gob), cpu_per_gib(got, gob)))
print("%-34s %10.2f %14.2f" % ("wisp (Java) <-> wisp (Java)", gbps(jb), cpu_per_gib(jt, jb)))
if bb:
    print("%-34s %10.2f %14.2f" % (("wisp " + blabel)[:34], gbps(bb), cpu_per_gib(bt, bb)))
print()
print("ratio Java / wireguard-go: throughput %.2f, CPU per GiB %.2f (lower is better)" % (gbps(jb) / gbps(gob), cpu_per_gib(jt, jb) / cpu_per_gib(got, gob)))
if bb:
    print("ratio Java / wisp %s: throughput %.2f, CPU per GiB %.2f" % (blabel, gbps(jb) / gbps(bb), cpu_per_gib(jt, jb) / cpu_per_gib(bt, bb)))
PY
cat "$out"
