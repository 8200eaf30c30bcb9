#!/usr/bin/env bash
# Noisy-neighbour benchmark (issue 18; not a test, a few minutes per run): a local mesh (cluster
# nnb2) with pods quiet and noisy on node 1 and their servers (server, sink) on node 2; quiet's latency (1 KiB at 200/s
# on one connection, plus 20 new connections/s, coordinated omission corrected) alone, then while
# noisy (a) opens connections as fast as 32 threads can, (b) pushes bytes over 4 connections at full
# speed. The measuring code is the e2e class NoisyNeighbourE2eTest (one piece of code for the test
# and the benchmark), run here with longer phases and its report written to a file; the pass mark
# (quiet's p99 at most 2x its quiet figure, nothing refused) is printed in each table, not asserted.
#
# Each configuration runs RUNS times (the machine is shared: read the spread, and the load average
# each table states):
#   defaults  the agents' default per-workload limits (500 new connections/s per workload)
#   limited   --workload-connection-rate 100 --workload-connection-burst 20 --workload-connection-wait PT0.2S
#             --workload-byte-rate 16 (MiB/s per workload)
#
# Usage (root: network namespaces, eBPF):  bench/noisy/run.sh
#   SECONDS_PHASE=15 RUNS=2 CONFIGS="defaults limited" OUT=bench/results/noisy.txt
set -uo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "noisy bench: needs root (network namespaces, eBPF)" >&2; exit 1; }
SECONDS_PHASE=${SECONDS_PHASE:-15}
RUNS=${RUNS:-2}
CONFIGS=${CONFIGS:-defaults limited}
OUT=${OUT:-bench/results/noisy.txt}
TMP=$(mktemp -d /tmp/wisp-noisy.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
args_of() {
  case $1 in
    defaults) echo "" ;;
    limited) echo "--workload-connection-rate 100 --workload-connection-burst 20 --workload-connection-wait PT0.2S --workload-byte-rate 16" ;;
    *) echo "unknown configuration $1" >&2; exit 1 ;;
  esac
}
{
  echo "Noisy-neighbour benchmark (bench/noisy/run.sh), $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores; $RUNS run(s) per configuration, ${SECONDS_PHASE} s per phase"
  echo "pass mark (issue 18): quiet's p99 under noise <= 2 x its p99 alone, and none of quiet's requests or connections failed"
  echo
} > "$TMP/all.txt"
for config in $CONFIGS; do
  for run in $(seq "$RUNS"); do
    report=$TMP/$config-$run.txt
    echo "== $config, run $run" | tee -a "$TMP/all.txt"
    echo "agent flags: $(args_of "$config")" >> "$TMP/all.txt"
    ./mvnw -o -B -q -pl e2e -am verify -Dtest=NoisyNeighbourE2eTest -Dsurefire.failIfNoSpecifiedTests=false \
      -Dspotless.check.skip=true -Dwisp.noisy.seconds="$SECONDS_PHASE" -Dwisp.noisy.report="$report" \
      -Dwisp.noisy.agentArgs="$(args_of "$config")" > "$TMP/mvn-$config-$run.log" 2>&1
    if [ -s "$report" ]; then
      cat "$report" >> "$TMP/all.txt"
    else
      echo "no figures: the run failed before its report; last lines of its log:" >> "$TMP/all.txt"
      tail -20 "$TMP/mvn-$config-$run.log" >> "$TMP/all.txt"
    fi
    echo >> "$TMP/all.txt"
  done
done
cp "$TMP/all.txt" "$OUT"
cat "$OUT"
