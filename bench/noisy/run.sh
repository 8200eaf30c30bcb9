#!/usr/bin/env bash
# Noisy-neighbour benchmark (issue 18; not a test, a few minutes per run): a local mesh (cluster
# nnb2) with pods quiet and noisy on node 1 and their servers (server, sink) on node 2; quiet's latency (1 KiB at 200/s
# on one connection, plus 20 new connections/s, coordinated omission corrected) alone, then while
# noisy (a) opens connections as fast as 32 threads can, (b) pushes bytes over 4 connections at full
# speed, and noisy's push alone (quiet idle: the heavy pod's throughput alone vs beside quiet), in
# ROUNDS interleaved rounds (each noise compared with its own round's alone; medians reported). The measuring code is the e2e class NoisyNeighbourE2eTest (one piece of code for the test
# and the benchmark), run here with longer phases and its report written to a file; the pass mark
# (quiet's p99 at most 2x its quiet figure, nothing refused) is printed in each table, not asserted.
#
# Each configuration runs RUNS times (the machine is shared: read the spread, and the load average
# each table states):
#   fair      the defaults plus the fair share (--workload-fair-window PT0.02S: FairShare, 64 KiB per
#             20 ms window, a connection 64 KiB, a heavy workload held only while a lighter one has
#             work waiting: work-conserving)
#   defaults  the agents' defaults: 500 new connections/s, no byte rate, no fair share
#   limited   fixed rates, no fair share: --workload-connection-rate 100 --workload-connection-burst 20
#             --workload-connection-wait PT0.2S --workload-byte-rate 16 (MiB/s per workload)
#
# Usage (root: network namespaces, eBPF):  bench/noisy/run.sh
#   SECONDS_PHASE=10 ROUNDS=3 RUNS=1 CONFIGS="fair defaults limited" OUT=bench/results/noisy.txt BASE=146
#   MVN_ARGS="-Dmaven.compiler.useIncrementalCompilation=false" (extra Maven arguments)
#   SWITCH=1: in the fair configuration each round also runs the flood, the push and the solo push with
#   both agents' share switched off at run time (POST /fair/switch?on=0 on their admin listeners): on vs off in
#   the same minute. Every run also measures the same quiet load between two uncaptured pods (direct,
#   no mesh) at the same time, to tell the machine's share of the harm from the mesh's.
#   CPU_REQUESTS=AGENT,POD (millicores, e.g. 200,100): the agents and the pods run in CPU groups
#   (cgroup v1 cpu.shares = millicores x 1024 / 1000, under one group of 1024 x cores for the cluster),
#   as Kubernetes runs a DaemonSet and pods with CPU requests (CpuShares); unset: no CPU groups.
#   Nothing of the run is niced: run it as it is (the agents inherit the shell's nice value).
#   Every report has a "scheduling" table: the agents' and the pods' CPU time and run-queue wait
#   per second of each phase, from /proc/<pid>/task/*/schedstat.
#   GC_LOG=DIR: every JVM of the mesh (agents, control plane, pod apps) writes its unified GC and
#   safepoint log under DIR/<config>-<run>/
set -uo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "noisy bench: needs root (network namespaces, eBPF)" >&2; exit 1; }
SECONDS_PHASE=${SECONDS_PHASE:-10}
ROUNDS=${ROUNDS:-3}
BASE=${BASE:-146}
MVN_ARGS=${MVN_ARGS:-}
RUNS=${RUNS:-1}
CONFIGS=${CONFIGS:-fair defaults limited}
GC_LOG=${GC_LOG:-}
SWITCH=${SWITCH:-0}
CPU_REQUESTS=${CPU_REQUESTS:-}
OUT=${OUT:-bench/results/noisy.txt}
TMP=$(mktemp -d /tmp/wisp-noisy.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
args_of() {
  case $1 in
    fair) echo "--workload-fair-window PT0.02S" ;;
    defaults) echo "" ;;
    limited) echo "--workload-connection-rate 100 --workload-connection-burst 20 --workload-connection-wait PT0.2S --workload-byte-rate 16 --workload-fair-window PT0S" ;;
    *) echo "unknown configuration $1" >&2; exit 1 ;;
  esac
}
{
  echo "Noisy-neighbour benchmark (bench/noisy/run.sh), $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores; $RUNS run(s) per configuration, $ROUNDS rounds of ${SECONDS_PHASE} s phases, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "pass mark (issue 18): quiet's p99 under noise <= 2 x its p99 alone, and none of quiet's requests or connections failed"
  echo
} > "$TMP/all.txt"
for config in $CONFIGS; do
  for run in $(seq "$RUNS"); do
    report=$TMP/$config-$run.txt
    gc=()
    if [ -n "$GC_LOG" ]; then
      mkdir -p "$GC_LOG/$config-$run"
      gc=("-Dwisp.noisy.gcLog=$(cd "$GC_LOG/$config-$run" && pwd)")
    fi
    echo "== $config, run $run" | tee -a "$TMP/all.txt"
    echo "agent flags: $(args_of "$config"); CPU requests (agent,pod millicores): ${CPU_REQUESTS:-none}" >> "$TMP/all.txt"
    ./mvnw -o -B -q -pl e2e -am verify -Dtest=NoisyNeighbourE2eTest -Dsurefire.failIfNoSpecifiedTests=false \
      -Dspotless.check.skip=true -Dwisp.noisy.seconds="$SECONDS_PHASE" -Dwisp.noisy.report="$report" \
      -Dwisp.noisy.rounds="$ROUNDS" -Dwisp.noisy.base="$BASE" -Dwisp.noisy.switch="$([ "$SWITCH" = 1 ] && echo true || echo false)" $MVN_ARGS \
      -Dwisp.noisy.agentArgs="$(args_of "$config")" -Dwisp.noisy.cpuRequests="$CPU_REQUESTS" "${gc[@]}" \
      > "$TMP/mvn-$config-$run.log" 2>&1
    status=$?
    if [ -s "$report" ]; then
      cat "$report" >> "$TMP/all.txt"
      if [ "$status" != 0 ]; then
        echo "the run's assertions failed (exit $status):" >> "$TMP/all.txt"
        grep -m 5 -A 3 "AssertionFailed\|Expect\|ERROR\]" "$TMP/mvn-$config-$run.log" >> "$TMP/all.txt"
      fi
    else
      echo "no figures: the run failed before its report; last lines of its log:" >> "$TMP/all.txt"
      tail -20 "$TMP/mvn-$config-$run.log" >> "$TMP/all.txt"
    fi
    echo >> "$TMP/all.txt"
  done
done
cp "$TMP/all.txt" "$OUT"
cat "$OUT"
