#!/usr/bin/env bash
# HBONE benchmark: the same client and workload, three paths, one run on this machine:
#   direct   client (ns1) -> echo/sink (ns2), plain TCP over the veth
#   wisp     client -> SOCKS5 -> wisp node agent 1 -> HBONE (TLS 1.3 mTLS, HTTP/2) -> agent 2 -> workload
#   haproxy  client -> haproxy 1 (TCP) -> TLS 1.3 mTLS -> haproxy 2 -> workload (one TLS connection per TCP connection)
# Each proxy runs with one worker thread. Figures: single-stream throughput, latency at a fixed
# request rate (coordinated omission corrected), new connections per second, and CPU seconds of the
# two proxies (utime+stime from /proc/<pid>/stat) per GiB, per 1,000 requests and per connection;
# every phase reports its failures.
# New connections compare equal work: haproxy's TCP mode cannot pool, so Wisp's figure comes from a
# second client-side agent whose pool opens one TLS connection per stream (--pool-streams-per-connection 1
# --pool-idle-timeout PT0S), and the production pool's figure (one TLS connection for all) is shown
# beside it, labelled. One load generator JVM (LoadGen.java repl) runs every phase.
# Path "loss" (PATHS=loss): HBONE over HTTP/2 against HBONE over HTTP/3 on a lossy link, each with 10
# streams at once on one pooled connection (a third client-side agent dials with --hbone h3): per-stream
# throughput, and the p50/p99 of 10 connections at 100 req/s each; an nftables rule in each namespace
# drops LOSS % of the packets it sends on the veth (numgen random: each way, TCP and UDP alike), and
# the same phases run first without loss as the control. Writes LOSS_OUT (bench/results/hbone-loss.txt).
# Usage: sudo bench/hbone/run.sh   (writes bench/results/hbone.txt)
# Quick run: BYTES=268435456 WARM_BYTES=536870912 SECONDS_LAT=10 WARM_SECONDS=10 SECONDS_CONN=10 OUT=/tmp/h.txt
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
[ "$(id -u)" = 0 ] || { echo "run as root (network namespaces)" >&2; exit 1; }
for c in ip haproxy openssl curl nft; do command -v $c >/dev/null || { echo "missing $c: scripts/install-deps.sh installs it" >&2; exit 1; }; done
JAVA=${WISP_JAVA:-$(ls -d /usr/lib/jvm/*25* 2>/dev/null | head -1)/bin/java}
BYTES=${BYTES:-1073741824}
RATE=${RATE:-1000}
SECONDS_LAT=${SECONDS_LAT:-20}
SECONDS_CONN=${SECONDS_CONN:-10}
WARM_SECONDS=${WARM_SECONDS:-20}
WARM_BYTES=${WARM_BYTES:-4294967296}
# Warm-up of the new-connection phases: a fresh handshake's Java path (TLS set-up, chain verification,
# a new HTTP/2 connection) took ~2,000 handshakes to reach its steady cost (24 -> 11 -> 8 -> 4 -> 3 ms of
# CPU per connection per agent, 15 s runs in a row, issue 12's profile); 20 s covered a few hundred.
WARM_CONN_SECONDS=${WARM_CONN_SECONDS:-60}
# PATHS: a subset of "direct wisp haproxy" for quick iterations (the committed result runs all three).
PATHS=${PATHS:-direct wisp haproxy}
# WISP_JOPTS: extra JVM options for both agents (e.g. -XX:StartFlightRecording=...).
WISP_JOPTS=${WISP_JOPTS:-}
# The agents' JVM options are bin/node-jvm.options (as bin/wisp runs them); WISP_GC replaces its
# collector (e.g. -XX:+UseZGC) to compare collectors; NODE_JVM_OPTIONS=- runs the JVM's defaults.
NODE_JVM_OPTIONS=${NODE_JVM_OPTIONS:-bin/node-jvm.options}
WISP_GC=${WISP_GC:-}
# Connections held open for the memory figure (through the pooled client agent).
HOLD_CONNS=${HOLD_CONNS:-10000}
OUT=${OUT:-bench/results/hbone.txt}
# The loss path: percent of packets dropped each way, streams, bytes per stream.
LOSS=${LOSS:-2}
LOSS_STREAMS=${LOSS_STREAMS:-10}
LOSS_BYTES=${LOSS_BYTES:-67108864}
LOSS_OUT=${LOSS_OUT:-bench/results/hbone-loss.txt}
TMP=$(mktemp -d /tmp/wisp-bench.XXXXXX)
S=$(printf '%04x' $((RANDOM)))
NS1=wb1-$S NS2=wb2-$S
PIDS=()
cleanup() {
  local rc=$?
  if [ $rc != 0 ]; then
    for f in server n1 n2 h1 h2; do echo "--- $f.log (tail)" >&2; tail -5 $TMP/$f.log >&2 2>/dev/null || true; done
  fi
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for i in $(seq 50); do alive=0; for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done; [ $alive = 0 ] && break; sleep 0.1; done
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  ip netns del "$NS1" 2>/dev/null || true
  ip netns del "$NS2" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

# WISP_JAR: another build's launcher jar (its lib/ beside it), e.g. a copy of the previous commit's for an A/B run.
if [ -z "${WISP_JAR:-}" ] && { [ ! -f cli/target/wisp-cli.jar ] || [ -n "$(find ztunnel-node/src cli/src spiffe/src -newer cli/target/wisp-cli.jar -name '*.java' | head -1)" ]; }; then
  ./mvnw -q -o -pl cli -am package -DskipTests -Dspotless.check.skip=true
fi
CP=${WISP_JAR:-cli/target/wisp-cli.jar}
# The load generator (a single-file program) uses test-support's EchoSinkLoad: its classes on the class path.
LG_CP=test-support/target/classes
if [ ! -f $LG_CP/dev/wisp/testing/EchoSinkLoad.class ] || [ test-support/src/main/java/dev/wisp/testing/EchoSinkLoad.java -nt $LG_CP/dev/wisp/testing/EchoSinkLoad.class ]; then
  ./mvnw -q -o -pl test-support -am compile -Dspotless.check.skip=true
fi
LOADGEN="$JAVA -cp $LG_CP bench/hbone/LoadGen.java"

ip netns add $NS1; ip netns add $NS2
ip link add va$S netns $NS1 type veth peer name vb$S netns $NS2
for spec in "$NS1 va$S 10.77.0.1 10.77.1.10 10.77.2.0/24 10.77.0.2" "$NS2 vb$S 10.77.0.2 10.77.2.10 10.77.1.0/24 10.77.0.1"; do
  set -- $spec
  ip -n $1 link set lo up; ip -n $1 link set $2 up
  ip -n $1 addr add $3/24 dev $2; ip -n $1 addr add $4/32 dev $2
  ip -n $1 route add $5 via $6
done

cat > $TMP/state.yaml <<'YAML'
resources:
  - name: n1
    node: {name: n1, addresses: [10.77.0.1]}
  - name: n2
    node: {name: n2, addresses: [10.77.0.2]}
  - name: client
    workload: {uid: client, name: client, namespace: default, serviceAccount: client, trustDomain: cluster.local,
               node: n1, addresses: [10.77.1.10], tunnelProtocol: TUNNEL_HBONE, workloadName: client}
  - name: server
    workload: {uid: server, name: server, namespace: default, serviceAccount: server, trustDomain: cluster.local,
               node: n2, addresses: [10.77.2.10], tunnelProtocol: TUNNEL_HBONE, workloadName: server}
YAML

# haproxy certificates: ECDSA P-256, like the SVIDs.
openssl ecparam -name prime256v1 -genkey -noout -out $TMP/ca.key 2>/dev/null
openssl req -x509 -new -key $TMP/ca.key -subj /CN=bench-ca -days 2 -out $TMP/ca.pem 2>/dev/null
for who in client server; do
  openssl ecparam -name prime256v1 -genkey -noout -out $TMP/$who.key 2>/dev/null
  openssl req -new -key $TMP/$who.key -subj /CN=$who -out $TMP/$who.csr 2>/dev/null
  printf 'subjectAltName=URI:spiffe://cluster.local/ns/default/sa/%s\n' $who > $TMP/$who.ext
  openssl x509 -req -in $TMP/$who.csr -CA $TMP/ca.pem -CAkey $TMP/ca.key -CAcreateserial -days 2 -extfile $TMP/$who.ext -out $TMP/$who.crt 2>/dev/null
  cat $TMP/$who.crt $TMP/$who.key > $TMP/$who.pem; chmod 600 $TMP/$who.pem $TMP/$who.key
done
# One haproxy process per side, each carrying the echo and the sink port. Every connection makes a
# full mTLS handshake, as Wisp's fresh-connection agent does: no TLS session reuse towards the server
# (no-ssl-reuse) and no tickets on the TLS listener.
haproxy_cfg() { # file, then "frontend-bind|backend-server" pairs
  local file=$1; shift
  printf '%s\n' global '  nbthread 1' '  maxconn 4000' defaults '  mode tcp' '  timeout connect 5s' \
    '  timeout client 120s' '  timeout server 120s' > "$file"
  local i=0
  for pair in "$@"; do
    i=$((i + 1))
    printf 'frontend f%s\n  bind %s\n  default_backend b%s\nbackend b%s\n  server s %s\n' \
      $i "${pair%%|*}" $i $i "${pair#*|}" >> "$file"
  done
}
TLS="ca-file $TMP/ca.pem verify required ssl-min-ver TLSv1.3 ciphersuites TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"
haproxy_cfg $TMP/h1.cfg "127.0.0.1:20000|10.77.0.2:20443 ssl crt $TMP/client.pem $TLS no-ssl-reuse" \
  "127.0.0.1:20001|10.77.0.2:20444 ssl crt $TMP/client.pem $TLS no-ssl-reuse"
haproxy_cfg $TMP/h2.cfg "10.77.0.2:20443 ssl crt $TMP/server.pem $TLS no-tls-tickets|10.77.2.10:9000" \
  "10.77.0.2:20444 ssl crt $TMP/server.pem $TLS no-tls-tickets|10.77.2.10:9001"

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
LOADS="start $LOAD"
NETTY=$(unzip -p $CP META-INF/MANIFEST.MF | tr -d '\r\n ' | grep -o 'netty-transport-[0-9][^j]*Final' | head -1 | sed 's/netty-transport-//')
NODE_OPTS=""
if [ "$NODE_JVM_OPTIONS" != - ]; then # options, and NAME=value lines for the agents' environment (the caller's value wins)
  NODE_OPTS=$(grep -v '^[[:space:]]*\(#\|$\)' "$NODE_JVM_OPTIONS" | grep -v '^[A-Z_][A-Z0-9_]*=' | tr '\n' ' ')
  for kv in $(grep '^[A-Z_][A-Z0-9_]*=' "$NODE_JVM_OPTIONS"); do n=${kv%%=*}; [ -n "${!n:-}" ] || export "$kv"; done
fi
[ -z "$WISP_GC" ] || NODE_OPTS="$(echo "$NODE_OPTS" | tr ' ' '\n' | grep -v -- '-XX:+Use.*GC$' | tr '\n' ' ') $WISP_GC"
# GC pauses of every agent, for the longest pause during the latency phase.
JOPTS="--enable-native-access=ALL-UNNAMED $NODE_OPTS -Xlog:gc,gc+phases:file=$TMP/gc-%p.log $WISP_JOPTS"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" # the held connections: a socket each in the load generator, the agents and the workload
declare -A R
await_ready() { # log name
  for i in $(seq 600); do grep -q "ready" $TMP/$1.log 2>/dev/null && return; sleep 0.2; done
  echo "$1 did not start:"; cat $TMP/$1.log; exit 1
}
ip netns exec $NS2 $LOADGEN server 10.77.2.10:9000 10.77.2.10:9001 > $TMP/server.log 2>&1 &
PIDS+=($!)
if [ -n "${AOT:-}" ]; then # the agents start from an AOT class cache, trained as `bin/wisp node-aot` trains one
  # (a standalone agent on loopback until ready, the JVM writing the cache at exit), with these agents' options
  echo 'resources: []' > $TMP/aot-state.yaml
  t0=$(date +%s%N)
  ip netns exec $NS1 $JAVA $JOPTS -XX:AOTCacheOutput=$TMP/agent.aot -cp $CP dev.wisp.cli.Wisp node --node aot-training \
    --state $TMP/aot-state.yaml --ca-dir $TMP/aot-ca --bind 127.0.0.1 --ports 0,0,0,0,0,0,0 --workers 1 --drain-timeout PT1S > $TMP/aot.log 2>&1 &
  pid=$!
  await_ready aot; kill -TERM $pid; wait $pid || true
  [ -s $TMP/agent.aot ] || { echo "AOT training wrote no cache:"; tail -20 $TMP/aot.log; exit 1; }
  R[wisp,aot]="trained_ms=$(( ($(date +%s%N) - t0) / 1000000 )) bytes=$(stat -c %s $TMP/agent.aot)"
  JOPTS="$JOPTS -XX:AOTCache=$TMP/agent.aot"
fi
NODE="$JAVA $JOPTS -cp $CP dev.wisp.cli.Wisp node --state $TMP/state.yaml --ca-dir $TMP/ca --workers 1"
t0=$(date +%s%N)
ip netns exec $NS1 $NODE --node n1 --socks5-workload client --bind 10.77.0.1 > $TMP/n1.log 2>&1 &
W1=$!; PIDS+=($W1)
await_ready n1 # the CA directory is created by the first agent
R[wisp,readyms]=$(( ($(date +%s%N) - t0) / 1000000 )) # process start to "ready" (0.2 s polls), the client agent
# A second client-side agent for the same node, on other ports, whose pool makes one TLS connection
# per stream (a handshake per connection, the work haproxy does); n1 keeps the production pool. It
# listens on the node's other address: an agent dials its peers on its own HBONE port (15008).
ip netns exec $NS1 $NODE --node n1 --socks5-workload client --bind 10.77.1.10 --ports 15001,15006,15008,15180,15100,15020,15021 \
  --pool-streams-per-connection 1 --pool-idle-timeout PT0S > $TMP/n1f.log 2>&1 &
W1F=$!; PIDS+=($W1F)
if [[ " $PATHS " == *" loss "* ]]; then # the HTTP/3 client-side agent, on a third address of the node
  ip -n $NS1 addr add 10.77.0.3/24 dev va$S
  ip netns exec $NS1 $NODE --node n1 --socks5-workload client --bind 10.77.0.3 --hbone h3 \
    --ports 15001,15006,15008,15280,15200,15020,15021 > $TMP/n1q.log 2>&1 &
  W1Q=$!; PIDS+=($W1Q)
fi
ip netns exec $NS2 $NODE --node n2 > $TMP/n2.log 2>&1 &
W2=$!; PIDS+=($W2)
ip netns exec $NS1 haproxy -f $TMP/h1.cfg -db > $TMP/h1.log 2>&1 &
H1=$!; PIDS+=($H1)
ip netns exec $NS2 haproxy -f $TMP/h2.cfg -db > $TMP/h2.log 2>&1 &
H2=$!; PIDS+=($H2)
for f in n1f n2 server; do await_ready $f; done
[ -z "${W1Q:-}" ] || await_ready n1q

# One load generator JVM for every phase of every path, warmed by the first path's warm-up.
coproc LG { exec ip netns exec $NS1 $LOADGEN repl 2> $TMP/lg.log; }
PIDS+=($LG_PID)
read -r -t 120 -u "${LG[0]}" first && [ "$first" = ready ] || { echo "load generator did not start:"; cat $TMP/lg.log; exit 1; }
lg() { # one phase: a command line to the load generator, its result line back (10 min at most)
  echo "$*" >&"${LG[1]}"
  local line; read -r -t 600 -u "${LG[0]}" line || { echo "load generator gave no answer to: $*" >&2; exit 1; }
  echo "$line"
}
cpu() { # utime+stime of the given pids, in seconds
  local t=0
  for p in "$@"; do
    set -- $(sed 's/^.*) //' /proc/$p/stat); t=$((t + ${12} + ${13}))
  done
  echo "scale=3; $t / $(getconf CLK_TCK)" | bc
}
opened() { # TLS connections the client agent with admin port $1 has opened
  ip netns exec $NS1 curl -sf http://127.0.0.1:$1/config_dump | grep -o '"hbone_pool_connections_opened": [0-9]*' | grep -o '[0-9]*$' || echo 0
}
val() { echo "$1" | tr ' ' '\n' | grep "^$2=" | cut -d= -f2 || true; }
rss() { # resident MiB of each pid, space separated
  for p in "$@"; do awk '/^VmRSS:/ { printf "%.1f ", $2 / 1024 }' /proc/$p/status; done
}
memdetail() { # per pid: anonymous resident MiB (not shared with other JVMs on the node), threads
  for p in "$@"; do awk '/^RssAnon:/ { a = $2 / 1024 } /^Threads:/ { t = $2 } END { printf "anon=%.1f,threads=%d ", a, t }' /proc/$p/status; done
}
gclines() { cat $TMP/gc-$1.log 2>/dev/null | wc -l || true; } # 0 for a path with no agent (direct, haproxy): no GC log
gclife() { # agent $1's whole life: longest pause (ms), pauses over 1 ms, and its full collections by cause
  grep 'Pause' $TMP/gc-$1.log 2>/dev/null | awk '
    { ms = $NF; sub(/ms$/, "", ms); if (ms + 0 > m) m = ms + 0; if (ms + 0 > 1) n++ }
    /Pause Full/ { c = $0; sub(/.*Pause Full \(/, "", c); sub(/\).*/, "", c); gsub(/ /, "_", c); full[c]++ }
    END { printf "%s/%d", m + 0, n; for (c in full) printf ",full:%s=%d", c, full[c]; }' || true
}
maxpause() { # longest pause (ms) in agent $1's GC log after line $2, and how many pauses over 1 ms
  tail -n +$(($2 + 1)) $TMP/gc-$1.log 2>/dev/null | grep 'Pause' | grep -o '[0-9.]*ms$' | tr -d ms |
    awk 'BEGIN { m = 0; n = 0 } { if ($1 > m) m = $1; if ($1 > 1) n++ } END { printf "%s/%d", m, n }' || true
}
# (|| true: with pipefail, a phase in which a collector made no pause, grep matching nothing, ended the
# whole run without a message; that is what stopped the Shenandoah runs of the previous session.)
kernel_drops() { # listen-queue overflows and drops, and resets sent, in both namespaces (nstat counters)
  for ns in $NS1 $NS2; do ip netns exec $ns nstat -saz TcpExtListenOverflows TcpExtListenDrops TcpOutRsts TcpExtTCPAbortOnMemory 2>/dev/null |
    awk '/^Tcp/ { printf "%s=%s,", $1, $2 }'; printf ' '; done
}
gcduring() { # agent $1's collections in its GC log after line $2: cycles, allocation stalls, the last heap figure
  tail -n +$(($2 + 1)) $TMP/gc-$1.log 2>/dev/null | awk '
    match($0, /GC\([0-9]+\)/) { id[substr($0, RSTART, RLENGTH)] = 1 }
    /Allocation Stall/ { st++ } { for (i = 1; i <= NF; i++) if ($i ~ /M.*->.*M/) h = $i }
    END { n = 0; for (k in id) n++; printf "cycles=%d,stalls=%d,heap=%s", n, st, h }' || true
}
fds() { for p in "$@"; do printf '%s ' "$(ls /proc/$p/fd 2>/dev/null | wc -l)"; done; }
# Warm-up, same for every path, of every phase measured on it: the agents are JVMs, and a cold JIT
# made the first GiB cost twice the CPU of the steady state and held new connections to ~60/s. A
# node agent runs for days; the figures below are steady state.
measure_stream() { # name, echo target, sink target, socks args, pids... (throughput, latency)
  local name=$1 echo=$2 sink=$3 socks=$4; shift 4
  lg latency $echo $RATE $WARM_SECONDS 1024 $socks > /dev/null
  lg throughput $sink $WARM_BYTES $socks > /dev/null
  local c0 c1
  c0=$(cpu "$@"); R[$name,thr]=$(lg throughput $sink $BYTES $socks); c1=$(cpu "$@")
  R[$name,thrcpu]=$(echo "scale=3; ($c1 - $c0) / ($BYTES / 1073741824)" | bc)
  local g0=() p; for p in "$@"; do g0+=($(gclines $p)); done
  c0=$(cpu "$@"); R[$name,lat]=$(lg latency $echo $RATE $SECONDS_LAT 1024 $socks); c1=$(cpu "$@")
  R[$name,latcpu]=$(echo "scale=3; ($c1 - $c0) * 1000 / ($RATE * $SECONDS_LAT)" | bc)
  R[$name,rsslat]=$(rss "$@"); R[$name,memlat]=$(memdetail "$@")
  if [ $name = wisp ] && [ -n "${NMT_OUT:-}" ]; then # where the client agent's memory is, after the latency phase
    # (start the agents with WISP_JOPTS=-XX:NativeMemoryTracking=summary for the JVM's own accounting)
    { echo "== client agent $1 after the latency phase: /proc/$1/smaps_rollup"; cat /proc/$1/smaps_rollup
      echo "== mappings by kind (Rss kB): /proc/$1/smaps"
      awk '/^[0-9a-f]+-[0-9a-f]+ / { n = ($6 == "" ? "[anon]" : $6); sub(/.*\//, "", n) } /^Rss:/ { r[n] += $2 }
        END { for (k in r) if (r[k] >= 256) printf "%8d %s\n", r[k], k }' /proc/$1/smaps | sort -rn
      echo "== jcmd VM.native_memory summary"; "$(dirname "$JAVA")/jcmd" $1 VM.native_memory summary 2>&1 || true
      echo "== jcmd GC.heap_info"; "$(dirname "$JAVA")/jcmd" $1 GC.heap_info 2>&1 || true
      echo "== jcmd VM.metaspace (summary)"; "$(dirname "$JAVA")/jcmd" $1 VM.metaspace 2>&1 | head -40 || true
    } > "$NMT_OUT"
  fi
  if [ $name = wisp ]; then # the client agent's threads by name (digits folded), for the memory table
    R[$name,threadnames]=$(cat /proc/$1/task/*/comm | sed 's/[0-9]\+/N/g; s/ /_/g' | sort | uniq -c | awk '{ printf "%s%s", sep, $2 "x" $1; sep = "," }')
    local i=0; R[$name,gc]=""; for p in "$@"; do R[$name,gc]="${R[$name,gc]}$(maxpause $p ${g0[$i]}) "; i=$((i + 1)); done
  fi
}
measure_conn() { # name, echo target, socks args, admin port of the client agent (or -), pids... (new connections)
  local name=$1 echo=$2 socks=$3 admin=$4; shift 4
  lg connrate $echo $WARM_CONN_SECONDS 8 $socks > /dev/null
  local c0 c1 o0=0 o1=0
  [ "$admin" = - ] || o0=$(opened $admin)
  c0=$(cpu "$@"); R[$name,conn]=$(lg connrate $echo $SECONDS_CONN 8 $socks); c1=$(cpu "$@")
  [ "$admin" = - ] || { o1=$(opened $admin); R[$name,tls]=$((o1 - o0)); }
  local n; n=$(echo "${R[$name,conn]}" | tr ' ' '\n' | grep '^connections=' | cut -d= -f2)
  [ "$n" -gt 0 ] && R[$name,conncpu]=$(echo "scale=3; ($c1 - $c0) * 1000 / $n" | bc)
  LOADS="$LOADS, after $name $(cut -d' ' -f1 /proc/loadavg)"
}
metric() { # value of metric $2 on the agent at $1 (metrics port 15020)
  ip netns exec $NS1 curl -sf http://$1:15020/metrics | awk -v m="$2" '$1 == m { print $2 }' | head -1
}
drop() { # percent of the packets each namespace sends on the veth that are dropped (0: none)
  local pct=$1 ns dev ns_dev
  for ns_dev in "$NS1 va$S" "$NS2 vb$S"; do
    ns=${ns_dev% *}; dev=${ns_dev#* }
    ip netns exec $ns nft delete table inet wisp_loss 2>/dev/null || true
    [ "$pct" = 0 ] && continue
    ip netns exec $ns nft add table inet wisp_loss
    ip netns exec $ns nft add chain inet wisp_loss out '{ type filter hook output priority 0; policy accept; }'
    ip netns exec $ns nft add rule inet wisp_loss out oifname $dev numgen random mod 100 '<' $pct counter drop
  done
}
measure_loss() { # condition label: h2 then h3, 10 streams at once each way (throughput, then latency)
  local cond=$1 proto socks pids
  for proto in h2 h3; do
    case $proto in h2) socks="socks 127.0.0.1:15080"; pids="$W1 $W2" ;; h3) socks="socks 127.0.0.1:15280"; pids="$W1Q $W2" ;; esac
    lg platency 10.77.2.10:9000 $LOSS_STREAMS 100 $WARM_SECONDS 1024 $socks > /dev/null
    lg parallel 10.77.2.10:9001 $LOSS_STREAMS $((LOSS_BYTES / 2)) $socks > /dev/null
    local c0 c1
    c0=$(cpu $pids); R[loss-$cond-$proto,thr]=$(lg parallel 10.77.2.10:9001 $LOSS_STREAMS $LOSS_BYTES $socks); c1=$(cpu $pids)
    R[loss-$cond-$proto,thrcpu]=$(echo "scale=3; ($c1 - $c0) / ($LOSS_STREAMS * $LOSS_BYTES / 1073741824)" | bc)
    R[loss-$cond-$proto,lat]=$(lg platency 10.77.2.10:9000 $LOSS_STREAMS 100 $SECONDS_LAT 1024 $socks)
  done
  LOADS="$LOADS, after loss $cond $(cut -d' ' -f1 /proc/loadavg)"
}
R[wisp,rssidle]=$(rss $W1 $W2); R[wisp,memidle]=$(memdetail $W1 $W2); R[haproxy,rssidle]=$(rss $H1 $H2)
if [ -n "${HOLD:-}" ]; then # keep the setup up for manual experiments
  echo "holding ${HOLD}s: NS1=$NS1 NS2=$NS2 W1=$W1 W1F=$W1F W2=$W2 H1=$H1 H2=$H2 TMP=$TMP"; sleep "$HOLD"
fi
for p in $PATHS; do
  case $p in
    direct) measure_stream direct 10.77.2.10:9000 10.77.2.10:9001 "" $$
            measure_conn direct 10.77.2.10:9000 "" - $$ ;;
    wisp) measure_stream wisp 10.77.2.10:9000 10.77.2.10:9001 "socks 127.0.0.1:15080" $W1 $W2
          if [ "$HOLD_CONNS" -gt 0 ]; then
            R[wisp,holdkernel0]=$(kernel_drops); local_g1=$(gclines $W1); local_g2=$(gclines $W2)
            R[wisp,hold]=$(lg hold 10.77.2.10:9000 $HOLD_CONNS 300 socks 127.0.0.1:15080); R[wisp,rsshold]=$(rss $W1 $W2); R[wisp,memhold]=$(memdetail $W1 $W2)
            # Where a held connection failed: the load generator's error causes (in wisp,hold), the agents' and
            # the workload's open descriptors, the kernel's listen-queue counters, and the agents' log lines.
            R[wisp,holdfds]=$(fds $W1 $W2 ${PIDS[0]}); R[wisp,holdkernel]=$(kernel_drops)
            R[wisp,holdgc]="$(gcduring $W1 $local_g1) $(gcduring $W2 $local_g2)"
            if [ -n "${HOLD_LOGS:-}" ]; then
              mkdir -p "$HOLD_LOGS"; cp $TMP/n1.log $TMP/n2.log $TMP/server.log $TMP/lg.log $TMP/gc-*.log "$HOLD_LOGS"/ 2>/dev/null || true
            fi
            lg release > /dev/null
          fi
          measure_conn wisp 10.77.2.10:9000 "socks 127.0.0.1:15180" 15100 $W1F $W2
          measure_conn wisp-pooled 10.77.2.10:9000 "socks 127.0.0.1:15080" 15000 $W1 $W2
          R[wisp,gclife]="$(gclife $W1) $(gclife $W2)" ;;
    haproxy) measure_stream haproxy 127.0.0.1:20000 127.0.0.1:20001 "" $H1 $H2
             measure_conn haproxy 127.0.0.1:20000 "" - $H1 $H2 ;;
    loss) drop 0; measure_loss clean
          drop $LOSS; measure_loss lossy
          R[loss,dropped]=$(for ns in $NS1 $NS2; do ip netns exec $ns nft list table inet wisp_loss | grep -o 'packets [0-9]*' | cut -d' ' -f2; done | paste -sd+ | bc)
          drop 0
          R[loss,h2conns]=$(opened 15000); R[loss,h3conns]=$(metric 10.77.0.3 wisp_hbone_quic_pool_connections_opened)
          R[loss,h3tls]=$(ip netns exec $NS1 curl -sf http://127.0.0.1:15200/config_dump | grep -o '"hbone_pool_connections_opened": [0-9]*' | grep -o '[0-9]*$') ;;
  esac
done
if [ -n "${THREADS:-}" ]; then # per-thread CPU seconds of each agent over its life, for profiling
  for p in $W1 $W1F $W2; do echo "agent pid $p:"; for t in /proc/$p/task/*; do
    echo "$(sed 's/^.*) //' $t/stat | awk -v hz=$(getconf CLK_TCK) '{printf "%.2f", ($12+$13)/hz}') $(cat $t/comm)"; done | sort -rn | head -8; done
fi

or() { [ -n "$1" ] && echo "$1" || echo -; }
r() { [ -n "$1" ] && [ -n "$2" ] && [ "$2" != 0 ] && echo "scale=2; $1 / $2" | bc || echo -; }
if [[ " $PATHS " == *" loss "* ]]; then
  {
    echo "HBONE over HTTP/2 against HBONE over HTTP/3 on a lossy link — $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "load average (1 min): $LOADS, end $(cut -d' ' -f1-3 /proc/loadavg) (other engineers' builds and tests ran on the same 2 cores: compare the ratios, which come from this one run)"
    echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); kernel $(uname -r); Netty $NETTY; JDK $("$JAVA" -version 2>&1 | head -1 | cut -d'"' -f2)"
    echo "link: veth between two network namespaces (no added delay); lossy = nftables 'numgen random mod 100 < $LOSS drop' on each namespace's output to the veth (each direction, $LOSS %; ${R[loss,dropped]:-?} packets dropped in the lossy phases), clean = no rule"
    echo "agents: 1 worker thread each; client side n1 --hbone h2 (TLS pool) and a second n1 agent --hbone h3 (QUIC pool); one server agent n2 serves both"
    echo "throughput: $LOSS_STREAMS streams at once, each uploading $LOSS_BYTES bytes to the sink, all on one pooled connection; latency: $LOSS_STREAMS connections at once, each 100 req/s of 1 KiB for ${SECONDS_LAT}s (coordinated omission corrected), percentiles over all requests"
    echo "warm-up before each protocol and condition: ${WARM_SECONDS}s of the latency load, then the throughput load with half the bytes"
    echo "CPU: utime+stime of the client agent and the server agent during the throughput phase"
    echo
    printf '%-7s %-5s %13s %13s %13s %13s %10s %10s %10s %11s %8s\n' link proto "total MiB/s" "stream min" "stream med" "stream max" "p50 us" "p99 us" "p99.9 us" "CPU s/GiB" failed
    for cond in clean lossy; do for proto in h2 h3; do
      t=${R[loss-$cond-$proto,thr]:-}; l=${R[loss-$cond-$proto,lat]:-}
      printf '%-7s %-5s %13s %13s %13s %13s %10s %10s %10s %11s %8s\n' $cond $proto "$(val "$t" total_MiBps)" \
        "$(val "$t" stream_min_MiBps)" "$(val "$t" stream_median_MiBps)" "$(val "$t" stream_max_MiBps)" "$(val "$l" p50_us)" \
        "$(val "$l" p99_us)" "$(val "$l" p999_us)" "${R[loss-$cond-$proto,thrcpu]:-}" "$(val "$t" failed)/$(val "$l" failed)"
    done; done
    echo "(failed: streams / requests not answered)"
    echo
    for cond in clean lossy; do
      echo "ratios h3/h2, $cond (same run): per-stream median throughput $(r "$(val "${R[loss-$cond-h3,thr]}" stream_median_MiBps)" "$(val "${R[loss-$cond-h2,thr]}" stream_median_MiBps)"), slowest stream $(r "$(val "${R[loss-$cond-h3,thr]}" stream_min_MiBps)" "$(val "${R[loss-$cond-h2,thr]}" stream_min_MiBps)"), total $(r "$(val "${R[loss-$cond-h3,thr]}" total_MiBps)" "$(val "${R[loss-$cond-h2,thr]}" total_MiBps)"), p99 $(r "$(val "${R[loss-$cond-h3,lat]}" p99_us)" "$(val "${R[loss-$cond-h2,lat]}" p99_us)"), CPU/GiB $(r "${R[loss-$cond-h3,thrcpu]}" "${R[loss-$cond-h2,thrcpu]}")"
    done
    echo "connections: the h2 agent opened ${R[loss,h2conns]:-?} TLS connection(s) in the whole run; the h3 agent opened ${R[loss,h3conns]:-?} QUIC connection(s) and ${R[loss,h3tls]:-?} TLS connection(s)"
    echo
    echo "raw:"; for k in "${!R[@]}"; do [[ $k == loss* ]] && echo "  $k: ${R[$k]}"; done | sort
  } > $LOSS_OUT
  cat $LOSS_OUT
  [ -n "$(echo " $PATHS " | sed 's/ loss / /' | tr -d ' ')" ] || exit 0
fi
{
  echo "HBONE benchmark — $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "load average (1 min): $LOADS, end $(cut -d' ' -f1-3 /proc/loadavg) (other engineers' builds and tests ran on the same 2 cores: compare the ratios, which come from this one run)"
  echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), shared with other work; kernel $(uname -r)"
  echo "topology: two network namespaces joined by a veth pair; client in ns1, echo/sink workload in ns2 (Java, virtual threads); one load generator JVM for all phases"
  echo "proxies: each with 1 worker thread; wisp = node agents (Netty $NETTY, $(grep -q 'epoll: true' $TMP/n1.log && echo native epoll || echo NIO), BoringSSL, HTTP/2 CONNECT, TLS 1.3 mTLS, JDK $("$JAVA" -version 2>&1 | head -1 | cut -d'"' -f2)); haproxy $(haproxy -v | head -1 | cut -d' ' -f3) TCP mode, TLS 1.3 mTLS, one TLS connection per TCP connection, no TLS session reuse"
  echo "throughput: one stream uploading $BYTES bytes; latency: one connection, $RATE req/s of 1 KiB request + 1 KiB response for ${SECONDS_LAT}s, measured from each request's intended send time (coordinated omission corrected)"
  echo "warm-up per path before measuring: ${WARM_SECONDS}s of the latency load, $WARM_BYTES bytes of throughput, ${WARM_CONN_SECONDS}s of new connections"
  echo "CPU: utime+stime of the path's two proxy processes (/proc/<pid>/stat) during the phase; direct has no proxy"
  echo
  echo "One stream (throughput) and one connection (latency): the same work on every path"
  printf '%-8s %10s %10s %11s %11s %11s %14s %8s\n' path "MiB/s" "p50 us" "p99 us" "p99.9 us" "CPU s/GiB" "CPU s/1k req" failed
  for p in $PATHS; do
    cpu_gib=${R[$p,thrcpu]}; cpu_req=${R[$p,latcpu]}
    [ $p = direct ] && cpu_gib=- && cpu_req=-
    printf '%-8s %10s %10s %11s %11s %11s %14s %8s\n' $p "$(val "${R[$p,thr]}" MiBps)" "$(val "${R[$p,lat]}" p50_us)" \
      "$(val "${R[$p,lat]}" p99_us)" "$(val "${R[$p,lat]}" p999_us)" "$cpu_gib" "$cpu_req" \
      "$(val "${R[$p,thr]}" failed)/$(val "${R[$p,lat]}" failed)"
  done
  echo "(failed: throughput streams / latency requests not answered)"
  echo
  echo "Memory (VmRSS, MiB: client-side proxy / server-side proxy) and the agents' GC pauses"
  echo "  agent JVM options: ${NODE_OPTS:-JVM defaults} (MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-unset})"
  for p in wisp haproxy; do
    [[ " $PATHS " == *" $p "* ]] || continue
    printf '  %-8s idle %-14s after the latency phase %-14s' $p "${R[$p,rssidle]:-}" "${R[$p,rsslat]:-}"
    [ $p = wisp ] && [ -n "${R[wisp,rsshold]:-}" ] && printf ' with %s connections open (%s) %s' "$HOLD_CONNS" "${R[wisp,hold]}" "${R[wisp,rsshold]}"
    echo
  done
  [[ " $PATHS " == *" wisp "* ]] && echo "  wisp agents' longest GC pause during the latency phase, ms / pauses over 1 ms (client agent, server agent): ${R[wisp,gc]:-}"
  [[ " $PATHS " == *" wisp "* ]] && echo "  over each agent's whole life, longest pause ms / pauses over 1 ms, full collections by cause: ${R[wisp,gclife]:-}"
  echo
  echo "New connections: 8 workers, each connect + 1-byte echo + close, ${SECONDS_CONN}s"
  printf '%-44s %8s %8s %13s %16s\n' path "conn/s" failed "CPU ms/conn" "TLS conns opened"
  rows="direct"; [[ " $PATHS " == *" wisp "* ]] && rows="$rows wisp"; [[ " $PATHS " == *" haproxy "* ]] && rows="$rows haproxy"
  [[ " $PATHS " == *" wisp "* ]] && rows="$rows wisp-pooled"
  for p in $rows; do
    [[ " $PATHS " == *" ${p%-pooled} "* ]] || continue
    case $p in
      direct) label="direct (no TLS)" ;;
      wisp) label="wisp, one mTLS handshake per connection" ;;
      haproxy) label="haproxy, one mTLS handshake per connection" ;;
      wisp-pooled) label="wisp pooled: one shared TLS conn (NOT equal)" ;;
    esac
    cpu_conn=${R[$p,conncpu]:-}; [ $p = direct ] && cpu_conn=-
    printf '%-44s %8s %8s %13s %16s\n' "$label" "$(val "${R[$p,conn]}" per_second)" "$(val "${R[$p,conn]}" failed)" \
      "$(or "$cpu_conn")" "$(or "${R[$p,tls]:-}")"
  done
  echo "(TLS conns opened: by the client-side agent during the phase, from its /config_dump; haproxy's TCP mode makes one per connection;"
  echo " the pooled row is Wisp's production pool: every stream rides one TLS connection opened during the warm-up, no handshake per connection)"
  echo
  if [[ " $PATHS " == *" wisp "* && " $PATHS " == *" haproxy "* ]]; then
  echo "ratios wisp/haproxy (same run): throughput $(r "$(val "${R[wisp,thr]}" MiBps)" "$(val "${R[haproxy,thr]}" MiBps)"), p99 $(r "$(val "${R[wisp,lat]}" p99_us)" "$(val "${R[haproxy,lat]}" p99_us)"), CPU/GiB $(r "${R[wisp,thrcpu]}" "${R[haproxy,thrcpu]}"), CPU/1k req $(r "${R[wisp,latcpu]}" "${R[haproxy,latcpu]}"), conn/s with a handshake each $(r "$(val "${R[wisp,conn]}" per_second)" "$(val "${R[haproxy,conn]}" per_second)"), CPU/conn $(r "${R[wisp,conncpu]:-}" "${R[haproxy,conncpu]:-}")"
  echo "  (wisp pooled conn/s over haproxy's, not equal work: $(r "$(val "${R[wisp-pooled,conn]}" per_second)" "$(val "${R[haproxy,conn]}" per_second)"))"
  fi
  echo
  echo "raw:"; for k in "${!R[@]}"; do echo "  $k: ${R[$k]}"; done | sort
} > $OUT
cat $OUT
