#!/usr/bin/env bash
# Pod-to-pod throughput across two nodes of a local mesh (issue 15), in one run, with the CPU it
# costs. Pod "client" on node 1, pod "server" on node 2; iperf3 between them through:
#   underlay      mesh wgb1 started with --no-wireguard: the pods' packets routed in clear
#   wireguard-go  the same mesh with a wireguard-go device on each node, configured with wg(8) and
#                 routed the way the agents route theirs (below)
#   mesh-wg       mesh wgb2 (WireGuard on, the default): the agents' Java devices
#   hbone         wgb1 again, the client iperf3 in the client pod's cgroup (captured): HBONE alone
#   hbone-in-wg   wgb2 (spec.wireguard.hboneOverWireGuard: true), captured: HBONE inside WireGuard
# The first three carry one TCP stream (iperf3) and UDP at a fixed offered rate (iperf3 -u -b RATE,
# 1380-byte datagrams: received rate and loss as the server counted them); the iperf3 processes of
# those runs are outside the pods' cgroups, so capture leaves them to routing. The HBONE pair is TCP
# only. Each row's CPU is measured over its run (bench/lib/cpu.sh, as bench/wireguard/run.sh):
# the whole machine's ticks (/proc/stat), and the processes that carry the path (both agents for
# the mesh rows, both wireguard-go processes for wireguard-go), per GiB received, with how busy the
# machine was during the run and over an idle interval before it.
#
# wireguard-go path, exactly: `wireguard-go -f wgbgoN` in node N's namespace, MTU 1440 (the agents'
# value on these 1500-byte veths), a fresh key each (`wg genkey`), `wg set` listen-port 51821, one
# peer: the other node's key, endpoint <other node address>:51821, allowed-ips <other node's pod
# CIDR>; routes as an agent installs them: rule preference 5200 "lookup 51820", and in table 51820
# "<other node's pod CIDR> dev wgbgoN". The agents of wgb1 run without WireGuard, so nothing else
# uses that table.
#
# Usage (root; iperf3, wireguard-go, wg, tcpdump):
#   bench/mesh-wireguard/run.sh [seconds-per-path]     default 10; writes bench/results/mesh-wireguard.txt
#   bench/mesh-wireguard/run.sh --quick                2 s per path, no idle intervals, no result file
#                                                      unless WISP_BENCH_OUT names one
# Environment: WISP_BENCH_UDP_RATE (default 300M: iperf3 -b), WISP_BENCH_OUT (result file),
# WISP_BENCH_PCAP_DIR (captures of the underlay bridge during the two HBONE rows, headers only:
# hbone.pcap, hbone-in-wg.pcap; what MeshWireGuardBenchE2eTest reads).
set -euo pipefail
umask 077
root=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
quick=0
if [ "${1:-}" = --quick ]; then quick=1; shift; fi
secs=${1:-$([ $quick = 1 ] && echo 2 || echo 10)}
idle_secs=${WISP_BENCH_IDLE_SECONDS:-$([ $quick = 1 ] && echo 0 || echo 5)}
rate=${WISP_BENCH_UDP_RATE:-300M}
out=${WISP_BENCH_OUT:-$([ $quick = 1 ] && echo "" || echo "$root/bench/results/mesh-wireguard.txt")}
pcaps=${WISP_BENCH_PCAP_DIR:-}
. "$root/bench/lib/cpu.sh"
[ "$(id -u)" = 0 ] || { echo "mesh-wireguard bench: needs root (network namespaces, eBPF)" >&2; exit 1; }
for c in iperf3 wireguard-go wg tcpdump; do
  command -v "$c" >/dev/null || { echo "mesh-wireguard bench: needs $c" >&2; exit 1; }
done
tmp=$(mktemp -d /tmp/wisp-meshwg.XXXXXX)
load_start=$(cut -d' ' -f1 /proc/loadavg)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
cg=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)/wisp
mesh_pid=
cluster=
wg_pids=()

note() { echo "$(date -u +%T) mesh-wireguard: $*" >&2; }

stop_mesh() {
  for p in "${wg_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wg_pids=()
  if [ -n "$mesh_pid" ]; then
    kill "$mesh_pid" 2>/dev/null || true
    for _ in $(seq 600); do kill -0 "$mesh_pid" 2>/dev/null || break; sleep 0.1; done
    note "mesh $cluster stopped"
    mesh_pid=
  fi
}
trap 'stop_mesh; rm -rf "$tmp"' EXIT

