#!/usr/bin/env bash
# The node agent's memory and GC pauses under several JVM option sets, in one run: for each set,
# bench/hbone/run.sh's Wisp path (two agents, PATHS=wisp) measures RSS idle, after the 1,000 req/s
# latency phase and with HOLD_CONNS connections open, single-stream throughput, p99 at 1,000 req/s,
# and the agents' GC pauses in the latency phase (unified GC log). The sets run in turn, ROUNDS times
# over (A B C … A B C …), so that a change in the machine's load falls on every set alike; compare
# sets within this run only. Writes OUT (bench/results/agent-memory-gc.txt): a table, one row per run,
# then each run's raw figures.
# Each set is "label | env | options": options are added after bin/node-jvm.options' (HotSpot takes
# the last of a repeated flag), and a collector flag (-XX:+Use...GC) replaces the committed one; env
# is VAR=value pairs for the agents' process (MALLOC_ARENA_MAX), or "-".
# Usage: sudo bench/hbone/memory.sh        SETS=file (one set a line) replaces the default sets.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "run as root (network namespaces)" >&2; exit 1; }
ROUNDS=${ROUNDS:-2}
OUT=${OUT:-bench/results/agent-memory-gc.txt}
# BASE: the option file every set starts from (e.g. a copy of the previous commit's, to compare it with
# the file as changed: a set "previous" with no additions and one "committed" naming the additions).
BASE=${BASE:-bin/node-jvm.options}
export BYTES=${BYTES:-268435456} WARM_BYTES=${WARM_BYTES:-536870912} WARM_SECONDS=${WARM_SECONDS:-10}
export SECONDS_CONN=${SECONDS_CONN:-5} SECONDS_LAT=${SECONDS_LAT:-20} HOLD_CONNS=${HOLD_CONNS:-10000} RATE=${RATE:-1000}
# New-connection phases are not what this script compares: a short warm-up keeps each run near 3 minutes.
export WARM_CONN_SECONDS=${WARM_CONN_SECONDS:-5}
# The default sets: the committed options against one of each collector, the others single-threaded
# where the collector allows (one core's worth of GC work, as Serial; fewer threads and stacks):
# Serial with a fixed young generation promoting at the first survival (fewer young collections, less
# copying of long-lived connection state); Parallel with one thread; generational ZGC (the only ZGC
# mode in JDK 25) told to keep its heap near 48 MiB and give memory back after 5 s; Shenandoah
# (its uncommit delay is an experimental flag: without the unlock the JVM does not start).
DEFAULT_SETS='committed | - |
serial-mn12 | - | -Xmn12m -XX:MaxTenuringThreshold=1
parallel1 | - | -XX:+UseParallelGC -XX:ParallelGCThreads=1
zgc       | - | -XX:+UseZGC -XX:SoftMaxHeapSize=48m -XX:ZUncommitDelay=5 -XX:ConcGCThreads=1 -XX:ParallelGCThreads=1
shen      | - | -XX:+UseShenandoahGC -XX:+UnlockExperimentalVMOptions -XX:ShenandoahUncommitDelay=5000 -XX:ConcGCThreads=1 -XX:ParallelGCThreads=1'
if [ -n "${SETS:-}" ]; then SETLIST=$(grep -v '^[[:space:]]*\(#\|$\)' "$SETS"); else SETLIST=$DEFAULT_SETS; fi
TMP=$(mktemp -d /tmp/wisp-mem.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
mapfile -t SET_LINES <<< "$SETLIST"
trim() { sed 's/^[[:space:]]*//; s/[[:space:]]*$//' <<< "$1"; }
raw() { # value of raw key $2 in run output $1
  sed -n "s/^  $2: //p" "$1" | head -1
}
field() { # key=value field $2 of a space-separated result $1
  tr ' ' '\n' <<< "$1" | sed -n "s/^$2=//p" | head -1
}
START=$(date -u +%Y-%m-%dT%H:%MZ)
ROWS=()
for round in $(seq "$ROUNDS"); do
  for i in "${!SET_LINES[@]}"; do
    IFS='|' read -r label env opts <<< "${SET_LINES[$i]}"
    label=$(trim "$label"); env=$(trim "$env"); opts=$(trim "$opts")
    file=$TMP/opts-$i
    if grep -q -- '-XX:+Use[A-Za-z]*GC' <<< "$opts"; then
      grep -v -- '^-XX:+Use[A-Za-z]*GC$' "$BASE" > "$file"
    else
      cp "$BASE" "$file"
    fi
    tr ' ' '\n' <<< "$opts" | grep -v '^$' >> "$file" || true
    load=$(cut -d' ' -f1 /proc/loadavg)
    echo "== round $round, set $label (load $load)" >&2
    envs=(); [ "$env" = - ] || read -r -a envs <<< "$env"
    out=$TMP/run-$round-$i.txt
    # A run whose held connections fail keeps its agents', workload's and load generator's logs here.
    if ! env "${envs[@]}" PATHS=wisp NODE_JVM_OPTIONS="$file" OUT="$out" HOLD_LOGS="${OUT%.txt}-logs/$round-$label" bench/hbone/run.sh > "$TMP/log-$round-$i.txt" 2>&1; then
      tail -20 "$TMP/log-$round-$i.txt" >&2
      ROWS+=("$(printf '%-12s %5s %5s  run failed' "$label" "$round" "$load")")
      continue
    fi
    thr=$(raw "$out" 'wisp,thr'); lat=$(raw "$out" 'wisp,lat'); hold=$(raw "$out" 'wisp,hold')
    # anon/threads of the client agent after the latency phase
    memlat=$(raw "$out" 'wisp,memlat'); first=${memlat%% *}
    gc=$(raw "$out" 'wisp,gc')
    ROWS+=("$(printf '%-12s %5s %5s %13s %13s %13s %10s %4s %7s %6s %6s %9s %9s %15s %7s  %s' "$label" "$round" "$load" \
      "$(raw "$out" 'wisp,rssidle' | xargs | tr ' ' /)" "$(raw "$out" 'wisp,rsslat' | xargs | tr ' ' /)" \
      "$(raw "$out" 'wisp,rsshold' | xargs | tr ' ' /)" \
      "$(for m in $memlat; do m=${m#anon=}; printf '%s/' "${m%%,*}"; done | sed 's#/$##')" "$(sed 's/.*threads=//' <<< "$first")" \
      "$(field "$thr" MiBps)" "$(raw "$out" 'wisp,thrcpu')" "$(raw "$out" 'wisp,latcpu')" "$(field "$lat" p99_us)" "$(field "$lat" p999_us)" "$(tr ' ' , <<< "$(xargs <<< "$gc")")" \
      "$(field "$thr" failed)/$(field "$lat" failed)/$(field "$hold" failed)" "$(raw "$out" 'wisp,gclife' | xargs | tr ' ' ';')")")
    printf '%s\n' "${ROWS[-1]}" >&2
    { echo "--- round $round, set $label: $(grep -F 'agent JVM options' "$out" | xargs)"; sed -n '/^raw:/,$p' "$out" | grep 'wisp,'; } >> $TMP/raw.txt
  done
done
{
  echo "Node agent memory and GC pauses by JVM option set — $START to $(date -u +%Y-%m-%dT%H:%MZ), bench/hbone/memory.sh"
  echo "machine: $(nproc) cores, shared with other engineers' builds and tests (load average, 1 min, at each run's start is given)"
  echo "each run: bench/hbone/run.sh PATHS=wisp, two agents (client side n1, server side n2, 1 worker thread each);"
  echo "  throughput: one stream uploading $BYTES bytes after $WARM_BYTES bytes of warm-up;"
  echo "  latency: one connection, $RATE req/s of 1 KiB for ${SECONDS_LAT}s after ${WARM_SECONDS}s of warm-up (coordinated omission corrected);"
  echo "  then $HOLD_CONNS connections held open through the client agent; rounds: $ROUNDS, sets in turn"
  echo "RSS: VmRSS MiB, client agent / server agent: idle (after start), after the throughput and latency phases (1k), with $HOLD_CONNS connections open (10k)"
  echo "anon: RssAnon MiB after the latency phase (not counting file pages: libjvm, the CDS archive; nor ZGC's heap, a shared mapping); thr: the client agent's threads"
  echo "s/GiB, s/1kr: CPU seconds (utime+stime) of both agents per GiB in the throughput phase, per 1,000 requests in the latency phase"
  echo "GC: longest pause in ms / pauses over 1 ms during the latency phase, from -Xlog:gc,gc+phases (client agent, server agent)"
  echo "life: over each agent's whole run (start, warm-up, every phase): longest pause ms / pauses over 1 ms, then its full collections by cause"
  echo "failed: throughput streams / latency requests / held connections not answered"
  echo
  echo "sets (options added to $BASE; a collector flag replaces -XX:+UseSerialGC):"
  for l in "${SET_LINES[@]}"; do echo "  $l"; done
  echo
  printf '%-12s %5s %5s %13s %13s %13s %10s %4s %7s %6s %6s %9s %9s %15s %7s  %s\n' set round load "RSS idle" "RSS 1k" "RSS 10k" "anon 1k" thr "MiB/s" "s/GiB" "s/1kr" "p99 us" "p99.9 us" "GC max/>1ms" failed "life: max/>1ms,full:cause=n (client;server)"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "raw (run.sh's keys):"
  cat $TMP/raw.txt
} > "$OUT"
cat "$OUT"
