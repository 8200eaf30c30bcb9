#!/usr/bin/env bash
# Median time for the CA to issue one workload certificate (CSR signing), over 1,000 requests,
# against the JDK's ECDSA P-256 verify+sign floor measured in the same run.
# Writes bench/results/ca-issue.txt. Usage: bench/ca-issue/run.sh [count]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
n=${1:-1000}
./mvnw -q -o -pl spiffe -am package dependency:build-classpath -DskipTests -DincludeScope=runtime \
  -Dmdep.outputFile=target/ca-bench.cp >/dev/null
# shellcheck source=../../scripts/lib/java.sh
. "$root/scripts/lib/java.sh"
java=$(find_java)
load=$(cut -d' ' -f1-3 /proc/loadavg)
cp="$root/spiffe/target/classes:$(cat "$root/spiffe/target/ca-bench.cp")"
out=$("$java" -cp "$cp" "$root/bench/ca-issue/CaIssueBench.java" "$n" 2>/dev/null)
{
  echo "# CA certificate issuance (bench/ca-issue/run.sh), $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "# machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), shared with other work; $("$java" -version 2>&1 | head -1)"
  echo "# load average at start: $load (wall times inflate under contention; the CPU figures are the steadier ones)"
  echo "# workload: one thread, $n distinct P-256 CSRs (one URI SAN), default 24 h TTL, node authorization on;"
  echo "#           2,000 warm-up signings first; wall time per call (System.nanoTime), CPU from the thread's CPU clock."
  echo "$out"
} | tee "$root/bench/results/ca-issue.txt"