# start_mesh NAME BASE WIREGUARD(on|off) [MeshConfig spec.wireguard YAML]
start_mesh() {
  cluster=$1
  local base=$2 flag=--wireguard
  [ "$3" = off ] && flag=--no-wireguard
  mkdir -p "$tmp/$cluster/config"
  printf 'pods:\n- {name: client, node: node1}\n- {name: server, node: node2}\n' > "$tmp/$cluster/pods.yaml"
  if [ -n "${4:-}" ]; then
    printf 'apiVersion: wisp.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\nspec: {wireguard: %s}\n' \
      "$4" > "$tmp/$cluster/config/meshconfig.yaml"
  fi
  "$root/bin/wisp" cluster up --name "$cluster" --base "$base" --pods "$tmp/$cluster/pods.yaml" $flag \
    --config-dir "$tmp/$cluster/config" --work-dir "$tmp/$cluster/work" > "$tmp/$cluster/up.log" 2>&1 &
  mesh_pid=$!
  note "starting mesh $cluster ($3)"
  for _ in $(seq 1800); do
    grep -q "is up" "$tmp/$cluster/up.log" && break
    kill -0 "$mesh_pid" 2>/dev/null || { cat "$tmp/$cluster/up.log" >&2; exit 1; }
    sleep 0.1
  done
  grep -q "is up" "$tmp/$cluster/up.log" || { echo "mesh $cluster did not come up in 180 s" >&2; exit 1; }
  client_ns=wisp-$cluster-p-client; server_ns=wisp-$cluster-p-server
  server_ip=10.$((base + 1)).1.10
  node_ns=(wisp-$cluster-node1 wisp-$cluster-node2)
  node_ip=(10.$base.0.11 10.$base.0.12)
  pod_cidr=(10.$((base + 1)).0.0/24 10.$((base + 1)).1.0/24)
  note "mesh $cluster is up"
  # Pods reach each other (with WireGuard: once both keys are registered); 60 s at most.
  for _ in $(seq 60); do
    ip netns exec "$client_ns" ping -c 1 -W 1 "$server_ip" >/dev/null 2>&1 && return 0
  done
  echo "mesh $cluster: client pod cannot reach $server_ip" >&2; exit 1
}

iperf_server() { # a one-shot iperf3 server in the server pod, listening once this returns
  ip netns exec "$server_ns" iperf3 -s -1 -p 5201 > /dev/null 2>&1 &
  srv_pid=$!
  for _ in $(seq 100); do
    ip netns exec "$server_ns" ss -Hltn 'sport = :5201' | grep -q . && return 0; sleep 0.05
  done
  echo "iperf3 server did not listen" >&2; exit 1
}

# iperf_client captured(0|1) tcp|udp SECONDS > json
iperf_client() {
  local args=(-c "$server_ip" -p 5201 -t "$3" -J)
  [ "$2" = udp ] && args+=(-u -b "$rate" -l 1380)
  if [ "$1" = 1 ]; then
    # In the client pod's cgroup: eBPF capture hands its connections to node 1's agent (HBONE).
    sh -c 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$@"' "$cg/$cluster/pods/client" "$client_ns" \
      iperf3 "${args[@]}"
  else
    ip netns exec "$client_ns" iperf3 "${args[@]}"
  fi
}

# path ROW captured tcp|udp TICKS-COMMAND...: one measured run; appends
# "row bytes offered_bytes lost_percent proc_ticks machine_ticks background_ticks wall_ms" to rows
path() {
  local row=$1 captured=$2 proto=$3; shift 3
  note "$row"
  iperf_server; iperf_client "$captured" "$proto" 1 > /dev/null   # warm-up (JIT, peers, HBONE pool)
  wait "$srv_pid" || true
  local bg c0 c1 m0 m1 t0 t1
  bg=$(background_ticks)
  iperf_server
  c0=$("$@"); m0=$(machine_ticks); t0=$(date +%s%N)
  iperf_client "$captured" "$proto" "$secs" > "$tmp/$row.json"
  m1=$(machine_ticks); t1=$(date +%s%N); c1=$("$@")
  python3 - "$tmp/$row.json" "$proto" > "$tmp/$row.res" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))["end"]
