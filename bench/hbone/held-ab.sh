#!/usr/bin/env bash
# A/B of the node agents' CPU on warm agents: two copies of bench/hbone/run.sh's set-up held up side by
# side (HOLD, no phases), set A and set B, then the same phases on A and B alternately, ROUNDS times.
# Alternating inside one invocation is what makes a comparison hold on a shared, loaded machine: both
# sets see the same load from one minute to the next, and the spread between rounds shows the noise.
# Per phase and set: CPU of the two agents of the path (utime+stime from /proc/<pid>/stat) per 1,000
# requests (1 KiB at RATE req/s on one connection), per GiB (one stream) and per new connection
# (a fresh mTLS handshake each, through the set's per-stream-pool client agent), and at the end each
# agent's VmRSS.
# A_JOPTS / B_JOPTS: extra JVM options of each set's agents (run.sh's WISP_JOPTS; a later -XX option
# wins over bin/node-jvm.options'), A_JAR / B_JAR: each set's launcher jar (run.sh's WISP_JAR) to
# compare two builds. Example, C1 only (the committed options) against C2:
#   sudo B_JOPTS="-XX:TieredStopAtLevel=4 -XX:ReservedCodeCacheSize=48m" bench/hbone/held-ab.sh
# Writes OUT (default bench/results/hbone-held-ab.txt).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "run as root (network namespaces)" >&2; exit 1; }
JAVA=${WISP_JAVA:-$(ls -d /usr/lib/jvm/*25* 2>/dev/null | head -1)/bin/java}
# Defaults: rounds; the latency phase's rate and seconds; the stream's bytes; the new-connection seconds; the
# warm-up of each set before the first round (run.sh's: the latency load, bytes, handshakes); where to write.
: "${ROUNDS:=3}" "${RATE:=1000}" "${SECONDS_LAT:=20}" "${BYTES:=1073741824}" "${SECONDS_CONN:=10}"
: "${WARM_SECONDS:=30}" "${WARM_BYTES:=2147483648}" "${WARM_CONN_SECONDS:=60}" "${OUT:=bench/results/hbone-held-ab.txt}"
: "${A_JOPTS:=}" "${B_JOPTS:=}" "${A_JAR:=}" "${B_JAR:=}"
LOGS=$(mktemp -d /tmp/wisp-held-ab.XXXXXX)
declare -A HOLDER NS W1 W1F W2

stop_holder() { # ends run.sh's HOLD sleep: run.sh then exits through its own EXIT trap (agents stopped, namespaces deleted)
  local pid=$1 c
  for c in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
    [ "$(cat /proc/"$c"/comm 2>/dev/null)" = sleep ] && kill "$c"
  done
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill "$pid" 2>/dev/null # not yet holding (still starting): its TERM still runs its EXIT trap
}
cleanup() {
  set +e # every set is stopped, whatever failed before
  for s in A B; do [ -n "${HOLDER[$s]:-}" ] && stop_holder "${HOLDER[$s]}"; done
  rm -rf "$LOGS"
}
trap cleanup EXIT

# Both sets start together; each is run.sh holding its agents for longer than this script needs.
for s in A B; do
  jopts=A_JOPTS jar=A_JAR; [ $s = B ] && jopts=B_JOPTS jar=B_JAR
  HOLD=7200 PATHS=none HOLD_CONNS=0 OUT=/dev/null WISP_JOPTS="${!jopts}" WISP_JAR="${!jar}" \
    setsid bench/hbone/run.sh > "$LOGS/$s.log" 2>&1 &
  HOLDER[$s]=$!
done
for s in A B; do
  for _ in $(seq 900); do grep -q '^holding' "$LOGS/$s.log" && break; kill -0 "${HOLDER[$s]}" 2>/dev/null || break; sleep 0.2; done
  line=$(grep '^holding' "$LOGS/$s.log") || { echo "set $s did not come up:"; cat "$LOGS/$s.log"; exit 1; }
  for kv in $line; do
    case $kv in NS1=*) NS[$s]=${kv#*=} ;; W1=*) W1[$s]=${kv#*=} ;; W1F=*) W1F[$s]=${kv#*=} ;; W2=*) W2[$s]=${kv#*=} ;; esac
  done
done

cpu() { # utime+stime of the given pids, in clock ticks
  local t=0 p
  for p in "$@"; do set -- $(sed 's/^.*) //' /proc/"$p"/stat); t=$((t + ${12} + ${13})); done
  echo $t
}
TCK=$(getconf CLK_TCK)
lg() { # set, then a LoadGen command line; its result line
  local s=$1; shift
  ip netns exec "${NS[$s]}" "$JAVA" -cp test-support/target/classes bench/hbone/LoadGen.java "$@"
}
field() { echo "$1" | tr ' ' '\n' | grep "^$2=" | cut -d= -f2; }
load() { cut -d' ' -f1 /proc/loadavg; }
ROWS=()
measure() { # set, phase
  local s=$1 phase=$2 c0 c1 out n
  case $phase in
    lat)
      c0=$(cpu "${W1[$s]}" "${W2[$s]}")
      out=$(lg $s latency 10.77.2.10:9000 "$RATE" "$SECONDS_LAT" 1024 socks 127.0.0.1:15080)
      c1=$(cpu "${W1[$s]}" "${W2[$s]}")
      ROWS+=("$(printf '%-4s %-3s CPU s/1k req %6s   p50 us %10s  p99 us %11s  failed %s  load %s' \
        "$phase" $s "$(echo "scale=3; ($c1 - $c0) * 1000 / $TCK / ($RATE * $SECONDS_LAT)" | bc)" \
        "$(field "$out" p50_us)" "$(field "$out" p99_us)" "$(field "$out" failed)" "$(load)")") ;;
    thr)
      c0=$(cpu "${W1[$s]}" "${W2[$s]}")
      out=$(lg $s throughput 10.77.2.10:9001 "$BYTES" socks 127.0.0.1:15080)
      c1=$(cpu "${W1[$s]}" "${W2[$s]}")
      ROWS+=("$(printf '%-4s %-3s CPU s/GiB    %6s   MiB/s  %10s  failed %s  load %s' "$phase" $s \
        "$(echo "scale=3; ($c1 - $c0) / $TCK / ($BYTES / 1073741824)" | bc)" "$(field "$out" MiBps)" \
        "$(field "$out" failed)" "$(load)")") ;;
    conn)
      c0=$(cpu "${W1F[$s]}" "${W2[$s]}")
      out=$(lg $s connrate 10.77.2.10:9000 "$SECONDS_CONN" 8 socks 127.0.0.1:15180)
      c1=$(cpu "${W1F[$s]}" "${W2[$s]}")
      n=$(field "$out" connections)
      ROWS+=("$(printf '%-4s %-3s CPU ms/conn  %6s   conn/s %10s  failed %s  load %s' "$phase" $s \
        "$( [ "$n" -gt 0 ] && echo "scale=3; ($c1 - $c0) * 1000 / $TCK / $n" | bc || echo -)" \
        "$(field "$out" per_second)" "$(field "$out" failed)" "$(load)")") ;;
  esac
}

START="$(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
for s in A B; do
  lg $s latency 10.77.2.10:9000 "$RATE" "$WARM_SECONDS" 1024 socks 127.0.0.1:15080 > /dev/null
  lg $s throughput 10.77.2.10:9001 "$WARM_BYTES" socks 127.0.0.1:15080 > /dev/null
  lg $s connrate 10.77.2.10:9000 "$WARM_CONN_SECONDS" 8 socks 127.0.0.1:15180 > /dev/null
done
for r in $(seq "$ROUNDS"); do
  for phase in lat thr conn; do
    # A first in odd rounds, B first in even ones: neither set always runs right after a warm-up.
    if [ $((r % 2)) = 1 ]; then measure A $phase; measure B $phase; else measure B $phase; measure A $phase; fi
  done
done
rss() { for p in "$@"; do awk '/^VmRSS:/ { printf "%.1f ", $2 / 1024 }' /proc/"$p"/status; done; }
{
  echo "HBONE held-agent A/B — $START, end load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "machine: $(nproc) cores, shared with other work; the same topology and agents as bench/hbone/run.sh (one I/O thread each)"
  echo "set A: extra agent options '${A_JOPTS}'${A_JAR:+, jar $A_JAR}"
  echo "set B: extra agent options '${B_JOPTS}'${B_JAR:+, jar $B_JAR}"
  echo "warm-up per set: ${WARM_SECONDS}s of the latency load, $WARM_BYTES bytes, ${WARM_CONN_SECONDS}s of new connections;"
  echo "then $ROUNDS rounds, each phase on A and B back to back: latency ${RATE} req/s of 1 KiB for ${SECONDS_LAT}s on one"
  echo "connection; one stream of $BYTES bytes; ${SECONDS_CONN}s of new connections (8 workers, a fresh mTLS handshake each)"
  echo "CPU: both agents of the path (client-side and server-side), utime+stime"
  printf '%s\n' "${ROWS[@]}"
  echo "VmRSS at the end, MiB (client agent, server agent, per-connection-pool client agent): A $(rss "${W1[A]}" "${W2[A]}" "${W1F[A]}")  B $(rss "${W1[B]}" "${W2[B]}" "${W1F[B]}")"
} | tee "$OUT"
