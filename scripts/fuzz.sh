#!/usr/bin/env bash
# Runs each of Wisp's fuzz targets in Jazzer's fuzzing mode (JAZZER_FUZZ=1) for a given time and
# reports, per target, the time, executions, coverage (libFuzzer's cov/ft counters), the coverage
# 10 minutes before the end (so a run shows whether it reached a plateau) and findings.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     # default 60 s, every target
#   scripts/fuzz.sh 1800 Socks5FuzzTest                  # one target for 30 minutes
#
# A target is Class or Class#method. Results: bench/results/fuzz.txt (appended) and the raw logs under
# target/fuzz/. New corpus entries go to Jazzer's generated-corpus directory (.cifuzz-corpus/, not
# committed); a finding is written by Jazzer into the test resources as a new regression input
# (src/test/resources/<package>/<Class>Inputs/<method>/crash-*): fix it, then commit the input.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
# FUZZ_RESULTS=bench/results/fuzz-long.txt for the plateau runs
RESULTS=${FUZZ_RESULTS:-bench/results/fuzz.txt}
shift || true
declare -A MODULE=(
  [HboneServerFuzzTest]=ztunnel-node [Socks5FuzzTest]=ztunnel-node [PodFileFuzzTest]=ztunnel-node
  [WorkloadXdsFuzzTest]=ztunnel-node [ConfigDecoderFuzzTest]=xds-control-plane [CsrFuzzTest]=xds-control-plane
  [UapiFuzzTest]=wireguard [MeshNamesFuzzTest]=ztunnel-node)
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  TARGETS=(HboneServerFuzzTest Socks5FuzzTest PodFileFuzzTest WorkloadXdsFuzzTest ConfigDecoderFuzzTest CsrFuzzTest UapiFuzzTest
    MeshNamesFuzzTest)
fi
mkdir -p target/fuzz bench/results
# Build once (tests compiled, dependencies resolved); each target then runs in its own JVM, through
# the reactor (-am) because Wisp's own modules are never installed into the local repository.
./mvnw -B -q -pl ztunnel-node,xds-control-plane,wireguard -am test-compile
{
  echo "== fuzz run $(date -u +%FT%TZ), ${SECONDS_PER_TARGET}s per target, $(nproc) cores, load: $(uptime | sed 's/.*load average: //')"
  printf '%-24s %8s %12s %8s %8s %14s %s\n' target seconds execs cov ft 'cov,ft -10min' findings
} | tee -a "$RESULTS"
for t in "${TARGETS[@]}"; do
  class=${t%%#*}
  module=${MODULE[$class]:?unknown target $class}
  log=target/fuzz/$class.log
  out=$(ls "$module"/target/surefire-reports/*"$class"*-output.txt 2>/dev/null || true)
  [ -n "$out" ] && rm -f $out
  start=$(date +%s)
  # Every line is stamped with the second it arrived, so the coverage at any time can be read back.
  stamp() { while IFS= read -r line; do printf '%s %s\n' "$EPOCHSECONDS" "$line"; done; }
  set +e
  JAZZER_FUZZ=1 JAZZER_MAX_DURATION="${SECONDS_PER_TARGET}s" ./mvnw -B -q -o -pl "$module" -am test -Dtest="$t" -Dsurefire.failIfNoSpecifiedTests=false \
      -Djazzer.max_duration="${SECONDS_PER_TARGET}s" -Dsurefire.redirectTestOutputToFile=false 2>&1 | stamp >"$log"
  rc=${PIPESTATUS[0]}
  set -e
  # libFuzzer may write to the test JVM's stderr, which surefire then keeps in the class's output file
  # (unstamped lines: they count for the end figures only).
  cat "$module"/target/surefire-reports/*"$class"*-output.txt 2>/dev/null | sed "s/^/$(date +%s) /" >>"$log" || true
  took=$(( $(date +%s) - start ))
  # libFuzzer's status lines: "#<execs> <EVENT> cov: N ft: N corp: ..."; the last one is the plateau
  # reached, the last one 10 minutes before the end shows whether coverage still grew.
  status='^[0-9]+ #[0-9]+[[:space:]]+(pulse|NEW|REDUCE|DONE|INITED)'
  last=$(grep -aE "$status" "$log" | tail -1 || true)
  end=$(date +%s)
  before=$(grep -aE "$status" "$log" | awk -v t=$((end - 600)) '$1 <= t' | tail -1 || true)
  execs=$(sed -nE 's/^[0-9]+ #([0-9]+).*/\1/p' <<<"$last")
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  cov10=$(sed -nE 's/.* cov: ([0-9]+) ft: ([0-9]+).*/\1,\2/p' <<<"$before")
  findings=$(grep -ac 'FuzzTestFindingException\|== Java Exception' "$log" || true)
  [ $rc -ne 0 ] && [ "$findings" = 0 ] && findings="run failed (rc=$rc, see $log)"
  printf '%-24s %8s %12s %8s %8s %14s %s\n' "$class" "$took" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${cov10:--}" "$findings" \
    | tee -a "$RESULTS"
done