if sys.argv[2] == "udp":
    s = e["sum"]  # the client's report with the server's counts: packets sent, lost at the server
    print(int(s["bytes"] * (1 - s["lost_percent"] / 100.0)), s["bytes"], s["lost_percent"])
else:
    print(e["sum_received"]["bytes"], e["sum_sent"]["bytes"], 0)
PY
  echo "$row $(cat "$tmp/$row.res") $((c1 - c0)) $((m1 - m0)) $bg $(( (t1 - t0) / 1000000 ))" >> "$tmp/rows"
  wait "$srv_pid" || true
}

agents_ticks() { cgroup_ticks "$cg/$cluster/nodes"; }
wggo_ticks() { local t=0 p; for p in "${wg_pids[@]}"; do t=$((t + $(cpu_ticks "$p"))); done; echo "$t"; }

# capture NAME: headers of the underlay bridge's IPv4 packets into $pcaps/NAME.pcap while the next
# path runs (stop_capture ends it)
capture() {
  [ -n "$pcaps" ] || return 0
  ip netns exec "wisp-$cluster-ul" tcpdump -i br0 -n -s 96 -U -w "$pcaps/$1.pcap" ip 2> "$tmp/$1.tcpdump" &
  cap_pid=$!
  for _ in $(seq 200); do grep -q "listening on" "$tmp/$1.tcpdump" && return 0; sleep 0.05; done
  echo "tcpdump did not start" >&2; exit 1
}
stop_capture() {
  [ -n "$pcaps" ] || return 0
  kill -INT "$cap_pid"; wait "$cap_pid" 2>/dev/null || true
}

wireguard_go_up() {
  local i o
  for i in 0 1; do
    ip netns exec "${node_ns[$i]}" wireguard-go -f "wgbgo$i" > "$tmp/wgbgo$i.log" 2>&1 &
    wg_pids+=($!)
    wg genkey > "$tmp/wgbgo$i.key"
  done
  for i in 0 1; do
    for _ in $(seq 100); do [ -S "/var/run/wireguard/wgbgo$i.sock" ] && break; sleep 0.1; done
  done
  for i in 0 1; do
    o=$((1 - i))
    ip netns exec "${node_ns[$i]}" wg set "wgbgo$i" private-key "$tmp/wgbgo$i.key" listen-port 51821 \
      peer "$(wg pubkey < "$tmp/wgbgo$o.key")" endpoint "${node_ip[$o]}:51821" allowed-ips "${pod_cidr[$o]}"
    ip -n "${node_ns[$i]}" link set "wgbgo$i" mtu 1440 up
    ip -n "${node_ns[$i]}" rule add pref 5200 lookup 51820
    ip -n "${node_ns[$i]}" route add "${pod_cidr[$o]}" dev "wgbgo$i" table 51820
  done
  ip netns exec "$client_ns" ping -c 3 -i 0.2 -W 3 "$server_ip" > /dev/null
}

wireguard_go_down() {
  local i
  for i in 0 1; do
    ip -n "${node_ns[$i]}" rule del pref 5200 lookup 51820 2>/dev/null || true
    ip -n "${node_ns[$i]}" link del "wgbgo$i" 2>/dev/null || true
  done
  for p in "${wg_pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  wg_pids=()
}

: > "$tmp/rows"
start_mesh wgb1 172 off
path underlay-tcp 0 tcp agents_ticks
path underlay-udp 0 udp agents_ticks
capture hbone
path hbone-tcp 1 tcp agents_ticks
stop_capture
wireguard_go_up
path wggo-tcp 0 tcp wggo_ticks
path wggo-udp 0 udp wggo_ticks
wireguard_go_down
stop_mesh
start_mesh wgb2 174 on '{hboneOverWireGuard: true}'
path meshwg-tcp 0 tcp agents_ticks
path meshwg-udp 0 udp agents_ticks
capture hbone-in-wg
path hbonewg-tcp 1 tcp agents_ticks
stop_capture
stop_mesh

report=$tmp/report.txt
python3 - "$secs" "$(getconf CLK_TCK)" "$(nproc)" "$load_start" "$idle_secs" "$rate" "$commit" "$tmp/rows" \
  > "$report" <<'PY'
import sys, datetime
secs, hz, cores, load0, idle, rate, commit, rows = sys.argv[1:9]
secs, hz, cores, idle = float(secs), float(hz), int(cores), float(idle)
m = {}
for line in open(rows):
    f = line.split()
    m[f[0]] = [int(f[1]), int(f[2]), float(f[3])] + [int(x) for x in f[4:]]
label = {"underlay": "underlay (WireGuard off)", "wggo": "wireguard-go devices", "meshwg": "mesh WireGuard (Java)",
         "hbone": "HBONE alone", "hbonewg": "HBONE inside WireGuard"}
procs = {"underlay": "agents", "wggo": "wireguard-go", "meshwg": "agents", "hbone": "agents", "hbonewg": "agents"}
gbps = lambda r: m[r][0] * 8 / (m[r][6] / 1000.0) / 1e9
per_gib = lambda t, r: (t / hz) / (m[r][0] / 2**30) if m[r][0] else float("nan")
busy = lambda t, s: 100.0 * t / (cores * s * hz) if s else float("nan")
print("Mesh WireGuard throughput (bench/mesh-wireguard/run.sh): pod client on node 1 -> pod server on node 2")
print("date: %s UTC; commit %s; cores: %d (shared machine); %d s per path; UDP offered %sbit/s in 1380-byte datagrams"
      % (datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"), commit, cores, secs, rate))
print("load average at the start: %s, at the end: %s (other work shares these cores)" % (load0, open("/proc/loadavg").read().split()[0]))
print("Gbit/s = bytes received over the run's wall time. CPU s/GiB received: procs = utime+stime of what carries")
print("the path (agents: every process in both nodes' cgroups; wireguard-go: both devices), machine = /proc/stat")
print("user+nice+system+irq+softirq of all CPUs; busy%% = machine over cores x seconds, during the run / over %.0f s" % idle)
print("with no benchmark traffic just before it. On a saturated machine (busy ~100% both) machine s/GiB is only")
print("cores x seconds / GiB: it follows throughput. iperf3's own CPU is in machine, not in procs.")
print()
print("%-26s %-5s %7s %8s %6s %-12s %8s %8s %13s" % ("path", "proto", "Gbit/s", "offered", "loss%", "procs", "procs/GiB", "mach/GiB", "busy% run/bg"))
for key in m:
    r, proto = key.rsplit("-", 1)
    off = "%.3f" % (m[key][1] * 8 / (m[key][6] / 1000.0) / 1e9) if proto == "udp" else "-"
    loss = "%.1f" % m[key][2] if proto == "udp" else "-"
    print("%-26s %-5s %7.3f %8s %6s %-12s %8.2f %8.2f %8.0f/%-4.0f" % (label[r], proto, gbps(key), off, loss, procs[r],
          per_gib(m[key][3], key), per_gib(m[key][4], key), busy(m[key][4], m[key][6] / 1000.0), busy(m[key][5], idle)))
print()
def ratio(a, b, name):
    if a in m and b in m and m[b][0] and m[a][0]:
        print("%-44s throughput %.2f; machine CPU per GiB %.2f" % (name, gbps(a) / gbps(b), per_gib(m[a][4], a) / per_gib(m[b][4], b)))
print("ratios from this run (throughput: higher is better; CPU per GiB: lower is better):")
ratio("meshwg-tcp", "underlay-tcp", "TCP  mesh WireGuard / underlay")
ratio("meshwg-tcp", "wggo-tcp", "TCP  mesh WireGuard / wireguard-go")
ratio("meshwg-udp", "underlay-udp", "UDP  mesh WireGuard / underlay")
ratio("meshwg-udp", "wggo-udp", "UDP  mesh WireGuard / wireguard-go")
ratio("hbonewg-tcp", "hbone-tcp", "TCP  HBONE inside WireGuard / HBONE alone")
print()
print("raw (row: bytes received, bytes offered, loss %%, procs ticks, machine ticks, background ticks over %.0f s, wall ms; %d ticks/s):" % (idle, hz))
for key in m:
    print("  %s: %s" % (key, " ".join(str(x) for x in m[key])))
PY
[ -n "$out" ] && cp "$report" "$out"
cat "$report"
